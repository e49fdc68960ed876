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
    // issue 19: resolution
    /// Error space's fixed H, for the H Delta of the high-resolution energies (weight space
    /// takes H(t) from the snapshot).
    kernel: Option<nalgebra::DMatrix<f64>>,
    /// V at the first sample (the high-resolution bounds start from it).
    v0: Option<f64>,
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
            kernel: None,
            v0: None,
        }
    }

    // issue 19: resolution
    /// With error space's fixed kernel H (the high-resolution energies need H Delta).
    pub fn with_kernel(mut self, h: nalgebra::DMatrix<f64>) -> Self {
        self.kernel = Some(h);
        self
    }
}

impl Probe for LyapunovProbe {
    fn columns(&self) -> Vec<&'static str> {
        vec!["lyapunov", "loss_bound"]
    }
    fn observe(&mut self, sample: &Sample<'_>, row: &mut Vec<f64>) {
        let s = sample.snapshot;
        let (l0, lhat0) = *self.start.get_or_insert((s.loss(), s.pseudo_loss));
        // issue 19: resolution (the high-resolution energies read H Delta)
        let h_delta = self
            .function
            .high()
            .and_then(|_| s.gram.as_ref().or(self.kernel.as_ref()))
            .map(|h| h * &s.delta);
        let v = self.function.value_with(
            sample.t,
            &s.delta,
            &s.delta_dot,
            s.pseudo_loss,
            h_delta.as_ref(),
        );
        let v0 = *self.v0.get_or_insert(v);
        let bound = self.function.loss_bound_from(sample.t, l0, lhat0, v0);
        row.extend([v, bound]);
        self.floor
            .push(lyapunov_floor(v, s.delta.norm(), self.resolution));
    }
    fn finish(&self, findings: &mut Findings) {
        findings.lyapunov_floor = self.floor.clone();
    }
}
