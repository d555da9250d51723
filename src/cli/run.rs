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
    /// Also write Kubernetes events and istio-agent log lines, one JSON object a line,
    /// to FILE (sampled as the kube event recorder does; see docs/outputs.md).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Also write a Chrome Trace Event JSON file (Perfetto, chrome://tracing): phase
    /// spans of a sample of pods and counter tracks per cluster.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Wall-clock time of simulated time 0 in `--openmetrics` and `--events` (RFC 3339,
    /// e.g. 2026-03-01T02:00:00Z); default 2026-01-01T00:00:00Z.
    #[arg(long, value_name = "RFC3339", value_parser = parse_start)]
    pub start: Option<f64>,
    /// The order events run in. `windowed` (the default) runs each cluster's events up to
    /// the next fleet-wide event before the next cluster's, which keeps a cluster's
    /// state in the cache; `global` runs every event in time order. The outputs are the
    /// same bytes either way (docs/outputs.md); `--events` and `--trace` run in `global`.
    #[arg(long, value_enum, default_value_t = EventOrder::Windowed)]
    pub order: EventOrder,
    /// Scenario overrides.
    #[command(flatten)]
    pub set: SetArgs,
    /// Memory budget.
    #[command(flatten)]
    pub budget: BudgetArgs,
}

/// `run --order`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventOrder {
    /// Cluster by cluster between fleet-wide events.
    Windowed,
    /// Every event in time order.
    Global,
}

