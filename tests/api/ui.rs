//! The browser interface over plain HTTP (no JavaScript): cookie sessions, CSRF, sign-in
//! and sign-out for both areas. `Browser` is shared by the admin and dashboard UI tests.

use crate::helpers::*;
use reqwest::StatusCode;

/// A cookie-keeping client that submits forms the way a browser without JavaScript does.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        Self {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: app.url(""),
        }
    }

    /// `GET path` → (status, body).
    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get");
        (r.status(), r.text().await.expect("body"))
    }

    /// `GET path` → the raw response (headers, redirects).
    pub async fn get_raw(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("get")
    }

    /// Posts an urlencoded form, as a same-origin browser would (`Origin` set).
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            s.append_pair(k, v);
        }
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", self.base.trim_end_matches('/'))
            .header("sec-fetch-site", "same-origin")
            .body(s.finish())
            .send()
            .await
            .expect("post")
    }

    /// Signs in through `/{area}/login`; panics unless redirected away from the form.
    pub async fn sign_in(&self, area: &str, email: &str, password: &str) {
        let r = self
            .post_form(
                &format!("/{area}/login"),
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "{}",
            r.text().await.unwrap_or_default()
        );
    }

    /// The CSRF token of the session, read from a page's `<meta name="csrf-token">`.
    pub async fn csrf(&self, page: &str) -> String {
        let (_, html) = self.get(page).await;
        let marker = "name=\"csrf-token\" content=\"";
        let start = html.find(marker).expect("csrf meta") + marker.len();
        html[start..]
            .split('"')
            .next()
            .expect("csrf value")
            .to_string()
    }
}

