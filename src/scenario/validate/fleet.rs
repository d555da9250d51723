//! Section checkers of the fleet: `[scenario]`, `[ca.<name>]`, `[cluster.<name>]` with
//! its istiod, webhook, agent, kubernetes, node groups and workloads, and the expansion of
//! `count` templates into clusters (after the fleet's totals are checked against the
//! limits, so no allocation grows with an absurd value).

use std::collections::HashMap;

use crate::ca::{CaConfig, RateLimit, ServiceTime, Usl};
use crate::control::apiserver::{ApiServerConfig, ServiceTimes};
use crate::control::issuer::{AwsPcaConfig, AwsRetryConfig, CasTier, VaultConfig};
use crate::control::kubelet::KubeletConfig;
use crate::control::version::{IstioVersion, KubeVersion};
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

impl Template {
    /// The unsourced mechanisms this template's clusters turn on.
    pub(super) fn assumptions(&self, out: &mut Vec<Assumption>) {
        let s = &self.spec;
        let key = |a: &str, b: &str| join(&join(&self.path, a), b);
        if !s.istiod.delete_csr_on_give_up && s.istiod.ca_mode == CaMode::KubernetesRa {
            out.push(Assumption {
                key: key("istiod", "delete_csr_on_give_up"),
                value: "false".into(),
                note: "istiod never deletes its CSRs; istiod deletes every CSR it created in a defer from 1.12 (security/pkg/k8s/chiron/utils.go), 1.10 explicitly".into(),
            });
        }
        if let Some(t) = s.istiod.ca_wait_timeout {
            if s.istiod.ca_mode == CaMode::KubernetesRa {
                let group = s.istiod.version.chiron_group();
                out.push(Assumption {
                    key: key("istiod", "ca_wait_timeout"),
                    value: format_duration(t),
                    note: format!(
                        "a wait other than the release's: Istio {} ({}) waits {} without API time (chiron certWatchTimeout and Gets)",
                        s.istiod.version,
                        group.as_str(),
                        format_duration(crate::control::chiron::nominal_wait(group))
                    ),
                });
            }
        }
        if s.signer.mark_failed_on_issuer_error {
            out.push(Assumption {
                key: key("signer", "mark_failed_on_issuer_error"),
                value: "true".into(),
                note: "a controller-runtime signer that marks the CSR Failed on an issuer error; cert-manager/signer-ca requeues with back-off instead".into(),
            });
        }
    }
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