impl From<EventOrder> for crate::engine::Order {
    fn from(o: EventOrder) -> Self {
        match o {
            EventOrder::Windowed => crate::engine::Order::Windowed,
            EventOrder::Global => crate::engine::Order::Global,
        }
    }
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
    if let Some(p) = &args.events {
        check_output_file("--events", p)?;
    }
    if let Some(p) = &args.trace {
        check_output_file("--trace", p)?;
    }
    if args.start.is_some() && args.openmetrics.is_none() && args.events.is_none() {
        anyhow::bail!("--start needs --openmetrics or --events");
    }
    let doc = load_scenario(args.scenario.as_deref(), &args.set)?;
    let sc = &doc.scenario;
    let seed = args.seed.unwrap_or(sc.seed);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(&sc.name));
    // Everything that can be refused is refused before the run: the budget, the folder.
    if args.openmetrics.is_some() {
        budget::check_run_buffered(&doc, sc, args.budget.max_memory)
    } else {
        budget::check_run(&doc, sc, args.budget.max_memory, 1)
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut set = OutputSet::begin(&out_dir, &|n| RUN_FILES.contains(&n))?;
    // The time series goes to the staging folder as it is sampled (issue 11 row 4).
    let series = set
        .create("timeseries.csv")
        .with_context(|| format!("writing {}", set.final_path("timeseries.csv").display()))?;
    let header = format!("seed={seed} scenario={} hash={}", sc.name, doc.hash);
    if args.format == Format::Text {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{header}")?;
        out.flush()?;
    } else {
        eprintln!("{header}");
    }
    let recording = model::journal::Recording {
        events: args.events.is_some(),
        trace: args.trace.is_some(),
    };
    let series_path = set.staging().join("timeseries.csv");
    let result = model::run_streaming(
        sc,
        seed,
        &doc.hash,
        Box::new(std::io::BufWriter::with_capacity(1 << 16, series)),
        recording,
        args.order.into(),
    )
    .with_context(|| format!("writing {}", set.final_path("timeseries.csv").display()))?;
    let mut files = write_streamed_outputs(set, &doc, &result, &series_path)?;
    let start = match args.start {
        Some(t) => t,
        None => {
            parse_start(crate::report::openmetrics::DEFAULT_START).map_err(anyhow::Error::msg)?
        }
    };
    if let Some(path) = &args.events {
        let (text, _) = events_text(sc, &result, start);
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        files.push(path.display().to_string());
    }
    if let Some(path) = &args.trace {
        let text = trace_text(sc, &result);
        write_atomic(path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        files.push(path.display().to_string());
    }
    if let Some(path) = &args.openmetrics {
        let summary = serde_json::to_value(&result.summary).context("summary as JSON")?;
        let csv = std::fs::read_to_string(out_dir.join("timeseries.csv"))
            .with_context(|| format!("reading {}", out_dir.join("timeseries.csv").display()))?;
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
            let stories = model::explain::explain(sc, &result.summary, &result.journal);
            write!(stdout, "{}", model::explain::render(&stories))?;
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

/// The names `--events` and `--trace` give clusters, workloads and node groups.
pub fn record_names(sc: &crate::scenario::Scenario) -> crate::output::events::Names {
    crate::output::events::Names {
        clusters: sc.clusters.iter().map(|c| c.name.clone()).collect(),
        workloads: sc
            .clusters
            .iter()
            .map(|c| {
                std::iter::once("istiod".to_string())
                    .chain(c.workloads.iter().map(|w| w.name.clone()))
                    .collect()
            })
            .collect(),
        node_groups: sc
            .clusters
            .iter()
            .map(|c| c.node_groups.iter().map(|g| g.name.clone()).collect())
            .collect(),
    }
}

/// The `--events` file of a run recorded with events; `start`: Unix seconds of time 0.
pub fn events_text(
    sc: &crate::scenario::Scenario,
    r: &RunOutput,
    start: f64,
) -> (String, crate::output::events::Rendered) {
    crate::output::events::render(r.journal.events.records(), &record_names(sc), start)
}

/// The `--trace` file of a run recorded with a trace.
pub fn trace_text(sc: &crate::scenario::Scenario, r: &RunOutput) -> String {
    use crate::output::{events, trace};
    let names = record_names(sc);
    let mut spans = Vec::new();
    for (c, list) in r.spans.iter().enumerate() {
        for s in list {
            spans.push(trace::Span {
                cluster: c as u32,
                pod: s.pod.serial,
                pod_name: events::pod_name(&names, c as u32, s.pod),
                phase: s.phase,
                start_ns: s.start.as_nanos(),
                end_ns: s.end.as_nanos(),
            });
        }
    }
    trace::render(&names.clusters, &spans, &r.journal.counters)
}

/// Writes a run's outputs, its `timeseries.csv` already streamed to `series` (in the
/// set's staging folder): syncs it, draws the timeline from the rows it needs (read back
/// a line at a time: [`timeline_rows`]), writes the rest into the staging folder and
/// puts the set in place in one step: a failure (a full disk, a kill) leaves the folder
/// as it was.
pub fn write_streamed_outputs(
    mut set: OutputSet,
    doc: &ScenarioDocument,
    r: &RunOutput,
    series: &Path,
) -> anyhow::Result<Vec<String>> {
    let final_series = set.final_path("timeseries.csv");
    let synced = std::fs::File::open(series).and_then(|f| f.sync_all());
    synced.with_context(|| format!("writing {}", final_series.display()))?;
    let highlight = r.summary.affected_clusters();
    let file = std::fs::File::open(series)
        .with_context(|| format!("reading {}", final_series.display()))?;
    let csv = timeline_rows(std::io::BufReader::new(file), &highlight)
        .with_context(|| format!("reading {}", final_series.display()))?;
    let chart =
        review::run_timeline(&doc.scenario, &r.summary, &csv).context("drawing the timeline")?;
    let svg = chart.to_svg().context("drawing the timeline")?;
    let png = chart.to_png().context("drawing the timeline")?;
    drop(csv);
    let files: [(&str, Vec<u8>); 3] = [
        ("summary.json", r.summary.to_json().into_bytes()),
        ("timeline.svg", svg.into_bytes()),
        ("timeline.png", png),
    ];
    for (name, bytes) in files {
        set.write(name, &bytes)
            .with_context(|| format!("writing {}", set.final_path(name).display()))?;
    }
    let mut placed = set.commit()?;
    // In the order of RUN_FILES.
    placed.sort_by_key(|p| {
        RUN_FILES
            .iter()
            .position(|n| p.file_name().is_some_and(|f| f == *n))
    });
    Ok(placed.iter().map(|p| p.display().to_string()).collect())
}

/// At most this many sample times are drawn on a timeline: a longer series is thinned
/// to every k-th sample time for the figure (the CSV keeps every row).
pub const MAX_TIMELINE_SAMPLES: usize = 20_000;

/// The rows of a streamed `timeseries.csv` the timeline needs, as CSV text: the header,
/// the fleet rows and the rows of the `highlight`ed clusters (thinned to every k-th
/// sample time when there are more than [`MAX_TIMELINE_SAMPLES`]), and of every other
/// cluster its first row and the first at which its nodes changed (what the wave
/// markers read). Memory: sample times + highlighted rows + 2 rows per cluster, not
/// clusters x samples.
pub fn timeline_rows(
    input: impl std::io::BufRead,
    highlight: &[String],
) -> std::io::Result<String> {
    use std::collections::HashMap;
    let mut lines = input.lines();
    let Some(header) = lines.next().transpose()? else {
        return Ok(String::new());
    };
    let col = |name: &str| header.split(',').position(|h| h == name);
    let (Some(c_cluster), Some(c_old), Some(c_new)) =
        (col("cluster"), col("nodes_old"), col("nodes_new"))
    else {
        return Ok(format!("{header}\n"));
    };
    // Rows are grouped by sample time, each group ended by its fleet row; count them
    // first to know the thinning step.
    let mut rows: Vec<(usize, bool, String)> = Vec::new();
    let mut first: HashMap<String, (String, String, bool)> = HashMap::new();
    let mut time_index = 0usize;
    for line in lines {
        let line = line?;
        let mut fields = line.split(',');
        let field = |k: usize| line.split(',').nth(k).unwrap_or("").to_string();
        let cluster = fields.nth(c_cluster).unwrap_or("");
        if cluster == crate::report::figures::FLEET_TOTAL {
            rows.push((time_index, true, line.clone()));
            time_index += 1;
            continue;
        }
        if highlight.iter().any(|h| h == cluster) {
            rows.push((time_index, true, line.clone()));
            continue;
        }
        let (old, new) = (field(c_old), field(c_new));
        match first.get_mut(cluster) {
            None => {
                first.insert(cluster.to_string(), (old, new, false));
                rows.push((time_index, false, line.clone()));
            }
            Some((o0, n0, changed)) if !*changed => {
                let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
                if num(&old) < num(o0) || num(&new) > num(n0) {
                    *changed = true;
                    rows.push((time_index, false, line.clone()));
                }
            }
            Some(_) => {}
        }
    }
    let step = time_index.div_ceil(MAX_TIMELINE_SAMPLES).max(1);
    let mut out =
        String::with_capacity(header.len() + 1 + rows.iter().map(|r| r.2.len() + 1).sum::<usize>());
    out.push_str(&header);
    out.push('\n');
    for (t, thinned, line) in rows {
        if !thinned || t % step == 0 {
            out.push_str(&line);
            out.push('\n');
        }
    }
    Ok(out)
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
    // Only a queueing CA (`kind = "usl"`) has a queue and a utilisation; zeros here
    // would read as an idle CA where the CA is AWS Private CA, Vault or CAS.
    if f.ca_peak_queue > 0 || f.ca_utilization > 0.0 {
        out += &format!(
            "  CA: peak {} requests, mean utilisation {:.1} % (busiest CA)\n",
            f.ca_peak_queue,
            100.0 * f.ca_utilization
        );
    }
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

#[cfg(test)]
mod stream_tests {
    use super::*;

    /// Issue 11 row 4: the timeline drawn from the rows [`timeline_rows`] keeps is the
    /// timeline drawn from the whole time series, byte for byte, from fewer rows.
    #[test]
    fn the_timeline_from_the_kept_rows_is_the_whole_series_timeline() {
        let doc = scenario::load_str(DEFAULT_SCENARIO_FILE, DEFAULT_SCENARIO, &[]).unwrap();
        let sc = &doc.scenario;
        let r = model::run(sc, sc.seed, &doc.hash);
        let csv = r.recorder.to_csv(&r.cluster_names);
        let highlight = r.summary.affected_clusters();
        assert!(
            !highlight.is_empty(),
            "the incident has an affected cluster"
        );
        let kept = timeline_rows(csv.as_bytes(), &highlight).unwrap();
        assert!(
            kept.len() < csv.len() / 2,
            "{} of {}",
            kept.len(),
            csv.len()
        );
        let draw = |text: &str| {
            review::run_timeline(sc, &r.summary, text)
                .unwrap()
                .to_svg()
                .unwrap()
        };
        assert_eq!(draw(&kept), draw(&csv));
        assert_eq!(
            review::wave_starts(sc, &r.summary, &kept),
            review::wave_starts(sc, &r.summary, &csv)
        );
    }

    /// A series longer than [`MAX_TIMELINE_SAMPLES`] is thinned to every k-th sample
    /// time for the figure; each cluster's first row stays.
    #[test]
    fn a_long_series_is_thinned_for_the_timeline() {
        let mut csv = String::from(crate::metrics::TIMESERIES_HEADER);
        csv.push('\n');
        for t in 0..50_000 {
            csv.push_str(&format!("{t},a,1,0,0,1,1,0,1,0,0.0000,0,0,0\n"));
            csv.push_str(&format!("{t},*,1,0,0,1,1,0,1,0,0.0000,0,0,0\n"));
        }
        let kept = timeline_rows(csv.as_bytes(), &[]).unwrap();
        let fleet = kept.lines().filter(|l| l.contains(",*,")).count();
        assert_eq!(fleet, 50_000usize.div_ceil(3));
        assert_eq!(kept.lines().filter(|l| l.contains(",a,")).count(), 1);
    }
}
