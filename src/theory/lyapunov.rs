//! Lyapunov functions of the convergence proofs and the loss bounds they imply.
//!
//! They see only (t, Delta, Delta', Lhat), so they serve weight and error space unchanged.
//! `mu` is a lower bound on lambda_min of the space's kernel along the run: lambda_min of the
//! fixed H in error space, lambda0/2 in weight space (Du et al.: lambda_min(H(t)) >= lambda0/2
//! along the flow at large width).
//!
//! ```text
//! gf : E(t) = exp(2 mu t) L(t)                          L(t) <= exp(-2 mu t) L(0)
//!      (weight space: exp(lambda0 t) L(t), SPEC.md; d/dt L = -Delta^T H Delta <= -2 mu L)
//! hbf: V = Lhat + 1/2 |s Delta + Delta'|^2, s = b/2     L(t) <= (2/mu) exp(-s t) Lhat(0)
//!      (default b = sqrt(2 lambda0): s = sqrt(lambda0/2), bound (4/lambda0) exp(-sqrt(lambda0/2) t) Lhat(0);
//!       Siegel's theorem needs s^2 <= mu)
//! nag: V(t; alpha, gamma) = t^alpha Lhat + 1/2 t^(alpha-2) |c Delta + t Delta'|^2, c = (2 gamma - alpha)/2
//!      dV/dt = -2(gamma - alpha) t^(alpha-1) Lhat + (alpha-2) c/2 t^(alpha-3) Delta.(c Delta + t Delta')
//!      alpha = 2: V(0) = (gamma-1)^2 L(0),  L(t) <= (gamma-1)^2 L(0) / (mu t^2)
//! ```
//!
//! References:
//! 1. S. S. Du et al., "Gradient descent provably optimizes over-parameterized neural networks", 2019.
//! 2. J. W. Siegel, "Accelerated first-order methods: differential equations and Lyapunov
//!    functions", arXiv:1903.05671, 2019.
//! 3. W. Su, S. Boyd, E. Candes, "A differential equation for modeling Nesterov's accelerated
//!    gradient method", NeurIPS 2014.
//! 4. Z. Bu, S. Xu, K. Chen, "A dynamical view on optimization algorithms of overparameterized
//!    neural networks", AISTATS 2021.

use nalgebra::DVector;

/// The Lyapunov function of one optimizer, with its parameters (each optimizer's file under
/// `optimizer/` says which one it takes).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Lyapunov {
    Gf { mu: f64 },
    Hbf { s: f64, mu: f64 },
    Nag { gamma: f64, alpha: f64, mu: f64 },
}

impl Lyapunov {
    /// V at time t from Delta, Delta' and Lhat.
    pub fn value(
        &self,
        t: f64,
        delta: &DVector<f64>,
        delta_dot: &DVector<f64>,
        pseudo_loss: f64,
    ) -> f64 {
        match *self {
            Lyapunov::Gf { mu } => (2.0 * mu * t).exp() * 0.5 * delta.norm_squared(),
            Lyapunov::Hbf { s, .. } => pseudo_loss + 0.5 * (delta * s + delta_dot).norm_squared(),
            Lyapunov::Nag { gamma, alpha, .. } => {
                let c = (2.0 * gamma - alpha) / 2.0;
                let kinetic = 0.5 * (delta * c + delta_dot * t).norm_squared();
                if t == 0.0 {
                    // t^(alpha-2) at t = 0: 1 for alpha = 2, 0 above.
                    if alpha == 2.0 {
                        kinetic
                    } else {
                        0.0
                    }
                } else {
                    t.powf(alpha) * pseudo_loss + t.powf(alpha - 2.0) * kinetic
                }
            }
        }
    }

    /// The loss bound of the theorem at time t, from L(0) and Lhat(0); +inf where it says nothing.
    pub fn loss_bound(&self, t: f64, loss0: f64, pseudo_loss0: f64) -> f64 {
        match *self {
            Lyapunov::Gf { mu } => (-2.0 * mu * t).exp() * loss0,
            Lyapunov::Hbf { s, mu } => 2.0 / mu * (-s * t).exp() * pseudo_loss0,
            Lyapunov::Nag { gamma, mu, .. } => {
                if t == 0.0 {
                    f64::INFINITY
                } else {
                    (gamma - 1.0).powi(2) * loss0 / (mu * t * t)
                }
            }
        }
    }

    /// The theorem's decay envelope of V: V(t) <= envelope(t) V(0) (exp(-s t) for HBF); None
    /// where the theorem states monotonicity only.
    pub fn envelope(&self, t: f64) -> Option<f64> {
        match *self {
            Lyapunov::Hbf { s, .. } => Some((-s * t).exp()),
            _ => None,
        }
    }
}

/// Monotonicity of a sampled Lyapunov function.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Monotonicity {
    /// Whether V never rose by more than `tolerance` (relative) between samples.
    pub nonincreasing: bool,
    /// Largest relative rise (V_{k+1} - V_k)/|V_k| between consecutive samples (0 if none).
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub max_relative_rise: f64,
    /// The first sample time after which V never rises again (0 when it never rose).
    pub nonincreasing_after: f64,
    pub tolerance: f64,
}

/// Rises smaller than this (relative) are rounding and integration error, not a rise.
pub const RISE_TOLERANCE: f64 = 1e-6;

/// Check a sampled V for monotonicity.
pub fn monotonicity(t: &[f64], v: &[f64]) -> Monotonicity {
    let mut max_rise: f64 = 0.0;
    let t0 = t.first().copied().unwrap_or(0.0);
    let mut after = t0;
    for k in 1..v.len() {
        // A rise from exactly zero (NAG with alpha > 2 starts at V(0) = 0) has no finite
        // relative size: it moves `after` but not the largest relative rise.
        let rose = if v[k - 1] == 0.0 {
            v[k] > 0.0
        } else {
            let rise = (v[k] - v[k - 1]) / v[k - 1].abs();
            max_rise = max_rise.max(rise);
            rise > RISE_TOLERANCE
        };
        if rose {
            after = t[k];
        }
    }
    Monotonicity {
        nonincreasing: after == t0,
        max_relative_rise: max_rise,
        nonincreasing_after: after,
        tolerance: RISE_TOLERANCE,
    }
}
