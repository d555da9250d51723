//! The strategy comparison figure, drawn from a review's `strategies.csv`: one row per
//! strategy, its failure probability with the 95 % Wilson interval against the threshold
//! on the left, the affected clusters' time to recover (median bar, p95 whisker) on the
//! right (the figure the recommendation is judged on first; see [`crate::review`]).
//!
//! Plain SVG text (no plotting library): a dot-and-whisker chart whose rows are labelled
//! by name, which the panel charts of [`plot`](super::plot) (numeric x axes) do not
//! draw. Deterministic: the same CSV gives the same bytes.

use std::fmt::Write as _;

use super::html::escape;
use super::table::{number, text, CsvTable};
use super::{ReportError, Result};

/// Columns the figure reads from `strategies.csv`.
pub const COMPARISON_COLUMNS: [&str; 8] = [
    "strategy",
    "failure_p",
    "failure_lo",
    "failure_hi",
    "affected_time_to_recover_s_p50",
    "affected_time_to_recover_s_p95",
    "qualifies",
    "recommended",
];

const WIDTH: f64 = 1100.0;
const ROW: f64 = 34.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 46.0;
const GAP: f64 = 48.0;
const RIGHT: f64 = 24.0;
const FONT: &str = "DejaVu Sans, sans-serif";
const GREEN: &str = "#2b7a3d";
const RED: &str = "#b02a2a";
const GREY: &str = "#8c8c8c";
const BLUE: &str = "#4e79a7";
const GRID: &str = "#e3e5e8";

struct Row {
    name: String,
    p: f64,
    lo: f64,
    hi: f64,
    ttr_p50: f64,
    ttr_p95: f64,
    qualifies: bool,
    recommended: bool,
}

