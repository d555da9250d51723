//! Validated scenario types: what the model consumes. Built only by the loader
//! (`scenario::load`) after validation, or in code by tests through the `Default`s.
//!
//! Every default has a source: `docs/sources.md` and the scenario reference
//! (`docs/scenario.md`) cite it.

use crate::ca::{CaConfig, RateLimit};
use crate::control::apiserver::ApiServerConfig;
use crate::control::issuer::{AwsPcaConfig, AwsRetryConfig, CasTier, VaultConfig};
use crate::control::version::{IstioVersion, KubeVersion};
use crate::engine::SimTime;
use crate::predicate::{Kind, Predicate, Vocabulary};

/// A whole scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    /// Name (file stem unless `[scenario] name` says otherwise).
    pub name: String,
    /// One-line description for reports.
    pub description: String,
    /// Master seed (overridden by `--seed`).
    pub seed: u64,
    /// No event at or after this time runs.
    pub horizon: SimTime,
    /// Event budget: hitting it ends the run and is reported.
    pub max_events: u64,
    /// Period of the time series (`timeseries.csv`).
    pub sample_interval: SimTime,
    /// Memory budget of one run in bytes (`[scenario] max_memory`, default
    /// [`DEFAULT_MAX_MEMORY`](super::limits::DEFAULT_MAX_MEMORY)): a run whose estimate
    /// exceeds it is refused before it starts.
    pub max_memory_bytes: u64,
    /// Fleet-level certificate authorities, in declaration order.
    pub cas: Vec<CaSpec>,
    /// Clusters, templates already expanded (`web` with count 3 -> `web-0`, `web-1`,
    /// `web-2`), in declaration order: the order waves take them in.
    pub clusters: Vec<ClusterSpec>,
    /// The `[cluster.<name>]` tables as declared, each with its instances in
    /// [`clusters`](Self::clusters).
    pub templates: Vec<ClusterTemplate>,
    /// How the fleet is rolled.
    pub rollout: RolloutSpec,
    /// Actions at a time or on a condition, in declaration order.
    pub interventions: Vec<InterventionSpec>,
    /// Mechanisms without a source that this scenario turns on (empty for a sourced
    /// run), in declaration order.
    pub assumptions: Vec<Assumption>,
    /// AWS accounts (account-Region) the `aws-pca` CAs name, in first-use order.
    pub pca_accounts: Vec<String>,
    /// Google CAS locations the `google-cas` CAs name, in first-use order.
    pub cas_locations: Vec<String>,
}

/// An unsourced mechanism a scenario turns on, or a value that deviates from the
/// release's own (listed in `summary.json` under `assumptions`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Assumption {
    /// The dotted key that turned it on (`cluster.payments.istiod.delete_csr_on_give_up`).
    pub key: String,
    /// Its value as written.
    pub value: String,
    /// What it assumes and why it has no source.
    pub note: String,
}

/// A `[cluster.<name>]` table as declared: one cluster, or with `count` > 1 that many,
/// named `<name>-<i>` with `i` zero-padded to the width of `count - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTemplate {
    /// The table key.
    pub name: String,
    /// Its `count` (1 when absent).
    pub count: u64,
    /// Indices of its instances in [`Scenario::clusters`], in order.
    pub clusters: Vec<usize>,
}

/// A certificate authority (issuer) shared by the clusters that name it.
#[derive(Debug, Clone, PartialEq)]
pub struct CaSpec {
    /// Table key, e.g. `pca-east`.
    pub name: String,
    /// What kind of CA, with its kind's parameters.
    pub kind: IssuerKind,
    /// `usl`: queue, workers, service time, USL, slowdown per Failed CSR object (the
    /// defaults for the other kinds, unused).
    pub config: CaConfig,
    /// `usl`: where sigma and kappa were measured (a load test); without it, contention
    /// is an assumption.
    pub contention_source: Option<String>,
}

