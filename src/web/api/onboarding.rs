//! The merchant setup guide (onboarding wizard) API: the wizard state, per-step saves,
//! the logo upload and publishing the storefront. Every route needs `settings.edit`.
//!
//! Steps, in order: `business`, `branding`, `payments`, `marketing`, `products`,
//! `website`, `launch`. Each is `todo`, `done` or `skipped`. Values are validated per
//! step (422 naming the field). The store name and the theme settings (colors, fonts,
//! logo, texts) are written to the tenant itself, so the storefront uses them at once;
//! the card provider's secret key is sealed with the platform `SecretBox` and never
//! returned (only `secret_configured: true`). Saving the payments step mirrors it into
//! the checkout settings (`store::commerce`, same transaction): `manual` turns bank
//! transfer on with the instructions, `stripe` card payments; `cash_on_delivery` is a
//! checkbox of either choice.
//!
//! Publishing: once a tenant has opened the guide (its first save), its storefront shows
//! a "coming soon" page until `POST /api/v1/onboarding/publish`. Tenants that never
//! opened it (created before the guide existed, CLI/bench/demo stores) serve as before.
//!
//! Preview: `GET /api/v1/onboarding/preview?color_primary=…` renders the store's real home
//! page with draft colours and fonts (validated like a save; invalid ones are ignored),
//! for the branding step's live preview. It saves nothing.

use super::imports::CsvUpload;
use crate::access::perm;
use crate::domain::Email;
use crate::store::onboarding::{OnboardingPatch, OnboardingRow};
use crate::store::{TenantDb, micros_to_rfc3339};
use crate::web::AppState;
use crate::web::context::Authorized;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(get_onboarding))
        .routes(routes!(save_step))
        .routes(routes!(publish))
        .routes(routes!(upload_logo))
        .routes(routes!(preview))
}

/// The wizard's steps in order: `(id, title)`.
pub const STEPS: &[(&str, &str)] = &[
    ("business", "Business details"),
    ("branding", "Branding"),
    ("payments", "Payments"),
    ("marketing", "Marketing"),
    ("products", "Products"),
    ("website", "Website"),
    ("launch", "Launch"),
];

/// Store categories offered in the business step: `(value, label)`.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("apparel", "Clothing & accessories"),
    ("beauty", "Health & beauty"),
    ("electronics", "Electronics"),
    ("food", "Food & drink"),
    ("home", "Home & garden"),
    ("art", "Art & crafts"),
    ("sports", "Sports & outdoors"),
    ("toys", "Toys & games"),
    ("books", "Books & media"),
    ("other", "Other"),
];

/// Largest accepted logo, in bytes.
pub const MAX_LOGO_BYTES: usize = 1024 * 1024;

/// One step of the wizard and its progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StepState {
    pub id: String,
    pub title: String,
    /// `todo`, `done` or `skipped`.
    pub status: String,
}

/// One line of the go-live checklist, computed from the store's real state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ChecklistItem {
    pub id: String,
    pub label: String,
    pub done: bool,
    /// Required items must be done before publishing.
    pub required: bool,
    /// The wizard step where it is fixed.
    pub step: String,
}

/// One theme setting with its current value (from the theme's `config.json`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ThemeSettingState {
    pub id: String,
    /// `color`, `font`, `text` or `image_url`.
    pub kind: String,
    pub label: String,
    pub default: String,
    pub value: String,
}

/// The whole wizard state (`GET /api/v1/onboarding`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OnboardingState {
    pub steps: Vec<StepState>,
    /// Saved values per step: `{business: {name, description, category, contact_email,
    /// contact_phone}, payments: {provider, manual_instructions, cash_on_delivery
    /// ("true"/"false"), stripe_publishable_key},
    /// marketing: {google_analytics_id, meta_pixel_id}}`. Secrets are never included.
    #[schema(value_type = Object)]
    pub values: Value,
    /// True when a card provider secret key is stored (encrypted).
    pub payment_secret_configured: bool,
    pub theme_id: String,
    pub theme_name: String,
    /// The active theme's settings with their current values (branding and website steps).
    pub theme_settings: Vec<ThemeSettingState>,
    pub checklist: Vec<ChecklistItem>,
    /// Every required checklist item is done.
    pub ready_to_publish: bool,
    /// When the storefront was published (RFC 3339), `null` until then.
    pub completed_at: Option<String>,
    /// The storefront shows "coming soon" (guide opened, not published).
    pub coming_soon: bool,
}

