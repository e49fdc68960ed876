//! sigma and sigma' of the smooth activations on slices, eight at a time (AVX-512F), four at a
//! time (AVX2 + FMA) or one at a time (any CPU), from one generic code: every function below is
//! written once over [`Lanes`], whose implementations are plain `f64` (the portable fallback),
//! a 4-lane AVX2 vector and an 8-lane AVX-512F vector, the two reached only through the
//! [`Avx2Fma`] token (the 8-lane one where its `avx512()` holds). The 8-lane lanes do the
//! 4-lane lanes' operations, so the two give the same bits.
//!
//! ```text
//! erf:      sigma = erf z,                    sigma' = (2/sqrt pi) e^{-z^2}
//! gelu:     sigma = z Phi(z),                 sigma' = Phi(z) + z phi(z),
//!           Phi(z) = erfc(-z/sqrt 2)/2,       phi(z) = e^{-x^2}/sqrt(2 pi), x = -z/sqrt 2
//! tanh:     sigma = (1 - e)/(1 + e),          sigma' = 4e/(1 + e)^2,        e = e^{-2|z|} (signed)
//! softplus: sigma = max(z, 0) + log1p(e),     sigma' = (z >= 0 ? 1 : e)/(1 + e), e = e^{-|z|}
//! sigmoid:  sigma = (z >= 0 ? 1 : e)/(1 + e), sigma' = e/(1 + e)^2,         e = e^{-|z|}
//! ```
//! Each pair shares its transcendental work: erf's e^{-z^2} is also the tail factor of erfc,
//! tanh's and sigmoid's slopes come from the e of their values. The slopes are written so that
//! they keep their relative accuracy in the tails (4e/(1+e)^2, not 1 - tanh^2, which loses all
//! digits past |z| = 19).
//!
//! Why hand-written (checked 2026-11-30): the gradient of a smooth activation spent about 80% of
//! its time in one libm call per value (erf, erfc2 and exp of the `libm` crate, perf on
//! `ntkdyn gf --t-end 10 --activation erf`). No kept crate gives vectorised erf in f64 on stable
//! Rust with runtime CPU detection: `sleef` (a port of SLEEF) needs nightly `portable_simd`;
//! `wide`'s f64x4 has exp and ln but no erf, erfc, expm1 or log1p, and chooses AVX at compile
//! time (`cfg(target_feature)`), so a default build gets SSE2; `pulp` dispatches at run time but
//! has no transcendental functions; `libm` is scalar. So the functions are ports of the scalar
//! algorithms we trust, made branch-free over lanes:
//! - erf and erfc: musl's (fdlibm's) rational approximation of erf on |x| < 0.84375, and past it
//!   erfc |x| = e^{-x^2} R(|x|) with Cody's (1969, netlib specfun's calerf) rational R on
//!   [0.84375, 4] and in 1/x^2 past 4, with their coefficients; the regions present in a vector
//!   are evaluated and blended (numerators and denominators blended first: one division for all
//!   regions). e^{-x^2} is e^{-h^2} e^{(h-x)(h+x)} with h = x's top 21 bits (h^2 exact), taken
//!   as one exponential of a two-part argument (below) and shared with sigma'. (musl's own tail,
//!   used before, writes erfc as e^{-x^2 - 0.5625 + R/S}/x in three regions: a second
//!   exponential and two more divisions, twice the time of an erf vector);
//! - e^x: x = k ln 2 + r (Cody and Waite's two-part ln 2, k ln2_hi exact), e^r by its Taylor
//!   polynomial of degree 13 (remainder below 4e-18 relative on |r| <= ln 2 / 2), 2^k as two
//!   factors so that results down to the subnormals are rounded once; a second, small part of
//!   the argument is added to r after the reduction;
//! - e^y - 1 (for tanh) by its Taylor series on |y| < ln 2 / 2, else e^y - 1;
//! - log1p(e) for e in [0, 1] (softplus): 2 atanh(s), s = e/(2+e) <= 1/3, by 17 terms of the
//!   atanh series (remainder below 2e-18 relative).
//!
//! Accuracy (the tests below, over the whole real line with the tails and edge values): every
//! value and slope within 2e-15 relative (worst measured 9.2 units of 2^-53, erfc near 3) of the same formula evaluated with libm's erf, erfc,
//! exp, expm1, log1p and tanh at the same argument (absolute 1e-307 where the result is
//! below 1e-292); measured worst cases are in the README. gelu's argument x = -z/sqrt 2 is
//! rounded before erfc, in both: in the far tail (z < -10) that rounding alone moves Phi(z) by
//! up to x^2 2^-52 relative, in libm's evaluation as in ours.
//!
//! The vector lanes contract a * b + c into one FMA where the scalar lanes round twice, so the
//! two agree to rounding, not to the bit (as the engine's two kernels do).
//!
//! The functions are long chains of dependent FMAs; one 4-lane vector at a time left the FMA
//! units waiting on latency, so the AVX2 loops run K vectors side by side (`v4::Wide`, the
//! same 4 samples of K neurons): 1.3-1.9x faster, the same bits. With AVX-512F (Zen 5 runs
//! 512-bit FMAs at full rate) the same loops run on 8-lane vectors: `ntkdyn gf --t-end 10
//! --activation erf` weight space 0.299 -> 0.211 s (gelu 0.319 -> 0.219 s), the same bits.

#![allow(clippy::excessive_precision)]

use super::Avx2Fma;
use crate::model::Activation;
use std::f64::consts::{FRAC_2_SQRT_PI, LOG2_E, SQRT_2};
use std::ops::{Add, Div, Mul, Neg, Sub};

