//! istio-agent's certificate rotation in the fleet model
//! ([`crate::control::rotation::RotationPolicy`], the release's rule).
//!
//! - When a pod receives a certificate (first or rotated), its agent schedules the
//!   next rotation at `not_after - ratio x lifetime` (ratio 0.5, jittered ±0.01 from
//!   Istio 1.24; stream `rotation-jitter/{cluster}`). The lifetime is what the signer
//!   grants for `SECRET_TTL` 24 h: istio-csr caps it at
//!   `--max-client-certificate-duration` (1 h); istiod's CA and the CSR signers here
//!   grant the 24 h asked for.
//! - At that time a **ready** pod sends one `CreateCertificate` through the cluster's
//!   path (istiod's flow or istio-csr), counted in `csr_requests` like any other; a
//!   failure is retried with istio-agent's back-off while the old certificate is valid
//!   (and after: the pod keeps serving in this model; `cert_expired` counts it).
//! - Cost: a cluster's rotations wait in [`RotationTimers`] with one pending
//!   [`Event::RotationDue`] at the earliest, not one event per pod; none is kept when
//!   the rotation falls after the horizon — runs shorter than half a certificate
//!   lifetime keep nothing. Why: the pods Ready at time zero hold certificates of every
//!   age, so a 4 h run of 20 M pods starts with ~5 M rotations hours ahead; as events
//!   they were ~40 % of the pending set, moved bucket to bucket by the event queue as
//!   their time came nearer (at 2 000 clusters a fifth of the run's time). Their times
//!   are drawn at once, so they are sorted once and read in order.
//!
//! Order: a cluster's rotations run in (time, scheduling order), the order their own
//! events had. A rotation due at the same nanosecond as another event of the cluster
//! may run before or after it in a different order than a per-pod event would have
//! (times are drawn from continuous distributions: no shipped scenario has such a tie).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::control::rotation::{RotationPolicy, SECRET_TTL};
use crate::engine::{Context, SimTime};
use crate::scenario::CaMode;

use super::super::event::Event;
use super::super::fleet::Fleet;
use super::super::state::{PodPhase, PodRef};

/// A pod's rotation state.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rot {
    /// The container generation it is for (`u32::MAX`: none).
    gen: u32,
    /// A rotation request is out.
    out: bool,
    /// Failed attempts of the current rotation (saturating: 16 bits keep the state at
    /// 16 bytes a pod slot; the back-off is capped long before).
    failures: u16,
    /// The current certificate's expiry.
    not_after: SimTime,
    /// Its expiry was counted.
    expired: bool,
}

#[cfg(test)]
#[test]
fn a_pods_rotation_state_is_16_bytes() {
    // 22 M pod slots at 20 M pods: 8 bytes less a slot is ~170 MB less memory.
    assert_eq!(std::mem::size_of::<Rot>(), 16);
}

const NONE: Rot = Rot {
    gen: u32::MAX,
    out: false,
    failures: 0,
    not_after: SimTime::ZERO,
    expired: false,
};

/// A cluster's pending rotations (and their retries). See the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct RotationTimers {
    /// The rotations of the pods Ready at time zero, sorted by time (slot order among
    /// equal times), read from `next` on; freed when all are read.
    initial: Vec<(SimTime, PodRef)>,
    next: usize,
    /// Rotations scheduled since, by (time, `seq`).
    later: BinaryHeap<Reverse<(SimTime, u64, PodRef)>>,
    seq: u64,
    /// The time of the pending [`Event::RotationDue`], if one is.
    armed: Option<SimTime>,
    /// Its generation: an earlier rotation re-arms, and the event it replaces is stale.
    gen: u32,
}

impl RotationTimers {
    /// The earliest rotation: (time, from `initial`). Equal times: `initial` first (its
    /// events were all scheduled at time zero, before any later one).
    fn peek(&self) -> Option<(SimTime, PodRef, bool)> {
        let a = self.initial.get(self.next).map(|&(t, p)| (t, p, true));
        let b = self.later.peek().map(|Reverse((t, _, p))| (*t, *p, false));
        match (a, b) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }

