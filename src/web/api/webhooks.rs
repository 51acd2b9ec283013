//! Webhook endpoints API: `/api/v1/webhook-endpoints` (needs `settings.edit`).
//!
//! Endpoints receive the tenant's events as Standard Webhooks deliveries (see
//! `crate::webhooks`). The signing secret (`whsec_…`) is returned once, on create and on
//! rotation.

use super::{ListResponse, PageQuery, Pagination, opt_text};
use crate::access::perm;
use crate::store::webhooks::{Delivery, DeliveryDetail, Endpoint, EndpointInput, EndpointPatch};
use crate::web::AppState;
use crate::web::context::Authorized;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use crate::webhooks::signature::SigningSecret;
use crate::webhooks::target::{EndpointUrl, check_resolves};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(redeliver_one))
        .routes(routes!(redeliver_failed))
}

/// Event types an endpoint can subscribe to (plus `resource.*` and `*`).
pub const EVENT_TYPES: &[&str] = &[
    "merchant.provisioning_updated",
    "merchant.activated",
    "product.created",
    "product.updated",
    "product.deleted",
    "order.created",
    "order.updated",
    "order.fulfilled",
    "order.cancelled",
    "order.refunded",
    "payment.received",
    "support_ticket.created",
    "support_ticket.updated",
    "member.joined",
    "import.completed",
    "feed.import.completed",
    "feed.item.changed",
    "feed_source.created",
];

/// Checks event types: 1–50 entries, each a known type, `resource.*` of a known
/// resource, or `*`. Errors name the offending entry.
pub fn parse_event_types(types: Vec<String>) -> ApiResult<Vec<String>> {
    if types.is_empty() {
        return Err(ApiError::invalid(
            "event_types",
            "required",
            "event_types needs at least one type (or \"*\" for all)",
        ));
    }
    if types.len() > 50 {
        return Err(ApiError::invalid(
            "event_types",
            "too_many",
            "event_types: at most 50 entries",
        ));
    }
    let mut out: Vec<String> = vec![];
    for (i, t) in types.into_iter().enumerate() {
        let t = t.trim().to_string();
        let known = t == "*"
            || EVENT_TYPES.contains(&t.as_str())
            || t.strip_suffix(".*")
                .is_some_and(|r| EVENT_TYPES.iter().any(|k| k.split('.').next() == Some(r)));
        if !known {
            return Err(ApiError::invalid(
                &format!("event_types[{i}]"),
                "unknown_event_type",
                format!(
                    "unknown event type '{}'; known: {}, a resource pattern like order.*, or *",
                    t.chars().take(100).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

async fn parse_url(st: &AppState, raw: &str) -> ApiResult<String> {
    let allow = st.webhooks.allow_private;
    let url =
        EndpointUrl::parse(raw, allow).map_err(|m| ApiError::invalid("url", "invalid_url", m))?;
    check_resolves(&url, allow)
        .await
        .map_err(|m| ApiError::invalid("url", "forbidden_target", m))?;
    Ok(url.as_str().to_string())
}

/// A new signing secret: the text shown once and the sealed form stored.
struct NewSecret {
    text: String,
    sealed: String,
}

fn new_sealed_secret(st: &AppState) -> ApiResult<NewSecret> {
    let text = SigningSecret::generate()
        .map_err(|_| ApiError::internal())?
        .to_text();
    let sealed = st
        .secret_box
        .seal(&text)
        .map_err(|_| ApiError::internal())?;
    Ok(NewSecret { text, sealed })
}

/// Body of endpoint creation.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointBody {
    /// `https://…`; must not resolve to a loopback, private, link-local or metadata address.
    pub url: String,
    pub description: Option<String>,
    /// Event types (`order.created`), resource patterns (`order.*`) or `*`.
    pub event_types: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// An endpoint with its signing secret (only in the create and rotate responses).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_` + base64 of 32 random bytes. Shown once: store it now.
    pub secret: String,
}

/// Register a webhook endpoint. The response carries the signing secret, once.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    request_body = CreateEndpointBody,
    responses((status = 201, body = EndpointWithSecret), (status = 422, body = ErrorBody)))]
async fn create_endpoint(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    ApiJson(b): ApiJson<CreateEndpointBody>,
) -> ApiResult<(StatusCode, Json<EndpointWithSecret>)> {
    // Cheap checks first; the URL check may resolve the host.
    let description = opt_text("description", b.description, 500)?;
    let event_types = parse_event_types(b.event_types)?;
    let input = EndpointInput {
        url: parse_url(&st, &b.url).await?,
        description,
        event_types,
        enabled: b.enabled.unwrap_or(true),
    };
    if m.scope.count_webhook_endpoints().await? >= 20 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "endpoint_limit_reached",
            "a store has at most 20 webhook endpoints",
        ));
    }
    let secret = new_sealed_secret(&st)?;
    let endpoint = m
        .scope
        .create_webhook_endpoint(&m.actor, &input, &secret.sealed)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointWithSecret {
            endpoint,
            secret: secret.text,
        }),
    ))
}

