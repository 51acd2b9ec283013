//! Dashboard section: custom domains (`/dashboard/domains`, `settings.edit` like its API):
//! add a domain, the DNS records to create, what the last check found, "Check now" and
//! remove. All through the API (`/api/v1/domains`).

use super::Nav;
use super::team::act;
use crate::web::AppState;
use crate::web::ui::{CsrfForm, Ctx, UiError, UiResult, field_errors, redirect_with_flash};
use axum::Router;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use minijinja::context;
use minijinja::value::Serde;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

/// Templates of this section.
pub const TEMPLATES: &[(&str, &str)] = &[(
    "dashboard/domains.html",
    include_str!("../templates/dashboard/domains.html"),
)];

/// Routes of this section.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard/domains", get(domains).post(add_domain))
        .route("/dashboard/domains/{id}/check", post(check_domain))
        .route("/dashboard/domains/{id}/remove", post(remove_domain))
}

#[derive(Deserialize, Default)]
struct DomainForm {
    #[serde(default)]
    host: String,
}

async fn page(cx: &Ctx, form: &DomainForm, errors: Value, status: StatusCode) -> UiResult {
    let nav = Nav::load(cx).await?;
    let list = cx.get("/api/v1/domains").await?;
    cx.render_status(
        status,
        "dashboard/domains.html",
        context! {
            title => "Domains",
            domains => Serde(list),
            form => context! { host => form.host.clone() },
            errors => Serde(errors),
            ..nav.ctx("domains")
        },
    )
}

async fn domains(cx: Ctx) -> Response {
    let r = page(&cx, &DomainForm::default(), json!({}), StatusCode::OK).await;
    cx.finish(r)
}

async fn add_domain(cx: Ctx, CsrfForm(f): CsrfForm<DomainForm>) -> Response {
    let r = async {
        cx.session()?;
        match cx
            .post("/api/v1/domains", json!({ "host": f.host.trim() }))
            .await
        {
            Ok(d) => Ok(redirect_with_flash(
                "/dashboard/domains",
                &format!(
                    "{} added. Create the DNS records below; Souk checks them by itself.",
                    d["host"].as_str().unwrap_or("The domain")
                ),
            )),
            Err(e)
                if e.status.is_client_error()
                    && e.status != StatusCode::UNAUTHORIZED
                    && e.status != StatusCode::FORBIDDEN =>
            {
                let mut errors = field_errors(&e);
                if errors.get("_form").is_some() {
                    errors = json!({ "host": e.message });
                }
                page(&cx, &f, errors, e.status).await
            }
            Err(e) => Err(UiError::from(e)),
        }
    }
    .await;
    cx.finish(r)
}

async fn check_domain(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = async {
        cx.session()?;
        match cx
            .api(Method::POST, &format!("/api/v1/domains/{id}/check"), None)
            .await
        {
            Ok(d) => {
                let msg = match d["status"].as_str() {
                    Some("active") | Some("verified") => {
                        format!("{} is verified.", d["host"].as_str().unwrap_or(""))
                    }
                    _ => format!(
                        "{} is not verified yet: see what the check found below.",
                        d["host"].as_str().unwrap_or("")
                    ),
                };
                Ok(redirect_with_flash("/dashboard/domains", &msg))
            }
            Err(e) if e.status.is_client_error() && e.status != StatusCode::UNAUTHORIZED => {
                Ok(redirect_with_flash("/dashboard/domains", &e.message))
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

async fn remove_domain(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = act(
        &cx,
        Method::DELETE,
        &format!("/api/v1/domains/{id}"),
        None,
        "/dashboard/domains",
        "Domain removed. It no longer serves your store.",
    )
    .await;
    cx.finish(r)
}
