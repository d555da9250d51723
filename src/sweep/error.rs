//! Sweep errors: everything that can go wrong while running, resuming or merging a
//! sweep. A bad `[sweep]` or `[strategies]` section is a scenario error
//! ([`ScenarioErrors`], found at load); so is a `--seeds` that does not fit. None of
//! them is recoverable by retrying: each means the input (scenario, flags, output
//! directory) must change.

use std::path::PathBuf;

use crate::scenario::ScenarioErrors;

/// What can stop a sweep, a resume or a merge. All are fatal to the command.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The scenario has no sweep, or the flags do not fit it.
    #[error("{0}")]
    Scenario(#[from] ScenarioErrors),
    /// Reading or writing a file failed.
    /// (The error is not a `source`: it is in the message once, and `{:#}` does not
    /// print it twice.)
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
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
        move |error| SweepError::Io { path, error }
    }

    pub(crate) fn output(path: impl Into<PathBuf>, message: impl Into<String>) -> SweepError {
        SweepError::Output {
            path: path.into(),
            message: message.into(),
        }
    }
}
