//! Gallery: lazy training for three activations. The kernel drift max_t |H(t) - H(0)|_F and
//! the gap between weight and error space max_t |L_w - L_e| / L(0) against the width m for
//! relu, erf and gelu (gf to T = 5, first layer trained), mean and range over 2 seeds, beside the slope m^(-1/2).
//! Writes output/gallery/activations.svg and output/gallery/activations.csv.
//! `cargo run --release --example gallery_activations`
use ntkdyn::model::Activation;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::plot::{self, Dash, Figure, Legend, RGBColor, Series, BOUND_COLOR};
use ntkdyn::study::RunConfig;
use ntkdyn::sweep::{run_sweep, to_csv, SweepConfig, SweepRow};

const WIDTHS: [usize; 3] = [100, 400, 1600];
const SEEDS: usize = 2;

fn main() -> Result<(), ntkdyn::Error> {
    let activations = [
        (Activation::Relu, RGBColor(0, 114, 178)),
        (Activation::Erf, RGBColor(213, 94, 0)),
        (Activation::Gelu, RGBColor(0, 158, 115)),
    ];
    let mut drift = Figure::new("kernel drift", "width m", "max_t |H(t) - H(0)|_F");
    let mut gap = Figure::new(
        "weight space vs error space (H(0))",
        "width m",
        "max_t |L_w - L_e| / L(0)",
    );
    for fig in [&mut drift, &mut gap] {
        fig.log_x = true;
        fig.log_y = true;
        fig.legend = Legend::LowerLeft;
    }
    let mut csv = String::new();
    for (sigma, color) in activations {
        let base = RunConfig {
            t_end: 5.0,
            samples: 21,
            discrete: false,
            activation: sigma,
            ..RunConfig::defaults(Optimizer::Gf)
        };
        let cfg = SweepConfig {
            base,
            widths: WIDTHS.to_vec(),
            seeds: SEEDS,
            optimizers: vec![Optimizer::Gf],
            shard: None,
            progress: true,
        };
        let rows = run_sweep(&cfg)?;
        csv.push_str(&format!("# activation {}\n", sigma.name()));
        csv.push_str(&to_csv(&rows));
        for (fig, value) in [
            (
                &mut drift,
                (|r: &SweepRow| r.max_kernel_drift) as fn(&SweepRow) -> f64,
            ),
            (&mut gap, |r: &SweepRow| r.max_loss_gap),
        ] {
            let mean = |m: usize| {
                let v: Vec<f64> = rows.iter().filter(|r| r.m == m).map(value).collect();
                v.iter().sum::<f64>() / v.len() as f64
            };
            let band = WIDTHS
                .iter()
                .map(|&m| {
                    let v = rows.iter().filter(|r| r.m == m).map(value);
                    let (lo, hi) = v.fold((f64::INFINITY, 0.0_f64), |(lo, hi), x| {
                        (lo.min(x), hi.max(x))
                    });
                    (m as f64, lo, hi)
                })
                .collect();
            fig.series.push(Series {
                label: sigma.name().into(),
                points: WIDTHS.iter().map(|&m| (m as f64, mean(m))).collect(),
                color,
                dash: Dash::Solid,
                band,
            });
        }
    }
    for fig in [&mut drift, &mut gap] {
        // The slope m^(-1/2) through the relu mean at the smallest width.
        let start = fig.series[0].points[0];
        fig.series.push(Series {
            label: "m^(-1/2)".into(),
            points: WIDTHS
                .iter()
                .map(|&m| (m as f64, start.1 * (start.0 / m as f64).sqrt()))
                .collect(),
            color: BOUND_COLOR,
            dash: Dash::Dashed,
            band: Vec::new(),
        });
    }
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    std::fs::write("output/gallery/activations.csv", csv).expect("write csv");
    let path = std::path::Path::new("output/gallery/activations.svg");
    plot::save_grid(&[drift, gap], 2, path)?;
    println!("wrote output/gallery/activations.svg");
    Ok(())
}
