//! `fleetsim ca fit LOADTEST.csv`: Gunther's USL fitted to a load test of the CA, its
//! plot, and the `[ca.NAME]` stanza that makes the simulated CA scale like the real one.
//!
//! `fleetsim ca` keeps its own flags (the standalone CA model, [`super::ca`]); `fit` is
//! a subcommand beside them ([`CaCommand`]: clap's `args_conflicts_with_subcommands`, so
//! `fleetsim ca --arrival-rate ...` parses exactly as before).
//!
//! # From the fit to the scenario
//! The CA model (`src/ca.rs`) runs `n` requests in service each at rate
//! `1 / (S (1 + sigma (n-1) + kappa n (n-1)))`, `S` the service time of one request
//! alone. With `n = N` requests always in service, it completes
//! `N / (E[S] (1 + sigma (N-1) + kappa N (N-1)))` per second, which is the USL's `X(N)`
//! when `service_mean = E[S] = 1 / lambda` (`lambda` = throughput of one request alone),
//! `contention_sigma = sigma` and `coherency_kappa = kappa`, whatever the service-time
//! distribution. `workers` caps `n`: it is the concurrency the real CA allows (the
//! load test cannot tell), by default the largest concurrency load-tested.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::ca::{self as standalone_cli, CaArgs};
use crate::ca::{CaConfig, ServiceTime, Usl};
use crate::engine::SimTime;
use crate::fit::{self, Measurement, UslFit};
use crate::numfmt::{duration_decimal, sig};
use crate::observed::{self, loadtest};
use crate::output::{shell_quote, write_atomic};
use crate::report::usl::{usl_fit_csv, usl_fit_from_csv};

/// `fleetsim ca`: the standalone CA model's flags, or a subcommand.
#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    long_about = "Simulates one CA (workers signing in parallel, FIFO queue, optional token-bucket \
rate limit, client timeouts and retries, a capacity dip, USL overload) under Poisson arrivals \
and prints what it measured over [warmup, horizon), next to Erlang C, Erlang A or M/M/c+D \
where that formula's assumptions hold.\n\n`fleetsim ca fit LOADTEST.csv` instead fits the \
Universal Scalability Law to a load test of the real CA and prints the [ca.NAME] stanza that \
makes the simulated CA scale like it.\n\nDurations take units: 250ms, 10s, 5m, 1h."
)]
pub struct CaCommand {
    /// `fit`, or nothing for the standalone model.
    #[command(subcommand)]
    pub action: Option<CaAction>,
    /// The standalone model's flags (absent with a subcommand).
    #[command(flatten)]
    pub sim: Option<CaArgs>,
}

/// Subcommands of `fleetsim ca`.
#[derive(Subcommand, Debug)]
pub enum CaAction {
    /// Fit Gunther's Universal Scalability Law to a CA load test (CSV
    /// `concurrency,throughput`): coefficients with standard errors, the peak, a plot,
    /// and the [ca.NAME] stanza to paste into a scenario.
    Fit(FitArgs),
}

/// Output format of `ca fit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A readable report with the stanza.
    Text,
    /// One JSON object (as written to `usl_fit.json`).
    Json,
}

/// Flags of `fleetsim ca fit`.
#[derive(clap::Args, Debug)]
pub struct FitArgs {
    /// Load test: CSV with a header naming `concurrency` (requests in flight, > 0) and
    /// `throughput` (completed requests per second, >= 0); `#` starts a comment line,
    /// other columns are ignored, a concurrency may repeat.
    #[arg(value_name = "LOADTEST.csv")]
    pub loadtest: PathBuf,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Output directory for usl_fit.csv, .svg, .png, .json and stanza.toml; default:
    /// `output/ca-fit/<LOADTEST stem>`.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Name of the CA in the stanza (`[ca.NAME]`).
    #[arg(long, value_name = "NAME", default_value = "loadtested", value_parser = ca_name)]
    pub name: String,
    /// `workers` of the stanza: how many requests the real CA serves at once (1 to
    /// 1000000); default: the largest concurrency in the load test.
    #[arg(long, value_name = "N", value_parser = workers, allow_negative_numbers = true)]
    pub workers: Option<u32>,
}

fn ca_name(s: &str) -> Result<String, String> {
    let ok = (1..=100).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_string())
    } else {
        Err("must be 1-100 letters, digits, '-' or '_'".into())
    }
}

