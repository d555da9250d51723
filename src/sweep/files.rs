//! A sweep's output directory: the manifest, the streamed runs file that doubles as the
//! checkpoint, and the final tables and figure; resuming a killed sweep and merging
//! shards.
//!
//! Files in a sweep directory:
//!
//! - `manifest.json`: what the runs are (scenario hash, seeds, grid, failure predicate,
//!   shard, columns). Written first. A resume or a merge refuses runs whose manifest
//!   does not match.
//! - `runs.csv.partial`: the checkpoint. Rows are appended in run-index order as runs
//!   finish (each row is flushed to the file at once), so a killed sweep leaves every
//!   finished row but perhaps half of the last one, which a resume drops.
//! - `runs.csv`: the same file renamed once every selected run is in it.
//! - `curves.csv`, `failure_curve.svg`, `failure_curve.png` (whole sweeps and merges
//!   only; a shard has only part of each point): written atomically at the end, from
//!   the rows of `runs.csv`.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::output::{write_atomic, FolderLock};
use crate::report;

use super::error::SweepError;
use super::exec::{execute, RunSelection, Shard};
use super::spec::Sweep;
use super::table::{row_sum_holds, run_record, runs_header, CurveBuilder};

/// The manifest's format tag.
pub const MANIFEST_FORMAT: &str = "fleetsim-sweep/1";
/// File names in a sweep directory.
pub const MANIFEST: &str = "manifest.json";
/// The finished runs file.
pub const RUNS: &str = "runs.csv";
/// The runs file while the sweep runs (the checkpoint).
pub const RUNS_PARTIAL: &str = "runs.csv.partial";
/// Per-point statistics.
pub const CURVES: &str = "curves.csv";
/// The failure curve, SVG.
pub const FIGURE_SVG: &str = "failure_curve.svg";
/// The failure curve, PNG.
pub const FIGURE_PNG: &str = "failure_curve.png";

/// One grid key in a manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestAxis {
    /// The key (dotted path or `strategy`).
    pub path: String,
    /// Its values as written in the CSV files.
    pub values: Vec<String>,
}

/// What a sweep directory holds: enough to check that a checkpoint or a shard belongs to
/// the same sweep, and to compute `curves.csv` and the figure without the scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The fleetsim version that ran it.
    pub fleetsim: String,
    /// Scenario name.
    pub scenario: String,
    /// The scenario file as named on the command line (not compared).
    pub source: String,
    /// Hash of the resolved scenario document.
    pub scenario_hash: String,
    /// Seed of seed index 0.
    pub base_seed: u64,
    /// Seeds per point.
    pub seeds: u64,
    /// Grid points.
    pub points: u64,
    /// Runs in the whole sweep.
    pub runs: u64,
    /// Grid keys and values.
    pub grid: Vec<ManifestAxis>,
    /// The failure predicate.
    pub failure: String,
    /// x axis of the failure curve.
    pub x: Option<String>,
    /// Grid keys naming the curve's lines.
    pub group: Vec<String>,
    /// Failure probability a recommendation may accept.
    pub max_failure_p: f64,
    /// Which slice of the runs this directory holds.
    pub shard: Shard,
    /// The `runs.csv` header.
    pub columns: Vec<String>,
}

impl Manifest {
    /// The manifest of `shard` of `sweep`.
    pub fn new(sweep: &Sweep, shard: Shard) -> Manifest {
        let axes: Vec<String> = sweep.axes.iter().map(|a| a.path.clone()).collect();
        Manifest {
            format: MANIFEST_FORMAT.into(),
            fleetsim: env!("CARGO_PKG_VERSION").into(),
            scenario: sweep.scenario_name.clone(),
            source: sweep.source.clone(),
            scenario_hash: sweep.scenario_hash.clone(),
            base_seed: sweep.base_seed,
            seeds: sweep.seeds,
            points: sweep.points().len() as u64,
            runs: sweep.runs(),
            grid: sweep
                .axes
                .iter()
                .map(|a| ManifestAxis {
                    path: a.path.clone(),
                    values: a.labels.clone(),
                })
                .collect(),
            failure: sweep.failure_text.clone(),
            x: sweep.x.clone(),
            group: sweep.group.clone(),
            max_failure_p: sweep.max_failure_p,
            shard,
            columns: runs_header(&axes),
        }
    }

    /// The grid keys.
    pub fn axes(&self) -> Vec<String> {
        self.grid.iter().map(|a| a.path.clone()).collect()
    }

