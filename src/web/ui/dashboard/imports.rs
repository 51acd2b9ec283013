//! Dashboard section: product imports (`/dashboard/imports`). Upload a CSV (Shopify
//! legacy or 2024+, WooCommerce) → a preview from `POST /api/v1/imports/products?dry_run=true`
//! ("To create", "To update", "Errors" with the row errors; the file is kept server-side
//! as a pending import) → "Confirm import" runs
//! `POST /api/v1/imports/products/pending/{id}` → the result page.

use super::Nav;
use crate::web::AppState;
use crate::web::ui::{CsrfChecked, CsrfForm, Ctx, UiResult};
use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
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

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/imports", get(upload_page))
        .route("/dashboard/imports/preview", post(preview))
        .route("/dashboard/imports/confirm", post(confirm))
}

async fn upload(cx: &Ctx, status: StatusCode, errors: Value) -> UiResult {
    let nav = Nav::load(cx).await?;
    cx.render_status(
        status,
        "dashboard/imports/upload.html",
        context! { title => "Import products", errors => Serde(&errors), ..nav.ctx("imports") },
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

/// `POST /dashboard/imports/confirm`: runs the kept upload and shows the result.
async fn confirm(cx: Ctx, CsrfForm(f): CsrfForm<ConfirmForm>) -> Response {
    let r = async {
        let id = f.pending_import_id.trim();
        let valid = uuid::Uuid::parse_str(id).is_ok();
        let res = if valid {
            cx.post(&format!("/api/v1/imports/products/pending/{id}"), json!({}))
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
            Ok(report) => {
                let nav = Nav::load(&cx).await?;
                cx.render(
                    "dashboard/imports/result.html",
                    context! { title => "Import finished", report => Serde(&report), ..nav.ctx("imports") },
                )
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
