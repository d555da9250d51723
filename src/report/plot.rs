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

mod render;
mod scale;

use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use render::{render, Layout};

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
