//! Server-rendered storefronts: home (featured products), catalog with pagination,
//! product detail, 404 and "store unavailable", from the tenant's theme and branding.
//! Also the home page's branding preview for the setup guide ([`home_preview`]) and the
//! platform's own few pages (landing, set-password form).

use super::AppState;
use super::context::HostTenant;
use super::error::ApiError;
use super::ui::Ctx;
use crate::domain::ProductStatus;
use crate::store::TenantDb;
use crate::store::catalog::{Image, MoneyDto, Product, ProductFilter, Variant};
use crate::store::platform::{Merchant, TenantRef};
use crate::themes::{SamplePage, Theme};
use crate::web::lang;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use minijinja::value::Serde;
use minijinja::{Value, context};
use serde::Deserialize;
use serde_json::json;
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
        .route("/store-assets/{id}", get(store_asset))
        .merge(super::shop::routes())
}

/// Anti-framing for storefront pages (applied by `web::around_handler`): every HTML answer that sets no framing rule of its
/// own gets `Content-Security-Policy: frame-ancestors 'self' <platform origin>`, so only
/// the store itself and the platform (the dashboard, whose setup guide previews the
/// store) may frame it. Admin and dashboard pages carry their own stricter rule.
pub fn frame_ancestors_of(st: &AppState, mut res: Response) -> Response {
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    let h = res.headers_mut();
    if html
        && !h.contains_key(header::X_FRAME_OPTIONS)
        && !h.contains_key(header::CONTENT_SECURITY_POLICY)
    {
        let policy = match url::Url::parse(&st.config.public_url)
            .ok()
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
        {
            Some(origin) => format!("frame-ancestors 'self' {}", origin.ascii_serialization()),
            None => "frame-ancestors 'self'".to_string(),
        };
        if let Ok(v) = header::HeaderValue::from_str(&policy) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    res
}

/// The account pages linked from e-mails (set a password, accept an invitation),
/// rendered with the dashboard's layout. Mounted in the UI router (they need its
/// templates); no session is needed.
pub fn account_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/set-password",
            get(set_password_form).post(set_password_submit),
        )
        .route(
            "/invitations/accept",
            get(invitation_form).post(invitation_submit),
        )
}

pub use super::cache::PageCache;

fn year() -> i32 {
    time::OffsetDateTime::now_utc().year()
}

/// What the merchant saved in the setup guide that the storefront shows: whether the
/// "coming soon" placeholder is up, the store description (business step) and the
/// tracking ids (marketing step; validated when saved, escaped again when emitted).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct StoreExtras {
    /// The guide was opened and the store is not published yet.
    pub coming_soon: bool,
    /// The store description (plain text), `""` when unset.
    pub description: String,
    /// Google Analytics id (`G-…` or `UA-…`), `""` when unset.
    pub google_analytics_id: String,
    /// Meta Pixel id (digits), `""` when unset.
    pub meta_pixel_id: String,
}

/// Per-page values of `<head>`: the meta description and Open Graph fields.
#[derive(Debug, Clone, Default)]
pub(crate) struct PageMeta {
    /// `<meta name="description">` and `og:description` (plain text; `""`: left out).
    description: String,
    /// `og:type` (`website` or `product`).
    og_type: &'static str,
    /// `og:image`, if any.
    og_image: Option<String>,
}

impl PageMeta {
    pub(crate) fn website(description: &str) -> Self {
        PageMeta {
            description: description.to_string(),
            og_type: "website",
            og_image: None,
        }
    }
}

fn saved_text(
    data: &serde_json::Map<String, serde_json::Value>,
    step: &str,
    field: &str,
) -> String {
    data.get(step)
        .and_then(|s| s.get(field))
        .and_then(|v| v.as_str())
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}

/// Loads the [`StoreExtras`] of the scope's tenant (one read of the guide's state).
pub async fn store_extras(scope: &TenantDb) -> crate::store::StoreResult<StoreExtras> {
    let row = scope.get_onboarding().await?;
    Ok(StoreExtras {
        coming_soon: row.exists && row.published_at.is_none(),
        description: saved_text(&row.data, "business", "description"),
        google_analytics_id: saved_text(&row.data, "marketing", "google_analytics_id"),
        meta_pixel_id: saved_text(&row.data, "marketing", "meta_pixel_id"),
    })
}

/// A plain-text excerpt of at most `max` characters (whitespace collapsed, cut at a
/// word boundary with `…` when shortened).
pub fn excerpt(text: &str, max: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    let cut = match cut.rfind(' ') {
        Some(i) if i > max / 2 => cut[..i].to_string(),
        _ => cut,
    };
    format!("{}…", cut.trim_end_matches([',', '.', ';', ':', ' ']))
}

