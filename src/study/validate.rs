//! The ranges of a run's options that can be checked before any file is read.

use crate::error::InputError;
use crate::integrate::Solver;
use crate::study::config::{RunConfig, SpaceChoice};

/// Most discrete iterates a run may ask for.
pub const MAX_ITERATES: f64 = 2e7;
/// Most output times.
pub const MAX_SAMPLES: usize = 10_000_000;
/// Most memory a run may need, in bytes (the machines are 24 GB).
pub const MAX_BYTES: f64 = 16e9;

/// Rough peak memory of a weight-space run: the m x n pre-activation, mask and pattern
/// matrices (about 8 of them) and the integrator's 2 m d states (about 12).
pub fn memory_estimate(n: usize, d: usize, m: usize) -> f64 {
    8.0 * (8.0 * m as f64 * n as f64 + 24.0 * m as f64 * d as f64 + 4.0 * n as f64 * n as f64)
}

impl RunConfig {
    /// Check every range of the bad-input list that can be checked before reading files.
    pub fn validate(&self) -> Result<(), InputError> {
        let positive = |option: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(InputError::option(
                    option,
                    format!("{v} must be a finite number > 0"),
                ))
            }
        };
        for (option, v) in [("n", self.n), ("d", self.d), ("m", self.m)] {
            if v == 0 {
                return Err(InputError::option(option, "0 must be at least 1"));
            }
        }
        positive("t-end", self.t_end)?;
        if self.samples < 2 {
            return Err(InputError::option(
                "samples",
                format!("{} must be at least 2 (both ends of [0, T])", self.samples),
            ));
        }
        for (option, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            if !(v.is_finite() && v > 0.0 && v < 1.0) {
                return Err(InputError::option(option, format!("{v} must be in (0, 1)")));
            }
        }
        if self.rtol < 1e-14 {
            return Err(InputError::option(
                "rtol",
                format!("{} is below 1e-14, under rounding", self.rtol),
            ));
        }
        positive("step", self.step)?;
        if self.solver == Solver::Rk4 && self.step > self.t_end {
            return Err(InputError::option(
                "step",
                format!("{} is larger than --t-end {}", self.step, self.t_end),
            ));
        }
        if let Some(h) = self.max_step {
            positive("max-step", h)?;
        }
        if !self.eta_auto {
            positive("eta", self.eta)?;
            let clock = self.optimizer.method().clock(self.eta);
            if self.discrete && self.t_end / clock > MAX_ITERATES {
                return Err(InputError::option(
                    "eta",
                    format!(
                        "{} needs {:.3e} iterates to reach --t-end {} (at most {MAX_ITERATES:e}); raise --eta or use --no-discrete",
                        self.eta,
                        self.t_end / clock,
                        self.t_end
                    ),
                ));
            }
        }
        if self.samples > MAX_SAMPLES {
            return Err(InputError::option(
                "samples",
                format!("{} is more than {MAX_SAMPLES}", self.samples),
            ));
        }
        let bytes = memory_estimate(self.n, self.d, self.m);
        if self.data.is_none() && self.init.is_none() && bytes > MAX_BYTES {
            return Err(InputError::Memory {
                n: self.n,
                d: self.d,
                m: self.m,
                needed_bytes: bytes,
                limit_bytes: MAX_BYTES,
            });
        }
        positive("gamma", self.gamma)?;
        if let Some(b) = self.friction {
            if !b.is_finite() {
                return Err(InputError::option(
                    "friction",
                    format!("{b} must be a finite number"),
                ));
            }
        }
        if let Some(l) = self.lambda0 {
            positive("lambda0", l)?;
        }
        let alpha_max = (2.0 * self.gamma / 3.0).max(2.0);
        if !(self.alpha >= 2.0 && self.alpha <= alpha_max) {
            return Err(InputError::option(
                "alpha",
                format!(
                    "{} is outside [2, max(2, 2 gamma/3)] = [2, {}]",
                    self.alpha, alpha_max
                ),
            ));
        }
        if self.solver == Solver::Exact && self.space != SpaceChoice::Error {
            return Err(InputError::option(
                "solver",
                "exact solves error space only; add --space error",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::Optimizer;

    #[test]
    fn the_defaults_of_every_optimizer_are_valid() {
        for o in Optimizer::ALL {
            RunConfig::defaults(o).validate().unwrap();
        }
    }

    #[test]
    fn a_problem_beyond_the_memory_limit_is_a_memory_error_not_an_option_error() {
        let cfg = RunConfig {
            n: 100_000,
            m: 100_000,
            ..RunConfig::default()
        };
        assert!(memory_estimate(cfg.n, cfg.d, cfg.m) > MAX_BYTES);
        assert!(matches!(cfg.validate(), Err(InputError::Memory { .. })));
    }

    #[test]
    fn the_iterate_limit_counts_on_each_twins_clock() {
        // T / eta iterates for GD, T / sqrt(eta) for the momentum twins.
        let eta = 1e-7;
        let gf = RunConfig {
            eta,
            ..RunConfig::defaults(Optimizer::Gf)
        };
        let hbf = RunConfig {
            eta,
            ..RunConfig::defaults(Optimizer::Hbf)
        };
        assert!(50.0 / eta > MAX_ITERATES && 50.0 / eta.sqrt() < MAX_ITERATES);
        assert!(gf.validate().is_err());
        hbf.validate().unwrap();
    }
}
