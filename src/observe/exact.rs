//! Error space by ODE against the exact eigen-mode solution: the largest relative deviation
//! |Delta_ode(t) - Delta_exact(t)| / |Delta_exact(t)| over the samples. No column.

use super::{Findings, Probe, Sample};
use crate::theory::exact::ExactSolution;

/// Finds exact_max_relative_error.
pub struct ExactCheck<'a> {
    exact: &'a ExactSolution,
    worst: f64,
}

impl<'a> ExactCheck<'a> {
    pub fn new(exact: &'a ExactSolution) -> Self {
        ExactCheck { exact, worst: 0.0 }
    }
}

impl Probe for ExactCheck<'_> {
    fn columns(&self) -> Vec<&'static str> {
        Vec::new()
    }
    fn observe(&mut self, s: &Sample<'_>, _row: &mut Vec<f64>) {
        let (d_exact, _) = self.exact.at(s.t);
        let gap = (&s.snapshot.delta - &d_exact).norm();
        self.worst = self.worst.max(gap / d_exact.norm());
    }
    fn finish(&self, findings: &mut Findings) {
        findings.exact_max_relative_error = Some(self.worst);
    }
}
