//! Domain events through a transactional outbox.
//!
//! [`emit`] writes an event row inside the caller's transaction, so an event exists if and
//! only if its change committed. The dispatcher ([`unpublished_tx`] + [`mark_published_tx`])
//! stamps rows in id order with `published_at` and a `seq`: one past the highest seq, in
//! the dispatcher's single transaction (SQLite's single writer; on PostgreSQL under the
//! dispatch advisory lock), so seq order is commit order and has no gaps, which UUIDv7 ids
//! (made before their transaction commits) are not. Everything after a seq is therefore
//! exactly the rows with a higher seq: subscribers resume with [`resume_cursor`] /
//! [`TenantDb::resume_cursor`] and page through [`after_seq`] / [`TenantDb::events_after`]
//! (24 h window, [`too_old_after`] names what fell out of it); the bus feeder closes gaps
//! with [`after_seq`]; activity feeds read the newest events with
//! [`TenantDb::recent_events`].

use super::{StoreResult, TenantDb, Tx, micros_to_rfc3339, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, exec_tx};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Type of the internal event written in the same transaction as a change that can
/// withdraw access to a tenant's events (member removed, member's role changed, a role's
/// permissions edited, API key revoked, merchant suspended or reactivated). Open streams
/// of the tenant re-check their credential when they see it; it is never sent to clients
/// or webhooks.
pub const ACCESS_CHANGED: &str = "access.changed";

/// Whether events of `kind` are internal (never delivered to clients or webhooks).
pub fn is_internal(kind: &str) -> bool {
    kind.starts_with("access.")
}

