//! SVG line charts for the figures of a run (plotters, SVG backend).
//!
//! Conventions kept across every figure: one color per optimizer, one line style per space
//! (weight space solid, error space dashed, discrete twin dotted), theorem bounds in gray.
//!
//! Axis ranges are computed so that plotters' tick search always ends: its linear search
//! divides the step by 10 until enough ticks fit, which never happens when the range is
//! narrower than the spacing of f64s at its magnitude (1e100 +- 1e85) or wider than an f64
//! (-1e308..1e308, an infinite span); its logarithmic one multiplies from the lower end to the
//! upper end, which never ends from 0 (the geometric mean of two equal losses of 1e-200,
//! computed as sqrt(hi lo), underflows to 0) or to infinity (that of 1e200 overflows). A
//! range too wide to draw is refused with [`PlotError::Axis`]: the caller skips that figure
//! and keeps the data. Panel sizes are bounded ([`MIN_PIXELS`], [`MAX_PIXELS`]).

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
pub use plotters::style::RGBColor;
use std::path::Path;

use crate::error::{InputError, OutputError};
use crate::io::write_atomic;

/// The smallest panel side in pixels that leaves room for the plot inside its labels.
pub const MIN_PIXELS: u32 = 160;
/// The largest panel side in pixels (far beyond any screen or page; bounds the SVG's size).
pub const MAX_PIXELS: u32 = 16_384;

/// Why a figure cannot be drawn.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlotError {
    /// A panel side outside MIN_PIXELS..=MAX_PIXELS.
    #[error("a {side} of {pixels} pixels is outside {MIN_PIXELS}..={MAX_PIXELS}")]
    Size { side: &'static str, pixels: u32 },
    /// The data span more than an axis can show.
    #[error("{axis} axis: {why}")]
    Axis { axis: &'static str, why: String },
    /// plotters failed.
    #[error("{0}")]
    Backend(String),
}

/// Check `--width-px` and `--height-px` before anything is computed.
pub fn check_size(width: Option<u32>, height: Option<u32>) -> Result<(), InputError> {
    for (option, side, value) in [
        ("width-px", "width", width),
        ("height-px", "height", height),
    ] {
        if let Some(pixels) = value {
            if !(MIN_PIXELS..=MAX_PIXELS).contains(&pixels) {
                return Err(InputError::option(
                    option,
                    PlotError::Size { side, pixels }.to_string(),
                ));
            }
        }
    }
    Ok(())
}

/// How a series is stroked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
    /// A thin line with hollow circles at about 24 of its points (discrete iterates).
    Markers,
}

/// One curve of a figure.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dash: Dash,
    /// A shaded band (x, low, high) drawn under the line, e.g. the range over seeds.
    pub band: Vec<(f64, f64, f64)>,
}

/// Where the legend goes, chosen to stay off the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Legend {
    /// The corner whose legend box would cover the fewest data points.
    Auto,
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub legend: Legend,
    pub width: u32,
    pub height: u32,
    pub series: Vec<Series>,
}

impl Figure {
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Figure {
        Figure {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            legend: Legend::UpperRight,
            width: 640,
            height: 440,
            series: Vec::new(),
        }
    }
}

/// Colours of the series that are no optimizer's (an optimizer's is its [`crate::optimizer::Method::rgb`]).
pub const BOUND_COLOR: RGBColor = RGBColor(120, 120, 120);
pub const EXTRA_COLOR: RGBColor = RGBColor(204, 121, 167);

/// Values a log axis can show: positive and within 1e-300..1e300 (plotters' log axis hangs
/// when the ratio of its ends overflows an f64).
fn log_usable(v: f64) -> bool {
    (1e-300..=1e300).contains(&v)
}

fn usable(fig: &Figure, (x, y): (f64, f64)) -> bool {
    x.is_finite() && y.is_finite() && (!fig.log_x || log_usable(x)) && (!fig.log_y || log_usable(y))
}

/// The smallest and largest of finite values (None if there are none).
fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    (lo <= hi).then_some((lo, hi))
}

/// Whether plotters can place ticks on the linear range lo..hi: a finite span, and one wide
/// enough against the spacing of f64s there (1e-12 relative leaves 1e3 ulps per tick).
fn linear_drawable(lo: f64, hi: f64) -> bool {
    let span = hi - lo;
    span.is_finite() && span >= 1e-300 && span >= 1e-12 * lo.abs().max(hi.abs())
}