/// Body of `PATCH /api/v1/onboarding/{step}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepBody {
    /// Field values of the step (strings). Omitted fields keep their saved value.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// `done` (save and continue: the step's required fields must be set), `skipped`,
    /// or omitted (auto-save: values only).
    pub mark: Option<String>,
}

/// Answer of the logo upload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogoUploaded {
    /// Path the storefront serves the logo at (relative to the store's base path).
    pub logo_url: String,
    pub content_type: String,
    pub bytes: usize,
}

fn step_exists(step: &str) -> ApiResult<()> {
    if STEPS.iter().any(|(id, _)| *id == step) {
        Ok(())
    } else {
        Err(ApiError::not_found("onboarding step"))
    }
}

fn text<'a>(m: &'a Map<String, Value>, step: &str, field: &str) -> &'a str {
    m.get(step)
        .and_then(|s| s.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Builds the state answer from the stored row and the tenant's settings.
async fn state(st: &AppState, m: &crate::web::context::Merchant) -> ApiResult<OnboardingState> {
    let row = m.scope.get_onboarding().await?;
    // Read the tenant fresh (the request's TenantRef may predate this request's own write).
    let tenant = crate::store::platform::tenant_by_id(&st.db, m.tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let theme = st.themes.get_or_default(tenant.theme_id.as_deref());
    let effective = theme.effective_settings(&tenant.theme_settings);
    let theme_settings = theme
        .manifest
        .settings
        .iter()
        .map(|s| ThemeSettingState {
            id: s.id.clone(),
            kind: s.kind.clone(),
            label: s.label.clone(),
            default: s.default.clone(),
            value: effective.get(&s.id).cloned().unwrap_or_default(),
        })
        .collect();
    let mut values = row.data.clone();
    // The store name lives on the tenant: show it as the business name.
    let business = values.entry("business").or_insert_with(|| json!({}));
    if let Some(b) = business.as_object_mut() {
        b.insert("name".into(), Value::String(tenant.name.clone()));
    }
    let checklist = checklist(&m.scope, &row, &values, &effective).await?;
    Ok(OnboardingState {
        steps: STEPS
            .iter()
            .map(|(id, title)| StepState {
                id: id.to_string(),
                title: title.to_string(),
                status: row
                    .steps
                    .get(*id)
                    .and_then(Value::as_str)
                    .unwrap_or("todo")
                    .to_string(),
            })
            .collect(),
        ready_to_publish: checklist.iter().all(|c| c.done || !c.required),
        checklist,
        values: Value::Object(values),
        payment_secret_configured: row.payment_secret.is_some(),
        theme_id: theme.manifest.id.clone(),
        theme_name: theme.manifest.name.clone(),
        theme_settings,
        completed_at: row.published_at.map(micros_to_rfc3339),
        coming_soon: row.exists && row.published_at.is_none(),
    })
}

async fn checklist(
    scope: &TenantDb,
    row: &OnboardingRow,
    values: &Map<String, Value>,
    settings: &BTreeMap<String, String>,
) -> ApiResult<Vec<ChecklistItem>> {
    let business = !text(values, "business", "name").is_empty()
        && !text(values, "business", "contact_email").is_empty();
    let guide_payment = match text(values, "payments", "provider") {
        "manual" => {
            !text(values, "payments", "manual_instructions").is_empty()
                || text(values, "payments", "cash_on_delivery") == "true"
        }
        "stripe" => row.payment_secret.is_some(),
        _ => false,
    };
    // A method enabled on the Checkout settings page counts too.
    let cs = scope.checkout_settings().await?;
    let payment = guide_payment
        || (cs.bank_transfer && !cs.bank_instructions.trim().is_empty())
        || cs.cash_on_delivery
        || (cs.card && row.payment_secret.is_some());
    let products = scope.count_active_products().await? > 0;
    let logo = settings.get("logo_url").is_some_and(|v| !v.is_empty());
    let marketing = !text(values, "marketing", "google_analytics_id").is_empty()
        || !text(values, "marketing", "meta_pixel_id").is_empty();
    let item = |id: &str, label: &str, done: bool, required: bool, step: &str| ChecklistItem {
        id: id.into(),
        label: label.into(),
        done,
        required,
        step: step.into(),
    };
    Ok(vec![
        item(
            "business",
            "Business details filled in (store name and contact e-mail)",
            business,
            true,
            "business",
        ),
        item(
            "payments",
            "A payment method is set up",
            payment,
            true,
            "payments",
        ),
        item(
            "products",
            "At least one active product",
            products,
            true,
            "products",
        ),
        item("logo", "A logo is uploaded", logo, false, "branding"),
        item(
            "marketing",
            "Analytics or a pixel is connected",
            marketing,
            false,
            "marketing",
        ),
    ])
}

/// The wizard state: steps with their status, saved values, theme settings, go-live
/// checklist and publication time.
#[utoipa::path(get, path = "/api/v1/onboarding", tag = "merchant", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = OnboardingState), (status = 403, body = ErrorBody)))]
async fn get_onboarding(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
) -> ApiResult<Json<OnboardingState>> {
    Ok(Json(state(&st, &m).await?))
}

fn too_long(field: &str, v: &str, max: usize) -> ApiResult<()> {
    if v.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(())
}

/// Is `v` (trimmed) an acceptable value for a theme setting of `kind` (`color`, `font`,
/// `image_url`, else text)? The one rule set for saves and previews.
pub fn valid_setting(kind: &str, v: &str) -> bool {
    match kind {
        "color" => valid_color(v),
        "font" => valid_font(v),
        "image_url" => valid_image_url(v),
        _ => v.chars().count() <= 300,
    }
}

fn valid_color(v: &str) -> bool {
    let hex = v.strip_prefix('#').unwrap_or("");
    (hex.len() == 3 || hex.len() == 6) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

fn valid_font(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 200
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " ,'-_.".contains(c))
}

fn valid_image_url(v: &str) -> bool {
    v.is_empty()
        || v.starts_with("/store-assets/")
        || ((v.starts_with("https://") || v.starts_with("http://"))
            && url::Url::parse(v).is_ok()
            && !v.contains(['"', '<', '>', ' ']))
}

fn valid_phone(v: &str) -> bool {
    let digits = v.chars().filter(char::is_ascii_digit).count();
    (6..=20).contains(&digits)
        && v.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
}

/// Google Analytics 4 (`G-XXXXXXX`) or Universal Analytics (`UA-1234567-1`) ids.
fn valid_ga(v: &str) -> bool {
    if let Some(rest) = v.strip_prefix("G-") {
        return (4..=12).contains(&rest.len())
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    }
    if let Some(rest) = v.strip_prefix("UA-") {
        let mut parts = rest.split('-');
        let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        return parts.next().is_none()
            && (4..=10).contains(&a.len())
            && (1..=4).contains(&b.len())
            && a.chars().chain(b.chars()).all(|c| c.is_ascii_digit());
    }
    false
}

/// Meta (Facebook) Pixel ids: 15 or 16 digits.
fn valid_pixel(v: &str) -> bool {
    (15..=16).contains(&v.len()) && v.chars().all(|c| c.is_ascii_digit())
}

fn valid_key(v: &str, prefix: &str) -> bool {
    ["test_", "live_"].iter().any(|mode| {
        v.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix(mode))
            .is_some_and(|r| r.len() >= 8 && r.chars().all(|c| c.is_ascii_alphanumeric()))
    })
}

/// Validates theme setting values against the theme's declared kinds; returns them
/// trimmed, to merge into the stored settings.
fn theme_values(
    st: &AppState,
    tenant: &crate::store::platform::TenantRef,
    values: &BTreeMap<String, String>,
) -> ApiResult<Map<String, Value>> {
    let theme = st.themes.get_or_default(tenant.theme_id.as_deref());
    let mut out = Map::new();
    for (k, v) in values {
        let Some(s) = theme.manifest.settings.iter().find(|s| &s.id == k) else {
            return Err(ApiError::invalid(
                k,
                "unknown_setting",
                format!("{k} is not a setting of the theme {}", theme.manifest.name),
            ));
        };
        let v = v.trim();
        if !valid_setting(&s.kind, v) {
            let msg = match s.kind.as_str() {
                "color" => format!("{} must be a colour like #1a2b3c", s.label),
                "font" => format!("{} must be a font list like Georgia, serif", s.label),
                "image_url" => format!("{} must be an http(s) URL", s.label),
                _ => format!("{} must be at most 300 characters", s.label),
            };
            return Err(ApiError::invalid(k, "invalid_setting", msg));
        }
        out.insert(k.clone(), Value::String(v.to_string()));
    }
    Ok(out)
}

/// Save one step: validates its values (422 naming the field), stores them, and marks
/// the step `done` or `skipped` when `mark` says so. Business name and theme settings
/// are applied to the store at once. Answers the new wizard state.
#[utoipa::path(patch, path = "/api/v1/onboarding/{step}", tag = "merchant", security(("bearer" = ["settings.edit"])),
    params(("step" = String, Path, description = "business, branding, payments, marketing, products, website or launch")),
    request_body = StepBody,
    responses((status = 200, body = OnboardingState), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn save_step(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(step): Path<String>,
    ApiJson(body): ApiJson<StepBody>,
) -> ApiResult<Json<OnboardingState>> {
    step_exists(&step)?;
    let mark = match body.mark.as_deref() {
        None | Some("") => None,
        Some(m @ ("done" | "skipped")) => Some(m),
        Some(_) => {
            return Err(ApiError::invalid(
                "mark",
                "invalid_mark",
                "mark must be done or skipped",
            ));
        }
    };
    let row = m.scope.get_onboarding().await?;
    let tenant = crate::store::platform::tenant_by_id(&st.db, m.tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut p = OnboardingPatch {
        step: step.clone(),
        mark: mark.map(str::to_string),
        ..Default::default()
    };
    let values: BTreeMap<String, String> = body
        .values
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .collect();
    let mut saved = Map::new();
    // Skipping saves nothing but the mark.
    if mark != Some("skipped") {
        match step.as_str() {
            "business" => {
                for (k, v) in &values {
                    let v = v.trim();
                    match k.as_str() {
                        "name" => {
                            if v.is_empty() {
                                return Err(ApiError::invalid(
                                    "name",
                                    "required",
                                    "Store name is required",
                                ));
                            }
                            too_long("name", v, 120)?;
                            if v != tenant.name {
                                p.store_name = Some(v.to_string());
                            }
                        }
                        "description" => too_long("description", v, 2000)?,
                        "category" => {
                            if !v.is_empty() && !CATEGORIES.iter().any(|(c, _)| *c == v) {
                                return Err(ApiError::invalid(
                                    "category",
                                    "invalid_category",
                                    "choose a category from the list",
                                ));
                            }
                        }
                        "contact_email" => {
                            if !v.is_empty() {
                                Email::parse(v).map_err(|_| {
                                    ApiError::invalid(
                                        "contact_email",
                                        "invalid_email",
                                        "Contact e-mail must be an e-mail address like you@example.com",
                                    )
                                })?;
                            }
                        }
                        "contact_phone" => {
                            if !v.is_empty() && !valid_phone(v) {
                                return Err(ApiError::invalid(
                                    "contact_phone",
                                    "invalid_phone",
                                    "Contact phone must be a phone number (6 to 20 digits, + - ( ) and spaces allowed)",
                                ));
                            }
                        }
                        other => return Err(unknown_field(other)),
                    }
                    if k != "name" {
                        saved.insert(k.clone(), Value::String(v.to_string()));
                    }
                }
            }
            "branding" | "website" => {
                p.theme_settings = theme_values(&st, &tenant, &values)?;
            }
            "payments" => {
                for (k, v) in &values {
                    let v = v.trim();
                    match k.as_str() {
                        "provider" => {
                            if !matches!(v, "" | "manual" | "stripe") {
                                return Err(ApiError::invalid(
                                    "provider",
                                    "invalid_provider",
                                    "choose bank transfer / cash on delivery or Stripe",
                                ));
                            }
                        }
                        "manual_instructions" => too_long("manual_instructions", v, 2000)?,
                        "cash_on_delivery" => {
                            // A checkbox: "true"/"on" ticked, ""/"false" not.
                            let on = match v {
                                "true" | "on" => true,
                                "" | "false" => false,
                                _ => {
                                    return Err(ApiError::invalid(
                                        "cash_on_delivery",
                                        "invalid_boolean",
                                        "cash_on_delivery must be true or false",
                                    ));
                                }
                            };
                            saved.insert(k.clone(), Value::String(on.to_string()));
                            continue;
                        }
                        "stripe_publishable_key" => {
                            if !v.is_empty() && !valid_key(v, "pk_") {
                                return Err(ApiError::invalid(
                                    "stripe_publishable_key",
                                    "invalid_key",
                                    "Publishable key must look like pk_live_… or pk_test_…",
                                ));
                            }
                        }
                        "stripe_secret_key" => {
                            if !v.is_empty() {
                                if !valid_key(v, "sk_") {
                                    return Err(ApiError::invalid(
                                        "stripe_secret_key",
                                        "invalid_key",
                                        "Secret key must look like sk_live_… or sk_test_…",
                                    ));
                                }
                                let sealed = st.secret_box.seal(v).map_err(|e| {
                                    tracing::error!(error = %e, "sealing a payment secret failed");
                                    ApiError::internal()
                                })?;
                                p.payment_secret = Some(sealed);
                            }
                            // Never stored in the plain data.
                            continue;
                        }
                        other => return Err(unknown_field(other)),
                    }
                    saved.insert(k.clone(), Value::String(v.to_string()));
                }
            }
            "marketing" => {
                for (k, v) in &values {
                    let v = v.trim();
                    match k.as_str() {
                        "google_analytics_id" => {
                            if !v.is_empty() && !valid_ga(v) {
                                return Err(ApiError::invalid(
                                    "google_analytics_id",
                                    "invalid_format",
                                    "Google Analytics ID must look like G-XXXXXXXXXX or UA-1234567-1",
                                ));
                            }
                        }
                        "meta_pixel_id" => {
                            if !v.is_empty() && !valid_pixel(v) {
                                return Err(ApiError::invalid(
                                    "meta_pixel_id",
                                    "invalid_format",
                                    "Meta Pixel ID must be 15 or 16 digits",
                                ));
                            }
                        }
                        other => return Err(unknown_field(other)),
                    }
                    saved.insert(k.clone(), Value::String(v.to_string()));
                }
            }
            _ => {
                if let Some(k) = values.keys().next() {
                    return Err(unknown_field(k));
                }
            }
        }
    }
    p.values = saved;
    if mark == Some("done") {
        // The state this save leads to (the stored one with this step's new values).
        let mut data = row.data.clone();
        let entry = data.entry(step.clone()).or_insert_with(|| json!({}));
        if let Some(o) = entry.as_object_mut() {
            o.extend(p.values.clone());
        }
        require_done(&step, &data, &p, &tenant, &row)?;
    }
    // What changed, for the audit log: field names only (values may be personal data).
    let fields: Vec<&String> = if mark == Some("skipped") {
        vec![]
    } else {
        values.keys().collect()
    };
    let summary = json!({ "step": step, "mark": mark, "fields": fields });
    m.scope.patch_onboarding(&m.actor, &p, summary).await?;
    // The host → tenant cache carries the name and theme settings.
    if p.store_name.is_some() || !p.theme_settings.is_empty() {
        st.tenant_cache.invalidate();
    }
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(state(&st, &m).await?))
}

fn unknown_field(f: &str) -> ApiError {
    ApiError::invalid(
        f,
        "unknown_field",
        format!("{f} is not a field of this step"),
    )
}

/// "Save and continue" needs the step's essentials.
fn require_done(
    step: &str,
    data: &Map<String, Value>,
    p: &OnboardingPatch,
    tenant: &crate::store::platform::TenantRef,
    row: &OnboardingRow,
) -> ApiResult<()> {
    match step {
        "business" => {
            let name = p.store_name.as_deref().unwrap_or(&tenant.name);
            if name.trim().is_empty() {
                return Err(ApiError::invalid(
                    "name",
                    "required",
                    "Store name is required",
                ));
            }
            if text(data, "business", "contact_email").is_empty() {
                return Err(ApiError::invalid(
                    "contact_email",
                    "required",
                    "Contact e-mail is required",
                ));
            }
        }
        "payments" => match text(data, "payments", "provider") {
            "manual" => {
                if text(data, "payments", "manual_instructions").is_empty()
                    && text(data, "payments", "cash_on_delivery") != "true"
                {
                    return Err(ApiError::invalid(
                        "manual_instructions",
                        "required",
                        "Tell customers how to pay by bank transfer (your IBAN and the reference to use), or offer cash on delivery",
                    ));
                }
            }
            "stripe" => {
                if p.payment_secret.is_none() && row.payment_secret.is_none() {
                    return Err(ApiError::invalid(
                        "stripe_secret_key",
                        "required",
                        "Secret key is required for Stripe",
                    ));
                }
            }
            _ => {
                return Err(ApiError::invalid(
                    "provider",
                    "required",
                    "Choose a payment method",
                ));
            }
        },
        _ => {}
    }
    Ok(())
}

/// Publish the storefront: every required checklist item must be done (422 with field
/// `checklist` naming what is missing). Marks the `launch` step done; the storefront
/// stops showing "coming soon". Idempotent.
#[utoipa::path(post, path = "/api/v1/onboarding/publish", tag = "merchant", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = OnboardingState), (status = 422, body = ErrorBody)))]
async fn publish(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
) -> ApiResult<Json<OnboardingState>> {
    let s = state(&st, &m).await?;
    let missing: Vec<&str> = s
        .checklist
        .iter()
        .filter(|c| c.required && !c.done)
        .map(|c| c.label.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(
            "checklist",
            "not_ready",
            format!("Before publishing: {}", missing.join("; ")),
        ));
    }
    let p = OnboardingPatch {
        step: "launch".into(),
        mark: Some("done".into()),
        publish: true,
        ..Default::default()
    };
    m.scope
        .patch_onboarding(&m.actor, &p, json!({ "step": "launch", "mark": "done" }))
        .await?;
    st.tenant_cache.invalidate();
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok(Json(state(&st, &m).await?))
}

/// The content type of an image recognised by its first bytes (PNG, JPEG, WebP, SVG).
pub fn sniff_image(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some("image/png");
    }
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some("image/jpeg");
    }
    if b.len() >= 12 && &b[0..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    let head = String::from_utf8_lossy(&b[..b.len().min(1024)]);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    if (head.starts_with("<?xml") || head.starts_with("<svg") || head.starts_with("<!--"))
        && head.contains("<svg")
    {
        return Some("image/svg+xml");
    }
    None
}

