//! The portal's search channel: `/api/v1/search` and `/api/v1/autocomplete`.

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use crate::search::{Context, Facets, Filters, MAX_LIMIT, SearchHit, SearchRequest, Suggestion};

/// Queries longer than this are cut (at a char boundary) before analysis.
const MAX_QUERY_BYTES: usize = 10 * 1024;
const MAX_OFFSET: usize = 10_000;

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    limit: Option<usize>,
    offset: Option<usize>,
    category: Option<String>,
    tag: Option<String>,
    product: Option<String>,
    locale: Option<String>,
    /// The customer's context: boosts matching articles without hiding others.
    context_product: Option<String>,
    context_plan: Option<String>,
    context_locale: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct SearchResponse {
    query_id: String,
    total: usize,
    took_ms: f64,
    hits: Vec<SearchHit>,
    facets: Facets,
}

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let started = Instant::now();
    let Query(params) = params?;
    let caller = state.keys.identify(&headers)?;
    let text = required_query(params.q)?;
    let request = SearchRequest {
        text,
        limit: params.limit.unwrap_or(10).min(MAX_LIMIT),
        offset: params.offset.unwrap_or(0).min(MAX_OFFSET),
        filters: Filters {
            category: params.category,
            tag: params.tag,
            product: params.product,
            locale: params.locale,
        },
        visibility: caller.visibility(),
        context: Context {
            product: params.context_product,
            plan: params.context_plan,
            locale: params.context_locale,
        },
        exclude_other_plans: false,
    };
    let engine = state.engine.clone();
    let results = tokio::task::spawn_blocking(move || engine.search(&request)).await??;
    Ok(Json(SearchResponse {
        query_id: uuid::Uuid::new_v4().to_string(),
        total: results.total,
        took_ms: started.elapsed().as_secs_f64() * 1e3,
        hits: results.hits,
        facets: results.facets,
    }))
}

#[derive(Debug, Deserialize)]
pub struct AutocompleteParams {
    q: Option<String>,
    limit: Option<usize>,
    category: Option<String>,
    product: Option<String>,
    locale: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct AutocompleteResponse {
    took_ms: f64,
    suggestions: Vec<Suggestion>,
}

pub async fn autocomplete(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<AutocompleteParams>, QueryRejection>,
) -> Result<Json<AutocompleteResponse>, ApiError> {
    let started = Instant::now();
    let Query(params) = params?;
    let caller = state.keys.identify(&headers)?;
    let text = required_query(params.q)?;
    let limit = params.limit.unwrap_or(8).min(MAX_LIMIT);
    let filters = Filters {
        category: params.category,
        tag: None,
        product: params.product,
        locale: params.locale,
    };
    let engine = state.engine.clone();
    let suggestions = tokio::task::spawn_blocking(move || {
        engine.autocomplete(&text, limit, &filters, caller.visibility())
    })
    .await??;
    Ok(Json(AutocompleteResponse {
        took_ms: started.elapsed().as_secs_f64() * 1e3,
        suggestions,
    }))
}

fn required_query(q: Option<String>) -> Result<String, ApiError> {
    let q = q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::bad_request(
            "missing_query",
            "the `q` parameter is required and must not be empty",
        ));
    }
    let mut end = q.len().min(MAX_QUERY_BYTES);
    while !q.is_char_boundary(end) {
        end -= 1;
    }
    Ok(q[..end].to_string())
}
