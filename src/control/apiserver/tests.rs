use super::*;
use crate::engine::{Context, Limits, Model, Simulation};
use proptest::prelude::*;

const S: fn(u64) -> SimTime = SimTime::from_secs;

/// A tiny owner: scripted submissions plus the apiserver's wakes; records every answer.
#[derive(Debug, Clone, Copy)]
enum Ev {
    Api(ApiServerEvent),
    Submit(usize),
}

impl From<ApiServerEvent> for Ev {
    fn from(e: ApiServerEvent) -> Self {
        Ev::Api(e)
    }
}

impl TraceEvent for Ev {
    fn kind(&self) -> u32 {
        match self {
            Ev::Api(e) => e.kind(),
            Ev::Submit(_) => 1,
        }
    }
    fn entity(&self) -> u64 {
        match self {
            Ev::Api(e) => e.entity(),
            Ev::Submit(i) => *i as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Admitted {
        at: SimTime,
        done_at: SimTime,
    },
    Rejected {
        at: SimTime,
        retry_after_s: u32,
        reason: RejectReason,
    },
}

struct Owner {
    api: ApiServer,
    reqs: Vec<(Option<Flow>, ApiRequest)>,
    answers: Vec<Option<Answer>>,
    wakes: u64,
    out: Vec<ApiOutcome>,
    check: bool,
}

impl Owner {
    fn new(config: ApiServerConfig) -> Owner {
        Owner {
            api: ApiServer::new(0, config),
            reqs: Vec::new(),
            answers: Vec::new(),
            wakes: 0,
            out: Vec::new(),
            check: false,
        }
    }

    fn push(&mut self, req: ApiRequest) -> usize {
        self.reqs.push((None, req));
        self.answers.push(None);
        self.reqs.len() - 1
    }

    fn invariants(&self) {
        for l in LEVELS {
            if l == Level::Exempt {
                continue;
            }
            let lvl = &self.api.levels[l.index()];
            // A borrowing step may lower the limit under seats already in use.
            let limit = if self.api.config.borrowing {
                lvl.max_cl
            } else {
                lvl.current_cl
            };
            assert!(
                lvl.seats_in_use <= limit,
                "{l:?}: {} seats in use, limit {}",
                lvl.seats_in_use,
                lvl.current_cl
            );
            for q in &lvl.queues {
                assert!(
                    q.waiting.len() <= 50,
                    "{l:?}: a queue holds {}",
                    q.waiting.len()
                );
            }
            let w: u32 = lvl.queues.iter().map(|q| q.waiting.len() as u32).sum();
            assert_eq!(w, lvl.waiting);
        }
    }
}

impl Model for Owner {
    type Event = Ev;
    fn handle(&mut self, e: Ev, ctx: &mut Context<Ev>) {
        let now = ctx.now();
        match e {
            Ev::Api(e) => {
                self.wakes += 1;
                self.api.handle(e, ctx, &mut self.out);
            }
            Ev::Submit(i) => {
                let (flow, req) = self.reqs[i];
                let a = match flow {
                    Some(f) => self
                        .api
                        .submit_classified(f, &req, i as u64, ctx, &mut self.out),
                    None => self.api.submit(&req, i as u64, ctx, &mut self.out),
                };
                match a {
                    Admission::Admitted { done_at } => {
                        self.answers[i] = Some(Answer::Admitted { at: now, done_at })
                    }
                    Admission::Rejected {
                        retry_after_s,
                        reason,
                    } => {
                        self.answers[i] = Some(Answer::Rejected {
                            at: now,
                            retry_after_s,
                            reason,
                        })
                    }
                    Admission::Queued => {}
                }
            }
        }
        for o in self.out.drain(..) {
            match o {
                ApiOutcome::Admitted { tag, done_at } => {
                    assert!(done_at >= now);
                    assert!(self.answers[tag as usize].is_none(), "one answer each");
                    self.answers[tag as usize] = Some(Answer::Admitted { at: now, done_at });
                }
                ApiOutcome::Rejected {
                    tag,
                    retry_after_s,
                    reason,
                } => {
                    assert!(self.answers[tag as usize].is_none(), "one answer each");
                    self.answers[tag as usize] = Some(Answer::Rejected {
                        at: now,
                        retry_after_s,
                        reason,
                    });
                }
            }
        }
        if self.check {
            self.invariants();
        }
    }
}

fn no_borrowing(get: SimTime) -> ApiServerConfig {
    ApiServerConfig {
        borrowing: false,
        service: ServiceTimes {
            get,
            ..ServiceTimes::default()
        },
        ..ApiServerConfig::default()
    }
}

fn run(owner: Owner, submits: &[(SimTime, usize)], until: SimTime) -> Simulation<Owner> {
    let mut sim = Simulation::new(owner);
    for &(t, i) in submits {
        sim.schedule_at(t, Ev::Submit(i));
    }
    sim.run(Limits::horizon(until));
    sim
}

#[test]
fn nominal_seats_come_from_the_shares() {
    let a = ApiServer::new(0, ApiServerConfig::default());
    assert_eq!(a.server_concurrency_limit(), 600);
    let seats: Vec<u32> = LEVELS.iter().map(|&l| a.nominal_seats(l)).collect();
    // exempt, catch-all, system, node-high, leader-election, workload-high,
    // workload-low, global-default
    assert_eq!(seats, vec![0, 13, 74, 98, 25, 98, 245, 49]);
    assert_eq!(seats.iter().sum::<u32>(), 602, "ceil makes it 602, not 600");
    let bounds: Vec<(u32, u32)> = LEVELS[1..].iter().map(|&l| a.limit_bounds(l)).collect();
    assert_eq!(
        bounds,
        vec![
            (13, 613),
            (50, 674),
            (73, 698),
            (25, 625),
            (49, 698),
            (24, 845),
            (24, 649)
        ]
    );
}

#[test]
fn max_seats_per_level_cap_list_width() {
    let a = ApiServer::new(0, ApiServerConfig::default());
    let m: Vec<u32> = LEVELS[1..].iter().map(|&l| a.max_seats(l)).collect();
    assert_eq!(m, vec![10, 10, 10, 4, 10, 10, 8]);
}

#[test]
fn list_width_from_the_stored_object_count() {
    let mut a = ApiServer::new(0, ApiServerConfig::default());
    let c = a.register_client(&Identity::service_account("istio-system", "istiod"));
    let list = |stored| ApiRequest::new(c, Verb::List, Resource::Other).listing(stored, 0);
    let w = |a: &ApiServer, r: ApiRequest, l| a.estimate(&r, l).initial_seats;
    assert_eq!(w(&a, list(0), Level::WorkloadLow), 1);
    assert_eq!(w(&a, list(150), Level::WorkloadLow), 2);
    // 520 858 CSRs (kubernetes#132947): 5 209 seats estimated, capped per level.
    for (l, want) in [
        (Level::WorkloadLow, 10),
        (Level::GlobalDefault, 8),
        (Level::LeaderElection, 4),
        (Level::System, 10),
    ] {
        assert_eq!(w(&a, list(520_858), l), want, "{l:?}");
    }
    // By name (istiod's `fieldSelector=metadata.name=csr-...`): one seat.
    let by_name = list(520_858).by_name();
    assert_eq!(w(&a, by_name, Level::WorkloadLow), 1);
    // From etcd without a selector: 2 x limit.
    let mut etcd = list(100_000);
    etcd.from_cache = false;
    etcd.limit = 250;
    assert_eq!(w(&a, etcd, Level::WorkloadLow), 5);
    // Writes seen by 25 watches keep 3 seats for 5 ms more.
    let mut pod = ApiRequest::new(c, Verb::Update, Resource::Other);
    pod.watchers = 25;
    let e = a.estimate(&pod, Level::WorkloadLow);
    assert_eq!((e.initial_seats, e.final_seats), (1, 3));
    assert_eq!(e.additional_latency, SimTime::from_millis(5));
    let _ = &mut a;
}

#[test]
fn flow_schemas_route_the_certificate_path_actors() {
    let mut a = ApiServer::new(0, ApiServerConfig::default());
    let istiod = a.register_client(&Identity::service_account("istio-system", "istiod"));
    let istiod2 = a.register_client(&Identity::service_account("istio-system", "istiod"));
    let cm = a.register_client(&Identity::service_account("cert-manager", "cert-manager"));
    let kcm = a.register_client(&Identity::KubeControllerManager);
    let node = a.register_client(&Identity::Node {
        name: "ip-10-0-0-1".into(),
    });
    let ks = a.register_client(&Identity::service_account(
        "kube-system",
        "replicaset-controller",
    ));
    let admin = a.register_client(&Identity::Master {
        name: "admin".into(),
    });
    let user = a.register_client(&Identity::User {
        name: "alice".into(),
    });
    let r = |c, v, res| ApiRequest::new(c, v, res);
    let f = |a: &ApiServer, q: ApiRequest| a.classify(&q);

    let csr = f(&a, r(istiod, Verb::Create, Resource::Other));
    assert_eq!(
        (csr.level, csr.schema),
        (Level::WorkloadLow, "service-accounts")
    );
    assert_eq!(
        csr.hash,
        f(&a, r(istiod2, Verb::Get, Resource::Other)).hash,
        "one flow per SA"
    );
    assert_ne!(csr.hash, f(&a, r(cm, Verb::Create, Resource::Other)).hash);
    let lease = r(cm, Verb::Update, Resource::Leases).in_namespace(7);
    assert_eq!(
        f(&a, lease).level,
        Level::WorkloadLow,
        "leases of non-kube-system SAs"
    );

    let k1 = f(&a, r(kcm, Verb::Create, Resource::Other).in_namespace(1));
    let k2 = f(&a, r(kcm, Verb::Create, Resource::Other).in_namespace(2));
    assert_eq!(
        (k1.level, k1.schema),
        (Level::WorkloadHigh, "kube-controller-manager")
    );
    assert_ne!(k1.hash, k2.hash, "ByNamespace");
    let kl = f(&a, r(kcm, Verb::Update, Resource::Leases).in_namespace(1));
    assert_eq!(kl.level, Level::LeaderElection);

    assert_eq!(
        f(&a, r(node, Verb::Update, Resource::Nodes)).level,
        Level::NodeHigh
    );
    let nl = r(node, Verb::Update, Resource::Leases).in_namespace(3);
    assert_eq!(f(&a, nl).level, Level::NodeHigh);
    assert_eq!(
        f(&a, r(node, Verb::Patch, Resource::Other)).level,
        Level::System
    );

    let ksl = r(ks, Verb::Get, Resource::Leases).in_namespace(9);
    assert_eq!(f(&a, ksl).schema, "system-leader-election");
    let kse = r(ks, Verb::Get, Resource::Endpoints).in_namespace(9);
    assert_eq!(f(&a, kse).schema, "workload-leader-election");
    assert_eq!(
        f(&a, r(ks, Verb::List, Resource::Other)).level,
        Level::WorkloadHigh
    );

    assert_eq!(
        f(&a, r(admin, Verb::List, Resource::Other)).level,
        Level::Exempt
    );
    assert_eq!(
        f(&a, r(user, Verb::HealthCheck, Resource::Other)).level,
        Level::Exempt
    );
    assert_eq!(
        f(&a, r(user, Verb::Get, Resource::Other)).level,
        Level::GlobalDefault
    );

    // 1.34 dropped workload-leader-election: the kube-system SA's endpoints go to
    // kube-system-service-accounts.
    let mut a34 = ApiServer::new(
        0,
        ApiServerConfig {
            version: KubeVersion::new(34),
            ..ApiServerConfig::default()
        },
    );
    let ks34 = a34.register_client(&Identity::service_account("kube-system", "x"));
    let e34 = a34.classify(&r(ks34, Verb::Get, Resource::Endpoints).in_namespace(9));
    assert_eq!(e34.schema, "kube-system-service-accounts");
}

#[test]
fn no_event_while_seats_are_free() {
    let mut o = Owner::new(ApiServerConfig::default());
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for i in 0..2000u64 {
        let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
        submits.push((SimTime::from_millis(i), idx)); // 2 ms each, ~2 in flight
    }
    let sim = run(o, &submits, S(100));
    assert_eq!(sim.model.wakes, 0);
    assert_eq!(
        sim.events(),
        2000,
        "one event per submission, none of the apiserver's"
    );
    assert!(sim
        .model
        .answers
        .iter()
        .all(|a| matches!(a, Some(Answer::Admitted { .. }))));
}

#[test]
fn full_queue_gets_429_only_when_the_level_is_saturated() {
    // Nominal seats: workload-low has 245. One flow's hand has 6 queues of 50.
    let mut o = Owner::new(no_borrowing(S(100)));
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for _ in 0..(245 + 300 + 1) {
        let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
        submits.push((SimTime::ZERO, idx));
    }
    let sim = run(o, &submits, SimTime(1));
    let a = &sim.model.answers;
    assert!(a[..245]
        .iter()
        .all(|x| matches!(x, Some(Answer::Admitted { .. }))));
    assert!(a[245..545].iter().all(|x| x.is_none()), "queued");
    assert_eq!(
        a[545],
        Some(Answer::Rejected {
            at: SimTime::ZERO,
            retry_after_s: 1,
            reason: RejectReason::QueueFull
        })
    );
    assert_eq!(sim.model.api.longest_queue(Level::WorkloadLow), 50);
    assert_eq!(
        sim.model
            .api
            .rejected(Level::WorkloadLow, RejectReason::QueueFull),
        1
    );
}

#[test]
fn queued_request_gets_429_after_15_s() {
    let mut o = Owner::new(no_borrowing(S(100)));
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for _ in 0..246 {
        let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
        submits.push((SimTime::ZERO, idx));
    }
    let sim = run(o, &submits, S(200));
    assert_eq!(
        sim.model.answers[245],
        Some(Answer::Rejected {
            at: S(15),
            retry_after_s: 1,
            reason: RejectReason::TimeOut
        })
    );
    assert_eq!(sim.model.wakes, 1, "one wake for the one queued request");
}

#[test]
fn shorter_request_timeout_shortens_the_wait_limit() {
    let mut o = Owner::new(no_borrowing(S(100)));
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for i in 0..246 {
        let mut r = ApiRequest::new(c, Verb::Get, Resource::Other);
        if i == 245 {
            r.timeout = Some(S(10)); // ?timeout=10s -> 2.5 s in the queue
        }
        let idx = o.push(r);
        submits.push((SimTime::ZERO, idx));
    }
    let sim = run(o, &submits, S(200));
    assert!(matches!(
        sim.model.answers[245],
        Some(Answer::Rejected { at, .. }) if at == SimTime::from_millis(2500)
    ));
}

#[test]
fn queued_request_runs_when_a_seat_frees() {
    let mut o = Owner::new(no_borrowing(S(5)));
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for _ in 0..246 {
        let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
        submits.push((SimTime::ZERO, idx));
    }
    let sim = run(o, &submits, S(200));
    assert_eq!(
        sim.model.answers[245],
        Some(Answer::Admitted {
            at: S(5),
            done_at: S(10)
        })
    );
}

#[test]
fn catch_all_rejects_at_once_without_queues() {
    let mut o = Owner::new(no_borrowing(S(100)));
    let c = o.api.register_client(&Identity::User { name: "x".into() });
    let flow = Flow {
        level: Level::CatchAll,
        schema: "catch-all",
        hash: 1,
    };
    let mut submits = Vec::new();
    for _ in 0..14 {
        let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
        o.reqs[idx].0 = Some(flow);
        submits.push((SimTime::ZERO, idx));
    }
    let sim = run(o, &submits, SimTime(1));
    let a = &sim.model.answers;
    assert!(a[..13]
        .iter()
        .all(|x| matches!(x, Some(Answer::Admitted { .. }))));
    assert_eq!(
        a[13],
        Some(Answer::Rejected {
            at: SimTime::ZERO,
            retry_after_s: 1,
            reason: RejectReason::ConcurrencyLimit
        })
    );
}

#[test]
fn retry_after_doubles_under_sustained_drops_and_decays_after() {
    let mut t = DropTracker::new();
    let mut seen = Vec::new();
    for sec in 0..40i64 {
        for _ in 0..100 {
            t.record(sec);
        }
        seen.push(t.retry_after);
    }
    // Doubles when 3 x retryAfter drops fell in the last retryAfter seconds and
    // retryAfter seconds passed since the last increase: at 1, 3, 7, 15, 31.
    let change: Vec<(usize, i64)> = seen
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[0] != w[1])
        .map(|(i, w)| (i + 1, w[1]))
        .collect();
    assert_eq!(change, vec![(1, 2), (3, 4), (7, 8), (15, 16), (31, 32)]);
    assert_eq!(*seen.last().unwrap(), 32, "capped");
    // It is reconsidered only when a drop lands in a new second: sparse drops (fewer
    // than retryAfter in the last retryAfter seconds) bring it down by one each.
    for sec in [100, 200, 300] {
        t.record(sec);
    }
    assert_eq!(t.retry_after, 29);
}

#[test]
fn retry_after_is_fixed_on_1_27() {
    let mut cfg = no_borrowing(S(100));
    cfg.version = KubeVersion::new(27);
    let mut o = Owner::new(cfg);
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for s in 0..40u64 {
        for _ in 0..400 {
            let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
            submits.push((S(s), idx));
        }
    }
    let sim = run(o, &submits, S(41));
    assert!(sim.model.answers.iter().all(|a| !matches!(
        a,
        Some(Answer::Rejected { retry_after_s, .. }) if *retry_after_s != 1
    )));
}

#[test]
fn fair_queuing_serves_a_light_flow_before_a_heavy_backlog() {
    // 245 seats held for 1 s; flow A queues 250 more, then flow B sends 5.
    let mut o = Owner::new(no_borrowing(S(1)));
    let a = o
        .api
        .register_client(&Identity::service_account("ns-a", "heavy"));
    let b = o
        .api
        .register_client(&Identity::service_account("ns-b", "light"));
    let mut submits = Vec::new();
    for _ in 0..(245 + 250) {
        let idx = o.push(ApiRequest::new(a, Verb::Get, Resource::Other));
        submits.push((SimTime::ZERO, idx));
    }
    let first_b = o.reqs.len();
    for _ in 0..5 {
        let idx = o.push(ApiRequest::new(b, Verb::Get, Resource::Other));
        submits.push((SimTime(1), idx));
    }
    let sim = run(o, &submits, S(100));
    let ans = &sim.model.answers;
    // All of B's run in the first batch freed at 1 s, FIFO would put them after A's 250.
    for (i, a) in ans.iter().enumerate().skip(first_b) {
        assert!(
            matches!(a, Some(Answer::Admitted { at, .. }) if *at == S(1)),
            "{i}: {a:?}"
        );
    }
    // A's backlog needs two rounds.
    assert!(ans[245..495]
        .iter()
        .any(|x| matches!(x, Some(Answer::Admitted { at, .. }) if *at == S(2))));
}

#[test]
fn wide_list_blocks_the_head_of_its_queue() {
    // global-default (49 seats): 45 one-seat GETs held 1 s; an 8-seat LIST then waits
    // although 4 seats are free, until enough are.
    let mut o = Owner::new(no_borrowing(S(1)));
    let u = o.api.register_client(&Identity::User {
        name: "alice".into(),
    });
    let mut submits = Vec::new();
    for _ in 0..45 {
        let idx = o.push(ApiRequest::new(u, Verb::Get, Resource::Other));
        submits.push((SimTime::ZERO, idx));
    }
    let list = o.push(ApiRequest::new(u, Verb::List, Resource::Other).listing(10_000, 10));
    submits.push((SimTime(1), list));
    let sim = run(o, &submits, S(100));
    assert!(matches!(
        sim.model.answers[list],
        Some(Answer::Admitted { at, .. }) if at == S(1)
    ));
    assert_eq!(
        sim.model.api.peak_seats(Level::GlobalDefault),
        49,
        "41 GETs + the LIST"
    );
}

#[test]
fn initial_borrowing_allocation_is_proportional_to_min_limits() {
    let a = ApiServer::new(0, ApiServerConfig::default());
    let cl: Vec<u32> = LEVELS[1..].iter().map(|&l| a.current_limit(l)).collect();
    // 602 x minCL / 258.
    assert_eq!(cl, vec![30, 117, 170, 58, 114, 56, 56]);
}

#[test]
fn workload_low_borrows_after_ten_seconds_of_demand() {
    let mut o = Owner::new(ApiServerConfig {
        service: ServiceTimes {
            get: S(100),
            ..ServiceTimes::default()
        },
        ..ApiServerConfig::default()
    });
    let mut submits = Vec::new();
    for k in 0..4 {
        let c = o.api.register_client(&Identity::service_account(
            "istio-system",
            &format!("sa{k}"),
        ));
        for _ in 0..100 {
            let idx = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
            submits.push((SimTime::ZERO, idx));
        }
    }
    let sim = run(o, &submits, S(11));
    let api = &sim.model.api;
    // Demand 400 for 10 s: workload-low's lower bound becomes its nominal 245, its target
    // 400; the other levels keep their min limits (234 in all): 602 - 234 = 368.
    assert_eq!(api.current_limit(Level::WorkloadLow), 368);
    let admitted_at_10 = sim
        .model
        .answers
        .iter()
        .filter(|a| matches!(a, Some(Answer::Admitted { at, .. }) if *at == S(10)))
        .count();
    assert_eq!(admitted_at_10, 368 - 56);
}

#[test]
fn fair_allocation_meets_bounds_and_sum() {
    let items = [
        AllocItem {
            lower: 10.0,
            upper: 100.0,
            target: 10.0,
        },
        AllocItem {
            lower: 5.0,
            upper: 8.0,
            target: 50.0,
        },
        AllocItem {
            lower: 0.0,
            upper: 1000.0,
            target: 40.0,
        },
    ];
    let a = fair_allocation(100.0, &items).unwrap();
    assert!((a.iter().sum::<f64>() - 100.0).abs() < 1e-9, "{a:?}");
    assert_eq!(a[1], 8.0, "capped at its upper bound");
    // The others share one proportion p: 10p + 40p = 92.
    assert!((a[0] - 92.0 / 50.0 * 10.0).abs() < 1e-9);
    assert!(
        fair_allocation(1.0, &items).is_none(),
        "lower bounds sum to 15"
    );
}

#[test]
fn dealing_gives_distinct_queues() {
    let mut hand = [0usize; 8];
    for h in 0..10_000u64 {
        deal(splitmix64(h), 128, 6, &mut hand);
        let mut v = hand[..6].to_vec();
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 6);
        assert!(hand[..6].iter().all(|&q| q < 128));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Seats never exceed the level's limit, no queue holds more than 50 one-seat
    /// requests, and every request gets exactly one answer.
    #[test]
    fn seats_and_queues_stay_within_limits(
        borrowing in any::<bool>(),
        reqs in prop::collection::vec((0u64..30_000, 0u8..6, 1u64..3_000), 1..600),
    ) {
        let mut o = Owner::new(ApiServerConfig {
            borrowing,
            max_requests_inflight: 40,
            max_mutating_requests_inflight: 20,
            ..ApiServerConfig::default()
        });
        o.check = true;
        let clients: Vec<ClientId> = (0..6)
            .map(|k| o.api.register_client(&Identity::service_account("ns", &format!("sa{k}"))))
            .collect();
        let mut submits = Vec::new();
        for (t_ms, who, svc_ms) in reqs {
            let mut r = ApiRequest::new(clients[who as usize], Verb::Get, Resource::Other);
            r.timeout = Some(SimTime::from_millis(svc_ms * 20));
            let idx = o.push(r);
            submits.push((SimTime::from_millis(t_ms), idx));
        }
        o.api.config.service.get = SimTime::from_millis(700);
        let sim = run(o, &submits, S(1_000));
        prop_assert!(sim.model.answers.iter().all(|a| a.is_some()));
        prop_assert_eq!(sim.model.api.queued_total, 0);
    }
}

#[test]
fn seats_in_use_at_counts_lazily_released_seats_as_free() {
    // Three LISTs of 450 stored objects (5 seats each, 5 ms + 450 x 20 us = 14 ms) and
    // one GET (1 seat, 2 ms) at t = 0; nothing touches the apiserver afterwards.
    let mut o = Owner::new(ApiServerConfig::default());
    let c = o
        .api
        .register_client(&Identity::service_account("istio-system", "istiod"));
    let mut submits = Vec::new();
    for _ in 0..3 {
        let i = o.push(ApiRequest::new(c, Verb::List, Resource::Other).listing(450, 450));
        submits.push((SimTime::ZERO, i));
    }
    let g = o.push(ApiRequest::new(c, Verb::Get, Resource::Other));
    submits.push((SimTime::ZERO, g));
    let sim = run(o, &submits, SimTime::from_millis(1));
    let a = &sim.model.api;
    assert_eq!(
        a.seats_in_use_total(),
        16,
        "the lazy count still holds them all"
    );
    assert_eq!(a.seats_in_use_at(SimTime::from_millis(1)), 16);
    assert_eq!(
        a.seats_in_use_at(SimTime::from_millis(2)),
        15,
        "the GET is done"
    );
    assert_eq!(a.seats_in_use_at(SimTime::from_millis(13)), 15);
    assert_eq!(a.seats_in_use_at(SimTime::from_millis(14)), 0);
}

/// The per-client flow cache of `submit` answers exactly what `classify` answers, for
/// every identity, verb, resource and namespace, on first use and on reuse, in both
/// Kubernetes generations of FlowSchemas, and past the cache's size.
#[test]
fn apiserver_classify_cached_matches_classify() {
    let verbs = [
        Verb::Get,
        Verb::List,
        Verb::Watch,
        Verb::Create,
        Verb::Update,
        Verb::Patch,
        Verb::Delete,
        Verb::HealthCheck,
    ];
    let resources = [
        Resource::Leases,
        Resource::Endpoints,
        Resource::ConfigMaps,
        Resource::Nodes,
        Resource::ServiceAccountToken,
        Resource::Other,
    ];
    for version in [KubeVersion::new(33), KubeVersion::new(34)] {
        let mut a = ApiServer::new(
            0,
            ApiServerConfig {
                version,
                ..ApiServerConfig::default()
            },
        );
        let clients = [
            a.register_client(&Identity::service_account("istio-system", "istiod")),
            a.register_client(&Identity::service_account(
                "kube-system",
                "endpoint-controller",
            )),
            a.register_client(&Identity::service_account(
                "kube-system",
                "replicaset-controller",
            )),
            a.register_client(&Identity::KubeControllerManager),
            a.register_client(&Identity::KubeScheduler),
            a.register_client(&Identity::Node {
                name: "ip-10-0-0-1".into(),
            }),
            a.register_client(&Identity::Master {
                name: "admin".into(),
            }),
            a.register_client(&Identity::User {
                name: "alice".into(),
            }),
        ];
        let mut distinct = std::collections::HashSet::new();
        for round in 0..2 {
            for &c in &clients {
                for &v in &verbs {
                    for &res in &resources {
                        for ns in [None, Some(1), Some(2), Some(u64::MAX)] {
                            let mut q = ApiRequest::new(c, v, res);
                            if let Some(n) = ns {
                                q = q.in_namespace(n);
                            }
                            let want = a.classify(&q);
                            assert_eq!(
                                a.classify_cached(&q),
                                want,
                                "{c:?} {v:?} {res:?} {ns:?} round {round}"
                            );
                            distinct.insert((want.schema, want.hash));
                        }
                    }
                }
            }
        }
        assert!(distinct.len() > 8, "the cases reach many flows");
    }
}

/// `round_to_ss` is `f64::round` then `as i64`, bit for bit: halves, the doubles just
/// below a half, the 2^52 boundary, huge values, infinities and NaN.
#[test]
fn apiserver_round_to_ss_matches_libm_round() {
    let mut xs = vec![
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.49999999999999994,
        -0.49999999999999994,
        4503599627370495.5,
        -4503599627370495.5,
        4503599627370496.0,
        4503599627370497.0,
        9.3e18,
        -9.3e18,
        f64::MAX,
        f64::MIN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        f64::MIN_POSITIVE,
    ];
    for k in 0..200 {
        let x = (k as f64 - 100.0) / 8.0;
        xs.extend([
            x,
            f64::from_bits(x.to_bits() + 1),
            f64::from_bits(x.to_bits().wrapping_sub(1)),
        ]);
    }
    for x in xs {
        assert_eq!(round_to_ss(x), x.round() as Ss, "{x:e}");
    }
}

proptest! {
    /// `seats_times` against its defining formula, for integer and fractional seats and
    /// durations of either sign, including ones beyond `i64`.
    #[test]
    fn apiserver_seats_times_matches_the_formula(
        seats in prop_oneof![(0u32..700).prop_map(f64::from), 0.0f64..700.0],
        dur in prop_oneof![-4_000_000i128..4_000_000, any::<i64>().prop_map(i128::from), any::<i128>()],
    ) {
        prop_assert_eq!(seats_times(seats, dur), (seats * dur as f64 / 10.0).round() as Ss);
        prop_assert_eq!(ns_as_f64(dur).to_bits(), (dur as f64).to_bits());
    }
}
