//! Domain events through a transactional outbox.
//!
//! [`emit`] writes an event row inside the caller's transaction, so an event exists if and
//! only if its change committed. The dispatcher ([`claim_unpublished`] + [`mark_published`])
//! publishes rows in id order (UUIDv7: time order, hence per-tenant order) at least once.
//! Subscribers that reconnect read what they missed with [`since`] (bounded window).

use super::{StoreResult, TenantDb, Tx, micros_to_rfc3339, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, exec_tx, exec_write};
use serde::Serialize;
use uuid::Uuid;

/// An event as subscribers receive it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Event {
    /// UUIDv7; also the SSE `id` used to resume.
    pub id: Uuid,
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
            kind: r.kind,
            tenant_id: r.tenant_id,
            occurred_at: micros_to_rfc3339(r.occurred_at),
            data: serde_json::from_str(&r.payload).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Writes an event in `tx` (commit it with the change). `kind` is `resource.action`.
pub async fn emit(
    tx: &mut Tx,
    tenant: Option<Uuid>,
    kind: &str,
    data: &serde_json::Value,
) -> StoreResult<Uuid> {
    let id = new_id();
    exec_tx!(tx, c => sqlx::query(
        "insert into events (id, tenant_id, type, payload, occurred_at) values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(tenant)
    .bind(kind)
    .bind(data.to_string())
    .bind(now_micros())
    .execute(&mut **c)
    .await)?;
    Ok(id)
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

/// Platform path: up to `limit` unpublished events, oldest first.
pub async fn unpublished(db: &super::Db, limit: i64) -> StoreResult<Vec<Event>> {
    let rows: Vec<EventRow> = dispatch!(db, p => sqlx::query_as(
        "select id, tenant_id, type, payload, occurred_at from events where published_at is null order by id limit $1",
    )
    .bind(limit)
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Platform path: stamps events as published.
pub async fn mark_published(db: &super::Db, ids: &[Uuid]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let now = now_micros();
    exec_write!(db, p => {
        let mut qb = sqlx::QueryBuilder::new("update events set published_at = ");
        qb.push_bind(now).push(" where id in (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(")");
        qb.build().execute(p).await
    })?;
    Ok(())
}

/// How far back a reconnecting subscriber can resume: 24 hours.
pub const REPLAY_WINDOW_MICROS: i64 = 24 * 3600 * 1_000_000;

/// Platform path: published events after `after` across tenants (or of one tenant),
/// oldest first, within the replay window, at most `limit`.
pub async fn since_all(
    db: &super::Db,
    tenant: Option<Uuid>,
    after: Uuid,
    limit: i64,
) -> StoreResult<Vec<Event>> {
    let floor = now_micros() - REPLAY_WINDOW_MICROS;
    let rows: Vec<EventRow> = dispatch!(db, p => sqlx::query_as(
        "select id, tenant_id, type, payload, occurred_at from events
         where ($1 is null or tenant_id = $1) and id > $2 and occurred_at >= $3 and published_at is not null order by id limit $4",
    )
    .bind(tenant)
    .bind(after)
    .bind(floor)
    .bind(limit)
    .fetch_all(p)
    .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

impl TenantDb {
    /// The tenant's published events after `after` (exclusive), oldest first, within the
    /// replay window, at most `limit`.
    pub async fn events_since(&self, after: Uuid, limit: i64) -> StoreResult<Vec<Event>> {
        let floor = now_micros() - REPLAY_WINDOW_MICROS;
        let rows: Vec<EventRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select id, tenant_id, type, payload, occurred_at from events
             where tenant_id = $1 and id > $2 and occurred_at >= $3 and published_at is not null order by id limit $4",
        )
        .bind(self.tenant)
        .bind(after)
        .bind(floor)
        .bind(limit)
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
