//! SVG line charts for the figures of a run (plotters, SVG backend).
//!
//! Conventions kept across every figure: one color per optimizer, one line style per space
//! (weight space solid, error space dashed, discrete twin dotted), theorem bounds in gray.
//!
//! The ticks are chosen here, not by plotters ([`ticks`]): at least three labelled per axis,
//! their labels distinct (a lambda_min that moves by 1e-4 around 0.012 read "0.012" at every
//! tick), multiples of the step (no "3.5e-18" for the zero of a kernel drift), log axes
//! labelled at decades, or at 1, 2 and 5 times them when fewer than three decades show.
//!
//! Only the data set the axes: bounds and envelopes ([`Figure::clipped`]) are drawn where they
//! meet the data's range, so a bound starting four decades above the loss, or a twin whose
//! loss blows up, does not squeeze the data into a corner; every line is clipped to the
//! axes ([`clip_polyline`]). The legend is placed where no line crosses it, or beside the
//! plotting area; panels with the same legend share one.
//!
//! Axis ranges are finite and drawable: a linear range narrower than the spacing of f64s at
//! its magnitude (1e100 +- 1e85) or wider than an f64 (-1e308..1e308, an infinite span), or a
//! log range from 0 (the geometric mean of two equal losses of 1e-200, computed as
//! sqrt(hi lo), underflows to 0) or to infinity (that of 1e200 overflows), has no ticks. A
//! range too wide to draw is refused with [`PlotError::Axis`]: the caller skips that figure
//! and keeps the data. Panel sizes are bounded ([`MIN_PIXELS`], [`MAX_PIXELS`]).

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
pub use plotters::style::RGBColor;
use std::ops::Range;
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

/// Where the legend goes. Every choice keeps it off the data: a corner is taken only when no
/// line, marker or band crosses the legend's box there; when every corner is crossed, the
/// legend goes beside the plotting area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Legend {
    /// The first empty corner of upper right, upper left, lower right, lower left.
    Auto,
    /// This corner first, then the others as [`Legend::Auto`].
    UpperRight,
    LowerRight,
    UpperLeft,
    LowerLeft,
    /// Beside the plotting area, on its right.
    Outside,
}

/// A horizontal reference line (lambda0 and lambda0/2 on kernel.svg), dashed, named in the
/// legend; it sets the y axis with the data (the theorems are about where the data sit
/// against it).
#[derive(Clone, Debug, PartialEq)]
pub struct RefLine {
    pub y: f64,
    pub label: String,
    pub color: RGBColor,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    /// A smaller line under the title: where the data came from (file or synthetic n, d),
    /// m, T, eta.
    pub caption: String,
    pub x_label: String,
    pub y_label: String,
    pub log_x: bool,
    pub log_y: bool,
    pub legend: Legend,
    pub width: u32,
    pub height: u32,
    pub series: Vec<Series>,
    /// Series that never set the axes (bounds, envelopes, a diverged twin): drawn where they
    /// fall within the range of [`Figure::series`] and [`Figure::hlines`], their legend
    /// entry saying "(clipped)" when some of their points fall outside.
    pub clipped: Vec<Series>,
    pub hlines: Vec<RefLine>,
    /// Fixed ends of the y axis (`--y-min`, `--y-max`); lines beyond them are clipped.
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
    /// Multiplies every font size and the label areas (`--font-scale`).
    pub font_scale: f64,
    /// A legend that fits nowhere inside goes beside the plot and widens the panel by its
    /// width (true), or takes its width from the plot (false: the width was asked for).
    pub widen_for_legend: bool,
}

