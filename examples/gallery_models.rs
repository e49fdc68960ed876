//! Gallery: lazy training with and without a trained output layer. The relative kernel drift
//! |H(T) - H(0)|_F / |H(0)|_F and the gap between weight and error space
//! max_t |L_w - L_e| / L(0) against the width m for relu, erf and gelu, each with the first
//! layer trained (`--train w`, solid) and both layers (`--train wa`, dashed); gradient flow to
//! T = 5 on synthetic data (n = 20, d = 5), one seed.
//! Writes output/gallery/models.svg and output/gallery/models.csv.
//! `cargo run --release --example gallery_models`
use ntkdyn::model::{Activation, Train};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::plot::{self, Dash, Figure, Legend, RGBColor, Series};
use ntkdyn::study::{self, RunConfig, SpaceChoice};

const WIDTHS: [usize; 4] = [100, 400, 1600, 6400];
const SEEDS: u64 = 1;

/// (relative kernel drift at T, max_t |L_w - L_e| / L(0)) of one run.
fn measure(
    sigma: Activation,
    train: Train,
    m: usize,
    seed: u64,
) -> Result<(f64, f64), ntkdyn::Error> {
    let cfg = RunConfig {
        t_end: 5.0,
        samples: 21,
        discrete: false,
        progress: false,
        space: SpaceChoice::Both,
        activation: sigma,
        train,
        n: 20,
        d: 5,
        m,
        seed,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let report = study::run(&cfg)?;
    let weight = report.weight.as_ref().expect("weight space ran");
    let error = report.error.as_ref().expect("error space ran");
    let drift = weight.table.column("kernel_drift").expect("kernel_drift");
    let relative = drift[drift.len() - 1] / report.setup.h0.norm();
    let (lw, le) = (
        weight.table.column("loss").expect("loss"),
        error.table.column("loss").expect("loss"),
    );
    let gap = lw
        .iter()
        .zip(&le)
        .map(|(a, b)| (a - b).abs() / le[0])
        .fold(0.0, f64::max);
    Ok((relative, gap))
}

fn main() -> Result<(), ntkdyn::Error> {
    let activations = [
        (Activation::Relu, RGBColor(0, 114, 178)),
        (Activation::Erf, RGBColor(213, 94, 0)),
        (Activation::Gelu, RGBColor(0, 158, 115)),
    ];
    let mut drift = Figure::new("kernel drift", "width m", "|H(T) - H(0)|_F / |H(0)|_F");
    let mut gap = Figure::new(
        "weight space vs error space (H(0))",
        "width m",
        "max_t |L_w - L_e| / L(0)",
    );
    for fig in [&mut drift, &mut gap] {
        fig.log_x = true;
        fig.log_y = true;
        fig.legend = Legend::LowerLeft;
        fig.caption =
            "gf, T = 5, n = 20, d = 5, seed 0; solid: --train w, dashed: --train wa".into();
    }
    let mut csv = String::from("activation,train,m,kernel_drift_rel,loss_gap\n");
    for (sigma, color) in activations {
        for (train, dash) in [(Train::W, Dash::Solid), (Train::Wa, Dash::Dashed)] {
            let mut drift_points = Vec::new();
            let mut gap_points = Vec::new();
            for m in WIDTHS {
                let (mut d, mut g) = (0.0, 0.0);
                for seed in 0..SEEDS {
                    let (dr, gp) = measure(sigma, train, m, seed)?;
                    d += dr / SEEDS as f64;
                    g += gp / SEEDS as f64;
                }
                eprintln!(
                    "{} {} m = {m}: drift {d:.3e}, gap {g:.3e}",
                    sigma.name(),
                    train.name()
                );
                csv.push_str(&format!(
                    "{},{},{m},{d:e},{g:e}\n",
                    sigma.name(),
                    train.name()
                ));
                drift_points.push((m as f64, d));
                gap_points.push((m as f64, g));
            }
            let label = format!("{} {}", sigma.name(), train.name());
            for (fig, points) in [(&mut drift, drift_points), (&mut gap, gap_points)] {
                fig.series.push(Series {
                    label: label.clone(),
                    points,
                    color,
                    dash,
                    band: Vec::new(),
                });
            }
        }
    }
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    std::fs::write("output/gallery/models.csv", csv).expect("write csv");
    let path = std::path::Path::new("output/gallery/models.svg");
    plot::save_grid(&[drift, gap], 2, path)?;
    println!("wrote output/gallery/models.svg");
    Ok(())
}