/// The comparison figure as SVG text, from `strategies.csv` text holding at least
/// [`COMPARISON_COLUMNS`] (times in seconds, `inf` for never; `qualifies` and
/// `recommended` as 0/1). `threshold` is drawn as a dashed line on the probability panel.
///
/// Errors: a missing column, a cell that is not a number, no rows, or a threshold
/// outside [0, 1].
pub fn strategy_comparison_from_csv(csv: &str, threshold: f64) -> Result<String> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ReportError::Data(format!(
            "threshold must be in [0, 1], got {threshold}"
        )));
    }
    let table = CsvTable::parse(csv)?;
    let cols: Vec<usize> = COMPARISON_COLUMNS
        .iter()
        .map(|c| table.column(c))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (line, rec) in table.rows() {
        let num = |i: usize| number(&table, *line, rec, cols[i]);
        let flag = |i: usize| -> Result<bool> {
            match text(rec, cols[i]) {
                "1" | "true" => Ok(true),
                "0" | "false" | "" => Ok(false),
                other => Err(ReportError::Csv {
                    line: *line,
                    message: format!(
                        "column `{}`: expected 0 or 1, got {other:?}",
                        COMPARISON_COLUMNS[i]
                    ),
                }),
            }
        };
        rows.push(Row {
            name: text(rec, cols[0]).to_string(),
            p: num(1)?,
            lo: num(2)?,
            hi: num(3)?,
            ttr_p50: num(4)?,
            ttr_p95: num(5)?,
            qualifies: flag(6)?,
            recommended: flag(7)?,
        });
    }
    if rows.is_empty() {
        return Err(ReportError::Data("strategies.csv has no rows".into()));
    }

    // Layout: a label column sized to the longest name, then two panels.
    let longest = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    let label_w = (longest as f64 * 7.6 + 28.0).clamp(110.0, 280.0);
    let panel_w = (WIDTH - label_w - GAP - RIGHT) / 2.0;
    let (p_x0, t_x0) = (label_w, label_w + panel_w + GAP);
    let height = TOP + ROW * rows.len() as f64 + BOTTOM;
    let plot_bottom = TOP + ROW * rows.len() as f64;

    // Time axis in minutes: up to the largest finite p95 (or p50), rounded up to a nice step.
    let finite_max = rows
        .iter()
        .flat_map(|r| [r.ttr_p50, r.ttr_p95])
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        / 60.0;
    // Bars take at most ~60 % of the panel, leaving room for their labels.
    let span = finite_max.max(1.0) / 0.6;
    let step = nice_step(span / 5.0);
    let t_max = (span / step).ceil().max(1.0) * step;
    let px = |p: f64| p_x0 + p.clamp(0.0, 1.0) * panel_w;
    let tx = |min: f64| t_x0 + (min / t_max).clamp(0.0, 1.0) * panel_w;

    let mut s = String::with_capacity(4096 + rows.len() * 900);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="13">"#
    );
    let _ = writeln!(
        s,
        "<title>Strategies compared: failure probability and time to recover</title>"
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{p_x0}" y="22" font-size="15" font-weight="bold">P(failure), 95 % Wilson interval</text>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{t_x0}" y="22" font-size="15" font-weight="bold">Affected clusters' time to recover: median, p95</text>"#
    );

    // Grids and axes.
    for k in 0..=4 {
        let p = k as f64 / 4.0;
        let x = px(p);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{plot_bottom}" stroke="{GRID}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="rgb(68,68,68)">{}</text>"#,
            plot_bottom + 18.0,
            trim_num(p)
        );
    }
    let mut m = 0.0;
    while m <= t_max + 1e-9 {
        let x = tx(m);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{plot_bottom}" stroke="{GRID}"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="rgb(68,68,68)">{}</text>"#,
            plot_bottom + 18.0,
            trim_num(m)
        );
        m += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="rgb(68,68,68)">probability that a run fails</text>"#,
        p_x0 + panel_w / 2.0,
        plot_bottom + 38.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="rgb(68,68,68)">minutes from the start</text>"#,
        t_x0 + panel_w / 2.0,
        plot_bottom + 38.0
    );

    for (i, r) in rows.iter().enumerate() {
        let y = TOP + ROW * (i as f64 + 0.5);
        if r.recommended {
            let _ = writeln!(
                s,
                r##"<rect x="2" y="{:.1}" width="{:.1}" height="{ROW}" fill="#eef7f0" stroke="{GREEN}" stroke-width="1"/>"##,
                y - ROW / 2.0,
                WIDTH - 4.0
            );
        }
        let weight = if r.recommended { "bold" } else { "normal" };
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-weight="{weight}">{}</text>"#,
            label_w - 12.0,
            y + 4.5,
            escape(&r.name)
        );
        let color = if r.qualifies { GREEN } else { RED };
        if r.lo.is_finite() && r.hi.is_finite() {
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2.5"/>"#,
                px(r.lo),
                px(r.hi)
            );
            for end in [r.lo, r.hi] {
                let _ = writeln!(
                    s,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/>"#,
                    y - 6.0,
                    y + 6.0,
                    x = px(end)
                );
            }
        }
        if r.p.is_finite() {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="5.5" fill="{color}"/>"#,
                px(r.p)
            );
        }
        // Time to recover: bar to the median, whisker to p95; never = an arrow off the axis.
        let bar_h = 14.0;
        if r.ttr_p50.is_finite() {
            let _ = writeln!(
                s,
                r#"<rect x="{t_x0:.1}" y="{:.1}" width="{:.1}" height="{bar_h}" fill="{BLUE}" fill-opacity="0.75"/>"#,
                y - bar_h / 2.0,
                (tx(r.ttr_p50 / 60.0) - t_x0).max(1.0)
            );
            let end = if r.ttr_p95.is_finite() {
                tx(r.ttr_p95 / 60.0)
            } else {
                t_x0 + panel_w
            };
            let _ = writeln!(
                s,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{end:.1}" y2="{y:.1}" stroke="rgb(51,51,51)" stroke-width="1.5"/>"#,
                tx(r.ttr_p50 / 60.0)
            );
            let label = if r.ttr_p95.is_finite() {
                format!("{} (p95 {})", minutes(r.ttr_p50), minutes(r.ttr_p95))
            } else {
                format!("{} (p95 never)", minutes(r.ttr_p50))
            };
            let (lx, anchor) = if end + 8.0 + label.len() as f64 * 7.0 < WIDTH - 4.0 {
                (end + 8.0, "start")
            } else {
                (t_x0 + 6.0, "start")
            };
            let _ = writeln!(
                s,
                r#"<text x="{lx:.1}" y="{:.1}" text-anchor="{anchor}" font-size="12" fill="rgb(34,34,34)">{}</text>"#,
                y + 4.0,
                escape(&label)
            );
        } else {
            let _ = writeln!(
                s,
                r#"<rect x="{t_x0:.1}" y="{:.1}" width="{panel_w:.1}" height="{bar_h}" fill="{GREY}" fill-opacity="0.25"/><text x="{:.1}" y="{:.1}" font-size="12" fill="{RED}">median: never recovers</text>"#,
                y - bar_h / 2.0,
                t_x0 + 8.0,
                y + 4.0
            );
        }
    }

    // The threshold, over the rows.
    let x = px(threshold);
    let _ = writeln!(
        s,
        r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{plot_bottom}" stroke="{RED}" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" font-size="12" fill="{RED}">threshold {}</text>"#,
        TOP - 14.0,
        x + 5.0,
        TOP - 4.0,
        trim_num(threshold)
    );
    let _ = writeln!(
        s,
        r#"<line x1="{p_x0}" y1="{plot_bottom}" x2="{:.1}" y2="{plot_bottom}" stroke="rgb(68,68,68)"/><line x1="{t_x0}" y1="{plot_bottom}" x2="{:.1}" y2="{plot_bottom}" stroke="rgb(68,68,68)"/>"#,
        p_x0 + panel_w,
        t_x0 + panel_w
    );
    s.push_str("</svg>\n");
    Ok(s)
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|k| k * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
}

