//! Feedback from every channel (`POST /api/v1/feedback`) and the admin
//! reports (`/api/v1/analytics/*`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use super::AppState;
use super::error::{ApiError, ErrorBody, ErrorCode, count_param};
use crate::analytics::csv::{self as csv_table, Cell, CsvError};
use crate::analytics::dashboard::{
    self, ArticleInfo, ArticleWork, GapGroup, HandoffReport, Overview,
};
use crate::analytics::reports::{self, ArticleStats, QueryCount, QueryReportKind, Summary, Window};
use crate::analytics::{Analytics, Channel, FeedbackEvent, FeedbackKind, now_ms};
use crate::auth::{AuthError, Caller};
use crate::search::Visibility;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    query_id: String,
    article_id: String,
    event: FeedbackKind,
    comment: Option<String>,
}

/// What the customer made of an article shown for a query: a click, a
/// helpful or not-helpful vote (with an optional comment), or an agent
/// using it in a reply.
#[utoipa::path(post, path = "/api/v1/feedback", tag = "customers",
    request_body(content = FeedbackRequest, example = json!({"query_id": "q_5f1c9a", "article_id": "billing/update-payment-method", "event": "helpful"})),
    security((), ("bearer" = [])),
    responses(
        (status = 202, description = "Recorded", body = FeedbackAccepted),
        (status = 404, description = "No such query or article (`not_found`), or analytics are off and the query was not in a session (`analytics_disabled`)", body = ErrorBody),
        (status = 400, description = "A malformed body, an unknown field or event (`invalid_body`)", body = ErrorBody),
    ))]
pub async fn feedback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<FeedbackRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<FeedbackAccepted>), ApiError> {
    let Json(request) = body?;
    let caller = state.keys.identify(&headers)?;
    let analytics = state.analytics.clone();
    let sessions = state.sessions.clone();
    let engine = state.engine.clone();
    let query_id = request.query_id.clone();
    let article_id = request.article_id.clone();
    // A query asked in a session also gets its feedback on the session's
    // timeline, which works with analytics off too (kept in memory).
    let (session, known_query, known_article) = tokio::task::spawn_blocking(move || {
        let session = sessions.session_of_query(&query_id);
        let known_query = match (&analytics, &session) {
            (_, Some(_)) => Ok(true),
            (Some(analytics), None) => analytics.knows_query(&query_id),
            (None, None) => Ok(false),
        };
        let known_article = engine.article(&article_id, caller.visibility());
        (session, known_query, known_article)
    })
    .await?;
    if state.analytics.is_none() && session.is_none() {
        return Err(ApiError::AnalyticsDisabled);
    }
    if !known_query? {
        return Err(ApiError::NotFound(format!(
            "no query with id {:?}",
            request.query_id
        )));
    }
    let Some(article) = known_article? else {
        return Err(ApiError::NotFound(format!(
            "no article with id {:?}",
            request.article_id
        )));
    };
    if let Some(session) = &session {
        // Synchronous and in memory: the very next answer in this session
        // already avoids an article just marked not helpful.
        state.sessions.record_feedback(
            session,
            &request.query_id,
            &request.article_id,
            &article.title,
            request.event,
        );
    }
    if let Some(analytics) = &state.analytics {
        let comment = request.comment.map(|c| {
            crate::analytics::redact::redact(&c)
                .chars()
                .take(2000)
                .collect()
        });
        analytics.record_feedback(FeedbackEvent {
            query_id: request.query_id,
            article_id: request.article_id,
            event: request.event,
            comment,
            at_ms: now_ms(),
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(FeedbackAccepted { accepted: true }),
    ))
}

/// `202` from `/api/v1/feedback`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedbackAccepted {
    /// Always true: the event is queued for the analytics database.
    pub accepted: bool,
}

#[derive(Debug, Deserialize)]
pub struct WindowParams {
    from: Option<String>,
    to: Option<String>,
    /// The last N days up to `to`; with `from` too, the later start wins.
    days: Option<u64>,
    channel: Option<String>,
    kind: Option<QueryReportKind>,
    limit: Option<u64>,
    format: Option<String>,
}

