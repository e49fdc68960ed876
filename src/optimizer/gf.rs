//! Gradient flow and gradient descent.
//!
//! ```text
//! flow : W' = -grad L = -J^T Delta           error space: Delta' = -H Delta
//! twin : W_{k+1} = W_k - eta grad L(W_k)     t_k = k eta
//! E(t) = exp(2 mu t) L(t),  L(t) <= exp(-2 mu t) L(0)
//! ```
//!
//! Step cap c = 0.1: the velocity of gradient flow jumps at an activation crossing, and
//! activations slide along their surfaces (held there with Filippov's velocity by the
//! output-space steps, whose switching error is still about first order in the cap), so the
//! held-pattern step must stay short.

use nalgebra::DMatrix;

use super::{Method, Optimizer, ScheduleParams, Twin, TwinStep};
use crate::dynamics::Damping;
use crate::model::relu2::engine::Workspace;
use crate::model::Model;
use crate::theory::discrete_modes::Recurrence;
use crate::theory::lyapunov::Lyapunov;

/// Gradient flow, twin gradient descent.
pub struct GradientFlow;

impl Method for GradientFlow {
    fn name(&self) -> &'static str {
        "gf"
    }
    fn title(&self) -> &'static str {
        "Gradient flow"
    }
    fn summary(&self) -> &'static str {
        "Gradient flow W' = -grad L, twin: gradient descent"
    }
    fn command_about(&self) -> &'static str {
        "Gradient flow W' = -grad L (error space Delta' = -H Delta) beside gradient descent"
    }
    fn damping(&self, _: &ScheduleParams) -> Damping {
        Damping::None
    }
    fn lyapunov(&self, _: Damping, mu: f64, _alpha: f64) -> Lyapunov {
        Lyapunov::Gf { mu }
    }
    fn step_cap(&self) -> f64 {
        0.1
    }
    fn twin(&self, _: Damping, _eta: f64) -> Twin {
        Twin::gd()
    }
    fn twin_key(&self) -> (&'static str, Option<&'static str>) {
        ("gd", None)
    }
    fn start_twin(&self, w0: &DMatrix<f64>, _: Option<f64>) -> Box<dyn TwinStep> {
        Box::new(GradientDescent::new(w0))
    }
    fn mode_recurrence(&self, _: Option<f64>) -> Recurrence {
        Recurrence::Gd
    }
    fn rgb(&self) -> [u8; 3] {
        [0, 114, 178]
    }
    fn clock(&self, eta: f64) -> f64 {
        eta
    }
    fn clock_text(&self) -> &'static str {
        "t = k eta"
    }
    fn twin_name(&self) -> &'static str {
        "GD"
    }
    fn bound_label(&self) -> &'static str {
        "bound e^(−2μt) L(0)"
    }
    fn lyapunov_label(&self) -> &'static str {
        "E(t) = e^(2μt) L(t)"
    }
    fn schedule_text(&self, _: Damping, _alpha: f64) -> Option<String> {
        None
    }
    // issue 19: sharpness
    /// GD multiplies a mode by 1 - eta lambda: stable while eta lambda < 2.
    fn stability_edge(&self, _: Option<f64>, eta: f64) -> Option<super::StabilityEdge> {
        Some(super::StabilityEdge {
            value: 2.0 / eta,
            formula: "2/η",
        })
    }
}

impl Twin {
    /// Gradient descent.
    pub fn gd() -> Twin {
        Twin::new(Optimizer::Gf, None)
    }
}

/// Gradient descent: W_{k+1} = W_k - eta grad L(W_k).
pub(crate) struct GradientDescent {
    x: DMatrix<f64>,
}

impl GradientDescent {
    pub(crate) fn new(w0: &DMatrix<f64>) -> Self {
        GradientDescent { x: w0.clone() }
    }
}

impl TwinStep for GradientDescent {
    fn loss(&mut self, model: &Model, g: &mut DMatrix<f64>, ws: &mut Workspace) -> f64 {
        // L = 1/2 |Delta|^2, and the gradient comes with it for the step.
        0.5 * model
            .gradient_into(&self.x.as_view(), &mut g.as_view_mut(), ws)
            .norm_squared()
    }
    fn iterate(&self) -> &DMatrix<f64> {
        &self.x
    }
    fn step(&mut self, _k: usize, eta: f64, _: &Model, g: &mut DMatrix<f64>, _: &mut Workspace) {
        self.x -= &*g * eta;
    }
}
