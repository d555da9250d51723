//! fleetsim: a deterministic discrete-event simulator of fleet upgrades.
//!
//! # Layers
//! The crate is a stack of layers; data flows up it and **no module imports from a layer
//! above its own** (a unit test of this file, `layers::no_module_imports_from_above`,
//! reads every source file and fails on the first such import). Bottom to top:
//!
//! 1. [`engine`]: the discrete-event kernel — time, the event queue, random streams
//!    and seed sequences, the trace hash. It knows nothing of Kubernetes or files.
//! 2. Small pure utilities: [`duration`] (human durations), [`stats`] (Wilson interval,
//!    quantiles), [`keypath`] (dotted key paths), [`suggest`] ("did you mean"),
//!    [`predicate`] (the one predicate language: parse, check against a vocabulary,
//!    evaluate), [`output`] (atomic files and output sets, folder locks, shell quoting),
//!    [`fit`] (the USL fit of a CA load test), [`numfmt`] (significant-figure
//!    formatting, sizes in bytes).
//! 3. [`metrics`]: what a run measures — samples, figures, the summary, and the figures'
//!    vocabulary for predicates. Plain data; the model fills it. Beside it [`observed`]:
//!    what was measured elsewhere (load tests, Prometheus `query_range`, a
//!    `timeseries.csv`) and how it compares with a run.
//! 4. [`ca`]: the certificate authority as a self-contained model component with its own
//!    configuration type (which the scenario builds), and `fleetsim ca`'s model. Beside
//!    it [`control`]: the control-plane components the certificate path runs through —
//!    kube-apiserver with API Priority and Fairness, client-go, istiod's RA flow per
//!    release, the signer controllers, the issuers, the kubelet's back-off, rotation.
//! 5. [`scenario`]: TOML -> the validated [`scenario::Scenario`] (with its cluster
//!    templates) and its sections: strategies, the sweep's grid with every point built,
//!    the expectations. One error type, [`scenario::ScenarioErrors`].
//! 6. [`import`]: a cluster as `kubectl get ... -o json` lists it -> scenario text,
//!    checked by loading it. It knows the scenario's schema, not the model.
//! 7. [`model`]: the fleet — state, construction, event handlers per component, sampling
//!    and summary — on the kernel. It knows nothing of files. Beside it [`budget`]: the
//!    up-front estimate of a run's memory from the scenario's sizes, and its refusal.
//! 8. [`report`]: pure rendering: CSV text in; SVG, PNG, HTML out. It runs nothing.
//! 9. [`sweep`]: many runs in parallel (rayon), shards, resume, merge; draws its failure
//!    curve through `report`. Beside it [`calibrate`]: the parameter search that fits a
//!    scenario to observed data.
//! 10. [`review`] and [`check`]: run strategies over seeds and assemble the
//!     pre-maintenance review (`fleetsim report`); judge a scenario's expectations
//!     (`fleetsim check`).
//! 11. [`cli`]: the commands; `main.rs` is a thin binary over it.
//!
//! # Replaying a run
//! Every run is a pure function of its scenario and master seed: output starts with
//! `seed=N scenario=NAME hash=H` and ends with the `fleetsim run` command that replays it
//! byte for byte. How one seed becomes a stream per role is in [`engine::rng`].
#![warn(missing_docs)]

pub mod budget;
pub mod ca;
pub mod calibrate;
pub mod check;
pub mod cli;
pub mod control;
pub mod duration;
pub mod engine;
pub mod fit;
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod keypath;
pub mod metrics;
pub mod model;
pub mod numfmt;
pub mod observed;
pub mod output;
pub mod predicate;
pub mod report;
pub mod review;
pub mod scenario;
pub mod stats;
pub mod suggest;
pub mod sweep;

#[cfg(test)]
mod layers;
