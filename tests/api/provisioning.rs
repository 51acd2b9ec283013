use crate::helpers::{spawn_app, spawn_in, spawn_with, spawn_with_fault};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[tokio::test]
async fn activation_provisions_every_step_and_the_storefront_goes_live() {
    let app = spawn_app().await;
    let id = app
        .create_merchant("Bakery Fischer", "fischer@bakery.example")
        .await;
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "pending");
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "midnight", "plan": "starter", "subdomain": "fischer" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v = app.wait_provisioning(&id).await;
    assert_eq!(v["status"], "completed");
    let steps = v["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "create_workspace",
            "create_owner",
            "deploy_storefront",
            "seed_starter_data",
            "send_welcome_email"
        ]
    );
    for s in steps {
        assert_eq!(s["status"], "completed", "{s}");
        assert!(s["started_at"].is_string() && s["finished_at"].is_string());
    }
    assert!(v["duration_ms"].as_i64().unwrap() >= 0);
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "active");
    assert_eq!(m["theme"], "midnight");
    // The storefront answers by subdomain and by path.
    let home = app
        .on_host(
            reqwest::Method::GET,
            &format!("fischer.localhost:{}", app.port),
            "/",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.text().await.unwrap().contains("Bakery Fischer"));
    let by_path = app.client.get(app.url("/s/fischer/")).send().await.unwrap();
    assert_eq!(by_path.status(), StatusCode::OK);
    // The owner can set a password from the welcome e-mail and reach the dashboard API.
    let token = app
        .set_password_from_welcome("fischer@bakery.example", "a-good-password")
        .await;
    let shop: Value = app
        .client
        .get(app.url("/api/v1/shop"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shop["handle"], "fischer");
    assert_eq!(shop["role"], "owner");
}