/// A JSON string literal safe inside an HTML `<script>` element (no `<`, `>`, `&`).
fn script_string(v: &str) -> String {
    serde_json::Value::String(v.to_string())
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The standard Google Analytics (gtag.js) and Meta Pixel snippets for `<head>`, each
/// only when its id is set; `""` when neither is. Ids are emitted as escaped JSON
/// strings (and URL-encoded in the script URL), so even an unvalidated value cannot
/// leave the script.
pub fn tracking_head(ga: &str, pixel: &str) -> String {
    let mut out = String::new();
    if !ga.is_empty() {
        let q: String = url::form_urlencoded::byte_serialize(ga.as_bytes()).collect();
        out.push_str(&format!(
            "<script async src=\"https://www.googletagmanager.com/gtag/js?id={}\"></script>\n\
<script>window.dataLayer=window.dataLayer||[];function gtag(){{dataLayer.push(arguments);}}gtag('js',new Date());gtag('config',{});</script>\n",
            escape(&q),
            script_string(ga)
        ));
    }
    if !pixel.is_empty() {
        out.push_str(&format!(
            "<script>!function(f,b,e,v,n,t,s){{if(f.fbq)return;n=f.fbq=function(){{n.callMethod?n.callMethod.apply(n,arguments):n.queue.push(arguments)}};if(!f._fbq)f._fbq=n;n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;t.src=v;s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}}(window,document,'script','https://connect.facebook.net/en_US/fbevents.js');fbq('init',{});fbq('track','PageView');</script>\n",
            script_string(pixel)
        ));
    }
    out
}

pub(crate) fn base_ctx(
    t: &TenantRef,
    theme: &Theme,
    base_path: &str,
    page_title: &str,
    extras: &StoreExtras,
    meta: &PageMeta,
) -> Value {
    let mut settings = theme.effective_settings(&t.theme_settings);
    // An uploaded logo is served by this storefront: make its path follow the base path.
    if let Some(logo) = settings.get_mut("logo_url")
        && logo.starts_with("/store-assets/")
    {
        *logo = format!("{base_path}{logo}");
    }
    let paragraphs: Vec<String> = extras
        .description
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let og_title = if page_title.is_empty() || page_title == "Home" {
        t.name.clone()
    } else {
        page_title.to_string()
    };
    context! {
        store => context! {
            name => t.name.clone(), handle => t.handle.clone(), currency => t.currency.clone(), base_path => base_path,
            description => extras.description.clone(), description_paragraphs => paragraphs,
        },
        theme => context! { id => theme.manifest.id.clone(), name => theme.manifest.name.clone(), settings => settings },
        page_title => page_title,
        meta => context! {
            description => excerpt(&meta.description, 160),
            og_title => og_title,
            og_type => meta.og_type,
            og_image => meta.og_image.clone(),
        },
        analytics => context! {
            google_analytics_id => extras.google_analytics_id.clone(),
            meta_pixel_id => extras.meta_pixel_id.clone(),
        },
        tracking_head => Value::from_safe_string(tracking_head(&extras.google_analytics_id, &extras.meta_pixel_id)),
        stylesheet_url => format!("/themes/{}/style.css", theme.manifest.id),
        branding_url => format!("{base_path}/branding.css"),
        year => year(),
        cart_count => 0,
        lang => context! {
            code => crate::web::lang::FALLBACK_LANGUAGE, qs => "",
            alternates => Vec::<Value>::new(), switcher => Vec::<Value>::new(),
        },
    }
}

/// The language of a storefront page: the resolved language, the store's languages and
/// the origin (`scheme://host`) its `hreflang` links are absolute against.
#[derive(Debug, Clone)]
pub(crate) struct PageLang {
    pub(crate) resolved: lang::Resolved,
    pub(crate) langs: lang::StoreLanguages,
    pub(crate) origin: String,
}

impl PageLang {
    /// The base language only, no origin (the setup guide's preview, the provisioning
    /// health check, the sample pages).
    pub(crate) fn base(langs: lang::StoreLanguages, origin: &str) -> Self {
        PageLang {
            resolved: lang::Resolved {
                code: langs.base.clone(),
                explicit: false,
                varies: false,
                is_base: true,
            },
            langs,
            origin: origin.to_string(),
        }
    }

    /// `path` with `params` and, when the language was chosen with `?lang=`, `lang`.
    fn link(&self, path: &str, params: &[(&str, String)]) -> String {
        let code = self
            .resolved
            .explicit
            .then_some(self.resolved.code.as_str());
        with_query(path, params, code)
    }

    /// The template's `lang`: `code` (for `<html lang>`), `qs` (`?lang=xx` or `""`, for
    /// plain links), `alternates` (`hreflang` links of this page: every language, then
    /// `x-default`, absolute) and `switcher` (`code`, `label`, `url`, `current`).
    fn ctx(&self, path: &str, params: &[(&str, String)]) -> Value {
        let mut alternates: Vec<Value> = self
            .langs
            .all()
            .map(|l| {
                context! { code => l, url => format!("{}{}", self.origin, with_query(path, params, Some(l))) }
            })
            .collect();
        alternates.push(context! {
            code => "x-default",
            url => format!("{}{}", self.origin, with_query(path, params, None)),
        });
        let switcher: Vec<Value> = self
            .langs
            .all()
            .map(|l| {
                context! {
                    code => l, label => lang::native_name(l),
                    url => with_query(path, params, Some(l)),
                    current => l == self.resolved.code,
                }
            })
            .collect();
        context! {
            code => self.resolved.code.clone(), qs => self.resolved.query_suffix(),
            alternates => alternates, switcher => switcher,
        }
    }
}

/// `path?k=v&…&lang=code` (URL-encoded; no `?` without parameters).
fn with_query(path: &str, params: &[(&str, String)], lang: Option<&str>) -> String {
    let mut qs = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        qs.append_pair(k, v);
    }
    if let Some(l) = lang {
        qs.append_pair("lang", l);
    }
    let qs = qs.finish();
    if qs.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{qs}")
    }
}

/// `scheme://host` of a storefront page's absolute links: on the store's own host (a
/// subdomain or custom domain, already matched to the tenant) that host with the
/// platform URL's scheme; addressed by path (`/s/{handle}`) the platform URL's origin, so
/// a forged `Host` is never echoed into a page.
fn request_origin(st: &AppState, h: &HostTenant, headers: &axum::http::HeaderMap) -> String {
    let public = url::Url::parse(&st.config.public_url).ok();
    let own_host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|host| {
            h.base_path.is_empty()
                && !host.is_empty()
                && host.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        });
    match (own_host, &public) {
        (Some(host), _) => format!(
            "{}://{host}",
            public.as_ref().map(|u| u.scheme()).unwrap_or("http")
        ),
        (None, Some(u)) => u.origin().ascii_serialization(),
        (None, None) => String::new(),
    }
}

