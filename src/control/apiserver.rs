//! kube-apiserver's API Priority and Fairness (APF) as a model component: which requests
//! run at once, which wait, which get 429.
//!
//! Sources: kubernetes/apiserver v0.27.0 ... v0.36.0 (= Kubernetes 1.27 ... 1.36; quotes
//! from v0.33.0): `pkg/apis/flowcontrol/bootstrap/default.go` (levels and FlowSchemas),
//! `pkg/util/flowcontrol/apf_controller.go` (seats, borrowing), `conc_alloc.go`
//! (the borrowing allocation), `fairqueuing/queueset/queueset.go` (queues, fair
//! queuing), `fairqueuing/integrator.go` (seat demand), `dropped_requests_tracker.go`
//! (Retry-After), `pkg/util/shufflesharding/shufflesharding.go` (hands),
//! `request/{width,list_work_estimator,mutating_work_estimator,config}.go` (seats per
//! request), `pkg/server/filters/priority-and-fairness.go` (429, wait limit),
//! `pkg/server/config.go` (defaults).
//!
//! # Semantics
//! - **Capacity.** `ServerCL = max_requests_inflight (400) + max_mutating_requests_inflight
//!   (200) = 600` seats. Each level's nominal limit is `ceil(ServerCL * shares / 245)`
//!   (exempt 0, catch-all 5, system 30, node-high 40, leader-election 10,
//!   workload-high 40, workload-low 100, global-default 20): 13/74/98/25/98/245/49,
//!   602 in all. `lendable = round(nominal * lendablePercent / 100)`, `min = nominal -
//!   lendable`, `max = nominal + 600` (no level sets a borrowing limit).
//! - **Borrowing** (on by default, as in the source): every 10 s each level's seat
//!   demand (seats in use + seats of waiting requests, integrated over time) gives its
//!   average, standard deviation and high watermark; `smoothed = max(avg + sd, 0.977 *
//!   smoothed + 0.023 * (avg + sd))`; the levels' current limits are then the fair
//!   allocation of the 602 seats with bounds `[max(min, min(nominal, watermark)), max]`
//!   and targets `max(lower bound, smoothed)`, rounded. At start (zero demand) that
//!   allocation is proportional to the `min` limits: workload-low starts at 56 seats, not
//!   245. With `borrowing = false` every level keeps its nominal limit.
//! - **Classification.** A request matches the bootstrap FlowSchemas in precedence order
//!   by the client's identity ([`Identity`]) and the request's verb and resource; the
//!   schema names the level and the flow distinguisher (by user or by namespace). All
//!   service accounts outside kube-system (istiod, cert-manager, istio-csr, issuers)
//!   land in workload-low with one flow per service account (so all istiod replicas share
//!   one flow); kube-controller-manager in workload-high by namespace; kubelets in
//!   node-high (nodes, leases) or system; kube-system service accounts in workload-high,
//!   their leases in leader-election. 1.34+ drops `endpoint-controller` and
//!   `workload-leader-election`.
//! - **Seats per request** (work estimator): LIST = `clamp(ceil(estimated / 100), 1,
//!   maxSeats)` where `estimated` is the *stored* object count of the resource when
//!   served from the watch cache, `stored + limit` from etcd with a selector, else `2 *
//!   limit`; a LIST or WATCH by `metadata.name` costs 1. `maxSeats = min(10, max(1,
//!   min(ceil(0.15 nominal), nominal / handSize)))`: 10 for most levels, 4 for
//!   leader-election, 8 for global-default. A create/update/patch/delete seen by
//!   `watchers >= 10` watches keeps `ceil(watchers / 10)` seats (capped at maxSeats) for
//!   an extra `5 ms * ceil(w/10) / seats` after it finishes. Everything else costs 1.
//! - **Queues.** Exempt requests run at once. catch-all has no queues: a request that
//!   does not fit is rejected at once (reason `concurrency-limit`). Other levels have
//!   `queues` (64/64/16/128/128/128) and deal each flow a hand of `handSize` (6, 4 for
//!   leader-election) queues by shuffle sharding; the request joins the hand's queue with
//!   the least waiting work. It is rejected (429, reason `queue-full`) only if the level's
//!   seats are all in use **and** that queue already holds 50.
//! - **Dispatch** is the source's fair queuing: a virtual clock `R` advancing at
//!   `min(seats requested, limit) / active queues`; the next request is the head of the
//!   queue with the least `nextDispatchR + work` (round robin from the last dispatched
//!   queue breaks ties), dispatched only if its seats fit (**head-of-line blocking**: a
//!   wide LIST waits and blocks others); `nextDispatchR` grows by the request's work
//!   (`seats x 3 ms` estimated) and is corrected by `(3 ms - actual) x seats` when it
//!   finishes; it never lags its head's arrival (anti-windup). A request wider than the
//!   whole limit runs only when nothing else executes.
//! - **Wait limit.** A queued request waits at most `deadline / 4` (the request timeout,
//!   60 s by default, or a shorter `?timeout=`; capped at 1 min): 15 s. Then it is removed
//!   and gets a 429 (reason `time-out`).
//! - **429s** carry `Retry-After` from the level's dropped-requests tracker (1.28+):
//!   starts at 1 s; each time a drop lands in a new second it is doubled (max 32) if at
//!   least `3 x retryAfter` drops fell in the last `retryAfter` seconds and `retryAfter`
//!   seconds passed since the last increase, or decreased by 1 if fewer than `retryAfter`
//!   drops fell. 1.27 sends a fixed 1 s.
//! - **Service time** per verb is an *unconfirmed* parameter ([`ServiceTimes`]).
//!
//! # What is not modelled
//! The FlowSchema hash is FNV-1a + SplitMix64 over (schema, distinguisher) instead of
//! SHA-256: the same dealing algorithm, different queues for a given flow. The virtual
//! clock's epoch wrap-around (after years) and queue removal on reconfiguration are left
//! out. Long-running requests other than watches (exec, proxy) are not requests here.
//!
//! # Event economy
//! No apiserver event at all while requests fit: [`ApiServer::submit`] admits at once,
//! returns the completion time and keeps the seats in a timer heap released lazily when
//! the apiserver is next touched (in time order, so the fair-queuing clock and the
//! borrowing integrals are exact). Only while something is queued does the apiserver keep
//! **one** pending [`ApiServerEvent`] (the next release, queue time-out or borrowing step,
//! generation-stamped); [`ApiServer::handle`] reports requests leaving their queues as
//! [`ApiOutcome`]s. The owner schedules its own reply at `done_at`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use super::version::KubeVersion;
use crate::engine::rng::{splitmix64, stream_id};
use crate::engine::{Schedule, SimTime, TraceEvent};

// ----- configuration ------------------------------------------------------------------

/// Service time of one request once it runs. **Unconfirmed**: plain defaults, no source
/// measured them; vary them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceTimes {
    /// GET (and other single-object reads).
    pub get: SimTime,
    /// create / update / patch / delete.
    pub mutating: SimTime,
    /// LIST: fixed part.
    pub list_base: SimTime,
    /// LIST: per object returned.
    pub list_per_object: SimTime,
    /// WATCH: until the watch is initialised (its seats are held only until then).
    pub watch_init: SimTime,
}

impl Default for ServiceTimes {
    fn default() -> Self {
        ServiceTimes {
            get: SimTime::from_millis(2),
            mutating: SimTime::from_millis(8),
            list_base: SimTime::from_millis(5),
            list_per_object: SimTime(20_000),
            watch_init: SimTime::from_millis(2),
        }
    }
}

/// One kube-apiserver (a cluster's control plane seen as one server).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiServerConfig {
    /// Kubernetes release (FlowSchemas, Retry-After).
    pub version: KubeVersion,
    /// `--max-requests-inflight` (400).
    pub max_requests_inflight: u32,
    /// `--max-mutating-requests-inflight` (200).
    pub max_mutating_requests_inflight: u32,
    /// `--request-timeout` (60 s); the queue wait limit is a quarter of it.
    pub request_timeout: SimTime,
    /// Borrowing between levels every 10 s (the source does it; off = nominal seats).
    pub borrowing: bool,
    /// Per-verb service times (unconfirmed).
    pub service: ServiceTimes,
}

