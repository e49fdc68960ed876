//! The weight-space gradient at speed: neurons in cache-sized blocks, blocks in parallel lanes.
//!
//! ```text
//! u_i = (1/sqrt m) sum_r a_r S_ri z_ri,   z_ri = w_r . x_i,   Delta = u - y
//! grad_{w_r} L = (1/sqrt m) a_r sum_i S_ri Delta_i x_i          (Du et al. 2018, eq. 4)
//! ```
//! with S_ri = 1[z_ri >= 0] (the plain ReLU) or a held [`Pattern`]. Written as matrices this is
//! Z^T = X W^T (n x m), u = (S o Z)^T a / sqrt m, G = P X with P_ri = a_r S_ri Delta_i / sqrt m.
//!
//! Why blocks: at m = 1e5 the m x n matrices Z and P are 80 MB each, so the two GEMMs and the
//! masking between them streamed them through memory four times and ran at half the GEMM rate.
//! Here lanes (a few per thread, taken by rayon's work stealing) walk their neurons in blocks
//! whose Z fits in L2 cache: pass 1 computes the block's Z and its share of u, pass 2 (after the
//! shares are summed in block order, the only synchronization) forms the block's P and
//! multiplies it into the block's rows of G. Only the 0/1 sign mask survives between the passes.
//!
//! Two kernels do a block's products ([`Kernel`]): matrixmultiply's GEMMs with the masking as
//! sweeps in between (any CPU), or the fused kernels of [`crate::fused`] (x86-64 with AVX2 and
//! FMA, chosen where the CPU has them), where Z never leaves the registers, P is built a few rows
//! at a time in L1 cache, and the mask is 4 bits a sample. They agree to rounding (a test holds
//! them to 1e-13).
//!
//! Everything is preallocated in [`Workspace`]: an evaluation allocates nothing.

use super::pattern::{blend_in, Pattern};
use super::Model;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector};
use rayon::prelude::*;

/// Below this many flops (4 n m d) an evaluation runs in one lane: a rayon round trip (a few
/// microseconds) would cost more than the second core gives.
const PARALLEL_FLOPS: usize = 2_000_000;

/// Lanes per thread in a parallel evaluation. More lanes than threads, so that rayon's work
/// stealing gives fewer of them to a core that runs slower: on this benchmark's shared 2-core
/// machine one core at a time often ran at 60% speed for a second or so, and with one lane per
/// thread the slow lane set the pace of both.
pub const LANES_PER_THREAD: usize = 4;

/// Bytes of one block's pre-activations: half of a 512 KB L2, beside the blocks of W and G.
const BLOCK_BYTES: usize = 256 * 1024;

/// Which code computes the two products of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// matrixmultiply's GEMMs, with the masking as sweeps over Z and P in between (any CPU).
    Gemm,
    /// The fused kernels of [`crate::fused`] (x86-64 with AVX2 and FMA).
    Fused,
}

impl Kernel {
    /// The fused kernels where the CPU runs them, else the GEMMs.
    pub fn best() -> Kernel {
        if crate::fused::available() {
            Kernel::Fused
        } else {
            Kernel::Gemm
        }
    }
}

/// One lane's scratch: a block of Z (then P), or two rows of P for the fused kernels, and the
/// sign changes it found.
#[derive(Clone, Debug)]
pub(super) struct Lane {
    rows: std::ops::Range<usize>,
    z: Vec<f64>,
    pub(super) changed: Vec<(usize, usize)>,
}

/// Scratch of gradient evaluations, allocated once per run.
#[derive(Clone, Debug)]
pub struct Workspace {
    pub(super) lanes: Vec<Lane>,
    kernel: Kernel,
    /// Rows per block.
    block: usize,
    /// Sign mask of the last plain (not held) evaluation, neuron-major, `mask_row` bytes a
    /// neuron: n bytes for the GEMMs, np/4 (4 signs a byte) for the fused kernels.
    mask: Vec<u8>,
    mask_row: usize,
    /// Each block's share of u (blocks x np, np = n rounded up to 4 for the fused kernels).
    partial: Vec<f64>,
    np: usize,
    /// Delta of the last evaluation, and Delta / sqrt m (zero-padded to np).
    delta: Vec<f64>,
    scaled_delta: Vec<f64>,
    m: usize,
    n: usize,
}

