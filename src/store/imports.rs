//! Background product imports: the `product_imports` table and its job.
//!
//! Starting an import writes the row (with the uploaded CSV) and a `product_import` job in
//! one transaction. The worker applies the file in chunks; each chunk's products and the
//! row's progress commit together, guarded by the progress the worker started from, so a
//! worker that died is resumed from the last committed chunk and no chunk is applied twice.
//! The end of the import (report, audit entry, `import.completed` event) is one more
//! transaction.

use super::audit::{self, Actor, Change};
use super::catalog::{ProductInput, UpsertOutcome};
use super::jobs::{NewJob, enqueue_tx};
use super::{StoreError, StoreResult, TenantDb, events, new_id, now_micros};
#[allow(unused_imports)]
use crate::{dispatch_tx, exec_tx, tenant_exec, tenant_query};
use serde::Serialize;
use uuid::Uuid;

/// Job kind of a background product import (payload `{"import_id": …}`).
pub const PRODUCT_IMPORT_JOB: &str = "product_import";

/// A product import as the API shows it (`GET /api/v1/imports/products/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProductImport {
    pub id: Uuid,
    /// `queued`, `running`, `completed` or `failed`.
    pub status: String,
    /// Name of the uploaded file, when the upload had one.
    pub file_name: Option<String>,
    /// Products in the file (rows grouped by handle).
    pub products_total: i64,
    /// Products handled so far (created, updated or refused); `products_total` when done.
    pub products_done: i64,
    pub created: i64,
    pub updated: i64,
    /// Existing products the file left as they were (nothing written).
    pub unchanged: i64,
    /// The full report (row errors included), once `completed`.
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// Why the import stopped, when `failed`.
    pub error: Option<String>,
    /// Who started it (e-mail of a user, or the API key's name).
    pub started_by: String,
    /// Unix microseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct ImportRow {
    id: Uuid,
    status: String,
    file_name: Option<String>,
    products_total: i64,
    products_done: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    report: Option<String>,
    error: Option<String>,
    actor_label: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

const IMPORT_COLS: &str = "id, status, file_name, products_total, products_done, created, updated, unchanged, report, error, actor_label, created_at, started_at, finished_at";

impl From<ImportRow> for ProductImport {
    fn from(r: ImportRow) -> Self {
        Self {
            id: r.id,
            status: r.status,
            file_name: r.file_name,
            products_total: r.products_total,
            products_done: r.products_done,
            created: r.created,
            updated: r.updated,
            unchanged: r.unchanged,
            report: r.report.and_then(|t| serde_json::from_str(&t).ok()),
            error: r.error,
            started_by: r.actor_label,
            created_at: r.created_at,
            started_at: r.started_at,
            finished_at: r.finished_at,
        }
    }
}

/// What the worker needs to run (or resume) an import.
#[derive(Debug, Clone)]
pub struct ImportWork {
    pub id: Uuid,
    pub status: String,
    /// The CSV as uploaded.
    pub body: Vec<u8>,
    pub products_done: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// `(CSV row, reason)` of the products refused by earlier chunks.
    pub failures: Vec<(usize, String)>,
    /// Who started it: the audit entry at the end names them.
    pub actor: Actor,
}

#[derive(sqlx::FromRow)]
struct WorkRow {
    id: Uuid,
    status: String,
    body: Vec<u8>,
    products_done: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    failures: String,
    actor_kind: String,
    actor_id: Option<Uuid>,
    actor_label: String,
    actor_ip: Option<String>,
}

/// Maps a stored actor kind back to the `&'static str` of [`Actor::kind`].
fn actor_kind(kind: &str) -> &'static str {
    match kind {
        "user" => "user",
        "api_key" => "api_key",
        _ => "system",
    }
}

