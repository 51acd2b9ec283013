//! `souk bench read`: the read path against the machine's limit. Seeds one store with a
//! realistic catalog, saves the responses of the storefront and Store API endpoints to
//! files, serves those files with nginx (one worker, keep-alive, no access log) on another
//! loopback port and runs wrk against nginx and Souk in turn, printing req/s, p50, p99 and
//! the ratio per endpoint. Needs `nginx` and `wrk` on `PATH` (Debian: `apt-get install
//! nginx wrk`); `scripts/bench-read-vs-nginx.sh` runs it on SQLite and PostgreSQL.
//! Prints figures; asserts nothing.

use super::{Provisioned, labels, peak_rss_bytes, rss_bytes, start_node};
use crate::app::Config;
use crate::domain::{Handle, InventoryPolicy, ProductStatus, Sku};
use crate::store::catalog::{ImageInput, ProductInput, VariantInput};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Settings of one run (the CLI flags).
#[derive(Debug, Clone)]
pub struct ReadBench {
    /// Products in the store (every 12th has 50–100 variants, the rest 1–8).
    pub products: usize,
    /// Extra provisioned merchants (idle RSS with that many tenants).
    pub merchants: usize,
    /// wrk duration per endpoint and server, seconds.
    pub seconds: u64,
    /// wrk connections (two wrk threads).
    pub connections: usize,
    /// Only the endpoints whose label contains this text (e.g. `uncached`), for profiling.
    pub only: Option<String>,
}

/// One measured endpoint.
struct Endpoint {
    label: &'static str,
    path: String,
    content_type: &'static str,
    /// Measured with the response cache off (every request reads the database).
    uncached: bool,
    /// Over TLS: Souk's HTTPS listener and an nginx `ssl` server with the same certificate.
    https: bool,
}

/// What wrk reported.
#[derive(Debug, Clone, Copy, Default)]
struct WrkFigures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

const WORDS: &[&str] = &[
    "linen",
    "organic",
    "cotton",
    "hand-stitched",
    "classic",
    "relaxed",
    "everyday",
    "soft",
    "breathable",
    "durable",
    "tailored",
    "vintage",
    "washed",
    "heavyweight",
    "summer",
    "winter",
    "merino",
    "recycled",
    "minimal",
    "pocket",
    "ribbed",
    "cropped",
    "oversized",
];
const COLORS: &[&str] = &[
    "Black", "White", "Navy", "Olive", "Sand", "Rust", "Sky", "Charcoal", "Moss", "Plum",
];
const SIZES: &[&str] = &["XXS", "XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL", "5XL"];

fn word(i: usize) -> &'static str {
    WORDS[i % WORDS.len()]
}

/// A product description like real exports carry: headings, paragraphs, a list, a table.
fn body_html(i: usize) -> String {
    let mut s = format!(
        "<h2>The {} {} shirt</h2><p>Made from {} {} with a {} fit. ",
        word(i),
        word(i + 3),
        word(i + 5),
        word(i + 7),
        word(i + 11)
    );
    for k in 0..6 + i % 5 {
        s.push_str(&format!(
            "Each piece is {} and {}, cut for {} wear and finished by hand. ",
            word(i + k),
            word(i + k * 2),
            word(i + k * 3)
        ));
    }
    s.push_str("</p><ul>");
    for k in 0..5 {
        s.push_str(&format!(
            "<li>{} {} detail</li>",
            word(i + k),
            word(i + k + 9)
        ));
    }
    s.push_str("</ul><table><tr><th>Care</th><td>Machine wash cold &amp; line dry</td></tr><tr><th>Origin</th><td>Portugal</td></tr></table>");
    s
}

