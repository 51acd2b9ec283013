//! Server-rendered storefronts: home (featured products), catalog with pagination,
//! product detail, 404 and "store unavailable", from the tenant's theme and branding.
//! Also the platform's own few pages (landing, set-password form).

use super::AppState;
use super::context::HostTenant;
use crate::domain::ProductStatus;
use crate::store::TenantDb;
use crate::store::catalog::{Product, ProductFilter};
use crate::store::platform::{Merchant, TenantRef};
use crate::themes::Theme;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::{Value, context};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Storefront and platform page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/products", get(catalog))
        .route("/products/{handle}", get(product))
        .route("/branding.css", get(branding_css))
        .route("/themes/{id}/style.css", get(theme_css))
        .route("/themes/{id}/preview.svg", get(theme_preview))
        .route(
            "/set-password",
            get(set_password_form).post(set_password_submit),
        )
        .route(
            "/invitations/accept",
            get(invitation_form).post(invitation_submit),
        )
}

/// A small per-tenant cache of rendered responses, invalidated on catalog or status
/// changes of the tenant and expiring after a few seconds (bounding staleness across nodes).
#[derive(Default)]
pub struct PageCache {
    map: RwLock<HashMap<(Uuid, String), (Bytes, Instant)>>,
}

const PAGE_TTL: Duration = Duration::from_secs(10);

impl PageCache {
    pub fn get(&self, tenant: Uuid, key: &str) -> Option<Bytes> {
        let map = self.map.read().ok()?;
        let (b, at) = map.get(&(tenant, key.to_string()))?;
        (at.elapsed() < PAGE_TTL).then(|| b.clone())
    }
    pub fn put(&self, tenant: Uuid, key: String, body: Bytes) {
        if let Ok(mut map) = self.map.write() {
            if map.len() > 50_000 {
                map.clear();
            }
            map.insert((tenant, key), (body, Instant::now()));
        }
    }
    pub fn invalidate_tenant(&self, tenant: Uuid) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|(t, _), _| *t != tenant);
        }
    }
}

fn year() -> i32 {
    time::OffsetDateTime::now_utc().year()
}

fn base_ctx(t: &TenantRef, theme: &Theme, base_path: &str, page_title: &str) -> Value {
    let settings = theme.effective_settings(&t.theme_settings);
    context! {
        store => context! { name => t.name.clone(), handle => t.handle.clone(), currency => t.currency.clone(), base_path => base_path },
        theme => context! { id => theme.manifest.id.clone(), name => theme.manifest.name.clone(), settings => settings },
        page_title => page_title,
        stylesheet_url => format!("/themes/{}/style.css", theme.manifest.id),
        branding_url => format!("{base_path}/branding.css"),
        year => year(),
    }
}

/// The context used by the provisioning health check (an empty home page).
pub fn health_check_context(m: &Merchant, theme: &Theme, handle: &str) -> Value {
    let t = TenantRef {
        id: m.id,
        name: m.name.clone(),
        handle: Some(handle.to_string()),
        status: m.status.clone(),
        theme_id: m.theme_id.clone(),
        theme_settings: m.theme_settings.clone(),
        currency: m.currency.clone(),
        storefront_ready: false,
    };
    let base = base_ctx(&t, theme, "", "Home");
    context! { featured => Vec::<Value>::new(), ..base }
}

fn card(p: &Product, base_path: &str) -> Value {
    let v = p.variants.first();
    let img = p.images.first();
    context! {
        handle => p.handle.clone(),
        title => p.title.clone(),
        url => format!("{base_path}/products/{}", p.handle),
        price => v.map(|v| v.price.formatted.clone()).unwrap_or_default(),
        compare_at_price => v.and_then(|v| v.compare_at_price.as_ref().map(|c| c.formatted.clone())),
        image_url => img.map(|i| i.url.clone()),
        image_alt => img.and_then(|i| i.alt.clone()).unwrap_or_else(|| p.title.clone()),
        vendor => p.vendor.clone(),
    }
}

/// Turns product body HTML into plain text (tags dropped, block ends become newlines).
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let t = tag.trim_start_matches('/').to_ascii_lowercase();
                let name = t
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or("");
                if matches!(
                    name,
                    "p" | "br" | "li" | "div" | "h1" | "h2" | "h3" | "h4" | "tr"
                ) {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    let out = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines.join("\n")
}

