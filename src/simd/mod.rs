//! SIMD kernels behind a capability token, and the typed views they read and write.
//!
//! The unsafe code of the crate's hot path lives here and in [`avx2`]. Its rules:
//! - a kernel that needs CPU features takes a token ([`Avx2Fma`]) that only runtime detection
//!   makes, so a kernel cannot be reached on a CPU without them;
//! - matrices are passed as [`Rows`] / [`RowsMut`] (a pointer with strides, made from a
//!   borrowed nalgebra view and checked against its shape), never as raw pointers a caller
//!   could get wrong; the kernels' entry points are safe and check the sizes of every slice;
//! - every unsafe block says why it is sound (`// SAFETY:`), also inside `unsafe fn`
//!   (`unsafe_op_in_unsafe_fn` is denied); nothing unsafe is public.
//!
//! The kernels' reasons (tiles, packing, the sign formats) are in [`avx2`]'s docs; the smooth
//! activations' vectorised sigma and sigma' (and why they are hand-written) in [`math`]'s.

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2;
pub(crate) mod bits;
pub(crate) mod math;

use nalgebra::{DMatrixView, DMatrixViewMut};
use std::marker::PhantomData;

/// Proof that this CPU runs AVX2 and FMA instructions, and whether it also runs AVX-512F and
/// POPCNT (`avx512`, which pass 2 then uses; every AVX-512 CPU has POPCNT): made only by
/// [`Avx2Fma::detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Avx2Fma {
    _detected: (),
    avx512: bool,
}

impl Avx2Fma {
    /// The token, if the CPU has AVX2 and FMA (detected at run time, cached by std), with
    /// AVX-512F if the CPU has it too.
    pub(crate) fn detect() -> Option<Avx2Fma> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Some(Avx2Fma {
                    _detected: (),
                    avx512: std::arch::is_x86_feature_detected!("avx512f")
                        && std::arch::is_x86_feature_detected!("popcnt"),
                });
            }
        }
        None
    }

    /// Whether the CPU runs AVX-512F (proved by detection).
    pub(crate) fn avx512(self) -> bool {
        self.avx512
    }

    /// The same token without AVX-512 (the 256-bit kernels, for tests that compare the two).
    #[cfg(test)]
    pub(crate) fn without_avx512(self) -> Avx2Fma {
        Avx2Fma {
            avx512: false,
            ..self
        }
    }
}

/// y = H x with nalgebra's `gemv` bits (alpha 1, beta 0: a product and a sum per term, in
/// column order): the 512-bit kernel where the CPU runs AVX-512F, nalgebra's own elsewhere.
/// The output-space stages' products with H_S (n x n), nine a trial.
pub(crate) fn gemv(
    h: &nalgebra::DMatrix<f64>,
    x: &nalgebra::DVector<f64>,
    y: &mut nalgebra::DVector<f64>,
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = Avx2Fma::detect().filter(|c| c.avx512()) {
        avx2::gemv(cpu, h.as_slice(), h.nrows(), x.as_slice(), y.as_mut_slice());
        return;
    }
    y.gemv(1.0, h, x, 0.0);
}

/// acc_r += (a_r - b_r)^2 for every r, vectorized where the token allows (the sign cache's
/// squared row distances, `crate::model::relu2::engine`).
pub(crate) fn add_squared_differences(cpu: Avx2Fma, acc: &mut [f64], a: &[f64], b: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    avx2::add_squared_differences(cpu, acc, a, b);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = cpu;
        for ((s, a), b) in acc.iter_mut().zip(a).zip(b) {
            let e = a - b;
            *s += e * e;
        }
    }
}

/// (min_i |z_i| scale_i over the i with scale_i > 0, infinity if none; whether any z_i is
/// NaN): the sign cache's margin of a row.
pub(crate) fn scaled_min_abs(cpu: Avx2Fma, z: &[f64], scale: &[f64]) -> (f64, bool) {
    #[cfg(target_arch = "x86_64")]
    return avx2::scaled_min_abs(cpu, z, scale);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = cpu;
        let nan = z.iter().any(|v| v.is_nan());
        let least = z
            .iter()
            .zip(scale)
            .filter(|(_, s)| **s > 0.0)
            .fold(f64::INFINITY, |m, (zi, s)| m.min(zi.abs() * s));
        (least, nan)
    }
}