fn workers(s: &str) -> Result<u32, String> {
    match s.trim().parse::<i64>() {
        Ok(v) if (1..=1_000_000).contains(&v) => Ok(v as u32),
        Ok(_) => Err("must be an integer from 1 to 1000000".into()),
        Err(_) => Err("not an integer".into()),
    }
}

/// Runs `fleetsim ca` or `fleetsim ca fit`.
pub fn run(cmd: CaCommand) -> anyhow::Result<ExitCode> {
    match (cmd.action, cmd.sim) {
        (Some(CaAction::Fit(args)), _) => run_fit(args),
        (None, Some(sim)) => standalone_cli::run(sim),
        // clap requires the standalone flags when no subcommand is given.
        (None, None) => {
            anyhow::bail!("fleetsim ca needs its flags (see --help) or a subcommand (fit)")
        }
    }
}

/// The values of the `[ca.NAME]` stanza, as written (so the scenario reads back exactly
/// these).
#[derive(Debug, Clone, PartialEq)]
pub struct StanzaValues {
    /// `[ca.NAME]`.
    pub name: String,
    /// `workers`.
    pub workers: u32,
    /// `service_mean` = 1 / lambda, to the nanosecond.
    pub service_mean: SimTime,
    /// `contention_sigma`, 6 significant digits.
    pub sigma: f64,
    /// `coherency_kappa`, 6 significant digits.
    pub kappa: f64,
}

impl StanzaValues {
    /// The stanza's values for a fit: `service_mean = 1 / lambda` seconds (lambda per
    /// second), the coefficients rounded to 6 significant digits. `None` when lambda is
    /// not positive or 1 / lambda rounds to 0 ns.
    pub fn from_fit(fit: &UslFit, name: &str, workers: u32) -> Option<StanzaValues> {
        let mean_s = 1.0 / fit.lambda;
        if !(mean_s.is_finite() && mean_s > 0.0) {
            return None;
        }
        let service_mean = SimTime::from_secs_f64(mean_s);
        if service_mean.as_nanos() == 0 {
            return None;
        }
        let read = |x: f64| sig(x, 6).parse::<f64>().unwrap_or(x);
        Some(StanzaValues {
            name: name.to_string(),
            workers,
            service_mean,
            sigma: read(fit.sigma),
            kappa: read(fit.kappa),
        })
    }

    /// The CA the stanza configures (exponential service, no rate limit).
    pub fn ca_config(&self) -> CaConfig {
        CaConfig {
            usl: Usl {
                sigma: self.sigma,
                kappa: self.kappa,
            },
            ..CaConfig::plain(
                self.workers,
                ServiceTime::Exponential {
                    mean: self.service_mean,
                },
            )
        }
    }

    /// The TOML lines, headed by comments saying where each value comes from.
    pub fn toml(&self, source: &str, fit: &UslFit) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# USL fit of {source} (fleetsim ca fit): lambda = {}/s, sigma = {}, kappa = {}",
            sig(fit.lambda, 6),
            sig(fit.sigma, 6),
            sig(fit.kappa, 6)
        );
        let _ = writeln!(
            s,
            "# service_mean = 1 / lambda (one request alone); workers = how many requests the real CA serves at once."
        );
        if self.sigma >= 1.0 || self.kappa > 1.0 {
            let _ = writeln!(
                s,
                "# NOTE: a scenario takes 0 <= contention_sigma < 1 and 0 <= coherency_kappa <= 1; this fit is outside."
            );
        }
        let _ = writeln!(s, "[ca.{}]", self.name);
        let _ = writeln!(s, "workers = {}", self.workers);
        let _ = writeln!(
            s,
            "service_mean = \"{}\"",
            duration_decimal(self.service_mean)
        );
        let _ = writeln!(s, "contention_sigma = {}", toml_float(self.sigma));
        let _ = writeln!(s, "coherency_kappa = {}", toml_float(self.kappa));
        s
    }
}

