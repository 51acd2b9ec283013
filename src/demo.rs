//! `serve --demo`: a platform admin and three demo merchants with the project's own demo
//! catalogs (`demo/*.csv`, Shopify legacy format), created on first start only.

use crate::app::Application;
use crate::control::{self, ControlError};
use crate::domain::{Currency, Email, Subdomain};
use crate::store::platform::{self, NewMerchant};
use crate::store::{Db, StoreError, TenantDb, provisioning, users};
use std::time::Duration;

/// The demo merchants: (name, subdomain, theme, plan, catalog CSV).
pub const DEMO_MERCHANTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "Roastery Demo",
        "roastery",
        "classic",
        "growth",
        include_str!("../demo/coffee.csv"),
    ),
    (
        "Atelier Demo",
        "atelier",
        "midnight",
        "scale",
        include_str!("../demo/fashion.csv"),
    ),
    (
        "Greenhouse Demo",
        "greenhouse",
        "classic",
        "starter",
        include_str!("../demo/garden.csv"),
    ),
];

/// The demo admin's e-mail.
pub const DEMO_ADMIN: &str = "admin@souk.localhost";

/// Creates (or resets) a platform super admin. Returns `(email, password, generated?)`.
pub async fn create_admin(
    db: &Db,
    email: &str,
    name: &str,
    password: Option<String>,
) -> Result<(String, String, bool), String> {
    create_staff(
        db,
        email,
        name,
        password,
        crate::access::PlatformRole::SuperAdmin,
    )
    .await
}

/// Creates (or resets) a platform staff user with `role`. Returns `(email, password, generated?)`.
pub async fn create_staff(
    db: &Db,
    email: &str,
    name: &str,
    password: Option<String>,
    role: crate::access::PlatformRole,
) -> Result<(String, String, bool), String> {
    let email = Email::parse(email).map_err(|e| format!("--email: {}", e.message))?;
    let (password, generated) = match password {
        Some(p) => (p, false),
        None => (crate::auth::generate_password(), true),
    };
    crate::auth::check_password_policy(&password).map_err(|e| format!("--password: {e}"))?;
    let hash = crate::auth::hash_password(&password)?;
    users::upsert_platform_admin(db, email.as_str(), name, &hash, role)
        .await
        .map_err(|e| e.to_string())?;
    Ok((email.to_string(), password, generated))
}

