//! One integration-test binary (faster to build than many): every test drives the real
//! HTTP interface of an app spawned on a random port with a temporary database.

mod helpers;

mod access;
mod auth;
mod catalog;
mod checkout;
mod checkout_admin;
mod demo_orders;
mod dns;
mod domains;
mod events;
mod feeds;
mod hardening;
mod import_fidelity;
mod import_files;
mod imports;
mod isolation;
mod nodes;
mod ops;
mod orders;
mod provisioning;
mod read_cache;
mod security;
mod storage;
mod storefront;
mod storefront_lang;
mod stream_access;
mod team;
mod ui;
mod ui_admin;
mod ui_catalog;
mod ui_extras;
mod ui_onboarding;
mod webhooks;
mod websocket;
