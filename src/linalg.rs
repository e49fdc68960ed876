//! Dense symmetric linear algebra through faer (blocked, multithreaded on rayon's pool, pure
//! Rust), with nalgebra's types at the boundary: the rest of the crate, and ode_solvers, keep
//! `DMatrix`/`DVector`.
//!
//! nalgebra's `SymmetricEigen` reduces to tridiagonal form one column at a time (level-2
//! BLAS, one thread): at n = 2000 it took about 6 s per decomposition on the benchmark
//! machine, where faer's blocked reduction and divide-and-conquer take a fraction of a second
//! on two threads. A nalgebra matrix is column-major and contiguous, so faer reads it in place
//! (no copy); the eigenvectors come back in faer's own (possibly padded) storage and are
//! copied once into a `DMatrix`.
//!
//! Below [`FAER_FROM`] rows the decompositions stay with nalgebra: there both take
//! microseconds, and nalgebra keeps the default runs (n = 50) bit for bit what they were. A
//! change of eigen-solver moves lambda0 = lambda_min(Hinf) by an ulp (2.8e-15 relative at
//! the defaults), so heavy ball's friction sqrt(2 lambda0) too, and its adaptive run then
//! ends 1.3e-11 (relative) away on a loss that fell from 32 to 8e-8.
//!
//! Both solvers read only the lower triangle of H.

use faer::{MatMut, MatRef, Side};
use nalgebra::{DMatrix, DVector, SymmetricEigen};

/// Matrices with at least this many rows are decomposed by faer, smaller ones by nalgebra.
pub const FAER_FROM: usize = 100;

/// faer's view of a nalgebra matrix, without a copy (both are column-major, contiguous).
fn view(a: &DMatrix<f64>) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(a.as_slice(), a.nrows(), a.ncols())
}

/// faer's mutable view of a nalgebra matrix, without a copy.
fn view_mut(a: &mut DMatrix<f64>) -> MatMut<'_, f64> {
    let (rows, cols) = a.shape();
    MatMut::from_column_major_slice_mut(a.as_mut_slice(), rows, cols)
}

/// Eigenvalues (ascending) and orthonormal eigenvectors (column k for value k) of a symmetric
/// matrix: faer from [`FAER_FROM`] rows, nalgebra below.
pub fn symmetric_eigen(h: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    if h.nrows() >= FAER_FROM {
        return faer_symmetric_eigen(h);
    }
    let eig = SymmetricEigen::new(h.clone());
    let mut order: Vec<usize> = (0..eig.eigenvalues.len()).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
    let values = DVector::from_iterator(order.len(), order.iter().map(|&k| eig.eigenvalues[k]));
    let vectors = DMatrix::from_fn(h.nrows(), order.len(), |i, k| {
        eig.eigenvectors[(i, order[k])]
    });
    (values, vectors)
}

/// Eigenvalues of a symmetric matrix, ascending: faer from [`FAER_FROM`] rows, nalgebra below.
pub fn symmetric_eigenvalues(h: &DMatrix<f64>) -> Vec<f64> {
    if h.nrows() >= FAER_FROM {
        return faer_symmetric_eigenvalues(h);
    }
    let mut values: Vec<f64> = h.symmetric_eigenvalues().iter().copied().collect();
    values.sort_by(f64::total_cmp);
    values
}

/// [`symmetric_eigen`] by faer at any size. When the QR iteration does not converge (only a
/// matrix with NaN or infinite entries does that), every value and vector entry is NaN.
pub fn faer_symmetric_eigen(h: &DMatrix<f64>) -> (DVector<f64>, DMatrix<f64>) {
    let n = h.nrows();
    assert_eq!(n, h.ncols(), "a symmetric matrix is square");
    match view(h).self_adjoint_eigen(Side::Lower) {
        Ok(eig) => {
            let (u, s) = (eig.U(), eig.S().column_vector());
            let values = DVector::from_fn(n, |k, _| s[k]);
            let vectors = DMatrix::from_fn(n, n, |i, k| u[(i, k)]);
            (values, vectors)
        }
        Err(_) => (
            DVector::from_element(n, f64::NAN),
            DMatrix::from_element(n, n, f64::NAN),
        ),
    }
}

/// [`symmetric_eigenvalues`] by faer at any size (all NaN when the iteration does not
/// converge). Without eigenvectors the reduction costs about (4/3) n^3 flops, a quarter of
/// the full decomposition.
pub fn faer_symmetric_eigenvalues(h: &DMatrix<f64>) -> Vec<f64> {
    let n = h.nrows();
    assert_eq!(n, h.ncols(), "a symmetric matrix is square");
    view(h)
        .self_adjoint_eigenvalues(Side::Lower)
        .unwrap_or_else(|_| vec![f64::NAN; n])
}

