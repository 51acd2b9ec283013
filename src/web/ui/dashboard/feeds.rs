//! Dashboard section: marketplace feeds (`/dashboard/feeds`). The sources with their last
//! outcome, "Fetch now", an upload form per language, an edit form per source (name,
//! marketplace, schedule, enabled, URL per language, add or remove a language) and a form
//! to add a source; the
//! staging area (`/dashboard/feeds/items`: filter by status, search, select items with
//! checkboxes and publish them); a published product's feed page
//! (`/dashboard/feeds/products/{id}`: the feed's value beside each override, and the
//! override form). Every action is the corresponding `/api/v1/feeds/…` call.

use super::Nav;
use crate::web::AppState;
use crate::web::ui::{ApiFailure, CsrfChecked, CsrfForm, Ctx, UiError, redirect_with_flash};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;
use serde_json::{Value, json};

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "dashboard/feeds/index.html",
        include_str!("../templates/dashboard/feeds/index.html"),
    ),
    (
        "dashboard/feeds/items.html",
        include_str!("../templates/dashboard/feeds/items.html"),
    ),
    (
        "dashboard/feeds/product.html",
        include_str!("../templates/dashboard/feeds/product.html"),
    ),
];

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/feeds", get(index))
        .route("/dashboard/feeds/sources", post(add_source))
        .route("/dashboard/feeds/sources/{id}/edit", post(edit_source))
        .route("/dashboard/feeds/sources/{id}/fetch", post(fetch))
        .route("/dashboard/feeds/sources/{id}/upload", post(upload))
        .route("/dashboard/feeds/items", get(items))
        .route("/dashboard/feeds/publish", post(publish))
        .route(
            "/dashboard/feeds/products/{id}",
            get(product).post(save_overrides),
        )
}

fn not_found(what: &str) -> ApiFailure {
    ApiFailure {
        status: StatusCode::NOT_FOUND,
        code: "not_found".into(),
        message: format!("{what} not found"),
        details: Value::Null,
    }
}

fn is_form_error(e: &ApiFailure) -> bool {
    e.status.is_client_error()
        && e.status != StatusCode::UNAUTHORIZED
        && e.status != StatusCode::FORBIDDEN
        && e.status != StatusCode::NOT_FOUND
}

async fn index(cx: Ctx) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let sources = cx.get("/api/v1/feeds/sources").await?;
        cx.render(
            "dashboard/feeds/index.html",
            context! { title => "Marketplace feeds", sources => Serde(sources), ..nav.ctx("feeds") },
        )
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize, Default)]
struct SourceForm {
    #[serde(default)]
    marketplace: String,
    #[serde(default)]
    language: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    schedule: String,
}

