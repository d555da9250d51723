//! The raw layer: serde structs mirroring the TOML schema one to one. Every field is
//! optional (omitted = the default from [`super::types`]), unknown keys are rejected
//! (`deny_unknown_fields`), named things are tables keyed by name in declaration order.
//! Nothing here checks ranges or references: that is [`super::validate`]'s job.
//!
//! [`SCHEMA`] describes the same tree for the diagnostics walk and `--set`: which fields
//! are sub-tables, which are maps of named tables. Leaf field names come from serde
//! itself ([`fields_of`]), so the two cannot drift apart.

use indexmap::IndexMap;
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::Deserialize;

use crate::duration::parse_duration;
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

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDocument {
    pub scenario: Option<RawMeta>,
    #[serde(default)]
    pub ca: IndexMap<String, RawCa>,
    #[serde(default)]
    pub cluster: IndexMap<String, RawCluster>,
    pub rollout: Option<RawRollout>,
    #[serde(default)]
    pub intervention: IndexMap<String, RawIntervention>,
    pub sweep: Option<toml::Table>,
    pub strategies: Option<toml::Table>,
    pub expect: Option<toml::Table>,
}

/// `[scenario]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMeta {
    pub name: Option<String>,
    pub description: Option<String>,
    pub seed: Option<Int>,
    pub horizon: Option<Dur>,
    pub sample_interval: Option<Dur>,
    pub max_events: Option<Int>,
    /// The memory budget of a run (`4GiB`), checked up front against an estimate.
    pub max_memory: Option<String>,
}

/// `[ca.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCa {
    pub kind: Option<RawCaKind>,
    pub workers: Option<Int>,
    pub service_dist: Option<ServiceDist>,
    pub service_mean: Option<Dur>,
    pub service_median: Option<Dur>,
    pub service_p99: Option<Dur>,
    pub rate_limit_per_s: Option<Num>,
    pub rate_limit_burst: Option<Int>,
    pub contention_sigma: Option<Num>,
    pub coherency_kappa: Option<Num>,
    pub failed_csr_slowdown_alpha: Option<Num>,
    pub contention_source: Option<String>,
    pub account: Option<String>,
    pub issue_rate_per_s: Option<Num>,
    pub issue_burst: Option<Int>,
    pub get_rate_per_s: Option<Num>,
    pub get_burst: Option<Int>,
    pub issue_latency: Option<Dur>,
    pub api_latency: Option<Dur>,
    pub poll_interval: Option<Dur>,
    pub sdk_max_attempts: Option<Int>,
    pub sdk_max_backoff: Option<Dur>,
    pub retry_quota_tokens: Option<Int>,
    pub tier: Option<RawCasTier>,
    pub location: Option<String>,
    pub location_rate_per_s: Option<Num>,
    pub latency: Option<Dur>,
    pub latency_mean: Option<Dur>,
    pub latency_p99: Option<Dur>,
}

/// `[cluster.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    pub count: Option<Int>,
    pub ca: Option<String>,
    pub istiod: Option<RawIstiod>,
    pub webhook: Option<RawWebhook>,
    pub agent: Option<RawAgent>,
    pub kubernetes: Option<RawKubernetes>,
    pub apiserver: Option<RawApiServer>,
    pub signer: Option<RawSigner>,
    #[serde(default)]
    pub node_group: IndexMap<String, RawNodeGroup>,
    #[serde(default)]
    pub workload: IndexMap<String, RawWorkload>,
    #[serde(default)]
    pub certificates: IndexMap<String, RawCertificates>,
}

/// `[cluster.<name>.certificates.<set>]`: cert-manager Certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificates {
    pub count: Option<Int>,
    pub issuer: Option<String>,
    pub duration: Option<Dur>,
    pub created_at: Option<Dur>,
}

/// `[cluster.<name>.istiod]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIstiod {
    pub replicas: Option<Int>,
    pub startup_base: Option<Dur>,
    pub readiness_period: Option<Dur>,
    pub client_qps: Option<Num>,
    pub client_burst: Option<Int>,
    pub version: Option<String>,
    pub ca_mode: Option<RawCaMode>,
    pub pilot_cert_provider: Option<String>,
    pub crd_informers: Option<Int>,
    pub ca_wait_timeout: Option<Dur>,
    pub delete_csr_on_give_up: Option<bool>,
    pub pdb: Option<bool>,
    pub node_group: Option<String>,
}

/// `[cluster.<name>.webhook]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub timeout: Option<Dur>,
    pub failure_policy: Option<RawFailurePolicy>,
    pub injection_time: Option<Dur>,
}

