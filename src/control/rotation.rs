//! When istio-agent rotates its workload certificate.
//!
//! Sources (istio/istio): `pilot/cmd/pilot-agent/options/options.go` (`SECRET_TTL` 24 h,
//! `SECRET_GRACE_PERIOD_RATIO` 0.5 in every tag; `SECRET_GRACE_PERIOD_RATIO_JITTER`
//! 0.01 from 1.24.0, e023232ad20 / #52102, absent from every 1.22.x and 1.23.x tag) and
//! `security/pkg/nodeagent/cache/secretcache.go` `rotateTime` (1.24.6 `:652-668`, HEAD
//! `:858-871`; `SecretManagerClient.rotateTime` at 1.10.6 `:590`).
//!
//! # Semantics
//! - The agent requests `SECRET_TTL` (24 h); the certificate's lifetime is what the
//!   signer granted: `lifetime = not_after - created`, where `created` is when the
//!   agent received it (istio-csr, for one, caps it at 1 h).
//! - Rotation at `not_after - ratio x lifetime`, never before `now`; `ratio = 0.5`.
//! - From 1.24.0: `ratio = 0.5 + U[0,1) x 0.01 x (±1)`, clamped to [0, 1]: for 24 h a
//!   band of ±14.4 min around 12 h. The draw order is the Go code's: the magnitude, then
//!   the sign. Before 1.24 no draw is made: every pod issued at `t` rotates at exactly
//!   `t + lifetime / 2`.
//! - A rotation is a new CSR while the old certificate stays valid until `not_after`;
//!   if none arrives by then, the pod loses its certificate (the owner's business).

use super::version::IstioVersion;
use crate::engine::rng::unit_f64;
use crate::engine::{RngStream, SimTime};

/// `SECRET_TTL`.
pub const SECRET_TTL: SimTime = SimTime::from_secs(24 * 3600);

/// istio-agent's rotation rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RotationPolicy {
    /// `SECRET_TTL`: the lifetime asked for.
    pub ttl: SimTime,
    /// `SECRET_GRACE_PERIOD_RATIO` (0.5).
    pub grace_ratio: f64,
    /// `SECRET_GRACE_PERIOD_RATIO_JITTER` (0.01 from 1.24, else none).
    pub jitter: f64,
}

impl RotationPolicy {
    /// The defaults of Istio `version`.
    pub fn for_release(version: IstioVersion) -> RotationPolicy {
        RotationPolicy {
            ttl: SECRET_TTL,
            grace_ratio: 0.5,
            jitter: if version.has_rotation_jitter() {
                0.01
            } else {
                0.0
            },
        }
    }

    /// When to rotate a certificate received at `created` that expires at `not_after`,
    /// deciding at `now` (normally `created`). Draws from `rng` only when jittered.
    pub fn rotate_at(
        &self,
        now: SimTime,
        created: SimTime,
        not_after: SimTime,
        rng: &mut RngStream,
    ) -> SimTime {
        let mut ratio = self.grace_ratio;
        if self.jitter > 0.0 {
            let magnitude = unit_f64(rng) * self.jitter;
            let sign = if rng_bit(rng) { 1.0 } else { -1.0 };
            ratio = (ratio + magnitude * sign).clamp(0.0, 1.0);
        }
        let lifetime = not_after - created;
        let grace = lifetime.mul_f64(ratio);
        (not_after - grace).max(now)
    }
}

fn rng_bit(rng: &mut RngStream) -> bool {
    use rand::Rng as _;
    rng.next_u64() & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rng::named_stream;

    #[test]
    fn rotation_is_exactly_half_the_lifetime_before_1_24() {
        let p = RotationPolicy::for_release(IstioVersion::parse("1.22.8").unwrap());
        let mut rng = named_stream(1, "rotation-jitter/c");
        let before = rng.clone();
        let t = SimTime::from_secs(1000);
        let at = p.rotate_at(t, t, t + SECRET_TTL, &mut rng);
        assert_eq!(at, t + SimTime::from_secs(12 * 3600));
        assert_eq!(rng, before, "no draw");
        // A 1 h certificate (istio-csr's cap) rotates after 30 min.
        let at = p.rotate_at(t, t, t + SimTime::from_secs(3600), &mut rng);
        assert_eq!(at, t + SimTime::from_secs(1800));
    }

    #[test]
    fn rotation_jitters_within_the_band_from_1_24() {
        let p = RotationPolicy::for_release(IstioVersion::parse("1.24.0").unwrap());
        let mut rng = named_stream(2, "rotation-jitter/c");
        let t = SimTime::ZERO;
        let half = 12.0 * 3600.0;
        let band = 0.01 * 24.0 * 3600.0; // 14.4 min
        let (mut lo, mut hi, mut early, mut late) = (f64::MAX, 0.0f64, 0, 0);
        for _ in 0..10_000 {
            let at = p.rotate_at(t, t, t + SECRET_TTL, &mut rng).as_secs_f64();
            assert!(at >= half - band - 1e-6 && at <= half + band + 1e-6, "{at}");
            lo = lo.min(at);
            hi = hi.max(at);
            if at < half {
                early += 1;
            } else {
                late += 1;
            }
        }
        assert!(
            lo < half - 0.95 * band && hi > half + 0.95 * band,
            "{lo} {hi}"
        );
        assert!((4500..5500).contains(&early) && (4500..5500).contains(&late));
    }

    #[test]
    fn rotation_never_before_now() {
        let p = RotationPolicy::for_release(IstioVersion::parse("1.20").unwrap());
        let mut rng = named_stream(3, "r");
        let now = SimTime::from_secs(100_000);
        let at = p.rotate_at(now, SimTime::ZERO, SimTime::from_secs(150_000), &mut rng);
        assert_eq!(at, now);
    }
}