impl Figure {
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Figure {
        Figure {
            title: title.into(),
            caption: String::new(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            legend: Legend::Auto,
            width: 640,
            height: 440,
            series: Vec::new(),
            clipped: Vec::new(),
            hlines: Vec::new(),
            y_min: None,
            y_max: None,
            font_scale: 1.0,
            widen_for_legend: true,
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

/// The ticks of an axis: the labelled ones with their labels, and unlabelled minor ones
/// (the 2..9 multiples between labelled decades).
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    pub labelled: Vec<(f64, String)>,
    pub minor: Vec<f64>,
}

/// The ticks of the axis lo..hi (lo < hi, both positive on a log axis), at most about `max`
/// labelled (never fewer than three; `max` below 3 counts as 3).
///
/// Linear: the multiples of the largest... of the smallest step among 1, 2, 2.5 and 5 times a
/// power of ten that gives 3..=max ticks, labelled with as many decimals as the step needs
/// (more if two labels would read the same). Log: the decades, every k-th when more than
/// `max` show; with fewer than three decades, 1, 2 and 5 times them, then 1..9 times them,
/// then linear ticks.
pub fn ticks(lo: f64, hi: f64, log: bool, max: usize) -> Ticks {
    let max = max.max(3);
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Ticks {
            labelled: Vec::new(),
            minor: Vec::new(),
        };
    }
    if !log || lo <= 0.0 {
        let (values, step) = linear_ticks(lo, hi, max);
        let labels = linear_labels(&values, step);
        return Ticks {
            labelled: values.into_iter().zip(labels).collect(),
            minor: Vec::new(),
        };
    }
    let (a, b) = (lo.log10().ceil() as i32, hi.log10().floor() as i32);
    let within = |v: f64| v >= lo * (1.0 - 1e-12) && v <= hi * (1.0 + 1e-12);
    let times = |ms: &[f64]| -> Vec<f64> {
        let mut out = Vec::new();
        for k in (a - 1)..=(b + 1) {
            for &m in ms {
                let v = m * pow10(k);
                if within(v) {
                    out.push(v);
                }
            }
        }
        out
    };
    let decades: Vec<i32> = (a..=b).collect();
    // Decades beyond 0.001..1000 are written 10ⁿ; then all decades are, so that one axis
    // does not mix 0.01 with 10⁻⁴.
    let powers = decades.len() >= 3 && decades.iter().any(|k| !(-3..=3).contains(k));
    let (labelled, minor): (Vec<f64>, Vec<f64>) = if decades.len() >= 3 {
        let stride = decades.len().div_ceil(max) as i32;
        let (on, off): (Vec<i32>, Vec<i32>) =
            decades.iter().partition(|&&k| k.rem_euclid(stride) == 0);
        let minor = if stride == 1 && decades.len() <= 8 {
            times(&[2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
        } else {
            off.into_iter().map(pow10).collect()
        };
        (on.into_iter().map(pow10).collect(), minor)
    } else if times(&[1.0, 2.0, 5.0]).len() >= 3 {
        (
            times(&[1.0, 2.0, 5.0]),
            times(&[3.0, 4.0, 6.0, 7.0, 8.0, 9.0]),
        )
    } else if times(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]).len() >= 3 {
        (
            times(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
            Vec::new(),
        )
    } else {
        return ticks(lo, hi, false, max);
    };
    Ticks {
        labelled: labelled
            .into_iter()
            .map(|v| {
                let label = if powers {
                    format!("10{}", superscript(v.log10().round() as i32))
                } else {
                    log_label(v)
                };
                (v, label)
            })
            .collect(),
        minor,
    }
}

/// 10^k, exact for the decades an f64 holds exactly and correctly rounded otherwise.
fn pow10(k: i32) -> f64 {
    format!("1e{k}").parse().unwrap_or(f64::NAN)
}

/// Multiples of a step in lo..hi (see [`ticks`]), and the step.
fn linear_ticks(lo: f64, hi: f64, max: usize) -> (Vec<f64>, f64) {
    let top = (hi - lo).log10().floor() as i32 + 1;
    let mut smallest: Option<(Vec<f64>, f64)> = None;
    let mut fewest: Option<(Vec<f64>, f64)> = None;
    for k in ((top - 3)..=top).rev() {
        for m in [5.0, 2.5, 2.0, 1.0] {
            let step = m * pow10(k);
            let (first, last) = ((lo / step).ceil(), (hi / step).floor());
            let count = last - first + 1.0;
            if !(3.0..=1000.0).contains(&count) {
                continue;
            }
            let values: Vec<f64> = (0..count as usize)
                .map(|i| {
                    let v = (first + i as f64) * step;
                    if v == 0.0 {
                        0.0 // never -0
                    } else {
                        v
                    }
                })
                .collect();
            if count as usize <= max {
                smallest = Some((values, step));
            } else if fewest.is_none() {
                fewest = Some((values, step));
            }
        }
    }
    smallest
        .or(fewest)
        .unwrap_or_else(|| (vec![lo, (lo + hi) / 2.0, hi], (hi - lo) / 2.0))
}

/// Labels of linear ticks: decimals from the step (scientific notation beyond 1e-3..1e5),
/// more until no two read the same.
fn linear_labels(values: &[f64], step: f64) -> Vec<String> {
    let big = values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    let sci = big > 0.0 && !(1e-3..1e5).contains(&big);
    let step_exp = step.log10().floor() as i32;
    let mantissa = step / pow10(step_exp);
    let extra = i32::from((mantissa - 2.5).abs() < 1e-6);
    let mut labels = Vec::new();
    for more in 0..12 {
        labels = if sci {
            let e = big.log10().floor() as i32;
            let dec = (e - step_exp + extra + more).max(0) as usize;
            values
                .iter()
                .map(|&v| {
                    if v == 0.0 {
                        "0".to_string()
                    } else {
                        format!("{:.*}e{}", dec, v / pow10(e), e)
                    }
                })
                .collect()
        } else {
            let dec = (extra + more - step_exp).max(0) as usize;
            values.iter().map(|&v| format!("{v:.dec$}")).collect()
        };
        if distinct(&labels) {
            break;
        }
    }
    labels
}

fn distinct(labels: &[String]) -> bool {
    let mut sorted: Vec<&String> = labels.iter().collect();
    sorted.sort();
    sorted.windows(2).all(|w| w[0] != w[1])
}

/// A log tick m 10^e (m = 1..9): plain within 0.001..9999, else 10ᵉ or m×10ᵉ.
fn log_label(v: f64) -> String {
    let e = v.log10().floor() as i32;
    let e = if v / pow10(e + 1) >= 1.0 - 1e-9 {
        e + 1
    } else {
        e
    };
    let m = (v / pow10(e)).round();
    if (-3..=3).contains(&e) {
        if e < 0 {
            format!("{:.*}", (-e) as usize, v)
        } else {
            format!("{v:.0}")
        }
    } else if m == 1.0 {
        format!("10{}", superscript(e))
    } else {
        format!("{m}×10{}", superscript(e))
    }
}

fn superscript(e: i32) -> String {
    e.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            _ => '⁹',
        })
        .collect()
}

/// An axis with the ticks of [`ticks`]: plotters maps values with it and draws its ticks.
#[derive(Clone, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Ticks,
}

impl Axis {
    fn new(lo: f64, hi: f64, log: bool, max_ticks: usize) -> Axis {
        Axis {
            lo,
            hi,
            log,
            ticks: ticks(lo, hi, log, max_ticks),
        }
    }

