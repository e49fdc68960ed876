//! Figures: SVG rendering terminates and produces a picture for any finite positive data on a
//! log axis, including the subnormal losses and bounds that long or diverging runs produce.

mod common;

use common::TempDir;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::figures::{provenance, render, RunTables, Style};
use ntkdyn::output::files;
use ntkdyn::output::plot::{self, Dash, Figure, Series};
use ntkdyn::study::{self, RunConfig};
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

// issue 16, 17, 19: provenance, sharpness

/// A small run of `optimizer` written into `dir`, its summary.json as a JSON value.
fn small_run(optimizer: Optimizer, dir: &TempDir) -> serde_json::Value {
    let cfg = RunConfig {
        n: 8,
        d: 3,
        m: 60,
        t_end: 2.0,
        samples: 9,
        out: dir.path().to_path_buf(),
        ..RunConfig::defaults(optimizer)
    };
    files::write(&study::run(&cfg).expect("run"), dir.path()).expect("write");
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// The number after `prefix` in an SVG's text, up to the end of the text element.
fn number_after(svg: &str, prefix: &str) -> f64 {
    let at = svg.find(prefix).unwrap_or_else(|| panic!("no {prefix:?}"));
    let rest = &svg[at + prefix.len()..];
    let end = rest.find(['<', '\n']).unwrap_or(rest.len());
    rest[..end]
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{:?}", &rest[..end]))
}

#[test]
fn kernel_svg_draws_the_stability_edge_of_gd_at_two_over_eta_and_of_heavy_ball_at_two_one_plus_beta_over_eta(
) {
    let dir = TempDir::new("edge-gd");
    let summary = small_run(Optimizer::Gf, &dir);
    let eta = summary["discrete"]["eta"].as_f64().unwrap();
    let svg = std::fs::read_to_string(dir.join("kernel.svg")).unwrap();
    let edge = number_after(&svg, "stability edge of GD: 2/η = ");
    assert!(
        (edge - 2.0 / eta).abs() <= 1e-3 * edge,
        "{edge} against 2/{eta}"
    );

    let dir = TempDir::new("edge-hb");
    let summary = small_run(Optimizer::Hbf, &dir);
    let eta = summary["discrete"]["eta"].as_f64().unwrap();
    let beta = summary["discrete"]["method"]["beta"].as_f64().unwrap();
    assert!(beta > 0.0 && beta < 1.0, "{beta}");
    let svg = std::fs::read_to_string(dir.join("kernel.svg")).unwrap();
    let edge = number_after(&svg, "stability edge of heavy ball: 2(1+β)/η = ");
    let expected = 2.0 * (1.0 + beta) / eta;
    assert!(
        (edge - expected).abs() <= 1e-3 * edge,
        "{edge} against {expected}"
    );
}

#[test]
fn kernel_svg_draws_lambda_max_of_h_t_when_weight_csv_has_the_column_and_of_h0_otherwise() {
    let dir = TempDir::new("lambda-max");
    small_run(Optimizer::Gf, &dir);
    let kernel = |dir: &TempDir| -> String {
        let tables = RunTables::read(dir.path()).unwrap();
        let figures = render(&tables, &Style::default(), dir.path()).unwrap();
        let (_, bytes) = figures
            .into_iter()
            .find(|(n, _)| n == "kernel.svg")
            .unwrap();
        String::from_utf8(bytes).unwrap()
    };
    // The run records lambda_max(H(t)) in weight.csv: the panel draws it.
    let svg = kernel(&dir);
    assert!(svg.contains("λ_max(H(t))") && !svg.contains("λ_max(H(0)) = "));
    assert!(svg.contains("stability edge of GD"));
    // Without the column (a folder of an older version): lambda_max(H(0)) from the summary.
    let path = dir.join("weight.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "lambda_max").unwrap();
    let out: String = text
        .lines()
        .map(|line| {
            let mut cells: Vec<&str> = line.split(',').collect();
            cells.remove(col);
            cells.join(",") + "\n"
        })
        .collect();
    std::fs::write(&path, out).unwrap();
    let svg = kernel(&dir);
    assert!(svg.contains("λ_max(H(0)) = ") && !svg.contains("λ_max(H(t))"));
    assert!(svg.contains("stability edge of GD"));
}

#[test]
fn captions_name_the_data_m_t_eta_and_a_model_that_is_not_the_default() {
    let dir = TempDir::new("caption");
    let summary = small_run(Optimizer::Gf, &dir);
    let line = provenance(&summary);
    assert_eq!(
        line,
        "synthetic data n = 8, d = 3 · m = 60 · T = 2 · η = 0.01"
    );
    let loss = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
    assert!(loss.contains(&line), "loss.svg has no caption");
    // The activation when not relu, the training when not W alone; a missing key is fine.
    let mut v = summary.clone();
    v["config"]["activation"] = "erf".into();
    v["config"]["train"] = "wa".into();
    assert!(provenance(&v).ends_with(" · activation erf · both layers trained"));
    v["config"]["train"] = "w".into();
    assert!(provenance(&v).ends_with(" · η = 0.01 · activation erf"));
    let bare = serde_json::json!({"n": 5, "d": 2, "widths": [10, 40, 160], "t_end": 3.0});
    assert_eq!(
        provenance(&bare),
        "synthetic data n = 5, d = 2 · m = 10 to 160 · T = 3"
    );
}