#[tokio::test]
async fn activation_rejects_bad_theme_plan_and_subdomains_with_the_field_named() {
    let app = spawn_app().await;
    let taken = app.create_merchant("Casa", "casa@one.example").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{taken}/activate"),
            json!({ "theme": "classic", "plan": "starter", "subdomain": "casa" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = app.create_merchant("Other", "other@two.example").await;
    let cases = [
        (
            json!({ "theme": "nope", "plan": "starter", "subdomain": "good-one" }),
            422,
            "theme",
            "unknown_theme",
        ),
        (
            json!({ "theme": "classic", "plan": "gold", "subdomain": "good-one" }),
            422,
            "plan",
            "unknown_plan",
        ),
        (
            json!({ "theme": "classic", "plan": "starter", "subdomain": "admin" }),
            422,
            "subdomain",
            "reserved_subdomain",
        ),
        (
            json!({ "theme": "classic", "plan": "starter", "subdomain": "5àsec" }),
            422,
            "subdomain",
            "invalid_subdomain",
        ),
        (
            json!({ "theme": "classic", "plan": "starter", "subdomain": "a".repeat(64) }),
            422,
            "subdomain",
            "invalid_subdomain",
        ),
        (
            json!({ "theme": "classic", "plan": "starter", "subdomain": "casa" }),
            409,
            "subdomain",
            "subdomain_taken",
        ),
    ];
    for (body, status, field, code) in cases {
        let r = app
            .admin_post(
                &format!("/api/v1/admin/merchants/{id}/activate"),
                body.clone(),
            )
            .await;
        assert_eq!(r.status().as_u16(), status, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert_eq!(v["error"]["details"]["field"], field, "{v}");
    }
    // Malformed JSON names the problem.
    let r = app
        .client
        .post(app.url(&format!("/api/v1/admin/merchants/{id}/activate")))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"theme\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "malformed_json");
    // The merchant is still pending and can be activated correctly afterwards.
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "classic", "plan": "starter", "subdomain": "other-shop" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(app.wait_provisioning(&id).await["status"], "completed");
    // Activating twice is refused.
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "classic", "plan": "starter" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_failing_step_is_retried_then_failed_and_resumes_from_that_step() {
    let failing = Arc::new(AtomicBool::new(true));
    let attempts = Arc::new(AtomicUsize::new(0));
    let (f, a) = (failing.clone(), attempts.clone());
    let app = spawn_with_fault(Arc::new(move |step: &str| {
        if step == "deploy_storefront" && f.load(Ordering::SeqCst) {
            a.fetch_add(1, Ordering::SeqCst);
            Some("simulated CDN outage".into())
        } else {
            None
        }
    }))
    .await;
    let id = app.create_merchant("Flaky", "flaky@shop.example").await;
    app.admin_post(
        &format!("/api/v1/admin/merchants/{id}/activate"),
        json!({ "theme": "classic", "plan": "starter", "subdomain": "flaky" }),
    )
    .await;
    let v = app.wait_provisioning(&id).await;
    assert_eq!(v["status"], "failed");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("simulated CDN outage")
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "bounded retries");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps[0]["status"], "completed");
    assert_eq!(steps[1]["status"], "completed");
    assert_eq!(steps[2]["status"], "failed");
    assert_eq!(steps[2]["attempts"], 3);
    assert_eq!(steps[3]["status"], "pending");
    // Not reachable while failed.
    let r = app.client.get(app.url("/s/flaky/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    failing.store(false, Ordering::SeqCst);
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/provisioning/retry"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v = app.wait_provisioning(&id).await;
    assert_eq!(v["status"], "completed", "{v}");
    // The completed steps were not run again.
    assert_eq!(v["steps"][0]["attempts"], 1);
    assert_eq!(
        app.client
            .get(app.url("/s/flaky/"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rollback_removes_what_the_steps_created_and_frees_the_subdomain() {
    let app = spawn_with_fault(Arc::new(|step: &str| {
        (step == "send_welcome_email").then(|| "smtp down".to_string())
    }))
    .await;
    let id = app.create_merchant("Doomed", "doomed@shop.example").await;
    app.admin_post(
        &format!("/api/v1/admin/merchants/{id}/activate"),
        json!({ "theme": "classic", "plan": "starter", "subdomain": "doomed" }),
    )
    .await;
    assert_eq!(app.wait_provisioning(&id).await["status"], "failed");
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/provisioning/rollback"),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "rolled_back");
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "pending");
    assert!(m["handle"].is_null());
    let d: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}/domains"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(d.as_array().unwrap().len(), 0);
    // The owner account it created is gone: login fails the same way as for a stranger.
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "doomed@shop.example", "password": "x-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // The subdomain can be used by another merchant.
    let other = app.create_merchant("Other", "other@shop.example").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{other}/activate"),
            json!({ "theme": "classic", "plan": "starter", "subdomain": "doomed" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn provisioning_interrupted_by_a_crash_resumes_on_restart() {
    // First process: no job workers. Activation records the run and its durable job;
    // a "worker" claims the job (lease) and dies before finishing it.
    let app = spawn_with(|c| c.workers = 0).await;
    let id = app.create_merchant("Resume", "resume@shop.example").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "classic", "plan": "starter", "subdomain": "resume" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job = souk::store::jobs::claim(&app.db, 0)
        .await
        .unwrap()
        .expect("a queued provisioning job");
    assert_eq!(job.kind, "provision");
    let v: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}/provisioning"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["status"], "pending");
    let (tmp, pg) = app.stop_for_restart().await;
    // Restart on the same database: the job is claimed again and the merchant completes.
    let app = spawn_in(tmp, |_| {}, pg).await;
    assert_eq!(app.wait_provisioning(&id).await["status"], "completed");
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "active");
    // Exactly one welcome e-mail, even though the job ran twice.
    app.welcome_token("resume@shop.example").await;
    let mails = std::fs::read_dir(app.data_dir.join("outbox"))
        .unwrap()
        .count();
    assert_eq!(mails, 1);
}

#[tokio::test]
async fn merchant_list_filters_and_paginates() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_merchant(&format!("List Shop {i}"), &format!("l{i}@list.example"))
            .await;
    }
    let v: Value = app
        .admin_get("/api/v1/admin/merchants?per_page=2&page=2&status=pending")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["pagination"]["total"], 5);
    assert_eq!(v["pagination"]["total_pages"], 3);
    let v: Value = app
        .admin_get("/api/v1/admin/merchants?q=shop%203")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["pagination"]["total"], 1);
    let r = app.admin_get("/api/v1/admin/merchants?per_page=1000").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app.admin_get("/api/v1/admin/merchants?status=weird").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .admin_post(
            "/api/v1/admin/merchants",
            json!({ "name": "Bad", "owner_email": "not-an-email" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["details"]["field"], "owner_email");
}
