//! Spectra of kernels: eigen-decompositions of Gram matrices (lambda0 = lambda_min(Hinf)),
//! through faer ([`crate::linalg`]).
//!
//! The infinite-width kernel Hinf itself belongs to the network: [`crate::model::relu2::arccos`].
//!
//! The extreme eigenvalues of H(t) at every weight-space sample come from the full
//! eigenvalue-only reduction, not from Lanczos: building H(t) = (X X^T) o (S^T S) / m costs
//! n^2 m flops, the reduction (4/3) n^3, so the eigenvalues add 4n/(3m) to a snapshot (13% at
//! n = 1000, m = 10000; 3% at the defaults) and keep lambda_min exact to rounding, where
//! Lanczos would need many steps and reorthogonalization to resolve a small, clustered
//! lambda_min to 1e-12.

use nalgebra::{DMatrix, DVector};

use crate::linalg::{symmetric_eigen, symmetric_eigenvalues};

/// Eigen-decomposition of a symmetric matrix, eigenvalues ascending; or, from
/// [`crate::theory::exact::krylov_spectrum`], the Ritz pairs of H on a Krylov space (n x k
/// vectors), on which the exact solutions it was built for are converged (their extremes
/// are then not H's).
#[derive(Clone, Debug)]
pub struct Spectrum {
    /// Eigenvalues in ascending order.
    pub values: DVector<f64>,
    /// Orthonormal eigenvectors, column k belongs to `values[k]`.
    pub vectors: DMatrix<f64>,
}

impl Spectrum {
    pub fn of(h: &DMatrix<f64>) -> Spectrum {
        let (values, vectors) = symmetric_eigen(h);
        Spectrum { values, vectors }
    }
    pub fn min(&self) -> f64 {
        self.values[0]
    }
    pub fn max(&self) -> f64 {
        self.values[self.values.len() - 1]
    }
    /// (lambda_min, lambda_max).
    pub fn extremes(&self) -> (f64, f64) {
        (self.min(), self.max())
    }
}

/// Smallest and largest eigenvalue of a symmetric matrix (NaN when H has non-finite entries).
pub fn extreme_eigenvalues(h: &DMatrix<f64>) -> (f64, f64) {
    let ev = symmetric_eigenvalues(h);
    let lo = ev.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ev.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if ev.iter().any(|v| v.is_nan()) {
        return (f64::NAN, f64::NAN);
    }
    (lo, hi)
}
