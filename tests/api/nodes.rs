//! Several nodes on one PostgreSQL database fan events out through NATS: a WebSocket
//! client on node B receives an order committed through node A; a client reconnecting
//! back and forth between the nodes gets every event exactly once; a node that NATS
//! gives nothing catches its clients up from the outbox. Needs PostgreSQL
//! (`SOUK_TEST_PG_URL`) and NATS (`SOUK_TEST_NATS_URL`, default nats://127.0.0.1:4222);
//! skipped, with a message, without them.

use crate::helpers::{TestApp, spawn_with};
use crate::websocket::{next_event, open, open_bearer, reconnect_storm, ticket};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

fn nats_url() -> Option<String> {
    let url =
        std::env::var("SOUK_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let addr = url.trim_start_matches("nats://").to_string();
    std::net::TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_millis(500)).ok()?;
    Some(url)
}

#[tokio::test]
async fn a_client_on_node_b_receives_what_node_a_commits() {
    if std::env::var("SOUK_TEST_PG_URL").is_err() {
        eprintln!("SKIPPED: two-node test needs PostgreSQL (set SOUK_TEST_PG_URL)");
        return;
    }
    let Some(nats) = nats_url() else {
        eprintln!("SKIPPED: two-node test needs NATS on 127.0.0.1:4222 (or SOUK_TEST_NATS_URL)");
        return;
    };
    // A subject prefix of this test's own, so parallel runs never see each other.
    let prefix = format!("souk-test.{}", uuid::Uuid::now_v7().simple());
    let (n1, p1) = (nats.clone(), prefix.clone());
    let a = spawn_with(move |c| {
        c.events_url = Some(n1);
        c.events_subject = p1;
    })
    .await;
    let b = a
        .second_node(move |c| {
            c.events_url = Some(nats);
            c.events_subject = prefix;
        })
        .await
        .expect("second node");
    let (_, owner) = a.provisioned_merchant("twonodes").await;
    let (_, other) = a.provisioned_merchant("othernode").await;
    let mut on_b = open(&b, &format!("ticket={}", ticket(&b, &owner).await)).await;
    let mut on_a = open(&a, &format!("ticket={}", ticket(&a, &owner).await)).await;
    // Writes through node A, for this tenant and another.
    for (token, title) in [(&other, "Other Tenant"), (&owner, "Via Node A")] {
        let r = a
            .with_token(Method::POST, "/api/v1/products", token)
            .json(&json!({ "title": title, "variants": [{ "price": "1.00" }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for ws in [&mut on_b, &mut on_a] {
        let e = next_event(ws, Duration::from_secs(5)).await.expect("event");
        assert_eq!(e["type"], "product.created");
        assert_eq!(e["data"]["title"], "Via Node A");
        // Once, and never the other tenant's.
        assert!(next_event(ws, Duration::from_millis(300)).await.is_none());
    }
    // And the other way round: written on B, seen on A.
    let r = b
        .with_token(Method::POST, "/api/v1/products", &owner)
        .json(&json!({ "title": "Via Node B", "variants": [{ "price": "1.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let e = next_event(&mut on_a, Duration::from_secs(5))
        .await
        .expect("event");
    assert_eq!(e["data"]["title"], "Via Node B");
    drop(b);
}

/// Two nodes on one PostgreSQL database with NATS, each with its own subject prefix when
/// `split` (so NATS carries nothing from one to the other); `None` (skipped) without
/// PostgreSQL or NATS.
pub async fn two_nodes(split: bool) -> Option<(TestApp, TestApp)> {
    if std::env::var("SOUK_TEST_PG_URL").is_err() {
        eprintln!("SKIPPED: two-node test needs PostgreSQL (set SOUK_TEST_PG_URL)");
        return None;
    }
    let Some(nats) = nats_url() else {
        eprintln!("SKIPPED: two-node test needs NATS on 127.0.0.1:4222 (or SOUK_TEST_NATS_URL)");
        return None;
    };
    let prefix = format!("souk-test.{}", uuid::Uuid::now_v7().simple());
    let other = if split {
        format!("souk-test.{}", uuid::Uuid::now_v7().simple())
    } else {
        prefix.clone()
    };
    let n1 = nats.clone();
    let a = spawn_with(move |c| {
        c.events_url = Some(n1);
        c.events_subject = prefix;
    })
    .await;
    let b = a
        .second_node(move |c| {
            c.events_url = Some(nats);
            c.events_subject = other;
        })
        .await
        .expect("second node");
    Some((a, b))
}

#[tokio::test]
async fn a_client_reconnecting_across_two_nodes_gets_every_event_exactly_once() {
    let Some((a, b)) = two_nodes(false).await else {
        return;
    };
    let (_, owner) = a.provisioned_merchant("stormnodes").await;
    let connections = reconnect_storm(&[&a, &b], &[&a, &b], &owner, 600).await;
    assert!(connections >= 8, "only {connections} connections");
    eprintln!("{connections} connections");
    drop(b);
}

#[tokio::test]
async fn a_node_that_nats_gives_nothing_catches_its_clients_up_from_the_outbox() {
    let Some((a, b)) = two_nodes(true).await else {
        return;
    };
    let (_, owner) = a.provisioned_merchant("lostnats").await;
    let mut on_b = open_bearer(&b, &owner, "types=product.created").await;
    for i in 0..20 {
        let r = a
            .with_token(Method::POST, "/api/v1/products", &owner)
            .json(&json!({ "title": format!("Lost {i}"), "variants": [{ "price": "1.00" }] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Nothing reaches node B through NATS: its feeder reads the outbox (every 0.5 s).
    for i in 0..20 {
        let e = next_event(&mut on_b, Duration::from_secs(3))
            .await
            .unwrap_or_else(|| panic!("node B's client got {i} of 20"));
        assert_eq!(e["data"]["title"], format!("Lost {i}"));
    }
    assert!(
        next_event(&mut on_b, Duration::from_millis(700))
            .await
            .is_none()
    );
    drop(b);
}
