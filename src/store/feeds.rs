//! Marketplace feed storage: sources, their files (one per language), staging runs and
//! the staging area of feed items, always through [`TenantDb`].
//!
//! A staged item is keyed by `(source, language, feed id)`. A re-import updates it in place
//! when its normalised content changed (`hash`), records which fields changed, and marks
//! items missing from a completed run as disappeared. A published item points at its
//! product (`product_id`) and remembers the content last applied to it
//! (`published_hash`) and the merchant's overrides.

use super::audit::{self, Actor, Change};
use super::{StoreError, StoreResult, TenantDb, Tx, events, fetch_in, new_id, now_micros};
use crate::import::feed::{FeedProduct, Issue};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx, tenant_exec, tenant_query};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// One file of a source: its language and URL (`null`: uploaded by the merchant), with
/// the outcome of its last fetch.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct FeedFile {
    pub language: String,
    pub url: Option<String>,
    /// `never`, `ok`, `not_modified` or `failed`.
    pub last_status: String,
    pub last_error: Option<String>,
    /// Unix microseconds.
    pub last_fetched_at: Option<i64>,
}

/// A feed source as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedSource {
    pub id: Uuid,
    /// `letzshop`, `google_merchant` or `generic`.
    pub marketplace: String,
    pub name: String,
    /// `manual`, `hourly` or `daily`.
    pub schedule: String,
    pub enabled: bool,
    /// The language whose items create products (others are translations).
    pub default_language: String,
    /// Whether an item that leaves the feed makes its product draft (never deleted).
    pub draft_on_disappear: bool,
    /// `never`, `ok`, `not_modified` or `failed` (of the last run of any file).
    pub last_status: String,
    pub last_error: Option<String>,
    pub last_run_at: Option<i64>,
    pub files: Vec<FeedFile>,
    pub created_at: i64,
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: Uuid,
    marketplace: String,
    name: String,
    schedule: String,
    enabled: bool,
    default_language: String,
    draft_on_disappear: bool,
    last_status: String,
    last_error: Option<String>,
    last_run_at: Option<i64>,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct FileRow {
    source_id: Uuid,
    language: String,
    url: Option<String>,
    last_status: String,
    last_error: Option<String>,
    last_fetched_at: Option<i64>,
}

const SOURCE_COLS: &str = "id, marketplace, name, schedule, enabled, default_language, draft_on_disappear, last_status, last_error, last_run_at, created_at";

/// A validated source to create (the web layer checks the enums and URLs).
#[derive(Debug, Clone)]
pub struct NewSource {
    pub marketplace: String,
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    pub default_language: String,
    pub draft_on_disappear: bool,
    /// `(language, url)`; `None` for a file uploaded by the merchant.
    pub files: Vec<(String, Option<String>)>,
}

/// A validated change to a source (the web layer checks the enums and URLs): `None`
/// keeps the field. `files`, when given, is the source's whole new set of files.
#[derive(Debug, Clone, Default)]
pub struct SourceChanges {
    pub marketplace: Option<String>,
    pub name: Option<String>,
    pub schedule: Option<String>,
    pub enabled: Option<bool>,
    pub draft_on_disappear: Option<bool>,
    /// `(language, url)`; `None` url: uploaded by the merchant.
    pub files: Option<Vec<(String, Option<String>)>>,
}

/// What a fetch needs of a file: where, and the validators of the previous answer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FetchTarget {
    pub url: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// One staging run as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedImport {
    pub id: Uuid,
    pub source_id: Uuid,
    pub language: String,
    /// `upload`, `fetch`, `schedule` or `admin`.
    pub trigger: String,
    /// `running`, `completed`, `failed` or `not_modified`.
    pub status: String,
    /// Detected format: `tsv`, `csv`, `semicolon`, `rss`, `atom`.
    pub format: Option<String>,
    pub items_total: i64,
    pub items_new: i64,
    pub items_changed: i64,
    pub items_unchanged: i64,
    pub items_disappeared: i64,
    pub items_with_errors: i64,
    /// Published products the run updated.
    pub products_updated: i64,
    /// JSON report: `file_warnings`, `refused` items (`{position, id, reason}`).
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// Why the run failed (file-level error: HTTP status, not a feed, too large…).
    pub error: Option<String>,
    pub actor_label: String,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ImportRow {
    id: Uuid,
    source_id: Uuid,
    language: String,
    trigger: String,
    status: String,
    format: Option<String>,
    items_total: i64,
    items_new: i64,
    items_changed: i64,
    items_unchanged: i64,
    items_disappeared: i64,
    items_with_errors: i64,
    products_updated: i64,
    report: Option<String>,
    error: Option<String>,
    actor_label: String,
    created_at: i64,
    finished_at: Option<i64>,
}

