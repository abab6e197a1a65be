//! Test identities: the issuer, audience and key id every test instance trusts, the full scope
//! list, fresh ids and idempotency keys, standard claims, JWKS files and signed tokens.

use std::path::Path;

use ed25519_dalek::SigningKey;
use hpts::auth::dev::{jwks_json, sign};
use serde_json::{Value, json};
use uuid::Uuid;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "hpts-test";
pub const KID: &str = "test-key-1";

pub const ALL_SCOPES: &[&str] = &[
    "hpts:disbursements:write",
    "hpts:payments:write",
    "hpts:fees:write",
    "hpts:reversals:write",
    "hpts:accruals:write",
    "hpts:chargeoffs:write",
    "hpts:adjustments:write",
    "hpts:periods:write",
    "hpts:balances:read",
    "hpts:ledger:read",
    "hpts:reconciliation:read",
];

/// Seconds since the epoch.
#[expect(
    clippy::disallowed_methods,
    reason = "tokens in tests carry wall-clock times"
)]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A fresh random UUID (test data only).
#[expect(clippy::disallowed_methods, reason = "test data ids")]
pub fn uuid() -> Uuid {
    Uuid::now_v7()
}

/// A fresh idempotency key.
pub fn key(kind: &str) -> String {
    format!("{kind}:{}", uuid())
}

/// Standard claims for a tenant and scopes, valid for an hour.
pub fn claims(tenant: Uuid, scopes: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "test-user",
        "tenant_id": tenant.to_string(),
        "scope": scopes.join(" "),
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
    })
}

/// A token signed by `signing` (as [`KID`]) for `tenant` with every scope.
pub fn token(signing: &SigningKey, tenant: Uuid) -> String {
    sign(signing, KID, &claims(tenant, ALL_SCOPES)).expect("sign")
}

/// A JWKS document with the given keys (kid, key).
pub fn jwks_document(keys: &[(&str, &SigningKey)]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, k)| jwks_json(k, kid)["keys"][0].clone())
        .collect();
    json!({ "keys": keys }).to_string()
}

/// Writes a JWKS with the given keys (kid, key) to `path`.
pub fn write_jwks(path: &Path, keys: &[(&str, &SigningKey)]) {
    std::fs::write(path, jwks_document(keys)).expect("write jwks");
}
