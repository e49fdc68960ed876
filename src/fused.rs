//! The two products of the weight-space gradient as fused kernels (x86-64 with AVX2 and FMA).
//!
//! ```text
//! pass 1:  z_ri = w_r . x_i,  S_ri = 1[z_ri >= 0],  u_i += a_r S_ri z_ri      (Z^T = W X^T)
//! pass 2:  P_ri = a_r S_ri ds_i,  g_r = sum_i P_ri x_i                       (G = P X)
//! ```
//! (Du et al. 2018, eq. 4; [`crate::gradient`] has the blocks and lanes around these.)
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
//!
//! Each z is summed over k in order with one FMA per term, so [`dot`] reproduces any entry to
//! the bit (the fractional entries of a held pattern need single entries).

/// X zero-padded for the kernels: samples to `np` (a multiple of 4) column-major, and rows of
/// `dp` (d to a multiple of 4) row-major.
#[derive(Clone, Debug)]
pub struct PackedX {
    n: usize,
    np: usize,
    d: usize,
    dp: usize,
    /// np x d, column-major: x_ik at k np + i (zero for i >= n).
    cols: Aligned,
    /// n x dp, row-major: x_ik at i dp + k (zero for k >= d).
    rows: Aligned,
}

/// Doubles on a 64-byte boundary, so that the kernels' 32-byte loads of X never straddle two
/// cache lines (malloc aligns to 16 bytes, where every other load of a column would).
#[derive(Clone, Debug)]
struct Aligned(Vec<Line>);

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
    fn as_mut_slice(&mut self) -> &mut [f64] {
        // SAFETY: as above, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast(), 8 * self.0.len()) }
    }
    fn as_ptr(&self) -> *const f64 {
        self.0.as_ptr().cast()
    }
}

impl PackedX {
    /// Pack X (n x d, column-major as nalgebra stores it).
    pub fn new(x: &nalgebra::DMatrix<f64>) -> PackedX {
        let (n, d) = x.shape();
        let (np, dp) = (n.next_multiple_of(4), d.next_multiple_of(4));
        let (mut cols, mut rows) = (Aligned::zeros(np * d), Aligned::zeros(n * dp));
        let (c, r) = (cols.as_mut_slice(), rows.as_mut_slice());
        for k in 0..d {
            for i in 0..n {
                c[k * np + i] = x[(i, k)];
                r[i * dp + k] = x[(i, k)];
            }
        }
        PackedX {
            n,
            np,
            d,
            dp,
            cols,
            rows,
        }
    }

    /// (n, d) of the packed X.
    pub fn shape(&self) -> (usize, usize) {
        (self.n, self.d)
    }
}

/// w_r . x_i summed as the kernels sum it (k in order, one FMA per term), so that the value
/// has the same bits as the kernel's z_ri.
///
/// # Safety
/// `w` (pointer, row stride, column stride) must address a matrix with row r and d columns.
pub unsafe fn dot(x: &PackedX, w: (*const f64, isize, isize), r: usize, i: usize) -> f64 {
    assert!(i < x.n, "sample {i} of {}", x.n);
    let mut z = 0.0f64;
    for k in 0..x.d {
        let wk = *w.0.offset(r as isize * w.1 + k as isize * w.2);
        z = wk.mul_add(x.cols.as_slice()[k * x.np + i], z);
    }
    z
}

/// Whether this CPU runs the fused kernels.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// What pass 1 does with a tile of pre-activations.
pub enum Forward<'a> {
    /// Signs into `mask` as [`Signs::Nibbles`] (len x np/4) and sum_r a_r relu(z_ri) into
    /// `u` (np).
    Relu {
        mask: &'a mut [u8],
        u: &'a mut [f64],
    },
    /// sum_r a_r S_ri z_ri into `u` (np), S the 0/1 `mask` (len x n) of a held pattern.
    Held { mask: &'a [u8], u: &'a mut [f64] },
    /// Signs into `mask` only.
    Signs { mask: &'a mut [u8] },
}

/// Pass 1 over the `len` neurons whose rows of W start at `w.0` (row stride `w.1`, column
/// stride `w.2`), with output weights `a` (len). `u` is added to, not overwritten.
///
/// # Safety
/// [`available`] must be true, and `w` must address a len x d matrix.
pub unsafe fn forward_block(
    x: &PackedX,
    w: (*const f64, isize, isize),
    len: usize,
    a: &[f64],
    mode: Forward,
) {
    assert!(available(), "fused kernels on a CPU without AVX2 and FMA");
    assert!(a.len() >= len);
    let (n, null, null_mut) = (x.n, std::ptr::null(), std::ptr::null_mut());
    let (kind, io) = match mode {
        Forward::Relu { mask, u } => {
            assert!(mask.len() >= len * x.np / 4 && u.len() >= x.np);
            (RELU, Io::new(mask.as_mut_ptr(), null, u.as_mut_ptr()))
        }
        Forward::Held { mask, u } => {
            assert!(mask.len() >= len * n && u.len() >= x.np);
            (HELD, Io::new(null_mut, mask.as_ptr(), u.as_mut_ptr()))
        }
        Forward::Signs { mask } => {
            assert!(mask.len() >= len * n);
            (
                SIGNS,
                Io::new(mask.as_mut_ptr(), null, std::ptr::null_mut()),
            )
        }
    };
    #[cfg(target_arch = "x86_64")]
    match kind {
        RELU => avx::forward::<RELU>(x, w, len, a, io),
        HELD => avx::forward::<HELD>(x, w, len, a, io),
        _ => avx::forward::<SIGNS>(x, w, len, a, io),
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, kind, io);
        unreachable!("fused kernels without AVX2");
    }
}

