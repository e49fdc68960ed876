//! The ranges of a run's options, checked before anything is computed, and the one memory
//! estimate every path is checked against before it allocates.
//!
//! [`RunConfig::validate`] checks what the options alone decide. The sizes a file decides
//! (--data's n and d, --init's m, --test's points) and the step --eta auto resolves are
//! checked by [`crate::study::setup()`] as soon as they are known, before the model and its
//! n x n kernels are built; `compare` ([`preflight`]) and `sweep` ([`check_sweep`]) check
//! the runs they hold at once.
//!
//! The estimate ([`MemoryEstimate`]) is a sum of parts, each a count times a calibrated
//! number of bytes: the n x n kernels and their eigen-decompositions, the m x n activation
//! matrices, the m x d states, the rows kept in memory (samples, iterates) with their CSV
//! and SVG text, and the held-out points. The coefficients were fitted to peak resident
//! sizes measured by `cargo run --release --example bench -- memory` (the table in
//! README's "Bad input"), so that each measured peak is within 1.5x of the estimate.

use crate::error::InputError;
use crate::integrate::{output_times, Solver};
use crate::io::format_f64;
use crate::study::config::{RunConfig, SpaceChoice};

/// Most discrete iterates a run may ask for.
pub const MAX_ITERATES: f64 = 2e7;
/// Most output times.
pub const MAX_SAMPLES: usize = 10_000_000;
/// Most memory a run may need, in bytes (the machines are 24 GB).
pub const MAX_BYTES: f64 = 16e9;

// The coefficients below are fitted to peak resident sizes measured with `bench -- memory`
// and /usr/bin/time (2 cores): n = 2000, m = 100: 231 MB; n = 2000, m = 2000: 296 MB;
// n = 200, m = 20000: 140 MB; d = 1000, m = 10000: 403 MB; 200000 samples: 217 MB;
// 2.5e6 iterates: 562 MB; --test-n 4000 at m = 500: 163 MB, 8000 at m = 2000: 644 MB;
// compare at n = 800, m = 200: 111 MB.

/// Bytes of a process before it computes anything (binary, stacks, allocator).
const BASE: f64 = 5e6;
/// f64 n x n matrices alive at the peak of one run: H(0), Hinf, X X^T, the eigen-solver's
/// copies and vectors, error space's kernel, the snapshot's H(t) (measured: 7).
const NN: f64 = 7.0;
/// f64 m x n matrices: pre-activations, masks and patterns and the engine's scratch
/// (measured: 2 to 4).
const MN: f64 = 4.0;
/// f64 m x d vectors: W0, the states (position and velocity), the dopri5 stages and the
/// driver's and twin's scratch (measured: 5).
const MD: f64 = 5.0;
/// Bytes per weight-space sample: a row of 12 f64 in its own Vec, its CSV text and its
/// points in three SVGs.
const WEIGHT_ROW: f64 = 700.0;
/// Bytes per error-space sample: a row of 7 f64, CSV text, SVG points (both: 1080 measured).
const ERROR_ROW: f64 = 400.0;
/// Bytes per discrete iterate: (k, t, loss), its row of discrete.csv's table, CSV text and
/// SVG points (measured: 225).
const ITERATE: f64 = 230.0;
/// f64 per pair of held-out points (the test model's X X^T: measured 1.23), per held-out
/// point and hidden unit, and per held-out point and training point (the cross kernels).
const TEST_T: f64 = 1.25;
const TEST_M: f64 = 0.5;
const TEST_N: f64 = 2.0;

/// Rough peak memory of one weight-space run's problem (no rows kept, no held-out points):
/// the n x n kernels, the m x n activation matrices and the m x d states.
pub fn memory_estimate(n: usize, d: usize, m: usize) -> f64 {
    let (n, d, m) = (n as f64, d as f64, m as f64);
    8.0 * (NN * n * n + MN * m * n + MD * m * d)
}

/// The sizes a run works with once files are read: n and d of the data, m of the network,
/// the number of held-out points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    pub n: usize,
    pub d: usize,
    pub m: usize,
    pub test: usize,
}

impl Sizes {
    /// The sizes a configuration asks for without files (synthetic data, --test-n).
    pub fn of(cfg: &RunConfig) -> Sizes {
        Sizes {
            n: cfg.n,
            d: cfg.d,
            m: cfg.m,
            test: cfg.test_n,
        }
    }
}

/// What a run needs, part by part (bytes), and how many such runs are held at once.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryEstimate {
    /// (what, bytes of one run); the first is the problem itself.
    pub parts: Vec<(&'static str, f64)>,
    /// Runs alive at once (compare: one per optimizer; sweep: one per thread).
    pub runs: usize,
    /// Bytes held once beside the runs (a sweep's job list and rows).
    pub shared: f64,
}

