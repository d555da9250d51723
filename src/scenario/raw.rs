//! The raw layer: serde structs mirroring the TOML schema one to one. Every field is
//! optional (omitted = the default from [`super::types`]), unknown keys are rejected
//! (`deny_unknown_fields`), named things are tables keyed by name in declaration order.
//! Nothing here checks ranges or references: that is [`super::validate`]'s job.
//!
//! [`SCHEMA`] describes the same tree for the diagnostics walk and `--set`: which fields
//! are sub-tables, which are maps of named tables. Leaf field names come from serde
//! itself ([`fields_of`]), so the two cannot drift apart.

use std::borrow::Cow;

use indexmap::IndexMap;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

use crate::duration::{parse_duration, DURATION_PATTERN};
use crate::engine::SimTime;

use crate::suggest::suggestion;

// ---------------------------------------------------------------------------------------
// Leaf value types with readable type errors.

/// A TOML integer (any sign; ranges are checked by validation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Int, E> {
                Ok(Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Int, E> {
                i64::try_from(v)
                    .map(Int)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The JSON Schema of a leaf type, inlined where it is used (`fleetsim schema`).
macro_rules! leaf_schema {
    ($ty:ty, $name:literal, $schema:tt) => {
        impl JsonSchema for $ty {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                $name.into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!($schema)
            }
        }
    };
}

leaf_schema!(Int, "Int", { "type": "integer" });

/// A TOML number: integer or float (NaN and infinities pass here; validation rejects them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Num, E> {
                Ok(Num(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Num, E> {
                Ok(Num(v))
            }
        }
        d.deserialize_any(V)
    }
}

leaf_schema!(Num, "Num", { "type": "number" });

/// A human duration string (`"10s"`, `"5m"`, `"1h30m"`); a bare integer `0` is accepted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Dur {
    /// As written, for messages.
    pub text: String,
    /// Parsed.
    pub time: SimTime,
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration string such as \"10s\", \"250ms\" or \"1h30m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v)
                    .map(|time| Dur {
                        text: v.to_string(),
                        time,
                    })
                    .map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                if v == 0 {
                    Ok(Dur {
                        text: "0".into(),
                        time: SimTime::ZERO,
                    })
                } else {
                    Err(E::custom(format!(
                        "invalid duration {v}: a number needs a unit and quotes, e.g. \"{v}s\""
                    )))
                }
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "invalid duration {v}: a number needs a unit and quotes, e.g. \"{v}s\""
                )))
            }
        }
        d.deserialize_any(V)
    }
}

// A string the parser reads, or the bare integer 0 (TOML `0.0` passes the schema as an
// integer but not the parser: a JSON Schema integer is any whole number).
leaf_schema!(Dur, "Duration", {
    "type": ["string", "integer"],
    "pattern": DURATION_PATTERN,
    "minimum": 0,
    "maximum": 0,
    "examples": ["10s", "250ms", "1h30m"]
});

