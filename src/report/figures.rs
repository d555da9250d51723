//! The two standard figures, each drawn from CSV text so any figure can be regenerated
//! from the CSV written beside it.
//!
//! - [`timeline_from_csv`]: the fleet timeline from `timeseries.csv`.
//! - [`failure_curve_from_csv`]: failure probability against a swept parameter from a
//!   sweep's `curves.csv`.
//!
//! Both return a [`Chart`] whose fields the caller may still adjust (add markers for
//! interventions, switch the x axis to log, resize) before rendering it.

use std::collections::BTreeMap;

use super::plot::{Chart, Panel, Series, Style, XAxis};
use super::table::{number, text, CsvTable};
use super::{ReportError, Result};

/// The columns of `timeseries.csv`, in the order the model writes them.
pub const TIMESERIES_COLUMNS: [&str; 13] = [
    "time_s",
    "cluster",
    "pods_ready",
    "pods_pending",
    "pods_backoff",
    "pods_desired",
    "nodes_old",
    "nodes_new",
    "istiod_ready",
    "ca_queue",
    "ca_utilization",
    "csr_in_flight",
    "csr_failed_objects",
];

/// The cluster name of the fleet-total rows in `timeseries.csv`.
pub const FLEET_TOTAL: &str = "*";

const GREEN: (u8, u8, u8) = (89, 161, 79);
const GREY: (u8, u8, u8) = (140, 140, 140);
const ORANGE: (u8, u8, u8) = (242, 142, 43);
const RED: (u8, u8, u8) = (214, 39, 40);
const BLUE: (u8, u8, u8) = (78, 121, 167);
const LIGHT_BLUE: (u8, u8, u8) = (160, 203, 232);
const TEAL: (u8, u8, u8) = (118, 183, 178);
const PURPLE: (u8, u8, u8) = (176, 122, 161);
/// Colours of highlighted clusters, distinct from the fleet series they share a panel with.
const HIGHLIGHT: [(u8, u8, u8); 6] = [
    (176, 122, 161),
    (156, 117, 95),
    (78, 121, 167),
    (237, 201, 72),
    (255, 157, 167),
    (118, 183, 178),
];

/// One dashed line per highlighted cluster, `"{label}: {name}"`, in its highlight colour.
fn with_highlights(
    mut panel: Panel,
    label: &str,
    highlight: &[String],
    points: Vec<Vec<(f64, f64)>>,
) -> Panel {
    for (k, (name, points)) in highlight.iter().zip(points).enumerate() {
        panel = panel.series(
            Series::new(format!("{label}: {name}"), points)
                .style(Style::Dashed)
                .color(HIGHLIGHT[k % HIGHLIGHT.len()]),
        );
    }
    panel
}

