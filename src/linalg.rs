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
use nalgebra::{DMatrix, DMatrixView, DVector, Dyn, SymmetricEigen};

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

/// y = A x: faer's product on rayon's threads from [`FAER_FROM`] rows, nalgebra's below (the
/// default runs keep their bits). The exact error-space solution reads its n x n eigenvector
/// matrix twice per output time this way (at n = 2000, nalgebra's single-threaded product
/// was 5% of the run's CPU).
pub fn matvec(a: &DMatrix<f64>, x: &DVector<f64>) -> DVector<f64> {
    assert_eq!(a.ncols(), x.len(), "inner dimensions agree");
    if a.nrows() < FAER_FROM {
        return a * x;
    }
    let mut y = DVector::zeros(a.nrows());
    faer::linalg::matmul::matmul(
        MatMut::from_column_major_slice_mut(y.as_mut_slice(), a.nrows(), 1),
        faer::Accum::Replace,
        view(a),
        MatRef::from_column_major_slice(x.as_slice(), x.len(), 1),
        1.0,
        faer::get_global_parallelism(),
    );
    y
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

/// lambda_min and lambda_max of a symmetric matrix by faer's blocked tridiagonal reduction
/// (Householder, (4/3) n^3 flops) and multisection on the tridiagonal T's Sturm sequence for
/// the two ends alone (Golub and Van Loan, 4th ed., 8.4.2), where [`faer_symmetric_eigenvalues`]
/// runs the QR iteration for all n eigenvalues: at n = 100 that iteration took 60% of the
/// eigenvalue time of a weight-space snapshot (perf). Both are backward stable: the values
/// differ by a few ulps of |H| (relative to lambda_min, about 1e-15 to 1e-14 at the
/// benchmark's sizes; tested below 1e-12). The ends are bisection's
/// ([`bisection_extreme_eigenvalues`]) bit for bit. NaN for a matrix with non-finite entries.
///
/// The reduction runs on the calling thread at every size: a run solves its H(t)'s ends on a
/// thread of their own beside its integration ([`crate::observe::extremes::ExtremesBeside`]),
/// and from about 500 rows faer's parallel reduction sums its columns' products in per-thread
/// parts, whose bits depend on the number of threads (n = 500, 1000, 2000: none of 3
/// matrices the same bits as the sequential reduction on 2 threads; n = 200: all 3).
pub fn faer_extreme_eigenvalues(h: &DMatrix<f64>) -> (f64, f64) {
    extreme_eigenvalues_by(h, tridiagonal_ends)
}

/// [`faer_extreme_eigenvalues`] with the ends found by plain bisection, one end and one
/// Sturm count at a time: the oracle the multisection is tested against (bit for bit), kept
/// for that and for `cargo run --release --example bench -- snapshots`.
pub fn bisection_extreme_eigenvalues(h: &DMatrix<f64>) -> (f64, f64) {
    extreme_eigenvalues_by(h, tridiagonal_extremes)
}

/// The ends of H by `ends` on its tridiagonal form, reduced on the calling thread; NaN for
/// non-finite entries or no rows.
fn extreme_eigenvalues_by(h: &DMatrix<f64>, ends: fn(&[f64], &[f64]) -> (f64, f64)) -> (f64, f64) {
    match tridiagonal_form_on(h, faer::Par::Seq) {
        Some((d, e)) => ends(&d, &e),
        None if h.nrows() == 1 && h[(0, 0)].is_finite() => (h[(0, 0)], h[(0, 0)]),
        None => (f64::NAN, f64::NAN),
    }
}

/// The number of eigenvalues of the symmetric matrix H below x: the Sturm count (the
/// negative pivots of the LDL^T factorization of T - x I) on H's tridiagonal form, by
/// Sylvester's law of inertia, for (4/3) n^3 flops and no QR iteration (at n = 2000
/// 0.4-0.6 s, faer's eigenvalues 0.5-0.6 s, the decomposition 1.2 s). An eigenvalue within
/// rounding of x may be counted on either side. None below 2 rows or for non-finite entries.
pub fn eigenvalues_below(h: &DMatrix<f64>, x: f64) -> Option<usize> {
    let (d, e) = tridiagonal_form(h)?;
    let (_, _, pivmin) = gershgorin_bracket(&d, &e);
    Some(sturm_count(&d, &e, x, pivmin))
}

/// Below this many rows the tridiagonal reduction runs on the calling thread: at n = 100
/// rayon's splitting cost 11% of the reduction's time (the same bits either way).
const SEQUENTIAL_BELOW: usize = 200;

/// The diagonal and off-diagonal of Q^T H Q, H's tridiagonal form by faer's Householder
/// reduction ((4/3) n^3 flops, lower triangle read); None below 2 rows or for non-finite
/// entries.
fn tridiagonal_form(h: &DMatrix<f64>) -> Option<(Vec<f64>, Vec<f64>)> {
    let par = if h.nrows() < SEQUENTIAL_BELOW {
        faer::Par::Seq
    } else {
        faer::get_global_parallelism()
    };
    tridiagonal_form_on(h, par)
}

/// [`tridiagonal_form`] with the given parallelism.
fn tridiagonal_form_on(h: &DMatrix<f64>, par: faer::Par) -> Option<(Vec<f64>, Vec<f64>)> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::tridiag;
    let n = h.nrows();
    assert_eq!(n, h.ncols(), "a symmetric matrix is square");
    if n < 2 || h.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut t = faer::Mat::<f64>::zeros(n, n);
    t.as_mut().copy_from_triangular_lower(view(h));
    let block = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n);
    let mut householder = faer::Mat::<f64>::zeros(block, n - 1);
    let mut buffer = MemBuffer::new(tridiag::tridiag_in_place_scratch::<f64>(
        n,
        par,
        Default::default(),
    ));
    tridiag::tridiag_in_place(
        t.as_mut(),
        householder.as_mut(),
        par,
        MemStack::new(&mut buffer),
        Default::default(),
    );
    let diagonal = (0..n).map(|i| t[(i, i)]).collect();
    let off = (0..n - 1).map(|i| t[(i + 1, i)]).collect();
    Some((diagonal, off))
}

