//! The self-service help portal (`/`, `/search`, `/articles/{id}`,
//! `/categories/{name}`) and the agent panel (`/agent`).
//!
//! Pages are rendered on the server (maud, escaped by default) so they work
//! without JavaScript and can be indexed; a little plain JavaScript, embedded
//! in the binary like the CSS, then enhances them by calling the JSON API.

mod pages;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use maud::Markup;
use serde::Deserialize;

use super::error::ApiError;
use super::{AppState, blocking};
use crate::analytics::reports::{self, Window};
use crate::analytics::{Analytics, now_ms};
use crate::config::PortalSettings;
use crate::search::{Filters, SearchEngine, SearchRequest, Visibility};

const BASE_CSS: &str = include_str!("assets/portal.css");
const PORTAL_JS: &str = include_str!("assets/portal.js");
const AGENT_JS: &str = include_str!("assets/agent.js");
const WIDGET_JS: &str = include_str!("assets/widget.js");
const WIDGET_CSS: &str = include_str!("assets/widget.css");
/// Where `widget.js` names its stylesheet's version (filled in at start).
const WIDGET_CSS_SLOT: &str = "RAPPORT_CSS_VERSION";

/// Portal pages: scripts and styles only from this server, API calls only to
/// it, no plugins, no framing (the agent panel may be framed by the
/// configured CORS origins, see [`Portal::agent_csp`]).
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: https:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

/// How long the "popular articles" list is reused before it is recounted.
const POPULAR_TTL: Duration = Duration::from_secs(60);
const POPULAR_COUNT: usize = 6;
/// Results per portal page.
const PAGE_SIZE: u64 = 20;

/// The portal's configuration and assets, prepared once at start.
pub struct Portal {
    pub settings: PortalSettings,
    css: String,
    /// Short content hashes, appended to asset URLs so they can be cached for long.
    css_version: String,
    js_version: String,
    agent_js_version: String,
    /// The chat widget other sites embed; its stylesheet carries the
    /// portal's accent, and the script names the stylesheet's version.
    widget_js: String,
    widget_css: String,
    widget_js_version: String,
    widget_css_version: String,
    agent_csp: String,
    popular: Mutex<Option<(Instant, Vec<pages::Link>)>>,
    /// A background recount of `popular` is running.
    recounting: AtomicBool,
}

impl Portal {
    pub fn new(settings: PortalSettings, frame_origins: &[String]) -> Portal {
        let css = format!(":root{{--accent:{}}}\n{BASE_CSS}", settings.accent);
        let version = |text: &str| blake3::hash(text.as_bytes()).to_hex()[..10].to_string();
        // A host app (one of the CORS origins) may frame the agent panel and
        // send it the transcript with postMessage.
        let ancestors: Vec<&str> = frame_origins
            .iter()
            .map(|o| o.trim_end_matches('/'))
            .filter(|o| is_origin(o))
            .collect();
        let agent_csp = PAGE_CSP.replace(
            "frame-ancestors 'none'",
            format!("frame-ancestors 'self' {}", ancestors.join(" ")).trim_end(),
        );
        // The accent was validated at start (`#rgb` or `#rrggbb`).
        let widget_css = format!(
            ".rapport-widget{{--rw-accent:var(--rapport-accent,{})}}\n{WIDGET_CSS}",
            settings.accent
        );
        let widget_css_version = version(&widget_css);
        let widget_js = WIDGET_JS.replace(WIDGET_CSS_SLOT, &widget_css_version);
        Portal {
            css_version: version(&css),
            widget_js_version: version(&widget_js),
            widget_css_version,
            widget_js,
            widget_css,
            js_version: version(PORTAL_JS),
            agent_js_version: version(AGENT_JS),
            css,
            agent_csp,
            settings,
            popular: Mutex::new(None),
            recounting: AtomicBool::new(false),
        }
    }

    fn assets(&self) -> pages::Assets<'_> {
        pages::Assets {
            css: &self.css_version,
            js: &self.js_version,
            agent_js: &self.agent_js_version,
            widget_js: &self.widget_js_version,
        }
    }
}

