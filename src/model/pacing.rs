//! Pacing of evictions (pod restarts) within a cluster: the restart strategies.

use crate::engine::SimTime;
use crate::scenario::Pacing;

/// A token bucket over simulated time. Deterministic: plain f64 arithmetic on seconds.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last: SimTime,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate_per_s: f64, burst: f64, now: SimTime) -> Self {
        TokenBucket {
            rate_per_s,
            burst: burst.max(1.0),
            tokens: burst.max(1.0),
            last: now,
        }
    }

    fn refill(&mut self, now: SimTime) {
        let dt = now.saturating_sub(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate_per_s).min(self.burst);
        self.last = now;
    }

    /// Takes one token now, or says when one will be available.
    pub fn take(&mut self, now: SimTime) -> Result<(), SimTime> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.rate_per_s;
            Err(now + SimTime::from_secs_f64(wait).max(SimTime(1)))
        }
    }

    /// client-go's `Reserve`: the time at which `n` tokens will have been granted, given
    /// every earlier reservation. The tokens are taken only if that time is at or before
    /// `deadline` (a limiter `Wait` whose context would expire first fails at once).
    pub fn reserve(&mut self, now: SimTime, n: u32, deadline: SimTime) -> Option<SimTime> {
        self.refill(now);
        let after = self.tokens - n as f64;
        let at = if after >= 0.0 {
            now
        } else {
            now + SimTime::from_secs_f64(-after / self.rate_per_s)
        };
        if at > deadline {
            return None;
        }
        self.tokens = after;
        Some(at)
    }

    /// Changes the rate, keeping the tokens accrued so far.
    pub fn set_rate(&mut self, now: SimTime, rate_per_s: f64, burst: f64) {
        self.refill(now);
        self.rate_per_s = rate_per_s;
        self.burst = burst.max(1.0);
        self.tokens = self.tokens.min(self.burst);
    }

    /// Current rate.
    pub fn rate_per_s(&self) -> f64 {
        self.rate_per_s
    }
}

/// A cluster's eviction pacer.
#[derive(Debug, Clone)]
pub enum Pacer {
    /// No pacing.
    Unlimited,
    /// Fixed batches.
    Batches {
        /// Pods per batch.
        size: u32,
        /// Wait between batches.
        interval: SimTime,
        /// Evictions left in the current window.
        left: u32,
        /// When the current window opened.
        window_start: SimTime,
    },
    /// Token bucket (also the actuator of AIMD).
    Bucket(TokenBucket),
}

impl Pacer {
    /// The pacer for a strategy.
    pub fn new(pacing: &Pacing, now: SimTime) -> Pacer {
        match pacing {
            Pacing::AllAtOnce => Pacer::Unlimited,
            Pacing::Batches { size, interval } => Pacer::Batches {
                size: *size,
                interval: *interval,
                left: *size,
                window_start: now,
            },
            Pacing::TokenBucket(rl) => {
                Pacer::Bucket(TokenBucket::new(rl.rate_per_s, rl.burst as f64, now))
            }
            Pacing::Aimd { initial_per_s, .. } => Pacer::Bucket(TokenBucket::new(
                *initial_per_s,
                initial_per_s.max(1.0),
                now,
            )),
        }
    }

    /// Takes permission for one eviction now, or says when to ask again.
    pub fn take(&mut self, now: SimTime) -> Result<(), SimTime> {
        match self {
            Pacer::Unlimited => Ok(()),
            Pacer::Batches {
                size,
                interval,
                left,
                window_start,
            } => {
                if now >= *window_start + *interval {
                    *window_start = now;
                    *left = *size;
                }
                if *left > 0 {
                    *left -= 1;
                    Ok(())
                } else {
                    Err(*window_start + *interval)
                }
            }
            Pacer::Bucket(b) => b.take(now),
        }
    }
}

