//! The optimizer's Lyapunov function V(t) and the loss bound its theorem gives from L(0) and
//! Lhat(0) (see [`crate::theory::lyapunov`]).

use super::{Probe, Sample};
use crate::theory::lyapunov::Lyapunov;

/// Columns lyapunov, loss_bound.
pub struct LyapunovProbe {
    function: Lyapunov,
    /// (L(0), Lhat(0)), from the first sample.
    start: Option<(f64, f64)>,
}

impl LyapunovProbe {
    pub fn new(function: Lyapunov) -> Self {
        LyapunovProbe {
            function,
            start: None,
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
    }
}
