//! How many steps an explicit solver needs on a stiff problem, estimated before integrating.
//!
//! ```text
//! gradient flow:  Delta' = -H Delta; an explicit Runge-Kutta step is stable for
//!                 h lambda_max(H) below ~3 (dopri5 ~3.3, rk4 ~2.8), so  steps ~ lambda_max T / 3
//! second order:   x'' + b x' + lambda x = 0 has roots of size sqrt(lambda) when under-damped,
//!                 so  steps ~ sqrt(lambda_max) T / 3
//! ```
//!
//! `ntkdyn gf --data digits_raw.csv` (pixels 0-16, not normalized, lambda_max(H(0)) = 1.4e5)
//! needed about 2.3e6 steps at T = 50 and ran for 15 minutes without a word; normalized inputs
//! have lambda_max(H(0)) of order n/4 and take hundreds.

/// Stable step size h of explicit Runge-Kutta methods times lambda_max, roughly.
pub const STABLE_H_LAMBDA: f64 = 3.0;

/// Estimated steps above which a run is worth a warning before it starts.
pub const MANY_STEPS: f64 = 1e5;

/// Estimated steps of an explicit solver to reach `t_end` on a kernel whose largest
/// eigenvalue is `lambda_max`: lambda_max T / 3 (first order) or sqrt(lambda_max) T / 3
/// (second order).
pub fn explicit_steps(lambda_max: f64, t_end: f64, second_order: bool) -> f64 {
    let rate = if second_order {
        lambda_max.max(0.0).sqrt()
    } else {
        lambda_max.max(0.0)
    };
    rate * t_end / STABLE_H_LAMBDA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_steps_are_lambda_max_t_over_three_and_the_square_root_for_second_order() {
        assert_eq!(explicit_steps(1.4e5, 50.0, false), 1.4e5 * 50.0 / 3.0);
        assert_eq!(explicit_steps(1e4, 3.0, true), 100.0);
        assert_eq!(explicit_steps(-1.0, 3.0, false), 0.0);
    }
}
