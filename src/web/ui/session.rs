//! Browser sessions in cookies, and the CSRF token checks.
//!
//! Cookies (all `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` when the public URL is
//! https): `souk_at` = access token (JWT, RFC 7519), `souk_rt` = refresh token, and
//! `souk_flash` = a one-shot message for the next page.

use super::{Ctx, UiShared};
use crate::auth::Claims;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;

const ACCESS: &str = "souk_at";
const REFRESH: &str = "souk_rt";
const FLASH: &str = "souk_flash";
/// Refresh cookie lifetime (the API's refresh tokens live 30 days).
const REFRESH_MAX_AGE_DAYS: i64 = 30;

/// A signed-in browser session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The access token (sent to the API as `Authorization: Bearer`).
    pub access: String,
    /// The refresh token (rotated by the API on use).
    pub refresh: String,
    pub claims: Claims,
    /// The session's CSRF token (see [`crate::auth::TokenKeys::csrf_token`]).
    pub csrf: String,
    /// Set when the middleware rotated the tokens during this request.
    renewed: bool,
    secure: bool,
}

impl Session {
    /// Builds a session from a `TokenResponse` (`{access_token, refresh_token, …}`).
    /// `None` when the body is not one or the access token does not verify.
    pub(super) fn from_tokens(cx: &Ctx, tokens: &Value) -> Option<Session> {
        Self::from_token_response(&cx.shared, tokens)
    }

    fn from_token_response(shared: &UiShared, tokens: &Value) -> Option<Session> {
        let access = tokens.get("access_token")?.as_str()?.to_string();
        let refresh = tokens.get("refresh_token")?.as_str()?.to_string();
        let claims = shared.keys.verify(&access).ok()?;
        let csrf = shared.keys.csrf_token(claims.sid?);
        Some(Session {
            access,
            refresh,
            claims,
            csrf,
            renewed: true,
            secure: shared.secure_cookies,
        })
    }

    /// Writes both session cookies on `res`.
    pub fn set_cookies(&self, res: &mut Response) {
        append(res, cookie(ACCESS, &self.access, self.secure, None));
        append(
            res,
            cookie(
                REFRESH,
                &self.refresh,
                self.secure,
                Some(cookie::time::Duration::days(REFRESH_MAX_AGE_DAYS)),
            ),
        );
    }

    /// True when `token` is this session's CSRF token (constant-time).
    pub fn csrf_ok(&self, shared: &UiShared, token: &str) -> bool {
        self.claims
            .sid
            .is_some_and(|sid| shared.keys.verify_csrf(sid, token))
    }
}