/// The window and format every report takes, for the OpenAPI document
/// only ([`WindowParams`] reads them, with `kind` and `limit`, and parses
/// `channel` and `format` by hand for errors that name the value).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ReportWindow {
    /// First day (YYYY-MM-DD, or an RFC 3339 time); default 30 days before `to`
    #[param(format = Date, example = "2026-11-01")]
    from: Option<String>,
    /// Last day, inclusive (YYYY-MM-DD, or an RFC 3339 time); default now
    #[param(format = Date, example = "2026-11-30")]
    to: Option<String>,
    /// The last N days up to `to` (the dashboard offers 7, 30 and 90); with `from` too, the window starts at the later of the two
    #[param(minimum = 1, maximum = 366, example = 30)]
    days: Option<u64>,
    /// Only this channel
    channel: Option<Channel>,
    /// `json` (default) or `csv`: a `text/csv` download with a header row, text cells starting with = + - @ tab or CR prefixed with a single quote
    #[param(example = "csv")]
    format: Option<Format>,
}

/// The refusals every report shares.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum ReportErrors {
    /// An agent key: reports need an admin key (`forbidden`)
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// Analytics are turned off on this server (`analytics_disabled`)
    #[response(status = 404)]
    Disabled(ErrorBody),
    /// A date that is neither YYYY-MM-DD nor RFC 3339 (`invalid_time`), an unknown channel (`invalid_channel`), a malformed parameter or an unknown `format` (`invalid_query`)
    #[response(status = 400)]
    Invalid(ErrorBody),
}

/// How a report is sent: JSON (the default) or a CSV download. Parsed by
/// hand from the query string (for an error naming the value); the type
/// gives the OpenAPI document its two values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

fn format(params: &WindowParams) -> Result<Format, ApiError> {
    match params.format.as_deref() {
        None | Some("json") => Ok(Format::Json),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError::bad_request(
            ErrorCode::InvalidQuery,
            format!("format={other:?}: use json or csv"),
        )),
    }
}

/// A report as JSON, or as `text/csv` named after the report and its days.
fn respond<T: Serialize>(
    format: Format,
    report: &str,
    window: &Window,
    value: T,
    csv: impl FnOnce(&T) -> Result<String, CsvError>,
) -> Result<Response, ApiError> {
    match format {
        Format::Json => Ok(Json(value).into_response()),
        Format::Csv => {
            let body = csv(&value).map_err(|e| ApiError::Internal(e.to_string()))?;
            let date = |ms: i64| {
                time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
                    .ok()
                    .and_then(|t| t.date().format(&DATE).ok())
                    .unwrap_or_default()
            };
            let filename = format!(
                "rapport-{report}-{}-{}.csv",
                date(window.from_ms),
                date(window.to_ms - 1)
            );
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{filename}\""),
                    ),
                ],
                body,
            )
                .into_response())
        }
    }
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// The analytics, for an admin key or a signed-in dashboard session.
fn admin<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a std::sync::Arc<Analytics>, ApiError> {
    match state.keys.identify(headers)? {
        Caller::Admin => {}
        Caller::Agent => return Err(ApiError::Unauthorized(AuthError::Forbidden)),
        Caller::Anonymous if super::admin::has_session(state, headers) => {}
        Caller::Anonymous => return Err(ApiError::Unauthorized(AuthError::AdminKeyRequired)),
    }
    state.analytics.as_ref().ok_or(ApiError::AnalyticsDisabled)
}

