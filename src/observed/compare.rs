//! Comparing observed series with simulated ones.
//!
//! # Pairing ([`pair`])
//! Each observed file gives timelines: a Prometheus file one (its series summed), named
//! by the `__name__` its series share or else by the file stem; a fleetsim
//! `timeseries.csv` one per column. `--map NAME=SERIES` pairs the observed timeline
//! whose metric name, file stem or column is `NAME` with the simulated column `SERIES`.
//! Without a map, an observed timeline is paired with the simulated column of its own
//! name; a `timeseries.csv` with at least one mapped column contributes only its mapped
//! columns. A Prometheus metric that is neither mapped nor a column name is an error.
//!
//! # Alignment
//! Prometheus timestamps become seconds since `--start` or, without it, since the
//! earliest first sample of all Prometheus files (so several metrics keep their
//! relative timing); a `timeseries.csv` is in simulated seconds already. Each observed
//! series is then linearly interpolated onto the simulated sample times within its
//! observed span `[first, last]` (a sample exactly at a simulated time is taken as it
//! is). Simulated times outside the span are not compared: nothing is extrapolated.
//!
//! # Errors per series ([`SeriesError`]), over the aligned points, `s` simulated, `o`
//! observed
//! - `mape_pct`: mean of `100 |s - o| / |o|` over the points where `o != 0`. Points
//!   where `o = 0` have no percentage error: they are left out (and counted as
//!   `zero_points`); when every observed point is 0 there is no MAPE (`null`). They still
//!   count in every other figure.
//! - `bias`: mean of `s - o` (series units; > 0: the simulation runs high).
//! - `rmse`: `sqrt(mean (s - o)²)`; `nrmse = rmse / scale` with `scale` the observed
//!   range `max o - min o`, or `|mean o|` if the range is 0, or 1 if that is 0 too.
//! - Peaks: the largest value and the first time it is reached, of the simulated samples
//!   within the observed span and of the observed samples within the simulated span;
//!   `peak_error = sim - obs`, `peak_time_error_s = t_sim - t_obs`.
//!
//! [`objective`] (what `fleetsim calibrate` minimises) is the mean `nrmse` over the
//! pairs: unitless, so series of different sizes weigh alike, and defined with zeros.

use std::path::Path;

use crate::suggest::suggestion;

use super::timeseries::{self, series_names};
use super::{file_stem, prometheus, read_text, ObservedError, Result, Timeline};

/// `--map NAME=SERIES`: observed metric, stem or column `NAME` is simulated `SERIES`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesMap {
    /// The observed name.
    pub name: String,
    /// The `timeseries.csv` column.
    pub series: String,
}

impl SeriesMap {
    /// `NAME=SERIES` as written on the command line.
    pub fn text(&self) -> String {
        format!("{}={}", self.name, self.series)
    }
}

impl std::str::FromStr for SeriesMap {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.split_once('=') {
            Some((n, v)) if !n.trim().is_empty() && !v.trim().is_empty() => Ok(SeriesMap {
                name: n.trim().to_string(),
                series: v.trim().to_string(),
            }),
            _ => Err(format!(
                "expected NAME=SERIES (an observed metric or file stem = a timeseries.csv column, e.g. ca_queue_length=ca_queue), got {s:?}"
            )),
        }
    }
}

/// What kind of observed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A Prometheus `query_range` response; the metric name its series share, if any.
    Prometheus {
        /// `__name__` of its series.
        metric: Option<String>,
    },
    /// A fleetsim `timeseries.csv`.
    Timeseries,
}

/// An observed file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedFile {
    /// The file as named.
    pub file: String,
    /// Its stem.
    pub stem: String,
    /// Its kind.
    pub kind: Kind,
    /// Prometheus: one timeline (Unix seconds). Timeseries: one per column (simulated
    /// seconds).
    pub timelines: Vec<Timeline>,
}

/// Reads an observed file: a JSON file (first non-blank character `{`) as a Prometheus
/// response, anything else as a fleetsim `timeseries.csv` (rows of `cluster`).
pub fn read_observed(path: &Path, cluster: &str) -> Result<ObservedFile> {
    let text = read_text(path)?;
    parse_observed(
        &path.display().to_string(),
        &file_stem(path),
        &text,
        cluster,
    )
}

