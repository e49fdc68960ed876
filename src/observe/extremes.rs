//! lambda_min and lambda_max of H(t) at every weight-space output time, from one solve.
//!
//! Below [`FAER_FROM`] rows every eigenvalue is computed by nalgebra
//! ([`extreme_eigenvalues`]) and the ends taken from them: the default runs keep their bits.
//! From [`FAER_FROM`] rows faer reduces H(t) to tridiagonal form and bisection finds the two
//! ends alone ([`faer_extreme_eigenvalues`]); the QR iteration for all n eigenvalues that it
//! replaces took 60% of the eigenvalue time at n = 100 (perf), and the values agree with it
//! to a few ulps of |H|.
//!
//! Lanczos ([`crate::linalg::lanczos_extremes`]), warm-started from the last sample's
//! eigenvectors, was measured slower (`cargo run --release --example bench -- snapshots`):
//! H(t)'s lower end is clustered, and resolving lambda_min to 1e-15 took 76-84 steps at
//! n = 100 (3.8-13 ms against 0.5 ms for the full reduction) and 270-300 at n = 1000
//! (3.4 s against 0.52 s), the warm start saving about 10% of the steps.

use nalgebra::DMatrix;

use crate::linalg::{faer_extreme_eigenvalues, FAER_FROM};
use crate::theory::spectrum::extreme_eigenvalues;

/// (lambda_min, lambda_max) of the kernel H; NaN when H has non-finite entries.
pub fn kernel_extremes(h: &DMatrix<f64>) -> (f64, f64) {
    if h.nrows() < FAER_FROM {
        return extreme_eigenvalues(h);
    }
    faer_extreme_eigenvalues(h)
}
