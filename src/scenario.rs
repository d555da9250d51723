//! Scenarios: TOML -> validated [`Scenario`]. Only validated types reach the model.

pub mod types;

pub use types::*;