/// `from`/`to` accept RFC 3339 times or `YYYY-MM-DD` dates (`to` inclusive for
/// dates); the default window is the last 30 days.
fn window(params: &WindowParams) -> Result<Window, ApiError> {
    let parse = |value: &str, end_of_day: bool| -> Result<i64, ApiError> {
        if let Ok(time) = time::OffsetDateTime::parse(value, &Rfc3339) {
            return Ok((time.unix_timestamp_nanos() / 1_000_000) as i64);
        }
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(value, &format).map_err(|_| {
            ApiError::bad_request(
                ErrorCode::InvalidTime,
                format!("{value:?} is neither an RFC 3339 time nor a YYYY-MM-DD date"),
            )
        })?;
        let date = if end_of_day {
            date.next_day().unwrap_or(date)
        } else {
            date
        };
        Ok(date.midnight().assume_utc().unix_timestamp() * 1000)
    };
    let to_ms = match &params.to {
        Some(to) => parse(to, true)?,
        None => now_ms() + 1,
    };
    let day_ms = 24 * 3600 * 1000;
    let last_days = match params.days {
        None => None,
        Some(days @ 1..=366) => Some(to_ms - days as i64 * day_ms),
        Some(days) => {
            return Err(ApiError::bad_request(
                ErrorCode::InvalidQuery,
                format!("days={days}: use 1 to 366 (the dashboard offers 7, 30 and 90)"),
            ));
        }
    };
    // `from` and `days` both bound the start; with both, the later one wins.
    let from_ms = match (&params.from, last_days) {
        (Some(from), last_days) => parse(from, false)?.max(last_days.unwrap_or(i64::MIN)),
        (None, Some(start)) => start,
        (None, None) => to_ms - 30 * day_ms,
    };
    // An empty `channel=` names no channel: refused like any unknown one.
    let channel = params.channel.clone();
    if let Some(channel) = &channel
        && ![
            "search",
            "autocomplete",
            "answer",
            "suggest",
            "email",
            "form",
            "social",
        ]
        .contains(&channel.as_str())
    {
        return Err(ApiError::bad_request(
            ErrorCode::InvalidChannel,
            "channel must be search, autocomplete, answer, suggest, email, form or social",
        ));
    }
    Ok(Window {
        from_ms,
        to_ms,
        channel,
    })
}

/// One report request, the same for every report: the admin check, the
/// format and window from the query, `read` over the store off the async
/// runtime (after a flush, so what was just recorded counts), then JSON or
/// CSV.
async fn report<T: Serialize + Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    params: &WindowParams,
    name: &str,
    read: impl FnOnce(&dyn crate::store::Store, &Window) -> Result<T, ApiError> + Send + 'static,
    csv: impl FnOnce(&T) -> Result<String, CsvError>,
) -> Result<Response, ApiError> {
    let analytics = admin(state, headers)?.clone();
    let format = format(params)?;
    let window = window(params)?;
    let shown = window.clone();
    let value = tokio::task::spawn_blocking(move || {
        analytics.flush();
        read(analytics.store().as_ref(), &window)
    })
    .await??;
    respond(format, name, &shown, value, csv)
}

