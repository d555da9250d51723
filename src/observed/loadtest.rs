//! A load test of the CA: a CSV with columns `concurrency` (requests in flight, > 0) and
//! `throughput` (completed requests per second, >= 0), one measurement per row.
//!
//! The header names the columns (any order, case-insensitive, surrounding spaces
//! ignored; other columns are allowed and ignored). Lines starting with `#` are
//! comments; blank lines are skipped. Several rows may share a concurrency (repeated
//! runs). Every error names the file, the line, the column and the value.

use crate::fit::Measurement;

use super::{ObservedError, Result, MAX_ROWS};

/// The column of concurrencies.
pub const CONCURRENCY: &str = "concurrency";
/// The column of throughputs.
pub const THROUGHPUT: &str = "throughput";

/// Parses load-test CSV text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Measurement>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = loop {
        match records.next() {
            None => {
                return Err(ObservedError::new(
                    file,
                    format!("empty: expected a header line \"{CONCURRENCY},{THROUGHPUT}\" and one row per measurement"),
                ))
            }
            Some(Err(e)) => return Err(csv_error(file, &e)),
            Some(Ok(r)) if r.iter().all(str::is_empty) => continue,
            Some(Ok(r)) => break r,
        }
    };
    let header_line = header.position().map_or(1, |p| p.line());
    let names: Vec<String> = header.iter().map(|h| h.to_ascii_lowercase()).collect();
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        if let Some(j) = names[i + 1..].iter().position(|n| n == name) {
            return Err(ObservedError::at_line(
                file,
                header_line,
                format!(
                    "duplicate header: \"{}\" is both column {} and column {}",
                    &header[i],
                    i + 1,
                    i + j + 2
                ),
            ));
        }
    }
    let find = |want: &str| {
        names.iter().position(|n| n == want).ok_or_else(|| {
            ObservedError::at_line(
                file,
                header_line,
                format!(
                    "no column \"{want}\" in the header (found: {}); a load test needs \"{CONCURRENCY},{THROUGHPUT}\"",
                    header.iter().map(|h| format!("\"{h}\"")).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    };
    let (c_n, c_x) = (find(CONCURRENCY)?, find(THROUGHPUT)?);
    let mut out = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(file, &e))?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        let line = record.position().map_or(0, |p| p.line());
        if out.len() == MAX_ROWS {
            return Err(ObservedError::at_line(
                file,
                line,
                format!("more than {MAX_ROWS} measurements; a load test has far fewer"),
            ));
        }
        let cell = |col: usize, name: &str| -> Result<f64> {
            let field = format!("column \"{name}\" (column {})", col + 1);
            let err = |m: String| ObservedError::at_line(file, line, m).field(field.clone());
            let Some(raw) = record.get(col) else {
                return Err(err(format!(
                    "missing: the line has {} field{}",
                    record.len(),
                    if record.len() == 1 { "" } else { "s" }
                )));
            };
            if raw.is_empty() {
                return Err(err("empty".into()));
            }
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(err(format!("{raw:?} is not a finite number"))),
                Err(_) => Err(err(format!("{raw:?} is not a number"))),
            }
        };
        let concurrency = cell(c_n, CONCURRENCY)?;
        if concurrency <= 0.0 {
            return Err(ObservedError::at_line(
                file,
                line,
                format!("must be > 0, got {:?}", record.get(c_n).unwrap_or("")),
            )
            .field(format!("column \"{CONCURRENCY}\" (column {})", c_n + 1)));
        }
        let throughput = cell(c_x, THROUGHPUT)?;
        if throughput < 0.0 {
            return Err(ObservedError::at_line(
                file,
                line,
                format!("must be >= 0, got {:?}", record.get(c_x).unwrap_or("")),
            )
            .field(format!("column \"{THROUGHPUT}\" (column {})", c_x + 1)));
        }
        out.push(Measurement {
            concurrency,
            throughput,
        });
    }
    Ok(out)
}

fn csv_error(file: &str, e: &csv::Error) -> ObservedError {
    // The message without the csv crate's own position prefix.
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("not valid UTF-8 ({err})"),
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields, found {len}"),
        _ => e.to_string(),
    };
    match e.position() {
        Some(p) => ObservedError::at_line(file, p.line(), format!("malformed CSV: {message}")),
        None => ObservedError::new(file, format!("malformed CSV: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse("load.csv", text).unwrap_err().to_string()
    }

    #[test]
    fn reads_measurements_with_comments_spaces_and_extra_columns() {
        let text = "# CA load test, 2024-05-27\nrun, Concurrency , throughput\n\na,1,10.5\nb, 2 ,19\n# repeated\nc,2,19.4\n";
        let m = parse("load.csv", text).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].concurrency, m[0].throughput), (1.0, 10.5));
        assert_eq!((m[2].concurrency, m[2].throughput), (2.0, 19.4));
    }

    #[test]
    fn every_error_names_file_line_column_and_value() {
        assert_eq!(
            err(""),
            "load.csv: empty: expected a header line \"concurrency,throughput\" and one row per measurement"
        );
        assert_eq!(err("# only a comment\n\n"), err(""));
        assert_eq!(
            err("concurrency,tput\n1,2\n"),
            "load.csv:1: no column \"throughput\" in the header (found: \"concurrency\", \"tput\"); a load test needs \"concurrency,throughput\""
        );
        assert_eq!(
            err("concurrency,throughput,concurrency\n1,2,3\n"),
            "load.csv:1: duplicate header: \"concurrency\" is both column 1 and column 3"
        );
        assert_eq!(
            err("concurrency,throughput\n1,2\n4,abc\n"),
            "load.csv:3: column \"throughput\" (column 2): \"abc\" is not a number"
        );
        assert_eq!(
            err("concurrency,throughput\n1,NaN\n"),
            "load.csv:2: column \"throughput\" (column 2): \"NaN\" is not a finite number"
        );
        assert_eq!(
            err("concurrency,throughput\n1,2\n-2,3\n"),
            "load.csv:3: column \"concurrency\" (column 1): must be > 0, got \"-2\""
        );
        assert_eq!(
            err("concurrency,throughput\n1,-0.5\n"),
            "load.csv:2: column \"throughput\" (column 2): must be >= 0, got \"-0.5\""
        );
        assert_eq!(
            err("concurrency,throughput\n1,2\n3\n"),
            "load.csv:3: column \"throughput\" (column 2): missing: the line has 1 field"
        );
        assert_eq!(
            err("concurrency,throughput\n1,\n"),
            "load.csv:2: column \"throughput\" (column 2): empty"
        );
        assert_eq!(
            err("concurrency,throughput\n1,2\nconcurrency,throughput\n"),
            "load.csv:3: column \"concurrency\" (column 1): \"concurrency\" is not a number"
        );
        assert!(err("concurrency,throughput\n\"1,2\n").starts_with("load.csv"));
    }
}
