//! OpenMetrics text exposition of a run (`fleetsim run --openmetrics FILE`): every
//! column of `timeseries.csv` as a gauge with one timestamped sample per sample time,
//! and every number or flag of `summary.json` as a gauge at the end of the run, so
//! `promtool tsdb create-blocks-from openmetrics FILE DIR` backfills a Prometheus and a
//! Grafana dashboard shows the simulated incident beside real ones.
//!
//! Generic over its inputs: a column or summary key this module has never heard of
//! becomes `fleetsim_<column>` / `fleetsim_run_<key>`; the columns that have an
//! equivalent in kube-state-metrics take its name (see [`KNOWN_COLUMNS`]), with the
//! labels it uses, so an existing dashboard's queries work on the backfill.
//!
//! Every series carries `scenario` and `seed`; per-cluster series carry
//! `cluster="NAME"`, fleet totals `cluster="*"` and `scope="fleet"` (per-cluster:
//! `scope="cluster"`) so that `sum by (scenario) (x{scope="cluster"})` does not count
//! twice. Timestamps are Unix seconds: `start` plus the simulated time.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{ReportError, Result};

/// The longest gap between two samples of a series: an unchanged value is written again
/// after this long (s), well inside Prometheus' 5-minute staleness window.
pub const MAX_GAP_S: f64 = 60.0;

/// A `timeseries.csv` column with a metric name from a real component.
pub struct KnownColumn {
    /// The column in `timeseries.csv`.
    pub column: &'static str,
    /// The metric family name.
    pub metric: &'static str,
    /// Extra labels (`name="value"` pairs) that the real metric has.
    pub labels: &'static [(&'static str, &'static str)],
    /// `# HELP` text.
    pub help: &'static str,
}

/// The columns named as kube-state-metrics names them (summed over pods: the real
/// metric is per pod or per deployment, the simulation's is per cluster).
pub const KNOWN_COLUMNS: &[KnownColumn] = &[
    KnownColumn {
        column: "pods_ready",
        metric: "kube_pod_status_ready",
        labels: &[("condition", "true")],
        help: "Pods ready (kube-state-metrics kube_pod_status_ready, summed).",
    },
    KnownColumn {
        column: "pods_pending",
        metric: "kube_pod_status_phase",
        labels: &[("phase", "Pending")],
        help: "Pods being created, unscheduled or starting (kube_pod_status_phase, summed).",
    },
    KnownColumn {
        column: "pods_backoff",
        metric: "kube_pod_container_status_waiting_reason",
        labels: &[("reason", "CrashLoopBackOff"), ("container", "istio-proxy")],
        help:
            "Pods waiting out CrashLoopBackOff (kube_pod_container_status_waiting_reason, summed).",
    },
    KnownColumn {
        column: "pods_desired",
        metric: "kube_deployment_spec_replicas",
        labels: &[],
        help: "Desired pods (kube_deployment_spec_replicas, summed over workloads).",
    },
    KnownColumn {
        column: "istiod_ready",
        metric: "kube_deployment_status_replicas_ready",
        labels: &[("namespace", "istio-system"), ("deployment", "istiod")],
        help: "istiod replicas ready (kube_deployment_status_replicas_ready).",
    },
];