/// [`read_observed`] on text already read.
pub fn parse_observed(file: &str, stem: &str, text: &str, cluster: &str) -> Result<ObservedFile> {
    if text.trim_start().starts_with(['{', '[']) {
        let series = prometheus::parse(file, text)?;
        let metric = prometheus::metric_name(&series);
        let name = metric.clone().unwrap_or_else(|| stem.to_string());
        let timeline = prometheus::sum_series(&name, &series);
        if timeline.points.is_empty() {
            return Err(ObservedError::new(
                file,
                "every sample is NaN: nothing to compare",
            ));
        }
        Ok(ObservedFile {
            file: file.to_string(),
            stem: stem.to_string(),
            kind: Kind::Prometheus { metric },
            timelines: vec![timeline],
        })
    } else if timeseries::looks_like(text) {
        Ok(ObservedFile {
            file: file.to_string(),
            stem: stem.to_string(),
            kind: Kind::Timeseries,
            timelines: timeseries::parse(file, text, cluster)?,
        })
    } else {
        let first = text.lines().next().unwrap_or("").trim();
        Err(ObservedError::at_line(
            file,
            1,
            format!(
                "neither a Prometheus query_range JSON response nor a fleetsim timeseries.csv (first line {:?})",
                first.chars().take(80).collect::<String>()
            ),
        ))
    }
}

/// An observed timeline paired with the simulated series it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub struct Pairing {
    /// Where it came from: `q.json` (metric `m`) or `run/timeseries.csv:ca_queue`.
    pub label: String,
    /// The simulated column.
    pub series: String,
    /// The observed points, times relative to the alignment origin.
    pub observed: Timeline,
}

/// How observed time was aligned with simulated time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// The Unix time taken as simulated time 0 for Prometheus data (`None` without any).
    pub origin_unix_s: Option<f64>,
    /// Whether the origin came from `--start` (else: the first sample).
    pub from_start: bool,
}

