//! Held-out points: the network's predictions beside the kernel predictor f*_t of the
//! linearized network, driven by the exact error-space trajectory with the run's kernel
//! (see [`crate::theory::diagnostics::KernelPredictor`]).

use nalgebra::DMatrix;

use super::{Probe, Sample};
use crate::dynamics::Damping;
use crate::model::{Data, Model};
use crate::theory::diagnostics::{rms_gap, KernelPredictor};
use crate::theory::exact::ExactSolution;

/// Column test_gap: RMS over the test points of f(W(t); x) - f*_t(x).
pub struct TestGap {
    model: Model,
    predictor: KernelPredictor,
    linear: ExactSolution,
}

impl TestGap {
    /// `train`: the training model; `h`, `cross`: the kernel on the training points and the
    /// cross kernel K(test, train) of the same choice (H(0) or Hinf).
    pub fn new(
        train: &Model,
        w0: &DMatrix<f64>,
        test: &Data,
        h: &DMatrix<f64>,
        cross: &DMatrix<f64>,
        damping: Damping,
    ) -> TestGap {
        let model = train.on_data(test.clone());
        let delta0 = train.residual(&w0.as_view());
        let u0 = model.predict(&w0.as_view());
        // One eigen-decomposition of H serves the linearized trajectory and H^{-1}.
        let linear = ExactSolution::new(h, &delta0, damping);
        TestGap {
            predictor: KernelPredictor::from_spectrum(cross, linear.spectrum(), delta0, u0),
            linear,
            model,
        }
    }
}

impl Probe for TestGap {
    fn columns(&self) -> Vec<&'static str> {
        vec!["test_gap"]
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        let w = s.weights.as_ref().expect("weight space carries W(t)");
        let (delta_lin, _) = self.linear.at(s.t);
        row.push(rms_gap(
            &self.model.predict(w),
            &self.predictor.predict(&delta_lin),
        ));
    }
}
