//! Activations sigma of the two-layer network and their dual kernels, the Gaussian expectations
//! the infinite-width kernel is made of.
//!
//! ```text
//! (u, v) ~ N(0, [[a, c], [c, b]])   (a = |x_i|^2, b = |x_j|^2, c = x_i . x_j)
//! dual(a, b, c)       = E[sigma(u) sigma(v)]      (NNGP / conjugate kernel: second layer)
//! dual_slope(a, b, c) = E[sigma'(u) sigma'(v)]    (first-layer NTK over x_i . x_j)
//! d/dc dual = dual_slope                           (Price's theorem)
//! ```
//! Closed forms:
//! - relu: arc-cosine kernels of order 1 and 0 (Cho and Saul 2009), with cos theta = c/sqrt(ab):
//!   dual = sqrt(ab) (sin theta + (pi - theta) cos theta)/(2 pi), dual_slope = (pi - theta)/(2 pi);
//! - erf: dual = (2/pi) arcsin(2c / sqrt((1+2a)(1+2b))) (Williams 1997),
//!   dual_slope = (4/pi) / sqrt((1+2a)(1+2b) - 4c^2) (a Gaussian integral of e^{-u^2-v^2});
//! - gelu (z Phi(z)): with eps(z) = erf(z/sqrt 2), gelu = z/2 + z eps/2, s = sqrt((1+a)(1+b)),
//!   D = sqrt(s^2 - c^2), Q = (2/pi)/D, A = (2/pi) arcsin(c/s) = E[eps eps]:
//!   dual = c/4 + (1/4) [Q (ab + c^2 (1 - ab)/s^2) + c A]                 (Tsuchida et al. 2021)
//!   dual_slope = 1/4 + (1/4) [A + c Q (1/(1+a) + 1/(1+b)) + c Q / D^2]
//!   (derived here by Stein's lemma E[u F] = a E[d_u F] + c E[d_v F], checked against quadrature
//!   and against d/dc dual in the tests).
//!
//! tanh, softplus and sigmoid have none: their kernels are 2-D Gauss-Hermite sums
//! ([`GaussHermite`]), u = sqrt(a) z1, v = (c/sqrt a) z1 + sqrt(b - c^2/a) z2. The rule's error
//! falls like exp(-tau sqrt(2N)) for a function analytic in the strip |Im z| < tau: sigmoid and
//! softplus (poles and branch points at +-i pi) reach 1e-13 at N = 100, tanh (poles at
//! +-i pi/2) needs N = 240 for 1e-12 on the unit sphere (N = 60 gives 1e-6).
//!
//! References:
//! 1. C. K. I. Williams, "Computing with infinite networks", NIPS 1997.
//! 2. Y. Cho, L. K. Saul, "Kernel methods for deep learning", NIPS 2009.
//! 3. R. Tsuchida, T. Pearce, C. van der Heide, F. Roosta, M. Gallagher, "Avoiding kernel fixed
//!    points: computing with ELU and GELU infinite networks", AAAI 2021.
//! 4. G. H. Golub, J. H. Welsch, "Calculation of Gauss quadrature rules", Math. Comp. 1969.

use nalgebra::{DMatrix, SymmetricEigen};
use serde::{Deserialize, Serialize};
use std::f64::consts::{FRAC_2_SQRT_PI, PI, SQRT_2};

/// The activation sigma of the hidden layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(z, 0), relu'(0) = 1 (Du et al.'s convention). Piecewise linear: its weight-space flow
    /// switches.
    #[default]
    Relu,
    /// The error function erf(z).
    Erf,
    /// z Phi(z), Phi the standard normal distribution function.
    Gelu,
    /// tanh(z).
    Tanh,
    /// log(1 + e^z).
    Softplus,
    /// 1 / (1 + e^{-z}).
    Sigmoid,
}

/// How a kernel of an activation is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelMethod {
    ClosedForm,
    /// 2-D Gauss-Hermite with this many nodes per dimension.
    Quadrature(usize),
}

impl Activation {
    /// Every activation, in the order of `--activation`'s help.
    pub const ALL: [Activation; 6] = [
        Activation::Relu,
        Activation::Erf,
        Activation::Gelu,
        Activation::Tanh,
        Activation::Softplus,
        Activation::Sigmoid,
    ];