/// Upload the store logo (PNG, JPEG, SVG or WebP, at most 1 MB, recognised by its
/// content, not its name), as the raw body or the `file` field of a multipart form.
/// Sets the theme's `logo_url` so the storefront shows it.
#[utoipa::path(post, path = "/api/v1/onboarding/logo", tag = "merchant", security(("bearer" = ["settings.edit"])),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 201, body = LogoUploaded), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn upload_logo(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    CsvUpload(bytes, _): CsvUpload,
) -> ApiResult<(StatusCode, Json<LogoUploaded>)> {
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the logo must be at most 1 MB",
        )
        .with_details(json!({ "field": "logo" })));
    }
    let Some(ct) = sniff_image(&bytes) else {
        return Err(ApiError::invalid(
            "logo",
            "unsupported_image",
            "the logo must be a PNG, JPEG, SVG or WebP image",
        ));
    };
    let id = m
        .scope
        .put_store_asset(&m.actor, "logo", ct, &bytes)
        .await?;
    let logo_url = format!("/store-assets/{id}");
    let tenant = crate::store::platform::tenant_by_id(&st.db, m.tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    let mut v = BTreeMap::new();
    v.insert("logo_url".to_string(), logo_url.clone());
    // Themes without a logo setting keep the upload but show nothing.
    let theme = st.themes.get_or_default(tenant.theme_id.as_deref());
    if theme.manifest.settings.iter().any(|s| s.id == "logo_url") {
        let p = OnboardingPatch {
            step: "branding".into(),
            theme_settings: theme_values(&st, &tenant, &v)?,
            ..Default::default()
        };
        m.scope
            .patch_onboarding(
                &m.actor,
                &p,
                json!({ "step": "branding", "fields": ["logo_url"] }),
            )
            .await?;
    }
    st.tenant_cache.invalidate();
    st.page_cache.invalidate_tenant(m.tenant.id);
    Ok((
        StatusCode::CREATED,
        Json(LogoUploaded {
            logo_url,
            content_type: ct.to_string(),
            bytes: bytes.len(),
        }),
    ))
}