/// `[cluster.<name>.agent]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAgent {
    pub inner_attempts: Option<Int>,
    pub inner_initial: Option<Dur>,
    pub outer_initial: Option<Dur>,
    pub outer_max: Option<Dur>,
    pub startup_probe_limit: Option<Dur>,
    pub termination_drain: Option<Dur>,
    pub hold_application_until_proxy_starts: Option<bool>,
    pub startup_probe: Option<bool>,
}

/// `[cluster.<name>.kubernetes]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    pub version: Option<String>,
    pub reduced_crashloop_backoff: Option<bool>,
    pub max_container_restart_period: Option<Dur>,
    pub kcm_qps: Option<Num>,
    pub kcm_burst: Option<Int>,
    pub csr_pending_max_age: Option<Dur>,
    pub csr_cleaner_approved_unissued: Option<bool>,
    pub requeue_base: Option<Dur>,
    pub requeue_max: Option<Dur>,
    pub csr_cleaner_period: Option<Dur>,
    pub csr_failed_max_age: Option<Dur>,
    pub eviction_retry: Option<Dur>,
}

/// `[cluster.<name>.apiserver]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApiServer {
    pub max_requests_inflight: Option<Int>,
    pub max_mutating_requests_inflight: Option<Int>,
    pub request_timeout: Option<Dur>,
    pub borrowing: Option<bool>,
    pub latency_get: Option<Dur>,
    pub latency_mutating: Option<Dur>,
    pub latency_list_base: Option<Dur>,
    pub latency_list_per_object: Option<Dur>,
}

/// `[cluster.<name>.signer]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSigner {
    pub kind: Option<RawSignerKind>,
    pub workers: Option<Int>,
    pub client_qps: Option<Num>,
    pub client_burst: Option<Int>,
    pub informer_delay: Option<Dur>,
    pub mark_failed_on_issuer_error: Option<bool>,
    pub replicas: Option<Int>,
    pub preserve_certificate_requests: Option<bool>,
    pub max_certificate_duration: Option<Dur>,
}

/// `[cluster.<name>.node_group.<ng>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNodeGroup {
    pub nodes: Option<Int>,
    pub max_pods: Option<Int>,
    pub azs: Option<Int>,
    pub ami: Option<String>,
    pub target_ami: Option<String>,
    pub upgrade: Option<bool>,
    pub strategy: Option<RawStrategy>,
    pub max_unavailable: Option<Int>,
    pub max_unavailable_percent: Option<Num>,
    pub launch_min: Option<Dur>,
    pub launch_max: Option<Dur>,
    pub drain_timeout: Option<Dur>,
    pub force: Option<bool>,
    pub terminate_delay: Option<Dur>,
}

/// `[cluster.<name>.workload.<wl>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWorkload {
    pub replicas: Option<Int>,
    pub injected: Option<bool>,
    pub pdb: Option<bool>,
    pub pdb_max_unavailable: Option<Int>,
    pub container_start: Option<Dur>,
    pub ready_delay: Option<Dur>,
    pub node_group: Option<String>,
}

/// `[rollout]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRollout {
    pub start: Option<Dur>,
    pub waves: Option<Vec<Int>>,
    pub health_gate: Option<bool>,
    pub soak: Option<Dur>,
    pub gate_timeout: Option<Dur>,
    pub istiod_replicas_during: Option<Int>,
    pub pacing: Option<RawPacing>,
    pub batch_size: Option<Int>,
    pub batch_interval: Option<Dur>,
    pub rate_per_s: Option<Num>,
    pub burst: Option<Int>,
    pub aimd_initial_per_s: Option<Num>,
    pub aimd_min_per_s: Option<Num>,
    pub aimd_max_per_s: Option<Num>,
    pub aimd_increase_per_s: Option<Num>,
    pub aimd_decrease_factor: Option<Num>,
    pub aimd_error_threshold: Option<Num>,
    pub aimd_interval: Option<Dur>,
}

/// `[intervention.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntervention {
    pub at: Option<Dur>,
    pub when: Option<String>,
    pub clusters: Option<Vec<String>>,
    pub action: Option<RawAction>,
    pub replicas: Option<Int>,
    pub batch_size: Option<Int>,
    pub interval: Option<Dur>,
    pub pods: Option<RawRestartPods>,
    pub ca: Option<String>,
    pub workers: Option<Int>,
    pub rate_limit_per_s: Option<Num>,
    pub rate_limit_burst: Option<Int>,
    pub client_qps: Option<Num>,
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
