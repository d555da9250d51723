//! Report layer: charts, figures drawn from CSV text and HTML building blocks.
//!
//! This layer takes plain data (numbers, strings, CSV text) and knows nothing of the
//! simulation model, so every figure can be regenerated from a CSV that was written:
//!
//! - [`plot`]: a small, general [`plot::Chart`] (stacked panels sharing one x axis,
//!   lines, steps, markers, confidence bands, labelled vertical markers) rendered to SVG
//!   text or PNG bytes with a bundled font (DejaVu Sans), byte-for-byte deterministic.
//! - [`figures`]: the fleet timeline from `timeseries.csv` and the failure curve from a
//!   sweep's `curves.csv`.
//! - [`usl`]: the USL fit of a CA load test (`fleetsim ca fit`) from its `usl_fit.csv`.
//! - [`html`]: one self-contained, printable HTML page (inline CSS and SVG).
//! - [`compare`]: the strategy comparison figure from a review's `strategies.csv`.
//! - [`openmetrics`]: a run's time series and summary as OpenMetrics text.
//!
//! It runs nothing: the layers above it ([`crate::sweep`], [`crate::review`]) run the
//! model and hand it the CSV text they wrote.

pub mod compare;
pub mod figures;
pub mod html;
pub mod openmetrics;
pub mod plot;
pub mod usl;

mod table;

pub use figures::{failure_curve_from_csv, timeline_from_csv};

/// What can go wrong when reading report data or drawing a figure. None is fatal to the
/// process: each names the input that was wrong.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The CSV text is malformed or holds a value that is not what its column needs.
    #[error("CSV line {line}: {message}")]
    Csv {
        /// 1-based line number in the CSV text (the header is line 1).
        line: u64,
        /// What is wrong, naming the column and the value.
        message: String,
    },
    /// A column the figure needs is not in the CSV header.
    #[error("CSV has no column `{column}` (columns: {available})")]
    MissingColumn {
        /// The column that was looked for.
        column: String,
        /// The columns the header does have, comma-separated.
        available: String,
    },
    /// The data cannot make this figure (e.g. a highlighted cluster that is not in it).
    #[error("{0}")]
    Data(String),
    /// The chart description is unusable (e.g. an absurd size).
    #[error("invalid chart: {0}")]
    InvalidChart(String),
    /// The bundled font could not be registered with the plotting library.
    #[error("the bundled font could not be registered")]
    Font,
    /// The plotting library failed while drawing.
    #[error("drawing failed: {0}")]
    Draw(String),
    /// PNG encoding failed.
    #[error("PNG encoding failed: {0}")]
    Png(String),
}

/// Result of report operations.
pub type Result<T> = std::result::Result<T, ReportError>;
