//! The HTTP layer: one axum router serving the REST API (`/api/v1`), storefronts and
//! operations endpoints on one port.

pub mod api;
pub mod cache;
pub mod checkout;
pub mod context;
pub mod error;
pub mod input;
pub mod lang;
pub mod ops;
pub mod ratelimit;
pub mod shop;
pub mod storefront;
pub mod tls;
pub mod ui;

use crate::auth::TokenKeys;
use crate::provision::Provisioner;
use crate::store::Db;
use crate::themes::Themes;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use std::time::Instant;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

/// Settings the web layer needs.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Storefront subdomains live under this domain (`acme.localhost`).
    pub base_domain: String,
    /// Extra host names that serve the platform itself (no tenant).
    pub platform_hosts: Vec<String>,
    /// Largest accepted request body, in bytes (CSV import uploads excepted).
    pub max_body_bytes: usize,
    /// Largest accepted CSV import upload, in bytes.
    pub max_import_bytes: usize,
    pub public_url: String,
    /// Take the client IP from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    /// Stripe's API base URL (`https://api.stripe.com`; localstripe in tests).
    pub stripe_api_base: String,
}

/// Shared state of every handler: one `Arc` (middleware and extractors clone the state
/// per request; a clone is one reference count, not one per service).
#[derive(Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    /// Wraps the services for the router.
    pub fn new(services: AppServices) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;
    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppServices {
    pub db: Db,
    pub themes: Arc<Themes>,
    pub keys: TokenKeys,
    pub config: Arc<WebConfig>,
    pub tenant_cache: Arc<context::TenantCache>,
    pub provisioner: Provisioner,
    pub metrics: Option<PrometheusHandle>,
    /// Response cache for hot public reads (Store API lists, storefront pages).
    pub page_cache: Arc<storefront::PageCache>,
    /// Failed sign-in counters (per account and per IP).
    pub login_limiter: Arc<ratelimit::LoginLimiter>,
    /// Domain events for live subscribers.
    pub bus: crate::events::EventBus,
    /// Webhook settings (URL policy, rotation overlap).
    pub webhooks: Arc<crate::webhooks::WebhookConfig>,
    /// Encrypts secrets kept in the database.
    pub secret_box: Arc<crate::crypto::SecretBox>,
    /// Marketplace feed fetching (SSRF-guarded client, size limit, spool directory).
    pub feeds: crate::feeds::Fetcher,
    /// Custom domains: checks, instructions, certificates of the HTTPS listener.
    pub domains: Arc<crate::custom_domains::Domains>,
    /// Port of Souk's own HTTPS listener (`--https-bind`), for redirects.
    pub https_port: Option<u16>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Souk API", version = "1", description = "Multi-tenant commerce platform: admin, merchant and Store APIs. Errors are `{error: {code, message, details}}`."),
    components(schemas(error::ErrorBody)),
    modifiers(&SecurityAddon),
    tags(
        (name = "admin", description = "Platform admin: merchants, plans, themes, provisioning"),
        (name = "auth", description = "Sign-in and tokens"),
        (name = "merchant", description = "A merchant's own data (needs membership of the tenant)"),
        (name = "orders", description = "A merchant's orders, payments and support tickets (orders.* permissions)"),
        (name = "events", description = "Live domain events (WebSocket and Server-Sent Events)"),
        (name = "webhooks", description = "Webhook endpoints, signed deliveries (Standard Webhooks), delivery log and redelivery"),
        (name = "team", description = "Members, roles, invitations, API keys and the tenant's audit log"),
        (name = "checkout", description = "A merchant's checkout configuration: payment methods, shipping zones and rates, tax rates, discount codes"),
        (name = "store", description = "Public Store API, served on the store's host or /s/{handle}/"),
        (name = "ops", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct SecurityAddon;
impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        if let Some(c) = openapi.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .build(),
                ),
            );
        }
    }
}

/// Builds the API router and its OpenAPI document from the same route list.
pub fn api_router() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let r = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let r = api::admin::routes(r);
    let r = api::admin_feeds::routes(r);
    let r = api::auth::routes(r);
    let r = api::catalog::routes(r);
    let r = api::store::routes(r);
    let r = api::cart::routes(r);
    let r = api::feed_export::routes(r);
    let r = api::imports::routes(r);
    let r = api::feeds::routes(r);
    let r = api::onboarding::routes(r);
    let r = api::team::routes(r);
    let r = api::orders::routes(r);
    let r = api::fulfillment::routes(r);
    let r = api::events::routes(r);
    let r = api::webhooks::routes(r);
    let r = api::commerce::routes(r);
    let r = api::domains::routes(r);
    let r = ops::routes(r);
    let (router, mut doc) = r.split_for_parts();
    declare_path_params(&mut doc);
    (router, doc)
}

