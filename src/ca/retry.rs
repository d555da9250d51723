//! How a client waits before asking again: istio-agent's certificate-request retry policy.
//!
//! istio-agent (docs/sources.md) wraps each CSR call in a gRPC retry interceptor with
//! **5 attempts in total**, waiting `100 ms x 2^(k-1)` (100, 200, 400, 800 ms) before
//! attempt `k + 1`, each wait jittered uniformly by ±10 %
//! (`BackoffExponentialWithJitter(100ms, 0.1)`). When all five fail, the SDS layer retries
//! the whole call with an **outer** exponential backoff (cenkalti/backoff defaults as set
//! by the agent): 500 ms initial, x1.5, capped at 60 s, jitter ±50 % applied *after* the
//! cap (so a single wait can reach 90 s), and it never gives up. Each outer retry again
//! makes up to five inner attempts.
//!
//! From Istio 1.16 the outer loop runs through Istio's `pkg/backoff` wrapper
//! (`pkg/backoff/exponential.go`, HEAD `:50-53, 73-80, 91-104`), which keeps cenkalti's
//! `MaxElapsedTime` of 15 min: once the time since the loop started plus the drawn wait
//! would pass it, the wait is a flat `MaxInterval` (60 s) from then on. That rule is
//! [`AgentBackoff::flat_after`] (off by default, so `fleetsim ca` is unchanged) and
//! [`RetryPolicy::delay_at`], which needs the elapsed time.
//!
//! Attempts are numbered from 1. [`RetryPolicy::delay`] gives the wait after attempt
//! `failed` failed and before attempt `failed + 1`; the caller decides how many attempts
//! to make at all. Jitter is drawn from the caller's stream: exactly one uniform per call
//! (none for [`RetryPolicy::Immediate`]).

use crate::engine::rng::unit_f64;
use crate::engine::{RngStream, SimTime};

/// Parameters of istio-agent's two-level backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentBackoff {
    /// Attempts per inner round (5).
    pub inner_attempts: u32,
    /// First inner wait (100 ms); doubles per attempt.
    pub inner_base: SimTime,
    /// Relative jitter of inner waits (0.1 = ±10 %).
    pub inner_jitter: f64,
    /// First outer wait (500 ms).
    pub outer_initial: SimTime,
    /// Growth of the outer wait per round (1.5).
    pub outer_multiplier: f64,
    /// Relative jitter of outer waits (0.5 = ±50 %).
    pub outer_jitter: f64,
    /// Cap on the un-jittered outer wait (60 s).
    pub outer_max: SimTime,
    /// Istio 1.16+: outer waits become a flat `outer_max` once the loop has run this
    /// long (`MaxElapsedTime`, 15 min); `None` before 1.16 (`MaxElapsedTime = 0`).
    pub flat_after: Option<SimTime>,
}

impl Default for AgentBackoff {
    /// istio-agent's defaults (docs/sources.md).
    fn default() -> Self {
        AgentBackoff {
            inner_attempts: 5,
            inner_base: SimTime::from_millis(100),
            inner_jitter: 0.1,
            outer_initial: SimTime::from_millis(500),
            outer_multiplier: 1.5,
            outer_jitter: 0.5,
            outer_max: SimTime::from_secs(60),
            flat_after: None,
        }
    }
}

impl AgentBackoff {
    /// The defaults with Istio 1.16+'s flat wait after 15 minutes.
    pub fn with_flat_after_15_min() -> AgentBackoff {
        AgentBackoff {
            flat_after: Some(SimTime::from_secs(15 * 60)),
            ..AgentBackoff::default()
        }
    }
}

/// A client's retry policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryPolicy {
    /// istio-agent's inner retries, then its outer backoff.
    Agent(AgentBackoff),
    /// Ask again at once.
    Immediate,
}

impl RetryPolicy {
    /// istio-agent's policy with its defaults.
    pub fn agent() -> RetryPolicy {
        RetryPolicy::Agent(AgentBackoff::default())
    }