/// Lanes of doubles that the functions below are written over: `f64` (one lane, any CPU), a
/// 4-lane AVX2 vector or an 8-lane AVX-512F one.
pub(crate) trait Lanes:
    Copy
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// A lane-wise boolean.
    type Mask: Copy;
    /// Values a vector holds.
    const WIDTH: usize;
    fn splat(x: f64) -> Self;
    /// The first WIDTH values of `s` (at least that many).
    fn load(s: &[f64]) -> Self;
    /// Into the first WIDTH values of `s` (at least that many).
    fn store(self, s: &mut [f64]);
    /// self b + c: one rounding in vector lanes (FMA), two in scalar lanes.
    fn mul_add_(self, b: Self, c: Self) -> Self;
    fn abs_(self) -> Self;
    /// Lane-wise minimum; `o` where self is NaN.
    fn min_(self, o: Self) -> Self;
    /// Lane-wise maximum; `o` where self is NaN.
    fn max_(self, o: Self) -> Self;
    fn floor_(self) -> Self;
    /// self < o (false for NaN).
    fn lt(self, o: Self) -> Self::Mask;
    /// self >= o (false for NaN).
    fn ge(self, o: Self) -> Self::Mask;
    fn is_nan(self) -> Self::Mask;
    fn and(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    fn or(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    fn any(m: Self::Mask) -> bool;
    /// `a` where `m`, else `b`.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// The bits of self under `keep`, the others cleared.
    fn keep_bits(self, keep: u64) -> Self;
    /// 2^k for integer-valued k in [-1022, 1023].
    fn pow2(k: Self) -> Self;
}

/// 1.5 2^52: adding it rounds to an integer, whose bits are then the low bits of the sum.
const SHIFT: f64 = 6755399441055744.0;

impl Lanes for f64 {
    type Mask = bool;
    const WIDTH: usize = 1;
    #[inline(always)]
    fn splat(x: f64) -> f64 {
        x
    }
    #[inline(always)]
    fn load(s: &[f64]) -> f64 {
        s[0]
    }
    #[inline(always)]
    fn store(self, s: &mut [f64]) {
        s[0] = self;
    }
    #[inline(always)]
    fn mul_add_(self, b: f64, c: f64) -> f64 {
        // Not f64::mul_add: without FMA hardware that is a slow software routine.
        self * b + c
    }
    #[inline(always)]
    fn abs_(self) -> f64 {
        self.abs()
    }
    #[inline(always)]
    fn min_(self, o: f64) -> f64 {
        if self < o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn max_(self, o: f64) -> f64 {
        if self > o {
            self
        } else {
            o
        }
    }
    #[inline(always)]
    fn floor_(self) -> f64 {
        self.floor()
    }
    #[inline(always)]
    fn lt(self, o: f64) -> bool {
        self < o
    }
    #[inline(always)]
    fn ge(self, o: f64) -> bool {
        self >= o
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        self.is_nan()
    }
    #[inline(always)]
    fn and(a: bool, b: bool) -> bool {
        a && b
    }
    #[inline(always)]
    fn or(a: bool, b: bool) -> bool {
        a || b
    }
    #[inline(always)]
    fn any(m: bool) -> bool {
        m
    }
    #[inline(always)]
    fn select(m: bool, a: f64, b: f64) -> f64 {
        if m {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn keep_bits(self, keep: u64) -> f64 {
        f64::from_bits(self.to_bits() & keep)
    }
    #[inline(always)]
    fn pow2(k: f64) -> f64 {
        // SHIFT + 1023 + k has k + 1023 in its low mantissa bits: shifted into the exponent.
        f64::from_bits((k + (SHIFT + 1023.0)).to_bits() << 52)
    }
}

/// Horner's rule, coefficients from the highest degree down.
#[inline(always)]
fn horner<V: Lanes, const N: usize>(x: V, c: [f64; N]) -> V {
    let mut p = V::splat(c[0]);
    for &ck in &c[1..] {
        p = p.mul_add_(x, V::splat(ck));
    }
    p
}

const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // fdlibm's ln2HI (k ln2_hi exact)
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // fdlibm's ln2LO

/// 1/13!, 1/12!, ..., 1/2!, 1, 1: e^r on |r| <= ln 2 / 2.
const EXP_TAYLOR: [f64; 14] = [
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// e^(hi + lo) for |lo| much smaller than 1: lo joins the reduced argument, so that an
/// argument known to more than 53 bits (-x^2 as an exact square and a small correction) keeps
/// them. 0 below -745.2, infinite above 709.8, NaN for NaN.
#[inline(always)]
pub(crate) fn exp_split<V: Lanes>(hi: V, lo: V) -> V {
    let s = V::splat;
    let h = hi.max_(s(-746.0)).min_(s(710.0));
    let x = h + lo;
    let k = x.mul_add_(s(LOG2_E), s(SHIFT)) - s(SHIFT);
    // k ln2_hi is exact (k has at most 11 bits, ln2_hi 32) and so is h - k ln2_hi.
    let r = k.mul_add_(s(-LN2_HI), h);
    let r = k.mul_add_(s(-LN2_LO), r) + lo;
    let p = horner(r, EXP_TAYLOR);
    // 2^k as 2^k1 2^(k - k1): each factor normal, the product rounded once (subnormals too).
    let k1 = (k * s(0.5)).floor_();
    let e = p * V::pow2(k1) * V::pow2(k - k1);
    V::select(hi.is_nan(), hi, e)
}

/// e^x.
#[inline(always)]
pub(crate) fn exp<V: Lanes>(x: V) -> V {
    exp_split(x, V::splat(0.0))
}

/// e^{-x^2} without the rounding of x^2: h = x with its low 32 bits cleared (21 significant
/// bits, so h^2 is exact), x^2 = h^2 - (h - x)(h + x).
#[inline(always)]
pub(crate) fn gauss<V: Lanes>(x: V) -> V {
    let ax = x.abs_().min_(V::splat(40.0));
    let h = ax.keep_bits(0xffff_ffff_0000_0000);
    let e = exp_split(-(h * h), (h - ax) * (h + ax));
    V::select(x.is_nan(), x, e)
}

// musl's erf.c (from fdlibm), coefficients unchanged: erf on |x| < 0.84375.
const EFX8: f64 = 1.02703333676410069053e+00;
const PP: [f64; 5] = [
    -2.37630166566501626084e-05,
    -5.77027029648944159157e-03,
    -2.84817495755985104766e-02,
    -3.25042107247001499370e-01,
    1.28379167095512558561e-01,
];
const QQ: [f64; 6] = [
    -3.96022827877536812320e-06,
    1.32494738004321644526e-04,
    5.08130628187576562776e-03,
    6.50222499887672944485e-02,
    3.97917223959155352819e-01,
    1.0,
];
// Cody (1969), netlib specfun's calerf, coefficients unchanged, highest degree first:
// erfc x = e^{-x^2} C(x)/D(x) on [0.46875, 4] (used from 0.84375), and
// erfc x = e^{-x^2} (1/sqrt(pi) - r P(r)/Q(r)) / x, r = 1/x^2, past 4.
const CODY_C: [f64; 9] = [
    2.15311535474403846e-8,
    5.64188496988670089e-1,
    8.88314979438837594e0,
    6.61191906371416295e1,
    2.98635138197400131e2,
    8.81952221241769090e2,
    1.71204761263407058e3,
    2.05107837782607147e3,
    1.23033935479799725e3,
];
const CODY_D: [f64; 9] = [
    1.0,
    1.57449261107098347e1,
    1.17693950891312499e2,
    5.37181101862009858e2,
    1.62138957456669019e3,
    3.29079923573345963e3,
    4.36261909014324716e3,
    3.43936767414372164e3,
    1.23033935480374942e3,
];
const CODY_P: [f64; 6] = [
    1.63153871373020978e-2,
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
];
const CODY_Q: [f64; 6] = [
    1.0,
    2.56852019228982242e0,
    1.87295284992346047e0,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
];
/// 1/sqrt(pi).
const FRAC_1_SQRT_PI: f64 = 5.6418958354775628695e-1;
/// Region bounds: musl's small region (high word 0x3feb0000), Cody's last bound, musl's tiny
/// bound (high word 0x3e300000).
const ERF_SMALL: f64 = 0.84375;
const ERF_FAR: f64 = 4.0;
const ERF_TINY: f64 = f64::from_bits(0x3e30_0000_0000_0000);

/// (erf x, erfc x, e^{-x^2}).
///
/// |x| < 0.84375: erf x = x + x P(x^2)/Q(x^2) (musl); past it erfc |x| = e^{-x^2} R(|x|)
/// with Cody's rational R (one on [0.84375, 4], one in 1/x^2 past 4), so that the tail
/// shares sigma''s e^{-x^2} and needs no second exponential (musl's tail has one). The
/// regions' numerators and denominators are blended first: one division for all.
#[inline(always)]
pub(crate) fn erf_parts<V: Lanes>(x: V) -> (V, V, V) {
    let s = V::splat;
    let ax = x.abs_();
    let neg = x.lt(s(0.0));
    let small = ax.lt(s(ERF_SMALL));
    let tail = ax.ge(s(ERF_SMALL));
    let (mut num, mut den) = (s(0.0), s(1.0));
    if V::any(small) {
        let z = x * x;
        num = V::select(small, horner(z, PP), num);
        den = V::select(small, horner(z, QQ), den);
    }
    // Infinity is kept out of the tail's arithmetic (erf and erfc are flat past 28).
    let at = ax.min_(s(30.0));
    let near = V::and(tail, at.lt(s(ERF_FAR)));
    if V::any(near) {
        num = V::select(near, horner(at, CODY_C), num);
        den = V::select(near, horner(at, CODY_D), den);
    }
    let far = at.ge(s(ERF_FAR));
    if V::any(far) {
        let r = s(1.0) / (at * at);
        let q = horner(r, CODY_Q);
        num = V::select(far, s(FRAC_1_SQRT_PI) * q - r * horner(r, CODY_P), num);
        den = V::select(far, at * q, den);
    }
    let y = num / den;
    let g = gauss(x);
    // erfc |x| on [0.84375, inf).
    let e1 = g * y;
    let big = s(1.0) - e1;
    let erf_big = V::select(neg, -big, big);
    let erfc_big = V::select(neg, s(2.0) - e1, e1);
    let near0 = x.mul_add_(y, x);
    let tiny = s(0.125) * (s(8.0) * x + s(EFX8) * x);
    let erf_small = V::select(ax.lt(s(ERF_TINY)), tiny, near0);
    let erfc_small = V::select(
        x.lt(s(0.25)),
        s(1.0) - near0,
        s(0.5) - x.mul_add_(y, x - s(0.5)),
    );
    let erf = V::select(small, erf_small, erf_big);
    let erfc = V::select(small, erfc_small, erfc_big);
    let nan = x.is_nan();
    (
        V::select(nan, x, erf),
        V::select(nan, x, erfc),
        V::select(nan, x, g),
    )
}

/// 1/14!, ..., 1/2!, 1: (e^y - 1)/y on |y| <= ln 2 / 2.
const EXPM1_TAYLOR: [f64; 14] = [
    1.0 / 87_178_291_200.0,
    1.0 / 6_227_020_800.0,
    1.0 / 479_001_600.0,
    1.0 / 39_916_800.0,
    1.0 / 3_628_800.0,
    1.0 / 362_880.0,
    1.0 / 40_320.0,
    1.0 / 5_040.0,
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
];

/// 1/33, 1/31, ..., 1/3, 1: atanh(s)/s = sum s^{2k}/(2k+1) on s^2 <= 1/9.
const ATANH_SERIES: [f64; 17] = [
    1.0 / 33.0,
    1.0 / 31.0,
    1.0 / 29.0,
    1.0 / 27.0,
    1.0 / 25.0,
    1.0 / 23.0,
    1.0 / 21.0,
    1.0 / 19.0,
    1.0 / 17.0,
    1.0 / 15.0,
    1.0 / 13.0,
    1.0 / 11.0,
    1.0 / 9.0,
    1.0 / 7.0,
    1.0 / 5.0,
    1.0 / 3.0,
    1.0,
];

/// log(1 + e) = 2 atanh(q) for q = e/(2 + e) <= 1/3, e in [0, 1]: q given.
#[inline(always)]
fn log1p_of_ratio<V: Lanes>(q: V) -> V {
    (q + q) * horner(q * q, ATANH_SERIES)
}

/// log(1 + e) for e in [0, 1] (softplus forms its q beside its slope).
#[cfg(test)]
fn log1p_unit<V: Lanes>(e: V) -> V {
    log1p_of_ratio(e / (V::splat(2.0) + e))
}

/// (relu, relu') (relu'(0) = 1), for completeness of the slice functions.
#[inline(always)]
fn relu<V: Lanes>(z: V) -> (V, V) {
    let zero = V::splat(0.0);
    (z.max_(zero), V::select(z.ge(zero), V::splat(1.0), zero))
}

#[inline(always)]
fn erf<V: Lanes>(z: V) -> (V, V) {
    let (e, _, g) = erf_parts(z);
    (e, V::splat(FRAC_2_SQRT_PI) * g)
}

/// 1/sqrt(2 pi).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

#[inline(always)]
fn gelu<V: Lanes>(z: V) -> (V, V) {
    let x = -z / V::splat(SQRT_2);
    let (_, c, g) = erf_parts(x);
    let cdf = V::splat(0.5) * c;
    let pdf = g * V::splat(FRAC_1_SQRT_2PI);
    (z * cdf, z.mul_add_(pdf, cdf))
}

#[inline(always)]
fn tanh<V: Lanes>(z: V) -> (V, V) {
    let s = V::splat;
    let y = -(z.abs_() * s(2.0));
    let mut e = exp(y);
    let mut em = e - s(1.0);
    // Near 0, e^y - 1 from its series: e - 1 would lose the digits of tanh's small values.
    let near = y.ge(s(-0.346_573_590_279_972_65));
    if V::any(near) {
        let small = y * horner(y, EXPM1_TAYLOR);
        em = V::select(near, small, em);
        e = V::select(near, s(1.0) + small, e);
    }
    // One division for both (a division costs as much as several FMAs).
    let inv = s(1.0) / (s(1.0) + e);
    let t = -em * inv;
    let value = V::select(z.lt(s(0.0)), -t, t);
    let value = V::select(z.is_nan(), z, value);
    (value, s(4.0) * e * inv * inv)
}

#[inline(always)]
fn softplus<V: Lanes>(z: V) -> (V, V) {
    let s = V::splat;
    let e = exp(-z.abs_());
    // log1p_unit's e/(2 + e) and the slope's 1/(1 + e) from one division.
    let (two_e, one_e) = (s(2.0) + e, s(1.0) + e);
    let inv = s(1.0) / (two_e * one_e);
    let q = e * one_e * inv;
    let value = z.max_(s(0.0)) + log1p_of_ratio(q);
    let top = V::select(z.ge(s(0.0)), s(1.0), e);
    (V::select(z.is_nan(), z, value), top * two_e * inv)
}

#[inline(always)]
fn sigmoid<V: Lanes>(z: V) -> (V, V) {
    let s = V::splat;
    let e = exp(-z.abs_());
    let inv = s(1.0) / (s(1.0) + e);
    let top = V::select(z.ge(s(0.0)), s(1.0), e);
    (V::select(z.is_nan(), z, top * inv), e * inv * inv)
}

// The activations as const parameters of the loops below, so that each loop calls its
// function directly: called through a closure or fn pointer (an `Fn::call` shim without the
// CPU features) the intrinsics were not inlined, and the vector code ran 10x slower than libm.
const RELU: u8 = 0;
const ERF: u8 = 1;
const GELU: u8 = 2;
const TANH: u8 = 3;
const SOFTPLUS: u8 = 4;
const SIGMOID: u8 = 5;

/// (sigma, sigma') of the activation ACT.
#[inline(always)]
fn pair<V: Lanes, const ACT: u8>(z: V) -> (V, V) {
    match ACT {
        ERF => erf(z),
        GELU => gelu(z),
        TANH => tanh(z),
        SOFTPLUS => softplus(z),
        SIGMOID => sigmoid(z),
        _ => relu(z),
    }
}

/// Runs `$body` with the const `$k` set to `$act`'s code: the match stays outside the loops,
/// each arm a monomorphic loop.
macro_rules! by_activation {
    ($act:expr, |$k:ident| $body:expr) => {
        match $act {
            Activation::Relu => {
                const $k: u8 = RELU;
                $body
            }
            Activation::Erf => {
                const $k: u8 = ERF;
                $body
            }
            Activation::Gelu => {
                const $k: u8 = GELU;
                $body
            }
            Activation::Tanh => {
                const $k: u8 = TANH;
                $body
            }
            Activation::Softplus => {
                const $k: u8 = SOFTPLUS;
                $body
            }
            Activation::Sigmoid => {
                const $k: u8 = SIGMOID;
                $body
            }
        }
    };
}

/// f on a vector of `z` from `k` on, the last vector zero-padded: every value goes through the
/// same lanes, wherever it sits.
#[inline(always)]
fn apply<V: Lanes, const ACT: u8>(z: &[f64], k: usize) -> (V, V, usize) {
    let w = V::WIDTH;
    if k + w <= z.len() {
        let (v, s) = pair::<V, ACT>(V::load(&z[k..]));
        (v, s, w)
    } else {
        let mut pad = [0.0; 16];
        let left = z.len() - k;
        pad[..left].copy_from_slice(&z[k..]);
        let (v, s) = pair::<V, ACT>(V::load(&pad));
        (v, s, left)
    }
}

/// Writes the first `count` lanes of `v` into `out` from `k`.
#[inline(always)]
fn put<V: Lanes>(v: V, out: &mut [f64], k: usize, count: usize) {
    if count == V::WIDTH {
        v.store(&mut out[k..]);
    } else {
        let mut pad = [0.0; 16];
        v.store(&mut pad);
        out[k..k + count].copy_from_slice(&pad[..count]);
    }
}

#[inline(always)]
fn values_rows<V: Lanes, const ACT: u8>(z: &[f64], value: &mut [f64], slope: &mut [f64]) {
    let mut k = 0;
    while k < z.len() {
        let (v, s, count) = apply::<V, ACT>(z, k);
        put(v, value, k, count);
        put(s, slope, k, count);
        k += count;
    }
}

/// sigma(z) (SLOPE false) or sigma'(z) (SLOPE true) in place: the pair's other half is never
/// stored, so the compiler drops the work only it needs (erf's slope is e^{-z^2} alone, no
/// rational function or division); the half kept is computed by the same operations as in
/// [`values_rows`], bit for bit.
#[inline(always)]
fn one_rows<V: Lanes, const ACT: u8, const SLOPE: bool>(z: &mut [f64]) {
    let mut k = 0;
    while k < z.len() {
        let (v, s, count) = apply::<V, ACT>(z, k);
        put(if SLOPE { s } else { v }, z, k, count);
        k += count;
    }
}

/// Over a block's pre-activations (row r of `zb` holds z_r1 .. z_rn, n = zb.len() / a.len()):
/// u_i += a_r sigma(z_ri) and z_ri <- a_r sigma'(z_ri).
#[inline(always)]
fn share_rows<V: Lanes, const ACT: u8>(zb: &mut [f64], u: &mut [f64], a: &[f64]) {
    let n = zb.len() / a.len();
    for (zr, &ar) in zb.chunks_exact_mut(n).zip(a) {
        let av = V::splat(ar);
        let mut k = 0;
        while k < n {
            let (v, s, count) = apply::<V, ACT>(zr, k);
            let uk = if count == V::WIDTH {
                V::load(&u[k..])
            } else {
                let mut pad = [0.0; 16];
                pad[..count].copy_from_slice(&u[k..k + count]);
                V::load(&pad)
            };
            put(av.mul_add_(v, uk), u, k, count);
            put(av * s, zr, k, count);
            k += count;
        }
    }
}

/// sigma(z) into `value` and sigma'(z) into `slope`, elementwise; with the token, four at a
/// time in AVX2 lanes.
pub(crate) fn values_and_slopes(
    act: Activation,
    cpu: Option<Avx2Fma>,
    z: &[f64],
    value: &mut [f64],
    slope: &mut [f64],
) {
    assert!(
        value.len() == z.len() && slope.len() == z.len(),
        "{} values, {} slopes for {} arguments",
        value.len(),
        slope.len(),
        z.len()
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = cpu {
        return v4::values_and_slopes(cpu, act, z, value, slope);
    }
    let _ = cpu;
    by_activation!(act, |A| values_rows::<f64, A>(z, value, slope))
}

/// sigma(z) (`slope` false) or sigma'(z) (`slope` true) in place over `z`: the same values as
/// [`values_and_slopes`], bit for bit, without computing the other half.
pub(crate) fn one_in_place(act: Activation, cpu: Option<Avx2Fma>, z: &mut [f64], slope: bool) {
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = cpu {
        return v4::one_in_place(cpu, act, z, slope);
    }
    let _ = cpu;
    if slope {
        by_activation!(act, |A| one_rows::<f64, A, true>(z))
    } else {
        by_activation!(act, |A| one_rows::<f64, A, false>(z))
    }
}

/// A smooth activation's pass 1 over a block of pre-activations (len rows of n, neuron-major):
/// u_i += a_r sigma(z_ri) (u may be padded past n) and z_ri <- a_r sigma'(z_ri).
pub(crate) fn share(
    act: Activation,
    cpu: Option<Avx2Fma>,
    zb: &mut [f64],
    u: &mut [f64],
    a: &[f64],
) {
    assert!(
        !a.is_empty() && zb.len().is_multiple_of(a.len()) && u.len() >= zb.len() / a.len(),
        "a block of {} values for {} neurons and {} samples",
        zb.len(),
        a.len(),
        u.len()
    );
    #[cfg(target_arch = "x86_64")]
    if let Some(cpu) = cpu {
        return v4::share(cpu, act, zb, u, a);
    }
    let _ = cpu;
    by_activation!(act, |A| share_rows::<f64, A>(zb, u, a))
}

#[cfg(target_arch = "x86_64")]
// `Wide`'s operations walk K vectors of two or three arrays at once: an index is clearest.
#[allow(clippy::needless_range_loop)]
mod v4 {
    //! The 4-lane AVX2 (`V4`) and 8-lane AVX-512F (`V8`) implementations of [`Lanes`]. A `V4`
    //! is only made inside the `#[target_feature(enable = "avx2,fma")]` functions at the
    //! bottom (a `V8` inside the `avx512f` ones), which are entered only with the [`Avx2Fma`]
    //! token: every intrinsic below runs on a CPU that has it, and (`#[inline(always)]`) is
    //! compiled inside those functions, with their features.

    use super::{one_rows, pair, share_rows, values_rows, Lanes};
    use super::{ERF, GELU, RELU, SIGMOID, SOFTPLUS, TANH};
    use crate::model::Activation;
    use crate::simd::Avx2Fma;
    use std::arch::x86_64::*;
    use std::ops::{Add, Div, Mul, Neg, Sub};

    #[derive(Clone, Copy)]
    pub(super) struct V4(__m256d);

    macro_rules! binary {
        ($trait:ident, $method:ident, $intrinsic:ident) => {
            impl $trait for V4 {
                type Output = V4;
                #[inline(always)]
                fn $method(self, o: V4) -> V4 {
                    // SAFETY: a V4 exists only where AVX2 is present (module docs).
                    V4(unsafe { $intrinsic(self.0, o.0) })
                }
            }
        };
    }
    binary!(Add, add, _mm256_add_pd);
    binary!(Sub, sub, _mm256_sub_pd);
    binary!(Mul, mul, _mm256_mul_pd);
    binary!(Div, div, _mm256_div_pd);

    impl Neg for V4 {
        type Output = V4;
        #[inline(always)]
        fn neg(self) -> V4 {
            // SAFETY: as above; flips the sign bits.
            V4(unsafe { _mm256_xor_pd(self.0, _mm256_set1_pd(-0.0)) })
        }
    }

    impl Lanes for V4 {
        type Mask = __m256d;
        const WIDTH: usize = 4;
        #[inline(always)]
        fn splat(x: f64) -> V4 {
            // SAFETY: as above.
            V4(unsafe { _mm256_set1_pd(x) })
        }
        #[inline(always)]
        fn load(s: &[f64]) -> V4 {
            assert!(s.len() >= 4);
            // SAFETY: 4 doubles readable (checked), unaligned load; AVX as above.
            V4(unsafe { _mm256_loadu_pd(s.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, s: &mut [f64]) {
            assert!(s.len() >= 4);
            // SAFETY: 4 doubles writable (checked), unaligned store; AVX as above.
            unsafe { _mm256_storeu_pd(s.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn mul_add_(self, b: V4, c: V4) -> V4 {
            // SAFETY: FMA is present where a V4 exists (module docs).
            V4(unsafe { _mm256_fmadd_pd(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn abs_(self) -> V4 {
            // SAFETY: as above; clears the sign bits.
            V4(unsafe { _mm256_andnot_pd(_mm256_set1_pd(-0.0), self.0) })
        }
        #[inline(always)]
        fn min_(self, o: V4) -> V4 {
            // SAFETY: as above (the second operand where the first is NaN).
            V4(unsafe { _mm256_min_pd(self.0, o.0) })
        }
        #[inline(always)]
        fn max_(self, o: V4) -> V4 {
            // SAFETY: as above.
            V4(unsafe { _mm256_max_pd(self.0, o.0) })
        }
        #[inline(always)]
        fn floor_(self) -> V4 {
            // SAFETY: as above.
            V4(unsafe { _mm256_floor_pd(self.0) })
        }
        #[inline(always)]
        fn lt(self, o: V4) -> __m256d {
            // SAFETY: as above.
            unsafe { _mm256_cmp_pd::<_CMP_LT_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn ge(self, o: V4) -> __m256d {
            // SAFETY: as above.
            unsafe { _mm256_cmp_pd::<_CMP_GE_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn is_nan(self) -> __m256d {
            // SAFETY: as above.
            unsafe { _mm256_cmp_pd::<_CMP_UNORD_Q>(self.0, self.0) }
        }
        #[inline(always)]
        fn and(a: __m256d, b: __m256d) -> __m256d {
            // SAFETY: as above.
            unsafe { _mm256_and_pd(a, b) }
        }
        #[inline(always)]
        fn or(a: __m256d, b: __m256d) -> __m256d {
            // SAFETY: as above.
            unsafe { _mm256_or_pd(a, b) }
        }
        #[inline(always)]
        fn any(m: __m256d) -> bool {
            // SAFETY: as above.
            unsafe { _mm256_movemask_pd(m) != 0 }
        }
        #[inline(always)]
        fn select(m: __m256d, a: V4, b: V4) -> V4 {
            // SAFETY: as above (blendv takes its second operand where the mask is set).
            V4(unsafe { _mm256_blendv_pd(b.0, a.0, m) })
        }
        #[inline(always)]
        fn keep_bits(self, keep: u64) -> V4 {
            // SAFETY: as above.
            V4(unsafe {
                _mm256_and_pd(self.0, _mm256_castsi256_pd(_mm256_set1_epi64x(keep as i64)))
            })
        }
        #[inline(always)]
        fn pow2(k: V4) -> V4 {
            // SAFETY: AVX2 as above (64-bit shifts); the scalar lanes' bit trick.
            V4(unsafe {
                let b = _mm256_add_pd(k.0, _mm256_set1_pd(super::SHIFT + 1023.0));
                _mm256_castsi256_pd(_mm256_slli_epi64::<52>(_mm256_castpd_si256(b)))
            })
        }
    }

    /// The 8-lane AVX-512F implementation of [`Lanes`]: each lane does the operations of a
    /// `V4` lane (the same FMAs, comparisons, selects and rounding), so the results are the
    /// same bits. A `V8` is only made inside the `#[target_feature(enable =
    /// "avx512f,avx2,fma")]` functions at the bottom, entered only with a token whose
    /// `avx512()` holds (set only by detection). Only AVX-512F instructions are used (the
    /// bitwise operations on doubles are AVX-512DQ's, so they go through the integer ones).
    #[derive(Clone, Copy)]
    pub(super) struct V8(__m512d);

    macro_rules! binary8 {
        ($trait:ident, $method:ident, $intrinsic:ident) => {
            impl $trait for V8 {
                type Output = V8;
                #[inline(always)]
                fn $method(self, o: V8) -> V8 {
                    // SAFETY: a V8 exists only where AVX-512F is present (V8's docs).
                    V8(unsafe { $intrinsic(self.0, o.0) })
                }
            }
        };
    }
    binary8!(Add, add, _mm512_add_pd);
    binary8!(Sub, sub, _mm512_sub_pd);
    binary8!(Mul, mul, _mm512_mul_pd);
    binary8!(Div, div, _mm512_div_pd);

    /// The bits of `v` and `m` (AVX-512F's integer and; `_mm512_and_pd` is AVX-512DQ).
    #[inline(always)]
    fn and_bits(v: __m512d, m: __m512i) -> __m512d {
        // SAFETY: AVX-512F as in V8's docs.
        unsafe { _mm512_castsi512_pd(_mm512_and_si512(_mm512_castpd_si512(v), m)) }
    }

    impl Neg for V8 {
        type Output = V8;
        #[inline(always)]
        fn neg(self) -> V8 {
            // SAFETY: as above; flips the sign bits (integer xor: `_mm512_xor_pd` is DQ).
            V8(unsafe {
                _mm512_castsi512_pd(_mm512_xor_si512(
                    _mm512_castpd_si512(self.0),
                    _mm512_set1_epi64(i64::MIN),
                ))
            })
        }
    }

    impl Lanes for V8 {
        type Mask = __mmask8;
        const WIDTH: usize = 8;
        #[inline(always)]
        fn splat(x: f64) -> V8 {
            // SAFETY: as above.
            V8(unsafe { _mm512_set1_pd(x) })
        }
        #[inline(always)]
        fn load(s: &[f64]) -> V8 {
            assert!(s.len() >= 8);
            // SAFETY: 8 doubles readable (checked), unaligned load; AVX-512F as above.
            V8(unsafe { _mm512_loadu_pd(s.as_ptr()) })
        }
        #[inline(always)]
        fn store(self, s: &mut [f64]) {
            assert!(s.len() >= 8);
            // SAFETY: 8 doubles writable (checked), unaligned store; AVX-512F as above.
            unsafe { _mm512_storeu_pd(s.as_mut_ptr(), self.0) }
        }
        #[inline(always)]
        fn mul_add_(self, b: V8, c: V8) -> V8 {
            // SAFETY: AVX-512F (its FMA) as above.
            V8(unsafe { _mm512_fmadd_pd(self.0, b.0, c.0) })
        }
        #[inline(always)]
        fn abs_(self) -> V8 {
            // SAFETY: as above; clears the sign bits.
            and_bits(self.0, unsafe { _mm512_set1_epi64(i64::MAX) }).into()
        }
        #[inline(always)]
        fn min_(self, o: V8) -> V8 {
            // SAFETY: as above (the second operand where either is NaN, as vminpd ymm).
            V8(unsafe { _mm512_min_pd(self.0, o.0) })
        }
        #[inline(always)]
        fn max_(self, o: V8) -> V8 {
            // SAFETY: as above.
            V8(unsafe { _mm512_max_pd(self.0, o.0) })
        }
        #[inline(always)]
        fn floor_(self) -> V8 {
            // SAFETY: as above; round toward -inf, exceptions suppressed: the immediate of
            // `_mm256_floor_pd` (0x09).
            V8(unsafe {
                _mm512_roundscale_pd::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(self.0)
            })
        }
        #[inline(always)]
        fn lt(self, o: V8) -> __mmask8 {
            // SAFETY: as above.
            unsafe { _mm512_cmp_pd_mask::<_CMP_LT_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn ge(self, o: V8) -> __mmask8 {
            // SAFETY: as above.
            unsafe { _mm512_cmp_pd_mask::<_CMP_GE_OQ>(self.0, o.0) }
        }
        #[inline(always)]
        fn is_nan(self) -> __mmask8 {
            // SAFETY: as above.
            unsafe { _mm512_cmp_pd_mask::<_CMP_UNORD_Q>(self.0, self.0) }
        }
        #[inline(always)]
        fn and(a: __mmask8, b: __mmask8) -> __mmask8 {
            a & b
        }
        #[inline(always)]
        fn or(a: __mmask8, b: __mmask8) -> __mmask8 {
            a | b
        }
        #[inline(always)]
        fn any(m: __mmask8) -> bool {
            m != 0
        }
        #[inline(always)]
        fn select(m: __mmask8, a: V8, b: V8) -> V8 {
            // SAFETY: as above (the blend takes its second operand where the mask is set).
            V8(unsafe { _mm512_mask_blend_pd(m, b.0, a.0) })
        }
        #[inline(always)]
        fn keep_bits(self, keep: u64) -> V8 {
            // SAFETY: as above.
            and_bits(self.0, unsafe { _mm512_set1_epi64(keep as i64) }).into()
        }
        #[inline(always)]
        fn pow2(k: V8) -> V8 {
            // SAFETY: AVX-512F as above (64-bit shifts); the scalar lanes' bit trick.
            V8(unsafe {
                let b = _mm512_add_pd(k.0, _mm512_set1_pd(super::SHIFT + 1023.0));
                _mm512_castsi512_pd(_mm512_slli_epi64::<52>(_mm512_castpd_si512(b)))
            })
        }
    }

    impl From<__m512d> for V8 {
        #[inline(always)]
        fn from(v: __m512d) -> V8 {
            V8(v)
        }
    }

    /// K independent vectors (`V4` or `V8`), every operation applied to each: one call of an
    /// activation's function then runs K dependency chains side by side. The functions are
    /// long chains of dependent FMAs (Horner's rule, the exponential's reduction), each
    /// instruction waiting for the last one's latency; alone, one vector left the FMA units
    /// mostly idle. Each lane's arithmetic is the same as in a lone vector, so the results are
    /// the same bits; only the region tests (`any`) look at all K vectors at once.
    #[derive(Clone, Copy)]
    pub(super) struct Wide<V, const K: usize>([V; K]);

    macro_rules! wide_binary {
        ($trait:ident, $method:ident) => {
            impl<V: Lanes, const K: usize> $trait for Wide<V, K> {
                type Output = Wide<V, K>;
                #[inline(always)]
                fn $method(self, o: Wide<V, K>) -> Wide<V, K> {
                    let mut r = self.0;
                    for j in 0..K {
                        r[j] = $trait::$method(r[j], o.0[j]);
                    }
                    Wide(r)
                }
            }
        };
    }
    wide_binary!(Add, add);
    wide_binary!(Sub, sub);
    wide_binary!(Mul, mul);
    wide_binary!(Div, div);

    impl<V: Lanes, const K: usize> Neg for Wide<V, K> {
        type Output = Wide<V, K>;
        #[inline(always)]
        fn neg(self) -> Wide<V, K> {
            self.map(|v| -v)
        }
    }

    impl<V: Lanes, const K: usize> Wide<V, K> {
        #[inline(always)]
        fn map(self, f: impl Fn(V) -> V) -> Wide<V, K> {
            let mut r = self.0;
            for v in &mut r {
                *v = f(*v);
            }
            Wide(r)
        }
        #[inline(always)]
        fn zip(self, o: Wide<V, K>, f: impl Fn(V, V) -> V) -> Wide<V, K> {
            let mut r = self.0;
            for j in 0..K {
                r[j] = f(r[j], o.0[j]);
            }
            Wide(r)
        }
        #[inline(always)]
        fn test(self, o: Wide<V, K>, f: impl Fn(V, V) -> V::Mask) -> [V::Mask; K] {
            let mut r = [f(self.0[0], o.0[0]); K];
            for j in 1..K {
                r[j] = f(self.0[j], o.0[j]);
            }
            r
        }
    }

    impl<V: Lanes, const K: usize> Lanes for Wide<V, K> {
        type Mask = [V::Mask; K];
        const WIDTH: usize = V::WIDTH * K;
        #[inline(always)]
        fn splat(x: f64) -> Wide<V, K> {
            Wide([V::splat(x); K])
        }
        #[inline(always)]
        fn load(s: &[f64]) -> Wide<V, K> {
            let mut r = [V::splat(0.0); K];
            for (j, v) in r.iter_mut().enumerate() {
                *v = V::load(&s[V::WIDTH * j..]);
            }
            Wide(r)
        }
        #[inline(always)]
        fn store(self, s: &mut [f64]) {
            for (j, v) in self.0.iter().enumerate() {
                v.store(&mut s[V::WIDTH * j..]);
            }
        }
        #[inline(always)]
        fn mul_add_(self, b: Wide<V, K>, c: Wide<V, K>) -> Wide<V, K> {
            let mut r = self.0;
            for j in 0..K {
                r[j] = r[j].mul_add_(b.0[j], c.0[j]);
            }
            Wide(r)
        }
        #[inline(always)]
        fn abs_(self) -> Wide<V, K> {
            self.map(V::abs_)
        }
        #[inline(always)]
        fn min_(self, o: Wide<V, K>) -> Wide<V, K> {
            self.zip(o, V::min_)
        }
        #[inline(always)]
        fn max_(self, o: Wide<V, K>) -> Wide<V, K> {
            self.zip(o, V::max_)
        }
        #[inline(always)]
        fn floor_(self) -> Wide<V, K> {
            self.map(V::floor_)
        }
        #[inline(always)]
        fn lt(self, o: Wide<V, K>) -> [V::Mask; K] {
            self.test(o, V::lt)
        }
        #[inline(always)]
        fn ge(self, o: Wide<V, K>) -> [V::Mask; K] {
            self.test(o, V::ge)
        }
        #[inline(always)]
        fn is_nan(self) -> [V::Mask; K] {
            self.test(self, |a, _| a.is_nan())
        }
        #[inline(always)]
        fn and(a: [V::Mask; K], b: [V::Mask; K]) -> [V::Mask; K] {
            let mut r = a;
            for j in 0..K {
                r[j] = V::and(a[j], b[j]);
            }
            r
        }
        #[inline(always)]
        fn or(a: [V::Mask; K], b: [V::Mask; K]) -> [V::Mask; K] {
            let mut r = a;
            for j in 0..K {
                r[j] = V::or(a[j], b[j]);
            }
            r
        }
        #[inline(always)]
        fn any(m: [V::Mask; K]) -> bool {
            let mut all = m[0];
            for &mj in &m[1..] {
                all = V::or(all, mj);
            }
            V::any(all)
        }
        #[inline(always)]
        fn select(m: [V::Mask; K], a: Wide<V, K>, b: Wide<V, K>) -> Wide<V, K> {
            let mut r = b.0;
            for j in 0..K {
                r[j] = V::select(m[j], a.0[j], b.0[j]);
            }
            Wide(r)
        }
        #[inline(always)]
        fn keep_bits(self, keep: u64) -> Wide<V, K> {
            self.map(|v| v.keep_bits(keep))
        }
        #[inline(always)]
        fn pow2(k: Wide<V, K>) -> Wide<V, K> {
            k.map(V::pow2)
        }
    }

    /// The first `count` (1 to V::WIDTH) values of `s`, zero-padded.
    #[inline(always)]
    fn load_part<V: Lanes>(s: &[f64], count: usize) -> V {
        if count == V::WIDTH {
            V::load(s)
        } else {
            let mut pad = [0.0; 16];
            pad[..count].copy_from_slice(&s[..count]);
            V::load(&pad)
        }
    }

    /// The first `count` (1 to V::WIDTH) lanes of `v` into `s`.
    #[inline(always)]
    fn store_part<V: Lanes>(v: V, s: &mut [f64], count: usize) {
        if count == V::WIDTH {
            v.store(s);
        } else {
            let mut pad = [0.0; 16];
            v.store(&mut pad);
            s[..count].copy_from_slice(&pad[..count]);
        }
    }

    /// [`share_rows`] over K rows at a time: the same V::WIDTH samples of K neurons go through
    /// one `Wide<V, K>` call; u_i still gains a_r sigma(z_ri) in the order of r (the same bits
    /// as row by row). The rows left over (fewer than K) go row by row.
    #[inline(always)]
    fn share_wide<V: Lanes, const ACT: u8, const K: usize>(
        zb: &mut [f64],
        u: &mut [f64],
        a: &[f64],
    ) {
        let n = zb.len() / a.len();
        let groups = a.len() / K;
        let (head, tail) = zb.split_at_mut(groups * K * n);
        for (zg, ag) in head.chunks_exact_mut(K * n).zip(a.chunks_exact(K)) {
            let mut k = 0;
            while k < n {
                let count = (n - k).min(V::WIDTH);
                let mut z = [V::splat(0.0); K];
                for (j, zj) in z.iter_mut().enumerate() {
                    *zj = load_part(&zg[j * n + k..], count);
                }
                let (v, s) = pair::<Wide<V, K>, ACT>(Wide(z));
                let mut uk: V = load_part(&u[k..], count);
                for j in 0..K {
                    let av = V::splat(ag[j]);
                    uk = av.mul_add_(v.0[j], uk);
                    store_part(av * s.0[j], &mut zg[j * n + k..], count);
                }
                store_part(uk, &mut u[k..], count);
                k += count;
            }
        }
        if !tail.is_empty() {
            share_rows::<V, ACT>(tail, u, &a[groups * K..]);
        }
    }

    pub(super) fn values_and_slopes(
        cpu: Avx2Fma,
        act: Activation,
        z: &[f64],
        value: &mut [f64],
        slope: &mut [f64],
    ) {
        if cpu.avx512() {
            // SAFETY: the token proves AVX-512F (avx512 is set only by detection), AVX2, FMA.
            unsafe { values_avx512(act, z, value, slope) }
        } else {
            // SAFETY: the token proves AVX2 and FMA.
            unsafe { values_avx2(act, z, value, slope) }
        }
    }

    pub(super) fn one_in_place(cpu: Avx2Fma, act: Activation, z: &mut [f64], slope: bool) {
        if cpu.avx512() {
            // SAFETY: the token proves AVX-512F (avx512 is set only by detection), AVX2, FMA.
            unsafe { one_avx512(act, z, slope) }
        } else {
            // SAFETY: the token proves AVX2 and FMA.
            unsafe { one_avx2(act, z, slope) }
        }
    }

    pub(super) fn share(cpu: Avx2Fma, act: Activation, zb: &mut [f64], u: &mut [f64], a: &[f64]) {
        if cpu.avx512() {
            // SAFETY: the token proves AVX-512F (avx512 is set only by detection), AVX2, FMA.
            unsafe { share_avx512(act, zb, u, a) }
        } else {
            // SAFETY: the token proves AVX2 and FMA.
            unsafe { share_avx2(act, zb, u, a) }
        }
    }

    /// # Safety
    /// AVX2 and FMA must be present.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn values_avx2(act: Activation, z: &[f64], value: &mut [f64], slope: &mut [f64]) {
        by_activation!(act, |A| values_rows::<Wide<V4, 2>, A>(z, value, slope))
    }

    /// # Safety
    /// AVX2 and FMA must be present.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn one_avx2(act: Activation, z: &mut [f64], slope: bool) {
        if slope {
            by_activation!(act, |A| one_rows::<Wide<V4, 2>, A, true>(z))
        } else {
            by_activation!(act, |A| one_rows::<Wide<V4, 2>, A, false>(z))
        }
    }

    /// # Safety
    /// AVX2 and FMA must be present.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn share_avx2(act: Activation, zb: &mut [f64], u: &mut [f64], a: &[f64]) {
        // Vectors per call, measured (2026-12-01, 50 x 2000 values, K = 1 / 2 / 3 / 4, us):
        // erf 1088 / 798 / 819 / 881, gelu 1110 / 824 / 847 / 1015 (their many live values
        // spill past 2), tanh 853 / 566 / 499 / 499, sigmoid 641 / 401 / 358 / 353, softplus
        // 1058 / 784 / 661 / 560.
        by_activation!(act, |A| if A == ERF || A == GELU {
            share_wide::<V4, A, 2>(zb, u, a)
        } else if A == SOFTPLUS {
            share_wide::<V4, A, 4>(zb, u, a)
        } else {
            share_wide::<V4, A, 3>(zb, u, a)
        })
    }

    /// # Safety
    /// AVX-512F, AVX2 and FMA must be present.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn values_avx512(act: Activation, z: &[f64], value: &mut [f64], slope: &mut [f64]) {
        by_activation!(act, |A| values_rows::<Wide<V8, 2>, A>(z, value, slope))
    }

    /// # Safety
    /// AVX-512F, AVX2 and FMA must be present.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn one_avx512(act: Activation, z: &mut [f64], slope: bool) {
        if slope {
            by_activation!(act, |A| one_rows::<Wide<V8, 2>, A, true>(z))
        } else {
            by_activation!(act, |A| one_rows::<Wide<V8, 2>, A, false>(z))
        }
    }

    /// # Safety
    /// AVX-512F, AVX2 and FMA must be present.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn share_avx512(act: Activation, zb: &mut [f64], u: &mut [f64], a: &[f64]) {
        // 8-lane vectors per call: erf and gelu take 4, not the 256-bit path's 2 (32 registers
        // of 512 bits hold what 16 of 256 bits spilled). Measured (2026-12-01, `ntkdyn gf
        // --t-end 10` weight wall, medians of 5-7 alternating runs, K = 1 / 2 / 3 / 4, s): erf
        // 0.228 / 0.215 / 0.213 / 0.209, gelu 0.241 / 0.232 / 0.222 / 0.214. The others keep
        // the 256-bit choice (not re-measured).
        by_activation!(act, |A| if A == ERF || A == GELU || A == SOFTPLUS {
            share_wide::<V8, A, 4>(zb, u, a)
        } else {
            share_wide::<V8, A, 3>(zb, u, a)
        })
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The formulas of the module docs with libm's functions at the same argument.
    fn reference(act: Activation, z: f64) -> (f64, f64, f64) {
        // (value, slope, scale of the slope's terms, for the cancellation in gelu')
        let gauss_ref = |x: f64| {
            if x.is_nan() {
                return x;
            }
            let ax = x.abs().min(40.0);
            let h = f64::from_bits(ax.to_bits() & 0xffff_ffff_0000_0000);
            libm::exp(-h * h) * libm::exp((h - ax) * (h + ax))
        };
        match act {
            Activation::Relu => (z.max(0.0), f64::from(z >= 0.0), 1.0),
            Activation::Erf => {
                let s = FRAC_2_SQRT_PI * gauss_ref(z);
                (libm::erf(z), s, s)
            }
            Activation::Gelu => {
                let x = -z / SQRT_2;
                let cdf = 0.5 * libm::erfc(x);
                let zpdf = z * gauss_ref(x) * FRAC_1_SQRT_2PI;
                (z * cdf, cdf + zpdf, cdf.abs() + zpdf.abs())
            }
            Activation::Tanh => {
                let e = libm::exp(-2.0 * z.abs());
                let s = 4.0 * e / ((1.0 + e) * (1.0 + e));
                (libm::tanh(z), s, s)
            }
            Activation::Softplus => {
                let e = libm::exp(-z.abs());
                let s = if z >= 0.0 { 1.0 } else { e } / (1.0 + e);
                (z.max(0.0) + libm::log1p(e), s, s)
            }
            Activation::Sigmoid => {
                let e = libm::exp(-z.abs());
                let s = e / ((1.0 + e) * (1.0 + e));
                (if z >= 0.0 { 1.0 } else { e } / (1.0 + e), s, s)
            }
        }
    }

    /// The bound of every relative error below: 2e-15 (18 units of 2^-53). Cody's erfc on
    /// [0.84375, 4] is exact to 3e-17 as a rational function, but its two degree-8 Horner
    /// evaluations, the division and e^{-x^2} round to up to 9.2 units of 2^-53 from libm's
    /// (x near 3, libm's own error included): past the 1e-15 that musl's tail had kept, at
    /// twice the cost.
    const TOLERANCE: f64 = 2e-15;

    /// |got - want| / |scale|, the scale floored at 1e-292: results near and below the
    /// subnormals (where no relative accuracy exists) are held to an absolute 1e-307.
    fn error(got: f64, want: f64, scale: f64) -> f64 {
        if got == want || (got.is_nan() && want.is_nan()) {
            return 0.0;
        }
        (got - want).abs() / scale.abs().max(1e-292)
    }

    /// Arguments over the whole line: a fine grid on [-40, 40], magnitudes from 1e-300 to
    /// 1e300 of both signs, the region bounds of erf and their neighbours, and the specials.
    fn arguments() -> Vec<f64> {
        let mut z: Vec<f64> = (-400_000..=400_000).map(|k| k as f64 * 1e-4).collect();
        for e in -300..=300 {
            for m in [1.0, 1.7, 3.3, 7.9] {
                z.push(m * 10f64.powi(e));
                z.push(-m * 10f64.powi(e));
            }
        }
        let scale = SQRT_2;
        for b in [
            ERF_TINY, ERF_SMALL, 0.25, 0.46875, 1.25, 2.857, ERF_FAR, 6.0, 26.5, 27.3, 28.0, 38.0,
        ] {
            for b in [b, b * scale] {
                for v in [b.next_down(), b, b.next_up()] {
                    z.push(v);
                    z.push(-v);
                }
            }
        }
        z.extend([0.0, -0.0, f64::MIN_POSITIVE, 5e-324, f64::MAX, f64::MIN]);
        z.extend([f64::INFINITY, f64::NEG_INFINITY, f64::NAN]);
        z
    }

    /// The worst (value, slope) errors of one activation through the slice function.
    fn worst(act: Activation, cpu: Option<Avx2Fma>, z: &[f64]) -> (f64, f64) {
        let (mut v, mut s) = (vec![0.0; z.len()], vec![0.0; z.len()]);
        values_and_slopes(act, cpu, z, &mut v, &mut s);
        let mut w: (f64, f64) = (0.0, 0.0);
        for (k, &zk) in z.iter().enumerate() {
            let (rv, rs, scale) = reference(act, zk);
            let (ev, es) = (error(v[k], rv, rv), error(s[k], rs, scale));
            assert!(
                ev <= TOLERANCE && es <= TOLERANCE,
                "{act:?} at {zk:e}: value {:e} vs {rv:e}, slope {:e} vs {rs:e}",
                v[k],
                s[k]
            );
            w = (w.0.max(ev), w.1.max(es));
        }
        w
    }

    #[test]
    fn smooth_activations_are_libm_to_2e15_relative_over_the_whole_line() {
        let z = arguments();
        let mut cpus = vec![None];
        if let Some(cpu) = Avx2Fma::detect() {
            cpus.extend([Some(cpu.without_avx512()), Some(cpu)]);
        }
        for cpu in cpus {
            for act in Activation::ALL {
                let (v, s) = worst(act, cpu, &z);
                eprintln!(
                    "{:<8} {:<8} value {:.2} ulp, slope {:.2} ulp (worst relative / 2^-53)",
                    act.name(),
                    match cpu {
                        Some(c) if c.avx512() => "avx512",
                        Some(_) => "avx2",
                        None => "scalar",
                    },
                    v / f64::EPSILON * 2.0,
                    s / f64::EPSILON * 2.0
                );
            }
        }
    }

    #[test]
    fn exp_erf_erfc_and_log1p_are_libm_to_2e15_relative() {
        let z = arguments();
        for &x in &z {
            let (e, c, _) = erf_parts(x);
            assert!(
                error(e, libm::erf(x), libm::erf(x)) <= TOLERANCE,
                "erf {x:e}"
            );
            assert!(
                error(c, libm::erfc(x), libm::erfc(x)) <= TOLERANCE,
                "erfc {x:e}"
            );
            let ex = exp(x.clamp(-800.0, 800.0));
            let want = libm::exp(x.clamp(-800.0, 800.0));
            assert!(
                error(ex, want, want) <= TOLERANCE,
                "exp {x:e}: {ex:e} vs {want:e}"
            );
            if (0.0..=1.0).contains(&x) {
                let want = libm::log1p(x);
                assert!(error(log1p_unit(x), want, want) <= TOLERANCE, "log1p {x:e}");
            }
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-1e4), 0.0);
        assert_eq!(exp(1e4), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
        assert_eq!(erf_parts(f64::INFINITY).0, 1.0);
        assert_eq!(erf_parts(f64::NEG_INFINITY).1, 2.0);
    }

    #[test]
    fn one_sided_in_place_is_values_and_slopes_bit_for_bit() {
        // 1,003 arguments over [-40, 40] and the specials: the last vector is padded.
        let mut z: Vec<f64> = (0..1000).map(|k| (k as f64 - 500.0) * 0.08).collect();
        z.extend([0.0, f64::NAN, f64::INFINITY]);
        for cpu in [None, Avx2Fma::detect()] {
            for act in Activation::ALL {
                let (mut v, mut s) = (vec![0.0; z.len()], vec![0.0; z.len()]);
                values_and_slopes(act, cpu, &z, &mut v, &mut s);
                for (slope, want) in [(false, &v), (true, &s)] {
                    let mut got = z.clone();
                    one_in_place(act, cpu, &mut got, slope);
                    for k in 0..z.len() {
                        assert_eq!(
                            got[k].to_bits(),
                            want[k].to_bits(),
                            "{act:?} slope {slope} at {}",
                            z[k]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn block_share_adds_sigma_and_scales_sigma_prime_by_a() {
        // 3 neurons x 7 samples: rows end inside a vector, so the padded tail is exercised.
        let (len, n) = (3, 7);
        let z: Vec<f64> = (0..len * n)
            .map(|k| (k as f64 * 0.77).sin() * 4.0)
            .collect();
        let a = [1.0, -1.0, 0.5];
        for cpu in [None, Avx2Fma::detect()] {
            for act in Activation::ALL {
                let mut zb = z.clone();
                let mut u = vec![0.25; 8];
                share(act, cpu, &mut zb, &mut u, &a);
                for i in 0..n {
                    let want: f64 = 0.25
                        + (0..len)
                            .map(|r| a[r] * reference(act, z[r * n + i]).0)
                            .sum::<f64>();
                    assert!((u[i] - want).abs() < 1e-14, "{act:?} u_{i}");
                    for r in 0..len {
                        let want = a[r] * reference(act, z[r * n + i]).1;
                        assert!((zb[r * n + i] - want).abs() < 1e-15, "{act:?} ({r}, {i})");
                    }
                }
                assert_eq!(u[7], 0.25, "padding past n untouched");
            }
        }
    }

    #[test]
    fn avx512_lanes_are_avx2_lanes_bit_for_bit() {
        // The 8-lane kernels do each lane's operations as the 4-lane ones: the same bits, for
        // the whole-line arguments (tails, edges, NaN, inf) and ragged rows in `share`.
        let Some(cpu) = Avx2Fma::detect().filter(|c| c.avx512()) else {
            eprintln!("no AVX-512F: skipped");
            return;
        };
        let narrow = cpu.without_avx512();
        let z = arguments();
        let same = |x: &[f64], y: &[f64], what: &str| {
            for k in 0..x.len() {
                assert_eq!(x[k].to_bits(), y[k].to_bits(), "{what} at {k}");
            }
        };
        for act in Activation::ALL {
            let name = act.name();
            let mut out = Vec::new();
            for c in [cpu, narrow] {
                let (mut v, mut s) = (vec![0.0; z.len()], vec![0.0; z.len()]);
                values_and_slopes(act, Some(c), &z, &mut v, &mut s);
                let (mut ov, mut os) = (z.clone(), z.clone());
                one_in_place(act, Some(c), &mut ov, false);
                one_in_place(act, Some(c), &mut os, true);
                out.push((v, s, ov, os));
            }
            same(&out[0].0, &out[1].0, &format!("{name} value"));
            same(&out[0].1, &out[1].1, &format!("{name} slope"));
            same(&out[0].2, &out[1].2, &format!("{name} value in place"));
            same(&out[0].3, &out[1].3, &format!("{name} slope in place"));
            // Blocks of len neurons x n samples from the arguments: rows ending inside a
            // vector of either width, and neuron counts leaving rows past the groups of K.
            for (len, n) in [(1, 5), (3, 7), (4, 13), (5, 33), (7, 64), (10, 1001)] {
                for start in (0..z.len() - len * n).step_by(z.len() / 7) {
                    let block = &z[start..start + len * n];
                    let a: Vec<f64> = (0..len).map(|r| 0.75 - 0.3 * r as f64).collect();
                    let mut got = Vec::new();
                    for c in [cpu, narrow] {
                        let mut zb = block.to_vec();
                        let mut u: Vec<f64> = (0..n + 3).map(|i| i as f64 * 0.125).collect();
                        share(act, Some(c), &mut zb, &mut u, &a);
                        got.push((zb, u));
                    }
                    same(
                        &got[0].0,
                        &got[1].0,
                        &format!("{name} share slopes {len}x{n}"),
                    );
                    same(&got[0].1, &got[1].1, &format!("{name} share u {len}x{n}"));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn vector_lanes_agree_with_scalar_lanes_to_rounding(
            z in proptest::collection::vec(-60.0f64..60.0, 1..40)
        ) {
            for act in Activation::ALL {
                let mut out = Vec::new();
                for cpu in [None, Avx2Fma::detect()] {
                    let (mut v, mut s) = (vec![0.0; z.len()], vec![0.0; z.len()]);
                    values_and_slopes(act, cpu, &z, &mut v, &mut s);
                    out.push((v, s));
                }
                for (k, &zk) in z.iter().enumerate() {
                    let (rv, rs, scale) = reference(act, zk);
                    for (v, s) in &out {
                        prop_assert!(error(v[k], rv, rv) <= TOLERANCE);
                        prop_assert!(error(s[k], rs, scale) <= TOLERANCE);
                    }
                }
            }
        }
    }
}
