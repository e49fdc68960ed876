//! Checks of a theorem's conditions on a finished run, recorded in summary.json.
//!
//! ```text
//! mode lambda of x'' + b x' + lambda x = 0: under-damped when lambda > b^2/4, critically
//!     damped at lambda = b^2/4, over-damped below;
//! Siegel (2019): V = Lhat + 1/2 |s Delta + Delta'|^2 decays as exp(-s t) when s = b/2 and
//!     s^2 <= mu, with mu = lambda0/2 the lower bound on lambda_min(H(t)) along the flow;
//! PL* (Liu, Zhu, Belkin): GD at eta <= 1/beta has L(W_k) <= (1 - eta mu)^k L(W0) and stays
//!     in B(W0, R), R = 2 sqrt(2 beta L(W0)) / mu.
//! ```
//!
//! References:
//! 1. J. W. Siegel, "Accelerated first-order methods: differential equations and Lyapunov
//!    functions", arXiv:1903.05671, 2019.
//! 2. C. Liu, L. Zhu, M. Belkin, "Loss landscapes and optimization in over-parameterized
//!    non-linear systems and neural networks", ACHA 2022 (arXiv:2003.00307).

use serde::{Deserialize, Serialize};

use crate::theory::diagnostics::pl_radius;

/// Damping regime of the mode lambda of x'' + b x' + lambda x = 0.
pub fn regime(lambda: f64, b: f64) -> &'static str {
    let q = lambda - b * b / 4.0;
    if q.abs() <= 1e-12 * lambda.abs().max(b * b) {
        "critically damped"
    } else if q > 0.0 {
        "under-damped"
    } else {
        "over-damped"
    }
}

/// One eigen-mode and its regime.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mode {
    pub lambda: f64,
    pub regime: String,
}

/// Heavy ball with friction b: the regimes of the slowest and fastest modes and Siegel's
/// condition s^2 <= lambda0/2 with s = b/2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DampingRegimes {
    pub friction_b: f64,
    pub slowest_mode: Mode,
    pub fastest_mode: Mode,
    pub siegel_rate_s: f64,
    pub siegel_condition_s2_le_lambda0_over_2: bool,
}

impl DampingRegimes {
    /// `slowest`: lambda_min of the error-space kernel; `fastest`: lambda_max(H(0)).
    pub fn new(b: f64, slowest: f64, fastest: f64, lambda0: f64) -> DampingRegimes {
        DampingRegimes {
            friction_b: b,
            slowest_mode: Mode {
                lambda: slowest,
                regime: regime(slowest.max(0.0), b).into(),
            },
            fastest_mode: Mode {
                lambda: fastest,
                regime: regime(fastest, b).into(),
            },
            siegel_rate_s: b / 2.0,
            // Relative slack: the default b = sqrt(2 lambda0) meets the condition with equality.
            siegel_condition_s2_le_lambda0_over_2: b * b / 4.0 <= lambda0 / 2.0 * (1.0 + 1e-12),
        }
    }
}

/// The PL* theorem's prediction for gradient descent, with mu and beta of H(0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlPrediction {
    pub mu: f64,
    pub beta: f64,
    pub mu_beta_source: String,
    /// 1 - eta mu.
    pub rate_per_step: f64,
    pub theorem_needs_eta_at_most_1_over_beta: bool,
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub radius: f64,
    pub inside_ball: bool,
}

/// The PL* theorem's per-step rate of GD, 1 - eta mu (mu clipped at 0).
pub fn pl_rate(eta: f64, mu: f64) -> f64 {
    1.0 - eta * mu.max(0.0)
}

impl PlPrediction {
    /// mu, beta: lambda_min and lambda_max of H(0); `max_distance`: largest |W_k - W0|_F.
    pub fn new(mu: f64, beta: f64, eta: f64, loss0: f64, max_distance: f64) -> PlPrediction {
        let radius = pl_radius(mu, beta, loss0);
        PlPrediction {
            mu,
            beta,
            mu_beta_source: "lambda_min and lambda_max of H(0)".into(),
            rate_per_step: pl_rate(eta, mu),
            theorem_needs_eta_at_most_1_over_beta: eta <= 1.0 / beta * (1.0 + 1e-12),
            radius,
            inside_ball: max_distance <= radius,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_at_b_squared_over_four_is_critically_damped_and_its_neighbours_are_not() {
        let b = 0.4;
        assert_eq!(regime(0.04, b), "critically damped");
        assert_eq!(regime(0.04 * (1.0 + 1e-6), b), "under-damped");
        assert_eq!(regime(0.04 * (1.0 - 1e-6), b), "over-damped");
    }

    #[test]
    fn the_default_friction_sqrt_two_lambda0_meets_siegels_condition_with_equality() {
        let lambda0: f64 = 0.0787;
        let b = (2.0 * lambda0).sqrt();
        let r = DampingRegimes::new(b, lambda0, 2.0, lambda0);
        assert!(r.siegel_condition_s2_le_lambda0_over_2);
        assert_eq!(r.siegel_rate_s, b / 2.0);
        assert!(
            !DampingRegimes::new(1.01 * b, lambda0, 2.0, lambda0)
                .siegel_condition_s2_le_lambda0_over_2
        );
    }

    #[test]
    fn pl_prediction_radius_is_two_sqrt_two_beta_l0_over_mu() {
        let p = PlPrediction::new(0.5, 2.0, 0.5, 3.0, 1.0);
        assert!((p.radius - 2.0 * (12.0f64).sqrt() / 0.5).abs() < 1e-12);
        assert_eq!(p.rate_per_step, 0.75);
        assert!(p.theorem_needs_eta_at_most_1_over_beta && p.inside_ball);
        assert!(PlPrediction::new(0.0, 2.0, 0.5, 3.0, 1.0)
            .radius
            .is_infinite());
    }
}