/// Renders a page and keeps it in the tenant's page cache under `key`.
fn render_cached(
    st: &AppState,
    h: &HostTenant,
    theme: &Theme,
    template: &str,
    ctx: Value,
    key: String,
) -> Response {
    match theme.render(template, ctx) {
        Ok(html) => {
            let b = Bytes::from(html);
            st.page_cache.put(h.tenant.id, key, b.clone());
            html_bytes(b)
        }
        Err(e) => render_error(template, e),
    }
}

/// A storage failure on a storefront page: logged, shown as an HTML 500 page.
fn store_error(e: crate::store::StoreError) -> Response {
    tracing::error!(error = %e, "storefront storage error");
    server_error_page()
}

fn render_error(template: &str, e: minijinja::Error) -> Response {
    tracing::error!(error = %e, template, "storefront render failed");
    server_error_page()
}

fn server_error_page() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(platform_page(
            "Something went wrong",
            "<p>This page could not be shown. The error has been logged.</p>",
        )),
    )
        .into_response()
}

fn render(theme: &Theme, template: &str, ctx: Value, status: StatusCode) -> Response {
    match theme.render(template, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => render_error(template, e),
    }
}

fn unavailable(st: &AppState, h: &HostTenant) -> Response {
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let ctx = base_ctx(&h.tenant, &theme, &h.base_path, "Store unavailable");
    render(
        &theme,
        "unavailable.html",
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
    )
}

fn tenant_not_found(st: &AppState, h: &HostTenant, message: &str) -> Response {
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let ctx = base_ctx(&h.tenant, &theme, &h.base_path, "Page not found");
    render(
        &theme,
        "not_found.html",
        context! { message => message, ..ctx },
        StatusCode::NOT_FOUND,
    )
}

fn html_bytes(b: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], b).into_response()
}

async fn home(State(st): State<AppState>, tenant: Option<Extension<HostTenant>>) -> Response {
    let Some(Extension(h)) = tenant else {
        return Html(platform_landing(&st)).into_response();
    };
    if h.tenant.status != "active" {
        return unavailable(&st, &h);
    }
    let key = format!("home:{}", h.base_path);
    if let Some(hit) = st.page_cache.get(h.tenant.id, &key) {
        return html_bytes(hit);
    }
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let featured_filter = ProductFilter {
        status: Some(ProductStatus::Active),
        featured: Some(true),
        ..Default::default()
    };
    let mut products = match scope.list_products(&featured_filter, 8, 0).await {
        Ok((p, _)) => p,
        Err(e) => return store_error(e),
    };
    if products.is_empty() {
        let f = ProductFilter {
            status: Some(ProductStatus::Active),
            ..Default::default()
        };
        products = match scope.list_products(&f, 8, 0).await {
            Ok((p, _)) => p,
            Err(e) => return store_error(e),
        };
    }
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let featured: Vec<Value> = products.iter().map(|p| card(p, &h.base_path)).collect();
    let ctx = base_ctx(&h.tenant, &theme, &h.base_path, "Home");
    render_cached(
        &st,
        &h,
        &theme,
        "home.html",
        context! { featured => featured, ..ctx },
        key,
    )
}

#[derive(Deserialize)]
struct CatalogQuery {
    page: Option<String>,
}

const CATALOG_PER_PAGE: i64 = 12;

async fn catalog(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Query(q): Query<CatalogQuery>,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return platform_not_found().into_response();
    };
    if h.tenant.status != "active" {
        return unavailable(&st, &h);
    }
    let page: i64 = match q.page.as_deref().map(str::parse::<i64>) {
        None => 1,
        Some(Ok(p)) if (1..=100_000).contains(&p) => p,
        Some(_) => return tenant_not_found(&st, &h, "That page number does not exist."),
    };
    let key = format!("catalog:{}:{page}", h.base_path);
    if let Some(hit) = st.page_cache.get(h.tenant.id, &key) {
        return html_bytes(hit);
    }
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let f = ProductFilter {
        status: Some(ProductStatus::Active),
        ..Default::default()
    };
    let (products, total) = match scope
        .list_products(&f, CATALOG_PER_PAGE, (page - 1) * CATALOG_PER_PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    let total_pages = ((total + CATALOG_PER_PAGE - 1) / CATALOG_PER_PAGE).max(1);
    if page > total_pages {
        return tenant_not_found(&st, &h, "That page number does not exist.");
    }
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let url = |p: i64| format!("{}/products?page={p}", h.base_path);
    let ctx = base_ctx(&h.tenant, &theme, &h.base_path, "All products");
    let ctx = context! {
        products => products.iter().map(|p| card(p, &h.base_path)).collect::<Vec<_>>(),
        page => page, total_pages => total_pages, total => total,
        prev_url => (page > 1).then(|| url(page - 1)),
        next_url => (page < total_pages).then(|| url(page + 1)),
        ..ctx
    };
    render_cached(&st, &h, &theme, "catalog.html", ctx, key)
}

