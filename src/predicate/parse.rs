//! The parser of the predicate language (grammar in the parent module), on winnow.
//!
//! A lexer built from winnow's parsers reads one token at a time from a
//! [`LocatingSlice`], which keeps byte offsets (always on character boundaries: the
//! stream is of `char`s) for column-accurate errors; a recursive descent over those
//! tokens builds the tree, carrying its depth so that nesting stops at [`MAX_DEPTH`].
//! Syntax and name errors stop the parse at once; kind errors (a number used as a flag)
//! are reported once the text is known to be well-formed.

use winnow::ascii::multispace0;
use winnow::combinator::{alt, opt, terminated};
use winnow::error::EmptyError;
use winnow::stream::{LocatingSlice, Location, Stream};
use winnow::token::{any, literal, take_till, take_while};
use winnow::Parser as _;

use super::{CompareOp, ErrorKind, Kind, Predicate, PredicateError, Value, Vocabulary, MAX_DEPTH};
use crate::duration::parse_duration;
use crate::suggest::suggestion;

type In<'a> = LocatingSlice<&'a str>;

/// One lexeme.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Lex<'a> {
    Open,
    Close,
    Op(CompareOp),
    /// A bare word: a keyword, a name or a value.
    Word(&'a str),
    /// A quoted value (without its quotes).
    Quoted(&'a str),
    End,
}

/// A lexeme and the byte offset where it starts.
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    lex: Lex<'a>,
    at: usize,
}

impl Tok<'_> {
    /// The token as it reads in the text, for messages.
    fn shown(&self) -> String {
        match self.lex {
            Lex::Word(w) | Lex::Quoted(w) => format!("{w:?}"),
            Lex::Op(op) => format!("\"{}\"", op.as_str()),
            Lex::Open => "\"(\"".into(),
            Lex::Close => "\")\"".into(),
            Lex::End => "the end".into(),
        }
    }

    fn is_word(&self, keyword: &str) -> bool {
        matches!(self.lex, Lex::Word(w) if w.eq_ignore_ascii_case(keyword))
    }
}

/// Characters of a bare word: names, numbers, durations.
fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

struct Parser<'a, 'v> {
    input: In<'a>,
    text: &'a str,
    vocab: &'v Vocabulary,
    /// The first kind error, reported if the text parses.
    kind_error: Option<PredicateError>,
}

type Result<T> = std::result::Result<T, PredicateError>;

impl<'a, 'v> Parser<'a, 'v> {
    fn new(text: &'a str, vocab: &'v Vocabulary) -> Self {
        Parser {
            input: LocatingSlice::new(text),
            text,
            vocab,
            kind_error: None,
        }
    }

    fn column(&self, at: usize) -> usize {
        self.text.get(..at).map_or(at, |s| s.chars().count()) + 1
    }

    fn error(&self, kind: ErrorKind, at: usize, message: impl Into<String>) -> PredicateError {
        PredicateError {
            kind,
            column: self.column(at),
            message: message.into(),
        }
    }

    fn syntax(&self, at: usize, message: impl Into<String>) -> PredicateError {
        self.error(ErrorKind::Syntax, at, message)
    }

