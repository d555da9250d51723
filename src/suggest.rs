//! "Did you mean": the nearest of a list of names to one that is not among them.
//!
//! Distances are strsim's optimal string alignment distance (insertions, deletions,
//! substitutions and transpositions of adjacent characters), case-insensitive. A
//! candidate is offered only when it is a plausible typo: at most `max(1, len / 3)`
//! edits away (and fewer edits than the word has characters), or one of the two is a
//! prefix of the other (3 characters or more).

/// Characters of each word compared (names are short; an absurd one stays cheap).
const MAX_CHARS: usize = 256;

/// The candidate nearest to `word`, if it is close enough to be a plausible typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let clip = |s: &str| -> String { s.chars().take(MAX_CHARS).collect::<String>().to_lowercase() };
    let w = clip(word);
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = strsim::osa_distance(&w, &clip(c));
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    let len = w.chars().count();
    let close = (d <= (len / 3).max(1) && d < len)
        || (word.len() >= 3 && (c.starts_with(word) || word.starts_with(c)));
    close.then_some(c)
}

/// `; did you mean "x"?` or `; expected one of: a, b, c` (a suffix for messages); empty
/// when there are no candidates.
pub fn suggestion(word: &str, candidates: &[&str]) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(c) => format!("; did you mean \"{c}\"?"),
        None if candidates.is_empty() => String::new(),
        None => format!("; expected one of: {}", candidates.join(", ")),
    }
}

/// `; did you mean "x"?` when a candidate is close, else nothing.
pub fn hint(word: &str, candidates: &[&str]) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(c) => format!("; did you mean \"{c}\"?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_transpositions() {
        assert_eq!(strsim::osa_distance("replica", "replicas"), 1);
        assert_eq!(strsim::osa_distance("kitten", "sitting"), 3);
        assert_eq!(strsim::osa_distance("wbe", "web"), 1);
    }

    #[test]
    fn nearest_key() {
        let keys = ["replicas", "startup_base", "client_qps", "pdb"];
        assert_eq!(nearest("replica", keys), Some("replicas"));
        assert_eq!(nearest("client_qsp", keys), Some("client_qps"));
        assert_eq!(nearest("Replicas", keys), Some("replicas"));
        assert_eq!(nearest("zzzzzz", keys), None);
        assert_eq!(nearest("x", Vec::<&str>::new()), None);
        assert_eq!(
            nearest("peak_crashloop", ["peak_crashloop_pods"]),
            Some("peak_crashloop_pods")
        );
        let long = "k".repeat(100_000);
        assert_eq!(nearest(&long, keys), None);
    }

    #[test]
    fn suffixes() {
        assert_eq!(
            suggestion("pacng", &["pacing"]),
            "; did you mean \"pacing\"?"
        );
        assert_eq!(
            suggestion("queue", &["ca_queue", "pods_pending"]),
            "; expected one of: ca_queue, pods_pending"
        );
        assert_eq!(suggestion("x", &[]), "");
        assert_eq!(hint("queue", &["ca_queue"]), "");
    }
}
