//! The `souk bench` subcommands: `provision` (merchants end to end: latency percentiles
//! and throughput), `events` (commit → WebSocket client latency), `webhooks` (deliveries
//! per second), `ui` (server-rendered page latency of the dashboard and admin panel) and
//! `checkout` (concurrent shoppers over the Store API: orders/s, per-step latency) and
//! `read` (storefront and Store API reads against nginx serving the same bytes, [`read`])
//! and `certs` (certificate memory and TLS handshakes with many custom domains, [`certs`]).

mod certs;
mod read;
pub use certs::{CertsBench, certs};
pub use read::{ReadBench, read};

use crate::app::{Config, Core};
use crate::domain::{Currency, Email, Subdomain};
use crate::store::platform::{self, NewMerchant};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs the benchmark on a temporary data folder (unless `--database-url` is set) with
/// `concurrency` merchants in flight at a time. Prints figures; asserts nothing.
pub async fn provision(mut cfg: Config, merchants: usize, workers: usize) -> Result<(), String> {
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    cfg.data_dir = tmp.clone();
    cfg.workers = workers;
    let backend = if cfg.database_url.is_some() {
        "configured database"
    } else {
        "SQLite (temporary)"
    };
    let core = Arc::new(
        Core::open(cfg, "http://localhost:8080".into())
            .await
            .map_err(|e| e.to_string())?,
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let handles = core.spawn_workers(workers, rx);
    let concurrency = workers.max(1);
    println!(
        "provisioning {merchants} merchants on {backend}, {workers} workers, {concurrency} in flight"
    );
    let bar = indicatif::ProgressBar::new(merchants as u64);
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let prefix = format!("b{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let mut tasks = vec![];
    for _ in 0..concurrency {
        let control = Control::of(&core);
        let next = next.clone();
        let bar = bar.clone();
        let prefix = prefix.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= merchants {
                    return Ok::<_, String>(lat);
                }
                let p = control.provision(&prefix, i, "starter").await?;
                lat.push((p.activation, p.total));
                bar.inc(1);
            }
        }));
    }
    let mut all = vec![];
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    let wall = started.elapsed();
    bar.finish_and_clear();
    let _ = tx.send(true);
    for h in handles {
        let _ = h.await;
    }
    let mut act: Vec<f64> = all.iter().map(|(a, _)| a.as_secs_f64() * 1000.0).collect();
    let mut e2e: Vec<f64> = all.iter().map(|(_, b)| b.as_secs_f64() * 1000.0).collect();
    act.sort_by(f64::total_cmp);
    e2e.sort_by(f64::total_cmp);
    let pct = |v: &[f64], p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!("merchants provisioned: {}", all.len());
    println!("wall time:             {:.2} s", wall.as_secs_f64());
    println!(
        "throughput:            {:.1} merchants/s",
        all.len() as f64 / wall.as_secs_f64()
    );
    println!(
        "activation → active:   p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&act, 0.5),
        pct(&act, 0.95),
        pct(&act, 0.99),
        pct(&act, 1.0)
    );
    println!(
        "create + provision:    p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        pct(&e2e, 0.5),
        pct(&e2e, 0.95),
        pct(&e2e, 0.99),
        pct(&e2e, 1.0)
    );
    core.db.close().await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// What provisioning a bench tenant needs from a running node.
#[derive(Clone)]
struct Control {
    db: crate::store::Db,
    themes: Arc<crate::themes::Themes>,
    provisioner: crate::provision::Provisioner,
}

impl Control {
    fn of(core: &Core) -> Self {
        Self {
            db: core.db.clone(),
            themes: core.themes.clone(),
            provisioner: core.provisioner.clone(),
        }
    }

    /// Creates and provisions one merchant on `plan` through the control plane (the calls
    /// the admin API makes) and waits until it is active.
    async fn provision(&self, prefix: &str, i: usize, plan: &str) -> Result<Provisioned, String> {
        let t0 = Instant::now();
        let actor = crate::store::audit::Actor::system("bench");
        let email = format!("owner{i}@{prefix}.example");
        let mut rx = self.provisioner.events.subscribe();
        let m = platform::create_merchant(
            &self.db,
            &actor,
            &NewMerchant {
                name: format!("Bench Shop {i}"),
                owner_name: Some("Bench Owner".into()),
                owner_email: Email::parse(&email).map_err(|e| e.message)?,
                owner_phone: None,
                business_address: None,
                business_city: None,
                business_postal_code: None,
                business_country: None,
                currency: Currency::EUR,
                handle: Some(Subdomain::parse(&format!("{prefix}-{i}")).map_err(|e| e.message)?),
                initial_password_hash: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let t_activate = Instant::now();
        crate::control::activate(&self.db, &actor, &self.themes, m.id, "classic", plan, None)
            .await
            .map_err(|e| e.to_string())?;
        self.provisioner.wake();
        loop {
            match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                Ok(Ok((id, status))) if id == m.id => {
                    if status != "completed" {
                        return Err(format!("merchant {i} provisioning {status}"));
                    }
                    break;
                }
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    continue;
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("merchant {i} did not finish within 30 s")),
            }
        }
        Ok(Provisioned {
            tenant: m.id,
            owner_email: email,
            activation: t_activate.elapsed(),
            total: t0.elapsed(),
        })
    }

    /// The owner's user id of a provisioned merchant.
    async fn owner(&self, p: &Provisioned) -> Result<uuid::Uuid, String> {
        Ok(crate::store::users::user_by_email(&self.db, &p.owner_email)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("owner not created")?
            .id)
    }
}

/// A merchant provisioned by a benchmark, with its timings.
struct Provisioned {
    tenant: uuid::Uuid,
    owner_email: String,
    /// Activation call → provisioning completed.
    activation: Duration,
    /// Merchant creation → provisioning completed.
    total: Duration,
}

fn percentiles(label: &str, v: &mut [f64]) {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
        "{label:<32} n {:>7}  p50 {:>6.1} ms  p95 {:>6.1} ms  p99 {:>6.1} ms  max {:>7.1} ms",
        v.len(),
        pct(0.5),
        pct(0.95),
        pct(0.99),
        pct(1.0)
    );
}

/// What a run is measured on: the backend (`PostgreSQL` with `--database-url`, else
/// `SQLite`) and the build (`release build` or `debug build`), for the figures' header.
fn labels(cfg: &Config) -> (&'static str, &'static str) {
    let backend = if cfg.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let build = if cfg!(debug_assertions) {
        "debug build"
    } else {
        "release build"
    };
    (backend, build)
}

/// A node started by a benchmark: full HTTP server on a random port.
struct Node {
    port: u16,
    /// Port of the HTTPS listener, when the config has `https_bind`.
    https_port: Option<u16>,
    /// The HTTPS listener's SNI certificate store, when it runs.
    certs: Option<Arc<crate::custom_domains::tls::CertStore>>,
    keys: crate::auth::TokenKeys,
    secret_box: Arc<crate::crypto::SecretBox>,
    control: Control,
    page_cache: Arc<crate::web::storefront::PageCache>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_node(mut cfg: Config, dir: std::path::PathBuf) -> Result<Node, String> {
    cfg.data_dir = dir;
    cfg.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let app = crate::app::Application::build(cfg)
        .await
        .map_err(|e| e.to_string())?;
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let (port, keys, control) = (app.port(), app.state.keys.clone(), Control::of(app.core()));
    let (https_port, certs) = (app.https_port(), app.core().domains.certs.clone());
    let secret_box = app.state.secret_box.clone();
    let page_cache = app.state.page_cache.clone();
    let task = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Node {
        port,
        https_port,
        certs,
        keys,
        secret_box,
        control,
        page_cache,
        stop,
        task,
    })
}

