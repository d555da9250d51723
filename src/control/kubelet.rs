//! The kubelet's container restart back-off (CrashLoopBackOff), and how istio-proxy gets
//! killed when its certificate never comes.
//!
//! Sources: kubernetes/client-go v0.33.0 `util/flowcontrol/backoff.go` (see
//! [`Backoff`]); kubernetes/kubernetes `pkg/kubelet/kubelet.go` (stored copies: 10 s /
//! 300 s, `HasExpiredFunc` fixed at 600 s from 1.32, KEP-4603 `reducedInitial` 1 s /
//! `reducedMax` 60 s from 1.33 behind `ReduceDefaultCrashLoopBackOffDecay`, alpha, off),
//! `pkg/kubelet/kuberuntime/kuberuntime_manager.go` (`doBackOff`,
//! `computePodActions`), `pkg/kubelet/pod_workers.go` (requeue after a failed sync:
//! `wait.Jitter(backOffPeriod = 10 s, 0.5)`, read in copies of the file and in
//! openshift/kubernetes release-4.8 `kubelet.go:162-165`); istio/istio
//! `manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`
//! (startupProbe from 1.20.0, 4a7831a2972), `pilot/cmd/pilot-agent/app/wait.go`
//! (`pilot-agent wait`: 60 s), `pkg/config/mesh/mesh.go` (`terminationDrainDuration` 5 s).
//!
//! # The back-off ([`RestartBackoff`])
//! One `flowcontrol.Backoff` entry per container: initial 10 s, max 300 s; the entry
//! expires when `eventTime - lastUpdate > 600 s` (2 x max before 1.32, fixed 600 s
//! from 1.32: the same with the defaults); KEP-4603 (a flag, off): 1 s / 60 s. When the
//! kubelet syncs a pod whose container must be (re)started, `doBackOff` looks at the
//! **last exited instance** of that container: none -> start (no `Next`); in back-off
//! since its `FinishedAt` -> do not start (waiting reason `CrashLoopBackOff`, event
//! `BackOff` `Back-off restarting failed container istio-proxy in pod ...`); else `Next`
//! and start.
//!
//! Two ways in:
//! - **Exit** ([`RestartBackoff::exited`]): the container exited by itself or was
//!   killed after its postStart hook failed. The next sync sees it exited: it restarts
//!   once `backoff` has passed since `FinishedAt` (10, 20, 40, ... 300 s), or at once if
//!   the entry expired (the container ran > 600 s since the last `Next`).
//! - **Probe kill** ([`RestartBackoff::probe_kill`]): a startup (or liveness) probe
//!   failure puts the container in `ContainersToKill` **and** `ContainersToStart` of one
//!   sync; the kill is synchronous and the start uses the pre-kill status, so
//!   `doBackOff` looks at the instance *before* the one just killed. A proxy killed
//!   every ~600 s by the startup probe therefore restarts at once every time (its
//!   previous exit is ~600 s old, longer than any back-off): Running with restarts,
//!   never the CrashLoopBackOff waiting state.
//!
//! When a sync finds the container in back-off it fails and the pod worker syncs again
//! after `wait.Jitter(10 s, 0.5)` = U[10 s, 15 s) ([`SyncRequeue::WorkerBackoff`]); the
//! restart happens at the first sync after the back-off ends, so waits are quantised.
//! Newer kubelets requeue at the back-off's end (`MinBackoffExpiration`; the release is
//! **unconfirmed**): [`SyncRequeue::AtBackoffExpiry`]. The first sync after an exit is
//! taken to be immediate (PLEG's 1 s relist is not modelled).
//!
//! # Kill paths of istio-proxy ([`ProxyKillPath`])
//! The proxy never exits for a missing certificate. It is killed only by:
//! - `holdApplicationUntilProxyStarts` (default off, any release, not with native
//!   sidecars): postStart `pilot-agent wait` polls `/healthz/ready` for 60 s, then
//!   fails; the kubelet kills the container (the **exit** path), app containers never
//!   start;
//! - the sidecar startupProbe (1.20+, on by default: period 1 s, failureThreshold 600):
//!   killed after 600 s (the **probe kill** path); 1.19 native sidecars reuse the
//!   readiness values (period 2 s x 30 + 1 s delay = 61 s);
//! - else nothing: Running and NotReady for ever (1.19 and older without hold).
//!
//! A kill sends SIGTERM; the agent drains `terminationDrainDuration` (5 s), logs
//! `Aborting proxy` and exits.

