//! Integration tests: one binary, one module per area. They run the real `fleetsim`
//! binary on the shipped scenarios through the helpers in `util`.

mod check;
mod report;
mod scenario;
mod schema;
mod sweep;
mod util;

mod ca;
mod calibrate;
mod certificates;
mod conventions;
mod deploy;
mod explain;
mod fit;
mod fleet;
mod hardening;
mod import;
mod outputs;