/// column_i += alpha (+0 + bd_0i bj_0 + bd_1i bj_1 + ...) for the i with row_i != 0, the
/// others untouched (their bits kept): `bd` holds k = `bj.len()` rows of n = `column.len()`,
/// 1 <= k < 8. The terms in nalgebra's `dot` order for k < 8 (no 8-block), a product and a
/// sum each. One column of a slide's rank-k update of H (`crate::dynamics::output_space`).
pub(crate) fn small_column(
    (bd, bj): (&[f64], &[f64]),
    alpha: f64,
    row: &[f64],
    column: &mut [f64],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = Avx2Fma::detect() {
        avx2::small_column(cpu, (bd, bj), alpha, row, column);
        return;
    }
    let n = column.len();
    for (i, (h, r)) in column.iter_mut().zip(row).enumerate() {
        if *r != 0.0 {
            let mut sum = 0.0;
            for (t, b) in bj.iter().enumerate() {
                sum += bd[t * n + i] * b;
            }
            *h += alpha * sum;
        }
    }
}

/// (sum_j row_j delta_j g_j, sum_j |row_j delta_j g_j|), summed in any order, `row` as
/// values or as the 0/1 mask: a slide's Filippov sum and the size that bounds its rounding
/// (`crate::dynamics::output_space`).
pub(crate) fn weighted_sum<T: Into<f64> + Copy>(row: &[T], delta: &[f64], g: &[f64]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = Avx2Fma::detect() {
        return avx2::weighted_sum(cpu, row, delta, g);
    }
    row.iter()
        .zip(delta)
        .zip(g)
        .map(|((r, d), g)| (*r).into() * d * g)
        .fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()))
}

/// `len` rows of a matrix with `cols` columns, read-only, borrowed for `'a`: entry (r, k) at
/// `ptr + r row + k col`.
#[derive(Clone, Copy)]
pub(crate) struct Rows<'a> {
    ptr: *const f64,
    row: isize,
    col: isize,
    len: usize,
    cols: usize,
    _borrow: PhantomData<&'a f64>,
}

impl<'a> Rows<'a> {
    /// Rows `r0 .. r0 + len` of `w`.
    pub(crate) fn of(w: &'a DMatrixView<'_, f64>, r0: usize, len: usize) -> Rows<'a> {
        assert!(
            r0 + len <= w.nrows(),
            "rows {r0}..{} of {}",
            r0 + len,
            w.nrows()
        );
        let (row, col) = w.strides();
        Rows {
            // SAFETY: r0 <= nrows, so the offset stays inside (or one past) W's storage.
            ptr: unsafe { w.as_ptr().add(r0 * row) },
            row: row as isize,
            col: col as isize,
            len,
            cols: w.ncols(),
            _borrow: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Entry (r, k).
    pub(crate) fn get(&self, r: usize, k: usize) -> f64 {
        assert!(
            r < self.len && k < self.cols,
            "({r}, {k}) outside {} x {}",
            self.len,
            self.cols
        );
        // SAFETY: (r, k) is inside the rows this view was made from, borrowed for 'a.
        unsafe {
            *self
                .ptr
                .offset(r as isize * self.row + k as isize * self.col)
        }
    }

    /// (pointer, row stride, column stride), for a GEMM or a kernel that reads `len x cols`.
    pub(crate) fn raw(&self) -> (*const f64, isize, isize) {
        (self.ptr, self.row, self.col)
    }
}

/// `len` rows of a matrix with `cols` columns, written by one owner for `'a`.
pub(crate) struct RowsMut<'a> {
    ptr: *mut f64,
    row: isize,
    col: isize,
    len: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut f64>,
}

impl RowsMut<'_> {
    /// The same rows, borrowed from this view for a shorter time.
    pub(crate) fn reborrow(&mut self) -> RowsMut<'_> {
        RowsMut {
            ptr: self.ptr,
            row: self.row,
            col: self.col,
            len: self.len,
            cols: self.cols,
            _borrow: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// Row r += c y, y a row of `cols` values given by `y(k)`.
    pub(crate) fn add_scaled(&mut self, r: usize, c: f64, y: impl Fn(usize) -> f64) {
        assert!(r < self.len, "row {r} of {}", self.len);
        for k in 0..self.cols {
            // SAFETY: (r, k) is inside these rows, which this view alone writes for its life.
            unsafe {
                *self
                    .ptr
                    .offset(r as isize * self.row + k as isize * self.col) += c * y(k)
            };
        }
    }

    /// (pointer, row stride, column stride), for a GEMM or a kernel that writes `len x cols`.
    pub(crate) fn raw(&mut self) -> (*mut f64, isize, isize) {
        (self.ptr, self.row, self.col)
    }
}