impl Default for ApiServerConfig {
    /// The defaults of `pkg/server/config.go` on Kubernetes 1.33.
    fn default() -> Self {
        ApiServerConfig {
            version: KubeVersion::new(33),
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            request_timeout: SimTime::from_secs(60),
            borrowing: true,
            service: ServiceTimes::default(),
        }
    }
}

impl ApiServerConfig {
    /// `ServerConcurrencyLimit`.
    pub fn server_concurrency_limit(&self) -> u32 {
        self.max_requests_inflight + self.max_mutating_requests_inflight
    }

    /// Checks the fields; the message names the field under `prefix`.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        if self.server_concurrency_limit() == 0 {
            return Err(format!(
                "{prefix}.max_requests_inflight: with max_mutating_requests_inflight must be > 0"
            ));
        }
        if self.request_timeout == SimTime::ZERO {
            return Err(format!("{prefix}.request_timeout: must be > 0"));
        }
        Ok(())
    }
}

// ----- levels and flow schemas --------------------------------------------------------

/// The bootstrap priority levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Not limited (`system:masters`, health probes).
    Exempt,
    /// Matches everything left; no queues.
    CatchAll,
    /// Kubelets (other than nodes and leases).
    System,
    /// Kubelets' node status and leases.
    NodeHigh,
    /// Leases of the control plane and kube-system service accounts.
    LeaderElection,
    /// kube-controller-manager, kube-scheduler, kube-system service accounts.
    WorkloadHigh,
    /// Every other service account.
    WorkloadLow,
    /// Every other authenticated (and unauthenticated) user.
    GlobalDefault,
}

/// All levels in index order.
pub const LEVELS: [Level; 8] = [
    Level::Exempt,
    Level::CatchAll,
    Level::System,
    Level::NodeHigh,
    Level::LeaderElection,
    Level::WorkloadHigh,
    Level::WorkloadLow,
    Level::GlobalDefault,
];

struct LevelSpec {
    name: &'static str,
    shares: u32,
    lendable_percent: u32,
    /// 0: no queues (exempt, catch-all).
    queues: u32,
    hand_size: u32,
    queue_length_limit: u32,
}

/// `default.go` v0.33.0 lines 88-276 (the same values v0.27 ... v0.36).
const SPECS: [LevelSpec; 8] = [
    LevelSpec {
        name: "exempt",
        shares: 0,
        lendable_percent: 0,
        queues: 0,
        hand_size: 0,
        queue_length_limit: 0,
    },
    LevelSpec {
        name: "catch-all",
        shares: 5,
        lendable_percent: 0,
        queues: 0,
        hand_size: 0,
        queue_length_limit: 0,
    },
    LevelSpec {
        name: "system",
        shares: 30,
        lendable_percent: 33,
        queues: 64,
        hand_size: 6,
        queue_length_limit: 50,
    },
    LevelSpec {
        name: "node-high",
        shares: 40,
        lendable_percent: 25,
        queues: 64,
        hand_size: 6,
        queue_length_limit: 50,
    },
    LevelSpec {
        name: "leader-election",
        shares: 10,
        lendable_percent: 0,
        queues: 16,
        hand_size: 4,
        queue_length_limit: 50,
    },
    LevelSpec {
        name: "workload-high",
        shares: 40,
        lendable_percent: 50,
        queues: 128,
        hand_size: 6,
        queue_length_limit: 50,
    },
    LevelSpec {
        name: "workload-low",
        shares: 100,
        lendable_percent: 90,
        queues: 128,
        hand_size: 6,
        queue_length_limit: 50,
    },
    LevelSpec {
        name: "global-default",
        shares: 20,
        lendable_percent: 50,
        queues: 128,
        hand_size: 6,
        queue_length_limit: 50,
    },
];

impl Level {
    /// Index in [`LEVELS`].
    pub fn index(self) -> usize {
        self as usize
    }
    /// The PriorityLevelConfiguration name.
    pub fn name(self) -> &'static str {
        SPECS[self.index()].name
    }
}

/// Who makes a request, as authentication sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// `system:serviceaccount:NS:NAME` (groups `system:serviceaccounts`, ...).
    ServiceAccount {
        /// Namespace of the service account.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// The kube-controller-manager's own identity (`system:kube-controller-manager`).
    KubeControllerManager,
    /// `system:kube-scheduler`.
    KubeScheduler,
    /// A kubelet (`system:node:NAME`, group `system:nodes`).
    Node {
        /// Node name.
        name: String,
    },
    /// A member of `system:masters`.
    Master {
        /// User name.
        name: String,
    },
    /// Any other authenticated user.
    User {
        /// User name.
        name: String,
    },
}

impl Identity {
    /// A service account.
    pub fn service_account(namespace: &str, name: &str) -> Identity {
        Identity::ServiceAccount {
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    /// The user name authentication gives.
    pub fn user_name(&self) -> String {
        match self {
            Identity::ServiceAccount { namespace, name } => {
                format!("system:serviceaccount:{namespace}:{name}")
            }
            Identity::KubeControllerManager => "system:kube-controller-manager".into(),
            Identity::KubeScheduler => "system:kube-scheduler".into(),
            Identity::Node { name } => format!("system:node:{name}"),
            Identity::Master { name } | Identity::User { name } => name.clone(),
        }
    }
}

/// A request verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET one object.
    Get,
    /// LIST a collection.
    List,
    /// WATCH (its seats are held until it is initialised).
    Watch,
    /// POST.
    Create,
    /// PUT (also `/status`, `/approval`).
    Update,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
    /// A non-resource GET of `/healthz`, `/readyz` or `/livez`.
    HealthCheck,
}

impl Verb {
    fn mutating(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete
        )
    }
}

/// The resources the bootstrap FlowSchemas tell apart; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `coordination.k8s.io/leases`.
    Leases,
    /// Core `endpoints`.
    Endpoints,
    /// Core `configmaps`.
    ConfigMaps,
    /// Core `nodes` (and `nodes/status`).
    Nodes,
    /// `serviceaccounts/token` creates (exempt from watch cost).
    ServiceAccountToken,
    /// Any other resource.
    Other,
}

/// A client registered with [`ApiServer::register_client`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(u32);

#[derive(Debug, Clone)]
struct ClientInfo {
    user_hash: u64,
    master: bool,
    node: bool,
    kcm: bool,
    scheduler: bool,
    sa: bool,
    kube_system_sa: bool,
    endpoint_sa: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Distinguisher {
    None,
    ByUser,
    ByNamespace,
}

/// One request as APF sees it. Build with [`ApiRequest::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiRequest {
    /// Who sends it.
    pub client: ClientId,
    /// What it does.
    pub verb: Verb,
    /// On what.
    pub resource: Resource,
    /// The namespace's stable id (`None`: cluster-scoped).
    pub namespace: Option<u64>,
    /// A LIST/WATCH with a `metadata.name` field selector (or a GET).
    pub by_name: bool,
    /// LIST: objects of the resource in storage (the object-count tracker).
    pub stored_objects: u64,
    /// LIST: objects the reply carries (service time).
    pub returned_objects: u64,
    /// LIST served from the watch cache (else from etcd).
    pub from_cache: bool,
    /// LIST: a label or field selector other than by name.
    pub selector: bool,
    /// LIST: `limit=` (0 = none).
    pub limit: u64,
    /// Mutating: watches interested in the object (watch cost).
    pub watchers: u32,
    /// `?timeout=`, if shorter than the server's request timeout.
    pub timeout: Option<SimTime>,
}

impl ApiRequest {
    /// A request of `client` with no LIST details.
    pub fn new(client: ClientId, verb: Verb, resource: Resource) -> ApiRequest {
        ApiRequest {
            client,
            verb,
            resource,
            namespace: None,
            by_name: matches!(verb, Verb::Get),
            stored_objects: 0,
            returned_objects: if matches!(verb, Verb::Get) { 1 } else { 0 },
            from_cache: true,
            selector: false,
            limit: 0,
            watchers: 0,
            timeout: None,
        }
    }