async fn product(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Path(handle): Path<String>,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return platform_not_found().into_response();
    };
    if h.tenant.status != "active" {
        return unavailable(&st, &h);
    }
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let p = match scope.get_product_by_handle(&handle, true).await {
        Ok(Some(p)) => p,
        Ok(None) => return tenant_not_found(&st, &h, "We could not find that product."),
        Err(e) => return store_error(e),
    };
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let options: Vec<Value> = p
        .options
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut values: Vec<String> = vec![];
            for v in &p.variants {
                if let Some(val) = v.option_values.get(i)
                    && !values.contains(val)
                {
                    values.push(val.clone());
                }
            }
            context! { name => name.clone(), values => values }
        })
        .collect();
    let first = p.variants.first();
    let ctx = base_ctx(&h.tenant, &theme, &h.base_path, &p.title);
    let ctx = context! {
        product => context! {
            handle => p.handle.clone(),
            title => p.title.clone(),
            url => format!("{}/products/{}", h.base_path, p.handle),
            description_text => html_to_text(&p.body_html),
            vendor => p.vendor.clone(),
            product_type => p.product_type.clone(),
            tags => p.tags.clone(),
            price => first.map(|v| v.price.formatted.clone()).unwrap_or_default(),
            compare_at_price => first.and_then(|v| v.compare_at_price.as_ref().map(|c| c.formatted.clone())),
            images => p.images.iter().map(|i| context! { url => i.url.clone(), alt => i.alt.clone().unwrap_or_else(|| p.title.clone()) }).collect::<Vec<_>>(),
            options => options,
            variants => p.variants.iter().map(|v| context! {
                title => v.title.clone(), sku => v.sku.clone(), price => v.price.formatted.clone(),
                compare_at_price => v.compare_at_price.as_ref().map(|c| c.formatted.clone()),
                available => v.inventory_quantity > 0, inventory => v.inventory_quantity,
            }).collect::<Vec<_>>(),
        },
        ..ctx
    };
    render(&theme, "product.html", ctx, StatusCode::OK)
}

async fn branding_css(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return platform_not_found().into_response();
    };
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=60"),
        ],
        theme.branding_css(&h.tenant.theme_settings),
    )
        .into_response()
}

async fn theme_css(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st.themes.get(&id) {
        Some(t) => (
            [
                (header::CONTENT_TYPE, "text/css; charset=utf-8"),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            t.stylesheet,
        )
            .into_response(),
        None => platform_not_found().into_response(),
    }
}

async fn theme_preview(State(st): State<AppState>, Path(id): Path<String>) -> Response {
    match st.themes.get(&id) {
        Some(t) => (
            [
                (header::CONTENT_TYPE, "image/svg+xml"),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            t.preview_svg,
        )
            .into_response(),
        None => platform_not_found().into_response(),
    }
}

/// Fallback for unknown paths: the theme's 404 on a store host, JSON under `/api/`,
/// the platform 404 page otherwise.
pub async fn fallback(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    uri: Uri,
) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::web::error::ApiError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("no API route {}", uri.path()),
        )
        .into_response();
    }
    match tenant {
        Some(Extension(h)) if h.tenant.status != "active" => unavailable(&st, &h),
        Some(Extension(h)) => tenant_not_found(&st, &h, "We could not find that page."),
        None => platform_not_found().into_response(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A minimal platform page (no tenant): `body` must already be safe HTML.
pub fn platform_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t} – Souk</title>\
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#222;line-height:1.5}}label{{display:block;margin:.75rem 0 .25rem}}input{{padding:.5rem;width:100%;box-sizing:border-box}}button{{margin-top:1rem;padding:.6rem 1.2rem}}</style></head>\
<body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    )
}

fn platform_not_found() -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        Html(platform_page(
            "Page not found",
            "<p>There is nothing here. <a href=\"/\">Go to the start page</a>.</p>",
        )),
    )
}

