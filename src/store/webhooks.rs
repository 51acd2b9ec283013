//! Webhook endpoints, deliveries and their attempt log.
//!
//! Merchants manage endpoints through [`TenantDb`]. The outbox dispatcher creates one
//! delivery per (event, matching endpoint) with [`fan_out_tx`], in the same transaction
//! that stamps the events published, so a delivery exists for every published event and
//! is never created twice (`unique (endpoint_id, event_id)`). The delivery worker
//! (`crate::webhooks`) claims due deliveries with a lease ([`claim_due`]) and writes
//! attempts in batches ([`record_outcomes`]): deliveries survive restarts.

use super::audit::{self, Actor, Change};
use super::events::Event;
use super::{
    Db, StoreError, StoreResult, TenantDb, Tx, from_json, micros_to_rfc3339, new_id, now_micros,
    to_json,
};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec, exec_tx, exec_write};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// Does an endpoint's event-type entry (`order.created`, `order.*` or `*`) cover `kind`?
pub fn type_matches(pattern: &str, kind: &str) -> bool {
    pattern == "*"
        || pattern == kind
        || pattern
            .strip_suffix(".*")
            .is_some_and(|p| kind.split('.').next() == Some(p))
}

/// A webhook endpoint as the API returns it (never with its secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Endpoint {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    /// Event types or patterns (`order.*`, `*`) this endpoint receives.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Set when Souk disabled the endpoint: `gone` (it answered 410) or `failing` (every
    /// attempt failed for the configured period, 5 days by default).
    pub disabled_reason: Option<String>,
    /// RFC 3339; while set, deliveries are also signed with the previous secret.
    pub previous_secret_expires_at: Option<String>,
    /// RFC 3339 start of the current run of failures, if failing.
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    description: Option<String>,
    event_types: String,
    enabled: bool,
    disabled_reason: Option<String>,
    previous_secret_expires_at: Option<i64>,
    failing_since: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const ENDPOINT_COLS: &str = "id, url, description, event_types, enabled, disabled_reason, previous_secret_expires_at, failing_since, created_at, updated_at";

impl EndpointRow {
    fn into_dto(self) -> StoreResult<Endpoint> {
        let now = now_micros();
        Ok(Endpoint {
            id: self.id,
            url: self.url,
            description: self.description,
            event_types: from_json(&self.event_types)?,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            previous_secret_expires_at: self
                .previous_secret_expires_at
                .filter(|t| *t > now)
                .map(micros_to_rfc3339),
            failing_since: self.failing_since.map(micros_to_rfc3339),
            created_at: micros_to_rfc3339(self.created_at),
            updated_at: micros_to_rfc3339(self.updated_at),
        })
    }
}

/// A validated endpoint to create.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
}

/// A validated partial update; `None` keeps the field.
#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// A delivery as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// Also the `webhook-id` header: the same across retries and redeliveries.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempt_count: i64,
    /// RFC 3339, when pending.
    pub next_attempt_at: Option<String>,
    /// HTTP status of the last attempt, if it got a response.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    endpoint_id: Uuid,
    event_id: Uuid,
    event_type: String,
    status: String,
    attempt_count: i64,
    next_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const DELIVERY_COLS: &str = "id, endpoint_id, event_id, event_type, status, attempt_count, next_attempt_at, last_status, last_error, created_at, updated_at";

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        Delivery {
            id: r.id,
            endpoint_id: r.endpoint_id,
            event_id: r.event_id,
            event_type: r.event_type,
            next_attempt_at: r
                .next_attempt_at
                .filter(|_| r.status == "pending")
                .map(micros_to_rfc3339),
            status: r.status,
            attempt_count: r.attempt_count,
            last_status: r.last_status,
            last_error: r.last_error,
            created_at: micros_to_rfc3339(r.created_at),
            updated_at: micros_to_rfc3339(r.updated_at),
        }
    }
}