    pub(super) fn ca(
        &mut self,
        path: &str,
        name: &str,
        r: &RawCa,
        accounts: &mut Vec<String>,
        locations: &mut Vec<String>,
    ) -> CaSpec {
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
        let kind = r.kind.unwrap_or(RawCaKind::Usl);
        self.ca_kind_keys(path, kind, r);
        let kind = match kind {
            RawCaKind::Usl => IssuerKind::Usl,
            RawCaKind::AwsPca => {
                let d = AwsPcaConfig::default();
                let sd = AwsRetryConfig::default();
                let account = r.account.clone().unwrap_or_else(|| "default".into());
                let idx = match accounts.iter().position(|a| *a == account) {
                    Some(i) => i,
                    None => {
                        accounts.push(account);
                        accounts.len() - 1
                    }
                };
                let issue_rate = self.rate(
                    &p("issue_rate_per_s"),
                    r.issue_rate_per_s,
                    d.issue_rate_per_s,
                );
                let get_rate = self.rate(&p("get_rate_per_s"), r.get_rate_per_s, d.get_rate_per_s);
                IssuerKind::AwsPca {
                    account: idx,
                    config: AwsPcaConfig {
                        issue_rate_per_s: issue_rate,
                        issue_burst: self.int32(
                            &p("issue_burst"),
                            r.issue_burst,
                            (issue_rate.ceil() as u32).max(1),
                            1,
                            MAX_BURST,
                            true,
                        ),
                        get_rate_per_s: get_rate,
                        get_burst: self.int32(
                            &p("get_burst"),
                            r.get_burst,
                            (get_rate.ceil() as u32).max(1),
                            1,
                            MAX_BURST,
                            true,
                        ),
                        issue_latency: self.dur(
                            &p("issue_latency"),
                            &r.issue_latency,
                            d.issue_latency,
                            DurationRule::NonNegative,
                        ),
                        api_latency: self.dur(
                            &p("api_latency"),
                            &r.api_latency,
                            d.api_latency,
                            DurationRule::NonNegative,
                        ),
                        idempotency_window: d.idempotency_window,
                    },
                    sdk: AwsRetryConfig {
                        max_attempts: self.int32(
                            &p("sdk_max_attempts"),
                            r.sdk_max_attempts,
                            sd.max_attempts,
                            1,
                            MAX_SMALL_COUNT,
                            true,
                        ),
                        max_backoff: self.dur(
                            &p("sdk_max_backoff"),
                            &r.sdk_max_backoff,
                            sd.max_backoff,
                            DurationRule::Positive,
                        ),
                        quota_tokens: self.int32(
                            &p("retry_quota_tokens"),
                            r.retry_quota_tokens,
                            sd.quota_tokens,
                            0,
                            MAX_BURST,
                            true,
                        ),
                        ..sd
                    },
                    poll_interval: self.dur(
                        &p("poll_interval"),
                        &r.poll_interval,
                        SimTime::from_secs(1),
                        DurationRule::Positive,
                    ),
                }
            }
            RawCaKind::GoogleCas => {
                let location = r.location.clone().unwrap_or_else(|| "default".into());
                let idx = match locations.iter().position(|a| *a == location) {
                    Some(i) => i,
                    None => {
                        locations.push(location);
                        locations.len() - 1
                    }
                };
                IssuerKind::GoogleCas {
                    tier: match r.tier.unwrap_or(RawCasTier::Enterprise) {
                        RawCasTier::Enterprise => CasTier::Enterprise,
                        RawCasTier::DevOps => CasTier::DevOps,
                    },
                    location: idx,
                    location_rate_per_s: self.rate(
                        &p("location_rate_per_s"),
                        r.location_rate_per_s,
                        100.0,
                    ),
                    latency: self.dur(
                        &p("latency"),
                        &r.latency,
                        SimTime::from_millis(100),
                        DurationRule::NonNegative,
                    ),
                }
            }
            RawCaKind::Vault => {
                let d = VaultConfig::default();
                let latency = match (&r.latency_mean, &r.latency_p99) {
                    (None, None) => d.latency,
                    (Some(_), Some(_)) => {
                        let mean = self.dur(
                            &p("latency_mean"),
                            &r.latency_mean,
                            SimTime(2_760_386),
                            DurationRule::Positive,
                        );
                        let p99 = self.dur(
                            &p("latency_p99"),
                            &r.latency_p99,
                            SimTime(7_650_496),
                            DurationRule::Positive,
                        );
                        match ServiceTime::lognormal_from_mean_p99(mean, p99) {
                            Ok(l) => l,
                            Err(e) => {
                                self.err(
                                    &p("latency_p99"),
                                    format!("{e}, got \"{}\"", format_duration(p99)),
                                );
                                d.latency
                            }
                        }
                    }
                    _ => {
                        self.err(&p("latency_mean"), "latency_mean and latency_p99 go together (a lognormal by its mean and p99)".into());
                        d.latency
                    }
                };
                IssuerKind::Vault(VaultConfig {
                    latency,
                    rate_limit: rate_limit.map(|rl| (rl.rate_per_s, rl.burst)),
                })
            }
        };
        CaSpec {
            name: name.to_string(),
            kind,
            config: CaConfig {
                workers,
                service,
                rate_limit,
                usl: Usl { sigma, kappa },
                failed_object_slowdown: alpha,
            },
            contention_source: r.contention_source.clone(),
        }
    }

