//! The admin panel through plain HTTP, as a browser without JavaScript uses it: the
//! activation form and the live provisioning view (its JSON fragment), subdomain checks,
//! suspend/reactivate, the vendor import report and its failed-rows CSV, themes (zip
//! upload, enable/disable), the overview and the audit log; and what support staff see.

use crate::helpers::*;
use crate::ui::{Browser, location};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

async fn admin_browser(app: &TestApp) -> (Browser, String) {
    let b = Browser::new(app);
    b.sign_in("admin", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let csrf = b.csrf("/admin/merchants").await;
    (b, csrf)
}

/// Posts a multipart form the way a browser does (same origin, CSRF in the query).
async fn post_multipart(
    b: &Browser,
    path: &str,
    form: reqwest::multipart::Form,
) -> reqwest::Response {
    b.client
        .post(format!("{}{path}", b.base))
        .header("origin", b.base.trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .multipart(form)
        .send()
        .await
        .expect("post")
}

async fn get_json(b: &Browser, path: &str) -> (StatusCode, Value) {
    let r = b.get_raw(path).await;
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The text inside the element with `id` (up to its next `<`).
fn text_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} in page"));
    let rest = &html[at..];
    let start = rest.find('>').expect(">") + 1;
    rest[start..]
        .split('<')
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

#[tokio::test]
async fn activation_form_leads_to_live_progress_that_completes() {
    let app = spawn_app().await;
    let id = app
        .create_merchant("Dialog Shop", "owner@dialog.example")
        .await;
    let (b, csrf) = admin_browser(&app).await;

    // The detail page has the dialog, its opener is a link to the full page.
    let (status, html) = b.get(&format!("/admin/merchants/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<dialog id=\"activate-dialog\""), "{html}");
    assert!(html.contains(&format!(
        "href=\"/admin/merchants/{id}/activate\" data-open-dialog=\"activate-dialog\""
    )));
    // The full page has the same form contract.
    let (status, html) = b.get(&format!("/admin/merchants/{id}/activate")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<legend>Theme</legend>"));
    for (tid, name) in [("classic", "Classic"), ("midnight", "Midnight")] {
        assert!(html.contains(&format!(
            "id=\"theme-{tid}\" name=\"theme\" value=\"{tid}\""
        )));
        assert!(html.contains(&format!("src=\"/themes/{tid}/preview.svg\"")));
        assert!(html.contains(&format!("<span>{name}</span>")));
    }
    assert!(html.contains("<label for=\"f-plan\">Plan</label>"));
    assert!(html.contains("Growth — 5000 products, 10 staff · 29.00 EUR per month"));
    assert!(html.contains("<label for=\"f-subdomain\">Subdomain</label>"));
    assert!(html.contains("data-check-url=\"/admin/check-subdomain?subdomain=\""));
    assert!(html.contains("<label for=\"f-custom_domain\">Custom domain (optional)</label>"));
    assert!(html.contains("<button type=\"submit\">Activate</button>"));

    // A bad subdomain: the form again, with the error next to the field.
    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/activate"),
            &[
                ("_csrf", &csrf),
                ("theme", "midnight"),
                ("plan", "growth"),
                ("subdomain", "www"),
                ("custom_domain", ""),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"e-subdomain\""), "{html}");
    assert!(html.contains("reserved"), "{html}");
    assert!(html.contains("value=\"www\""), "the value is kept");

    // A good submit: 303 to the progress view.
    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/activate"),
            &[
                ("_csrf", &csrf),
                ("theme", "midnight"),
                ("plan", "growth"),
                ("subdomain", "dialog-shop"),
                ("custom_domain", "www.dialog-shop.example.org"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(location(&r), format!("/admin/merchants/{id}/provisioning"));
    let (status, html) = b.get(&format!("/admin/merchants/{id}/provisioning")).await;
    assert_eq!(status, StatusCode::OK);
    for step in [
        "create_workspace",
        "create_owner",
        "deploy_storefront",
        "seed_starter_data",
        "send_welcome_email",
    ] {
        assert!(html.contains(&format!("data-step=\"{step}\"")), "{step}");
    }
    assert!(html.contains("id=\"provisioning-refresh\""));

    // Poll the JSON fragment (what admin.js does between events) until done.
    let mut last = Value::Null;
    for _ in 0..300 {
        let (s, v) = get_json(&b, &format!("/admin/merchants/{id}/provisioning.json")).await;
        assert_eq!(s, StatusCode::OK);
        last = v;
        if last["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(last["status_label"], "Completed", "{last}");
    assert!(last["total_label"].as_str().unwrap().starts_with("Total: "));
    assert!(
        last["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "completed" && s["duration_ms"].is_i64()),
        "{last}"
    );
    // The server-rendered page shows the same final state.
    let (_, html) = b.get(&format!("/admin/merchants/{id}/provisioning")).await;
    assert_eq!(text_of(&html, "provisioning-status"), "Completed");
    let total = text_of(&html, "provisioning-total");
    assert!(
        total.starts_with("Total: ") && total.ends_with(" ms"),
        "{total}"
    );
    assert!(html.contains("data-step=\"send_welcome_email\" data-status=\"completed\""));
    // The chosen theme, plan and the custom domain were recorded.
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["theme"], "midnight");
    assert_eq!(m["plan"], "growth");
    let domains: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}/domains"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        domains
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["host"] == "www.dialog-shop.example.org" && d["kind"] == "custom"),
        "{domains}"
    );
    // The detail page: usage against limits and the provisioning history with timings.
    let (_, html) = b.get(&format!("/admin/merchants/{id}")).await;
    assert!(html.contains("Provisioning history"));
    assert!(html.contains("<td data-usage=\"staff\">1 / 10"), "{html}");
    assert!(html.contains("www.dialog-shop.example.org"));
    assert!(
        !html.contains("<dialog id=\"activate-dialog\""),
        "no longer pending"
    );
}

#[tokio::test]
async fn subdomain_check_reports_taken_invalid_reserved_and_available() {
    let app = spawn_app().await;
    app.provisioned_merchant("takenshop").await;
    let (b, _) = admin_browser(&app).await;
    let cases = [
        ("takenshop", false, Some("taken")),
        ("-bad-", false, Some("invalid")),
        ("www", false, Some("reserved")),
        ("fresh-shop", true, None),
    ];
    for (name, available, reason) in cases {
        let (s, v) = get_json(&b, &format!("/admin/check-subdomain?subdomain={name}")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["available"], available, "{name}: {v}");
        assert_eq!(v["reason"].as_str(), reason, "{name}: {v}");
        assert!(!v["message"].as_str().unwrap_or("").is_empty());
    }
    // Signed out: JSON 401, not a redirect to the sign-in page.
    let anon = Browser::new(&app);
    let (s, _) = get_json(&anon, "/admin/check-subdomain?subdomain=x").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn suspend_and_reactivate_from_the_detail_page() {
    let app = spawn_app().await;
    let (id, _) = app.provisioned_merchant("suspendme").await;
    let (b, csrf) = admin_browser(&app).await;
    let (_, html) = b.get(&format!("/admin/merchants/{id}")).await;
    assert!(html.contains("<button type=\"submit\" class=\"danger\">Suspend</button>"));
    assert!(html.contains("data-confirm=\"Suspend"));
    assert!(!html.contains(">Reactivate</button>"));

    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/suspend"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/admin/merchants/{id}"));
    let (_, html) = b.get(&format!("/admin/merchants/{id}")).await;
    assert!(html.contains("Merchant suspended"), "flash shown");
    assert!(html.contains(">Reactivate</button>"));
    assert!(html.contains("merchant.suspended"), "recent audit entries");
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "suspended");

    // Suspending twice is refused by the API; the page says why.
    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/suspend"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get(&format!("/admin/merchants/{id}")).await;
    assert!(html.contains("expected active"), "{html}");

    // Without the CSRF token nothing happens.
    let r = b
        .post_form(&format!("/admin/merchants/{id}/reactivate"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/reactivate"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "active");
    // The list shows the provisioning time and the theme.
    let (_, html) = b.get("/admin/merchants?q=suspendme").await;
    assert!(html.contains(" ms</td>"), "{html}");
    assert!(html.contains("<td>classic</td>"));
}

#[tokio::test]
async fn vendor_import_report_and_failed_rows_csv() {
    let Some(bytes) = shared_data("vendors_lu_300.csv") else {
        return;
    };
    let app = spawn_app().await;
    let (b, csrf) = admin_browser(&app).await;
    let (_, html) = b.get("/admin/imports/vendors").await;
    assert!(html.contains("<label for=\"f-file\">Vendor CSV file</label>"));
    assert!(html.contains("<label for=\"f-theme\">Theme</label>"));
    assert!(html.contains("<label for=\"f-plan\">Plan</label>"));
    assert!(html.contains("<button type=\"submit\">Import vendors</button>"));

    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.clone())
                .file_name("vendors_lu_300.csv")
                .mime_str("text/csv")
                .unwrap(),
        )
        .text("theme", "midnight")
        .text("plan", "starter");
    let r = post_multipart(&b, &format!("/admin/imports/vendors?_csrf={csrf}"), form).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    let report_path = location(&r);
    assert!(report_path.starts_with("/admin/imports/vendors/"));
    let import_id = report_path.rsplit('/').next().unwrap().to_string();
    let api: Value = app
        .admin_get(&format!("/api/v1/admin/imports/vendors/{import_id}"))
        .await
        .json()
        .await
        .unwrap();
    let (created, failed) = (
        api["created"].as_i64().unwrap(),
        api["failed"].as_i64().unwrap(),
    );
    assert!(
        created > 200 && failed > 0,
        "{created} created, {failed} failed"
    );
    assert_eq!(api["theme"], "midnight");

    let (status, html) = b.get(&report_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("Created: {created}")));
    assert!(html.contains("<strong>vendors_lu_300.csv</strong>"));
    assert!(html.contains(&format!("Failed: {failed}")));
    assert!(html.contains(&format!(
        "href=\"/admin/imports/vendors/{import_id}/failed.csv\" download>Download failed rows (CSV)</a>"
    )));
    let first_failed = &api["failed_rows"][0];
    assert!(html.contains(&format!("<td>{}</td>", first_failed["row"])));

    // The failed rows, in the input format plus an error column.
    let r = b
        .get_raw(&format!("/admin/imports/vendors/{import_id}/failed.csv"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = r.bytes().await.unwrap();
    let mut rd = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(&body[..]);
    let header: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let input_text = String::from_utf8(bytes.clone()).unwrap();
    let input_header = input_text.lines().next().unwrap();
    assert_eq!(header.join(","), format!("{input_header},error"));
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len() as i64, failed);
    // Each failed row carries its original cells: the same record is in the input.
    let mut input = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(bytes.as_slice());
    let originals: Vec<Vec<String>> = input
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    for row in &rows {
        let cells: Vec<String> = row.iter().map(String::from).collect();
        let (values, error) = cells.split_at(header.len() - 1);
        assert!(!error[0].is_empty(), "{cells:?}");
        assert!(
            originals.iter().any(|o| {
                let mut o = o.clone();
                o.resize(values.len(), String::new());
                o == values
            }),
            "not an input row: {cells:?}"
        );
    }
    // Progress: the created merchants finish provisioning; the report counts them.
    let mut provisioned = 0;
    for _ in 0..600 {
        let (_, v) = get_json(
            &b,
            &format!("/admin/imports/vendors/{import_id}/progress.json"),
        )
        .await;
        provisioned = v["provisioned"].as_i64().unwrap_or(0);
        if provisioned == created {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(provisioned, created);
    let (_, html) = b.get(&report_path).await;
    assert!(html.contains(&format!("Provisioned: {created} of {created}")));
    let (_, html) = b.get("/admin/imports/vendors").await;
    assert!(html.contains(&format!("href=\"/admin/imports/vendors/{import_id}\"")));
}

/// A zip of the classic theme's files under a new id, with `tweak` applied to the
/// file list (path → contents) first.
fn theme_zip(id: &str, name: &str, tweak: impl FnOnce(&mut Vec<(String, String)>)) -> Vec<u8> {
    theme_zip_from("classic", id, name, tweak)
}

/// A zip of the built-in theme `dir`'s files under a new id, with `tweak` applied to
/// the file list (path → contents) first.
fn theme_zip_from(
    dir: &str,
    id: &str,
    name: &str,
    tweak: impl FnOnce(&mut Vec<(String, String)>),
) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("themes")
        .join(dir);
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("config.json")).unwrap()).unwrap();
    config["id"] = json!(id);
    config["name"] = json!(name);
    let mut files = vec![
        ("config.json".to_string(), config.to_string()),
        (
            "style.css".to_string(),
            std::fs::read_to_string(root.join("style.css")).unwrap(),
        ),
        (
            "preview.svg".to_string(),
            std::fs::read_to_string(root.join("preview.svg")).unwrap(),
        ),
    ];
    for t in [
        "layout.html",
        "home.html",
        "catalog.html",
        "product.html",
        "not_found.html",
        "unavailable.html",
        "cart.html",
        "checkout.html",
        "order.html",
        "account.html",
    ] {
        files.push((
            format!("templates/{t}"),
            std::fs::read_to_string(root.join("templates").join(t)).unwrap(),
        ));
    }
    tweak(&mut files);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, body) in files {
        w.start_file(path, opts).unwrap();
        w.write_all(body.as_bytes()).unwrap();
    }
    w.finish().unwrap().into_inner()
}

