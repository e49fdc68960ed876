//! How far a trained output layer moved (`--train wa`): a_drift = |a(t) - a0| / sqrt m, the
//! root-mean-square move of one output weight. The first-layer drift (max_weight_drift) is
//! measured per neuron on its parameters (w_r, a_r); this column separates the second layer's
//! share, which Du et al.'s O(1/sqrt m) bound predicts to shrink as the first layer's does.

use nalgebra::DVector;

use super::{Probe, Sample};

/// Column a_drift.
pub struct OutputDrift {
    a0: DVector<f64>,
}

impl OutputDrift {
    /// From a0, the last column of the initial parameters [W0 | a0].
    pub fn new(a0: DVector<f64>) -> Self {
        OutputDrift { a0 }
    }
}

impl Probe for OutputDrift {
    fn columns(&self) -> Vec<&'static str> {
        vec!["a_drift"]
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        let p = s.weights.as_ref().expect("weight space carries [W | a](t)");
        let a = p.column(p.ncols() - 1);
        let m = self.a0.len() as f64;
        row.push((a - &self.a0).norm() / m.sqrt());
    }
}