/// The most Lanczos steps [`spd_extreme_eigenvalues`] takes at either end before it gives up
/// (and its caller runs the full reduction).
const SPD_MAX_STEPS: usize = 400;

/// lambda_min and lambda_max of a symmetric positive definite matrix H without its
/// tridiagonal reduction: Lanczos with full reorthogonalization on H for lambda_max, and on
/// H^{-1} (two triangular solves with H's Cholesky factor a step) for lambda_min (shift and
/// invert at 0; Golub and Van Loan, 4th ed., 10.1 and 8.2.3). The lower end of a kernel's
/// spectrum is clustered (H(t)'s took 270-300 plain Lanczos steps at n = 1000), but its
/// relative gaps (lambda_2 - lambda_1)/lambda_1 are those H^{-1}'s top end sees, so the
/// inverse converges there in tens of steps.
///
/// lambda_min is the Rayleigh quotient rho = y^T H y of the Ritz vector y, with H itself, and
/// is accepted when the residual r = |H y - rho y| is below 1e-10 rho (or 64 ulps of
/// lambda_max) and r^2/gap (Kato-Temple, gap to the next Ritz value) below 1e-15 rho:
/// the value is then as accurate as a backward-stable full solve's. lambda_max is the largest
/// Ritz value of H under the same test. The cost: one Cholesky factorization (n^3/3 flops,
/// blocked and multithreaded) and a matrix read per step, against (4/3) n^3 flops of the
/// reduction, two thirds of them level-2 (at n = 2000 the reduction took 2.2 CPU s).
///
/// None when H is not numerically positive definite (the Cholesky factorization fails), has
/// non-finite entries, or either end has not converged in `SPD_MAX_STEPS` (400) steps: the caller
/// falls back to [`faer_symmetric_eigenvalues`].
pub fn spd_extreme_eigenvalues(h: &DMatrix<f64>) -> Option<(f64, f64)> {
    use faer::linalg::solvers::SolveCore;
    let n = h.nrows();
    assert_eq!(n, h.ncols(), "a symmetric matrix is square");
    if n == 0 || h.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let par = faer::get_global_parallelism();
    let hv = view(h);
    let mut product = faer::Mat::<f64>::zeros(n, 1);
    let mut times_h = |x: &[f64], y: &mut [f64]| {
        faer::linalg::matmul::matmul(
            product.as_mut(),
            faer::Accum::Replace,
            hv,
            MatRef::from_column_major_slice(x, n, 1),
            1.0,
            par,
        );
        y.copy_from_slice(product.col_as_slice(0));
    };
    // lambda_max: the Ritz values of H, accepted on Lanczos' own residual beta |s_k|.
    let max = lanczos_largest(n, &mut times_h, &mut |theta, second, _, r| {
        let floor = FLOOR_ULPS * f64::EPSILON * theta.abs();
        let gap = theta - second;
        let bound = if gap > 0.0 { (r * r / gap).min(r) } else { r };
        (r <= (RESIDUAL_TOLERANCE * theta.abs()).max(floor)
            && bound <= (RITZ_TOLERANCE * theta.abs()).max(floor))
        .then_some(theta)
    })?;
    let llt = hv.llt(Side::Lower).ok()?;
    let mut solve = |x: &[f64], y: &mut [f64]| {
        y.copy_from_slice(x);
        llt.solve_in_place_with_conj(faer::Conj::No, MatMut::from_column_major_slice_mut(y, n, 1));
    };
    // lambda_min: the Ritz pairs of H^{-1}, each candidate checked with H.
    let floor = FLOOR_ULPS * f64::EPSILON * max.abs();
    let mut hy = vec![0.0; n];
    let min = lanczos_largest(n, &mut solve, &mut |theta, second, y, lanczos_r| {
        // Not yet in the asymptotic regime: the check with H would only cost a product.
        if lanczos_r > 1e-6 * theta.abs() {
            return None;
        }
        times_h(y, &mut hy);
        let rho: f64 = y.iter().zip(&hy).map(|(a, b)| a * b).sum();
        let r = hy
            .iter()
            .zip(y)
            .map(|(a, b)| (a - rho * b).powi(2))
            .sum::<f64>()
            .sqrt();
        let gap = if second > 0.0 {
            1.0 / second - rho
        } else {
            f64::INFINITY
        };
        let bound = if gap > 0.0 { (r * r / gap).min(r) } else { r };
        (r <= (RESIDUAL_TOLERANCE * rho.abs()).max(floor)
            && bound <= (RITZ_TOLERANCE * rho.abs()).max(floor))
        .then_some(rho)
    })?;
    Some((min, max))
}

/// The convergence test of [`lanczos_largest`]: (theta, the next Ritz value, the unit Ritz
/// vector, Lanczos' residual) to the answer, or None to go on.
type Accept<'a> = dyn FnMut(f64, f64, &[f64], f64) -> Option<f64> + 'a;

