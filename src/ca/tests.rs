use super::*;
use crate::engine::{rng, Context, Limits, Model, Simulation};

/// A tiny owner: scripted commands plus the CA's own events; records outcomes with times.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Ca(CaEvent),
    Submit(u64, Option<SimTime>, OnTimeout),
    Fraction(f64),
    Failed(u64),
    Limit(Option<RateLimit>),
}

impl From<CaEvent> for Ev {
    fn from(e: CaEvent) -> Self {
        Ev::Ca(e)
    }
}

impl TraceEvent for Ev {
    fn kind(&self) -> u32 {
        match self {
            Ev::Ca(e) => e.kind(),
            _ => 1,
        }
    }
    fn entity(&self) -> u64 {
        match self {
            Ev::Ca(e) => e.entity(),
            Ev::Submit(r, ..) => *r,
            _ => 0,
        }
    }
}

struct Owner {
    ca: CertificateAuthority,
    out: Vec<CaOutcome>,
    log: Vec<(SimTime, CaOutcome)>,
}

impl Model for Owner {
    type Event = Ev;
    fn handle(&mut self, e: Ev, ctx: &mut Context<Ev>) {
        match e {
            Ev::Ca(e) => {
                assert_eq!(e.ca, self.ca.index());
                self.ca.handle(e.kind, ctx, &mut self.out);
            }
            Ev::Submit(r, d, t) => {
                self.ca.submit(r, d, t, ctx);
            }
            Ev::Fraction(f) => self.ca.set_capacity_fraction(f, ctx),
            Ev::Failed(n) => self.ca.set_failed_objects(n, ctx),
            Ev::Limit(l) => self.ca.set_rate_limit(l, ctx),
        }
        for o in self.out.drain(..) {
            self.log.push((ctx.now(), o));
        }
    }
}

fn secs(s: f64) -> SimTime {
    SimTime::from_secs_f64(s)
}

fn constant(s: f64) -> ServiceTime {
    ServiceTime::Constant { value: secs(s) }
}

fn run(config: CaConfig, script: &[(f64, Ev)]) -> (Owner, Vec<(SimTime, CaOutcome)>) {
    let ca = CertificateAuthority::new(7, config, rng::stream(1, 1));
    let mut sim = Simulation::new(Owner {
        ca,
        out: Vec::new(),
        log: Vec::new(),
    });
    for &(t, e) in script {
        sim.schedule_at(secs(t), e);
    }
    let r = sim.run(Limits::horizon(SimTime::from_secs(10_000)));
    assert_eq!(r.clamped, 0, "the CA never schedules into the past");
    let log = std::mem::take(&mut sim.model.log);
    (sim.model, log)
}

fn served_at(log: &[(SimTime, CaOutcome)]) -> Vec<(u64, f64)> {
    log.iter()
        .filter_map(|(t, o)| match o {
            CaOutcome::Served { request, .. } => Some((*request, t.as_secs_f64())),
            _ => None,
        })
        .collect()
}

fn submit(r: u64) -> Ev {
    Ev::Submit(r, None, OnTimeout::Cancel)
}

#[test]
fn plain_ca_is_c_independent_fifo_servers() {
    let (ca, log) = run(
        CaConfig::plain(2, constant(1.0)),
        &[
            (0.0, submit(1)),
            (0.0, submit(2)),
            (0.0, submit(3)),
            (0.5, submit(4)),
        ],
    );
    assert_eq!(
        served_at(&log),
        vec![(1, 1.0), (2, 1.0), (3, 2.0), (4, 2.0)]
    );
    assert_eq!(ca.ca.served(), 4);
    assert!((ca.ca.busy_worker_seconds(secs(2.0)) - 4.0).abs() < 1e-9);
    // Request 3 waited 1 s, request 4 waited 0.5 s.
    assert!((ca.ca.queue_seconds(secs(2.0)) - 1.5).abs() < 1e-9);
    assert_eq!(ca.ca.peak_queue(), 2);
}

