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
//! At `--resolution high` the hbf, nagsc and nag variants `*_high` are Shi et al.'s energies
//! ([`HighResolutionLyapunov`], below), their loss bounds from E(0) (or E(tau_1) for nag) and
//! L <= Lhat/mu ([`Lyapunov::loss_bound_from`]).
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
    Gf {
        mu: f64,
    },
    Hbf {
        s: f64,
        mu: f64,
    },
    Nag {
        gamma: f64,
        alpha: f64,
        mu: f64,
    },
    // issue 19: resolution
    /// The high-resolution energies ([`HighResolutionLyapunov`]), mu bounding lambda_min of
    /// the space's kernel from below (for the loss bound L <= Lhat/mu).
    #[serde(rename = "hbf_high")]
    HbfHigh {
        b: f64,
        s: f64,
        mu: f64,
    },
    #[serde(rename = "nagsc_high")]
    NagscHigh {
        b: f64,
        s: f64,
        mu: f64,
    },
    #[serde(rename = "nag_high")]
    NagHigh {
        gamma: f64,
        s: f64,
        mu: f64,
    },
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
            Lyapunov::HbfHigh { .. } | Lyapunov::NagscHigh { .. } | Lyapunov::NagHigh { .. } => {
                f64::NAN
            }
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
        self.loss_bound_from(t, loss0, pseudo_loss0, f64::NAN)
    }

    /// [`Lyapunov::loss_bound`], with V at the first sample `v0` (the high-resolution
    /// bounds start from E(0), or E(tau_1) for nag):
    /// ```text
    /// hbf, nagsc high: L <= Lhat/mu <= c E(t)/mu <= c exp(-sqrt(mu_b) t/4) E(0)/mu
    /// nag high       : L <= E(tau_1) / (mu tau (tau + (gamma-2) s/2))      (gamma >= 2)
    /// ```
    pub fn loss_bound_from(&self, t: f64, loss0: f64, pseudo_loss0: f64, v0: f64) -> f64 {
        match *self {
            Lyapunov::HbfHigh { b, s, mu } | Lyapunov::NagscHigh { b, s, mu } => {
                if self
                    .bound_condition()
                    .is_some_and(|c| !c.mu_b_le_lambda_min)
                {
                    // The energy's decay needs mu_b <= lambda_min: the bound says nothing.
                    return f64::INFINITY;
                }
                let c = 1.0 - b * s / 2.0;
                let e = HighResolutionLyapunov::Hbf { b, s }.bound(t, v0);
                c * e / mu
            }
            Lyapunov::NagHigh { gamma, s, mu } => {
                let e = HighResolutionLyapunov::Nag { gamma, s }.bound(t, v0);
                let weight = t * (t + (gamma - 2.0) * s / 2.0);
                if weight > 0.0 {
                    e / (mu * weight)
                } else {
                    f64::INFINITY
                }
            }
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
            Lyapunov::HbfHigh { b, s, .. } | Lyapunov::NagscHigh { b, s, .. } => self
                .bound_condition()
                .filter(|c| c.mu_b_le_lambda_min)
                .map(|_| HighResolutionLyapunov::Hbf { b, s }.bound(t, 1.0)),
            _ => None,
        }
    }
}

// issue 19: resolution
impl Lyapunov {
    /// The high-resolution energy of a high variant (None at low resolution).
    pub fn high(&self) -> Option<HighResolutionLyapunov> {
        match *self {
            Lyapunov::HbfHigh { b, s, .. } => Some(HighResolutionLyapunov::Hbf { b, s }),
            Lyapunov::NagscHigh { b, s, .. } => Some(HighResolutionLyapunov::Nagsc { b, s }),
            Lyapunov::NagHigh { gamma, s, .. } => Some(HighResolutionLyapunov::Nag { gamma, s }),
            _ => None,
        }
    }