/// A matrix whose disjoint row ranges parallel lanes write, borrowed mutably for `'a`.
#[derive(Clone, Copy)]
pub(crate) struct SharedRows<'a> {
    ptr: *mut f64,
    row: isize,
    col: isize,
    rows: usize,
    cols: usize,
    _borrow: PhantomData<&'a mut f64>,
}

// SAFETY: a SharedRows only hands out rows through `rows_mut`, whose contract is that no two
// live views overlap; the matrix is borrowed mutably for the whole parallel section.
unsafe impl Send for SharedRows<'_> {}
// SAFETY: as for Send: shared use only reads the pointer and strides.
unsafe impl Sync for SharedRows<'_> {}

impl<'a> SharedRows<'a> {
    pub(crate) fn new(g: &'a mut DMatrixViewMut<'_, f64>) -> SharedRows<'a> {
        let (row, col) = g.strides();
        SharedRows {
            ptr: g.as_mut_ptr(),
            row: row as isize,
            col: col as isize,
            rows: g.nrows(),
            cols: g.ncols(),
            _borrow: PhantomData,
        }
    }

    /// Rows `r0 .. r0 + len`, to write.
    ///
    /// # Safety
    /// No other view of these rows may be alive while this one is.
    pub(crate) unsafe fn rows_mut(&self, r0: usize, len: usize) -> RowsMut<'a> {
        assert!(
            r0 + len <= self.rows,
            "rows {r0}..{} of {}",
            r0 + len,
            self.rows
        );
        RowsMut {
            // SAFETY: r0 <= rows, inside (or one past) the matrix.
            ptr: unsafe { self.ptr.offset(r0 as isize * self.row) },
            row: self.row,
            col: self.col,
            len,
            cols: self.cols,
            _borrow: PhantomData,
        }
    }
}

/// X zero-padded for the kernels: samples to `np` (a multiple of 4) column-major, and rows of
/// `dp` (d to a multiple of 4) row-major.
#[derive(Clone, Debug)]
pub(crate) struct PackedX {
    n: usize,
    np: usize,
    d: usize,
    dp: usize,
    /// np x d, column-major: x_ik at k np + i (zero for i >= n).
    cols: Aligned,
    /// n x dp, row-major: x_ik at i dp + k (zero for k >= d).
    rows: Aligned,
    /// n x dw, row-major with dw = d to a multiple of 8: every row on a 64-byte boundary, so
    /// that a 512-bit load of a row never straddles two cache lines (the sparse pass 2 reads
    /// rows at scattered samples, where half of dp = 20's rows split each load).
    pub(crate) lines: Aligned,
    pub(crate) dw: usize,
}

/// Doubles on a 64-byte boundary, so that the kernels' 32-byte loads of X never straddle two
/// cache lines (malloc aligns to 16 bytes, where every other load of a column would).
#[derive(Clone, Debug)]
pub(crate) struct Aligned(Vec<Line>);

#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([f64; 8]);

impl Aligned {
    fn zeros(len: usize) -> Aligned {
        Aligned(vec![Line([0.0; 8]); len.div_ceil(8)])
    }
    fn as_slice(&self) -> &[f64] {
        // SAFETY: Line is 8 f64 with no padding (repr(C), size 64).
        unsafe { std::slice::from_raw_parts(self.0.as_ptr().cast(), 8 * self.0.len()) }
    }
    /// The first double, for the kernels' pointer walks (within `as_slice().len()`).
    pub(crate) fn as_ptr(&self) -> *const f64 {
        self.0.as_ptr().cast()
    }
    fn as_mut_slice(&mut self) -> &mut [f64] {
        // SAFETY: as above, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), 8 * self.0.len()) }
    }
}

