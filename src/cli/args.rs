//! The command line (clap derive): subcommands, their options, and the [`RunConfig`] they
//! describe. Every default comes from the library's [`RunConfig::defaults`].

use clap::{Args, Parser, ValueEnum};
use std::path::PathBuf;

use ntkdyn::integrate::Solver;
use ntkdyn::model::{Activation, Train};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{KernelChoice, RunConfig, SpaceChoice, TimesChoice};
// issue 16: figure formats and style
use ntkdyn::output::raster::Format;
use ntkdyn::output::style::Style;

/// The library's defaults, which the options show and take.
fn defaults() -> RunConfig {
    RunConfig::default()
}

/// ntkdyn: training dynamics of a two-layer ReLU network as ODEs, in weight space and in error
/// space, beside the discrete optimizers they come from.
#[derive(Debug, Parser)]
#[command(name = "ntkdyn", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand: one optimizer's study (one subcommand per [`Optimizer`], named and described
/// by the library), `compare`, `sweep` or `plot`.
#[derive(Debug)]
pub enum Command {
    /// `ntkdyn gf|hbf|nag`: the optimizer in weight and error space beside its twin.
    Run(Optimizer, RunArgs),
    /// Every optimizer on the same data and initialization, with their twins, on one figure.
    Compare(RunArgs),
    /// The same run over widths m and seeds.
    Sweep(SweepArgs),
    /// Render the figures of a run again.
    Plot(PlotArgs),
    // issue 18: sgd
    /// Mini-batch SGD beside its SDE, GD, GF and the exact E[L], over seeds.
    Sgd(SgdArgs),
    // issue 19: the gap between a twin and its ODEs against the clock step.
    /// The gap between a twin and its low- and high-resolution ODEs.
    Gap(super::gap::GapArgs),
}

/// "gf, hbf and nag": the optimizers' names as a sentence lists them.
pub fn listed(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

impl Command {
    /// The subcommands, as the error line for a missing one lists them.
    pub fn names() -> String {
        let mut names: Vec<&str> = Optimizer::ALL.iter().map(|o| o.name()).collect();
        names.extend(["compare", "sweep", "sgd", "gap"]);
        format!("{} or plot", names.join(", "))
    }

    fn compare_about() -> String {
        let names: Vec<&str> = Optimizer::ALL.iter().map(|o| o.name()).collect();
        let dirs: Vec<String> = names.iter().map(|n| format!("DIR/{n}")).collect();
        format!(
            "{} on the same data and initialization, with their twins, on one figure (DIR/compare.svg; each run's files in {}; default DIR output/compare)",
            listed(&names),
            dirs.join(", ")
        )
    }
}

impl clap::FromArgMatches for Command {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        match m.subcommand() {
            Some(("compare", sub)) => Ok(Command::Compare(RunArgs::from_arg_matches(sub)?)),
            Some(("sweep", sub)) => Ok(Command::Sweep(SweepArgs::from_arg_matches(sub)?)),
            Some(("plot", sub)) => Ok(Command::Plot(PlotArgs::from_arg_matches(sub)?)),
            // issue 18: sgd
            Some(("sgd", sub)) => Ok(Command::Sgd(SgdArgs::from_arg_matches(sub)?)),
            Some(("gap", sub)) => {
                let mut gap = super::gap::GapArgs::from_arg_matches(sub)?;
                // issue 19: gap's weight space only when --space asks for it.
                gap.space_given =
                    sub.value_source("space") == Some(clap::parser::ValueSource::CommandLine);
                Ok(Command::Gap(gap))
            }
            Some((name, sub)) => match Optimizer::from_name(name) {
                Some(o) => Ok(Command::Run(o, RunArgs::from_arg_matches(sub)?)),
                None => Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand)),
            },
            None => Err(clap::Error::new(clap::error::ErrorKind::MissingSubcommand)),
        }
    }
    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Command::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Subcommand for Command {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        // The about comes after the options: augment_args sets the struct's own doc as one.
        let cmd = Optimizer::ALL.into_iter().fold(cmd, |cmd, o| {
            cmd.subcommand(
                RunArgs::augment_args(clap::Command::new(o.name()))
                    .about(o.method().command_about()),
            )
        });
        cmd.subcommand(
            RunArgs::augment_args(clap::Command::new("compare")).about(Command::compare_about()),
        )
        .subcommand(SweepArgs::augment_args(clap::Command::new("sweep")).about(
            "The same run over widths m and seeds: kernel drift, weight drift, activation changes, the weight-error space gap (and test_gap) against m (DIR/sweep.csv, DIR/sweep.svg; default DIR output/sweep)",
        ))
        .subcommand(PlotArgs::augment_args(clap::Command::new("plot")).about(
            "Render the figures of a run again from its CSV files and summary.json",
        ))
        // issue 18: sgd
        .subcommand(SgdArgs::augment_args(clap::Command::new("sgd")).about(
            "Mini-batch SGD over seeds beside its SDE (Euler-Maruyama), GD, GF and the exact E[L] of error space, with the mean-square stability edge eta_crit(B) (DIR/sgd.csv, bands.csv, sgd.svg, summary.json; default DIR output/sgd)",
        ))
        .subcommand(
            super::gap::GapArgs::augment_args(clap::Command::new("gap")).about(super::gap::ABOUT),
        )
    }
    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        Command::augment_subcommands(cmd)
    }
    fn has_subcommand(name: &str) -> bool {
        Optimizer::from_name(name).is_some()
            || matches!(name, "compare" | "sweep" | "plot" | "sgd" | "gap")
    }
}

