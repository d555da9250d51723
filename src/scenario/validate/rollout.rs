//! Section checkers of the rollout: `[rollout]` (waves, gates, pacing) and
//! `[intervention.<name>]` (trigger, action and the fields each action takes, cluster
//! references resolved to instances and templates).

use crate::ca::RateLimit;
use crate::engine::SimTime;
use crate::keypath::join;
use crate::predicate::{ErrorKind as PredicateErrorKind, Predicate};
use crate::suggest::hint as nearest_hint;

use super::super::limits::*;
use super::super::raw::*;
use super::super::types::*;
use super::checker::{fmt_f64, Bound, Checker, DurationRule};

impl Checker<'_> {
    pub(super) fn rollout(&mut self, r: &RawRollout, n_clusters: usize) -> RolloutSpec {
        let d = RolloutSpec::default();
        let mut waves = Vec::new();
        if let Some(ws) = &r.waves {
            let mut sum = 0u64;
            for (i, w) in ws.iter().enumerate() {
                let size = self.int32(
                    &format!("rollout.waves[{i}]"),
                    Some(*w),
                    1,
                    1,
                    MAX_CLUSTERS,
                    true,
                );
                sum += u64::from(size);
                waves.push(size);
            }
            let count_bad = self
                .errors
                .iter()
                .any(|e| e.path.starts_with("cluster.") && e.path.ends_with(".count"));
            if sum > n_clusters as u64 && !count_bad {
                let list: Vec<String> = ws.iter().map(|w| w.0.to_string()).collect();
                self.err(
                    "rollout.waves",
                    format!(
                        "wave larger than the fleet: waves [{}] take {sum} clusters, the fleet has {n_clusters}",
                        list.join(", ")
                    ),
                );
            }
        }
        let pacing = match r.pacing.unwrap_or(RawPacing::AllAtOnce) {
            RawPacing::AllAtOnce => Pacing::AllAtOnce,
            RawPacing::Batches => Pacing::Batches {
                size: self.int32(
                    "rollout.batch_size",
                    r.batch_size,
                    50,
                    1,
                    MAX_PODS_TOTAL,
                    true,
                ),
                interval: self.dur(
                    "rollout.batch_interval",
                    &r.batch_interval,
                    SimTime::from_secs(30),
                    DurationRule::Positive,
                ),
            },
            RawPacing::TokenBucket => Pacing::TokenBucket(RateLimit {
                rate_per_s: self.rate("rollout.rate_per_s", r.rate_per_s, 5.0),
                burst: self.int32("rollout.burst", r.burst, 10, 1, MAX_BURST, true),
            }),
            RawPacing::Aimd => {
                let min = self.rate("rollout.aimd_min_per_s", r.aimd_min_per_s, 0.5);
                let max = self.rate("rollout.aimd_max_per_s", r.aimd_max_per_s, 50.0);
                let initial = self.rate("rollout.aimd_initial_per_s", r.aimd_initial_per_s, 5.0);
                if max < min {
                    self.err(
                        "rollout.aimd_max_per_s",
                        format!(
                            "must be >= aimd_min_per_s ({}), got {}",
                            fmt_f64(min),
                            fmt_f64(max)
                        ),
                    );
                } else if initial < min || initial > max {
                    self.err(
                        "rollout.aimd_initial_per_s",
                        format!(
                            "must be between aimd_min_per_s ({}) and aimd_max_per_s ({}), got {}",
                            fmt_f64(min),
                            fmt_f64(max),
                            fmt_f64(initial)
                        ),
                    );
                }
                Pacing::Aimd {
                    initial_per_s: initial,
                    min_per_s: min,
                    max_per_s: max,
                    increase_per_s: self.rate(
                        "rollout.aimd_increase_per_s",
                        r.aimd_increase_per_s,
                        1.0,
                    ),
                    decrease_factor: self.num(
                        "rollout.aimd_decrease_factor",
                        r.aimd_decrease_factor,
                        0.5,
                        Bound::Exclusive(0.0),
                        Bound::Exclusive(1.0),
                    ),
                    error_threshold: self.num(
                        "rollout.aimd_error_threshold",
                        r.aimd_error_threshold,
                        0.05,
                        Bound::Inclusive(0.0),
                        Bound::Inclusive(1.0),
                    ),
                    interval: self.dur(
                        "rollout.aimd_interval",
                        &r.aimd_interval,
                        SimTime::from_secs(10),
                        DurationRule::Positive,
                    ),
                }
            }
        };
        RolloutSpec {
            start: self.dur(
                "rollout.start",
                &r.start,
                d.start,
                DurationRule::NonNegative,
            ),
            waves,
            health_gate: r.health_gate.unwrap_or(d.health_gate),
            soak: self.dur("rollout.soak", &r.soak, d.soak, DurationRule::NonNegative),
            gate_timeout: self.dur(
                "rollout.gate_timeout",
                &r.gate_timeout,
                d.gate_timeout,
                DurationRule::Positive,
            ),
            poll_interval: self.dur(
                "rollout.poll_interval",
                &r.poll_interval,
                d.poll_interval,
                DurationRule::Positive,
            ),
            pacing,
            istiod_replicas_during: r.istiod_replicas_during.map(|n| {
                self.int32(
                    "rollout.istiod_replicas_during",
                    Some(n),
                    1,
                    1,
                    MAX_ISTIOD_REPLICAS,
                    true,
                )
            }),
            node_groups: match r.node_groups {
                None => d.node_groups,
                Some(RawNodeGroupOrder::InOrder) => NodeGroupOrder::InOrder,
                Some(RawNodeGroupOrder::Together) => NodeGroupOrder::Together,
            },
        }
    }

    pub(super) fn intervention(
        &mut self,
        path: &str,
        name: &str,
        r: &RawIntervention,
        scenario: &Scenario,
    ) -> Option<InterventionSpec> {
        let p = |f: &str| join(path, f);
        let before = self.errors.len();
        let trigger = match (&r.at, &r.when) {
            (Some(_), Some(_)) => {
                self.err(
                    path,
                    "give exactly one of `at` (a time) or `when` (a condition), not both".into(),
                );
                None
            }
            (None, None) => {
                self.err(path, "missing trigger: give `at` (a time, e.g. \"20m\") or `when` (e.g. \"crashloop_pods > 100\")".into());
                None
            }
            (Some(_), None) => Some(Trigger::At(self.dur(
                &p("at"),
                &r.at,
                SimTime::ZERO,
                DurationRule::NonNegative,
            ))),
            (None, Some(w)) => match parse_condition(w) {
                Ok(c) => Some(Trigger::When(c)),
                Err(m) => {
                    self.err(&p("when"), m);
                    None
                }
            },
        };
        let Some(kind) = r.action else {
            self.err(
                path,
                format!(
                    "missing field `action`: one of {}",
                    RawAction::NAMES.join(", ")
                ),
            );
            return None;
        };
        let action_name = RawAction::NAMES[kind as usize];
        // Which optional fields each action takes.
        let allowed: &[&str] = match kind {
            RawAction::ScaleIstiod => &["replicas"],
            RawAction::RestartCrashlooping => &["batch_size", "interval", "pods"],
            RawAction::SetCa => &["ca", "workers", "rate_limit_per_s", "rate_limit_burst"],
            RawAction::DeleteFailedCsrs => &["client_qps", "client_burst"],
            _ => &[],
        };
        let given = [
            ("replicas", r.replicas.is_some()),
            ("batch_size", r.batch_size.is_some()),
            ("interval", r.interval.is_some()),
            ("pods", r.pods.is_some()),
            ("ca", r.ca.is_some()),
            ("workers", r.workers.is_some()),
            ("rate_limit_per_s", r.rate_limit_per_s.is_some()),
            ("rate_limit_burst", r.rate_limit_burst.is_some()),
            ("client_qps", r.client_qps.is_some()),
            ("client_burst", r.client_burst.is_some()),
            ("clusters", r.clusters.is_some() && kind == RawAction::SetCa),
        ];
        for (field, present) in given {
            if present && !allowed.contains(&field) {
                let why = if field == "clusters" {
                    " (a CA is fleet-level)"
                } else {
                    ""
                };
                self.err(
                    &p(field),
                    format!("does not apply to action \"{action_name}\"{why}"),
                );
            }
        }
        let clusters = match &r.clusters {
            Some(list) if kind != RawAction::SetCa => {
                self.cluster_refs(&p("clusters"), list, scenario)
            }
            _ => Vec::new(),
        };
        let action = match kind {
            RawAction::ScaleIstiod => match r.replicas {
                Some(n) => Action::ScaleIstiod {
                    replicas: self.int32(&p("replicas"), Some(n), 1, 1, MAX_ISTIOD_REPLICAS, true),
                },
                None => {
                    self.err(
                        path,
                        "missing field `replicas` for action \"scale_istiod\"".into(),
                    );
                    return None;
                }
            },
            RawAction::DeleteFailedCsrs => Action::DeleteFailedCsrs {
                qps: self.rate(&p("client_qps"), r.client_qps, 5.0),
                burst: self.int32(&p("client_burst"), r.client_burst, 10, 1, MAX_BURST, true),
            },
            RawAction::PauseRollout => Action::PauseRollout,
            RawAction::ResumeRollout => Action::ResumeRollout,
            RawAction::RestartWorkloads => Action::RestartWorkloads,
            RawAction::RestartCrashlooping => Action::RestartCrashlooping {
                batch_size: self.int32(&p("batch_size"), r.batch_size, 20, 1, MAX_PODS_TOTAL, true),
                interval: self.dur(
                    &p("interval"),
                    &r.interval,
                    SimTime::from_secs(30),
                    DurationRule::Positive,
                ),
                pods: match r.pods.unwrap_or(RawRestartPods::Crashlooping) {
                    RawRestartPods::Crashlooping => RestartPods::Crashlooping,
                    RawRestartPods::NotReady => RestartPods::NotReady,
                },
            },
            RawAction::SetCa => {
                let ca = match &r.ca {
                    Some(n) => match scenario.cas.iter().position(|c| &c.name == n) {
                        Some(i) => i,
                        None => {
                            let list: Vec<&str> =
                                scenario.cas.iter().map(|c| c.name.as_str()).collect();
                            self.err(
                                &p("ca"),
                                format!(
                                    "no CA named \"{}\"{}",
                                    n.escape_debug(),
                                    nearest_hint(n, &list)
                                ),
                            );
                            0
                        }
                    },
                    None if scenario.cas.len() > 1 => {
                        self.err(
                            path,
                            "missing field `ca`: required when more than one CA is defined".into(),
                        );
                        0
                    }
                    None => 0,
                };
                if let Some(c) = scenario.cas.get(ca) {
                    if !matches!(c.kind, IssuerKind::Usl) {
                        self.err(
                            &p("ca"),
                            format!(
                                "action \"set_ca\" changes a load-tested CA (kind \"usl\"); CA \"{}\" is kind \"{}\"",
                                c.name.escape_debug(),
                                c.kind.name()
                            ),
                        );
                    }
                }
                if r.workers.is_none() && r.rate_limit_per_s.is_none() {
                    self.err(
                        path,
                        "action \"set_ca\" needs `workers` and/or `rate_limit_per_s`".into(),
                    );
                }
                let workers = r
                    .workers
                    .map(|w| self.int32(&p("workers"), Some(w), 1, 1, MAX_WORKERS, true));
                let rate_limit = match r.rate_limit_per_s {
                    Some(Num(0.0)) => {
                        if r.rate_limit_burst.is_some() {
                            self.err(
                                &p("rate_limit_burst"),
                                "does not apply when rate_limit_per_s = 0 removes the limit".into(),
                            );
                        }
                        Some(None)
                    }
                    Some(rate) => {
                        let rate = self.rate(&p("rate_limit_per_s"), Some(rate), 1.0);
                        let burst = self.int32(
                            &p("rate_limit_burst"),
                            r.rate_limit_burst,
                            (rate.ceil() as u32).max(1),
                            1,
                            MAX_BURST,
                            true,
                        );
                        Some(Some(RateLimit {
                            rate_per_s: rate,
                            burst,
                        }))
                    }
                    None => {
                        if r.rate_limit_burst.is_some() {
                            self.err(&p("rate_limit_burst"), "needs rate_limit_per_s".into());
                        }
                        None
                    }
                };
                Action::SetCa {
                    ca,
                    workers,
                    rate_limit,
                }
            }
        };
        let trigger = trigger?;
        (self.errors.len() == before).then(|| InterventionSpec {
            name: name.to_string(),
            clusters,
            trigger,
            action,
        })
    }

    pub(super) fn cluster_refs(
        &mut self,
        path: &str,
        list: &[String],
        scenario: &Scenario,
    ) -> Vec<usize> {
        if list.is_empty() {
            self.err(
                path,
                "empty list: omit `clusters` to mean every cluster".into(),
            );
        }
        let mut out: Vec<usize> = Vec::new();
        for (i, n) in list.iter().enumerate() {
            match scenario.clusters_named(n) {
                Some(idx) => {
                    for j in idx {
                        if !out.contains(&j) {
                            out.push(j);
                        }
                    }
                }
                None => {
                    let all = scenario.cluster_and_template_names(1000);
                    self.err(
                        &format!("{path}[{i}]"),
                        format!(
                            "no cluster named \"{}\"{}",
                            n.escape_debug(),
                            nearest_hint(n, &all)
                        ),
                    );
                }
            }
        }
        out
    }
}