fn product_input(i: usize) -> Result<ProductInput, String> {
    let big = i % 12 == 5;
    let (options, combos): (Vec<String>, Vec<Vec<String>>) = if big {
        let colors = 5 + i % 6; // 5..10 colours × 10 sizes = 50..100 variants
        let mut c = vec![];
        for color in COLORS.iter().take(colors) {
            for size in SIZES {
                c.push(vec![(*color).to_string(), (*size).to_string()]);
            }
        }
        (vec!["Color".into(), "Size".into()], c)
    } else {
        let n = 1 + i % 8;
        (
            vec!["Size".into()],
            SIZES
                .iter()
                .take(n)
                .map(|s| vec![(*s).to_string()])
                .collect(),
        )
    };
    let variants = combos
        .into_iter()
        .enumerate()
        .map(|(v, values)| {
            Ok(VariantInput {
                sku: Some(Sku::parse(&format!("RB-{i}-{v}")).map_err(|e| e.message)?),
                option_values: values,
                price_minor: 1900 + (i as i64 % 40) * 250 + (v as i64 % 3) * 100,
                compare_at_minor: i.is_multiple_of(4).then_some(4900 + (i as i64 % 40) * 250),
                inventory: if v % 9 == 8 {
                    0
                } else {
                    5 + (i as i64 * 7 + v as i64) % 90
                },
                inventory_policy: InventoryPolicy::Deny,
                inventory_tracked: true,
                barcode: Some(format!(
                    "{:013}",
                    4_006_381_000_000u64 + (i * 100 + v) as u64
                )),
                weight_grams: Some(180 + (v as i64 % 5) * 20),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(ProductInput {
        handle: Handle::parse(&format!("{}-{}-shirt-{i}", word(i), word(i + 3)))
            .map_err(|e| e.message)?,
        title: format!(
            "{} {} Shirt No. {i}",
            capital(word(i)),
            capital(word(i + 3))
        ),
        body_html: body_html(i),
        vendor: Some(format!("Atelier {}", capital(word(i + 1)))),
        product_type: Some(["Shirts", "Tops", "Knitwear", "Outerwear"][i % 4].into()),
        tags: vec![word(i).into(), word(i + 2).into(), "bench".into()],
        status: ProductStatus::Active,
        options,
        featured: i.is_multiple_of(40),
        seo: None,
        attributes: None,
        variants,
        images: (0..1 + i % 4)
            .map(|k| ImageInput {
                url: format!("https://cdn.example.com/bench/shirt-{i}-{k}.jpg"),
                alt: Some(format!("Shirt {i}, view {}", k + 1)),
            })
            .collect(),
        collections: vec![],
    })
}

fn capital(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Runs the benchmark. Errors: nginx or wrk missing, seeding or a request failing.
pub async fn read(mut cfg: Config, opts: ReadBench) -> Result<(), String> {
    for tool in ["nginx", "wrk"] {
        if which(tool).is_none() {
            return Err(format!(
                "{tool} is not installed (Debian: apt-get install nginx wrk)"
            ));
        }
    }
    cfg.workers = 2;
    cfg.step_backoff = Duration::from_millis(20);
    cfg.jwt_secret = Some(crate::auth::Secret::new(crate::auth::random_token(48)));
    let (backend, build) = labels(&cfg);
    let tmp = std::env::temp_dir().join(format!("souk-bench-read-{}", uuid::Uuid::now_v7()));
    // HTTPS: a self-signed pair for the base domain, served by Souk's own listener (the
    // configured platform pair) and by nginx alike.
    let tls = tmp.join("tls");
    std::fs::create_dir_all(&tls).map_err(|e| e.to_string())?;
    let tls_key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let tls_cert = rcgen::CertificateParams::new(vec![cfg.base_domain.clone()])
        .and_then(|p| p.self_signed(&tls_key))
        .map_err(|e| e.to_string())?;
    let (cert_path, key_path) = (tls.join("cert.pem"), tls.join("key.pem"));
    std::fs::write(&cert_path, tls_cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&key_path, tls_key.serialize_pem()).map_err(|e| e.to_string())?;
    cfg.https_bind = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    cfg.tls_cert = Some(cert_path.clone());
    cfg.tls_key = Some(key_path.clone());
    let node = start_node(cfg.clone(), tmp.join("node")).await?;
    let base = format!("http://127.0.0.1:{}", node.port);
    let https_port = node.https_port.ok_or("the HTTPS listener did not start")?;
    let tls_host = cfg.base_domain.clone();
    let https_base = format!("https://{tls_host}:{https_port}");
    let prefix = format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]);
    let p: Provisioned = node.control.provision(&prefix, 0, "scale").await?;
    let handle = format!("{prefix}-0");
    let scope = crate::store::TenantDb::new(node.control.db.clone(), p.tenant);
    let actor = crate::store::audit::Actor::system("bench");
    let seeding = Instant::now();
    let all: Vec<usize> = (0..opts.products).collect();
    let mut variants = 0usize;
    for chunk in all.chunks(100) {
        let inputs = chunk
            .iter()
            .map(|&i| product_input(i))
            .collect::<Result<Vec<_>, _>>()?;
        variants += inputs.iter().map(|p| p.variants.len()).sum::<usize>();
        let out = scope
            .upsert_products(&actor, &inputs, "EUR", -1)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(f) = out.failed.first() {
            return Err(format!("seeding products: {f:?}"));
        }
    }
    for i in 1..=opts.merchants {
        node.control.provision(&prefix, i, "starter").await?;
    }
    if backend == "PostgreSQL" {
        // What autovacuum would do within a minute of seeding.
        if let crate::store::Db::Pg { platform, .. } = &node.control.db {
            let _ = sqlx::query("analyze").execute(platform).await;
        }
    }
    println!(
        "read path: {} products / {variants} variants in one store (+{} merchants), {backend}, {build}; seeded in {:.1} s",
        opts.products,
        opts.merchants,
        seeding.elapsed().as_secs_f64()
    );
    // A small product (about 3 KB of JSON) and its page, like the figures.
    let small = product_input(2)?.handle.to_string();
    let s = format!("/s/{handle}");
    const JSON: &str = "application/json";
    const HTML: &str = "text/html";
    let endpoints: Vec<Endpoint> = [
        (
            "Store API list, 12 products (cached)",
            format!("{s}/api/v1/store/products"),
            JSON,
            false,
            false,
        ),
        (
            "Store API product (cached)",
            format!("{s}/api/v1/store/products/{small}"),
            JSON,
            false,
            false,
        ),
        (
            "Store API product (uncached)",
            format!("{s}/api/v1/store/products/{small}"),
            JSON,
            true,
            false,
        ),
        (
            "storefront home (cached)",
            format!("{s}/"),
            HTML,
            false,
            false,
        ),
        (
            "storefront catalog (cached)",
            format!("{s}/products"),
            HTML,
            false,
            false,
        ),
        (
            "storefront product page (cached)",
            format!("{s}/products/{small}"),
            HTML,
            false,
            false,
        ),
        (
            "storefront product page (uncached)",
            format!("{s}/products/{small}"),
            HTML,
            true,
            false,
        ),
        ("/healthz (liveness)", "/healthz".into(), JSON, false, false),
        (
            "HTTPS Store API product (cached)",
            format!("{s}/api/v1/store/products/{small}"),
            JSON,
            false,
            true,
        ),
        (
            "HTTPS storefront product page (cached)",
            format!("{s}/products/{small}"),
            HTML,
            false,
            true,
        ),
        (
            "HTTPS storefront product page (uncached)",
            format!("{s}/products/{small}"),
            HTML,
            true,
            true,
        ),
    ]
    .into_iter()
    .filter(|(label, ..)| opts.only.as_deref().is_none_or(|o| label.contains(o)))
    .map(|(label, path, content_type, uncached, https)| Endpoint {
        label,
        path,
        content_type,
        uncached,
        https,
    })
    .collect();
    // Save the bodies nginx will serve (HTTPS rows: fetched over Souk's HTTPS listener).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let https = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(tls_cert.pem().as_bytes()).map_err(|e| e.to_string())?
        ])
        .resolve(
            &tls_host,
            std::net::SocketAddr::from(([127, 0, 0, 1], https_port)),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let souk_url = |e: &Endpoint| {
        if e.https {
            format!("{https_base}{}", e.path)
        } else {
            format!("{base}{}", e.path)
        }
    };
    let client_for = |e: &Endpoint| if e.https { &https } else { &http };
    let root = tmp.join("nginx");
    std::fs::create_dir_all(root.join("files")).map_err(|e| e.to_string())?;
    let mut locations = String::new();
    let mut sizes = vec![];
    for (n, e) in endpoints.iter().enumerate() {
        let r = client_for(e)
            .get(souk_url(e))
            .send()
            .await
            .map_err(|x| x.to_string())?;
        if !r.status().is_success() {
            return Err(format!("GET {} answered {}", e.path, r.status()));
        }
        let body = r.bytes().await.map_err(|x| x.to_string())?;
        sizes.push(body.len());
        let file = root.join("files").join(format!("{n}.body"));
        std::fs::write(&file, &body).map_err(|x| x.to_string())?;
        locations.push_str(&format!(
            "    location = /e{n} {{ default_type {}; alias {}; }}\n",
            e.content_type,
            file.display()
        ));
    }
    let nginx_port = free_port()?;
    let nginx_tls_port = free_port()?;
    let mut nginx = start_nginx(
        &root,
        nginx_port,
        &locations,
        (nginx_tls_port, &cert_path, &key_path),
    )?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let idle_rss = rss_bytes().unwrap_or(0);
    println!(
        "wrk -t2 -c{} -d{}s per endpoint and server, loopback; nginx: 1 worker, keep-alive, access log off, the same bytes from files",
        opts.connections, opts.seconds
    );
    println!(
        "{:<42} {:>7} | {:>9} {:>7} {:>7} | {:>9} {:>7} {:>7} | {:>6}",
        "endpoint",
        "bytes",
        "nginx r/s",
        "p50 ms",
        "p99 ms",
        "souk r/s",
        "p50 ms",
        "p99 ms",
        "ratio"
    );
    // Each endpoint: nginx, then Souk (cache off for the uncached rows, warmed by one
    // request otherwise). The nginx process is stopped whatever happens.
    let mut runs = vec![];
    for (n, e) in endpoints.iter().enumerate() {
        let ng = if e.https {
            wrk(&format!("https://{tls_host}:{nginx_tls_port}/e{n}"), &opts)
        } else {
            wrk(&format!("http://127.0.0.1:{nginx_port}/e{n}"), &opts)
        };
        node.page_cache.set_enabled(!e.uncached);
        let _ = client_for(e).get(souk_url(e)).send().await;
        let so = wrk(&souk_url(e), &opts);
        node.page_cache.set_enabled(true);
        match (ng, so) {
            (Ok(ng), Ok(so)) => {
                print_row(e.label, sizes[n], &ng, &so);
                runs.push((ng, so));
            }
            (Err(x), _) | (_, Err(x)) => {
                runs.clear();
                println!("{}: {x}", e.label);
                break;
            }
        }
    }
    let result = if runs.len() == endpoints.len() {
        Ok(())
    } else {
        Err("a wrk run failed".to_string())
    };
    let _ = nginx.kill();
    let _ = nginx.wait();
    println!(
        "souk process RSS: {:.0} MB idle after seeding, {:.0} MB after the loads, peak {:.0} MB (seeding included)",
        idle_rss as f64 / 1e6,
        rss_bytes().unwrap_or(0) as f64 / 1e6,
        peak_rss_bytes().unwrap_or(0) as f64 / 1e6
    );
    let _ = node.stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), node.task).await;
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn print_row(label: &str, bytes: usize, ng: &WrkFigures, so: &WrkFigures) {
    let errors = if so.non_2xx > 0 {
        format!("  ({} non-2xx!)", so.non_2xx)
    } else {
        String::new()
    };
    println!(
        "{label:<42} {bytes:>7} | {:>9.0} {:>7.2} {:>7.2} | {:>9.0} {:>7.2} {:>7.2} | {:>6.2}{errors}",
        ng.rps,
        ng.p50_ms,
        ng.p99_ms,
        so.rps,
        so.p50_ms,
        so.p99_ms,
        so.rps / ng.rps.max(1.0)
    );
}

/// Starts nginx in the foreground with its own prefix under `root`.
/// Starts nginx serving `locations` on `port` and, over TLS with the given certificate
/// and key paths, on `tls.0`. One process (`master_process off`), so killing the child
/// leaves no worker behind.
fn start_nginx(
    root: &Path,
    port: u16,
    locations: &str,
    tls: (u16, &Path, &Path),
) -> Result<Child, String> {
    let user = if is_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}worker_processes 1;\nmaster_process off;\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_timeout 65;\n  keepalive_requests 1000000;\n  client_body_temp_path {root}/tmp;\n  proxy_temp_path {root}/tmp;\n  fastcgi_temp_path {root}/tmp;\n  uwsgi_temp_path {root}/tmp;\n  scgi_temp_path {root}/tmp;\n  server {{\n    listen 127.0.0.1:{port};\n{locations}  }}\n  server {{\n    listen 127.0.0.1:{tls_port} ssl;\n    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n{locations}  }}\n}}\n",
        root = root.display(),
        tls_port = tls.0,
        cert = tls.1.display(),
        key = tls.2.display(),
    );
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| e.to_string())?;
    let path = root.join("nginx.conf");
    std::fs::write(&path, conf).map_err(|e| e.to_string())?;
    let bin = which("nginx").ok_or("nginx is not installed")?;
    Command::new(bin)
        .arg("-p")
        .arg(root)
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start nginx: {e}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs wrk against `url` and reads its summary (`--latency` distribution).
fn wrk(url: &str, opts: &ReadBench) -> Result<WrkFigures, String> {
    let out = Command::new(which("wrk").ok_or("wrk is not installed")?)
        .args([
            "-t2",
            &format!("-c{}", opts.connections),
            &format!("-d{}s", opts.seconds),
            "--latency",
            url,
        ])
        .output()
        .map_err(|e| format!("cannot run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_wrk(&text).ok_or_else(|| format!("unexpected wrk output for {url}: {text}"))
}

/// Reads `Requests/sec`, the 50% and 99% latency lines and `Non-2xx` from wrk's output.
fn parse_wrk(text: &str) -> Option<WrkFigures> {
    let mut f = WrkFigures::default();
    let mut rps = None;
    for line in text.lines().map(str::trim) {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("Requests/sec:"), Some(v)) => rps = v.parse().ok(),
            (Some("50%"), Some(v)) => f.p50_ms = millis(v)?,
            (Some("99%"), Some(v)) => f.p99_ms = millis(v)?,
            (Some("Non-2xx"), _) => {
                f.non_2xx = line.rsplit(' ').next()?.parse().ok()?;
            }
            _ => {}
        }
    }
    f.rps = rps?;
    Some(f)
}