/// The kind of an external CA (`ca.<name>.kind`).
#[derive(Debug, Clone, PartialEq)]
pub enum IssuerKind {
    /// A CA its owner load-tested: [`crate::ca::CertificateAuthority`] (`config`).
    Usl,
    /// AWS Private CA.
    AwsPca {
        /// Index into [`Scenario::pca_accounts`]: quotas are per account and Region.
        account: usize,
        /// Quotas and latencies.
        config: AwsPcaConfig,
        /// The SDK's standard retryer.
        sdk: AwsRetryConfig,
        /// A CSR signer's poll of `GetCertificate` after `IssueCertificate`
        /// (*unconfirmed*).
        poll_interval: SimTime,
    },
    /// Google Certificate Authority Service.
    GoogleCas {
        /// Tier: 7/s (Enterprise) or 25/s (DevOps) per CA.
        tier: CasTier,
        /// Index into [`Scenario::cas_locations`] (100/s per location per project).
        location: usize,
        /// Per-location rate (100/s).
        location_rate_per_s: f64,
        /// Latency of one CreateCertificate (*unconfirmed*).
        latency: SimTime,
    },
    /// HashiCorp Vault PKI `/sign`.
    Vault(VaultConfig),
}

impl IssuerKind {
    /// `usl`, `aws-pca`, `google-cas` or `vault`.
    pub fn name(&self) -> &'static str {
        match self {
            IssuerKind::Usl => "usl",
            IssuerKind::AwsPca { .. } => "aws-pca",
            IssuerKind::GoogleCas { .. } => "google-cas",
            IssuerKind::Vault(_) => "vault",
        }
    }
}

/// One cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// Unique name (expanded from a template when `count` > 1).
    pub name: String,
    /// Index into [`Scenario::cas`]; `None`: istiod's built-in CA signs.
    pub ca: Option<usize>,
    /// The signer controller (for `kubernetes-ra` and `istio-csr`).
    pub signer: SignerSpec,
    /// The kube-apiserver (APF).
    pub apiserver: ApiServerConfig,
    /// Node groups, in declaration order.
    pub node_groups: Vec<NodeGroupSpec>,
    /// Workloads other than istiod, in declaration order.
    pub workloads: Vec<WorkloadSpec>,
    /// The control plane.
    pub istiod: IstiodSpec,
    /// The sidecar-injector webhook.
    pub webhook: WebhookSpec,
    /// The sidecar (istio-agent and the injected probes).
    pub agent: AgentSpec,
    /// Kubelet and controller behaviour.
    pub kubernetes: KubernetesSpec,
    /// cert-manager Certificates created in the cluster (`[cluster.X.certificates.NAME]`).
    pub certificates: Vec<CertificatesSpec>,
}

/// A set of cert-manager Certificates (`[cluster.X.certificates.NAME]`).
#[derive(Debug, Clone, PartialEq)]
pub struct CertificatesSpec {
    /// The set's name.
    pub name: String,
    /// How many Certificates (`count`).
    pub count: u32,
    /// Index into [`Scenario::cas`] of the CA that signs their CertificateRequests;
    /// `None`: cert-manager's in-process `ca` issuer.
    pub issuer: Option<usize>,
    /// `spec.duration` (cert-manager's default 2160h = 90 days).
    pub duration: SimTime,
    /// When they are created (all at once).
    pub created_at: SimTime,
}

/// EKS managed node group update strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStrategy {
    /// New nodes first (scale up by max(2 x AZs, maxUnavailable)), then drain old ones.
    Default,
    /// Terminate (drain) old nodes first, then launch replacements.
    Minimal,
    /// Karpenter-style: a disruption budget in percent of nodes; replacements first.
    Karpenter,
}

/// How many nodes may be unavailable at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxUnavailable {
    /// A count (EKS `maxUnavailable`, 1..=100).
    Count(u32),
    /// A percentage of the group (EKS `maxUnavailablePercentage`, Karpenter `nodes: 10%`).
    Percent(f64),
}

