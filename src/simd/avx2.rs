//! The two products of the weight-space gradient as fused kernels (x86-64 with AVX2 and FMA).
//!
//! ```text
//! pass 1:  z_ri = w_r . x_i,  S_ri = 1[z_ri >= 0],  u_i += a_r S_ri z_ri      (Z^T = W X^T)
//! pass 2:  P_ri = a_r S_ri ds_i,  g_r = sum_i P_ri x_i                       (G = P X)
//! ```
//! (Du et al. 2018, eq. 4; [`crate::model::relu2::engine`] has the blocks and lanes around
//! these.)
//!
//! Why not a general GEMM: the inner dimension of pass 1 and the outer one of pass 2 is d (20 in
//! the benchmark). matrixmultiply packs both operands of every block product, and the masking
//! between the two products is a sweep over Z and P in memory; on these thin shapes that held
//! the right-hand side near a third of the machine's GEMM peak. Here X, the operand every
//! product shares, is packed once per model ([`PackedX`]); a tile of pre-activations never
//! leaves the registers (its signs and its share of u are taken from it there); and P is built
//! two rows at a time into an L1 buffer straight from the signs ([`Signs`]: a held pattern's
//! bytes, or the 4-bit groups pass 1 writes for the plain gradient), which is the packing step
//! of a GEMM with the mask fused into it.
//!
//! Tiles: pass 1 holds 6 neurons x 8 samples of z in 12 ymm accumulators (per k: 2 loads of X,
//! 6 broadcasts of W, 12 FMAs); pass 2 holds 2 neurons x 20 columns of G in 10 (per i: 5 loads
//! of X, 2 broadcasts of P, 10 FMAs). X (n x d) stays in L1 at the benchmark's n = 100, d = 20.
//! Where the CPU also runs AVX-512F (the token says so), pass 2 holds 4 neurons x 24 columns
//! in 12 zmm accumulators instead (per i: 3 loads of X, the last masked to d, 4 broadcasts,
//! 12 FMAs): 40% fewer FMA instructions at d = 20, and on this benchmark's Zen 5 cores, which
//! run 512-bit FMAs at full rate, the momentum flows' runs 1.2-1.3x faster. For the ReLU's own
//! nibble signs it first takes 8 neurons along the lanes of one vector ([`transpose_lanes`]):
//! d accumulators of 8 rows each (per i: one masked product for P's column, d broadcasts of
//! x_ik, d FMAs), no padding and no P in memory; one right-hand side 5-20% faster on a Zen 5
//! (README, Performance). Each g_rk is the same FMA chain over i in order, so every tile gives
//! the same bits.
//!
//! Each z is summed over k in order with one FMA per term, so [`PackedX::dot`] reproduces any
//! entry to the bit (the fractional entries of a held pattern need single entries).
//!
//! The entry points [`forward`] and [`transpose`] are safe: they take the [`Avx2Fma`] token
//! and typed views, check every size, and only then pass raw pointers to the tiles below.

use super::{Avx2Fma, Forward, PackedX, Rows, RowsMut, Signs};
use std::arch::x86_64::*;

/// Pass 1's modes, as the tiles' const parameter.
const RELU: u8 = 0;
const HELD: u8 = 1;
const SIGNS: u8 = 2;
const VALUES: u8 = 3;

/// Where pass 1's tiles write (or read) signs and u. Which fields a tile touches is fixed by
/// its MODE, set from the [`Forward`] variant that supplied them in [`forward`]: RELU writes
/// nibbles at `mask` and adds to `u`; HELD reads bytes at `mask` and adds to `u`; SIGNS writes
/// bytes at `mask` and leaves `u` (dangling) alone; VALUES writes z at `u`, `stride` values a
/// neuron, and leaves `mask` (dangling) alone.
#[derive(Clone, Copy)]
struct Io {
    mask: *mut u8,
    u: *mut f64,
    stride: usize,
}

/// Pass 1 over the neurons of `w` (len x d) with output weights `a` (len or more): by `mode`,
/// their signs and/or their share of u (added to, not overwritten).
pub(crate) fn forward(cpu: Avx2Fma, x: &PackedX, w: Rows<'_>, a: &[f64], mode: Forward<'_>) {
    let (n, np, len) = (x.n, x.np, w.len());
    assert_eq!(w.cols(), x.d, "W of another width than X");
    assert!(
        a.len() >= len,
        "{} output weights for {len} neurons",
        a.len()
    );
    let wr = w.raw();
    match mode {
        Forward::Relu { mask, u } => {
            assert!(
                mask.len() >= len * np / 4 && u.len() >= np,
                "pass 1 buffers too small"
            );
            let io = Io {
                mask: mask.as_mut_ptr(),
                u: u.as_mut_ptr(),
                stride: 0,
            };
            // SAFETY: the token proves AVX2 and FMA; `w` addresses len x d values (a Rows is
            // made from a borrowed view of that shape); the mask holds len x np/4 nibble bytes
            // and u np values, as RELU's tiles write them (sizes checked above).
            unsafe { rows_any::<RELU>(cpu, x, wr, len, a, io) }
        }
        Forward::Held { mask, u } => {
            assert!(
                mask.len() >= len * n && u.len() >= np,
                "pass 1 buffers too small"
            );
            let io = Io {
                // Only read by HELD's tiles.
                mask: mask.as_ptr().cast_mut(),
                u: u.as_mut_ptr(),
                stride: 0,
            };
            // SAFETY: as for RELU, with len x n mask bytes that HELD's tiles only read.
            unsafe { rows_any::<HELD>(cpu, x, wr, len, a, io) }
        }
        Forward::Signs { mask } => {
            assert!(mask.len() >= len * n, "sign buffer too small");
            let io = Io {
                mask: mask.as_mut_ptr(),
                u: std::ptr::NonNull::dangling().as_ptr(),
                stride: 0,
            };
            // SAFETY: as for RELU, with len x n sign bytes; SIGNS's tiles never touch u.
            unsafe { rows_any::<SIGNS>(cpu, x, wr, len, a, io) }
        }
        Forward::Values { z, stride } => {
            assert!(
                stride >= np && z.len() >= len * stride,
                "value buffer too small"
            );
            let io = Io {
                mask: std::ptr::NonNull::dangling().as_ptr(),
                u: z.as_mut_ptr(),
                stride,
            };
            // SAFETY: as for RELU, with len rows of `stride` >= np values at u, of which
            // VALUES's tiles write the first np; they never touch the mask.
            unsafe { rows_any::<VALUES>(cpu, x, wr, len, a, io) }
        }
    }
}

/// Pass 2 of two products at once under one held pattern (0/1 bytes): the rows of G in
/// `g[u]` set to g_r = sum_i a_r S_ri ds[u]_i x_i, each with the bits [`transpose`] gives it.
/// With AVX-512F both are summed in one walk over the active samples, from one load of each
/// x_i (a momentum step's J^T products of W and V share the pattern); else one after the other.
pub(crate) fn transpose_pair(
    cpu: Avx2Fma,
    x: &PackedX,
    ds: [&[f64]; 2],
    a: &[f64],
    mask: &[u8],
    [mut gw, mut gv]: [RowsMut<'_>; 2],
    p: &mut [f64],
) {
    let len = gw.len();
    if !cpu.avx512() {
        transpose(cpu, x, ds[0], a, Signs::Bytes(mask), gw, p);
        transpose(cpu, x, ds[1], a, Signs::Bytes(mask), gv, p);
        return;
    }
    assert_eq!(gv.len(), len, "G of another shape");
    pass2_sizes(x, &gw, ds[0], a, p);
    pass2_sizes(x, &gv, ds[1], a, p);
    assert!(mask.len() >= len * x.n, "sign bytes too few");
    let g = [gw.raw(), gv.raw()];
    // SAFETY: the token proves AVX-512F and POPCNT (avx512 is set only where detection found
    // both) besides AVX2 and FMA. Each RowsMut addresses len x d values that it alone writes
    // (two views, so the two never overlap); sizes checked above.
    // Two rows side by side at every n: four, as single passes take them beyond L1, made the
    // pair slower (a scratch timing, docs/performance.md, 2026-12-03 early afternoon).
    unsafe { sparse_all::<2, 2>(x, ds, a, mask, len, g, p) }
}

/// What pass 2 reads and writes has the sizes its kernels address: G as wide as X, ds padded
/// to np, an output weight per row of G, the scratch of [`transpose_scratch`].
fn pass2_sizes(x: &PackedX, g: &RowsMut<'_>, ds: &[f64], a: &[f64], p: &[f64]) {
    assert_eq!(g.cols(), x.d, "G of another width than X");
    assert!(
        ds.len() >= x.np && a.len() >= g.len(),
        "pass 2 inputs too short"
    );
    assert!(
        p.len() >= transpose_scratch(x.np),
        "pass 2 scratch too small"
    );
}

/// Pass 2 over the `g.len()` neurons whose rows of G `g` holds: g_r = sum_i a_r S_ri ds_i x_i,
/// S the 0/1 `mask`, `ds` zero-padded to np. `p` is scratch of [`transpose_scratch`] values.
pub(crate) fn transpose(
    cpu: Avx2Fma,
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: Signs<'_>,
    mut g: RowsMut<'_>,
    p: &mut [f64],
) {
    let len = g.len();
    pass2_sizes(x, &g, ds, a, p);
    let g = g.raw();
    let wide = cpu.avx512();
    match mask {
        Signs::Bytes(b) => {
            assert!(b.len() >= len * x.n, "sign bytes too few");
            if wide {
                // SAFETY: the token proves AVX-512F besides AVX2 and FMA (avx512 is set only
                // by detection); sizes as below.
                return unsafe { transpose_all::<false, true>(x, ds, a, b, len, g, p) };
            }
            // SAFETY: the token proves AVX2 and FMA; `g` addresses len x d values that this
            // RowsMut alone writes; the mask, ds, a and p have the sizes the tiles read
            // (checked above).
            unsafe { transpose_all::<false, false>(x, ds, a, b, len, g, p) }
        }
        Signs::Nibbles(b) => {
            assert!(b.len() >= len * x.np / 4, "sign nibbles too few");
            if wide {
                // SAFETY: as for Bytes with AVX-512F, with len x np/4 nibble bytes.
                return unsafe { transpose_all::<true, true>(x, ds, a, b, len, g, p) };
            }
            // SAFETY: as for Bytes, with len x np/4 nibble bytes.
            unsafe { transpose_all::<true, false>(x, ds, a, b, len, g, p) }
        }
    }
}

/// Scratch values [`transpose`] needs for `np` padded samples: four rows of P (or four lists
/// of active samples, u32 each, with a vector's room past each).
pub(crate) fn transpose_scratch(np: usize) -> usize {
    4 * np + 64
}

/// The four sign bytes (little-endian u32) of a 4-bit compare mask.
const BYTES: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut b = 0;
    while b < 16 {
        let mut j = 0;
        while j < 4 {
            if b >> j & 1 == 1 {
                t[b] |= 1 << (8 * j);
            }
            j += 1;
        }
        b += 1;
    }
    t
};

