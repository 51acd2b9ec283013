//! Dashboard section: developers: API keys (`/dashboard/api-keys`) and webhook endpoints
//! (`/dashboard/webhooks`) with their delivery logs. Both need `settings.edit`, as their
//! API routes do. Secrets (a new API key, a webhook signing secret after create or
//! rotate) are rendered once, in the response to the POST that made them, and never
//! again.

use super::Nav;
use super::team::act;
use crate::web::AppState;
use crate::web::ui::{
    ApiFailure, CsrfForm, Ctx, UiError, UiResult, field_errors, query_string, redirect_with_flash,
};
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/developers/api_keys.html",
        include_str!("../templates/dashboard/developers/api_keys.html"),
    ),
    (
        "dashboard/developers/webhooks.html",
        include_str!("../templates/dashboard/developers/webhooks.html"),
    ),
    (
        "dashboard/developers/webhook.html",
        include_str!("../templates/dashboard/developers/webhook.html"),
    ),
    (
        "dashboard/developers/delivery.html",
        include_str!("../templates/dashboard/developers/delivery.html"),
    ),
    (
        "dashboard/developers/secret.html",
        include_str!("../templates/dashboard/developers/secret.html"),
    ),
];

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/api-keys", get(api_keys).post(create_api_key))
        .route("/dashboard/api-keys/{id}/revoke", post(revoke_api_key))
        .route("/dashboard/webhooks", get(webhooks).post(create_webhook))
        .route(
            "/dashboard/webhooks/{id}",
            get(webhook).post(update_webhook),
        )
        .route("/dashboard/webhooks/{id}/enable", post(enable_webhook))
        .route("/dashboard/webhooks/{id}/disable", post(disable_webhook))
        .route("/dashboard/webhooks/{id}/rotate", post(rotate_webhook))
        .route("/dashboard/webhooks/{id}/delete", post(delete_webhook))
        .route("/dashboard/webhooks/{id}/redeliver", post(redeliver_failed))
        .route(
            "/dashboard/webhooks/{id}/deliveries/{delivery}",
            get(delivery),
        )
        .route(
            "/dashboard/webhooks/{id}/deliveries/{delivery}/redeliver",
            post(redeliver_one),
        )
}

/// Event types offered as checkboxes (`*` first).
fn event_type_choices() -> Vec<&'static str> {
    std::iter::once("*")
        .chain(crate::web::api::webhooks::EVENT_TYPES.iter().copied())
        .collect()
}

fn is_form_error(e: &ApiFailure) -> bool {
    e.status.is_client_error()
        && e.status != StatusCode::UNAUTHORIZED
        && e.status != StatusCode::FORBIDDEN
        && e.status != StatusCode::NOT_FOUND
}

/// Inputs of this section's forms (API keys and endpoints) that errors can name.
const FORM_FIELDS: &[&str] = &["_form", "name", "kind", "role", "url", "description"];

/// Error fields of the API → form fields (`event_types[2]` → `event_types`).
fn form_errors(e: &ApiFailure) -> Value {
    let errors = field_errors(e);
    match errors.as_object() {
        Some(obj) => Value::Object(
            obj.iter()
                .map(|(k, v)| {
                    let k = if k.starts_with("event_types") {
                        "event_types".to_string()
                    } else if FORM_FIELDS.contains(&k.as_str()) {
                        k.clone()
                    } else {
                        "_form".to_string()
                    };
                    (k, v.clone())
                })
                .collect(),
        ),
        None => errors,
    }
}

