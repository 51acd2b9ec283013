//! Outbound webhooks: signing ([`signature`]), SSRF guards ([`target`]) and the delivery
//! worker ([`Deliverer`]).
//!
//! Flow: the outbox dispatcher turns each published event into one pending delivery per
//! matching endpoint (`store::webhooks::fan_out_tx`, same transaction as the publish
//! stamp). The deliverer claims due deliveries with a lease, POSTs them concurrently
//! (bounded by a semaphore), and a single writer task records outcomes in batches, which
//! keeps SQLite's one writer busy with few large transactions instead of many small ones.
//!
//! Retry policy: timeouts, connection errors, 408, 429 and 5xx are retried on the
//! schedule in [`WebhookConfig::retry_schedule`] (default: at once, 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h, 10 h: 8 attempts over about 27 h) with ±10 % jitter, never sooner than
//! the response's `Retry-After`. 410 Gone fails the delivery and disables the endpoint.
//! Other answers (3xx: redirects are not followed; 4xx) fail the delivery without retry.
//! An endpoint whose attempts have all failed for [`WebhookConfig::disable_after`]
//! (default 5 days) is disabled and its tenant's owners are e-mailed.

pub mod signature;
pub mod target;

use crate::mail::EmailMessage;
use crate::store::webhooks::{self as store, DueDelivery, EndpointTarget, Outcome, Verdict};
use crate::store::{Db, now_micros};
use signature::SigningSecret;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use uuid::Uuid;

/// Webhook delivery settings.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Allow endpoints on loopback/private addresses and plain `http` (development, tests).
    pub allow_private: bool,
    /// Delay before each attempt; its length is the number of attempts.
    pub retry_schedule: Vec<Duration>,
    /// Disable an endpoint whose attempts have all failed for this long.
    pub disable_after: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    pub connect_timeout: Duration,
    /// Whole-request timeout (connect, send, response, body).
    pub timeout: Duration,
    /// How long a rotated-out secret keeps signing, unless the request says otherwise.
    pub rotation_overlap: Duration,
}

/// The default retry schedule in seconds (8 attempts).
pub const DEFAULT_SCHEDULE_SECS: [u64; 8] = [0, 5, 300, 1800, 7200, 18000, 36000, 36000];

/// Response bytes kept in the attempt log.
pub const RESPONSE_EXCERPT_BYTES: usize = 1024;
/// Response bytes read at most (the rest is not read).
pub const RESPONSE_READ_LIMIT: usize = 64 * 1024;

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_schedule: DEFAULT_SCHEDULE_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
            disable_after: Duration::from_secs(5 * 24 * 3600),
            concurrency: 128,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            rotation_overlap: Duration::from_secs(24 * 3600),
        }
    }
}

/// Installs the process's TLS crypto provider (ring) once; safe to call repeatedly.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The delivery worker.
#[derive(Clone)]
pub struct Deliverer {
    db: Db,
    client: reqwest::Client,
    config: Arc<WebhookConfig>,
    /// Wakes the worker early (the dispatcher created deliveries, or a redelivery).
    pub notify: Arc<Notify>,
    public_url: String,
    secret_box: Arc<crate::crypto::SecretBox>,
}