#[test]
fn exponential_service_completes_exactly_at_start_plus_draw() {
    // With sigma = kappa = alpha = 0 each job's completion is start + its own draw, to
    // the nanosecond, however many others start and finish around it.
    let cfg = CaConfig::plain(
        3,
        ServiceTime::Exponential {
            mean: SimTime::from_secs(1),
        },
    );
    let script: Vec<(f64, Ev)> = (0..200).map(|i| (i as f64 * 0.3, submit(i))).collect();
    let (_, log) = run(cfg, &script);
    let mut draws = rng::stream(1, 1);
    let mut expected = std::collections::BTreeMap::new();
    // Draws are made in service-start order; recompute them from the started times.
    let mut starts: Vec<(SimTime, u64)> = log
        .iter()
        .map(|(_, o)| match o {
            CaOutcome::Served {
                request, started, ..
            } => (*started, *request),
            _ => unreachable!(),
        })
        .collect();
    starts.sort(); // FIFO: start order = request order
    for (started, request) in starts {
        let work = cfg.service.sample(&mut draws);
        expected.insert(request, started + work);
    }
    for (t, o) in &log {
        if let CaOutcome::Served { request, .. } = o {
            assert_eq!(*t, expected[request], "request {request}");
        }
    }
    assert_eq!(log.len(), 200);
}

#[test]
fn usl_slows_every_job_in_service() {
    let cfg = CaConfig {
        usl: Usl {
            sigma: 0.5,
            kappa: 0.0,
        },
        ..CaConfig::plain(2, constant(1.0))
    };
    // Two jobs together progress at 1 / 1.5 each: both done at 1.5 s.
    let (_, log) = run(cfg, &[(0.0, submit(1)), (0.0, submit(2))]);
    assert_eq!(served_at(&log), vec![(1, 1.5), (2, 1.5)]);
    // Second joins at 0.5 s: job 1 has 0.5 s of work left, done at 0.5 + 0.75 = 1.25 s;
    // job 2 then has 1 - 0.5 = 0.5 s left alone: 1.75 s.
    let (_, log) = run(cfg, &[(0.0, submit(1)), (0.5, submit(2))]);
    assert_eq!(served_at(&log), vec![(1, 1.25), (2, 1.75)]);
    // kappa: n = 2 -> 1 + 0 + kappa * 2 = 1.2 with kappa = 0.1.
    let cfg = CaConfig {
        usl: Usl {
            sigma: 0.0,
            kappa: 0.1,
        },
        ..cfg
    };
    let (_, log) = run(cfg, &[(0.0, submit(1)), (0.0, submit(2))]);
    assert_eq!(served_at(&log), vec![(1, 1.2), (2, 1.2)]);
    assert!(
        (Usl {
            sigma: 0.02,
            kappa: 0.002
        }
        .peak_concurrency()
            - 22.135)
            .abs()
            < 1e-3
    );
}

#[test]
fn failed_objects_slow_service_linearly_mid_job() {
    let cfg = CaConfig {
        failed_object_slowdown: 0.1,
        ..CaConfig::plain(1, constant(2.0))
    };
    // 1 s done at full speed, then 1 + 0.1 * 10 = 2x slower: 1 s of work takes 2 s.
    let (ca, log) = run(cfg, &[(0.0, submit(1)), (1.0, Ev::Failed(10))]);
    assert_eq!(served_at(&log), vec![(1, 3.0)]);
    assert_eq!(ca.ca.failed_objects(), 10);
}

#[test]
fn cancel_reneges_from_the_queue_only() {
    let (ca, log) = run(
        CaConfig::plain(1, constant(10.0)),
        &[
            (0.0, Ev::Submit(1, Some(secs(1.0)), OnTimeout::Cancel)),
            (0.0, Ev::Submit(2, Some(secs(1.0)), OnTimeout::Cancel)),
            (0.0, Ev::Submit(3, Some(secs(20.0)), OnTimeout::Cancel)),
        ],
    );
    // 1 is in service at its deadline: served. 2 reneges at 1 s. 3 starts at 10 s.
    assert_eq!(
        log,
        vec![
            (
                secs(1.0),
                CaOutcome::Reneged {
                    request: 2,
                    submitted: SimTime::ZERO
                }
            ),
            (
                secs(10.0),
                CaOutcome::Served {
                    request: 1,
                    submitted: SimTime::ZERO,
                    started: SimTime::ZERO,
                    late: false
                }
            ),
            (
                secs(20.0),
                CaOutcome::Served {
                    request: 3,
                    submitted: SimTime::ZERO,
                    started: secs(10.0),
                    late: false
                }
            ),
        ]
    );
    assert_eq!((ca.ca.reneged(), ca.ca.wasted_work_seconds()), (1, 0.0));
}

