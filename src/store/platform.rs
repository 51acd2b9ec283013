//! Platform-level (cross-tenant) storage: plans, merchants (tenants), domains and the
//! host → tenant lookups used by tenant resolution. This is the one place where queries
//! are not filtered by a tenant id; only the control plane and the resolver call it.

use super::audit::{self, Actor, Change};
use super::{Db, StoreError, StoreResult, Tx, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch, dispatch_tx, dispatch_write, exec, exec_tx, exec_write};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A subscription tier with its limits.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Plan {
    /// Stable code, e.g. `starter`.
    pub id: String,
    pub name: String,
    /// Monthly price in minor units of `currency`.
    pub price_minor: i64,
    pub currency: String,
    /// Maximum number of products; `-1` means unlimited.
    pub max_products: i64,
    /// Maximum number of staff seats (members), owner included; `-1` means unlimited.
    pub max_staff: i64,
    /// JSON array of feature codes, e.g. `["custom_domain","api_access"]`.
    #[schema(value_type = Vec<String>)]
    #[serde(with = "json_text")]
    pub features: String,
    #[serde(skip)]
    pub position: i64,
}

/// (De)serializes a JSON-text column as the JSON value itself.
pub mod json_text {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value = serde_json::from_str(v).unwrap_or(serde_json::Value::Null);
        serde::Serialize::serialize(&value, s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(v.to_string())
    }
}

/// The plans seeded at first start: (id, name, price, products, staff, features).
const SEED_PLANS: &[(&str, &str, i64, i64, i64, &str)] = &[
    (
        "starter",
        "Starter",
        0,
        100,
        2,
        r#"["storefront","store_api"]"#,
    ),
    (
        "growth",
        "Growth",
        2900,
        5000,
        10,
        r#"["storefront","store_api","custom_domain","imports","webhooks"]"#,
    ),
    (
        "scale",
        "Scale",
        9900,
        -1,
        50,
        r#"["storefront","store_api","custom_domain","imports","webhooks","api_access","priority_support"]"#,
    ),
];

/// Inserts the built-in plans if they are missing (idempotent).
pub async fn seed_plans(db: &Db) -> StoreResult<()> {
    for (pos, (id, name, price, products, staff, features)) in SEED_PLANS.iter().enumerate() {
        exec_write!(db, p => sqlx::query(
            "insert into plans (id, name, price_minor, currency, max_products, max_staff, features, position)
             values ($1, $2, $3, 'EUR', $4, $5, $6, $7) on conflict (id) do nothing",
        )
        .bind(*id)
        .bind(*name)
        .bind(*price)
        .bind(*products)
        .bind(*staff)
        .bind(*features)
        .bind(pos as i64)
        .execute(p)
        .await)?;
    }
    Ok(())
}

pub async fn list_plans(db: &Db) -> StoreResult<Vec<Plan>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, Plan>("select * from plans order by position").fetch_all(p).await)?,
    )
}

pub async fn get_plan(db: &Db, id: &str) -> StoreResult<Option<Plan>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, Plan>("select * from plans where id = $1").bind(id).fetch_optional(p).await)?,
    )
}

/// Merchant lifecycle: `pending → provisioning → active → suspended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MerchantStatus {
    Pending,
    Provisioning,
    Active,
    Suspended,
}

impl MerchantStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Provisioning => "provisioning",
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "provisioning" => Self::Provisioning,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            _ => return None,
        })
    }
}

/// A merchant (tenant) as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Merchant {
    pub id: Uuid,
    pub name: String,
    pub handle: Option<String>,
    pub status: String,
    pub plan_id: Option<String>,
    pub theme_id: Option<String>,
    pub theme_settings: String,
    pub currency: String,
    pub owner_name: Option<String>,
    pub owner_email: String,
    pub owner_phone: Option<String>,
    pub business_address: Option<String>,
    pub business_city: Option<String>,
    pub business_postal_code: Option<String>,
    pub business_country: Option<String>,
    pub initial_password_hash: Option<String>,
    pub limits: String,
    pub storefront_ready: bool,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub updated_at: i64,
}

/// What is needed to record a pending merchant (already parsed at the edge).
#[derive(Debug, Clone)]
pub struct NewMerchant {
    pub name: String,
    pub owner_name: Option<String>,
    pub owner_email: crate::domain::Email,
    pub owner_phone: Option<String>,
    pub business_address: Option<String>,
    pub business_city: Option<String>,
    pub business_postal_code: Option<String>,
    pub business_country: Option<String>,
    pub currency: crate::domain::Currency,
    /// Requested subdomain (reserved at creation if given).
    pub handle: Option<crate::domain::Subdomain>,
    /// argon2 hash of an initial password from a bulk import (owner must change it).
    pub initial_password_hash: Option<String>,
}

/// Inserts a pending merchant. Errors: `Conflict{field: "subdomain"}` if the handle is taken.
pub async fn create_merchant(db: &Db, actor: &Actor, m: &NewMerchant) -> StoreResult<Merchant> {
    let mut tx = db.begin().await?;
    let id = create_merchant_tx(&mut tx, actor, m).await?;
    tx.commit().await?;
    get_merchant(db, id).await?.ok_or(StoreError::NotFound)
}