/// An event as subscribers receive it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// UUIDv7; also the SSE `id` used to resume.
    pub id: Uuid,
    /// Position in the commit order of all events (stamped when published; absent on an
    /// event not yet published). Consecutive, so a jump means events in between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// `resource.action`, e.g. `product.created`.
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant_id: Option<Uuid>,
    /// RFC 3339.
    pub occurred_at: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: Uuid,
    seq: Option<i64>,
    tenant_id: Option<Uuid>,
    #[sqlx(rename = "type")]
    kind: String,
    payload: String,
    occurred_at: i64,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            seq: r.seq,
            kind: r.kind,
            tenant_id: r.tenant_id,
            occurred_at: micros_to_rfc3339(r.occurred_at),
            data: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Outbox rows this process has written (counted as they are written, whether or not their
/// transaction commits): see [`emitted_count`].
static EMITTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many outbox rows this process has written so far. The dispatcher compares it across
/// a wake-up: a successful write request that emitted nothing leaves it unchanged, and then
/// there is nothing new to read (its timer poll still covers every other case, such as rows
/// written by another node).
pub fn emitted_count() -> u64 {
    EMITTED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Writes an event in `tx` (commit it with the change). `kind` is `resource.action`.
pub async fn emit(
    tx: &mut Tx,
    tenant: Option<Uuid>,
    kind: &str,
    data: &serde_json::Value,
) -> StoreResult<Uuid> {
    let mut b = super::batch::Batch::new();
    let id = emit_into(&mut b, tenant, kind, data);
    b.run(tx).await?;
    Ok(id)
}

/// [`emit`] as a statement of `batch` (written when the batch runs, in its transaction).
pub fn emit_into(
    batch: &mut super::batch::Batch,
    tenant: Option<Uuid>,
    kind: &str,
    data: &serde_json::Value,
) -> Uuid {
    let id = new_id();
    EMITTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    batch.push(
        "insert into events (id, tenant_id, type, payload, occurred_at) values ($1, $2, $3, $4, $5)",
        vec![
            id.into(),
            tenant.into(),
            kind.into(),
            data.to_string().into(),
            now_micros().into(),
        ],
    );
    id
}

/// Writes the internal [`ACCESS_CHANGED`] event in `tx`, with the change that may withdraw
/// access to `tenant`'s events (`reason`: e.g. `member_removed`; `subject`: the member's
/// user id or the key's id, when one credential is concerned).
pub async fn emit_access_changed(
    tx: &mut Tx,
    tenant: Uuid,
    reason: &str,
    subject: Option<Uuid>,
) -> StoreResult<Uuid> {
    emit(
        tx,
        Some(tenant),
        ACCESS_CHANGED,
        &serde_json::json!({ "reason": reason, "subject": subject }),
    )
    .await
}

/// [`emit`] with a resource as the payload, serialized exactly as the API returns it.
pub async fn emit_resource<T: Serialize>(
    tx: &mut Tx,
    tenant: Option<Uuid>,
    kind: &str,
    resource: &T,
) -> StoreResult<Uuid> {
    let data = serde_json::to_value(resource)
        .map_err(|e| super::StoreError::Corrupt(format!("event payload of {kind}: {e}")))?;
    emit(tx, tenant, kind, &data).await
}

/// Platform path, on a reader: whether any outbox row waits to be published. The
/// dispatcher asks this before it opens its transaction, which on SQLite takes the single
/// writer shared with every checkout: most wake-ups find nothing to publish.
pub async fn any_unpublished(db: &super::Db) -> StoreResult<bool> {
    Ok(dispatch!(db, p => sqlx::query_scalar(
        "select exists(select 1 from events where published_at is null)",
    )
    .fetch_one(p)
    .await)?)
}

/// Platform path, inside the dispatcher's transaction: up to `limit` unpublished
/// events, oldest first.
pub async fn unpublished_tx(tx: &mut Tx, limit: i64) -> StoreResult<Vec<Event>> {
    let rows: Vec<EventRow> = dispatch_tx!(tx, c => sqlx::query_as(
        "select id, seq, tenant_id, type, payload, occurred_at from events where published_at is null order by id limit $1",
    )
    .bind(limit)
    .fetch_all(&mut **c)
    .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Platform path, inside the dispatcher's transaction: stamps `batch` as published and
/// gives its events the next seqs in batch order (also set on `batch`). Must run in the
/// transaction that holds the dispatch right (see [`begin_dispatch`]), so seqs are
/// consecutive and in commit order.
pub async fn mark_published_tx(tx: &mut Tx, batch: &mut [Event]) -> StoreResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let top: i64 = dispatch_tx!(tx, c => sqlx::query_scalar("select coalesce(max(seq), 0) from events")
        .fetch_one(&mut **c)
        .await)?;
    let now = now_micros();
    for (i, e) in batch.iter_mut().enumerate() {
        e.seq = Some(top + 1 + i as i64);
    }
    // One statement per 500 rows: `values` names its columns column1, column2 on both.
    exec_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new("update events set published_at = ");
        qb.push_bind(now).push(", seq = v.column2 from (values ");
        let mut sep = qb.separated(", ");
        for e in batch.iter() {
            sep.push("(")
                .push_bind_unseparated(e.id)
                .push_unseparated(", ")
                .push_bind_unseparated(e.seq)
                .push_unseparated(")");
        }
        qb.push(") as v where events.id = v.column1");
        qb.build().execute(&mut **c).await
    })?;
    Ok(())
}

/// Platform path: opens the dispatcher's transaction. On PostgreSQL it first takes a
/// transaction-scoped advisory lock, so with several nodes one dispatcher at a time
/// publishes (in id order, without duplicates); `None` when another node holds it.
pub async fn begin_dispatch(db: &super::Db) -> StoreResult<Option<Tx>> {
    let mut tx = db.begin().await?;
    if let Tx::Pg(c) = &mut tx {
        let got: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock(7001)")
            .fetch_one(&mut **c)
            .await?;
        if !got {
            return Ok(None);
        }
    }
    Ok(Some(tx))
}

/// How far back a reconnecting subscriber can resume: 24 hours.
pub const REPLAY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Where a subscriber resuming after event `after` continues: that event's seq; for an id
/// the outbox does not hold (or not yet published), just before the first published event
/// with a higher id, else the highest seq. `SQL` is shared by the platform and tenant paths.
const RESUME_SQL: &str = "select coalesce(
        (select seq from events where ($1 is null or tenant_id = $1) and id = $2 and seq is not null),
        (select min(seq) - 1 from events where ($1 is null or tenant_id = $1) and id > $2 and seq is not null),
        (select max(seq) from events),
        0)";

/// Platform path: the seq to resume after for event id `after` (see [`RESUME_SQL`]), in
/// one tenant's events or every tenant's.
pub async fn resume_cursor(db: &super::Db, tenant: Option<Uuid>, after: Uuid) -> StoreResult<i64> {
    Ok(dispatch!(db, p => sqlx::query_scalar(RESUME_SQL)
        .bind(tenant)
        .bind(after)
        .fetch_one(p)
        .await)?)
}

/// Platform path: the highest seq published so far (0 for none).
pub async fn top_seq(db: &super::Db) -> StoreResult<i64> {
    Ok(
        dispatch!(db, p => sqlx::query_scalar("select coalesce(max(seq), 0) from events")
        .fetch_one(p)
        .await)?,
    )
}

