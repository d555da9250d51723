//! fleetsim: a deterministic discrete-event simulator of fleet upgrades.
//!
//! Data flows one way: [`scenario`] (TOML -> validated types) -> model (fleet state and
//! event handlers on the [`engine`] kernel) -> metrics -> sweep -> [`report`] -> [`cli`].
//! The kernel knows nothing of Kubernetes; a model component knows nothing of files.
//! [`check`] judges a scenario's `[expect]` assertions over runs (`fleetsim check`);
//! [`report::review`] assembles the pre-maintenance review (`fleetsim report`).
#![warn(missing_docs)]

pub mod ca;
pub mod check;
pub mod cli;
pub mod control;
pub mod duration;
pub mod engine;
pub mod metrics;
pub mod model;
pub mod output;
pub mod report;
pub mod scenario;
pub mod sweep;
