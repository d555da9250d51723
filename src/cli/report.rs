//! `fleetsim report SCENARIO|DIR -o report.html`: the pre-maintenance review.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::run::load_scenario;
use super::set::SetArgs;
use crate::output::{check_file, write_atomic, FileTarget, OutputSet, PendingFile};
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
    /// Default: `output/<scenario name>-report.html` (beside the run's folder).
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

/// Runs `fleetsim report`: checks `-o` first, builds the whole review in memory, then
/// prepares every file, puts the CSV folder in place whole and the page last. Nothing is
/// replaced if anything fails.
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
    // Beside the run's folder `output/<name>`, not in it: a run replaces its folder whole.
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(format!("{}-report.html", doc.scenario.name)));
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
    // Refused before any run: `-o` a folder, a block device, an unwritable place; the
    // CSV folder locked and its stale temporaries of a killed report removed.
    let target = check_file(&out).with_context(|| format!("-o {}", out.display()))?;
    let dir = match &target {
        FileTarget::Replace(p) => match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        },
        FileTarget::Through(_) => PathBuf::new(),
    };
    let csv_set = match &target {
        FileTarget::Replace(_) => Some(OutputSet::begin(&dir.join(&files_dir), &|n| {
            n.ends_with(".csv")
        })?),
        // A device or FIFO (`-o /dev/stdout`) takes the page alone.
        FileTarget::Through(_) => None,
    };

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

    // Every file is prepared (written and synced) before any is put in place: a full
    // disk leaves the previous report whole. Then the CSV folder is swapped in whole and
    // the page renamed over the old one.
    let mut written = Vec::new();
    let page = PendingFile::prepare(&out, r.html.as_bytes())
        .with_context(|| format!("writing {}", out.display()))?;
    if let Some(mut set) = csv_set {
        for (name, bytes) in &r.files {
            set.write(name, bytes)
                .with_context(|| format!("writing {}", set.final_path(name).display()))?;
        }
        written = set.commit()?;
    } else if !r.files.is_empty() {
        eprintln!(
            "note: -o {} is not a regular file: the page is written through, its {} CSV files are not written",
            out.display(),
            r.files.len()
        );
    }
    let json_path = out.with_file_name(format!("{stem}.json"));
    if matches!(target, FileTarget::Replace(_)) {
        write_atomic(&json_path, r.json.as_bytes())
            .with_context(|| format!("writing {}", json_path.display()))?;
    }
    page.commit()
        .with_context(|| format!("writing {}", out.display()))?;

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
