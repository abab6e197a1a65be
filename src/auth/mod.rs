//! Authentication and authorisation: bearer JWTs verified against the issuer's JWKS
//! ([`jwks`]), a cache of already-verified tokens ([`Authenticator`]), scopes ([`Scope`]), and
//! the local development signing key ([`dev`]).
//!
//! Must not import actix: the HTTP layer extracts the header and calls [`Authenticator::authenticate`].

pub mod dev;
pub mod jwks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

use crate::ledger::ids::TenantId;
pub use jwks::{JwksSource, KeyStore};

/// An operation's permission (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Scope {
    /// POST /v1/disbursements.
    DisbursementsWrite = 1,
    /// POST /v1/payments.
    PaymentsWrite = 2,
    /// POST /v1/fees.
    FeesWrite = 4,
    /// POST /v1/reversals.
    ReversalsWrite = 8,
    /// POST /v1/accruals/batch.
    AccrualsWrite = 16,
    /// GET balances.
    BalancesRead = 32,
    /// GET journal entries, events.
    LedgerRead = 64,
    /// GET /v1/reconciliation/status.
    ReconciliationRead = 128,
    /// POST /v1/charge-offs.
    ChargeoffsWrite = 256,
    /// POST /v1/adjustments.
    AdjustmentsWrite = 512,
    /// POST /v1/period-closes.
    PeriodsWrite = 1024,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 11] = [
        Scope::DisbursementsWrite,
        Scope::PaymentsWrite,
        Scope::FeesWrite,
        Scope::ReversalsWrite,
        Scope::AccrualsWrite,
        Scope::BalancesRead,
        Scope::LedgerRead,
        Scope::ReconciliationRead,
        Scope::ChargeoffsWrite,
        Scope::AdjustmentsWrite,
        Scope::PeriodsWrite,
    ];

    /// The scope string in tokens.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::DisbursementsWrite => "hpts:disbursements:write",
            Scope::PaymentsWrite => "hpts:payments:write",
            Scope::FeesWrite => "hpts:fees:write",
            Scope::ReversalsWrite => "hpts:reversals:write",
            Scope::AccrualsWrite => "hpts:accruals:write",
            Scope::BalancesRead => "hpts:balances:read",
            Scope::LedgerRead => "hpts:ledger:read",
            Scope::ReconciliationRead => "hpts:reconciliation:read",
            Scope::ChargeoffsWrite => "hpts:chargeoffs:write",
            Scope::AdjustmentsWrite => "hpts:adjustments:write",
            Scope::PeriodsWrite => "hpts:periods:write",
        }
    }

    /// Parses a scope string; unknown scopes are ignored by callers.
    pub fn parse(s: &str) -> Option<Self> {
        Scope::ALL.into_iter().find(|sc| sc.as_str() == s)
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u16);

impl Scopes {
    /// Builds the set from scope strings, ignoring unknown ones.
    pub fn from_strs<'a>(items: impl IntoIterator<Item = &'a str>) -> Self {
        Scopes(
            items
                .into_iter()
                .filter_map(Scope::parse)
                .fold(0, |acc, s| acc | s as u16),
        )
    }

    /// True if the set holds `scope`.
    pub const fn contains(self, scope: Scope) -> bool {
        self.0 & scope as u16 != 0
    }
}

/// The verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Tenant from the `tenant_id` claim.
    pub tenant: TenantId,
    /// `sub`, if present.
    pub subject: Option<String>,
    /// Granted scopes.
    pub scopes: Scopes,
    /// `exp` (seconds since the epoch).
    pub expires_at: u64,
}

/// Why a token was refused (all answer 401; the reason is logged, never returned in detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is not acceptable.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Auth settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Expected `aud`.
    pub audience: String,
    /// Where the JWKS comes from.
    pub jwks: JwksSource,
    /// Allowed algorithms (subset of RS256, ES256, `EdDSA`).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`/`nbf`, seconds.
    pub leeway_seconds: u64,
    /// Minimum time between two JWKS refreshes triggered by unknown `kid`s.
    pub refresh_min_interval: Duration,
}

#[derive(Debug, Deserialize)]
struct Claims {
    tenant_id: Option<serde_json::Value>,
    sub: Option<String>,
    scope: Option<serde_json::Value>,
    scp: Option<serde_json::Value>,
    exp: u64,
}

const TOKEN_CACHE_CAPACITY: usize = 65_536;

/// Verifies bearer tokens; caches verified tokens until they expire.
pub struct Authenticator {
    settings: AuthSettings,
    keys: KeyStore,
    cache: parking_lot::RwLock<HashMap<String, Principal>>,
}

