//! Custom domains that verify themselves and get certificates (issue 16).
//!
//! Lifecycle (ARCHITECTURE.md, "Domain lifecycle"): a merchant adds a domain → `pending`
//! with a random token; the [`DomainWorker`] checks DNS soon after, then with backoff for
//! [`DomainsConfig::verify_window`] (72 h): a TXT record `_souk-challenge.<domain>` =
//! `souk-verification=<token>` proves ownership and a CNAME to the platform's target (or
//! A/AAAA records on the platform's addresses, for an apex) proves it points here. Then
//! `verified` (routes to the store); with ACME configured a certificate is ordered and the
//! domain becomes `active` once it is live; without (TLS terminated by a proxy such as
//! Caddy) it becomes `active` at once. Verified and active domains are re-checked every
//! [`DomainsConfig::recheck_every`]; a domain whose records are gone is flagged
//! (`failing_since`, owner e-mailed) and after [`DomainsConfig::grace`] becomes
//! `inactive` (stops routing, owner e-mailed). Certificates are renewed
//! [`AcmeConfig::renew_before`] (30 days) before they expire.
//!
//! The worker's queue is the `domains` table itself (`next_check_at`, claimed with a
//! lease), so checks survive restarts and several nodes share them.

pub mod acme;
pub mod dns;
pub mod tls;

use crate::crypto::SecretBox;
use crate::mail::EmailMessage;
use crate::store::domains::DomainRow;
use crate::store::{Db, StoreError, now_micros, platform};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use uuid::Uuid;

/// The TXT record's label in front of the domain: `_souk-challenge.<domain>`.
pub const TXT_LABEL: &str = "_souk-challenge";
/// The TXT value's prefix: `souk-verification=<token>`.
pub const TXT_PREFIX: &str = "souk-verification=";

/// ACME settings (Souk's own TLS, `--https-bind`).
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// RFC 8555 directory, e.g. Let's Encrypt's
    /// `https://acme-v02.api.letsencrypt.org/directory` (the default), its staging
    /// directory, or a Pebble server in tests.
    pub directory_url: String,
    /// PEM root certificate the ACME server's own HTTPS is signed with (Pebble's); `None`:
    /// the system's roots.
    pub root_ca: Option<PathBuf>,
    /// Account contact e-mail.
    pub contact: Option<String>,
    /// Renew this long before `notAfter` (30 days).
    pub renew_before: Duration,
    /// First delay after a failed order; doubles per failure up to 6 h.
    pub retry_base: Duration,
}

/// The default ACME directory (Let's Encrypt production).
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

impl AcmeConfig {
    pub fn new(directory_url: impl Into<String>) -> Self {
        Self {
            directory_url: directory_url.into(),
            root_ca: None,
            contact: None,
            renew_before: Duration::from_secs(30 * 86_400),
            retry_base: Duration::from_secs(60),
        }
    }
}

/// Custom-domain settings (flags `--domain-target`, `--domain-addresses`, `--dns-server`,
/// `--acme-directory`, …; see `souk serve --help`).
#[derive(Debug, Clone)]
pub struct DomainsConfig {
    /// Host a custom domain's CNAME must name; `None`: the platform's base domain.
    pub cname_target: Option<String>,
    /// Addresses an apex domain's A/AAAA records must hold (an apex cannot be a CNAME).
    pub apex_addresses: Vec<IpAddr>,
    /// DNS server asked by checks (`ip:port`); `None`: the system's resolvers.
    pub nameserver: Option<SocketAddr>,
    /// How long a pending domain is checked automatically (72 h).
    pub verify_window: Duration,
    /// First delay between checks of a pending domain; doubles per check up to 4 h.
    pub check_backoff: Duration,
    /// Interval between re-verifications of verified/active domains (6 h).
    pub recheck_every: Duration,
    /// How long a verified domain may fail its re-checks before it is deactivated (72 h).
    pub grace: Duration,
    /// How often the worker looks for due domains (2 s).
    pub poll: Duration,
    /// Certificates through ACME; `None` when TLS is terminated elsewhere (Caddy).
    pub acme: Option<AcmeConfig>,
}

impl Default for DomainsConfig {
    fn default() -> Self {
        Self {
            cname_target: None,
            apex_addresses: vec![],
            nameserver: None,
            verify_window: Duration::from_secs(72 * 3600),
            check_backoff: Duration::from_secs(60),
            recheck_every: Duration::from_secs(6 * 3600),
            grace: Duration::from_secs(72 * 3600),
            poll: Duration::from_secs(2),
            acme: None,
        }
    }
}