/// Where a redirect points.
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn admin_signs_in_sees_merchants_and_signs_out() {
    let app = spawn_app().await;
    app.create_merchant("Ui Pending Shop", "ui-pending@shop.example")
        .await;
    let b = Browser::new(&app);
    // Signed out: the panel asks to sign in, keeping where the user was going.
    let r = b.get_raw("/admin/merchants?status=pending").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/admin/login?next=%2Fadmin%2Fmerchants%3Fstatus%3Dpending"
    );
    let (status, html) = b.get("/admin/login").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<label for=\"f-email\">"), "{html}");
    // A wrong password shows the error on the form, with a 401.
    let r = b
        .post_form(
            "/admin/login",
            &[("email", ADMIN_EMAIL), ("password", "wrong-password")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("invalid e-mail or password")
    );
    // Sign in: both cookies are HttpOnly and SameSite=Lax.
    let r = b
        .post_form(
            "/admin/login",
            &[
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/admin/merchants?status=pending"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/merchants?status=pending");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    for c in &cookies {
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax"), "{c}");
        assert!(!c.contains("Secure"), "plain http must not set Secure: {c}");
    }
    let (status, html) = b.get("/admin/merchants?status=pending").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Ui Pending Shop"), "{html}");
    assert!(
        html.contains("<title>Merchants · Souk admin</title>"),
        "{html}"
    );
    // Filtering by another status hides it.
    let (_, html) = b.get("/admin/merchants?status=active").await;
    assert!(!html.contains("Ui Pending Shop"));
    // Sign-out without the CSRF token is refused; with it, the session ends.
    let r = b.post_form("/admin/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let csrf = b.csrf("/admin/merchants").await;
    let r = b.post_form("/admin/logout", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/login");
    let r = b.get_raw("/admin/merchants").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let app = spawn_app().await;
    let b = Browser::new(&app);
    b.sign_in("admin", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let csrf = b.csrf("/admin/merchants").await;
    // Even with a valid token, a cross-site request is refused by the Origin check.
    let r = b
        .client
        .post(format!("{}/admin/logout", b.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .body(format!("_csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The session survived.
    let (status, _) = b.get("/admin/merchants").await;
    assert_eq!(status, StatusCode::OK);
    // No other site may frame the panel (clickjacking), signed in or not.
    for path in ["/admin/merchants", "/admin/login", "/dashboard/login"] {
        let r = b
            .client
            .get(format!("{}{path}", b.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
        assert_eq!(
            r.headers()["content-security-policy"],
            "frame-ancestors 'none'",
            "{path}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn merchants_cannot_use_the_admin_panel_and_owners_reach_their_dashboard() {
    let app = spawn_app().await;
    app.provisioned_merchant("uishop").await;
    let b = Browser::new(&app);
    let r = b
        .post_form(
            "/admin/login",
            &[
                ("email", "owner@uishop.example"),
                ("password", "owner-password-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("not platform staff"));
    b.sign_in("dashboard", "owner@uishop.example", "owner-password-1")
        .await;
    let (status, html) = b.get("/dashboard").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Shop uishop"), "{html}");
    assert!(
        html.contains("href=\"/dashboard/team\""),
        "owners see the team page"
    );
    // Staff pages stay closed to a merchant session.
    let (status, _) = b.get("/admin/merchants").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn an_expired_access_cookie_is_renewed_with_the_refresh_cookie() {
    let app = spawn_with(|c| c.access_ttl = 1).await;
    let b = Browser::new(&app);
    b.sign_in("admin", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    tokio::time::sleep(std::time::Duration::from_millis(7000)).await;
    let r = b.get_raw("/admin/merchants").await;
    assert_eq!(r.status(), StatusCode::OK);
    let renewed = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("souk_at="));
    assert!(renewed, "the access cookie is rotated");
    // Several requests at once with an expired access cookie (a page and its event socket's
    // ticket) share one rotation instead of presenting the old refresh token twice, which
    // the API would treat as theft and answer by revoking the session.
    tokio::time::sleep(std::time::Duration::from_millis(7000)).await;
    let (a, b2, c) = tokio::join!(
        b.get_raw("/admin/merchants"),
        b.get_raw("/admin/overview"),
        b.get_raw("/admin/themes")
    );
    for r in [&a, &b2, &c] {
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = b.get_raw("/admin/merchants").await;
    assert_eq!(r.status(), StatusCode::OK, "the session survived");
    app.stop().await;
}

#[tokio::test]
async fn an_initial_password_is_replaced_before_the_dashboard_opens() {
    let app = spawn_app().await;
    let csv = "vendor_name,subdomain,owner_name,owner_email,owner_phone,business_address,business_city,business_postal_code,business_country,letzshop_csv_url,initial_password\r\nUi Initial,ui-initial,Ann,ann@ui-initial.example,,,,,LU,,start-pass-123\r\n";
    let v: serde_json::Value = app
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
    let id = v["merchants"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.wait_provisioning(&id).await["status"], "completed");
    let b = Browser::new(&app);
    let r = b
        .post_form(
            "/dashboard/login",
            &[
                ("email", "ann@ui-initial.example"),
                ("password", "start-pass-123"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/password");
    // Any other page sends the user back to the password form.
    let r = b.get_raw("/dashboard").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/password");
    let csrf = b.csrf("/dashboard/password").await;
    // A wrong current password is shown next to its field, without ending the session.
    let r = b
        .post_form(
            "/dashboard/password",
            &[
                ("_csrf", &csrf),
                ("current_password", "nope-nope-nope"),
                ("new_password", "brand-new-pass-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("current_password is wrong")
    );
    let r = b
        .post_form(
            "/dashboard/password",
            &[
                ("_csrf", &csrf),
                ("current_password", "start-pass-123"),
                ("new_password", "brand-new-pass-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/login");
    b.sign_in("dashboard", "ann@ui-initial.example", "brand-new-pass-1")
        .await;
    let (status, html) = b.get("/dashboard").await;
    assert!(
        status.is_success() || status == StatusCode::SEE_OTHER,
        "{status}"
    );
    assert!(!html.contains("password_change_required"), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn signing_in_opens_the_setup_guide_until_the_store_is_published() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("landing").await;
    app.add_member(&owner, "ed@landing.example", "editor").await;
    let sign_in = |next: &'static str, email: &'static str, password: &'static str| {
        let b = Browser::new(&app);
        async move {
            let r = b
                .post_form(
                    "/dashboard/login",
                    &[("email", email), ("password", password), ("next", next)],
                )
                .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            location(&r)
        }
    };
    // A new store's owner lands on the guide, an editor (no settings.edit) on the home page,
    // and an explicit destination is kept.
    assert_eq!(
        sign_in("", "owner@landing.example", "owner-password-1").await,
        "/dashboard/onboarding"
    );
    assert_eq!(
        sign_in("", "ed@landing.example", "member-password-1").await,
        "/dashboard"
    );
    assert_eq!(
        sign_in(
            "/dashboard/products",
            "owner@landing.example",
            "owner-password-1"
        )
        .await,
        "/dashboard/products"
    );
    // Once published, the owner lands on the home page.
    let r = app
        .with_token(reqwest::Method::POST, "/api/v1/products", &owner)
        .json(&serde_json::json!({ "title": "Lamp", "status": "active", "variants": [{ "price": "9.00" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    crate::storefront::publish_store(&app, &owner, "landing", "Lamps and more").await;
    assert_eq!(
        sign_in("", "owner@landing.example", "owner-password-1").await,
        "/dashboard"
    );
    app.stop().await;
}