/// The storefront's `?lang=` parameter.
#[derive(Deserialize, Default)]
struct LangParam {
    lang: Option<String>,
}

/// Resolves the page's language (see [`crate::web::lang`]).
async fn page_lang(
    st: &AppState,
    scope: &TenantDb,
    h: &HostTenant,
    query: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> crate::store::StoreResult<PageLang> {
    let langs = lang::store_languages(&st.page_cache, scope, h.tenant.id).await?;
    Ok(PageLang {
        resolved: lang::resolve(query, headers, &langs),
        langs,
        origin: request_origin(st, h, headers),
    })
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
    let base = base_ctx(
        &t,
        theme,
        "",
        "Home",
        &StoreExtras::default(),
        &PageMeta::website(""),
    );
    context! { featured => Vec::<Value>::new(), ..base }
}

fn card(p: &Product, base_path: &str, pl: &PageLang) -> Value {
    let v = p.variants.first();
    let img = p.images.first();
    context! {
        handle => p.handle.clone(),
        title => p.title.clone(),
        url => pl.link(&format!("{base_path}/products/{}", p.handle), &[]),
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

/// Renders `template` and makes sure the tracking snippets (context `tracking_head`)
/// end up in `<head>`: a theme whose layout does not place them (e.g. an uploaded theme
/// written before they existed) gets them inserted before `</head>`.
pub(crate) fn render_page(
    theme: &Theme,
    template: &str,
    ctx: Value,
) -> Result<String, minijinja::Error> {
    let tracking = ctx
        .get_attr("tracking_head")
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut html = theme.render(template, ctx)?;
    if !tracking.is_empty()
        && !html.contains(tracking.trim())
        && let Some(at) = html.find("</head>")
    {
        html.insert_str(at, &tracking);
    }
    Ok(html)
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
    match render_page(theme, template, ctx) {
        Ok(html) => {
            let b = Bytes::from(html);
            st.page_cache.put(h.tenant.id, key, b.clone());
            html_bytes(b)
        }
        Err(e) => render_error(template, e),
    }
}

/// A storage failure on a storefront page: logged, shown as an HTML 500 page.
pub(crate) fn store_error(e: crate::store::StoreError) -> Response {
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

pub(crate) fn render(theme: &Theme, template: &str, ctx: Value, status: StatusCode) -> Response {
    match render_page(theme, template, ctx) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => render_error(template, e),
    }
}

/// The "store unavailable" page's template context.
fn unavailable_context(t: &TenantRef, theme: &Theme, base_path: &str) -> Value {
    base_ctx(
        t,
        theme,
        base_path,
        "Store unavailable",
        &StoreExtras::default(),
        &PageMeta::website(""),
    )
}

pub(crate) fn unavailable(st: &AppState, h: &HostTenant) -> Response {
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let ctx = unavailable_context(&h.tenant, &theme, &h.base_path);
    render(
        &theme,
        "unavailable.html",
        ctx,
        StatusCode::SERVICE_UNAVAILABLE,
    )
}

/// The 404 page's template context, with the reason shown (`message`).
fn not_found_context(
    t: &TenantRef,
    theme: &Theme,
    base_path: &str,
    extras: &StoreExtras,
    message: &str,
) -> Value {
    let ctx = base_ctx(
        t,
        theme,
        base_path,
        "Page not found",
        extras,
        &PageMeta::website(""),
    );
    context! { message => message, ..ctx }
}

pub(crate) fn tenant_not_found(
    st: &AppState,
    h: &HostTenant,
    extras: &StoreExtras,
    message: &str,
) -> Response {
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let ctx = not_found_context(&h.tenant, &theme, &h.base_path, extras, message);
    render(&theme, "not_found.html", ctx, StatusCode::NOT_FOUND)
}

/// Page-cache key of an open store's [`StoreExtras`] (a tenant setting).
const EXTRAS_KEY: &str = "meta:extras";

/// `Retry-After` (seconds) of a store that is not published yet ("coming soon"), on its
/// pages and its Store API.
pub const COMING_SOON_RETRY_AFTER: u64 = 3600;

/// Loads the tenant's [`StoreExtras`]. While the merchant's setup guide is open and the
/// store not published, storefront pages show a "coming soon" placeholder (503,
/// `Retry-After`), never cached: that (or a storage error page) is the `Err`.
///
/// An open store's extras are kept as a tenant setting of the page cache (cleared by every
/// change of the setup guide and by the publication, like the pages), so a page rendered
/// from the database costs no read of the guide.
pub(crate) async fn prepare(
    cache: &PageCache,
    scope: &TenantDb,
    h: &HostTenant,
) -> Result<StoreExtras, Response> {
    if let Some(hit) = cache.get(h.tenant.id, EXTRAS_KEY)
        && let Ok(x) = serde_json::from_slice::<StoreExtras>(&hit)
    {
        return Ok(x);
    }
    let extras = store_extras(scope).await;
    if let Ok(x) = &extras
        && !x.coming_soon
        && let Ok(b) = serde_json::to_vec(x)
    {
        cache.put_setting(h.tenant.id, EXTRAS_KEY, b.into());
    }
    match extras {
        Ok(x) if !x.coming_soon => Ok(x),
        Ok(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, COMING_SOON_RETRY_AFTER.to_string())],
            Html(platform_page(
                &format!("{} is coming soon", h.tenant.name),
                "<p>This store is getting ready to open. Please check back soon.</p>",
            )),
        )
            .into_response()),
        Err(e) => Err(store_error(e)),
    }
}

