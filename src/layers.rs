//! The layer table of the crate docs, enforced: every `crate::X` a source file names
//! must be in the file's own layer or one below it.

use std::path::{Path, PathBuf};

/// Layers bottom to top; modules of one layer may use each other.
const LAYERS: &[&[&str]] = &[
    &["engine"],
    &[
        "duration",
        "stats",
        "keypath",
        "suggest",
        "predicate",
        "output",
        "fit",
        "numfmt",
    ],
    &["metrics", "observed"],
    &["ca", "control"],
    &["scenario"],
    &["import"],
    &["model", "budget"],
    &["report"],
    &["sweep", "calibrate"],
    &["review", "check"],
    &["cli", "fuzzing"],
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a source file belongs to (`src/model/certs.rs` -> `model`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_string_lossy();
    Some(first.trim_end_matches(".rs").to_string())
}

/// `(line number, module)` of every `crate::module` a source text names outside
/// comments.
fn uses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let code = code.split(" //").next().unwrap_or(code);
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
            rest = after;
        }
    }
    out
}

/// Imports from a higher layer in `text`, a file of `module`.
fn violations(module: &str, text: &str) -> Vec<String> {
    let Some(own) = rank(module) else {
        return vec![format!("module {module} is in no layer of src/layers.rs")];
    };
    uses(text)
        .into_iter()
        .filter_map(|(line, target)| match rank(&target) {
            Some(r) if r <= own => None,
            Some(_) => Some(format!(
                "line {line}: {module} uses crate::{target}, a higher layer"
            )),
            None => Some(format!("line {line}: crate::{target} is in no layer")),
        })
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    for file in &files {
        let module = module_of(&src, file).expect("under src");
        if matches!(module.as_str(), "lib" | "main" | "layers") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        for v in violations(&module, &text) {
            problems.push(format!("{}: {v}", file.display()));
        }
    }
    assert!(files.len() > 50, "only {} source files found", files.len());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_an_import_from_above() {
    let text = "use crate::engine::SimTime;\n// crate::cli in a comment\nfn f() { crate::sweep::pool(1); }\n";
    assert_eq!(
        violations("model", text),
        ["line 3: model uses crate::sweep, a higher layer"]
    );
    assert!(violations("cli", text).is_empty());
    assert_eq!(
        violations("nowhere", "")[0],
        "module nowhere is in no layer of src/layers.rs"
    );
    assert_eq!(
        violations("engine", "use crate::unknown::X;"),
        ["line 1: crate::unknown is in no layer"]
    );
}
