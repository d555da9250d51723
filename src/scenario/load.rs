//! Loading: bytes -> TOML document (with the line of every key) -> overrides ->
//! validation -> [`ScenarioDocument`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};

use super::error::{ErrorKind, Origin, ScenarioError, ScenarioErrors};
use super::limits;
use super::overrides::{self, Override};
use super::sections::{Expectations, Sections, Strategy, SweepSpec};
use super::types::Scenario;
use super::validate::{self, SectionContext};
use crate::keypath::{join, parent};

/// A loaded, validated scenario: the model's [`Scenario`] and the sections the other
/// layers run (`[strategies]`, `[sweep]`, `[expect]`), all checked against it.
#[derive(Debug, Clone)]
pub struct ScenarioDocument {
    /// The validated scenario.
    pub scenario: Scenario,
    /// The file as named by the caller; errors and reports cite it.
    pub source: String,
    /// The document after overrides, as canonical TOML (keys in declaration order).
    pub resolved_toml: String,
    /// 16 hex digits: FNV-1a 64 of `resolved_toml` (portable; printed for replay).
    pub hash: String,
    sections: Arc<Sections>,
    base: Arc<Base>,
}

/// What later overrides (sweep points, strategies) start from.
#[derive(Debug)]
struct Base {
    /// The document after the load's own overrides.
    table: toml::Table,
    /// Line of every key in the file.
    spans: Spans,
    /// The load's own overrides (their values are located at the `--set`).
    overrides: Vec<Override>,
}

impl ScenarioDocument {
    /// The `[strategies]` section, validated (empty without one).
    pub fn strategies(&self) -> &[Strategy] {
        &self.sections.strategies
    }

    /// The `[sweep]` section, validated, every grid point built.
    pub fn sweep(&self) -> Option<&SweepSpec> {
        self.sections.sweep.as_ref()
    }

    /// The `[expect]` section, validated.
    pub fn expectations(&self) -> Option<&Expectations> {
        self.sections.expect.as_ref()
    }

    /// The overrides this document was loaded with.
    pub fn overrides(&self) -> &[Override] {
        &self.base.overrides
    }

    /// An [`ErrorKind::Invalid`] error about the value at `path`, positioned at the
    /// `--set` that supplied it, else its line in the file (or the nearest enclosing
    /// key's), else the file: `fleet.toml:40: sweep.seeds: ...`.
    pub fn error_at(&self, path: &str, message: impl Into<String>) -> ScenarioError {
        self.locator(&self.base.overrides)
            .error(path, ErrorKind::Invalid, message.into())
    }

    fn locator<'a>(&'a self, overrides: &'a [Override]) -> Locator<'a> {
        Locator {
            file: &self.source,
            spans: &self.base.spans,
            overrides,
        }
    }

    /// This document with `overrides` applied on top, validated: a sweep point or a
    /// strategy. Errors point at the file's lines or at the override that supplied the
    /// value. Overrides set scenario values: `[strategies]`, `[sweep]` and `[expect]`
    /// are read once, at load, and the result shares this document's.
    pub fn with_overrides(
        &self,
        overrides: &[Override],
    ) -> Result<ScenarioDocument, ScenarioErrors> {
        let (table, sets) = self.apply(overrides)?;
        let scenario = core(&self.source, &table, &self.base.spans, &sets)?;
        let resolved_toml = resolved(&self.source, &table)?;
        Ok(ScenarioDocument {
            scenario,
            source: self.source.clone(),
            hash: hash_of(&resolved_toml),
            resolved_toml,
            sections: Arc::clone(&self.sections),
            base: Arc::new(Base {
                table,
                spans: self.base.spans.clone(),
                overrides: sets,
            }),
        })
    }

    /// Only the validated [`Scenario`] of this document with `overrides` applied: the
    /// cheap path (no canonical TOML, no hash). Equal to
    /// `self.with_overrides(overrides)?.scenario`.
    pub fn scenario_with(&self, overrides: &[Override]) -> Result<Scenario, ScenarioErrors> {
        let (table, sets) = self.apply(overrides)?;
        core(&self.source, &table, &self.base.spans, &sets)
    }

    /// The hash `fleetsim run` prints for this document with `overrides` applied (not
    /// validated again: for overrides known to give a valid scenario, such as a grid
    /// point's).
    pub fn hash_with(&self, overrides: &[Override]) -> Result<String, ScenarioErrors> {
        let (table, _) = self.apply(overrides)?;
        Ok(hash_of(&resolved(&self.source, &table)?))
    }

