//! The read path's caches: the storefront product page and the Store API product are
//! served from the response cache, and every change a shopper could see (price, stock
//! through an order, a cancellation, the theme) shows at once on this node and, through
//! NATS, on another node well before the cache's 10 s bound. Liveness never touches the
//! database.

use crate::checkout::{product_with_stock, ready_cart, seed_checkout, store};
use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn page(app: &TestApp, path: &str) -> String {
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

async fn product_id(app: &TestApp, owner: &str) -> String {
    let v: Value = app
        .with_token(Method::GET, "/api/v1/products", owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"][0]["id"].as_str().unwrap().to_string()
}

async fn set_price(app: &TestApp, owner: &str, pid: &str, price: &str, stock: i64) {
    let r = app
        .with_token(Method::PUT, &format!("/api/v1/products/{pid}"), owner)
        .json(&json!({ "title": "Teapot", "status": "active",
            "variants": [{ "sku": "TEAPOT", "price": price, "inventory_quantity": stock }] }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn cached_product_reads_follow_price_stock_and_cancellation_at_once() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("cachey").await;
    let rate = seed_checkout(&app, &tenant).await;
    let variant = product_with_stock(&app, &owner, "Teapot", "30.00", 1).await;
    let pid = product_id(&app, &owner).await;
    // Twice each: the second answer comes from the cache and is the same page.
    let first = page(&app, "/s/cachey/products/teapot").await;
    assert!(first.contains("30.00"), "{first}");
    assert_eq!(page(&app, "/s/cachey/products/teapot").await, first);
    let (_, p) = store(&app, "cachey", Method::GET, "/products/teapot", None).await;
    assert_eq!(p["variants"][0]["price"]["amount_minor"], 3000, "{p}");
    // A new price is seen on the next read.
    set_price(&app, &owner, &pid, "32.50", 1).await;
    let html = page(&app, "/s/cachey/products/teapot").await;
    assert!(html.contains("32.50") && !html.contains("30.00"), "{html}");
    let (_, p) = store(&app, "cachey", Method::GET, "/products/teapot", None).await;
    assert_eq!(p["variants"][0]["price"]["amount_minor"], 3250, "{p}");
    assert_eq!(p["variants"][0]["available"], true, "{p}");
    // The last unit is bought: both reads say sold out right after the order.
    let cart = ready_cart(&app, "cachey", &variant, 1, &rate).await;
    let (s, order) = store(
        &app,
        "cachey",
        Method::POST,
        &format!("/carts/{cart}/complete"),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{order}");
    let (_, p) = store(&app, "cachey", Method::GET, "/products/teapot", None).await;
    assert_eq!(p["variants"][0]["available"], false, "{p}");
    let html = page(&app, "/s/cachey/products/teapot").await;
    assert!(html.contains("Sold out"), "{html}");
    // Cancelled: the unit is back and so is the button.
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/orders/{}/cancel", order["id"].as_str().unwrap()),
            &owner,
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let (_, p) = store(&app, "cachey", Method::GET, "/products/teapot", None).await;
    assert_eq!(p["variants"][0]["available"], true, "{p}");
    let html = page(&app, "/s/cachey/products/teapot").await;
    assert!(!html.contains("Sold out"), "{html}");
    // An unknown product is a 404, also the second time (misses are never cached).
    for _ in 0..2 {
        let (s, _) = store(&app, "cachey", Method::GET, "/products/nope", None).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn liveness_answers_without_the_database_and_readiness_does_not() {
    let app = spawn_app().await;
    app.db.close().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Polls `path` on `node` until `seen` holds for the body; the time it took.
async fn until_seen(node: &TestApp, path: &str, seen: impl Fn(&str) -> bool) -> Duration {
    let t0 = Instant::now();
    loop {
        let body = node
            .client
            .get(node.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if seen(&body) {
            return t0.elapsed();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "{path} on node B still stale after 3 s (the cache bound is 10 s): {body}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_price_change_on_node_a_clears_node_bs_cached_pages() {
    // Same NATS subject prefix on both (skipped, with a message, without PostgreSQL/NATS).
    let Some((a, b)) = crate::nodes::two_nodes(false).await else {
        return;
    };
    let (_, owner) = a.provisioned_merchant("twocache").await;
    product_with_stock(&a, &owner, "Teapot", "30.00", 5).await;
    let pid = product_id(&a, &owner).await;
    let api = "/s/twocache/api/v1/store/products/teapot";
    let html = "/s/twocache/products/teapot";
    // Node B caches both.
    until_seen(&b, api, |t| t.contains("\"amount_minor\":3000")).await;
    until_seen(&b, html, |t| t.contains("30.00")).await;
    set_price(&a, &owner, &pid, "41.00", 5).await;
    let api_took = until_seen(&b, api, |t| t.contains("\"amount_minor\":4100")).await;
    let html_took = until_seen(&b, html, |t| t.contains("41.00")).await;
    eprintln!("node B saw the new price after {api_took:?} (Store API), {html_took:?} (page)");
}
