//! JSON API under `/api/v1`: one module per resource, each with a `routes()` that
//! registers its handlers (and thereby their OpenAPI operations).

pub mod admin;
pub mod admin_feeds;
pub mod auth;
pub mod cart;
pub mod catalog;
pub mod commerce;
pub mod domains;
pub mod events;
pub mod feed_export;
pub mod feeds;
pub mod fulfillment;
pub mod imports;
pub mod onboarding;
pub mod orders;
pub mod store;
pub mod team;
pub mod webhooks;

use super::error::ApiError;
use serde::{Deserialize, Serialize};

/// Pagination query: `?page=1&per_page=20` (per_page 1–100).
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1-based page number (default 1).
    pub page: Option<i64>,
    /// Items per page, 1–100 (default 20).
    pub per_page: Option<i64>,
}

impl PageQuery {
    /// Returns `(limit, offset, page)`. Errors: 422 naming `page` or `per_page`.
    pub fn resolve(&self, default_per_page: i64) -> Result<(i64, i64, i64), ApiError> {
        let page = self.page.unwrap_or(1);
        let per = self.per_page.unwrap_or(default_per_page);
        if !(1..=1_000_000).contains(&page) {
            return Err(ApiError::invalid(
                "page",
                "invalid_page",
                "page must be between 1 and 1000000",
            ));
        }
        if !(1..=100).contains(&per) {
            return Err(ApiError::invalid(
                "per_page",
                "invalid_page",
                "per_page must be between 1 and 100",
            ));
        }
        Ok((per, (page - 1) * per, page))
    }
}

/// Pagination metadata of a list response.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Pagination {
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
    pub total_pages: i64,
}

impl Pagination {
    pub fn new(page: i64, per_page: i64, total: i64) -> Self {
        Self {
            page,
            per_page,
            total,
            total_pages: (total + per_page - 1) / per_page,
        }
    }
}

/// A page of items: `{ "data": [...], "pagination": {...} }`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

/// Trims an optional text field; empty becomes `None`. Errors when longer than `max` chars.
pub fn opt_text(field: &str, v: Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > max => Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

/// A required, trimmed text field of 1..=max characters.
pub fn req_text(field: &str, v: &str, max: usize) -> Result<String, ApiError> {
    let s = v.trim();
    if s.is_empty() {
        return Err(ApiError::invalid(
            field,
            "required",
            format!("{field} is required"),
        ));
    }
    if s.chars().count() > max {
        return Err(ApiError::invalid(
            field,
            "too_long",
            format!("{field} must be at most {max} characters"),
        ));
    }
    Ok(s.to_string())
}