/// A node group (an EKS managed node group or a Karpenter node pool).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeGroupSpec {
    /// Table key.
    pub name: String,
    /// Nodes before (and after) the upgrade.
    pub nodes: u32,
    /// Pods a node can hold (EKS max pods for the instance type).
    pub max_pods: u32,
    /// Availability zones the group spans.
    pub azs: u32,
    /// AMI the nodes run at the start.
    pub ami: String,
    /// AMI to roll to; `None` = this group is not upgraded.
    pub target_ami: Option<String>,
    /// Update strategy.
    pub strategy: UpdateStrategy,
    /// Update config.
    pub max_unavailable: MaxUnavailable,
    /// Launch-to-Ready time of a new node, uniform in [min, max] (*unconfirmed*: 30-90 s).
    pub launch_min: SimTime,
    /// See `launch_min`.
    pub launch_max: SimTime,
    /// Per-node drain limit before `PodEvictionFailure` (EKS: 15 min).
    pub drain_timeout: SimTime,
    /// Ignore PDBs once the drain limit is hit (EKS `force`).
    pub force: bool,
    /// Delay from a node drained to its termination (EKS: 60 s after cordon).
    pub terminate_delay: SimTime,
}

/// A workload (a Deployment and its ReplicaSet).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadSpec {
    /// Table key.
    pub name: String,
    /// Desired replicas.
    pub replicas: u32,
    /// Whether pods get the Istio sidecar (and so need a certificate to become ready).
    pub injected: bool,
    /// PDB as max unavailable pods; `None` = no PDB.
    pub pdb_max_unavailable: Option<u32>,
    /// Time from scheduled to containers started (image pull, init).
    pub container_start: SimTime,
    /// Time from started (and, if injected, certificate in hand) to ready.
    pub ready_delay: SimTime,
    /// Node group (index) its pods are pinned to by node affinity; `None` = any.
    pub node_group: Option<usize>,
}

/// istiod, the Istio control plane of one cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct IstiodSpec {
    /// Replicas (values.yaml: 1).
    pub replicas: u32,
    /// Istio release (patch-exact where it matters).
    pub version: IstioVersion,
    /// How istiod gets workload certificates signed.
    pub ca_mode: CaMode,
    /// Who signs istiod's own serving certificate (`PILOT_CERT_PROVIDER`).
    pub cert_provider: IstiodCertProvider,
    /// Process start to informers listing (*unconfirmed*; the LISTs through the
    /// apiserver come on top).
    pub startup_base: SimTime,
    /// Istio CRD informers (each one LIST on the Istio client).
    pub crd_informers: u32,
    /// Readiness probe period (3 s).
    pub readiness_period: SimTime,
    /// Kubernetes client QPS per replica (80).
    pub client_qps: f64,
    /// Kubernetes client burst per replica (160).
    pub client_burst: u32,
    /// An explicit wait for the signer (a counterfactual: the release's chiron flow
    /// fixes the wait); `None` = the release's.
    pub ca_wait_timeout: Option<SimTime>,
    /// istiod deletes its CSR when its flow ends (the source's defer, 1.12+). `false`
    /// is an assumption: istiod never deletes.
    pub delete_csr_on_give_up: bool,
    /// PDB minAvailable 1 for istiod when replicas > 1 (Istio >= 1.28).
    pub pdb: bool,
    /// Node group (index) istiod is pinned to (e.g. a system group); `None` = any.
    pub node_group: Option<usize>,
}

/// Who signs istiod's own serving (DNS) certificate: `istiod.pilot_cert_provider`, the
/// `PILOT_CERT_PROVIDER` environment variable (pilot/pkg/bootstrap/certcontroller.go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IstiodCertProvider {
    /// `istiod` (the chart's default): its built-in CA, in process at start-up.
    Istiod,
    /// `k8s.io/<signer>`: a Kubernetes CSR for `signer`, signed through the same CSR
    /// path as the workloads' (chiron's `GenKeyCertK8sCA`), before istiod serves
    /// anything; no certificate within the flow's wait and istiod exits.
    KubernetesSigner {
        /// The signer name after `k8s.io/`.
        signer: String,
    },
}