    /// Where v sits on the axis, 0 at lo and 1 at hi.
    fn unit(&self, v: f64) -> f64 {
        if self.log {
            (v.ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }

    fn label(&self, v: f64) -> String {
        let tol = 1e-9 * (self.hi - self.lo).abs().max(self.hi.abs());
        self.ticks
            .labelled
            .iter()
            .find(|(t, _)| (t - v).abs() <= tol)
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let px = limit.0 as f64 + self.unit(*value) * (limit.1 - limit.0) as f64;
        // Far outside values stay far outside (lines are clipped before they get here).
        px.round().clamp(-1e6, 1e6) as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.ticks.minor.clone()
        } else {
            self.ticks.labelled.iter().map(|t| t.0).collect()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// The parts of a polyline inside the box x.0..x.1 by y.0..y.1, crossing points interpolated
/// in the axes' own scale (log10 on a log axis). Points an axis cannot show (non-finite, not
/// positive on a log axis) break the line.
pub fn clip_polyline(
    points: &[(f64, f64)],
    x: (f64, f64),
    y: (f64, f64),
    log_x: bool,
    log_y: bool,
) -> Vec<Vec<(f64, f64)>> {
    let f = |v: f64, log: bool| if log { v.log10() } else { v };
    let g = |v: f64, log: bool| if log { 10f64.powf(v) } else { v };
    let ok = |(px, py): (f64, f64)| {
        px.is_finite() && py.is_finite() && (!log_x || log_usable(px)) && (!log_y || log_usable(py))
    };
    let slack = |(a, b): (f64, f64)| 1e-9 * (b - a).abs();
    let bx = (f(x.0, log_x), f(x.1, log_x));
    let by = (f(y.0, log_y), f(y.1, log_y));
    let inside = |(u, v): (f64, f64)| {
        u >= bx.0 - slack(bx)
            && u <= bx.1 + slack(bx)
            && v >= by.0 - slack(by)
            && v <= by.1 + slack(by)
    };
    let mut pieces: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut flush = |current: &mut Vec<(f64, f64)>| {
        if !current.is_empty() {
            pieces.push(std::mem::take(current));
        }
    };
    let mut prev: Option<((f64, f64), (f64, f64))> = None;
    for &p in points {
        if !ok(p) {
            flush(&mut current);
            prev = None;
            continue;
        }
        let tp = (f(p.0, log_x), f(p.1, log_y));
        match prev {
            None => {
                if inside(tp) {
                    current.push(p);
                }
            }
            Some((q, tq)) => match clip_segment(tq, tp, bx, by) {
                Some((t0, t1)) => {
                    let at = |t: f64| {
                        (
                            g(tq.0 + t * (tp.0 - tq.0), log_x),
                            g(tq.1 + t * (tp.1 - tq.1), log_y),
                        )
                    };
                    if t0 > 0.0 || current.is_empty() {
                        flush(&mut current);
                        current.push(if t0 == 0.0 { q } else { at(t0) });
                    }
                    current.push(if t1 == 1.0 { p } else { at(t1) });
                    if t1 < 1.0 {
                        flush(&mut current);
                    }
                }
                None => flush(&mut current),
            },
        }
        prev = Some((p, tp));
    }
    flush(&mut current);
    pieces
}

/// Liang-Barsky: the parameters t0 <= t1 in 0..=1 of the part of p + t (q - p) inside the box.
fn clip_segment(p: (f64, f64), q: (f64, f64), x: (f64, f64), y: (f64, f64)) -> Option<(f64, f64)> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (pp, qq) in [
        (-dx, p.0 - x.0),
        (dx, x.1 - p.0),
        (-dy, p.1 - y.0),
        (dy, y.1 - p.1),
    ] {
        if pp == 0.0 {
            if qq < 0.0 {
                return None;
            }
        } else {
            let r = qq / pp;
            if pp < 0.0 {
                if r > t1 {
                    return None;
                }
                t0 = t0.max(r);
            } else {
                if r < t0 {
                    return None;
                }
                t1 = t1.min(r);
            }
        }
    }
    Some((t0, t1))
}

/// Render panels side by side as SVG text (each panel keeps its own width and height).
pub fn render_svg(panels: &[Figure]) -> Result<String, String> {
    render_grid(panels, panels.len().max(1))
}

/// Render panels in rows of `columns`, each panel in a cell as large as the largest panel.
pub fn render_grid(panels: &[Figure], columns: usize) -> Result<String, String> {
    try_render_grid(panels, columns).map_err(|e| e.to_string())
}

/// One entry of a legend.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    label: String,
    color: RGBColor,
    dash: Dash,
    band: bool,
}

/// Where a panel's legend goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Place {
    /// Not on the panel (shared by the grid).
    None,
    /// In a corner of the plotting area, or beside it.
    Own,
}

/// How a grid shows a legend its panels share.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SharedAt {
    /// In the (first) empty cell of the last row.
    Cell,
    /// In a strip under the grid.
    Strip,
}

/// [`render_grid`] with a typed error: a panel size out of bounds, or data no axis can show
/// (then the figure is skipped and the data kept; the caller says so). Panels whose legends
/// are the same share one, in the grid's empty cell or under the grid (then the number of
/// columns may drop so that no cell stays empty).
pub fn try_render_grid(panels: &[Figure], columns: usize) -> Result<String, PlotError> {
    for fig in panels {
        for (side, pixels) in [("width", fig.width), ("height", fig.height)] {
            if !(MIN_PIXELS..=MAX_PIXELS).contains(&pixels) {
                return Err(PlotError::Size { side, pixels });
            }
        }
    }
    // Every axis range first: nothing is drawn for a figure that cannot be.
    let ranges: Vec<Ranges> = panels.iter().map(ranges).collect::<Result<_, _>>()?;
    let entries: Vec<Vec<Entry>> = panels
        .iter()
        .zip(&ranges)
        .map(|(f, r)| entries(f, *r))
        .collect();
    let shared =
        panels.len() > 1 && !entries[0].is_empty() && entries.iter().all(|e| *e == entries[0]);
    let mut columns = columns.clamp(1, panels.len().max(1));
    let side_by_side = panels.len() <= columns;
    let mut shared_at = SharedAt::Strip;
    if shared && !side_by_side {
        let n = panels.len();
        let fits = |c: usize| {
            if n.is_multiple_of(c) {
                Some(SharedAt::Strip)
            } else if (n + 1).is_multiple_of(c) {
                Some(SharedAt::Cell)
            } else {
                None
            }
        };
        if let Some((c, at)) = (2..=columns).rev().find_map(|c| fits(c).map(|at| (c, at))) {
            columns = c;
            shared_at = at;
        }
    }
    let side_by_side = panels.len() <= columns;
    let place = if shared { Place::None } else { Place::Own };
    let plans: Vec<Plan> = panels
        .iter()
        .zip(&ranges)
        .zip(&entries)
        .map(|((f, r), e)| plan(f, *r, e, place))
        .collect();
    // A panel whose legend goes beside its plot is wider by the legend.
    let widths: Vec<u32> = panels
        .iter()
        .zip(&plans)
        .map(|(f, p)| f.width + p.extra(f))
        .collect();
    let cell_w = widths.iter().copied().max().unwrap_or(0);
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
    let width = if side_by_side {
        total(1, widths.iter().sum(), "figure width")?
    } else {
        total(columns as u64, cell_w, "figure width")?
    };
    let scale = panels.first().map(|f| f.font_scale).unwrap_or(1.0);
    let strip = if shared && shared_at == SharedAt::Strip {
        Some(legend_size(&entries[0], scale, Some(width as f64 - 24.0)))
    } else {
        None
    };
    let strip_h = strip.as_ref().map(|s| s.1 + 12).unwrap_or(0);
    let height = total(rows as u64, cell_h, "figure height")? + strip_h as u32;
    let backend = |e: String| PlotError::Backend(e);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| backend(e.to_string()))?;
        for (k, fig) in panels.iter().enumerate() {
            let (row, col) = ((k / columns) as i32, (k % columns) as i32);
            let x0 = if side_by_side {
                widths[..k].iter().map(|&w| w as i32).sum()
            } else {
                col * cell_w as i32
            };
            let y0 = row * cell_h as i32;
            let area = root.clone().shrink((x0, y0), (widths[k], fig.height));
            draw(fig, ranges[k], &entries[k], &plans[k], &area).map_err(backend)?;
        }
        if shared {
            match (shared_at, strip) {
                (SharedAt::Strip, Some((w, h, at))) | (SharedAt::Cell, Some((w, h, at))) => {
                    let x = (width as i32 - w) / 2;
                    let y = height as i32 - strip_h + 4;
                    draw_legend(&root, &entries[0], (x, y), (w, h), &at, scale).map_err(backend)?;
                }
                (SharedAt::Cell, None) => {
                    let k = panels.len();
                    let (col, row) = ((k % columns) as i32, (k / columns) as i32);
                    let (w, h, at) = legend_size(&entries[0], scale * 1.15, None);
                    let x = col * cell_w as i32 + (cell_w as i32 - w) / 2;
                    let y = row * cell_h as i32 + (cell_h as i32 - h) / 2;
                    draw_legend(&root, &entries[0], (x, y), (w, h), &at, scale * 1.15)
                        .map_err(backend)?;
                }
                (SharedAt::Strip, None) => {}
            }
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
pub type Ranges = ((f64, f64), (f64, f64));

/// The points of series and their bands that an axis of `fig` can show.
fn points_of<'a>(fig: &'a Figure, series: &'a [Series]) -> impl Iterator<Item = (f64, f64)> + 'a {
    series
        .iter()
        .flat_map(|s| {
            s.points
                .iter()
                .copied()
                .chain(s.band.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]))
        })
        .filter(move |&p| usable(fig, p))
}

