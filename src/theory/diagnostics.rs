//! Theory diagnostics along a run: the PL* ratio and its floor, the tangent kernel's
//! condition number, the PL* ball of Liu, Zhu and Belkin, and the trained network against
//! its kernel (lazy, linearized) predictor on held-out points.
//!
//! ```text
//! mu(t)    = |grad L|^2 / L = Delta^T H Delta / (1/2 |Delta|^2) = 2 Lhat / L  >=  2 lambda_min(H(t))
//! kappa(t) = lambda_max(H(t)) / lambda_min(H(t))
//! PL* (Liu, Zhu, Belkin): 1/2 |grad L|^2 >= mu_LZB L, i.e. mu_LZB = inf_t mu(t) / 2;
//!     with beta-smooth L, GD at eta = 1/beta stays in B(W0, R), R = 2 sqrt(2 beta L(W0)) / mu_LZB,
//!     and L(W_k) <= (1 - eta mu_LZB)^k L(W0).
//! Kernel predictor (Du et al.; the network linearized at W0), with the same H as error space:
//!     f*_t(x) = u_0(x) + K(x, X) H^{-1} (Delta_lin(t) - Delta(0)),   f*_inf(x) = u_0(x) + K(x, X) H^{-1} (y - u(0))
//!     where Delta_lin is the exact error-space trajectory of the same optimizer.
//! ```
//!
//! References:
//! 1. C. Liu, L. Zhu, M. Belkin, "Loss landscapes and optimization in over-parameterized
//!    non-linear systems and neural networks", Applied and Computational Harmonic Analysis, 2022
//!    (arXiv:2003.00307).
//! 2. S. S. Du et al., "Gradient descent provably optimizes over-parameterized neural networks", 2019.

use nalgebra::{DMatrix, DVector};

use crate::linalg::{matmul, matmul_nt, FAER_FROM};
use crate::model::{Data, Model};
use crate::theory::spectrum::Spectrum;

/// mu(t) = |grad L|^2 / L = 2 Lhat / L (0 when L = 0).
pub fn pl_ratio(loss: f64, pseudo_loss: f64) -> f64 {
    if loss > 0.0 {
        2.0 * pseudo_loss / loss
    } else {
        0.0
    }
}

/// kappa = lambda_max / lambda_min (+inf for a singular kernel).
pub fn condition_number(lambda_min: f64, lambda_max: f64) -> f64 {
    if lambda_min > 0.0 {
        lambda_max / lambda_min
    } else {
        f64::INFINITY
    }
}

/// The cross kernel K(x, X) of H(W0): K_ki = x_k . x_i / m * #{r : w_r.x_k >= 0, w_r.x_i >= 0}.
pub fn cross_kernel_h0(model: &Model, w0: &DMatrix<f64>, test: &Data) -> DMatrix<f64> {
    let test_model = model.on_data(test.clone());
    let s_test = test_model.slopes(&w0.as_view());
    let s_train = model.slopes(&w0.as_view());
    let mut counts = DMatrix::zeros(test.n(), model.n());
    counts.gemm_tr(1.0 / model.m() as f64, &s_test, &s_train, 0.0);
    counts.component_mul(&(&test.x * model.data().x.transpose()))
}

/// f*_t on held-out points: the network linearized at W0, trained with the fixed kernel H.
#[derive(Clone, Debug)]
pub struct KernelPredictor {
    /// u_0(x) on the test points.
    u0: DVector<f64>,
    /// K(x, X) V diag(1/lambda) V^T, applied to Delta_lin(t) - Delta(0).
    map: DMatrix<f64>,
    delta0: DVector<f64>,
}

impl KernelPredictor {
    /// From the cross kernel K(x, X), the train kernel H, Delta(0) and u_0(test).
    /// Eigen-modes of H below 1e-12 lambda_max are dropped (pseudo-inverse).
    pub fn new(
        cross: &DMatrix<f64>,
        h: &DMatrix<f64>,
        delta0: DVector<f64>,
        u0: DVector<f64>,
    ) -> Self {
        Self::from_spectrum(cross, &Spectrum::of(h), delta0, u0)
    }

