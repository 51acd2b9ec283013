//! Storage: one SQL text, two backends.
//!
//! [`Db`] wraps either an SQLite pair of pools (many readers, one writer: SQLite allows one
//! writer at a time, so a single writer connection never meets `SQLITE_BUSY`) or a
//! PostgreSQL pool. Every statement is written once with `$N` placeholders and run on
//! either backend through the [`dispatch!`] macro, which expands the same code for both.
//!
//! Tenant-owned data is reached only through [`TenantDb`] (see [`tenant`]), whose tenant id
//! is private and bound into every query. Cross-tenant reads (host → tenant resolution,
//! platform admin lists) live in [`platform`].

pub mod access;
pub mod audit;
pub mod catalog;
pub mod events;
pub mod imports;
pub mod jobs;
pub mod onboarding;
pub mod orders;
pub mod platform;
pub mod provisioning;
pub mod tenant;
pub mod users;
pub mod webhooks;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;
use uuid::Uuid;

pub use tenant::TenantDb;

/// Storage-layer error. The web layer maps each variant once to an HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was hit; `field` names the API field that collided.
    #[error("{field} is already taken")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The database URL or settings are unusable.
    #[error("{0}")]
    Config(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// Maps a unique-constraint violation to `Conflict { field }` using the constraint
    /// or column name found in the driver message; other errors pass through.
    pub fn on_unique(err: sqlx::Error, map: &[(&str, &'static str)]) -> StoreError {
        if let sqlx::Error::Database(db) = &err
            && db.is_unique_violation()
        {
            let msg = db.message().to_string();
            let constraint = db.constraint().unwrap_or("").to_string();
            for (needle, field) in map {
                if msg.contains(needle) || constraint.contains(needle) {
                    return StoreError::Conflict {
                        field,
                        message: format!("{field} is already taken"),
                    };
                }
            }
            return StoreError::Conflict {
                field: "id",
                message: "a record with the same key already exists".into(),
            };
        }
        StoreError::Database(err)
    }
}

/// Runs the same code against whichever backend a [`Db`] (or [`Tx`]) holds.
/// `dispatch!(db, pool => expr)` binds the SQLite read pool / PG pool; use `dispatch_write!`
/// for statements that write outside a transaction.
#[macro_export]
macro_rules! dispatch {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $p, .. } => $body,
            $crate::store::Db::Pg { platform: $p, .. } => $body,
        }
    };
}

/// Like [`dispatch!`] but binds the SQLite writer pool.
#[macro_export]
macro_rules! dispatch_write {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $p, .. } => $body,
            $crate::store::Db::Pg { platform: $p, .. } => $body,
        }
    };
}

/// Runs the same code against the connection of an open [`Tx`]: `exec_tx!(tx, c => q.execute(&mut **c))`.
#[macro_export]
macro_rules! dispatch_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($c) => $body,
            $crate::store::Tx::Pg($c) => $body,
        }
    };
}

/// Like [`dispatch!`] for `execute` statements: yields `Result<u64, sqlx::Error>` (rows affected).
#[macro_export]
macro_rules! exec {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $p, .. } => $body.map(|r| r.rows_affected()),
            $crate::store::Db::Pg { platform: $p, .. } => $body.map(|r| r.rows_affected()),
        }
    };
}

/// Like [`dispatch_write!`] for `execute` statements: yields rows affected.
#[macro_export]
macro_rules! exec_write {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $p, .. } => $body.map(|r| r.rows_affected()),
            $crate::store::Db::Pg { platform: $p, .. } => $body.map(|r| r.rows_affected()),
        }
    };
}

/// Like [`dispatch_tx!`] for `execute` statements: yields rows affected.
#[macro_export]
macro_rules! exec_tx {
    ($tx:expr, $c:ident => $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite($c) => $body.map(|r| r.rows_affected()),
            $crate::store::Tx::Pg($c) => $body.map(|r| r.rows_affected()),
        }
    };
}

