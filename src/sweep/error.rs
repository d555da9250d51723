//! Sweep errors. A bad `[sweep]` or `[strategies]` section is a [`SpecError`] naming the
//! file, the line, the dotted path and the value; everything else that can go wrong
//! while running, resuming or merging a sweep is a [`SweepError`]. None of them is
//! recoverable by retrying: each means the input (scenario, flags, output directory)
//! must change.

use std::fmt;
use std::path::PathBuf;

/// One problem with a `[sweep]` or `[strategies]` section (or a flag that stands in
/// for one, such as `--seeds` or `--shard`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The scenario file as named by the caller.
    pub file: String,
    /// The line of the offending key, when it is written in the file.
    pub line: Option<usize>,
    /// Dotted path of the offending key (`sweep.grid."ca.pca.workers"`, `strategies.batches`).
    pub path: String,
    /// What is wrong, with the offending value.
    pub message: String,
}

impl fmt::Display for SpecError {
    /// `fleet.toml:40: sweep.failure: predicate does not parse: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a sweep specification (at least one), in the order found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecErrors(pub Vec<SpecError>);

impl SpecErrors {
    /// At most this many errors are kept; the rest are counted in a last line.
    pub const MAX: usize = 20;

    pub(crate) fn one(e: SpecError) -> Self {
        SpecErrors(vec![e])
    }

    /// The errors.
    pub fn errors(&self) -> &[SpecError] {
        &self.0
    }
}

impl fmt::Display for SpecErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().take(Self::MAX).enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        if self.0.len() > Self::MAX {
            write!(f, "\n({} more errors not shown)", self.0.len() - Self::MAX)?;
        }
        Ok(())
    }
}

impl std::error::Error for SpecErrors {}

/// What can stop a sweep, a resume or a merge. All are fatal to the command.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep specification is invalid.
    #[error("{0}")]
    Spec(#[from] SpecErrors),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint or shard output cannot be used: a manifest that does not match,
    /// a runs file that is not what the manifest describes, a missing shard.
    #[error("{}: {message}", path.display())]
    Output {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// Drawing the failure curve failed.
    #[error("drawing the failure curve: {0}")]
    Figure(#[from] crate::report::ReportError),
    /// The thread pool could not be built.
    #[error("cannot start the thread pool: {0}")]
    Pool(#[from] rayon::ThreadPoolBuildError),
}

impl SweepError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SweepError {
        let path = path.into();
        move |source| SweepError::Io { path, source }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, message: impl Into<String>) -> SweepError {
        SweepError::Output {
            path: path.into(),
            message: message.into(),
        }
    }
}