    /// Removes and returns the earliest rotation if it is due at or before `now`.
    fn pop_due(&mut self, now: SimTime) -> Option<PodRef> {
        let (_, pod, initial) = self.peek().filter(|&(at, _, _)| at <= now)?;
        if initial {
            self.next += 1;
            if self.next == self.initial.len() {
                self.initial = Vec::new();
                self.next = 0;
            }
        } else {
            self.later.pop();
        }
        Some(pod)
    }

    /// Keeps a rotation scheduled after time zero (after the earlier ones at `at`).
    fn push_later(&mut self, at: SimTime, pod: PodRef) {
        self.seq += 1;
        self.later.push(Reverse((at, self.seq, pod)));
    }

    /// Prefetches the entries [`Self::peek`] reads (their addresses are at hand).
    #[inline]
    pub(crate) fn prefetch_head(&self) {
        if let Some(e) = self.initial.get(self.next) {
            crate::engine::prefetch(e);
        }
        if let Some(e) = self.later.peek() {
            crate::engine::prefetch(e);
        }
    }

    /// The slot of the earliest rotation (to prefetch).
    pub(crate) fn first_slot(&self) -> Option<u32> {
        self.peek().map(|(_, p, _)| p.slot)
    }
}

/// Keeps `pod`'s rotation at `at`, arming the cluster's timer if it is the earliest.
fn add(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, at: SimTime, pod: PodRef) {
    let t = &mut f.cluster_mut(cluster).cert_mut().timers;
    t.push_later(at, pod);
    if t.armed.is_none_or(|armed| at < armed) {
        arm(ctx, cluster, t, at);
    }
}

fn arm(ctx: &mut Context<Event>, cluster: u32, t: &mut RotationTimers, at: SimTime) {
    t.gen = t.gen.wrapping_add(1);
    t.armed = Some(at);
    ctx.schedule_at(
        at,
        Event::RotationDue {
            cluster,
            gen: t.gen,
        },
    );
}

/// The cluster's rotation timer: every rotation due now runs, then the timer moves to
/// the next one.
pub fn on_rotation_due(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, gen: u32) {
    let now = ctx.now();
    let t = &mut f.cluster_mut(cluster).cert_mut().timers;
    if t.gen != gen || t.armed != Some(now) {
        return; // replaced by an earlier one
    }
    // While due rotations run, retries they schedule (always later) do not re-arm.
    while let Some(pod) = f.cluster_mut(cluster).cert_mut().timers.pop_due(now) {
        on_rotate(f, ctx, cluster, pod);
    }
    let t = &mut f.cluster_mut(cluster).cert_mut().timers;
    t.armed = None;
    if let Some((at, _, _)) = t.peek() {
        arm(ctx, cluster, t, at);
        // The next rotation's pod is as cold as this one's was; its time is known now,
        // and a few hundred of the cluster's events run before it.
        f.cluster(cluster).prefetch_next_rotation();
    }
}

/// The lifetime a certificate of cluster `cluster` gets.
fn lifetime(f: &Fleet, cluster: u32) -> SimTime {
    let spec = f.spec(cluster);
    match spec.istiod.ca_mode {
        CaMode::IstioCsr => SECRET_TTL.min(spec.signer.max_certificate_duration),
        _ => SECRET_TTL,
    }
}

/// Pod `pod` received a certificate now: schedule its rotation (if within the horizon).
pub fn schedule_rotation(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let now = ctx.now();
    let horizon = f.scenario().horizon;
    let life = lifetime(f, cluster);
    let policy = RotationPolicy {
        ttl: SECRET_TTL,
        ..RotationPolicy::for_release(f.spec(cluster).istiod.version)
    };
    let not_after = now + life;
    let c = f.cluster_mut(cluster);
    let at = policy.rotate_at(now, now, not_after, c.rotation_rng());
    if at >= horizon {
        return;
    }
    let table = &mut c.cert_mut().rotating;
    let slot = pod.slot as usize;
    if table.len() <= slot {
        table.resize(slot + 1, NONE);
    }
    table[slot] = Rot {
        gen: pod.gen,
        out: false,
        failures: 0,
        not_after,
        expired: false,
    };
    add(f, ctx, cluster, at, pod);
}

