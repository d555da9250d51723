//! Sampling and the summary: what the recorder samples every interval, and the figures
//! a run ends with. Reads the state; changes only the bookkeeping kept for the figures.

use crate::engine::{RunReport, SimTime, TraceHash};
use crate::metrics::{ClusterFigures, Figures, Sample, Summary};

use super::{Cluster, Fleet};

/// Per-CA bookkeeping for the figures.
#[derive(Debug, Clone, Default)]
pub struct CaStats {
    /// Peak of requests at the CA.
    pub peak: u64,
    /// Sum over samples of utilisation (for the mean).
    utilization_sum: f64,
    /// Samples taken.
    samples: u64,
    /// Busy worker-seconds at the previous sample.
    busy_at_last_sample: f64,
}

impl Fleet<'_> {
    /// Takes one sample of every cluster and of the fleet.
    pub fn take_sample(&mut self, now: SimTime) {
        let mut fleet = Sample {
            time_s: now.as_secs_f64(),
            cluster: None,
            ..Sample::default()
        };
        let dt = self.sc.sample_interval.as_secs_f64();
        let mut ca_util = vec![0.0; self.cas.len()];
        for (i, ca) in self.cas.iter().enumerate() {
            let st = &mut self.ca_stats[i];
            let busy = ca.busy_worker_seconds(now);
            let util = if now == SimTime::ZERO {
                0.0
            } else {
                ((busy - st.busy_at_last_sample) / (dt * ca.workers() as f64)).clamp(0.0, 1.0)
            };
            st.busy_at_last_sample = busy;
            if now > SimTime::ZERO {
                st.utilization_sum += util;
                st.samples += 1;
            }
            ca_util[i] = util;
            fleet.ca_queue += (ca.queue_len() + ca.in_service() as u64) as u32;
        }
        fleet.ca_utilization = if ca_util.is_empty() {
            0.0
        } else {
            ca_util.iter().sum::<f64>() / ca_util.len() as f64
        };
        for (i, c) in self.clusters.iter_mut().enumerate() {
            let ca = self.sc.clusters[i].ca;
            let objs = *c.cert.csrs().counts();
            let apiserver_rejected = c.cert.take_rejected_interval();
            let (nodes_old, nodes_new) = c.objects.node_counts();
            let desired = c.objects.desired_pods();
            let s = Sample {
                time_s: now.as_secs_f64(),
                cluster: Some(i as u32),
                pods_ready: c.objects.counts().ready,
                pods_pending: c.objects.counts().pending,
                pods_backoff: c.objects.counts().backoff,
                pods_desired: desired,
                nodes_old,
                nodes_new,
                istiod_ready: c.istiod.ready() as u32,
                ca_queue: ca.map_or(0, |ca| {
                    (self.cas[ca].queue_len() + self.cas[ca].in_service() as u64) as u32
                }),
                ca_utilization: ca.map_or(0.0, |ca| ca_util[ca]),
                csr_in_flight: {
                    let k = c.cert.csrs().counts();
                    (k.pending + k.approved) as u32
                },
                csr_failed_objects: c.cert.csrs().counts().failed,
                pods_crashloop: c.objects.counts().crashloop,
                apiserver_seats: c.cert.api().seats_in_use_at(now),
                apiserver_rejected,
                csr_pending: objs.pending,
                csr_approved: objs.approved,
                csr_issued: objs.issued,
            };
            let m = &mut self.journal.milestones[i];
            if s.pods_crashloop > m.crashloop_sample_peak.map_or(0, |p| p.0) {
                m.crashloop_sample_peak = Some((s.pods_crashloop, now));
            }
            if now > SimTime::ZERO && s.istiod_ready == 0 {
                c.counters.istiod_unready_ns += self.sc.sample_interval.as_nanos();
            }
            if desired > 0 {
                c.health.min_ready_fraction = c
                    .health
                    .min_ready_fraction
                    .min(s.pods_ready as f64 / desired as f64);
            }
            fleet.pods_ready += s.pods_ready;
            fleet.pods_pending += s.pods_pending;
            fleet.pods_backoff += s.pods_backoff;
            fleet.pods_desired += s.pods_desired;
            fleet.nodes_old += s.nodes_old;
            fleet.nodes_new += s.nodes_new;
            fleet.istiod_ready += s.istiod_ready;
            fleet.csr_in_flight += s.csr_in_flight;
            fleet.csr_failed_objects += s.csr_failed_objects;
            fleet.pods_crashloop += s.pods_crashloop;
            fleet.apiserver_seats += s.apiserver_seats;
            fleet.apiserver_rejected += s.apiserver_rejected;
            fleet.csr_pending += s.csr_pending;
            fleet.csr_approved += s.csr_approved;
            fleet.csr_issued += s.csr_issued;
            self.recorder.samples.push(s);
        }
        self.recorder.samples.push(fleet);
    }

    /// Builds the summary at the end of a run.
    pub fn summarize(&self, report: &RunReport, seed: u64, hash: &str, wall_s: f64) -> Summary {
        let end = report.end;
        let in_window = |c: &Cluster| {
            c.window.triggers == 0
                && c.window.attempts > 0
                && (c.window.delivered as f64) < 0.5 * c.window.attempts as f64
        };
        let mut clusters = Vec::with_capacity(self.clusters.len());
        for c in &self.clusters {
            let spec = self.spec(c.index);
            let ca = spec.ca;
            let recovered = c.health.healthy;
            let f = Figures {
                upgrade_complete_s: c.upgrade.done_at().map(|t| t.as_secs_f64()),
                upgrade_failed: c.upgrade.failed(),
                recovered,
                time_to_recover_s: recovered.then(|| c.health.since.as_secs_f64()),
                peak_crashloop_pods: c.objects.counts().crashloop_peak,
                crashloop_pod_seconds: round3(c.objects.crashloop_pod_seconds_at(end)),
                pods_total: c.objects.desired_pods(),
                pod_restarts: c.counters.pod_restarts,
                evictions: c.counters.evictions,
                csr_requests: c.counters.csr_requests,
                csr_timeouts: c.counters.csr_timeouts,
                csr_rate_limited: c.counters.csr_rate_limited,
                csr_failed_objects_peak: c.cert.csrs().failed_peak(),
                csr_wasted_signings: c.cert.stats().csr_wasted_signings,
                ca_peak_queue: ca.map_or(0, |ca| self.ca_stats[ca].peak),
                ca_utilization: round3(ca.map_or(0.0, |ca| self.ca_mean_utilization(ca))),
                min_ready_fraction: round3(c.health.min_ready_fraction),
                metastable: !recovered && in_window(c),
                apiserver_rejections: c.cert.api().rejected_total(),
                apiserver_peak_inflight: u64::from(c.cert.api().peak_seats_in_use()),
                webhook_failures: c.counters.webhook_failures,
                istiod_unready_s: round3(c.counters.istiod_unready_ns as f64 / 1e9),
                csr_orphaned: c.cert.stats().csr_orphaned,
                csr_skipped_gone: c.cert.stats().csr_skipped_gone,
                istiod_probe_failures: c
                    .istiod
                    .probe_failures_at(end, &crate::model::startup::probe(spec)),
                certificates_ready: self.certs(c.index).map(|cc| cc.ready()),
                certificates_all_ready_s: self
                    .certs(c.index)
                    .map(|cc| cc.all_ready_s().map(round3)),
                cert_rotations: c.cert.stats().cert_rotations,
                cert_expired: c.cert.stats().cert_expired,
                pca_issue_calls: c.cert.stats().pca_issue_calls,
            };
            clusters.push(ClusterFigures {
                name: spec.name.clone(),
                ca: ca.map_or_else(|| "istiod".to_string(), |ca| self.sc.cas[ca].name.clone()),
                figures: f,
            });
        }
        let all_done = self
            .clusters
            .iter()
            .all(|c| c.upgrade.done_at().is_some() && !c.upgrade.failed());
        let recovered = clusters.iter().all(|c| c.figures.recovered);
        let sum = |f: fn(&Figures) -> u64| clusters.iter().map(|c| f(&c.figures)).sum::<u64>();
        let fleet = Figures {
            upgrade_complete_s: if all_done {
                self.clusters
                    .iter()
                    .filter_map(|c| c.upgrade.done_at())
                    .max()
                    .map(|t| t.as_secs_f64())
            } else {
                None
            },
            upgrade_failed: self.clusters.iter().any(|c| c.upgrade.failed())
                || self.rollout.halted(),
            recovered,
            time_to_recover_s: if recovered {
                Some(
                    self.clusters
                        .iter()
                        .map(|c| c.health.since)
                        .max()
                        .unwrap_or(SimTime::ZERO)
                        .as_secs_f64(),
                )
            } else {
                None
            },
            peak_crashloop_pods: self.fleet_peak_crashloop(),
            crashloop_pod_seconds: round3(
                clusters
                    .iter()
                    .map(|c| c.figures.crashloop_pod_seconds)
                    .sum(),
            ),
            pods_total: clusters.iter().map(|c| c.figures.pods_total).sum(),
            pod_restarts: sum(|f| f.pod_restarts),
            evictions: sum(|f| f.evictions),
            csr_requests: sum(|f| f.csr_requests),
            csr_timeouts: sum(|f| f.csr_timeouts),
            csr_rate_limited: sum(|f| f.csr_rate_limited),
            csr_failed_objects_peak: self.fleet_failed_peak(),
            csr_wasted_signings: sum(|f| f.csr_wasted_signings),
            ca_peak_queue: self.ca_stats.iter().map(|s| s.peak).max().unwrap_or(0),
            ca_utilization: round3(if self.cas.is_empty() {
                0.0
            } else {
                (0..self.cas.len())
                    .map(|i| self.ca_mean_utilization(i))
                    .fold(0.0, f64::max)
            }),
            min_ready_fraction: round3(self.fleet_min_ready()),
            metastable: clusters.iter().any(|c| c.figures.metastable),
            apiserver_rejections: sum(|f| f.apiserver_rejections),
            apiserver_peak_inflight: clusters
                .iter()
                .map(|c| c.figures.apiserver_peak_inflight)
                .max()
                .unwrap_or(0),
            webhook_failures: sum(|f| f.webhook_failures),
            istiod_unready_s: round3(clusters.iter().map(|c| c.figures.istiod_unready_s).sum()),
            csr_orphaned: sum(|f| f.csr_orphaned),
            csr_skipped_gone: sum(|f| f.csr_skipped_gone),
            istiod_probe_failures: sum(|f| f.istiod_probe_failures),
            certificates_ready: clusters
                .iter()
                .filter_map(|c| c.figures.certificates_ready)
                .reduce(|a, b| a + b),
            certificates_all_ready_s: clusters
                .iter()
                .filter_map(|c| c.figures.certificates_all_ready_s)
                .reduce(|a, b| match (a, b) {
                    (Some(x), Some(y)) => Some(x.max(y)),
                    _ => None,
                }),
            cert_rotations: sum(|f| f.cert_rotations),
            cert_expired: sum(|f| f.cert_expired),
            pca_issue_calls: sum(|f| f.pca_issue_calls),
        };
        Summary {
            scenario: self.sc.name.clone(),
            scenario_hash: hash.to_string(),
            seed,
            events: report.events,
            wall_s: round3(wall_s),
            sim_end_s: end.as_secs_f64(),
            stop_reason: report.stop.as_str().to_string(),
            trace_hash: TraceHash::hex(report.trace_hash),
            clamped_events: report.clamped,
            fleet,
            clusters,
            assumptions: self
                .sc
                .assumptions
                .iter()
                .map(|a| crate::metrics::Assumption {
                    key: a.key.clone(),
                    value: a.value.clone(),
                    note: a.note.clone(),
                })
                .collect(),
        }
    }

    fn ca_mean_utilization(&self, ca: usize) -> f64 {
        let s = &self.ca_stats[ca];
        if s.samples == 0 {
            0.0
        } else {
            s.utilization_sum / s.samples as f64
        }
    }

    fn fleet_rows(&self) -> impl Iterator<Item = &Sample> {
        self.recorder.samples.iter().filter(|s| s.cluster.is_none())
    }

    /// The fleet's peak of a count: the largest fleet sample, or a cluster's own peak
    /// between samples if that is larger.
    fn fleet_peak(
        &self,
        sample: impl Fn(&Sample) -> u64,
        cluster: impl Fn(&Cluster) -> u64,
    ) -> u64 {
        let sampled = self.fleet_rows().map(sample).max().unwrap_or(0);
        sampled.max(self.clusters.iter().map(cluster).max().unwrap_or(0))
    }

    fn fleet_peak_crashloop(&self) -> u32 {
        self.fleet_peak(
            |s| u64::from(s.pods_crashloop),
            |c| u64::from(c.objects.counts().crashloop_peak),
        ) as u32
    }

    fn fleet_failed_peak(&self) -> u64 {
        self.fleet_peak(|s| s.csr_failed_objects, |c| c.cert.csrs().failed_peak())
    }

    fn fleet_min_ready(&self) -> f64 {
        self.fleet_rows()
            .filter(|s| s.pods_desired > 0)
            .map(|s| s.pods_ready as f64 / s.pods_desired as f64)
            .fold(1.0, f64::min)
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
