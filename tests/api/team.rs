//! Teams: invitations (single use, expiry, resend, revoke), roles and their limits,
//! removal taking effect at once, several memberships per person, seat limits.

use crate::helpers::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Runs a statement directly on the test database (to age an invitation).
async fn exec_sql(app: &TestApp, sql: &'static str) {
    match &app.db {
        souk::store::Db::Sqlite { write, .. } => {
            sqlx::query(sql).execute(write).await.unwrap();
        }
        souk::store::Db::Pg { platform, .. } => {
            sqlx::query(sql).execute(platform).await.unwrap();
        }
    }
}

async fn invite(app: &TestApp, token: &str, email: &str, role: &str) -> reqwest::Response {
    app.with_token(Method::POST, "/api/v1/team/invitations", token)
        .json(&json!({ "email": email, "role": role }))
        .send()
        .await
        .unwrap()
}

async fn accept(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/invitations/accept"))
        .json(&json!({ "token": token, "name": "New Person", "password": "new-password-1" }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn invitation_is_single_use_and_resend_revokes_the_old_link() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("inv").await;
    let r = invite(&app, &owner, "mia@inv.example", "manager").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let inv: Value = r.json().await.unwrap();
    assert_eq!(inv["status"], "pending");
    let first = app.wait_mail_tokens("mia@inv.example", 1).await.remove(0);

    // Resend: a new link; the old one is revoked.
    let r = app
        .with_token(
            Method::POST,
            &format!(
                "/api/v1/team/invitations/{}/resend",
                inv["id"].as_str().unwrap()
            ),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let second = app
        .wait_mail_tokens("mia@inv.example", 2)
        .await
        .pop()
        .unwrap();
    assert_ne!(first, second);
    let r = accept(&app, &first).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invitation_revoked"
    );

    // Inspect, then accept as a new account: access is immediate.
    let preview: Value = app
        .client
        .post(app.url("/api/v1/invitations/inspect"))
        .json(&json!({ "token": second }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["role"], "manager");
    assert_eq!(preview["account_exists"], false);
    let r = accept(&app, &second).await;
    assert_eq!(r.status(), StatusCode::OK);
    let tokens: Value = r.json().await.unwrap();
    let mia = tokens["access_token"].as_str().unwrap();
    let shop: Value = app
        .with_token(Method::GET, "/api/v1/shop", mia)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shop["role"], "manager");

    // The link works once.
    let r = accept(&app, &second).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invitation_used"
    );
    // A made-up token.
    let r = accept(&app, "not-a-real-token").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let members: Value = app
        .with_token(Method::GET, "/api/v1/team/members", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let roles: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, vec!["owner", "manager"]);
}

#[tokio::test]
async fn expired_and_revoked_invitations_are_refused() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("exp").await;
    assert_eq!(
        invite(&app, &owner, "late@exp.example", "editor")
            .await
            .status(),
        StatusCode::CREATED
    );
    let late = app.wait_mail_tokens("late@exp.example", 1).await.remove(0);
    exec_sql(&app, "update invitations set expires_at = 1").await;
    let r = accept(&app, &late).await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invitation_expired"
    );

    let r = invite(&app, &owner, "gone@exp.example", "editor").await;
    let inv: Value = r.json().await.unwrap();
    let gone = app.wait_mail_tokens("gone@exp.example", 1).await.remove(0);
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/team/invitations/{}", inv["id"].as_str().unwrap()),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(accept(&app, &gone).await.status(), StatusCode::GONE);
    let list: Value = app
        .with_token(Method::GET, "/api/v1/team/invitations", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["revoked", "expired"]);
}

