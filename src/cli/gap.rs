//! `ntkdyn gap OPT --etas LIST [--resolution low|high|both]`: the gap between a twin and its
//! ODEs against the clock step, in error space (the library's [`ntkdyn::gap`]).

use clap::Args;
use ntkdyn::error::Error;
use ntkdyn::gap::{self, GAP_FILES};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::outdir::Claim;
use ntkdyn::study::{RunConfig, SpaceChoice};

use super::args::{ResolutionArg, RunArgs};
use super::human::sayln;

/// Options of `ntkdyn gap`.
#[derive(Debug, Clone, Args)]
pub struct GapArgs {
    /// The optimizer: gf, hbf, nagsc or nag
    #[arg(value_parser = |s: &str| s.parse::<Optimizer>().map_err(|e| e.to_string()))]
    pub optimizer: Optimizer,
    /// Step sizes eta, comma-separated, e.g. 0.04,0.01,0.0025
    #[arg(long, value_delimiter = ',', required = true)]
    pub etas: Vec<f64>,
    #[command(flatten)]
    pub run: RunArgs,
    /// Whether --space was given (gap runs error space alone unless it was).
    #[arg(skip)]
    pub space_given: bool,
}

/// The about line of `ntkdyn gap`.
pub const ABOUT: &str = "The gap between a twin and its low- and high-resolution ODEs against the clock step h, in error space (and in weight space, on the outputs, with --space weight|both), with fitted orders (DIR/gap.csv, DIR/gap.svg, DIR/summary.json; default DIR output/gap)";

/// Run `ntkdyn gap`: claim DIR, compute, write, say where.
pub fn run(args: &GapArgs) -> Result<(), Error> {
    let mut cfg = args.run.config(args.optimizer);
    if args.run.out.is_none() {
        cfg.out = RunConfig::default_out("gap");
    }
    // Error space unless --space is given (weight space runs the network for every eta).
    let spaces = match (args.space_given, cfg.space) {
        (false, _) | (true, SpaceChoice::Error) => vec![SpaceChoice::Error],
        (true, SpaceChoice::Weight) => vec![SpaceChoice::Weight],
        (true, SpaceChoice::Both) => vec![SpaceChoice::Error, SpaceChoice::Weight],
    };
    gap::validate(&cfg, &args.etas)?;
    gap::validate_spaces(&cfg, &spaces)?;
    let inputs = ntkdyn::output::files::inputs(&cfg);
    let mut claim = Claim::replace(&cfg.out, &GAP_FILES, &inputs, args.run.force)?;
    // The run options' --resolution: low, high or (the default here) both.
    let resolutions = args
        .run
        .resolution
        .unwrap_or(ResolutionArg::Both)
        .resolutions();
    let report = gap::run_gap_in(&cfg, &args.etas, &resolutions, &spaces)?;
    gap::put(&report, &mut claim)?;
    let done = claim.commit()?;
    if !args.run.quiet {
        for o in &report.orders {
            sayln!(
                "{} {} resolution: fitted order {:.3} (Delta), {:.3} (loss)",
                o.space,
                o.resolution.name(),
                o.order_delta,
                o.order_loss
            );
        }
        sayln!(
            "wrote {}: {}",
            cfg.out.display(),
            super::human::names(&done.written)
        );
    }
    Ok(())
}
