//! The sweep's tables: `runs.csv` rows from run results, and `curves.csv` computed
//! from `runs.csv` rows (never from summaries), so a live sweep, a resumed one and a
//! merge of shards produce the same bytes.
//!
//! `runs.csv`: `run,point,<grid keys...>,seed,failed,<fleet figures...>,events,
//! sim_end_s,stop_reason,trace_hash,row_sum`, one row per run in index order (`row_sum`:
//! a checksum over the row's other fields, checked by a resume and a merge). Figures are
//! those of [`FIGURES`]; yes/no figures and `failed` are `0`/`1`, a time that never
//! happened (`upgrade_complete_s`, `time_to_recover_s`) is an empty cell, numbers are
//! written in Rust's shortest round-trip form. `wall_s` is left out (it is the only
//! nondeterministic figure).
//!
//! `curves.csv`: one row per point: `point,<grid keys...>,runs,failures,failure_p,
//! failure_lo,failure_hi`, then for each of [`CURVE_FIGURES`] `<f>_mean,<f>_p50,<f>_p95`
//! and, for the times, `<f>_never`. `failure_lo`/`failure_hi` are the 95 % Wilson score
//! interval. Never-happened times count as +infinity in the quantiles (written `inf`:
//! a p95 of `inf` means more than 5 % of the runs never got there) and are left out of
//! the mean (the mean of the runs where it happened; empty if none did); `<f>_never`
//! counts them. Quantiles are type 7 (R's and NumPy's default). Probabilities are written
//! with 4 decimals, other statistics with 3 (whole numbers without decimals).

use crate::metrics::FIGURES;
use crate::predicate::Value;
use crate::stats;

use super::exec::RunResult;
use super::spec::Sweep;

/// Columns of `runs.csv` after the figures.
/// The last, `row_sum`, is a checksum over all the row's other fields ([`row_sum`]): a
/// resume and a merge refuse a row whose figures were edited.
pub const RUN_TRAILER: &[&str] = &[
    "events",
    "sim_end_s",
    "stop_reason",
    "trace_hash",
    "row_sum",
];

/// The checksum of a `runs.csv` row (its fields but the last): 16 hex digits of FNV-1a
/// over the fields joined by the unit separator. It makes an edited or damaged row
/// evident (it is not a signature: whoever edits a row on purpose can recompute it).
pub fn row_sum<'a>(fields: impl IntoIterator<Item = &'a str>) -> String {
    let mut bytes = Vec::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            bytes.push(0x1f);
        }
        bytes.extend_from_slice(f.as_bytes());
    }
    format!("{:016x}", crate::scenario::fnv1a64(&bytes))
}

/// Whether the last field of a `runs.csv` row is the checksum of the others.
pub fn row_sum_holds(record: &csv::StringRecord) -> bool {
    let n = record.len();
    n >= 1 && record[n - 1] == row_sum(record.iter().take(n - 1))
}

/// Figures summarised in `curves.csv`.
pub const CURVE_FIGURES: &[&str] = &[
    "time_to_recover_s",
    "upgrade_complete_s",
    "peak_crashloop_pods",
    "crashloop_pod_seconds",
    "csr_failed_objects_peak",
    "min_ready_fraction",
];

/// Figures that are times which may never happen (empty cell, +infinity).
const TIMES: &[&str] = &["time_to_recover_s", "upgrade_complete_s"];

/// The `runs.csv` header for grid keys `axes`.
pub fn runs_header(axes: &[String]) -> Vec<String> {
    let mut h = vec!["run".to_string(), "point".to_string()];
    h.extend(axes.iter().cloned());
    h.push("seed".into());
    h.push("failed".into());
    h.extend(FIGURES.names.iter().map(|(s, _)| s.to_string()));
    h.extend(RUN_TRAILER.iter().map(|s| s.to_string()));
    h
}

/// The `runs.csv` row of a finished run.
pub fn run_record(sweep: &Sweep, r: &RunResult) -> Vec<String> {
    let point = &sweep.points()[r.id.point];
    let mut row = Vec::with_capacity(8 + point.labels.len() + FIGURES.names.len());
    row.push(r.id.index.to_string());
    row.push(r.id.point.to_string());
    row.extend(point.labels.iter().cloned());
    row.push(r.id.seed.to_string());
    row.push(if r.failed { "1" } else { "0" }.to_string());
    for (i, (name, _)) in FIGURES.names.iter().enumerate() {
        row.push(match r.summary.fleet.value(i) {
            Value::Bool(b) => if b { "1" } else { "0" }.to_string(),
            Value::Num(x) if x.is_infinite() && TIMES.contains(name) => String::new(),
            Value::Num(x) => format!("{x}"),
        });
    }
    row.push(r.summary.events.to_string());
    row.push(format!("{}", r.summary.sim_end_s));
    row.push(r.summary.stop_reason.clone());
    row.push(r.summary.trace_hash.clone());
    let sum = row_sum(row.iter().map(String::as_str));
    row.push(sum);
    row
}