/// One logged attempt of a delivery.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1-based.
    pub attempt: i64,
    pub started_at: String,
    pub duration_ms: i64,
    /// The headers Souk sent (`webhook-id`, `webhook-timestamp`, `webhook-signature`, …).
    #[schema(value_type = Object)]
    pub request_headers: serde_json::Value,
    pub response_status: Option<i64>,
    /// At most the first 1 KiB of the response body.
    pub response_body: Option<String>,
    /// Timeout, connection or policy error, when there was no usable response.
    pub error: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    attempt: i64,
    started_at: i64,
    duration_ms: i64,
    request_headers: String,
    response_status: Option<i64>,
    response_body: Option<String>,
    error: Option<String>,
}

/// A delivery with its request body and every attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: Delivery,
    /// The request body, exactly as sent.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub attempts: Vec<Attempt>,
}

/// The request body of a delivery: the event as subscribers receive it, with
/// `timestamp` (RFC 3339) as Standard Webhooks recommends.
pub fn delivery_body(e: &Event) -> String {
    serde_json::json!({
        "id": e.id,
        "type": e.kind,
        "tenant_id": e.tenant_id,
        "timestamp": e.occurred_at,
        "data": e.data,
    })
    .to_string()
}

impl TenantDb {
    /// Creates an endpoint with its signing secret, sealed by the caller
    /// (`crate::crypto::SecretBox`): the database never holds it in clear.
    pub async fn create_webhook_endpoint(
        &self,
        actor: &Actor,
        input: &EndpointInput,
        secret: &str,
    ) -> StoreResult<Endpoint> {
        let id = new_id();
        let now = now_micros();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into webhook_endpoints (id, tenant_id, url, description, event_types, enabled, secret, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(&input.url)
        .bind(&input.description)
        .bind(to_json(&input.event_types))
        .bind(input.enabled)
        .bind(secret)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("webhook_endpoint.created", "webhook_endpoint", id).after(
                serde_json::json!({ "url": input.url, "event_types": input.event_types, "enabled": input.enabled }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.get_webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Lists endpoints, oldest first. Returns `(page, total)`.
    pub async fn list_webhook_endpoints(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Endpoint>, i64)> {
        let rows: Vec<EndpointRow> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {ENDPOINT_COLS} from webhook_endpoints where tenant_id = $1 order by created_at, id limit $2 offset $3"
        )))
        .bind(self.tenant)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total = self.count_webhook_endpoints().await?;
        Ok((
            rows.into_iter()
                .map(EndpointRow::into_dto)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    /// How many endpoints the tenant has (the API caps it).
    pub async fn count_webhook_endpoints(&self) -> StoreResult<i64> {
        Ok(
            crate::tenant_query!(self, read, p => sqlx::query_scalar("select count(*) from webhook_endpoints where tenant_id = $1")
            .bind(self.tenant)
            .fetch_one(p)
            .await)?,
        )
    }

    /// One endpoint of this tenant.
    pub async fn get_webhook_endpoint(&self, id: Uuid) -> StoreResult<Option<Endpoint>> {
        let row: Option<EndpointRow> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {ENDPOINT_COLS} from webhook_endpoints where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        row.map(EndpointRow::into_dto).transpose()
    }

    /// Applies a partial update. Re-enabling clears `disabled_reason` and the failure run.
    /// Errors: `NotFound`.
    pub async fn update_webhook_endpoint(
        &self,
        actor: &Actor,
        id: Uuid,
        patch: &EndpointPatch,
    ) -> StoreResult<Endpoint> {
        let before = self
            .get_webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let url = patch.url.clone().unwrap_or(before.url.clone());
        let description = patch
            .description
            .clone()
            .unwrap_or(before.description.clone());
        let types = patch
            .event_types
            .clone()
            .unwrap_or(before.event_types.clone());
        let enabled = patch.enabled.unwrap_or(before.enabled);
        let reenabled = enabled && !before.enabled;
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "update webhook_endpoints set url = $3, description = $4, event_types = $5, enabled = $6,
               disabled_reason = case when $6 then null else disabled_reason end,
               failing_since = case when $7 then null else failing_since end, updated_at = $8
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(&url)
        .bind(&description)
        .bind(to_json(&types))
        .bind(enabled)
        .bind(reenabled)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("webhook_endpoint.updated", "webhook_endpoint", id)
                .before(serde_json::json!({ "url": before.url, "event_types": before.event_types, "enabled": before.enabled }))
                .after(serde_json::json!({ "url": url, "event_types": types, "enabled": enabled })),
        )
        .await?;
        tx.commit().await?;
        self.get_webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes an endpoint with its deliveries and attempts. Errors: `NotFound`.
    pub async fn delete_webhook_endpoint(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let before = self
            .get_webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        for sql in [
            "delete from webhook_attempts where tenant_id = $1 and delivery_id in (select id from webhook_deliveries where tenant_id = $1 and endpoint_id = $2)",
            "delete from webhook_deliveries where tenant_id = $1 and endpoint_id = $2",
            "delete from webhook_endpoints where tenant_id = $1 and id = $2",
        ] {
            exec_tx!(&mut tx, c => sqlx::query(sql).bind(self.tenant).bind(id).execute(&mut **c).await)?;
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("webhook_endpoint.deleted", "webhook_endpoint", id)
                .before(serde_json::json!({ "url": before.url })),
        )
        .await?;
        tx.commit().await
    }

    /// Replaces the signing secret; the current one keeps signing (as a second
    /// `v1,` entry) until `overlap_until` (Unix micros). Errors: `NotFound`.
    pub async fn rotate_webhook_secret(
        &self,
        actor: &Actor,
        id: Uuid,
        new_secret: &str,
        overlap_until: i64,
    ) -> StoreResult<Endpoint> {
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update webhook_endpoints set previous_secret = secret, previous_secret_expires_at = $3, secret = $4, updated_at = $5
             where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(overlap_until)
        .bind(new_secret)
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("webhook_endpoint.secret_rotated", "webhook_endpoint", id).after(
                serde_json::json!({ "previous_secret_expires_at": micros_to_rfc3339(overlap_until) }),
            ),
        )
        .await?;
        tx.commit().await?;
        self.get_webhook_endpoint(id)
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deliveries of one endpoint, newest first, optionally of one status.
    /// Returns `(page, total)`.
    pub async fn list_webhook_deliveries(
        &self,
        endpoint: Uuid,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Delivery>, i64)> {
        // The page and its total come from one statement (`count(*) over ()`): two
        // statements would race with deliveries changing status in between, and a page
        // could then show fewer rows than the total says it holds.
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            d: DeliveryRow,
            total: i64,
        }
        let rows: Vec<Row> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {DELIVERY_COLS}, count(*) over () as total from webhook_deliveries
             where tenant_id = $1 and endpoint_id = $2 and ($3 is null or status = $3)
             order by id desc limit $4 offset $5"
        )))
        .bind(self.tenant)
        .bind(endpoint)
        .bind(status)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total = match rows.first() {
            Some(r) => r.total,
            // An empty first page means no matching delivery (a count now could already
            // see one that changed status since, and promise rows the page does not have).
            None if offset == 0 => 0,
            // Past the last page the window has no row to carry the total.
            None => crate::tenant_query!(self, read, p => sqlx::query_scalar(
                "select count(*) from webhook_deliveries where tenant_id = $1 and endpoint_id = $2 and ($3 is null or status = $3)",
            )
            .bind(self.tenant)
            .bind(endpoint)
            .bind(status)
            .fetch_one(p)
            .await)?,
        };
        let rows: Vec<DeliveryRow> = rows.into_iter().map(|r| r.d).collect();
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }

    /// One delivery of the endpoint with its body and attempts.
    pub async fn get_webhook_delivery(
        &self,
        endpoint: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<DeliveryDetail>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            d: DeliveryRow,
            payload: String,
        }
        let row: Option<Row> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {DELIVERY_COLS}, payload from webhook_deliveries where tenant_id = $1 and endpoint_id = $2 and id = $3"
        )))
        .bind(self.tenant)
        .bind(endpoint)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        let attempts: Vec<AttemptRow> = crate::tenant_query!(self, read, p => sqlx::query_as(
            "select attempt, started_at, duration_ms, request_headers, response_status, response_body, error
             from webhook_attempts where tenant_id = $1 and delivery_id = $2 order by attempt",
        )
        .bind(self.tenant)
        .bind(id)
        .fetch_all(p)
        .await)?;
        Ok(Some(DeliveryDetail {
            delivery: row.d.into(),
            payload: from_json(&row.payload)?,
            attempts: attempts
                .into_iter()
                .map(|a| {
                    Ok(Attempt {
                        attempt: a.attempt,
                        started_at: micros_to_rfc3339(a.started_at),
                        duration_ms: a.duration_ms,
                        request_headers: from_json(&a.request_headers)?,
                        response_status: a.response_status,
                        response_body: a.response_body,
                        error: a.error,
                    })
                })
                .collect::<StoreResult<_>>()?,
        }))
    }

    /// Queues deliveries of the endpoint again, now, with a fresh retry schedule: one
    /// delivery (`only`), or every failed one created at or after `since` (Unix micros).
    /// Returns how many were queued. Errors: `NotFound` (endpoint, or `only` not in it).
    pub async fn redeliver_webhooks(
        &self,
        actor: &Actor,
        endpoint: Uuid,
        only: Option<Uuid>,
        since: Option<i64>,
    ) -> StoreResult<u64> {
        if self.get_webhook_endpoint(endpoint).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let now = now_micros();
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update webhook_deliveries set status = 'pending', retry_step = 0, next_attempt_at = $5, locked_until = null, updated_at = $5
             where tenant_id = $1 and endpoint_id = $2 and ($3 is null or id = $3)
               and ($3 is not null or (status = 'failed' and created_at >= $4))",
        )
        .bind(self.tenant)
        .bind(endpoint)
        .bind(only)
        .bind(since.unwrap_or(0))
        .bind(now)
        .execute(&mut **c)
        .await)?;
        if only.is_some() && n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new(
                "webhook_deliveries.redelivered",
                "webhook_endpoint",
                endpoint,
            )
            .after(serde_json::json!({ "delivery_id": only, "queued": n })),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }
}