/// An uploaded store image (the logo), with headers that keep an SVG inert.
async fn store_asset(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Path(id): Path<String>,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return platform_not_found().into_response();
    };
    let Ok(id) = Uuid::parse_str(&id) else {
        return tenant_not_found(
            &st,
            &h,
            &StoreExtras::default(),
            "We could not find that file.",
        );
    };
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    match scope.get_store_asset(id).await {
        Ok(Some((ct, body))) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "public, max-age=86400".to_string()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; sandbox".to_string(),
                ),
            ],
            body,
        )
            .into_response(),
        Ok(None) => tenant_not_found(
            &st,
            &h,
            &StoreExtras::default(),
            "We could not find that file.",
        ),
        Err(e) => store_error(e),
    }
}

fn html_bytes(b: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], b).into_response()
}

/// The products the home page features: the active featured ones, else the newest
/// active ones (at most 8).
async fn home_products(scope: &TenantDb) -> crate::store::StoreResult<Vec<Product>> {
    let featured_filter = ProductFilter {
        status: Some(ProductStatus::Active),
        featured: Some(true),
        ..Default::default()
    };
    let (products, _) = scope.list_products(&featured_filter, 8, 0).await?;
    if !products.is_empty() {
        return Ok(products);
    }
    let f = ProductFilter {
        status: Some(ProductStatus::Active),
        ..Default::default()
    };
    Ok(scope.list_products(&f, 8, 0).await?.0)
}

/// The home page's template context (shared by the storefront and the preview).
fn home_context(
    t: &TenantRef,
    theme: &Theme,
    base_path: &str,
    extras: &StoreExtras,
    products: &[Product],
    pl: &PageLang,
) -> Value {
    let featured: Vec<Value> = products.iter().map(|p| card(p, base_path, pl)).collect();
    // Without a store description, the theme's hero text describes the store.
    let description = if extras.description.is_empty() {
        theme
            .effective_settings(&t.theme_settings)
            .remove("hero_text")
            .unwrap_or_default()
    } else {
        extras.description.clone()
    };
    let meta = PageMeta::website(&description);
    let ctx = base_ctx(t, theme, base_path, "Home", extras, &meta);
    let lang = pl.ctx(&format!("{base_path}/"), &[]);
    context! { featured => featured, lang => lang, ..ctx }
}

async fn home(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Query(lq): Query<LangParam>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return Html(platform_landing(&st)).into_response();
    };
    if h.tenant.status != "active" {
        return unavailable(&st, &h);
    }
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let pl = match page_lang(&st, &scope, &h, lq.lang.as_deref(), &headers).await {
        Ok(pl) => pl,
        Err(e) => return store_error(e),
    };
    let key = format!(
        "home:{}:{}:{}",
        h.base_path,
        pl.origin,
        pl.resolved.cache_key()
    );
    if let Some(hit) = st.page_cache.get(h.tenant.id, &key) {
        return lang::add_vary(html_bytes(hit), &pl.resolved);
    }
    let extras = match prepare(&st.page_cache, &scope, &h).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let mut products = match home_products(&scope).await {
        Ok(p) => p,
        Err(e) => return store_error(e),
    };
    if let Err(e) = lang::translate(&scope, &mut products, &pl.resolved).await {
        return store_error(e);
    }
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let ctx = home_context(&h.tenant, &theme, &h.base_path, &extras, &products, &pl);
    lang::add_vary(
        render_cached(&st, &h, &theme, "home.html", ctx, key),
        &pl.resolved,
    )
}

/// The tenant's storefront home page as it looks with `draft` theme settings over the
/// saved ones: the setup guide's live branding preview. `draft` must already be
/// validated (`api::onboarding::draft_settings`). Same theme, templates, products and
/// context as the real home page, but without the "coming soon" gate (the merchant sees
/// the store before publishing it), without tracking snippets (a preview is not a
/// visit) and never cached. Links and the logo use the store's path (`/s/{handle}`), so
/// the page works on the dashboard's host. The draft colours and fonts are the theme's
/// branding stylesheet (same filtering as `/branding.css`) in a `<style>` element at the
/// end of `<head>`, where it wins over the saved `/branding.css`.
pub async fn home_preview(
    st: &AppState,
    scope: &TenantDb,
    tenant: &TenantRef,
    draft: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, ApiError> {
    let mut settings: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&tenant.theme_settings).unwrap_or_default();
    settings.extend(draft.clone());
    let t = TenantRef {
        theme_settings: serde_json::Value::Object(settings).to_string(),
        ..tenant.clone()
    };
    let theme = st.themes.get_or_default(t.theme_id.as_deref());
    let extras = StoreExtras {
        coming_soon: false,
        google_analytics_id: String::new(),
        meta_pixel_id: String::new(),
        ..store_extras(scope).await?
    };
    let products = home_products(scope).await?;
    let base_path = t
        .handle
        .as_deref()
        .map(|h| format!("/s/{h}"))
        .unwrap_or_default();
    let langs = lang::store_languages(&st.page_cache, scope, t.id).await?;
    let pl = PageLang::base(langs, st.config.public_url.trim_end_matches('/'));
    let ctx = home_context(&t, &theme, &base_path, &extras, &products, &pl);
    let mut html = render_page(&theme, "home.html", ctx).map_err(|e| {
        tracing::error!(error = %e, template = "home.html", "storefront preview render failed");
        ApiError::internal()
    })?;
    let style = format!(
        "<style id=\"souk-preview-branding\">\n{}</style>\n",
        theme.branding_css(&t.theme_settings)
    );
    let at = html.to_ascii_lowercase().find("</head>").unwrap_or(0);
    html.insert_str(at, &style);
    Ok(html)
}

