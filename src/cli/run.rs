//! `fleetsim run [SCENARIO]`: one run, its summary, time series and timeline.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::set::{BudgetArgs, SetArgs};
use crate::budget;
use crate::duration::format_duration;
use crate::engine::SimTime;
use crate::metrics::{Figures, Summary};
use crate::model::{self, RunOutput};
use crate::output::{shell_quote, write_atomic, OutputSet};
use crate::review;
use crate::scenario::{self, ScenarioDocument};

/// The scenario `fleetsim run` uses when given none: the incident as reported.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/incident-ca-herd.toml");
/// The name errors and outputs give the embedded scenario.
pub const DEFAULT_SCENARIO_FILE: &str = "incident-ca-herd.toml";

/// Output format on stdout.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A readable summary.
    Text,
    /// The summary JSON (as in `summary.json`).
    Json,
}

/// Flags of `fleetsim run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Scenario file (TOML), `-` for standard input. Without one, the embedded incident
    /// scenario (`scenarios/incident-ca-herd.toml`) runs.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,
    /// Master seed; default: the scenario's `[scenario] seed`.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output folder (replaced whole, atomically, when the run is done); default:
    /// `output/<scenario name>`.
    #[arg(short = 'o', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the time series and the summary as OpenMetrics text to FILE, with
    /// timestamps (`promtool tsdb create-blocks-from openmetrics FILE DIR` backfills it;
    /// see docs/outputs.md).
    #[arg(long, value_name = "FILE")]
    pub openmetrics: Option<PathBuf>,
    /// Wall-clock time of simulated time 0 in `--openmetrics` (RFC 3339, e.g.
    /// 2026-03-01T02:00:00Z); default 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "RFC3339", requires = "openmetrics", value_parser = parse_start)]
    pub start: Option<f64>,
    /// Scenario overrides.
    #[command(flatten)]
    pub set: SetArgs,
    /// Memory budget.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

fn parse_start(text: &str) -> Result<f64, String> {
    crate::report::openmetrics::parse_rfc3339(text)
}

/// Fails before any work when `path` cannot be an output file (an existing directory,
/// or a parent that is a file).
pub fn check_output_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        anyhow::bail!(
            "{flag} {}: is a directory; it needs a file name",
            path.display()
        );
    }
    if path.file_name().is_none() {
        anyhow::bail!("{flag} {}: needs a file name", path.display());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        if parent.exists() && !parent.is_dir() {
            anyhow::bail!(
                "{flag} {}: {} is not a directory",
                path.display(),
                parent.display()
            );
        }
    }
    Ok(())
}

/// Loads a scenario file, or standard input when the path is `-` (see
/// [`scenario::load`]). The error is every problem found, one per line, as
/// `fleetsim validate` prints them.
pub fn load_path(
    path: &Path,
    overrides: &[crate::scenario::Override],
) -> Result<ScenarioDocument, String> {
    scenario::load(path, overrides).map_err(|e| e.to_string())
}

/// The files of a run's output folder.
pub const RUN_FILES: [&str; 4] = [
    "summary.json",
    "timeseries.csv",
    "timeline.svg",
    "timeline.png",
];

/// Loads the scenario a command names (`-`: standard input), or the embedded default.
pub fn load_scenario(path: Option<&Path>, set: &SetArgs) -> anyhow::Result<ScenarioDocument> {
    let loaded = match path {
        Some(p) => load_path(p, &set.set),
        None => scenario::load_str(DEFAULT_SCENARIO_FILE, DEFAULT_SCENARIO, &set.set)
            .map_err(|e| e.to_string()),
    };
    loaded.map_err(|errors| anyhow::anyhow!("{errors}"))
}

/// The command line that replays a run exactly.
pub fn replay_command(path: Option<&Path>, set: &SetArgs, seed: u64) -> String {
    let mut cmd = String::from("fleetsim run");
    if let Some(p) = path {
        cmd.push(' ');
        cmd.push_str(&shell_quote(&p.display().to_string()));
    }
    cmd.push_str(&format!(" --seed {seed}"));
    for o in &set.set {
        cmd.push_str(" --set ");
        cmd.push_str(&shell_quote(o.text()));
    }
    cmd
}

