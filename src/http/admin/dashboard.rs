//! The dashboard's four pages: overview, content gaps, articles needing
//! work, hand-offs. Each reads the same reports as the JSON API
//! (`analytics::dashboard`), renders them with the shell in [`super::pages`]
//! and the charts in [`super::charts`], and answers `?format=csv` with its
//! main table.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::charts::{self, Series, Unit};
use super::pages::{self, Nav, Range};
use super::{page_response, page_with_status, require_session};
use crate::analytics::csv::CsvError;
use crate::analytics::dashboard::{self, ArticleWork, GapGroup, HandoffReport, Overview};
use crate::analytics::reports::Window;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::Store;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Gap groups a page lists (the CSV has the same rows).
const GAP_ROWS: usize = 50;
/// Articles a page lists; the CSV has them all.
const ARTICLE_ROWS: usize = 100;

/// A report that could not be read: logged, and a page that says so
/// (the dashboard answers in pages, not in the API's JSON errors).
fn failed(error: ApiError) -> Response {
    tracing::error!(%error, "a dashboard report failed");
    page_with_status(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message(
            "This report could not be read",
            "The server logged why. Try again in a moment.",
        ),
    )
}

/// What a page request asked for: the period, and HTML or CSV.
struct Ask {
    range: Range,
    csv: bool,
}

impl Ask {
    fn from(query: Option<&str>) -> Ask {
        let csv = query.is_some_and(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .any(|(name, value)| name == "format" && value == "csv")
        });
        Ask {
            range: Range::from_query(query),
            csv,
        }
    }

    /// The last `days` days up to now (the server's clock).
    fn window(&self, now_ms: i64) -> Window {
        Window {
            from_ms: now_ms - i64::from(self.range.days()) * DAY_MS,
            to_ms: now_ms,
            channel: None,
        }
    }

    fn csv_link(&self, page: Nav) -> String {
        format!("{}?days={}&format=csv", page.path(), self.range.days())
    }
}

/// A report page end to end, the same for all four: the session (else the
/// sign-in page), the period, `read` over the analytics store off the async
/// runtime (it gets the window and the server's clock), then the report's
/// CSV (`?format=csv`, the API's table) or its page. A page that says why
/// stands in when analytics are off or the read failed.
async fn serve<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
    page: Nav,
    read: impl FnOnce(&dyn Store, &Window, i64) -> Result<T, ApiError> + Send + 'static,
    table: impl FnOnce(&T) -> Result<String, CsvError>,
    body: impl FnOnce(&T, &Ask) -> Markup,
) -> Response {
    let session = match require_session(state, headers).await {
        Ok(session) => session,
        Err(refused) => return refused.into_response(),
    };
    let ask = Ask::from(query);
    let Some(analytics) = state.analytics.clone() else {
        return page_response(pages::layout(
            page.label(),
            page,
            &session,
            Some(ask.range),
            html! {
                p.empty { "Analytics are turned off on this server, so there is nothing to show. "
                  "Turn them on with " code { "analytics = true" } " (or "
                  code { "RAPPORT_ANALYTICS=on" } ")." }
            },
        ));
    };
    let now = state.sessions.now_ms();
    let window = ask.window(now);
    let found = super::super::blocking(move || {
        analytics.flush();
        read(analytics.store().as_ref(), &window, now)
    })
    .await
    .and_then(|result| result);
    let report = match found {
        Ok(report) => report,
        Err(error) => return failed(error),
    };
    if ask.csv {
        return csv(page, &ask, table(&report));
    }
    page_response(pages::layout(
        page.label(),
        page,
        &session,
        Some(ask.range),
        body(&report, &ask),
    ))
}

pub(crate) async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let abandon_after = state.queue.abandon_after.as_millis() as i64;
    let read = move |store: &dyn Store, window: &Window, now: i64| {
        Ok(dashboard::overview(store, window, now - abandon_after)?)
    };
    let (table, body) = (dashboard::overview_csv, overview_body);
    serve(
        &state,
        &headers,
        query.as_deref(),
        Nav::Overview,
        read,
        table,
        body,
    )
    .await
}