#[derive(Deserialize)]
struct CatalogQuery {
    page: Option<String>,
    lang: Option<String>,
}

const CATALOG_PER_PAGE: i64 = 12;

async fn catalog(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Query(q): Query<CatalogQuery>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return platform_not_found().into_response();
    };
    if h.tenant.status != "active" {
        return unavailable(&st, &h);
    }
    let page: Option<i64> = match q.page.as_deref().map(str::parse::<i64>) {
        None => Some(1),
        Some(Ok(p)) if (1..=100_000).contains(&p) => Some(p),
        Some(_) => None,
    };
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let pl = match page_lang(&st, &scope, &h, q.lang.as_deref(), &headers).await {
        Ok(pl) => pl,
        Err(e) => return store_error(e),
    };
    let key = format!(
        "catalog:{}:{}:{}:{}",
        h.base_path,
        page.unwrap_or(0),
        pl.origin,
        pl.resolved.cache_key()
    );
    if page.is_some()
        && let Some(hit) = st.page_cache.get(h.tenant.id, &key)
    {
        return lang::add_vary(html_bytes(hit), &pl.resolved);
    }
    let extras = match prepare(&st.page_cache, &scope, &h).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let Some(page) = page else {
        return tenant_not_found(&st, &h, &extras, "That page number does not exist.");
    };
    let f = ProductFilter {
        status: Some(ProductStatus::Active),
        ..Default::default()
    };
    let (mut products, total) = match scope
        .list_products(&f, CATALOG_PER_PAGE, (page - 1) * CATALOG_PER_PAGE)
        .await
    {
        Ok(r) => r,
        Err(e) => return store_error(e),
    };
    if let Err(e) = lang::translate(&scope, &mut products, &pl.resolved).await {
        return store_error(e);
    }
    let total_pages = ((total + CATALOG_PER_PAGE - 1) / CATALOG_PER_PAGE).max(1);
    if page > total_pages {
        return tenant_not_found(&st, &h, &extras, "That page number does not exist.");
    }
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let paging = Paging {
        page,
        total_pages,
        total,
    };
    let ctx = catalog_context(
        &h.tenant,
        &theme,
        &h.base_path,
        &extras,
        &products,
        paging,
        &pl,
    );
    lang::add_vary(
        render_cached(&st, &h, &theme, "catalog.html", ctx, key),
        &pl.resolved,
    )
}

/// Where a catalog page sits: its number, how many pages, how many active products.
#[derive(Debug, Clone, Copy)]
struct Paging {
    page: i64,
    total_pages: i64,
    total: i64,
}

/// The catalog page's template context: `products` (as cards) on the page `paging`
/// describes, with the neighbours' URLs.
fn catalog_context(
    t: &TenantRef,
    theme: &Theme,
    base_path: &str,
    extras: &StoreExtras,
    products: &[Product],
    paging: Paging,
    pl: &PageLang,
) -> Value {
    let Paging {
        page,
        total_pages,
        total,
    } = paging;
    let path = format!("{base_path}/products");
    let url = |p: i64| pl.link(&path, &[("page", p.to_string())]);
    let meta = PageMeta::website(&extras.description);
    let ctx = base_ctx(t, theme, base_path, "All products", extras, &meta);
    let here: Vec<(&str, String)> = if page > 1 {
        vec![("page", page.to_string())]
    } else {
        vec![]
    };
    context! {
        lang => pl.ctx(&path, &here),
        products => products.iter().map(|p| card(p, base_path, pl)).collect::<Vec<_>>(),
        page => page, total_pages => total_pages, total => total,
        prev_url => (page > 1).then(|| url(page - 1)),
        next_url => (page < total_pages).then(|| url(page + 1)),
        ..ctx
    }
}

async fn product(
    State(st): State<AppState>,
    tenant: Option<Extension<HostTenant>>,
    Path(handle): Path<String>,
    Query(lq): Query<LangParam>,
    headers: axum::http::HeaderMap,
) -> Response {
    let Some(Extension(h)) = tenant else {
        return platform_not_found().into_response();
    };
    if h.tenant.status != "active" {
        return unavailable(&st, &h);
    }
    let scope = TenantDb::new(st.db.clone(), h.tenant.id);
    let pl = match page_lang(&st, &scope, &h, lq.lang.as_deref(), &headers).await {
        Ok(pl) => pl,
        Err(e) => return store_error(e),
    };
    // Cached like home and catalog (the page holds nothing per visitor: the cart count is
    // the mini-cart script's); a miss renders it from one product read.
    let key = format!(
        "product:{}:{}:{}:{handle}",
        h.base_path,
        pl.origin,
        pl.resolved.cache_key()
    );
    if let Some(hit) = st.page_cache.get(h.tenant.id, &key) {
        return lang::add_vary(html_bytes(hit), &pl.resolved);
    }
    let extras = match prepare(&st.page_cache, &scope, &h).await {
        Ok(x) => x,
        Err(res) => return res,
    };
    let p = match scope.get_product_by_handle(&handle, true).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return tenant_not_found(&st, &h, &extras, "We could not find that product.");
        }
        Err(e) => return store_error(e),
    };
    let mut one = [p];
    if let Err(e) = lang::translate(&scope, &mut one, &pl.resolved).await {
        return store_error(e);
    }
    let [p] = one;
    let theme = st.themes.get_or_default(h.tenant.theme_id.as_deref());
    let ctx = product_context(&h.tenant, &theme, &h.base_path, &extras, &p, &pl);
    lang::add_vary(
        render_cached(&st, &h, &theme, "product.html", ctx, key),
        &pl.resolved,
    )
}

