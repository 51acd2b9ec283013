//! Live events over WebSocket: tickets and headers, tenant isolation, permission
//! filtering, resume after reconnect (exactly once under continuous reconnects, paged
//! replay of thousands, `resync_required` past the window), slow consumers, clean close
//! on shutdown.

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

/// Opens the member event socket with `Authorization: Bearer {token}`.
pub async fn open_bearer(app: &TestApp, token: &str, query: &str) -> Ws {
    let url = format!("ws://127.0.0.1:{}/api/v1/events/ws?{query}", app.port);
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
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

/// A tiny xorshift generator: reconnect delays without a dependency.
struct Jitter(u64);

impl Jitter {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

/// Creates `total` orders at 100/s through `writers` (round robin) while one client keeps
/// reconnecting to `readers` (round robin) every 5–60 ms with `last_event_id`, dropping
/// the connection without a close handshake; then checks that every order's
/// `order.created` arrived exactly once. Returns the number of connections made.
pub async fn reconnect_storm(
    readers: &[&TestApp],
    writers: &[&TestApp],
    token: &str,
    total: usize,
) -> usize {
    use std::collections::{HashMap, HashSet};
    let urls: Vec<String> = writers.iter().map(|w| w.url("/api/v1/orders")).collect();
    let http = reqwest::Client::new();
    let tok = token.to_string();
    let mut ws = open_bearer(readers[0], token, "types=order.created").await;
    let producer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        let mut inflight = vec![];
        for i in 0..total {
            tick.tick().await;
            let req = http
                .post(&urls[i % urls.len()])
                .bearer_auth(&tok)
                .json(&json!({ "email": format!("b{i}@storm.example"),
                    "line_items": [{ "title": "Item", "price_minor": 100 }] }));
            inflight.push(tokio::spawn(async move {
                let r = req.send().await.expect("order");
                let status = r.status();
                if status != StatusCode::CREATED {
                    panic!("order: {status} {}", r.text().await.unwrap_or_default());
                }
                let v: Value = r.json().await.expect("json");
                v["id"].as_str().expect("id").to_string()
            }));
        }
        let mut ids = HashSet::new();
        for t in inflight {
            ids.insert(t.await.expect("order task"));
        }
        ids
    });
    let mut producer = Some(producer);
    let mut expected: Option<HashSet<String>> = None;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut last: Option<String> = None;
    let mut jitter = Jitter(0x9E37_79B9_7F4A_7C15);
    let mut connections = 1;
    let mut settled_at = None;
    let mut done_at = None;
    loop {
        let stay = Duration::from_millis(jitter.next_ms(5, 60));
        // Without a resume point a reconnect starts at "now" and skips what came in
        // between, by design: stay on the first connection until its first event.
        let opened = tokio::time::Instant::now();
        loop {
            let deadline = match last {
                Some(_) => opened + stay,
                None => opened + Duration::from_secs(20),
            };
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => {
                    let e: Value = serde_json::from_str(&t).expect("event json");
                    assert_eq!(e["type"], "order.created", "{e}");
                    *seen
                        .entry(e["data"]["id"].as_str().expect("order id").to_string())
                        .or_default() += 1;
                    last = Some(e["id"].as_str().expect("event id").to_string());
                }
                Ok(Some(Ok(_))) => {}
                Ok(_) | Err(_) => break,
            }
        }
        drop(ws);
        if let Some(p) = producer.take_if(|p| p.is_finished()) {
            expected = Some(p.await.expect("producer"));
            done_at = Some(tokio::time::Instant::now());
        }
        if let Some(exp) = &expected {
            // Missing events do not come later: a resume point past them skips them.
            if done_at.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
                break;
            }
            if exp.iter().all(|id| seen.contains_key(id)) {
                // One more connection after everything arrived, to catch late repeats.
                match settled_at {
                    Some(n) if connections > n => break,
                    None => settled_at = Some(connections),
                    _ => {}
                }
            }
            assert!(
                connections < 2000,
                "events still missing after many reconnects"
            );
        }
        let reader = readers[connections % readers.len()];
        let q = match &last {
            Some(l) => format!("types=order.created&last_event_id={l}"),
            None => "types=order.created".to_string(),
        };
        ws = open_bearer(reader, token, &q).await;
        connections += 1;
        if expected.is_some() && settled_at.is_none() {
            // Wait for stragglers without spinning through connections.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let expected = expected.expect("orders");
    let missing = expected.iter().filter(|id| !seen.contains_key(*id)).count();
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    let foreign = seen.keys().filter(|id| !expected.contains(*id)).count();
    assert_eq!(
        missing, 0,
        "{missing} of {total} events missed over {connections} connections"
    );
    assert!(
        repeated.is_empty(),
        "delivered more than once: {repeated:?}"
    );
    assert_eq!(foreign, 0);
    assert_eq!(seen.len(), total);
    connections
}

