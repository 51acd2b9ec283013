//! The `souk` binary: parses the command line, sets up logging, and hands over to the library.

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use souk::app::{Application, Config, Core};
use souk::auth::Secret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Souk: a multi-tenant commerce platform.
#[derive(Parser)]
#[command(name = "souk", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every subcommand (flags or `SOUK_*` environment variables).
#[derive(Args, Clone)]
struct Common {
    /// Folder holding the SQLite database, the e-mail outbox (.eml files) and the signing key.
    #[arg(
        long,
        env = "SOUK_DATA_DIR",
        default_value = "./souk-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (default: SQLite in the data dir).
    #[arg(long, env = "SOUK_DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,
    /// Connections per database pool: SQLite readers (the writer is always one connection),
    /// or each of the two PostgreSQL pools. 2..=256.
    #[arg(
        long,
        env = "SOUK_DB_MAX_CONNECTIONS",
        default_value_t = 8,
        value_parser = clap::value_parser!(u32).range(2..=256),
        global = true
    )]
    db_max_connections: u32,
    /// Domain under which storefront subdomains live (`<handle>.<base-domain>`).
    #[arg(
        long,
        env = "SOUK_BASE_DOMAIN",
        default_value = "localhost",
        global = true
    )]
    base_domain: String,
    /// Public URL of the platform, used in e-mail links (default http://<base-domain>:<port>).
    #[arg(long, env = "SOUK_PUBLIC_URL", global = true)]
    public_url: Option<String>,
    /// SMTP URL (smtp://user:pass@host:587); default: write .eml files to <data-dir>/outbox.
    #[arg(long, env = "SOUK_SMTP_URL", global = true, hide_env_values = true)]
    smtp_url: Option<String>,
    /// Sender of platform e-mails.
    #[arg(
        long,
        env = "SOUK_MAIL_FROM",
        default_value = "Souk <no-reply@souk.localhost>",
        global = true
    )]
    mail_from: String,
    /// HMAC key for access tokens (32+ characters; default: generated into <data-dir>/jwt.secret).
    #[arg(long, env = "SOUK_JWT_SECRET", global = true, hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Behind a reverse proxy: take the client IP from X-Forwarded-For.
    #[arg(long, env = "SOUK_TRUST_PROXY", global = true)]
    trust_proxy: bool,
    /// Fan events out across nodes through NATS, e.g. `nats://127.0.0.1:4222`
    /// (default: in-process, one node).
    #[arg(long = "events", env = "SOUK_EVENTS_URL", global = true)]
    events_url: Option<String>,
    /// NATS subject prefix; events go to `<prefix>.<tenant id>`.
    #[arg(
        long,
        env = "SOUK_EVENTS_SUBJECT",
        default_value = "souk.events",
        global = true
    )]
    events_subject: String,
    /// Allow webhook endpoints on loopback/private addresses and plain http
    /// (development only: it disables the SSRF guard).
    #[arg(long, env = "SOUK_WEBHOOKS_ALLOW_PRIVATE", global = true)]
    webhooks_allow_private: bool,
    /// Stripe's API base URL (card payments); point it at localstripe for tests.
    #[arg(long, env = "SOUK_STRIPE_API_BASE", default_value = souk::payments::STRIPE_API, global = true)]
    stripe_api_base: String,
    /// Also serve HTTPS here (Souk's own TLS): SNI, a certificate per active custom
    /// domain through ACME, HTTP → HTTPS redirects and HSTS once it is live. Without it
    /// TLS is left to a reverse proxy (see the README's Caddy example).
    #[arg(long, env = "SOUK_HTTPS_BIND", global = true)]
    https_bind: Option<SocketAddr>,
    /// PEM certificate chain for the base domain and its subdomains on the HTTPS
    /// listener (e.g. a wildcard); with --tls-key.
    #[arg(long, env = "SOUK_TLS_CERT", global = true)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "SOUK_TLS_KEY", global = true)]
    tls_key: Option<PathBuf>,
    /// ACME (RFC 8555) directory URL for custom-domain certificates (with --https-bind):
    /// Let's Encrypt by default; its staging directory or any RFC 8555 server (Pebble).
    #[arg(long, env = "SOUK_ACME_DIRECTORY", default_value = souk::custom_domains::LETS_ENCRYPT, global = true)]
    acme_directory: String,
    /// PEM root certificate of the ACME server's own HTTPS (a test CA such as Pebble's).
    #[arg(long, env = "SOUK_ACME_ROOT_CA", global = true)]
    acme_root_ca: Option<PathBuf>,
    /// Contact e-mail of the platform's ACME account.
    #[arg(long, env = "SOUK_ACME_CONTACT", global = true)]
    acme_contact: Option<String>,
    /// Host a custom domain's CNAME must point to (default: the base domain).
    #[arg(long, env = "SOUK_DOMAIN_TARGET", global = true)]
    domain_target: Option<String>,
    /// Comma-separated A/AAAA addresses apex custom domains must point to.
    #[arg(
        long,
        env = "SOUK_DOMAIN_ADDRESSES",
        value_delimiter = ',',
        global = true
    )]
    domain_addresses: Vec<std::net::IpAddr>,
    /// DNS server (`ip:port`) for domain verification (default: the system's resolvers).
    #[arg(long, env = "SOUK_DNS_SERVER", global = true)]
    dns_server: Option<SocketAddr>,
    /// Hours a verified domain may fail its re-checks before it is deactivated.
    #[arg(
        long,
        env = "SOUK_DOMAIN_GRACE_HOURS",
        default_value_t = 72,
        global = true
    )]
    domain_grace_hours: u64,
    /// Hours between re-verifications of verified domains.
    #[arg(
        long,
        env = "SOUK_DOMAIN_RECHECK_HOURS",
        default_value_t = 6,
        global = true
    )]
    domain_recheck_hours: u64,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `souk=debug`.
    #[arg(long, env = "SOUK_LOG", default_value = "info", global = true)]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "SOUK_LOG_JSON", global = true)]
    log_json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: API, storefronts, admin and job workers on one port.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "SOUK_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Create a platform admin and demo merchants with a demo catalog on first start.
        #[arg(long, env = "SOUK_DEMO")]
        demo: bool,
        /// Concurrent job workers (provisioning, e-mail).
        #[arg(long, env = "SOUK_WORKERS", default_value_t = 4)]
        workers: usize,
        /// Largest accepted request body in bytes (CSV uploads included).
        #[arg(long, env = "SOUK_MAX_BODY_BYTES", default_value_t = 20 * 1024 * 1024)]
        max_body_bytes: usize,
        /// Largest accepted CSV import upload in bytes (product and vendor imports).
        #[arg(long, env = "SOUK_MAX_IMPORT_BYTES", default_value_t = 100 * 1024 * 1024)]
        max_import_bytes: usize,
        /// Access-token lifetime in seconds.
        #[arg(long, env = "SOUK_ACCESS_TOKEN_TTL", default_value_t = 900)]
        access_token_ttl: i64,
    },
    /// Run database migrations and exit.
    Migrate,
    /// Platform admin accounts.
    #[command(subcommand)]
    Admin(AdminCmd),
    /// Bulk imports.
    #[command(subcommand)]
    Import(ImportCmd),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(BenchCmd),
}