/// Sign bytes of samples i .. i + 4 (only the `valid` of them inside the row).
///
/// # Safety
/// `p` must be valid for `valid.min(4)` byte writes.
#[inline]
unsafe fn store_signs(p: *mut u8, bytes: u32, valid: usize) {
    if valid >= 4 {
        // SAFETY: 4 bytes writable (caller), unaligned write.
        unsafe { p.cast::<u32>().write_unaligned(bytes) };
    } else {
        for j in 0..valid {
            // SAFETY: j < valid bytes writable (caller).
            unsafe { *p.add(j) = (bytes >> (8 * j)) as u8 };
        }
    }
}

/// The 0/1 bytes of samples i .. i + 4 as doubles (zero past the row's end).
///
/// # Safety
/// AVX2 and FMA must be present, and `p` valid for `valid.min(4)` byte reads.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn load_signs(p: *const u8, valid: usize) -> __m256d {
    let bytes = if valid >= 4 {
        // SAFETY: 4 bytes readable (caller), unaligned read.
        unsafe { p.cast::<u32>().read_unaligned() }
    } else {
        let mut b = 0u32;
        for j in 0..valid {
            // SAFETY: j < valid bytes readable (caller).
            b |= u32::from(unsafe { *p.add(j) }) << (8 * j);
        }
        b
    };
    _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(bytes as i32)))
}

/// Pass 1 with 512-bit vectors where the token says the CPU runs AVX-512F, else 256-bit.
///
/// # Safety
/// As [`rows_all`].
#[inline]
unsafe fn rows_any<const MODE: u8>(
    cpu: Avx2Fma,
    x: &PackedX,
    w: (*const f64, isize, isize),
    len: usize,
    a: &[f64],
    io: Io,
) {
    if cpu.avx512() {
        // SAFETY: the token proves AVX-512F (avx512 is set only by detection), AVX2 and FMA;
        // the rest is the caller's contract.
        unsafe { rows_all::<MODE, true>(x, w, len, a, io) }
    } else {
        // SAFETY: the token proves AVX2 and FMA; the rest is the caller's contract.
        unsafe { rows_all::<MODE, false>(x, w, len, a, io) }
    }
}

/// [`tile`] with 512-bit vectors: z for neurons r0 .. r0 + R and samples i0 .. i0 + 8 NV,
/// then what MODE does with it, lane for lane as [`tile`] does.
///
/// # Safety
/// As [`rows`] with AVX-512F, and i0 + 8 NV <= np.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn tile_512<const R: usize, const NV: usize, const MODE: u8>(
    x: &PackedX,
    w: (*const f64, isize, isize),
    r0: usize,
    i0: usize,
    a: &[f64],
    io: Io,
) {
    let (n, np) = (x.n, x.np);
    let zero = _mm512_setzero_pd();
    let mut acc = [[zero; NV]; R];
    let xc = x.cols.as_ptr().wrapping_add(i0);
    // SAFETY: neuron r0 < len of W (caller).
    let wr = unsafe { w.0.offset(r0 as isize * w.1) };
    for k in 0..x.d {
        // SAFETY: column k < d of the packed X (np x d), samples i0 .. i0 + 8 NV <= np
        // (caller); W's entries (r0 + r, k) with r < R inside its len x d (caller).
        unsafe {
            let col = xc.add(k * np);
            let mut xv = [zero; NV];
            for (v, xv) in xv.iter_mut().enumerate() {
                *xv = _mm512_loadu_pd(col.add(8 * v));
            }
            let wk = wr.offset(k as isize * w.2);
            for (r, acc) in acc.iter_mut().enumerate() {
                let b = _mm512_set1_pd(*wk.offset(r as isize * w.1));
                for (acc, xv) in acc.iter_mut().zip(&xv) {
                    *acc = _mm512_fmadd_pd(b, *xv, *acc);
                }
            }
        }
    }
    let mut su = [zero; NV];
    for (r, acc) in acc.iter().enumerate() {
        let row = (r0 + r) * n;
        let ar = _mm512_set1_pd(a[r0 + r]);
        for (v, (z, su)) in acc.iter().zip(su.iter_mut()).enumerate() {
            let i = i0 + 8 * v;
            // Samples of the row left from i (at least 1: i < np and np - n < 4).
            let left = n - i;
            if MODE == VALUES {
                // SAFETY: VALUES's buffer holds len rows of stride >= np values (caller), and
                // i + 8 <= np.
                unsafe { _mm512_storeu_pd(io.u.add((r0 + r) * io.stride + i), *z) };
            } else if MODE == HELD {
                // SAFETY: HELD's mask holds len x n bytes (caller); `left` of them remain in
                // the row of neuron r0 + r from sample i.
                let b = unsafe { sign_bytes_8(io.mask.add(row + i), left) };
                let s = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(b as i64)));
                *su = _mm512_fmadd_pd(_mm512_mul_pd(ar, s), *z, *su);
            } else {
                let bits = _mm512_cmp_pd_mask::<_CMP_GE_OQ>(*z, zero) as usize;
                let (lo, hi) = (bits & 15, bits >> 4);
                if MODE == RELU {
                    // Padded samples (z = 0) must not count as active.
                    let valid = |left: usize| (1usize << left.min(4)) - 1;
                    let q = (r0 + r) * (np / 4) + i / 4;
                    // SAFETY: RELU's mask holds len x np/4 bytes (caller); i / 4 + 1 < np / 4
                    // (i + 8 <= np), and left > 4 wherever sample i + 4 < np lies in the row.
                    unsafe {
                        *io.mask.add(q) = (lo & valid(left)) as u8;
                        *io.mask.add(q + 1) = (hi & valid(left.saturating_sub(4))) as u8;
                    }
                    *su = _mm512_fmadd_pd(ar, _mm512_max_pd(*z, zero), *su);
                } else {
                    // SAFETY: SIGNS's mask holds len x n bytes (caller); `left` of them remain
                    // in the row of neuron r0 + r from sample i (store_signs writes no more).
                    unsafe {
                        store_signs(io.mask.add(row + i), BYTES[lo], left);
                        if left > 4 {
                            store_signs(io.mask.add(row + i + 4), BYTES[hi], left - 4);
                        }
                    }
                }
            }
        }
    }
    if MODE == RELU || MODE == HELD {
        for (v, su) in su.iter().enumerate() {
            // SAFETY: u holds np values (caller) and i0 + 8 v + 8 <= np.
            unsafe {
                let p = io.u.add(i0 + 8 * v);
                _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), *su));
            }
        }
    }
}

/// Sign bytes of samples i .. i + 8 as a little-endian u64 (zero past the row's end).
///
/// # Safety
/// `p` must be valid for `valid.min(8)` byte reads.
#[inline]
unsafe fn sign_bytes_8(p: *const u8, valid: usize) -> u64 {
    if valid >= 8 {
        // SAFETY: 8 bytes readable (caller), unaligned read.
        unsafe { p.cast::<u64>().read_unaligned() }
    } else {
        let mut b = 0u64;
        for j in 0..valid {
            // SAFETY: j < valid bytes readable (caller).
            b |= u64::from(unsafe { *p.add(j) }) << (8 * j);
        }
        b
    }
}

/// Pass 1 over `len` neurons, 6 at a time, then one at a time (the order in which u's shares
/// are summed); WIDE: with 512-bit tiles ([`tile_512`]) besides, the same bits.
///
/// # Safety
/// AVX2 and FMA must be present, and AVX-512F if WIDE; `w` must address len x d values and
/// `io` the buffers of MODE (see [`Io`]) for `len` neurons; `a` holds at least `len` weights.
#[target_feature(enable = "avx2,fma")]
unsafe fn rows_all<const MODE: u8, const WIDE: bool>(
    x: &PackedX,
    w: (*const f64, isize, isize),
    len: usize,
    a: &[f64],
    io: Io,
) {
    let mut r = 0;
    while r + 6 <= len {
        // SAFETY: neurons r .. r + 6 <= len (caller's contract).
        unsafe { rows::<6, MODE, WIDE>(x, w, r, a, io) };
        r += 6;
    }
    while r < len {
        // SAFETY: neuron r < len (caller's contract).
        unsafe { rows::<1, MODE, WIDE>(x, w, r, a, io) };
        r += 1;
    }
}

