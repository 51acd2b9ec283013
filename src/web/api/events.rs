//! Live events over WebSocket (`GET /api/v1/events/ws`) and Server-Sent Events
//! (`GET /api/v1/events/stream`), with the same semantics, and the newest past events
//! (`GET /api/v1/events`) for activity feeds.
//!
//! A member receives only their active tenant's events, and only those their permissions
//! let them read. A reconnecting client sends the last id it saw (`Last-Event-ID` header
//! or `?last_event_id=`) and first receives what it missed (up to 24 h back, at most 1000
//! events), then live events. Keep-alive comments every 15 s. A client too slow to keep up
//! with the bus is sent a final `error` event (`slow_consumer`) and disconnected, so memory
//! never grows without bound.

use crate::access::Permission;
use crate::access::platform_perm;
use crate::store::events::Event;
use crate::web::AppState;
use crate::web::context::{Merchant, Platform};
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_events))
        .routes(routes!(stream_events))
        .routes(routes!(admin_stream_events))
        .routes(routes!(ws_events))
        .routes(routes!(admin_ws_events))
        .routes(routes!(ws_ticket))
}

/// The permission needed to receive events of a type; `None`: any member.
pub fn permission_for(kind: &str) -> Option<Permission> {
    match kind.split('.').next().unwrap_or("") {
        "product" | "collection" => Some(Permission::ProductsView),
        // Support tickets share the orders.* permissions.
        "order" | "payment" | "support_ticket" => Some(Permission::OrdersView),
        "member" => Some(Permission::TeamView),
        "import" => Some(Permission::ImportsView),
        _ => None,
    }
}

/// Query of the event stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct StreamQuery {
    /// Comma-separated event types to receive (default: all the caller may read).
    pub types: Option<String>,
    /// Resume after this event id (same as the `Last-Event-ID` header).
    pub last_event_id: Option<Uuid>,
}

struct Filter {
    /// `None`: every tenant (platform staff).
    tenant: Option<Uuid>,
    perms: crate::access::PermissionSet,
    types: Option<Vec<String>>,
}

impl Filter {
    fn accepts(&self, e: &Event) -> bool {
        self.tenant.is_none_or(|t| e.tenant_id == Some(t))
            && permission_for(&e.kind).is_none_or(|p| self.perms.allows(p))
            && self
                .types
                .as_ref()
                .is_none_or(|t| t.iter().any(|x| x == &e.kind))
    }
}

/// Query of the event list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Comma-separated event types (default: every type the caller may read).
    pub types: Option<String>,
    /// How many events, 1–50 (default 20).
    pub limit: Option<i64>,
}

/// The newest events, newest first.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EventList {
    pub data: Vec<Event>,
}

/// Rows read per step while looking for events the caller may read.
const LIST_BATCH: i64 = 200;
/// Without `types`, at most this many of the newest events are looked at.
const LIST_SCAN_MAX: usize = 2000;

/// The tenant's newest published events, newest first, in the stream's message format
/// (`{id, type, tenant_id, occurred_at, data}`): e.g. to fill an activity feed before
/// following the stream from the newest id returned (`last_event_id`). Filtered exactly
/// like the stream: only the caller's tenant, only types their permissions let them
/// read (requested types they may not read are left out, not refused). Without `types`,
/// the readable ones among the newest 2000 events.
#[utoipa::path(get, path = "/api/v1/events", tag = "events", security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = EventList), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_events(m: Merchant, Query(q): Query<ListQuery>) -> ApiResult<axum::Json<EventList>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "invalid_limit",
            "limit must be between 1 and 50",
        ));
    }
    let filter = Filter {
        tenant: Some(m.tenant.id),
        perms: m.permissions,
        types: parse_types(q.types.as_deref())?,
    };
    // Types the caller may not read are dropped before the query, so the rows read
    // are the ones returned; `accepts` stays the rule every row passes.
    let readable: Option<Vec<String>> = filter.types.as_ref().map(|t| {
        t.iter()
            .filter(|k| permission_for(k).is_none_or(|p| filter.perms.allows(p)))
            .cloned()
            .collect()
    });
    // With types every row read is returned: read no more than needed.
    let batch_size = if readable.is_some() {
        limit
    } else {
        LIST_BATCH
    };
    let limit = limit as usize;
    let mut out: Vec<Event> = vec![];
    let mut before = None;
    let mut scanned = 0;
    loop {
        let batch = m
            .scope
            .recent_events(before, readable.as_deref(), batch_size)
            .await?;
        let exhausted = (batch.len() as i64) < batch_size;
        scanned += batch.len();
        before = batch.last().map(|e| e.id);
        out.extend(batch.into_iter().filter(|e| filter.accepts(e)));
        if out.len() >= limit || exhausted || scanned >= LIST_SCAN_MAX {
            break;
        }
    }
    out.truncate(limit);
    Ok(axum::Json(EventList { data: out }))
}

