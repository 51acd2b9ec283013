//! The platform admin panel (`/admin`): merchants, activation with live provisioning
//! progress, bulk vendor import, themes, platform overview and the audit log. Every page
//! calls the admin API (`/api/v1/admin/...`) as the signed-in staff member; controls the
//! staff role lacks (`GET /api/v1/admin/permissions`) are hidden, and the API refuses them
//! anyway.

mod charts;

use super::{
    ApiFailure, CsrfChecked, CsrfForm, Ctx, UiError, UiResult, field_errors, query_string,
    redirect_with_flash,
};
use crate::web::AppState;
use crate::web::ui::json_response;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

/// Templates of the admin panel.
pub const TEMPLATES: &[(&str, &str)] = &[
    ("admin/base.html", include_str!("templates/admin/base.html")),
    (
        "admin/domains.html",
        include_str!("templates/admin/domains.html"),
    ),
    (
        "admin/merchants.html",
        include_str!("templates/admin/merchants.html"),
    ),
    (
        "admin/merchant.html",
        include_str!("templates/admin/merchant.html"),
    ),
    (
        "admin/activate_form.html",
        include_str!("templates/admin/activate_form.html"),
    ),
    (
        "admin/activate.html",
        include_str!("templates/admin/activate.html"),
    ),
    (
        "admin/provisioning.html",
        include_str!("templates/admin/provisioning.html"),
    ),
    (
        "admin/vendors.html",
        include_str!("templates/admin/vendors.html"),
    ),
    (
        "admin/vendor_import.html",
        include_str!("templates/admin/vendor_import.html"),
    ),
    (
        "admin/themes.html",
        include_str!("templates/admin/themes.html"),
    ),
    (
        "admin/overview.html",
        include_str!("templates/admin/overview.html"),
    ),
    (
        "admin/audit.html",
        include_str!("templates/admin/audit.html"),
    ),
];

/// The admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(home))
        .route("/admin/overview", get(overview))
        .route("/admin/merchants", get(merchants))
        .route("/admin/merchants/{id}", get(merchant))
        .route(
            "/admin/merchants/{id}/activate",
            get(activate_page).post(activate_submit),
        )
        .route("/admin/check-subdomain", get(check_subdomain))
        .route("/admin/merchants/{id}/provisioning", get(provisioning))
        .route(
            "/admin/merchants/{id}/provisioning.json",
            get(provisioning_json),
        )
        .route(
            "/admin/merchants/{id}/provisioning/retry",
            post(provisioning_retry),
        )
        .route(
            "/admin/merchants/{id}/provisioning/rollback",
            post(provisioning_rollback),
        )
        .route("/admin/merchants/{id}/suspend", post(suspend))
        .route("/admin/merchants/{id}/reactivate", post(reactivate))
        .route(
            "/admin/imports/vendors",
            get(vendors_page).post(vendors_submit),
        )
        .route("/admin/imports/vendors/{id}", get(vendor_import))
        .route(
            "/admin/imports/vendors/{id}/progress.json",
            get(vendor_import_json),
        )
        .route(
            "/admin/imports/vendors/{id}/failed.csv",
            get(vendor_failed_csv),
        )
        .route("/admin/themes", get(themes).post(theme_upload))
        .route("/admin/themes/{id}/enable", post(theme_enable))
        .route("/admin/themes/{id}/disable", post(theme_disable))
        .route("/admin/audit-log", get(audit_log))
        .route("/admin/domains", get(domains))
        .route("/admin/domains/{id}/check", post(domain_check))
        .route("/admin/domains/{id}/revoke", post(domain_revoke))
}

async fn home(cx: Ctx) -> Response {
    match cx.session() {
        Ok(_) => Redirect::to("/admin/overview").into_response(),
        Err(e) => cx.error_page(e),
    }
}

/// The staff member's platform permissions as `{permission: true}` (for `can[...]`).
async fn can(cx: &Ctx) -> Result<Json, UiError> {
    let p = cx.get("/api/v1/admin/permissions").await?;
    let mut m = serde_json::Map::new();
    for s in p
        .get("permissions")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        if let Some(s) = s.as_str() {
            m.insert(s.to_string(), Json::Bool(true));
        }
    }
    Ok(Json::Object(m))
}

