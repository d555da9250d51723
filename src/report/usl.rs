//! The USL fit figure of `fleetsim ca fit`, drawn from the `usl_fit.csv` written beside
//! it (STYLE.md rule 12: every figure from a CSV that was written).
//!
//! `usl_fit.csv` has columns `kind,concurrency,throughput`; `kind` is `measured` (a
//! load-test row), `fitted` (a point of the fitted curve) or `peak` (the curve's peak,
//! at most one row). [`usl_fit_csv`] writes it, [`usl_fit_from_csv`] draws it.

use std::fmt::Write as _;

use super::plot::{Chart, Panel, Series, Style, XAxis};
use super::table::{number, text, CsvTable};
use super::{ReportError, Result};

/// Columns of `usl_fit.csv`.
pub const USL_FIT_COLUMNS: [&str; 3] = ["kind", "concurrency", "throughput"];

const BLUE: (u8, u8, u8) = (78, 121, 167);
const RED: (u8, u8, u8) = (214, 39, 40);

/// `usl_fit.csv` text: the measured points, the curve sampled at `curve` (pairs of
/// concurrency and throughput) and the peak, if any. Numbers are written in full
/// precision (shortest round-trip form).
pub fn usl_fit_csv(
    measured: &[(f64, f64)],
    curve: &[(f64, f64)],
    peak: Option<(f64, f64)>,
) -> String {
    let mut out = String::from("kind,concurrency,throughput\n");
    let rows = measured
        .iter()
        .map(|p| ("measured", p))
        .chain(curve.iter().map(|p| ("fitted", p)));
    for (kind, (n, x)) in rows {
        let _ = writeln!(out, "{kind},{n},{x}");
    }
    if let Some((n, x)) = peak {
        let _ = writeln!(out, "peak,{n},{x}");
    }
    out
}

/// The figure: measured throughput as dots, the fitted curve as a line, a vertical
/// marker at the peak concurrency. `title` goes above it; `unit` labels throughput
/// (e.g. `requests/s`).
///
/// Errors: a missing column, a non-numeric cell, or an unknown `kind`.
pub fn usl_fit_from_csv(csv: &str, title: &str, unit: &str) -> Result<Chart> {
    let table = CsvTable::parse(csv)?;
    let cols: Vec<usize> = USL_FIT_COLUMNS
        .iter()
        .map(|c| table.column(c))
        .collect::<Result<_>>()?;
    let (mut measured, mut fitted, mut peak) = (Vec::new(), Vec::new(), None);
    for (line, rec) in table.rows() {
        let n = number(&table, *line, rec, cols[1])?;
        let x = number(&table, *line, rec, cols[2])?;
        match text(rec, cols[0]) {
            "measured" => measured.push((n, x)),
            "fitted" => fitted.push((n, x)),
            "peak" => peak = Some((n, x)),
            other => {
                return Err(ReportError::Csv {
                    line: *line,
                    message: format!(
                        "column `kind`: expected measured, fitted or peak, got {other:?}"
                    ),
                })
            }
        }
    }
    let mut chart = Chart::new(title, "concurrency (requests in flight)", XAxis::Linear).panel(
        Panel::new(format!("throughput ({unit})"))
            .series(
                Series::new("USL fit", fitted)
                    .style(Style::Line)
                    .color(BLUE),
            )
            .series(
                Series::new("measured", measured)
                    .style(Style::Markers)
                    .color(RED),
            ),
    );
    chart.height = Some(560);
    if let Some((n, x)) = peak {
        chart = chart.marker(n, format!("peak: N* = {n:.1}, X = {}", round_sig(x)));
    }
    Ok(chart)
}

/// `x` with 4 significant digits, no exponent for ordinary sizes.
fn round_sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let digits = (3 - x.abs().log10().floor() as i32).max(0) as usize;
    format!("{x:.digits$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_into_a_figure() {
        let csv = usl_fit_csv(
            &[(1.0, 10.0), (2.0, 19.0)],
            &[(0.0, 0.0), (1.0, 10.1), (2.0, 18.9)],
            Some((30.5, 123.456)),
        );
        assert!(csv.starts_with("kind,concurrency,throughput\nmeasured,1,10\n"));
        assert!(csv.ends_with("peak,30.5,123.456\n"));
        let chart = usl_fit_from_csv(&csv, "USL", "requests/s").unwrap();
        assert_eq!(chart.panels[0].series[0].points.len(), 3);
        assert_eq!(chart.panels[0].series[1].points.len(), 2);
        assert_eq!(chart.markers[0].label, "peak: N* = 30.5, X = 123.5");
        let svg = chart.to_svg().unwrap();
        assert!(svg.contains("measured") && svg.contains("USL fit"));
        assert!(chart.to_png().is_ok());
        let e = usl_fit_from_csv("kind,concurrency,throughput\nx,1,2\n", "", "")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "CSV line 2: column `kind`: expected measured, fitted or peak, got \"x\""
        );
    }
}
