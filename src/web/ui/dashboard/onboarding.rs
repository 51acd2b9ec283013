//! Dashboard section: the setup guide (onboarding wizard) at `/dashboard/onboarding`, and
//! the merchant switcher (`POST /dashboard/switch`).
//!
//! Each step is a plain form (works without JavaScript) that also auto-saves: with
//! `Accept: application/json` a POST answers `{saved, errors: {field: message}}`, else it
//! redirects (303) to the same or next step with a flash message, or re-renders the step
//! with the errors next to their fields. Everything goes through
//! `/api/v1/onboarding` (permission `settings.edit`).
//!
//! The branding step shows the store's real home page in a sandboxed `<iframe>`
//! (`GET /dashboard/onboarding/branding/preview?color_primary=…`), rendered with the
//! form's colours and fonts by `GET /api/v1/onboarding/preview`; `onboarding.js` points
//! it at the new values as the merchant edits them.

use super::Nav;
use crate::web::AppState;
use crate::web::api::onboarding::{CATEGORIES, STEPS};
use crate::web::ui::{
    ApiFailure, CsrfChecked, CsrfForm, Ctx, Session, UiError, UiResult, field_errors, query_string,
    redirect_with_flash,
};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde_json::{Map, Value, json};

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/onboarding/step.html",
        include_str!("../templates/dashboard/onboarding/step.html"),
    ),
    (
        "dashboard/onboarding/set_password.html",
        include_str!("../templates/dashboard/onboarding/set_password.html"),
    ),
    (
        "dashboard/onboarding/invitation.html",
        include_str!("../templates/dashboard/onboarding/invitation.html"),
    ),
];

/// Routes of this section (and the e-mail account pages, which use the UI templates).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/onboarding", get(first_open_step))
        .route(
            "/dashboard/onboarding/{step}",
            get(step_page).post(step_submit),
        )
        .route("/dashboard/onboarding/branding/logo", post(logo_upload))
        .route(PREVIEW_PATH, get(branding_preview))
        .route("/dashboard/onboarding/products/first", post(first_product))
        .route("/dashboard/onboarding/launch/publish", post(publish))
        .route("/dashboard/switch", post(switch))
        .merge(crate::web::storefront::account_routes())
}

/// The home page banner while the storefront is unpublished: `{done, total}` steps
/// (`None` once published).
pub async fn banner(cx: &Ctx) -> Result<Option<Value>, UiError> {
    let st = cx.get("/api/v1/onboarding").await?;
    if !st.get("completed_at").is_none_or(Value::is_null) {
        return Ok(None);
    }
    let steps = st.get("steps").and_then(Value::as_array);
    let total = steps.map_or(0, Vec::len);
    let done = steps.map_or(0, |s| {
        s.iter()
            .filter(|s| s.get("status").and_then(Value::as_str) != Some("todo"))
            .count()
    });
    Ok(Some(json!({ "done": done, "total": total })))
}

fn step_url(step: &str) -> String {
    format!("/dashboard/onboarding/{step}")
}

fn next_step(step: &str) -> &'static str {
    let i = STEPS.iter().position(|(id, _)| *id == step).unwrap_or(0);
    STEPS.get(i + 1).or(STEPS.last()).map_or("launch", |s| s.0)
}

fn known(step: &str) -> Result<(), UiError> {
    if STEPS.iter().any(|(id, _)| *id == step) {
        Ok(())
    } else {
        Err(UiError::Api(ApiFailure {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: "There is no such step in the setup guide.".into(),
            details: Value::Null,
        }))
    }
}

/// `GET /dashboard/onboarding`: the first step still to do (launch when all are done
/// or skipped).
async fn first_open_step(cx: Ctx) -> Response {
    let r = async {
        cx.session()?;
        let st = cx.get("/api/v1/onboarding").await?;
        let first = st
            .get("steps")
            .and_then(Value::as_array)
            .and_then(|s| {
                s.iter()
                    .find(|s| s.get("status").and_then(Value::as_str) == Some("todo"))
            })
            .and_then(|s| s.get("id").and_then(Value::as_str))
            .unwrap_or("launch")
            .to_string();
        Ok(Redirect::to(&step_url(&first)).into_response())
    }
    .await;
    cx.finish(r)
}

/// The values a step's form shows: saved values (theme settings for branding/website),
/// overlaid with what was just submitted.
fn form_values(state: &Value, step: &str, submitted: &[(String, String)]) -> Map<String, Value> {
    let mut form = Map::new();
    if matches!(step, "branding" | "website") {
        for s in state
            .get("theme_settings")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(id), Some(v)) = (s.get("id").and_then(Value::as_str), s.get("value")) {
                form.insert(id.to_string(), v.clone());
            }
        }
    } else if let Some(saved) = state
        .get("values")
        .and_then(|v| v.get(step))
        .and_then(Value::as_object)
    {
        form.extend(saved.clone());
    }
    for (k, v) in submitted {
        if !k.starts_with('_') && k != "stripe_secret_key" {
            form.insert(k.clone(), Value::String(v.clone()));
        }
    }
    form
}

