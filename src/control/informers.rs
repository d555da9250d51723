//! istiod's start-up as its source decides readiness: the informers it lists before
//! `/ready` answers 200, client-go's reflector back-off when a LIST fails, and the
//! kubelet's readiness probe that turns "synced" into a Ready pod (and an endpoint of
//! the `istiod` Service, which the injection webhook needs).
//!
//! Sources (istio/istio 1.15.0 unless said):
//! - `pilot/pkg/bootstrap/server.go`: `Start` runs the start functions (the last one is
//!   `kubeClient.RunAndWait`: every informer registered is started and waited for), then
//!   `waitForCacheSync` (`cachesSynced`: the kube registry, the config controller) and
//!   only then `XDSServer.CachesSynced()`; the readiness probe `discovery` is
//!   `IsServerReady()`. On 1.15 the admin listener (:8080, `/ready`) itself opens only
//!   after the sync, so the kubelet's probe fails with "connection refused"; from 1.16
//!   (istio#40151, "start admin interface earlier") it answers 503 until the sync.
//! - `pilot/pkg/serviceregistry/kube/controller/controller.go` `HasSynced`: namespaces,
//!   services, endpoint slices, pods, nodes (plus MCS exports/imports, off by default).
//! - `pilot/pkg/config/kube/crdclient`: one informer per Istio config type that
//!   `cachesSynced` waits for (14 on 1.15: VirtualService, DestinationRule, Gateway,
//!   ServiceEntry, WorkloadEntry, WorkloadGroup, Sidecar, EnvoyFilter,
//!   AuthorizationPolicy, PeerAuthentication, RequestAuthentication, Telemetry,
//!   ProxyConfig, WasmPlugin).
//! - `pilot/pkg/bootstrap/certcontroller.go` `initDNSCerts`: istiod's own serving
//!   certificate (webhook, xDS on 15012) comes from the Kubernetes CSR API only with
//!   `PILOT_CERT_PROVIDER=kubernetes` or `k8s.io/<signer>`; the default (`istiod`,
//!   `pilot/pkg/features/pilot.go`) signs it in process, also in
//!   `EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API` mode. So by default it does not queue behind
//!   the workload CSRs; it is not modelled.
//! - kubernetes/client-go `tools/cache/reflector.go`: the initial LIST is
//!   `resourceVersion=0` (served from the watch cache, all objects in one reply); a
//!   failed `ListAndWatch` is retried by `wait.BackoffUntil` with
//!   `NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)`: 0.8 s doubling to a
//!   30 s cap, each wait times `1 + U[0,1)` (jitter 1.0: "backoff will stop at [30,60)
//!   sec"), reset when the last back-off began more than 2 min ago
//!   (`apimachinery/pkg/util/wait` `exponentialBackoffManagerImpl`, `Backoff.Step`).
//! - The istio-discovery chart's `readinessProbe`: `/ready` :8080, initialDelaySeconds
//!   1, periodSeconds 3, timeoutSeconds 5, failureThreshold 3; a container is Ready after
//!   one success (successThreshold 1) and its pod joins the Service's endpoints.
//!
//! # Model
//! The object counts a LIST returns come from the cluster's shape: every pod and node,
//! and — the model has no Service or Namespace objects — one Service, one EndpointSlice
//! and one namespace per workload plus the system ones ([`ClusterShape`]). Each LIST
//! costs one token of the replica's client-go limiter (shared with its CA server) and
//! its APF seats (`ceil(stored / 100)`, capped) and service time at the apiserver.

use crate::control::apiserver::Resource;
use crate::engine::SimTime;

/// Namespaces every cluster has beside the workloads' (default, kube-system,
/// kube-public, kube-node-lease, istio-system).
pub const SYSTEM_NAMESPACES: u64 = 5;
/// Services every cluster has beside the workloads' (kubernetes, kube-dns, istiod).
pub const SYSTEM_SERVICES: u64 = 3;
/// Istio config types istiod 1.15 lists at start (crdclient).
pub const ISTIO_CONFIG_TYPES: u32 = 14;