fn unix_now() -> u64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "JWT expiry is wall-clock by definition"
    )]
    let now = SystemTime::now();
    now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Authenticator {
    /// Builds the authenticator and loads the JWKS once (an unreachable URL is retried later).
    pub async fn new(settings: AuthSettings) -> Result<Arc<Self>, String> {
        let keys = KeyStore::new(settings.jwks.clone(), settings.refresh_min_interval)?;
        if let Err(e) = keys.refresh(true).await {
            match &settings.jwks {
                JwksSource::File(_) => return Err(e),
                JwksSource::Url(_) => {
                    tracing::warn!(error = %e, "JWKS not loaded at start; will retry on demand");
                }
            }
        }
        Ok(Arc::new(Authenticator {
            settings,
            keys,
            cache: parking_lot::RwLock::new(HashMap::new()),
        }))
    }

    /// Verifies `Authorization` header value `Bearer <jwt>` (scheme in any case, RFC 9110).
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let token = header.and_then(bearer_token).ok_or(AuthError::Missing)?;
        let now = unix_now();
        if let Some(p) = self.cache.read().get(token)
            && p.expires_at > now.saturating_sub(self.settings.leeway_seconds)
        {
            return Ok(p.clone());
        }
        let principal = self.verify(token).await?;
        let mut cache = self.cache.write();
        if cache.len() >= TOKEN_CACHE_CAPACITY {
            cache.retain(|_, p| p.expires_at > now);
            if cache.len() >= TOKEN_CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), principal.clone());
        Ok(principal)
    }

    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        refuse_critical_extensions(token)?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::Invalid(format!("header: {e}")))?;
        if !self.settings.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} not allowed",
                header.alg
            )));
        }
        let key = self
            .keys
            .find(header.kid.as_deref(), header.alg)
            .await
            .ok_or_else(|| AuthError::Invalid("no matching key".into()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = self.settings.leeway_seconds;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| AuthError::Invalid(format!("{e}")))?;
        let claims = data.claims;
        let tenant = claims
            .tenant_id
            .as_ref()
            .and_then(serde_json::Value::as_str)
            .and_then(TenantId::parse)
            .ok_or_else(|| AuthError::Invalid("tenant_id claim missing or not a UUID".into()))?;
        let mut scope_strs: Vec<&str> = Vec::new();
        if let Some(serde_json::Value::String(s)) = &claims.scope {
            scope_strs.extend(s.split(' '));
        }
        if let Some(serde_json::Value::Array(items)) = &claims.scp {
            scope_strs.extend(items.iter().filter_map(serde_json::Value::as_str));
        }
        if let Some(serde_json::Value::String(s)) = &claims.scp {
            scope_strs.extend(s.split(' '));
        }
        Ok(Principal {
            tenant,
            subject: claims.sub,
            scopes: Scopes::from_strs(scope_strs),
            expires_at: claims.exp,
        })
    }
}

/// The token of an `Authorization` value `<scheme> <token>` whose scheme is `Bearer` in any
/// letter case (RFC 9110 §11.1: auth schemes are case-insensitive), separated by one or more
/// spaces. `None` for another scheme or an empty token.
pub fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, rest) = header.split_once(' ')?;
    let token = rest.trim_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Refuses a JWS whose protected header has a `crit` member (RFC 7515 §4.1.11): `crit` names
/// extensions the recipient must understand, and this service understands none. The header is
/// read here as plain JSON, so any `crit` value counts (`null`, `[]`, a string), whatever a JWT
/// library's header type would make of it.
fn refuse_critical_extensions(token: &str) -> Result<(), AuthError> {
    use base64::Engine;
    let segment = token.split('.').next().unwrap_or_default();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| AuthError::Invalid(format!("header is not base64url: {e}")))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&json)
        .map_err(|e| AuthError::Invalid(format!("header is not a JSON object: {e}")))?;
    if header.contains_key("crit") {
        return Err(AuthError::Invalid(
            "header names critical extensions (crit); none is understood".into(),
        ));
    }
    Ok(())
}

/// Parses `HPTS_AUTH_ALGORITHMS` (comma-separated); only RS256, ES256 and `EdDSA` are allowed.
pub fn parse_algorithms(s: &str) -> Result<Vec<Algorithm>, String> {
    let mut out = Vec::new();
    for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        out.push(match name {
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            "EdDSA" => Algorithm::EdDSA,
            other => {
                return Err(format!(
                    "algorithm {other} is not allowed (allowed: RS256, ES256, EdDSA)"
                ));
            }
        });
    }
    if out.is_empty() {
        return Err("at least one algorithm is required".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for header in [
            "Bearer abc",
            "bearer abc",
            "BEARER abc",
            "bEaReR abc",
            "Bearer   abc  ",
        ] {
            assert_eq!(bearer_token(header), Some("abc"), "{header:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        for header in [
            "Basic abc",
            "Bearerabc",
            "Bearer",
            "Bearer ",
            "Bearer    ",
            "abc",
            "Token abc",
            "",
            " Bearer abc",
        ] {
            assert_eq!(bearer_token(header), None, "{header:?}");
        }
    }

    fn token_with_header(header: &serde_json::Value) -> String {
        use base64::Engine;
        let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        format!(
            "{}.{}.sig",
            b64(&serde_json::to_vec(header).expect("json")),
            b64(b"{}")
        )
    }

    #[test]
    fn a_header_with_crit_is_refused_whatever_its_value() {
        for crit in [
            serde_json::json!(["exp"]),
            serde_json::json!([]),
            serde_json::json!(null),
            serde_json::json!("b64"),
        ] {
            let token = token_with_header(&serde_json::json!({ "alg": "EdDSA", "crit": crit }));
            assert!(refuse_critical_extensions(&token).is_err(), "{crit}");
        }
        let plain = token_with_header(&serde_json::json!({ "alg": "EdDSA", "kid": "k" }));
        assert_eq!(refuse_critical_extensions(&plain), Ok(()));
    }
}