#[derive(Subcommand)]
enum AdminCmd {
    /// Create (or reset) a platform admin; prints a generated password unless one is given.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Platform Admin")]
        name: String,
        /// Password (default: generated and printed once). Prefer SOUK_ADMIN_PASSWORD.
        #[arg(long, env = "SOUK_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Platform role: super_admin (everything) or support (read-only).
        #[arg(long, default_value = "super_admin")]
        role: String,
    },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// Create and provision merchants from a vendor CSV
    /// (vendor_name,subdomain,owner_name,owner_email,…,initial_password).
    Vendors {
        file: PathBuf,
        #[arg(long, default_value = "classic")]
        theme: String,
        #[arg(long, default_value = "starter")]
        plan: String,
    },
    /// Import a product CSV (Shopify legacy/2024+, WooCommerce) into one merchant.
    Products {
        /// The merchant's handle (subdomain).
        #[arg(long)]
        tenant: String,
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Provision N merchants end to end on a temporary SQLite database (or --database-url)
    /// and print latency percentiles and throughput.
    Provision {
        #[arg(long, default_value_t = 1000)]
        merchants: usize,
        /// Job workers.
        #[arg(long, default_value_t = 4)]
        workers: usize,
    },
    /// Open WebSocket clients over many tenants, create orders at a steady rate, and print
    /// the commit-to-client latency distribution. Two nodes need --database-url
    /// postgres://… and --events nats://….
    Events {
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        #[arg(long, default_value_t = 100)]
        tenants: usize,
        /// Orders per second.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 1)]
        nodes: usize,
    },
    /// Deliver webhooks to a local receiver and print deliveries per second.
    Webhooks {
        /// Events to emit (each goes to every endpoint).
        #[arg(long = "event-count", default_value_t = 2000)]
        events: usize,
        #[arg(long, default_value_t = 10)]
        endpoints: usize,
        /// Deliveries in flight at once.
        #[arg(long, default_value_t = 128)]
        concurrency: usize,
    },
    /// Background product import of a generated Shopify CSV (new products, then the same
    /// file again), and the direct import for comparison; prints products/s.
    Import {
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        /// Variants (CSV rows) per product; a real 53.7 MB export had about 11.
        #[arg(long, default_value_t = 3)]
        variants_per_product: usize,
        /// Write the legacy Shopify export's full column set and ~3 KB descriptions, so
        /// that the file's size per row is like a real export's.
        #[arg(long)]
        real_shape: bool,
    },
    /// Stage a generated marketplace feed of N items in each format (TSV, CSV, semicolon,
    /// RSS, Atom), re-import it unchanged and changed, publish 1,000 items; prints items/s
    /// and peak RSS.
    Feed {
        #[arg(long, default_value_t = 100_000)]
        items: usize,
    },
    /// Seed one tenant with many products, sign a member and an admin in, render each
    /// dashboard and admin page N times through the HTTP server with the session cookies,
    /// and print p50/p95/p99 per page (loopback round trip; target p95 < 20 ms).
    Ui {
        #[arg(long, default_value_t = 10_000)]
        products: usize,
        #[arg(long, default_value_t = 200)]
        orders: usize,
        /// Extra pending merchants for the admin lists.
        #[arg(long, default_value_t = 300)]
        merchants: usize,
        /// Requests per page.
        #[arg(long, default_value_t = 200)]
        iterations: usize,
        /// PostgreSQL: measure right after seeding, without the `vacuum analyze` that
        /// autovacuum would run within a minute (the planner then still thinks the tenant
        /// has a few dozen products).
        #[arg(long)]
        no_analyze: bool,
    },
    /// One store with a generated catalog and the demo checkout settings; N concurrent
    /// shoppers place orders over the Store API (cart, 1–3 lines, address + shipping +
    /// bank transfer, complete); prints orders/s and p50/p95/p99 per step and of the
    /// storefront cart and checkout pages.
    Checkout {
        #[arg(long, default_value_t = 16)]
        shoppers: usize,
        #[arg(long, default_value_t = 2000)]
        orders: usize,
        /// Products in the catalog (3 variants each).
        #[arg(long, default_value_t = 300)]
        products: usize,
    },
    /// The read path against the machine's limit: seeds one store (every 12th product has
    /// 50–100 variants), saves the storefront and Store API responses to files, serves them
    /// with nginx and runs wrk against nginx and Souk in turn (req/s, p50, p99, ratio).
    /// Needs nginx and wrk (Debian: apt-get install nginx wrk).
    Read {
        #[arg(long, default_value_t = 338)]
        products: usize,
        /// Extra provisioned merchants (the RSS figures then hold that many tenants).
        #[arg(long, default_value_t = 0)]
        merchants: usize,
        /// wrk seconds per endpoint and server.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// wrk connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Only the endpoints whose label contains this text (e.g. `uncached`).
        #[arg(long)]
        only: Option<String>,
    },
    /// Many active custom domains on Souk's HTTPS listener: issues a certificate chain per
    /// domain from a throw-away CA, loads them as `serve` does and prints their memory,
    /// then TLS handshakes/s with SNI (each checked against its domain's certificate).
    Certs {
        #[arg(long, default_value_t = 1000)]
        domains: usize,
        #[arg(long, default_value_t = 5000)]
        handshakes: usize,
        #[arg(long, default_value_t = 16)]
        clients: usize,
    },
}

