//! The browser interface: the platform admin panel (`/admin`) and the merchant dashboard
//! (`/dashboard`), server-rendered with minijinja, plain forms that work without
//! JavaScript, and one small hand-written script (`/ui/app.js`) for live updates,
//! auto-save and dialogs.
//!
//! **The UI is a client of the REST API, in process.** A page handler does not touch the
//! store: it calls the API router directly (no socket) with the signed-in user's access
//! token, then renders the JSON. So every permission check, validation message, audit
//! entry and event is exactly the API's; a control the role does not allow is hidden in
//! the page *and* refused by the route it would call.
//!
//! Sessions live in two cookies, both `HttpOnly`, `SameSite=Lax`, `Secure` when the
//! platform is served over TLS: `souk_at` (the access token, a JWT) and `souk_rt` (the
//! refresh token). When the access token expires, [`session::load`] rotates the pair
//! through `POST /api/v1/auth/refresh`. Signing out revokes the refresh-token family.
//!
//! CSRF: two walls. `tower_http::csrf::CsrfLayer` refuses cross-site writes
//! (`Sec-Fetch-Site` / `Origin`), and every write carries the session's CSRF token
//! (an HMAC of the session id): the `_csrf` field of urlencoded forms ([`CsrfForm`]), or
//! the `X-CSRF-Token` header / `_csrf` query parameter for `fetch` and multipart uploads
//! ([`CsrfChecked`]).

pub mod admin;
pub mod admin_feeds;
mod client;
pub mod dashboard;
mod session;

pub use client::{ApiFailure, InternalApi};
pub use session::{CsrfChecked, CsrfForm, Session};

use super::AppState;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::value::Serde;
use minijinja::{Environment, Value, context};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which interface a request belongs to: decides the sign-in page, the layout and the
/// event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    Admin,
    Dashboard,
}

impl Area {
    /// `/admin` or `/dashboard`.
    pub fn root(self) -> &'static str {
        match self {
            Area::Admin => "/admin",
            Area::Dashboard => "/dashboard",
        }
    }
    fn of_path(path: &str) -> Self {
        if path.starts_with("/admin") {
            Area::Admin
        } else {
            Area::Dashboard
        }
    }
}

/// Templates shared by both areas (layout, sign-in, errors).
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("macros.html", include_str!("templates/macros.html")),
    ("login.html", include_str!("templates/login.html")),
    ("forgot.html", include_str!("templates/forgot.html")),
    ("password.html", include_str!("templates/password.html")),
    ("message.html", include_str!("templates/message.html")),
    ("error.html", include_str!("templates/error.html")),
];

/// Static assets served under `/ui/` (name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/admin.js"),
    ),
    (
        "dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard.js"),
    ),
    (
        "onboarding.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/onboarding.js"),
    ),
];

/// The compiled templates of both areas.
pub struct Ui {
    env: Environment<'static>,
}

impl Ui {
    /// Compiles every embedded template. Errors: a template that does not compile
    /// (names the template and line).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.add_filter("money", money_filter);
        env.add_filter("datetime", datetime_filter);
        for (name, src) in TEMPLATES
            .iter()
            .chain(admin::TEMPLATES)
            .chain(admin_feeds::TEMPLATES)
            .chain(dashboard::templates())
        {
            env.add_template(name, src)?;
        }
        Ok(Self { env })
    }

    /// Renders template `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// `{{ 1999 | money("EUR") }}` → `19.99 EUR` (minor units, two decimals; JPY-like
/// currencies are not special-cased in the UI).
fn money_filter(minor: i64, currency: Option<String>) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    format!(
        "{sign}{}.{:02} {}",
        a / 100,
        a % 100,
        currency.unwrap_or_default()
    )
    .trim_end()
    .to_string()
}

/// `{{ micros | datetime }}` → `2026-11-21 14:03 UTC` from microseconds since the epoch,
/// or from an RFC 3339 string.
fn datetime_filter(v: Value) -> String {
    let t = if let Some(n) = v.as_i64() {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(n) * 1000).ok()
    } else if let Some(s) = v.as_str() {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
    } else {
        None
    };
    match t {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute()
        ),
        None => String::new(),
    }
}

/// What the UI routes share: templates and the in-process API.
pub struct UiShared {
    pub ui: Ui,
    pub api: InternalApi,
    /// Verifies access tokens and derives CSRF tokens.
    pub keys: crate::auth::TokenKeys,
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// Recent refresh-token rotations, so concurrent requests of one browser presenting
    /// the same (old) refresh cookie share one rotation (see `session::load`).
    pub renewals: session::Renewals,
}