    /// The name on the command line and in summary.json.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Erf => "erf",
            Activation::Gelu => "gelu",
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Sigmoid => "sigmoid",
        }
    }

    /// The activation of a name, if any.
    pub fn from_name(s: &str) -> Option<Activation> {
        Activation::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Whether the weight-space flow switches (piecewise-linear sigma: relu).
    pub fn switching(self) -> bool {
        self == Activation::Relu
    }

    /// How [`Activation::dual`] and [`Activation::dual_slope`] are computed.
    pub fn kernel_method(self) -> KernelMethod {
        match self {
            Activation::Relu | Activation::Erf | Activation::Gelu => KernelMethod::ClosedForm,
            Activation::Tanh => KernelMethod::Quadrature(TANH_NODES),
            Activation::Softplus | Activation::Sigmoid => KernelMethod::Quadrature(SMOOTH_NODES),
        }
    }

    /// sigma(z).
    #[inline]
    pub fn value(self, z: f64) -> f64 {
        match self {
            Activation::Relu => z.max(0.0),
            Activation::Erf => libm::erf(z),
            Activation::Gelu => 0.5 * z * libm::erfc(-z / SQRT_2),
            Activation::Tanh => z.tanh(),
            Activation::Softplus => softplus(z),
            Activation::Sigmoid => sigmoid(z),
        }
    }

    /// sigma'(z) (relu'(0) = 1).
    #[inline]
    pub fn slope(self, z: f64) -> f64 {
        match self {
            Activation::Relu => f64::from(z >= 0.0),
            Activation::Erf => FRAC_2_SQRT_PI * exp_nonpositive(-z * z),
            Activation::Gelu => self.value_and_slope(z).1,
            Activation::Tanh => {
                let t = z.tanh();
                1.0 - t * t
            }
            Activation::Softplus => {
                let e = (-z.abs()).exp();
                (if z >= 0.0 { 1.0 } else { e }) / (1.0 + e)
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                s * (1.0 - s)
            }
        }
    }

    /// (sigma(z), sigma'(z)) sharing their transcendental functions: the hot loop of a smooth
    /// activation's gradient, where they cost more than the two GEMMs.
    #[inline]
    pub fn value_and_slope(self, z: f64) -> (f64, f64) {
        match self {
            Activation::Relu => (z.max(0.0), f64::from(z >= 0.0)),
            Activation::Erf => (libm::erf(z), FRAC_2_SQRT_PI * exp_nonpositive(-z * z)),
            Activation::Gelu => {
                let cdf = 0.5 * libm::erfc(-z / SQRT_2);
                let pdf = exp_nonpositive(-0.5 * z * z) / (2.0 * PI).sqrt();
                (z * cdf, cdf + z * pdf)
            }
            Activation::Tanh => {
                let t = z.tanh();
                (t, 1.0 - t * t)
            }
            Activation::Softplus => {
                // libm's exp: the branch-free one, inlined beside the log1p call, measured
                // slower here (5.4 ms against 3-4 ms per gradient).
                let e = (-z.abs()).exp();
                let s = if z >= 0.0 { 1.0 } else { e } / (1.0 + e);
                (z.max(0.0) + e.ln_1p(), s)
            }
            Activation::Sigmoid => {
                let s = sigmoid(z);
                (s, s * (1.0 - s))
            }
        }
    }

    /// sigma(z_k) into `value[k]` and sigma'(z_k) into `slope[k]` (slices of one length):
    /// vectorised, four at a time with AVX2 and FMA where the CPU has them (detected at run
    /// time), else one at a time by the same code. Within 2e-15 relative of
    /// [`Activation::value_and_slope`]'s formulas with libm's functions over the whole line
    /// (`crate::simd::math` has the algorithms and their accuracy). The gradient of a smooth
    /// activation evaluates its pre-activations through this code.
    pub fn values_and_slopes(self, z: &[f64], value: &mut [f64], slope: &mut [f64]) {
        crate::simd::math::values_and_slopes(self, crate::simd::Avx2Fma::detect(), z, value, slope);
    }

    /// sigma'(z) in place over `z`, vectorised as [`Activation::values_and_slopes`] (the ReLU
    /// by [`Activation::slope`], bit for bit).
    pub fn slopes_in_place(self, z: &mut [f64]) {
        self.in_place(z, true);
    }

    /// sigma(z) in place over `z`, vectorised as [`Activation::values_and_slopes`] (the ReLU
    /// by [`Activation::value`], bit for bit).
    pub fn values_in_place(self, z: &mut [f64]) {
        self.in_place(z, false);
    }

    fn in_place(self, z: &mut [f64], slope: bool) {
        if self == Activation::Relu {
            let f = |z: f64| if slope { self.slope(z) } else { self.value(z) };
            z.iter_mut().for_each(|z| *z = f(*z));
            return;
        }
        // Only the half asked for is computed (erf's slope needs no erf).
        crate::simd::math::one_in_place(self, crate::simd::Avx2Fma::detect(), z, slope);
    }

    /// E[sigma(u) sigma(v)], (u, v) ~ N(0, [[a, c], [c, b]]).
    pub fn dual(self, a: f64, b: f64, c: f64) -> f64 {
        match self {
            Activation::Relu => {
                let (norms, cos) = angle(a, b, c);
                if norms == 0.0 {
                    return 0.0;
                }
                let theta = cos.acos();
                norms * ((1.0 - cos * cos).sqrt() + (PI - theta) * cos) / (2.0 * PI)
            }
            Activation::Erf => {
                let s = ((1.0 + 2.0 * a) * (1.0 + 2.0 * b)).sqrt();
                (2.0 / PI) * (2.0 * c / s).clamp(-1.0, 1.0).asin()
            }
            Activation::Gelu => {
                let s2 = (1.0 + a) * (1.0 + b);
                let s = s2.sqrt();
                let dd = (s2 - c * c).max(0.0);
                let q = (2.0 / PI) / dd.sqrt();
                let arc = (2.0 / PI) * (c / s).clamp(-1.0, 1.0).asin();
                c / 4.0 + 0.25 * (q * (a * b + c * c * (1.0 - a * b) / s2) + c * arc)
            }
            _ => self.quadrature(a, b, c, false),
        }
    }

    /// E[sigma'(u) sigma'(v)], (u, v) ~ N(0, [[a, c], [c, b]]).
    pub fn dual_slope(self, a: f64, b: f64, c: f64) -> f64 {
        match self {
            Activation::Relu => {
                let (norms, cos) = angle(a, b, c);
                if norms == 0.0 {
                    // w . 0 = 0 is on the active side: relu'(0) = 1.
                    return if a == 0.0 && b == 0.0 { 1.0 } else { 0.5 };
                }
                (PI - cos.acos()) / (2.0 * PI)
            }
            Activation::Erf => {
                let det = (1.0 + 2.0 * a) * (1.0 + 2.0 * b) - 4.0 * c * c;
                (4.0 / PI) / det.sqrt()
            }
            Activation::Gelu => {
                let s2 = (1.0 + a) * (1.0 + b);
                let s = s2.sqrt();
                let dd = s2 - c * c;
                let q = (2.0 / PI) / dd.sqrt();
                let arc = (2.0 / PI) * (c / s).clamp(-1.0, 1.0).asin();
                0.25 + 0.25 * (arc + c * q * (1.0 / (1.0 + a) + 1.0 / (1.0 + b)) + c * q / dd)
            }
            _ => self.quadrature(a, b, c, true),
        }
    }

    /// E[f(u) f(v)] with f = sigma' (`slope`) or sigma by the rule of
    /// [`Activation::kernel_method`], f evaluated a row of nodes at a time by the vectorised
    /// functions: one scalar call per node had been a third of a tanh run (240^2 nodes per
    /// entry of H-infinity).
    fn quadrature(self, a: f64, b: f64, c: f64, slope: bool) -> f64 {
        let nodes = match self.kernel_method() {
            KernelMethod::Quadrature(k) => k,
            KernelMethod::ClosedForm => SMOOTH_NODES,
        };
        GaussHermite::cached(nodes).expectation2_rows(a, b, c, |z| {
            if slope {
                self.slopes_in_place(z)
            } else {
                self.values_in_place(z)
            }
        })
    }
}

