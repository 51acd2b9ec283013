//! The HTTP error type: every failure becomes a status and the JSON body
//! `{ "error": { "code", "message", "details" } }`. Internal causes are logged, never shown.

use crate::domain::DomainError;
use crate::store::StoreError;
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

/// An API error with a stable `code`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds sent as `Retry-After` (e.g. with a 503), if any.
    pub retry_after: Option<u64>,
}

/// The error body as documented in the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `subdomain_taken`.
    pub code: String,
    pub message: String,
    /// Extra context, e.g. `{"field": "subdomain"}` or per-row errors.
    #[schema(value_type = Object)]
    pub details: Value,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: json!({}),
            retry_after: None,
        }
    }
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
    /// Adds a `Retry-After: secs` header to the response.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }
    /// 422 naming the invalid field.
    pub fn invalid(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            .with_details(json!({ "field": field }))
    }
    /// Wraps a domain parse error for `field`.
    pub fn field(field: &str, e: DomainError) -> Self {
        Self::invalid(field, e.code, format!("{field}: {}", e.message))
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 507 `storage_full` with `Retry-After: 30`: the database or its disk is full. Nothing
    /// of the request was kept; the same request can be sent again once space returns.
    pub fn storage_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "storage_full",
            "the store's database is full; nothing was saved, retry later",
        )
        .with_retry_after(30)
    }
    /// 503 `storage_unavailable` with `Retry-After: 5`: the database cannot be reached right
    /// now (I/O error, restart, lost connection). Nothing of the request was kept.
    pub fn storage_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "the database is unavailable; nothing was saved, retry later",
        )
        .with_retry_after(5)
    }
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut res = (self.status, Json(body)).into_response();
        // Lets the request middleware record the outage without parsing the body.
        match self.code {
            "storage_full" => {
                res.extensions_mut().insert(crate::store::Outage::Full);
            }
            "storage_unavailable" => {
                res.extensions_mut()
                    .insert(crate::store::Outage::Unavailable);
            }
            _ => {}
        }
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("resource"),
            StoreError::Conflict { field, message } => {
                let code = match field {
                    "subdomain" => "subdomain_taken",
                    "handle" => "handle_taken",
                    "sku" => "sku_taken",
                    "email" => "email_taken",
                    "host" => "domain_taken",
                    "status" => "invalid_state",
                    "currency" => "currency_locked",
                    _ => "conflict",
                };
                ApiError::new(StatusCode::CONFLICT, code, message)
                    .with_details(json!({ "field": field }))
            }
            other => match other.outage() {
                Some(crate::store::Outage::Full) => {
                    tracing::error!(error = %other, "storage full");
                    ApiError::storage_full()
                }
                Some(crate::store::Outage::Unavailable) => {
                    tracing::error!(error = %other, "storage unavailable");
                    ApiError::storage_unavailable()
                }
                None => {
                    tracing::error!(error = %other, "storage error");
                    ApiError::internal()
                }
            },
        }
    }
}

/// `Json<T>` whose rejection is our JSON error (400 `malformed_json` naming what is wrong,
/// 415 for a wrong content type, 413 for a body over
/// [`MAX_JSON_BODY_BYTES`](super::input::MAX_JSON_BODY_BYTES)), and whose text is checked
/// before it is typed: a NUL character or a string over its field's limit is a 422 naming
/// the field (see [`super::input`]).
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let too_large = || {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "the JSON body is larger than {} bytes",
                    super::input::MAX_JSON_BODY_BYTES
                ),
            )
        };
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > super::input::MAX_JSON_BODY_BYTES) {
            return Err(too_large());
        }
        let req = req.map(|b| {
            axum::body::Body::new(http_body_util::Limited::new(
                b,
                super::input::MAX_JSON_BODY_BYTES,
            ))
        });
        let value = match Json::<Value>::from_request(req, state).await {
            Ok(Json(v)) => v,
            Err(rej) => {
                return Err(match &rej {
                    JsonRejection::MissingJsonContentType(_) => ApiError::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        "expected a JSON body with Content-Type: application/json",
                    ),
                    JsonRejection::BytesRejection(_)
                        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE =>
                    {
                        too_large()
                    }
                    _ => ApiError::bad_request("malformed_json", rej.body_text()),
                });
            }
        };
        super::input::check_json(&value)?;
        serde_path_to_error::deserialize(value)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = if path == "." {
                    format!(
                        "Failed to deserialize the JSON body into the target type: {}",
                        e.inner()
                    )
                } else {
                    format!(
                        "Failed to deserialize the JSON body into the target type: {path}: {}",
                        e.inner()
                    )
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", message)
            })
    }
}

