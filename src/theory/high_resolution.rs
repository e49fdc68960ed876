//! The low- and high-resolution ODEs of the twins in error space with a fixed kernel H, one
//! eigen-mode at a time, and the gap between a twin and its ODE.
//!
//! Notation: h is the twin's clock step (eta for GD, s = sqrt(eta) otherwise), c = 1 - b s/2.
//! Every mode x of Delta = V diag(x) V^T Delta_0 solves, with lambda its eigenvalue:
//! ```text
//!        low resolution                          high resolution
//! gf   : x' = -lambda x                          x' = -(lambda + (eta/2) lambda^2) x      (IGR)
//! hbf  : x'' + b x' + lambda x = 0               c x'' + b x' + lambda x = 0
//! nagsc: x'' + b x' + lambda x = 0               c x'' + (b + s lambda) x' + lambda x = 0
//!        x(0) = 1, x'(0) = 0                     x(0) = 1, x'(0) = -(s/2) lambda
//! nag  : x'' + (gamma/t) x' + lambda x = 0       x'' + (gamma/tau + s lambda) x'
//!                                                    + (1 + gamma s/(2 tau)) lambda x = 0
//!        x(0) = 1, x'(0) = 0  (Bessel)           tau_1 = gamma s/2, x(tau_1) = 1 - eta lambda,
//!                                                x'(tau_1) = -s lambda x(tau_1)
//! ```
//! hbf and nagsc at high resolution are damped oscillators x'' + B x' + K x = 0 with
//! B = b/c or (b + s lambda)/c and K = lambda/c per mode, solved exactly in all three regimes;
//! high-resolution nag has no closed form and is integrated per mode by classical RK4 with a
//! step far below the clock step (its error, O(step^4), stays below the O(h^2) gap it is held
//! against). The twin's iterate k sits at t_k = k h, and the high-resolution nag's at
//! tau_k = (k + gamma/2 - 1) s, from k = 1.
//!
//! The gap of a twin to an ODE: gap_delta = max_k |Delta_k - Delta(t_k)|/|Delta_0|,
//! gap_loss = max_k |L_k - L(t_k)|/L_0; expected O(h) at low and O(h^2) at high resolution.
//!
//! References:
//! 1. B. Shi, S. S. Du, M. I. Jordan, W. J. Su, "Understanding the acceleration phenomenon via
//!    high-resolution differential equations", Math. Programming 2021 (arXiv:1810.08907).
//! 2. D. Barrett, B. Dherin, "Implicit gradient regularization", ICLR 2021 (arXiv:2009.11162).

use nalgebra::{DMatrix, DVector};

use crate::dynamics::Damping;
use crate::optimizer::{Optimizer, Twin};
use crate::theory::discrete_modes::DiscreteModes;
use crate::theory::exact;

/// Which ODE stands for the twin: the leading-order one or its first correction in h.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    #[default]
    Low,
    High,
}

impl Resolution {
    pub fn name(self) -> &'static str {
        match self {
            Resolution::Low => "low",
            Resolution::High => "high",
        }
    }

    /// The resolution [`Resolution::name`] names.
    pub fn from_name(name: &str) -> Option<Resolution> {
        [Resolution::Low, Resolution::High]
            .into_iter()
            .find(|r| r.name() == name)
    }
}

/// One twin and the parameters of its ODEs: the optimizer, eta, the friction b (hbf, nagsc)
/// or gamma (nag).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    pub optimizer: Optimizer,
    pub eta: f64,
    pub damping: Damping,
}

impl Setting {
    /// s = sqrt(eta).
    fn s(&self) -> f64 {
        self.eta.sqrt()
    }

    /// The twin's clock step h: eta for GD, sqrt(eta) for the momentum methods.
    pub fn h(&self) -> f64 {
        self.optimizer.method().clock(self.eta)
    }

    /// The discrete twin of this setting.
    pub fn twin(&self) -> Twin {
        self.optimizer.method().twin(self.damping, self.eta)
    }

    /// Flow time of iterate k at `resolution` (high-resolution nag: tau_k = (k + gamma/2 - 1) s).
    pub fn time(&self, k: usize, resolution: Resolution) -> f64 {
        match (self.damping, resolution) {
            (Damping::Vanishing(gamma), Resolution::High) => {
                // With gamma whole (the default 3), (2k + gamma - 2)(s/2) as a decimal product
                // rounded once, as the other clocks are: tau_1 = 0.15 at s = 0.1, where the
                // binary product gives 0.15000000000000002.
                let twice = 2.0 * k as f64 + gamma - 2.0;
                if gamma.fract() == 0.0 && (0.0..9.0e15).contains(&twice) {
                    crate::io::decimal_multiple(twice as usize, self.s() / 2.0)
                } else {
                    (k as f64 + gamma / 2.0 - 1.0) * self.s()
                }
            }
            _ => k as f64 * self.h(),
        }
    }

