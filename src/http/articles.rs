//! Article fetch and listing: `/api/v1/articles` and `/api/v1/articles/{id}`.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::{ApiError, ErrorBody, count_param};
use crate::article::Audience;
use crate::search::{ArticleListing, Filters, MAX_LIMIT, article_url};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SectionView {
    heading: String,
    anchor: Option<String>,
    level: u8,
    url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArticleView {
    id: String,
    title: String,
    url: String,
    summary: String,
    category: Option<String>,
    tags: Vec<String>,
    products: Vec<String>,
    audience: Audience,
    locale: String,
    updated: Option<String>,
    markdown: String,
    /// Sanitized with ammonia; safe to embed.
    html: String,
    sections: Vec<SectionView>,
}

/// One article: its Markdown, sanitized HTML and sections.
#[utoipa::path(get, path = "/api/v1/articles/{id}", tag = "customers",
    params(("id" = String, Path, example = "billing/update-payment-method", description = "The article's id; ids may contain `/` (send it as is or as `%2F`)")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The article", body = ArticleView),
        (status = 404, description = "No article with this id that the caller may read (`not_found`); an internal article is not found without a key", body = ErrorBody),
        (status = 400, description = "A malformed id (`invalid_path`)", body = ErrorBody),
    ))]
pub async fn get_article(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ArticleView>, ApiError> {
    let Path(id) = id?;
    let caller = state.keys.identify(&headers)?;
    let engine = state.engine.clone();
    let lookup = id.clone();
    let article = tokio::task::spawn_blocking(move || engine.article(&lookup, caller.visibility()))
        .await??
        .ok_or_else(|| ApiError::NotFound(format!("no article with id {id:?}")))?;
    let sections = article
        .sections
        .iter()
        .map(|s| SectionView {
            heading: s.heading.clone(),
            anchor: s.anchor.clone(),
            level: s.level,
            url: article_url(&article.id, s.anchor.as_deref()),
        })
        .collect();
    Ok(Json(ArticleView {
        url: article_url(&article.id, None),
        id: article.id,
        title: article.title,
        summary: article.summary,
        category: article.category,
        tags: article.tags,
        products: article.products,
        audience: article.audience,
        locale: article.locale,
        updated: article.updated,
        markdown: article.markdown,
        html: article.html,
        sections,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only articles in this category or below it.
    category: Option<String>,
    /// Only articles with this tag.
    tag: Option<String>,
    /// Only articles for this product.
    product: Option<String>,
    /// Only articles in this locale.
    locale: Option<String>,
    /// Articles per page: default 20; values over 50 are served as 50.
    #[param(maximum = 1000000, minimum = 0, example = 20)]
    limit: Option<u64>,
    /// Articles to skip: default 0; values over 10000 are served as 10000.
    #[param(maximum = 1000000, minimum = 0)]
    offset: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListResponse {
    total: usize,
    articles: Vec<ArticleListing>,
}

/// The catalogue by title, optionally filtered: for browsing by
/// category and for syncing articles elsewhere.
#[utoipa::path(get, path = "/api/v1/articles", tag = "customers",
    params(ListParams),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "A page of articles and the total that match", body = ListResponse),
        (status = 400, description = "A malformed or out-of-range parameter (`invalid_query`)", body = ErrorBody),
    ))]
pub async fn list_articles(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(params) = params?;
    let caller = state.keys.identify(&headers)?;
    let filters = Filters {
        category: params.category,
        tag: params.tag,
        product: params.product,
        locale: params.locale,
    };
    let limit = count_param(params.limit, "limit", 20, MAX_LIMIT)?;
    let offset = count_param(params.offset, "offset", 0, 10_000)?;
    let engine = state.engine.clone();
    let (total, articles) = tokio::task::spawn_blocking(move || {
        engine.list(&filters, limit, offset, caller.visibility())
    })
    .await??;
    Ok(Json(ListResponse { total, articles }))
}
