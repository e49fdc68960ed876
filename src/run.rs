//! One study: set up the problem from a configuration, run the chosen optimizer in weight
//! space, in error space and as its discrete twin, and write the files of SPEC.md.

use nalgebra::{DMatrix, DVector};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::diagnostics::{
    condition_number, cross_kernel_h0, cross_kernel_hinf, pl_radius, pl_ratio, rms_gap,
    KernelPredictor, PlBall,
};
use crate::discrete::{self, DiscreteRun, Twin};
use crate::dynamics::{Damping, ErrorSpace, Flow, Snapshot, Space, WeightSpace};
use crate::error::{Error, InputError, NumericsError, OutputError};
use crate::exact::ExactSolution;
use crate::figures::{render, RunTables, Style};
use crate::integrate::{integrate, output_times, Solver, SolverSettings, SolverStats, Stop};
use crate::io::{self, Table};
use crate::kernel::{extreme_eigenvalues, hinf};
use crate::linear::{integrate_output_space, Crossings};
use crate::lyapunov::{monotonicity, Lyapunov, Monotonicity};
use crate::model::{Data, Model, Network};
use crate::plot;

/// The optimizer studied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Gradient flow W' = -grad L, twin: gradient descent.
    Gf,
    /// Heavy ball with friction W'' + b W' + grad L = 0, twin: heavy ball.
    Hbf,
    /// Nesterov's ODE W'' + (gamma/t) W' + grad L = 0, twin: NAG.
    Nag,
}

impl Optimizer {
    /// The three, in table order (which is also their `Ord`).
    pub const ALL: [Optimizer; 3] = [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag];

    /// The optimizer [`Optimizer::name`] names.
    pub fn from_name(name: &str) -> Option<Optimizer> {
        Optimizer::ALL.into_iter().find(|o| o.name() == name)
    }

    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Gf => "gf",
            Optimizer::Hbf => "hbf",
            Optimizer::Nag => "nag",
        }
    }
    pub fn title(&self) -> &'static str {
        match self {
            Optimizer::Gf => "Gradient flow",
            Optimizer::Hbf => "Heavy ball with friction",
            Optimizer::Nag => "Nesterov's ODE",
        }
    }
    pub fn color(&self) -> plotters::style::RGBColor {
        match self {
            Optimizer::Gf => plot::GF_COLOR,
            Optimizer::Hbf => plot::HBF_COLOR,
            Optimizer::Nag => plot::NAG_COLOR,
        }
    }
}

/// Which spaces are integrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SpaceChoice {
    Weight,
    Error,
    Both,
}

/// The fixed kernel of error space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KernelChoice {
    /// H(W0), the Gram matrix of the initial network.
    H0,
    /// Hinf, the infinite-width kernel.
    Hinf,
}

/// Everything a run depends on, as resolved from the command line (recorded in summary.json).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunConfig {
    pub optimizer: Optimizer,
    pub n: usize,
    pub d: usize,
    pub m: usize,
    pub seed: u64,
    pub data: Option<PathBuf>,
    pub init: Option<PathBuf>,
    pub normalize: bool,
    pub space: SpaceChoice,
    pub kernel: KernelChoice,
    pub t_end: f64,
    pub samples: usize,
    pub solver: Solver,
    pub rtol: f64,
    pub atol: f64,
    pub step: f64,
    /// Largest step of the weight-space dopri5; None: [`RunConfig::max_step`]'s rule.
    pub max_step: Option<f64>,
    pub friction: Option<f64>,
    pub gamma: f64,
    pub alpha: f64,
    pub lambda0: Option<f64>,
    pub eta: f64,
    /// --eta auto: eta = 1/lambda_max(H(0)), the PL* theorem's 1/beta.
    pub eta_auto: bool,
    /// Number of synthetic held-out points (--test-n).
    pub test_n: usize,
    /// Held-out points from a file (--test, same format as --data).
    pub test: Option<PathBuf>,
    pub discrete: bool,
    pub out: PathBuf,
    /// Show a progress bar on stderr once a space has run for 2 s (when stderr is a terminal).
    #[serde(skip)]
    pub progress: bool,
}

impl RunConfig {
    /// The team's defaults for an optimizer: those of the command line (see `ntkdyn gf --help`),
    /// so that library users and the CLI never disagree.
    pub fn defaults(optimizer: Optimizer) -> RunConfig {
        crate::cli::RunArgs::defaults().config(optimizer)
    }