/// [`create_merchant`] inside the caller's transaction (so a bulk import can create and
/// activate a merchant atomically); returns the new id. Errors: `Conflict { subdomain }`.
pub async fn create_merchant_tx(tx: &mut Tx, actor: &Actor, m: &NewMerchant) -> StoreResult<Uuid> {
    let id = new_id();
    let now = now_micros();
    exec_tx!(&mut *tx, c => sqlx::query(
        "insert into tenants (id, name, handle, status, owner_name, owner_email, owner_phone, business_address,
            business_city, business_postal_code, business_country, currency, initial_password_hash, created_at, updated_at)
         values ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(id)
    .bind(&m.name)
    .bind(m.handle.as_ref().map(|h| h.as_str()))
    .bind(&m.owner_name)
    .bind(m.owner_email.as_str())
    .bind(&m.owner_phone)
    .bind(&m.business_address)
    .bind(&m.business_city)
    .bind(&m.business_postal_code)
    .bind(&m.business_country)
    .bind(m.currency.as_str())
    .bind(&m.initial_password_hash)
    .bind(now)
    .execute(&mut **c)
    .await)
    .map_err(|e| StoreError::on_unique(e, &[("handle", "subdomain")]))?;
    let after = serde_json::json!({ "name": m.name, "subdomain": m.handle.as_ref().map(|h| h.as_str()), "owner_email": m.owner_email.as_str() });
    audit::record(
        tx,
        Some(id),
        actor,
        Change::new("merchant.created", "merchant", id).after(after),
    )
    .await?;
    Ok(id)
}

pub async fn get_merchant(db: &Db, id: Uuid) -> StoreResult<Option<Merchant>> {
    // Read from the writer on SQLite so a read right after a write sees it.
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, Merchant>("select * from tenants where id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?,
    )
}

/// The owner e-mail of merchant `id` (`None` for an unknown id), from a reader: where
/// new-order notifications go when the store names no address. Unlike
/// [`get_merchant`] it does not take SQLite's writer, which checkouts share.
pub async fn owner_email(db: &Db, id: Uuid) -> StoreResult<Option<String>> {
    Ok(
        dispatch!(db, p => sqlx::query_scalar("select owner_email from tenants where id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?,
    )
}

/// Filters for the admin merchant list.
#[derive(Debug, Default, Clone)]
pub struct MerchantFilter {
    pub status: Option<String>,
    /// Case-insensitive substring of name, handle or owner e-mail.
    pub q: Option<String>,
    pub plan: Option<String>,
    pub theme: Option<String>,
}

/// A merchant of the admin list with the duration of its latest provisioning run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MerchantListRow {
    #[sqlx(flatten)]
    pub merchant: Merchant,
    /// Milliseconds of the newest provisioning run (null until one finished).
    pub provisioning_ms: Option<i64>,
}

/// Lists merchants newest first; with a text search, the merchants whose subdomain or
/// name is exactly the text come first. Returns `(page, total matching)`.
pub async fn list_merchants(
    db: &Db,
    f: &MerchantFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<MerchantListRow>, i64)> {
    let q =
        f.q.as_ref()
            .map(|q| format!("%{}%", super::escape_like(&q.to_lowercase())));
    const WHERE: &str = "($1 is null or status = $1) and ($2 is null or lower(name) like $2 escape '\\' or handle like $2 escape '\\' or owner_email like $2 escape '\\') and ($3 is null or plan_id = $3) and ($4 is null or theme_id = $4)";
    let rows = dispatch!(db, p => sqlx::query_as::<_, MerchantListRow>(sqlx::AssertSqlSafe(format!(
        "select t.*, (select r.duration_ms from provisioning_runs r where r.tenant_id = t.id
             order by r.created_at desc, r.id desc limit 1) as provisioning_ms
         from tenants t where {WHERE}
         order by case when handle = $7 or lower(name) = $7 then 0 else 1 end, created_at desc, id desc limit $5 offset $6"
    )))
    .bind(&f.status)
    .bind(&q)
    .bind(&f.plan)
    .bind(&f.theme)
    .bind(limit)
    .bind(offset)
    .bind(f.q.as_ref().map(|q| q.to_lowercase()))
    .fetch_all(p)
    .await)?;
    let total: i64 = dispatch!(db, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from tenants where {WHERE}")))
        .bind(&f.status)
        .bind(&q)
        .bind(&f.plan)
        .bind(&f.theme)
        .fetch_one(p)
        .await)?;
    Ok((rows, total))
}

/// True when a merchant already holds `handle` as its subdomain.
pub async fn handle_taken(db: &Db, handle: &str) -> StoreResult<bool> {
    let n: i64 = dispatch_write!(db, p => sqlx::query_scalar("select count(*) from tenants where handle = $1")
        .bind(handle)
        .fetch_one(p)
        .await)?;
    Ok(n > 0)
}

/// All handles in use (for bulk imports that must pick free subdomains).
pub async fn all_handles(db: &Db) -> StoreResult<Vec<String>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_scalar("select handle from tenants where handle is not null")
        .fetch_all(p)
        .await)?,
    )
}

/// A merchant as a bulk vendor import sees it: key, reserved subdomain and status.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VendorKey {
    pub id: Uuid,
    pub name: String,
    pub owner_email: String,
    pub handle: Option<String>,
    pub status: String,
}

