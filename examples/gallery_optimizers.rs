//! Gallery: gf, hbf and nag in weight space and error space with their discrete twins, on the
//! default problem. Writes output/gallery/optimizers.svg.
//! `cargo run --release --example gallery_optimizers`
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::figures::{compare_figure, RunTables, Style};
use ntkdyn::output::plot;
use ntkdyn::study::{compare, RunConfig};

fn main() -> Result<(), ntkdyn::Error> {
    let reports = compare(&RunConfig::defaults(Optimizer::Gf))?;
    let tables: Vec<RunTables> = reports.iter().map(RunTables::from_report).collect();
    let path = std::path::Path::new("output/gallery/optimizers.svg");
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    plot::save(&[compare_figure(&tables, &Style::default())], path)?;
    println!("wrote {}", path.display());
    Ok(())
}
