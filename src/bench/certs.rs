//! `souk bench certs`: the HTTPS listener with many active custom domains. Issues a
//! certificate chain per domain from a throw-away two-level CA (ECDSA P-256 leaf plus an
//! intermediate, the shape Let's Encrypt serves), stores each as the domain worker does
//! (`store_certificate`, key sealed), loads them into the SNI store the way `souk serve`
//! does at start-up, and prints the memory they take. Then it opens TLS connections with
//! SNI for the domains in turn from concurrent clients (each checked against the chain of
//! the name it asked for; every 50th also fetches the storefront over that connection) and
//! prints handshakes/s with p50/p99. Prints figures; asserts nothing.

use super::{labels, rss_bytes, start_node};
use crate::app::Config;
use crate::store::audit::Actor;
use crate::store::platform::{self, CheckOutcome};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Settings of one run (the CLI flags).
#[derive(Debug, Clone)]
pub struct CertsBench {
    /// Active custom domains, each with its own certificate.
    pub domains: usize,
    /// TLS handshakes to make (spread over the domains).
    pub handshakes: usize,
    /// Concurrent TLS clients.
    pub clients: usize,
}

/// Domains per provisioned store (a store may hold many custom domains).
const DOMAINS_PER_STORE: usize = 100;

fn ca_params(name: &str) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    Ok(p)
}