#[tokio::test]
async fn a_client_reconnecting_continuously_gets_every_event_exactly_once() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("wsstorm").await;
    let connections = reconnect_storm(&[&app], &[&app], &owner, 600).await;
    assert!(connections >= 8, "only {connections} connections");
    eprintln!("{connections} connections");
}

/// Writes `n` `product.updated` events with `{"n": from..}` straight into the outbox (as
/// a change's transaction would) and waits until the dispatcher published the last.
async fn outbox_events(app: &TestApp, owner: &str, tenant: &str, from: usize, n: usize) {
    let tenant: uuid::Uuid = tenant.parse().unwrap();
    let mut tx = app.db.begin().await.unwrap();
    for i in from..from + n {
        souk::store::events::emit(&mut tx, Some(tenant), "product.updated", &json!({ "n": i }))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    for _ in 0..500 {
        let v: Value = app
            .with_token(
                Method::GET,
                "/api/v1/events?types=product.updated&limit=1",
                owner,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v["data"][0]["data"]["n"] == from + n - 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("events not published");
}

#[tokio::test]
async fn a_client_thousands_of_events_behind_gets_all_of_them_then_live_events() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("wsbehind").await;
    outbox_events(&app, &owner, &tenant, 0, 2839).await;
    // Resume from before the first (an id older than every event).
    let mut ws = open_bearer(
        &app,
        &owner,
        "types=product.updated,product.created&last_event_id=00000000-0000-7000-8000-000000000000",
    )
    .await;
    for i in 0..2839 {
        let e = next_event(&mut ws, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("replay stopped after {i} events"));
        assert_eq!(e["type"], "product.updated");
        assert_eq!(e["data"]["n"], i, "{e}");
    }
    let p = product(&app, &owner, "After The Replay").await;
    let e = next_event(&mut ws, Duration::from_secs(5))
        .await
        .expect("live event");
    assert_eq!(e["type"], "product.created");
    assert_eq!(e["data"]["id"], p["id"]);
    assert!(
        next_event(&mut ws, Duration::from_millis(300))
            .await
            .is_none()
    );
}

#[tokio::test]
async fn events_older_than_the_replay_window_are_announced_with_resync_required() {
    let app = spawn_app().await;
    let (tenant, owner) = app.provisioned_merchant("wsresync").await;
    outbox_events(&app, &owner, &tenant, 0, 5).await;
    // Those five are 25 h old now.
    let age =
        "update events set occurred_at = occurred_at - 90000000000 where type = 'product.updated'";
    match &app.db {
        souk::store::Db::Sqlite { write, .. } => {
            sqlx::query(age).execute(write).await.unwrap();
        }
        souk::store::Db::Pg { platform, .. } => {
            sqlx::query(age).execute(platform).await.unwrap();
        }
    }
    let v: Value = app
        .with_token(
            Method::GET,
            "/api/v1/events?types=product.updated&limit=50",
            &owner,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let oldest = v["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(oldest["data"]["n"], 0);
    outbox_events(&app, &owner, &tenant, 5, 3).await;
    let mut ws = open_bearer(
        &app,
        &owner,
        "types=product.updated&last_event_id=00000000-0000-7000-8000-000000000000",
    )
    .await;
    let first = next_event(&mut ws, Duration::from_secs(5)).await.unwrap();
    assert_eq!(first["type"], "resync_required", "{first}");
    assert_eq!(first["first_missing_id"], oldest["id"]);
    for i in 5..8 {
        let e = next_event(&mut ws, Duration::from_secs(5)).await.unwrap();
        assert_eq!(e["data"]["n"], i, "{e}");
    }
}