    /// The resolved table with `overrides` applied, and every override so far.
    fn apply(
        &self,
        overrides: &[Override],
    ) -> Result<(toml::Table, Vec<Override>), ScenarioErrors> {
        let errors: Vec<ScenarioError> = overrides
            .iter()
            .filter_map(|ov| {
                let section = validate::section_of(ov.segments())?;
                Some(ScenarioError {
                    file: self.source.clone(),
                    origin: Origin::Set(ov.text().to_string()),
                    path: ov.path(),
                    kind: ErrorKind::Override,
                    message: format!(
                        "sets the [{section}] section, which is read once, at load: give it when loading"
                    ),
                })
            })
            .collect();
        if !errors.is_empty() {
            return Err(ScenarioErrors::new(errors));
        }
        let mut all = self.base.overrides.clone();
        all.extend_from_slice(overrides);
        let mut table = self.base.table.clone();
        let sets = apply_all(&self.source, &mut table, overrides, &all)?;
        Ok((table, sets))
    }
}

/// The name errors give a scenario read from standard input (`-` on the command line).
pub const STDIN_NAME: &str = "<stdin>";

/// Reads and loads a scenario file; `-` reads standard input (named [`STDIN_NAME`] in
/// errors). Errors name the file as `path` is written. At most
/// [`limits::MAX_FILE_BYTES`] are read, whatever the file is (a FIFO, `/dev/zero`, a
/// file still growing): the size limit never trusts a stat.
pub fn load(path: &Path, overrides: &[Override]) -> Result<ScenarioDocument, ScenarioErrors> {
    let stdin = path.as_os_str() == "-";
    let file = if stdin {
        STDIN_NAME.to_string()
    } else {
        path.display().to_string()
    };
    let io_error = |message: String| {
        ScenarioErrors::one(ScenarioError {
            file: file.clone(),
            origin: Origin::File,
            path: String::new(),
            kind: ErrorKind::Io,
            message,
        })
    };
    let bytes = if stdin {
        use std::io::IsTerminal as _;
        let input = std::io::stdin();
        if input.is_terminal() {
            return Err(io_error(
                "standard input is a terminal: pipe or redirect a scenario into it".into(),
            ));
        }
        read_limited(input.lock())
    } else {
        let meta = std::fs::metadata(path).map_err(|e| io_error(format!("cannot read: {e}")))?;
        if meta.is_dir() {
            return Err(io_error("is a directory, not a scenario file".into()));
        }
        std::fs::File::open(path).and_then(read_limited)
    }
    .map_err(|e| io_error(format!("cannot read: {}", e)))?;
    let Some(bytes) = bytes else {
        return Err(io_error(format!(
            "is more than {} bytes; scenario files are limited to that",
            limits::MAX_FILE_BYTES
        )));
    };
    load_bytes(&file, &bytes, overrides)
}

/// Reads at most [`limits::MAX_FILE_BYTES`]; `None` when there is more.
fn read_limited(r: impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    r.take(limits::MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limits::MAX_FILE_BYTES).then_some(bytes))
}

/// Loads a scenario from bytes; `file` names it in errors. Rejects non-UTF-8 input with
/// the line and column of the first bad byte.
pub fn load_bytes(
    file: &str,
    bytes: &[u8],
    overrides: &[Override],
) -> Result<ScenarioDocument, ScenarioErrors> {
    match std::str::from_utf8(bytes) {
        Ok(text) => load_str(file, text, overrides),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            // The prefix is valid UTF-8, so the column counts characters.
            let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
            let byte = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
            Err(ScenarioErrors::one(ScenarioError {
                file: file.to_string(),
                origin: Origin::Line {
                    line,
                    column: Some(column),
                },
                path: String::new(),
                kind: ErrorKind::Encoding,
                message: format!(
                    "not valid UTF-8 (byte 0x{byte:02x}); scenario files are UTF-8 text"
                ),
            }))
        }
    }
}