/// The `curves.csv` header for grid keys `axes`.
pub fn curves_header(axes: &[String]) -> Vec<String> {
    let mut h = vec!["point".to_string()];
    h.extend(axes.iter().cloned());
    for c in ["runs", "failures", "failure_p", "failure_lo", "failure_hi"] {
        h.push(c.into());
    }
    for f in CURVE_FIGURES {
        for s in ["mean", "p50", "p95"] {
            h.push(format!("{f}_{s}"));
        }
        if TIMES.contains(f) {
            h.push(format!("{f}_never"));
        }
    }
    h
}

/// Builds `curves.csv` from `runs.csv` rows fed in run-index order, holding only the
/// current point's values.
pub struct CurveBuilder {
    n_axes: usize,
    seeds: u64,
    points: u64,
    failed_col: usize,
    figure_cols: Vec<usize>,
    current: Option<PointAcc>,
    next_point: u64,
    out: csv::Writer<Vec<u8>>,
}

struct PointAcc {
    point: u64,
    labels: Vec<String>,
    runs: u64,
    failures: u64,
    values: Vec<Vec<f64>>,
}

impl CurveBuilder {
    /// For a sweep with grid keys `axes`, `seeds` runs per point and `points` points.
    pub fn new(axes: &[String], seeds: u64, points: u64) -> CurveBuilder {
        let header = runs_header(axes);
        let col = |name: &str| header.iter().position(|h| h == name).expect("own column");
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(curves_header(axes))
            .expect("writing to memory");
        CurveBuilder {
            n_axes: axes.len(),
            seeds,
            points,
            failed_col: col("failed"),
            figure_cols: CURVE_FIGURES.iter().map(|f| col(f)).collect(),
            current: None,
            next_point: 0,
            out,
        }
    }

    /// Adds the next `runs.csv` row (run indices must come in order without gaps).
    /// Errors name the column and value that are not what `runs.csv` holds.
    pub fn push<S: AsRef<str>>(&mut self, row: &[S]) -> Result<(), String> {
        let cell = |i: usize| row.get(i).map(|s| s.as_ref()).unwrap_or("");
        let index: u64 = cell(0)
            .parse()
            .map_err(|_| format!("run {:?} is not an index", cell(0)))?;
        let point = index / self.seeds;
        if point >= self.points {
            return Err(format!(
                "run {index} is beyond the sweep's {} points",
                self.points
            ));
        }
        if let Some(c) = self.current.as_ref().filter(|c| c.point != point) {
            if c.runs != self.seeds {
                return Err(format!(
                    "run {index}: point {} has {} of its {} runs",
                    c.point, c.runs, self.seeds
                ));
            }
            self.flush_point();
        }
        if self.current.is_none() {
            if point != self.next_point {
                return Err(format!(
                    "run {index} is at point {point}, expected point {}",
                    self.next_point
                ));
            }
            self.current = Some(PointAcc {
                point,
                labels: (0..self.n_axes).map(|i| cell(2 + i).to_string()).collect(),
                runs: 0,
                failures: 0,
                values: vec![Vec::with_capacity(self.seeds as usize); CURVE_FIGURES.len()],
            });
        }
        let acc = self.current.as_mut().expect("just set");
        if index != point * self.seeds + acc.runs {
            return Err(format!(
                "run {index} out of order: expected run {}",
                point * self.seeds + acc.runs
            ));
        }
        acc.runs += 1;
        match cell(self.failed_col) {
            "1" => acc.failures += 1,
            "0" => {}
            v => return Err(format!("run {index}: failed must be 0 or 1, got {v:?}")),
        }
        for (k, &c) in self.figure_cols.iter().enumerate() {
            let text = cell(c);
            let x = if text.is_empty() && TIMES.contains(&CURVE_FIGURES[k]) {
                f64::INFINITY
            } else {
                text.parse::<f64>().map_err(|_| {
                    format!(
                        "run {index}: {} is not a number: {text:?}",
                        CURVE_FIGURES[k]
                    )
                })?
            };
            acc.values[k].push(x);
        }
        Ok(())
    }