/// Makes the document's parameters match its paths: every `{name}` of a path is declared
/// `in: path` (required; a UUID when named `id` or `*_id`, else a string) on each of its
/// operations, and a parameter declared `in: path` that the path does not hold is a query
/// parameter. A safety net under the handlers' own `params(…)` declarations. Every
/// operation also gets a `default` response: the JSON error body.
fn declare_path_params(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{RefOr, Required};
    for (path, item) in doc.paths.paths.iter_mut() {
        let names: Vec<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        let ops: [&mut Option<Operation>; 5] = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            let params = op.parameters.get_or_insert_with(Vec::new);
            for p in params.iter_mut() {
                if let RefOr::T(p) = p
                    && p.parameter_in == ParameterIn::Path
                    && !names.contains(&p.name)
                {
                    p.parameter_in = ParameterIn::Query;
                }
            }
            for name in &names {
                let declared = params.iter().any(|p| {
                    matches!(p, RefOr::T(p) if &p.name == name && p.parameter_in == ParameterIn::Path)
                });
                if declared {
                    continue;
                }
                let mut schema = ObjectBuilder::new().schema_type(Type::String);
                if name == "id" || name.ends_with("_id") {
                    schema = schema.format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)));
                }
                params.push(RefOr::T(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .schema(Some(schema))
                        .build(),
                ));
            }
            if params.is_empty() {
                op.parameters = None;
            }
            // Any operation can fail with the error body (a malformed id, a body over the
            // limit, a NUL character, …): documented once as the `default` response.
            op.responses
                .responses
                .entry("default".to_string())
                .or_insert_with(|| {
                    RefOr::T(
                        utoipa::openapi::ResponseBuilder::new()
                            .description("An error: `{error: {code, message, details}}`")
                            .content(
                                "application/json",
                                utoipa::openapi::ContentBuilder::new()
                                    .schema(Some(utoipa::openapi::Ref::from_schema_name(
                                        "ErrorBody",
                                    )))
                                    .build(),
                            )
                            .build(),
                    )
                });
        }
    }
}

/// The whole application router. Errors: a UI template that does not compile.
pub fn router(state: AppState) -> Result<Router, minijinja::Error> {
    let (api, openapi) = api_router();
    let openapi = Arc::new(openapi);
    let limits = input::BodyLimits {
        default: state.config.max_body_bytes,
        imports: state.config.max_import_bytes,
    };
    // The UI calls the API in process (see `ui`): it gets the API routes with the state.
    // Bodies it forwards were already limited when they reached the UI.
    let ui = ui::routes(
        api.clone()
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(state.clone()),
        &state,
    )?;
    let inner = api
        .merge(ui)
        .merge(storefront::routes())
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = openapi.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(storefront::fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            around_handler,
        ))
        .with_state(state.clone());
    // Tenant resolution may rewrite `/s/{handle}/x` to `/x`, so it must run before
    // routing: it wraps the inner router instead of being one of its layers.
    Ok(Router::new()
        .fallback_service(inner)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            context::resolve_tenant,
        ))
        .layer(middleware::from_fn_with_state(state, tls::https_policy))
        .layer(middleware::from_fn_with_state(limits, input::edge))
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .layer(tower_http::catch_panic::CatchPanicLayer::new()))
}

/// The one middleware around every routed handler (one layer instead of four: each
/// `from_fn` layer costs a boxed future and a clone of the service chain below it per
/// request). From the inside out:
/// 1. [`storefront::frame_ancestors_of`]: the anti-framing rule of HTML answers;
/// 2. [`input::json_error_of`]: axum's own plain-text API errors become JSON error bodies;
/// 3. request metrics by route template (never by tenant);
/// 4. storage health: records an outage the response reports (readiness, `/metrics`);
///    after a successful write request marks the storage writable again and wakes this
///    node's outbox dispatcher, so the events it committed go out at once instead of at
///    the next 20 ms poll.
async fn around_handler(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let res = storefront::frame_ancestors_of(&st, res);
    let res = input::json_error_of(api, res).await;
    let status = res.status();
    let method_label = method.as_str().to_string();
    metrics::counter!("souk_http_requests_total", "method" => method_label.clone(), "route" => route.clone(), "status" => status.as_u16().to_string())
        .increment(1);
    metrics::histogram!("souk_http_request_duration_seconds", "method" => method_label, "route" => route)
        .record(start.elapsed().as_secs_f64());
    let write = !matches!(
        method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if let Some(outage) = res.extensions().get::<crate::store::Outage>() {
        st.db.health().record(*outage);
    } else if write && status.is_success() {
        st.db.health().write_succeeded();
        st.bus.notify.notify_one();
    }
    res
}
