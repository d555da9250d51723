//! Validation: raw serde structs -> typed [`Scenario`], collecting every error.
//!
//! First the whole document is deserialised into [`RawDocument`]; if that fails, a walk
//! guided by the schema finds every unknown key and every value of the wrong type (each
//! deserialised alone), drops them and deserialises what is left, so range and reference
//! checks still run and all errors are reported together.

use std::collections::HashMap;

use serde::Deserialize;

use crate::ca::{CaConfig, OnTimeout, RateLimit, ServiceTime, Usl};
use crate::duration::format_duration;
use crate::engine::SimTime;
use crate::keypath::join;
use crate::predicate::{ErrorKind as PredicateErrorKind, Predicate};
use crate::suggest::{hint as nearest_hint, suggestion};

use super::error::{ErrorKind, ScenarioError};
use super::limits::*;
use super::load::Locator;
use super::raw::*;
use super::types::*;

/// A validated document.
pub(crate) struct Validated {
    pub scenario: Scenario,
    pub sweep: Option<toml::Table>,
    pub strategies: Option<toml::Table>,
    pub expect: Option<toml::Table>,
}

/// Validates a resolved document. `default_name` is the scenario name when
/// `[scenario] name` is absent.
pub(crate) fn validate(
    doc: &toml::Table,
    default_name: &str,
    loc: &Locator<'_>,
) -> Result<Validated, Vec<ScenarioError>> {
    let mut v = Checker {
        loc,
        errors: Vec::new(),
    };
    let raw = match RawDocument::deserialize(doc.clone()) {
        Ok(raw) => raw,
        Err(whole) => {
            let cleaned = diagnose(doc, &DOCUMENT, "", &mut v);
            match RawDocument::deserialize(cleaned) {
                Ok(raw) if !v.errors.is_empty() => raw,
                // The walk found nothing (or could not clean up): report serde's own message.
                _ => {
                    v.errors
                        .push(loc.error("", ErrorKind::Type, whole.message().to_string()));
                    return Err(v.errors);
                }
            }
        }
    };
    let scenario = v.document(&raw, default_name);
    if v.errors.is_empty() {
        if let Some(scenario) = scenario {
            return Ok(Validated {
                scenario,
                sweep: raw.sweep,
                strategies: raw.strategies,
                expect: raw.expect,
            });
        }
    }
    if v.errors.is_empty() {
        v.errors
            .push(loc.error("", ErrorKind::Invalid, "invalid scenario".into()));
    }
    Err(v.errors)
}

/// Reports unknown keys, misplaced values and ill-typed leaves under `path`; returns the
/// table without them.
fn diagnose(t: &toml::Table, schema: &TableSchema, path: &str, v: &mut Checker<'_>) -> toml::Table {
    let mut out = toml::Table::new();
    for (key, value) in t {
        let p = join(path, key);
        match schema.shape(key) {
            None => {
                let msg = format!("unknown field{}", suggestion(key, schema.fields()));
                v.push(&p, ErrorKind::UnknownField, msg);
            }
            Some(Shape::Leaf) => match schema.check_leaf(key, value) {
                Ok(()) => {
                    out.insert(key.clone(), value.clone());
                }
                Err(m) => v.push(&p, ErrorKind::Type, m),
            },
            Some(Shape::Opaque) => match value {
                toml::Value::Table(_) => {
                    out.insert(key.clone(), value.clone());
                }
                other => v.push(&p, ErrorKind::Type, expected_table(&p, other)),
            },
            Some(Shape::Table(sub)) => match value {
                toml::Value::Table(st) => {
                    let cleaned = diagnose(st, sub, &p, v);
                    out.insert(key.clone(), toml::Value::Table(cleaned));
                }
                other => v.push(&p, ErrorKind::Type, expected_table(&p, other)),
            },
            Some(Shape::Map(sub)) => match value {
                toml::Value::Table(named) => {
                    let mut m = toml::Table::new();
                    for (name, entry) in named {
                        let pn = join(&p, name);
                        match entry {
                            toml::Value::Table(et) => {
                                let cleaned = diagnose(et, sub, &pn, v);
                                m.insert(name.clone(), toml::Value::Table(cleaned));
                            }
                            other => v.push(
                                &pn,
                                ErrorKind::Type,
                                format!(
                                    "expected a table [{pn}] describing {}, got {} {}",
                                    sub.what,
                                    other.type_str(),
                                    short(other)
                                ),
                            ),
                        }
                    }
                    out.insert(key.clone(), toml::Value::Table(m));
                }
                other => v.push(
                    &p,
                    ErrorKind::Type,
                    format!(
                        "expected tables [{p}.<name>], got {} {}",
                        other.type_str(),
                        short(other)
                    ),
                ),
            },
        }
    }
    out
}

fn expected_table(path: &str, got: &toml::Value) -> String {
    format!(
        "expected a table [{path}], got {} {}",
        got.type_str(),
        short(got)
    )
}

/// A value as TOML, shortened for messages.
fn short(v: &toml::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}...", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

/// A float for messages: plain for ordinary magnitudes, scientific otherwise.
fn fmt_f64(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if x != 0.0 && (x.abs() >= 1e15 || x.abs() < 1e-6) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A bound of a float range.
#[derive(Clone, Copy)]
enum B {
    /// `>=` / `<=`
    Incl(f64),
    /// `>` / `<`
    Excl(f64),
    /// No bound.
    None,
}

/// Whether a duration may be zero.
#[derive(Clone, Copy, PartialEq)]
enum D {
    /// `>= 0`
    NonNeg,
    /// `> 0` (periods, timeouts: a zero would loop or fail at once)
    Positive,
}

const LIMIT: &str = " (limit against absurd sizes, see docs/scenario.md#limits)";

struct Checker<'a> {
    loc: &'a Locator<'a>,
    errors: Vec<ScenarioError>,
}

/// A cluster template before expansion.
struct Template {
    name: String,
    path: String,
    count: u64,
    spec: ClusterSpec,
}

