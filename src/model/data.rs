//! Training points: x_i (rows of X, n x d) and targets y_i.
//!
//! The theory (Du et al. 2018, Assumption 3.1) puts every x_i on the unit sphere and needs no
//! two of them parallel: then Hinf is positive definite (their Theorem 3.1). [`Data::normalized`]
//! projects onto the sphere, [`Data::parallel_pairs`] names the pairs that break the second
//! condition.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// Two inputs whose cosine is 1 within this: parallel (or repeated) to rounding. Unit vectors
/// that agree to ~1e-6 in a coordinate already have 1 - cos ~ 1e-12.
pub const PARALLEL_TOLERANCE: f64 = 1e-12;

/// Training points: `x` is n x d (one row per sample), `y` has n targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
}

/// A row of X that is zero: it has no direction to project onto the unit sphere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("input row {} (counting from 1) is zero and cannot be normalized", .row + 1)]
pub struct ZeroRow {
    /// 0-based index of the row in X (the reader that built X maps it to a file line).
    pub row: usize,
}

impl Data {
    /// Synthetic data of SPEC.md: x_i = g_i/|g_i| with g_i ~ N(0, I_d), y_i ~ N(0, 1).
    pub fn synthetic(n: usize, d: usize, seed: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = DMatrix::zeros(n, d);
        for i in 0..n {
            for j in 0..d {
                x[(i, j)] = rng.sample::<f64, _>(StandardNormal);
            }
            let norm = x.row(i).norm();
            x.row_mut(i).unscale_mut(norm);
        }
        let y = DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal));
        Data { x, y }
    }

    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }

    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// Largest deviation of |x_i| from 1 (the theory assumes points on the unit sphere).
    pub fn max_norm_deviation(&self) -> f64 {
        (0..self.n())
            .map(|i| (self.x.row(i).norm() - 1.0).abs())
            .fold(0.0, f64::max)
    }

    /// Project every x_i onto the unit sphere (`--normalize`): x_i <- x_i / |x_i|.
    ///
    /// The row is first scaled by a power of two (exact) that brings its largest entry into
    /// [1, 2): the sum of squares of a row at 1e-160 underflows to 0 and one at 1e155
    /// overflows to inf, where a plain `x / |x|` left the first unnormalized and turned the
    /// second into zeros. A zero row has no direction and is refused.
    pub fn normalized(mut self) -> Result<Data, ZeroRow> {
        for i in 0..self.n() {
            let mut row = self.x.row_mut(i);
            let Some(scale) = unit_scale(row.iter().copied()) else {
                return Err(ZeroRow { row: i });
            };
            row.scale_mut(scale);
            let norm = row.norm();
            row.unscale_mut(norm);
        }
        Ok(self)
    }

    /// Pairs (i, j), i < j, of inputs that point the same way: cos(x_i, x_j) = 1 within
    /// [`PARALLEL_TOLERANCE`] (repeated rows, or one a positive multiple of the other), in
    /// increasing (i, j). Each makes Hinf singular: its columns i and j are proportional, as
    /// Hinf_kj = x_k.x_j (pi - theta_kj)/(2 pi) scales with |x_j| at a fixed direction. Opposite
    /// inputs (cos = -1) are not listed: they have Hinf_ij = 0 and leave Hinf regular.
    /// A zero row (no direction) pairs with nothing; it makes Hinf singular on its own.
    pub fn parallel_pairs(&self) -> Vec<(usize, usize)> {
        let n = self.n();
        // Unit rows, scaled as in `normalized`, so that rows at any scale compare.
        let mut units = self.x.clone();
        let mut nonzero = vec![true; n];
        for (i, nz) in nonzero.iter_mut().enumerate() {
            let mut row = units.row_mut(i);
            match unit_scale(row.iter().copied()) {
                Some(s) => {
                    row.scale_mut(s);
                    let norm = row.norm();
                    row.unscale_mut(norm);
                }
                None => *nz = false,
            }
        }
        let cos = &units * units.transpose();
        let mut pairs = Vec::new();
        for i in 0..n {
            for j in i + 1..n {
                if nonzero[i] && nonzero[j] && cos[(i, j)] >= 1.0 - PARALLEL_TOLERANCE {
                    pairs.push((i, j));
                }
            }
        }
        pairs
    }
}

/// A power of two that brings the largest |entry| into [1, 2) (exactly: multiplying by a
/// power of two only moves the exponent), or None when every entry is zero.
fn unit_scale(row: impl Iterator<Item = f64>) -> Option<f64> {
    let max = row.map(f64::abs).fold(0.0, f64::max);
    if max == 0.0 {
        return None;
    }
    // 2^-e for max in [2^e, 2^(e+1)); e is clamped where 2^-e would overflow (subnormal max),
    // which only leaves that row's entries below 1, still far from underflow when squared.
    let e = max.log2().floor().clamp(-1022.0, 1023.0) as i32;
    Some(2f64.powi(-e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_norm(data: &Data, i: usize) -> f64 {
        // Summed in f64 after normalization: entries are O(1).
        data.x.row(i).norm()
    }

    #[test]
    fn normalized_rows_have_norm_one_at_any_scale() {
        let base = [0.3, -1.7, 0.25, 2.0, -0.9];
        let scales = [1e-300, 1e-160, 1e-20, 1.0, 1e154, 1e200, 1e300];
        let x = DMatrix::from_fn(scales.len(), base.len(), |i, j| base[j] * scales[i]);
        let data = Data {
            x,
            y: DVector::zeros(scales.len()),
        };
        let unit = data.clone().normalized().expect("no zero row");
        let direction = {
            let b = DVector::from_column_slice(&base);
            b.clone() / b.norm()
        };
        for (i, s) in scales.iter().enumerate() {
            let norm = row_norm(&unit, i);
            assert!((norm - 1.0).abs() <= 1e-15, "scale {s:e}: |x| = {norm}");
            // Same direction as the unscaled row.
            for j in 0..base.len() {
                let err = (unit.x[(i, j)] - direction[j]).abs();
                assert!(err <= 4e-16, "scale {s:e}, entry {j}: off by {err:e}");
            }
        }
    }

    #[test]
    fn normalizing_refuses_a_zero_row_and_names_it() {
        let x = DMatrix::from_row_slice(3, 2, &[1.0, 2.0, 0.0, 0.0, 3.0, 4.0]);
        let data = Data {
            x,
            y: DVector::zeros(3),
        };
        let err = data.normalized().unwrap_err();
        assert_eq!(err, ZeroRow { row: 1 });
        assert!(err.to_string().contains("row 2"), "{err}");
    }

    #[test]
    fn parallel_pairs_are_repeated_rows_and_positive_multiples_only() {
        // Rows: 0 and 3 repeated, 1 and 4 parallel (4 = 1e200 * 1), 2 opposite to 0, 5 zero,
        // 6 near 0 but at an angle of 1e-3 (1 - cos ~ 5e-7: not parallel).
        let x = DMatrix::from_row_slice(
            7,
            3,
            &[
                0.6, 0.8, 0.0, //
                1.0, 2.0, 3.0, //
                -0.6, -0.8, 0.0, //
                0.6, 0.8, 0.0, //
                1e200, 2e200, 3e200, //
                0.0, 0.0, 0.0, //
                0.6, 0.8, 1e-3, //
            ],
        );
        let data = Data {
            x,
            y: DVector::zeros(7),
        };
        assert_eq!(data.parallel_pairs(), vec![(0, 3), (1, 4)]);
        assert!(Data::synthetic(50, 5, 1).parallel_pairs().is_empty());
    }
}
