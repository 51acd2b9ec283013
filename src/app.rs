//! Start-up as a library: [`Application::build`] connects the database, runs migrations,
//! seeds plans, starts the job workers and binds the listener; tests start the same
//! application on port 0.

use crate::auth::{Secret, TokenKeys};
use crate::mail::Mailer;
use crate::provision::{FaultHook, Provisioner};
use crate::store::{Backend, Db, jobs, platform};
use crate::themes::Themes;
use crate::web::{self, AppState, WebConfig};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Runtime configuration (from flags and `SOUK_*` variables, see `souk --help`).
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    /// Holds the SQLite database, the e-mail outbox and the generated signing key.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/souk.db`.
    pub database_url: Option<Secret>,
    pub base_domain: String,
    /// Public URL used in e-mails; default `http://<base_domain>:<port>`.
    pub public_url: Option<String>,
    pub jwt_secret: Option<Secret>,
    pub smtp_url: Option<Secret>,
    pub mail_from: String,
    pub max_body_bytes: usize,
    /// Largest accepted CSV import upload in bytes (product and vendor imports, API and
    /// dashboard); other requests keep `max_body_bytes`.
    pub max_import_bytes: usize,
    /// Number of concurrent job workers.
    pub workers: usize,
    /// Access-token lifetime in seconds.
    pub access_ttl: i64,
    pub db_max_connections: u32,
    /// Test hook to make provisioning steps fail.
    pub fault: Option<FaultHook>,
    /// Base delay between provisioning step attempts.
    pub step_backoff: Duration,
    /// Trust `X-Forwarded-For` for the client IP (audit log, login rate limits).
    pub trust_proxy: bool,
    /// Run the outbox dispatcher (off only in tests that simulate a crash before publishing).
    pub dispatch_events: bool,
    /// `nats://host:port` to fan events out across nodes; `None`: in-process only.
    pub events_url: Option<String>,
    /// NATS subject prefix (default `souk.events`); events go to `<prefix>.<tenant id>`.
    pub events_subject: String,
    /// Webhook delivery settings.
    pub webhooks: crate::webhooks::WebhookConfig,
    /// Run the webhook delivery worker.
    pub deliver_webhooks: bool,
    /// Stripe's API base URL (`SOUK_STRIPE_API_BASE`; localstripe in tests and CI).
    pub stripe_api_base: String,
    /// Marketplace feed fetching (`spool_dir` is set to `<data_dir>` at start).
    pub feeds: crate::feeds::FeedConfig,
    /// Serve HTTPS here too (Souk's own TLS: SNI, ACME certificates per active custom
    /// domain); `None`: HTTP only (TLS terminated by a proxy such as Caddy).
    pub https_bind: Option<SocketAddr>,
    /// PEM certificate chain and key for the base domain and its subdomains on the HTTPS
    /// listener (e.g. a wildcard); optional.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Custom-domain verification and certificate settings.
    pub domains: crate::custom_domains::DomainsConfig,
}

impl Config {
    /// Defaults for tests and the benchmark: SQLite in `data_dir`, random port.
    pub fn for_tests(data_dir: PathBuf) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            database_url: None,
            base_domain: "localhost".into(),
            public_url: None,
            jwt_secret: Some(Secret::new("test-secret-test-secret-test-secret!")),
            smtp_url: None,
            mail_from: "Souk <no-reply@souk.localhost>".into(),
            max_body_bytes: 10 * 1024 * 1024,
            max_import_bytes: 100 * 1024 * 1024,
            workers: 2,
            access_ttl: 900,
            db_max_connections: 8,
            fault: None,
            step_backoff: Duration::from_millis(20),
            trust_proxy: false,
            dispatch_events: true,
            events_url: None,
            events_subject: crate::events::SUBJECT_PREFIX.into(),
            webhooks: Default::default(),
            deliver_webhooks: true,
            stripe_api_base: crate::payments::STRIPE_API.into(),
            feeds: Default::default(),
            https_bind: None,
            tls_cert: None,
            tls_key: None,
            domains: crate::custom_domains::DomainsConfig {
                // Nothing answers there: checks fail fast unless a test starts a DNS server.
                nameserver: Some(SocketAddr::from(([127, 0, 0, 1], 9))),
                poll: Duration::from_millis(100),
                check_backoff: Duration::from_secs(1),
                ..Default::default()
            },
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.expose().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("souk.db").display()),
        }
    }
}