/// The axes of a panel: x from the first to the last sample (a log axis from the first
/// positive one), y around the data and the reference lines; [`Figure::clipped`] sets them
/// only when there are no other series; `y_min`, `y_max` replace the ends they give.
pub fn panel_ranges(fig: &Figure) -> Result<Ranges, PlotError> {
    ranges(fig)
}

fn ranges(fig: &Figure) -> Result<Ranges, PlotError> {
    let own = points_of(fig, &fig.series).next().is_some();
    let setting: &[Series] = if own { &fig.series } else { &fig.clipped };
    let x = match extent(points_of(fig, setting).map(|p| p.0)) {
        Some((lo, hi)) if linear_drawable(lo, hi) && (!fig.log_x || hi / lo >= 1.5) => (lo, hi),
        _ => range(points_of(fig, setting).map(|p| p.0), fig.log_x, "x")?,
    };
    let refs = fig
        .hlines
        .iter()
        .map(|l| l.y)
        .filter(|&y| y.is_finite() && (!fig.log_y || log_usable(y)));
    let (lo, hi) = range(
        points_of(fig, setting).map(|p| p.1).chain(refs),
        fig.log_y,
        "y",
    )?;
    let y = (fig.y_min.unwrap_or(lo), fig.y_max.unwrap_or(hi));
    let ok = if fig.log_y {
        y.0 > 0.0 && y.1.is_finite() && y.0 < y.1
    } else {
        linear_drawable(y.0, y.1) && y.0 < y.1
    };
    if !ok {
        return Err(PlotError::Axis {
            axis: "y",
            why: format!("limits {:e}..{:e} cannot be drawn", y.0, y.1),
        });
    }
    Ok((x, y))
}

/// The legend entries of a panel: its series, its clipped series ("(clipped)" when some of
/// their points fall outside the axes), its reference lines.
fn entries(fig: &Figure, ((x0, x1), (y0, y1)): Ranges) -> Vec<Entry> {
    let mut out = Vec::new();
    let outside = |s: &Series| {
        s.points.iter().any(|&p| {
            usable(fig, p)
                && (p.1 < y0 * (1.0 - 1e-9) - 1e-300 || p.1 > y1 * (1.0 + 1e-9) + 1e-300)
                && p.0 >= x0
                && p.0 <= x1
        })
    };
    for s in fig.series.iter().filter(|s| !s.label.is_empty()) {
        let clipped = fig.y_min.is_some() || fig.y_max.is_some();
        out.push(Entry {
            label: if clipped && outside(s) {
                format!("{} (clipped)", s.label)
            } else {
                s.label.clone()
            },
            color: s.color,
            dash: s.dash,
            band: !s.band.is_empty(),
        });
    }
    for s in fig.clipped.iter().filter(|s| !s.label.is_empty()) {
        out.push(Entry {
            label: if outside(s) {
                format!("{} (clipped)", s.label)
            } else {
                s.label.clone()
            },
            color: s.color,
            dash: s.dash,
            band: !s.band.is_empty(),
        });
    }
    for l in &fig.hlines {
        out.push(Entry {
            label: l.label.clone(),
            color: l.color,
            dash: Dash::Dashed,
            band: false,
        });
    }
    out
}

/// Pixels of a font of nominal size `size` at `scale`.
fn px(size: f64, scale: f64) -> f64 {
    (size * scale).round().max(6.0)
}

/// The estimated width of a text in DejaVu Sans (the bundled font): 0.5 em a character (its
/// legend labels measure 0.46 em a character; a browser's sans-serif is narrower).
fn text_width(text: &str, size: f64) -> f64 {
    0.5 * size * text.chars().count() as f64
}

