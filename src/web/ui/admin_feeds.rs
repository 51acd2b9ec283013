//! Admin page: system-wide marketplace feed monitoring (`/admin/feeds`): every store's
//! sources with their last run, status, counts and error (from
//! `GET /api/v1/admin/marketplace/import-jobs`, filterable by status and marketplace), and
//! the mass trigger (`POST …/import-jobs/trigger`) of all or the filtered sources.

use crate::web::AppState;
use crate::web::ui::{CsrfForm, Ctx, UiError, redirect_with_flash};
use axum::Router;
use axum::extract::Query;
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;
use serde_json::{Value, json};

/// Templates of this page.
pub const TEMPLATES: &[(&str, &str)] = &[(
    "admin/feeds.html",
    include_str!("templates/admin/feeds.html"),
)];

/// Routes of this page.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/feeds", get(index))
        .route("/admin/feeds/trigger", post(trigger))
}

#[derive(Deserialize, Default)]
struct Filter {
    #[serde(default)]
    status: String,
    #[serde(default)]
    marketplace: String,
}

impl Filter {
    fn query(&self) -> String {
        let mut qs = url::form_urlencoded::Serializer::new(String::new());
        if !self.status.is_empty() {
            qs.append_pair("status", &self.status);
        }
        if !self.marketplace.is_empty() {
            qs.append_pair("marketplace", &self.marketplace);
        }
        qs.finish()
    }
}

async fn index(cx: Ctx, Query(f): Query<Filter>) -> Response {
    let r = async {
        cx.session()?;
        let q = f.query();
        let rows = cx
            .get(&format!("/api/v1/admin/marketplace/import-jobs?{q}"))
            .await?;
        cx.render(
            "admin/feeds.html",
            context! { title => "Marketplace feeds", nav => "feeds", rows => Serde(rows), f => context! { status => f.status, marketplace => f.marketplace } },
        )
    }
    .await;
    cx.finish(r)
}

async fn trigger(cx: Ctx, CsrfForm(f): CsrfForm<Filter>) -> Response {
    let r = async {
        cx.session()?;
        let opt = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
        let body = json!({ "status": opt(&f.status), "marketplace": opt(&f.marketplace) });
        let back = format!("/admin/feeds?{}", f.query());
        match cx
            .post("/api/v1/admin/marketplace/import-jobs/trigger", body)
            .await
        {
            Ok(v) => Ok(redirect_with_flash(
                &back,
                &format!("{} fetches queued.", v["queued"]),
            )),
            Err(e) if e.status.is_client_error() && e.status.as_u16() != 401 => {
                Ok(redirect_with_flash(&back, &e.message))
            }
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}