#[tokio::test]
async fn managers_cannot_escalate_and_the_last_owner_stays() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("esc").await;
    let (manager_id, manager) = app.add_member(&owner, "mgr@esc.example", "manager").await;
    // A Manager may invite, but not an Owner.
    let r = invite(&app, &manager, "boss@esc.example", "owner").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "role_not_grantable"
    );
    assert_eq!(
        invite(&app, &manager, "ed@esc.example", "editor")
            .await
            .status(),
        StatusCode::CREATED
    );
    // …nor promote anyone, nor remove anyone.
    let r = app
        .with_token(
            Method::PATCH,
            &format!("/api/v1/team/members/{manager_id}"),
            &manager,
        )
        .json(&json!({ "role": "owner" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let me: Value = app
        .with_token(Method::GET, "/api/v1/auth/me", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let owner_id = me["id"].as_str().unwrap();
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/team/members/{owner_id}"),
            &manager,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The only Owner can neither demote nor remove themself.
    let r = app
        .with_token(
            Method::PATCH,
            &format!("/api/v1/team/members/{owner_id}"),
            &owner,
        )
        .json(&json!({ "role": "manager" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "last_owner"
    );
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/team/members/{owner_id}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // With a second Owner, the first may step down.
    let r = app
        .with_token(
            Method::PATCH,
            &format!("/api/v1/team/members/{manager_id}"),
            &owner,
        )
        .json(&json!({ "role": "owner" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .with_token(
            Method::PATCH,
            &format!("/api/v1/team/members/{owner_id}"),
            &owner,
        )
        .json(&json!({ "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // Unknown roles are named.
    let r = app
        .with_token(
            Method::PATCH,
            &format!("/api/v1/team/members/{owner_id}"),
            &manager,
        )
        .json(&json!({ "role": "wizard" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["details"]["field"],
        "role"
    );
}

#[tokio::test]
async fn a_removed_member_loses_access_at_once() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("rmv").await;
    let (ed_id, editor) = app.add_member(&owner, "ed@rmv.example", "editor").await;
    let login = app.login("ed@rmv.example", "member-password-1").await;
    let r = app
        .with_token(Method::GET, "/api/v1/products", &editor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .with_token(
            Method::DELETE,
            &format!("/api/v1/team/members/{ed_id}"),
            &owner,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The still-unexpired access token no longer opens the tenant.
    let r = app
        .with_token(Method::GET, "/api/v1/products", &editor)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A refresh cannot re-enter it either.
    let next: Value = app
        .client
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": login["refresh_token"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(next["tenant_id"].is_null(), "{next}");
    let r = app
        .with_token(
            Method::GET,
            "/api/v1/products",
            next["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_person_in_two_merchants_switches_between_them() {
    let app = spawn_app().await;
    let (a_id, owner_a) = app.provisioned_merchant("alpha").await;
    let (b_id, owner_b) = app.provisioned_merchant("beta").await;
    // B invites A's owner, who already has an account: one click after signing in.
    assert_eq!(
        invite(&app, &owner_b, "owner@alpha.example", "editor")
            .await
            .status(),
        StatusCode::CREATED
    );
    let token = app
        .wait_mail_tokens("owner@alpha.example", 2)
        .await
        .pop()
        .unwrap();
    // Someone else signed in cannot use it.
    let r = app
        .with_token(Method::POST, "/api/v1/invitations/accept", &owner_b)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .with_token(Method::POST, "/api/v1/invitations/accept", &owner_a)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    let in_b: Value = r.json().await.unwrap();
    assert_eq!(in_b["tenant_id"], b_id.as_str());
    let shop: Value = app
        .with_token(
            Method::GET,
            "/api/v1/shop",
            in_b["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shop["role"], "editor");
    let me: Value = app
        .with_token(Method::GET, "/api/v1/auth/me", &owner_a)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
    // Switch back to A: Owner there.
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/auth/switch-tenant",
            in_b["access_token"].as_str().unwrap(),
        )
        .json(&json!({ "tenant_id": a_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let in_a: Value = r.json().await.unwrap();
    let shop: Value = app
        .with_token(
            Method::GET,
            "/api/v1/shop",
            in_a["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (shop["id"].as_str().unwrap(), shop["role"].as_str().unwrap()),
        (a_id.as_str(), "owner")
    );
    // Not a member of a third merchant.
    let (c_id, _) = app.provisioned_merchant("gamma").await;
    let r = app
        .with_token(Method::POST, "/api/v1/auth/switch-tenant", &owner_a)
        .json(&json!({ "tenant_id": c_id }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_plans_seat_limit_counts_members_and_pending_invitations() {
    let app = spawn_app().await;
    let id = app.create_merchant("Tiny", "owner@tiny.example").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "classic", "plan": "starter", "subdomain": "tiny" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_provisioning(&id).await;
    let owner = app
        .set_password_from_welcome("owner@tiny.example", "owner-password-1")
        .await;
    // Starter: 2 seats. The owner holds one; one invitation fills the other.
    assert_eq!(
        invite(&app, &owner, "one@tiny.example", "editor")
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = invite(&app, &owner, "two@tiny.example", "editor").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "seat_limit_reached");
    assert_eq!(v["error"]["details"]["max_seats"], 2);
}

#[tokio::test]
async fn custom_roles_grant_only_known_permissions_and_work_at_once() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("roles").await;
    let r = app
        .with_token(Method::POST, "/api/v1/roles", &owner)
        .json(&json!({ "name": "Wizard", "permissions": ["products.view", "spells.cast"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unknown_permission");
    assert_eq!(v["error"]["details"]["unknown"], json!(["spells.cast"]));
    // Hostile and oversized names.
    let r = app
        .with_token(Method::POST, "/api/v1/roles", &owner)
        .json(&json!({ "name": "x".repeat(65), "permissions": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let sqlish = "Robert'); drop table roles; --";
    let r = app
        .with_token(Method::POST, "/api/v1/roles", &owner)
        .json(&json!({ "name": sqlish, "key": "support", "permissions": ["products.view", "orders.view"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let roles: Value = app
        .with_token(Method::GET, "/api/v1/roles", &owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Owner", "Manager", "Editor", "Viewer", sqlish]);
    let (_, agent) = app
        .add_member(&owner, "agent@roles.example", "support")
        .await;
    assert_eq!(
        app.with_token(Method::GET, "/api/v1/products", &agent)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let r = app
        .with_token(Method::POST, "/api/v1/products", &agent)
        .json(&json!({ "title": "Nope", "variants": [{ "price": "1.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Granting products.create to the role takes effect on the next request.
    let r = app
        .with_token(Method::PUT, "/api/v1/roles/support", &owner)
        .json(&json!({ "name": "Support", "permissions": ["products.view", "products.create"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .with_token(Method::POST, "/api/v1/products", &agent)
        .json(&json!({ "title": "Now yes", "variants": [{ "price": "1.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // In use: cannot be deleted. Default roles cannot be edited.
    let r = app
        .with_token(Method::DELETE, "/api/v1/roles/support", &owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let r = app
        .with_token(Method::PUT, "/api/v1/roles/viewer", &owner)
        .json(&json!({ "name": "Viewer", "permissions": ["products.view", "products.delete"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_invitation_link_opens_a_page_that_creates_the_account_or_joins_an_existing_one() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("page").await;
    let (_, other_owner) = app.provisioned_merchant("pagetwo").await;
    assert_eq!(
        invite(&app, &owner, "neo@page.example", "editor")
            .await
            .status(),
        StatusCode::CREATED
    );
    let token = app.wait_mail_tokens("neo@page.example", 1).await.remove(0);
    let page = app
        .client
        .get(app.url(&format!("/invitations/accept?token={token}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Shop page") && page.contains("editor") && page.contains("name=\"name\""),
        "{page}"
    );
    let r = app
        .client
        .post(app.url("/invitations/accept"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&name=Neo&password=neo-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("You joined"));
    app.login("neo@page.example", "neo-password-1").await;
    let bad = app
        .client
        .get(app.url(&format!("/invitations/accept?token={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::GONE);

    // An existing account confirms with its password.
    assert_eq!(
        invite(&app, &other_owner, "neo@page.example", "viewer")
            .await
            .status(),
        StatusCode::CREATED
    );
    let token = app
        .wait_mail_tokens("neo@page.example", 2)
        .await
        .pop()
        .unwrap();
    let r = app
        .client
        .post(app.url("/invitations/accept"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&password=wrong-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .post(app.url("/invitations/accept"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&password=neo-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me = app.login("neo@page.example", "neo-password-1").await;
    let me: Value = app
        .with_token(
            Method::GET,
            "/api/v1/auth/me",
            me["access_token"].as_str().unwrap(),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["memberships"].as_array().unwrap().len(), 2);
}