    /// The wait after attempt `failed` (1-based) failed, before the next attempt.
    pub fn delay(&self, failed: u32, rng: &mut RngStream) -> SimTime {
        match self {
            RetryPolicy::Immediate => SimTime::ZERO,
            RetryPolicy::Agent(b) => {
                let failed = failed.max(1);
                let per_round = b.inner_attempts.max(1);
                let pos = (failed - 1) % per_round + 1; // position in its inner round
                let round = (failed - 1) / per_round; // outer rounds already finished
                let (base_s, jitter) = if pos < per_round {
                    let k = (pos - 1).min(62);
                    (
                        b.inner_base.as_secs_f64() * (1u64 << k) as f64,
                        b.inner_jitter,
                    )
                } else {
                    let grown = b.outer_initial.as_secs_f64()
                        * b.outer_multiplier.powi(round.min(10_000) as i32);
                    (grown.min(b.outer_max.as_secs_f64()), b.outer_jitter)
                };
                let u = unit_f64(rng);
                SimTime::from_secs_f64(base_s * (1.0 + jitter * (2.0 * u - 1.0)))
            }
        }
    }

    /// [`delay`](Self::delay) for a retry loop that started `elapsed` ago: with
    /// [`AgentBackoff::flat_after`], an outer wait that would end past it is the flat
    /// `outer_max` instead (the draw is made either way, as cenkalti draws before it
    /// checks). Inner waits are unaffected.
    pub fn delay_at(&self, failed: u32, elapsed: SimTime, rng: &mut RngStream) -> SimTime {
        let d = self.delay(failed, rng);
        match self {
            RetryPolicy::Agent(b) => {
                let outer =
                    (failed.max(1) - 1) % b.inner_attempts.max(1) + 1 == b.inner_attempts.max(1);
                match b.flat_after {
                    Some(limit) if outer && elapsed + d > limit => b.outer_max,
                    _ => d,
                }
            }
            RetryPolicy::Immediate => d,
        }
    }

    /// The shortest wait this policy can draw (with the jitter at its lowest).
    pub fn min_delay(&self) -> SimTime {
        match self {
            RetryPolicy::Immediate => SimTime::ZERO,
            RetryPolicy::Agent(b) => {
                let inner = b.inner_base.as_secs_f64() * (1.0 - b.inner_jitter);
                let outer = b.outer_initial.as_secs_f64() * (1.0 - b.outer_jitter);
                let s = if b.inner_attempts > 1 {
                    inner.min(outer)
                } else {
                    outer
                };
                SimTime::from_secs_f64(s.max(0.0))
            }
        }
    }

    /// The longest wait this policy can draw before any of the first `retries` retries
    /// (with the jitter at its highest).
    pub fn max_delay(&self, retries: u32) -> SimTime {
        match self {
            RetryPolicy::Immediate => SimTime::ZERO,
            RetryPolicy::Agent(b) if retries < b.inner_attempts.max(1) => {
                let k = retries.saturating_sub(1).min(62);
                let s = b.inner_base.as_secs_f64() * (1u64 << k) as f64 * (1.0 + b.inner_jitter);
                SimTime::from_secs_f64(s)
            }
            RetryPolicy::Agent(b) => {
                let k = (b.inner_attempts.max(1) - 1).min(62);
                let inner =
                    b.inner_base.as_secs_f64() * (1u64 << k) as f64 * (1.0 + b.inner_jitter);
                let outer = b.outer_max.as_secs_f64() * (1.0 + b.outer_jitter);
                SimTime::from_secs_f64(inner.max(outer))
            }
        }
    }