    /// The assumption mu_b = (b/(2 - b s))^2 <= lambda_min of Shi et al.'s decay of the hbf
    /// and nagsc energies, checked against the run's lower bound mu on lambda_min (None for
    /// the other functions). Where it fails, [`Lyapunov::loss_bound_from`] is +inf (the
    /// bound does not apply), and the run warns.
    pub fn bound_condition(&self) -> Option<BoundCondition> {
        match *self {
            Lyapunov::HbfHigh { b, s, mu } | Lyapunov::NagscHigh { b, s, mu } => {
                let mu_b = HighResolutionLyapunov::mu_b(b, s);
                Some(BoundCondition {
                    mu_b,
                    mu,
                    // Relative slack, as for Siegel's condition at low resolution.
                    mu_b_le_lambda_min: mu_b <= mu * (1.0 + 1e-12),
                })
            }
            _ => None,
        }
    }

    /// The y label of lyapunov.svg for the high-resolution energies (None: the optimizer's
    /// own, [`crate::optimizer::Method::lyapunov_label`]).
    pub fn high_label(&self) -> Option<&'static str> {
        match *self {
            Lyapunov::HbfHigh { .. } => Some("E(t), high-resolution hbf energy (Shi et al.)"),
            Lyapunov::NagscHigh { .. } => Some("E(t), high-resolution NAG-SC energy (Shi et al.)"),
            Lyapunov::NagHigh { .. } => Some("E(τ), high-resolution NAG energy (Shi et al.)"),
            _ => None,
        }
    }

    /// V at time t with H Delta at hand (the high-resolution energies need it; the others
    /// are [`Lyapunov::value`]).
    pub fn value_with(
        &self,
        t: f64,
        delta: &DVector<f64>,
        delta_dot: &DVector<f64>,
        pseudo_loss: f64,
        h_delta: Option<&DVector<f64>>,
    ) -> f64 {
        match (self.high(), h_delta) {
            (Some(e), Some(hd)) => e.value(t, delta, delta_dot, hd),
            _ => self.value(t, delta, delta_dot, pseudo_loss),
        }
    }
}

/// Whether the decay of the hbf and nagsc high-resolution energies applies: it assumes
/// mu_b <= lambda_min, checked against mu, the run's lower bound on lambda_min (lambda0/2 in
/// weight space, lambda_min of the fixed H in error space).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BoundCondition {
    pub mu_b: f64,
    pub mu: f64,
    pub mu_b_le_lambda_min: bool,
}

/// Monotonicity of a sampled Lyapunov function.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Monotonicity {
    /// Whether V never rose by more than `tolerance` (relative) between samples, counting
    /// only rises above what the solver's tolerances resolve.
    pub nonincreasing: bool,
    /// Largest relative rise (V_{k+1} - V_k)/|V_k| between consecutive samples (0 if none),
    /// over the rises the tolerances resolve.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub max_relative_rise: f64,
    /// The first sample time after which V never rises again (0 when it never rose).
    pub nonincreasing_after: f64,
    pub tolerance: f64,
    /// Rises no larger than the tolerance floor of V at their samples ([`lyapunov_floor`]):
    /// integration error at the level of atol, not a rise of the function.
    #[serde(default)]
    pub rises_below_floor: usize,
}

/// Rises smaller than this (relative) are rounding and integration error, not a rise.
pub const RISE_TOLERANCE: f64 = 1e-6;

/// The part of V the absolute tolerance does not resolve at a sample: V is homogeneous of
/// degree 2 in (Delta, Delta'), so a state whose residual has the size `resolution` (the norm
/// of an error of atol in every component) has V (resolution / |Delta|)^2. +inf when Delta = 0.
///
/// ```text
/// floor(t) = V(t) (e / |Delta(t)|)^2,   e = atol sqrt(components)
/// ```
pub fn lyapunov_floor(v: f64, delta_norm: f64, resolution: f64) -> f64 {
    if delta_norm > 0.0 {
        v.abs() * (resolution / delta_norm).powi(2)
    } else {
        f64::INFINITY
    }
}

/// Check a sampled V for monotonicity (every rise resolved: a floor of zero).
pub fn monotonicity(t: &[f64], v: &[f64]) -> Monotonicity {
    monotonicity_above(t, v, &[])
}

