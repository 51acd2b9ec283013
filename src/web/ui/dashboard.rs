//! The merchant dashboard (`/dashboard`): onboarding wizard, products, imports, team,
//! API keys, webhooks and live events, for members of the tenant per their role. Every
//! page calls the merchant API (`/api/v1/...`) as the signed-in member, so a control the
//! role does not allow is hidden here and refused by the API route behind it.

pub mod catalog;
pub mod developers;
pub mod imports;
pub mod onboarding;
pub mod team;

use super::{Ctx, UiError, UiResult};
use crate::access::{Permission, PermissionSet};
use crate::web::AppState;
use axum::Router;
use axum::response::Response;
use axum::routing::get;
use minijinja::value::Serde;
use minijinja::{Value, context};

/// Templates of the dashboard's own pages (each section module lists its own).
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/base.html",
        include_str!("templates/dashboard/base.html"),
    ),
    (
        "dashboard/home.html",
        include_str!("templates/dashboard/home.html"),
    ),
];

/// The dashboard routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(home))
        .merge(onboarding::routes())
        .merge(imports::routes())
        .merge(catalog::routes())
        .merge(team::routes())
        .merge(developers::routes())
}

/// Every dashboard template: the shared ones and each section's.
pub fn templates() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    TEMPLATES
        .iter()
        .chain(onboarding::TEMPLATES)
        .chain(imports::TEMPLATES)
        .chain(catalog::TEMPLATES)
        .chain(team::TEMPLATES)
        .chain(developers::TEMPLATES)
}

/// What every dashboard page shows around its content: the user, their memberships (for
/// the merchant switcher), the active tenant and its permissions (`can.<perm>` hides the
/// controls the role does not allow).
pub struct Nav {
    pub me: serde_json::Value,
    pub tenant: serde_json::Value,
    pub permissions: Vec<String>,
}

impl Nav {
    /// Loads the navigation context. Errors: not signed in; no active tenant (a user
    /// without any membership) is an API-style 403 page.
    pub async fn load(cx: &Ctx) -> Result<Nav, UiError> {
        cx.session()?;
        let me = cx.get("/api/v1/auth/me").await?;
        let active = me
            .get("active_tenant_id")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let tenant = me
            .get("memberships")
            .and_then(|m| m.as_array())
            .and_then(|list| {
                list.iter()
                    .find(|m| m.get("tenant_id").and_then(|t| t.as_str()) == active.as_deref())
            })
            .cloned()
            .ok_or_else(|| {
                UiError::Api(super::ApiFailure {
                    status: axum::http::StatusCode::FORBIDDEN,
                    code: "no_membership".into(),
                    message: "Your account is not a member of any store. Ask a store owner for an invitation.".into(),
                    details: serde_json::Value::Null,
                })
            })?;
        let permissions = me
            .get("permissions")
            .and_then(|p| p.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Nav {
            me,
            tenant,
            permissions,
        })
    }

    fn set(&self) -> PermissionSet {
        PermissionSet::from_strings(&self.permissions)
    }

    /// True when the role allows `perm` (`products.edit`, …; a `resource.manage`
    /// permission covers its resource's other actions).
    pub fn can(&self, perm: &str) -> bool {
        Permission::parse(perm).is_ok_and(|p| self.set().allows(p))
    }

    /// The template context: `me`, `tenant`, `can` (a map `perm → true` of every
    /// permission the role allows), `nav` (the current section, for `aria-current`).
    pub fn ctx(&self, section: &str) -> Value {
        let set = self.set();
        let can: std::collections::BTreeMap<&str, bool> = PermissionSet::all()
            .to_vec()
            .into_iter()
            .filter(|p| set.allows(*p))
            .map(|p| (p.as_str(), true))
            .collect();
        context! { me => Serde(&self.me), tenant => Serde(&self.tenant), can => Serde(can), nav => section }
    }
}

async fn home(cx: Ctx) -> Response {
    let r: UiResult = async {
        let nav = Nav::load(&cx).await?;
        // The setup guide is offered (banner) until the storefront is published.
        let setup = if nav.can("settings.edit") {
            onboarding::banner(&cx).await?
        } else {
            None
        };
        cx.render(
            "dashboard/home.html",
            context! { title => "Home", setup => Serde(setup), ..nav.ctx("home") },
        )
    }
    .await;
    cx.finish(r)
}