    /// Keys that belong to another kind of CA are errors (a typo'd kind would else
    /// silently ignore them).
    fn ca_kind_keys(&mut self, path: &str, kind: RawCaKind, r: &RawCa) {
        let usl = [
            ("workers", r.workers.is_some()),
            ("service_dist", r.service_dist.is_some()),
            ("service_mean", r.service_mean.is_some()),
            ("service_median", r.service_median.is_some()),
            ("service_p99", r.service_p99.is_some()),
            ("contention_sigma", r.contention_sigma.is_some()),
            ("coherency_kappa", r.coherency_kappa.is_some()),
            (
                "failed_csr_slowdown_alpha",
                r.failed_csr_slowdown_alpha.is_some(),
            ),
            ("contention_source", r.contention_source.is_some()),
        ];
        let pca = [
            ("account", r.account.is_some()),
            ("issue_rate_per_s", r.issue_rate_per_s.is_some()),
            ("issue_burst", r.issue_burst.is_some()),
            ("get_rate_per_s", r.get_rate_per_s.is_some()),
            ("get_burst", r.get_burst.is_some()),
            ("issue_latency", r.issue_latency.is_some()),
            ("api_latency", r.api_latency.is_some()),
            ("poll_interval", r.poll_interval.is_some()),
            ("sdk_max_attempts", r.sdk_max_attempts.is_some()),
            ("sdk_max_backoff", r.sdk_max_backoff.is_some()),
            ("retry_quota_tokens", r.retry_quota_tokens.is_some()),
        ];
        let cas = [
            ("tier", r.tier.is_some()),
            ("location", r.location.is_some()),
            ("location_rate_per_s", r.location_rate_per_s.is_some()),
            ("latency", r.latency.is_some()),
        ];
        let vault = [
            ("latency_mean", r.latency_mean.is_some()),
            ("latency_p99", r.latency_p99.is_some()),
        ];
        let rate = [
            ("rate_limit_per_s", r.rate_limit_per_s.is_some()),
            ("rate_limit_burst", r.rate_limit_burst.is_some()),
        ];
        let name = RawCaKind::NAMES[kind as usize];
        let groups: [KindKeys; 5] = [
            (&usl, &[RawCaKind::Usl]),
            (&pca, &[RawCaKind::AwsPca]),
            (&cas, &[RawCaKind::GoogleCas]),
            (&vault, &[RawCaKind::Vault]),
            (&rate, &[RawCaKind::Usl, RawCaKind::Vault]),
        ];
        for (keys, kinds) in groups {
            if kinds.contains(&kind) {
                continue;
            }
            let owners: Vec<&str> = kinds
                .iter()
                .map(|k| RawCaKind::NAMES[*k as usize])
                .collect();
            for (key, set) in keys {
                if *set {
                    self.err(
                        &join(path, key),
                        format!(
                            "is a key of kind = \"{}\", this CA is kind = \"{name}\"",
                            owners.join("\" or \"")
                        ),
                    );
                }
            }
        }
    }

    pub(super) fn cluster(&mut self, name: &str, r: &RawCluster, cas: &[CaSpec]) -> Template {
        let path = join("cluster", name);
        self.name(&path, name);
        let p = |f: &str| join(&path, f);
        let count = self.int(&p("count"), r.count, 1, 1, MAX_CLUSTERS, true);
        let ca = match &r.ca {
            Some(ca_name) => match cas.iter().position(|c| &c.name == ca_name) {
                Some(i) => Some(i),
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
                    None
                }
            },
            None => None,
        };

