//! CSV for the reports' downloads (`?format=csv`) and `rapport report
//! --format csv`: RFC 4180 quoting by the `csv` crate, UTF-8, a header row,
//! and text cells defused against spreadsheet formula injection.
//!
//! Customers type the queries these files contain, so a query such as
//! `=HYPERLINK("http://evil", "x")` must not become a live formula when a
//! support lead opens the file. Following OWASP ("CSV Injection"), a text cell
//! starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a single
//! quote in front. Only text cells: numbers are written as numbers, so a
//! negative figure stays a number a spreadsheet can add up.

use std::borrow::Cow;

/// One cell: text is escaped, numbers are not; `Empty` for a missing value
/// (a rate with nothing to divide).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Empty,
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::Text(text.to_string())
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::Text(text)
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        i64::try_from(n).map_or_else(|_| Cell::Text(n.to_string()), Cell::Int)
    }
}

impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Float(x)
    }
}

impl From<bool> for Cell {
    fn from(b: bool) -> Self {
        Cell::Text(b.to_string())
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Empty, Into::into)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("writing CSV: {0}")]
pub struct CsvError(#[from] ::csv::Error);

/// A text cell as it is safe to open in a spreadsheet.
pub fn defuse(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// A whole table: the header row, then the rows.
pub fn table(
    header: &[&str],
    rows: impl IntoIterator<Item = Vec<Cell>>,
) -> Result<String, CsvError> {
    let mut writer = ::csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    writer.write_record(header)?;
    for row in rows {
        let fields = row.iter().map(|cell| match cell {
            Cell::Text(text) => defuse(text).into_owned(),
            Cell::Int(n) => n.to_string(),
            Cell::Float(x) => x.to_string(),
            Cell::Empty => String::new(),
        });
        writer.write_record(fields)?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| CsvError(::csv::Error::from(e.into_error())))?;
    // Every field was a Rust string, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_everything_else_is_left_alone() {
        assert_eq!(defuse("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(defuse("+1"), "'+1");
        assert_eq!(defuse("-1"), "'-1");
        assert_eq!(defuse("@x"), "'@x");
        assert_eq!(defuse("\tcmd"), "'\tcmd");
        assert_eq!(defuse("\rcmd"), "'\rcmd");
        assert_eq!(defuse("reset password"), "reset password");
        assert_eq!(defuse("a=b"), "a=b");
        assert_eq!(defuse(""), "");
    }

    #[test]
    fn a_table_has_a_header_quoted_text_and_plain_numbers() {
        let csv = table(
            &["query", "count", "rate"],
            [
                vec![
                    Cell::from("=HYPERLINK(\"x\")"),
                    Cell::from(3u64),
                    Cell::from(-0.5),
                ],
                vec![
                    Cell::from("café, \"bar\""),
                    Cell::Int(-2),
                    Cell::from(None::<f64>),
                ],
            ],
        )
        .unwrap();
        assert_eq!(
            csv,
            "query,count,rate\n\"'=HYPERLINK(\"\"x\"\")\",3,-0.5\n\"café, \"\"bar\"\"\",-2,\n"
        );
    }
}
