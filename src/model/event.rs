//! The fleet model's one event enum, and what the kernel fingerprints of each event.

use crate::ca::CaEvent;
use crate::engine::TraceEvent;

use super::certs::CsrRef;
use super::state::PodRef;

/// Every event of the fleet model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A certificate authority's own event.
    Ca(CaEvent),
    /// Take a metrics sample; evaluate conditions and gates.
    Sample,
    /// Adjust AIMD pacers.
    AimdTick,
    /// csrcleaner's periodic scan.
    CsrCleaner,
    /// Start wave `wave` of the rollout.
    WaveStart {
        /// Wave index.
        wave: u32,
    },
    /// A launched node became Ready.
    NodeReady {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
    },
    /// Try to evict more pods from a draining node.
    DrainTick {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
        /// Tick generation (stale ticks are dropped).
        gen: u32,
    },
    /// The per-node drain limit (EKS: 15 min).
    DrainDeadline {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
    },
    /// The ASG terminates a drained node.
    NodeTerminate {
        /// Cluster.
        cluster: u32,
        /// Node.
        node: u32,
    },
    /// ReplicaSet requeue: create missing pods.
    ReplicaSync {
        /// Cluster.
        cluster: u32,
        /// Workload.
        workload: u32,
    },
    /// The injection webhook answered for a pod being created.
    WebhookDone {
        /// Cluster.
        cluster: u32,
        /// Workload (for the slow-start batch even if the pod is gone).
        workload: u32,
        /// The pod.
        pod: PodRef,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A pod's containers started.
    ContainersStarted {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// A warming pod became ready.
    PodReady {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// A deleted pod finished terminating and frees its node slot.
    PodTerminated {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// istio-agent sends a certificate request.
    CsrAttempt {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// istiod got its rate-limiter tokens: create the CSR object.
    CsrCreate {
        /// The CSR.
        csr: CsrRef,
    },
    /// istiod stops waiting for the signed certificate.
    IstiodGiveUp {
        /// The CSR.
        csr: CsrRef,
    },
    /// The signer's own deadline for the CA call.
    SignerDeadline {
        /// The CSR.
        csr: CsrRef,
    },
    /// The startup probe's limit: no certificate => the kubelet kills the proxy.
    StartupProbeKill {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// CrashLoopBackOff is over: the kubelet restarts the container.
    ContainerRestart {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// An intervention fires.
    Intervention {
        /// Index into the scenario's interventions.
        index: u32,
    },
    /// The next batch of a paced restart.
    RestartBatch {
        /// Index into the scenario's interventions.
        index: u32,
    },
}

impl From<CaEvent> for Event {
    fn from(e: CaEvent) -> Self {
        Event::Ca(e)
    }
}

fn pod_entity(cluster: u32, pod: PodRef) -> u64 {
    ((cluster as u64) << 40) | ((pod.slot as u64) << 8) | (pod.gen as u64 & 0xff)
}

fn node_entity(cluster: u32, node: u32) -> u64 {
    ((cluster as u64) << 40) | node as u64
}

impl TraceEvent for Event {
    fn kind(&self) -> u32 {
        match self {
            Event::Ca(_) => 1,
            Event::Sample => 2,
            Event::AimdTick => 3,
            Event::CsrCleaner => 4,
            Event::WaveStart { .. } => 5,
            Event::NodeReady { .. } => 6,
            Event::DrainTick { .. } => 7,
            Event::DrainDeadline { .. } => 8,
            Event::NodeTerminate { .. } => 9,
            Event::ReplicaSync { .. } => 10,
            Event::WebhookDone { .. } => 11,
            Event::ContainersStarted { .. } => 12,
            Event::PodReady { .. } => 13,
            Event::PodTerminated { .. } => 14,
            Event::CsrAttempt { .. } => 15,
            Event::CsrCreate { .. } => 16,
            Event::IstiodGiveUp { .. } => 17,
            Event::SignerDeadline { .. } => 18,
            Event::StartupProbeKill { .. } => 19,
            Event::ContainerRestart { .. } => 20,
            Event::Intervention { .. } => 21,
            Event::RestartBatch { .. } => 22,
        }
    }

    fn entity(&self) -> u64 {
        match *self {
            Event::Ca(e) => e.ca as u64,
            Event::Sample | Event::AimdTick | Event::CsrCleaner => 0,
            Event::WaveStart { wave } => wave as u64,
            Event::NodeReady { cluster, node }
            | Event::DrainTick { cluster, node, .. }
            | Event::DrainDeadline { cluster, node }
            | Event::NodeTerminate { cluster, node } => node_entity(cluster, node),
            Event::ReplicaSync { cluster, workload } => node_entity(cluster, workload),
            Event::WebhookDone { cluster, pod, .. }
            | Event::ContainersStarted { cluster, pod }
            | Event::PodReady { cluster, pod }
            | Event::PodTerminated { cluster, pod }
            | Event::CsrAttempt { cluster, pod }
            | Event::StartupProbeKill { cluster, pod }
            | Event::ContainerRestart { cluster, pod } => pod_entity(cluster, pod),
            Event::CsrCreate { csr }
            | Event::IstiodGiveUp { csr }
            | Event::SignerDeadline { csr } => csr.id(),
            Event::Intervention { index } | Event::RestartBatch { index } => index as u64,
        }
    }
}