/// Declares a string-valued enum with a readable error for unknown values.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every accepted spelling, in declaration order.
            pub(crate) const NAMES: &'static [&'static str] = &[$($text),+];

            /// Parses one of [`Self::NAMES`].
            pub(crate) fn from_name(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown value \"{}\"{}",
                        other.escape_debug(),
                        suggestion(other, Self::NAMES)
                    )),
                }
            }
        }

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "enum": $name::NAMES })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        write!(f, "one of the strings {}", $name::NAMES.join(", "))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$name, E> {
                        $name::from_name(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

string_enum!(
    /// `ca.<name>.service_dist`.
    ServiceDist { Exponential = "exponential", Constant = "constant", LogNormal = "lognormal" }
);
string_enum!(
    /// `ca.<name>.kind`.
    RawCaKind { Usl = "usl", AwsPca = "aws-pca", GoogleCas = "google-cas", Vault = "vault" }
);
string_enum!(
    /// `ca.<name>.tier` (Google CAS).
    RawCasTier { Enterprise = "enterprise", DevOps = "devops" }
);
string_enum!(
    /// `cluster.<name>.istiod.ca_mode`.
    RawCaMode { KubernetesRa = "kubernetes-ra", Istiod = "istiod", IstioCsr = "istio-csr" }
);
string_enum!(
    /// `cluster.<name>.signer.kind`.
    RawSignerKind { CertManager = "cert-manager", ControllerRuntime = "controller-runtime", IstioCsr = "istio-csr" }
);
string_enum!(
    /// `cluster.<name>.webhook.failure_policy`.
    RawFailurePolicy { Fail = "fail", Ignore = "ignore" }
);
string_enum!(
    /// `cluster.<name>.node_group.<ng>.strategy`.
    RawStrategy { Default = "default", Minimal = "minimal", Karpenter = "karpenter" }
);
string_enum!(
    /// `rollout.pacing`.
    RawPacing { AllAtOnce = "all_at_once", Batches = "batches", TokenBucket = "token_bucket", Aimd = "aimd" }
);
string_enum!(
    /// `rollout.node_groups`.
    RawNodeGroupOrder { InOrder = "in_order", Together = "together" }
);
string_enum!(
    /// `intervention.<name>.pods` of `restart_crashlooping`.
    RawRestartPods { Crashlooping = "crashlooping", NotReady = "not_ready" }
);
string_enum!(
    /// `intervention.<name>.action`.
    RawAction {
        ScaleIstiod = "scale_istiod",
        DeleteFailedCsrs = "delete_failed_csrs",
        PauseRollout = "pause_rollout",
        ResumeRollout = "resume_rollout",
        RestartCrashlooping = "restart_crashlooping",
        SetCa = "set_ca",
        RestartWorkloads = "restart_workloads",
    }
);

// ---------------------------------------------------------------------------------------
// The document.

/// A fleetsim scenario: the fleet, how it is rolled, interventions, and optionally
/// strategies, a sweep grid and assertions (docs/scenario.md).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDocument {
    /// The run: name, seed, horizon, budgets.
    pub scenario: Option<RawMeta>,
    /// Certificate authorities (issuers), keyed by name; clusters name the one they use.
    #[serde(default)]
    pub ca: IndexMap<String, RawCa>,
    /// Clusters, keyed by name, in wave order (at least one).
    #[serde(default)]
    pub cluster: IndexMap<String, RawCluster>,
    /// How the fleet's node groups are rolled and pods are paced.
    pub rollout: Option<RawRollout>,
    /// Actions at a time (`at`) or when a condition holds (`when`), keyed by name.
    #[serde(default)]
    pub intervention: IndexMap<String, RawIntervention>,
    /// The grid `fleetsim sweep` runs (docs/sweep.md).
    #[serde(default)]
    #[schemars(schema_with = "sweep_schema")]
    pub sweep: Option<toml::Table>,
    /// Named bundles of overrides (`dotted.path = value`) that `report` and sweeps compare.
    #[serde(default)]
    #[schemars(schema_with = "strategies_schema")]
    pub strategies: Option<toml::Table>,
    /// The assertions `fleetsim check` judges (docs/check-and-report.md).
    #[serde(default)]
    #[schemars(schema_with = "expect_schema")]
    pub expect: Option<toml::Table>,
}

/// A section another layer reads as written: its keys (the ones its validator accepts),
/// their values left to it.
fn section_schema(keys: &[&str]) -> Schema {
    let properties: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), serde_json::Value::Bool(true)))
        .collect();
    json_schema!({ "type": "object", "additionalProperties": false, "properties": properties })
}

fn sweep_schema(_: &mut SchemaGenerator) -> Schema {
    section_schema(super::sections::SWEEP_KEYS)
}

fn expect_schema(_: &mut SchemaGenerator) -> Schema {
    section_schema(super::sections::EXPECT_KEYS)
}

fn strategies_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "additionalProperties": { "type": "object" } })
}

