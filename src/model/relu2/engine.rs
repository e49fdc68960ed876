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
//! Two kernels do a block's products ([`Kernel`]; one crate-private trait in `kernels`, so both
//! share this driver): matrixmultiply's GEMMs with the masking as
//! sweeps in between (any CPU), or the fused kernels of `crate::simd::avx2` (x86-64 with AVX2 and
//! FMA, chosen where the CPU has them), where Z never leaves the registers, P is built a few rows
//! at a time in L1 cache, and the mask is 4 bits a sample. They agree to rounding (a test holds
//! them to 1e-13).
//!
//! Everything is preallocated in [`Workspace`]: an evaluation allocates nothing.

use super::kernels::{Block, BlockKernel, Fused, Gemm};
use super::pattern::Pattern;
use super::Model;
use crate::simd::{Avx2Fma, Forward, Rows, SharedRows, Signs};
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector};
use rayon::prelude::*;
use std::cmp::Ordering;

/// Below this many flops (4 n m d) an evaluation runs in one lane: a rayon round trip would
/// cost more than the second core gives. A run's passes are separated by its serial
/// output-space work, long enough for the pool's other thread to fall asleep, so each
/// parallel pass paid a futex wake-up (13% of an nagsc run at n = 100, d = 20, m = 400 was in
/// the kernel's futex and scheduler, perf). Measured on the 2-core VM (hbf, n = 100, d = 20,
/// T = 100, 201 samples, alternating): one lane was faster at m = 400 (3.2e6 flops; 0.108 s
/// against 0.121 s) and m = 700 (5.6e6; 0.162 against 0.168 s), two from m = 1000 (8e6; 0.21
/// against 0.22-0.26 s). With one lane the second core solves H(t)'s ends beside the run
/// ([`crate::observe::extremes::ExtremesBeside`]).
const PARALLEL_FLOPS: usize = 6_000_000;

/// Lanes per thread in a parallel evaluation. More lanes than threads, so that rayon's work
/// stealing gives fewer of them to a core that runs slower: on this benchmark's shared 2-core
/// machine one core at a time often ran at 60% speed for a second or so, and with one lane per
/// thread the slow lane set the pace of both.
pub const LANES_PER_THREAD: usize = 4;

/// Values of a fused lane's scratch for `np` padded samples (two rows of P).
#[cfg(target_arch = "x86_64")]
const FUSED_SCRATCH: fn(usize) -> usize = crate::simd::avx2::transpose_scratch;
#[cfg(not(target_arch = "x86_64"))]
const FUSED_SCRATCH: fn(usize) -> usize = |_| 0;

/// Samples per row of the sign cache whose signs are computed again alone when the row is
/// kept: its slack is then the margin of its (NEAR + 1)-th nearest sample, about NEAR + 1
/// times the nearest's (margins near 0 are about uniform).
pub(super) const NEAR: usize = 8;

/// What one rechecked row ([`NEAR`] samples' signs again) costs per column of X, in flops of a
/// stale row's pass (2 n d), for the choice of lanes against [`PARALLEL_FLOPS`]: its own 2
/// NEAR FMAs a column undercount the copy of the row and the gathered samples around them.
/// Measured in a gradient-flow run at n = 1000, d = 20, m = 10,000 to T = 1 (a scratch build
/// timing its serial sign passes one by one, least squares; docs/performance.md, 2026-12-03
/// early afternoon): 0.115 us a recheck, 6.0 us a stale row (40,000 flops), so about 800
/// flops a recheck at d = 20; there passes of about 9,700 rechecks and 5 stale rows, 1.1 ms
/// each, had run on one thread.
const RECHECK_FLOPS_PER_COLUMN: usize = 5 * NEAR;

/// Bytes of one block's pre-activations: half of a 512 KB L2, beside the blocks of W and G.
const BLOCK_BYTES: usize = 256 * 1024;

/// Which code computes the two products of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// matrixmultiply's GEMMs, with the masking as sweeps over Z and P in between (any CPU).
    Gemm,
    /// The fused kernels of `crate::simd::avx2` (x86-64 with AVX2 and FMA).
    Fused,
}