impl Workspace {
    /// Lanes: [`LANES_PER_THREAD`] per rayon thread when an evaluation is large enough to
    /// share and there is more than one thread, else one.
    pub fn new(m: usize, n: usize, d: usize) -> Workspace {
        let threads = rayon::current_num_threads();
        let lanes = if 4 * n * m * d >= PARALLEL_FLOPS && threads > 1 {
            LANES_PER_THREAD * threads
        } else {
            1
        };
        Workspace::with_lanes(m, n, lanes)
    }

    /// As [`Workspace::new`] with a given number of lanes (benchmarks, tests).
    pub fn with_lanes(m: usize, n: usize, lanes: usize) -> Workspace {
        Workspace::with_kernel(m, n, lanes, Kernel::best())
    }

    /// As [`Workspace::with_lanes`] with a given kernel; [`Kernel::Fused`] falls back to
    /// [`Kernel::Gemm`] on a CPU without AVX2 and FMA.
    pub fn with_kernel(m: usize, n: usize, lanes: usize, kernel: Kernel) -> Workspace {
        let kernel = if crate::fused::available() {
            kernel
        } else {
            Kernel::Gemm
        };
        let np = n.next_multiple_of(4);
        let mask_row = match kernel {
            Kernel::Gemm => n,
            Kernel::Fused => np / 4,
        };
        // Equal blocks (the last may be shorter), chosen from (m, n) alone: the partition is
        // the same in any number of lanes. At least one block per 64 neurons, up to 32, so that
        // there are lanes enough for work stealing to even out a core that runs slower.
        let max_block = (BLOCK_BYTES / 8 / n.max(1)).max(8);
        let blocks = m
            .div_ceil(max_block)
            .max((m / 64).min(32))
            .next_multiple_of(4)
            .min(m.max(1));
        let block = m.div_ceil(blocks).max(1);
        let blocks = m.div_ceil(block).max(1);
        let lanes = lanes.clamp(1, blocks);
        // Lanes hold whole blocks, so that each block's share of u is summed alone and the
        // shares are added in block order: the same bits in any number of lanes or threads.
        let per = blocks.div_ceil(lanes) * block;
        Workspace {
            lanes: (0..lanes)
                .map(|k| Lane {
                    rows: (k * per).min(m)..((k + 1) * per).min(m),
                    z: match kernel {
                        Kernel::Gemm => vec![0.0; block.min(per) * n],
                        Kernel::Fused => vec![0.0; crate::fused::transpose_scratch(np)],
                    },
                    changed: Vec::new(),
                })
                .collect(),
            kernel,
            block,
            mask: vec![0; m * mask_row],
            mask_row,
            partial: vec![0.0; blocks * np],
            np,
            delta: vec![0.0; n],
            scaled_delta: vec![0.0; np],
            m,
            n,
        }
    }

    /// Number of lanes.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// The kernel evaluations run on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }
}

/// A column-major matrix that parallel lanes write in disjoint row ranges.
#[derive(Clone, Copy)]
struct SharedRows {
    ptr: *mut f64,
    stride: usize,
}
// SAFETY: lanes write disjoint rows (Workspace's row ranges do not overlap), and the owner
// of the matrix is borrowed mutably for the whole parallel section.
unsafe impl Send for SharedRows {}
unsafe impl Sync for SharedRows {}

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
    matrixmultiply::dgemm(
        rows, k, cols, 1.0, a.0, a.1, a.2, b.0, b.1, b.2, 0.0, c.0, c.1, c.2,
    );
}

impl Model {
    /// Pre-activations of the neurons `r0 .. r0 + len` into `z` (n x len, neuron-major):
    /// Z_b^T = X W_b^T.
    fn block_preactivations(&self, w: &DMatrixView<f64>, r0: usize, len: usize, z: &mut [f64]) {
        let (n, d) = (self.n(), self.d());
        let x = &self.data.x;
        assert!(z.len() >= n * len && r0 + len <= w.nrows() && w.ncols() == d);
        let (wb, wr, wc) = rows_of(w, r0);
        // SAFETY: X is n x d column-major; W_b^T (d x len) starts at w[(r0, 0)] with row
        // stride wc and column stride wr; z holds n x len.
        unsafe {
            gemm(
                n,
                d,
                len,
                (x.as_ptr(), 1, n as isize),
                (wb, wc, wr),
                (z.as_mut_ptr(), 1, n as isize),
            );
        }
    }