/// The size of a legend box (w, h) and each entry's offset in it; with `wrap`, entries flow
/// in rows no wider than it, else one entry a row.
fn legend_size(entries: &[Entry], scale: f64, wrap: Option<f64>) -> (i32, i32, Vec<(i32, i32)>) {
    let font = px(13.0, scale);
    let row = (1.5 * font).round();
    let pad = (6.0 * scale).round();
    let sample = (28.0 * scale).round();
    let gap = (6.0 * scale).round();
    let widths: Vec<f64> = entries
        .iter()
        .map(|e| sample + gap + text_width(&e.label, font))
        .collect();
    let mut at = Vec::new();
    let (mut x, mut y, mut w) = (pad, pad, 0.0f64);
    for &ew in &widths {
        if let Some(limit) = wrap {
            if x > pad && x + ew + pad > limit {
                x = pad;
                y += row;
            }
            at.push((x as i32, y as i32));
            x += ew + 3.0 * gap;
            w = w.max(x - 3.0 * gap + pad);
        } else {
            at.push((x as i32, y as i32));
            y += row;
            w = w.max(pad + ew + pad);
        }
    }
    let h = if wrap.is_some() {
        y + row + pad
    } else {
        y + pad
    };
    (w.ceil() as i32, h.ceil() as i32, at)
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    entries: &[Entry],
    (x, y): (i32, i32),
    (w, h): (i32, i32),
    at: &[(i32, i32)],
    scale: f64,
) -> DrawResult {
    let font = px(13.0, scale);
    let row = (1.5 * font).round() as i32;
    let sample = (28.0 * scale).round() as i32;
    let gap = (6.0 * scale).round() as i32;
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        WHITE.mix(0.92).filled(),
    ))
    .map_err(txt)?;
    area.draw(&Rectangle::new(
        [(x, y), (x + w, y + h)],
        ShapeStyle::from(&RGBColor(180, 180, 180)).stroke_width(1),
    ))
    .map_err(txt)?;
    let style = ("sans-serif", font)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (e, &(dx, dy)) in entries.iter().zip(at) {
        let (sx, cy) = (x + dx, y + dy + row / 2);
        if e.band {
            area.draw(&Rectangle::new(
                [(sx, cy - row / 3), (sx + sample, cy + row / 3)],
                e.color.mix(0.18).filled(),
            ))
            .map_err(txt)?;
        }
        let line = ShapeStyle::from(&e.color).stroke_width(2);
        let k = sample as f64 / 24.0;
        for (a, b) in legend_segments(e.dash) {
            let (a, b) = ((a as f64 * k) as i32, (b as f64 * k) as i32);
            area.draw(&PathElement::new(vec![(sx + a, cy), (sx + b, cy)], line))
                .map_err(txt)?;
        }
        if e.dash == Dash::Markers {
            area.draw(&Circle::new((sx + sample / 2, cy), 4, line))
                .map_err(txt)?;
        }
        area.draw(&Text::new(
            e.label.clone(),
            (sx + sample + gap, cy),
            style.clone(),
        ))
        .map_err(txt)?;
    }
    Ok(())
}

/// Layout numbers of a panel at its font scale.
struct Layout {
    header: u32,
    margin: u32,
    x_area: u32,
    y_area: u32,
}

fn layout(fig: &Figure, y_ticks: &Ticks) -> Layout {
    let s = fig.font_scale;
    let title = px(19.0, s);
    let caption = if fig.caption.is_empty() {
        0.0
    } else {
        px(13.0, s) * 1.35
    };
    let widest = y_ticks
        .labelled
        .iter()
        .map(|(_, l)| text_width(l, px(14.0, s)))
        .fold(0.0f64, f64::max);
    Layout {
        header: (8.0 + title * 1.3 + caption) as u32,
        margin: 12,
        x_area: (px(14.0, s) + px(16.0, s) + 22.0) as u32,
        y_area: (widest + px(16.0, s) + 22.0).max(48.0) as u32,
    }
}

/// The number of labelled ticks an axis of `pixels` has room for, `per` pixels each.
fn room(pixels: f64, per: f64) -> usize {
    ((pixels / per).floor() as usize).clamp(3, 9)
}

/// How a panel is laid out: its label areas, and where its legend goes.
struct Plan {
    lay: Layout,
    y_room: usize,
    /// The legend's size and its entries' offsets.
    legend: (i32, i32, Vec<(i32, i32)>),
    /// The legend's top-left corner in the plotting area, when a place there is free.
    spot: Option<(f64, f64)>,
    /// The legend beside the plotting area: the panel is wider by [`Plan::extra`].
    beside: bool,
}

impl Plan {
    /// The legend's width plus a gap, when it is beside the plot.
    fn legend_room(&self) -> u32 {
        if self.beside {
            self.legend.0 as u32 + 14
        } else {
            0
        }
    }

    /// How much wider than asked the panel is drawn.
    fn extra(&self, fig: &Figure) -> u32 {
        if fig.widen_for_legend {
            self.legend_room()
        } else {
            0
        }
    }
}

fn plan(fig: &Figure, ((x0, x1), (y0, y1)): Ranges, entries: &[Entry], place: Place) -> Plan {
    let s = fig.font_scale;
    let (w, h) = (fig.width as f64, fig.height as f64);
    // The y ticks first: their labels' width sets the label area.
    let y_room = room(h - 130.0 * s, 34.0 * s);
    let lay = layout(fig, &ticks(y0, y1, fig.log_y, y_room));
    let legend = legend_size(entries, s, None);
    let plot_h = h - lay.header as f64 - 2.0 * lay.margin as f64 - lay.x_area as f64;
    let plot_w = w - 2.0 * lay.margin as f64 - lay.y_area as f64;
    let own = place == Place::Own && !entries.is_empty();
    let spot = if own && fig.legend != Legend::Outside {
        free_spot(
            fig,
            ((x0, x1), (y0, y1)),
            (plot_w, plot_h),
            (legend.0, legend.1),
        )
    } else {
        None
    };
    Plan {
        lay,
        y_room,
        legend,
        spot,
        beside: own && spot.is_none(),
    }
}

