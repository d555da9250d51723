//! A trajectory fingerprint: a 64-bit hash folded over every executed event.

use super::SimTime;

/// FNV-1a style fold over 64-bit words (time, kind, entity) of each event. Portable and
/// independent of any std hasher, so the value is stable across machines and releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceHash(u64);

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

impl TraceHash {
    /// The hash of an empty trajectory.
    pub fn new() -> Self {
        TraceHash(OFFSET)
    }

    #[inline]
    fn fold(&mut self, word: u64) {
        // Fold whole words, then mix, so a change in any bit moves every output bit.
        self.0 = (self.0 ^ word).wrapping_mul(PRIME);
        self.0 ^= self.0 >> 29;
    }

    /// Adds one event.
    #[inline]
    pub fn record(&mut self, time: SimTime, kind: u32, entity: u64) {
        self.fold(time.as_nanos());
        self.fold(kind as u64);
        self.fold(entity);
    }

    /// One value for several hashes (a partitioned run's, in partition order).
    pub fn combine(parts: &[TraceHash]) -> u64 {
        let mut h = TraceHash::new();
        for p in parts {
            h.fold(p.0);
        }
        h.0
    }

    /// The current value.
    pub fn value(&self) -> u64 {
        self.0
    }

    /// The value as 16 lower-case hex digits, the form reports use.
    pub fn hex(value: u64) -> String {
        format!("{value:016x}")
    }
}

impl Default for TraceHash {
    fn default() -> Self {
        Self::new()
    }
}