use super::client::{Backoff, BackoffExpiry};
use super::version::{IstioVersion, KubeVersion};
use crate::engine::rng::unit_f64;
use crate::engine::{RngStream, SimTime};

/// How the pod worker schedules the next sync after a back-off error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncRequeue {
    /// `wait.Jitter(period, jitter)`: `period x (1 + U[0,1) x jitter)` (10 s, 0.5).
    WorkerBackoff {
        /// `backOffPeriod` (10 s).
        period: SimTime,
        /// `workerBackOffPeriodJitterFactor` (0.5).
        jitter: f64,
    },
    /// Exactly when the back-off ends (newer kubelets; release unconfirmed).
    AtBackoffExpiry,
}

impl Default for SyncRequeue {
    fn default() -> Self {
        SyncRequeue::WorkerBackoff {
            period: SimTime::from_secs(10),
            jitter: 0.5,
        }
    }
}

/// The kubelet's restart back-off settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KubeletConfig {
    /// The kubelet's release.
    pub version: KubeVersion,
    /// KEP-4603 `ReduceDefaultCrashLoopBackOffDecay` (1 s / 60 s); alpha, off.
    pub reduced_crashloop_backoff: bool,
    /// `maxContainerRestartPeriod` (`KubeletCrashLoopBackOffMax`, 1 ... 300 s), if set.
    pub max_container_restart_period: Option<SimTime>,
    /// Requeue after a back-off error.
    pub sync: SyncRequeue,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            version: KubeVersion::new(33),
            reduced_crashloop_backoff: false,
            max_container_restart_period: None,
            sync: SyncRequeue::default(),
        }
    }
}

impl KubeletConfig {
    /// (initial, max, expiry) of the back-off.
    pub fn backoff_params(&self) -> (SimTime, SimTime, BackoffExpiry) {
        let (mut base, mut max) = if self.reduced_crashloop_backoff {
            (SimTime::from_secs(1), SimTime::from_secs(60))
        } else {
            (SimTime::from_secs(10), SimTime::from_secs(300))
        };
        if let Some(m) = self.max_container_restart_period {
            max = m;
            base = base.min(m);
        }
        let expiry = if self.version.kubelet_fixed_backoff_expiry() {
            BackoffExpiry::After(SimTime::from_secs(600))
        } else {
            BackoffExpiry::TwiceMax
        };
        (base, max, expiry)
    }

    /// Checks the fields.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.reduced_crashloop_backoff && !self.version.has_reduced_crashloop_gate() {
            return Err(format!(
                "{prefix}.reduced_crashloop_backoff: the ReduceDefaultCrashLoopBackOffDecay gate exists from Kubernetes 1.33, got {}",
                self.version
            ));
        }
        if let Some(m) = self.max_container_restart_period {
            if m < SimTime::from_secs(1) || m > SimTime::from_secs(300) {
                return Err(format!(
                    "{prefix}.max_container_restart_period: must be 1s ... 300s, got {m}"
                ));
            }
        }
        Ok(())
    }
}

/// What a sync does with a container that should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDecision {
    /// Start it now.
    Start,
    /// In back-off (waiting reason `CrashLoopBackOff`); the pod worker syncs again at
    /// `next_sync`.
    BackOff {
        /// When the back-off ends.
        until: SimTime,
        /// When the next sync runs.
        next_sync: SimTime,
    },
}

/// One container's restart bookkeeping on its kubelet.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartBackoff {
    config: KubeletConfig,
    backoff: Backoff,
    /// `FinishedAt` of the last exited instance.
    last_exit: Option<SimTime>,
    restarts: u32,
    backoff_events: u32,
}

/// The key of the container's entry (one entry per `RestartBackoff`).
const KEY: u64 = 0;

impl RestartBackoff {
    /// A container that has not exited yet.
    pub fn new(config: KubeletConfig) -> RestartBackoff {
        let (initial, max, expiry) = config.backoff_params();
        RestartBackoff {
            config,
            backoff: Backoff::new(initial, max, expiry),
            last_exit: None,
            restarts: 0,
            backoff_events: 0,
        }
    }

    /// Restarts so far (the pod's `restartCount`).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// `BackOff` events emitted so far.
    pub fn backoff_events(&self) -> u32 {
        self.backoff_events
    }

    /// The current back-off (zero before the first `Next`).
    pub fn current_backoff(&self) -> SimTime {
        self.backoff.get(KEY)
    }

