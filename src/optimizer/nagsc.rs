//! Nesterov's accelerated gradient with constant momentum (NAG-SC); its low-resolution ODE is
//! heavy ball with friction.
//!
//! ```text
//! flow : W'' + b W' + grad L = 0, b = --friction or sqrt(2 lambda0)
//! twin : x_{k+1} = y_k - eta grad L(y_k),  y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k),
//!        x_0 = y_0 = W_0, beta = 1 - b sqrt(eta)                       t_k = k sqrt(eta)
//! V = Lhat + 1/2 |s Delta + Delta'|^2, s = b/2 (heavy ball's, the same low-resolution ODE)
//! ```
//! The loss is reported at x_k; the twin's step is NAG's with a constant momentum (nag.rs). Step cap: heavy ball's 0.3 (the same flow).
//!
//! Reference: B. Shi, S. S. Du, M. I. Jordan, W. J. Su, "Understanding the acceleration
//! phenomenon via high-resolution differential equations", Math. Programming 2021
//! (arXiv:1810.08907).

use super::hbf::{friction, HeavyBallFriction};
use super::nag::Nesterov;
use super::{Method, Optimizer, ScheduleParams, Twin, TwinStep};
use crate::dynamics::Damping;
use crate::theory::discrete_modes::Recurrence;
use crate::theory::lyapunov::Lyapunov;
use nalgebra::DMatrix;

/// NAG-SC's low-resolution ODE (heavy ball with friction), twin NAG-SC.
pub struct NesterovConstant;

impl Method for NesterovConstant {
    fn name(&self) -> &'static str {
        "nagsc"
    }
    fn title(&self) -> &'static str {
        "NAG-SC (heavy ball with friction)"
    }
    fn label(&self) -> String {
        "NAG-SC".into()
    }
    fn summary(&self) -> &'static str {
        "Heavy ball with friction W'' + b W' + grad L = 0, twin: NAG with constant momentum"
    }
    fn command_about(&self) -> &'static str {
        "Heavy ball with friction W'' + b W' + grad L = 0 beside NAG with constant momentum"
    }
    // The flow is heavy ball with friction's: its schedule, Lyapunov function, step cap,
    // clock and labels are hbf's own.
    fn damping(&self, p: &ScheduleParams) -> Damping {
        HeavyBallFriction.damping(p)
    }
    fn lyapunov(&self, damping: Damping, mu: f64, alpha: f64) -> Lyapunov {
        HeavyBallFriction.lyapunov(damping, mu, alpha)
    }
    fn step_cap(&self) -> f64 {
        HeavyBallFriction.step_cap()
    }
    fn twin(&self, damping: Damping, eta: f64) -> Twin {
        Twin::nesterov_constant(1.0 - friction(damping) * eta.sqrt())
    }
    fn twin_key(&self) -> (&'static str, Option<&'static str>) {
        ("nesterov_constant", Some("beta"))
    }
    fn start_twin(&self, w0: &DMatrix<f64>, beta: Option<f64>) -> Box<dyn TwinStep> {
        Box::new(Nesterov::constant(w0, beta.unwrap_or(f64::NAN)))
    }
    fn mode_recurrence(&self, beta: Option<f64>) -> Recurrence {
        Recurrence::NesterovConstant(beta.unwrap_or(f64::NAN))
    }
    // A purple, apart from the blue, vermillion, green, grey and pink of the other series.
    fn rgb(&self) -> [u8; 3] {
        [117, 112, 179]
    }
    fn clock(&self, eta: f64) -> f64 {
        HeavyBallFriction.clock(eta)
    }
    fn clock_text(&self) -> &'static str {
        HeavyBallFriction.clock_text()
    }
    fn twin_name(&self) -> &'static str {
        "NAG-SC"
    }
    fn bound_label(&self) -> &'static str {
        HeavyBallFriction.bound_label()
    }
    fn lyapunov_label(&self) -> &'static str {
        HeavyBallFriction.lyapunov_label()
    }
    fn schedule_text(&self, damping: Damping, alpha: f64) -> Option<String> {
        HeavyBallFriction.schedule_text(damping, alpha)
    }
    // issue 19: sharpness
    /// NAG-SC on a mode: x_{k+1} = (1 + beta)(1 - eta lambda) x_k - beta (1 - eta lambda)
    /// x_{k-1}; for eta lambda > 1 the root at -1 is reached at (1 + 2 beta)(eta lambda - 1)
    /// = 1, so the edge is eta lambda = 2(1 + beta)/(1 + 2 beta).
    fn stability_edge(&self, beta: Option<f64>, eta: f64) -> Option<super::StabilityEdge> {
        let beta = beta?;
        Some(super::StabilityEdge {
            value: 2.0 * (1.0 + beta) / ((1.0 + 2.0 * beta) * eta),
            formula: "2(1+β)/((1+2β)η)",
        })
    }
}

impl Twin {
    /// NAG with constant momentum beta.
    pub fn nesterov_constant(beta: f64) -> Twin {
        Twin::new(Optimizer::Nagsc, Some(beta))
    }
}
