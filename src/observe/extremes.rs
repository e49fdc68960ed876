//! lambda_min and lambda_max of H(t) at every weight-space output time, from one solve.
//!
//! Below [`FAER_FROM`] rows every eigenvalue is computed by nalgebra
//! ([`extreme_eigenvalues`]) and the ends taken from them: the default runs keep their bits.
//! From [`FAER_FROM`] rows faer reduces H(t) to tridiagonal form and the two ends alone are
//! found on it; the QR iteration for all n eigenvalues that this replaces took 60% of the
//! eigenvalue time at n = 100 (perf), and the values agree with it to a few ulps of |H|.
//! The ends are those of bisection on the Sturm counts ([`crate::linalg::faer_extreme_eigenvalues`], the
//! oracle of the tests), bit for bit, found by multisection (`tridiagonal_ends`): bisection
//! to adjacent floats took about 60 sweeps an end, each a chain of n dependent divisions,
//! 40% of the eigenvalue time at n = 100 (130 of 330 us a kernel, load average 6); the two
//! ends' 2 x 4 shifts a sweep run side by side in the time of one and gain 2.3 bits an end,
//! and the ends now take 18-29 us. Of what remains, the reduction is nearly all.
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

#[cfg(test)]
use crate::linalg::faer_extreme_eigenvalues;
use crate::linalg::FAER_FROM;
use crate::theory::spectrum::extreme_eigenvalues;

/// (lambda_min, lambda_max) of the kernel H; NaN when H has non-finite entries.
pub fn kernel_extremes(h: &DMatrix<f64>) -> (f64, f64) {
    if h.nrows() < FAER_FROM {
        return extreme_eigenvalues(h);
    }
    match tridiagonal(h) {
        Some((d, e)) => tridiagonal_ends(&d, &e),
        None if h.nrows() == 1 && h[(0, 0)].is_finite() => (h[(0, 0)], h[(0, 0)]),
        None => (f64::NAN, f64::NAN),
    }
}

/// [`kernel_extremes`] of a sequence of kernels, solving only when the kernel differs from
/// the last one solved: H(t) is a function of the activation pattern alone, which along a
/// converging run often stands still between output times (the benchmark's hbf run,
/// n = 100, m = 400, T = 100, 201 samples: 134 of 200 intervals), and then the last values
/// are the values, bit for bit.
#[derive(Debug, Default)]
pub struct KernelExtremes {
    last: Option<(DMatrix<f64>, (f64, f64))>,
}

impl KernelExtremes {
    /// (lambda_min, lambda_max) of `h`, as [`kernel_extremes`] gives them.
    pub fn of(&mut self, h: &DMatrix<f64>) -> (f64, f64) {
        if let Some((seen, ends)) = &self.last {
            // Entry by entry, so that NaN entries never match (their ends are NaN anyway).
            if seen.shape() == h.shape() && seen.iter().zip(h.iter()).all(|(a, b)| a == b) {
                return *ends;
            }
        }
        let ends = kernel_extremes(h);
        match &mut self.last {
            Some((seen, e)) if seen.shape() == h.shape() => {
                seen.copy_from(h);
                *e = ends;
            }
            last => *last = Some((h.clone(), ends)),
        }
        ends
    }
}

/// Below this many rows the reduction runs on the calling thread: at n = 100 rayon's
/// splitting cost 11% of the reduction's time (the same bits either way).
const SEQUENTIAL_BELOW: usize = 200;

/// The diagonal and off-diagonal of Q^T H Q, H's tridiagonal form by faer's Householder
/// reduction ((4/3) n^3 flops, lower triangle read), as
/// [`crate::linalg::faer_extreme_eigenvalues`] forms it; None below 2 rows or for non-finite
/// entries.
fn tridiagonal(h: &DMatrix<f64>) -> Option<(Vec<f64>, Vec<f64>)> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::tridiag;
    let n = h.nrows();
    assert_eq!(n, h.ncols(), "a symmetric matrix is square");
    if n < 2 || h.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let par = if n < SEQUENTIAL_BELOW {
        faer::Par::Seq
    } else {
        faer::get_global_parallelism()
    };
    let mut t = faer::Mat::<f64>::zeros(n, n);
    t.as_mut()
        .copy_from_triangular_lower(faer::MatRef::from_column_major_slice(h.as_slice(), n, n));
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

/// Shifts per end in one sweep of `sturm_counts`: the two ends' 2 x 4 LDL^T recurrences are
/// independent chains, so a sweep takes about the latency of one (a division a row).
const LANES: usize = 4;