/// Parses an intervention's `when`: a predicate over [`CONDITIONS`].
pub(crate) fn parse_condition(text: &str) -> Result<Predicate, String> {
    Predicate::parse(text, &CONDITIONS).map_err(|e| match e.kind {
        PredicateErrorKind::Syntax => {
            format!("cannot parse condition \"{}\": {e}", text.escape_debug())
        }
        _ => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::Value;

    #[test]
    fn conditions_are_predicates_over_the_sampled_metrics() {
        let values = |i: usize| Value::Num([150.0, 0.0, 3.0, 0.0, 0.4][i]);
        for (text, holds) in [
            ("crashloop_pods > 100", true),
            ("ready_fraction<=0.5", true),
            ("ca_queue == 0", false),
            ("ca_queue != 0", true),
            ("ca_queue >= 3 and not crashloop_pods < 100", true),
            ("csr_failed_objects > 10 or pods_pending > 0", false),
        ] {
            assert_eq!(
                parse_condition(text).unwrap().holds(&values),
                holds,
                "{text}"
            );
        }
        for bad in [
            "",
            "crashloop_pods",
            "> 3",
            "crashloop_pods > x",
            "crashloop_pods = 3",
            "crashloop_pods > nan",
            "crashloop_pod > 1",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
        let e = parse_condition("crashloop_pod > 1").unwrap_err();
        assert!(
            e.contains(
                "unknown metric \"crashloop_pod\" in condition; did you mean \"crashloop_pods\""
            ),
            "{e}"
        );
        let e = parse_condition("ca_queue > lots").unwrap_err();
        assert!(
            e.starts_with("cannot parse condition \"ca_queue > lots\": \"lots\" is not a number"),
            "{e}"
        );
    }
}