impl MemoryEstimate {
    /// The estimate of one run of `cfg` at `sizes`; `eta` is the resolved discrete step
    /// (None while --eta auto is not resolved: the iterates are counted once it is).
    pub fn of(cfg: &RunConfig, sizes: Sizes, eta: Option<f64>) -> MemoryEstimate {
        let (n, d, m, test) = (
            sizes.n as f64,
            sizes.d as f64,
            sizes.m as f64,
            sizes.test as f64,
        );
        let weight = matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both);
        let error = matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both);
        let samples = cfg.samples as f64;
        let rows = samples * (f64::from(weight) * WEIGHT_ROW + f64::from(error) * ERROR_ROW);
        let iterates = match eta {
            Some(eta) if cfg.discrete => iterates(cfg, eta).min(MAX_ITERATES) * ITERATE,
            _ => 0.0,
        };
        let held_out = if weight {
            8.0 * test * (TEST_T * test + TEST_M * m + TEST_N * n)
        } else if error {
            // issue 16: error space's kernel predictor holds K(test, X) and K H^+ (test x n).
            8.0 * test * (TEST_M * m + TEST_N * n)
        } else {
            0.0
        };
        MemoryEstimate {
            parts: vec![
                (
                    "the problem",
                    memory_estimate(sizes.n, sizes.d, sizes.m) + 8.0 * n * d,
                ),
                ("the samples (--samples)", rows),
                ("the discrete iterates (--eta, --t-end)", iterates),
                ("the held-out points (--test-n, --test)", held_out),
            ],
            runs: 1,
            shared: 0.0,
        }
    }

    /// Total bytes: the process, the runs held at once, what they share.
    pub fn bytes(&self) -> f64 {
        BASE + self.runs as f64 * self.parts.iter().map(|p| p.1).sum::<f64>() + self.shared
    }

    /// The largest part of one run.
    fn largest(&self) -> (&'static str, f64) {
        self.parts
            .iter()
            .copied()
            .fold(("the problem", 0.0), |a, p| if p.1 > a.1 { p } else { a })
    }

    /// Refuse an estimate above [`MAX_BYTES`], naming the sizes, the largest part and how
    /// to lower it.
    pub fn check(&self, sizes: Sizes) -> Result<(), InputError> {
        let bytes = self.bytes();
        if bytes <= MAX_BYTES {
            return Ok(());
        }
        let (what, part) = self.largest();
        let lower = match what {
            "the problem" => "lower --n, --m or --d (or use fewer rows in --data/--init)",
            "the samples (--samples)" => "lower --samples",
            "the discrete iterates (--eta, --t-end)" => {
                "raise --eta, lower --t-end or add --no-discrete"
            }
            _ => "lower --test-n (or use fewer rows in --test)",
        };
        let at_once = if self.runs > 1 {
            format!(" x {} runs at once", self.runs)
        } else {
            String::new()
        };
        Err(InputError::Memory {
            n: sizes.n,
            d: sizes.d,
            m: sizes.m,
            needed_bytes: bytes,
            limit_bytes: MAX_BYTES,
            detail: format!("largest part {what}: {}{at_once}; {lower}", gigabytes(part)),
        })
    }
}

/// Bytes as the messages write them: `3.5 GB`, `20 GB`, `2e14 bytes` past a petabyte.
pub fn gigabytes(bytes: f64) -> String {
    if bytes >= 1e15 {
        format!("{bytes:.1e} bytes")
    } else if bytes >= 1e10 {
        format!("{:.0} GB", bytes / 1e9)
    } else {
        format!("{:.1} GB", bytes / 1e9)
    }
}

/// Discrete iterates of a run with step `eta`: T / clock(eta) + 1.
pub fn iterates(cfg: &RunConfig, eta: f64) -> f64 {
    cfg.t_end / cfg.optimizer.method().clock(eta) + 1.0
}

/// Refuse a discrete step whose twin would need more than [`MAX_ITERATES`] iterates; `what`
/// says where eta came from (`--eta 1e-9`, `--eta auto = 1/lambda_max(H(0)) = ...`).
pub fn check_iterates(cfg: &RunConfig, eta: f64, what: &str) -> Result<(), InputError> {
    let needed = cfg.t_end / cfg.optimizer.method().clock(eta);
    if cfg.discrete && (needed.is_nan() || needed > MAX_ITERATES) {
        return Err(InputError::option(
            "eta",
            format!(
                "{what} needs {needed:.3e} iterates to reach --t-end {} (at most {MAX_ITERATES:e}); raise --eta or use --no-discrete",
                cfg.t_end
            ),
        ));
    }
    Ok(())
}