impl Deliverer {
    /// Builds the HTTP client: no redirects, no proxy, guarded DNS, the configured timeouts.
    pub fn new(
        db: Db,
        config: WebhookConfig,
        public_url: String,
        notify: Arc<Notify>,
        secret_box: Arc<crate::crypto::SecretBox>,
    ) -> Result<Self, String> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .user_agent(concat!("Souk-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(config.concurrency)
            .dns_resolver(Arc::new(target::GuardedResolver {
                allow_private: config.allow_private,
            }))
            .build()
            .map_err(|e| format!("webhook HTTP client: {e}"))?;
        Ok(Self {
            db,
            client,
            config: Arc::new(config),
            notify,
            public_url,
            secret_box,
        })
    }

    /// Delivers until `shutdown` flips; in-flight attempts finish and are recorded.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let (tx, rx) = mpsc::channel::<Outcome>(self.config.concurrency.max(1) * 2);
        let writer = tokio::spawn(self.clone().write_outcomes(rx));
        let lease = (self.config.timeout + Duration::from_secs(45)).as_micros() as i64;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = permits.available_permits();
            if free == 0 {
                tokio::select! {
                    p = permits.clone().acquire_owned() => drop(p),
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let claimed = match store::claim_due(
                &self.db,
                now_micros() + lease,
                free.min(500) as i64,
            )
            .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "webhook claim failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if claimed.is_empty() {
                tokio::select! {
                    _ = self.notify.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            let mut ids: Vec<Uuid> = claimed.iter().map(|d| d.endpoint_id).collect();
            ids.sort();
            ids.dedup();
            let targets: HashMap<Uuid, Arc<EndpointTarget>> =
                match store::targets(&self.db, &ids).await {
                    Ok(t) => t.into_iter().map(|t| (t.id, Arc::new(t))).collect(),
                    Err(e) => {
                        tracing::error!(error = %e, "webhook endpoint lookup failed");
                        continue;
                    }
                };
            let mut disabled = vec![];
            for d in claimed {
                let Some(t) = targets.get(&d.endpoint_id).filter(|t| t.enabled).cloned() else {
                    disabled.push(d.id);
                    continue;
                };
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                let (me, tx) = (self.clone(), tx.clone());
                tokio::spawn(async move {
                    let outcome = me.attempt(&t, &d).await;
                    let _ = tx.send(outcome).await;
                    drop(permit);
                });
            }
            if let Err(e) = store::fail_for_disabled(&self.db, &disabled).await {
                tracing::error!(error = %e, "could not fail deliveries of disabled endpoints");
            }
        }
        drop(tx);
        let _ = tokio::time::timeout(self.config.timeout + Duration::from_secs(5), writer).await;
    }

    /// Records outcomes in batches (up to 500, or whatever arrived within 20 ms).
    async fn write_outcomes(self, mut rx: mpsc::Receiver<Outcome>) {
        let disable_after = self.config.disable_after.as_micros() as i64;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            let deadline = tokio::time::Instant::now() + Duration::from_millis(20);
            while batch.len() < 500 {
                match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(o)) => batch.push(o),
                    _ => break,
                }
            }
            let public_url = self.public_url.clone();
            let res = store::record_outcomes(&self.db, &batch, disable_after, |d| {
                d.owners
                    .iter()
                    .map(|to| disabled_mail(to, &d.url, &public_url))
                    .collect()
            })
            .await;
            match res {
                Ok(disabled) => {
                    for d in disabled {
                        tracing::warn!(endpoint = %d.id, tenant = %d.tenant_id, url = %d.url, "webhook endpoint disabled after failing continuously");
                    }
                }
                // The leases expire and the deliveries are attempted again: at least once.
                Err(e) => {
                    tracing::error!(error = %e, n = batch.len(), "could not record webhook attempts")
                }
            }
        }
    }

    /// One HTTP attempt of `d` to `t`.
    async fn attempt(&self, t: &EndpointTarget, d: &DueDelivery) -> Outcome {
        let started_at = now_micros();
        let clock = Instant::now();
        let attempt = d.attempt_count + 1;
        let msg_id = d.event_id.to_string();
        let ts = started_at / 1_000_000;
        // Secrets are stored sealed (crate::crypto); a value that does not open is skipped.
        let unseal = |sealed: &str| {
            self.secret_box
                .open(sealed)
                .ok()
                .and_then(|text| SigningSecret::parse(&text).ok())
        };
        let mut secrets = vec![];
        if let Some(s) = unseal(&t.secret) {
            secrets.push(s);
        }
        if let (Some(prev), Some(until)) = (&t.previous_secret, t.previous_secret_expires_at)
            && until > started_at
            && let Some(s) = unseal(prev)
        {
            secrets.push(s);
        }
        let refs: Vec<&SigningSecret> = secrets.iter().collect();
        let signature = signature::signature_header(&refs, &msg_id, ts, d.payload.as_bytes());
        let headers = serde_json::json!({
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": ts.to_string(),
            "webhook-signature": signature,
        });
        let mut out = Outcome {
            delivery: d.id,
            tenant_id: d.tenant_id,
            endpoint_id: d.endpoint_id,
            attempt,
            next_step: d.retry_step,
            started_at,
            duration_ms: 0,
            request_headers: headers,
            response_status: None,
            response_body: None,
            error: None,
            verdict: Verdict::Failed,
        };
        if secrets.is_empty() {
            out.error = Some(
                "the endpoint's signing secret cannot be decrypted (was the platform signing secret changed?); rotate it"
                    .into(),
            );
            return out;
        }
        let url = match target::EndpointUrl::parse(&t.url, self.config.allow_private) {
            Ok(u) => u,
            Err(e) => {
                out.error = Some(format!("refused: {e}"));
                return out;
            }
        };
        let res = self
            .client
            .post(url.as_str())
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", &signature)
            .body(d.payload.clone())
            .send()
            .await;
        let (retryable, retry_after) = match res {
            Ok(mut resp) => {
                let status = resp.status();
                out.response_status = Some(status.as_u16());
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let (excerpt, read_err) = read_excerpt(&mut resp).await;
                out.response_body = Some(excerpt);
                let code = status.as_u16();
                if status.is_success() {
                    out.verdict = Verdict::Succeeded;
                    (false, None)
                } else if code == 410 {
                    out.verdict = Verdict::Gone;
                    out.error = Some("410 Gone: endpoint disabled".into());
                    (false, None)
                } else if status.is_redirection() {
                    out.error = Some(format!("{code}: redirects are not followed"));
                    (false, None)
                } else {
                    out.error = read_err.or_else(|| Some(format!("HTTP {code}")));
                    (
                        code == 408 || code == 429 || status.is_server_error(),
                        retry_after,
                    )
                }
            }
            Err(e) => {
                out.error = Some(describe(&e, &self.config));
                (true, None)
            }
        };
        out.duration_ms = clock.elapsed().as_millis() as i64;
        metrics::counter!("souk_webhook_attempts_total", "result" => match out.verdict {
            Verdict::Succeeded => "succeeded",
            _ => "failed",
        })
        .increment(1);
        metrics::histogram!("souk_webhook_attempt_seconds").record(clock.elapsed().as_secs_f64());
        if retryable {
            let next = d.retry_step + 1;
            if let Some(delay) = self.config.retry_schedule.get(next as usize) {
                let jitter = 0.9 + 0.2 * rand::random::<f64>();
                let mut wait = delay.mul_f64(jitter);
                if let Some(ra) = retry_after {
                    wait = wait.max(ra.min(Duration::from_secs(24 * 3600)));
                }
                out.next_step = next;
                out.verdict = Verdict::Retry(now_micros() + wait.as_micros() as i64);
            }
        }
        out
    }
}