/// The UI routes (`/admin…`, `/dashboard…`, `/ui/…`), given the API router they call
/// (state applied). Errors: an embedded template that does not compile.
pub fn routes(api: Router, st: &AppState) -> Result<Router<AppState>, minijinja::Error> {
    let shared = Arc::new(UiShared {
        ui: Ui::new()?,
        api: InternalApi::new(api, st.bus.notify.clone()),
        keys: st.keys.clone(),
        secure_cookies: st.config.public_url.starts_with("https://"),
        renewals: Default::default(),
    });
    let common = Router::new()
        .route("/admin/login", get(login_form).post(login_submit))
        .route("/dashboard/login", get(login_form).post(login_submit))
        .route("/admin/logout", post(logout))
        .route("/dashboard/logout", post(logout))
        .route(
            "/admin/forgot-password",
            get(forgot_form).post(forgot_submit),
        )
        .route(
            "/dashboard/forgot-password",
            get(forgot_form).post(forgot_submit),
        )
        .route("/admin/password", get(password_form).post(password_submit))
        .route(
            "/dashboard/password",
            get(password_form).post(password_submit),
        )
        .route("/admin/ws-ticket", post(ws_ticket))
        .route("/dashboard/ws-ticket", post(ws_ticket))
        .route("/ui/{name}", get(asset));
    Ok(common
        .merge(admin::routes())
        .merge(admin_feeds::routes())
        .merge(dashboard::routes())
        .layer(axum::middleware::from_fn(session::load))
        .layer(tower_http::csrf::CsrfLayer::new())
        .layer(axum::middleware::map_response(no_framing))
        .layer(axum::Extension(shared)))
}

/// Clickjacking guard: admin and dashboard pages may not be framed by any site
/// (`X-Frame-Options: DENY`, CSP `frame-ancestors 'none'`). A page that sets its own
/// framing rule keeps it (the branding preview, framed by the dashboard itself).
async fn no_framing(mut res: Response) -> Response {
    let h = res.headers_mut();
    if !h.contains_key(header::X_FRAME_OPTIONS) {
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("frame-ancestors 'none'"),
            );
        }
    }
    res
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(ct)),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=300"),
                ),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A UI failure, rendered once into a page or a redirect.
#[derive(Debug)]
pub enum UiError {
    /// Not signed in (or the session ended): redirect to the area's sign-in page.
    SignIn,
    /// An API refusal or failure, shown on an error page with its status.
    Api(ApiFailure),
    /// A template failed to render (logged; the user sees a generic 500 page).
    Render(minijinja::Error),
}

impl From<ApiFailure> for UiError {
    fn from(e: ApiFailure) -> Self {
        if e.status == StatusCode::UNAUTHORIZED {
            UiError::SignIn
        } else {
            UiError::Api(e)
        }
    }
}

impl From<minijinja::Error> for UiError {
    fn from(e: minijinja::Error) -> Self {
        UiError::Render(e)
    }
}

/// The result type of page handlers.
pub type UiResult = Result<Response, UiError>;

/// Request context of every UI handler: the session (if signed in), the templates, the
/// in-process API client, the area and the flash message.
pub struct Ctx {
    pub shared: Arc<UiShared>,
    pub session: Option<Session>,
    pub area: Area,
    /// Path and query of the request, for `next=` after sign-in.
    pub uri: String,
    pub flash: Option<String>,
    peer: Option<ConnectInfo<SocketAddr>>,
    forwarded_for: Option<HeaderValue>,
}

/// Rejection of [`Ctx`]: never happens in practice (the UI router always installs the
/// shared state); rendered as a 500.
pub struct CtxMissing;

impl IntoResponse for CtxMissing {
    fn into_response(self) -> Response {
        (StatusCode::INTERNAL_SERVER_ERROR, "UI not configured").into_response()
    }
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = CtxMissing;

    async fn from_request_parts(parts: &mut Parts, _st: &AppState) -> Result<Self, CtxMissing> {
        let shared = parts
            .extensions
            .get::<Arc<UiShared>>()
            .cloned()
            .ok_or(CtxMissing)?;
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map(|u| u.0.clone())
            .unwrap_or_else(|| parts.uri.clone());
        let uri = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Ok(Ctx {
            area: Area::of_path(&uri),
            session: parts.extensions.get::<Session>().cloned(),
            flash: session::flash_of(&parts.headers),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().copied(),
            forwarded_for: parts.headers.get("x-forwarded-for").cloned(),
            shared,
            uri,
        })
    }
}