/// The number of eigenvalues below each shift `x[l]` of the symmetric tridiagonal T
/// (diagonal d, off-diagonal e): the negative pivots of the LDL^T factorizations of T - x I,
/// each pivot formed as `linalg`'s bisection forms it (so the counts are the same).
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
/// at the floats where bisection's end ([`crate::linalg::faer_extreme_eigenvalues`]), and the
/// value is the same midpoint, in about a third of the sweeps (log2(LANES + 1) bits each)
/// with the two ends in one sweep: a sweep is latency-bound (a division a row), and its 2 x
/// LANES independent recurrences run side by side.
fn tridiagonal_ends(d: &[f64], e: &[f64]) -> (f64, f64) {
    let n = d.len();
    let radius = |i: usize| {
        (if i > 0 { e[i - 1].abs() } else { 0.0 }) + (if i + 1 < n { e[i].abs() } else { 0.0 })
    };
    let mut lo = (0..n)
        .map(|i| d[i] - radius(i))
        .fold(f64::INFINITY, f64::min);
    let mut hi = (0..n)
        .map(|i| d[i] + radius(i))
        .fold(f64::NEG_INFINITY, f64::max);
    let scale = lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE);
    let pad = 4.0 * n as f64 * f64::EPSILON * scale + f64::MIN_POSITIVE;
    lo -= pad;
    hi += pad;
    let pivmin = f64::MIN_POSITIVE * e.iter().fold(1.0f64, |a, b| a.max(b * b));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric matrix with a clustered lower end: Q diag(values) Q^T for an orthogonal Q
    /// from Householder reflections of fixed vectors.
    fn with_spectrum(values: &[f64]) -> DMatrix<f64> {
        let n = values.len();
        let mut a = DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(values));
        for k in 0..3 {
            let v = nalgebra::DVector::from_fn(n, |i, _| ((i * 37 + k * 11) % 17) as f64 - 8.0);
            let p = DMatrix::identity(n, n) - (&v * v.transpose()) * (2.0 / v.norm_squared());
            a = &p * a * &p;
        }
        a
    }

    #[test]
    fn multisection_ends_where_bisection_ends_bit_for_bit() {
        for n in [100, 131, 160] {
            // A cluster of near-equal values at the bottom, two close ones at the top.
            let values: Vec<f64> = (0..n)
                .map(|i| match i {
                    0..=4 => 0.3 + 1e-9 * i as f64,
                    _ if i == n - 1 => 2.57,
                    _ if i == n - 2 => 2.57 - 1e-12,
                    _ => 0.4 + 2.0 * i as f64 / n as f64,
                })
                .collect();
            let h = with_spectrum(&values);
            let (lo, hi) = kernel_extremes(&h);
            assert_eq!((lo, hi), faer_extreme_eigenvalues(&h), "n = {n}");
            assert!(
                (lo - 0.3).abs() < 1e-13 && (hi - 2.57).abs() < 1e-13,
                "n = {n}"
            );
        }
    }

    #[test]
    fn the_ends_of_the_discrete_laplacian_are_its_cosines() {
        // tridiag(-1, 2, -1): eigenvalues 2 - 2 cos(k pi / (n + 1)), k = 1..n.
        let n = 120;
        let d = vec![2.0; n];
        let e = vec![-1.0; n - 1];
        let (lo, hi) = tridiagonal_ends(&d, &e);
        let x = std::f64::consts::PI / (n + 1) as f64;
        assert!((lo - (2.0 - 2.0 * x.cos())).abs() < 1e-14, "{lo}");
        assert!((hi - (2.0 + 2.0 * x.cos())).abs() < 1e-14, "{hi}");
    }

    #[test]
    fn a_kernel_seen_last_keeps_its_ends_and_a_new_one_is_solved() {
        let mut ends = KernelExtremes::default();
        let a = with_spectrum(&(0..100).map(|i| 1.0 + i as f64).collect::<Vec<_>>());
        let mut b = a.clone();
        b[(0, 0)] += 1.0;
        for h in [&a, &a, &b, &b, &a] {
            assert_eq!(ends.of(h), kernel_extremes(h));
        }
        let small = DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(&[2.0, 5.0]));
        assert_eq!(ends.of(&small), (2.0, 5.0));
    }

    #[test]
    fn a_kernel_with_non_finite_entries_has_no_ends() {
        let mut h = DMatrix::identity(100, 100);
        h[(3, 5)] = f64::NAN;
        let (lo, hi) = kernel_extremes(&h);
        assert!(lo.is_nan() && hi.is_nan());
    }
}