/// `[scenario]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeta {
    /// Name in outputs and reports (default: the file name without its extension).
    pub name: Option<String>,
    /// One line for reports.
    pub description: Option<String>,
    /// Master seed (integer >= 0); `--seed` overrides it.
    pub seed: Option<Int>,
    /// No event at or after this time runs (> 0, at most 30d).
    pub horizon: Option<Dur>,
    /// Period of `timeseries.csv` and of `when` conditions (>= 1s).
    pub sample_interval: Option<Dur>,
    /// Event budget (1..=10^10); hitting it ends the run and is reported.
    pub max_events: Option<Int>,
    /// The memory budget of a run (`4GiB`), checked up front against an estimate.
    pub max_memory: Option<String>,
}

/// `[ca.<name>]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCa {
    /// The kind of CA; the other keys belong to one kind each (a key of another kind is an error).
    pub kind: Option<RawCaKind>,
    /// `usl`: requests served concurrently.
    pub workers: Option<Int>,
    /// `usl`: service-time distribution.
    pub service_dist: Option<ServiceDist>,
    /// `usl`: mean (exponential) or value (constant) service time.
    pub service_mean: Option<Dur>,
    /// `usl`: lognormal median service time.
    pub service_median: Option<Dur>,
    /// `usl`: lognormal 99th-percentile service time (> service_median).
    pub service_p99: Option<Dur>,
    /// `usl`, `vault`: token-bucket rate limit in front of the CA, requests per second (> 0).
    pub rate_limit_per_s: Option<Num>,
    /// `usl`, `vault`: bucket size (>= 1); only with rate_limit_per_s.
    pub rate_limit_burst: Option<Int>,
    /// `usl`: USL contention sigma (0 <= sigma < 1).
    pub contention_sigma: Option<Num>,
    /// `usl`: USL coherency kappa (0..=1).
    pub coherency_kappa: Option<Num>,
    /// `usl`: each Failed CSR object multiplies service time by (1 + alpha); an assumption (listed)
    /// when > 0.
    pub failed_csr_slowdown_alpha: Option<Num>,
    /// `usl`: where sigma and kappa were measured; without it, contention > 0 is an assumption.
    pub contention_source: Option<String>,
    /// `aws-pca`: the account-Region whose quotas apply (shared by every CA naming it).
    pub account: Option<String>,
    /// `aws-pca`: IssueCertificate quota, per second.
    pub issue_rate_per_s: Option<Num>,
    /// `aws-pca`: IssueCertificate burst.
    pub issue_burst: Option<Int>,
    /// `aws-pca`: GetCertificate quota, per second.
    pub get_rate_per_s: Option<Num>,
    /// `aws-pca`: GetCertificate burst.
    pub get_burst: Option<Int>,
    /// `aws-pca`: IssueCertificate to certificate available.
    pub issue_latency: Option<Dur>,
    /// `aws-pca`: one API round trip.
    pub api_latency: Option<Dur>,
    /// `aws-pca`: a CSR signer's GetCertificate poll (> 0).
    pub poll_interval: Option<Dur>,
    /// `aws-pca`: aws-sdk-go-v2 standard retryer, attempts (aws-privateca-issuer only).
    pub sdk_max_attempts: Option<Int>,
    /// `aws-pca`: the retryer's largest back-off (> 0).
    pub sdk_max_backoff: Option<Dur>,
    /// `aws-pca`: the retryer's retry quota tokens.
    pub retry_quota_tokens: Option<Int>,
    /// `google-cas`: CA tier, 7/s (enterprise) or 25/s (devops).
    pub tier: Option<RawCasTier>,
    /// `google-cas`: location whose per-project quota applies.
    pub location: Option<String>,
    /// `google-cas`: per-location rate, requests per second.
    pub location_rate_per_s: Option<Num>,
    /// `google-cas`: latency of one CreateCertificate.
    pub latency: Option<Dur>,
    /// `vault`: `/sign` latency mean (lognormal; with latency_p99).
    pub latency_mean: Option<Dur>,
    /// `vault`: `/sign` latency 99th percentile (with latency_mean).
    pub latency_p99: Option<Dur>,
}

