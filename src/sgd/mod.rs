//! Mini-batch stochastic gradient descent beside its stochastic modified equation (SDE), with
//! seed bands and an exact error-space oracle (`ntkdyn sgd`).
//!
//! ```text
//! twin   : W_{k+1} = W_k - eta g_B,  g_B = (n/B) sum_{i in B} Delta_i grad u_i = J^T (w o Delta)
//!          (w_i = (n/B) #{draws of i}: E w = 1, so E g_B = J^T Delta = grad L)     t_k = k eta
//! noise  : Cov(g_B) = Sigma_B = J^T M J,  M = c_B (n diag(Delta)^2 - Delta Delta^T),
//!          c_B = 1/B (with replacement), (n-B)/(B(n-1)) (without)
//! SDE    : dW = -grad L dt + sqrt(eta) J^T M^(1/2) dB_t   (B_t in R^n; weak order 1)
//!          error space, H fixed: dDelta = -H Delta dt + sqrt(eta) H M^(1/2) dB_t
//!          Euler-Maruyama with dt = eta/L ([`sde`])
//! oracle : C_{k+1} = (I - eta H) C_k (I - eta H) + eta^2 c_B H (n Diag(C_k) - C_k) H,
//!          E\[L_k] = 1/2 tr C_k; eta_crit(B): spectral radius of that map = 1 ([`oracle`])
//! ```
//! Both trainings and every activation: with `--train wa` the parameters are [W | a] (m x
//! (d+1)), J is the full Jacobian (its W and a blocks), so g_B, Sigma_B and the SDE's noise
//! carry the a-part, and the error space's H is the kernel of (W, a) (H(W0, a0), or Hinf
//! with the second layer's kernel), from which the oracle and eta_crit follow unchanged.
//!
//! The pieces: [`twin`] (batch streams, SGD in weight and error space), [`sde`] (the noise
//! sampler and Euler-Maruyama in both spaces), [`oracle`] (c_B, the second-moment recursion,
//! the mean-square stability edge), [`bands`] (median, q10, q90, mean and standard error over
//! seeds), [`report`] (the run: every process in every space, and its files' text).
//!
//! Seeds: run s (0 <= s < S) draws its batches from `StdRng::seed_from_u64(stream_seed(seed,
//! SGD_STREAM, s))` and its Brownian increments from `stream_seed(seed, SDE_STREAM, s)`
//! ([`twin::stream_seed`], SplitMix64 twice); weight and error space share the streams, so
//! run s of SGD takes the same batches in both spaces. The S runs go in parallel (rayon) and
//! are collected in seed order, each with a gradient engine whose bits do not depend on its
//! lanes: the files are the same on any number of threads.
//!
//! References:
//! 1. Q. Li, C. Tai, W. E, "Stochastic modified equations and adaptive stochastic gradient
//!    algorithms", ICML 2017; "... dynamics of stochastic gradient algorithms I", JMLR 2019.
//! 2. Z. Li, S. Malladi, S. Arora, "On the validity of modeling SGD with stochastic
//!    differential equations (SDEs)", NeurIPS 2021.
//! 3. L. Wu, C. Ma, W. E, "How SGD selects the global minima in over-parameterized learning:
//!    a dynamical stability perspective", NeurIPS 2018 (the mean-square stability edge).

pub mod bands;
pub mod oracle;
pub mod report;
pub mod sde;
pub mod twin;

use serde::{Deserialize, Serialize};

use crate::error::InputError;
use crate::study::RunConfig;

pub use report::{run, run_with, SgdReport};

/// How a batch is drawn from the n samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sampling {
    /// B independent uniform draws (a sample may come twice).
    With,
    /// A uniform B-subset (B <= n).
    Without,
}

impl Sampling {
    /// `with` or `without`, as on the command line and in summary.json.
    pub fn name(&self) -> &'static str {
        match self {
            Sampling::With => "with",
            Sampling::Without => "without",
        }
    }

    /// c_B of Cov(g_B) = c_B J^T (n diag(Delta)^2 - Delta Delta^T) J: 1/B with replacement
    /// (the mean of B independent draws of n Delta_i e_i), (n-B)/(B(n-1)) without (the same
    /// with the finite-population correction (n-B)/(n-1)); 0 for B = n without replacement.
    pub fn c_b(&self, n: usize, batch: usize) -> f64 {
        let (n, b) = (n as f64, batch as f64);
        match self {
            Sampling::With => 1.0 / b,
            Sampling::Without if n <= 1.0 => 0.0,
            Sampling::Without => (n - b) / (b * (n - 1.0)),
        }
    }
}

impl std::fmt::Display for Sampling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What `ntkdyn sgd` depends on beyond a run's options.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// The run options: data, network, eta, t-end, samples (rows kept per run), space,
    /// kernel, the GF solver, out.
    pub run: RunConfig,
    /// Batch size B.
    pub batch: usize,
    pub sampling: Sampling,
    /// Number S of seeded runs of SGD and of the SDE.
    pub seeds: usize,
    /// Euler-Maruyama steps L per SGD step: dt = eta/L.
    pub sde_substeps: usize,
}

impl SgdConfig {
    /// Seeds when --seeds is not given.
    pub const DEFAULT_SEEDS: usize = 16;
    /// Euler-Maruyama steps per SGD step when --sde-substeps is not given: the SDE's own
    /// discretization error (O(dt) weakly) is then a quarter of the SGD-SDE gap it is there
    /// to show (O(eta)).
    pub const DEFAULT_SUBSTEPS: usize = 4;
    /// Sampling when --sampling is not given: without replacement, as SGD is run in practice.
    pub const DEFAULT_SAMPLING: Sampling = Sampling::Without;
    /// Most seeds.
    pub const MAX_SEEDS: usize = 100_000;
    /// Most Euler-Maruyama steps per SGD step.
    pub const MAX_SUBSTEPS: usize = 10_000;