#[test]
fn keep_times_out_and_wastes_the_work() {
    let (ca, log) = run(
        CaConfig::plain(1, constant(10.0)),
        &[
            (0.0, Ev::Submit(1, Some(secs(5.0)), OnTimeout::Keep)),
            (0.0, Ev::Submit(2, Some(secs(1.0)), OnTimeout::Keep)),
        ],
    );
    assert_eq!(
        log,
        vec![
            (
                secs(1.0),
                CaOutcome::TimedOut {
                    request: 2,
                    submitted: SimTime::ZERO,
                    started: None
                }
            ),
            (
                secs(5.0),
                CaOutcome::TimedOut {
                    request: 1,
                    submitted: SimTime::ZERO,
                    started: Some(SimTime::ZERO)
                }
            ),
            (
                secs(10.0),
                CaOutcome::Served {
                    request: 1,
                    submitted: SimTime::ZERO,
                    started: SimTime::ZERO,
                    late: true
                }
            ),
            (
                secs(20.0),
                CaOutcome::Served {
                    request: 2,
                    submitted: SimTime::ZERO,
                    started: secs(10.0),
                    late: true
                }
            ),
        ]
    );
    assert_eq!(ca.ca.timed_out(), 2);
    assert_eq!(ca.ca.served_late(), 2);
    assert!((ca.ca.wasted_work_seconds() - 20.0).abs() < 1e-9);
}

#[test]
fn capacity_dip_limits_starts_without_preemption() {
    let (ca, log) = run(
        CaConfig::plain(4, constant(2.0)),
        &[
            (0.0, submit(1)),
            (0.0, submit(2)),
            (0.0, submit(3)),
            (1.0, Ev::Fraction(0.3)), // floor(0.3 * 4) = 1 worker may start work
            (1.0, submit(4)),
            (1.0, submit(5)),
            (6.0, Ev::Fraction(1.0)),
        ],
    );
    // 1-3 keep running (no preemption) and finish at 2 s; then only one at a time:
    // 4 runs 2-4 s, 5 runs 4-6 s.
    assert_eq!(
        served_at(&log),
        vec![(1, 2.0), (2, 2.0), (3, 2.0), (4, 4.0), (5, 6.0)]
    );
    assert_eq!(ca.ca.allowed_workers(), 4);
}

#[test]
fn reneged_requests_in_a_queue_that_does_not_move_free_their_slots() {
    // No worker may start for the whole run, so the queue never moves: 100 000 requests
    // renege after 1 ms each. Their slots are freed in bulk once they outnumber the
    // waiting ones instead of piling up until the front moves.
    let mut script = vec![(0.0, Ev::Fraction(0.0))];
    script.extend((0..100_000).map(|i| {
        let t = 1.0 + i as f64 * 0.01;
        (t, Ev::Submit(i, Some(secs(t + 0.001)), OnTimeout::Cancel))
    }));
    // One patient request at the front that blocks the queue throughout.
    script.insert(1, (0.5, Ev::Submit(u64::MAX, None, OnTimeout::Cancel)));
    let (ca, log) = run(CaConfig::plain(1, constant(1.0)), &script);
    assert_eq!(ca.ca.reneged(), 100_000);
    assert_eq!(log.len(), 100_000);
    assert_eq!(ca.ca.queue_len(), 1);
    // 100 000 slots would take ~5 MB.
    assert!(
        ca.ca.memory_bytes() < 1 << 20,
        "{} bytes held for one waiting request",
        ca.ca.memory_bytes()
    );
}

