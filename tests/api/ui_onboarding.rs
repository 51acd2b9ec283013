//! Dashboard setup guide, product imports, account pages (set password, invitation) and
//! the merchant switcher, driven over plain HTTP like a browser without JavaScript
//! (plus the auto-save `fetch` answers).

use crate::helpers::*;
use crate::ui::{Browser, location};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const OWNER_PASSWORD: &str = "owner-password-1";

/// A provisioned merchant and a browser signed in as its owner.
async fn owner_browser(app: &TestApp, sub: &str) -> (String, String, Browser) {
    let (id, token) = app.provisioned_merchant(sub).await;
    let b = Browser::new(app);
    b.sign_in("dashboard", &format!("owner@{sub}.example"), OWNER_PASSWORD)
        .await;
    (id, token, b)
}

async fn api_get(app: &TestApp, token: &str, path: &str) -> Value {
    app.with_token(Method::GET, path, token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn step_status(state: &Value, step: &str) -> String {
    state["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == step)
        .map(|s| s["status"].as_str().unwrap().to_string())
        .unwrap()
}

/// Posts a form with `Accept: application/json` and the CSRF header, as app.js's
/// auto-save does.
async fn autosave(
    b: &Browser,
    path: &str,
    csrf: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("_csrf", csrf);
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    let r = b
        .client
        .post(format!("{}{path}", b.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("x-csrf-token", csrf)
        .header("origin", b.base.trim_end_matches('/'))
        .body(s.finish())
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn upload(
    b: &Browser,
    path: &str,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> reqwest::Response {
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    b.client
        .post(format!("{}{path}", b.base))
        .header("origin", b.base.trim_end_matches('/'))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn set_password_page_sets_the_password_and_links_to_sign_in() {
    let app = spawn_app().await;
    let id = app
        .create_merchant("Welcome Shop", "owner@welcome.example")
        .await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "classic", "plan": "growth", "subdomain": "welcome" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    app.wait_provisioning(&id).await;
    let token = app.welcome_token("owner@welcome.example").await;
    let b = Browser::new(&app);
    let (status, html) = b.get(&format!("/set-password?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<label for=\"f-password\">New password"),
        "{html}"
    );
    assert!(
        html.contains(">Set password</button>") && html.contains("/ui/app.css"),
        "{html}"
    );
    // A too-short password: the error sits next to the field, the form stays.
    let r = b
        .post_form("/set-password", &[("token", &token), ("password", "short")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"e-password\"") && html.contains("aria-invalid=\"true\""),
        "{html}"
    );
    let r = b
        .post_form(
            "/set-password",
            &[("token", &token), ("password", "brand-new-pass-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("<a href=\"/dashboard/login\">Sign in to your dashboard</a>"),
        "{html}"
    );
    b.sign_in("dashboard", "owner@welcome.example", "brand-new-pass-1")
        .await;
    // The link works once.
    let r = b
        .post_form(
            "/set-password",
            &[("token", &token), ("password", "another-pass-12")],
        )
        .await;
    assert!(r.status().is_client_error());
}

#[tokio::test]
async fn invitation_page_creates_the_account_and_links_to_sign_in() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("invitepage").await;
    let r = app
        .with_token(Method::POST, "/api/v1/team/invitations", &owner)
        .json(&json!({ "email": "mia@invitepage.example", "role": "editor" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = app
        .wait_mail_tokens("mia@invitepage.example", 1)
        .await
        .remove(0);
    let b = Browser::new(&app);
    let (status, html) = b.get(&format!("/invitations/accept?token={token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Shop invitepage") && html.contains("editor"),
        "{html}"
    );
    assert!(html.contains("<label for=\"f-name\">Your name"), "{html}");
    assert!(
        html.contains("<label for=\"f-password\">Choose a password"),
        "{html}"
    );
    assert!(html.contains(">Join</button>"), "{html}");
    // A missing name is reported next to the field, the token kept.
    let r = b
        .post_form(
            "/invitations/accept",
            &[
                ("token", &token),
                ("name", ""),
                ("password", "mia-password-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"e-name\"") && html.contains(&token),
        "{html}"
    );
    let r = b
        .post_form(
            "/invitations/accept",
            &[
                ("token", &token),
                ("name", "Mia"),
                ("password", "mia-password-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("You joined") && html.contains("href=\"/dashboard/login\""),
        "{html}"
    );
    b.sign_in("dashboard", "mia@invitepage.example", "mia-password-1")
        .await;
    let (_, home) = b.get("/dashboard").await;
    assert!(home.contains("Shop invitepage"), "{home}");
}

#[tokio::test]
async fn wizard_saves_steps_autosaves_with_field_errors_and_skips() {
    let app = spawn_app().await;
    let (_, token, b) = owner_browser(&app, "wizard").await;
    // The home page offers the guide until the store is published.
    let (_, home) = b.get("/dashboard").await;
    assert!(home.contains("Continue the setup guide"), "{home}");
    let r = b.get_raw("/dashboard/onboarding").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/onboarding/business");
    let (status, html) = b.get("/dashboard/onboarding/business").await;
    assert_eq!(status, StatusCode::OK);
    for label in [
        "Store name",
        "Description",
        "Category",
        "Contact e-mail",
        "Contact phone",
    ] {
        assert!(html.contains(&format!(">{label}")), "{label}: {html}");
    }
    assert!(
        html.contains("aria-current=\"step\"") && html.contains("data-autosave"),
        "{html}"
    );
    let csrf = b.csrf("/dashboard/onboarding/business").await;

    // Auto-save: a bad e-mail is a JSON field error and nothing is saved.
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/business",
        &csrf,
        &[("name", "Wizard Wares"), ("contact_email", "not-an-email")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["saved"], json!(false));
    assert!(
        body["errors"]["contact_email"]
            .as_str()
            .unwrap()
            .contains("e-mail"),
        "{body}"
    );
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/business",
        &csrf,
        &[
            ("name", "Wizard Wares"),
            ("contact_email", "hello@wizard.example"),
            ("category", "apparel"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({ "saved": true, "errors": {} }));
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert_eq!(
        st["values"]["business"]["contact_email"],
        "hello@wizard.example"
    );
    assert_eq!(st["values"]["business"]["name"], "Wizard Wares");
    // Auto-save does not finish the step.
    assert_eq!(step_status(&st, "business"), "todo");

    // Without JavaScript: a bad phone re-renders the step with the error by the field.
    let r = b
        .post_form(
            "/dashboard/onboarding/business",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("name", "Wizard Wares"),
                ("contact_email", "hello@wizard.example"),
                ("contact_phone", "call me"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"e-contact_phone\"") && html.contains("Contact phone must be"),
        "{html}"
    );
    assert!(
        html.contains("value=\"call me\""),
        "submitted value kept: {html}"
    );
    // Save and continue → the next step.
    let r = b
        .post_form(
            "/dashboard/onboarding/business",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("name", "Wizard Wares"),
                ("description", "Shirts and more"),
                ("category", "apparel"),
                ("contact_email", "hello@wizard.example"),
                ("contact_phone", "+352 621 123 456"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/onboarding/branding");
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert_eq!(step_status(&st, "business"), "done");
    // The store name is the tenant's name now (the dashboard shows it).
    let (_, html) = b.get("/dashboard/onboarding/branding").await;
    assert!(html.contains("Wizard Wares"), "{html}");
    assert!(
        html.contains("type=\"color\"") && html.contains("id=\"brand-preview\""),
        "{html}"
    );

    // Skip branding; it is marked and can be revisited.
    let r = b
        .post_form(
            "/dashboard/onboarding/branding",
            &[("_csrf", &csrf), ("_action", "skip")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/onboarding/payments");
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert_eq!(step_status(&st, "branding"), "skipped");
    let (status, html) = b.get("/dashboard/onboarding/branding").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Branding (skipped)"), "{html}");
    // The first unfinished step is now payments.
    let r = b.get_raw("/dashboard/onboarding").await;
    assert_eq!(location(&r), "/dashboard/onboarding/payments");
    // Coming back to branding later and saving a colour applies it to the storefront.
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/branding",
        &csrf,
        &[("color_primary", "#123abc")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let css = app
        .client
        .get(app.url("/s/wizard/branding.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(css.contains("--color-primary: #123abc;"), "{css}");
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/branding",
        &csrf,
        &[("color_primary", "red; x")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["color_primary"].is_string(), "{body}");

    // Marketing ids are validated.
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/marketing",
        &csrf,
        &[("google_analytics_id", "GA-nope"), ("meta_pixel_id", "")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["google_analytics_id"].is_string(), "{body}");
    let (status, _) = autosave(
        &b,
        "/dashboard/onboarding/marketing",
        &csrf,
        &[
            ("google_analytics_id", "G-ABC123XYZ"),
            ("meta_pixel_id", "123456789012345"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Every step renders, with its labelled fields.
    for (step, label) in [
        ("payments", "Stripe secret key"),
        ("marketing", "Google Analytics ID"),
        ("products", "Product title"),
        ("website", "Hero title"),
        ("launch", "Go-live checklist"),
    ] {
        let (status, html) = b.get(&format!("/dashboard/onboarding/{step}")).await;
        assert_eq!(status, StatusCode::OK, "{step}");
        assert!(html.contains(label), "{step}: {html}");
    }
    let (status, _) = b.get("/dashboard/onboarding/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Changes are audited.
    let audit = api_get(&app, &token, "/api/v1/audit-log?per_page=100").await;
    assert!(audit.to_string().contains("onboarding.updated"), "{audit}");
}

#[tokio::test]
async fn payment_secret_is_stored_encrypted_and_never_shown() {
    let app = spawn_app().await;
    let (_, token, b) = owner_browser(&app, "paysecret").await;
    let csrf = b.csrf("/dashboard/onboarding/payments").await;
    let secret = "sk_test_51AbCdEfGhIjKlMnOpQrStUv";
    // Stripe without a key cannot be finished.
    let r = b
        .post_form(
            "/dashboard/onboarding/payments",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("provider", "stripe"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Secret key is required"));
    let r = b
        .post_form(
            "/dashboard/onboarding/payments",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("provider", "stripe"),
                ("stripe_publishable_key", "pk_test_51AbCdEfGh"),
                ("stripe_secret_key", secret),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard/onboarding/marketing");
    let stored: Vec<Option<String>> =
        souk::dispatch!(&app.db, p => sqlx::query_scalar("select payment_secret from onboarding")
        .fetch_all(p)
        .await)
        .unwrap();
    let sealed = stored[0].clone().expect("secret stored");
    assert!(
        !sealed.contains(secret) && !sealed.contains("51AbCdEf"),
        "{sealed}"
    );
    let data: Vec<String> =
        souk::dispatch!(&app.db, p => sqlx::query_scalar("select data from onboarding")
        .fetch_all(p)
        .await)
        .unwrap();
    assert!(!data[0].contains(secret), "{}", data[0]);
    // The API and the page say "configured", never the key.
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert_eq!(st["payment_secret_configured"], json!(true));
    assert!(!st.to_string().contains(secret));
    let (_, html) = b.get("/dashboard/onboarding/payments").await;
    assert!(
        html.contains("Configured ✓") && !html.contains(secret),
        "{html}"
    );
    // A malformed key is refused by field.
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/payments",
        &csrf,
        &[("stripe_secret_key", "not-a-key")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["stripe_secret_key"].is_string(), "{body}");
}

#[tokio::test]
async fn publishing_opens_the_storefront_and_logo_uploads_are_checked() {
    let app = spawn_app().await;
    let (_, token, b) = owner_browser(&app, "launchy").await;
    // Before the guide is opened the store serves as before.
    let r = app.client.get(app.url("/s/launchy/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let csrf = b.csrf("/dashboard/onboarding/business").await;
    let r = b
        .post_form(
            "/dashboard/onboarding/business",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("name", "Launchy Goods"),
                ("contact_email", "hi@launchy.example"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Now "coming soon" until published.
    let r = app.client.get(app.url("/s/launchy/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("coming soon"));

    // Logo: a text file named .png is refused by its content; a PNG is stored and served.
    let r = upload(
        &b,
        &format!("/dashboard/onboarding/branding/logo?_csrf={csrf}"),
        "logo.png",
        "image/png",
        b"hello, not an image".to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("must be a PNG, JPEG, SVG or WebP")
    );
    let big = [b"\x89PNG\r\n\x1a\n".to_vec(), vec![0u8; 1024 * 1024 + 1]].concat();
    let r = upload(
        &b,
        &format!("/dashboard/onboarding/branding/logo?_csrf={csrf}"),
        "big.png",
        "image/png",
        big,
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let png = [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        b"\0\0\0\rIHDR fake but sniffable".to_vec(),
    ]
    .concat();
    let r = upload(
        &b,
        &format!("/dashboard/onboarding/branding/logo?_csrf={csrf}"),
        "logo.png",
        "image/png",
        png.clone(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    let logo = st["theme_settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "logo_url")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(logo.starts_with("/store-assets/"), "{logo}");
    let r = app
        .client
        .get(app.url(&format!("/s/launchy{logo}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);

    // Publishing needs the checklist: no payment method, no product yet.
    let r = b
        .post_form("/dashboard/onboarding/launch/publish", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("A payment method is set up") && html.contains("role=\"alert\""),
        "{html}"
    );
    let r = b
        .post_form(
            "/dashboard/onboarding/payments",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("provider", "manual"),
                ("manual_instructions", "IBAN LU00 0000 0000 0000"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b
        .post_form(
            "/dashboard/onboarding/products/first",
            &[("_csrf", &csrf), ("title", "Launch Tee"), ("price", "nope")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("id=\"e-price\""));
    let r = b
        .post_form(
            "/dashboard/onboarding/products/first",
            &[
                ("_csrf", &csrf),
                ("title", "Launch Tee"),
                ("price", "19.90"),
                ("inventory", "5"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get("/dashboard/onboarding/launch").await;
    assert!(html.contains("Publish storefront"), "{html}");
    let r = b
        .post_form("/dashboard/onboarding/launch/publish", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert!(
        st["completed_at"].is_string() && st["coming_soon"] == json!(false),
        "{st}"
    );
    assert_eq!(step_status(&st, "launch"), "done");
    // The storefront is open, with the new name, logo and product.
    let r = app.client.get(app.url("/s/launchy/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Launchy Goods") && html.contains("Launch Tee"),
        "{html}"
    );
    assert!(
        html.replace("&#x2f;", "/")
            .contains(&format!("src=\"/s/launchy{logo}\"")),
        "{html}"
    );
    // No more banner on the home page.
    let (_, home) = b.get("/dashboard").await;
    assert!(!home.contains("Continue the setup guide"));
}

#[tokio::test]
async fn import_preview_then_confirm_with_the_apparel_csv() {
    let Some(csv) = shared_data("shopify_apparel.csv") else {
        return;
    };
    let app = spawn_app().await;
    let (_, token, b) = owner_browser(&app, "importer").await;
    let (status, html) = b.get("/dashboard/imports").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<label for=\"f-file\">CSV file</label>")
            && html.contains("Upload and preview"),
        "{html}"
    );
    let csrf = b.csrf("/dashboard/imports").await;
    // A bad file is a clear error on the form.
    let r = upload(
        &b,
        &format!("/dashboard/imports/preview?_csrf={csrf}"),
        "bad.csv",
        "text/csv",
        b"foo,bar\n1,2\n".to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("This file cannot be imported") && html.contains("aria-invalid=\"true\""),
        "{html}"
    );
    // The API's dry run of the same file: the reference counts.
    let dry: Value = app
        .with_token(
            Method::POST,
            "/api/v1/imports/products?dry_run=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let would_create = dry["would_create"].as_u64().unwrap();
    assert!(
        would_create > 0 && dry["would_update"] == json!(0) && dry["dry_run"] == json!(true),
        "{dry}"
    );
    // Nothing was written.
    let products = api_get(&app, &token, "/api/v1/products").await;
    assert_eq!(products["pagination"]["total"], json!(0));

    let r = upload(
        &b,
        &format!("/dashboard/imports/preview?_csrf={csrf}"),
        "shopify_apparel.csv",
        "text/csv",
        csv.clone(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("To create: {would_create}")) && html.contains("To update: 0"),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "Errors: {}",
            dry["errors"].as_array().unwrap().len()
        )),
        "{html}"
    );
    let marker = "name=\"pending_import_id\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let pending = html[start..].split('"').next().unwrap().to_string();
    let products = api_get(&app, &token, "/api/v1/products").await;
    assert_eq!(
        products["pagination"]["total"],
        json!(0),
        "preview writes nothing"
    );

    let r = b
        .post_form(
            "/dashboard/imports/confirm",
            &[("_csrf", &csrf), ("pending_import_id", &pending)],
        )
        .await;
    // The import runs in the background: the confirmation leads to its progress page.
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = r.headers()["location"].to_str().unwrap().to_string();
    assert!(page.starts_with("/dashboard/imports/"), "{page}");
    let mut html = String::new();
    for _ in 0..200 {
        html = b.get(&page).await.1;
        if html.contains("<h1>Import finished</h1>") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        html.contains(&format!("Created: {would_create}")) && html.contains("Updated: 0"),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{would_create}\"")) && html.contains("<progress"),
        "the bar is full: {html}"
    );
    assert!(html.contains("shopify_apparel.csv"), "{html}");
    let products = api_get(&app, &token, "/api/v1/products").await;
    assert_eq!(products["pagination"]["total"], json!(would_create));
    // The progress endpoint the bar polls, and the history on the upload page.
    let (status, progress) = b.get(&format!("{page}/progress.json")).await;
    assert_eq!(status, StatusCode::OK);
    let progress: Value = serde_json::from_str(&progress).unwrap();
    assert_eq!(progress["status"], json!("completed"));
    assert_eq!(progress["products_done"], json!(would_create));
    let (_, html) = b.get("/dashboard/imports").await;
    assert!(
        html.contains("Recent imports") && html.contains("shopify_apparel.csv"),
        "{html}"
    );
    let (status, _) = b.get("/dashboard/imports/not-an-id").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A pending import works once.
    let r = b
        .post_form(
            "/dashboard/imports/confirm",
            &[("_csrf", &csrf), ("pending_import_id", &pending)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Previewing again now reports updates.
    let r = upload(
        &b,
        &format!("/dashboard/imports/preview?_csrf={csrf}"),
        "shopify_apparel.csv",
        "text/csv",
        csv,
    )
    .await;
    let html = r.text().await.unwrap();
    assert!(
        html.contains("To create: 0") && html.contains(&format!("To update: {would_create}")),
        "{html}"
    );
}

#[tokio::test]
async fn editor_without_settings_edit_gets_a_403_page_on_the_wizard() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("editorwiz").await;
    app.add_member(&owner, "ed@editorwiz.example", "editor")
        .await;
    let b = Browser::new(&app);
    b.sign_in("dashboard", "ed@editorwiz.example", "member-password-1")
        .await;
    let (status, html) = b.get("/dashboard/onboarding/business").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(html.contains("Not allowed"), "{html}");
    let csrf = b.csrf("/dashboard").await;
    let r = b
        .post_form(
            "/dashboard/onboarding/business",
            &[
                ("_csrf", &csrf),
                ("_action", "continue"),
                ("name", "Hijack"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The nav hides the guide, and the home page has no banner.
    let (_, home) = b.get("/dashboard").await;
    assert!(!home.contains("/dashboard/onboarding"), "{home}");
}

#[tokio::test]
async fn switcher_moves_a_member_of_two_stores_between_them() {
    let app = spawn_app().await;
    let (_, owner_a) = app.provisioned_merchant("switcha").await;
    let (_, owner_b) = app.provisioned_merchant("switchb").await;
    app.add_member(&owner_a, "sam@switch.example", "editor")
        .await;
    // Sam joins the second store with the existing account through the invitation page.
    let r = app
        .with_token(Method::POST, "/api/v1/team/invitations", &owner_b)
        .json(&json!({ "email": "sam@switch.example", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = app
        .wait_mail_tokens("sam@switch.example", 2)
        .await
        .pop()
        .unwrap();
    let b = Browser::new(&app);
    let (_, html) = b.get(&format!("/invitations/accept?token={token}")).await;
    assert!(
        html.contains("<label for=\"f-password\">Password"),
        "{html}"
    );
    let r = b
        .post_form(
            "/invitations/accept",
            &[("token", &token), ("password", "member-password-1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    b.sign_in("dashboard", "sam@switch.example", "member-password-1")
        .await;
    let (_, home) = b.get("/dashboard").await;
    assert!(
        home.contains("Switch store") && home.contains("<h1>Shop switcha</h1>"),
        "{home}"
    );
    let me = app.login("sam@switch.example", "member-password-1").await;
    let me = api_get(
        &app,
        me["access_token"].as_str().unwrap(),
        "/api/v1/auth/me",
    )
    .await;
    let b_id = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tenant_name"] == "Shop switchb")
        .unwrap()["tenant_id"]
        .as_str()
        .unwrap()
        .to_string();
    let csrf = b.csrf("/dashboard").await;
    let r = b
        .post_form(
            "/dashboard/switch",
            &[("_csrf", &csrf), ("tenant_id", &b_id)],
        )
        .await;
    let st = r.status();
    assert_eq!(st, StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/dashboard");
    let (_, home) = b.get("/dashboard").await;
    assert!(
        home.contains("<h1>Shop switchb</h1>") && home.contains("(viewer)"),
        "{home}"
    );
    // A store the user is not a member of is refused.
    let csrf = b.csrf("/dashboard").await;
    let r = b
        .post_form(
            "/dashboard/switch",
            &[
                ("_csrf", &csrf),
                ("tenant_id", "0195a3c2-0000-7000-8000-000000000009"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Without the CSRF token nothing happens.
    let r = b
        .post_form("/dashboard/switch", &[("tenant_id", &b_id)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn onboarding_api_validates_by_field_and_tracks_steps() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("wizapi").await;
    let patch = |step: &str, body: Value| {
        app.with_token(Method::PATCH, &format!("/api/v1/onboarding/{step}"), &token)
            .json(&body)
            .send()
    };
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert_eq!(st["steps"].as_array().unwrap().len(), 7);
    assert!(
        st["completed_at"].is_null() && st["coming_soon"] == json!(false),
        "{st}"
    );
    assert_eq!(st["ready_to_publish"], json!(false));
    // 422 names the field, in the API's error shape.
    let r = patch(
        "marketing",
        json!({ "values": { "meta_pixel_id": "12ab" } }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["details"]["field"], "meta_pixel_id");
    let r = patch("business", json!({ "values": { "nickname": "x" } }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = patch(
        "branding",
        json!({ "values": { "font_body": "x; } body { display:none" } }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = patch("nowhere", json!({})).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = patch("business", json!({ "mark": "finished" }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // "done" needs the essentials: a contact e-mail for the business step.
    let r = patch(
        "business",
        json!({ "values": { "name": "Api Shop" }, "mark": "done" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["details"]["field"], "contact_email");
    let r = patch(
        "business",
        json!({ "values": { "name": "Api Shop", "contact_email": "a@wizapi.example", "category": "books" }, "mark": "done" }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let st: Value = r.json().await.unwrap();
    assert_eq!(step_status(&st, "business"), "done");
    assert_eq!(st["values"]["business"]["category"], "books");
    assert_eq!(st["coming_soon"], json!(true));
    let r = patch("website", json!({ "mark": "skipped" }))
        .await
        .unwrap();
    let st: Value = r.json().await.unwrap();
    assert_eq!(step_status(&st, "website"), "skipped");
    // Two concurrent auto-saves of different fields both land.
    let (a, b) = tokio::join!(
        patch(
            "marketing",
            json!({ "values": { "google_analytics_id": "G-AAAA1111" } })
        ),
        patch(
            "marketing",
            json!({ "values": { "meta_pixel_id": "1234567890123456" } })
        ),
    );
    assert_eq!(a.unwrap().status(), StatusCode::OK);
    assert_eq!(b.unwrap().status(), StatusCode::OK);
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    assert_eq!(
        st["values"]["marketing"]["google_analytics_id"],
        "G-AAAA1111"
    );
    assert_eq!(
        st["values"]["marketing"]["meta_pixel_id"],
        "1234567890123456"
    );
    // Publishing refuses while required items are missing, naming them.
    let r = app
        .with_token(Method::POST, "/api/v1/onboarding/publish", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["details"]["field"], "checklist");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("active product"),
        "{e}"
    );
    // The logo endpoint takes a raw body too, checked by content.
    let r = app
        .with_token(Method::POST, "/api/v1/onboarding/logo", &token)
        .header("content-type", "image/svg+xml")
        .body("<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let up: Value = r.json().await.unwrap();
    assert_eq!(up["content_type"], "image/svg+xml");
    let r = app
        .client
        .get(app.url(&format!("/s/wizapi{}", up["logo_url"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(
        r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
}

#[tokio::test]
async fn import_dry_run_reads_woocommerce_too() {
    let Some(csv) = shared_data("woocommerce_sample_products.csv") else {
        return;
    };
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("woodry").await;
    let dry: Value = app
        .with_token(
            Method::POST,
            "/api/v1/imports/products?dry_run=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry["format"], "woo_commerce", "{dry}");
    assert!(dry["would_create"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(dry["created"], json!(0));
    let id = dry["pending_import_id"].as_str().unwrap();
    let products = api_get(&app, &token, "/api/v1/products").await;
    assert_eq!(products["pagination"]["total"], json!(0));
    // Another tenant cannot use this tenant's pending upload.
    let (_, other) = app.provisioned_merchant("woodrytwo").await;
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/imports/products/pending/{id}"),
            &other,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/imports/products/pending/{id}"),
            &token,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["created"], dry["would_create"], "{done}");
}

#[tokio::test]
async fn import_preview_reports_skus_of_other_products_of_the_store() {
    let app = spawn_app().await;
    let (_, token, b) = owner_browser(&app, "skuclash").await;
    // In the store: `old-tee` (TEE-S, TEE-M) and `swap-mug` (MUG-1).
    for body in [
        crate::catalog::product("old-tee", "TEE", "active"),
        json!({ "title": "Swap Mug", "handle": "swap-mug", "variants": [{ "sku": "MUG-1", "price": "8.00" }] }),
    ] {
        let r = app
            .with_token(Method::POST, "/api/v1/products", &token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    // Row 3 takes TEE-M, still on `old-tee` (which the file only updates later): refused.
    // `old-tee` keeps its own TEE-S; `swap-mug` gives MUG-1 up, so `new-mug` may take it.
    let csv = "Handle,Title,Option1 Name,Option1 Value,Variant Price,Variant SKU\n\
               new-tee,New Tee,Size,S,10.00,NEW-S\n\
               new-tee,,Size,M,10.00,TEE-M\n\
               old-tee,Old Tee,Size,S,12.00,TEE-S\n\
               swap-mug,Swap Mug,,,8.00,MUG-2\n\
               new-mug,New Mug,,,8.00,MUG-1\n";
    let dry: Value = app
        .with_token(
            Method::POST,
            "/api/v1/imports/products?dry_run=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry["would_create"], json!(1), "{dry}");
    assert_eq!(dry["would_update"], json!(2), "{dry}");
    assert_eq!(dry["failed"], json!(1), "{dry}");
    assert_eq!(
        dry["errors"],
        json!([{
            "row": 3,
            "line": 3,
            "column": "SKU",
            "reason": "SKU 'TEE-M' is already used by product 'old-tee'; this product would not be imported",
        }]),
        "{dry}"
    );
    // The import itself agrees with the preview.
    let id = dry["pending_import_id"].as_str().unwrap();
    let done: Value = app
        .with_token(
            Method::POST,
            &format!("/api/v1/imports/products/pending/{id}"),
            &token,
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&done["created"], &done["updated"], &done["failed"]),
        (&json!(1), &json!(2), &json!(1)),
        "{done}"
    );
    let products = api_get(&app, &token, "/api/v1/products").await;
    assert_eq!(products["pagination"]["total"], json!(3), "{products}");
    // The dashboard's preview page shows such a refusal: MUG-1 is now on `new-mug`.
    let csrf = b.csrf("/dashboard/imports").await;
    let clash = "Handle,Title,Variant Price,Variant SKU\nnew-cup,New Cup,5.00,MUG-1\n";
    let r = upload(
        &b,
        &format!("/dashboard/imports/preview?_csrf={csrf}"),
        "clash.csv",
        "text/csv",
        clash.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("To create: 0") && html.contains("Errors: 1"),
        "{html}"
    );
    assert!(
        html.contains("<td>2</td><td>SKU</td>")
            && html.contains(
                "already used by product &#x27;new-mug&#x27;; this product would not be imported"
            ),
        "{html}"
    );
}

/// Creates an active product through the API; returns its title.
async fn active_product(app: &TestApp, token: &str, title: &str) -> String {
    let r = app
        .with_token(Method::POST, "/api/v1/products", token)
        .json(&json!({
            "title": title,
            "status": "active",
            "variants": [{ "price": "24.50", "inventory_quantity": 3 }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    title.to_string()
}

const PREVIEW: &str = "/dashboard/onboarding/branding/preview";

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

#[tokio::test]
async fn branding_preview_renders_the_real_storefront_with_draft_values() {
    let app = spawn_app().await;
    let (_, token, b) = owner_browser(&app, "preview").await;
    let shirt = active_product(&app, &token, "Preview Linen Shirt").await;
    let cap = active_product(&app, &token, "Preview Wool Cap").await;
    let csrf = b.csrf("/dashboard/onboarding/branding").await;
    // Opening the guide closes the storefront ("coming soon") until it is published.
    let (status, body) = autosave(
        &b,
        "/dashboard/onboarding/branding",
        &csrf,
        &[("color_primary", "#123abc")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = autosave(
        &b,
        "/dashboard/onboarding/marketing",
        &csrf,
        &[("google_analytics_id", "G-PREVIEW123")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let r = app.client.get(app.url("/s/preview/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The preview is the store's own home page (theme, name, products), not coming soon,
    // with the draft colour and font over the saved ones.
    let r = b
        .get_raw(&format!(
            "{PREVIEW}?color_primary=%23ff0066&font_heading=Georgia%2C+serif"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "x-frame-options"), "SAMEORIGIN");
    let csp = header(&r, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'self'",
        "form-action 'none'",
        "sandbox",
    ] {
        assert!(csp.contains(directive), "{directive}: {csp}");
    }
    assert!(
        !csp.contains("script-src"),
        "no script source at all: {csp}"
    );
    assert!(header(&r, "content-type").starts_with("text/html"));
    // (minijinja escapes `/` in attributes as `&#x2f;`.)
    let html = r.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("Shop preview"), "{html}");
    assert!(html.contains(&shirt) && html.contains(&cap), "{html}");
    assert!(html.contains("/themes/classic/style.css"), "{html}");
    assert!(html.contains("--color-primary: #ff0066;"), "{html}");
    assert!(html.contains("--font-heading: Georgia, serif;"), "{html}");
    assert!(!html.contains("coming soon"), "{html}");
    // Links and the logo follow the store's path; tracking snippets are left out.
    assert!(html.contains("href=\"/s/preview/products\""), "{html}");
    assert!(
        !html.contains("G-PREVIEW123") && !html.contains("<script"),
        "{html}"
    );

    // Without draft values: the saved colour.
    let (status, html) = b.get(PREVIEW).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("--color-primary: #123abc;"), "{html}");

    // Values the API would refuse are ignored (the saved value shows), never reflected;
    // settings the branding step does not edit are ignored too.
    let evil = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("color_primary", "red;}</style><script>alert(1)</script>")
        .append_pair("font_body", "x;}</style><script>alert(2)</script>")
        .append_pair("color_accent", "#12345g")
        .append_pair("logo_url", "https://evil.example/logo.png")
        .append_pair("hero_title", "<b>Injected hero</b>")
        .finish();
    let (status, html) = b.get(&format!("{PREVIEW}?{evil}")).await;
    assert_eq!(status, StatusCode::OK);
    for bad in [
        "<script",
        "alert(",
        "red;",
        "</style><",
        "#12345g",
        "evil.example",
        "Injected hero",
    ] {
        assert!(!html.contains(bad), "{bad} reflected: {html}");
    }
    assert!(html.contains("--color-primary: #123abc;"), "{html}");
    assert!(html.contains("--color-accent: #b5651d;"), "{html}");
    assert!(html.contains("--font-body: -apple-system"), "{html}");

    // A preview saves nothing, and the real storefront still shows "coming soon".
    let st = api_get(&app, &token, "/api/v1/onboarding").await;
    let saved = st["theme_settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "color_primary")
        .unwrap()["value"]
        .clone();
    assert_eq!(saved, "#123abc");
    let r = app.client.get(app.url("/s/preview/")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);

    // The branding step frames the preview, sandboxed and titled, with the saved values.
    let (status, html) = b.get("/dashboard/onboarding/branding").await;
    assert_eq!(status, StatusCode::OK);
    let start = html.find("<iframe").expect("an iframe");
    let iframe = &html[start..start + html[start..].find('>').unwrap()];
    assert!(iframe.contains("id=\"brand-preview\""), "{iframe}");
    assert!(iframe.contains(" sandbox"), "{iframe}");
    assert!(
        !iframe.contains("allow-"),
        "no sandbox exceptions: {iframe}"
    );
    assert!(iframe.contains("title=\"Storefront preview"), "{iframe}");
    let src = iframe
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    assert!(src.starts_with(&format!("{PREVIEW}?")), "{src}");
    assert!(src.contains("color_primary=%23123abc"), "{src}");
    // The iframe's own address renders (what a browser without JavaScript loads).
    let (status, html) = b.get(&src).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("--color-primary: #123abc;") && html.contains(&shirt));
}

#[tokio::test]
async fn branding_preview_needs_a_session_and_settings_edit() {
    let app = spawn_app().await;
    let (_, owner) = app.provisioned_merchant("previewperm").await;
    active_product(&app, &owner, "Secret Draft Product").await;
    // Signed out: the sign-in page, keeping where the user was going; nothing rendered.
    let anon = Browser::new(&app);
    let r = anon
        .get_raw(&format!("{PREVIEW}?color_primary=%23ff0066"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&r),
        "/dashboard/login?next=%2Fdashboard%2Fonboarding%2Fbranding%2Fpreview%3Fcolor_primary%3D%2523ff0066"
    );
    assert!(!r.text().await.unwrap().contains("Secret Draft Product"));
    // The API behind it needs a token too.
    let r = app
        .client
        .get(app.url("/api/v1/onboarding/preview"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // An editor (no settings.edit) gets the wizard's 403 page.
    app.add_member(&owner, "ed@previewperm.example", "editor")
        .await;
    let b = Browser::new(&app);
    b.sign_in("dashboard", "ed@previewperm.example", "member-password-1")
        .await;
    let r = b.get_raw(PREVIEW).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(&r, "x-frame-options"), "SAMEORIGIN");
    let html = r.text().await.unwrap();
    assert!(html.contains("Not allowed"), "{html}");
    assert!(!html.contains("Secret Draft Product"), "{html}");
    let (status, wizard) = b.get("/dashboard/onboarding/branding").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(wizard.contains("Not allowed"), "{wizard}");
}

#[tokio::test]
async fn branding_preview_shows_only_the_sessions_own_store() {
    let app = spawn_app().await;
    let (a_id, a_owner) = app.provisioned_merchant("previewa").await;
    active_product(&app, &a_owner, "Alpha Only Lamp").await;
    let (_, b_owner, b) = owner_browser(&app, "previewb").await;
    active_product(&app, &b_owner, "Bravo Only Vase").await;
    // B's owner sees B's store, whatever names A: the query, the path prefix or a header.
    for path in [
        PREVIEW.to_string(),
        format!("{PREVIEW}?tenant_id={a_id}&tenant=previewa"),
        format!("/s/previewa{PREVIEW}"),
    ] {
        let r = b
            .client
            .get(format!("{}{path}", b.base))
            .header("x-tenant-id", &a_id)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("Alpha Only Lamp") && !html.contains("Shop previewa"),
            "{path}: {html}"
        );
        assert!(
            html.contains("Bravo Only Vase") && html.contains("Shop previewb"),
            "{path}: {html}"
        );
    }
    // The API behind it refuses B's token acting for A.
    let r = app
        .with_token(Method::GET, "/api/v1/onboarding/preview", &b_owner)
        .header("x-tenant-id", &a_id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().contains("Alpha Only Lamp"));
    // A's owner sees A's store.
    let a = Browser::new(&app);
    a.sign_in("dashboard", "owner@previewa.example", OWNER_PASSWORD)
        .await;
    let (status, html) = a.get(PREVIEW).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("Alpha Only Lamp") && !html.contains("Bravo Only Vase"),
        "{html}"
    );
}
