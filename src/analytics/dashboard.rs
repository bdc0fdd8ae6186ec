//! The data behind the support lead's dashboard (issue 18): the overview
//! with its previous period and daily series, content gaps grouped by what
//! customers meant, articles needing work, and the hand-off report. Pure
//! functions over a [`Store`], so the HTTP endpoints, their CSV downloads and
//! `rapport report` show the same figures.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::csv::{self, Cell, CsvError};
use super::reports::{self, Summary, Window};
use crate::store::{HandoffStatus, Resolution, Store, StoreError};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Daily series longer than this keep only their last days: a window from
/// 1970 would otherwise run tens of thousands of summaries.
pub const MAX_SERIES_DAYS: usize = 366;

/// Wordings grouped for the content gaps, most frequent first: folding
/// compares each wording with every group, so an unusual long tail is cut.
const MAX_GAP_WORDINGS: usize = 5000;

/// Example wordings kept per gap group.
const GAP_EXAMPLES: usize = 5;

/// The overview: the window's figures, the same-length period just before
/// it, and each figure per UTC day for the trend charts.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Overview {
    /// Exactly what `/api/v1/analytics/summary` answers for the window.
    pub current: Summary,
    /// The same-length window ending where this one starts.
    pub previous: Summary,
    /// One entry per UTC day the window touches, oldest first.
    pub days: Vec<DayFigures>,
}

/// One day's figures: each is the summary's over that day (clipped to the window).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DayFigures {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub searches: u64,
    pub sessions: u64,
    pub self_service_rate: Option<f64>,
    /// Hand-offs to a person created that day.
    pub handoffs: u64,
    pub csat_satisfied_rate: Option<f64>,
    pub zero_result_rate: f64,
    /// Questions to the bot that day.
    pub bot_questions: u64,
    /// Share of bot questions answered without recommending a hand-off.
    pub answer_rate: f64,
    pub median_wait_seconds: Option<f64>,
}

/// The UTC days a window touches, each as (date, the window clipped to it);
/// at most the last [`MAX_SERIES_DAYS`].
pub fn days(window: &Window) -> Vec<(String, Window)> {
    if window.to_ms <= window.from_ms {
        return Vec::new();
    }
    let first = window.from_ms.div_euclid(DAY_MS);
    let last = (window.to_ms - 1).div_euclid(DAY_MS);
    let first = first.max(last - MAX_SERIES_DAYS as i64 + 1);
    (first..=last)
        .map(|day| {
            (
                date_of_day(day),
                Window {
                    from_ms: window.from_ms.max(day * DAY_MS),
                    to_ms: window.to_ms.min((day + 1) * DAY_MS),
                    channel: window.channel.clone(),
                },
            )
        })
        .collect()
}

/// `YYYY-MM-DD` of a day number (days since the Unix epoch, UTC).
fn date_of_day(day: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(day * 24 * 3600)
        .ok()
        .and_then(|t| t.date().format(&format).ok())
        .unwrap_or_else(|| day.to_string())
}

