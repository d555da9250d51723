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

/// A partitioned model for the two orders: partitions count up and reschedule
/// themselves from their own streams; a global sample reads every partition, pokes some
/// of them and reschedules itself. Delays are small multiples of one unit, so events of
/// a partition often fall at the very time of a sample (ties the orders must break alike).
mod partitioned {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Ev {
        Tick { part: u32, id: u64 },
        Sample { n: u64 },
    }

    impl TraceEvent for Ev {
        fn kind(&self) -> u32 {
            match self {
                Ev::Tick { .. } => 1,
                Ev::Sample { .. } => 2,
            }
        }
        fn entity(&self) -> u64 {
            match *self {
                Ev::Tick { part, id } => ((part as u64) << 32) ^ id,
                Ev::Sample { n } => n,
            }
        }
        fn partition_key(&self) -> Option<u32> {
            match *self {
                Ev::Tick { part, .. } => Some(part),
                Ev::Sample { .. } => None,
            }
        }
    }

    pub struct Parts {
        pub rngs: Vec<RngStream>,
        pub global_rng: RngStream,
        pub counters: Vec<u64>,
        /// Each partition's events as it saw them: (time, id, its counter before).
        pub logs: Vec<Vec<(SimTime, u64, u64)>>,
        /// What each sample saw: (time, every counter).
        pub samples: Vec<(SimTime, Vec<u64>)>,
        pub unit: u64,
        pub period: u64,
        pub samples_left: u64,
    }

    impl Model for Parts {
        type Event = Ev;
        fn handle(&mut self, e: Ev, ctx: &mut Context<Ev>) {
            let now = ctx.now();
            match e {
                Ev::Tick { part, id } => {
                    let p = part as usize;
                    self.logs[p].push((now, id, self.counters[p]));
                    self.counters[p] = self.counters[p].wrapping_mul(31).wrapping_add(id + 1);
                    let draw = rand::Rng::next_u64(&mut self.rngs[p]);
                    let children = draw % 3; // 0, 1 or 2 follow-ups
                    for c in 0..children {
                        let d = [0, 1, 2, 5, 10][((draw >> (8 + 4 * c)) % 5) as usize];
                        ctx.schedule_in(
                            SimTime(d * self.unit),
                            Ev::Tick {
                                part,
                                id: id * 3 + c + 1,
                            },
                        );
                    }
                }
                Ev::Sample { n } => {
                    self.samples.push((now, self.counters.clone()));
                    let draw = rand::Rng::next_u64(&mut self.global_rng);
                    let parts = self.counters.len() as u64;
                    for k in 0..(draw % 4) {
                        let part = ((draw >> (8 * k + 8)) % parts) as u32;
                        let d = [0, 1, 10][((draw >> (8 * k + 12)) % 3) as usize];
                        ctx.schedule_in(SimTime(d * self.unit), Ev::Tick { part, id: n });
                    }
                    if self.samples_left > 0 {
                        self.samples_left -= 1;
                        // Now and then a second global event at the same instant.
                        let d = if draw % 7 == 0 { 0 } else { self.period };
                        ctx.schedule_in(SimTime(d * self.unit), Ev::Sample { n: n + 1 });
                    }
                }
            }
        }
    }

    /// The model with its initial events: without partitions (`None`) or in `order`.
    pub fn build(seed: u64, parts: u32, order: Option<Order>) -> Simulation<Parts> {
        let model = Parts {
            rngs: (0..parts)
                .map(|p| rng::stream(seed, 100 + p as u64))
                .collect(),
            global_rng: rng::stream(seed, 1),
            counters: vec![0; parts as usize],
            logs: vec![Vec::new(); parts as usize],
            samples: Vec::new(),
            unit: 1_000,
            period: 10,
            samples_left: 40,
        };
        let mut sim = match order {
            None => Simulation::new(model),
            Some(o) => Simulation::partitioned(model, Partitions::new((0..parts).collect()), o),
        };
        let mut init = rng::stream(seed, 2);
        for p in 0..parts {
            for id in 0..3 {
                let t = rand::Rng::next_u64(&mut init) % 4 * 5_000;
                sim.schedule_at(
                    SimTime(t),
                    Ev::Tick {
                        part: p,
                        id: 1000 + id,
                    },
                );
            }
        }
        sim.schedule_at(SimTime::ZERO, Ev::Sample { n: 0 });
        sim
    }

    pub fn run(seed: u64, parts: u32, order: Option<Order>, limits: Limits) -> (Parts, RunReport) {
        let mut sim = build(seed, parts, order);
        let r = sim.run(limits);
        (sim.model, r)
    }
}