/// How the page shows one of the overview's figures (the figures, their
/// order and values come from [`dashboard::figures`], as the CSV's and the
/// CLI's do): its label, unit, and whether a rise is good news.
fn presentation(figure: &dashboard::Figure) -> (&'static str, Unit, bool) {
    match figure.name {
        "searches" => ("Searches", Unit::Count, true),
        "sessions" => ("Sessions", Unit::Count, true),
        "self_service_rate" => ("Self-service rate", Unit::Percent, true),
        "handoffs" => ("Hand-offs", Unit::Count, false),
        "csat_satisfied_rate" => ("CSAT (4–5 of 5)", Unit::Percent, true),
        "zero_result_rate" => ("Zero-result rate", Unit::Percent, false),
        "answer_rate" => ("Answer rate (bot)", Unit::Percent, true),
        "median_wait_seconds" => ("Median hand-off wait", Unit::Seconds, false),
        // A figure added to the report later shows under its own name.
        other if figure.is_rate() => (other, Unit::Percent, true),
        other => (other, Unit::Count, true),
    }
}

fn overview_body(overview: &Overview, ask: &Ask) -> Markup {
    let dates: Vec<String> = overview.days.iter().map(|d| d.date.clone()).collect();
    let reasons: BTreeMap<&String, (u64, u64)> = overview
        .current
        .handoff_reasons
        .keys()
        .chain(overview.previous.handoff_reasons.keys())
        .map(|r| {
            (
                r,
                (
                    overview
                        .current
                        .handoff_reasons
                        .get(r)
                        .copied()
                        .unwrap_or(0),
                    overview
                        .previous
                        .handoff_reasons
                        .get(r)
                        .copied()
                        .unwrap_or(0),
                ),
            )
        })
        .collect();
    html! {
        p.lede {
            "The last " (ask.range.days()) " days, with the " (ask.range.days())
            " days before them beside each figure. "
            a.csv href=(ask.csv_link(Nav::Overview)) download { "Download CSV" }
        }
        div.cards {
            @for figure in dashboard::figures(overview) {
                @let (label, unit, higher_is_better) = presentation(&figure);
                @let series = Series { label: "This period", values: figure.series.clone() };
                section.card {
                    h2 { (label) }
                    p.value { (unit.format(figure.current)) }
                    p.previous {
                        "Previous period: " (unit.format(figure.previous))
                        @if let Some((text, good)) = change(figure.current, figure.previous, unit, higher_is_better) {
                            " " span class=(if good { "change good" } else { "change bad" }) { (text) }
                        }
                    }
                    (charts::trend(label, unit, &dates, &series, None))
                }
            }
        }
        section.panel {
            h2 { "Hand-offs by reason" }
            @if reasons.is_empty() {
                p.empty { "No hand-offs in this period or the one before." }
            } @else {
                table {
                    thead { tr { th scope="col" { "Reason" } th scope="col".num { "This period" } th scope="col".num { "Previous period" } } }
                    tbody {
                        @for (reason, (now, before)) in &reasons {
                            tr { th scope="row" { (reason.replace('_', " ")) } td.num { (now) } td.num { (before) } }
                        }
                    }
                }
            }
        }
    }
}

/// "+12 %" or "−3.1 pts", and whether the move is good news.
fn change(
    current: Option<f64>,
    previous: Option<f64>,
    unit: Unit,
    higher_is_better: bool,
) -> Option<(String, bool)> {
    let (now, before) = (current?, previous?);
    let delta = now - before;
    if delta == 0.0 {
        return None;
    }
    let good = (delta > 0.0) == higher_is_better;
    let sign = if delta > 0.0 { "+" } else { "−" };
    let text = match unit {
        Unit::Percent => format!("{sign}{:.1} pts", delta.abs() * 100.0),
        _ if before > 0.0 => format!("{sign}{:.0} %", delta.abs() / before * 100.0),
        _ => return None,
    };
    Some((text, good))
}

