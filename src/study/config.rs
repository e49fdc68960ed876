//! What a study depends on, and the one source of its defaults.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::dynamics::Damping;
use crate::error::InputError;
use crate::integrate::{Solver, SolverSettings};
use crate::model::{Activation, Train};
use crate::optimizer::{Optimizer, ScheduleParams};
use crate::theory::discrete_modes::FixedMomentum;

/// The largest default step of a smooth activation's weight space (issue 17), below the
/// optimizer's own cap: see [`RunConfig::max_step`].
pub const SMOOTH_STEP_CAP: f64 = 0.1;

/// Which spaces are integrated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceChoice {
    Weight,
    Error,
    Both,
}

/// The fixed kernel of error space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelChoice {
    /// H(W0), the Gram matrix of the initial network.
    H0,
    /// Hinf, the infinite-width kernel.
    Hinf,
}

/// A word that names no choice of an option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{word}' is not one of {choices}")]
pub struct UnknownChoice {
    pub word: String,
    pub choices: &'static str,
}

macro_rules! named {
    ($t:ty, $choices:literal, $($v:path => $name:literal),+) => {
        impl $t {
            /// The name on the command line and in summary.json.
            pub fn name(&self) -> &'static str {
                match self { $($v => $name),+ }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
        impl std::str::FromStr for $t {
            type Err = UnknownChoice;
            fn from_str(s: &str) -> Result<Self, UnknownChoice> {
                match s {
                    $($name => Ok($v),)+
                    _ => Err(UnknownChoice { word: s.to_string(), choices: $choices }),
                }
            }
        }
    };
}

named!(SpaceChoice, "weight, error, both",
    SpaceChoice::Weight => "weight", SpaceChoice::Error => "error", SpaceChoice::Both => "both");
named!(KernelChoice, "h0, hinf", KernelChoice::H0 => "h0", KernelChoice::Hinf => "hinf");

// issue 16: output times
/// How the output times spread over [0, T] (`--times`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimesChoice {
    /// K times evenly on [0, T], both ends.
    #[default]
    Linear,
    /// 0, then K - 1 times in geometric progression from T/(K - 1) (the first positive
    /// linear time) to T.
    Log,
}

named!(TimesChoice, "linear, log", TimesChoice::Linear => "linear", TimesChoice::Log => "log");

/// Everything a run depends on (recorded in summary.json). [`RunConfig::defaults`] is the one
/// source of defaults: the command line takes its own from there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub optimizer: Optimizer,
    pub n: usize,
    pub d: usize,
    pub m: usize,
    pub seed: u64,
    #[serde(serialize_with = "crate::json::option_path_lossy")]
    pub data: Option<PathBuf>,
    #[serde(serialize_with = "crate::json::option_path_lossy")]
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
    /// Friction b of hbf; None: sqrt(2 lambda0).
    pub friction: Option<f64>,
    pub gamma: f64,
    pub alpha: f64,
    /// None: lambda_min(Hinf).
    pub lambda0: Option<f64>,
    /// NaN with `eta_auto` (JSON null).
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub eta: f64,
    /// --eta auto: eta = 1/lambda_max(H(0)), the PL* theorem's 1/beta.
    pub eta_auto: bool,
    /// Number of synthetic held-out points (--test-n).
    pub test_n: usize,
    /// Held-out points from a file (--test, same format as --data).
    #[serde(serialize_with = "crate::json::option_path_lossy")]
    pub test: Option<PathBuf>,
    pub discrete: bool,
    #[serde(serialize_with = "crate::json::path_lossy")]
    pub out: PathBuf,
    /// Report progress to the study's [`crate::observe::Progress`] (the command line shows a
    /// bar once a space has run for 2 s, when stderr is a terminal).
    #[serde(skip)]
    pub progress: bool,
    // issue 16: inputs and output times
    /// `--label-column`: the column of y in --data and --test (a header name, a column number
    /// counting from 1; None: the last).
    #[serde(default)]
    pub label_column: Option<String>,
    /// `--times`: output times evenly or log-spaced.
    #[serde(default)]
    pub times: TimesChoice,
    /// `--times-file`: one output time per line, increasing, within [0, T] (replaces --times
    /// and --samples).
    #[serde(default, serialize_with = "crate::json::option_path_lossy")]
    pub times_file: Option<PathBuf>,
    // issue 17: activations and a trained output layer
    /// The hidden layer's activation (--activation).
    #[serde(default)]
    pub activation: Activation,
    // issue 20: an explicit --solver keeps its ODE in stiff error space
    /// `--solver` was given (on the command line or in --config): error space keeps that
    /// solver however stiff; otherwise error space above
    /// [`crate::theory::stiffness::EXACT_ABOVE`] is solved exactly.
    #[serde(skip)]
    pub solver_requested: bool,
    // issue 19: --beta
    /// `--beta B` (hbf, nagsc): the twin at the fixed momentum B on the clock
    /// t = k eta/(1 - B), against gradient flow on that clock (low resolution) or the modified
    /// flow W' = -J^T (I + k_B eta H) Delta (`resolution` high); recorded only when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    // issue 17: --train
    /// The trained layers (--train): w (first layer, a = +-1 fixed) or wa (both).
    #[serde(default)]
    pub train: Train,
    // issue 19: resolution
    /// `--resolution`: the leading-order ODEs (low) or their first correction in the clock
    /// step (high, [`crate::theory::high_resolution`]).
    #[serde(default)]
    pub resolution: crate::theory::high_resolution::Resolution,
}