    /// Check every range of SPEC.md's bad-input list that can be checked before reading files.
    pub fn validate(&self) -> Result<(), InputError> {
        let positive = |option: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(InputError::option(
                    option,
                    format!("{v} must be a finite number > 0"),
                ))
            }
        };
        for (option, v) in [("n", self.n), ("d", self.d), ("m", self.m)] {
            if v == 0 {
                return Err(InputError::option(option, "0 must be at least 1"));
            }
        }
        positive("t-end", self.t_end)?;
        if self.samples < 2 {
            return Err(InputError::option(
                "samples",
                format!("{} must be at least 2 (both ends of [0, T])", self.samples),
            ));
        }
        for (option, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(InputError::option(option, format!("{v} must be in (0, 1)")));
            }
        }
        if self.rtol < 1e-14 {
            return Err(InputError::option(
                "rtol",
                format!("{} is below 1e-14, under rounding", self.rtol),
            ));
        }
        positive("step", self.step)?;
        if self.solver == Solver::Rk4 && self.step > self.t_end {
            return Err(InputError::option(
                "step",
                format!("{} is larger than --t-end {}", self.step, self.t_end),
            ));
        }
        if let Some(h) = self.max_step {
            positive("max-step", h)?;
        }
        if !self.eta_auto {
            positive("eta", self.eta)?;
            let clock = if self.optimizer == Optimizer::Gf {
                self.eta
            } else {
                self.eta.sqrt()
            };
            if self.discrete && self.t_end / clock > MAX_ITERATES {
                return Err(InputError::option(
                    "eta",
                    format!(
                        "{} needs {:.3e} iterates to reach --t-end {} (at most {MAX_ITERATES:e}); raise --eta or use --no-discrete",
                        self.eta,
                        self.t_end / clock,
                        self.t_end
                    ),
                ));
            }
        }
        if self.samples > MAX_SAMPLES {
            return Err(InputError::option(
                "samples",
                format!("{} is more than {MAX_SAMPLES}", self.samples),
            ));
        }
        let bytes = memory_estimate(self.n, self.d, self.m);
        if self.data.is_none() && self.init.is_none() && bytes > MAX_BYTES {
            return Err(InputError::Mismatch(format!(
                "--n {} --d {} --m {} needs about {:.0} GB of memory (at most {:.0} GB)",
                self.n,
                self.d,
                self.m,
                bytes / 1e9,
                MAX_BYTES / 1e9
            )));
        }
        positive("gamma", self.gamma)?;
        if let Some(b) = self.friction {
            if !b.is_finite() {
                return Err(InputError::option(
                    "friction",
                    format!("{b} must be a finite number"),
                ));
            }
        }
        if let Some(l) = self.lambda0 {
            positive("lambda0", l)?;
        }
        let alpha_max = (2.0 * self.gamma / 3.0).max(2.0);
        if !(self.alpha >= 2.0 && self.alpha <= alpha_max) {
            return Err(InputError::option(
                "alpha",
                format!(
                    "{} is outside [2, max(2, 2 gamma/3)] = [2, {}]",
                    self.alpha, alpha_max
                ),
            ));
        }
        if self.solver == Solver::Exact && self.space != SpaceChoice::Error {
            return Err(InputError::option(
                "solver",
                "exact solves error space only; add --space error",
            ));
        }
        Ok(())
    }

    /// The damping schedule of the optimizer, given lambda0.
    pub fn damping(&self, lambda0: f64) -> Damping {
        match self.optimizer {
            Optimizer::Gf => Damping::None,
            Optimizer::Hbf => Damping::Constant(self.friction.unwrap_or((2.0 * lambda0).sqrt())),
            Optimizer::Nag => Damping::Vanishing(self.gamma),
        }
    }

    fn solver_settings(&self) -> SolverSettings {
        SolverSettings {
            solver: self.solver,
            rtol: self.rtol,
            atol: self.atol,
            step: self.step,
            max_steps: 1_000_000,
            max_step: self.max_step(),
        }
    }

    /// The largest step of the weight-space dopri5: --max-step, or c sqrt(rtol/1e-6) within
    /// [1e-3, c], so the switching error, about second order in the step, follows the
    /// requested tolerance. c = 0.1 for gradient flow, whose velocity jumps at a crossing and
    /// chatters along sliding surfaces; c = 0.3 for HBF, whose jump is in the acceleration
    /// only and whose crossings are corrected to third order (tests/weight_space.rs: 1.3e-9 at
    /// 0.01 against a Dop853 reference); c = 0.07 for NAG, whose weakly damped late phase
    /// turns each step's error into a phase error of the loss's oscillation that the error
    /// estimate does not weigh: at n = 100, m = 400, T = 100 its final loss is off by 1.2e-2
    /// to 1.3e-2 at max step 0.1, 1.3e-3 to 3.1e-3 at 0.07 and 0.7e-3 to 2.8e-3 at 0.05, whatever rtol
    /// from 1e-6 to 1e-8 (`cargo run --release --example bench -- steps --only nag`).
    pub fn max_step(&self) -> f64 {
        self.max_step.unwrap_or_else(|| {
            let c = match self.optimizer {
                Optimizer::Gf => 0.1,
                Optimizer::Hbf => 0.3,
                Optimizer::Nag => 0.07,
            };
            (c * (self.rtol / 1e-6).sqrt()).clamp(1e-3, c)
        })
    }
}

/// Most discrete iterates a run may ask for.
pub const MAX_ITERATES: f64 = 2e7;
/// Most output times.
pub const MAX_SAMPLES: usize = 10_000_000;
/// Most memory a run may need, in bytes (the machines are 24 GB).
pub const MAX_BYTES: f64 = 16e9;

/// Rough peak memory of a weight-space run: the m x n pre-activation, mask and pattern
/// matrices (about 8 of them) and the integrator's 2 m d states (about 12).
pub fn memory_estimate(n: usize, d: usize, m: usize) -> f64 {
    8.0 * (8.0 * m as f64 * n as f64 + 24.0 * m as f64 * d as f64 + 4.0 * n as f64 * n as f64)
}