fn trim_num(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn minutes(secs: f64) -> String {
    crate::duration::format_seconds(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "strategy,failure_p,failure_lo,failure_hi,affected_time_to_recover_s_p50,affected_time_to_recover_s_p95,qualifies,recommended,extra\n\
        as written,1,0.72,1,inf,inf,0,0,x\n\
        token-bucket,0,0,0.049,2102.5,2120,1,1,y\n\
        <evil>,0.1,0.02,0.4,2500,inf,0,0,z\n";

    #[test]
    fn draws_every_row_and_the_threshold() {
        let svg = strategy_comparison_from_csv(CSV, 0.05).unwrap();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">as written</text>"));
        assert!(svg.contains("font-weight=\"bold\">token-bucket</text>"));
        assert!(svg.contains("&lt;evil&gt;") && !svg.contains("<evil>"));
        assert!(svg.contains("threshold 0.05"));
        assert!(svg.contains("median: never recovers"));
        assert!(svg.contains("35m03s (p95 35m20s)"));
        assert!(svg.contains("41m40s (p95 never)"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg, strategy_comparison_from_csv(CSV, 0.05).unwrap());
    }

    #[test]
    fn bad_input_is_an_error() {
        let missing = strategy_comparison_from_csv("strategy,failure_p\na,0\n", 0.05);
        assert!(matches!(missing, Err(ReportError::MissingColumn { .. })));
        let header = CSV.lines().next().unwrap();
        let e = strategy_comparison_from_csv(&format!("{header}\n"), 0.05).unwrap_err();
        assert!(e.to_string().contains("no rows"), "{e}");
        let bad = CSV.replace("0.72", "lots");
        let e = strategy_comparison_from_csv(&bad, 0.05).unwrap_err();
        assert!(
            e.to_string().contains("line 2") && e.to_string().contains("failure_lo"),
            "{e}"
        );
        let bad = CSV.replace(",0,0,x", ",0,yes,x");
        let e = strategy_comparison_from_csv(&bad, 0.05).unwrap_err();
        assert!(e.to_string().contains("expected 0 or 1"), "{e}");
        assert!(strategy_comparison_from_csv(CSV, 1.5).is_err());
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(12.0), 20.0);
    }
}
