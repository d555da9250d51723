//! `run --events FILE`: Kubernetes events and istio-agent log lines, one JSON object a
//! line, as the real components print them (docs/outputs.md cites each text).
//!
//! The model pushes typed [`Record`]s into an [`EventLog`] (a no-op unless the run was
//! asked for events); [`render`] turns them into text at the end. Kubernetes events go
//! through client-go's spam filter (`tools/record/events_cache.go`: a token bucket per
//! source and object, burst 25, refilled 1 per 300 s), as the real recorder sends them;
//! identical events carry their running `count` (the recorder's event series). Agent log
//! lines are not filtered by the real agent.
//!
//! So that a 3-hour incident with a thousand crashlooping pods stays a few megabytes, the
//! file then samples by object (an output choice; the model is not affected): of each
//! reason in each cluster, the first [`DETAILED_OBJECTS`] objects keep every event that
//! passed the spam filter, the others the first event of each series (its `count` is 1);
//! of agent log lines, the first [`DETAILED_OBJECTS`] pods of a cluster keep the first
//! [`LOG_FIRST`] lines of a kind and then every [`LOG_EVERY`]-th, the others their first.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Burst of client-go's per-object spam filter (`defaultSpamBurst`).
pub const SPAM_BURST: f64 = 25.0;
/// Refill of the spam filter, tokens per second (`defaultSpamQPS` = 1/300).
pub const SPAM_QPS: f64 = 1.0 / 300.0;
/// Objects per cluster and reason (pods per cluster and log kind) written in full.
pub const DETAILED_OBJECTS: usize = 20;
/// Agent log lines kept per detailed pod and kind before thinning.
pub const LOG_FIRST: u32 = 10;
/// After [`LOG_FIRST`], one agent log line in this many is kept.
pub const LOG_EVERY: u32 = 20;

/// A pod: its workload's index (0 is istiod) and its serial number in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PodId {
    /// Workload index in the cluster (0: istiod).
    pub workload: u32,
    /// Pods created in the cluster before it.
    pub serial: u32,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// istiod's readiness probe fails (503) every `period_ns` from `at` until `until_ns`.
    IstiodNotReady {
        /// The replica.
        pod: PodId,
        /// When it turns ready.
        until_ns: u64,
        /// The probe period.
        period_ns: u64,
        /// The connection is refused (istiod < 1.16 listens only once synced), not 503.
        refused: bool,
    },
    /// The injection webhook failed a pod creation of the workload's ReplicaSet.
    WebhookFailed {
        /// The workload.
        workload: u32,
        /// No istiod endpoint (else a time-out of the call).
        no_endpoints: bool,
    },
    /// istio-agent's certificate request failed for the `failures`-th time and it waits
    /// `wait_ns` (inner round of `per_round` attempts).
    CaRetry {
        /// The pod.
        pod: PodId,
        /// Failures since the agent started.
        failures: u32,
        /// Attempts per inner round.
        per_round: u32,
        /// The wait before the next attempt.
        wait_ns: u64,
    },
    /// The proxy was killed without a certificate (`startup_probe`: by the startup
    /// probe, else the postStart `pilot-agent wait` failed).
    ProxyKilled {
        /// The pod.
        pod: PodId,
        /// The startup probe's kill (else postStart).
        startup_probe: bool,
    },
    /// istiod exited at start-up: its serving certificate's CSR (`csr`) was not signed
    /// within chiron's wait.
    IstiodExited {
        /// The replica.
        pod: PodId,
        /// Its CSR's key, if it was created.
        csr: Option<u64>,
    },
    /// The kubelet holds the container in CrashLoopBackOff.
    BackOff {
        /// The pod.
        pod: PodId,
    },
    /// An event the CSR signer recorded on a CSR.
    Csr {
        /// The object's key.
        key: u64,
        /// `Warning` (else `Normal`).
        warning: bool,
        /// Reason.
        reason: &'static str,
        /// Message.
        message: &'static str,
    },
    /// The node group update stopped: a node could not be drained in time.
    PodEvictionFailure {
        /// Node group index.
        group: u32,
    },
}

/// One thing that happened, at a time (ns), in a cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record {
    /// Simulated time (ns).
    pub at_ns: u64,
    /// Cluster index.
    pub cluster: u32,
    /// What.
    pub kind: Kind,
}

/// The model's sink: collects records only when on.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    on: bool,
    records: Vec<Record>,
}

