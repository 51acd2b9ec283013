//! The tenant scope: the only way to reach tenant-owned rows.

use super::{Db, StoreResult, Tx};
use sqlx::{PgPool, SqlitePool};
use uuid::Uuid;

/// The pools a [`TenantDb`] may use. On PostgreSQL only the `tenant` pool, whose sessions
/// see no row until `souk.tenant_id` is set (row-level security), which every use does
/// first ([`acquire_tenant`], [`begin_tenant`]); the platform pool is deliberately not
/// reachable from here.
#[derive(Clone, Debug)]
pub(crate) enum TenantPools {
    Sqlite {
        readers: super::Readers,
        write: SqlitePool,
    },
    Pg(PgPool),
}

/// A database handle bound to one tenant. Its tenant id is private and every query
/// issued through it binds that id in its `where tenant_id = $1` clause, so code holding a
/// `TenantDb` cannot express an unscoped query. On PostgreSQL every statement also runs on
/// a session or in a transaction that has set `souk.tenant_id` to the same tenant, so the
/// database's row-level security policies filter by it too: the second wall.
///
/// It is created only by tenant resolution (after the caller's access to the tenant has
/// been checked) and by the control plane.
#[derive(Clone, Debug)]
pub struct TenantDb {
    pub(crate) pools: TenantPools,
    pub(crate) tenant: Uuid,
}

/// Opens a PostgreSQL transaction with `souk.tenant_id` set to `tenant` for its duration
/// (`set_config(…, true)`), in one round trip: `BEGIN` and the `set_config` go as one
/// simple-query message. The row-level-security policies read that setting; it ends with
/// the transaction, so a pooled connection never carries a tenant to its next user.
pub(crate) async fn begin_tenant(
    pool: &sqlx::PgPool,
    tenant: Uuid,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    // A `Uuid` formats as 36 hex digits and dashes: nothing to escape.
    pool.begin_with(sqlx::AssertSqlSafe(format!(
        "BEGIN; SELECT set_config('souk.tenant_id', '{tenant}', true)"
    )))
    .await
}

/// A PostgreSQL connection of the tenant pool with `souk.tenant_id` set to `tenant` for
/// the session (`set_config(…, false)`), for one statement in autocommit: two round trips
/// (the setting, the statement) where a transaction takes three. Every use of the tenant
/// pool sets the tenant first, this way or by [`begin_tenant`] (whose local setting wins
/// inside its transaction), so the value a pooled session still carries from its previous
/// user is never what a statement runs under.
pub(crate) async fn acquire_tenant(
    pool: &sqlx::PgPool,
    tenant: Uuid,
) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    sqlx::query("select set_config('souk.tenant_id', $1, false)")
        .bind(tenant.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(conn)
}

/// Runs a statement on the tenant path: `tenant_query!(tdb, read|write, c => body)`.
/// On SQLite `c` is a held read connection ([`super::Readers`]) or the writer pool; on
/// PostgreSQL `c` is a tenant-pool connection whose session has `souk.tenant_id` set
/// ([`acquire_tenant`]), the statement running in autocommit.
/// Evaluates to `Result<T, sqlx::Error>`.
#[macro_export]
macro_rules! tenant_query {
    ($tdb:expr, read, $c:ident => $body:expr) => {
        match &$tdb.pools {
            $crate::store::tenant::TenantPools::Sqlite { readers, .. } => {
                let mut conn = readers.get().await;
                let $c = &mut *conn;
                $body
            }
            $crate::store::tenant::TenantPools::Pg(pool) => {
                $crate::tenant_query!(@pg pool, $tdb.tenant, $c => $body)
            }
        }
    };
    ($tdb:expr, write, $c:ident => $body:expr) => {
        match &$tdb.pools {
            $crate::store::tenant::TenantPools::Sqlite { write: $c, .. } => $body,
            $crate::store::tenant::TenantPools::Pg(pool) => {
                $crate::tenant_query!(@pg pool, $tdb.tenant, $c => $body)
            }
        }
    };
    (@pg $pool:expr, $tenant:expr, $c:ident => $body:expr) => {
        async {
            let mut conn = $crate::store::tenant::acquire_tenant($pool, $tenant).await?;
            let $c = &mut *conn;
            $body
        }
        .await
    };
}

/// Like [`tenant_query!`] for `execute` statements: evaluates to rows affected.
#[macro_export]
macro_rules! tenant_exec {
    ($tdb:expr, $c:ident => $body:expr) => {
        match &$tdb.pools {
            $crate::store::tenant::TenantPools::Sqlite { write: $c, .. } => {
                $body.map(|r| r.rows_affected())
            }
            $crate::store::tenant::TenantPools::Pg(pool) => {
                $crate::tenant_query!(@pg pool, $tdb.tenant, $c => $body.map(|r| r.rows_affected()))
            }
        }
    };
}

impl TenantDb {
    /// Binds `db` to `tenant`. Crate-private: only the resolver and the control plane call it.
    pub(crate) fn new(db: Db, tenant: Uuid) -> Self {
        let pools = match db {
            Db::Sqlite { readers, write, .. } => TenantPools::Sqlite { readers, write },
            Db::Pg { tenant, .. } => TenantPools::Pg(tenant),
        };
        Self { pools, tenant }
    }

    /// The tenant this scope is bound to.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant
    }

    /// Opens a write transaction on the tenant path (PostgreSQL: with `souk.tenant_id` set).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match &self.pools {
            TenantPools::Sqlite { write, .. } => Tx::Sqlite(write.begin().await?),
            TenantPools::Pg(pool) => Tx::Pg(begin_tenant(pool, self.tenant).await?),
        })
    }
}