/// A float TOML reads as a float (`0` -> `0.0`).
fn toml_float(x: f64) -> String {
    let s = sig(x, 6);
    if s.contains(['.', 'e', 'E']) || !x.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

/// Points of the fitted curve for the plot: from 0 to past the data (and the peak, if it
/// is within 4 x the largest concurrency tested).
pub fn curve_points(fit: &UslFit, points: &[Measurement]) -> Vec<(f64, f64)> {
    let max_n = points.iter().map(|m| m.concurrency).fold(1.0, f64::max);
    let mut end = max_n * 1.1;
    if let Some((n, _)) = fit.peak() {
        if n > max_n && n <= 4.0 * max_n {
            end = n * 1.25;
        }
    }
    (0..=200)
        .map(|i| {
            let n = end * i as f64 / 200.0;
            (n, fit.throughput(n))
        })
        .collect()
}

/// The fit's figures as one JSON object.
pub fn to_json(
    source: &str,
    points: &[Measurement],
    fit: &UslFit,
    stanza: Option<&StanzaValues>,
    stanza_text: Option<&str>,
) -> Value {
    let distinct = {
        let mut v: Vec<f64> = points.iter().map(|m| m.concurrency).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v.len()
    };
    let best = points
        .iter()
        .max_by(|a, b| a.throughput.total_cmp(&b.throughput))
        .map(|m| json!({"concurrency": m.concurrency, "throughput": m.throughput}));
    let (peak_n, peak_x) = fit.peak().unzip();
    let whole = fit.peak().map(|(n, _)| {
        let (lo, hi) = (n.floor().max(1.0), n.ceil().max(1.0));
        let n = if fit.throughput(hi) > fit.throughput(lo) {
            hi
        } else {
            lo
        };
        json!({"concurrency": n, "throughput": fit.throughput(n)})
    });
    json!({
        "file": source,
        "points": points.len(),
        "distinct_concurrencies": distinct,
        "model": "X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1))",
        "lambda": fit.lambda,
        "lambda_se": fit.lambda_se,
        "sigma": fit.sigma,
        "sigma_se": fit.sigma_se,
        "kappa": fit.kappa,
        "kappa_se": fit.kappa_se,
        "residual_se": fit.residual_se,
        "degrees_of_freedom": points.len().saturating_sub(fit::USL_PARAMETERS),
        "sse": fit.sse,
        "r_squared": fit.r_squared,
        "iterations": fit.iterations,
        "peak_concurrency": peak_n,
        "peak_throughput": peak_x,
        "peak_whole_concurrency": whole,
        "peak_note": peak_note(fit),
        "ceiling_throughput": fit.ceiling(),
        "max_measured": best,
        "stanza": stanza.map(|v| json!({
            "name": v.name,
            "workers": v.workers,
            "service_mean": duration_decimal(v.service_mean),
            "contention_sigma": v.sigma,
            "coherency_kappa": v.kappa,
            "toml": stanza_text,
        })),
    })
}

/// One sentence on the peak.
pub fn peak_note(fit: &UslFit) -> String {
    match (fit.peak(), fit.ceiling()) {
        (Some((n, x)), _) => format!(
            "peak at N* = sqrt((1 - sigma) / kappa) = {}, X(N*) = {}/s; beyond it throughput falls",
            sig(n, 4),
            sig(x, 6)
        ),
        (None, Some(c)) => format!(
            "no peak: kappa = 0, so throughput rises forever (N* infinite), approaching lambda / sigma = {}/s (Amdahl)",
            sig(c, 6)
        ),
        (None, None) if fit.kappa == 0.0 => {
            "no peak: sigma = kappa = 0, linear scaling (N* infinite)".to_string()
        }
        (None, None) => "no peak: sigma >= 1, throughput falls from N = 1".to_string(),
    }
}

fn pm(x: f64, se: Option<f64>) -> String {
    match se {
        Some(se) => format!("{} ± {}", sig(x, 6), sig(se, 2)),
        None => format!(
            "{} (no standard error: as many parameters as points)",
            sig(x, 6)
        ),
    }
}

fn to_text(
    source: &str,
    points: &[Measurement],
    fit: &UslFit,
    stanza_text: Option<&str>,
    files: &[String],
) -> String {
    let j = to_json(source, points, fit, None, None);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fleetsim ca fit: {source}: {} measurements at {} concurrencies",
        points.len(),
        j["distinct_concurrencies"]
    );
    let _ = writeln!(
        s,
        "USL X(N) = lambda N / (1 + sigma (N-1) + kappa N (N-1)), least squares, sigma and kappa >= 0 ({} Levenberg–Marquardt iterations)",
        fit.iterations
    );
    let _ = writeln!(
        s,
        "  lambda       {} /s  (throughput of one request alone)",
        pm(fit.lambda, fit.lambda_se)
    );
    let _ = writeln!(
        s,
        "  sigma        {}  (contention)",
        pm(fit.sigma, fit.sigma_se)
    );
    let _ = writeln!(
        s,
        "  kappa        {}  (coherency)",
        pm(fit.kappa, fit.kappa_se)
    );
    let dof = points.len().saturating_sub(fit::USL_PARAMETERS);
    let _ = writeln!(
        s,
        "  r_squared    {}   residual standard error {} on {dof} degrees of freedom",
        sig(fit.r_squared, 6),
        fit.residual_se.map_or("-".into(), |x| sig(x, 4)),
    );
    let _ = writeln!(s, "{}", peak_note(fit));
    let num = |v: &Value| v.as_f64().map_or("-".into(), |x| sig(x, 6));
    if let Some(w) = j["peak_whole_concurrency"].as_object() {
        let _ = writeln!(
            s,
            "  best whole concurrency: N = {}, X = {}/s",
            num(&w["concurrency"]),
            num(&w["throughput"])
        );
    }
    if let Some(m) = j["max_measured"].as_object() {
        let _ = writeln!(
            s,
            "  highest measured: X = {}/s at N = {}",
            num(&m["throughput"]),
            num(&m["concurrency"])
        );
    }
    match stanza_text {
        Some(t) => {
            let _ = writeln!(
                s,
                "\nStanza for a scenario (docs/scenario.md, [ca.<name>]):\n{t}"
            );
        }
        None => {
            let _ = writeln!(s, "\nno stanza: 1 / lambda is not a usable service time");
        }
    }
    let _ = writeln!(s, "wrote {}", files.join(", "));
    s
}