/// Every merchant's id, name, owner e-mail, subdomain and status, to recognise the rows of
/// a re-uploaded vendor file.
pub async fn vendor_keys(db: &Db) -> StoreResult<Vec<VendorKey>> {
    Ok(dispatch_write!(db, p => sqlx::query_as::<_, VendorKey>(
        "select id, name, owner_email, handle, status from tenants",
    )
    .fetch_all(p)
    .await)?)
}

/// `(lowercased name, owner e-mail)` of every merchant, to spot re-imported vendors.
/// Lowercasing happens here, not in SQL: SQLite's `lower()` only folds ASCII.
pub async fn merchant_keys(db: &Db) -> StoreResult<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = dispatch_write!(db, p => sqlx::query_as("select name, owner_email from tenants")
        .fetch_all(p)
        .await)?;
    Ok(rows
        .into_iter()
        .map(|(n, e)| (n.to_lowercase(), e))
        .collect())
}

/// Sets a merchant's status (suspend / reactivate). Errors: `NotFound`.
pub async fn set_status(
    db: &Db,
    actor: &Actor,
    id: Uuid,
    status: MerchantStatus,
) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    let before: Option<String> = dispatch_tx!(&mut tx, c => sqlx::query_scalar("select status from tenants where id = $1")
        .bind(id)
        .fetch_optional(&mut **c)
        .await)?;
    let before = before.ok_or(StoreError::NotFound)?;
    exec_tx!(&mut tx, c => sqlx::query("update tenants set status = $2, updated_at = $3 where id = $1")
        .bind(id)
        .bind(status.as_str())
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
    let action = if status == MerchantStatus::Suspended {
        "merchant.suspended"
    } else {
        "merchant.status_changed"
    };
    audit::record(
        &mut tx,
        Some(id),
        actor,
        Change::new(action, "merchant", id)
            .before(serde_json::json!({ "status": before }))
            .after(serde_json::json!({ "status": status.as_str() })),
    )
    .await?;
    super::events::emit_access_changed(&mut tx, id, "merchant_status_changed", None).await?;
    tx.commit().await
}

/// The minimum the request pipeline needs about a resolved tenant.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantRef {
    pub id: Uuid,
    pub name: String,
    pub handle: Option<String>,
    pub status: String,
    pub theme_id: Option<String>,
    pub theme_settings: String,
    pub currency: String,
    pub storefront_ready: bool,
}

const TENANT_REF: &str = "select t.id, t.name, t.handle, t.status, t.theme_id, t.theme_settings, t.currency, t.storefront_ready from tenants t";

/// Finds the tenant whose platform subdomain (handle) is `handle`.
pub async fn tenant_by_handle(db: &Db, handle: &str) -> StoreResult<Option<TenantRef>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, TenantRef>(sqlx::AssertSqlSafe(format!("{TENANT_REF} where t.handle = $1")))
        .bind(handle)
        .fetch_optional(p)
        .await)?,
    )
}

/// Finds the tenant that owns the custom domain `host` (exact match, A-label form), only
/// while the domain is verified or active: a pending or inactive claim routes nowhere.
pub async fn tenant_by_custom_domain(db: &Db, host: &str) -> StoreResult<Option<TenantRef>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, TenantRef>(sqlx::AssertSqlSafe(format!(
        "{TENANT_REF} join domains d on d.tenant_id = t.id where d.host = $1 and d.kind = 'custom' and d.status in ('verified', 'active')"
    )))
    .bind(host)
    .fetch_optional(p)
    .await)?,
    )
}

/// Finds a tenant by id.
pub async fn tenant_by_id(db: &Db, id: Uuid) -> StoreResult<Option<TenantRef>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, TenantRef>(sqlx::AssertSqlSafe(format!("{TENANT_REF} where t.id = $1")))
        .bind(id)
        .fetch_optional(p)
        .await)?,
    )
}

/// A merchant's domains (admin view), platform subdomain first.
pub async fn list_domains(db: &Db, tenant: Uuid) -> StoreResult<Vec<DomainRow>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, DomainRow>(sqlx::AssertSqlSafe(format!(
        "select {DOMAIN_COLS} from domains where tenant_id = $1 order by case when kind = 'subdomain' then 0 else 1 end, created_at, id"
    )))
    .bind(tenant)
    .fetch_all(p)
    .await)?,
    )
}

/// What a merchant uses of its plan's limits.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Usage {
    pub products: i64,
    /// Members (staff seats), owner included.
    pub staff: i64,
    pub orders: i64,
    pub domains: i64,
}

/// Counts a merchant's products, members, orders and domains (platform read).
pub async fn usage(db: &Db, tenant: Uuid) -> StoreResult<Usage> {
    let count = |sql: &'static str| async move {
        let n: i64 = dispatch!(db, p => sqlx::query_scalar(sql).bind(tenant).fetch_one(p).await)?;
        Ok::<i64, StoreError>(n)
    };
    Ok(Usage {
        products: count("select count(*) from products where tenant_id = $1").await?,
        staff: count("select count(*) from memberships where tenant_id = $1").await?,
        orders: count("select count(*) from orders where tenant_id = $1").await?,
        domains: count("select count(*) from domains where tenant_id = $1").await?,
    })
}

