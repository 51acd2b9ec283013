//! The merchant setup guide (onboarding wizard) state, uploaded store assets (the logo)
//! and pending product imports kept between a dry-run preview and its confirmation.
//! Methods on [`TenantDb`]: every statement binds the scope's tenant.

use super::audit::{self, Actor, Change};
use super::{StoreError, StoreResult, TenantDb, new_id, now_micros};
use crate::{dispatch_tx, exec_tx, tenant_exec, tenant_query};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// How long an uploaded CSV waits for its confirmation.
pub const PENDING_IMPORT_TTL_MICROS: i64 = 3_600_000_000;

/// The stored wizard state of one tenant.
#[derive(Debug, Clone, Default)]
pub struct OnboardingRow {
    /// JSON object `{step: "done" | "skipped"}`.
    pub steps: serde_json::Map<String, serde_json::Value>,
    /// JSON object `{step: {field: value}}` (never secrets).
    pub data: serde_json::Map<String, serde_json::Value>,
    /// The sealed card-provider secret key (see [`crate::crypto::SecretBox`]), if any.
    pub payment_secret: Option<String>,
    /// When the storefront was published (microseconds), `None` while in progress.
    pub published_at: Option<i64>,
    /// False when the tenant never opened the guide (no row yet).
    pub exists: bool,
}

#[derive(sqlx::FromRow)]
struct Row {
    steps: String,
    data: String,
    payment_secret: Option<String>,
    published_at: Option<i64>,
}

/// One change to the wizard, applied in one transaction over the stored state (so
/// concurrent auto-saves of different fields do not overwrite each other).
#[derive(Debug, Clone, Default)]
pub struct OnboardingPatch {
    /// The step the change belongs to.
    pub step: String,
    /// Fields merged into the step's saved values.
    pub values: serde_json::Map<String, serde_json::Value>,
    /// New status of the step (`done` or `skipped`), if any.
    pub mark: Option<String>,
    /// A newly sealed card-provider secret key, if any (replaces the stored one).
    pub payment_secret: Option<String>,
    /// New store name (the storefront's shop name), if changed.
    pub store_name: Option<String>,
    /// Theme settings merged into the tenant's (branding colors, fonts, logo, texts).
    pub theme_settings: serde_json::Map<String, serde_json::Value>,
    /// Marks the storefront published (first time kept).
    pub publish: bool,
}

fn obj(text: &str) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(text).unwrap_or_default()
}

impl TenantDb {
    /// The sealed card-provider (Stripe) secret key the setup guide stored, if any.
    pub async fn onboarding_payment_secret(&self) -> StoreResult<Option<String>> {
        let v: Option<Option<String>> = tenant_query!(self, read, p => sqlx::query_scalar(
            "select payment_secret from onboarding where tenant_id = $1")
            .bind(self.tenant)
            .fetch_optional(p)
            .await)?;
        Ok(v.flatten())
    }

    /// The tenant's wizard state (an empty, `exists: false` state when never opened).
    pub async fn get_onboarding(&self) -> StoreResult<OnboardingRow> {
        let row: Option<Row> = tenant_query!(self, read, p => sqlx::query_as::<_, Row>(
            "select steps, data, payment_secret, published_at from onboarding where tenant_id = $1")
            .bind(self.tenant)
            .fetch_optional(p)
            .await)?;
        Ok(match row {
            Some(r) => OnboardingRow {
                steps: obj(&r.steps),
                data: obj(&r.data),
                payment_secret: r.payment_secret,
                published_at: r.published_at,
                exists: true,
            },
            None => OnboardingRow::default(),
        })
    }