/// Pairs observed timelines with simulated series (see the module docs) and makes their
/// times relative. Errors name the flag or the file and the value.
pub fn pair(
    files: &[ObservedFile],
    maps: &[SeriesMap],
    start: Option<f64>,
) -> Result<(Vec<Pairing>, Alignment)> {
    let names = series_names();
    for (i, m) in maps.iter().enumerate() {
        let flag = format!("--map {}", m.text());
        if !names.contains(&m.series.as_str()) {
            return Err(ObservedError::new(
                flag,
                format!(
                    "unknown series \"{}\" (timeseries.csv columns: {}){}",
                    m.series,
                    names.join(", "),
                    suggestion(&m.series, &names)
                ),
            ));
        }
        if maps[..i].iter().any(|o| o.name == m.name) {
            return Err(ObservedError::new(
                flag,
                format!("\"{}\" is mapped twice", m.name),
            ));
        }
        let known = files.iter().any(|f| match f.kind {
            Kind::Prometheus { ref metric } => {
                metric.as_deref() == Some(m.name.as_str()) || f.stem == m.name
            }
            Kind::Timeseries => f.timelines.iter().any(|t| t.name == m.name),
        });
        if !known {
            let mut seen: Vec<String> = Vec::new();
            for f in files {
                match &f.kind {
                    Kind::Prometheus { metric } => seen.push(format!(
                        "{} ({})",
                        metric.as_deref().unwrap_or(&f.stem),
                        f.file
                    )),
                    Kind::Timeseries => seen.push(format!("the columns of {}", f.file)),
                }
            }
            return Err(ObservedError::new(
                flag,
                format!(
                    "no observed file has a metric, file stem or column named \"{}\" (observed: {})",
                    m.name,
                    seen.join(", ")
                ),
            ));
        }
    }
    // Only Prometheus data has an origin to choose: a timeseries.csv is in simulated time.
    let first = files
        .iter()
        .filter(|f| matches!(f.kind, Kind::Prometheus { .. }))
        .filter_map(|f| f.timelines.first()?.points.first().map(|p| p.0))
        .min_by(f64::total_cmp);
    let origin = first.map(|first| start.unwrap_or(first));
    let mapped = |name: &str| maps.iter().find(|m| m.name == name);
    let mut out = Vec::new();
    for f in files {
        match &f.kind {
            Kind::Prometheus { metric } => {
                let t = &f.timelines[0];
                let by_metric = metric.as_deref().and_then(mapped);
                let series = match by_metric.or_else(|| mapped(&f.stem)) {
                    Some(m) => m.series.clone(),
                    None if names.contains(&t.name.as_str()) => t.name.clone(),
                    None if names.contains(&f.stem.as_str()) => f.stem.clone(),
                    None => {
                        return Err(ObservedError::new(
                            &f.file,
                            format!(
                                "metric \"{}\" is not a timeseries.csv series and has no --map; add --map {}=SERIES (series: {})",
                                t.name,
                                t.name,
                                names.join(", ")
                            ),
                        ))
                    }
                };
                let o = origin.unwrap_or(0.0);
                out.push(Pairing {
                    label: match metric {
                        Some(m) => format!("{} ({m})", f.file),
                        None => f.file.clone(),
                    },
                    series,
                    observed: Timeline {
                        name: t.name.clone(),
                        points: t.points.iter().map(|&(ts, v)| (ts - o, v)).collect(),
                    },
                });
            }
            Kind::Timeseries => {
                let any_mapped = f.timelines.iter().any(|t| mapped(&t.name).is_some());
                for t in &f.timelines {
                    let series = match mapped(&t.name) {
                        Some(m) => m.series.clone(),
                        None if any_mapped => continue,
                        None if names.contains(&t.name.as_str()) => t.name.clone(),
                        None => continue, // a column fleetsim does not write
                    };
                    out.push(Pairing {
                        label: format!("{}:{}", f.file, t.name),
                        series,
                        observed: t.clone(),
                    });
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ObservedError::new(
            files
                .first()
                .map_or("observed data".into(), |f| f.file.clone()),
            "no observed series to compare",
        ));
    }
    Ok((
        out,
        Alignment {
            origin_unix_s: origin,
            from_start: start.is_some() && origin.is_some(),
        },
    ))
}

/// The comparison of one observed series with its simulated series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesError {
    /// The simulated column.
    pub series: String,
    /// Where the observed series came from.
    pub observed: String,
    /// Aligned points compared.
    pub points: usize,
    /// First and last aligned simulated time (s).
    pub window_s: (f64, f64),
    /// Mean absolute percentage error over the points with a non-zero observation.
    pub mape_pct: Option<f64>,
    /// Aligned points whose observed value is 0 (left out of the MAPE).
    pub zero_points: usize,
    /// Mean of simulated minus observed.
    pub bias: f64,
    /// Root mean square error.
    pub rmse: f64,
    /// RMSE over the observed scale.
    pub nrmse: f64,
    /// The scale `nrmse` divides by.
    pub scale: f64,
    /// Largest simulated value within the observed span.
    pub sim_peak: f64,
    /// When it is first reached (s).
    pub sim_peak_s: f64,
    /// Largest observed value within the simulated span.
    pub obs_peak: f64,
    /// When it is first reached (s, relative).
    pub obs_peak_s: f64,
    /// `sim_peak - obs_peak`.
    pub peak_error: f64,
    /// `sim_peak_s - obs_peak_s` (s).
    pub peak_time_error_s: f64,
}

/// The observed value at `t` by linear interpolation, `None` outside the span.
fn interpolate(points: &[(f64, f64)], t: f64, cursor: &mut usize) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if t < first.0 || t > last.0 {
        return None;
    }
    while *cursor + 1 < points.len() && points[*cursor + 1].0 <= t {
        *cursor += 1;
    }
    let (t0, v0) = points[*cursor];
    if t0 == t || *cursor + 1 == points.len() {
        return Some(v0);
    }
    let (t1, v1) = points[*cursor + 1];
    Some(v0 + (v1 - v0) * (t - t0) / (t1 - t0))
}

fn peak(points: impl Iterator<Item = (f64, f64)>) -> Option<(f64, f64)> {
    points.fold(None, |best: Option<(f64, f64)>, (t, v)| match best {
        Some((_, bv)) if bv >= v => best,
        _ => Some((t, v)),
    })
}

