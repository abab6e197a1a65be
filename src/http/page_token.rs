//! Opaque, tamper-proof page tokens for keyset pagination. A token carries the posting sequence
//! of the last entry shown and an HMAC-SHA256 (keyed per database) over that position, the
//! tenant, the loan and the filters: a modified token, or one from another tenant, loan or
//! filter set, is 400 `invalid_page_token`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::problem::{ApiError, Code};

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8; 32], scope: &str, after_seq: i64) -> Vec<u8> {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(scope.as_bytes());
    m.update(b"\0");
    m.update(&after_seq.to_be_bytes());
    m.finalize().into_bytes()[..16].to_vec()
}

/// Makes the token for the page after `after_seq`. `scope` names tenant, resource and filters.
pub fn encode(key: &[u8; 32], scope: &str, after_seq: i64) -> String {
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(after_seq.to_be_bytes()),
        URL_SAFE_NO_PAD.encode(mac(key, scope, after_seq))
    )
}

/// Checks a token against `scope` and returns its position.
pub fn decode(key: &[u8; 32], scope: &str, token: &str) -> Result<i64, ApiError> {
    let invalid = || {
        ApiError::new(
            Code::InvalidPageToken,
            "page_token is not a token this listing issued",
        )
    };
    let (pos, sig) = token.split_once('.').ok_or_else(invalid)?;
    let pos: [u8; 8] = URL_SAFE_NO_PAD
        .decode(pos)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(invalid)?;
    let after_seq = i64::from_be_bytes(pos);
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| invalid())?;
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(scope.as_bytes());
    m.update(b"\0");
    m.update(&after_seq.to_be_bytes());
    m.verify_truncated_left(&sig).map_err(|_| invalid())?;
    if sig.len() != 16 {
        return Err(invalid());
    }
    Ok(after_seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_only_in_its_own_scope() {
        let key = [7u8; 32];
        let t = encode(&key, "tenant|loan|filters", 42);
        assert_eq!(decode(&key, "tenant|loan|filters", &t).expect("valid"), 42);
        assert!(decode(&key, "other|loan|filters", &t).is_err());
        assert!(decode(&[8u8; 32], "tenant|loan|filters", &t).is_err());
    }

    #[test]
    fn a_modified_token_is_refused() {
        let key = [7u8; 32];
        let t = encode(&key, "s", 42);
        let forged = encode(&[0u8; 32], "s", 43);
        let spliced = format!(
            "{}.{}",
            forged.split_once('.').expect("dot").0,
            t.split_once('.').expect("dot").1
        );
        assert!(decode(&key, "s", &spliced).is_err());
        assert!(decode(&key, "s", "garbage").is_err());
        assert!(decode(&key, "s", &t[..t.len() - 2]).is_err());
    }
}
