//! Charts: stacked panels sharing one x axis, rendered to SVG text or PNG bytes.
//!
//! A [`Chart`] is plain data: a title, an x axis ([`XAxis`]), one or more [`Panel`]s
//! stacked vertically (each with its own y axis, an optional right axis, and a legend to
//! its right), and labelled vertical [`Marker`]s drawn across every panel. Rendering is
//! deterministic: the same chart gives the same SVG text and the same PNG bytes.
//!
//! Bad data never panics: non-finite values are gaps in lines and bands, points outside a
//! log axis are skipped, and a panel with nothing to draw says "no data".
//!
//! Text is measured and drawn with DejaVu Sans, compiled into the binary and registered
//! with plotters once, so no system font library is needed.

use std::sync::OnceLock;

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle, FontTransform};

use super::{ReportError, Result};

/// DejaVu Sans (Bitstream Vera license, see `assets/fonts/DejaVuSans-LICENSE.txt`).
static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name the bundled font is registered under.
const FAMILY: &str = "sans-serif";

/// Default width of a chart in pixels.
pub const DEFAULT_WIDTH: u32 = 1200;

/// Largest accepted width or height in pixels.
const MAX_SIDE: u32 = 8000;

/// How x values are read and labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    /// x is a time in seconds; ticks fall on whole minutes and are labelled in minutes
    /// (the axis label gets " (min)" appended).
    Seconds,
    /// x is a plain number on a linear axis.
    Linear,
    /// x is a positive number on a log10 axis; points with x <= 0 are skipped.
    Log,
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Straight segments between points.
    Line,
    /// Straight segments, dashed (for references such as a desired count).
    Dashed,
    /// A value holds until the next point (step after), for sampled counts.
    Step,
    /// A dot per point, no line.
    Markers,
    /// Straight segments with a dot per point (sparse grids such as sweep points).
    LineMarkers,
}

/// Which y axis of its panel a series is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// The left y axis.
    Left,
    /// The right y axis (its legend entry says so).
    Right,
}

/// One named series of `(x, y)` points, drawn in the given order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// The points; non-finite values are gaps.
    pub points: Vec<(f64, f64)>,
    /// An optional interval `(x, lo, hi)` drawn as a translucent band under the line.
    pub band: Option<Vec<(f64, f64, f64)>>,
    /// How the points are drawn.
    pub style: Style,
    /// Which y axis the series uses.
    pub axis: Axis,
    /// Colour as `(r, g, b)`; `None` takes the next colour of the palette.
    pub color: Option<(u8, u8, u8)>,
}

impl Series {
    /// A solid line on the left axis with a palette colour.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            band: None,
            style: Style::Line,
            axis: Axis::Left,
            color: None,
        }
    }

    /// Sets how the series is drawn.
    pub fn style(mut self, style: Style) -> Self {
        self.style = style;
        self
    }

    /// Adds an interval band of `(x, lo, hi)` triples.
    pub fn band(mut self, band: Vec<(f64, f64, f64)>) -> Self {
        self.band = Some(band);
        self
    }

    /// Measures the series on the panel's right axis.
    pub fn right_axis(mut self) -> Self {
        self.axis = Axis::Right;
        self
    }

    /// Sets the colour.
    pub fn color(mut self, rgb: (u8, u8, u8)) -> Self {
        self.color = Some(rgb);
        self
    }
}

/// One panel: a plot with its own y axes, a heading and a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// Heading shown above the plot (what the left y axis measures).
    pub y_label: String,
    /// The series, drawn in order (bands first).
    pub series: Vec<Series>,
    /// Fixed left y range; `None` fits the data (and includes 0).
    pub y_range: Option<(f64, f64)>,
    /// Label of the right y axis, if any series uses it.
    pub y2_label: Option<String>,
    /// Fixed right y range; `None` fits the data (and includes 0).
    pub y2_range: Option<(f64, f64)>,
}

impl Panel {
    /// An empty panel with a heading.
    pub fn new(y_label: impl Into<String>) -> Self {
        Self {
            y_label: y_label.into(),
            series: Vec::new(),
            y_range: None,
            y2_label: None,
            y2_range: None,
        }
    }

    /// Adds a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Fixes the left y range.
    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    /// Labels the right y axis and optionally fixes its range.
    pub fn y2(mut self, label: impl Into<String>, range: Option<(f64, f64)>) -> Self {
        self.y2_label = Some(label.into());
        self.y2_range = range;
        self
    }
}