/// One record a check looked at: what was expected and what DNS holds.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RecordFinding {
    /// `TXT`, `CNAME` or `A/AAAA`.
    #[serde(rename = "type")]
    pub rtype: String,
    pub name: String,
    pub expected: Vec<String>,
    pub found: Vec<String>,
    pub ok: bool,
}

/// What a DNS check found (stored as JSON on the domain, shown to the owner).
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct CheckReport {
    pub txt: RecordFinding,
    pub pointing: RecordFinding,
    /// Human-readable problems, empty when both records are right.
    pub problems: Vec<String>,
    /// True when a lookup failed (timeout, SERVFAIL): the result says nothing about the
    /// records, and a re-check failing this way does not count against the domain.
    pub lookup_failed: bool,
}

impl CheckReport {
    pub fn ok(&self) -> bool {
        self.txt.ok && self.pointing.ok && !self.lookup_failed
    }
}

/// The DNS records a merchant must create for `host`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DnsInstruction {
    /// `CNAME`, `A`, `AAAA` or `TXT`.
    #[serde(rename = "type")]
    pub rtype: String,
    pub name: String,
    pub value: String,
    /// What the record is for.
    pub purpose: String,
}

/// The records to create for `host` with `token`: a CNAME to the target (or A/AAAA on the
/// configured addresses when the domain is an apex, i.e. two labels) and the TXT record.
pub fn instructions(
    cfg: &DomainsConfig,
    base_domain: &str,
    host: &str,
    token: &str,
) -> Vec<DnsInstruction> {
    let target = cfg
        .cname_target
        .clone()
        .unwrap_or_else(|| base_domain.to_string());
    let apex = host.split('.').count() == 2 && !cfg.apex_addresses.is_empty();
    let mut out = vec![];
    if apex {
        for ip in &cfg.apex_addresses {
            out.push(DnsInstruction {
                rtype: if ip.is_ipv4() { "A" } else { "AAAA" }.into(),
                name: host.to_string(),
                value: ip.to_string(),
                purpose: "points the apex domain at the platform".into(),
            });
        }
    } else {
        out.push(DnsInstruction {
            rtype: "CNAME".into(),
            name: host.to_string(),
            value: target,
            purpose: "points the domain at the platform".into(),
        });
    }
    out.push(DnsInstruction {
        rtype: "TXT".into(),
        name: format!("{TXT_LABEL}.{host}"),
        value: format!("{TXT_PREFIX}{token}"),
        purpose: "proves you own the domain".into(),
    });
    out
}