/// The axis range for values (already filtered to what the axis can show).
fn range(
    values: impl Iterator<Item = f64>,
    log: bool,
    axis: &'static str,
) -> Result<(f64, f64), PlotError> {
    let Some((lo, hi)) = extent(values) else {
        return Ok(if log { (0.1, 10.0) } else { (0.0, 1.0) });
    };
    let range = if log {
        // At most 300 decades: beyond that the ratio of the ends overflows.
        let lo = lo.max(hi * 1e-300);
        if hi / lo < 10.0 {
            // The geometric mean without forming hi lo (1e200 squared overflows, 1e-200
            // squared underflows to 0).
            let mid = hi.sqrt() * lo.sqrt();
            (mid / 4.0, mid * 4.0)
        } else {
            (lo / 1.5, hi * 1.5)
        }
    } else if !linear_drawable(lo, hi) && (hi - lo).is_finite() {
        // Equal values, or equal up to rounding: a range around them.
        (lo - 0.5 * lo.abs().max(1.0), hi + 0.5 * hi.abs().max(1.0))
    } else {
        let pad = 0.05 * (hi - lo);
        (lo - pad, hi + pad)
    };
    let ok = if log {
        range.0 > 0.0 && range.1.is_finite() && range.0 < range.1
    } else {
        linear_drawable(range.0, range.1)
    };
    if ok {
        Ok(range)
    } else {
        Err(PlotError::Axis {
            axis,
            why: format!("values from {lo:e} to {hi:e} span more than it can show"),
        })
    }
}

/// Render panels side by side as SVG text (each panel keeps its own width and height).
pub fn render_svg(panels: &[Figure]) -> Result<String, String> {
    render_grid(panels, panels.len().max(1))
}

/// Render panels in rows of `columns`, each panel in a cell as large as the largest panel.
pub fn render_grid(panels: &[Figure], columns: usize) -> Result<String, String> {
    try_render_grid(panels, columns).map_err(|e| e.to_string())
}

/// [`render_grid`] with a typed error: a panel size out of bounds, or data no axis can show
/// (then the figure is skipped and the data kept; the caller says so).
pub fn try_render_grid(panels: &[Figure], columns: usize) -> Result<String, PlotError> {
    for fig in panels {
        for (side, pixels) in [("width", fig.width), ("height", fig.height)] {
            if !(MIN_PIXELS..=MAX_PIXELS).contains(&pixels) {
                return Err(PlotError::Size { side, pixels });
            }
        }
    }
    let columns = columns.clamp(1, panels.len().max(1));
    let cell_w = panels.iter().map(|f| f.width).max().unwrap_or(0);
    let cell_h = panels.iter().map(|f| f.height).max().unwrap_or(0);
    let rows = panels.len().div_ceil(columns);
    let total = |cells: u64, side: u32, what: &'static str| -> Result<u32, PlotError> {
        u32::try_from(cells * side as u64)
            .ok()
            .filter(|&p| p <= MAX_PIXELS * 16)
            .ok_or(PlotError::Size {
                side: what,
                pixels: u32::MAX,
            })
    };
    let width = if panels.len() <= columns {
        total(1, panels.iter().map(|f| f.width).sum(), "figure width")?
    } else {
        total(columns as u64, cell_w, "figure width")?
    };
    let height = total(rows as u64, cell_h, "figure height")?;
    // Every axis range first: nothing is drawn for a figure that cannot be.
    let ranges: Vec<Ranges> = panels.iter().map(ranges).collect::<Result<_, _>>()?;
    let backend = |e: String| PlotError::Backend(e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| backend(e.to_string()))?;
        for (k, fig) in panels.iter().enumerate() {
            let (row, col) = ((k / columns) as i32, (k % columns) as i32);
            let x0 = if panels.len() <= columns {
                panels[..k].iter().map(|f| f.width as i32).sum()
            } else {
                col * cell_w as i32
            };
            let y0 = row * cell_h as i32;
            let area = root.clone().shrink((x0, y0), (fig.width, fig.height));
            draw(fig, ranges[k], &area).map_err(backend)?;
        }
        root.present().map_err(|e| backend(e.to_string()))?;
    }
    Ok(svg)
}

/// Render panels side by side into `path` (written whole or not at all).
pub fn save(panels: &[Figure], path: &Path) -> Result<(), OutputError> {
    save_grid(panels, panels.len(), path)
}