/// Loads a scenario from text; `file` names it in errors and its stem is the default
/// scenario name.
pub fn load_str(
    file: &str,
    text: &str,
    overrides: &[Override],
) -> Result<ScenarioDocument, ScenarioErrors> {
    if text.len() as u64 > limits::MAX_FILE_BYTES {
        return Err(ScenarioErrors::one(ScenarioError {
            file: file.to_string(),
            origin: Origin::File,
            path: String::new(),
            kind: ErrorKind::Io,
            message: format!(
                "text is {} bytes; scenario files are limited to {} bytes",
                text.len(),
                limits::MAX_FILE_BYTES
            ),
        }));
    }
    let lines = LineIndex::new(text);
    let (root, parse_errors) = DeTable::parse_recoverable(text);
    if !parse_errors.is_empty() {
        // The parser recovers and goes on, but what follows a syntax error is often a
        // consequence of it: keep the first error of each line, at most a few.
        let mut errors: Vec<ScenarioError> = Vec::new();
        for e in &parse_errors {
            let origin = match e.span() {
                Some(span) => {
                    let (line, column) = lines.line_col(text, span.start);
                    Origin::Line {
                        line,
                        column: Some(column),
                    }
                }
                None => Origin::File,
            };
            if errors.iter().any(|x| same_line(&x.origin, &origin)) {
                continue;
            }
            if errors.len() == limits::MAX_SYNTAX_ERRORS {
                break;
            }
            errors.push(ScenarioError {
                file: file.to_string(),
                origin,
                path: String::new(),
                kind: ErrorKind::Syntax,
                message: format!("TOML syntax error: {}", e.message()),
            });
        }
        return Err(ScenarioErrors::new(errors));
    }
    let mut spans = Spans::default();
    spans.collect(root.get_ref(), "", &lines);
    let table = toml::Table::deserialize(toml::de::Deserializer::from(root)).map_err(|e| {
        // Where it is (an integer past 64 bits is found only here): the line, and the
        // key on that line.
        let (origin, path) = match e.span() {
            Some(span) => {
                let (line, column) = lines.line_col(text, span.start);
                (
                    Origin::Line {
                        line,
                        column: Some(column),
                    },
                    spans.deepest_on(line).unwrap_or_default(),
                )
            }
            None => (Origin::File, String::new()),
        };
        let m = e.message();
        let message = match m.strip_prefix("invalid type: integer `") {
            Some(rest) if m.contains("as i128") => format!(
                "integer {} is out of range: integers are 64-bit, at most {}",
                rest.split('`').next().unwrap_or(""),
                i64::MAX
            ),
            _ => format!("TOML error: {m}"),
        };
        ScenarioErrors::one(ScenarioError {
            file: file.to_string(),
            origin,
            path,
            kind: ErrorKind::Syntax,
            message,
        })
    })?;
    let mut table = table;
    let sets = apply_all(file, &mut table, overrides, overrides)?;
    finish(file, table, spans, sets)
}

fn same_line(a: &Origin, b: &Origin) -> bool {
    match (a, b) {
        (Origin::Line { line: x, .. }, Origin::Line { line: y, .. }) => x == y,
        _ => a == b,
    }
}

/// Applies `new` overrides to `table`; returns the overrides to locate values by (`all`,
/// which includes earlier ones).
fn apply_all(
    file: &str,
    table: &mut toml::Table,
    new: &[Override],
    all: &[Override],
) -> Result<Vec<Override>, ScenarioErrors> {
    let mut errors = Vec::new();
    for ov in new {
        if let Err(e) = overrides::apply(table, ov) {
            errors.push(ScenarioError {
                file: file.to_string(),
                origin: Origin::Set(ov.text().to_string()),
                path: e.path,
                kind: ErrorKind::Override,
                message: e.message,
            });
        }
    }
    if errors.is_empty() {
        Ok(all.to_vec())
    } else {
        Err(ScenarioErrors::new(errors))
    }
}

fn finish(
    file: &str,
    table: toml::Table,
    spans: Spans,
    sets: Vec<Override>,
) -> Result<ScenarioDocument, ScenarioErrors> {
    let loc = Locator {
        file,
        spans: &spans,
        overrides: &sets,
    };
    let (scenario, raw_sections) =
        validate::scenario(&table, &stem(file), &loc).map_err(ScenarioErrors::new)?;
    let with = |extra: &[Override]| {
        let mut all = sets.clone();
        all.extend_from_slice(extra);
        let mut t = table.clone();
        let extra_sets = apply_all(file, &mut t, extra, &all)?;
        core(file, &t, &spans, &extra_sets)
    };
    let ctx = SectionContext {
        loc: &loc,
        scenario: &scenario,
        with: &with,
    };
    let sections = validate::sections(&ctx, raw_sections).map_err(ScenarioErrors::new)?;
    let resolved_toml = resolved(file, &table)?;
    Ok(ScenarioDocument {
        scenario,
        source: file.to_string(),
        hash: hash_of(&resolved_toml),
        resolved_toml,
        sections: Arc::new(sections),
        base: Arc::new(Base {
            table,
            spans,
            overrides: sets,
        }),
    })
}