    fn flush_point(&mut self) {
        let Some(acc) = self.current.take() else {
            return;
        };
        let mut row = vec![acc.point.to_string()];
        row.extend(acc.labels);
        row.push(acc.runs.to_string());
        row.push(acc.failures.to_string());
        let w = stats::wilson_interval(acc.failures, acc.runs).expect("runs >= 1");
        for p in [w.p, w.lo, w.hi] {
            row.push(format!("{p:.4}"));
        }
        for (k, f) in CURVE_FIGURES.iter().enumerate() {
            let values = &acc.values[k];
            let finite: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
            row.push(stats::mean(&finite).map(fmt_stat).unwrap_or_default());
            let q = stats::quantiles(values, &[0.5, 0.95]);
            for i in 0..2 {
                row.push(q.as_ref().map(|q| fmt_stat(q[i])).unwrap_or_default());
            }
            if TIMES.contains(f) {
                row.push((values.len() - finite.len()).to_string());
            }
        }
        self.out.write_record(&row).expect("writing to memory");
        self.next_point = acc.point + 1;
    }

    /// The finished `curves.csv`; an error if not every point got all its runs.
    pub fn finish(mut self) -> Result<String, String> {
        if let Some(acc) = &self.current {
            if acc.runs != self.seeds {
                return Err(format!(
                    "point {} has {} of its {} runs",
                    acc.point, acc.runs, self.seeds
                ));
            }
        }
        self.flush_point();
        if self.next_point != self.points {
            return Err(format!(
                "runs cover {} of the sweep's {} points",
                self.next_point, self.points
            ));
        }
        let bytes = self.out.into_inner().map_err(|e| e.to_string())?;
        String::from_utf8(bytes).map_err(|e| e.to_string())
    }
}

/// A statistic: `inf`, a whole number without decimals, or 3 decimals.
fn fmt_stat(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(index: u64, failed: bool, recover: &str) -> Vec<String> {
        let axes = ["strategy".to_string()];
        let header = runs_header(&axes);
        let mut r = vec![String::new(); header.len()];
        r[0] = index.to_string();
        r[2] = "batches".into();
        for (i, h) in header.iter().enumerate() {
            r[i] = match h.as_str() {
                "run" => index.to_string(),
                "point" => (index / 4).to_string(),
                "strategy" => "batches".into(),
                "failed" => u8::from(failed).to_string(),
                "time_to_recover_s" => recover.into(),
                "upgrade_complete_s" => "300".into(),
                "stop_reason" => "horizon".into(),
                _ => "2".into(),
            };
        }
        r
    }

    #[test]
    fn curves_count_failures_and_never() {
        let mut b = CurveBuilder::new(&["strategy".to_string()], 4, 1);
        b.push(&row(0, false, "100")).unwrap();
        b.push(&row(1, false, "200")).unwrap();
        b.push(&row(2, true, "")).unwrap();
        b.push(&row(3, false, "300")).unwrap();
        let csv = b.finish().unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let values: Vec<&str> = lines.next().unwrap().split(',').collect();
        let get = |name: &str| values[header.iter().position(|h| *h == name).unwrap()];
        assert_eq!(get("runs"), "4");
        assert_eq!(get("failures"), "1");
        assert_eq!(get("failure_p"), "0.2500");
        assert_eq!(get("time_to_recover_s_mean"), "200");
        assert_eq!(get("time_to_recover_s_p50"), "250");
        assert_eq!(get("time_to_recover_s_p95"), "inf");
        assert_eq!(get("time_to_recover_s_never"), "1");
        assert_eq!(get("upgrade_complete_s_never"), "0");
    }

    #[test]
    fn curves_reject_gaps_and_short_points() {
        let mut b = CurveBuilder::new(&["strategy".to_string()], 4, 1);
        b.push(&row(0, false, "1")).unwrap();
        assert!(b
            .push(&row(2, false, "1"))
            .unwrap_err()
            .contains("out of order"));
        let mut b = CurveBuilder::new(&["strategy".to_string()], 4, 2);
        for i in 0..4 {
            b.push(&row(i, false, "1")).unwrap();
        }
        assert!(b
            .finish()
            .unwrap_err()
            .contains("1 of the sweep's 2 points"));
        let mut b = CurveBuilder::new(&["strategy".to_string()], 4, 1);
        let mut bad = row(0, false, "1");
        bad[4] = "x".into();
        assert!(b.push(&bad).is_err());
    }
}
