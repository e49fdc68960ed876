//! lambda_min and lambda_max of H(t) at every weight-space output time, from one solve.
//!
//! Below [`FAER_FROM`] rows every eigenvalue is computed by nalgebra
//! ([`extreme_eigenvalues`]) and the ends taken from them: the default runs keep their bits.
//! From [`FAER_FROM`] rows faer reduces H(t) to tridiagonal form and the two ends alone are
//! found on it; the QR iteration for all n eigenvalues that this replaces took 60% of the
//! eigenvalue time at n = 100 (perf), and the values agree with it to a few ulps of |H|.
//! The ends ([`crate::linalg::faer_extreme_eigenvalues`]) are those of bisection on the
//! Sturm counts ([`crate::linalg::bisection_extreme_eigenvalues`], the oracle of the
//! tests), bit for bit, found by multisection: bisection
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
use std::collections::VecDeque;
use std::sync::mpsc;

use crate::linalg::{faer_extreme_eigenvalues, FAER_FROM};
use crate::theory::spectrum::extreme_eigenvalues;

/// (lambda_min, lambda_max) of the kernel H; NaN when H has non-finite entries.
pub fn kernel_extremes(h: &DMatrix<f64>) -> (f64, f64) {
    if h.nrows() < FAER_FROM {
        return extreme_eigenvalues(h);
    }
    faer_extreme_eigenvalues(h)
}

/// [`kernel_extremes`] of a run's sequence of kernels, solved on a thread of their own while
/// the run goes on: each new H(t) is sent to a solver thread when it is observed and its ends
/// are taken when the sample is recorded, one output time later, so that the tridiagonal
/// reduction (three quarters of a snapshot at n = 100, perf) runs on the second core while
/// the run integrates the next interval on the first. Kernels are solved and taken in the
/// order they are submitted. A kernel that is, bit for bit, the one submitted before it is
/// not solved again: H(t) is a function of the activation pattern alone, which along a
/// converging run often stands still between output times (the benchmark's hbf run,
/// n = 100, m = 400, T = 100, 201 samples: 134 of 200 intervals), and then the last ends are
/// its ends (the solve is deterministic).
///
/// The solver thread reduces on itself at every size ([`kernel_extremes`], by
/// [`faer_extreme_eigenvalues`]): a reduction on rayon's pool, waited for by the run's own
/// thread (one of the pool's), could hang a pool of one thread. From about 500 rows faer's
/// parallel reduction, which solved the ends before, rounds in per-thread parts: the ends
/// differ from its by a few ulps (at n = 1000, within 2.8e-14 relative) and no longer depend
/// on the number of threads.
pub struct ExtremesBeside {
    to: mpsc::Sender<DMatrix<f64>>,
    from: mpsc::Receiver<(f64, f64)>,
    /// The kernel submitted last.
    last: Option<DMatrix<f64>>,
    /// Per kernel submitted and not yet taken: whether it went to be solved (else it is, bit
    /// for bit, the one submitted before it, whose ends are its ends).
    queue: VecDeque<bool>,
    /// The ends of the last solved kernel taken.
    ends: (f64, f64),
}

impl ExtremesBeside {
    /// With its solver thread spawned in `scope`; the thread ends when this is dropped.
    pub fn spawn<'scope>(scope: &'scope std::thread::Scope<'scope, '_>) -> ExtremesBeside {
        let (to, kernels) = mpsc::channel::<DMatrix<f64>>();
        let (solved, from) = mpsc::channel();
        scope.spawn(move || {
            for h in kernels {
                if solved.send(kernel_extremes(&h)).is_err() {
                    break;
                }
            }
        });
        ExtremesBeside {
            to,
            from,
            last: None,
            queue: VecDeque::new(),
            ends: (f64::NAN, f64::NAN),
        }
    }

    /// Submits H(t); returns whether it is, bit for bit, the kernel submitted before it: what
    /// probes computed from that one holds for it ([`crate::observe::Sample::same_kernel`]).
    pub fn submit(&mut self, h: &DMatrix<f64>) -> bool {
        if let Some(seen) = &self.last {
            if seen.shape() == h.shape() && same_bits(seen.as_slice(), h.as_slice()) {
                self.queue.push_back(false);
                return true;
            }
        }
        self.to
            .send(h.clone())
            .expect("the solver thread runs while its ExtremesBeside lives");
        match &mut self.last {
            Some(seen) if seen.shape() == h.shape() => seen.copy_from(h),
            last => *last = Some(h.clone()),
        }
        self.queue.push_back(true);
        false
    }

    /// The ends of the oldest kernel submitted and not yet taken, waiting for its solve.
    pub fn take(&mut self) -> (f64, f64) {
        let solved = self
            .queue
            .pop_front()
            .expect("a kernel is taken after it is submitted");
        if solved {
            self.ends = self
                .from
                .recv()
                .expect("the solver thread answers every kernel it is sent");
        }
        self.ends
    }
}