impl Ctx {
    /// The signed-in session, or [`UiError::SignIn`].
    pub fn session(&self) -> Result<&Session, UiError> {
        self.session.as_ref().ok_or(UiError::SignIn)
    }

    /// The session's CSRF token ("" when signed out).
    pub fn csrf(&self) -> &str {
        self.session.as_ref().map(|s| s.csrf.as_str()).unwrap_or("")
    }

    /// Calls the API as the signed-in user: `method path` with an optional JSON body.
    /// Returns the JSON response (`null` for 204). Errors: the API's error, parsed.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, ApiFailure> {
        let token = self.session.as_ref().map(|s| s.access.as_str());
        self.shared
            .api
            .call(
                method,
                path,
                token,
                client::Body::Json(body),
                self.peer,
                self.forwarded_for.clone(),
            )
            .await
    }

    /// `GET path` as the signed-in user.
    pub async fn get(&self, path: &str) -> Result<serde_json::Value, ApiFailure> {
        self.api(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body as the signed-in user.
    pub async fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, ApiFailure> {
        self.api(Method::POST, path, Some(body)).await
    }

    /// Forwards a raw body (e.g. a browser's `multipart/form-data` upload, unchanged) to
    /// the API as the signed-in user.
    pub async fn forward(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: axum::body::Bytes,
    ) -> Result<serde_json::Value, ApiFailure> {
        let token = self.session.as_ref().map(|s| s.access.as_str());
        self.shared
            .api
            .call(
                method,
                path,
                token,
                client::Body::Raw(content_type.to_string(), body),
                self.peer,
                self.forwarded_for.clone(),
            )
            .await
    }

    /// Renders `template` with `ctx` plus the common context: `area`, `csrf`, `flash`,
    /// `uri`, `claims` (the access-token claims). Clears a shown flash message.
    pub fn render(&self, template: &str, ctx: Value) -> UiResult {
        let common = context! {
            area => Serde(self.area),
            csrf => self.csrf(),
            flash => self.flash.clone(),
            uri => self.uri.clone(),
            claims => self.session.as_ref().map(|s| Value::from(Serde(&s.claims))),
        };
        let html = self
            .shared
            .ui
            .render(template, context! { ..ctx, ..common })?;
        let mut res = Html(html).into_response();
        if self.flash.is_some() {
            session::clear_flash(&mut res);
        }
        Ok(res)
    }

    /// Renders `template` with an HTTP status other than 200 (e.g. 422 for a form with
    /// errors).
    pub fn render_status(&self, status: StatusCode, template: &str, ctx: Value) -> UiResult {
        let mut res = self.render(template, ctx)?;
        *res.status_mut() = status;
        Ok(res)
    }

    /// Turns a [`UiError`] into the page or redirect the user sees.
    pub fn error_page(&self, e: UiError) -> Response {
        match e {
            UiError::SignIn => {
                let next =
                    url::form_urlencoded::byte_serialize(self.uri.as_bytes()).collect::<String>();
                let mut res = Redirect::to(&format!("{}/login?next={next}", self.area.root()))
                    .into_response();
                session::clear_session(&mut res);
                res
            }
            // An initial password must be replaced before anything else.
            UiError::Api(f) if f.code == "password_change_required" => redirect_with_flash(
                &format!("{}/password", self.area.root()),
                "Choose your own password before you continue.",
            ),
            UiError::Api(f) => {
                let title = match f.status {
                    StatusCode::FORBIDDEN => "Not allowed",
                    StatusCode::NOT_FOUND => "Not found",
                    _ => "Something went wrong",
                };
                self.render_status(
                    f.status,
                    "error.html",
                    context! { title, status => f.status.as_u16(), message => f.message, code => f.code },
                )
                .unwrap_or_else(render_failed)
            }
            UiError::Render(e) => render_failed(UiError::Render(e)),
        }
    }

    /// Unwraps a handler result into a response (errors through [`Ctx::error_page`]).
    pub fn finish(&self, r: UiResult) -> Response {
        match r {
            Ok(res) => res,
            Err(e) => self.error_page(e),
        }
    }
}

fn render_failed(e: UiError) -> Response {
    if let UiError::Render(e) = &e {
        tracing::error!(error = %e, "UI template failed to render");
    }
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html("<!doctype html><title>Error</title><p>Something went wrong on our side. Try again.</p>"),
    )
        .into_response()
}

