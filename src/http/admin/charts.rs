//! Small SVG charts for the dashboard, rendered on the server.
//!
//! Written here rather than with a charting crate: the dashboard's CSP
//! forbids inline styles, and its charts must follow light and dark mode.
//! plotters' SVG backend writes fixed colours into every element and
//! charming renders in the browser through ECharts (a script). These charts
//! carry only geometry and class names; `admin.css` colours them. Every
//! chart has an `aria-label` and its numbers in a table behind `<details>`.

use maud::{Markup, html};

/// One series: a label for the legend and table, and a value per point
/// (`None` where there is nothing to show, e.g. a rate on a day without
/// traffic).
#[derive(Debug, Clone)]
pub struct Series<'a> {
    pub label: &'a str,
    pub values: Vec<Option<f64>>,
}

/// How numbers are written in labels and tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    /// A 0–1 ratio written as a percentage.
    Percent,
    Seconds,
}

impl Unit {
    pub fn format(self, value: Option<f64>) -> String {
        match value {
            None => "–".to_string(),
            Some(v) => match self {
                Unit::Count => {
                    if v.fract() == 0.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.1}")
                    }
                }
                Unit::Percent => format!("{:.1} %", v * 100.0),
                Unit::Seconds => seconds(v),
            },
        }
    }
}

/// "45 s", "3.5 min", "2.1 h": waits read best in their own scale.
fn seconds(v: f64) -> String {
    if v < 60.0 {
        format!("{v:.0} s")
    } else if v < 3600.0 {
        format!("{:.1} min", v / 60.0)
    } else {
        format!("{:.1} h", v / 3600.0)
    }
}

const TREND_W: f64 = 240.0;
const TREND_H: f64 = 56.0;
const PAD: f64 = 3.0;

/// A small trend line over the range (the current period), with the
/// previous period as a fainter line behind it when given. `labels` name
/// the points (dates) for the table.
pub fn trend(
    title: &str,
    unit: Unit,
    labels: &[String],
    current: &Series<'_>,
    previous: Option<&Series<'_>>,
) -> Markup {
    let max = current
        .values
        .iter()
        .chain(previous.into_iter().flat_map(|p| p.values.iter()))
        .flatten()
        .fold(0.0f64, |m, v| m.max(*v));
    let scale = if max > 0.0 { max } else { 1.0 };
    let points = current.values.len().max(1);
    let x = |i: usize| {
        if points == 1 {
            TREND_W / 2.0
        } else {
            PAD + (TREND_W - 2.0 * PAD) * i as f64 / (points - 1) as f64
        }
    };
    let y = |v: f64| TREND_H - PAD - (TREND_H - 2.0 * PAD) * (v / scale);
    let line = |values: &[Option<f64>]| polyline_runs(values, &x, &y);
    let area = area_path(&current.values, &x, &y, TREND_H - PAD);
    let last = current.values.iter().rev().flatten().next().copied();
    let summary = format!(
        "{title}: {} points, latest {}, highest {}",
        current.values.len(),
        unit.format(last),
        unit.format((max > 0.0).then_some(max))
    );
    html! {
        figure.chart.trend {
            svg viewBox=(format!("0 0 {TREND_W} {TREND_H}")) role="img" aria-label=(summary)
                preserveAspectRatio="none" {
                title { (summary) }
                line.axis x1="0" y1=(fmt(TREND_H - PAD)) x2=(fmt(TREND_W)) y2=(fmt(TREND_H - PAD)) {}
                @if let Some(previous) = previous {
                    @for run in line(&previous.values) {
                        polyline.line.previous points=(run) {}
                    }
                }
                @if let Some(d) = area {
                    path.area d=(d) {}
                }
                @for run in line(&current.values) {
                    polyline.line points=(run) {}
                }
            }
            (data_table(title, unit, labels, current, previous))
        }
    }
}

