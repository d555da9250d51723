//! What a run keeps to explain itself: the milestones of each cluster (first CSR
//! failure, first proxy kill, the drain that failed the upgrade and what blocked it, the
//! interventions that fired), always; and, only when asked (`run --events`,
//! `run --trace`), the Kubernetes-style event records and the trace's pod phase spans
//! and counters. Off, the event sink and the trace cost one branch each where they sit.
//!
//! Nothing here changes the model: no random draw, no event scheduled, so the trace hash
//! of a run is the same with or without `--events`/`--trace`.

use crate::engine::{Context, SimTime};
use crate::output::events::{EventLog, Kind, PodId};
use crate::output::trace;

use super::event::Event;
use super::fleet::Fleet;
use super::state::{Pod, PodPhase};

/// What a run is asked to record besides its figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recording {
    /// Event records for `--events`.
    pub events: bool,
    /// Phase spans and counters for `--trace`.
    pub trace: bool,
}

/// Pods of one workload left on the node that could not be drained.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocker {
    /// Workload index.
    pub workload: u32,
    /// Its pods left on the node.
    pub pods_left: u32,
    /// Its PDB's maxUnavailable, if it has a PDB.
    pub pdb_max_unavailable: Option<u32>,
    /// Its ready replicas when the limit struck.
    pub ready: u32,
    /// Its desired replicas.
    pub desired: u32,
}

/// The drain that failed a cluster's node upgrade (PodEvictionFailure).
#[derive(Debug, Clone, PartialEq)]
pub struct DrainFailure {
    /// When the limit struck.
    pub at: SimTime,
    /// Node index.
    pub node: u32,
    /// Node group index.
    pub group: u32,
    /// When the node was cordoned.
    pub cordoned_at: SimTime,
    /// The workloads whose pods were left, most pods first.
    pub blockers: Vec<Blocker>,
}

/// Firsts of one cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Milestones {
    /// First certificate request istiod gave up on.
    pub first_csr_timeout: Option<SimTime>,
    /// First agent attempt with no istiod ready.
    pub first_no_istiod: Option<SimTime>,
    /// First pod creation the injection webhook failed.
    pub first_webhook_failure: Option<SimTime>,
    /// First proxy killed without a certificate (the first crashloop).
    pub first_proxy_kill: Option<SimTime>,
    /// First istiod that exited at start-up without its serving certificate.
    pub first_istiod_exit: Option<SimTime>,
    /// The drain that failed the upgrade.
    pub drain_failure: Option<DrainFailure>,
    /// Evictions a PDB refused, per node and workload.
    pub refusals: Vec<Refusals>,
    /// The highest sampled count of crashlooping pods and the first sample time with it
    /// (kept here because a streamed run does not hold the clusters' samples).
    pub crashloop_sample_peak: Option<(u32, SimTime)>,
}

/// Evictions of one workload's pods from one node that its PDB refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusals {
    /// Node index.
    pub node: u32,
    /// Workload index.
    pub workload: u32,
    /// First refusal.
    pub first: SimTime,
    /// Last refusal.
    pub last: SimTime,
    /// Refusals (one per pod per drain retry).
    pub count: u64,
}

/// An intervention that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    /// When.
    pub at: SimTime,
    /// Its index in the scenario.
    pub index: u32,
}

/// One pod's phase spans, while traced.
#[derive(Debug, Clone, Copy)]
struct Open {
    serial: u32,
    workload: u32,
    phase: PodPhase,
    since: SimTime,
}

impl Open {
    /// The span, ended at `end`.
    fn closed(self, end: SimTime) -> RawSpan {
        RawSpan {
            pod: PodId {
                workload: self.workload,
                serial: self.serial,
            },
            phase: phase_name(self.phase),
            start: self.since,
            end,
        }
    }
}

/// A finished phase span of a traced pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSpan {
    /// The pod.
    pub pod: PodId,
    /// Phase name.
    pub phase: &'static str,
    /// Start.
    pub start: SimTime,
    /// End.
    pub end: SimTime,
}

/// A cluster's pod phase spans for `--trace`: a deterministic sample of pods (by a hash
/// of their serial), at most [`trace::MAX_PODS_PER_CLUSTER`].
#[derive(Debug, Clone, Default)]
pub struct PhaseTrace {
    cluster: u32,
    open: Vec<Option<Open>>,
    tracked: usize,
    spans: Vec<RawSpan>,
}

/// The trace's name of a phase.
pub fn phase_name(p: PodPhase) -> &'static str {
    match p {
        PodPhase::Free => "gone",
        PodPhase::Creating => "injecting",
        PodPhase::Pending => "pending",
        PodPhase::Starting => "starting",
        PodPhase::WaitingCert => "waiting for cert",
        PodPhase::Warming => "warming",
        PodPhase::Ready => "running",
        PodPhase::Backoff => "crashloop back-off",
        PodPhase::Terminating => "terminating",
    }
}

