//! The per-mode view of a twin and its ODEs with a fixed kernel H (modes.csv): for each
//! eigenvalue lambda, the twin's decay rate per unit of flow time -ln|r_max|/h against the
//! decay rates of the low- and the high-resolution ODE, the twin's regime and whether it is
//! inside its stability edge (GD eta lambda < 2, heavy ball < 2(1+beta), NAG-SC
//! < 2(1+beta)/(1+2 beta)).
//!
//! ODE rates: a first-order mode x' = -a x decays at a; a damped oscillator x'' + B x' + K x
//! = 0 at B/2 - sqrt(max(0, B^2/4 - K)). Low: gf a = lambda, hbf and nagsc B = b, K = lambda.
//! High: gf a = lambda + (eta/2) lambda^2; hbf B = b/c, nagsc B = (b + s lambda)/c, K = lambda/c.
//! NAG's momentum and ODE change with time: it has no constant rate (NaN).

use crate::dynamics::Damping;
use crate::theory::high_resolution::Setting;

/// One row of modes.csv.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct ModeRow {
    pub lambda: f64,
    /// "underdamped" (complex roots), "overdamped" (real) or "first_order" (GD).
    pub regime: &'static str,
    pub rate_twin: f64,
    pub rate_low: f64,
    pub rate_high: f64,
    pub stable: bool,
}

/// The columns of modes.csv.
pub const MODES_COLUMNS: [&str; 6] = [
    "lambda",
    "regime",
    "rate_twin",
    "rate_low",
    "rate_high",
    "stable",
];

/// Decay rate of x'' + B x' + K x = 0.
fn oscillator_rate(b: f64, k: f64) -> f64 {
    b / 2.0 - (b * b / 4.0 - k).max(0.0).sqrt()
}

/// The row of the mode with eigenvalue `lambda`.
pub fn mode_row(setting: &Setting, lambda: f64) -> ModeRow {
    let lambda = lambda.max(0.0);
    let eta = setting.eta;
    let s = eta.sqrt();
    let h = setting.h();
    let recurrence = setting.twin().recurrence();
    let rate_twin = recurrence
        .spectral_radius(eta, lambda)
        .map_or(f64::NAN, |r| -r.ln() / h);
    let (rate_low, rate_high, regime) = match setting.damping {
        Damping::None => (lambda, lambda + eta / 2.0 * lambda * lambda, "first_order"),
        Damping::Constant(b) => {
            let c = 1.0 - b * s / 2.0;
            let big_b = match setting.optimizer {
                crate::optimizer::Optimizer::Nagsc => (b + s * lambda) / c,
                _ => b / c,
            };
            let regime = if recurrence.underdamped(eta, lambda) {
                "underdamped"
            } else {
                "overdamped"
            };
            (
                oscillator_rate(b, lambda),
                oscillator_rate(big_b, lambda / c),
                regime,
            )
        }
        Damping::Vanishing(_) => (f64::NAN, f64::NAN, "time_varying"),
    };
    ModeRow {
        lambda,
        regime,
        rate_twin,
        rate_low,
        rate_high,
        stable: eta * lambda < recurrence.stability_edge(),
    }
}
