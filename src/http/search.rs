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

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What the customer typed (required, not blank); the last word also
    /// matches as a prefix, and typos are forgiven.
    #[param(required = true, pattern = r"\S", example = "reset my password")]
    q: Option<String>,
    /// Hits per page: default 10; values over 50 are served as 50.
    #[param(maximum = 1000000, minimum = 0, example = 10)]
    limit: Option<u64>,
    /// Hits to skip, for the next page: default 0; values over 10000 are served as 10000.
    #[param(maximum = 1000000, minimum = 0)]
    offset: Option<u64>,
    /// Only articles in this category or below it (`billing`, `billing/refunds`).
    category: Option<String>,
    /// Only articles with this tag.
    tag: Option<String>,
    /// Only articles for this product.
    product: Option<String>,
    /// Only articles in this locale.
    locale: Option<String>,
    /// The customer's product: boosts matching articles, never filters.
    context_product: Option<String>,
    /// The customer's plan: boosts matching articles, never filters.
    context_plan: Option<String>,
    /// The customer's locale: boosts matching articles, never filters.
    context_locale: Option<String>,
    /// Groups a visitor's searches for analytics (stored hashed) and adds the
    /// search to the session's timeline for a hand-off.
    #[param(example = "chat-42")]
    session_id: Option<String>,
    /// With `session_id`: stored only as a keyed hash.
    customer_id: Option<String>,
}

/// Search results recorded as shown on a session's timeline.
const SHOWN_SEARCH_HITS: usize = 3;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchResponse {
    pub query_id: String,
    /// Matching articles: exact up to 10,000, a lower bound above
    /// (`total_relation`).
    pub total: usize,
    pub total_relation: TotalRelation,
    pub took_ms: f64,
    pub hits: Vec<SearchHit>,
    pub facets: Facets,
}

/// Whether `total` is exact (`eq`) or a lower bound (`gte`): counting
/// stops at 10,000 matches, as Elasticsearch's `track_total_hits` does, and
/// the facet counts are then those of the matches counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TotalRelation {
    Eq,
    Gte,
}

/// Portal search: ranked articles with their best section, highlighted
/// snippets and facets.
#[utoipa::path(get, path = "/api/v1/search", tag = "customers",
    params(SearchParams),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ranked hits (public articles; with a key, internal ones too) and facets over all matches", body = SearchResponse),
        (status = 400, description = "`q` missing or blank (`missing_query`), or a malformed or out-of-range parameter (`invalid_query`)", body = ErrorBody),
    ))]
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
        retrieval: Default::default(),
        transcript: false,
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
            auto_reply: false,
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
        total_relation: if results.total_exact {
            TotalRelation::Eq
        } else {
            TotalRelation::Gte
        },
        took_ms,
        hits: results.hits,
        facets: results.facets,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AutocompleteParams {
    /// What the customer has typed so far (required, not blank).
    #[param(required = true, pattern = r"\S", example = "pass")]
    q: Option<String>,
    /// Suggestions: default 8; values over 50 are served as 50.
    #[param(maximum = 1000000, minimum = 0, example = 8)]
    limit: Option<u64>,
    /// Only articles in this category or below it.
    category: Option<String>,
    /// Only articles for this product.
    product: Option<String>,
    /// Only articles in this locale.
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

/// Search as you type: article titles and section headings for what the
/// customer has typed so far.
#[utoipa::path(get, path = "/api/v1/autocomplete", tag = "customers",
    params(AutocompleteParams),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Suggestions, best first", body = AutocompleteResponse),
        (status = 400, description = "`q` missing or blank (`missing_query`), or a malformed or out-of-range parameter (`invalid_query`)", body = ErrorBody),
    ))]
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
    // A cached answer is served here; only a miss is ranked on the blocking
    // pool (the hand-off cost more than a hit under load).
    let cached = state
        .engine
        .cached_autocomplete(&text, limit, &filters, caller.visibility());
    let suggestions = match cached {
        Some(suggestions) => suggestions,
        None => {
            let engine = state.engine.clone();
            let typed = text.clone();
            tokio::task::spawn_blocking(move || {
                engine.autocomplete(&typed, limit, &filters, caller.visibility())
            })
            .await??
        }
    };
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
            auto_reply: false,
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