/// Start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("themes: {0}")]
    Themes(String),
    #[error("mail: {0}")]
    Mail(#[from] crate::mail::MailError),
    #[error("events: {0}")]
    Bus(#[from] crate::events::BusError),
    #[error("webhooks: {0}")]
    Webhooks(String),
    #[error("feeds: {0}")]
    Feeds(String),
    #[error("custom domains: {0}")]
    Domains(String),
}

/// The process-wide Prometheus recorder (installed once, shared by every app in a test process).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ];
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Core services without HTTP: used by the server, the CLI and the benchmark.
pub struct Core {
    pub db: Db,
    /// Domain events published from the outbox.
    pub bus: crate::events::EventBus,
    pub themes: Arc<Themes>,
    pub provisioner: Provisioner,
    pub config: Config,
    /// Webhook delivery worker.
    pub deliverer: crate::webhooks::Deliverer,
    /// Encrypts secrets kept in the database (webhook signing secrets).
    pub secret_box: Arc<crate::crypto::SecretBox>,
    /// Custom-domain checks and certificates (with the worker's queue).
    pub domains: Arc<crate::custom_domains::Domains>,
}

impl Core {
    /// Connects, migrates, seeds plans and releases stale job leases (SQLite).
    pub async fn open(config: Config, public_url: String) -> Result<Core, AppError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| AppError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let db = Db::connect(&config.database_url(), config.db_max_connections).await?;
        platform::seed_plans(&db).await?;
        if db.backend() == Backend::Sqlite {
            let n = jobs::release_all_leases(&db).await?;
            if n > 0 {
                tracing::info!(
                    jobs = n,
                    "resuming jobs interrupted by the previous shutdown"
                );
            }
        }
        let themes = Arc::new(Themes::builtin().map_err(AppError::Themes)?);
        let mut seen_themes = std::collections::HashMap::new();
        crate::control::sync_themes(&db, &themes, &mut seen_themes)
            .await
            .map_err(|e| AppError::Themes(format!("stored themes: {e}")))?;
        if db.backend() != Backend::Sqlite {
            // Several nodes may share PostgreSQL: pick up theme uploads and toggles made
            // through another node.
            let (db, themes) = (db.clone(), themes.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(15)).await;
                    if let Err(e) =
                        crate::control::sync_themes(&db, &themes, &mut seen_themes).await
                    {
                        tracing::warn!(error = %e, "theme sync failed");
                    }
                }
            });
        }
        let mailer = match &config.smtp_url {
            Some(url) => Mailer::smtp(url.expose())?,
            None => Mailer::file(config.data_dir.join("outbox")).map_err(|source| {
                AppError::DataDir {
                    path: config.data_dir.join("outbox").display().to_string(),
                    source,
                }
            })?,
        };
        let provisioner = Provisioner {
            db: db.clone(),
            themes: themes.clone(),
            mailer,
            mail_from: config.mail_from.clone(),
            public_url,
            base_domain: config.base_domain.clone(),
            notify: Arc::new(Notify::new()),
            fault: config.fault.clone(),
            backoff: config.step_backoff,
            events: tokio::sync::broadcast::channel(4096).0,
            on_change: None,
            feeds: None,
        };
        let bus = match &config.events_url {
            Some(url) => crate::events::EventBus::with_nats(url, &config.events_subject).await?,
            None => crate::events::EventBus::default(),
        };
        let secret_box = Arc::new(crate::crypto::SecretBox::from_signing_secret(
            &signing_secret(&config)?,
        ));
        let deliverer = crate::webhooks::Deliverer::new(
            db.clone(),
            config.webhooks.clone(),
            provisioner.public_url.clone(),
            bus.webhooks.clone(),
            secret_box.clone(),
        )
        .map_err(AppError::Webhooks)?;
        let mut provisioner = provisioner;
        provisioner.feeds = Some(
            crate::feeds::Fetcher::new(crate::feeds::FeedConfig {
                spool_dir: config.data_dir.clone(),
                ..config.feeds.clone()
            })
            .map_err(AppError::Feeds)?,
        );
        let certs = match config.https_bind {
            Some(_) => Some(Arc::new(platform_cert_store(&config)?)),
            None => None,
        };
        if let Some(c) = &certs {
            let n = c
                .reload(&db, &secret_box)
                .await
                .map_err(AppError::Domains)?;
            tracing::info!(certificates = n, "custom-domain certificates loaded");
        }
        let domains = Arc::new(
            crate::custom_domains::Domains::new(
                db.clone(),
                config.domains.clone(),
                config.base_domain.clone(),
                secret_box.clone(),
                certs,
                provisioner.public_url.clone(),
            )
            .map_err(AppError::Domains)?,
        );
        Ok(Core {
            domains,
            bus,
            deliverer,
            secret_box,
            db,
            themes,
            provisioner,
            config,
        })
    }

    /// Starts `n` job workers (0 is allowed: jobs then wait for another process); they
    /// stop when `shutdown` flips to true.
    pub fn spawn_workers(
        &self,
        n: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut handles: Vec<_> = (0..n)
            .map(|_| tokio::spawn(self.provisioner.clone().run_worker(shutdown.clone())))
            .collect();
        handles.push(tokio::spawn(
            self.bus
                .clone()
                .run_feeder(self.db.clone(), shutdown.clone()),
        ));
        handles.push(tokio::spawn(
            self.db.clone().run_checkpointer(shutdown.clone()),
        ));
        if self.config.dispatch_events {
            handles.push(tokio::spawn(
                self.bus
                    .clone()
                    .run_dispatcher(self.db.clone(), shutdown.clone()),
            ));
        }
        handles.push(tokio::spawn(
            crate::custom_domains::DomainWorker {
                domains: self.domains.clone(),
            }
            .run(shutdown.clone()),
        ));
        if n > 0 {
            handles.push(tokio::spawn(crate::feeds::run_scheduler(
                self.provisioner.clone(),
                shutdown.clone(),
            )));
        }
        if self.config.deliver_webhooks {
            handles.push(tokio::spawn(self.deliverer.clone().run(shutdown)));
        }
        handles
    }

    /// The signing key: configured, or generated once and kept in `<data_dir>/jwt.secret`.
    fn signing_secret(&self) -> Result<Secret, AppError> {
        signing_secret(&self.config)
    }
}