impl PackedX {
    /// Pack X (n x d, column-major as nalgebra stores it).
    pub(crate) fn new(x: &nalgebra::DMatrix<f64>) -> PackedX {
        let (n, d) = x.shape();
        let (np, dp) = (n.next_multiple_of(4), d.next_multiple_of(4));
        let dw = d.next_multiple_of(8);
        let (mut cols, mut rows) = (Aligned::zeros(np * d), Aligned::zeros(n * dp));
        let mut lines = Aligned::zeros(n * dw);
        let (c, r, l) = (
            cols.as_mut_slice(),
            rows.as_mut_slice(),
            lines.as_mut_slice(),
        );
        for k in 0..d {
            for i in 0..n {
                c[k * np + i] = x[(i, k)];
                r[i * dp + k] = x[(i, k)];
                l[i * dw + k] = x[(i, k)];
            }
        }
        PackedX {
            n,
            np,
            d,
            dp,
            cols,
            rows,
            lines,
            dw,
        }
    }

    /// (n, d) of the packed X.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.n, self.d)
    }

    /// signs_i = 1[w . x_i >= 0] for a row w (d values) and the samples i of `at` (those
    /// from n on skipped), w . x_i summed as [`PackedX::dot`] sums it (the kernel's bits
    /// where w = w_r), from X's row-major copy; FMA instructions where the token allows.
    pub(crate) fn signs_at(&self, cpu: Avx2Fma, w: &[f64], at: &[u32], signs: &mut [u8]) {
        assert!(
            w.len() == self.d && signs.len() == self.n,
            "row of another shape"
        );
        let rows = self.rows.as_slice();
        let (n, dp, d) = (self.n, self.dp, self.d);
        let samples = at
            .iter()
            .filter_map(|&i| usize::try_from(i).ok().filter(|&i| i < n));
        #[cfg(target_arch = "x86_64")]
        for i in samples {
            let z = avx2::dot_fma(cpu, w, &rows[i * dp..i * dp + d]);
            signs[i] = u8::from(z >= 0.0);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = cpu;
            for i in samples {
                let x = &rows[i * dp..i * dp + d];
                let z = w
                    .iter()
                    .zip(x)
                    .fold(0.0f64, |z, (wk, xk)| wk.mul_add(*xk, z));
                signs[i] = u8::from(z >= 0.0);
            }
        }
    }

    /// w_r . x_i summed as the kernels sum it (k in order, one FMA per term), so that the
    /// value has the same bits as the kernel's z_ri.
    pub(crate) fn dot(&self, w: &Rows, r: usize, i: usize) -> f64 {
        assert!(i < self.n && w.cols() == self.d, "sample {i} of {}", self.n);
        let cols = self.cols.as_slice();
        let mut z = 0.0f64;
        for k in 0..self.d {
            z = w.get(r, k).mul_add(cols[k * self.np + i], z);
        }
        z
    }
}

