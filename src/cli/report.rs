//! `rapport report`: the dashboard's overview and content gaps for a
//! terminal, from the same functions the API serves
//! ([`crate::analytics::dashboard`]): read from the database in the data
//! folder, or from a running server's API with `--url`.

use std::io::Write;
use std::process::ExitCode;

use serde::{Deserialize, Serialize};

use super::args::ReportFormat;
use crate::analytics::dashboard::{self, GapGroup, Overview};
use crate::analytics::reports::{Summary, Window};
use crate::config::Settings;

/// What `--format json` prints, and what the table and CSV are made from.
#[derive(Serialize, Deserialize)]
struct Report {
    overview: OverviewJson,
    gaps: Vec<GapJson>,
}

/// The overview as JSON: from the database it is [`Overview`] serialised,
/// from a server it is the API's answer, passed through unchanged.
type OverviewJson = serde_json::Value;
type GapJson = serde_json::Value;

#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error("--since {0:?}: use a number and a unit, e.g. 7d, 30d, 90d, 12h or 2w")]
    Since(String),
    #[error("{0}")]
    Other(String),
}

/// `--since` as milliseconds: `12h`, `7d`, `2w` (at most a year and a day).
pub fn parse_since(since: &str) -> Option<i64> {
    let since = since.trim();
    let unit = since.chars().last()?;
    let number: i64 = since[..since.len() - unit.len_utf8()].parse().ok()?;
    let hours = match unit {
        'h' => number,
        'd' => number.checked_mul(24)?,
        'w' => number.checked_mul(24 * 7)?,
        _ => return None,
    };
    (1..=366 * 24).contains(&hours).then(|| hours * 3600 * 1000)
}

pub fn run(
    settings: &Settings,
    since: &str,
    top: usize,
    format: ReportFormat,
    url: Option<&str>,
    key: Option<String>,
) -> ExitCode {
    let result = parse_since(since)
        .ok_or_else(|| ReportError::Since(since.to_string()))
        .and_then(|span| match url {
            Some(url) => from_server(url, key, span, top),
            None => from_database(settings, span, top),
        })
        .and_then(|report| print(&report, since, format));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(match error {
                ReportError::Since(_) => 2,
                ReportError::Other(_) => 1,
            })
        }
    }
}

fn other(error: impl std::fmt::Display) -> ReportError {
    ReportError::Other(error.to_string())
}

fn from_database(settings: &Settings, span: i64, top: usize) -> Result<Report, ReportError> {
    let database = settings.data_dir.join(crate::store::sqlite::DATABASE_FILE);
    if settings.database_url.is_none() && !database.exists() {
        return Err(ReportError::Other(format!(
            "no analytics yet at {} (run `rapport serve` first)",
            database.display()
        )));
    }
    let store =
        crate::store::open(&settings.data_dir, settings.database_url.as_deref()).map_err(other)?;
    let store = store.as_ref();
    // The API's default window: up to and including now.
    let now = crate::analytics::now_ms();
    let window = Window {
        from_ms: now + 1 - span,
        to_ms: now + 1,
        channel: None,
    };
    let abandoned_before = now - settings.handoff_abandon_after.as_millis() as i64;
    let overview = dashboard::overview(store, &window, abandoned_before).map_err(other)?;
    let gaps = dashboard::content_gaps(store, &window, top).map_err(other)?;
    Ok(Report {
        overview: serde_json::to_value(overview).map_err(other)?,
        gaps: gaps
            .into_iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(other)?,
    })
}