/// Totals for a window: how much self-service happened and how well it went.
#[utoipa::path(get, path = "/api/v1/analytics/summary", tag = "admins", operation_id = "analytics_summary",
    security(("bearer" = [])),
    params(ReportWindow),
    responses(
        (status = 200, description = "Totals for the window: searches, answers, zero-result and no-click rates, votes, hand-offs. CSV: `figure,value` rows, maps flattened with dots (`handoff_reasons.low_confidence`), without the per-day counts (the overview has the daily series)", content((Summary = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn summary(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let abandoned_before = state.sessions.now_ms() - state.queue.abandon_after.as_millis() as i64;
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        Ok(reports::summary(store, window, abandoned_before)?)
    };
    report(
        &state,
        &headers,
        &params,
        "summary",
        read,
        dashboard::summary_csv,
    )
    .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueriesReport {
    kind: QueryReportKind,
    queries: Vec<QueryCount>,
}

/// The queries customers asked, by kind: the list a writer works from.
#[utoipa::path(get, path = "/api/v1/analytics/queries", tag = "admins", operation_id = "analytics_queries",
    security(("bearer" = [])),
    params(ReportWindow, ("kind" = Option<QueryReportKind>, Query, description = "Which list: top queries (default), with no result, with no click, or answered then voted not helpful"), ("limit" = Option<u64>, Query, minimum = 0, maximum = 1000000, example = 50, description = "Queries: default 50; values over 1000 are served as 1000")),
    responses(
        (status = 200, description = "Normalised queries with their counts. CSV: `query,count`", content((QueriesReport = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn queries(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let (kind, limit) = (params.kind, params.limit);
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        let kind = kind.unwrap_or(QueryReportKind::Top);
        let limit = count_param(limit, "limit", 50, 1000)?.max(1);
        let queries = reports::queries(store, window, kind, limit)?;
        Ok(QueriesReport { kind, queries })
    };
    report(&state, &headers, &params, "queries", read, |report| {
        csv_table::table(
            &["query", "count"],
            report
                .queries
                .iter()
                .map(|q| vec![Cell::from(q.query.as_str()), q.count.into()]),
        )
    })
    .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArticleReport {
    id: String,
    title: String,
    updated: Option<String>,
    #[serde(flatten)]
    stats: ArticleStats,
    click_through_rate: f64,
    needs_review: bool,
    review_reasons: Vec<&'static str>,
}

/// How each article performs: shown, clicked, voted on, answered with.
#[utoipa::path(get, path = "/api/v1/analytics/articles", tag = "admins", operation_id = "analytics_articles",
    security(("bearer" = [])),
    params(ReportWindow),
    responses(
        (status = 200, description = "Per article: impressions, clicks, votes, answers, hand-offs. CSV: one row per article, `review_reasons` separated by spaces", content((Vec<ArticleReport> = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn articles(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let engine = state.engine.clone();
    let review_after_days = state.review_after_days;
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        let stats = reports::article_stats(store, window)?;
        let articles = engine.all_articles(Visibility::IncludeInternal)?;
        Ok(article_reports(articles, &stats, review_after_days))
    };
    report(&state, &headers, &params, "articles", read, |reports| {
        csv_table::table(
            &[
                "id",
                "title",
                "updated",
                "impressions",
                "clicks",
                "helpful",
                "not_helpful",
                "resolved",
                "used_in_reply",
                "click_through_rate",
                "needs_review",
                "review_reasons",
            ],
            reports.iter().map(|r| {
                vec![
                    Cell::from(r.id.as_str()),
                    Cell::from(r.title.as_str()),
                    Cell::from(r.updated.clone()),
                    r.stats.impressions.into(),
                    r.stats.clicks.into(),
                    r.stats.helpful.into(),
                    r.stats.not_helpful.into(),
                    r.stats.resolved.into(),
                    r.stats.used_in_reply.into(),
                    r.click_through_rate.into(),
                    r.needs_review.into(),
                    Cell::from(r.review_reasons.join(" ")),
                ]
            }),
        )
    })
    .await
}

/// Articles needing work: every article the index holds (internal ones
/// too) against the store's counts. The API and the dashboard page share it.
pub(crate) fn needing_work(
    engine: &crate::search::SearchEngine,
    store: &dyn crate::store::Store,
    window: &Window,
    stale_after_days: u64,
    now_ms: i64,
) -> Result<Vec<ArticleWork>, ApiError> {
    let articles: Vec<ArticleInfo> = engine.all_articles(Visibility::IncludeInternal)?;
    Ok(dashboard::articles_needing_work(
        store,
        &articles,
        window,
        stale_after_days,
        now_ms,
    )?)
}

/// Joins counts with the articles; flags the ones a writer should look at.
pub fn article_reports(
    articles: Vec<ArticleInfo>,
    stats: &BTreeMap<String, ArticleStats>,
    review_after_days: u64,
) -> Vec<ArticleReport> {
    let today = time::OffsetDateTime::now_utc().date();
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let mut reports: Vec<ArticleReport> = articles
        .into_iter()
        .map(
            |ArticleInfo {
                 id, title, updated, ..
             }| {
                let stats = stats.get(&id).cloned().unwrap_or_default();
                let mut review_reasons = Vec::new();
                if stats.not_helpful >= 3 && stats.not_helpful > stats.helpful {
                    review_reasons.push("mostly_not_helpful");
                }
                if stats.impressions >= 20 && stats.clicks == 0 {
                    review_reasons.push("shown_but_never_clicked");
                }
                let stale = updated
                    .as_deref()
                    .and_then(|u| time::Date::parse(u.get(..10).unwrap_or(u), &format).ok())
                    .is_some_and(|date| (today - date).whole_days() > review_after_days as i64);
                if stale {
                    review_reasons.push("not_updated_recently");
                }
                ArticleReport {
                    click_through_rate: if stats.impressions == 0 {
                        0.0
                    } else {
                        stats.clicks as f64 / stats.impressions as f64
                    },
                    id,
                    title,
                    updated,
                    stats,
                    needs_review: !review_reasons.is_empty(),
                    review_reasons,
                }
            },
        )
        .collect();
    reports.sort_by(|a, b| {
        b.stats
            .impressions
            .cmp(&a.stats.impressions)
            .then(a.id.cmp(&b.id))
    });
    reports
}

/// The dashboard's overview: the summary for the window (exactly what
/// `/api/v1/analytics/summary` answers), the same-length period before it,
/// and each headline figure per UTC day for the trend charts.
#[utoipa::path(get, path = "/api/v1/analytics/overview", tag = "admins", operation_id = "analytics_overview",
    security(("bearer" = [])),
    params(ReportWindow),
    responses(
        (status = 200, description = "`current`, `previous` and `days`. CSV: one row per figure (`figure,current,previous`, then a column per day)", content((Overview = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let abandoned_before = state.sessions.now_ms() - state.queue.abandon_after.as_millis() as i64;
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        Ok(dashboard::overview(store, window, abandoned_before)?)
    };
    report(
        &state,
        &headers,
        &params,
        "overview",
        read,
        dashboard::overview_csv,
    )
    .await
}

/// Content gaps, grouped: queries with no result, no click, or a bot
/// answer voted not helpful or handed off, with typos and near-duplicates
/// folded together; the list a writer works from.
#[utoipa::path(get, path = "/api/v1/analytics/gaps", tag = "admins", operation_id = "analytics_gaps",
    security(("bearer" = [])),
    params(ReportWindow, ("limit" = Option<u64>, Query, minimum = 0, maximum = 1000000, example = 50, description = "Groups: default 50; values over 1000 are served as 1000")),
    responses(
        (status = 200, description = "Groups, largest first. CSV: one row per group, `trend` as daily counts separated by spaces, `examples` as `wording (count)` separated by ` | `", content((Vec<GapGroup> = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn gaps(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let limit = params.limit;
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        let limit = count_param(limit, "limit", 50, 1000)?.max(1);
        Ok(dashboard::content_gaps(store, window, limit)?)
    };
    report(&state, &headers, &params, "gaps", read, |g| {
        dashboard::gaps_csv(g)
    })
    .await
}

/// Hand-offs to a person created in the window: by hour of day and weekday
/// (UTC), reasons, waiting times and outcomes.
#[utoipa::path(get, path = "/api/v1/analytics/handoffs", tag = "admins", operation_id = "analytics_handoffs",
    security(("bearer" = [])),
    params(ReportWindow),
    responses(
        (status = 200, description = "The hand-off report. CSV: `table,key,count` rows for the tables `hour`, `weekday`, `reason`, `wait` and `outcome`", content((HandoffReport = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn handoffs(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let abandoned_before = state.sessions.now_ms() - state.queue.abandon_after.as_millis() as i64;
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        Ok(dashboard::handoff_report(store, window, abandoned_before)?)
    };
    report(
        &state,
        &headers,
        &params,
        "handoffs",
        read,
        dashboard::handoffs_csv,
    )
    .await
}

/// Articles a writer should look at: shown before hand-offs, voted not
/// helpful, not updated for `[analytics] review_after_days` but still shown,
/// or never shown; each with its raw file path.
#[utoipa::path(get, path = "/api/v1/analytics/articles/needing-work", tag = "admins", operation_id = "analytics_articles_needing_work",
    security(("bearer" = [])),
    params(ReportWindow),
    responses(
        (status = 200, description = "Articles, most needing work first. CSV: one row per article, `reasons` separated by spaces", content((Vec<ArticleWork> = "application/json"), (String = "text/csv"))),
        ReportErrors,
    ))]
pub async fn articles_needing_work(
    State(state): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<WindowParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let engine = state.engine.clone();
    let stale_after_days = state.review_after_days;
    let read = move |store: &dyn crate::store::Store, window: &Window| {
        needing_work(&engine, store, window, stale_after_days, now_ms())
    };
    report(
        &state,
        &headers,
        &params,
        "articles-needing-work",
        read,
        |w| dashboard::articles_csv(w),
    )
    .await
}
