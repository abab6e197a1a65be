//! Opaque, tamper-proof page tokens for keyset pagination. A token carries the posting sequence
//! of the last entry shown, encrypted so that it reveals nothing (not the service-wide posting
//! sequence, not other tenants' volume), and authenticated together with the tenant, the loan
//! and the filters: a modified, truncated or foreign token is 400 `invalid_page_token`.
//!
//! Layout: `base64url(nonce ‖ ciphertext) "." base64url(tag)` (27 + 1 + 22 characters), where
//! - `nonce` is 12 random bytes, fresh for every token, so two tokens for one position differ;
//! - `ciphertext` is the position (`i64`, big-endian) XOR the first 8 bytes of
//!   `HMAC-SHA256(enc_key, "page-token-position" ‖ nonce)`;
//! - `tag` is the first 16 bytes of `HMAC-SHA256(mac_key, len(scope) ‖ scope ‖ nonce ‖
//!   ciphertext)` (encrypt-then-MAC; checked in constant time before anything is decrypted).
//!
//! `enc_key` and `mac_key` are derived from the per-database page-token key with distinct
//! labels, so the encryption and authentication keys are never the same key.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::problem::{ApiError, Code};

type HmacSha256 = Hmac<Sha256>;

const NONCE_LEN: usize = 12;
const POSITION_LEN: usize = 8;
const TAG_LEN: usize = 16;

/// Label deriving the key that hides the position.
const ENCRYPTION_LABEL: &[u8] = b"hpts page-token v2 encryption key";
/// Label deriving the key that authenticates the token.
const AUTHENTICATION_LABEL: &[u8] = b"hpts page-token v2 authentication key";
/// Domain separation of the keystream input.
const POSITION_DOMAIN: &[u8] = b"page-token-position";

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

fn keystream(key: &[u8; 32], nonce: &[u8]) -> [u8; POSITION_LEN] {
    let enc_key = hmac(key, &[ENCRYPTION_LABEL]);
    let block = hmac(&enc_key, &[POSITION_DOMAIN, nonce]);
    let mut out = [0u8; POSITION_LEN];
    out.copy_from_slice(&block[..POSITION_LEN]);
    out
}

fn tag_mac(key: &[u8; 32], scope: &str, nonce: &[u8], ciphertext: &[u8]) -> HmacSha256 {
    let mac_key = hmac(key, &[AUTHENTICATION_LABEL]);
    let mut m = <HmacSha256 as Mac>::new_from_slice(&mac_key).expect("HMAC takes any key length");
    // Length-prefixed, so no scope can run into the bytes after it.
    m.update(&(scope.len() as u64).to_be_bytes());
    m.update(scope.as_bytes());
    m.update(nonce);
    m.update(ciphertext);
    m
}

fn xor(a: [u8; POSITION_LEN], b: [u8; POSITION_LEN]) -> [u8; POSITION_LEN] {
    let mut out = [0u8; POSITION_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.into_iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// Makes the token for the page after `after_seq`. `scope` names tenant, resource and filters.
/// Fails only when the operating system has no randomness to give (500, logged).
pub fn encode(key: &[u8; 32], scope: &str, after_seq: i64) -> Result<String, ApiError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::internal(&e))?;
    Ok(seal(key, scope, after_seq, nonce))
}