fn draw(
    fig: &Figure,
    ((x0, x1), (y0, y1)): Ranges,
    entries: &[Entry],
    plan: &Plan,
    root: &DrawingArea<SVGBackend<'_>, Shift>,
) -> DrawResult {
    let s = fig.font_scale;
    let w = (fig.width + plan.extra(fig)) as f64;
    let lay = &plan.lay;
    let y_room = plan.y_room;
    // The title and the caption.
    let title_style = ("sans-serif", px(19.0, s))
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(
        fig.title.clone(),
        ((w / 2.0) as i32, 8),
        title_style,
    ))
    .map_err(txt)?;
    if !fig.caption.is_empty() {
        let caption_style = ("sans-serif", px(13.0, s))
            .into_font()
            .color(&RGBColor(90, 90, 90))
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            fig.caption.clone(),
            ((w / 2.0) as i32, (8.0 + px(19.0, s) * 1.3) as i32),
            caption_style,
        ))
        .map_err(txt)?;
    }
    let body_h = fig.height.saturating_sub(lay.header).max(40);
    let body = root.clone().shrink((0, lay.header), (fig.width, body_h));
    let legend = &plan.legend;
    let chart_w = if fig.widen_for_legend {
        fig.width
    } else {
        fig.width
            .saturating_sub(plan.legend_room())
            .max(fig.width / 2)
    };
    let chart_area = body.clone().shrink((0, 0), (chart_w, body_h));
    let plot_w = chart_w as f64 - 2.0 * lay.margin as f64 - lay.y_area as f64;
    let x_axis = Axis::new(x0, x1, fig.log_x, room(plot_w, 80.0 * s));
    let y_axis = Axis::new(y0, y1, fig.log_y, y_room);
    let mut chart = ChartBuilder::on(&chart_area)
        .margin(lay.margin)
        .x_label_area_size(lay.x_area)
        .y_label_area_size(lay.y_area)
        .build_cartesian_2d(x_axis.clone(), y_axis.clone())
        .map_err(txt)?;
    chart
        .configure_mesh()
        .x_desc(&fig.x_label)
        .y_desc(&fig.y_label)
        .label_style(("sans-serif", px(14.0, s)))
        .axis_desc_style(("sans-serif", px(16.0, s)))
        .light_line_style(RGBColor(242, 242, 242))
        .bold_line_style(RGBColor(215, 215, 215))
        .x_label_formatter(&|v| x_axis.label(*v))
        .y_label_formatter(&|v| y_axis.label(*v))
        .draw()
        .map_err(txt)?;
    let clip = |pts: &[(f64, f64)]| clip_polyline(pts, (x0, x1), (y0, y1), fig.log_x, fig.log_y);
    for s in fig.series.iter().chain(&fig.clipped) {
        let band: Vec<(f64, f64, f64)> = s
            .band
            .iter()
            .filter(|&&(x, lo, hi)| {
                usable(fig, (x, lo)) && usable(fig, (x, hi)) && x >= x0 && x <= x1
            })
            .map(|&(x, lo, hi)| (x, lo.clamp(y0, y1), hi.clamp(y0, y1)))
            .collect();
        let outline: Vec<(f64, f64)> = band
            .iter()
            .map(|&(x, lo, _)| (x, lo))
            .chain(band.iter().rev().map(|&(x, _, hi)| (x, hi)))
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
    for l in &fig.hlines {
        if l.y >= y0 && l.y <= y1 {
            let style = ShapeStyle::from(&l.color).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, l.y), (x1, l.y)],
                    7,
                    5,
                    style,
                ))
                .map_err(txt)?;
        }
    }
    for s in fig.series.iter().chain(&fig.clipped) {
        let style = ShapeStyle::from(&s.color).stroke_width(2);
        let pieces = clip(&s.points);
        for piece in pieces {
            match s.dash {
                Dash::Solid => {
                    chart
                        .draw_series(LineSeries::new(piece, style))
                        .map_err(txt)?;
                }
                Dash::Dashed => {
                    chart
                        .draw_series(DashedLineSeries::new(piece, 9, 5, style))
                        .map_err(txt)?;
                }
                Dash::Dotted => {
                    chart
                        .draw_series(DashedLineSeries::new(piece, 2, 4, style))
                        .map_err(txt)?;
                }
                Dash::Markers => {
                    chart
                        .draw_series(LineSeries::new(
                            piece,
                            ShapeStyle::from(&s.color).stroke_width(1),
                        ))
                        .map_err(txt)?;
                }
            }
        }
        if s.dash == Dash::Markers {
            let shown: Vec<(f64, f64)> = s
                .points
                .iter()
                .copied()
                .filter(|&p| usable(fig, p) && p.0 >= x0 && p.0 <= x1 && p.1 >= y0 && p.1 <= y1)
                .collect();
            let every = (s.points.len() / 24).max(1);
            chart
                .draw_series(
                    s.points
                        .iter()
                        .step_by(every)
                        .filter(|p| shown.contains(p))
                        .map(|&p| Circle::new(p, 4, ShapeStyle::from(&s.color).stroke_width(2))),
                )
                .map_err(txt)?;
        }
    }
    if plan.spot.is_some() || plan.beside {
        let (px0, py0) = chart.plotting_area().get_base_pixel();
        let (rx0, ry0) = root.get_base_pixel();
        let (left, top) = (px0 - rx0, py0 - ry0);
        let (x, y) = match plan.spot {
            Some((x, y)) => (left + x.round() as i32, top + y.round() as i32),
            None => (chart_w as i32 + 4, top),
        };
        draw_legend(root, entries, (x, y), (legend.0, legend.1), &legend.2, s)?;
    }
    Ok(())
}

