//! The local development signing key used by `hpts serve --dev` and `hpts token`: an Ed25519 key
//! generated once under the data directory (`dev-signing-key.pem`, mode 0600) with its public
//! JWKS beside it (`dev-jwks.json`). Never used unless `--dev` is given.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

/// Issuer of dev tokens.
pub const DEV_ISSUER: &str = "hpts-dev";
/// Audience of dev tokens.
pub const DEV_AUDIENCE: &str = "hpts";

/// A loaded dev key.
pub struct DevKey {
    signing: SigningKey,
    kid: String,
    /// Path of the public JWKS file.
    pub jwks_path: PathBuf,
}

fn kid_of(signing: &SigningKey) -> String {
    hex::encode(&Sha256::digest(signing.verifying_key().as_bytes())[..8])
}

/// The public JWKS document for a signing key.
pub fn jwks_json(signing: &SigningKey, kid: &str) -> serde_json::Value {
    serde_json::json!({
        "keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "alg": "EdDSA",
            "use": "sig",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(signing.verifying_key().as_bytes()),
        }]
    })
}

/// The PKCS#8 DER of a signing key, as jsonwebtoken's `EncodingKey::from_ed_der` wants it.
pub fn encoding_key(signing: &SigningKey) -> Result<EncodingKey, String> {
    let der = signing
        .to_pkcs8_der()
        .map_err(|e| format!("cannot encode key: {e}"))?;
    Ok(EncodingKey::from_ed_der(der.as_bytes()))
}

/// A fresh random Ed25519 key.
pub fn generate_signing_key() -> Result<SigningKey, String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    Ok(SigningKey::from_bytes(&seed))
}

impl DevKey {
    /// Loads the dev key from `dir`, creating key and JWKS on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let key_path = dir.join("dev-signing-key.pem");
        let jwks_path = dir.join("dev-jwks.json");
        let signing = if key_path.exists() {
            let pem = std::fs::read_to_string(&key_path)
                .map_err(|e| format!("cannot read {}: {e}", key_path.display()))?;
            SigningKey::from_pkcs8_pem(&pem)
                .map_err(|e| format!("{} is not an Ed25519 key: {e}", key_path.display()))?
        } else {
            let signing = generate_signing_key()?;
            let pem = signing
                .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
                .map_err(|e| format!("cannot encode key: {e}"))?;
            write_private(&key_path, pem.as_bytes())?;
            signing
        };
        let kid = kid_of(&signing);
        let jwks =
            serde_json::to_vec_pretty(&jwks_json(&signing, &kid)).map_err(|e| e.to_string())?;
        std::fs::write(&jwks_path, jwks)
            .map_err(|e| format!("cannot write {}: {e}", jwks_path.display()))?;
        Ok(DevKey {
            signing,
            kid,
            jwks_path,
        })
    }

    /// Mints a dev token for `tenant` with space-separated `scopes`, valid for `ttl_seconds`.
    pub fn mint(
        &self,
        tenant: &str,
        scopes: &str,
        ttl_seconds: u64,
        subject: &str,
        now_unix: u64,
    ) -> Result<String, String> {
        let claims = serde_json::json!({
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": subject,
            "tenant_id": tenant,
            "scope": scopes,
            "iat": now_unix,
            "nbf": now_unix,
            "exp": now_unix + ttl_seconds,
        });
        sign(&self.signing, &self.kid, &claims)
    }
}

/// Signs arbitrary claims with an Ed25519 key (`EdDSA`, with `kid`).
pub fn sign(signing: &SigningKey, kid: &str, claims: &serde_json::Value) -> Result<String, String> {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &encoding_key(signing)?)
        .map_err(|e| format!("cannot sign: {e}"))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    file.write_all(bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Parses a TTL such as `90s`, `15m`, `1h`, `7d` or a bare number of seconds.
pub fn parse_ttl(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("invalid ttl {s:?}"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("invalid ttl unit in {s:?} (use s, m, h or d)")),
    };
    n.checked_mul(mult)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid ttl {s:?}"))
}