/// Check `runs` studies of `cfg` held at once (`compare`: one per optimizer) against the
/// memory limit, with the sizes its files give: --data's rows and columns, --init's rows and
/// --test's rows are counted (the files are read, not kept).
pub fn preflight(cfg: &RunConfig, runs: usize) -> Result<(), InputError> {
    cfg.validate()?;
    let sizes = file_sizes(cfg)?;
    let eta = (!cfg.eta_auto).then_some(cfg.eta);
    let mut estimate = MemoryEstimate::of(cfg, sizes, eta);
    estimate.runs = runs;
    estimate.check(sizes)
}

/// The sizes of a configuration with its files' rows counted.
pub fn file_sizes(cfg: &RunConfig) -> Result<Sizes, InputError> {
    let mut sizes = Sizes::of(cfg);
    let label = crate::io::LabelColumn::parse(cfg.label_column.as_deref());
    if let Some(path) = &cfg.data {
        (sizes.n, sizes.d) = crate::io::data_shape(path, &label)?;
    }
    if let Some(path) = &cfg.init {
        sizes.m = crate::io::read_numeric_csv(path)?.len();
    }
    if let Some(path) = &cfg.test {
        sizes.test = crate::io::data_shape(path, &label)?.0;
    }
    Ok(sizes)
}

/// A sweep's memory: as many runs at once as threads run them (`threads`), each at the
/// largest width, and the job list and rows it holds. Called by `SweepConfig::validate`.
pub fn check_sweep(
    base: &RunConfig,
    widths: &[usize],
    jobs: usize,
    threads: usize,
) -> Result<(), InputError> {
    let sweep_run = RunConfig {
        m: widths.iter().copied().max().unwrap_or(base.m),
        space: SpaceChoice::Both,
        discrete: false,
        ..base.clone()
    };
    let sizes = file_sizes(&sweep_run)?;
    let mut estimate = MemoryEstimate::of(&sweep_run, sizes, None);
    estimate.runs = threads.clamp(1, jobs.max(1));
    // A job (index, m, seed, optimizer) and a row of sweep.csv (ten values, CSV text).
    estimate.shared = jobs as f64 * (40.0 + 300.0);
    estimate.check(sizes)
}

impl RunConfig {
    /// Check every range of the bad-input list that can be checked before reading files.
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
            check_iterates(self, self.eta, &format_f64(self.eta))?;
        }
        if self.samples > MAX_SAMPLES {
            return Err(InputError::option(
                "samples",
                format!("{} is more than {MAX_SAMPLES}", self.samples),
            ));
        }
        if self.solver == Solver::Rk4 {
            let settings = self.solver_settings();
            let times = output_times(self.t_end, self.samples);
            if settings.check_fixed_steps(&times).is_err() {
                let span = self.t_end / (self.samples - 1) as f64;
                return Err(InputError::option(
                    "step",
                    format!(
                        "{} needs {:.3e} rk4 steps per output interval of {} (at most {}); raise --step or --samples",
                        format_f64(self.step),
                        span / self.step,
                        format_f64(span),
                        settings.max_steps
                    ),
                ));
            }
        }
        // Synthetic sizes are checked here; those a file gives, once it is read (setup).
        let sizes = Sizes::of(self);
        let eta = (!self.eta_auto).then_some(self.eta);
        let estimate = MemoryEstimate::of(
            self,
            Sizes {
                n: if self.data.is_some() { 1 } else { sizes.n },
                d: if self.data.is_some() { 1 } else { sizes.d },
                m: if self.init.is_some() { 1 } else { sizes.m },
                test: if self.test.is_some() { 0 } else { sizes.test },
            },
            eta,
        );
        estimate.check(sizes)?;
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
        // issue 19: --beta
        self.validate_beta()?;
        // issue 16: held-out points and output times
        self.validate_issue16()
    }

    /// `--test-n` beside `--data` (it would draw sphere points unrelated to the data), and
    /// the output times of `--times-file` (read here: increasing, within [0, T]) with the
    /// steps rk4 needs between them.
    fn validate_issue16(&self) -> Result<(), InputError> {
        if self.test_n > 0 && self.data.is_some() && self.test.is_none() {
            return Err(InputError::option(
                "test-n",
                "draws points on the unit sphere unrelated to --data; give held-out rows of your data with --test FILE",
            ));
        }
        if self.times_file.is_some() || self.times != crate::study::TimesChoice::Linear {
            let times = self.sample_times()?;
            if self.solver == Solver::Rk4 {
                let settings = self.solver_settings();
                if settings.check_fixed_steps(&times).is_err() {
                    return Err(InputError::option(
                        "step",
                        format!(
                            "{} needs more than {} rk4 steps between two output times; raise --step",
                            format_f64(self.step),
                            settings.max_steps
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}
