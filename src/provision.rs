//! The provisioning pipeline and the job worker that runs it.
//!
//! Activation writes the run, its steps and a `provision` job in one transaction
//! (`store::provisioning::start_run`). A worker claims the job and runs each step that
//! is not yet completed: the step's effects and its `completed` mark are committed
//! together, so after a crash the job's lease expires (or is released at start-up), the
//! job is claimed again and the pipeline resumes from the first unfinished step.
//! A failing step is retried [`STEP_ATTEMPTS`] times with exponential backoff, then the
//! run is `failed` (visible in the API, logged and counted) until an admin retries or
//! rolls it back.

use crate::auth;
use crate::mail::{EmailMessage, Mailer};
use crate::store::provisioning::{self as prov, STEPS, StepTx};
use crate::store::{Db, StoreError, TenantDb, jobs, platform};
use crate::themes::Themes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// Attempts per step before the run is marked failed.
pub const STEP_ATTEMPTS: u32 = 3;

pub use crate::control::FaultHook;

/// Everything the worker needs.
#[derive(Clone)]
pub struct Provisioner {
    pub db: Db,
    pub themes: Arc<Themes>,
    pub mailer: Mailer,
    pub mail_from: String,
    /// Public URL of the platform, e.g. `http://localhost:8080` (for links in e-mails).
    pub public_url: String,
    /// Base domain of storefront subdomains, e.g. `localhost`.
    pub base_domain: String,
    /// Wakes idle workers when a job is enqueued.
    pub notify: Arc<Notify>,
    pub fault: Option<FaultHook>,
    /// Base of the exponential backoff between step attempts.
    pub backoff: Duration,
    /// In-process notifications of finished provisionings: `(tenant, "completed" | "failed")`.
    pub events: tokio::sync::broadcast::Sender<(Uuid, &'static str)>,
    /// Called synchronously when a merchant's provisioning completes (cache invalidation).
    pub on_change: Option<Arc<dyn Fn(Uuid) + Send + Sync>>,
    /// The feed fetcher of `feed_fetch` jobs (`None`: such jobs fail and are retried).
    pub feeds: Option<crate::feeds::Fetcher>,
}

#[derive(Debug, thiserror::Error)]
enum StepError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Other(String),
}

impl Provisioner {
    /// Wakes an idle worker (after enqueueing a job).
    pub fn wake(&self) {
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Runs jobs until `shutdown` resolves. Several workers may run concurrently.
    pub async fn run_worker(self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match jobs::claim(&self.db, 60).await {
                Ok(Some(job)) => self.run_job(job).await,
                Ok(None) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        _ = shutdown.changed() => {}
                    }
                }
                Err(e) => {
                    let e = self.db.health().observe(e);
                    tracing::error!(error = %e, "job claim failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn run_job(&self, job: jobs::Job) {
        let result: Result<(), String> = match job.kind.as_str() {
            "provision" => {
                let run: Option<Uuid> = serde_json::from_str::<serde_json::Value>(&job.payload)
                    .ok()
                    .and_then(|v| {
                        v.get("run_id")
                            .and_then(|r| r.as_str())
                            .and_then(|s| s.parse().ok())
                    });
                match run {
                    Some(run) => self.provision(run).await.map_err(|e| e.to_string()),
                    None => Err("provision job without a run_id".into()),
                }
            }
            "email" => match serde_json::from_str::<EmailMessage>(&job.payload) {
                Ok(msg) => self
                    .mailer
                    .send(&self.mail_from, &msg, job.id)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("bad email payload: {e}")),
            },
            crate::store::imports::PRODUCT_IMPORT_JOB => self.product_import(&job).await,
            platform::FEED_FETCH_JOB => self.feed_fetch(&job).await,
            other => Err(format!("unknown job kind {other}")),
        };
        let outcome = match result {
            Ok(()) => jobs::complete(&self.db, job.id).await,
            Err(err) => {
                tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, error = %err, "job failed");
                let retry_at = (job.attempts < job.max_attempts).then(|| {
                    let delay = 1_000_000i64 * 2i64.pow(job.attempts.clamp(0, 16) as u32);
                    crate::store::now_micros() + delay
                });
                jobs::fail(&self.db, job.id, &err, retry_at).await
            }
        };
        if let Err(e) = outcome {
            // Counted for readiness and /metrics; the job's lease expires and it runs again.
            let e = self.db.health().observe(e);
            tracing::error!(error = %e, "could not record job outcome");
        }
    }

