//! Storage outages (issue 12 §1): a full SQLite database (capped with `max_page_count`, as
//! a full disk without root) answers 507 `storage_full` with `Retry-After`, never keeps the
//! writer inside a failed transaction, recovers by itself once space returns, and loses
//! nothing it answered 2xx, across a restart, for orders, products, merchant activation and
//! the job queue (the welcome e-mail). On PostgreSQL, a killed server connection answers
//! 503 `storage_unavailable` and the next request works.

use crate::helpers::{TestApp, spawn_app, spawn_in};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashSet;

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = app.with_token(method, path, token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("request");
    let status = r.status();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// An order of four ~240-character lines, so that a few of them need a new database page.
fn order_body(i: usize) -> Value {
    let line = |n: usize| json!({ "title": format!("Service {i}.{n} {}", "x".repeat(230)), "price_minor": 100 + i as i64 });
    json!({ "line_items": [line(1), line(2), line(3), line(4)] })
}

/// Creates orders (`body(i)`) until `stop` of them were refused with 507 (each with code
/// `storage_full` and `Retry-After`), at most 400; pushes the acknowledged ones as
/// `(id, number)`. Returns how many were refused. (Refusals and successes interleave: a
/// later order may fit in a page an earlier one could not use.)
async fn fill_with_orders(
    app: &TestApp,
    owner: &str,
    body: impl Fn(usize) -> Value,
    stop: usize,
    acked: &mut Vec<(String, i64)>,
) -> usize {
    let mut full = 0;
    for i in 0..400 {
        let (s, retry, v) = call(app, Method::POST, "/api/v1/orders", owner, Some(body(i))).await;
        match s {
            StatusCode::CREATED => {
                acked.push((
                    v["id"].as_str().expect("id").into(),
                    v["number"].as_i64().expect("number"),
                ));
            }
            StatusCode::INSUFFICIENT_STORAGE => {
                assert_eq!(v["error"]["code"], "storage_full", "{v}");
                assert!(retry.is_some(), "507 without Retry-After");
                full += 1;
                if full >= stop {
                    break;
                }
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    full
}

#[tokio::test]
async fn a_full_sqlite_database_answers_507_loses_no_acknowledged_write_and_recovers() {
    let app = spawn_app().await;
    if app.pg_url().is_some() {
        eprintln!("SKIPPED: full-disk simulation is SQLite's max_page_count (PostgreSQL run)");
        return;
    }
    let (_, owner) = app.provisioned_merchant("full-disk").await;
    let pending = app.create_merchant("Late Shop", "owner@late.example").await;

    // Acknowledged orders: id → number.
    let mut acked: Vec<(String, i64)> = vec![];
    let pages = app.db.sqlite_page_count().await.expect("page_count");
    app.db.set_sqlite_max_pages(pages + 3);
    let full = fill_with_orders(&app, &owner, order_body, 5, &mut acked).await;
    assert!(full >= 5, "the capped database never filled up");
    assert!(!acked.is_empty(), "no order fit before the cap");

    // Readiness reports the outage; metrics count it; liveness stays up.
    let r = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["reason"], "storage_full", "{v}");
    assert!(
        v["storage"]["storage_full_errors"].as_u64().unwrap_or(0) >= 5,
        "{v}"
    );
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(r.status(), StatusCode::OK);
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains("souk_storage_errors_total{kind=\"full\"}"),
        "{text}"
    );

    // Other writes refuse the same way while full: a product and a merchant activation.
    let (s, _, v) = call(
        &app,
        Method::POST,
        "/api/v1/products",
        &owner,
        Some(crate::catalog::product("big", &"B".repeat(20), "active")),
    )
    .await;
    // A product may still fit in a free page; if it was acknowledged it must survive.
    let product_id = match s {
        StatusCode::CREATED => Some(v["id"].as_str().expect("id").to_string()),
        StatusCode::INSUFFICIENT_STORAGE => {
            assert_eq!(v["error"]["code"], "storage_full");
            None
        }
        other => panic!("product create while full: {other} {v}"),
    };
    // Then fill what is left with the smallest orders, so the last free pages are gone.
    let small = |i: usize| json!({ "line_items": [{ "title": "t", "price_minor": 1 + i as i64 }] });
    fill_with_orders(&app, &owner, small, 3, &mut acked).await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{pending}/activate"),
            json!({ "theme": "classic", "plan": "growth", "subdomain": "late-shop" }),
        )
        .await;
    // An activation may still fit in the pages its tables have free; then it must hold.
    let activated_while_full = match r.status() {
        StatusCode::ACCEPTED => true,
        StatusCode::INSUFFICIENT_STORAGE => {
            let v: Value = app
                .admin_get(&format!("/api/v1/admin/merchants/{pending}"))
                .await
                .json()
                .await
                .expect("json");
            assert_eq!(v["status"], "pending", "{v}");
            false
        }
        other => panic!("activation while full: {other}"),
    };

    // Space returns: writes succeed by themselves, no restart.
    app.db.set_sqlite_max_pages(1_000_000_000);
    for i in 400..410 {
        let (s, _, v) = call(
            &app,
            Method::POST,
            "/api/v1/orders",
            &owner,
            Some(order_body(i)),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        acked.push((
            v["id"].as_str().expect("id").into(),
            v["number"].as_i64().expect("number"),
        ));
    }
    let r = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "ready again after a successful write"
    );
    if !activated_while_full {
        let r = app
            .admin_post(
                &format!("/api/v1/admin/merchants/{pending}/activate"),
                json!({ "theme": "classic", "plan": "growth", "subdomain": "late-shop" }),
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::ACCEPTED,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }
    let v = app.wait_provisioning(&pending).await;
    assert_eq!(v["status"], "completed", "{v}");
    let welcome = app.wait_mail_tokens("owner@late.example", 1).await;
    assert_eq!(welcome.len(), 1, "exactly one welcome e-mail");

    // Every acknowledged write survives a restart, and no order number was handed out twice.
    let (tmp, pg) = app.stop_for_restart().await;
    let app = spawn_in(tmp, |_| {}, pg).await;
    let owner = app
        .login("owner@full-disk.example", "owner-password-1")
        .await["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let numbers: HashSet<i64> = acked.iter().map(|(_, n)| *n).collect();
    assert_eq!(
        numbers.len(),
        acked.len(),
        "an order number was reused: {acked:?}"
    );
    let mut lost = vec![];
    for (id, number) in &acked {
        let (s, _, v) = call(
            &app,
            Method::GET,
            &format!("/api/v1/orders/{id}"),
            &owner,
            None,
        )
        .await;
        if s != StatusCode::OK || v["number"].as_i64() != Some(*number) {
            lost.push(*number);
        }
    }
    eprintln!(
        "full disk: {} orders acknowledged, {} survived the restart",
        acked.len(),
        acked.len() - lost.len()
    );
    assert!(lost.is_empty(), "acknowledged orders lost: {lost:?}");
    if let Some(pid) = product_id {
        let (s, _, _) = call(
            &app,
            Method::GET,
            &format!("/api/v1/products/{pid}"),
            &owner,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "acknowledged product lost");
    }
    let v: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{pending}"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(v["status"], "active", "activated merchant came back as {v}");
    // The welcome token that went out still works (it was committed before it was sent).
    let r = app
        .client
        .post(app.url("/api/v1/auth/set-password"))
        .json(&json!({ "token": welcome[0], "password": "late-owner-pass-1" }))
        .send()
        .await
        .expect("set-password");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    app.stop().await;
}

#[tokio::test]
async fn a_lost_postgresql_connection_answers_503_storage_unavailable_then_recovers() {
    let app = spawn_app().await;
    let Some(url) = app.pg_url() else {
        eprintln!("SKIPPED: PostgreSQL connection loss (SQLite run)");
        return;
    };
    let (_, owner) = app.provisioned_merchant("pg-restart").await;
    let (s, _, _) = call(
        &app,
        Method::POST,
        "/api/v1/orders",
        &owner,
        Some(order_body(0)),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    // What a server restart does to the pool: every connection is terminated (57P01).
    let db = url.rsplit('/').next().expect("db name").to_string();
    let base = url.rsplit_once('/').expect("base").0.to_string();
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&format!("{base}/postgres"))
            .await
            .expect("connect");
        sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()")
            .bind(&db)
            .execute(&mut c)
            .await
            .expect("terminate");
    }
    let mut saw_503 = false;
    let mut ok_after = false;
    for i in 1..20 {
        let (s, retry, v) = call(
            &app,
            Method::POST,
            "/api/v1/orders",
            &owner,
            Some(order_body(i)),
        )
        .await;
        match s {
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(v["error"]["code"], "storage_unavailable", "{v}");
                assert!(retry.is_some());
                saw_503 = true;
            }
            StatusCode::CREATED => {
                ok_after = true;
                break;
            }
            other => panic!("after a connection loss: {other} {v}"),
        }
    }
    assert!(ok_after, "writes never recovered");
    // sqlx may test connections before use and hide the loss entirely; when it did not,
    // the client saw a 503 and never a 500 (asserted above).
    eprintln!("connection loss surfaced as 503: {saw_503}");
    app.stop().await;
}

/// Issue 12 §2: the outbox file of an `email` job is named by the job id and written
/// through a temporary file, so a retried job (a kill between sending and recording the
/// job done) replaces its message instead of sending a second one, and a failed write
/// leaves no partial `.eml`. The `Message-ID` is derived from the job id for SMTP receivers.
#[tokio::test]
async fn outbox_messages_are_named_by_job_replaced_on_retry_and_never_partial() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mailer = souk::mail::Mailer::file(dir.path().to_path_buf()).expect("mailer");
    let msg = souk::mail::EmailMessage {
        to: "ann@example.com".into(),
        to_name: Some("Ann".into()),
        subject: "Welcome".into(),
        text: "Hello".into(),
    };
    let job = uuid::Uuid::now_v7();
    mailer
        .send("Souk <no-reply@souk.localhost>", &msg, job)
        .await
        .expect("send");
    mailer
        .send("Souk <no-reply@souk.localhost>", &msg, job)
        .await
        .expect("retry");
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files,
        vec![format!("{job}.eml")],
        "a retry must replace, not add"
    );
    let text = std::fs::read_to_string(dir.path().join(format!("{job}.eml"))).expect("eml");
    assert!(
        text.contains(&format!("Message-ID: <{job}@souk.localhost>")),
        "{text}"
    );

    // A write that cannot complete (here: the target name is a directory) fails the job
    // and leaves neither a partial message nor its temporary file.
    let broken = uuid::Uuid::now_v7();
    std::fs::create_dir(dir.path().join(format!("{broken}.eml"))).expect("mkdir");
    assert!(
        mailer
            .send("Souk <no-reply@souk.localhost>", &msg, broken)
            .await
            .is_err()
    );
    let mut files: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want = vec![format!("{job}.eml"), format!("{broken}.eml")];
    want.sort();
    assert_eq!(files, want, "no .tmp file may remain");
}
