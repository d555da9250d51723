//! istiod as a component of its cluster: the ready replicas, each with its Kubernetes
//! client limiter (client-go's token bucket, QPS and burst), the injection webhook's
//! queue (injections are served one at a time per replica), and the replica count to
//! restore after an upgrade window.
//!
//! istiod's pods are workload 0 of the cluster's objects; this component tracks which
//! of them are ready and serving.

use crate::control::client::RestClient;
use crate::control::informers::{InformerSync, ReadinessProbe};
use crate::engine::{rng, RngStream, SimTime};
use crate::scenario::{IstiodCertProvider, IstiodSpec, WebhookSpec};

/// A ready istiod replica and its Kubernetes client (client-go's token bucket, QPS and
/// burst, shared by its CA server's calls and its informers).
#[derive(Debug, Clone)]
pub struct IstiodReplica {
    /// Its pod slot.
    slot: u32,
    /// client-go's REST client.
    client: RestClient,
}

impl IstiodReplica {
    /// Its pod slot.
    pub fn slot(&self) -> u32 {
        self.slot
    }
}

/// An istiod replica whose container runs but is not Ready: its informers list through
/// its client ([`crate::control::informers`]).
#[derive(Debug, Clone)]
pub struct StartingReplica {
    /// Its pod slot.
    pub slot: u32,
    /// Its container's generation (stale events carry another).
    pub gen: u32,
    /// When its container started (the readiness probe's clock).
    pub started: SimTime,
    /// client-go's REST client, kept when the replica turns Ready.
    pub client: RestClient,
    /// Which informers have listed.
    pub sync: InformerSync,
    /// Its serving certificate is in hand (always, with `PILOT_CERT_PROVIDER=istiod`).
    pub serving_cert: bool,
}

/// The control plane of one cluster.
#[derive(Debug, Clone)]
pub struct Istiod {
    replicas: Vec<IstiodReplica>,
    /// Replicas started and not yet Ready.
    starting: Vec<StartingReplica>,
    /// Its `istiod-reflector` stream: the reflectors' back-off jitter.
    reflector: RngStream,
    /// Readiness-probe failures of replicas that are gone or Ready.
    probe_failures: u64,
    /// Its `istiod-pick` stream: which replica an agent's request goes to.
    pick: RngStream,
    /// When the webhook's injection queue is free again.
    inject_free_at: SimTime,
    /// Replicas to restore after the upgrade window.
    restore: Option<u32>,
}

impl Istiod {
    /// No replica ready yet; `pick` is the cluster's `istiod-pick` stream, `reflector` its
    /// `istiod-reflector` stream.
    pub fn new(pick: RngStream, reflector: RngStream) -> Self {
        Istiod {
            replicas: Vec::new(),
            starting: Vec::new(),
            reflector,
            probe_failures: 0,
            pick,
            inject_free_at: SimTime::ZERO,
            restore: None,
        }
    }

    /// Ready replicas.
    pub fn ready(&self) -> usize {
        self.replicas.len()
    }

    /// The replica in pod `slot` became ready: the client it started with (its informers'
    /// tokens spent), or a full client limiter (at time zero).
    pub fn add_ready(&mut self, slot: u32, spec: &IstiodSpec, _now: SimTime) {
        let client = match self.starting.iter().position(|r| r.slot == slot) {
            Some(i) => self.starting.swap_remove(i).client,
            None => RestClient::client_go(spec.client_qps, spec.client_burst),
        };
        self.replicas.push(IstiodReplica { slot, client });
    }

    /// The replica in pod `slot` (container generation `gen`) started at `now` with
    /// `informers` to list and a full client limiter.
    pub fn add_starting(
        &mut self,
        slot: u32,
        gen: u32,
        spec: &IstiodSpec,
        now: SimTime,
        informers: usize,
    ) {
        self.starting.retain(|r| r.slot != slot);
        self.starting.push(StartingReplica {
            slot,
            gen,
            started: now,
            client: RestClient::client_go(spec.client_qps, spec.client_burst),
            sync: InformerSync::new(informers),
            serving_cert: spec.cert_provider == IstiodCertProvider::Istiod,
        });
    }