    /// The container exited (by itself, or killed after a failed postStart hook) at
    /// `finished_at`.
    pub fn exited(&mut self, finished_at: SimTime) {
        self.last_exit = Some(finished_at);
    }

    /// `doBackOff` for a start at `now`, looking at the last exited instance.
    fn do_backoff(&mut self, now: SimTime) -> Option<SimTime> {
        let ts = self.last_exit?;
        if self.backoff.is_in_backoff_since(KEY, ts, now) {
            return Some(ts + self.backoff.get(KEY));
        }
        self.backoff.next(KEY, ts, now);
        None
    }

    /// A sync at `now` of the exited container: start it, or report the back-off and
    /// when the pod worker syncs again (`rng`: the kubelet's requeue jitter stream).
    pub fn sync(&mut self, now: SimTime, rng: &mut RngStream) -> SyncDecision {
        match self.do_backoff(now) {
            None => {
                self.restarts += 1;
                SyncDecision::Start
            }
            Some(until) => {
                self.backoff_events += 1;
                let next_sync = match self.config.sync {
                    SyncRequeue::WorkerBackoff { period, jitter } => {
                        now + period.mul_f64(1.0 + unit_f64(rng) * jitter)
                    }
                    SyncRequeue::AtBackoffExpiry => until.max(now),
                };
                SyncDecision::BackOff { until, next_sync }
            }
        }
    }

    /// The time the container starts again after exiting at `finished_at`: the syncs
    /// that follow, folded (the first one at `finished_at`).
    pub fn restart_after_exit(&mut self, finished_at: SimTime, rng: &mut RngStream) -> SimTime {
        self.exited(finished_at);
        let mut now = finished_at;
        loop {
            match self.sync(now, rng) {
                SyncDecision::Start => return now,
                SyncDecision::BackOff { next_sync, .. } => now = next_sync,
            }
        }
    }

    /// A probe kill decided at `now` whose kill completes at `killed_at`: killed and
    /// started in one sync with the pre-kill status. Returns when it starts again, or
    /// `None` if the previous exit still holds it in back-off (then the killed instance
    /// is the last exit, and the owner syncs again with [`sync`](Self::sync)).
    pub fn probe_kill(&mut self, now: SimTime, killed_at: SimTime) -> Option<SimTime> {
        let decision = self.do_backoff(now);
        self.last_exit = Some(killed_at);
        match decision {
            None => {
                self.restarts += 1;
                Some(killed_at)
            }
            Some(_) => {
                self.backoff_events += 1;
                None
            }
        }
    }
}

/// The event message of a sync in back-off.
pub fn backoff_message(container: &str, pod: &str) -> String {
    format!("Back-off restarting failed container {container} in pod {pod}")
}

/// `terminationDrainDuration`: SIGTERM to exit of istio-proxy.
pub const TERMINATION_DRAIN: SimTime = SimTime::from_secs(5);

/// What kills an istio-proxy that never gets its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKillPath {
    /// postStart `pilot-agent wait` fails after `after`; the kubelet kills the container
    /// (exit path, CrashLoopBackOff); app containers never start.
    PostStartTimeout {
        /// `--timeoutSeconds` (60 s).
        after: SimTime,
    },
    /// The startup probe fails `failureThreshold` times: killed and restarted in one sync.
    StartupProbe {
        /// Time from container start to the kill decision.
        after: SimTime,
    },
    /// Nothing kills it: Running, NotReady, until someone deletes the pod.
    Never,
}

