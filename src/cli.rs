//! Command-line parsing (clap derive) into a [`RunConfig`], and the human summary of a run.
//! The binary only calls [`main`].

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::error::Error;
use crate::figures::{self, RunTables, Style};
use crate::integrate::Solver;
use crate::run::{self, KernelChoice, Optimizer, Report, RunConfig, SpaceChoice};
use crate::{io, plot};

/// ntkdyn: training dynamics of a two-layer ReLU network as ODEs, in weight space and in error
/// space, beside the discrete optimizers they come from.
#[derive(Debug, Parser)]
#[command(name = "ntkdyn", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gradient flow W' = -grad L (error space Delta' = -H Delta) beside gradient descent.
    Gf(RunArgs),
    /// Heavy ball with friction W'' + b W' + grad L = 0 beside the heavy-ball method.
    Hbf(RunArgs),
    /// Nesterov's ODE W'' + (gamma/t) W' + grad L = 0 beside NAG.
    Nag(RunArgs),
    /// gf, hbf and nag on the same data and initialization, with their twins, on one figure
    /// (DIR/compare.svg; each run's files in DIR/gf, DIR/hbf, DIR/nag; default DIR output/compare).
    Compare(RunArgs),
    /// The same run over widths m and seeds: kernel drift, weight drift, activation changes,
    /// the weight-error space gap (and test_gap) against m (DIR/sweep.csv, DIR/sweep.svg;
    /// default DIR output/sweep).
    Sweep(SweepArgs),
    /// Render the figures of a run again from its CSV files and summary.json.
    Plot(PlotArgs),
}

