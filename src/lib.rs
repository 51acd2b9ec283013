//! Souk: a multi-tenant commerce platform.
//!
//! Layout (dependency direction points one way): [`domain`] (types, no I/O) ←
//! [`store`] (SQL on SQLite or PostgreSQL, tenant-scoped repositories, job queue) ←
//! [`provision`] / [`control`] (provisioning pipeline, control-plane operations, imports) ←
//! [`web`] (axum routers, extractors, errors) ← [`app`] (start-up) ← the `souk` binary.

pub mod access;
pub mod app;
pub mod auth;
pub mod bench;
pub mod control;
pub mod crypto;
pub mod demo;
pub mod domain;
pub mod events;
pub mod feeds;
pub mod import;
pub mod mail;
pub mod payments;
pub mod pricing;
pub mod provision;
pub mod store;
pub mod themes;
pub mod web;
pub mod webhooks;