fn to_sse(e: &Event) -> SseEvent {
    SseEvent::default()
        .id(e.id.to_string())
        .event(e.kind.clone())
        .data(serde_json::to_string(e).unwrap_or_default())
}

/// Stream state: the backlog still to send, then live events. `seen` holds the backlog's
/// ids, so an event both replayed and still on the bus is sent once.
enum State_ {
    Backfill(VecDeque<Event>, broadcast::Receiver<Arc<Event>>),
    Live(broadcast::Receiver<Arc<Event>>),
    Done,
}

/// Stream the tenant's events (SSE). Each message has `id` (UUIDv7), `event` (the type)
/// and `data` (`{id, type, tenant_id, occurred_at, data}`).
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "events", security(("bearer" = [])),
    params(StreamQuery),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 403, body = ErrorBody)))]
async fn stream_events(
    State(st): State<AppState>,
    m: Merchant,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let last = last_event_id(&headers, q.last_event_id)?;
    let filter = Filter {
        tenant: Some(m.tenant.id),
        perms: m.permissions,
        types: parse_types(q.types.as_deref())?,
    };
    let rx = st.bus.subscribe();
    let backlog = match last {
        Some(after) => m.scope.events_since(after, 1000).await?,
        None => vec![],
    };
    Ok(sse(st.bus.closing(), rx, filter, backlog))
}

/// Query of the platform event stream.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AdminStreamQuery {
    /// Only this merchant's events (default: every tenant).
    pub tenant_id: Option<Uuid>,
    /// Comma-separated event types, e.g. `merchant.provisioning_updated,merchant.activated`.
    pub types: Option<String>,
    pub last_event_id: Option<Uuid>,
}

/// Platform staff: stream events of every tenant or of one (`?tenant_id=`), e.g. to watch
/// provisioning progress live. Same message format and resume rules as the member stream.
#[utoipa::path(get, path = "/api/v1/admin/events/stream", tag = "events", security(("bearer" = ["platform.merchants.view"])),
    params(AdminStreamQuery),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 403, body = ErrorBody)))]
async fn admin_stream_events(
    State(st): State<AppState>,
    _staff: Platform<platform_perm::MerchantsView>,
    headers: HeaderMap,
    Query(q): Query<AdminStreamQuery>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let last = last_event_id(&headers, q.last_event_id)?;
    let filter = Filter {
        tenant: q.tenant_id,
        perms: crate::access::PermissionSet::all(),
        types: parse_types(q.types.as_deref())?,
    };
    let rx = st.bus.subscribe();
    let backlog = match last {
        Some(after) => crate::store::events::since_all(&st.db, q.tenant_id, after, 1000).await?,
        None => vec![],
    };
    Ok(sse(st.bus.closing(), rx, filter, backlog))
}

fn last_event_id(headers: &HeaderMap, query: Option<Uuid>) -> ApiResult<Option<Uuid>> {
    Ok(match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be an event id (UUID)",
                    )
                })?,
        ),
        None => query,
    })
}

fn parse_types(raw: Option<&str>) -> ApiResult<Option<Vec<String>>> {
    let types = raw.map(|t| {
        t.split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    });
    if types.as_ref().is_some_and(|t| t.len() > 50) {
        return Err(ApiError::invalid(
            "types",
            "too_many",
            "types: at most 50 event types",
        ));
    }
    Ok(types)
}