/// `[cluster.<name>]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    /// > 1 makes this table a template of `count` clusters named `<name>-<i>` (1..=10000).
    pub count: Option<Int>,
    /// Name of the `[ca.<name>]` this cluster's signer calls; absent: istiod's built-in CA.
    pub ca: Option<String>,
    /// The control plane.
    pub istiod: Option<RawIstiod>,
    /// The sidecar-injector webhook.
    pub webhook: Option<RawWebhook>,
    /// istio-agent in each injected pod.
    pub agent: Option<RawAgent>,
    /// Kubelet and controller behaviour.
    pub kubernetes: Option<RawKubernetes>,
    /// The kube-apiserver (API Priority and Fairness).
    pub apiserver: Option<RawApiServer>,
    /// The signer controller (`ca_mode` kubernetes-ra or istio-csr).
    pub signer: Option<RawSigner>,
    /// EKS managed node groups or Karpenter pools, keyed by name.
    #[serde(default)]
    pub node_group: IndexMap<String, RawNodeGroup>,
    /// Workloads, keyed by name.
    #[serde(default)]
    pub workload: IndexMap<String, RawWorkload>,
    /// Sets of cert-manager Certificates, keyed by name.
    #[serde(default)]
    pub certificates: IndexMap<String, RawCertificates>,
}

/// `[cluster.<name>.certificates.<set>]`: cert-manager Certificates.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificates {
    /// Certificates in the set (1..=1000000).
    pub count: Option<Int>,
    /// Name of the CA that signs their CertificateRequests (the cluster's own `ca`); absent:
    /// cert-manager's in-process CA issuer.
    pub issuer: Option<String>,
    /// `spec.duration` of each Certificate (> 0).
    pub duration: Option<Dur>,
    /// When the set is created.
    pub created_at: Option<Dur>,
}

/// `[cluster.<name>.istiod]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIstiod {
    /// istiod replicas (1..=1000).
    pub replicas: Option<Int>,
    /// Container start until the informers send their LISTs.
    pub startup_base: Option<Dur>,
    /// Readiness probe period (> 0).
    pub readiness_period: Option<Dur>,
    /// Kubernetes client QPS per replica (`--kubernetesApiQPS`), per second.
    pub client_qps: Option<Num>,
    /// Kubernetes client burst per replica (`--kubernetesApiBurst`).
    pub client_burst: Option<Int>,
    /// Istio release `1.MINOR.PATCH`: picks the chiron flow, startup probe and rotation jitter.
    pub version: Option<String>,
    /// How workload certificates are signed: through CSRs and the signer, istiod's built-in CA, or
    /// istio-csr.
    pub ca_mode: Option<RawCaMode>,
    /// `PILOT_CERT_PROVIDER`: who signs istiod's own serving certificate, `istiod` or
    /// `k8s.io/<signer>` (a CSR through the cluster's signer at every start).
    pub pilot_cert_provider: Option<String>,
    /// Istio CRD informers (not yet used).
    pub crd_informers: Option<Int>,
    /// Listed as an assumption when set: the model runs the release's chiron flow.
    pub ca_wait_timeout: Option<Dur>,
    /// istiod's deferred Delete of its CSRs; false is an assumption (listed).
    pub delete_csr_on_give_up: Option<bool>,
    /// A PDB (minAvailable 1) for istiod when replicas > 1.
    pub pdb: Option<bool>,
    /// The node group istiod runs on (default: the first).
    pub node_group: Option<String>,
}

/// `[cluster.<name>.webhook]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    /// Sidecar-injector call timeout (1s..=30s).
    pub timeout: Option<Dur>,
    /// What happens to a pod creation when istiod cannot answer.
    pub failure_policy: Option<RawFailurePolicy>,
    /// istiod's time to inject one pod.
    pub injection_time: Option<Dur>,
}

/// `[cluster.<name>.agent]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    /// CSR attempts in total per inner round (1..=100).
    pub inner_attempts: Option<Int>,
    /// First inner wait, doubling (> 0).
    pub inner_initial: Option<Dur>,
    /// First outer back-off (> 0).
    pub outer_initial: Option<Dur>,
    /// Outer back-off cap (>= outer_initial).
    pub outer_max: Option<Dur>,
    /// No certificate by then: the kubelet kills the proxy (> 0).
    pub startup_probe_limit: Option<Dur>,
    /// `terminationDrainDuration`.
    pub termination_drain: Option<Dur>,
    /// postStart `pilot-agent wait`: kills the proxy after 60 s without a certificate.
    pub hold_application_until_proxy_starts: Option<bool>,
    /// The sidecar startupProbe (default: the release's, on from 1.20).
    pub startup_probe: Option<bool>,
}