fn from_server(
    url: &str,
    key: Option<String>,
    span: i64,
    top: usize,
) -> Result<Report, ReportError> {
    let key = key.ok_or_else(|| {
        ReportError::Other("--url needs an admin key: --key or RAPPORT_ADMIN_KEY".into())
    })?;
    let format = &time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    let from = (now - time::Duration::milliseconds(span))
        .format(format)
        .map_err(other)?;
    let to = now.format(format).map_err(other)?;
    let base = url.trim_end_matches('/');
    let get = |path: &str, extra: &str| -> Result<serde_json::Value, ReportError> {
        let address = format!(
            "{base}{path}?from={}&to={}{extra}",
            encode(&from),
            encode(&to)
        );
        let mut response = ureq::get(&address)
            .header("Authorization", &format!("Bearer {key}"))
            .call()
            .map_err(|e| ReportError::Other(format!("{address}: {e}")))?;
        let body = response
            .body_mut()
            .read_to_string()
            .map_err(|e| ReportError::Other(format!("{address}: {e}")))?;
        serde_json::from_str(&body).map_err(|e| ReportError::Other(format!("{address}: {e}")))
    };
    let overview = get("/api/v1/analytics/overview", "")?;
    let gaps = get("/api/v1/analytics/gaps", &format!("&limit={}", top.max(1)))?;
    let gaps = match gaps {
        serde_json::Value::Array(gaps) => gaps,
        other => return Err(ReportError::Other(format!("unexpected gaps: {other}"))),
    };
    Ok(Report { overview, gaps })
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The typed overview and gaps back from JSON (the same types either way).
fn typed(report: &Report) -> Result<(Overview, Vec<GapGroup>), ReportError> {
    let overview = OverviewIn::deserialize(&report.overview).map_err(other)?;
    let gaps = report
        .gaps
        .iter()
        .map(GapIn::deserialize)
        .collect::<Result<Vec<_>, _>>()
        .map_err(other)?;
    Ok((overview.into(), gaps.into_iter().map(Into::into).collect()))
}

fn print(report: &Report, since: &str, format: ReportFormat) -> Result<(), ReportError> {
    let mut out = std::io::stdout().lock();
    let text = match format {
        ReportFormat::Json => serde_json::to_string_pretty(report).map_err(other)? + "\n",
        ReportFormat::Csv => {
            let (overview, gaps) = typed(report)?;
            format!(
                "{}\n{}",
                dashboard::overview_csv(&overview).map_err(other)?,
                dashboard::gaps_csv(&gaps).map_err(other)?
            )
        }
        ReportFormat::Table => {
            let (overview, gaps) = typed(report)?;
            table(&overview, &gaps, since)
        }
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let _ = out.write_all(text.as_bytes());
    Ok(())
}

/// Values as ▁▂▃▄▅▆▇█ between their minimum and maximum, a space where
/// there is none; long series averaged down to at most `width` marks.
pub fn sparkline(values: &[Option<f64>], width: usize) -> String {
    const MARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let chunk = values.len().div_ceil(width.max(1)).max(1);
    let points: Vec<Option<f64>> = values
        .chunks(chunk)
        .map(|c| {
            let known: Vec<f64> = c.iter().flatten().copied().collect();
            (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64)
        })
        .collect();
    let known = points.iter().flatten();
    let min = known.clone().copied().fold(f64::INFINITY, f64::min);
    let max = known.copied().fold(f64::NEG_INFINITY, f64::max);
    points
        .iter()
        .map(|p| match p {
            None => ' ',
            Some(_) if max <= min => MARKS[0],
            Some(v) => MARKS[(((v - min) / (max - min)) * 7.0).round().clamp(0.0, 7.0) as usize],
        })
        .collect()
}

fn table(overview: &Overview, gaps: &[GapGroup], since: &str) -> String {
    let mut out = String::new();
    let (first, last) = (
        overview.days.first().map_or("", |d| d.date.as_str()),
        overview.days.last().map_or("", |d| d.date.as_str()),
    );
    out += &format!(
        "rapport report — last {since} ({first} to {last}), against the {since} before\n\n"
    );
    out += &format!(
        "  {:<22} {:<30} {:>10} {:>10} {:>10}\n",
        "figure", "trend", "current", "previous", "change"
    );
    for figure in dashboard::figures(overview) {
        let show = |v: Option<f64>| match v {
            None => "–".to_string(),
            Some(v) if figure.is_rate() => format!("{:.1}%", v * 100.0),
            Some(v) if v.fract() == 0.0 => format!("{v}"),
            Some(v) => format!("{v:.1}"),
        };
        let change = match (figure.current, figure.previous) {
            (Some(c), Some(p)) if figure.is_rate() => format!("{:+.1} pts", (c - p) * 100.0),
            (Some(c), Some(p)) if p != 0.0 => format!("{:+.0}%", (c - p) / p * 100.0),
            _ => "–".to_string(),
        };
        out += &format!(
            "  {:<22} {:<30} {:>10} {:>10} {:>10}\n",
            figure.name.replace('_', " "),
            sparkline(&figure.series, 30),
            show(figure.current),
            show(figure.previous),
            change
        );
    }
    let reasons = &overview.current.handoff_reasons;
    if !reasons.is_empty() {
        out += "\n  hand-off reasons: ";
        out += &reasons
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        out += "\n";
    }
    out += "\nContent gaps (no result, no click, or answered then not helpful / handed off)\n";
    if gaps.is_empty() {
        out += "  (none)\n";
    }
    for gap in gaps {
        let trend: Vec<Option<f64>> = gap.trend.iter().map(|n| Some(*n as f64)).collect();
        out += &format!(
            "  {:>6}  {:<30}  {}\n",
            gap.count,
            sparkline(&trend, 30),
            gap.query
        );
        let others: Vec<String> = gap
            .examples
            .iter()
            .skip(1)
            .map(|(text, n)| format!("{text:?} ({n})"))
            .collect();
        if !others.is_empty() {
            out += &format!("          also: {}\n", others.join(", "));
        }
    }
    out
}

// The dashboard's types serialise only (the API's types); these read them
// back for the table and CSV, field for field.
#[derive(Deserialize)]
struct OverviewIn {
    current: SummaryIn,
    previous: SummaryIn,
    days: Vec<DayIn>,
}

#[derive(Deserialize)]
struct SummaryIn {
    searches: u64,
    sessions: u64,
    self_service_rate: Option<f64>,
    zero_result_rate: f64,
    bot_answer_rate: f64,
    handoff_reasons: std::collections::BTreeMap<String, u64>,
    handoffs: HandoffsIn,
    csat: CsatIn,
    handoff_wait_seconds: WaitIn,
}

#[derive(Deserialize)]
struct HandoffsIn {
    created: u64,
}

#[derive(Deserialize)]
struct CsatIn {
    satisfied_rate: Option<f64>,
}

#[derive(Deserialize)]
struct WaitIn {
    median: Option<f64>,
}

#[derive(Deserialize)]
struct DayIn {
    date: String,
    searches: u64,
    sessions: u64,
    self_service_rate: Option<f64>,
    handoffs: u64,
    csat_satisfied_rate: Option<f64>,
    zero_result_rate: f64,
    /// Servers before this field: 0, so the day's rate shows as none.
    #[serde(default)]
    bot_questions: u64,
    answer_rate: f64,
    median_wait_seconds: Option<f64>,
}

#[derive(Deserialize)]
struct GapIn {
    query: String,
    count: u64,
    no_results: u64,
    no_click: u64,
    not_helpful_or_handoff: u64,
    trend: Vec<u64>,
    examples: Vec<(String, u64)>,
}

impl From<SummaryIn> for Summary {
    fn from(s: SummaryIn) -> Self {
        let mut summary = Summary {
            searches: s.searches,
            sessions: s.sessions,
            self_service_rate: s.self_service_rate,
            zero_result_rate: s.zero_result_rate,
            bot_answer_rate: s.bot_answer_rate,
            handoff_reasons: s.handoff_reasons,
            ..Summary::default()
        };
        summary.handoffs.created = s.handoffs.created;
        summary.csat.satisfied_rate = s.csat.satisfied_rate;
        summary.handoff_wait_seconds.median = s.handoff_wait_seconds.median;
        summary
    }
}

impl From<OverviewIn> for Overview {
    fn from(o: OverviewIn) -> Self {
        Overview {
            current: o.current.into(),
            previous: o.previous.into(),
            days: o
                .days
                .into_iter()
                .map(|d| dashboard::DayFigures {
                    date: d.date,
                    searches: d.searches,
                    sessions: d.sessions,
                    self_service_rate: d.self_service_rate,
                    handoffs: d.handoffs,
                    csat_satisfied_rate: d.csat_satisfied_rate,
                    zero_result_rate: d.zero_result_rate,
                    bot_questions: d.bot_questions,
                    answer_rate: d.answer_rate,
                    median_wait_seconds: d.median_wait_seconds,
                })
                .collect(),
        }
    }
}

impl From<GapIn> for GapGroup {
    fn from(g: GapIn) -> Self {
        GapGroup {
            query: g.query,
            count: g.count,
            no_results: g.no_results,
            no_click: g.no_click,
            not_helpful_or_handoff: g.not_helpful_or_handoff,
            trend: g.trend,
            examples: g.examples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_hours_days_and_weeks() {
        assert_eq!(parse_since("12h"), Some(12 * 3600 * 1000));
        assert_eq!(parse_since("7d"), Some(7 * 24 * 3600 * 1000));
        assert_eq!(parse_since("2w"), Some(14 * 24 * 3600 * 1000));
        assert_eq!(parse_since("90d"), Some(90 * 24 * 3600 * 1000));
        for bad in [
            "",
            "d",
            "soon",
            "7",
            "-1d",
            "0d",
            "7y",
            "99999999999999999d",
            "367d",
            "7é",
        ] {
            assert_eq!(parse_since(bad), None, "{bad}");
        }
    }

    #[test]
    fn sparklines_scale_between_min_and_max() {
        assert_eq!(
            sparkline(&[Some(0.0), Some(7.0), None, Some(3.5)], 30),
            "▁█ ▅"
        );
        assert_eq!(sparkline(&[Some(2.0), Some(2.0)], 30), "▁▁");
        assert_eq!(sparkline(&[], 30), "");
        let long: Vec<Option<f64>> = (0..90).map(|i| Some(i as f64)).collect();
        let line = sparkline(&long, 30);
        assert_eq!(line.chars().count(), 30);
        assert!(line.starts_with('▁') && line.ends_with('█'), "{line}");
    }
}