/// Pass 1's modes, as the kernels' const parameter.
const RELU: u8 = 0;
const HELD: u8 = 1;
const SIGNS: u8 = 2;

/// Where pass 1 writes (or reads) its signs and its share of u; null where its mode does not.
#[derive(Clone, Copy)]
struct Io {
    mask_out: *mut u8,
    mask_in: *const u8,
    u: *mut f64,
}

impl Io {
    fn new(mask_out: *mut u8, mask_in: *const u8, u: *mut f64) -> Io {
        Io {
            mask_out,
            mask_in,
            u,
        }
    }
}

/// A 0/1 sign mask of `len` neurons, neuron-major.
#[derive(Clone, Copy)]
pub enum Signs<'a> {
    /// One byte per entry (len x n): a [`crate::gradient::Pattern`]'s.
    Bytes(&'a [u8]),
    /// One byte per 4 samples, bit j for sample 4 q + j (len x np/4): what [`Forward::Relu`]
    /// writes, a quarter of the bytes for the plain gradient's round trip through memory.
    Nibbles(&'a [u8]),
}

/// Pass 2 over `len` neurons: rows of G (starting at `g.0`, strides `g.1`, `g.2`) set to
/// g_r = sum_i a_r S_ri ds_i x_i, S the 0/1 `mask`, `ds` zero-padded to np. `p` is scratch of
/// at least [`transpose_scratch`] values.
///
/// # Safety
/// [`available`] must be true, and `g` must address a len x d matrix that no one else touches.
pub unsafe fn transpose_block(
    x: &PackedX,
    ds: &[f64],
    a: &[f64],
    mask: Signs,
    len: usize,
    g: (*mut f64, isize, isize),
    p: &mut [f64],
) {
    assert!(available(), "fused kernels on a CPU without AVX2 and FMA");
    assert!(ds.len() >= x.np && a.len() >= len);
    assert!(match mask {
        Signs::Bytes(b) => b.len() >= len * x.n,
        Signs::Nibbles(b) => b.len() >= len * x.np / 4,
    });
    assert!(p.len() >= transpose_scratch(x.np));
    #[cfg(target_arch = "x86_64")]
    match mask {
        Signs::Bytes(b) => avx::transpose::<false>(x, ds, a, b, len, g, p),
        Signs::Nibbles(b) => avx::transpose::<true>(x, ds, a, b, len, g, p),
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = g;
        unreachable!("fused kernels without AVX2");
    }
}

/// Scratch values [`transpose_block`] needs for `np` padded samples: two rows of P.
pub fn transpose_scratch(np: usize) -> usize {
    2 * np
}

#[cfg(target_arch = "x86_64")]
mod avx {
    use super::{Io, PackedX, HELD, RELU, SIGNS};
    use std::arch::x86_64::*;

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
    #[inline]
    unsafe fn store_signs(p: *mut u8, bytes: u32, valid: usize) {
        if valid >= 4 {
            p.cast::<u32>().write_unaligned(bytes);
        } else {
            for j in 0..valid {
                *p.add(j) = (bytes >> (8 * j)) as u8;
            }
        }
    }

    /// The 0/1 bytes of samples i .. i + 4 as doubles (zero past the row's end).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn load_signs(p: *const u8, valid: usize) -> __m256d {
        let bytes = if valid >= 4 {
            p.cast::<u32>().read_unaligned()
        } else {
            let mut b = 0u32;
            for j in 0..valid {
                b |= u32::from(*p.add(j)) << (8 * j);
            }
            b
        };
        _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(bytes as i32)))
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward<const MODE: u8>(
        x: &PackedX,
        w: (*const f64, isize, isize),
        len: usize,
        a: &[f64],
        io: Io,
    ) {
        let mut r = 0;
        while r + 6 <= len {
            rows::<6, MODE>(x, w, r, a, io);
            r += 6;
        }
        while r < len {
            rows::<1, MODE>(x, w, r, a, io);
            r += 1;
        }
    }

    /// Pass 1 for neurons r0 .. r0 + R, all samples.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn rows<const R: usize, const MODE: u8>(
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
            _mm_prefetch::<_MM_HINT_T0>(next.wrapping_offset(k as isize * w.2).cast());
        }
        let mut i0 = 0;
        while i0 + 8 <= x.np {
            tile::<R, 2, MODE>(x, w, r0, i0, a, io);
            i0 += 8;
        }
        if i0 < x.np {
            tile::<R, 1, MODE>(x, w, r0, i0, a, io);
        }
    }

    /// z for neurons r0 .. r0 + R and samples i0 .. i0 + 4 NV, then its signs and u share.
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
        let xc = x.cols.as_ptr().wrapping_add(i0);
        let wr = w.0.offset(r0 as isize * w.1);
        for k in 0..x.d {
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
        let mut su = [zero; NV];
        for (r, acc) in acc.iter().enumerate() {
            let row = (r0 + r) * n;
            let ar = _mm256_set1_pd(a[r0 + r]);
            for (v, (z, su)) in acc.iter().zip(su.iter_mut()).enumerate() {
                let i = i0 + 4 * v;
                if MODE == HELD {
                    let s = load_signs(io.mask_in.add(row + i), n - i);
                    *su = _mm256_fmadd_pd(_mm256_mul_pd(ar, s), *z, *su);
                } else {
                    let on = _mm256_cmp_pd::<_CMP_GE_OQ>(*z, zero);
                    let bits = _mm256_movemask_pd(on) as usize;
                    if MODE == RELU {
                        // Padded samples (z = 0) must not count as active.
                        let valid = (1usize << (n - i).min(4)) - 1;
                        *io.mask_out.add((r0 + r) * (np / 4) + i / 4) = (bits & valid) as u8;
                        *su = _mm256_fmadd_pd(ar, _mm256_max_pd(*z, zero), *su);
                    } else {
                        store_signs(io.mask_out.add(row + i), BYTES[bits], n - i);
                    }
                }
            }
        }
        if MODE != SIGNS {
            for (v, su) in su.iter().enumerate() {
                let p = io.u.add(i0 + 4 * v);
                _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), *su));
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

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn transpose<const NIBBLES: bool>(
        x: &PackedX,
        ds: &[f64],
        a: &[f64],
        mask: &[u8],
        len: usize,
        g: (*mut f64, isize, isize),
        p: &mut [f64],
    ) {
        let mut r = 0;
        while r + 2 <= len {
            transpose_rows::<2, NIBBLES>(x, ds, a, mask, r, g, p);
            r += 2;
        }
        if r < len {
            transpose_rows::<1, NIBBLES>(x, ds, a, mask, r, g, p);
        }
    }

    /// Pass 2 for neurons r0 .. r0 + R: their rows of P into `p`, then their rows of G.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn transpose_rows<const R: usize, const NIBBLES: bool>(
        x: &PackedX,
        ds: &[f64],
        a: &[f64],
        mask: &[u8],
        r0: usize,
        g: (*mut f64, isize, isize),
        p: &mut [f64],
    ) {
        let (n, np) = (x.n, x.np);
        // G's lines 8 rows on (a line holds 8 rows of a column): d store streams.
        let ahead = g.0.wrapping_offset((r0 + 8) as isize * g.1);
        for k in 0..x.d {
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_offset(k as isize * g.2).cast());
        }
        for r in 0..R {
            let ar = _mm256_set1_pd(a[r0 + r]);
            for i in (0..np).step_by(4) {
                let s = if NIBBLES {
                    let bits = mask[(r0 + r) * (np / 4) + i / 4] & 15;
                    _mm256_load_pd(UNPACKED.0[bits as usize].as_ptr())
                } else {
                    load_signs(mask.as_ptr().add((r0 + r) * n + i), n - i)
                };
                let pv = _mm256_mul_pd(_mm256_mul_pd(ar, s), _mm256_loadu_pd(ds.as_ptr().add(i)));
                _mm256_storeu_pd(p.as_mut_ptr().add(r * np + i), pv);
            }
        }
        let vectors = x.dp / 4;
        let mut c = 0;
        while c < vectors {
            let kv = (vectors - c).min(5);
            match kv {
                5 => columns::<R, 5>(x, p, r0, c, g),
                4 => columns::<R, 4>(x, p, r0, c, g),
                3 => columns::<R, 3>(x, p, r0, c, g),
                2 => columns::<R, 2>(x, p, r0, c, g),
                _ => columns::<R, 1>(x, p, r0, c, g),
            }
            c += kv;
        }
    }

    /// Columns 4 c .. 4 (c + KV) of G's rows r0 .. r0 + R: sum_i p_ri x_i.
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
        let xr = x.rows.as_ptr().add(4 * c);
        for i in 0..x.n {
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
        for (r, acc) in acc.iter().enumerate() {
            let gr = g.0.offset((r0 + r) as isize * g.1);
            for (v, acc) in acc.iter().enumerate() {
                let mut t = [0.0; 4];
                _mm256_storeu_pd(t.as_mut_ptr(), *acc);
                for (j, t) in t.iter().enumerate() {
                    let k = 4 * (c + v) + j;
                    if k < x.d {
                        *gr.offset(k as isize * g.2) = *t;
                    }
                }
            }
        }
    }
}