/// The overview for a window. Each day is [`reports::summary`] over that
/// day, so the series can never disagree with the totals' definitions.
pub fn overview(
    store: &dyn Store,
    window: &Window,
    abandoned_before_ms: i64,
) -> Result<Overview, StoreError> {
    let current = reports::summary(store, window, abandoned_before_ms)?;
    let length = window.to_ms - window.from_ms;
    let previous_window = Window {
        from_ms: window.from_ms - length,
        to_ms: window.from_ms,
        channel: window.channel.clone(),
    };
    let previous = reports::summary(store, &previous_window, abandoned_before_ms)?;
    let days = days(window)
        .into_iter()
        .map(|(date, day)| {
            let s = reports::summary(store, &day, abandoned_before_ms)?;
            Ok(DayFigures {
                date,
                searches: s.searches,
                sessions: s.sessions,
                self_service_rate: s.self_service_rate,
                handoffs: s.handoffs.created,
                csat_satisfied_rate: s.csat.satisfied_rate,
                zero_result_rate: s.zero_result_rate,
                bot_questions: s.bot_questions,
                answer_rate: s.bot_answer_rate,
                median_wait_seconds: s.handoff_wait_seconds.median,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Overview {
        current,
        previous,
        days,
    })
}

/// Queries customers meant the same thing by, that found nothing useful.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct GapGroup {
    /// The group's most frequent wording.
    pub query: String,
    /// Queries in the group (a query may count under several kinds).
    pub count: u64,
    pub no_results: u64,
    pub no_click: u64,
    pub not_helpful_or_handoff: u64,
    /// Queries per UTC day of the window, oldest first (as the overview's `days`).
    pub trend: Vec<u64>,
    /// Up to five wordings customers used, most frequent first: `[wording, count]`.
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub examples: Vec<(String, u64)>,
}

/// Words that change nothing about what a customer is looking for. "not"
/// and "no" are not among them: "card not working" is its own question.
const STOPWORDS: &[&str] = &[
    "a", "about", "am", "an", "and", "are", "at", "be", "can", "could", "do", "does", "for",
    "from", "get", "how", "i", "im", "in", "is", "it", "its", "me", "my", "of", "on", "or", "our",
    "please", "s", "should", "t", "that", "the", "this", "to", "we", "what", "when", "where",
    "which", "why", "will", "with", "would", "you", "your",
];

/// The words of a query, lowercased and split on anything that is not a
/// letter or digit (any script), without stopwords; a query of stopwords
/// only keeps them all, so "how do i" still groups with itself.
pub fn normalise(query: &str) -> Vec<String> {
    let words: Vec<String> = query
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let content: Vec<String> = words
        .iter()
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .cloned()
        .collect();
    if content.is_empty() { words } else { content }
}

/// Whether two normalised queries mean the same: as many words, each pair
/// within one typo (Damerau-Levenshtein 1; 2 when both words have 8 or more
/// letters). Words under 4 letters and words with digits must be equal:
/// "pin" is not "pen", and error 401 is not error 404. Stopwords were
/// already dropped, so "reset the password" folds with "reset password".
pub fn folds(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| words_fold(x, y))
}

fn words_fold(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    let (la, lb) = (a.chars().count(), b.chars().count());
    let exact_only = |w: &str, len: usize| len < 4 || w.chars().any(|c| c.is_numeric());
    if exact_only(a, la) || exact_only(b, lb) {
        return false;
    }
    let allowed = if la >= 8 && lb >= 8 { 2 } else { 1 };
    la.abs_diff(lb) <= allowed && strsim::damerau_levenshtein(a, b) <= allowed
}

/// Content gaps, grouped: wordings are folded into the group of the most
/// frequent wording they fold with ([`folds`]), then groups sorted by count.
pub fn content_gaps(
    store: &dyn Store,
    window: &Window,
    limit: usize,
) -> Result<Vec<GapGroup>, StoreError> {
    let days = days(window);
    let first_day = days
        .first()
        .map_or(0, |(_, w)| w.from_ms.div_euclid(DAY_MS));
    #[derive(Default)]
    struct Wording {
        count: u64,
        no_results: u64,
        no_click: u64,
        bad_answer: u64,
        by_day: BTreeMap<i64, u64>,
    }
    let mut wordings: HashMap<String, Wording> = HashMap::new();
    for row in store.gap_counts(window)? {
        let w = wordings.entry(row.query).or_default();
        w.count += row.count;
        w.no_results += row.no_results;
        w.no_click += row.no_click;
        w.bad_answer += row.not_helpful_or_handoff;
        *w.by_day.entry(row.day).or_default() += row.count;
    }
    let mut wordings: Vec<(String, Wording)> = wordings.into_iter().collect();
    wordings.sort_by(|a, b| b.1.count.cmp(&a.1.count).then_with(|| a.0.cmp(&b.0)));
    wordings.truncate(MAX_GAP_WORDINGS);

    // Groups by word count, each with its key (the first wording's words).
    let mut groups: Vec<GapGroup> = Vec::new();
    let mut keys: HashMap<usize, Vec<(Vec<String>, usize)>> = HashMap::new();
    for (text, w) in wordings {
        let words = normalise(&text);
        let candidates = keys.entry(words.len()).or_default();
        let index = match candidates.iter().find(|(key, _)| folds(key, &words)) {
            Some((_, index)) => *index,
            None => {
                candidates.push((words, groups.len()));
                groups.push(GapGroup {
                    query: text.clone(),
                    count: 0,
                    no_results: 0,
                    no_click: 0,
                    not_helpful_or_handoff: 0,
                    trend: vec![0; days.len()],
                    examples: Vec::new(),
                });
                groups.len() - 1
            }
        };
        let group = &mut groups[index];
        group.count += w.count;
        group.no_results += w.no_results;
        group.no_click += w.no_click;
        group.not_helpful_or_handoff += w.bad_answer;
        for (day, n) in w.by_day {
            if let Some(slot) = usize::try_from(day - first_day)
                .ok()
                .and_then(|i| group.trend.get_mut(i))
            {
                *slot += n;
            }
        }
        // Wordings arrive most frequent first, so the first five are the top five.
        if group.examples.len() < GAP_EXAMPLES {
            group.examples.push((text, w.count));
        }
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.query.cmp(&b.query)));
    groups.truncate(limit);
    Ok(groups)
}

/// An article as the engine knows it, for the articles report.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleInfo {
    pub id: String,
    pub title: String,
    /// Relative to the articles folder, `/`-separated: the file to edit.
    pub path: String,
    /// Front matter `updated`, `YYYY-MM-DD…`.
    pub updated: Option<String>,
}

/// An article that needs a writer's attention, and why.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ArticleWork {
    pub id: String,
    pub title: String,
    /// The raw file, relative to the articles folder.
    pub path: String,
    pub updated: Option<String>,
    /// Hand-offs whose session had been shown this article first.
    pub shown_before_handoff: u64,
    pub not_helpful: u64,
    pub helpful: u64,
    pub impressions: u64,
    pub clicks: u64,
    /// Not updated for longer than the review period, and still shown.
    pub stale: bool,
    /// Not shown once in the window.
    pub never_shown: bool,
    /// `shown_before_handoff`, `not_helpful`, `stale`, `never_shown`.
    pub reasons: Vec<&'static str>,
}

