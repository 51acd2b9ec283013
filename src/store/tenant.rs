//! The tenant scope: the only way to reach tenant-owned rows.

use super::Db;
use uuid::Uuid;

/// A database handle bound to one tenant. Its tenant id is private and every query
/// issued through it binds that id in its `where tenant_id = $1` clause, so code holding a
/// `TenantDb` cannot express an unscoped query. It is created only by tenant resolution
/// (after the caller's access to the tenant has been checked) and by provisioning.
#[derive(Clone, Debug)]
pub struct TenantDb {
    pub(super) db: Db,
    pub(super) tenant: Uuid,
}

impl TenantDb {
    /// Binds `db` to `tenant`. Crate-private: only the resolver and the control plane call it.
    pub(crate) fn new(db: Db, tenant: Uuid) -> Self {
        Self { db, tenant }
    }

    /// The tenant this scope is bound to.
    pub fn tenant_id(&self) -> Uuid {
        self.tenant
    }
}
