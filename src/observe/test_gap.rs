//! Held-out points: the network's predictions beside the kernel predictor f*_t of the
//! linearized network, driven by the exact error-space trajectory with the run's kernel
//! (see [`crate::theory::diagnostics::KernelPredictor`]), and the test loss and accuracy of
//! each.
//!
//! ```text
//! test_loss        = 1/2 sum_k (f(W(t); x_k) - y_k)^2      over the held-out points (a sum, as loss)
//! test_loss_kernel = 1/2 sum_k (f*_t(x_k) - y_k)^2,   f*_t(x) = u_0(x) + K(x, X) H^+ (Delta(t) - Delta(0))
//! accuracy         = share of points with sign(f(x)) = y, sign(0) = +1      (labels all +-1 only)
//! ```
//! In weight space Delta(t) of f*_t is the exact error-space trajectory (the linearized
//! network trained by the same optimizer); in error space it is the space's own Delta(t), so
//! error space reports the kernel predictor alone. On the training points f*_t = y + Delta(t):
//! its loss there is the error-space loss, and f*_inf = u_0 + H H^+ (y - u(0)) = y.

use nalgebra::{DMatrix, DVector};
use std::sync::Arc;

use super::{Probe, Sample};
use crate::dynamics::Damping;
use crate::model::{Data, Model};
use crate::theory::diagnostics::{rms_gap, KernelPredictor};
use crate::theory::exact::ExactSolution;
use crate::theory::spectrum::Spectrum;

/// Whether every target is +1 or -1: then accuracy columns are written.
pub fn labels_pm1(y: &DVector<f64>) -> bool {
    !y.is_empty() && y.iter().all(|v| *v == 1.0 || *v == -1.0)
}

/// Share of points whose prediction has the sign of their +-1 label (sign(0) = +1).
pub fn accuracy(prediction: &DVector<f64>, y: &DVector<f64>) -> f64 {
    if y.is_empty() {
        return f64::NAN;
    }
    let right = prediction
        .iter()
        .zip(y.iter())
        .filter(|(f, y)| (if **f >= 0.0 { 1.0 } else { -1.0 }) == **y)
        .count();
    right as f64 / y.len() as f64
}

/// 1/2 |f - y|^2: the loss of predictions f on targets y (a sum over points, as `loss`).
pub fn half_squared_error(prediction: &DVector<f64>, y: &DVector<f64>) -> f64 {
    0.5 * (prediction - y).norm_squared()
}

/// Weight space with held-out points: columns test_gap (RMS over the test points of
/// f(W(t); x) - f*_t(x)), test_loss, test_loss_kernel, and with +-1 labels train_accuracy
/// (of u = y + Delta on the training points), test_accuracy and test_accuracy_kernel.
pub struct TestGap {
    model: Model,
    predictor: KernelPredictor,
    linear: ExactSolution,
    test_y: DVector<f64>,
    train_y: DVector<f64>,
    train_pm1: bool,
    test_pm1: bool,
}

impl TestGap {
    /// `train`: the training model; `spectrum`, `cross`: the eigen-decomposition of the
    /// kernel on the training points and the cross kernel K(test, train) of the same choice
    /// (H(0) or Hinf).
    pub fn new(
        train: &Model,
        w0: &DMatrix<f64>,
        test: &Data,
        spectrum: Arc<Spectrum>,
        cross: &DMatrix<f64>,
        damping: Damping,
    ) -> TestGap {
        let model = train.on_data(test.clone());
        let delta0 = train.residual(&w0.as_view());
        let u0 = model.predict(&w0.as_view());
        // One eigen-decomposition of H (error space's, when it runs with this kernel) serves
        // the linearized trajectory and H^{-1}.
        let linear = ExactSolution::from_spectrum(spectrum, &delta0, damping);
        let train_y = train.data().y.clone();
        TestGap {
            predictor: KernelPredictor::from_spectrum(cross, linear.spectrum(), delta0, u0),
            linear,
            model,
            test_y: test.y.clone(),
            train_pm1: labels_pm1(&train_y),
            test_pm1: labels_pm1(&test.y),
            train_y,
        }
    }
}

impl Probe for TestGap {
    fn columns(&self) -> Vec<&'static str> {
        let mut c = vec!["test_gap", "test_loss", "test_loss_kernel"];
        if self.train_pm1 {
            c.push("train_accuracy");
        }
        if self.test_pm1 {
            c.extend(["test_accuracy", "test_accuracy_kernel"]);
        }
        c
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        let w = s.weights.as_ref().expect("weight space carries W(t)");
        let (delta_lin, _) = self.linear.at(s.t);
        let network = self.model.predict(w);
        let kernel = self.predictor.predict(&delta_lin);
        row.push(rms_gap(&network, &kernel));
        row.push(half_squared_error(&network, &self.test_y));
        row.push(half_squared_error(&kernel, &self.test_y));
        if self.train_pm1 {
            let u = &self.train_y + &s.snapshot.delta;
            row.push(accuracy(&u, &self.train_y));
        }
        if self.test_pm1 {
            row.push(accuracy(&network, &self.test_y));
            row.push(accuracy(&kernel, &self.test_y));
        }
    }
}

