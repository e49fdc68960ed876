//! The discrete twins of the flows, on the time scale of their ODE: the loop that runs one;
//! each optimizer's file holds its step.
//!
//! ```text
//! GD        : W_{k+1} = W_k - eta grad L(W_k)                                 t_k = k eta
//! heavy ball: W_{k+1} = W_k - eta grad L(W_k) + beta (W_k - W_{k-1}),  W_{-1} = W_0,
//!             beta = 1 - b sqrt(eta)                                           t_k = k sqrt(eta)
//! NAG       : x_k = y_{k-1} - eta grad L(y_{k-1}),
//!             y_k = x_k + (k-1)/(k+gamma-1) (x_k - x_{k-1}),  x_0 = y_0 = W_0   t_k = k sqrt(eta)
//! ```
//! Row k is the loss at iterate k (at x_k for NAG), i.e. before step k+1.
//!
//! References:
//! 1. B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
//! 2. W. Su, S. Boyd, E. Candes, "A differential equation for modeling Nesterov's accelerated
//!    gradient method", NeurIPS 2014 (the NAG form and its clock).

use nalgebra::DMatrix;

use super::{gf, hbf, nag, Optimizer, TwinStep};
use crate::model::relu2::engine::Workspace;
use crate::model::Model;

/// A discrete optimizer (summary.json's `discrete.method`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Twin {
    Gd,
    HeavyBall { beta: f64 },
    Nesterov { gamma: f64 },
    NesterovConstant { beta: f64 },
}

impl Twin {
    /// The optimizer whose twin this is.
    pub fn optimizer(&self) -> Optimizer {
        match self {
            Twin::Gd => Optimizer::Gf,
            Twin::HeavyBall { .. } => Optimizer::Hbf,
            Twin::Nesterov { .. } => Optimizer::Nag,
            Twin::NesterovConstant { .. } => Optimizer::Nagsc,
        }
    }

    /// The iterate and its step, from W0.
    fn start(&self, w0: &DMatrix<f64>) -> Box<dyn TwinStep> {
        match *self {
            Twin::Gd => Box::new(gf::GradientDescent::new(w0)),
            Twin::HeavyBall { beta } => Box::new(hbf::HeavyBall::new(w0, beta)),
            Twin::Nesterov { gamma } => Box::new(nag::Nesterov::new(w0, gamma)),
            Twin::NesterovConstant { beta } => Box::new(nag::Nesterov::constant(w0, beta)),
        }
    }

    /// Time of iterate k: k eta for GD, k sqrt(eta) for the momentum methods, as the decimal
    /// product k h rounded once ([`crate::io::decimal_multiple`]: 499 x 0.1 is 49.9).
    pub fn time(&self, k: usize, eta: f64) -> f64 {
        crate::io::decimal_multiple(k, self.optimizer().method().clock(eta))
    }

    /// GD, heavy ball, NAG-SC, NAG.
    pub fn name(&self) -> &'static str {
        self.optimizer().method().twin_name()
    }
}

/// One row of discrete.csv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Iterate {
    pub k: usize,
    pub t: f64,
    pub loss: f64,
}

/// The iterates of a discrete run up to t_end, and where it diverged if it did.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteRun {
    pub twin: Twin,
    pub eta: f64,
    pub iterates: Vec<Iterate>,
    /// Time of the first iterate whose loss was not finite; the run stopped there.
    pub diverged_at: Option<f64>,
    /// Largest |W_k - W0|_F over the iterates (x_k for NAG).
    pub max_distance: f64,
}

/// Run `twin` with step `eta` from W0 for every iterate with t_k <= t_end.
pub fn run(model: &Model, w0: &DMatrix<f64>, twin: Twin, eta: f64, t_end: f64) -> DiscreteRun {
    run_observed(model, w0, twin, eta, t_end, &mut |_| {})
}

/// [`run`], calling `at(t_k)` after each iterate (a progress display).
pub fn run_observed(
    model: &Model,
    w0: &DMatrix<f64>,
    twin: Twin,
    eta: f64,
    t_end: f64,
    at: &mut dyn FnMut(f64),
) -> DiscreteRun {
    run_watching(model, w0, twin, eta, t_end, &mut |t, _| at(t))
}

/// [`run_observed`], passing each iterate W_k (x_k for NAG) with its time (held-out points
/// measure the twin on them).
pub fn run_watching(
    model: &Model,
    w0: &DMatrix<f64>,
    twin: Twin,
    eta: f64,
    t_end: f64,
    at: &mut dyn FnMut(f64, &DMatrix<f64>),
) -> DiscreteRun {
    let (m, d) = (model.m(), model.d());
    let mut ws = Workspace::new(m, model.n(), d);
    let mut g = DMatrix::zeros(m, d);
    let mut state = twin.start(w0);
    let mut iterates = Vec::new();
    let mut diverged_at = None;
    let mut max_distance: f64 = 0.0;
    let last = (t_end / twin.time(1, eta) * (1.0 + 1e-12)).floor() as usize;
    for k in 0..=last {
        let t = twin.time(k, eta);
        let loss = state.loss(model, &mut g, &mut ws);
        let x = state.iterate();
        if !loss.is_finite() || x.iter().any(|v| !v.is_finite()) {
            diverged_at = Some(t);
            break;
        }
        iterates.push(Iterate { k, t, loss });
        at(t, x);
        max_distance = max_distance.max((x - w0).norm());
        if k == last {
            break;
        }
        state.step(k, eta, model, &mut g, &mut ws);
    }
    DiscreteRun {
        twin,
        eta,
        iterates,
        diverged_at,
        max_distance,
    }
}