/// Every provisioning run of a merchant, newest first.
pub async fn provisioning_runs(
    db: &Db,
    tenant: Uuid,
) -> StoreResult<Vec<super::provisioning::RunRow>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, super::provisioning::RunRow>(
        "select * from provisioning_runs where tenant_id = $1 order by created_at desc, id desc",
    )
    .bind(tenant)
    .fetch_all(p)
    .await)?,
    )
}

/// `(status, count)` of all merchants.
pub async fn merchant_status_counts(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    Ok(dispatch!(db, p => sqlx::query_as::<_, (String, i64)>(
        "select status, count(*) from tenants group by status order by status",
    )
    .fetch_all(p)
    .await)?)
}

/// `(status, duration_ms, created_at)` of provisioning runs created since `since` (µs).
pub async fn runs_since(db: &Db, since: i64) -> StoreResult<Vec<(String, Option<i64>, i64)>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, (String, Option<i64>, i64)>(
        "select status, duration_ms, created_at from provisioning_runs where created_at >= $1",
    )
    .bind(since)
    .fetch_all(p)
    .await)?,
    )
}

/// `(status, count)` of the job queue.
pub async fn job_status_counts(db: &Db) -> StoreResult<Vec<(String, i64)>> {
    Ok(dispatch!(db, p => sqlx::query_as::<_, (String, i64)>(
        "select status, count(*) from jobs group by status order by status",
    )
    .fetch_all(p)
    .await)?)
}

/// A stored bulk vendor import (see migration 0008).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VendorImportRow {
    pub id: Uuid,
    pub created_by: Option<Uuid>,
    pub created_by_label: String,
    pub file_name: Option<String>,
    pub theme_id: String,
    pub plan_id: String,
    /// JSON array of the input's header cells.
    pub header: String,
    pub total_rows: i64,
    pub created_count: i64,
    pub failed_count: i64,
    /// JSON array of created merchants.
    pub created: String,
    /// JSON array of failed rows with their original cells.
    pub failed: String,
    pub created_at: i64,
}

/// Stores an import report and its audit entry.
pub async fn insert_vendor_import(db: &Db, actor: &Actor, r: &VendorImportRow) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query(
        "insert into vendor_imports (id, created_by, created_by_label, file_name, theme_id, plan_id, header,
            total_rows, created_count, failed_count, created, failed, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(r.id)
    .bind(r.created_by)
    .bind(&r.created_by_label)
    .bind(&r.file_name)
    .bind(&r.theme_id)
    .bind(&r.plan_id)
    .bind(&r.header)
    .bind(r.total_rows)
    .bind(r.created_count)
    .bind(r.failed_count)
    .bind(&r.created)
    .bind(&r.failed)
    .bind(r.created_at)
    .execute(&mut **c)
    .await)?;
    audit::record(
        &mut tx,
        None,
        actor,
        Change::new("vendor_import.completed", "vendor_import", r.id).after(serde_json::json!({
            "total_rows": r.total_rows, "created": r.created_count, "failed": r.failed_count,
            "theme": r.theme_id, "plan": r.plan_id,
        })),
    )
    .await?;
    tx.commit().await
}

/// One stored vendor import.
pub async fn get_vendor_import(db: &Db, id: Uuid) -> StoreResult<Option<VendorImportRow>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, VendorImportRow>("select * from vendor_imports where id = $1")
        .bind(id)
        .fetch_optional(p)
        .await)?,
    )
}

/// The newest vendor imports.
pub async fn list_vendor_imports(db: &Db, limit: i64) -> StoreResult<Vec<VendorImportRow>> {
    Ok(dispatch!(db, p => sqlx::query_as::<_, VendorImportRow>(
        "select * from vendor_imports order by created_at desc, id desc limit $1",
    )
    .bind(limit)
    .fetch_all(p)
    .await)?)
}

/// `(id, status)` of merchants created in `[from, to]` (µs): the import report filters
/// them by the ids it created.
pub async fn statuses_created_between(
    db: &Db,
    from: i64,
    to: i64,
) -> StoreResult<Vec<(Uuid, String)>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, (Uuid, String)>(
        "select id, status from tenants where created_at >= $1 and created_at <= $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(p)
    .await)?,
    )
}

/// A theme's stored state: enabled flag and, for uploaded themes, the archive.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ThemeRow {
    pub id: String,
    pub enabled: bool,
    pub archive: Option<Vec<u8>>,
    pub updated_at: i64,
}

/// Every stored theme row.
pub async fn theme_rows(db: &Db) -> StoreResult<Vec<ThemeRow>> {
    Ok(dispatch_write!(db, p => sqlx::query_as::<_, ThemeRow>(
        "select id, enabled, archive, updated_at from platform_themes order by id",
    )
    .fetch_all(p)
    .await)?)
}

/// Stores (or replaces) an uploaded theme's archive, enabled.
pub async fn save_theme_archive(
    db: &Db,
    actor: &Actor,
    id: &str,
    name: &str,
    archive: &[u8],
) -> StoreResult<()> {
    let now = now_micros();
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query(
        "insert into platform_themes (id, enabled, archive, created_at, updated_at) values ($1, true, $2, $3, $3)
         on conflict (id) do update set archive = excluded.archive, enabled = true, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(archive)
    .bind(now)
    .execute(&mut **c)
    .await)?;
    audit::record(
        &mut tx,
        None,
        actor,
        Change::new("theme.uploaded", "theme", id)
            .after(serde_json::json!({ "name": name, "bytes": archive.len() })),
    )
    .await?;
    tx.commit().await
}