    /// Signs 1[w_r . x_i >= 0] into `out` (neuron-major m x n); with `old`, each lane lists in
    /// its `changed` the (r, i) where they differ from `old`.
    pub(super) fn signs(
        &self,
        w: &DMatrixView<f64>,
        out: &mut [u8],
        old: Option<&[u8]>,
        ws: &mut Workspace,
    ) {
        let n = self.n();
        assert_eq!((ws.m, ws.n), (self.m(), n), "workspace of another shape");
        assert_eq!(w.shape(), (self.m(), self.d()), "W of another shape");
        self.check_packed();
        assert_eq!(out.len(), self.m() * n, "sign buffer of another size");
        assert!(
            old.is_none_or(|o| o.len() == out.len()),
            "old signs of another size"
        );
        let block = ws.block;
        let per = ws.lanes[0].rows.len().max(1);
        let kernel = ws.kernel;
        let work = |(lane, out): (&mut Lane, &mut [u8])| {
            lane.changed.clear();
            let mut r0 = lane.rows.start;
            while r0 < lane.rows.end {
                let len = block.min(lane.rows.end - r0);
                let base = r0 - lane.rows.start;
                let dst = &mut out[base * n..(base + len) * n];
                match kernel {
                    Kernel::Gemm => {
                        self.block_preactivations(w, r0, len, &mut lane.z);
                        for (o, z) in dst.iter_mut().zip(&lane.z[..len * n]) {
                            *o = u8::from(*z >= 0.0);
                        }
                    }
                    // SAFETY: the workspace has the fused kernel only where the CPU runs it;
                    // rows r0 .. r0 + len of W (checked above) are a len x d matrix.
                    Kernel::Fused => unsafe {
                        let mode = crate::fused::Forward::Signs { mask: dst };
                        let a = &self.a.as_slice()[r0..];
                        crate::fused::forward_block(&self.packed, rows_of(w, r0), len, a, mode);
                    },
                }
                if let Some(old) = old {
                    let before = &old[r0 * n..(r0 + len) * n];
                    differences(before, dst, |k| lane.changed.push((r0 + k / n, k % n)));
                }
                r0 += len;
            }
        };
        if ws.lanes.len() == 1 {
            work((&mut ws.lanes[0], out));
        } else {
            ws.lanes
                .par_iter_mut()
                .zip(out.par_chunks_mut(per * n))
                .for_each(work);
        }
    }

    /// grad_W L into `g` (m x d), returning Delta; S is `held` if given, else the ReLU's
    /// 1[w_r . x_i >= 0]. With a held pattern u is linear in W and the flow smooth.
    pub fn gradient_with_pattern(
        &self,
        w: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: Option<&Pattern>,
    ) -> DVector<f64> {
        self.gradient_in_place(w, g, ws, held);
        DVector::from_column_slice(&ws.delta)
    }

    /// [`Model::gradient_with_pattern`] without allocating (Delta stays in the workspace).
    pub fn gradient_in_place(
        &self,
        w: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: Option<&Pattern>,
    ) {
        let m = self.m();
        let scale = 1.0 / (m as f64).sqrt();
        self.forward_pass(w, ws, held);
        sum_blocks(&ws.partial, ws.np, &mut ws.delta);
        for ((di, si), yi) in ws
            .delta
            .iter_mut()
            .zip(&mut ws.scaled_delta)
            .zip(&self.data.y)
        {
            *di = *di * scale - yi;
            *si = *di * scale;
        }
        let ds = std::mem::take(&mut ws.scaled_delta);
        self.transpose_pass(&ds, g, ws, held);
        ws.scaled_delta = ds;
    }

    /// J_S V = (1/sqrt m) (S o (V X^T))^T a into `out` (n): the outputs' velocity (Jacobian of
    /// u under the pattern S) for a direction V (m x d).
    pub fn jvp_held(
        &self,
        v: &DMatrixView<f64>,
        ws: &mut Workspace,
        held: &Pattern,
        out: &mut [f64],
    ) {
        let m = self.m();
        let scale = 1.0 / (m as f64).sqrt();
        self.forward_pass(v, ws, Some(held));
        sum_blocks(&ws.partial, ws.np, out);
        out.iter_mut().for_each(|o| *o *= scale);
    }