impl Kernel {
    /// The fused kernels where the CPU runs them, else the GEMMs.
    pub fn best() -> Kernel {
        if Avx2Fma::detect().is_some() {
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
    /// The AVX2/FMA token, present iff the kernel is [`Kernel::Fused`].
    pub(super) cpu: Option<Avx2Fma>,
    /// Rows per block.
    pub(super) block: usize,
    /// Scratch of a smooth activation's passes: a_r sigma'(z_ri), then P (m x n, neuron-major);
    /// empty until a smooth gradient is taken.
    pub(super) slopes: Vec<f64>,
    /// Scratch of a trained output layer's passes (`--train wa`): sigma(z_ri) (m x n,
    /// neuron-major), read back for grad a; empty until such a gradient is taken.
    pub(super) values: Vec<f64>,
    /// Sign mask of the last plain (not held) evaluation, neuron-major, `mask_row` bytes a
    /// neuron: n bytes for the GEMMs, np/4 (4 signs a byte) for the fused kernels.
    mask: Vec<u8>,
    mask_row: usize,
    /// Each block's share of u (blocks x np, np = n rounded up to 4 for the fused kernels).
    pub(super) partial: Vec<f64>,
    pub(super) np: usize,
    /// Delta of the last evaluation, and Delta / sqrt m (zero-padded to np).
    pub(super) delta: Vec<f64>,
    pub(super) scaled_delta: Vec<f64>,
    /// The second product's ds of a paired pass ([`Model::vjp_held_pair`]), empty until then.
    scaled_second: Vec<f64>,
    pub(super) m: usize,
    pub(super) n: usize,
    /// Signs of W by rows whose distance from their last pass proves them unchanged
    /// ([`Workspace::cache_signs`]); None: every sign pass runs in full.
    sign_cache: Option<Box<SignCache>>,
}

/// The signs of the last pass over each neuron, with how far its row may move before one of
/// them can change.
///
/// ```text
/// |z_ri(W) - z_ri(W_ref)| <= |w_r - w_ref,r| |x_i|                (Cauchy-Schwarz)
/// |fl(z_ri) - z_ri| <= gamma |w_r| |x_i|,  gamma = 2 (d + 2) u    (an FMA chain over k)
/// ```
/// so a row whose distance D_r from its reference satisfies
/// D_r (1 + gamma) + 2 gamma |w_ref,r| < |fl(z_ri(W_ref))| / |x_i| for every i but its
/// [`NEAR`] nearest samples (smallest |z_ri| / |x_i|) has those signs of its last pass; the
/// nearest ones are computed again alone ([`crate::simd::PackedX::signs_at`], the kernel's
/// bits, d FMAs each), and the pass over the row is skipped: its signs are the same bits
/// (samples with x_i = 0 have z = +0 at every finite W and do not bound the row). Along an
/// integration a step moves most rows by less than that margin, so only the rows near a
/// crossing are passed over again. (With the margin of the nearest sample alone, at
/// n = 1000 a gradient-flow trial moved 65% of the rows past it.)
#[derive(Clone, Debug, Default)]
struct SignCache {
    /// W_ref (m x d, column-major): each row as its last pass saw it.
    wref: Vec<f64>,
    /// Per row, the distance it may move keeping every sign (its nearest sample's margin),
    /// and keeping all but its [`NEAR`] nearest samples' (the next one's margin); NaN or
    /// below 0: pass over it again.
    slack: Vec<[f64; 2]>,
    /// Per row, its [`NEAR`] nearest samples at W_ref (u32::MAX where it has fewer).
    near: Vec<u32>,
    /// Signs at W_ref (m x n, neuron-major).
    signs: Vec<u8>,
    /// 1/|x_i|, 0 where x_i = 0.
    inv_norm: Vec<f64>,
    /// Scratch: |w_r - w_ref,r|^2, then the rows to pass over.
    dist: Vec<f64>,
    stale: Vec<usize>,
    /// Scratch: the kept rows that moved past their nearest sample's margin, whose
    /// [`NEAR`] nearest samples are computed again.
    recheck: Vec<usize>,
    /// Per row, whether its nearest samples were computed again since its last pass: its
    /// signs are then not all those at W_ref, and it is checked again while kept (a row
    /// that moved out past a nearest sample and back within the first margin would
    /// otherwise keep the sign it had out there).
    touched: Vec<bool>,
    /// Whether rows past their first margin are rechecked on their nearest samples
    /// ([`Workspace::cache_signs`]) rather than passed over.
    near_rechecks: bool,
    /// Scratch per lane: a block of rows' z (block x np).
    z: Vec<Vec<f64>>,
    /// Rows passed over, rows checked (for the benchmark's and tests' counts).
    passed: u64,
    checked: u64,
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
        let cpu = Avx2Fma::detect().filter(|_| kernel == Kernel::Fused);
        let kernel = if cpu.is_some() {
            Kernel::Fused
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
                        Kernel::Fused => vec![0.0; FUSED_SCRATCH(np)],
                    },
                    changed: Vec::new(),
                })
                .collect(),
            slopes: Vec::new(),
            values: Vec::new(),
            kernel,
            cpu,
            block,
            mask: vec![0; m * mask_row],
            mask_row,
            partial: vec![0.0; blocks * np],
            np,
            delta: vec![0.0; n],
            scaled_delta: vec![0.0; np],
            scaled_second: Vec::new(),
            m,
            n,
            sign_cache: None,
        }
    }

    /// Let sign passes ([`Model`]'s `signs`, behind [`Pattern`]'s `changes`, `of` and
    /// `retake`) skip the neurons whose rows have not moved far enough since their last pass
    /// to change a sign (`SignCache`): for a sequence of nearby W, as an integration's steps
    /// are, most of the pass. The signs are the same bits as a full pass's. Fused kernel only
    /// (the GEMM's bits depend on its blocking); a no-op with the GEMM. With `near`, a row
    /// that moved past its nearest sample's margin but not its 9th's keeps all but its 8
    /// nearest samples' signs (`NEAR`) and has those computed again alone (gradient
    /// flow, whose rows at n = 1000 mostly moved past the first margin in a step); without,
    /// it is passed over (the momentum flows at the benchmark's n = 100, whose rows mostly
    /// stay within it, and for which the rechecks of the rows once past it cost a fifth of
    /// nag's run).
    pub fn cache_signs(&mut self, near: bool) {
        if self.cpu.is_some() {
            self.sign_cache = Some(Box::new(SignCache {
                near_rechecks: near,
                ..SignCache::default()
            }));
        }
    }

    /// (rows passed over, rows checked) by the sign cache so far; None without it.
    pub fn sign_cache_counts(&self) -> Option<(u64, u64)> {
        self.sign_cache.as_ref().map(|c| (c.passed, c.checked))
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

impl Lane {
    /// This lane's block kernel: the fused one where the workspace holds the AVX2 token, else
    /// the GEMMs, on this lane's scratch.
    fn kernel<'a>(&'a mut self, model: &'a Model, cpu: Option<Avx2Fma>) -> Block<'a> {
        match cpu {
            Some(cpu) => Block::Fused(Fused {
                cpu,
                x: &model.packed,
                p: &mut self.z,
            }),
            None => Block::Gemm(Gemm {
                x: &model.data.x,
                z: &mut self.z,
            }),
        }
    }
}

/// Pass 2's driver: each lane's neurons in blocks of `block` rows, `pass(kernel, r0, len)` for
/// each block with the lane's kernel, the lanes on rayon's threads when there are several.
fn by_blocks(
    model: &Model,
    lanes: &mut [Lane],
    cpu: Option<Avx2Fma>,
    block: usize,
    pass: impl Fn(&mut Block<'_>, usize, usize) + Sync,
) {
    let run = |lane: &mut Lane| {
        let rows = lane.rows.clone();
        let mut kernel = lane.kernel(model, cpu);
        let mut r0 = rows.start;
        while r0 < rows.end {
            let len = block.min(rows.end - r0);
            pass(&mut kernel, r0, len);
            r0 += len;
        }
    };
    if lanes.len() > 1 {
        lanes.par_iter_mut().for_each(run);
    } else {
        run(&mut lanes[0]);
    }
}

impl Model {
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
        assert_eq!(out.len(), self.m() * n, "sign buffer of another size");
        assert!(
            old.is_none_or(|o| o.len() == out.len()),
            "old signs of another size"
        );
        if let Some(mut cache) = ws.sign_cache.take() {
            self.signs_cached(w, out, old, ws, &mut cache);
            ws.sign_cache = Some(cache);
            return;
        }
        let a = self.a.as_slice();
        let block = ws.block;
        let per = ws.lanes[0].rows.len().max(1);
        let cpu = ws.cpu;
        let work = |(lane, out): (&mut Lane, &mut [u8])| {
            lane.changed.clear();
            let rows = lane.rows.clone();
            let mut changed = std::mem::take(&mut lane.changed);
            let mut kernel = lane.kernel(self, cpu);
            let mut r0 = rows.start;
            while r0 < rows.end {
                let len = block.min(rows.end - r0);
                let base = r0 - rows.start;
                let dst = &mut out[base * n..(base + len) * n];
                let mode = Forward::Signs { mask: dst };
                kernel.forward(Rows::of(w, r0, len), &a[r0..], mode);
                if let Some(old) = old {
                    let before = &old[r0 * n..(r0 + len) * n];
                    let dst = &out[base * n..(base + len) * n];
                    differences(before, dst, |k| changed.push((r0 + k / n, k % n)));
                }
                r0 += len;
            }
            lane.changed = changed;
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

    /// [`Model::signs`] through the sign cache: only the rows that may have changed are passed
    /// over (in the lanes that hold them, in parallel when they are many), the rest keep
    /// their last pass's signs.
    fn signs_cached(
        &self,
        w: &DMatrixView<f64>,
        out: &mut [u8],
        old: Option<&[u8]>,
        ws: &mut Workspace,
        c: &mut SignCache,
    ) {
        let (m, n, d, np) = (self.m(), self.n(), self.d(), ws.np);
        if c.wref.len() != m * d || c.signs.len() != m * n {
            let x = &self.data.x;
            *c = SignCache {
                wref: vec![0.0; m * d],
                slack: vec![[f64::NAN; 2]; m],
                touched: vec![false; m],
                near_rechecks: c.near_rechecks,
                near: vec![u32::MAX; m * NEAR],
                signs: vec![0; m * n],
                inv_norm: (0..n)
                    .map(|i| {
                        let norm = x.row(i).norm();
                        if norm > 0.0 {
                            1.0 / norm
                        } else {
                            0.0
                        }
                    })
                    .collect(),
                dist: vec![0.0; m],
                stale: Vec::with_capacity(m),
                z: vec![Vec::new(); ws.lanes.len()],
                ..SignCache::default()
            };
        }
        let gamma = 2.0 * (d as f64 + 2.0) * f64::EPSILON;
        // Relative rounding of the distance, the norms and the quotients below, generously.
        let rel = 1e-12 + 4.0 * gamma;
        let cpu = ws.cpu.expect("the sign cache runs with the fused kernel");
        c.dist.fill(0.0);
        for k in 0..d {
            let reference = &c.wref[k * m..(k + 1) * m];
            // A column of a view with unit row stride is contiguous.
            let col = w.column(k);
            crate::simd::add_squared_differences(cpu, &mut c.dist, col.as_slice(), reference);
        }
        c.stale.clear();
        c.recheck.clear();
        let rows = c.dist.iter().zip(&c.slack).zip(c.touched.iter_mut());
        for (r, ((s, [firm, slack]), touched)) in rows.enumerate() {
            // NaN anywhere fails the test (no ordering): the row is passed over.
            let moved = s.sqrt() * (1.0 + rel);
            let limit = if c.near_rechecks { slack } else { firm };
            if moved.partial_cmp(limit) != Some(Ordering::Less) {
                c.stale.push(r);
                *touched = false;
            } else if *touched || moved.partial_cmp(firm) != Some(Ordering::Less) {
                // At the benchmark's n = 100 most rows stay within their nearest margin
                // (the momentum flows' steps), and computing their nearest samples again
                // cost a fifth of nag's run (d-FMA chains, 8 a row, every pass).
                c.recheck.push(r);
                *touched = true;
            }
        }
        c.checked += m as u64;
        c.passed += c.stale.len() as u64;
        let a = self.a.as_slice();
        let per = ws.lanes[0].rows.len().max(1);
        let block = ws.block;
        let SignCache {
            wref,
            slack,
            near,
            signs,
            inv_norm,
            stale,
            recheck,
            near_rechecks,
            z,
            ..
        } = &mut *c;
        let (stale, recheck, inv_norm) = (&stale[..], &recheck[..], &inv_norm[..]);
        let near_rechecks = *near_rechecks;
        // Lane k's share: its rows' signs and slacks, its stale rows.
        let packed = &self.packed;
        let work = |((((lane, signs), slack), near), z): Share| {
            let rows = lane.rows.clone();
            let lo = stale.partition_point(|&r| r < rows.start);
            let hi = stale.partition_point(|&r| r < rows.end);
            let stale = &stale[lo..hi];
            // The kept rows' nearest samples, computed again where the rows moved past the
            // nearest one's margin: the kernel's bits.
            z.resize(block * np + d, 0.0);
            let (z, wr) = z.split_at_mut(block * np);
            let from = recheck.partition_point(|&r| r < rows.start);
            let to = recheck.partition_point(|&r| r < rows.end);
            for &r in &recheck[from..to] {
                let base = r - rows.start;
                for (k, v) in wr.iter_mut().enumerate() {
                    *v = w[(r, k)];
                }
                let at = &near[base * NEAR..(base + 1) * NEAR];
                packed.signs_at(cpu, wr, at, &mut signs[base * n..(base + 1) * n]);
            }
            let mut kernel = lane.kernel(self, Some(cpu));
            let mut j = 0;
            while j < stale.len() {
                // A run of consecutive stale rows, at most a block.
                let r0 = stale[j];
                let mut len = 1;
                while j + len < stale.len() && stale[j + len] == r0 + len && len < block {
                    len += 1;
                }
                let mode = Forward::Values {
                    z: &mut z[..len * np],
                    stride: np,
                };
                kernel.forward(Rows::of(w, r0, len), &a[r0..], mode);
                for q in 0..len {
                    let r = r0 + q;
                    let zr = &z[q * np..q * np + n];
                    let base = r - rows.start;
                    for (s, zi) in signs[base * n..(base + 1) * n].iter_mut().zip(zr) {
                        *s = u8::from(*zi >= 0.0);
                    }
                    let wn2 = (0..d).map(|k| w[(r, k)] * w[(r, k)]).sum::<f64>();
                    let nearest = &mut near[base * NEAR..(base + 1) * NEAR];
                    let (first, margin, nan) = if near_rechecks {
                        nearest_samples(zr, inv_norm, nearest)
                    } else {
                        // The first margin alone, in vector registers: the selection of
                        // the nearest samples cost a sixth of nag's run at n = 100.
                        let (least, nan) = crate::simd::scaled_min_abs(cpu, zr, inv_norm);
                        (least, f64::INFINITY, nan)
                    };
                    // NaN (a non-finite row): passed over every time.
                    let bound = 3.0 * gamma * wn2.sqrt();
                    slack[base] = if nan {
                        [f64::NAN; 2]
                    } else {
                        [
                            (first - bound) * (1.0 - rel),
                            (margin - bound) * (1.0 - rel),
                        ]
                    };
                }
                j += len;
            }
        };
        // The stale rows' passes and the rechecked rows' nearest samples (none for the
        // momentum flows): the work the lanes would share, a recheck at what it costs.
        let flops = 2 * stale.len() * n * d + recheck.len() * RECHECK_FLOPS_PER_COLUMN * d;
        let shares: Vec<Share> = ws
            .lanes
            .iter_mut()
            .zip(signs.chunks_mut(per * n))
            .zip(slack.chunks_mut(per))
            .zip(near.chunks_mut(per * NEAR))
            .zip(z.iter_mut())
            .collect();
        if shares.len() > 1 && flops >= PARALLEL_FLOPS {
            shares.into_par_iter().for_each(work);
        } else {
            shares.into_iter().for_each(work);
        }
        for k in 0..d {
            let reference = &mut wref[k * m..(k + 1) * m];
            for &r in stale {
                reference[r] = w[(r, k)];
            }
        }
        for lane in &mut ws.lanes {
            lane.changed.clear();
        }
        if n == 0 {
            return;
        }
        // Each lane copies and compares its own rows, on rayon's threads with more than one
        // lane: at n = 1000, m = 10,000 the 10 MB copy and its comparison on one thread were
        // 6% of a gradient-flow run's solver thread. Lanes list their rows' changes in order.
        let copy = |((lane, out), signs): ((&mut Lane, &mut [u8]), &[u8])| {
            out.copy_from_slice(signs);
            if let Some(old) = old {
                let r0 = lane.rows.start;
                let old = &old[r0 * n..r0 * n + out.len()];
                // Row by row: a row's bytes compare at once (memcmp), most are equal.
                for (q, (a, b)) in old.chunks_exact(n).zip(out.chunks_exact(n)).enumerate() {
                    if a != b {
                        differences(a, b, |i| lane.changed.push((r0 + q, i)));
                    }
                }
            }
        };
        let signs = &c.signs[..];
        if ws.lanes.len() > 1 {
            ws.lanes
                .par_iter_mut()
                .zip(out.par_chunks_mut(per * n))
                .zip(signs.par_chunks(per * n))
                .for_each(copy);
        } else {
            copy(((&mut ws.lanes[0], out), signs));
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
        if self.train.output_layer() {
            // issue 17: (W, a) trained; the fused ReLU kernels read the fixed signs.
            return self.trained_gradient(w, g, ws);
        }
        if !self.activation.switching() {
            // A smooth activation has no pattern to hold: its flow is smooth.
            return self.smooth_gradient(w, g, ws);
        }
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
        assert_eq!(beta.len(), self.n(), "beta of another length");
        let scale = 1.0 / (self.m() as f64).sqrt();
        let mut ds = std::mem::take(&mut ws.scaled_delta);
        ds.iter_mut().zip(beta).for_each(|(d, b)| *d = b * scale);
        self.transpose_pass(&ds, g, ws, Some(held));
        ws.scaled_delta = ds;
    }

    /// Rows `rows` of J_S^T beta into the same rows of `g` (m x d), each with the bits
    /// [`Model::vjp_held`] gives it: the fused kernel's chain for an entry of G is the same
    /// whatever neurons share its tile. The other rows of `g` are left as they are. Returns
    /// false (writing nothing) without the fused kernel, whose GEMM fallback's bits depend on
    /// its blocking.
    pub fn vjp_held_rows(
        &self,
        beta: &[f64],
        rows: &[usize],
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: &Pattern,
    ) -> bool {
        let Some(cpu) = ws.cpu else {
            return false;
        };
        let (n, m) = (self.n(), self.m());
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert_eq!(g.shape(), (m, self.d()), "G of another shape");
        let scale = 1.0 / (m as f64).sqrt();
        let mut ds = std::mem::take(&mut ws.scaled_delta);
        ds.iter_mut().zip(beta).for_each(|(d, b)| *d = b * scale);
        let a = self.a.as_slice();
        let x = &self.data.x;
        let out = SharedRows::new(g);
        let mut kernel = ws.lanes[0].kernel(self, Some(cpu));
        for &r in rows {
            // SAFETY: one view of row r at a time, dropped before the next.
            let mut gr = unsafe { out.rows_mut(r, 1) };
            let sm = Signs::Bytes(&held.mask[r * n..(r + 1) * n]);
            kernel.transpose(&ds, &a[r..], sm, gr.reborrow());
            for (_, i, c) in held.corrections(r..r + 1) {
                gr.add_scaled(0, a[r] * c * ds[i], |k| x[(i, k)]);
            }
        }
        ws.scaled_delta = ds;
        true
    }

    /// Pass 1: each block's share of sum_r a_r S_ri w_r . x_i into `ws.partial` (and the sign
    /// mask into `ws.mask` when S is the ReLU's). A held pattern's fractional entries are added
    /// from single pre-activations as a_r (S_ri - mask_ri) z_ri ([`Pattern::corrections`]).
    fn forward_pass(&self, w: &DMatrixView<f64>, ws: &mut Workspace, held: Option<&Pattern>) {
        let (n, d, m) = (self.n(), self.d(), self.m());
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert_eq!(w.shape(), (m, d), "W of another shape");
        debug_assert_eq!(self.packed.shape(), (n, d));
        let a = self.a.as_slice();
        let block = ws.block;
        let per = ws.lanes[0].rows.len().max(1);
        let parallel = ws.lanes.len() > 1;
        let (cpu, np, row) = (ws.cpu, ws.np, ws.mask_row);
        let pass1 = |((lane, mask), partial): ((&mut Lane, &mut [u8]), &mut [f64])| {
            let rows = lane.rows.clone();
            let mut kernel = lane.kernel(self, cpu);
            let mut r0 = rows.start;
            for u in partial.chunks_exact_mut(np) {
                if r0 >= rows.end {
                    break;
                }
                u.fill(0.0);
                let len = block.min(rows.end - r0);
                let base = r0 - rows.start;
                let wb = Rows::of(w, r0, len);
                match held {
                    None => {
                        let mask = &mut mask[base * row..(base + len) * row];
                        kernel.forward(wb, &a[r0..], Forward::Relu { mask, u });
                    }
                    Some(p) => {
                        let mask = &p.mask[r0 * n..(r0 + len) * n];
                        kernel.forward(wb, &a[r0..], Forward::Held { mask, u });
                        for (r, i, c) in p.corrections(r0..r0 + len) {
                            u[i] += a[r] * c * kernel.preactivation(&wb, r - r0, i);
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

    /// Pass 2: for every block, G_b = P_b X with P_ri = a_r mask_ri ds_i, then a held
    /// pattern's fractional entries added as a_r (S_ri - mask_ri) ds_i x_i
    /// ([`Pattern::corrections`]).
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
        assert_eq!(ds.len(), ws.np, "ds not padded");
        let a = self.a.as_slice();
        // The workspace's ReLU mask is in the kernel's own format.
        let own = |bytes| match ws.cpu {
            Some(_) => Signs::Nibbles(bytes),
            None => Signs::Bytes(bytes),
        };
        let out = SharedRows::new(g);
        let x = &self.data.x;
        let (mask, row) = (&ws.mask, ws.mask_row);
        by_blocks(self, &mut ws.lanes, ws.cpu, ws.block, |kernel, r0, len| {
            let sm = match held {
                None => own(&mask[r0 * row..(r0 + len) * row]),
                Some(p) => Signs::Bytes(&p.mask[r0 * n..(r0 + len) * n]),
            };
            // SAFETY: lanes hold disjoint row ranges and a lane visits its blocks one at a
            // time; this view is the only one of rows r0 .. r0 + len while it lives.
            let mut gb = unsafe { out.rows_mut(r0, len) };
            kernel.transpose(ds, &a[r0..], sm, gb.reborrow());
            if let Some(p) = held {
                for (r, i, c) in p.corrections(r0..r0 + len) {
                    gb.add_scaled(r - r0, a[r] * c * ds[i], |k| x[(i, k)]);
                }
            }
        });
    }

    /// J_S^T beta_W and J_S^T beta_V under one held pattern into `gw` and `gv` (m x d each),
    /// each with the bits [`Model::vjp_held`] gives it, in one pass where the kernel can
    /// (`BlockKernel::transpose_pair`): a momentum step's two products, W's and V's.
    pub fn vjp_held_pair(
        &self,
        [beta_w, beta_v]: [&[f64]; 2],
        [gw, gv]: [&mut DMatrixViewMut<f64>; 2],
        ws: &mut Workspace,
        held: &Pattern,
    ) {
        let (n, d, m) = (self.n(), self.d(), self.m());
        assert_eq!((ws.m, ws.n), (m, n), "workspace of another shape");
        assert!(
            gw.shape() == (m, d) && gv.shape() == (m, d),
            "G of another shape"
        );
        assert!(
            beta_w.len() == n && beta_v.len() == n,
            "beta of another length"
        );
        let scale = 1.0 / (m as f64).sqrt();
        let mut dw = std::mem::take(&mut ws.scaled_delta);
        let mut dv = std::mem::take(&mut ws.scaled_second);
        dv.resize(ws.np, 0.0);
        dw.iter_mut().zip(beta_w).for_each(|(d, b)| *d = b * scale);
        dv.iter_mut().zip(beta_v).for_each(|(d, b)| *d = b * scale);
        let a = self.a.as_slice();
        let (ow, ov) = (SharedRows::new(gw), SharedRows::new(gv));
        let x = &self.data.x;
        by_blocks(self, &mut ws.lanes, ws.cpu, ws.block, |kernel, r0, len| {
            // SAFETY: as in `transpose_pass`, for each of the two matrices.
            let (mut bw, mut bv) = unsafe { (ow.rows_mut(r0, len), ov.rows_mut(r0, len)) };
            let sm = &held.mask[r0 * n..(r0 + len) * n];
            kernel.transpose_pair([&dw, &dv], &a[r0..], sm, [bw.reborrow(), bv.reborrow()]);
            for (r, i, c) in held.corrections(r0..r0 + len) {
                bw.add_scaled(r - r0, a[r] * c * dw[i], |k| x[(i, k)]);
                bv.add_scaled(r - r0, a[r] * c * dv[i], |k| x[(i, k)]);
            }
        });
        ws.scaled_delta = dw;
        ws.scaled_second = dv;
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
        let mut g = DMatrix::zeros(self.m(), self.columns());
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
pub(super) fn sum_blocks(partial: &[f64], np: usize, out: &mut [f64]) {
    out.fill(0.0);
    for u in partial.chunks_exact(np) {
        out.iter_mut().zip(u).for_each(|(d, ui)| *d += ui);
    }
}

/// `visit(k)` for every k with `a[k] != b[k]`, in increasing k. Few signs change in a step, so
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

/// A lane's share of a cached sign pass: the lane, its rows' signs, slacks and nearest
/// samples, and its scratch.
type Share<'a> = (
    (
        ((&'a mut Lane, &'a mut [u8]), &'a mut [[f64; 2]]),
        &'a mut [u32],
    ),
    &'a mut Vec<f64>,
);

/// The [`NEAR`] samples i with the smallest |z_i| scale_i (scale_i > 0; u32::MAX where fewer)
/// into `near`, returning the smallest and the next smallest beyond them (infinity if none)
/// and whether any z_i is NaN: the sign cache's nearest samples of a row, its margin, and its
/// margin beyond them.
pub(super) fn nearest_samples(z: &[f64], scale: &[f64], near: &mut [u32]) -> (f64, f64, bool) {
    assert_eq!(z.len(), scale.len(), "lengths differ");
    // The NEAR + 1 smallest so far, increasing.
    let mut best = [(f64::INFINITY, u32::MAX); NEAR + 1];
    let mut nan = false;
    let insert = |i: usize, v: f64, best: &mut [(f64, u32); NEAR + 1]| {
        if v < best[NEAR].0 {
            let mut at = NEAR;
            while at > 0 && best[at - 1].0 > v {
                best[at] = best[at - 1];
                at -= 1;
            }
            best[at] = (v, u32::try_from(i).unwrap_or(u32::MAX));
        }
    };
    // Eight at a time: after the first few samples almost none is among the smallest, and
    // a group is let through with one test.
    let whole = z.len() / 8 * 8;
    for (g, (zc, sc)) in z[..whole]
        .chunks_exact(8)
        .zip(scale[..whole].chunks_exact(8))
        .enumerate()
    {
        let bound = best[NEAR].0;
        let mut hit = false;
        for t in 0..8 {
            hit |= zc[t].abs() * sc[t] < bound;
            nan |= zc[t].is_nan();
        }
        if hit {
            for t in 0..8 {
                if sc[t] > 0.0 {
                    insert(8 * g + t, zc[t].abs() * sc[t], &mut best);
                }
            }
        }
    }
    for i in whole..z.len() {
        nan |= z[i].is_nan();
        if scale[i] > 0.0 {
            insert(i, z[i].abs() * scale[i], &mut best);
        }
    }
    for (o, b) in near.iter_mut().zip(&best) {
        *o = b.1;
    }
    (best[0].0, best[NEAR].0, nan)
}