pub(crate) async fn gaps(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let read = |store: &dyn Store, window: &Window, _| {
        let dates: Vec<String> = dashboard::days(window)
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        Ok((dashboard::content_gaps(store, window, GAP_ROWS)?, dates))
    };
    let table = |(groups, _): &(Vec<GapGroup>, Vec<String>)| dashboard::gaps_csv(groups);
    let body =
        |(groups, dates): &(Vec<GapGroup>, Vec<String>), ask: &Ask| gaps_body(groups, dates, ask);
    serve(
        &state,
        &headers,
        query.as_deref(),
        Nav::Gaps,
        read,
        table,
        body,
    )
    .await
}

fn gaps_body(groups: &[GapGroup], dates: &[String], ask: &Ask) -> Markup {
    html! {
        p.lede {
            "What customers looked for and did not find: searches with no result or no click, "
            "and bot answers voted not helpful or handed off to a person. Wordings that differ "
            "only by typos, case or small words are counted together. "
            a.csv href=(ask.csv_link(Nav::Gaps)) download { "Download CSV" }
        }
        @if groups.is_empty() {
            p.empty { "No content gaps in this period." }
        } @else {
            div.table-scroll {
                table.gaps {
                    thead {
                        tr {
                            th scope="col" { "What customers asked" }
                            th scope="col".num { "Times" }
                            th scope="col".num { "No result" }
                            th scope="col".num { "No click" }
                            th scope="col".num { "Not helpful / handed off" }
                            th scope="col" { "Trend" }
                        }
                    }
                    tbody {
                        @for group in groups {
                            tr {
                                th scope="row" {
                                    (group.query)
                                    @if group.examples.len() > 1 {
                                        ul.wordings {
                                            @for (wording, n) in &group.examples {
                                                li { q { (wording) } " × " (n) }
                                            }
                                        }
                                    }
                                }
                                td.num { (group.count) }
                                td.num { (group.no_results) }
                                td.num { (group.no_click) }
                                td.num { (group.not_helpful_or_handoff) }
                                td.spark {
                                    (charts::trend(
                                        &format!("{} per day", group.query),
                                        Unit::Count,
                                        dates,
                                        &Series { label: "Asked", values: group.trend.iter().map(|n| Some(*n as f64)).collect() },
                                        None,
                                    ))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn articles(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let engine = state.engine.clone();
    let stale_after_days = state.review_after_days;
    let read = move |store: &dyn Store, window: &Window, now: i64| {
        crate::http::analytics::needing_work(&engine, store, window, stale_after_days, now)
    };
    let table = |work: &Vec<ArticleWork>| dashboard::articles_csv(work);
    let body = |work: &Vec<ArticleWork>, ask: &Ask| articles_body(work, ask, stale_after_days);
    serve(
        &state,
        &headers,
        query.as_deref(),
        Nav::Articles,
        read,
        table,
        body,
    )
    .await
}

fn reason_label(reason: &str) -> &str {
    match reason {
        "shown_before_handoff" => "shown before hand-offs",
        "not_helpful" => "voted not helpful",
        "stale" => "not updated recently",
        "never_shown" => "never shown",
        other => other,
    }
}

fn articles_body(work: &[ArticleWork], ask: &Ask, stale_after_days: u64) -> Markup {
    let shown = work.len().min(ARTICLE_ROWS);
    html! {
        p.lede {
            "Articles shown to customers who then asked for a person, voted not helpful, "
            "not updated for " (stale_after_days) " days but still read, or never shown. "
            a.csv href=(ask.csv_link(Nav::Articles)) download { "Download CSV" }
        }
        @if work.is_empty() {
            p.empty { "Nothing needs work in this period." }
        } @else {
            @if work.len() > shown {
                p { "The first " (shown) " of " (work.len()) "; the CSV has them all." }
            }
            div.table-scroll {
                table.articles {
                    thead {
                        tr {
                            th scope="col" { "Article" }
                            th scope="col" { "Why" }
                            th scope="col".num { "Before hand-off" }
                            th scope="col".num { "Not helpful" }
                            th scope="col".num { "Shown" }
                            th scope="col".num { "Clicks" }
                            th scope="col" { "Updated" }
                        }
                    }
                    tbody {
                        @for article in &work[..shown] {
                            tr {
                                th scope="row" {
                                    a href=(crate::search::article_url(&article.id, None)) { (article.title) }
                                    br;
                                    code.path { (article.path) }
                                }
                                td {
                                    @for reason in &article.reasons {
                                        span.pill.warn { (reason_label(reason)) }
                                    }
                                }
                                td.num { (article.shown_before_handoff) }
                                td.num { (article.not_helpful) }
                                td.num { (article.impressions) }
                                td.num { (article.clicks) }
                                td { (article.updated.as_deref().unwrap_or("–")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn handoffs(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let abandon_after = state.queue.abandon_after.as_millis() as i64;
    let read = move |store: &dyn Store, window: &Window, now: i64| {
        Ok(dashboard::handoff_report(
            store,
            window,
            now - abandon_after,
        )?)
    };
    let (table, body) = (dashboard::handoffs_csv, handoffs_body);
    serve(
        &state,
        &headers,
        query.as_deref(),
        Nav::Handoffs,
        read,
        table,
        body,
    )
    .await
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn outcomes(report: &HandoffReport) -> [(&'static str, u64); 7] {
    let o = &report.outcomes;
    [
        ("solved", o.solved),
        ("not solved", o.not_solved),
        ("duplicate", o.duplicate),
        ("spam", o.spam),
        ("claimed, open", o.claimed),
        ("waiting", o.waiting),
        ("abandoned", o.abandoned),
    ]
}

fn handoffs_body(report: &HandoffReport, ask: &Ask) -> Markup {
    let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
    let weekdays: Vec<String> = WEEKDAYS.iter().map(|d| d.to_string()).collect();
    let count = |values: &[u64]| values.iter().map(|v| *v as f64).collect::<Vec<f64>>();
    let waits: Vec<String> = report
        .wait_histogram
        .iter()
        .map(|b| b.label.to_string())
        .collect();
    let wait_counts: Vec<u64> = report.wait_histogram.iter().map(|b| b.count).collect();
    html! {
        p.lede {
            (report.total) " hand-offs to a person in the last " (ask.range.days()) " days (times in UTC). "
            a.csv href=(ask.csv_link(Nav::Handoffs)) download { "Download CSV" }
        }
        div.panels {
            section.panel.wide {
                h2 { "By hour of day" }
                (charts::bars("Hand-offs by hour of day (UTC)", Unit::Count, &hours, &count(&report.by_hour)))
            }
            section.panel {
                h2 { "By weekday" }
                (charts::bars("Hand-offs by weekday", Unit::Count, &weekdays, &count(&report.by_weekday)))
            }
            section.panel {
                h2 { "Waiting for a person" }
                (charts::bars("Wait from request to claim", Unit::Count, &waits, &count(&wait_counts)))
            }
            section.panel {
                h2 { "Reasons" }
                @if report.reasons.is_empty() {
                    p.empty { "No hand-offs in this period." }
                } @else {
                    table {
                        thead { tr { th scope="col" { "Reason" } th scope="col".num { "Hand-offs" } } }
                        tbody {
                            @for (reason, n) in &report.reasons {
                                tr { th scope="row" { (reason.replace('_', " ")) } td.num { (n) } }
                            }
                        }
                    }
                }
            }
            section.panel {
                h2 { "Outcome" }
                table {
                    thead { tr { th scope="col" { "Outcome" } th scope="col".num { "Hand-offs" } } }
                    tbody {
                        @for (outcome, n) in outcomes(report) {
                            tr { th scope="row" { (outcome) } td.num { (n) } }
                        }
                    }
                }
            }
        }
    }
}

/// A page's table as a CSV download: the API's CSV of the same report
/// (`analytics::dashboard::*_csv`, formula-like text defused).
fn csv(page: Nav, ask: &Ask, table: Result<String, CsvError>) -> Response {
    let name = match page {
        Nav::Overview => "overview",
        Nav::Gaps => "content-gaps",
        Nav::Articles => "articles-needing-work",
        Nav::Handoffs => "handoffs",
    };
    match table {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!(
                        "attachment; filename=\"rapport-{name}-last-{}-days.csv\"",
                        ask.range.days()
                    ),
                ),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            body,
        )
            .into_response(),
        Err(error) => failed(ApiError::Internal(error.to_string())),
    }
}
