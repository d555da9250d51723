//! Axes: the x transform (seconds, linear, log10), nice tick positions and labels.

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::Ranged;

use super::{Chart, XAxis};

pub(super) fn transform_x(kind: XAxis, x: f64) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    match kind {
        XAxis::Seconds | XAxis::Linear => Some(x),
        XAxis::Log => (x > 0.0).then(|| x.log10()),
    }
}

/// The x range of all drawable data, in transformed units.
pub(super) fn x_extent(chart: &Chart) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in chart.panels.iter().flat_map(|p| p.series.iter()) {
        let band_xs = s.band.iter().flatten().map(|b| b.0);
        for x in s.points.iter().map(|p| p.0).chain(band_xs) {
            if let Some(v) = transform_x(chart.x_axis, x) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if lo > hi {
        return None;
    }
    if hi - lo < 1e-12 * lo.abs().max(1.0) {
        let pad = match chart.x_axis {
            XAxis::Seconds => 60.0,
            XAxis::Linear => lo.abs().max(1.0) * 0.5,
            XAxis::Log => 0.5,
        };
        return Some((lo - pad, hi + pad));
    }
    Some((lo, hi))
}

/// A "nice" step (1, 2, 2.5 or 5 times a power of ten) close to `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 2.5 {
        2.5
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Ticks at multiples of `step` inside `[lo, hi]`.
fn ticks_in(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last.min(first.saturating_add(200)))
        .map(|k| {
            let v = k as f64 * step;
            if v == 0.0 {
                0.0
            } else {
                v
            }
        })
        .collect()
}

/// Decimal places that show `step` exactly enough.
/// The fewest decimals that show every multiple of `step` exactly (2.5 -> 1, 0.25 -> 2,
/// 50 -> 0), at most 6.
fn decimals_for(step: f64) -> usize {
    if step <= 0.0 || !step.is_finite() {
        return 0;
    }
    (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() <= 1e-9 * scaled.abs().max(1.0)
        })
        .unwrap_or(6)
}

fn format_number(v: f64, step: f64, thousands: bool) -> String {
    let v = if v.abs() < step.abs() * 1e-9 { 0.0 } else { v };
    if v == 0.0 && thousands {
        return "0".to_string();
    }
    let s = if thousands {
        let d = decimals_for(step / 1000.0);
        format!("{:.*}k", d, v / 1000.0)
    } else {
        format!("{:.*}", decimals_for(step), v)
    };
    if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.' || c == 'k') {
        s[1..].to_string()
    } else {
        s
    }
}

/// A y axis: a nice range with its ticks.
#[derive(Clone)]
pub(super) struct YScale {
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) step: f64,
    pub(super) ticks: Vec<f64>,
    pub(super) thousands: bool,
}

impl YScale {
    pub(super) fn fit(
        values: impl Iterator<Item = f64>,
        fixed: Option<(f64, f64)>,
        max_ticks: usize,
    ) -> Self {
        let fixed = fixed.filter(|(a, b)| a.is_finite() && b.is_finite() && b > a);
        let (lo, hi, pinned) = match fixed {
            Some((a, b)) => (a, b, true),
            None => {
                let (mut lo, mut hi) = (0.0f64, f64::NEG_INFINITY);
                for v in values.filter(|v| v.is_finite()) {
                    lo = lo.min(v);
                    hi = hi.max(v);
                }
                if hi.is_nan() || hi <= lo {
                    hi = lo + 1.0;
                }
                (lo, hi, false)
            }
        };
        let step = nice_step((hi - lo) / max_ticks.max(2) as f64);
        let (lo, hi) = if pinned {
            (lo, hi)
        } else {
            (
                (lo / step).floor() * step,
                ((hi / step).ceil() * step).max(lo + step),
            )
        };
        let thousands = hi.abs().max(lo.abs()) >= 10_000.0;
        Self {
            lo,
            hi,
            step,
            ticks: ticks_in(lo, hi, step),
            thousands,
        }
    }

    pub(super) fn label(&self, v: f64) -> String {
        format_number(v, self.step, self.thousands)
    }
}

/// The shared x axis: range and ticks in transformed units, and how to label them.
pub(super) struct XScale {
    pub(super) kind: XAxis,
    pub(super) lo: f64,
    pub(super) hi: f64,
    pub(super) step: f64,
    pub(super) ticks: Vec<f64>,
}