/// The 404 page for a host or path that names no store.
pub fn platform_not_found_page(what: &str) -> String {
    platform_page(
        "Store not found",
        &format!(
            "<p>No store is served at <code>{}</code>. Check the address.</p>",
            escape(what)
        ),
    )
}

fn platform_landing(st: &AppState) -> String {
    platform_page(
        "Souk is running",
        &format!(
            "<p>This is the Souk platform host. Storefronts are served at <code>http://&lt;handle&gt;.{}/</code> and <code>/s/&lt;handle&gt;/</code>.</p>\
<ul><li><a href=\"/api/v1/openapi.json\">OpenAPI document</a></li><li><a href=\"/healthz\">Health</a></li><li><a href=\"/metrics\">Metrics</a></li></ul>",
            escape(&st.config.base_domain)
        ),
    )
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

async fn set_password_form(Query(q): Query<TokenQuery>) -> Html<String> {
    let token = escape(q.token.as_deref().unwrap_or(""));
    Html(platform_page(
        "Set your password",
        &format!(
            "<form method=\"post\" action=\"/set-password\"><input type=\"hidden\" name=\"token\" value=\"{token}\">\
<label for=\"password\">New password (at least 8 characters)</label><input id=\"password\" name=\"password\" type=\"password\" minlength=\"8\" required autocomplete=\"new-password\">\
<button type=\"submit\">Set password</button></form>"
        ),
    ))
}

async fn invitation_form(State(st): State<AppState>, Query(q): Query<TokenQuery>) -> Response {
    let raw = q.token.unwrap_or_default();
    match super::api::team::preview_invitation(&st, &raw).await {
        Ok(p) => {
            let token = escape(&raw);
            let who = format!(
                "<p>You are invited to join <strong>{}</strong> as <strong>{}</strong> ({}).</p>",
                escape(&p.tenant_name),
                escape(&p.role),
                escape(&p.email)
            );
            let fields = if p.account_exists {
                "<p>You already have a Souk account: confirm with your password to join.</p>\
<label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" required autocomplete=\"current-password\">"
            } else {
                "<label for=\"name\">Your name</label><input id=\"name\" name=\"name\" required maxlength=\"120\" autocomplete=\"name\">\
<label for=\"password\">Choose a password (at least 8 characters)</label><input id=\"password\" name=\"password\" type=\"password\" minlength=\"8\" required autocomplete=\"new-password\">"
            };
            Html(platform_page(
                "Accept your invitation",
                &format!(
                    "{who}<form method=\"post\" action=\"/invitations/accept\"><input type=\"hidden\" name=\"token\" value=\"{token}\">{fields}<button type=\"submit\">Join</button></form>"
                ),
            ))
            .into_response()
        }
        Err(e) => (
            e.status,
            Html(platform_page(
                "Invitation not usable",
                &format!("<p>{}</p>", escape(&e.message)),
            )),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct InvitationForm {
    token: String,
    name: Option<String>,
    password: String,
}

async fn invitation_submit(
    State(st): State<AppState>,
    super::context::ClientIp(ip): super::context::ClientIp,
    Form(f): Form<InvitationForm>,
) -> Response {
    match super::api::team::accept_with_password(&st, &f.token, f.name.as_deref(), &f.password, ip)
        .await
    {
        Ok(shop) => Html(platform_page(
            "Welcome to the team",
            &format!(
                "<p>You joined <strong>{}</strong>. You can now sign in to its dashboard.</p>",
                escape(&shop)
            ),
        ))
        .into_response(),
        Err(e) => (
            e.status,
            Html(platform_page(
                "Could not accept the invitation",
                &format!("<p>{}</p>", escape(&e.message)),
            )),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
struct SetPasswordForm {
    token: String,
    password: String,
}

async fn set_password_submit(
    State(st): State<AppState>,
    super::context::ClientIp(ip): super::context::ClientIp,
    Form(f): Form<SetPasswordForm>,
) -> Response {
    match super::api::auth::set_password_with_token(&st, &f.token, &f.password, ip).await {
        Ok(_) => Html(platform_page(
            "Password set",
            "<p>Your password is set. You can now sign in to your dashboard.</p>",
        ))
        .into_response(),
        Err(e) => (
            e.status,
            Html(platform_page(
                "Could not set the password",
                &format!("<p>{}</p>", escape(&e.message)),
            )),
        )
            .into_response(),
    }
}