    /// J_S^T beta into `g` (m x d): row r is (1/sqrt m) a_r sum_i S_ri beta_i x_i.
    pub fn vjp_held(
        &self,
        beta: &[f64],
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: &Pattern,
    ) {
        let scale = 1.0 / (self.m() as f64).sqrt();
        let mut ds = std::mem::take(&mut ws.scaled_delta);
        ds.iter_mut().zip(beta).for_each(|(d, b)| *d = b * scale);
        self.transpose_pass(&ds, g, ws, Some(held));
        ws.scaled_delta = ds;
    }

    /// Pass 1: each block's share of sum_r a_r S_ri w_r . x_i into `ws.partial` (and the sign
    /// mask into `ws.mask` when S is the ReLU's).
    fn forward_pass(&self, w: &DMatrixView<f64>, ws: &mut Workspace, held: Option<&Pattern>) {
        let (n, d, m) = (self.n(), self.d(), self.m());
        // The GEMMs below go through raw pointers: shapes are checked here, not by nalgebra.
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert_eq!(w.shape(), (m, d), "W of another shape");
        self.check_packed();
        let a = self.a.as_slice();
        let block = ws.block;
        let per = ws.lanes[0].rows.len().max(1);
        let parallel = ws.lanes.len() > 1;
        let (kernel, np, row) = (ws.kernel, ws.np, ws.mask_row);
        // Pass 1: each block's share of u (unscaled), and the sign mask when S is the ReLU's.
        let pass1 = |((lane, mask), partial): ((&mut Lane, &mut [u8]), &mut [f64])| {
            let mut r0 = lane.rows.start;
            for u in partial.chunks_exact_mut(np) {
                if r0 >= lane.rows.end {
                    break;
                }
                u.fill(0.0);
                let len = block.min(lane.rows.end - r0);
                let base = r0 - lane.rows.start;
                let mask = &mut mask[base * row..(base + len) * row];
                if kernel == Kernel::Fused {
                    self.fused_forward(w, r0, len, mask, u, held);
                    r0 += len;
                    continue;
                }
                self.block_preactivations(w, r0, len, &mut lane.z);
                let z = &lane.z[..len * n];
                match held {
                    None => {
                        let sm = mask;
                        let rows = z.chunks_exact(n).zip(sm.chunks_exact_mut(n));
                        for ((zr, sr), ar) in rows.zip(&a[r0..]) {
                            for ((ui, zi), si) in u.iter_mut().zip(zr).zip(sr.iter_mut()) {
                                *si = u8::from(*zi >= 0.0);
                                *ui += ar * zi.max(0.0);
                            }
                        }
                    }
                    Some(p) => {
                        let sm = &p.mask[r0 * n..(r0 + len) * n];
                        let rows = z.chunks_exact(n).zip(sm.chunks_exact(n));
                        for ((zr, sr), ar) in rows.zip(&a[r0..]) {
                            for ((ui, zi), si) in u.iter_mut().zip(zr).zip(sr) {
                                *ui += ar * f64::from(*si) * zi;
                            }
                        }
                        for &(r, i, s) in blend_in(&p.blend, r0..r0 + len) {
                            let old = f64::from(p.mask[r * n + i]);
                            u[i] += a[r] * (s - old) * z[(r - r0) * n + i];
                        }
                    }
                }
                r0 += len;
            }
        };
        let blocks_per_lane = per.div_ceil(block);
        if parallel {
            ws.lanes
                .par_iter_mut()
                .zip(ws.mask.par_chunks_mut(per * row))
                .zip(ws.partial.par_chunks_mut(blocks_per_lane * np))
                .for_each(pass1);
        } else {
            pass1(((&mut ws.lanes[0], &mut ws.mask[..]), &mut ws.partial[..]));
        }
    }

