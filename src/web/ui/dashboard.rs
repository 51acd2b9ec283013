//! The merchant dashboard (`/dashboard`): onboarding wizard, products, imports, team,
//! API keys, webhooks, checkout settings (payments, shipping, taxes, discounts) and live
//! events, for members of the tenant per their role. Every
//! page calls the merchant API (`/api/v1/...`) as the signed-in member, so a control the
//! role does not allow is hidden here and refused by the API route behind it.

pub mod catalog;
pub mod customers;
pub mod developers;
pub mod domains;
pub mod feeds;
pub mod imports;
pub mod onboarding;
pub mod settings_checkout;
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
        .merge(feeds::routes())
        .merge(catalog::routes())
        .merge(customers::routes())
        .merge(team::routes())
        .merge(developers::routes())
        .merge(settings_checkout::routes())
        .merge(domains::routes())
}

/// Every dashboard template: the shared ones and each section's.
pub fn templates() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    TEMPLATES
        .iter()
        .chain(onboarding::TEMPLATES)
        .chain(imports::TEMPLATES)
        .chain(feeds::TEMPLATES)
        .chain(catalog::TEMPLATES)
        .chain(customers::TEMPLATES)
        .chain(team::TEMPLATES)
        .chain(developers::TEMPLATES)
        .chain(settings_checkout::TEMPLATES)
        .chain(domains::TEMPLATES)
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

/// The event types of the home page's activity feed: the ones `describe` in
/// dashboard.js turns into feed lines (and [`feed_item`] into the same lines server-side).
pub const FEED_TYPES: &[&str] = &[
    "order.created",
    "payment.received",
    "import.completed",
    "member.joined",
];

/// How many past events the activity feed shows on load.
const FEED_HISTORY: usize = 10;

/// One line of the activity feed.
#[derive(Debug, serde::Serialize)]
struct FeedItem {
    text: String,
    /// The page the line links to, if any.
    href: Option<String>,
    /// RFC 3339.
    occurred_at: String,
}

/// A non-empty string field of a JSON object.
fn non_empty<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(|x| x.as_str())
        .filter(|s| !s.is_empty())
}

/// A field as JavaScript's string concatenation shows it (numbers and strings).
fn shown(v: &serde_json::Value, key: &str) -> Option<String> {
    match v.get(key) {
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// The feed line of an event `{type, occurred_at, data}`, worded and linked exactly as
/// `describe` in dashboard.js words and links a live one; `None` for other types.
fn feed_item(ev: &serde_json::Value) -> Option<FeedItem> {
    let null = serde_json::Value::Null;
    let d = ev.get("data").unwrap_or(&null);
    let count = |k: &str| d.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let (text, href) = match ev.get("type").and_then(|t| t.as_str())? {
        "order.created" => {
            let total = d
                .get("total")
                .and_then(|t| non_empty(t, "formatted"))
                .unwrap_or("");
            let from = non_empty(d, "customer_name")
                .or_else(|| non_empty(d, "email"))
                .map(|c| format!(" from {c}"))
                .unwrap_or_default();
            (
                format!(
                    "New order #{} — {total}{from}",
                    shown(d, "number").unwrap_or_default()
                ),
                non_empty(d, "id").map(|id| format!("/dashboard/orders/{id}")),
            )
        }
        "payment.received" => {
            let order = d.get("order").unwrap_or(&null);
            let number = shown(order, "number")
                .map(|n| format!(" for order #{n}"))
                .unwrap_or_default();
            let amount = d
                .get("amount")
                .and_then(|a| a.get("formatted"))
                .and_then(|f| f.as_str())
                .map(|f| format!(": {f}"))
                .unwrap_or_default();
            (
                format!("Payment received{number}{amount}"),
                non_empty(order, "id").map(|id| format!("/dashboard/orders/{id}")),
            )
        }
        "import.completed" => (
            format!(
                "Import finished: {} created, {} updated, {} failed",
                count("created"),
                count("updated"),
                count("failed")
            ),
            Some("/dashboard/imports".to_string()),
        ),
        "member.joined" => (
            format!(
                "A new member joined the team{}",
                non_empty(d, "email")
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            None,
        ),
        _ => return None,
    };
    Some(FeedItem {
        text,
        href,
        occurred_at: non_empty(ev, "occurred_at").unwrap_or("").to_string(),
    })
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
        // The feed's history, filtered by the member's permissions like the live stream.
        let types = FEED_TYPES.join(",");
        let past = cx
            .get(&format!(
                "/api/v1/events?types={types}&limit={FEED_HISTORY}"
            ))
            .await?;
        let events = past
            .get("data")
            .and_then(|d| d.as_array())
            .cloned()
            .unwrap_or_default();
        let feed: Vec<FeedItem> = events.iter().filter_map(feed_item).collect();
        // The live socket carries the feed's types and resumes after the newest line
        // shown, so an event committed while the page loads is neither lost nor doubled.
        let newest = events
            .first()
            .and_then(|e| e.get("id"))
            .and_then(|i| i.as_str())
            .map(str::to_string);
        cx.render(
            "dashboard/home.html",
            context! {
                title => "Home",
                setup => Serde(setup),
                feed => Serde(feed),
                live_query => format!("types={types}"),
                last_event_id => newest,
                ..nav.ctx("home")
            },
        )
    }
    .await;
    cx.finish(r)
}
