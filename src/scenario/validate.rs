//! Validation: the resolved TOML document -> the typed [`Scenario`] and its
//! [`Sections`], collecting every error.
//!
//! First the whole document is deserialised into [`RawDocument`]; if that fails, the
//! schema diagnosis ([`diagnose`]) finds every unknown key and every value of the wrong
//! type, drops them and deserialises what is left, so range and reference checks still
//! run and all errors are reported together. Then, in order:
//!
//! - [`checker`]: the range primitives every section checker uses;
//! - [`fleet`] and [`rollout`]: the scenario proper, what the model runs;
//! - once that is valid, [`strategies`], [`sweep`] and [`expect`]: the sections the
//!   other layers run, each checked against the scenario (a strategy bundle or a grid
//!   point is applied to the document and validated as a scenario of its own).

mod checker;
mod diagnose;
mod expect;
mod fleet;
mod rollout;
mod strategies;
mod sweep;

use serde::Deserialize;

use crate::keypath::join;

use super::error::{ErrorKind, ScenarioError, ScenarioErrors};
use super::limits::*;
use super::load::Locator;
use super::overrides::Override;
use super::raw::*;
use super::sections::Sections;
use super::types::*;
use checker::Checker;

/// The sections the scenario proper leaves to [`sections`], as written.
#[derive(Debug, Default)]
pub(crate) struct RawSections {
    strategies: Option<toml::Table>,
    sweep: Option<toml::Table>,
    expect: Option<toml::Table>,
}

/// Validates the scenario proper (everything but `[strategies]`, `[sweep]` and
/// `[expect]`, which come back as written). `default_name` is the scenario name when
/// `[scenario] name` is absent.
pub(crate) fn scenario(
    doc: &toml::Table,
    default_name: &str,
    loc: &Locator<'_>,
) -> Result<(Scenario, RawSections), Vec<ScenarioError>> {
    let mut v = Checker {
        loc,
        errors: Vec::new(),
    };
    let raw = match RawDocument::deserialize(doc.clone()) {
        Ok(raw) => raw,
        Err(whole) => {
            let cleaned = diagnose::diagnose(doc, &DOCUMENT, "", &mut v);
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
            let sections = RawSections {
                strategies: raw.strategies,
                sweep: raw.sweep,
                expect: raw.expect,
            };
            return Ok((scenario, sections));
        }
    }
    if v.errors.is_empty() {
        v.errors
            .push(loc.error("", ErrorKind::Invalid, "invalid scenario".into()));
    }
    Err(v.errors)
}

/// What the sections are checked against.
pub(crate) struct SectionContext<'a> {
    /// Positions errors in the file (or at the `--set` that supplied a value).
    pub loc: &'a Locator<'a>,
    /// The valid scenario of the document.
    pub scenario: &'a Scenario,
    /// The scenario of the document with more overrides applied, validated.
    pub with: &'a dyn Fn(&[Override]) -> Result<Scenario, ScenarioErrors>,
}

impl SectionContext<'_> {
    fn error(&self, path: &str, message: String) -> ScenarioError {
        self.loc.error(path, ErrorKind::Invalid, message)
    }
}

/// Validates `[strategies]`, `[sweep]` and `[expect]` against the valid scenario.
pub(crate) fn sections(
    ctx: &SectionContext<'_>,
    raw: RawSections,
) -> Result<Sections, Vec<ScenarioError>> {
    let mut errors = Vec::new();
    let strategies = strategies::strategies(ctx, raw.strategies.as_ref(), &mut errors);
    let strategies_ok = errors.is_empty();
    let sweep = raw
        .sweep
        .as_ref()
        .and_then(|t| sweep::sweep(ctx, t, &strategies, strategies_ok, &mut errors));
    let expect = raw
        .expect
        .as_ref()
        .and_then(|t| expect::expectations(ctx, t, &mut errors));
    if errors.is_empty() {
        Ok(Sections {
            strategies,
            sweep,
            expect,
        })
    } else {
        Err(errors)
    }
}

/// The first key of a path, if it names one of the sections (`sweep.seeds` -> `sweep`):
/// strategies and grid keys set scenario values, not these.
pub(crate) fn section_of(path: &[String]) -> Option<&'static str> {
    let first = path.first()?;
    ["strategies", "sweep", "expect"]
        .into_iter()
        .find(|s| s == first)
}

/// The unsourced mechanisms a CA turns on.
fn ca_assumptions(path: &str, ca: &CaSpec, out: &mut Vec<Assumption>) {
    if !matches!(ca.kind, IssuerKind::Usl) {
        return;
    }
    let c = &ca.config;
    if c.failed_object_slowdown > 0.0 {
        out.push(Assumption {
            key: join(path, "failed_csr_slowdown_alpha"),
            value: checker::fmt_f64(c.failed_object_slowdown),
            note: "every Failed CSR object slows the CA by this fraction; no source shows a CA slowed by CSR objects it does not read (fleetsim 0.1)".into(),
        });
    }
    if (c.usl.sigma > 0.0 || c.usl.kappa > 0.0) && ca.contention_source.is_none() {
        out.push(Assumption {
            key: join(path, "contention_sigma"),
            value: format!(
                "sigma {} kappa {}",
                checker::fmt_f64(c.usl.sigma),
                checker::fmt_f64(c.usl.kappa)
            ),
            note: "USL contention without a stated measurement (set contention_source to the load test it was fitted on, fleetsim ca fit)".into(),
        });
    }
}

impl Checker<'_> {
    /// The scenario proper, section by section.
    fn document(&mut self, raw: &RawDocument, default_name: &str) -> Option<Scenario> {
        let mut s = Scenario::empty(default_name);
        self.meta(raw.scenario.as_ref(), &mut s);

        if !self.count_limit("ca", "CAs", raw.ca.len(), MAX_CAS) {
            return None;
        }
        let (mut accounts, mut locations) = (Vec::new(), Vec::new());
        for (name, rc) in &raw.ca {
            let path = join("ca", name);
            self.name(&path, name);
            let ca = self.ca(&path, name, rc, &mut accounts, &mut locations);
            ca_assumptions(&path, &ca, &mut s.assumptions);
            s.cas.push(ca);
        }
        s.pca_accounts = accounts;
        s.cas_locations = locations;

        if raw.cluster.is_empty() {
            self.err(
                "cluster",
                "no cluster: define at least one [cluster.<name>] table".into(),
            );
        }
        let templates: Vec<fleet::Template> = raw
            .cluster
            .iter()
            .map(|(name, rc)| self.cluster(name, rc, &s.cas))
            .collect();
        for t in &templates {
            t.assumptions(&mut s.assumptions);
        }
        let (clusters, templates) = self.expand(templates)?;
        s.clusters = clusters;
        s.templates = templates;

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
        for (name, ri) in &raw.intervention {
            let path = join("intervention", name);
            self.name(&path, name);
            if let Some(i) = self.intervention(&path, name, ri, &s) {
                s.interventions.push(i);
            }
        }
        Some(s)
    }
}