/// wrk's latency (`812.00us`, `1.21ms`, `2.00s`) in milliseconds.
fn millis(v: &str) -> Option<f64> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 10s test @ http://127.0.0.1:1/e0\n  2 threads and 32 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency   812.00us  1.00ms  20.00ms   90.00%\n  Latency Distribution\n     50%  640.00us\n     75%    1.00ms\n     90%    1.50ms\n     99%    4.21ms\n  400000 requests in 10.00s, 1.00GB read\n  Non-2xx or 3xx responses: 12\nRequests/sec:  40000.50\nTransfer/sec:    100.00MB\n";
        let f = parse_wrk(text).expect("parsed");
        assert!((f.rps - 40000.5).abs() < 0.01);
        assert!((f.p50_ms - 0.64).abs() < 1e-9);
        assert!((f.p99_ms - 4.21).abs() < 1e-9);
        assert_eq!(f.non_2xx, 12);
        assert_eq!(millis("2.00s"), Some(2000.0));
        assert!(parse_wrk("garbage").is_none());
    }

    #[test]
    fn the_catalog_has_big_and_small_products() {
        let big = product_input(5).expect("big");
        assert!(
            (50..=100).contains(&big.variants.len()),
            "{}",
            big.variants.len()
        );
        let small = product_input(2).expect("small");
        assert!(small.variants.len() <= 8);
        assert!(small.body_html.len() > 400);
    }
}