/// The problem a run works on: data, network, kernels and their spectra.
#[derive(Clone, Debug)]
pub struct Setup {
    pub model: Model,
    pub w0: DMatrix<f64>,
    pub hinf: DMatrix<f64>,
    pub h0: DMatrix<f64>,
    pub lambda0: f64,
    pub h0_extremes: (f64, f64),
    pub hinf_extremes: (f64, f64),
    /// Held-out points (--test-n, --test), if any.
    pub test: Option<Data>,
    /// The discrete step: --eta, or 1/lambda_max(H(0)) with --eta auto.
    pub eta: f64,
    pub warnings: Vec<String>,
}

/// Build the problem: data from --data or synthetic, network from --init or the seed.
pub fn setup(cfg: &RunConfig) -> Result<Setup, InputError> {
    cfg.validate()?;
    let mut warnings = Vec::new();
    let mut data = match &cfg.data {
        Some(path) => io::read_data(path)?,
        None => Data::synthetic(cfg.n, cfg.d, cfg.seed),
    };
    let off_sphere = data.max_norm_deviation();
    if off_sphere > 1e-6 {
        if cfg.normalize {
            data = data.normalized();
        } else {
            warnings.push(format!(
                "inputs are not on the unit sphere (largest ||x_i| - 1| = {off_sphere:.3e}); the theory assumes they are, --normalize projects them"
            ));
        }
    }
    let net = match &cfg.init {
        Some(path) => {
            let net = io::read_init(path)?;
            if net.w.ncols() != data.d() {
                return Err(InputError::Mismatch(format!(
                    "--init {} has d = {} weights per row but the data have d = {}",
                    path.display(),
                    net.w.ncols(),
                    data.d()
                )));
            }
            net
        }
        None => Network::init(cfg.m, data.d(), cfg.seed),
    };
    if let Some(b) = cfg.friction.filter(|b| *b < 0.0) {
        warnings.push(format!(
            "--friction {b} is negative: the flow gains energy and may diverge"
        ));
    }
    let model = Model::new(data, net.a);
    let hinf = hinf(&model.data);
    let h0 = model.gram(&net.w.as_view());
    let hinf_extremes = extreme_eigenvalues(&hinf);
    let h0_extremes = extreme_eigenvalues(&h0);
    let lambda0 = cfg.lambda0.unwrap_or(hinf_extremes.0);
    if lambda0 <= 1e-12 {
        warnings.push(format!(
            "lambda0 = lambda_min(Hinf) = {lambda0:.3e} is not positive (repeated or parallel inputs?); bounds that divide by it are infinite"
        ));
    }
    let test = match (&cfg.test, cfg.test_n) {
        (Some(path), _) => {
            let test = io::read_data(path)?;
            if test.d() != model.d() {
                return Err(InputError::Mismatch(format!(
                    "--test {} has d = {} but the data have d = {}",
                    path.display(),
                    test.d(),
                    model.d()
                )));
            }
            Some(if cfg.normalize {
                test.normalized()
            } else {
                test
            })
        }
        (None, 0) => None,
        (None, k) => Some(Data::synthetic(
            k,
            model.d(),
            cfg.seed ^ 0x7E57_7E57_7E57_7E57,
        )),
    };
    let eta = if cfg.eta_auto {
        1.0 / h0_extremes.1
    } else {
        cfg.eta
    };
    Ok(Setup {
        model,
        w0: net.w,
        hinf,
        h0,
        lambda0,
        h0_extremes,
        hinf_extremes,
        test,
        eta,
        warnings,
    })
}

/// Columns of error.csv: SPEC.md's five, then the PL* ratio and the kernel's condition number.
pub const ERROR_COLUMNS: [&str; 7] = [
    "t",
    "loss",
    "pseudo_loss",
    "lyapunov",
    "loss_bound",
    "pl_ratio",
    "kernel_cond",
];
/// Columns of weight.csv.
pub const WEIGHT_COLUMNS: [&str; 11] = [
    "t",
    "loss",
    "pseudo_loss",
    "lyapunov",
    "loss_bound",
    "lambda_min",
    "kernel_drift",
    "max_weight_drift",
    "pattern_change_frac",
    "pl_ratio",
    "kernel_cond",
];
/// The column weight.csv gains with held-out points (--test-n, --test).
pub const TEST_GAP_COLUMN: &str = "test_gap";
/// Columns of discrete.csv; GD adds `pl_envelope`, the PL* prediction (1 - eta mu)^k L(0).
pub const DISCRETE_COLUMNS: [&str; 3] = ["k", "t", "loss"];

/// The result of one space: its table and how the solver did.
#[derive(Clone, Debug)]
pub struct SpaceRun {
    pub table: Table,
    pub solver: Solver,
    pub stats: SolverStats,
    pub stop: Stop,
    pub wall_seconds: f64,
    pub lyapunov: Lyapunov,
    pub monotonicity: Monotonicity,
    /// Error space by ODE: largest |Delta_ode(t) - Delta_exact(t)| / |Delta_exact(t)| over the samples.
    pub exact_max_relative_error: Option<f64>,
    /// Weight space: the PL* ball check of Liu, Zhu and Belkin.
    pub pl_ball: Option<PlBall>,
}