/// C = A B (faer's blocked, multithreaded product), written straight into nalgebra's storage.
pub fn matmul(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    assert_eq!(a.ncols(), b.nrows(), "inner dimensions agree");
    let mut c = DMatrix::zeros(a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(
        view_mut(&mut c),
        faer::Accum::Replace,
        view(a),
        view(b),
        1.0,
        faer::get_global_parallelism(),
    );
    c
}

/// C = A B^T, with B read transposed in place.
pub fn matmul_nt(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    assert_eq!(a.ncols(), b.ncols(), "inner dimensions agree");
    let mut c = DMatrix::zeros(a.nrows(), b.nrows());
    faer::linalg::matmul::matmul(
        view_mut(&mut c),
        faer::Accum::Replace,
        view(a),
        view(b).transpose(),
        1.0,
        faer::get_global_parallelism(),
    );
    c
}

/// C = A^T B, with A read transposed in place.
pub fn matmul_tr(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    assert_eq!(a.nrows(), b.nrows(), "inner dimensions agree");
    let mut c = DMatrix::zeros(a.ncols(), b.ncols());
    faer::linalg::matmul::matmul(
        view_mut(&mut c),
        faer::Accum::Replace,
        view(a).transpose(),
        view(b),
        1.0,
        faer::get_global_parallelism(),
    );
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn random_symmetric(n: usize, seed: u64) -> DMatrix<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let a = DMatrix::from_fn(n, n, |_, _| rng.random::<f64>() - 0.5);
        (&a + a.transpose()) / 2.0
    }

    #[test]
    fn eigenpairs_satisfy_h_v_equals_v_lambda_and_v_is_orthonormal() {
        for (n, seed) in [(1, 1), (7, 2), (60, 3), (300, 4)] {
            let h = random_symmetric(n, seed);
            let (values, vectors) = faer_symmetric_eigen(&h);
            let scale = h.norm();
            let residual = (&h * &vectors - &vectors * DMatrix::from_diagonal(&values)).norm();
            assert!(residual < 1e-10 * scale, "n = {n}: {residual:e}");
            let gram = vectors.transpose() * &vectors;
            assert!((gram - DMatrix::identity(n, n)).norm() < 1e-10 * n as f64);
            assert!(values.as_slice().windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn faer_eigenvalues_agree_with_nalgebra_to_rounding() {
        for (n, seed) in [(5, 5), (50, 6), (200, 7)] {
            let h = random_symmetric(n, seed);
            let mut reference: Vec<f64> = h.symmetric_eigenvalues().iter().copied().collect();
            reference.sort_by(f64::total_cmp);
            let (with_vectors, _) = faer_symmetric_eigen(&h);
            let alone = faer_symmetric_eigenvalues(&h);
            let lambda_max = reference.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            for k in 0..n {
                assert!((alone[k] - reference[k]).abs() < 1e-12 * lambda_max * n as f64);
                assert!((with_vectors[k] - reference[k]).abs() < 1e-12 * lambda_max * n as f64);
            }
        }
    }

    #[test]
    fn small_matrices_keep_nalgebra_bit_for_bit_and_large_ones_agree_with_it() {
        let small = random_symmetric(FAER_FROM - 1, 12);
        let mut reference: Vec<f64> = small.symmetric_eigenvalues().iter().copied().collect();
        reference.sort_by(f64::total_cmp);
        assert_eq!(symmetric_eigenvalues(&small), reference);
        assert_eq!(symmetric_eigen(&small).0.as_slice(), &reference[..]);
        let large = random_symmetric(FAER_FROM, 13);
        let (values, vectors) = symmetric_eigen(&large);
        let residual = (&large * &vectors - &vectors * DMatrix::from_diagonal(&values)).norm();
        assert!(residual < 1e-10 * large.norm(), "{residual:e}");
        assert_eq!(
            symmetric_eigenvalues(&large),
            faer_symmetric_eigenvalues(&large)
        );
    }

    #[test]
    fn products_agree_with_nalgebra() {
        let a = random_symmetric(40, 8).columns(0, 13).into_owned();
        let b = random_symmetric(40, 9).columns(0, 17).into_owned();
        let at_b = matmul_tr(&a, &b);
        assert!((&at_b - a.transpose() * &b).norm() < 1e-13 * at_b.norm());
        let c = random_symmetric(13, 10);
        let a_c = matmul(&a, &c);
        assert!((&a_c - &a * &c).norm() < 1e-13 * a_c.norm());
        let a_bt = matmul_nt(&a.transpose(), &b.transpose());
        assert!((&a_bt - a.transpose() * &b).norm() < 1e-13 * a_bt.norm());
    }

    #[test]
    fn a_matrix_with_nan_entries_has_nan_eigenvalues_not_a_panic() {
        let mut h = random_symmetric(6, 11);
        h[(2, 1)] = f64::NAN;
        h[(1, 2)] = f64::NAN;
        let values = faer_symmetric_eigenvalues(&h);
        assert!(values.iter().any(|v| v.is_nan()), "{values:?}");
    }
}