/// Records a theme's enabled flag (built-in or uploaded).
pub async fn set_theme_enabled(db: &Db, actor: &Actor, id: &str, enabled: bool) -> StoreResult<()> {
    let now = now_micros();
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query(
        "insert into platform_themes (id, enabled, archive, created_at, updated_at) values ($1, $2, null, $3, $3)
         on conflict (id) do update set enabled = excluded.enabled, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(enabled)
    .bind(now)
    .execute(&mut **c)
    .await)?;
    audit::record(
        &mut tx,
        None,
        actor,
        Change::new(
            if enabled {
                "theme.enabled"
            } else {
                "theme.disabled"
            },
            "theme",
            id,
        )
        .after(serde_json::json!({ "enabled": enabled })),
    )
    .await?;
    tx.commit().await
}

// ---- custom domains: the cross-tenant side (see store::domains for the tenant side) ----

use super::domains::DOMAIN_COLS;
pub use super::domains::DomainRow;

/// True when a store other than `tenant` holds `host` verified or active (the claim a
/// new pending record may not contest).
pub async fn host_claimed_elsewhere(db: &Db, host: &str, tenant: Uuid) -> StoreResult<bool> {
    let n: i64 = dispatch_write!(db, p => sqlx::query_scalar(
        "select count(*) from domains where host = $1 and tenant_id <> $2 and status in ('verified', 'active')",
    )
    .bind(host)
    .bind(tenant)
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}

/// Any tenant's domain by id (domain worker, admin).
pub async fn domain_by_id(db: &Db, id: Uuid) -> StoreResult<Option<DomainRow>> {
    Ok(
        dispatch_write!(db, p => sqlx::query_as::<_, DomainRow>(sqlx::AssertSqlSafe(format!(
        "select {DOMAIN_COLS} from domains where id = $1"
    )))
    .bind(id)
    .fetch_optional(p)
    .await)?,
    )
}

/// Claims up to `limit` custom domains whose `next_check_at` is due, pushing it
/// `lease_secs` ahead (the lease: a worker that dies leaves the row due again then).
pub async fn claim_due_domains(
    db: &Db,
    limit: i64,
    lease_secs: i64,
) -> StoreResult<Vec<DomainRow>> {
    let now = now_micros();
    let lease = now + lease_secs * 1_000_000;
    // A read first: an idle poll never takes SQLite's single writer.
    let due: i64 = dispatch!(db, p => sqlx::query_scalar(
        "select count(*) from domains where kind = 'custom' and next_check_at <= $1",
    )
    .bind(now)
    .fetch_one(p)
    .await)?;
    if due == 0 {
        return Ok(vec![]);
    }
    // The statements differ only by `for update skip locked`, which SQLite lacks (its
    // single writer serializes claims).
    let rows = match db {
        Db::Sqlite { write, .. } => {
            sqlx::query_as::<_, DomainRow>(sqlx::AssertSqlSafe(format!(
                "update domains set next_check_at = $2
                 where id in (select id from domains where kind = 'custom' and next_check_at <= $1
                              order by next_check_at limit $3)
                 returning {DOMAIN_COLS}"
            )))
            .bind(now)
            .bind(lease)
            .bind(limit)
            .fetch_all(write)
            .await?
        }
        Db::Pg { platform: pool, .. } => {
            sqlx::query_as::<_, DomainRow>(sqlx::AssertSqlSafe(format!(
                "update domains set next_check_at = $2
                 where id in (select id from domains where kind = 'custom' and next_check_at <= $1
                              order by next_check_at limit $3 for update skip locked)
                 returning {DOMAIN_COLS}"
            )))
            .bind(now)
            .bind(lease)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(rows)
}

/// The result of one DNS check of a domain, to be recorded with [`record_domain_check`].
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// New status (`pending`, `verified`, `active`, `inactive`).
    pub status: &'static str,
    /// JSON of the findings.
    pub check_result: String,
    pub next_check_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub failing_since: Option<i64>,
    /// Audit action when the status changes (`domain.verified`, `domain.deactivated`, …).
    pub audit_action: Option<&'static str>,
    /// An e-mail job payload (JSON `EmailMessage`) to enqueue with the change.
    pub email: Option<String>,
}

/// Records a check: the new status and findings, the audit entry of a status change and
/// the owner's e-mail, in one transaction. Errors: `Conflict { host }` when the domain
/// would become verified while another store holds it (the partial unique index).
pub async fn record_domain_check(db: &Db, d: &DomainRow, o: &CheckOutcome) -> StoreResult<()> {
    let now = now_micros();
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query(
        "update domains set status = $2, verified = $3, check_result = $4, last_checked_at = $5, checks = checks + 1,
             next_check_at = $6, verified_at = $7, failing_since = $8, updated_at = $5
         where id = $1",
    )
    .bind(d.id)
    .bind(o.status)
    .bind(matches!(o.status, "verified" | "active"))
    .bind(&o.check_result)
    .bind(now)
    .bind(o.next_check_at)
    .bind(o.verified_at)
    .bind(o.failing_since)
    .execute(&mut **c)
    .await)
    .map_err(|e| StoreError::on_unique(e, &[("host", "host")]))?;
    if let Some(action) = o.audit_action {
        audit::record(
            &mut tx,
            Some(d.tenant_id),
            &Actor::system("domain worker"),
            Change::new(action, "domain", d.id)
                .before(serde_json::json!({ "host": d.host, "status": d.status }))
                .after(serde_json::json!({ "host": d.host, "status": o.status })),
        )
        .await?;
    }
    if let Some(payload) = &o.email {
        super::jobs::enqueue_tx(
            &mut tx,
            super::jobs::NewJob {
                kind: "email",
                tenant_id: Some(d.tenant_id),
                payload: payload.clone(),
                dedupe_key: Some(format!("domain:{}:{}:{}", d.id, o.status, now)),
                max_attempts: 8,
            },
        )
        .await?;
    }
    tx.commit().await
}

/// Stores a newly issued certificate (PEM chain, private key sealed) and makes the domain
/// `active`; `next_check_at` is the next re-check or renewal.
#[allow(clippy::too_many_arguments)]
pub async fn store_certificate(
    db: &Db,
    d: &DomainRow,
    cert_pem: &str,
    key_sealed: &str,
    not_after: i64,
    next_check_at: i64,
    renewal: bool,
) -> StoreResult<()> {
    let now = now_micros();
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query(
        "update domains set status = 'active', cert_pem = $2, cert_key_sealed = $3, cert_not_after = $4,
             cert_issued_at = $5, cert_error = null, cert_attempts = 0, acme_token = null, acme_key_auth = null,
             next_check_at = $6, updated_at = $5
         where id = $1 and status in ('verified', 'active')",
    )
    .bind(d.id)
    .bind(cert_pem)
    .bind(key_sealed)
    .bind(not_after)
    .bind(now)
    .bind(next_check_at)
    .execute(&mut **c)
    .await)?;
    audit::record(
        &mut tx,
        Some(d.tenant_id),
        &Actor::system("domain worker"),
        Change::new(
            if renewal {
                "domain.certificate_renewed"
            } else {
                "domain.certificate_issued"
            },
            "domain",
            d.id,
        )
        .after(serde_json::json!({ "host": d.host, "not_after": not_after })),
    )
    .await?;
    tx.commit().await
}