impl Checker<'_> {
    fn push(&mut self, path: &str, kind: ErrorKind, message: String) {
        self.errors.push(self.loc.error(path, kind, message));
    }

    fn err(&mut self, path: &str, message: String) {
        self.push(path, ErrorKind::Invalid, message);
    }

    /// Whether an error was already reported at `prefix` or below it: checks that
    /// combine several values skip then, rather than report a consequence of the
    /// default that replaced a bad value.
    fn has_errors_under(&self, prefix: &str) -> bool {
        self.errors.iter().any(|e| {
            e.path == prefix
                || e.path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
        })
    }

    /// An integer in `min..=max` (`limit`: the max is a documented limit).
    fn int(
        &mut self,
        path: &str,
        v: Option<Int>,
        default: u64,
        min: u64,
        max: u64,
        limit: bool,
    ) -> u64 {
        let Some(Int(x)) = v else { return default };
        if x < 0 || (x as u64) < min {
            self.err(path, format!("must be >= {min}, got {x}"));
            default
        } else if x as u64 > max {
            let note = if limit { LIMIT } else { "" };
            self.err(path, format!("must be <= {max}{note}, got {x}"));
            default
        } else {
            x as u64
        }
    }

    /// [`Self::int`] for values the model holds as `u32` (`max` must fit).
    fn int32(
        &mut self,
        path: &str,
        v: Option<Int>,
        default: u32,
        min: u32,
        max: u64,
        limit: bool,
    ) -> u32 {
        let max = max.min(u64::from(u32::MAX));
        let x = self.int(path, v, u64::from(default), u64::from(min), max, limit);
        u32::try_from(x).unwrap_or(default)
    }

    /// A finite number within the bounds.
    fn num(&mut self, path: &str, v: Option<Num>, default: f64, lo: B, hi: B) -> f64 {
        let Some(Num(x)) = v else { return default };
        if !x.is_finite() {
            self.err(path, format!("must be a finite number, got {}", fmt_f64(x)));
            return default;
        }
        let low = match lo {
            B::Incl(b) if x < b => Some(format!(">= {}", fmt_f64(b))),
            B::Excl(b) if x <= b => Some(format!("> {}", fmt_f64(b))),
            _ => None,
        };
        let high = match hi {
            B::Incl(b) if x > b => Some(format!("<= {}", fmt_f64(b))),
            B::Excl(b) if x >= b => Some(format!("< {}", fmt_f64(b))),
            _ => None,
        };
        if let Some(bound) = low.or(high) {
            self.err(path, format!("must be {bound}, got {}", fmt_f64(x)));
            return default;
        }
        x
    }

    /// A rate in per-second units: `> 0` and at most [`MAX_RATE_PER_S`].
    fn rate(&mut self, path: &str, v: Option<Num>, default: f64) -> f64 {
        let x = self.num(path, v, default, B::Excl(0.0), B::None);
        if x > MAX_RATE_PER_S {
            self.err(
                path,
                format!(
                    "must be <= {}{LIMIT}, got {}",
                    fmt_f64(MAX_RATE_PER_S),
                    fmt_f64(x)
                ),
            );
            return default;
        }
        x
    }

    /// A duration, at most [`MAX_DURATION`].
    fn dur(&mut self, path: &str, v: &Option<Dur>, default: SimTime, rule: D) -> SimTime {
        let Some(d) = v else { return default };
        if rule == D::Positive && d.time == SimTime::ZERO {
            self.err(
                path,
                format!("must be > 0, got \"{}\"", d.text.escape_debug()),
            );
            default
        } else if d.time > MAX_DURATION {
            self.err(
                path,
                format!(
                    "must be <= {}{LIMIT}, got \"{}\"",
                    format_duration(MAX_DURATION),
                    d.text.escape_debug()
                ),
            );
            default
        } else {
            d.time
        }
    }

    /// A name of a named table: letters, digits, `-`, `_`; at most [`MAX_NAME_LEN`].
    fn name(&mut self, path: &str, name: &str) -> bool {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            self.err(
                path,
                format!(
                    "bad name \"{}\": names are 1 to {MAX_NAME_LEN} letters, digits, '-' or '_'",
                    name.escape_debug()
                ),
            );
        }
        ok
    }

    fn count_limit(&mut self, path: &str, what: &str, n: usize, max: u64) -> bool {
        if n as u64 > max {
            self.err(path, format!("{n} {what}; at most {max}{LIMIT}"));
            false
        } else {
            true
        }
    }

    // -----------------------------------------------------------------------------------

    fn document(&mut self, raw: &RawDocument, default_name: &str) -> Option<Scenario> {
        let mut s = Scenario::empty(default_name);
        self.meta(raw.scenario.as_ref(), &mut s);

        if raw.ca.is_empty() {
            self.err(
                "ca",
                "no certificate authority: define at least one [ca.<name>] table".into(),
            );
        }
        if !self.count_limit("ca", "CAs", raw.ca.len(), MAX_CAS) {
            return None;
        }
        for (name, rc) in &raw.ca {
            let path = join("ca", name);
            self.name(&path, name);
            s.cas.push(self.ca(&path, name, rc));
        }

        if raw.cluster.is_empty() {
            self.err(
                "cluster",
                "no cluster: define at least one [cluster.<name>] table".into(),
            );
        }
        let templates: Vec<Template> = raw
            .cluster
            .iter()
            .map(|(name, rc)| self.cluster(name, rc, &s.cas))
            .collect();
        let (clusters, templates_of) = self.expand(templates)?;
        s.clusters = clusters;

        s.rollout = self.rollout(
            raw.rollout.as_ref().unwrap_or(&RawRollout::default()),
            s.clusters.len(),
        );

        if !self.count_limit(
            "intervention",
            "interventions",
            raw.intervention.len(),
            MAX_INTERVENTIONS,
        ) {
            return None;
        }
        let names = ClusterNames {
            clusters: &s.clusters,
            templates: &templates_of,
        };
        for (name, ri) in &raw.intervention {
            let path = join("intervention", name);
            self.name(&path, name);
            if let Some(i) = self.intervention(&path, name, ri, &s.cas, &names) {
                s.interventions.push(i);
            }
        }
        Some(s)
    }

    fn meta(&mut self, meta: Option<&RawMeta>, s: &mut Scenario) {
        let Some(m) = meta else { return };
        if let Some(name) = &m.name {
            if name.trim().is_empty()
                || name.len() > MAX_NAME_LEN
                || name.chars().any(char::is_control)
            {
                self.err(
                    "scenario.name",
                    format!(
                        "must be 1 to {MAX_NAME_LEN} characters without control characters, got \"{}\"",
                        name.escape_debug()
                    ),
                );
            } else {
                s.name = name.clone();
            }
        }
        if let Some(d) = &m.description {
            s.description = d.clone();
        }
        s.seed = self.int("scenario.seed", m.seed, s.seed, 0, i64::MAX as u64, false);
        if let Some(h) = &m.horizon {
            if h.time == SimTime::ZERO {
                self.err(
                    "scenario.horizon",
                    format!("must be > 0, got \"{}\"", h.text.escape_debug()),
                );
            } else if h.time > MAX_HORIZON {
                self.err(
                    "scenario.horizon",
                    format!(
                        "must be <= {}{LIMIT}, got \"{}\"",
                        format_duration(MAX_HORIZON),
                        h.text.escape_debug()
                    ),
                );
            } else {
                s.horizon = h.time;
            }
        }
        if let Some(si) = &m.sample_interval {
            if si.time < MIN_SAMPLE_INTERVAL {
                self.err(
                    "scenario.sample_interval",
                    format!(
                        "must be >= {}{LIMIT}, got \"{}\"",
                        format_duration(MIN_SAMPLE_INTERVAL),
                        si.text.escape_debug()
                    ),
                );
            } else if si.time > s.horizon {
                self.err(
                    "scenario.sample_interval",
                    format!(
                        "must be <= the horizon ({}), got \"{}\"",
                        format_duration(s.horizon),
                        si.text.escape_debug()
                    ),
                );
            } else {
                s.sample_interval = si.time;
            }
        }
        let samples = s.horizon.as_nanos() / s.sample_interval.as_nanos().max(1);
        if samples > MAX_SAMPLES {
            self.err(
                "scenario.sample_interval",
                format!(
                    "horizon {} / sample interval {} = {samples} samples; at most {MAX_SAMPLES}{LIMIT}",
                    format_duration(s.horizon),
                    format_duration(s.sample_interval)
                ),
            );
        }
        s.max_events = self.int(
            "scenario.max_events",
            m.max_events,
            s.max_events,
            1,
            MAX_EVENTS,
            true,
        );
    }

    fn ca(&mut self, path: &str, name: &str, r: &RawCa) -> CaSpec {
        let d = CaConfig::default();
        let p = |f: &str| join(path, f);
        let workers = self.int32(&p("workers"), r.workers, d.workers, 1, MAX_WORKERS, true);
        let service = match r.service_dist.unwrap_or(ServiceDist::Exponential) {
            ServiceDist::Exponential => ServiceTime::Exponential {
                mean: self.dur(
                    &p("service_mean"),
                    &r.service_mean,
                    SimTime::from_millis(100),
                    D::Positive,
                ),
            },
            ServiceDist::Constant => ServiceTime::Constant {
                value: self.dur(
                    &p("service_mean"),
                    &r.service_mean,
                    SimTime::from_millis(100),
                    D::Positive,
                ),
            },
            ServiceDist::LogNormal => {
                let (median, p99) = match (&r.service_median, &r.service_p99) {
                    (Some(_), Some(_)) => (
                        self.dur(
                            &p("service_median"),
                            &r.service_median,
                            SimTime::from_millis(100),
                            D::Positive,
                        ),
                        self.dur(
                            &p("service_p99"),
                            &r.service_p99,
                            SimTime::from_millis(100),
                            D::Positive,
                        ),
                    ),
                    _ => {
                        self.err(
                            &p("service_dist"),
                            "service_dist = \"lognormal\" needs both service_median and service_p99".into(),
                        );
                        (SimTime::from_millis(100), SimTime::from_millis(200))
                    }
                };
                if p99 <= median && r.service_median.is_some() && r.service_p99.is_some() {
                    self.err(
                        &p("service_p99"),
                        format!(
                            "must be > service_median ({}), got \"{}\"",
                            format_duration(median),
                            r.service_p99
                                .as_ref()
                                .map_or(String::new(), |d| d.text.escape_debug().to_string())
                        ),
                    );
                }
                ServiceTime::LogNormal { median, p99 }
            }
        };
        let rate_limit = match r.rate_limit_per_s {
            Some(_) => {
                let rate = self.rate(&p("rate_limit_per_s"), r.rate_limit_per_s, 25.0);
                let burst_default = (rate.ceil() as u32).max(1);
                let burst = self.int32(
                    &p("rate_limit_burst"),
                    r.rate_limit_burst,
                    burst_default,
                    1,
                    MAX_BURST,
                    true,
                );
                Some(RateLimit {
                    rate_per_s: rate,
                    burst,
                })
            }
            None => {
                if r.rate_limit_burst.is_some() {
                    self.err(
                        &p("rate_limit_burst"),
                        "needs rate_limit_per_s (there is no rate limit to burst)".into(),
                    );
                }
                None
            }
        };
        let sigma = self.num(
            &p("contention_sigma"),
            r.contention_sigma,
            0.0,
            B::Incl(0.0),
            B::Excl(1.0),
        );
        let kappa = self.num(
            &p("coherency_kappa"),
            r.coherency_kappa,
            0.0,
            B::Incl(0.0),
            B::Incl(1.0),
        );
        let alpha = self.num(
            &p("failed_csr_slowdown_alpha"),
            r.failed_csr_slowdown_alpha,
            0.0,
            B::Incl(0.0),
            B::Incl(MAX_SLOWDOWN_ALPHA),
        );
        CaSpec {
            name: name.to_string(),
            config: CaConfig {
                workers,
                service,
                rate_limit,
                usl: Usl { sigma, kappa },
                failed_object_slowdown: alpha,
            },
            signer_deadline: self.dur(
                &p("signer_deadline"),
                &r.signer_deadline,
                SimTime::from_secs(30),
                D::Positive,
            ),
            on_timeout: match r.on_timeout.unwrap_or(RawOnTimeout::Keep) {
                RawOnTimeout::Keep => OnTimeout::Keep,
                RawOnTimeout::Cancel => OnTimeout::Cancel,
            },
        }
    }

    fn cluster(&mut self, name: &str, r: &RawCluster, cas: &[CaSpec]) -> Template {
        let path = join("cluster", name);
        self.name(&path, name);
        let p = |f: &str| join(&path, f);
        let count = self.int(&p("count"), r.count, 1, 1, MAX_CLUSTERS, true);
        let ca = match &r.ca {
            Some(ca_name) => match cas.iter().position(|c| &c.name == ca_name) {
                Some(i) => i,
                None => {
                    let names: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
                    self.err(
                        &p("ca"),
                        format!(
                            "no CA named \"{}\" (defined: {}){}",
                            ca_name.escape_debug(),
                            if names.is_empty() {
                                "none".into()
                            } else {
                                names.join(", ")
                            },
                            nearest_hint(ca_name, &names)
                        ),
                    );
                    0
                }
            },
            None if cas.len() > 1 => {
                let names: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
                self.err(
                    &path,
                    format!(
                        "missing field `ca`: required when more than one CA is defined ({})",
                        names.join(", ")
                    ),
                );
                0
            }
            None => 0,
        };

        let mut spec = ClusterSpec::with_defaults(name, ca);
        if let Some(i) = &r.istiod {
            spec.istiod = self.istiod(&p("istiod"), i);
        }
        if let Some(w) = &r.webhook {
            spec.webhook = self.webhook(&p("webhook"), w);
        }
        if let Some(a) = &r.agent {
            spec.agent = self.agent(&p("agent"), a);
        }
        if let Some(k) = &r.kubernetes {
            spec.kubernetes = self.kubernetes(&p("kubernetes"), k);
        }
        if !r.node_group.is_empty() {
            spec.node_groups = r
                .node_group
                .iter()
                .map(|(ng, rn)| {
                    let np = join(&p("node_group"), ng);
                    self.name(&np, ng);
                    self.node_group(&np, ng, rn)
                })
                .collect();
        }
        if !r.workload.is_empty() {
            spec.workloads = r
                .workload
                .iter()
                .map(|(wl, rw)| {
                    let wp = join(&p("workload"), wl);
                    self.name(&wp, wl);
                    self.workload(&wp, wl, rw)
                })
                .collect();
        }
        // Node affinity: names resolve against this cluster's node groups.
        if let Some(ng) = r.istiod.as_ref().and_then(|i| i.node_group.as_deref()) {
            spec.istiod.node_group = self.node_group_ref(&p("istiod.node_group"), ng, &spec);
        }
        for (i, (wl, rw)) in r.workload.iter().enumerate() {
            if let Some(ng) = rw.node_group.as_deref() {
                let at = join(&join(&p("workload"), wl), "node_group");
                spec.workloads[i].node_group = self.node_group_ref(&at, ng, &spec);
            }
        }
        let replicas: u64 = spec.workloads.iter().map(|w| u64::from(w.replicas)).sum();
        let istiod = u64::from(spec.istiod.replicas);
        let slots: u64 = spec
            .node_groups
            .iter()
            .map(|g| u64::from(g.nodes) * u64::from(g.max_pods))
            .sum();
        for (g, group) in spec.node_groups.iter().enumerate() {
            let pinned: u64 = spec
                .workloads
                .iter()
                .filter(|w| w.node_group == Some(g))
                .map(|w| u64::from(w.replicas))
                .sum::<u64>()
                + if spec.istiod.node_group == Some(g) {
                    istiod
                } else {
                    0
                };
            let room = u64::from(group.nodes) * u64::from(group.max_pods);
            if pinned > room && !self.has_errors_under(&path) {
                self.err(
                    &join(&p("node_group"), &group.name),
                    format!("pods pinned to this node group do not fit: {pinned} pods > {room} pod slots (nodes x max_pods)"),
                );
            }
        }
        if replicas + istiod > slots && !self.has_errors_under(&path) {
            self.err(
                &path,
                format!(
                    "pods do not fit: {replicas} workload replicas + {istiod} istiod replicas = {} pods > {slots} pod slots (nodes x max_pods over its node groups)",
                    replicas + istiod
                ),
            );
        }
        Template {
            name: name.to_string(),
            path,
            count,
            spec,
        }
    }

    /// Resolves a node group name of this cluster for node affinity.
    fn node_group_ref(&mut self, path: &str, name: &str, spec: &ClusterSpec) -> Option<usize> {
        if let Some(i) = spec.node_groups.iter().position(|g| g.name == name) {
            return Some(i);
        }
        let names: Vec<&str> = spec.node_groups.iter().map(|g| g.name.as_str()).collect();
        self.err(
            path,
            format!(
                "no node group named \"{}\" in this cluster (defined: {}){}",
                name.escape_debug(),
                names.join(", "),
                nearest_hint(name, &names)
            ),
        );
        None
    }

    fn istiod(&mut self, path: &str, r: &RawIstiod) -> IstiodSpec {
        let d = IstiodSpec::default();
        let p = |f: &str| join(path, f);
        IstiodSpec {
            replicas: self.int32(
                &p("replicas"),
                r.replicas,
                d.replicas,
                1,
                MAX_ISTIOD_REPLICAS,
                true,
            ),
            startup_base: self.dur(
                &p("startup_base"),
                &r.startup_base,
                d.startup_base,
                D::NonNeg,
            ),
            startup_per_1k_pods: self.dur(
                &p("startup_per_1k_pods"),
                &r.startup_per_1k_pods,
                d.startup_per_1k_pods,
                D::NonNeg,
            ),
            readiness_period: self.dur(
                &p("readiness_period"),
                &r.readiness_period,
                d.readiness_period,
                D::Positive,
            ),
            client_qps: self.rate(&p("client_qps"), r.client_qps, d.client_qps),
            client_burst: self.int32(
                &p("client_burst"),
                r.client_burst,
                d.client_burst,
                1,
                MAX_BURST,
                true,
            ),
            calls_per_csr: self.int32(
                &p("calls_per_csr"),
                r.calls_per_csr,
                d.calls_per_csr,
                1,
                MAX_SMALL_COUNT,
                true,
            ),
            ca_wait_timeout: self.dur(
                &p("ca_wait_timeout"),
                &r.ca_wait_timeout,
                d.ca_wait_timeout,
                D::Positive,
            ),
            delete_csr_on_give_up: r.delete_csr_on_give_up.unwrap_or(d.delete_csr_on_give_up),
            pdb: r.pdb.unwrap_or(d.pdb),
            node_group: None,
        }
    }

    fn webhook(&mut self, path: &str, r: &RawWebhook) -> WebhookSpec {
        let d = WebhookSpec::default();
        let p = |f: &str| join(path, f);
        let mut timeout = d.timeout;
        if let Some(t) = &r.timeout {
            if t.time < SimTime::from_secs(1) || t.time > SimTime::from_secs(30) {
                self.err(
                    &p("timeout"),
                    format!(
                        "must be between 1s and 30s (admissionregistration API), got \"{}\"",
                        t.text.escape_debug()
                    ),
                );
            } else {
                timeout = t.time;
            }
        }
        WebhookSpec {
            timeout,
            failure_policy: match r.failure_policy.unwrap_or(RawFailurePolicy::Fail) {
                RawFailurePolicy::Fail => FailurePolicy::Fail,
                RawFailurePolicy::Ignore => FailurePolicy::Ignore,
            },
            injection_time: self.dur(
                &p("injection_time"),
                &r.injection_time,
                d.injection_time,
                D::NonNeg,
            ),
        }
    }

    fn agent(&mut self, path: &str, r: &RawAgent) -> AgentSpec {
        let d = AgentSpec::default();
        let p = |f: &str| join(path, f);
        let a = AgentSpec {
            inner_attempts: self.int32(
                &p("inner_attempts"),
                r.inner_attempts,
                d.inner_attempts,
                1,
                MAX_SMALL_COUNT,
                true,
            ),
            inner_initial: self.dur(
                &p("inner_initial"),
                &r.inner_initial,
                d.inner_initial,
                D::Positive,
            ),
            outer_initial: self.dur(
                &p("outer_initial"),
                &r.outer_initial,
                d.outer_initial,
                D::Positive,
            ),
            outer_max: self.dur(&p("outer_max"), &r.outer_max, d.outer_max, D::Positive),
            startup_probe_limit: self.dur(
                &p("startup_probe_limit"),
                &r.startup_probe_limit,
                d.startup_probe_limit,
                D::Positive,
            ),
            termination_drain: self.dur(
                &p("termination_drain"),
                &r.termination_drain,
                d.termination_drain,
                D::NonNeg,
            ),
        };
        self.not_below(
            &p("outer_max"),
            a.outer_max,
            "outer_initial",
            a.outer_initial,
        );
        a
    }

    fn kubernetes(&mut self, path: &str, r: &RawKubernetes) -> KubernetesSpec {
        let d = KubernetesSpec::default();
        let p = |f: &str| join(path, f);
        let k = KubernetesSpec {
            backoff_initial: self.dur(
                &p("backoff_initial"),
                &r.backoff_initial,
                d.backoff_initial,
                D::Positive,
            ),
            backoff_max: self.dur(
                &p("backoff_max"),
                &r.backoff_max,
                d.backoff_max,
                D::Positive,
            ),
            backoff_reset: self.dur(
                &p("backoff_reset"),
                &r.backoff_reset,
                d.backoff_reset,
                D::Positive,
            ),
            requeue_base: self.dur(
                &p("requeue_base"),
                &r.requeue_base,
                d.requeue_base,
                D::Positive,
            ),
            requeue_max: self.dur(
                &p("requeue_max"),
                &r.requeue_max,
                d.requeue_max,
                D::Positive,
            ),
            csr_cleaner_period: self.dur(
                &p("csr_cleaner_period"),
                &r.csr_cleaner_period,
                d.csr_cleaner_period,
                D::Positive,
            ),
            csr_failed_max_age: self.dur(
                &p("csr_failed_max_age"),
                &r.csr_failed_max_age,
                d.csr_failed_max_age,
                D::NonNeg,
            ),
            eviction_retry: self.dur(
                &p("eviction_retry"),
                &r.eviction_retry,
                d.eviction_retry,
                D::Positive,
            ),
        };
        self.not_below(
            &p("backoff_max"),
            k.backoff_max,
            "backoff_initial",
            k.backoff_initial,
        );
        self.not_below(
            &p("requeue_max"),
            k.requeue_max,
            "requeue_base",
            k.requeue_base,
        );
        k
    }

    /// `value` (at `path`) must be >= the sibling `other_name`'s value.
    fn not_below(&mut self, path: &str, value: SimTime, other_name: &str, other: SimTime) {
        if value < other {
            self.err(
                path,
                format!(
                    "must be >= {other_name} ({}), got {}",
                    format_duration(other),
                    format_duration(value)
                ),
            );
        }
    }

    fn node_group(&mut self, path: &str, name: &str, r: &RawNodeGroup) -> NodeGroupSpec {
        let d = NodeGroupSpec::default();
        let p = |f: &str| join(path, f);
        let strategy = match r.strategy.unwrap_or(RawStrategy::Default) {
            RawStrategy::Default => UpdateStrategy::Default,
            RawStrategy::Minimal => UpdateStrategy::Minimal,
            RawStrategy::Karpenter => UpdateStrategy::Karpenter,
        };
        let max_unavailable = match (r.max_unavailable, r.max_unavailable_percent) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    "give max_unavailable (a count) or max_unavailable_percent, not both".into(),
                );
                d.max_unavailable
            }
            (Some(n), None) => {
                MaxUnavailable::Count(self.int32(&p("max_unavailable"), Some(n), 1, 1, 100, false))
            }
            (None, Some(pc)) => MaxUnavailable::Percent(self.num(
                &p("max_unavailable_percent"),
                Some(pc),
                10.0,
                B::Excl(0.0),
                B::Incl(100.0),
            )),
            // Karpenter's default disruption budget is `nodes: 10%`; EKS's is 1 node.
            (None, None) if strategy == UpdateStrategy::Karpenter => MaxUnavailable::Percent(10.0),
            (None, None) => d.max_unavailable,
        };
        let ami = self.ami(&p("ami"), r.ami.as_deref(), &d.ami);
        let target = self.ami(
            &p("target_ami"),
            r.target_ami.as_deref(),
            d.target_ami.as_deref().unwrap_or("ami-new"),
        );
        let g = NodeGroupSpec {
            name: name.to_string(),
            nodes: self.int32(&p("nodes"), r.nodes, d.nodes, 1, MAX_NODES_PER_GROUP, true),
            max_pods: self.int32(
                &p("max_pods"),
                r.max_pods,
                d.max_pods,
                1,
                MAX_PODS_PER_NODE,
                true,
            ),
            azs: self.int32(&p("azs"), r.azs, d.azs, 1, MAX_AZS, true),
            ami,
            target_ami: r.upgrade.unwrap_or(true).then_some(target),
            strategy,
            max_unavailable,
            launch_min: self.dur(&p("launch_min"), &r.launch_min, d.launch_min, D::NonNeg),
            launch_max: self.dur(&p("launch_max"), &r.launch_max, d.launch_max, D::NonNeg),
            drain_timeout: self.dur(
                &p("drain_timeout"),
                &r.drain_timeout,
                d.drain_timeout,
                D::Positive,
            ),
            force: r.force.unwrap_or(d.force),
            terminate_delay: self.dur(
                &p("terminate_delay"),
                &r.terminate_delay,
                d.terminate_delay,
                D::NonNeg,
            ),
        };
        self.not_below(&p("launch_max"), g.launch_max, "launch_min", g.launch_min);
        g
    }

    fn ami(&mut self, path: &str, v: Option<&str>, default: &str) -> String {
        match v {
            Some(a)
                if a.trim().is_empty()
                    || a.len() > MAX_NAME_LEN
                    || a.chars().any(char::is_control) =>
            {
                self.err(
                    path,
                    format!(
                        "must be 1 to {MAX_NAME_LEN} characters without control characters, got \"{}\"",
                        a.escape_debug()
                    ),
                );
                default.to_string()
            }
            Some(a) => a.to_string(),
            None => default.to_string(),
        }
    }

    fn workload(&mut self, path: &str, name: &str, r: &RawWorkload) -> WorkloadSpec {
        let d = WorkloadSpec::default();
        let p = |f: &str| join(path, f);
        let pdb_max = self.int32(
            &p("pdb_max_unavailable"),
            r.pdb_max_unavailable,
            1,
            0,
            MAX_PODS_TOTAL,
            true,
        );
        WorkloadSpec {
            name: name.to_string(),
            replicas: self.int32(
                &p("replicas"),
                r.replicas,
                d.replicas,
                1,
                MAX_PODS_TOTAL,
                true,
            ),
            injected: r.injected.unwrap_or(d.injected),
            pdb_max_unavailable: r.pdb.unwrap_or(true).then_some(pdb_max),
            container_start: self.dur(
                &p("container_start"),
                &r.container_start,
                d.container_start,
                D::NonNeg,
            ),
            ready_delay: self.dur(&p("ready_delay"), &r.ready_delay, d.ready_delay, D::NonNeg),
            node_group: None,
        }
    }

    /// Checks fleet totals, then expands `count` templates into uniquely named clusters.
    /// Returns the clusters and, per template name, the indices of its instances.
    #[allow(clippy::type_complexity)]
    fn expand(
        &mut self,
        templates: Vec<Template>,
    ) -> Option<(Vec<ClusterSpec>, Vec<(String, Vec<usize>)>)> {
        let mut clusters = 0u64;
        let mut pods = 0u64;
        let mut nodes = 0u64;
        let mut groups = 0u64;
        let mut workloads = 0u64;
        for t in &templates {
            let s = &t.spec;
            let c = t.count;
            clusters = clusters.saturating_add(c);
            let per: u64 = s
                .workloads
                .iter()
                .map(|w| u64::from(w.replicas))
                .sum::<u64>()
                + u64::from(s.istiod.replicas);
            pods = pods.saturating_add(per.saturating_mul(c));
            let n: u64 = s.node_groups.iter().map(|g| u64::from(g.nodes)).sum();
            nodes = nodes.saturating_add(n.saturating_mul(c));
            groups = groups.saturating_add((s.node_groups.len() as u64).saturating_mul(c));
            workloads = workloads.saturating_add((s.workloads.len() as u64).saturating_mul(c));
        }
        let mut ok = true;
        for (total, max, what) in [
            (clusters, MAX_CLUSTERS, "clusters"),
            (pods, MAX_PODS_TOTAL, "pods"),
            (nodes, MAX_NODES_TOTAL, "nodes"),
            (groups, MAX_NODE_GROUPS_TOTAL, "node groups"),
            (workloads, MAX_WORKLOADS_TOTAL, "workloads"),
        ] {
            if total > max {
                self.err("cluster", format!("the fleet has {total} {what} after expanding `count`; at most {max}{LIMIT}"));
                ok = false;
            }
        }
        if !ok {
            return None;
        }

        let mut out = Vec::with_capacity(clusters as usize);
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut templates_of = Vec::with_capacity(templates.len());
        for t in templates {
            let width = (t.count.saturating_sub(1)).to_string().len();
            let mut indices = Vec::with_capacity(t.count as usize);
            for i in 0..t.count {
                let name = if t.count == 1 {
                    t.name.clone()
                } else {
                    format!("{}-{i:0width$}", t.name)
                };
                if let Some(first) = seen.get(&name) {
                    let how = if t.count == 1 {
                        String::new()
                    } else {
                        format!(" (expanded from count = {})", t.count)
                    };
                    self.err(
                        &t.path,
                        format!("duplicate cluster name \"{name}\"{how}: {first} already has it"),
                    );
                    break;
                }
                seen.insert(name.clone(), t.path.clone());
                let mut spec = t.spec.clone();
                spec.name = name;
                indices.push(out.len());
                out.push(spec);
            }
            templates_of.push((t.name, indices));
        }
        Some((out, templates_of))
    }

    fn rollout(&mut self, r: &RawRollout, n_clusters: usize) -> RolloutSpec {
        let d = RolloutSpec::default();
        let mut waves = Vec::new();
        if let Some(ws) = &r.waves {
            let mut sum = 0u64;
            for (i, w) in ws.iter().enumerate() {
                let size = self.int32(
                    &format!("rollout.waves[{i}]"),
                    Some(*w),
                    1,
                    1,
                    MAX_CLUSTERS,
                    true,
                );
                sum += u64::from(size);
                waves.push(size);
            }
            let count_bad = self
                .errors
                .iter()
                .any(|e| e.path.starts_with("cluster.") && e.path.ends_with(".count"));
            if sum > n_clusters as u64 && !count_bad {
                let list: Vec<String> = ws.iter().map(|w| w.0.to_string()).collect();
                self.err(
                    "rollout.waves",
                    format!(
                        "wave larger than the fleet: waves [{}] take {sum} clusters, the fleet has {n_clusters}",
                        list.join(", ")
                    ),
                );
            }
        }
        let pacing = match r.pacing.unwrap_or(RawPacing::AllAtOnce) {
            RawPacing::AllAtOnce => Pacing::AllAtOnce,
            RawPacing::Batches => Pacing::Batches {
                size: self.int32(
                    "rollout.batch_size",
                    r.batch_size,
                    50,
                    1,
                    MAX_PODS_TOTAL,
                    true,
                ),
                interval: self.dur(
                    "rollout.batch_interval",
                    &r.batch_interval,
                    SimTime::from_secs(30),
                    D::Positive,
                ),
            },
            RawPacing::TokenBucket => Pacing::TokenBucket(RateLimit {
                rate_per_s: self.rate("rollout.rate_per_s", r.rate_per_s, 5.0),
                burst: self.int32("rollout.burst", r.burst, 10, 1, MAX_BURST, true),
            }),
            RawPacing::Aimd => {
                let min = self.rate("rollout.aimd_min_per_s", r.aimd_min_per_s, 0.5);
                let max = self.rate("rollout.aimd_max_per_s", r.aimd_max_per_s, 50.0);
                let initial = self.rate("rollout.aimd_initial_per_s", r.aimd_initial_per_s, 5.0);
                if max < min {
                    self.err(
                        "rollout.aimd_max_per_s",
                        format!(
                            "must be >= aimd_min_per_s ({}), got {}",
                            fmt_f64(min),
                            fmt_f64(max)
                        ),
                    );
                } else if initial < min || initial > max {
                    self.err(
                        "rollout.aimd_initial_per_s",
                        format!(
                            "must be between aimd_min_per_s ({}) and aimd_max_per_s ({}), got {}",
                            fmt_f64(min),
                            fmt_f64(max),
                            fmt_f64(initial)
                        ),
                    );
                }
                Pacing::Aimd {
                    initial_per_s: initial,
                    min_per_s: min,
                    max_per_s: max,
                    increase_per_s: self.rate(
                        "rollout.aimd_increase_per_s",
                        r.aimd_increase_per_s,
                        1.0,
                    ),
                    decrease_factor: self.num(
                        "rollout.aimd_decrease_factor",
                        r.aimd_decrease_factor,
                        0.5,
                        B::Excl(0.0),
                        B::Excl(1.0),
                    ),
                    error_threshold: self.num(
                        "rollout.aimd_error_threshold",
                        r.aimd_error_threshold,
                        0.05,
                        B::Incl(0.0),
                        B::Incl(1.0),
                    ),
                    interval: self.dur(
                        "rollout.aimd_interval",
                        &r.aimd_interval,
                        SimTime::from_secs(10),
                        D::Positive,
                    ),
                }
            }
        };
        RolloutSpec {
            start: self.dur("rollout.start", &r.start, d.start, D::NonNeg),
            waves,
            health_gate: r.health_gate.unwrap_or(d.health_gate),
            soak: self.dur("rollout.soak", &r.soak, d.soak, D::NonNeg),
            gate_timeout: self.dur(
                "rollout.gate_timeout",
                &r.gate_timeout,
                d.gate_timeout,
                D::Positive,
            ),
            pacing,
            istiod_replicas_during: r.istiod_replicas_during.map(|n| {
                self.int32(
                    "rollout.istiod_replicas_during",
                    Some(n),
                    1,
                    1,
                    MAX_ISTIOD_REPLICAS,
                    true,
                )
            }),
        }
    }

    fn intervention(
        &mut self,
        path: &str,
        name: &str,
        r: &RawIntervention,
        cas: &[CaSpec],
        names: &ClusterNames<'_>,
    ) -> Option<InterventionSpec> {
        let p = |f: &str| join(path, f);
        let before = self.errors.len();
        let trigger = match (&r.at, &r.when) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    "give exactly one of `at` (a time) or `when` (a condition), not both".into(),
                );
                None
            }
            (None, None) => {
                self.err(path, "missing trigger: give `at` (a time, e.g. \"20m\") or `when` (e.g. \"crashloop_pods > 100\")".into());
                None
            }
            (Some(_), None) => Some(Trigger::At(self.dur(
                &p("at"),
                &r.at,
                SimTime::ZERO,
                D::NonNeg,
            ))),
            (None, Some(w)) => match parse_condition(w) {
                Ok(c) => Some(Trigger::When(c)),
                Err(m) => {
                    self.err(&p("when"), m);
                    None
                }
            },
        };
        let Some(kind) = r.action else {
            self.err(
                path,
                format!(
                    "missing field `action`: one of {}",
                    RawAction::NAMES.join(", ")
                ),
            );
            return None;
        };
        let action_name = RawAction::NAMES[kind as usize];
        // Which optional fields each action takes.
        let allowed: &[&str] = match kind {
            RawAction::ScaleIstiod => &["replicas"],
            RawAction::RestartCrashlooping => &["batch_size", "interval"],
            RawAction::SetCa => &["ca", "workers", "rate_limit_per_s", "rate_limit_burst"],
            _ => &[],
        };
        let given = [
            ("replicas", r.replicas.is_some()),
            ("batch_size", r.batch_size.is_some()),
            ("interval", r.interval.is_some()),
            ("ca", r.ca.is_some()),
            ("workers", r.workers.is_some()),
            ("rate_limit_per_s", r.rate_limit_per_s.is_some()),
            ("rate_limit_burst", r.rate_limit_burst.is_some()),
            ("clusters", r.clusters.is_some() && kind == RawAction::SetCa),
        ];
        for (field, present) in given {
            if present && !allowed.contains(&field) {
                let why = if field == "clusters" {
                    " (a CA is fleet-level)"
                } else {
                    ""
                };
                self.err(
                    &p(field),
                    format!("does not apply to action \"{action_name}\"{why}"),
                );
            }
        }
        let clusters = match &r.clusters {
            Some(list) if kind != RawAction::SetCa => {
                self.cluster_refs(&p("clusters"), list, names)
            }
            _ => Vec::new(),
        };
        let action = match kind {
            RawAction::ScaleIstiod => match r.replicas {
                Some(n) => Action::ScaleIstiod {
                    replicas: self.int32(&p("replicas"), Some(n), 1, 1, MAX_ISTIOD_REPLICAS, true),
                },
                None => {
                    self.err(
                        path,
                        "missing field `replicas` for action \"scale_istiod\"".into(),
                    );
                    return None;
                }
            },
            RawAction::DeleteFailedCsrs => Action::DeleteFailedCsrs,
            RawAction::PauseRollout => Action::PauseRollout,
            RawAction::ResumeRollout => Action::ResumeRollout,
            RawAction::RestartCrashlooping => Action::RestartCrashlooping {
                batch_size: self.int32(&p("batch_size"), r.batch_size, 20, 1, MAX_PODS_TOTAL, true),
                interval: self.dur(
                    &p("interval"),
                    &r.interval,
                    SimTime::from_secs(30),
                    D::Positive,
                ),
            },
            RawAction::SetCa => {
                let ca = match &r.ca {
                    Some(n) => match cas.iter().position(|c| &c.name == n) {
                        Some(i) => i,
                        None => {
                            let list: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
                            self.err(
                                &p("ca"),
                                format!(
                                    "no CA named \"{}\"{}",
                                    n.escape_debug(),
                                    nearest_hint(n, &list)
                                ),
                            );
                            0
                        }
                    },
                    None if cas.len() > 1 => {
                        self.err(
                            path,
                            "missing field `ca`: required when more than one CA is defined".into(),
                        );
                        0
                    }
                    None => 0,
                };
                if r.workers.is_none() && r.rate_limit_per_s.is_none() {
                    self.err(
                        path,
                        "action \"set_ca\" needs `workers` and/or `rate_limit_per_s`".into(),
                    );
                }
                let workers = r
                    .workers
                    .map(|w| self.int32(&p("workers"), Some(w), 1, 1, MAX_WORKERS, true));
                let rate_limit = match r.rate_limit_per_s {
                    Some(Num(0.0)) => {
                        if r.rate_limit_burst.is_some() {
                            self.err(
                                &p("rate_limit_burst"),
                                "does not apply when rate_limit_per_s = 0 removes the limit".into(),
                            );
                        }
                        Some(None)
                    }
                    Some(rate) => {
                        let rate = self.rate(&p("rate_limit_per_s"), Some(rate), 1.0);
                        let burst = self.int32(
                            &p("rate_limit_burst"),
                            r.rate_limit_burst,
                            (rate.ceil() as u32).max(1),
                            1,
                            MAX_BURST,
                            true,
                        );
                        Some(Some(RateLimit {
                            rate_per_s: rate,
                            burst,
                        }))
                    }
                    None => {
                        if r.rate_limit_burst.is_some() {
                            self.err(&p("rate_limit_burst"), "needs rate_limit_per_s".into());
                        }
                        None
                    }
                };
                Action::SetCa {
                    ca,
                    workers,
                    rate_limit,
                }
            }
        };
        let trigger = trigger?;
        (self.errors.len() == before).then(|| InterventionSpec {
            name: name.to_string(),
            clusters,
            trigger,
            action,
        })
    }

    fn cluster_refs(
        &mut self,
        path: &str,
        list: &[String],
        names: &ClusterNames<'_>,
    ) -> Vec<usize> {
        if list.is_empty() {
            self.err(
                path,
                "empty list: omit `clusters` to mean every cluster".into(),
            );
        }
        let mut out: Vec<usize> = Vec::new();
        for (i, n) in list.iter().enumerate() {
            match names.resolve(n) {
                Some(idx) => {
                    for j in idx {
                        if !out.contains(&j) {
                            out.push(j);
                        }
                    }
                }
                None => {
                    let all = names.all();
                    self.err(
                        &format!("{path}[{i}]"),
                        format!(
                            "no cluster named \"{}\"{}",
                            n.escape_debug(),
                            nearest_hint(n, &all)
                        ),
                    );
                }
            }
        }
        out
    }
}

