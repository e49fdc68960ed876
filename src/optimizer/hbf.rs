//! Heavy ball with friction and the heavy-ball method.
//!
//! ```text
//! flow : W'' + b W' + grad L = 0, b = --friction or sqrt(2 lambda0)
//! twin : W_{k+1} = W_k - eta grad L(W_k) + beta (W_k - W_{k-1}),  W_{-1} = W_0,
//!        beta = 1 - b sqrt(eta)                                      t_k = k sqrt(eta)
//! V = Lhat + 1/2 |s Delta + Delta'|^2, s = b/2,  L(t) <= (2/mu) exp(-s t) Lhat(0)
//! ```
//!
//! Step cap c = 0.3: the jump at a crossing is in the acceleration only and the crossings
//! are corrected to third order (tests/weight_space.rs: 1.3e-9 at 0.01 against a Dop853
//! reference).
//!
//! Reference: B. T. Polyak, "Some methods of speeding up the convergence of iteration
//! methods", 1964; J. W. Siegel, arXiv:1903.05671, 2019 (the Lyapunov function).

use nalgebra::DMatrix;

use super::{Method, Optimizer, ScheduleParams, Twin, TwinStep};
use crate::dynamics::Damping;
use crate::model::relu2::engine::Workspace;
use crate::model::Model;
use crate::theory::discrete_modes::Recurrence;
use crate::theory::lyapunov::Lyapunov;

/// Heavy ball with friction, twin the heavy-ball method.
pub struct HeavyBallFriction;

impl Method for HeavyBallFriction {
    fn name(&self) -> &'static str {
        "hbf"
    }
    fn title(&self) -> &'static str {
        "Heavy ball with friction"
    }
    fn summary(&self) -> &'static str {
        "Heavy ball with friction W'' + b W' + grad L = 0, twin: heavy ball"
    }
    fn command_about(&self) -> &'static str {
        "Heavy ball with friction W'' + b W' + grad L = 0 beside the heavy-ball method"
    }
    fn damping(&self, p: &ScheduleParams) -> Damping {
        Damping::Constant(p.friction.unwrap_or((2.0 * p.lambda0).sqrt()))
    }
    fn lyapunov(&self, damping: Damping, mu: f64, _alpha: f64) -> Lyapunov {
        Lyapunov::Hbf {
            s: friction(damping) / 2.0,
            mu,
        }
    }
    fn step_cap(&self) -> f64 {
        0.3
    }
    fn twin(&self, damping: Damping, eta: f64) -> Twin {
        Twin::heavy_ball(1.0 - friction(damping) * eta.sqrt())
    }
    fn twin_key(&self) -> (&'static str, Option<&'static str>) {
        ("heavy_ball", Some("beta"))
    }
    fn start_twin(&self, w0: &DMatrix<f64>, beta: Option<f64>) -> Box<dyn TwinStep> {
        Box::new(HeavyBall::new(w0, beta.unwrap_or(f64::NAN)))
    }
    fn mode_recurrence(&self, beta: Option<f64>) -> Recurrence {
        Recurrence::HeavyBall(beta.unwrap_or(f64::NAN))
    }
    fn rgb(&self) -> [u8; 3] {
        [213, 94, 0]
    }
    fn clock(&self, eta: f64) -> f64 {
        eta.sqrt()
    }
    fn clock_text(&self) -> &'static str {
        "t = k sqrt(eta)"
    }
    fn twin_name(&self) -> &'static str {
        "heavy ball"
    }
    fn bound_label(&self) -> &'static str {
        "bound (2/μ) e^(−bt/2) L̂(0)"
    }
    fn lyapunov_label(&self) -> &'static str {
        "V(t) (Siegel 2019)"
    }
    fn schedule_text(&self, damping: Damping, _alpha: f64) -> Option<String> {
        Some(format!("friction b = {:.4e}", friction(damping)))
    }
    // issue 19: sharpness
    /// Heavy ball on a mode: r^2 - (1 + beta - eta lambda) r + beta = 0, both roots inside the
    /// unit circle while |1 + beta - eta lambda| < 1 + beta, i.e. eta lambda < 2(1 + beta)
    /// (Polyak 1964; Goh 2017).
    fn stability_edge(&self, beta: Option<f64>, eta: f64) -> Option<super::StabilityEdge> {
        let beta = beta?;
        Some(super::StabilityEdge {
            value: 2.0 * (1.0 + beta) / eta,
            formula: "2(1+β)/η",
        })
    }
}

/// b of c(t) = b (NaN for another schedule, which this optimizer never makes).
pub(super) fn friction(damping: Damping) -> f64 {
    match damping {
        Damping::Constant(b) => b,
        _ => f64::NAN,
    }
}

impl Twin {
    /// The heavy-ball method with momentum beta.
    pub fn heavy_ball(beta: f64) -> Twin {
        Twin::new(Optimizer::Hbf, Some(beta))
    }
}

/// The heavy-ball method: W_{k+1} = W_k - eta grad L(W_k) + beta (W_k - W_{k-1}).
pub(crate) struct HeavyBall {
    x: DMatrix<f64>,
    prev: DMatrix<f64>,
    beta: f64,
}

impl HeavyBall {
    pub(crate) fn new(w0: &DMatrix<f64>, beta: f64) -> Self {
        HeavyBall {
            x: w0.clone(),
            prev: w0.clone(),
            beta,
        }
    }
}

impl TwinStep for HeavyBall {
    fn loss(&mut self, model: &Model, g: &mut DMatrix<f64>, ws: &mut Workspace) -> f64 {
        0.5 * model
            .gradient_into(&self.x.as_view(), &mut g.as_view_mut(), ws)
            .norm_squared()
    }
    fn iterate(&self) -> &DMatrix<f64> {
        &self.x
    }
    fn step(&mut self, _k: usize, eta: f64, _: &Model, g: &mut DMatrix<f64>, _: &mut Workspace) {
        let next = &self.x - &*g * eta + (&self.x - &self.prev) * self.beta;
        self.prev = std::mem::replace(&mut self.x, next);
    }
}
