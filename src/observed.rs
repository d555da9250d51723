//! Observed data: what a planner measured on the real system, read and compared with
//! what fleetsim simulated.
//!
//! # Layer
//! Above [`metrics`](crate::metrics) (it knows the columns of `timeseries.csv`) and
//! below the layers that run things: it reads text and compares numbers, and never runs
//! a scenario. `fleetsim compare` uses it on a run's files, [`calibrate`](crate::calibrate)
//! (beside the sweep layer) on runs it makes, and `fleetsim ca fit` on a load test.
//!
//! # Formats
//! - [`loadtest`]: a CSV with columns `concurrency,throughput` (a load test of the CA).
//! - [`prometheus`]: the JSON response of Prometheus' `/api/v1/query_range`
//!   (`{"status":"success","data":{"resultType":"matrix","result":[...]}}`), one file per
//!   metric. The several series of one result are summed per timestamp (as PromQL's
//!   `sum` would): aggregate or filter in the query to choose otherwise.
//! - [`timeseries`]: a `timeseries.csv` that fleetsim wrote, the rows of one cluster (or
//!   of the fleet, `*`).
//!
//! # Comparing ([`compare`])
//! Observed timestamps are made relative to `--start` or, without it, to the first
//! sample of all the Prometheus files (a `timeseries.csv` is already in simulated
//! seconds). Observed values are then linearly interpolated onto the simulated sample
//! times that fall within the observed span; nothing is extrapolated.
//!
//! Every error names the file (and line, column or JSON path) or the flag, and the value.

pub mod compare;
pub mod loadtest;
pub mod prometheus;
pub mod timeseries;

use std::fmt;
use std::path::Path;

/// Largest observed file read (bytes): far above any load test or Prometheus response a
/// planner would export, low enough that a wrong file fails fast.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Largest number of data rows or samples read from one file.
pub const MAX_ROWS: usize = 1_000_000;

/// A problem with observed data or with a flag that refers to it. Never fatal to the
/// library: the command line exits 2 with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ObservedError {
    /// Where: `file`, `file:line`, `file:line:column`, or the flag and its value.
    pub place: String,
    /// The field within it (`column "throughput"`, `data.result[0].values[3]`), if any.
    pub field: Option<String>,
    /// What is wrong, with the offending value.
    pub message: String,
}

impl fmt::Display for ObservedError {
    /// `load.csv:5: column "throughput": "abc" is not a number`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.place)?;
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ObservedError {
    /// An error about a whole file or flag.
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            field: None,
            message: message.into(),
        }
    }

    /// An error about a line of a file.
    pub fn at_line(file: &str, line: u64, message: impl Into<String>) -> Self {
        Self::new(format!("{file}:{line}"), message)
    }

    /// The same error about a field of its place.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

/// Result of reading or comparing observed data.
pub type Result<T> = std::result::Result<T, ObservedError>;

/// One named series of `(time_s, value)` points in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// The series' name (a `timeseries.csv` column or a Prometheus metric).
    pub name: String,
    /// Points in non-decreasing time order.
    pub points: Vec<(f64, f64)>,
}

/// Reads a file whole as UTF-8 text, refusing directories, files over
/// [`MAX_FILE_BYTES`] and invalid UTF-8 (naming the line).
pub fn read_text(path: &Path) -> Result<String> {
    let file = path.display().to_string();
    let meta = std::fs::metadata(path)
        .map_err(|e| ObservedError::new(&file, format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(ObservedError::new(&file, "is a directory, not a file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ObservedError::new(
            &file,
            format!(
                "file is {} bytes; observed data files are limited to {MAX_FILE_BYTES} bytes",
                meta.len()
            ),
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| ObservedError::new(&file, format!("cannot read: {e}")))?;
    text_from_bytes(&file, bytes)
}

/// UTF-8 text from bytes, or an error naming the line of the first bad byte.
pub fn text_from_bytes(file: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let byte = e.as_bytes()[good.len()];
        ObservedError::at_line(file, line, format!("not valid UTF-8 (byte 0x{byte:02x})"))
    })
}

/// The file name without directory and extension (`metrics/ca_queue.json` -> `ca_queue`).
pub fn file_stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Parses a point in time: Unix seconds (`1716796800`, `1716796800.5`) or RFC 3339
/// (`2024-05-27T08:00:00Z`, `2024-05-27T10:00:00.250+02:00`). Returns Unix seconds.
pub fn parse_timestamp(text: &str) -> std::result::Result<f64, String> {
    let s = text.trim();
    if let Ok(v) = s.parse::<f64>() {
        return if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("{s:?} is not a finite number of seconds"))
        };
    }
    crate::numfmt::parse_rfc3339(s).ok_or_else(|| {
        format!("{s:?} is neither Unix seconds nor an RFC 3339 time such as 2024-05-27T08:00:00Z")
    })
}

/// Unix seconds as RFC 3339 in UTC (`2024-05-27T08:00:00Z`, milliseconds when not whole).
pub fn format_timestamp(unix_s: f64) -> String {
    if !unix_s.is_finite() {
        return format!("{unix_s}");
    }
    let ms = (unix_s * 1000.0).round() as i64;
    let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::numfmt::civil_from_days(days);
    let (h, mi, sec) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let frac = if milli == 0 {
        String::new()
    } else {
        format!(".{milli:03}")
    };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1716796800"), Ok(1716796800.0));
        assert_eq!(parse_timestamp(" 12.5 "), Ok(12.5));
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(parse_timestamp("2024-05-27T08:00:00Z"), Ok(1716796800.0));
        assert_eq!(
            parse_timestamp("2024-05-27T10:00:00.25+02:00"),
            Ok(1716796800.25)
        );
        assert_eq!(parse_timestamp("2000-03-01T00:00:00Z"), Ok(951868800.0));
        for bad in [
            "",
            "nan",
            "inf",
            "2024-05-27",
            "2024-13-01T00:00:00Z",
            "2024-05-27T08:00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_place_field_and_value() {
        let e = ObservedError::at_line("load.csv", 5, "\"abc\" is not a number")
            .field("column \"throughput\"");
        assert_eq!(
            e.to_string(),
            "load.csv:5: column \"throughput\": \"abc\" is not a number"
        );
        let e = text_from_bytes("x.csv", b"a\nb\xff\n".to_vec()).unwrap_err();
        assert_eq!(e.to_string(), "x.csv:2: not valid UTF-8 (byte 0xff)");
    }
}