async fn render_step(
    cx: &Ctx,
    step: &str,
    status: StatusCode,
    errors: Value,
    submitted: &[(String, String)],
    product_form: Value,
) -> UiResult {
    known(step)?;
    let nav = Nav::load(cx).await?;
    let state = cx.get("/api/v1/onboarding").await?;
    let title = STEPS
        .iter()
        .find(|(id, _)| *id == step)
        .map_or("Setup guide", |s| s.1);
    let form = form_values(&state, step, submitted);
    let preview_url = (step == "branding").then(|| preview_url(&state, &form));
    let storefront = nav
        .tenant
        .get("tenant_handle")
        .and_then(Value::as_str)
        .map(|h| format!("/s/{h}/"));
    cx.render_status(
        status,
        "dashboard/onboarding/step.html",
        context! {
            title => format!("Setup guide: {title}"),
            step, step_title => title,
            next => next_step(step),
            state => Serde(&state),
            form => Serde(&form),
            errors => Serde(&errors),
            product_form => Serde(&product_form),
            categories => CATEGORIES.iter().map(|(v, l)| vec![v.to_string(), l.to_string()]).collect::<Vec<_>>(),
            storefront, preview_url,
            ..nav.ctx("onboarding")
        },
    )
}

/// Path of the branding step's live storefront preview.
const PREVIEW_PATH: &str = "/dashboard/onboarding/branding/preview";

/// The preview's Content-Security-Policy: no script, frame, plugin, form or `<base>`
/// (and `sandbox`, so even opened on its own it runs in an opaque origin, never as the
/// dashboard), styles, images and fonts from anywhere (a theme may use a web font or a
/// product image host), and only the dashboard itself may frame it.
const PREVIEW_CSP: &str = "default-src 'none'; img-src * data:; style-src * 'unsafe-inline'; \
font-src * data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox";

/// The preview address with the colours and fonts of `form` (the saved values, or the
/// ones just submitted), for the iframe's `src` (what shows without JavaScript).
fn preview_url(state: &Value, form: &Map<String, Value>) -> String {
    let pairs = state
        .get("theme_settings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| {
            matches!(
                s.get("kind").and_then(Value::as_str),
                Some("color" | "font")
            )
        })
        .filter_map(|s| s.get("id").and_then(Value::as_str))
        .map(|id| {
            let v = form.get(id).and_then(Value::as_str).unwrap_or_default();
            (id, v.to_string())
        });
    match query_string(pairs) {
        q if q.is_empty() => PREVIEW_PATH.to_string(),
        q => format!("{PREVIEW_PATH}?{q}"),
    }
}

/// `GET /dashboard/onboarding/branding/preview?color_primary=…&font_body=…`: the store's
/// real home page with these draft colours and fonts (validated by the API: invalid ones
/// fall back to the saved values), for the branding step's `<iframe>`. Always the
/// session's current tenant (the API acts for the token's tenant; nothing in the query
/// or the host selects another), needs `settings.edit` like the wizard (else the same
/// 403 page), and works before the store is published. Every answer, error pages
/// included, carries [`PREVIEW_CSP`], `X-Frame-Options: SAMEORIGIN` and `no-store`.
async fn branding_preview(cx: Ctx, RawQuery(query): RawQuery) -> Response {
    let r = async {
        cx.session()?;
        let pairs = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()));
        let path = match query_string(pairs) {
            q if q.is_empty() => "/api/v1/onboarding/preview".to_string(),
            q => format!("/api/v1/onboarding/preview?{q}"),
        };
        let page = cx.get(&path).await?;
        let Some(html) = page.get("text").and_then(Value::as_str) else {
            return Err(UiError::Api(ApiFailure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "internal".into(),
                message: "The preview could not be shown.".into(),
                details: Value::Null,
            }));
        };
        Ok(Html(html.to_string()).into_response())
    }
    .await;
    let mut res = cx.finish(r);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PREVIEW_CSP),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

async fn step_page(cx: Ctx, Path(step): Path<String>) -> Response {
    let r = render_step(&cx, &step, StatusCode::OK, json!({}), &[], json!({})).await;
    cx.finish(r)
}