/// `[cluster.<name>.kubernetes]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    /// Kubernetes release `1.MINOR` (1.27 ... 1.36).
    pub version: Option<String>,
    /// KEP-4603 1 s / 60 s crash-loop back-off.
    pub reduced_crashloop_backoff: Option<bool>,
    /// Node `maxContainerRestartPeriod` (1s..=300s).
    pub max_container_restart_period: Option<Dur>,
    /// kube-controller-manager client QPS, per second (not yet used).
    pub kcm_qps: Option<Num>,
    /// kube-controller-manager client burst (not yet used).
    pub kcm_burst: Option<Int>,
    /// csrcleaner deletes Pending CSRs older than this.
    pub csr_pending_max_age: Option<Dur>,
    /// csrcleaner also deletes Approved-unissued CSRs after 24 h.
    pub csr_cleaner_approved_unissued: Option<bool>,
    /// ReplicaSet requeue after a failed create, doubling (> 0).
    pub requeue_base: Option<Dur>,
    /// Requeue cap (>= requeue_base).
    pub requeue_max: Option<Dur>,
    /// The ReplicaSet controller's overall retry bucket: tokens per second (> 0).
    pub requeue_rate_per_s: Option<Num>,
    /// Its size (>= 1).
    pub requeue_burst: Option<Int>,
    /// csrcleaner scan period (> 0).
    pub csr_cleaner_period: Option<Dur>,
    /// Age after which Failed, Denied and issued CSRs are deleted.
    pub csr_failed_max_age: Option<Dur>,
    /// Retry period of an eviction a PDB refused (> 0).
    pub eviction_retry: Option<Dur>,
}

/// `[cluster.<name>.apiserver]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiServer {
    /// `--max-requests-inflight` (seats shared by the priority levels).
    pub max_requests_inflight: Option<Int>,
    /// `--max-mutating-requests-inflight`.
    pub max_mutating_requests_inflight: Option<Int>,
    /// `--request-timeout`; the APF queue wait limit is a quarter of it.
    pub request_timeout: Option<Dur>,
    /// Seat borrowing between priority levels every 10 s.
    pub borrowing: Option<bool>,
    /// Service time of a GET.
    pub latency_get: Option<Dur>,
    /// Service time of a create, update or delete.
    pub latency_mutating: Option<Dur>,
    /// Service time of a LIST, fixed part.
    pub latency_list_base: Option<Dur>,
    /// Service time of a LIST, per object listed.
    pub latency_list_per_object: Option<Dur>,
}

/// `[cluster.<name>.signer]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigner {
    /// The signer controller.
    pub kind: Option<RawSignerKind>,
    /// Concurrent reconciles.
    pub workers: Option<Int>,
    /// The controller's client QPS, per second.
    pub client_qps: Option<Num>,
    /// The controller's client burst.
    pub client_burst: Option<Int>,
    /// apiserver write to the controller's informer.
    pub informer_delay: Option<Dur>,
    /// controller-runtime only: mark the CSR Failed on an issuer error (an assumption, listed).
    pub mark_failed_on_issuer_error: Option<bool>,
    /// istio-csr only: replicas.
    pub replicas: Option<Int>,
    /// istio-csr only: keep each CertificateRequest after use.
    pub preserve_certificate_requests: Option<bool>,
    /// istio-csr only: the workload certificate's lifetime.
    pub max_certificate_duration: Option<Dur>,
}