fn role_options(roles: &Value) -> Vec<(String, String)> {
    roles
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["key"] != "owner")
                .filter_map(|r| {
                    Some((
                        r["key"].as_str()?.to_string(),
                        r["name"].as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Deserialize, Default)]
struct ApiKeyForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    role: String,
}

async fn api_keys_page(
    cx: &Ctx,
    form: &ApiKeyForm,
    created: Option<Value>,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let keys = cx.get("/api/v1/api-keys").await?;
    // The role list needs team.view; without it only the default role is offered.
    let roles = cx
        .get("/api/v1/roles")
        .await
        .unwrap_or_else(|_| json!([{ "key": "viewer", "name": "Viewer" }]));
    cx.render_status(
        status,
        "dashboard/developers/api_keys.html",
        context! {
            title => "API keys",
            keys => Serde(keys),
            created => Serde(created),
            role_options => Serde(role_options(&roles)),
            form => context! {
                name => form.name.clone(),
                kind => if form.kind.is_empty() { "secret".to_string() } else { form.kind.clone() },
                role => if form.role.is_empty() { "viewer".to_string() } else { form.role.clone() },
            },
            errors => Serde(errors),
            ..nav.ctx("api-keys")
        },
    )
}

async fn api_keys(cx: Ctx) -> Response {
    let r = api_keys_page(&cx, &ApiKeyForm::default(), None, json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn create_api_key(cx: Ctx, CsrfForm(f): CsrfForm<ApiKeyForm>) -> Response {
    let r = async {
        cx.session()?;
        let mut body = json!({ "name": f.name, "kind": f.kind });
        if f.kind == "secret" {
            body["role"] = json!(f.role);
        }
        match cx.post("/api/v1/api-keys", body).await {
            // The key is in this response only: the page is not cached and a reload of
            // the list does not show it.
            Ok(created) => {
                api_keys_page(
                    &cx,
                    &ApiKeyForm::default(),
                    Some(created),
                    json!({}),
                    StatusCode::OK,
                )
                .await
            }
            Err(e) if is_form_error(&e) => {
                api_keys_page(&cx, &f, None, form_errors(&e), e.status).await
            }
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    let mut res = cx.finish(r);
    no_store(&mut res);
    res
}

/// Keeps a page that shows a secret out of every cache.
fn no_store(res: &mut Response) {
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
}

async fn revoke_api_key(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/api-keys/{id}"),
        None,
        "/dashboard/api-keys",
        "API key revoked. It stopped working at once.",
    )
    .await;
    cx.finish(r)
}

/// The endpoint form as submitted (event types are repeated checkboxes).
#[derive(Default)]
struct EndpointForm {
    url: String,
    description: String,
    event_types: Vec<String>,
}

impl EndpointForm {
    fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = EndpointForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "url" => f.url = v.trim().to_string(),
                "description" => f.description = v.clone(),
                "event_types" => f.event_types.push(v.clone()),
                _ => {}
            }
        }
        f
    }
    fn ctx(&self) -> minijinja::Value {
        context! { url => self.url.clone(), description => self.description.clone(), event_types => self.event_types.clone() }
    }
}

async fn webhooks_page(
    cx: &Ctx,
    form: &EndpointForm,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let list = cx.get("/api/v1/webhook-endpoints?per_page=100").await?;
    cx.render_status(
        status,
        "dashboard/developers/webhooks.html",
        context! {
            title => "Webhooks",
            endpoints => Serde(list.get("data")),
            choices => event_type_choices(),
            form => form.ctx(),
            errors => Serde(errors),
            ..nav.ctx("webhooks")
        },
    )
}

async fn webhooks(cx: Ctx) -> Response {
    let r = webhooks_page(&cx, &EndpointForm::default(), json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn secret_page(cx: &Ctx, endpoint: &Value, rotated: bool) -> UiResult {
    let nav = Nav::load(cx).await?;
    let mut res = cx.render(
        "dashboard/developers/secret.html",
        context! {
            title => if rotated { "New signing secret" } else { "Webhook endpoint created" },
            endpoint => Serde(endpoint),
            rotated,
            ..nav.ctx("webhooks")
        },
    )?;
    no_store(&mut res);
    Ok(res)
}

async fn create_webhook(cx: Ctx, CsrfForm(pairs): CsrfForm<Vec<(String, String)>>) -> Response {
    let r = async {
        cx.session()?;
        let f = EndpointForm::from_pairs(&pairs);
        let body = json!({
            "url": f.url,
            "description": Some(f.description.trim()).filter(|s| !s.is_empty()),
            "event_types": f.event_types,
        });
        match cx.post("/api/v1/webhook-endpoints", body).await {
            Ok(e) => secret_page(&cx, &e, false).await,
            Err(e) if is_form_error(&e) => webhooks_page(&cx, &f, form_errors(&e), e.status).await,
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize, Default)]
struct DeliveryFilter {
    status: Option<String>,
    page: Option<i64>,
}

async fn webhook_page(
    cx: &Ctx,
    id: Uuid,
    q: &DeliveryFilter,
    form: Option<&EndpointForm>,
    errors: Value,
    status: StatusCode,
) -> UiResult {
    let nav = Nav::load(cx).await?;
    let endpoint = cx.get(&format!("/api/v1/webhook-endpoints/{id}")).await?;
    let page = q.page.unwrap_or(1).clamp(1, 1_000_000);
    let status_filter = q
        .status
        .clone()
        .filter(|s| ["pending", "succeeded", "failed"].contains(&s.as_str()))
        .unwrap_or_default();
    let filters = [("status", status_filter.clone())];
    let deliveries = cx
        .get(&format!(
            "/api/v1/webhook-endpoints/{id}/deliveries?{}",
            query_string(
                filters
                    .iter()
                    .cloned()
                    .chain([("page", page.to_string()), ("per_page", "25".to_string()),])
            )
        ))
        .await?;
    let form_ctx = match form {
        Some(f) => f.ctx(),
        None => context! {
            url => endpoint["url"].as_str().unwrap_or(""),
            description => endpoint["description"].as_str().unwrap_or(""),
            event_types => Serde(&endpoint["event_types"]),
        },
    };
    let filter_query = query_string(filters.iter().cloned());
    let since_default = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    cx.render_status(
        status,
        "dashboard/developers/webhook.html",
        context! {
            title => format!("Webhook {}", endpoint["url"].as_str().unwrap_or("")),
            endpoint => Serde(&endpoint),
            deliveries => Serde(deliveries.get("data")),
            pagination => Serde(deliveries.get("pagination")),
            page,
            status_filter,
            filter_query => if filter_query.is_empty() { String::new() } else { format!("&{filter_query}") },
            choices => event_type_choices(),
            form => form_ctx,
            errors => Serde(errors),
            since_default => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}",
                since_default.year(),
                u8::from(since_default.month()),
                since_default.day(),
                since_default.hour(),
                since_default.minute()
            ),
            ..nav.ctx("webhooks")
        },
    )
}

async fn webhook(cx: Ctx, Path(id): Path<Uuid>, Query(q): Query<DeliveryFilter>) -> Response {
    let r = webhook_page(&cx, id, &q, None, json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn update_webhook(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        cx.session()?;
        let f = EndpointForm::from_pairs(&pairs);
        let body = json!({ "url": f.url, "description": f.description.trim(), "event_types": f.event_types });
        match cx
            .api(Method::PATCH, &format!("/api/v1/webhook-endpoints/{id}"), Some(body))
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/dashboard/webhooks/{id}"),
                "Endpoint saved.",
            )),
            Err(e) if is_form_error(&e) => {
                webhook_page(&cx, id, &DeliveryFilter::default(), Some(&f), form_errors(&e), e.status)
                    .await
            }
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

async fn set_enabled(cx: &Ctx, id: Uuid, enabled: bool) -> UiResult {
    act(
        cx,
        Method::PATCH,
        &format!("/api/v1/webhook-endpoints/{id}"),
        Some(json!({ "enabled": enabled })),
        &format!("/dashboard/webhooks/{id}"),
        if enabled {
            "Endpoint enabled."
        } else {
            "Endpoint disabled: no deliveries are sent until you enable it."
        },
    )
    .await
}

async fn enable_webhook(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = set_enabled(&cx, id, true).await;
    cx.finish(r)
}

async fn disable_webhook(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = set_enabled(&cx, id, false).await;
    cx.finish(r)
}

async fn rotate_webhook(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        cx.session()?;
        let e = cx
            .post(
                &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
                json!({}),
            )
            .await?;
        secret_page(&cx, &e, true).await
    }
    .await;
    cx.finish(r)
}

async fn delete_webhook(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/webhook-endpoints/{id}"),
        None,
        "/dashboard/webhooks",
        "Endpoint deleted.",
    )
    .await;
    cx.finish(r)
}

#[derive(Deserialize)]
struct SinceForm {
    since: String,
}

/// `2026-11-20T09:30` (a `datetime-local` value, taken as UTC) or a full RFC 3339 time.
fn since_rfc3339(raw: &str) -> String {
    let s = raw.trim();
    if s.len() == 16 {
        format!("{s}:00Z")
    } else if s.len() == 19 {
        format!("{s}Z")
    } else {
        s.to_string()
    }
}

async fn redeliver_failed(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(f): CsrfForm<SinceForm>,
) -> Response {
    let r = async {
        cx.session()?;
        let back = format!("/dashboard/webhooks/{id}");
        match cx
            .post(
                &format!("/api/v1/webhook-endpoints/{id}/redeliver"),
                json!({ "since": since_rfc3339(&f.since) }),
            )
            .await
        {
            Ok(v) => {
                let n = v["queued"].as_u64().unwrap_or(0);
                Ok(redirect_with_flash(
                    &back,
                    &format!(
                        "{n} failed deliver{} queued again.",
                        if n == 1 { "y" } else { "ies" }
                    ),
                ))
            }
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash(&back, &e.message)),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

async fn delivery(cx: Ctx, Path((id, delivery)): Path<(Uuid, Uuid)>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let endpoint = cx.get(&format!("/api/v1/webhook-endpoints/{id}")).await?;
        let d = cx
            .get(&format!(
                "/api/v1/webhook-endpoints/{id}/deliveries/{delivery}"
            ))
            .await?;
        let payload = serde_json::to_string_pretty(&d["payload"]).unwrap_or_default();
        cx.render(
            "dashboard/developers/delivery.html",
            context! {
                title => format!("Delivery of {}", d["event_type"].as_str().unwrap_or("an event")),
                endpoint => Serde(&endpoint),
                delivery => Serde(&d),
                payload,
                ..nav.ctx("webhooks")
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn redeliver_one(
    cx: Ctx,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::POST,
        &format!("/api/v1/webhook-endpoints/{id}/deliveries/{delivery}/redeliver"),
        None,
        &format!("/dashboard/webhooks/{id}/deliveries/{delivery}"),
        "Delivery queued again.",
    )
    .await;
    cx.finish(r)
}
