//! The HTTP side of Souk's own TLS: the ACME HTTP-01 answers, HTTP → HTTPS redirects and
//! HSTS for custom domains whose certificate is live.

use super::AppState;
use crate::store::platform;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Request extension set by the HTTPS listener's router (the request came over TLS).
#[derive(Debug, Clone, Copy)]
pub struct ViaTls;

/// `Strict-Transport-Security` sent over HTTPS for hosts with a live certificate (1 year).
pub const HSTS: &str = "max-age=31536000";

/// Middleware, outermost after the body limits: answers
/// `/.well-known/acme-challenge/<token>` from the domain rows (only for a verified or
/// active domain with that pending token, on its own host), redirects plain-HTTP requests
/// for a host with a live certificate to HTTPS (308, method kept), and adds HSTS to
/// responses served over TLS for such hosts.
pub async fn https_policy(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let host = super::context::host_of(&req);
    if let Some(token) = req
        .uri()
        .path()
        .strip_prefix("/.well-known/acme-challenge/")
    {
        let found = match &host {
            Some(h) if !token.is_empty() && token.len() <= 256 => {
                platform::acme_key_authorization(&st.db, h, token).await
            }
            _ => Ok(None),
        };
        return match found {
            Ok(Some(ka)) => ([(header::CONTENT_TYPE, "text/plain")], ka).into_response(),
            Ok(None) => (StatusCode::NOT_FOUND, "no such challenge").into_response(),
            Err(e) => super::error::ApiError::from(e).into_response(),
        };
    }
    let Some(certs) = st.domains.certs.as_ref() else {
        return next.run(req).await;
    };
    let live = host.as_deref().is_some_and(|h| certs.has(h));
    let via_tls = req.extensions().get::<ViaTls>().is_some();
    if live && !via_tls {
        let host = host.unwrap_or_default();
        let port = match st.https_port {
            Some(443) | None => String::new(),
            Some(p) => format!(":{p}"),
        };
        let pq = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let location = format!("https://{host}{port}{pq}");
        return match HeaderValue::from_str(&location) {
            Ok(v) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, v)]).into_response(),
            Err(_) => StatusCode::BAD_REQUEST.into_response(),
        };
    }
    let mut res = next.run(req).await;
    if live && via_tls {
        res.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    res
}