/// Pass 1 for neurons r0 .. r0 + R, all samples.
///
/// # Safety
/// As [`rows_all`], with r0 + R within its `len`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn rows<const R: usize, const MODE: u8, const WIDE: bool>(
    x: &PackedX,
    w: (*const f64, isize, isize),
    r0: usize,
    a: &[f64],
    io: Io,
) {
    // The next tile's rows of W: d lines, one per column of W, which the hardware's
    // prefetchers (a few streams each) do not all follow at large m.
    let next = w.0.wrapping_offset((r0 + R) as isize * w.1);
    for k in 0..x.d {
        // A prefetch does not fault, whatever the address (one past W included).
        _mm_prefetch::<_MM_HINT_T0>(next.wrapping_offset(k as isize * w.2).cast());
    }
    let mut i0 = 0;
    if WIDE {
        while i0 + 16 <= x.np {
            // SAFETY: AVX-512F (WIDE, caller's contract); samples i0 .. i0 + 16 <= np.
            unsafe { tile_512::<R, 2, MODE>(x, w, r0, i0, a, io) };
            i0 += 16;
        }
        if i0 + 8 <= x.np {
            // SAFETY: as above, samples i0 .. i0 + 8 <= np.
            unsafe { tile_512::<R, 1, MODE>(x, w, r0, i0, a, io) };
            i0 += 8;
        }
    }
    while i0 + 8 <= x.np {
        // SAFETY: samples i0 .. i0 + 8 <= np (caller's contract for the rest).
        unsafe { tile::<R, 2, MODE>(x, w, r0, i0, a, io) };
        i0 += 8;
    }
    if i0 < x.np {
        // SAFETY: samples i0 .. i0 + 4 <= np, np a multiple of 4.
        unsafe { tile::<R, 1, MODE>(x, w, r0, i0, a, io) };
    }
}

/// z for neurons r0 .. r0 + R and samples i0 .. i0 + 4 NV, then its signs and u share.
///
/// # Safety
/// As [`rows`], with i0 + 4 NV <= np.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn tile<const R: usize, const NV: usize, const MODE: u8>(
    x: &PackedX,
    w: (*const f64, isize, isize),
    r0: usize,
    i0: usize,
    a: &[f64],
    io: Io,
) {
    let (n, np) = (x.n, x.np);
    let zero = _mm256_setzero_pd();
    let mut acc = [[zero; NV]; R];
    // In bounds: i0 < np (caller).
    let xc = x.cols.as_ptr().wrapping_add(i0);
    // SAFETY: neuron r0 < len of W (caller).
    let wr = unsafe { w.0.offset(r0 as isize * w.1) };
    for k in 0..x.d {
        // SAFETY: column k < d of the packed X (np x d), samples i0 .. i0 + 4 NV <= np
        // (caller); W's entries (r0 + r, k) with r < R inside its len x d (caller).
        unsafe {
            let col = xc.add(k * np);
            let mut xv = [zero; NV];
            for (v, xv) in xv.iter_mut().enumerate() {
                *xv = _mm256_loadu_pd(col.add(4 * v));
            }
            let wk = wr.offset(k as isize * w.2);
            for (r, acc) in acc.iter_mut().enumerate() {
                let b = _mm256_broadcast_sd(&*wk.offset(r as isize * w.1));
                for (acc, xv) in acc.iter_mut().zip(&xv) {
                    *acc = _mm256_fmadd_pd(b, *xv, *acc);
                }
            }
        }
    }
    let mut su = [zero; NV];
    for (r, acc) in acc.iter().enumerate() {
        let row = (r0 + r) * n;
        let ar = _mm256_set1_pd(a[r0 + r]);
        for (v, (z, su)) in acc.iter().zip(su.iter_mut()).enumerate() {
            let i = i0 + 4 * v;
            if MODE == VALUES {
                // SAFETY: VALUES's buffer holds len rows of stride >= np values (caller), and
                // i + 4 <= np.
                unsafe { _mm256_storeu_pd(io.u.add((r0 + r) * io.stride + i), *z) };
            } else if MODE == HELD {
                // SAFETY: HELD's mask holds len x n bytes (caller); row + i is sample i < n of
                // neuron r0 + r, with n - i of them left in the row.
                let s = unsafe { load_signs(io.mask.add(row + i), n - i) };
                *su = _mm256_fmadd_pd(_mm256_mul_pd(ar, s), *z, *su);
            } else {
                let on = _mm256_cmp_pd::<_CMP_GE_OQ>(*z, zero);
                let bits = _mm256_movemask_pd(on) as usize;
                if MODE == RELU {
                    // Padded samples (z = 0) must not count as active.
                    let valid = (1usize << (n - i).min(4)) - 1;
                    // SAFETY: RELU's mask holds len x np/4 bytes (caller); i / 4 < np / 4.
                    unsafe { *io.mask.add((r0 + r) * (np / 4) + i / 4) = (bits & valid) as u8 };
                    *su = _mm256_fmadd_pd(ar, _mm256_max_pd(*z, zero), *su);
                } else {
                    // SAFETY: SIGNS's mask holds len x n bytes (caller); n - i of them remain
                    // in the row of neuron r0 + r.
                    unsafe { store_signs(io.mask.add(row + i), BYTES[bits], n - i) };
                }
            }
        }
    }
    if MODE == RELU || MODE == HELD {
        for (v, su) in su.iter().enumerate() {
            // SAFETY: u holds np values (caller) and i0 + 4 v + 4 <= np.
            unsafe {
                let p = io.u.add(i0 + 4 * v);
                _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), *su));
            }
        }
    }
}

/// The four doubles of a 4-bit sign mask.
#[repr(C, align(32))]
struct Unpacked([[f64; 4]; 16]);
static UNPACKED: Unpacked = {
    let mut t = [[0.0; 4]; 16];
    let mut b = 0;
    while b < 16 {
        let mut j = 0;
        while j < 4 {
            if b >> j & 1 == 1 {
                t[b][j] = 1.0;
            }
            j += 1;
        }
        b += 1;
    }
    Unpacked(t)
};

/// Pass 2 over `len` neurons, 2 at a time (WIDE: 4 at a time with 512-bit vectors, then 2,
/// then 1, and for the ReLU's nibbles 8 at a time along the vectors' lanes first: each g_rk
/// the same FMA chain over i in order either way, so the same bits).
///
/// # Safety
/// AVX2 and FMA must be present, and AVX-512F if WIDE; `g` must address len x d values no one else touches; the
/// mask holds len rows in its format (NIBBLES: np/4 bytes a row, else n); ds holds np values,
/// a at least len, p [`transpose_scratch`].
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose_all<const NIBBLES: bool, const WIDE: bool>(
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: &[u8],
    len: usize,
    g: (*mut f64, isize, isize),
    p: &mut [f64],
) {
    if WIDE && !NIBBLES {
        // A held pattern's bytes: over the active samples only. (Eight rows along the lanes,
        // as the nibbles take them, cost more than the padding saved: bench rhs's step
        // column, two held passes and a sign pass, 0.072 -> 0.081 ms at m = 400.)
        // SAFETY: AVX-512F and POPCNT (WIDE: the token's avx512, caller's contract); a held
        // pattern's len rows of n 0/1 bytes, the other sizes as this function's contract.
        return unsafe {
            if x.n * x.dw.min(24) * 8 > FOUR_ROWS_FROM_BYTES {
                sparse_all::<4, 1>(x, [ds], a, mask, len, [g], p)
            } else {
                sparse_all::<2, 1>(x, [ds], a, mask, len, [g], p)
            }
        };
    }
    let mut r = 0;
    if WIDE {
        // The ReLU's nibbles (a held pattern's bytes went to `sparse_all` above). Eight rows
        // of a column are one store only where G is column-major, as every caller's nalgebra
        // view is.
        while NIBBLES && g.1 == 1 && r + 8 <= len {
            // SAFETY: AVX-512F (WIDE, caller's contract); neurons r .. r + 8 <= len of a
            // column-major G, nibble signs.
            unsafe { transpose_lanes(x, ds, a, mask, r, g, p) };
            r += 8;
        }
        while r + 4 <= len {
            // SAFETY: neurons r .. r + 4 <= len (caller's contract).
            unsafe { transpose_rows::<4, NIBBLES, WIDE>(x, ds, a, mask, r, g, p) };
            r += 4;
        }
    }
    while r + 2 <= len {
        // SAFETY: neurons r .. r + 2 <= len (caller's contract).
        unsafe { transpose_rows::<2, NIBBLES, WIDE>(x, ds, a, mask, r, g, p) };
        r += 2;
    }
    if r < len {
        // SAFETY: neuron r < len (caller's contract).
        unsafe { transpose_rows::<1, NIBBLES, WIDE>(x, ds, a, mask, r, g, p) };
    }
}

