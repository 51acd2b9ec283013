//! Test harness: spawns the real application on a random port with a temporary database.
//!
//! Backend: SQLite in a temporary folder by default. With `SOUK_TEST_PG_URL` set (e.g.
//! `postgres://postgres@127.0.0.1:5432`), every test gets its own fresh PostgreSQL database,
//! dropped at the end.

use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use souk::app::{Application, Config};
use souk::provision::FaultHook;
use std::path::PathBuf;
use std::time::Duration;

pub struct TestApp {
    pub addr: String,
    pub port: u16,
    /// Port of the HTTPS listener when the config set `https_bind`.
    pub https_port: Option<u16>,
    pub client: Client,
    pub admin_token: String,
    pub data_dir: PathBuf,
    pub db: souk::store::Db,
    _tmp: tempfile::TempDir,
    pg: Option<(String, String)>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
}

pub const ADMIN_EMAIL: &str = "admin@test.example";
pub const ADMIN_PASSWORD: &str = "admin-password-123";

/// Path of a file in `../shared/data`, or `None` (test skipped) when the folder is absent.
pub fn shared_data(name: &str) -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(name);
    match std::fs::read(&p) {
        Ok(b) => Some(b),
        Err(_) => {
            eprintln!("SKIPPED: {} not found", p.display());
            None
        }
    }
}

async fn create_pg_db(base: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!("souk_test_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres"))
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("create database {name}")))
        .execute(&mut c)
        .await
        .expect("create database");
    (format!("{base}/{name}"), name)
}

fn drop_pg_db(base: String, name: String) {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&format!("{base}/postgres")).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "drop database if exists {name} with (force)"
                )))
                .execute(&mut c)
                .await;
            }
        });
    })
    .join()
    .ok();
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with_fault(fault: FaultHook) -> TestApp {
    spawn_with(move |c| c.fault = Some(fault)).await
}

pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let tmp = tempfile::tempdir().expect("tempdir");
    spawn_in(tmp, tweak, None).await
}

/// Starts an app in `tmp` (reusing its database when `pg` is given or SQLite is there).
pub async fn spawn_in(
    tmp: tempfile::TempDir,
    tweak: impl FnOnce(&mut Config),
    pg: Option<(String, String)>,
) -> TestApp {
    let mut cfg = Config::for_tests(tmp.path().to_path_buf());
    let pg = match (pg, std::env::var("SOUK_TEST_PG_URL").ok()) {
        (Some(p), _) => Some(p),
        (None, Some(base)) => Some(create_pg_db(base.trim_end_matches('/')).await),
        (None, None) => None,
    };
    if let Some((url, _)) = &pg {
        cfg.database_url = Some(souk::auth::Secret::new(url.clone()));
    }
    tweak(&mut cfg);
    let app = Application::build(cfg).await.expect("build app");
    let port = app.port();
    let https_port = app.https_port();
    let db = app.state.db.clone();
    souk::demo::create_admin(
        &app.state.db,
        ADMIN_EMAIL,
        "Admin",
        Some(ADMIN_PASSWORD.into()),
    )
    .await
    .expect("admin");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        let _ = app
            .run_until_stopped(async {
                let _ = rx.await;
            })
            .await;
    });
    souk::webhooks::install_crypto_provider();
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let addr = format!("http://127.0.0.1:{port}");
    let mut t = TestApp {
        addr,
        port,
        https_port,
        client,
        admin_token: String::new(),
        data_dir: tmp.path().to_path_buf(),
        db,
        _tmp: tmp,
        pg,
        shutdown: Some(tx),
        handle: Some(handle),
    };
    t.admin_token = t.login(ADMIN_EMAIL, ADMIN_PASSWORD).await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    t
}

impl TestApp {
    /// Stops the server and waits for it to end; its PostgreSQL database is dropped with
    /// the app.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }

