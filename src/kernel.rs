//! Kernels of the network: the infinite-width NTK Hinf and spectra of Gram matrices.
//!
//! ```text
//! Hinf_ij = E_{w ~ N(0,I)} [ x_i.x_j 1[w.x_i >= 0, w.x_j >= 0] ]
//!         = x_i.x_j (pi - arccos(cos theta_ij)) / (2 pi),   cos theta_ij = x_i.x_j / (|x_i||x_j|)
//! lambda0 = lambda_min(Hinf)
//! ```
//! On the unit sphere this is SPEC.md's formula; off the sphere the angle keeps it the exact
//! expectation that H(W0) estimates.
//!
//! References:
//! 1. S. S. Du et al., "Gradient descent provably optimizes over-parameterized neural networks", 2019.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use std::f64::consts::PI;

use crate::model::Data;

/// The infinite-width kernel Hinf of the data.
pub fn hinf(data: &Data) -> DMatrix<f64> {
    let xx = &data.x * data.x.transpose();
    let n = data.n();
    DMatrix::from_fn(n, n, |i, j| {
        let norms = (xx[(i, i)] * xx[(j, j)]).sqrt();
        if norms == 0.0 {
            return 0.0;
        }
        let cos = (xx[(i, j)] / norms).clamp(-1.0, 1.0);
        xx[(i, j)] * (PI - cos.acos()) / (2.0 * PI)
    })
}

/// Eigen-decomposition of a symmetric matrix, eigenvalues ascending.
#[derive(Clone, Debug)]
pub struct Spectrum {
    /// Eigenvalues in ascending order.
    pub values: DVector<f64>,
    /// Orthonormal eigenvectors, column k belongs to values[k].
    pub vectors: DMatrix<f64>,
}

impl Spectrum {
    pub fn of(h: &DMatrix<f64>) -> Spectrum {
        let eig = SymmetricEigen::new(h.clone());
        let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
        order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
        let values = DVector::from_iterator(order.len(), order.iter().map(|&k| eig.eigenvalues[k]));
        let vectors = DMatrix::from_fn(h.nrows(), order.len(), |i, k| {
            eig.eigenvectors[(i, order[k])]
        });
        Spectrum { values, vectors }
    }
    pub fn min(&self) -> f64 {
        self.values[0]
    }
    pub fn max(&self) -> f64 {
        self.values[self.values.len() - 1]
    }
}

/// Smallest and largest eigenvalue of a symmetric matrix.
pub fn extreme_eigenvalues(h: &DMatrix<f64>) -> (f64, f64) {
    let ev = h.symmetric_eigenvalues();
    let lo = ev.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ev.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}
