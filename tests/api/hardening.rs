//! Issue 12 item 6: suspended merchants are read-only, NUL and over-long text are refused
//! with a 422 naming the field (both databases), unusable `next=` falls back, refused
//! requests close their connection explicitly, storefronts refuse foreign framing, and
//! the OpenAPI document declares its parameters where they are.

use crate::helpers::{TestApp, spawn_app};
use crate::ui::{Browser, location};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn product(title: &str) -> Value {
    json!({ "title": title, "status": "active", "variants": [{ "sku": format!("SKU-{}", title.len()), "price": "9.50" }] })
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = app.with_token(method, path, token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn suspended_merchants_read_but_members_and_keys_cannot_write() {
    let app = spawn_app().await;
    let (id, owner) = app.provisioned_merchant("frozen").await;
    let (s, key) = send(
        &app,
        Method::POST,
        "/api/v1/api-keys",
        &owner,
        Some(json!({ "name": "ERP", "kind": "secret", "role": "editor" })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().expect("key").to_string();
    let (s, p) = send(
        &app,
        Method::POST,
        "/api/v1/products",
        &owner,
        Some(product("Before")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    let r = app
        .admin_post(&format!("/api/v1/admin/merchants/{id}/suspend"), json!({}))
        .await;
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );

    for token in [&owner, &key] {
        let (s, v) = send(
            &app,
            Method::POST,
            "/api/v1/products",
            token,
            Some(product("During!")),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        assert_eq!(v["error"]["code"], "merchant_suspended", "{v}");
        let (s, v) = send(
            &app,
            Method::DELETE,
            &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
            token,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
        // Reads (and exports) still work.
        let (s, v) = send(&app, Method::GET, "/api/v1/products", token, None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
        let (s, _) = send(&app, Method::GET, "/api/v1/orders", token, None).await;
        assert_eq!(s, StatusCode::OK);
    }
    // Platform staff still act: reactivation opens writes again.
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/reactivate"),
            json!({}),
        )
        .await;
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    let (s, v) = send(
        &app,
        Method::POST,
        "/api/v1/products",
        &owner,
        Some(product("After!!!!")),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn nul_characters_are_a_422_naming_the_field() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("nulls").await;
    let mut nested = product("Fine");
    nested["variants"][0]["sku"] = json!("A\u{0}B");
    for (body, field) in [
        (product("Bad\u{0}Title"), "title"),
        (nested, "variants[0].sku"),
    ] {
        let (s, v) = send(&app, Method::POST, "/api/v1/products", &owner, Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["code"], "invalid_character", "{v}");
        assert_eq!(v["error"]["details"]["field"], field, "{v}");
    }
    // Sign-in and admin bodies too.
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": "a\u{0}@b.example", "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["details"]["field"], "email", "{v}");
    // Query parameters.
    for path in [
        "/api/v1/products?q=a%00b",
        "/api/v1/admin/merchants?q=%00",
        "/api/v1/audit-log?action=x%00",
    ] {
        let token = if path.contains("admin") {
            app.admin_token.clone()
        } else {
            owner.clone()
        };
        let (s, v) = send(&app, Method::GET, path, &token, None).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {v}");
        assert_eq!(v["error"]["code"], "invalid_character", "{v}");
        let name = path
            .split('?')
            .nth(1)
            .and_then(|q| q.split('=').next())
            .unwrap();
        assert_eq!(v["error"]["details"]["field"], name, "{v}");
    }
    // A path segment.
    let r = app
        .client
        .get(app.url("/s/nulls/api/v1/store/products/a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // CSV uploads, previewed, imported at once or in the background.
    for q in ["", "?dry_run=true", "?background=true"] {
        let r = app
            .client
            .post(app.url(&format!("/api/v1/imports/products{q}")))
            .bearer_auth(&owner)
            .header("content-type", "text/csv")
            .body("Handle,Title,Variant Price\nok,Fine,1.00\nnul,Bad\u{0}Title,1.00\n")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_character", "{v}");
        assert_eq!(v["error"]["details"]["field"], "file", "{v}");
    }
    // Nothing was stored.
    let (_, v) = send(&app, Method::GET, "/api/v1/products", &owner, None).await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(0), "{v}");
}

#[tokio::test]
async fn text_fields_and_json_bodies_have_limits() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("limits").await;
    let mut long_html = product("Long");
    long_html["body_html"] = json!("x".repeat(70_000));
    let mut long_vendor = product("Vendor");
    long_vendor["vendor"] = json!("v".repeat(256));
    for (body, field) in [(long_html, "body_html"), (long_vendor, "vendor")] {
        let (s, v) = send(&app, Method::POST, "/api/v1/products", &owner, Some(body)).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["error"]["code"], "too_long", "{v}");
        assert_eq!(v["error"]["details"]["field"], field, "{v}");
    }
    // 60 KiB of body_html is within its limit.
    let mut ok = product("Within");
    ok["body_html"] = json!("<p>".to_string() + &"y".repeat(60_000) + "</p>");
    let (s, v) = send(&app, Method::POST, "/api/v1/products", &owner, Some(ok)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // A JSON body over 2 MiB is a 413 JSON error.
    let mut huge = product("Huge");
    huge["body_html"] = json!("z".repeat(3 * 1024 * 1024));
    let (s, v) = send(&app, Method::POST, "/api/v1/products", &owner, Some(huge)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large", "{v}");
}

#[tokio::test]
async fn unusable_next_falls_back_to_the_dashboard_home() {
    let app = spawn_app().await;
    let (_, _owner) = app.provisioned_merchant("nextstore").await;
    let b = Browser::new(&app);
    for next in [
        "/dashboard%0d%0aSet-Cookie:x=1",
        "/dashboard/weird%00",
        "/dashboard%0a",
    ] {
        let (s, html) = b.get(&format!("/dashboard/login?next={next}")).await;
        assert_eq!(s, StatusCode::OK, "{next}");
        assert!(
            !html.contains("x=1") && !html.contains("weird"),
            "{next}: {html}"
        );
    }
    for next in [
        "/dashboard\r\nSet-Cookie: x=1",
        "/dashboard/products\0",
        "/dashboard\n",
    ] {
        let r = b
            .post_form(
                "/dashboard/login",
                &[
                    ("email", "owner@nextstore.example"),
                    ("password", "owner-password-1"),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        let to = location(&r);
        assert!(
            to == "/dashboard" || to == "/dashboard/onboarding",
            "{next:?} → {to}"
        );
    }
}

/// Sends one raw HTTP/1.1 request and returns the response head (lowercased).
async fn raw_head(port: u16, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).to_lowercase()
}

#[tokio::test]
async fn refused_requests_with_an_unread_body_close_the_connection() {
    let app = spawn_app().await;
    let body = "x".repeat(4000);
    for (path, auth) in [
        ("/api/v1/products", ""),
        ("/api/v1/admin/merchants", "authorization: Bearer nope\r\n"),
    ] {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n{auth}content-length: {}\r\n\r\n{body}",
            body.len()
        );
        let head = raw_head(app.port, req.as_bytes()).await;
        assert!(head.starts_with("http/1.1 401"), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
    }
    // A body that was read keeps the connection open.
    let login = r#"{"email":"nobody@x.example","password":"wrong-password"}"#;
    let req = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{login}",
        login.len()
    );
    let head = raw_head(app.port, req.as_bytes()).await;
    assert!(!head.contains("connection: close"), "{head}");
}

#[tokio::test]
async fn storefront_pages_refuse_foreign_framing() {
    let app = spawn_app().await;
    app.provisioned_merchant("framed").await;
    for path in ["/s/framed/", "/s/framed/products", "/s/framed/no-such-page"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        let csp = r
            .headers()
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(
            csp.contains("frame-ancestors 'self' http://localhost:"),
            "{path}: {csp:?}"
        );
    }
    let r = app
        .on_host(Method::GET, "framed.localhost", "/")
        .send()
        .await
        .unwrap();
    let csp = r
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(csp.starts_with("frame-ancestors 'self'"), "{csp:?}");
    // The dashboard keeps its stricter rule.
    let r = app
        .client
        .get(app.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("x-frame-options")
            .and_then(|v| v.to_str().ok()),
        Some("DENY")
    );
}

#[tokio::test]
async fn openapi_parameters_are_declared_where_they_are() {
    let app = spawn_app().await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut problems = vec![];
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            let params: Vec<(&str, &str)> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or(""),
                        p["in"].as_str().unwrap_or(""),
                    )
                })
                .collect();
            for name in &in_path {
                if !params.contains(&(name, "path")) {
                    problems.push(format!("{method} {path}: {{{name}}} not declared in: path"));
                }
            }
            for (name, loc) in &params {
                if *loc == "path" && !in_path.contains(name) {
                    problems.push(format!(
                        "{method} {path}: path parameter {name} is not in the path"
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Errors axum answers itself (an id that is no UUID, a query that does not parse) are
    // the documented JSON error body, as schemathesis checks.
    for path in [
        "/api/v1/admin/merchants/not-a-uuid",
        "/api/v1/admin/merchants?page=x",
    ] {
        let r = app.admin_get(path).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{path}");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("application/json"), "{path}: {ct}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    }
    assert!(doc["paths"]["/api/v1/products/{id}"]["get"]["responses"]["default"].is_object());
}
