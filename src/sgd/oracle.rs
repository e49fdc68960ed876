//! The exact error-space oracle of SGD: its second moment, E\[L_k], and the mean-square
//! stability edge eta_crit(B).
//!
//! ```text
//! Delta_{k+1} = A Delta_k - eta H e_k,  A = I - eta H,  E[e_k | Delta_k] = 0,
//! E[e_k e_k^T | Delta_k] = M(Delta_k) = c_B (n diag(Delta_k)^2 - Delta_k Delta_k^T)
//! C_{k+1} = A C_k A + eta^2 c_B H (n Diag(C_k) - C_k) H =: T(C_k),  E\[L_k] = 1/2 tr C_k
//! ```
//! (e_k = (w_k - 1) o Delta_k is the batch's error; M is linear in Delta Delta^T, so the
//! recursion closes on C = E[Delta Delta^T].) The same recursion with dt for eta in A and
//! eta dt for eta^2 is the second moment of Euler-Maruyama on the SDE with step dt; as
//! dt -> 0 it becomes dC/dt = -H C - C H + eta c_B H (n Diag(C) - C) H, the SDE's own
//! ([`Moments::flow`]).
//!
//! Everything runs in H's eigenbasis, H = V diag(lambda) V^T, C~ = V^T C V: A is diagonal
//! there, and Diag(C) costs two n^3 products (c_i = (V C~ V^T)_ii, N = V^T diag(c) V):
//! ```text
//! C~+_ab = (1 - dt l_a)(1 - dt l_b) C~_ab + q l_a l_b (n N_ab - C~_ab),  q = eta dt c_B
//! ```
//!
//! **Mean-square stability edge.** T maps positive semidefinite matrices to positive
//! semidefinite ones (n Diag(C) - C is n times a covariance for C = v v^T, and sums keep
//! that), so by Krein-Rutman rho(T) is an eigenvalue with a PSD eigenvector, and
//! rho(T) < 1 iff X - T(X) = I has a positive definite solution X (then
//! T(X) = X - I <= (1 - 1/lambda_max(X)) X, and T^k(X) -> 0; conversely X = sum_k T^k(I)).
//! In the eigenbasis T = diag(d_ab) + q' U(c(.)) with d_ab = (1 - eta l_a)(1 - eta l_b) -
//! eta^2 c_B l_a l_b and q' = eta^2 c_B n: the rank-n term gives, by the Woodbury identity,
//! ```text
//! (I - q' K) c = r,   K_ji = sum_ab V_ja V_jb V_ia V_ib l_a l_b / (1 - d_ab),
//! r_j = sum_a V_ja^2 / (1 - d_aa),   X~_ab = (delta_ab + q' l_a l_b (V^T diag(c) V)_ab) / (1 - d_ab)
//! ```
//! an n x n solve after an O(n^4) product, where the n(n+1)/2 x n(n+1)/2 matrix of T would
//! cost O(n^6). Since n H diag(v v^T) H >= (H v)(H v)^T (Cauchy-Schwarz), T(v v^T) >=
//! (1 - eta l)^2 v v^T for an eigenvector v, so eta_crit <= 2/lambda_max; and d_ab <=
//! (d_aa + d_bb)/2 <= max((1 - eta l)^2) for c_B <= 1, so a d_ab >= 1 already means unstable.
//! The edge is bisected between the last stable and the first unstable of 16 steps up to
//! 2/lambda_max. Modes of H with lambda <= 1e-12 lambda_max are left out: there T is the
//! identity (rho = 1 at any eta) and feeds nothing into the others' growth, so the edge is
//! that of the range of H. For H = lambda I it is eta_crit = 2/(lambda (1 + c_B (n - 1)))
//! (2B/(n lambda) without replacement), which the tests check.
//!
//! Reference: L. Wu, C. Ma, W. E, "How SGD selects the global minima in over-parameterized
//! learning: a dynamical stability perspective", NeurIPS 2018 (linear stability of SGD in
//! the mean-square sense).

use nalgebra::{DMatrix, DVector};

use super::{Path, Process, Recording, Space};
use crate::theory::spectrum::Spectrum;

/// M = c_B (n diag(Delta)^2 - Delta Delta^T): the covariance of the batch's weighting of the
/// residual, (w - 1) o Delta.
pub fn noise_matrix(delta: &DVector<f64>, c_b: f64) -> DMatrix<f64> {
    let n = delta.len() as f64;
    let mut m = -(delta * delta.transpose());
    for i in 0..delta.len() {
        m[(i, i)] += n * delta[i] * delta[i];
    }
    m * c_b
}

/// Modes of H below this share of lambda_max are taken as its null space.
const NULL_SHARE: f64 = 1e-12;