    /// In namespace `id`.
    pub fn in_namespace(mut self, id: u64) -> ApiRequest {
        self.namespace = Some(id);
        self
    }

    /// A LIST/WATCH by `metadata.name`.
    pub fn by_name(mut self) -> ApiRequest {
        self.by_name = true;
        self
    }

    /// LIST cost inputs.
    pub fn listing(mut self, stored: u64, returned: u64) -> ApiRequest {
        self.stored_objects = stored;
        self.returned_objects = returned;
        self.by_name = false;
        self
    }
}

/// The seats a request occupies (`WorkEstimate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkEstimate {
    /// Seats while it executes.
    pub initial_seats: u32,
    /// Seats held after it finishes (watch cost), for `additional_latency`.
    pub final_seats: u32,
    /// How long the final seats are held.
    pub additional_latency: SimTime,
}

impl WorkEstimate {
    fn max_seats(&self) -> u32 {
        self.initial_seats.max(self.final_seats)
    }
}

/// Why a request got a 429 (the `reason` of `apiserver_flowcontrol_rejected_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The chosen queue held `queueLengthLimit` while the level was saturated.
    QueueFull,
    /// The request waited its wait limit in a queue.
    TimeOut,
    /// catch-all had no room (no queues).
    ConcurrencyLimit,
}

impl RejectReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::QueueFull => "queue-full",
            RejectReason::TimeOut => "time-out",
            RejectReason::ConcurrencyLimit => "concurrency-limit",
        }
    }
}

/// The body of every APF 429.
pub const TOO_MANY_REQUESTS: &str = "Too many requests, please try again later.";

/// What [`ApiServer::submit`] decided at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Runs now; the reply leaves at `done_at`.
    Admitted {
        /// Completion time.
        done_at: SimTime,
    },
    /// Waits in a queue; an [`ApiOutcome`] follows.
    Queued,
    /// HTTP 429 now.
    Rejected {
        /// The `Retry-After` header, seconds.
        retry_after_s: u32,
        /// Why.
        reason: RejectReason,
    },
}

/// What happened to a queued request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiOutcome {
    /// Left its queue and runs; the reply leaves at `done_at`.
    Admitted {
        /// The owner's tag.
        tag: u64,
        /// Completion time.
        done_at: SimTime,
    },
    /// 429 after waiting.
    Rejected {
        /// The owner's tag.
        tag: u64,
        /// The `Retry-After` header, seconds.
        retry_after_s: u32,
        /// Why.
        reason: RejectReason,
    },
}

/// The apiserver's one event: wake up to release seats, time out queued requests or
/// adjust borrowing. Owners only route it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiServerEvent {
    /// The apiserver's `index`.
    pub apiserver: u32,
    /// Generation; stale wakes are ignored.
    pub gen: u64,
}

impl TraceEvent for ApiServerEvent {
    fn kind(&self) -> u32 {
        0x200
    }
    fn entity(&self) -> u64 {
        ((self.apiserver as u64) << 48) ^ self.gen
    }
}

// ----- internals ----------------------------------------------------------------------

/// SeatSeconds, fixed point with 1e8 per seat-second (as `request/seat_seconds.go`).
type Ss = i64;

/// `SeatsTimesDuration`: seats x duration in SeatSeconds units (signed).
#[inline]
fn seats_times(seats: f64, dur_ns: i128) -> Ss {
    round_to_ss(seats * ns_as_f64(dur_ns) / 10.0)
}

/// `dur_ns as f64`, through `i64` when it fits: both conversions round the same
/// integer to the nearest double (ties to even), so the result is identical, but the
/// `i128` one is a slow library call (`__floattidf`).
#[inline(always)]
fn ns_as_f64(dur_ns: i128) -> f64 {
    match i64::try_from(dur_ns) {
        Ok(d) => d as f64,
        Err(_) => dur_ns as f64,
    }
}

/// `x.round() as Ss` (half away from zero, saturating, NaN -> 0) without the libm call
/// `round` (no SSE4.1 in the baseline target). Below 2^52 in magnitude, `x as i64`
/// truncates exactly and `x - trunc(x)` is exact, so comparing the fraction with 0.5
/// rounds exactly as `round`; from 2^52 on every double is an integer already.
#[inline(always)]
fn round_to_ss(x: f64) -> Ss {
    const EXACT: f64 = (1u64 << 52) as f64;
    if x.is_nan() || x.abs() >= EXACT {
        return x as Ss;
    }
    let i = x as Ss;
    let frac = x - i as f64;
    if frac >= 0.5 {
        i + 1
    } else if frac <= -0.5 {
        i - 1
    } else {
        i
    }
}

/// `estimatedServiceDuration` of the queueset (3 ms).
const G_NS: i128 = 3_000_000;
/// `borrowingAdjustmentPeriod`.
const BORROWING_PERIOD: SimTime = SimTime::from_secs(10);
/// `seatDemandSmoothingCoefficient`.
const SMOOTHING: f64 = 0.977;
/// `maximumSeatsLimit` of the work estimator.
const MAX_SEATS_LIMIT: u32 = 10;
/// `maxRetryAfter` of the dropped-requests tracker.
const MAX_RETRY_AFTER: i64 = 32;

#[derive(Debug, Clone, Default)]
struct Queue {
    waiting: VecDeque<u32>,
    waiting_max_seats: u32,
    waiting_work: Ss,
    executing: u32,
    seats_in_use: u32,
    next_dispatch_r: Ss,
}

/// Time-weighted moments of the seat demand (`fairqueuing/integrator.go`).
#[derive(Debug, Clone, Default)]
struct Integrator {
    last: SimTime,
    x: f64,
    elapsed: f64,
    ix: f64,
    ixx: f64,
    min: f64,
    max: f64,
}

impl Integrator {
    fn update(&mut self, now: SimTime) {
        let dt = (now - self.last).as_secs_f64();
        self.last = now;
        self.elapsed += dt;
        self.ix += self.x * dt;
        self.ixx += self.x * self.x * dt;
    }
    fn set(&mut self, now: SimTime, x: f64) {
        self.update(now);
        self.x = x;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }
    /// (duration, average, deviation, max); restarts the integration.
    fn reset(&mut self, now: SimTime) -> (f64, f64, f64, f64) {
        self.update(now);
        let (d, max) = (self.elapsed, self.max);
        let (avg, dev) = if d <= 0.0 {
            (f64::NAN, f64::NAN)
        } else {
            let avg = self.ix / d;
            let var = self.ixx / d - avg * avg;
            (avg, if var >= 0.0 { var.sqrt() } else { f64::NAN })
        };
        self.elapsed = 0.0;
        self.ix = 0.0;
        self.ixx = 0.0;
        self.min = self.x;
        self.max = self.x;
        (d, avg, dev, max)
    }
}

/// The per-level dropped-requests tracker (`dropped_requests_tracker.go`).
#[derive(Debug, Clone)]
struct DropTracker {
    history: Vec<(i64, i64)>,
    current_unix: i64,
    current_count: i64,
    retry_after: i64,
    retry_after_update_unix: i64,
}

impl DropTracker {
    fn new() -> DropTracker {
        DropTracker {
            history: Vec::new(),
            current_unix: 0,
            current_count: 0,
            retry_after: 1,
            retry_after_update_unix: 0,
        }
    }

    fn record(&mut self, unix: i64) {
        if self.current_unix == unix {
            self.current_count += 1;
            return;
        }
        // A new second: the finished one goes to the history, then retryAfter is
        // reconsidered from the seconds before this one.
        let (u, c) = (self.current_unix, self.current_count);
        self.history.push((u, c));
        let keep = (2 * self.retry_after).min(MAX_RETRY_AFTER);
        let start = self
            .history
            .iter()
            .position(|&(t, _)| u - t <= keep)
            .unwrap_or(self.history.len());
        self.history.drain(..start);
        self.current_unix = unix;
        self.current_count = 1;

        let ra = self.retry_after;
        let dropped: i64 = self
            .history
            .iter()
            .rev()
            .take_while(|&&(t, _)| unix - t <= ra)
            .filter(|&&(t, _)| t < unix)
            .map(|&(_, c)| c)
            .sum();
        if unix - self.retry_after_update_unix >= ra && dropped >= 3 * ra {
            self.retry_after = (ra * 2).min(MAX_RETRY_AFTER);
            self.retry_after_update_unix = unix;
        } else if dropped < ra && ra > 1 {
            self.retry_after = ra - 1;
        }
    }
}

