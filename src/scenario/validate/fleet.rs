//! Section checkers of the fleet: `[scenario]`, `[ca.<name>]`, `[cluster.<name>]` with
//! its istiod, webhook, agent, kubernetes, node groups and workloads, and the expansion of
//! `count` templates into clusters (after the fleet's totals are checked against the
//! limits, so no allocation grows with an absurd value).

use std::collections::HashMap;

use crate::ca::{CaConfig, OnTimeout, RateLimit, ServiceTime, Usl};
use crate::duration::format_duration;
use crate::engine::SimTime;
use crate::keypath::join;
use crate::suggest::hint as nearest_hint;

use super::super::limits::*;
use super::super::raw::*;
use super::super::types::*;
use super::checker::{Bound, Checker, DurationRule, LIMIT};

/// A cluster template before expansion.
pub(super) struct Template {
    name: String,
    path: String,
    count: u64,
    spec: ClusterSpec,
}

impl Checker<'_> {
    pub(super) fn meta(&mut self, meta: Option<&RawMeta>, s: &mut Scenario) {
        let Some(m) = meta else { return };
        if let Some(name) = &m.name {
            if name.trim().is_empty()
                || name.len() > MAX_NAME_LEN
                || name.chars().any(char::is_control)
            {
                self.err(
                    "scenario.name",
                    format!(
                        "must be 1 to {MAX_NAME_LEN} characters without control characters, got \"{}\"",
                        name.escape_debug()
                    ),
                );
            } else if name.contains(['/', '\\']) || name.starts_with('.') {
                // It names the default output folder (`output/<name>/...`): it must stay
                // one folder inside output/.
                self.err(
                    "scenario.name",
                    format!(
                        "names the output folder, so it may not contain '/' or '\\' nor start with '.', got \"{}\"",
                        name.escape_debug()
                    ),
                );
            } else {
                s.name = name.clone();
            }
        }
        if let Some(d) = &m.description {
            s.description = d.clone();
        }
        s.seed = self.int("scenario.seed", m.seed, s.seed, 0, i64::MAX as u64, false);
        if let Some(h) = &m.horizon {
            if h.time == SimTime::ZERO {
                self.err(
                    "scenario.horizon",
                    format!("must be > 0, got \"{}\"", h.text.escape_debug()),
                );
            } else if h.time > MAX_HORIZON {
                self.err(
                    "scenario.horizon",
                    format!(
                        "must be <= {}{LIMIT}, got \"{}\"",
                        format_duration(MAX_HORIZON),
                        h.text.escape_debug()
                    ),
                );
            } else {
                s.horizon = h.time;
            }
        }
        if let Some(si) = &m.sample_interval {
            if si.time < MIN_SAMPLE_INTERVAL {
                self.err(
                    "scenario.sample_interval",
                    format!(
                        "must be >= {}{LIMIT}, got \"{}\"",
                        format_duration(MIN_SAMPLE_INTERVAL),
                        si.text.escape_debug()
                    ),
                );
            } else if si.time > s.horizon {
                self.err(
                    "scenario.sample_interval",
                    format!(
                        "must be <= the horizon ({}), got \"{}\"",
                        format_duration(s.horizon),
                        si.text.escape_debug()
                    ),
                );
            } else {
                s.sample_interval = si.time;
            }
        }
        let samples = s.horizon.as_nanos() / s.sample_interval.as_nanos().max(1);
        if samples > MAX_SAMPLES {
            self.err(
                "scenario.sample_interval",
                format!(
                    "horizon {} / sample interval {} = {samples} samples; at most {MAX_SAMPLES}{LIMIT}",
                    format_duration(s.horizon),
                    format_duration(s.sample_interval)
                ),
            );
        }
        s.max_events = self.int(
            "scenario.max_events",
            m.max_events,
            s.max_events,
            1,
            MAX_EVENTS,
            true,
        );
        if let Some(text) = &m.max_memory {
            match crate::numfmt::parse_size(text) {
                Ok(bytes) => s.max_memory_bytes = bytes,
                Err(e) => self.err("scenario.max_memory", e),
            }
        }
    }

    pub(super) fn ca(&mut self, path: &str, name: &str, r: &RawCa) -> CaSpec {
        let d = CaConfig::default();
        let p = |f: &str| join(path, f);
        let workers = self.int32(&p("workers"), r.workers, d.workers, 1, MAX_WORKERS, true);
        let service = match r.service_dist.unwrap_or(ServiceDist::Exponential) {
            ServiceDist::Exponential => ServiceTime::Exponential {
                mean: self.dur(
                    &p("service_mean"),
                    &r.service_mean,
                    SimTime::from_millis(100),
                    DurationRule::Positive,
                ),
            },
            ServiceDist::Constant => ServiceTime::Constant {
                value: self.dur(
                    &p("service_mean"),
                    &r.service_mean,
                    SimTime::from_millis(100),
                    DurationRule::Positive,
                ),
            },
            ServiceDist::LogNormal => {
                let (median, p99) = match (&r.service_median, &r.service_p99) {
                    (Some(_), Some(_)) => (
                        self.dur(
                            &p("service_median"),
                            &r.service_median,
                            SimTime::from_millis(100),
                            DurationRule::Positive,
                        ),
                        self.dur(
                            &p("service_p99"),
                            &r.service_p99,
                            SimTime::from_millis(100),
                            DurationRule::Positive,
                        ),
                    ),
                    _ => {
                        self.err(
                            &p("service_dist"),
                            "service_dist = \"lognormal\" needs both service_median and service_p99".into(),
                        );
                        (SimTime::from_millis(100), SimTime::from_millis(200))
                    }
                };
                if p99 <= median && r.service_median.is_some() && r.service_p99.is_some() {
                    self.err(
                        &p("service_p99"),
                        format!(
                            "must be > service_median ({}), got \"{}\"",
                            format_duration(median),
                            r.service_p99
                                .as_ref()
                                .map_or(String::new(), |d| d.text.escape_debug().to_string())
                        ),
                    );
                }
                ServiceTime::LogNormal { median, p99 }
            }
        };
        let rate_limit = match r.rate_limit_per_s {
            Some(_) => {
                let rate = self.rate(&p("rate_limit_per_s"), r.rate_limit_per_s, 25.0);
                let burst_default = (rate.ceil() as u32).max(1);
                let burst = self.int32(
                    &p("rate_limit_burst"),
                    r.rate_limit_burst,
                    burst_default,
                    1,
                    MAX_BURST,
                    true,
                );
                Some(RateLimit {
                    rate_per_s: rate,
                    burst,
                })
            }
            None => {
                if r.rate_limit_burst.is_some() {
                    self.err(
                        &p("rate_limit_burst"),
                        "needs rate_limit_per_s (there is no rate limit to burst)".into(),
                    );
                }
                None
            }
        };
        let sigma = self.num(
            &p("contention_sigma"),
            r.contention_sigma,
            0.0,
            Bound::Inclusive(0.0),
            Bound::Exclusive(1.0),
        );
        let kappa = self.num(
            &p("coherency_kappa"),
            r.coherency_kappa,
            0.0,
            Bound::Inclusive(0.0),
            Bound::Inclusive(1.0),
        );
        let alpha = self.num(
            &p("failed_csr_slowdown_alpha"),
            r.failed_csr_slowdown_alpha,
            0.0,
            Bound::Inclusive(0.0),
            Bound::Inclusive(MAX_SLOWDOWN_ALPHA),
        );
        CaSpec {
            name: name.to_string(),
            config: CaConfig {
                workers,
                service,
                rate_limit,
                usl: Usl { sigma, kappa },
                failed_object_slowdown: alpha,
            },
            signer_deadline: self.dur(
                &p("signer_deadline"),
                &r.signer_deadline,
                SimTime::from_secs(30),
                DurationRule::Positive,
            ),
            on_timeout: match r.on_timeout.unwrap_or(RawOnTimeout::Keep) {
                RawOnTimeout::Keep => OnTimeout::Keep,
                RawOnTimeout::Cancel => OnTimeout::Cancel,
            },
        }
    }

    pub(super) fn cluster(&mut self, name: &str, r: &RawCluster, cas: &[CaSpec]) -> Template {
        let path = join("cluster", name);
        self.name(&path, name);
        let p = |f: &str| join(&path, f);
        let count = self.int(&p("count"), r.count, 1, 1, MAX_CLUSTERS, true);
        let ca = match &r.ca {
            Some(ca_name) => match cas.iter().position(|c| &c.name == ca_name) {
                Some(i) => i,
                None => {
                    let names: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
                    self.err(
                        &p("ca"),
                        format!(
                            "no CA named \"{}\" (defined: {}){}",
                            ca_name.escape_debug(),
                            if names.is_empty() {
                                "none".into()
                            } else {
                                names.join(", ")
                            },
                            nearest_hint(ca_name, &names)
                        ),
                    );
                    0
                }
            },
            None if cas.len() > 1 => {
                let names: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
                self.err(
                    &path,
                    format!(
                        "missing field `ca`: required when more than one CA is defined ({})",
                        names.join(", ")
                    ),
                );
                0
            }
            None => 0,
        };

        let mut spec = ClusterSpec::with_defaults(name, ca);
        if let Some(i) = &r.istiod {
            spec.istiod = self.istiod(&p("istiod"), i);
        }
        if let Some(w) = &r.webhook {
            spec.webhook = self.webhook(&p("webhook"), w);
        }
        if let Some(a) = &r.agent {
            spec.agent = self.agent(&p("agent"), a);
        }
        if let Some(k) = &r.kubernetes {
            spec.kubernetes = self.kubernetes(&p("kubernetes"), k);
        }
        if !r.node_group.is_empty() {
            spec.node_groups = r
                .node_group
                .iter()
                .map(|(ng, rn)| {
                    let np = join(&p("node_group"), ng);
                    self.name(&np, ng);
                    self.node_group(&np, ng, rn)
                })
                .collect();
        }
        if !r.workload.is_empty() {
            spec.workloads = r
                .workload
                .iter()
                .map(|(wl, rw)| {
                    let wp = join(&p("workload"), wl);
                    self.name(&wp, wl);
                    self.workload(&wp, wl, rw)
                })
                .collect();
        }
        // Node affinity: names resolve against this cluster's node groups.
        if let Some(ng) = r.istiod.as_ref().and_then(|i| i.node_group.as_deref()) {
            spec.istiod.node_group =
                self.node_group_ref(&join(&p("istiod"), "node_group"), ng, &spec);
        }
        for (i, (wl, rw)) in r.workload.iter().enumerate() {
            if let Some(ng) = rw.node_group.as_deref() {
                let at = join(&join(&p("workload"), wl), "node_group");
                spec.workloads[i].node_group = self.node_group_ref(&at, ng, &spec);
            }
        }
        let replicas: u64 = spec.workloads.iter().map(|w| u64::from(w.replicas)).sum();
        let istiod = u64::from(spec.istiod.replicas);
        let slots: u64 = spec
            .node_groups
            .iter()
            .map(|g| u64::from(g.nodes) * u64::from(g.max_pods))
            .sum();
        for (g, group) in spec.node_groups.iter().enumerate() {
            let pinned: u64 = spec
                .workloads
                .iter()
                .filter(|w| w.node_group == Some(g))
                .map(|w| u64::from(w.replicas))
                .sum::<u64>()
                + if spec.istiod.node_group == Some(g) {
                    istiod
                } else {
                    0
                };
            let room = u64::from(group.nodes) * u64::from(group.max_pods);
            if pinned > room && !self.has_errors_under(&path) {
                self.err(
                    &join(&p("node_group"), &group.name),
                    format!("pods pinned to this node group do not fit: {pinned} pods > {room} pod slots (nodes x max_pods)"),
                );
            }
        }
        if replicas + istiod > slots && !self.has_errors_under(&path) {
            self.err(
                &path,
                format!(
                    "pods do not fit: {replicas} workload replicas + {istiod} istiod replicas = {} pods > {slots} pod slots (nodes x max_pods over its node groups)",
                    replicas + istiod
                ),
            );
        }
        Template {
            name: name.to_string(),
            path,
            count,
            spec,
        }
    }

    /// Resolves a node group name of this cluster for node affinity.
    pub(super) fn node_group_ref(
        &mut self,
        path: &str,
        name: &str,
        spec: &ClusterSpec,
    ) -> Option<usize> {
        if let Some(i) = spec.node_groups.iter().position(|g| g.name == name) {
            return Some(i);
        }
        let names: Vec<&str> = spec.node_groups.iter().map(|g| g.name.as_str()).collect();
        self.err(
            path,
            format!(
                "no node group named \"{}\" in this cluster (defined: {}){}",
                name.escape_debug(),
                names.join(", "),
                nearest_hint(name, &names)
            ),
        );
        None
    }

    pub(super) fn istiod(&mut self, path: &str, r: &RawIstiod) -> IstiodSpec {
        let d = IstiodSpec::default();
        let p = |f: &str| join(path, f);
        IstiodSpec {
            replicas: self.int32(
                &p("replicas"),
                r.replicas,
                d.replicas,
                1,
                MAX_ISTIOD_REPLICAS,
                true,
            ),
            startup_base: self.dur(
                &p("startup_base"),
                &r.startup_base,
                d.startup_base,
                DurationRule::NonNegative,
            ),
            startup_per_1k_pods: self.dur(
                &p("startup_per_1k_pods"),
                &r.startup_per_1k_pods,
                d.startup_per_1k_pods,
                DurationRule::NonNegative,
            ),
            readiness_period: self.dur(
                &p("readiness_period"),
                &r.readiness_period,
                d.readiness_period,
                DurationRule::Positive,
            ),
            client_qps: self.rate(&p("client_qps"), r.client_qps, d.client_qps),
            client_burst: self.int32(
                &p("client_burst"),
                r.client_burst,
                d.client_burst,
                1,
                MAX_BURST,
                true,
            ),
            calls_per_csr: self.int32(
                &p("calls_per_csr"),
                r.calls_per_csr,
                d.calls_per_csr,
                1,
                MAX_SMALL_COUNT,
                true,
            ),
            ca_wait_timeout: self.dur(
                &p("ca_wait_timeout"),
                &r.ca_wait_timeout,
                d.ca_wait_timeout,
                DurationRule::Positive,
            ),
            delete_csr_on_give_up: r.delete_csr_on_give_up.unwrap_or(d.delete_csr_on_give_up),
            pdb: r.pdb.unwrap_or(d.pdb),
            node_group: None,
        }
    }

    pub(super) fn webhook(&mut self, path: &str, r: &RawWebhook) -> WebhookSpec {
        let d = WebhookSpec::default();
        let p = |f: &str| join(path, f);
        let mut timeout = d.timeout;
        if let Some(t) = &r.timeout {
            if t.time < SimTime::from_secs(1) || t.time > SimTime::from_secs(30) {
                self.err(
                    &p("timeout"),
                    format!(
                        "must be between 1s and 30s (admissionregistration API), got \"{}\"",
                        t.text.escape_debug()
                    ),
                );
            } else {
                timeout = t.time;
            }
        }
        WebhookSpec {
            timeout,
            failure_policy: match r.failure_policy.unwrap_or(RawFailurePolicy::Fail) {
                RawFailurePolicy::Fail => FailurePolicy::Fail,
                RawFailurePolicy::Ignore => FailurePolicy::Ignore,
            },
            injection_time: self.dur(
                &p("injection_time"),
                &r.injection_time,
                d.injection_time,
                DurationRule::NonNegative,
            ),
        }
    }

    pub(super) fn agent(&mut self, path: &str, r: &RawAgent) -> AgentSpec {
        let d = AgentSpec::default();
        let p = |f: &str| join(path, f);
        let a = AgentSpec {
            inner_attempts: self.int32(
                &p("inner_attempts"),
                r.inner_attempts,
                d.inner_attempts,
                1,
                MAX_SMALL_COUNT,
                true,
            ),
            inner_initial: self.dur(
                &p("inner_initial"),
                &r.inner_initial,
                d.inner_initial,
                DurationRule::Positive,
            ),
            outer_initial: self.dur(
                &p("outer_initial"),
                &r.outer_initial,
                d.outer_initial,
                DurationRule::Positive,
            ),
            outer_max: self.dur(
                &p("outer_max"),
                &r.outer_max,
                d.outer_max,
                DurationRule::Positive,
            ),
            startup_probe_limit: self.dur(
                &p("startup_probe_limit"),
                &r.startup_probe_limit,
                d.startup_probe_limit,
                DurationRule::Positive,
            ),
            termination_drain: self.dur(
                &p("termination_drain"),
                &r.termination_drain,
                d.termination_drain,
                DurationRule::NonNegative,
            ),
        };
        self.not_below(
            &p("outer_max"),
            a.outer_max,
            "outer_initial",
            a.outer_initial,
        );
        a
    }

    pub(super) fn kubernetes(&mut self, path: &str, r: &RawKubernetes) -> KubernetesSpec {
        let d = KubernetesSpec::default();
        let p = |f: &str| join(path, f);
        let k = KubernetesSpec {
            backoff_initial: self.dur(
                &p("backoff_initial"),
                &r.backoff_initial,
                d.backoff_initial,
                DurationRule::Positive,
            ),
            backoff_max: self.dur(
                &p("backoff_max"),
                &r.backoff_max,
                d.backoff_max,
                DurationRule::Positive,
            ),
            backoff_reset: self.dur(
                &p("backoff_reset"),
                &r.backoff_reset,
                d.backoff_reset,
                DurationRule::Positive,
            ),
            requeue_base: self.dur(
                &p("requeue_base"),
                &r.requeue_base,
                d.requeue_base,
                DurationRule::Positive,
            ),
            requeue_max: self.dur(
                &p("requeue_max"),
                &r.requeue_max,
                d.requeue_max,
                DurationRule::Positive,
            ),
            csr_cleaner_period: self.dur(
                &p("csr_cleaner_period"),
                &r.csr_cleaner_period,
                d.csr_cleaner_period,
                DurationRule::Positive,
            ),
            csr_failed_max_age: self.dur(
                &p("csr_failed_max_age"),
                &r.csr_failed_max_age,
                d.csr_failed_max_age,
                DurationRule::NonNegative,
            ),
            eviction_retry: self.dur(
                &p("eviction_retry"),
                &r.eviction_retry,
                d.eviction_retry,
                DurationRule::Positive,
            ),
        };
        self.not_below(
            &p("backoff_max"),
            k.backoff_max,
            "backoff_initial",
            k.backoff_initial,
        );
        self.not_below(
            &p("requeue_max"),
            k.requeue_max,
            "requeue_base",
            k.requeue_base,
        );
        k
    }

    pub(super) fn node_group(&mut self, path: &str, name: &str, r: &RawNodeGroup) -> NodeGroupSpec {
        let d = NodeGroupSpec::default();
        let p = |f: &str| join(path, f);
        let strategy = match r.strategy.unwrap_or(RawStrategy::Default) {
            RawStrategy::Default => UpdateStrategy::Default,
            RawStrategy::Minimal => UpdateStrategy::Minimal,
            RawStrategy::Karpenter => UpdateStrategy::Karpenter,
        };
        let max_unavailable = match (r.max_unavailable, r.max_unavailable_percent) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    "give max_unavailable (a count) or max_unavailable_percent, not both".into(),
                );
                d.max_unavailable
            }
            (Some(n), None) => {
                MaxUnavailable::Count(self.int32(&p("max_unavailable"), Some(n), 1, 1, 100, false))
            }
            (None, Some(pc)) => MaxUnavailable::Percent(self.num(
                &p("max_unavailable_percent"),
                Some(pc),
                10.0,
                Bound::Exclusive(0.0),
                Bound::Inclusive(100.0),
            )),
            // Karpenter's default disruption budget is `nodes: 10%`; EKS's is 1 node.
            (None, None) if strategy == UpdateStrategy::Karpenter => MaxUnavailable::Percent(10.0),
            (None, None) => d.max_unavailable,
        };
        let ami = self.ami(&p("ami"), r.ami.as_deref(), &d.ami);
        let target = self.ami(
            &p("target_ami"),
            r.target_ami.as_deref(),
            d.target_ami.as_deref().unwrap_or("ami-new"),
        );
        let g = NodeGroupSpec {
            name: name.to_string(),
            nodes: self.int32(&p("nodes"), r.nodes, d.nodes, 1, MAX_NODES_PER_GROUP, true),
            max_pods: self.int32(
                &p("max_pods"),
                r.max_pods,
                d.max_pods,
                1,
                MAX_PODS_PER_NODE,
                true,
            ),
            azs: self.int32(&p("azs"), r.azs, d.azs, 1, MAX_AZS, true),
            ami,
            target_ami: r.upgrade.unwrap_or(true).then_some(target),
            strategy,
            max_unavailable,
            launch_min: self.dur(
                &p("launch_min"),
                &r.launch_min,
                d.launch_min,
                DurationRule::NonNegative,
            ),
            launch_max: self.dur(
                &p("launch_max"),
                &r.launch_max,
                d.launch_max,
                DurationRule::NonNegative,
            ),
            drain_timeout: self.dur(
                &p("drain_timeout"),
                &r.drain_timeout,
                d.drain_timeout,
                DurationRule::Positive,
            ),
            force: r.force.unwrap_or(d.force),
            terminate_delay: self.dur(
                &p("terminate_delay"),
                &r.terminate_delay,
                d.terminate_delay,
                DurationRule::NonNegative,
            ),
        };
        self.not_below(&p("launch_max"), g.launch_max, "launch_min", g.launch_min);
        g
    }

    pub(super) fn ami(&mut self, path: &str, v: Option<&str>, default: &str) -> String {
        match v {
            Some(a)
                if a.trim().is_empty()
                    || a.len() > MAX_NAME_LEN
                    || a.chars().any(char::is_control) =>
            {
                self.err(
                    path,
                    format!(
                        "must be 1 to {MAX_NAME_LEN} characters without control characters, got \"{}\"",
                        a.escape_debug()
                    ),
                );
                default.to_string()
            }
            Some(a) => a.to_string(),
            None => default.to_string(),
        }
    }

    pub(super) fn workload(&mut self, path: &str, name: &str, r: &RawWorkload) -> WorkloadSpec {
        let d = WorkloadSpec::default();
        let p = |f: &str| join(path, f);
        let pdb_max = self.int32(
            &p("pdb_max_unavailable"),
            r.pdb_max_unavailable,
            1,
            0,
            MAX_PODS_TOTAL,
            true,
        );
        WorkloadSpec {
            name: name.to_string(),
            replicas: self.int32(
                &p("replicas"),
                r.replicas,
                d.replicas,
                1,
                MAX_PODS_TOTAL,
                true,
            ),
            injected: r.injected.unwrap_or(d.injected),
            pdb_max_unavailable: r.pdb.unwrap_or(true).then_some(pdb_max),
            container_start: self.dur(
                &p("container_start"),
                &r.container_start,
                d.container_start,
                DurationRule::NonNegative,
            ),
            ready_delay: self.dur(
                &p("ready_delay"),
                &r.ready_delay,
                d.ready_delay,
                DurationRule::NonNegative,
            ),
            node_group: None,
        }
    }

    /// Checks fleet totals, then expands `count` templates into uniquely named clusters.
    /// Returns the clusters and the templates with the indices of their instances.
    pub(super) fn expand(
        &mut self,
        templates: Vec<Template>,
    ) -> Option<(Vec<ClusterSpec>, Vec<ClusterTemplate>)> {
        let mut clusters = 0u64;
        let mut pods = 0u64;
        let mut nodes = 0u64;
        let mut groups = 0u64;
        let mut workloads = 0u64;
        for t in &templates {
            let s = &t.spec;
            let c = t.count;
            clusters = clusters.saturating_add(c);
            let per: u64 = s
                .workloads
                .iter()
                .map(|w| u64::from(w.replicas))
                .sum::<u64>()
                + u64::from(s.istiod.replicas);
            pods = pods.saturating_add(per.saturating_mul(c));
            let n: u64 = s.node_groups.iter().map(|g| u64::from(g.nodes)).sum();
            nodes = nodes.saturating_add(n.saturating_mul(c));
            groups = groups.saturating_add((s.node_groups.len() as u64).saturating_mul(c));
            workloads = workloads.saturating_add((s.workloads.len() as u64).saturating_mul(c));
        }
        let mut ok = true;
        for (total, max, what) in [
            (clusters, MAX_CLUSTERS, "clusters"),
            (pods, MAX_PODS_TOTAL, "pods"),
            (nodes, MAX_NODES_TOTAL, "nodes"),
            (groups, MAX_NODE_GROUPS_TOTAL, "node groups"),
            (workloads, MAX_WORKLOADS_TOTAL, "workloads"),
        ] {
            if total > max {
                self.err("cluster", format!("the fleet has {total} {what} after expanding `count`; at most {max}{LIMIT}"));
                ok = false;
            }
        }
        if !ok {
            return None;
        }

        let mut out = Vec::with_capacity(clusters as usize);
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut templates_of = Vec::with_capacity(templates.len());
        for t in templates {
            let width = (t.count.saturating_sub(1)).to_string().len();
            let mut indices = Vec::with_capacity(t.count as usize);
            for i in 0..t.count {
                let name = if t.count == 1 {
                    t.name.clone()
                } else {
                    format!("{}-{i:0width$}", t.name)
                };
                if let Some(first) = seen.get(&name) {
                    let how = if t.count == 1 {
                        String::new()
                    } else {
                        format!(" (expanded from count = {})", t.count)
                    };
                    self.err(
                        &t.path,
                        format!("duplicate cluster name \"{name}\"{how}: {first} already has it"),
                    );
                    break;
                }
                seen.insert(name.clone(), t.path.clone());
                let mut spec = t.spec.clone();
                spec.name = name;
                indices.push(out.len());
                out.push(spec);
            }
            templates_of.push(ClusterTemplate {
                name: t.name,
                count: t.count,
                clusters: indices,
            });
        }
        Some((out, templates_of))
    }
}
