//! The products of one block of neurons, behind one crate-private trait ([`BlockKernel`]) with
//! two implementations that share the driver of [`super::engine`] (lanes, blocks, the blend
//! correction of held patterns):
//! - [`Gemm`]: matrixmultiply's GEMMs, with the masking as sweeps over Z and P in between
//!   (any CPU);
//! - [`Fused`]: the AVX2/FMA kernels of [`crate::simd::avx2`], reachable only with the
//!   [`Avx2Fma`] token.

use crate::simd::{Avx2Fma, Forward, PackedX, Rows, RowsMut, Signs};
use nalgebra::DMatrix;

/// The two products of a block of neurons (rows of W and G given as typed views).
pub(crate) trait BlockKernel {
    /// Pass 1 over the neurons of `w` (len x d), output weights `a` (len or more): by `mode`,
    /// their signs in the kernel's mask format and/or their share of u (added to).
    fn forward(&mut self, w: Rows<'_>, a: &[f64], mode: Forward<'_>);
    /// z_ri = w_r . x_i of row r of `w`, with the bits pass 1 had (called after `forward` on
    /// the same rows).
    fn preactivation(&self, w: &Rows<'_>, r: usize, i: usize) -> f64;
    /// Pass 2: the rows of G in `g` set to g_r = sum_i a_r S_ri ds_i x_i (`ds` zero-padded
    /// to np).
    fn transpose(&mut self, ds: &[f64], a: &[f64], mask: Signs<'_>, g: RowsMut<'_>);
    /// Pass 2 of two products under one held pattern (`mask`: 0/1 bytes, n a row): the rows
    /// of G in `g[u]` as [`BlockKernel::transpose`] sets them from `ds[u]`, bit for bit.
    fn transpose_pair(&mut self, ds: [&[f64]; 2], a: &[f64], mask: &[u8], g: [RowsMut<'_>; 2]) {
        let [gw, gv] = g;
        self.transpose(ds[0], a, Signs::Bytes(mask), gw);
        self.transpose(ds[1], a, Signs::Bytes(mask), gv);
    }
}

/// C (rows x cols) = A B with A (rows x k) and B (k x cols) given by pointer and strides
/// (row stride, column stride), through matrixmultiply as nalgebra's own GEMM does.
///
/// # Safety
/// Pointers and strides must address valid matrices of these shapes; C must not overlap A or B.
pub(crate) unsafe fn gemm(
    rows: usize,
    k: usize,
    cols: usize,
    a: (*const f64, isize, isize),
    b: (*const f64, isize, isize),
    c: (*mut f64, isize, isize),
) {
    // issue 20: a large product (S^T S of H(0): n^2 m = 4e9 at n = 2000, m = 1000) is split
    // by columns of C over rayon's threads; matrixmultiply sums every entry of C in the same
    // order (k-blocks in turn, one lane per entry) whatever the column range, so the split is
    // bit for bit the one call (`a_column_split_product_is_bit_for_bit_the_single_call`).
    if cols >= 2 && (rows * k).saturating_mul(cols) >= SPLIT_FROM {
        let left = cols / 2;
        // Raw pointers are not Send; the two halves write disjoint columns of C.
        let (a_at, b_at, c_at) = (a.0 as usize, b.0 as usize, c.0 as usize);
        let b_right = b.0.wrapping_offset(left as isize * b.2) as usize;
        let c_right = c.0.wrapping_offset(left as isize * c.2) as usize;
        rayon::join(
            // SAFETY: columns 0..left of B and C, within the caller's matrices.
            || unsafe {
                gemm(
                    rows,
                    k,
                    left,
                    (a_at as *const f64, a.1, a.2),
                    (b_at as *const f64, b.1, b.2),
                    (c_at as *mut f64, c.1, c.2),
                )
            },
            // SAFETY: columns left..cols of B and C, disjoint from the first half's C.
            || unsafe {
                gemm(
                    rows,
                    k,
                    cols - left,
                    (a_at as *const f64, a.1, a.2),
                    (b_right as *const f64, b.1, b.2),
                    (c_right as *mut f64, c.1, c.2),
                )
            },
        );
        return;
    }
    // SAFETY: the caller's contract is matrixmultiply's.
    unsafe {
        matrixmultiply::dgemm(
            rows, k, cols, 1.0, a.0, a.1, a.2, b.0, b.1, b.2, 0.0, c.0, c.1, c.2,
        );
    }
}

/// Products of at least this many multiply-adds are split over rayon's threads by [`gemm`]
/// (far above one block of the gradient engine, whose lanes are parallel already).
const SPLIT_FROM: usize = 1 << 27;

/// matrixmultiply's GEMMs on a lane's block buffer `z` (n x len: Z_b, then P_b). Its masks
/// are one byte a sample.
pub(crate) struct Gemm<'a> {
    pub(crate) x: &'a DMatrix<f64>,
    pub(crate) z: &'a mut [f64],
}

impl BlockKernel for Gemm<'_> {
    fn forward(&mut self, w: Rows<'_>, a: &[f64], mode: Forward<'_>) {
        let (n, d, len) = (self.x.nrows(), self.x.ncols(), w.len());
        assert!(self.z.len() >= n * len && w.cols() == d && a.len() >= len);
        // SAFETY: X is n x d column-major; W_b^T (d x len) is `w` read with its strides
        // swapped; z holds n x len (checked above), and no view overlaps it.
        unsafe {
            let (wb, wr, wc) = w.raw();
            gemm(
                n,
                d,
                len,
                (self.x.as_ptr(), 1, n as isize),
                (wb, wc, wr),
                (self.z.as_mut_ptr(), 1, n as isize),
            );
        }
        let z = &self.z[..len * n];
        match mode {
            Forward::Relu { mask, u } => {
                let rows = z.chunks_exact(n).zip(mask.chunks_exact_mut(n));
                for ((zr, sr), ar) in rows.zip(a) {
                    for ((ui, zi), si) in u.iter_mut().zip(zr).zip(sr.iter_mut()) {
                        *si = u8::from(*zi >= 0.0);
                        *ui += ar * zi.max(0.0);
                    }
                }
            }
            Forward::Held { mask, u } => {
                let rows = z.chunks_exact(n).zip(mask.chunks_exact(n));
                for ((zr, sr), ar) in rows.zip(a) {
                    for ((ui, zi), si) in u.iter_mut().zip(zr).zip(sr) {
                        *ui += ar * f64::from(*si) * zi;
                    }
                }
            }
            Forward::Signs { mask } => {
                for (o, z) in mask.iter_mut().zip(z) {
                    *o = u8::from(*z >= 0.0);
                }
            }
            Forward::Values { z: out, stride } => {
                assert!(stride >= n && out.len() >= len * stride);
                for (o, zr) in out.chunks_mut(stride).zip(z.chunks_exact(n)) {
                    o[..n].copy_from_slice(zr);
                    o[n..].fill(0.0);
                }
            }
        }
    }

