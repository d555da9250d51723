//! Dotted key paths (`cluster."a.b".istiod.replicas`): how a key is written in a path,
//! joining keys into a path, splitting a path back into keys and taking its parent.
//!
//! A key is written bare when TOML allows it (letters, digits, `_`, `-`), else quoted
//! with `"` and Rust's `escape_debug` escapes. Paths name scenario values for `--set`,
//! sweep grids and strategies, and every error message, so all of them use this one
//! spelling: a path written by one layer finds its line in another.

use std::borrow::Cow;

/// A key as it appears in a dotted path: bare when TOML allows, quoted otherwise.
pub fn quote_key(key: &str) -> Cow<'_, str> {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        key.into()
    } else {
        format!("\"{}\"", key.escape_debug()).into()
    }
}

/// `base.key`, quoting `key` if needed (`key` alone when `base` is empty).
pub fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        quote_key(key).into_owned()
    } else {
        format!("{base}.{}", quote_key(key))
    }
}

/// The keys joined into one path.
pub fn join_all<S: AsRef<str>>(keys: &[S]) -> String {
    keys.iter().fold(String::new(), |p, k| join(&p, k.as_ref()))
}

/// Splits a dotted path into at most `max_keys` keys; `"..."` quotes a key (with `\"`
/// and `\\` escapes). Bare keys are trimmed of surrounding spaces.
pub fn split(path: &str, max_keys: usize) -> Result<Vec<String>, String> {
    let mut segments = Vec::new();
    let mut chars = path.trim().chars().peekable();
    if chars.peek().is_none() {
        return Err("empty path".into());
    }
    loop {
        let mut key = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some(e) => key.push(e),
                        None => break,
                    },
                    c => key.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quote in path {path:?}"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                key.push(c);
                chars.next();
            }
            key = key.trim().to_string();
            if key.is_empty() {
                return Err(format!("empty key in path {path:?}"));
            }
        }
        segments.push(key);
        if segments.len() > max_keys {
            return Err(format!("path has more than {max_keys} keys"));
        }
        match chars.next() {
            None => return Ok(segments),
            Some('.') => {}
            Some(c) => return Err(format!("unexpected {c:?} after a quoted key in {path:?}")),
        }
    }
}

/// The characters of `text` outside double quotes (with `\"` and `\\` escapes inside
/// them), with their byte offsets.
pub fn unquoted(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quoted = false;
    let mut escaped = false;
    text.char_indices().filter(move |&(_, c)| {
        let outside = !quoted && c != '"';
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            _ => {}
        }
        outside
    })
}

/// The path without its last key or array index (quote-aware), or `None` at the top:
/// `a.b.c` -> `a.b`, `rollout.waves[2]` -> `rollout.waves`.
pub fn parent(path: &str) -> Option<&str> {
    if path.ends_with(']') {
        if let Some(i) = path.rfind('[') {
            return Some(&path[..i]);
        }
    }
    let last_dot = unquoted(path).filter(|&(_, c)| c == '.').last();
    last_dot.map(|(i, _)| &path[..i])
}

/// Whether `path` is `prefix` or lies below it (`prefix.x`, `prefix[i]`).
pub fn is_under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(quote_key("pca-east_1"), "pca-east_1");
        assert_eq!(quote_key("ca.pca.workers"), "\"ca.pca.workers\"");
        assert_eq!(quote_key(""), "\"\"");
        assert_eq!(
            join("sweep.grid", "ca.pca.workers"),
            "sweep.grid.\"ca.pca.workers\""
        );
        assert_eq!(join("", "ca"), "ca");
        assert_eq!(
            join_all(&["cluster", "a.b", "count"]),
            "cluster.\"a.b\".count"
        );
    }

    #[test]
    fn splits_what_join_writes() {
        for keys in [
            vec!["a"],
            vec!["cluster", "a.b=c", "count"],
            vec!["x", "q\"uote"],
        ] {
            assert_eq!(split(&join_all(&keys), 8).unwrap(), keys);
        }
        assert_eq!(split(" a . b ", 8).unwrap(), ["a", "b"]);
        for bad in ["", "a..b", "a.\"b", "a.\"b\"c", ".a"] {
            assert!(split(bad, 8).is_err(), "{bad}");
        }
        assert!(split("a.b.c", 2).unwrap_err().contains("more than 2 keys"));
    }

    #[test]
    fn parents() {
        assert_eq!(parent("a.b.c"), Some("a.b"));
        assert_eq!(parent("a"), None);
        assert_eq!(parent("cluster.\"x.y\".count"), Some("cluster.\"x.y\""));
        assert_eq!(parent("cluster.\"x.y\""), Some("cluster"));
        assert_eq!(parent("rollout.waves[2]"), Some("rollout.waves"));
    }

    #[test]
    fn unquoted_skips_quoted_keys_and_escapes() {
        let outside: String = unquoted(r#"a."b.\"c".d"#).map(|(_, c)| c).collect();
        assert_eq!(outside, "a..d");
        let at: Vec<usize> = unquoted("x\"=\"=1")
            .filter(|&(_, c)| c == '=')
            .map(|(i, _)| i)
            .collect();
        assert_eq!(at, [4]);
    }

    #[test]
    fn under() {
        assert!(is_under("cluster.a.count", "cluster.a"));
        assert!(is_under("rollout.waves[1]", "rollout.waves"));
        assert!(is_under("cluster.a", "cluster.a"));
        assert!(!is_under("cluster.ab", "cluster.a"));
    }
}