    /// The un-jittered wait after attempt `failed` (for documentation and tests).
    pub fn nominal_delay(&self, failed: u32) -> SimTime {
        match self {
            RetryPolicy::Immediate => SimTime::ZERO,
            RetryPolicy::Agent(b) => {
                let b = AgentBackoff {
                    inner_jitter: 0.0,
                    outer_jitter: 0.0,
                    ..*b
                };
                // With zero jitter the draw does not matter.
                let mut rng = crate::engine::rng::stream(0, 0);
                RetryPolicy::Agent(b).delay(failed, &mut rng)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng;

    #[test]
    fn agent_nominal_sequence() {
        let p = RetryPolicy::agent();
        let ms: Vec<u64> = (1..=12)
            .map(|k| p.nominal_delay(k).as_nanos() / 1_000_000)
            .collect();
        // Inner 100..800, outer 500; inner again; outer 750; inner again.
        assert_eq!(
            ms,
            vec![100, 200, 400, 800, 500, 100, 200, 400, 800, 750, 100, 200]
        );
        // The outer wait is capped at 60 s: 0.5 * 1.5^r >= 60 from r = 12.
        assert_eq!(p.nominal_delay(5 * 13), SimTime::from_secs(60));
        assert_eq!(p.nominal_delay(5 * 1000), SimTime::from_secs(60));
    }

    #[test]
    fn jitter_stays_in_bounds_and_spreads() {
        let p = RetryPolicy::agent();
        let mut r = rng::stream(3, 3);
        let (mut lo, mut hi) = (f64::MAX, 0.0f64);
        for _ in 0..10_000 {
            let d = p.delay(1, &mut r).as_secs_f64();
            assert!((0.09..=0.11).contains(&d), "{d}");
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(
            lo < 0.0905 && hi > 0.1095,
            "jitter covers ±10 %: {lo}..{hi}"
        );
        for _ in 0..10_000 {
            let d = p.delay(5 * 20, &mut r).as_secs_f64();
            assert!((30.0..=90.0).contains(&d), "outer capped then ±50 %: {d}");
        }
    }

    #[test]
    fn outer_wait_turns_flat_after_15_minutes_from_istio_1_16() {
        let old = RetryPolicy::agent();
        let new = RetryPolicy::Agent(AgentBackoff::with_flat_after_15_min());
        let mut r1 = rng::stream(5, 5);
        let mut r2 = rng::stream(5, 5);
        // Early in the loop both draw the same jittered waits.
        assert_eq!(
            old.delay_at(5, SimTime::from_secs(10), &mut r1),
            new.delay_at(5, SimTime::from_secs(10), &mut r2)
        );
        // Near 15 minutes the new one is a flat 60 s; the old keeps jittering forever.
        let late = SimTime::from_secs(15 * 60 - 1);
        assert_eq!(new.delay_at(5 * 20, late, &mut r2), SimTime::from_secs(60));
        let d = old.delay_at(5 * 20, late, &mut r1);
        assert!(d >= SimTime::from_secs(30) && d <= SimTime::from_secs(90));
        // Inner waits never change.
        let inner = new.delay_at(1, late, &mut r2);
        assert!(inner < SimTime::from_millis(111));
    }

    #[test]
    fn delay_bounds_hold_every_draw() {
        let p = RetryPolicy::agent();
        assert_eq!(p.min_delay(), SimTime::from_millis(90));
        assert_eq!(p.max_delay(1), SimTime::from_millis(110));
        assert_eq!(p.max_delay(4), SimTime::from_millis(880));
        assert_eq!(p.max_delay(5), SimTime::from_secs(90));
        let mut r = rng::stream(4, 4);
        for failed in 1..=200 {
            let d = p.delay(failed, &mut r);
            assert!(
                d >= p.min_delay() && d <= p.max_delay(failed),
                "{failed}: {d}"
            );
        }
        assert_eq!(RetryPolicy::Immediate.max_delay(9), SimTime::ZERO);
    }

    #[test]
    fn immediate_is_zero() {
        let mut r = rng::stream(1, 1);
        assert_eq!(RetryPolicy::Immediate.delay(3, &mut r), SimTime::ZERO);
    }
}