impl IstiodCertProvider {
    /// The spelling in the scenario (the environment variable's value).
    pub fn text(&self) -> String {
        match self {
            IstiodCertProvider::Istiod => "istiod".into(),
            IstiodCertProvider::KubernetesSigner { signer } => format!("k8s.io/{signer}"),
        }
    }
}

/// How istiod gets workload certificates signed (`istiod.ca_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaMode {
    /// `EXTERNAL_CA=ISTIOD_RA_KUBERNETES_API`: istiod's RA through the CSR API.
    KubernetesRa,
    /// istiod's built-in CA signs in process.
    Istiod,
    /// Agents call istio-csr (`CA_ADDR`), which makes cert-manager CertificateRequests.
    IstioCsr,
}

impl CaMode {
    /// The spelling in the schema.
    pub fn name(self) -> &'static str {
        match self {
            CaMode::KubernetesRa => "kubernetes-ra",
            CaMode::Istiod => "istiod",
            CaMode::IstioCsr => "istio-csr",
        }
    }
}

/// Which signer controller runs in the cluster (`signer.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerKind {
    /// cert-manager's CertificateSigningRequest controller (alpha gate on).
    CertManager,
    /// A controller-runtime CSR signer (cert-manager/signer-ca pattern).
    ControllerRuntime,
    /// istio-csr with aws-privateca-issuer reconciling its CertificateRequests.
    IstioCsr,
}

impl SignerKind {
    /// The spelling in the schema.
    pub fn name(self) -> &'static str {
        match self {
            SignerKind::CertManager => "cert-manager",
            SignerKind::ControllerRuntime => "controller-runtime",
            SignerKind::IstioCsr => "istio-csr",
        }
    }
}

/// The signer controller of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct SignerSpec {
    /// Which controller.
    pub kind: SignerKind,
    /// Workers (cert-manager 5, controller-runtime 1, aws-privateca-issuer 1).
    pub workers: u32,
    /// Its client's QPS (cert-manager 20, controller-runtime 20; istio-csr: 5).
    pub client_qps: f64,
    /// Its client's burst (cert-manager 50, controller-runtime 30; istio-csr: 10).
    pub client_burst: u32,
    /// istio-csr replicas (each serves; 1).
    pub replicas: u32,
    /// From a write at the apiserver to the controller's informer (*unconfirmed*).
    pub informer_delay: SimTime,
    /// **Assumption**: a controller-runtime signer marks the CSR Failed on an issuer
    /// error (signer-ca requeues instead).
    pub mark_failed_on_issuer_error: bool,
    /// istio-csr `--preserve-certificate-requests` (false: each CR is deleted after use).
    pub preserve_certificate_requests: bool,
    /// istio-csr `--max-client-certificate-duration` (1 h): the workload certificate's
    /// lifetime (the agent asks for 24 h).
    pub max_certificate_duration: SimTime,
}

impl SignerSpec {
    /// The defaults of a kind.
    pub fn of_kind(kind: SignerKind) -> SignerSpec {
        let (workers, qps, burst) = match kind {
            SignerKind::CertManager => (5, 20.0, 50),
            SignerKind::ControllerRuntime => (1, 20.0, 30),
            SignerKind::IstioCsr => (1, 5.0, 10),
        };
        SignerSpec {
            kind,
            workers,
            client_qps: qps,
            client_burst: burst,
            replicas: 1,
            informer_delay: SimTime::from_millis(100),
            mark_failed_on_issuer_error: false,
            preserve_certificate_requests: false,
            max_certificate_duration: SimTime::from_secs(3600),
        }
    }
}

/// What the API server does when the webhook cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Pod creation fails (Istio's default).
    Fail,
    /// The pod is created without a sidecar.
    Ignore,
}

/// The sidecar-injector mutating webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    /// Call timeout (10 s; 1-30).
    pub timeout: SimTime,
    /// failurePolicy (Fail).
    pub failure_policy: FailurePolicy,
    /// istiod's time to inject one pod (serial per replica).
    pub injection_time: SimTime,
}

