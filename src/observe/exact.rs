//! Error space by ODE against the exact eigen-mode solution: the largest relative deviation
//! |Delta_ode(t) - Delta_exact(t)| / |Delta_exact(t)| over the samples. No column.
//!
//! Where |Delta_exact(t)| is within the residual the absolute tolerance resolves, the ratio
//! measures integration noise against ~0 (a stiff run at a loss of 1e-17 once reported a
//! deviation of 6e25): those samples are counted apart, with their absolute deviation.

use super::{Findings, Probe, Sample};
use crate::theory::exact::ExactSolution;

// issue 19: resolution
/// An exact error-space trajectory: the low-resolution [`ExactSolution`] or the
/// high-resolution one ([`crate::theory::high_resolution::HighResolutionSolution`]).
pub trait DeltaAt {
    /// Delta(t).
    fn delta_at(&self, t: f64) -> nalgebra::DVector<f64>;
}

impl DeltaAt for ExactSolution {
    fn delta_at(&self, t: f64) -> nalgebra::DVector<f64> {
        ExactSolution::delta_at(self, t)
    }
}

impl DeltaAt for crate::theory::high_resolution::HighResolutionSolution {
    fn delta_at(&self, t: f64) -> nalgebra::DVector<f64> {
        crate::theory::high_resolution::HighResolutionSolution::delta_at(self, t)
    }
}

/// Finds exact_max_relative_error.
pub struct ExactCheck<'a> {
    exact: &'a dyn DeltaAt,
    worst: f64,
    /// The norm of a residual error the absolute tolerance allows.
    floor: f64,
    below_floor: usize,
    worst_below_floor: f64,
}

impl<'a> ExactCheck<'a> {
    /// Every sample judged relatively.
    pub fn new(exact: &'a dyn DeltaAt) -> Self {
        ExactCheck::with_floor(exact, 0.0)
    }

    /// Samples with |Delta_exact| <= `floor` are judged by their absolute deviation.
    pub fn with_floor(exact: &'a dyn DeltaAt, floor: f64) -> Self {
        ExactCheck {
            exact,
            worst: 0.0,
            floor,
            below_floor: 0,
            worst_below_floor: 0.0,
        }
    }
}

impl Probe for ExactCheck<'_> {
    fn columns(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn observe(&mut self, s: &Sample<'_>, _row: &mut Vec<f64>) {
        let d_exact = self.exact.delta_at(s.t);
        let gap = (&s.snapshot.delta - &d_exact).norm();
        let size = d_exact.norm();
        if size <= self.floor {
            self.below_floor += 1;
            self.worst_below_floor = self.worst_below_floor.max(gap);
        } else {
            self.worst = self.worst.max(gap / size);
        }
    }
    fn finish(&self, findings: &mut Findings) {
        findings.exact_max_relative_error = Some(self.worst);
        findings.exact_below_floor = Some((self.below_floor, self.worst_below_floor));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Damping, ErrorSpace, Space};
    use nalgebra::{DMatrix, DVector};

    fn sample_of(exact: &ExactSolution, t: f64, noise: f64) -> crate::dynamics::Snapshot {
        let space = ErrorSpace {
            h: DMatrix::identity(2, 2),
        };
        let (d, v) = exact.at(t);
        let noisy = d.add_scalar(noise);
        space.snapshot(noisy.as_slice(), v.as_slice())
    }

    fn check(exact: &ExactSolution, floor: f64, samples: &[(f64, f64)]) -> Findings {
        let mut probe = ExactCheck::with_floor(exact, floor);
        for &(t, noise) in samples {
            let s = sample_of(exact, t, noise);
            probe.observe(
                &Sample {
                    t,
                    snapshot: &s,
                    kernel_extremes: (1.0, 1.0),
                    same_kernel: false,
                    weights: None,
                },
                &mut Vec::new(),
            );
        }
        let mut findings = Findings::default();
        probe.finish(&mut findings);
        findings
    }

    #[test]
    fn a_deviation_where_the_exact_solution_is_near_zero_is_not_reported_as_huge() {
        // Delta(t) = exp(-t) Delta(0): |Delta_exact(50)| = 2e-22, and an ODE at atol = 1e-9
        // carries noise of 1e-12 there.
        let h = DMatrix::identity(2, 2);
        let exact = ExactSolution::new(&h, &DVector::from_vec(vec![1.0, 0.0]), Damping::None);
        let samples = [(0.0, 0.0), (1.0, 1e-9), (50.0, 1e-12)];
        let found = check(&exact, 1e-9 * 2f64.sqrt(), &samples);
        let rel = found.exact_max_relative_error.unwrap();
        // The resolved sample at t = 1: |(1e-9, 1e-9)| / exp(-1).
        assert!(
            (rel - 2f64.sqrt() * 1e-9 / (-1f64).exp()).abs() < 1e-12,
            "{rel}"
        );
        let (count, worst) = found.exact_below_floor.unwrap();
        assert_eq!(count, 1);
        assert!((worst - 2f64.sqrt() * 1e-12).abs() < 1e-20);
        // Judged relatively, the same noise is a deviation of about 7e9.
        let bare = check(&exact, 0.0, &samples);
        assert!(bare.exact_max_relative_error.unwrap() > 1e9);
    }
}
