//! Front matter: YAML between `---` lines or TOML between `+++` lines, only when
//! it starts at the very first byte of the file.
//!
//! We split it off ourselves instead of using pulldown-cmark's metadata-block
//! option, which would also swallow a `---` rule in the body followed by text.

use serde_json::{Map, Value};

use super::ArticleError;

/// Raw metadata as written, before defaults are applied. Every field is
/// optional: help centers exported from Jekyll, Hugo, Docusaurus or DocFX
/// index as they are, and unknown fields are ignored.
#[derive(Debug, Default, PartialEq)]
pub struct FrontMatter {
    pub id: Option<String>,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub category: Option<String>,
    pub tags: Vec<String>,
    pub products: Vec<String>,
    pub plans: Vec<String>,
    pub locale: Option<String>,
    /// Last change, from the first of `updated`, `last_modified_at`,
    /// `lastmod`, `ms.date`, `date`; ISO `YYYY-MM-DD` when recognizable.
    pub updated: Option<String>,
    /// A navigation label (`sidebar_label`, `nav_title`): a title only for
    /// files that have no real one.
    pub nav_label: Option<String>,
    /// Jekyll `permalink` or Docusaurus `slug`: how other pages link here.
    pub permalink: Option<String>,
    /// Every field as written, for rules that read a configurable field.
    pub raw: Map<String, Value>,
}

/// Splits `source` into (front matter, body). Returns an empty front matter
/// when the file does not start with a delimiter line.
pub fn split(source: &str) -> Result<(FrontMatter, &str), ArticleError> {
    let (block, body) = delimit(source)?;
    let front_matter = match block {
        Some((raw, format)) => parse(raw, format)?,
        None => FrontMatter::default(),
    };
    Ok((front_matter, body))
}

/// The body after the front matter, which is not parsed: an included
/// fragment whose fields can't be read still has its text.
pub fn skip(source: &str) -> &str {
    match delimit(source) {
        Ok((_, body)) => body,
        Err(_) => source.strip_prefix('\u{feff}').unwrap_or(source),
    }
}

/// Splits an included fragment into (its fields as written, its body). Only
/// who may read it matters, so a field of an unexpected type is no error.
pub fn split_raw(source: &str) -> Result<(Map<String, Value>, &str), ArticleError> {
    let (block, body) = delimit(source)?;
    let fields = match block {
        Some((raw, format)) => parse_map(raw, format)?,
        None => Map::new(),
    };
    Ok((fields, body))
}

/// A front matter block's text and format, when the file starts with one,
/// and the body after it.
type Delimited<'a> = (Option<(&'a str, Format)>, &'a str);

/// The one place that finds a front matter block.
fn delimit(source: &str) -> Result<Delimited<'_>, ArticleError> {
    let source = source.strip_prefix('\u{feff}').unwrap_or(source);
    for (delimiter, format) in [("---", Format::Yaml), ("+++", Format::Toml)] {
        if let Some(rest) = strip_delimiter_line(source, delimiter) {
            let (raw, body) = find_closing(rest, delimiter)
                .ok_or(ArticleError::UnclosedFrontMatter(delimiter))?;
            return Ok((Some((raw, format)), body));
        }
    }
    Ok((None, source))
}

#[derive(Clone, Copy)]
enum Format {
    Yaml,
    Toml,
}

/// If `text` starts with a line holding only `delimiter`, returns what follows it.
fn strip_delimiter_line<'a>(text: &'a str, delimiter: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(delimiter)?;
    let rest = rest.trim_start_matches([' ', '\t']);
    rest.strip_prefix("\r\n")
        .or_else(|| rest.strip_prefix('\n'))
}