/// Runs `fleetsim ca fit`.
pub fn run_fit(args: FitArgs) -> anyhow::Result<ExitCode> {
    let source = args.loadtest.display().to_string();
    let text = observed::read_text(&args.loadtest)?;
    let points = loadtest::parse(&source, &text)?;
    let fit = fit::fit_usl(&points).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    let max_n = points.iter().map(|m| m.concurrency).fold(1.0, f64::max);
    let workers = args
        .workers
        .unwrap_or_else(|| max_n.round().clamp(1.0, 1_000_000.0) as u32);
    let stanza = StanzaValues::from_fit(&fit, &args.name, workers);
    let stanza_text = stanza.as_ref().map(|v| v.toml(&source, &fit));

    let dir = args.out.clone().unwrap_or_else(|| {
        Path::new("output")
            .join("ca-fit")
            .join(observed::file_stem(&args.loadtest))
    });
    let measured: Vec<(f64, f64)> = points
        .iter()
        .map(|m| (m.concurrency, m.throughput))
        .collect();
    let csv = usl_fit_csv(&measured, &curve_points(&fit, &points), fit.peak());
    let title = format!(
        "USL fit of {}: lambda {}/s, sigma {}, kappa {}",
        observed::file_stem(&args.loadtest),
        sig(fit.lambda, 4),
        sig(fit.sigma, 3),
        sig(fit.kappa, 3)
    );
    let chart = usl_fit_from_csv(&csv, &title, "requests/s").context("drawing the USL fit")?;
    let json_text = {
        let mut t = serde_json::to_string_pretty(&to_json(
            &source,
            &points,
            &fit,
            stanza.as_ref(),
            stanza_text.as_deref(),
        ))?;
        t.push('\n');
        t
    };
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("usl_fit.csv", csv.into_bytes()),
        (
            "usl_fit.svg",
            chart.to_svg().context("drawing the USL fit")?.into_bytes(),
        ),
        (
            "usl_fit.png",
            chart.to_png().context("drawing the USL fit")?,
        ),
        ("usl_fit.json", json_text.clone().into_bytes()),
    ];
    if let Some(t) = &stanza_text {
        files.push(("stanza.toml", t.clone().into_bytes()));
    }
    let mut written = Vec::new();
    for (name, bytes) in files {
        let path = dir.join(name);
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(shell_quote(&path.display().to_string()));
    }
    let out = match args.format {
        Format::Json => json_text,
        Format::Text => to_text(&source, &points, &fit, stanza_text.as_deref(), &written),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