/// The product page's template context: the product with its images, option values,
/// variants (formatted prices, availability) and its page metadata.
fn product_context(
    t: &TenantRef,
    theme: &Theme,
    base_path: &str,
    extras: &StoreExtras,
    p: &Product,
    pl: &PageLang,
) -> Value {
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
    let description_text = html_to_text(&p.body_html);
    let page_title = p
        .seo_title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or(&p.title);
    let meta = PageMeta {
        description: p
            .seo_description
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| description_text.clone()),
        og_type: "product",
        og_image: p.images.first().map(|i| i.url.clone()),
    };
    let ctx = base_ctx(t, theme, base_path, page_title, extras, &meta);
    let path = format!("{base_path}/products/{}", p.handle);
    context! {
        lang => pl.ctx(&path, &[]),
        product => context! {
            handle => p.handle.clone(),
            title => p.title.clone(),
            url => pl.link(&path, &[]),
            description_text => description_text,
            vendor => p.vendor.clone(),
            product_type => p.product_type.clone(),
            tags => p.tags.clone(),
            attributes => p.attributes.iter().map(|a| context! { name => a.name.clone(), value => a.value.clone() }).collect::<Vec<_>>(),
            price => first.map(|v| v.price.formatted.clone()).unwrap_or_default(),
            compare_at_price => first.and_then(|v| v.compare_at_price.as_ref().map(|c| c.formatted.clone())),
            images => p.images.iter().map(|i| context! { url => i.url.clone(), alt => i.alt.clone().unwrap_or_else(|| p.title.clone()) }).collect::<Vec<_>>(),
            options => options,
            available => p.variants.iter().any(|v| v.available),
            variants => p.variants.iter().map(|v| context! {
                id => v.id.to_string(),
                title => v.title.clone(), sku => v.sku.clone(), price => v.price.formatted.clone(),
                compare_at_price => v.compare_at_price.as_ref().map(|c| c.formatted.clone()),
                available => v.available, inventory => v.inventory_quantity,
            }).collect::<Vec<_>>(),
        },
        ..ctx
    }
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
            t.stylesheet.clone(),
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
            t.preview_svg.clone(),
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
        Some(Extension(h)) => {
            let scope = TenantDb::new(st.db.clone(), h.tenant.id);
            match prepare(&st.page_cache, &scope, &h).await {
                Ok(extras) => tenant_not_found(&st, &h, &extras, "We could not find that page."),
                Err(res) => res,
            }
        }
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