#[test]
fn token_bucket_paces_starts() {
    let cfg = CaConfig {
        rate_limit: Some(RateLimit {
            rate_per_s: 2.0,
            burst: 1,
        }),
        ..CaConfig::plain(10, constant(0.1))
    };
    let script: Vec<(f64, Ev)> = (0..4).map(|i| (0.0, submit(i))).collect();
    let (_, log) = run(cfg, &script);
    let starts: Vec<f64> = log
        .iter()
        .map(|(_, o)| match o {
            CaOutcome::Served { started, .. } => started.as_secs_f64(),
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(starts, vec![0.0, 0.5, 1.0, 1.5]);
    // Removing the limit releases the queue at once.
    let mut script: Vec<(f64, Ev)> = (0..4).map(|i| (0.0, submit(i))).collect();
    script.push((0.2, Ev::Limit(None)));
    let (_, log) = run(cfg, &script);
    let served = served_at(&log);
    assert_eq!(served[0], (0, 0.1));
    assert!(
        served[1..].iter().all(|&(_, t)| (t - 0.3).abs() < 1e-9),
        "{served:?}"
    );
}

#[test]
fn burst_then_rate() {
    let cfg = CaConfig {
        rate_limit: Some(RateLimit {
            rate_per_s: 25.0,
            burst: 5,
        }),
        ..CaConfig::plain(100, constant(0.01))
    };
    let script: Vec<(f64, Ev)> = (0..10).map(|i| (0.0, submit(i))).collect();
    let (_, log) = run(cfg, &script);
    let mut starts: Vec<f64> = log
        .iter()
        .map(|(_, o)| match o {
            CaOutcome::Served { started, .. } => started.as_secs_f64(),
            _ => unreachable!(),
        })
        .collect();
    starts.sort_by(f64::total_cmp);
    let expect = [0.0, 0.0, 0.0, 0.0, 0.0, 0.04, 0.08, 0.12, 0.16, 0.2];
    for (s, e) in starts.iter().zip(expect) {
        assert!((s - e).abs() < 1e-8, "{starts:?}");
    }
}

#[test]
fn service_draws_are_pinned() {
    // Golden values: if a dependency changes how draws are made, results change with it.
    let mut r = rng::named_stream(42, "ca/0/service");
    let exp = ServiceTime::Exponential {
        mean: SimTime::from_secs(1),
    }
    .sample(&mut r);
    let ln = ServiceTime::LogNormal {
        median: SimTime::from_millis(100),
        p99: SimTime::from_secs(1),
    }
    .sample(&mut r);
    assert_eq!((exp.as_nanos(), ln.as_nanos()), GOLDEN_DRAWS);
}

const GOLDEN_DRAWS: (u64, u64) = (240_808_861, 95_428_270);

#[test]
fn lognormal_from_mean_and_p99() {
    let st =
        ServiceTime::lognormal_from_mean_p99(SimTime::from_millis(100), SimTime::from_millis(500))
            .unwrap();
    assert!((st.mean_s() - 0.1).abs() < 1e-6, "{}", st.mean_s());
    let ServiceTime::LogNormal { median, p99 } = st else {
        unreachable!()
    };
    assert_eq!(p99, SimTime::from_millis(500));
    assert!(median < SimTime::from_millis(100));
    assert!(
        ServiceTime::lognormal_from_mean_p99(SimTime::from_secs(1), SimTime::from_secs(1)).is_err()
    );
    assert!(
        ServiceTime::lognormal_from_mean_p99(SimTime::from_secs(1), SimTime::from_secs(20))
            .is_err()
    );
    // Sample quantiles match median and p99.
    let mut r = rng::stream(5, 5);
    let mut xs: Vec<f64> = (0..200_000)
        .map(|_| st.sample(&mut r).as_secs_f64())
        .collect();
    xs.sort_by(f64::total_cmp);
    let q50 = xs[100_000];
    let q99 = xs[198_000];
    assert!((q50 / median.as_secs_f64() - 1.0).abs() < 0.01, "{q50}");
    assert!((q99 / 0.5 - 1.0).abs() < 0.02, "{q99}");
}

#[test]
fn config_validation_names_field_and_value() {
    let ok = CaConfig::plain(1, constant(1.0));
    assert!(ok.validate("ca.x").is_ok());
    let e = CaConfig { workers: 0, ..ok }.validate("ca.x").unwrap_err();
    assert_eq!(e, "ca.x.workers: must be >= 1, got 0");
    let e = CaConfig {
        service: ServiceTime::LogNormal {
            median: SimTime::from_secs(2),
            p99: SimTime::from_secs(1),
        },
        ..ok
    }
    .validate("ca.x")
    .unwrap_err();
    assert!(
        e.contains("ca.x.service.p99") && e.contains("1.000s"),
        "{e}"
    );
    let e = CaConfig {
        rate_limit: Some(RateLimit {
            rate_per_s: -1.0,
            burst: 1,
        }),
        ..ok
    }
    .validate("ca.x")
    .unwrap_err();
    assert!(e.contains("rate_per_s") && e.contains("-1"), "{e}");
    let e = CaConfig {
        usl: Usl {
            sigma: f64::NAN,
            kappa: 0.0,
        },
        ..ok
    }
    .validate("ca.x")
    .unwrap_err();
    assert!(e.contains("usl.sigma"), "{e}");
}

#[test]
fn several_cas_share_one_model() {
    // Events carry the CA index; a model routes them back. Here two CAs in one model.
    #[derive(Debug, Clone, Copy)]
    enum Two {
        Ca(CaEvent),
        Go,
    }
    impl From<CaEvent> for Two {
        fn from(e: CaEvent) -> Self {
            Two::Ca(e)
        }
    }
    impl TraceEvent for Two {
        fn kind(&self) -> u32 {
            0
        }
        fn entity(&self) -> u64 {
            0
        }
    }
    struct M {
        cas: Vec<CertificateAuthority>,
        out: Vec<CaOutcome>,
        done: Vec<(u32, u64, SimTime)>,
    }
    impl Model for M {
        type Event = Two;
        fn handle(&mut self, e: Two, ctx: &mut Context<Two>) {
            match e {
                Two::Go => {
                    self.cas[0].submit(10, None, OnTimeout::Cancel, ctx);
                    self.cas[1].submit(20, None, OnTimeout::Cancel, ctx);
                }
                Two::Ca(ev) => {
                    let ca = &mut self.cas[ev.ca as usize];
                    ca.handle(ev.kind, ctx, &mut self.out);
                    for o in self.out.drain(..) {
                        if let CaOutcome::Served { request, .. } = o {
                            self.done.push((ev.ca, request, ctx.now()));
                        }
                    }
                }
            }
        }
    }
    let mut sim = Simulation::new(M {
        cas: vec![
            CertificateAuthority::new(0, CaConfig::plain(1, constant(1.0)), rng::stream(1, 1)),
            CertificateAuthority::new(1, CaConfig::plain(1, constant(2.0)), rng::stream(1, 2)),
        ],
        out: Vec::new(),
        done: Vec::new(),
    });
    sim.schedule_at(SimTime::ZERO, Two::Go);
    sim.run(Limits::horizon(SimTime::MAX));
    assert_eq!(
        sim.model.done,
        vec![
            (0, 10, SimTime::from_secs(1)),
            (1, 20, SimTime::from_secs(2))
        ]
    );
}

#[test]
fn nanosecond_rounding_matches_the_unsigned_conversion_everywhere() {
    let reference = |ns: f64| {
        if ns.is_nan() || ns <= 0.0 {
            SimTime::ZERO
        } else if ns >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime((ns + 0.5) as u64)
        }
    };
    let mut r = rng::stream(5, 5);
    let mut cases = vec![
        0.0,
        -0.0,
        -1.0,
        0.49,
        0.5,
        1.5,
        2.5,
        9.007_199_254_740_993e15,
        9.2e18,
        9.199_999_999_999_999e18,
        (1u64 << 63) as f64 - 1024.0,
        (1u64 << 63) as f64,
        1.8e19,
        u64::MAX as f64,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
    ];
    cases.extend((0..10_000).map(|_| f64::from_bits(rand::Rng::next_u64(&mut r) >> 1)));
    for ns in cases {
        assert_eq!(from_nanos_f64(ns), reference(ns), "{ns:e}");
    }
}
