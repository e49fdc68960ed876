//! The optimizer's Lyapunov function V(t) and the loss bound its theorem gives from L(0) and
//! Lhat(0) (see [`crate::theory::lyapunov`]).

use super::{Findings, Probe, Sample};
use crate::theory::lyapunov::{lyapunov_floor, Lyapunov};

/// Columns lyapunov, loss_bound; finds the tolerance floor of V at each sample.
pub struct LyapunovProbe {
    function: Lyapunov,
    /// (L(0), Lhat(0)), from the first sample.
    start: Option<(f64, f64)>,
    /// The norm of a residual error the absolute tolerance allows (0: every value resolved).
    resolution: f64,
    floor: Vec<f64>,
}

impl LyapunovProbe {
    /// Every value of V taken as resolved.
    pub fn new(function: Lyapunov) -> Self {
        LyapunovProbe::with_resolution(function, 0.0)
    }

    /// `resolution`: the norm e of a residual error the solver's absolute tolerance allows.
    pub fn with_resolution(function: Lyapunov, resolution: f64) -> Self {
        LyapunovProbe {
            function,
            start: None,
            resolution,
            floor: Vec::new(),
        }
    }
}

impl Probe for LyapunovProbe {
    fn columns(&self) -> Vec<&'static str> {
        vec!["lyapunov", "loss_bound"]
    }
    fn observe(&mut self, sample: &Sample<'_>, row: &mut Vec<f64>) {
        let s = sample.snapshot;
        let (l0, lhat0) = *self.start.get_or_insert((s.loss(), s.pseudo_loss));
        let v = self
            .function
            .value(sample.t, &s.delta, &s.delta_dot, s.pseudo_loss);
        row.extend([v, self.function.loss_bound(sample.t, l0, lhat0)]);
        self.floor
            .push(lyapunov_floor(v, s.delta.norm(), self.resolution));
    }
    fn finish(&self, findings: &mut Findings) {
        findings.lyapunov_floor = self.floor.clone();
    }
}
