//! Drawing a [`Chart`] onto a plotters backend: layout, panels, legends, markers.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontTransform;

use super::scale::{transform_x, x_extent, Ticked, XScale, YScale};
use super::{draw_error, ensure_font, Axis, Chart, Panel, Series, Style, XAxis, FAMILY};
use crate::report::Result;

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

pub(super) struct Layout {
    pub(super) height: u32,
    pub(super) title_h: u32,
    pub(super) header_h: u32,
    pub(super) marker_rows: Vec<u32>,
    pub(super) panel_h: u32,
    pub(super) plot_height: i64,
    pub(super) legend_w: u32,
    pub(super) right_w: u32,
}

impl Layout {
    pub(super) fn new(chart: &Chart) -> Self {
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
                    plot_left as f64
                        + (v - lo) / (hi - lo) * plot_right.saturating_sub(plot_left) as f64
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

pub(super) fn render<DB: DrawingBackend>(
    chart: &Chart,
    root: &DrawingArea<DB, Shift>,
) -> Result<()> {
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
