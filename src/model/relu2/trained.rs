//! The gradient of the network with a trained output layer (`--train wa`), in the blocks and
//! lanes of the ReLU engine, for every activation (the ReLU too: with a moving, the fused
//! ReLU kernels, which read the model's fixed signs, do not apply).
//!
//! ```text
//! P = [W | a] (m x (d+1)),  u_i = (1/sqrt m) sum_r a_r sigma(z_ri),  z_ri = w_r . x_i
//! grad_{w_r} L = (1/sqrt m) a_r sum_i sigma'(z_ri) Delta_i x_i
//! grad_{a_r} L = (1/sqrt m)     sum_i sigma(z_ri)  Delta_i
//! ```
//! Pass 1 (blocks of neurons in parallel): Z_b = X W_b^T by one GEMM, then in place the
//! block's share of u, a_r sigma'(z_ri) (the slope buffer) and sigma(z_ri) (the value buffer);
//! the shares are added in block order. Pass 2: P_ri = a_r sigma'(z_ri) Delta_i / sqrt m and
//! G_b = P_b X by a second GEMM, and grad a_r = sum_i sigma(z_ri) Delta_i / sqrt m from the
//! values pass 1 kept: sigma is evaluated once, in the pass that gives u.

use super::engine::{sum_blocks, Workspace};
use super::kernels::gemm;
use super::Model;
use crate::model::Activation;
use crate::simd::{Rows, SharedRows};
use nalgebra::{DMatrixView, DMatrixViewMut};
use rayon::prelude::*;

/// A block's slopes and values, both written (pass 1).
type Pair<'a> = (&'a mut [f64], &'a mut [f64]);
/// A block's slopes (turned into P) and values (read) in pass 2.
type ReadPair<'a> = (&'a mut [f64], &'a [f64]);

impl Model {
    /// grad_(W, a) L into `g` (m x (d+1)) at `p` = [W | a]; Delta stays in `ws.delta`.
    pub(super) fn trained_gradient(
        &self,
        p: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
    ) {
        let (n, d, m) = (self.n(), self.d(), self.m());
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert_eq!(p.shape(), (m, d + 1), "[W | a] of another shape");
        assert_eq!(g.shape(), (m, d + 1), "G of another shape");
        let sigma = self.activation;
        let a: Vec<f64> = p.column(d).iter().copied().collect();
        let w = p.columns(0, d);
        let (block, np) = (ws.block, ws.np);
        ws.slopes.resize(m * n, 0.0);
        ws.values.resize(m * n, 0.0);
        let x = &self.data.x;
        let parallel = ws.lanes() > 1;

        let pass1 = |(b, ((zb, vb), u)): (usize, (Pair<'_>, &mut [f64]))| {
            let r0 = b * block;
            let len = zb.len() / n;
            let wb = Rows::of(&w, r0, len);
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
            match sigma {
                Activation::Relu => share(zb, vb, u, ab, |z| Activation::Relu.value_and_slope(z)),
                Activation::Erf => share(zb, vb, u, ab, |z| Activation::Erf.value_and_slope(z)),
                Activation::Gelu => share(zb, vb, u, ab, |z| Activation::Gelu.value_and_slope(z)),
                Activation::Tanh => share(zb, vb, u, ab, |z| Activation::Tanh.value_and_slope(z)),
                Activation::Softplus => {
                    share(zb, vb, u, ab, |z| Activation::Softplus.value_and_slope(z))
                }
                Activation::Sigmoid => {
                    share(zb, vb, u, ab, |z| Activation::Sigmoid.value_and_slope(z))
                }
            }
        };
        if parallel {
            ws.slopes
                .par_chunks_mut(block * n)
                .zip(ws.values.par_chunks_mut(block * n))
                .zip(ws.partial.par_chunks_mut(np))
                .enumerate()
                .for_each(pass1);
        } else {
            ws.slopes
                .chunks_mut(block * n)
                .zip(ws.values.chunks_mut(block * n))
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
        let mut ga = vec![0.0; m];
        let (mut gw, mut g_out) = g.columns_range_pair_mut(0..d, d..d + 1);
        let out = SharedRows::new(&mut gw);
        let pass2 = |(b, ((pb, vb), gab)): (usize, (ReadPair<'_>, &mut [f64]))| {
            let r0 = b * block;
            let len = pb.len() / n;
            for pr in pb.chunks_exact_mut(n) {
                pr.iter_mut().zip(ds).for_each(|(p, di)| *p *= di);
            }
            for (gr, vr) in gab.iter_mut().zip(vb.chunks_exact(n)) {
                *gr = vr.iter().zip(ds).map(|(v, di)| v * di).sum();
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
                .zip(ws.values.par_chunks(block * n))
                .zip(ga.par_chunks_mut(block))
                .enumerate()
                .for_each(pass2);
        } else {
            ws.slopes
                .chunks_mut(block * n)
                .zip(ws.values.chunks(block * n))
                .zip(ga.chunks_mut(block))
                .enumerate()
                .for_each(pass2);
        }
        g_out.column_mut(0).copy_from_slice(&ga);
    }
}

/// In place over a block's pre-activations z (row r of `zb` holds z_r1 .. z_rn): u_i +=
/// a_r sigma(z_ri), z_ri <- a_r sigma'(z_ri) and v_ri <- sigma(z_ri). `u` may be padded past
/// n: the zip stops at n.
#[inline(always)]
fn share(zb: &mut [f64], vb: &mut [f64], u: &mut [f64], a: &[f64], f: impl Fn(f64) -> (f64, f64)) {
    let n = zb.len() / a.len();
    for ((zr, vr), ar) in zb.chunks_exact_mut(n).zip(vb.chunks_exact_mut(n)).zip(a) {
        for ((ui, zi), vi) in u.iter_mut().zip(zr.iter_mut()).zip(vr.iter_mut()) {
            let (value, slope) = f(*zi);
            *ui += ar * value;
            *zi = ar * slope;
            *vi = value;
        }
    }
}