/// List the store's webhook endpoints.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    params(PageQuery), responses((status = 200, body = ListResponse<Endpoint>)))]
async fn list_endpoints(
    m: Authorized<perm::SettingsEdit>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<ListResponse<Endpoint>>> {
    let (limit, offset, page) = q.resolve(20)?;
    let (data, total) = m.scope.list_webhook_endpoints(limit, offset).await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// Get one webhook endpoint (without its secret).
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody)))]
async fn get_endpoint(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Endpoint>> {
    m.scope
        .get_webhook_endpoint(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

/// Body of an endpoint update; omitted fields are kept.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointBody {
    pub url: Option<String>,
    /// An empty string clears it.
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `true` re-enables an endpoint Souk disabled (and clears its failure run).
    pub enabled: Option<bool>,
}

/// Update a webhook endpoint.
#[utoipa::path(patch, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    request_body = UpdateEndpointBody,
    responses((status = 200, body = Endpoint), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_endpoint(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<UpdateEndpointBody>,
) -> ApiResult<Json<Endpoint>> {
    let patch = EndpointPatch {
        url: match b.url {
            Some(u) => Some(parse_url(&st, &u).await?),
            None => None,
        },
        description: match b.description {
            Some(d) => Some(opt_text("description", Some(d), 500)?),
            None => None,
        },
        event_types: b.event_types.map(parse_event_types).transpose()?,
        enabled: b.enabled,
    };
    let e = m
        .scope
        .update_webhook_endpoint(&m.actor, id, &patch)
        .await?;
    Ok(Json(e))
}

/// Delete a webhook endpoint with its delivery log.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_endpoint(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    m.scope.delete_webhook_endpoint(&m.actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a secret rotation.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the current secret keeps signing beside the new one, 0–604800 seconds
    /// (default 86400).
    pub overlap_seconds: Option<i64>,
}

/// Rotate the signing secret. During the overlap window every delivery carries two
/// signatures (new and old), so receivers can switch without losing a delivery.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    request_body = RotateBody,
    responses((status = 200, body = EndpointWithSecret), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rotate_secret(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<Json<EndpointWithSecret>> {
    let b: RotateBody = if body.iter().all(|c| c.is_ascii_whitespace()) {
        RotateBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("request body: {e}")))?
    };
    let overlap = b
        .overlap_seconds
        .unwrap_or(st.webhooks.rotation_overlap.as_secs() as i64);
    if !(0..=604_800).contains(&overlap) {
        return Err(ApiError::invalid(
            "overlap_seconds",
            "out_of_range",
            "overlap_seconds must be between 0 and 604800 (7 days)",
        ));
    }
    let secret = new_sealed_secret(&st)?;
    let until = crate::store::now_micros() + overlap * 1_000_000;
    let endpoint = m
        .scope
        .rotate_webhook_secret(&m.actor, id, &secret.sealed, until)
        .await?;
    Ok(Json(EndpointWithSecret {
        endpoint,
        secret: secret.text,
    }))
}

/// Filters of the delivery list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// `pending`, `succeeded` or `failed`.
    pub status: Option<String>,
    pub page: Option<i64>,
    pub per_page: Option<i64>,
}

/// List an endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    params(DeliveryQuery),
    responses((status = 200, body = ListResponse<Delivery>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn list_deliveries(
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveryQuery>,
) -> ApiResult<Json<ListResponse<Delivery>>> {
    let (limit, offset, page) = PageQuery {
        page: q.page,
        per_page: q.per_page,
    }
    .resolve(20)?;
    if let Some(s) = &q.status
        && !["pending", "succeeded", "failed"].contains(&s.as_str())
    {
        return Err(ApiError::invalid(
            "status",
            "invalid_status",
            "status must be pending, succeeded or failed",
        ));
    }
    if m.scope.get_webhook_endpoint(id).await?.is_none() {
        return Err(ApiError::not_found("webhook endpoint"));
    }
    let (data, total) = m
        .scope
        .list_webhook_deliveries(id, q.status.as_deref(), limit, offset)
        .await?;
    Ok(Json(ListResponse {
        data,
        pagination: Pagination::new(page, limit, total),
    }))
}

/// One delivery with its request body and every attempt (status, response excerpt,
/// duration, error).
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{id}/deliveries/{delivery_id}", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    responses((status = 200, body = DeliveryDetail), (status = 404, body = ErrorBody)))]
async fn get_delivery(
    m: Authorized<perm::SettingsEdit>,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DeliveryDetail>> {
    m.scope
        .get_webhook_delivery(id, delivery_id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("delivery"))
}

/// How many deliveries were queued again.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redelivered {
    pub queued: u64,
}

/// Send one delivery again now (same `webhook-id`, fresh retry schedule).
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    responses((status = 202, body = Redelivered), (status = 404, body = ErrorBody)))]
async fn redeliver_one(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path((id, delivery_id)): Path<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, Json<Redelivered>)> {
    let queued = m
        .scope
        .redeliver_webhooks(&m.actor, id, Some(delivery_id), None)
        .await?;
    st.bus.webhooks.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Redelivered { queued })))
}

/// Body of a bulk redelivery.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedeliverBody {
    /// RFC 3339: redeliver every failed delivery created at or after this time.
    pub since: String,
}

/// Send every failed delivery since a time again.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{id}/redeliver", tag = "webhooks", security(("bearer" = ["settings.edit"])),
    request_body = RedeliverBody,
    responses((status = 202, body = Redelivered), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn redeliver_failed(
    State(st): State<AppState>,
    m: Authorized<perm::SettingsEdit>,
    Path(id): Path<Uuid>,
    ApiJson(b): ApiJson<RedeliverBody>,
) -> ApiResult<(StatusCode, Json<Redelivered>)> {
    let since = time::OffsetDateTime::parse(
        b.since.trim(),
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| {
        ApiError::invalid(
            "since",
            "invalid_time",
            "since must be an RFC 3339 time, e.g. 2026-11-20T00:00:00Z",
        )
    })?;
    let micros = (since.unix_timestamp_nanos() / 1000) as i64;
    let queued = m
        .scope
        .redeliver_webhooks(&m.actor, id, None, Some(micros))
        .await?;
    st.bus.webhooks.notify_one();
    Ok((StatusCode::ACCEPTED, Json(Redelivered { queued })))
}
