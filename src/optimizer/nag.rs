//! Nesterov's ODE and Nesterov's accelerated gradient.
//!
//! ```text
//! flow : W'' + (gamma/t) W' + grad L = 0, W'(0) = 0 (singular start, see dynamics)
//! twin : x_k = y_{k-1} - eta grad L(y_{k-1}),
//!        y_k = x_k + (k-1)/(k+gamma-1) (x_k - x_{k-1}),  x_0 = y_0 = W_0    t_k = k sqrt(eta)
//! V(t; alpha, gamma) = t^alpha Lhat + 1/2 t^(alpha-2) |c Delta + t Delta'|^2, c = (2 gamma - alpha)/2
//! alpha = 2: L(t) <= (gamma-1)^2 L(0) / (mu t^2)
//! ```
//! The loss is reported at x_k.
//!
//! Step cap c = 0.07: the weakly damped late phase turns each step's error into a phase
//! error of the loss's oscillation that the error estimate does not weigh: at n = 100,
//! m = 400, T = 100 the final loss is off by 1.2e-2 to 1.3e-2 at max step 0.1, 1.3e-3 to
//! 3.1e-3 at 0.07 and 0.7e-3 to 2.8e-3 at 0.05, whatever rtol from 1e-6 to 1e-8
//! (`cargo run --release --example bench -- steps --only nag`).
//!
//! Reference: W. Su, S. Boyd, E. Candes, "A differential equation for modeling Nesterov's
//! accelerated gradient method", NeurIPS 2014 (the ODE, the twin's form and clock, V).

use nalgebra::DMatrix;

use super::{Method, Optimizer, ScheduleParams, Twin, TwinStep};
use crate::dynamics::Damping;
use crate::model::relu2::engine::Workspace;
use crate::model::Model;
use crate::theory::discrete_modes::Recurrence;
use crate::theory::lyapunov::Lyapunov;

/// Nesterov's ODE, twin NAG.
pub struct NesterovOde;

impl Method for NesterovOde {
    fn name(&self) -> &'static str {
        "nag"
    }
    fn title(&self) -> &'static str {
        "Nesterov's ODE"
    }
    fn summary(&self) -> &'static str {
        "Nesterov's ODE W'' + (gamma/t) W' + grad L = 0, twin: NAG"
    }
    fn command_about(&self) -> &'static str {
        "Nesterov's ODE W'' + (gamma/t) W' + grad L = 0 beside NAG"
    }
    fn damping(&self, p: &ScheduleParams) -> Damping {
        Damping::Vanishing(p.gamma)
    }
    fn lyapunov(&self, damping: Damping, mu: f64, alpha: f64) -> Lyapunov {
        Lyapunov::Nag {
            gamma: gamma(damping),
            alpha,
            mu,
        }
    }
    fn step_cap(&self) -> f64 {
        0.07
    }
    fn twin(&self, damping: Damping, _eta: f64) -> Twin {
        Twin::nesterov(gamma(damping))
    }
    fn twin_key(&self) -> (&'static str, Option<&'static str>) {
        ("nesterov", Some("gamma"))
    }
    fn start_twin(&self, w0: &DMatrix<f64>, gamma: Option<f64>) -> Box<dyn TwinStep> {
        Box::new(Nesterov::new(w0, gamma.unwrap_or(f64::NAN)))
    }
    fn mode_recurrence(&self, gamma: Option<f64>) -> Recurrence {
        Recurrence::Nesterov(gamma.unwrap_or(f64::NAN))
    }
    fn rgb(&self) -> [u8; 3] {
        [0, 158, 115]
    }
    fn clock(&self, eta: f64) -> f64 {
        eta.sqrt()
    }
    fn clock_text(&self) -> &'static str {
        "t = k sqrt(eta)"
    }
    fn twin_name(&self) -> &'static str {
        "NAG"
    }
    fn bound_label(&self) -> &'static str {
        "bound (γ−1)² L(0)/(μt²)"
    }
    fn lyapunov_label(&self) -> &'static str {
        "V(t; α, γ) (Su, Boyd, Candès)"
    }
    fn schedule_text(&self, damping: Damping, alpha: f64) -> Option<String> {
        Some(format!("gamma = {}, alpha = {alpha}", gamma(damping)))
    }
    // issue 19: sharpness
    /// NAG's momentum (k-1)/(k+gamma-1) rises to 1, so its edge falls from GD's 2/eta at the
    /// first steps to NAG-SC's 2(1 + beta)/((1 + 2 beta) eta) at beta -> 1: 4/(3 eta), the
    /// edge of every late iterate, which is where a too-large eta shows.
    fn stability_edge(&self, _gamma: Option<f64>, eta: f64) -> Option<super::StabilityEdge> {
        Some(super::StabilityEdge {
            value: 4.0 / (3.0 * eta),
            formula: "4/(3η), NAG-SC's edge at β → 1",
        })
    }
}