async fn add_source(cx: Ctx, CsrfForm(f): CsrfForm<SourceForm>) -> Response {
    let r = async {
        cx.session()?;
        let url = f.url.trim();
        let body = json!({
            "marketplace": f.marketplace,
            "schedule": if f.schedule.is_empty() { "manual" } else { f.schedule.as_str() },
            "files": [{ "language": f.language, "url": if url.is_empty() { Value::Null } else { json!(url) } }],
        });
        match cx.post("/api/v1/feeds/sources", body).await {
            Ok(_) => Ok(redirect_with_flash("/dashboard/feeds", "Feed source added.")),
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash("/dashboard/feeds", &e.message)),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /dashboard/feeds/sources/{id}/edit`: the edit form (`name`, `marketplace`,
/// `schedule`, checkboxes `enabled` and `draft_on_disappear`, `url_<lang>` and
/// `remove_<lang>` per existing file, `new_language` + `new_url` to add one) becomes one
/// `PATCH /api/v1/feeds/sources/{id}`; a refusal is shown as the flash message.
async fn edit_source(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        cx.session()?;
        let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found("feed source"))?;
        let src = cx.get(&format!("/api/v1/feeds/sources/{id}")).await?;
        let field = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let url_or_null = |u: Option<String>| match u.filter(|u| !u.is_empty()) {
            Some(u) => json!(u),
            None => Value::Null,
        };
        let mut files: Vec<Value> = vec![];
        for f in src["files"].as_array().into_iter().flatten() {
            let lang = f["language"].as_str().unwrap_or("");
            if field(&format!("remove_{lang}")).is_some() {
                continue;
            }
            files.push(
                json!({ "language": lang, "url": url_or_null(field(&format!("url_{lang}"))) }),
            );
        }
        if let Some(lang) = field("new_language").filter(|l| !l.is_empty()) {
            files.push(json!({ "language": lang, "url": url_or_null(field("new_url")) }));
        }
        let mut body = json!({
            "enabled": field("enabled").is_some(),
            "draft_on_disappear": field("draft_on_disappear").is_some(),
            "files": files,
        });
        for k in ["name", "marketplace", "schedule"] {
            if let Some(v) = field(k) {
                body[k] = json!(v);
            }
        }
        match cx
            .api(
                Method::PATCH,
                &format!("/api/v1/feeds/sources/{id}"),
                Some(body),
            )
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                "/dashboard/feeds",
                "Feed source saved.",
            )),
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash(
                "/dashboard/feeds",
                &format!("The source was not changed: {}", e.message),
            )),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

/// A sentence for a finished fetch or upload run.
fn run_summary(run: &Value) -> String {
    match run["status"].as_str() {
        Some("not_modified") => format!(
            "{}: unchanged since the last fetch.",
            run["language"].as_str().unwrap_or("")
        ),
        _ => format!(
            "{}: {} items ({} new, {} changed, {} disappeared, {} with errors).",
            run["language"].as_str().unwrap_or(""),
            run["items_total"],
            run["items_new"],
            run["items_changed"],
            run["items_disappeared"],
            run["items_with_errors"]
        ),
    }
}

async fn fetch(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_f): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        cx.session()?;
        let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found("feed source"))?;
        match cx
            .api(
                Method::POST,
                &format!("/api/v1/feeds/sources/{id}/fetch"),
                None,
            )
            .await
        {
            Ok(v) => {
                let mut msg: Vec<String> = v["runs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(run_summary)
                    .collect();
                for f in v["failures"].as_array().into_iter().flatten() {
                    msg.push(format!(
                        "{}: failed, {}",
                        f["language"].as_str().unwrap_or(""),
                        f["message"].as_str().unwrap_or("")
                    ));
                }
                if msg.is_empty() {
                    msg.push("This source has no URL to fetch.".into());
                }
                Ok(redirect_with_flash("/dashboard/feeds", &msg.join(" ")))
            }
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash("/dashboard/feeds", &e.message)),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize)]
struct UploadQuery {
    language: Option<String>,
}

/// `POST /dashboard/feeds/sources/{id}/upload?_csrf=…&language=…` (multipart `file`).
async fn upload(
    cx: Ctx,
    _c: CsrfChecked,
    Path(id): Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let r = async {
        let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found("feed source"))?;
        let lang = q.language.unwrap_or_default();
        let lang: String = lang
            .chars()
            .filter(|c| c.is_ascii_alphabetic())
            .take(3)
            .collect();
        let path = format!("/api/v1/feeds/sources/{id}/upload?language={lang}");
        match cx.forward(Method::POST, &path, &ct, body).await {
            Ok(run) => Ok(redirect_with_flash("/dashboard/feeds", &run_summary(&run))),
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash(
                "/dashboard/feeds",
                &format!("This file cannot be staged: {}", e.message),
            )),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize, Default)]
struct ItemsQuery {
    status: Option<String>,
    q: Option<String>,
    page: Option<i64>,
}

async fn items(cx: Ctx, Query(f): Query<ItemsQuery>) -> Response {
    let r = async {
        let nav = Nav::load(&cx).await?;
        let page = f.page.unwrap_or(1).max(1);
        let filter_query = {
            let mut qs = url::form_urlencoded::Serializer::new(String::new());
            if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
                qs.append_pair("status", s);
            }
            if let Some(q) = f.q.as_deref().filter(|s| !s.trim().is_empty()) {
                qs.append_pair("q", q.trim());
            }
            qs.finish()
        };
        let list = cx
            .get(&format!(
                "/api/v1/feeds/items?per_page=50&page={page}&{filter_query}"
            ))
            .await?;
        cx.render(
            "dashboard/feeds/items.html",
            context! {
                title => "Staged feed items",
                list => Serde(list),
                page,
                f => context! { status => f.status, q => f.q },
                filter_query,
                ..nav.ctx("feeds")
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn publish(cx: Ctx, CsrfForm(pairs): CsrfForm<Vec<(String, String)>>) -> Response {
    let r = async {
        cx.session()?;
        let ids: Vec<&str> = pairs
            .iter()
            .filter(|(k, _)| k == "ids")
            .map(|(_, v)| v.as_str())
            .collect();
        let back = "/dashboard/feeds/items?status=new";
        if ids.is_empty() {
            return Ok(redirect_with_flash(back, "Select at least one item."));
        }
        match cx
            .post("/api/v1/feeds/items/publish", json!({ "item_ids": ids }))
            .await
        {
            Ok(v) => {
                let n = v["published"].as_array().map(Vec::len).unwrap_or(0);
                let mut msg = format!("{n} product{} published.", if n == 1 { "" } else { "s" });
                for f in v["failed"].as_array().into_iter().flatten() {
                    msg.push_str(&format!(" {}", f["reason"].as_str().unwrap_or("")));
                }
                Ok(redirect_with_flash(back, &msg))
            }
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash(back, &e.message)),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

async fn product(cx: Ctx, Path(id): Path<String>) -> Response {
    let r = async {
        let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found("feed product"))?;
        let nav = Nav::load(&cx).await?;
        let view = cx.get(&format!("/api/v1/feeds/products/{id}")).await?;
        let product = cx.get(&format!("/api/v1/products/{id}")).await?;
        cx.render(
            "dashboard/feeds/product.html",
            context! { title => "Feed product", view => Serde(view), product => Serde(product), ..nav.ctx("feeds") },
        )
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize, Default)]
struct OverrideForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    compare_at_price: String,
    #[serde(default)]
    status: String,
}

async fn save_overrides(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(f): CsrfForm<OverrideForm>,
) -> Response {
    let r = async {
        cx.session()?;
        let id = uuid::Uuid::parse_str(&id).map_err(|_| not_found("feed product"))?;
        let opt = |s: &str| {
            let s = s.trim();
            if s.is_empty() { Value::Null } else { json!(s) }
        };
        let body = json!({
            "title": opt(&f.title), "description": opt(&f.description), "price": opt(&f.price),
            "compare_at_price": opt(&f.compare_at_price), "status": opt(&f.status),
        });
        let back = format!("/dashboard/feeds/products/{id}");
        match cx
            .api(
                Method::PUT,
                &format!("/api/v1/feeds/products/{id}"),
                Some(body),
            )
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &back,
                "Overrides saved. Feed updates leave these fields alone.",
            )),
            Err(e) if is_form_error(&e) => Ok(redirect_with_flash(&back, &e.message)),
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}
