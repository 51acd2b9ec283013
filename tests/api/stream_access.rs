//! Withdrawn access stops open event streams: a removed member, a role that no longer
//! allows orders, a revoked API key, an expired access token (and a ticket issued from
//! one) and a suspended merchant. Each case: the stream delivered before, and within one
//! second after the change it is closed (WebSocket 4003 `access_revoked` / 4001
//! `token_expired`, SSE `event: access_revoked`) or filtered, with nothing committed after
//! the change delivered.

use crate::events::Stream;
use crate::helpers::{TestApp, spawn_app, spawn_with};
use crate::websocket::{Ws, next_event, open, open_bearer, ticket};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// What the socket does next within `wait`: the close code it sent, or the event it
/// delivered instead (an `Err`), or `Ok(None)` when nothing happened.
async fn closed_with(ws: &mut Ws, wait: Duration) -> Result<Option<(u16, String)>, Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => {
                return Ok(Some((u16::from(f.code), f.reason.to_string())));
            }
            Ok(Some(Ok(Message::Text(t)))) => return Err(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(_))) => continue,
            Ok(_) => return Ok(Some((0, "ended without a close frame".into()))),
            Err(_) => return Ok(None),
        }
    }
}

async fn order(app: &TestApp, token: &str, email: &str) -> Value {
    let r = app
        .with_token(Method::POST, "/api/v1/orders", token)
        .json(&json!({ "email": email, "customer_name": "Ada Buyer",
            "line_items": [{ "title": "Item", "price_minor": 500 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
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

/// Asserts the socket delivers an `order.created` for `email` (the stream works). Events
/// of the setup before it (`member.joined` of the member just added, which the dispatcher
/// may deliver after the socket opened) are skipped; another order is a failure.
async fn sees_order(ws: &mut Ws, email: &str) {
    loop {
        let e = next_event(ws, Duration::from_secs(5)).await.expect("event");
        if e["type"] != "order.created" {
            assert!(
                e["type"].as_str().is_some_and(|t| t.starts_with("member.")),
                "unexpected event before the order: {e}"
            );
            continue;
        }
        assert_eq!(e["data"]["email"], email);
        return;
    }
}

/// Asserts the socket closes with `code` within one second of `since`.
async fn closes_within_a_second(ws: &mut Ws, since: Instant, code: u16, reason: &str) {
    let got = closed_with(ws, Duration::from_secs(3)).await;
    let (c, r) = got
        .unwrap_or_else(|e| panic!("delivered {e} after access ended"))
        .expect("the socket stayed open");
    assert_eq!(c, code, "{r}");
    assert!(r.contains(reason), "{r}");
    assert!(
        since.elapsed() < Duration::from_secs(1),
        "closed after {:?}",
        since.elapsed()
    );
}

#[tokio::test]
async fn a_removed_members_socket_and_stream_are_closed_with_access_revoked() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("revmember").await;
    let (member_id, member) = app
        .add_member(&owner, "clerk@revmember.example", "manager")
        .await;
    let mut ws = open(&app, &format!("ticket={}", ticket(&app, &member).await)).await;
    let sse = Stream::open(&app, &member, None).await;
    order(&app, &owner, "before@buyer.example").await;
    sees_order(&mut ws, "before@buyer.example").await;
    assert!(sse.wait_for("before@buyer.example").await);
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/team/members/{member_id}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let removed = Instant::now();
    order(&app, &owner, "after@buyer.example").await;
    closes_within_a_second(&mut ws, removed, 4003, "access_revoked").await;
    assert!(sse.wait_for("event: access_revoked").await);
    assert!(removed.elapsed() < Duration::from_secs(1));
    assert!(
        !sse.text().contains("after@buyer.example"),
        "{}",
        sse.text()
    );
    // And it cannot come back.
    let r = app
        .with_token(Method::POST, "/api/v1/events/ws-ticket", &member)
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/events/ws?ticket={}",
        app.port,
        t["ticket"].as_str().unwrap()
    );
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn a_role_change_that_drops_orders_view_filters_order_events_at_once() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("revrole").await;
    let (member_id, member) = app
        .add_member(&owner, "clerk@revrole.example", "viewer")
        .await;
    let r = app
        .with_token(Method::POST, "/api/v1/roles", &owner)
        .json(
            &json!({ "name": "Catalog only", "key": "catalog", "permissions": ["products.view"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut ws = open(&app, &format!("ticket={}", ticket(&app, &member).await)).await;
    order(&app, &owner, "before@buyer.example").await;
    sees_order(&mut ws, "before@buyer.example").await;
    let r = app
        .with_token(
            Method::PATCH,
            &format!("/api/v1/team/members/{member_id}"),
            &owner,
        )
        .json(&json!({ "role": "catalog" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // An order right after the change is filtered out; a product still arrives.
    order(&app, &owner, "after@buyer.example").await;
    product(&app, &owner, "Still Visible").await;
    let e = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("event");
    assert_eq!(e["type"], "product.created", "{e}");
    assert_eq!(e["data"]["title"], "Still Visible");
    // Editing the role's permissions (here: taking products.view away too) applies as well.
    let r = app
        .with_token(Method::PUT, "/api/v1/roles/catalog", &owner)
        .json(&json!({ "name": "Nothing", "permissions": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    product(&app, &owner, "Hidden Now").await;
    order(&app, &owner, "later@buyer.example").await;
    assert!(
        next_event(&mut ws, Duration::from_millis(800))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn a_revoked_api_keys_socket_is_closed_with_access_revoked() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("revkey").await;
    let r = app
        .with_token(Method::POST, "/api/v1/api-keys", &owner)
        .json(&json!({ "name": "ERP", "kind": "secret", "role": "editor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let id = created["api_key"]["id"].as_str().unwrap().to_string();
    let mut ws = open_bearer(&app, &key, "types=order.created").await;
    order(&app, &owner, "before@buyer.example").await;
    sees_order(&mut ws, "before@buyer.example").await;
    let r = app
        .with_token(Method::DELETE, &format!("/api/v1/api-keys/{id}"), &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    order(&app, &owner, "after@buyer.example").await;
    closes_within_a_second(&mut ws, revoked, 4003, "access_revoked").await;
}

#[tokio::test]
async fn sockets_close_when_the_access_token_expires_also_when_opened_with_a_ticket() {
    let app = spawn_with(|c| c.access_ttl = 2).await;
    let (_, owner) = app.provisioned_merchant("revexp").await;
    // A fresh token: it expires 2 s from now (the ticket itself would last 30 s).
    let token = app.login("owner@revexp.example", "owner-password-1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let issued = Instant::now();
    let mut by_header = open_bearer(&app, &token, "").await;
    let mut by_ticket = open(&app, &format!("ticket={}", ticket(&app, &token).await)).await;
    order(&app, &token, "before@buyer.example").await;
    sees_order(&mut by_header, "before@buyer.example").await;
    sees_order(&mut by_ticket, "before@buyer.example").await;
    for ws in [&mut by_header, &mut by_ticket] {
        let (code, reason) = closed_with(ws, Duration::from_secs(5))
            .await
            .unwrap_or_else(|e| panic!("delivered {e}"))
            .expect("still open after the token expired");
        assert_eq!(code, 4001, "{reason}");
        assert!(reason.contains("token_expired"), "{reason}");
    }
    // Expiry is at a whole second: within one second after the token's 2 s.
    assert!(
        issued.elapsed() < Duration::from_secs(4),
        "{:?}",
        issued.elapsed()
    );
    drop(owner);
}

#[tokio::test]
async fn suspending_the_merchant_closes_its_sockets_and_streams() {
    let app = spawn_app().await;
    let (id, owner) = app.provisioned_merchant("revsusp").await;
    let mut ws = open(&app, &format!("ticket={}", ticket(&app, &owner).await)).await;
    let sse = Stream::open(&app, &owner, None).await;
    order(&app, &owner, "before@buyer.example").await;
    sees_order(&mut ws, "before@buyer.example").await;
    assert!(sse.wait_for("before@buyer.example").await);
    let r = app
        .admin_post(&format!("/api/v1/admin/merchants/{id}/suspend"), json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let suspended = Instant::now();
    closes_within_a_second(&mut ws, suspended, 4003, "access_revoked").await;
    assert!(sse.wait_for("event: access_revoked").await);
    assert!(suspended.elapsed() < Duration::from_secs(1));
    // A new stream is refused while suspended.
    let r = app
        .with_token(Method::GET, "/api/v1/events/stream", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