pub(crate) fn platform_not_found() -> (StatusCode, Html<String>) {
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

const SET_PASSWORD: &str = "dashboard/onboarding/set_password.html";
const INVITATION: &str = "dashboard/onboarding/invitation.html";

/// `GET /set-password?token=`: the welcome (or reset) e-mail's link.
async fn set_password_form(cx: Ctx, Query(q): Query<TokenQuery>) -> Response {
    let r = cx.render(
        SET_PASSWORD,
        context! { title => "Set your password", token => q.token.unwrap_or_default(), errors => Serde(json!({})) },
    );
    cx.finish(r)
}

/// Errors of an account form: the field the API named, else the whole form.
fn form_errors(e: &ApiError) -> serde_json::Value {
    match e.details.get("field").and_then(|v| v.as_str()) {
        Some(f) => json!({ f: e.message }),
        None => json!({ "_form": e.message }),
    }
}

async fn invitation_form(
    State(st): State<AppState>,
    cx: Ctx,
    Query(q): Query<TokenQuery>,
) -> Response {
    let raw = q.token.unwrap_or_default();
    let r = match super::api::team::preview_invitation(&st, &raw).await {
        Ok(p) => cx.render(
            INVITATION,
            context! { title => "Accept your invitation", token => raw, name => "",
                invitation => Serde(&p), errors => Serde(json!({})) },
        ),
        Err(e) => cx.render_status(
            e.status,
            INVITATION,
            context! { title => "Invitation not usable", errors => Serde(json!({ "_form": e.message })) },
        ),
    };
    cx.finish(r)
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
    cx: Ctx,
    Form(f): Form<InvitationForm>,
) -> Response {
    let r = match super::api::team::accept_with_password(
        &st,
        &f.token,
        f.name.as_deref(),
        &f.password,
        ip,
    )
    .await
    {
        Ok(shop) => cx.render(
            INVITATION,
            context! { title => "Welcome to the team", joined => shop },
        ),
        Err(e) => {
            // Form errors keep the form; an unusable link says so.
            match super::api::team::preview_invitation(&st, &f.token).await {
                Ok(p) => cx.render_status(
                    e.status,
                    INVITATION,
                    context! { title => "Accept your invitation", token => f.token.clone(),
                        name => f.name.clone().unwrap_or_default(), invitation => Serde(&p),
                        errors => Serde(form_errors(&e)) },
                ),
                Err(_) => cx.render_status(
                    e.status,
                    INVITATION,
                    context! { title => "Could not accept the invitation", errors => Serde(json!({ "_form": e.message })) },
                ),
            }
        }
    };
    cx.finish(r)
}

#[derive(Deserialize)]
struct SetPasswordForm {
    token: String,
    password: String,
}

async fn set_password_submit(
    State(st): State<AppState>,
    super::context::ClientIp(ip): super::context::ClientIp,
    cx: Ctx,
    Form(f): Form<SetPasswordForm>,
) -> Response {
    let r = match super::api::auth::set_password_with_token(&st, &f.token, &f.password, ip).await
    {
        Ok(_) => cx.render(SET_PASSWORD, context! { title => "Password set", done => true }),
        Err(e) => cx.render_status(
            e.status,
            SET_PASSWORD,
            context! { title => "Set your password", token => f.token.clone(), errors => Serde(form_errors(&e)) },
        ),
    };
    cx.finish(r)
}

// ------------------------------------------------------------ sample pages

/// A sample variant in EUR: `(option values, sku, price, compare-at price, inventory)`.
fn sample_variant(
    position: i64,
    options: &[&str],
    sku: Option<&str>,
    price: i64,
    compare_at: Option<i64>,
    inventory: i64,
) -> Variant {
    Variant {
        id: Uuid::nil(),
        sku: sku.map(str::to_string),
        title: if options.is_empty() {
            "Default".into()
        } else {
            options.join(" / ")
        },
        option_values: options.iter().map(|o| o.to_string()).collect(),
        price: MoneyDto::new(price, "EUR"),
        compare_at_price: compare_at.map(|c| MoneyDto::new(c, "EUR")),
        inventory_quantity: inventory,
        inventory_policy: crate::domain::InventoryPolicy::Deny,
        inventory_tracked: true,
        available: inventory > 0,
        barcode: None,
        weight_grams: Some(250),
        position,
    }
}

fn sample_image(position: i64, url: &str, alt: Option<&str>) -> Image {
    Image {
        id: Uuid::nil(),
        url: url.to_string(),
        alt: alt.map(str::to_string),
        position,
    }
}

/// The sample catalog: a product with options, three variants (one sold out, one
/// reduced), two images and SEO fields; a reduced single-variant product with one
/// image; a bare product (no vendor, type, tags, options, images or SKU).
fn sample_products() -> Vec<Product> {
    let at = "2025-01-15T10:30:00Z".to_string();
    let product = |handle: &str, title: &str| Product {
        id: Uuid::nil(),
        handle: handle.to_string(),
        title: title.to_string(),
        body_html: String::new(),
        vendor: None,
        product_type: None,
        tags: vec![],
        status: ProductStatus::Active,
        options: vec![],
        featured: true,
        seo_title: None,
        seo_description: None,
        attributes: vec![],
        variants: vec![],
        images: vec![],
        created_at: at.clone(),
        updated_at: at.clone(),
    };
    vec![
        Product {
            body_html: "<p>Soft washed linen.</p><ul><li>Relaxed fit</li><li>Mother-of-pearl buttons</li></ul>".into(),
            vendor: Some("Atelier Nord".into()),
            product_type: Some("Shirts".into()),
            tags: vec!["linen".into(), "summer".into()],
            options: vec!["Size".into(), "Colour".into()],
            seo_title: Some("Linen shirt – breathable summer shirt".into()),
            seo_description: Some("A washed linen shirt with a relaxed fit.".into()),
            attributes: vec![crate::store::catalog::ProductAttribute {
                key: "shopify.fabric".into(),
                name: "Fabric".into(),
                value: "100% linen".into(),
            }],
            variants: vec![
                sample_variant(1, &["S", "Sand"], Some("LIN-S-SND"), 5900, None, 12),
                sample_variant(2, &["M", "Sand"], Some("LIN-M-SND"), 5900, Some(7900), 3),
                sample_variant(3, &["L", "Navy"], Some("LIN-L-NVY"), 6200, None, 0),
            ],
            images: vec![
                sample_image(1, "https://cdn.example.com/linen-shirt-front.jpg", Some("Linen shirt, front")),
                sample_image(2, "https://cdn.example.com/linen-shirt-back.jpg", None),
            ],
            ..product("linen-shirt", "Linen Shirt")
        },
        Product {
            body_html: "<p>Stoneware, 350 ml &amp; dishwasher safe.</p>".into(),
            vendor: Some("Kiln & Co".into()),
            product_type: Some("Kitchen".into()),
            tags: vec!["gift".into()],
            variants: vec![sample_variant(1, &[], Some("MUG-01"), 1800, Some(2400), 40)],
            images: vec![sample_image(1, "https://cdn.example.com/mug.jpg", Some("Blue mug"))],
            ..product("ceramic-mug", "Ceramic Mug")
        },
        Product {
            featured: false,
            variants: vec![sample_variant(1, &[], None, 2500, None, 5)],
            ..product("gift-card", "Gift Card")
        },
    ]
}

/// Every page the storefront renders (`layout.html` is reached through the pages that
/// extend it), built with the storefront's own context functions from a
/// sample store (the theme's default settings, a description, tracking ids) and
/// [`sample_products`]: home with and without products, a middle catalog page and an
/// empty one, a full and a bare product page, the 404 and the unavailable page. Used to
/// check an uploaded theme ([`Theme::check_render`]).
pub fn sample_pages(theme: &Theme) -> Vec<SamplePage> {
    let t = TenantRef {
        id: Uuid::nil(),
        name: "Sample Store & Co".into(),
        handle: Some("sample-store".into()),
        status: "active".into(),
        theme_id: Some(theme.manifest.id.clone()),
        theme_settings: "{}".into(),
        currency: "EUR".into(),
        storefront_ready: true,
    };
    let extras = StoreExtras {
        coming_soon: false,
        description: "Goods made to last.\nShipped from Lisbon.".into(),
        google_analytics_id: "G-SAMPLE123".into(),
        meta_pixel_id: "1234567890".into(),
    };
    let products = sample_products();
    let base = "/s/sample-store";
    let pl = PageLang {
        resolved: lang::Resolved {
            code: "fr".into(),
            explicit: true,
            varies: false,
            is_base: false,
        },
        langs: lang::StoreLanguages {
            base: "de".into(),
            others: vec!["fr".into()],
        },
        origin: "https://sample-store.example".into(),
    };
    let page = |template, label, context| SamplePage {
        template,
        label,
        context,
    };
    let paging = |page, total_pages, total| Paging {
        page,
        total_pages,
        total,
    };
    let mut pages = vec![
        page(
            "home.html",
            "featured products",
            home_context(&t, theme, base, &extras, &products, &pl),
        ),
        page(
            "home.html",
            "no products",
            home_context(&t, theme, base, &StoreExtras::default(), &[], &pl),
        ),
        page(
            "catalog.html",
            "page 2 of 3",
            catalog_context(&t, theme, base, &extras, &products, paging(2, 3, 27), &pl),
        ),
        page(
            "catalog.html",
            "no products",
            catalog_context(&t, theme, base, &extras, &[], paging(1, 1, 0), &pl),
        ),
        page(
            "product.html",
            "a product with 3 variants and 2 images",
            product_context(&t, theme, base, &extras, &products[0], &pl),
        ),
        page(
            "product.html",
            "a product without images, options or vendor",
            product_context(&t, theme, base, &extras, &products[2], &pl),
        ),
        page(
            "not_found.html",
            "a missing product",
            not_found_context(&t, theme, base, &extras, "We could not find that product."),
        ),
        page(
            "unavailable.html",
            "a suspended store",
            unavailable_context(&t, theme, base),
        ),
    ];
    pages.extend(
        super::shop::sample_contexts(&t, theme, base, &extras)
            .into_iter()
            .map(|(template, label, context)| page(template, label, context)),
    );
    pages.push(page(
        "order.html",
        "a placed order paid by bank transfer",
        super::shop::order_context(
            base_ctx(
                &t,
                theme,
                base,
                "Order #1001",
                &extras,
                &PageMeta::website(""),
            ),
            &sample_order(),
            Some("IBAN LU00 0000 0000 0000"),
        ),
    ));
    pages
}

fn sample_order() -> crate::store::orders::Order {
    use crate::domain::{FinancialStatus, FulfillmentStatus, OrderStatus};
    use crate::store::orders::{LineItem, Order};
    let m = |v| MoneyDto::new(v, "EUR");
    Order {
        id: Uuid::nil(),
        number: 1001,
        email: Some("ana@example.com".into()),
        customer_name: Some("Ana <Shopper>".into()),
        currency: "EUR".into(),
        status: OrderStatus::Open,
        financial_status: FinancialStatus::Pending,
        fulfillment_status: FulfillmentStatus::Unfulfilled,
        subtotal: m(2340),
        discount: m(234),
        shipping: m(490),
        tax: m(377),
        prices_include_tax: true,
        total: m(2596),
        paid: m(0),
        outstanding: m(2596),
        refunded: m(0),
        note: None,
        customer_id: None,
        source: Some("storefront".into()),
        channel_id: None,
        shipping_address: crate::pricing::AddressInput {
            name: "Ana".into(),
            line1: "1 Rue".into(),
            city: "Luxembourg".into(),
            postal_code: "L-1611".into(),
            country: "LU".into(),
            ..Default::default()
        }
        .parse()
        .ok(),
        shipping_method: Some("Standard".into()),
        payment_method: Some("bank_transfer".into()),
        discount_code: Some("WELCOME10".into()),
        payment_intent_id: None,
        line_items: vec![LineItem {
            id: Uuid::nil(),
            variant_id: None,
            product_id: None,
            sku: Some("MUG-L".into()),
            title: "Mug - Large".into(),
            quantity: 2,
            unit_price: m(1170),
            total: m(2106),
            position: 0,
            variant_title: Some("Large".into()),
            discount: m(234),
            tax: m(306),
            fulfilled_quantity: 0,
        }],
        created_at: "2026-12-02T10:00:00Z".into(),
        updated_at: "2026-12-02T10:00:00Z".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_themes_render_every_sample_page() {
        let themes = crate::themes::Themes::builtin().expect("built-in themes");
        for id in ["classic", "midnight"] {
            let theme = themes.get(id).expect("built-in theme");
            let pages = sample_pages(&theme);
            // Every page the storefront renders (layout.html only through `extends`).
            for t in crate::themes::REQUIRED_TEMPLATES {
                assert!(
                    *t == "layout.html" || pages.iter().any(|p| p.template == *t),
                    "no sample of {t}"
                );
            }
            assert_eq!(theme.check_render(&pages), Vec::<String>::new(), "{id}");
        }
    }

    #[test]
    fn tracking_ids_cannot_leave_their_script_even_unvalidated() {
        let head = tracking_head("G-1\"</script><script>alert(1)//", "1</script>&'");
        assert_eq!(head.matches("</script>").count(), 3, "{head}");
        assert!(!head.contains("<script>alert"));
        assert!(head.contains("id=G-1%22%3C%2Fscript%3E"), "{head}");
        assert!(
            head.contains("fbq('init',\"1\\u003c/script\\u003e\\u0026'\")"),
            "{head}"
        );
        assert_eq!(tracking_head("", ""), "");
        assert!(!tracking_head("G-ABC123", "").contains("fbq("));
    }

    #[test]
    fn excerpts_are_short_plain_and_cut_at_words() {
        assert_eq!(excerpt("  a\n\n b  ", 160), "a b");
        let long = "word ".repeat(100);
        let e = excerpt(&long, 30);
        assert!(e.chars().count() <= 30 && e.ends_with("word…"), "{e}");
    }
}