impl RunConfig {
    /// The team's defaults for an optimizer; its files go to `output/<optimizer>`.
    pub fn defaults(optimizer: Optimizer) -> RunConfig {
        RunConfig {
            optimizer,
            n: 50,
            d: 10,
            m: 2000,
            seed: 0,
            data: None,
            init: None,
            normalize: false,
            space: SpaceChoice::Both,
            kernel: KernelChoice::H0,
            t_end: 50.0,
            samples: 201,
            solver: Solver::Dopri5,
            rtol: 1e-6,
            atol: 1e-9,
            step: 0.01,
            max_step: None,
            friction: None,
            gamma: 3.0,
            alpha: 2.0,
            lambda0: None,
            eta: 0.01,
            eta_auto: false,
            test_n: 0,
            test: None,
            discrete: true,
            out: RunConfig::default_out(optimizer.name()),
            progress: true,
            label_column: None,
            times: TimesChoice::Linear,
            times_file: None,
            // issue 17: activations and a trained output layer
            activation: Activation::Relu,
            // issue 20: an explicit --solver keeps its ODE in stiff error space
            solver_requested: false,
            // issue 19: --beta
            beta: None,
            // issue 17: --train
            train: Train::W,
            // issue 19: resolution
            resolution: crate::theory::high_resolution::Resolution::Low,
        }
    }

    /// The output directory of a command when --out is not given: `output/<command>`.
    pub fn default_out(command: &str) -> PathBuf {
        PathBuf::from("output").join(command)
    }

    /// The damping schedule of the optimizer, given lambda0 (gradient flow's with --beta).
    pub fn damping(&self, lambda0: f64) -> Damping {
        self.flow_optimizer().method().damping(&ScheduleParams {
            friction: self.friction,
            gamma: self.gamma,
            lambda0,
        })
    }

    pub(crate) fn solver_settings(&self) -> SolverSettings {
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
    /// requested tolerance; c is the optimizer's [`crate::optimizer::Method::step_cap`]
    /// (0.1 for gf, 0.3 for hbf, 0.07 for nag; each file under `optimizer/` says why).
    ///
    /// A smooth activation (issue 17) has no switches, yet keeps a cap, c at most 0.1: its
    /// error estimate is measured against |W|, dominated by the initial weights while W
    /// moves little. Read off the continuous extension between steps (the default), to
    /// T = 10 against a tight reference: gf with erf, uncapped (21 steps), met rtol 1e-6 but
    /// its loss was 5.5e-6 relative off, capped at 0.1 (102 steps) 7e-7; hbf with erf at its
    /// cap 0.3 (63 steps) 1.0e-5, at 0.15 4.9e-6, at 0.1 (102 steps) 6.6e-7. Uncapped,
    /// `ntkdyn gap nag --activation erf` moved its gaps by 3e-6 relative, where its
    /// high-resolution gaps are O(eta^2).
    pub fn max_step(&self) -> f64 {
        self.max_step.unwrap_or_else(|| {
            let mut c = self.flow_optimizer().method().step_cap();
            if !self.activation.switching() {
                c = c.min(SMOOTH_STEP_CAP);
            }
            (c * (self.rtol / 1e-6).sqrt()).clamp(1e-3, c)
        })
    }
}

// issue 19: --beta
impl RunConfig {
    /// The optimizer whose flow the spaces integrate: gradient flow with `--beta` (the flows
    /// of a fixed-momentum twin are first order), else the optimizer's own.
    pub fn flow_optimizer(&self) -> Optimizer {
        if self.beta.is_some() {
            Optimizer::Gf
        } else {
            self.optimizer
        }
    }