    /// Fetches and stages every URL file of a feed source (scheduled, admin or background
    /// trigger). A file that fails (HTTP error, not a feed, too large) is recorded on the
    /// source and the job still completes; storage errors make the job retry. Staging is
    /// idempotent (items upserted by feed id), so a retried or resumed job redoes the file.
    async fn feed_fetch(&self, job: &jobs::Job) -> Result<(), String> {
        let v: serde_json::Value = serde_json::from_str(&job.payload).unwrap_or_default();
        let source: Option<Uuid> = v["source_id"].as_str().and_then(|s| s.parse().ok());
        let trigger = v["trigger"].as_str().unwrap_or("schedule").to_string();
        let (Some(source), Some(tenant)) = (source, job.tenant_id) else {
            return Err("feed_fetch job without a source_id or tenant".into());
        };
        let Some(fetcher) = &self.feeds else {
            return Err("no feed fetcher configured".into());
        };
        let Some(merchant) = platform::get_merchant(&self.db, tenant)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(());
        };
        let currency =
            crate::domain::Currency::parse(&merchant.currency).map_err(|e| e.message.clone())?;
        let scope = TenantDb::new(self.db.clone(), tenant);
        let Some(src) = scope
            .get_feed_source(source)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(()); // deleted since
        };
        let actor = crate::store::audit::Actor::system(&format!("feeds:{trigger}"));
        for file in src.files.iter().filter(|f| f.url.is_some()) {
            match crate::feeds::fetch_and_stage(
                &scope,
                &actor,
                fetcher,
                &src,
                &file.language,
                &trigger,
                currency,
            )
            .await
            {
                Ok(_) | Err(crate::feeds::FeedsError::File { .. }) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        if let Some(f) = &self.on_change {
            f(tenant);
        }
        Ok(())
    }

    /// Runs (or resumes) a background product import
    /// ([`crate::control::run_product_import`]). On the job's last attempt a storage error
    /// fails the import, so that the merchant sees why instead of a bar that never moves.
    async fn product_import(&self, job: &jobs::Job) -> Result<(), String> {
        let id: Option<Uuid> = serde_json::from_str::<serde_json::Value>(&job.payload)
            .ok()
            .and_then(|v| {
                v.get("import_id")
                    .and_then(|r| r.as_str())
                    .and_then(|s| s.parse().ok())
            });
        let (Some(id), Some(tenant)) = (id, job.tenant_id) else {
            return Err("product_import job without an import_id or tenant".into());
        };
        let scope = TenantDb::new(self.db.clone(), tenant);
        // Claims hold a 60 s lease; a large import can take longer, so a heartbeat keeps
        // it while this worker is alive (a dead worker's lease still runs out).
        let heartbeat = {
            let (db, job_id) = (self.db.clone(), job.id);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(20)).await;
                    if let Err(e) = jobs::extend_lease(&db, job_id, 60).await {
                        tracing::warn!(error = %e, "could not extend the import job's lease");
                    }
                }
            })
        };
        let result =
            crate::control::run_product_import(&self.db, &scope, id, self.fault.as_ref()).await;
        heartbeat.abort();
        // The storefront's cached pages of this tenant show the imported catalog at once.
        if let Some(f) = &self.on_change {
            f(tenant);
        }
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                let msg = e.to_string();
                if job.attempts >= job.max_attempts
                    && let Err(e2) = scope.fail_product_import(id, &msg).await
                {
                    tracing::error!(error = %e2, "could not mark the product import failed");
                }
                Err(msg)
            }
        }
    }

    /// Runs (or resumes) a provisioning run to completion or failure. Returns Ok when the
    /// run reached a final state (completed or failed); Err only for storage errors that
    /// should make the job retry.
    #[tracing::instrument(skip_all, fields(run = %run))]
    pub async fn provision(&self, run: Uuid) -> Result<(), StoreError> {
        let Some(row) = prov::run_by_id(&self.db, run).await? else {
            return Ok(());
        };
        if !matches!(row.status.as_str(), "pending" | "in_progress") {
            return Ok(()); // completed, failed or rolled back: nothing to do
        }
        let Some(merchant) = platform::get_merchant(&self.db, row.tenant_id).await? else {
            return Ok(());
        };
        let started = Instant::now();
        prov::mark_run_started(&self.db, run).await?;
        let scope = TenantDb::new(self.db.clone(), merchant.id);
        let steps = prov::steps_of(&self.db, run).await?;
        let mut owner: Option<Uuid> = None;
        for step in STEPS {
            let done = steps
                .iter()
                .any(|s| s.step == *step && s.status == "completed");
            if done && *step != "create_owner" {
                continue;
            }
            let mut attempt = 0;
            loop {
                attempt += 1;
                if !done {
                    prov::mark_step_started(&self.db, run, step).await?;
                }
                let res = self
                    .run_step(&scope, &merchant, run, step, done, &mut owner)
                    .await;
                match res {
                    Ok(()) => break,
                    Err(e) => {
                        let final_failure = attempt >= STEP_ATTEMPTS;
                        let msg = e.to_string();
                        tracing::warn!(step, attempt, error = %msg, "provisioning step failed");
                        prov::mark_step_error(&self.db, run, step, &msg, final_failure).await?;
                        if final_failure {
                            metrics::counter!("souk_provisioning_total", "outcome" => "failed")
                                .increment(1);
                            tracing::error!(tenant = %merchant.id, step, error = %msg, "provisioning failed");
                            let _ = self.events.send((merchant.id, "failed"));
                            return Ok(());
                        }
                        tokio::time::sleep(self.backoff * 4u32.pow(attempt - 1)).await;
                    }
                }
            }
        }
        let ms = scope.finish_run(&self.db, run).await?;
        metrics::counter!("souk_provisioning_total", "outcome" => "completed").increment(1);
        metrics::histogram!("souk_provisioning_duration_seconds").record(ms as f64 / 1000.0);
        if let Some(f) = &self.on_change {
            f(merchant.id);
        }
        let _ = self.events.send((merchant.id, "completed"));
        tracing::info!(tenant = %merchant.id, duration_ms = ms, worker_ms = started.elapsed().as_millis() as u64, "provisioning completed");
        Ok(())
    }

    /// Runs one step. `replay` means the step was already completed and only its
    /// outputs are needed (the owner id), so nothing is written.
    async fn run_step(
        &self,
        scope: &TenantDb,
        m: &platform::Merchant,
        run: Uuid,
        step: &'static str,
        replay: bool,
        owner: &mut Option<Uuid>,
    ) -> Result<(), StepError> {
        if !replay && let Some(err) = self.fault.as_ref().and_then(|f| f(step)) {
            return Err(StepError::Other(err));
        }
        let mut t = StepTx::begin(&self.db, m.id, run, step).await?;
        match step {
            "create_workspace" => scope.step_workspace(&mut t).await?,
            "create_owner" => {
                let (user, _) = scope
                    .step_owner(
                        &mut t,
                        &m.owner_email,
                        m.owner_name.as_deref(),
                        m.initial_password_hash.as_deref(),
                    )
                    .await?;
                *owner = Some(user);
                if replay {
                    t.tx.commit().await?;
                    return Ok(());
                }
            }
            "deploy_storefront" => {
                let handle = m
                    .handle
                    .clone()
                    .ok_or_else(|| StepError::Other("merchant has no subdomain".into()))?;
                let theme = self.themes.get_or_default(m.theme_id.as_deref());
                // Health check: the home page must render with the bound theme and branding.
                let ctx = crate::web::storefront::health_check_context(m, &theme, &handle);
                theme.render("home.html", ctx).map_err(|e| {
                    StepError::Other(format!("storefront health check failed: {e}"))
                })?;
                let host = format!("{handle}.{}", self.base_domain);
                scope.step_storefront(&mut t, &host).await?;
            }
            "seed_starter_data" => scope.step_starter_data(&mut t).await?,
            "send_welcome_email" => {
                let user = owner.ok_or_else(|| StepError::Other("owner not created".into()))?;
                let handle = m.handle.clone().unwrap_or_default();
                let store_url = format!("{}/s/{handle}/", self.public_url);
                let (token_hash, text) = if m.initial_password_hash.is_some() {
                    (
                        None,
                        format!(
                            "Hello {name},\n\nYour shop \"{shop}\" is ready on Souk.\n\nStorefront: {store_url}\nDashboard sign-in: {public}/login\n\nSign in with the initial password you were given; you will be asked to change it.\n\n— Souk",
                            name = m.owner_name.as_deref().unwrap_or("there"),
                            shop = m.name,
                            public = self.public_url,
                        ),
                    )
                } else {
                    let token = auth::random_token(32);
                    (
                        Some(auth::token_hash(&token)),
                        format!(
                            "Hello {name},\n\nYour shop \"{shop}\" is ready on Souk.\n\nStorefront: {store_url}\n\nSet your password and sign in (the link works once and expires in 72 hours):\n{public}/set-password?token={token}\n\n— Souk",
                            name = m.owner_name.as_deref().unwrap_or("there"),
                            shop = m.name,
                            public = self.public_url,
                        ),
                    )
                };
                let payload = crate::store::to_json(&EmailMessage {
                    to: m.owner_email.clone(),
                    to_name: m.owner_name.clone(),
                    subject: format!("Your shop {} is ready", m.name),
                    text,
                });
                let expires = crate::store::now_micros() + 72 * 3600 * 1_000_000;
                scope
                    .step_welcome(&mut t, user, token_hash.as_deref(), expires, payload)
                    .await?;
            }
            other => return Err(StepError::Other(format!("unknown step {other}"))),
        }
        t.complete().await?;
        if step == "send_welcome_email" {
            self.wake();
        }
        Ok(())
    }
}
