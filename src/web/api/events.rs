//! Live events over WebSocket (`GET /api/v1/events/ws`) and Server-Sent Events
//! (`GET /api/v1/events/stream`), with the same semantics, and the newest past events
//! (`GET /api/v1/events`) for activity feeds.
//!
//! A member receives only their active tenant's events, and only those their permissions
//! let them read. Every event carries `seq`, its place in the commit order. A reconnecting
//! client sends the last id it saw (`Last-Event-ID` header or `?last_event_id=`) and first
//! receives everything committed after it, read from the outbox in pages of 500 (24 h
//! window), then live events, each once: nothing committed is skipped, nothing is repeated.
//! If events after that id are older than the window, the first message is
//! `resync_required` naming the first id that can no longer be replayed. Keep-alive
//! comments every 15 s. A client that falls behind the bus is caught up from the outbox;
//! one that stops reading is disconnected (`slow_consumer`), so memory stays bounded.
//!
//! Access is re-checked while a stream is open: every change that can withdraw it (member
//! removed, role changed or edited, API key revoked, merchant suspended) commits an
//! internal `access.changed` event, which reaches every node's streams in commit order;
//! each stream of that tenant re-reads its credential from the database and either keeps
//! going with the permissions it has now (a narrowed role filters from then on) or ends:
//! WebSocket close 4003 `access_revoked`, SSE `event: access_revoked`. At the expiry of the
//! access token (for a ticket: of the access token it was issued from) the stream ends
//! with close 4001 / `event: token_expired`. Events committed after the change are never
//! delivered to a stream that lost access to them.

use crate::access::Permission;
use crate::access::platform_perm;
use crate::store::events::{Event, OutOfWindow};
use crate::store::{Db, StoreResult, TenantDb};
use crate::web::AppState;
use crate::web::context::{Credential, Merchant, Platform};
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
        "import" | "feed" | "feed_source" => Some(Permission::ImportsView),
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
        !crate::events::is_internal(&e.kind)
            && self.tenant.is_none_or(|t| e.tenant_id == Some(t))
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
        before = batch.last().and_then(|e| e.seq);
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

/// Events read per replay page.
const REPLAY_PAGE: i64 = 500;

/// Where a stream replays from: one tenant's events, or (platform staff) every tenant's or
/// one named tenant's.
enum Source {
    Tenant(TenantDb),
    Platform { db: Db, tenant: Option<Uuid> },
}

impl Source {
    async fn resume_cursor(&self, after: Uuid) -> StoreResult<i64> {
        match self {
            Source::Tenant(t) => t.resume_cursor(after).await,
            Source::Platform { db, tenant } => {
                crate::store::events::resume_cursor(db, *tenant, after).await
            }
        }
    }
    async fn too_old_after(&self, after: i64) -> StoreResult<Option<OutOfWindow>> {
        match self {
            Source::Tenant(t) => t.too_old_after(after).await,
            Source::Platform { db, tenant } => {
                crate::store::events::too_old_after(db, *tenant, after).await
            }
        }
    }
    async fn page(&self, after: i64) -> StoreResult<Vec<Event>> {
        match self {
            Source::Tenant(t) => t.events_after(after, REPLAY_PAGE).await,
            Source::Platform { db, tenant } => {
                crate::store::events::after_seq(db, *tenant, after, None, REPLAY_PAGE).await
            }
        }
    }
    async fn top(&self, db: &Db) -> StoreResult<i64> {
        crate::store::events::top_seq(db).await
    }
}

/// Why a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The server is shutting down (WebSocket 1001, SSE `close`).
    Shutdown,
    /// The credential lost access to the tenant (WebSocket 4003, SSE `access_revoked`).
    AccessRevoked,
    /// The access token expired (WebSocket 4001, SSE `token_expired`).
    TokenExpired,
    /// The database could not be read (WebSocket 1011, SSE `error`).
    Internal,
}