/// Checks the TXT and CNAME/A records of a domain against what the platform expects.
pub async fn check_records(
    checker: &dns::DnsChecker,
    cfg: &DomainsConfig,
    base_domain: &str,
    host: &str,
    token: &str,
) -> CheckReport {
    let mut problems = vec![];
    let mut lookup_failed = false;
    let txt_name = format!("{TXT_LABEL}.{host}");
    let expected_txt = format!("{TXT_PREFIX}{token}");
    let found_txt = match checker.txt(&txt_name).await {
        Ok(v) => v,
        Err(e) => {
            lookup_failed = true;
            problems.push(e);
            vec![]
        }
    };
    let txt_ok = found_txt.iter().any(|v| v.trim() == expected_txt);
    if !txt_ok && !lookup_failed {
        if found_txt.is_empty() {
            problems.push(format!(
                "no TXT record at {txt_name}: create one with the value {expected_txt}"
            ));
        } else {
            problems.push(format!(
                "the TXT record at {txt_name} holds {}, not the expected {expected_txt} (wrong token)",
                found_txt.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let target = cfg
        .cname_target
        .clone()
        .unwrap_or_else(|| base_domain.to_string())
        .to_ascii_lowercase();
    let mut allowed: Vec<IpAddr> = cfg.apex_addresses.clone();
    let (pointing_ok, found, expected, rtype) =
        match checker.cname(host).await {
            Ok(Some(cname)) => {
                let ok = cname == target;
                if !ok {
                    problems.push(format!(
                        "{host} is a CNAME to {cname}; it must point to {target}"
                    ));
                }
                (ok, vec![cname], vec![target.clone()], "CNAME")
            }
            Ok(None) => {
                let addrs = match checker.addresses(host).await {
                    Ok(a) => a,
                    Err(e) => {
                        lookup_failed = true;
                        problems.push(e);
                        vec![]
                    }
                };
                if let Ok(t) = checker.addresses(&target).await {
                    allowed.extend(t);
                }
                let ok = !addrs.is_empty() && addrs.iter().all(|a| allowed.contains(a));
                if !ok && !lookup_failed {
                    if addrs.is_empty() {
                        problems.push(format!(
                            "{host} has no CNAME, A or AAAA record: add a CNAME to {target}{}",
                            if cfg.apex_addresses.is_empty() {
                                String::new()
                            } else {
                                format!(
                                    " (or, for an apex domain, A/AAAA records {})",
                                    cfg.apex_addresses
                                        .iter()
                                        .map(|a| a.to_string())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )
                            }
                        ));
                    } else {
                        problems.push(format!(
                        "{host} resolves to {}, which is not the platform: point it to {target}",
                        addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                    ));
                    }
                }
                let mut expected: Vec<String> =
                    cfg.apex_addresses.iter().map(|a| a.to_string()).collect();
                expected.insert(0, format!("CNAME {target}"));
                (
                    ok,
                    addrs.iter().map(|a| a.to_string()).collect(),
                    expected,
                    "A/AAAA",
                )
            }
            Err(e) => {
                lookup_failed = true;
                problems.push(e);
                (false, vec![], vec![target.clone()], "CNAME")
            }
        };
    CheckReport {
        txt: RecordFinding {
            rtype: "TXT".into(),
            name: txt_name,
            expected: vec![expected_txt],
            found: found_txt,
            ok: txt_ok,
        },
        pointing: RecordFinding {
            rtype: rtype.into(),
            name: host.to_string(),
            expected,
            found,
            ok: pointing_ok,
        },
        problems,
        lookup_failed,
    }
}

/// A random verification token (32 hex characters).
pub fn new_token() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b[..]);
    hex::encode(b)
}

fn micros(d: Duration) -> i64 {
    d.as_micros().min(i64::MAX as u128) as i64
}

/// Domain verification, re-verification and certificates: shared by the API ("Check
/// now") and the background worker.
pub struct Domains {
    pub db: Db,
    pub config: DomainsConfig,
    pub base_domain: String,
    checker: dns::DnsChecker,
    acme: Option<acme::AcmeClient>,
    secret_box: Arc<SecretBox>,
    /// Certificates served by the HTTPS listener (present with `--https-bind`).
    pub certs: Option<Arc<tls::CertStore>>,
    /// Called after a domain's routing changed (tenant cache invalidation).
    pub on_change: std::sync::RwLock<Option<Arc<dyn Fn() + Send + Sync>>>,
    /// Wakes the worker (a domain was added or a check was asked for).
    pub notify: Notify,
    /// Domains a pass of this process is working on (one ACME order per domain at a time).
    in_flight: std::sync::Mutex<std::collections::HashSet<Uuid>>,
    mail_public_url: String,
}

/// What a check did, for the caller.
#[derive(Debug)]
pub enum CheckError {
    Store(StoreError),
    NotFound,
}

impl From<StoreError> for CheckError {
    fn from(e: StoreError) -> Self {
        CheckError::Store(e)
    }
}

impl Domains {
    /// Errors: the DNS configuration is unusable.
    pub fn new(
        db: Db,
        config: DomainsConfig,
        base_domain: String,
        secret_box: Arc<SecretBox>,
        certs: Option<Arc<tls::CertStore>>,
        public_url: String,
    ) -> Result<Self, String> {
        // instant-acme's HTTP client builds its rustls config with the process default.
        crate::webhooks::install_crypto_provider();
        let checker = dns::DnsChecker::new(config.nameserver)?;
        let acme = match (&config.acme, &certs) {
            (Some(a), Some(_)) => Some(acme::AcmeClient::new(a.clone())),
            _ => None,
        };
        Ok(Self {
            db,
            config,
            base_domain,
            checker,
            acme,
            secret_box,
            certs,
            on_change: Default::default(),
            notify: Notify::new(),
            in_flight: Default::default(),
            mail_public_url: public_url,
        })
    }

    /// True when Souk obtains certificates itself (ACME and an HTTPS listener).
    pub fn issues_certificates(&self) -> bool {
        self.acme.is_some()
    }

    fn changed(&self) {
        if let Ok(f) = self.on_change.read()
            && let Some(f) = f.as_ref()
        {
            f();
        }
    }

    /// Checks one domain now (the "Check now" button, an admin re-check) and, when it is
    /// verified and Souk issues certificates, schedules the order at once. Returns the
    /// domain as stored afterwards. Errors: `NotFound`, storage.
    pub async fn check_now(&self, id: Uuid) -> Result<DomainRow, CheckError> {
        let d = platform::domain_by_id(&self.db, id)
            .await?
            .filter(|d| d.kind == "custom")
            .ok_or(CheckError::NotFound)?;
        self.check(&d).await?;
        self.notify.notify_one();
        platform::domain_by_id(&self.db, id)
            .await?
            .ok_or(CheckError::NotFound)
    }

    /// Runs the DNS check of `d` and records the outcome (status transition, audit,
    /// e-mail). Returns the report.
    async fn check(&self, d: &DomainRow) -> Result<CheckReport, StoreError> {
        let token = d.verify_token.clone().unwrap_or_default();
        let report = check_records(
            &self.checker,
            &self.config,
            &self.base_domain,
            &d.host,
            &token,
        )
        .await;
        let now = now_micros();
        let mut outcome = self.decide(d, &report, now).await?;
        let mut result = platform::record_domain_check(&self.db, d, &outcome).await;
        if let Err(StoreError::Conflict { .. }) = result {
            // Another store verified this host first: this claim stays pending.
            let mut r = report.clone();
            r.problems.push(format!(
                "{} is already verified by another store; it cannot be claimed",
                d.host
            ));
            outcome = platform::CheckOutcome {
                status: "pending",
                check_result: serde_json::to_string(&r).unwrap_or_default(),
                next_check_at: self.pending_next(d, now),
                verified_at: None,
                failing_since: None,
                audit_action: None,
                email: None,
            };
            result = platform::record_domain_check(&self.db, d, &outcome).await;
            metrics::counter!("souk_domain_verifications_total", "outcome" => "claimed_elsewhere")
                .increment(1);
        } else {
            let label = match (d.status.as_str(), outcome.status) {
                ("pending" | "inactive", "verified" | "active") => "verified",
                ("pending" | "inactive", _) => "not_yet",
                (_, "inactive") => "deactivated",
                _ if report.ok() => "recheck_ok",
                _ if report.lookup_failed => "lookup_failed",
                _ => "recheck_failed",
            };
            metrics::counter!("souk_domain_verifications_total", "outcome" => label).increment(1);
        }
        result?;
        if outcome.status != d.status {
            if outcome.status == "inactive"
                && let Some(c) = &self.certs
            {
                c.remove(&d.host);
            }
            self.changed();
        }
        Ok(report)
    }

    /// Next check of a pending domain: backoff doubling from `check_backoff` up to 4 h,
    /// none after `verify_window` since it was added.
    fn pending_next(&self, d: &DomainRow, now: i64) -> Option<i64> {
        if now - d.created_at > micros(self.config.verify_window) {
            return None;
        }
        let step = micros(self.config.check_backoff)
            .saturating_mul(1i64 << d.checks.clamp(0, 20))
            .min(4 * 3600 * 1_000_000);
        Some(now + step)
    }

    async fn owner_mail(&self, d: &DomainRow, subject: String, text: String) -> Option<String> {
        let m = platform::get_merchant(&self.db, d.tenant_id).await.ok()??;
        serde_json::to_string(&EmailMessage {
            to: m.owner_email,
            to_name: m.owner_name,
            subject,
            text,
        })
        .ok()
    }

    async fn decide(
        &self,
        d: &DomainRow,
        report: &CheckReport,
        now: i64,
    ) -> Result<platform::CheckOutcome, StoreError> {
        let json = serde_json::to_string(report).unwrap_or_default();
        let recheck = now + micros(self.config.recheck_every);
        let issuing = self.acme.is_some();
        let o = |status, next, verified_at, failing_since, audit, email| platform::CheckOutcome {
            status,
            check_result: json.clone(),
            next_check_at: next,
            verified_at,
            failing_since,
            audit_action: audit,
            email,
        };
        Ok(match d.status.as_str() {
            "pending" | "inactive" => {
                if report.ok() {
                    // With ACME the worker orders the certificate next (due now).
                    let (status, next) = if issuing {
                        ("verified", now)
                    } else {
                        ("active", recheck)
                    };
                    o(
                        status,
                        Some(next),
                        Some(now),
                        None,
                        Some("domain.verified"),
                        None,
                    )
                } else {
                    let status = if d.status == "inactive" {
                        "inactive"
                    } else {
                        "pending"
                    };
                    let next = if status == "pending" {
                        self.pending_next(d, now)
                    } else {
                        None
                    };
                    o(status, next, d.verified_at, None, None, None)
                }
            }
            _ if report.ok() || report.lookup_failed => {
                // A failed lookup says nothing: keep the state, look again sooner.
                let next = if report.lookup_failed {
                    now + micros(self.config.check_backoff)
                } else if issuing && d.cert_not_after.is_none() {
                    now
                } else {
                    recheck
                };
                let failing = if report.lookup_failed {
                    d.failing_since
                } else {
                    None
                };
                let audit =
                    (d.failing_since.is_some() && failing.is_none()).then_some("domain.recovered");
                o(
                    leak_status(&d.status),
                    Some(next),
                    d.verified_at,
                    failing,
                    audit,
                    None,
                )
            }
            _ => {
                let since = d.failing_since.unwrap_or(now);
                let grace = micros(self.config.grace);
                if now - since >= grace {
                    let email = self
                        .owner_mail(
                            d,
                            format!("Your domain {} was deactivated", d.host),
                            format!(
                                "The DNS records of {} no longer point at your store, so it has been deactivated and stops serving your store.\n\nProblems found:\n- {}\n\nFix the records, then press \"Check now\" on the Domains page: {}/dashboard/domains\n",
                                d.host,
                                report.problems.join("\n- "),
                                self.mail_public_url
                            ),
                        )
                        .await;
                    o(
                        "inactive",
                        None,
                        d.verified_at,
                        Some(since),
                        Some("domain.deactivated"),
                        email,
                    )
                } else {
                    let first = d.failing_since.is_none();
                    let email = if first {
                        self.owner_mail(
                            d,
                            format!("Action needed: the DNS records of {} are missing", d.host),
                            format!(
                                "A routine check found that the DNS records of {} no longer point at your store.\n\nProblems found:\n- {}\n\nIf they are not fixed within {} hours the domain is deactivated. Domains page: {}/dashboard/domains\n",
                                d.host,
                                report.problems.join("\n- "),
                                self.config.grace.as_secs() / 3600,
                                self.mail_public_url
                            ),
                        )
                        .await
                    } else {
                        None
                    };
                    let next = (now + micros(self.config.recheck_every).min(grace / 6 + 1))
                        .min(since + grace);
                    o(
                        leak_status(&d.status),
                        Some(next.max(now + 1)),
                        d.verified_at,
                        Some(since),
                        first.then_some("domain.failing"),
                        email,
                    )
                }
            }
        })
    }

    /// One pass over a claimed domain: the DNS check when due, then the certificate when
    /// one is missing or due for renewal.
    async fn process(&self, d: DomainRow) {
        let fresh = self
            .in_flight
            .lock()
            .map(|mut s| s.insert(d.id))
            .unwrap_or(false);
        if !fresh {
            // Another pass holds it (e.g. an order in progress): look again shortly.
            let _ = platform::reschedule_domain(&self.db, d.id, now_micros() + 5_000_000).await;
            return;
        }
        self.process_one(d.clone()).await;
        if let Ok(mut s) = self.in_flight.lock() {
            s.remove(&d.id);
        }
    }

    async fn process_one(&self, d: DomainRow) {
        let now = now_micros();
        let check_due = match d.status.as_str() {
            "verified" | "active" => d
                .last_checked_at
                .is_none_or(|t| t + micros(self.config.recheck_every) <= now),
            _ => true,
        };
        let d = if check_due {
            if let Err(e) = self.check(&d).await {
                tracing::warn!(domain = %d.host, error = %e, "domain check failed");
                return;
            }
            match platform::domain_by_id(&self.db, d.id).await {
                Ok(Some(d)) => d,
                _ => return,
            }
        } else {
            d
        };
        self.maybe_issue(&d).await;
        // Nothing was due but the claim lease moved next_check_at: put the schedule back.
        if !check_due && !self.needs_certificate(&d, now) {
            let next = d
                .last_checked_at
                .map(|t| t + micros(self.config.recheck_every))
                .unwrap_or(now);
            let next = match (self.acme.as_ref(), d.cert_not_after) {
                (Some(a), Some(na)) => next.min(na - micros(a.config_renew_before())),
                _ => next,
            };
            let _ = platform::reschedule_domain(&self.db, d.id, next.max(now + 1_000_000)).await;
        }
    }

    fn needs_certificate(&self, d: &DomainRow, now: i64) -> bool {
        let Some(a) = &self.acme else { return false };
        matches!(d.status.as_str(), "verified" | "active")
            && d.failing_since.is_none()
            && d.cert_not_after
                .is_none_or(|na| na - micros(a.config_renew_before()) <= now)
    }

    async fn maybe_issue(&self, d: &DomainRow) {
        let now = now_micros();
        if !self.needs_certificate(d, now) {
            return;
        }
        let Some(a) = &self.acme else { return };
        let renewal = d.cert_not_after.is_some();
        let kind = if renewal { "renewal" } else { "issuance" };
        match a.issue(&self.db, &self.secret_box, d).await {
            Ok(issued) => {
                let key = tls::certified_key(&issued.cert_pem, &issued.key_pem);
                let sealed = self.secret_box.seal(&issued.key_pem);
                match (key, sealed) {
                    (Ok(key), Ok(sealed)) => {
                        let next = (now + micros(self.config.recheck_every))
                            .min(issued.not_after - micros(a.config_renew_before()))
                            .max(now + 60_000_000);
                        match platform::store_certificate(
                            &self.db,
                            d,
                            &issued.cert_pem,
                            &sealed,
                            issued.not_after,
                            next,
                            renewal,
                        )
                        .await
                        {
                            Ok(()) => {
                                if let Some(c) = &self.certs {
                                    c.insert(&d.host, key);
                                }
                                metrics::counter!("souk_certificates_total", "kind" => kind, "outcome" => "ok").increment(1);
                                tracing::info!(domain = %d.host, kind, "certificate stored");
                                self.changed();
                            }
                            Err(e) => {
                                tracing::error!(domain = %d.host, error = %e, "could not store the certificate")
                            }
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        self.cert_failed(d, kind, &format!("issued certificate unusable: {e}"))
                            .await
                    }
                }
            }
            Err(e) => self.cert_failed(d, kind, &e).await,
        }
    }

    async fn cert_failed(&self, d: &DomainRow, kind: &'static str, error: &str) {
        metrics::counter!("souk_certificates_total", "kind" => kind, "outcome" => "failed")
            .increment(1);
        tracing::warn!(domain = %d.host, kind, error, "certificate order failed");
        let base = self
            .acme
            .as_ref()
            .map(|a| a.config_retry_base())
            .unwrap_or(Duration::from_secs(60));
        let delay = micros(base)
            .saturating_mul(1i64 << d.cert_attempts.clamp(0, 20))
            .min(6 * 3600 * 1_000_000);
        let msg: String = error.chars().take(2000).collect();
        if let Err(e) =
            platform::record_certificate_error(&self.db, d.id, &msg, now_micros() + delay).await
        {
            tracing::error!(error = %e, "could not record the certificate failure");
        }
    }
}

/// Keeps a verified/active status as the `&'static str` the outcome needs.
fn leak_status(s: &str) -> &'static str {
    match s {
        "active" => "active",
        "verified" => "verified",
        "inactive" => "inactive",
        _ => "pending",
    }
}

/// The background worker: claims due domains (lease 120 s), processes up to 4 at a time
/// (an ACME order that hangs or is rate-limited never blocks the others), reloads the
/// certificate store every minute and updates the expiry gauge.
pub struct DomainWorker {
    pub domains: Arc<Domains>,
}

impl DomainWorker {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let sem = Arc::new(Semaphore::new(4));
        let mut last_reload: Option<Instant> = None;
        loop {
            if *shutdown.borrow() {
                return;
            }
            let d = &self.domains;
            match platform::claim_due_domains(&d.db, 16, 120).await {
                Ok(rows) => {
                    for row in rows {
                        let Ok(permit) = sem.clone().acquire_owned().await else {
                            return;
                        };
                        let domains = self.domains.clone();
                        tokio::spawn(async move {
                            domains.process(row).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => {
                    let e = d.db.health().observe(e);
                    tracing::error!(error = %e, "claiming due domains failed");
                }
            }
            if last_reload.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                last_reload = Some(Instant::now());
                if let Some(c) = &d.certs
                    && let Err(e) = c.reload(&d.db, &d.secret_box).await
                {
                    tracing::warn!(error = %e, "certificate reload failed");
                }
                let soon = now_micros() + 14 * 86_400 * 1_000_000;
                if let Ok(n) = platform::certificates_expiring_before(&d.db, soon).await {
                    metrics::gauge!("souk_certificates_expiring_soon").set(n as f64);
                }
            }
            tokio::select! {
                _ = d.notify.notified() => {}
                _ = tokio::time::sleep(d.config.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