impl TenantDb {
    /// Records a product import of `body` (already parsed once, `products_total` products)
    /// and queues its job, in one transaction. Returns the queued import.
    pub async fn start_product_import(
        &self,
        actor: &Actor,
        file_name: Option<&str>,
        body: &[u8],
        products_total: i64,
    ) -> StoreResult<ProductImport> {
        let id = new_id();
        let now = now_micros();
        let mut tx = self.begin().await?;
        exec_tx!(&mut tx, c => sqlx::query(
            "insert into product_imports (id, tenant_id, status, file_name, body, products_total, actor_kind, actor_id, actor_label, actor_ip, created_at)
             values ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(self.tenant)
        .bind(file_name)
        .bind(Vec::<u8>::new())
        .bind(products_total)
        .bind(actor.kind)
        .bind(actor.id)
        .bind(&actor.label)
        .bind(&actor.ip)
        .bind(now)
        .execute(&mut **c)
        .await)?;
        // The file in a row of its own: the chunks' progress updates do not rewrite it.
        match &mut tx {
            // A bound blob would be copied three times on the way in (sqlx's owned copy
            // for its worker thread, SQLite's bind copy, the record being built): a 58 MB
            // file would peak at four times its size. A zero blob of its length is
            // inserted instead and the file written into it a piece at a time.
            super::Tx::Sqlite(t) => {
                let rowid: i64 = sqlx::query_scalar(
                    "insert into product_import_files (import_id, tenant_id, body) values ($1, $2, zeroblob($3)) returning rowid",
                )
                .bind(id)
                .bind(self.tenant)
                .bind(i64::try_from(body.len()).unwrap_or(i64::MAX))
                .fetch_one(&mut **t)
                .await?;
                blob_io(t, rowid, BlobIo::Write(body)).await?;
            }
            super::Tx::Pg(t) => {
                sqlx::query(
                    "insert into product_import_files (import_id, tenant_id, body) values ($1, $2, $3)",
                )
                .bind(id)
                .bind(self.tenant)
                .bind(body)
                .execute(&mut **t)
                .await?;
            }
        }
        enqueue_tx(
            &mut tx,
            NewJob {
                kind: PRODUCT_IMPORT_JOB,
                tenant_id: Some(self.tenant),
                payload: serde_json::json!({ "import_id": id }).to_string(),
                dedupe_key: Some(format!("{PRODUCT_IMPORT_JOB}:{id}")),
                max_attempts: 5,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(ProductImport {
            id,
            status: "queued".into(),
            file_name: file_name.map(str::to_string),
            products_total,
            products_done: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            report: None,
            error: None,
            started_by: actor.label.clone(),
            created_at: now,
            started_at: None,
            finished_at: None,
        })
    }

    /// One import of this tenant.
    pub async fn get_product_import(&self, id: Uuid) -> StoreResult<Option<ProductImport>> {
        let row: Option<ImportRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {IMPORT_COLS} from product_imports where tenant_id = $1 and id = $2"
        )))
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        Ok(row.map(Into::into))
    }