#[derive(Debug, Clone)]
struct LevelState {
    level: Level,
    nominal: u32,
    min_cl: u32,
    max_cl: u32,
    current_cl: u32,
    /// The work estimator's cap for this level.
    max_seats: u32,
    queue_length_limit: u32,
    hand_size: u32,
    queues: Vec<Queue>,
    /// Bit `i` set: queue `i` has waiting requests (at most 128 queues).
    nonempty: u128,
    enqueues: u64,
    robin: usize,
    current_r: Ss,
    r_synced: SimTime,
    seats_in_use: u32,
    executing: u32,
    seats_waiting: u32,
    waiting: u32,
    active_queues: u32,
    integrator: Integrator,
    smoothed: f64,
    drops: DropTracker,
    // statistics
    dispatched: u64,
    rejected: [u64; 3],
    peak_seats: u32,
    peak_waiting: u32,
}

impl LevelState {
    fn queuing(&self) -> bool {
        !self.queues.is_empty()
    }

    fn demand(&self) -> f64 {
        (self.seats_in_use + self.seats_waiting) as f64
    }

    /// `syncTimeLocked`: advances the virtual clock to `now`.
    fn sync_r(&mut self, now: SimTime) {
        if now <= self.r_synced {
            return;
        }
        let dt = (now - self.r_synced).as_nanos() as i128;
        self.r_synced = now;
        if self.active_queues == 0 {
            return;
        }
        let requested = (self.seats_in_use + self.seats_waiting) as f64;
        let ratio = requested.min(self.current_cl as f64) / self.active_queues as f64;
        self.current_r += seats_times(ratio, dt);
    }

    fn note_demand(&mut self, now: SimTime) {
        let d = self.demand();
        self.integrator.set(now, d);
    }

    fn can_accommodate(&self, seats: u32) -> bool {
        if self.level == Level::Exempt {
            return true;
        }
        if seats > self.current_cl {
            return self.executing == 0;
        }
        self.seats_in_use + seats <= self.current_cl
    }

    /// Final seats wider than the whole limit are reshaped to the limit, keeping the
    /// final work (`findDispatchQueueToBoundLocked`).
    fn cap_final_seats(&self, mut work: WorkEstimate) -> WorkEstimate {
        if work.final_seats > self.current_cl {
            let final_work = work.final_seats as u64 * work.additional_latency.as_nanos();
            work.final_seats = self.current_cl;
            work.additional_latency = SimTime(final_work / self.current_cl.max(1) as u64);
        }
        work
    }

    fn queue_active(q: &Queue) -> bool {
        !q.waiting.is_empty() || q.executing > 0
    }

    /// The anti-windup rule: a queue's `nextDispatchR` never lags its head's arrival.
    fn bound(&mut self, qi: usize, reqs: &[Req]) {
        let q = &mut self.queues[qi];
        if let Some(&h) = q.waiting.front() {
            let a = reqs[h as usize].arrival_r;
            if q.next_dispatch_r < a {
                q.next_dispatch_r = a;
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReqState {
    Free,
    Queued,
}

#[derive(Debug, Clone, Copy)]
struct Req {
    tag: u64,
    level: u8,
    queue: u16,
    work: WorkEstimate,
    service: SimTime,
    total_work: Ss,
    arrival_r: Ss,
    gen: u32,
    state: ReqState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// Execution ends (R correction; seats released too unless they linger).
    Finish,
    /// Lingering final seats are released.
    Release,
}

/// A timed change of an executing request, ordered by (time, sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: SimTime,
    seq: u64,
    kind: TimerKind,
    level: u8,
    /// `u16::MAX`: not from a queue.
    queue: u16,
    initial_seats: u32,
    max_seats: u32,
    started: SimTime,
    additional: SimTime,
}

/// What [`ApiServer::classify`] reads of a request besides its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    verb: Verb,
    resource: Resource,
    namespace: Option<u64>,
}

/// Request kinds whose flow one client remembers.
const FLOWS_PER_CLIENT: usize = 16;

/// One flow: the level and the hash that deals its hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// Priority level.
    pub level: Level,
    /// FlowSchema name.
    pub schema: &'static str,
    /// The flow's hash.
    pub hash: u64,
}

// ----- the apiserver ------------------------------------------------------------------

/// One kube-apiserver's APF. See the module docs.
#[derive(Debug, Clone)]
pub struct ApiServer {
    index: u32,
    config: ApiServerConfig,
    server_cl: u32,
    nominal_sum: u32,
    levels: Vec<LevelState>,
    clients: Vec<ClientInfo>,
    /// Per client, the flows of the request kinds it sent (see `classify_cached`).
    flows: Vec<Vec<(FlowKey, Flow)>>,
    reqs: Vec<Req>,
    free: Vec<u32>,
    timers: BinaryHeap<Reverse<Timer>>,
    deadlines: BinaryHeap<Reverse<(SimTime, u64, u32, u32)>>,
    seq: u64,
    next_tick: SimTime,
    now: SimTime,
    queued_total: u32,
    wake_gen: u64,
    wake_at: Option<SimTime>,
    peak_seats_total: u32,
    seats_total: u32,
}

impl ApiServer {
    /// An apiserver numbered `index` (its events carry it). The config is assumed valid.
    pub fn new(index: u32, config: ApiServerConfig) -> ApiServer {
        let server_cl = config.server_concurrency_limit();
        let share_sum: u32 = SPECS.iter().map(|s| s.shares).sum();
        let mut levels = Vec::with_capacity(8);
        for (i, spec) in SPECS.iter().enumerate() {
            let nominal = (server_cl as f64 * spec.shares as f64 / share_sum as f64).ceil() as u32;
            let lendable = (nominal as f64 * spec.lendable_percent as f64 / 100.0).round() as u32;
            let max_seats = if spec.queues > 0 {
                let m = (0.15 * nominal as f64)
                    .ceil()
                    .min((nominal / spec.hand_size) as f64)
                    .max(1.0) as u32;
                m.min(MAX_SEATS_LIMIT)
            } else {
                MAX_SEATS_LIMIT
            };
            levels.push(LevelState {
                level: LEVELS[i],
                nominal,
                min_cl: nominal - lendable,
                max_cl: nominal + server_cl,
                current_cl: nominal,
                max_seats,
                queue_length_limit: spec.queue_length_limit,
                hand_size: spec.hand_size,
                queues: vec![Queue::default(); spec.queues as usize],
                nonempty: 0,
                enqueues: 0,
                robin: 0,
                current_r: 0,
                r_synced: SimTime::ZERO,
                seats_in_use: 0,
                executing: 0,
                seats_waiting: 0,
                waiting: 0,
                active_queues: 0,
                integrator: Integrator::default(),
                smoothed: 0.0,
                drops: DropTracker::new(),
                dispatched: 0,
                rejected: [0; 3],
                peak_seats: 0,
                peak_waiting: 0,
            });
        }
        let nominal_sum = levels.iter().map(|l| l.nominal).sum();
        let mut a = ApiServer {
            index,
            config,
            server_cl,
            nominal_sum,
            levels,
            clients: Vec::new(),
            flows: Vec::new(),
            reqs: Vec::new(),
            free: Vec::new(),
            timers: BinaryHeap::new(),
            deadlines: BinaryHeap::new(),
            seq: 0,
            next_tick: BORROWING_PERIOD,
            now: SimTime::ZERO,
            queued_total: 0,
            wake_gen: 0,
            wake_at: None,
            peak_seats_total: 0,
            seats_total: 0,
        };
        if config.borrowing {
            // The config controller's first allocation, with no demand seen yet.
            a.borrow_step(SimTime::ZERO);
        }
        a
    }

    /// This apiserver's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The configuration.
    pub fn config(&self) -> &ApiServerConfig {
        &self.config
    }

