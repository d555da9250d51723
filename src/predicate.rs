//! The predicate language: one small language for every condition a scenario states —
//! an intervention's `when`, the sweep's `failure`, the assertions of `[expect]`.
//!
//! ```text
//! predicate := or
//! or        := and ("or" and)*
//! and       := unary ("and" unary)*
//! unary     := "not" unary | "(" predicate ")" | NAME OP VALUE | NAME
//! OP        := "<" | "<=" | ">" | ">=" | "==" | "!="
//! VALUE     := a number | true | false | a duration (`10m`, `"1h30m"`, read as seconds)
//! NAME      := [A-Za-z_][A-Za-z0-9_]*
//!
//! assertion := [SCOPE ":"] (predicate | "p(" predicate ")" OP PROBABILITY) ["over" N "seeds"]
//! SCOPE     := "fleet" | "cluster." CLUSTER        (CLUSTER may be "*")
//! ```
//!
//! Keywords (`and`, `or`, `not`, `over`, `seeds`) are case-insensitive. Whitespace is
//! ASCII white space; anything outside the grammar — a non-ASCII letter, a no-break
//! space, a lone `=` — is an error naming its column (1-based, in characters). Nesting
//! (parentheses and `not`) is limited to [`MAX_DEPTH`] levels, so no input can exhaust
//! the stack.
//!
//! What a NAME may be, and whether it is a number or a yes/no value, is the caller's
//! [`Vocabulary`]: the figures of a run for `[expect]` and `[sweep]`, the metrics a
//! sample measures for interventions. A bare NAME must be a yes/no value; a yes/no value
//! is only compared with `==` / `!=` and `true` / `false`. The language knows nothing of
//! what produces the values: a predicate is evaluated against any [`Values`].

mod parse;

use std::fmt;

pub use parse::{parse_assertion, AssertionSyntax, Body, ScopeSyntax};

/// Most levels of nesting (parentheses and `not`) a predicate may have.
pub const MAX_DEPTH: usize = 64;

/// A value a name stands for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A number (times in seconds; a time that never happened is +infinity).
    Num(f64),
    /// A yes/no value.
    Bool(bool),
}

/// Whether a name is a number or a yes/no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A number.
    Num,
    /// A yes/no value.
    Bool,
}

/// The comparison operators (the one set used everywhere a scenario compares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
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

impl CompareOp {
    /// The operator's text.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        }
    }

    /// Applies it to numbers.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CompareOp::Lt => a < b,
            CompareOp::Le => a <= b,
            CompareOp::Gt => a > b,
            CompareOp::Ge => a >= b,
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
        }
    }
}

/// The names a predicate may use, with their kinds; indices into `names` are what a
/// parsed predicate refers to and what [`Values::value`] is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// What a name is, for messages: `figure`, `metric`.
    pub noun: &'static str,
    /// Said after the unknown name in messages (`" in condition"`), or empty.
    pub context: &'static str,
    /// The names and their kinds, in a stable order.
    pub names: &'static [(&'static str, Kind)],
}

impl Vocabulary {
    /// The index and kind of `name`.
    pub fn lookup(&self, name: &str) -> Option<(usize, Kind)> {
        self.names
            .iter()
            .position(|(n, _)| *n == name)
            .map(|i| (i, self.names[i].1))
    }

    /// Every name, in order.
    pub fn list(&self) -> Vec<&'static str> {
        self.names.iter().map(|(n, _)| *n).collect()
    }
}

/// What a predicate is evaluated against: the value of each name of its vocabulary.
pub trait Values {
    /// The value of the vocabulary's name number `index`.
    fn value(&self, index: usize) -> Value;
}

impl<F: Fn(usize) -> Value> Values for F {
    fn value(&self, index: usize) -> Value {
        self(index)
    }
}

/// A parsed, type-checked predicate.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// Any holds.
    Or(Vec<Predicate>),
    /// All hold.
    And(Vec<Predicate>),
    /// Does not hold.
    Not(Box<Predicate>),
    /// `name op value`.
    Compare {
        /// The name as written.
        name: String,
        /// Its index in the vocabulary.
        index: usize,
        /// Operator.
        op: CompareOp,
        /// Right-hand side.
        value: Value,
    },
    /// A yes/no name on its own.
    Flag {
        /// The name as written.
        name: String,
        /// Its index in the vocabulary.
        index: usize,
    },
}

/// What kind of problem a [`PredicateError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not in the grammar.
    Syntax,
    /// A name the vocabulary does not know.
    UnknownName,
    /// A name used as the wrong kind (a number as a flag, a flag compared with `<`).
    Type,
}

/// Why a text is not a predicate (or an assertion), and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredicateError {
    /// What kind of problem.
    pub kind: ErrorKind,
    /// 1-based column (in characters) in the text parsed.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PredicateError {
    /// `unexpected "yes" after a complete predicate (column 19)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (column {})", self.message, self.column)
    }
}

impl std::error::Error for PredicateError {}

impl Predicate {
    /// Parses `text` as a predicate over `vocab`.
    pub fn parse(text: &str, vocab: &Vocabulary) -> Result<Predicate, PredicateError> {
        parse::parse_predicate(text, vocab)
    }

    /// Whether it holds for `values`.
    pub fn holds(&self, values: &(impl Values + ?Sized)) -> bool {
        match self {
            Predicate::Or(v) => v.iter().any(|p| p.holds(values)),
            Predicate::And(v) => v.iter().all(|p| p.holds(values)),
            Predicate::Not(p) => !p.holds(values),
            Predicate::Flag { index, .. } => values.value(*index) == Value::Bool(true),
            Predicate::Compare {
                index, op, value, ..
            } => match (values.value(*index), value) {
                (Value::Num(a), Value::Num(b)) => op.holds(a, *b),
                (Value::Bool(a), Value::Bool(b)) => match op {
                    CompareOp::Eq => a == *b,
                    CompareOp::Ne => a != *b,
                    _ => false,
                },
                _ => false,
            },
        }
    }

    /// The vocabulary indices it reads, in order of first use.
    pub fn names(&self) -> Vec<usize> {
        fn walk(p: &Predicate, out: &mut Vec<usize>) {
            match p {
                Predicate::Or(v) | Predicate::And(v) => v.iter().for_each(|p| walk(p, out)),
                Predicate::Not(p) => walk(p, out),
                Predicate::Compare { index, .. } | Predicate::Flag { index, .. } => {
                    if !out.contains(index) {
                        out.push(*index);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(self, &mut out);
        out
    }
}

#[cfg(test)]
mod tests;