async fn upload_theme(b: &Browser, csrf: &str, zip: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(zip)
            .file_name("theme.zip")
            .mime_str("application/zip")
            .unwrap(),
    );
    post_multipart(b, &format!("/admin/themes?_csrf={csrf}"), form).await
}

#[tokio::test]
async fn themes_upload_good_and_bad_and_enable_disable() {
    let app = spawn_app().await;
    let (b, csrf) = admin_browser(&app).await;
    let (status, html) = b.get("/admin/themes").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("src=\"/themes/classic/preview.svg\""));
    assert!(html.contains("action=\"/admin/themes/midnight/disable\""));
    assert!(html.contains("<label for=\"f-theme-file\">Theme zip file</label>"));

    // A bad theme: every reason is listed.
    let bad = theme_zip("Bad Id", "Broken", |files| {
        files.retain(|(p, _)| p != "templates/product.html" && p != "preview.svg");
        for (p, body) in files.iter_mut() {
            if p == "templates/home.html" {
                *body = "{% for x in %}".into();
            }
            if p == "templates/not_found.html" {
                *body = "{{ 'x' | no_such_filter }}".into();
            }
        }
    });
    let r = upload_theme(&b, &csrf, bad).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    for reason in [
        // minijinja's HTML escaping writes `/` as `&#x2f;`.
        "templates&#x2f;product.html is missing",
        "preview.svg is missing",
        "template home.html does not compile",
        "template not_found.html does not render: unknown filter",
        "id &#x27;Bad Id&#x27; must be",
    ] {
        assert!(html.contains(reason), "{reason} in {html}");
    }
    let bad_config = theme_zip("x", "x", |files| {
        files[0].1 = "{\"id\": \"nope\"}".into();
    });
    let r = upload_theme(&b, &csrf, bad_config).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("config.json is not a valid theme manifest")
    );
    let r = upload_theme(&b, &csrf, b"not a zip".to_vec()).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A built-in id cannot be replaced.
    let r = upload_theme(&b, &csrf, theme_zip("classic", "Fake classic", |_| {})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A good theme: listed, served, offered at activation.
    let r = upload_theme(&b, &csrf, theme_zip("aurora", "Aurora", |_| {})).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(location(&r), "/admin/themes");
    let (_, html) = b.get("/admin/themes").await;
    assert!(html.contains("Theme “Aurora” uploaded and enabled."));
    assert!(html.contains("data-theme=\"aurora\""));
    let r = b.get_raw("/themes/aurora/preview.svg").await;
    assert_eq!(r.status(), StatusCode::OK);
    let id = app
        .create_merchant("Aurora Shop", "owner@aurora.example")
        .await;
    let (_, html) = b.get(&format!("/admin/merchants/{id}/activate")).await;
    assert!(html.contains("id=\"theme-aurora\""));

    // Disable midnight: no longer offered, and the API refuses it.
    let r = b
        .post_form("/admin/themes/midnight/disable", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get(&format!("/admin/merchants/{id}/activate")).await;
    assert!(!html.contains("id=\"theme-midnight\""));
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "midnight", "plan": "starter" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "theme_disabled");
    // The default theme cannot be disabled.
    let r = b
        .post_form("/admin/themes/classic/disable", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get("/admin/themes").await;
    assert!(html.contains("the default theme cannot be disabled"));
    // Re-enable; the uploaded theme activates a store that renders with it.
    let r = b
        .post_form("/admin/themes/midnight/enable", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get(&format!("/admin/merchants/{id}/activate")).await;
    assert!(html.contains("id=\"theme-midnight\""));
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{id}/activate"),
            json!({ "theme": "aurora", "plan": "starter", "subdomain": "aurora-shop" }),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let v = app.wait_provisioning(&id).await;
    assert_eq!(v["status"], "completed", "{v}");
    let r = app
        .client
        .get(app.url("/s/aurora-shop/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("/themes/aurora/style.css")
            || page.contains("&#x2f;themes&#x2f;aurora&#x2f;style.css"),
        "{page}"
    );
}

#[tokio::test]
async fn overview_shows_numbers_and_accessible_charts() {
    let app = spawn_app().await;
    app.provisioned_merchant("overviewed").await;
    app.create_merchant("Waiting Shop", "owner@waiting.example")
        .await;
    let (b, _) = admin_browser(&app).await;
    let r = b.get_raw("/admin").await;
    assert_eq!(location(&r), "/admin/overview");
    let (status, html) = b.get("/admin/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&html, "merchants-total"), "2");
    assert!(html.contains("<td data-count=\"active\">1</td>"));
    assert!(html.contains("<td data-count=\"pending\">1</td>"));
    assert!(html.contains("role=\"img\" aria-labelledby=\"merchants-chart-title\""));
    assert!(
        html.contains("Merchants by status: active 1, pending 1"),
        "{html}"
    );
    assert!(html.contains("<title>active: 1</title>"));
    assert_eq!(text_of(&html, "success-24h"), "100 %");
    let v: Value = app
        .admin_get("/api/v1/admin/overview")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["provisioning_24h"]["completed"], 1);
    assert!(v["provisioning_24h"]["p50_ms"].is_i64());
    assert_eq!(v["provisioning_per_day"].as_array().unwrap().len(), 7);
    assert!(html.contains(&format!(
        "<th scope=\"row\">Last 24 hours</th><td>1</td><td>1</td><td>0</td><td>0</td><td>100 %</td><td>{} ms</td>",
        v["provisioning_24h"]["p50_ms"]
    )));
}

#[tokio::test]
async fn audit_log_filters() {
    let app = spawn_app().await;
    let (id, _) = app.provisioned_merchant("audited").await;
    let other = app
        .create_merchant("Other Shop", "owner@other.example")
        .await;
    let (b, csrf) = admin_browser(&app).await;
    b.post_form(
        &format!("/admin/merchants/{id}/suspend"),
        &[("_csrf", &csrf)],
    )
    .await;

    let (status, html) = b.get("/admin/audit-log").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<code>merchant.suspended</code>"));
    assert!(html.contains("<code>merchant.created</code>"));

    let (_, html) = b.get("/admin/audit-log?action=merchant.suspended").await;
    assert!(html.contains("<code>merchant.suspended</code>"));
    assert!(!html.contains("<code>merchant.created</code>"));

    let (_, html) = b.get(&format!("/admin/audit-log?tenant_id={other}")).await;
    assert!(html.contains("<code>merchant.created</code>"));
    assert!(!html.contains("<code>merchant.suspended</code>"));

    let (_, html) = b
        .get("/admin/audit-log?actor=ADMIN%40test.example&action=merchant.")
        .await;
    assert!(html.contains("<code>merchant.suspended</code>"));
    let (_, html) = b.get("/admin/audit-log?actor=nobody%40test.example").await;
    assert!(html.contains("No entries match these filters."));

    let (_, html) = b.get("/admin/audit-log?since=2999-01-01").await;
    assert!(html.contains("No entries match these filters."));
    let (_, html) = b
        .get("/admin/audit-log?since=2000-01-01&until=2999-12-31&action=merchant.suspended")
        .await;
    assert!(html.contains("<code>merchant.suspended</code>"));
    // A bad date is a form error, not a crash.
    let (status, html) = b.get("/admin/audit-log?since=yesterday").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html.contains("RFC 3339"));
}

#[tokio::test]
async fn audit_log_user_filter_is_a_substring_and_merchant_filter_takes_typed_text() {
    let app = spawn_app().await;
    let (id, _) = app.provisioned_merchant("audited").await;
    let other = app
        .create_merchant("Other Shop", "owner@other.example")
        .await;
    let (b, csrf) = admin_browser(&app).await;
    b.post_form(
        &format!("/admin/merchants/{id}/suspend"),
        &[("_csrf", &csrf)],
    )
    .await;
    let suspended = "<code>merchant.suspended</code>";
    let none = "No entries match these filters.";

    // The user filter: any part of the label, any case; LIKE wildcards match themselves.
    for (actor, found) in [
        ("DMIN%40TEST", true),
        ("admin", true),
        ("adm_n", false),
        ("%25", false),
        ("%5C", false),
    ] {
        let (status, html) = b
            .get(&format!(
                "/admin/audit-log?action=merchant.suspended&actor={actor}"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(html.contains(suspended), found, "{actor}: {html}");
        assert_eq!(html.contains(none), !found, "{actor}");
        let total = app
            .admin_get(&format!(
                "/api/v1/admin/audit-log?action=merchant.suspended&actor={actor}"
            ))
            .await
            .json::<Value>()
            .await
            .unwrap()["pagination"]["total"]
            .clone();
        assert_eq!(total, json!(if found { 1 } else { 0 }), "{actor}");
    }
    let (_, html) = b.get("/admin/audit-log").await;
    assert!(
        html.contains("<label for=\"a-actor\">User</label>")
            && html.contains("<label for=\"a-merchant\">Merchant</label>")
            && html.contains("list=\"a-merchant-list\"")
            && html.contains("<option value=\"audited\">Shop audited</option>")
            && !html.contains("<select"),
        "{html}"
    );

    // The merchant filter: a subdomain, a name (any case), an id, or a part of one that
    // matches a single merchant; the field then shows that merchant's subdomain or name.
    for (typed, shown, is_audited) in [
        ("audited".to_string(), "audited", true),
        ("AUDITED".to_string(), "audited", true),
        ("shop%20AUDITED".to_string(), "audited", true),
        ("udite".to_string(), "audited", true),
        ("other%20shop".to_string(), "Other Shop", false),
        (other.clone(), other.as_str(), false),
    ] {
        let (status, html) = b.get(&format!("/admin/audit-log?merchant={typed}")).await;
        assert_eq!(status, StatusCode::OK, "{typed}: {html}");
        assert!(
            html.contains(&format!(
                "name=\"merchant\" type=\"search\" value=\"{shown}\""
            )),
            "{typed}: {html}"
        );
        assert_eq!(html.contains(suspended), is_audited, "{typed}");
        assert_eq!(
            html.contains(&format!("/admin/merchants/{other}")),
            !is_audited,
            "{typed}"
        );
        assert_eq!(
            html.contains(&format!("/admin/merchants/{id}\"")),
            is_audited,
            "{typed}"
        );
    }
    // The pager keeps the resolved merchant (by id, whatever was typed).
    let (_, html) = b.get("/admin/audit-log?merchant=udite&page=2").await;
    assert!(
        html.replace("&#x2f;", "/").contains(&format!(
            "href=\"/admin/audit-log?page=1&amp;tenant_id={id}\""
        )),
        "{html}"
    );
    // The merchant page's link (by id) still filters, and shows the subdomain.
    let (_, html) = b.get(&format!("/admin/audit-log?tenant_id={id}")).await;
    assert!(
        html.contains(suspended) && html.contains("value=\"audited\""),
        "{html}"
    );
    // Several matches: a form error, with the candidates offered in the field's list.
    let (status, html) = b.get("/admin/audit-log?merchant=shop").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("2 merchants match \u{201c}shop\u{201d}")
            && html.contains("aria-invalid=\"true\"")
            && html.contains("<option value=\"audited\">Shop audited</option>")
            && html.contains(&format!("<option value=\"{other}\">Other Shop</option>"))
            && html.contains(none),
        "{html}"
    );
    // No match: a form error too (not every entry).
    let (status, html) = b.get("/admin/audit-log?merchant=nowhere").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        html.contains("No merchant matches \u{201c}nowhere\u{201d}") && html.contains(none),
        "{html}"
    );
    // `_` is no wildcard in the merchant search either.
    let (status, _) = b.get("/admin/audit-log?merchant=a_dited").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn support_staff_see_no_controls_they_cannot_use() {
    let app = spawn_app().await;
    let (active, _) = app.provisioned_merchant("supported").await;
    let pending = app
        .create_merchant("Pending Shop", "owner@pending.example")
        .await;
    souk::demo::create_staff(
        &app.db,
        "support@test.example",
        "Support",
        Some("support-password-1".into()),
        souk::access::PlatformRole::Support,
    )
    .await
    .unwrap();
    let b = Browser::new(&app);
    b.sign_in("admin", "support@test.example", "support-password-1")
        .await;
    let csrf = b.csrf("/admin/merchants").await;

    let (status, html) = b.get(&format!("/admin/merchants/{pending}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains(">Activate</a>"));
    assert!(!html.contains("<dialog"));
    let (_, html) = b.get(&format!("/admin/merchants/{active}")).await;
    assert!(!html.contains(">Suspend</button>"));
    assert!(
        html.contains("Recent audit entries"),
        "support may view the audit log"
    );
    let (_, html) = b.get("/admin/merchants").await;
    assert!(!html.contains("data-open-dialog"));
    let (_, html) = b.get("/admin/themes").await;
    assert!(!html.contains("Upload a theme"));
    assert!(!html.contains("/disable\""));
    let (_, html) = b.get("/admin/imports/vendors").await;
    assert!(!html.contains("Import vendors</button>"));
    // And the routes refuse them anyway.
    let r = b
        .post_form(
            &format!("/admin/merchants/{active}/suspend"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = b
        .post_form("/admin/themes/midnight/disable", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = upload_theme(&b, &csrf, theme_zip("sneaky", "Sneaky", |_| {})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_failed_provisioning_shows_failed_then_rolls_back_from_the_page() {
    let app = spawn_with_fault(std::sync::Arc::new(|step: &str| {
        (step == "send_welcome_email").then(|| "smtp down".to_string())
    }))
    .await;
    let id = app.create_merchant("Doomed Ui", "doomed@ui.example").await;
    let (b, csrf) = admin_browser(&app).await;
    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/activate"),
            &[
                ("_csrf", &csrf),
                ("theme", "classic"),
                ("plan", "starter"),
                ("subdomain", "doomed-ui"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut last = Value::Null;
    for _ in 0..500 {
        let (_, v) = get_json(&b, &format!("/admin/merchants/{id}/provisioning.json")).await;
        last = v;
        if last["done"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(last["status_label"], "Failed", "{last}");
    let (_, html) = b.get(&format!("/admin/merchants/{id}/provisioning")).await;
    assert_eq!(text_of(&html, "provisioning-status"), "Failed");
    assert!(
        html.contains("<div id=\"provisioning-failure\">"),
        "shown, not hidden"
    );
    assert!(html.contains("smtp down"));
    assert!(html.contains("data-step=\"send_welcome_email\" data-status=\"failed\""));
    assert!(html.contains("<button type=\"submit\">Retry</button>"));
    assert!(html.contains(">Roll back</button>"));

    let r = b
        .post_form(
            &format!("/admin/merchants/{id}/provisioning/rollback"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/admin/merchants/{id}"));
    let (_, html) = b.get(&format!("/admin/merchants/{id}")).await;
    assert!(html.contains("Provisioning rolled back"));
    assert!(html.contains("badge-rolled_back"), "history keeps the run");
    assert!(
        html.contains("<dialog id=\"activate-dialog\""),
        "pending again"
    );
    let (_, v) = get_json(&b, "/admin/check-subdomain?subdomain=doomed-ui").await;
    assert_eq!(v["available"], true, "the subdomain was released: {v}");
}

#[tokio::test]
async fn uploaded_themes_and_disabled_flags_survive_a_restart() {
    let app = spawn_app().await;
    let (b, csrf) = admin_browser(&app).await;
    let r = upload_theme(&b, &csrf, theme_zip("borealis", "Borealis", |_| {})).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = b
        .post_form("/admin/themes/midnight/disable", &[("_csrf", &csrf)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (tmp, pg) = app.stop_for_restart().await;
    let app = spawn_in(tmp, |_| {}, pg).await;
    let themes: Value = app
        .admin_get("/api/v1/admin/themes")
        .await
        .json()
        .await
        .unwrap();
    let find = |id: &str| {
        themes
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(find("borealis")["enabled"], true, "{themes}");
    assert_eq!(find("borealis")["builtin"], false);
    assert_eq!(find("midnight")["enabled"], false);
    assert_eq!(find("classic")["enabled"], true);
}

#[tokio::test]
async fn another_node_picks_up_an_uploaded_theme() {
    let app = spawn_app().await;
    let Some(node2) = app.second_node(|_| {}).await else {
        return; // SQLite: one node.
    };
    let (b, csrf) = admin_browser(&app).await;
    let r = upload_theme(&b, &csrf, theme_zip("tundra", "Tundra", |_| {})).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let mut seen = false;
    for _ in 0..40 {
        let r = node2
            .client
            .get(node2.url("/themes/tundra/preview.svg"))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::OK {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(seen, "node 2 did not pick up the uploaded theme");
}

#[tokio::test]
async fn a_vendor_file_that_is_not_vendor_csv_is_an_error_next_to_the_field() {
    let app = spawn_app().await;
    let (b, csrf) = admin_browser(&app).await;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"name,price\nx,1\n".to_vec())
                .file_name("products.csv")
                .mime_str("text/csv")
                .unwrap(),
        )
        .text("theme", "classic")
        .text("plan", "starter");
    let r = post_multipart(&b, &format!("/admin/imports/vendors?_csrf={csrf}"), form).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("aria-describedby=\"e-file\""), "{html}");
    let err = text_of(&html, "e-file");
    assert!(!err.is_empty(), "{html}");
    // Without the CSRF token the upload is refused.
    let form = reqwest::multipart::Form::new().text("theme", "classic");
    let r = post_multipart(&b, "/admin/imports/vendors", form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// The API routes the panel added, called directly.
#[tokio::test]
async fn admin_api_additions() {
    let app = spawn_app().await;
    let (id, _) = app.provisioned_merchant("apishop").await;
    let get = |path: String| {
        let app = &app;
        async move {
            let r = app.admin_get(&path).await;
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = get("/api/v1/admin/subdomains/apishop".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        json!({"subdomain": "apishop", "available": false, "reason": "taken", "message": "apishop is already taken"})
    );

    let (s, v) = get(format!("/api/v1/admin/merchants/{id}/usage")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["usage"]["staff"], 1);
    assert_eq!(v["plan"]["id"], "growth");
    assert_eq!(v["limits"]["max_products"], 5000);

    let (s, v) = get(format!("/api/v1/admin/merchants/{id}/provisioning/runs")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["status"], "completed");
    assert_eq!(v[0]["steps"].as_array().unwrap().len(), 5);
    assert!(v[0]["steps"][0]["duration_ms"].is_i64());

    let (s, v) = get("/api/v1/admin/permissions".into()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["role"], "super_admin");
    assert!(
        v["permissions"]
            .as_array()
            .unwrap()
            .contains(&json!("platform.themes.manage"))
    );

    let (_, v) = get("/api/v1/admin/merchants?theme=classic".into()).await;
    assert_eq!(v["pagination"]["total"], 1);
    assert!(v["data"][0]["provisioning_ms"].is_i64());
    let (_, v) = get("/api/v1/admin/merchants?theme=midnight".into()).await;
    assert_eq!(v["pagination"]["total"], 0);

    // Theme upload as a raw zip body: 201, or 422 with every reason.
    let r = app
        .client
        .post(app.url("/api/v1/admin/themes"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/zip")
        .body(theme_zip("glacier", "Glacier", |_| {}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "glacier");
    assert_eq!(v["enabled"], true);
    assert_eq!(v["builtin"], false);
    let r = app
        .client
        .post(app.url("/api/v1/admin/themes"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/zip")
        .body(theme_zip("glacier", "Glacier", |f| {
            f.retain(|(p, _)| !p.starts_with("templates/"))
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_theme");
    assert_eq!(
        v["error"]["details"]["reasons"].as_array().unwrap().len(),
        10,
        "{v}"
    );

    // Activation with a custom domain under the platform's base domain is refused
    // before anything starts.
    let pending = app.create_merchant("Domain Shop", "o@domain.example").await;
    let r = app
        .admin_post(
            &format!("/api/v1/admin/merchants/{pending}/activate"),
            json!({"theme": "classic", "plan": "starter", "custom_domain": "x.localhost"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["details"]["field"], "custom_domain");
    let m: Value = app
        .admin_get(&format!("/api/v1/admin/merchants/{pending}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["status"], "pending");
}

/// Uploads a theme zip as a raw body through the API.
async fn upload_theme_api(app: &TestApp, zip: Vec<u8>) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url("/api/v1/admin/themes"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/zip")
        .body(zip)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Replaces `from` with `to` in the theme file `path` (which must contain it).
fn edit(files: &mut [(String, String)], path: &str, from: &str, to: &str) {
    let (_, body) = files
        .iter_mut()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} in the theme"));
    assert!(body.contains(from), "{from} in {path}");
    *body = body.replacen(from, to, 1);
}

#[tokio::test]
async fn theme_uploads_render_with_sample_data_and_name_what_breaks() {
    let app = spawn_app().await;
    // The built-in themes, uploaded under other ids, pass the same check.
    for dir in ["classic", "midnight"] {
        let (status, v) = upload_theme_api(
            &app,
            theme_zip_from(dir, &format!("{dir}-copy"), dir, |_| {}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{dir}: {v}");
    }

    // A product page reading a field the storefront never sets: fine with no product
    // (the old empty-context check), refused with a real one.
    let (status, v) = upload_theme_api(
        &app,
        theme_zip("typo", "Typo", |files| {
            edit(
                files,
                "templates/product.html",
                "<h1 class=\"product__title\">{{ product.title }}</h1>",
                "<h1 class=\"product__title\">{{ product.name }}</h1>",
            )
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["error"]["code"], "invalid_theme");
    let reasons = v["error"]["details"]["reasons"].as_array().unwrap().clone();
    assert!(!reasons.is_empty());
    for r in &reasons {
        let r = r.as_str().unwrap();
        assert!(
            r.starts_with("template product.html does not render with sample data (")
                && r.contains("undefined value")
                && r.contains("product.html:"),
            "{r}"
        );
    }
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("product.html")
    );

    // The case: reading the first variant's price as if it were money.
    let (status, v) = upload_theme_api(
        &app,
        theme_zip("money", "Money", |files| {
            edit(
                files,
                "templates/product.html",
                "<span class=\"price__current\">{{ product.price }}</span>",
                "<span class=\"price__current\">{{ product.variants[0].price.amount }}</span>",
            )
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let text = v["error"]["details"]["reasons"].to_string();
    assert!(
        text.contains("template product.html does not render"),
        "{text}"
    );

    // A filter that cannot take real data (a formatted price is not a number), inside
    // the product loop, so an empty store never reaches it.
    let (status, v) = upload_theme_api(
        &app,
        theme_zip("rounding", "Rounding", |files| {
            edit(
                files,
                "templates/catalog.html",
                "<span class=\"price__current\">{{ card.price }}</span>",
                "<span class=\"price__current\">{{ card.price | round(2) }}</span>",
            )
        }),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let reasons = v["error"]["details"]["reasons"].as_array().unwrap().clone();
    assert_eq!(
        reasons.len(),
        1,
        "only the page with products fails: {reasons:?}"
    );
    let r = reasons[0].as_str().unwrap();
    assert!(
        r.starts_with("template catalog.html does not render with sample data (page 2 of 3): ")
            && r.contains("catalog.html:"),
        "{r}"
    );

    // Nothing refused was installed.
    let v: Value = app
        .admin_get("/api/v1/admin/themes")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"classic-copy") && ids.contains(&"midnight-copy"),
        "{ids:?}"
    );
    for refused in ["typo", "money", "rounding"] {
        assert!(!ids.contains(&refused), "{refused} installed: {ids:?}");
    }
    app.stop().await;
}