impl PhaseTrace {
    /// An empty trace of cluster `cluster`.
    pub fn new(cluster: u32) -> Self {
        PhaseTrace {
            cluster,
            ..PhaseTrace::default()
        }
    }

    /// Pod `slot` (now `pod`) enters `phase` at `now`.
    pub fn note(&mut self, now: SimTime, slot: u32, pod: &Pod, phase: PodPhase) {
        let i = slot as usize;
        if i >= self.open.len() {
            self.open.resize(i + 1, None);
        }
        let mut continuing = false;
        if let Some(o) = self.open[i].take() {
            if o.serial == pod.serial {
                continuing = true;
                self.spans.push(o.closed(now));
            }
        }
        if phase == PodPhase::Free {
            return;
        }
        let keep = if continuing {
            true
        } else if phase == PodPhase::Creating {
            // A new pod: in the sample, while there is room.
            let take = self.tracked < trace::MAX_PODS_PER_CLUSTER
                && trace::sampled(self.cluster, pod.serial);
            self.tracked += take as usize;
            take
        } else {
            false
        };
        if keep {
            self.open[i] = Some(Open {
                serial: pod.serial,
                workload: pod.workload.into(),
                phase,
                since: now,
            });
        }
    }

    /// A pod that exists when tracing starts, in `phase` since `now`.
    pub fn adopt(&mut self, now: SimTime, slot: u32, pod: &Pod) {
        let i = slot as usize;
        if i >= self.open.len() {
            self.open.resize(i + 1, None);
        }
        if pod.phase == PodPhase::Free
            || self.tracked >= trace::MAX_PODS_PER_CLUSTER
            || !trace::sampled(self.cluster, pod.serial)
        {
            return;
        }
        self.tracked += 1;
        self.open[i] = Some(Open {
            serial: pod.serial,
            workload: pod.workload.into(),
            phase: pod.phase,
            since: now,
        });
    }

    /// The spans, the open ones closed at `end`.
    pub fn finish(&mut self, end: SimTime) -> Vec<RawSpan> {
        for o in self.open.drain(..).flatten() {
            self.spans.push(o.closed(end));
        }
        std::mem::take(&mut self.spans)
    }
}

/// The fleet's journal.
#[derive(Debug, Clone, Default)]
pub struct Journal {
    /// Event records (`--events`).
    pub events: EventLog,
    /// Whether counters and spans are kept (`--trace`).
    pub trace: bool,
    /// Counter samples (`--trace`).
    pub counters: Vec<trace::Counter>,
    /// Per cluster.
    pub milestones: Vec<Milestones>,
    /// Interventions fired, in order.
    pub fired: Vec<Fired>,
}

impl Journal {
    /// A journal for `clusters` clusters.
    pub fn new(clusters: usize, rec: Recording) -> Self {
        Journal {
            events: EventLog::new(rec.events),
            trace: rec.trace,
            counters: Vec::new(),
            milestones: vec![Milestones::default(); clusters],
            fired: Vec::new(),
        }
    }
}

fn pod_id(f: &Fleet, cluster: u32, slot: u32) -> PodId {
    let p = &f.cluster(cluster).objects().pods[slot as usize];
    PodId {
        workload: p.workload.into(),
        serial: p.serial,
    }
}

/// Records an event of pod `slot` at `now` if events are recorded (off: one branch);
/// `kind` makes it from the fleet and the pod's id.
fn pod_event(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    slot: u32,
    kind: impl FnOnce(&Fleet, PodId) -> Kind,
) {
    if !f.journal().events.on() {
        return;
    }
    let kind = kind(f, pod_id(f, cluster, slot));
    f.journal_mut().events.push(now.as_nanos(), cluster, kind);
}

fn first(slot: &mut Option<SimTime>, now: SimTime) {
    if slot.is_none() {
        *slot = Some(now);
    }
}

/// The injection webhook failed a creation of `workload`'s ReplicaSet.
pub fn webhook_failed(f: &mut Fleet, now: SimTime, cluster: u32, workload: u32) {
    let no_endpoints = f.cluster(cluster).istiod().ready() == 0;
    let j = f.journal_mut();
    first(
        &mut j.milestones[cluster as usize].first_webhook_failure,
        now,
    );
    j.events.push(
        now.as_nanos(),
        cluster,
        Kind::WebhookFailed {
            workload,
            no_endpoints,
        },
    );
}

/// An istiod replica's containers started; it turns ready at `ready_at`.
pub fn istiod_starting(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    slot: u32,
    ready_at: SimTime,
    period: SimTime,
) {
    pod_event(f, now, cluster, slot, |f, pod| Kind::IstiodNotReady {
        pod,
        until_ns: ready_at.as_nanos(),
        period_ns: period.as_nanos(),
        // istiod opens its readiness listener only after the informers synced before
        // 1.16 (the probe is refused); from 1.16 it answers 503 (istio#40151).
        refused: f.spec(cluster).istiod.version.minor < 16,
    });
}