/// Nodes per dimension of tanh's rule (see the module docs: 1e-12 on the unit sphere).
pub const TANH_NODES: usize = 240;
/// Nodes per dimension of softplus' and sigmoid's rules.
pub const SMOOTH_NODES: usize = 100;

/// (sqrt(ab), c / sqrt(ab) clamped to [-1, 1]).
fn angle(a: f64, b: f64, c: f64) -> (f64, f64) {
    let norms = (a * b).sqrt();
    if norms == 0.0 {
        return (0.0, 1.0);
    }
    (norms, (c / norms).clamp(-1.0, 1.0))
}

#[inline]
fn sigmoid(z: f64) -> f64 {
    // e^z / (1 + e^z) for z < 0, 1 / (1 + e^-z) otherwise: one select, one division.
    let e = exp_nonpositive(-z.abs());
    let top = if z >= 0.0 { 1.0 } else { e };
    top / (1.0 + e)
}

#[inline]
fn softplus(z: f64) -> f64 {
    // log(1 + e^z) = max(z, 0) + log(1 + e^{-|z|}), without overflow.
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

/// e^x for x <= 0, branch-free so that a loop over it vectorises: x = k ln 2 + r with
/// |r| <= ln 2 / 2 (k rounded by the 1.5 2^52 shift, ln 2 split in Cody and Waite's two parts so
/// that k ln2_hi is exact), e^r by its Taylor polynomial of degree 13 (remainder below 4e-18
/// relative), 2^k put into the exponent bits. Within 1e-15 relative of libm's exp on
/// [-708, 0] (the test below); 0 below -708 where libm's result is subnormal or 0. The
/// gradient of a smooth activation evaluates sigma and sigma' at all m n pre-activations, and
/// libm's exp, a call per value, cost as much as the two GEMMs together.
#[inline]
pub fn exp_nonpositive(x: f64) -> f64 {
    const SHIFT: f64 = 6755399441055744.0; // 1.5 2^52: adding it rounds to an integer
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // fdlibm's ln2HI
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // fdlibm's ln2LO
    let xc = x.max(-708.0);
    let t = xc * std::f64::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    // t lies in [2^52, 2^53) where the ulp is 1: its bits are SHIFT's bits plus k.
    let ki = t.to_bits() as i64 - SHIFT.to_bits() as i64;
    let r = (xc - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 6_227_020_800.0; // 1/13!
    for c in [
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
    ] {
        p = p * r + c;
    }
    let scale = f64::from_bits(((ki + 1023) as u64) << 52);
    if x < -708.0 {
        0.0
    } else {
        p * scale
    }
}

/// Gauss-Hermite rule for the standard normal: sum_k w_k f(x_k) = E[f(Z)], Z ~ N(0, 1), exact
/// for polynomials of degree < 2N.
#[derive(Clone, Debug)]
pub struct GaussHermite {
    pub nodes: Vec<f64>,
    pub weights: Vec<f64>,
}

impl GaussHermite {
    /// The N-node rule: Golub-Welsch (the eigenvalues of the Jacobi matrix of the orthonormal
    /// Hermite polynomials, off-diagonal sqrt(k)) as starting points, each node then polished
    /// by Newton's method on p_N (p_N' = sqrt(N) p_{N-1}) and weighted by the Christoffel
    /// number 1 / sum_{k<N} p_k(x)^2, so that nodes and weights are accurate to rounding and do
    /// not inherit the eigenvectors' error.
    pub fn new(n: usize) -> GaussHermite {
        assert!(n >= 1, "a rule of no nodes");
        let jacobi = DMatrix::from_fn(n, n, |i, j| {
            if i + 1 == j || j + 1 == i {
                (i.max(j) as f64).sqrt()
            } else {
                0.0
            }
        });
        let mut nodes: Vec<f64> = SymmetricEigen::new(jacobi)
            .eigenvalues
            .iter()
            .copied()
            .collect();
        nodes.sort_by(f64::total_cmp);
        // The rule is symmetric: polish the non-negative half and mirror it.
        let mut weights = vec![0.0; n];
        for k in 0..n {
            let j = n - 1 - k;
            if j < k {
                nodes[k] = -nodes[j];
                weights[k] = weights[j];
                continue;
            }
            let mut x = if j == k { 0.0 } else { nodes[j] };
            for _ in 0..8 {
                let (pn, pn1, _) = orthonormal_hermite(n, x);
                let dx = pn / ((n as f64).sqrt() * pn1);
                x -= dx;
                if dx.abs() < 1e-16 * x.abs().max(1.0) {
                    break;
                }
            }
            let (_, _, sum) = orthonormal_hermite(n, x);
            nodes[j] = x;
            weights[j] = 1.0 / sum;
            if j != k {
                nodes[k] = -x;
                weights[k] = 1.0 / sum;
            }
        }
        GaussHermite { nodes, weights }
    }

    /// The rule of `n` nodes, built once per process for the sizes this module uses.
    pub fn cached(n: usize) -> &'static GaussHermite {
        use std::sync::OnceLock;
        static TANH: OnceLock<GaussHermite> = OnceLock::new();
        static SMOOTH: OnceLock<GaussHermite> = OnceLock::new();
        match n {
            TANH_NODES => TANH.get_or_init(|| GaussHermite::new(n)),
            SMOOTH_NODES => SMOOTH.get_or_init(|| GaussHermite::new(n)),
            _ => Box::leak(Box::new(GaussHermite::new(n))),
        }
    }

    /// E[f(Z)], Z ~ N(0, 1).
    pub fn expectation(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(x, w)| w * f(*x))
            .sum()
    }

    /// E[f(u) f(v)], (u, v) ~ N(0, [[a, c], [c, b]]), through the Cholesky factor
    /// u = sqrt(a) z1, v = (c/sqrt a) z1 + sqrt(b - c^2/a) z2.
    pub fn expectation2(&self, a: f64, b: f64, c: f64, f: impl Fn(f64) -> f64) -> f64 {
        let sa = a.max(0.0).sqrt();
        let (lc, lb) = if sa == 0.0 {
            (0.0, b.max(0.0).sqrt())
        } else {
            (c / sa, (b - c * c / a).max(0.0).sqrt())
        };
        let mut total = 0.0;
        for (x1, w1) in self.nodes.iter().zip(&self.weights) {
            let fu = f(sa * x1);
            let inner: f64 = self
                .nodes
                .iter()
                .zip(&self.weights)
                .map(|(x2, w2)| w2 * f(lc * x1 + lb * x2))
                .sum();
            total += w1 * fu * inner;
        }
        total
    }

    /// [`GaussHermite::expectation2`] with f applied in place to a slice of arguments (f(u)
    /// and the row of f(v) of one node x1 at a time), so that f can be a vectorised function;
    /// the same sums in the same order.
    pub fn expectation2_rows(&self, a: f64, b: f64, c: f64, mut f: impl FnMut(&mut [f64])) -> f64 {
        let sa = a.max(0.0).sqrt();
        let (lc, lb) = if sa == 0.0 {
            (0.0, b.max(0.0).sqrt())
        } else {
            (c / sa, (b - c * c / a).max(0.0).sqrt())
        };
        let mut row = vec![0.0; self.nodes.len() + 1];
        let mut total = 0.0;
        for (x1, w1) in self.nodes.iter().zip(&self.weights) {
            row[0] = sa * x1;
            for (r, x2) in row[1..].iter_mut().zip(&self.nodes) {
                *r = lc * x1 + lb * x2;
            }
            f(&mut row);
            let inner: f64 = self
                .weights
                .iter()
                .zip(&row[1..])
                .map(|(w2, f2)| w2 * f2)
                .sum();
            total += w1 * row[0] * inner;
        }
        total
    }
}