/// The largest eigenvalue of a symmetric operator `apply` (y = A x on R^n) by Lanczos with
/// full reorthogonalization from the fixed start [`scatter`]: every few steps the largest
/// Ritz value theta, the next one, the unit Ritz vector and Lanczos' residual beta |s_k| go to
/// `accept`, which returns the answer once it is converged. None after [`SPD_MAX_STEPS`]
/// steps or on non-finite values. An invariant subspace (or k = n) makes the residual 0.
fn lanczos_largest(
    n: usize,
    apply: &mut dyn FnMut(&[f64], &mut [f64]),
    accept: &mut Accept<'_>,
) -> Option<f64> {
    let mut basis = Lanczos::new(scatter(n, n as u64), 64);
    let mut checked = 0;
    loop {
        let (beta, scale) = basis.step(|x, y| apply(x, y));
        let steps = basis.dimension();
        if !scale.is_finite() {
            return None;
        }
        let complete = steps == n || beta <= FLOOR_ULPS * f64::EPSILON * scale;
        // Checks every 4 steps, then every eighth of the steps so far (T's solve is k^3).
        if complete || steps == 1 || steps >= checked + CHECK_EVERY.max(steps / 8) {
            checked = steps;
            let eig = tridiagonal_eigen(&basis.alphas, &basis.betas, steps)?;
            let values = &eig.eigenvalues;
            let mut order: Vec<usize> = (0..steps).collect();
            order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
            let top = order[0];
            let second = order.get(1).map_or(f64::NEG_INFINITY, |&i| values[i]);
            let s = eig.eigenvectors.column(top);
            let r = if complete {
                0.0
            } else {
                beta * s[steps - 1].abs()
            };
            let mut y = basis.basis() * s;
            let ny = y.norm();
            y /= ny;
            if let Some(value) = accept(values[top], second, y.as_slice(), r) {
                return Some(value);
            }
            if complete {
                return None;
            }
        }
        if steps >= SPD_MAX_STEPS.min(n) {
            return None;
        }
    }
}

/// The number of eigenvalues below x of the symmetric tridiagonal matrix with diagonal `d`
/// and off-diagonal `e`: the negative pivots of the LDL^T factorization of T - x I.
fn sturm_count(d: &[f64], e: &[f64], x: f64, pivmin: f64) -> usize {
    let mut count = 0;
    let mut q = 1.0;
    for i in 0..d.len() {
        q = d[i] - x - if i > 0 { e[i - 1] * e[i - 1] / q } else { 0.0 };
        if q.abs() < pivmin {
            q = -pivmin;
        }
        if q < 0.0 {
            count += 1;
        }
    }
    count
}

/// The bracket (lo, hi) of every eigenvalue of the symmetric tridiagonal matrix (diagonal d,
/// off-diagonal e): its Gershgorin interval, widened by 4 n ulps of its largest end; and the
/// smallest pivot magnitude pivmin of its Sturm counts.
fn gershgorin_bracket(d: &[f64], e: &[f64]) -> (f64, f64, f64) {
    let n = d.len();
    let radius = |i: usize| {
        (if i > 0 { e[i - 1].abs() } else { 0.0 }) + (if i + 1 < n { e[i].abs() } else { 0.0 })
    };
    let lo = (0..n)
        .map(|i| d[i] - radius(i))
        .fold(f64::INFINITY, f64::min);
    let hi = (0..n)
        .map(|i| d[i] + radius(i))
        .fold(f64::NEG_INFINITY, f64::max);
    let scale = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
    let pad = 4.0 * n as f64 * f64::EPSILON * scale + f64::MIN_POSITIVE;
    let pivmin = f64::MIN_POSITIVE * e.iter().fold(1.0f64, |a, b| a.max(b * b));
    (lo - pad, hi + pad, pivmin)
}

/// lambda_min and lambda_max of a symmetric tridiagonal matrix by bisection from its
/// Gershgorin interval, down to adjacent floating-point numbers.
fn tridiagonal_extremes(d: &[f64], e: &[f64]) -> (f64, f64) {
    let n = d.len();
    let (lo, hi, pivmin) = gershgorin_bracket(d, e);
    // The smallest x with an eigenvalue below it, and the largest with one above it.
    let bisect = |inside: &dyn Fn(usize) -> bool| {
        let (mut a, mut b) = (lo, hi);
        for _ in 0..2200 {
            let mid = 0.5 * (a + b);
            if mid <= a || mid >= b {
                break;
            }
            if inside(sturm_count(d, e, mid, pivmin)) {
                b = mid;
            } else {
                a = mid;
            }
        }
        0.5 * (a + b)
    };
    let min = bisect(&|below| below >= 1);
    let max = bisect(&|below| below >= n);
    (min, max)
}

/// Shifts per end in one sweep of `sturm_counts`: the two ends' 2 x 4 LDL^T recurrences are
/// independent chains, so a sweep takes about the latency of one (a division a row).
const LANES: usize = 4;

/// The number of eigenvalues below each shift `x[l]` of the symmetric tridiagonal T
/// (diagonal d, off-diagonal e): the negative pivots of the LDL^T factorizations of T - x I,
/// each pivot formed as `sturm_count` forms it (so the counts are the same).
fn sturm_counts(d: &[f64], e: &[f64], x: &[f64; 2 * LANES], pivmin: f64) -> [usize; 2 * LANES] {
    let mut count = [0usize; 2 * LANES];
    let mut q = [1.0f64; 2 * LANES];
    for i in 0..d.len() {
        let e2 = if i > 0 { e[i - 1] * e[i - 1] } else { 0.0 };
        for l in 0..2 * LANES {
            let mut p = d[i] - x[l] - if i > 0 { e2 / q[l] } else { 0.0 };
            if p.abs() < pivmin {
                p = -pivmin;
            }
            count[l] += usize::from(p < 0.0);
            q[l] = p;
        }
    }
    count
}