/// Platform path (dispatcher): creates one pending delivery per event and enabled
/// endpoint of its tenant whose event types match. Idempotent per (endpoint, event).
pub async fn fan_out_tx(tx: &mut Tx, batch: &[Event]) -> StoreResult<usize> {
    let tenants: Vec<Uuid> = {
        let mut t: Vec<Uuid> = batch.iter().filter_map(|e| e.tenant_id).collect();
        t.sort();
        t.dedup();
        t
    };
    if tenants.is_empty() {
        return Ok(0);
    }
    #[derive(sqlx::FromRow)]
    struct Row {
        id: Uuid,
        tenant_id: Uuid,
        event_types: String,
    }
    let rows: Vec<Row> = dispatch_tx!(tx, c => {
        let mut qb = sqlx::QueryBuilder::new(
            "select id, tenant_id, event_types from webhook_endpoints where enabled = true and tenant_id in (",
        );
        let mut sep = qb.separated(", ");
        for t in &tenants {
            sep.push_bind(*t);
        }
        qb.push(")");
        qb.build_query_as::<Row>().fetch_all(&mut **c).await
    })?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut by_tenant: HashMap<Uuid, Vec<(Uuid, Vec<String>)>> = HashMap::new();
    for r in rows {
        let types: Vec<String> = from_json(&r.event_types)?;
        by_tenant
            .entry(r.tenant_id)
            .or_default()
            .push((r.id, types));
    }
    let now = now_micros();
    let mut created = 0;
    for e in batch {
        if super::events::is_internal(&e.kind) {
            continue;
        }
        let Some(endpoints) = e.tenant_id.and_then(|t| by_tenant.get(&t)) else {
            continue;
        };
        let mut body = None;
        for (endpoint, types) in endpoints {
            if !types.iter().any(|p| type_matches(p, &e.kind)) {
                continue;
            }
            let body = body.get_or_insert_with(|| delivery_body(e));
            created += exec_tx!(tx, c => sqlx::query(
                "insert into webhook_deliveries (id, tenant_id, endpoint_id, event_id, event_type, payload, status, next_attempt_at, created_at, updated_at)
                 values ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7) on conflict (endpoint_id, event_id) do nothing",
            )
            .bind(new_id())
            .bind(e.tenant_id)
            .bind(*endpoint)
            .bind(e.id)
            .bind(&e.kind)
            .bind(body.as_str())
            .bind(now)
            .execute(&mut **c)
            .await)? as usize;
        }
    }
    Ok(created)
}

