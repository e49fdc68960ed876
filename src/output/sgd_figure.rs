//! sgd.svg: one panel per space, loss against t on a log axis: the medians of SGD and of its
//! SDE with their q10-q90 bands over seeds, the mean of SGD (dotted), GD (markers), GF and,
//! in error space, the exact E\[L] of SGD (gray dashed: the mean of SGD should lie on it).
//!
//! Drawn by [`crate::output::plot`]'s figures and colours: GF and GD in GF's blue as in
//! every figure of a run, SGD in vermillion, the SDE in green.

use crate::optimizer::Optimizer;
use crate::output::plot::{Dash, Figure, Legend, RGBColor, Series, BOUND_COLOR};
use crate::output::style::{color, Style};
use crate::sgd::bands::Band;
use crate::sgd::{Process, Space};

/// Colour of SGD (Okabe-Ito vermillion).
pub const SGD_COLOR: RGBColor = RGBColor(213, 94, 0);
/// Colour of the SDE (Okabe-Ito bluish green).
pub const SDE_COLOR: RGBColor = RGBColor(0, 158, 115);

/// The panel of one space from its bands; `what` ends the title (batch and step).
pub fn panel(bands: &[Band], space: Space, what: &str, style: &Style) -> Option<Figure> {
    let of = |p: Process| bands.iter().find(|b| b.process == p && b.space == space);
    let mut fig = Figure::new(
        &format!("SGD and its SDE, {} space{what}", space.name()),
        "time t = kη",
        "loss L = ½|u − y|²",
    );
    fig.log_y = true;
    fig.legend = Legend::Auto;
    let median = |b: &Band| b.rows.iter().map(|r| (r.t, r.median)).collect::<Vec<_>>();
    let spread = |b: &Band| {
        b.rows
            .iter()
            .map(|r| (r.t, r.q10, r.q90))
            .collect::<Vec<_>>()
    };
    if let Some(b) = of(Process::Sgd) {
        let runs = b.rows.first().map_or(0, |r| r.runs);
        fig.series.push(Series {
            label: format!("SGD median, q10–q90 of {runs} runs"),
            points: median(b),
            color: SGD_COLOR,
            dash: Dash::Solid,
            band: spread(b),
        });
        fig.series.push(Series {
            label: "SGD mean".into(),
            points: b.rows.iter().map(|r| (r.t, r.mean)).collect(),
            color: SGD_COLOR,
            dash: Dash::Dotted,
            band: Vec::new(),
        });
    }
    if let Some(b) = of(Process::Sde) {
        fig.series.push(Series {
            label: "SDE median, q10–q90".into(),
            points: median(b),
            color: SDE_COLOR,
            dash: Dash::Dashed,
            band: spread(b),
        });
    }
    if let Some(b) = of(Process::Gd) {
        fig.series.push(Series {
            label: "GD".into(),
            points: median(b),
            color: color(Optimizer::Gf),
            dash: Dash::Markers,
            band: Vec::new(),
        });
    }
    if let Some(b) = of(Process::Gf) {
        fig.series.push(Series {
            label: "GF".into(),
            points: median(b),
            color: color(Optimizer::Gf),
            dash: Dash::Solid,
            band: Vec::new(),
        });
    }
    if let Some(b) = of(Process::Exact) {
        fig.series.push(Series {
            label: "exact E[L] of SGD".into(),
            points: median(b),
            color: BOUND_COLOR,
            dash: Dash::Dashed,
            band: Vec::new(),
        });
    }
    if fig.series.is_empty() {
        return None;
    }
    style.apply(&mut fig);
    Some(fig)
}

/// The panels of sgd.svg: weight space, then error space (those that ran).
pub fn figure(bands: &[Band], what: &str, style: &Style) -> Vec<Figure> {
    [Space::Weight, Space::Error]
        .into_iter()
        .filter_map(|space| panel(bands, space, what, style))
        .collect()
}
