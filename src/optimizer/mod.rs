//! The optimizers, one file each: its friction schedule, its discrete twin's step and clock,
//! its Lyapunov function, its step cap and its labels. A new optimizer is a new file here,
//! a variant of [`Optimizer`] and its arm in [`Optimizer::method`]: the twin's step, its name in
//! summary.json and its colour in figures are the file's too.
//!
//! ```text
//! gf : W' = -grad L                          twin GD           t_k = k eta
//! hbf: W'' + b W' + grad L = 0               twin heavy ball   t_k = k sqrt(eta)
//! nagsc: the same flow                       twin NAG-SC       t_k = k sqrt(eta)
//! nag: W'' + (gamma/t) W' + grad L = 0       twin NAG          t_k = k sqrt(eta)
//! ```

pub mod gf;
pub mod hbf;
pub mod nag;
pub mod nagsc;
pub mod twin;

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::dynamics::Damping;
use crate::model::relu2::engine::Workspace;
use crate::model::Model;
use crate::theory::discrete_modes::Recurrence;
use crate::theory::exact::ExactSolution;
use crate::theory::lyapunov::Lyapunov;

pub use twin::{DiscreteRun, Iterate, Twin};

/// The optimizer studied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    /// Gradient flow W' = -grad L, twin: gradient descent.
    Gf,
    /// Heavy ball with friction W'' + b W' + grad L = 0, twin: heavy ball.
    Hbf,
    /// NAG with constant momentum, low-resolution ODE heavy ball with friction.
    Nagsc,
    /// Nesterov's ODE W'' + (gamma/t) W' + grad L = 0, twin: NAG.
    Nag,
}

impl Optimizer {
    /// Every optimizer, in table order (which is also their `Ord`).
    pub const ALL: [Optimizer; 4] = [
        Optimizer::Gf,
        Optimizer::Hbf,
        Optimizer::Nagsc,
        Optimizer::Nag,
    ];

    /// Everything that sets this optimizer apart, from its own file.
    pub fn method(self) -> &'static dyn Method {
        match self {
            Optimizer::Gf => &gf::GradientFlow,
            Optimizer::Hbf => &hbf::HeavyBallFriction,
            Optimizer::Nagsc => &nagsc::NesterovConstant,
            Optimizer::Nag => &nag::NesterovOde,
        }
    }

    /// The optimizer [`Optimizer::name`] names.
    pub fn from_name(name: &str) -> Option<Optimizer> {
        Optimizer::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The subcommand and the name in files: gf, hbf, nagsc, nag.
    pub fn name(&self) -> &'static str {
        self.method().name()
    }

    /// The title of figures.
    pub fn title(&self) -> &'static str {
        self.method().title()
    }
}

impl std::fmt::Display for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no optimizer's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an optimizer ({names})", names = Optimizer::ALL.map(|o| o.name()).join(", "))]
pub struct UnknownOptimizer(pub String);

impl std::str::FromStr for Optimizer {
    type Err = UnknownOptimizer;
    fn from_str(s: &str) -> Result<Optimizer, UnknownOptimizer> {
        Optimizer::from_name(s).ok_or_else(|| UnknownOptimizer(s.to_string()))
    }
}

/// What a schedule may depend on: the options of a run and the problem's lambda0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleParams {
    /// --friction b (heavy ball); None: the optimizer's default.
    pub friction: Option<f64>,
    /// --gamma of Nesterov's ODE.
    pub gamma: f64,
    /// lambda0 of the run (lambda_min(Hinf) or --lambda0).
    pub lambda0: f64,
}