/// Check a sampled V for monotonicity, disregarding rises no larger than the larger of the
/// tolerance floors `floor` of their two samples ([`lyapunov_floor`]; missing entries are 0).
pub fn monotonicity_above(t: &[f64], v: &[f64], floor: &[f64]) -> Monotonicity {
    let floor_at = |k: usize| floor.get(k).copied().unwrap_or(0.0);
    let mut max_rise: f64 = 0.0;
    let mut below_floor = 0;
    let t0 = t.first().copied().unwrap_or(0.0);
    let mut after = t0;
    for k in 1..v.len() {
        if v[k] > v[k - 1] && v[k] - v[k - 1] <= floor_at(k - 1).max(floor_at(k)) {
            below_floor += 1;
            continue;
        }
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
        rises_below_floor: below_floor,
    }
}

/// What the absolute tolerance resolves of a space's loss.
///
/// ```text
/// L_floor = 1/2 e^2,  e = atol sqrt(components)   (a residual of atol in every component)
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ToleranceFloor {
    /// The norm e of a residual error the absolute tolerance allows.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub residual_floor: f64,
    /// 1/2 e^2: below it the loss is integration error, not a value.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub loss_floor: f64,
    /// Whether the final loss is at or below `loss_floor`.
    pub loss_reached_floor: bool,
    /// Error space by ODE: samples where |Delta_exact| <= e, left out of
    /// exact_max_relative_error (their relative deviation measures noise against ~0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_samples_below_floor: Option<usize>,
    /// The largest |Delta_ode - Delta_exact| at those samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_max_abs_error_below_floor: Option<f64>,
}

impl ToleranceFloor {
    /// From the residual resolution e and the final loss.
    pub fn new(residual_floor: f64, final_loss: f64) -> ToleranceFloor {
        let loss_floor = 0.5 * residual_floor * residual_floor;
        ToleranceFloor {
            residual_floor,
            loss_floor,
            loss_reached_floor: final_loss <= loss_floor,
            exact_samples_below_floor: None,
            exact_max_abs_error_below_floor: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rise_at_the_1e_minus_30_level_below_the_atol_floor_is_not_a_rise() {
        // The stiff run's V near a loss of 1e-17: values of 1e-30 jitter by 1e-30, while the
        // absolute tolerance resolves nothing below ~1e-18.
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let v = [1.0, 1e-10, 1e-30, 5.3e-30, 2e-30];
        let floor = [1e-18; 5];
        let m = monotonicity_above(&t, &v, &floor);
        assert!(m.nonincreasing, "{m:?}");
        assert_eq!(m.max_relative_rise, 0.0);
        assert_eq!(m.nonincreasing_after, 0.0);
        assert_eq!(m.rises_below_floor, 1);
        // Without a floor the same series is the false alarm: a relative rise of 4.3.
        let bare = monotonicity(&t, &v);
        assert!(!bare.nonincreasing && (bare.max_relative_rise - 4.3).abs() < 1e-12);
    }

    #[test]
    fn a_rise_above_the_floor_is_still_a_rise() {
        let t = [0.0, 1.0, 2.0, 3.0];
        let v = [1.0, 0.5, 0.6, 0.1];
        let m = monotonicity_above(&t, &v, &[1e-18; 4]);
        assert!(!m.nonincreasing);
        assert_eq!(m.nonincreasing_after, 2.0);
        assert!((m.max_relative_rise - 0.2).abs() < 1e-12);
        assert_eq!(m.rises_below_floor, 0);
    }

    #[test]
    fn the_floor_of_v_scales_as_the_square_of_atol_over_the_residual() {
        // V = 2 at |Delta| = 1e-3 with e = 1e-9: the unresolved part is 2e-12.
        assert!((lyapunov_floor(2.0, 1e-3, 1e-9) - 2e-12).abs() < 1e-25);
        assert_eq!(lyapunov_floor(0.0, 0.0, 1e-9), f64::INFINITY);
        assert_eq!(lyapunov_floor(3.0, 1.0, 0.0), 0.0);
    }

    #[test]
    fn the_loss_reaches_the_floor_at_half_the_squared_residual_resolution() {
        let f = ToleranceFloor::new(1e-8, 1e-17);
        assert!((f.loss_floor - 5e-17).abs() < 1e-30);
        assert!(f.loss_reached_floor);
        assert!(!ToleranceFloor::new(1e-8, 1e-3).loss_reached_floor);
    }
}

/// The Lyapunov functions of the high-resolution ODEs (Shi, Du, Jordan, Su 2021, Lemmas 3.1,
/// 3.2 and the NAG-C energy), on (t, Delta, Delta', H Delta) with Lhat = 1/2 Delta^T H Delta,
/// s = sqrt(eta), c = 1 - b s/2, mu_b = (b/(2 - b s))^2 (they need mu_b <= lambda_min):
/// ```text
/// hbf  : E = Lhat/c + 1/4|Delta'|^2 + 1/4|Delta' + 2 sqrt(mu_b) Delta|^2
/// nagsc: E = Lhat/c + 1/4|Delta'|^2 + 1/4|Delta' + 2 sqrt(mu_b) Delta + (s/c) H Delta|^2
///        both E(t) <= exp(-sqrt(mu_b) t/4) E(0)
/// nag  : E = tau (tau + (gamma-2) s/2) Lhat + 1/2 |tau Delta' + (gamma-1) Delta + tau s H Delta|^2
///        dE/dtau = -[2(gamma-2) tau + (gamma-2)(2 gamma-3) s/2] Lhat
///                  - s tau (tau + (gamma-2) s/2) |H Delta|^2   (exactly, along the ODE)
/// ```
/// Reference: B. Shi, S. S. Du, M. I. Jordan, W. J. Su, "Understanding the acceleration
/// phenomenon via high-resolution differential equations", Math. Programming 2021.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HighResolutionLyapunov {
    Hbf { b: f64, s: f64 },
    Nagsc { b: f64, s: f64 },
    Nag { gamma: f64, s: f64 },
}

impl HighResolutionLyapunov {
    /// mu_b = (b/(2 - b s))^2, the rate constant of the hbf and nagsc energies.
    pub fn mu_b(b: f64, s: f64) -> f64 {
        (b / (2.0 - b * s)).powi(2)
    }