/// Records a failed ACME attempt (the CA's message) and when to try again.
pub async fn record_certificate_error(
    db: &Db,
    id: Uuid,
    error: &str,
    next_check_at: i64,
) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query(
        "update domains set cert_error = $2, cert_attempts = cert_attempts + 1, acme_token = null, acme_key_auth = null,
             next_check_at = $3, updated_at = $4 where id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(next_check_at)
    .bind(now_micros())
    .execute(p)
    .await)?;
    Ok(())
}

/// Publishes (or clears) the HTTP-01 answer for a domain, so any node's HTTP listener can
/// serve `/.well-known/acme-challenge/<token>`.
pub async fn set_acme_challenge(
    db: &Db,
    id: Uuid,
    token: Option<&str>,
    key_authorization: Option<&str>,
) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query("update domains set acme_token = $2, acme_key_auth = $3 where id = $1")
        .bind(id)
        .bind(token)
        .bind(key_authorization)
        .execute(p)
        .await)?;
    Ok(())
}

/// The key authorization for an HTTP-01 `token` requested on `host`, if one is pending.
pub async fn acme_key_authorization(
    db: &Db,
    host: &str,
    token: &str,
) -> StoreResult<Option<String>> {
    Ok(dispatch_write!(db, p => sqlx::query_scalar(
        "select acme_key_auth from domains where acme_token = $1 and host = $2 and status in ('verified', 'active')",
    )
    .bind(token)
    .bind(host)
    .fetch_optional(p)
    .await)?
    .flatten())
}

/// A stored certificate of an active domain.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CertRow {
    pub host: String,
    pub cert_pem: String,
    pub cert_key_sealed: String,
    pub cert_not_after: i64,
    pub updated_at: i64,
}

/// Every certificate of an active custom domain (the TLS listener's store).
pub async fn live_certificates(db: &Db) -> StoreResult<Vec<CertRow>> {
    Ok(dispatch_write!(db, p => sqlx::query_as::<_, CertRow>(
        "select host, cert_pem, cert_key_sealed, cert_not_after, updated_at from domains
         where status = 'active' and cert_pem is not null and cert_key_sealed is not null and cert_not_after is not null",
    )
    .fetch_all(p)
    .await)?)
}

/// A custom domain of the admin list, with its store.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AdminDomainRow {
    #[sqlx(flatten)]
    pub domain: DomainRow,
    pub tenant_name: String,
    pub tenant_handle: Option<String>,
}

/// Every custom domain, newest first, optionally of one status. Returns `(page, total)`.
pub async fn list_custom_domains(
    db: &Db,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<(Vec<AdminDomainRow>, i64)> {
    let cols = DOMAIN_COLS
        .split(", ")
        .map(|c| format!("d.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = dispatch_write!(db, p => sqlx::query_as::<_, AdminDomainRow>(sqlx::AssertSqlSafe(format!(
        "select {cols}, t.name as tenant_name, t.handle as tenant_handle from domains d join tenants t on t.id = d.tenant_id
         where d.kind = 'custom' and ($1 is null or d.status = $1)
         order by d.created_at desc, d.id desc limit $2 offset $3"
    )))
    .bind(status)
    .bind(limit)
    .bind(offset)
    .fetch_all(p)
    .await)?;
    let total: i64 = dispatch_write!(db, p => sqlx::query_scalar(
        "select count(*) from domains where kind = 'custom' and ($1 is null or status = $1)",
    )
    .bind(status)
    .fetch_one(p)
    .await)?;
    Ok((rows, total))
}