    /// Registers a client identity; requests name it by the returned id.
    pub fn register_client(&mut self, identity: &Identity) -> ClientId {
        let user = identity.user_name();
        let info = ClientInfo {
            user_hash: stream_id(&user),
            master: matches!(identity, Identity::Master { .. }),
            node: matches!(identity, Identity::Node { .. }),
            kcm: matches!(identity, Identity::KubeControllerManager),
            scheduler: matches!(identity, Identity::KubeScheduler),
            sa: matches!(identity, Identity::ServiceAccount { .. }),
            kube_system_sa: matches!(identity, Identity::ServiceAccount { namespace, .. } if namespace == "kube-system"),
            endpoint_sa: matches!(identity, Identity::ServiceAccount { namespace, name }
                if namespace == "kube-system" && (name == "endpoint-controller" || name == "endpointslicemirroring-controller")),
        };
        self.clients.push(info);
        self.flows.push(Vec::new());
        ClientId(self.clients.len() as u32 - 1)
    }

    /// The FlowSchema a request matches: level, schema and flow hash.
    pub fn classify(&self, req: &ApiRequest) -> Flow {
        let c = &self.clients[req.client.0 as usize];
        let legacy = self.config.version.has_legacy_leader_election_schemas();
        let gcu = matches!(req.verb, Verb::Get | Verb::Create | Verb::Update);
        let namespaced = req.namespace.is_some();
        let (schema, level, dist) = if c.master {
            ("exempt", Level::Exempt, Distinguisher::None)
        } else if req.verb == Verb::HealthCheck {
            ("probes", Level::Exempt, Distinguisher::None)
        } else if (c.kcm || c.scheduler || c.kube_system_sa)
            && gcu
            && req.resource == Resource::Leases
            && namespaced
        {
            (
                "system-leader-election",
                Level::LeaderElection,
                Distinguisher::ByUser,
            )
        } else if legacy
            && (c.kcm || c.endpoint_sa)
            && gcu
            && req.resource == Resource::Endpoints
            && namespaced
        {
            (
                "endpoint-controller",
                Level::WorkloadHigh,
                Distinguisher::ByUser,
            )
        } else if legacy
            && c.kube_system_sa
            && gcu
            && namespaced
            && matches!(
                req.resource,
                Resource::Endpoints | Resource::ConfigMaps | Resource::Leases
            )
        {
            (
                "workload-leader-election",
                Level::LeaderElection,
                Distinguisher::ByUser,
            )
        } else if c.node
            && (req.resource == Resource::Nodes || (req.resource == Resource::Leases && namespaced))
        {
            ("system-node-high", Level::NodeHigh, Distinguisher::ByUser)
        } else if c.node {
            ("system-nodes", Level::System, Distinguisher::ByUser)
        } else if c.kcm {
            (
                "kube-controller-manager",
                Level::WorkloadHigh,
                Distinguisher::ByNamespace,
            )
        } else if c.scheduler {
            (
                "kube-scheduler",
                Level::WorkloadHigh,
                Distinguisher::ByNamespace,
            )
        } else if c.kube_system_sa {
            (
                "kube-system-service-accounts",
                Level::WorkloadHigh,
                Distinguisher::ByNamespace,
            )
        } else if c.sa {
            (
                "service-accounts",
                Level::WorkloadLow,
                Distinguisher::ByUser,
            )
        } else {
            (
                "global-default",
                Level::GlobalDefault,
                Distinguisher::ByUser,
            )
        };
        let d = match dist {
            Distinguisher::None => 0,
            Distinguisher::ByUser => c.user_hash,
            Distinguisher::ByNamespace => req.namespace.map(splitmix64).unwrap_or(0),
        };
        Flow {
            level,
            schema,
            hash: splitmix64(stream_id(schema) ^ splitmix64(d)),
        }
    }

    /// The seats `req` would occupy at `level` (the work estimator).
    pub fn estimate(&self, req: &ApiRequest, level: Level) -> WorkEstimate {
        let max_seats = self.levels[level.index()].max_seats.min(MAX_SEATS_LIMIT);
        let one = WorkEstimate {
            initial_seats: 1,
            final_seats: 0,
            additional_latency: SimTime::ZERO,
        };
        match req.verb {
            Verb::List if req.by_name => one,
            Verb::List => {
                let stored = req.stored_objects;
                let limit = if req.limit > 0 && req.limit < stored {
                    req.limit
                } else {
                    stored
                };
                let estimated = if req.from_cache {
                    stored
                } else if req.selector {
                    stored + limit
                } else {
                    2 * limit
                };
                let seats = estimated.div_ceil(100).clamp(1, max_seats as u64) as u32;
                WorkEstimate {
                    initial_seats: seats,
                    ..one
                }
            }
            v if v.mutating() => {
                if req.resource == Resource::ServiceAccountToken || req.watchers < 10 {
                    return one;
                }
                let final_seats = req.watchers.div_ceil(10);
                // finalWork = final x 5 ms, reshaped to at most maxSeats seats.
                let work_ns = final_seats as u64 * 5_000_000;
                let capped = final_seats.min(max_seats);
                WorkEstimate {
                    initial_seats: 1,
                    final_seats: capped,
                    additional_latency: SimTime(work_ns / capped as u64),
                }
            }
            _ => one,
        }
    }

    /// The service time of `req` once dispatched.
    pub fn service_time(&self, req: &ApiRequest) -> SimTime {
        let s = &self.config.service;
        match req.verb {
            Verb::Get | Verb::HealthCheck => s.get,
            Verb::List => {
                s.list_base + SimTime(s.list_per_object.as_nanos() * req.returned_objects)
            }
            Verb::Watch => s.watch_init,
            _ => s.mutating,
        }
    }

    /// Nominal seats of `level` (`ceil(ServerCL * shares / 245)`).
    pub fn nominal_seats(&self, level: Level) -> u32 {
        self.levels[level.index()].nominal
    }
    /// The current (borrowing-adjusted) limit of `level`.
    pub fn current_limit(&self, level: Level) -> u32 {
        self.levels[level.index()].current_cl
    }
    /// `minCL` and `maxCL` of `level`.
    pub fn limit_bounds(&self, level: Level) -> (u32, u32) {
        let l = &self.levels[level.index()];
        (l.min_cl, l.max_cl)
    }
    /// The work estimator's seat cap for `level` (`min(10, tracker)`).
    pub fn max_seats(&self, level: Level) -> u32 {
        self.levels[level.index()].max_seats
    }
    /// Seats in use at `level` (as of the last time the apiserver was touched).
    pub fn seats_in_use(&self, level: Level) -> u32 {
        self.levels[level.index()].seats_in_use
    }
    /// Requests waiting at `level`.
    pub fn waiting(&self, level: Level) -> u32 {
        self.levels[level.index()].waiting
    }
    /// Longest queue of `level` now.
    pub fn longest_queue(&self, level: Level) -> usize {
        self.levels[level.index()]
            .queues
            .iter()
            .map(|q| q.waiting.len())
            .max()
            .unwrap_or(0)
    }
    /// Seats in use across limited levels.
    pub fn seats_in_use_total(&self) -> u32 {
        self.seats_total
    }
    /// Seats in use across limited levels at `now`, without touching the apiserver:
    /// [`Self::seats_in_use_total`] less the seats whose release (kept lazily in the timer
    /// heap) is due by `now`. For sampling.
    pub fn seats_in_use_at(&self, now: SimTime) -> u32 {
        let due: u32 = self
            .timers
            .iter()
            .map(|Reverse(t)| t)
            .filter(|t| self.levels[t.level as usize].level != Level::Exempt)
            .filter(|t| match t.kind {
                TimerKind::Finish => t.at + t.additional <= now,
                TimerKind::Release => t.at <= now,
            })
            .map(|t| t.max_seats)
            .sum();
        self.seats_total.saturating_sub(due)
    }
    /// The most seats in use at once across limited levels.
    pub fn peak_seats_in_use(&self) -> u32 {
        self.peak_seats_total
    }
    /// The most seats in use at once at `level`.
    pub fn peak_seats(&self, level: Level) -> u32 {
        self.levels[level.index()].peak_seats
    }
    /// The most requests waiting at once at `level`.
    pub fn peak_waiting(&self, level: Level) -> u32 {
        self.levels[level.index()].peak_waiting
    }
    /// 429s at `level` for `reason`.
    pub fn rejected(&self, level: Level, reason: RejectReason) -> u64 {
        self.levels[level.index()].rejected[reason as usize]
    }
    /// All 429s.
    pub fn rejected_total(&self) -> u64 {
        self.levels.iter().flat_map(|l| l.rejected).sum()
    }
    /// Requests dispatched at `level`.
    pub fn dispatched(&self, level: Level) -> u64 {
        self.levels[level.index()].dispatched
    }
    /// The `Retry-After` the next 429 of `level` would carry (before recording it).
    pub fn retry_after_s(&self, level: Level) -> u32 {
        self.levels[level.index()].drops.retry_after as u32
    }
    /// `ServerConcurrencyLimit`.
    pub fn server_concurrency_limit(&self) -> u32 {
        self.server_cl
    }