    /// The fields (besides `source` and, with `ignore_shard`, `shard`) in which `other`
    /// differs from `self`.
    pub fn differences(&self, other: &Manifest, ignore_shard: bool) -> Vec<&'static str> {
        let mut d = Vec::new();
        macro_rules! cmp {
            ($($f:ident),*) => {$( if self.$f != other.$f { d.push(stringify!($f)); } )*};
        }
        cmp!(
            format,
            fleetsim,
            scenario,
            scenario_hash,
            base_seed,
            seeds,
            points,
            runs,
            grid,
            failure,
            x,
            group,
            max_failure_p,
            columns
        );
        if !ignore_shard && self.shard != other.shard {
            d.push("shard");
        }
        d
    }

    /// The manifest as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("manifest serialises");
        s.push('\n');
        s
    }

    /// Reads `DIR/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, SweepError> {
        let path = dir.join(MANIFEST);
        let text = fs::read_to_string(&path).map_err(SweepError::io(&path))?;
        serde_json::from_str(&text)
            .map_err(|e| SweepError::output(&path, format!("not a fleetsim sweep manifest: {e}")))
    }
}

/// Progress of a sweep, reported after every run written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Runs of the selection in the runs file (including resumed ones).
    pub done: u64,
    /// Runs in the selection.
    pub total: u64,
    /// Runs found in the checkpoint when the sweep started.
    pub resumed: u64,
}

/// What a sweep or merge wrote.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Runs computed by this invocation.
    pub ran: u64,
    /// Runs taken from the checkpoint.
    pub resumed: u64,
    /// The files written, final ones only.
    pub files: Vec<PathBuf>,
    /// `curves.csv` (whole sweeps and merges).
    pub curves: Option<String>,
    /// The manifest of the directory.
    pub manifest: Manifest,
}

/// Runs `shard` of `sweep` into `dir` on `pool`, streaming rows to the checkpoint and
/// finishing with `runs.csv` (and, for a whole sweep, `curves.csv` and the figure).
///
/// With `resume`, a checkpoint in `dir` whose manifest matches is continued without
/// recomputing its rows (a finished directory is only re-summarised); a manifest that
/// does not match is an error; no checkpoint at all starts afresh. Without `resume`,
/// earlier outputs in `dir` are replaced.
pub fn run_into_dir(
    sweep: &Sweep,
    shard: Shard,
    dir: &Path,
    resume: bool,
    pool: &rayon::ThreadPool,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, SweepError> {
    let manifest = Manifest::new(sweep, shard);
    let selection = RunSelection::shard(sweep.runs(), shard);
    fs::create_dir_all(dir).map_err(SweepError::io(dir))?;
    // One writer per folder: a second sweep or `--resume` on it fails at once.
    let _lock = lock_dir(dir)?;
    let manifest_path = dir.join(MANIFEST);
    let partial = dir.join(RUNS_PARTIAL);
    let finished = dir.join(RUNS);
    let mut curves = shard
        .is_whole()
        .then(|| CurveBuilder::new(&manifest.axes(), manifest.seeds, manifest.points));

    let resuming = resume && manifest_path.exists();
    if resuming {
        let old = Manifest::read(dir)?;
        let diff = old.differences(&manifest, false);
        if !diff.is_empty() {
            return Err(SweepError::output(
                &manifest_path,
                format!(
                    "the checkpoint is of another sweep (differs in: {}); \
                     run without --resume to start over, or use another --out",
                    diff.join(", ")
                ),
            ));
        }
    }
    if resuming && finished.exists() {
        // Already complete: check it and re-summarise.
        let rows = read_rows(
            &finished,
            &manifest,
            sweep,
            selection,
            curves.as_mut(),
            false,
        )?;
        if rows.count != selection.count {
            return Err(SweepError::output(
                &finished,
                format!("holds {} of {} runs", rows.count, selection.count),
            ));
        }
        progress(Progress {
            done: rows.count,
            total: selection.count,
            resumed: rows.count,
        });
        let mut files = vec![finished];
        let curves_text = finish_whole(dir, &manifest, curves, &mut files)?;
        return Ok(Outcome {
            ran: 0,
            resumed: rows.count,
            files,
            curves: curves_text,
            manifest,
        });
    }

    let mut resumed = 0;
    let file = if resuming && partial.exists() {
        let rows = read_rows(&partial, &manifest, sweep, selection, curves.as_mut(), true)?;
        resumed = rows.count;
        let f = OpenOptions::new()
            .write(true)
            .open(&partial)
            .map_err(SweepError::io(&partial))?;
        f.set_len(rows.valid_bytes)
            .map_err(SweepError::io(&partial))?;
        drop(f);
        let mut f = OpenOptions::new()
            .append(true)
            .open(&partial)
            .map_err(SweepError::io(&partial))?;
        if rows.valid_bytes == 0 {
            // Killed before the header was complete.
            let mut w = csv::WriterBuilder::new().from_writer(&mut f);
            w.write_record(&manifest.columns)
                .and_then(|_| w.flush().map_err(Into::into))
                .map_err(|e| SweepError::io(&partial)(csv_io(e)))?;
        }
        f
    } else {
        for name in [RUNS, RUNS_PARTIAL, CURVES, FIGURE_SVG, FIGURE_PNG] {
            match fs::remove_file(dir.join(name)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(SweepError::io(dir.join(name))(e))
                }
                _ => {}
            }
        }
        write_atomic(&manifest_path, manifest.to_json().as_bytes())
            .map_err(SweepError::io(&manifest_path))?;
        let f = File::create(&partial).map_err(SweepError::io(&partial))?;
        let mut w = csv::WriterBuilder::new().from_writer(f);
        w.write_record(&manifest.columns)
            .and_then(|_| w.flush().map_err(Into::into))
            .map_err(|e| SweepError::io(&partial)(csv_io(e)))?;
        w.into_inner()
            .map_err(|e| SweepError::io(&partial)(e.into_error()))?
    };

    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(file);
    let mut done = resumed;
    progress(Progress {
        done,
        total: selection.count,
        resumed,
    });
    let rest = selection.skip(resumed);
    execute(sweep, rest, pool, |r| {
        let row = run_record(sweep, &r);
        writer
            .write_record(&row)
            .and_then(|_| writer.flush().map_err(Into::into))
            .map_err(|e| SweepError::io(&partial)(csv_io(e)))?;
        if let Some(c) = curves.as_mut() {
            c.push(&row)
                .map_err(|m| SweepError::output(&partial, format!("internal: {m}")))?;
        }
        done += 1;
        progress(Progress {
            done,
            total: selection.count,
            resumed,
        });
        Ok::<(), SweepError>(())
    })?;
    let file = writer
        .into_inner()
        .map_err(|e| SweepError::io(&partial)(e.into_error()))?;
    file.sync_all().map_err(SweepError::io(&partial))?;
    drop(file);
    fs::rename(&partial, &finished).map_err(SweepError::io(&finished))?;
    let mut files = vec![finished];
    let curves_text = finish_whole(dir, &manifest, curves, &mut files)?;
    Ok(Outcome {
        ran: rest.count,
        resumed,
        files,
        curves: curves_text,
        manifest,
    })
}

