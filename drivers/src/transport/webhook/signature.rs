//! Standard Webhooks signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
//!
//! Receivers check the signature to know the request came from us and was not altered or
//! replayed with another timestamp. During key rotation the header carries one signature per
//! secret, space-separated, so a receiver holding either the old or the new secret accepts it.
//! See <https://www.standardwebhooks.com/> (symmetric `v1` scheme).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Lenient decoder for secrets: some providers print them without `=` padding.
const SECRET_DECODER: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The version tag of the symmetric HMAC-SHA256 scheme.
const V1: &str = "v1,";

/// A signing secret, decoded from its `whsec_<base64>` form.
///
/// Kept as its own type so the key bytes never reach a log: `Debug` prints only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

/// Why a `whsec_…` secret could not be decoded. The message never contains the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret does not start with `whsec_`.
    #[error("a secret must start with \"whsec_\" followed by base64")]
    MissingPrefix,
    /// What follows `whsec_` is not standard base64.
    #[error("the part after \"whsec_\" is not valid base64")]
    InvalidBase64,
    /// The decoded key is shorter than Standard Webhooks asks for.
    #[error("the decoded key is {len} bytes; at least {min} are required (Standard Webhooks: 24 to 64)")]
    TooShort {
        /// Length of the decoded key.
        len: usize,
        /// The minimum.
        min: usize,
    },
}

impl WebhookSecret {
    /// Shortest accepted key: Standard Webhooks asks for 24 to 64 bytes (192 bits or more),
    /// and a short key makes the signature guessable.
    pub const MIN_KEY_LEN: usize = 24;
    /// The prefix of the textual form.
    pub const PREFIX: &'static str = "whsec_";

    /// Decodes `whsec_<base64>`, the form Standard Webhooks providers hand out.
    pub fn parse(secret: &str) -> Result<Self, SecretError> {
        let encoded = secret.strip_prefix(Self::PREFIX).ok_or(SecretError::MissingPrefix)?;
        let key = SECRET_DECODER.decode(encoded).map_err(|_| SecretError::InvalidBase64)?;
        if key.len() < Self::MIN_KEY_LEN {
            return Err(SecretError::TooShort {
                len: key.len(),
                min: Self::MIN_KEY_LEN,
            });
        }
        Ok(WebhookSecret { key })
    }

    /// The raw HMAC key, for [`sign`].
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for WebhookSecret {
    /// Shows the key length only: a secret must never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookSecret([redacted; {} bytes])", self.key.len())
    }
}

fn mac(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// One `v1,<base64>` signature of `{id}.{timestamp}.{body}` with `key`: what a receiver holding
/// this key recomputes to check that the request is ours and unaltered.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = mac(key, id, timestamp, body).finalize().into_bytes();
    let mut out = String::with_capacity(V1.len() + 44);
    out.push_str(V1);
    STANDARD.encode_string(tag, &mut out);
    out
}

/// The `webhook-signature` header value: one signature per secret, space-separated, so a
/// receiver that holds any one of the rotating secrets can verify.
pub fn signature_header(secrets: &[WebhookSecret], id: &str, timestamp: u64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s.key(), id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a `webhook-signature` header holds at least one `v1` signature made with one of
/// `secrets` over exactly this id, timestamp and body. For receivers (tests, the demo):
/// comparisons are constant-time. Checking that `timestamp` is recent is the caller's job.
pub fn verify(header: &str, secrets: &[WebhookSecret], id: &str, timestamp: u64, body: &[u8]) -> bool {
    let candidates: Vec<Vec<u8>> = header
        .split(' ')
        .filter_map(|sig| sig.strip_prefix(V1))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .collect();
    secrets.iter().any(|secret| {
        let expected = mac(secret.key(), id, timestamp, body);
        candidates
            .iter()
            .any(|candidate| expected.clone().verify_slice(candidate).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const OTHER: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TS: u64 = 1_649_367_553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    fn secret(s: &str) -> WebhookSecret {
        WebhookSecret::parse(s).unwrap()
    }

    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        assert_eq!(sign(secret(SECRET).key(), ID, TS, BODY), EXPECTED);
        assert_eq!(signature_header(&[secret(SECRET)], ID, TS, BODY), EXPECTED);
    }

    #[test]
    fn the_test_vector_verifies() {
        assert!(verify(EXPECTED, &[secret(SECRET)], ID, TS, BODY));
    }

    #[test]
    fn rotation_sends_one_signature_per_secret_and_each_verifies_alone() {
        let header = signature_header(&[secret(SECRET), secret(OTHER)], ID, TS, BODY);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2, "{header}");
        assert_eq!(parts[0], EXPECTED);
        assert!(parts[1].starts_with("v1,"));
        assert_ne!(parts[0], parts[1]);
        assert!(verify(&header, &[secret(SECRET)], ID, TS, BODY));
        assert!(verify(&header, &[secret(OTHER)], ID, TS, BODY));
        assert!(verify(parts[1], &[secret(OTHER)], ID, TS, BODY));
        assert!(!verify(parts[1], &[secret(SECRET)], ID, TS, BODY));
    }

    #[test]
    fn verify_rejects_a_wrong_secret_timestamp_id_or_body() {
        assert!(!verify(EXPECTED, &[secret(OTHER)], ID, TS, BODY));
        assert!(!verify(EXPECTED, &[secret(SECRET)], ID, TS + 1, BODY));
        assert!(!verify(EXPECTED, &[secret(SECRET)], "msg_other", TS, BODY));
        let tampered = br#"{"email":"evil@example.com","username":"test_user"}"#;
        assert!(!verify(EXPECTED, &[secret(SECRET)], ID, TS, tampered));
    }

    #[test]
    fn verify_rejects_malformed_headers_and_other_versions() {
        let s = [secret(SECRET)];
        for header in [
            "",
            "v1,",
            "v1,not base64!",
            "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v2,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1a,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kk",
        ] {
            assert!(!verify(header, &s, ID, TS, BODY), "{header:?}");
        }
        assert!(!verify(EXPECTED, &[], ID, TS, BODY));
    }

    #[test]
    fn verify_finds_a_good_signature_among_unknown_ones() {
        let header = format!("v1a,abc v1,AAAA {EXPECTED}");
        assert!(verify(&header, &[secret(SECRET)], ID, TS, BODY));
    }

    #[test]
    fn parse_rejects_malformed_secrets_without_echoing_them() {
        assert_eq!(
            WebhookSecret::parse("C2FVsBQIhrscChlQIMV+b5sSYspob7oD"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(WebhookSecret::parse("whsec_%%%%"), Err(SecretError::InvalidBase64));
        assert_eq!(
            WebhookSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::TooShort { len: 5, min: 24 })
        );
        let e = WebhookSecret::parse("whsec_!!secret-material!!").unwrap_err();
        assert!(!e.to_string().contains("secret-material"), "{e}");
    }

    #[test]
    fn parse_accepts_unpadded_base64() {
        let padded = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA==");
        let unpadded = secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwAA");
        assert_eq!(padded, unpadded);
    }

    #[test]
    fn debug_of_a_secret_shows_only_its_length() {
        let dbg = format!("{:?}", secret(SECRET));
        assert_eq!(dbg, "WebhookSecret([redacted; 24 bytes])");
    }
}
