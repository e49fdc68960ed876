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

/// Stiffness rate T above which error space is solved exactly unless `--solver` asks for an
/// ODE: the explicit solver's steps are then held below the stability limit, about
/// [`STABLE_H_LAMBDA`] / lambda_max, for a fixed linear ODE whose eigen-mode solution every
/// error-space run computes anyway (its ODE is checked against it). The default runs sit at
/// lambda_max T = 114 (gf, n = 50, T = 50) and sqrt(lambda_max) T = 76 (hbf, nag), and keep
/// dopri5 and its check; `gf --n 2000 --d 20 --m 1000 --t-end 20` sits at 593 and took 232
/// dopri5 steps of a 2000 x 2000 product each (21 s on the benchmark machine) for what one
/// eigen-decomposition gives exactly.
pub const EXACT_ABOVE: f64 = 300.0;

/// The fastest rate of the flow on a kernel whose largest eigenvalue is `lambda_max`, times
/// `t_end`: lambda_max T (first order) or sqrt(lambda_max) T (second order).
pub fn stiffness(lambda_max: f64, t_end: f64, second_order: bool) -> f64 {
    let rate = if second_order {
        lambda_max.max(0.0).sqrt()
    } else {
        lambda_max.max(0.0)
    };
    rate * t_end
}

/// Estimated steps of an explicit solver to reach `t_end` on a kernel whose largest
/// eigenvalue is `lambda_max`: lambda_max T / 3 (first order) or sqrt(lambda_max) T / 3
/// (second order).
pub fn explicit_steps(lambda_max: f64, t_end: f64, second_order: bool) -> f64 {
    stiffness(lambda_max, t_end, second_order) / STABLE_H_LAMBDA
}

/// Why error space is solved exactly although no `--solver` asked for it, when its
/// [`stiffness`] is above [`EXACT_ABOVE`]: `exact (stiff: lambda_max T = 593.5 > 300)`.
pub fn exact_instead(lambda_max: f64, t_end: f64, second_order: bool) -> Option<String> {
    let s = stiffness(lambda_max, t_end, second_order);
    (s > EXACT_ABOVE).then(|| {
        format!(
            "exact (stiff: {} T = {s:.1} > {EXACT_ABOVE}; --solver dopri5 integrates the ODE)",
            if second_order {
                "sqrt(lambda_max)"
            } else {
                "lambda_max"
            }
        )
    })
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

    #[test]
    fn error_space_turns_exact_above_a_stiffness_of_300_and_says_why() {
        // The issue's n = 2000 run: lambda_max(H(0)) = 29.67, T = 20.
        let why = exact_instead(29.67, 20.0, false).unwrap();
        assert_eq!(
            why,
            "exact (stiff: lambda_max T = 593.4 > 300; --solver dopri5 integrates the ODE)"
        );
        // The defaults (n = 50, lambda_max = 2.28, T = 50): 114 and 75.5 stay with dopri5.
        assert_eq!(exact_instead(2.2807, 50.0, false), None);
        assert_eq!(exact_instead(2.2807, 50.0, true), None);
        assert!(exact_instead(100.0, 31.0, true)
            .unwrap()
            .contains("sqrt(lambda_max) T = 310.0"));
    }
}