    /// The starting replica in pod `slot` at container generation `gen`.
    pub fn starting_mut(&mut self, slot: u32, gen: u32) -> Option<&mut StartingReplica> {
        self.starting
            .iter_mut()
            .find(|r| r.slot == slot && r.gen == gen)
    }

    /// A draw in [0, 1) from the reflectors' jitter stream.
    pub fn reflector_unit(&mut self) -> f64 {
        rng::unit_f64(&mut self.reflector)
    }

    /// Adds readiness-probe failures of a replica that turned Ready.
    pub fn note_probe_failures(&mut self, n: u64) {
        self.probe_failures += n;
    }

    /// Readiness-probe failures so far: those noted, plus those of the replicas still
    /// starting at `now` (`probe` is the istiod container's readiness probe).
    pub fn probe_failures_at(&self, now: SimTime, probe: &ReadinessProbe) -> u64 {
        self.probe_failures
            + self
                .starting
                .iter()
                .map(|r| probe.failures_until(r.started, now))
                .sum::<u64>()
    }

    /// Replicas started and not yet Ready.
    pub fn starting(&self) -> usize {
        self.starting.len()
    }

    /// The REST client of the replica in pod `slot`, ready or starting.
    pub fn client_mut(&mut self, slot: u32) -> Option<&mut RestClient> {
        match self.replicas.iter().position(|r| r.slot == slot) {
            Some(i) => Some(&mut self.replicas[i].client),
            None => self
                .starting
                .iter_mut()
                .find(|r| r.slot == slot)
                .map(|r| &mut r.client),
        }
    }

    /// The replica in pod `slot` is gone at `now` (ready or starting; a starting one's
    /// failed probes are kept).
    pub fn remove(&mut self, slot: u32, now: SimTime, probe: &ReadinessProbe) {
        self.replicas.retain(|r| r.slot != slot);
        if let Some(i) = self.starting.iter().position(|r| r.slot == slot) {
            let r = self.starting.swap_remove(i);
            self.probe_failures += probe.failures_until(r.started, now);
        }
    }

    /// A ready replica chosen uniformly with one draw from the pick stream, if any is
    /// ready.
    pub fn pick(&mut self) -> Option<&mut IstiodReplica> {
        let n = self.replicas.len();
        if n == 0 {
            return None;
        }
        let i = ((rng::unit_f64(&mut self.pick) * n as f64) as usize).min(n - 1);
        Some(&mut self.replicas[i])
    }

    /// One of `n` endpoints of another Service the agents call (istio-csr), drawn from
    /// the same `istiod-pick` stream (kube-proxy's random backend per connection).
    pub fn pick_endpoint(&mut self, n: usize) -> usize {
        ((rng::unit_f64(&mut self.pick) * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// The injection webhook's answer for a pod created `now`: when, and whether it
    /// succeeded. No ready replica: "no endpoints available" after 1 ms. Otherwise the
    /// pod waits for the injection queue (each injection takes `injection_time` split
    /// over the ready replicas) and fails at the webhook's timeout if that is too slow.
    pub fn inject(&mut self, now: SimTime, webhook: &WebhookSpec) -> (SimTime, bool) {
        let replicas = self.replicas.len() as u64;
        match webhook.injection_time.as_nanos().checked_div(replicas) {
            None => (now + SimTime::from_millis(1), false),
            Some(per) => {
                let start = self.inject_free_at.max(now);
                let done = start + SimTime(per);
                self.inject_free_at = done;
                if done.saturating_sub(now) > webhook.timeout {
                    (now + webhook.timeout, false)
                } else {
                    (done, true)
                }
            }
        }
    }

    /// Whether a count to restore after the upgrade window is set.
    pub fn restoring(&self) -> bool {
        self.restore.is_some()
    }

    /// Sets the count to restore after the upgrade window.
    pub fn set_restore(&mut self, replicas: u32) {
        self.restore = Some(replicas);
    }

    /// The count to restore, cleared.
    pub fn take_restore(&mut self) -> Option<u32> {
        self.restore.take()
    }
}