/// Render panels in rows of `columns` into `path` (written whole or not at all).
/// A figure that cannot be drawn is an [`OutputError::Plot`]; callers that keep going
/// without it use [`try_render_grid`].
pub fn save_grid(panels: &[Figure], columns: usize, path: &Path) -> Result<(), OutputError> {
    let svg = render_grid(panels, columns).map_err(|msg| OutputError::Plot {
        path: path.to_path_buf(),
        msg,
    })?;
    write_atomic(path, svg.as_bytes())
}

type DrawResult = Result<(), String>;

fn txt<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The x and y ranges of a panel.
type Ranges = ((f64, f64), (f64, f64));

fn ranges(fig: &Figure) -> Result<Ranges, PlotError> {
    let pts = || {
        fig.series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .copied()
                    .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
            })
            .filter(|&p| usable(fig, p))
    };
    // Time axes end where the data end; a log x axis gets the same padding as y.
    let x = match extent(pts().map(|p| p.0)) {
        Some((lo, hi)) if !fig.log_x && linear_drawable(lo, hi) => (lo, hi),
        _ => range(pts().map(|p| p.0), fig.log_x, "x")?,
    };
    let y = range(pts().map(|p| p.1), fig.log_y, "y")?;
    Ok((x, y))
}

fn draw(
    fig: &Figure,
    ((x0, x1), (y0, y1)): Ranges,
    root: &DrawingArea<SVGBackend<'_>, Shift>,
) -> DrawResult {
    let legend = match fig.legend {
        Legend::Auto => emptiest_corner(fig, (x0, x1), (y0, y1)),
        fixed => fixed,
    };
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(&fig.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(46)
        .y_label_area_size(72);
    match (fig.log_x, fig.log_y) {
        (false, false) => finish(
            fig,
            legend,
            builder.build_cartesian_2d(x0..x1, y0..y1).map_err(txt)?,
        ),
        (false, true) => finish(
            fig,
            legend,
            builder
                .build_cartesian_2d(x0..x1, (y0..y1).log_scale())
                .map_err(txt)?,
        ),
        (true, false) => finish(
            fig,
            legend,
            builder
                .build_cartesian_2d((x0..x1).log_scale(), y0..y1)
                .map_err(txt)?,
        ),
        (true, true) => finish(
            fig,
            legend,
            builder
                .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())
                .map_err(txt)?,
        ),
    }
}

fn finish<'a, 'b: 'a, X, Y>(
    fig: &Figure,
    legend: Legend,
    mut chart: ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>,
) -> DrawResult
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc(&fig.x_label)
        .y_desc(&fig.y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_labels(7)
        .y_labels(8)
        .y_label_formatter(&|v| tick(*v))
        .x_label_formatter(&|v| tick(*v))
        .draw()
        .map_err(txt)?;
    for s in fig.series.iter().filter(|s| !s.band.is_empty()) {
        let band: Vec<&(f64, f64, f64)> = s
            .band
            .iter()
            .filter(|&&(x, lo, hi)| usable(fig, (x, lo)) && usable(fig, (x, hi)))
            .collect();
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|&&(x, lo, _)| (x, lo))
            .chain(band.iter().rev().map(|&&(x, _, hi)| (x, hi)))
            .collect();
        if outline.len() >= 3 {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    s.color.mix(0.18).filled(),
                )))
                .map_err(txt)?;
        }
    }
    for s in &fig.series {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        // Split at unusable points (e.g. zero on a log axis) so a gap shows, not a jump.
        let mut pieces: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &p in &s.points {
            if usable(fig, p) {
                pieces.last_mut().expect("never empty").push(p);
            } else if !pieces.last().expect("never empty").is_empty() {
                pieces.push(Vec::new());
            }
        }
        let mut labelled = false;
        for piece in pieces.into_iter().filter(|p| !p.is_empty()) {
            let anno =
                match s.dash {
                    Dash::Solid => chart
                        .draw_series(LineSeries::new(piece, style))
                        .map_err(txt)?,
                    Dash::Dashed => chart
                        .draw_series(DashedLineSeries::new(piece, 9, 5, style))
                        .map_err(txt)?,
                    Dash::Dotted => chart
                        .draw_series(DashedLineSeries::new(piece, 2, 4, style))
                        .map_err(txt)?,
                    Dash::Markers => {
                        let every = (piece.len() / 24).max(1);
                        let marks: Vec<(f64, f64)> = piece.iter().copied().step_by(every).collect();
                        chart
                            .draw_series(LineSeries::new(
                                piece,
                                ShapeStyle::from(&s.color).stroke_width(1),
                            ))
                            .map_err(txt)?;
                        chart
                            .draw_series(marks.into_iter().map(|p| {
                                Circle::new(p, 4, ShapeStyle::from(&s.color).stroke_width(2))
                            }))
                            .map_err(txt)?
                    }
                };
            if !labelled {
                let (color, dash) = (s.color, s.dash);
                let segments = legend_segments(dash);
                anno.label(s.label.clone()).legend(move |(x, y)| {
                    let style = ShapeStyle::from(&color).stroke_width(2);
                    let seg = |k: usize| {
                        PathElement::new(vec![(segments[k].0, 0), (segments[k].1, 0)], style)
                    };
                    let mark =
                        Circle::new((12, 0), if dash == Dash::Markers { 4 } else { 0 }, style);
                    EmptyElement::at((x, y)) + seg(0) + seg(1) + seg(2) + seg(3) + mark
                });
                labelled = true;
            }
        }
    }
    let position = match legend {
        Legend::UpperRight | Legend::Auto => SeriesLabelPosition::UpperRight,
        Legend::LowerRight => SeriesLabelPosition::LowerRight,
        Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        Legend::LowerLeft => SeriesLabelPosition::LowerLeft,
    };
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(txt)?;
    Ok(())
}