/// The starting istiod in pod `slot` exited without its serving certificate (CSR
/// `csr`); the kubelet starts it again at `restart_at`.
pub fn istiod_exited(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    slot: u32,
    csr: Option<u64>,
    restart_at: SimTime,
) {
    first(
        &mut f.journal_mut().milestones[cluster as usize].first_istiod_exit,
        now,
    );
    let kind = |pod| Kind::IstiodExited { pod, csr };
    container_gone(f, now, cluster, slot, kind, now, restart_at);
}

/// The agent's attempt failed (`failures` so far) and it waits `wait`.
pub fn agent_retry(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    slot: u32,
    failures: u32,
    wait: SimTime,
) {
    pod_event(f, now, cluster, slot, |f, pod| Kind::CaRetry {
        pod,
        failures,
        per_round: f.spec(cluster).agent.inner_attempts,
        wait_ns: wait.as_nanos(),
    });
}

/// No istiod replica was ready for an agent's attempt.
pub fn no_istiod(f: &mut Fleet, now: SimTime, cluster: u32) {
    first(
        &mut f.journal_mut().milestones[cluster as usize].first_no_istiod,
        now,
    );
}

/// istiod gave up on an agent's certificate request.
pub fn csr_timeout(f: &mut Fleet, now: SimTime, cluster: u32) {
    first(
        &mut f.journal_mut().milestones[cluster as usize].first_csr_timeout,
        now,
    );
}

/// The proxy of pod `slot` was killed without a certificate; it restarts at
/// `restart_at` (after CrashLoopBackOff when later than `killed_at`).
pub fn proxy_killed(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    slot: u32,
    startup_probe: bool,
    killed_at: SimTime,
    restart_at: SimTime,
) {
    first(
        &mut f.journal_mut().milestones[cluster as usize].first_proxy_kill,
        now,
    );
    let kind = |pod| Kind::ProxyKilled { pod, startup_probe };
    container_gone(f, now, cluster, slot, kind, killed_at, restart_at);
}

/// Records `kind` of pod `slot` at `now` if events are recorded (off: one branch) and,
/// when the kubelet holds the restart back (`restart_at` later than `gone_at`, the
/// container's end), its BackOff at `gone_at`.
fn container_gone(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    slot: u32,
    kind: impl FnOnce(PodId) -> Kind,
    gone_at: SimTime,
    restart_at: SimTime,
) {
    if !f.journal().events.on() {
        return;
    }
    let pod = pod_id(f, cluster, slot);
    let ev = &mut f.journal_mut().events;
    ev.push(now.as_nanos(), cluster, kind(pod));
    if restart_at > gone_at {
        ev.push(gone_at.as_nanos(), cluster, Kind::BackOff { pod });
    }
}

/// The signer recorded an event on a CSR.
pub fn csr_event(
    f: &mut Fleet,
    now: SimTime,
    cluster: u32,
    key: u64,
    warning: bool,
    reason: &'static str,
    message: &'static str,
) {
    f.journal_mut().events.push(
        now.as_nanos(),
        cluster,
        Kind::Csr {
            key,
            warning,
            reason,
            message,
        },
    );
}

/// The drain of `node` hit its limit: the upgrade fails. Call before the node is
/// uncordoned.
pub fn drain_failed(f: &mut Fleet, now: SimTime, cluster: u32, node: u32) {
    let s = f.cluster(cluster).objects();
    let n = &s.nodes[node as usize];
    let mut blockers: Vec<Blocker> = Vec::new();
    for &slot in &n.pods {
        let p = &s.pods[slot as usize];
        if p.phase == PodPhase::Terminating {
            continue;
        }
        match blockers
            .iter_mut()
            .find(|b| b.workload == u32::from(p.workload))
        {
            Some(b) => b.pods_left += 1,
            None => {
                let w = &s.workloads[p.workload as usize];
                blockers.push(Blocker {
                    workload: p.workload.into(),
                    pods_left: 1,
                    pdb_max_unavailable: w.pdb_max_unavailable,
                    ready: w.ready,
                    desired: w.desired,
                })
            }
        }
    }
    blockers.sort_by(|a, b| {
        b.pods_left
            .cmp(&a.pods_left)
            .then(a.workload.cmp(&b.workload))
    });
    let failure = DrainFailure {
        at: now,
        node,
        group: n.group,
        cordoned_at: n.cordoned_at,
        blockers,
    };
    let group = n.group;
    let j = f.journal_mut();
    let m = &mut j.milestones[cluster as usize];
    if m.drain_failure.is_none() {
        m.drain_failure = Some(failure);
    }
    j.events
        .push(now.as_nanos(), cluster, Kind::PodEvictionFailure { group });
}