impl From<ImportRow> for FeedImport {
    fn from(r: ImportRow) -> Self {
        Self {
            id: r.id,
            source_id: r.source_id,
            language: r.language,
            trigger: r.trigger,
            status: r.status,
            format: r.format,
            items_total: r.items_total,
            items_new: r.items_new,
            items_changed: r.items_changed,
            items_unchanged: r.items_unchanged,
            items_disappeared: r.items_disappeared,
            items_with_errors: r.items_with_errors,
            products_updated: r.products_updated,
            report: r.report.and_then(|t| serde_json::from_str(&t).ok()),
            error: r.error,
            actor_label: r.actor_label,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

const IMPORT_COLS: &str = "id, source_id, language, trigger, status, format, items_total, items_new, items_changed, items_unchanged, items_disappeared, items_with_errors, products_updated, report, error, actor_label, created_at, finished_at";

/// What the merchant overrides on a published product; feed updates leave these alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Overrides {
    /// Minor units of the store currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compare_at_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    /// `active`, `draft` or `archived`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Stock; the feed's quantity/availability otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<i64>,
}

/// A staged item as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StagedItem {
    pub id: Uuid,
    pub source_id: Uuid,
    pub language: String,
    pub feed_id: String,
    /// `new`, `published`, `changed` (the feed changed since it was published), `errors`
    /// or `disappeared`.
    pub status: String,
    /// The normalised fields (the feed's values, before overrides).
    pub item: FeedProduct,
    /// Attributes as read: `{name: [values]}`.
    #[schema(value_type = Object)]
    pub raw: serde_json::Value,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
    /// Fields the last re-import changed.
    pub changed_fields: Vec<String>,
    pub import_id: Uuid,
    pub product_id: Option<Uuid>,
    pub overrides: Overrides,
    pub first_seen_at: i64,
    pub updated_at: i64,
    pub disappeared_at: Option<i64>,
    pub published_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: Uuid,
    source_id: Uuid,
    language: String,
    feed_id: String,
    raw: String,
    item: String,
    hash: String,
    errors: String,
    warnings: String,
    changed_fields: String,
    import_id: Uuid,
    product_id: Option<Uuid>,
    published_hash: Option<String>,
    overrides: String,
    first_seen_at: i64,
    updated_at: i64,
    disappeared_at: Option<i64>,
    published_at: Option<i64>,
}

const ITEM_COLS: &str = "id, source_id, language, feed_id, raw, item, hash, errors, warnings, changed_fields, import_id, product_id, published_hash, overrides, first_seen_at, updated_at, disappeared_at, published_at";

impl TryFrom<ItemRow> for StagedItem {
    type Error = StoreError;
    fn try_from(r: ItemRow) -> StoreResult<Self> {
        let errors: Vec<Issue> = super::from_json(&r.errors)?;
        let status = if r.disappeared_at.is_some() {
            "disappeared"
        } else if !errors.is_empty() {
            "errors"
        } else if r.product_id.is_none() {
            "new"
        } else if r.published_hash.as_deref() == Some(r.hash.as_str()) {
            "published"
        } else {
            "changed"
        };
        Ok(Self {
            id: r.id,
            source_id: r.source_id,
            language: r.language,
            feed_id: r.feed_id,
            status: status.into(),
            item: super::from_json(&r.item)?,
            raw: super::from_json(&r.raw)?,
            errors,
            warnings: super::from_json(&r.warnings)?,
            changed_fields: super::from_json(&r.changed_fields)?,
            import_id: r.import_id,
            product_id: r.product_id,
            overrides: super::from_json(&r.overrides)?,
            first_seen_at: r.first_seen_at,
            updated_at: r.updated_at,
            disappeared_at: r.disappeared_at,
            published_at: r.published_at,
        })
    }
}

/// Filters of the staging list.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    pub source_id: Option<Uuid>,
    pub language: Option<String>,
    /// `new`, `changed`, `published`, `errors`, `disappeared`.
    pub status: Option<String>,
    /// Case-insensitive substring of the title or feed id.
    pub q: Option<String>,
}

/// One item of a staging batch, ready to write.
#[derive(Debug, Clone)]
pub struct StageInput {
    pub item: FeedProduct,
    pub raw: serde_json::Value,
    pub errors: Vec<Issue>,
    pub warnings: Vec<Issue>,
}

/// What a staging batch did.
#[derive(Debug, Clone, Default)]
pub struct StageOutcome {
    pub new: i64,
    pub changed: i64,
    pub unchanged: i64,
    pub with_errors: i64,
    /// Items linked to a product whose content changed: `(item id, changed fields)`.
    pub published_changed: Vec<(Uuid, Vec<String>)>,
}

/// Counts that end a staging run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportCounts {
    pub items_total: i64,
    pub items_new: i64,
    pub items_changed: i64,
    pub items_unchanged: i64,
    pub items_with_errors: i64,
}

