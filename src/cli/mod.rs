//! The command line of the ntkdyn binary: parse ([`args`], [`config_file`]) into the
//! library's configurations, call the library, print ([`human`]) and show progress
//! ([`progress`]). Nothing in the library names this module, clap, indicatif or toml.

pub mod args;
pub mod config_file;
pub mod human;
pub mod progress;

use clap::Parser;
use std::ffi::OsString;

use args::{Cli, Command, PlotArgs, RunArgs, SweepArgs};
use human::{human_summary, names, say, sayln};
use ntkdyn::error::{Error, InputError};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::figures::{self, RunTables};
use ntkdyn::output::files;
use ntkdyn::output::plot;
use ntkdyn::output::style::Style;
use ntkdyn::study::{self, RunConfig};
use ntkdyn::{io, sweep};

/// A command line that could not be turned into a [`Cli`].
#[derive(Debug, thiserror::Error)]
pub enum ParseFailure {
    /// clap's own error (also --help and --version, which it prints itself).
    #[error("{0}")]
    Clap(clap::Error),
    /// The --config file could not be read.
    #[error("{0}")]
    Config(InputError),
}

/// Parse the command line, with the options of `--config FILE.toml` inserted before those
/// given on the command line. Arguments stay `OsString`s end to end, so that `--out` and the
/// file options name exactly the bytes given.
pub fn parse_args<I, T>(args: I) -> Result<Cli, ParseFailure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let args = match config_file::config_path(&args) {
        Some(path) => config_file::with_config(args, &path).map_err(ParseFailure::Config)?,
        None => args,
    };
    Cli::try_parse_from(args).map_err(ParseFailure::Clap)
}

/// Run a parsed command line; the error is the one line to print.
pub fn run(cli: Cli) -> Result<(), Error> {
    let (optimizer, args) = match &cli.command {
        Command::Run(o, a) => (*o, a),
        Command::Compare(a) => return compare(a),
        Command::Sweep(a) => return sweep(a),
        Command::Plot(p) => return plot(p),
    };
    let cfg = args.config(optimizer);
    let report = study::run_with(&cfg, &progress::Bar::default())?;
    let written = files::write(&report, &cfg.out)?;
    if !args.quiet {
        for w in &report.setup.warnings {
            eprintln!("warning: {w}");
        }
        say(&human_summary(&report));
        sayln!("wrote {}: {}", cfg.out.display(), names(&written));
    }
    report.failure().map_or(Ok(()), |e| Err(e.into()))
}

fn compare(args: &RunArgs) -> Result<(), Error> {
    let mut cfg = args.config(Optimizer::Gf);
    if args.out.is_none() {
        cfg.out = RunConfig::default_out("compare");
    }
    let reports = study::compare(&cfg)?;
    let mut tables = Vec::new();
    for report in &reports {
        files::write(report, &report.config.out)?;
        tables.push(RunTables::from_report(report));
        if !args.quiet {
            say(&human_summary(report));
        }
    }
    let fig = figures::compare_figure(&tables, &Style::default());
    let path = cfg.out.join("compare.svg");
    plot::save(&[fig], &path)?;
    if !args.quiet {
        for w in &reports[0].setup.warnings {
            eprintln!("warning: {w}");
        }
        let names: Vec<&str> = Optimizer::ALL.iter().map(|o| o.name()).collect();
        sayln!(
            "wrote {} and the runs in {}/{{{}}}",
            path.display(),
            cfg.out.display(),
            names.join(",")
        );
    }
    reports
        .iter()
        .find_map(|r| r.failure())
        .map_or(Ok(()), |e| Err(e.into()))
}

fn sweep(args: &SweepArgs) -> Result<(), Error> {
    let mut base = args.run.config(Optimizer::Gf);
    if args.run.out.is_none() {
        base.out = RunConfig::default_out("sweep");
    }
    let dir = base.out.clone();
    if args.merge {
        let rows = sweep::merge(&dir)?;
        let written = sweep::write(&rows, &dir, "sweep.csv", true)?;
        if !args.run.quiet {
            sayln!("merged {} rows; wrote {}", rows.len(), names(&written));
        }
        return Ok(());
    }
    let cfg = sweep::SweepConfig {
        base,
        widths: args.widths.clone(),
        seeds: args.seeds,
        optimizers: args.optimizers.clone(),
        shard: args.shard,
        progress: !args.run.quiet,
    };
    let rows = sweep::run_sweep_with(&cfg, &progress::Runs::default())?;
    let written = sweep::write_run(&cfg, &rows, &dir)?;
    if !args.run.quiet {
        sayln!(
            "{} runs; wrote {} in {}",
            rows.len(),
            names(&written),
            dir.display()
        );
    }
    Ok(())
}

