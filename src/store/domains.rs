//! Custom domains of one tenant (methods on [`TenantDb`]): add, list, get, remove.
//!
//! The cross-tenant side of domains (host → tenant resolution, the claim check against
//! other stores, the domain worker's queue, certificates, the admin list) lives in
//! [`super::platform`]. Lifecycle: `pending → verified → active`, `inactive` after a
//! failed re-verification outlived its grace period or an admin revoked it (see
//! ARCHITECTURE.md, "Domain lifecycle").

use super::audit::{self, Actor, Change};
use super::{StoreError, StoreResult, TenantDb, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx};
use serde::Serialize;
use uuid::Uuid;

/// The columns of a domain row that may leave the store (no key, no challenge secret).
pub(crate) const DOMAIN_COLS: &str = "id, tenant_id, host, unicode_host, kind, verified, status, verify_token, created_at, updated_at, last_checked_at, check_result, checks, next_check_at, verified_at, failing_since, cert_not_after, cert_issued_at, cert_error, cert_attempts";

/// A domain attached to a merchant, as stored (without certificate material).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DomainRow {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: Uuid,
    /// A-label (punycode) form.
    pub host: String,
    /// The Unicode form when the domain is an IDN.
    pub unicode_host: Option<String>,
    /// `subdomain` (platform) or `custom`.
    pub kind: String,
    /// True while the domain is `verified` or `active` (routes to the store).
    pub verified: bool,
    /// `pending`, `verified`, `active` or `inactive`.
    pub status: String,
    /// Token expected in the `_souk-challenge` TXT record.
    #[serde(skip)]
    pub verify_token: Option<String>,
    /// Unix microseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub last_checked_at: Option<i64>,
    /// JSON of the last check's findings (see `custom_domains::CheckReport`).
    #[serde(skip)]
    pub check_result: Option<String>,
    /// Number of DNS checks so far.
    pub checks: i64,
    pub next_check_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub failing_since: Option<i64>,
    pub cert_not_after: Option<i64>,
    pub cert_issued_at: Option<i64>,
    pub cert_error: Option<String>,
    pub cert_attempts: i64,
}

impl TenantDb {
    /// Records a pending custom domain with its verification token; the domain worker
    /// checks it at once (`next_check_at = now`). Errors: `Conflict { host }` when this
    /// store already has the domain.
    pub async fn add_custom_domain(
        &self,
        actor: &Actor,
        host: &crate::domain::CustomDomain,
        token: &str,
    ) -> StoreResult<DomainRow> {
        let id = new_id();
        let now = now_micros();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into domains (id, tenant_id, host, unicode_host, kind, verified, status, verify_token, created_at, updated_at, next_check_at)
             values ($1, $2, $3, $4, 'custom', false, 'pending', $5, $6, $6, $6)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(host.ascii().as_str())
        .bind(host.unicode())
        .bind(token)
        .bind(now)
        .execute(&mut **c)
        .await)
        .map_err(|e| StoreError::on_unique(e, &[("host", "host")]))?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("domain.added", "domain", id)
                .after(serde_json::json!({ "host": host.ascii().as_str(), "status": "pending" })),
        )
        .await?;
        tx.commit().await?;
        self.get_domain(id).await?.ok_or(StoreError::NotFound)
    }

    /// The store's domains (platform subdomain first, then custom ones oldest first).
    pub async fn list_domains(&self) -> StoreResult<Vec<DomainRow>> {
        Ok(
            crate::tenant_query!(self, write, p => sqlx::query_as::<_, DomainRow>(sqlx::AssertSqlSafe(format!(
            "select {DOMAIN_COLS} from domains where tenant_id = $1 order by case when kind = 'subdomain' then 0 else 1 end, created_at, id"
        )))
        .bind(self.tenant)
        .fetch_all(p)
        .await)?,
        )
    }

    /// One of the store's domains; `None` for another store's id (same as a missing one).
    pub async fn get_domain(&self, id: Uuid) -> StoreResult<Option<DomainRow>> {
        Ok(
            crate::tenant_query!(self, write, p => sqlx::query_as::<_, DomainRow>(sqlx::AssertSqlSafe(format!(
            "select {DOMAIN_COLS} from domains where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?,
        )
    }

    /// Removes a custom domain (its certificate goes with the row). Errors: `NotFound`
    /// (also for the platform subdomain, which cannot be removed).
    pub async fn remove_domain(&self, actor: &Actor, id: Uuid) -> StoreResult<DomainRow> {
        let before = self
            .get_domain(id)
            .await?
            .filter(|d| d.kind == "custom")
            .ok_or(StoreError::NotFound)?;
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query("delete from domains where tenant_id = $1 and id = $2 and kind = 'custom'")
            .bind(self.tenant)
            .bind(id)
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("domain.removed", "domain", id)
                .before(serde_json::json!({ "host": before.host, "status": before.status })),
        )
        .await?;
        tx.commit().await?;
        Ok(before)
    }
}