/// Runs `fleetsim run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    if let Some(p) = &args.openmetrics {
        check_output_file("--openmetrics", p)?;
    }
    let doc = load_scenario(args.scenario.as_deref(), &args.set)?;
    let sc = &doc.scenario;
    let seed = args.seed.unwrap_or(sc.seed);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(&sc.name));
    // Everything that can be refused is refused before the run: the budget, the folder.
    budget::check_run(&doc, sc, args.budget.max_memory, 1).map_err(|e| anyhow::anyhow!("{e}"))?;
    let set = OutputSet::begin(&out_dir, &|n| RUN_FILES.contains(&n))?;
    let header = format!("seed={seed} scenario={} hash={}", sc.name, doc.hash);
    if args.format == Format::Text {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{header}")?;
        out.flush()?;
    } else {
        eprintln!("{header}");
    }
    let result = model::run(sc, seed, &doc.hash);
    let mut files = write_outputs(set, &doc, &result)?;
    if let Some(path) = &args.openmetrics {
        let start = match args.start {
            Some(t) => t,
            None => parse_start(crate::report::openmetrics::DEFAULT_START)
                .map_err(anyhow::Error::msg)?,
        };
        let summary = serde_json::to_value(&result.summary).context("summary as JSON")?;
        let csv = result.recorder.to_csv(&result.cluster_names);
        // Per-cluster series for the clusters that did not come through cleanly.
        let affected: Vec<String> = result
            .summary
            .clusters
            .iter()
            .filter(|c| !c.figures.clean())
            .map(|c| c.name.clone())
            .collect();
        let text = crate::report::openmetrics::render(&summary, &csv, &affected, start)
            .context("rendering OpenMetrics")?;
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        files.push(path.display().to_string());
    }
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Json => stdout.write_all(result.summary.to_json().as_bytes())?,
        Format::Text => {
            write!(stdout, "{}", render_text(&result.summary, sc.horizon))?;
            writeln!(
                stdout,
                "replay: {}",
                replay_command(args.scenario.as_deref(), &args.set, seed)
            )?;
            writeln!(stdout, "wrote {}", files.join(", "))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders every output, writes them into the set's staging folder and puts the set in
/// place in one step: a failure (a full disk, a kill) leaves the folder as it was.
pub fn write_outputs(
    mut set: OutputSet,
    doc: &ScenarioDocument,
    r: &RunOutput,
) -> anyhow::Result<Vec<String>> {
    let csv = r.recorder.to_csv(&r.cluster_names);
    let chart =
        review::run_timeline(&doc.scenario, &r.summary, &csv).context("drawing the timeline")?;
    let svg = chart.to_svg().context("drawing the timeline")?;
    let png = chart.to_png().context("drawing the timeline")?;
    let files: [(&str, Vec<u8>); 4] = [
        ("summary.json", r.summary.to_json().into_bytes()),
        ("timeseries.csv", csv.into_bytes()),
        ("timeline.svg", svg.into_bytes()),
        ("timeline.png", png),
    ];
    for (name, bytes) in files {
        set.write(name, &bytes)
            .with_context(|| format!("writing {}", set.final_path(name).display()))?;
    }
    let placed = set.commit()?;
    Ok(placed.iter().map(|p| p.display().to_string()).collect())
}

/// Clusters that did not come through cleanly, worst first (at most 5): the ones a
/// reader should look at.
pub fn affected_clusters(s: &Summary) -> Vec<String> {
    s.affected_clusters()
}

fn clean(f: &Figures) -> bool {
    f.clean()
}

fn secs(s: Option<f64>) -> String {
    match s {
        Some(x) => format_duration(SimTime::from_secs_f64(x.round())),
        None => "never".into(),
    }
}

/// The human summary of a run.
pub fn render_text(s: &Summary, horizon: SimTime) -> String {
    let f = &s.fleet;
    let mut out = String::new();
    let yes = |b: bool| if b { "yes" } else { "no" };
    out += &format!(
        "simulated {} in {:.2} s wall: {} events (stop: {}), trace {}\n",
        format_duration(SimTime::from_secs_f64(s.sim_end_s.round()).min(horizon)),
        s.wall_s,
        s.events,
        s.stop_reason,
        s.trace_hash
    );
    out += &format!(
        "fleet: {} clusters, {} pods; upgrade complete: {}{}\n",
        s.clusters.len(),
        f.pods_total,
        secs(f.upgrade_complete_s),
        if f.upgrade_failed {
            " (failed or halted)"
        } else {
            ""
        }
    );
    out += &format!(
        "  recovered: {} (at {}), metastable: {}, lowest ready: {:.1} %\n",
        yes(f.recovered),
        secs(f.time_to_recover_s),
        yes(f.metastable),
        100.0 * f.min_ready_fraction
    );
    out += &format!(
        "  crashloop: peak {} pods, {:.0} pod-seconds; kubelet restarts {}; evictions {}\n",
        f.peak_crashloop_pods, f.crashloop_pod_seconds, f.pod_restarts, f.evictions
    );
    out += &format!(
        "  CSRs: {} created, {} istiod timeouts, {} refused by istiod's limiter, Failed objects peak {}, wasted signings {}\n",
        f.csr_requests, f.csr_timeouts, f.csr_rate_limited, f.csr_failed_objects_peak, f.csr_wasted_signings
    );
    out += &format!(
        "  CA: peak {} requests, mean utilisation {:.1} % (busiest CA)\n",
        f.ca_peak_queue,
        100.0 * f.ca_utilization
    );
    out += &format!(
        "  control plane: apiserver 429s {}, peak seats {}; webhook failures {}; no istiod ready {:.0} s; CSRs orphaned {}, skipped gone {}\n",
        f.apiserver_rejections,
        f.apiserver_peak_inflight,
        f.webhook_failures,
        f.istiod_unready_s,
        f.csr_orphaned,
        f.csr_skipped_gone
    );
    if f.cert_rotations + f.cert_expired + f.pca_issue_calls > 0 {
        out += &format!(
            "  rotation: {} certificates renewed, {} expired first; AWS PCA IssueCertificate calls {}\n",
            f.cert_rotations, f.cert_expired, f.pca_issue_calls
        );
    }
    if !s.assumptions.is_empty() {
        out += &format!("  assumptions ({}, unsourced):\n", s.assumptions.len());
        for a in &s.assumptions {
            out += &format!("    {} = {}: {}\n", a.key, a.value, a.note);
        }
    }
    if s.clamped_events > 0 {
        out += &format!(
            "warning: {} events were scheduled in the past and ran at the current time instead: a model bug; please report it with the replay command below\n",
            s.clamped_events
        );
    }
    let affected = affected_clusters(s);
    let clean_count = s.clusters.iter().filter(|c| clean(&c.figures)).count();
    if affected.is_empty() {
        out += &format!("all {} clusters came through cleanly\n", s.clusters.len());
    } else {
        out += "clusters needing attention:\n";
        for name in &affected {
            let c = s.clusters.iter().find(|c| &c.name == name).expect("listed");
            let g = &c.figures;
            out += &format!(
                "  {:<20} recovered={} metastable={} peak_crashloop={} restarts={} csr_timeouts={} failed_csrs_peak={} upgrade={}\n",
                c.name,
                yes(g.recovered),
                yes(g.metastable),
                g.peak_crashloop_pods,
                g.pod_restarts,
                g.csr_timeouts,
                g.csr_failed_objects_peak,
                if g.upgrade_failed { "failed".to_string() } else { secs(g.upgrade_complete_s) }
            );
        }
        out += &format!("{clean_count} other clusters came through cleanly\n");
    }
    out
}
