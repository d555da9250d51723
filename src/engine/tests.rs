use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tick(u64);

impl TraceEvent for Tick {
    fn kind(&self) -> u32 {
        1
    }
    fn entity(&self) -> u64 {
        self.0
    }
}

/// Records the order events ran in and reschedules according to a script.
struct Recorder {
    seen: Vec<(SimTime, u64)>,
    follow_up: Vec<(u64, SimTime)>,
}

impl Model for Recorder {
    type Event = Tick;
    fn handle(&mut self, event: Tick, ctx: &mut Context<Tick>) {
        self.seen.push((ctx.now(), event.0));
        for &(parent, delay) in &self.follow_up {
            if parent == event.0 {
                ctx.schedule_in(delay, Tick(event.0 * 100 + 1));
            }
        }
    }
}

fn recorder() -> Recorder {
    Recorder {
        seen: Vec::new(),
        follow_up: Vec::new(),
    }
}

#[test]
fn equal_times_run_first_in_first_out() {
    let mut sim = Simulation::new(recorder());
    for id in [5, 3, 9, 1, 7] {
        sim.schedule_at(SimTime::from_secs(1), Tick(id));
    }
    sim.schedule_at(SimTime::ZERO, Tick(42));
    let report = sim.run(Limits::horizon(SimTime::from_secs(10)));
    let order: Vec<u64> = sim.model.seen.iter().map(|s| s.1).collect();
    assert_eq!(order, vec![42, 5, 3, 9, 1, 7]);
    assert_eq!(report.stop, StopReason::Drained);
    assert_eq!(report.events, 6);
}

#[test]
fn zero_delay_event_runs_after_already_queued_equal_time_events() {
    let mut m = recorder();
    m.follow_up.push((1, SimTime::ZERO));
    let mut sim = Simulation::new(m);
    sim.schedule_at(SimTime::from_secs(1), Tick(1));
    sim.schedule_at(SimTime::from_secs(1), Tick(2));
    sim.run(Limits::horizon(SimTime::MAX));
    let order: Vec<u64> = sim.model.seen.iter().map(|s| s.1).collect();
    assert_eq!(order, vec![1, 2, 101]);
}

#[test]
fn horizon_and_budget_are_reported() {
    let mut m = recorder();
    m.follow_up.push((1, SimTime::from_secs(5)));
    let mut sim = Simulation::new(m);
    sim.schedule_at(SimTime::from_secs(1), Tick(1));
    let r = sim.run(Limits::horizon(SimTime::from_secs(3)));
    assert_eq!(r.stop, StopReason::Horizon);
    assert_eq!(r.end, SimTime::from_secs(3));
    assert_eq!(r.events, 1);

    let mut sim = Simulation::new(recorder());
    for i in 0..10 {
        sim.schedule_at(SimTime::from_secs(i), Tick(i));
    }
    let r = sim.run(Limits {
        horizon: SimTime::MAX,
        max_events: 4,
    });
    assert_eq!(r.stop, StopReason::EventBudget);
    assert_eq!(r.events, 4);
}

#[test]
fn past_schedules_are_clamped_and_counted() {
    struct Back;
    impl Model for Back {
        type Event = Tick;
        fn handle(&mut self, e: Tick, ctx: &mut Context<Tick>) {
            if e.0 == 0 {
                ctx.schedule_at(SimTime::ZERO, Tick(1));
            }
        }
    }
    let mut sim = Simulation::new(Back);
    sim.schedule_at(SimTime::from_secs(2), Tick(0));
    let r = sim.run(Limits::horizon(SimTime::MAX));
    assert_eq!(r.clamped, 1);
    assert_eq!(r.end, SimTime::from_secs(2));
}

/// A hold model: every event reschedules itself after a random delay.
struct Hold {
    rng: RngStream,
    last: SimTime,
    went_back: bool,
}

impl Model for Hold {
    type Event = Tick;
    fn handle(&mut self, e: Tick, ctx: &mut Context<Tick>) {
        if ctx.now() < self.last {
            self.went_back = true;
        }
        self.last = ctx.now();
        // Integer delays keep the golden hash free of any libm dependence.
        let delay = SimTime(rand::Rng::next_u64(&mut self.rng) % 2_000_000_000);
        ctx.schedule_in(delay, e);
    }
}