    fn preactivation(&self, w: &Rows<'_>, r: usize, i: usize) -> f64 {
        let n = self.x.nrows();
        assert!(r < w.len() && i < n);
        self.z[r * n + i]
    }

    fn transpose(&mut self, ds: &[f64], a: &[f64], mask: Signs<'_>, mut g: RowsMut<'_>) {
        let (n, d, len) = (self.x.nrows(), self.x.ncols(), g.len());
        let Signs::Bytes(sm) = mask else {
            unreachable!("the GEMM kernel's masks are bytes")
        };
        assert!(self.z.len() >= n * len && g.cols() == d && a.len() >= len && ds.len() >= n);
        let pz = &mut self.z[..len * n];
        for ((pr, sr), ar) in pz.chunks_exact_mut(n).zip(sm.chunks_exact(n)).zip(a) {
            for ((pi, si), di) in pr.iter_mut().zip(sr).zip(ds) {
                *pi = ar * f64::from(*si) * di;
            }
        }
        // SAFETY: P_b is len x n with entry (r, i) at r n + i; X is n x d column-major; g
        // addresses len x d rows of G that this view alone writes.
        unsafe {
            gemm(
                len,
                n,
                d,
                (pz.as_ptr(), n as isize, 1),
                (self.x.as_ptr(), 1, n as isize),
                g.raw(),
            );
        }
    }
}

/// The fused AVX2/FMA kernels on the packed X, with a lane's two rows of P as scratch `p`.
/// Their ReLU masks are 4 bits a sample ([`Signs::Nibbles`]).
pub(crate) struct Fused<'a> {
    pub(crate) cpu: Avx2Fma,
    pub(crate) x: &'a PackedX,
    pub(crate) p: &'a mut [f64],
}

