//! Certificates through ACME (RFC 8555) with `instant-acme`, HTTP-01 challenge.
//!
//! The platform keeps one ACME account per directory URL (credentials sealed with
//! [`SecretBox`] in `acme_accounts`). The HTTP-01 answer is written to the domain's row,
//! so whichever node the CA reaches serves `/.well-known/acme-challenge/<token>`
//! (see `web::tls::acme_challenge`). Only a verified or active domain is ever ordered: the
//! caller checks, and the challenge route answers only for such rows.

use super::AcmeConfig;
use crate::crypto::SecretBox;
use crate::store::Db;
use crate::store::domains::DomainRow;
use crate::store::platform;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::time::Duration;
use tokio::sync::Mutex;

/// A certificate fresh from the CA.
pub struct Issued {
    /// PEM chain, leaf first.
    pub cert_pem: String,
    /// PEM PKCS#8 private key (to be sealed before storing).
    pub key_pem: String,
    /// The leaf's `notAfter`, Unix microseconds.
    pub not_after: i64,
}

/// The ACME client of this process: the account, loaded or created once.
pub struct AcmeClient {
    config: AcmeConfig,
    account: Mutex<Option<Account>>,
}

impl AcmeClient {
    pub fn new(config: AcmeConfig) -> Self {
        Self {
            config,
            account: Mutex::new(None),
        }
    }

    /// How long before `notAfter` a certificate is renewed.
    pub fn config_renew_before(&self) -> Duration {
        self.config.renew_before
    }

    /// First delay after a failed order.
    pub fn config_retry_base(&self) -> Duration {
        self.config.retry_base
    }

    fn builder(&self) -> Result<instant_acme::AccountBuilder, String> {
        match &self.config.root_ca {
            Some(path) => Account::builder_with_root(path)
                .map_err(|e| format!("ACME root certificate {}: {e}", path.display())),
            None => Account::builder().map_err(|e| format!("ACME HTTP client: {e}")),
        }
    }

    /// The platform's account at the configured directory: restored from the database,
    /// else registered and stored (sealed).
    async fn account(&self, db: &Db, sb: &SecretBox) -> Result<Account, String> {
        let mut slot = self.account.lock().await;
        if let Some(a) = slot.as_ref() {
            return Ok(a.clone());
        }
        let dir = &self.config.directory_url;
        let stored = platform::acme_account(db, dir)
            .await
            .map_err(|e| e.to_string())?;
        let account = match stored {
            Some(sealed) => {
                let json = sb.open(&sealed)?;
                let creds: AccountCredentials = serde_json::from_str(&json)
                    .map_err(|e| format!("stored ACME account is unreadable: {e}"))?;
                self.builder()?
                    .from_credentials(creds)
                    .await
                    .map_err(|e| format!("ACME account: {e}"))?
            }
            None => {
                let contact: Vec<String> = self
                    .config
                    .contact
                    .iter()
                    .map(|c| format!("mailto:{c}"))
                    .collect();
                let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, creds) = self
                    .builder()?
                    .create(
                        &NewAccount {
                            contact: &contact,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        dir.clone(),
                        None,
                    )
                    .await
                    .map_err(|e| format!("ACME account registration at {dir}: {e}"))?;
                let json = serde_json::to_string(&creds).map_err(|e| e.to_string())?;
                platform::save_acme_account(db, dir, &sb.seal(&json)?)
                    .await
                    .map_err(|e| e.to_string())?;
                account
            }
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    /// Orders a certificate for `d.host` and answers its HTTP-01 challenge through the
    /// domain row. Errors: the CA's message (rate limit, failed validation, …) or a
    /// storage error, as text to show on the domain.
    pub async fn issue(&self, db: &Db, sb: &SecretBox, d: &DomainRow) -> Result<Issued, String> {
        if !matches!(d.status.as_str(), "verified" | "active") {
            return Err(format!(
                "{} is not verified; no certificate is requested for it",
                d.host
            ));
        }
        let account = self.account(db, sb).await?;
        let ids = [Identifier::Dns(d.host.clone())];
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| format!("ACME order: {e}"))?;
        {
            let mut authzs = order.authorizations();
            while let Some(a) = authzs.next().await {
                let mut a = a.map_err(|e| format!("ACME authorization: {e}"))?;
                match a.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => return Err(format!("ACME authorization is {other:?}")),
                }
                let mut ch = a
                    .challenge(ChallengeType::Http01)
                    .ok_or("the CA offers no http-01 challenge")?;
                let key_auth = ch.key_authorization();
                platform::set_acme_challenge(db, d.id, Some(&ch.token), Some(key_auth.as_str()))
                    .await
                    .map_err(|e| e.to_string())?;
                ch.set_ready()
                    .await
                    .map_err(|e| format!("ACME challenge: {e}"))?;
            }
        }
        let retry = RetryPolicy::new()
            .initial_delay(Duration::from_millis(200))
            .timeout(Duration::from_secs(60));
        let status = order
            .poll_ready(&retry)
            .await
            .map_err(|e| format!("ACME validation: {e}"))?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| format!("order is {status:?}"));
            return Err(format!("ACME validation failed: {detail}"));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("ACME finalize: {e}"))?;
        let cert_pem = order
            .poll_certificate(&retry)
            .await
            .map_err(|e| format!("ACME certificate: {e}"))?;
        let not_after = not_after_micros(&cert_pem)?;
        Ok(Issued {
            cert_pem,
            key_pem,
            not_after,
        })
    }
}

/// The `notAfter` of the first certificate of a PEM chain, Unix microseconds.
pub fn not_after_micros(chain_pem: &str) -> Result<i64, String> {
    let der = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or("no certificate in the PEM chain")?
        .map_err(|e| format!("unreadable certificate PEM: {e}"))?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp() * 1_000_000)
}