fn run_hold(seed: u64, pending: u64, events: u64) -> RunReport {
    let mut sim = Simulation::new(Hold {
        rng: rng::stream(seed, 1),
        last: SimTime::ZERO,
        went_back: false,
    });
    let mut init = rng::stream(seed, 2);
    for i in 0..pending {
        sim.schedule_at(
            SimTime(rand::Rng::next_u64(&mut init) % 1_000_000_000),
            Tick(i),
        );
    }
    let r = sim.run(Limits {
        horizon: SimTime::MAX,
        max_events: events,
    });
    assert!(!sim.model.went_back);
    r
}

#[test]
fn same_seed_same_trace_hash() {
    let a = run_hold(7, 100, 10_000);
    let b = run_hold(7, 100, 10_000);
    let c = run_hold(8, 100, 10_000);
    assert_eq!(a, b);
    assert_ne!(a.trace_hash, c.trace_hash);
}

/// Pins the kernel, the trace hash and the stream derivation: if this changes, every
/// published result changes with it.
#[test]
fn golden_trace_hash() {
    let r = run_hold(2026, 64, 5_000);
    assert_eq!(TraceHash::hex(r.trace_hash), GOLDEN_HOLD_HASH);
    assert_eq!(r.events, 5_000);
}

const GOLDEN_HOLD_HASH: &str = "90f76eada5b56bb9";

#[test]
fn streams_are_portable_and_distinct() {
    let mut a = rng::named_stream(1, "ca/pca/service");
    let mut b = rng::named_stream(1, "ca/pca/arrivals");
    let x: Vec<u64> = (0..3).map(|_| rand::Rng::next_u64(&mut a)).collect();
    let y: Vec<u64> = (0..3).map(|_| rand::Rng::next_u64(&mut b)).collect();
    assert_ne!(x, y);
    assert_eq!(x[0], GOLDEN_FIRST_DRAW);
}

const GOLDEN_FIRST_DRAW: u64 = 9362018557961532012;

#[test]
fn seed_sequences_count_up_from_the_base_and_wrap() {
    let s = rng::seeds(7, 3);
    assert_eq!(s.to_vec(), [7, 8, 9]);
    assert_eq!(
        (s.len(), s.get(2), s.range_text()),
        (3, 9, "7..9".to_string())
    );
    assert_eq!(rng::seeds(u64::MAX, 2).to_vec(), [u64::MAX, 0]);
    assert!(rng::seeds(5, 0).is_empty());
    assert_eq!(rng::seeds(5, 0).range_text(), "none");
    assert_eq!(rng::seeds(5, 1).range_text(), "5");
}

#[test]
fn simtime_conversions() {
    assert_eq!(SimTime::from_secs_f64(1.5), SimTime(1_500_000_000));
    assert_eq!(SimTime::from_secs_f64(-1.0), SimTime::ZERO);
    assert_eq!(SimTime::from_secs_f64(f64::NAN), SimTime::ZERO);
    assert_eq!(SimTime::from_secs_f64(1e300), SimTime::MAX);
    assert_eq!(SimTime::MAX + SimTime(1), SimTime::MAX);
    assert_eq!(SimTime(1) - SimTime(5), SimTime::ZERO);
    assert_eq!(SimTime::from_millis(250).to_string(), "0.250s");
}

proptest! {
    /// Whatever the schedule, executed times never decrease and equal times keep
    /// insertion order.
    #[test]
    fn time_never_goes_back(times in proptest::collection::vec(0u64..1_000, 1..200)) {
        let mut sim = Simulation::new(recorder());
        for (i, t) in times.iter().enumerate() {
            sim.schedule_at(SimTime(*t), Tick(i as u64));
        }
        sim.run(Limits::horizon(SimTime::MAX));
        let seen = &sim.model.seen;
        prop_assert_eq!(seen.len(), times.len());
        for w in seen.windows(2) {
            prop_assert!(w[0].0 <= w[1].0);
            if w[0].0 == w[1].0 {
                prop_assert!(w[0].1 < w[1].1, "FIFO among equal times");
            }
        }
    }
}