/// Pass 2 of a held pattern (0/1 bytes) over its active samples only: g_r = sum_i a_r S_ri
/// ds_i x_i with the terms S_ri = 0 left out, for V = 1 or 2 products (`ds[u]` into `g[u]`)
/// that share the walk over the active samples and each load of x_i (`transpose_pair`);
/// each product's accumulators run the chains a single product's pass runs, so V does not
/// change the bits. Two products paired took 0.78, 0.75, 0.77 and 0.79 of the time of two
/// single passes at n = 100, d = 20 and m = 400, 1000, 10,000, 100,000 (`bench rhs`'s last
/// two columns, Zen 5, 2026-12-03): the loads of X's rows, not the FMAs, bound a single pass.
/// Each row's active samples are first listed (16 at a time by a compress, no branch per
/// sample: a data-dependent branch per sample or per short run cost more than the FMAs it
/// fed), then R = 2 or 4 rows are summed side by side from X's rows on 64-byte lines
/// ([`PackedX`]'s `lines`), as 512-bit vectors plus a 256-bit one where a block of columns
/// ends on 4 (d = 20: 2 + 1/2 vectors where the dense tiles spend three full ones).
///
/// Same bits as the dense tiles ([`columns_512`]) for finite ds: they add each left-out term
/// as an FMA of (a_r 0) ds_i = ±0, which returns the accumulator unchanged (an accumulator
/// that starts at +0 is never −0: a sum rounds to −0 only when both its terms are −0), and
/// the kept terms' products (a_r 1) ds_i = a_r ds_i in the same order of i. A NaN or
/// infinite ds_i of an inactive sample no longer reaches g_r (a run stops on a non-finite Δ
/// before it gets here). Measured on a Zen 4 at n = 100, m = 400, half the entries active:
/// one pass 42 µs dense, 33 µs here (the loads of X's rows, 2.5 vectors a term, bound it;
/// four rows side by side, or the products a_r ds_i taken beforehand, were slower). Four rows
/// (the longest list first, the rows dropping out of the side-by-side sums one by one) where
/// X's rows outgrow the L1 cache ([`FOUR_ROWS_FROM_BYTES`]; for V = 1: the pair keeps two).
///
/// # Safety
/// AVX2, FMA, AVX-512F and POPCNT must be present; each `g[u]` must address len x d values no
/// one else touches (the `g[u]` pairwise disjoint); `mask` holds len rows of n bytes, each 0
/// or 1; each `ds[u]` holds n values, a at least len, p [`transpose_scratch`].
#[target_feature(enable = "avx512f,avx2,fma,popcnt")]
unsafe fn sparse_all<const R: usize, const V: usize>(
    x: &PackedX,
    ds: [&[f64]; V],
    a: &[f64],
    mask: &[u8],
    len: usize,
    g: [(*mut f64, isize, isize); V],
    p: &mut [f64],
) {
    let n = x.n;
    assert!(
        ds.iter().all(|ds| ds.len() >= n) && a.len() >= len && mask.len() >= len * n,
        "pass 2 inputs too short"
    );
    // The rows' lists of active samples in the scratch (4 np + 64 doubles hold four lists of
    // n + 16 u32).
    // SAFETY: every bit pattern is a u32, and an f64's alignment is a u32's.
    let (_, lists, _) = unsafe { p.align_to_mut::<u32>() };
    let stride = n + 16;
    assert!(lists.len() >= R * stride, "pass 2 scratch too small");
    let mut r = 0;
    while r < len {
        let rows = (len - r).min(R);
        let mut counts = [0; R];
        for (k, (list, count)) in lists.chunks_exact_mut(stride).zip(&mut counts).enumerate() {
            if k < rows {
                // SAFETY: AVX-512F and POPCNT (caller); row r + k < len of n bytes, a list of
                // n + 16 entries.
                *count = unsafe { active_samples(&mask[(r + k) * n..len * n], n, list) };
            }
        }
        // Longest list first: the rows drop out of the side-by-side sums one by one.
        let mut order: [usize; R] = std::array::from_fn(|k| k);
        // (An insertion sort of R <= 4 entries; the library's sort cost more at n = 100. Two
        // rows keep their order: their loop in `sparse_columns` takes both tails.)
        if R > 2 {
            for k in 1..R {
                let mut j = k;
                while j > 0 && counts[order[j - 1]] < counts[order[j]] {
                    order.swap(j - 1, j);
                    j -= 1;
                }
            }
        }
        let lists: [&[u32]; R] = order.map(|k| &lists[k * stride..k * stride + counts[k]]);
        let mut c = 0;
        while c < x.d {
            // SAFETY: columns c .. c + 4 quads <= dp of X's rows; rows r .. r + rows of G
            // (caller), the others neither read nor written; list entries below n.
            unsafe {
                match (x.d - c).div_ceil(4).min(6) {
                    1 => sparse_columns::<0, true, R, V>(x, ds, a, lists, order, rows, r, c, g),
                    2 => sparse_columns::<1, false, R, V>(x, ds, a, lists, order, rows, r, c, g),
                    3 => sparse_columns::<1, true, R, V>(x, ds, a, lists, order, rows, r, c, g),
                    4 => sparse_columns::<2, false, R, V>(x, ds, a, lists, order, rows, r, c, g),
                    5 => sparse_columns::<2, true, R, V>(x, ds, a, lists, order, rows, r, c, g),
                    _ => sparse_columns::<3, false, R, V>(x, ds, a, lists, order, rows, r, c, g),
                }
            }
            c += 24;
        }
        r += R;
    }
}

/// The bytes of X's rows one block of columns reads (n x up to 24 columns) past which
/// [`sparse_all`] sums four neurons side by side rather than two: out of the L1 cache (48 KiB
/// on a Zen 5) the loads of X's rows wait longer and four chains hide it. Measured on a Zen 5,
/// one pass at m = 400, d = 20: two rows 21 us at n = 100, 40 us at n = 200, 130 us at n = 250
/// (m = 1000), against four rows' 25, 42 and 137 us; at n = 300 (57,600 bytes, m = 2000)
/// 350 against 324 us, at n = 1000 262 against 192 us.
const FOUR_ROWS_FROM_BYTES: usize = 48 * 1024;

/// The samples whose byte is nonzero, in increasing order, into `list`; their number. Without
/// a branch per sample (a data-dependent branch per sample or per short run of samples cost
/// more than the FMAs it fed): 16 bytes compared at once, their indices compressed into one
/// vector and stored whole (the entries past the count are scratch). The row is the first n
/// bytes of `bytes`; a last partial vector reads on into what follows it where `bytes` goes on
/// (the next rows), its bits past n masked off, and is copied out only at `bytes`' end (a copy
/// per row was a third of building the lists at n = 100).
///
/// # Safety
/// AVX-512F and POPCNT must be present; `bytes` holds at least n, `list` n + 16 entries.
#[target_feature(enable = "avx512f,avx2,popcnt")]
#[inline]
unsafe fn active_samples(bytes: &[u8], n: usize, list: &mut [u32]) -> usize {
    assert!(
        bytes.len() >= n && list.len() >= n + 16,
        "row or list too short"
    );
    let mut count = 0;
    let step = _mm512_set1_epi32(16);
    let mut idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    // The 16 bytes at i0 (read by `load`), those below `valid` kept.
    let mut take = |load: __m128i, valid: u32| {
        let zero = _mm_movemask_epi8(_mm_cmpeq_epi8(load, _mm_setzero_si128()));
        let set = !(zero as u32) & (u32::MAX >> (32 - valid));
        let kept = _mm512_maskz_compress_epi32(set as __mmask16, idx);
        // SAFETY: list entries count .. count + 16 <= i0 + 16 <= n + 16 (count <= i0).
        unsafe { _mm512_storeu_si512(list.as_mut_ptr().add(count).cast(), kept) };
        count += set.count_ones() as usize;
        idx = _mm512_add_epi32(idx, step);
    };
    let mut i0 = 0;
    while i0 + 16 <= n {
        // SAFETY: bytes i0 .. i0 + 16 <= n.
        take(
            unsafe { _mm_loadu_si128(bytes.as_ptr().add(i0).cast()) },
            16,
        );
        i0 += 16;
    }
    if i0 < n {
        let valid = n - i0;
        let v = if i0 + 16 <= bytes.len() {
            // SAFETY: bytes i0 .. i0 + 16 within `bytes`.
            unsafe { _mm_loadu_si128(bytes.as_ptr().add(i0).cast()) }
        } else {
            let mut b = [0u8; 16];
            b[..valid].copy_from_slice(&bytes[i0..n]);
            // SAFETY: 16 bytes of b.
            unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
        };
        take(v, valid as u32);
    }
    count
}

/// Columns c .. c + 8 Z + 4 Y (those below d) of the rows r0 + order[k] (k < R, those below
/// `rows`) of each of the V products' G (`g[u]` from `ds[u]`), from their lists of active
/// samples: Z full 512-bit vectors of X's padded row and, if Y, one 256-bit vector (dp is a
/// multiple of 4).
///
/// # Safety
/// As [`sparse_all`], with c + 8 Z + 4 Y <= dp, list entries below n, the lists longest
/// first, row r0 + order[k] of each `g[u]` within its len for each k with order[k] < rows
/// (the other lists empty).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn sparse_columns<const Z: usize, const Y: bool, const R: usize, const V: usize>(
    x: &PackedX,
    ds: [&[f64]; V],
    a: &[f64],
    lists: [&[u32]; R],
    order: [usize; R],
    rows: usize,
    r0: usize,
    c: usize,
    g: [(*mut f64, isize, isize); V],
) {
    let dp = x.dw;
    let mut wide = [[[_mm512_setzero_pd(); Z]; R]; V];
    let mut half = [[_mm256_setzero_pd(); R]; V];
    let ar: [f64; R] = order.map(|k| if k < rows { a[r0 + k] } else { 0.0 });
    // In bounds: c < d <= dp.
    let xr = x.lines.as_ptr().wrapping_add(c);
    type Wide<const Z: usize, const R: usize, const V: usize> = [[[__m512d; Z]; R]; V];
    // One term of row r: g_r += (a_r ds_i) x_i for each of the V products, from one load of
    // x_i (each accumulator's chain is the one a single product's pass runs).
    let term = |r: usize, i: u32, wide: &mut Wide<Z, R, V>, half: &mut [[__m256d; R]; V]| {
        let i = i as usize;
        // SAFETY: i < n (caller), so ds_i and packed row i of X (dp values, columns
        // c .. c + 8 Z + 4 Y <= dp by the caller) are in bounds.
        unsafe {
            let row = xr.add(i * dp);
            let xs: [__m512d; Z] = std::array::from_fn(|v| _mm512_loadu_pd(row.add(8 * v)));
            let xh = if Y {
                _mm256_loadu_pd(row.add(8 * Z))
            } else {
                _mm256_setzero_pd()
            };
            for (u, ds) in ds.iter().enumerate() {
                let b = _mm512_set1_pd(ar[r] * *ds.get_unchecked(i));
                for (acc, xv) in wide[u][r].iter_mut().zip(&xs) {
                    *acc = _mm512_fmadd_pd(b, *xv, *acc);
                }
                if Y {
                    half[u][r] = _mm256_fmadd_pd(_mm512_castpd512_pd256(b), xh, half[u][r]);
                }
            }
        }
    };
    // Four chains side by side while every list lasts, then three, two, one, so that loads of
    // X's rows from beyond L1 overlap; two rows as a pair, then each row's tail.
    let lens = lists.map(|l| l.len());
    let len = |k: usize| lens.get(k).copied().unwrap_or(0);
    let mut phase = |live: usize, ks: std::ops::Range<usize>| {
        for k in ks {
            for (r, list) in lists[..live].iter().enumerate() {
                // SAFETY: k below the shortest of the first `live` lists' lengths.
                term(r, unsafe { *list.get_unchecked(k) }, &mut wide, &mut half);
            }
        }
    };
    if R == 4 {
        phase(4, 0..len(3));
        phase(3, len(3)..len(2));
        phase(2, len(2)..len(1));
        phase(1, len(1)..len(0));
    } else {
        let all = len(0).min(len(1));
        phase(2, 0..all);
        for (r, list) in lists.iter().enumerate() {
            for &i in &list[all..] {
                term(r, i, &mut wide, &mut half);
            }
        }
    }
    let mut t = [0.0; 24];
    for (u, g) in g.iter().enumerate() {
        for (r, &k) in order.iter().enumerate().filter(|(_, &k)| k < rows) {
            // SAFETY: t holds 24 >= 8 Z + 4 Y doubles.
            unsafe {
                for (v, acc) in wide[u][r].iter().enumerate() {
                    _mm512_storeu_pd(t.as_mut_ptr().add(8 * v), *acc);
                }
                if Y {
                    _mm256_storeu_pd(t.as_mut_ptr().add(8 * Z), half[u][r]);
                }
            }
            // SAFETY: row r0 + k of G's len rows (caller).
            let gr = unsafe { g.0.offset((r0 + k) as isize * g.1) };
            for (j, t) in t[..8 * Z + 4 * usize::from(Y)].iter().enumerate() {
                let k = c + j;
                if k < x.d {
                    // SAFETY: column k < d of a row of G (caller).
                    unsafe { *gr.offset(k as isize * g.2) = *t };
                }
            }
        }
    }
}

