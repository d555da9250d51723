//! A CSV text parsed into header and records, with lookups that name what is wrong.

use super::{ReportError, Result};

/// CSV text read whole: the header and each record with its line number.
pub(crate) struct CsvTable {
    headers: Vec<String>,
    rows: Vec<(u64, csv::StringRecord)>,
}

impl CsvTable {
    /// Parses `text` (comma-separated, first line a header, surrounding spaces trimmed).
    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| csv_error(&e, 1))?
            .iter()
            .map(str::to_string)
            .collect::<Vec<_>>();
        if headers.iter().all(String::is_empty) {
            return Err(ReportError::Csv {
                line: 1,
                message: "empty CSV: no header".into(),
            });
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(&e, 0))?;
            let line = record.position().map_or(0, |p| p.line());
            rows.push((line, record));
        }
        Ok(Self { headers, rows })
    }

    /// Index of the column named `name`.
    pub(crate) fn column(&self, name: &str) -> Result<usize> {
        self.headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ReportError::MissingColumn {
                column: name.to_string(),
                available: self.headers.join(", "),
            })
    }

    /// The records with their line numbers.
    pub(crate) fn rows(&self) -> &[(u64, csv::StringRecord)] {
        &self.rows
    }

    /// The header's column names.
    pub(crate) fn headers(&self) -> &[String] {
        &self.headers
    }
}

/// The text of column `col` in `record`.
pub(crate) fn text(record: &csv::StringRecord, col: usize) -> &str {
    record.get(col).unwrap_or("")
}

/// The number in column `col` of `record`; an empty cell or `NaN` is a missing value
/// (NaN, drawn as a gap); anything else that is not a number is an error.
pub(crate) fn number(
    table: &CsvTable,
    line: u64,
    record: &csv::StringRecord,
    col: usize,
) -> Result<f64> {
    let cell = text(record, col);
    if cell.is_empty() {
        return Ok(f64::NAN);
    }
    cell.parse::<f64>().map_err(|_| ReportError::Csv {
        line,
        message: format!(
            "column `{}`: expected a number, got {:?}",
            table.headers[col], cell
        ),
    })
}

fn csv_error(e: &csv::Error, fallback_line: u64) -> ReportError {
    let line = e.position().map_or(fallback_line, |p| p.line());
    let message = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields, found {len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
        _ => e.to_string(),
    };
    ReportError::Csv { line, message }
}
