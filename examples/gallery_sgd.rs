//! Gallery: mini-batch SGD against its SDE, GD and GF, at two batch sizes (rows), in weight
//! and in error space (columns), with the exact E[L] of SGD in error space. Writes
//! output/gallery/sgd.svg.
//! `cargo run --release --example gallery_sgd`
use ntkdyn::output::plot;
use ntkdyn::output::sgd_figure;
use ntkdyn::output::style::Style;
use ntkdyn::sgd::{self, SgdConfig};

fn main() -> Result<(), ntkdyn::Error> {
    let mut panels = Vec::new();
    for batch in [2, 10] {
        let mut cfg = SgdConfig::defaults(batch);
        // A step near the middle of SGD's stable range at B = 2, so the noise shows.
        cfg.run.eta = 0.1;
        cfg.run.t_end = 20.0;
        cfg.run.progress = false;
        let report = sgd::run(&cfg)?;
        let what = format!(
            ", B = {batch}, η = {} (η_crit = {:.3})",
            cfg.run.eta,
            report.eta_crit.unwrap_or(f64::NAN)
        );
        println!(
            "B = {batch}: c_B = {:.4}, eta_crit = {:?}, 2/lambda_max = {:.4}",
            report.c_b, report.eta_crit, report.gd_edge
        );
        panels.extend(sgd_figure::figure(&report.bands, &what, &Style::default()));
    }
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    let path = std::path::Path::new("output/gallery/sgd.svg");
    plot::save_grid(&panels, 2, path)?;
    println!("wrote {}", path.display());
    Ok(())
}