fn cookie(
    name: &'static str,
    value: &str,
    secure: bool,
    max_age: Option<cookie::time::Duration>,
) -> Cookie<'static> {
    let mut c = Cookie::build((name, value.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .build();
    if let Some(m) = max_age {
        c.set_max_age(m);
    }
    c
}

fn append(res: &mut Response, c: Cookie<'static>) {
    if let Ok(v) = HeaderValue::from_str(&c.encoded().to_string()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn removal(name: &'static str) -> Cookie<'static> {
    let mut c = Cookie::build((name, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    c.make_removal();
    c
}

/// Expires both session cookies.
pub(super) fn clear_session(res: &mut Response) {
    append(res, removal(ACCESS));
    append(res, removal(REFRESH));
}

/// Sets the one-shot message shown by the next rendered page.
pub(super) fn set_flash(res: &mut Response, message: &str) {
    let mut c = Cookie::build((FLASH, message.to_string()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .build();
    c.set_max_age(cookie::time::Duration::seconds(60));
    append(res, c);
}

/// Expires the flash cookie (after the page showing it).
pub(super) fn clear_flash(res: &mut Response) {
    append(res, removal(FLASH));
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_string())
}

/// The flash message of this request, if any (at most 300 characters are shown).
pub(super) fn flash_of(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, FLASH)
        .filter(|m| !m.is_empty())
        .map(|m| m.chars().take(300).collect())
}

/// Middleware: loads the [`Session`] from the cookies into the request extensions. An
/// expired access token is renewed with the refresh token (new cookies on the response);
/// a refused refresh clears the cookies (the page then asks to sign in).
pub(super) async fn load(mut req: Request, next: Next) -> Response {
    let Some(shared) = req.extensions().get::<Arc<UiShared>>().cloned() else {
        return next.run(req).await;
    };
    let access = cookie_value(req.headers(), ACCESS);
    let refresh = cookie_value(req.headers(), REFRESH);
    let mut session = None;
    let mut ended = false;
    if let (Some(a), Some(r)) = (&access, &refresh)
        && let Ok(claims) = shared.keys.verify(a)
        && let Some(sid) = claims.sid
    {
        session = Some(Session {
            access: a.clone(),
            refresh: r.clone(),
            csrf: shared.keys.csrf_token(sid),
            claims,
            renewed: false,
            secure: shared.secure_cookies,
        });
    } else if let Some(r) = &refresh {
        match renew(&shared, r).await {
            Some(tokens) => session = Session::from_token_response(&shared, &tokens),
            None => ended = true,
        }
    }
    if let Some(s) = &session {
        req.extensions_mut().insert(s.clone());
    }
    let mut res = next.run(req).await;
    // A handler that signed in, out or switched tenant wrote its own cookies.
    if res.headers().get_all(header::SET_COOKIE).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.starts_with("souk_at=") || v.starts_with("souk_rt="))
    }) {
        return res;
    }
    match session {
        Some(s) if s.renewed => s.set_cookies(&mut res),
        None if ended => clear_session(&mut res),
        _ => {}
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Refresh-token rotations of the last [`RENEWAL_REUSE`], keyed by the SHA-256 of the
/// refresh token they consumed.
#[derive(Default)]
pub struct Renewals(
    tokio::sync::Mutex<std::collections::HashMap<String, (Value, std::time::Instant)>>,
);

/// How long a rotation is handed to other requests that still carry the old cookie.
const RENEWAL_REUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// Rotates the refresh token once per node even when a browser sends several requests at
/// the same time with an expired access cookie (a page load and the event socket's ticket,
/// say): the API treats a second use of a refresh token as theft and revokes the session,
/// so the later requests get the first rotation's tokens instead of presenting the old
/// token again. Rotations on one node run one at a time (they are rare: one per session
/// per access-token lifetime). `None` when the API refuses the token.
async fn renew(shared: &UiShared, refresh: &str) -> Option<Value> {
    let key = crate::auth::token_hash(refresh);
    let mut recent = shared.renewals.0.lock().await;
    recent.retain(|_, (_, at)| at.elapsed() < RENEWAL_REUSE);
    if let Some((tokens, _)) = recent.get(&key) {
        return Some(tokens.clone());
    }
    let tokens = shared
        .api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            super::client::Body::Json(Some(json!({ "refresh_token": refresh }))),
            None,
            None,
        )
        .await
        .ok()?;
    recent.insert(key, (tokens.clone(), std::time::Instant::now()));
    Some(tokens)
}

fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::response::Html(
            "<!doctype html><title>Form expired</title><p>This form has expired or did not come from this site. Go back, reload the page and try again.</p>",
        ),
    )
        .into_response()
}

/// A urlencoded form whose `_csrf` field matched the session's token. Fields are
/// deserialized into `T` (unknown fields such as `_csrf` are ignored by default);
/// `Vec<(String, String)>` keeps repeated fields (checkbox lists).
///
/// Rejections: not signed in → redirect to the area's sign-in page; a missing or wrong
/// token → 403 page; a body that does not fit `T` → 422 naming the problem.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<crate::web::AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, _st: &crate::web::AppState) -> Result<Self, Response> {
        let shared = req.extensions().get::<Arc<UiShared>>().cloned();
        let session = req.extensions().get::<Session>().cloned();
        let area = super::Area::of_path(req.uri().path());
        let (Some(shared), Some(session)) = (shared, session) else {
            return Err(Redirect::to(&format!("{}/login", area.root())).into_response());
        };
        let bytes = Bytes::from_request(req, &())
            .await
            .map_err(IntoResponse::into_response)?;
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !session.csrf_ok(&shared, &token) {
            return Err(csrf_refused());
        }
        // POST: axum's `Form` reads a GET request's query string, not its body.
        let rebuilt = Request::builder()
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(bytes))
            .map_err(|_| StatusCode::BAD_REQUEST.into_response())?;
        let axum::Form(v) = axum::Form::<T>::from_request(rebuilt, &())
            .await
            .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.body_text()).into_response())?;
        Ok(CsrfForm(v))
    }
}

/// Proof that a non-form write (a `fetch` call or a multipart upload) carried the
/// session's CSRF token in `X-CSRF-Token` or the `_csrf` query parameter.
/// Rejections: not signed in → 401; missing or wrong token → 403.
pub struct CsrfChecked;

impl FromRequestParts<crate::web::AppState> for CsrfChecked {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        _st: &crate::web::AppState,
    ) -> Result<Self, Response> {
        let shared = parts.extensions.get::<Arc<UiShared>>().cloned();
        let session = parts.extensions.get::<Session>().cloned();
        let (Some(shared), Some(session)) = (shared, session) else {
            return Err(StatusCode::UNAUTHORIZED.into_response());
        };
        let token = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                parts.uri.query().and_then(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "_csrf")
                        .map(|(_, v)| v.into_owned())
                })
            })
            .unwrap_or_default();
        if session.csrf_ok(&shared, &token) {
            Ok(CsrfChecked)
        } else {
            Err(csrf_refused())
        }
    }
}
