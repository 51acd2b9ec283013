//! Input limits checked at the edge, before any handler or query sees the input:
//!
//! - JSON bodies ([`super::error::ApiJson`]): at most [`MAX_JSON_BODY_BYTES`] (else 413
//!   `payload_too_large`); every string value is at most its field's limit in characters
//!   ([`text_limit`], else 422 `too_long`) and contains no NUL character (else 422
//!   `invalid_character`), both naming the field by its JSON path (`variants[0].sku`).
//! - Query strings and paths ([`nul_check`], in [`edge`]): a NUL character (`%00`) is 422
//!   `invalid_character` naming the parameter under `/api/`; on pages the parameter is
//!   dropped (a `next=` that cannot be used falls back to the home page) and a path is 404.
//! - Plain-text errors axum answers itself under `/api/` ([`json_error_of`]) become the JSON
//!   error body.
//! - Request bodies a handler did not read ([`edge`]): the response carries
//!   `Connection: close`, so a keep-alive client does not send its next request on a
//!   connection the server is about to close.
//!
//! PostgreSQL refuses NUL in `text` while SQLite stores it: refusing it here makes both
//! backends answer the same 422.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

/// Largest JSON request body, in bytes (CSV and file uploads have their own, larger limit).
pub const MAX_JSON_BODY_BYTES: usize = 2 * 1024 * 1024;

/// Limit of long free text (product `body_html`, descriptions, notes, messages), in characters.
pub const LONG_TEXT_CHARS: usize = 64 * 1024;
/// Limit of URLs, in characters.
pub const URL_CHARS: usize = 2048;
/// Limit of secrets and tokens (passwords, refresh tokens, tickets, keys), in characters.
pub const SECRET_CHARS: usize = 4096;
/// Limit of short text (titles, names, handles, SKUs, e-mails, tags), in characters.
pub const SHORT_TEXT_CHARS: usize = 255;
/// Limit of any other text field, in characters.
pub const DEFAULT_TEXT_CHARS: usize = 1024;

/// The limit in characters of a JSON string whose nearest object key is `key` (for an
/// array element, the array's key). Route-specific rules may be stricter.
pub fn text_limit(key: &str) -> usize {
    match key {
        "body_html"
        | "description"
        | "body"
        | "message"
        | "note"
        | "manual_instructions"
        | "reason"
        | "text" => LONG_TEXT_CHARS,
        "url" | "logo_url" | "src" | "image_url" | "storefront_url" => URL_CHARS,
        "password"
        | "current_password"
        | "new_password"
        | "token"
        | "refresh_token"
        | "ticket"
        | "secret"
        | "payment_secret"
        | "stripe_secret_key"
        | "stripe_publishable_key" => SECRET_CHARS,
        "title" | "name" | "handle" | "sku" | "barcode" | "email" | "owner_email"
        | "owner_name" | "vendor" | "product_type" | "tags" | "subdomain" | "label" | "alt"
        | "subject" | "seo_title" | "customer_name" | "store_name" | "theme" | "plan" | "role"
        | "options" | "option_values" | "status" | "key" => SHORT_TEXT_CHARS,
        _ => DEFAULT_TEXT_CHARS,
    }
}

/// Walks a parsed JSON body: the first string (or object key) holding a NUL character or
/// longer than its field's [`text_limit`] is a 422 naming its path.
pub fn check_json(v: &Value) -> Result<(), ApiError> {
    walk(v, &mut String::new(), "")
}

fn walk(v: &Value, path: &mut String, key: &str) -> Result<(), ApiError> {
    match v {
        Value::String(s) => check_text(path, key, s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(item, path, key)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                if k.contains('\0') {
                    return Err(nul_error(&path.replace('\0', "\\u0000")));
                }
                walk(item, path, k)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_text(field: &str, key: &str, s: &str) -> Result<(), ApiError> {
    let field = if field.is_empty() { "body" } else { field };
    if s.contains('\0') {
        return Err(nul_error(field));
    }
    let max = text_limit(key);
    // Cheap first: a string of at most `max` bytes has at most `max` characters.
    if s.len() > max && s.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        )
        .with_details(json!({ "field": field, "max_chars": max })));
    }
    Ok(())
}

fn nul_error(field: &str) -> ApiError {
    ApiError::invalid(
        field,
        "invalid_character",
        format!("{field} must not contain a NUL character (\\u0000)"),
    )
}