/// What a timeseries column means, for `# HELP` of the columns without a real name.
fn column_help(column: &str) -> &'static str {
    match column {
        "nodes_old" => "Nodes on the old AMI.",
        "nodes_new" => "Nodes on the new AMI.",
        "ca_queue" => {
            "Requests at the cluster's CA, waiting and in service (fleet: summed over CAs)."
        }
        "ca_utilization" => {
            "The CA's utilisation over the last sample interval, 0..1 (fleet: mean over CAs)."
        }
        "csr_in_flight" => "CSR objects created and not yet answered.",
        "csr_failed_objects" => "Failed CSR objects present.",
        "pods_crashloop" => "Pods restarted at least once and not ready.",
        "apiserver_seats" => "Seats in use at the kube-apiserver (APF, limited levels).",
        "apiserver_rejected" => "429s from the kube-apiserver since the previous sample.",
        "csr_pending" => "CSR objects Pending (not approved).",
        "csr_approved" => "CSR objects Approved, neither issued nor failed.",
        "csr_issued" => "CSR objects Issued (certificate in status).",
        _ => "A timeseries.csv column of fleetsim (see docs/outputs.md).",
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A metric name from a column or key: letters, digits and `_`, not starting with a
/// digit.
fn metric_name(prefix: &str, key: &str) -> String {
    let mut s = String::from(prefix);
    for ch in key.chars() {
        s.push(if ch.is_ascii_alphanumeric() || ch == '_' {
            ch
        } else {
            '_'
        });
    }
    s
}

/// A sample value: a number as Rust prints it shortest, infinities and NaN as
/// OpenMetrics spells them.
fn value_text(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == f64::INFINITY {
        "+Inf".into()
    } else if x == f64::NEG_INFINITY {
        "-Inf".into()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A timestamp: Unix seconds with at most millisecond decimals.
fn timestamp_text(t: f64) -> String {
    let ms = (t * 1000.0).round() as i64;
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
    }
}

/// The labels every series has, then the cluster's.
fn labels(common: &str, cluster: &str, extra: &[(&str, &str)]) -> String {
    let mut s = String::from("{");
    s.push_str(common);
    let scope = if cluster == "*" { "fleet" } else { "cluster" };
    let _ = write!(s, ",cluster=\"{}\",scope=\"{scope}\"", label_value(cluster));
    for (k, v) in extra {
        let _ = write!(s, ",{k}=\"{}\"", label_value(v));
    }
    s.push('}');
    s
}

/// Renders the OpenMetrics text of one run from its `summary.json` value and its
/// `timeseries.csv` text; `start_unix_s` is the wall-clock time of simulated time 0.
/// The time series are written for the fleet rows and the clusters in `per_cluster`
/// (the summary's figures for every cluster). A series gets a sample when its value
/// changes and at least every [`MAX_GAP_S`] (so Prometheus never marks it stale), not at
/// every sample time: a 3-hour run of 30 clusters stays a few MB. Ends with `# EOF`.
pub fn render(
    summary: &serde_json::Value,
    timeseries_csv: &str,
    per_cluster: &[String],
    start_unix_s: f64,
) -> Result<String> {
    let text_of = |k: &str| match summary.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) if !v.is_null() => v.to_string(),
        _ => String::new(),
    };
    let common = format!(
        "scenario=\"{}\",seed=\"{}\"",
        label_value(&text_of("scenario")),
        label_value(&text_of("seed"))
    );
    let mut out = String::new();

    // The time series: one family per column, one series per cluster, in time order.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(timeseries_csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| ReportError::Csv {
            line: 1,
            message: e.to_string(),
        })?
        .iter()
        .map(str::to_string)
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| ReportError::MissingColumn {
                column: name.into(),
                available: header.join(","),
            })
    };
    let (t_col, c_col) = (col("time_s")?, col("cluster")?);
    let value_cols: Vec<usize> = (0..header.len())
        .filter(|&i| i != t_col && i != c_col)
        .collect();
    // series[column][cluster] = [(t, v)], clusters in order of first appearance.
    let mut clusters: Vec<String> = Vec::new();
    let mut series: Vec<BTreeMap<usize, Vec<(f64, f64)>>> = vec![BTreeMap::new(); header.len()];
    for (n, rec) in reader.records().enumerate() {
        let line = n as u64 + 2;
        let rec = rec.map_err(|e| ReportError::Csv {
            line,
            message: e.to_string(),
        })?;
        let num = |i: usize| -> Result<f64> {
            let s = rec.get(i).unwrap_or("");
            match s {
                "inf" => Ok(f64::INFINITY),
                "" => Ok(f64::NAN),
                _ => s.parse().map_err(|_| ReportError::Csv {
                    line,
                    message: format!("column `{}`: `{s}` is not a number", header[i]),
                }),
            }
        };
        let t = num(t_col)?;
        let name = rec.get(c_col).unwrap_or("*");
        if name != "*" && !per_cluster.iter().any(|c| c == name) {
            continue;
        }
        let ci = match clusters.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                clusters.push(name.to_string());
                clusters.len() - 1
            }
        };
        for &i in &value_cols {
            series[i].entry(ci).or_default().push((t, num(i)?));
        }
    }
    // Several columns may share a family (kube-state-metrics names with other labels):
    // group them so that a family is written once and contiguously.
    type Columns = Vec<(usize, &'static [(&'static str, &'static str)])>;
    let mut families: Vec<(String, String, Columns)> = Vec::new();
    for &i in &value_cols {
        let (metric, help, extra) = match KNOWN_COLUMNS.iter().find(|k| k.column == header[i]) {
            Some(k) => (k.metric.to_string(), k.help.to_string(), k.labels),
            None => (
                metric_name("fleetsim_", &header[i]),
                column_help(&header[i]).to_string(),
                &[][..],
            ),
        };
        match families.iter_mut().find(|f| f.0 == metric) {
            Some(f) => f.2.push((i, extra)),
            None => families.push((metric, help, vec![(i, extra)])),
        }
    }
    for (metric, help, cols) in &families {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for &(i, extra) in cols {
            for (ci, points) in &series[i] {
                let l = labels(&common, &clusters[*ci], extra);
                let mut last: Option<(f64, f64)> = None;
                for (k, &(t, v)) in points.iter().enumerate() {
                    let final_point = k + 1 == points.len();
                    let keep = match last {
                        None => true,
                        Some((lt, lv)) => {
                            let same = v == lv || (v.is_nan() && lv.is_nan());
                            final_point || t - lt >= MAX_GAP_S || !same
                        }
                    };
                    if !keep {
                        continue;
                    }
                    last = Some((t, v));
                    let _ = writeln!(
                        out,
                        "{metric}{l} {} {}",
                        value_text(v),
                        timestamp_text(start_unix_s + t)
                    );
                }
            }
        }
    }

    // The summary: every number or flag, fleet and per cluster, at the end of the run.
    let end = summary
        .get("sim_end_s")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    let ts = timestamp_text(start_unix_s + end);
    let mut figures: Vec<(String, Vec<(String, f64)>)> = Vec::new();
    let mut add = |key: &str, cluster: &str, v: &serde_json::Value| {
        let x = match v {
            serde_json::Value::Bool(b) => f64::from(u8::from(*b)),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(x) => x,
                None => return,
            },
            _ => return,
        };
        let metric = metric_name("fleetsim_run_", key);
        match figures.iter_mut().find(|f| f.0 == metric) {
            Some(f) => f.1.push((cluster.to_string(), x)),
            None => figures.push((metric, vec![(cluster.to_string(), x)])),
        }
    };
    if let Some(obj) = summary.as_object() {
        // wall_s is the one figure that is not deterministic: left out.
        for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "wall_s") {
            add(k, "*", v);
        }
        if let Some(cs) = obj.get("clusters").and_then(serde_json::Value::as_array) {
            for c in cs {
                let name = c
                    .get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("?");
                if let Some(co) = c.as_object() {
                    for (k, v) in co {
                        add(k, name, v);
                    }
                }
            }
        }
    }
    for (metric, points) in &figures {
        let _ = writeln!(
            out,
            "# HELP {metric} summary.json `{}` at the end of the run (see docs/outputs.md; false 0, true 1).",
            &metric["fleetsim_run_".len()..]
        );
        let _ = writeln!(out, "# TYPE {metric} gauge");
        for (cluster, x) in points {
            let _ = writeln!(
                out,
                "{metric}{} {} {ts}",
                labels(&common, cluster, &[]),
                value_text(*x)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP fleetsim_run The run: its scenario hash and trajectory fingerprint."
    );
    let _ = writeln!(out, "# TYPE fleetsim_run info");
    let _ = writeln!(
        out,
        "fleetsim_run_info{{{common},scenario_hash=\"{}\",trace_hash=\"{}\",stop_reason=\"{}\"}} 1 {ts}",
        label_value(&text_of("scenario_hash")),
        label_value(&text_of("trace_hash")),
        label_value(&text_of("stop_reason")),
    );
    out.push_str("# EOF\n");
    Ok(out)
}

/// Unix seconds of an RFC 3339 time (`2026-03-01T02:00:00Z`, `…T02:00:00.5+01:00`).
pub fn parse_rfc3339(text: &str) -> std::result::Result<f64, String> {
    crate::numfmt::parse_rfc3339(text)
        .ok_or_else(|| format!("`{text}` is not an RFC 3339 time such as 2026-03-01T02:00:00Z"))
}

/// The default start: 2026-01-01T00:00:00Z, so that the same run gives the same file.
pub const DEFAULT_START: &str = "2026-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "time_s,cluster,pods_ready,ca_utilization,brand_new\n\
        0,a\"b,3,0.5,1\n0,*,3,0.5,1\n10,a\"b,2,0.25,2\n10,*,2,0.25,2\n";

    #[test]
    fn series_and_summary_are_gauges_with_timestamps() {
        let summary = serde_json::json!({
            "scenario": "s", "seed": 7, "sim_end_s": 10.0, "trace_hash": "ab",
            "recovered": true, "time_to_recover_s": null, "new_figure": 4.5,
            "clusters": [{"name": "a\"b", "recovered": false, "pods_total": 3}],
        });
        let t = render(&summary, CSV, &["a\"b".to_string()], 1000.0).unwrap();
        assert!(t.ends_with("# EOF\n"));
        assert!(t.contains("# TYPE kube_pod_status_ready gauge\n"));
        assert!(t.contains(
            "kube_pod_status_ready{scenario=\"s\",seed=\"7\",cluster=\"a\\\"b\",scope=\"cluster\",condition=\"true\"} 3 1000\n"
        ), "{t}");
        assert!(t.contains("fleetsim_ca_utilization{scenario=\"s\",seed=\"7\",cluster=\"*\",scope=\"fleet\"} 0.25 1010\n"), "{t}");
        // Columns and keys it does not know flow through under fleetsim_ names.
        assert!(t.contains("# TYPE fleetsim_brand_new gauge\n"));
        assert!(t.contains("fleetsim_run_new_figure{scenario=\"s\",seed=\"7\",cluster=\"*\",scope=\"fleet\"} 4.5 1010\n"));
        assert!(t.contains("fleetsim_run_recovered{scenario=\"s\",seed=\"7\",cluster=\"a\\\"b\",scope=\"cluster\"} 0 1010\n"));
        assert!(t.contains("fleetsim_run_recovered{scenario=\"s\",seed=\"7\",cluster=\"*\",scope=\"fleet\"} 1 1010\n"));
        assert!(!t.contains("time_to_recover_s"), "null is left out");
        // Each family is declared once.
        assert_eq!(t.matches("# TYPE fleetsim_run_recovered ").count(), 1);
        assert!(render(&summary, "cluster\n*\n", &[], 0.0).is_err());
        // Clusters not asked for have no series (but their summary figures).
        let fleet_only = render(&summary, CSV, &[], 1000.0).unwrap();
        assert!(!fleet_only.contains("kube_pod_status_ready{scenario=\"s\",seed=\"7\",cluster=\"a"));
        assert!(fleet_only
            .contains("fleetsim_run_recovered{scenario=\"s\",seed=\"7\",cluster=\"a\\\"b\""));
    }

    #[test]
    fn unchanged_values_are_written_once_a_minute() {
        let mut csv = String::from("time_s,cluster,x\n");
        for t in 0..30 {
            let v = if t < 20 { 1 } else { 2 };
            csv.push_str(&format!("{},*,{v}\n", t * 10));
        }
        let t = render(&serde_json::json!({}), &csv, &[], 0.0).unwrap();
        let times: Vec<&str> = t
            .lines()
            .filter(|l| l.starts_with("fleetsim_x{"))
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(times, ["0", "60", "120", "180", "200", "260", "290"]);
    }

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Ok(1_767_225_600.0));
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00.5+01:00"),
            Ok(1_767_225_600.5)
        );
        assert_eq!(
            parse_rfc3339("2000-03-01T00:00:00-00:30"),
            Ok(951_870_600.0)
        );
        for bad in [
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "x",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(timestamp_text(1.5), "1.500");
    }

    /// A multibyte character where the offset goes exited 101 (a string slice inside
    /// it); `+-1:00` was read as an offset.
    #[test]
    fn rfc3339_offset_with_a_multibyte_character_or_a_sign_in_its_digits_is_an_error_not_a_panic() {
        for bad in [
            "2026-03-01T02:00:00\u{e9}1234",
            "2026-03-01T02:00:00+-1:00",
            "2026-03-01T02:00:00+1\u{e9}:0",
            "2026-03-01T02:00:00+24:00",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        assert_eq!(value_text(f64::INFINITY), "+Inf");
    }
}