/// Vertical bars with a label under each (hours, weekdays, wait buckets).
pub fn bars(title: &str, unit: Unit, labels: &[String], values: &[f64]) -> Markup {
    const W: f64 = 480.0;
    const H: f64 = 160.0;
    const BOTTOM: f64 = 20.0;
    const TOP: f64 = 14.0;
    let n = values.len().max(1);
    let max = values.iter().fold(0.0f64, |m, v| m.max(*v));
    let scale = if max > 0.0 { max } else { 1.0 };
    let slot = W / n as f64;
    let bar = (slot * 0.72).max(1.0);
    // Every label when they fit, else every k-th (24 hours on a phone).
    let every = (n as f64 * 28.0 / W).ceil().max(1.0) as usize;
    let total: f64 = values.iter().sum();
    let peak = values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, v)| **v > 0.0)
        .and_then(|(i, _)| labels.get(i));
    let summary = match peak {
        Some(peak) => format!(
            "{title}: {} in all, most at {peak}",
            unit.format(Some(total))
        ),
        None => format!("{title}: nothing in this range"),
    };
    let series = Series {
        label: title,
        values: values.iter().map(|v| Some(*v)).collect(),
    };
    html! {
        figure.chart.bars {
            svg viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(summary) {
                title { (summary) }
                line.axis x1="0" y1=(fmt(H - BOTTOM)) x2=(fmt(W)) y2=(fmt(H - BOTTOM)) {}
                @for (i, v) in values.iter().enumerate() {
                    @let height = (H - BOTTOM - TOP) * (v / scale);
                    @let left = slot * i as f64 + (slot - bar) / 2.0;
                    rect.bar x=(fmt(left)) y=(fmt(H - BOTTOM - height)) width=(fmt(bar)) height=(fmt(height)) {
                        title { (labels.get(i).map(String::as_str).unwrap_or("")) ": " (unit.format(Some(*v))) }
                    }
                    @if *v > 0.0 && n <= 12 {
                        text.label.value x=(fmt(left + bar / 2.0)) y=(fmt(H - BOTTOM - height - 3.0)) text-anchor="middle" {
                            (unit.format(Some(*v)))
                        }
                    }
                    @if i % every == 0 {
                        text.label x=(fmt(left + bar / 2.0)) y=(fmt(H - 5.0)) text-anchor="middle" {
                            (labels.get(i).map(String::as_str).unwrap_or(""))
                        }
                    }
                }
            }
            (data_table(title, unit, labels, &series, None))
        }
    }
}