    /// The tenant's imports, newest first, with the total count.
    pub async fn list_product_imports(
        &self,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<ProductImport>, i64)> {
        let rows: Vec<ImportRow> = tenant_query!(self, read, p => sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select {IMPORT_COLS} from product_imports where tenant_id = $1 order by created_at desc, id desc limit $2 offset $3"
        )))
        .bind(self.tenant)
        .bind(limit)
        .bind(offset)
        .fetch_all(p)
        .await)?;
        let total: i64 = tenant_query!(self, read, p => sqlx::query_scalar("select count(*) from product_imports where tenant_id = $1")
            .bind(self.tenant)
            .fetch_one(p)
            .await)?;
        Ok((rows.into_iter().map(Into::into).collect(), total))
    }

    /// Loads an import for the worker and marks it running (first start or resume).
    /// `None` when it does not exist or has already ended.
    /// With `with_body` false the kept file is not read (`body` is empty): the caller has it.
    pub(crate) async fn claim_product_import(
        &self,
        id: Uuid,
        with_body: bool,
    ) -> StoreResult<Option<ImportWork>> {
        let row: Option<WorkRow> = tenant_query!(self, write, p => sqlx::query_as(
            "select id, status, body, products_done, created, updated, unchanged, failures, actor_kind, actor_id, actor_label, actor_ip
             from product_imports where tenant_id = $1 and id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .fetch_optional(p)
        .await)?;
        let Some(row) = row else { return Ok(None) };
        if !matches!(row.status.as_str(), "queued" | "running") {
            return Ok(None);
        }
        // Guarded: another process (the CLI and a `souk serve` on the same data) may have
        // ended the import since the read; never flip a finished import back to running.
        let claimed = tenant_exec!(self, p => sqlx::query(
            "update product_imports set status = 'running', started_at = coalesce(started_at, $3)
             where tenant_id = $1 and id = $2 and status in ('queued', 'running')",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(now_micros())
        .execute(p)
        .await)?;
        if claimed == 0 {
            return Ok(None);
        }
        let mut body = row.body;
        if with_body {
            let kept = self.read_import_file(id).await?;
            // An import queued before the file had a table of its own still has it inline.
            if let Some(kept) = kept {
                body = kept;
            }
        }
        let failures: Vec<(usize, String)> =
            serde_json::from_str(&row.failures).unwrap_or_default();
        Ok(Some(ImportWork {
            id: row.id,
            status: "running".into(),
            body,
            products_done: row.products_done,
            created: row.created,
            updated: row.updated,
            unchanged: row.unchanged,
            failures,
            actor: Actor {
                kind: actor_kind(&row.actor_kind),
                id: row.actor_id,
                label: row.actor_label,
                ip: row.actor_ip,
            },
        }))
    }

    /// The kept file of import `id`, if it has one. On SQLite it is read a piece at a time
    /// into one buffer (a selected blob would be held twice: by SQLite and by sqlx).
    async fn read_import_file(&self, id: Uuid) -> StoreResult<Option<Vec<u8>>> {
        match &self.pools {
            super::tenant::TenantPools::Sqlite { write, .. } => {
                let mut conn = write.acquire().await?;
                let found: Option<(i64, i64)> = sqlx::query_as(
                    "select rowid, length(body) from product_import_files where tenant_id = $1 and import_id = $2",
                )
                .bind(self.tenant)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
                let Some((rowid, len)) = found else {
                    return Ok(None);
                };
                let mut body = vec![0; usize::try_from(len).unwrap_or(0)];
                blob_io(&mut conn, rowid, BlobIo::Read(&mut body)).await?;
                Ok(Some(body))
            }
            super::tenant::TenantPools::Pg(_) => {
                Ok(tenant_query!(self, write, p => sqlx::query_scalar(
                "select body from product_import_files where tenant_id = $1 and import_id = $2",
            )
            .bind(self.tenant)
            .bind(id)
            .fetch_optional(p)
            .await)?)
            }
        }
    }

    /// Applies one chunk of an import: upserts `inputs` (the file's products from index
    /// `work.products_done`) and advances the import's progress in the same transaction.
    /// `rows[i]` is the CSV row of `inputs[i]`. Errors: `Conflict` when another worker
    /// advanced the import meanwhile (nothing of this chunk is written).
    pub(crate) async fn apply_import_chunk(
        &self,
        work: &mut ImportWork,
        inputs: &[ProductInput],
        rows: &[usize],
        currency: &str,
        max_products: i64,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let out: UpsertOutcome = self
            .upsert_products_tx(&mut tx, inputs, currency, max_products)
            .await?;
        let mut failures = work.failures.clone();
        for (i, reason) in out.failed {
            failures.push((rows.get(i).copied().unwrap_or(0), reason));
        }
        let done = work.products_done + inputs.len() as i64;
        let created = work.created + out.created as i64;
        let updated = work.updated + out.updated as i64;
        let unchanged = work.unchanged + out.unchanged as i64;
        let failures_json = serde_json::to_string(&failures).unwrap_or_else(|_| "[]".into());
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update product_imports set products_done = $4, created = $5, updated = $6, failures = $7, unchanged = $8
             where tenant_id = $1 and id = $2 and products_done = $3 and status = 'running'",
        )
        .bind(self.tenant)
        .bind(work.id)
        .bind(work.products_done)
        .bind(done)
        .bind(created)
        .bind(updated)
        .bind(&failures_json)
        .bind(unchanged)
        .execute(&mut **c)
        .await)?;
        if n != 1 {
            return Err(StoreError::Conflict {
                field: "import",
                message: "the import advanced in another worker".into(),
            });
        }
        tx.commit().await?;
        work.products_done = done;
        work.created = created;
        work.updated = updated;
        work.unchanged = unchanged;
        work.failures = failures;
        Ok(())
    }

    /// Ends a direct (one-transaction) import applied with
    /// [`TenantDb::upsert_products_tx`] a chunk at a time in `tx`: writes the audit entry
    /// (`products.imported`) and the `import.completed` event with the totals `out`, and
    /// commits.
    pub(crate) async fn commit_direct_import(
        &self,
        mut tx: super::Tx,
        actor: &Actor,
        out: &UpsertOutcome,
    ) -> StoreResult<()> {
        let after = serde_json::json!({ "created": out.created, "updated": out.updated, "unchanged": out.unchanged, "failed": out.failed.len() });
        audit::record(
            &mut tx,
            Some(self.tenant),
            actor,
            Change {
                action: "products.imported",
                resource_type: "import",
                after: Some(after.clone()),
                ..Default::default()
            },
        )
        .await?;
        events::emit(&mut tx, Some(self.tenant), "import.completed", &after).await?;
        tx.commit().await
    }

    /// Ends an import: stores the report, empties the kept file, sets the total to the
    /// products handled (the start counted the file's handles before parsing it), writes
    /// the audit entry (`products.imported`) and the `import.completed` event, in one
    /// transaction.
    pub(crate) async fn complete_product_import(
        &self,
        work: &ImportWork,
        report: &serde_json::Value,
        failed: usize,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let n = exec_tx!(&mut tx, c => sqlx::query(
            "update product_imports set status = 'completed', report = $3, body = $4, finished_at = $5, products_total = products_done
             where tenant_id = $1 and id = $2 and status = 'running'",
        )
        .bind(self.tenant)
        .bind(work.id)
        .bind(report.to_string())
        .bind(Vec::<u8>::new())
        .bind(now_micros())
        .execute(&mut **c)
        .await)?;
        if n != 1 {
            return Ok(()); // already ended elsewhere
        }
        exec_tx!(&mut tx, c => sqlx::query(
            "delete from product_import_files where tenant_id = $1 and import_id = $2",
        )
        .bind(self.tenant)
        .bind(work.id)
        .execute(&mut **c)
        .await)?;
        let after = serde_json::json!({
            "import_id": work.id,
            "created": work.created,
            "updated": work.updated,
            "unchanged": work.unchanged,
            "failed": failed,
        });
        audit::record(
            &mut tx,
            Some(self.tenant),
            &work.actor,
            Change {
                action: "products.imported",
                resource_type: "import",
                resource_id: Some(work.id.to_string()),
                after: Some(after.clone()),
                ..Default::default()
            },
        )
        .await?;
        events::emit(&mut tx, Some(self.tenant), "import.completed", &after).await?;
        tx.commit().await
    }

    /// Marks an import failed for good (the file cannot be read any more, or the job ran
    /// out of attempts); what earlier chunks wrote stays.
    pub(crate) async fn fail_product_import(&self, id: Uuid, error: &str) -> StoreResult<()> {
        tenant_exec!(self, p => sqlx::query(
            "update product_imports set status = 'failed', error = $3, body = $4, finished_at = $5
             where tenant_id = $1 and id = $2 and status in ('queued', 'running')",
        )
        .bind(self.tenant)
        .bind(id)
        .bind(error)
        .bind(Vec::<u8>::new())
        .bind(now_micros())
        .execute(p)
        .await)?;
        tenant_exec!(self, p => sqlx::query(
            "delete from product_import_files where tenant_id = $1 and import_id = $2",
        )
        .bind(self.tenant)
        .bind(id)
        .execute(p)
        .await)?;
        Ok(())
    }
}