fn init_tracing(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        b.json().init();
    } else {
        b.init();
    }
}

/// Builds the runtime configuration, refusing values that would misbehave later
/// (each error names the flag and its `SOUK_*` variable).
fn config_from(c: &Common) -> Result<Config, String> {
    let mut cfg = Config::for_tests(c.data_dir.clone());
    cfg.database_url = c.database_url.clone().map(Secret::new);
    cfg.db_max_connections = c.db_max_connections;
    let base = c
        .base_domain
        .trim()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
    };
    if base.len() > 200 || !base.split('.').all(label_ok) {
        return Err(format!(
            "--base-domain (SOUK_BASE_DOMAIN) '{}' is not a host name such as localhost or shops.example.com",
            c.base_domain
        ));
    }
    cfg.base_domain = base;
    if let Some(u) = &c.public_url
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(format!(
            "--public-url (SOUK_PUBLIC_URL) '{u}' must start with http:// or https://"
        ));
    }
    cfg.public_url = c
        .public_url
        .clone()
        .map(|u| u.trim_end_matches('/').to_string());
    cfg.smtp_url = c.smtp_url.clone().map(Secret::new);
    cfg.mail_from = c.mail_from.clone();
    cfg.jwt_secret = c.jwt_secret.clone().map(Secret::new);
    cfg.trust_proxy = c.trust_proxy;
    cfg.events_url = c.events_url.clone();
    cfg.events_subject = c.events_subject.clone();
    cfg.webhooks.allow_private = c.webhooks_allow_private;
    cfg.stripe_api_base = c.stripe_api_base.clone();
    cfg.feeds.allow_private = c.webhooks_allow_private;
    cfg.step_backoff = Duration::from_millis(200);
    cfg.https_bind = c.https_bind;
    cfg.tls_cert = c.tls_cert.clone();
    cfg.tls_key = c.tls_key.clone();
    if c.tls_cert.is_some() != c.tls_key.is_some() {
        return Err("--tls-cert (SOUK_TLS_CERT) and --tls-key (SOUK_TLS_KEY) go together".into());
    }
    if !(c.acme_directory.starts_with("https://") || c.acme_directory.starts_with("http://")) {
        return Err(format!(
            "--acme-directory (SOUK_ACME_DIRECTORY) '{}' must be an http(s) URL",
            c.acme_directory
        ));
    }
    if c.domain_grace_hours == 0 || c.domain_recheck_hours == 0 {
        return Err("--domain-grace-hours and --domain-recheck-hours must be at least 1".into());
    }
    let mut acme = souk::custom_domains::AcmeConfig::new(c.acme_directory.clone());
    acme.root_ca = c.acme_root_ca.clone();
    acme.contact = c.acme_contact.clone();
    cfg.domains = souk::custom_domains::DomainsConfig {
        cname_target: c
            .domain_target
            .as_ref()
            .map(|t| t.trim().trim_end_matches('.').to_ascii_lowercase()),
        apex_addresses: c.domain_addresses.clone(),
        nameserver: c.dns_server,
        grace: Duration::from_secs(c.domain_grace_hours * 3600),
        recheck_every: Duration::from_secs(c.domain_recheck_hours * 3600),
        acme: c.https_bind.map(|_| acme),
        ..Default::default()
    };
    if let Some(s) = &cfg.jwt_secret
        && s.expose().len() < 32
    {
        return Err("--jwt-secret (SOUK_JWT_SECRET) must be at least 32 characters".into());
    }
    Ok(cfg)
}