/// Articles shown before hand-offs, voted not helpful, stale but still
/// read, or never shown; the ones with the most hand-offs and not-helpful
/// votes first, then stale ones by traffic, then those never shown.
pub fn articles_needing_work(
    store: &dyn Store,
    articles: &[ArticleInfo],
    window: &Window,
    stale_after_days: u64,
    now_ms: i64,
) -> Result<Vec<ArticleWork>, StoreError> {
    let stats = store.article_stats(window)?;
    let before_handoff = store.shown_before_handoff(window)?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let today = now_ms.div_euclid(DAY_MS);
    let mut work: Vec<ArticleWork> = articles
        .iter()
        .filter_map(|article| {
            let s = stats.get(&article.id).cloned().unwrap_or_default();
            let shown_before_handoff = before_handoff.get(&article.id).copied().unwrap_or(0);
            let age_days = article
                .updated
                .as_deref()
                .and_then(|u| time::Date::parse(u.get(..10).unwrap_or(u), &format).ok())
                .map(|date| today - date.midnight().assume_utc().unix_timestamp() / (24 * 3600));
            let stale = s.impressions > 0 && age_days.is_some_and(|d| d > stale_after_days as i64);
            let never_shown = s.impressions == 0;
            let mut reasons = Vec::new();
            if shown_before_handoff > 0 {
                reasons.push("shown_before_handoff");
            }
            if s.not_helpful > 0 {
                reasons.push("not_helpful");
            }
            if stale {
                reasons.push("stale");
            }
            if never_shown {
                reasons.push("never_shown");
            }
            (!reasons.is_empty()).then(|| ArticleWork {
                id: article.id.clone(),
                title: article.title.clone(),
                path: article.path.clone(),
                updated: article.updated.clone(),
                shown_before_handoff,
                not_helpful: s.not_helpful,
                helpful: s.helpful,
                impressions: s.impressions,
                clicks: s.clicks,
                stale,
                never_shown,
                reasons,
            })
        })
        .collect();
    work.sort_by(|a, b| {
        (b.shown_before_handoff + b.not_helpful)
            .cmp(&(a.shown_before_handoff + a.not_helpful))
            .then(b.stale.cmp(&a.stale))
            .then(b.impressions.cmp(&a.impressions))
            .then(a.id.cmp(&b.id))
    });
    Ok(work)
}

/// Hand-offs to a person created in a window: when, why, how long they
/// waited, and how they ended.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HandoffReport {
    pub total: u64,
    /// Created per hour of the day, UTC (index 0 is 00:00–00:59).
    pub by_hour: [u64; 24],
    /// Created per weekday, UTC, Monday first.
    pub by_weekday: [u64; 7],
    /// The reasons the session had when the customer asked (`none`: asked
    /// without the bot recommending it). A hand-off may have several.
    pub reasons: BTreeMap<String, u64>,
    /// Request to claim, for the claimed ones.
    pub wait_histogram: Vec<Bucket>,
    pub outcomes: Outcomes,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Bucket {
    pub label: &'static str,
    /// Waits shorter than this fall in the bucket (the ones before it
    /// aside); `null` for the last, open-ended one.
    pub upper_seconds: Option<u64>,
    pub count: u64,
}

/// Where each hand-off stands; every hand-off counts once. Unlike the
/// summary's `abandoned`, one closed without a claim counts under its
/// resolution here (a spam closed unclaimed is spam).
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Outcomes {
    pub solved: u64,
    pub not_solved: u64,
    pub duplicate: u64,
    pub spam: u64,
    /// Still waiting, longer than `[handoff] abandon_after_minutes`.
    pub abandoned: u64,
    /// Still waiting, not yet abandoned.
    pub waiting: u64,
    /// Claimed by an agent, not closed yet.
    pub claimed: u64,
}

const WAIT_BUCKETS: [(&str, Option<u64>); 6] = [
    ("< 1 min", Some(60)),
    ("1–5 min", Some(5 * 60)),
    ("5–15 min", Some(15 * 60)),
    ("15–60 min", Some(3600)),
    ("1–4 h", Some(4 * 3600)),
    ("> 4 h", None),
];

pub fn handoff_report(
    store: &dyn Store,
    window: &Window,
    abandoned_before_ms: i64,
) -> Result<HandoffReport, StoreError> {
    let mut report = HandoffReport {
        wait_histogram: WAIT_BUCKETS
            .iter()
            .map(|(label, upper_seconds)| Bucket {
                label,
                upper_seconds: *upper_seconds,
                count: 0,
            })
            .collect(),
        ..HandoffReport::default()
    };
    for record in store.handoffs_created(window.from_ms, window.to_ms)? {
        report.total += 1;
        if let Ok(at) =
            time::OffsetDateTime::from_unix_timestamp(record.created_ms.div_euclid(1000))
        {
            report.by_hour[usize::from(at.hour())] += 1;
            report.by_weekday[usize::from(at.weekday().number_days_from_monday())] += 1;
        }
        if record.reasons.is_empty() {
            *report.reasons.entry("none".into()).or_default() += 1;
        }
        for reason in &record.reasons {
            *report.reasons.entry(reason.clone()).or_default() += 1;
        }
        if let Some(claimed) = record.claimed_ms {
            let seconds = u64::try_from((claimed - record.created_ms).max(0) / 1000).unwrap_or(0);
            let bucket = report
                .wait_histogram
                .iter_mut()
                .find(|b| b.upper_seconds.is_none_or(|upper| seconds < upper));
            if let Some(bucket) = bucket {
                bucket.count += 1;
            }
        }
        let outcomes = &mut report.outcomes;
        match (record.status, record.resolution) {
            (HandoffStatus::Closed, Some(Resolution::Solved)) => outcomes.solved += 1,
            (HandoffStatus::Closed, Some(Resolution::NotSolved)) => outcomes.not_solved += 1,
            (HandoffStatus::Closed, Some(Resolution::Duplicate)) => outcomes.duplicate += 1,
            (HandoffStatus::Closed, Some(Resolution::Spam)) => outcomes.spam += 1,
            // Closed without a resolution cannot be written; count it as unsolved.
            (HandoffStatus::Closed, None) => outcomes.not_solved += 1,
            (HandoffStatus::Claimed, _) => outcomes.claimed += 1,
            (HandoffStatus::Waiting, _) if record.created_ms < abandoned_before_ms => {
                outcomes.abandoned += 1
            }
            (HandoffStatus::Waiting, _) => outcomes.waiting += 1,
        }
    }
    Ok(report)
}