/// Error space with held-out points: the kernel predictor f*_t driven by the space's own
/// Delta(t): columns test_loss_kernel and, with +-1 labels, test_accuracy_kernel.
pub struct KernelTest {
    predictor: KernelPredictor,
    /// Number of training points n.
    n: usize,
    test_y: DVector<f64>,
    test_pm1: bool,
}

impl KernelTest {
    /// `spectrum`: the eigen-decomposition of error space's fixed kernel; `cross`:
    /// K(test, train) of the same choice; `delta0`: Delta(0) on the training points; `u0`:
    /// the initial network on the test points.
    pub fn new(
        spectrum: &Spectrum,
        cross: &DMatrix<f64>,
        delta0: DVector<f64>,
        u0: DVector<f64>,
        test_y: DVector<f64>,
    ) -> KernelTest {
        KernelTest {
            n: delta0.len(),
            predictor: KernelPredictor::from_spectrum(cross, spectrum, delta0, u0),
            test_pm1: labels_pm1(&test_y),
            test_y,
        }
    }

    /// f*_inf = u_0 + K H^+ (y - u(0)), the predictor's limit (Delta -> 0).
    pub fn limit(&self) -> DVector<f64> {
        self.predictor.predict(&DVector::zeros(self.n))
    }

    /// The test loss and (with +-1 labels) accuracy of f*_inf.
    pub fn limit_metrics(&self) -> (f64, Option<f64>) {
        let f = self.limit();
        (
            half_squared_error(&f, &self.test_y),
            self.test_pm1.then(|| accuracy(&f, &self.test_y)),
        )
    }
}

impl Probe for KernelTest {
    fn columns(&self) -> Vec<&'static str> {
        if self.test_pm1 {
            vec!["test_loss_kernel", "test_accuracy_kernel"]
        } else {
            vec!["test_loss_kernel"]
        }
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        let f = self.predictor.predict(&s.snapshot.delta);
        row.push(half_squared_error(&f, &self.test_y));
        if self.test_pm1 {
            row.push(accuracy(&f, &self.test_y));
        }
    }
}

/// The discrete twin's iterates on the held-out points: test_loss and, with +-1 labels,
/// test_accuracy of f(W_k; x) (W_k the iterate whose loss discrete.csv reports).
pub struct TwinTest {
    model: Model,
    test_y: DVector<f64>,
    test_pm1: bool,
    /// One row per iterate seen.
    pub rows: Vec<Vec<f64>>,
}

impl TwinTest {
    pub fn new(train: &Model, test: &Data) -> TwinTest {
        TwinTest {
            model: train.on_data(test.clone()),
            test_pm1: labels_pm1(&test.y),
            test_y: test.y.clone(),
            rows: Vec::new(),
        }
    }

    /// The columns it adds to discrete.csv.
    pub fn columns(&self) -> Vec<&'static str> {
        if self.test_pm1 {
            vec!["test_loss", "test_accuracy"]
        } else {
            vec!["test_loss"]
        }
    }

    /// Record iterate W_k.
    pub fn observe(&mut self, w: &DMatrix<f64>) {
        let f = self.model.predict(&w.as_view());
        let mut row = vec![half_squared_error(&f, &self.test_y)];
        if self.test_pm1 {
            row.push(accuracy(&f, &self.test_y));
        }
        self.rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_signs_with_zero_as_plus_one() {
        let y = DVector::from_vec(vec![1.0, -1.0, 1.0, -1.0, 1.0]);
        // Right: 0.3 (+1), -2 (-1), 0 (+1 counts as +1); wrong: 0 for -1, -1e-300 for +1.
        let f = DVector::from_vec(vec![0.3, -2.0, 0.0, 0.0, -1e-300]);
        assert_eq!(accuracy(&f, &y), 3.0 / 5.0);
        assert_eq!(accuracy(&y, &y), 1.0);
        assert_eq!(accuracy(&(-&y), &y), 0.0);
        assert!(labels_pm1(&y));
        assert!(!labels_pm1(&DVector::from_vec(vec![1.0, 0.0])));
    }

    #[test]
    fn half_squared_error_is_the_loss_of_the_residual() {
        let y = DVector::from_vec(vec![1.0, -1.0]);
        let f = DVector::from_vec(vec![4.0, 3.0]);
        // 1/2 (3^2 + 4^2) = 12.5
        assert_eq!(half_squared_error(&f, &y), 12.5);
    }
}
