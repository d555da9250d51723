//! `fleetsim import FILE... [-o SCENARIO] [--name CLUSTER]`: clusters as kubectl lists
//! them -> a scenario ([`crate::import`] says what becomes of each object).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};

use super::EXIT_BAD_INPUT;
use crate::import::{self, read_limited, ImportError, Source, MAX_INPUT_BYTES};
use crate::output::write_atomic;

/// Flags of `fleetsim import`.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Writes a scenario from the output of\n\n  kubectl get nodes,deployments,statefulsets,daemonsets,poddisruptionbudgets,namespaces,horizontalpodautoscalers -A -o json\n\n\
one file per cluster (`-` reads stdin): node groups (EKS managed node groups, Karpenter pools) with \
their nodes, max pods, zones and AMI; Deployments, StatefulSets and DaemonSets with their sidecar \
injection, node group and PDB; istiod's replicas, HPA and CA mode. Every value carries a comment \
saying where it came from; what kubectl's output cannot tell (the CA's capacity, the AMI to roll \
to) is left at the documented default with a comment saying so. Objects of other kinds and \
malformed objects are skipped with a warning; input that is not JSON or not a List, or larger \
than 256 MiB, exits 2. The scenario is checked as `fleetsim validate` would before it is written."
)]
pub struct ImportArgs {
    /// kubectl's JSON, one file per cluster; `-` reads stdin.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// Write the scenario here (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "SCENARIO")]
    pub output: Option<PathBuf>,
    /// The cluster's name (one FILE only); default: the file name without its extension.
    #[arg(long, value_name = "CLUSTER")]
    pub name: Option<String>,
}

fn stdin_name() -> &'static str {
    "stdin"
}

fn read(path: &Path) -> Result<Vec<u8>, ImportError> {
    let file = path.display().to_string();
    if path.as_os_str() == "-" {
        return read_limited(std::io::stdin().lock(), "-");
    }
    let f = std::fs::File::open(path).map_err(|e| ImportError {
        file: file.clone(),
        message: format!("cannot open: {e}"),
    })?;
    // A file known to be too large is refused before any of it is read.
    if let Ok(meta) = f.metadata() {
        if meta.is_file() && meta.len() > MAX_INPUT_BYTES {
            return Err(ImportError {
                file,
                message: format!(
                    "file is {} bytes, larger than {MAX_INPUT_BYTES} bytes; import reads at most that much",
                    meta.len()
                ),
            });
        }
    }
    read_limited(f, &file)
}

/// Runs `fleetsim import`.
pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    if args.name.is_some() && args.files.len() > 1 {
        bail!(
            "--name names one cluster, and {} files were given (their clusters take their file names)",
            args.files.len()
        );
    }
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        bail!("`-` (stdin) can be given once");
    }
    let mut sources = Vec::new();
    for path in &args.files {
        let bytes = read(path)?;
        let cluster = match (&args.name, path.as_os_str() == "-") {
            (Some(n), _) => n.clone(),
            (None, true) => stdin_name().to_string(),
            (None, false) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| stdin_name().to_string()),
        };
        sources.push(Source {
            file: path.display().to_string(),
            cluster,
            bytes,
        });
    }
    let imported = import::import(&sources)?;
    let mut stderr = std::io::stderr().lock();
    for w in &imported.warnings {
        writeln!(stderr, "warning: {w}")?;
    }
    let target = args
        .output
        .as_ref()
        .map_or("<stdout>".to_string(), |p| p.display().to_string());
    let checked = import::check(&target, &imported.text);
    match &args.output {
        Some(path) => write_atomic(path, imported.text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(imported.text.as_bytes())?;
            stdout.flush()?;
        }
    }
    for c in &imported.clusters {
        writeln!(
            stderr,
            "imported cluster {}: {} nodes in {} node groups, {} workload pods, {} PDBs, istiod {} replicas",
            c.name, c.nodes, c.node_groups, c.pods, c.pdbs, c.istiod_replicas
        )?;
    }
    if let Err(errors) = checked {
        writeln!(
            stderr,
            "{errors}\nerror: the imported scenario does not validate (written to {target} to be edited)"
        )?;
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    if let Some(path) = &args.output {
        writeln!(stderr, "wrote {}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