    /// The first iterate an ODE row is compared at (1 for high-resolution nag, which starts at
    /// tau_1; 0 otherwise).
    pub fn first(&self, resolution: Resolution) -> usize {
        match (self.damping, resolution) {
            (Damping::Vanishing(_), Resolution::High) => 1,
            _ => 0,
        }
    }

    /// The mode with eigenvalue `lambda` of the ODE at `resolution`, from x = 1 at t = 0, at
    /// the twin's iterates k = first..=last (see [`Setting::first`]): x at t_k.
    pub fn mode(&self, resolution: Resolution, lambda: f64, last: usize) -> Vec<f64> {
        let first = self.first(resolution);
        let times: Vec<f64> = (first..=last).map(|k| self.time(k, resolution)).collect();
        self.mode_states(resolution, lambda, &times)
            .into_iter()
            .map(|(x, _)| x)
            .collect()
    }

    /// The flow time the ODE at `resolution` starts from: tau_1 = gamma s/2 for
    /// high-resolution nag, 0 otherwise.
    pub fn start_time(&self, resolution: Resolution) -> f64 {
        match (self.damping, resolution) {
            (Damping::Vanishing(gamma), Resolution::High) => gamma * self.s() / 2.0,
            _ => 0.0,
        }
    }

    /// The mode with eigenvalue `lambda` of the ODE at `resolution` (from x = 1 at t = 0 as
    /// the module docs start it), (x, x') at `times` (ascending, from
    /// [`Setting::start_time`]).
    pub fn mode_states(
        &self,
        resolution: Resolution,
        lambda: f64,
        times: &[f64],
    ) -> Vec<(f64, f64)> {
        let lambda = lambda.max(0.0);
        match (resolution, self.damping) {
            (Resolution::High, Damping::Vanishing(gamma)) => {
                nag_high_mode(gamma, self.s(), lambda, times)
            }
            _ => times
                .iter()
                .map(|&t| self.closed_form(resolution, lambda, t))
                .collect(),
        }
    }

    /// (x(t), x'(t)) of a mode whose ODE has a closed form (all but high-resolution nag,
    /// which gives NaN here).
    fn closed_form(&self, resolution: Resolution, lambda: f64, t: f64) -> (f64, f64) {
        let s = self.s();
        match (resolution, self.damping) {
            (Resolution::Low, d) => exact::mode(lambda, d, t),
            (Resolution::High, Damping::None) => {
                let rate = lambda + self.eta / 2.0 * lambda * lambda;
                let x = (-rate * t).exp();
                (x, -rate * x)
            }
            (Resolution::High, Damping::Constant(b)) => {
                let c = 1.0 - b * s / 2.0;
                let big_b = match self.optimizer {
                    Optimizer::Nagsc => (b + s * lambda) / c,
                    _ => b / c,
                };
                oscillator(big_b, lambda / c, 1.0, -s / 2.0 * lambda, t)
            }
            (Resolution::High, Damping::Vanishing(_)) => (f64::NAN, f64::NAN),
        }
    }
}

/// x'' + B x' + K x = 0 from (x0, v0): (x(t), x'(t)), in all three regimes.
pub fn oscillator(b: f64, k: f64, x0: f64, v0: f64, t: f64) -> (f64, f64) {
    let q = k - b * b / 4.0;
    let decay = (-b * t / 2.0).exp();
    // C(t), S(t) with C' = -q S, S' = C, C(0) = 1, S(0) = 0, scaled by e^{-Bt/2}.
    let (ec, es) = if q > 0.0 {
        let w = q.sqrt();
        (decay * (w * t).cos(), decay * (w * t).sin() / w)
    } else if q == 0.0 {
        (decay, decay * t)
    } else {
        let w = (-q).sqrt();
        if w * t < 1.0 {
            (decay * (w * t).cosh(), decay * (w * t).sinh() / w)
        } else {
            let up = ((w - b / 2.0) * t).exp();
            let down = ((-w - b / 2.0) * t).exp();
            ((up + down) / 2.0, (up - down) / (2.0 * w))
        }
    };
    // x = e^{-Bt/2} [x0 (C + B/2 S) + v0 S],  x' = e^{-Bt/2} [-K x0 S + v0 (C - B/2 S)].
    let x = x0 * (ec + b / 2.0 * es) + v0 * es;
    let v = -k * x0 * es + v0 * (ec - b / 2.0 * es);
    (x, v)
}