fn digest(item: &str, errors: &str) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(item.as_bytes());
    h.update([0]);
    h.update(errors.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Top-level fields of two JSON objects that differ.
fn changed_fields(old: &str, new: &serde_json::Value) -> Vec<String> {
    let old: serde_json::Value = serde_json::from_str(old).unwrap_or_default();
    let (Some(o), Some(n)) = (old.as_object(), new.as_object()) else {
        return vec!["item".into()];
    };
    n.iter()
        .filter(|(k, v)| o.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect()
}

#[derive(sqlx::FromRow)]
struct ExistingRow {
    id: Uuid,
    feed_id: String,
    hash: String,
    product_id: Option<Uuid>,
    disappeared_at: Option<i64>,
}

impl TenantDb {
    /// Creates a source with its files, its audit entry (`feed_source.created`) and a
    /// `feed_source.created` event, in one transaction.
    pub async fn create_feed_source(
        &self,
        actor: &Actor,
        new: &NewSource,
    ) -> StoreResult<FeedSource> {
        let mut tx = self.begin().await?;
        let id = self.create_feed_source_tx(&mut tx, actor, new).await?;
        tx.commit().await?;
        self.get_feed_source(id).await?.ok_or(StoreError::NotFound)
    }

    /// [`Self::create_feed_source`] inside the caller's transaction (the vendor import
    /// creates a merchant's first source together with the merchant). Returns its id.
    pub async fn create_feed_source_tx(
        &self,
        tx: &mut Tx,
        actor: &Actor,
        new: &NewSource,
    ) -> StoreResult<Uuid> {
        let id = new_id();
        let now = now_micros();
        exec_tx!(&mut *tx, c => sqlx::query(
            "insert into feed_sources (id, tenant_id, marketplace, name, schedule, enabled, default_language, draft_on_disappear, next_run_at, created_at, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)")
            .bind(id)
            .bind(self.tenant)
            .bind(&new.marketplace)
            .bind(&new.name)
            .bind(&new.schedule)
            .bind(new.enabled)
            .bind(&new.default_language)
            .bind(new.draft_on_disappear)
            .bind((new.schedule != "manual").then_some(now))
            .bind(now)
            .execute(&mut **c)
            .await)?;
        for (lang, url) in &new.files {
            exec_tx!(&mut *tx, c => sqlx::query(
                "insert into feed_files (id, tenant_id, source_id, language, url) values ($1, $2, $3, $4, $5)")
                .bind(new_id())
                .bind(self.tenant)
                .bind(id)
                .bind(lang)
                .bind(url)
                .execute(&mut **c)
                .await)
            .map_err(|e| StoreError::on_unique(e, &[("language", "files")]))?;
        }
        let summary = serde_json::json!({
            "id": id, "marketplace": new.marketplace, "name": new.name, "schedule": new.schedule,
            "languages": new.files.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        });
        audit::record(
            tx,
            Some(self.tenant),
            actor,
            Change::new("feed_source.created", "feed_source", id).after(&summary),
        )
        .await?;
        events::emit(tx, Some(self.tenant), "feed_source.created", &summary).await?;
        Ok(id)
    }

    /// The tenant's sources, oldest first, with their files.
    pub async fn list_feed_sources(&self) -> StoreResult<Vec<FeedSource>> {
        let rows: Vec<SourceRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {SOURCE_COLS} from feed_sources where tenant_id = $1 order by created_at, id"))).bind(self.tenant).fetch_all(p).await)?;
        self.with_files(rows).await
    }

    /// One source of this tenant.
    pub async fn get_feed_source(&self, id: Uuid) -> StoreResult<Option<FeedSource>> {
        let rows: Vec<SourceRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {SOURCE_COLS} from feed_sources where tenant_id = $1 and id = $2"))).bind(self.tenant).bind(id).fetch_all(p).await)?;
        Ok(self.with_files(rows).await?.pop())
    }

    async fn with_files(&self, rows: Vec<SourceRow>) -> StoreResult<Vec<FeedSource>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let files: Vec<FileRow> = tenant_query!(self, read, p => fetch_in!(p, FileRow,
            "select source_id, language, url, last_status, last_error, last_fetched_at from feed_files where tenant_id = ",
            "source_id", self.tenant, &ids, " order by language"))?;
        let mut by: HashMap<Uuid, Vec<FeedFile>> = HashMap::new();
        for f in files {
            by.entry(f.source_id).or_default().push(FeedFile {
                language: f.language,
                url: f.url,
                last_status: f.last_status,
                last_error: f.last_error,
                last_fetched_at: f.last_fetched_at,
            });
        }
        Ok(rows
            .into_iter()
            .map(|r| FeedSource {
                files: by.remove(&r.id).unwrap_or_default(),
                id: r.id,
                marketplace: r.marketplace,
                name: r.name,
                schedule: r.schedule,
                enabled: r.enabled,
                default_language: r.default_language,
                draft_on_disappear: r.draft_on_disappear,
                last_status: r.last_status,
                last_error: r.last_error,
                last_run_at: r.last_run_at,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Changes a source. With `files`: a language whose URL changed forgets its
    /// conditional-GET validators and last outcome (the next fetch is a full one); a new
    /// language gets a file; a language left out loses its file and its staged items
    /// (their translations go with them; products stay). Moving to a timed schedule
    /// makes the source due at once; `manual` clears the next run. Audited as
    /// `feed_source.updated`. Errors: `NotFound`.
    pub async fn update_feed_source(
        &self,
        actor: &Actor,
        id: Uuid,
        ch: &SourceChanges,
    ) -> StoreResult<FeedSource> {
        let before = self
            .get_feed_source(id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let now = now_micros();
        let schedule = ch
            .schedule
            .clone()
            .unwrap_or_else(|| before.schedule.clone());
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update feed_sources set marketplace = coalesce($3, marketplace), name = coalesce($4, name),
                 enabled = coalesce($5, enabled), draft_on_disappear = coalesce($6, draft_on_disappear),
                 next_run_at = case when $7 = 'manual' then null
                                    when schedule <> $7 or next_run_at is null then $8
                                    else next_run_at end,
                 schedule = $7, updated_at = $8
             where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(id)
            .bind(ch.marketplace.as_deref()).bind(ch.name.as_deref())
            .bind(ch.enabled).bind(ch.draft_on_disappear)
            .bind(&schedule).bind(now)
            .execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some(files) = &ch.files {
            for old in &before.files {
                if files.iter().any(|(l, _)| *l == old.language) {
                    continue;
                }
                for sql in [
                    "delete from feed_items where tenant_id = $1 and source_id = $2 and language = $3",
                    "delete from feed_files where tenant_id = $1 and source_id = $2 and language = $3",
                ] {
                    exec_tx!(&mut tx, c => sqlx::query(sql).bind(self.tenant).bind(id).bind(&old.language).execute(&mut **c).await)?;
                }
            }
            for (lang, url) in files {
                match before.files.iter().find(|f| f.language == *lang) {
                    Some(old) if old.url == *url => {}
                    Some(_) => {
                        exec_tx!(&mut tx, c => sqlx::query(
                            "update feed_files set url = $4, etag = null, last_modified = null,
                                 last_status = 'never', last_error = null
                             where tenant_id = $1 and source_id = $2 and language = $3")
                            .bind(self.tenant).bind(id).bind(lang).bind(url.as_deref())
                            .execute(&mut **c).await)?;
                    }
                    None => {
                        exec_tx!(&mut tx, c => sqlx::query(
                            "insert into feed_files (id, tenant_id, source_id, language, url) values ($1, $2, $3, $4, $5)")
                            .bind(new_id()).bind(self.tenant).bind(id).bind(lang).bind(url.as_deref())
                            .execute(&mut **c).await)
                        .map_err(|e| StoreError::on_unique(e, &[("language", "files")]))?;
                    }
                }
            }
        }
        let summary = |s: &FeedSource| {
            serde_json::json!({
                "marketplace": s.marketplace, "name": s.name, "schedule": s.schedule,
                "enabled": s.enabled, "draft_on_disappear": s.draft_on_disappear,
                "files": s.files.iter().map(|f| serde_json::json!({ "language": f.language, "url": f.url })).collect::<Vec<_>>(),
            })
        };
        let after_files: Vec<FeedFile> = match &ch.files {
            None => before.files.clone(),
            Some(fs) => fs
                .iter()
                .map(|(l, u)| FeedFile {
                    language: l.clone(),
                    url: u.clone(),
                    last_status: String::new(),
                    last_error: None,
                    last_fetched_at: None,
                })
                .collect(),
        };
        let after = FeedSource {
            marketplace: ch
                .marketplace
                .clone()
                .unwrap_or_else(|| before.marketplace.clone()),
            name: ch.name.clone().unwrap_or_else(|| before.name.clone()),
            schedule,
            enabled: ch.enabled.unwrap_or(before.enabled),
            draft_on_disappear: ch.draft_on_disappear.unwrap_or(before.draft_on_disappear),
            files: after_files,
            ..before.clone()
        };
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("feed_source.updated", "feed_source", id)
                .before(summary(&before))
                .after(summary(&after)),
        )
        .await?;
        tx.commit().await?;
        self.get_feed_source(id).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes a source with its files, runs and staged items (published products stay,
    /// unlinked). Errors: `NotFound`.
    pub async fn delete_feed_source(&self, actor: &Actor, id: Uuid) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        for sql in [
            "delete from feed_items where tenant_id = $1 and source_id = $2",
            "delete from feed_imports where tenant_id = $1 and source_id = $2",
            "delete from feed_files where tenant_id = $1 and source_id = $2",
        ] {
            exec_tx!(&mut tx, c => sqlx::query(sql).bind(self.tenant).bind(id).execute(&mut **c).await)?;
        }
        let n = exec_tx!(&mut tx, c => sqlx::query("delete from feed_sources where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(id).execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("feed_source.deleted", "feed_source", id),
        )
        .await?;
        tx.commit().await
    }

    /// The URL and conditional-GET validators of one file. `None`: no such file.
    pub async fn feed_fetch_target(
        &self,
        source: Uuid,
        language: &str,
    ) -> StoreResult<Option<FetchTarget>> {
        Ok(tenant_query!(self, read, p => sqlx::query_as(
            "select url, etag, last_modified from feed_files where tenant_id = $1 and source_id = $2 and language = $3")
            .bind(self.tenant).bind(source).bind(language).fetch_optional(p).await)?)
    }

    /// Records the outcome of fetching one file (and the source's last status): `status`
    /// `ok` (with the new validators), `not_modified` or `failed` (with `error`).
    pub async fn record_feed_fetch(
        &self,
        source: Uuid,
        language: &str,
        status: &str,
        error: Option<&str>,
        validators: Option<(Option<&str>, Option<&str>)>,
    ) -> StoreResult<()> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "update feed_files set last_status = $4, last_error = $5, last_fetched_at = $6,
                 etag = case when $7 then $8 else etag end,
                 last_modified = case when $7 then $9 else last_modified end
             where tenant_id = $1 and source_id = $2 and language = $3")
            .bind(self.tenant).bind(source).bind(language).bind(status).bind(error).bind(now)
            .bind(validators.is_some())
            .bind(validators.and_then(|v| v.0))
            .bind(validators.and_then(|v| v.1))
            .execute(&mut **c).await)?;
        exec_tx!(&mut tx, c => sqlx::query(
            "update feed_sources set last_status = $3, last_error = $4, last_run_at = $5, updated_at = $5 where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(source).bind(status).bind(error).bind(now)
            .execute(&mut **c).await)?;
        tx.commit().await
    }

    /// Starts a staging run of one file (status `running`). Returns its id.
    pub async fn begin_feed_import(
        &self,
        actor: &Actor,
        source: Uuid,
        language: &str,
        trigger: &str,
    ) -> StoreResult<Uuid> {
        let id = new_id();
        tenant_exec!(self, c => sqlx::query(
            "insert into feed_imports (id, tenant_id, source_id, language, trigger, status, actor_label, created_at) values ($1, $2, $3, $4, $5, 'running', $6, $7)")
            .bind(id).bind(self.tenant).bind(source).bind(language).bind(trigger).bind(&actor.label).bind(now_micros())
            .execute(c).await)?;
        Ok(id)
    }

    /// Writes one batch of a run's items: new ones inserted, changed ones (by content
    /// hash) updated in place with the fields that changed, unchanged ones left as they
    /// are (only one that had disappeared is brought back). The run's end learns which
    /// items it saw from the caller ([`Self::complete_feed_import`]). One transaction per
    /// batch, and set-based: one select of the batch's existing hashes (an index-only
    /// lookup), one multi-row insert of the new items, one update of the returning ones,
    /// and one statement per changed item (plus one select of their previous content).
    pub async fn stage_feed_items(
        &self,
        import: Uuid,
        source: Uuid,
        language: &str,
        batch: &[StageInput],
    ) -> StoreResult<StageOutcome> {
        let mut out = StageOutcome::default();
        if batch.is_empty() {
            return Ok(out);
        }
        let now = now_micros();
        let ids: Vec<&str> = batch.iter().map(|b| b.item.id.as_str()).collect();
        let mut tx = self.begin().await?;
        let existing: Vec<ExistingRow> = dispatch_tx!(&mut tx, c => {
            let mut qb = sqlx::QueryBuilder::new(
                "select id, feed_id, hash, product_id, disappeared_at from feed_items where tenant_id = ",
            );
            qb.push_bind(self.tenant)
                .push(" and source_id = ")
                .push_bind(source)
                .push(" and language = ")
                .push_bind(language)
                .push(" and feed_id in (");
            let mut sep = qb.separated(", ");
            for id in &ids {
                sep.push_bind(*id);
            }
            qb.push(")");
            qb.build_query_as::<ExistingRow>().fetch_all(&mut **c).await
        })?;
        let existing: HashMap<&str, &ExistingRow> =
            existing.iter().map(|e| (e.feed_id.as_str(), e)).collect();
        /// An item as it will be written.
        struct Prepared<'a> {
            input: &'a StageInput,
            value: serde_json::Value,
            item: String,
            errors: String,
            warnings: String,
            hash: String,
        }
        let mut new_items = vec![];
        let mut unchanged: Vec<Uuid> = vec![];
        let mut changed: Vec<(&ExistingRow, Prepared)> = vec![];
        for b in batch {
            let value = serde_json::to_value(&b.item)
                .map_err(|e| StoreError::Corrupt(format!("feed item: {e}")))?;
            let item = value.to_string();
            let errors = super::to_json(&b.errors);
            let hash = digest(&item, &errors);
            if !b.errors.is_empty() {
                out.with_errors += 1;
            }
            let p = Prepared {
                input: b,
                warnings: super::to_json(&b.warnings),
                value,
                item,
                errors,
                hash,
            };
            match existing.get(b.item.id.as_str()) {
                None => new_items.push(p),
                Some(e) if e.hash == p.hash => {
                    out.unchanged += 1;
                    // Nothing to write, unless the item is back after it disappeared.
                    if e.disappeared_at.is_some() {
                        unchanged.push(e.id);
                    }
                }
                Some(e) => changed.push((e, p)),
            }
        }
        out.new = new_items.len() as i64;
        out.changed = changed.len() as i64;
        if !new_items.is_empty() {
            exec_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new(
                    "insert into feed_items (id, tenant_id, source_id, language, feed_id, raw, item, hash, errors, warnings, title, import_id, first_seen_at, updated_at, item_group) ",
                );
                qb.push_values(&new_items, |mut row, p| {
                    row.push_bind(new_id())
                        .push_bind(self.tenant)
                        .push_bind(source)
                        .push_bind(language)
                        .push_bind(&p.input.item.id)
                        .push_bind(p.input.raw.to_string())
                        .push_bind(&p.item)
                        .push_bind(&p.hash)
                        .push_bind(&p.errors)
                        .push_bind(&p.warnings)
                        .push_bind(&p.input.item.title)
                        .push_bind(import)
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(&p.input.item.item_group_id);
                });
                qb.build().execute(&mut **c).await
            })?;
        }
        if !unchanged.is_empty() {
            exec_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new("update feed_items set import_id = ");
                qb.push_bind(import)
                    .push(", disappeared_at = null where tenant_id = ")
                    .push_bind(self.tenant)
                    .push(" and id in (");
                let mut sep = qb.separated(", ");
                for id in &unchanged {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&mut **c).await
            })?;
        }
        if !changed.is_empty() {
            let before: Vec<(Uuid, String)> = dispatch_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new("select id, item from feed_items where tenant_id = ");
                qb.push_bind(self.tenant).push(" and id in (");
                let mut sep = qb.separated(", ");
                for (e, _) in &changed {
                    sep.push_bind(e.id);
                }
                qb.push(")");
                qb.build_query_as::<(Uuid, String)>().fetch_all(&mut **c).await
            })?;
            let before: HashMap<Uuid, String> = before.into_iter().collect();
            for (e, p) in &changed {
                let old = before.get(&e.id).map(String::as_str).unwrap_or("{}");
                let fields = changed_fields(old, &p.value);
                if e.product_id.is_some() {
                    out.published_changed.push((e.id, fields.clone()));
                }
                exec_tx!(&mut tx, c => sqlx::query(
                    "update feed_items set raw = $3, item = $4, hash = $5, errors = $6, warnings = $7, title = $8, import_id = $9, updated_at = $10, changed_fields = $11, disappeared_at = null, item_group = $12
                     where tenant_id = $1 and id = $2")
                    .bind(self.tenant).bind(e.id).bind(p.input.raw.to_string()).bind(&p.item).bind(&p.hash)
                    .bind(&p.errors).bind(&p.warnings).bind(&p.input.item.title).bind(import).bind(now)
                    .bind(super::to_json(&fields)).bind(&p.input.item.item_group_id)
                    .execute(&mut **c).await)?;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Ends a run that read its file: items of `(source, language)` whose feed id is not in
    /// `seen` (the ids the run staged) are marked disappeared, the counts and report are stored, the source's status set, and a
    /// `feed.import.completed` event written, in one transaction. Returns the ids of
    /// published items that disappeared now.
    #[allow(clippy::too_many_arguments)]
    pub async fn complete_feed_import(
        &self,
        import: Uuid,
        source: Uuid,
        language: &str,
        format: &str,
        counts: &ImportCounts,
        report: &serde_json::Value,
        seen: &std::collections::HashSet<String>,
    ) -> StoreResult<Vec<Uuid>> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        // The source's present items (an index-only scan), less those this run saw.
        let present: Vec<(Uuid, String, Option<Uuid>)> = dispatch_tx!(&mut tx, c => sqlx::query_as(
            "select id, feed_id, product_id from feed_items where tenant_id = $1 and source_id = $2 and language = $3 and disappeared_at is null")
            .bind(self.tenant).bind(source).bind(language)
            .fetch_all(&mut **c).await)?;
        let gone: Vec<(Uuid, Option<Uuid>)> = present
            .into_iter()
            .filter(|(_, feed_id, _)| !seen.contains(feed_id))
            .map(|(id, _, product)| (id, product))
            .collect();
        for chunk in gone.chunks(500) {
            exec_tx!(&mut tx, c => {
                let mut qb = sqlx::QueryBuilder::new("update feed_items set disappeared_at = ");
                qb.push_bind(now)
                    .push(", changed_fields = '[\"disappeared\"]' where tenant_id = ")
                    .push_bind(self.tenant)
                    .push(" and id in (");
                let mut sep = qb.separated(", ");
                for (id, _) in chunk {
                    sep.push_bind(*id);
                }
                qb.push(")");
                qb.build().execute(&mut **c).await
            })?;
        }
        exec_tx!(&mut tx, c => sqlx::query(
            "update feed_imports set status = 'completed', format = $3, items_total = $4, items_new = $5, items_changed = $6, items_unchanged = $7, items_disappeared = $8, items_with_errors = $9, report = $10, finished_at = $11
             where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(import).bind(format).bind(counts.items_total).bind(counts.items_new)
            .bind(counts.items_changed).bind(counts.items_unchanged).bind(gone.len() as i64)
            .bind(counts.items_with_errors).bind(report.to_string()).bind(now)
            .execute(&mut **c).await)?;
        exec_tx!(&mut tx, c => sqlx::query(
            "update feed_sources set last_status = 'ok', last_error = null, last_run_at = $3, updated_at = $3 where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(source).bind(now).execute(&mut **c).await)?;
        let mut data = serde_json::to_value(counts).unwrap_or_default();
        data["import_id"] = serde_json::json!(import);
        data["source_id"] = serde_json::json!(source);
        data["language"] = serde_json::json!(language);
        data["items_disappeared"] = serde_json::json!(gone.len());
        events::emit(&mut tx, Some(self.tenant), "feed.import.completed", &data).await?;
        tx.commit().await?;
        Ok(gone
            .into_iter()
            .filter_map(|(id, p)| p.map(|_| id))
            .collect())
    }

    /// Ends a run that could not read its file (`status` `failed` or `not_modified`):
    /// the staging area is untouched.
    pub async fn fail_feed_import(
        &self,
        import: Uuid,
        status: &str,
        error: Option<&str>,
    ) -> StoreResult<()> {
        tenant_exec!(self, c => sqlx::query(
            "update feed_imports set status = $3, error = $4, finished_at = $5 where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(import).bind(status).bind(error).bind(now_micros())
            .execute(c).await)?;
        Ok(())
    }

    /// Stores how many published products a run updated.
    pub async fn set_feed_import_products_updated(&self, import: Uuid, n: i64) -> StoreResult<()> {
        tenant_exec!(self, c => sqlx::query(
            "update feed_imports set products_updated = $3 where tenant_id = $1 and id = $2")
            .bind(self.tenant).bind(import).bind(n).execute(c).await)?;
        Ok(())
    }

    /// One run of this tenant.
    pub async fn get_feed_import(&self, id: Uuid) -> StoreResult<Option<FeedImport>> {
        let row: Option<ImportRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {IMPORT_COLS} from feed_imports where tenant_id = $1 and id = $2"))).bind(self.tenant).bind(id).fetch_optional(p).await)?;
        Ok(row.map(Into::into))
    }

    /// The runs of one source, newest first (at most `limit`).
    pub async fn list_feed_imports(
        &self,
        source: Uuid,
        limit: i64,
    ) -> StoreResult<Vec<FeedImport>> {
        let rows: Vec<ImportRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {IMPORT_COLS} from feed_imports where tenant_id = $1 and source_id = $2 order by created_at desc, id desc limit $3")))
            .bind(self.tenant).bind(source).bind(limit).fetch_all(p).await)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Staged items, in feed order of first sight, filtered. Returns `(page, total)`.
    pub async fn list_staged_items(
        &self,
        f: &ItemFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<StagedItem>, i64)> {
        const WHERE: &str = "tenant_id = $1 and ($2 is null or source_id = $2) and ($3 is null or language = $3)
            and ($4 is null or lower(title) like $4 or lower(feed_id) like $4)
            and ($5 is null
                 or ($5 = 'disappeared' and disappeared_at is not null)
                 or ($5 = 'errors' and disappeared_at is null and errors <> '[]')
                 or ($5 = 'new' and disappeared_at is null and errors = '[]' and product_id is null)
                 or ($5 = 'published' and disappeared_at is null and errors = '[]' and product_id is not null and published_hash = hash)
                 or ($5 = 'changed' and disappeared_at is null and errors = '[]' and product_id is not null and (published_hash is null or published_hash <> hash)))";
        let q = f.q.as_ref().map(|q| format!("%{}%", q.to_lowercase()));
        let rows: Vec<ItemRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {ITEM_COLS} from feed_items where {WHERE} order by first_seen_at, id limit $6 offset $7")))
            .bind(self.tenant).bind(f.source_id).bind(&f.language).bind(&q).bind(&f.status).bind(limit).bind(offset)
            .fetch_all(p).await)?;
        let total: i64 = tenant_query!(self, read, p => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from feed_items where {WHERE}")))
            .bind(self.tenant).bind(f.source_id).bind(&f.language).bind(&q).bind(&f.status)
            .fetch_one(p).await)?;
        Ok((
            rows.into_iter()
                .map(StagedItem::try_from)
                .collect::<StoreResult<_>>()?,
            total,
        ))
    }

    /// Staged items by id (those of other tenants are simply absent).
    pub async fn get_staged_items(&self, ids: &[Uuid]) -> StoreResult<Vec<StagedItem>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let rows: Vec<ItemRow> = tenant_query!(self, read, p => fetch_in!(p, ItemRow,
            "select id, source_id, language, feed_id, raw, item, hash, errors, warnings, changed_fields, import_id, product_id, published_hash, overrides, first_seen_at, updated_at, disappeared_at, published_at from feed_items where tenant_id = ",
            "id", self.tenant, ids, " order by first_seen_at, id"))?;
        rows.into_iter().map(StagedItem::try_from).collect()
    }

    /// The items of one `item_group_id` of a source and language (variants of one product).
    pub async fn staged_group(
        &self,
        source: Uuid,
        language: &str,
        group: &str,
    ) -> StoreResult<Vec<StagedItem>> {
        let rows: Vec<ItemRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {ITEM_COLS} from feed_items where tenant_id = $1 and source_id = $2 and language = $3 and item_group = $4 order by first_seen_at, id")))
            .bind(self.tenant).bind(source).bind(language).bind(group).fetch_all(p).await)?;
        rows.into_iter().map(StagedItem::try_from).collect()
    }

    /// Items linked to `product` (all languages).
    pub async fn staged_items_of_product(&self, product: Uuid) -> StoreResult<Vec<StagedItem>> {
        let rows: Vec<ItemRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {ITEM_COLS} from feed_items where tenant_id = $1 and product_id = $2 order by first_seen_at, id")))
            .bind(self.tenant).bind(product).fetch_all(p).await)?;
        rows.into_iter().map(StagedItem::try_from).collect()
    }

    /// Links items to a product and marks their current content as applied to it.
    pub async fn link_staged_items(&self, ids: &[Uuid], product: Uuid) -> StoreResult<()> {
        let now = now_micros();
        let mut tx = self.begin().await?;
        for id in ids {
            exec_tx!(&mut tx, c => sqlx::query(
                "update feed_items set product_id = $3, published_hash = hash, published_at = $4, changed_fields = '[]' where tenant_id = $1 and id = $2")
                .bind(self.tenant).bind(*id).bind(product).bind(now).execute(&mut **c).await)?;
        }
        tx.commit().await
    }

    /// Marks the items' current content as applied to their product (after a sync) and
    /// writes a `feed.item.changed` event per item with the fields that changed.
    pub async fn mark_staged_applied(
        &self,
        changes: &[(Uuid, Uuid, Vec<String>)],
    ) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin().await?;
        for (id, product, fields) in changes {
            exec_tx!(&mut tx, c => sqlx::query(
                "update feed_items set published_hash = hash where tenant_id = $1 and id = $2")
                .bind(self.tenant).bind(*id).execute(&mut **c).await)?;
            events::emit(
                &mut tx,
                Some(self.tenant),
                "feed.item.changed",
                &serde_json::json!({ "item_id": id, "product_id": product, "changed_fields": fields }),
            )
            .await?;
        }
        tx.commit().await
    }

    /// Stores the overrides of every item linked to `product`, with an audit entry.
    pub async fn set_feed_overrides(
        &self,
        actor: &Actor,
        product: Uuid,
        overrides: &Overrides,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update feed_items set overrides = $3 where tenant_id = $1 and product_id = $2")
            .bind(self.tenant).bind(product).bind(super::to_json(overrides)).execute(&mut **c).await)?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change::new("feed_overrides.updated", "product", product).after(overrides),
        )
        .await?;
        tx.commit().await
    }

    /// The product one of whose variants has `sku` (`column = "sku"`) or barcode
    /// (`column = "barcode"`) equal to `value`.
    pub async fn product_with_variant(
        &self,
        column: &'static str,
        value: &str,
    ) -> StoreResult<Option<Uuid>> {
        let sql = if column == "sku" {
            "select product_id from variants where tenant_id = $1 and sku = $2 order by position limit 1"
        } else {
            "select product_id from variants where tenant_id = $1 and barcode = $2 order by position limit 1"
        };
        Ok(
            tenant_query!(self, read, p => sqlx::query_scalar(sql).bind(self.tenant).bind(value).fetch_optional(p).await)?,
        )
    }

    /// Links the items of other languages to the product their base-language item (same
    /// source and feed id, `base` = the source's default language) is published as: they
    /// carry its translations. Every lookup is an equality on the `(source, language, feed
    /// id)` unique index. Returns how many were linked.
    pub async fn link_translations(&self, source: Uuid, base: &str) -> StoreResult<u64> {
        Ok(tenant_exec!(self, c => sqlx::query(
            "update feed_items set product_id = (select b.product_id from feed_items b
                 where b.source_id = feed_items.source_id and b.language = $3 and b.feed_id = feed_items.feed_id),
                 published_hash = hash, published_at = $4
             where tenant_id = $1 and source_id = $2 and language <> $3 and product_id is null
               and exists (select 1 from feed_items b
                 where b.source_id = feed_items.source_id and b.language = $3 and b.feed_id = feed_items.feed_id
                   and b.product_id is not null)")
            .bind(self.tenant).bind(source).bind(base).bind(now_micros()).execute(c).await)?)
    }

    /// The languages the storefront offers: the base language (the default language of
    /// the store's oldest feed source; `None` without one) and every other language
    /// that an active product has a translation in (a linked, present feed item of a
    /// language other than its source's default), sorted.
    pub async fn store_languages(&self) -> StoreResult<(Option<String>, Vec<String>)> {
        let base: Option<String> = tenant_query!(self, read, p => sqlx::query_scalar(
            "select default_language from feed_sources where tenant_id = $1 order by created_at, id limit 1")
            .bind(self.tenant).fetch_optional(p).await)?;
        let others: Vec<String> = tenant_query!(self, read, p => sqlx::query_scalar(
            "select distinct i.language from feed_items i
               join feed_sources s on s.id = i.source_id and s.tenant_id = i.tenant_id
               join products p on p.id = i.product_id and p.tenant_id = i.tenant_id
             where i.tenant_id = $1 and i.product_id is not null and i.disappeared_at is null
               and i.language <> s.default_language and p.status = 'active'
             order by i.language")
            .bind(self.tenant).fetch_all(p).await)?;
        Ok((base, others))
    }

    /// The title and description of `products` in `language`, from the feed items of that
    /// language linked to them (first variant's item): `product id → (title, description)`.
    /// Items of a source's default language are the base (the product itself, overrides
    /// included), never a translation.
    pub async fn product_translations(
        &self,
        products: &[Uuid],
        language: &str,
    ) -> StoreResult<HashMap<Uuid, (Option<String>, Option<String>)>> {
        if products.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Option<Uuid>, String)> = tenant_query!(self, read, c => {
            let mut qb = sqlx::QueryBuilder::new("select product_id, item from feed_items where tenant_id = ");
            qb.push_bind(self.tenant).push(" and language = ").push_bind(language)
                .push(" and disappeared_at is null and language <> (select s.default_language from feed_sources s where s.id = feed_items.source_id) and product_id in (");
            let mut sep = qb.separated(", ");
            for p in products {
                sep.push_bind(*p);
            }
            qb.push(") order by first_seen_at, id");
            qb.build_query_as::<(Option<Uuid>, String)>().fetch_all(c).await
        })?;
        let mut out = HashMap::new();
        for (p, item) in rows {
            let Some(p) = p else { continue };
            if out.contains_key(&p) {
                continue;
            }
            let item: FeedProduct = super::from_json(&item)?;
            out.insert(p, (item.title, item.description));
        }
        Ok(out)
    }
}