pub async fn certs(mut cfg: Config, opts: CertsBench) -> Result<(), String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    cfg.workers = 1;
    cfg.jwt_secret = Some(crate::auth::Secret::new(crate::auth::random_token(48)));
    cfg.https_bind = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    let (backend, build) = labels(&cfg);
    let tmp = std::env::temp_dir().join(format!("souk-bench-certs-{}", uuid::Uuid::now_v7()));
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let https_port = node.https_port.ok_or("the HTTPS listener did not start")?;
    let store = node
        .certs
        .clone()
        .ok_or("the HTTPS listener has no certificate store")?;
    let db = node.control.db.clone();

    // A root and an intermediate; leaves are signed by the intermediate and served with it.
    let root_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let root_params = ca_params("Souk bench root")?;
    let root_cert = root_params
        .self_signed(&root_key)
        .map_err(|e| e.to_string())?;
    let root = Issuer::new(root_params, root_key);
    let int_key = KeyPair::generate().map_err(|e| e.to_string())?;
    let int_params = ca_params("Souk bench intermediate")?;
    let int_cert = int_params
        .signed_by(&int_key, &root)
        .map_err(|e| e.to_string())?;
    let intermediate = Issuer::new(int_params, int_key);

    let prefix = format!("c{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let stores = opts.domains.div_ceil(DOMAINS_PER_STORE).max(1);
    println!(
        "HTTPS listener: {} custom domains with their own certificate (ECDSA P-256 leaf + intermediate) over {stores} stores, {backend}, {build}",
        opts.domains
    );
    let seeding = Instant::now();
    let mut tenants = vec![];
    for s in 0..stores {
        tenants.push(node.control.provision(&prefix, s, "scale").await?.tenant);
    }
    let actor = Actor::system("bench");
    let now = crate::store::now_micros();
    let not_after = now + 90 * 86_400_000_000;
    let mut hosts = vec![];
    let mut leaves = vec![];
    let mut der_bytes = 0usize;
    let bar = indicatif::ProgressBar::new(opts.domains as u64);
    for i in 0..opts.domains {
        let host = format!("shop-{i}.{prefix}.example");
        let parsed =
            crate::domain::CustomDomain::parse(&host, &cfg.base_domain).map_err(|e| e.message)?;
        let scope = crate::store::TenantDb::new(db.clone(), tenants[i / DOMAINS_PER_STORE]);
        let row = scope
            .add_custom_domain(&actor, &parsed, &crate::auth::random_token(24))
            .await
            .map_err(|e| e.to_string())?;
        let next = Some(now + 86_400_000_000);
        platform::record_domain_check(
            &db,
            &row,
            &CheckOutcome {
                status: "verified",
                check_result: "{}".into(),
                next_check_at: next,
                verified_at: Some(now),
                failing_since: None,
                audit_action: Some("domain.verified"),
                email: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let leaf = CertificateParams::new(vec![host.clone()])
            .and_then(|p| p.signed_by(&key, &intermediate))
            .map_err(|e| e.to_string())?;
        der_bytes += leaf.der().len() + int_cert.der().len();
        let chain = format!("{}{}", leaf.pem(), int_cert.pem());
        let sealed = node.secret_box.seal(&key.serialize_pem())?;
        platform::store_certificate(
            &db,
            &row,
            &chain,
            &sealed,
            not_after,
            now + 86_400_000_000,
            false,
        )
        .await
        .map_err(|e| e.to_string())?;
        leaves.push(leaf.der().clone());
        hosts.push(host);
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!(
        "seeded in {:.1} s (stores provisioned, domains verified, certificates issued and stored)",
        seeding.elapsed().as_secs_f64()
    );

    // What `souk serve` does at start and every minute: load every active domain's
    // certificate into the SNI store. RSS is read after the rows are dropped; the
    // allocator may keep some of the transient rows' pages, so the delta is an upper bound.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = rss_bytes().unwrap_or(0);
    let started = Instant::now();
    let loaded = store.reload(&db, &node.secret_box).await?;
    let took = started.elapsed();
    let after = rss_bytes().unwrap_or(0);
    let delta = after.saturating_sub(before);
    println!(
        "loaded {loaded} certificates in {:.0} ms; RSS {:.1} → {:.1} MB: {:.2} MB for the store ({:.1} KB per domain; DER alone {:.1} KB per domain)",
        took.as_secs_f64() * 1e3,
        before as f64 / 1e6,
        after as f64 / 1e6,
        delta as f64 / 1e6,
        delta as f64 / 1e3 / loaded.max(1) as f64,
        der_bytes as f64 / 1e3 / opts.domains.max(1) as f64,
    );

    // Handshakes with SNI, each domain in turn, verified against the bench root.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(root_cert.der().to_vec()))
        .map_err(|e| e.to_string())?;
    let client = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let hosts = Arc::new(hosts);
    let leaves = Arc::new(leaves);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = vec![];
    for _ in 0..opts.clients.max(1) {
        let (connector, hosts, leaves, next) = (
            connector.clone(),
            hosts.clone(),
            leaves.clone(),
            next.clone(),
        );
        let total = opts.handshakes;
        tasks.push(tokio::spawn(async move {
            let mut times = vec![];
            let (mut pages, mut failures) = (0usize, Vec::<String>::new());
            loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if k >= total {
                    return (times, pages, failures);
                }
                let i = k % hosts.len();
                let t0 = Instant::now();
                match handshake(&connector, &hosts[i], https_port, &leaves[i], k % 50 == 0).await {
                    Ok(page) => {
                        times.push(t0.elapsed());
                        pages += usize::from(page);
                    }
                    Err(e) if failures.len() < 5 => failures.push(format!("{}: {e}", hosts[i])),
                    Err(_) => {}
                }
            }
        }));
    }
    let mut times = vec![];
    let (mut pages, mut failures) = (0, vec![]);
    for t in tasks {
        let (t, p, f) = t.await.map_err(|e| e.to_string())?;
        times.extend(t);
        pages += p;
        failures.extend(f);
    }
    let elapsed = started.elapsed();
    times.sort();
    let pct = |q: f64| -> f64 {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1e3)
            .unwrap_or(0.0)
    };
    println!(
        "{} TLS handshakes with SNI over {} domains from {} clients: {:.0} handshakes/s, p50 {:.2} ms, p99 {:.2} ms; {} storefront pages fetched over them; {} failed",
        times.len(),
        hosts.len(),
        opts.clients,
        times.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pages,
        opts.handshakes - times.len()
    );
    for f in &failures {
        println!("  failed: {f}");
    }
    println!(
        "souk process RSS after the handshakes: {:.1} MB",
        rss_bytes().unwrap_or(0) as f64 / 1e6
    );
    let _ = node.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), node.task).await;
    let _ = std::fs::remove_dir_all(&tmp);
    if failures.is_empty() {
        Ok(())
    } else {
        Err("some handshakes failed".into())
    }
}

/// One TLS connection to `host` (SNI) on the loopback listener: checks the served leaf is
/// the one issued for `host`; with `fetch`, also GETs `/` and expects 200. Returns whether
/// a page was fetched.
async fn handshake(
    connector: &tokio_rustls::TlsConnector,
    host: &str,
    port: u16,
    leaf: &CertificateDer<'static>,
    fetch: bool,
) -> Result<bool, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let served = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or("no certificate served")?;
    if served.as_ref() != leaf.as_ref() {
        return Err("another domain's certificate was served".into());
    }
    if !fetch {
        let _ = tls.shutdown().await;
        return Ok(false);
    }
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 16];
    tls.read_exact(&mut head).await.map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&head);
    if !line.starts_with("HTTP/1.1 200") {
        return Err(format!("storefront answered {line:?}"));
    }
    Ok(true)
}