/// A delivery claimed by the worker.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DueDelivery {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub payload: String,
    pub attempt_count: i64,
    pub retry_step: i64,
}

/// Platform path (worker): claims up to `limit` due deliveries until `lease_until`
/// (Unix micros); a worker that dies leaves them claimable once the lease passes.
pub async fn claim_due(db: &Db, lease_until: i64, limit: i64) -> StoreResult<Vec<DueDelivery>> {
    let now = now_micros();
    let rows = match db {
        Db::Sqlite { write, .. } => {
            sqlx::query_as(
                "update webhook_deliveries set locked_until = $1 where id in (
                   select id from webhook_deliveries where status = 'pending' and next_attempt_at <= $2
                     and (locked_until is null or locked_until < $2) order by next_attempt_at limit $3)
                 returning id, tenant_id, endpoint_id, event_id, payload, attempt_count, retry_step",
            )
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(write)
            .await?
        }
        Db::Pg { platform, .. } => {
            sqlx::query_as(
                "update webhook_deliveries set locked_until = $1 where id in (
                   select id from webhook_deliveries where status = 'pending' and next_attempt_at <= $2
                     and (locked_until is null or locked_until < $2) order by next_attempt_at limit $3
                   for update skip locked)
                 returning id, tenant_id, endpoint_id, event_id, payload, attempt_count, retry_step",
            )
            .bind(lease_until)
            .bind(now)
            .bind(limit)
            .fetch_all(platform)
            .await?
        }
    };
    Ok(rows)
}

/// What the worker needs of an endpoint to deliver to it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointTarget {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    pub enabled: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<i64>,
}

/// Platform path (worker): the endpoints with these ids.
pub async fn targets(db: &Db, ids: &[Uuid]) -> StoreResult<Vec<EndpointTarget>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    Ok(dispatch!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "select id, tenant_id, url, enabled, secret, previous_secret, previous_secret_expires_at from webhook_endpoints where id in (",
        );
        let mut sep = qb.separated(", ");
        for id in ids {
            sep.push_bind(*id);
        }
        qb.push(")");
        qb.build_query_as::<EndpointTarget>().fetch_all(p).await
    })?)
}

/// How an attempt ended, decided by the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Succeeded,
    /// Retry at this time (Unix micros).
    Retry(i64),
    /// Final failure: retries exhausted or a non-retryable answer.
    Failed,
    /// 410 Gone: the delivery fails and the endpoint is disabled.
    Gone,
}

/// One finished attempt, to record.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery: Uuid,
    pub tenant_id: Uuid,
    pub endpoint_id: Uuid,
    /// 1-based number of this attempt.
    pub attempt: i64,
    /// The retry-schedule index of the next attempt (for `Verdict::Retry`).
    pub next_step: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    pub request_headers: serde_json::Value,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub verdict: Verdict,
}

/// An endpoint Souk has just disabled because it kept failing.
#[derive(Debug, Clone)]
pub struct DisabledEndpoint {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub url: String,
    /// E-mails of the tenant's owners.
    pub owners: Vec<String>,
}

