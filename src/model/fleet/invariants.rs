//! Test-only invariants: the state recounted from scratch and compared with what the
//! handlers keep up to date. `run_checked` in the model tests calls them after every
//! event of random fleets.

use super::super::state::{NodeState, PodPhase, NONE};
use super::Fleet;

impl Fleet<'_> {
    /// Checks the model's invariants by recounting from scratch; returns the first
    /// violation found.
    pub fn check_invariants(&self) -> Result<(), String> {
        for c in &self.clusters {
            let name = &self.spec(c.index).name;
            let s = &c.objects;
            let mut active = vec![0u32; s.workloads.len()];
            let mut ready = vec![0u32; s.workloads.len()];
            let (mut pending, mut backoff, mut crashloop) = (0u32, 0u32, 0u32);
            for (slot, p) in s.pods.iter().enumerate() {
                if p.phase == PodPhase::Free {
                    continue;
                }
                if p.phase != PodPhase::Terminating {
                    active[p.workload as usize] += 1;
                }
                if p.phase == PodPhase::Ready {
                    ready[p.workload as usize] += 1;
                }
                pending += matches!(
                    p.phase,
                    PodPhase::Creating | PodPhase::Pending | PodPhase::Starting
                ) as u32;
                backoff += (p.phase == PodPhase::Backoff) as u32;
                crashloop += p.crashlooping() as u32;
                let on_node = !matches!(p.phase, PodPhase::Creating | PodPhase::Pending);
                if on_node != (p.node != NONE) {
                    return Err(format!(
                        "{name}: pod {slot} in {:?} has node {}",
                        p.phase, p.node
                    ));
                }
                if p.node != NONE {
                    let n = &s.nodes[p.node as usize];
                    if n.state == NodeState::Terminated {
                        return Err(format!("{name}: pod {slot} on terminated node {}", p.node));
                    }
                    if n.pods.get(p.node_pos as usize) != Some(&(slot as u32)) {
                        return Err(format!("{name}: pod {slot} not in its node's list"));
                    }
                }
            }
            for (w, wl) in s.workloads.iter().enumerate() {
                if wl.active != active[w] || wl.ready != ready[w] {
                    return Err(format!(
                        "{name}: workload {w}: counted active {} ready {}, actual {} {}",
                        wl.active, wl.ready, active[w], ready[w]
                    ));
                }
                if wl.active > wl.desired && w != 0 {
                    return Err(format!(
                        "{name}: workload {w} has {} pods for {} desired",
                        wl.active, wl.desired
                    ));
                }
            }
            let k = s.counts();
            if (k.ready, k.pending, k.backoff, k.crashloop)
                != (ready.iter().sum(), pending, backoff, crashloop)
            {
                return Err(format!("{name}: pod counters drifted"));
            }
            if s.node_counts() != s.node_counts_scanned() {
                return Err(format!(
                    "{name}: node counters {:?}, nodes {:?}",
                    s.node_counts(),
                    s.node_counts_scanned()
                ));
            }
            let mut draining_old: Vec<u32> = Vec::new();
            for (i, n) in s.nodes.iter().enumerate() {
                if n.pods.len() as u32 > n.capacity {
                    return Err(format!("{name}: node {i} over capacity"));
                }
                if n.state == NodeState::Draining && !n.new_ami {
                    let g = n.group as usize;
                    if draining_old.len() <= g {
                        draining_old.resize(g + 1, 0);
                    }
                    draining_old[g] += 1;
                }
                let listed = s.is_listed_schedulable(i as u32);
                if listed != (n.state == NodeState::Ready) {
                    return Err(format!(
                        "{name}: node {i} ({:?}) schedulable={listed}",
                        n.state
                    ));
                }
            }
            for u in c.upgrade.current() {
                let draining = draining_old.get(u.group as usize).copied().unwrap_or(0);
                if draining > u.max_unavailable {
                    return Err(format!(
                        "{name}: {draining} old nodes of group {} unavailable, maxUnavailable {}",
                        u.group, u.max_unavailable
                    ));
                }
            }
            if c.istiod.ready() as u32 != s.workloads[0].ready {
                return Err(format!("{name}: istiod replicas list out of step"));
            }
        }
        Ok(())
    }
}