/// What [`blob_io`] does with the `body` blob.
enum BlobIo<'a> {
    /// Writes these bytes from offset 0 (the blob has exactly their length).
    Write(&'a [u8]),
    /// Fills this buffer from offset 0 (as long as the blob).
    Read(&'a mut [u8]),
}

/// Reads or writes `product_import_files.body` of row `rowid` with SQLite's incremental
/// blob I/O, 1 MiB at a time, so that a large file is never copied whole by SQLite or sqlx.
/// Runs on `conn` (inside its open transaction, if any).
async fn blob_io(conn: &mut sqlx::SqliteConnection, rowid: i64, io: BlobIo<'_>) -> StoreResult<()> {
    use libsqlite3_sys as ffi;
    const PIECE: usize = 1 << 20;
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let writing = matches!(io, BlobIo::Write(_));
    let mut blob: *mut ffi::sqlite3_blob = std::ptr::null_mut();
    // SAFETY: the connection is locked for us (its worker thread is parked) and `db` is
    // valid while `handle` lives; the names are NUL-terminated literals and `blob` is an
    // out-pointer SQLite fills in.
    let rc = unsafe {
        ffi::sqlite3_blob_open(
            db,
            c"main".as_ptr(),
            c"product_import_files".as_ptr(),
            c"body".as_ptr(),
            rowid,
            i32::from(writing),
            &raw mut blob,
        )
    };
    let fail = |what: &str, rc: i32| {
        StoreError::Database(sqlx::Error::Protocol(format!(
            "sqlite3_blob_{what} of an import file failed (code {rc})"
        )))
    };
    if rc != ffi::SQLITE_OK {
        // SAFETY: closing a null handle is a no-op; a handle SQLite allocated despite the
        // error is released.
        unsafe { ffi::sqlite3_blob_close(blob) };
        return Err(fail("open", rc));
    }
    let mut rc = ffi::SQLITE_OK;
    let mut at = 0usize;
    match io {
        BlobIo::Write(bytes) => {
            for piece in bytes.chunks(PIECE) {
                let (Ok(n), Ok(offset)) = (i32::try_from(piece.len()), i32::try_from(at)) else {
                    rc = ffi::SQLITE_TOOBIG;
                    break;
                };
                // SAFETY: `blob` is open for writing; `piece` is valid for `n` bytes and
                // `offset + n` is within the blob, which has the length of `bytes`.
                rc = unsafe { ffi::sqlite3_blob_write(blob, piece.as_ptr().cast(), n, offset) };
                if rc != ffi::SQLITE_OK {
                    break;
                }
                at += piece.len();
            }
        }
        BlobIo::Read(buf) => {
            for piece in buf.chunks_mut(PIECE) {
                let (Ok(n), Ok(offset)) = (i32::try_from(piece.len()), i32::try_from(at)) else {
                    rc = ffi::SQLITE_TOOBIG;
                    break;
                };
                // SAFETY: `blob` is open; `piece` is valid for writes of `n` bytes and
                // `offset + n` is within the blob, whose length `buf` has.
                rc = unsafe { ffi::sqlite3_blob_read(blob, piece.as_mut_ptr().cast(), n, offset) };
                if rc != ffi::SQLITE_OK {
                    break;
                }
                at += piece.len();
            }
        }
    }
    // SAFETY: `blob` was opened above and is closed once.
    let closed = unsafe { ffi::sqlite3_blob_close(blob) };
    if rc != ffi::SQLITE_OK {
        return Err(fail(if writing { "write" } else { "read" }, rc));
    }
    if closed != ffi::SQLITE_OK {
        return Err(fail("close", closed));
    }
    Ok(())
}