/// The high-resolution nag mode (x, x') at `times` (ascending, from tau_1 = gamma s/2), by
/// RK4 with at least 64 steps per clock step and at most 1/(4 (gamma/tau_1 + s lambda +
/// sqrt(2 lambda))) per step.
pub fn nag_high_mode(gamma: f64, s: f64, lambda: f64, times: &[f64]) -> Vec<(f64, f64)> {
    let mut state = NagHighMode::start(gamma, s, lambda);
    times.iter().map(|&target| state.advance(target)).collect()
}

/// One high-resolution nag mode on its way: (tau, x, x') from tau_1, advanced by RK4
/// ([`nag_high_mode`]'s steps) to later times.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NagHighMode {
    gamma: f64,
    s: f64,
    lambda: f64,
    dt_max: f64,
    tau: f64,
    x: f64,
    v: f64,
}

impl NagHighMode {
    /// At tau_1 = gamma s/2: x = 1 - eta lambda, x' = -s lambda x.
    pub fn start(gamma: f64, s: f64, lambda: f64) -> NagHighMode {
        let tau1 = gamma * s / 2.0;
        let x1 = 1.0 - s * s * lambda;
        let stiff = gamma / tau1 + s * lambda + (2.0 * lambda).sqrt();
        NagHighMode {
            gamma,
            s,
            lambda,
            dt_max: (s / 64.0).min(0.25 / stiff),
            tau: tau1,
            x: x1,
            v: -s * lambda * x1,
        }
    }

    /// The time the mode has reached.
    pub fn time(&self) -> f64 {
        self.tau
    }

    /// (x, x') at `target` (not before [`NagHighMode::time`]).
    pub fn advance(&mut self, target: f64) -> (f64, f64) {
        let (gamma, s, lambda) = (self.gamma, self.s, self.lambda);
        let rhs = |tau: f64, x: f64, v: f64| {
            let a = -(gamma / tau + s * lambda) * v - (1.0 + gamma * s / (2.0 * tau)) * lambda * x;
            (v, a)
        };
        let (mut tau, mut x, mut v) = (self.tau, self.x, self.v);
        let dt_max = self.dt_max;
        while tau < target - 1e-15 * target.abs() {
            let steps = ((target - tau) / dt_max).ceil().max(1.0);
            let dt = ((target - tau) / steps).min(dt_max);
            let (k1x, k1v) = rhs(tau, x, v);
            let (k2x, k2v) = rhs(tau + dt / 2.0, x + dt / 2.0 * k1x, v + dt / 2.0 * k1v);
            let (k3x, k3v) = rhs(tau + dt / 2.0, x + dt / 2.0 * k2x, v + dt / 2.0 * k2v);
            let (k4x, k4v) = rhs(tau + dt, x + dt * k3x, v + dt * k3v);
            x += dt / 6.0 * (k1x + 2.0 * k2x + 2.0 * k3x + k4x);
            v += dt / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
            tau += dt;
        }
        (self.tau, self.x, self.v) = (tau, x, v);
        (x, v)
    }
}

/// The gap of a twin to one of its ODEs in error space (relative, see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Gap {
    pub resolution: Resolution,
    pub eta: f64,
    pub h: f64,
    pub gap_delta: f64,
    pub gap_loss: f64,
}

/// The gaps of the twin of `setting` to its ODE at `resolution` in error space with kernel H
/// from Delta_0, over the iterates with t_k <= t_end.
pub fn error_space_gap(
    h: &DMatrix<f64>,
    delta0: &DVector<f64>,
    setting: &Setting,
    resolution: Resolution,
    t_end: f64,
) -> Gap {
    let twin = setting.twin();
    let modes = DiscreteModes::new(h, delta0, twin.recurrence(), setting.eta);
    let clock = setting.h();
    let last = (t_end / clock * (1.0 + 1e-12)).floor() as usize;
    let discrete = modes.modal(last);
    let first = setting.first(resolution);
    let mut diff = DMatrix::<f64>::zeros(discrete.nrows(), last + 1 - first);
    let mut ode = diff.clone();
    for (i, &lambda) in modes.spectrum().values.iter().enumerate() {
        let c = modes.coefficients()[i];
        for (j, x) in setting
            .mode(resolution, lambda, last)
            .into_iter()
            .enumerate()
        {
            ode[(i, j)] = c * x;
            diff[(i, j)] = discrete[(i, j + first)] - c * x;
        }
    }
    let norm0 = delta0.norm();
    let loss0 = 0.5 * norm0 * norm0;
    let mut gap_delta: f64 = 0.0;
    let mut gap_loss: f64 = 0.0;
    for j in 0..diff.ncols() {
        gap_delta = gap_delta.max(diff.column(j).norm() / norm0);
        let lk = 0.5 * discrete.column(j + first).norm_squared();
        let lt = 0.5 * ode.column(j).norm_squared();
        gap_loss = gap_loss.max((lk - lt).abs() / loss0);
    }
    Gap {
        resolution,
        eta: setting.eta,
        h: clock,
        gap_delta,
        gap_loss,
    }
}