/// A command-line error as one line. clap's first line names the option and value, but for
/// a missing argument it ends in a colon and names it on the lines below: those are joined
/// on ("error: the following required arguments were not provided: <DIR>").
pub fn error_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let mut lines = text.lines();
    let mut line = lines
        .next()
        .unwrap_or("error: bad command line")
        .to_string();
    if line.ends_with(':') {
        let named: Vec<&str> = lines
            .take_while(|l| l.starts_with("  "))
            .map(str::trim)
            .collect();
        line = format!("{line} {}", named.join(", "));
    }
    line
}

/// `--optimizers`: the library's names, each with its one-line description.
fn optimizer_parser() -> impl clap::builder::TypedValueParser<Value = Optimizer> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        Optimizer::ALL.map(|o| PossibleValue::new(o.name()).help(o.method().summary())),
    )
    .map(|name| Optimizer::from_name(&name).expect("a possible value names an optimizer"))
}

/// `--solver`: the library's names, each with its one-line description.
fn solver_parser() -> impl clap::builder::TypedValueParser<Value = Solver> {
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(
        Solver::ALL.map(|s| PossibleValue::new(s.name()).help(s.description())),
    )
    .map(|name| Solver::from_name(&name).expect("a possible value names a solver"))
}

// issue 17: activations and a trained output layer
fn activation_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Activation::ALL.map(|a| a.name()))
}

// issue 17: --train
fn train_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Train::ALL.map(|t| t.name()))
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
    #[arg(long, value_delimiter = ',', default_value = "gf", value_parser = optimizer_parser())]
    pub optimizers: Vec<Optimizer>,
    /// Run only slice I of N (1 <= I <= N) and write DIR/sweep-shard-I-of-N.csv, for cluster array jobs
    #[arg(long, value_name = "I/N", value_parser = ntkdyn::sweep::parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Join the shard CSVs in --out into sweep.csv and sweep.svg instead of running
    #[arg(long)]
    pub merge: bool,
    // issue 16: sweeps keep their runs
    /// Keep each run's CSV files and summary.json in DIR/runs/m<M>-seed<S>-<optimizer>/
    #[arg(long)]
    pub keep_runs: bool,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of `ntkdyn plot`.
#[derive(Debug, Clone, Args)]
pub struct PlotArgs {
    /// A directory written by `ntkdyn gf|hbf|nagsc|nag`, `compare` (or one of its runs),
    /// `sweep`, `sgd` or `gap`
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
    /// Replace figure files in DIR that ntkdyn did not write (or that were changed since)
    #[arg(long)]
    pub force: bool,
    /// Options from a TOML file; options on the command line override it
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    // issue 16: format, font scale, y limits, output directory
    #[command(flatten)]
    pub style: StyleArgs,
    /// Write the figures into this directory instead of DIR (claimed like any output)
    #[arg(long, value_name = "OUT")]
    pub out: Option<PathBuf>,
}

impl PlotArgs {
    /// The figures' style these options describe.
    pub fn style(&self) -> Style {
        Style {
            width: self.width_px,
            height: self.height_px,
            log_x: self.log_x,
            title: self.title.clone(),
            ..self.style.style()
        }
    }
}