    /// The defaults around a run configuration (its out is `output/sgd`).
    pub fn defaults(batch: usize) -> SgdConfig {
        SgdConfig {
            run: RunConfig {
                out: RunConfig::default_out("sgd"),
                ..RunConfig::default()
            },
            batch,
            sampling: SgdConfig::DEFAULT_SAMPLING,
            seeds: SgdConfig::DEFAULT_SEEDS,
            sde_substeps: SgdConfig::DEFAULT_SUBSTEPS,
        }
    }

    /// What the options alone decide (B against n is checked once --data gave n).
    pub fn validate(&self) -> Result<(), InputError> {
        self.run.validate()?;
        if self.batch == 0 {
            return Err(InputError::option(
                "batch",
                "0 is not a batch size (B >= 1)",
            ));
        }
        if !(1..=SgdConfig::MAX_SEEDS).contains(&self.seeds) {
            return Err(InputError::option(
                "seeds",
                format!("{} is outside 1..={}", self.seeds, SgdConfig::MAX_SEEDS),
            ));
        }
        if !(1..=SgdConfig::MAX_SUBSTEPS).contains(&self.sde_substeps) {
            return Err(InputError::option(
                "sde-substeps",
                format!(
                    "{} is outside 1..={}",
                    self.sde_substeps,
                    SgdConfig::MAX_SUBSTEPS
                ),
            ));
        }
        if self.run.data.is_none() {
            self.check_batch(self.run.n)?;
        }
        Ok(())
    }

    /// B against the number of samples n: without replacement B <= n.
    pub fn check_batch(&self, n: usize) -> Result<(), InputError> {
        if self.sampling == Sampling::Without && self.batch > n {
            return Err(InputError::option(
                "batch",
                format!(
                    "{} is more than the n = {n} samples a batch drawn without replacement can hold; lower --batch or use --sampling with",
                    self.batch
                ),
            ));
        }
        Ok(())
    }
}

/// A process of `ntkdyn sgd` (column `process` of sgd.csv and bands.csv).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Process {
    /// Mini-batch SGD (S seeded runs).
    Sgd,
    /// The SDE by Euler-Maruyama (S seeded runs).
    Sde,
    /// Gradient descent with the same eta.
    Gd,
    /// Gradient flow.
    Gf,
    /// E\[L_k] of SGD from the second-moment recursion (error space).
    Exact,
}

impl Process {
    pub fn name(&self) -> &'static str {
        match self {
            Process::Sgd => "sgd",
            Process::Sde => "sde",
            Process::Gd => "gd",
            Process::Gf => "gf",
            Process::Exact => "exact",
        }
    }
    /// Whether it runs once per seed.
    pub fn stochastic(&self) -> bool {
        matches!(self, Process::Sgd | Process::Sde)
    }
}

/// Where a process runs (column `space`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// The network itself.
    Weight,
    /// Delta with the fixed kernel H.
    Error,
}

impl Space {
    pub fn name(&self) -> &'static str {
        match self {
            Space::Weight => "weight",
            Space::Error => "error",
        }
    }
}

/// The loss of one run of a process at its recorded iterates.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    pub process: Process,
    pub space: Space,
    /// The seed index s of a stochastic process; None for GD, GF and the exact E\[L].
    pub seed: Option<usize>,
    /// (k, t, loss): k is the SGD iterate (GF: the sample index), t its time.
    pub points: Vec<(usize, f64, f64)>,
    /// Time of the first non-finite loss, where the run stopped.
    pub diverged_at: Option<f64>,
}

impl Path {
    /// Run a process from k = 0 to `rec.last`, keeping the loss at `rec`'s iterates with
    /// t_k = k eta; the first non-finite loss stops the run there (`diverged_at`).
    /// `loss_at(k)` first moves the iterate from k - 1 to k (nothing at k = 0), then returns
    /// its loss: every SGD, SDE, GD and E\[L] run is this loop with its own step.
    pub fn record(
        process: Process,
        space: Space,
        seed: Option<usize>,
        eta: f64,
        rec: Recording,
        mut loss_at: impl FnMut(usize) -> f64,
    ) -> Path {
        let mut path = Path {
            process,
            space,
            seed,
            points: Vec::new(),
            diverged_at: None,
        };
        for k in 0..=rec.last {
            let (l, t) = (loss_at(k), k as f64 * eta);
            if !l.is_finite() {
                path.diverged_at = Some(t);
                break;
            }
            if rec.keeps(k) {
                path.points.push((k, t, l));
            }
        }
        path
    }
}

/// The iterates a run keeps: every `stride`-th up to `last`, and `last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recording {
    /// The last iterate: t_last = last eta <= T.
    pub last: usize,
    pub stride: usize,
}

impl Recording {
    /// About `samples` rows: stride = ceil(last / (samples - 1)).
    pub fn new(last: usize, samples: usize) -> Recording {
        let stride = last.div_ceil(samples.saturating_sub(1).max(1)).max(1);
        Recording { last, stride }
    }
    /// Whether iterate k is kept.
    pub fn keeps(&self, k: usize) -> bool {
        k.is_multiple_of(self.stride) || k == self.last
    }
    /// The kept iterates, increasing.
    pub fn iterates(&self) -> Vec<usize> {
        (0..=self.last).filter(|&k| self.keeps(k)).collect()
    }
}
