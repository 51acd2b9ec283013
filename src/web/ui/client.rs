//! The in-process API client: UI handlers call the REST API router directly, without a
//! socket, with the signed-in user's access token.

use axum::Router;
use axum::body::{Body as AxumBody, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

/// The API router with its state applied (`/api/v1/...` routes only).
#[derive(Clone)]
pub struct InternalApi {
    router: Router,
    /// Wakes the outbox dispatcher after a successful write (as the HTTP path does).
    wake: std::sync::Arc<tokio::sync::Notify>,
}

/// An API error as the UI sees it: the status and the `{error: {code, message,
/// details}}` body.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Value,
}

impl ApiFailure {
    fn internal(message: &str) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal".into(),
            message: message.into(),
            details: Value::Null,
        }
    }
}

/// A request body for [`InternalApi::call`].
pub(super) enum Body {
    /// JSON (or no body).
    Json(Option<Value>),
    /// A raw body with its content type (multipart uploads forwarded unchanged).
    Raw(String, Bytes),
}

/// Largest API response the UI reads (a CSV of failed rows included).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

impl InternalApi {
    pub fn new(router: Router, wake: std::sync::Arc<tokio::sync::Notify>) -> Self {
        Self { router, wake }
    }

    /// Calls `method path` and returns the JSON response (`Value::Null` when the body is
    /// empty; `{"text": …, "content_type": …}` for a non-JSON body such as CSV).
    /// Errors: non-2xx responses as [`ApiFailure`].
    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        peer: Option<ConnectInfo<SocketAddr>>,
        forwarded_for: Option<HeaderValue>,
    ) -> Result<Value, ApiFailure> {
        let write = !matches!(method, Method::GET | Method::HEAD);
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        if let Some(f) = forwarded_for {
            req = req.header("x-forwarded-for", f);
        }
        let req = match body {
            Body::Json(Some(v)) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(AxumBody::from(v.to_string())),
            Body::Json(None) => req.body(AxumBody::empty()),
            Body::Raw(ct, bytes) => req
                .header(header::CONTENT_TYPE, ct)
                .body(AxumBody::from(bytes)),
        };
        let mut req = req.map_err(|_| ApiFailure::internal("could not build the API request"))?;
        if let Some(p) = peer {
            req.extensions_mut().insert(p);
        }
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .map_err(|_| ApiFailure::internal("the API did not answer"))?;
        let status = res.status();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = axum::body::to_bytes(res.into_body(), MAX_RESPONSE)
            .await
            .map_err(|_| ApiFailure::internal("the API response could not be read"))?;
        let value = if bytes.is_empty() {
            Value::Null
        } else if content_type.starts_with("application/json") {
            serde_json::from_slice(&bytes)
                .map_err(|_| ApiFailure::internal("the API answered with invalid JSON"))?
        } else {
            serde_json::json!({
                "text": String::from_utf8_lossy(&bytes),
                "content_type": content_type,
            })
        };
        if status.is_success() {
            if write {
                self.wake.notify_one();
            }
            return Ok(value);
        }
        let err = value.get("error");
        Err(ApiFailure {
            status,
            code: err
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .unwrap_or("error")
                .to_string(),
            message: err
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("the request failed")
                .to_string(),
            details: err
                .and_then(|e| e.get("details"))
                .cloned()
                .unwrap_or(Value::Null),
        })
    }
}