/// Seeds the demo on first start and prints how to reach it.
pub async fn seed(app: &Application, port: u16) -> Result<(), String> {
    let db = &app.state.db;
    let base = &app.state.config.base_domain;
    if !users::has_platform_admin(db)
        .await
        .map_err(|e| e.to_string())?
    {
        let (email, password, _) = create_admin(db, DEMO_ADMIN, "Demo Admin", None).await?;
        println!(
            "Platform admin created (shown once):\n  e-mail:   {email}\n  password: {password}"
        );
    } else {
        println!(
            "Platform admin already exists (reset it with `souk admin create --email {DEMO_ADMIN}`)."
        );
    }
    // Run the workers for the seeding; the server starts its own afterwards.
    let (tx, rx) = tokio::sync::watch::channel(false);
    let workers = app.core().spawn_workers(2, rx);
    for (name, handle, theme, plan, csv) in DEMO_MERCHANTS {
        if platform::handle_taken(db, handle)
            .await
            .map_err(|e| e.to_string())?
        {
            continue;
        }
        let m = platform::create_merchant(
            db,
            &crate::store::audit::Actor::system("demo"),
            &NewMerchant {
                name: name.to_string(),
                owner_name: Some(format!("{name} Owner")),
                owner_email: Email::parse(&format!("owner@{handle}.example"))
                    .map_err(|e| e.message)?,
                owner_phone: None,
                business_address: None,
                business_city: Some("Luxembourg".into()),
                business_postal_code: None,
                business_country: Some("LU".into()),
                currency: Currency::EUR,
                handle: Some(Subdomain::parse(handle).map_err(|e| e.message)?),
                initial_password_hash: Some(crate::auth::hash_password("demo-owner-password")?),
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        control::activate(
            db,
            &crate::store::audit::Actor::system("demo"),
            &app.state.themes,
            m.id,
            theme,
            plan,
            Some(handle),
        )
        .await
        .map_err(|e| e.to_string())?;
        app.state.provisioner.wake();
        wait_for_provisioning(db, m.id).await?;
        let scope = TenantDb::new(db.clone(), m.id);
        let report = control::import_products(
            &scope,
            &crate::store::audit::Actor::system("demo"),
            csv.as_bytes(),
            "EUR",
            -1,
        )
        .await
        .map_err(|e| e.to_string())?;
        tracing::info!(
            merchant = handle,
            products = report.products,
            "demo catalog imported"
        );
        seed_checkout(db, m.id, "LU")
            .await
            .map_err(|e| e.to_string())?;
        let store_url = format!("http://{handle}.{base}:{port}");
        seed_orders(db, m.id, name, &store_url).await?;
        // The demo stores are set up and live: their setup guide is complete, so owners
        // land on the dashboard home and the storefront never shows "coming soon".
        scope
            .patch_onboarding(
                &crate::store::audit::Actor::system("demo"),
                &crate::store::onboarding::OnboardingPatch {
                    step: "launch".into(),
                    mark: Some("done".into()),
                    publish: true,
                    ..Default::default()
                },
                serde_json::json!({ "published": true }),
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let _ = tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    println!("Demo storefronts:");
    for (name, handle, ..) in DEMO_MERCHANTS {
        println!(
            "  {name:16} http://{handle}.{base}:{port}/   or   http://{base}:{port}/s/{handle}/"
        );
    }
    println!("Admin panel:      http://{base}:{port}/admin   (the platform admin above)");
    println!(
        "Merchant dashboard: http://{base}:{port}/dashboard   (owners sign in as owner@<handle>.example with password demo-owner-password, then choose their own)"
    );
    Ok(())
}

async fn wait_for_provisioning(db: &Db, tenant: uuid::Uuid) -> Result<(), String> {
    for _ in 0..600 {
        match provisioning::latest_run(db, tenant)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(r) if r.status == "completed" => return Ok(()),
            Some(r) if r.status == "failed" => {
                return Err(r.error.unwrap_or_else(|| "provisioning failed".into()));
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    Err("provisioning did not finish in time".into())
}

/// Polls an import until it is `completed` or `failed`, reporting progress. Errors: no
/// progress for 30 s, or the import vanished.
async fn follow_import(
    scope: &TenantDb,
    id: uuid::Uuid,
    progress: &impl Fn(i64, i64),
) -> Result<crate::store::imports::ProductImport, ControlError> {
    let mut last = (-1, std::time::Instant::now());
    loop {
        let Some(i) = scope.get_product_import(id).await.ok().flatten() else {
            return Err(ControlError::Store(StoreError::NotFound));
        };
        progress(i.products_done, i.products_total);
        if i.status == "completed" || i.status == "failed" {
            return Ok(i);
        }
        if i.products_done != last.0 {
            last = (i.products_done, std::time::Instant::now());
        } else if last.1.elapsed() > std::time::Duration::from_secs(30) {
            return Err(ControlError::Interrupted(
                "the import made no progress".into(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `souk import products`: imports a product CSV into the store `handle` as a background
/// import run in this process (the same chunks and progress as `souk serve`'s worker),
/// calling `progress(done, total)` while it runs. Returns the finished import, whose
/// `report` holds the counts and row errors. Should this process die midway, the import's
/// job is in the database and the next `souk serve` resumes it from its last chunk.
/// Errors: unknown store, unreadable file (nothing queued), storage errors.
pub async fn import_products_for_handle(
    db: &Db,
    handle: &str,
    bytes: &[u8],
    file_name: Option<&str>,
    progress: impl Fn(i64, i64),
) -> Result<crate::store::imports::ProductImport, ControlError> {
    let t = platform::tenant_by_handle(db, &handle.to_ascii_lowercase())
        .await?
        .ok_or(ControlError::Store(StoreError::NotFound))?;
    let scope = TenantDb::new(db.clone(), t.id);
    let actor = crate::store::audit::Actor::system("cli");
    let (queued, read) =
        control::start_product_import_read(&scope, &actor, bytes, file_name, &t.currency).await?;
    progress(0, queued.products_total);
    let run = control::run_product_import_of(db, &scope, queued.id, None, Some(read));
    tokio::pin!(run);
    let outcome = loop {
        tokio::select! {
            r = &mut run => break r,
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {
                if let Ok(Some(i)) = scope.get_product_import(queued.id).await {
                    progress(i.products_done, i.products_total);
                }
            }
        }
    };
    if let Err(e) = outcome {
        // A `souk serve` on the same data may have claimed the queued job and be applying
        // the chunks (this run then meets "the import advanced in another worker" or a
        // locked database): follow the import to its end instead of reporting a failure
        // for an import that succeeds. Without progress for 30 s, the error stands (the
        // job stays queued for the next `souk serve`).
        tracing::info!(error = %e, "import run stopped; following the import's progress");
        return follow_import(&scope, queued.id, &progress)
            .await
            .map_err(|_| e);
    }
    // Done here: the queued job has nothing left to do.
    crate::store::jobs::complete_queued_by_key(
        db,
        &format!(
            "{}:{}",
            crate::store::imports::PRODUCT_IMPORT_JOB,
            queued.id
        ),
    )
    .await?;
    let done = scope
        .get_product_import(queued.id)
        .await?
        .ok_or(ControlError::Store(StoreError::NotFound))?;
    if !matches!(done.status.as_str(), "completed" | "failed") {
        // Another worker had claimed the import and is still finishing it (its last chunk
        // or its report): follow it to its end.
        return follow_import(&scope, queued.id, &progress).await;
    }
    progress(done.products_done, done.products_total);
    Ok(done)
}

/// Checkout configuration of a demo store in `country`: bank transfer (with instructions),
/// cash on delivery and pickup, tax-inclusive prices; one shipping zone (the store's
/// country and its EU neighbours) with a 4.90 flat rate, free from 50.00; VAT rates of
/// LU 17 %, DE 19 %, FR 20 %, BE 21 %, NL 21 %; and the code `WELCOME10` (10 % off).
/// Called by [`seed`] for each new demo store (and by tests, with a store's id).
pub async fn seed_checkout(db: &Db, tenant: uuid::Uuid, country: &str) -> Result<(), StoreError> {
    let scope = TenantDb::new(db.clone(), tenant);
    use crate::pricing::{CountryCode, DiscountValue};
    use crate::store::commerce::{
        CheckoutSettingsInput, DiscountInput, RateInput, SecretChange, TaxRateInput, ZoneInput,
    };
    let actor = crate::store::audit::Actor::system("demo");
    let cc = |c: &str| CountryCode::parse(c).map_err(|e| StoreError::Config(e.message));
    scope
        .save_checkout_settings(
            &actor,
            &CheckoutSettingsInput {
                prices_include_tax: true,
                bank_transfer: true,
                bank_instructions: "Pay by bank transfer to IBAN LU28 0019 4006 4475 0000 (BIC BCEELULL), using your order number as the reference. We ship once the payment arrives.".into(),
                cash_on_delivery: true,
                card: false,
                pickup: true,
                pickup_address: "12 rue du Marché-aux-Herbes, 1728 Luxembourg".into(),
                notify_email: None,
                stripe_webhook_secret: SecretChange::Keep,
            },
        )
        .await?;
    let mut countries = vec![cc(country)?];
    for c in ["BE", "DE", "FR", "NL"] {
        let c = cc(c)?;
        if !countries.contains(&c) {
            countries.push(c);
        }
    }
    let zone = scope
        .create_shipping_zone(
            &actor,
            &ZoneInput {
                name: "Home and neighbours".into(),
                countries,
            },
        )
        .await?;
    scope
        .create_shipping_rate(
            &actor,
            zone.id,
            &RateInput {
                name: "Standard".into(),
                price_minor: 490,
                free_over_minor: Some(5000),
            },
        )
        .await?;
    for (c, name, bp) in [
        ("LU", "TVA", 1700),
        ("DE", "MwSt.", 1900),
        ("FR", "TVA", 2000),
        ("BE", "TVA", 2100),
        ("NL", "BTW", 2100),
    ] {
        scope
            .create_tax_rate(
                &actor,
                &TaxRateInput {
                    country: cc(c)?,
                    name: name.into(),
                    rate_bp: bp,
                },
            )
            .await?;
    }
    scope
        .create_discount_code(
            &actor,
            &DiscountInput {
                code: "WELCOME10".into(),
                value: DiscountValue::Percentage(1000),
                min_subtotal_minor: 0,
                starts_at: None,
                ends_at: None,
                usage_limit: None,
                per_customer_limit: Some(1),
                active: true,
            },
        )
        .await?;
    Ok(())
}

/// The demo shoppers: (name, e-mail, street, city, postal code, country).
const DEMO_SHOPPERS: &[(&str, &str, &str, &str, &str, &str)] = &[
    (
        "Ana Ferreira",
        "ana.ferreira@shopper.example",
        "12 Rue de la Gare",
        "Luxembourg",
        "L-1611",
        "LU",
    ),
    (
        "Marc Weber",
        "marc.weber@shopper.example",
        "3 Avenue de la Liberté",
        "Esch-sur-Alzette",
        "L-4002",
        "LU",
    ),
    (
        "Julia Schmitt",
        "julia.schmitt@shopper.example",
        "Hauptstraße 8",
        "Trier",
        "54290",
        "DE",
    ),
    (
        "Lucas Martin",
        "lucas.martin@shopper.example",
        "5 Rue Serpenoise",
        "Metz",
        "57000",
        "FR",
    ),
    (
        "Emma Peeters",
        "emma.peeters@shopper.example",
        "Grand Place 1",
        "Arlon",
        "6700",
        "BE",
    ),
];

/// Gives a demo store a few customers and three weeks of orders, all placed through the
/// real checkout (called by [`seed`] and by tests; `create_cart` → `add_to_cart` → `update_cart` → `place_order`, so stock,
/// totals, tax, customers, events and e-mails are real): 14 orders, one every ~1.5 days
/// (`created_at` moved back afterwards with [`TenantDb::backdate_order`]); orders older
/// than a week are paid (`record_payment`) and most of those fulfilled (`fulfill_order`),
/// one is cancelled (`cancel_order`), the newest stay pending. Variants that cannot be
/// bought (no stock) are skipped. Errors: any store error, as text.
pub async fn seed_orders(
    db: &Db,
    tenant: uuid::Uuid,
    store_name: &str,
    store_url: &str,
) -> Result<(), String> {
    let scope = &TenantDb::new(db.clone(), tenant);
    use crate::pricing::AddressInput;
    use crate::store::carts::{CartOrigin, CartPatch, PaymentMethod, PlaceOrder};
    let actor = crate::store::audit::Actor::system("demo");
    let err = |e: &str| format!("demo orders: {e}");
    let (products, _) = scope
        .list_products(
            &crate::store::catalog::ProductFilter {
                status: Some(crate::domain::ProductStatus::Active),
                ..Default::default()
            },
            40,
            0,
        )
        .await
        .map_err(|e| err(&format!("list products: {e}")))?;
    let variants: Vec<uuid::Uuid> = products
        .iter()
        .flat_map(|p| p.variants.iter().map(|v| v.id))
        .collect();
    if variants.is_empty() {
        return Ok(());
    }
    let now = crate::store::now_micros();
    let day = 86_400_000_000i64;
    let origin = CartOrigin {
        source: "storefront".into(),
    };
    for j in 0..14usize {
        let (name, email, line1, city, postal, country) = DEMO_SHOPPERS[j % DEMO_SHOPPERS.len()];
        let cart = scope
            .create_cart(&origin, "EUR", None, None)
            .await
            .map_err(|e| err(&format!("create cart: {e}")))?;
        let mut lines = 0;
        for k in 0..variants.len().min(1 + j % 3 + 3) {
            if lines == 1 + j % 3 {
                break;
            }
            let v = variants[(j * 7 + k * 5) % variants.len()];
            if scope
                .add_to_cart(cart.id, v, 1 + (k as i64 % 2))
                .await
                .is_ok()
            {
                lines += 1;
            }
        }
        if lines == 0 {
            continue;
        }
        let address = AddressInput {
            name: name.into(),
            line1: line1.into(),
            city: city.into(),
            postal_code: postal.into(),
            country: country.into(),
            ..Default::default()
        }
        .parse()
        .map_err(|e| err(&e.error.message))?;
        let cart = scope
            .update_cart(
                cart.id,
                &CartPatch {
                    email: Some(Email::parse(email).map_err(|e| err(&e.message))?),
                    shipping_address: Some(address),
                    ..Default::default()
                },
                false,
            )
            .await
            .map_err(|e| err(&format!("address: {e}")))?;
        let options = scope
            .shipping_options(cart.id)
            .await
            .map_err(|e| err(&format!("shipping options: {e}")))?;
        let option = if j % 5 == 4 {
            options.iter().find(|o| o.id == "pickup")
        } else {
            options.iter().find(|o| o.id != "pickup")
        }
        .or(options.first())
        .map(|o| o.id.clone());
        scope
            .update_cart(
                cart.id,
                &CartPatch {
                    shipping_option: option,
                    payment_method: Some(if j % 4 == 1 {
                        PaymentMethod::CashOnDelivery
                    } else {
                        PaymentMethod::BankTransfer
                    }),
                    ..Default::default()
                },
                false,
            )
            .await
            .map_err(|e| err(&format!("shipping and payment: {e}")))?;
        let (order, _) = scope
            .place_order(
                cart.id,
                &PlaceOrder {
                    actor: actor.clone(),
                    idempotency: None,
                    store_name: store_name.into(),
                    store_url: store_url.into(),
                    notify_to: vec![],
                    stripe_configured: false,
                },
            )
            .await
            .map_err(|e| err(&format!("place order: {e}")))?;
        // Oldest first: order 0 three weeks ago, order 13 today.
        let age_days = 21.0 - j as f64 * 1.5;
        scope
            .backdate_order(order.id, now - (age_days * day as f64) as i64)
            .await
            .map_err(|e| err(&format!("backdate: {e}")))?;
        if j == 3 {
            scope
                .cancel_order(&actor, order.id, Some("customer changed their mind"))
                .await
                .map_err(|e| err(&format!("cancel: {e}")))?;
            continue;
        }
        if age_days > 7.0 || j % 3 == 0 {
            scope
                .record_payment(
                    &actor,
                    order.id,
                    &crate::store::orders::PaymentInput {
                        amount_minor: order.total.amount_minor,
                        gateway: "bank_transfer".into(),
                        reference: Some(format!("DEMO-{}", order.number)),
                    },
                )
                .await
                .map_err(|e| err(&format!("payment: {e}")))?;
            if age_days > 7.0 && j % 4 != 2 {
                scope
                    .fulfill_order(
                        &actor,
                        order.id,
                        &crate::store::fulfillment::FulfillInput {
                            carrier: Some("POST Luxembourg".into()),
                            tracking_number: Some(format!("LU{:09}", order.number * 7919)),
                            store_name: store_name.into(),
                            store_url: store_url.into(),
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(|e| err(&format!("fulfil: {e}")))?;
            }
        }
    }
    Ok(())
}
