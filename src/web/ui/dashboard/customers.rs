//! Dashboard customers (`orders.view`): the list with search and pages, and a customer's
//! detail with orders and lifetime spend. Calls `/api/v1/customers`.

use super::Nav;
use crate::web::AppState;
use crate::web::ui::{Ctx, query_string};
use axum::Router;
use axum::extract::{Path, Query};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;

/// The customer pages' templates.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/customers/index.html",
        include_str!("../templates/dashboard/customers/index.html"),
    ),
    (
        "dashboard/customers/show.html",
        include_str!("../templates/dashboard/customers/show.html"),
    ),
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/customers", get(list))
        .route("/dashboard/customers/{id}", get(show))
}

#[derive(Deserialize, Default)]
struct ListQuery {
    q: Option<String>,
    page: Option<i64>,
}

async fn list(cx: Ctx, Query(f): Query<ListQuery>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let page = f.page.unwrap_or(1).clamp(1, 1_000_000);
        let q = f.q.clone().unwrap_or_default();
        let list = cx
            .get(&format!(
                "/api/v1/customers?{}",
                query_string([("q", q.clone()), ("page", page.to_string()), ("per_page", "25".to_string())])
            ))
            .await?;
        let shop = cx.get("/api/v1/shop").await.ok();
        let currency = shop.as_ref().and_then(|s| s.get("currency")).and_then(|c| c.as_str()).unwrap_or("EUR").to_string();
        let mut customers = list.get("data").cloned().unwrap_or_default();
        if let Some(arr) = customers.as_array_mut() {
            for c in arr {
                let minor = c["lifetime_spend_minor"].as_i64().unwrap_or(0);
                c["spend"] = serde_json::json!(crate::store::catalog::MoneyDto::new(minor, &currency).formatted);
            }
        }
        cx.render(
            "dashboard/customers/index.html",
            context! {
                title => "Customers",
                customers => Serde(customers),
                pagination => Serde(list.get("pagination")),
                page, q => q.clone(),
                filter_query => if q.is_empty() { String::new() } else { format!("&{}", query_string([("q", q)])) },
                ..nav.ctx("customers")
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn show(cx: Ctx, Path(id): Path<uuid::Uuid>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let c = cx.get(&format!("/api/v1/customers/{id}")).await?;
        let shop = cx.get("/api/v1/shop").await.ok();
        let currency = shop
            .as_ref()
            .and_then(|s| s.get("currency"))
            .and_then(|c| c.as_str())
            .unwrap_or("EUR")
            .to_string();
        let spend = crate::store::catalog::MoneyDto::new(
            c["lifetime_spend_minor"].as_i64().unwrap_or(0),
            &currency,
        )
        .formatted;
        cx.render(
            "dashboard/customers/show.html",
            context! {
                title => c["email"].as_str().unwrap_or("Customer").to_string(),
                customer => Serde(c),
                spend,
                ..nav.ctx("customers")
            },
        )
    }
    .await;
    cx.finish(r)
}