        let mut spec = ClusterSpec::with_defaults(name, ca);
        if let Some(k) = &r.kubernetes {
            spec.kubernetes = self.kubernetes(&p("kubernetes"), k);
        }
        if let Some(i) = &r.istiod {
            spec.istiod = self.istiod(&p("istiod"), i);
        }
        self.ca_path(&path, r, &mut spec, cas);
        spec.apiserver = self.apiserver(
            &p("apiserver"),
            r.apiserver.as_ref().unwrap_or(&RawApiServer::default()),
            spec.kubernetes.version,
        );
        if let Some(w) = &r.webhook {
            spec.webhook = self.webhook(&p("webhook"), w);
        }
        if let Some(a) = &r.agent {
            spec.agent = self.agent(&p("agent"), a);
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
        if !r.certificates.is_empty() {
            spec.certificates =
                self.certificate_sets(&p("certificates"), &r.certificates, cas, spec.ca);
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
            version: match &r.version {
                None => d.version,
                Some(v) => match IstioVersion::parse(v) {
                    Ok(v) => v,
                    Err(e) => {
                        self.err(&p("version"), format!("{e}, got \"{}\"", v.escape_debug()));
                        d.version
                    }
                },
            },
            // Resolved against the cluster's `ca` by `ca_path`.
            ca_mode: d.ca_mode,
            cert_provider: match r.pilot_cert_provider.as_deref() {
                None | Some("istiod") => IstiodCertProvider::Istiod,
                Some(v) => match v.strip_prefix("k8s.io/") {
                    Some(signer) if !signer.is_empty() && signer.len() <= 253 => {
                        IstiodCertProvider::KubernetesSigner {
                            signer: signer.to_string(),
                        }
                    }
                    _ => {
                        self.err(
                            &p("pilot_cert_provider"),
                            format!(
                                "expected \"istiod\" or \"k8s.io/<signer name>\" (PILOT_CERT_PROVIDER; \"kubernetes\" and \"custom\" are not modelled), got \"{}\"",
                                v.escape_debug()
                            ),
                        );
                        d.cert_provider.clone()
                    }
                },
            },
            startup_base: self.dur(
                &p("startup_base"),
                &r.startup_base,
                d.startup_base,
                DurationRule::NonNegative,
            ),
            crd_informers: self.int32(
                &p("crd_informers"),
                r.crd_informers,
                d.crd_informers,
                0,
                MAX_SMALL_COUNT,
                true,
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
            ca_wait_timeout: r.ca_wait_timeout.as_ref().map(|_| {
                self.dur(
                    &p("ca_wait_timeout"),
                    &r.ca_wait_timeout,
                    SimTime::from_secs(10),
                    DurationRule::Positive,
                )
            }),
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
            hold_application_until_proxy_starts: r
                .hold_application_until_proxy_starts
                .unwrap_or(d.hold_application_until_proxy_starts),
            startup_probe: r.startup_probe,
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
        let version = match &r.version {
            None => d.version,
            Some(v) => match KubeVersion::parse(v) {
                Ok(v) => v,
                Err(e) => {
                    self.err(&p("version"), format!("{e}, got \"{}\"", v.escape_debug()));
                    d.version
                }
            },
        };
        let k = KubernetesSpec {
            version,
            reduced_crashloop_backoff: r
                .reduced_crashloop_backoff
                .unwrap_or(d.reduced_crashloop_backoff),
            max_container_restart_period: r.max_container_restart_period.as_ref().map(|_| {
                self.dur(
                    &p("max_container_restart_period"),
                    &r.max_container_restart_period,
                    SimTime::from_secs(300),
                    DurationRule::Positive,
                )
            }),
            kcm_qps: self.rate(&p("kcm_qps"), r.kcm_qps, d.kcm_qps),
            kcm_burst: self.int32(
                &p("kcm_burst"),
                r.kcm_burst,
                d.kcm_burst,
                1,
                MAX_BURST,
                true,
            ),
            csr_pending_max_age: self.dur(
                &p("csr_pending_max_age"),
                &r.csr_pending_max_age,
                d.csr_pending_max_age,
                DurationRule::NonNegative,
            ),
            csr_cleaner_approved_unissued: r
                .csr_cleaner_approved_unissued
                .unwrap_or(d.csr_cleaner_approved_unissued),
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
            requeue_rate_per_s: self.num(
                &p("requeue_rate_per_s"),
                r.requeue_rate_per_s,
                d.requeue_rate_per_s,
                Bound::Exclusive(0.0),
                Bound::Inclusive(1e6),
            ),
            requeue_burst: self.int32(
                &p("requeue_burst"),
                r.requeue_burst,
                d.requeue_burst,
                1,
                1_000_000,
                false,
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
        let kubelet = KubeletConfig {
            version: k.version,
            reduced_crashloop_backoff: k.reduced_crashloop_backoff,
            max_container_restart_period: k.max_container_restart_period,
            ..KubeletConfig::default()
        };
        if let Err(e) = kubelet.validate(path) {
            self.push_prefixed(&e);
        }
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

    /// `[cluster.<name>.certificates.<set>]`.
    pub(super) fn certificate_sets(
        &mut self,
        path: &str,
        sets: &indexmap::IndexMap<String, RawCertificates>,
        cas: &[CaSpec],
        cluster_ca: Option<usize>,
    ) -> Vec<CertificatesSpec> {
        let mut out = Vec::new();
        for (name, r) in sets {
            let sp = join(path, name);
            self.name(&sp, name);
            let f = |x: &str| join(&sp, x);
            let count = self.int(&f("count"), r.count, 1, 1, MAX_CERTIFICATES, true) as u32;
            let issuer = match &r.issuer {
                None => None,
                Some(n) => match cas.iter().position(|c| &c.name == n) {
                    Some(i) if Some(i) == cluster_ca => Some(i),
                    Some(_) => {
                        let own = cluster_ca.map(|c| cas[c].name.as_str()).unwrap_or("none");
                        self.err(
                            &f("issuer"),
                            format!(
                                "Certificates are signed through the cluster's own CA (its `ca` is \"{}\"), or leave `issuer` out for cert-manager's in-process CA issuer; got \"{}\"",
                                own.escape_debug(),
                                n.escape_debug()
                            ),
                        );
                        None
                    }
                    None => {
                        let names: Vec<&str> = cas.iter().map(|c| c.name.as_str()).collect();
                        self.err(
                            &f("issuer"),
                            format!(
                                "no CA named \"{}\" (defined: {}){}",
                                n.escape_debug(),
                                if names.is_empty() {
                                    "none".into()
                                } else {
                                    names.join(", ")
                                },
                                nearest_hint(n, &names)
                            ),
                        );
                        None
                    }
                },
            };
            let duration = self.dur(
                &f("duration"),
                &r.duration,
                SimTime::from_secs(2160 * 3600),
                DurationRule::Positive,
            );
            let created_at = self.dur(
                &f("created_at"),
                &r.created_at,
                SimTime::ZERO,
                DurationRule::NonNegative,
            );
            out.push(CertificatesSpec {
                name: name.clone(),
                count,
                issuer,
                duration,
                created_at,
            });
        }
        out
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
    /// The certificate path of a cluster: `istiod.ca_mode` against its `ca`, and the
    /// signer that serves it.
    fn ca_path(&mut self, path: &str, r: &RawCluster, spec: &mut ClusterSpec, cas: &[CaSpec]) {
        let p = |f: &str| join(path, f);
        let rs = r.signer.as_ref();
        let raw_mode = r.istiod.as_ref().and_then(|i| i.ca_mode);
        let mode = match raw_mode {
            Some(RawCaMode::KubernetesRa) => CaMode::KubernetesRa,
            Some(RawCaMode::Istiod) => CaMode::Istiod,
            Some(RawCaMode::IstioCsr) => CaMode::IstioCsr,
            None if rs.and_then(|s| s.kind) == Some(RawSignerKind::IstioCsr) => CaMode::IstioCsr,
            None if r.ca.is_some() => CaMode::KubernetesRa,
            None => CaMode::Istiod,
        };
        spec.istiod.ca_mode = mode;
        let mode_path = join(&p("istiod"), "ca_mode");
        if mode != CaMode::KubernetesRa && spec.istiod.cert_provider != IstiodCertProvider::Istiod {
            // certcontroller.go signs through the CSR API only when istiod runs its RA.
            self.err(
                &join(&p("istiod"), "pilot_cert_provider"),
                format!(
                    "\"k8s.io/...\" signs istiod's certificate through its Kubernetes RA: it needs ca_mode = \"kubernetes-ra\", got ca_mode \"{}\"",
                    mode.name()
                ),
            );
        }
        if mode == CaMode::Istiod {
            if r.ca.is_some() && raw_mode.is_some() {
                self.err(
                    &p("ca"),
                    format!("ca_mode = \"istiod\" signs with istiod's built-in CA and calls no external CA; remove `ca` or choose ca_mode = \"kubernetes-ra\" or \"istio-csr\", got \"{}\"", r.ca.as_deref().unwrap_or("").escape_debug()),
                );
            }
            if rs.is_some() {
                self.err(
                    &p("signer"),
                    "istiod's built-in CA (ca_mode = \"istiod\", the mode of a cluster without `ca`) has no signer controller; name the cluster's `ca` for the CSR path".into(),
                );
            }
            return;
        }
        let Some(ca) = spec.ca else {
            if !self.has_errors_under(&p("ca")) {
                self.err(
                    &mode_path,
                    format!(
                        "ca_mode = \"{}\" needs the cluster's `ca` (the issuer its signer calls)",
                        mode.name()
                    ),
                );
            }
            return;
        };
        let ca_kind = &cas[ca].kind;
        if mode == CaMode::KubernetesRa {
            if let Err(e) = spec
                .istiod
                .version
                .check_kubernetes(spec.kubernetes.version)
            {
                self.err(&join(&p("istiod"), "version"), e);
            }
        }
        let default_kind = match (mode, ca_kind) {
            (CaMode::IstioCsr, _) => SignerKind::IstioCsr,
            (_, IssuerKind::Vault(_)) => SignerKind::CertManager,
            _ => SignerKind::ControllerRuntime,
        };
        let kind = match rs.and_then(|s| s.kind) {
            None => default_kind,
            Some(RawSignerKind::CertManager) => SignerKind::CertManager,
            Some(RawSignerKind::ControllerRuntime) => SignerKind::ControllerRuntime,
            Some(RawSignerKind::IstioCsr) => SignerKind::IstioCsr,
        };
        let kind_path = join(&p("signer"), "kind");
        match (mode, kind) {
            (CaMode::IstioCsr, k) if k != SignerKind::IstioCsr => self.err(
                &kind_path,
                format!("ca_mode = \"istio-csr\" is served by signer kind \"istio-csr\", got \"{}\"", k.name()),
            ),
            (CaMode::KubernetesRa, SignerKind::IstioCsr) => self.err(
                &kind_path,
                "istio-csr replaces istiod's CA server (set istiod.ca_mode = \"istio-csr\"); it signs no CSR objects, got \"istio-csr\"".into(),
            ),
            _ => {}
        }
        match (kind, ca_kind) {
            (SignerKind::CertManager, IssuerKind::AwsPca { .. } | IssuerKind::GoogleCas { .. }) => self.err(
                &kind_path,
                format!("cert-manager's CSR controllers serve only its built-in issuers (CA, Vault, ACME, SelfSigned, Venafi); CA \"{}\" is kind \"{}\", got \"cert-manager\"", cas[ca].name.escape_debug(), ca_kind.name()),
            ),
            (SignerKind::IstioCsr, k) if !matches!(k, IssuerKind::AwsPca { .. }) => self.err(
                &p("ca"),
                format!("istio-csr's CertificateRequests are reconciled here by aws-privateca-issuer, which needs a CA of kind \"aws-pca\"; CA \"{}\" is kind \"{}\"", cas[ca].name.escape_debug(), k.name()),
            ),
            _ => {}
        }
        let d = SignerSpec::of_kind(kind);
        let empty = RawSigner::default();
        let rs = rs.unwrap_or(&empty);
        let sp = |f: &str| join(&p("signer"), f);
        if kind != SignerKind::IstioCsr {
            for (field, value) in [
                ("replicas", rs.replicas.as_ref().map(|v| v.0.to_string())),
                (
                    "preserve_certificate_requests",
                    rs.preserve_certificate_requests.map(|v| v.to_string()),
                ),
                (
                    "max_certificate_duration",
                    rs.max_certificate_duration
                        .as_ref()
                        .map(|d| format!("\"{}\"", d.text.escape_debug())),
                ),
            ] {
                if let Some(v) = value {
                    self.err(&sp(field), format!("an istio-csr setting (signer kind \"istio-csr\"); this signer is kind \"{}\", got {v}", kind.name()));
                }
            }
        }
        if rs.mark_failed_on_issuer_error.is_some() && kind != SignerKind::ControllerRuntime {
            self.err(&sp("mark_failed_on_issuer_error"), format!("an assumption for the controller-runtime signer only (cert-manager marks Failed by its own rules), got signer kind \"{}\"", kind.name()));
        }
        spec.signer = SignerSpec {
            kind,
            workers: self.int32(&sp("workers"), rs.workers, d.workers, 1, MAX_WORKERS, true),
            client_qps: self.rate(&sp("client_qps"), rs.client_qps, d.client_qps),
            client_burst: self.int32(
                &sp("client_burst"),
                rs.client_burst,
                d.client_burst,
                1,
                MAX_BURST,
                true,
            ),
            replicas: self.int32(
                &sp("replicas"),
                rs.replicas,
                d.replicas,
                1,
                MAX_WORKERS,
                true,
            ),
            informer_delay: self.dur(
                &sp("informer_delay"),
                &rs.informer_delay,
                d.informer_delay,
                DurationRule::NonNegative,
            ),
            mark_failed_on_issuer_error: rs.mark_failed_on_issuer_error.unwrap_or(false),
            preserve_certificate_requests: rs.preserve_certificate_requests.unwrap_or(false),
            max_certificate_duration: self.dur(
                &sp("max_certificate_duration"),
                &rs.max_certificate_duration,
                d.max_certificate_duration,
                DurationRule::Positive,
            ),
        };
    }

    /// `[cluster.<name>.apiserver]`.
    fn apiserver(&mut self, path: &str, r: &RawApiServer, version: KubeVersion) -> ApiServerConfig {
        let d = ApiServerConfig::default();
        let ds = ServiceTimes::default();
        let p = |f: &str| join(path, f);
        let c = ApiServerConfig {
            version,
            max_requests_inflight: self.int32(
                &p("max_requests_inflight"),
                r.max_requests_inflight,
                d.max_requests_inflight,
                0,
                MAX_BURST,
                true,
            ),
            max_mutating_requests_inflight: self.int32(
                &p("max_mutating_requests_inflight"),
                r.max_mutating_requests_inflight,
                d.max_mutating_requests_inflight,
                0,
                MAX_BURST,
                true,
            ),
            request_timeout: self.dur(
                &p("request_timeout"),
                &r.request_timeout,
                d.request_timeout,
                DurationRule::Positive,
            ),
            borrowing: r.borrowing.unwrap_or(d.borrowing),
            service: ServiceTimes {
                get: self.dur(
                    &p("latency_get"),
                    &r.latency_get,
                    ds.get,
                    DurationRule::NonNegative,
                ),
                mutating: self.dur(
                    &p("latency_mutating"),
                    &r.latency_mutating,
                    ds.mutating,
                    DurationRule::NonNegative,
                ),
                list_base: self.dur(
                    &p("latency_list_base"),
                    &r.latency_list_base,
                    ds.list_base,
                    DurationRule::NonNegative,
                ),
                list_per_object: self.dur(
                    &p("latency_list_per_object"),
                    &r.latency_list_per_object,
                    ds.list_per_object,
                    DurationRule::NonNegative,
                ),
                watch_init: ds.watch_init,
            },
        };
        if c.server_concurrency_limit() == 0 {
            self.err(
                &p("max_requests_inflight"),
                "with max_mutating_requests_inflight must be > 0 (the server's seats), got 0"
                    .into(),
            );
        }
        c
    }

    pub(super) fn expand(
        &mut self,
        templates: Vec<Template>,
    ) -> Option<(Vec<ClusterSpec>, Vec<ClusterTemplate>)> {
        let mut clusters = 0u64;
        let mut pods = 0u64;
        let mut nodes = 0u64;
        let mut groups = 0u64;
        let mut workloads = 0u64;
        let mut ok = true;
        for t in &templates {
            let s = &t.spec;
            let c = t.count;
            if s.workloads.len() as u64 > MAX_WORKLOADS_PER_CLUSTER {
                let n = s.workloads.len();
                self.err(
                    &format!("{}.workload", t.path),
                    format!(
                        "{n} workloads; at most {MAX_WORKLOADS_PER_CLUSTER} in one cluster{LIMIT}"
                    ),
                );
                ok = false;
            }
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

/// Keys (set or not) that belong to some kinds of CA.
type KindKeys<'a> = (&'a [(&'a str, bool)], &'a [RawCaKind]);