/// AIMD controller state: adjusts the bucket's rate every interval from the CSR error
/// ratio observed in that interval.
#[derive(Debug, Clone, Default)]
pub struct AimdWindow {
    /// CSR attempts answered in the window.
    pub attempts: u64,
    /// Of which failed (istiod gave up, or its limiter refused).
    pub errors: u64,
}

/// One AIMD step on a cluster's pacer: its token bucket gets the rate the window calls
/// for (other pacers are left alone).
pub fn aimd_step(pacer: &mut Pacer, pacing: &Pacing, window: &AimdWindow, now: SimTime) {
    if let Pacer::Bucket(b) = pacer {
        let rate = aimd_next_rate(pacing, b.rate_per_s(), window);
        b.set_rate(now, rate, rate.max(1.0));
    }
}

/// One AIMD step: the new rate.
pub fn aimd_next_rate(pacing: &Pacing, rate: f64, window: &AimdWindow) -> f64 {
    let Pacing::Aimd {
        min_per_s,
        max_per_s,
        increase_per_s,
        decrease_factor,
        error_threshold,
        ..
    } = pacing
    else {
        return rate;
    };
    let ratio = if window.attempts == 0 {
        0.0
    } else {
        window.errors as f64 / window.attempts as f64
    };
    let next = if ratio > *error_threshold {
        rate * decrease_factor
    } else {
        rate + increase_per_s
    };
    next.clamp(*min_per_s, *max_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_grants_burst_then_rate() {
        let mut b = TokenBucket::new(2.0, 3.0, SimTime::ZERO);
        for _ in 0..3 {
            assert!(b.take(SimTime::ZERO).is_ok());
        }
        assert_eq!(b.take(SimTime::ZERO), Err(SimTime::from_millis(500)));
        assert!(b.take(SimTime::from_millis(500)).is_ok());
    }

    #[test]
    fn reserve_fails_fast_past_deadline_without_taking() {
        let mut b = TokenBucket::new(80.0, 160.0, SimTime::ZERO);
        let deadline = SimTime::from_secs(10);
        // 160 burst + 10 s x 80 = 960 tokens by the deadline: 480 CSRs of 2 calls.
        let mut ok = 0;
        while b.reserve(SimTime::ZERO, 2, deadline).is_some() {
            ok += 1;
        }
        assert_eq!(ok, 480);
        // A refused reservation took nothing: still refused, not further out.
        assert!(b.reserve(SimTime::ZERO, 2, deadline).is_none());
        assert!(b
            .reserve(SimTime::from_secs(1), 2, SimTime::from_secs(11))
            .is_some());
    }

    #[test]
    fn batches_open_windows() {
        let mut p = Pacer::new(
            &Pacing::Batches {
                size: 2,
                interval: SimTime::from_secs(30),
            },
            SimTime::ZERO,
        );
        assert!(p.take(SimTime::ZERO).is_ok());
        assert!(p.take(SimTime::ZERO).is_ok());
        assert_eq!(p.take(SimTime::ZERO), Err(SimTime::from_secs(30)));
        assert!(p.take(SimTime::from_secs(30)).is_ok());
    }

    #[test]
    fn aimd_backs_off_and_recovers() {
        let pacing = Pacing::Aimd {
            initial_per_s: 5.0,
            min_per_s: 0.5,
            max_per_s: 50.0,
            increase_per_s: 1.0,
            decrease_factor: 0.5,
            error_threshold: 0.05,
            interval: SimTime::from_secs(10),
        };
        let bad = AimdWindow {
            attempts: 100,
            errors: 50,
        };
        let good = AimdWindow {
            attempts: 100,
            errors: 0,
        };
        assert_eq!(aimd_next_rate(&pacing, 5.0, &bad), 2.5);
        assert_eq!(aimd_next_rate(&pacing, 0.6, &bad), 0.5);
        assert_eq!(aimd_next_rate(&pacing, 5.0, &good), 6.0);
        assert_eq!(aimd_next_rate(&pacing, 50.0, &good), 50.0);
    }
}