/// The chart's numbers, for screen readers and for copying.
fn data_table(
    title: &str,
    unit: Unit,
    labels: &[String],
    current: &Series<'_>,
    previous: Option<&Series<'_>>,
) -> Markup {
    html! {
        details.chart-data {
            summary { "Data: " (title) }
            table {
                thead {
                    tr {
                        th scope="col" { "" }
                        th scope="col" { (current.label) }
                        @if let Some(previous) = previous { th scope="col" { (previous.label) } }
                    }
                }
                tbody {
                    @for (i, label) in labels.iter().enumerate() {
                        tr {
                            th scope="row" { (label) }
                            td { (unit.format(current.values.get(i).copied().flatten())) }
                            @if let Some(previous) = previous {
                                td { (unit.format(previous.values.get(i).copied().flatten())) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `points` attributes of the unbroken runs of a series (a missing value
/// breaks the line rather than drawing it to zero).
fn polyline_runs(
    values: &[Option<f64>],
    x: &impl Fn(usize) -> f64,
    y: &impl Fn(f64) -> f64,
) -> Vec<String> {
    let mut runs = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => run.push(format!("{},{}", fmt(x(i)), fmt(y(*v)))),
            None if !run.is_empty() => runs.push(std::mem::take(&mut run).join(" ")),
            None => {}
        }
    }
    if !run.is_empty() {
        // A lone point still shows as a short flat dash.
        if run.len() == 1 {
            let i = values.iter().rposition(Option::is_some).unwrap_or(0);
            let v = values[i].unwrap_or(0.0);
            run.push(format!("{},{}", fmt(x(i) + 2.0), fmt(y(v))));
        }
        runs.push(run.join(" "));
    }
    runs
}

/// The filled area under the series' first-to-last present points, missing
/// values as zero; `None` without any value.
fn area_path(
    values: &[Option<f64>],
    x: &impl Fn(usize) -> f64,
    y: &impl Fn(f64) -> f64,
    base: f64,
) -> Option<String> {
    let first = values.iter().position(Option::is_some)?;
    let last = values.iter().rposition(Option::is_some)?;
    if first == last {
        return None;
    }
    let mut d = format!("M{},{}", fmt(x(first)), fmt(base));
    for (i, value) in values.iter().enumerate().take(last + 1).skip(first) {
        d.push_str(&format!(" L{},{}", fmt(x(i)), fmt(y(value.unwrap_or(0.0)))));
    }
    d.push_str(&format!(" L{},{} Z", fmt(x(last)), fmt(base)));
    Some(d)
}

/// Coordinates with one decimal: small markup, no visible difference.
fn fmt(v: f64) -> String {
    let v = (v * 10.0).round() / 10.0;
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: usize) -> Vec<String> {
        (1..=n).map(|d| format!("2026-11-{d:02}")).collect()
    }

    #[test]
    fn a_trend_has_geometry_classes_a_label_and_a_table_but_no_styles() {
        let current = Series {
            label: "This period",
            values: vec![Some(1.0), Some(4.0), None, Some(2.0)],
        };
        let previous = Series {
            label: "Previous period",
            values: vec![Some(2.0), Some(2.0), Some(2.0), Some(8.0)],
        };
        let markup =
            trend("Searches", Unit::Count, &days(4), &current, Some(&previous)).into_string();
        assert!(markup.contains(r#"aria-label="Searches: 4 points, latest 2, highest 8""#));
        // The missing day breaks the current line into two runs.
        assert_eq!(markup.matches(r#"<polyline class="line" "#).count(), 2);
        assert_eq!(markup.matches(r#"class="line previous""#).count(), 1);
        // The highest value (8, previous period) sits at the top of the box.
        assert!(markup.contains(&format!("237,{}", fmt(PAD))), "{markup}");
        assert!(markup.contains("<details"));
        assert!(markup.contains("<td>–</td>"));
        assert!(!markup.contains("style="), "{markup}");
        assert!(
            !markup.contains("fill=\"#"),
            "colours come from the stylesheet"
        );
    }

    #[test]
    fn bars_scale_to_the_largest_and_name_the_peak() {
        let labels: Vec<String> = ["Mon", "Tue", "Wed"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let markup = bars(
            "Hand-offs by weekday",
            Unit::Count,
            &labels,
            &[2.0, 8.0, 0.0],
        )
        .into_string();
        assert!(markup.contains("Hand-offs by weekday: 10 in all, most at Tue"));
        // 160 high, 20 for labels, 14 headroom: the largest bar is 126 tall.
        assert!(markup.contains(r#"height="126""#), "{markup}");
        assert!(markup.contains(r#"height="31.5""#), "{markup}");
        assert!(markup.contains(r#"height="0""#));
        assert!(!markup.contains("style="));
    }

    #[test]
    fn empty_charts_say_so_instead_of_dividing_by_zero() {
        let markup = bars("Waits", Unit::Seconds, &[], &[]).into_string();
        assert!(markup.contains("Waits: nothing in this range"));
        let none = Series {
            label: "This period",
            values: vec![None, None],
        };
        let markup = trend("CSAT", Unit::Percent, &days(2), &none, None).into_string();
        assert!(markup.contains("latest –, highest –"));
        assert!(!markup.contains("NaN") && !markup.contains("inf"));
    }

    #[test]
    fn units_read_naturally() {
        assert_eq!(Unit::Percent.format(Some(0.4567)), "45.7 %");
        assert_eq!(Unit::Seconds.format(Some(42.0)), "42 s");
        assert_eq!(Unit::Seconds.format(Some(210.0)), "3.5 min");
        assert_eq!(Unit::Seconds.format(Some(7560.0)), "2.1 h");
        assert_eq!(Unit::Count.format(Some(3.0)), "3");
        assert_eq!(Unit::Count.format(None), "–");
    }
}