/// istio-agent in each injected pod and the probes injected with it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    /// Inner CSR attempts in total (5).
    pub inner_attempts: u32,
    /// First inner wait (100 ms, doubling, ±10 %).
    pub inner_initial: SimTime,
    /// First outer backoff (500 ms, x1.5, ±50 %).
    pub outer_initial: SimTime,
    /// Outer backoff cap (60 s).
    pub outer_max: SimTime,
    /// startupProbe period x failureThreshold: no certificate by then => the kubelet kills
    /// the proxy (1 s x 600 = 10 min; Istio 1.20+).
    pub startup_probe_limit: SimTime,
    /// terminationDrainDuration (5 s).
    pub termination_drain: SimTime,
    /// `holdApplicationUntilProxyStarts`: postStart `pilot-agent wait` kills after 60 s.
    pub hold_application_until_proxy_starts: bool,
    /// The sidecar startupProbe; `None` = the release's (on from 1.20).
    pub startup_probe: Option<bool>,
}

/// Kubelet and controller-manager behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesSpec {
    /// Kubernetes release (FlowSchemas, Retry-After, kubelet back-off expiry).
    pub version: KubeVersion,
    /// KEP-4603 `ReduceDefaultCrashLoopBackOffDecay` (1 s / 60 s; 1.33+, alpha, off).
    pub reduced_crashloop_backoff: bool,
    /// Node `maxContainerRestartPeriod` (1-300 s); `None` = 300 s.
    pub max_container_restart_period: Option<SimTime>,
    /// kube-controller-manager's client QPS (20).
    pub kcm_qps: f64,
    /// kube-controller-manager's client burst (30).
    pub kcm_burst: u32,
    /// csrcleaner: Pending CSRs older than this are deleted (24 h).
    pub csr_pending_max_age: SimTime,
    /// csrcleaner deletes Approved-but-unissued CSRs after `csr_pending_max_age`
    /// (kubernetes PR #133116; the release that carries it is unconfirmed).
    pub csr_cleaner_approved_unissued: bool,
    /// ReplicaSet requeue base delay after a failed create (5 ms, doubling).
    pub requeue_base: SimTime,
    /// ReplicaSet requeue cap (1000 s).
    pub requeue_max: SimTime,
    /// The ReplicaSet controller's overall retry bucket, shared by every ReplicaSet of
    /// the cluster: tokens per second (10).
    pub requeue_rate_per_s: f64,
    /// Its size (100).
    pub requeue_burst: u32,
    /// csrcleaner scan period (1 h).
    pub csr_cleaner_period: SimTime,
    /// Age after which csrcleaner deletes Failed, Denied and issued CSRs (1 h).
    pub csr_failed_max_age: SimTime,
    /// Retry period of an eviction refused by a PDB (kubectl drain: 5 s).
    pub eviction_retry: SimTime,
}

/// How the fleet's clusters are taken through the upgrade, and how pod restarts are paced.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    /// When the first wave starts.
    pub start: SimTime,
    /// Clusters per wave, in cluster order; clusters beyond the sum form a last wave.
    pub waves: Vec<u32>,
    /// Wait for the previous wave to be complete and healthy before the next.
    pub health_gate: bool,
    /// Time a wave must stay healthy before the next starts.
    pub soak: SimTime,
    /// A wave not healthy within this time halts the rollout.
    pub gate_timeout: SimTime,
    /// How often the pipeline polls the wave's clusters for completion: the wave is
    /// done at the first poll (on this grid from the wave's start, the first at once) at
    /// which every cluster of it has finished. `aws eks wait nodegroup-active` (boto3
    /// `EKS.Waiter.NodegroupActive`) polls every 30 s.
    pub poll_interval: SimTime,
    /// Pacing of pod evictions (and paced restarts) within a cluster.
    pub pacing: Pacing,
    /// istiod replicas during a cluster's upgrade (restored after); `None` = unchanged.
    pub istiod_replicas_during: Option<u32>,
    /// Whether a cluster's node groups are updated one after another or all at once.
    pub node_groups: NodeGroupOrder,
}