/// The scenario proper of a resolved table (its sections are not looked at).
fn core(
    file: &str,
    table: &toml::Table,
    spans: &Spans,
    sets: &[Override],
) -> Result<Scenario, ScenarioErrors> {
    let loc = Locator {
        file,
        spans,
        overrides: sets,
    };
    validate::scenario(table, &stem(file), &loc)
        .map(|(s, _)| s)
        .map_err(ScenarioErrors::new)
}

/// The table as canonical TOML.
fn resolved(file: &str, table: &toml::Table) -> Result<String, ScenarioErrors> {
    toml::to_string(table).map_err(|e| {
        ScenarioErrors::one(ScenarioError {
            file: file.to_string(),
            origin: Origin::File,
            path: String::new(),
            kind: ErrorKind::Invalid,
            message: format!("cannot write the resolved document as TOML: {e}"),
        })
    })
}

/// 16 hex digits of FNV-1a 64.
fn hash_of(resolved_toml: &str) -> String {
    format!("{:016x}", fnv1a64(resolved_toml.as_bytes()))
}

/// The default scenario name: the file name without directory and extension.
fn stem(file: &str) -> String {
    if file == STDIN_NAME {
        return "stdin".into();
    }
    Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "scenario".into())
}

/// FNV-1a, 64 bits: a portable, stable hash (std's hasher may change between releases).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Byte offsets of line starts, for offset -> line:column.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).max(1)
    }

    fn line_col(&self, text: &str, offset: usize) -> (usize, usize) {
        let line = self.line(offset);
        let start = self.starts[line - 1];
        let end = offset.min(text.len());
        let col = text
            .get(start..end)
            .map_or(end - start, |s| s.chars().count())
            + 1;
        (line, col)
    }
}

/// The line of every key in the file, by canonical dotted path.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spans {
    lines: BTreeMap<String, usize>,
}

impl Spans {
    /// The longest key path that starts on `line`.
    fn deepest_on(&self, line: usize) -> Option<String> {
        self.lines
            .iter()
            .filter(|(_, &l)| l == line)
            .map(|(p, _)| p)
            .max_by_key(|p| p.len())
            .cloned()
    }

    fn collect(&mut self, table: &DeTable<'_>, prefix: &str, index: &LineIndex) {
        for (key, value) in table.iter() {
            let path = join(prefix, key.get_ref());
            self.lines
                .entry(path.clone())
                .or_insert_with(|| index.line(key.span().start));
            self.collect_value(value.get_ref(), &path, index);
        }
    }

    fn collect_value(&mut self, value: &DeValue<'_>, path: &str, index: &LineIndex) {
        match value {
            DeValue::Table(t) => self.collect(t, path, index),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    // Each element's own line, as `path[i]` (a multi-line array's
                    // elements sit on lines of their own).
                    self.lines
                        .entry(format!("{path}[{i}]"))
                        .or_insert_with(|| index.line(item.span().start));
                    self.collect_value(item.get_ref(), path, index);
                }
            }
            _ => {}
        }
    }

    fn line(&self, path: &str) -> Option<usize> {
        self.lines.get(path).copied()
    }
}

/// Turns a field path into an error position: the `--set` that supplied the value, else
/// the line of the key (or of its nearest enclosing table), else the file.
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    spans: &'a Spans,
    overrides: &'a [Override],
}

impl Locator<'_> {
    /// Where `path` comes from.
    pub fn origin(&self, path: &str) -> Origin {
        if let Some(ov) = self.overrides.iter().rev().find(|o| {
            let p = o.path();
            path == p || path.starts_with(&format!("{p}.")) || path.starts_with(&format!("{p}["))
        }) {
            return Origin::Set(ov.text().to_string());
        }
        let mut p = path;
        loop {
            if let Some(line) = self.spans.line(p) {
                return Origin::Line { line, column: None };
            }
            match parent(p) {
                Some(up) => p = up,
                None => return Origin::File,
            }
        }
    }

    /// An error at `path`.
    pub fn error(&self, path: &str, kind: ErrorKind, message: String) -> ScenarioError {
        ScenarioError {
            file: self.file.to_string(),
            origin: self.origin(path),
            path: path.to_string(),
            kind,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn line_index() {
        let text = "a = 1\nb = 2\n\nc = \"é\"x";
        let idx = LineIndex::new(text);
        assert_eq!(idx.line(0), 1);
        assert_eq!(idx.line(6), 2);
        assert_eq!(idx.line(13), 4);
        assert_eq!(idx.line_col(text, text.len() - 1), (4, 8));
    }
}