/// What istiod's informers will list in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterShape {
    /// Pods (all namespaces).
    pub pods: u64,
    /// Nodes.
    pub nodes: u64,
    /// Workloads (each with a Service and a namespace in the model).
    pub workloads: u64,
}

/// One informer's initial LIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InformerList {
    /// What APF sees of the resource.
    pub resource: Resource,
    /// Objects stored (and returned: `resourceVersion=0` returns them all).
    pub objects: u64,
}

/// The informers `cachesSynced` / `RunAndWait` wait for, in registration order.
pub fn istiod_informers(shape: ClusterShape) -> Vec<InformerList> {
    let list = |resource, objects| InformerList { resource, objects };
    let mut v = vec![
        list(Resource::Other, shape.workloads + SYSTEM_NAMESPACES), // namespaces
        list(Resource::Other, shape.workloads + SYSTEM_SERVICES),   // services
        list(Resource::Other, shape.workloads + SYSTEM_SERVICES),   // endpointslices
        list(Resource::Other, shape.pods),                          // pods
        list(Resource::Nodes, shape.nodes),                         // nodes
    ];
    v.extend((0..ISTIO_CONFIG_TYPES).map(|_| list(Resource::Other, 0)));
    v
}

/// client-go's reflector back-off (`exponentialBackoffManagerImpl` over
/// `wait.Backoff{800ms, factor 2, jitter 1.0, cap 30s}`, reset after 2 min).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReflectorBackoff {
    /// The next un-jittered wait.
    duration: SimTime,
    /// When the last back-off began (`None`: never).
    last_start: Option<SimTime>,
}

/// The reflector's first wait.
pub const REFLECTOR_INITIAL: SimTime = SimTime::from_millis(800);
/// The reflector's cap.
pub const REFLECTOR_CAP: SimTime = SimTime::from_secs(30);
/// Quiet time after which the back-off starts over.
pub const REFLECTOR_RESET: SimTime = SimTime::from_secs(120);

impl Default for ReflectorBackoff {
    fn default() -> Self {
        ReflectorBackoff {
            duration: REFLECTOR_INITIAL,
            last_start: None,
        }
    }
}

impl ReflectorBackoff {
    /// The wait after a failed LIST at `now`; `unit` is a draw in [0, 1) (jitter 1.0).
    pub fn next(&mut self, now: SimTime, unit: f64) -> SimTime {
        if self
            .last_start
            .is_some_and(|t| now.saturating_sub(t) > REFLECTOR_RESET)
        {
            self.duration = REFLECTOR_INITIAL;
        }
        self.last_start = Some(now);
        let d = self.duration;
        self.duration = self.duration.mul_f64(2.0).min(REFLECTOR_CAP);
        d + d.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// The kubelet's readiness probe of istiod's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessProbe {
    /// `initialDelaySeconds` (1 s).
    pub initial_delay: SimTime,
    /// `periodSeconds` (3 s).
    pub period: SimTime,
}

impl Default for ReadinessProbe {
    fn default() -> Self {
        ReadinessProbe {
            initial_delay: SimTime::from_secs(1),
            period: SimTime::from_secs(3),
        }
    }
}

impl ReadinessProbe {
    /// For a container started at `started` whose `/ready` turns 200 at `synced`: the
    /// first probe that succeeds (the pod turns Ready then) and how many failed before.
    pub fn first_success(&self, started: SimTime, synced: SimTime) -> (SimTime, u64) {
        let first = started + self.initial_delay;
        if synced <= first {
            return (first, 0);
        }
        let period = self.period.as_nanos().max(1);
        let k = (synced - first).as_nanos().div_ceil(period);
        (first + SimTime(k * period), k)
    }

    /// Probes that failed between `started` and `until` for a container not yet synced.
    pub fn failures_until(&self, started: SimTime, until: SimTime) -> u64 {
        let first = started + self.initial_delay;
        if until < first {
            return 0;
        }
        (until - first).as_nanos() / self.period.as_nanos().max(1) + 1
    }
}

/// One starting replica's informers: which have listed.
#[derive(Debug, Clone, PartialEq)]
pub struct InformerSync {
    listed: Vec<bool>,
    backoff: Vec<ReflectorBackoff>,
    left: usize,
}

impl InformerSync {
    /// `n` informers, none listed.
    pub fn new(n: usize) -> Self {
        InformerSync {
            listed: vec![false; n],
            backoff: vec![ReflectorBackoff::default(); n],
            left: n,
        }
    }