/// One overview figure across the periods: the rows of the CLI's table and
/// of the overview's CSV. Counts and rates alike as `f64`; `None` where
/// there was nothing to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub name: &'static str,
    pub current: Option<f64>,
    pub previous: Option<f64>,
    /// Per day, as [`Overview::days`].
    pub series: Vec<Option<f64>>,
}

impl Figure {
    /// A rate (shown as a percentage) rather than a count.
    pub fn is_rate(&self) -> bool {
        self.name.ends_with("_rate")
    }
}

/// The overview's figures in a fixed order.
pub fn figures(overview: &Overview) -> Vec<Figure> {
    type Of = (
        &'static str,
        fn(&Summary) -> Option<f64>,
        fn(&DayFigures) -> Option<f64>,
    );
    const FIGURES: [Of; 8] = [
        (
            "searches",
            |s| Some(s.searches as f64),
            |d| Some(d.searches as f64),
        ),
        (
            "sessions",
            |s| Some(s.sessions as f64),
            |d| Some(d.sessions as f64),
        ),
        (
            "self_service_rate",
            |s| s.self_service_rate,
            |d| d.self_service_rate,
        ),
        (
            "handoffs",
            |s| Some(s.handoffs.created as f64),
            |d| Some(d.handoffs as f64),
        ),
        (
            "csat_satisfied_rate",
            |s| s.csat.satisfied_rate,
            |d| d.csat_satisfied_rate,
        ),
        // Rates of nothing are no figure: empty, not 0 %.
        (
            "zero_result_rate",
            |s| (s.searches > 0).then_some(s.zero_result_rate),
            |d| (d.searches > 0).then_some(d.zero_result_rate),
        ),
        (
            "answer_rate",
            |s| (s.bot_questions > 0).then_some(s.bot_answer_rate),
            |d| (d.bot_questions > 0).then_some(d.answer_rate),
        ),
        (
            "median_wait_seconds",
            |s| s.handoff_wait_seconds.median,
            |d| d.median_wait_seconds,
        ),
    ];
    FIGURES
        .iter()
        .map(|(name, of_summary, of_day)| Figure {
            name,
            current: of_summary(&overview.current),
            previous: of_summary(&overview.previous),
            series: overview.days.iter().map(of_day).collect(),
        })
        .collect()
}

/// The overview as CSV: `figure,current,previous`, then a column per day.
pub fn overview_csv(overview: &Overview) -> Result<String, CsvError> {
    let mut header = vec!["figure", "current", "previous"];
    header.extend(overview.days.iter().map(|d| d.date.as_str()));
    let rows = figures(overview).into_iter().map(|f| {
        let mut row = vec![Cell::from(f.name), f.current.into(), f.previous.into()];
        row.extend(f.series.into_iter().map(Cell::from));
        row
    });
    csv::table(&header, rows)
}

