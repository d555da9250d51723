//! The fleet model's one event enum, and what the kernel fingerprints of each event.

use crate::ca::CaEvent;
use crate::control::apiserver::ApiServerEvent;
use crate::control::certificates::CertEvent;
use crate::control::signer::{IssuerReply, JobRef, SignerEvent};
use crate::engine::TraceEvent;

use super::ra::FlowRef;
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
    /// The pipeline polls wave `wave`'s clusters (`aws eks wait nodegroup-active`).
    RolloutPoll {
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
    /// A cluster's apiserver wakes (its `apiserver` index is the cluster's).
    Api(ApiServerEvent),
    /// A cluster's signer timer (its `signer` index is the cluster's).
    Signer(SignerEvent),
    /// A pending API call is sent (its token came, or, with `retry`, its Retry-After
    /// sleep ended and it takes a new token).
    ApiSend {
        /// Cluster.
        cluster: u32,
        /// The call's tag.
        tag: u64,
        /// After a 429.
        retry: bool,
    },
    /// An API call's reply leaves the apiserver.
    ApiDone {
        /// Cluster.
        cluster: u32,
        /// The call's tag.
        tag: u64,
    },
    /// An istiod flow's sleep or watch ends.
    FlowWake {
        /// Cluster.
        cluster: u32,
        /// The flow.
        flow: FlowRef,
        /// Its timer generation.
        step: u32,
    },
    /// The signer's informer delivers an object.
    Informer {
        /// Cluster.
        cluster: u32,
        /// The object.
        key: u64,
    },
    /// An issuer answers a signer's call.
    IssuerDone {
        /// Cluster.
        cluster: u32,
        /// The signer's job.
        job: JobRef,
        /// The answer.
        reply: IssuerReply,
    },
    /// A CSR signer polls AWS Private CA's `GetCertificate`.
    PcaPoll {
        /// Cluster.
        cluster: u32,
        /// The signer's job.
        job: JobRef,
        /// The certificate `IssueCertificate` started.
        cert: crate::control::issuer::PcaCertificate,
    },
    /// A cluster's earliest proxy deadline (the startup probe's limit) is due: the
    /// kubelet kills each proxy due now that still has no certificate
    /// ([`super::probes`]).
    ProbeDeadline {
        /// Cluster.
        cluster: u32,
    },
    /// CrashLoopBackOff is over: the kubelet restarts the container.
    ContainerRestart {
        /// Cluster.
        cluster: u32,
        /// Pod.
        pod: PodRef,
    },
    /// A starting istiod replica's informers list (`informer` = [`super::startup::ALL`]:
    /// all of them, at the end of its process start; else one reflector's relist after
    /// its back-off).
    IstiodList {
        /// Cluster.
        cluster: u32,
        /// The istiod pod at its container's generation.
        pod: PodRef,
        /// Which informer.
        informer: u32,
    },
    /// A cluster's earliest istio-agent certificate rotation (or retry) is due: every
    /// rotation due now runs ([`super::ra::rotation`]).
    RotationDue {
        /// Cluster.
        cluster: u32,
        /// The timer's generation (an earlier rotation replaced a stale one).
        gen: u32,
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
    /// cert-manager's Certificate controllers' own event.
    Certs(CertEvent),
}

impl Event {
    /// The cluster and pod of a pod's own event (webhook, start, ready, terminated, CSR
    /// attempt, restart, rotation); `None` for any other.
    #[inline]
    pub fn pod(&self) -> Option<(u32, PodRef)> {
        match *self {
            Event::WebhookDone { cluster, pod, .. }
            | Event::ContainersStarted { cluster, pod }
            | Event::PodReady { cluster, pod }
            | Event::PodTerminated { cluster, pod }
            | Event::CsrAttempt { cluster, pod }
            | Event::ContainerRestart { cluster, pod } => Some((cluster, pod)),
            _ => None,
        }
    }
}

impl From<CertEvent> for Event {
    fn from(e: CertEvent) -> Self {
        Event::Certs(e)
    }
}

impl From<ApiServerEvent> for Event {
    fn from(e: ApiServerEvent) -> Self {
        Event::Api(e)
    }
}

impl From<SignerEvent> for Event {
    fn from(e: SignerEvent) -> Self {
        Event::Signer(e)
    }
}

impl From<CaEvent> for Event {
    fn from(e: CaEvent) -> Self {
        Event::Ca(e)
    }
}

/// The partition key of the events of the clusters that share fleet-level CAs and
/// issuers, and of the CAs' own events ([`crate::model::fleet::partitions`]); a
/// cluster's other events have key `cluster + 1`.
pub const SHARED_KEY: u32 = 0;

fn pod_entity(cluster: u32, pod: PodRef) -> u64 {
    ((cluster as u64) << 40) | ((pod.slot as u64) << 8) | (pod.gen as u64 & 0xff)
}

fn node_entity(cluster: u32, node: u32) -> u64 {
    ((cluster as u64) << 40) | node as u64
}

impl TraceEvent for Event {
    /// A cluster's events belong to the cluster; the fleet's samples, ticks, waves and
    /// interventions are global; a CA's events belong with the clusters that share it.
    #[inline]
    fn partition_key(&self) -> Option<u32> {
        let cluster = match *self {
            Event::Ca(_) => return Some(SHARED_KEY),
            Event::Sample
            | Event::AimdTick
            | Event::CsrCleaner
            | Event::WaveStart { .. }
            | Event::RolloutPoll { .. }
            | Event::Intervention { .. }
            | Event::RestartBatch { .. } => return None,
            Event::NodeReady { cluster, .. }
            | Event::DrainTick { cluster, .. }
            | Event::DrainDeadline { cluster, .. }
            | Event::NodeTerminate { cluster, .. }
            | Event::ReplicaSync { cluster, .. }
            | Event::WebhookDone { cluster, .. }
            | Event::ContainersStarted { cluster, .. }
            | Event::PodReady { cluster, .. }
            | Event::PodTerminated { cluster, .. }
            | Event::CsrAttempt { cluster, .. }
            | Event::ApiSend { cluster, .. }
            | Event::ApiDone { cluster, .. }
            | Event::FlowWake { cluster, .. }
            | Event::Informer { cluster, .. }
            | Event::IssuerDone { cluster, .. }
            | Event::PcaPoll { cluster, .. }
            | Event::ProbeDeadline { cluster }
            | Event::ContainerRestart { cluster, .. }
            | Event::IstiodList { cluster, .. }
            | Event::RotationDue { cluster, .. } => cluster,
            // A cluster's apiserver, signer and Certificate controllers carry its index.
            Event::Api(e) => e.apiserver,
            Event::Signer(e) => e.signer,
            Event::Certs(e) => e.index,
        };
        Some(cluster + 1)
    }

    fn kind(&self) -> u32 {
        match self {
            Event::Ca(_) => 1,
            Event::Sample => 2,
            Event::AimdTick => 3,
            Event::CsrCleaner => 4,
            Event::WaveStart { .. } => 5,
            Event::RolloutPoll { .. } => 31,
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
            Event::Api(e) => 0x1000 | e.kind(),
            Event::Signer(e) => 0x1000 | e.kind(),
            Event::ApiSend { .. } => 23,
            Event::ApiDone { .. } => 24,
            Event::FlowWake { .. } => 25,
            Event::Informer { .. } => 26,
            Event::IssuerDone { .. } => 27,
            Event::PcaPoll { .. } => 28,
            Event::RotationDue { .. } => 29,
            Event::ProbeDeadline { .. } => 30,
            Event::ContainerRestart { .. } => 20,
            Event::Intervention { .. } => 21,
            Event::RestartBatch { .. } => 22,
            // Was 29, a per-pod rotation's code, until the trace hash was re-blessed for
            // partitions.
            Event::IstiodList { .. } => 32,
            Event::Certs(e) => 0x1000 | e.kind(),
        }
    }

    fn entity(&self) -> u64 {
        match *self {
            Event::Ca(e) => e.ca as u64,
            Event::Sample | Event::AimdTick | Event::CsrCleaner => 0,
            Event::WaveStart { wave } | Event::RolloutPoll { wave } => wave as u64,
            Event::NodeReady { cluster, node }
            | Event::DrainTick { cluster, node, .. }
            | Event::DrainDeadline { cluster, node }
            | Event::NodeTerminate { cluster, node } => node_entity(cluster, node),
            Event::ReplicaSync { cluster, workload } => node_entity(cluster, workload),
            Event::WebhookDone { .. }
            | Event::ContainersStarted { .. }
            | Event::PodReady { .. }
            | Event::PodTerminated { .. }
            | Event::CsrAttempt { .. }
            | Event::ContainerRestart { .. } => self
                .pod()
                .map_or(0, |(cluster, pod)| pod_entity(cluster, pod)),
            Event::Api(e) => e.entity(),
            Event::Signer(e) => e.entity(),
            Event::ApiSend { cluster, tag, .. } | Event::ApiDone { cluster, tag } => {
                ((cluster as u64) << 48) ^ tag
            }
            Event::FlowWake {
                cluster,
                flow,
                step,
            } => {
                ((cluster as u64) << 48)
                    ^ ((flow.gen as u64) << 32)
                    ^ flow.slot as u64
                    ^ ((step as u64) << 20)
            }
            Event::Informer { cluster, key } => ((cluster as u64) << 48) ^ key,
            Event::IssuerDone { cluster, job, .. } | Event::PcaPoll { cluster, job, .. } => {
                ((cluster as u64) << 48) ^ ((job.gen as u64) << 32) ^ job.worker as u64
            }
            Event::Intervention { index } | Event::RestartBatch { index } => index as u64,
            Event::ProbeDeadline { cluster } => cluster as u64,
            Event::RotationDue { cluster, gen } => ((cluster as u64) << 32) | gen as u64,
            Event::IstiodList {
                cluster,
                pod,
                informer,
            } => pod_entity(cluster, pod) ^ ((informer as u64 & 0xff) << 32),
            Event::Certs(e) => e.entity(),
        }
    }
}
