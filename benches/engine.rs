//! The kernel's hold model: N events pending; each executed event schedules one more
//! after a random delay, so the queue stays at N. Reported as events per second for
//! N = 10^3, 10^4 and 10^5 (target: >= 20 M events/s at 10^4 on a 2-core machine).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fleetsim::engine::{rng, Context, Limits, Model, RngStream, SimTime, Simulation, TraceEvent};
use rand::Rng as _;

#[derive(Debug, Clone, Copy)]
struct Tick(u64);

impl TraceEvent for Tick {
    fn kind(&self) -> u32 {
        1
    }
    fn entity(&self) -> u64 {
        self.0
    }
}

struct Hold {
    rng: RngStream,
}

impl Model for Hold {
    type Event = Tick;
    #[inline]
    fn handle(&mut self, e: Tick, ctx: &mut Context<Tick>) {
        // Uniform integer delay in [0, 2^31 ns) (~2.1 s): a shift, not a division, so
        // the benchmark measures the kernel rather than the model's arithmetic.
        let delay = SimTime(self.rng.next_u64() >> 33);
        ctx.schedule_in(delay, e);
    }
}

fn hold(pending: u64) -> Simulation<Hold> {
    let mut sim = Simulation::new(Hold {
        rng: rng::stream(1, 1),
    });
    let mut init = rng::stream(1, 2);
    for i in 0..pending {
        sim.schedule_at(SimTime(init.next_u64() % 2_000_000_000), Tick(i));
    }
    // Warm up past the initial transient.
    sim.run(Limits {
        horizon: SimTime::MAX,
        max_events: pending * 4,
    });
    sim
}

const CHUNK: u64 = 1_000_000;

fn bench_hold(c: &mut Criterion) {
    let mut g = c.benchmark_group("hold");
    g.throughput(Throughput::Elements(CHUNK));
    g.sample_size(20);
    for pending in [1_000u64, 10_000, 100_000] {
        let mut sim = hold(pending);
        g.bench_with_input(BenchmarkId::from_parameter(pending), &pending, |b, _| {
            b.iter(|| {
                let target = sim.events() + CHUNK;
                sim.run(Limits {
                    horizon: SimTime::MAX,
                    max_events: target,
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_hold);
criterion_main!(benches);
