//! Live events over WebSocket: tickets and headers, tenant isolation, permission
//! filtering, resume after reconnect, slow consumers, clean close on shutdown.

use crate::helpers::{TestApp, spawn_app};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ticket(app: &TestApp, token: &str) -> String {
    let r = app
        .with_token(Method::POST, "/api/v1/events/ws-ticket", token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 30);
    v["ticket"].as_str().unwrap().to_string()
}

pub async fn open(app: &TestApp, query: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{}/api/v1/events/ws?{query}", app.port);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket")
        .0
}

/// The next event message (skipping pings); `None` after `wait` or when the socket ends.
pub async fn next_event(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn product(app: &TestApp, token: &str, title: &str) -> Value {
    let r = app
        .with_token(Method::POST, "/api/v1/products", token)
        .json(&json!({ "title": title, "variants": [{ "price": "3.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_browser_ticket_opens_the_socket_for_its_tenant_only_and_reconnects_without_loss() {
    let app = spawn_app().await;
    let (_, a) = app.provisioned_merchant("wsa").await;
    let (_, b) = app.provisioned_merchant("wsb").await;
    let t = ticket(&app, &a).await;
    let mut ws = open(&app, &format!("ticket={t}")).await;
    product(&app, &b, "Bravo Secret").await;
    let p = product(&app, &a, "Alpha One").await;
    let e = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("event");
    assert_eq!(e["type"], "product.created");
    assert_eq!(e["data"]["id"], p["id"]);
    assert!(e["id"].is_string() && e["occurred_at"].is_string() && e["tenant_id"].is_string());
    let last = e["id"].as_str().unwrap().to_string();
    // Nothing of B's arrives.
    assert!(
        next_event(&mut ws, Duration::from_millis(300))
            .await
            .is_none()
    );
    ws.close(None).await.unwrap();

    // Missed while away, replayed first on reconnect, then live; never B's.
    product(&app, &a, "Alpha Two").await;
    product(&app, &b, "Bravo Two").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t = ticket(&app, &a).await;
    let mut ws = open(&app, &format!("ticket={t}&last_event_id={last}")).await;
    let missed = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("replayed");
    assert_eq!(missed["data"]["title"], "Alpha Two");
    product(&app, &a, "Alpha Three").await;
    let live = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("live");
    assert_eq!(live["data"]["title"], "Alpha Three");
    assert!(
        next_event(&mut ws, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn the_socket_takes_a_bearer_header_filters_by_type_and_refuses_bad_credentials() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("wshdr").await;
    let (_, viewer) = app.add_member(&owner, "v@wshdr.example", "viewer").await;
    // Let the viewer's own member.joined go out before subscribing.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/events/ws?types=member.joined,product.created",
        app.port
    );
    let mut req = url.as_str().into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {owner}").parse().unwrap());
    let (mut owner_ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut viewer_ws = open(&app, &format!("ticket={}", ticket(&app, &viewer).await)).await;
    app.add_member(&owner, "new@wshdr.example", "editor").await;
    product(&app, &owner, "Typed").await;
    let e = next_event(&mut owner_ws, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["type"], "member.joined");
    let e = next_event(&mut owner_ws, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["type"], "product.created");
    // The viewer lacks team.view: the product arrives, the member event never does.
    let e = next_event(&mut viewer_ws, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(e["type"], "product.created", "{e}");

    // Refusals happen at the handshake, with the JSON error.
    let port = app.port;
    for query in [
        "ticket=not-a-ticket".to_string(),
        format!("ticket={owner}"), // an access token is not a ticket
        String::new(),
    ] {
        let url = format!("ws://127.0.0.1:{port}/api/v1/events/ws?{query}");
        match tokio_tungstenite::connect_async(url).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401, "{query}")
            }
            other => panic!("{query}: expected 401, got {:?}", other.map(|_| ())),
        }
    }
    // A ticket is not an access token either.
    let t = ticket(&app, &owner).await;
    let r = app
        .with_token(Method::GET, "/api/v1/products", &t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A member cannot point a ticket at another tenant.
    let (tenant_c, _) = app.provisioned_merchant("wsc").await;
    let r = app
        .with_token(Method::POST, "/api/v1/events/ws-ticket", &owner)
        .header("X-Tenant-ID", &tenant_c)
        .send()
        .await
        .unwrap();
    let t = r.json::<Value>().await.unwrap()["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    match tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{port}/api/v1/events/ws?ticket={t}"
    ))
    .await
    {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn platform_staff_watch_every_tenant_or_one() {
    let app = spawn_app().await;
    let (tenant_a, a) = app.provisioned_merchant("wsadm-a").await;
    let (_, b) = app.provisioned_merchant("wsadm-b").await;
    let t = ticket(&app, &app.admin_token).await;
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/admin/events/ws?ticket={t}&types=product.created",
        app.port
    );
    let (mut all, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let t = ticket(&app, &app.admin_token).await;
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/admin/events/ws?ticket={t}&tenant_id={tenant_a}",
        app.port
    );
    let (mut one, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    product(&app, &b, "From B").await;
    product(&app, &a, "From A").await;
    let mut titles = vec![];
    for _ in 0..2 {
        let e = next_event(&mut all, Duration::from_secs(5)).await.unwrap();
        titles.push(e["data"]["title"].as_str().unwrap().to_string());
    }
    titles.sort();
    assert_eq!(titles, vec!["From A", "From B"]);
    let e = next_event(&mut one, Duration::from_secs(5)).await.unwrap();
    assert_eq!(e["data"]["title"], "From A");
    assert!(
        next_event(&mut one, Duration::from_millis(300))
            .await
            .is_none()
    );
    // A merchant cannot open the platform socket.
    let t = ticket(&app, &a).await;
    let url = format!(
        "ws://127.0.0.1:{}/api/v1/admin/events/ws?ticket={t}",
        app.port
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status().as_u16(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected_and_memory_stays_bounded() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("wsslow").await;
    // A client with a tiny receive buffer that never reads.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let stream = sock
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let t = ticket(&app, &owner).await;
    let url = format!("ws://127.0.0.1:{}/api/v1/events/ws?ticket={t}", app.port);
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    // 60 events of ~100 KB each: far more than the socket buffers hold.
    let big = "x".repeat(100_000);
    let tenant: uuid::Uuid = tenant.parse().unwrap();
    let mut tx = app.db.begin().await.unwrap();
    for i in 0..60 {
        souk::store::events::emit(
            &mut tx,
            Some(tenant),
            "product.updated",
            &json!({ "n": i, "blob": big }),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    // The server gives up on the stalled socket after its send timeout (5 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut received = 0;
    let mut ended = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(msg) = tokio::time::timeout_at(deadline, ws.next()).await {
        match msg {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(frame))) => {
                if let Some(f) = frame {
                    assert_eq!(u16::from(f.code), 4008);
                    assert!(f.reason.contains("slow_consumer"));
                }
                ended = true;
                break;
            }
            Some(Ok(_)) => {}
            None | Some(Err(_)) => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the server kept the stalled socket open");
    assert!(
        received < 60,
        "every event arrived: the client was never cut off"
    );
    // The client reconnects and resumes from the replay window.
    let t = ticket(&app, &owner).await;
    let mut ws = open(
        &app,
        &format!(
            "ticket={t}&last_event_id=00000000-0000-0000-0000-000000000000&types=product.updated"
        ),
    )
    .await;
    let e = next_event(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(e["data"]["n"], 0);
}

#[tokio::test]
async fn open_sockets_are_closed_cleanly_on_shutdown() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("wsbye").await;
    let mut ws = open(&app, &format!("ticket={}", ticket(&app, &owner).await)).await;
    let stop = tokio::spawn(app.stop());
    let frame = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(f))) => return f,
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("closed in time")
    .expect("a close frame");
    assert_eq!(u16::from(frame.code), 1001);
    assert!(frame.reason.contains("last_event_id"));
    tokio::time::timeout(Duration::from_secs(10), stop)
        .await
        .expect("server stopped")
        .unwrap();
}
