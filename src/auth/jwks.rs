//! The issuer's JSON Web Key Set, from a file or an HTTP(S) URL, cached by `kid`. An unknown
//! `kid` triggers one refresh, at most once per `refresh_min_interval`, so a flood of forged
//! kids cannot hammer the issuer. If the issuer is down, the keys already cached keep working.
//! A key whose `use` is not `sig`, or whose `key_ops` lack `verify`, is never loaded, so it can
//! never verify a token.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Where the JWKS is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A local JSON file.
    File(PathBuf),
    /// An `https://` or `http://` URL.
    Url(String),
}

impl JwksSource {
    /// URL if it starts with `http://` or `https://`, a file path otherwise.
    pub fn parse(s: &str) -> Self {
        if s.starts_with("https://") || s.starts_with("http://") {
            JwksSource::Url(s.to_owned())
        } else {
            JwksSource::File(PathBuf::from(s))
        }
    }
}

#[derive(Clone)]
struct CachedKey {
    key: DecodingKey,
    alg: Option<Algorithm>,
}

/// The cached key set.
pub struct KeyStore {
    source: JwksSource,
    client: reqwest::Client,
    min_interval: Duration,
    keys: parking_lot::RwLock<HashMap<String, CachedKey>>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

/// Whether a JWK may verify signatures (RFC 7517 §4.2, §4.3): a `use` other than `sig`, or
/// `key_ops` without `verify`, rules the key out. A key that states neither may verify.
fn may_verify(jwk: &Jwk) -> bool {
    let use_ok = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|u| matches!(u, PublicKeyUse::Signature));
    let ops_ok = jwk
        .common
        .key_operations
        .as_ref()
        .is_none_or(|ops| ops.iter().any(|op| matches!(op, KeyOperations::Verify)));
    use_ok && ops_ok
}

fn key_alg(jwk: &Jwk) -> Option<Algorithm> {
    jwk.common
        .key_algorithm
        .and_then(|a| a.to_string().parse().ok())
}

impl KeyStore {
    /// An empty store for `source`.
    pub fn new(source: JwksSource, min_interval: Duration) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(KeyStore {
            source,
            client,
            min_interval,
            keys: parking_lot::RwLock::new(HashMap::new()),
            last_refresh: tokio::sync::Mutex::new(None),
        })
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let text = match &self.source {
            JwksSource::File(path) => tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read JWKS file {}: {e}", path.display()))?,
            JwksSource::Url(url) => {
                let resp = self
                    .client
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| format!("JWKS fetch failed: {e}"))?;
                if !resp.status().is_success() {
                    return Err(format!("JWKS fetch answered {}", resp.status()));
                }
                resp.text()
                    .await
                    .map_err(|e| format!("JWKS fetch failed: {e}"))?
            }
        };
        serde_json::from_str(&text).map_err(|e| format!("JWKS is not a valid key set: {e}"))
    }

    /// Reloads the key set (rate-limited unless `force`). Keeps the old keys on failure.
    pub async fn refresh(&self, force: bool) -> Result<(), String> {
        let mut last = self.last_refresh.lock().await;
        if !force && last.is_some_and(|t| t.elapsed() < self.min_interval) {
            return Ok(());
        }
        *last = Some(Instant::now());
        let set = self.fetch().await?;
        let mut keys = HashMap::new();
        for (i, jwk) in set.keys.iter().enumerate() {
            if !may_verify(jwk) {
                tracing::warn!(
                    kid = jwk.common.key_id.as_deref().unwrap_or_default(),
                    "skipping JWK not meant for verifying signatures (use/key_ops)"
                );
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    let kid = jwk.common.key_id.clone().unwrap_or_else(|| format!("#{i}"));
                    keys.insert(
                        kid,
                        CachedKey {
                            key,
                            alg: key_alg(jwk),
                        },
                    );
                }
                Err(e) => tracing::warn!(error = %e, "skipping unusable JWK"),
            }
        }
        tracing::info!(keys = keys.len(), "JWKS loaded");
        *self.keys.write() = keys;
        Ok(())
    }

    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let keys = self.keys.read();
        let found = match kid {
            Some(kid) => keys.get(kid),
            // Without a kid, only an unambiguous single-key set is usable.
            None if keys.len() == 1 => keys.values().next(),
            None => None,
        }?;
        // A key that names its algorithm is only used with that algorithm.
        if found.alg.is_some_and(|a| a != alg) {
            return None;
        }
        Some(found.key.clone())
    }

    /// The key for `kid`, refreshing once (rate-limited) if it is unknown.
    pub async fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        if let Some(k) = self.lookup(kid, alg) {
            return Some(k);
        }
        if let Err(e) = self.refresh(false).await {
            tracing::warn!(error = %e, "JWKS refresh failed; keeping cached keys");
        }
        self.lookup(kid, alg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk(extra: &serde_json::Value) -> Jwk {
        let mut key = serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "kid": "k",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
        });
        for (name, value) in extra.as_object().expect("object") {
            key[name] = value.clone();
        }
        serde_json::from_value(key).expect("a JWK")
    }

    #[test]
    fn a_signing_key_or_one_that_says_nothing_may_verify() {
        for extra in [
            serde_json::json!({}),
            serde_json::json!({ "use": "sig" }),
            serde_json::json!({ "key_ops": ["verify"] }),
            serde_json::json!({ "key_ops": ["sign", "verify"] }),
            serde_json::json!({ "use": "sig", "key_ops": ["verify"] }),
        ] {
            assert!(may_verify(&jwk(&extra)), "{extra}");
        }
    }

    #[test]
    fn an_encryption_key_or_one_without_verify_never_verifies() {
        for extra in [
            serde_json::json!({ "use": "enc" }),
            serde_json::json!({ "use": "other" }),
            serde_json::json!({ "key_ops": [] }),
            serde_json::json!({ "key_ops": ["sign"] }),
            serde_json::json!({ "key_ops": ["encrypt", "wrapKey"] }),
            serde_json::json!({ "use": "enc", "key_ops": ["verify"] }),
            serde_json::json!({ "use": "sig", "key_ops": ["sign"] }),
        ] {
            assert!(!may_verify(&jwk(&extra)), "{extra}");
        }
    }
}