/// Refuses a NUL character in the path or the query string (see the module
/// documentation): `Err` is the answer; a page's unusable query parameters are dropped
/// from the returned request. Runs before tenant resolution, so `/s/{handle}/api/…` is
/// covered too.
fn nul_check(mut req: Request) -> Result<Request, Box<Response>> {
    let uri = req.uri().clone();
    let api = uri.path().starts_with("/api/")
        || uri
            .path()
            .strip_prefix("/s/")
            .and_then(|r| r.find('/').map(|i| &r[i..]))
            .is_some_and(|r| r.starts_with("/api/"));
    if has_nul(uri.path()) {
        if api {
            return Err(Box::new(nul_error("path").into_response()));
        }
        return Err(Box::new(
            (StatusCode::NOT_FOUND, "not found").into_response(),
        ));
    }
    let Some(query) = uri.query().filter(|q| has_nul(q)) else {
        return Ok(req);
    };
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if api {
        let bad = pairs
            .iter()
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
            .map(|(k, _)| k.replace('\0', "\\u0000"))
            .unwrap_or_else(|| "query".to_string());
        return Err(Box::new(nul_error(&bad).into_response()));
    }
    // A page: drop the parameters that cannot be used.
    let kept = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            pairs
                .iter()
                .filter(|(k, v)| !k.contains('\0') && !v.contains('\0')),
        )
        .finish();
    let pq = if kept.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{kept}", uri.path())
    };
    let mut parts = uri.into_parts();
    match pq.parse() {
        Ok(p) => parts.path_and_query = Some(p),
        Err(_) => {
            return Err(Box::new(
                (StatusCode::BAD_REQUEST, "bad request").into_response(),
            ));
        }
    }
    match Uri::from_parts(parts) {
        Ok(u) => *req.uri_mut() = u,
        Err(_) => {
            return Err(Box::new(
                (StatusCode::BAD_REQUEST, "bad request").into_response(),
            ));
        }
    }
    Ok(req)
}

/// Whether the percent-decoded text holds a NUL (`%00`; a raw NUL cannot be in a URI).
fn has_nul(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| w == b"%00") || raw.contains('\0')
}

/// The one middleware at the edge, before tenant resolution (one layer instead of three,
/// see `web::around_handler` for why):
/// - a response to a request whose body was not read to its end (refused by an extractor
///   before the body, or answered without it) carries `Connection: close`, since the
///   server cannot reuse that connection;
/// - the body is wrapped in the length limit its path gets ([`BodyLimits`]): extractors
///   reading past it fail with 413 (this replaces axum's single `DefaultBodyLimit`);
/// - a NUL character in the path or the query string is refused ([`nul_check`]).
pub async fn edge(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let done = Arc::new(AtomicBool::new(!declared));
    let req = if declared {
        let seen = done.clone();
        req.map(|inner| Body::new(Tracked { inner, done: seen }))
    } else {
        req
    };
    let req = limit_body(limits, req);
    let mut res = match nul_check(req) {
        Ok(req) => next.run(req).await,
        Err(res) => *res,
    };
    if !done.load(Ordering::Acquire) {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// An API error answered by axum itself as plain text (a path or query string
/// that does not parse, a method the route does not have) becomes the JSON error body
/// every other API error has.
pub async fn json_error_of(api: bool, res: Response) -> Response {
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    let status = res.status();
    if !api || !plain || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let (parts, body) = res.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_request",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        s if s.is_server_error() => "internal_error",
        _ => "invalid_request",
    };
    let mut out = ApiError::new(status, code, text).into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

/// A request body that records when it has been read to its end.
struct Tracked {
    inner: Body,
    done: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.done.store(true, Ordering::Release),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => {
                self.done.store(true, Ordering::Release)
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_the_field() {
        let v = json!({ "variants": [{ "sku": "ok" }, { "sku": "a\u{0}b" }] });
        let e = check_json(&v).unwrap_err();
        assert_eq!(e.details["field"], "variants[1].sku");
        assert_eq!(e.code, "invalid_character");
        let v = json!({ "title": "x".repeat(256) });
        let e = check_json(&v).unwrap_err();
        assert_eq!(
            (e.code, e.details["max_chars"].as_u64()),
            ("too_long", Some(255))
        );
        let v = json!({ "title": "é".repeat(255), "body_html": "x".repeat(60_000) });
        assert!(check_json(&v).is_ok());
    }

    #[test]
    fn nul_in_uris() {
        assert!(has_nul("q=a%00b"));
        assert!(!has_nul("q=100%25"));
        assert!(!has_nul("q=%2500"));
    }
}

/// Request body limits in bytes: CSV import uploads (any path with an `/imports` segment:
/// `/api/v1/imports/products`, `/api/v1/admin/imports/vendors`, the dashboard's and admin
/// panel's import forms) get `imports`, every other request `default`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub default: usize,
    pub imports: usize,
}

/// The limit that applied to this request's body, for 413 messages that name it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Wraps the request body in the length limit chosen by its path ([`BodyLimits`]) and
/// records it ([`BodyLimit`]) for 413 messages.
fn limit_body(limits: BodyLimits, req: Request) -> Request {
    let import = req.uri().path().split('/').any(|seg| seg == "imports");
    let limit = if import {
        limits.imports
    } else {
        limits.default
    };
    let (mut parts, body) = req.into_parts();
    parts.extensions.insert(BodyLimit(limit));
    let body = Body::new(http_body_util::Limited::new(body, limit));
    Request::from_parts(parts, body)
}