/// A labelled vertical line across all panels at `x` (e.g. an intervention).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Where the line is, in x units.
    pub x: f64,
    /// Its label, shown above the top panel.
    pub label: String,
}

impl Marker {
    /// A marker at `x`.
    pub fn new(x: f64, label: impl Into<String>) -> Self {
        Self {
            x,
            label: label.into(),
        }
    }
}

/// A figure: panels stacked top to bottom sharing one x axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Title above the figure.
    pub title: String,
    /// Label of the shared x axis (under the bottom panel).
    pub x_label: String,
    /// How x values are read and labelled.
    pub x_axis: XAxis,
    /// The panels, top to bottom. No panel draws one empty panel.
    pub panels: Vec<Panel>,
    /// Vertical lines across all panels.
    pub markers: Vec<Marker>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels; `None` picks one from the number of panels.
    pub height: Option<u32>,
}

impl Chart {
    /// A chart with no panels yet, [`DEFAULT_WIDTH`] wide, automatic height.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, x_axis: XAxis) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            x_axis,
            panels: Vec::new(),
            markers: Vec::new(),
            width: DEFAULT_WIDTH,
            height: None,
        }
    }

    /// Adds a panel under the existing ones.
    pub fn panel(mut self, panel: Panel) -> Self {
        self.panels.push(panel);
        self
    }

    /// Adds a vertical marker.
    pub fn marker(mut self, x: f64, label: impl Into<String>) -> Self {
        self.markers.push(Marker::new(x, label));
        self
    }

    /// The size in pixels this chart renders at.
    pub fn size(&self) -> (u32, u32) {
        (self.width, Layout::new(self).height)
    }

    /// Renders the chart as SVG text.
    pub fn to_svg(&self) -> Result<String> {
        ensure_font()?;
        let (w, h) = self.checked_size()?;
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (w, h)).into_drawing_area();
            render(self, &root)?;
            root.present().map_err(draw_error)?;
        }
        Ok(out)
    }

    /// Renders the chart as PNG bytes (8-bit RGB), encoded in memory.
    pub fn to_png(&self) -> Result<Vec<u8>> {
        ensure_font()?;
        let (w, h) = self.checked_size()?;
        let mut pixels = vec![0u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
            render(self, &root)?;
            root.present().map_err(draw_error)?;
        }
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, w, h);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder
                .write_header()
                .map_err(|e| ReportError::Png(e.to_string()))?;
            writer
                .write_image_data(&pixels)
                .map_err(|e| ReportError::Png(e.to_string()))?;
            writer
                .finish()
                .map_err(|e| ReportError::Png(e.to_string()))?;
        }
        Ok(png_bytes)
    }

    fn checked_size(&self) -> Result<(u32, u32)> {
        let (w, h) = self.size();
        if !(300..=MAX_SIDE).contains(&w) || !(150..=MAX_SIDE).contains(&h) {
            return Err(ReportError::InvalidChart(format!(
                "size {w}x{h} px is outside 300..={MAX_SIDE} x 150..={MAX_SIDE}"
            )));
        }
        let layout = Layout::new(self);
        if layout.plot_height < 40 {
            return Err(ReportError::InvalidChart(format!(
                "height {h} px leaves {} px per panel for {} panels",
                layout.plot_height,
                self.panels.len().max(1)
            )));
        }
        Ok((w, h))
    }
}

/// Registers the bundled font once per process.
fn ensure_font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok =
        *REGISTERED.get_or_init(|| register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_ok());
    if ok {
        Ok(())
    } else {
        Err(ReportError::Font)
    }
}

fn draw_error(e: impl std::fmt::Display) -> ReportError {
    ReportError::Draw(e.to_string())
}

// ---------------------------------------------------------------------------------------
// Look

/// Tableau 10: distinct, print-friendly, colour-blind-aware enough for a handful of lines.
const PALETTE: [(u8, u8, u8); 10] = [
    (78, 121, 167),
    (242, 142, 43),
    (225, 87, 89),
    (118, 183, 178),
    (89, 161, 79),
    (237, 201, 72),
    (176, 122, 161),
    (255, 157, 167),
    (156, 117, 95),
    (186, 176, 172),
];
const INK: RGBColor = RGBColor(33, 37, 41);
const MUTED: RGBColor = RGBColor(90, 96, 104);
const GRID: RGBColor = RGBColor(228, 230, 233);
const AXIS: RGBColor = RGBColor(150, 155, 160);
const MARKER: RGBColor = RGBColor(110, 110, 110);

