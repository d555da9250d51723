//! `fleetsim ca`'s model: the CA alone under Poisson arrivals, M/M/c with a fixed client
//! timeout (the model `benches/simpy_compare.sh` runs in SimPy too), and the metastable
//! keep-and-retry case. Throughput is reported in simulated requests (client arrivals)
//! per second of wall time.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fleetsim::ca::retry::RetryPolicy;
use fleetsim::ca::standalone::{self, CapacityDip, Patience, StandaloneConfig};
use fleetsim::ca::{CaConfig, OnTimeout, ServiceTime};
use fleetsim::engine::SimTime;

fn mmc_timeout(horizon_s: u64) -> StandaloneConfig {
    StandaloneConfig {
        arrival_rate_per_s: 15.0,
        ca: CaConfig::plain(
            16,
            ServiceTime::Exponential {
                mean: SimTime::from_secs(1),
            },
        ),
        patience: Some(Patience::Constant(SimTime::from_millis(500))),
        on_timeout: OnTimeout::Cancel,
        retries: 0,
        backoff: RetryPolicy::agent(),
        dip: None,
        horizon: SimTime::from_secs(horizon_s),
        warmup: SimTime::from_secs(horizon_s / 10),
        seed: 1,
        batches: 20,
        max_events: u64::MAX,
        max_memory_bytes: u64::MAX,
    }
}

fn bench_ca(c: &mut Criterion) {
    let mut g = c.benchmark_group("ca");
    g.sample_size(10);

    let cfg = mmc_timeout(20_000);
    let arrivals = standalone::run(&cfg).expect("within budget").arrivals as f64 / 0.9; // whole run, not just the window
    g.throughput(Throughput::Elements(arrivals as u64));
    g.bench_function("mmc_timeout_rho0.94_c16", |b| {
        b.iter(|| standalone::run(&cfg))
    });

    let meta = StandaloneConfig {
        arrival_rate_per_s: 60.0,
        ca: CaConfig::plain(
            10,
            ServiceTime::Exponential {
                mean: SimTime::from_millis(100),
            },
        ),
        patience: Some(Patience::Constant(SimTime::from_secs(1))),
        on_timeout: OnTimeout::Keep,
        retries: 2,
        backoff: RetryPolicy::Immediate,
        dip: Some(CapacityDip {
            at: SimTime::from_secs(60),
            duration: SimTime::from_secs(30),
            fraction: 0.3,
        }),
        horizon: SimTime::from_secs(600),
        warmup: SimTime::from_secs(60),
        ..cfg
    };
    g.throughput(Throughput::Elements(36_000));
    g.bench_function("metastable_keep_retry", |b| {
        b.iter(|| standalone::run(&meta))
    });
    g.finish();
}

criterion_group!(benches, bench_ca);
criterion_main!(benches);