    // ----- requests -------------------------------------------------------------------

    /// Submits `req` now, tagged `tag` by the owner. Requests that left their queues
    /// meanwhile are pushed to `out`.
    pub fn submit(
        &mut self,
        req: &ApiRequest,
        tag: u64,
        sched: &mut impl Schedule<ApiServerEvent>,
        out: &mut Vec<ApiOutcome>,
    ) -> Admission {
        let flow = self.classify_cached(req);
        self.submit_classified(flow, req, tag, sched, out)
    }

    /// [`classify`](Self::classify), remembered per client and request kind. The cache
    /// is valid because `classify` reads nothing else: the client's registered identity
    /// (never changed after `register_client`), the Kubernetes version of the config
    /// (fixed at `new`), and the request's verb, resource and namespace (the key). A
    /// client keeps at most `FLOWS_PER_CLIENT` kinds (e.g. kube-controller-manager's
    /// per-namespace flows); beyond that, it is classified afresh each time.
    fn classify_cached(&mut self, req: &ApiRequest) -> Flow {
        let key = FlowKey {
            verb: req.verb,
            resource: req.resource,
            namespace: req.namespace,
        };
        let c = req.client.0 as usize;
        if let Some(&(_, flow)) = self.flows[c].iter().find(|(k, _)| *k == key) {
            return flow;
        }
        let flow = self.classify(req);
        if self.flows[c].len() < FLOWS_PER_CLIENT {
            self.flows[c].push((key, flow));
        }
        flow
    }

    /// [`submit`](Self::submit) with the flow already known (an owner may classify a
    /// kind of call once and keep its [`Flow`]). The bootstrap FlowSchemas never route a
    /// request to catch-all (global-default matches every user first); a flow naming it
    /// explicitly exercises its no-queue, reject-at-once rule.
    pub fn submit_classified(
        &mut self,
        flow: Flow,
        req: &ApiRequest,
        tag: u64,
        sched: &mut impl Schedule<ApiServerEvent>,
        out: &mut Vec<ApiOutcome>,
    ) -> Admission {
        let now = sched.now();
        self.advance(now, out);
        let li = flow.level.index();
        let work = self.estimate(req, flow.level);
        let service = self.service_time(req);
        let seats = work.max_seats();
        let result = if !self.levels[li].queuing() {
            if !self.levels[li].can_accommodate(seats) {
                self.reject(li, RejectReason::ConcurrencyLimit, now)
            } else {
                let done_at = self.start(li, u16::MAX, work, service, now);
                Admission::Admitted { done_at }
            }
        } else {
            self.enqueue_or_reject(li, flow.hash, req, tag, work, service, now, out)
        };
        self.refresh_wake(sched);
        result
    }

    /// Handles one of this apiserver's wakes, pushing what happened to `out`.
    pub fn handle(
        &mut self,
        ev: ApiServerEvent,
        sched: &mut impl Schedule<ApiServerEvent>,
        out: &mut Vec<ApiOutcome>,
    ) {
        if ev.gen != self.wake_gen {
            return;
        }
        self.wake_at = None;
        self.advance(sched.now(), out);
        self.refresh_wake(sched);
    }

    /// Brings the apiserver up to `now` (releases, time-outs, borrowing steps) without a
    /// request, e.g. before sampling its state. Needs the scheduler to keep its wake right.
    pub fn sync(&mut self, sched: &mut impl Schedule<ApiServerEvent>, out: &mut Vec<ApiOutcome>) {
        self.advance(sched.now(), out);
        self.refresh_wake(sched);
    }

    // ----- internals ------------------------------------------------------------------

    #[allow(clippy::too_many_arguments)]
    fn enqueue_or_reject(
        &mut self,
        li: usize,
        hash: u64,
        req: &ApiRequest,
        tag: u64,
        work: WorkEstimate,
        service: SimTime,
        now: SimTime,
        out: &mut Vec<ApiOutcome>,
    ) -> Admission {
        let seats = work.max_seats();
        let total_work = seats_times(work.initial_seats as f64, G_NS)
            + seats_times(
                work.final_seats as f64,
                work.additional_latency.as_nanos() as i128,
            );
        let lvl = &mut self.levels[li];
        lvl.sync_r(now);
        // Shuffle sharding: deal the hand, pick the queue with the least waiting work,
        // visiting from a rotating offset (ties go to the first visited).
        let nq = lvl.queues.len() as u64;
        let hand_size = lvl.hand_size as usize;
        let mut hand = [0usize; 8];
        deal(hash, nq, hand_size, &mut hand);
        let offset = (lvl.enqueues % hand_size as u64) as usize;
        lvl.enqueues += 1;
        let mut best = hand[offset];
        let mut best_work = Ss::MAX;
        // The hand from `offset` to its end, then from its start: the same visiting
        // order as `hand[(offset + i) % hand_size]`, without a division per card.
        for &qi in hand[offset..hand_size].iter().chain(&hand[..offset]) {
            let w = lvl.queues[qi].waiting_work;
            if w < best_work {
                best_work = w;
                best = qi;
            }
        }
        if lvl.seats_in_use >= lvl.current_cl
            && lvl.queues[best].waiting.len() as u32 >= lvl.queue_length_limit
        {
            return self.reject(li, RejectReason::QueueFull, now);
        }
        if lvl.waiting == 0 && lvl.can_accommodate(seats) {
            // Nothing waits and it fits: enqueue-then-dispatch of the source, in one
            // step (the request is the only head, so fair queuing picks it).
            let q = &mut lvl.queues[best];
            if !LevelState::queue_active(q) {
                q.next_dispatch_r = lvl.current_r;
                lvl.active_queues += 1;
            }
            lvl.queues[best].next_dispatch_r += total_work;
            lvl.robin = best;
            let work = lvl.cap_final_seats(work);
            let done_at = self.start(li, best as u16, work, service, now);
            return Admission::Admitted { done_at };
        }
        // Enqueue.
        let wait_limit = {
            let deadline = req
                .timeout
                .map(|t| t.min(self.config.request_timeout))
                .unwrap_or(self.config.request_timeout);
            SimTime(deadline.as_nanos() / 4).min(SimTime::from_secs(60))
        };
        let slot = self.alloc(Req {
            tag,
            level: li as u8,
            queue: best as u16,
            work,
            service,
            total_work,
            arrival_r: 0,
            gen: 0,
            state: ReqState::Queued,
        });
        let lvl = &mut self.levels[li];
        let q = &mut lvl.queues[best];
        if !LevelState::queue_active(q) {
            q.next_dispatch_r = lvl.current_r;
            lvl.active_queues += 1;
        }
        let q = &mut lvl.queues[best];
        q.waiting.push_back(slot);
        lvl.nonempty |= 1u128 << best;
        q.waiting_max_seats += seats;
        q.waiting_work += total_work;
        self.reqs[slot as usize].arrival_r = lvl.current_r;
        lvl.waiting += 1;
        lvl.seats_waiting += seats;
        lvl.peak_waiting = lvl.peak_waiting.max(lvl.waiting);
        self.queued_total += 1;
        lvl.note_demand(now);
        lvl.bound(best, &self.reqs);
        self.seq += 1;
        let gen = self.reqs[slot as usize].gen;
        self.deadlines
            .push(Reverse((now + wait_limit, self.seq, slot, gen)));
        // Dispatch as much as possible; our request may be among them.
        match self.dispatch(li, now, Some(slot), out) {
            Some(done_at) => Admission::Admitted { done_at },
            None => Admission::Queued,
        }
    }