/// Makes a domain due for the worker now ("Check now" from the admin, or after a change).
pub async fn schedule_domain_check(db: &Db, id: Uuid) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query("update domains set next_check_at = $2 where id = $1 and kind = 'custom'")
        .bind(id)
        .bind(now_micros())
        .execute(p)
        .await)?;
    Ok(())
}

/// An admin revokes a custom domain: it stops routing at once, its certificate is dropped
/// and nothing is scheduled (the owner may add it again). Errors: `NotFound`.
pub async fn revoke_domain(db: &Db, actor: &Actor, id: Uuid) -> StoreResult<DomainRow> {
    let d = domain_by_id(db, id)
        .await?
        .filter(|d| d.kind == "custom")
        .ok_or(StoreError::NotFound)?;
    let mut tx = db.begin().await?;
    exec_tx!(&mut tx, c => sqlx::query(
        "update domains set status = 'inactive', verified = false, cert_pem = null, cert_key_sealed = null,
             cert_not_after = null, acme_token = null, acme_key_auth = null, next_check_at = null, updated_at = $2
         where id = $1",
    )
    .bind(id)
    .bind(now_micros())
    .execute(&mut **c)
    .await)?;
    audit::record(
        &mut tx,
        Some(d.tenant_id),
        actor,
        Change::new("domain.revoked", "domain", id)
            .before(serde_json::json!({ "host": d.host, "status": d.status }))
            .after(serde_json::json!({ "host": d.host, "status": "inactive" })),
    )
    .await?;
    tx.commit().await?;
    domain_by_id(db, id).await?.ok_or(StoreError::NotFound)
}

/// Certificates of active domains that expire before `before` (µs).
pub async fn certificates_expiring_before(db: &Db, before: i64) -> StoreResult<i64> {
    Ok(dispatch!(db, p => sqlx::query_scalar(
        "select count(*) from domains where status = 'active' and cert_not_after is not null and cert_not_after < $1",
    )
    .bind(before)
    .fetch_one(p)
    .await)?)
}

/// The sealed credentials of the platform's ACME account at `directory_url`.
pub async fn acme_account(db: &Db, directory_url: &str) -> StoreResult<Option<String>> {
    Ok(dispatch_write!(db, p => sqlx::query_scalar(
        "select credentials_sealed from acme_accounts where directory_url = $1",
    )
    .bind(directory_url)
    .fetch_optional(p)
    .await)?)
}

/// Keeps the platform's ACME account credentials (sealed); the first writer wins.
pub async fn save_acme_account(db: &Db, directory_url: &str, sealed: &str) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query(
        "insert into acme_accounts (directory_url, credentials_sealed, created_at) values ($1, $2, $3)
         on conflict (directory_url) do nothing",
    )
    .bind(directory_url)
    .bind(sealed)
    .bind(now_micros())
    .execute(p)
    .await)?;
    Ok(())
}

/// Sets when the domain worker looks at a domain next (µs).
pub async fn reschedule_domain(db: &Db, id: Uuid, at: i64) -> StoreResult<()> {
    exec_write!(db, p => sqlx::query("update domains set next_check_at = $2 where id = $1")
        .bind(id)
        .bind(at)
        .execute(p)
        .await)?;
    Ok(())
}

/// True when `host` is an active custom domain (Caddy's on-demand TLS `ask`).
pub async fn active_custom_domain(db: &Db, host: &str) -> StoreResult<bool> {
    let n: i64 = dispatch!(db, p => sqlx::query_scalar(
        "select count(*) from domains where host = $1 and kind = 'custom' and status = 'active'",
    )
    .bind(host)
    .fetch_one(p)
    .await)?;
    Ok(n > 0)
}

/// One feed source in the system-wide monitor (`GET /api/v1/admin/marketplace/import-jobs`).
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FeedMonitorRow {
    pub merchant_id: Uuid,
    pub merchant_name: String,
    pub source_id: Uuid,
    pub marketplace: String,
    pub schedule: String,
    pub enabled: bool,
    /// `never`, `ok`, `not_modified` or `failed`.
    pub last_status: String,
    pub last_error: Option<String>,
    /// Unix microseconds.
    pub last_run_at: Option<i64>,
    pub next_run_at: Option<i64>,
    /// Counts of the newest run of the source.
    pub items_total: Option<i64>,
    pub items_with_errors: Option<i64>,
    pub items_changed: Option<i64>,
    /// Staged items of the source.
    pub staged_items: i64,
}

/// Filters of the feed monitor and the mass trigger.
#[derive(Debug, Clone, Default)]
pub struct FeedSourceFilter {
    /// `never`, `ok`, `not_modified`, `failed`.
    pub status: Option<String>,
    pub marketplace: Option<String>,
    pub merchant_id: Option<Uuid>,
}

const FEED_FILTER: &str = "($1 is null or s.last_status = $1) and ($2 is null or s.marketplace = $2) and ($3 is null or s.tenant_id = $3)";