/// The corner for the legend: the one whose box (estimated from the labels' length and number)
/// covers the fewest points and segment midpoints of the series, ties going to the upper right.
fn emptiest_corner(fig: &Figure, (x0, x1): (f64, f64), (y0, y1): (f64, f64)) -> Legend {
    let unit = |v: f64, lo: f64, hi: f64, log: bool| {
        if log {
            (v.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - lo) / (hi - lo)
        }
    };
    let labelled: Vec<&Series> = fig.series.iter().filter(|s| !s.label.is_empty()).collect();
    let chars = labelled
        .iter()
        .map(|s| s.label.chars().count())
        .max()
        .unwrap_or(0);
    // Pixels of the plot area: the figure less label areas, margins and caption.
    let (plot_w, plot_h) = (
        (fig.width as f64 - 96.0).max(1.0),
        (fig.height as f64 - 100.0).max(1.0),
    );
    let box_w = ((7.0 * chars as f64 + 50.0) / plot_w).min(1.0);
    let box_h = ((19.0 * labelled.len() as f64 + 14.0) / plot_h).min(1.0);
    let mut points: Vec<(f64, f64)> = Vec::new();
    for s in &fig.series {
        let usable_points: Vec<(f64, f64)> = s
            .points
            .iter()
            .copied()
            .filter(|&p| usable(fig, p))
            .collect();
        for w in usable_points.windows(2) {
            points.push(((w[0].0 + w[1].0) / 2.0, (w[0].1 + w[1].1) / 2.0));
        }
        points.extend(usable_points);
    }
    let inside = |right: bool, upper: bool| {
        points
            .iter()
            .filter(|&&(x, y)| {
                let (u, v) = (unit(x, x0, x1, fig.log_x), unit(y, y0, y1, fig.log_y));
                let in_x = if right { u >= 1.0 - box_w } else { u <= box_w };
                let in_y = if upper { v >= 1.0 - box_h } else { v <= box_h };
                in_x && in_y
            })
            .count()
    };
    [
        (Legend::UpperRight, true, true),
        (Legend::LowerLeft, false, false),
        (Legend::UpperLeft, false, true),
        (Legend::LowerRight, true, false),
    ]
    .into_iter()
    .min_by_key(|&(_, right, upper)| inside(right, upper))
    .map(|(corner, _, _)| corner)
    .unwrap_or(Legend::UpperRight)
}

/// The legend's sample of a line as four segments, so that every dash style has one type.
fn legend_segments(dash: Dash) -> [(i32, i32); 4] {
    match dash {
        Dash::Solid => [(0, 6), (6, 12), (12, 18), (18, 24)],
        Dash::Dashed => [(0, 9), (14, 24), (14, 24), (14, 24)],
        Dash::Dotted => [(0, 2), (7, 9), (14, 16), (21, 23)],
        Dash::Markers => [(0, 6), (6, 12), (12, 18), (18, 24)],
    }
}

/// Tick labels: plain for moderate magnitudes, scientific otherwise.
fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e4).contains(&a) {
        let e = a.log10().floor() as i32;
        let mant = v / 10f64.powi(e);
        if (mant.abs() - 1.0).abs() < 1e-9 {
            format!("{}1e{}", if v < 0.0 { "-" } else { "" }, e)
        } else {
            format!("{mant:.1}e{e}")
        }
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}