    /// [`KernelPredictor::new`] from an eigen-decomposition of H already at hand.
    pub fn from_spectrum(
        cross: &DMatrix<f64>,
        spec: &Spectrum,
        delta0: DVector<f64>,
        u0: DVector<f64>,
    ) -> Self {
        let cut = 1e-12 * spec.max().abs();
        let inv = DVector::from_iterator(
            spec.values.len(),
            spec.values
                .iter()
                .map(|&l| if l > cut { 1.0 / l } else { 0.0 }),
        );
        let map = if spec.vectors.nrows() >= FAER_FROM {
            // ((K V) diag(1/lambda)) V^T: two products of k n^2 flops (faer, blocked, on
            // all threads) instead of forming the n x n pseudo-inverse (2 n^3 more).
            let mut kv = matmul(cross, &spec.vectors);
            for (mut col, s) in kv.column_iter_mut().zip(inv.iter()) {
                col *= *s;
            }
            matmul_nt(&kv, &spec.vectors)
        } else {
            let pinv = &spec.vectors * DMatrix::from_diagonal(&inv) * spec.vectors.transpose();
            cross * pinv
        };
        KernelPredictor { u0, map, delta0 }
    }

    /// f*_t given the linearized trajectory's Delta_lin(t).
    pub fn predict(&self, delta_lin: &DVector<f64>) -> DVector<f64> {
        &self.u0 + &self.map * (delta_lin - &self.delta0)
    }
}

/// Root-mean-square difference of two prediction vectors.
pub fn rms_gap(a: &DVector<f64>, b: &DVector<f64>) -> f64 {
    if a.is_empty() {
        return 0.0;
    }
    ((a - b).norm_squared() / a.len() as f64).sqrt()
}

/// The PL* ball check of Liu, Zhu and Belkin for a weight-space run.
///
/// JSON has no infinity or NaN (serde_json writes null); read back, null is NaN.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlBall {
    /// inf_t mu(t) over the samples (column pl_ratio).
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub inf_pl_ratio: f64,
    /// sup_t kappa(t) over the samples (column kernel_cond).
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub sup_kernel_cond: f64,
    /// mu of the theorem, 1/2 |grad L|^2 >= mu L: inf_t mu(t) / 2.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub mu: f64,
    /// beta: the largest lambda_max(H(t)) seen along the run.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub beta: f64,
    pub beta_estimate: String,
    /// R = 2 sqrt(2 beta L(W0)) / mu.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub radius: f64,
    /// Largest |W(t) - W0|_F over the samples.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub max_distance: f64,
    pub inside_ball: bool,
}

/// The radius of the PL* ball, R = 2 sqrt(2 beta L(W0)) / mu (Liu, Zhu and Belkin);
/// infinite when mu is not positive.
pub fn pl_radius(mu: f64, beta: f64, loss0: f64) -> f64 {
    if mu > 0.0 {
        2.0 * (2.0 * beta * loss0).sqrt() / mu
    } else {
        f64::INFINITY
    }
}

impl PlBall {
    pub fn new(
        inf_pl_ratio: f64,
        sup_kernel_cond: f64,
        beta: f64,
        loss0: f64,
        max_distance: f64,
    ) -> PlBall {
        let mu = inf_pl_ratio / 2.0;
        let radius = pl_radius(mu, beta, loss0);
        PlBall {
            inf_pl_ratio,
            sup_kernel_cond,
            mu,
            beta,
            beta_estimate: "largest lambda_max(H(t)) along the run: the Gauss-Newton curvature J^T J, since the ReLU network's own Hessian vanishes almost everywhere".into(),
            radius,
            max_distance,
            inside_ball: max_distance <= radius,
        }
    }
}