/// The second moment C = E[Delta Delta^T] in H's eigenbasis.
#[derive(Clone, Debug)]
pub struct Moments {
    lambda: DVector<f64>,
    vectors: DMatrix<f64>,
    /// C~ = V^T C V.
    c: DMatrix<f64>,
}

impl Moments {
    /// C_0 = Delta0 Delta0^T.
    pub fn new(h: &DMatrix<f64>, delta0: &DVector<f64>) -> Moments {
        let s = Spectrum::of(h);
        let z = s.vectors.tr_mul(delta0);
        Moments {
            lambda: s.values.map(|l| l.max(0.0)),
            c: &z * z.transpose(),
            vectors: s.vectors,
        }
    }

    /// E\[L] = 1/2 tr C.
    pub fn loss(&self) -> f64 {
        0.5 * self.c.trace()
    }

    /// C in the original basis.
    pub fn covariance(&self) -> DMatrix<f64> {
        &self.vectors * &self.c * self.vectors.transpose()
    }

    /// N = V^T diag(c) V with c_i = (V C~ V^T)_ii = (Diag(C))_ii, for `c` in the eigenbasis.
    fn diagonal_term(&self, c: &DMatrix<f64>) -> DMatrix<f64> {
        let y = &self.vectors * c;
        let diag = y.component_mul(&self.vectors).column_sum();
        let mut scaled = self.vectors.clone();
        for (mut row, d) in scaled.row_iter_mut().zip(diag.iter()) {
            row *= *d;
        }
        self.vectors.tr_mul(&scaled)
    }

    /// One step C+ = (I - dt H) C (I - dt H) + q H (n Diag(C) - C) H: SGD with dt = eta and
    /// q = eta^2 c_B; Euler-Maruyama on the SDE with q = eta dt c_B.
    pub fn step(&mut self, dt: f64, q: f64) {
        let n = self.lambda.len() as f64;
        let big_n = self.diagonal_term(&self.c);
        let l = &self.lambda;
        self.c = DMatrix::from_fn(l.len(), l.len(), |a, b| {
            let (la, lb) = (l[a], l[b]);
            (1.0 - dt * la) * (1.0 - dt * lb) * self.c[(a, b)]
                + q * la * lb * (n * big_n[(a, b)] - self.c[(a, b)])
        });
    }

    /// dC/dt of the SDE, -H C - C H + eta c_B H (n Diag(C) - C) H, at `c` (eigenbasis).
    fn derivative(&self, c: &DMatrix<f64>, noise: f64) -> DMatrix<f64> {
        let n = self.lambda.len() as f64;
        let big_n = self.diagonal_term(c);
        let l = &self.lambda;
        DMatrix::from_fn(l.len(), l.len(), |a, b| {
            let (la, lb) = (l[a], l[b]);
            -(la + lb) * c[(a, b)] + noise * la * lb * (n * big_n[(a, b)] - c[(a, b)])
        })
    }

    /// The SDE's second moment over time `t` (eta c_B = `noise`), by `steps` steps of
    /// classical Runge-Kutta (the equation is linear: fourth order in t/steps).
    pub fn flow(&mut self, t: f64, noise: f64, steps: usize) {
        let h = t / steps as f64;
        for _ in 0..steps {
            let k1 = self.derivative(&self.c, noise);
            let k2 = self.derivative(&(&self.c + &k1 * (h / 2.0)), noise);
            let k3 = self.derivative(&(&self.c + &k2 * (h / 2.0)), noise);
            let k4 = self.derivative(&(&self.c + &k3 * h), noise);
            self.c += (k1 + k2 * 2.0 + k3 * 2.0 + k4) * (h / 6.0);
        }
    }
}

/// E\[L_k] of SGD in error space at `rec`'s iterates (process `exact`).
pub fn expected_loss(
    h: &DMatrix<f64>,
    delta0: &DVector<f64>,
    eta: f64,
    c_b: f64,
    rec: Recording,
) -> Path {
    let mut moments = Moments::new(h, delta0);
    Path::record(Process::Exact, Space::Error, None, eta, rec, |k| {
        if k > 0 {
            moments.step(eta, eta * eta * c_b);
        }
        moments.loss()
    })
}

/// T(X) = A X A + eta^2 c_B H (n Diag(X) - X) H in the original basis (the tests' power
/// iteration).
pub fn second_moment_map(h: &DMatrix<f64>, x: &DMatrix<f64>, eta: f64, c_b: f64) -> DMatrix<f64> {
    let n = h.nrows();
    let a = DMatrix::identity(n, n) - h * eta;
    let mut s = -x.clone();
    for i in 0..n {
        s[(i, i)] += n as f64 * x[(i, i)];
    }
    &a * x * &a + h * s * h * (eta * eta * c_b)
}