fn seal(key: &[u8; 32], scope: &str, after_seq: i64, nonce: [u8; NONCE_LEN]) -> String {
    let ciphertext = xor(after_seq.to_be_bytes(), keystream(key, &nonce));
    let tag = tag_mac(key, scope, &nonce, &ciphertext)
        .finalize()
        .into_bytes();
    let mut sealed = Vec::with_capacity(NONCE_LEN + POSITION_LEN);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(sealed),
        URL_SAFE_NO_PAD.encode(&tag[..TAG_LEN])
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
    let (sealed, tag) = token.split_once('.').ok_or_else(invalid)?;
    let sealed = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| invalid())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
    if sealed.len() != NONCE_LEN + POSITION_LEN || tag.len() != TAG_LEN {
        return Err(invalid());
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    tag_mac(key, scope, nonce, ciphertext)
        .verify_truncated_left(&tag)
        .map_err(|_| invalid())?;
    let ciphertext: [u8; POSITION_LEN] = ciphertext.try_into().map_err(|_| invalid())?;
    Ok(i64::from_be_bytes(xor(ciphertext, keystream(key, nonce))))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7u8; 32];

    #[test]
    fn a_token_round_trips_only_in_its_own_scope() {
        let t = encode(&KEY, "tenant|loan|filters", 42).expect("token");
        assert_eq!(decode(&KEY, "tenant|loan|filters", &t).expect("valid"), 42);
        assert!(decode(&KEY, "other|loan|filters", &t).is_err());
        assert!(decode(&KEY, "tenant|loan|filters|", &t).is_err());
        assert!(decode(&[8u8; 32], "tenant|loan|filters", &t).is_err());
    }

    #[test]
    fn every_position_round_trips() {
        for seq in [0, 1, 2, 255, 256, 1 << 40, i64::MAX, -1, i64::MIN] {
            let t = encode(&KEY, "s", seq).expect("token");
            assert_eq!(decode(&KEY, "s", &t).expect("valid"), seq);
        }
    }

    #[test]
    fn two_tokens_for_the_same_position_differ() {
        let a = encode(&KEY, "s", 42).expect("token");
        let b = encode(&KEY, "s", 42).expect("token");
        assert_ne!(a, b);
        assert_eq!(decode(&KEY, "s", &a).expect("valid"), 42);
        assert_eq!(decode(&KEY, "s", &b).expect("valid"), 42);
    }

    /// The token's bytes: (nonce ‖ ciphertext, tag).
    fn parts(token: &str) -> (Vec<u8>, Vec<u8>) {
        let (sealed, tag) = token.split_once('.').expect("two parts");
        (
            URL_SAFE_NO_PAD.decode(sealed).expect("base64"),
            URL_SAFE_NO_PAD.decode(tag).expect("base64"),
        )
    }

    #[test]
    fn a_token_does_not_show_its_position() {
        let nonce = [3u8; NONCE_LEN];
        let token = seal(&KEY, "s", 1000, nonce);
        let plain = URL_SAFE_NO_PAD.encode(1000i64.to_be_bytes());
        assert!(!token.contains(&plain), "the position is not in the clear");
        let (sealed, tag) = parts(&token);
        assert_eq!(
            (sealed.len(), tag.len()),
            (NONCE_LEN + POSITION_LEN, TAG_LEN)
        );
        let ciphertext = &sealed[NONCE_LEN..];
        assert_ne!(
            ciphertext,
            1000i64.to_be_bytes(),
            "the position is encrypted"
        );
        // XOR under one keystream keeps differences between positions, which is why a nonce is
        // never reused: `encode` draws a fresh one for every token, and under another nonce the
        // same position gives an unrelated ciphertext.
        let (next, _) = parts(&seal(&KEY, "s", 1001, nonce));
        let changed_bits: u32 = ciphertext
            .iter()
            .zip(&next[NONCE_LEN..])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(
            changed_bits, 1,
            "one keystream keeps the one-bit difference"
        );
        let (other, _) = parts(&seal(&KEY, "s", 1000, [4u8; NONCE_LEN]));
        assert_ne!(ciphertext, &other[NONCE_LEN..]);
    }

    #[test]
    fn flipping_any_byte_of_a_token_is_refused() {
        let token = encode(&KEY, "s", 42).expect("token");
        let (sealed, tag) = parts(&token);
        let reassemble = |sealed: &[u8], tag: &[u8]| {
            format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(sealed),
                URL_SAFE_NO_PAD.encode(tag)
            )
        };
        assert_eq!(reassemble(&sealed, &tag), token);
        for bit in [0x01u8, 0x80] {
            for i in 0..sealed.len() {
                let mut forged = sealed.clone();
                forged[i] ^= bit;
                let err = decode(&KEY, "s", &reassemble(&forged, &tag)).expect_err("forged");
                assert_eq!(err.code, Code::InvalidPageToken, "sealed byte {i}");
            }
            for i in 0..tag.len() {
                let mut forged = tag.clone();
                forged[i] ^= bit;
                let err = decode(&KEY, "s", &reassemble(&sealed, &forged)).expect_err("forged");
                assert_eq!(err.code, Code::InvalidPageToken, "tag byte {i}");
            }
        }
    }

    #[test]
    fn truncated_extended_and_malformed_tokens_are_refused() {
        let t = encode(&KEY, "s", 42).expect("token");
        let dot = t.find('.').expect("dot");
        for bad in [
            t[..t.len() - 1].to_owned(),
            t[..t.len() - 4].to_owned(),
            format!("{t}A"),
            format!("{t}AAAA"),
            format!("{t}="),
            format!("A{t}"),
            t.replacen('.', "", 1),
            format!("{}.{}", &t[..dot], &t[..dot]),
            format!("{t}.{}", &t[dot + 1..]),
            String::new(),
            ".".to_owned(),
            "garbage".to_owned(),
        ] {
            assert!(decode(&KEY, "s", &bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_token_of_the_earlier_plain_format_is_refused() {
        // `base64url(seq) "." base64url(HMAC(key, scope ‖ 0 ‖ seq)[..16])`, as issued before
        // positions were encrypted.
        let mut m = <HmacSha256 as Mac>::new_from_slice(&KEY).expect("key");
        m.update(b"s\0");
        m.update(&42i64.to_be_bytes());
        let old = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(42i64.to_be_bytes()),
            URL_SAFE_NO_PAD.encode(&m.finalize().into_bytes()[..16])
        );
        assert!(decode(&KEY, "s", &old).is_err());
    }
}
