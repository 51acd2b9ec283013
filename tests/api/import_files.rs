//! Issue 13, follow-ups: spreadsheet row numbers with the physical line, Windows-1252 and
//! UTF-16 files converted with a report note, semicolon-delimited WooCommerce files,
//! WooCommerce files without `Regular price` as partial updates, the per-product preview of
//! what an update changes, and the store currency change while the store has no orders.
//! Fixtures are the project's own, in `tests/fixtures/imports/`.

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, spawn_app};
use crate::ui::Browser;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/imports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn upload(app: &TestApp, token: &str, query: &str, body: Vec<u8>) -> Value {
    let r = app
        .with_token(
            Method::POST,
            &format!("/api/v1/imports/products{query}"),
            token,
        )
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

/// The product with `handle`, as the merchant API returns it.
async fn by_handle(app: &TestApp, token: &str, handle: &str) -> Value {
    let r = app
        .with_token(Method::GET, "/api/v1/products?per_page=100", token)
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["handle"] == handle)
        .cloned()
        .unwrap_or_else(|| panic!("no product {handle} in {list}"))
}

/// `(row, line, column, reason)` of a report's errors.
fn errors(v: &Value) -> Vec<(i64, i64, String, String)> {
    v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().unwrap(),
                e["line"].as_i64().unwrap(),
                e["column"].as_str().unwrap_or("").to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn owner_browser(app: &TestApp, sub: &str) -> (Browser, String) {
    let (_, token) = app.provisioned_merchant(sub).await;
    let b = Browser::new(app);
    b.sign_in(
        "dashboard",
        &format!("owner@{sub}.example"),
        "owner-password-1",
    )
    .await;
    (b, token)
}

/// The dashboard's import preview page for `file`.
async fn dashboard_preview(b: &Browser, csrf: &str, file: Vec<u8>) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(file)
            .file_name("upload.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let r = b
        .client
        .post(format!("{}/dashboard/imports/preview?_csrf={csrf}", b.base))
        .header("origin", b.base.trim_end_matches('/'))
        .header("sec-fetch-site", "same-origin")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.text().await.unwrap()
}

#[tokio::test]
async fn row_errors_name_the_spreadsheet_row_and_the_line_everywhere() {
    let app = spawn_app().await;
    let (b, token) = owner_browser(&app, "rownums").await;
    let file = fixture("row_numbers_multiline.csv");
    let v = upload(&app, &token, "", file.clone()).await;
    // mug: row 2 (lines 2-4); cap: row 3 (line 5); a blank row 4 (line 7); hat: row 5
    // (line 8); scarf: row 6 (line 9), one cell too many.
    let errs = errors(&v);
    assert_eq!(
        errs.iter()
            .map(|(r, l, c, _)| (*r, *l, c.as_str()))
            .collect::<Vec<_>>(),
        [(3, 5, "Variant Price"), (5, 8, "Variant Price"), (6, 9, "")],
        "{v}"
    );
    assert!(errs[0].3.contains("'abc'"), "{errs:?}");
    assert!(errs[2].3.starts_with("row has 6 fields"), "{errs:?}");
    assert_eq!((&v["created"], &v["failed"]), (&json!(1), &json!(3)), "{v}");
    // The preview's product list uses the same numbers.
    let dry = upload(&app, &token, "?dry_run=true", file.clone()).await;
    assert_eq!(errors(&dry), errs);
    let changes = dry["changes"].as_array().unwrap();
    assert_eq!(
        (
            &changes[0]["row"],
            &changes[0]["line"],
            &changes[0]["handle"]
        ),
        (&json!(2), &json!(2), &json!("mug"))
    );
    // The background import's stored report too.
    let r = app
        .with_token(
            Method::POST,
            "/api/v1/imports/products?background=true",
            &token,
        )
        .header("content-type", "text/csv")
        .body(file.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut report = Value::Null;
    for _ in 0..100 {
        let r: Value = app
            .with_token(
                Method::GET,
                &format!("/api/v1/imports/products/{id}"),
                &token,
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if r["status"] == "completed" {
            report = r["report"].clone();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(errors(&report), errs, "{report}");
    // The dashboard's result page shows "row (line)".
    let (status, html) = b.get(&format!("/dashboard/imports/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<td>3 (line 5)</td>"), "{html}");
    assert!(html.contains("<td>6 (line 9)</td>"), "{html}");

    // Vendor imports: the report and the failed-rows CSV use the same numbers.
    let r = app
        .client
        .post(app.url("/api/v1/admin/imports/vendors"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "text/csv")
        .body(fixture("vendors_multiline.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (&v["errors"][0]["row"], &v["errors"][0]["line"]),
        (&json!(3), &json!(5)),
        "{v}"
    );
    let admin = Browser::new(&app);
    admin.sign_in("admin", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let import_id = v["id"].as_str().unwrap();
    let r = admin
        .get_raw(&format!("/admin/imports/vendors/{import_id}/failed.csv"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let csv = r.text().await.unwrap();
    assert!(csv.contains("row 3 (line 5): "), "{csv}");
}

#[tokio::test]
async fn windows_1252_and_utf16_files_are_converted_and_the_report_says_so() {
    let app = spawn_app().await;
    let (b, token) = owner_browser(&app, "encodings").await;
    // The dashboard preview names what was detected.
    let csrf = b.csrf("/dashboard/imports").await;
    let html = dashboard_preview(&b, &csrf, fixture("products_cp1252.csv")).await;
    assert!(
        html.contains("Note: the file was Windows-1252, not UTF-8; converted to UTF-8"),
        "{html}"
    );
    let v = upload(&app, &token, "", fixture("products_cp1252.csv")).await;
    assert_eq!(v["created"], 1, "{v}");
    let note = v["file_warnings"][0].as_str().unwrap();
    assert!(
        note.starts_with("the file was Windows-1252, not UTF-8; converted"),
        "{v}"
    );
    let p = by_handle(&app, &token, "kaese").await;
    assert_eq!(p["title"], "Käse aus Österreich");
    assert_eq!(p["body_html"], "<p>Crème brûlée – 5 € günstiger</p>");

    let v = upload(&app, &token, "", fixture("products_utf16le.csv")).await;
    assert_eq!(v["created"], 1, "{v}");
    let notes = v["file_warnings"].as_array().unwrap();
    assert!(
        notes[0]
            .as_str()
            .unwrap()
            .starts_with("the file was UTF-16 (little-endian)"),
        "{v}"
    );
    assert!(notes[1].as_str().unwrap().contains("tab-delimited"), "{v}");
    let p = by_handle(&app, &token, "smorrebrod").await;
    assert_eq!(
        (&p["title"], &p["variants"][0]["price"]["amount_minor"]),
        (&json!("Smørrebrød"), &json!(1200))
    );

    let v = upload(&app, &token, "", fixture("products_utf16be.csv")).await;
    assert!(
        v["file_warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("the file was UTF-16 (big-endian)"),
        "{v}"
    );
    assert_eq!(
        by_handle(&app, &token, "zupa").await["title"],
        "Żurek łódzki"
    );
    // A plain UTF-8 file has no note.
    let v = upload(
        &app,
        &token,
        "",
        b"Handle,Title,Variant Price\nplain,Plain,1\n".to_vec(),
    )
    .await;
    assert_eq!(v["file_warnings"], json!([]), "{v}");
}

#[tokio::test]
async fn semicolon_delimited_woocommerce_files_are_parsed_with_decimal_commas() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("semicolons").await;
    let v = upload(&app, &token, "", fixture("woo_semicolon_de.csv")).await;
    assert_eq!(
        (&v["format"], &v["created"], &v["failed"]),
        (&json!("woo_commerce"), &json!(2), &json!(0)),
        "{v}"
    );
    assert!(
        v["file_warnings"][0]
            .as_str()
            .unwrap()
            .contains("semicolon-delimited"),
        "{v}"
    );
    let brot = by_handle(&app, &token, "bauernbrot").await;
    assert_eq!(brot["variants"][0]["price"]["amount_minor"], 450);
    assert_eq!(brot["variants"][0]["inventory_quantity"], 12);
    let brezel = by_handle(&app, &token, "brezel").await;
    assert_eq!(
        (
            &brezel["variants"][0]["price"]["amount_minor"],
            &brezel["variants"][0]["compare_at_price"]["amount_minor"],
            &brezel["variants"][0]["inventory_tracked"]
        ),
        (&json!(99), &json!(120), &json!(false))
    );
}

#[tokio::test]
async fn woocommerce_files_without_regular_price_update_stock_and_keep_prices() {
    let app = spawn_app().await;
    let (_, token) = app.provisioned_merchant("woopartial").await;
    let v = upload(&app, &token, "", fixture("woo_full.csv")).await;
    assert_eq!(v["created"], 2, "{v}");
    let before = by_handle(&app, &token, "black-tea").await;

    let file = fixture("woo_no_regular_price.csv");
    let dry = upload(&app, &token, "?dry_run=true", file.clone()).await;
    assert_eq!(dry["partial"], true, "{dry}");
    let v = upload(&app, &token, "", file).await;
    assert_eq!(
        (&v["created"], &v["updated"], &v["failed"]),
        (&json!(0), &json!(2), &json!(1)),
        "{v}"
    );
    let errs = errors(&v);
    assert_eq!((errs[0].0, errs[0].2.as_str()), (4, "Regular price"), "{v}");
    assert!(errs[0].3.contains("'white-tea'"), "{errs:?}");
    assert_eq!(v["columns_ignored"], json!(["ID"]), "{v}");

    let green = by_handle(&app, &token, "green-tea").await;
    let gv = &green["variants"][0];
    assert_eq!(
        (
            &gv["price"]["amount_minor"],
            &gv["inventory_quantity"],
            &green["body_html"]
        ),
        (&json!(800), &json!(40), &json!("<p>Sencha</p>")),
        "prices and the description are kept: {green}"
    );
    let black = by_handle(&app, &token, "black-tea").await;
    let bv = &black["variants"][0];
    assert_eq!(
        (
            &bv["price"]["amount_minor"],
            &bv["compare_at_price"]["amount_minor"],
            &bv["inventory_quantity"],
            &bv["available"]
        ),
        (&json!(650), &json!(700), &json!(0), &json!(false)),
        "{black}"
    );
    assert_eq!(
        bv["id"], before["variants"][0]["id"],
        "the variant id is kept"
    );
}

#[tokio::test]
async fn the_preview_says_per_product_what_an_update_would_change() {
    let app = spawn_app().await;
    let (b, token) = owner_browser(&app, "previewer").await;
    upload(&app, &token, "", fixture("preview_base.csv")).await;
    let file = fixture("preview_changes.csv");
    let dry = upload(&app, &token, "?dry_run=true", file.clone()).await;
    let changes: Vec<(String, String, Vec<String>)> = dry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["handle"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                c["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "jar".to_string(),
                "update".to_string(),
                vec!["inventory_quantity".to_string(), "barcode".into()]
            ),
            ("lid".into(), "unchanged".into(), vec![]),
            ("cup".into(), "create".into(), vec![])
        ],
        "{dry}"
    );
    assert_eq!(
        (
            &dry["would_create"],
            &dry["would_update"],
            &dry["would_leave_unchanged"]
        ),
        (&json!(1), &json!(2), &json!(1)),
        "{dry}"
    );
    // Nothing was written by the preview; the import then agrees with it.
    assert_eq!(
        by_handle(&app, &token, "jar").await["variants"][0]["inventory_quantity"],
        10
    );
    let v = upload(&app, &token, "", file.clone()).await;
    assert_eq!(
        (&v["created"], &v["updated"], &v["unchanged"]),
        (&json!(1), &json!(1), &json!(1)),
        "{v}"
    );
    // The dashboard preview lists the same.
    let csrf = b.csrf("/dashboard/imports").await;
    let html = dashboard_preview(&b, &csrf, fixture("preview_base.csv")).await;
    assert!(html.contains("<strong>Unchanged: 1</strong>"), "{html}");
    assert!(
        html.contains(
            "<tr data-change=\"jar\"><td>2</td><td>jar</td><td>update</td><td>inventory_quantity, barcode</td></tr>"
        ),
        "{html}"
    );
    assert!(
        html.contains(
            "<tr data-change=\"lid\"><td>3</td><td>lid</td><td>unchanged</td><td>—</td></tr>"
        ),
        "{html}"
    );
}

#[tokio::test]
async fn the_owner_changes_the_store_currency_until_the_first_order() {
    let app = spawn_app().await;
    let (b, token) = owner_browser(&app, "currency").await;
    upload(&app, &token, "", fixture("preview_base.csv")).await;
    let put = |code: &str| {
        app.with_token(Method::PUT, "/api/v1/shop/currency", &token)
            .json(&json!({ "currency": code }))
            .send()
    };
    let r = put("sek").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["currency"], "SEK");
    let shop: Value = app
        .with_token(Method::GET, "/api/v1/shop", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shop["currency"], "SEK");
    let jar = by_handle(&app, &token, "jar").await;
    let price = &jar["variants"][0]["price"];
    assert_eq!(
        (&price["amount_minor"], &price["currency"]),
        (&json!(400), &json!("SEK")),
        "{jar}"
    );
    // Not a currency code: 422 naming the field.
    let r = put("kronor").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["details"]["field"],
        "currency"
    );
    // A currency with other decimals while there are products: refused, nothing changed.
    let r = put("JPY").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "currency_locked", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("decimal places"),
        "{body}"
    );

    // The dashboard's store settings change it too.
    let (status, html) = b.get("/dashboard/settings/checkout").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<strong id=\"store-currency\">SEK</strong>"),
        "{html}"
    );
    let csrf = b.csrf("/dashboard/settings/checkout").await;
    let r = b
        .post_form(
            "/dashboard/settings/currency",
            &[("_csrf", &csrf), ("currency", "chf")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get("/dashboard/settings/checkout").await;
    assert!(html.contains("Store currency set to CHF."), "{html}");
    assert!(
        html.contains("<strong id=\"store-currency\">CHF</strong>"),
        "{html}"
    );

    // Once there is an order: 409 with a clear message, on the API and the dashboard.
    let r = app
        .with_token(Method::POST, "/api/v1/orders", &token)
        .json(&json!({ "line_items": [{ "title": "Service", "price_minor": 500 }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = put("EUR").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "currency_locked", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the store currency cannot be changed once the store has orders"),
        "{body}"
    );
    let r = b
        .post_form(
            "/dashboard/settings/currency",
            &[("_csrf", &csrf), ("currency", "EUR")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = b.get("/dashboard/settings/checkout").await;
    assert!(
        html.contains("cannot be changed once the store has orders"),
        "{html}"
    );
    assert!(
        html.contains("<strong id=\"store-currency\">CHF</strong>"),
        "{html}"
    );
}
