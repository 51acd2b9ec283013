//! Permissions: every route refuses a caller who lacks the permission it declares (read
//! from the OpenAPI document, so declaration and enforcement cannot drift), Viewers are
//! refused on every mutating route, and docs/permissions.md matches the routes.

use crate::helpers::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// `(method, path, required permission)` of every bearer-secured operation; the
/// permission is `""` for routes open to any signed-in member.
async fn secured_routes(app: &TestApp) -> Vec<(String, String, String)> {
    routes(app, false).await
}

/// Like [`secured_routes`]; with `public`, unsecured operations too (permission `"public"`).
async fn routes(app: &TestApp, public: bool) -> Vec<(String, String, String)> {
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = vec![];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let Some(sec) = op["security"].as_array() else {
                if public {
                    out.push((method.to_uppercase(), path.clone(), "public".to_string()));
                }
                continue;
            };
            let scope = sec
                .iter()
                .find_map(|s| s["bearer"].as_array())
                .and_then(|a| a.first())
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            out.push((method.to_uppercase(), path.clone(), scope));
        }
    }
    out.sort();
    out
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "0195a3c2-0000-7000-8000-000000000001")
        .replace("{user_id}", "0195a3c2-0000-7000-8000-000000000002")
        .replace("{key}", "some-role")
        .replace("{handle}", "some-handle")
}

async fn call(app: &TestApp, method: &str, path: &str, token: &str) -> (StatusCode, Value) {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = app.with_token(m.clone(), &concrete(path), token);
    if m != Method::GET && m != Method::DELETE {
        req = req.json(&json!({}));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    if status.is_success() && path.ends_with("/stream") {
        // An event stream never ends; its status is the answer.
        return (status, Value::Null);
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

const ALL: &[&str] = &[
    "team.manage",
    "team.invite",
    "team.remove",
    "team.view",
    "products.create",
    "products.edit",
    "products.delete",
    "products.view",
    "orders.create",
    "orders.edit",
    "orders.view",
    "imports.trigger",
    "imports.view",
    "imports.configure",
    "settings.edit",
    "analytics.view",
];

#[tokio::test]
async fn every_route_refuses_a_caller_without_its_declared_permission() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("perms").await;
    let (member_id, member) = app
        .add_member(&owner, "staff@perms.example", "viewer")
        .await;
    let routes = secured_routes(&app).await;
    let merchant_scopes: std::collections::BTreeSet<String> = routes
        .iter()
        .map(|r| r.2.clone())
        .filter(|s| !s.is_empty() && !s.starts_with("platform."))
        .collect();
    assert!(merchant_scopes.len() >= 8, "{merchant_scopes:?}");
    let mut checked = 0;
    for scope in &merchant_scopes {
        // A role with everything but `scope` (and the `.manage` that would imply it).
        let manage = format!("{}.manage", scope.split('.').next().unwrap());
        let perms: Vec<&str> = ALL
            .iter()
            .copied()
            .filter(|p| *p != scope && (scope.ends_with(".manage") || *p != manage))
            .collect();
        let key = format!("no_{}", scope.replace('.', "_"));
        let r = app
            .with_token(Method::POST, "/api/v1/roles", &owner)
            .json(&json!({ "name": key, "key": key, "permissions": perms }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
        let r = app
            .with_token(
                Method::PATCH,
                &format!("/api/v1/team/members/{member_id}"),
                &owner,
            )
            .json(&json!({ "role": key }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        for (method, path, s) in routes.iter().filter(|r| &r.2 == scope) {
            let (status, body) = call(&app, method, path, &member).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} without {s}: {body}"
            );
            assert_eq!(
                body["error"]["code"], "permission_denied",
                "{method} {path}"
            );
            assert_eq!(
                body["error"]["details"]["required"],
                s.as_str(),
                "{method} {path}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} routes checked");

    // Platform routes: support staff may read but not change.
    souk::demo::create_staff(
        &app.db,
        "support@test.example",
        "Support",
        Some("support-password-1".into()),
        souk::access::PlatformRole::Support,
    )
    .await
    .unwrap();
    let support = app
        .login("support@test.example", "support-password-1")
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for (method, path, scope) in routes.iter().filter(|r| r.2.starts_with("platform.")) {
        let (status, body) = call(&app, method, path, &support).await;
        if scope.ends_with(".view") {
            assert_ne!(
                status,
                StatusCode::FORBIDDEN,
                "support on {method} {path}: {body}"
            );
        } else {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "support on {method} {path}: {body}"
            );
            assert_eq!(body["error"]["details"]["required"], scope.as_str());
        }
    }
    // A merchant owner is not platform staff.
    let (status, _) = call(&app, "GET", "/api/v1/admin/merchants", &owner).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_viewer_is_refused_on_every_mutating_route() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("viewer").await;
    let (_, viewer) = app
        .add_member(&owner, "viewer@viewer.example", "viewer")
        .await;
    let mut n = 0;
    for (method, path, scope) in secured_routes(&app).await {
        if method == "GET" || scope.is_empty() || scope.starts_with("platform.") {
            continue;
        }
        let (status, body) = call(&app, &method, &path, &viewer).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "viewer on {method} {path}: {body}"
        );
        n += 1;
    }
    assert!(n >= 15, "only {n} mutating routes");
    // Reads still work.
    let (status, _) = call(&app, "GET", "/api/v1/products", &viewer).await;
    assert_eq!(status, StatusCode::OK);
}

/// The route → permission table in docs/permissions.md is generated from the routes.
/// Regenerate with `SOUK_BLESS=1 cargo test permissions_doc`.
#[tokio::test]
async fn permissions_doc_matches_the_routes() {
    let app = spawn_app().await;
    let mut table = String::from(
        "# Route permissions\n\nGenerated from the route list by `tests/api/access.rs` (`SOUK_BLESS=1 cargo test permissions_doc` rewrites it; the test fails when it drifts).\n\n\
         `platform.*` permissions belong to platform staff (super admin: all; support: the `.view` ones). \
         \"public\" routes need no credentials (the Store API resolves the store from the host, the path or a publishable key). \"any member\" routes need a token acting for the tenant but no particular permission; \"signed in\" needs any valid token.\n\n\
         | Method | Path | Permission |\n|---|---|---|\n",
    );
    for (method, path, scope) in routes(&app, true).await {
        let who = if scope == "public" {
            "public".to_string()
        } else if !scope.is_empty() {
            format!("`{scope}`")
        } else if path.starts_with("/api/v1/auth/") {
            "signed in".to_string()
        } else {
            "any member".to_string()
        };
        table.push_str(&format!("| {method} | `{path}` | {who} |\n"));
    }
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/permissions.md");
    if std::env::var("SOUK_BLESS").is_ok() {
        std::fs::write(&file, &table).unwrap();
    }
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(
        current, table,
        "docs/permissions.md is stale: run SOUK_BLESS=1 cargo test permissions_doc"
    );
}