/// A place for a legend box of `size` pixels in a plotting area of `plot` pixels that no
/// line, marker, band or reference line crosses: its top-left corner, relative to the
/// plotting area's. The corners first (the figure's own choice first), then down the right
/// side, then down the left side.
fn free_spot(
    fig: &Figure,
    ((x0, x1), (y0, y1)): Ranges,
    plot: (f64, f64),
    size: (i32, i32),
) -> Option<(f64, f64)> {
    let to_px = |(x, y): (f64, f64)| {
        let u = if fig.log_x {
            (x.ln() - x0.ln()) / (x1.ln() - x0.ln())
        } else {
            (x - x0) / (x1 - x0)
        };
        let v = if fig.log_y {
            (y.ln() - y0.ln()) / (y1.ln() - y0.ln())
        } else {
            (y - y0) / (y1 - y0)
        };
        (u * plot.0, (1.0 - v) * plot.1)
    };
    let mut segments: Vec<((f64, f64), (f64, f64))> = Vec::new();
    for s in fig.series.iter().chain(&fig.clipped) {
        for piece in clip_polyline(&s.points, (x0, x1), (y0, y1), fig.log_x, fig.log_y) {
            let p: Vec<(f64, f64)> = piece.into_iter().map(to_px).collect();
            if p.len() == 1 {
                segments.push((p[0], p[0]));
            }
            segments.extend(p.windows(2).map(|w| (w[0], w[1])));
        }
        for &(x, lo, hi) in &s.band {
            if usable(fig, (x, lo)) && usable(fig, (x, hi)) {
                segments.push((to_px((x, lo.clamp(y0, y1))), to_px((x, hi.clamp(y0, y1)))));
            }
        }
    }
    for l in fig.hlines.iter().filter(|l| l.y >= y0 && l.y <= y1) {
        segments.push((to_px((x0, l.y)), to_px((x1, l.y))));
    }
    let (w, h) = (size.0 as f64, size.1 as f64);
    let inset = 6.0;
    if w + 2.0 * inset >= plot.0 || h + 2.0 * inset >= plot.1 {
        return None;
    }
    let (right, bottom) = (plot.0 - w - inset, plot.1 - h - inset);
    let corner = |c: Legend| match c {
        Legend::UpperLeft => (inset, inset),
        Legend::LowerRight => (right, bottom),
        Legend::LowerLeft => (inset, bottom),
        _ => (right, inset),
    };
    let mut spots: Vec<(f64, f64)> = [
        fig.legend,
        Legend::UpperRight,
        Legend::UpperLeft,
        Legend::LowerRight,
        Legend::LowerLeft,
    ]
    .into_iter()
    .filter(|c| !matches!(c, Legend::Auto | Legend::Outside))
    .map(corner)
    .collect();
    let steps = ((bottom - inset) / 8.0).floor().max(0.0) as usize;
    for x in [right, inset] {
        spots.extend((0..=steps).map(|k| (x, inset + 8.0 * k as f64)));
    }
    // Lines are 2 pixels wide and markers 4 in radius: keep 5 pixels off them.
    let pad = 5.0;
    spots.into_iter().find(|&(x, y)| {
        let bx = (x - pad, x + w + pad);
        let by = (y - pad, y + h + pad);
        !segments
            .iter()
            .any(|&(p, q)| clip_segment(p, q, bx, by).is_some())
    })
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

/// A number in a label: four significant digits, scientific beyond 1e-3..1e4.
pub fn tick_text(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() {
        format!("{v}")
    } else if !(1e-3..1e4).contains(&a) {
        let s = format!("{v:.3e}");
        match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        }
    } else {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(t: &Ticks) -> Vec<&str> {
        t.labelled.iter().map(|(_, l)| l.as_str()).collect()
    }

    fn assert_good(lo: f64, hi: f64, log: bool, max: usize) -> Ticks {
        let t = ticks(lo, hi, log, max);
        let l = labels(&t);
        assert!(l.len() >= 3, "{lo}..{hi} log {log}: {l:?}");
        let mut sorted = l.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            l.len(),
            "{lo}..{hi} log {log}: repeated labels {l:?}"
        );
        let tol = 1e-12 * lo.abs().max(hi.abs());
        for &(v, _) in &t.labelled {
            assert!(v >= lo - tol && v <= hi + tol, "{v} outside {lo}..{hi}");
        }
        t
    }

    #[test]
    fn ticks_are_distinct_and_at_least_three_on_every_range() {
        for &(lo, hi) in &[
            (0.0, 1.0),
            (0.01195, 0.01205), // lambda_min of gf on digits: every label read 0.012
            (0.011996, 0.012001),
            (-3.0, 7.0),
            (0.0, 50.0),
            (1e100, 1e100 + 4.9e86),
            (-1e-7, 2e-7),
            (123456.0, 123457.0),
        ] {
            for max in [3, 5, 8] {
                assert_good(lo, hi, false, max);
            }
        }
        for &(lo, hi) in &[
            (1e-12, 1.0),
            (0.05, 2.0),
            (0.2, 0.8),
            (1.0, 1.3),
            (3e-5, 4e-4),
            (1e-300, 1e300),
        ] {
            for max in [3, 5, 8] {
                assert_good(lo, hi, true, max);
            }
        }
    }

    #[test]
    fn the_zero_of_a_linear_axis_is_labelled_zero_not_a_rounding_error() {
        // Kernel drift from 0: plotters labelled the bottom tick "3.5e-18".
        let t = assert_good(-0.0021, 0.0443, false, 8);
        assert_eq!(
            labels(&t),
            ["0.00", "0.01", "0.02", "0.03", "0.04"],
            "{:?}",
            t.labelled
        );
        assert_eq!(t.labelled[0].0, 0.0);
        assert!(t.labelled[0].0.is_sign_positive());
    }

    #[test]
    fn log_axes_over_several_decades_are_labelled_at_decades() {
        let t = assert_good(2e-9, 3.0, true, 9);
        assert_eq!(
            labels(&t),
            [
                "10⁻⁸", "10⁻⁷", "10⁻⁶", "10⁻⁵", "10⁻⁴", "10⁻³", "10⁻²", "10⁻¹", "10⁰"
            ]
        );
        // Nine decades, room for five: every other decade.
        let t = assert_good(2e-9, 3.0, true, 5);
        let v: Vec<f64> = t.labelled.iter().map(|x| x.0).collect();
        assert_eq!(v, [1e-8, 1e-6, 1e-4, 1e-2, 1.0]);
        // Less than three decades: 1, 2 and 5 times a decade.
        let t = assert_good(0.004, 120.0, true, 8);
        assert_eq!(labels(&t), ["0.01", "0.1", "1", "10", "100"]);
        let t = assert_good(0.15, 3.0, true, 8);
        assert_eq!(labels(&t), ["0.2", "0.5", "1", "2"]);
        let t = assert_good(2e-6, 3e-5, true, 8);
        assert_eq!(labels(&t), ["2×10⁻⁶", "5×10⁻⁶", "10⁻⁵", "2×10⁻⁵"]);
    }

    #[test]
    fn clipping_keeps_the_part_of_a_line_inside_the_box() {
        // A line from (0, 0) to (10, 10) in the box 2..8 x 0..5: from (2, 2) to (5, 5).
        let pieces = clip_polyline(
            &[(0.0, 0.0), (10.0, 10.0)],
            (2.0, 8.0),
            (0.0, 5.0),
            false,
            false,
        );
        assert_eq!(pieces.len(), 1);
        let p = &pieces[0];
        assert!(
            (p[0].0 - 2.0).abs() < 1e-12 && (p[0].1 - 2.0).abs() < 1e-12,
            "{p:?}"
        );
        assert!(
            (p[1].0 - 5.0).abs() < 1e-12 && (p[1].1 - 5.0).abs() < 1e-12,
            "{p:?}"
        );
        // Out and back in: two pieces; the points inside are kept exactly.
        let line = [(0.0, 1.0), (1.0, 1.0), (2.0, 100.0), (3.0, 1.0), (4.0, 1.0)];
        let pieces = clip_polyline(&line, (0.0, 4.0), (0.1, 10.0), false, true);
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert_eq!(pieces[0][0], (0.0, 1.0));
        assert_eq!(*pieces[1].last().unwrap(), (4.0, 1.0));
        // On a log axis the crossing is interpolated in log10: 1 -> 100 crosses 10 halfway.
        assert!(
            (pieces[0].last().unwrap().0 - 1.5).abs() < 1e-9,
            "{pieces:?}"
        );
        assert!((pieces[0].last().unwrap().1 - 10.0).abs() < 1e-9);
        // A zero on a log axis breaks the line.
        let pieces = clip_polyline(
            &[(0.0, 1.0), (1.0, 0.0), (2.0, 1.0)],
            (0.0, 2.0),
            (0.1, 10.0),
            false,
            true,
        );
        assert_eq!(pieces, vec![vec![(0.0, 1.0)], vec![(2.0, 1.0)]]);
    }

    fn line(label: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            color: BOUND_COLOR,
            dash: Dash::Solid,
            band: Vec::new(),
        }
    }

    #[test]
    fn a_bound_far_above_the_data_does_not_set_the_axis() {
        let mut fig = Figure::new("loss", "t", "L");
        fig.log_y = true;
        fig.series.push(line(
            "data",
            (0..=10).map(|k| (k as f64, 10f64.powi(-k))).collect(),
        ));
        fig.clipped.push(line(
            "bound",
            (0..=10)
                .map(|k| (k as f64, 1e4 * 10f64.powi(-k / 2)))
                .collect(),
        ));
        let ((x0, x1), (y0, y1)) = panel_ranges(&fig).unwrap();
        assert_eq!((x0, x1), (0.0, 10.0));
        assert!(
            y1 <= 1.5 * 1.0 + 1e-12 && y0 >= 1e-10 / 1.5 - 1e-24,
            "{y0}..{y1}"
        );
        let e = entries(&fig, ((x0, x1), (y0, y1)));
        assert_eq!(e[1].label, "bound (clipped)");
    }

    #[test]
    fn a_log_time_axis_starts_at_the_first_positive_sample() {
        let mut fig = Figure::new("loss", "t", "L");
        fig.log_x = true;
        fig.series.push(line(
            "data",
            (0..=500)
                .map(|k| (k as f64 * 0.1, 1.0 / (1.0 + k as f64)))
                .collect(),
        ));
        let ((x0, x1), _) = panel_ranges(&fig).unwrap();
        assert_eq!((x0, x1), (0.1, 50.0));
    }

    #[test]
    fn reference_lines_and_limits_set_the_y_axis() {
        let mut fig = Figure::new("lmin", "t", "l");
        fig.series.push(line("data", vec![(0.0, 0.3), (1.0, 0.31)]));
        fig.hlines.push(RefLine {
            y: 0.1,
            label: "half".into(),
            color: BOUND_COLOR,
        });
        let (_, (y0, y1)) = panel_ranges(&fig).unwrap();
        assert!(y0 < 0.1 && y1 > 0.31);
        fig.y_min = Some(0.0);
        fig.y_max = Some(1.0);
        assert_eq!(panel_ranges(&fig).unwrap().1, (0.0, 1.0));
    }

    #[test]
    fn panels_with_the_same_legend_share_one_and_leave_no_cell_empty() {
        let panel = |t: &str| {
            let mut f = Figure::new(t, "m", "y");
            f.width = 300;
            f.height = 260;
            f.series.push(line("GF", vec![(1.0, 1.0), (2.0, 0.5)]));
            f
        };
        // Four panels asked in rows of three: two rows of two and the legend under them.
        let svg = try_render_grid(&[panel("a"), panel("b"), panel("c"), panel("d")], 3).unwrap();
        assert_eq!(svg.matches("\nGF\n").count(), 1, "one legend");
        assert!(svg.contains("width=\"600\""), "two columns");
        // Five in rows of three: the legend fills the sixth cell.
        let svg = try_render_grid(
            &[panel("a"), panel("b"), panel("c"), panel("d"), panel("e")],
            3,
        )
        .unwrap();
        assert_eq!(svg.matches("\nGF\n").count(), 1);
        assert!(svg.contains("width=\"900\"") && svg.contains("height=\"520\""));
    }

    #[test]
    fn a_legend_takes_an_empty_corner_or_goes_beside_the_plot() {
        let mut fig = Figure::new("t", "x", "y");
        // A line along the top edge: the upper corners are crossed, the lower ones free.
        fig.series
            .push(line("top", (0..=20).map(|k| (k as f64, 1.0)).collect()));
        fig.series
            .push(line("bottom-left", vec![(0.0, 0.0), (5.0, 0.0)]));
        let r = ranges(&fig).unwrap();
        let spot = free_spot(&fig, r, (500.0, 300.0), (100, 40));
        assert_eq!(
            spot,
            Some((500.0 - 100.0 - 6.0, 300.0 - 40.0 - 6.0)),
            "lower right"
        );
        // Lines along the top and the bottom: the legend slides down the right side.
        fig.series
            .push(line("bottom", (0..=20).map(|k| (k as f64, 0.0)).collect()));
        let r = ranges(&fig).unwrap();
        let (x, y) = free_spot(&fig, r, (500.0, 300.0), (100, 40)).expect("the middle is free");
        assert_eq!(x, 394.0);
        assert!(y > 20.0 && y + 40.0 < 280.0, "{y}");
        // Lines across the whole area: nowhere.
        for k in 1..10 {
            let v = k as f64 / 10.0;
            fig.series.push(line("across", vec![(0.0, v), (20.0, v)]));
        }
        let r = ranges(&fig).unwrap();
        assert_eq!(free_spot(&fig, r, (500.0, 300.0), (100, 40)), None);
    }
}