/// Draft branding values for a preview, from query pairs: only the colour and font
/// settings of `theme` (what the branding step edits), trimmed, and only when they pass
/// the same rules as a save ([`valid_setting`]); anything else is dropped, so the saved
/// value shows instead. The last valid value of a repeated key wins.
pub fn draft_settings(
    theme: &crate::themes::Theme,
    pairs: impl IntoIterator<Item = (String, String)>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in pairs {
        let Some(s) = theme
            .manifest
            .settings
            .iter()
            .find(|s| s.id == k && matches!(s.kind.as_str(), "color" | "font"))
        else {
            continue;
        };
        let v = v.trim();
        if valid_setting(&s.kind, v) {
            out.insert(k, Value::String(v.to_string()));
        }
    }
    out
}

/// The store's home page (HTML) as it looks with draft colours and fonts: the branding
/// step's live preview. Query parameters are theme setting ids of kind `color` or
/// `font` (e.g. `color_primary=%23aa3300&font_body=Georgia,serif`); invalid or unknown
/// ones are ignored and the saved value is used. Rendered from the store's own theme and
/// products, even before the storefront is published; tracking snippets are left out.
/// Saves nothing, never cached.
#[utoipa::path(get, path = "/api/v1/onboarding/preview", tag = "merchant", security(("bearer" = ["settings.edit"])),
    params(
        ("color_primary" = Option<String>, Query, description = "A draft colour (#rgb or #rrggbb); any colour setting of the theme works the same way"),
        ("font_body" = Option<String>, Query, description = "A draft font list; any font setting of the theme works the same way"),
    ),
    responses((status = 200, content_type = "text/html", body = String), (status = 403, body = ErrorBody)))]
async fn preview(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let theme = st.themes.get_or_default(m.tenant.theme_id.as_deref());
    let pairs = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()));
    let draft = draft_settings(&theme, pairs);
    let html = crate::web::storefront::home_preview(&st, &m.scope, &m.tenant, &draft).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response())
}
