//! Dashboard section: product imports (`/dashboard/imports`). Upload a CSV (Shopify
//! legacy or 2024+, WooCommerce) → a preview from `POST /api/v1/imports/products?dry_run=true`
//! ("To create", "To update", "Errors" with the row errors; the file is kept server-side
//! as a pending import) → "Confirm import" queues it in the background
//! (`POST /api/v1/imports/products/pending/{id}?background=true`) → the import's page
//! (`/dashboard/imports/{id}`) shows the progress bar, updated by dashboard.js from
//! `/dashboard/imports/{id}/progress.json`, then the result report. The upload page lists
//! the recent imports.

use super::Nav;
use crate::web::AppState;
use crate::web::ui::{CsrfChecked, CsrfForm, Ctx, UiResult};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Value, json};

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/imports/upload.html",
        include_str!("../templates/dashboard/imports/upload.html"),
    ),
    (
        "dashboard/imports/preview.html",
        include_str!("../templates/dashboard/imports/preview.html"),
    ),
    (
        "dashboard/imports/result.html",
        include_str!("../templates/dashboard/imports/result.html"),
    ),
];

/// An import id from the path (a malformed one is a 404 page, not a 400).
fn import_id(raw: &str) -> Result<uuid::Uuid, crate::web::ui::ApiFailure> {
    uuid::Uuid::parse_str(raw).map_err(|_| crate::web::ui::ApiFailure {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: "import not found".into(),
        details: Value::Null,
    })
}

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/imports", get(upload_page))
        .route("/dashboard/imports/preview", post(preview))
        .route("/dashboard/imports/confirm", post(confirm))
        .route("/dashboard/imports/{id}", get(import_page))
        .route("/dashboard/imports/{id}/progress.json", get(import_json))
}

async fn upload(cx: &Ctx, status: StatusCode, errors: Value) -> UiResult {
    let nav = Nav::load(cx).await?;
    // The history is shown to roles that may view imports; others just see the form.
    let history = cx
        .get("/api/v1/imports/products?per_page=10")
        .await
        .ok()
        .and_then(|l| l.get("data").cloned())
        .unwrap_or(Value::Array(vec![]));
    cx.render_status(
        status,
        "dashboard/imports/upload.html",
        context! { title => "Import products", errors => Serde(&errors), history => Serde(&history), ..nav.ctx("imports") },
    )
}

async fn upload_page(cx: Ctx) -> Response {
    let r = upload(&cx, StatusCode::OK, json!({})).await;
    cx.finish(r)
}

/// `POST /dashboard/imports/preview?_csrf=…` (multipart with the `file` field).
async fn preview(cx: Ctx, _c: CsrfChecked, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let r = async {
        match cx
            .forward(
                Method::POST,
                "/api/v1/imports/products?dry_run=true",
                &ct,
                body,
            )
            .await
        {
            Ok(report) => {
                let nav = Nav::load(&cx).await?;
                cx.render(
                    "dashboard/imports/preview.html",
                    context! { title => "Import preview", report => Serde(&report), ..nav.ctx("imports") },
                )
            }
            Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
                let msg = match e.code.as_str() {
                    "empty_file" | "required" => "Choose a CSV file to upload.".to_string(),
                    _ => format!("This file cannot be imported: {}", e.message),
                };
                upload(&cx, e.status, json!({ "file": msg })).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(serde::Deserialize)]
struct ConfirmForm {
    pending_import_id: String,
}

/// `POST /dashboard/imports/confirm`: queues the kept upload and redirects to the
/// import's progress page.
async fn confirm(cx: Ctx, CsrfForm(f): CsrfForm<ConfirmForm>) -> Response {
    let r = async {
        let id = f.pending_import_id.trim();
        let valid = uuid::Uuid::parse_str(id).is_ok();
        let res = if valid {
            cx.post(
                &format!("/api/v1/imports/products/pending/{id}?background=true"),
                json!({}),
            )
            .await
        } else {
            Err(crate::web::ui::ApiFailure {
                status: StatusCode::NOT_FOUND,
                code: "not_found".into(),
                message: "pending import not found".into(),
                details: Value::Null,
            })
        };
        match res {
            Ok(import) => {
                let id = import.get("id").and_then(|v| v.as_str()).unwrap_or("");
                Ok(axum::response::Redirect::to(&format!("/dashboard/imports/{id}")).into_response())
            }
            Err(e) if e.status == StatusCode::NOT_FOUND => {
                upload(
                    &cx,
                    StatusCode::NOT_FOUND,
                    json!({ "file": "This preview has expired or was already imported. Upload the file again." }),
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `GET /dashboard/imports/{id}`: a running import's progress (the bar moves with
/// dashboard.js; without JavaScript, "Refresh" reloads), or the finished import's report.
async fn import_page(cx: Ctx, Path(raw): Path<String>) -> Response {
    let r = async {
        let id = import_id(&raw)?;
        let import = cx.get(&format!("/api/v1/imports/products/{id}")).await?;
        let nav = Nav::load(&cx).await?;
        let status = import.get("status").and_then(|v| v.as_str()).unwrap_or("");
        let title = match status {
            "completed" => "Import finished",
            "failed" => "Import failed",
            _ => "Importing products",
        };
        cx.render(
            "dashboard/imports/result.html",
            context! {
                title,
                imp => Serde(&import),
                report => Serde(import.get("report")),
                ..nav.ctx("imports")
            },
        )
    }
    .await;
    cx.finish(r)
}

/// `GET /dashboard/imports/{id}/progress.json`: `{status, products_done, products_total,
/// created, updated}` for the progress bar.
async fn import_json(cx: Ctx, Path(raw): Path<String>) -> Response {
    let r = async {
        cx.session()?;
        let id = import_id(&raw)?;
        let i = cx.get(&format!("/api/v1/imports/products/{id}")).await?;
        Ok(json!({
            "status": i.get("status"),
            "products_done": i.get("products_done"),
            "products_total": i.get("products_total"),
            "created": i.get("created"),
            "updated": i.get("updated"),
        }))
    }
    .await;
    crate::web::ui::json_response(r)
}
