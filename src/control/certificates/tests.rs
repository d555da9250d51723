use super::*;
use crate::engine::{Context, Limits, Model, Simulation};

const S: fn(u64) -> SimTime = SimTime::from_secs;
const MS: fn(u64) -> SimTime = SimTime::from_millis;

#[derive(Debug, Clone, Copy)]
enum Ev {
    Ctl(CertEvent),
    Done(u64, CallReply),
    Signed(u32, bool),
}

impl From<CertEvent> for Ev {
    fn from(e: CertEvent) -> Self {
        Ev::Ctl(e)
    }
}

impl TraceEvent for Ev {
    fn kind(&self) -> u32 {
        match self {
            Ev::Ctl(e) => e.kind(),
            _ => 9,
        }
    }
    fn entity(&self) -> u64 {
        0
    }
}

/// An apiserver answering every call after `latency`; a CA that signs after
/// `sign_latency` (or fails the first `fail_signs` requests).
struct World {
    ctl: CertControllers,
    latency: SimTime,
    sign_latency: SimTime,
    fail_signs: u32,
    /// Answer the first `reject` calls with 429.
    reject: u32,
    out: Vec<CertOutput>,
    submitted: Vec<(SimTime, u32, Write)>,
}

impl World {
    fn new(config: CertControllersConfig, count: u32) -> World {
        World {
            ctl: CertControllers::new(0, config, count),
            latency: MS(5),
            sign_latency: MS(1),
            fail_signs: 0,
            reject: 0,
            out: Vec::new(),
            submitted: Vec::new(),
        }
    }
}

impl Model for World {
    type Event = Ev;
    fn handle(&mut self, e: Ev, ctx: &mut Context<Ev>) {
        let now = ctx.now();
        match e {
            Ev::Ctl(e) => self.ctl.handle(e, ctx, &mut self.out),
            Ev::Done(tag, r) => self.ctl.reply(tag, r, ctx, &mut self.out),
            Ev::Signed(cert, ok) => self.ctl.signed(cert, ok, ctx, &mut self.out),
        }
        let outs: Vec<CertOutput> = self.out.drain(..).collect();
        for o in outs {
            match o {
                CertOutput::Submit { tag, cert, write } => {
                    self.submitted.push((now, cert, write));
                    let r = if self.reject > 0 {
                        self.reject -= 1;
                        CallReply::TooManyRequests { retry_after_s: 1 }
                    } else {
                        CallReply::Done
                    };
                    ctx.schedule_at(now + self.latency, Ev::Done(tag, r));
                }
                CertOutput::Sign { cert } => {
                    let ok = if self.fail_signs > 0 {
                        self.fail_signs -= 1;
                        false
                    } else {
                        true
                    };
                    ctx.schedule_at(now + self.sign_latency, Ev::Signed(cert, ok));
                }
                CertOutput::Ready { .. } => {}
            }
        }
    }
}

fn run(w: World, horizon: SimTime) -> Simulation<World> {
    let mut sim = Simulation::new(w);
    sim.init(|m, ctx| {
        for c in 0..m.ctl.count() as u32 {
            m.ctl.create_at(c, SimTime::ZERO, ctx)
        }
    });
    sim.run(Limits::horizon(horizon));
    sim
}

/// One Certificate costs the source's sequence of writes and events, in order, plus
/// one wasted write per conflict: readiness and trigger both react to the creation and
/// write the same resourceVersion, so one of them loses (the "re-queuing item due to
/// optimistic locking on resource" of the field reports).
#[test]
fn one_certificate_costs_the_sources_calls_in_order() {
    let sim = run(World::new(CertControllersConfig::default(), 1), S(60));
    let w = &sim.model;
    assert_eq!(w.ctl.ready(), 1);
    let conflicts = w.ctl.stats().conflicts;
    assert!(conflicts >= 1, "readiness and trigger race at creation");
    assert_eq!(w.submitted.len() as u64, CALLS_PER_CERTIFICATE + conflicts);
    assert_eq!(w.ctl.stats().calls, CALLS_PER_CERTIFICATE + conflicts);
    let mut writes: Vec<Write> = w
        .submitted
        .iter()
        .map(|s| s.2)
        .filter(|x| *x != Write::Event)
        .collect();
    writes.dedup();
    let pos = |x: Write| writes.iter().rposition(|y| *y == x).unwrap();
    assert!(pos(Write::Issuing) < pos(Write::CreateKeySecret));
    assert!(pos(Write::CreateKeySecret) < pos(Write::NextKeyName));
    assert!(pos(Write::NextKeyName) < pos(Write::CreateCr));
    assert!(pos(Write::CreateCr) < pos(Write::Approve));
    assert!(pos(Write::Approve) < pos(Write::CrResult { ok: true }));
    assert!(pos(Write::CrResult { ok: true }) < pos(Write::CreateSecret));
    assert!(pos(Write::CreateSecret) < pos(Write::IssuingDone { ok: true }));
    assert!(pos(Write::IssuingDone { ok: true }) < pos(Write::Readiness { ready: true }));
    let events = w.submitted.iter().filter(|s| s.2 == Write::Event).count();
    assert_eq!(events, 5);
}