/// The exclusive lock of a sweep folder (see [`FolderLock`]), by its real path.
fn lock_dir(dir: &Path) -> Result<FolderLock, SweepError> {
    let real = dir.canonicalize().map_err(SweepError::io(dir))?;
    FolderLock::take(&real).map_err(SweepError::io(dir))
}

fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// Rows read back from a runs file.
struct RowsRead {
    count: u64,
    valid_bytes: u64,
}

/// Reads a runs file written for `selection` of `sweep`, checking every row against the
/// manifest and the sweep (index, point labels, seed), feeding `curves`. With
/// `partial`, a last line without its newline (a run cut off by a kill) is dropped and
/// `valid_bytes` says where the complete rows end.
fn read_rows(
    path: &Path,
    manifest: &Manifest,
    sweep: &Sweep,
    selection: RunSelection,
    mut curves: Option<&mut CurveBuilder>,
    partial: bool,
) -> Result<RowsRead, SweepError> {
    let mut file = File::open(path).map_err(SweepError::io(path))?;
    let len = file.metadata().map_err(SweepError::io(path))?.len();
    let valid = if partial {
        last_newline_end(&mut file, len).map_err(SweepError::io(path))?
    } else {
        len
    };
    file.seek(SeekFrom::Start(0))
        .map_err(SweepError::io(path))?;
    let reader = BufReader::new(file.take(valid));
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let bad = |line: u64, m: String| {
        SweepError::output(
            path,
            format!(
                "line {line}: {m}; the file does not belong to this sweep \
                 (run without --resume to start over)"
            ),
        )
    };
    let mut record = csv::StringRecord::new();
    let mut line = 0u64;
    let mut count = 0u64;
    while csv
        .read_record(&mut record)
        .map_err(|e| bad(line + 1, e.to_string()))?
    {
        line += 1;
        if line == 1 {
            if record
                .iter()
                .ne(manifest.columns.iter().map(String::as_str))
            {
                return Err(bad(1, "the header is not this sweep's".into()));
            }
            continue;
        }
        if record.len() != manifest.columns.len() {
            return Err(bad(
                line,
                format!(
                    "{} fields, expected {}",
                    record.len(),
                    manifest.columns.len()
                ),
            ));
        }
        if count >= selection.count {
            return Err(bad(line, "more rows than runs".into()));
        }
        let index = selection.index(count);
        let id = sweep.run_id(index);
        let labels = &sweep.points()[id.point].labels;
        if record[0] != index.to_string()
            || record[1] != id.point.to_string()
            || labels.iter().enumerate().any(|(i, l)| record[2 + i] != *l)
            || record[2 + labels.len()] != id.seed.to_string()
        {
            return Err(bad(
                line,
                format!(
                    "expected run {index} (point {}, seed {})",
                    id.point, id.seed
                ),
            ));
        }
        if !row_sum_holds(&record) {
            return Err(bad(
                line,
                "the row's checksum (row_sum) does not match its fields: it was edited or damaged"
                    .into(),
            ));
        }
        if let Some(c) = curves.as_deref_mut() {
            c.push(&record.iter().collect::<Vec<_>>())
                .map_err(|m| bad(line, m))?;
        }
        count += 1;
    }
    if line == 0 && !partial {
        return Err(bad(1, "no header".into()));
    }
    Ok(RowsRead {
        count,
        valid_bytes: valid,
    })
}

