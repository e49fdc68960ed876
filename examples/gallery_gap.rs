//! Gallery: the gap between each twin and its low- and high-resolution ODE against the clock
//! step h, in error space on the default problem (T = 10): slope 1 at low resolution, 2 at
//! high. Writes output/gallery/gap.svg.
//! `cargo run --release --example gallery_gap`
use ntkdyn::gap::{panel, run_gap};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::plot;
use ntkdyn::study::RunConfig;
use ntkdyn::theory::high_resolution::Resolution;

fn main() -> Result<(), ntkdyn::Error> {
    let mut panels = Vec::new();
    for optimizer in Optimizer::ALL {
        let mut cfg = RunConfig::defaults(optimizer);
        cfg.t_end = 10.0;
        // h = 0.04 ... 0.005 for gf, h = sqrt(eta) = 0.2 ... 0.025 for the momentum methods.
        let etas: Vec<f64> = match optimizer {
            Optimizer::Gf => vec![0.04, 0.02, 0.01, 0.005],
            _ => vec![0.04, 0.01, 0.0025, 0.000625],
        };
        let report = run_gap(&cfg, &etas, &[Resolution::Low, Resolution::High])?;
        for o in &report.orders {
            println!(
                "{optimizer} {}: order {:.3} (Delta), {:.3} (loss)",
                o.resolution.name(),
                o.order_delta,
                o.order_loss
            );
        }
        panels.push(panel(&report));
    }
    let path = std::path::Path::new("output/gallery/gap.svg");
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    plot::save_grid(&panels, 2, path)?;
    println!("wrote {}", path.display());
    Ok(())
}