/// Compares simulated and observed points (times on one axis). `Err` (a sentence) when
/// no simulated time falls within the observed span.
pub fn compare(
    series: &str,
    label: &str,
    sim: &[(f64, f64)],
    obs: &[(f64, f64)],
) -> std::result::Result<SeriesError, String> {
    let mut cursor = 0;
    let aligned: Vec<(f64, f64, f64)> = sim
        .iter()
        .filter_map(|&(t, s)| interpolate(obs, t, &mut cursor).map(|o| (t, s, o)))
        .collect();
    let span = |p: &[(f64, f64)]| match (p.first(), p.last()) {
        (Some(a), Some(b)) => format!("[{}, {}] s", a.0, b.0),
        _ => "no samples".to_string(),
    };
    if aligned.is_empty() {
        return Err(format!(
            "no simulated sample time of \"{series}\" falls within the observed span of {label} ({} after alignment; simulated: {})",
            span(obs),
            span(sim)
        ));
    }
    let n = aligned.len() as f64;
    let mut ape = 0.0;
    let mut nonzero = 0usize;
    let (mut bias, mut sq) = (0.0, 0.0);
    let (mut lo, mut hi, mut sum_o) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &(_, s, o) in &aligned {
        if o != 0.0 {
            ape += (s - o).abs() / o.abs();
            nonzero += 1;
        }
        bias += s - o;
        sq += (s - o) * (s - o);
        lo = lo.min(o);
        hi = hi.max(o);
        sum_o += o;
    }
    let rmse = (sq / n).sqrt();
    let mean_o = sum_o / n;
    let scale = if hi > lo {
        hi - lo
    } else if mean_o != 0.0 {
        mean_o.abs()
    } else {
        1.0
    };
    let (w0, w1) = (aligned[0].0, aligned[aligned.len() - 1].0);
    let (o0, o1) = (obs[0].0, obs[obs.len() - 1].0);
    let (s0, s1) = (sim[0].0, sim[sim.len() - 1].0);
    let (sim_peak_s, sim_peak) =
        peak(sim.iter().copied().filter(|p| p.0 >= o0 && p.0 <= o1)).unwrap_or((w0, aligned[0].1));
    let (obs_peak_s, obs_peak) =
        peak(obs.iter().copied().filter(|p| p.0 >= s0 && p.0 <= s1)).unwrap_or((w0, aligned[0].2));
    Ok(SeriesError {
        series: series.to_string(),
        observed: label.to_string(),
        points: aligned.len(),
        window_s: (w0, w1),
        mape_pct: (nonzero > 0).then(|| 100.0 * ape / nonzero as f64),
        zero_points: aligned.len() - nonzero,
        bias: bias / n,
        rmse,
        nrmse: rmse / scale,
        scale,
        sim_peak,
        sim_peak_s,
        obs_peak,
        obs_peak_s,
        peak_error: sim_peak - obs_peak,
        peak_time_error_s: sim_peak_s - obs_peak_s,
    })
}

/// Compares every pairing with the simulated timelines (one per `timeseries.csv`
/// column, as [`timeseries::parse`] reads them). `sim_file` names the simulated data in
/// errors.
pub fn compare_all(
    sim_file: &str,
    sim: &[Timeline],
    pairs: &[Pairing],
) -> Result<Vec<SeriesError>> {
    pairs
        .iter()
        .map(|p| {
            let s = sim.iter().find(|t| t.name == p.series).ok_or_else(|| {
                ObservedError::new(sim_file, format!("has no column \"{}\"", p.series))
            })?;
            compare(&p.series, &p.label, &s.points, &p.observed.points)
                .map_err(|m| ObservedError::new(&p.label, m))
        })
        .collect()
}

/// The calibration objective: the mean `nrmse` over the compared series.
pub fn objective(errors: &[SeriesError]) -> f64 {
    if errors.is_empty() {
        return f64::NAN;
    }
    errors.iter().map(|e| e.nrmse).sum::<f64>() / errors.len() as f64
}

