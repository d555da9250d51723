//! `fleetsim report SCENARIO|DIR -o report.html`: the pre-maintenance review.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::run::load_scenario;
use super::set::SetArgs;
use crate::output::write_atomic;
use crate::review::{self, ReviewInput, SweepOutput};
use crate::sweep;

/// Flags of `fleetsim report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// A scenario file (TOML), or a sweep's output directory (its manifest names the
    /// scenario, read from the working directory; its failure curves join the report).
    #[arg(value_name = "SCENARIO|DIR")]
    pub input: PathBuf,
    /// The HTML file to write; its figures' CSVs go to `<name>-files/` beside it and the
    /// recommendation as data to `<name>.json` (see docs/outputs.md).
    /// Default: `output/<scenario name>/report.html`.
    #[arg(short = 'o', long = "out", value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Seeds per strategy (1..=10000). Default: the fewest with which a strategy that
    /// never fails shows a failure probability under the threshold (73 for 0.05).
    #[arg(long, value_name = "N")]
    pub seeds: Option<u32>,
    /// Worker threads for the runs; default: one per core. Results do not depend on it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Scenario overrides.
    #[command(flatten)]
    pub set: SetArgs,
}

/// Runs `fleetsim report`: builds the whole review in memory, then writes the CSVs and
/// the page, each atomically (the page last). Nothing is written if anything fails.
pub fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let (scenario_path, sweep_out) = if args.input.is_dir() {
        let s = SweepOutput::read(&args.input)?;
        let source = PathBuf::from(&s.manifest.source);
        if !source.is_file() {
            anyhow::bail!(
                "{}: the sweep's scenario {} is not readable from here; run report from the directory the sweep ran in",
                args.input.display(),
                source.display()
            );
        }
        (source, Some(s))
    } else {
        (args.input.clone(), None)
    };
    let doc = load_scenario(Some(&scenario_path), &args.set)?;
    let mut notes = Vec::new();
    if let Some(s) = &sweep_out {
        if s.manifest.scenario_hash != doc.hash {
            let note = format!(
                "The sweep in {} ran on scenario hash {}, this report's scenario has hash {}: the file or its --set overrides changed since. Its curves may not match the rest of the report.",
                s.dir, s.manifest.scenario_hash, doc.hash
            );
            eprintln!("warning: {note}");
            notes.push(note);
        }
    }
    let out = args.out.clone().unwrap_or_else(|| {
        Path::new("output")
            .join(&doc.scenario.name)
            .join("report.html")
    });
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .context("-o needs a file name, e.g. report.html")?;
    let files_dir = format!("{stem}-files");
    if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        anyhow::bail!(
            "-o names the HTML page (e.g. report.html); its data goes to {stem}.json beside it"
        );
    }

    let mut command = format!(
        "fleetsim report {} -o {}",
        args.input.display(),
        out.display()
    );
    if let Some(n) = args.seeds {
        command.push_str(&format!(" --seeds {n}"));
    }
    for o in &args.set.set {
        command.push_str(&format!(" --set '{}'", o.text().replace('\'', "'\\''")));
    }
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "seed={} scenario={} hash={}",
            doc.scenario.seed, doc.scenario.name, doc.hash
        )?;
        stdout.flush()?;
    }
    let pool = sweep::pool(args.threads.unwrap_or(0) as usize)?;
    let started = std::time::Instant::now();
    let input = ReviewInput {
        doc: &doc,
        sweep: sweep_out,
        seeds: args.seeds,
        command,
        files_dir: files_dir.clone(),
        notes,
    };
    let r = review::build(&input, &pool)?;

    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut written = Vec::new();
    for (name, bytes) in &r.files {
        let path = dir.join(&files_dir).join(name);
        write_atomic(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    let json_path = out.with_file_name(format!("{stem}.json"));
    write_atomic(&json_path, r.json.as_bytes())
        .with_context(|| format!("writing {}", json_path.display()))?;
    write_atomic(&out, r.html.as_bytes()).with_context(|| format!("writing {}", out.display()))?;

    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "{} strateg{} x up to {} seeds, {} runs in {:.1} s; failure: \"{}\", threshold {}",
        r.strategies.len(),
        if r.strategies.len() == 1 { "y" } else { "ies" },
        r.strategies.iter().map(|s| s.runs.len()).max().unwrap_or(0),
        r.runs,
        started.elapsed().as_secs_f64(),
        r.failure,
        r.max_failure_p
    )?;
    for (i, s) in r.strategies.iter().enumerate() {
        writeln!(
            stdout,
            "  {:<24} {:>3}/{:<3} failed, P(failure) {:.3} [{:.3}, {:.3}], affected recover p50 {}{}",
            s.name,
            s.failures,
            s.runs.len(),
            s.failure.p,
            s.failure.lo,
            s.failure.hi,
            crate::duration::format_seconds(s.affected_ttr_p50),
            if r.recommended == Some(i) {
                "  <- recommended"
            } else {
                ""
            }
        )?;
    }
    if r.recommended.is_none() {
        writeln!(stdout, "no strategy qualifies (see the report)")?;
    }
    writeln!(
        stdout,
        "wrote {} ({} KB, {} figures), {} and {} files in {}",
        out.display(),
        r.html.len().div_ceil(1024),
        r.figures,
        json_path.display(),
        written.len(),
        dir.join(&files_dir).display()
    )?;
    Ok(ExitCode::SUCCESS)
}