/// lambda_min and lambda_max of a symmetric tridiagonal matrix (diagonal d, off-diagonal e)
/// by multisection of its Gershgorin interval down to adjacent floating-point numbers: each
/// sweep evaluates the Sturm counts at LANES shifts inside each end's bracket at once, and
/// keeps the two adjacent shifts between which the count reaches 1 (n for lambda_max).
/// The counts are monotone in the shift (Demmel, Dhillon and Ren 1995), so the brackets end
/// at the floats where bisection's end (`tridiagonal_extremes`), and the
/// value is the same midpoint, in about a third of the sweeps (log2(LANES + 1) bits each)
/// with the two ends in one sweep: a sweep is latency-bound (a division a row), and its 2 x
/// LANES independent recurrences run side by side.
fn tridiagonal_ends(d: &[f64], e: &[f64]) -> (f64, f64) {
    let n = d.len();
    let (lo, hi, pivmin) = gershgorin_bracket(d, e);
    // Brackets (a, b): count(a) below the target, count(b) at or above it.
    let mut ends = [(lo, hi), (lo, hi)];
    let targets = [1, n];
    loop {
        let mut x = [0.0; 2 * LANES];
        let mut open = false;
        for (k, &(a, b)) in ends.iter().enumerate() {
            let shifts = &mut x[k * LANES..(k + 1) * LANES];
            let mid = 0.5 * (a + b);
            if mid <= a || mid >= b {
                // Adjacent: nothing left in this bracket (its shifts are unused).
                shifts.fill(a);
                continue;
            }
            open = true;
            let width = b - a;
            for (j, s) in shifts.iter_mut().enumerate() {
                let at = a + width * ((j + 1) as f64 / (LANES + 1) as f64);
                *s = at.clamp(a, b);
            }
            // Too close for distinct interior shifts: bisect.
            if shifts.windows(2).any(|w| w[0] >= w[1]) || shifts[0] <= a || shifts[LANES - 1] >= b {
                shifts.fill(mid);
            }
        }
        if !open {
            break;
        }
        let counts = sturm_counts(d, e, &x, pivmin);
        for (k, end) in ends.iter_mut().enumerate() {
            let (a, b) = *end;
            let mid = 0.5 * (a + b);
            if mid <= a || mid >= b {
                continue;
            }
            let (mut na, mut nb) = (a, b);
            for j in 0..LANES {
                let s = x[k * LANES + j];
                if counts[k * LANES + j] >= targets[k] {
                    nb = nb.min(s);
                } else {
                    na = na.max(s);
                }
            }
            *end = (na, nb);
        }
    }
    let mid = |(a, b): (f64, f64)| 0.5 * (a + b);
    (mid(ends[0]), mid(ends[1]))
}

/// The extreme eigenpairs of a symmetric matrix, by [`lanczos_extremes`].
#[derive(Clone, Debug)]
pub struct Extremes {
    /// lambda_min and lambda_max.
    pub min: f64,
    pub max: f64,
    /// Unit eigenvectors of lambda_min and lambda_max: the warm start of the next call.
    pub v_min: DVector<f64>,
    pub v_max: DVector<f64>,
    /// Lanczos steps taken (products H q).
    pub steps: usize,
}

/// Ritz values whose Kato-Temple bound r^2/gap is below this share of |lambda| (or of
/// [`FLOOR_ULPS`] ulps of |H| when lambda is that small) count as converged. A full
/// decomposition is itself backward stable only to some ulps of |H|.
const RITZ_TOLERANCE: f64 = 1e-15;
/// The absolute floor of the convergence test, in ulps of the largest |eigenvalue|.
const FLOOR_ULPS: f64 = 64.0;
/// The residual of a converged Ritz pair is at most this share of |lambda| (or the floor).
const RESIDUAL_TOLERANCE: f64 = 1e-10;
/// The tridiagonal matrix is solved after every this many steps.
const CHECK_EVERY: usize = 4;

/// A fixed vector with a component along every direction in general position: entries
/// from a 64-bit linear congruential sequence in [-1, 1] (a deterministic start, so runs
/// repeat bit for bit).
fn scatter(n: usize, salt: u64) -> Vec<f64> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// lambda_min and lambda_max of a symmetric matrix H (and their eigenvectors) by Lanczos
/// with full reorthogonalization (Golub and Van Loan, Matrix Computations, 4th ed., 10.1 and
/// 10.3): the Krylov basis q_1, q_2, ... of H from a start q_1, the tridiagonal
/// T_k = Q_k^T H Q_k, whose extreme eigenvalues theta converge to H's from inside. With r
/// the residual |H y - theta y| = beta_k |s_k| of a Ritz pair and gap its distance to the
/// next Ritz value, |lambda - theta| <= r^2 / gap (Kato-Temple); the iteration stops when
/// r is below 1e-10 |theta| and that bound below 1e-15 |theta| (or 64 ulps of |H|) at both
/// ends, or when the basis spans the space (k = n: T_n is H in another basis).
///
/// `warm` (the previous extreme eigenvectors of a nearby matrix, for instance H at the last
/// output time) starts the basis at v_min + v_max, plus a small fixed vector in general
/// position so that no eigenvector is missed: when H moved little, both ends converge in a
/// few steps. Without a warm start the fixed vector alone starts it. An invariant subspace
/// (beta_k = 0) ends the iteration: it holds a component of every eigenspace of a start in
/// general position, so its extremes are H's. Each step costs one
/// product H q (2 n^2 flops) and the reorthogonalization (4 n k), against (4/3) n^3 for the
/// tridiagonal reduction of a full eigenvalue solve. Non-finite entries give NaN.
pub fn lanczos_extremes(
    h: &DMatrix<f64>,
    warm: Option<(&DVector<f64>, &DVector<f64>)>,
) -> Extremes {
    let n = h.nrows();
    assert_eq!(n, h.ncols(), "a symmetric matrix is square");
    let nan = || Extremes {
        min: f64::NAN,
        max: f64::NAN,
        v_min: DVector::from_element(n, f64::NAN),
        v_max: DVector::from_element(n, f64::NAN),
        steps: 0,
    };
    if n == 0 || h.iter().any(|v| !v.is_finite()) {
        return nan();
    }
    let mut next = scatter(n, n as u64);
    if let Some((a, b)) = warm.filter(|(a, b)| a.len() == n && b.len() == n) {
        let spread = 1e-3 / (n as f64).sqrt();
        for (k, s) in next.iter_mut().enumerate() {
            *s = a[k] + b[k] + spread * *s;
        }
    }
    let mut basis = Lanczos::new(next, 32);
    let (pairs, steps) = loop {
        let (beta, scale) = basis.step(|qk, hq| {
            hq.copy_from_slice((h * nalgebra::DVectorView::from_slice(qk, n)).as_slice())
        });
        let steps = basis.dimension();
        // beta = 0: the basis spans an invariant subspace, which holds a component of every
        // eigenspace of the start (a vector in general position): its extremes are H's.
        let complete = steps == n || beta <= FLOOR_ULPS * f64::EPSILON * scale;
        if complete || (steps >= 2 && steps.is_multiple_of(CHECK_EVERY)) {
            if let Some(pairs) = ritz_extremes(&basis.alphas, &basis.betas, beta, complete) {
                break (pairs, steps);
            }
            if complete {
                // T has non-finite eigenvalues: no answer.
                return nan();
            }
        }
    };
    let ((min, s_min), (max, s_max)) = pairs;
    let q = basis.basis();
    Extremes {
        min,
        max,
        v_min: q * DVector::from_column_slice(&s_min),
        v_max: q * DVector::from_column_slice(&s_max),
        steps,
    }
}

