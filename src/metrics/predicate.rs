//! Predicates over a run's figures: the sweep's failure predicate and the checks'
//! assertions, e.g. `peak_crashloop_pods > 0 or time_to_recover_s > 3600`.
//!
//! Grammar: `expr := and ("or" and)*`, `and := unary ("and" unary)*`,
//! `unary := "not" unary | "(" expr ")" | FIGURE OP VALUE | FIGURE`, with `OP` one of
//! `< <= > >= == !=` and `VALUE` a number, `true`, `false` or a duration (`"10m"`, `1h`,
//! read as seconds). A bare figure must be a boolean. A time that never happened
//! (`upgrade_complete_s`, `time_to_recover_s` null) counts as +infinity: "never
//! recovered" is later than any bound.

use crate::duration::parse_duration;

use super::Figures;

/// A figure's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A number (times in seconds; a time that never happened is +infinity).
    Num(f64),
    /// A yes/no figure.
    Bool(bool),
}

/// The figures a predicate may name, in the order of [`Figures`].
pub const FIGURES: &[&str] = &[
    "upgrade_complete_s",
    "upgrade_failed",
    "recovered",
    "time_to_recover_s",
    "peak_crashloop_pods",
    "crashloop_pod_seconds",
    "pods_total",
    "pod_restarts",
    "evictions",
    "csr_requests",
    "csr_timeouts",
    "csr_rate_limited",
    "csr_failed_objects_peak",
    "csr_wasted_signings",
    "ca_peak_queue",
    "ca_utilization",
    "min_ready_fraction",
    "metastable",
];

impl Figures {
    /// A figure by name (see [`FIGURES`]).
    pub fn get(&self, name: &str) -> Option<Value> {
        let time = |t: Option<f64>| Value::Num(t.unwrap_or(f64::INFINITY));
        Some(match name {
            "upgrade_complete_s" => time(self.upgrade_complete_s),
            "upgrade_failed" => Value::Bool(self.upgrade_failed),
            "recovered" => Value::Bool(self.recovered),
            "time_to_recover_s" => time(self.time_to_recover_s),
            "peak_crashloop_pods" => Value::Num(self.peak_crashloop_pods as f64),
            "crashloop_pod_seconds" => Value::Num(self.crashloop_pod_seconds),
            "pods_total" => Value::Num(self.pods_total as f64),
            "pod_restarts" => Value::Num(self.pod_restarts as f64),
            "evictions" => Value::Num(self.evictions as f64),
            "csr_requests" => Value::Num(self.csr_requests as f64),
            "csr_timeouts" => Value::Num(self.csr_timeouts as f64),
            "csr_rate_limited" => Value::Num(self.csr_rate_limited as f64),
            "csr_failed_objects_peak" => Value::Num(self.csr_failed_objects_peak as f64),
            "csr_wasted_signings" => Value::Num(self.csr_wasted_signings as f64),
            "ca_peak_queue" => Value::Num(self.ca_peak_queue as f64),
            "ca_utilization" => Value::Num(self.ca_utilization),
            "min_ready_fraction" => Value::Num(self.min_ready_fraction),
            "metastable" => Value::Bool(self.metastable),
            _ => return None,
        })
    }
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// Applies it to numbers.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Eq => a == b,
            Op::Ne => a != b,
        }
    }
}

/// A parsed predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// Any holds.
    Or(Vec<Predicate>),
    /// All hold.
    And(Vec<Predicate>),
    /// Does not hold.
    Not(Box<Predicate>),
    /// `figure op value`.
    Compare {
        /// Figure name.
        figure: String,
        /// Operator.
        op: Op,
        /// Right-hand side.
        value: Value,
    },
    /// A boolean figure on its own.
    Flag(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Op(Op),
    Open,
    Close,
}

