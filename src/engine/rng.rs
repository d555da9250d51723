//! Random streams derived from one master seed: one stream per role and entity.
//!
//! # The rule
//! Every draw a model makes belongs to a **role** (what the number is for: a node's
//! launch time, the choice of an istiod replica, an agent's retry jitter, a CA's service
//! time) and an **entity** (what draws it: a node group, a cluster, a CA). Each (role,
//! entity) pair has a stream of its own, named `ROLE/ENTITY` with ENTITY the entity's
//! scenario names from the outermost in, joined by `/` (see [`role_stream`]):
//!
//! | stream | draws |
//! |---|---|
//! | `node-launch/{cluster}/{node group}` | a new node's launch-to-Ready time |
//! | `istiod-pick/{cluster}` | the istiod replica an agent's request goes to |
//! | `agent-jitter/{cluster}` | istio-agent's retry jitter |
//! | `ca-service/{ca}` | the CA's service times |
//!
//! The model lists its roles in one enum (`model::streams::Role`); a new role is one more
//! variant and its name. Because a stream's draws depend only on how many draws *its*
//! role made before for *its* entity, two strategies run with the same seed share every
//! draw of every role they do not change: a strategy that retries differently shifts the
//! jitter stream only, never a node launch (common random numbers; a test of the model
//! checks it). `fleetsim ca`'s standalone model keeps its own names (`ca/0/service`,
//! `ca/standalone/{arrivals, patience, retry}`).
//!
//! # Derivation (fixed; changing it changes every result)
//! 1. [`stream_id`] turns the stream's name into a 64-bit id with FNV-1a;
//! 2. [`stream`]`(seed, id)` seeds a PCG-64 (`rand_pcg::Pcg64`, portable and specified)
//!    with state `splitmix64(seed ^ splitmix64(id))` in the high and
//!    `splitmix64(id ^ splitmix64(seed))` in the low 64 bits, and the PCG stream selector
//!    `id`.
//!
//! # Seeds of replicate runs
//! Runs over several seeds (sweep points, checks, the review's strategies) take their
//! master seeds from [`seeds`]: run `i` from `base` uses `base + i`.

use rand::Rng as _;
use rand_pcg::Pcg64;

/// A component's own random number generator.
pub type RngStream = Pcg64;

/// SplitMix64's finaliser: a bijective mixer of 64-bit words.
#[inline]
pub fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A stable 64-bit id for a stream name (FNV-1a).
pub fn stream_id(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The stream for component `id` under master `seed`.
pub fn stream(seed: u64, id: u64) -> RngStream {
    let hi = splitmix64(seed ^ splitmix64(id)) as u128;
    let lo = splitmix64(id ^ splitmix64(seed)) as u128;
    Pcg64::new((hi << 64) | lo, id as u128)
}

/// The stream named `name` under master `seed`.
pub fn named_stream(seed: u64, name: &str) -> RngStream {
    stream(seed, stream_id(name))
}

/// The name of `role`'s stream for `entity` (outermost name first): `ROLE/E1/E2`.
pub fn role_stream_name(role: &str, entity: &[&str]) -> String {
    let mut name = role.to_string();
    for e in entity {
        name.push('/');
        name.push_str(e);
    }
    name
}

/// `role`'s stream for `entity` under master `seed` (see the module docs).
pub fn role_stream(seed: u64, role: &str, entity: &[&str]) -> RngStream {
    named_stream(seed, &role_stream_name(role, entity))
}

/// A uniform draw in [0, 1) with 53 bits, independent of rand's float conventions.
#[inline]
pub fn unit_f64(rng: &mut RngStream) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The master seeds of a sequence of replicate runs: run `i` of a sequence from `base`
/// uses seed `base + i`, wrapping at 2^64 (a scenario's seed is at most 2^63 - 1 and a
/// sequence at most 10^9 runs long, so a file never reaches the wrap). Every layer that
/// runs a scenario over seeds (sweep points, checks, the review's strategies) takes its
/// seeds from here, so the same seeds mean the same runs everywhere (common random
/// numbers across strategies and grid points).
pub fn seeds(base: u64, n: u64) -> Seeds {
    Seeds { base, n }
}

/// `n` seeds from `base` (see [`seeds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seeds {
    base: u64,
    n: u64,
}

impl Seeds {
    /// How many.
    pub fn len(&self) -> u64 {
        self.n
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The seed of run `i` (`i < len()`; beyond it the rule simply continues).
    pub fn get(&self, i: u64) -> u64 {
        self.base.wrapping_add(i)
    }

    /// The seeds in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = u64> + '_ {
        (0..self.n).map(|i| self.get(i))
    }

    /// The seeds in order, collected.
    pub fn to_vec(&self) -> Vec<u64> {
        self.iter().collect()
    }

    /// `first..last`, `first`, or `none`: the seeds for people.
    pub fn range_text(&self) -> String {
        match self.n {
            0 => "none".into(),
            1 => self.get(0).to_string(),
            n => format!("{}..{}", self.get(0), self.get(n - 1)),
        }
    }
}