/// Builds the SSE response: `backlog` (filtered) first, then live events from `rx`, which
/// the caller subscribed before reading the backlog so nothing falls between the two; an
/// event present in both is sent once.
fn sse(
    closing: tokio::sync::watch::Receiver<bool>,
    rx: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    backlog: Vec<Event>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>> {
    let filter = Arc::new(filter);
    let backlog: VecDeque<Event> = backlog.into_iter().filter(|e| filter.accepts(e)).collect();
    let seen: Arc<std::collections::HashSet<Uuid>> =
        Arc::new(backlog.iter().map(|e| e.id).collect());
    let start = State_::Backfill(backlog, rx);
    let s = stream::unfold(start, move |state| {
        let (filter, seen, closing) = (filter.clone(), seen.clone(), closing.clone());
        async move {
            match state {
                State_::Backfill(mut q, rx) => match q.pop_front() {
                    Some(e) => Some((Ok(to_sse(&e)), State_::Backfill(q, rx))),
                    None => next_live(rx, &seen, &filter, closing).await,
                },
                State_::Live(rx) => next_live(rx, &seen, &filter, closing).await,
                State_::Done => None,
            }
        }
    });
    Sse::new(s).keep_alive(KeepAlive::default())
}

async fn next_live(
    mut rx: broadcast::Receiver<Arc<Event>>,
    seen: &std::collections::HashSet<Uuid>,
    filter: &Filter,
    mut closing: tokio::sync::watch::Receiver<bool>,
) -> Option<(Result<SseEvent, Infallible>, State_)> {
    loop {
        let next = tokio::select! {
            r = rx.recv() => r,
            _ = closing.wait_for(|c| *c) => {
                let ev = SseEvent::default()
                    .event("close")
                    .data(r#"{"reason":"server shutting down; reconnect with Last-Event-ID"}"#);
                return Some((Ok(ev), State_::Done));
            }
        };
        match next {
            Ok(e) => {
                if seen.contains(&e.id) || !filter.accepts(&e) {
                    continue;
                }
                return Some((Ok(to_sse(&e)), State_::Live(rx)));
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                metrics::counter!("souk_event_subscribers_dropped_total").increment(1);
                let ev = SseEvent::default().event("error").data(
                    serde_json::json!({ "code": "slow_consumer", "message": format!("disconnected: {n} events behind; reconnect with Last-Event-ID to resume") })
                        .to_string(),
                );
                return Some((Ok(ev), State_::Done));
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// Seconds a WebSocket ticket stays valid.
pub const WS_TICKET_TTL: i64 = 30;
/// Interval between server pings on a WebSocket.
pub const WS_PING_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// A WebSocket that sent nothing (not even a pong) for this long is closed.
pub const WS_IDLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
/// A send that cannot complete within this time means the client is not reading.
pub const WS_SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Close code for a client too slow to keep up (application range 4000–4999).
pub const CLOSE_SLOW_CONSUMER: u16 = 4008;

/// A WebSocket ticket.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct WsTicket {
    /// Pass as `?ticket=` to `/api/v1/events/ws` or `/api/v1/admin/events/ws`.
    pub ticket: String,
    /// Seconds until the ticket expires.
    pub expires_in: i64,
}

/// Get a short-lived ticket (30 s) to open the event WebSocket from a browser, which
/// cannot set `Authorization` on a WebSocket. The ticket carries the caller's identity
/// and active tenant (`X-Tenant-ID` if sent); membership and permissions are checked again
/// when the socket opens.
#[utoipa::path(post, path = "/api/v1/events/ws-ticket", tag = "events", security(("bearer" = [])),
    responses((status = 200, body = WsTicket), (status = 401, body = ErrorBody)))]
async fn ws_ticket(
    State(st): State<AppState>,
    user: crate::web::context::AuthUser,
    headers: HeaderMap,
) -> ApiResult<axum::Json<WsTicket>> {
    let mut claims = user.claims.clone();
    if let Some(t) = headers.get("x-tenant-id") {
        claims.tid = Some(
            t.to_str()
                .ok()
                .and_then(|s| Uuid::parse_str(s.trim()).ok())
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_tenant_id", "X-Tenant-ID must be a UUID")
                })?,
        );
    }
    let ticket = st
        .keys
        .issue_ticket(&claims, WS_TICKET_TTL)
        .map_err(|_| ApiError::internal())?;
    Ok(axum::Json(WsTicket {
        ticket,
        expires_in: WS_TICKET_TTL,
    }))
}

/// Query of the event WebSocket.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct WsQuery {
    /// Comma-separated event types (default: all the caller may read).
    pub types: Option<String>,
    /// Resume after this event id: missed events (24 h window) come first.
    pub last_event_id: Option<Uuid>,
    /// A ticket from `POST /api/v1/events/ws-ticket` (instead of `Authorization`).
    pub ticket: Option<String>,
}