impl SpaceRun {
    pub fn final_loss(&self) -> f64 {
        self.table.rows.last().map(|r| r[1]).unwrap_or(f64::NAN)
    }
    /// The last test_gap (weight space with held-out points).
    pub fn final_test_gap(&self) -> Option<f64> {
        self.table
            .column(TEST_GAP_COLUMN)
            .and_then(|c| c.last().copied())
    }
    /// inf over the samples of the column pl_ratio.
    pub fn inf_pl_ratio(&self) -> f64 {
        self.table
            .column("pl_ratio")
            .unwrap_or_default()
            .into_iter()
            .fold(f64::INFINITY, f64::min)
    }
    /// sup over the samples of the column kernel_cond.
    pub fn sup_kernel_cond(&self) -> f64 {
        self.table
            .column("kernel_cond")
            .unwrap_or_default()
            .into_iter()
            .fold(0.0, f64::max)
    }
}

/// Everything a run computed.
#[derive(Clone, Debug)]
pub struct Report {
    pub config: RunConfig,
    pub setup: Setup,
    pub damping: Damping,
    pub weight: Option<SpaceRun>,
    pub error: Option<SpaceRun>,
    pub discrete: Option<DiscreteRun>,
    pub discrete_wall_seconds: f64,
}

/// The row builder shared by both spaces: Lyapunov value and bound from a snapshot.
struct Rows {
    lyapunov: Lyapunov,
    start: Option<(f64, f64)>,
    table: Table,
    values: Vec<f64>,
}

impl Rows {
    fn new(lyapunov: Lyapunov, columns: &[&str]) -> Rows {
        Rows {
            lyapunov,
            start: None,
            table: Table::new(columns),
            values: Vec::new(),
        }
    }

    /// Push a row: the common columns of a snapshot, the space's `extra` columns, pl_ratio,
    /// kernel_cond (of the space's H) and `tail`; returns false when the state is not finite.
    fn push(
        &mut self,
        t: f64,
        s: &Snapshot,
        extra: &[f64],
        kernel_cond: f64,
        tail: &[f64],
    ) -> bool {
        let loss = s.loss();
        let (l0, lhat0) = *self.start.get_or_insert((loss, s.pseudo_loss));
        let v = self
            .lyapunov
            .value(t, &s.delta, &s.delta_dot, s.pseudo_loss);
        let bound = self.lyapunov.loss_bound(t, l0, lhat0);
        let mut row = vec![t, loss, s.pseudo_loss, v, bound];
        row.extend_from_slice(extra);
        row.push(pl_ratio(loss, s.pseudo_loss));
        row.push(kernel_cond);
        row.extend_from_slice(tail);
        self.table.rows.push(row);
        self.values.push(v);
        loss.is_finite() && s.delta_dot.iter().all(|x| x.is_finite())
    }

    fn finish(self, solver: Solver, stats: SolverStats, stop: Stop, started: Instant) -> SpaceRun {
        let times: Vec<f64> = self.table.rows.iter().map(|r| r[0]).collect();
        SpaceRun {
            monotonicity: monotonicity(&times, &self.values),
            table: self.table,
            solver,
            stats,
            stop,
            wall_seconds: started.elapsed().as_secs_f64(),
            lyapunov: self.lyapunov,
            exact_max_relative_error: None,
            pl_ball: None,
        }
    }
}

/// Weight space: integrate the network and record the drift of its kernel and weights, the
/// PL* quantities and (with held-out points) the gap to the kernel predictor.
pub fn run_weight(cfg: &RunConfig, setup: &Setup, damping: Damping) -> SpaceRun {
    let started = Instant::now();
    let model = &setup.model;
    let space = WeightSpace::new(model);
    let flow = Flow::new(&space, damping);
    let lyapunov = Lyapunov::for_damping(damping, setup.lambda0 / 2.0, cfg.alpha);
    let mut columns: Vec<&str> = WEIGHT_COLUMNS.to_vec();
    let probe = setup
        .test
        .as_ref()
        .map(|test| TestProbe::new(cfg, setup, damping, test));
    if probe.is_some() {
        columns.push(TEST_GAP_COLUMN);
    }
    let mut rows = Rows::new(lyapunov, &columns);
    let pattern0 = model.pattern(&setup.w0.as_view());
    let y0 = flow.initial_state(setup.w0.as_slice());
    let dim = model.m() * model.d();
    let times = output_times(cfg.t_end, cfg.samples);
    let (mut beta, mut max_distance) = (0.0f64, 0.0f64);
    let bar = Progress::new(cfg, "weight space");
    let observe = |t: f64, y: &DVector<f64>| {
        bar.at(t);
        let s = flow.snapshot(y.as_slice());
        let w = model.weights(&y.as_slice()[..dim]);
        let gram = s.gram.as_ref().expect("weight space carries H(t)");
        let (lambda_min, lambda_max) = extreme_eigenvalues(gram);
        beta = beta.max(lambda_max);
        let drift = (gram - &setup.h0).norm();
        let moved = (0..model.m())
            .map(|r| (w.row(r) - setup.w0.row(r)).norm())
            .fold(0.0, f64::max);
        max_distance = max_distance.max((w - &setup.w0).norm());
        let pattern = s
            .pattern
            .as_ref()
            .expect("weight space carries its pattern");
        let changed = pattern.zip_fold(&pattern0, 0usize, |acc, a, b| acc + usize::from(a != b));
        let frac = changed as f64 / pattern.len() as f64;
        let tail: Vec<f64> = probe.iter().map(|p| p.gap(t, &w)).collect();
        rows.push(
            t,
            &s,
            &[lambda_min, drift, moved, frac],
            condition_number(lambda_min, lambda_max),
            &tail,
        )
    };
    let settings = cfg.solver_settings();
    let (stats, stop) = if cfg.solver == Solver::Dopri5 {
        // The held-pattern steps, taken in output space (src/dynamics/output_space.rs).
        integrate_output_space(
            model,
            flow.damping,
            y0,
            &times,
            &settings,
            Crossings::Corrected,
            observe,
        )
    } else {
        integrate(flow, y0, &times, &settings, observe)
    };
    bar.done();
    let loss0 = rows.start.map(|(l, _)| l).unwrap_or(f64::NAN);
    let mut out = rows.finish(cfg.solver, stats, stop, started);
    out.pl_ball = Some(PlBall::new(
        out.inf_pl_ratio(),
        out.sup_kernel_cond(),
        beta,
        loss0,
        max_distance,
    ));
    out
}