/// The figure options every command that draws takes (`--format`, `--font-scale`,
/// `--y-min`, `--y-max`), declared once and flattened into [`RunArgs`] and [`PlotArgs`].
#[derive(Debug, Clone, Args)]
pub struct StyleArgs {
    /// File format of the figures (png and pdf drawn with a bundled font)
    #[arg(long, default_value = "svg", value_parser = format_parser())]
    pub format: Format,
    /// Multiply every font size of the figures by F (0.5 to 3)
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub font_scale: Option<f64>,
    /// Lower end of the loss axis of loss and compare figures
    #[arg(long, allow_negative_numbers = true)]
    pub y_min: Option<f64>,
    /// Upper end of the loss axis of loss and compare figures
    #[arg(long, allow_negative_numbers = true)]
    pub y_max: Option<f64>,
}

impl StyleArgs {
    /// The figures' style these options describe, at the default size and title.
    pub fn style(&self) -> Style {
        Style {
            format: self.format,
            font_scale: self.font_scale,
            y_min: self.y_min,
            y_max: self.y_max,
            ..Style::default()
        }
    }
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
    #[arg(long, default_value_t = defaults().n, allow_negative_numbers = true)]
    pub n: usize,
    /// Input dimension d (synthetic data; --data sets d from the file)
    #[arg(long, default_value_t = defaults().d, allow_negative_numbers = true)]
    pub d: usize,
    /// Width m of the hidden layer (--init sets m from the file)
    #[arg(long, default_value_t = defaults().m, allow_negative_numbers = true)]
    pub m: usize,
    /// Seed of the synthetic data and of the initial weights
    #[arg(long, default_value_t = defaults().seed, allow_negative_numbers = true)]
    pub seed: u64,
    /// Training data: CSV rows x_1..x_d,y (header optional), a NumPy .npy array n x (d+1), or
    /// .npz with keys X (or x) and y
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Initial network: CSV rows a_r,w_r1..w_rd with a_r = +1 or -1 (header optional)
    #[arg(long, value_name = "FILE.csv")]
    pub init: Option<PathBuf>,
    /// Project inputs onto the unit sphere (otherwise off-sphere inputs get a warning)
    #[arg(long)]
    pub normalize: bool,
    /// Which spaces to integrate
    #[arg(long, value_enum, default_value_t = SpaceArg::from(defaults().space))]
    pub space: SpaceArg,
    /// Fixed kernel of error space: H(W0) or the infinite-width Hinf
    #[arg(long, value_enum, default_value_t = KernelArg::from(defaults().kernel))]
    pub kernel: KernelArg,
    /// End time T of the flows (the discrete twin runs up to the same time on its clock)
    #[arg(long, default_value_t = defaults().t_end, allow_negative_numbers = true)]
    pub t_end: f64,
    /// Number K of output times, evenly on [0, T] with both ends
    #[arg(long, default_value_t = defaults().samples, allow_negative_numbers = true)]
    pub samples: usize,
    /// ODE solver; exact (eigen-modes) is for --space error [default: dopri5; error space
    /// turns exact when stiff, lambda_max T > 300, unless --solver is given]
    #[arg(long, value_parser = solver_parser())]
    pub solver: Option<Solver>,
    /// Relative tolerance of the adaptive solvers
    #[arg(long, default_value_t = defaults().rtol, allow_negative_numbers = true)]
    pub rtol: f64,
    /// Absolute tolerance of the adaptive solvers
    #[arg(long, default_value_t = defaults().atol, allow_negative_numbers = true)]
    pub atol: f64,
    /// Fixed step of rk4 (shortened to land on every output time)
    #[arg(long, default_value_t = defaults().step, allow_negative_numbers = true)]
    pub step: f64,
    /// Largest step of the weight-space dopri5 (activation pattern held within a step)
    /// [default: c sqrt(rtol/1e-6) within [0.001, c], c = 0.1 for gf, 0.3 for hbf and nagsc
    /// (0.1 with a smooth activation), 0.07 for nag]
    #[arg(long, allow_negative_numbers = true)]
    pub max_step: Option<f64>,
    /// Friction b of hbf [default: sqrt(2 lambda0)]
    #[arg(long, allow_negative_numbers = true)]
    pub friction: Option<f64>,
    /// gamma of Nesterov's ODE (friction gamma/t) and of NAG's momentum (k-1)/(k+gamma-1)
    #[arg(long, default_value_t = defaults().gamma, allow_negative_numbers = true)]
    pub gamma: f64,
    /// alpha of the Su-Boyd-Candes Lyapunov function, in [2, max(2, 2 gamma/3)]
    #[arg(long, default_value_t = defaults().alpha, allow_negative_numbers = true)]
    pub alpha: f64,
    /// Override lambda0 [default: lambda_min(Hinf)]
    #[arg(long, allow_negative_numbers = true)]
    pub lambda0: Option<f64>,
    /// Step eta of the discrete twin (GD: t = k eta; heavy ball, NAG: t = k sqrt(eta)), or
    /// `auto` for eta = 1/lambda_max(H(0)), the PL* theorem's 1/beta
    #[arg(long, default_value_t = Eta::Value(defaults().eta), allow_negative_numbers = true)]
    pub eta: Eta,
    /// Draw K held-out points (same distribution and seed) and record the gap between the
    /// network and its kernel predictor on them (column test_gap)
    #[arg(long, default_value_t = defaults().test_n, allow_negative_numbers = true)]
    pub test_n: usize,
    /// Held-out points from a file in --data's layout (CSV, .npy or .npz), instead of --test-n
    #[arg(long, value_name = "FILE")]
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
    /// Replace files under the run's output names that ntkdyn did not write (or that were
    /// changed since)
    #[arg(long)]
    pub force: bool,
    /// Options from a TOML file (keys are option names: t-end = 100, space = "weight",
    /// widths = [100, 400]); options on the command line override it
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,
    // issue 16: inputs and output times
    /// Column of the targets y in --data and --test: a header name or a column number
    /// counting from 1 [default: the last column]
    #[arg(long, value_name = "NAME|INDEX")]
    pub label_column: Option<String>,
    /// Output times: evenly on [0, T] (linear), or 0 and then log-spaced from the first
    /// positive linear time T/(K-1) to T (log)
    #[arg(long, value_enum, default_value_t = TimesArg::from(defaults().times))]
    pub times: TimesArg,
    /// Output times from a file: one per line, increasing, within [0, T] (0 is added first
    /// when missing); replaces --samples and --times
    #[arg(long, value_name = "FILE")]
    pub times_file: Option<PathBuf>,
    // issue 16: figure format, font scale, y limits
    #[command(flatten)]
    pub style: StyleArgs,
    // issue 17: activations and a trained output layer
    /// Activation sigma of the hidden layer (relu: the switching flow of Du et al.; the others
    /// are smooth)
    #[arg(long, default_value_t = defaults().activation.name().to_string(), value_parser = activation_parser())]
    pub activation: String,
    // issue 19: --beta
    /// hbf and nagsc: the twin at the fixed momentum B in [0, 1) (not derived from the
    /// friction) on the clock t = k eta/(1 - B), beside gradient flow on that clock
    #[arg(long, value_name = "B", allow_negative_numbers = true)]
    pub beta: Option<f64>,
    // issue 17: --train
    /// Trained layers: w (the first layer, output weights a_r = +-1 fixed) or wa (both; --init
    /// may then give any real a_r)
    #[arg(long, default_value_t = defaults().train.name().to_string(), value_parser = train_parser())]
    pub train: String,
    // issue 19: resolution
    /// The ODEs: low (leading order) or high (high-resolution: IGR for gf, Shi et al.'s for
    /// hbf, nagsc, nag); `ntkdyn gap` also takes both [default: low; gap: both]
    #[arg(long, value_enum)]
    pub resolution: Option<ResolutionArg>,
}