/// One optimizer: its continuous schedule, its discrete twin and its theory.
pub trait Method: Sync {
    /// The subcommand and the name in files.
    fn name(&self) -> &'static str;
    /// The title of figures.
    fn title(&self) -> &'static str;
    /// The short label of figures and legends (GF, HBF, NAG-SC, NAG).
    fn label(&self) -> String {
        self.name().to_uppercase()
    }
    /// One line: the flow and its twin (the help of `--optimizers`).
    fn summary(&self) -> &'static str;
    /// One line: what its subcommand runs (the help of `ntkdyn <name>`).
    fn command_about(&self) -> &'static str;
    /// The friction schedule c(t) of W'' + c(t) W' + grad L = 0 (none: first order).
    fn damping(&self, p: &ScheduleParams) -> Damping;
    /// The Lyapunov function of the convergence proof; `mu` bounds lambda_min of the space's
    /// kernel from below along the run, `alpha` is --alpha.
    fn lyapunov(&self, damping: Damping, mu: f64, alpha: f64) -> Lyapunov;
    /// The exact eigen-mode solution of error space Delta'' + c(t) Delta' + H Delta = 0.
    fn exact(&self, h: &DMatrix<f64>, delta0: &DVector<f64>, damping: Damping) -> ExactSolution {
        ExactSolution::new(h, delta0, damping)
    }
    /// c of the weight-space dopri5's largest step c sqrt(rtol/1e-6) within [1e-3, c]; each
    /// file says why its c.
    fn step_cap(&self) -> f64;
    /// The discrete twin with step eta.
    fn twin(&self, damping: Damping, eta: f64) -> Twin;
    /// The twin's `kind` in summary.json and the key of its parameter (none for GD).
    fn twin_key(&self) -> (&'static str, Option<&'static str>);
    /// The twin's iterate at W0 and its step; `parameter` is [`Twin::parameter`].
    fn start_twin(&self, w0: &DMatrix<f64>, parameter: Option<f64>) -> Box<dyn TwinStep>;
    /// The twin's step on one eigen-mode of error space with a fixed H; `parameter` is
    /// [`Twin::parameter`].
    fn mode_recurrence(&self, parameter: Option<f64>) -> Recurrence;
    /// The optimizer's colour in every figure, as RGB (Okabe-Ito where there is one, so that
    /// the four stay apart in colour-blind vision and in gray).
    fn rgb(&self) -> [u8; 3];
    /// Flow time of one iterate of the twin: t_k = k clock(eta).
    fn clock(&self, eta: f64) -> f64;
    /// The clock as summary.json writes it.
    fn clock_text(&self) -> &'static str;
    /// The twin's name (GD, heavy ball, NAG).
    fn twin_name(&self) -> &'static str;
    /// Legend of the loss bound in loss.svg.
    fn bound_label(&self) -> &'static str;
    /// Axis label of lyapunov.svg.
    fn lyapunov_label(&self) -> &'static str;
    /// The schedule's parameters in the few lines printed after a run, if any.
    fn schedule_text(&self, damping: Damping, alpha: f64) -> Option<String>;
    // issue 19: sharpness
    /// The twin's stability edge: the eigenvalue of a fixed H above which the twin with step
    /// `eta` and [`Twin::parameter`] `parameter` amplifies that mode (kernel.svg draws it
    /// against lambda_max(H(t))); None when the twin has no such edge.
    fn stability_edge(&self, _parameter: Option<f64>, _eta: f64) -> Option<StabilityEdge> {
        None
    }
}

// issue 19: sharpness
/// A twin's stability edge ([`Method::stability_edge`]): its value and its formula as a
/// legend writes it ("2/η").
#[derive(Clone, Debug, PartialEq)]
pub struct StabilityEdge {
    pub value: f64,
    pub formula: &'static str,
}

/// One discrete twin in motion: the iterate, its loss and the step to the next.
pub trait TwinStep {
    /// The loss at the iterate x_k; may leave grad L(x_k) in `g` for [`TwinStep::step`].
    fn loss(&mut self, model: &Model, g: &mut DMatrix<f64>, ws: &mut Workspace) -> f64;
    /// The iterate x_k whose loss is reported.
    fn iterate(&self) -> &DMatrix<f64>;
    /// x_k -> x_{k+1}; `g` holds what [`TwinStep::loss`] left there.
    fn step(&mut self, k: usize, eta: f64, model: &Model, g: &mut DMatrix<f64>, ws: &mut Workspace);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optimizer_is_found_by_its_name_and_names_differ() {
        for o in Optimizer::ALL {
            assert_eq!(Optimizer::from_name(o.name()), Some(o));
            assert_eq!(o.name().parse::<Optimizer>(), Ok(o));
            assert_eq!(o.to_string(), o.name());
        }
        let err = "sgd".parse::<Optimizer>().unwrap_err().to_string();
        assert!(
            err.starts_with("'sgd' is not an optimizer (gf, hbf"),
            "{err}"
        );
        assert!(
            Optimizer::ALL.iter().all(|o| err.contains(o.name())),
            "{err}"
        );
    }

    #[test]
    fn each_twin_belongs_to_the_optimizer_that_makes_it() {
        let p = ScheduleParams {
            friction: None,
            gamma: 3.0,
            lambda0: 0.08,
        };
        for o in Optimizer::ALL {
            let m = o.method();
            let twin = m.twin(m.damping(&p), 0.01);
            assert_eq!(twin.optimizer(), o);
            assert_eq!(twin.name(), m.twin_name());
        }
    }

    // issue 19: sharpness
    #[test]
    fn the_stability_edge_is_where_the_twins_mode_stops_contracting() {
        let eta = 0.01;
        for (o, p) in [
            (Optimizer::Gf, None),
            (Optimizer::Hbf, Some(0.9)),
            (Optimizer::Nagsc, Some(0.9)),
            (Optimizer::Nag, Some(3.0)),
        ] {
            let m = o.method();
            let edge = m
                .stability_edge(p, eta)
                .expect("every twin has an edge")
                .value;
            let rec = m.mode_recurrence(p);
            assert!(
                (edge * eta - rec.stability_edge()).abs() < 1e-12,
                "{o}: {edge}"
            );
            // |r_max| crosses 1 at the edge (NAG's momentum varies: no fixed roots).
            if let (Some(below), Some(above)) = (
                rec.spectral_radius(eta, edge * (1.0 - 1e-6)),
                rec.spectral_radius(eta, edge * (1.0 + 1e-6)),
            ) {
                assert!(below < 1.0 && above > 1.0, "{o}: {below} {above}");
            }
        }
    }

    #[test]
    fn step_caps_are_those_measured_for_gf_hbf_nag_and_nagsc_shares_hbfs() {
        let caps: Vec<f64> = Optimizer::ALL
            .iter()
            .map(|o| o.method().step_cap())
            .collect();
        assert_eq!(caps, [0.1, 0.3, 0.3, 0.07]);
    }
}