/// How a cluster's node groups are updated (`rollout.node_groups`). EKS updates each
/// managed node group on its own (`UpdateNodegroupVersion` per group); whether they run
/// one after another or together is the operator's tool: a script or eksctl, one group
/// after another; Terraform applies independent resources concurrently (`-parallelism`,
/// default 10), so every `aws_eks_node_group` whose AMI changed updates at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeGroupOrder {
    /// One group after another, in declaration order.
    InOrder,
    /// Every group at once, each with its own batches.
    Together,
}

/// How evictions (pod restarts) are paced within one cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Pacing {
    /// Every pod of a drained node at once (what `kubectl drain`/EKS do).
    AllAtOnce,
    /// `size` pods, then wait `interval`.
    Batches {
        /// Pods per batch.
        size: u32,
        /// Wait between batches.
        interval: SimTime,
    },
    /// A token bucket.
    TokenBucket(RateLimit),
    /// Additive-increase, multiplicative-decrease on CSR errors.
    Aimd {
        /// Starting rate (pods/s).
        initial_per_s: f64,
        /// Floor (pods/s).
        min_per_s: f64,
        /// Ceiling (pods/s).
        max_per_s: f64,
        /// Added each `interval` without CSR errors (pods/s).
        increase_per_s: f64,
        /// Factor applied when the CSR error ratio in an interval exceeds `error_threshold`.
        decrease_factor: f64,
        /// Error ratio (timeouts / CSR attempts) that triggers a decrease.
        error_threshold: f64,
        /// Adjustment period.
        interval: SimTime,
    },
}

/// When an intervention fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// At a fixed time.
    At(SimTime),
    /// The first sample at which the predicate over [`CONDITIONS`] holds (checked every
    /// sample interval), measured over the intervention's clusters (or the fleet).
    When(Predicate),
}

/// Metrics a condition can test, in the order of [`CONDITIONS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionMetric {
    /// Pods restarted at least once and not ready.
    CrashloopPods,
    /// Failed CSR objects present.
    CsrFailedObjects,
    /// Requests queued at the cluster's CA.
    CaQueue,
    /// Pods not yet scheduled or started.
    PodsPending,
    /// Ready pods / desired pods.
    ReadyFraction,
}

impl ConditionMetric {
    /// Every metric, in the order of [`CONDITIONS`].
    pub const ALL: [ConditionMetric; 5] = [
        ConditionMetric::CrashloopPods,
        ConditionMetric::CsrFailedObjects,
        ConditionMetric::CaQueue,
        ConditionMetric::PodsPending,
        ConditionMetric::ReadyFraction,
    ];
}

/// The names an intervention's `when` may use (all numbers).
pub static CONDITIONS: Vocabulary = Vocabulary {
    noun: "metric",
    context: " in condition",
    names: &[
        ("crashloop_pods", Kind::Num),
        ("csr_failed_objects", Kind::Num),
        ("ca_queue", Kind::Num),
        ("pods_pending", Kind::Num),
        ("ready_fraction", Kind::Num),
    ],
};

/// What an intervention does.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Set istiod replicas.
    ScaleIstiod {
        /// New replica count.
        replicas: u32,
    },
    /// Delete every Failed CSR object (`kubectl delete`, one DELETE per object).
    DeleteFailedCsrs {
        /// kubectl's client QPS (*unconfirmed*: client-go's default 5).
        qps: f64,
        /// kubectl's client burst (*unconfirmed*: 10).
        burst: u32,
    },
    /// Stop starting new node batches and waves.
    PauseRollout,
    /// Undo a pause.
    ResumeRollout,
    /// Controlled restarts: the chosen pods are stopped and their replicas held back,
    /// then released in paced batches so they start fresh.
    RestartCrashlooping {
        /// Pods per batch.
        batch_size: u32,
        /// Wait between batches.
        interval: SimTime,
        /// Which pods are stopped.
        pods: RestartPods,
    },
    /// `kubectl rollout restart` of every injected workload of the clusters at once
    /// (a namespace restarted): each pod is deleted and its ReplicaSet replaces it.
    RestartWorkloads,
    /// Change a CA's capacity.
    SetCa {
        /// Index into [`Scenario::cas`].
        ca: usize,
        /// New worker count, if given.
        workers: Option<u32>,
        /// New rate limit, if given (`Some(None)` removes it).
        rate_limit: Option<Option<RateLimit>>,
    },
}