/// A conflict with no newer informer event: `AddRateLimited`, 1 s, 2 s, 4 s ... while
/// the cache still holds the stale version; the informer's delivery ends it.
#[test]
fn conflict_requeues_with_the_workqueues_back_off() {
    let cfg = CertControllersConfig {
        informer_delay: S(10),
        ..CertControllersConfig::default()
    };
    let sim = run(World::new(cfg, 1), S(120));
    let w = &sim.model;
    assert_eq!(w.ctl.ready(), 1);
    let times = |x: Write| -> Vec<f64> {
        w.submitted
            .iter()
            .filter(|s| s.2 == x)
            .map(|s| s.0.as_secs_f64())
            .collect()
    };
    let r = times(Write::Readiness { ready: false });
    let t = times(Write::Issuing);
    let lost = if r.len() > 1 { r } else { t };
    assert!(lost.len() >= 4, "{lost:?}");
    for (k, want) in [1.0, 2.0, 4.0].iter().enumerate() {
        let gap = lost[k + 1] - lost[k];
        assert!(
            gap >= *want && gap < want + 0.1,
            "gap {k}: {gap} in {lost:?}"
        );
    }
    assert!(w.ctl.stats().conflicts >= 3);
}

/// The per-item exponential limiter the controllers use: 1 s, 2 s, 4 s ... 30 s.
#[test]
fn certificate_rate_limiter_is_1s_to_30s() {
    let c = CertControllersConfig::default();
    let mut l = RateLimiter::item_exponential(c.queue_base, c.queue_max);
    let d: Vec<u64> = (0..7)
        .map(|_| l.when(1, SimTime::ZERO).as_nanos() / 1_000_000_000)
        .collect();
    assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30]);
}

/// Trigger's failed-issuance back-off: 1 h x 2^(n-1), capped at 32 h.
#[test]
fn failed_issuance_backoff_doubles_from_one_hour_to_32h() {
    let c = CertControllersConfig::default();
    let h = |n| failed_issuance_backoff(n, c.min_backoff, c.max_backoff).as_secs_f64() / 3600.0;
    assert_eq!(h(1), 1.0);
    assert_eq!(h(2), 2.0);
    assert_eq!(h(3), 4.0);
    assert_eq!(h(6), 32.0);
    assert_eq!(h(7), 32.0);
    assert_eq!(h(40), 32.0);
}

/// A failed CertificateRequest: the next attempt waits the hour, then succeeds.
#[test]
fn failed_issuance_waits_the_backoff_before_the_next_request() {
    let mut w = World::new(CertControllersConfig::default(), 1);
    w.fail_signs = 1;
    let sim = run(w, S(3 * 3600));
    let w = &sim.model;
    assert_eq!(w.ctl.stats().failed_issuances, 1);
    let t = w.ctl.ready_times()[0].expect("ready after the back-off");
    assert!(t >= S(3600), "{t}");
    assert!(t < S(3600 + 60), "{t}");
    let crs: Vec<SimTime> = w
        .submitted
        .iter()
        .filter(|s| s.2 == Write::CreateCr)
        .map(|s| s.0)
        .collect();
    assert_eq!(crs.len(), 2);
    assert!(crs[1] - crs[0] >= S(3600) - S(60));
}

/// Many Certificates: the shared 20 QPS / 50 burst bucket bounds the calls.
#[test]
fn throughput_is_bounded_by_the_client_bucket() {
    let n = 200;
    let sim = run(World::new(CertControllersConfig::default(), n), S(3600));
    let w = &sim.model;
    assert_eq!(w.ctl.ready(), n as usize);
    let calls = w.ctl.stats().calls;
    let last = w.ctl.all_ready_at().unwrap().as_secs_f64();
    // tokens: 50 at once, then 20/s
    assert!(last >= (calls as f64 - 50.0) / 20.0 - 1.0, "{last} {calls}");
    // and the calls per second never exceed burst + qps x t
    for (i, s) in w.submitted.iter().enumerate() {
        assert!((i as f64) <= 50.0 + 20.0 * s.0.as_secs_f64() + 1e-6);
    }
}

/// A 429 is retried by the client after Retry-After and the reconcile goes on.
#[test]
fn too_many_requests_is_retried_by_the_client() {
    let mut w = World::new(CertControllersConfig::default(), 1);
    w.reject = 3;
    let sim = run(w, S(120));
    let w = &sim.model;
    assert_eq!(w.ctl.ready(), 1);
    assert_eq!(w.ctl.stats().rejected, 3);
    assert_eq!(w.ctl.stats().errors, 0);
}

/// Same inputs, same sequence of calls.
#[test]
fn deterministic() {
    let a = run(World::new(CertControllersConfig::default(), 40), S(600));
    let b = run(World::new(CertControllersConfig::default(), 40), S(600));
    assert_eq!(a.model.submitted, b.model.submitted);
}