/// `Starter — 100 products, 2 staff · 0.00 EUR/month`.
fn plan_label(p: &Json) -> String {
    let limit = |k: &str, what: &str| match p.get(k).and_then(|v| v.as_i64()) {
        Some(-1) | None => format!("unlimited {what}"),
        Some(n) => format!("{n} {what}"),
    };
    let price = p.get("price_minor").and_then(|v| v.as_i64()).unwrap_or(0);
    format!(
        "{} — {}, {} · {}.{:02} {} per month",
        p.get("name").and_then(|v| v.as_str()).unwrap_or(""),
        limit("max_products", "products"),
        limit("max_staff", "staff"),
        price / 100,
        price % 100,
        p.get("currency").and_then(|v| v.as_str()).unwrap_or("EUR"),
    )
}

/// `(id, label)` pairs of the plans, for the `select` macro.
async fn plan_options(cx: &Ctx) -> Result<Vec<(String, String)>, UiError> {
    let plans = cx.get("/api/v1/admin/plans").await?;
    Ok(plans
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.get("id")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
                plan_label(p),
            )
        })
        .collect())
}

/// Enabled themes only (what activation may choose).
async fn enabled_themes(cx: &Ctx) -> Result<Vec<Json>, UiError> {
    let themes = cx.get("/api/v1/admin/themes").await?;
    Ok(themes
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t.get("enabled").and_then(|v| v.as_bool()).unwrap_or(true))
        .cloned()
        .collect())
}

// ---------------------------------------------------------------- merchants

#[derive(Deserialize, Default)]
struct MerchantFilters {
    q: Option<String>,
    status: Option<String>,
    plan: Option<String>,
    theme: Option<String>,
    page: Option<i64>,
}