/// mimalloc instead of the system allocator: the request path allocates and frees many
/// small objects across two worker threads, where glibc's malloc showed up as a quarter of
/// the CPU profile of a cached read (`souk bench read`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(&cli.common.log, cli.common.log_json);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let mut cfg = config_from(&cli.common)?;
    match cli.command {
        Command::Serve {
            bind,
            demo,
            workers,
            max_body_bytes,
            max_import_bytes,
            access_token_ttl,
        } => {
            cfg.bind = bind;
            cfg.workers = workers;
            cfg.max_body_bytes = max_body_bytes;
            cfg.max_import_bytes = max_import_bytes;
            cfg.access_ttl = access_token_ttl;
            let app = Application::build(cfg).await.map_err(|e| e.to_string())?;
            let port = app.port();
            let base = app.state.config.base_domain.clone();
            if demo {
                souk::demo::seed(&app, port)
                    .await
                    .map_err(|e| format!("demo: {e}"))?;
            }
            tracing::info!(port, "souk listening on http://{base}:{port}/");
            eprintln!("Souk is listening on http://{base}:{port}/  (Ctrl-C to stop)");
            app.run_until_stopped(shutdown_signal())
                .await
                .map_err(|e| e.to_string())
        }
        Command::Migrate => {
            let core = Core::open(cfg, String::new())
                .await
                .map_err(|e| e.to_string())?;
            core.db.close().await;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Admin(AdminCmd::Create {
            email,
            name,
            password,
            role,
        }) => {
            let role =
                souk::access::PlatformRole::parse(&role).map_err(|e| format!("--role: {e}"))?;
            let core = Core::open(cfg, String::new())
                .await
                .map_err(|e| e.to_string())?;
            let (email, password, generated) =
                souk::demo::create_staff(&core.db, &email, &name, password, role)
                    .await
                    .map_err(|e| e.to_string())?;
            println!("platform {}: {email}", role.as_str());
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        Command::Import(ImportCmd::Vendors { file, theme, plan }) => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            // Links in the welcome e-mails: --public-url, else `souk serve`'s default.
            let public_url = cfg
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}:8080", cfg.base_domain));
            let core = Core::open(cfg, public_url)
                .await
                .map_err(|e| e.to_string())?;
            import_vendors_cli(&core, &bytes, &theme, &plan).await
        }
        Command::Import(ImportCmd::Products { tenant, file }) => {
            let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let core = Core::open(cfg, String::new())
                .await
                .map_err(|e| e.to_string())?;
            let bar = ProgressBar::new(0).with_style(
                ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} products ({elapsed})")
                    .map_err(|e| e.to_string())?
                    .progress_chars("=> "),
            );
            bar.set_message("importing");
            let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
            let import = souk::demo::import_products_for_handle(
                &core.db,
                &tenant,
                &bytes,
                name.as_deref(),
                |done, total| {
                    bar.set_length(u64::try_from(total).unwrap_or(0));
                    bar.set_position(u64::try_from(done).unwrap_or(0));
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            bar.finish_and_clear();
            if import.status != "completed" {
                return Err(format!(
                    "the import {}: {}",
                    import.status,
                    import.error.unwrap_or_default()
                ));
            }
            let r = import.report.unwrap_or_default();
            let n = |k: &str| r.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
            println!(
                "format: {}\nrows read: {}\nproducts: {} ({} variants)\ncreated: {}  updated: {}  unchanged: {}\nrows not imported: {}  rows imported with warnings: {}",
                r.get("format").and_then(|v| v.as_str()).unwrap_or("?"),
                n("rows"),
                n("products"),
                n("variants"),
                n("created"),
                n("updated"),
                n("unchanged"),
                n("failed"),
                n("warnings")
            );
            let ignored: Vec<&str> = r
                .get("columns_ignored")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            if !ignored.is_empty() {
                println!("columns not imported: {}", ignored.join(", "));
            }
            for w in r
                .get("file_warnings")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .filter_map(|w| w.as_str())
            {
                println!("note: {w}");
            }
            for e in r
                .get("errors")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                let num = |k: &str| {
                    e.get(k)
                        .and_then(|v| v.as_u64())
                        .and_then(|v| usize::try_from(v).ok())
                        .unwrap_or(0)
                };
                println!(
                    "  {}: {}{}",
                    souk::import::location(num("row"), num("line")),
                    e.get("column")
                        .and_then(|v| v.as_str())
                        .map(|c| format!("[{c}] "))
                        .unwrap_or_default(),
                    e.get("reason").and_then(|v| v.as_str()).unwrap_or("")
                );
            }
            Ok(())
        }
        Command::Bench(BenchCmd::Provision { merchants, workers }) => {
            souk::bench::provision(cfg, merchants, workers)
                .await
                .map_err(|e| e.to_string())
        }
        Command::Bench(BenchCmd::Events {
            clients,
            tenants,
            rate,
            seconds,
            nodes,
        }) => souk::bench::events(cfg, clients, tenants, rate, seconds, nodes).await,
        Command::Bench(BenchCmd::Webhooks {
            events,
            endpoints,
            concurrency,
        }) => souk::bench::webhooks(cfg, events, endpoints, concurrency).await,
        Command::Bench(BenchCmd::Import {
            products,
            variants_per_product,
            real_shape,
        }) => souk::bench::import(cfg, products, variants_per_product, real_shape).await,
        Command::Bench(BenchCmd::Feed { items }) => souk::bench::feed(cfg, items).await,
        Command::Bench(BenchCmd::Ui {
            products,
            orders,
            merchants,
            iterations,
            no_analyze,
        }) => souk::bench::ui(cfg, products, orders, merchants, iterations, !no_analyze).await,
        Command::Bench(BenchCmd::Checkout {
            shoppers,
            orders,
            products,
        }) => souk::bench::checkout(cfg, shoppers, orders, products).await,
        Command::Bench(BenchCmd::Certs {
            domains,
            handshakes,
            clients,
        }) => {
            souk::bench::certs(
                cfg,
                souk::bench::CertsBench {
                    domains,
                    handshakes,
                    clients,
                },
            )
            .await
        }
        Command::Bench(BenchCmd::Read {
            products,
            merchants,
            seconds,
            connections,
            only,
        }) => {
            souk::bench::read(
                cfg,
                souk::bench::ReadBench {
                    products,
                    merchants,
                    seconds,
                    connections,
                    only,
                },
            )
            .await
        }
    }
}