/// Platform path (worker): writes a batch of attempts and delivery states in one
/// transaction, tracks each endpoint's failure run, disables endpoints that answered 410
/// or whose failure run is older than `disable_after_micros`, and returns the latter (the
/// caller e-mails their owners through `on_disabled`, in the same transaction).
pub async fn record_outcomes(
    db: &Db,
    outcomes: &[Outcome],
    disable_after_micros: i64,
    mut on_disabled: impl FnMut(&DisabledEndpoint) -> Vec<crate::mail::EmailMessage>,
) -> StoreResult<Vec<DisabledEndpoint>> {
    if outcomes.is_empty() {
        return Ok(vec![]);
    }
    let now = now_micros();
    let mut tx = db.begin().await?;
    let mut failed_endpoints: Vec<Uuid> = vec![];
    // The attempt log: multi-row inserts (10 binds a row, 200 rows a statement).
    for chunk in outcomes.chunks(200) {
        exec_tx!(&mut tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "insert into webhook_attempts (id, tenant_id, delivery_id, attempt, started_at, duration_ms, request_headers, response_status, response_body, error) ",
            );
            qb.push_values(chunk, |mut row, o| {
                row.push_bind(new_id())
                    .push_bind(o.tenant_id)
                    .push_bind(o.delivery)
                    .push_bind(o.attempt)
                    .push_bind(o.started_at)
                    .push_bind(o.duration_ms)
                    .push_bind(o.request_headers.to_string())
                    .push_bind(o.response_status.map(i64::from))
                    .push_bind(o.response_body.clone())
                    .push_bind(o.error.clone());
            });
            qb.build().execute(&mut **c).await
        })?;
    }
    // Successes (the common case) in a few set-based statements: one per response status.
    let mut ok_by_status: HashMap<Option<u16>, Vec<&Outcome>> = HashMap::new();
    for o in outcomes.iter().filter(|o| o.verdict == Verdict::Succeeded) {
        ok_by_status.entry(o.response_status).or_default().push(o);
    }
    for (code, group) in &ok_by_status {
        for chunk in group.chunks(500) {
            exec_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new(
                    "update webhook_deliveries set status = 'succeeded', attempt_count = attempt_count + 1, next_attempt_at = null, locked_until = null, last_error = null, last_status = ",
                );
                qb.push_bind(code.map(i64::from))
                    .push(", updated_at = ")
                    .push_bind(now)
                    .push(" where id in (");
                let mut sep = qb.separated(", ");
                for o in chunk {
                    sep.push_bind(o.delivery);
                }
                qb.push(")");
                qb.build().execute(&mut **c).await
            })?;
        }
    }
    let mut healthy: Vec<Uuid> = ok_by_status
        .values()
        .flatten()
        .map(|o| o.endpoint_id)
        .collect();
    healthy.sort();
    healthy.dedup();
    for chunk in healthy.chunks(500) {
        exec_tx!(&mut tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "update webhook_endpoints set failing_since = null where failing_since is not null and id in (",
            );
            let mut sep = qb.separated(", ");
            for id in chunk {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build().execute(&mut **c).await
        })?;
    }
    for o in outcomes.iter().filter(|o| o.verdict != Verdict::Succeeded) {
        let (status, next) = match o.verdict {
            Verdict::Succeeded => ("succeeded", None),
            Verdict::Retry(at) => ("pending", Some(at)),
            Verdict::Failed | Verdict::Gone => ("failed", None),
        };
        exec_tx!(&mut tx, c => sqlx::query(
            "update webhook_deliveries set status = $2, attempt_count = $3, retry_step = $4, next_attempt_at = $5,
               locked_until = null, last_status = $6, last_error = $7, updated_at = $8 where id = $1",
        )
        .bind(o.delivery)
        .bind(status)
        .bind(o.attempt)
        .bind(o.next_step)
        .bind(next)
        .bind(o.response_status.map(i64::from))
        .bind(&o.error)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        match o.verdict {
            Verdict::Succeeded => {} // recorded set-based above
            Verdict::Gone => {
                exec_tx!(&mut tx, c => sqlx::query(
                    "update webhook_endpoints set enabled = false, disabled_reason = 'gone', updated_at = $2 where id = $1 and enabled = true",
                )
                .bind(o.endpoint_id)
                .bind(now)
                .execute(&mut **c)
                .await)?;
            }
            Verdict::Retry(_) | Verdict::Failed => {
                exec_tx!(&mut tx, c => sqlx::query("update webhook_endpoints set failing_since = $2 where id = $1 and failing_since is null")
                    .bind(o.endpoint_id)
                    .bind(o.started_at)
                    .execute(&mut **c)
                    .await)?;
                failed_endpoints.push(o.endpoint_id);
            }
        }
    }
    failed_endpoints.sort();
    failed_endpoints.dedup();
    let mut disabled = vec![];
    for id in failed_endpoints {
        #[derive(sqlx::FromRow)]
        struct Row {
            tenant_id: Uuid,
            url: String,
        }
        let row: Option<Row> = dispatch_tx!(&mut tx, c => sqlx::query_as(
            "update webhook_endpoints set enabled = false, disabled_reason = 'failing', updated_at = $3
             where id = $1 and enabled = true and failing_since is not null and failing_since <= $2
             returning tenant_id, url",
        )
        .bind(id)
        .bind(now - disable_after_micros)
        .bind(now)
        .fetch_optional(&mut **c)
        .await)?;
        let Some(row) = row else { continue };
        let owners: Vec<String> = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
            "select u.email from memberships m join users u on u.id = m.user_id where m.tenant_id = $1 and m.role = 'owner' order by u.email",
        )
        .bind(row.tenant_id)
        .fetch_all(&mut **c)
        .await)?;
        let d = DisabledEndpoint {
            id,
            tenant_id: row.tenant_id,
            url: row.url,
            owners,
        };
        for mail in on_disabled(&d) {
            super::jobs::enqueue_tx(
                &mut tx,
                super::jobs::NewJob {
                    kind: "email",
                    tenant_id: Some(d.tenant_id),
                    payload: to_json(&mail),
                    dedupe_key: None,
                    max_attempts: 8,
                },
            )
            .await?;
        }
        audit::record(
            &mut tx,
            Some(d.tenant_id),
            &Actor::system("webhooks"),
            Change::new("webhook_endpoint.disabled", "webhook_endpoint", id)
                .after(serde_json::json!({ "reason": "failing", "url": d.url })),
        )
        .await?;
        disabled.push(d);
    }
    tx.commit().await?;
    Ok(disabled)
}

/// Platform path (worker): fails the pending deliveries of disabled endpoints (they can
/// be redelivered after re-enabling). Returns how many.
pub async fn fail_for_disabled(db: &Db, deliveries: &[Uuid]) -> StoreResult<u64> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    let now = now_micros();
    Ok(exec_write!(db, p => {
        let mut qb = sqlx::QueryBuilder::new(
            "update webhook_deliveries set status = 'failed', locked_until = null, last_error = 'endpoint disabled', updated_at = ",
        );
        qb.push_bind(now).push(" where id in (");
        let mut sep = qb.separated(", ");
        for id in deliveries {
            sep.push_bind(*id);
        }
        qb.push(")");
        qb.build().execute(p).await
    })?)
}

#[cfg(test)]
mod tests {
    use super::type_matches;

    #[test]
    fn patterns() {
        assert!(type_matches("*", "order.created"));
        assert!(type_matches("order.*", "order.created"));
        assert!(!type_matches("order.*", "orders.created"));
        assert!(!type_matches("order.*", "payment.received"));
        assert!(type_matches("order.created", "order.created"));
        assert!(!type_matches("order.created", "order.updated"));
    }
}
