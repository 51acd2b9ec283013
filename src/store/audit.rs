//! The audit log: who did what, for which tenant, when, from where, with before/after
//! snapshots where they matter. Entries are written with [`record`] inside the same
//! transaction as the change they describe, and are never updated or deleted (on
//! PostgreSQL the application role has no UPDATE/DELETE grant on the table).

use super::{Db, StoreResult, TenantDb, Tx, escape_like, micros_to_rfc3339, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, exec_tx};
use serde::Serialize;
use uuid::Uuid;

/// Who performs a change.
#[derive(Debug, Clone)]
pub struct Actor {
    /// `user`, `api_key` or `system`.
    pub kind: &'static str,
    pub id: Option<Uuid>,
    /// E-mail of a user, name and prefix of an API key, or the system component.
    pub label: String,
    /// Client IP address, when the change came over HTTP.
    pub ip: Option<String>,
}

impl Actor {
    /// An internal component (provisioning worker, CLI).
    pub fn system(label: &str) -> Self {
        Self {
            kind: "system",
            id: None,
            label: label.to_string(),
            ip: None,
        }
    }

    /// A shopper's change: `customer` when signed in, else `shopper`, labelled with the
    /// cart's e-mail (`guest` without one).
    pub fn shopper(email: Option<&str>, customer: Option<Uuid>, ip: Option<String>) -> Self {
        Self {
            kind: if customer.is_some() {
                "customer"
            } else {
                "shopper"
            },
            id: customer,
            label: email.unwrap_or("guest").to_string(),
            ip,
        }
    }

    /// Whether this is a shopper's or a customer's change ([`Self::shopper`]).
    pub fn is_shopper(&self) -> bool {
        matches!(self.kind, "shopper" | "customer")
    }
}

/// One change to record.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// `resource.action`, e.g. `product.updated`, `member.removed`.
    pub action: &'static str,
    pub resource_type: &'static str,
    pub resource_id: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl Change {
    pub fn new(action: &'static str, resource_type: &'static str, id: impl ToString) -> Self {
        Self {
            action,
            resource_type,
            resource_id: Some(id.to_string()),
            ..Default::default()
        }
    }
    pub fn before(mut self, v: impl Serialize) -> Self {
        self.before = serde_json::to_value(v).ok();
        self
    }
    pub fn after(mut self, v: impl Serialize) -> Self {
        self.after = serde_json::to_value(v).ok();
        self
    }
}

/// Writes an audit entry in `tx` (commit it with the change). `tenant` is `None` for
/// platform-level changes (e.g. a password change, an admin bootstrap).
pub async fn record(
    tx: &mut Tx,
    tenant: Option<Uuid>,
    actor: &Actor,
    change: Change,
) -> StoreResult<()> {
    let mut b = super::batch::Batch::new();
    record_into(&mut b, tenant, actor, change);
    b.run(tx).await?;
    Ok(())
}

/// [`record`] as a statement of `batch` (written when the batch runs).
pub fn record_into(
    batch: &mut super::batch::Batch,
    tenant: Option<Uuid>,
    actor: &Actor,
    change: Change,
) {
    let to_text = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string());
    batch.push(
        "insert into audit_log (id, tenant_id, actor_type, actor_id, actor_label, action, resource_type, resource_id, ip, before, after, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        vec![
            new_id().into(),
            tenant.into(),
            actor.kind.into(),
            actor.id.into(),
            (&actor.label).into(),
            change.action.into(),
            change.resource_type.into(),
            change.resource_id.into(),
            (&actor.ip).into(),
            to_text(&change.before).into(),
            to_text(&change.after).into(),
            now_micros().into(),
        ],
    );
}

/// An audit entry as the API returns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub tenant_id: Option<Uuid>,
    pub actor_type: String,
    pub actor_id: Option<Uuid>,
    pub actor_label: String,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub ip: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// RFC 3339.
    pub created_at: String,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: Uuid,
    tenant_id: Option<Uuid>,
    actor_type: String,
    actor_id: Option<Uuid>,
    actor_label: String,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    ip: Option<String>,
    before: Option<String>,
    after: Option<String>,
    created_at: i64,
}