/// The fleet timeline from `timeseries.csv` text.
///
/// Input: a header naming at least [`TIMESERIES_COLUMNS`] (any order, extra columns
/// ignored) and one row per cluster per sample time, plus rows whose `cluster` is
/// [`FLEET_TOTAL`] holding the fleet totals (`ca_queue` summed over CAs,
/// `ca_utilization` in [0, 1]). Empty cells are missing values (gaps).
///
/// Output: six stacked panels over time in minutes, drawn from the fleet-total rows:
/// pods ready (with desired), pods pending and in CrashLoopBackOff (plus one line per
/// `highlight`ed cluster's pods in backoff, dashed), nodes on the old and new AMI, istiod
/// ready replicas (fleet, and each highlighted cluster's, dashed), the CA (queue and CSRs
/// in flight, utilisation in % on the right axis), and failed CSR objects.
///
/// Errors: a missing column, a non-numeric cell, no fleet-total rows, or a highlighted
/// cluster that is not in the CSV.
pub fn timeline_from_csv(csv: &str, highlight: &[String]) -> Result<Chart> {
    let table = CsvTable::parse(csv)?;
    let cols: Vec<usize> = TIMESERIES_COLUMNS
        .iter()
        .map(|c| table.column(c))
        .collect::<Result<_>>()?;
    let col = |name: &str| {
        cols[TIMESERIES_COLUMNS
            .iter()
            .position(|c| *c == name)
            .unwrap_or(0)]
    };
    let (c_time, c_cluster) = (col("time_s"), col("cluster"));

    // Fleet totals: every numeric column as a series over time; highlighted clusters'
    // pods in backoff.
    let numeric: Vec<&str> = TIMESERIES_COLUMNS[2..].to_vec();
    let mut fleet: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    let mut highlighted: Vec<Vec<(f64, f64)>> = vec![Vec::new(); highlight.len()];
    let mut highlighted_istiod: Vec<Vec<(f64, f64)>> = vec![Vec::new(); highlight.len()];
    let mut seen = vec![false; highlight.len()];
    for (line, record) in table.rows() {
        let t = number(&table, *line, record, c_time)?;
        let cluster = text(record, c_cluster);
        if cluster == FLEET_TOTAL {
            for name in &numeric {
                let v = number(&table, *line, record, col(name))?;
                fleet.entry(name).or_default().push((t, v));
            }
        }
        for (k, h) in highlight.iter().enumerate() {
            if cluster == h {
                seen[k] = true;
                let v = number(&table, *line, record, col("pods_backoff"))?;
                highlighted[k].push((t, v));
                let v = number(&table, *line, record, col("istiod_ready"))?;
                highlighted_istiod[k].push((t, v));
            }
        }
    }
    if fleet.is_empty() {
        return Err(ReportError::Data(format!(
            "timeseries has no fleet-total rows (cluster `{FLEET_TOTAL}`)"
        )));
    }
    if let Some(k) = seen.iter().position(|s| !s) {
        return Err(ReportError::Data(format!(
            "highlighted cluster `{}` is not in the timeseries",
            highlight[k]
        )));
    }
    let series = |name: &str| fleet.get(name).cloned().unwrap_or_default();
    let percent: Vec<(f64, f64)> = series("ca_utilization")
        .into_iter()
        .map(|(t, u)| (t, u * 100.0))
        .collect();

    let waiting = Panel::new("Pods pending and in CrashLoopBackOff")
        .series(
            Series::new("pending", series("pods_pending"))
                .style(Style::Step)
                .color(ORANGE),
        )
        .series(
            Series::new("in backoff (fleet)", series("pods_backoff"))
                .style(Style::Step)
                .color(RED),
        );
    let waiting = with_highlights(waiting, "in backoff", highlight, highlighted);
    // The fleet's total hides one cluster's istiod falling to 0 (no webhook endpoint).
    let istiod = Panel::new("istiod replicas ready").series(
        Series::new("istiod ready (fleet)", series("istiod_ready"))
            .style(Style::Step)
            .color(PURPLE),
    );
    let istiod = with_highlights(istiod, "istiod ready", highlight, highlighted_istiod);

    Ok(
        Chart::new("Fleet timeline", "time since start", XAxis::Seconds)
            .panel(ready_panel(series("pods_ready"), series("pods_desired")))
            .panel(waiting)
            .panel(
                Panel::new("Nodes by AMI")
                    .series(
                        Series::new("old AMI", series("nodes_old"))
                            .style(Style::Step)
                            .color(LIGHT_BLUE),
                    )
                    .series(
                        Series::new("new AMI", series("nodes_new"))
                            .style(Style::Step)
                            .color(BLUE),
                    ),
            )
            .panel(istiod)
            .panel(
                Panel::new("Certificate authority")
                    // CSRs in flight first, so the CA queue (often the same count) is
                    // drawn over it, dashed, and both stay visible.
                    .series(
                        Series::new("CSRs in flight", series("csr_in_flight"))
                            .style(Style::Step)
                            .color(TEAL),
                    )
                    .series(
                        Series::new("CA queue (requests)", series("ca_queue"))
                            .style(Style::Dashed)
                            .color(BLUE),
                    )
                    .series(
                        Series::new("CA utilization %", percent)
                            .right_axis()
                            .color(ORANGE),
                    )
                    .y2("utilization %", Some((0.0, 100.0))),
            )
            .panel(
                Panel::new("Failed CSR objects").series(
                    Series::new("failed CSR objects", series("csr_failed_objects"))
                        .style(Style::Step)
                        .color(RED),
                ),
            ),
    )
}

