//! Access control: permissions (`resource.action` strings), the default merchant roles,
//! platform staff roles, and the marker types handlers use to declare the permission a
//! route needs in its signature (`Authorized<perm::ProductsEdit>`).
//!
//! Rule: holding `X.manage` implies every other `X.*` permission (an Owner holds
//! `team.manage` and may therefore also view the team).

use std::fmt;

macro_rules! permissions {
    ($( $variant:ident = $s:literal ),* $(,)?) => {
        /// A merchant permission. The wire form is its `resource.action` string.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission { $( $variant ),* }

        impl Permission {
            /// Every merchant permission, in a stable order.
            pub const ALL: &'static [Permission] = &[ $( Permission::$variant ),* ];

            /// The wire form, e.g. `products.edit`.
            pub fn as_str(self) -> &'static str {
                match self { $( Permission::$variant => $s ),* }
            }
        }

        /// Zero-sized markers naming one permission each, for `Authorized<P>`.
        pub mod perm {
            $(
                #[doc = concat!("Requires `", $s, "`.")]
                pub struct $variant;
                impl super::Need for $variant {
                    const PERMISSION: super::Permission = super::Permission::$variant;
                }
            )*
        }
    };
}

permissions! {
    TeamManage = "team.manage",
    TeamInvite = "team.invite",
    TeamRemove = "team.remove",
    TeamView = "team.view",
    ProductsCreate = "products.create",
    ProductsEdit = "products.edit",
    ProductsDelete = "products.delete",
    ProductsView = "products.view",
    OrdersCreate = "orders.create",
    OrdersEdit = "orders.edit",
    OrdersView = "orders.view",
    ImportsTrigger = "imports.trigger",
    ImportsView = "imports.view",
    ImportsConfigure = "imports.configure",
    SettingsEdit = "settings.edit",
    AnalyticsView = "analytics.view",
}

/// A route's required merchant permission, as a type (see [`perm`]).
pub trait Need: Send + Sync + 'static {
    const PERMISSION: Permission;
}

impl Permission {
    /// Parses `resource.action`. Errors: the string is not a known permission.
    pub fn parse(s: &str) -> Result<Permission, String> {
        Permission::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown permission '{s}'"))
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }

    fn resource(self) -> &'static str {
        self.as_str().split('.').next().unwrap_or("")
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of merchant permissions (a role's grant).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub fn of(perms: &[Permission]) -> Self {
        Self(perms.iter().fold(0, |acc, p| acc | p.bit()))
    }

    /// Every permission (super admin acting in a tenant).
    pub fn all() -> Self {
        Self::of(Permission::ALL)
    }

    /// Parses a stored JSON list of permission strings; unknown entries are ignored
    /// (a permission removed from the code grants nothing).
    pub fn from_strings<S: AsRef<str>>(list: &[S]) -> Self {
        Self::of(
            &list
                .iter()
                .filter_map(|s| Permission::parse(s.as_ref()).ok())
                .collect::<Vec<_>>(),
        )
    }

    /// Does the set grant `p`, directly or through `resource.manage`?
    pub fn allows(self, p: Permission) -> bool {
        if self.0 & p.bit() != 0 {
            return true;
        }
        Permission::ALL.iter().any(|m| {
            m.as_str().ends_with(".manage") && m.resource() == p.resource() && self.0 & m.bit() != 0
        })
    }

    /// Does this set grant everything `other` grants?
    pub fn covers(self, other: PermissionSet) -> bool {
        Permission::ALL
            .iter()
            .filter(|p| other.0 & p.bit() != 0)
            .all(|p| self.allows(*p))
    }

    /// The granted permissions as listed (not expanded through `.manage`).
    pub fn to_vec(self) -> Vec<Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(|p| self.0 & p.bit() != 0)
            .collect()
    }

    /// Wire strings of [`Self::to_vec`].
    pub fn to_strings(self) -> Vec<String> {
        self.to_vec()
            .iter()
            .map(|p| p.as_str().to_string())
            .collect()
    }
}

/// A default role created for every tenant at provisioning.
pub struct SystemRole {
    pub key: &'static str,
    pub name: &'static str,
    pub permissions: &'static [Permission],
}

use Permission::*;