    /// Reads the next token.
    fn lex(&mut self) -> Result<Tok<'a>> {
        let i = &mut self.input;
        let _ = multispace0::<_, EmptyError>.parse_next(i);
        let at = i.current_token_start();
        if i.eof_offset() == 0 {
            return Ok(Tok { lex: Lex::End, at });
        }
        let op = alt::<_, _, EmptyError, _>((
            literal("<=").value(CompareOp::Le),
            literal(">=").value(CompareOp::Ge),
            literal("==").value(CompareOp::Eq),
            literal("!=").value(CompareOp::Ne),
            literal("<").value(CompareOp::Lt),
            literal(">").value(CompareOp::Gt),
        ))
        .parse_next(i);
        if let Ok(op) = op {
            return Ok(Tok {
                lex: Lex::Op(op),
                at,
            });
        }
        if let Ok(w) = take_while::<_, _, EmptyError>(1.., word_char).parse_next(i) {
            return Ok(Tok {
                lex: Lex::Word(w),
                at,
            });
        }
        let c = any::<_, EmptyError>
            .parse_next(i)
            .map_err(|_| self.syntax(at, "unexpected end"))?;
        let lex = match c {
            '(' => Lex::Open,
            ')' => Lex::Close,
            '"' | '\'' => {
                let body = take_till::<_, _, EmptyError>(0.., c)
                    .parse_next(&mut self.input)
                    .unwrap_or_default();
                if any::<_, EmptyError>.parse_next(&mut self.input).is_err() {
                    return Err(self.syntax(at, "unterminated quote"));
                }
                Lex::Quoted(body)
            }
            '=' => return Err(self.syntax(at, "unexpected \"=\": write == to compare")),
            '!' => return Err(self.syntax(at, "unexpected \"!\": write != or not")),
            c => return Err(self.syntax(at, format!("unexpected character {c:?}"))),
        };
        Ok(Tok { lex, at })
    }

    /// The next token, not consumed.
    fn peek(&mut self) -> Result<Tok<'a>> {
        let start = self.input.checkpoint();
        let t = self.lex();
        self.input.reset(&start);
        t
    }

    fn deeper(&self, depth: usize, at: usize) -> Result<usize> {
        if depth >= MAX_DEPTH {
            Err(self.syntax(
                at,
                format!("nested deeper than {MAX_DEPTH} levels (parentheses and \"not\")"),
            ))
        } else {
            Ok(depth + 1)
        }
    }

    /// `item (keyword item)*`; several items are joined by `join`.
    fn chain(
        &mut self,
        depth: usize,
        keyword: &str,
        item: fn(&mut Self, usize) -> Result<Predicate>,
        join: fn(Vec<Predicate>) -> Predicate,
    ) -> Result<Predicate> {
        let mut parts = vec![item(self, depth)?];
        while self.peek()?.is_word(keyword) {
            self.lex()?;
            parts.push(item(self, depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            join(parts)
        })
    }

    fn expr(&mut self, depth: usize) -> Result<Predicate> {
        self.chain(depth, "or", Self::and, Predicate::Or)
    }

    fn and(&mut self, depth: usize) -> Result<Predicate> {
        self.chain(depth, "and", Self::unary, Predicate::And)
    }

    fn unary(&mut self, depth: usize) -> Result<Predicate> {
        let t = self.lex()?;
        match t.lex {
            Lex::Word(_) if t.is_word("not") => {
                let depth = self.deeper(depth, t.at)?;
                Ok(Predicate::Not(Box::new(self.unary(depth)?)))
            }
            Lex::Open => {
                let depth = self.deeper(depth, t.at)?;
                let e = self.expr(depth)?;
                let close = self.lex()?;
                match close.lex {
                    Lex::Close => Ok(e),
                    Lex::End => Err(self.syntax(close.at, "missing ')'")),
                    _ => {
                        Err(self.syntax(close.at, format!("missing ')' before {}", close.shown())))
                    }
                }
            }
            Lex::Word(name) => self.comparison(name, t.at),
            Lex::End => Err(self.syntax(t.at, "unexpected end of predicate")),
            _ => Err(self.syntax(t.at, format!("unexpected {}", t.shown()))),
        }
    }

    /// `NAME [OP VALUE]`, the name already read.
    fn comparison(&mut self, name: &str, at: usize) -> Result<Predicate> {
        let v = self.vocab;
        let Some((index, kind)) = v.lookup(name) else {
            return Err(self.error(
                ErrorKind::UnknownName,
                at,
                format!(
                    "unknown {} {name:?}{}{}",
                    v.noun,
                    v.context,
                    suggestion(name, &v.list())
                ),
            ));
        };
        let Lex::Op(op) = self.peek()?.lex else {
            if kind == Kind::Num {
                self.kind_error(
                    at,
                    format!("{name} is a number: compare it, e.g. \"{name} > 0\""),
                );
            }
            return Ok(Predicate::Flag {
                name: name.to_string(),
                index,
            });
        };
        self.lex()?;
        let t = self.lex()?;
        let (Lex::Word(text) | Lex::Quoted(text)) = t.lex else {
            return Err(self.syntax(
                t.at,
                format!("expected a value after {name} {}", op.as_str()),
            ));
        };
        let value = parse_value(text).map_err(|m| self.syntax(t.at, m))?;
        match (kind, value) {
            (Kind::Num, Value::Num(_)) => {}
            (Kind::Bool, Value::Bool(_)) if matches!(op, CompareOp::Eq | CompareOp::Ne) => {}
            (Kind::Bool, _) => self.kind_error(
                at,
                format!("{name} is true or false: use == true / == false"),
            ),
            (Kind::Num, Value::Bool(_)) => {
                self.kind_error(at, format!("{name} is a number: compare it with a number"))
            }
        }
        Ok(Predicate::Compare {
            name: name.to_string(),
            index,
            op,
            value,
        })
    }

    fn kind_error(&mut self, at: usize, message: String) {
        if self.kind_error.is_none() {
            self.kind_error = Some(self.error(ErrorKind::Type, at, message));
        }
    }

    /// The end of the text, or the error of what stands there instead.
    fn end(&mut self) -> Result<()> {
        let t = self.lex()?;
        if t.lex != Lex::End {
            return Err(self.syntax(
                t.at,
                format!("unexpected {} after a complete predicate", t.shown()),
            ));
        }
        match self.kind_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A value: `true`, `false`, a finite number or a duration (in seconds).
fn parse_value(v: &str) -> std::result::Result<Value, String> {
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

/// Parses a whole text as one predicate.
pub(super) fn parse_predicate(text: &str, vocab: &Vocabulary) -> Result<Predicate> {
    let mut p = Parser::new(text, vocab);
    if p.peek()?.lex == Lex::End {
        return Err(p.syntax(0, "empty predicate"));
    }
    let e = p.expr(0)?;
    p.end()?;
    Ok(e)
}

/// Which figures an assertion looks at, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeSyntax {
    /// `fleet:` or no scope.
    Fleet,
    /// `cluster.NAME:` (NAME may be `*`).
    Cluster(String),
}

/// What an assertion claims of each run, or of the runs together.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// The predicate holds in every run.
    Every(Predicate),
    /// `p(predicate) op bound`: the fraction of runs in which it holds.
    Probability {
        /// The predicate inside `p(...)`.
        predicate: Predicate,
        /// Comparison of the fraction with the bound.
        op: CompareOp,
        /// The bound, in `[0, 1]`.
        bound: f64,
    },
}

/// An assertion as written: `[SCOPE:] BODY [over N seeds]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionSyntax {
    /// Its scope.
    pub scope: ScopeSyntax,
    /// Its body.
    pub body: Body,
    /// `over N seeds`, if given (`1..=max_runs`).
    pub over: Option<u32>,
}