/// Pass 2 for neurons r0 .. r0 + R: their rows of P into `p`, then their rows of G.
///
/// # Safety
/// As [`transpose_all`], with r0 + R within its `len`.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn transpose_rows<const R: usize, const NIBBLES: bool, const WIDE: bool>(
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: &[u8],
    r0: usize,
    g: (*mut f64, isize, isize),
    p: &mut [f64],
) {
    // G's lines 8 rows on (a line holds 8 rows of a column): d store streams.
    prefetch_row(g, r0 + 8, x.d);
    if WIDE {
        // SAFETY: AVX-512F (WIDE, caller's contract); P's R <= 4 rows of np values fit p.
        unsafe { fill_p_512::<R, NIBBLES>(x, ds, a, mask, r0, p) };
        let mut c = 0;
        while c < x.d {
            // SAFETY: as above; columns c .. min(c + 24, d) of the packed rows of X, rows
            // r0 .. r0 + R of G (caller).
            unsafe {
                match (x.d - c).div_ceil(8) {
                    1 => columns_512::<R, 1>(x, p, r0, c, g),
                    2 => columns_512::<R, 2>(x, p, r0, c, g),
                    _ => columns_512::<R, 3>(x, p, r0, c, g),
                }
            }
            c += 24;
        }
        return;
    }
    // SAFETY: as this function's contract (P's R rows of np values fit p).
    unsafe { fill_p::<R, NIBBLES>(x, ds, a, mask, r0, p) };
    let vectors = x.dp / 4;
    let mut c = 0;
    while c < vectors {
        let kv = (vectors - c).min(5);
        // SAFETY: columns 4 c .. 4 (c + kv) <= dp of the packed rows of X; rows r0 .. r0 + R
        // of G (caller).
        unsafe {
            match kv {
                5 => columns::<R, 5>(x, p, r0, c, g),
                4 => columns::<R, 4>(x, p, r0, c, g),
                3 => columns::<R, 3>(x, p, r0, c, g),
                2 => columns::<R, 2>(x, p, r0, c, g),
                _ => columns::<R, 1>(x, p, r0, c, g),
            }
        }
        c += kv;
    }
}

/// Pass 2 for the eight neurons r0 .. r0 + 8 along the lanes of 512-bit vectors, from the
/// ReLU's nibble signs ([`Signs::Nibbles`](super::Signs::Nibbles)): first their signs at each
/// sample as one byte into the scratch `p` (eight samples at a time, an 8 x 8 bit-matrix
/// transpose of the neurons' rows), then G's columns from up to 24 accumulators
/// ([`lanes_columns`]: per sample, P's column p_i = a ds_i on the lanes its byte sets, then
/// one broadcast x_ik and one FMA per column).
///
/// Against [`fill_p_512`] and [`columns_512`]: no FMA works on padding (d = 20 columns are 20
/// vectors, where 3 x 8 lanes leave a sixth idle), P is never stored (one masked product per
/// sample, no sign converted to a double), and a column-major G takes each column's eight
/// rows in one store. Same bits: where S_ri = 1, P_ri is a_r ds_i either way ((a_r 1) ds_i);
/// where S_ri = 0 the lane holds +0 where fill_p_512 has a_r 0 ds_i = ±0, and an FMA chain
/// started at +0 never holds -0 (a rounded sum is -0 only when both terms are), so adding
/// either zero leaves it as it was.
///
/// # Safety
/// As [`transpose_all`] with AVX-512F and nibble signs, r0 + 8 within its `len`, and G
/// column-major (row stride 1).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn transpose_lanes(
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: &[u8],
    r0: usize,
    g: (*mut f64, isize, isize),
    p: &mut [f64],
) {
    let (n, np) = (x.n, x.np);
    let row_bytes = np / 4;
    assert!(
        ds.len() >= n
            && p.len() >= n.div_ceil(8)
            && a.len() >= r0 + 8
            && mask.len() >= (r0 + 8) * row_bytes,
        "pass 2 inputs too short"
    );
    // The next eight neurons' lines of G: d store streams.
    prefetch_row(g, r0 + 8, x.d);
    // SAFETY: a holds r0 + 8 values (checked above).
    let av = unsafe { _mm512_loadu_pd(a.as_ptr().add(r0)) };
    let mut i0 = 0;
    while i0 < n {
        // Byte j: the signs of neuron r0 + j at samples i0 .. i0 + 8, bit s for sample i0 + s.
        let mut by_neuron = 0u64;
        for j in 0..8 {
            // Nibbles past n are 0 (pass 1 masks them); past np there is no byte.
            let q = (r0 + j) * row_bytes + i0 / 4;
            // SAFETY: byte i0 / 4 < np / 4 of neuron r0 + j's row, and the next one where
            // i0 + 4 < np (sizes checked above).
            let (lo, hi) = unsafe {
                let hi = if i0 + 4 < np {
                    *mask.get_unchecked(q + 1)
                } else {
                    0
                };
                (*mask.get_unchecked(q), hi)
            };
            let bits = u64::from(lo & 15 | (hi & 15) << 4);
            by_neuron |= bits << (8 * j);
        }
        // Byte s: the eight neurons' signs at sample i0 + s, kept as the bits of a double
        // (moved, never computed with) in the scratch, byte i of which is sample i's.
        p[i0 / 8] = f64::from_bits(transpose_bits_8x8(by_neuron));
        i0 += 8;
    }
    // Little-endian (x86-64): byte s of the double at i0 / 8 is byte i0 + s of the scratch.
    let on = p.as_ptr().cast::<u8>();
    let mut c = 0;
    while c < x.d {
        // SAFETY: as above; `on` holds n.div_ceil(8) x 8 >= n bytes; columns c .. c + 4 k
        // <= dp of the packed rows of X (dp a multiple of 4 above c), rows r0 .. r0 + 8 of G
        // (caller).
        unsafe {
            match (x.dp - c).min(24) / 4 {
                6 => lanes_columns::<24>(x, on, ds, av, r0, c, g),
                5 => lanes_columns::<20>(x, on, ds, av, r0, c, g),
                4 => lanes_columns::<16>(x, on, ds, av, r0, c, g),
                3 => lanes_columns::<12>(x, on, ds, av, r0, c, g),
                2 => lanes_columns::<8>(x, on, ds, av, r0, c, g),
                _ => lanes_columns::<4>(x, on, ds, av, r0, c, g),
            }
        }
        c += 24;
    }
}

/// The 8 x 8 bit matrix with byte j as row j and bit s as column s, transposed (three swaps
/// of off-diagonal blocks, 1 x 1 then 2 x 2 then 4 x 4; Warren, Hacker's Delight, 7-3).
fn transpose_bits_8x8(mut x: u64) -> u64 {
    let t = (x ^ (x >> 7)) & 0x00AA_00AA_00AA_00AA;
    x ^= t ^ (t << 7);
    let t = (x ^ (x >> 14)) & 0x0000_CCCC_0000_CCCC;
    x ^= t ^ (t << 14);
    let t = (x ^ (x >> 28)) & 0x0000_0000_F0F0_F0F0;
    x ^ t ^ (t << 28)
}