/// `[cluster.<name>.node_group.<ng>]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNodeGroup {
    /// Nodes before (and after) the upgrade (1..=100000).
    pub nodes: Option<Int>,
    /// Pods per node (1..=1000).
    pub max_pods: Option<Int>,
    /// Availability zones (1..=16).
    pub azs: Option<Int>,
    /// AMI at the start.
    pub ami: Option<String>,
    /// AMI to roll to.
    pub target_ami: Option<String>,
    /// false: this group is not upgraded.
    pub upgrade: Option<bool>,
    /// EKS DEFAULT (new nodes first), MINIMAL (terminate first), or a Karpenter disruption budget.
    pub strategy: Option<RawStrategy>,
    /// EKS `maxUnavailable` (1..=100); not with max_unavailable_percent.
    pub max_unavailable: Option<Int>,
    /// EKS `maxUnavailablePercentage` / Karpenter budget, percent (0 < p <= 100).
    pub max_unavailable_percent: Option<Num>,
    /// New node launch to Ready, uniform in [launch_min, launch_max].
    pub launch_min: Option<Dur>,
    /// See launch_min (>= launch_min).
    pub launch_max: Option<Dur>,
    /// Per-node drain limit, then PodEvictionFailure unless `force` (> 0).
    pub drain_timeout: Option<Dur>,
    /// Ignore PDBs once the drain limit is hit.
    pub force: Option<bool>,
    /// Drained node to terminated.
    pub terminate_delay: Option<Dur>,
}

/// `[cluster.<name>.workload.<wl>]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    /// Desired replicas (>= 1).
    pub replicas: Option<Int>,
    /// Pods get the Istio sidecar (and need a certificate to become ready).
    pub injected: Option<bool>,
    /// A PodDisruptionBudget covers the workload.
    pub pdb: Option<bool>,
    /// The PDB's maxUnavailable (>= 0; 0 blocks drains until `force`).
    pub pdb_max_unavailable: Option<Int>,
    /// Scheduled to containers started.
    pub container_start: Option<Dur>,
    /// Started (and certified, if injected) to ready.
    pub ready_delay: Option<Dur>,
    /// The node group its pods run on (default: any).
    pub node_group: Option<String>,
}

/// `[rollout]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    /// When the first wave starts.
    pub start: Option<Dur>,
    /// Clusters per wave, in declaration order; the rest form a last wave.
    pub waves: Option<Vec<Int>>,
    /// Wait for the previous wave to be complete and healthy.
    pub health_gate: Option<bool>,
    /// Time a wave must stay healthy before the next.
    pub soak: Option<Dur>,
    /// A wave not healthy by then halts the rollout (> 0).
    pub gate_timeout: Option<Dur>,
    /// How often the pipeline polls a wave for completion (`eks wait`: 30 s) (> 0).
    pub poll_interval: Option<Dur>,
    /// istiod replicas while a cluster is upgraded (restored after).
    pub istiod_replicas_during: Option<Int>,
    /// A cluster's node groups updated `in_order` (one after another) or `together`.
    pub node_groups: Option<RawNodeGroupOrder>,
    /// Pacing of evictions within a cluster.
    pub pacing: Option<RawPacing>,
    /// `batches`: pods per batch.
    pub batch_size: Option<Int>,
    /// `batches`: wait between batches (> 0).
    pub batch_interval: Option<Dur>,
    /// `token_bucket`: pods per second.
    pub rate_per_s: Option<Num>,
    /// `token_bucket`: bucket size.
    pub burst: Option<Int>,
    /// `aimd`: starting rate, pods per second.
    pub aimd_initial_per_s: Option<Num>,
    /// `aimd`: floor, pods per second.
    pub aimd_min_per_s: Option<Num>,
    /// `aimd`: ceiling, pods per second.
    pub aimd_max_per_s: Option<Num>,
    /// `aimd`: added each interval without CSR errors, pods per second.
    pub aimd_increase_per_s: Option<Num>,
    /// `aimd`: multiplied when the error ratio exceeds the threshold (0 < f < 1).
    pub aimd_decrease_factor: Option<Num>,
    /// `aimd`: CSR timeouts / attempts in an interval that trigger a decrease (0..=1).
    pub aimd_error_threshold: Option<Num>,
    /// `aimd`: adjustment period (> 0).
    pub aimd_interval: Option<Dur>,
}

