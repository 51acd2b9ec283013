use crate::helpers::{ADMIN_EMAIL, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = spawn_app().await;
    for (email, pw) in [
        (ADMIN_EMAIL, "wrong-password"),
        ("nobody@test.example", "whatever-123"),
    ] {
        let r = app
            .client
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": pw }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["message"], "invalid e-mail or password");
    }
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let t = app.login(ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD).await;
    let r1 = t["refresh_token"].as_str().unwrap().to_string();
    let next: Value = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": r1 }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r2 = next["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    // Replaying the first token fails and revokes the family, so r2 dies too.
    let replay = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": r1 }))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    let after = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": r2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_routes_refuse_anonymous_tampered_and_merchant_tokens() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/admin/merchants"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut tampered = app.admin_token.clone();
    tampered.pop();
    tampered.push('x');
    let r = app
        .client
        .get(app.url("/api/v1/admin/merchants"))
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (_, owner) = app.provisioned_merchant("plain-shop").await;
    let r = app
        .client
        .get(app.url("/api/v1/admin/merchants"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn set_password_link_is_single_use() {
    let app = spawn_app().await;
    let id = app.create_merchant("Once Shop", "once@shop.example").await;
    app.admin_post(
        &format!("/api/v1/admin/merchants/{id}/activate"),
        json!({ "theme": "classic", "plan": "starter", "subdomain": "once-shop" }),
    )
    .await;
    app.wait_provisioning(&id).await;
    let token = app.welcome_token("once@shop.example").await;
    let body = json!({ "token": token, "password": "first-password" });
    let r = app
        .client
        .post(app.url("/api/v1/auth/set-password"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let again = app
        .client
        .post(app.url("/api/v1/auth/set-password"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let me: Value = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(
            app.login("once@shop.example", "first-password").await["access_token"]
                .as_str()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"][0]["role"], "owner");
    assert_eq!(me["memberships"][0]["tenant_handle"], "once-shop");
}

#[tokio::test]
async fn initial_password_from_vendor_csv_must_be_changed_first() {
    let app = spawn_app().await;
    let csv = "vendor_name,subdomain,owner_name,owner_email,owner_phone,business_address,business_city,business_postal_code,business_country,letzshop_csv_url,initial_password\r\nInitial Shop,initial-shop,Ann,ann@initial.example,,,,,LU,,start-pass-123\r\n";
    let v: Value = app
        .client
        .post(app.url("/api/v1/admin/imports/vendors"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["created"], 1, "{v}");
    let id = v["merchants"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.wait_provisioning(&id).await["status"], "completed");
    let t = app.login("ann@initial.example", "start-pass-123").await;
    assert_eq!(t["must_change_password"], true);
    let token = t["access_token"].as_str().unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/products"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "password_change_required"
    );
    let r = app
        .client
        .post(app.url("/api/v1/auth/change-password"))
        .bearer_auth(token)
        .json(&json!({ "current_password": "start-pass-123", "new_password": "my-own-pass-456" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let t = app.login("ann@initial.example", "my-own-pass-456").await;
    assert_eq!(t["must_change_password"], false);
    let r = app
        .client
        .get(app.url("/api/v1/products"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}