impl XScale {
    pub(super) fn fit(chart: &Chart, max_ticks: usize) -> Self {
        let (lo, hi) = x_extent(chart).unwrap_or(match chart.x_axis {
            XAxis::Seconds => (0.0, 3600.0),
            XAxis::Linear => (0.0, 1.0),
            XAxis::Log => (0.0, 2.0),
        });
        let max_ticks = max_ticks.max(2);
        let (step, ticks) = match chart.x_axis {
            XAxis::Seconds => {
                let span_min = (hi - lo) / 60.0;
                const STEPS_MIN: [f64; 16] = [
                    0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 180.0, 240.0,
                    360.0, 720.0, 1440.0,
                ];
                let step_min = STEPS_MIN
                    .iter()
                    .copied()
                    .find(|s| span_min / s <= max_ticks as f64)
                    .unwrap_or_else(|| nice_step(span_min / max_ticks as f64));
                let step = step_min * 60.0;
                (step, ticks_in(lo, hi, step))
            }
            XAxis::Linear => {
                let step = nice_step((hi - lo) / max_ticks as f64);
                (step, ticks_in(lo, hi, step))
            }
            XAxis::Log => {
                let decades = ticks_in(lo, hi, 1.0);
                let mut ticks = Vec::new();
                let mults: &[f64] = if hi - lo <= 2.5 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                for d in (lo.floor() as i64)..=(hi.ceil() as i64) {
                    for m in mults {
                        let v = d as f64 + m.log10();
                        if v >= lo - 1e-9 && v <= hi + 1e-9 {
                            ticks.push(v);
                        }
                    }
                }
                if ticks.len() < 2 {
                    ticks = decades;
                }
                (1.0, ticks)
            }
        };
        Self {
            kind: chart.x_axis,
            lo,
            hi,
            step,
            ticks,
        }
    }

    pub(super) fn label(&self, v: f64) -> String {
        match self.kind {
            XAxis::Seconds => format_number(v / 60.0, self.step / 60.0, false),
            XAxis::Linear => format_number(v, self.step, false),
            XAxis::Log => {
                let x = 10f64.powf(v);
                let rounded = if x >= 1.0 {
                    x.round()
                } else {
                    let mag = 10f64.powf(x.log10().floor());
                    (x / mag).round() * mag
                };
                let step = if rounded >= 1.0 {
                    1.0
                } else {
                    10f64.powf(rounded.log10().floor())
                };
                format_number(rounded, step, rounded >= 10_000.0)
            }
        }
    }

    pub(super) fn spec(&self) -> Ticked {
        Ticked::new(self.lo, self.hi, &self.ticks)
    }
}

/// A linear f64 axis whose grid lines and labels fall exactly on the given ticks.
#[derive(Clone)]
pub(super) struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    pub(super) fn new(lo: f64, hi: f64, ticks: &[f64]) -> Self {
        Self {
            lo,
            hi,
            ticks: ticks.to_vec(),
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span.is_nan() || span <= 0.0 || !value.is_finite() {
            return limit.0;
        }
        let frac = (value - self.lo) / span;
        // Saturating float-to-int conversion: far-off values stay far off, never panic.
        limit.0 + ((limit.1 - limit.0) as f64 * frac + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::plot::{Panel, Series};

    #[test]
    fn fractional_steps_keep_their_decimals() {
        assert_eq!(format_number(7.5, 2.5, false), "7.5");
        assert_eq!(format_number(10.0, 2.5, false), "10.0");
        assert_eq!(format_number(0.75, 0.25, false), "0.75");
        assert_eq!(format_number(150.0, 50.0, false), "150");
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(230.0), 250.0);
        assert_eq!(ticks_in(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(format_number(0.25, 0.25, false), "0.25");
        assert_eq!(format_number(12_000.0, 2000.0, true), "12k");
        assert_eq!(format_number(-0.0, 1.0, false), "0");
        assert_eq!(format_number(1e-17, 0.2, false), "0.0");
        assert_eq!(format_number(0.0, 5000.0, true), "0");
        let c = Chart::new("", "t", XAxis::Seconds)
            .panel(Panel::new("y").series(Series::new("s", vec![(0.0, 0.0), (7200.0, 1.0)])));
        let x = XScale::fit(&c, 10);
        assert_eq!(x.step, 900.0);
        assert_eq!(x.label(1800.0), "30");
    }
}