    /// The fixed-momentum twin's theory ([`FixedMomentum`]) for `--beta` and the step eta.
    pub fn fixed_momentum(&self, eta: f64) -> Option<FixedMomentum> {
        let beta = self.beta?;
        let twin = crate::optimizer::Twin::fixed_momentum(self.optimizer, beta);
        FixedMomentum::new(twin.recurrence(), eta)
    }

    /// With `--beta`, whether `--resolution high` asks for the modified flow in place of
    /// gradient flow.
    pub fn beta_high(&self) -> bool {
        self.beta.is_some() && self.resolution == crate::theory::high_resolution::Resolution::High
    }

    /// kappa = k_B eta of the modified flow, when `--beta` asks for the high-resolution ODE.
    pub fn modified_kappa(&self, eta: f64) -> Option<f64> {
        self.fixed_momentum(eta)
            .filter(|_| self.beta_high())
            .map(|f| f.kappa())
    }

    /// `--beta`: on hbf and nagsc only, with B in [0, 1), and with the iterates its clock
    /// eta/(1 - B) needs within the limit.
    pub fn validate_beta(&self) -> Result<(), InputError> {
        // Weight space at high resolution holds ReLU patterns of the first layer alone, and
        // gf's IGR flow (--beta's modified flow) needs Hess L grad L, which with a trained
        // output layer is not J^T H Delta.
        if self.resolution == crate::theory::high_resolution::Resolution::High
            && self.train.output_layer()
            && self.space != SpaceChoice::Error
        {
            return Err(InputError::option(
                "resolution",
                "high with --train wa is not built in weight space (its held patterns and the IGR flow assume the output layer fixed); use --train w or --space error",
            ));
        }
        let Some(b) = self.beta else {
            return Ok(());
        };
        if !matches!(self.optimizer, Optimizer::Hbf | Optimizer::Nagsc) {
            return Err(InputError::option(
                "beta",
                format!(
                    "fixes the momentum of hbf and nagsc; {} has no constant momentum",
                    self.optimizer
                ),
            ));
        }
        if !(b.is_finite() && (0.0..1.0).contains(&b)) {
            return Err(InputError::option("beta", format!("{b} is outside [0, 1)")));
        }
        if !self.eta_auto && self.discrete {
            let needed = self.t_end * (1.0 - b) / self.eta;
            if needed > crate::study::validate::MAX_ITERATES {
                return Err(InputError::option(
                    "beta",
                    format!(
                        "with --eta {} needs {needed:.3e} iterates on the clock eta/(1 - B) to reach --t-end {} (at most {:e}); raise --eta or use --no-discrete",
                        self.eta,
                        self.t_end,
                        crate::study::validate::MAX_ITERATES
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Default for RunConfig {
    /// [`RunConfig::defaults`] of gradient flow.
    fn default() -> RunConfig {
        RunConfig::defaults(Optimizer::Gf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_read_back_their_own_names() {
        for s in [SpaceChoice::Weight, SpaceChoice::Error, SpaceChoice::Both] {
            assert_eq!(s.name().parse::<SpaceChoice>(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
        for k in [KernelChoice::H0, KernelChoice::Hinf] {
            assert_eq!(k.name().parse::<KernelChoice>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
        assert!("all".parse::<SpaceChoice>().is_err());
    }

    #[test]
    fn max_step_follows_sqrt_rtol_within_one_thousandth_and_the_cap() {
        let mut cfg = RunConfig::defaults(Optimizer::Hbf);
        assert_eq!(cfg.max_step(), 0.3);
        cfg.activation = Activation::Erf;
        assert_eq!(cfg.max_step(), 0.1);
        cfg.activation = Activation::Relu;
        cfg.rtol = 1e-8;
        assert!((cfg.max_step() - 0.03).abs() < 1e-15);
        cfg.rtol = 1e-14;
        assert_eq!(cfg.max_step(), 1e-3);
        cfg.max_step = Some(0.5);
        assert_eq!(cfg.max_step(), 0.5);
    }

    #[test]
    fn a_config_survives_json_and_back_even_with_eta_auto() {
        let mut cfg = RunConfig::defaults(Optimizer::Nag);
        cfg.lambda0 = Some(0.1);
        // Progress is how a run reports, not what it computed: it is not recorded.
        cfg.progress = false;
        let back: RunConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert_eq!(back, cfg);
        cfg.eta_auto = true;
        cfg.eta = f64::NAN;
        let back: RunConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert!(back.eta.is_nan() && back.eta_auto);
    }
}