proptest! {
    /// The two orders give every partition the same events at the same times in the same
    /// order, every global event the same view, and the same fingerprint.
    #[test]
    fn windowed_order_gives_what_the_global_order_gives(seed in any::<u64>(), parts in 1u32..6, horizon in 20_000u64..500_000) {
        let limits = Limits::horizon(SimTime(horizon));
        let (a, ra) = partitioned::run(seed, parts, Some(Order::Global), limits);
        let (b, rb) = partitioned::run(seed, parts, Some(Order::Windowed), limits);
        prop_assert_eq!(&a.logs, &b.logs);
        prop_assert_eq!(&a.samples, &b.samples);
        prop_assert_eq!(&a.counters, &b.counters);
        prop_assert_eq!(ra, rb);
        prop_assert!(ra.events > 0);
    }
}

#[test]
fn the_orders_agree_on_drained_runs_and_differ_from_an_unpartitioned_fingerprint() {
    let limits = Limits::horizon(SimTime::MAX);
    let (a, ra) = partitioned::run(3, 4, Some(Order::Global), limits);
    let (b, rb) = partitioned::run(3, 4, Some(Order::Windowed), limits);
    let (c, rc) = partitioned::run(3, 4, None, limits);
    assert_eq!(ra.stop, StopReason::Drained);
    assert_eq!((ra, &a.logs, &a.samples), (rb, &b.logs, &b.samples));
    // Without partitions the same events run in the same global order...
    assert_eq!(
        (&a.logs, &a.samples, ra.events),
        (&c.logs, &c.samples, rc.events)
    );
    // ...but the fingerprint is one fold over all of them.
    assert_ne!(ra.trace_hash, rc.trace_hash);
    assert!(a.samples.len() > 30 && a.logs.iter().all(|l| l.len() > 3));
}

#[test]
fn a_windowed_run_can_be_continued_to_a_later_horizon() {
    let (a, ra) = partitioned::run(9, 3, Some(Order::Global), Limits::horizon(SimTime(300_000)));
    let mut sim = partitioned::build(9, 3, Some(Order::Windowed));
    let first = sim.run(Limits::horizon(SimTime(100_000)));
    assert_eq!(
        (first.stop, first.end),
        (StopReason::Horizon, SimTime(100_000))
    );
    let second = sim.run(Limits::horizon(SimTime(300_000)));
    assert_eq!(
        (second.events, second.trace_hash),
        (ra.events, ra.trace_hash)
    );
    assert_eq!(sim.model.logs, a.logs);
}

#[test]
fn an_event_budget_stops_a_windowed_run_too() {
    let limits = Limits {
        horizon: SimTime::MAX,
        max_events: 50,
    };
    let (_, r) = partitioned::run(4, 3, Some(Order::Windowed), limits);
    assert_eq!((r.stop, r.events), (StopReason::EventBudget, 50));
}

#[test]
#[should_panic(expected = "an event of partition 0 scheduled an event of partition 1")]
fn a_partition_scheduling_another_partitions_event_panics() {
    struct Leaky;
    impl Model for Leaky {
        type Event = partitioned::Ev;
        fn handle(&mut self, e: partitioned::Ev, ctx: &mut Context<partitioned::Ev>) {
            if let partitioned::Ev::Tick { part: 0, .. } = e {
                ctx.schedule_in(SimTime(1), partitioned::Ev::Tick { part: 1, id: 0 });
            }
        }
    }
    let mut sim = Simulation::partitioned(Leaky, Partitions::new(vec![0, 1]), Order::Windowed);
    sim.schedule_at(SimTime(5), partitioned::Ev::Tick { part: 0, id: 0 });
    sim.run(Limits::horizon(SimTime::MAX));
}

#[test]
#[should_panic(expected = "scheduled an event of no partition (a global event)")]
fn a_partition_scheduling_a_global_event_panics_in_either_order() {
    struct Leaky;
    impl Model for Leaky {
        type Event = partitioned::Ev;
        fn handle(&mut self, e: partitioned::Ev, ctx: &mut Context<partitioned::Ev>) {
            if let partitioned::Ev::Tick { .. } = e {
                ctx.schedule_in(SimTime(1), partitioned::Ev::Sample { n: 0 });
            }
        }
    }
    let mut sim = Simulation::partitioned(Leaky, Partitions::new(vec![0, 1]), Order::Global);
    sim.schedule_at(SimTime(5), partitioned::Ev::Tick { part: 1, id: 0 });
    sim.run(Limits::horizon(SimTime::MAX));
}
