//! Limits against absurd sizes, all in one place (and in `docs/scenario.md#limits`).
//!
//! They are far above any real fleet; their job is to turn a typo (`nodes = 5000000`,
//! `horizon = "300d"`) into an error naming the field instead of a run that exhausts
//! memory or never ends. Totals are checked before clusters are expanded, so no
//! allocation grows with an absurd value.

use crate::engine::SimTime;

/// Clusters in the fleet, after `count` expansion.
pub const MAX_CLUSTERS: u64 = 10_000;
/// Pods in the whole fleet (workload replicas plus istiod replicas, after expansion).
pub const MAX_PODS_TOTAL: u64 = 20_000_000;
/// Nodes in one node group.
pub const MAX_NODES_PER_GROUP: u64 = 100_000;
/// Nodes in the whole fleet, after expansion.
pub const MAX_NODES_TOTAL: u64 = 1_000_000;
/// Node groups in the whole fleet, after expansion.
pub const MAX_NODE_GROUPS_TOTAL: u64 = 100_000;
/// Workloads in the whole fleet, after expansion.
pub const MAX_WORKLOADS_TOTAL: u64 = 1_000_000;
/// Workloads of one cluster (a pod names its workload in 16 bits, istiod being 0).
pub const MAX_WORKLOADS_PER_CLUSTER: u64 = 65_535;
/// Pods per node (`max_pods`; EKS's largest instance types allow 737).
pub const MAX_PODS_PER_NODE: u64 = 1_000;
/// Availability zones of one node group.
pub const MAX_AZS: u64 = 16;
/// Workers of one CA.
pub const MAX_WORKERS: u64 = 1_000_000;
/// Certificate authorities.
pub const MAX_CAS: u64 = 1_000;
/// Interventions.
pub const MAX_INTERVENTIONS: u64 = 10_000;
/// istiod replicas of one cluster (also during the rollout and in `scale_istiod`).
pub const MAX_ISTIOD_REPLICAS: u64 = 1_000;
/// Small per-call counts: agent inner attempts, Kubernetes calls per CSR.
pub const MAX_SMALL_COUNT: u64 = 100;
/// Bursts (client burst, token-bucket and CA rate-limit bursts).
pub const MAX_BURST: u64 = 1_000_000_000;
/// Any rate in per-second units (CA rate limit, client QPS, pacing rates).
pub const MAX_RATE_PER_S: f64 = 1e9;
/// `failed_csr_slowdown_alpha`: service-time factor per Failed CSR object.
pub const MAX_SLOWDOWN_ALPHA: f64 = 1_000.0;
/// The simulated horizon.
pub const MAX_HORIZON: SimTime = SimTime::from_secs(30 * 86_400);
/// Any other duration (timeouts, delays, periods).
pub const MAX_DURATION: SimTime = SimTime::from_secs(365 * 86_400);
/// The shortest sample interval.
pub const MIN_SAMPLE_INTERVAL: SimTime = SimTime::from_secs(1);
/// Samples per run: horizon / sample_interval.
pub const MAX_SAMPLES: u64 = 1_000_000;
/// The memory budget of one run unless `[scenario] max_memory` or `--max-memory` says
/// otherwise: 4 GiB (the estimate is in `src/budget.rs`).
pub const DEFAULT_MAX_MEMORY: u64 = 4 << 30;
/// The event budget `max_events`.
pub const MAX_EVENTS: u64 = 10_000_000_000;
/// Length of a name (CA, cluster, node group, workload, intervention, scenario).
pub const MAX_NAME_LEN: usize = 100;
/// Size of a scenario file.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Syntax errors reported per file: the first of each line, at most this many (what
/// follows a syntax error is often a consequence of it).
pub const MAX_SYNTAX_ERRORS: usize = 5;
/// Errors reported per file (a file of garbage keys would otherwise print thousands).
pub const MAX_ERRORS: usize = 100;
/// Keys in a `--set` path.
pub const MAX_PATH_KEYS: usize = 32;

/// Certificates in one `[cluster.X.certificates.NAME]` set.
pub const MAX_CERTIFICATES: u64 = 1_000_000;