/// Content gaps as CSV; `trend` is the daily counts separated by spaces,
/// `examples` the wordings as `wording (count)` separated by ` | `.
pub fn gaps_csv(groups: &[GapGroup]) -> Result<String, CsvError> {
    let rows = groups.iter().map(|g| {
        vec![
            Cell::from(g.query.as_str()),
            g.count.into(),
            g.no_results.into(),
            g.no_click.into(),
            g.not_helpful_or_handoff.into(),
            Cell::from(
                g.trend
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Cell::from(
                g.examples
                    .iter()
                    .map(|(text, n)| format!("{text} ({n})"))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
        ]
    });
    csv::table(
        &[
            "query",
            "count",
            "no_results",
            "no_click",
            "not_helpful_or_handoff",
            "trend",
            "examples",
        ],
        rows,
    )
}

/// Articles needing work as CSV; `reasons` separated by spaces.
pub fn articles_csv(work: &[ArticleWork]) -> Result<String, CsvError> {
    let rows = work.iter().map(|a| {
        vec![
            Cell::from(a.id.as_str()),
            Cell::from(a.title.as_str()),
            Cell::from(a.path.as_str()),
            Cell::from(a.updated.clone()),
            a.shown_before_handoff.into(),
            a.not_helpful.into(),
            a.helpful.into(),
            a.impressions.into(),
            a.clicks.into(),
            a.stale.into(),
            a.never_shown.into(),
            Cell::from(a.reasons.join(" ")),
        ]
    });
    csv::table(
        &[
            "id",
            "title",
            "path",
            "updated",
            "shown_before_handoff",
            "not_helpful",
            "helpful",
            "impressions",
            "clicks",
            "stale",
            "never_shown",
            "reasons",
        ],
        rows,
    )
}

/// The hand-off report as one CSV of `table,key,count` rows: `hour`
/// (00–23, UTC), `weekday` (Monday–Sunday), `reason`, `wait` (the bucket's
/// label) and `outcome`.
pub fn handoffs_csv(report: &HandoffReport) -> Result<String, CsvError> {
    const WEEKDAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let o = &report.outcomes;
    let mut rows: Vec<(&str, String, u64)> = Vec::new();
    rows.extend(
        report
            .by_hour
            .iter()
            .enumerate()
            .map(|(h, n)| ("hour", format!("{h:02}"), *n)),
    );
    rows.extend(
        WEEKDAYS
            .iter()
            .zip(report.by_weekday)
            .map(|(d, n)| ("weekday", d.to_string(), n)),
    );
    rows.extend(
        report
            .reasons
            .iter()
            .map(|(r, n)| ("reason", r.clone(), *n)),
    );
    rows.extend(
        report
            .wait_histogram
            .iter()
            .map(|b| ("wait", b.label.to_string(), b.count)),
    );
    rows.extend(
        [
            ("solved", o.solved),
            ("not_solved", o.not_solved),
            ("duplicate", o.duplicate),
            ("spam", o.spam),
            ("abandoned", o.abandoned),
            ("waiting", o.waiting),
            ("claimed", o.claimed),
        ]
        .map(|(k, n)| ("outcome", k.to_string(), n)),
    );
    csv::table(
        &["table", "key", "count"],
        rows.into_iter()
            .map(|(t, k, n)| vec![Cell::from(t), Cell::from(k), n.into()]),
    )
}

/// The summary as `figure,value` rows; maps flattened with dots
/// (`handoff_reasons.low_confidence`, `handoffs.closed.solved`). The per-day
/// counts are left out: the overview's CSV has the daily series.
pub fn summary_csv(summary: &Summary) -> Result<String, CsvError> {
    let mut rows: Vec<(String, Cell)> = vec![
        ("queries".into(), summary.queries.into()),
        ("searches".into(), summary.searches.into()),
        ("zero_result_rate".into(), summary.zero_result_rate.into()),
        (
            "click_through_rate".into(),
            summary.click_through_rate.into(),
        ),
        (
            "mean_click_position".into(),
            summary.mean_click_position.into(),
        ),
        ("helpful_rate".into(), summary.helpful_rate.into()),
        ("bot_questions".into(), summary.bot_questions.into()),
        ("bot_answer_rate".into(), summary.bot_answer_rate.into()),
        ("handoff_rate".into(), summary.handoff_rate.into()),
        ("resolution_rate".into(), summary.resolution_rate.into()),
        ("sessions".into(), summary.sessions.into()),
        ("self_service_rate".into(), summary.self_service_rate.into()),
        (
            "csat.satisfied_rate".into(),
            summary.csat.satisfied_rate.into(),
        ),
        ("csat.mean".into(), summary.csat.mean.into()),
        ("csat.count".into(), summary.csat.count.into()),
        ("handoffs.created".into(), summary.handoffs.created.into()),
        ("handoffs.claimed".into(), summary.handoffs.claimed.into()),
        (
            "handoffs.abandoned".into(),
            summary.handoffs.abandoned.into(),
        ),
        (
            "handoff_wait_seconds.median".into(),
            summary.handoff_wait_seconds.median.into(),
        ),
        (
            "handoff_wait_seconds.p90".into(),
            summary.handoff_wait_seconds.p90.into(),
        ),
        (
            "handoff_wait_seconds.count".into(),
            summary.handoff_wait_seconds.count.into(),
        ),
    ];
    rows.extend(
        summary
            .handoffs
            .closed
            .iter()
            .map(|(r, n)| (format!("handoffs.closed.{r}"), (*n).into())),
    );
    rows.extend(
        summary
            .handoff_reasons
            .iter()
            .map(|(r, n)| (format!("handoff_reasons.{r}"), (*n).into())),
    );
    for (name, figures) in &summary.channels {
        let prefix = format!("channels.{name}");
        rows.extend([
            (format!("{prefix}.messages"), figures.messages.into()),
            (format!("{prefix}.answered"), figures.answered.into()),
            (
                format!("{prefix}.auto_replied"),
                figures.auto_replied.into(),
            ),
            (format!("{prefix}.handed_off"), figures.handed_off.into()),
            (
                format!("{prefix}.first_response_seconds.median"),
                figures.first_response_seconds.median.into(),
            ),
            (
                format!("{prefix}.first_response_seconds.p90"),
                figures.first_response_seconds.p90.into(),
            ),
            (
                format!("{prefix}.resolution_seconds.median"),
                figures.resolution_seconds.median.into(),
            ),
            (
                format!("{prefix}.resolution_seconds.p90"),
                figures.resolution_seconds.p90.into(),
            ),
        ]);
    }
    csv::table(
        &["figure", "value"],
        rows.into_iter()
            .map(|(name, value)| vec![Cell::from(name), value]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::{Channel, FeedbackEvent, FeedbackKind, QueryEvent};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{EventBatch, NewHandoff, Rating};

    /// 2026-03-02, a Monday, 00:00 UTC.
    const MONDAY: i64 = 20_514 * DAY_MS;
    const HOUR: i64 = 3600 * 1000;

    fn query(id: &str, at_ms: i64, channel: Channel, text: &str, results: &[&str]) -> QueryEvent {
        QueryEvent {
            query_id: id.into(),
            at_ms,
            channel,
            query: text.into(),
            filters: serde_json::json!({}),
            result_count: results.len() as u64,
            top_ids: results.iter().map(|s| s.to_string()).collect(),
            confidence: None,
            handoff_reasons: Vec::new(),
            latency_ms: 1.0,
            session_hash: None,
            burst_key: None,
            auto_reply: false,
        }
    }

    fn in_session(mut event: QueryEvent, session: &str) -> QueryEvent {
        event.session_hash = Some(session.into());
        event
    }

    fn vote(query_id: &str, article: &str, event: FeedbackKind) -> FeedbackEvent {
        FeedbackEvent {
            query_id: query_id.into(),
            article_id: article.into(),
            event,
            comment: None,
            at_ms: MONDAY,
        }
    }

    fn write(store: &SqliteStore, queries: Vec<QueryEvent>, feedback: &[FeedbackEvent]) {
        let queries: Vec<Box<QueryEvent>> = queries.into_iter().map(Box::new).collect();
        store
            .write_events(&EventBatch {
                queries: &queries,
                feedback,
                ..EventBatch::default()
            })
            .unwrap();
    }

    fn handoff(store: &SqliteStore, id: &str, session: &str, at_ms: i64, reasons: &[&str]) {
        store
            .create_handoff(
                NewHandoff {
                    id: id.into(),
                    session_hash: session.into(),
                    session_id: session.into(),
                    at_ms,
                    contact: None,
                    message: None,
                    reasons: reasons.iter().map(|r| r.to_string()).collect(),
                    channel: Some("chat".into()),
                },
                &|_| None,
            )
            .unwrap();
    }

    fn window(from_ms: i64, to_ms: i64) -> Window {
        Window {
            from_ms,
            to_ms,
            channel: None,
        }
    }

    fn words(query: &str) -> Vec<String> {
        normalise(query)
    }

    #[test]
    fn typos_and_stopwords_fold_but_other_words_do_not() {
        assert_eq!(words("Reset password?"), ["reset", "password"]);
        assert_eq!(words("how do I reset the password"), ["reset", "password"]);
        assert!(folds(&words("reset pasword"), &words("reset password")));
        assert!(folds(&words("Reset password?"), &words("reset password")));
        assert!(folds(&words("resett passwrod"), &words("reset password")));
        assert!(folds(
            &words("how to reset my password"),
            &words("reset password")
        ));
        assert!(!folds(&words("reset password"), &words("reset pin")));
        assert!(!folds(
            &words("reset password"),
            &words("reset password email")
        ));
        assert!(
            !folds(&words("reset pin"), &words("reset pen")),
            "short words must match"
        );
        assert!(
            !folds(&words("error 401"), &words("error 404")),
            "numbers must match"
        );
        assert!(!folds(&words("cancel plan"), &words("change plan")));
        // Two typos in a long word, one in a short one.
        assert!(folds(&words("subscription"), &words("subscirpton")));
        assert!(!folds(&words("invoice"), &words("invocie x")));
        // Any script: split on what is not a letter or digit.
        assert_eq!(words("Rückerstattung—wann?"), ["rückerstattung", "wann"]);
        assert_eq!(
            words("how do i"),
            ["how", "do", "i"],
            "stopwords only: kept"
        );
    }

    #[test]
    fn the_overview_is_the_summary_with_a_previous_period_and_days() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        write(
            &store,
            vec![
                query("p1", MONDAY - DAY_MS, Channel::Search, "earlier", &["a"]),
                query("d1", MONDAY + HOUR, Channel::Search, "refund", &["a"]),
                query("d2", MONDAY + 2 * HOUR, Channel::Search, "kangaroo", &[]),
                in_session(
                    query(
                        "d3",
                        MONDAY + DAY_MS + HOUR,
                        Channel::Answer,
                        "refund",
                        &["a"],
                    ),
                    "s1",
                ),
                query(
                    "d4",
                    MONDAY + 2 * DAY_MS,
                    Channel::Search,
                    "invoice",
                    &["b"],
                ),
            ],
            &[],
        );
        handoff(&store, "h1", "s1", MONDAY + DAY_MS + 2 * HOUR, &[]);
        store
            .claim("h1", "Dana", MONDAY + DAY_MS + 2 * HOUR + 90_000, &|_| None)
            .unwrap();
        store
            .rate(Rating {
                session_hash: "s1".into(),
                score: 5,
                comment: None,
                at_ms: MONDAY + DAY_MS + 3 * HOUR,
            })
            .unwrap();
        let w = window(MONDAY, MONDAY + 3 * DAY_MS);
        let overview = overview(&store, &w, 0).unwrap();
        assert_eq!(overview.current, reports::summary(&store, &w, 0).unwrap());
        assert_eq!(overview.current.searches, 3);
        assert_eq!(overview.previous.searches, 1, "the day before the window");
        let dates: Vec<&str> = overview.days.iter().map(|d| d.date.as_str()).collect();
        assert_eq!(dates, ["2026-03-02", "2026-03-03", "2026-03-04"]);
        let searches: Vec<u64> = overview.days.iter().map(|d| d.searches).collect();
        assert_eq!(searches, [2, 0, 1]);
        assert_eq!(overview.days[0].zero_result_rate, 0.5);
        let tuesday = &overview.days[1];
        assert_eq!(
            (
                tuesday.sessions,
                tuesday.handoffs,
                tuesday.self_service_rate
            ),
            (1, 1, Some(0.0))
        );
        assert_eq!(tuesday.csat_satisfied_rate, Some(1.0));
        assert_eq!(tuesday.median_wait_seconds, Some(90.0));
        assert_eq!(overview.days[2].csat_satisfied_rate, None);
    }

    #[test]
    fn a_window_inside_one_day_has_one_clipped_day() {
        let w = window(MONDAY + HOUR, MONDAY + 2 * HOUR);
        let days = days(&w);
        assert_eq!(days.len(), 1);
        assert_eq!((days[0].1.from_ms, days[0].1.to_ms), (w.from_ms, w.to_ms));
        assert!(super::days(&window(5, 5)).is_empty());
        assert_eq!(super::days(&window(0, MONDAY)).len(), MAX_SERIES_DAYS);
    }

    #[test]
    fn content_gaps_group_typos_with_counts_trend_and_examples() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut queries = Vec::new();
        for i in 0..3 {
            queries.push(query(
                &format!("r{i}"),
                MONDAY + i,
                Channel::Search,
                "reset password",
                &[],
            ));
        }
        queries.push(query(
            "t1",
            MONDAY + DAY_MS,
            Channel::Search,
            "reset pasword",
            &[],
        ));
        queries.push(query(
            "t2",
            MONDAY + DAY_MS,
            Channel::Search,
            "Reset password?",
            &["a"],
        ));
        queries.push(query("n1", MONDAY, Channel::Search, "reset pin", &[]));
        queries.push(query("c1", MONDAY, Channel::Search, "clicked fine", &["a"]));
        let mut handed = query("b1", MONDAY, Channel::Answer, "cancel subscription", &["a"]);
        handed.handoff_reasons = vec!["low_confidence".into()];
        queries.push(handed.clone());
        handed.query_id = "b3".into();
        queries.push(handed);
        queries.push(query(
            "b2",
            MONDAY,
            Channel::Answer,
            "cancel subscirption",
            &["a"],
        ));
        queries.push(query(
            "ok",
            MONDAY,
            Channel::Answer,
            "answered well",
            &["a"],
        ));
        write(
            &store,
            queries,
            &[
                vote("c1", "a", FeedbackKind::Click),
                vote("t2", "a", FeedbackKind::Click),
                vote("b2", "a", FeedbackKind::NotHelpful),
            ],
        );
        // "t2" was clicked: not a gap. The rest fold by meaning.
        let gaps = content_gaps(&store, &window(MONDAY, MONDAY + 2 * DAY_MS), 10).unwrap();
        let summary: Vec<(&str, u64)> = gaps.iter().map(|g| (g.query.as_str(), g.count)).collect();
        assert_eq!(
            summary,
            [
                ("reset password", 4),
                ("cancel subscription", 3),
                ("reset pin", 1)
            ]
        );
        let reset = &gaps[0];
        assert_eq!(reset.no_results, 4);
        assert_eq!(reset.trend, [3, 1]);
        assert_eq!(
            reset.examples,
            [
                ("reset password".to_string(), 3),
                ("reset pasword".to_string(), 1)
            ]
        );
        assert_eq!(gaps[1].not_helpful_or_handoff, 3);
        assert_eq!(gaps[1].examples.len(), 2);
        let top = content_gaps(&store, &window(MONDAY, MONDAY + 2 * DAY_MS), 1).unwrap();
        assert_eq!(top.len(), 1);
    }

    #[test]
    fn a_clean_search_without_a_click_is_a_gap_and_a_handoff_after_an_answer_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        write(
            &store,
            vec![
                query("s1", MONDAY, Channel::Search, "billing address", &["a"]),
                in_session(
                    query("a1", MONDAY, Channel::Answer, "change email", &["a"]),
                    "s9",
                ),
            ],
            &[],
        );
        handoff(&store, "h1", "s9", MONDAY + 1000, &[]);
        let gaps = content_gaps(&store, &window(MONDAY, MONDAY + DAY_MS), 10).unwrap();
        let kinds: Vec<(&str, u64, u64)> = gaps
            .iter()
            .map(|g| (g.query.as_str(), g.no_click, g.not_helpful_or_handoff))
            .collect();
        assert_eq!(kinds, [("billing address", 1, 0), ("change email", 0, 1)]);
    }

    fn info(id: &str, updated: Option<&str>) -> ArticleInfo {
        ArticleInfo {
            id: id.into(),
            title: id.to_uppercase(),
            path: format!("{id}.md"),
            updated: updated.map(str::to_string),
        }
    }

    #[test]
    fn articles_needing_work_say_why_and_come_worst_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        write(
            &store,
            vec![
                in_session(query("q1", MONDAY, Channel::Answer, "x", &["before"]), "s1"),
                query(
                    "q2",
                    MONDAY,
                    Channel::Search,
                    "y",
                    &["voted", "old", "fine"],
                ),
                // Shown after the hand-off: does not count.
                in_session(
                    query("q3", MONDAY + 2 * HOUR, Channel::Search, "z", &["fine"]),
                    "s1",
                ),
            ],
            &[
                vote("q2", "voted", FeedbackKind::NotHelpful),
                vote("q2", "fine", FeedbackKind::Click),
            ],
        );
        handoff(&store, "h1", "s1", MONDAY + HOUR, &["low_confidence"]);
        let articles = [
            info("before", Some("2026-03-01")),
            info("voted", None),
            info("old", Some("2020-01-01")),
            info("fine", Some("2026-02-01")),
            info("unseen", Some("2019-01-01")),
        ];
        let w = window(MONDAY, MONDAY + DAY_MS);
        let work = articles_needing_work(&store, &articles, &w, 180, MONDAY).unwrap();
        let got: Vec<(&str, &[&str])> = work
            .iter()
            .map(|a| (a.id.as_str(), a.reasons.as_slice()))
            .collect();
        assert_eq!(
            got,
            [
                ("before", &["shown_before_handoff"][..]),
                ("voted", &["not_helpful"][..]),
                ("old", &["stale"][..]),
                ("unseen", &["never_shown"][..]),
            ]
        );
        assert_eq!(work[0].shown_before_handoff, 1);
        assert_eq!(work[2].path, "old.md");
        assert!(!work[3].stale, "never shown is not stale");
    }

    #[test]
    fn the_handoff_report_counts_hours_weekdays_waits_and_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        handoff(&store, "h1", "s1", MONDAY + 9 * HOUR, &["low_confidence"]);
        handoff(
            &store,
            "h2",
            "s2",
            MONDAY + 9 * HOUR + 1,
            &["human_request", "low_confidence"],
        );
        handoff(&store, "h3", "s3", MONDAY + DAY_MS + 14 * HOUR, &[]);
        handoff(&store, "h4", "s4", MONDAY + 6 * DAY_MS + 23 * HOUR, &[]);
        handoff(&store, "h5", "s5", MONDAY + 7 * DAY_MS, &[]);
        store
            .claim("h1", "Dana", MONDAY + 9 * HOUR + 30_000, &|_| None)
            .unwrap();
        store
            .close("h1", Resolution::Solved, None, MONDAY + 10 * HOUR, &|_| {
                None
            })
            .unwrap();
        store
            .claim("h2", "Dana", MONDAY + 11 * HOUR + 1, &|_| None)
            .unwrap();
        store
            .close("h3", Resolution::Spam, None, MONDAY + 2 * DAY_MS, &|_| None)
            .unwrap();
        let w = window(MONDAY, MONDAY + 7 * DAY_MS);
        let report = handoff_report(&store, &w, MONDAY + 5 * DAY_MS).unwrap();
        assert_eq!(report.total, 4, "h5 is after the window");
        assert_eq!(
            (report.by_hour[9], report.by_hour[14], report.by_hour[23]),
            (2, 1, 1)
        );
        assert_eq!(report.by_weekday, [2, 1, 0, 0, 0, 0, 1]);
        assert_eq!(report.reasons["low_confidence"], 2);
        assert_eq!(report.reasons["human_request"], 1);
        assert_eq!(report.reasons["none"], 2);
        let waits: Vec<u64> = report.wait_histogram.iter().map(|b| b.count).collect();
        assert_eq!(waits, [1, 0, 0, 0, 1, 0], "30 s and 2 h");
        let o = &report.outcomes;
        assert_eq!(
            (o.solved, o.spam, o.claimed, o.waiting, o.abandoned),
            (1, 1, 1, 1, 0)
        );
        let later = handoff_report(&store, &w, MONDAY + 8 * DAY_MS).unwrap();
        assert_eq!((later.outcomes.waiting, later.outcomes.abandoned), (0, 1));
    }

    /// The cost of the overview's daily series: 90 days of 300 queries a day.
    /// `cargo test --lib overview_speed -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn overview_speed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        for day in 0..90 {
            let queries = (0..300)
                .map(|i| {
                    let channel = if i % 3 == 0 {
                        Channel::Answer
                    } else {
                        Channel::Search
                    };
                    in_session(
                        query(
                            &format!("{day}-{i}"),
                            MONDAY + day * DAY_MS + i * 1000,
                            channel,
                            "q",
                            &["a"],
                        ),
                        &format!("s{day}-{}", i / 3),
                    )
                })
                .collect();
            write(&store, queries, &[]);
        }
        let started = std::time::Instant::now();
        let overview = overview(&store, &window(MONDAY, MONDAY + 90 * DAY_MS), 0).unwrap();
        assert_eq!(overview.days.len(), 90);
        println!(
            "overview over 90 days, 27,000 queries: {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_overview_csv_has_a_row_per_figure_and_a_column_per_day() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        write(
            &store,
            vec![query("d1", MONDAY + HOUR, Channel::Search, "refund", &[])],
            &[],
        );
        let overview = overview(&store, &window(MONDAY, MONDAY + 2 * DAY_MS), 0).unwrap();
        let text = overview_csv(&overview).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "figure,current,previous,2026-03-02,2026-03-03");
        assert_eq!(lines[1], "searches,1,0,1,0");
        assert_eq!(lines[3], "self_service_rate,,,,", "no sessions: no rate");
        // No searches (the previous period, the second day): no rate, not 0 %.
        assert_eq!(lines[6], "zero_result_rate,1,,1,");
        assert_eq!(lines[7], "answer_rate,,,,", "no bot questions: no rate");
        assert_eq!(lines.len(), 9);
    }

    #[test]
    fn the_handoff_csv_lists_every_table() {
        let report = HandoffReport {
            total: 1,
            reasons: BTreeMap::from([("=cmd".to_string(), 1)]),
            ..HandoffReport::default()
        };
        let text = handoffs_csv(&report).unwrap();
        assert!(text.starts_with("table,key,count\nhour,00,0\n"), "{text}");
        assert!(text.contains("weekday,Monday,0\n"), "{text}");
        assert!(text.contains("reason,'=cmd,1\n"), "{text}");
        assert!(text.ends_with("outcome,claimed,0\n"), "{text}");
    }
}