/// The default merchant roles, with exactly the permissions the product defines.
pub const SYSTEM_ROLES: &[SystemRole] = &[
    SystemRole {
        key: "owner",
        name: "Owner",
        permissions: &[
            TeamManage,
            TeamInvite,
            TeamRemove,
            ProductsCreate,
            ProductsEdit,
            ProductsDelete,
            ProductsView,
            OrdersCreate,
            OrdersEdit,
            OrdersView,
            ImportsTrigger,
            ImportsView,
            ImportsConfigure,
            SettingsEdit,
            AnalyticsView,
        ],
    },
    SystemRole {
        key: "manager",
        name: "Manager",
        permissions: &[
            TeamInvite,
            TeamView,
            ProductsCreate,
            ProductsEdit,
            ProductsView,
            OrdersCreate,
            OrdersEdit,
            OrdersView,
            ImportsTrigger,
            ImportsView,
            AnalyticsView,
        ],
    },
    SystemRole {
        key: "editor",
        name: "Editor",
        permissions: &[
            ProductsCreate,
            ProductsEdit,
            ProductsView,
            OrdersView,
            OrdersEdit,
            ImportsView,
        ],
    },
    SystemRole {
        key: "viewer",
        name: "Viewer",
        permissions: &[ProductsView, OrdersView, ImportsView],
    },
];

/// The role key every tenant must keep at least one member of.
pub const OWNER_ROLE: &str = "owner";

macro_rules! platform_permissions {
    ($( $variant:ident = $s:literal ),* $(,)?) => {
        /// A platform-level permission (operator staff).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum PlatformPermission { $( $variant ),* }

        impl PlatformPermission {
            pub const ALL: &'static [PlatformPermission] = &[ $( PlatformPermission::$variant ),* ];
            pub fn as_str(self) -> &'static str {
                match self { $( PlatformPermission::$variant => $s ),* }
            }
        }

        /// Markers for `PlatformAuthorized<P>`.
        pub mod platform_perm {
            $(
                #[doc = concat!("Requires `", $s, "`.")]
                pub struct $variant;
                impl super::PlatformNeed for $variant {
                    const PERMISSION: super::PlatformPermission = super::PlatformPermission::$variant;
                }
            )*
        }
    };
}

platform_permissions! {
    MerchantsView = "platform.merchants.view",
    MerchantsManage = "platform.merchants.manage",
    AuditView = "platform.audit.view",
    ThemesView = "platform.themes.view",
    ThemesManage = "platform.themes.manage",
}

/// A route's required platform permission, as a type (see [`platform_perm`]).
pub trait PlatformNeed: Send + Sync + 'static {
    const PERMISSION: PlatformPermission;
}

/// Platform staff roles, stored in `users.platform_role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformRole {
    /// Everything.
    SuperAdmin,
    /// Read-only support staff: may look at merchants, themes and the audit log.
    Support,
}

impl PlatformRole {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "super_admin" => Ok(Self::SuperAdmin),
            "support" => Ok(Self::Support),
            other => Err(format!(
                "unknown platform role '{other}': use super_admin or support"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SuperAdmin => "super_admin",
            Self::Support => "support",
        }
    }

    pub fn allows(self, p: PlatformPermission) -> bool {
        match self {
            Self::SuperAdmin => true,
            Self::Support => matches!(
                p,
                PlatformPermission::MerchantsView
                    | PlatformPermission::AuditView
                    | PlatformPermission::ThemesView
            ),
        }
    }

    /// What the role may do inside a tenant it is not a member of.
    pub fn tenant_permissions(self) -> PermissionSet {
        match self {
            Self::SuperAdmin => PermissionSet::all(),
            Self::Support => PermissionSet::of(&[
                TeamView,
                ProductsView,
                OrdersView,
                ImportsView,
                AnalyticsView,
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_match_the_product_definition() {
        let owner = PermissionSet::of(SYSTEM_ROLES[0].permissions);
        assert_eq!(SYSTEM_ROLES[0].permissions.len(), 15);
        assert!(owner.allows(TeamView), "team.manage implies team.view");
        let viewer = PermissionSet::of(SYSTEM_ROLES[3].permissions);
        assert!(!viewer.allows(ProductsEdit));
        assert!(owner.covers(PermissionSet::of(SYSTEM_ROLES[1].permissions)));
        assert!(!PermissionSet::of(SYSTEM_ROLES[1].permissions).covers(owner));
        assert_eq!(Permission::parse("products.edit"), Ok(ProductsEdit));
        assert!(Permission::parse("products.fly").is_err());
        assert_eq!(
            PermissionSet::from_strings(&["orders.view", "nope"]).to_strings(),
            vec!["orders.view"]
        );
    }
}