// issue 19: resolution
/// `--resolution`: low or high, and (for `ntkdyn gap` only) both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ResolutionArg {
    Low,
    High,
    Both,
}

impl ResolutionArg {
    /// The resolutions this choice names.
    pub fn resolutions(self) -> Vec<ntkdyn::theory::high_resolution::Resolution> {
        use ntkdyn::theory::high_resolution::Resolution;
        match self {
            ResolutionArg::Low => vec![Resolution::Low],
            ResolutionArg::High => vec![Resolution::High],
            ResolutionArg::Both => vec![Resolution::Low, Resolution::High],
        }
    }
}

impl RunArgs {
    /// The figures' style these options describe (issue 16).
    pub fn style(&self) -> Style {
        self.style.style()
    }
}

/// `--format`: svg, png or pdf.
fn format_parser() -> impl clap::builder::TypedValueParser<Value = Format> {
    use clap::builder::{PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(Format::ALL.map(|f| f.name()))
        .map(|name| Format::from_name(&name).expect("a possible value names a format"))
}

impl RunArgs {
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
            space: self.space.into(),
            kernel: self.kernel.into(),
            t_end: self.t_end,
            samples: self.samples,
            solver: self.solver.unwrap_or(defaults().solver),
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
                .unwrap_or_else(|| RunConfig::default_out(optimizer.name())),
            progress: !self.quiet,
            label_column: self.label_column.clone(),
            times: self.times.into(),
            times_file: self.times_file.clone(),
            // issue 17: activations and a trained output layer
            activation: Activation::from_name(&self.activation)
                .expect("the parser admits activation names only"),
            // issue 20: an explicit --solver keeps its ODE in stiff error space
            solver_requested: self.solver.is_some(),
            // issue 19: --beta (with --resolution high: the modified flow)
            beta: self.beta,
            // issue 17: --train
            train: Train::from_name(&self.train).expect("the parser admits training names only"),
            // issue 19: resolution (both is gap's, refused for a run by parse_args)
            resolution: match self.resolution {
                Some(ResolutionArg::High) => ntkdyn::theory::high_resolution::Resolution::High,
                _ => ntkdyn::theory::high_resolution::Resolution::Low,
            },
        }
    }
}