/// The "Pods ready" panel. Its y axis starts near the lowest value rather than at 0, so a
/// dip to 80 % of 3 600 pods is not flattened into the top of the panel; the heading says
/// where the axis starts when it is not 0.
fn ready_panel(ready: Vec<(f64, f64)>, desired: Vec<(f64, f64)>) -> Panel {
    let finite = |v: &[(f64, f64)]| -> Vec<f64> {
        v.iter().map(|p| p.1).filter(|y| y.is_finite()).collect()
    };
    let lo = finite(&ready)
        .into_iter()
        .chain(finite(&desired))
        .fold(f64::INFINITY, f64::min);
    let hi = finite(&ready)
        .into_iter()
        .chain(finite(&desired))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut panel = Panel::new("Pods ready");
    if lo.is_finite() && hi > 0.0 && lo > 0.2 * hi {
        // Leave a tenth of the span below the lowest value, on a round number.
        let span = (hi - lo).max(hi * 0.02);
        let step = 10f64.powf((span / 5.0).log10().floor());
        let bottom = (((lo - 0.1 * span) / step).floor() * step).max(0.0);
        let top = ((hi + 0.05 * span) / step).ceil() * step;
        panel = Panel::new(format!("Pods ready (axis from {})", bottom)).y_range(bottom, top);
    }
    panel
        .series(Series::new("ready", ready).style(Style::Step).color(GREEN))
        .series(
            Series::new("desired", desired)
                .style(Style::Dashed)
                .color(GREY),
        )
}

/// Whether a swept parameter's values read better on a log axis: all positive and
/// spanning a factor of 10 or more (1, 2, 4 … 40 replicas).
pub fn wants_log_axis(xs: &[f64]) -> bool {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    lo > 0.0 && hi.is_finite() && hi / lo >= 10.0
}

/// An axis label for a dotted scenario path: the key in words with its unit, then where
/// it is (`cluster.payments.istiod.replicas` -> `istiod replicas (cluster payments)`,
/// `ca.pca.rate_limit_per_s` -> `rate limit (per s) (ca pca)`); other names as they are.
pub fn axis_label(path: &str) -> String {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.len() < 2 {
        return path.replace('_', " ");
    }
    let key = parts[parts.len() - 1];
    let (words, unit) = if let Some(k) = key.strip_suffix("_per_s") {
        (k.replace('_', " "), Some("per s"))
    } else if let Some(k) = key.strip_suffix("_percent") {
        (k.replace('_', " "), Some("%"))
    } else if let Some(k) = key.strip_suffix("_s") {
        (k.replace('_', " "), Some("s"))
    } else {
        (key.replace('_', " "), None)
    };
    // The section the key is in (`istiod`, `agent`, `rollout`) reads as part of its name.
    let (section, place) = match parts.as_slice() {
        ["cluster", name, section, _] => (Some(*section), Some(format!("cluster {name}"))),
        ["cluster", name, _] => (None, Some(format!("cluster {name}"))),
        ["ca", name, _] => (None, Some(format!("CA {name}"))),
        [section, _] => (Some(*section), None),
        _ => (None, Some(parts[..parts.len() - 1].join(" "))),
    };
    let mut label = match section {
        Some(sec) if !words.starts_with(sec) => format!("{sec} {words}"),
        _ => words,
    };
    if let Some(u) = unit {
        label.push_str(&format!(" ({u})"));
    }
    if let Some(p) = place {
        label.push_str(&format!(", {p}"));
    }
    label
}

/// Adds the threshold `max_failure_p` to a failure curve: a dashed grey line across the
/// points' x range, named in the legend.
pub fn add_threshold(chart: &mut Chart, max_p: f64) {
    let Some(panel) = chart.panels.first_mut() else {
        return;
    };
    let xs: Vec<f64> = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .filter(|x| x.is_finite() && (chart.x_axis != XAxis::Log || *x > 0.0))
        .collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !(lo.is_finite() && hi.is_finite() && max_p.is_finite()) {
        return;
    }
    panel.series.push(
        Series::new(
            format!("max_failure_p = {max_p}"),
            vec![(lo, max_p), (hi, max_p)],
        )
        .style(Style::Dashed)
        .color(GREY),
    );
}

