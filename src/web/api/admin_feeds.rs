//! Platform admin: system-wide marketplace feed monitoring and the mass trigger.

use crate::access::platform_perm;
use crate::store::platform::{self, FeedMonitorRow, FeedSourceFilter};
use crate::web::AppState;
use crate::web::context::Platform;
use crate::web::error::{ApiError, ApiJson, ApiResult, ErrorBody};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(monitor)).routes(routes!(trigger))
}

/// Filters of the monitor and the trigger.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams, utoipa::ToSchema)]
#[into_params(parameter_in = Query)]
pub struct MonitorQuery {
    /// Last outcome: `never`, `ok`, `not_modified` or `failed`.
    pub status: Option<String>,
    /// `letzshop`, `google_merchant` or `generic`.
    pub marketplace: Option<String>,
    pub merchant_id: Option<Uuid>,
}

fn filter(q: &MonitorQuery) -> Result<FeedSourceFilter, ApiError> {
    if let Some(s) = &q.status
        && !matches!(s.as_str(), "never" | "ok" | "not_modified" | "failed")
    {
        return Err(ApiError::invalid(
            "status",
            "invalid_status",
            "status must be never, ok, not_modified or failed",
        ));
    }
    if let Some(m) = &q.marketplace
        && !matches!(m.as_str(), "letzshop" | "google_merchant" | "generic")
    {
        return Err(ApiError::invalid(
            "marketplace",
            "invalid_marketplace",
            "marketplace must be letzshop, google_merchant or generic",
        ));
    }
    Ok(FeedSourceFilter {
        status: q.status.clone(),
        marketplace: q.marketplace.clone(),
        merchant_id: q.merchant_id,
    })
}

/// Every store's feed sources: last run, status, counts and error; failed ones first (at
/// most 500).
#[utoipa::path(get, path = "/api/v1/admin/marketplace/import-jobs", tag = "admin", security(("bearer" = ["platform.merchants.view"])),
    params(MonitorQuery),
    responses((status = 200, body = Vec<FeedMonitorRow>), (status = 422, body = ErrorBody)))]
async fn monitor(
    State(st): State<AppState>,
    _admin: Platform<platform_perm::MerchantsView>,
    Query(q): Query<MonitorQuery>,
) -> ApiResult<Json<Vec<FeedMonitorRow>>> {
    Ok(Json(
        platform::feed_monitor(&st.db, &filter(&q)?, 500).await?,
    ))
}

/// How many fetches a trigger queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Triggered {
    pub queued: usize,
}

/// Queue a fetch of every enabled source matching the filter (all when empty); the job
/// workers run them. 202 with the number queued.
#[utoipa::path(post, path = "/api/v1/admin/marketplace/import-jobs/trigger", tag = "admin", security(("bearer" = ["platform.merchants.manage"])),
    request_body = MonitorQuery,
    responses((status = 202, body = Triggered), (status = 422, body = ErrorBody)))]
async fn trigger(
    State(st): State<AppState>,
    admin: Platform<platform_perm::MerchantsManage>,
    ApiJson(q): ApiJson<MonitorQuery>,
) -> ApiResult<(StatusCode, Json<Triggered>)> {
    let queued = platform::trigger_feed_fetches(&st.db, &admin.actor, &filter(&q)?).await?;
    st.provisioner.wake();
    Ok((StatusCode::ACCEPTED, Json(Triggered { queued })))
}