/// The length of the file up to and including its last newline.
fn last_newline_end(file: &mut File, len: u64) -> std::io::Result<u64> {
    let mut end = len;
    let mut buf = vec![0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// For a whole sweep: `curves.csv` and the failure curve, written atomically.
fn finish_whole(
    dir: &Path,
    manifest: &Manifest,
    curves: Option<CurveBuilder>,
    files: &mut Vec<PathBuf>,
) -> Result<Option<String>, SweepError> {
    let Some(curves) = curves else {
        return Ok(None);
    };
    let path = dir.join(CURVES);
    let text = curves
        .finish()
        .map_err(|m| SweepError::output(dir.join(RUNS), m))?;
    write_atomic(&path, text.as_bytes()).map_err(SweepError::io(&path))?;
    files.push(path);
    if let Some(x) = &manifest.x {
        let mut chart = report::failure_curve_from_csv(&text, x, &manifest.group.join(","))?;
        chart.title = format!("{}: failure = {}", manifest.scenario, manifest.failure);
        report::figures::add_threshold(&mut chart, manifest.max_failure_p);
        let svg = chart.to_svg()?;
        let png = chart.to_png()?;
        for (name, bytes) in [(FIGURE_SVG, svg.into_bytes()), (FIGURE_PNG, png)] {
            let p = dir.join(name);
            write_atomic(&p, &bytes).map_err(SweepError::io(&p))?;
            files.push(p);
        }
    }
    Ok(Some(text))
}

/// Joins the shard directories `dirs` into `out`: checks that their manifests agree and
/// every shard `0..N` is there once and complete, interleaves their rows by run index
/// into `runs.csv` and computes `curves.csv` and the figure — byte-identical to the
/// unsharded sweep's. Memory stays flat: rows stream from the shards to `out`.
pub fn merge_dirs(
    dirs: &[PathBuf],
    out: &Path,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, SweepError> {
    let Some(first_dir) = dirs.first() else {
        return Err(SweepError::output(".", "no shard directories given"));
    };
    let mut shards: Vec<(Manifest, &PathBuf)> = Vec::new();
    for d in dirs {
        shards.push((Manifest::read(d)?, d));
    }
    let reference = shards[0].0.clone();
    for (m, d) in &shards[1..] {
        let diff = reference.differences(m, true);
        if !diff.is_empty() || m.shard.count != reference.shard.count {
            let mut diff = diff;
            if m.shard.count != reference.shard.count {
                diff.push("shard count");
            }
            return Err(SweepError::output(
                d.as_path(),
                format!(
                    "is not a shard of the same sweep as {} (differs in: {})",
                    first_dir.display(),
                    diff.join(", ")
                ),
            ));
        }
    }
    let n = reference.shard.count;
    let mut by_index: Vec<Option<&PathBuf>> = vec![None; n as usize];
    for (m, d) in &shards {
        let slot = &mut by_index[m.shard.index as usize];
        if let Some(other) = slot {
            return Err(SweepError::output(
                d.as_path(),
                format!(
                    "shard {} is given twice (also {})",
                    m.shard,
                    other.display()
                ),
            ));
        }
        *slot = Some(d);
    }
    let missing: Vec<String> = by_index
        .iter()
        .enumerate()
        .filter(|(_, d)| d.is_none())
        .map(|(i, _)| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(SweepError::output(
            first_dir.as_path(),
            format!("missing shards: {}", missing.join(", ")),
        ));
    }
    let out_canon = fs::create_dir_all(out)
        .and_then(|_| out.canonicalize())
        .map_err(SweepError::io(out))?;
    let _lock = lock_dir(out)?;
    let mut readers = Vec::new();
    for d in by_index.iter().map(|d| d.expect("checked")) {
        if d.canonicalize().ok().as_ref() == Some(&out_canon) {
            return Err(SweepError::output(
                out,
                "the output directory is one of the shard directories",
            ));
        }
        let runs = d.join(RUNS);
        if !runs.exists() {
            let why = if d.join(RUNS_PARTIAL).exists() {
                "the shard is incomplete (only runs.csv.partial): finish it with --resume"
            } else {
                "no runs.csv"
            };
            return Err(SweepError::output(d.as_path(), why));
        }
        let f = File::open(&runs).map_err(SweepError::io(&runs))?;
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(BufReader::new(f));
        let mut header = csv::StringRecord::new();
        let ok = r.read_record(&mut header).unwrap_or(false)
            && header
                .iter()
                .eq(reference.columns.iter().map(String::as_str));
        if !ok {
            return Err(SweepError::output(
                &runs,
                "the header is not the manifest's columns",
            ));
        }
        readers.push((runs, r));
    }

    let mut manifest = reference.clone();
    manifest.shard = Shard::WHOLE;
    let out_runs = out.join(RUNS);
    let tmp = out.join(format!(".{RUNS}.merge-{}", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp).map_err(SweepError::io(&tmp))?;
        let mut w = csv::WriterBuilder::new().from_writer(std::io::BufWriter::new(f));
        let io = |e: csv::Error| SweepError::io(&tmp)(csv_io(e));
        w.write_record(&manifest.columns).map_err(io)?;
        let mut curves = CurveBuilder::new(&manifest.axes(), manifest.seeds, manifest.points);
        let mut record = csv::StringRecord::new();
        for index in 0..manifest.runs {
            let (path, r) = &mut readers[(index % n) as usize];
            let got = r
                .read_record(&mut record)
                .map_err(|e| SweepError::output(path.as_path(), e.to_string()))?;
            if got && !row_sum_holds(&record) {
                return Err(SweepError::output(
                    path.as_path(),
                    format!(
                        "line {}: the row's checksum (row_sum) does not match its fields: it was edited or damaged; run the shard again",
                        record.position().map_or(0, |p| p.line())
                    ),
                ));
            }
            if !got || &record[0] != index.to_string().as_str() {
                return Err(SweepError::output(
                    path.as_path(),
                    format!(
                        "expected run {index} at line {}",
                        record.position().map_or(0, |p| p.line())
                    ),
                ));
            }
            curves
                .push(&record.iter().collect::<Vec<_>>())
                .map_err(|m| SweepError::output(path.as_path(), m))?;
            w.write_record(&record).map_err(io)?;
            if index % 256 == 255 || index + 1 == manifest.runs {
                progress(Progress {
                    done: index + 1,
                    total: manifest.runs,
                    resumed: 0,
                });
            }
        }
        for (path, r) in &mut readers {
            if r.read_record(&mut record).unwrap_or(true) {
                return Err(SweepError::output(
                    path.as_path(),
                    "more rows than the shard's runs",
                ));
            }
        }
        let f = w
            .into_inner()
            .map_err(|e| SweepError::io(&tmp)(e.into_error()))?
            .into_inner()
            .map_err(|e| SweepError::io(&tmp)(e.into_error()))?;
        f.sync_all().map_err(SweepError::io(&tmp))?;
        Ok(curves)
    })();
    let curves = match result {
        Ok(c) => c,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let manifest_path = out.join(MANIFEST);
    for name in [CURVES, FIGURE_SVG, FIGURE_PNG, RUNS_PARTIAL] {
        let _ = fs::remove_file(out.join(name));
    }
    write_atomic(&manifest_path, manifest.to_json().as_bytes())
        .map_err(SweepError::io(&manifest_path))?;
    fs::rename(&tmp, &out_runs).map_err(SweepError::io(&out_runs))?;
    let mut files = vec![manifest_path, out_runs];
    let curves_text = finish_whole(out, &manifest, Some(curves), &mut files)?;
    Ok(Outcome {
        ran: 0,
        resumed: 0,
        files,
        curves: curves_text,
        manifest,
    })
}
