//! The gradient of a network with a smooth activation, in the ReLU engine's blocks and lanes.
//!
//! ```text
//! u_i = (1/sqrt m) sum_r a_r sigma(z_ri),   z_ri = w_r . x_i,   Delta = u - y
//! grad_{w_r} L = (1/sqrt m) a_r sum_i sigma'(z_ri) Delta_i x_i
//! ```
//! Pass 1 (blocks of neurons in parallel): Z_b = X W_b^T by one GEMM into the block's rows of
//! the workspace's slope buffer, then in place the block's share of u and a_r sigma'(z_ri);
//! the shares are added in block order (the same bits in any number of threads). Pass 2: in
//! place P_ri = a_r sigma'(z_ri) Delta_i / sqrt m and G_b = P_b X by a second GEMM. Where the
//! ReLU keeps a sign mask between the passes, a smooth activation keeps its slopes (m n values:
//! 0.8 MB at the default size, in cache). Nothing is held: the flow is smooth and any
//! integrator takes it as it is.
//!
//! sigma and sigma' are evaluated four at a time where the workspace holds the AVX2 token
//! (`crate::simd::math`): one libm call per value had been 80% of an erf run's time.

use super::engine::{sum_blocks, Workspace};
use super::kernels::gemm;
use super::Model;
use crate::simd::{math, Rows, SharedRows};
use nalgebra::{DMatrixView, DMatrixViewMut};
use rayon::prelude::*;

impl Model {
    /// grad_W L into `g` for a smooth activation; Delta stays in `ws.delta`.
    pub(super) fn smooth_gradient(
        &self,
        w: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
    ) {
        let (n, d, m) = (self.n(), self.d(), self.m());
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert_eq!(w.shape(), (m, d), "W of another shape");
        assert_eq!(g.shape(), (m, d), "G of another shape");
        let sigma = self.activation;
        let a = self.a.as_slice();
        let (block, np) = (ws.block, ws.np);
        ws.slopes.resize(m * n, 0.0);
        let x = &self.data.x;
        let parallel = ws.lanes() > 1;
        let cpu = ws.cpu;

        let pass1 = |(b, (zb, u)): (usize, (&mut [f64], &mut [f64]))| {
            let r0 = b * block;
            let len = zb.len() / n;
            let wb = Rows::of(w, r0, len);
            // SAFETY: X is n x d column-major; W_b^T (d x len) is `wb` read with its strides
            // swapped; zb holds n x len (entry (i, r) at r n + i) and overlaps neither.
            unsafe {
                let (ptr, wr, wc) = wb.raw();
                gemm(
                    n,
                    d,
                    len,
                    (x.as_ptr(), 1, n as isize),
                    (ptr, wc, wr),
                    (zb.as_mut_ptr(), 1, n as isize),
                );
            }
            u.fill(0.0);
            let ab = &a[r0..r0 + len];
            // sigma and sigma' four at a time where the workspace holds the AVX2 token.
            math::share(sigma, cpu, zb, u, ab);
        };
        if parallel {
            ws.slopes
                .par_chunks_mut(block * n)
                .zip(ws.partial.par_chunks_mut(np))
                .enumerate()
                .for_each(pass1);
        } else {
            ws.slopes
                .chunks_mut(block * n)
                .zip(ws.partial.chunks_mut(np))
                .enumerate()
                .for_each(pass1);
        }
        let blocks = m.div_ceil(block);
        sum_blocks(&ws.partial[..blocks * np], np, &mut ws.delta);
        let scale = 1.0 / (m as f64).sqrt();
        for ((di, si), yi) in ws
            .delta
            .iter_mut()
            .zip(&mut ws.scaled_delta)
            .zip(&self.data.y)
        {
            *di = *di * scale - yi;
            *si = *di * scale;
        }
        let ds = &ws.scaled_delta;
        let out = SharedRows::new(g);
        let pass2 = |(b, pb): (usize, &mut [f64])| {
            let r0 = b * block;
            let len = pb.len() / n;
            for pr in pb.chunks_exact_mut(n) {
                pr.iter_mut().zip(ds).for_each(|(p, di)| *p *= di);
            }
            // SAFETY: blocks are disjoint row ranges, each visited once; this view is the only
            // one of rows r0 .. r0 + len while it lives.
            let mut gb = unsafe { out.rows_mut(r0, len) };
            // SAFETY: P_b is len x n with entry (r, i) at r n + i; X is n x d column-major; gb
            // addresses len x d rows of G that this view alone writes.
            unsafe {
                gemm(
                    len,
                    n,
                    d,
                    (pb.as_ptr(), n as isize, 1),
                    (x.as_ptr(), 1, n as isize),
                    gb.raw(),
                );
            }
        };
        if parallel {
            ws.slopes
                .par_chunks_mut(block * n)
                .enumerate()
                .for_each(pass2);
        } else {
            ws.slopes.chunks_mut(block * n).enumerate().for_each(pass2);
        }
    }
}