impl End {
    fn code(self) -> u16 {
        match self {
            End::Shutdown => 1001,
            End::AccessRevoked => CLOSE_ACCESS_REVOKED,
            End::TokenExpired => CLOSE_TOKEN_EXPIRED,
            End::Internal => 1011,
        }
    }
    fn name(self) -> &'static str {
        match self {
            End::Shutdown => "close",
            End::AccessRevoked => "access_revoked",
            End::TokenExpired => "token_expired",
            End::Internal => "error",
        }
    }
    fn reason(self) -> &'static str {
        match self {
            End::Shutdown => "server shutting down; reconnect with last_event_id",
            End::AccessRevoked => "access_revoked: your access to these events was withdrawn",
            End::TokenExpired => {
                "token_expired: the access token expired; reconnect with a new one and last_event_id"
            }
            End::Internal => "internal error; reconnect with last_event_id",
        }
    }
}

/// What a stream sends next.
enum Item {
    Event(Arc<Event>),
    Resync(OutOfWindow),
    End(End),
}

fn resync_json(o: &OutOfWindow) -> String {
    serde_json::json!({
        "type": "resync_required",
        "code": "resync_required",
        "first_missing_id": o.first_id,
        "message": "events after last_event_id are older than the 24 h replay window and cannot be replayed; reload the state, then follow the events that come next",
    })
    .to_string()
}

/// One open stream (SSE or WebSocket): replay by seq from the outbox, then the bus,
/// re-checking access on the tenant's `access.changed` events and ending at expiry.
struct Feed {
    db: Db,
    bus: crate::events::EventBus,
    source: Source,
    filter: Filter,
    /// `None` for platform staff streams (not re-checked).
    credential: Option<Credential>,
    expires_at: Option<tokio::time::Instant>,
    /// The highest seq handled (sent or filtered out); `None` before the first.
    cursor: Option<i64>,
    replaying: bool,
    page: VecDeque<Event>,
    resync: Option<OutOfWindow>,
    /// An access event was seen and the credential not re-checked yet (kept across a
    /// cancelled `next`).
    recheck: bool,
    rx: broadcast::Receiver<Arc<Event>>,
    closing: tokio::sync::watch::Receiver<bool>,
}

/// What a stream is opened with.
struct FeedSpec {
    source: Source,
    filter: Filter,
    credential: Option<Credential>,
    /// Unix seconds.
    expires_at: Option<i64>,
    last: Option<Uuid>,
}

impl Feed {
    /// Subscribes to the bus, then finds where to resume (so nothing falls between the
    /// replay and the live events).
    async fn open(st: &AppState, spec: FeedSpec) -> ApiResult<Feed> {
        let rx = st.bus.subscribe();
        let mut feed = Feed {
            db: st.db.clone(),
            bus: st.bus.clone(),
            source: spec.source,
            filter: spec.filter,
            credential: spec.credential,
            expires_at: spec.expires_at.map(|exp| {
                let left = exp - time::OffsetDateTime::now_utc().unix_timestamp();
                tokio::time::Instant::now() + std::time::Duration::from_secs(left.max(0) as u64)
            }),
            cursor: None,
            replaying: false,
            page: VecDeque::new(),
            resync: None,
            recheck: false,
            rx,
            closing: st.bus.closing(),
        };
        if let Some(after) = spec.last {
            let mut cursor = feed.source.resume_cursor(after).await?;
            if let Some(o) = feed.source.too_old_after(cursor).await? {
                cursor = o.last_seq;
                feed.resync = Some(o);
            }
            feed.cursor = Some(cursor);
            feed.replaying = true;
        }
        Ok(feed)
    }