/// Columns c .. c + KC (those below d) of G's rows r0 .. r0 + 8: sum_i p_i x_ik, the neurons
/// along the lanes, with p_i = a ds_i on the lanes that sample i's sign byte `on[i]` sets
/// ([`transpose_lanes`]).
///
/// # Safety
/// As [`transpose_lanes`], with `on` holding n bytes, c + KC <= dp and G column-major (row
/// stride 1).
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn lanes_columns<const KC: usize>(
    x: &PackedX,
    on: *const u8,
    ds: &[f64],
    a: __m512d,
    r0: usize,
    c: usize,
    g: (*mut f64, isize, isize),
) {
    let dp = x.dp;
    let zero = _mm512_setzero_pd();
    let mut acc = [zero; KC];
    // In bounds: c < d <= dp (caller).
    let xr = x.rows.as_ptr().wrapping_add(c);
    for (i, ds) in ds[..x.n].iter().enumerate() {
        // SAFETY: `on` holds n bytes (caller), i < n; packed row i of X holds dp values and
        // c + KC <= dp (caller).
        unsafe {
            let pv = _mm512_maskz_mul_pd(*on.add(i), a, _mm512_set1_pd(*ds));
            let row = xr.add(i * dp);
            for (k, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_pd(pv, _mm512_set1_pd(*row.add(k)), *acc);
            }
        }
    }
    for (k, acc) in acc.iter().enumerate() {
        let col = c + k;
        if col >= x.d {
            break;
        }
        // SAFETY: column col < d of a column-major G, whose rows r0 .. r0 + 8 there are
        // adjacent (caller).
        unsafe { _mm512_storeu_pd(g.0.offset(r0 as isize + col as isize * g.2), *acc) };
    }
}

/// Prefetches the lines of G's row r, columns 0 .. d (any r: a prefetch does not fault,
/// whatever the address).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn prefetch_row(g: (*mut f64, isize, isize), r: usize, d: usize) {
    let row = g.0.wrapping_offset(r as isize * g.1);
    for k in 0..d {
        _mm_prefetch::<_MM_HINT_T0>(row.wrapping_offset(k as isize * g.2).cast());
    }
}

/// Rows r0 .. r0 + R of P into `p` (R rows of np values): P_ri = a_r S_ri ds_i.
///
/// # Safety
/// AVX2 and FMA must be present; the mask holds the rows r0 .. r0 + R in its format, ds np
/// values, a at least r0 + R, p R np.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn fill_p<const R: usize, const NIBBLES: bool>(
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: &[u8],
    r0: usize,
    p: &mut [f64],
) {
    let (n, np) = (x.n, x.np);
    for r in 0..R {
        let ar = _mm256_set1_pd(a[r0 + r]);
        for i in (0..np).step_by(4) {
            let s = if NIBBLES {
                let bits = mask[(r0 + r) * (np / 4) + i / 4] & 15;
                // SAFETY: UNPACKED's rows are 32-byte aligned groups of 4 doubles.
                unsafe { _mm256_load_pd(UNPACKED.0[bits as usize].as_ptr()) }
            } else {
                // SAFETY: the mask holds len x n bytes (caller); sample i < n of neuron
                // r0 + r, n - i of them left in the row (load_signs reads no more).
                unsafe { load_signs(mask.as_ptr().add((r0 + r) * n + i), n - i) }
            };
            // SAFETY: ds holds np values and p R np (caller), i + 4 <= np, r < R.
            unsafe {
                let pv = _mm256_mul_pd(_mm256_mul_pd(ar, s), _mm256_loadu_pd(ds.as_ptr().add(i)));
                _mm256_storeu_pd(p.as_mut_ptr().add(r * np + i), pv);
            }
        }
    }
}

/// [`fill_p`] 8 samples at a time: the same S_ri as doubles (the mask's bytes converted, or
/// the nibbles' table rows) and the same two products, so the same bits.
///
/// # Safety
/// As [`fill_p`], and AVX-512F must be present.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn fill_p_512<const R: usize, const NIBBLES: bool>(
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: &[u8],
    r0: usize,
    p: &mut [f64],
) {
    let (n, np) = (x.n, x.np);
    let row_bytes = if NIBBLES { np / 4 } else { n };
    assert!(
        ds.len() >= np
            && p.len() >= R * np
            && a.len() >= r0 + R
            && mask.len() >= (r0 + R) * row_bytes,
        "pass 2 inputs too short"
    );
    // Groups of 8 samples with all 8 inside the row (and so inside np), unmasked.
    let full = if NIBBLES { np / 8 * 8 } else { n / 8 * 8 };
    for r in 0..R {
        let ar = _mm512_set1_pd(a[r0 + r]);
        let row = &mask[(r0 + r) * row_bytes..(r0 + r + 1) * row_bytes];
        let signs = |i: usize, lanes: usize| -> __m512d {
            if NIBBLES {
                let lo = row[i / 4] & 15;
                let hi = if lanes == 8 { row[i / 4 + 1] & 15 } else { 0 };
                // SAFETY: UNPACKED's rows are 32-byte aligned groups of 4 doubles.
                unsafe {
                    let lo = _mm256_load_pd(UNPACKED.0[lo as usize].as_ptr());
                    let hi = _mm256_load_pd(UNPACKED.0[hi as usize].as_ptr());
                    _mm512_insertf64x4::<1>(_mm512_castpd256_pd512(lo), hi)
                }
            } else {
                let valid = n.saturating_sub(i).min(8);
                let b = if valid == 8 {
                    // SAFETY: bytes i .. i + 8 <= n of the row, unaligned read.
                    unsafe { row.as_ptr().add(i).cast::<u64>().read_unaligned() }
                } else {
                    let mut b = 0u64;
                    for (j, v) in row[i..i + valid].iter().enumerate() {
                        b |= u64::from(*v) << (8 * j);
                    }
                    b
                };
                _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(b as i64)))
            }
        };
        let (dp, pp) = (ds.as_ptr(), p.as_mut_ptr().wrapping_add(r * np));
        let mut i = 0;
        while i < full {
            let s = signs(i, 8);
            // SAFETY: samples i .. i + 8 <= np of ds (np values) and of p's row r < R
            // (checked above).
            unsafe {
                let pv = _mm512_mul_pd(_mm512_mul_pd(ar, s), _mm512_loadu_pd(dp.add(i)));
                _mm512_storeu_pd(pp.add(i), pv);
            }
            i += 8;
        }
        while i < np {
            // np is a multiple of 4: the last 4 or 8 samples, some past the row's end.
            let lanes = (np - i).min(8);
            let live: __mmask8 = if lanes == 8 { 0xff } else { 0x0f };
            let s = signs(i, lanes);
            // SAFETY: as above, the masked lanes i .. i + lanes <= np, the others neither read
            // nor written.
            unsafe {
                let d = _mm512_maskz_loadu_pd(live, dp.add(i));
                let pv = _mm512_mul_pd(_mm512_mul_pd(ar, s), d);
                _mm512_mask_storeu_pd(pp.add(i), live, pv);
            }
            i += lanes;
        }
    }
}

/// Columns c .. c + 8 KV (those below d) of G's rows r0 .. r0 + R: sum_i p_ri x_i, the last
/// vector's columns past d masked off.
///
/// # Safety
/// As [`transpose_rows`] with AVX-512F, and c + 8 (KV - 1) < d.
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
unsafe fn columns_512<const R: usize, const KV: usize>(
    x: &PackedX,
    p: &[f64],
    r0: usize,
    c: usize,
    g: (*mut f64, isize, isize),
) {
    let (np, dp) = (x.np, x.dp);
    let last = (x.d - c - 8 * (KV - 1)).min(8);
    let tail: __mmask8 = ((1u16 << last) - 1) as u8;
    let zero = _mm512_setzero_pd();
    let mut acc = [[zero; KV]; R];
    // In bounds: c < d <= dp (caller).
    let xr = x.rows.as_ptr().wrapping_add(c);
    for i in 0..x.n {
        // SAFETY: packed row i < n of X holds dp values; the full vectors' columns
        // c .. c + 8 (KV - 1) lie below d <= dp (caller) and the last one's load is masked to
        // its columns below d (masked-off lanes are not read and cannot fault); p holds R rows
        // of np values (caller), i < n <= np.
        unsafe {
            let row = xr.add(i * dp);
            let mut b = [zero; R];
            for (r, b) in b.iter_mut().enumerate() {
                *b = _mm512_set1_pd(*p.get_unchecked(r * np + i));
            }
            for v in 0..KV {
                let xv = if v + 1 < KV {
                    _mm512_loadu_pd(row.add(8 * v))
                } else {
                    _mm512_maskz_loadu_pd(tail, row.add(8 * v))
                };
                for (acc, b) in acc.iter_mut().zip(&b) {
                    acc[v] = _mm512_fmadd_pd(*b, xv, acc[v]);
                }
            }
        }
    }
    if R == 4 && g.1 == 1 {
        // Four neighbouring rows of a column-major G: each column's four entries are
        // adjacent, so the 4 x 8 blocks are transposed in registers and stored 4 at a time.
        let lo = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
        let hi = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
        let (first, second) = (
            acc[0].iter().zip(&acc[1]),
            acc[2 % R].iter().zip(&acc[3 % R]),
        );
        for (v, ((&a0, &a1), (&a2, &a3))) in first.zip(second).enumerate() {
            let (l01, h01) = (_mm512_unpacklo_pd(a0, a1), _mm512_unpackhi_pd(a0, a1));
            let (l23, h23) = (_mm512_unpacklo_pd(a2, a3), _mm512_unpackhi_pd(a2, a3));
            // Columns (0, 2), (4, 6), (1, 3), (5, 7) of this vector, 4 rows each.
            let pairs = [
                (_mm512_permutex2var_pd(l01, lo, l23), 0),
                (_mm512_permutex2var_pd(l01, hi, l23), 4),
                (_mm512_permutex2var_pd(h01, lo, h23), 1),
                (_mm512_permutex2var_pd(h01, hi, h23), 5),
            ];
            for (pair, j) in pairs {
                let halves = [
                    _mm512_castpd512_pd256(pair),
                    _mm512_extractf64x4_pd::<1>(pair),
                ];
                for (h, half) in halves.into_iter().enumerate() {
                    let k = c + 8 * v + j + 2 * h;
                    if k < x.d {
                        // SAFETY: rows r0 .. r0 + 4 of column k < d of G (caller), adjacent
                        // since the row stride is 1.
                        unsafe {
                            _mm256_storeu_pd(g.0.offset(r0 as isize + k as isize * g.2), half)
                        };
                    }
                }
            }
        }
        return;
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r0 + r of G's len rows (caller).
        let gr = unsafe { g.0.offset((r0 + r) as isize * g.1) };
        for (v, acc) in acc.iter().enumerate() {
            let mut t = [0.0; 8];
            // SAFETY: t holds 8 doubles.
            unsafe { _mm512_storeu_pd(t.as_mut_ptr(), *acc) };
            for (j, t) in t.iter().enumerate() {
                let k = c + 8 * v + j;
                if k < x.d {
                    // SAFETY: column k < d of a row of G (caller).
                    unsafe { *gr.offset(k as isize * g.2) = *t };
                }
            }
        }
    }
}