/// `Retry-After` as delta-seconds or an HTTP date (RFC 9110 §10.2.3).
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = (when - time::OffsetDateTime::now_utc()).whole_seconds();
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Reads at most [`RESPONSE_READ_LIMIT`] bytes of the body and keeps the first
/// [`RESPONSE_EXCERPT_BYTES`] as (lossy) text.
async fn read_excerpt(resp: &mut reqwest::Response) -> (String, Option<String>) {
    let mut kept = Vec::new();
    let mut read = 0usize;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = RESPONSE_EXCERPT_BYTES.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if read >= RESPONSE_READ_LIMIT {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => return (lossy(&kept), Some(format!("reading the response: {e}"))),
        }
    }
    (lossy(&kept), None)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn describe(e: &reqwest::Error, c: &WebhookConfig) -> String {
    let mut msg = if e.is_timeout() {
        format!(
            "timed out (connect {} s, whole request {} s)",
            c.connect_timeout.as_secs(),
            c.timeout.as_secs()
        )
    } else if e.is_connect() {
        "connection failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn disabled_mail(to: &str, url: &str, public_url: &str) -> EmailMessage {
    EmailMessage {
        to: to.to_string(),
        to_name: None,
        subject: "A webhook endpoint was disabled".into(),
        text: format!(
            "Every delivery to your webhook endpoint\n\n  {url}\n\nhas failed for several days, so Souk has disabled it. \
             Deliveries made while it failed are kept: fix the endpoint, enable it again \
             (PATCH /api/v1/webhook-endpoints/{{id}} with {{\"enabled\": true}}) and redeliver \
             the failed ones (POST /api/v1/webhook-endpoints/{{id}}/redeliver).\n\n{public_url}/dashboard\n"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn default_schedule_is_eight_attempts_over_about_a_day() {
        let total: u64 = DEFAULT_SCHEDULE_SECS.iter().sum();
        assert_eq!(DEFAULT_SCHEDULE_SECS.len(), 8);
        assert!((20 * 3600..=30 * 3600).contains(&total), "{total}");
    }
}