async fn import_vendors_cli(
    core: &Core,
    bytes: &[u8],
    theme: &str,
    plan: &str,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let workers = core.spawn_workers(4, rx);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:12} [{bar:40}] {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("creating");
    let report = souk::control::import_vendors(
        &core.db,
        &souk::store::audit::Actor::system("cli"),
        &core.themes,
        bytes,
        theme,
        plan,
        |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    core.provisioner.wake();
    bar.set_message("provisioning");
    bar.set_position(0);
    let ids: Vec<_> = report.merchants.iter().map(|m| m.id).collect();
    let mut failed_provisioning = vec![];
    loop {
        let mut done = 0;
        failed_provisioning.clear();
        for id in &ids {
            match souk::store::provisioning::latest_run(&core.db, *id)
                .await
                .map_err(|e| e.to_string())?
            {
                Some(r) if r.status == "completed" => done += 1,
                Some(r) if r.status == "failed" => {
                    done += 1;
                    failed_provisioning.push((*id, r.error.unwrap_or_default()));
                }
                _ => {}
            }
        }
        bar.set_position(done as u64);
        if done == ids.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bar.finish_with_message("done");
    let _ = tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    println!("rows: {}", report.total_rows);
    println!(
        "created and provisioned: {}",
        report.created.saturating_sub(failed_provisioning.len())
    );
    println!(
        "already provisioned by an earlier upload: {}",
        report.already_provisioned
    );
    println!("failed rows: {}", report.failed);
    for e in &report.errors {
        println!(
            "  {} [{}]: {}",
            souk::import::location(e.row, e.line),
            e.column.as_deref().unwrap_or("-"),
            e.reason
        );
    }
    for (id, err) in &failed_provisioning {
        println!("  provisioning of {id} failed: {err}");
    }
    core.db.close().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
