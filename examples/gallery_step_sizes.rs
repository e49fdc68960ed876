//! Gallery: gradient flow against gradient descent at several step sizes on the clock
//! t = k eta; the gap closes as eta shrinks. Writes output/gallery/step_sizes.svg.
//! `cargo run --release --example gallery_step_sizes`
use ntkdyn::optimizer::twin::{self as discrete, Twin};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::plot::{self, Dash, Figure, Series};
use ntkdyn::output::style::color;
use ntkdyn::study::{self, RunConfig, SpaceChoice};

fn main() -> Result<(), ntkdyn::Error> {
    let cfg = RunConfig {
        space: SpaceChoice::Weight,
        discrete: false,
        t_end: 30.0,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let report = study::run(&cfg)?;
    let flow = report.weight.as_ref().expect("weight space ran");
    let t = flow.table.column("t").unwrap_or_default();
    let loss = flow.table.column("loss").unwrap_or_default();
    let lambda_max = report.setup.h0_extremes.1;
    let mut fig = Figure::new(
        "Gradient flow against gradient descent (clock t = kη)",
        "time t",
        "loss L(t) = ½|u − y|²",
    );
    fig.log_y = true;
    fig.series.push(Series {
        label: "gradient flow (weight space)".into(),
        points: t.into_iter().zip(loss).collect(),
        color: color(Optimizer::Gf),
        dash: Dash::Solid,
        band: Vec::new(),
    });
    let shades = [
        plot::RGBColor(213, 94, 0),
        plot::RGBColor(204, 121, 167),
        plot::RGBColor(0, 158, 115),
    ];
    for (k, factor) in [1.6, 0.8, 0.2].into_iter().enumerate() {
        let eta = factor / lambda_max;
        let gd = discrete::run(
            &report.setup.model,
            &report.setup.w0,
            Twin::gd(),
            eta,
            cfg.t_end,
        );
        fig.series.push(Series {
            label: format!("GD, η = {factor}/λ_max(H(0)) = {eta:.3}"),
            points: gd.iterates.iter().map(|i| (i.t, i.loss)).collect(),
            color: shades[k],
            dash: Dash::Markers,
            band: Vec::new(),
        });
    }
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    let path = std::path::Path::new("output/gallery/step_sizes.svg");
    plot::save(&[fig], path)?;
    println!("wrote {}", path.display());
    Ok(())
}
