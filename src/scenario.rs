//! Scenarios: TOML -> validated [`Scenario`]. Only validated types reach the model.
//!
//! Two layers (STYLE.md rule 9): serde structs mirroring the file with
//! `deny_unknown_fields` (`raw`), then `validate` into the typed [`Scenario`] of
//! [`types`]. Around them:
//!
//! - [`load`] / [`load_str`] / [`load_bytes`] parse the file once, keeping the line of
//!   every key so that every [`ScenarioError`] names the file, the line, the dotted field
//!   path and the value: `fleet.toml:12: cluster.payments.istiod.replicas: must be >= 1,
//!   got 0`. All errors found are reported together ([`ScenarioErrors`]); no input panics.
//! - [`Override`] (`--set PATH=VALUE`) edits the document before it is deserialised;
//!   [`ScenarioDocument::scenario_with`] applies more overrides to a loaded document
//!   cheaply (a sweep point).
//! - [`limits`] bounds every size against absurd values.
//!
//! The schema, every default with its source, and the limits are documented in
//! `docs/scenario.md`.

mod error;
pub mod limits;
mod load;
mod overrides;
mod raw;
pub mod types;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ErrorKind, Origin, ScenarioError, ScenarioErrors};
pub use load::{fnv1a64, load, load_bytes, load_str, ScenarioDocument};
pub use overrides::{Override, OverrideSyntaxError};
pub use types::*;
