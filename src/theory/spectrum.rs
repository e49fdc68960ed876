//! Spectra of kernels: eigen-decompositions of Gram matrices (lambda0 = lambda_min(Hinf)).
//!
//! The infinite-width kernel Hinf itself belongs to the network: [`crate::model::relu2::arccos`].

use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Eigen-decomposition of a symmetric matrix, eigenvalues ascending.
#[derive(Clone, Debug)]
pub struct Spectrum {
    /// Eigenvalues in ascending order.
    pub values: DVector<f64>,
    /// Orthonormal eigenvectors, column k belongs to `values[k]`.
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