/// Stream the tenant's events over a WebSocket. Each text message is one event
/// `{id, type, tenant_id, occurred_at, data}`; the server pings every 20 s and closes
/// idle (60 s) or slow clients (close code 4008 `slow_consumer`), and closes with 1001 at
/// shutdown. Reconnect with `?last_event_id=` to receive what was missed first.
#[utoipa::path(get, path = "/api/v1/events/ws", tag = "events", security(("bearer" = [])),
    params(WsQuery),
    responses((status = 101, description = "switching to WebSocket"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn ws_events(
    State(st): State<AppState>,
    m: Merchant,
    headers: HeaderMap,
    Query(q): Query<WsQuery>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> ApiResult<axum::response::Response> {
    let last = last_event_id(&headers, q.last_event_id)?;
    let filter = Filter {
        tenant: Some(m.tenant.id),
        perms: m.permissions,
        types: parse_types(q.types.as_deref())?,
    };
    let rx = st.bus.subscribe();
    let backlog = match last {
        Some(after) => m.scope.events_since(after, 1000).await?,
        None => vec![],
    };
    let closing = st.bus.closing();
    Ok(ws.on_upgrade(move |socket| run_socket(socket, closing, rx, filter, backlog)))
}

/// Query of the platform event WebSocket.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AdminWsQuery {
    /// Only this merchant's events (default: every tenant).
    pub tenant_id: Option<Uuid>,
    pub types: Option<String>,
    pub last_event_id: Option<Uuid>,
    pub ticket: Option<String>,
}

/// Platform staff: every tenant's events (or one tenant's) over a WebSocket; same
/// message format and rules as the member socket.
#[utoipa::path(get, path = "/api/v1/admin/events/ws", tag = "events", security(("bearer" = ["platform.merchants.view"])),
    params(AdminWsQuery),
    responses((status = 101, description = "switching to WebSocket"), (status = 403, body = ErrorBody)))]
async fn admin_ws_events(
    State(st): State<AppState>,
    _staff: Platform<platform_perm::MerchantsView>,
    headers: HeaderMap,
    Query(q): Query<AdminWsQuery>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> ApiResult<axum::response::Response> {
    let last = last_event_id(&headers, q.last_event_id)?;
    let filter = Filter {
        tenant: q.tenant_id,
        perms: crate::access::PermissionSet::all(),
        types: parse_types(q.types.as_deref())?,
    };
    let rx = st.bus.subscribe();
    let backlog = match last {
        Some(after) => crate::store::events::since_all(&st.db, q.tenant_id, after, 1000).await?,
        None => vec![],
    };
    let closing = st.bus.closing();
    Ok(ws.on_upgrade(move |socket| run_socket(socket, closing, rx, filter, backlog)))
}

/// Drives one event socket: backlog, then live events, pings, and the close rules.
async fn run_socket(
    mut socket: axum::extract::ws::WebSocket,
    mut closing: tokio::sync::watch::Receiver<bool>,
    mut rx: broadcast::Receiver<Arc<Event>>,
    filter: Filter,
    backlog: Vec<Event>,
) {
    use axum::extract::ws::{CloseFrame, Message};
    metrics::gauge!("souk_event_sockets").increment(1.0);
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let mut seen = std::collections::HashSet::new();
    let mut outcome = None;
    for e in backlog.iter().filter(|e| filter.accepts(e)) {
        seen.insert(e.id);
        let text = serde_json::to_string(e).unwrap_or_default();
        match tokio::time::timeout(WS_SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                outcome = Some(None);
                break;
            }
            Err(_) => {
                outcome = Some(Some(close(
                    CLOSE_SLOW_CONSUMER,
                    "slow_consumer: not reading".into(),
                )));
                break;
            }
        }
    }
    let mut ping = tokio::time::interval(WS_PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    while outcome.is_none() {
        let msg = tokio::select! {
            biased;
            _ = closing.wait_for(|c| *c) => {
                outcome = Some(Some(close(1001, "server shutting down; reconnect with last_event_id".into())));
                continue;
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => { outcome = Some(None); continue; }
                Some(Ok(_)) => { last_heard = tokio::time::Instant::now(); continue; }
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > WS_IDLE_LIMIT {
                    outcome = Some(Some(close(1001, "idle: no pong within 60 s".into())));
                    continue;
                }
                Message::Ping(Vec::new().into())
            }
            next = rx.recv() => match next {
                Ok(e) => {
                    if seen.contains(&e.id) || !filter.accepts(&e) {
                        continue;
                    }
                    Message::Text(serde_json::to_string(&*e).unwrap_or_default().into())
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    metrics::counter!("souk_event_subscribers_dropped_total").increment(1);
                    outcome = Some(Some(close(
                        CLOSE_SLOW_CONSUMER,
                        format!("slow_consumer: {n} events behind; reconnect with last_event_id"),
                    )));
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    outcome = Some(Some(close(1001, "server shutting down; reconnect with last_event_id".into())));
                    continue;
                }
            },
        };
        match tokio::time::timeout(WS_SEND_TIMEOUT, socket.send(msg)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => outcome = Some(None),
            Err(_) => {
                metrics::counter!("souk_event_subscribers_dropped_total").increment(1);
                outcome = Some(Some(close(
                    CLOSE_SLOW_CONSUMER,
                    "slow_consumer: not reading".into(),
                )));
            }
        }
    }
    if let Some(Some(frame)) = outcome {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.send(frame)).await;
    }
    metrics::gauge!("souk_event_sockets").decrement(1.0);
}