fn plot(args: &PlotArgs) -> Result<(), Error> {
    let tables = RunTables::read(&args.dir)?;
    let style = Style {
        width: args.width_px,
        height: args.height_px,
        log_x: args.log_x,
        title: args.title.clone(),
    };
    for (name, bytes) in figures::render(&tables, &style, &args.dir)? {
        io::write_atomic(&args.dir.join(&name), &bytes)?;
        sayln!("wrote {}", args.dir.join(&name).display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(argv: &[&str], optimizer: Optimizer) -> RunConfig {
        match parse_args(argv).unwrap().command {
            Command::Run(_, a) | Command::Compare(a) => a.config(optimizer),
            Command::Sweep(s) => s.run.config(optimizer),
            Command::Plot(_) => unreachable!("not a run"),
        }
    }

    #[test]
    fn the_command_lines_defaults_are_the_librarys_for_every_option() {
        for o in Optimizer::ALL {
            assert_eq!(
                config_of(&["ntkdyn", o.name()], o),
                RunConfig::defaults(o),
                "{o}"
            );
        }
        // sweep and compare share the run options.
        let sweep = config_of(&["ntkdyn", "sweep", "--widths", "10"], Optimizer::Gf);
        assert_eq!(sweep, RunConfig::defaults(Optimizer::Gf));
    }

    #[test]
    fn every_option_moves_its_field_of_the_config() {
        let cfg = config_of(
            &[
                "ntkdyn",
                "hbf",
                "--n",
                "7",
                "--d",
                "3",
                "--m",
                "11",
                "--seed",
                "4",
                "--space",
                "error",
                "--kernel",
                "hinf",
                "--t-end",
                "2",
                "--samples",
                "5",
                "--solver",
                "rk4",
                "--rtol",
                "1e-5",
                "--atol",
                "1e-8",
                "--step",
                "0.1",
                "--max-step",
                "0.2",
                "--friction",
                "0.5",
                "--gamma",
                "4",
                "--alpha",
                "2.5",
                "--lambda0",
                "0.3",
                "--eta",
                "auto",
                "--test-n",
                "3",
                "--no-discrete",
                "--out",
                "x",
                "--quiet",
                "--normalize",
            ],
            Optimizer::Hbf,
        );
        let d = RunConfig::defaults(Optimizer::Hbf);
        assert_eq!((cfg.n, cfg.d, cfg.m, cfg.seed), (7, 3, 11, 4));
        assert_eq!(cfg.space, ntkdyn::study::SpaceChoice::Error);
        assert_eq!(cfg.kernel, ntkdyn::study::KernelChoice::Hinf);
        assert_eq!((cfg.t_end, cfg.samples), (2.0, 5));
        assert_eq!(cfg.solver, ntkdyn::integrate::Solver::Rk4);
        assert_eq!((cfg.rtol, cfg.atol, cfg.step), (1e-5, 1e-8, 0.1));
        assert_eq!((cfg.max_step, cfg.friction), (Some(0.2), Some(0.5)));
        assert_eq!((cfg.gamma, cfg.alpha, cfg.lambda0), (4.0, 2.5, Some(0.3)));
        assert!(cfg.eta_auto && cfg.eta.is_nan());
        assert_eq!(cfg.test_n, 3);
        assert!(!cfg.discrete && !cfg.progress && cfg.normalize);
        assert_eq!(cfg.out, std::path::PathBuf::from("x"));
        assert_ne!(cfg.n, d.n);
    }

    #[cfg(unix)]
    #[test]
    fn an_out_path_that_is_not_utf8_reaches_the_config_byte_for_byte() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let raw = b"out\xfe".to_vec();
        let dir = std::env::temp_dir().join(format!("ntkdyn-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml = dir.join("c.toml");
        std::fs::write(&toml, "m = 12\n").unwrap();
        for with_config in [false, true] {
            let mut argv: Vec<OsString> = ["ntkdyn", "gf", "--out"]
                .iter()
                .map(OsString::from)
                .collect();
            argv.push(OsString::from_vec(raw.clone()));
            if with_config {
                argv.push("--config".into());
                argv.push(toml.clone().into());
            }
            let Command::Run(Optimizer::Gf, a) = parse_args(argv).unwrap().command else {
                panic!("gf parses as gf")
            };
            let cfg = a.config(Optimizer::Gf);
            assert_eq!(cfg.out.as_os_str().as_bytes(), &raw[..]);
            assert_eq!(cfg.m, if with_config { 12 } else { 2000 });
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