async fn merchants(cx: Ctx, Query(f): Query<MerchantFilters>) -> Response {
    let r = async {
        cx.session()?;
        let page = f.page.unwrap_or(1).max(1);
        let filters = [
            ("q", f.q.clone().unwrap_or_default()),
            ("status", f.status.clone().unwrap_or_default()),
            ("plan", f.plan.clone().unwrap_or_default()),
            ("theme", f.theme.clone().unwrap_or_default()),
        ];
        let list = cx
            .get(&format!(
                "/api/v1/admin/merchants?{}",
                query_string(
                    filters
                        .iter()
                        .cloned()
                        .chain([("page", page.to_string()), ("per_page", "25".into())])
                )
            ))
            .await?;
        let plans = cx.get("/api/v1/admin/plans").await?;
        let all_themes = cx.get("/api/v1/admin/themes").await?;
        let can = can(&cx).await?;
        let activation = activation_ctx(&cx, None, &ActivateForm::default(), json!({})).await?;
        cx.render(
            "admin/merchants.html",
            context! {
                title => "Merchants", nav => "merchants",
                merchants => Serde(list.get("data")), pagination => Serde(list.get("pagination")),
                page, plans => Serde(plans), all_themes => Serde(all_themes), can => Serde(can),
                f => context! { q => f.q, status => f.status, plan => f.plan, theme => f.theme },
                filter_query => format!("&{}", query_string(filters.iter().cloned())),
                ..activation
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn merchant(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let m = cx.get(&format!("/api/v1/admin/merchants/{id}")).await?;
        let domains = cx
            .get(&format!("/api/v1/admin/merchants/{id}/domains"))
            .await?;
        let usage = cx.get(&format!("/api/v1/admin/merchants/{id}/usage")).await?;
        let runs = cx
            .get(&format!("/api/v1/admin/merchants/{id}/provisioning/runs"))
            .await?;
        // Support staff without the audit permission still see the rest of the page.
        let audit = match cx
            .get(&format!(
                "/api/v1/admin/audit-log?tenant_id={id}&per_page=10"
            ))
            .await
        {
            Ok(a) => a.get("data").cloned().unwrap_or(Json::Null),
            Err(e) if e.status == StatusCode::FORBIDDEN => Json::Null,
            Err(e) => return Err(e.into()),
        };
        let can = can(&cx).await?;
        let activation = activation_ctx(&cx, Some(&m), &ActivateForm::default(), json!({})).await?;
        cx.render(
            "admin/merchant.html",
            context! {
                title => format!("{} · Merchant", m.get("name").and_then(|v| v.as_str()).unwrap_or("")),
                nav => "merchants",
                m => Serde(&m), domains => Serde(domains), usage => Serde(usage),
                runs => Serde(runs), audit => Serde(audit), can => Serde(can),
                ..activation
            },
        )
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize, Default, Clone)]
struct ActivateForm {
    #[serde(default)]
    theme: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    subdomain: String,
    #[serde(default)]
    custom_domain: String,
}

/// Context of the activation form: themes (enabled), plan options, values, errors.
async fn activation_ctx(
    cx: &Ctx,
    m: Option<&Json>,
    form: &ActivateForm,
    errors: Json,
) -> Result<Value, UiError> {
    let themes = enabled_themes(cx).await?;
    let plans = plan_options(cx).await?;
    let theme = if form.theme.is_empty() {
        themes
            .first()
            .and_then(|t| t.get("id"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    } else {
        form.theme.clone()
    };
    let subdomain = if form.subdomain.is_empty() {
        m.and_then(|m| m.get("handle"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    } else {
        form.subdomain.clone()
    };
    Ok(context! {
        act_themes => Serde(themes), act_plans => plans,
        act => context! { theme, plan => form.plan.clone(), subdomain, custom_domain => form.custom_domain.clone() },
        act_errors => Serde(errors),
        act_action => m.and_then(|m| m.get("id")).and_then(|v| v.as_str())
            .map(|id| format!("/admin/merchants/{id}/activate")).unwrap_or_default(),
    })
}

async fn activate_page(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let m = cx.get(&format!("/api/v1/admin/merchants/{id}")).await?;
        render_activate(&cx, &m, &ActivateForm::default(), json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

async fn render_activate(
    cx: &Ctx,
    m: &Json,
    form: &ActivateForm,
    errors: Json,
    status: StatusCode,
) -> UiResult {
    let activation = activation_ctx(cx, Some(m), form, errors).await?;
    cx.render_status(
        status,
        "admin/activate.html",
        context! {
            title => format!("Activate {}", m.get("name").and_then(|v| v.as_str()).unwrap_or("")),
            nav => "merchants", m => Serde(m), ..activation
        },
    )
}

async fn activate_submit(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(form): CsrfForm<ActivateForm>,
) -> Response {
    let r = async {
        cx.session()?;
        let mut body = json!({ "theme": form.theme, "plan": form.plan });
        if !form.subdomain.trim().is_empty() {
            body["subdomain"] = json!(form.subdomain.trim());
        }
        if !form.custom_domain.trim().is_empty() {
            body["custom_domain"] = json!(form.custom_domain.trim());
        }
        match cx
            .post(&format!("/api/v1/admin/merchants/{id}/activate"), body)
            .await
        {
            Ok(_) => Ok(redirect_with_flash(
                &format!("/admin/merchants/{id}/provisioning"),
                "Activation started.",
            )),
            Err(e) if e.status.is_client_error() && e.status != StatusCode::UNAUTHORIZED => {
                let m = cx.get(&format!("/api/v1/admin/merchants/{id}")).await?;
                let status =
                    if e.status == StatusCode::FORBIDDEN || e.status == StatusCode::NOT_FOUND {
                        return Err(e.into());
                    } else {
                        StatusCode::UNPROCESSABLE_ENTITY
                    };
                render_activate(&cx, &m, &form, field_errors(&e), status).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

#[derive(Deserialize)]
struct SubdomainQuery {
    #[serde(default)]
    subdomain: String,
}

/// `GET /admin/check-subdomain?subdomain=` → `{available, reason, message}`.
async fn check_subdomain(cx: Ctx, Query(q): Query<SubdomainQuery>) -> Response {
    let r = async {
        cx.session()?;
        let name = q.subdomain.trim();
        if name.is_empty() {
            return Ok(
                json!({ "available": false, "reason": "invalid", "message": "enter a subdomain" }),
            );
        }
        let enc = url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>();
        Ok(cx.get(&format!("/api/v1/admin/subdomains/{enc}")).await?)
    }
    .await;
    json_response(r)
}

/// Human label of a provisioning status.
fn status_label(s: &str) -> &'static str {
    match s {
        "completed" => "Completed",
        "failed" => "Failed",
        "in_progress" => "In progress",
        "rolled_back" => "Rolled back",
        _ => "Pending",
    }
}

/// `send_welcome_email` → `Send welcome email`.
fn step_label(s: &str) -> String {
    let t = s.replace('_', " ");
    let mut c = t.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => t,
    }
}

/// The provisioning view enriched with labels for the page and its JSON fragment.
fn provisioning_fragment(v: &Json) -> Json {
    let status = v
        .get("status")
        .and_then(|s| s.as_str())
        .unwrap_or("pending");
    let steps: Vec<Json> = v
        .get("steps")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .map(|s| {
            let name = s.get("name").and_then(|x| x.as_str()).unwrap_or("");
            let st = s
                .get("status")
                .and_then(|x| x.as_str())
                .unwrap_or("pending");
            json!({
                "name": name, "label": step_label(name), "status": st,
                "status_label": status_label(st),
                "duration_ms": s.get("duration_ms"), "attempts": s.get("attempts"),
                "error": s.get("error"),
            })
        })
        .collect();
    let total = v.get("duration_ms").and_then(|d| d.as_i64()).unwrap_or(0);
    json!({
        "status": status,
        "status_label": status_label(status),
        "done": matches!(status, "completed" | "failed" | "rolled_back"),
        "total_ms": total,
        "total_label": format!("Total: {total} ms"),
        "error": v.get("error"),
        "steps": steps,
    })
}

async fn provisioning(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let m = cx.get(&format!("/api/v1/admin/merchants/{id}")).await?;
        let v = cx
            .get(&format!("/api/v1/admin/merchants/{id}/provisioning"))
            .await?;
        let can = can(&cx).await?;
        cx.render(
            "admin/provisioning.html",
            context! {
                title => format!("Provisioning {}", m.get("name").and_then(|v| v.as_str()).unwrap_or("")),
                nav => "merchants", m => Serde(&m), p => Serde(provisioning_fragment(&v)), can => Serde(can),
            },
        )
    }
    .await;
    cx.finish(r)
}

async fn provisioning_json(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let v = cx
            .get(&format!("/api/v1/admin/merchants/{id}/provisioning"))
            .await?;
        Ok(provisioning_fragment(&v))
    }
    .await;
    json_response(r)
}

/// Runs a merchant action (`POST /api/v1/admin/merchants/{id}/{action}`) and redirects
/// to `to` with `done`, or back with the API's refusal as the flash message.
async fn merchant_action(cx: &Ctx, id: Uuid, action: &str, to: String, done: &str) -> UiResult {
    cx.session()?;
    match cx
        .post(&format!("/api/v1/admin/merchants/{id}/{action}"), json!({}))
        .await
    {
        Ok(_) => Ok(redirect_with_flash(&to, done)),
        Err(e) if e.status == StatusCode::CONFLICT => Ok(redirect_with_flash(&to, &e.message)),
        Err(e) => Err(e.into()),
    }
}

async fn provisioning_retry(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = merchant_action(
        &cx,
        id,
        "provisioning/retry",
        format!("/admin/merchants/{id}/provisioning"),
        "Provisioning resumed from the failed step.",
    )
    .await;
    cx.finish(r)
}

async fn provisioning_rollback(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = merchant_action(
        &cx,
        id,
        "provisioning/rollback",
        format!("/admin/merchants/{id}"),
        "Provisioning rolled back; the merchant is pending again.",
    )
    .await;
    cx.finish(r)
}

async fn suspend(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = merchant_action(
        &cx,
        id,
        "suspend",
        format!("/admin/merchants/{id}"),
        "Merchant suspended: the storefront shows “store unavailable”.",
    )
    .await;
    cx.finish(r)
}

async fn reactivate(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = merchant_action(
        &cx,
        id,
        "reactivate",
        format!("/admin/merchants/{id}"),
        "Merchant reactivated.",
    )
    .await;
    cx.finish(r)
}

// ---------------------------------------------------------------- vendor import

async fn vendors_page(cx: Ctx) -> Response {
    let r = async {
        cx.session()?;
        render_vendors(&cx, "", "", json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

async fn render_vendors(
    cx: &Ctx,
    theme: &str,
    plan: &str,
    errors: Json,
    status: StatusCode,
) -> UiResult {
    let themes: Vec<(String, String)> = enabled_themes(cx)
        .await?
        .iter()
        .map(|t| {
            (
                t.get("id")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
                t.get("name")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let plans = plan_options(cx).await?;
    let recent = cx.get("/api/v1/admin/imports/vendors").await?;
    let can = can(cx).await?;
    cx.render_status(
        status,
        "admin/vendors.html",
        context! {
            title => "Vendor import", nav => "vendors", themes, plans, recent => Serde(recent),
            theme => theme.to_string(), plan => plan.to_string(), errors => Serde(errors), can => Serde(can),
        },
    )
}

async fn vendors_submit(cx: Ctx, _c: CsrfChecked, mut mp: Multipart) -> Response {
    let r = async {
        cx.session()?;
        let (mut file, mut theme, mut plan) = (Bytes::new(), String::new(), String::new());
        let mut file_name = String::new();
        loop {
            match mp.next_field().await {
                Ok(Some(f)) => {
                    let name = f.name().unwrap_or("").to_string();
                    if name == "file" {
                        file_name = f.file_name().unwrap_or("").to_string();
                    }
                    let data = f.bytes().await.unwrap_or_default();
                    match name.as_str() {
                        "file" => file = data,
                        "theme" => theme = String::from_utf8_lossy(&data).into_owned(),
                        "plan" => plan = String::from_utf8_lossy(&data).into_owned(),
                        _ => {}
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return render_vendors(
                        &cx,
                        &theme,
                        &plan,
                        json!({ "file": format!("the upload could not be read: {}", e.body_text()) }),
                        StatusCode::BAD_REQUEST,
                    )
                    .await;
                }
            }
        }
        if file.is_empty() {
            return render_vendors(
                &cx,
                &theme,
                &plan,
                json!({ "file": "choose a CSV file to import" }),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        let path = format!(
            "/api/v1/admin/imports/vendors?{}",
            query_string([
                ("theme", theme.clone()),
                ("plan", plan.clone()),
                ("file_name", file_name),
            ])
        );
        match cx.forward(Method::POST, &path, "text/csv", file).await {
            Ok(report) => {
                let id = report.get("id").and_then(|v| v.as_str()).unwrap_or("");
                Ok(redirect_with_flash(
                    &format!("/admin/imports/vendors/{id}"),
                    "Import finished.",
                ))
            }
            Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
                let errors = match e.details.get("field").and_then(|v| v.as_str()) {
                    Some("theme") | Some("plan") => field_errors(&e),
                    _ => json!({ "file": e.message }),
                };
                render_vendors(&cx, &theme, &plan, errors, StatusCode::UNPROCESSABLE_ENTITY).await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

async fn vendor_import(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let report = cx
            .get(&format!("/api/v1/admin/imports/vendors/{id}"))
            .await?;
        cx.render(
            "admin/vendor_import.html",
            context! { title => "Vendor import report", nav => "vendors", r => Serde(report) },
        )
    }
    .await;
    cx.finish(r)
}

async fn vendor_import_json(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let r = cx
            .get(&format!("/api/v1/admin/imports/vendors/{id}"))
            .await?;
        let statuses: serde_json::Map<String, Json> = r
            .get("merchants")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some((
                    m.get("id")?.as_str()?.to_string(),
                    m.get("status").cloned().unwrap_or(Json::Null),
                ))
            })
            .collect();
        Ok(json!({
            "created": r.get("created"), "provisioned": r.get("provisioned"),
            "statuses": statuses,
        }))
    }
    .await;
    json_response(r)
}

/// The failed rows as CSV in the input format (same header, original values) plus a
/// trailing `error` column.
async fn vendor_failed_csv(cx: Ctx, Path(id): Path<Uuid>) -> Response {
    let r = async {
        cx.session()?;
        let r = cx
            .get(&format!("/api/v1/admin/imports/vendors/{id}"))
            .await?;
        let header: Vec<String> = r
            .get("header")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
            .map(|c| c.as_str().unwrap_or("").to_string())
            .collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        let csv_err = |_| csv_failed();
        w.write_record(header.iter().map(String::as_str).chain(["error"]))
            .map_err(csv_err)?;
        for row in r
            .get("failed_rows")
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
        {
            let mut cells: Vec<String> = row
                .get("values")
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
                .map(|c| c.as_str().unwrap_or("").to_string())
                .collect();
            cells.resize(header.len().max(cells.len()), String::new());
            cells.truncate(header.len().max(1));
            let num = |k: &str| {
                row.get(k)
                    .and_then(|v| v.as_u64())
                    .and_then(|v| usize::try_from(v).ok())
                    .unwrap_or(0)
            };
            cells.push(format!(
                "{}: {}",
                crate::import::location(num("row"), num("line")),
                row.get("reason").and_then(|v| v.as_str()).unwrap_or("")
            ));
            w.write_record(&cells).map_err(csv_err)?;
        }
        let bytes = w.into_inner().map_err(|_| csv_failed())?;
        Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"vendor-import-{id}-failed.csv\""),
                ),
            ],
            bytes,
        )
            .into_response())
    }
    .await;
    cx.finish(r)
}

fn csv_failed() -> UiError {
    UiError::Api(ApiFailure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal".into(),
        message: "the CSV could not be written".into(),
        details: Json::Null,
    })
}

// ---------------------------------------------------------------- themes

async fn themes(cx: Ctx) -> Response {
    let r = async {
        cx.session()?;
        render_themes(&cx, json!({}), StatusCode::OK).await
    }
    .await;
    cx.finish(r)
}

async fn render_themes(cx: &Ctx, upload: Json, status: StatusCode) -> UiResult {
    let themes = cx.get("/api/v1/admin/themes").await?;
    let can = can(cx).await?;
    cx.render_status(
        status,
        "admin/themes.html",
        context! { title => "Themes", nav => "themes", themes => Serde(themes), upload => Serde(upload), can => Serde(can) },
    )
}

async fn theme_upload(cx: Ctx, _c: CsrfChecked, mut mp: Multipart) -> Response {
    let r = async {
        cx.session()?;
        let mut file = Bytes::new();
        while let Ok(Some(f)) = mp.next_field().await {
            if f.name() == Some("file") {
                file = f.bytes().await.unwrap_or_default();
            }
        }
        if file.is_empty() {
            return render_themes(
                &cx,
                json!({ "message": "choose a theme zip file", "reasons": [] }),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        match cx
            .forward(
                Method::POST,
                "/api/v1/admin/themes",
                "application/zip",
                file,
            )
            .await
        {
            Ok(t) => Ok(redirect_with_flash(
                "/admin/themes",
                &format!(
                    "Theme “{}” uploaded and enabled.",
                    t.get("name").and_then(|v| v.as_str()).unwrap_or("")
                ),
            )),
            Err(e)
                if e.status == StatusCode::UNPROCESSABLE_ENTITY
                    || e.status == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                let reasons = e
                    .details
                    .get("reasons")
                    .cloned()
                    .unwrap_or_else(|| json!([e.message]));
                render_themes(
                    &cx,
                    json!({ "message": "The theme was refused:", "reasons": reasons }),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

async fn theme_toggle(cx: &Ctx, id: &str, enable: bool) -> UiResult {
    cx.session()?;
    let action = if enable { "enable" } else { "disable" };
    let enc = url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>();
    match cx
        .post(&format!("/api/v1/admin/themes/{enc}/{action}"), json!({}))
        .await
    {
        Ok(t) => Ok(redirect_with_flash(
            "/admin/themes",
            &format!(
                "Theme “{}” {}.",
                t.get("name").and_then(|v| v.as_str()).unwrap_or(id),
                if enable { "enabled" } else { "disabled" }
            ),
        )),
        Err(e) if e.status == StatusCode::CONFLICT => {
            Ok(redirect_with_flash("/admin/themes", &e.message))
        }
        Err(e) => Err(e.into()),
    }
}

async fn theme_enable(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = theme_toggle(&cx, &id, true).await;
    cx.finish(r)
}

async fn theme_disable(
    cx: Ctx,
    Path(id): Path<String>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = theme_toggle(&cx, &id, false).await;
    cx.finish(r)
}

// ---------------------------------------------------------------- custom domains

#[derive(Deserialize, Default)]
struct DomainsQuery {
    #[serde(default)]
    status: String,
}

/// Every custom domain with its state, last check and certificate expiry.
async fn domains(cx: Ctx, Query(q): Query<DomainsQuery>) -> Response {
    let r = async {
        cx.session()?;
        let status = q.status.trim().to_string();
        let path = format!(
            "/api/v1/admin/domains?{}",
            query_string([("per_page", "100".to_string()), ("status", status.clone())])
        );
        let list = cx.get(&path).await?;
        let can = can(&cx).await?;
        cx.render_status(
            StatusCode::OK,
            "admin/domains.html",
            context! { title => "Custom domains", nav => "domains", list => Serde(list), status, can => Serde(can) },
        )
    }
    .await;
    cx.finish(r)
}

async fn domain_action(cx: &Ctx, id: Uuid, action: &str, ok: &str) -> UiResult {
    cx.session()?;
    match cx
        .api(
            Method::POST,
            &format!("/api/v1/admin/domains/{id}/{action}"),
            None,
        )
        .await
    {
        Ok(d) => Ok(redirect_with_flash(
            "/admin/domains",
            &format!(
                "{} {ok} (now {}).",
                d["host"].as_str().unwrap_or(""),
                d["status"].as_str().unwrap_or("")
            ),
        )),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::UNAUTHORIZED => {
            Ok(redirect_with_flash("/admin/domains", &e.message))
        }
        Err(e) => Err(e.into()),
    }
}

async fn domain_check(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = domain_action(&cx, id, "check", "re-checked").await;
    cx.finish(r)
}

async fn domain_revoke(
    cx: Ctx,
    Path(id): Path<Uuid>,
    CsrfForm(_): CsrfForm<Vec<(String, String)>>,
) -> Response {
    let r = domain_action(&cx, id, "revoke", "revoked").await;
    cx.finish(r)
}

// ---------------------------------------------------------------- overview

async fn overview(cx: Ctx) -> Response {
    let r = async {
        cx.session()?;
        let o = cx.get("/api/v1/admin/overview").await?;
        let count_bars = |key: &str| -> Vec<(String, i64)> {
            o.get(key)
                .and_then(|m| m.as_object())
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0)))
                .collect()
        };
        let merchants_chart = charts::bars(
            "merchants-chart",
            "Merchants by status",
            &count_bars("merchants"),
        );
        let jobs_chart = charts::bars("jobs-chart", "Jobs by status", &count_bars("jobs"));
        let days: Vec<(String, i64, i64)> = o
            .get("provisioning_per_day")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d.get("day")
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                        .to_string(),
                    d.get("completed").and_then(|v| v.as_i64()).unwrap_or(0),
                    d.get("failed").and_then(|v| v.as_i64()).unwrap_or(0),
                )
            })
            .collect();
        let days_chart = charts::stacked_days(
            "provisioning-chart",
            "Provisioning runs per day, last 7 days (completed and failed)",
            &days,
        );
        let rate = |w: &str| {
            percent(
                o.get(w)
                    .and_then(|s| s.get("success_rate"))
                    .and_then(|v| v.as_f64()),
            )
        };
        cx.render(
            "admin/overview.html",
            context! {
                title => "Platform overview", nav => "overview", o => Serde(&o),
                rate_24h => rate("provisioning_24h"), rate_7d => rate("provisioning_7d"),
                merchants_chart, jobs_chart, days_chart,
            },
        )
    }
    .await;
    cx.finish(r)
}

/// `0.975` → `97.5 %`, `1.0` → `100 %`, none → `—`.
fn percent(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) => {
            let s = format!("{:.1}", v * 100.0);
            format!("{} %", s.strip_suffix(".0").unwrap_or(&s))
        }
    }
}

// ---------------------------------------------------------------- audit log

#[derive(Deserialize, Default)]
struct AuditFilters {
    /// What the admin typed in the merchant field: a subdomain, a name or an id.
    merchant: Option<String>,
    /// A merchant id (links from a merchant's page); `merchant` wins when both are given.
    tenant_id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<i64>,
}

/// The merchant field of the audit filters, resolved through the admin merchant search.
enum MerchantPick {
    /// One merchant: its id, and how the field shows it (subdomain, else name).
    One(String, String),
    /// Nothing matches.
    Nothing,
    /// Several merchants match and none exactly: how many, and the first candidates
    /// (for the field's list).
    Several(i64, Vec<Json>),
}

/// Resolves a typed merchant: an id as is; else the search's merchant whose subdomain
/// or name (case-insensitive) is exactly the text (the search lists those first), else
/// its only result.
async fn pick_merchant(cx: &Ctx, typed: &str) -> Result<MerchantPick, UiError> {
    if let Ok(id) = Uuid::parse_str(typed) {
        return Ok(MerchantPick::One(id.to_string(), typed.to_string()));
    }
    let found = cx
        .get(&format!(
            "/api/v1/admin/merchants?{}",
            query_string([("q", typed.to_string()), ("per_page", "50".to_string())])
        ))
        .await?;
    let list: Vec<Json> = found
        .get("data")
        .and_then(Json::as_array)
        .cloned()
        .unwrap_or_default();
    let text = |m: &Json, k: &str| m.get(k).and_then(Json::as_str).map(str::to_lowercase);
    let wanted = typed.to_lowercase();
    let by_handle: Vec<&Json> = list
        .iter()
        .filter(|m| text(m, "handle").as_deref() == Some(wanted.as_str()))
        .collect();
    let by_name: Vec<&Json> = list
        .iter()
        .filter(|m| text(m, "name").as_deref() == Some(wanted.as_str()))
        .collect();
    let chosen = match (by_handle.as_slice(), by_name.as_slice(), list.as_slice()) {
        ([m], _, _) | ([], [m], _) => *m,
        ([], [], [m]) => m,
        (_, _, []) => return Ok(MerchantPick::Nothing),
        _ => {
            let total = found
                .pointer("/pagination/total")
                .and_then(Json::as_i64)
                .unwrap_or(list.len() as i64);
            return Ok(MerchantPick::Several(total, list));
        }
    };
    let id = chosen.get("id").and_then(Json::as_str).unwrap_or_default();
    let shown = chosen
        .get("handle")
        .and_then(Json::as_str)
        .or_else(|| chosen.get("name").and_then(Json::as_str))
        .unwrap_or(id);
    Ok(MerchantPick::One(id.to_string(), shown.to_string()))
}

/// `2026-11-21` (a date input) → RFC 3339 at the start or end of that day; other
/// values pass through for the API to judge.
fn day_bound(v: &str, end: bool) -> String {
    let v = v.trim();
    if v.len() == 10 && v.as_bytes().get(4) == Some(&b'-') {
        format!("{v}T{}Z", if end { "23:59:59" } else { "00:00:00" })
    } else {
        v.to_string()
    }
}

/// Before/after JSON summaries as text, for display.
fn readable_changes(mut entries: Json) -> Json {
    for e in entries.as_array_mut().into_iter().flatten() {
        for k in ["before", "after"] {
            if let Some(v) = e.get_mut(k)
                && !v.is_null()
            {
                *v = Json::String(v.to_string());
            }
        }
    }
    entries
}

async fn audit_log(cx: Ctx, Query(f): Query<AuditFilters>) -> Response {
    let r = async {
        cx.session()?;
        let page = f.page.unwrap_or(1).max(1);
        let trimmed = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_string();
        let typed = trimmed(&f.merchant);
        // The merchant filter: what was typed, resolved to one id; else a linked id.
        let mut merchant_error = None;
        let mut candidates = None;
        let (tenant_id, merchant_shown) = if typed.is_empty() {
            let id = trimmed(&f.tenant_id);
            let shown = match Uuid::parse_str(&id) {
                Ok(uuid) => match cx.get(&format!("/api/v1/admin/merchants/{uuid}")).await {
                    Ok(m) => m
                        .get("handle")
                        .and_then(Json::as_str)
                        .or_else(|| m.get("name").and_then(Json::as_str))
                        .unwrap_or(&id)
                        .to_string(),
                    Err(_) => id.clone(),
                },
                Err(_) => id.clone(),
            };
            (id, shown)
        } else {
            match pick_merchant(&cx, &typed).await? {
                MerchantPick::One(id, shown) => (id, shown),
                MerchantPick::Nothing => {
                    merchant_error = Some(format!(
                        "No merchant matches \u{201c}{typed}\u{201d}: type its subdomain, name or id."
                    ));
                    (String::new(), typed.clone())
                }
                MerchantPick::Several(total, list) => {
                    merchant_error = Some(format!(
                        "{total} merchants match \u{201c}{typed}\u{201d}: pick one from the list, or type its full subdomain."
                    ));
                    candidates = Some(list);
                    (String::new(), typed.clone())
                }
            }
        };
        // The pager keeps the resolved id, so later pages never re-resolve the text.
        let shown = [
            ("tenant_id", tenant_id.clone()),
            ("actor", f.actor.clone().unwrap_or_default()),
            ("action", f.action.clone().unwrap_or_default()),
            ("since", f.since.clone().unwrap_or_default()),
            ("until", f.until.clone().unwrap_or_default()),
        ];
        let api = [
            ("tenant_id", tenant_id),
            ("actor", trimmed(&f.actor)),
            ("action", trimmed(&f.action)),
            ("since", day_bound(f.since.as_deref().unwrap_or(""), false)),
            ("until", day_bound(f.until.as_deref().unwrap_or(""), true)),
            ("page", page.to_string()),
            ("per_page", "50".to_string()),
        ];
        let (entries, pagination, errors) = if let Some(message) = merchant_error {
            (json!([]), json!({"total": 0, "total_pages": 0}), json!({ "merchant": message }))
        } else {
            match cx
                .get(&format!("/api/v1/admin/audit-log?{}", query_string(api)))
                .await
            {
                Ok(l) => (
                    readable_changes(l.get("data").cloned().unwrap_or(Json::Null)),
                    l.get("pagination").cloned().unwrap_or(Json::Null),
                    json!({}),
                ),
                Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY || e.status == StatusCode::BAD_REQUEST => {
                    (json!([]), json!({"total": 0, "total_pages": 0}), field_errors(&e))
                }
                Err(e) => return Err(e.into()),
            }
        };
        // Suggestions of the merchant field: the candidates of an ambiguous text, else
        // the newest merchants.
        let suggestions = match candidates {
            Some(list) => Json::Array(list),
            None => cx
                .get("/api/v1/admin/merchants?per_page=100")
                .await?
                .get("data")
                .cloned()
                .unwrap_or(Json::Null),
        };
        let status = if errors.as_object().is_some_and(|o| !o.is_empty()) {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        cx.render_status(
            status,
            "admin/audit.html",
            context! {
                title => "Audit log", nav => "audit", entries => Serde(entries),
                pagination => Serde(pagination), page, errors => Serde(errors),
                merchants => Serde(suggestions),
                f => context! { merchant => merchant_shown, actor => f.actor, action => f.action, since => f.since, until => f.until },
                filter_query => format!("&{}", query_string(shown)),
            },
        )
    }
    .await;
    cx.finish(r)
}