/// Platform path: published events with a seq above `after` (and below `before`, when
/// given), across tenants or of one, in seq order, at most `limit`. Not bounded by the
/// replay window (the callers are the bus feeder closing a gap and paged replays, which
/// check the window first with [`too_old_after`]).
pub async fn after_seq(
    db: &super::Db,
    tenant: Option<Uuid>,
    after: i64,
    before: Option<i64>,
    limit: i64,
) -> StoreResult<Vec<Event>> {
    let rows: Vec<EventRow> = dispatch!(db, p => sqlx::query_as(
        "select id, seq, tenant_id, type, payload, occurred_at from events
         where ($1 is null or tenant_id = $1) and seq > $2 and ($3 is null or seq < $3) order by seq limit $4",
    )
    .bind(tenant)
    .bind(after)
    .bind(before)
    .bind(limit)
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Events after a resume point that fell out of the replay window: the id of the first
/// and the seq of the last, or `None` when everything after the cursor can be replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfWindow {
    /// The first event that can no longer be replayed.
    pub first_id: Uuid,
    /// The highest seq among those events: replay continues after it.
    pub last_seq: i64,
}

const TOO_OLD_SQL: &str = "select id, (select max(seq) from events where ($1 is null or tenant_id = $1) and seq > $2 and occurred_at < $3)
     from events where ($1 is null or tenant_id = $1) and seq > $2 and occurred_at < $3 order by seq limit 1";

/// Platform path: which events after seq `after` are older than the replay window.
pub async fn too_old_after(
    db: &super::Db,
    tenant: Option<Uuid>,
    after: i64,
) -> StoreResult<Option<OutOfWindow>> {
    let floor = now_micros() - REPLAY_WINDOW_MICROS;
    let row: Option<(Uuid, i64)> = dispatch!(db, p => sqlx::query_as(TOO_OLD_SQL)
        .bind(tenant)
        .bind(after)
        .bind(floor)
        .fetch_optional(p)
        .await)?;
    Ok(row.map(|(first_id, last_seq)| OutOfWindow { first_id, last_seq }))
}

impl TenantDb {
    /// The seq to resume after for the tenant's event `after` (see [`resume_cursor`]).
    pub async fn resume_cursor(&self, after: Uuid) -> StoreResult<i64> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_scalar(RESUME_SQL)
            .bind(Some(self.tenant))
            .bind(after)
            .fetch_one(p)
            .await)?,
        )
    }

    /// The tenant's published events with a seq above `after`, in seq order, at most
    /// `limit` (a page of a replay).
    pub async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<Event>> {
        let rows: Vec<EventRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, seq, tenant_id, type, payload, occurred_at from events
             where tenant_id = $1 and seq > $2 order by seq limit $3",
        )
        .bind(self.tenant)
        .bind(after)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The tenant's events after seq `after` that are older than the replay window.
    pub async fn too_old_after(&self, after: i64) -> StoreResult<Option<OutOfWindow>> {
        let floor = now_micros() - REPLAY_WINDOW_MICROS;
        let row: Option<(Uuid, i64)> = crate::tenant_query!(self, read, p => sqlx::query_as(TOO_OLD_SQL)
            .bind(Some(self.tenant))
            .bind(after)
            .bind(floor)
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(first_id, last_seq)| OutOfWindow { first_id, last_seq }))
    }

    /// The tenant's published events, newest (highest seq) first: those with a seq below
    /// `before` (`None`: from the newest), only of `types` when given, at most `limit`. For activity
    /// feeds: unlike [`Self::events_after`]'s replays not bounded by the replay window, and
    /// like them only published events, so a client that resumes its stream after the newest one
    /// returned misses nothing and sees nothing twice.
    pub async fn recent_events(
        &self,
        before: Option<i64>,
        types: Option<&[String]>,
        limit: i64,
    ) -> StoreResult<Vec<Event>> {
        if types.is_some_and(|t| t.is_empty()) {
            return Ok(vec![]);
        }
        let rows: Vec<EventRow> = crate::tenant_query!(self, read, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "select id, seq, tenant_id, type, payload, occurred_at from events where tenant_id = ",
            );
            qb.push_bind(self.tenant).push(" and seq is not null");
            if let Some(b) = before {
                qb.push(" and seq < ").push_bind(b);
            }
            if let Some(types) = types {
                qb.push(" and type in (");
                let mut sep = qb.separated(", ");
                for t in types {
                    sep.push_bind(t.as_str());
                }
                qb.push(")");
            }
            qb.push(" order by seq desc limit ").push_bind(limit);
            qb.build_query_as::<EventRow>().fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