/// A JSON endpoint's result: the value, or `{error:{code,message}}` with the status.
pub(crate) fn json_response(r: Result<serde_json::Value, UiError>) -> Response {
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(UiError::SignIn) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": {"code": "unauthorized", "message": "sign in again"}})),
        )
            .into_response(),
        Err(UiError::Api(f)) => (
            f.status,
            axum::Json(json!({"error": {"code": f.code, "message": f.message}})),
        )
            .into_response(),
        Err(UiError::Render(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A redirect (303 See Other, so a POST becomes a GET) that shows `message` on the next
/// page.
pub fn redirect_with_flash(to: &str, message: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    session::set_flash(&mut res, message);
    res
}

/// Field errors from an API validation failure: `{field: message}` when the API named
/// the field (`details.field`), else `{"_form": message}`.
pub fn field_errors(f: &ApiFailure) -> serde_json::Value {
    match f.details.get("field").and_then(|v| v.as_str()) {
        Some(field) => json!({ field: f.message }),
        None => json!({ "_form": f.message }),
    }
}

/// `a=1&b=2` from pairs, URL-encoded; pairs with an empty value are left out.
pub fn query_string<K: AsRef<str>>(pairs: impl IntoIterator<Item = (K, String)>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k.as_ref(), &v);
        }
    }
    s.finish()
}

/// Keeps `next` only when it is a path inside the area (no open redirects) that can be
/// sent back in a `Location` header: no control character (CR, LF, NUL, …), no
/// backslash, nothing outside printable ASCII. Anything else falls back to the area's home.
fn safe_next(area: Area, next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with(area.root())
                && !n.starts_with("//")
                && !n.contains("://")
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
                && axum::http::HeaderValue::from_str(n).is_ok() =>
        {
            n.to_string()
        }
        _ => area.root().to_string(),
    }
}

#[derive(serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_form(cx: Ctx, axum::extract::Query(q): axum::extract::Query<NextQuery>) -> Response {
    let next = safe_next(cx.area, q.next.as_deref());
    if cx.session.is_some() {
        return Redirect::to(&next).into_response();
    }
    let r = cx.render(
        "login.html",
        context! { title => login_title(cx.area), next, email => "", errors => Serde(json!({})) },
    );
    cx.finish(r)
}

fn login_title(area: Area) -> &'static str {
    match area {
        Area::Admin => "Sign in to the admin panel",
        Area::Dashboard => "Sign in to your dashboard",
    }
}

#[derive(serde::Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn login_submit(cx: Ctx, axum::Form(f): axum::Form<LoginForm>) -> Response {
    let next = safe_next(cx.area, f.next.as_deref());
    let shown = |cx: &Ctx, status: StatusCode, message: String| {
        let r = cx.render_status(
            status,
            "login.html",
            context! { title => login_title(cx.area), next => next.clone(), email => f.email.clone(),
                errors => Serde(json!({ "_form": message })) },
        );
        cx.finish(r)
    };
    // Sign-in is a credential check, not a session write: the login form has no
    // session token yet; CsrfLayer still refuses cross-site posts.
    let tokens = match cx
        .api(
            Method::POST,
            "/api/v1/auth/login",
            Some(json!({ "email": f.email, "password": f.password })),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return shown(&cx, e.status, e.message),
    };
    let Some(session) = session::Session::from_tokens(&cx, &tokens) else {
        return shown(
            &cx,
            StatusCode::INTERNAL_SERVER_ERROR,
            "sign-in failed; try again".into(),
        );
    };
    if cx.area == Area::Admin && !session.claims.adm {
        // Not staff: end the new session at once.
        let _ = revoke(&cx, &session).await;
        return shown(
            &cx,
            StatusCode::FORBIDDEN,
            "this account is not platform staff; merchants sign in at /dashboard/login".into(),
        );
    }
    let to = if session.claims.mcp {
        format!("{}/password", cx.area.root())
    } else if cx.area == Area::Dashboard
        && next == Area::Dashboard.root()
        && setup_pending(&cx, &session).await
    {
        // The setup guide is shown at every sign-in until the store is published.
        "/dashboard/onboarding".to_string()
    } else {
        next.clone()
    };
    let mut res = Redirect::to(&to).into_response();
    session.set_cookies(&mut res);
    res
}