fn current(f: &Fleet, cluster: u32, pod: PodRef) -> Option<Rot> {
    let s = f.cluster(cluster).objects();
    if !s.is_current(pod) || s.pods[pod.slot as usize].phase != PodPhase::Ready {
        return None;
    }
    f.cluster(cluster)
        .cert()
        .rotating
        .get(pod.slot as usize)
        .copied()
        .filter(|r| r.gen == pod.gen)
}

/// A pod's rotation (or its retry) is due: send the request.
fn on_rotate(f: &mut Fleet, ctx: &mut Context<Event>, cluster: u32, pod: PodRef) {
    let Some(r) = current(f, cluster, pod) else {
        return;
    };
    if r.out {
        return;
    }
    let replica = super::route_ca_request(f, cluster);
    f.cluster_mut(cluster).cert_mut().rotating[pod.slot as usize].out = true;
    match replica {
        None => {
            rotation_done(f, ctx, cluster, pod, false);
        }
        Some(replica) => super::start_flow(f, ctx, cluster, pod, replica),
    }
}

/// `pod`'s agent went away with its rotation in flight: the request is abandoned, not
/// failed (no retry; its flow's answer is then not taken for a rotation's).
pub(super) fn abandon(rotating: &mut [Rot], pod: PodRef) {
    if let Some(r) = rotating.get_mut(pod.slot as usize) {
        if r.gen == pod.gen {
            r.out = false;
        }
    }
}

/// The answer to a flow of `pod`: if it was a rotation, handle it and return true.
pub fn rotation_done(
    f: &mut Fleet,
    ctx: &mut Context<Event>,
    cluster: u32,
    pod: PodRef,
    ok: bool,
) -> bool {
    let Some(r) = current(f, cluster, pod) else {
        return false;
    };
    if !r.out {
        return false;
    }
    let now = ctx.now();
    let spec = f.spec(cluster);
    let c = f.cluster_mut(cluster);
    if ok {
        c.counters_mut().certs_issued += 1;
        let stats = &mut c.cert_mut().stats;
        stats.cert_rotations += 1;
        if now >= r.not_after && !r.expired {
            stats.cert_expired += 1;
        }
        c.cert_mut().rotating[pod.slot as usize].out = false;
        schedule_rotation(f, ctx, cluster, pod);
        return true;
    }
    c.counters_mut().csr_timeouts += 1;
    let failures = r.failures.saturating_add(1);
    let wait = c.agents_mut().retry_wait(&spec.agent, failures.into());
    let cp = c.cert_mut();
    let e = &mut cp.rotating[pod.slot as usize];
    e.out = false;
    e.failures = failures;
    if now >= e.not_after && !e.expired {
        e.expired = true;
        cp.stats.cert_expired += 1;
    }
    add(f, ctx, cluster, now + wait.max(SimTime(1)), pod);
    true
}