    /// Pass 2: P_b = a_r S_ri ds_i in the block buffer, then G_b = P_b X, for every block.
    fn transpose_pass(
        &self,
        ds: &[f64],
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: Option<&Pattern>,
    ) {
        let (n, d, m) = (self.n(), self.d(), self.m());
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert_eq!(g.shape(), (m, d), "G of another shape");
        self.check_packed();
        assert_eq!(ds.len(), ws.np, "ds not padded");
        let a = self.a.as_slice();
        let block = ws.block;
        let parallel = ws.lanes.len() > 1;
        let kernel = ws.kernel;
        let (gr, gc) = g.strides();
        let out = SharedRows {
            ptr: g.as_mut_ptr(),
            stride: gc,
        };
        let x = &self.data.x;
        let (mask, row) = (&ws.mask, ws.mask_row);
        let lanes = &mut ws.lanes;
        let pass2 = |lane: &mut Lane| {
            let mut r0 = lane.rows.start;
            while r0 < lane.rows.end {
                let len = block.min(lane.rows.end - r0);
                let sm = match held {
                    None => &mask[r0 * row..(r0 + len) * row],
                    Some(p) => &p.mask[r0 * n..(r0 + len) * n],
                };
                // Rows r0 .. r0 + len of G, which belong to this lane alone (the whole
                // SharedRows is captured: its pointer alone is not Send).
                let o = out;
                // SAFETY: r0 < m, inside G.
                let gb = (
                    unsafe { o.ptr.add(r0 * gr) },
                    gr as isize,
                    o.stride as isize,
                );
                if kernel == Kernel::Fused {
                    self.fused_transpose(ds, r0, len, sm, gb, &mut lane.z, held);
                    r0 += len;
                    continue;
                }
                let pz = &mut lane.z[..len * n];
                for ((pr, sr), ar) in pz.chunks_exact_mut(n).zip(sm.chunks_exact(n)).zip(&a[r0..]) {
                    for ((pi, si), di) in pr.iter_mut().zip(sr).zip(ds.iter()) {
                        *pi = ar * f64::from(*si) * di;
                    }
                }
                if let Some(p) = held {
                    for &(r, i, s) in blend_in(&p.blend, r0..r0 + len) {
                        pz[(r - r0) * n + i] = a[r] * s * ds[i];
                    }
                }
                // SAFETY: P_b is len x n with entry (r, i) at r n + i; X is n x d column-major;
                // gb addresses the lane's len x d rows of G.
                unsafe {
                    gemm(
                        len,
                        n,
                        d,
                        (pz.as_ptr(), n as isize, 1),
                        (x.as_ptr(), 1, n as isize),
                        gb,
                    );
                }
                r0 += len;
            }
        };
        if parallel {
            lanes.par_iter_mut().for_each(pass2);
        } else {
            pass2(&mut lanes[0]);
        }
    }

    /// The fused kernels loop over the packed copy of X: it must have the data's shape.
    fn check_packed(&self) {
        let shape = (self.n(), self.d());
        assert_eq!(
            self.packed.shape(),
            shape,
            "Model::data replaced after Model::new"
        );
    }

    /// Pass 1 of one block by the fused kernel: its signs into `mask` (ReLU) and its share of
    /// u into `u`, the fractional entries of a held pattern added from single dot products.
    fn fused_forward(
        &self,
        w: &DMatrixView<f64>,
        r0: usize,
        len: usize,
        mask: &mut [u8],
        u: &mut [f64],
        held: Option<&Pattern>,
    ) {
        let n = self.n();
        let a = &self.a.as_slice()[r0..];
        let wb = rows_of(w, r0);
        let mode = match held {
            None => crate::fused::Forward::Relu { mask, u },
            Some(p) => crate::fused::Forward::Held {
                mask: &p.mask[r0 * n..(r0 + len) * n],
                u,
            },
        };
        // SAFETY: the workspace has the fused kernel only where the CPU runs it; rows
        // r0 .. r0 + len of W are a len x d matrix (shapes checked by the callers).
        unsafe { crate::fused::forward_block(&self.packed, wb, len, a, mode) };
        if let Some(p) = held {
            for &(r, i, s) in blend_in(&p.blend, r0..r0 + len) {
                let old = f64::from(p.mask[r * n + i]);
                // SAFETY: r - r0 < len, a row of the block.
                let z = unsafe { crate::fused::dot(&self.packed, wb, r - r0, i) };
                u[i] += a[r - r0] * (s - old) * z;
            }
        }
    }