/// Parses an assertion over `vocab`; `over N seeds` must have `1 <= N <= max_runs`.
pub fn parse_assertion(text: &str, vocab: &Vocabulary, max_runs: u32) -> Result<AssertionSyntax> {
    let mut p = Parser::new(text, vocab);
    if text.trim().is_empty() {
        return Err(p.syntax(0, "empty assertion"));
    }
    let head = opt(terminated(take_till::<_, _, EmptyError>(0.., ':'), ':'))
        .parse_next(&mut p.input)
        .unwrap_or(None);
    let scope = match head {
        None => ScopeSyntax::Fleet,
        Some(h) => {
            let at = h.len() - h.trim_start().len();
            match h.trim() {
                "fleet" => ScopeSyntax::Fleet,
                head => match head.strip_prefix("cluster.") {
                    None => {
                        return Err(p.syntax(
                            at,
                            format!("scope {head:?} is neither \"fleet\" nor \"cluster.NAME\""),
                        ))
                    }
                    Some(name) => {
                        let name = name.trim().trim_matches('"');
                        if name.is_empty() {
                            return Err(
                                p.syntax(at, "cluster scope without a name (cluster.NAME: ...)")
                            );
                        }
                        ScopeSyntax::Cluster(name.to_string())
                    }
                },
            }
        }
    };
    let first = p.peek()?;
    if first.lex == Lex::End {
        return Err(p.syntax(first.at, "empty predicate"));
    }
    if first.is_word("over") {
        return Err(p.syntax(first.at, "nothing to check before \"over\""));
    }
    let body = match probability(&mut p)? {
        Some(b) => b,
        None => Body::Every(p.expr(0)?),
    };
    let mut over = None;
    if p.peek()?.is_word("over") {
        let at = p.lex()?.at;
        let (n, unit, end) = (p.lex()?, p.lex()?, p.lex()?);
        let units = ["seeds", "seed", "runs", "run"];
        let Lex::Word(n_text) = n.lex else {
            return Err(p.syntax(at, "expected \"over N seeds\" at the end"));
        };
        if !units.iter().any(|u| unit.is_word(u)) || end.lex != Lex::End {
            return Err(p.syntax(at, "expected \"over N seeds\" at the end"));
        }
        let runs = n_text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max_runs).contains(n))
            .ok_or_else(|| {
                p.syntax(
                    n.at,
                    format!("over N seeds: N must be 1..={max_runs}, got {n_text:?}"),
                )
            })?;
        over = Some(runs);
    }
    p.end()?;
    Ok(AssertionSyntax { scope, body, over })
}

/// `p(PREDICATE) OP BOUND`, if the body starts with `p(`.
fn probability(p: &mut Parser<'_, '_>) -> Result<Option<Body>> {
    let start = p.input.checkpoint();
    let t = p.lex()?;
    if !(t.is_word("p") && p.peek()?.lex == Lex::Open) {
        p.input.reset(&start);
        return Ok(None);
    }
    let open = p.lex()?;
    let inner_start = open.at + 1;
    let predicate = p.expr(1)?;
    let close = p.lex()?;
    match close.lex {
        Lex::Close => {}
        Lex::End => return Err(p.syntax(open.at, "p( has no matching ')'")),
        _ => {
            return Err(p.syntax(
                close.at,
                format!("unexpected {} after a complete predicate", close.shown()),
            ))
        }
    }
    let inner = p.text[inner_start..close.at].trim();
    let example = || format!("expected a comparison after p(...), e.g. \"p({inner}) <= 0.05\"");
    let op_tok = p.lex()?;
    let Lex::Op(op) = op_tok.lex else {
        return Err(p.syntax(op_tok.at, example()));
    };
    let b = p.lex()?;
    let (Lex::Word(text) | Lex::Quoted(text)) = b.lex else {
        return Err(p.syntax(op_tok.at, example()));
    };
    let bound = text
        .parse::<f64>()
        .ok()
        .filter(|x| (0.0..=1.0).contains(x))
        .ok_or_else(|| {
            p.syntax(
                b.at,
                format!("a probability must be a number in [0, 1], got {text:?}"),
            )
        })?;
    Ok(Some(Body::Probability {
        predicate,
        op,
        bound,
    }))
}