/// `[intervention.<name>]`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntervention {
    /// Fire at this time (give `at` or `when`).
    pub at: Option<Dur>,
    /// Fire at the first sample where this predicate holds, e.g. "crashloop_pods > 100".
    pub when: Option<String>,
    /// Cluster or template names it applies to (absent: every cluster).
    pub clusters: Option<Vec<String>>,
    /// What it does; each action takes its own keys.
    pub action: Option<RawAction>,
    /// `scale_istiod`: istiod replicas (1..=1000).
    pub replicas: Option<Int>,
    /// `restart_crashlooping`: pods per batch.
    pub batch_size: Option<Int>,
    /// `restart_crashlooping`: wait between batches.
    pub interval: Option<Dur>,
    /// `restart_crashlooping`: which pods are restarted.
    pub pods: Option<RawRestartPods>,
    /// `set_ca`: the CA to change (required when there is more than one).
    pub ca: Option<String>,
    /// `set_ca`: the CA's new workers.
    pub workers: Option<Int>,
    /// `set_ca`: the CA's new rate limit, per second (0 removes it).
    pub rate_limit_per_s: Option<Num>,
    /// `set_ca`: the new bucket size.
    pub rate_limit_burst: Option<Int>,
    /// `delete_failed_csrs`: kubectl's client QPS, per second.
    pub client_qps: Option<Num>,
    /// `delete_failed_csrs`: kubectl's client burst.
    pub client_burst: Option<Int>,
}

// ---------------------------------------------------------------------------------------
// Schema: the shape of the tree, for diagnostics and `--set`.

/// What a field holds.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// A value (number, string, bool, array).
    Leaf,
    /// A table kept as is for another layer (`[sweep]`, `[strategies]`, `[expect]`).
    Opaque,
    /// A sub-table with a fixed set of fields.
    Table(&'static TableSchema),
    /// A table of named tables (`[ca.<name>]`).
    Map(&'static TableSchema),
}

/// One serde struct: its fields (from serde), the non-leaf ones among them, and a checker
/// that deserialises one field alone (to find which fields of a bad table are bad).
pub(crate) struct TableSchema {
    /// What the table is, for messages (`a node group`).
    pub what: &'static str,
    fields: fn() -> &'static [&'static str],
    children: &'static [(&'static str, Shape)],
    check: fn(&str, &toml::Value) -> Result<(), String>,
}

impl TableSchema {
    /// Every field name, in declaration order.
    pub fn fields(&self) -> &'static [&'static str] {
        (self.fields)()
    }

    /// What `field` holds; `None` if it is not a field.
    pub fn shape(&self, field: &str) -> Option<Shape> {
        if let Some((_, s)) = self.children.iter().find(|(n, _)| *n == field) {
            return Some(*s);
        }
        self.fields().contains(&field).then_some(Shape::Leaf)
    }

    /// Deserialises `field = value` alone into this table's struct.
    pub fn check_leaf(&self, field: &str, value: &toml::Value) -> Result<(), String> {
        (self.check)(field, value)
    }

    /// The non-leaf fields.
    #[cfg(test)]
    pub fn children(&self) -> &'static [(&'static str, Shape)] {
        self.children
    }
}

fn check_field<T: DeserializeOwned>(field: &str, value: &toml::Value) -> Result<(), String> {
    let mut t = toml::Table::new();
    t.insert(field.to_string(), value.clone());
    T::deserialize(t)
        .map(|_| ())
        .map_err(|e| e.message().to_string())
}

macro_rules! schema {
    ($name:ident, $ty:ty, $what:literal, [$(($f:literal, $s:expr)),* $(,)?]) => {
        pub(crate) static $name: TableSchema = TableSchema {
            what: $what,
            fields: fields_of::<$ty>,
            children: &[$(($f, $s)),*],
            check: check_field::<$ty>,
        };
    };
}