/// gamma of c(t) = gamma/t (NaN for another schedule, which this optimizer never makes).
fn gamma(damping: Damping) -> f64 {
    match damping {
        Damping::Vanishing(g) => g,
        _ => f64::NAN,
    }
}

impl Twin {
    /// NAG with momentum (k-1)/(k+gamma-1).
    pub fn nesterov(gamma: f64) -> Twin {
        Twin::new(Optimizer::Nag, Some(gamma))
    }
}

/// The momentum of Nesterov's step from x_k to y_k.
#[derive(Clone, Copy)]
enum Momentum {
    /// k/(k + gamma) after step k+1 (NAG, Su-Boyd-Candes).
    Vanishing(f64),
    /// A constant beta (NAG-SC).
    Constant(f64),
}

/// Nesterov's method: the iterate x, the extrapolated point y and the momentum; NAG's and
/// NAG-SC's twins differ only in the momentum.
pub(crate) struct Nesterov {
    x: DMatrix<f64>,
    y: DMatrix<f64>,
    momentum: Momentum,
}

impl Nesterov {
    /// NAG with momentum (k-1)/(k+gamma-1).
    pub(crate) fn new(w0: &DMatrix<f64>, gamma: f64) -> Self {
        Nesterov::start(w0, Momentum::Vanishing(gamma))
    }

    /// NAG-SC: x_{k+1} = y_k - eta grad L(y_k), y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k).
    pub(crate) fn constant(w0: &DMatrix<f64>, beta: f64) -> Self {
        Nesterov::start(w0, Momentum::Constant(beta))
    }

    fn start(w0: &DMatrix<f64>, momentum: Momentum) -> Self {
        Nesterov {
            x: w0.clone(),
            y: w0.clone(),
            momentum,
        }
    }
}

impl TwinStep for Nesterov {
    fn loss(&mut self, model: &Model, _g: &mut DMatrix<f64>, _ws: &mut Workspace) -> f64 {
        model.loss(&self.x.as_view())
    }
    fn iterate(&self) -> &DMatrix<f64> {
        &self.x
    }
    fn step(
        &mut self,
        k: usize,
        eta: f64,
        model: &Model,
        g: &mut DMatrix<f64>,
        ws: &mut Workspace,
    ) {
        // x_{k+1} = y_k - eta grad L(y_k); y_{k+1} = x_{k+1} + k/(k+gamma) (x_{k+1} - x_k).
        model.gradient_into(&self.y.as_view(), &mut g.as_view_mut(), ws);
        let next = &self.y - &*g * eta;
        let momentum = match self.momentum {
            Momentum::Vanishing(gamma) => {
                let kk = (k + 1) as f64;
                (kk - 1.0) / (kk + gamma - 1.0)
            }
            Momentum::Constant(beta) => beta,
        };
        self.y = &next + (&next - &self.x) * momentum;
        self.x = next;
    }
}