impl BlockKernel for Fused<'_> {
    fn forward(&mut self, w: Rows<'_>, a: &[f64], mode: Forward<'_>) {
        #[cfg(target_arch = "x86_64")]
        crate::simd::avx2::forward(self.cpu, self.x, w, a, mode);
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "no AVX2 token off x86-64: {:?}",
            (self.cpu, w.len(), a.len(), mode)
        );
    }

    fn preactivation(&self, w: &Rows<'_>, r: usize, i: usize) -> f64 {
        self.x.dot(w, r, i)
    }

    fn transpose(&mut self, ds: &[f64], a: &[f64], mask: Signs<'_>, g: RowsMut<'_>) {
        #[cfg(target_arch = "x86_64")]
        crate::simd::avx2::transpose(self.cpu, self.x, ds, a, mask, g, self.p);
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("no AVX2 token off x86-64: {:?}", (self.cpu, ds, a, g.len()));
    }

    fn transpose_pair(&mut self, ds: [&[f64]; 2], a: &[f64], mask: &[u8], g: [RowsMut<'_>; 2]) {
        #[cfg(target_arch = "x86_64")]
        crate::simd::avx2::transpose_pair(self.cpu, self.x, ds, a, mask, g, self.p);
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!(
            "no AVX2 token off x86-64: {:?}",
            (self.cpu, ds, a, g[0].len())
        );
    }
}

/// The kernel of a lane, chosen by the workspace: dispatch on a variant, once per block.
pub(crate) enum Block<'a> {
    Gemm(Gemm<'a>),
    Fused(Fused<'a>),
}

impl BlockKernel for Block<'_> {
    fn forward(&mut self, w: Rows<'_>, a: &[f64], mode: Forward<'_>) {
        match self {
            Block::Gemm(k) => k.forward(w, a, mode),
            Block::Fused(k) => k.forward(w, a, mode),
        }
    }
    fn preactivation(&self, w: &Rows<'_>, r: usize, i: usize) -> f64 {
        match self {
            Block::Gemm(k) => k.preactivation(w, r, i),
            Block::Fused(k) => k.preactivation(w, r, i),
        }
    }
    fn transpose(&mut self, ds: &[f64], a: &[f64], mask: Signs<'_>, g: RowsMut<'_>) {
        match self {
            Block::Gemm(k) => k.transpose(ds, a, mask, g),
            Block::Fused(k) => k.transpose(ds, a, mask, g),
        }
    }
    fn transpose_pair(&mut self, ds: [&[f64]; 2], a: &[f64], mask: &[u8], g: [RowsMut<'_>; 2]) {
        match self {
            Block::Gemm(k) => k.transpose_pair(ds, a, mask, g),
            Block::Fused(k) => k.transpose_pair(ds, a, mask, g),
        }
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    #[test]
    fn a_column_split_product_is_bit_for_bit_the_single_call() {
        // Non-integer entries (a smooth activation's slopes), odd sizes, above SPLIT_FROM.
        let (rows, k, cols) = (515, 1031, 263);
        assert!(rows * k * cols >= SPLIT_FROM);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = DMatrix::from_fn(rows, k, |_, _| rng.random::<f64>() - 0.3);
        let b = DMatrix::from_fn(k, cols, |_, _| rng.random::<f64>() * 3.0);
        let mut split = DMatrix::zeros(rows, cols);
        // SAFETY: column-major matrices of the stated shapes.
        unsafe {
            gemm(
                rows,
                k,
                cols,
                (a.as_ptr(), 1, rows as isize),
                (b.as_ptr(), 1, k as isize),
                (split.as_mut_ptr(), 1, rows as isize),
            );
        }
        let mut single = DMatrix::zeros(rows, cols);
        // SAFETY: as above.
        unsafe {
            matrixmultiply::dgemm(
                rows,
                k,
                cols,
                1.0,
                a.as_ptr(),
                1,
                rows as isize,
                b.as_ptr(),
                1,
                k as isize,
                0.0,
                single.as_mut_ptr(),
                1,
                rows as isize,
            );
        }
        assert!(split
            .iter()
            .zip(single.iter())
            .all(|(x, y)| x.to_bits() == y.to_bits()));
        assert!((&split - &a * &b).norm() < 1e-10 * split.norm());
    }
}