/// `souk bench events`: opens `clients` WebSocket clients spread over `tenants` tenants
/// (and over `nodes` nodes; 2 need PostgreSQL and NATS), creates orders through the HTTP
/// API of the first node at `rate` per second for `seconds`, and prints the distribution
/// of the time from the event's creation inside the order's transaction to its arrival at
/// each client (so it includes the commit). Prints figures; asserts nothing.
pub async fn events(
    mut cfg: Config,
    clients: usize,
    tenants: usize,
    rate: u32,
    seconds: u64,
    nodes: usize,
) -> Result<(), String> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    if !(1..=2).contains(&nodes) || tenants == 0 || clients == 0 || rate == 0 {
        return Err("--nodes must be 1 or 2; --tenants, --clients and --rate above 0".into());
    }
    if nodes == 2 && (cfg.events_url.is_none() || cfg.database_url.is_none()) {
        return Err("two nodes need --database-url postgres://… and --events nats://…".into());
    }
    if cfg.events_url.is_some() {
        cfg.events_subject = format!("souk-bench.{}", uuid::Uuid::now_v7().simple());
    }
    cfg.workers = 2;
    cfg.step_backoff = Duration::from_millis(20);
    cfg.jwt_secret = Some(crate::auth::Secret::new(crate::auth::random_token(48)));
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    let mut running = vec![];
    for n in 0..nodes {
        running.push(start_node(cfg.clone(), tmp.join(format!("node{n}"))).await?);
    }
    let backend = if cfg.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let fanout = if cfg.events_url.is_some() {
        "NATS"
    } else {
        "in-process"
    };
    println!(
        "events: {clients} WebSocket clients, {tenants} tenants, {nodes} node(s), {backend}, {fanout} fan-out, orders at {rate}/s for {seconds} s"
    );
    let prefix = format!("e{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let bar = indicatif::ProgressBar::new(tenants as u64).with_message("provisioning tenants");
    let mut owners = vec![];
    for i in 0..tenants {
        let p = running[0].control.provision(&prefix, i, "growth").await?;
        owners.push((p.tenant, running[0].control.owner(&p).await?));
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Clients: client c follows tenant c % tenants on node c % nodes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before = rss_bytes();
    let (lat_tx, mut lat_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, f64)>();
    let bar = indicatif::ProgressBar::new(clients as u64).with_message("connecting clients");
    for c in 0..clients {
        let (tenant, user) = owners[c % tenants];
        let node = &running[c % nodes];
        let token = node.keys.issue(user, false, Some(tenant), false, None)?;
        let url = format!(
            "ws://127.0.0.1:{}/api/v1/events/ws?types=order.created",
            node.port
        );
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {token}")
                .parse()
                .map_err(|_| "bad header".to_string())?,
        );
        // Small client buffers, so the RSS per connection is mostly the server's.
        let small = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut ws, _) = tokio_tungstenite::connect_async_with_config(req, Some(small), false)
            .await
            .map_err(|e| format!("client {c}: {e}"))?;
        let (tx, node) = (lat_tx.clone(), c % nodes);
        tokio::spawn(async move {
            while let Some(Ok(msg)) = ws.next().await {
                if let tokio_tungstenite::tungstenite::Message::Text(t) = msg
                    && let Ok(v) = serde_json::from_str::<serde_json::Value>(&t)
                    && let Some(at) = v["occurred_at"].as_str()
                    && let Ok(at) = time::OffsetDateTime::parse(
                        at,
                        &time::format_description::well_known::Rfc3339,
                    )
                {
                    let ms = (time::OffsetDateTime::now_utc() - at).as_seconds_f64() * 1000.0;
                    let _ = tx.send((node, ms));
                }
            }
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    drop(lat_tx);
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let (Some(before), Some(after)) = (rss_before, rss_bytes()) {
        let per = after.saturating_sub(before) as f64 / clients as f64;
        println!(
            "idle sockets:    RSS {:.1} MB → {:.1} MB with {clients} open: {:.1} KB per connection (server side plus the in-process client's 4 KiB-buffer side)",
            before as f64 / 1e6,
            after as f64 / 1e6,
            per / 1024.0
        );
    }
    // Orders at a steady rate through node A's HTTP API, round robin over the tenants.
    let http = reqwest::Client::new();
    let total = rate as usize * seconds as usize;
    let tokens: Vec<String> = owners
        .iter()
        .map(|(t, u)| running[0].keys.issue(*u, false, Some(*t), false, None))
        .collect::<Result<_, _>>()?;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let bar = indicatif::ProgressBar::new(total as u64).with_message("creating orders");
    let started = Instant::now();
    let mut inflight = vec![];
    for i in 0..total {
        tick.tick().await;
        let req = http
            .post(format!(
                "http://127.0.0.1:{}/api/v1/orders",
                running[0].port
            ))
            .bearer_auth(&tokens[i % tenants])
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "email": format!("buyer{i}@bench.example"),
                    "line_items": [{ "title": "Bench item", "price_minor": 1250, "quantity": 2 }]
                })
                .to_string(),
            );
        let bar = bar.clone();
        inflight.push(tokio::spawn(async move {
            let ok = req.send().await.is_ok_and(|r| r.status().is_success());
            bar.inc(1);
            (i, ok)
        }));
    }
    let clients_of = |t: usize| (0..clients).filter(|c| c % tenants == t).count();
    let mut created = 0;
    let mut expected = 0;
    for t in inflight {
        if let Ok((i, true)) = t.await {
            created += 1;
            expected += clients_of(i % tenants);
        }
    }
    let send_secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let mut lat: Vec<Vec<f64>> = vec![vec![]; nodes];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut got = 0;
    while got < expected {
        match tokio::time::timeout_at(deadline, lat_rx.recv()).await {
            Ok(Some((node, ms))) => {
                lat[node].push(ms);
                got += 1;
            }
            _ => break,
        }
    }
    println!(
        "orders created:  {created} of {total} in {send_secs:.1} s ({:.0}/s)",
        created as f64 / send_secs
    );
    println!(
        "events received: {got} of {expected} expected (each order × the clients of its tenant)"
    );
    let mut all: Vec<f64> = lat.iter().flatten().copied().collect();
    percentiles("commit → client, all clients", &mut all);
    if nodes == 2 {
        percentiles("  clients on node A (writer)", &mut lat[0]);
        percentiles("  clients on node B (via NATS)", &mut lat[1]);
    }
    for n in running {
        let _ = n.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(15), n.task).await;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// CPU seconds this process has used (user + system) and its live threads' context switches