/// `--space`: the library's [`SpaceChoice`] as clap lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SpaceArg {
    Weight,
    Error,
    Both,
}

/// `--kernel`: the library's [`KernelChoice`] as clap lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelArg {
    /// H(W0), the Gram matrix of the initial network.
    H0,
    /// Hinf, the infinite-width kernel.
    Hinf,
}

macro_rules! mirror {
    ($arg:ident, $lib:ident, $($v:ident),+) => {
        impl From<$arg> for $lib {
            fn from(a: $arg) -> $lib {
                match a { $($arg::$v => $lib::$v),+ }
            }
        }
        impl From<$lib> for $arg {
            fn from(a: $lib) -> $arg {
                match a { $($lib::$v => $arg::$v),+ }
            }
        }
    };
}

mirror!(SpaceArg, SpaceChoice, Weight, Error, Both);
mirror!(KernelArg, KernelChoice, H0, Hinf);

// issue 16: output times
/// `--times`: the library's [`TimesChoice`] as clap lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimesArg {
    Linear,
    Log,
}

mirror!(TimesArg, TimesChoice, Linear, Log);

// issue 18: sgd
/// Options of `ntkdyn sgd` (the run options give data, network, eta, t-end, samples kept
/// per run, space, kernel, GF's solver and out).
#[derive(Debug, Clone, Args)]
pub struct SgdArgs {
    /// Mini-batch size B
    #[arg(long, allow_negative_numbers = true)]
    pub batch: usize,
    /// Batches drawn with or without replacement
    #[arg(long, value_enum, default_value_t = SamplingArg::from(ntkdyn::sgd::SgdConfig::DEFAULT_SAMPLING))]
    pub sampling: SamplingArg,
    /// Number S of seeded runs of SGD and of its SDE (batch streams from --seed and the run)
    #[arg(long, default_value_t = ntkdyn::sgd::SgdConfig::DEFAULT_SEEDS, allow_negative_numbers = true)]
    pub seeds: usize,
    /// Euler-Maruyama steps L of the SDE per SGD step (dt = eta/L)
    #[arg(long, default_value_t = ntkdyn::sgd::SgdConfig::DEFAULT_SUBSTEPS, allow_negative_numbers = true)]
    pub sde_substeps: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

impl SgdArgs {
    /// The library's configuration these options describe (out: output/sgd by default).
    pub fn config(&self) -> ntkdyn::sgd::SgdConfig {
        let mut run = self.run.config(Optimizer::Gf);
        if self.run.out.is_none() {
            run.out = RunConfig::default_out("sgd");
        }
        ntkdyn::sgd::SgdConfig {
            run,
            batch: self.batch,
            sampling: self.sampling.into(),
            seeds: self.seeds,
            sde_substeps: self.sde_substeps,
        }
    }
}

/// `--sampling`: the library's [`ntkdyn::sgd::Sampling`] as clap lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SamplingArg {
    /// B independent uniform draws
    With,
    /// a uniform B-subset (B <= n)
    Without,
}

mirror!(SamplingArg, Sampling, With, Without);
use ntkdyn::sgd::Sampling;