/// The mean MAPE over the series that have one (`None` if none has).
pub fn mean_mape_pct(errors: &[SeriesError]) -> Option<f64> {
    let v: Vec<f64> = errors.iter().filter_map(|e| e.mape_pct).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_against_itself_has_no_error() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64 * 10.0, (i % 7) as f64)).collect();
        let e = compare("ca_queue", "x", &pts, &pts).unwrap();
        assert_eq!(e.points, 20);
        assert_eq!(e.mape_pct, Some(0.0));
        assert_eq!(e.zero_points, 3);
        assert_eq!(
            (e.bias, e.rmse, e.nrmse, e.peak_error, e.peak_time_error_s),
            (0.0, 0.0, 0.0, 0.0, 0.0)
        );
        assert_eq!((e.sim_peak, e.sim_peak_s), (6.0, 60.0));
    }

    #[test]
    fn interpolates_onto_simulated_times_without_extrapolating() {
        // Observed every 15 s from 5 s; simulated every 10 s from 0.
        let obs: Vec<(f64, f64)> = (0..5)
            .map(|i| (5.0 + 15.0 * i as f64, 2.0 * (5.0 + 15.0 * i as f64)))
            .collect();
        let sim: Vec<(f64, f64)> = (0..10)
            .map(|i| (10.0 * i as f64, 2.0 * 10.0 * i as f64 + 1.0))
            .collect();
        let e = compare("s", "o", &sim, &obs).unwrap();
        // Simulated times 10..=60 lie in [5, 65]: 6 points, each 1 above the line.
        assert_eq!(e.points, 6);
        assert_eq!(e.window_s, (10.0, 60.0));
        assert!((e.bias - 1.0).abs() < 1e-12);
        assert!((e.rmse - 1.0).abs() < 1e-12);
        assert!((e.nrmse - 1.0 / 100.0).abs() < 1e-12, "{e:?}"); // observed range 20..120
        let want = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
            .iter()
            .map(|t| 100.0 / (2.0 * t))
            .sum::<f64>()
            / 6.0;
        assert!((e.mape_pct.unwrap() - want).abs() < 1e-9);
        // Peaks: simulated within [5, 65] at 60 s; observed within [0, 90] at 65 s.
        assert_eq!((e.sim_peak_s, e.obs_peak_s), (60.0, 65.0));
        assert_eq!(e.peak_time_error_s, -5.0);
    }

    #[test]
    fn zeros_leave_the_mape_and_an_all_zero_series_has_none() {
        let obs = vec![(0.0, 0.0), (10.0, 0.0)];
        let sim = vec![(0.0, 1.0), (10.0, 3.0)];
        let e = compare("s", "o", &sim, &obs).unwrap();
        assert_eq!(e.mape_pct, None);
        assert_eq!(e.zero_points, 2);
        assert_eq!(e.scale, 1.0);
        assert_eq!(e.bias, 2.0);
        let e = compare("s", "o", &sim, &[(50.0, 1.0), (60.0, 1.0)]).unwrap_err();
        assert!(e.contains("no simulated sample time"), "{e}");
    }

    fn prom(file: &str, metric: Option<&str>, t0: f64) -> ObservedFile {
        ObservedFile {
            file: file.into(),
            stem: file.trim_end_matches(".json").into(),
            kind: Kind::Prometheus {
                metric: metric.map(str::to_string),
            },
            timelines: vec![Timeline {
                name: metric.unwrap_or(file.trim_end_matches(".json")).into(),
                points: vec![(t0, 1.0), (t0 + 10.0, 2.0)],
            }],
        }
    }

    #[test]
    fn pairing_rules_and_errors() {
        let files = [
            prom("ca_queue.json", None, 1000.0),
            prom("q.json", Some("signer_inflight"), 990.0),
        ];
        let maps = vec!["signer_inflight=csr_in_flight"
            .parse::<SeriesMap>()
            .unwrap()];
        let (p, a) = pair(&files, &maps, None).unwrap();
        assert_eq!(a.origin_unix_s, Some(990.0));
        assert_eq!(p[0].series, "ca_queue");
        assert_eq!(p[0].observed.points[0].0, 10.0);
        assert_eq!(p[1].series, "csr_in_flight");
        assert_eq!(p[1].label, "q.json (signer_inflight)");
        let (p, _) = pair(&files, &maps, Some(1000.0)).unwrap();
        assert_eq!(p[1].observed.points[0].0, -10.0);

        let e = pair(&files, &[], None).unwrap_err().to_string();
        assert!(e.starts_with("q.json: metric \"signer_inflight\" is not a timeseries.csv series and has no --map"), "{e}");
        let bad = vec!["signer_inflight=ca_queu".parse::<SeriesMap>().unwrap()];
        let e = pair(&files, &bad, None).unwrap_err().to_string();
        assert!(
            e.starts_with("--map signer_inflight=ca_queu: unknown series \"ca_queu\""),
            "{e}"
        );
        assert!(e.ends_with("did you mean \"ca_queue\"?"), "{e}");
        let bad = vec!["nothing=ca_queue".parse::<SeriesMap>().unwrap()];
        let e = pair(&files, &bad, None).unwrap_err().to_string();
        assert!(
            e.contains("no observed file has a metric, file stem or column named \"nothing\""),
            "{e}"
        );
        assert!("novalue".parse::<SeriesMap>().is_err());
        assert!("=x".parse::<SeriesMap>().is_err());
    }
}
