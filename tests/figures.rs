//! Figures: SVG rendering terminates and produces a picture for any finite positive data on a
//! log axis, including the subnormal losses and bounds that long or diverging runs produce.

use ntkdyn::output::plot::{self, Dash, Figure, Series};
use std::sync::mpsc;
use std::time::Duration;

/// Render a one-series log-y figure in a helper thread; None if it takes over 5 s.
fn render_log_y(points: Vec<(f64, f64)>) -> Option<Result<String, String>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut fig = Figure::new("loss", "t", "L");
        fig.log_y = true;
        fig.series.push(Series {
            label: "loss".into(),
            points,
            color: plot::EXTRA_COLOR,
            dash: Dash::Solid,
            band: Vec::new(),
        });
        let _ = tx.send(plot::render_svg(&[fig]));
    });
    rx.recv_timeout(Duration::from_secs(5)).ok()
}

#[test]
fn log_axis_figure_renders_when_data_span_more_than_308_decades() {
    // hi / lo overflows f64 (a diverging run: loss 1e300 beside an error-space loss 1e-300).
    let svg = render_log_y(vec![(0.0, 1e-300), (1.0, 1e300)])
        .expect("render finished")
        .expect("render succeeded");
    assert!(
        svg.starts_with("<svg") || svg.contains("<svg"),
        "not an SVG"
    );
    assert!(svg.contains("loss"), "the legend or title is missing");
}

#[test]
fn log_axis_figure_renders_when_a_value_is_subnormal() {
    // exp(-2 mu t) L(0) underflows through the subnormals (below 2.2e-308) for 2 mu t in
    // (708, 745); a GD run that diverges has such values too. Rendering must terminate.
    for tiny in [1e-308, 1e-310, 5e-324] {
        let out = render_log_y(vec![(0.0, 1.0), (1.0, 1e-3), (2.0, tiny)]);
        let svg = out
            .unwrap_or_else(|| panic!("render_svg did not finish within 5 s with a value {tiny:e}"))
            .expect("render succeeded");
        assert!(svg.contains("<svg"));
    }
}