    fn reject(&mut self, li: usize, reason: RejectReason, now: SimTime) -> Admission {
        let lvl = &mut self.levels[li];
        lvl.rejected[reason as usize] += 1;
        let retry_after_s = if self.config.version.has_dynamic_retry_after() {
            lvl.drops.record((now.as_nanos() / 1_000_000_000) as i64);
            lvl.drops.retry_after as u32
        } else {
            1
        };
        Admission::Rejected {
            retry_after_s,
            reason,
        }
    }

    fn alloc(&mut self, mut r: Req) -> u32 {
        if let Some(i) = self.free.pop() {
            r.gen = self.reqs[i as usize].gen;
            self.reqs[i as usize] = r;
            i
        } else {
            self.reqs.push(r);
            self.reqs.len() as u32 - 1
        }
    }

    fn release_slot(&mut self, slot: u32) {
        let r = &mut self.reqs[slot as usize];
        r.state = ReqState::Free;
        r.gen = r.gen.wrapping_add(1);
        self.free.push(slot);
    }

    /// Starts executing a request at `now`; returns its completion time.
    fn start(
        &mut self,
        li: usize,
        queue: u16,
        work: WorkEstimate,
        service: SimTime,
        now: SimTime,
    ) -> SimTime {
        let seats = work.max_seats();
        let lvl = &mut self.levels[li];
        lvl.seats_in_use += seats;
        lvl.executing += 1;
        lvl.dispatched += 1;
        lvl.peak_seats = lvl.peak_seats.max(lvl.seats_in_use);
        if queue != u16::MAX {
            let q = &mut lvl.queues[queue as usize];
            q.executing += 1;
            q.seats_in_use += seats;
        }
        lvl.note_demand(now);
        if lvl.level != Level::Exempt {
            self.seats_total += seats;
            self.peak_seats_total = self.peak_seats_total.max(self.seats_total);
        }
        let done_at = now + service;
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            at: done_at,
            seq: self.seq,
            kind: TimerKind::Finish,
            level: li as u8,
            queue,
            initial_seats: work.initial_seats,
            max_seats: seats,
            started: now,
            additional: work.additional_latency,
        }));
        done_at
    }

    /// `dispatchAsMuchAsPossibleLocked` at `now`: admissions go to `out`, except that
    /// of the request in slot `mine` (just submitted), whose completion is returned.
    fn dispatch(
        &mut self,
        li: usize,
        now: SimTime,
        mine: Option<u32>,
        out: &mut Vec<ApiOutcome>,
    ) -> Option<SimTime> {
        let mut mine_done = None;
        loop {
            let lvl = &self.levels[li];
            if lvl.waiting == 0 || lvl.seats_in_use >= lvl.current_cl {
                return mine_done;
            }
            // Fair queuing: the queue whose head has the least virtual finish time,
            // visited round robin from the last dispatched queue.
            // Only non-empty queues matter: walk their bits from robin + 1 round.
            let nq = lvl.queues.len();
            let start = (lvl.robin + 1) % nq;
            let mut min_q = usize::MAX;
            let mut min_finish = Ss::MAX;
            let high = lvl.nonempty >> start;
            let low = lvl.nonempty & ((1u128 << start) - 1);
            for (base, mut bits) in [(start, high), (0, low)] {
                while bits != 0 {
                    let qi = base + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let q = &lvl.queues[qi];
                    let h = *q.waiting.front().expect("bit set: non-empty");
                    let f = q.next_dispatch_r + self.reqs[h as usize].total_work;
                    if f < min_finish {
                        min_finish = f;
                        min_q = qi;
                    }
                }
            }
            let head = *lvl.queues[min_q].waiting.front().expect("non-empty");
            let r = self.reqs[head as usize];
            if !lvl.can_accommodate(r.work.max_seats()) {
                return mine_done; // head-of-line blocking
            }
            let lvl = &mut self.levels[li];
            lvl.sync_r(now);
            let seats = r.work.max_seats();
            let q = &mut lvl.queues[min_q];
            q.waiting.pop_front();
            if q.waiting.is_empty() {
                lvl.nonempty &= !(1u128 << min_q);
            }
            q.waiting_max_seats -= seats;
            q.waiting_work -= r.total_work;
            q.next_dispatch_r += r.total_work;
            lvl.waiting -= 1;
            lvl.seats_waiting -= seats;
            lvl.robin = min_q;
            self.queued_total -= 1;
            let work = lvl.cap_final_seats(r.work);
            let done_at = self.start(li, min_q as u16, work, r.service, now);
            self.levels[li].bound(min_q, &self.reqs);
            self.release_slot(head);
            if mine == Some(head) {
                mine_done = Some(done_at);
            } else {
                out.push(ApiOutcome::Admitted {
                    tag: r.tag,
                    done_at,
                });
            }
        }
    }

    /// Processes every timer, time-out and borrowing step due at or before `now`, in
    /// time order.
    fn advance(&mut self, now: SimTime, out: &mut Vec<ApiOutcome>) {
        loop {
            let t_timer = self.timers.peek().map(|t| t.0.at).unwrap_or(SimTime::MAX);
            let t_dead = self.next_deadline();
            let t_tick = if self.config.borrowing {
                self.next_tick
            } else {
                SimTime::MAX
            };
            let t = t_timer.min(t_dead).min(t_tick);
            if t > now {
                break;
            }
            if t_timer == t {
                let Reverse(tm) = self.timers.pop().expect("peeked");
                self.fire_timer(tm, out);
            } else if t_tick == t {
                self.next_tick = t + BORROWING_PERIOD;
                self.borrow_step(t);
                for li in 0..self.levels.len() {
                    if self.levels[li].queuing() {
                        self.dispatch(li, t, None, out);
                    }
                }
            } else {
                let Reverse((at, _, slot, gen)) = self.deadlines.pop().expect("peeked");
                self.time_out(slot, gen, at, out);
            }
        }
        self.now = self.now.max(now);
    }

    fn next_deadline(&mut self) -> SimTime {
        while let Some(&Reverse((at, _, slot, gen))) = self.deadlines.peek() {
            let r = &self.reqs[slot as usize];
            if r.gen == gen && r.state == ReqState::Queued {
                return at;
            }
            self.deadlines.pop();
        }
        SimTime::MAX
    }

    fn fire_timer(&mut self, tm: Timer, out: &mut Vec<ApiOutcome>) {
        let li = tm.level as usize;
        let lvl = &mut self.levels[li];
        lvl.sync_r(tm.at);
        match tm.kind {
            TimerKind::Finish => {
                lvl.executing -= 1;
                if tm.queue != u16::MAX {
                    let qi = tm.queue as usize;
                    let actual = (tm.at - tm.started).as_nanos() as i128;
                    let q = &mut lvl.queues[qi];
                    q.executing -= 1;
                    // nextDispatchR -= (G - actual) * seats
                    q.next_dispatch_r -= seats_times(tm.initial_seats as f64, G_NS - actual);
                    if !LevelState::queue_active(q) {
                        lvl.active_queues -= 1;
                    }
                    lvl.bound(qi, &self.reqs);
                }
                if tm.additional > SimTime::ZERO {
                    self.seq += 1;
                    self.timers.push(Reverse(Timer {
                        at: tm.at + tm.additional,
                        seq: self.seq,
                        kind: TimerKind::Release,
                        ..tm
                    }));
                } else {
                    self.release_seats(&tm);
                }
            }
            TimerKind::Release => self.release_seats(&tm),
        }
        if self.levels[li].queuing() && self.levels[li].waiting > 0 {
            self.dispatch(li, tm.at, None, out);
        }
    }

    fn release_seats(&mut self, tm: &Timer) {
        let lvl = &mut self.levels[tm.level as usize];
        lvl.seats_in_use -= tm.max_seats;
        if tm.queue != u16::MAX {
            lvl.queues[tm.queue as usize].seats_in_use -= tm.max_seats;
        }
        lvl.note_demand(tm.at);
        if lvl.level != Level::Exempt {
            self.seats_total -= tm.max_seats;
        }
    }

    fn time_out(&mut self, slot: u32, gen: u32, at: SimTime, out: &mut Vec<ApiOutcome>) {
        let r = self.reqs[slot as usize];
        if r.gen != gen || r.state != ReqState::Queued {
            return;
        }
        let li = r.level as usize;
        let qi = r.queue as usize;
        let lvl = &mut self.levels[li];
        lvl.sync_r(at);
        let seats = r.work.max_seats();
        let q = &mut lvl.queues[qi];
        if let Some(pos) = q.waiting.iter().position(|&s| s == slot) {
            q.waiting.remove(pos);
        }
        if q.waiting.is_empty() {
            lvl.nonempty &= !(1u128 << qi);
        }
        q.waiting_max_seats -= seats;
        q.waiting_work -= r.total_work;
        if !LevelState::queue_active(q) {
            lvl.active_queues -= 1;
        }
        lvl.waiting -= 1;
        lvl.seats_waiting -= seats;
        lvl.note_demand(at);
        lvl.bound(qi, &self.reqs);
        self.queued_total -= 1;
        self.release_slot(slot);
        if let Admission::Rejected {
            retry_after_s,
            reason,
        } = self.reject(li, RejectReason::TimeOut, at)
        {
            out.push(ApiOutcome::Rejected {
                tag: r.tag,
                retry_after_s,
                reason,
            });
        }
    }

    /// Keeps exactly one wake pending while anything is queued.
    fn refresh_wake(&mut self, sched: &mut impl Schedule<ApiServerEvent>) {
        if self.queued_total == 0 {
            return; // a pending wake, if any, will find nothing to do
        }
        let t_timer = self.timers.peek().map(|t| t.0.at).unwrap_or(SimTime::MAX);
        let t_tick = if self.config.borrowing {
            self.next_tick
        } else {
            SimTime::MAX
        };
        let want = t_timer.min(self.next_deadline()).min(t_tick);
        if want == SimTime::MAX {
            return;
        }
        if self.wake_at.is_some_and(|w| w <= want) {
            return;
        }
        self.wake_gen += 1;
        self.wake_at = Some(want);
        sched.schedule_at(
            want,
            ApiServerEvent {
                apiserver: self.index,
                gen: self.wake_gen,
            },
        );
    }

    /// One borrowing adjustment (`updateBorrowingLocked`) at `now`.
    fn borrow_step(&mut self, now: SimTime) {
        let mut items: Vec<(usize, AllocItem)> = Vec::with_capacity(7);
        let mut remaining = self.nominal_sum as i64;
        let (mut min_sum, mut min_current_sum) = (0i64, 0i64);
        let mut hwm = [0u32; 8];
        for (li, lvl) in self.levels.iter_mut().enumerate() {
            let (dur, avg, dev, max) = lvl.integrator.reset(now);
            hwm[li] = max.round() as u32;
            if dur > 0.0 {
                let dev = if dev.is_nan() { 0.0 } else { dev };
                let env = avg + dev;
                lvl.smoothed = env.max(SMOOTHING * lvl.smoothed + (1.0 - SMOOTHING) * env);
            }
            if lvl.level == Level::Exempt {
                remaining -= lvl.min_cl.max(hwm[li]) as i64;
                continue;
            }
            let lower = lvl.min_cl.max(lvl.nominal.min(hwm[li]));
            items.push((
                li,
                AllocItem {
                    lower: lower as f64,
                    upper: lvl.max_cl as f64,
                    target: (lower as f64).max(lvl.smoothed),
                },
            ));
            min_sum += lvl.min_cl as i64;
            min_current_sum += lower as i64;
        }
        let allocs: Vec<u32> = if remaining <= min_sum {
            items
                .iter()
                .map(|(li, _)| self.levels[*li].min_cl)
                .collect()
        } else if remaining <= min_current_sum {
            let share = (remaining - min_sum) as f64 / (min_current_sum - min_sum) as f64;
            items
                .iter()
                .map(|(li, it)| {
                    let l = &self.levels[*li];
                    l.min_cl + ((it.lower - l.min_cl as f64) * share).round() as u32
                })
                .collect()
        } else {
            let only: Vec<AllocItem> = items.iter().map(|(_, it)| *it).collect();
            match fair_allocation(self.nominal_sum as f64, &only) {
                Some(a) => a.iter().map(|x| x.round() as u32).collect(),
                None => items
                    .iter()
                    .map(|(li, _)| self.levels[*li].current_cl)
                    .collect(),
            }
        };
        for ((li, _), cl) in items.iter().zip(allocs) {
            let lvl = &mut self.levels[*li];
            lvl.sync_r(now);
            lvl.current_cl = cl;
        }
        self.levels[Level::Exempt.index()].current_cl = hwm[Level::Exempt.index()];
    }
}