const TITLE_PX: u32 = 22;
const HEADING_PX: u32 = 16;
const TICK_PX: u32 = 14;
const LEGEND_PX: u32 = 14;
const MARKER_PX: u32 = 14;

const MARGIN: u32 = 14;
const TITLE_H: u32 = 44;
const MARKER_ROW_H: u32 = 19;
const HEADING_H: u32 = 26;
const X_AREA_H: u32 = 50;
const Y_AREA_W: u32 = 66;
const LEGEND_ROW_H: u32 = 20;
const SWATCH_W: i32 = 26;

fn font(px: u32, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FAMILY, px as f64).into_font()).color(color)
}

fn rgb(c: (u8, u8, u8)) -> RGBColor {
    RGBColor(c.0, c.1, c.2)
}

/// Width in pixels of `text` at `px` in the bundled font (an estimate of ~0.6 em per
/// character if the font is unavailable).
fn text_width(text: &str, px: u32) -> u32 {
    let measured = ensure_font()
        .ok()
        .and_then(|()| (FAMILY, px as f64).into_font().box_size(text).ok());
    measured.map_or_else(
        || (text.chars().count() as f64 * px as f64 * 0.6).ceil() as u32,
        |(w, _)| w,
    )
}

// ---------------------------------------------------------------------------------------
// Layout

struct Layout {
    height: u32,
    title_h: u32,
    header_h: u32,
    marker_rows: Vec<u32>,
    panel_h: u32,
    plot_height: i64,
    legend_w: u32,
    right_w: u32,
}

impl Layout {
    fn new(chart: &Chart) -> Self {
        let n = chart.panels.len().max(1) as u32;
        let right_w = if chart.panels.iter().any(has_right_axis) {
            Y_AREA_W + 18
        } else {
            MARGIN
        };
        let widest = chart
            .panels
            .iter()
            .flat_map(|p| p.series.iter())
            .map(|s| text_width(&legend_text(s), LEGEND_PX))
            .max()
            .unwrap_or(0);
        let legend_w = (widest + SWATCH_W as u32 + 30).clamp(150, 340);
        // Marker label rows. A label hangs like a flag to the right of its line, which
        // runs down from the label's row through the rows below to the plot; a marker takes
        // the top-most row where neither its label nor its line crosses another label.
        let plot_left = MARGIN + Y_AREA_W;
        let plot_right = chart.width.saturating_sub(legend_w + right_w);
        let xr = x_extent(chart);
        let pixel_x: Vec<Option<f64>> = chart
            .markers
            .iter()
            .map(|m| {
                let (lo, hi) = xr?;
                let v = transform_x(chart.x_axis, m.x)?;
                (v >= lo && v <= hi).then(|| {
                    plot_left as f64 + (v - lo) / (hi - lo) * (plot_right - plot_left) as f64
                })
            })
            .collect();
        let mut order: Vec<usize> = (0..chart.markers.len())
            .filter(|&k| pixel_x[k].is_some())
            .collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (pixel_x[a].unwrap_or(0.0), pixel_x[b].unwrap_or(0.0));
            pa.total_cmp(&pb)
        });
        let mut row_ends: Vec<i64> = Vec::new();
        let mut marker_rows = vec![u32::MAX; chart.markers.len()];
        for k in order {
            let px = pixel_x[k].unwrap_or(0.0) as i64;
            let row = (0..=row_ends.len())
                .find(|&r| row_ends[r..].iter().all(|&end| end + 6 < px))
                .unwrap_or(row_ends.len());
            if row == row_ends.len() {
                row_ends.push(0);
            }
            row_ends[row] = px + 5 + text_width(&chart.markers[k].label, MARKER_PX) as i64;
            marker_rows[k] = row as u32;
        }
        let title_h = if chart.title.is_empty() {
            MARGIN
        } else {
            TITLE_H
        };
        let header_h = title_h + row_ends.len() as u32 * MARKER_ROW_H;
        let footer = X_AREA_H + MARGIN;
        let (height, panel_h) = match chart.height {
            Some(h) => (h, h.saturating_sub(header_h + footer) / n),
            None => {
                let plot = match n {
                    1 => 460,
                    2 => 280,
                    _ => 150,
                };
                let panel_h = plot + HEADING_H;
                (header_h + n * panel_h + footer, panel_h)
            }
        };
        Self {
            height,
            title_h,
            header_h,
            marker_rows,
            panel_h,
            plot_height: panel_h as i64 - HEADING_H as i64 - 6,
            legend_w,
            right_w,
        }
    }
}