/// What pass 1 does with a block of pre-activations z_ri = w_r . x_i.
pub(crate) enum Forward<'a> {
    /// Signs into `mask` in the kernel's own format (one byte a sample for the GEMM, 4-bit
    /// groups for the fused kernel: [`Signs`]) and sum_r a_r relu(z_ri) added into `u`.
    Relu {
        mask: &'a mut [u8],
        u: &'a mut [f64],
    },
    /// sum_r a_r S_ri z_ri added into `u`, S the 0/1 `mask` (len x n bytes) of a held pattern.
    Held { mask: &'a [u8], u: &'a mut [f64] },
    /// Sign bytes (len x n) into `mask` only.
    Signs { mask: &'a mut [u8] },
    /// z_ri themselves into `z`, entry (r, i) at r `stride` + i (stride at least np, which
    /// the fused kernel stores 4 samples at a time; the padded samples' z are 0): for the
    /// margins of [`crate::model::relu2::engine`]'s sign cache, with the bits the other modes
    /// take their signs from.
    Values { z: &'a mut [f64], stride: usize },
}

/// A 0/1 sign mask of a block of neurons, neuron-major.
#[derive(Clone, Copy)]
pub(crate) enum Signs<'a> {
    /// One byte per entry (len x n): a held pattern's.
    Bytes(&'a [u8]),
    /// One byte per 4 samples, bit j for sample 4 q + j (len x np/4): what the fused
    /// [`Forward::Relu`] writes, a quarter of the bytes for the plain gradient's round trip
    /// through memory.
    Nibbles(&'a [u8]),
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::DMatrix;

    #[test]
    fn row_views_address_the_rows_of_a_strided_view() {
        let big = DMatrix::from_fn(9, 5, |r, k| (10 * r + k) as f64);
        // Rows 2 .. 8, columns 1 .. 4 of `big`: a view with the parent's column stride.
        let view = big.view((2, 1), (6, 3));
        let rows = Rows::of(&view, 3, 2);
        assert_eq!((rows.len(), rows.cols()), (2, 3));
        for r in 0..2 {
            for k in 0..3 {
                assert_eq!(rows.get(r, k), big[(2 + 3 + r, 1 + k)]);
            }
        }
        let mut g = DMatrix::zeros(4, 3);
        let mut gv = g.as_view_mut();
        let shared = SharedRows::new(&mut gv);
        // SAFETY: the only view of rows 1 .. 3 while it lives.
        let mut two = unsafe { shared.rows_mut(1, 2) };
        two.add_scaled(1, 2.0, |k| k as f64 + 1.0);
        assert_eq!(
            g.row(2).iter().copied().collect::<Vec<_>>(),
            vec![2.0, 4.0, 6.0]
        );
        assert_eq!(g.sum(), 12.0);
    }

    #[test]
    fn packed_dot_is_the_fma_sum_over_k_in_order() {
        let x = DMatrix::from_fn(7, 5, |i, k| ((3 * i + 2 * k) % 7) as f64 / 7.0 - 0.3);
        let w = DMatrix::from_fn(4, 5, |r, k| ((5 * r + k) % 11) as f64 / 11.0 - 0.5);
        let packed = PackedX::new(&x);
        assert_eq!(packed.shape(), (7, 5));
        let view = w.as_view();
        let rows = Rows::of(&view, 0, 4);
        for r in 0..4 {
            for i in 0..7 {
                let expect = (0..5).fold(0.0f64, |z, k| w[(r, k)].mul_add(x[(i, k)], z));
                assert_eq!(packed.dot(&rows, r, i).to_bits(), expect.to_bits());
            }
        }
    }

    /// Pass 2 with 512-bit vectors has the 256-bit kernel's bits (every g_rk summed over i in
    /// order with one FMA per term), for widths with every tail (d = 3, 8, 20, 27: one, two,
    /// three vectors and a second block of columns) and 4 + 2 + 1 neurons; and pass 1's
    /// values are [`PackedX::dot`]'s.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_pass_2_and_pass_1_values_have_the_narrow_bits() {
        let Some(cpu) = Avx2Fma::detect() else {
            return;
        };
        // len: four-row tiles only, one eight-neuron block, and blocks with every tail; n = 13
        // leaves a short last group of 8 samples and d = 27 two groups of columns.
        for (n, len, d) in [
            (13, 7, 3),
            (13, 8, 8),
            (13, 21, 20),
            (13, 37, 27),
            (16, 8, 20),
        ] {
            let x = DMatrix::from_fn(n, d, |i, k| ((3 * i + 2 * k) % 11) as f64 / 7.0 - 0.6);
            let packed = PackedX::new(&x);
            let np = packed.np;
            let ds: Vec<f64> = (0..np)
                .map(|i| if i < n { (i as f64 * 0.37).sin() } else { 0.0 })
                .collect();
            let a: Vec<f64> = (0..len)
                .map(|r| if r % 3 == 0 { -1.0 } else { 1.0 })
                .collect();
            let bytes: Vec<u8> = (0..len * n).map(|k| u8::from(k % 3 != 1)).collect();
            let nibbles: Vec<u8> = (0..len * np / 4).map(|k| (k * 7 % 16) as u8).collect();
            for signs in [Signs::Bytes(&bytes), Signs::Nibbles(&nibbles)] {
                let mut out = Vec::new();
                for token in [cpu, cpu.without_avx512()] {
                    let mut g = DMatrix::from_element(len, d, f64::NAN);
                    let mut gv = g.as_view_mut();
                    let mut p = vec![0.0; avx2::transpose_scratch(np)];
                    let shared = SharedRows::new(&mut gv);
                    // SAFETY: the only view of these rows while it lives.
                    let rows = unsafe { shared.rows_mut(0, len) };
                    avx2::transpose(token, &packed, &ds, &a, signs, rows, &mut p);
                    out.push(g);
                }
                assert!(out[0].iter().all(|v| v.is_finite()), "every entry written");
                let bits = |g: &DMatrix<f64>| g.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&out[0]), bits(&out[1]), "d = {d}");
            }
            let w = DMatrix::from_fn(len, d, |r, k| ((5 * r + k) % 11) as f64 / 9.0 - 0.5);
            let view = w.as_view();
            let mut z = vec![f64::NAN; len * np];
            let mode = Forward::Values {
                z: &mut z,
                stride: np,
            };
            avx2::forward(cpu, &packed, Rows::of(&view, 0, len), &a, mode);
            let rows = Rows::of(&view, 0, len);
            for r in 0..len {
                for i in 0..n {
                    assert_eq!(z[r * np + i].to_bits(), packed.dot(&rows, r, i).to_bits());
                }
            }
        }
    }

    /// A held pattern's pass 2 with 512-bit vectors goes over the active samples only
    /// (`sparse_all`): its bits are the dense sum's, g_rk = sum over every i in order of
    /// fma((a_r S_ri) ds_i, x_ik, .) from +0, for rows all off, all on and mixed, sample counts
    /// across the 16-sample lists' tails (1, 13, 16, 17, 70), widths with every block of
    /// columns (d = 3, 4, 12, 20, 27, 33), four rows side by side (n = 260, 300, 900) and
    /// signed zeros in ds and X. It fails if a left-out term could change a sum, if a row's
    /// terms were reordered or a list lost an entry.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn sparse_pass_2_is_the_dense_sum() {
        let Some(cpu) = Avx2Fma::detect().filter(|c| c.avx512()) else {
            return;
        };
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // The last three past FOUR_ROWS_FROM_BYTES: four rows side by side, and 9 = 4 + 4 + 1.
        let cases = [(1, 3), (13, 20), (16, 4), (17, 12), (70, 27), (40, 33)];
        for (n, d) in cases.into_iter().chain([(300, 20), (900, 5), (260, 33)]) {
            let len = 9;
            let mut x = DMatrix::from_fn(n, d, |_, _| (next() % 2001) as f64 / 1000.0 - 1.0);
            x[(0, d - 1)] = -0.0;
            let packed = PackedX::new(&x);
            let np = packed.np;
            let ds: Vec<f64> = (0..np)
                .map(|i| match (i >= n, i % 7) {
                    (true, _) => 0.0,
                    (false, 3) => -0.0,
                    _ => (next() % 1999) as f64 / 997.0 - 1.0,
                })
                .collect();
            let a: Vec<f64> = (0..len).map(|r| [1.0, -1.0, 0.5][r % 3]).collect();
            let bytes: Vec<u8> = (0..len * n)
                .map(|k| match k / n {
                    0 => 0,
                    1 => 1,
                    _ => u8::from(next() % 3 != 0),
                })
                .collect();
            let mut g = DMatrix::from_element(len, d, f64::NAN);
            let mut gv = g.as_view_mut();
            let mut p = vec![0.0; avx2::transpose_scratch(np)];
            let shared = SharedRows::new(&mut gv);
            // SAFETY: the only view of these rows while it lives.
            let rows = unsafe { shared.rows_mut(0, len) };
            avx2::transpose(cpu, &packed, &ds, &a, Signs::Bytes(&bytes), rows, &mut p);
            for r in 0..len {
                for k in 0..d {
                    let want = (0..n).fold(0.0f64, |acc, i| {
                        let p = a[r] * f64::from(bytes[r * n + i]) * ds[i];
                        p.mul_add(x[(i, k)], acc)
                    });
                    assert_eq!(
                        g[(r, k)].to_bits(),
                        want.to_bits(),
                        "n {n} d {d} ({r}, {k})"
                    );
                }
            }
        }
    }

    /// The 512-bit H x is nalgebra's gemv bit for bit (rows 1 .. 70: every tail and two
    /// row blocks; 600: past `PARALLEL_GEMV`, the panels on rayon's threads; a NaN and an
    /// infinity).
    #[test]
    fn gemv_has_nalgebras_bits() {
        for rows in [1, 5, 8, 13, 64, 70, 600] {
            let cols = rows + 3;
            let mut h =
                DMatrix::from_fn(rows, cols, |i, j| ((7 * i + 3 * j) % 13) as f64 / 3.7 - 1.1);
            let mut x = nalgebra::DVector::from_fn(cols, |j, _| (j as f64 * 0.77).cos());
            if rows > 5 {
                h[(4, 2)] = f64::INFINITY;
                x[1] = f64::NAN;
            }
            let mut ours = nalgebra::DVector::from_element(rows, 7.0);
            gemv(&h, &x, &mut ours);
            let mut theirs = nalgebra::DVector::zeros(rows);
            theirs.gemv(1.0, &h, &x, 0.0);
            let bits =
                |v: &nalgebra::DVector<f64>| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&ours), bits(&theirs), "rows = {rows}");
        }
    }

    /// Pass 1 with 512-bit vectors has the 256-bit kernel's bits in every mode (signs, u,
    /// values), for sample counts with every tail (16-, 8- and 4-sample tiles) and 6 + 1
    /// neurons.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn wide_pass_1_has_the_narrow_bits() {
        let Some(cpu) = Avx2Fma::detect() else {
            return;
        };
        let (d, len) = (7, 7);
        for n in [3, 13, 21, 25, 29] {
            let x = DMatrix::from_fn(n, d, |i, k| ((3 * i + 2 * k) % 11) as f64 / 7.0 - 0.6);
            let packed = PackedX::new(&x);
            let np = packed.np;
            let w = DMatrix::from_fn(len, d, |r, k| ((5 * r + 3 * k) % 13) as f64 / 9.0 - 0.7);
            let view = w.as_view();
            let a: Vec<f64> = (0..len)
                .map(|r| if r % 3 == 0 { -1.0 } else { 1.0 })
                .collect();
            let held: Vec<u8> = (0..len * n).map(|k| u8::from(k % 4 != 1)).collect();
            let run = |token: Avx2Fma| {
                let rows = || Rows::of(&view, 0, len);
                let (mut nibbles, mut u_relu) = (vec![0u8; len * np / 4], vec![0.5; np]);
                let mode = Forward::Relu {
                    mask: &mut nibbles,
                    u: &mut u_relu,
                };
                avx2::forward(token, &packed, rows(), &a, mode);
                let mut u_held = vec![0.25; np];
                let mode = Forward::Held {
                    mask: &held,
                    u: &mut u_held,
                };
                avx2::forward(token, &packed, rows(), &a, mode);
                let mut signs = vec![7u8; len * n];
                avx2::forward(
                    token,
                    &packed,
                    rows(),
                    &a,
                    Forward::Signs { mask: &mut signs },
                );
                let mut z = vec![0.0; len * np];
                let mode = Forward::Values {
                    z: &mut z,
                    stride: np,
                };
                avx2::forward(token, &packed, rows(), &a, mode);
                let bits = |v: &[f64]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
                (nibbles, bits(&u_relu), bits(&u_held), signs, bits(&z))
            };
            assert!(run(cpu) == run(cpu.without_avx512()), "n = {n}");
        }
    }

    /// The sign cache's squared differences are their scalar definition, bit for bit.
    #[test]
    fn sign_cache_helpers_are_their_scalar_definitions() {
        let Some(cpu) = Avx2Fma::detect() else {
            return;
        };
        for len in [0, 1, 4, 7, 100] {
            let a: Vec<f64> = (0..len).map(|k| (k as f64 * 0.61).sin()).collect();
            let b: Vec<f64> = (0..len).map(|k| (k as f64 * 0.17).cos()).collect();
            let mut acc: Vec<f64> = (0..len).map(|k| k as f64 * 0.01).collect();
            let want: Vec<u64> = acc
                .iter()
                .zip(a.iter().zip(&b))
                .map(|(s, (a, b))| (s + (a - b) * (a - b)).to_bits())
                .collect();
            add_squared_differences(cpu, &mut acc, &a, &b);
            assert_eq!(acc.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want);
            let scale: Vec<f64> = (0..len)
                .map(|k| if k % 5 == 3 { 0.0 } else { 1.5 })
                .collect();
            let least = a
                .iter()
                .zip(&scale)
                .filter(|(_, s)| **s > 0.0)
                .fold(f64::INFINITY, |m, (z, s)| m.min(z.abs() * s));
            assert_eq!(scaled_min_abs(cpu, &a, &scale), (least, false), "len {len}");
            if len > 0 {
                let mut z = a.clone();
                z[len - 1] = f64::NAN;
                assert!(
                    scaled_min_abs(cpu, &z, &scale).1,
                    "NaN at the end, len {len}"
                );
            }
        }
    }
}