/// Least-squares slope of ln y against ln x (the fitted order of a gap); NaN with fewer than
/// two finite positive points.
pub fn fitted_order(x: &[f64], y: &[f64]) -> f64 {
    let pts: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0 && a.is_finite() && b.is_finite())
        .map(|(a, b)| (a.ln(), b.ln()))
        .collect();
    if pts.len() < 2 {
        return f64::NAN;
    }
    let k = pts.len() as f64;
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / k;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / k;
    let sxy: f64 = pts.iter().map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = pts.iter().map(|(a, _)| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

/// The whole error-space trajectory of the high-resolution ODE of a setting with a fixed H,
/// mode by mode: Delta(t) = V diag(c_k x_k(t)) with c = V^T Delta_0 and x_k the mode of
/// [`Setting::mode_states`] (closed forms; high-resolution nag advanced by RK4 from tau_1,
/// kept between calls so that ascending times cost one pass).
#[derive(Debug)]
pub struct HighResolutionSolution {
    spectrum: std::sync::Arc<crate::theory::spectrum::Spectrum>,
    coefficients: DVector<f64>,
    setting: Setting,
    /// High-resolution nag: each mode where the last call left it.
    nag: std::cell::RefCell<Vec<NagHighMode>>,
}

impl HighResolutionSolution {
    /// The solution on an eigen-decomposition of H from Delta_0 (at t = 0, or at tau_1 for
    /// nag, which starts from Delta_0 - eta H Delta_0 there).
    pub fn new(
        spectrum: std::sync::Arc<crate::theory::spectrum::Spectrum>,
        delta0: &DVector<f64>,
        setting: Setting,
    ) -> HighResolutionSolution {
        let coefficients = spectrum.vectors.tr_mul(delta0);
        HighResolutionSolution {
            spectrum,
            coefficients,
            setting,
            nag: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// The per-mode (x, x') at t.
    fn modal(&self, t: f64) -> Vec<(f64, f64)> {
        let values = &self.spectrum.values;
        let Damping::Vanishing(gamma) = self.setting.damping else {
            return values
                .iter()
                .map(|&l| self.setting.closed_form(Resolution::High, l.max(0.0), t))
                .collect();
        };
        let mut modes = self.nag.borrow_mut();
        if modes.first().is_none_or(|m| m.time() > t) {
            let s = self.setting.s();
            *modes = values
                .iter()
                .map(|&l| NagHighMode::start(gamma, s, l.max(0.0)))
                .collect();
        }
        modes.iter_mut().map(|m| m.advance(t)).collect()
    }

    /// (Delta(t), Delta'(t)).
    pub fn at(&self, t: f64) -> (DVector<f64>, DVector<f64>) {
        let modal = self.modal(t);
        let x = DVector::from_fn(modal.len(), |k, _| modal[k].0 * self.coefficients[k]);
        let v = DVector::from_fn(modal.len(), |k, _| modal[k].1 * self.coefficients[k]);
        (&self.spectrum.vectors * x, &self.spectrum.vectors * v)
    }

    /// Delta(t) alone.
    pub fn delta_at(&self, t: f64) -> DVector<f64> {
        let modal = self.modal(t);
        let x = DVector::from_fn(modal.len(), |k, _| modal[k].0 * self.coefficients[k]);
        &self.spectrum.vectors * x
    }
}

impl Setting {
    /// The Lyapunov function of the ODE at `resolution`, mu bounding lambda_min of the
    /// space's kernel from below: the optimizer's own at low resolution (`low`), Shi et al.'s
    /// energies at high ([`crate::theory::lyapunov::HighResolutionLyapunov`]); gf keeps
    /// exp(2 mu t) L, whose bound the IGR flow's extra decay eta/2 H^2 only helps.
    pub fn lyapunov(
        &self,
        resolution: Resolution,
        low: crate::theory::lyapunov::Lyapunov,
        mu: f64,
    ) -> crate::theory::lyapunov::Lyapunov {
        use crate::theory::lyapunov::Lyapunov;
        let s = self.s();
        match (resolution, self.damping, self.optimizer) {
            (Resolution::Low, ..) | (_, Damping::None, _) => low,
            (_, Damping::Constant(b), Optimizer::Nagsc) => Lyapunov::NagscHigh { b, s, mu },
            (_, Damping::Constant(b), _) => Lyapunov::HbfHigh { b, s, mu },
            (_, Damping::Vanishing(gamma), _) => Lyapunov::NagHigh { gamma, s, mu },
        }
    }
}