    /// Stops the server and returns its folder and database, for a restart test: the
    /// app started on them with [`spawn_in`] owns (and drops) the database from then on.
    pub async fn stop_for_restart(mut self) -> (tempfile::TempDir, Option<(String, String)>) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
        let tmp = std::mem::replace(&mut self._tmp, tempfile::tempdir().expect("tempdir"));
        (tmp, self.pg.take())
    }

    /// Starts another node on this app's PostgreSQL database (its own folder and port).
    /// The database stays owned by `self`, which drops it. `None` on SQLite.
    pub async fn second_node(&self, tweak: impl FnOnce(&mut Config)) -> Option<TestApp> {
        let pg = self.pg.clone()?;
        let mut node = spawn_in(tempfile::tempdir().expect("tempdir"), tweak, Some(pg)).await;
        node.pg = None;
        Some(node)
    }

    /// The PostgreSQL URL of this test's database, when running on PostgreSQL.
    pub fn pg_url(&self) -> Option<String> {
        self.pg.as_ref().map(|(u, _)| u.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// A request with `Host: {host}` (storefront/tenant resolution by host).
    pub fn on_host(&self, method: reqwest::Method, host: &str, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("Host", host)
    }

    pub async fn login(&self, email: &str, password: &str) -> Value {
        let r = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), StatusCode::OK, "login of {email} failed");
        r.json().await.expect("json")
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    pub async fn admin_get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("request")
    }

    /// Creates a merchant; returns its id.
    pub async fn create_merchant(&self, name: &str, email: &str) -> String {
        let r = self
            .admin_post(
                "/api/v1/admin/merchants",
                json!({ "name": name, "owner_email": email, "owner_name": "Owner" }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        v["id"].as_str().expect("id").to_string()
    }

    /// Polls the provisioning until it leaves pending/in_progress; returns the final view.
    pub async fn wait_provisioning(&self, id: &str) -> Value {
        for _ in 0..500 {
            let v: Value = self
                .admin_get(&format!("/api/v1/admin/merchants/{id}/provisioning"))
                .await
                .json()
                .await
                .expect("json");
            if !matches!(v["status"].as_str(), Some("pending") | Some("in_progress")) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("provisioning of {id} did not finish");
    }

    /// Creates, activates and waits for a merchant; returns `(id, owner access token)`.
    pub async fn provisioned_merchant(&self, subdomain: &str) -> (String, String) {
        let email = format!("owner@{subdomain}.example");
        let id = self
            .create_merchant(&format!("Shop {subdomain}"), &email)
            .await;
        let r = self
            .admin_post(
                &format!("/api/v1/admin/merchants/{id}/activate"),
                json!({ "theme": "classic", "plan": "growth", "subdomain": subdomain }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let v = self.wait_provisioning(&id).await;
        assert_eq!(v["status"], "completed", "{v}");
        let token = self
            .set_password_from_welcome(&email, "owner-password-1")
            .await;
        (id, token)
    }

    /// Reads the welcome e-mail for `email` from the .eml outbox, sets the password through
    /// the link's token, signs in and returns an access token.
    pub async fn set_password_from_welcome(&self, email: &str, password: &str) -> String {
        let token = self.welcome_token(email).await;
        let r = self
            .client
            .post(self.url("/api/v1/auth/set-password"))
            .json(&json!({ "token": token, "password": password }))
            .send()
            .await
            .expect("set-password");
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        self.login(email, password).await["access_token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// The set-password token of the newest welcome e-mail to `email`.
    pub async fn welcome_token(&self, email: &str) -> String {
        for _ in 0..300 {
            if let Some(t) = find_token(&self.data_dir.join("outbox"), email) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no welcome e-mail for {email}");
    }
}

fn find_token(dir: &std::path::Path, email: &str) -> Option<String> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let text = std::fs::read_to_string(entry.path()).ok()?;
        // Quoted-printable may wrap lines; undo soft breaks first.
        let text = text
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=");
        if text.contains(email)
            && let Some(i) = text.find("token=")
        {
            let t: String = text[i + 6..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            return Some(t);
        }
    }
    None
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some((_, name)) = self.pg.take()
            && let Ok(base) = std::env::var("SOUK_TEST_PG_URL")
        {
            drop_pg_db(base.trim_end_matches('/').to_string(), name);
        }
    }
}

/// Every `token=` in e-mails to `email`, oldest first (by file modification time).
pub fn mail_tokens(dir: &std::path::Path, email: &str) -> Vec<String> {
    let mut found: Vec<(std::time::SystemTime, String)> = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let text = text
            .replace("=\r\n", "")
            .replace("=\n", "")
            .replace("=3D", "=");
        if text.contains(email)
            && let Some(i) = text.find("token=")
        {
            let t: String = text[i + 6..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            let at = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            found.push((at, t));
        }
    }
    found.sort();
    found.into_iter().map(|(_, t)| t).collect()
}

impl TestApp {
    /// Waits until `n` e-mails with a token reached `email`; returns their tokens, oldest first.
    pub async fn wait_mail_tokens(&self, email: &str, n: usize) -> Vec<String> {
        for _ in 0..300 {
            let t = mail_tokens(&self.data_dir.join("outbox"), email);
            if t.len() >= n {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {n} e-mails with a token reached {email}");
    }

    /// A request with a bearer token.
    pub fn with_token(&self, method: reqwest::Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    /// Owner invites `email` with `role`; the invitee accepts as a new account. Returns
    /// `(user id, access token acting for the tenant)`.
    pub async fn add_member(&self, owner_token: &str, email: &str, role: &str) -> (String, String) {
        let n = mail_tokens(&self.data_dir.join("outbox"), email).len() + 1;
        let r = self
            .with_token(
                reqwest::Method::POST,
                "/api/v1/team/invitations",
                owner_token,
            )
            .json(&json!({ "email": email, "role": role }))
            .send()
            .await
            .expect("invite");
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let token = self.wait_mail_tokens(email, n).await.pop().expect("token");
        let r = self
            .client
            .post(self.url("/api/v1/invitations/accept"))
            .json(&json!({ "token": token, "name": "Member", "password": "member-password-1" }))
            .send()
            .await
            .expect("accept");
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{}",
            r.text().await.unwrap_or_default()
        );
        let v: Value = r.json().await.expect("json");
        let access = v["access_token"].as_str().expect("access").to_string();
        let me: Value = self
            .with_token(reqwest::Method::GET, "/api/v1/auth/me", &access)
            .send()
            .await
            .expect("me")
            .json()
            .await
            .expect("json");
        (me["id"].as_str().expect("id").to_string(), access)
    }
}
