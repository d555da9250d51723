//! The fleet model on the shipped incident scenario (target: < 3 s wall on one core).
//! The 2-million-pod scale scenario is timed by `benches/scale.sh` (wall and peak RSS).

use criterion::{criterion_group, criterion_main, Criterion};
use fleetsim::cli::run::{DEFAULT_SCENARIO, DEFAULT_SCENARIO_FILE};
use fleetsim::model;
use fleetsim::scenario;

fn bench_incident(c: &mut Criterion) {
    let doc = scenario::load_str(DEFAULT_SCENARIO_FILE, DEFAULT_SCENARIO, &[]).expect("valid");
    let mut g = c.benchmark_group("fleet");
    g.sample_size(10);
    g.bench_function("incident-ca-herd", |b| {
        b.iter(|| model::run(&doc.scenario, 1, &doc.hash).summary.events)
    });
    g.finish();
}

criterion_group!(benches, bench_incident);
criterion_main!(benches);
