//! The portal's search channel: `/api/v1/search` and `/api/v1/autocomplete`.

use std::time::Instant;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::answer::non_blank;
use super::error::{ApiError, ErrorBody, ErrorCode, count_param};
use crate::analytics::redact::normalize_query;
use crate::analytics::{Channel, QueryEvent, now_ms};
use crate::handoff::timeline::{QuestionRecord, ShownArticle, TurnChannel};
use crate::search::query::bounded;
use crate::search::{Context, Facets, Filters, MAX_LIMIT, SearchHit, SearchRequest, Suggestion};

/// Queries longer than this are cut (at a char boundary) before analysis.
const MAX_QUERY_BYTES: usize = 10 * 1024;
const MAX_OFFSET: usize = 10_000;

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    q: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
    category: Option<String>,
    tag: Option<String>,
    product: Option<String>,
    locale: Option<String>,
    /// The customer's context: boosts matching articles without hiding others.
    context_product: Option<String>,
    context_plan: Option<String>,
    context_locale: Option<String>,
    /// Optional: lets analytics group a visitor's searches (stored hashed),
    /// and adds the search to the session's timeline for a hand-off.
    session_id: Option<String>,
    /// Optional, with `session_id`: stored only as a keyed hash.
    customer_id: Option<String>,
}

/// Search results recorded as shown on a session's timeline.
const SHOWN_SEARCH_HITS: usize = 3;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub query_id: String,
    pub total: usize,
    pub took_ms: f64,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
}

#[utoipa::path(get, path = "/api/v1/search", tag = "portal",
    params(
        ("q" = String, Query, pattern = r"\S", description = "What the customer typed (not blank); the last word also matches as a prefix"),
        ("limit" = Option<u64>, Query, maximum = 1000000, description = "Hits per page, default 10, at most 50"),
        ("offset" = Option<u64>, Query, maximum = 1000000),
        ("category" = Option<String>, Query), ("tag" = Option<String>, Query),
        ("product" = Option<String>, Query), ("locale" = Option<String>, Query),
        ("context_product" = Option<String>, Query, description = "Boosts, never filters"),
        ("context_plan" = Option<String>, Query), ("context_locale" = Option<String>, Query),
        ("session_id" = Option<String>, Query, description = "Stored hashed, for analytics and the session timeline"),
        ("customer_id" = Option<String>, Query, description = "With session_id; stored only as a keyed hash"),
    ),
    responses((status = 200, body = SearchResponse), (status = 400, description = "Invalid parameters", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody), (status = 401, body = ErrorBody)))]
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
        text: text.clone(),
        limit: count_param(params.limit, "limit", 10, MAX_LIMIT)?,
        offset: count_param(params.offset, "offset", 0, MAX_OFFSET)?,
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
    let filters = serde_json::json!({
        "category": request.filters.category, "tag": request.filters.tag,
        "product": request.filters.product, "locale": request.filters.locale,
        "context": {"product": request.context.product, "plan": request.context.plan, "locale": request.context.locale},
    });
    let text = request.text.clone();
    let engine = state.engine.clone();
    let results = tokio::task::spawn_blocking(move || engine.search(&request)).await??;
    let query_id = uuid::Uuid::new_v4().to_string();
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    if results.total == 0 {
        state.metrics.zero_result_searches.inc();
    }
    if let Some(analytics) = &state.analytics {
        analytics.record_query(QueryEvent {
            query_id: query_id.clone(),
            at_ms: now_ms(),
            channel: Channel::Search,
            query: normalize_query(&text),
            filters,
            result_count: results.total as u64,
            top_ids: results.hits.iter().map(|h| h.id.clone()).collect(),
            confidence: None,
            handoff_reasons: Vec::new(),
            latency_ms: took_ms,
            session_hash: params
                .session_id
                .as_deref()
                .map(|s| analytics.hash_session(s)),
            burst_key: None,
        });
    }
    if let Some(session) = non_blank(&params.session_id) {
        let customer = non_blank(&params.customer_id).map(|c| state.sessions.hash_customer(c));
        state.sessions.record_question(
            &state.sessions.hash_session(session),
            customer.as_deref(),
            QuestionRecord {
                query_id: &query_id,
                channel: TurnChannel::Search,
                text: &text,
                tone: state.handoff.analyze_tone(&text),
                handoff_reasons: Vec::new(),
                shown: results
                    .hits
                    .iter()
                    .take(SHOWN_SEARCH_HITS)
                    .map(|hit| ShownArticle {
                        article_id: hit.id.clone(),
                        title: hit.title.clone(),
                        section: Some(hit.section.heading.clone()),
                        confidence: None,
                    })
                    .collect(),
            },
        );
    }
    Ok(Json(SearchResponse {
        query_id,
        total: results.total,
        took_ms,
        hits: results.hits,
        facets: results.facets,
    }))
}