/// (p_N(x), p_{N-1}(x), sum_{k<N} p_k(x)^2) of the Hermite polynomials orthonormal for
/// N(0, 1): p_0 = 1, p_{k+1} = (x p_k - sqrt(k) p_{k-1}) / sqrt(k+1).
fn orthonormal_hermite(n: usize, x: f64) -> (f64, f64, f64) {
    let (mut prev, mut cur) = (0.0, 1.0);
    let mut sum = 0.0;
    for k in 0..n {
        sum += cur * cur;
        let next = (x * cur - (k as f64).sqrt() * prev) / ((k + 1) as f64).sqrt();
        prev = cur;
        cur = next;
    }
    (cur, prev, sum)
}

/// The infinite-width kernel of the network with activation `sigma` on inputs X (n x d):
/// Hinf_ij = c E[sigma'(u) sigma'(v)] (first layer), plus E[sigma(u) sigma(v)] when the output
/// layer is trained too, with c = x_i . x_j, a = |x_i|^2, b = |x_j|^2.
pub fn infinite_width_kernel(
    sigma: Activation,
    xx: &DMatrix<f64>,
    second_layer: bool,
) -> DMatrix<f64> {
    cross_kernel(
        sigma,
        xx,
        xx.diagonal().as_slice(),
        xx.diagonal().as_slice(),
        second_layer,
    )
}

