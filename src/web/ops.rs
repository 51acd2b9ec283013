//! Operations endpoints: health and Prometheus metrics.

use super::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn routes(r: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    r.routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics_text))
}

/// Liveness: 200 `{"status":"ok"}` while the process serves requests. It never touches the
/// database (a liveness probe that fails with the database would restart every node during
/// a database outage); database reachability and storage outages are [`readyz`]'s.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200)))]
async fn healthz() -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        r#"{"status":"ok"}"#,
    )
        .into_response()
}

/// Readiness: 200 `{"status":"ready", "storage": {…}}` when the database answers and no
/// storage outage is unresolved; 503 `{"status":"degraded", "reason": "storage_full" |
/// "storage_unavailable", "storage": {…}}` (with `Retry-After`) from the first write that
/// failed for lack of space or an unreachable database until a write succeeds again. A load
/// balancer should stop sending writes to a degraded node; `/healthz` (liveness) stays 200
/// while the process itself is fine. `storage` carries the error counters and
/// `degraded_since_micros`.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200), (status = 503)))]
async fn readyz(State(st): State<AppState>) -> Response {
    if let Err(e) = st.db.ping().await {
        st.db.health().observe(e);
    }
    let report = st.db.health().report();
    match report.degraded {
        None => {
            axum::Json(serde_json::json!({ "status": "ready", "storage": report })).into_response()
        }
        Some(kind) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            axum::Json(serde_json::json!({
                "status": "degraded",
                "reason": format!("storage_{kind}"),
                "storage": report,
            })),
        )
            .into_response(),
    }
}

/// Prometheus text exposition: provisioning durations and outcomes, HTTP requests by route.
#[utoipa::path(get, path = "/metrics", tag = "ops", responses((status = 200, content_type = "text/plain")))]
async fn metrics_text(State(st): State<AppState>) -> Response {
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}