/// rho(T) by power iteration from I: rho ~ tr T(X)/tr X (tr is positive on the PSD cone,
/// which T keeps).
pub fn spectral_radius(h: &DMatrix<f64>, eta: f64, c_b: f64, iterations: usize) -> f64 {
    let n = h.nrows();
    let mut x = DMatrix::identity(n, n) / n as f64;
    let mut rho = f64::NAN;
    for _ in 0..iterations {
        let y = second_moment_map(h, &x, eta, c_b);
        let tr = y.trace();
        rho = tr / x.trace();
        x = y / tr;
    }
    rho
}

/// The eigen-modes the stability edge is decided on: H's range (lambda > 1e-12 lambda_max).
#[derive(Clone, Debug)]
pub struct Edge {
    lambda: Vec<f64>,
    /// n x r: the eigenvectors of the range.
    vectors: DMatrix<f64>,
    lambda_max: f64,
}

impl Edge {
    pub fn new(h: &DMatrix<f64>) -> Edge {
        let s = Spectrum::of(h);
        let lambda_max = s.values.iter().copied().fold(0.0, f64::max);
        let keep: Vec<usize> = (0..s.values.len())
            .filter(|&k| s.values[k] > NULL_SHARE * lambda_max)
            .collect();
        let vectors = DMatrix::from_fn(h.nrows(), keep.len(), |i, k| s.vectors[(i, keep[k])]);
        Edge {
            lambda: keep.iter().map(|&k| s.values[k]).collect(),
            vectors,
            lambda_max,
        }
    }

    /// Whether SGD's second moment decays at step eta (rho(T) < 1), by the resolvent test
    /// of the module doc.
    pub fn stable(&self, eta: f64, c_b: f64) -> bool {
        let (n, r) = (self.vectors.nrows(), self.lambda.len());
        if r == 0 {
            return true;
        }
        let l = &self.lambda;
        let one_minus_d = DMatrix::from_fn(r, r, |a, b| {
            1.0 - ((1.0 - eta * l[a]) * (1.0 - eta * l[b]) - eta * eta * c_b * l[a] * l[b])
        });
        if !one_minus_d.iter().all(|v| v.is_finite() && *v > 0.0) {
            return false;
        }
        let q = eta * eta * c_b * n as f64;
        let v = &self.vectors;
        // K = sum_a U_a diag(g_a.) U_a^T, U_a's column b = V_.a o V_.b, g_ab = l_a l_b/(1-d_ab).
        let mut k = DMatrix::zeros(n, n);
        let mut ua = DMatrix::zeros(n, r);
        let mut scaled = DMatrix::zeros(n, r);
        for a in 0..r {
            for b in 0..r {
                let g = l[a] * l[b] / one_minus_d[(a, b)];
                for j in 0..n {
                    let u = v[(j, a)] * v[(j, b)];
                    ua[(j, b)] = u;
                    scaled[(j, b)] = u * g;
                }
            }
            k.gemm(1.0, &ua, &scaled.transpose(), 1.0);
        }
        let rhs = DVector::from_fn(n, |j, _| {
            (0..r)
                .map(|a| v[(j, a)] * v[(j, a)] / one_minus_d[(a, a)])
                .sum()
        });
        let system = DMatrix::identity(n, n) - k * q;
        let Some(c) = system.lu().solve(&rhs) else {
            return false;
        };
        if c.iter().any(|x| !x.is_finite()) {
            return false;
        }
        let mut vc = v.clone();
        for (mut row, ci) in vc.row_iter_mut().zip(c.iter()) {
            row *= *ci;
        }
        let big_n = v.tr_mul(&vc);
        let x = DMatrix::from_fn(r, r, |a, b| {
            let delta = if a == b { 1.0 } else { 0.0 };
            (delta + q * l[a] * l[b] * big_n[(a, b)]) / one_minus_d[(a, b)]
        });
        let x = (&x + x.transpose()) * 0.5;
        x.iter().all(|v| v.is_finite()) && x.cholesky().is_some()
    }

    /// GD's edge 2/lambda_max.
    pub fn gd_edge(&self) -> f64 {
        2.0 / self.lambda_max
    }

    /// eta_crit(c_B): the smallest eta at which rho(T) reaches 1, to about 1e-12 relative.
    pub fn edge(&self, c_b: f64) -> f64 {
        let top = self.gd_edge();
        if !top.is_finite() {
            return f64::INFINITY;
        }
        const GRID: usize = 16;
        let mut lo = 0.0;
        let mut hi = top;
        for j in 1..=GRID {
            let eta = top * j as f64 / GRID as f64;
            if self.stable(eta, c_b) {
                lo = eta;
            } else {
                hi = eta;
                break;
            }
        }
        while hi - lo > 1e-13 * hi {
            let mid = 0.5 * (lo + hi);
            if self.stable(mid, c_b) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}

/// eta_crit(B) of SGD with the fixed kernel H and c_B.
pub fn stability_edge(h: &DMatrix<f64>, c_b: f64) -> f64 {
    Edge::new(h).edge(c_b)
}