/// Cross-tenant: every store's feed sources with their last run, newest problems first
/// (failed, then by last run). At most `limit`.
pub async fn feed_monitor(
    db: &Db,
    f: &FeedSourceFilter,
    limit: i64,
) -> StoreResult<Vec<FeedMonitorRow>> {
    Ok(
        dispatch!(db, p => sqlx::query_as::<_, FeedMonitorRow>(sqlx::AssertSqlSafe(format!(
        "select s.tenant_id as merchant_id, t.name as merchant_name, s.id as source_id, s.marketplace, s.schedule, s.enabled,
                s.last_status, s.last_error, s.last_run_at, s.next_run_at,
                (select i.items_total from feed_imports i where i.source_id = s.id order by i.created_at desc limit 1) as items_total,
                (select i.items_with_errors from feed_imports i where i.source_id = s.id order by i.created_at desc limit 1) as items_with_errors,
                (select i.items_changed from feed_imports i where i.source_id = s.id order by i.created_at desc limit 1) as items_changed,
                (select count(*) from feed_items fi where fi.source_id = s.id) as staged_items
         from feed_sources s join tenants t on t.id = s.tenant_id
         where {FEED_FILTER}
         order by case when s.last_status = 'failed' then 0 else 1 end, s.last_run_at desc, s.id limit $4")))
        .bind(&f.status)
        .bind(&f.marketplace)
        .bind(f.merchant_id)
        .bind(limit)
        .fetch_all(p)
        .await)?,
    )
}

/// Job kind of a feed fetch (payload `{"source_id", "trigger"}`, the job's tenant set).
pub const FEED_FETCH_JOB: &str = "feed_fetch";

async fn enqueue_feed_fetch_tx(
    tx: &mut Tx,
    tenant: Uuid,
    source: Uuid,
    trigger: &str,
    key: &str,
) -> StoreResult<bool> {
    super::jobs::enqueue_tx(
        tx,
        super::jobs::NewJob {
            kind: FEED_FETCH_JOB,
            tenant_id: Some(tenant),
            payload: serde_json::json!({ "source_id": source, "trigger": trigger }).to_string(),
            dedupe_key: Some(format!("{FEED_FETCH_JOB}:{source}:{key}")),
            max_attempts: 3,
        },
    )
    .await
}

/// Cross-tenant mass trigger: queues a fetch job for every enabled source matching `f`,
/// with an audit entry, in one transaction. Returns how many were queued.
pub async fn trigger_feed_fetches(
    db: &Db,
    actor: &Actor,
    f: &FeedSourceFilter,
) -> StoreResult<usize> {
    let mut tx = db.begin().await?;
    let rows: Vec<(Uuid, Uuid)> = dispatch_tx!(&mut tx, c => sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "select s.tenant_id, s.id from feed_sources s where s.enabled and {FEED_FILTER}")))
        .bind(&f.status)
        .bind(&f.marketplace)
        .bind(f.merchant_id)
        .fetch_all(&mut **c)
        .await)?;
    let key = now_micros().to_string();
    let mut n = 0;
    for (tenant, source) in &rows {
        if enqueue_feed_fetch_tx(&mut tx, *tenant, *source, "admin", &key).await? {
            n += 1;
        }
    }
    audit::record(
        &mut tx,
        None,
        actor,
        Change {
            action: "feed_fetches.triggered",
            resource_type: "feed_source",
            after: Some(serde_json::json!({ "queued": n, "status": f.status, "marketplace": f.marketplace, "merchant_id": f.merchant_id })),
            ..Default::default()
        },
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Queues one fetch job for a source (the merchant's `?background=true`).
pub async fn queue_feed_fetch(
    db: &Db,
    tenant: Uuid,
    source: Uuid,
    trigger: &str,
) -> StoreResult<()> {
    let mut tx = db.begin().await?;
    enqueue_feed_fetch_tx(&mut tx, tenant, source, trigger, &now_micros().to_string()).await?;
    tx.commit().await
}

/// Cross-tenant scheduler tick: for every enabled hourly/daily source whose `next_run_at`
/// has come, queues a fetch job (deduplicated by the slot, so several nodes queue it once)
/// and moves `next_run_at` one period on, in one transaction. Returns how many were queued.
pub async fn schedule_feed_fetches(db: &Db, now: i64) -> StoreResult<usize> {
    let mut tx = db.begin().await?;
    let due: Vec<(Uuid, Uuid, String, i64)> = dispatch_tx!(&mut tx, c => sqlx::query_as(
        "select tenant_id, id, schedule, next_run_at from feed_sources
         where enabled and schedule <> 'manual' and next_run_at is not null and next_run_at <= $1 limit 500")
        .bind(now)
        .fetch_all(&mut **c)
        .await)?;
    let mut n = 0;
    for (tenant, source, schedule, slot) in &due {
        if enqueue_feed_fetch_tx(&mut tx, *tenant, *source, "schedule", &slot.to_string()).await? {
            n += 1;
        }
        let period: i64 = if schedule == "hourly" { 3_600 } else { 86_400 } * 1_000_000;
        exec_tx!(&mut tx, c => sqlx::query("update feed_sources set next_run_at = $2 where id = $1")
            .bind(*source)
            .bind(now + period)
            .execute(&mut **c)
            .await)?;
    }
    tx.commit().await?;
    Ok(n)
}