schema!(META, RawMeta, "the [scenario] table", []);
schema!(CA, RawCa, "a CA", []);
schema!(ISTIOD, RawIstiod, "istiod", []);
schema!(WEBHOOK, RawWebhook, "the webhook", []);
schema!(AGENT, RawAgent, "the agent", []);
schema!(KUBERNETES, RawKubernetes, "kubernetes", []);
schema!(APISERVER, RawApiServer, "the apiserver", []);
schema!(SIGNER, RawSigner, "the signer", []);
schema!(NODE_GROUP, RawNodeGroup, "a node group", []);
schema!(WORKLOAD, RawWorkload, "a workload", []);
schema!(CERTIFICATES, RawCertificates, "a set of Certificates", []);
schema!(
    CLUSTER,
    RawCluster,
    "a cluster",
    [
        ("istiod", Shape::Table(&ISTIOD)),
        ("webhook", Shape::Table(&WEBHOOK)),
        ("agent", Shape::Table(&AGENT)),
        ("kubernetes", Shape::Table(&KUBERNETES)),
        ("apiserver", Shape::Table(&APISERVER)),
        ("signer", Shape::Table(&SIGNER)),
        ("node_group", Shape::Map(&NODE_GROUP)),
        ("workload", Shape::Map(&WORKLOAD)),
        ("certificates", Shape::Map(&CERTIFICATES)),
    ]
);
schema!(ROLLOUT, RawRollout, "the [rollout] table", []);
schema!(INTERVENTION, RawIntervention, "an intervention", []);
schema!(
    DOCUMENT,
    RawDocument,
    "the document",
    [
        ("scenario", Shape::Table(&META)),
        ("ca", Shape::Map(&CA)),
        ("cluster", Shape::Map(&CLUSTER)),
        ("rollout", Shape::Table(&ROLLOUT)),
        ("intervention", Shape::Map(&INTERVENTION)),
        ("sweep", Shape::Opaque),
        ("strategies", Shape::Opaque),
        ("expect", Shape::Opaque),
    ]
);

/// The field names serde's derive gives a struct (captured by a probing deserializer).
pub(crate) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(FieldsProbe(&mut fields));
    fields.unwrap_or(&[])
}

struct FieldsProbe<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for FieldsProbe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_children_are_serde_fields() {
        fn walk(s: &'static TableSchema) {
            assert!(!s.fields().is_empty(), "{}", s.what);
            for (name, shape) in s.children() {
                assert!(s.fields().contains(name), "{} has no field {name}", s.what);
                if let Shape::Table(t) | Shape::Map(t) = shape {
                    walk(t);
                }
            }
        }
        walk(&DOCUMENT);
        assert_eq!(
            DOCUMENT.fields(),
            [
                "scenario",
                "ca",
                "cluster",
                "rollout",
                "intervention",
                "sweep",
                "strategies",
                "expect"
            ]
        );
    }

    #[test]
    fn leaf_types_read_toml() {
        let t: toml::Table =
            toml::from_str("a = 3\nb = 2.5\nc = \"1h30m\"\nd = 0\ne = \"aimd\"\n").unwrap();
        #[derive(Deserialize)]
        struct S {
            a: Int,
            b: Num,
            c: Dur,
            d: Dur,
            e: RawPacing,
        }
        let s: S = t.try_into().unwrap();
        assert_eq!(s.a, Int(3));
        assert_eq!(s.b, Num(2.5));
        assert_eq!(s.c.time, SimTime::from_secs(5400));
        assert_eq!(s.d.time, SimTime::ZERO);
        assert_eq!(s.e, RawPacing::Aimd);
    }

    #[test]
    fn leaf_type_errors_read_well() {
        let v = toml::Value::String("3".into());
        let e = NODE_GROUP.check_leaf("nodes", &v).unwrap_err();
        assert!(e.contains("expected an integer"), "{e}");
        let e = NODE_GROUP
            .check_leaf("strategy", &toml::Value::String("minimum".into()))
            .unwrap_err();
        assert!(e.contains("did you mean \"minimal\""), "{e}");
        let e = NODE_GROUP
            .check_leaf("launch_min", &toml::Value::Integer(30))
            .unwrap_err();
        assert!(e.contains("\"30s\""), "{e}");
    }
}