/// The PDB of `workload` refused an eviction from draining `node`.
pub fn eviction_refused(f: &mut Fleet, now: SimTime, cluster: u32, node: u32, workload: u32) {
    let r = &mut f.journal_mut().milestones[cluster as usize].refusals;
    match r
        .iter_mut()
        .find(|x| x.node == node && x.workload == workload)
    {
        Some(x) => {
            x.last = now;
            x.count += 1;
        }
        None => r.push(Refusals {
            node,
            workload,
            first: now,
            last: now,
            count: 1,
        }),
    }
}

/// Intervention `index` fired.
pub fn intervention_fired(f: &mut Fleet, now: SimTime, index: u32) {
    f.journal_mut().fired.push(Fired { at: now, index });
}

/// At each sample with `--trace`: the counter tracks of every cluster.
pub fn sample_counters(f: &mut Fleet, ctx: &Context<Event>) {
    if !f.journal_mut().trace {
        return;
    }
    let now = ctx.now().as_nanos();
    let mut out = Vec::new();
    for (i, c) in f.clusters().iter().enumerate() {
        let cluster = i as u32;
        let k = c.objects().counts();
        let ca_queue = f.spec(cluster).ca.map_or(0.0, |ca| {
            let ca = f.ca(ca);
            (ca.queue_len() + ca.in_service() as u64) as f64
        });
        let csrs = c.cert().csrs().counts();
        for (name, value) in [
            ("pods ready", k.ready as f64),
            ("pods crashlooping", k.crashloop as f64),
            ("CA queue", ca_queue),
            (
                "apiserver seats in use",
                c.cert().api().seats_in_use_total() as f64,
            ),
            ("CSR flows in flight", c.cert().flows_in_flight() as f64),
            ("CSRs Failed", csrs.failed as f64),
            ("istiod ready", c.istiod().ready() as f64),
        ] {
            out.push(trace::Counter {
                cluster,
                name,
                at_ns: now,
                value,
            });
        }
    }
    f.journal_mut().counters.extend(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(serial: u32, phase: PodPhase) -> Pod {
        let mut p = Pod::default_for_tests();
        p.serial = serial;
        p.workload = 1;
        p.phase = phase;
        p
    }

    /// A serial in the sample.
    fn sampled_serial(cluster: u32) -> u32 {
        (0..).find(|&s| trace::sampled(cluster, s)).unwrap()
    }

    #[test]
    fn a_sampled_pod_gets_one_span_per_phase_and_a_reused_slot_starts_afresh() {
        let s = sampled_serial(0);
        let mut t = PhaseTrace::new(0);
        let at = SimTime::from_secs;
        t.note(at(1), 3, &pod(s, PodPhase::Creating), PodPhase::Creating);
        t.note(at(2), 3, &pod(s, PodPhase::Pending), PodPhase::Pending);
        t.note(
            at(5),
            3,
            &pod(s, PodPhase::WaitingCert),
            PodPhase::WaitingCert,
        );
        t.note(at(9), 3, &pod(s, PodPhase::Free), PodPhase::Free);
        // The slot's next pod, not in the sample: nothing more.
        let other = (s + 1..).find(|&x| !trace::sampled(0, x)).unwrap();
        t.note(
            at(10),
            3,
            &pod(other, PodPhase::Creating),
            PodPhase::Creating,
        );
        t.note(at(11), 3, &pod(other, PodPhase::Pending), PodPhase::Pending);
        let spans = t.finish(at(20));
        let got: Vec<(&str, u64, u64)> = spans
            .iter()
            .map(|x| {
                (
                    x.phase,
                    x.start.as_nanos() / 1_000_000_000,
                    x.end.as_nanos() / 1_000_000_000,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("injecting", 1, 2),
                ("pending", 2, 5),
                ("waiting for cert", 5, 9)
            ]
        );
    }

    #[test]
    fn open_spans_close_at_the_end_and_the_sample_is_capped() {
        let mut t = PhaseTrace::new(1);
        let sampled: Vec<u32> = (0..)
            .filter(|&s| trace::sampled(1, s))
            .take(trace::MAX_PODS_PER_CLUSTER + 5)
            .collect();
        for (slot, &s) in sampled.iter().enumerate() {
            t.note(
                SimTime::from_secs(1),
                slot as u32,
                &pod(s, PodPhase::Creating),
                PodPhase::Creating,
            );
        }
        let spans = t.finish(SimTime::from_secs(7));
        assert_eq!(spans.len(), trace::MAX_PODS_PER_CLUSTER);
        assert!(spans
            .iter()
            .all(|s| s.phase == "injecting" && s.end == SimTime::from_secs(7)));
    }
}