/// Whether a and b hold the same bits, 8 entries at a time without an early exit inside a
/// block, so that the comparison runs in vector registers: the entry-by-entry `==` over
/// nalgebra's iterators took 28 us per n = 100 kernel (perf), 8% of an hbf run's snapshots.
fn same_bits(a: &[f64], b: &[f64]) -> bool {
    const BLOCK: usize = 8;
    let block = |x: &[f64], y: &[f64]| {
        x.iter()
            .zip(y)
            .fold(true, |same, (p, q)| same & (p.to_bits() == q.to_bits()))
    };
    let (head_a, tail_a) = a.split_at(a.len() - a.len() % BLOCK);
    let (head_b, tail_b) = b.split_at(head_a.len().min(b.len()));
    a.len() == b.len()
        && head_a
            .chunks_exact(BLOCK)
            .zip(head_b.chunks_exact(BLOCK))
            .all(|(x, y)| block(x, y))
        && block(tail_a, tail_b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linalg::bisection_extreme_eigenvalues;

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
            assert_eq!((lo, hi), bisection_extreme_eigenvalues(&h), "n = {n}");
            assert!(
                (lo - 0.3).abs() < 1e-13 && (hi - 2.57).abs() < 1e-13,
                "n = {n}"
            );
        }
    }

    /// Submits `h` and takes its ends at once: (ends, whether it repeated the last kernel).
    fn solve(beside: &mut ExtremesBeside, h: &DMatrix<f64>) -> ((f64, f64), bool) {
        let repeated = beside.submit(h);
        (beside.take(), repeated)
    }

    #[test]
    fn a_kernel_seen_last_keeps_its_ends_and_a_new_one_is_solved() {
        std::thread::scope(|scope| {
            let mut ends = ExtremesBeside::spawn(scope);
            let a = with_spectrum(&(0..100).map(|i| 1.0 + i as f64).collect::<Vec<_>>());
            let mut b = a.clone();
            b[(0, 0)] += 1.0;
            for (h, repeat) in [
                (&a, false),
                (&a, true),
                (&b, false),
                (&b, true),
                (&a, false),
            ] {
                assert_eq!(solve(&mut ends, h), (kernel_extremes(h), repeat));
            }
            // A change in the last entry is a change, and so is a zero's sign in the entry
            // past the blocks of 8 (3 x 3: 9 entries).
            let mut c = a.clone();
            c[(99, 99)] = f64::from_bits(a[(99, 99)].to_bits() + 1);
            solve(&mut ends, &a);
            assert_eq!(solve(&mut ends, &c), (kernel_extremes(&c), false));
            let mut z = DMatrix::zeros(3, 3);
            solve(&mut ends, &z);
            z[(2, 2)] = -0.0;
            assert!(!solve(&mut ends, &z).1);
            let small = DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(&[2.0, 5.0]));
            assert_eq!(solve(&mut ends, &small).0, (2.0, 5.0));
        });
    }

    #[test]
    fn ends_taken_one_kernel_late_are_each_kernel_s_in_order_bit_for_bit() {
        let a = with_spectrum(&(0..100).map(|i| 1.0 + i as f64).collect::<Vec<_>>());
        let mut b = a.clone();
        b[(0, 0)] += 1.0;
        let small = DMatrix::from_diagonal(&nalgebra::DVector::from_column_slice(&[2.0, 5.0]));
        let kernels = [&a, &a, &b, &b, &a, &small, &small, &a];
        let repeats = [false, true, false, true, false, false, true, false];
        std::thread::scope(|scope| {
            let mut beside = ExtremesBeside::spawn(scope);
            // Taken one sample late, as a run records them, and the rest at the end.
            let mut got = Vec::new();
            for (k, h) in kernels.iter().enumerate() {
                assert_eq!(beside.submit(h), repeats[k], "kernel {k}");
                if k > 0 {
                    got.push(beside.take());
                }
            }
            got.push(beside.take());
            assert_eq!(got.len(), kernels.len());
            for (k, (ends, h)) in got.iter().zip(kernels).enumerate() {
                let want = kernel_extremes(h);
                assert_eq!(
                    ends.0.to_bits(),
                    want.0.to_bits(),
                    "lambda_min of kernel {k}"
                );
                assert_eq!(
                    ends.1.to_bits(),
                    want.1.to_bits(),
                    "lambda_max of kernel {k}"
                );
            }
            assert_eq!(got[5], (2.0, 5.0));
        });
    }

    #[test]
    fn the_ends_at_500_rows_are_the_spectrum_s() {
        // A spectrum known exactly: 0.5 + i / 7 for i < 500, the reduction on one thread.
        let values: Vec<f64> = (0..500).map(|i| 0.5 + i as f64 / 7.0).collect();
        let big = with_spectrum(&values);
        let (lo, hi) = kernel_extremes(&big);
        let top = values[499];
        assert!(
            (lo - 0.5).abs() < 1e-12 * top,
            "lambda_min {lo} against 0.5"
        );
        assert!(
            (hi - top).abs() < 1e-12 * top,
            "lambda_max {hi} against {top}"
        );
    }

    #[test]
    fn a_kernel_with_non_finite_entries_has_no_ends() {
        let mut h = DMatrix::identity(100, 100);
        h[(3, 5)] = f64::NAN;
        let (lo, hi) = kernel_extremes(&h);
        assert!(lo.is_nan() && hi.is_nan());
    }
}