/// The pods a controlled restart stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPods {
    /// Injected pods that restarted at least once and are not ready.
    Crashlooping,
    /// Every injected pod that is on a node and not ready (first starts included), as an
    /// operator scaling each deployment down to its ready pods would.
    NotReady,
}

/// An action at a time or on a condition.
#[derive(Debug, Clone, PartialEq)]
pub struct InterventionSpec {
    /// Table key.
    pub name: String,
    /// Clusters it applies to (indices); empty = every cluster (or none needed).
    pub clusters: Vec<usize>,
    /// When it fires.
    pub trigger: Trigger,
    /// What it does.
    pub action: Action,
}

// ---------------------------------------------------------------------------------------
// Defaults (docs/sources.md). The loader fills every omitted field from these.

/// The Istio release when `istiod.version` is not given (the newest read in source).
pub const DEFAULT_ISTIO: &str = "1.30.3";
/// The Kubernetes release when `kubernetes.version` is not given.
pub const DEFAULT_KUBERNETES: &str = "1.33";

impl Default for NodeGroupSpec {
    fn default() -> Self {
        NodeGroupSpec {
            name: "default".into(),
            nodes: 3,
            max_pods: 58,
            azs: 3,
            ami: "ami-old".into(),
            target_ami: Some("ami-new".into()),
            strategy: UpdateStrategy::Default,
            max_unavailable: MaxUnavailable::Count(1),
            launch_min: SimTime::from_secs(30),
            launch_max: SimTime::from_secs(90),
            drain_timeout: SimTime::from_secs(15 * 60),
            force: false,
            terminate_delay: SimTime::from_secs(60),
        }
    }
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            name: "app".into(),
            replicas: 3,
            injected: true,
            pdb_max_unavailable: Some(1),
            container_start: SimTime::from_secs(5),
            ready_delay: SimTime::from_secs(2),
            node_group: None,
        }
    }
}

impl Default for IstiodSpec {
    fn default() -> Self {
        IstiodSpec {
            replicas: 1,
            version: IstioVersion::parse(DEFAULT_ISTIO).expect("valid"),
            ca_mode: CaMode::Istiod,
            cert_provider: IstiodCertProvider::Istiod,
            startup_base: SimTime::from_secs(10),
            crd_informers: 15,
            readiness_period: SimTime::from_secs(3),
            client_qps: 80.0,
            client_burst: 160,
            ca_wait_timeout: None,
            delete_csr_on_give_up: true,
            pdb: true,
            node_group: None,
        }
    }
}

impl Default for WebhookSpec {
    fn default() -> Self {
        WebhookSpec {
            timeout: SimTime::from_secs(10),
            failure_policy: FailurePolicy::Fail,
            injection_time: SimTime::from_millis(5),
        }
    }
}

impl Default for AgentSpec {
    fn default() -> Self {
        AgentSpec {
            inner_attempts: 5,
            inner_initial: SimTime::from_millis(100),
            outer_initial: SimTime::from_millis(500),
            outer_max: SimTime::from_secs(60),
            startup_probe_limit: SimTime::from_secs(600),
            termination_drain: SimTime::from_secs(5),
            hold_application_until_proxy_starts: false,
            startup_probe: None,
        }
    }
}