impl EventLog {
    /// A log that keeps records (`on`) or drops them.
    pub fn new(on: bool) -> Self {
        EventLog {
            on,
            records: Vec::new(),
        }
    }

    /// Whether records are kept.
    #[inline]
    pub fn on(&self) -> bool {
        self.on
    }

    /// Keeps a record if on.
    #[inline]
    pub fn push(&mut self, at_ns: u64, cluster: u32, kind: Kind) {
        if self.on {
            self.records.push(Record {
                at_ns,
                cluster,
                kind,
            });
        }
    }

    /// The records, in the order they were pushed.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// The records, taken out.
    pub fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.records)
    }
}

/// Names the records need: clusters, workloads per cluster, node groups per cluster.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Cluster names.
    pub clusters: Vec<String>,
    /// Workload names per cluster (index 0: istiod).
    pub workloads: Vec<Vec<String>>,
    /// Node group names per cluster.
    pub node_groups: Vec<Vec<String>>,
}

const SAFE: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn mix(mut x: u64) -> u64 {
    // splitmix64's finaliser: a fixed, well-spread hash (names only, no randomness).
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `n` characters of the apimachinery "safe" alphabet (`util/rand.SafeEncodeString`)
/// drawn from a hash of `seed`.
fn safe(seed: u64, n: usize) -> String {
    let mut h = mix(seed);
    let mut s = String::with_capacity(n);
    for i in 0..n {
        if i % 8 == 7 {
            h = mix(h);
        }
        s.push(SAFE[(h % SAFE.len() as u64) as usize] as char);
        h /= SAFE.len() as u64;
    }
    s
}

fn seed_of(cluster: u32, a: u64, b: u64) -> u64 {
    mix((cluster as u64) << 48 ^ a << 32 ^ b)
}

/// The ReplicaSet of a workload: `<name>-<pod-template-hash>` (10 safe characters).
pub fn replicaset_name(names: &Names, cluster: u32, workload: u32) -> String {
    let w = &names.workloads[cluster as usize][workload as usize];
    format!("{w}-{}", safe(seed_of(cluster, workload as u64, 0), 10))
}

/// A pod's name: `<replicaset>-<5 safe characters>`, stable for the pod's life.
pub fn pod_name(names: &Names, cluster: u32, pod: PodId) -> String {
    format!(
        "{}-{}",
        replicaset_name(names, cluster, pod.workload),
        safe(
            seed_of(cluster, pod.workload as u64, 1 + pod.serial as u64),
            5
        )
    )
}

/// A CSR's name: istiod's `GenerateName: "csr-workload-"` plus 5 safe characters.
pub fn csr_name(cluster: u32, key: u64) -> String {
    format!("csr-workload-{}", safe(seed_of(cluster, 7, key), 5))
}

fn namespace(pod: PodId) -> &'static str {
    if pod.workload == 0 {
        "istio-system"
    } else {
        "default"
    }
}

/// Go's `time.Duration.String()` for a non-negative duration.
pub fn go_duration(ns: u64) -> String {
    fn frac(int: u64, rem: u64, digits: usize) -> String {
        let mut s = format!("{int}");
        if rem > 0 {
            let f = format!("{rem:0digits$}");
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        s
    }
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns / 1_000, ns % 1_000, 3));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns / 1_000_000, ns % 1_000_000, 6));
    }
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if h > 0 || m > 0 {
        let _ = write!(out, "{m}m");
    }
    out.push_str(&frac(s, sub, 9));
    out.push('s');
    out
}