/// The kernel K(x, x') between two sets of inputs from their inner products `xy` (rows: the
/// first set, columns: the second) and squared norms; [`infinite_width_kernel`] is the case of
/// one set. Symmetric inputs give a symmetric matrix bit for bit (each entry is computed once).
pub fn cross_kernel(
    sigma: Activation,
    xy: &DMatrix<f64>,
    left: &[f64],
    right: &[f64],
    second_layer: bool,
) -> DMatrix<f64> {
    use rayon::prelude::*;
    let (rows, cols) = xy.shape();
    let symmetric = rows == cols && left == right && xy == &xy.transpose();
    let entry = |i: usize, j: usize| {
        let (a, b, c) = (left[i], right[j], xy[(i, j)]);
        let mut k = c * sigma.dual_slope(a, b, c);
        if second_layer {
            k += sigma.dual(a, b, c);
        }
        k
    };
    // Columns in parallel: quadrature costs N^2 evaluations an entry.
    let columns: Vec<Vec<f64>> = (0..cols)
        .into_par_iter()
        .map(|j| {
            (0..rows)
                .map(|i| {
                    if symmetric && i > j {
                        f64::NAN
                    } else {
                        entry(i, j)
                    }
                })
                .collect()
        })
        .collect();
    let mut k = DMatrix::from_fn(rows, cols, |i, j| columns[j][i]);
    if symmetric {
        for j in 0..cols {
            for i in j + 1..rows {
                k[(i, j)] = k[(j, i)];
            }
        }
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_nonpositive_is_libm_exp_to_1e15_relative() {
        let mut worst: f64 = 0.0;
        for k in 0..=200_000 {
            let x = -708.0 * f64::from(k) / 200_000.0;
            for x in [x, x * 1e-3, x * 1e-9] {
                let e = x.exp();
                worst = worst.max((exp_nonpositive(x) - e).abs() / e);
            }
        }
        assert!(worst <= 1e-15, "worst relative error {worst:e}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-1e4), 0.0);
    }

    #[test]
    fn gauss_hermite_integrates_the_even_moments_of_the_normal() {
        // E[Z^2k] = (2k-1)!!, exact for 2k < 2N.
        let rule = GaussHermite::new(30);
        let mut double_factorial = 1.0;
        for k in 1..20 {
            double_factorial *= (2 * k - 1) as f64;
            let got = rule.expectation(|x| x.powi(2 * k));
            assert!(
                ((got - double_factorial) / double_factorial).abs() < 1e-12,
                "E[Z^{}] = {got} vs {double_factorial}",
                2 * k
            );
        }
        assert!((rule.expectation(|_| 1.0) - 1.0).abs() < 1e-15);
    }

    #[test]
    fn erf_dual_matches_williams_by_quadrature() {
        let rule = GaussHermite::new(100);
        for &(a, b, c) in &[
            (1.0, 1.0, 0.3),
            (1.0, 1.0, -0.9),
            (0.5, 2.0, 0.7),
            (1.0, 1.0, 1.0),
        ] {
            let q = rule.expectation2(a, b, c, libm::erf);
            let closed = Activation::Erf.dual(a, b, c);
            assert!((q - closed).abs() < 1e-12, "{a} {b} {c}: {q} vs {closed}");
        }
    }
}
