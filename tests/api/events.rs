//! Live events over SSE: tenant isolation, permission filtering, resume after reconnect,
//! and an event committed before a crash is still delivered after the restart.

use crate::helpers::{TestApp, spawn_app, spawn_in, spawn_with};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An open SSE connection whose text accumulates in the background.
pub(crate) struct Stream {
    buf: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stream {
    pub(crate) async fn open(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Stream {
        let mut req = app.with_token(Method::GET, "/api/v1/events/stream", token);
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id);
        }
        let mut resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let buf = Arc::new(Mutex::new(String::new()));
        let b = buf.clone();
        let task = tokio::spawn(async move {
            while let Ok(Some(chunk)) = resp.chunk().await {
                b.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk));
            }
        });
        Stream { buf, task }
    }

    pub(crate) fn text(&self) -> String {
        self.buf.lock().unwrap().clone()
    }

    /// Waits until the stream contains `needle`; false after 5 s.
    pub(crate) async fn wait_for(&self, needle: &str) -> bool {
        for _ in 0..250 {
            if self.text().contains(needle) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Ids of the `event: kind` messages received so far.
    pub(crate) fn ids_of(&self, kind: &str) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter(|m| m.lines().any(|l| l == format!("event: {kind}")))
            .filter_map(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("id: ").map(str::to_string))
            })
            .collect()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn product(app: &TestApp, token: &str, title: &str) {
    let r = app
        .with_token(Method::POST, "/api/v1/products", token)
        .json(&json!({ "title": title, "variants": [{ "price": "3.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_subscriber_gets_its_tenants_events_only_and_resumes_after_reconnect() {
    let app = spawn_app().await;
    let (_, owner_a) = app.provisioned_merchant("eva").await;
    let (_, owner_b) = app.provisioned_merchant("evb").await;
    let s = Stream::open(&app, &owner_a, None).await;
    product(&app, &owner_b, "Bravo Secret").await;
    product(&app, &owner_a, "Alpha One").await;
    assert!(s.wait_for("Alpha One").await, "{}", s.text());
    assert!(s.text().contains("event: product.created"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!s.text().contains("Bravo Secret"), "{}", s.text());
    let last = s.ids_of("product.created").pop().unwrap();
    drop(s);

    // Missed while disconnected, then replayed on reconnect (and B's never).
    product(&app, &owner_a, "Alpha Two").await;
    product(&app, &owner_b, "Bravo Two").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let s = Stream::open(&app, &owner_a, Some(&last)).await;
    assert!(s.wait_for("Alpha Two").await, "{}", s.text());
    assert!(
        !s.text().contains("Alpha One"),
        "replayed from before Last-Event-ID"
    );
    product(&app, &owner_a, "Alpha Three").await;
    assert!(s.wait_for("Alpha Three").await);
    assert!(!s.text().contains("Bravo"), "{}", s.text());
    assert_eq!(
        s.ids_of("product.created").len(),
        2,
        "each event once: {}",
        s.text()
    );

    // A bad Last-Event-ID is named.
    let r = app
        .with_token(Method::GET, "/api/v1/events/stream", &owner_a)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // No credentials, no stream.
    let r = app
        .client
        .get(app.url("/api/v1/events/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn events_are_filtered_by_the_subscribers_permissions() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("evperm").await;
    let (_, viewer) = app.add_member(&owner, "v@evperm.example", "viewer").await;
    let owner_stream = Stream::open(&app, &owner, None).await;
    let viewer_stream = Stream::open(&app, &viewer, None).await;
    app.add_member(&owner, "new@evperm.example", "editor").await;
    product(&app, &owner, "Visible Product").await;
    assert!(
        owner_stream.wait_for("event: member.joined").await,
        "{}",
        owner_stream.text()
    );
    assert!(viewer_stream.wait_for("Visible Product").await);
    // Viewers lack team.view: no member events.
    assert!(
        !viewer_stream.text().contains("member.joined"),
        "{}",
        viewer_stream.text()
    );
}

#[tokio::test]
async fn an_event_committed_before_a_crash_is_delivered_after_restart() {
    // First process: the change commits, but the dispatcher never publishes (as if the
    // process died between commit and publish).
    let app = spawn_with(|c| c.dispatch_events = false).await;
    let (_, owner) = app.provisioned_merchant("crash").await;
    product(&app, &owner, "Survivor").await;
    let (tmp, pg) = app.stop_for_restart().await;
    // Second process on the same database: the outbox is published, and a client
    // resuming from before the change receives it.
    let app = spawn_in(tmp, |_| {}, pg).await;
    let owner = app.login("owner@crash.example", "owner-password-1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let s = Stream::open(&app, &owner, Some("00000000-0000-0000-0000-000000000000")).await;
    assert!(s.wait_for("Survivor").await, "{}", s.text());
    assert_eq!(s.ids_of("product.created").len(), 1);
}

#[tokio::test]
async fn platform_staff_watch_provisioning_live() {
    let app = spawn_app().await;
    let mut req = app.with_token(
        Method::GET,
        "/api/v1/admin/events/stream?types=merchant.provisioning_updated,merchant.activated",
        &app.admin_token,
    );
    req = req.header("accept", "text/event-stream");
    let mut resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let buf = Arc::new(Mutex::new(String::new()));
    let b = buf.clone();
    let task = tokio::spawn(async move {
        while let Ok(Some(chunk)) = resp.chunk().await {
            b.lock().unwrap().push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    let s = Stream { buf, task };
    let (id, owner) = app.provisioned_merchant("watched").await;
    assert!(
        s.wait_for("event: merchant.activated").await,
        "{}",
        s.text()
    );
    for step in [
        "create_workspace",
        "create_owner",
        "deploy_storefront",
        "seed_starter_data",
        "send_welcome_email",
    ] {
        assert!(s.text().contains(step), "{step} missing: {}", s.text());
    }
    assert!(s.text().contains(&id));
    // A merchant owner cannot open the platform stream.
    let r = app
        .with_token(Method::GET, "/api/v1/admin/events/stream", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn open_streams_are_closed_cleanly_on_shutdown() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("bye").await;
    let s = Stream::open(&app, &owner, None).await;
    // The server drains and stops even with a subscriber connected.
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("shutdown waited on an open event stream");
    assert!(s.wait_for("event: close").await, "{}", s.text());
}

async fn list(app: &TestApp, token: &str, query: &str) -> (StatusCode, serde_json::Value) {
    let r = app
        .with_token(Method::GET, &format!("/api/v1/events{query}"), token)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `GET /api/v1/events?types=…` until it lists `n` events (the list shows published
/// events only, and publishing follows the commit by a few milliseconds).
async fn list_until(app: &TestApp, token: &str, query: &str, n: usize) -> Vec<serde_json::Value> {
    for _ in 0..250 {
        let (status, v) = list(app, token, query).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let data = v["data"].as_array().cloned().unwrap_or_default();
        if data.len() >= n {
            return data;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} events for {query}");
}

#[tokio::test]
async fn the_event_list_is_newest_first_scoped_to_the_tenant_and_filtered_by_permission() {
    let app = spawn_app().await;
    let (tenant_a, owner_a) = app.provisioned_merchant("evlist").await;
    let (_, owner_b) = app.provisioned_merchant("evlistb").await;
    // A role that may see the catalog but neither orders nor the team.
    let r = app
        .with_token(Method::POST, "/api/v1/roles", &owner_a)
        .json(&json!({ "name": "Catalog only", "key": "catalog_only", "permissions": ["products.view"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, catalog_only) = app
        .add_member(&owner_a, "c@evlist.example", "catalog_only")
        .await;
    product(&app, &owner_a, "Listed Product").await;
    let order = |token: &str, name: &str| {
        app.with_token(Method::POST, "/api/v1/orders", token)
            .json(&json!({ "customer_name": name, "line_items": [{ "title": "Tea", "price": "2.50" }] }))
            .send()
    };
    let r = order(&owner_a, "Alice of A").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let order_a: serde_json::Value = r.json().await.unwrap();
    let r = order(&owner_b, "Bob of B").await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);

    // The owner: every type, newest first, the stream's message format.
    let orders = list_until(&app, &owner_a, "?types=order.created", 1).await;
    assert_eq!(orders.len(), 1, "B's order is not A's: {orders:?}");
    assert_eq!(orders[0]["data"]["id"], order_a["id"]);
    assert_eq!(orders[0]["tenant_id"], tenant_a.as_str());
    assert!(orders[0]["occurred_at"].is_string() && orders[0]["id"].is_string());
    let (status, all) = list(&app, &owner_a, "?limit=50").await;
    assert_eq!(status, StatusCode::OK);
    let all = all["data"].as_array().unwrap().clone();
    let types: Vec<&str> = all.iter().filter_map(|e| e["type"].as_str()).collect();
    let at = |t: &str| types.iter().position(|x| *x == t).unwrap_or(usize::MAX);
    assert!(
        at("order.created") < at("product.created") && at("product.created") < at("member.joined"),
        "newest first: {types:?}"
    );
    let ids: Vec<&str> = all.iter().filter_map(|e| e["id"].as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    assert!(all.iter().all(|e| e["tenant_id"] == tenant_a.as_str()));
    assert!(
        !serde_json::Value::Array(all.clone())
            .to_string()
            .contains("Bob of B")
    );
    let (_, one) = list(&app, &owner_a, "?limit=1").await;
    assert_eq!(one["data"].as_array().unwrap().len(), 1);
    assert_eq!(one["data"][0]["id"], all[0]["id"]);

    // Catalog only: product events, never order or member events, asked for or not.
    let (status, v) = list(&app, &catalog_only, "?types=order.created,product.created").await;
    assert_eq!(status, StatusCode::OK);
    let seen: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(seen, ["product.created"], "{v}");
    let (_, v) = list(&app, &catalog_only, "?limit=50").await;
    let text = v.to_string();
    assert!(text.contains("Listed Product"), "{text}");
    assert!(
        !text.contains("order.") && !text.contains("member.joined") && !text.contains("Alice"),
        "{text}"
    );
    let (_, v) = list(&app, &catalog_only, "?types=order.created,payment.received").await;
    assert_eq!(v["data"], json!([]));

    // B sees its own order only.
    let b_orders = list_until(&app, &owner_b, "?types=order.created", 1).await;
    assert_eq!(b_orders.len(), 1);
    assert_eq!(b_orders[0]["data"]["customer_name"], "Bob of B");

    // limit is 1–50; no credentials, no list.
    for bad in ["?limit=0", "?limit=51"] {
        let (status, v) = list(&app, &owner_a, bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
        assert_eq!(v["error"]["details"]["field"], "limit");
    }
    let r = app
        .client
        .get(app.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