impl Default for KubernetesSpec {
    fn default() -> Self {
        KubernetesSpec {
            version: KubeVersion::parse(DEFAULT_KUBERNETES).expect("valid"),
            reduced_crashloop_backoff: false,
            max_container_restart_period: None,
            kcm_qps: 20.0,
            kcm_burst: 30,
            csr_pending_max_age: SimTime::from_secs(24 * 3600),
            csr_cleaner_approved_unissued: false,
            requeue_base: SimTime::from_millis(5),
            requeue_max: SimTime::from_secs(1000),
            requeue_rate_per_s: 10.0,
            requeue_burst: 100,
            csr_cleaner_period: SimTime::from_secs(3600),
            csr_failed_max_age: SimTime::from_secs(3600),
            eviction_retry: SimTime::from_secs(5),
        }
    }
}

impl Default for RolloutSpec {
    fn default() -> Self {
        RolloutSpec {
            start: SimTime::ZERO,
            waves: Vec::new(),
            health_gate: false,
            soak: SimTime::ZERO,
            gate_timeout: SimTime::from_secs(3600),
            poll_interval: SimTime::from_secs(30),
            pacing: Pacing::AllAtOnce,
            istiod_replicas_during: None,
            node_groups: NodeGroupOrder::InOrder,
        }
    }
}

impl ClusterSpec {
    /// A cluster with default components, one node group and one workload.
    pub fn with_defaults(name: &str, ca: Option<usize>) -> Self {
        ClusterSpec {
            name: name.into(),
            ca,
            signer: SignerSpec::of_kind(SignerKind::ControllerRuntime),
            apiserver: ApiServerConfig::default(),
            node_groups: vec![NodeGroupSpec::default()],
            workloads: vec![WorkloadSpec::default()],
            istiod: IstiodSpec {
                ca_mode: if ca.is_some() {
                    CaMode::KubernetesRa
                } else {
                    CaMode::Istiod
                },
                ..IstiodSpec::default()
            },
            webhook: WebhookSpec::default(),
            agent: AgentSpec::default(),
            kubernetes: KubernetesSpec::default(),
            certificates: Vec::new(),
        }
    }
}

impl ClusterSpec {
    /// Desired pods: workload replicas plus istiod replicas.
    pub fn pods(&self) -> u64 {
        self.workloads
            .iter()
            .map(|w| u64::from(w.replicas))
            .sum::<u64>()
            + u64::from(self.istiod.replicas)
    }
}

impl Scenario {
    /// Desired pods in the whole fleet (see [`ClusterSpec::pods`]).
    pub fn pods_total(&self) -> u64 {
        self.clusters.iter().map(ClusterSpec::pods).sum()
    }

    /// The clusters a name stands for: a cluster's own name, else a template's (all its
    /// instances); `None` if it is neither.
    pub fn clusters_named(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(i) = self.clusters.iter().position(|c| c.name == name) {
            return Some(vec![i]);
        }
        self.templates
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.clusters.clone())
    }

    /// Names a cluster reference may use, for messages: the templates, then at most
    /// `max_clusters` cluster names.
    pub fn cluster_and_template_names(&self, max_clusters: usize) -> Vec<&str> {
        let mut v: Vec<&str> = self.templates.iter().map(|t| t.name.as_str()).collect();
        v.extend(
            self.clusters
                .iter()
                .take(max_clusters)
                .map(|c| c.name.as_str()),
        );
        v
    }

    /// An empty scenario with default guards (3 h horizon, 10 s samples).
    pub fn empty(name: &str) -> Self {
        Scenario {
            name: name.into(),
            description: String::new(),
            seed: 1,
            horizon: SimTime::from_secs(3 * 3600),
            max_events: 200_000_000,
            max_memory_bytes: super::limits::DEFAULT_MAX_MEMORY,
            sample_interval: SimTime::from_secs(10),
            cas: Vec::new(),
            clusters: Vec::new(),
            templates: Vec::new(),
            rollout: RolloutSpec::default(),
            interventions: Vec::new(),
            assumptions: Vec::new(),
            pca_accounts: Vec::new(),
            cas_locations: Vec::new(),
        }
    }
}