/// Failure probability against a swept parameter, from a sweep's `curves.csv` text.
///
/// Input: one row per grid point with numeric columns `x_column`, `failure_p`,
/// `failure_lo` and `failure_hi` (the 95 % Wilson interval), and the group column(s).
/// `group_column` names the column whose value makes one line per group (e.g.
/// `strategy`); several columns may be given separated by commas (the line is named by
/// their values joined with " / "), and an empty string draws one line. Groups keep the
/// order in which they first appear; points are sorted by x.
///
/// Output: one line with markers per group and its interval as a translucent band, y in
/// [0, 1]; the legend names the group key (`replicas = 4`) unless it is `strategy`;
/// curves identical point for point are one line named `a = b`; the x axis is log when
/// [`wants_log_axis`], labelled by [`axis_label`]. Add the threshold with
/// [`add_threshold`].
///
/// Errors: a missing column, a non-numeric cell, or two rows of one group at the same x
/// (another swept parameter that should be part of the group).
pub fn failure_curve_from_csv(csv: &str, x_column: &str, group_column: &str) -> Result<Chart> {
    let table = CsvTable::parse(csv)?;
    let c_x = table.column(x_column)?;
    let c_p = table.column("failure_p")?;
    let c_lo = table.column("failure_lo")?;
    let c_hi = table.column("failure_hi")?;
    let c_groups: Vec<usize> = group_column
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(|g| table.column(g))
        .collect::<Result<_>>()?;

    // Groups in order of first appearance.
    let mut groups: Vec<(String, Vec<CurveRow>)> = Vec::new();
    for (line, record) in table.rows() {
        let name = if c_groups.is_empty() {
            "failure probability".to_string()
        } else {
            c_groups
                .iter()
                .map(|&c| text(record, c))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let row = CurveRow {
            x: number(&table, *line, record, c_x)?,
            p: number(&table, *line, record, c_p)?,
            lo: number(&table, *line, record, c_lo)?,
            hi: number(&table, *line, record, c_hi)?,
            line: *line,
        };
        match groups.iter_mut().find(|(g, _)| *g == name) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((name, vec![row])),
        }
    }

    let group_label = c_groups
        .iter()
        .filter_map(|&c| table.headers().get(c).map(String::as_str))
        .collect::<Vec<_>>()
        .join(" / ");
    let mut panel = Panel::new("Failure probability (95 % Wilson interval)").y_range(0.0, 1.0);
    // The legend names the key of a group (`ca_wait_timeout = 10s`), but for strategies,
    // whose names say what they are.
    let keyed = |name: &str| -> String {
        if c_groups.is_empty() || group_label == "strategy" {
            return name.to_string();
        }
        let keys: Vec<String> = c_groups
            .iter()
            .filter_map(|&c| table.headers().get(c))
            .map(|h| h.rsplit('.').next().unwrap_or(h).to_string())
            .collect();
        keys.iter()
            .zip(name.split(" / "))
            .map(|(k, v)| format!("{k} = {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Curves that are the same point for point are drawn once, named together: one drawn
    // over the other would hide it.
    type Curve = (String, Vec<(f64, f64)>, Vec<(f64, f64, f64)>);
    let mut drawn: Vec<Curve> = Vec::new();
    let mut all_x = Vec::new();
    for (name, mut rows) in groups {
        rows.sort_by(|a, b| a.x.total_cmp(&b.x));
        if let Some(w) = rows.windows(2).find(|w| w[0].x == w[1].x) {
            return Err(ReportError::Data(format!(
                "lines {} and {}: two rows of group `{name}` at {x_column} = {}; \
                 add the other swept column to the group columns",
                w[0].line, w[1].line, w[0].x
            )));
        }
        let points: Vec<(f64, f64)> = rows.iter().map(|r| (r.x, r.p)).collect();
        let band: Vec<(f64, f64, f64)> = rows.iter().map(|r| (r.x, r.lo, r.hi)).collect();
        all_x.extend(rows.iter().map(|r| r.x));
        let label = keyed(&name);
        match drawn.iter_mut().find(|d| d.1 == points && d.2 == band) {
            Some(d) => d.0 = format!("{} = {label}", d.0),
            None => drawn.push((label, points, band)),
        }
    }
    for (name, points, band) in drawn {
        panel = panel.series(
            Series::new(name, points)
                .band(band)
                .style(Style::LineMarkers),
        );
    }
    let title = if group_label.is_empty() {
        format!("Failure probability by {}", axis_label(x_column))
    } else {
        format!(
            "Failure probability by {} and {}",
            axis_label(x_column),
            axis_label(&group_label)
        )
    };
    let axis = if wants_log_axis(&all_x) {
        XAxis::Log
    } else {
        XAxis::Linear
    };
    Ok(Chart::new(title, axis_label(x_column), axis).panel(panel))
}

/// One grid point of a failure curve, with its CSV line for error messages.
struct CurveRow {
    x: f64,
    p: f64,
    lo: f64,
    hi: f64,
    line: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMESERIES: &str = include_str!("../../tests/data/timeseries.csv");
    const CURVES: &str = include_str!("../../tests/data/curves.csv");

    fn highlight() -> Vec<String> {
        vec!["payments-prod".to_string()]
    }

    #[test]
    fn timeline_names_every_series() {
        let chart = timeline_from_csv(TIMESERIES, &highlight()).unwrap();
        let svg = chart.to_svg().unwrap();
        for panel in &chart.panels {
            for s in &panel.series {
                let name = s.name.replace('&', "&amp;").replace('<', "&lt;");
                assert!(svg.contains(&name), "SVG lacks series {name}");
                assert!(!s.points.is_empty(), "series {} is empty", s.name);
            }
        }
        assert!(svg.contains("in backoff: payments-prod"));
        assert!(svg.contains("istiod ready: payments-prod"));
    }

    #[test]
    fn timeline_png_decodes_with_the_chart_size() {
        let chart = timeline_from_csv(TIMESERIES, &highlight()).unwrap();
        let bytes = chart.to_png().unwrap();
        let reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        assert_eq!((reader.info().width, reader.info().height), chart.size());
    }

    #[test]
    fn timeline_is_deterministic() {
        let a = timeline_from_csv(TIMESERIES, &highlight()).unwrap();
        let b = timeline_from_csv(TIMESERIES, &highlight()).unwrap();
        assert_eq!(a.to_svg().unwrap(), b.to_svg().unwrap());
        assert_eq!(a.to_png().unwrap(), b.to_png().unwrap());
    }

    #[test]
    fn timeline_rejects_bad_input() {
        let unknown = timeline_from_csv(TIMESERIES, &["nope".to_string()]);
        assert!(matches!(unknown, Err(ReportError::Data(m)) if m.contains("nope")));
        let missing = timeline_from_csv("time_s,cluster\n0,*\n", &[]);
        assert!(
            matches!(missing, Err(ReportError::MissingColumn { column, .. }) if column == "pods_ready")
        );
        let header = TIMESERIES_COLUMNS.join(",");
        let no_fleet = format!("{header}\n0,a,1,0,0,1,1,0,1,0,0.5,0,0\n");
        assert!(matches!(
            timeline_from_csv(&no_fleet, &[]),
            Err(ReportError::Data(_))
        ));
        let bad = format!("{header}\n0,*,1,0,0,1,1,0,1,0,lots,0,0\n");
        match timeline_from_csv(&bad, &[]) {
            Err(ReportError::Csv { line, message }) => {
                assert_eq!(line, 2);
                assert!(message.contains("ca_utilization") && message.contains("lots"));
            }
            other => panic!("expected a CSV error, got {other:?}"),
        }
        let ragged = format!("{header}\n0,*,1\n");
        assert!(matches!(
            timeline_from_csv(&ragged, &[]),
            Err(ReportError::Csv { line: 2, .. })
        ));
        assert!(timeline_from_csv("", &[]).is_err());
    }

    #[test]
    fn timeline_with_gaps_renders() {
        let header = TIMESERIES_COLUMNS.join(",");
        let csv = format!("{header}\n0,*,1,,0,1,1,0,1,0,NaN,0,0\n10,*,2,0,0,1,,1,1,0,0.5,0,0\n");
        let chart = timeline_from_csv(&csv, &[]).unwrap();
        assert!(chart.to_svg().is_ok() && chart.to_png().is_ok());
    }

    #[test]
    fn failure_curve_has_a_line_and_band_per_group() {
        let chart = failure_curve_from_csv(CURVES, "ca_rate_per_s", "strategy").unwrap();
        let panel = &chart.panels[0];
        let names: Vec<&str> = panel.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "all-at-once",
                "fixed-batches",
                "token-bucket",
                "adaptive-aimd"
            ]
        );
        assert!(panel.series.iter().all(|s| s.band.is_some()));
        let svg = chart.to_svg().unwrap();
        for n in names {
            assert!(svg.contains(n), "SVG lacks {n}");
        }
        let bytes = chart.to_png().unwrap();
        let reader = png::Decoder::new(std::io::Cursor::new(bytes))
            .read_info()
            .unwrap();
        assert_eq!((reader.info().width, reader.info().height), chart.size());
        assert_eq!(chart.to_svg().unwrap(), svg);
    }

    #[test]
    fn axis_labels_units_log_axes_and_the_threshold() {
        assert_eq!(
            axis_label("cluster.payments.istiod.replicas"),
            "istiod replicas, cluster payments"
        );
        assert_eq!(
            axis_label("ca.pca-payments.rate_limit_per_s"),
            "rate limit (per s), CA pca-payments"
        );
        assert_eq!(axis_label("rollout.rate_per_s"), "rollout rate (per s)");
        assert_eq!(axis_label("x"), "x");
        assert!(wants_log_axis(&[1.0, 2.0, 4.0, 40.0]));
        assert!(!wants_log_axis(&[2.0, 4.0, 6.0, 8.0]));
        assert!(!wants_log_axis(&[0.0, 100.0]));
        let csv = "r,t,failure_p,failure_lo,failure_hi\n1,10s,1,0.8,1\n40,10s,1,0.8,1\n\
                   1,15s,0,0,0.2\n40,15s,0.5,0.3,0.7\n1,20s,0,0,0.2\n40,20s,0.5,0.3,0.7\n";
        let chart2 = failure_curve_from_csv(
            &csv.replace("r,t,", "cluster.a.istiod.r,t,"),
            "cluster.a.istiod.r",
            "t",
        )
        .unwrap();
        assert_eq!(chart2.x_axis, XAxis::Log);
        let names: Vec<&str> = chart2.panels[0]
            .series
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        // The key is named; identical curves are drawn once, named together.
        assert_eq!(names, ["t = 10s", "t = 15s = t = 20s"]);
        let mut c = chart2;
        add_threshold(&mut c, 0.05);
        let t = c.panels[0].series.last().unwrap();
        assert_eq!(t.name, "max_failure_p = 0.05");
        assert_eq!(t.points, vec![(1.0, 0.05), (40.0, 0.05)]);
        assert!(c.to_svg().is_ok());
    }

    /// Draws the README's failure curves from the shipped `curves.csv` files into
    /// `$FLEETSIM_FIGURES_DIR` when it is set, to look at them (a check by eye).
    #[test]
    fn shipped_curves_render() {
        for (file, x, group) in [
            (
                "curves-sweep-restart-strategies.csv",
                "cluster.payments.signer.workers",
                "strategy",
            ),
            (
                "curves-sweep-istiod-replicas.csv",
                "cluster.payments.istiod.replicas",
                "cluster.payments.istiod.version",
            ),
        ] {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("output/examples")
                .join(file);
            let Ok(csv) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut chart = failure_curve_from_csv(&csv, x, group).unwrap();
            // As `fleetsim sweep` titles it (output/examples/regenerate.sh).
            chart.title = format!(
                "{}: failure = not recovered or time_to_recover_s > 20m",
                file.trim_start_matches("curves-").trim_end_matches(".csv")
            );
            add_threshold(&mut chart, 0.05);
            let png = chart.to_png().unwrap();
            if let Some(dir) = std::env::var_os("FLEETSIM_FIGURES_DIR") {
                std::fs::write(
                    std::path::Path::new(&dir).join(file.replace(".csv", ".png")),
                    png,
                )
                .unwrap();
            }
        }
    }

    #[test]
    fn pods_ready_axis_starts_near_its_lowest_value() {
        let ready = vec![(0.0, 3600.0), (10.0, 2900.0), (20.0, 3600.0)];
        let desired = vec![(0.0, 3600.0), (20.0, 3600.0)];
        let p = ready_panel(ready.clone(), desired.clone());
        let (lo, hi) = p.y_range.unwrap();
        assert!(lo > 2000.0 && lo < 2900.0 && hi >= 3600.0, "{lo} {hi}");
        assert!(p.y_label.contains("axis from"));
        // A collapse towards 0 keeps the axis at 0.
        let p = ready_panel(vec![(0.0, 3600.0), (10.0, 100.0)], desired);
        assert_eq!(p.y_range, None);
    }

    #[test]
    fn failure_curve_needs_distinct_x_per_group() {
        let csv = "a,b,failure_p,failure_lo,failure_hi\n1,x,0.5,0.4,0.6\n1,y,0.6,0.5,0.7\n";
        assert!(matches!(
            failure_curve_from_csv(csv, "a", ""),
            Err(ReportError::Data(m)) if m.contains("lines 2 and 3")
        ));
        let chart = failure_curve_from_csv(csv, "a", "b").unwrap();
        assert_eq!(chart.panels[0].series.len(), 2);
        assert!(matches!(
            failure_curve_from_csv(csv, "nope", "b"),
            Err(ReportError::MissingColumn { .. })
        ));
        let empty = failure_curve_from_csv("a,failure_p,failure_lo,failure_hi\n", "a", "").unwrap();
        assert!(empty.to_svg().unwrap().contains("no data"));
    }
}
