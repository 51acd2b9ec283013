use crate::helpers::spawn_app;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn healthz_reports_ok() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "ok");
}

#[tokio::test]
async fn openapi_document_lists_every_api_route() {
    let app = spawn_app().await;
    let v: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        v["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        v["openapi"]
    );
    let paths = v["paths"].as_object().unwrap();
    for p in [
        "/api/v1/admin/merchants",
        "/api/v1/admin/merchants/{id}/activate",
        "/api/v1/admin/merchants/{id}/provisioning",
        "/api/v1/admin/merchants/{id}/provisioning/retry",
        "/api/v1/auth/login",
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/store/products",
        "/api/v1/store/products/{handle}",
        "/api/v1/imports/products",
        "/api/v1/admin/imports/vendors",
        "/healthz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "missing {p} in OpenAPI");
    }
}

#[tokio::test]
async fn metrics_expose_http_and_provisioning_series() {
    let app = spawn_app().await;
    app.provisioned_merchant("metrics-shop").await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("souk_http_requests_total"), "{text}");
    assert!(
        text.contains("souk_provisioning_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("souk_provisioning_total"), "{text}");
}

#[tokio::test]
async fn unknown_api_route_is_json_404() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "route_not_found");
}
