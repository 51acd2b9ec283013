//! Custom domains (issue 16): adding with the DNS instructions, bad input, the TXT/CNAME
//! check against a DNS server on loopback, routing only verified domains, the claim
//! conflict, re-verification with a grace period and e-mail, Caddy's `ask` endpoint, the
//! admin list, and (when Debian's `pebble` is installed) a certificate issued by Pebble
//! and served over HTTPS with SNI.

use crate::dns::TestDns;
use crate::helpers::{TestApp, spawn_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::Ipv4Addr;
use std::time::Duration;

async fn dns_app(dns: &TestDns, tweak: impl FnOnce(&mut souk::app::Config)) -> TestApp {
    let ns = dns.addr;
    spawn_with(move |c| {
        c.domains.nameserver = Some(ns);
        tweak(c);
    })
    .await
}

async fn add(app: &TestApp, token: &str, host: &str) -> reqwest::Response {
    app.with_token(Method::POST, "/api/v1/domains", token)
        .json(&json!({ "host": host }))
        .send()
        .await
        .unwrap()
}

async fn get(app: &TestApp, token: &str, id: &str) -> Value {
    app.with_token(Method::GET, &format!("/api/v1/domains/{id}"), token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn check(app: &TestApp, token: &str, id: &str) -> Value {
    let r = app
        .with_token(Method::POST, &format!("/api/v1/domains/{id}/check"), token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Polls the domain until `pred` holds (the background worker's work).
async fn wait_for(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..600 {
        let d = get(app, token, id).await;
        if pred(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("domain never became {what}: {}", get(app, token, id).await);
}

fn record<'a>(d: &'a Value, rtype: &str) -> &'a Value {
    d["dns_records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == rtype)
        .unwrap_or_else(|| panic!("no {rtype} instruction in {d}"))
}

#[tokio::test]
async fn bad_domains_get_errors_naming_the_field() {
    let dns = TestDns::start().await;
    let app = dns_app(&dns, |_| {}).await;
    let (_id, tok) = app.provisioned_merchant("badin").await;
    let long = format!("{}.example", vec!["a".repeat(60); 5].join("."));
    for (host, code) in [
        ("not a host", "invalid_domain"),
        ("https://shop.example.com/", "invalid_domain"),
        ("192.0.2.10", "ip_literal"),
        ("[2001:db8::1]", "ip_literal"),
        ("localhost", "platform_domain"),
        ("badin.localhost", "platform_domain"),
        (long.as_str(), "domain_too_long"),
        ("single", "invalid_domain"),
    ] {
        let r = add(&app, &tok, host).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{host}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["code"], code, "{host}: {e}");
        assert_eq!(e["error"]["details"]["field"], "host", "{host}");
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("host: "),
            "{e}"
        );
    }
    // An IDN in Unicode is accepted, stored in A-labels, and shown in both forms.
    let r = add(&app, &tok, "Bücher.Example").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["host"], "xn--bcher-kva.example");
    assert_eq!(d["unicode_host"], "bücher.example");
    assert_eq!(d["status"], "pending");
    assert_eq!(d["routes"], false);
    assert_eq!(
        record(&d, "TXT")["name"],
        "_souk-challenge.xn--bcher-kva.example"
    );
    // The same domain twice in one store: 409.
    let r = add(&app, &tok, "xn--bcher-kva.example").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "domain_taken");
}

#[tokio::test]
async fn a_domain_verifies_through_dns_routes_once_verified_and_cannot_be_claimed_twice() {
    let dns = TestDns::start().await;
    let app = dns_app(&dns, |_| {}).await;
    let (a_id, a) = app.provisioned_merchant("alpha").await;
    let (_b_id, b) = app.provisioned_merchant("bravo").await;
    let host = "shop.alpha-goods.example";
    let r = add(&app, &a, host).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let d: Value = r.json().await.unwrap();
    let id = d["id"].as_str().unwrap().to_string();
    assert_eq!(d["status"], "pending");
    let cname = record(&d, "CNAME");
    assert_eq!(cname["name"], host);
    assert_eq!(cname["value"], "localhost");
    let txt = record(&d, "TXT");
    assert_eq!(txt["name"], format!("_souk-challenge.{host}"));
    let value = txt["value"].as_str().unwrap().to_string();
    assert!(
        value.starts_with("souk-verification=") && value.len() > 30,
        "{value}"
    );

    // Pending: the host routes nowhere.
    let r = app.on_host(Method::GET, host, "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Nothing in DNS yet: the check says what is missing.
    let d = check(&app, &a, &id).await;
    assert_eq!(d["status"], "pending");
    let problems = d["last_check"]["problems"].to_string();
    assert!(
        problems.contains("no TXT record at _souk-challenge.shop.alpha-goods.example"),
        "{problems}"
    );

    // A TXT record with the wrong token, a CNAME pointing elsewhere.
    dns.set_txt(
        &format!("_souk-challenge.{host}"),
        "souk-verification=wrong",
    )
    .await;
    dns.set_cname(host, "elsewhere.example").await;
    let d = check(&app, &a, &id).await;
    assert_eq!(d["status"], "pending");
    assert_eq!(
        d["last_check"]["txt"]["found"],
        json!(["souk-verification=wrong"])
    );
    let problems = d["last_check"]["problems"].to_string();
    assert!(problems.contains("wrong token"), "{problems}");
    assert!(
        problems.contains("is a CNAME to elsewhere.example; it must point to localhost"),
        "{problems}"
    );

    // Right records: the background worker verifies it by itself (no Check now).
    dns.set_txt(&format!("_souk-challenge.{host}"), &value)
        .await;
    dns.remove(host, hickory_server::proto::rr::RecordType::CNAME)
        .await;
    dns.set_cname(host, "localhost").await;
    let d = wait_for(&app, &a, &id, "active", |d| d["status"] == "active").await;
    assert_eq!(d["routes"], true);
    assert!(d["verified_at"].is_string());
    assert_eq!(d["last_check"]["problems"], json!([]));
    let home = app.on_host(Method::GET, host, "/").send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("Shop alpha"));

    // Another store cannot claim it, and the refusal does not say whose it is.
    let r = add(&app, &b, host).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "domain_taken");
    assert!(
        !e.to_string().contains("Shop alpha") && !e.to_string().contains(&a_id),
        "{e}"
    );

    // Caddy's ask: 200 for the active custom domain and a live store's subdomain only.
    for (name, status) in [
        (host, StatusCode::OK),
        ("alpha.localhost", StatusCode::OK),
        ("nobody.localhost", StatusCode::NOT_FOUND),
        ("random.example", StatusCode::NOT_FOUND),
    ] {
        let r = app
            .client
            .get(app.url(&format!("/api/v1/tls/ask?domain={name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{name}");
    }

    // The admin sees it with its store and state.
    let list: Value = app
        .admin_get("/api/v1/admin/domains")
        .await
        .json()
        .await
        .unwrap();
    let row = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["host"] == host)
        .unwrap();
    assert_eq!(row["status"], "active");
    assert_eq!(row["merchant_name"], "Shop alpha");
    assert!(row["last_checked_at"].is_string());

    // Store B cannot see, check or remove A's domain: 404 like a missing id.
    let missing = uuid::Uuid::now_v7().to_string();
    for path in [
        format!("/api/v1/domains/{id}"),
        format!("/api/v1/domains/{missing}"),
    ] {
        for m in [Method::GET, Method::DELETE] {
            let r = app.with_token(m.clone(), &path, &b).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{m} {path}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["error"]["code"], "not_found");
        }
        let r = app
            .with_token(Method::POST, &format!("{path}/check"), &b)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(get(&app, &a, &id).await["status"], "active");

    // The admin revokes it: it stops routing at once.
    let r = app
        .admin_post(&format!("/api/v1/admin/domains/{id}/revoke"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.on_host(Method::GET, host, "/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The owner removes it.
    let r = app
        .with_token(Method::DELETE, &format!("/api/v1/domains/{id}"), &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .with_token(Method::GET, &format!("/api/v1/domains/{id}"), &a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_domain_whose_records_disappear_is_flagged_then_deactivated_and_the_owner_emailed() {
    let dns = TestDns::start().await;
    let app = dns_app(&dns, |c| {
        c.domains.recheck_every = Duration::from_millis(300);
        c.domains.grace = Duration::from_secs(2);
    })
    .await;
    let (_id, tok) = app.provisioned_merchant("fading").await;
    let host = "fading-shop.example";
    let d: Value = add(&app, &tok, host).await.json().await.unwrap();
    let id = d["id"].as_str().unwrap().to_string();
    let value = record(&d, "TXT")["value"].as_str().unwrap().to_string();
    dns.set_txt(&format!("_souk-challenge.{host}"), &value)
        .await;
    dns.set_cname(host, "localhost").await;
    let d = check(&app, &tok, &id).await;
    assert_eq!(d["status"], "active", "{d}");
    assert_eq!(
        app.on_host(Method::GET, host, "/")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );

    // The TXT record goes away: flagged, still routing during the grace period.
    dns.remove(
        &format!("_souk-challenge.{host}"),
        hickory_server::proto::rr::RecordType::TXT,
    )
    .await;
    let d = wait_for(&app, &tok, &id, "flagged", |d| {
        d["failing_since"].is_string()
    })
    .await;
    assert_eq!(d["status"], "active");
    // Then deactivated: no longer routed, owner e-mailed.
    let d = wait_for(&app, &tok, &id, "inactive", |d| d["status"] == "inactive").await;
    assert_eq!(d["routes"], false);
    assert_eq!(
        app.on_host(Method::GET, host, "/")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    let mut mails = String::new();
    for _ in 0..100 {
        mails = std::fs::read_dir(app.data_dir.join("outbox"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter(|t| t.contains("owner@fading.example"))
            .collect::<Vec<_>>()
            .join("\n");
        if mails.contains("was deactivated") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mails.contains("are missing"), "a warning when flagged");
    assert!(mails.contains("was deactivated"), "{mails}");

    // Records fixed, Check now: verified again.
    dns.set_txt(&format!("_souk-challenge.{host}"), &value)
        .await;
    let d = check(&app, &tok, &id).await;
    assert_eq!(d["status"], "active");
    assert_eq!(
        app.on_host(Method::GET, host, "/")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// Pebble on loopback: its own HTTPS listener needs a certificate (generated here), its
/// validation authority resolves names through the test DNS server and dials Souk's HTTP
/// port for HTTP-01.
struct Pebble {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
    mgmt_port: u16,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn pebble_binary() -> Option<String> {
    for p in ["/usr/bin/pebble", "/usr/local/bin/pebble"] {
        if std::path::Path::new(p).exists() {
            return Some(p.to_string());
        }
    }
    None
}

impl Pebble {
    /// Prepares the config and the listener certificate (Pebble starts with [`Self::run`]).
    fn prepare() -> Option<Pebble> {
        pebble_binary()?;
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        Some(Pebble {
            child: std::process::Command::new("true").spawn().unwrap(),
            dir,
            port: free_port(),
            mgmt_port: free_port(),
        })
    }

    fn root_path(&self) -> std::path::PathBuf {
        self.dir.path().join("cert.pem")
    }

    async fn run(&mut self, http_port: u16, dns: std::net::SocketAddr) {
        let cfg = json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{}", self.port),
            "managementListenAddress": format!("127.0.0.1:{}", self.mgmt_port),
            "certificate": self.dir.path().join("cert.pem"),
            "privateKey": self.dir.path().join("key.pem"),
            "httpPort": http_port,
            "tlsPort": free_port(),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }});
        let cfg_path = self.dir.path().join("pebble.json");
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let log = std::fs::File::create(self.dir.path().join("pebble.log")).unwrap();
        let _ = self.child.kill();
        self.child = std::process::Command::new(pebble_binary().unwrap())
            .arg("-config")
            .arg(&cfg_path)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start pebble");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("pebble did not start: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root that signs the certificates Pebble issues (from its management API).
    async fn issuing_root(&self) -> String {
        let own =
            reqwest::Certificate::from_pem(&std::fs::read(self.root_path()).unwrap()).unwrap();
        let c = reqwest::Client::builder()
            .tls_certs_only([own])
            .build()
            .unwrap();
        c.get(format!("https://127.0.0.1:{}/roots/0", self.mgmt_port))
            .send()
            .await
            .expect("pebble roots")
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn pebble_issues_a_certificate_and_the_storefront_is_served_over_https_with_sni() {
    let Some(mut pebble) = Pebble::prepare() else {
        eprintln!("SKIPPED: pebble_issues_a_certificate… (Debian package `pebble` not installed)");
        return;
    };
    let dns = TestDns::start().await;
    let dir_url = format!("https://127.0.0.1:{}/dir", pebble.port);
    let root = pebble.root_path();
    let app = dns_app(&dns, move |c| {
        c.https_bind = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        // 127.0.0.2 is a platform address too, but nothing listens there: the challenge
        // of a domain pointed at it cannot be reached.
        c.domains.apex_addresses = vec![
            std::net::IpAddr::V4(Ipv4Addr::LOCALHOST),
            std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
        ];
        let mut acme = souk::custom_domains::AcmeConfig::new(dir_url);
        acme.root_ca = Some(root);
        acme.retry_base = Duration::from_secs(1);
        c.domains.acme = Some(acme);
    })
    .await;
    pebble.run(app.port, dns.addr).await;
    let https_port = app.https_port.expect("https listener");
    let (_id, tok) = app.provisioned_merchant("secure").await;
    // First a domain whose HTTP-01 challenge fails at the CA (its address answers
    // nothing): the failure is shown on it and retried later, and it does not hold up the
    // next domain's certificate.
    let bad = "shop.unreachable-goods.example";
    let b: Value = add(&app, &tok, bad).await.json().await.unwrap();
    let bad_id = b["id"].as_str().unwrap().to_string();
    let bad_txt = record(&b, "TXT")["value"].as_str().unwrap().to_string();
    dns.set_txt(&format!("_souk-challenge.{bad}"), &bad_txt)
        .await;
    dns.set_a(bad, Ipv4Addr::new(127, 0, 0, 2)).await;
    let b = check(&app, &tok, &bad_id).await;
    assert_eq!(b["status"], "verified", "{b}");
    let host = "shop.secure-goods.example";
    let d: Value = add(&app, &tok, host).await.json().await.unwrap();
    let id = d["id"].as_str().unwrap().to_string();
    let value = record(&d, "TXT")["value"].as_str().unwrap().to_string();
    dns.set_txt(&format!("_souk-challenge.{host}"), &value)
        .await;
    dns.set_a(host, Ipv4Addr::LOCALHOST).await;
    let d = check(&app, &tok, &id).await;
    assert!(
        matches!(d["status"].as_str(), Some("verified" | "active")),
        "{d}"
    );
    let d = wait_for(&app, &tok, &id, "active with a certificate", |d| {
        d["status"] == "active" && d["certificate"]["expires_at"].is_string()
            || d["certificate"]["last_error"].is_string()
    })
    .await;
    assert!(
        d["certificate"]["last_error"].is_null(),
        "{d}\npebble log:\n{}",
        pebble.log()
    );

    // A browser-grade client trusting only Pebble's root gets a valid certificate for
    // the name it asked for (SNI) and the storefront.
    let root = pebble.issuing_root().await;
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .resolve(
            host,
            std::net::SocketAddr::from(([127, 0, 0, 1], https_port)),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("https://{host}:{https_port}/"))
        .send()
        .await
        .expect("HTTPS request with SNI");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    assert!(r.text().await.unwrap().contains("Shop secure"));
    // Plain HTTP on that host now redirects to HTTPS.
    let r = app
        .on_host(Method::GET, host, "/products?page=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        r.headers()["location"],
        format!("https://{host}:{https_port}/products?page=2").as_str()
    );
    // The unreachable domain's order failed with the CA's message, is counted and will be
    // retried; it has no certificate and still routes over plain HTTP.
    let b = wait_for(&app, &tok, &bad_id, "a recorded certificate failure", |d| {
        d["certificate"]["last_error"].is_string()
    })
    .await;
    let err = b["certificate"]["last_error"].as_str().unwrap();
    assert!(
        err.contains("urn:ietf:params:acme:error"),
        "the CA's problem: {err}"
    );
    assert!(
        b["certificate"]["failed_attempts"].as_i64().unwrap() >= 1,
        "{b}"
    );
    assert!(b["certificate"]["expires_at"].is_null(), "{b}");
    assert_eq!(b["status"], "verified", "{b}");
    eprintln!("certificate failure shown on the domain: {err}");
    // A name with no certificate gets no handshake (nothing is issued for it).
    let stranger = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).unwrap()])
        .resolve(
            "unknown.example",
            std::net::SocketAddr::from(([127, 0, 0, 1], https_port)),
        )
        .build()
        .unwrap();
    assert!(
        stranger
            .get(format!("https://unknown.example:{https_port}/"))
            .send()
            .await
            .is_err()
    );
    // The admin list shows the expiry.
    let list: Value = app
        .admin_get("/api/v1/admin/domains")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list["data"][0]["certificate"]["expires_at"].is_string(),
        "{list}"
    );
    // /metrics counts the issuance.
    let m = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("souk_certificates_total"), "metrics");
}

/// Creates the records `d` (a domain as the API returns it) asks for in `dns`, then has
/// the admin re-check it; returns the domain afterwards (active, routing).
pub async fn verify_via_dns(app: &TestApp, dns: &TestDns, d: &Value) -> Value {
    for r in d["dns_records"].as_array().expect("dns_records") {
        let (name, value) = (r["name"].as_str().unwrap(), r["value"].as_str().unwrap());
        match r["type"].as_str().unwrap() {
            "TXT" => dns.set_txt(name, value).await,
            "CNAME" => dns.set_cname(name, value).await,
            "A" => dns.set_a(name, value.parse().unwrap()).await,
            other => panic!("unexpected record type {other}"),
        }
    }
    let id = d["id"].as_str().unwrap();
    let r = app
        .admin_post(&format!("/api/v1/admin/domains/{id}/check"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["status"], "active", "{d}");
    d
}

/// An app whose domain checks ask `dns`.
pub async fn app_with_dns(dns: &TestDns) -> TestApp {
    dns_app(dns, |_| {}).await
}

/// The HTTP-01 answer is served from the domain row, only on its own host and only while
/// the domain is verified.
#[tokio::test]
async fn acme_http01_answers_come_from_the_domain_row() {
    let dns = TestDns::start().await;
    let app = app_with_dns(&dns).await;
    let (id, _tok) = app.provisioned_merchant("chal").await;
    let d: Value = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/domains"),
            json!({ "host": "chal-shop.example" }),
        )
        .await
        .json()
        .await
        .unwrap();
    let did: uuid::Uuid = d["id"].as_str().unwrap().parse().unwrap();
    souk::store::platform::set_acme_challenge(&app.db, did, Some("tok123"), Some("tok123.thumb"))
        .await
        .unwrap();
    let path = "/.well-known/acme-challenge/tok123";
    // Pending: no answer (no certificate for an unverified name).
    let r = app
        .on_host(Method::GET, "chal-shop.example", path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    verify_via_dns(&app, &dns, &d).await;
    souk::store::platform::set_acme_challenge(&app.db, did, Some("tok123"), Some("tok123.thumb"))
        .await
        .unwrap();
    let r = app
        .on_host(Method::GET, "chal-shop.example:80", path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "tok123.thumb");
    let r = app
        .on_host(Method::GET, "other.example", path)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}