/// The HTTPS listener's certificate store, with the configured base-domain pair if any.
fn platform_cert_store(config: &Config) -> Result<crate::custom_domains::tls::CertStore, AppError> {
    let pair = match (&config.tls_cert, &config.tls_key) {
        (Some(c), Some(k)) => {
            let read = |p: &PathBuf| {
                std::fs::read_to_string(p).map_err(|source| AppError::DataDir {
                    path: p.display().to_string(),
                    source,
                })
            };
            let key = crate::custom_domains::tls::certified_key(&read(c)?, &read(k)?)
                .map_err(|e| AppError::Domains(format!("--tls-cert/--tls-key: {e}")))?;
            Some(key)
        }
        (None, None) => None,
        _ => {
            return Err(AppError::Domains(
                "--tls-cert and --tls-key go together".into(),
            ));
        }
    };
    Ok(crate::custom_domains::tls::CertStore::with_platform(
        &config.base_domain,
        pair,
    ))
}

/// The signing key: configured, or generated once and kept in `<data_dir>/jwt.secret`.
fn signing_secret(config: &Config) -> Result<Secret, AppError> {
    if let Some(s) = &config.jwt_secret {
        return Ok(s.clone());
    }
    let path = config.data_dir.join("jwt.secret");
    let err = |source| AppError::DataDir {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => Ok(Secret::new(s.trim())),
        _ => {
            let s = crate::auth::random_token(48);
            std::fs::write(&path, &s).map_err(err)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            Ok(Secret::new(s))
        }
    }
}

/// A running server.
pub struct Application {
    listener: tokio::net::TcpListener,
    port: u16,
    https: Option<(tokio::net::TcpListener, u16)>,
    pub state: AppState,
    core: Core,
}