    /// E at time t (tau for nag) from Delta, Delta' and H Delta.
    pub fn value(
        &self,
        t: f64,
        delta: &DVector<f64>,
        delta_dot: &DVector<f64>,
        h_delta: &DVector<f64>,
    ) -> f64 {
        let lhat = 0.5 * delta.dot(h_delta);
        match *self {
            HighResolutionLyapunov::Hbf { b, s } | HighResolutionLyapunov::Nagsc { b, s } => {
                let c = 1.0 - b * s / 2.0;
                let root = Self::mu_b(b, s).sqrt();
                let mut second = delta_dot + delta * (2.0 * root);
                if matches!(self, HighResolutionLyapunov::Nagsc { .. }) {
                    second += h_delta * (s / c);
                }
                lhat / c + 0.25 * delta_dot.norm_squared() + 0.25 * second.norm_squared()
            }
            HighResolutionLyapunov::Nag { gamma, s } => {
                let z = delta_dot * t + delta * (gamma - 1.0) + h_delta * (t * s);
                t * (t + (gamma - 2.0) * s / 2.0) * lhat + 0.5 * z.norm_squared()
            }
        }
    }

    /// The bound on E(t) from E(0) (E(tau_1) for nag, which does not grow for gamma >= 2).
    pub fn bound(&self, t: f64, e0: f64) -> f64 {
        match *self {
            HighResolutionLyapunov::Hbf { b, s } | HighResolutionLyapunov::Nagsc { b, s } => {
                (-Self::mu_b(b, s).sqrt() * t / 4.0).exp() * e0
            }
            HighResolutionLyapunov::Nag { gamma, .. } => {
                if gamma >= 2.0 {
                    e0
                } else {
                    f64::INFINITY
                }
            }
        }
    }

    /// dE/dtau of the nag energy along the ODE from Lhat and |H Delta|^2 (None for hbf, nagsc).
    pub fn nag_derivative(&self, tau: f64, lhat: f64, h_delta_sq: f64) -> Option<f64> {
        match *self {
            HighResolutionLyapunov::Nag { gamma, s } => Some(
                -(2.0 * (gamma - 2.0) * tau + (gamma - 2.0) * (2.0 * gamma - 3.0) * s / 2.0) * lhat
                    - s * tau * (tau + (gamma - 2.0) * s / 2.0) * h_delta_sq,
            ),
            _ => None,
        }
    }
}