fn wants_json(h: &HeaderMap) -> bool {
    h.get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `POST /dashboard/onboarding/{step}`: `_action` = `continue` (save and mark done),
/// `skip`, or `save`/none (auto-save).
async fn step_submit(
    cx: Ctx,
    Path(step): Path<String>,
    headers: HeaderMap,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let json_mode = wants_json(&headers);
    let action = fields
        .iter()
        .find(|(k, _)| k == "_action")
        .map(|(_, v)| v.as_str())
        .unwrap_or("save");
    let mark = match action {
        "continue" => Some("done"),
        "skip" => Some("skipped"),
        _ => None,
    };
    let values: Map<String, Value> = fields
        .iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let body = json!({ "values": values, "mark": mark });
    let res = if known(&step).is_ok() {
        cx.api(
            Method::PATCH,
            &format!("/api/v1/onboarding/{step}"),
            Some(body),
        )
        .await
    } else {
        Err(ApiFailure {
            status: StatusCode::NOT_FOUND,
            code: "not_found".into(),
            message: "There is no such step in the setup guide.".into(),
            details: Value::Null,
        })
    };
    if json_mode {
        return match res {
            Ok(_) => axum::Json(json!({ "saved": true, "errors": {} })).into_response(),
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "saved": false, "errors": field_errors(&e) })),
            )
                .into_response(),
            Err(e) => (
                e.status,
                axum::Json(json!({ "saved": false, "errors": { "_form": e.message } })),
            )
                .into_response(),
        };
    }
    let r = async {
        match res {
            Ok(_) => {
                let (to, msg) = match mark {
                    Some("done") => (step_url(next_step(&step)), "Saved."),
                    Some(_) => (
                        step_url(next_step(&step)),
                        "Step skipped: you can come back to it any time.",
                    ),
                    None => (step_url(&step), "Saved."),
                };
                Ok(redirect_with_flash(&to, msg))
            }
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
                render_step(
                    &cx,
                    &step,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    field_errors(&e),
                    &fields,
                    json!({}),
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/onboarding/branding/logo?_csrf=…` (multipart, field `file`).
async fn logo_upload(cx: Ctx, _c: CsrfChecked, headers: HeaderMap, body: Bytes) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let r = async {
        match cx
            .forward(Method::POST, "/api/v1/onboarding/logo", &ct, body)
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &step_url("branding"),
                "Logo uploaded: your storefront shows it now.",
            )),
            Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
                let msg = if e.code == "empty_file" || e.code == "required" {
                    "Choose an image file to upload.".to_string()
                } else {
                    e.message.clone()
                };
                render_step(
                    &cx,
                    "branding",
                    e.status,
                    json!({ "logo": msg }),
                    &[],
                    json!({}),
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(serde::Deserialize)]
struct FirstProduct {
    title: String,
    price: String,
    #[serde(default)]
    inventory: String,
}

/// `POST /dashboard/onboarding/products/first`: a minimal active product through
/// `POST /api/v1/products`.
async fn first_product(cx: Ctx, CsrfForm(f): CsrfForm<FirstProduct>) -> Response {
    let r = async {
        let inventory: i64 = f.inventory.trim().parse().unwrap_or(0);
        let body = json!({
            "title": f.title,
            "status": "active",
            "variants": [{ "price": f.price.trim(), "inventory_quantity": inventory }],
        });
        match cx.post("/api/v1/products", body).await {
            Ok(p) => Ok(redirect_with_flash(
                &step_url("products"),
                &format!(
                    "Product “{}” added and active.",
                    p.get("title").and_then(Value::as_str).unwrap_or("")
                ),
            )),
            Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
                let field = e.details.get("field").and_then(Value::as_str).unwrap_or("");
                let key = if field.contains("price") {
                    "price"
                } else if field == "title" || field == "handle" {
                    "title"
                } else {
                    "_form"
                };
                let errors = json!({ "product": { key: e.message } });
                render_step(
                    &cx,
                    "products",
                    StatusCode::UNPROCESSABLE_ENTITY,
                    errors,
                    &[],
                    json!({ "title": f.title, "price": f.price, "inventory": f.inventory }),
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/onboarding/launch/publish`.
async fn publish(cx: Ctx, CsrfForm(_): CsrfForm<Vec<(String, String)>>) -> Response {
    let r = async {
        match cx.post("/api/v1/onboarding/publish", json!({})).await {
            Ok(_) => Ok(redirect_with_flash(
                &step_url("launch"),
                "Your storefront is published and open to visitors.",
            )),
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => {
                render_step(
                    &cx,
                    "launch",
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({ "_form": e.message }),
                    &[],
                    json!({}),
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(serde::Deserialize)]
struct SwitchForm {
    tenant_id: String,
}

/// `POST /dashboard/switch`: acts for another store the user belongs to (new session
/// cookies from `POST /api/v1/auth/switch-tenant`), then shows its dashboard.
async fn switch(cx: Ctx, CsrfForm(f): CsrfForm<SwitchForm>) -> Response {
    let r = async {
        cx.session()?;
        let tokens = cx
            .post(
                "/api/v1/auth/switch-tenant",
                json!({ "tenant_id": f.tenant_id.trim() }),
            )
            .await?;
        let Some(session) = Session::from_tokens(&cx, &tokens) else {
            return Err(UiError::SignIn);
        };
        let mut res = redirect_with_flash("/dashboard", "Switched store.");
        session.set_cookies(&mut res);
        Ok(res)
    }
    .await;
    cx.finish(r)
}