/// Cluster names for intervention references: instances and templates.
struct ClusterNames<'a> {
    clusters: &'a [ClusterSpec],
    templates: &'a [(String, Vec<usize>)],
}

impl ClusterNames<'_> {
    fn resolve(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(i) = self.clusters.iter().position(|c| c.name == name) {
            return Some(vec![i]);
        }
        self.templates
            .iter()
            .find(|(t, _)| t == name)
            .map(|(_, idx)| idx.clone())
    }

    fn all(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.templates.iter().map(|(t, _)| t.as_str()).collect();
        v.extend(self.clusters.iter().take(1000).map(|c| c.name.as_str()));
        v
    }
}

/// Parses an intervention's `when`: a predicate over [`CONDITIONS`].
pub(crate) fn parse_condition(text: &str) -> Result<Predicate, String> {
    Predicate::parse(text, &CONDITIONS).map_err(|e| match e.kind {
        PredicateErrorKind::Syntax => {
            format!("cannot parse condition \"{}\": {e}", text.escape_debug())
        }
        _ => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::Value;

    #[test]
    fn conditions_are_predicates_over_the_sampled_metrics() {
        let values = |i: usize| Value::Num([150.0, 0.0, 3.0, 0.0, 0.4][i]);
        for (text, holds) in [
            ("crashloop_pods > 100", true),
            ("ready_fraction<=0.5", true),
            ("ca_queue == 0", false),
            ("ca_queue != 0", true),
            ("ca_queue >= 3 and not crashloop_pods < 100", true),
            ("csr_failed_objects > 10 or pods_pending > 0", false),
        ] {
            assert_eq!(
                parse_condition(text).unwrap().holds(&values),
                holds,
                "{text}"
            );
        }
        for bad in [
            "",
            "crashloop_pods",
            "> 3",
            "crashloop_pods > x",
            "crashloop_pods = 3",
            "crashloop_pods > nan",
            "crashloop_pod > 1",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
        let e = parse_condition("crashloop_pod > 1").unwrap_err();
        assert!(
            e.contains(
                "unknown metric \"crashloop_pod\" in condition; did you mean \"crashloop_pods\""
            ),
            "{e}"
        );
        let e = parse_condition("ca_queue > lots").unwrap_err();
        assert!(
            e.starts_with("cannot parse condition \"ca_queue > lots\": \"lots\" is not a number"),
            "{e}"
        );
    }

    #[test]
    fn float_formatting() {
        assert_eq!(fmt_f64(0.5), "0.5");
        assert_eq!(fmt_f64(25.0), "25");
        assert_eq!(fmt_f64(1e300), "1e300");
        assert_eq!(fmt_f64(f64::NAN), "nan");
        assert_eq!(fmt_f64(f64::NEG_INFINITY), "-inf");
    }
}