impl Tok {
    /// The token as it reads in the predicate, for messages.
    fn shown(&self) -> String {
        match self {
            Tok::Word(w) => format!("{w:?}"),
            Tok::Op(op) => format!("\"{}\"", op.as_str()),
            Tok::Open => "\"(\"".into(),
            Tok::Close => "\")\"".into(),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == ')' {
            out.push(Tok::Close);
            i += 1;
        } else if "<>=!".contains(c) {
            let two = text.get(i..i + 2).unwrap_or("");
            let (op, len) = match two {
                "<=" => (Op::Le, 2),
                ">=" => (Op::Ge, 2),
                "==" => (Op::Eq, 2),
                "!=" => (Op::Ne, 2),
                _ if c == '<' => (Op::Lt, 1),
                _ if c == '>' => (Op::Gt, 1),
                _ if c == '=' => (Op::Eq, 1),
                _ => return Err(format!("unexpected {c:?} at column {}", i + 1)),
            };
            out.push(Tok::Op(op));
            i += len;
        } else if c == '"' || c == '\'' {
            let end = text[i + 1..]
                .find(c)
                .ok_or_else(|| format!("unterminated quote at column {}", i + 1))?;
            out.push(Tok::Word(text[i + 1..i + 1 + end].to_string()));
            i += end + 2;
        } else {
            let start = i;
            while i < b.len() {
                let d = b[i] as char;
                if d.is_whitespace() || "()<>=!\"'".contains(d) {
                    break;
                }
                i += 1;
            }
            if start == i {
                return Err(format!("unexpected {c:?} at column {}", i + 1));
            }
            out.push(Tok::Word(text[start..i].to_string()));
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn expr(&mut self) -> Result<Predicate, String> {
        let mut parts = vec![self.and()?];
        while self.peek_word("or") {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Predicate::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Predicate, String> {
        let mut parts = vec![self.unary()?];
        while self.peek_word("and") {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Predicate::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Predicate, String> {
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Predicate::Not(Box::new(self.unary()?)));
        }
        match self.toks.get(self.pos).cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let e = self.expr()?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Word(figure)) => {
                self.pos += 1;
                check_figure(&figure)?;
                let Some(Tok::Op(op)) = self.toks.get(self.pos).cloned() else {
                    return Ok(Predicate::Flag(figure));
                };
                self.pos += 1;
                let Some(Tok::Word(v)) = self.toks.get(self.pos).cloned() else {
                    return Err(format!("expected a value after {figure} {}", op.as_str()));
                };
                self.pos += 1;
                Ok(Predicate::Compare {
                    figure,
                    op,
                    value: parse_value(&v)?,
                })
            }
            Some(t) => Err(format!("unexpected {}", t.shown())),
            None => Err("unexpected end of predicate".into()),
        }
    }
}

fn parse_value(v: &str) -> Result<Value, String> {
    match v {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Ok(x) = v.parse::<f64>() {
        if x.is_finite() {
            return Ok(Value::Num(x));
        }
    }
    parse_duration(v)
        .map(|d| Value::Num(d.as_secs_f64()))
        .map_err(|_| format!("{v:?} is not a number, true/false or a duration"))
}

/// Rejects unknown figures, naming the closest known one.
pub fn check_figure(name: &str) -> Result<(), String> {
    if FIGURES.contains(&name) {
        return Ok(());
    }
    let best = FIGURES
        .iter()
        .min_by_key(|f| edit_distance(name, f))
        .expect("non-empty");
    Err(format!("unknown figure {name:?}; did you mean {best:?}?"))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Predicate {
    /// Parses a predicate; the error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Predicate, String> {
        let toks = tokenize(text)?;
        if toks.is_empty() {
            return Err("empty predicate".into());
        }
        let mut p = Parser { toks, pos: 0 };
        let e = p.expr()?;
        if p.pos != p.toks.len() {
            return Err(format!(
                "unexpected {} after a complete predicate",
                p.toks[p.pos].shown()
            ));
        }
        e.check_types()?;
        Ok(e)
    }

    fn check_types(&self) -> Result<(), String> {
        match self {
            Predicate::Or(v) | Predicate::And(v) => v.iter().try_for_each(|p| p.check_types()),
            Predicate::Not(p) => p.check_types(),
            Predicate::Flag(f) => match Figures::sample().get(f) {
                Some(Value::Bool(_)) => Ok(()),
                _ => Err(format!("{f} is a number: compare it, e.g. \"{f} > 0\"")),
            },
            Predicate::Compare { figure, op, value } => {
                match (Figures::sample().get(figure), value) {
                    (Some(Value::Num(_)), Value::Num(_)) => Ok(()),
                    (Some(Value::Bool(_)), Value::Bool(_)) if matches!(op, Op::Eq | Op::Ne) => {
                        Ok(())
                    }
                    (Some(Value::Bool(_)), _) => {
                        Err(format!("{figure} is true or false: use == true / == false"))
                    }
                    _ => Err(format!("{figure} is a number: compare it with a number")),
                }
            }
        }
    }

    /// Evaluates against a run's figures.
    pub fn holds(&self, f: &Figures) -> bool {
        match self {
            Predicate::Or(v) => v.iter().any(|p| p.holds(f)),
            Predicate::And(v) => v.iter().all(|p| p.holds(f)),
            Predicate::Not(p) => !p.holds(f),
            Predicate::Flag(name) => matches!(f.get(name), Some(Value::Bool(true))),
            Predicate::Compare { figure, op, value } => match (f.get(figure), value) {
                (Some(Value::Num(a)), Value::Num(b)) => op.holds(a, *b),
                (Some(Value::Bool(a)), Value::Bool(b)) => match op {
                    Op::Eq => a == *b,
                    Op::Ne => a != *b,
                    _ => false,
                },
                _ => false,
            },
        }
    }
}

impl Figures {
    /// Figures with placeholder values (for type checks).
    fn sample() -> Figures {
        Figures {
            upgrade_complete_s: None,
            upgrade_failed: false,
            recovered: true,
            time_to_recover_s: None,
            peak_crashloop_pods: 0,
            crashloop_pod_seconds: 0.0,
            pods_total: 0,
            pod_restarts: 0,
            evictions: 0,
            csr_requests: 0,
            csr_timeouts: 0,
            csr_rate_limited: 0,
            csr_failed_objects_peak: 0,
            csr_wasted_signings: 0,
            ca_peak_queue: 0,
            ca_utilization: 0.0,
            min_ready_fraction: 1.0,
            metastable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figs() -> Figures {
        let mut f = Figures::sample();
        f.peak_crashloop_pods = 12;
        f.recovered = false;
        f
    }

    #[test]
    fn parses_and_evaluates() {
        let f = figs();
        let t = |s: &str| Predicate::parse(s).unwrap().holds(&f);
        assert!(t("peak_crashloop_pods > 0"));
        assert!(!t("peak_crashloop_pods <= 0"));
        assert!(
            t("time_to_recover_s > 3600"),
            "never recovered is later than any bound"
        );
        assert!(t("time_to_recover_s > 1h"));
        assert!(t("recovered == false and peak_crashloop_pods >= 12"));
        assert!(t("not recovered"));
        assert!(t("(recovered or metastable) or peak_crashloop_pods != 3"));
        assert!(!t("recovered or metastable"));
    }

    #[test]
    fn rejects_bad_predicates_with_reasons() {
        for (bad, why) in [
            ("", "empty"),
            ("peak_crashloop > 0", "did you mean \"peak_crashloop_pods\""),
            ("peak_crashloop_pods >", "expected a value"),
            ("peak_crashloop_pods > lots", "not a number"),
            ("(recovered", "missing ')'"),
            ("recovered recovered", "after a complete predicate"),
            ("peak_crashloop_pods", "is a number"),
            ("recovered > 1", "true or false"),
            ("peak_crashloop_pods == true", "is a number"),
        ] {
            let e = Predicate::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn every_listed_figure_resolves() {
        for f in FIGURES {
            assert!(Figures::sample().get(f).is_some(), "{f}");
        }
    }
}
