//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, spec v1).
//!
//! - Secret: `whsec_` followed by the base64 (standard alphabet) of the key bytes; Souk
//!   generates 32 random bytes. The HMAC key is the decoded bytes, not the text.
//! - Signed content: `"{webhook-id}.{webhook-timestamp}.{body}"`, timestamp in Unix seconds.
//! - `webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` entries, one per active
//!   secret (two during a secret rotation's overlap window).
//!
//! [`verify`] is the inbound helper: integrations calling Souk back sign the same way, and
//! Souk checks them with it (constant-time comparison, 5-minute timestamp tolerance).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{KeyInit, Mac};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// How far a timestamp may be from now, either way, before [`verify`] refuses it (seconds).
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// A signing secret: its key bytes (parsed from the `whsec_…` text) and the HMAC keyed
/// with them.
#[derive(Clone)]
pub struct SigningSecret {
    key: Vec<u8>,
    mac: HmacSha256,
}

impl PartialEq for SigningSecret {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

impl SigningSecret {
    fn from_key(key: Vec<u8>) -> Result<Self, String> {
        let mac = HmacSha256::new_from_slice(&key)
            .map_err(|_| "the signing secret cannot key HMAC-SHA256".to_string())?;
        Ok(Self { key, mac })
    }

    /// A new secret of 32 random bytes. Errors: none in practice (HMAC takes any key
    /// length); kept as a `Result` rather than a panic.
    pub fn generate() -> Result<Self, String> {
        let mut key = vec![0u8; 32];
        rand::fill(&mut key[..]);
        Self::from_key(key)
    }

    /// Parses `whsec_<base64>`. Errors: missing prefix, bad base64, or fewer than 24 bytes.
    pub fn parse(text: &str) -> Result<Self, String> {
        let b64 = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or_else(|| format!("a signing secret starts with {SECRET_PREFIX}"))?;
        let key = B64
            .decode(b64)
            .map_err(|_| "the signing secret is not valid base64".to_string())?;
        if key.len() < 24 {
            return Err("a signing secret holds at least 24 bytes".into());
        }
        Self::from_key(key)
    }

    /// The `whsec_…` text (shown to the merchant once, stored sealed server-side).
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.key))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header value: one `v1,…` entry per secret, space-separated.
pub fn signature_header(
    secrets: &[&SigningSecret],
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why an inbound webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("missing or empty header {0}")]
    MissingHeader(&'static str),
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    #[error("webhook-timestamp is more than 5 minutes away from now")]
    TimestampOutOfTolerance,
    #[error("no v1 signature matches")]
    NoMatchingSignature,
}

/// Verifies an inbound webhook signed per Standard Webhooks with any of `secrets`.
///
/// `id`, `timestamp` and `signature` are the raw `webhook-id`, `webhook-timestamp` and
/// `webhook-signature` header values; `now` is Unix seconds. Entries with another version
/// than `v1` are ignored. Errors: see [`VerifyError`].
pub fn verify(
    secrets: &[&SigningSecret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let id = id
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader("webhook-id"))?;
    let ts_raw = timestamp
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader("webhook-timestamp"))?;
    let signature = signature
        .filter(|s| !s.is_empty())
        .ok_or(VerifyError::MissingHeader("webhook-signature"))?;
    let ts: i64 = ts_raw
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    if (now - ts).abs() > TOLERANCE_SECS {
        return Err(VerifyError::TimestampOutOfTolerance);
    }
    let candidates: Vec<Vec<u8>> = signature
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|b64| B64.decode(b64).ok())
        .collect();
    for secret in secrets {
        let mut mac = secret.mac.clone();
        mac.update(format!("{id}.{ts}.").as_bytes());
        mac.update(body);
        for c in &candidates {
            // `verify_slice` compares in constant time.
            if mac.clone().verify_slice(c).is_ok() {
                return Ok(());
            }
        }
    }
    Err(VerifyError::NoMatchingSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specs_reference_library_both_ways() {
        // The spec's own Rust library is an independent implementation.
        let secret = SigningSecret::generate().unwrap();
        let text = secret.to_text();
        let wh = standardwebhooks::Webhook::new(&text).unwrap();
        let body = br#"{"type":"order.created","data":{"id":1}}"#;
        let ts = time::OffsetDateTime::now_utc().unix_timestamp();
        // Ours signs, theirs verifies.
        let sig = signature_header(&[&secret], "msg_1", ts, body);
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("webhook-id", "msg_1".parse().unwrap());
        headers.insert("webhook-timestamp", ts.to_string().parse().unwrap());
        headers.insert("webhook-signature", sig.parse().unwrap());
        wh.verify(body, &headers).unwrap();
        // Theirs signs, ours verifies.
        let theirs = wh.sign("msg_2", ts, body).unwrap();
        verify(
            &[&secret],
            Some("msg_2"),
            Some(&ts.to_string()),
            Some(&theirs),
            body,
            ts,
        )
        .unwrap();
        // A tampered body fails both.
        assert_eq!(
            verify(
                &[&secret],
                Some("msg_2"),
                Some(&ts.to_string()),
                Some(&theirs),
                b"{}",
                ts
            ),
            Err(VerifyError::NoMatchingSignature)
        );
        assert!(wh.verify(b"{}", &headers).is_err());
    }

    #[test]
    fn rotation_signs_with_both_and_either_verifies() {
        let (old, new) = (
            SigningSecret::generate().unwrap(),
            SigningSecret::generate().unwrap(),
        );
        let sig = signature_header(&[&new, &old], "m", 100, b"x");
        assert_eq!(sig.split(' ').count(), 2);
        for s in [&old, &new] {
            verify(&[s], Some("m"), Some("100"), Some(&sig), b"x", 100).unwrap();
        }
    }

    #[test]
    fn refuses_bad_input() {
        let s = SigningSecret::generate().unwrap();
        let sig = s.sign("m", 1000, b"x");
        assert_eq!(
            verify(&[&s], Some("m"), Some("1000"), Some(&sig), b"x", 1000 + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            verify(&[&s], Some("m"), Some("soon"), Some(&sig), b"x", 1000),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify(&[&s], None, Some("1000"), Some(&sig), b"x", 1000),
            Err(VerifyError::MissingHeader("webhook-id"))
        );
        assert!(SigningSecret::parse("abc").is_err());
        assert!(SigningSecret::parse("whsec_!!").is_err());
        assert!(SigningSecret::parse("whsec_c2hvcnQ=").is_err());
        assert_eq!(SigningSecret::parse(&s.to_text()).unwrap(), s);
    }
}