/// Columns 4 c .. 4 (c + KV) of G's rows r0 .. r0 + R: sum_i p_ri x_i.
///
/// # Safety
/// As [`transpose_rows`], with 4 (c + KV) <= dp.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn columns<const R: usize, const KV: usize>(
    x: &PackedX,
    p: &[f64],
    r0: usize,
    c: usize,
    g: (*mut f64, isize, isize),
) {
    let (np, dp) = (x.np, x.dp);
    let zero = _mm256_setzero_pd();
    let mut acc = [[zero; KV]; R];
    // In bounds: 4 c < dp (caller).
    let xr = x.rows.as_ptr().wrapping_add(4 * c);
    for i in 0..x.n {
        // SAFETY: packed row i < n of X holds dp values and 4 (c + KV) <= dp (caller); p holds
        // R rows of np values (caller), i < n <= np.
        unsafe {
            let row = xr.add(i * dp);
            let mut b = [zero; R];
            for (r, b) in b.iter_mut().enumerate() {
                *b = _mm256_broadcast_sd(p.get_unchecked(r * np + i));
            }
            for v in 0..KV {
                let xv = _mm256_loadu_pd(row.add(4 * v));
                for (acc, b) in acc.iter_mut().zip(&b) {
                    acc[v] = _mm256_fmadd_pd(*b, xv, acc[v]);
                }
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: row r0 + r of G's len rows (caller).
        let gr = unsafe { g.0.offset((r0 + r) as isize * g.1) };
        for (v, acc) in acc.iter().enumerate() {
            let mut t = [0.0; 4];
            // SAFETY: t holds 4 doubles.
            unsafe { _mm256_storeu_pd(t.as_mut_ptr(), *acc) };
            for (j, t) in t.iter().enumerate() {
                let k = 4 * (c + v) + j;
                if k < x.d {
                    // SAFETY: column k < d of a row of G (caller).
                    unsafe { *gr.offset(k as isize * g.2) = *t };
                }
            }
        }
    }
}

/// y = H x for H (rows x cols, column-major, contiguous) with 512-bit vectors and nalgebra's
/// `gemv` arithmetic at alpha 1, beta 0: y_i = H_i0 x_0, then y_i = H_ij x_j + y_i for
/// j = 1, 2, .. in order, a rounded product and a rounded sum each (no FMA), so the same
/// bits. Up to 64 rows of y stay in registers while the columns stream past, where nalgebra
/// loads and stores y once per column, two doubles at a time.
pub(crate) fn gemv(cpu: Avx2Fma, h: &[f64], rows: usize, x: &[f64], y: &mut [f64]) {
    let cols = x.len();
    assert!(cpu.avx512(), "the 512-bit product needs AVX-512F");
    assert!(
        h.len() == rows * cols && y.len() == rows,
        "gemv: {} values for {rows} x {cols}, y of {}",
        h.len(),
        y.len()
    );
    if cols == 0 {
        y.fill(0.0);
        return;
    }
    // 64 rows of y a panel, each summed alone: shared between rayon's threads where H is
    // large (at n = 1000, 8 MB streamed from L3 per product, serial between the stages'
    // other work), the same bits in any split.
    let panel = |(p, y): (usize, &mut [f64])| {
        // SAFETY: the token proves AVX-512F; y holds rows 64 p .. 64 p + y.len() <= rows of
        // the product (sizes checked above), 1 to 64 of them; cols >= 1.
        unsafe {
            match y.len().div_ceil(8) {
                8 => gemv_rows::<8>(h, rows, x, y, 64 * p),
                7 => gemv_rows::<7>(h, rows, x, y, 64 * p),
                6 => gemv_rows::<6>(h, rows, x, y, 64 * p),
                5 => gemv_rows::<5>(h, rows, x, y, 64 * p),
                4 => gemv_rows::<4>(h, rows, x, y, 64 * p),
                3 => gemv_rows::<3>(h, rows, x, y, 64 * p),
                2 => gemv_rows::<2>(h, rows, x, y, 64 * p),
                _ => gemv_rows::<1>(h, rows, x, y, 64 * p),
            }
        }
    };
    if rows * cols >= PARALLEL_GEMV && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        y.par_chunks_mut(64).enumerate().for_each(panel);
    } else {
        y.chunks_mut(64).enumerate().for_each(panel);
    }
}

/// Entries of H from which [`gemv`] shares its panels between rayon's threads (n = 500, the
/// slides' own threshold in src/dynamics/output_space.rs; not tuned apart: at n = 100 a
/// product, about 1 us, is shorter than a handover between threads).
const PARALLEL_GEMV: usize = 250_000;

/// Rows i0 .. i0 + y.len() of [`gemv`] into y, in V vectors, the last masked.
///
/// # Safety
/// AVX-512F must be present; h holds rows x x.len() values (x.len() >= 1), i0 + y.len() <=
/// rows and 8 (V - 1) < y.len() <= 8 V.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn gemv_rows<const V: usize>(h: &[f64], rows: usize, x: &[f64], y: &mut [f64], i0: usize) {
    let last = y.len() - 8 * (V - 1);
    let tail: __mmask8 = ((1u16 << last) - 1) as u8;
    let zero = _mm512_setzero_pd();
    let mut acc = [zero; V];
    for (j, xj) in x.iter().enumerate() {
        let xj = _mm512_set1_pd(*xj);
        // SAFETY: column j < cols of H starts at j rows, rows i0 .. i0 + 8 (V - 1) + last
        // <= rows of it are read (the last vector masked to them; masked-off lanes are not
        // read and cannot fault).
        unsafe {
            let col = h.as_ptr().add(j * rows + i0);
            for (v, acc) in acc.iter_mut().enumerate() {
                let hv = if v + 1 < V {
                    _mm512_loadu_pd(col.add(8 * v))
                } else {
                    _mm512_maskz_loadu_pd(tail, col.add(8 * v))
                };
                let p = _mm512_mul_pd(hv, xj);
                *acc = if j == 0 { p } else { _mm512_add_pd(p, *acc) };
            }
        }
    }
    for (v, acc) in acc.iter().enumerate() {
        // SAFETY: entries 8 v .. of y, the last vector masked to y's length.
        unsafe {
            let out = y.as_mut_ptr().add(8 * v);
            if v + 1 < V {
                _mm512_storeu_pd(out, *acc);
            } else {
                _mm512_mask_storeu_pd(out, tail, *acc);
            }
        }
    }
}

/// w . x summed k in order with one FMA per term (z = fma(w_k, x_k, z) from z = 0): the
/// chain of the kernels' z_ri, so the same bits.
pub(crate) fn dot_fma(_cpu: Avx2Fma, w: &[f64], x: &[f64]) -> f64 {
    assert_eq!(w.len(), x.len(), "lengths differ");
    // SAFETY: the token proves AVX2 and FMA.
    unsafe { dot_fma_avx2(w, x) }
}

/// # Safety
/// AVX2 and FMA must be present.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_fma_avx2(w: &[f64], x: &[f64]) -> f64 {
    // mul_add is an FMA instruction under the target feature (a libm call without it).
    w.iter()
        .zip(x)
        .fold(0.0f64, |z, (wk, xk)| wk.mul_add(*xk, z))
}

/// acc_r += (a_r - b_r)^2 for every r (the sign cache's squared row distances, a column of W
/// at a time), four rows a vector.
pub(crate) fn add_squared_differences(_cpu: Avx2Fma, acc: &mut [f64], a: &[f64], b: &[f64]) {
    assert!(
        a.len() == acc.len() && b.len() == acc.len(),
        "lengths differ"
    );
    // SAFETY: the token proves AVX2 and FMA; the loops only index the three slices, whose
    // lengths agree (checked above).
    unsafe { add_squared_differences_avx2(acc, a, b) }
}

/// # Safety
/// AVX2 and FMA must be present.
#[target_feature(enable = "avx2,fma")]
unsafe fn add_squared_differences_avx2(acc: &mut [f64], a: &[f64], b: &[f64]) {
    // Plain loops: the target features let them vectorize (a product and a sum each, no FMA:
    // Rust does not contract them).
    for ((s, a), b) in acc.iter_mut().zip(a).zip(b) {
        let e = a - b;
        *s += e * e;
    }
}

/// min_i |z_i| scale_i over the i with scale_i > 0 (infinity if none), and whether any z_i
/// is NaN: the sign cache's margin of a row. A minimum is exact, so its order does not matter.
pub(crate) fn scaled_min_abs(_cpu: Avx2Fma, z: &[f64], scale: &[f64]) -> (f64, bool) {
    assert_eq!(z.len(), scale.len(), "lengths differ");
    // SAFETY: the token proves AVX2 and FMA; the loads are of whole groups of 4 inside both
    // slices (checked above), the rest is done by index.
    unsafe { scaled_min_abs_avx2(z, scale) }
}