    /// Informer `i` listed; true when that made every informer synced.
    pub fn listed(&mut self, i: usize) -> bool {
        if !std::mem::replace(&mut self.listed[i], true) {
            self.left -= 1;
            return self.left == 0;
        }
        false
    }

    /// Informer `i`'s LIST failed at `now`: when its reflector lists again.
    pub fn failed(&mut self, i: usize, now: SimTime, unit: f64) -> SimTime {
        now + self.backoff[i].next(now, unit)
    }

    /// Every informer listed.
    pub fn synced(&self) -> bool {
        self.left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> SimTime = SimTime::from_millis;

    #[test]
    fn informer_set_is_the_1_15_kube_registry_plus_crdclient() {
        let v = istiod_informers(ClusterShape {
            pods: 1240,
            nodes: 34,
            workloads: 7,
        });
        assert_eq!(v.len(), 5 + 14);
        assert_eq!(v[3].objects, 1240, "pods, all namespaces");
        assert_eq!(
            v[4],
            InformerList {
                resource: Resource::Nodes,
                objects: 34
            }
        );
        assert_eq!(v[0].objects, 12, "7 workload namespaces + 5 system ones");
        assert!(v[5..].iter().all(|l| l.objects == 0));
    }

    #[test]
    fn reflector_backoff_doubles_from_800ms_to_a_30s_cap_with_jitter_1() {
        let mut b = ReflectorBackoff::default();
        let mut t = SimTime::ZERO;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let w = b.next(t, 0.0);
            waits.push(w.as_nanos() / 1_000_000);
            t = t + w;
        }
        assert_eq!(
            waits,
            vec![800, 1600, 3200, 6400, 12800, 25600, 30000, 30000]
        );
        // Jitter 1.0: the wait lies in [d, 2d); at the cap in [30, 60) s.
        let w = b.next(t, 0.999);
        assert!(
            w >= SimTime::from_secs(30) && w < SimTime::from_secs(60),
            "{w:?}"
        );
    }

    #[test]
    fn reflector_backoff_resets_after_two_quiet_minutes() {
        let mut b = ReflectorBackoff::default();
        assert_eq!(b.next(SimTime::ZERO, 0.0), MS(800));
        assert_eq!(b.next(SimTime::from_secs(1), 0.0), MS(1600));
        // 120 s since the last back-off began: not yet reset (strictly more than).
        assert_eq!(b.next(SimTime::from_secs(121), 0.0), MS(3200));
        assert_eq!(b.next(SimTime::from_secs(242), 0.0), MS(800));
    }

    #[test]
    fn readiness_probe_succeeds_at_the_first_tick_after_sync() {
        let p = ReadinessProbe::default();
        let s = SimTime::from_secs(100);
        // Synced before the first probe (1 s): Ready at 101 s, no failure.
        assert_eq!(p.first_success(s, s + MS(500)), (s + MS(1000), 0));
        // Synced at 7.5 s: probes at 1, 4, 7 fail, 10 succeeds.
        assert_eq!(p.first_success(s, s + MS(7500)), (s + MS(10_000), 3));
        // Synced exactly on a tick: that probe succeeds.
        assert_eq!(p.first_success(s, s + MS(7000)), (s + MS(7000), 2));
        assert_eq!(p.failures_until(s, s + MS(999)), 0);
        assert_eq!(p.failures_until(s, s + MS(7000)), 3);
    }

    #[test]
    fn sync_needs_every_informer_once() {
        let mut s = InformerSync::new(3);
        assert!(!s.listed(0));
        assert!(!s.listed(0), "a repeat does not count");
        assert!(!s.listed(2));
        assert!(!s.synced());
        assert!(s.listed(1));
        assert!(s.synced());
        let mut s = InformerSync::new(1);
        assert_eq!(s.failed(0, SimTime::from_secs(5), 0.5), MS(6200));
    }
}