impl From<crate::control::ControlError> for ApiError {
    fn from(e: crate::control::ControlError) -> Self {
        use crate::control::ControlError as C;
        match e {
            C::UnknownTheme(t) => ApiError::invalid(
                "theme",
                "unknown_theme",
                format!("theme: unknown theme '{t}'"),
            ),
            C::DisabledTheme(t) => ApiError::invalid(
                "theme",
                "theme_disabled",
                format!("theme: theme '{t}' is disabled and cannot be chosen"),
            ),
            C::UnknownPlan(p) => {
                ApiError::invalid("plan", "unknown_plan", format!("plan: unknown plan '{p}'"))
            }
            C::Invalid { field, error } => ApiError::field(field, error),
            C::Store(s) => s.into(),
            C::Import(i) => {
                let code = match &i {
                    crate::import::ImportError::UnknownFormat { .. } => "unknown_format",
                    crate::import::ImportError::Empty => "empty_file",
                    crate::import::ImportError::NotUtf8 { .. } => "not_utf8",
                    crate::import::ImportError::MissingColumn(_) => "missing_column",
                    crate::import::ImportError::Nul { .. } => "invalid_character",
                    _ => "malformed_csv",
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, i.to_string())
                    .with_details(json!({ "field": "file" }))
            }
            C::Interrupted(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "interrupted",
                format!("interrupted: {m}"),
            ),
        }
    }
}

impl From<crate::store::access::TeamError> for ApiError {
    fn from(e: crate::store::access::TeamError) -> Self {
        use crate::store::access::TeamError as T;
        let msg = e.to_string();
        match e {
            T::LastOwner => ApiError::new(StatusCode::CONFLICT, "last_owner", msg),
            T::SeatLimit(n) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "seat_limit_reached", msg)
                    .with_details(json!({ "max_seats": n }))
            }
            T::UnknownRole(_) => ApiError::invalid("role", "unknown_role", msg),
            T::AlreadyMember(_) => ApiError::new(StatusCode::CONFLICT, "already_member", msg)
                .with_details(json!({ "field": "email" })),
            T::RoleInUse(_) => ApiError::new(StatusCode::CONFLICT, "role_in_use", msg),
            T::SystemRole => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "system_role", msg),
            T::Store(s) => s.into(),
        }
    }
}

impl From<crate::store::orders::OrderError> for ApiError {
    fn from(e: crate::store::orders::OrderError) -> Self {
        use crate::store::orders::OrderError as O;
        match e {
            O::Invalid {
                field,
                code,
                message,
            } => ApiError::invalid(&field, code, message),
            O::InvalidState(msg) => ApiError::new(StatusCode::CONFLICT, "invalid_state", msg),
            O::NotFound(what) => ApiError::not_found(what),
            O::Store(s) => s.into(),
        }
    }
}

impl From<crate::store::access::InvitationError> for ApiError {
    fn from(e: crate::store::access::InvitationError) -> Self {
        use crate::store::access::InvitationError as I;
        let msg = e.to_string();
        match e {
            I::Invalid => ApiError::bad_request("invalid_invitation", msg),
            I::Expired => ApiError::new(StatusCode::GONE, "invitation_expired", msg),
            I::Used => ApiError::new(StatusCode::GONE, "invitation_used", msg),
            I::Revoked => ApiError::new(StatusCode::GONE, "invitation_revoked", msg),
            I::WrongUser => ApiError::forbidden(msg),
            I::AccountExists => ApiError::new(StatusCode::CONFLICT, "account_exists", msg),
            I::Store(s) => s.into(),
        }
    }
}