    /// Pass 2 of one block by the fused kernel: rows r0 .. r0 + len of G (at `gb`, this lane's
    /// alone) from the block's signs `sm` (the workspace's 4-bit mask, or the held pattern's
    /// bytes), the fractional entries of a held pattern added as a_r (S_ri - mask_ri) ds_i x_i.
    #[allow(clippy::too_many_arguments)]
    fn fused_transpose(
        &self,
        ds: &[f64],
        r0: usize,
        len: usize,
        sm: &[u8],
        gb: (*mut f64, isize, isize),
        scratch: &mut [f64],
        held: Option<&Pattern>,
    ) {
        let (n, d) = (self.n(), self.d());
        let (a, x) = (self.a.as_slice(), &self.data.x);
        let sm = match held {
            None => crate::fused::Signs::Nibbles(sm),
            Some(_) => crate::fused::Signs::Bytes(sm),
        };
        // SAFETY: the workspace has the fused kernel only where the CPU runs it; gb addresses
        // len x d rows of G that no other lane writes.
        unsafe { crate::fused::transpose_block(&self.packed, ds, &a[r0..], sm, len, gb, scratch) };
        let Some(p) = held else { return };
        for &(r, i, s) in blend_in(&p.blend, r0..r0 + len) {
            let c = a[r] * (s - f64::from(p.mask[r * n + i])) * ds[i];
            for k in 0..d {
                // SAFETY: row r - r0 < len of the block, column k < d.
                unsafe {
                    *gb.0.offset((r - r0) as isize * gb.1 + k as isize * gb.2) += c * x[(i, k)];
                }
            }
        }
    }

    /// grad_W L into `g` (m x d) with the ReLU's own pattern, returning Delta.
    pub fn gradient_into(
        &self,
        w: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
    ) -> DVector<f64> {
        self.gradient_with_pattern(w, g, ws, None)
    }

    /// grad_W L as a new matrix.
    pub fn gradient(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        let mut g = DMatrix::zeros(self.m(), self.d());
        let mut ws = Workspace::new(self.m(), self.n(), self.d());
        self.gradient_into(w, &mut g.as_view_mut(), &mut ws);
        g
    }
}

/// The share of a step an activation spent on its active side, when w_r . x_i went from `a`
/// to `b` (a sign change) and the step began on the side `active` (the mask's: a dot product
/// of |a| ~ 1e-16 may disagree with the GEMM that set the mask): the crossing is placed by
/// linear interpolation, at a / (a - b) of the step.
pub fn crossing_share(a: f64, b: f64, active: bool) -> f64 {
    let before = if a == b {
        0.5
    } else {
        (a / (a - b)).clamp(0.0, 1.0)
    };
    active_share(before, active)
}

/// The share of a step on the active side when the crossing falls at `before` (a fraction of
/// the step) and the step began on the side `active`.
pub(crate) fn active_share(before: f64, active: bool) -> f64 {
    if active {
        before
    } else {
        1.0 - before
    }
}

/// The blocks' shares of u (blocks x np, from the forward pass) added in block order into
/// `out` (n <= np): the same bits in any number of lanes.
fn sum_blocks(partial: &[f64], np: usize, out: &mut [f64]) {
    out.fill(0.0);
    for u in partial.chunks_exact(np) {
        out.iter_mut().zip(u).for_each(|(d, ui)| *d += ui);
    }
}

/// `visit(k)` for every k with a[k] != b[k], in increasing k. Few signs change in a step, so
/// the bytes are compared eight at a time: a byte-wise loop cost as much as the product that
/// made the signs.
fn differences(a: &[u8], b: &[u8], mut visit: impl FnMut(usize)) {
    assert_eq!(a.len(), b.len(), "sign buffers of different sizes");
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail = ac.len() * 8;
    for (j, (x, y)) in ac.zip(bc).enumerate() {
        let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().expect("chunks of 8"));
        if word(x) != word(y) {
            (0..8)
                .filter(|&t| x[t] != y[t])
                .for_each(|t| visit(8 * j + t));
        }
    }
    (tail..a.len())
        .filter(|&k| a[k] != b[k])
        .for_each(&mut visit);
}

/// W's rows from r0 on, as (pointer, row stride, column stride).
fn rows_of(w: &DMatrixView<f64>, r0: usize) -> (*const f64, isize, isize) {
    let (wr, wc) = w.strides();
    assert!(r0 <= w.nrows());
    // SAFETY: r0 <= nrows, so the offset stays inside (or one past) W's storage.
    (unsafe { w.as_ptr().add(r0 * wr) }, wr as isize, wc as isize)
}