/// # Safety
/// AVX2 and FMA must be present; z and scale have the same length.
#[target_feature(enable = "avx2,fma")]
unsafe fn scaled_min_abs_avx2(z: &[f64], scale: &[f64]) -> (f64, bool) {
    let whole = z.len() / 4 * 4;
    let inf = _mm256_set1_pd(f64::INFINITY);
    let (zero, sign) = (_mm256_setzero_pd(), _mm256_set1_pd(-0.0));
    let (mut least, mut nan) = (inf, zero);
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 4 <= len of both slices.
        unsafe {
            let zv = _mm256_loadu_pd(z.as_ptr().add(i));
            let sv = _mm256_loadu_pd(scale.as_ptr().add(i));
            let v = _mm256_mul_pd(_mm256_andnot_pd(sign, zv), sv);
            let counted = _mm256_cmp_pd::<_CMP_GT_OQ>(sv, zero);
            least = _mm256_min_pd(least, _mm256_blendv_pd(inf, v, counted));
            nan = _mm256_or_pd(nan, _mm256_cmp_pd::<_CMP_UNORD_Q>(zv, zv));
        }
        i += 4;
    }
    let mut lanes = [0.0; 4];
    // SAFETY: lanes holds 4 doubles.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), least) };
    let mut m = lanes.iter().fold(f64::INFINITY, |m, v| m.min(*v));
    let mut any_nan = _mm256_movemask_pd(nan) != 0;
    for (zi, si) in z[whole..].iter().zip(&scale[whole..]) {
        any_nan |= zi.is_nan();
        if *si > 0.0 {
            m = m.min(zi.abs() * si);
        }
    }
    (m, any_nan)
}

/// column_i = column_i + alpha (+0 + bd_0i bj_0 + bd_1i bj_1 + ...) where row_i != 0 (a
/// select: the others keep their bits, a -0 included), for 1 <= k = `bj.len()` < 8: a
/// slide's rank-k update of one column of H (`crate::dynamics::output_space`), a product
/// and a sum per term in nalgebra's `dot` order; 512-bit where the token says so.
pub(crate) fn small_column(
    cpu: Avx2Fma,
    (bd, bj): (&[f64], &[f64]),
    alpha: f64,
    row: &[f64],
    column: &mut [f64],
) {
    let n = column.len();
    assert!(
        (1..8).contains(&bj.len()) && bd.len() == bj.len() * n && row.len() == n,
        "lengths differ"
    );
    if cpu.avx512() {
        // SAFETY: the token proves AVX-512F, AVX2 and FMA; the loops only index the slices,
        // whose lengths agree (checked above).
        unsafe { small_column_avx512((bd, bj), alpha, row, column) }
    } else {
        // SAFETY: the token proves AVX2 and FMA; as above.
        unsafe { small_column_avx2((bd, bj), alpha, row, column) }
    }
}

/// # Safety
/// AVX2 and FMA must be present.
#[target_feature(enable = "avx2,fma")]
unsafe fn small_column_avx2(
    (bd, bj): (&[f64], &[f64]),
    alpha: f64,
    row: &[f64],
    column: &mut [f64],
) {
    small_column_k((bd, bj), alpha, row, column);
}

/// # Safety
/// AVX-512F, AVX2 and FMA must be present.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn small_column_avx512(
    (bd, bj): (&[f64], &[f64]),
    alpha: f64,
    row: &[f64],
    column: &mut [f64],
) {
    small_column_k((bd, bj), alpha, row, column);
}

/// `small_column`'s loop for each k, inlined into the target-feature functions above.
#[inline(always)]
fn small_column_k((bd, bj): (&[f64], &[f64]), alpha: f64, row: &[f64], column: &mut [f64]) {
    match bj.len() {
        1 => small_column_of::<1>(bd, bj, alpha, row, column),
        2 => small_column_of::<2>(bd, bj, alpha, row, column),
        3 => small_column_of::<3>(bd, bj, alpha, row, column),
        4 => small_column_of::<4>(bd, bj, alpha, row, column),
        5 => small_column_of::<5>(bd, bj, alpha, row, column),
        6 => small_column_of::<6>(bd, bj, alpha, row, column),
        _ => small_column_of::<7>(bd, bj, alpha, row, column),
    }
}

/// One pass over the column for K terms: plain loops, which the target features let
/// vectorize (no FMA: Rust does not contract).
#[inline(always)]
fn small_column_of<const K: usize>(
    bd: &[f64],
    bj: &[f64],
    alpha: f64,
    row: &[f64],
    column: &mut [f64],
) {
    let n = column.len();
    let bj: [f64; K] = std::array::from_fn(|t| bj[t]);
    let bd: [&[f64]; K] = std::array::from_fn(|t| &bd[t * n..(t + 1) * n]);
    for (i, (h, r)) in column.iter_mut().zip(row).enumerate() {
        let mut sum = 0.0;
        for t in 0..K {
            sum += bd[t][i] * bj[t];
        }
        let add = *h + alpha * sum;
        *h = if *r != 0.0 { add } else { *h };
    }
}

/// (sum_j row_j delta_j g_j, sum_j |row_j delta_j g_j|) in any order (lanes), `row` as
/// values or as the 0/1 mask: a slide's Filippov sum with the size that bounds its rounding
/// (`crate::dynamics::output_space`); 512-bit where the token says so.
pub(crate) fn weighted_sum<T: Into<f64> + Copy>(
    cpu: Avx2Fma,
    row: &[T],
    delta: &[f64],
    g: &[f64],
) -> (f64, f64) {
    assert!(
        delta.len() == row.len() && g.len() == row.len(),
        "lengths differ"
    );
    if cpu.avx512() {
        // SAFETY: the token proves AVX-512F, AVX2 and FMA; the loops only index the three
        // slices, whose lengths agree (checked above).
        unsafe { weighted_sum_avx512(row, delta, g) }
    } else {
        // SAFETY: the token proves AVX2 and FMA; as above.
        unsafe { weighted_sum_avx2(row, delta, g) }
    }
}

/// # Safety
/// AVX2 and FMA must be present.
#[target_feature(enable = "avx2,fma")]
unsafe fn weighted_sum_avx2<T: Into<f64> + Copy>(
    row: &[T],
    delta: &[f64],
    g: &[f64],
) -> (f64, f64) {
    weighted_sum_lanes(row, delta, g)
}

/// # Safety
/// AVX-512F, AVX2 and FMA must be present.
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn weighted_sum_avx512<T: Into<f64> + Copy>(
    row: &[T],
    delta: &[f64],
    g: &[f64],
) -> (f64, f64) {
    weighted_sum_lanes(row, delta, g)
}

/// `weighted_sum`'s loop in 8 lanes, inlined into the target-feature functions above.
#[inline(always)]
fn weighted_sum_lanes<T: Into<f64> + Copy>(row: &[T], delta: &[f64], g: &[f64]) -> (f64, f64) {
    let (mut sum, mut size) = ([0.0f64; 8], [0.0f64; 8]);
    let blocks = row.len() / 8 * 8;
    for ((r, d), g) in row[..blocks]
        .chunks_exact(8)
        .zip(delta[..blocks].chunks_exact(8))
        .zip(g[..blocks].chunks_exact(8))
    {
        for t in 0..8 {
            let term = r[t].into() * d[t] * g[t];
            sum[t] += term;
            size[t] += term.abs();
        }
    }
    for j in blocks..row.len() {
        let term = row[j].into() * delta[j] * g[j];
        sum[0] += term;
        size[0] += term.abs();
    }
    (sum.iter().sum(), size.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight-neuron pass 2's bit-matrix transpose against its definition, on matrices
    /// from a fixed xorshift sequence and the extremes.
    #[test]
    fn bit_matrix_transpose_is_its_definition() {
        let mut v = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            v ^= v << 13;
            v ^= v >> 7;
            v ^= v << 17;
            v
        };
        let mut cases: Vec<u64> = (0..2000).map(|_| next()).collect();
        cases.extend([0, u64::MAX, 1, 1 << 63]);
        for x in cases {
            let t = transpose_bits_8x8(x);
            for j in 0..8 {
                for s in 0..8 {
                    assert_eq!(
                        (t >> (8 * s + j)) & 1,
                        (x >> (8 * j + s)) & 1,
                        "{x:#x}: ({j}, {s})"
                    );
                }
            }
        }
    }

    /// `small_column` in 256 and 512 bits against its definition, bit for bit, for k = 1 to
    /// 7 and lengths with every tail (n = 1 to 19, 40): active, inactive (H_ij = -0 kept)
    /// and fractional rows; and `weighted_sum` of a mask as of its values.
    #[test]
    fn small_columns_are_their_definition_at_both_widths() {
        let Some(cpu) = Avx2Fma::detect() else {
            return;
        };
        let mut v = 0x2545_F491_4F6C_DD1Du64;
        let mut next = || {
            v ^= v << 13;
            v ^= v >> 7;
            v ^= v << 17;
            (v >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        };
        for k in 1..8 {
            for n in (1..20).chain([40]) {
                let bd: Vec<f64> = (0..k * n).map(|_| next()).collect();
                let bj: Vec<f64> = (0..k).map(|_| next()).collect();
                let row: Vec<f64> = (0..n)
                    .map(|i| [0.0, 1.0, 0.25 + next().abs()][i % 3])
                    .collect();
                let h: Vec<f64> = (0..n)
                    .map(|i| if i % 4 == 0 { -0.0 } else { next() })
                    .collect();
                let alpha = next();
                let mut want = h.clone();
                for i in 0..n {
                    if row[i] != 0.0 {
                        let mut sum = 0.0;
                        for t in 0..k {
                            sum += bd[t * n + i] * bj[t];
                        }
                        want[i] += alpha * sum;
                    }
                }
                for cpu in [cpu, cpu.without_avx512()] {
                    let mut got = h.clone();
                    small_column(cpu, (&bd, &bj), alpha, &row, &mut got);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&got), bits(&want), "k = {k}, n = {n}");
                    let mask: Vec<u8> = (0..n).map(|i| u8::from(i % 3 == 1)).collect();
                    let values: Vec<f64> = mask.iter().map(|&b| f64::from(b)).collect();
                    assert_eq!(
                        weighted_sum(cpu, &mask, &h, &bd[..n]),
                        weighted_sum(cpu, &values, &h, &bd[..n])
                    );
                }
            }
        }
    }
}