/// The pods Ready at time zero hold certificates of every age (a fleet in its steady
/// state: issue times spread evenly over a rotation period): each one's next rotation
/// falls at `U[0,1) x ratio x lifetime`, drawn from the cluster's `rotation-jitter`
/// stream; only those within the horizon are scheduled.
pub fn schedule_initial_rotations(f: &mut Fleet, ctx: &mut Context<Event>) {
    let horizon = f.scenario().horizon;
    for cluster in 0..f.cluster_count() {
        let life = lifetime(f, cluster);
        let ratio = RotationPolicy::for_release(f.spec(cluster).istiod.version).grace_ratio;
        let period = SimTime(life.as_nanos() - life.mul_f64(ratio).as_nanos());
        let c = f.cluster_mut(cluster);
        let n = c.objects().pods.len();
        let mut initial = Vec::new();
        for slot in 0..n {
            let p = &c.objects().pods[slot];
            if p.phase != PodPhase::Ready || !p.injected || p.workload == 0 {
                continue;
            }
            let gen = p.gen;
            let at = period.mul_f64(crate::engine::rng::unit_f64(c.rotation_rng()));
            if at >= horizon {
                continue;
            }
            let table = &mut c.cert_mut().rotating;
            if table.len() <= slot {
                table.resize(slot + 1, NONE);
            }
            let not_after = at + life.mul_f64(ratio);
            table[slot] = Rot {
                gen,
                out: false,
                failures: 0,
                not_after,
                expired: false,
            };
            let pod = PodRef {
                slot: slot as u32,
                gen,
            };
            initial.push((at, pod));
        }
        // Stable: equal times keep slot order, the order their events were scheduled in.
        initial.sort_by_key(|&(at, _)| at);
        let t = &mut c.cert_mut().timers;
        t.initial = initial;
        t.next = 0;
        if let Some((at, _, _)) = t.peek() {
            arm(ctx, cluster, t, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(slot: u32) -> PodRef {
        PodRef { slot, gen: 1 }
    }

    /// The timers give rotations in (time, scheduling order): the initial ones (sorted
    /// stably, so equal times keep slot order) before later ones at the same time.
    #[test]
    fn rotation_timers_pop_in_time_then_scheduling_order() {
        let s = SimTime::from_secs;
        let mut initial = vec![
            (s(5), pod(0)),
            (s(2), pod(1)),
            (s(5), pod(2)),
            (s(9), pod(3)),
        ];
        initial.sort_by_key(|&(at, _)| at);
        let mut t = RotationTimers {
            initial,
            ..RotationTimers::default()
        };
        for (at, slot) in [(s(5), 10), (s(1), 11), (s(5), 12)] {
            t.push_later(at, pod(slot));
        }
        assert_eq!(t.pop_due(SimTime::ZERO), None);
        let mut order = Vec::new();
        for now in [s(1), s(2), s(5), s(9)] {
            while let Some(p) = t.pop_due(now) {
                order.push((now.as_secs_f64() as u32, p.slot));
            }
        }
        assert_eq!(
            order,
            [(1, 11), (2, 1), (5, 0), (5, 2), (5, 10), (5, 12), (9, 3)]
        );
        assert!(
            t.peek().is_none() && t.initial.capacity() == 0,
            "read and freed"
        );
    }

    fn scenario(version: &str, horizon: &str) -> crate::scenario::Scenario {
        super::super::istio_csr_fleet(version, horizon, 100, "", "")
    }

    /// 1 h certificates (istio-csr's cap) rotate every 30 min (ratio 0.5): pods Ready at
    /// time zero rotate once within their first 30 min (`U[0,1) x 30 min`), then every
    /// 30 min (± 0.01 x 1 h = 36 s from 1.24) after their certificate arrived.
    #[test]
    fn rotation_every_half_lifetime_of_an_istio_csr_certificate() {
        for version in ["1.22.0", "1.24.0"] {
            // In 29 min: at most one rotation each (the second is >= 30 min - 36 s
            // after the first, itself >= 0).
            let out = super::super::super::run(&scenario(version, "29m"), 7, "h");
            let c = &out.summary.clusters[0].figures;
            assert!(c.cert_rotations <= 100, "{version}: {}", c.cert_rotations);
            assert!(c.cert_rotations >= 80, "{version}: {}", c.cert_rotations);
            // In 2 h 10 min: 4 full periods after the first: 4 or 5 each.
            let out = super::super::super::run(&scenario(version, "130m"), 7, "h");
            let c = &out.summary.clusters[0].figures;
            assert!(
                (400..=500).contains(&c.cert_rotations),
                "{version}: {}",
                c.cert_rotations
            );
            assert_eq!(c.cert_expired, 0);
            assert_eq!(c.csr_requests, c.cert_rotations, "nothing else asks");
        }
    }

    /// 24 h certificates (istiod's CA, `SECRET_TTL`) rotate after ~12 h: a 3 h run sees
    /// only the pods whose steady-state certificate was already old, about 3/12 of them.
    #[test]
    fn rotation_of_24h_certificates_in_a_short_run() {
        let mut sc = scenario("1.22.0", "3h");
        sc.clusters[0].istiod.ca_mode = crate::scenario::CaMode::Istiod;
        sc.clusters[0].ca = None;
        let out = super::super::super::run(&sc, 3, "h");
        let c = &out.summary.clusters[0].figures;
        assert!(
            (10..=45).contains(&c.cert_rotations),
            "{}",
            c.cert_rotations
        );
    }
}