impl From<AuditRow> for AuditEntry {
    fn from(r: AuditRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        AuditEntry {
            id: r.id,
            tenant_id: r.tenant_id,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            actor_label: r.actor_label,
            action: r.action,
            resource_type: r.resource_type,
            resource_id: r.resource_id,
            ip: r.ip,
            before: parse(r.before),
            after: parse(r.after),
            created_at: micros_to_rfc3339(r.created_at),
        }
    }
}

/// Filters of an audit query; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub tenant: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    /// Exact action, or a prefix ending in `.` (`product.`).
    pub action: Option<String>,
    /// Inclusive bounds, microseconds since the epoch.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Text the actor's label (a user's e-mail, an API key's name) contains,
    /// case-insensitive; LIKE wildcards in it match themselves.
    pub actor_label: Option<String>,
}

const COLS: &str = "id, tenant_id, actor_type, actor_id, actor_label, action, resource_type, resource_id, ip, before, after, created_at";
const WHERE: &str = "($1 is null or tenant_id = $1) and ($2 is null or actor_id = $2) \
    and ($3 is null or action = $3 or action like $4 escape '\\') and ($5 is null or created_at >= $5) and ($6 is null or created_at <= $6) \
    and ($7 is null or lower(actor_label) like $7 escape '\\')";

fn action_like(f: &AuditFilter) -> Option<String> {
    f.action
        .as_ref()
        .filter(|a| a.ends_with('.'))
        .map(|a| format!("{}%", escape_like(a)))
}

/// The `like` pattern of the actor filter: the lowercased text anywhere in the label.
fn actor_like(f: &AuditFilter) -> Option<String> {
    f.actor_label
        .as_ref()
        .map(|a| format!("%{}%", escape_like(&a.to_lowercase())))
}

/// Platform path: entries across tenants, newest first. Returns `(page, total)`.
pub async fn list_all(
    db: &Db,
    f: &AuditFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<AuditEntry>, i64)> {
    let like = action_like(f);
    let actor = actor_like(f);
    let rows: Vec<AuditRow> = dispatch!(db, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select {COLS} from audit_log where {WHERE} order by created_at desc, id desc limit $8 offset $9"
    )))
    .bind(f.tenant)
    .bind(f.actor_id)
    .bind(&f.action)
    .bind(&like)
    .bind(f.since)
    .bind(f.until)
    .bind(&actor)
    .bind(limit)
    .bind(offset)
    .fetch_all(p)
    .await)?;
    let total: i64 = dispatch!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select count(*) from audit_log where {WHERE}"
    )))
    .bind(f.tenant)
    .bind(f.actor_id)
    .bind(&f.action)
    .bind(&like)
    .bind(f.since)
    .bind(f.until)
    .bind(&actor)
    .fetch_one(p)
    .await)?;
    Ok((rows.into_iter().map(Into::into).collect(), total))
}

impl TenantDb {
    /// The tenant's own audit entries, newest first (the filter's tenant is ignored).
    pub async fn list_audit(
        &self,
        f: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<AuditEntry>, i64)> {
        let like = action_like(f);
        let actor = actor_like(f);
        let rows: Vec<AuditRow> = crate::tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {COLS} from audit_log where tenant_id = $1 and {WHERE} order by created_at desc, id desc limit $8 offset $9"
        )))
        .bind(self.tenant)
        .bind(f.actor_id)
        .bind(&f.action)
        .bind(&like)
        .bind(f.since)
        .bind(f.until)
        .bind(&actor)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = crate::tenant_query!(self, read, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from audit_log where tenant_id = $1 and {WHERE}"
        )))
        .bind(self.tenant)
        .bind(f.actor_id)
        .bind(&f.action)
        .bind(&like)
        .bind(f.since)
        .bind(f.until)
        .bind(&actor)
        .fetch_one(p)
        .await)?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }
}