impl Application {
    /// Builds everything and binds the listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Application, AppError> {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| AppError::Bind {
                addr: config.bind,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| AppError::Bind {
                addr: config.bind,
                source,
            })?
            .port();
        let https = match config.https_bind {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Bind { addr, source })?;
                let p = l
                    .local_addr()
                    .map_err(|source| AppError::Bind { addr, source })?
                    .port();
                Some((l, p))
            }
            None => None,
        };
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}:{port}", config.base_domain));
        let mut core = Core::open(config.clone(), public_url.clone()).await?;
        let tenant_cache: Arc<web::context::TenantCache> = Default::default();
        let page_cache: Arc<web::storefront::PageCache> = Default::default();
        let (tc, pc) = (tenant_cache.clone(), page_cache.clone());
        core.provisioner.on_change = Some(Arc::new(move |tenant| {
            tc.invalidate();
            pc.invalidate_tenant(tenant);
        }));
        // Cross-node: a local invalidation is published on NATS; one from another node
        // clears this node's pages and host lookups of that tenant.
        let bus = core.bus.clone();
        page_cache.on_invalidate(move |tenant| bus.publish_invalidation(tenant));
        let (tc, pc) = (tenant_cache.clone(), page_cache.clone());
        let mut remote = core.bus.invalidations();
        tokio::spawn(async move {
            loop {
                match remote.recv().await {
                    Ok(tenant) => {
                        pc.invalidate_local(tenant);
                        tc.invalidate_tenant(tenant);
                        crate::store::commerce::forget_checkout_config(Some(tenant));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        pc.clear();
                        tc.invalidate();
                        crate::store::commerce::forget_checkout_config(None);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        let tc = tenant_cache.clone();
        if let Ok(mut f) = core.domains.on_change.write() {
            *f = Some(Arc::new(move || tc.invalidate()));
        }
        let metrics = metrics_handle();
        if let Some(h) = metrics.clone() {
            // Histogram samples wait in the recorder until drained: without a scrape of
            // /metrics they would pile up (8 bytes per request), so drain every 5 s.
            static UPKEEP: std::sync::Once = std::sync::Once::new();
            UPKEEP.call_once(|| {
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_secs(5));
                    loop {
                        tick.tick().await;
                        h.run_upkeep();
                    }
                });
            });
        }
        let keys = TokenKeys::new(&core.signing_secret()?, config.access_ttl);
        let state = AppState::new(web::AppServices {
            db: core.db.clone(),
            themes: core.themes.clone(),
            keys,
            config: Arc::new(WebConfig {
                base_domain: config.base_domain.clone(),
                platform_hosts: vec![],
                max_body_bytes: config.max_body_bytes,
                max_import_bytes: config.max_import_bytes,
                public_url,
                trust_proxy: config.trust_proxy,
                stripe_api_base: config.stripe_api_base.clone(),
            }),
            tenant_cache,
            provisioner: core.provisioner.clone(),
            metrics,
            page_cache,
            login_limiter: Default::default(),
            bus: core.bus.clone(),
            webhooks: Arc::new(config.webhooks.clone()),
            secret_box: core.secret_box.clone(),
            feeds: match &core.provisioner.feeds {
                Some(f) => f.clone(),
                None => {
                    crate::feeds::Fetcher::new(config.feeds.clone()).map_err(AppError::Feeds)?
                }
            },
            domains: core.domains.clone(),
            https_port: https.as_ref().map(|(_, p)| *p),
        });
        Ok(Application {
            listener,
            port,
            https,
            state,
            core,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Port of the HTTPS listener, when `https_bind` is set.
    pub fn https_port(&self) -> Option<u16> {
        self.https.as_ref().map(|(_, p)| *p)
    }

    pub fn core(&self) -> &Core {
        &self.core
    }

    /// Serves until `shutdown` resolves, then drains connections and stops the workers.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, rx) = watch::channel(false);
        let workers = self.core.spawn_workers(self.core.config.workers, rx);
        let app = web::router(self.state.clone())
            .map_err(|e| std::io::Error::other(format!("UI templates: {e}")))?;
        // Event streams never end on their own: close them when shutdown starts, so the
        // graceful drain can finish.
        let bus = self.state.bus.clone();
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            bus.close();
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let tls_server = match (self.https, self.core.domains.certs.clone()) {
            (Some((listener, _)), Some(certs)) => {
                use axum::serve::ListenerExt;
                // `tap_io` only lends the listener axum's `SocketAddr` connect info.
                let tls = crate::custom_domains::tls::TlsListener::new(
                    listener,
                    crate::custom_domains::tls::server_config(certs),
                )?
                .tap_io(|_| {});
                let app = app.clone().layer(axum::Extension(web::tls::ViaTls));
                let stop = stopped(stop_rx.clone());
                Some(tokio::spawn(async move {
                    axum::serve(
                        tls,
                        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                    )
                    .with_graceful_shutdown(stop)
                    .await
                }))
            }
            _ => None,
        };
        use axum::serve::ListenerExt;
        // TCP_NODELAY on every accepted connection: a response hyper writes in two parts
        // (head, then body) must not wait for the client's delayed ACK (Nagle).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "TCP_NODELAY not set");
            }
        });
        let res = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(stop_rx))
        .await;
        if let Some(t) = tls_server {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        let _ = tx.send(true);
        for w in workers {
            let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
        }
        self.core.db.close().await;
        res
    }
}
