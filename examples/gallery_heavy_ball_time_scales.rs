//! Gallery: the two time scales of the heavy-ball method. With beta = 1 - b sqrt(eta) (momentum
//! tending to 1) its iterates follow the heavy ball with friction on the clock t = k sqrt(eta);
//! with beta fixed they follow gradient flow on the rescaled clock t = k eta / (1 - beta).
//! Writes output/gallery/heavy_ball_time_scales.svg.
//! `cargo run --release --example gallery_heavy_ball_time_scales`
use ntkdyn::optimizer::twin::{self as discrete, Twin};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::plot::{self, Dash, Figure, Series};
use ntkdyn::output::style::color;
use ntkdyn::study::{self, RunConfig, SpaceChoice};

fn flow(
    opt: Optimizer,
    t_end: f64,
) -> Result<(ntkdyn::study::Report, Vec<(f64, f64)>), ntkdyn::Error> {
    let cfg = RunConfig {
        space: SpaceChoice::Weight,
        discrete: false,
        t_end,
        ..RunConfig::defaults(opt)
    };
    let report = study::run(&cfg)?;
    let table = &report.weight.as_ref().expect("weight space ran").table;
    let points = table
        .column("t")
        .unwrap_or_default()
        .into_iter()
        .zip(table.column("loss").unwrap_or_default())
        .collect();
    Ok((report, points))
}

fn main() -> Result<(), ntkdyn::Error> {
    let t_end = 40.0;
    let (hbf, hbf_points) = flow(Optimizer::Hbf, t_end)?;
    let (_, gf_points) = flow(Optimizer::Gf, t_end)?;
    let b = (2.0 * hbf.setup.lambda0).sqrt();
    let (model, w0) = (&hbf.setup.model, &hbf.setup.w0);

    let mut left = Figure::new(
        "β = 1 − b√η: heavy ball with friction",
        "time t = k√η",
        "loss",
    );
    left.log_y = true;
    left.width = 560;
    left.series.push(Series {
        label: format!("HBF ODE, b = {b:.3}"),
        points: hbf_points,
        color: color(Optimizer::Hbf),
        dash: Dash::Solid,
        band: Vec::new(),
    });
    let mut right = Figure::new(
        "β fixed: rescaled gradient flow",
        "time t = kη/(1 − β)",
        "loss",
    );
    right.log_y = true;
    right.width = 560;
    right.series.push(Series {
        label: "gradient flow".into(),
        points: gf_points,
        color: color(Optimizer::Gf),
        dash: Dash::Solid,
        band: Vec::new(),
    });
    let shades = [plot::RGBColor(204, 121, 167), plot::RGBColor(86, 180, 233)];
    for (k, eta) in [0.04, 0.005].into_iter().enumerate() {
        let beta = 1.0 - b * f64::sqrt(eta);
        let run = discrete::run(model, w0, Twin::heavy_ball(beta), eta, t_end);
        left.series.push(Series {
            label: format!("heavy ball η = {eta}, β = {beta:.3}"),
            points: run.iterates.iter().map(|i| (i.t, i.loss)).collect(),
            color: shades[k],
            dash: Dash::Markers,
            band: Vec::new(),
        });
        let beta = 0.9;
        let eta_fixed = eta / 2.0;
        let scale = eta_fixed / (1.0 - beta);
        let run = discrete::run(
            model,
            w0,
            Twin::heavy_ball(beta),
            eta_fixed,
            t_end * eta_fixed.sqrt() / scale,
        );
        right.series.push(Series {
            label: format!("heavy ball η = {eta_fixed}, β = {beta}"),
            points: run
                .iterates
                .iter()
                .map(|i| (i.k as f64 * scale, i.loss))
                .collect(),
            color: shades[k],
            dash: Dash::Markers,
            band: Vec::new(),
        });
    }
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    let path = std::path::Path::new("output/gallery/heavy_ball_time_scales.svg");
    plot::save(&[left, right], path)?;
    println!("wrote {}", path.display());
    Ok(())
}
