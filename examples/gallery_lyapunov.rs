//! Gallery: the Lyapunov functions of the three optimizers along weight and error space,
//! HBF with the envelope exp(-b t/2) V(0). Writes output/gallery/lyapunov.svg.
//! `cargo run --release --example gallery_lyapunov`
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::figures::{figures, RunTables, Style};
use ntkdyn::output::plot;
use ntkdyn::study::{compare, RunConfig};

fn main() -> Result<(), ntkdyn::Error> {
    let cfg = RunConfig {
        discrete: false,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let mut panels = Vec::new();
    for report in compare(&cfg)? {
        let tables = RunTables::from_report(&report);
        let style = Style {
            width: Some(520),
            height: Some(400),
            ..Style::default()
        };
        for (name, figs) in figures(&tables, &style) {
            if name == "lyapunov.svg" {
                panels.extend(figs);
            }
        }
    }
    std::fs::create_dir_all("output/gallery").expect("output/gallery");
    let path = std::path::Path::new("output/gallery/lyapunov.svg");
    plot::save(&panels, path)?;
    println!("wrote {}", path.display());
    Ok(())
}
