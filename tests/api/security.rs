//! API keys, the audit log, sign-in throttling, password reset and change, token
//! tampering, isolation as every role, and PostgreSQL row-level security.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    let r = app
        .with_token(Method::GET, path, token)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn create_product(app: &TestApp, token: &str, title: &str) -> (StatusCode, Value) {
    let r = app
        .with_token(Method::POST, "/api/v1/products", token)
        .json(&json!({ "title": title, "status": "active", "variants": [{ "sku": title.to_uppercase().replace(' ', "-"), "price": "9.50" }] }))
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn new_key(app: &TestApp, owner: &str, body: Value) -> Value {
    let r = app
        .with_token(Method::POST, "/api/v1/api-keys", owner)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn secret_keys_act_with_their_role_in_their_own_tenant_only() {
    let app = spawn_app().await;
    let (a_id, owner_a) = app.provisioned_merchant("keya").await;
    let (b_id, _) = app.provisioned_merchant("keyb").await;
    let created = new_key(
        &app,
        &owner_a,
        json!({ "name": "ERP sync", "kind": "secret", "role": "editor" }),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk_live_") && key.len() >= 40, "{key}");
    let id = created["api_key"]["id"].as_str().unwrap().to_string();
    // The key is never listed again, only its prefix.
    let (_, list) = get(&app, "/api/v1/api-keys", &owner_a).await;
    let listed = list.to_string();
    assert!(
        !listed.contains(&key) && listed.contains(&key[..12]),
        "{listed}"
    );

    let (s, p) = create_product(&app, &key, "Key Made").await;
    assert_eq!(s, StatusCode::CREATED, "{p}");
    // Editors cannot delete products, nor can the key.
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/products/{}", p["id"].as_str().unwrap()),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another tenant named in X-Tenant-ID: refused.
    let r = app
        .with_token(Method::GET, "/api/v1/products", &key)
        .header("X-Tenant-ID", &b_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .with_token(Method::GET, "/api/v1/products", &key)
        .header("X-Tenant-ID", &a_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Last use is recorded; the audit log names the key.
    let (_, list) = get(&app, "/api/v1/api-keys", &owner_a).await;
    assert!(list[0]["last_used_at"].is_string(), "{list}");
    let (_, log) = get(&app, "/api/v1/audit-log?action=product.created", &owner_a).await;
    assert_eq!(log["data"][0]["actor_type"], "api_key");
    assert_eq!(log["data"][0]["actor_id"], id.as_str());
    // The tenant's log filters on a part of the key's label, and on a prefix with `_`.
    let (_, log) = get(&app, "/api/v1/audit-log?actor=erp%20SYNC", &owner_a).await;
    assert_eq!(log["data"][0]["actor_id"], id.as_str(), "{log}");
    let (_, log) = get(&app, "/api/v1/audit-log?action=api_key.", &owner_a).await;
    assert_eq!(log["data"][0]["action"], "api_key.created", "{log}");
    // Revoked: 401 at once.
    let r = app
        .with_token(Method::DELETE, &format!("/api/v1/api-keys/{id}"), &owner_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let (s, _) = get(&app, "/api/v1/products", &key).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A made-up key.
    let (s, _) = get(&app, "/api/v1/products", "sk_live_made-up").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // Bad input names the field.
    let r = app
        .with_token(Method::POST, "/api/v1/api-keys", &owner_a)
        .json(&json!({ "name": "x", "kind": "root" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["details"]["field"],
        "kind"
    );
}

#[tokio::test]
async fn publishable_keys_only_read_the_store_api_of_their_store() {
    let app = spawn_app().await;
    let (_, owner_a) = app.provisioned_merchant("pka").await;
    let (_, owner_b) = app.provisioned_merchant("pkb").await;
    create_product(&app, &owner_a, "Alpha Tea").await;
    create_product(&app, &owner_b, "Beta Tea").await;
    let pk = new_key(
        &app,
        &owner_a,
        json!({ "name": "Website", "kind": "publishable" }),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pk.starts_with("pk_live_"));
    // On the platform host, the key selects the store.
    let r = app
        .client
        .get(app.url("/api/v1/store/products"))
        .header("X-Publishable-Key", &pk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let titles: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, vec!["Alpha Tea"]);
    // On B's host the key of A is refused.
    let r = app
        .on_host(Method::GET, "pkb.localhost", "/api/v1/store/products")
        .header("X-Publishable-Key", &pk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // It is no credential for the merchant API.
    let (s, body) = get(&app, "/api/v1/products", &pk).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    // A secret key is refused where a publishable one is expected.
    let sk = new_key(&app, &owner_a, json!({ "name": "S", "kind": "secret" })).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .client
        .get(app.url("/api/v1/store/products"))
        .header("X-Publishable-Key", &sk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn audit_log_records_who_did_what_and_is_read_only() {
    let app = spawn_app().await;
    let (a_id, owner_a) = app.provisioned_merchant("auda").await;
    let (b_id, owner_b) = app.provisioned_merchant("audb").await;
    let (_, p) = create_product(&app, &owner_a, "Logged Thing").await;
    let pid = p["id"].as_str().unwrap();
    let r = app
        .with_token(Method::PUT, &format!("/api/v1/products/{pid}"), &owner_a)
        .json(&json!({ "title": "Renamed Thing", "status": "active", "variants": [{ "sku": "LOGGED-THING", "price": "12.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .with_token(Method::DELETE, &format!("/api/v1/products/{pid}"), &owner_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let (s, log) = get(&app, "/api/v1/audit-log?action=product.", &owner_a).await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["product.deleted", "product.updated", "product.created"]
    );
    let upd = &log["data"][1];
    assert_eq!(upd["actor_label"], "owner@auda.example");
    assert_eq!(upd["ip"], "127.0.0.1");
    assert_eq!(upd["before"]["title"], "Logged Thing");
    assert_eq!(upd["after"]["title"], "Renamed Thing");
    assert_eq!(upd["after"]["variants"][0]["price_minor"], 1200);
    // B's owner sees none of A's entries.
    let (_, log_b) = get(&app, "/api/v1/audit-log", &owner_b).await;
    assert!(
        log_b["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant_id"] == b_id.as_str()),
        "{log_b}"
    );
    assert!(!log_b.to_string().contains("Logged Thing"));
    // The platform admin reads across tenants, filtered.
    let (_, all) = get(
        &app,
        &format!("/api/v1/admin/audit-log?tenant_id={a_id}&action=merchant."),
        &app.admin_token,
    )
    .await;
    let actions: Vec<&str> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["merchant.activation_started", "merchant.created"]
    );
    assert_eq!(all["data"][0]["actor_label"], ADMIN_EMAIL);
    let (s, _) = get(
        &app,
        "/api/v1/admin/audit-log?since=yesterday",
        &app.admin_token,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // No API edits entries.
    for m in [Method::PUT, Method::DELETE, Method::PATCH] {
        let r = app
            .with_token(m, "/api/v1/audit-log", &owner_a)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn brute_force_sign_in_is_throttled_without_revealing_accounts() {
    let app = spawn_app().await;
    for email in [ADMIN_EMAIL, "nobody@nowhere.example"] {
        for i in 0..5 {
            let r = app
                .client
                .post(app.url("/api/v1/auth/login"))
                .json(&json!({ "email": email, "password": format!("guess-{i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        }
        // Locked: even the right password now gets 429 with Retry-After.
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{email}");
        let wait: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&wait), "{wait}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "too_many_attempts");
    }
}

#[tokio::test]
async fn password_reset_by_email_is_single_use_and_ends_sessions() {
    let app = spawn_app().await;
    let (_, _owner) = app.provisioned_merchant("reset").await;
    let email = "owner@reset.example";
    let old = app.login(email, "owner-password-1").await;
    for who in [email, "ghost@reset.example"] {
        let r = app
            .client
            .post(app.url("/api/v1/auth/forgot-password"))
            .json(&json!({ "email": who }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    // The welcome mail was the first; the reset mail is the second.
    let token = app.wait_mail_tokens(email, 2).await.pop().unwrap();
    let set = |t: String| {
        app.client
            .post(app.url("/api/v1/auth/set-password"))
            .json(&json!({ "token": t, "password": "brand-new-pass-2" }))
            .send()
    };
    assert_eq!(
        set(token.clone()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(set(token).await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert!(
        app.wait_mail_tokens("ghost@reset.example", 0)
            .await
            .is_empty()
    );
    // Old sessions are over; the new password works, the old one not.
    let r = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": old["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.login(email, "brand-new-pass-2").await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": "owner-password-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_logout_revokes() {
    let app = spawn_app().await;
    app.provisioned_merchant("chg").await;
    let email = "owner@chg.example";
    let here = app.login(email, "owner-password-1").await;
    let elsewhere = app.login(email, "owner-password-1").await;
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/auth/change-password",
            here["access_token"].as_str().unwrap(),
        )
        .json(&json!({ "current_password": "owner-password-1", "new_password": "changed-pass-3" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let refresh = |t: &Value| {
        app.client
            .post(app.url("/api/v1/auth/refresh"))
            .json(&json!({ "refresh_token": t["refresh_token"] }))
            .send()
    };
    assert_eq!(
        refresh(&elsewhere).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = refresh(&here).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let here: Value = r.json().await.unwrap();
    let r = app
        .client
        .post(app.url("/api/v1/auth/logout"))
        .json(&json!({ "refresh_token": here["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        refresh(&here).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tampered_and_expired_access_tokens_are_refused() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("tamper").await;
    // Flip the payload: the signature no longer matches.
    let mut parts: Vec<String> = owner.split('.').map(str::to_string).collect();
    parts[1] = parts[1].chars().rev().collect();
    let (s, _) = get(&app, "/api/v1/products", &parts.join(".")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // A token signed with the right key but already expired.
    let keys = souk::auth::TokenKeys::new(
        &souk::auth::Secret::new("test-secret-test-secret-test-secret!"),
        -120,
    );
    let me: Value = get(&app, "/api/v1/auth/me", &owner).await.1;
    let expired = keys
        .issue(
            me["id"].as_str().unwrap().parse().unwrap(),
            false,
            me["active_tenant_id"].as_str().map(|s| s.parse().unwrap()),
            false,
            None,
        )
        .unwrap();
    let (s, body) = get(&app, "/api/v1/products", &expired).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    // `alg: none` is not accepted.
    let none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1]);
    let (s, _) = get(&app, "/api/v1/products", &none).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_role_stays_inside_its_own_tenant() {
    let app = spawn_app().await;
    let (_, owner_a) = app.provisioned_merchant("isoa").await;
    let (b_id, owner_b) = app.provisioned_merchant("isob").await;
    let (_, b_product) = create_product(&app, &owner_b, "Secret B").await;
    let b_pid = b_product["id"].as_str().unwrap();
    create_product(&app, &owner_a, "Public A").await;
    let mut callers = vec![("owner".to_string(), owner_a.clone())];
    for role in ["manager", "editor", "viewer"] {
        let (_, t) = app
            .add_member(&owner_a, &format!("{role}@isoa.example"), role)
            .await;
        callers.push((role.to_string(), t));
    }
    let sk = new_key(
        &app,
        &owner_a,
        json!({ "name": "k", "kind": "secret", "role": "manager" }),
    )
    .await;
    callers.push(("secret key".into(), sk["key"].as_str().unwrap().to_string()));
    for (who, token) in &callers {
        // Own list: only A's rows.
        let (s, list) = get(&app, "/api/v1/products", token).await;
        assert_eq!(s, StatusCode::OK, "{who}");
        assert!(
            !list.to_string().contains("Secret B"),
            "{who} saw B: {list}"
        );
        // B's product by id, within A: not found.
        let (s, _) = get(&app, &format!("/api/v1/products/{b_pid}"), token).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{who}");
        // Naming B explicitly: the same 403 as for a tenant that does not exist.
        for tenant in [b_id.as_str(), "0195a3c2-0000-7000-8000-00000000dead"] {
            let r = app
                .with_token(Method::GET, &format!("/api/v1/products/{b_pid}"), token)
                .header("X-Tenant-ID", tenant)
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::FORBIDDEN,
                "{who} via X-Tenant-ID {tenant}"
            );
        }
        // B's host.
        let r = app
            .on_host(Method::GET, "isob.localhost", "/api/v1/products")
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who} on B's host");
        // B's team and audit log.
        for path in [
            "/api/v1/team/members",
            "/api/v1/audit-log",
            "/api/v1/api-keys",
        ] {
            let r = app
                .with_token(Method::GET, path, token)
                .header("X-Tenant-ID", &b_id)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{who} on B's {path}");
        }
    }
}

/// On PostgreSQL the database itself filters by tenant: a query that forgets its tenant
/// filter sees nothing (no tenant set) or only the current tenant's rows, never another's.
#[tokio::test]
async fn postgres_row_level_security_hides_other_tenants_rows() {
    let app = spawn_app().await;
    let Some(url) = app.pg_url() else {
        eprintln!("SKIPPED: row-level security needs PostgreSQL (set SOUK_TEST_PG_URL)");
        return;
    };
    let (a_id, owner_a) = app.provisioned_merchant("rlsa").await;
    let (_, owner_b) = app.provisioned_merchant("rlsb").await;
    create_product(&app, &owner_a, "Row A").await;
    create_product(&app, &owner_b, "Row B1").await;
    create_product(&app, &owner_b, "Row B2").await;
    use sqlx::{Connection, Row};
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("set role souk_app")
        .execute(&mut c)
        .await
        .unwrap();
    // No tenant set: an unfiltered query returns nothing.
    for table in [
        "products",
        "variants",
        "memberships",
        "roles",
        "audit_log",
        "domains",
    ] {
        let n: i64 =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
                .fetch_one(&mut c)
                .await
                .unwrap();
        assert_eq!(n, 0, "{table} visible without a tenant");
    }
    // Tenant A set for the transaction: only A's rows, whatever the query forgets.
    let mut tx = c.begin().await.unwrap();
    sqlx::query("select set_config('souk.tenant_id', $1, true)")
        .bind(&a_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let rows = sqlx::query("select title, tenant_id::text as t from products")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let titles: Vec<String> = rows.iter().map(|r| r.get("title")).collect();
    assert_eq!(titles, vec!["Row A".to_string()]);
    assert!(rows.iter().all(|r| r.get::<String, _>("t") == a_id));
    // Writing a row for another tenant is refused by the policy's check.
    let other = sqlx::query("insert into collections (id, tenant_id, handle, title, created_at) values (gen_random_uuid(), (select id from tenants where handle = 'rlsb'), 'x', 'x', 0)")
        .execute(&mut *tx)
        .await;
    assert!(other.is_err(), "cross-tenant insert was accepted");
    tx.rollback().await.unwrap();
    // SET LOCAL ended with the transaction: nothing visible again.
    let n: i64 = sqlx::query_scalar("select count(*) from products")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // The audit log is append-only for the application role.
    let mut tx = c.begin().await.unwrap();
    sqlx::query("select set_config('souk.tenant_id', $1, true)")
        .bind(&a_id)
        .execute(&mut *tx)
        .await
        .unwrap();
    let upd = sqlx::query("update audit_log set action = 'forged'")
        .execute(&mut *tx)
        .await;
    assert!(upd.is_err(), "audit log update was allowed");
}