fn has_right_axis(p: &Panel) -> bool {
    p.series.iter().any(|s| s.axis == Axis::Right)
}

fn legend_text(s: &Series) -> String {
    match s.axis {
        Axis::Left => s.name.clone(),
        Axis::Right => format!("{} (right axis)", s.name),
    }
}

// ---------------------------------------------------------------------------------------
// Axes and ticks

fn transform_x(kind: XAxis, x: f64) -> Option<f64> {
    if !x.is_finite() {
        return None;
    }
    match kind {
        XAxis::Seconds | XAxis::Linear => Some(x),
        XAxis::Log => (x > 0.0).then(|| x.log10()),
    }
}

/// The x range of all drawable data, in transformed units.
fn x_extent(chart: &Chart) -> Option<(f64, f64)> {
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
    (first..=last.min(first + 200))
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
fn decimals_for(step: f64) -> usize {
    if step >= 1.0 || step <= 0.0 || !step.is_finite() {
        0
    } else {
        ((-step.log10()).ceil() as usize + usize::from(nice_mantissa_is_2_5(step))).min(6)
    }
}

fn nice_mantissa_is_2_5(step: f64) -> bool {
    let mag = 10f64.powf(step.log10().floor());
    ((step / mag) - 2.5).abs() < 1e-9
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
struct YScale {
    lo: f64,
    hi: f64,
    step: f64,
    ticks: Vec<f64>,
    thousands: bool,
}

impl YScale {
    fn fit(values: impl Iterator<Item = f64>, fixed: Option<(f64, f64)>, max_ticks: usize) -> Self {
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

    fn label(&self, v: f64) -> String {
        format_number(v, self.step, self.thousands)
    }
}

/// The shared x axis: range and ticks in transformed units, and how to label them.
struct XScale {
    kind: XAxis,
    lo: f64,
    hi: f64,
    step: f64,
    ticks: Vec<f64>,
}

impl XScale {
    fn fit(chart: &Chart, max_ticks: usize) -> Self {
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

    fn label(&self, v: f64) -> String {
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

    fn spec(&self) -> Ticked {
        Ticked::new(self.lo, self.hi, &self.ticks)
    }
}

/// A linear f64 axis whose grid lines and labels fall exactly on the given ticks.
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ticked {
    fn new(lo: f64, hi: f64, ticks: &[f64]) -> Self {
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

// ---------------------------------------------------------------------------------------
// Geometry of series

/// Runs of consecutive drawable points, in transformed x and clamped y.
fn runs(kind: XAxis, points: &[(f64, f64)], y: &YScale) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    for &(x, v) in points {
        match (transform_x(kind, x), v.is_finite()) {
            (Some(tx), true) => cur.push((tx, v.clamp(y.lo, y.hi))),
            _ => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn step_path(run: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut path = Vec::with_capacity(run.len() * 2);
    for w in run.windows(2) {
        path.push(w[0]);
        path.push((w[1].0, w[0].1));
    }
    if let Some(&last) = run.last() {
        path.push(last);
    }
    path
}

/// Band polygons: one per run of drawable `(x, lo, hi)` triples.
fn band_polygons(kind: XAxis, band: &[(f64, f64, f64)], y: &YScale) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let mut cur: Vec<(f64, f64, f64)> = Vec::new();
    let flush = |cur: &mut Vec<(f64, f64, f64)>, out: &mut Vec<Vec<(f64, f64)>>| {
        if cur.len() >= 2 {
            let mut poly: Vec<(f64, f64)> = cur.iter().map(|&(x, lo, _)| (x, lo)).collect();
            poly.extend(cur.iter().rev().map(|&(x, _, hi)| (x, hi)));
            out.push(poly);
        }
        cur.clear();
    };
    for &(x, lo, hi) in band {
        match (transform_x(kind, x), lo.is_finite() && hi.is_finite()) {
            (Some(tx), true) => {
                let (a, b) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                cur.push((tx, a.clamp(y.lo, y.hi), b.clamp(y.lo, y.hi)));
            }
            _ => flush(&mut cur, &mut out),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn series_values(s: &Series) -> impl Iterator<Item = f64> + '_ {
    s.points.iter().map(|p| p.1).chain(
        s.band
            .iter()
            .flatten()
            .flat_map(|&(_, lo, hi)| [lo, hi].into_iter()),
    )
}

// ---------------------------------------------------------------------------------------
// Rendering

fn render<DB: DrawingBackend>(chart: &Chart, root: &DrawingArea<DB, Shift>) -> Result<()> {
    let layout = Layout::new(chart);
    let (w, _) = root.dim_in_pixel();
    root.fill(&WHITE).map_err(draw_error)?;
    if !chart.title.is_empty() {
        root.draw_text(
            &chart.title,
            &font(TITLE_PX, &INK),
            (MARGIN as i32, MARGIN as i32),
        )
        .map_err(draw_error)?;
    }

    let empty = [Panel::new("")];
    let panels: &[Panel] = if chart.panels.is_empty() {
        &empty
    } else {
        &chart.panels
    };
    let n = panels.len();
    let plot_w = w.saturating_sub(layout.legend_w + layout.right_w + Y_AREA_W + MARGIN);
    let x = XScale::fit(chart, (plot_w / 95).clamp(3, 14) as usize);
    let y_ticks = ((layout.plot_height / 34).clamp(2, 8)) as usize;
    let x_desc = match chart.x_axis {
        XAxis::Seconds if !chart.x_label.is_empty() => format!("{} (min)", chart.x_label),
        XAxis::Seconds => "min".to_string(),
        _ => chart.x_label.clone(),
    };

    let mut breaks = vec![layout.header_h];
    for i in 1..n as u32 {
        breaks.push(layout.header_h + i * layout.panel_h);
    }
    let rows = root.split_by_breakpoints::<u32, u32, _, _>([], breaks);
    let mut top_plot: Option<(i32, Vec<i32>)> = None;

    for (i, (panel, area)) in panels.iter().zip(rows.iter().skip(1)).enumerate() {
        let last = i + 1 == n;
        let (plot_area, legend_area) = area.split_horizontally(w - layout.legend_w);
        let scale_of = |axis: Axis, fixed: Option<(f64, f64)>| {
            YScale::fit(
                panel
                    .series
                    .iter()
                    .filter(|s| s.axis == axis)
                    .flat_map(series_values),
                fixed,
                y_ticks,
            )
        };
        let left = scale_of(Axis::Left, panel.y_range);
        let right = scale_of(Axis::Right, panel.y2_range);
        let mut chart_ctx = ChartBuilder::on(&plot_area)
            .margin_top(HEADING_H)
            .margin_left(MARGIN)
            .margin_right(layout.right_w)
            .margin_bottom(if last { MARGIN } else { 6 })
            .y_label_area_size(Y_AREA_W)
            .x_label_area_size(if last { X_AREA_H } else { 0 })
            .build_cartesian_2d(x.spec(), Ticked::new(left.lo, left.hi, &left.ticks))
            .map_err(draw_error)?;
        let x_fmt = |v: &f64| x.label(*v);
        let y_fmt = |v: &f64| left.label(*v);
        {
            let mut mesh = chart_ctx.configure_mesh();
            mesh.bold_line_style(GRID)
                .axis_style(AXIS)
                .label_style(font(TICK_PX, &MUTED))
                .axis_desc_style(font(TICK_PX + 1, &INK))
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .set_all_tick_mark_size(4);
            if last && !x_desc.is_empty() {
                mesh.x_desc(x_desc.as_str());
            }
            mesh.draw().map_err(draw_error)?;
        }
        let plot = chart_ctx.plotting_area().clone();
        let (px_range, py_range) = plot.get_pixel_range();
        if has_right_axis(panel) {
            draw_right_axis(root, &plot, &left, &right, panel.y2_label.as_deref())?;
        }

        // Heading, aligned with the plot's left edge.
        let (base_x, _) = area.get_base_pixel();
        area.draw_text(
            &panel.y_label,
            &font(HEADING_PX, &INK),
            (px_range.start - base_x, 5),
        )
        .map_err(draw_error)?;

        // Bands first, then lines; right-axis values are mapped onto the left scale.
        let colors: Vec<RGBColor> = panel
            .series
            .iter()
            .enumerate()
            .map(|(k, s)| rgb(s.color.unwrap_or(PALETTE[k % PALETTE.len()])))
            .collect();
        let on_left = |s: &Series, pts: Vec<(f64, f64)>| match s.axis {
            Axis::Left => pts,
            Axis::Right => pts
                .into_iter()
                .map(|(px, v)| {
                    (
                        px,
                        left.lo + (v - right.lo) / (right.hi - right.lo) * (left.hi - left.lo),
                    )
                })
                .collect(),
        };
        let scale_for = |s: &Series| match s.axis {
            Axis::Left => &left,
            Axis::Right => &right,
        };
        let mut drawn_any = false;
        for (s, &c) in panel.series.iter().zip(&colors) {
            for poly in band_polygons(chart.x_axis, s.band.as_deref().unwrap_or(&[]), scale_for(s))
            {
                plot.draw(&Polygon::new(on_left(s, poly), c.mix(0.18).filled()))
                    .map_err(draw_error)?;
                drawn_any = true;
            }
        }
        for (s, &c) in panel.series.iter().zip(&colors) {
            let line = c.stroke_width(2);
            for run in runs(chart.x_axis, &s.points, scale_for(s)) {
                drawn_any = true;
                let run = on_left(s, run);
                match s.style {
                    Style::Line | Style::LineMarkers => plot
                        .draw(&PathElement::new(run.clone(), line))
                        .map_err(draw_error)?,
                    Style::Step => plot
                        .draw(&PathElement::new(step_path(&run), line))
                        .map_err(draw_error)?,
                    Style::Dashed => plot
                        .draw(&DashedPathElement::new(run.clone(), 7, 5, line))
                        .map_err(draw_error)?,
                    Style::Markers => {}
                }
                if matches!(s.style, Style::Markers | Style::LineMarkers) {
                    for p in run {
                        plot.draw(&Circle::new(p, 3, c.filled()))
                            .map_err(draw_error)?;
                    }
                }
            }
        }
        if !drawn_any {
            let style = font(HEADING_PX, &AXIS).pos(Pos::new(HPos::Center, VPos::Center));
            root.draw_text(
                "no data",
                &style,
                (
                    (px_range.start + px_range.end) / 2,
                    (py_range.start + py_range.end) / 2,
                ),
            )
            .map_err(draw_error)?;
        }

        // Markers: a dashed vertical line in every panel.
        let mut marker_px = Vec::new();
        for m in &chart.markers {
            match transform_x(chart.x_axis, m.x).filter(|v| *v >= x.lo && *v <= x.hi) {
                Some(v) => {
                    plot.draw(&DashedPathElement::new(
                        vec![(v, left.lo), (v, left.hi)],
                        5,
                        4,
                        MARKER.stroke_width(1),
                    ))
                    .map_err(draw_error)?;
                    marker_px.push(plot.map_coordinate(&(v, left.lo)).0);
                }
                None => marker_px.push(i32::MIN),
            }
        }
        if i == 0 {
            top_plot = Some((py_range.start, marker_px));
        }

        draw_legend(&legend_area, panel, &colors, layout.panel_h)?;
    }

    // Marker labels above the top panel, like flags: a line from the label's row down to
    // the plot, the text to the right of the line.
    if let Some((plot_top, xs)) = top_plot {
        for ((m, &px), &row) in chart.markers.iter().zip(&xs).zip(&layout.marker_rows) {
            if px == i32::MIN || row == u32::MAX {
                continue;
            }
            let ty = (layout.title_h + row * MARKER_ROW_H) as i32;
            let tw = text_width(&m.label, MARKER_PX) as i32;
            let tx = (px + 5).min(w as i32 - tw - MARGIN as i32);
            root.draw_text(&m.label, &font(MARKER_PX, &INK), (tx, ty + 1))
                .map_err(draw_error)?;
            root.draw(&PathElement::new(
                vec![(px, ty), (px, plot_top)],
                MARKER.stroke_width(1),
            ))
            .map_err(draw_error)?;
        }
    }
    Ok(())
}

/// The right y axis of a panel: axis line, ticks, labels and its rotated description,
/// drawn by hand at the positions of `right`'s ticks mapped onto the left scale.
fn draw_right_axis<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &PanelArea<DB>,
    left: &YScale,
    right: &YScale,
    label: Option<&str>,
) -> Result<()> {
    let (px, py) = plot.get_pixel_range();
    let x_edge = px.end;
    root.draw(&PathElement::new(
        vec![(x_edge, py.start), (x_edge, py.end)],
        AXIS.stroke_width(1),
    ))
    .map_err(draw_error)?;
    let style = font(TICK_PX, &MUTED).pos(Pos::new(HPos::Left, VPos::Center));
    for &t in &right.ticks {
        let v = left.lo + (t - right.lo) / (right.hi - right.lo) * (left.hi - left.lo);
        let (_, y) = plot.map_coordinate(&(0.0, v));
        let y = y.clamp(py.start, py.end);
        root.draw(&PathElement::new(
            vec![(x_edge, y), (x_edge + 4, y)],
            AXIS.stroke_width(1),
        ))
        .map_err(draw_error)?;
        root.draw_text(&right.label(t), &style, (x_edge + 7, y))
            .map_err(draw_error)?;
    }
    if let Some(label) = label {
        let style = font(TICK_PX, &MUTED)
            .transform(FontTransform::Rotate90)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let widest = right
            .ticks
            .iter()
            .map(|&t| text_width(&right.label(t), TICK_PX) as i32)
            .max()
            .unwrap_or(0);
        root.draw_text(
            label,
            &style,
            (x_edge + 7 + widest + 14, (py.start + py.end) / 2),
        )
        .map_err(draw_error)?;
    }
    Ok(())
}

type PanelArea<DB> = DrawingArea<DB, Cartesian2d<Ticked, Ticked>>;

/// The legend of one panel, in the column to its right.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    colors: &[RGBColor],
    panel_h: u32,
) -> Result<()> {
    let top = HEADING_H as i32 + 2;
    let (w, _) = area.dim_in_pixel();
    let max_text_w = w.saturating_sub(SWATCH_W as u32 + 22);
    let rows_fit = ((panel_h as i32 - top) / LEGEND_ROW_H as i32).max(1) as usize;
    let style = font(LEGEND_PX, &INK);
    let n = panel.series.len();
    for (k, (s, &c)) in panel.series.iter().zip(colors).enumerate() {
        let y = top + k as i32 * LEGEND_ROW_H as i32;
        if k + 1 == rows_fit && n > rows_fit {
            area.draw_text(
                &format!("+{} more", n - k),
                &font(LEGEND_PX, &MUTED),
                (8, y),
            )
            .map_err(draw_error)?;
            break;
        }
        let mid = y + LEGEND_ROW_H as i32 / 2 - 2;
        let (x0, x1) = (8, 8 + SWATCH_W);
        if s.band.is_some() {
            area.draw(&Rectangle::new(
                [(x0, mid - 6), (x1, mid + 6)],
                c.mix(0.18).filled(),
            ))
            .map_err(draw_error)?;
        }
        match s.style {
            Style::Line | Style::Step | Style::LineMarkers => area
                .draw(&PathElement::new(
                    vec![(x0, mid), (x1, mid)],
                    c.stroke_width(2),
                ))
                .map_err(draw_error)?,
            Style::Dashed => {
                for (a, b) in [(x0, x0 + 8), (x0 + 13, x0 + 21)] {
                    area.draw(&PathElement::new(
                        vec![(a, mid), (b, mid)],
                        c.stroke_width(2),
                    ))
                    .map_err(draw_error)?;
                }
            }
            Style::Markers => {}
        }
        if matches!(s.style, Style::Markers | Style::LineMarkers) {
            area.draw(&Circle::new(((x0 + x1) / 2, mid), 3, c.filled()))
                .map_err(draw_error)?;
        }
        let text = fit_text(area, &legend_text(s), &style, max_text_w);
        area.draw_text(&text, &style, (x1 + 8, y + 1))
            .map_err(draw_error)?;
    }
    Ok(())
}

/// `text`, shortened with an ellipsis until it is at most `max_w` pixels wide.
fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    max_w: u32,
) -> String {
    let width = |s: &str| area.estimate_text_size(s, style).map_or(0, |(w, _)| w);
    if width(text) <= max_w {
        return text.to_string();
    }
    let mut chars: Vec<char> = text.chars().collect();
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().collect::<String>() + "…";
        if width(&candidate) <= max_w {
            return candidate;
        }
    }
    "…".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Chart {
        let pts: Vec<(f64, f64)> = (0..=120)
            .map(|i| (i as f64 * 60.0, (i as f64).sqrt()))
            .collect();
        Chart::new("Sample", "time", XAxis::Seconds)
            .panel(
                Panel::new("Pods")
                    .series(Series::new("ready", pts.clone()))
                    .series(
                        Series::new("pending", pts.iter().map(|p| (p.0, 1.0)).collect())
                            .style(Style::Step),
                    ),
            )
            .panel(
                Panel::new("CA queue")
                    .series(Series::new("queue <b>&", pts.clone()).style(Style::Dashed))
                    .series(
                        Series::new("utilization", pts.iter().map(|p| (p.0, 50.0)).collect())
                            .right_axis(),
                    )
                    .y2("%", Some((0.0, 100.0))),
            )
            .marker(1200.0, "istiod 40->1")
            .marker(1260.0, "delete failed CSRs")
    }

    #[test]
    fn svg_is_deterministic_and_names_every_series() {
        let c = sample();
        let a = c.to_svg().unwrap();
        let b = c.to_svg().unwrap();
        assert_eq!(a, b);
        for name in [
            "ready",
            "pending",
            "queue &lt;b&gt;&amp;",
            "utilization (right axis)",
            "istiod 40-&gt;1",
        ] {
            assert!(a.contains(name), "missing {name}");
        }
    }

    #[test]
    fn png_has_the_chart_size() {
        let c = sample();
        let bytes = c.to_png().unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), c.size());
    }

    #[test]
    fn empty_and_nan_data_render() {
        let empty = Chart::new("", "", XAxis::Linear);
        assert!(empty.to_svg().unwrap().contains("no data"));
        assert!(empty.to_png().is_ok());
        let nan = Chart::new("NaN", "x", XAxis::Log)
            .panel(
                Panel::new("y")
                    .series(Series::new(
                        "all nan",
                        vec![(f64::NAN, 1.0), (1.0, f64::NAN)],
                    ))
                    .series(Series::new("negative x", vec![(-1.0, 1.0), (0.0, 2.0)]))
                    .series(Series::new("inf", vec![(1.0, f64::INFINITY)]).band(vec![(
                        1.0,
                        f64::NAN,
                        2.0,
                    )])),
            )
            .marker(f64::NAN, "nowhere");
        assert!(nan.to_svg().unwrap().contains("no data"));
        assert!(nan.to_png().is_ok());
        let single = Chart::new("one point", "x", XAxis::Seconds).panel(
            Panel::new("y").series(Series::new("p", vec![(5.0, 5.0)]).style(Style::Markers)),
        );
        assert!(single.to_svg().is_ok());
    }

    #[test]
    fn absurd_sizes_are_errors() {
        let mut c = sample();
        c.width = 10;
        assert!(matches!(c.to_svg(), Err(ReportError::InvalidChart(_))));
        c.width = 1000;
        c.height = Some(200);
        assert!(matches!(c.to_png(), Err(ReportError::InvalidChart(_))));
        c.height = Some(u32::MAX);
        assert!(matches!(c.to_png(), Err(ReportError::InvalidChart(_))));
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

    fn wild() -> impl proptest::strategy::Strategy<Value = f64> {
        use proptest::prelude::*;
        prop_oneof![
            -1e6..1e6f64,
            Just(0.0),
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::MIN_POSITIVE),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn any_numbers_render_without_panic(
            pts in proptest::collection::vec((wild(), wild()), 0..20),
            marker in wild(),
            log in proptest::bool::ANY,
        ) {
            let band: Vec<(f64, f64, f64)> = pts.iter().map(|&(x, y)| (x, y, -y)).collect();
            let chart = Chart::new("t", "x", if log { XAxis::Log } else { XAxis::Linear })
                .panel(Panel::new("a").series(Series::new("s", pts.clone()).band(band)))
                .panel(Panel::new("b").series(Series::new("r", pts).right_axis().style(Style::Step)))
                .marker(marker, "m");
            proptest::prop_assert!(chart.to_svg().is_ok());
        }
    }
}
