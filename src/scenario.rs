//! Scenarios: TOML -> the validated [`Scenario`] and its sections. Only validated types
//! leave this module.
//!
//! Two layers (STYLE.md rule 9): serde structs mirroring the file with
//! `deny_unknown_fields` (`raw`), then `validate` into the typed [`Scenario`] of
//! [`types`] (what the model runs) and the typed sections of [`sections`] (what the
//! sweep, the review and the checks run: [`Strategy`], [`SweepSpec`], [`Expectations`]),
//! each section checked against the scenario. Around them:
//!
//! - [`load`] / [`load_str`] / [`load_bytes`] parse the file once, keeping the line of
//!   every key so that every [`ScenarioError`] names the file, the line, the dotted field
//!   path and the value: `fleet.toml:12: cluster.payments.istiod.replicas: must be >= 1,
//!   got 0`. All errors found are reported together ([`ScenarioErrors`]); no input
//!   panics. A document that loads runs: no later layer finds an error in it.
//! - [`Override`] (`--set PATH=VALUE`) edits the document before it is deserialised;
//!   [`ScenarioDocument::scenario_with`] applies more overrides to a loaded document
//!   cheaply (a sweep point, a strategy).
//! - [`limits`] bounds every size against absurd values.
//! - [`schema`] is the raw layer as a JSON Schema, for editors (`fleetsim schema`).
//!
//! The schema, every default with its source, and the limits are documented in
//! `docs/scenario.md`.

mod error;
pub mod limits;
mod load;
mod overrides;
mod raw;
pub mod schema;
pub mod sections;
pub mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ErrorKind, Origin, ScenarioError, ScenarioErrors};
pub use load::{fnv1a64, load, load_bytes, load_str, ScenarioDocument};
pub use overrides::{Override, OverrideSyntaxError};
pub use sections::*;
pub use types::*;