/// Options of `ntkdyn sweep`.
#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Widths m, comma-separated, e.g. 100,400,1600,6400
    #[arg(long, value_delimiter = ',', required_unless_present = "merge")]
    pub widths: Vec<usize>,
    /// Number of seeds per width: --seed, --seed + 1, ...
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    pub seeds: usize,
    /// Optimizers, comma-separated
    #[arg(long, value_enum, value_delimiter = ',', default_value = "gf")]
    pub optimizers: Vec<Optimizer>,
    /// Run only slice I of N (1 <= I <= N) and write DIR/sweep-shard-I-of-N.csv, for cluster array jobs
    #[arg(long, value_name = "I/N", value_parser = crate::sweep::parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Join the shard CSVs in --out into sweep.csv and sweep.svg instead of running
    #[arg(long)]
    pub merge: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of `ntkdyn plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// A directory written by `ntkdyn gf|hbf|nag` (or one run of `compare`)
    pub dir: PathBuf,
    /// Width of one panel in pixels
    #[arg(long)]
    pub width_px: Option<u32>,
    /// Height in pixels
    #[arg(long)]
    pub height_px: Option<u32>,
    /// Logarithmic time axis
    #[arg(long)]
    pub log_x: bool,
    /// Title of the loss figure
    #[arg(long)]
    pub title: Option<String>,
    /// Options from a TOML file; options on the command line override it
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
}

/// A command line that could not be turned into a [`Cli`].
#[derive(Debug)]
pub enum ParseFailure {
    /// clap's own error (also --help and --version, which it prints itself).
    Clap(clap::Error),
    /// The --config file could not be read.
    Config(Error),
}

/// Parse the command line, with the options of `--config FILE.toml` inserted before those
/// given on the command line (which therefore win; a key given on both is taken from the
/// command line only).
pub fn parse_args<I, T>(args: I) -> Result<Cli, ParseFailure>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into().to_string_lossy().into_owned())
        .collect();
    let config = args.iter().enumerate().find_map(|(k, a)| {
        if a == "--config" {
            args.get(k + 1).cloned()
        } else {
            a.strip_prefix("--config=").map(str::to_string)
        }
    });
    let args = match config {
        Some(path) if args.len() >= 2 => {
            let mut injected =
                config_flags(std::path::Path::new(&path)).map_err(ParseFailure::Config)?;
            let given = |flag: &str| {
                args.iter()
                    .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
            };
            injected.retain(|(flag, _)| !given(flag));
            let mut out = args[..2].to_vec();
            for (flag, value) in injected {
                out.push(flag);
                out.extend(value);
            }
            out.extend_from_slice(&args[2..]);
            out
        }
        _ => args,
    };
    Cli::try_parse_from(args).map_err(ParseFailure::Clap)
}

/// The options of a TOML file as (--flag, value) pairs.
fn config_flags(path: &std::path::Path) -> Result<Vec<(String, Option<String>)>, Error> {
    let bad = |msg: String| -> Error {
        crate::error::InputError::File {
            path: path.to_path_buf(),
            msg,
        }
        .into()
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        let scalar = |v: &toml::Value| -> Result<String, Error> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                other => Err(bad(format!(
                    "{key} = {other}: expected a number or a string"
                ))),
            }
        };
        match &value {
            toml::Value::Boolean(true) => flags.push((flag, None)),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                let parts: Result<Vec<String>, Error> = items.iter().map(scalar).collect();
                flags.push((flag, Some(parts?.join(","))));
            }
            v => flags.push((flag, Some(scalar(v)?))),
        }
    }
    Ok(flags)
}

/// The discrete step: a number, or `auto` (1/lambda_max(H(0))).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eta {
    Value(f64),
    Auto,
}

impl std::fmt::Display for Eta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Eta::Value(v) => write!(f, "{v}"),
            Eta::Auto => write!(f, "auto"),
        }
    }
}

impl std::str::FromStr for Eta {
    type Err = String;
    fn from_str(s: &str) -> Result<Eta, String> {
        if s == "auto" {
            return Ok(Eta::Auto);
        }
        s.parse::<f64>()
            .map(Eta::Value)
            .map_err(|_| format!("'{s}' is neither a number nor auto"))
    }
}

/// Options shared by the runs (names fixed by SPEC.md).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Number of training points n (synthetic data; --data sets n from the file)
    #[arg(long, default_value_t = 50, allow_negative_numbers = true)]
    pub n: usize,
    /// Input dimension d (synthetic data; --data sets d from the file)
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    pub d: usize,
    /// Width m of the hidden layer (--init sets m from the file)
    #[arg(long, default_value_t = 2000, allow_negative_numbers = true)]
    pub m: usize,
    /// Seed of the synthetic data and of the initial weights
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub seed: u64,
    /// Training data: CSV rows x_1..x_d,y (header optional)
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// Initial network: CSV rows a_r,w_r1..w_rd with a_r = +1 or -1 (header optional)
    #[arg(long, value_name = "FILE.csv")]
    pub init: Option<PathBuf>,
    /// Project inputs onto the unit sphere (otherwise off-sphere inputs get a warning)
    #[arg(long)]
    pub normalize: bool,
    /// Which spaces to integrate
    #[arg(long, value_enum, default_value_t = SpaceChoice::Both)]
    pub space: SpaceChoice,
    /// Fixed kernel of error space: H(W0) or the infinite-width Hinf
    #[arg(long, value_enum, default_value_t = KernelChoice::H0)]
    pub kernel: KernelChoice,
    /// End time T of the flows (the discrete twin runs up to the same time on its clock)
    #[arg(long, default_value_t = 50.0, allow_negative_numbers = true)]
    pub t_end: f64,
    /// Number K of output times, evenly on [0, T] with both ends
    #[arg(long, default_value_t = 201, allow_negative_numbers = true)]
    pub samples: usize,
    /// ODE solver; exact (eigen-modes) is for --space error
    #[arg(long, value_enum, default_value_t = Solver::Dopri5)]
    pub solver: Solver,
    /// Relative tolerance of the adaptive solvers
    #[arg(long, default_value_t = 1e-6, allow_negative_numbers = true)]
    pub rtol: f64,
    /// Absolute tolerance of the adaptive solvers
    #[arg(long, default_value_t = 1e-9, allow_negative_numbers = true)]
    pub atol: f64,
    /// Fixed step of rk4 (shortened to land on every output time)
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub step: f64,
    /// Largest step of the weight-space dopri5 (activation pattern held within a step)
    /// [default: c sqrt(rtol/1e-6) within [0.001, c], c = 0.1 for gf, 0.3 for hbf, 0.07 for nag]
    #[arg(long, allow_negative_numbers = true)]
    pub max_step: Option<f64>,
    /// Friction b of hbf [default: sqrt(2 lambda0)]
    #[arg(long, allow_negative_numbers = true)]
    pub friction: Option<f64>,
    /// gamma of Nesterov's ODE (friction gamma/t) and of NAG's momentum (k-1)/(k+gamma-1)
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub gamma: f64,
    /// alpha of the Su-Boyd-Candes Lyapunov function, in [2, max(2, 2 gamma/3)]
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Override lambda0 [default: lambda_min(Hinf)]
    #[arg(long, allow_negative_numbers = true)]
    pub lambda0: Option<f64>,
    /// Step eta of the discrete twin (GD: t = k eta; heavy ball, NAG: t = k sqrt(eta)), or
    /// `auto` for eta = 1/lambda_max(H(0)), the PL* theorem's 1/beta
    #[arg(long, default_value_t = Eta::Value(0.01), allow_negative_numbers = true)]
    pub eta: Eta,
    /// Draw K held-out points (same distribution and seed) and record the gap between the
    /// network and its kernel predictor on them (column test_gap)
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    pub test_n: usize,
    /// Held-out points from a file (rows x_1..x_d,y as --data), instead of --test-n
    #[arg(long, value_name = "FILE.csv")]
    pub test: Option<PathBuf>,
    /// Skip the discrete twin
    #[arg(long)]
    pub no_discrete: bool,
    /// Output directory [default: output/<command>]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print nothing but errors
    #[arg(long)]
    pub quiet: bool,
    /// Options from a TOML file (keys are option names: t-end = 100, space = "weight",
    /// widths = [100, 400]); options on the command line override it
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
}

impl RunArgs {
    /// The options with every default, as `ntkdyn gf` with no flags parses them.
    pub fn defaults() -> RunArgs {
        match Cli::try_parse_from(["ntkdyn", "gf"]) {
            Ok(Cli {
                command: Command::Gf(args),
            }) => args,
            _ => unreachable!("`ntkdyn gf` parses with defaults"),
        }
    }

    /// The run configuration these options describe.
    pub fn config(&self, optimizer: Optimizer) -> RunConfig {
        RunConfig {
            optimizer,
            n: self.n,
            d: self.d,
            m: self.m,
            seed: self.seed,
            data: self.data.clone(),
            init: self.init.clone(),
            normalize: self.normalize,
            space: self.space,
            kernel: self.kernel,
            t_end: self.t_end,
            samples: self.samples,
            solver: self.solver,
            rtol: self.rtol,
            atol: self.atol,
            step: self.step,
            max_step: self.max_step,
            friction: self.friction,
            gamma: self.gamma,
            alpha: self.alpha,
            lambda0: self.lambda0,
            eta: match self.eta {
                Eta::Value(v) => v,
                Eta::Auto => f64::NAN,
            },
            eta_auto: self.eta == Eta::Auto,
            test_n: self.test_n,
            test: self.test.clone(),
            discrete: !self.no_discrete,
            out: self
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("output").join(optimizer.name())),
            progress: !self.quiet,
        }
    }
}

/// Standard output that a closed pipe (`ntkdyn gf | head`) does not turn into a panic.
fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

macro_rules! sayln {
    ($($arg:tt)*) => {
        say(&format!("{}\n", format!($($arg)*)))
    };
}

/// Run a parsed command line; the error is the one line to print.
pub fn main(cli: Cli) -> Result<(), Error> {
    let (optimizer, args) = match &cli.command {
        Command::Gf(a) => (Optimizer::Gf, a),
        Command::Hbf(a) => (Optimizer::Hbf, a),
        Command::Nag(a) => (Optimizer::Nag, a),
        Command::Compare(a) => return compare(a),
        Command::Sweep(a) => return sweep(a),
        Command::Plot(p) => return plot(p),
    };
    let cfg = args.config(optimizer);
    let report = run::run(&cfg)?;
    let written = run::write(&report, &cfg.out)?;
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
        cfg.out = PathBuf::from("output").join("compare");
    }
    let reports = run::compare(&cfg)?;
    let mut tables = Vec::new();
    for report in &reports {
        run::write(report, &report.config.out)?;
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
        sayln!(
            "wrote {} and the runs in {}/{{gf,hbf,nag}}",
            path.display(),
            cfg.out.display()
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
        base.out = PathBuf::from("output").join("sweep");
    }
    let dir = base.out.clone();
    if args.merge {
        let rows = crate::sweep::merge(&dir)?;
        let written = crate::sweep::write(&rows, &dir, "sweep.csv", true)?;
        if !args.run.quiet {
            sayln!("merged {} rows; wrote {}", rows.len(), names(&written));
        }
        return Ok(());
    }
    let cfg = crate::sweep::SweepConfig {
        base,
        widths: args.widths.clone(),
        seeds: args.seeds,
        optimizers: args.optimizers.clone(),
        shard: args.shard,
        progress: !args.run.quiet,
    };
    let rows = crate::sweep::run_sweep(&cfg)?;
    let written = crate::sweep::write_run(&cfg, &rows, &dir)?;
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

/// The file names of `paths`, space-separated.
fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
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

/// A few lines a person reads after a run.
pub fn human_summary(r: &Report) -> String {
    let s = &r.setup;
    let mut out = format!(
        "ntkdyn {}: n = {}, d = {}, m = {}, T = {}; lambda0 = {:.4e}; H(0) eigenvalues in [{:.4e}, {:.4e}]\n",
        r.config.optimizer.name(),
        s.model.n(),
        s.model.d(),
        s.model.m(),
        r.config.t_end,
        s.lambda0,
        s.h0_extremes.0,
        s.h0_extremes.1
    );
    match r.damping {
        crate::dynamics::Damping::Constant(b) => {
            out += &format!("  friction b = {b:.4e}\n");
        }
        crate::dynamics::Damping::Vanishing(g) => {
            out += &format!("  gamma = {g}, alpha = {}\n", r.config.alpha);
        }
        _ => {}
    }
    for (name, run) in [("weight space", &r.weight), ("error space ", &r.error)] {
        let Some(run) = run else { continue };
        let mono = &run.monotonicity;
        let lyap = if mono.nonincreasing {
            "Lyapunov function nonincreasing".to_string()
        } else {
            format!(
                "Lyapunov function rose (largest relative rise {:.2e}), nonincreasing after t = {}",
                mono.max_relative_rise, mono.nonincreasing_after
            )
        };
        out += &format!(
            "  {name} {:<7} final loss {:.4e}  ({}; {:.2} s); {lyap}\n",
            run.solver.name(),
            run.final_loss(),
            run.stats,
            run.wall_seconds
        );
        if let Some(e) = run.exact_max_relative_error {
            out += &format!("               largest relative deviation from the exact eigen-mode solution {e:.2e}\n");
        }
    }
    if let Some(d) = &r.discrete {
        out += &format!(
            "  {} eta = {}: {} iterates, final loss {:.4e} ({:.2} s)\n",
            d.twin.name(),
            d.eta,
            d.iterates.len(),
            d.iterates.last().map(|i| i.loss).unwrap_or(f64::NAN),
            r.discrete_wall_seconds
        );
    }
    out
}