impl ProxyKillPath {
    /// The path for Istio `version` with `holdApplicationUntilProxyStarts`,
    /// `global.proxy.startupProbe.enabled` (default true) and native sidecars.
    pub fn for_release(
        version: IstioVersion,
        hold_application_until_proxy_starts: bool,
        startup_probe_enabled: bool,
        native_sidecar: bool,
    ) -> ProxyKillPath {
        if hold_application_until_proxy_starts && !native_sidecar {
            return ProxyKillPath::PostStartTimeout {
                after: SimTime::from_secs(60),
            };
        }
        if version.has_sidecar_startup_probe() && startup_probe_enabled {
            // initialDelaySeconds 0, periodSeconds 1, failureThreshold 600.
            return ProxyKillPath::StartupProbe {
                after: SimTime::from_secs(600),
            };
        }
        if native_sidecar && version.minor == 19 {
            // 1.19's native-sidecar startupProbe reuses the readiness values:
            // initialDelay 1 s, period 2 s, failureThreshold 30.
            return ProxyKillPath::StartupProbe {
                after: SimTime::from_secs(61),
            };
        }
        ProxyKillPath::Never
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::named_stream;

    fn exact() -> KubeletConfig {
        KubeletConfig {
            sync: SyncRequeue::AtBackoffExpiry,
            ..KubeletConfig::default()
        }
    }

    /// Waits between exits and restarts for a container that dies `run` after each
    /// start.
    fn exit_path_waits(cfg: KubeletConfig, run: SimTime, n: usize) -> Vec<u64> {
        let mut b = RestartBackoff::new(cfg);
        let mut rng = named_stream(1, "kubelet");
        let mut start = SimTime::ZERO;
        (0..n)
            .map(|_| {
                let exit = start + run;
                start = b.restart_after_exit(exit, &mut rng);
                (start - exit).as_nanos() / 1_000_000_000
            })
            .collect()
    }

    #[test]
    fn post_start_kill_every_60_s_backs_off_10_to_300() {
        let w = exit_path_waits(exact(), SimTime::from_secs(60), 9);
        assert_eq!(w, vec![0, 10, 20, 40, 80, 160, 300, 300, 300]);
        // Kubernetes 1.29 (2 x max expiry) gives the same with the defaults.
        let cfg = KubeletConfig {
            version: KubeVersion::new(29),
            ..exact()
        };
        assert_eq!(
            exit_path_waits(cfg, SimTime::from_secs(60), 4),
            vec![0, 10, 20, 40]
        );
    }

    #[test]
    fn startup_probe_kill_restarts_at_once_every_cycle() {
        let mut b = RestartBackoff::new(exact());
        let mut start = SimTime::ZERO;
        for cycle in 0..12 {
            let decide = start + SimTime::from_secs(600);
            let killed = decide + TERMINATION_DRAIN;
            let again = b.probe_kill(decide, killed);
            assert_eq!(again, Some(killed), "cycle {cycle}: no CrashLoopBackOff");
            start = killed;
        }
        assert_eq!(b.restarts(), 12);
        assert_eq!(b.backoff_events(), 0);
        // The entry exists and doubles, unused.
        assert!(b.current_backoff() >= SimTime::from_secs(10));
    }

    #[test]
    fn exit_after_more_than_600_s_resets_the_entry() {
        let w = exit_path_waits(exact(), SimTime::from_secs(700), 4);
        assert_eq!(w, vec![0, 0, 0, 0]);
    }

    #[test]
    fn worker_requeue_quantises_the_waits() {
        let w = exit_path_waits(KubeletConfig::default(), SimTime::from_secs(60), 8);
        let exact = [0, 10, 20, 40, 80, 160, 300, 300];
        for (got, want) in w.iter().zip(exact) {
            // At least the back-off, at most one requeue (15 s) more.
            assert!(*got >= want && *got < want + 15, "{w:?}");
        }
    }

    #[test]
    fn kep_4603_reduces_to_1_s_and_60_s() {
        let cfg = KubeletConfig {
            reduced_crashloop_backoff: true,
            ..exact()
        };
        assert!(cfg.validate("kubelet").is_ok());
        let w = exit_path_waits(cfg, SimTime::from_secs(60), 9);
        assert_eq!(w, vec![0, 1, 2, 4, 8, 16, 32, 60, 60]);
        let old = KubeletConfig {
            version: KubeVersion::new(32),
            ..cfg
        };
        assert!(old.validate("kubelet").is_err());
    }

    #[test]
    fn kill_paths_by_release() {
        let v = |s| IstioVersion::parse(s).unwrap();
        assert_eq!(
            ProxyKillPath::for_release(v("1.15.7"), false, true, false),
            ProxyKillPath::Never
        );
        assert_eq!(
            ProxyKillPath::for_release(v("1.20.0"), false, true, false),
            ProxyKillPath::StartupProbe {
                after: SimTime::from_secs(600)
            }
        );
        assert_eq!(
            ProxyKillPath::for_release(v("1.10.6"), true, true, false),
            ProxyKillPath::PostStartTimeout {
                after: SimTime::from_secs(60)
            }
        );
        assert_eq!(
            ProxyKillPath::for_release(v("1.22.3"), false, false, false),
            ProxyKillPath::Never
        );
        assert_eq!(
            backoff_message("istio-proxy", "web-1"),
            "Back-off restarting failed container istio-proxy in pod web-1"
        );
    }
}