/// A progress bar over flow time that appears only once a run has lasted 2 s.
struct Progress {
    bar: indicatif::ProgressBar,
    started: Instant,
    wanted: bool,
    t_end: f64,
}

impl Progress {
    fn new(cfg: &RunConfig, what: &str) -> Progress {
        let bar = indicatif::ProgressBar::hidden();
        bar.set_length(1000);
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{what} {{elapsed_precise}} [{{bar:30}}] t = {{msg}} (eta {{eta}})"
            ))
            .expect("a valid template")
            .progress_chars("=> "),
        );
        Progress {
            bar,
            started: Instant::now(),
            wanted: cfg.progress,
            t_end: cfg.t_end,
        }
    }

    fn at(&self, t: f64) {
        if self.wanted && self.bar.is_hidden() && self.started.elapsed().as_secs_f64() > 2.0 {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        self.bar.set_position((1000.0 * t / self.t_end) as u64);
        self.bar.set_message(format!("{t:.4} of {}", self.t_end));
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

/// Held-out points: the network's predictions beside the kernel predictor f*_t of the
/// linearized network, driven by the exact error-space trajectory with the run's kernel.
struct TestProbe {
    model: Model,
    predictor: KernelPredictor,
    linear: ExactSolution,
}

impl TestProbe {
    fn new(cfg: &RunConfig, setup: &Setup, damping: Damping, test: &Data) -> TestProbe {
        let model = Model::new(test.clone(), setup.model.a.clone());
        let (h, cross) = match cfg.kernel {
            KernelChoice::H0 => (&setup.h0, cross_kernel_h0(&setup.model, &setup.w0, test)),
            KernelChoice::Hinf => (&setup.hinf, cross_kernel_hinf(test, &setup.model.data)),
        };
        let delta0 = setup.model.residual(&setup.w0.as_view());
        let u0 = model.predict(&setup.w0.as_view());
        // One eigen-decomposition of H serves the linearized trajectory and H^{-1}.
        let linear = ExactSolution::new(h, &delta0, damping);
        TestProbe {
            predictor: KernelPredictor::from_spectrum(&cross, linear.spectrum(), delta0, u0),
            linear,
            model,
        }
    }

    /// RMS over the test points of f(W(t); x) - f*_t(x).
    fn gap(&self, t: f64, w: &nalgebra::DMatrixView<f64>) -> f64 {
        let (delta_lin, _) = self.linear.at(t);
        rms_gap(&self.model.predict(w), &self.predictor.predict(&delta_lin))
    }
}

/// Error space with the fixed kernel: by ODE (checked against the exact solution) or exactly.
pub fn run_error(cfg: &RunConfig, setup: &Setup, damping: Damping) -> SpaceRun {
    let started = Instant::now();
    let (h, (h_min, h_max)) = match cfg.kernel {
        KernelChoice::H0 => (setup.h0.clone(), setup.h0_extremes),
        KernelChoice::Hinf => (setup.hinf.clone(), setup.hinf_extremes),
    };
    let mu = h_min.max(0.0);
    let cond = condition_number(h_min, h_max);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    let exact = ExactSolution::new(&h, &delta0, damping);
    let space = ErrorSpace { h };
    let lyapunov = Lyapunov::for_damping(damping, mu, cfg.alpha);
    let mut rows = Rows::new(lyapunov, &ERROR_COLUMNS);
    let times = output_times(cfg.t_end, cfg.samples);
    if cfg.solver == Solver::Exact {
        let mut stop = Stop::Completed;
        for &t in &times {
            let (d, v) = exact.at(t);
            if !rows.push(
                t,
                &space.snapshot(d.as_slice(), v.as_slice()),
                &[],
                cond,
                &[],
            ) {
                stop = Stop::Observer { t };
                break;
            }
        }
        return rows.finish(Solver::Exact, SolverStats::default(), stop, started);
    }
    let flow = Flow::new(&space, damping);
    let n = delta0.len();
    let mut worst: f64 = 0.0;
    let (stats, stop) = integrate(
        flow,
        flow.initial_state(delta0.as_slice()),
        &times,
        &cfg.solver_settings(),
        |t, y| {
            let s = flow.snapshot(y.as_slice());
            let (d_exact, _) = exact.at(t);
            let gap = (DVector::from_column_slice(&y.as_slice()[..n]) - &d_exact).norm();
            worst = worst.max(gap / d_exact.norm());
            rows.push(t, &s, &[], cond, &[])
        },
    );
    let mut out = rows.finish(cfg.solver, stats, stop, started);
    out.exact_max_relative_error = Some(worst);
    out
}

/// The discrete twin of the optimizer: GD, heavy ball with beta = 1 - b sqrt(eta), or NAG.
pub fn twin(damping: Damping, eta: f64) -> Twin {
    match damping {
        Damping::None => Twin::Gd,
        Damping::Constant(b) => Twin::HeavyBall {
            beta: 1.0 - b * eta.sqrt(),
        },
        Damping::Vanishing(gamma) => Twin::Nesterov { gamma },
    }
}

/// Run a whole study in memory.
///
/// The study runs on a thread of rayon's pool: a parallel pass started from there costs
/// 0.6-5 us of scheduling, against 15-23 us from a thread outside the pool, which must sleep
/// until the pool wakes it (`bench -- rayon` on the benchmark machine; at m = 1000 a whole
/// gradient evaluation on two threads takes about 125 us).
pub fn run(cfg: &RunConfig) -> Result<Report, Error> {
    rayon::scope(|_| run_on_this_thread(cfg))
}

/// [`run`] on the calling thread. `compare` runs its three studies on threads of their own:
/// in rayon's pool of two, the third would wait, and a worker waiting inside one study's
/// parallel evaluation could take up another whole study and hold the first one up.
fn run_on_this_thread(cfg: &RunConfig) -> Result<Report, Error> {
    let setup = setup(cfg)?;
    let damping = cfg.damping(setup.lambda0);
    let weight = matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both)
        .then(|| run_weight(cfg, &setup, damping));
    let error = matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both)
        .then(|| run_error(cfg, &setup, damping));
    let started = Instant::now();
    let discrete = cfg.discrete.then(|| {
        discrete::run(
            &setup.model,
            &setup.w0,
            twin(damping, setup.eta),
            setup.eta,
            cfg.t_end,
        )
    });
    let mut setup = setup;
    if let Some(d) = &discrete {
        let first = d.iterates.first().map(|i| i.loss).unwrap_or(f64::NAN);
        let worst = d.iterates.iter().map(|i| i.loss).fold(0.0, f64::max);
        if worst > 1e3 * first {
            setup.warnings.push(format!(
                "{} with eta = {} is unstable: its loss grew from {first:.3e} to {worst:.3e} (GD needs eta < 2/lambda_max(H(0)) = {:.3e})",
                d.twin.name(),
                d.eta,
                2.0 / setup.h0_extremes.1
            ));
        }
    }
    Ok(Report {
        config: cfg.clone(),
        setup,
        damping,
        weight,
        error,
        discrete,
        discrete_wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// `ntkdyn compare`: gf, hbf and nag on the same data and initialization, each with its twin,
/// run in parallel (one thread each), each configured as `cfg` but for the optimizer and its
/// output directory `cfg.out/<optimizer>`.
pub fn compare(cfg: &RunConfig) -> Result<Vec<Report>, Error> {
    let configs: Vec<RunConfig> = Optimizer::ALL
        .into_iter()
        .map(|optimizer| RunConfig {
            optimizer,
            out: cfg.out.join(optimizer.name()),
            progress: false,
            ..cfg.clone()
        })
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = configs
            .iter()
            .map(|c| scope.spawn(move || run_on_this_thread(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run thread panicked"))
            .collect()
    })
}

impl Report {
    /// The first failure of the run as one line, if any part diverged or its solver stopped.
    pub fn failure(&self) -> Option<NumericsError> {
        for (name, run) in [("weight", &self.weight), ("error", &self.error)] {
            let Some(run) = run else { continue };
            match &run.stop {
                Stop::Completed => {}
                Stop::Observer { t } => {
                    return Some(NumericsError::Solver {
                        space: name,
                        solver: run.solver.name(),
                        msg: format!("non-finite state at t = {t}; rows up to there were written"),
                    })
                }
                Stop::Failed(failure) => {
                    return Some(NumericsError::Solver {
                        space: name,
                        solver: run.solver.name(),
                        msg: format!("{failure}; rows up to there were written"),
                    })
                }
            }
        }
        let d = self.discrete.as_ref()?;
        d.diverged_at.map(|t| NumericsError::Solver {
            space: "discrete",
            solver: d.twin.name(),
            msg: format!(
                "loss became non-finite at t = {t} (eta = {}); iterates up to there were written",
                d.eta
            ),
        })
    }
}

/// Damping regime of the mode lambda of x'' + b x' + lambda x = 0.
pub fn regime(lambda: f64, b: f64) -> &'static str {
    let q = lambda - b * b / 4.0;
    if q.abs() <= 1e-12 * lambda.abs().max(b * b) {
        "critically damped"
    } else if q > 0.0 {
        "under-damped"
    } else {
        "over-damped"
    }
}

#[derive(Serialize)]
struct Spectrum {
    lambda_min: f64,
    lambda_max: f64,
}

#[derive(Serialize)]
struct LyapunovSummary {
    function: Lyapunov,
    nonincreasing: bool,
    max_relative_rise: f64,
    nonincreasing_after: f64,
    tolerance: f64,
}

#[derive(Serialize)]
struct SpaceSummary {
    solver: &'static str,
    rtol: f64,
    atol: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_step: Option<f64>,
    evaluations: u64,
    accepted_steps: u64,
    rejected_steps: u64,
    /// Activation signs that changed within accepted steps (held-pattern dopri5).
    sign_changes: u64,
    wall_seconds: f64,
    final_loss: f64,
    completed: bool,
    stopped: Option<String>,
    lyapunov: LyapunovSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<KernelChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exact_max_relative_error: Option<f64>,
    inf_pl_ratio: f64,
    sup_kernel_cond: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pl_ball: Option<PlBall>,
    #[serde(skip_serializing_if = "Option::is_none")]
    final_test_gap: Option<f64>,
}

#[derive(Serialize)]
struct DiscreteSummary {
    name: &'static str,
    method: Twin,
    eta: f64,
    clock: &'static str,
    iterates: usize,
    final_loss: f64,
    wall_seconds: f64,
    diverged_at: Option<f64>,
    eta_rule: &'static str,
    max_distance: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pl_prediction: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct Summary<'a> {
    ntkdyn_version: &'static str,
    command: &'static str,
    config: &'a RunConfig,
    n: usize,
    d: usize,
    m: usize,
    lambda0: f64,
    lambda0_source: &'static str,
    h0: Spectrum,
    hinf: Spectrum,
    damping: Damping,
    #[serde(skip_serializing_if = "Option::is_none")]
    damping_regimes: Option<serde_json::Value>,
    weight: Option<SpaceSummary>,
    error: Option<SpaceSummary>,
    discrete: Option<DiscreteSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    test_points: Option<usize>,
    warnings: &'a [String],
}

fn space_summary(run: &SpaceRun, cfg: &RunConfig, kernel: Option<KernelChoice>) -> SpaceSummary {
    let stopped = match &run.stop {
        Stop::Completed => None,
        Stop::Observer { t } => Some(format!("non-finite state at t = {t}")),
        Stop::Failed(failure) => Some(format!("solver failed: {failure}")),
    };
    SpaceSummary {
        solver: run.solver.name(),
        rtol: cfg.rtol,
        atol: cfg.atol,
        max_step: (kernel.is_none() && run.solver == Solver::Dopri5).then(|| cfg.max_step()),
        evaluations: run.stats.evaluations,
        accepted_steps: run.stats.accepted_steps,
        rejected_steps: run.stats.rejected_steps,
        sign_changes: run.stats.sign_changes(),
        wall_seconds: run.wall_seconds,
        final_loss: run.final_loss(),
        completed: stopped.is_none(),
        stopped,
        lyapunov: LyapunovSummary {
            function: run.lyapunov,
            nonincreasing: run.monotonicity.nonincreasing,
            max_relative_rise: run.monotonicity.max_relative_rise,
            nonincreasing_after: run.monotonicity.nonincreasing_after,
            tolerance: run.monotonicity.tolerance,
        },
        kernel,
        exact_max_relative_error: run.exact_max_relative_error,
        inf_pl_ratio: run.inf_pl_ratio(),
        sup_kernel_cond: run.sup_kernel_cond(),
        pl_ball: run.pl_ball.clone(),
        final_test_gap: run.final_test_gap(),
    }
}

impl Report {
    /// summary.json as a JSON value.
    pub fn summary_json(&self) -> serde_json::Value {
        let cfg = &self.config;
        let s = &self.setup;
        let error_h_min = match cfg.kernel {
            KernelChoice::H0 => s.h0_extremes.0,
            KernelChoice::Hinf => s.hinf_extremes.0,
        };
        let regimes = match self.damping {
            Damping::Constant(b) => Some(serde_json::json!({
                "friction_b": b,
                "slowest_mode": { "lambda": error_h_min, "regime": regime(error_h_min.max(0.0), b) },
                "fastest_mode": { "lambda": s.h0_extremes.1, "regime": regime(s.h0_extremes.1, b) },
                "siegel_rate_s": b / 2.0,
                "siegel_condition_s2_le_lambda0_over_2": b * b / 4.0 <= s.lambda0 / 2.0 * (1.0 + 1e-12),
            })),
            _ => None,
        };
        let summary = Summary {
            ntkdyn_version: env!("CARGO_PKG_VERSION"),
            command: cfg.optimizer.name(),
            config: cfg,
            n: s.model.n(),
            d: s.model.d(),
            m: s.model.m(),
            lambda0: s.lambda0,
            lambda0_source: if cfg.lambda0.is_some() {
                "--lambda0"
            } else {
                "lambda_min(Hinf)"
            },
            h0: Spectrum {
                lambda_min: s.h0_extremes.0,
                lambda_max: s.h0_extremes.1,
            },
            hinf: Spectrum {
                lambda_min: s.hinf_extremes.0,
                lambda_max: s.hinf_extremes.1,
            },
            damping: self.damping,
            damping_regimes: regimes,
            weight: self.weight.as_ref().map(|r| space_summary(r, cfg, None)),
            error: self
                .error
                .as_ref()
                .map(|r| space_summary(r, cfg, Some(cfg.kernel))),
            discrete: self.discrete.as_ref().map(|d| DiscreteSummary {
                name: d.twin.name(),
                method: d.twin,
                eta: d.eta,
                clock: if d.twin == Twin::Gd {
                    "t = k eta"
                } else {
                    "t = k sqrt(eta)"
                },
                iterates: d.iterates.len(),
                final_loss: d.iterates.last().map(|i| i.loss).unwrap_or(f64::NAN),
                wall_seconds: self.discrete_wall_seconds,
                diverged_at: d.diverged_at,
                eta_rule: if cfg.eta_auto { "1/lambda_max(H(0))" } else { "--eta" },
                max_distance: d.max_distance,
                pl_prediction: (d.twin == Twin::Gd).then(|| {
                    let (mu, beta) = (s.h0_extremes.0, s.h0_extremes.1);
                    let loss0 = d.iterates.first().map(|i| i.loss).unwrap_or(f64::NAN);
                    let radius = pl_radius(mu, beta, loss0);
                    serde_json::json!({
                        "mu": mu,
                        "beta": beta,
                        "mu_beta_source": "lambda_min and lambda_max of H(0)",
                        "rate_per_step": self.pl_rate(),
                        "theorem_needs_eta_at_most_1_over_beta": d.eta <= 1.0 / beta * (1.0 + 1e-12),
                        "radius": radius,
                        "inside_ball": d.max_distance <= radius,
                    })
                }),
            }),
            test_points: s.test.as_ref().map(|t| t.n()),
            warnings: &s.warnings,
        };
        serde_json::to_value(&summary).expect("summary is plain data")
    }

    /// discrete.csv as a table; GD gets the PL* envelope (1 - eta mu)^k L(0), mu = lambda_min(H(0)).
    pub fn discrete_table(&self) -> Option<Table> {
        let d = self.discrete.as_ref()?;
        let gd = d.twin == Twin::Gd;
        let mut columns = DISCRETE_COLUMNS.to_vec();
        if gd {
            columns.push("pl_envelope");
        }
        let mut t = Table::new(&columns);
        let rate = self.pl_rate();
        let loss0 = d.iterates.first().map(|i| i.loss).unwrap_or(f64::NAN);
        t.rows = d
            .iterates
            .iter()
            .map(|i| {
                let mut row = vec![i.k as f64, i.t, i.loss];
                if gd {
                    row.push(rate.powi(i.k as i32) * loss0);
                }
                row
            })
            .collect();
        Some(t)
    }

    /// The PL* theorem's predicted per-step rate of GD, 1 - eta mu with mu = lambda_min(H(0)).
    pub fn pl_rate(&self) -> f64 {
        1.0 - self.setup.eta * self.setup.h0_extremes.0.max(0.0)
    }
}

/// Files a run may write; those not written by this run are removed, so that a completed run
/// leaves only its own files (a run killed while writing may leave each file whole but some
/// from the run before).
pub const OUTPUT_FILES: [&str; 8] = [
    "weight.csv",
    "error.csv",
    "discrete.csv",
    "summary.json",
    "loss.svg",
    "lyapunov.svg",
    "kernel.svg",
    "test_gap.svg",
];

/// Write the CSV files, summary.json and the figures into `dir`; returns the paths written.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    io::prepare_dir(dir)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(w) = &report.weight {
        files.push(("weight.csv".into(), w.table.to_csv().into_bytes()));
    }
    if let Some(e) = &report.error {
        files.push(("error.csv".into(), e.table.to_csv().into_bytes()));
    }
    if let Some(t) = report.discrete_table() {
        files.push(("discrete.csv".into(), t.to_csv().into_bytes()));
    }
    let json = serde_json::to_string_pretty(&report.summary_json()).expect("plain data");
    files.push(("summary.json".into(), json.into_bytes()));
    // Data first: a figure that cannot be drawn must not cost the numbers.
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), OutputError> {
        let path = dir.join(name);
        io::write_atomic(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    for (name, bytes) in &files {
        put(name, bytes)?;
    }
    let figures = render(&RunTables::from_report(report), &Style::default(), dir)?;
    for (name, bytes) in &figures {
        put(name, bytes)?;
    }
    files.extend(figures);
    for stale in OUTPUT_FILES {
        if !files.iter().any(|(n, _)| n == stale) {
            let _ = std::fs::remove_file(dir.join(stale));
        }
    }
    Ok(written)
}
