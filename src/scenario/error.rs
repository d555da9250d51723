//! Scenario errors: every one names the file, where in it (line, or the `--set` that
//! supplied the value), the dotted field path and the offending value.
//!
//! All of them are fatal to loading: a scenario with any error yields no [`Scenario`]
//! (there are no warnings). [`ScenarioErrors`] carries every error found, sorted by line.
//!
//! [`Scenario`]: super::Scenario

use std::fmt;

/// What kind of problem an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The file could not be read (or is too large).
    Io,
    /// The file is not valid UTF-8.
    Encoding,
    /// TOML syntax (with line and column).
    Syntax,
    /// A key the schema does not know (with the nearest valid key).
    UnknownField,
    /// A value of the wrong type (a string where a number belongs, a bad duration...).
    Type,
    /// A well-typed value out of range, a dangling reference, an inconsistency.
    Invalid,
    /// A `--set PATH=VALUE` that does not parse or names no scenario value.
    Override,
}

/// Most characters of a value a message echoes (a 100 KB `--set` is cut, with a count
/// of what was left out).
pub const MAX_ECHO_CHARS: usize = 120;

/// Where in the input an error points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the file (1-based), with a column (1-based) for syntax errors.
    Line {
        /// Line number.
        line: usize,
        /// Column number, when known.
        column: Option<usize>,
    },
    /// The value came from this `--set PATH=VALUE` override (its text).
    Set(String),
    /// The file as a whole.
    File,
}

/// One problem with a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file as named by the caller (e.g. `scenarios/fleet.toml`).
    pub file: String,
    /// Where in it.
    pub origin: Origin,
    /// Dotted TOML path of the field (`cluster.payments.istiod.replicas`); empty when
    /// the error is about the file as a whole.
    pub path: String,
    /// What kind of problem.
    pub kind: ErrorKind,
    /// What is wrong, with the offending value (`must be >= 1, got 0`).
    pub message: String,
}

impl fmt::Display for ScenarioError {
    /// `fleet.toml:12: cluster.payments.istiod.replicas: must be >= 1, got 0`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::Line { line, column } => {
                write!(f, "{}:{line}", self.file)?;
                if let Some(col) = column {
                    write!(f, ":{col}")?;
                }
            }
            Origin::Set(text) => write!(
                f,
                "{} (--set {})",
                self.file,
                crate::output::abbreviate(text, MAX_ECHO_CHARS)
            )?,
            Origin::File => write!(f, "{}", self.file)?,
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        // A message that quotes a huge value keeps its start and its end (the reason and
        // the column are at the end).
        write!(
            f,
            ": {}",
            crate::output::abbreviate_middle(&self.message, 2 * MAX_ECHO_CHARS)
        )
    }
}

impl ScenarioError {
    /// Line the error points at, if it points at one.
    pub fn line(&self) -> Option<usize> {
        match self.origin {
            Origin::Line { line, .. } => Some(line),
            _ => None,
        }
    }
}

/// Every error found in one scenario (at least one), sorted by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(Vec<ScenarioError>);

impl ScenarioErrors {
    /// Wraps a list of errors, sorting them by position (file-level first, then by line,
    /// then `--set` ones); the order among equal positions is kept. Beyond
    /// [`MAX_ERRORS`](super::limits::MAX_ERRORS) the rest are summed up in one last error.
    pub(crate) fn new(mut errors: Vec<ScenarioError>) -> Self {
        debug_assert!(!errors.is_empty());
        errors.sort_by_key(|e| match e.origin {
            Origin::File => (0, 0, 0),
            Origin::Line { line, column } => (1, line, column.unwrap_or(0)),
            Origin::Set(_) => (2, 0, 0),
        });
        let max = super::limits::MAX_ERRORS;
        if errors.len() > max {
            let more = errors.len() - max;
            errors.truncate(max);
            let file = errors[0].file.clone();
            errors.push(ScenarioError {
                file,
                origin: Origin::File,
                path: String::new(),
                kind: errors[max - 1].kind,
                message: format!("{more} more errors not shown"),
            });
        }
        ScenarioErrors(errors)
    }

    /// A single error.
    pub(crate) fn one(error: ScenarioError) -> Self {
        ScenarioErrors(vec![error])
    }

    /// The errors, in order.
    pub fn errors(&self) -> &[ScenarioError] {
        &self.0
    }

    /// How many errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false (there is at least one error); here for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, ScenarioError> {
        self.0.iter()
    }
}

impl fmt::Display for ScenarioErrors {
    /// One error per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioErrors {}

impl IntoIterator for ScenarioErrors {
    type Item = ScenarioError;
    type IntoIter = std::vec::IntoIter<ScenarioError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let mut e = ScenarioError {
            file: "fleet.toml".into(),
            origin: Origin::Line {
                line: 12,
                column: None,
            },
            path: "cluster.payments.istiod.replicas".into(),
            kind: ErrorKind::Invalid,
            message: "must be >= 1, got 0".into(),
        };
        assert_eq!(
            e.to_string(),
            "fleet.toml:12: cluster.payments.istiod.replicas: must be >= 1, got 0"
        );
        e.origin = Origin::Set("cluster.payments.istiod.replicas=0".into());
        assert_eq!(
            e.to_string(),
            "fleet.toml (--set cluster.payments.istiod.replicas=0): cluster.payments.istiod.replicas: must be >= 1, got 0"
        );
    }
}