/// RFC 3339 (UTC, microseconds) of `epoch_s` seconds after 1970.
pub fn rfc3339(epoch_s: f64) -> String {
    let micros = (epoch_s * 1e6).round() as i64;
    let secs = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = crate::numfmt::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Seconds with at most 6 decimals, no trailing zeros.
fn secs_text(t: f64) -> String {
    let s = format!("{t:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// One output line before filtering.
struct Line {
    at_ns: u64,
    cluster: u32,
    namespace: &'static str,
    object: String,
    /// `Some(container)` for an agent log line.
    container: Option<&'static str>,
    /// `Normal`/`Warning`, or the log level.
    kind: &'static str,
    /// The event reason, or the log scope.
    reason: &'static str,
    message: String,
    /// The reporting component.
    source: &'static str,
    /// Spam-filter key group: the message kind for log thinning.
    log_kind: u8,
}

fn expand(r: &Record, names: &Names, out: &mut Vec<Line>) {
    let cluster = r.cluster;
    let pod_line =
        |pod: PodId, at_ns: u64, kind: &'static str, reason: &'static str, message: String| Line {
            at_ns,
            cluster,
            namespace: namespace(pod),
            object: format!("pod/{}", pod_name(names, cluster, pod)),
            container: None,
            kind,
            reason,
            message,
            source: "kubelet",
            log_kind: 0,
        };
    match r.kind {
        Kind::IstiodNotReady {
            pod,
            until_ns,
            period_ns,
            refused,
        } => {
            let message = if refused {
                // kubelet's prober (pkg/probe/http): the Get's error, pod IP elided.
                "Readiness probe failed: Get \"http://<pod-ip>:8080/ready\": dial tcp <pod-ip>:8080: connect: connection refused"
            } else {
                "Readiness probe failed: HTTP probe failed with statuscode: 503"
            };
            let mut t = r.at_ns + period_ns.max(1);
            while t < until_ns {
                out.push(pod_line(pod, t, "Warning", "Unhealthy", message.into()));
                t += period_ns.max(1);
            }
        }
        Kind::WebhookFailed {
            workload,
            no_endpoints,
        } => {
            let cause = if no_endpoints {
                "no endpoints available for service \"istiod\""
            } else {
                "context deadline exceeded"
            };
            out.push(Line {
                at_ns: r.at_ns,
                cluster,
                namespace: "default",
                object: format!("replicaset/{}", replicaset_name(names, cluster, workload)),
                container: None,
                kind: "Warning",
                reason: "FailedCreate",
                message: format!(
                    "Error creating: Internal error occurred: failed calling webhook \"namespace.sidecar-injector.istio.io\": failed to call webhook: Post \"https://istiod.istio-system.svc:443/inject?timeout=10s\": {cause}"
                ),
                source: "replicaset-controller",
                log_kind: 0,
            });
        }
        Kind::CaRetry {
            pod,
            failures,
            per_round,
            wait_ns,
        } => {
            let per_round = per_round.max(1);
            let pos = (failures.max(1) - 1) % per_round + 1;
            if pos < per_round {
                let mut l = pod_line(
                    pod,
                    r.at_ns,
                    "warn",
                    "ca",
                    format!(
                        "ca request failed, starting attempt {pos} in {}",
                        go_duration(wait_ns)
                    ),
                );
                l.container = Some("istio-proxy");
                l.source = "istio-agent";
                l.log_kind = 1;
                out.push(l);
            }
        }
        Kind::ProxyKilled { pod, startup_probe } => {
            let name = pod_name(names, cluster, pod);
            let mut l = pod_line(pod, r.at_ns, "warn", "default", "Aborting proxy".into());
            l.container = Some("istio-proxy");
            l.source = "istio-agent";
            l.log_kind = 2;
            if startup_probe {
                out.push(pod_line(
                    pod,
                    r.at_ns,
                    "Warning",
                    "Unhealthy",
                    "Startup probe failed: HTTP probe failed with statuscode: 503".into(),
                ));
                out.push(pod_line(
                    pod,
                    r.at_ns,
                    "Normal",
                    "Killing",
                    "Container istio-proxy failed startup probe, will be restarted".into(),
                ));
            } else {
                out.push(pod_line(
                    pod,
                    r.at_ns,
                    "Warning",
                    "FailedPostStartHook",
                    format!(
                        "Exec lifecycle hook ([pilot-agent wait]) for Container \"istio-proxy\" in Pod \"{name}_{}\" failed - error: command 'pilot-agent wait' exited with 255: , message: \"\"",
                        namespace(pod)
                    ),
                ));
                out.push(pod_line(
                    pod,
                    r.at_ns,
                    "Normal",
                    "Killing",
                    "FailedPostStartHook".into(),
                ));
            }
            out.push(l);
        }
        Kind::IstiodExited { pod, csr } => {
            let what = match csr {
                // chiron's readSignedCertificate (security/pkg/k8s/chiron/utils.go).
                Some(key) => format!(
                    "no certificate returned for the CSR: \"{}\"",
                    csr_name(cluster, key)
                ),
                None => "unable to submit CSR request".to_string(),
            };
            let mut l = pod_line(
                pod,
                r.at_ns,
                "error",
                "discovery",
                format!("Error: failed to create discovery service: failed generating key and cert by kubernetes: {what}"),
            );
            l.container = Some("discovery");
            l.source = "istiod";
            out.push(l);
        }
        Kind::BackOff { pod } => {
            let name = pod_name(names, cluster, pod);
            let container = if pod.workload == 0 {
                "discovery"
            } else {
                "istio-proxy"
            };
            out.push(pod_line(
                pod,
                r.at_ns,
                "Warning",
                "BackOff",
                format!(
                    "Back-off restarting failed container {container} in pod {name}_{}",
                    namespace(pod)
                ),
            ));
        }
        Kind::Csr {
            key,
            warning,
            reason,
            message,
        } => out.push(Line {
            at_ns: r.at_ns,
            cluster,
            namespace: "",
            object: format!("certificatesigningrequest/{}", csr_name(cluster, key)),
            container: None,
            kind: if warning { "Warning" } else { "Normal" },
            reason,
            message: message.into(),
            source: "signer",
            log_kind: 0,
        }),
        Kind::PodEvictionFailure { group } => {
            let g = &names.node_groups[cluster as usize][group as usize];
            out.push(Line {
                at_ns: r.at_ns,
                cluster,
                namespace: "",
                object: format!("nodegroup/{g}"),
                container: None,
                kind: "Warning",
                reason: "PodEvictionFailure",
                message: format!(
                    "Reached max retries while trying to evict pods from nodes in node group {g}"
                ),
                source: "eks",
                log_kind: 0,
            });
        }
    }
}

/// Token bucket of client-go's `EventSourceObjectSpamFilter`.
struct Bucket {
    tokens: f64,
    last_s: f64,
}

/// What [`render`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rendered {
    /// Lines written.
    pub lines: u64,
    /// Kubernetes events the spam filter dropped.
    pub spam_dropped: u64,
    /// Agent log lines thinned out.
    pub log_thinned: u64,
    /// Kubernetes events past the filter left out by the per-object sampling.
    pub sampled_out: u64,
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The JSON lines of `records`, in time order (records at the same time in the order
/// pushed); `start_s`: the wall-clock (Unix seconds) of simulated time 0.
pub fn render(records: &[Record], names: &Names, start_s: f64) -> (String, Rendered) {
    let mut lines = Vec::new();
    for r in records {
        expand(r, names, &mut lines);
    }
    lines.sort_by_key(|l| l.at_ns); // stable: same-time lines keep their order
    let mut buckets: HashMap<(u32, &'static str, String), Bucket> = HashMap::new();
    let mut counts: HashMap<(u32, String, &'static str, String), u64> = HashMap::new();
    let mut logs: HashMap<(u32, String, u8), u32> = HashMap::new();
    let mut detailed: HashMap<(u32, &'static str), Vec<String>> = HashMap::new();
    let mut is_detailed = |cluster: u32, key: &'static str, object: &str| -> bool {
        let d = detailed.entry((cluster, key)).or_default();
        if d.iter().any(|o| o == object) {
            return true;
        }
        if d.len() < DETAILED_OBJECTS {
            d.push(object.to_string());
            return true;
        }
        false
    };
    let mut out = String::new();
    let mut stats = Rendered::default();
    for l in lines {
        let t_s = l.at_ns as f64 / 1e9;
        let mut count = None;
        if l.container.is_some() {
            let n = logs
                .entry((l.cluster, l.object.clone(), l.log_kind))
                .or_insert(0);
            *n += 1;
            let n = *n;
            let kind = ["", "log:ca", "log:abort"][l.log_kind as usize % 3];
            let keep = if is_detailed(l.cluster, kind, &l.object) {
                n <= LOG_FIRST || (n - LOG_FIRST) % LOG_EVERY == 0
            } else {
                n == 1
            };
            if !keep {
                stats.log_thinned += 1;
                continue;
            }
        } else {
            let b = buckets
                .entry((l.cluster, l.source, l.object.clone()))
                .or_insert(Bucket {
                    tokens: SPAM_BURST,
                    last_s: t_s,
                });
            b.tokens = (b.tokens + (t_s - b.last_s) * SPAM_QPS).min(SPAM_BURST);
            b.last_s = t_s;
            if b.tokens < 1.0 {
                stats.spam_dropped += 1;
                continue;
            }
            b.tokens -= 1.0;
            let c = counts
                .entry((l.cluster, l.object.clone(), l.reason, l.message.clone()))
                .or_insert(0);
            *c += 1;
            let c = *c;
            if c > 1 && !is_detailed(l.cluster, l.reason, &l.object) {
                stats.sampled_out += 1;
                continue;
            }
            count = Some(c);
        }
        out.push_str("{\"time\":");
        json_str(&mut out, &rfc3339(start_s + t_s));
        let _ = write!(out, ",\"t_s\":{}", secs_text(t_s));
        out.push_str(",\"cluster\":");
        json_str(&mut out, &names.clusters[l.cluster as usize]);
        if !l.namespace.is_empty() {
            out.push_str(",\"namespace\":");
            json_str(&mut out, l.namespace);
        }
        out.push_str(",\"object\":");
        json_str(&mut out, &l.object);
        if let Some(c) = l.container {
            out.push_str(",\"container\":");
            json_str(&mut out, c);
        }
        out.push_str(",\"type\":");
        json_str(&mut out, l.kind);
        out.push_str(",\"reason\":");
        json_str(&mut out, l.reason);
        out.push_str(",\"message\":");
        json_str(&mut out, &l.message);
        out.push_str(",\"source\":");
        json_str(&mut out, l.source);
        if let Some(c) = count {
            let _ = write!(out, ",\"count\":{c}");
        }
        out.push_str("}\n");
        stats.lines += 1;
    }
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_duration_prints_like_go() {
        // Values as Go prints them (time.Duration.String).
        assert_eq!(go_duration(104_968_012), "104.968012ms");
        assert_eq!(go_duration(99_990_000), "99.99ms");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
        assert_eq!(go_duration(1_500), "1.5µs");
    }

    #[test]
    fn rfc3339_of_known_instants() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339(1_767_225_600.25), "2026-01-01T00:00:00.250000Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00.000000Z");
    }

    fn names() -> Names {
        Names {
            clusters: vec!["c".into()],
            workloads: vec![vec!["istiod".into(), "checkout".into()]],
            node_groups: vec![vec!["apps".into()]],
        }
    }

    #[test]
    fn the_spam_filter_passes_a_burst_of_25_then_one_per_300_s() {
        let pod = PodId {
            workload: 1,
            serial: 3,
        };
        // One BackOff a second for an hour: 25 at once, then one per 300 s refill.
        let records: Vec<Record> = (0..3600u64)
            .map(|s| Record {
                at_ns: s * 1_000_000_000,
                cluster: 0,
                kind: Kind::BackOff { pod },
            })
            .collect();
        let (text, st) = render(&records, &names(), 0.0);
        // 25 at once, then one per 300 s refill: 11 more in the remaining 3575 s (10
        // if the float refill falls a hair short of a whole token).
        assert!((35..=36).contains(&st.lines), "{}", st.lines);
        assert_eq!(text.lines().count() as u64, st.lines);
        assert_eq!(st.lines + st.spam_dropped, 3600);
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["count"], st.lines);
    }

    #[test]
    fn agent_lines_are_thinned_and_outer_waits_print_nothing() {
        let pod = PodId {
            workload: 1,
            serial: 0,
        };
        let records: Vec<Record> = (1..=100u32)
            .map(|k| Record {
                at_ns: k as u64,
                cluster: 0,
                kind: Kind::CaRetry {
                    pod,
                    failures: k,
                    per_round: 5,
                    wait_ns: 100_000_000,
                },
            })
            .collect();
        let (text, st) = render(&records, &names(), 0.0);
        // 80 of the 100 failures are inner (positions 1-4); 10 kept, then every 20th.
        assert_eq!(st.lines + st.log_thinned, 80);
        assert_eq!(st.lines, 10 + 70 / 20);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            first["message"],
            "ca request failed, starting attempt 1 in 100ms"
        );
        assert_eq!(first["type"], "warn");
        assert_eq!(first["reason"], "ca");
    }

    #[test]
    fn pod_names_look_like_a_deployments_and_stay_stable() {
        let n = names();
        let p = PodId {
            workload: 1,
            serial: 9,
        };
        let a = pod_name(&n, 0, p);
        assert_eq!(a, pod_name(&n, 0, p));
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts[0], "checkout");
        assert_eq!(parts[1].len(), 10);
        assert_eq!(parts[2].len(), 5);
        assert!(a[9..].bytes().all(|b| b == b'-' || SAFE.contains(&b)));
        assert_ne!(a, pod_name(&n, 0, PodId { serial: 10, ..p }));
    }
}
