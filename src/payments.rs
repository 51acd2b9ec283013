//! Card payments through Stripe's REST API (PaymentIntents, Refunds) and the verification
//! of Stripe's webhook signatures. No SDK: form-encoded requests with `reqwest`, JSON
//! answers read with serde. The API base URL is configurable, so tests and CI talk to
//! localstripe (a fake, stateful Stripe server) on loopback.
//!
//! Sources: Stripe API reference, "PaymentIntents" (`POST /v1/payment_intents`,
//! `GET /v1/payment_intents/{id}`), "Refunds" (`POST /v1/refunds`), "Idempotent requests"
//! (`Idempotency-Key` header) and "Check the webhook signatures" (`Stripe-Signature:
//! t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">`, 5 minute tolerance).

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::time::Duration;

/// Default API base.
pub const STRIPE_API: &str = "https://api.stripe.com";
/// How old a signed webhook may be (seconds), as Stripe's own libraries allow.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// Why a Stripe call failed.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error object (card declined, invalid request, …).
    #[error("Stripe: {message}")]
    Api {
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// Stripe could not be reached or answered something unreadable.
    #[error("Stripe is unreachable: {0}")]
    Transport(String),
}

/// A PaymentIntent as Souk needs it.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// Lower-case ISO 4217 (Stripe's form).
    pub currency: String,
    /// `requires_payment_method`, `requires_confirmation`, `requires_action`,
    /// `processing`, `succeeded`, `canceled`.
    pub status: String,
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// A refund.
#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub status: String,
}

/// A Stripe client for one store's secret key.
#[derive(Clone)]
pub struct Stripe {
    http: reqwest::Client,
    base: String,
    secret: String,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Stripe({})", self.base)
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorObject,
}
#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl Stripe {
    /// A client for `secret` (`sk_…`) against `base` (e.g. [`STRIPE_API`]).
    pub fn new(base: &str, secret: &str) -> Result<Self, StripeError> {
        crate::webhooks::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| StripeError::Transport(e.to_string()))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_string(),
            secret: secret.to_string(),
        })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.secret);
        if !form.is_empty() {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
                .finish();
            req = req
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let res = req
            .send()
            .await
            .map_err(|e| StripeError::Transport(e.to_string()))?;
        let status = res.status().as_u16();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| StripeError::Transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            let e: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
            return Err(StripeError::Api {
                status,
                code: e.as_ref().and_then(|e| e.error.code.clone()),
                message: e
                    .and_then(|e| e.error.message)
                    .unwrap_or_else(|| format!("HTTP {status}")),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| StripeError::Transport(format!("unreadable answer: {e}")))
    }

    /// Creates a PaymentIntent of `amount` minor units of `currency` (ISO 4217, any
    /// case), with `metadata` pairs. `idempotency_key` makes a retry return the same one.
    pub async fn create_payment_intent(
        &self,
        amount: i64,
        currency: &str,
        metadata: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<PaymentIntent, StripeError> {
        let mut form = vec![
            ("amount", amount.to_string()),
            ("currency", currency.to_ascii_lowercase()),
            ("payment_method_types[]", "card".to_string()),
        ];
        let keys: Vec<String> = metadata
            .iter()
            .map(|(k, _)| format!("metadata[{k}]"))
            .collect();
        for (k, (_, v)) in keys.iter().zip(metadata) {
            form.push((k.as_str(), v.clone()));
        }
        self.call(
            reqwest::Method::POST,
            "/v1/payment_intents",
            &form,
            Some(idempotency_key),
        )
        .await
    }

    /// Changes the amount of a PaymentIntent not yet paid (the cart changed).
    pub async fn update_payment_intent_amount(
        &self,
        id: &str,
        amount: i64,
    ) -> Result<PaymentIntent, StripeError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/payment_intents/{id}"),
            &[("amount", amount.to_string())],
            None,
        )
        .await
    }

    /// Reads a PaymentIntent.
    pub async fn payment_intent(&self, id: &str) -> Result<PaymentIntent, StripeError> {
        self.call(
            reqwest::Method::GET,
            &format!("/v1/payment_intents/{id}"),
            &[],
            None,
        )
        .await
    }

    /// Refunds `amount` minor units of a PaymentIntent's charge.
    pub async fn refund(
        &self,
        payment_intent: &str,
        amount: i64,
        idempotency_key: &str,
    ) -> Result<Refund, StripeError> {
        self.call(
            reqwest::Method::POST,
            "/v1/refunds",
            &[
                ("payment_intent", payment_intent.to_string()),
                ("amount", amount.to_string()),
            ],
            Some(idempotency_key),
        )
        .await
    }
}

/// Why a webhook signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header is malformed (expected t=…,v1=…)")]
    Malformed,
    #[error("the Stripe-Signature timestamp is outside the 5 minute tolerance")]
    Expired,
    #[error("no v1 signature in Stripe-Signature matches the payload")]
    Mismatch,
}

/// Verifies `Stripe-Signature` over the raw `payload` with the endpoint's signing secret
/// (`whsec_…`), at time `now` (Unix seconds). Any of several `v1` signatures may match
/// (secret rotation).
pub fn verify_signature(
    header: Option<&str>,
    payload: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut sigs = vec![];
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => sigs.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Expired);
    }
    for sig in sigs {
        let Ok(raw) = hex_decode(&sig) else { continue };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        if mac.verify_slice(&raw).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The `Stripe-Signature` header for `payload` at `t` (tests and tools).
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={sig}")
}

fn hex_decode(s: &str) -> Result<Vec<u8>, ()> {
    if !s.len().is_multiple_of(2) {
        return Err(());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or(())?, 16).map_err(|_| ()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_refuse_tampering_age_and_garbage() {
        let secret = "whsec_test";
        let body = br#"{"id":"evt_1"}"#;
        let h = sign(body, secret, 1_700_000_000);
        assert_eq!(
            verify_signature(Some(&h), body, secret, 1_700_000_010),
            Ok(())
        );
        assert_eq!(
            verify_signature(Some(&h), br#"{"id":"evt_2"}"#, secret, 1_700_000_010),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&h), body, secret, 1_700_001_000),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify_signature(None, body, secret, 0),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(Some("garbage"), body, secret, 0),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(Some(&h), body, "whsec_other", 1_700_000_010),
            Err(SignatureError::Mismatch)
        );
    }
}
