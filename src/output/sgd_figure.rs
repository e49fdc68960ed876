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

// issue 16: sgd.svg drawn again by `ntkdyn plot`, with its provenance
/// The end of sgd.svg's titles: the batch, its sampling and eta.
pub fn what(batch: usize, sampling: &str, eta: f64) -> String {
    format!(
        ", B = {batch} {sampling} replacement, η = {}",
        crate::io::format_f64(eta)
    )
}

/// The panels of sgd.svg from its bands and the text of its summary.json: the titles end in
/// [`what`] and the caption is the summary's [`crate::output::figures::provenance`]. The run
/// and `ntkdyn plot` both draw through here, from the same summary.json.
pub fn from_summary(bands: &[Band], summary: &serde_json::Value, style: &Style) -> Vec<Figure> {
    let what = what(
        summary["batch"].as_u64().unwrap_or(0) as usize,
        summary["sampling"].as_str().unwrap_or("?"),
        summary["eta"].as_f64().unwrap_or(f64::NAN),
    );
    let caption = crate::output::figures::provenance(summary);
    let mut panels = figure(bands, &what, style);
    for p in &mut panels {
        p.caption = caption.clone();
    }
    panels
}

/// The panels of sgd.svg: weight space, then error space (those that ran).
pub fn figure(bands: &[Band], what: &str, style: &Style) -> Vec<Figure> {
    [Space::Weight, Space::Error]
        .into_iter()
        .filter_map(|space| panel(bands, space, what, style))
        .collect()
}
