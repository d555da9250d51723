//! Simulated time as integer nanoseconds.

use std::fmt;
use std::ops::{Add, Sub};

/// A point in (or span of) simulated time, in nanoseconds.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SimTime(pub u64);

const NANOS_PER_SEC: u64 = 1_000_000_000;

impl SimTime {
    /// Time zero.
    pub const ZERO: SimTime = SimTime(0);
    /// The largest representable time (~584 years): used as "never".
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// Whole seconds.
    pub const fn from_secs(secs: u64) -> SimTime {
        SimTime(secs.saturating_mul(NANOS_PER_SEC))
    }

    /// Whole milliseconds.
    pub const fn from_millis(ms: u64) -> SimTime {
        SimTime(ms.saturating_mul(1_000_000))
    }

    /// Seconds as a float, rounded to the nearest nanosecond; negative and NaN give zero,
    /// values beyond the range give [`SimTime::MAX`].
    #[inline]
    pub fn from_secs_f64(secs: f64) -> SimTime {
        let ns = (secs * NANOS_PER_SEC as f64).round();
        if ns.is_nan() || ns <= 0.0 {
            SimTime::ZERO
        } else if ns >= u64::MAX as f64 {
            SimTime::MAX
        } else {
            SimTime(ns as u64)
        }
    }

    /// Seconds as a float.
    #[inline]
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// Nanoseconds.
    #[inline]
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Addition that reports overflow.
    #[inline]
    pub fn checked_add(self, rhs: SimTime) -> Option<SimTime> {
        self.0.checked_add(rhs.0).map(SimTime)
    }

    /// Addition that stops at [`SimTime::MAX`].
    #[inline]
    pub fn saturating_add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }

    /// Subtraction that stops at zero.
    #[inline]
    pub fn saturating_sub(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(rhs.0))
    }

    /// Multiplies a span by a float factor (rounded, saturating).
    #[inline]
    pub fn mul_f64(self, factor: f64) -> SimTime {
        SimTime::from_secs_f64(self.as_secs_f64() * factor)
    }
}

/// Saturating: simulated time never wraps.
impl Add for SimTime {
    type Output = SimTime;
    #[inline]
    fn add(self, rhs: SimTime) -> SimTime {
        self.saturating_add(rhs)
    }
}

/// Saturating at zero: a span is never negative.
impl Sub for SimTime {
    type Output = SimTime;
    #[inline]
    fn sub(self, rhs: SimTime) -> SimTime {
        self.saturating_sub(rhs)
    }
}

impl fmt::Debug for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self)
    }
}

/// Formats as seconds with millisecond precision, e.g. `12.345s`.
impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == SimTime::MAX {
            return f.write_str("never");
        }
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}