/// True when the signed-in member may run the setup guide (`settings.edit`) and the
/// store is not published yet. Any failure (no permission, no tenant) is "no".
async fn setup_pending(cx: &Ctx, s: &session::Session) -> bool {
    match cx
        .shared
        .api
        .call(
            Method::GET,
            "/api/v1/onboarding",
            Some(&s.access),
            client::Body::Json(None),
            None,
            None,
        )
        .await
    {
        Ok(st) => st
            .get("completed_at")
            .is_none_or(serde_json::Value::is_null),
        Err(_) => false,
    }
}

async fn revoke(cx: &Ctx, s: &Session) -> Result<serde_json::Value, ApiFailure> {
    cx.shared
        .api
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Some(&s.access),
            client::Body::Json(Some(json!({ "refresh_token": s.refresh }))),
            None,
            None,
        )
        .await
}

async fn logout(cx: Ctx, CsrfForm(_): CsrfForm<Vec<(String, String)>>) -> Response {
    if let Some(s) = &cx.session {
        let _ = revoke(&cx, s).await;
    }
    let mut res = redirect_with_flash(&format!("{}/login", cx.area.root()), "You are signed out.");
    session::clear_session(&mut res);
    res
}

async fn forgot_form(cx: Ctx) -> Response {
    let r = cx.render(
        "forgot.html",
        context! { title => "Reset your password", email => "", errors => Serde(json!({})) },
    );
    cx.finish(r)
}

#[derive(serde::Deserialize)]
struct ForgotForm {
    email: String,
}

async fn forgot_submit(cx: Ctx, axum::Form(f): axum::Form<ForgotForm>) -> Response {
    match cx
        .post(
            "/api/v1/auth/forgot-password",
            json!({ "email": f.email.trim() }),
        )
        .await
    {
        Ok(_) => {
            let r = cx.render(
                "message.html",
                context! { title => "Check your e-mail",
                    message => "If an account exists for this address, we sent it a link to set a new password. The link works once and expires.",
                    link => format!("{}/login", cx.area.root()), link_text => "Back to sign-in" },
            );
            cx.finish(r)
        }
        Err(e) => {
            let r = cx.render_status(
                e.status,
                "forgot.html",
                context! { title => "Reset your password", email => f.email, errors => Serde(json!({ "email": e.message })) },
            );
            cx.finish(r)
        }
    }
}

async fn password_form(cx: Ctx) -> Response {
    let r = cx.session().map(|_| ()).and_then(|_| {
        cx.render(
            "password.html",
            context! { title => "Change your password", errors => Serde(json!({})) },
        )
    });
    cx.finish(r)
}

#[derive(serde::Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

async fn password_submit(cx: Ctx, CsrfForm(f): CsrfForm<PasswordForm>) -> Response {
    let r = async {
        cx.session()?;
        match cx
            .post(
                "/api/v1/auth/change-password",
                json!({ "current_password": f.current_password, "new_password": f.new_password }),
            )
            .await
        {
            Ok(_) => {
                // Changing the password ends every session: sign in again.
                let mut res = redirect_with_flash(
                    &format!("{}/login", cx.area.root()),
                    "Your password is changed. Sign in with the new one.",
                );
                session::clear_session(&mut res);
                Ok(res)
            }
            // The API names the field (`current_password` wrong, `new_password` weak).
            Err(e) if e.status == StatusCode::UNPROCESSABLE_ENTITY => cx.render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                "password.html",
                context! { title => "Change your password", errors => Serde(field_errors(&e)) },
            ),
            Err(e) => Err(e.into()),
        }
    }
    .await;
    cx.finish(r)
}

/// `POST /{area}/ws-ticket` → `{ticket, url}`: a 30 s ticket for the event WebSocket
/// (the browser cannot send `Authorization` on a WebSocket).
async fn ws_ticket(cx: Ctx, _c: CsrfChecked) -> Response {
    let r = async {
        cx.session()?;
        let t = cx.post("/api/v1/events/ws-ticket", json!({})).await?;
        let url = match cx.area {
            Area::Admin => "/api/v1/admin/events/ws",
            Area::Dashboard => "/api/v1/events/ws",
        };
        Ok::<_, UiError>(
            axum::Json(json!({ "ticket": t.get("ticket"), "url": url })).into_response(),
        )
    }
    .await;
    match r {
        Ok(res) => res,
        Err(UiError::SignIn) => StatusCode::UNAUTHORIZED.into_response(),
        Err(UiError::Api(f)) => (
            f.status,
            axum::Json(json!({"error": {"code": f.code, "message": f.message}})),
        )
            .into_response(),
        Err(UiError::Render(_)) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