    /// The next thing to send. Cancel-safe: dropping the future loses nothing.
    async fn next(&mut self) -> Item {
        loop {
            if self
                .expires_at
                .is_some_and(|t| tokio::time::Instant::now() >= t)
            {
                return Item::End(End::TokenExpired);
            }
            if self.recheck {
                if let Some(c) = self.credential {
                    match Box::pin(crate::web::context::recheck(&self.db, &c)).await {
                        Ok(Some(perms)) => self.filter.perms = perms,
                        Ok(None) => return Item::End(End::AccessRevoked),
                        Err(e) => {
                            tracing::error!(error = %e, "stream access re-check failed");
                            return Item::End(End::Internal);
                        }
                    }
                }
                self.recheck = false;
            }
            if let Some(o) = self.resync.take() {
                return Item::Resync(o);
            }
            if let Some(e) = self.page.pop_front() {
                if let Some(e) = self.step(Arc::new(e)) {
                    return Item::Event(e);
                }
                continue;
            }
            if self.replaying {
                let after = self.cursor.unwrap_or(0);
                match Box::pin(self.source.page(after)).await {
                    Ok(page) => {
                        if (page.len() as i64) < REPLAY_PAGE {
                            self.replaying = false;
                        }
                        self.page.extend(page);
                        if !self.replaying && self.page.is_empty() {
                            // Back to live: give the replay buffer's memory back.
                            self.page = VecDeque::new();
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "event replay failed");
                        return Item::End(End::Internal);
                    }
                }
                continue;
            }
            let expires = self.expires_at;
            let next = tokio::select! {
                biased;
                _ = self.closing.wait_for(|c| *c) => return Item::End(End::Shutdown),
                _ = async { if let Some(t) = expires { tokio::time::sleep_until(t).await } }, if expires.is_some() => {
                    return Item::End(End::TokenExpired);
                }
                r = self.rx.recv() => r,
            };
            match next {
                Ok(e) => {
                    if let Some(e) = self.step(e) {
                        return Item::Event(e);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Fell behind the bus: follow it again and catch up from the outbox.
                    metrics::counter!("souk_event_subscribers_caught_up_total").increment(1);
                    self.rx = self.bus.subscribe();
                    if self.cursor.is_none() {
                        match self.source.top(&self.db).await {
                            Ok(top) => self.cursor = Some(top),
                            Err(_) => return Item::End(End::Internal),
                        }
                    }
                    self.replaying = true;
                }
                Err(broadcast::error::RecvError::Closed) => return Item::End(End::Shutdown),
            }
        }
    }

    /// Moves the cursor past `e` and says whether to send it: not twice, not filtered out;
    /// an access event of the stream's tenant schedules a re-check before anything later.
    fn step(&mut self, e: Arc<Event>) -> Option<Arc<Event>> {
        let seq = e.seq?;
        if self.cursor.is_some_and(|c| seq <= c) {
            return None;
        }
        self.cursor = Some(seq);
        if e.kind == crate::events::ACCESS_CHANGED {
            if let Some(Credential::User { tenant, .. } | Credential::ApiKey { tenant, .. }) =
                self.credential
                && e.tenant_id == Some(tenant)
            {
                self.recheck = true;
            }
            return None;
        }
        self.filter.accepts(&e).then_some(e)
    }
}

/// Refuses streams of a suspended merchant (platform staff excepted).
fn refuse_suspended(m: &Merchant) -> ApiResult<()> {
    if m.tenant.status == "suspended" && !m.role.starts_with("platform:") {
        return Err(ApiError::forbidden(
            "this merchant is suspended: its events are not available",
        ));
    }
    Ok(())
}

fn member_spec(m: Merchant, last: Option<Uuid>, types: Option<Vec<String>>) -> FeedSpec {
    FeedSpec {
        filter: Filter {
            tenant: Some(m.tenant.id),
            perms: m.permissions,
            types,
        },
        credential: Some(m.credential),
        expires_at: m.expires_at,
        last,
        source: Source::Tenant(m.scope),
    }
}

fn platform_spec(
    db: &Db,
    tenant: Option<Uuid>,
    last: Option<Uuid>,
    types: Option<Vec<String>>,
) -> FeedSpec {
    FeedSpec {
        filter: Filter {
            tenant,
            perms: crate::access::PermissionSet::all(),
            types,
        },
        credential: None,
        expires_at: None,
        last,
        source: Source::Platform {
            db: db.clone(),
            tenant,
        },
    }
}

/// Stream the tenant's events (SSE). Each message has `id` (UUIDv7), `event` (the type)
/// and `data` (`{id, seq, type, tenant_id, occurred_at, data}`). Terminal messages:
/// `access_revoked` (access withdrawn), `token_expired`, `close` (shutdown), `error`;
/// `resync_required` (`first_missing_id`) when the replay window was exceeded.
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
    let types = parse_types(q.types.as_deref())?;
    refuse_suspended(&m)?;
    let feed = Feed::open(&st, member_spec(m, last, types)).await?;
    Ok(sse(feed))
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
    let types = parse_types(q.types.as_deref())?;
    let feed = Feed::open(&st, platform_spec(&st.db, q.tenant_id, last, types)).await?;
    Ok(sse(feed))
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

/// Builds the SSE response from an open feed; a terminal message ends it.
fn sse(feed: Feed) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + use<>> {
    let s = stream::unfold(Some(feed), |feed| async move {
        let mut feed = feed?;
        let ev = match feed.next().await {
            Item::Event(e) => return Some((Ok(to_sse(&e)), Some(feed))),
            Item::Resync(o) => {
                return Some((
                    Ok(SseEvent::default()
                        .event("resync_required")
                        .data(resync_json(&o))),
                    Some(feed),
                ));
            }
            Item::End(end) => SseEvent::default().event(end.name()).data(
                serde_json::json!({ "code": end.name(), "reason": end.reason() }).to_string(),
            ),
        };
        Some((Ok(ev), None))
    });
    Sse::new(s).keep_alive(KeepAlive::default())
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
/// Close code when the access token (or the one a ticket was issued from) expired.
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
/// Close code when access was withdrawn while the socket was open (member removed, role
/// no longer allows the tenant, API key revoked, merchant suspended).
pub const CLOSE_ACCESS_REVOKED: u16 = 4003;
/// Read buffer of an event socket: clients send only pings, pongs and close frames.
const WS_READ_BUFFER: usize = 4 * 1024;
/// Largest message a client may send.
const WS_MAX_INCOMING: usize = 16 * 1024;

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
/// when the socket opens and whenever access changes while it is open, and the socket
/// closes (4001 `token_expired`) when the access token the ticket came from expires.
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
/// `{id, seq, type, tenant_id, occurred_at, data}` (or `{type: "resync_required",
/// first_missing_id}` first, when the replay window was exceeded); the server pings every
/// 20 s and closes idle (60 s) or slow clients (close code 4008 `slow_consumer`), closes
/// with 4003 `access_revoked` when access is withdrawn, 4001 `token_expired` at the access
/// token's expiry, and 1001 at shutdown. Reconnect with `?last_event_id=` to receive what
/// was missed first.
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
    let types = parse_types(q.types.as_deref())?;
    refuse_suspended(&m)?;
    let feed = Feed::open(&st, member_spec(m, last, types)).await?;
    Ok(upgrade(ws, feed))
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
    let types = parse_types(q.types.as_deref())?;
    let feed = Feed::open(&st, platform_spec(&st.db, q.tenant_id, last, types)).await?;
    Ok(upgrade(ws, feed))
}

/// Upgrades with small buffers (an idle socket holds little memory) and runs the socket.
fn upgrade(ws: axum::extract::ws::WebSocketUpgrade, feed: Feed) -> axum::response::Response {
    ws.read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(WS_MAX_INCOMING)
        .max_frame_size(WS_MAX_INCOMING)
        .on_upgrade(move |socket| run_socket(socket, Box::new(feed)))
}

/// Drives one event socket: the feed's messages, pings, and the close rules.
async fn run_socket(mut socket: axum::extract::ws::WebSocket, mut feed: Box<Feed>) {
    use axum::extract::ws::{CloseFrame, Message};
    metrics::gauge!("souk_event_sockets").increment(1.0);
    let close = |code: u16, reason: String| {
        Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }))
    };
    let mut outcome = None;
    let mut ping = tokio::time::interval(WS_PING_EVERY);
    ping.tick().await;
    let mut last_heard = tokio::time::Instant::now();
    while outcome.is_none() {
        let msg = tokio::select! {
            biased;
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
            item = feed.next() => match item {
                Item::Event(e) => Message::Text(serde_json::to_string(&*e).unwrap_or_default().into()),
                Item::Resync(o) => Message::Text(resync_json(&o).into()),
                Item::End(end) => {
                    outcome = Some(Some(close(end.code(), end.reason().into())));
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
    drop(feed);
    if let Some(Some(frame)) = outcome {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), socket.send(frame)).await;
    }
    metrics::gauge!("souk_event_sockets").decrement(1.0);
}
