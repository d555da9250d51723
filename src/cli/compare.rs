//! `fleetsim compare RUN_DIR OBSERVED...`: a run's time series against observed data
//! (Prometheus `query_range` JSON or a fleetsim `timeseries.csv`), series by series. The
//! rules (pairing, alignment, zeros) are in [`crate::observed::compare`].

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::{json, Value};

use crate::numfmt::sig;
use crate::observed::compare::{
    self, mean_mape_pct, objective, read_observed, Alignment, Pairing, SeriesError, SeriesMap,
};
use crate::observed::{self, parse_timestamp, timeseries, ObservedError};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table, one row per series.
    Text,
    /// One JSON object.
    Json,
}

/// Flags shared by `compare` and `calibrate`: how observed data is read and paired.
#[derive(clap::Args, Debug, Clone)]
pub struct ObservedArgs {
    /// Pair observed metric, file stem or column NAME with simulated timeseries.csv
    /// column SERIES (repeatable), e.g. `--map signer_queue_depth=ca_queue`. Without one,
    /// an observed series is compared with the column of its own name.
    #[arg(long = "map", value_name = "NAME=SERIES")]
    pub map: Vec<SeriesMap>,
    /// The cluster whose rows are compared: a cluster name, or `*` for the fleet totals.
    #[arg(long, value_name = "NAME", default_value = "*")]
    pub cluster: String,
    /// The observed time that is simulated time 0, for Prometheus data: Unix seconds or
    /// RFC 3339 (`2024-05-27T08:00:00Z`); default: the first sample of the Prometheus
    /// files.
    #[arg(long, value_name = "TIME", value_parser = parse_timestamp, allow_hyphen_values = true)]
    pub start: Option<f64>,
}

/// Flags of `fleetsim compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// A run's output directory (holding timeseries.csv) or its timeseries.csv.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// Observed data: Prometheus query_range JSON responses (one metric per file) and/or
    /// fleetsim timeseries.csv files.
    #[arg(value_name = "OBSERVED", required = true)]
    pub observed: Vec<PathBuf>,
    /// How observed data is read and paired.
    #[command(flatten)]
    pub obs: ObservedArgs,
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Reads the observed files and pairs them with simulated series.
pub fn load_observed(
    files: &[PathBuf],
    args: &ObservedArgs,
) -> Result<(Vec<Pairing>, Alignment), ObservedError> {
    let read: Vec<_> = files
        .iter()
        .map(|p| read_observed(p, &args.cluster))
        .collect::<Result<_, _>>()?;
    compare::pair(&read, &args.map, args.start)
}

/// The alignment as one sentence.
pub fn alignment_text(a: &Alignment) -> String {
    match a.origin_unix_s {
        Some(t) => format!(
            "Prometheus time {} ({t} Unix s, {}) is simulated time 0; observed values are interpolated linearly onto the simulated sample times within each observed span",
            observed::format_timestamp(t),
            if a.from_start { "--start" } else { "the first sample" }
        ),
        None => "timeseries.csv times are simulated seconds; observed values are interpolated linearly onto the simulated sample times within each observed span".into(),
    }
}

/// The alignment as JSON.
pub fn alignment_json(a: &Alignment) -> Value {
    json!({
        "origin_unix_s": a.origin_unix_s,
        "origin": a.origin_unix_s.map(observed::format_timestamp),
        "from": match (a.origin_unix_s, a.from_start) {
            (None, _) => "simulated seconds",
            (Some(_), true) => "--start",
            (Some(_), false) => "first sample",
        },
        "rule": alignment_text(a),
    })
}

fn signed(x: f64) -> String {
    let s = sig(x, 4);
    if x > 0.0 {
        format!("+{s}")
    } else {
        s
    }
}

/// The per-series table.
pub fn table(errors: &[SeriesError]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<20} {:>6} {:>8} {:>5} {:>10} {:>10} {:>8}  {:<24} {:<26} observed",
        "series",
        "points",
        "MAPE %",
        "zeros",
        "bias",
        "RMSE",
        "NRMSE",
        "peak sim / obs (Δ)",
        "at sim / obs (Δ) s"
    );
    for e in errors {
        let peak = format!(
            "{} / {} ({})",
            sig(e.sim_peak, 4),
            sig(e.obs_peak, 4),
            signed(e.peak_error)
        );
        let at = format!(
            "{} / {} ({})",
            sig(e.sim_peak_s, 6),
            sig(e.obs_peak_s, 6),
            signed(e.peak_time_error_s)
        );
        let _ = writeln!(
            s,
            "{:<20} {:>6} {:>8} {:>5} {:>10} {:>10} {:>8}  {:<24} {:<26} {}",
            e.series,
            e.points,
            e.mape_pct.map_or("-".into(), |m| format!("{m:.2}")),
            e.zero_points,
            signed(e.bias),
            sig(e.rmse, 4),
            sig(e.nrmse, 4),
            peak,
            at,
            e.observed
        );
    }
    s
}

/// The summary line under the table.
pub fn summary_line(errors: &[SeriesError]) -> String {
    format!(
        "mean NRMSE {} (the calibration objective); mean MAPE {}",
        sig(objective(errors), 4),
        mean_mape_pct(errors).map_or("- (every observed value is 0)".into(), |m| format!(
            "{m:.2} % (over non-zero observations)"
        ))
    )
}

/// Runs `fleetsim compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<ExitCode> {
    let ts = if args.run.is_dir() {
        args.run.join("timeseries.csv")
    } else {
        args.run.clone()
    };
    let sim_file = ts.display().to_string();
    let text = observed::read_text(Path::new(&ts))?;
    if !timeseries::looks_like(&text) {
        anyhow::bail!(
            "{sim_file}: not a fleetsim timeseries.csv (its header has no time_s and cluster columns)"
        );
    }
    let sim = timeseries::parse(&sim_file, &text, &args.obs.cluster)?;
    let (pairs, alignment) = load_observed(&args.observed, &args.obs)?;
    let errors = compare::compare_all(&sim_file, &sim, &pairs)?;
    let out = match args.format {
        Format::Json => {
            let mut t = serde_json::to_string_pretty(&json!({
                "run": sim_file,
                "cluster": args.obs.cluster,
                "alignment": alignment_json(&alignment),
                "series": errors,
                "mean_nrmse": objective(&errors),
                "mean_mape_pct": mean_mape_pct(&errors),
            }))?;
            t.push('\n');
            t
        }
        Format::Text => {
            let mut s = format!(
                "compare {sim_file} (cluster {}) with {} observed series\nalignment: {}\n",
                args.obs.cluster,
                pairs.len(),
                alignment_text(&alignment)
            );
            s += &table(&errors);
            s += &summary_line(&errors);
            s.push('\n');
            s
        }
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