/// Fetches the rows of one tenant whose `$col` is one of `$ids`, as `$row`:
/// `$head` is `select … from t where tenant_id = ` (the tenant is bound after it), `$tail`
/// follows the `in (…)` list (e.g. `" order by position"`). `$exec` is a pool, or
/// `&mut **c` inside [`dispatch_tx!`]/[`tenant_query!`], so pool and transaction paths share
/// one query. `$ids` must not be empty. Evaluates to `Result<Vec<$row>, sqlx::Error>`.
macro_rules! fetch_in {
    ($exec:expr, $row:ty, $head:expr, $col:literal, $tenant:expr, $ids:expr, $tail:literal) => {{
        let mut qb = sqlx::QueryBuilder::new($head);
        qb.push_bind($tenant).push(concat!(" and ", $col, " in ("));
        let mut sep = qb.separated(", ");
        for id in $ids {
            sep.push_bind(*id);
        }
        qb.push(concat!(")", $tail));
        qb.build_query_as::<$row>().fetch_all($exec).await
    }};
}
pub(crate) use fetch_in;

/// Which SQL backend a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database handle: chosen from the URL scheme (`sqlite://…` or `postgres://…`).
///
/// On PostgreSQL there are two pools, both running as the non-owner role `souk_app` so
/// that row-level security applies (migrations/postgres/0003_rls.sql):
/// - `platform`: sessions carry `souk.scope = 'platform'` and see every tenant's rows. It is
///   the explicitly named cross-tenant path (this module's `dispatch!` macros, [`Db::begin`]).
/// - `tenant`: sessions see nothing until a transaction sets `souk.tenant_id`; only
///   [`TenantDb`] uses it.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Pg { platform: PgPool, tenant: PgPool },
}

/// The PostgreSQL role the application's pools act as (created by migration 0003).
pub const PG_APP_ROLE: &str = "souk_app";

/// An open write transaction on either backend.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Pg(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Pg(t) => t.commit().await?,
        }
        Ok(())
    }
}

impl Db {
    /// Connects and runs the migrations for the backend named by `url`.
    ///
    /// `sqlite://PATH` creates the file if missing and enables WAL with
    /// `synchronous=NORMAL`; `postgres://…` connects a pool of `max_connections`.
    /// Errors: an unknown scheme, an unreachable server, or a failed migration.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Db> {
        let db = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            // Migrations run as the connecting (owner) user, before the role exists.
            let owner = PgPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(opts.clone())
                .await?;
            sqlx::migrate!("migrations/postgres").run(&owner).await?;
            owner.close().await;
            let pool = |platform: bool| {
                PgPoolOptions::new()
                    .max_connections(max_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            use sqlx::Executor;
                            conn.execute("set role souk_app").await?;
                            if platform {
                                conn.execute("set souk.scope = 'platform'").await?;
                            }
                            Ok(())
                        })
                    })
                    .connect_with(opts.clone())
            };
            Db::Pg {
                platform: pool(true).await?,
                tenant: pool(false).await?,
            }
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10));
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            let read = SqlitePoolOptions::new()
                .max_connections(max_connections.max(2))
                .connect_with(opts.read_only(true))
                .await?;
            let db = Db::Sqlite { read, write };
            db.migrate_sqlite().await?;
            db
        } else {
            return Err(StoreError::Config(format!(
                "unsupported database URL scheme in '{}': use sqlite://PATH or postgres://…",
                redact_url(url)
            )));
        };
        Ok(db)
    }

    async fn migrate_sqlite(&self) -> StoreResult<()> {
        if let Db::Sqlite { write, .. } = self {
            sqlx::migrate!("migrations/sqlite").run(write).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Pg { .. } => Backend::Postgres,
        }
    }

    /// Opens a platform-path write transaction (on SQLite, on the single writer connection).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite { write, .. } => Tx::Sqlite(write.begin().await?),
            Db::Pg { platform, .. } => Tx::Pg(platform.begin().await?),
        })
    }

    /// Checks that the database answers (for `/healthz`).
    pub async fn ping(&self) -> StoreResult<()> {
        exec!(self, p => sqlx::query("select 1").execute(p).await)?;
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Pg { platform, tenant } => {
                platform.close().await;
                tenant.close().await;
            }
        }
    }
}

/// Replaces the password of a database URL with `***` for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{}:***{}", &url[..s], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// `text` with the LIKE wildcards (`%`, `_`) and the escape character (`\`) escaped, for
/// a pattern used with `like $n escape '\'` (same on SQLite and PostgreSQL).
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Current time as integer microseconds since the Unix epoch (the storage timestamp unit).
pub fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

/// Microseconds since the epoch → RFC 3339 string for the API.
pub fn micros_to_rfc3339(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A new time-ordered id (UUIDv7).
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Serializes a value into the JSON text stored in `text` columns.
pub fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Parses JSON text from a `text` column.
pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("bad JSON column: {e}")))
}