/// `scheme://host[:port]` with nothing that could break out of a CSP.
fn is_origin(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    })
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/search", get(search_page))
        .route("/articles/{*id}", get(article_page))
        .route("/categories/{name}", get(category_page))
        .route("/agent", get(agent_page))
        .route("/assets/portal.css", get(css))
        .route("/assets/portal.js", get(portal_js))
        .route("/assets/agent.js", get(agent_js))
        .route("/widget.js", get(widget_js))
        .route("/widget.css", get(widget_css))
}

fn html(status: StatusCode, csp: &str, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    if let Ok(value) = HeaderValue::from_str(csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // URLs carry the content hash, so a changed asset has a new URL.
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}

async fn css(State(state): State<AppState>) -> Response {
    asset("text/css; charset=utf-8", state.portal.css.clone())
}

async fn portal_js() -> Response {
    asset("text/javascript; charset=utf-8", PORTAL_JS)
}

async fn agent_js() -> Response {
    asset("text/javascript; charset=utf-8", AGENT_JS)
}

#[derive(Debug, Deserialize)]
pub struct VersionParam {
    v: Option<String>,
}

/// Other sites embed the bare `/widget.js`, which must pick up a new release
/// within minutes (and is revalidated by its ETag after that); only a URL
/// carrying the current content hash can be cached for good.
fn widget_asset(
    content_type: &'static str,
    body: &str,
    version: &str,
    params: Result<Query<VersionParam>, QueryRejection>,
    headers: &HeaderMap,
) -> Response {
    let requested = params.ok().and_then(|Query(p)| p.v);
    let cache = if requested.as_deref() == Some(version) {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    let etag = format!("\"{version}\"");
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body.to_string()).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

async fn widget_js(
    State(state): State<AppState>,
    params: Result<Query<VersionParam>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let portal = &state.portal;
    widget_asset(
        "text/javascript; charset=utf-8",
        &portal.widget_js,
        &portal.widget_js_version,
        params,
        &headers,
    )
}

async fn widget_css(
    State(state): State<AppState>,
    params: Result<Query<VersionParam>, QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let portal = &state.portal;
    widget_asset(
        "text/css; charset=utf-8",
        &portal.widget_css,
        &portal.widget_css_version,
        params,
        &headers,
    )
}

async fn home(State(state): State<AppState>) -> Result<Response, ApiError> {
    let engine = state.engine.clone();
    let facets = blocking(move || engine.browse_facets(Visibility::PublicOnly)).await??;
    let popular = popular(&state).await?;
    let portal = &state.portal;
    let markup = pages::home(&portal.settings, portal.assets(), &facets, &popular);
    Ok(html(StatusCode::OK, PAGE_CSP, markup))
}

#[derive(Debug, Deserialize)]
pub struct PortalSearchParams {
    q: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    page: Option<u64>,
}

async fn search_page(
    State(state): State<AppState>,
    params: Result<Query<PortalSearchParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    // A mangled link still gets a usable page rather than an error.
    let params = params.map(|Query(p)| p).unwrap_or(PortalSearchParams {
        q: None,
        category: None,
        tag: None,
        page: None,
    });
    let blank = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
    let q = blank(params.q).unwrap_or_default();
    let category = blank(params.category);
    let tag = blank(params.tag);
    let page = params.page.unwrap_or(1).clamp(1, 50);
    let popular = popular(&state).await?;
    let portal = &state.portal;
    if q.trim().is_empty() {
        let markup = pages::search(
            &portal.settings,
            portal.assets(),
            &pages::SearchView::empty(),
            &popular,
        );
        return Ok(html(StatusCode::OK, PAGE_CSP, markup));
    }
    // The same handler as the JSON API, so a server-rendered search is
    // ranked, limited and recorded exactly like one from the API.
    let api_params = serde_json::from_value(serde_json::json!({
        "q": q, "category": category, "tag": tag,
        "limit": PAGE_SIZE, "offset": (page - 1) * PAGE_SIZE,
    }))
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let axum::Json(results) = super::search::search(
        State(state.clone()),
        HeaderMap::new(),
        Ok(Query(api_params)),
    )
    .await?;
    let view = pages::SearchView {
        q: &q,
        category: category.as_deref(),
        tag: tag.as_deref(),
        page,
        page_size: PAGE_SIZE,
        results: Some(&results),
    };
    let markup = pages::search(&portal.settings, portal.assets(), &view, &popular);
    Ok(html(StatusCode::OK, PAGE_CSP, markup))
}

async fn article_page(
    State(state): State<AppState>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Response, ApiError> {
    // An id that isn't valid UTF-8 once decoded names no article: the
    // not-found page, like any other unknown id.
    let Ok(Path(id)) = id else {
        return not_found(&state, "We couldn't find that article.").await;
    };
    let engine = state.engine.clone();
    let lookup = id.clone();
    let found = blocking(move || -> Result<_, crate::search::SearchError> {
        let Some(article) = engine.article(&lookup, Visibility::PublicOnly)? else {
            return Ok(None);
        };
        let related = related(&engine, &article)?;
        Ok(Some((article, related)))
    })
    .await??;
    let portal = &state.portal;
    match found {
        Some((article, related)) => {
            let markup = pages::article(&portal.settings, portal.assets(), &article, &related);
            Ok(html(StatusCode::OK, PAGE_CSP, markup))
        }
        None => not_found(&state, "We couldn't find that article.").await,
    }
}

/// Articles like this one: a search for its title (and tags), itself excluded.
fn related(
    engine: &SearchEngine,
    article: &crate::article::Article,
) -> Result<Vec<pages::Link>, crate::search::SearchError> {
    let text = format!("{} {}", article.title, article.tags.join(" "));
    let request = SearchRequest::new(text, 6, Visibility::PublicOnly);
    let results = engine.search(&request)?;
    Ok(results
        .hits
        .into_iter()
        .filter(|hit| hit.id != article.id)
        .take(5)
        .map(|hit| pages::Link {
            url: crate::search::article_url(&hit.id, None),
            title: hit.title,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct PageParam {
    page: Option<u64>,
}

async fn category_page(
    State(state): State<AppState>,
    name: Result<Path<String>, axum::extract::rejection::PathRejection>,
    params: Result<Query<PageParam>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Ok(Path(name)) = name else {
        return not_found(&state, "There is no category by that name.").await;
    };
    let page = params
        .ok()
        .and_then(|Query(p)| p.page)
        .unwrap_or(1)
        .clamp(1, 200);
    let engine = state.engine.clone();
    let filters = Filters {
        category: Some(name.clone()),
        ..Filters::default()
    };
    let page_size = crate::search::MAX_LIMIT;
    let (total, listings) = blocking(move || {
        engine.list(
            &filters,
            page_size,
            (page as usize - 1) * page_size,
            Visibility::PublicOnly,
        )
    })
    .await??;
    if total == 0 {
        return not_found(&state, "There is no category by that name.").await;
    }
    let portal = &state.portal;
    let markup = pages::category(
        &portal.settings,
        portal.assets(),
        &name,
        total,
        page,
        page_size,
        &listings,
    );
    Ok(html(StatusCode::OK, PAGE_CSP, markup))
}

async fn agent_page(State(state): State<AppState>) -> Response {
    let portal = &state.portal;
    let markup = pages::agent(&portal.settings, portal.assets(), &state.cors_origins);
    html(StatusCode::OK, &portal.agent_csp, markup)
}

async fn not_found(state: &AppState, message: &str) -> Result<Response, ApiError> {
    let popular = popular(state).await?;
    let portal = &state.portal;
    let markup = pages::not_found(&portal.settings, portal.assets(), message, &popular);
    Ok(html(StatusCode::NOT_FOUND, PAGE_CSP, markup))
}

/// The public articles customers clicked or found helpful most in the last
/// 30 days, topped up with the most recently updated ones (a new help center
/// has no clicks yet). Counted once, then recounted in the background at most
/// once a minute while pages keep using the previous list (counting reads
/// every article: ~70 ms for 2,500 of them).
async fn popular(state: &AppState) -> Result<Vec<pages::Link>, ApiError> {
    let cached = state
        .portal
        .popular
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    match cached {
        Some((at, links)) => {
            if at.elapsed() >= POPULAR_TTL && !state.portal.recounting.swap(true, Ordering::AcqRel)
            {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Err(error) = recount_popular(&state).await {
                        tracing::warn!(%error, "popular articles: recount failed");
                    }
                    state.portal.recounting.store(false, Ordering::Release);
                });
            }
            Ok(links)
        }
        None => recount_popular(state).await,
    }
}

async fn recount_popular(state: &AppState) -> Result<Vec<pages::Link>, ApiError> {
    let engine = state.engine.clone();
    let analytics = state.analytics.clone();
    let links = blocking(move || count_popular(&engine, analytics.as_deref())).await??;
    *state
        .portal
        .popular
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), links.clone()));
    Ok(links)
}

fn count_popular(
    engine: &SearchEngine,
    analytics: Option<&Analytics>,
) -> Result<Vec<pages::Link>, crate::search::SearchError> {
    let articles = engine.all_articles(Visibility::PublicOnly)?;
    let titles: HashMap<&str, &str> = articles
        .iter()
        .map(|a| (a.id.as_str(), a.title.as_str()))
        .collect();
    let mut ranked: Vec<(u64, String)> = Vec::new();
    if let Some(analytics) = analytics {
        let window = Window {
            from_ms: now_ms() - 30 * 24 * 3600 * 1000,
            to_ms: now_ms() + 1,
            channel: None,
        };
        // Analytics trouble must not take the help center down: fall back
        // to recency.
        match reports::article_stats(analytics.store().as_ref(), &window) {
            Ok(stats) => {
                ranked = stats
                    .into_iter()
                    .filter(|(id, _)| titles.contains_key(id.as_str()))
                    .map(|(id, s)| (s.clicks + 2 * s.helpful + s.resolved, id))
                    .filter(|(score, _)| *score > 0)
                    .collect();
                ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
            }
            Err(error) => tracing::warn!(%error, "popular articles: analytics unavailable"),
        }
    }
    let mut ids: Vec<&str> = ranked
        .iter()
        .map(|(_, id)| id.as_str())
        .take(POPULAR_COUNT)
        .collect();
    let mut recent: Vec<_> = articles.iter().collect();
    recent.sort_by(|a, b| {
        b.updated
            .cmp(&a.updated)
            .then_with(|| a.title.cmp(&b.title))
    });
    for crate::analytics::dashboard::ArticleInfo { id, .. } in recent {
        if ids.len() >= POPULAR_COUNT {
            break;
        }
        if !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    Ok(ids
        .into_iter()
        .map(|id| pages::Link {
            url: crate::search::article_url(id, None),
            title: titles.get(id).copied().unwrap_or(id).to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_origins_may_frame_the_agent_panel() {
        assert!(is_origin("https://app.example.com"));
        assert!(is_origin("http://127.0.0.1:3000"));
        assert!(!is_origin("https://x.com; script-src *"));
        assert!(!is_origin("javascript:alert(1)"));
        let portal = Portal::new(
            PortalSettings::default(),
            &["https://app.example.com/".into(), "bad; origin".into()],
        );
        assert!(
            portal
                .agent_csp
                .contains("frame-ancestors 'self' https://app.example.com")
        );
        assert!(!portal.agent_csp.contains("bad"));
        assert!(portal.css.starts_with(":root{--accent:#2563eb}"));
        assert!(
            portal
                .widget_css
                .starts_with(".rapport-widget{--rw-accent:var(--rapport-accent,#2563eb)}")
        );
        // The script names its stylesheet's current version.
        assert!(!portal.widget_js.contains(WIDGET_CSS_SLOT));
        assert!(
            portal
                .widget_js
                .contains(&format!("/widget.css?v={}\"", portal.widget_css_version))
        );
    }
}