#[derive(Debug, Deserialize)]
pub struct AutocompleteParams {
    q: Option<String>,
    limit: Option<u64>,
    category: Option<String>,
    product: Option<String>,
    locale: Option<String>,
    /// Groups keystrokes into one typing burst; defaults to the client address.
    session_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AutocompleteResponse {
    query_id: String,
    took_ms: f64,
    suggestions: Vec<Suggestion>,
}

#[utoipa::path(get, path = "/api/v1/autocomplete", tag = "portal",
    params(("q" = String, Query, pattern = r"\S"), ("limit" = Option<u64>, Query, maximum = 1000000), ("category" = Option<String>, Query),
        ("product" = Option<String>, Query), ("locale" = Option<String>, Query), ("session_id" = Option<String>, Query)),
    responses((status = 200, body = AutocompleteResponse), (status = 400, description = "Invalid parameters", body = ErrorBody), (status = 429, description = "Rate limited", body = ErrorBody)))]
pub async fn autocomplete(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    params: Result<Query<AutocompleteParams>, QueryRejection>,
) -> Result<Json<AutocompleteResponse>, ApiError> {
    let started = Instant::now();
    let Query(params) = params?;
    let caller = state.keys.identify(&headers)?;
    let text = required_query(params.q)?;
    let limit = count_param(params.limit, "limit", 8, MAX_LIMIT)?;
    let filters = Filters {
        category: params.category,
        tag: None,
        product: params.product,
        locale: params.locale,
    };
    let engine = state.engine.clone();
    let typed = text.clone();
    let suggestions = tokio::task::spawn_blocking(move || {
        engine.autocomplete(&typed, limit, &filters, caller.visibility())
    })
    .await??;
    let query_id = uuid::Uuid::new_v4().to_string();
    let took_ms = started.elapsed().as_secs_f64() * 1e3;
    if let Some(analytics) = &state.analytics {
        let burst = params.session_id.unwrap_or_else(|| peer.ip().to_string());
        analytics.record_query(QueryEvent {
            query_id: query_id.clone(),
            at_ms: now_ms(),
            channel: Channel::Autocomplete,
            query: normalize_query(&text),
            filters: serde_json::json!({}),
            result_count: suggestions.len() as u64,
            top_ids: suggestions.iter().map(|s| s.id.clone()).collect(),
            confidence: None,
            handoff_reasons: Vec::new(),
            latency_ms: took_ms,
            session_hash: Some(analytics.hash_session(&burst)),
            burst_key: Some(analytics.hash_session(&burst)),
        });
    }
    Ok(Json(AutocompleteResponse {
        query_id,
        took_ms,
        suggestions,
    }))
}

fn required_query(q: Option<String>) -> Result<String, ApiError> {
    let q = q.unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::bad_request(
            ErrorCode::MissingQuery,
            "the `q` parameter is required and must not be empty",
        ));
    }
    Ok(bounded(&q, MAX_QUERY_BYTES))
}
