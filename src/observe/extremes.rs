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
//!
//! Shifted inverse iteration was measured too (one run, load average 13): each end followed
//! from the last sample's value and vector, with a Cholesky factorization of H - sigma I
//! (sigma 1e-3 beyond the last value) and a second one just beyond the Rayleigh quotient as
//! Sylvester's certificate. On 200 kernels along a run at n = 100, m = 400 it agreed with
//! this solve to 3.2e-15 (lambda_min) and 1.2e-15 (lambda_max) relative but took 1.01 ms
//! against 1.18 ms: five factorizations and 14 solves a sample cost nearly what the
//! tridiagonal reduction does. At n = 1000, m = 10,000 it was 3x slower (766 against
//! 2269 ms, about 100 steps a sample: the lower end is clustered there too). Power iteration
//! for lambda_max does not help either: the top is not separated (2.57, 2.43, 2.26 at W0 of
//! the benchmark's run, |H|_F = 7.5, so no |H|_F certificate).

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
