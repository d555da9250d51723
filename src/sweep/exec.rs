//! Running a sweep's runs on a rayon pool and handing the results back **in index
//! order**, whatever the thread count, with bounded memory.
//!
//! Workers take the next run from a shared cursor, run it (`model::run`, a pure
//! function of the point's scenario and the seed) and send the result to the calling
//! thread, which puts results back in order in a reorder buffer and passes each to the
//! caller's sink as soon as all earlier ones have been passed. A worker does not start a
//! run more than [`window`] positions ahead of the last one handed over, so at most that
//! many summaries are held however long the sweep is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Condvar, Mutex};

use crate::metrics::Summary;
use crate::model;

use super::spec::{RunId, Sweep};

/// A deterministic subset of a sweep's runs: `count` indices `first, first + step, ...`.
/// Shard `I/N` of a sweep is `first = I, step = N`; resuming skips the finished ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSelection {
    /// The first run index.
    pub first: u64,
    /// Distance between consecutive indices (`>= 1`).
    pub step: u64,
    /// How many runs.
    pub count: u64,
}

impl RunSelection {
    /// Every run of a sweep with `total` runs.
    pub fn all(total: u64) -> RunSelection {
        RunSelection {
            first: 0,
            step: 1,
            count: total,
        }
    }

    /// The runs of `shard` (index `% count == shard.index`).
    pub fn shard(total: u64, shard: Shard) -> RunSelection {
        let count = if shard.index < total {
            (total - shard.index).div_ceil(shard.count)
        } else {
            0
        };
        RunSelection {
            first: shard.index,
            step: shard.count,
            count,
        }
    }

    /// This selection without its first `n` runs.
    pub fn skip(self, n: u64) -> RunSelection {
        let n = n.min(self.count);
        RunSelection {
            first: self.first + n * self.step,
            step: self.step,
            count: self.count - n,
        }
    }

    /// The run index at position `pos` (`pos < count`).
    pub fn index(&self, pos: u64) -> u64 {
        self.first + pos * self.step
    }

    /// The run indices, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        (0..self.count).map(|p| self.index(p))
    }
}

/// Shard `index` of `count`: the runs whose index `% count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// This shard (`0..count`).
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// The whole sweep as one shard.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Whether this is the whole sweep.
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    /// `I/N` with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected I/N (e.g. 0/4), got {s:?}"))?;
        let parse = |t: &str, what: &str| {
            t.trim()
                .parse::<u64>()
                .map_err(|_| format!("{what} in {s:?} is not a non-negative integer"))
        };
        let (index, count) = (parse(i, "I")?, parse(n, "N")?);
        if count == 0 {
            return Err(format!("N must be >= 1, got {s:?}"));
        }
        if index >= count {
            return Err(format!(
                "shard index must be below the shard count (0..{count}), got {s:?}"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Which run.
    pub id: RunId,
    /// Whether the sweep's failure predicate holds for its fleet figures.
    pub failed: bool,
    /// Its summary (`wall_s` is the only nondeterministic field).
    pub summary: Summary,
}

/// How many runs may be started ahead of the oldest one not yet handed over, for
/// `threads` workers: the bound on summaries held in memory.
pub fn window(threads: usize) -> u64 {
    (threads as u64).saturating_mul(16).max(64)
}

/// A rayon pool of `threads` threads (`0`: rayon's default, all cores or
/// `RAYON_NUM_THREADS`).
pub fn pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("fleetsim-sweep-{i}"))
        .build()
}

/// Runs the selected runs of `sweep` on `pool` and calls `sink` with each result in
/// increasing index order, on the calling thread. The first error from `sink` stops the
/// workers (runs already started finish and are dropped) and is returned.
///
/// Output does not depend on the pool's size: each run is a pure function of its point
/// and seed, and results are ordered before `sink` sees them.
pub fn execute<E>(
    sweep: &Sweep,
    runs: RunSelection,
    pool: &rayon::ThreadPool,
    mut sink: impl FnMut(RunResult) -> Result<(), E>,
) -> Result<(), E> {
    if runs.count == 0 {
        return Ok(());
    }
    let window = window(pool.current_num_threads());
    // Next position to start, and the first position not yet handed to the sink.
    let cursor = Mutex::new((0u64, 0u64));
    let room = Condvar::new();
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(u64, RunResult)>();

    let worker = |tx: &mpsc::Sender<(u64, RunResult)>| {
        // The scenario of the point this worker ran last: consecutive runs are mostly of
        // one point, and one scenario per thread is all a sweep holds.
        let mut built: Option<(usize, crate::scenario::Scenario)> = None;
        loop {
            let pos = {
                let mut c = cursor.lock().expect("cursor lock");
                while c.0 < runs.count && c.0 >= c.1 + window && !stop.load(Ordering::Relaxed) {
                    c = room.wait(c).expect("cursor lock");
                }
                if c.0 >= runs.count || stop.load(Ordering::Relaxed) {
                    return;
                }
                c.0 += 1;
                c.0 - 1
            };
            let id = sweep.run_id(runs.index(pos));
            let point = &sweep.points()[id.point];
            if built.as_ref().map(|b| b.0) != Some(id.point) {
                built = Some((id.point, point.scenario()));
            }
            let sc = &built.as_ref().expect("just built").1;
            let out = model::run_summary(sc, id.seed, &point.scenario_hash);
            let failed = out.summary.fails(sweep.failure);
            let result = RunResult {
                id,
                failed,
                summary: out.summary,
            };
            if tx.send((pos, result)).is_err() {
                return;
            }
        }
    };

    std::thread::scope(|scope| {
        let handle = scope.spawn(move || {
            pool.broadcast(|_| worker(&tx.clone()));
            // `tx` drops here: the receiver ends once every worker's clone is gone.
        });
        let mut pending: BTreeMap<u64, RunResult> = BTreeMap::new();
        let mut next = 0u64;
        let mut outcome = Ok(());
        for (pos, result) in rx.iter() {
            if outcome.is_err() {
                continue;
            }
            pending.insert(pos, result);
            let before = next;
            while let Some(r) = pending.remove(&next) {
                next += 1;
                if let Err(e) = sink(r) {
                    outcome = Err(e);
                    stop.store(true, Ordering::Relaxed);
                    pending.clear();
                    break;
                }
            }
            if next != before || outcome.is_err() {
                cursor.lock().expect("cursor lock").1 = next;
                room.notify_all();
            }
        }
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_runs() {
        for total in [0u64, 1, 7, 10, 11] {
            for n in 1..5u64 {
                let mut seen: Vec<u64> = (0..n)
                    .flat_map(|i| {
                        RunSelection::shard(total, Shard { index: i, count: n })
                            .iter()
                            .collect::<Vec<_>>()
                    })
                    .collect();
                seen.sort();
                assert_eq!(seen, (0..total).collect::<Vec<_>>(), "total {total} n {n}");
            }
        }
    }

    #[test]
    fn skip_continues_the_selection() {
        let s = RunSelection::shard(10, Shard { index: 1, count: 3 });
        assert_eq!(s.iter().collect::<Vec<_>>(), [1, 4, 7]);
        assert_eq!(s.skip(1).iter().collect::<Vec<_>>(), [4, 7]);
        assert_eq!(s.skip(5).count, 0);
    }

    #[test]
    fn shard_syntax() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("3/2".parse::<Shard>().unwrap_err().contains("below"));
        assert!("0/0".parse::<Shard>().is_err());
        assert!("1".parse::<Shard>().is_err());
        assert!("-1/2".parse::<Shard>().is_err());
        assert_eq!(Shard { index: 2, count: 5 }.to_string(), "2/5");
    }
}