/// The state of a Lanczos iteration with full reorthogonalization on R^n, shared by
/// [`lanczos_largest`], [`lanczos_extremes`] and [`Krylov`]: the orthonormal basis
/// Q_k = [q_1 ... q_k] column by column, T_k's diagonal `alphas` and off-diagonal `betas`
/// (beta_1 .. beta_{k-1}), and the next direction before its normalization.
struct Lanczos {
    n: usize,
    q: Vec<f64>,
    next: Vec<f64>,
    alphas: Vec<f64>,
    betas: Vec<f64>,
    /// beta_k = |next| after the last step.
    beta: f64,
    coefficients: Vec<f64>,
}

impl Lanczos {
    /// The iteration from the unit vector `start` / |start| (no step taken yet), with room for
    /// `reserve` basis vectors.
    fn new(mut start: Vec<f64>, reserve: usize) -> Lanczos {
        let n = start.len();
        let norm = start.iter().map(|v| v * v).sum::<f64>().sqrt();
        start.iter_mut().for_each(|v| *v /= norm);
        Lanczos {
            n,
            q: Vec::with_capacity(n * reserve.min(n)),
            next: start,
            alphas: Vec::new(),
            betas: Vec::new(),
            beta: norm,
            coefficients: vec![0.0; n],
        }
    }

    /// The dimension k of the basis.
    fn dimension(&self) -> usize {
        self.alphas.len()
    }

    /// Q_k (n x k).
    fn basis(&self) -> DMatrixView<'_, f64> {
        let k = self.dimension();
        DMatrixView::from_slice(&self.q[..self.n * k], self.n, k)
    }

    /// One step: the next direction, normalized by the last beta, joins the basis as q_k;
    /// next = A q_k (`apply`), alpha_k = q_k . A q_k, and next is taken against the whole
    /// basis, twice (classical Gram-Schmidt repeated: "twice is enough"); in exact arithmetic
    /// only q_k and q_{k-1} have components to remove. Returns (beta_k = |next|, the largest
    /// |entry| of T so far).
    fn step(&mut self, apply: impl FnOnce(&[f64], &mut [f64])) -> (f64, f64) {
        let (n, k) = (self.n, self.dimension());
        if k > 0 {
            self.betas.push(self.beta);
            let beta = self.beta;
            self.next.iter_mut().for_each(|v| *v /= beta);
        }
        self.q.extend_from_slice(&self.next);
        let qk = &self.q[k * n..(k + 1) * n];
        apply(qk, &mut self.next);
        self.alphas
            .push(self.next.iter().zip(qk).map(|(a, b)| a * b).sum());
        for _ in 0..2 {
            orthogonalize(&self.q, n, k + 1, &mut self.next, &mut self.coefficients);
        }
        self.beta = self.next.iter().map(|v| v * v).sum::<f64>().sqrt();
        let scale = self
            .alphas
            .iter()
            .chain(&self.betas)
            .fold(0.0f64, |a, b| a.max(b.abs()));
        (self.beta, scale)
    }
}

/// v -= Q (Q^T v) over the first k columns of the basis Q (n rows).
fn orthogonalize(q: &[f64], n: usize, k: usize, v: &mut [f64], c: &mut [f64]) {
    if k == 0 {
        return;
    }
    let basis = DMatrixView::from_slice(&q[..n * k], n, k);
    let mut cv = nalgebra::DVectorViewMut::from_slice(&mut c[..k], k);
    let vv = nalgebra::DVectorView::from_slice(v, n);
    cv.gemv_tr(1.0, &basis, &vv, 0.0);
    let mut vm = nalgebra::DVectorViewMut::from_slice(v, n);
    vm.gemv(-1.0, &basis, &cv, 1.0);
}