/// Finds the closing delimiter line; returns (front matter text, body after it).
fn find_closing<'a>(text: &'a str, delimiter: &str) -> Option<(&'a str, &'a str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == delimiter {
            return Some((&text[..offset], &text[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

fn parse(raw: &str, format: Format) -> Result<FrontMatter, ArticleError> {
    from_map(parse_map(raw, format)?)
}

fn parse_map(raw: &str, format: Format) -> Result<Map<String, Value>, ArticleError> {
    let value: Value = match format {
        Format::Yaml if raw.trim().is_empty() => Value::Null,
        Format::Yaml => serde_saphyr::from_str(raw)
            .map_err(|e| ArticleError::FrontMatter(format!("invalid YAML: {e}")))?,
        Format::Toml => {
            let table: toml::Table = toml::from_str(raw)
                .map_err(|e| ArticleError::FrontMatter(format!("invalid TOML: {e}")))?;
            toml_to_json(toml::Value::Table(table))
        }
    };
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(ArticleError::FrontMatter(
            "expected a mapping of fields (key: value)".into(),
        )),
    }
}

/// Fields that mean "last changed", most specific first.
const DATE_FIELDS: [&str; 5] = ["updated", "last_modified_at", "lastmod", "ms.date", "date"];

fn from_map(raw: Map<String, Value>) -> Result<FrontMatter, ArticleError> {
    let map = &raw;
    let category = match scalar(map, "category")? {
        Some(category) => Some(category),
        None => list(map, "category")?
            .into_iter()
            .chain(list(map, "categories")?)
            .next(),
    };
    Ok(FrontMatter {
        id: scalar(map, "id")?,
        title: scalar(map, "title")?,
        summary: match scalar(map, "summary")? {
            Some(summary) => Some(summary),
            None => scalar(map, "description")?,
        },
        category,
        tags: list(map, "tags")?,
        products: list(map, "products")?,
        plans: list(map, "plans")?,
        locale: scalar(map, "locale")?,
        updated: first_scalar(map, &DATE_FIELDS).map(|date| normalize_date(&date)),
        nav_label: first_scalar(map, &["sidebar_label", "nav_title"]),
        permalink: first_scalar(map, &["permalink", "slug"]),
        raw,
    })
}

/// The first of `keys` holding a usable single value. These are fields other
/// generators own, so a value of another shape is passed over, not an error.
fn first_scalar(map: &Map<String, Value>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|key| scalar(map, key).ok().flatten())
}

/// `2022-03-31T10:00:00Z`, `2022-03-31 10:00` and DocFX's `03/31/2022`
/// become `2022-03-31`, so dates sort and age the same whatever wrote them.
/// Anything else is kept as written.
fn normalize_date(text: &str) -> String {
    let text = text.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(day) = text.get(..10)
        && time::Date::parse(
            day,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok()
    {
        return day.to_string();
    }
    let parts: Vec<&str> = text.split('/').collect();
    if let [month, day, year] = parts[..]
        && digits(month)
        && digits(day)
        && year.len() == 4
        && digits(year)
    {
        let iso = format!("{year}-{month:0>2}-{day:0>2}");
        if time::Date::parse(
            &iso,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok()
        {
            return iso;
        }
    }
    text.to_string()
}

/// A field that must be one value; numbers, booleans and dates are taken as text.
fn scalar(map: &Map<String, Value>, key: &str) -> Result<Option<String>, ArticleError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        // `category: [Billing]` is common in Jekyll; the caller falls back to `list`.
        Some(Value::Array(_)) if key == "category" => Ok(None),
        Some(_) => Err(ArticleError::FrontMatter(format!(
            "{key}: expected a single value"
        ))),
    }
}

/// A field that may be a list or a single (comma-separated) value.
fn list(map: &Map<String, Value>, key: &str) -> Result<Vec<String>, ArticleError> {
    let items = match map.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s.split(',').map(str::to_string).collect(),
        Some(Value::Array(values)) => {
            let mut items = Vec::with_capacity(values.len());
            for value in values {
                match value {
                    Value::String(s) => items.push(s.clone()),
                    Value::Number(n) => items.push(n.to_string()),
                    Value::Bool(b) => items.push(b.to_string()),
                    // `- Errors\0x8004: 0x` was meant as text, but YAML reads an
                    // item with `: ` as a one-entry mapping; take it back as written.
                    Value::Object(entry) if entry.len() == 1 => {
                        if let Some((key, value)) = entry.iter().next() {
                            let value = match value {
                                Value::String(s) => s.clone(),
                                Value::Null => String::new(),
                                other => other.to_string(),
                            };
                            items.push(
                                format!("{key}: {value}")
                                    .trim_end_matches([':', ' '])
                                    .to_string(),
                            );
                        }
                    }
                    _ => {
                        return Err(ArticleError::FrontMatter(format!(
                            "{key}: expected a list of strings"
                        )));
                    }
                }
            }
            items
        }
        Some(_) => {
            return Err(ArticleError::FrontMatter(format!(
                "{key}: expected a string or a list of strings"
            )));
        }
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect())
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_front_matter_is_split_off() {
        let (fm, body) = split("---\ntitle: Reset\ntags: [a, b]\n---\n# Body\n").unwrap();
        assert_eq!(fm.title.as_deref(), Some("Reset"));
        assert_eq!(fm.tags, vec!["a", "b"]);
        assert_eq!(body, "# Body\n");
    }

    #[test]
    fn toml_front_matter_with_dates() {
        let (fm, body) = split(
            "+++\ntitle = \"Refunds\"\nupdated = 2026-01-02\ncategories = [\"Billing\"]\n+++\nText",
        )
        .unwrap();
        assert_eq!(fm.title.as_deref(), Some("Refunds"));
        assert_eq!(fm.updated.as_deref(), Some("2026-01-02"));
        assert_eq!(fm.category.as_deref(), Some("Billing"));
        assert_eq!(body, "Text");
    }

    #[test]
    fn front_matter_only_at_first_byte() {
        let source = "\n---\ntitle: no\n---\nbody";
        let (fm, body) = split(source).unwrap();
        assert_eq!(fm, FrontMatter::default());
        assert_eq!(body, source);
    }

    #[test]
    fn rule_in_body_is_not_front_matter() {
        let (fm, body) = split("---\ntitle: A\n---\nIntro\n\n---\nmore: text\n").unwrap();
        assert_eq!(fm.title.as_deref(), Some("A"));
        assert!(body.contains("more: text"));
    }

    #[test]
    fn description_and_jekyll_categories_are_accepted() {
        let (fm, _) = split(
            "---\ndescription: Short\ncategories: [Billing, Other]\nms.custom: [x]\nauthor: z\n---\n",
        )
        .unwrap();
        assert_eq!(fm.summary.as_deref(), Some("Short"));
        assert_eq!(fm.category.as_deref(), Some("Billing"));
    }

    #[test]
    fn dates_come_from_any_generator_and_are_normalized() {
        let date = |yaml: &str| split(&format!("---\n{yaml}\n---\n")).unwrap().0.updated;
        assert_eq!(date("ms.date: 03/31/2022").as_deref(), Some("2022-03-31"));
        assert_eq!(date("ms.date: 3/1/2022").as_deref(), Some("2022-03-01"));
        assert_eq!(
            date("date: 2021-01-02 10:00:00 +0000\nlast_modified_at: 2023-05-06T07:08:09Z")
                .as_deref(),
            Some("2023-05-06"),
            "last_modified_at is more specific than date"
        );
        assert_eq!(
            date("updated: 2026-10-01\ndate: 2020-01-01").as_deref(),
            Some("2026-10-01")
        );
        assert_eq!(date("date: spring 2024").as_deref(), Some("spring 2024"));
        assert_eq!(
            date("date: [2024]").as_deref(),
            None,
            "other shapes are passed over"
        );
    }

    #[test]
    fn unknown_fields_of_any_type_are_ignored() {
        let (fm, _) = split(
            "---\ntitle: T\nms.custom:\n  - Activation\\Errors\\x: 0x\nnested: {a: [1, {b: 2}]}\nflag: true\nwhen: 2024-01-01\nsidebar_label: Short\n---\n",
        )
        .unwrap();
        assert_eq!(fm.title.as_deref(), Some("T"));
        assert_eq!(fm.nav_label.as_deref(), Some("Short"));
    }

    #[test]
    fn list_items_that_yaml_reads_as_mappings_are_taken_as_written() {
        let (fm, _) =
            split("---\ntags:\n  - Activation\\Errors: 0x\n  - billing\n  - true\n---\n").unwrap();
        assert_eq!(fm.tags, ["Activation\\Errors: 0x", "billing", "true"]);
        assert!(split("---\ntags:\n  - {a: 1, b: 2}\n---\n").is_err());
    }

    #[test]
    fn invalid_front_matter_is_an_error_naming_the_problem() {
        let err = split("---\ntitle: [unclosed\n---\nbody").unwrap_err();
        assert!(err.to_string().contains("invalid YAML"), "{err}");
        let err = split("---\ntitle: {a: 1}\n---\nbody").unwrap_err();
        assert!(err.to_string().contains("title"), "{err}");
        let err = split("---\ntitle: x\nbody without end").unwrap_err();
        assert!(err.to_string().contains("not closed"), "{err}");
    }
}
