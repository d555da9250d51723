//! What happened, per affected cluster, in a few lines: why the upgrade failed or
//! stalled (which node, which workloads and PDBs, since when), the interventions that
//! fired (when, on what condition), and the causal chain (first istiod time-outs or
//! agent failures, first crashloop, peak, recovery or not). Built from the summary's
//! figures, the journal's milestones and the sampled time series: nothing is inferred
//! that the run did not record.

use crate::duration::format_duration;
use crate::engine::SimTime;
use crate::metrics::Summary;
use crate::predicate::{Predicate, Value};
use crate::scenario::{Action, RestartPods, Scenario, Trigger};

use super::journal::Journal;

/// The explanation of one affected cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Story {
    /// Cluster name.
    pub cluster: String,
    /// Lines, in the order they should be read.
    pub lines: Vec<String>,
}

fn at(t: SimTime) -> String {
    let s = t.as_nanos() / 1_000_000_000;
    format!("t={}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn at_s(s: f64) -> String {
    at(SimTime::from_secs_f64(s.max(0.0)))
}

fn workload_name(spec: &crate::scenario::ClusterSpec, w: u32) -> String {
    match w {
        0 => "istiod".to_string(),
        w => spec.workloads[w as usize - 1].name.clone(),
    }
}

/// A predicate as written (near enough: names, operators, values).
pub fn predicate_text(p: &Predicate) -> String {
    match p {
        Predicate::Or(v) => v
            .iter()
            .map(predicate_text)
            .collect::<Vec<_>>()
            .join(" or "),
        Predicate::And(v) => v
            .iter()
            .map(predicate_text)
            .collect::<Vec<_>>()
            .join(" and "),
        Predicate::Not(p) => format!("not ({})", predicate_text(p)),
        Predicate::Compare {
            name, op, value, ..
        } => {
            let v = match value {
                Value::Num(x) => crate::metrics::fmt_num(*x),
                Value::Bool(b) => b.to_string(),
            };
            format!("{name} {} {v}", op.as_str())
        }
        Predicate::Flag { name, .. } => name.clone(),
    }
}

/// What an intervention does, in a few words (the run's explanation and the report).
pub fn action_text(sc: &Scenario, a: &Action) -> String {
    match a {
        Action::ScaleIstiod { replicas } => format!("scale istiod to {replicas}"),
        Action::DeleteFailedCsrs { .. } => "delete Failed CSRs".into(),
        Action::PauseRollout => "pause the rollout".into(),
        Action::ResumeRollout => "resume the rollout".into(),
        Action::RestartCrashlooping {
            batch_size,
            interval,
            pods,
        } => format!(
            "restart {} pods, {batch_size} every {}",
            match pods {
                RestartPods::Crashlooping => "crashlooping",
                RestartPods::NotReady => "not-ready",
            },
            crate::duration::format_duration(*interval)
        ),
        Action::RestartWorkloads => "restart every sidecar workload at once".into(),
        Action::SetCa { ca, .. } => format!(
            "resize CA {}",
            sc.cas.get(*ca).map_or("?", |c| c.name.as_str())
        ),
    }
}

/// The stories of the clusters that did not come through cleanly (the summary's
/// affected clusters, worst first).
pub fn explain(sc: &Scenario, s: &Summary, j: &Journal) -> Vec<Story> {
    let mut out = Vec::new();
    for name in s.affected_clusters() {
        let Some(ci) = s.clusters.iter().position(|c| c.name == name) else {
            continue;
        };
        let g = &s.clusters[ci].figures;
        let spec = &sc.clusters[ci];
        let m = j.milestones.get(ci).cloned().unwrap_or_default();
        let mut lines = Vec::new();
        // The upgrade.
        match (&m.drain_failure, g.upgrade_complete_s) {
            (Some(d), _) => {
                let group = &spec.node_groups[d.group as usize];
                let mut why: Vec<String> = Vec::new();
                for b in d.blockers.iter().take(3) {
                    let w = workload_name(spec, b.workload);
                    let pdb = match b.pdb_max_unavailable {
                        Some(mu) => format!(
                            "PDB maxUnavailable {mu}, {} of {} ready at the limit",
                            b.ready, b.desired
                        ),
                        None => "no PDB".to_string(),
                    };
                    why.push(format!("{} pod(s) of {w} ({pdb})", b.pods_left));
                }
                lines.push(format!(
                    "upgrade failed at {} (PodEvictionFailure): node {} of group {} cordoned at {} was not drained within {}; left on it: {}",
                    at(d.at),
                    d.node,
                    group.name,
                    at(d.cordoned_at),
                    format_duration(group.drain_timeout),
                    if why.is_empty() { "nothing".into() } else { why.join(", ") }
                ));
                let mut refused: Vec<_> = m.refusals.iter().filter(|r| r.node == d.node).collect();
                refused.sort_by(|a, b| b.count.cmp(&a.count).then(a.workload.cmp(&b.workload)));
                for r in refused.iter().take(3) {
                    let w = workload_name(spec, r.workload);
                    let pdb = spec
                        .workloads
                        .get((r.workload as usize).wrapping_sub(1))
                        .and_then(|w| w.pdb_max_unavailable)
                        .map_or(String::new(), |mu| format!(" (maxUnavailable {mu})"));
                    lines.push(format!(
                        "  the PDB of {w}{pdb} refused {} eviction(s) from that node between {} and {}",
                        r.count,
                        at(r.first),
                        at(r.last)
                    ));
                }
            }
            (None, Some(t)) => lines.push(format!("upgrade complete at {}", at_s(t))),
            (None, None) if g.upgrade_failed => {
                lines.push("upgrade halted (a gate or an earlier wave stopped it)".into())
            }
            (None, None) => lines.push("upgrade not finished by the end of the run".into()),
        }
        // Interventions on this cluster.
        for f in &j.fired {
            let iv = &sc.interventions[f.index as usize];
            if !iv.clusters.is_empty() && !iv.clusters.contains(&ci) {
                continue;
            }
            let when = match &iv.trigger {
                Trigger::At(t) => format!("set for {}", at(*t)),
                Trigger::When(p) => format!("when {}", predicate_text(p)),
            };
            lines.push(format!(
                "intervention {} fired at {} ({when}): {}",
                iv.name,
                at(f.at),
                action_text(sc, &iv.action)
            ));
        }
        // The causal chain.
        let mut chain: Vec<(SimTime, String)> = Vec::new();
        if let Some(t) = m.first_webhook_failure {
            chain.push((t, format!("first injection webhook failure at {}", at(t))));
        }
        if let Some(t) = m.first_istiod_exit {
            chain.push((
                t,
                format!(
                    "first istiod exit at start-up without its serving certificate at {}",
                    at(t)
                ),
            ));
        }
        if let Some(t) = m.first_no_istiod {
            chain.push((
                t,
                format!("first agent request with no istiod ready at {}", at(t)),
            ));
        }
        if let Some(t) = m.first_csr_timeout {
            chain.push((
                t,
                format!(
                    "first istiod CA request time-out at {} ({} in all)",
                    at(t),
                    g.csr_timeouts
                ),
            ));
        }
        if let Some(t) = m.first_proxy_kill {
            chain.push((
                t,
                format!(
                    "first proxy killed without a certificate (crashloop) at {}",
                    at(t)
                ),
            ));
        }
        chain.sort_by_key(|c| c.0);
        let mut text: Vec<String> = chain.into_iter().map(|c| c.1).collect();
        if let Some((n, t)) = m.crashloop_sample_peak {
            text.push(format!("crashloop peak {n} pods at {}", at(t)));
        }
        text.push(format!(
            "lowest ready {:.1} %",
            100.0 * g.min_ready_fraction
        ));
        text.push(match (g.recovered, g.time_to_recover_s) {
            (true, Some(t)) => format!("recovered at {}", at_s(t)),
            (true, None) => "recovered".into(),
            (false, _) if g.metastable => {
                "not recovered: still overloaded at the end with nothing driving the load (metastable)"
                    .into()
            }
            (false, _) => "not recovered by the end of the run".into(),
        });
        lines.push(text.join("; "));
        out.push(Story {
            cluster: name,
            lines,
        });
    }
    out
}

/// The stories as text, indented under a heading.
pub fn render(stories: &[Story]) -> String {
    let mut out = String::new();
    if stories.is_empty() {
        return out;
    }
    out.push_str("what happened:\n");
    for s in stories {
        out.push_str(&format!("  {}:\n", s.cluster));
        for l in &s.lines {
            out.push_str(&format!("    {l}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::CompareOp;

    #[test]
    fn a_condition_reads_as_written() {
        let p = Predicate::And(vec![
            Predicate::Compare {
                name: "crashloop_pods".into(),
                index: 0,
                op: CompareOp::Ge,
                value: Value::Num(50.0),
            },
            Predicate::Not(Box::new(Predicate::Flag {
                name: "paused".into(),
                index: 1,
            })),
        ]);
        assert_eq!(predicate_text(&p), "crashloop_pods >= 50 and not (paused)");
    }

    #[test]
    fn times_read_as_hours_minutes_seconds() {
        assert_eq!(at(SimTime::from_secs(1907)), "t=0:31:47");
        assert_eq!(at(SimTime::from_secs(3 * 3600 + 5)), "t=3:00:05");
    }
}