/// The Krylov spaces K_k(H, b) = span{b, H b, ..., H^{k-1} b} of a symmetric H, grown one
/// dimension a step by Lanczos with full reorthogonalization (Golub and Van Loan, Matrix
/// Computations, 4th ed., 10.1): an orthonormal basis Q_k = [q_1 ... q_k] with
/// q_1 = b / |b| and the tridiagonal T_k = Q_k^T H Q_k (diagonal alpha, off-diagonal beta),
/// H Q_k = Q_k T_k + beta_k q_{k+1} e_k^T.
///
/// For a function f, f(H) b is approximated on K_k by |b| Q_k f(T_k) e_1 (Saad 1992,
/// "Analysis of some Krylov subspace approximations to the matrix exponential operator",
/// SIAM J. Numer. Anal. 29; Hochbruck and Lubich 1997, SIAM J. Numer. Anal. 34): exact for
/// every polynomial of degree below k, and for every f once K_k is invariant
/// (beta_k = 0, or k = n). With T_k = S diag(theta) S^T that is
/// Q_k S diag(f(theta)) S^T e_1 |b|: the Ritz pairs (theta, Q_k S) play the eigenpairs.
///
/// A step costs one product H q (2 n^2 flops, faer's on rayon's threads) and the
/// reorthogonalization against the whole basis (4 n k flops, twice).
pub struct Krylov<'a> {
    h: MatRef<'a, f64>,
    lanczos: Lanczos,
    /// |b|.
    norm: f64,
    product: faer::Mat<f64>,
    state: KrylovState,
}

/// Whether a [`Krylov`] space can grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KrylovState {
    /// Another step adds a dimension.
    Growing,
    /// K_k is invariant under H (beta_k at rounding level) or k = n: every f(H) b is exact on it.
    Invariant,
    /// A non-finite value appeared (H or b with NaN or infinite entries), or b = 0.
    Failed,
}

impl<'a> Krylov<'a> {
    /// The space K_0 of H from the start `b` (no step taken yet).
    pub fn new(h: &'a DMatrix<f64>, b: &[f64]) -> Krylov<'a> {
        let n = h.nrows();
        assert_eq!(n, h.ncols(), "a symmetric matrix is square");
        assert_eq!(n, b.len(), "the start has one entry per row");
        let lanczos = Lanczos::new(b.to_vec(), 0);
        let norm = lanczos.beta;
        let state = if norm > 0.0 && norm.is_finite() && n > 0 {
            KrylovState::Growing
        } else {
            KrylovState::Failed
        };
        Krylov {
            h: view(h),
            lanczos,
            norm,
            product: faer::Mat::zeros(n, 1),
            state,
        }
    }

    /// One Lanczos step, K_k to K_{k+1}; nothing once the space is no longer growing.
    pub fn grow(&mut self) -> KrylovState {
        if self.state != KrylovState::Growing {
            return self.state;
        }
        let (h, product) = (self.h, &mut self.product);
        let n = self.lanczos.n;
        let (beta, scale) = self.lanczos.step(|x, y| {
            faer::linalg::matmul::matmul(
                product.as_mut(),
                faer::Accum::Replace,
                h,
                MatRef::from_column_major_slice(x, n, 1),
                1.0,
                faer::get_global_parallelism(),
            );
            y.copy_from_slice(product.col_as_slice(0));
        });
        self.state = if !(scale.is_finite() && beta.is_finite()) {
            KrylovState::Failed
        } else if self.dimension() == n || beta <= FLOOR_ULPS * f64::EPSILON * scale {
            KrylovState::Invariant
        } else {
            KrylovState::Growing
        };
        self.state
    }

    /// The dimension k of the space.
    pub fn dimension(&self) -> usize {
        self.lanczos.dimension()
    }

    /// |b|.
    pub fn start_norm(&self) -> f64 {
        self.norm
    }

    /// T_k = Q_k^T H Q_k.
    pub fn tridiagonal(&self) -> DMatrix<f64> {
        tridiagonal(&self.lanczos.alphas, &self.lanczos.betas, self.dimension())
    }

    /// Q_k S for a k x c matrix S (n x c): Ritz vectors when S holds eigenvectors of T_k.
    pub fn lift(&self, s: &DMatrix<f64>) -> DMatrix<f64> {
        let k = self.dimension();
        assert_eq!(s.nrows(), k, "one row per basis vector");
        let n = self.lanczos.n;
        let mut out = DMatrix::zeros(n, s.ncols());
        faer::linalg::matmul::matmul(
            view_mut(&mut out),
            faer::Accum::Replace,
            MatRef::from_column_major_slice(&self.lanczos.q[..n * k], n, k),
            view(s),
            1.0,
            faer::get_global_parallelism(),
        );
        out
    }
}

/// The k x k symmetric tridiagonal matrix with diagonal `alphas` and off-diagonal `betas`.
fn tridiagonal(alphas: &[f64], betas: &[f64], k: usize) -> DMatrix<f64> {
    DMatrix::from_fn(k, k, |i, j| {
        if i == j {
            alphas[i]
        } else if i + 1 == j {
            betas[i]
        } else if j + 1 == i {
            betas[j]
        } else {
            0.0
        }
    })
}

/// The eigen-decomposition of the k x k symmetric tridiagonal T (diagonal `alphas`,
/// off-diagonal `betas`), or None where an eigenvalue is not finite.
fn tridiagonal_eigen(alphas: &[f64], betas: &[f64], k: usize) -> Option<SymmetricEigen<f64, Dyn>> {
    let eig = SymmetricEigen::new(tridiagonal(alphas, betas, k));
    if eig.eigenvalues.iter().any(|v| !v.is_finite()) {
        return None;
    }
    Some(eig)
}

/// The extreme Ritz pairs of T (diagonal `alphas`, off-diagonal `betas`, the last entry
/// unused) with the residual norm `beta` of the next direction, when both pass the
/// Kato-Temple test (or `complete`: T is H in another basis): ((theta_min, s_min),
/// (theta_max, s_max)), s the eigenvector of T.
#[allow(clippy::type_complexity)]
fn ritz_extremes(
    alphas: &[f64],
    betas: &[f64],
    beta: f64,
    complete: bool,
) -> Option<((f64, Vec<f64>), (f64, Vec<f64>))> {
    let k = alphas.len();
    let eig = tridiagonal_eigen(alphas, betas, k)?;
    let values = &eig.eigenvalues;
    let (mut lo, mut hi) = (0, 0);
    for i in 0..k {
        if values[i] < values[lo] {
            lo = i;
        }
        if values[i] > values[hi] {
            hi = i;
        }
    }
    let scale = values[lo].abs().max(values[hi].abs());
    let floor = FLOOR_ULPS * f64::EPSILON * scale;
    let converged = |i: usize| {
        if complete {
            return true;
        }
        let r = beta * eig.eigenvectors[(k - 1, i)].abs();
        // Distance to the nearest other Ritz value (the gap to the rest of H's spectrum
        // is at least about this once the neighbours have converged too).
        let gap = (0..k)
            .filter(|&j| j != i)
            .map(|j| (values[j] - values[i]).abs())
            .fold(f64::INFINITY, f64::min);
        let bound = if gap.is_finite() && gap > 0.0 {
            (r * r / gap).min(r)
        } else {
            r
        };
        // r small first (the Ritz pair is in its asymptotic regime, and some eigenvalue lies
        // within r), then Kato-Temple's r^2/gap.
        r <= (RESIDUAL_TOLERANCE * values[i].abs()).max(floor)
            && bound <= (RITZ_TOLERANCE * values[i].abs()).max(floor)
    };
    if !(converged(lo) && converged(hi)) {
        return None;
    }
    let column = |i: usize| eig.eigenvectors.column(i).iter().copied().collect();
    Some(((values[lo], column(lo)), (values[hi], column(hi))))
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
        for n in [FAER_FROM - 1, FAER_FROM + 37] {
            let h = random_symmetric(n, 14);
            let x = DVector::from_fn(n, |i, _| (i as f64).sin());
            let (fast, plain) = (matvec(&h, &x), &h * &x);
            if n < FAER_FROM {
                assert_eq!(fast, plain);
            }
            assert!((&fast - &plain).norm() < 1e-13 * plain.norm());
        }
    }

