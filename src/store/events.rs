//! Domain events through a transactional outbox.
//!
//! [`emit`] writes an event row inside the caller's transaction, so an event exists if and
//! only if its change committed. The dispatcher ([`unpublished_tx`] + [`mark_published_tx`])
//! publishes rows in id order (UUIDv7: time order, hence per-tenant order) at least once.
//! Subscribers that reconnect read what they missed with [`since_all`] /
//! [`TenantDb::events_since`] (bounded window); activity feeds read the newest events
//! with [`TenantDb::recent_events`].

use super::{StoreResult, TenantDb, Tx, micros_to_rfc3339, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, exec_tx};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An event as subscribers receive it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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

/// Platform path, inside the dispatcher's transaction: up to `limit` unpublished
/// events, oldest first.
pub async fn unpublished_tx(tx: &mut Tx, limit: i64) -> StoreResult<Vec<Event>> {
    let rows: Vec<EventRow> = dispatch_tx!(tx, c => sqlx::query_as(
        "select id, tenant_id, type, payload, occurred_at from events where published_at is null order by id limit $1",
    )
    .bind(limit)
    .fetch_all(&mut **c)
    .await)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Platform path, inside the dispatcher's transaction: stamps events as published.
pub async fn mark_published_tx(tx: &mut Tx, ids: &[Uuid]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let now = now_micros();
    exec_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new("update events set published_at = ");
        qb.push_bind(now).push(" where id in (");
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(")");
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

    /// The tenant's published events, newest first: those before `before` (exclusive;
    /// `None`: from the newest), only of `types` when given, at most `limit`. For activity
    /// feeds: unlike [`Self::events_since`] not bounded by the replay window, and like it
    /// only published events, so a client that resumes its stream after the newest one
    /// returned misses nothing and sees nothing twice.
    pub async fn recent_events(
        &self,
        before: Option<Uuid>,
        types: Option<&[String]>,
        limit: i64,
    ) -> StoreResult<Vec<Event>> {
        if types.is_some_and(|t| t.is_empty()) {
            return Ok(vec![]);
        }
        let rows: Vec<EventRow> = crate::tenant_query!(self, read, p => {
            let mut qb = sqlx::QueryBuilder::new(
                "select id, tenant_id, type, payload, occurred_at from events where tenant_id = ",
            );
            qb.push_bind(self.tenant).push(" and published_at is not null");
            if let Some(b) = before {
                qb.push(" and id < ").push_bind(b);
            }
            if let Some(types) = types {
                qb.push(" and type in (");
                let mut sep = qb.separated(", ");
                for t in types {
                    sep.push_bind(t.as_str());
                }
                qb.push(")");
            }
            qb.push(" order by id desc limit ").push_bind(limit);
            qb.build_query_as::<EventRow>().fetch_all(p).await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}
