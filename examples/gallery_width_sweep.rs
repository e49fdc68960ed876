//! Gallery: lazy training. Kernel drift, weight drift, activation changes, the gap between
//! weight and error space and the gap to the kernel predictor against the width m, mean and
//! range over 3 seeds, with the slope m^(-1/2). Writes output/gallery/width_sweep.svg and
//! output/gallery/width_sweep.csv.
//! `cargo run --release --example gallery_width_sweep`
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::figures::Style;
use ntkdyn::output::plot;
use ntkdyn::study::RunConfig;
use ntkdyn::sweep::{figure, run_sweep, to_csv, SweepConfig};

fn main() -> Result<(), ntkdyn::Error> {
    let base = RunConfig {
        t_end: 20.0,
        samples: 81,
        test_n: 20,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let cfg = SweepConfig {
        base,
        widths: vec![100, 400, 1600, 6400],
        seeds: 3,
        optimizers: vec![Optimizer::Gf],
        shard: None,
        progress: true,
    };
    let rows = run_sweep(&cfg)?;
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    std::fs::write("output/gallery/width_sweep.csv", to_csv(&rows)).expect("write csv");
    let path = std::path::Path::new("output/gallery/width_sweep.svg");
    plot::save_grid(&figure(&rows, &Style::default()), 3, path)?;
    println!("wrote output/gallery/width_sweep.svg");
    Ok(())
}