    #[test]
    fn a_matrix_with_nan_entries_has_nan_eigenvalues_not_a_panic() {
        let mut h = random_symmetric(6, 11);
        h[(2, 1)] = f64::NAN;
        h[(1, 2)] = f64::NAN;
        let values = faer_symmetric_eigenvalues(&h);
        assert!(values.iter().any(|v| v.is_nan()), "{values:?}");
    }

    /// A Gram matrix like H(t): (X X^T) o (S^T S) / m of random signs, eigenvalues spread
    /// over three decades with a small, clustered lower end.
    fn gram_like(n: usize, m: usize, seed: u64) -> DMatrix<f64> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let x = DMatrix::from_fn(n, 5, |_, _| rng.random::<f64>() - 0.5);
        let s = DMatrix::from_fn(m, n, |_, _| f64::from(rng.random::<bool>()));
        (&x * x.transpose()).component_mul(&(s.transpose() * &s)) / m as f64
            + DMatrix::identity(n, n) * 1e-3
    }

    #[test]
    fn lanczos_extremes_match_the_full_eigenvalue_solve_to_1e_12_relative() {
        for (h, what) in [
            (random_symmetric(1, 20), "1 x 1"),
            (random_symmetric(2, 21), "2 x 2"),
            (random_symmetric(37, 22), "random 37"),
            (random_symmetric(250, 23), "random 250"),
            (gram_like(150, 400, 24), "gram 150"),
            (gram_like(400, 2000, 25), "gram 400"),
        ] {
            let full = faer_symmetric_eigenvalues(&h);
            let (lo, hi) = (full[0], full[full.len() - 1]);
            let e = lanczos_extremes(&h, None);
            assert!(
                (e.min - lo).abs() <= 1e-12 * lo.abs().max(1e-3 * hi.abs()),
                "{what}: {} vs {lo}",
                e.min
            );
            assert!(
                (e.max - hi).abs() <= 1e-12 * hi.abs(),
                "{what}: {} vs {hi}",
                e.max
            );
            // The vectors are unit eigenvectors: |H v - lambda v| small.
            for (v, l) in [(&e.v_min, e.min), (&e.v_max, e.max)] {
                assert!((v.norm() - 1.0).abs() < 1e-12, "{what}");
                let r = (&h * v - v * l).norm();
                assert!(r < 1e-9 * hi.abs().max(1.0), "{what}: residual {r:e}");
            }
        }
    }

    #[test]
    fn warm_started_lanczos_follows_a_moving_kernel_in_fewer_steps_to_the_same_values() {
        let (n, m) = (300, 1200);
        let base = gram_like(n, m, 30);
        let bump = random_symmetric(n, 31);
        let mut warm: Option<Extremes> = None;
        let (mut cold_steps, mut warm_steps) = (0, 0);
        for k in 0..6 {
            let h = &base + &bump * (1e-3 * k as f64);
            let full = faer_symmetric_eigenvalues(&h);
            let (lo, hi) = (full[0], full[n - 1]);
            let cold = lanczos_extremes(&h, None);
            let e = lanczos_extremes(&h, warm.as_ref().map(|w| (&w.v_min, &w.v_max)));
            for got in [&cold, &e] {
                assert!(
                    (got.min - lo).abs() <= 1e-12 * lo.abs(),
                    "step {k}: {} vs {lo}",
                    got.min
                );
                assert!(
                    (got.max - hi).abs() <= 1e-12 * hi.abs(),
                    "step {k}: {} vs {hi}",
                    got.max
                );
            }
            if k > 0 {
                cold_steps += cold.steps;
                warm_steps += e.steps;
            }
            warm = Some(e);
        }
        assert!(
            warm_steps < cold_steps,
            "warm {warm_steps} vs cold {cold_steps}"
        );
    }

    #[test]
    fn lanczos_on_a_matrix_with_repeated_eigenvalues_stops_on_the_invariant_subspace_exactly() {
        // diag(1, 2, 2, ..., 2, 5): three distinct values, so the Krylov space of a start in
        // general position has dimension 3.
        let n = 120;
        let mut h = DMatrix::from_diagonal_element(n, n, 2.0);
        h[(0, 0)] = 1.0;
        h[(n - 1, n - 1)] = 5.0;
        let e = lanczos_extremes(&h, None);
        assert!(
            (e.min - 1.0).abs() < 1e-14 && (e.max - 5.0).abs() < 1e-14,
            "{e:?}"
        );
        assert!(e.steps <= 4, "{} steps", e.steps);
        let mut bad = h.clone();
        bad[(3, 3)] = f64::INFINITY;
        assert!(lanczos_extremes(&bad, None).min.is_nan());
    }

    #[test]
    fn spd_extremes_by_inverse_lanczos_match_the_full_solve_to_1e_12_relative() {
        use crate::model::{relu2::arccos, Data};
        for (h, what) in [
            (gram_like(150, 400, 50), "gram 150"),
            (gram_like(400, 2000, 51), "gram 400"),
            (arccos::hinf(&Data::synthetic(300, 5, 52)), "Hinf n 300 d 5"),
            (
                arccos::hinf(&Data::synthetic(700, 20, 53)),
                "Hinf n 700 d 20",
            ),
            (
                arccos::hinf(&Data::synthetic(1000, 3, 54)),
                "Hinf n 1000 d 3",
            ),
        ] {
            let full = faer_symmetric_eigenvalues(&h);
            let (lo, hi) = (full[0], full[full.len() - 1]);
            let (min, max) = spd_extreme_eigenvalues(&h).expect(what);
            // Either solve is backward stable to some ulps of lambda_max only: at d = 3
            // (lambda_max / lambda_min ~ 1e6) the two differ by 1e-18 lambda_max.
            assert!(
                (min - lo).abs() <= 1e-12 * lo.max(1e-3 * hi),
                "{what}: {min} vs {lo} ({:e})",
                (min - lo) / lo
            );
            assert!((max - hi).abs() <= 1e-12 * hi, "{what}: {max} vs {hi}");
        }
        // Not positive definite, or not finite: no answer (the caller runs the full solve).
        assert!(spd_extreme_eigenvalues(&random_symmetric(50, 55)).is_none());
        let mut bad = gram_like(120, 300, 56);
        bad[(4, 4)] = f64::NAN;
        assert!(spd_extreme_eigenvalues(&bad).is_none());
        let diagonal = DMatrix::from_diagonal(&DVector::from_vec(vec![3.0, 1.0, 2.0, 0.5]));
        let (min, max) = spd_extreme_eigenvalues(&diagonal).unwrap();
        assert!((min - 0.5).abs() < 1e-15 && (max - 3.0).abs() < 1e-15);
    }

    #[test]
    fn extremes_by_sturm_counts_match_every_eigenvalue_by_qr_to_1e_13_relative() {
        for (h, what) in [
            (random_symmetric(2, 40), "2 x 2"),
            (random_symmetric(100, 41), "random 100"),
            (random_symmetric(333, 42), "random 333"),
            (gram_like(100, 400, 43), "gram 100"),
            (gram_like(500, 5000, 44), "gram 500"),
        ] {
            let full = faer_symmetric_eigenvalues(&h);
            let (lo, hi) = (full[0], full[full.len() - 1]);
            let (min, max) = faer_extreme_eigenvalues(&h);
            let scale = lo.abs().max(hi.abs());
            assert!(
                (min - lo).abs() <= 1e-13 * lo.abs().max(1e-2 * scale),
                "{what}: {min} vs {lo}"
            );
            assert!(
                (max - hi).abs() <= 1e-13 * hi.abs().max(1e-2 * scale),
                "{what}: {max} vs {hi}"
            );
        }
        let diagonal = DMatrix::from_diagonal(&DVector::from_vec(vec![3.0, -1.0, 2.0, 0.5]));
        assert_eq!(faer_extreme_eigenvalues(&diagonal), (-1.0, 3.0));
        let mut bad = random_symmetric(5, 45);
        bad[(1, 1)] = f64::NAN;
        assert!(faer_extreme_eigenvalues(&bad).0.is_nan());
    }

    #[test]
    fn sequential_ends_are_within_rounding_of_the_parallel_reduction_s() {
        // From about 500 rows faer's parallel reduction rounds in per-thread parts; the ends
        // on the calling thread stay within 1e-13 of its, relative to |H|'s top.
        let h = gram_like(500, 5000, 46);
        let (d, e) = tridiagonal_form(&h).expect("finite");
        let (plo, phi) = tridiagonal_ends(&d, &e);
        let (lo, hi) = faer_extreme_eigenvalues(&h);
        assert!(
            (lo - plo).abs() < 1e-13 * phi && (hi - phi).abs() < 1e-13 * phi,
            "({lo}, {hi}) against ({plo}, {phi})"
        );
    }

    #[test]
    fn the_ends_of_the_discrete_laplacian_are_its_cosines() {
        // tridiag(-1, 2, -1): eigenvalues 2 - 2 cos(k pi / (n + 1)), k = 1..n.
        let n = 120;
        let d = vec![2.0; n];
        let e = vec![-1.0; n - 1];
        let (lo, hi) = tridiagonal_ends(&d, &e);
        assert_eq!(
            (lo, hi),
            tridiagonal_extremes(&d, &e),
            "multisection ends where bisection does"
        );
        let x = std::f64::consts::PI / (n + 1) as f64;
        assert!((lo - (2.0 - 2.0 * x.cos())).abs() < 1e-14, "{lo}");
        assert!((hi - (2.0 + 2.0 * x.cos())).abs() < 1e-14, "{hi}");
    }
}