    /// Applies `patch` (creating the row on first save): merges the step's values and
    /// the theme settings, sets the mark, the sealed secret, the store name and the
    /// publication time, and writes an audit entry (`storefront.published` when
    /// publishing, else `onboarding.updated`, with `summary`), all in one transaction.
    /// The row is locked first, so concurrent patches apply one after the other.
    pub async fn patch_onboarding(
        &self,
        actor: &Actor,
        patch: &OnboardingPatch,
        summary: serde_json::Value,
    ) -> StoreResult<()> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into onboarding (tenant_id, steps, data, created_at, updated_at) values ($1, '{}', '{}', $2, $2)
             on conflict (tenant_id) do nothing")
            .bind(self.tenant)
            .bind(now)
            .execute(&mut **c)
            .await)?;
        // Takes the row lock (PostgreSQL) before reading; SQLite has one writer anyway.
        exec_tx!(&mut tx, c => sqlx::query("update onboarding set updated_at = $2 where tenant_id = $1")
            .bind(self.tenant)
            .bind(now)
            .execute(&mut **c)
            .await)?;
        let row: Row = dispatch_tx!(&mut tx, c => sqlx::query_as::<_, Row>(
            "select steps, data, payment_secret, published_at from onboarding where tenant_id = $1")
            .bind(self.tenant)
            .fetch_one(&mut **c)
            .await)?;
        let mut steps = obj(&row.steps);
        let mut data = obj(&row.data);
        if !patch.values.is_empty() {
            let entry = data
                .entry(patch.step.clone())
                .or_insert_with(|| serde_json::json!({}));
            if let Some(o) = entry.as_object_mut() {
                o.extend(patch.values.clone());
            }
        }
        if let Some(mark) = &patch.mark {
            steps.insert(patch.step.clone(), serde_json::Value::String(mark.clone()));
        }
        // The payment step's choice is mirrored into the checkout settings (same
        // transaction), from the merged values: a provider must have been chosen.
        if patch.step == "payments" && !patch.values.is_empty() {
            let field = |k: &str| {
                data.get("payments")
                    .and_then(|p| p.get(k))
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let provider = field("provider");
            if matches!(provider.as_str(), "manual" | "stripe") {
                let mirror = super::commerce::PaymentStepMirror {
                    provider,
                    manual_instructions: field("manual_instructions"),
                    cash_on_delivery: field("cash_on_delivery") == "true",
                };
                self.mirror_payment_step_tx(&mut tx, &mirror).await?;
            }
        }
        exec_tx!(&mut tx, c => sqlx::query(
            "update onboarding set steps = $2, data = $3, payment_secret = coalesce($4, payment_secret),
             published_at = case when $5 then coalesce(published_at, $6) else published_at end
             where tenant_id = $1")
            .bind(self.tenant)
            .bind(serde_json::Value::Object(steps).to_string())
            .bind(serde_json::Value::Object(data).to_string())
            .bind(patch.payment_secret.as_deref())
            .bind(patch.publish)
            .bind(now)
            .execute(&mut **c)
            .await)?;
        if let Some(name) = &patch.store_name {
            exec_tx!(&mut tx, c => sqlx::query("update tenants set name = $2, updated_at = $3 where id = $1")
                .bind(self.tenant)
                .bind(name)
                .bind(now)
                .execute(&mut **c)
                .await)?;
        }
        if !patch.theme_settings.is_empty() {
            let stored: String = dispatch_tx!(&mut tx, c => sqlx::query_scalar(
                "select theme_settings from tenants where id = $1")
                .bind(self.tenant)
                .fetch_one(&mut **c)
                .await)?;
            let mut settings = obj(&stored);
            settings.extend(patch.theme_settings.clone());
            exec_tx!(&mut tx, c => sqlx::query("update tenants set theme_settings = $2, updated_at = $3 where id = $1")
                .bind(self.tenant)
                .bind(serde_json::Value::Object(settings).to_string())
                .bind(now)
                .execute(&mut **c)
                .await)?;
        }
        let action = if patch.publish {
            "storefront.published"
        } else {
            "onboarding.updated"
        };
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new(action, "onboarding", self.tenant).after(summary),
        )
        .await?;
        tx.commit().await?;
        // The payment step may have changed the checkout settings.
        super::commerce::forget_checkout_config(Some(self.tenant));
        Ok(())
    }

    /// True while the storefront should show "coming soon": the guide was opened and the
    /// store is not published yet.
    pub async fn storefront_coming_soon(&self) -> StoreResult<bool> {
        let row: Option<Option<i64>> = tenant_query!(self, read, p => sqlx::query_scalar(
            "select published_at from onboarding where tenant_id = $1")
            .bind(self.tenant)
            .fetch_optional(p)
            .await)?;
        Ok(matches!(row, Some(None)))
    }

    /// Number of active (published) products.
    pub async fn count_active_products(&self) -> StoreResult<i64> {
        Ok(tenant_query!(self, read, p => sqlx::query_scalar(
            "select count(*) from products where tenant_id = $1 and status = 'active'")
            .bind(self.tenant)
            .fetch_one(p)
            .await)?)
    }

    /// Which of `handles` already name a product of the tenant (for import previews).
    pub async fn existing_product_handles(
        &self,
        handles: &[String],
    ) -> StoreResult<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in handles.chunks(500) {
            let rows: Vec<String> = tenant_query!(self, read, p => {
                let mut qb = sqlx::QueryBuilder::new("select handle from products where tenant_id = ");
                qb.push_bind(self.tenant).push(" and handle in (");
                let mut sep = qb.separated(", ");
                for h in chunk {
                    sep.push_bind(h.as_str());
                }
                qb.push(")");
                qb.build_query_scalar::<String>().fetch_all(p).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Which of `skus` a variant of the tenant already carries, with the handle of the
    /// product that owns it (`sku → handle`; for import previews). One query per 500 SKUs.
    pub async fn sku_owners(&self, skus: &[String]) -> StoreResult<HashMap<String, String>> {
        let mut found = HashMap::new();
        for chunk in skus.chunks(500) {
            let rows: Vec<(String, String)> = tenant_query!(self, read, p => {
                let mut qb = sqlx::QueryBuilder::new(
                    "select v.sku, p.handle from variants v join products p on p.tenant_id = v.tenant_id and p.id = v.product_id where v.tenant_id = ",
                );
                qb.push_bind(self.tenant).push(" and v.sku in (");
                let mut sep = qb.separated(", ");
                for s in chunk {
                    sep.push_bind(s.as_str());
                }
                qb.push(")");
                qb.build_query_as::<(String, String)>().fetch_all(p).await
            })?;
            found.extend(rows);
        }
        Ok(found)
    }

    /// Stores an uploaded image of `kind` (e.g. `logo`), replacing the previous one of
    /// that kind, and audits `store_asset.uploaded`. Returns the new asset id.
    pub async fn put_store_asset(
        &self,
        actor: &Actor,
        kind: &str,
        content_type: &str,
        body: &[u8],
    ) -> StoreResult<Uuid> {
        let id = new_id();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query("delete from store_assets where tenant_id = $1 and kind = $2")
            .bind(self.tenant)
            .bind(kind)
            .execute(&mut **c)
            .await)?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into store_assets (id, tenant_id, kind, content_type, body, created_at) values ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(self.tenant)
            .bind(kind)
            .bind(content_type)
            .bind(body)
            .bind(now_micros())
            .execute(&mut **c)
            .await)?;
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("store_asset.uploaded", "store_asset", id).after(
                serde_json::json!({ "kind": kind, "content_type": content_type, "bytes": body.len() }),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// An uploaded asset: `(content type, bytes)`.
    pub async fn get_store_asset(&self, id: Uuid) -> StoreResult<Option<(String, Vec<u8>)>> {
        Ok(
            tenant_query!(self, read, p => sqlx::query_as::<_, (String, Vec<u8>)>(
            "select content_type, body from store_assets where tenant_id = $1 and id = $2")
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(p)
            .await)?,
        )
    }

    /// Keeps an uploaded file for a later confirmation (expired ones of the tenant are
    /// dropped first). Returns its id.
    pub async fn put_pending_import(
        &self,
        kind: &str,
        body: &[u8],
        file_name: Option<&str>,
    ) -> StoreResult<Uuid> {
        let now = now_micros();
        tenant_exec!(self, p => sqlx::query("delete from pending_imports where tenant_id = $1 and expires_at < $2")
            .bind(self.tenant)
            .bind(now)
            .execute(p)
            .await)?;
        let id = Uuid::new_v4();
        tenant_exec!(self, p => sqlx::query(
            "insert into pending_imports (id, tenant_id, kind, body, created_at, expires_at, file_name) values ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(self.tenant)
            .bind(kind)
            .bind(body)
            .bind(now)
            .bind(now + PENDING_IMPORT_TTL_MICROS)
            .bind(file_name)
            .execute(p)
            .await)?;
        Ok(id)
    }

    /// Takes (reads and deletes) a pending upload of `kind`: its bytes and file name.
    /// Errors: `NotFound` when
    /// unknown, of another tenant, already used or expired.
    pub async fn take_pending_import(
        &self,
        kind: &str,
        id: Uuid,
    ) -> StoreResult<(Vec<u8>, Option<String>)> {
        let row: Option<(Vec<u8>, i64, Option<String>)> = tenant_query!(self, write, p => sqlx::query_as::<_, (Vec<u8>, i64, Option<String>)>(
            "delete from pending_imports where tenant_id = $1 and id = $2 and kind = $3 returning body, expires_at, file_name")
            .bind(self.tenant)
            .bind(id)
            .bind(kind)
            .fetch_optional(p)
            .await)?;
        match row {
            Some((body, exp, name)) if exp >= now_micros() => Ok((body, name)),
            _ => Err(StoreError::NotFound),
        }
    }
}