/// One class of the borrowing allocation (`allocProblemItem`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AllocItem {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Target (>= lower).
    pub target: f64,
}

/// The allocation `computeConcurrencyAllocation` defines: `allocs` summing to `total`
/// with each `alloc = clamp(p * target, lower, upper)` for one common `p` (targets
/// below 0.001 count as 0.001). `None` when the bounds make it impossible.
pub fn fair_allocation(total: f64, items: &[AllocItem]) -> Option<Vec<f64>> {
    const EPS: f64 = 1e-7;
    let low: f64 = items.iter().map(|i| i.lower).sum();
    let high: f64 = items.iter().map(|i| i.upper).sum();
    if items
        .iter()
        .any(|i| i.lower < 0.0 || i.upper < i.lower || i.target < i.lower)
    {
        return None;
    }
    if low - total > EPS || total - high > EPS {
        return None;
    }
    if total - low < EPS {
        return Some(items.iter().map(|i| i.lower).collect());
    }
    if high - total < EPS {
        return Some(items.iter().map(|i| i.upper).collect());
    }
    let t = |i: &AllocItem| i.target.max(0.001);
    let sum_at = |p: f64| -> f64 {
        items
            .iter()
            .map(|i| (p * t(i)).clamp(i.lower, i.upper))
            .sum()
    };
    // The sum is piecewise linear and non-decreasing in p, with breakpoints where a
    // class leaves its lower bound or reaches its upper one: find the segment, then
    // solve on it.
    let mut points: Vec<f64> = items
        .iter()
        .flat_map(|i| [i.lower / t(i), i.upper / t(i)])
        .collect();
    points.sort_by(f64::total_cmp);
    let mut lo = points[0];
    for &p in &points {
        if sum_at(p) >= total {
            let (s_lo, s_hi) = (sum_at(lo), sum_at(p));
            let p_star = if s_hi > s_lo {
                lo + (p - lo) * (total - s_lo) / (s_hi - s_lo)
            } else {
                p
            };
            return Some(
                items
                    .iter()
                    .map(|i| (p_star * t(i)).clamp(i.lower, i.upper))
                    .collect(),
            );
        }
        lo = p;
    }
    Some(items.iter().map(|i| i.upper).collect())
}

/// Shuffle sharding (`shufflesharding.Dealer.Deal`): `hand_size` distinct queues of
/// `deck` from `hash`: mixed-radix digits of the hash, each shifted past the smaller
/// earlier digits.
fn deal(mut hash: u64, deck: u64, hand_size: usize, hand: &mut [usize; 8]) {
    let mut rem = [0u64; 8];
    for (i, r) in rem.iter_mut().enumerate().take(hand_size) {
        let d = deck - i as u64;
        *r = hash % d;
        hash /= d;
    }
    for i in 0..hand_size {
        let mut card = rem[i];
        for j in (1..=i).rev() {
            if card >= rem[j - 1] {
                card += 1;
            }
        }
        hand[i] = card as usize;
    }
}

#[cfg(test)]
mod tests;