/// (voluntary + involuntary), from Linux `/proc/self/stat` and `/proc/self/task/*/status`; `None` elsewhere.
/// Clock ticks are taken as 100 per second (`USER_HZ` on Linux).
fn cpu_and_switches() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // Per thread: `/proc/self/status` counts the main thread only.
    let mut switches = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        switches += status
            .lines()
            .filter(|l| l.contains("ctxt_switches"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Some((ticks as f64 / 100.0, switches))
}

/// Resident set size of this process (Linux `/proc/self/statm`), `None` elsewhere.
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `souk bench webhooks`: delivers `events × endpoints` webhooks to a local receiver
/// (answering 204) and prints deliveries per second, from the commit of the first events
/// to the last delivery recorded as succeeded. Prints figures; asserts nothing.
pub async fn webhooks(
    mut cfg: Config,
    events: usize,
    endpoints: usize,
    concurrency: usize,
) -> Result<(), String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if events == 0 || endpoints == 0 || endpoints > 20 {
        return Err("--events above 0, --endpoints 1..=20".into());
    }
    let received = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let receiver = format!(
        "http://127.0.0.1:{}",
        listener.local_addr().map_err(|e| e.to_string())?.port()
    );
    let r = received.clone();
    tokio::spawn(async move {
        let app = axum::Router::new().fallback(move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }
        });
        let _ = axum::serve(listener, app).await;
    });
    cfg.webhooks.allow_private = true;
    cfg.webhooks.concurrency = concurrency;
    cfg.workers = 2;
    cfg.step_backoff = Duration::from_millis(20);
    cfg.jwt_secret = Some(crate::auth::Secret::new(crate::auth::random_token(48)));
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let backend = if cfg.database_url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let prefix = format!("w{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let tenant = node.control.provision(&prefix, 0, "growth").await?.tenant;
    let db = node.control.db.clone();
    let scope = crate::store::TenantDb::new(db.clone(), tenant);
    let actor = crate::store::audit::Actor::system("bench");
    for e in 0..endpoints {
        let secret = crate::webhooks::signature::SigningSecret::generate()?.to_text();
        scope
            .create_webhook_endpoint(
                &actor,
                &crate::store::webhooks::EndpointInput {
                    url: format!("{receiver}/hook/{e}"),
                    description: None,
                    event_types: vec!["order.*".into()],
                    enabled: true,
                },
                &node.secret_box.seal(&secret)?,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let total = events * endpoints;
    println!(
        "webhooks: {events} events × {endpoints} endpoints = {total} deliveries to a local receiver, {backend}, {concurrency} in flight"
    );
    // The events are written straight to the outbox (as an order's transaction would),
    // in transactions of 500.
    let bar = indicatif::ProgressBar::new(total as u64).with_message("delivering");
    let started = Instant::now();
    let payload = serde_json::json!({ "id": uuid::Uuid::now_v7(), "number": 1001, "total": { "amount_minor": 2500, "currency": "EUR" } });
    for chunk in (0..events).collect::<Vec<_>>().chunks(500) {
        let mut tx = scope.begin().await.map_err(|e| e.to_string())?;
        for _ in chunk {
            crate::store::events::emit(&mut tx, Some(tenant), "order.created", &payload)
                .await
                .map_err(|e| e.to_string())?;
        }
        tx.commit().await.map_err(|e| e.to_string())?;
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut succeeded: i64 = 0;
    while Instant::now() < deadline {
        bar.set_position(received.load(Ordering::Relaxed) as u64);
        succeeded = crate::dispatch!(&db, p => sqlx::query_scalar(
            "select count(*) from webhook_deliveries where tenant_id = $1 and status = 'succeeded'",
        )
        .bind(tenant)
        .fetch_one(p)
        .await)
        .map_err(|e| e.to_string())?;
        if succeeded as usize >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    println!("requests received: {}", received.load(Ordering::Relaxed));
    println!("deliveries succeeded (recorded): {succeeded} of {total}");
    println!("wall time: {secs:.2} s");
    println!("throughput: {:.0} deliveries/s", succeeded as f64 / secs);
    let _ = node.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), node.task).await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// One page of the UI benchmark: a label and the paths to try, first that renders wins
/// (the page may not be built yet, or may live at one of several addresses).
struct UiPage {
    label: &'static str,
    candidates: Vec<String>,
}

/// Cookie jar of one signed-in browser session (`name=value` pairs sent back as-is).
#[derive(Default)]
struct Jar(std::collections::BTreeMap<String, String>);

impl Jar {
    fn absorb(&mut self, r: &reqwest::Response) {
        for v in r.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Ok(s) = v.to_str()
                && let Some((k, val)) = s.split(';').next().unwrap_or(s).split_once('=')
            {
                self.0.insert(k.trim().to_string(), val.trim().to_string());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Signs in through the HTML form of `area` (`admin` or `dashboard`), as a browser
/// would, and returns the session cookies. Errors: the form did not redirect (wrong
/// credentials, CSRF refusal).
async fn ui_sign_in(
    http: &reqwest::Client,
    base: &str,
    area: &str,
    email: &str,
    password: &str,
) -> Result<Jar, String> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("email", email)
        .append_pair("password", password)
        .finish();
    let r = http
        .post(format!("{base}/{area}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", base)
        .header("sec-fetch-site", "same-origin")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if r.status() != reqwest::StatusCode::SEE_OTHER {
        return Err(format!("{area} sign-in answered {}", r.status()));
    }
    let mut jar = Jar::default();
    jar.absorb(&r);
    Ok(jar)
}

/// `GET path` with the session cookies; returns the status, the redirect target and the
/// time until the whole body was read.
async fn ui_get(
    http: &reqwest::Client,
    base: &str,
    jar: &Jar,
    path: &str,
) -> Result<(reqwest::StatusCode, Option<String>, Duration), String> {
    let t0 = Instant::now();
    let r = http
        .get(format!("{base}{path}"))
        .header(reqwest::header::COOKIE, jar.header())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status();
    let location = r
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    r.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, location, t0.elapsed()))
}

/// `souk bench ui`: one tenant with `products` products (bulk upsert, as the importer
/// writes), `orders` orders (HTTP API) and `merchants` more pending merchants for the
/// admin lists; signs an owner into the dashboard and a super admin into the admin panel
/// through the HTML sign-in forms; then renders every page `iterations` times, one
/// request at a time, through the real HTTP server with the session cookies, and prints
/// p50/p95/p99 per page. The time is the round trip on loopback (request sent → whole
/// body read), i.e. server time plus loopback overhead. Pages that are not built (404)
/// are listed as skipped. Prints figures; asserts nothing.
pub async fn ui(
    mut cfg: Config,
    products: usize,
    orders: usize,
    merchants: usize,
    iterations: usize,
    analyze: bool,
) -> Result<(), String> {
    use crate::domain::{Handle, ProductStatus, Sku};
    use crate::store::catalog::{ProductInput, VariantInput};
    if iterations == 0 {
        return Err("--iterations above 0".into());
    }
    cfg.workers = 2;
    cfg.step_backoff = Duration::from_millis(20);
    cfg.access_ttl = 3600;
    cfg.jwt_secret = Some(crate::auth::Secret::new(crate::auth::random_token(48)));
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let base = format!("http://127.0.0.1:{}", node.port);
    let (backend, build) = labels(&cfg);
    let prefix = format!("u{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let db = node.control.db.clone();
    let actor = crate::store::audit::Actor::system("bench");

    // The tenant, its owner with a password, and a super admin.
    let seed_started = Instant::now();
    let p = node.control.provision(&prefix, 0, "scale").await?;
    let owner = node.control.owner(&p).await?;
    let password = crate::auth::random_token(24);
    let hash = crate::auth::hash_password(&password)?;
    crate::store::users::set_password(&db, &actor, owner, &hash, None)
        .await
        .map_err(|e| e.to_string())?;
    let admin_email = format!("admin@{prefix}.example");
    crate::demo::create_staff(
        &db,
        &admin_email,
        "Bench Admin",
        Some(password.clone()),
        crate::access::PlatformRole::SuperAdmin,
    )
    .await?;

    // Products: bulk upserts of 500, the importer's path.
    let scope = crate::store::TenantDb::new(db.clone(), p.tenant);
    let bar = indicatif::ProgressBar::new(products as u64).with_message("seeding products");
    let all: Vec<usize> = (0..products).collect();
    for chunk in all.chunks(500) {
        let mut inputs = Vec::with_capacity(chunk.len());
        for &i in chunk {
            inputs.push(ProductInput {
                handle: Handle::parse(&format!("bench-product-{i}")).map_err(|e| e.message)?,
                title: format!("Bench Product {i}"),
                body_html: format!("<p>Product number {i} of the UI benchmark.</p>"),
                vendor: Some(format!("Vendor {}", i % 50)),
                product_type: Some(format!("Type {}", i % 20)),
                tags: vec![format!("tag{}", i % 10), "bench".into()],
                status: if i % 10 == 0 {
                    ProductStatus::Draft
                } else {
                    ProductStatus::Active
                },
                options: vec!["Size".into()],
                featured: false,
                seo: None,
                attributes: None,
                variants: ["S", "M", "L"]
                    .iter()
                    .enumerate()
                    .map(|(v, size)| {
                        Ok(VariantInput {
                            sku: Some(
                                Sku::parse(&format!("BENCH-{i}-{size}")).map_err(|e| e.message)?,
                            ),
                            option_values: vec![(*size).to_string()],
                            price_minor: 1000 + (i as i64 % 90) * 100 + v as i64 * 50,
                            compare_at_minor: None,
                            inventory: 10,
                            inventory_policy: crate::domain::InventoryPolicy::Deny,
                            inventory_tracked: true,
                            barcode: None,
                            weight_grams: Some(250),
                        })
                    })
                    .collect::<Result<_, String>>()?,
                images: vec![],
                collections: vec![],
            });
        }
        let out = scope
            .upsert_products(&actor, &inputs, "EUR", -1)
            .await
            .map_err(|e| e.to_string())?;
        if !out.failed.is_empty() {
            return Err(format!("seeding products: {:?}", out.failed.first()));
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();

    // Orders through the HTTP API, a few in flight.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let token = node.keys.issue(owner, false, Some(p.tenant), false, None)?;
    for chunk in (0..orders).collect::<Vec<_>>().chunks(8) {
        let mut inflight = vec![];
        for &i in chunk {
            let req = http
                .post(format!("{base}/api/v1/orders"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({
                        "email": format!("buyer{i}@bench.example"),
                        "line_items": [{ "title": "Bench item", "price_minor": 1250, "quantity": 1 + i % 3 }]
                    })
                    .to_string(),
                );
            inflight.push(tokio::spawn(async move { req.send().await }));
        }
        for t in inflight {
            let r = t
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("creating an order answered {}", r.status()));
            }
        }
    }
    // Pending merchants, so the admin lists have rows to page through.
    for i in 0..merchants {
        platform::create_merchant(
            &db,
            &actor,
            &NewMerchant {
                name: format!("Pending Shop {i}"),
                owner_name: Some("Pending Owner".into()),
                owner_email: Email::parse(&format!("pending{i}@{prefix}.example"))
                    .map_err(|e| e.message)?,
                owner_phone: None,
                business_address: None,
                business_city: None,
                business_postal_code: None,
                business_country: None,
                currency: Currency::EUR,
                handle: None,
                initial_password_hash: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    let seed_secs = seed_started.elapsed().as_secs_f64();
    // PostgreSQL plans from table statistics. Right after a bulk insert they still describe
    // an almost empty table, and the product page is then planned as "read every product of
    // the tenant and sort" (5 ms) instead of a backward index scan (0.03 ms). Autovacuum
    // fixes that within a minute in a running deployment; the bench does it at once, as
    // the owner (the app's role may not vacuum), unless asked not to.
    let stats = match (&cfg.database_url, analyze) {
        (Some(url), true) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url.expose())
                .await
                .map_err(|e| format!("connect for vacuum analyze: {e}"))?;
            sqlx::raw_sql("vacuum analyze")
                .execute(&mut conn)
                .await
                .map_err(|e| format!("vacuum analyze: {e}"))?;
            "; vacuum analyze after seeding"
        }
        (Some(_), false) => "; no vacuum analyze (cold statistics)",
        (None, _) => "",
    };

    let dash = ui_sign_in(&http, &base, "dashboard", &p.owner_email, &password).await?;
    let admin = ui_sign_in(&http, &base, "admin", &admin_email, &password).await?;
    let product_id = scope
        .list_products(&crate::store::catalog::ProductFilter::default(), 1, 0)
        .await
        .map_err(|e| e.to_string())?
        .0
        .first()
        .map(|p| p.id);
    let dashboard_pages = vec![
        UiPage {
            label: "dashboard home",
            candidates: vec!["/dashboard".into()],
        },
        UiPage {
            label: "products, page 1",
            candidates: vec!["/dashboard/products".into()],
        },
        UiPage {
            label: "products, search",
            candidates: vec!["/dashboard/products?q=Bench+Product+4242".into()],
        },
        UiPage {
            label: "product edit",
            candidates: product_id
                .map(|id| {
                    vec![
                        format!("/dashboard/products/{id}"),
                        format!("/dashboard/products/{id}/edit"),
                    ]
                })
                .unwrap_or_default(),
        },
        UiPage {
            label: "orders",
            candidates: vec!["/dashboard/orders".into()],
        },
        UiPage {
            label: "team",
            candidates: vec!["/dashboard/team".into()],
        },
        UiPage {
            label: "api keys",
            candidates: vec!["/dashboard/api-keys".into()],
        },
        UiPage {
            label: "webhooks",
            candidates: vec!["/dashboard/webhooks".into()],
        },
        UiPage {
            label: "onboarding",
            candidates: vec!["/dashboard/onboarding".into()],
        },
        UiPage {
            label: "imports",
            candidates: vec!["/dashboard/imports".into()],
        },
    ];
    let admin_pages = vec![
        UiPage {
            label: "admin merchants",
            candidates: vec!["/admin/merchants".into()],
        },
        UiPage {
            label: "admin overview",
            candidates: vec!["/admin/overview".into()],
        },
    ];
    println!(
        "ui: 1 tenant with {products} products and {orders} orders, {} merchants, {backend}, {build}; seeded in {seed_secs:.1} s{stats}",
        merchants + 1
    );
    println!(
        "each page rendered {iterations} times, one request at a time, with the session cookies; \
time = round trip on loopback (request sent → whole body read: server time + loopback), target p95 < 20 ms"
    );
    println!(
        "{:<20} {:<44} {:>5} {:>8} {:>8} {:>8} {:>8}  p95<20ms",
        "page", "path", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    let mut skipped = vec![];
    let mut over = 0;
    for (jar, pages) in [(&dash, dashboard_pages), (&admin, admin_pages)] {
        for page in pages {
            // The first candidate that renders (200), following one same-area redirect
            // (e.g. the wizard sending to its current step).
            let mut chosen = None;
            let mut seen = vec![];
            for c in &page.candidates {
                let (status, location, _) = ui_get(&http, &base, jar, c).await?;
                let path = match (status.as_u16(), location) {
                    (200, _) => Some(c.clone()),
                    (301..=308, Some(l))
                        if l.starts_with('/') && !l.contains("/login") && l != *c =>
                    {
                        let (s2, _, _) = ui_get(&http, &base, jar, &l).await?;
                        (s2 == reqwest::StatusCode::OK).then_some(l)
                    }
                    _ => None,
                };
                seen.push(format!("{c} → {}", status.as_u16()));
                if path.is_some() {
                    chosen = path;
                    break;
                }
            }
            let Some(path) = chosen else {
                skipped.push(format!("{} ({})", page.label, seen.join(", ")));
                continue;
            };
            for _ in 0..5 {
                ui_get(&http, &base, jar, &path).await?;
            }
            let mut ms = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let (status, _, d) = ui_get(&http, &base, jar, &path).await?;
                if status != reqwest::StatusCode::OK {
                    return Err(format!("{path} answered {status} during the run"));
                }
                ms.push(d.as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            let pct = |p: f64| {
                ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            let ok = pct(0.95) < 20.0;
            if !ok {
                over += 1;
            }
            let shown = match product_id {
                Some(id) => path.replace(&id.to_string(), "{id}"),
                None => path.clone(),
            };
            println!(
                "{:<20} {:<44} {:>5} {:>8.2} {:>8.2} {:>8.2} {:>8.2}  {}",
                page.label,
                shown,
                ms.len(),
                pct(0.5),
                pct(0.95),
                pct(0.99),
                pct(1.0),
                if ok { "yes" } else { "NO" }
            );
        }
    }
    for s in &skipped {
        println!("skipped (not built on this revision): {s}");
    }
    println!("pages over the p95 target: {over}");
    let _ = node.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), node.task).await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// `souk bench import`: a background product import of a generated Shopify CSV
/// (`products` products, `variants` variants each, one row per variant) into a fresh
/// tenant, as the dashboard starts it; then the same file again (every product an update);
/// then the same file as a direct import within one call, into a second tenant, for
/// comparison. With `real_shape` the file has the legacy Shopify export's full column set
/// and a description of about 3 KB per product, so that 12,500 products × 11 variants make
/// a file of about 50 MB like a real export. Prints the wall time, the worker's time,
/// products/s and the peak RSS of each phase (the process's, including the generated file).
/// Asserts nothing.
pub async fn import(
    mut cfg: Config,
    products: usize,
    variants: usize,
    real_shape: bool,
) -> Result<(), String> {
    if products == 0 || variants == 0 {
        return Err("--products and --variants-per-product above 0".into());
    }
    cfg.workers = 2;
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let (backend, build) = labels(&cfg);
    let prefix = format!("i{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let actor = crate::store::audit::Actor::system("bench");
    let csv = import_csv(products, variants, real_shape);
    println!(
        "import: {products} products × {variants} variants ({} CSV rows, {:.1} MB{}), {backend}, {build}",
        products * variants,
        csv.len() as f64 / 1e6,
        if real_shape {
            ", full Shopify column set"
        } else {
            ""
        }
    );
    let p = node.control.provision(&prefix, 0, "scale").await?;
    let scope = crate::store::TenantDb::new(node.control.db.clone(), p.tenant);
    for label in [
        "background, new products",
        "background, same file again (updates)",
    ] {
        reset_peak_rss();
        let started = Instant::now();
        let queued = crate::control::start_product_import(
            &scope,
            &actor,
            csv.as_bytes(),
            Some("bench.csv"),
            "EUR",
        )
        .await
        .map_err(|e| e.to_string())?;
        let bar = indicatif::ProgressBar::new(products as u64).with_message(label);
        let done = loop {
            let i = scope
                .get_product_import(queued.id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the import vanished")?;
            bar.set_position(u64::try_from(i.products_done).unwrap_or(0));
            if i.status == "completed" || i.status == "failed" {
                break i;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        bar.finish_and_clear();
        let wall = started.elapsed().as_secs_f64();
        let worker = match (done.started_at, done.finished_at) {
            (Some(s), Some(f)) => (f - s) as f64 / 1e6,
            _ => f64::NAN,
        };
        println!(
            "{label:<40} {}: created {}, updated {}, unchanged {}; wall {wall:.2} s (includes the worker's pickup, ≤ 0.5 s idle poll), worker {worker:.2} s = {:.0} products/s; peak RSS {:.0} MB",
            done.status,
            done.created,
            done.updated,
            done.unchanged,
            products as f64 / worker,
            peak_rss_bytes().unwrap_or(0) as f64 / 1e6
        );
    }
    // The direct import (one call, one transaction) into a second tenant.
    let p2 = node
        .control
        .provision(&format!("{prefix}b"), 0, "scale")
        .await?;
    let scope2 = crate::store::TenantDb::new(node.control.db.clone(), p2.tenant);
    reset_peak_rss();
    let started = Instant::now();
    let report = crate::control::import_products(&scope2, &actor, csv.as_bytes(), "EUR", -1)
        .await
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{:<40} created {}; {secs:.2} s = {:.0} products/s; peak RSS {:.0} MB",
        "direct (one call, one transaction)",
        report.created,
        products as f64 / secs,
        peak_rss_bytes().unwrap_or(0) as f64 / 1e6
    );
    let _ = node.stop.send(());
    let _ = node.task.await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// The generated file of [`import`]: `products` products of `variants` variants
/// (`Size` S, M, L for 3, else `V1`, `V2`, …).
fn import_csv(products: usize, variants: usize, real_shape: bool) -> String {
    // The legacy Shopify export's columns after the ones the bench fills (48 in all).
    const REST: &str = ",Variant Grams,Variant Inventory Tracker,Variant Inventory Policy,Variant Fulfillment Service,Variant Compare At Price,Variant Requires Shipping,Variant Taxable,Variant Barcode,Image Position,Image Alt Text,Gift Card,SEO Title,SEO Description,Google Shopping / Google Product Category,Google Shopping / Gender,Google Shopping / Age Group,Google Shopping / MPN,Google Shopping / AdWords Grouping,Google Shopping / AdWords Labels,Google Shopping / Condition,Google Shopping / Custom Product,Google Shopping / Custom Label 0,Google Shopping / Custom Label 1,Google Shopping / Custom Label 2,Google Shopping / Custom Label 3,Google Shopping / Custom Label 4,Variant Image,Variant Weight Unit,Variant Tax Code,Cost per item,Price / International,Compare At Price / International,Status,Option2 Name,Option2 Value";
    let mut csv = String::from(
        "Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name,Option1 Value,Variant SKU,Variant Price,Variant Inventory Qty,Image Src",
    );
    if real_shape {
        csv.push_str(REST);
    }
    csv.push('\n');
    let sizes = ["S", "M", "L"];
    let paragraph = "<p>Soft organic cotton, cut for an easy fit and finished with flat seams; machine washable at 30 °C. Every size is measured on the body, see the size chart.</p>";
    for i in 0..products {
        for n in 0..variants {
            let size = if variants == 3 {
                sizes.get(n).copied().unwrap_or("S").to_string()
            } else {
                format!("V{}", n + 1)
            };
            let (title, body, vendor, kind, tags) = if n == 0 {
                let mut body = format!("<p>Product {i} of the import benchmark.</p>");
                if real_shape {
                    while body.len() < 3000 {
                        body.push_str(paragraph);
                    }
                }
                (
                    format!("Imported Product {i}"),
                    body,
                    format!("Vendor {}", i % 40),
                    format!("Type {}", i % 12),
                    format!("bench, tag{}", i % 7),
                )
            } else {
                Default::default()
            };
            let image = if n == 0 {
                format!("https://cdn.example/p/{i}.jpg")
            } else {
                String::new()
            };
            csv.push_str(&format!(
                "imported-{i},{title},\"{body}\",{vendor},{kind},\"{tags}\",{},{},{size},IMP-{i}-{size},{}.{:02},{},{image}",
                if n == 0 { "true" } else { "" },
                if n == 0 { "Size" } else { "" },
                10 + i % 90,
                i % 100,
                i % 25
            ));
            if real_shape {
                csv.push_str(&format!(
                    ",{},shopify,deny,manual,,true,true,'{:013},{},,{},{},{},,,,,,,,,,,,,,,kg,,,,,{},,",
                    200 + n * 10,
                    4_000_000_000_000u64 + (i * variants + n) as u64,
                    if n == 0 { "1" } else { "" },
                    if n == 0 { "false" } else { "" },
                    if n == 0 { format!("Imported Product {i} | Bench") } else { String::new() },
                    if n == 0 { "A product of the import benchmark." } else { "" },
                    if n == 0 { "active" } else { "" },
                ));
            }
            csv.push('\n');
        }
    }
    csv
}

/// Peak resident set size since the last reset (Linux `VmHWM`), `None` elsewhere.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak RSS to the current RSS (Linux: `5` into `/proc/self/clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Writes a generated feed of `n` items in `format` (`tsv`, `csv`, `semicolon`, `rss`,
/// `atom`) to `path`: every third item is one of a 3-size `item_group_id`.
fn write_feed(
    path: &std::path::Path,
    format: &str,
    n: usize,
    price_bump: i64,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let cols = [
        "id",
        "title",
        "description",
        "link",
        "image_link",
        "availability",
        "price",
        "brand",
        "item_group_id",
        "size",
        "atalanda:quantity",
    ];
    let row = |i: usize| -> [String; 11] {
        let group = i / 3;
        [
            format!("item-{i}"),
            format!("Generated product {group} size {}", i % 3),
            format!("<p>Description of product {group}, a generated feed item.</p>"),
            format!("https://shop.example/p/{i}"),
            format!("https://cdn.example/p/{i}.jpg"),
            if i.is_multiple_of(17) {
                "out of stock"
            } else {
                "in_stock"
            }
            .to_string(),
            format!("{}.{:02} EUR", 5 + i % 200 + price_bump as usize, i % 100),
            format!("Brand {}", group % 50),
            format!("group-{group}"),
            ["S", "M", "L"][i % 3].to_string(),
            format!("{}", i % 40),
        ]
    };
    match format {
        "rss" | "atom" => {
            let (open, close, item) = if format == "rss" {
                (
                    "<?xml version=\"1.0\"?>\n<rss version=\"2.0\" xmlns:g=\"http://base.google.com/ns/1.0\" xmlns:atalanda=\"http://atalanda.com/ns\"><channel><title>bench</title>\n",
                    "</channel></rss>\n",
                    "item",
                )
            } else {
                (
                    "<?xml version=\"1.0\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:g=\"http://base.google.com/ns/1.0\" xmlns:atalanda=\"http://atalanda.com/ns\"><title>bench</title>\n",
                    "</feed>\n",
                    "entry",
                )
            };
            w.write_all(open.as_bytes())?;
            for i in 0..n {
                write!(w, "<{item}>")?;
                for (c, v) in cols.iter().zip(row(i)) {
                    let tag = if c.contains(':') {
                        c.to_string()
                    } else {
                        format!("g:{c}")
                    };
                    write!(w, "<{tag}>{}</{tag}>", quick_xml::escape::escape(&v))?;
                }
                writeln!(w, "</{item}>")?;
            }
            w.write_all(close.as_bytes())?;
        }
        _ => {
            let d = match format {
                "tsv" => b'\t',
                "semicolon" => b';',
                _ => b',',
            };
            let mut cw = csv::WriterBuilder::new().delimiter(d).from_writer(w);
            cw.write_record(cols).map_err(std::io::Error::other)?;
            for i in 0..n {
                cw.write_record(row(i)).map_err(std::io::Error::other)?;
            }
            cw.flush()?;
        }
    }
    Ok(())
}

/// `souk bench feed`: stages a generated feed of `items` items in each format (TSV, CSV,
/// semicolon, RSS, Atom; each into its own source of one store) and prints items/s and the
/// peak RSS of each run; then re-imports the unchanged RSS feed, imports it with every
/// price changed, and publishes 1,000 selected items. Prints figures; asserts nothing.
pub async fn feed(mut cfg: Config, items: usize) -> Result<(), String> {
    if items == 0 {
        return Err("--items above 0".into());
    }
    cfg.workers = 1;
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let (backend, build) = labels(&cfg);
    let prefix = format!("f{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let p = node.control.provision(&prefix, 0, "scale").await?;
    let scope = crate::store::TenantDb::new(node.control.db.clone(), p.tenant);
    let actor = crate::store::audit::Actor::system("bench");
    let config = crate::feeds::FeedConfig {
        spool_dir: tmp.clone(),
        ..Default::default()
    };
    println!("feed: {items} items per format, {backend}, {build}");
    let mut rss_source = None;
    for format in ["tsv", "csv", "semicolon", "rss", "atom"] {
        let path = tmp.join(format!("bench.{format}"));
        write_feed(&path, format, items, 0).map_err(|e| e.to_string())?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let source = scope
            .create_feed_source(
                &actor,
                &crate::store::feeds::NewSource {
                    marketplace: "generic".into(),
                    name: format!("bench {format}"),
                    schedule: "manual".into(),
                    enabled: true,
                    default_language: "de".into(),
                    draft_on_disappear: true,
                    files: vec![("de".into(), None)],
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        reset_peak_rss();
        let started = Instant::now();
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        let (reader, hit) = crate::feeds::open_bytes(file, config.max_bytes);
        let run = crate::feeds::stage(
            &scope,
            &actor,
            &source,
            "de",
            "bench",
            reader,
            hit,
            crate::domain::Currency::EUR,
        )
        .await
        .map_err(|e| e.to_string())?;
        let secs = started.elapsed().as_secs_f64();
        let r = scope
            .get_feed_import(run)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("run vanished")?;
        println!(
            "{format:<10} {:.1} MB: staged {} new in {secs:.2} s = {:.0} items/s, peak RSS {:.0} MB",
            size as f64 / 1e6,
            r.items_new,
            items as f64 / secs,
            peak_rss_bytes().unwrap_or(0) as f64 / 1e6
        );
        if format == "rss" {
            rss_source = Some((source, path));
        }
    }
    let (source, path) = rss_source.ok_or("no rss source")?;
    for (label, bump) in [
        ("rss re-import, unchanged", 0),
        ("rss re-import, every price changed", 1),
    ] {
        if bump != 0 {
            write_feed(&path, "rss", items, bump).map_err(|e| e.to_string())?;
        }
        reset_peak_rss();
        let started = Instant::now();
        let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
        let (reader, hit) = crate::feeds::open_bytes(file, config.max_bytes);
        let run = crate::feeds::stage(
            &scope,
            &actor,
            &source,
            "de",
            "bench",
            reader,
            hit,
            crate::domain::Currency::EUR,
        )
        .await
        .map_err(|e| e.to_string())?;
        let secs = started.elapsed().as_secs_f64();
        let r = scope
            .get_feed_import(run)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("run vanished")?;
        println!(
            "{label:<36} unchanged {}, changed {} in {secs:.2} s, peak RSS {:.0} MB",
            r.items_unchanged,
            r.items_changed,
            peak_rss_bytes().unwrap_or(0) as f64 / 1e6
        );
    }
    // Publish 1,000 items without item_group_id siblings selected twice: every third item
    // starts a group, so 1,000 selected items make ~334 products × 3 variants.
    let f = crate::store::feeds::ItemFilter {
        source_id: Some(source.id),
        status: Some("new".into()),
        ..Default::default()
    };
    let mut ids = vec![];
    let mut offset = 0;
    while ids.len() < 1000.min(items) {
        let (page, _) = scope
            .list_staged_items(&f, 100, offset)
            .await
            .map_err(|e| e.to_string())?;
        if page.is_empty() {
            break;
        }
        offset += page.len() as i64;
        ids.extend(page.into_iter().map(|i| i.id));
    }
    ids.truncate(1000);
    let started = Instant::now();
    let rep = crate::feeds::publish(&scope, &actor, &ids, crate::domain::Currency::EUR)
        .await
        .map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "publish {} selected items: {} products ({} failed) in {secs:.2} s",
        ids.len(),
        rep.published.len(),
        rep.failed.len()
    );
    let _ = node.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), node.task).await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// A JSON request body (reqwest's `json` feature is not enabled for the binary).
trait JsonBody {
    fn json_body(self, v: &serde_json::Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn json_body(self, v: &serde_json::Value) -> Self {
        self.header("content-type", "application/json")
            .body(v.to_string())
    }
}

/// Per-step latencies of one bench shopper, in milliseconds.
#[derive(Default)]
struct ShopperTimes {
    create_cart: Vec<f64>,
    add_to_cart: Vec<f64>,
    details: Vec<f64>,
    place_order: Vec<f64>,
    cart_page: Vec<f64>,
    checkout_page: Vec<f64>,
    orders: usize,
}

impl ShopperTimes {
    fn extend(&mut self, o: ShopperTimes) {
        self.create_cart.extend(o.create_cart);
        self.add_to_cart.extend(o.add_to_cart);
        self.details.extend(o.details);
        self.place_order.extend(o.place_order);
        self.cart_page.extend(o.cart_page);
        self.checkout_page.extend(o.checkout_page);
        self.orders += o.orders;
    }
}

/// Sends `req`, reads the whole body and returns it with the elapsed milliseconds.
/// Errors: transport failure, or a status other than `want` (with the body).
async fn timed(
    req: reqwest::RequestBuilder,
    want: reqwest::StatusCode,
    what: &str,
) -> Result<(Vec<u8>, f64), String> {
    let t0 = Instant::now();
    let r = req.send().await.map_err(|e| format!("{what}: {e}"))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| format!("{what}: {e}"))?;
    let ms = t0.elapsed().as_secs_f64() * 1000.0;
    if status != want {
        return Err(format!(
            "{what} answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    Ok((body.to_vec(), ms))
}

/// `souk bench checkout`: one store with `products` active products × 3 variants (bulk
/// upsert, stock 1,000,000 each, so nothing sells out) and the demo checkout settings
/// (`demo::seed_checkout`, LU); then `shoppers` concurrent shoppers place `orders` orders
/// over real HTTP on loopback through the Store API: create a cart with an e-mail, add
/// 1–3 lines, set the LU address + the standard rate + bank transfer, complete with an
/// `Idempotency-Key`. Every 4th order also loads the storefront cart page and checkout
/// page with the `souk_cart` cookie. Prints orders/s and p50/p95/p99 per step (loopback
/// round trip: request sent → whole body read). Prints figures; asserts nothing.
pub async fn checkout(
    mut cfg: Config,
    shoppers: usize,
    orders: usize,
    products: usize,
) -> Result<(), String> {
    use crate::domain::{Handle, ProductStatus, Sku};
    use crate::store::catalog::{ProductInput, VariantInput};
    use reqwest::StatusCode;
    if shoppers == 0 || orders == 0 || products == 0 {
        return Err("--shoppers, --orders and --products above 0".into());
    }
    cfg.workers = 2;
    cfg.step_backoff = Duration::from_millis(20);
    cfg.jwt_secret = Some(crate::auth::Secret::new(crate::auth::random_token(48)));
    let tmp = std::env::temp_dir().join(format!("souk-bench-{}", uuid::Uuid::now_v7()));
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let base = format!("http://127.0.0.1:{}", node.port);
    let (backend, build) = labels(&cfg);
    let prefix = format!("c{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let db = node.control.db.clone();
    let actor = crate::store::audit::Actor::system("bench");
    let p = node.control.provision(&prefix, 0, "scale").await?;
    let handle = format!("{prefix}-0");
    crate::demo::seed_checkout(&db, p.tenant, "LU")
        .await
        .map_err(|e| e.to_string())?;
    let scope = crate::store::TenantDb::new(db.clone(), p.tenant);
    let all: Vec<usize> = (0..products).collect();
    for chunk in all.chunks(500) {
        let mut inputs = Vec::with_capacity(chunk.len());
        for &i in chunk {
            inputs.push(ProductInput {
                handle: Handle::parse(&format!("checkout-product-{i}")).map_err(|e| e.message)?,
                title: format!("Checkout Product {i}"),
                body_html: format!("<p>Product number {i} of the checkout benchmark.</p>"),
                vendor: Some(format!("Vendor {}", i % 20)),
                product_type: Some(format!("Type {}", i % 10)),
                tags: vec![format!("tag{}", i % 10)],
                status: ProductStatus::Active,
                options: vec!["Size".into()],
                featured: false,
                seo: None,
                attributes: None,
                variants: ["S", "M", "L"]
                    .iter()
                    .enumerate()
                    .map(|(v, size)| {
                        Ok(VariantInput {
                            sku: Some(
                                Sku::parse(&format!("CHK-{i}-{size}")).map_err(|e| e.message)?,
                            ),
                            option_values: vec![(*size).to_string()],
                            price_minor: 500 + (i as i64 % 60) * 100 + v as i64 * 50,
                            compare_at_minor: None,
                            inventory: 1_000_000,
                            inventory_policy: crate::domain::InventoryPolicy::Deny,
                            inventory_tracked: true,
                            barcode: None,
                            weight_grams: Some(250),
                        })
                    })
                    .collect::<Result<_, String>>()?,
                images: vec![],
                collections: vec![],
            });
        }
        let out = scope
            .upsert_products(&actor, &inputs, "EUR", -1)
            .await
            .map_err(|e| e.to_string())?;
        if !out.failed.is_empty() {
            return Err(format!("seeding products: {:?}", out.failed.first()));
        }
    }
    let mut variants = vec![];
    for i in 0..products {
        let prod = scope
            .get_product_by_handle(&format!("checkout-product-{i}"), true)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("a seeded product is missing")?;
        variants.extend(prod.variants.iter().map(|v| v.id.to_string()));
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(shoppers)
        .build()
        .map_err(|e| e.to_string())?;
    let api = format!("{base}/s/{handle}/api/v1/store");
    // The standard rate's id, from the shipping options of a cart with an LU address.
    let address = serde_json::json!({ "name": "Bench Shopper", "line1": "12 Rue de la Gare", "city": "Luxembourg", "postal_code": "L-1611", "country": "LU" });
    let (body, _) = timed(
        http.post(format!("{api}/carts"))
            .json_body(&serde_json::json!({})),
        StatusCode::CREATED,
        "create cart",
    )
    .await?;
    let probe: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let probe_id = probe["id"].as_str().ok_or("cart without id")?;
    timed(
        http.post(format!("{api}/carts/{probe_id}"))
            .json_body(&serde_json::json!({ "shipping_address": address })),
        StatusCode::OK,
        "set address",
    )
    .await?;
    let (body, _) = timed(
        http.get(format!("{api}/carts/{probe_id}/shipping-options")),
        StatusCode::OK,
        "shipping options",
    )
    .await?;
    let opts: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    let rate = opts
        .as_array()
        .and_then(|a| a.iter().find(|o| o["id"] != "pickup"))
        .and_then(|o| o["id"].as_str())
        .ok_or("no shipping rate for LU")?
        .to_string();
    println!(
        "checkout: {orders} orders by {shoppers} concurrent shoppers, {products} products × 3 variants, {backend}, {build}"
    );
    let ctx = Arc::new(ShopCtx {
        http,
        api,
        base,
        handle,
        rate,
        address,
        variants,
    });
    // A warm-up, not counted: a live store's tables hold rows and (PostgreSQL) planner
    // statistics, which a database created for this run has not; without them PostgreSQL
    // picks a tenant-wide index scan for lookups by id. Then the statistics are refreshed.
    let warmup = (orders / 10).clamp(shoppers, 500);
    let (_, failure) = run_shoppers(&ctx, orders, orders + warmup, shoppers, None).await?;
    if let Some(e) = failure {
        return Err(format!("warm-up: {e}"));
    }
    if let Some(url) = &cfg.database_url {
        crate::store::analyze(url.expose())
            .await
            .map_err(|e| e.to_string())?;
    }
    println!(
        "warm-up: {warmup} orders (not counted){}",
        if cfg.database_url.is_some() {
            ", then ANALYZE"
        } else {
            ""
        }
    );
    let bar = indicatif::ProgressBar::new(orders as u64);
    let cpu_before = cpu_and_switches();
    let started = Instant::now();
    let (mut all, failure) = run_shoppers(&ctx, 0, orders, shoppers, Some(bar.clone())).await?;
    let wall = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(e) = failure {
        println!("a shopper stopped: {e}");
    }
    println!(
        "orders placed:                    {} in {wall:.2} s = {:.0} orders/s (whole flow: cart, 1–3 lines, details, complete; pages on every 4th order)",
        all.orders,
        all.orders as f64 / wall
    );
    if let (Some((c0, s0)), Some((c1, s1))) = (cpu_before, cpu_and_switches())
        && all.orders > 0
    {
        let n = all.orders as f64;
        println!(
            "CPU per order (server + shoppers): {:.2} ms, {:.0} context switches (steal time on a shared host does not count)",
            (c1 - c0) * 1000.0 / n,
            (s1 - s0) as f64 / n
        );
    }
    percentiles("create cart", &mut all.create_cart);
    percentiles("add to cart (per line)", &mut all.add_to_cart);
    percentiles("address + shipping + payment", &mut all.details);
    percentiles("place order (complete)", &mut all.place_order);
    percentiles("GET /s/{handle}/cart", &mut all.cart_page);
    percentiles("GET /s/{handle}/checkout", &mut all.checkout_page);
    let _ = node.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), node.task).await;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

/// What every bench shopper shares: the client, the Store API base, the storefront base
/// and handle, the shipping rate's id, the LU address and the variant ids to buy.
struct ShopCtx {
    http: reqwest::Client,
    api: String,
    base: String,
    handle: String,
    rate: String,
    address: serde_json::Value,
    variants: Vec<String>,
}

/// Runs `shoppers` concurrent shoppers through orders `start..end` (one order per index,
/// idempotency key `bench-{i}`); each shopper's times, and the first failure if one stopped.
async fn run_shoppers(
    ctx: &Arc<ShopCtx>,
    start: usize,
    end: usize,
    shoppers: usize,
    bar: Option<indicatif::ProgressBar>,
) -> Result<(ShopperTimes, Option<String>), String> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(start));
    let tasks: Vec<_> = (0..shoppers)
        .map(|_| tokio::spawn(bench_shopper(ctx.clone(), next.clone(), end, bar.clone())))
        .collect();
    let mut all = ShopperTimes::default();
    let mut failure = None;
    for task in tasks {
        match task.await.map_err(|e| e.to_string())? {
            Ok(t) => all.extend(t),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    Ok((all, failure))
}

/// One bench shopper: takes the next order index until `end`, and buys (see [`checkout`]).
async fn bench_shopper(
    ctx: Arc<ShopCtx>,
    next: Arc<std::sync::atomic::AtomicUsize>,
    end: usize,
    bar: Option<indicatif::ProgressBar>,
) -> Result<ShopperTimes, String> {
    use reqwest::StatusCode;
    let ShopCtx {
        http,
        api,
        base,
        handle,
        rate,
        address,
        variants,
    } = &*ctx;
    let mut t = ShopperTimes::default();
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if i >= end {
            return Ok(t);
        }
        let (body, ms) = timed(
            http.post(format!("{api}/carts"))
                .json_body(&serde_json::json!({ "email": format!("shopper{i}@bench.example") })),
            StatusCode::CREATED,
            "create cart",
        )
        .await?;
        t.create_cart.push(ms);
        let cart: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let id = cart["id"].as_str().ok_or("cart without id")?.to_string();
        for k in 0..1 + i % 3 {
            let v = &variants[(i * 7919 + k * 104_729) % variants.len()];
            let (_, ms) = timed(
                http.post(format!("{api}/carts/{id}/line-items"))
                    .json_body(&serde_json::json!({ "variant_id": v, "quantity": 1 + k })),
                StatusCode::OK,
                "add to cart",
            )
            .await?;
            t.add_to_cart.push(ms);
        }
        let pages = i.is_multiple_of(4);
        let cookie = format!("souk_cart={id}");
        if pages {
            t.cart_page
                .push(storefront_page(http, base, handle, "cart", &cookie).await?);
        }
        let (_, ms) = timed(
            http.post(format!("{api}/carts/{id}"))
                .json_body(&serde_json::json!({
                    "shipping_address": address,
                    "shipping_option": rate,
                    "payment_method": "bank_transfer"
                })),
            StatusCode::OK,
            "address, shipping and payment",
        )
        .await?;
        t.details.push(ms);
        if pages {
            t.checkout_page
                .push(storefront_page(http, base, handle, "checkout", &cookie).await?);
        }
        let (_, ms) = timed(
            http.post(format!("{api}/carts/{id}/complete"))
                .header("Idempotency-Key", format!("bench-{i}")),
            StatusCode::CREATED,
            "place order",
        )
        .await?;
        t.place_order.push(ms);
        t.orders += 1;
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    }
}

/// Loads the storefront page `/s/{handle}/{page}` with the cart cookie; milliseconds.
async fn storefront_page(
    http: &reqwest::Client,
    base: &str,
    handle: &str,
    page: &str,
    cookie: &str,
) -> Result<f64, String> {
    let (_, ms) = timed(
        http.get(format!("{base}/s/{handle}/{page}"))
            .header(reqwest::header::COOKIE, cookie),
        reqwest::StatusCode::OK,
        &format!("{page} page"),
    )
    .await?;
    Ok(ms)
}
