//! Exact solutions in error space with a fixed kernel H, one eigen-mode at a time.
//!
//! With H = V diag(lambda) V^T and c = V^T Delta(0), every mode c_k x_k(t) solves the scalar
//! equation of its optimizer from x(0) = 1, x'(0) = 0:
//! ```text
//! gf : x' = -lambda x                       x = exp(-lambda t)
//! hbf: x'' + b x' + lambda x = 0            x = exp(-b t/2) (C(t) + b/2 S(t)),  x' = -lambda exp(-b t/2) S(t)
//!      q = lambda - b^2/4:  C = cos(sqrt(q) t), S = sin(sqrt(q) t)/sqrt(q)      (under-damped, q > 0)
//!                           C = 1,              S = t                            (critical, q = 0)
//!                           C = cosh(k t),      S = sinh(k t)/k, k = sqrt(-q)    (over-damped, q < 0)
//! nag: x'' + (gamma/t) x' + lambda x = 0    x = phi_nu(sqrt(lambda) t),  nu = (gamma - 1)/2
//!      phi_nu(z) = Gamma(nu+1) (2/z)^nu J_nu(z) = 0F1(; nu+1; -z^2/4),
//!      phi_nu'(z) = -z/(2(nu+1)) phi_{nu+1}(z)
//! ```
//!
//! References:
//! 1. W. Su, S. Boyd, E. Candes, "A differential equation for modeling Nesterov's accelerated
//!    gradient method", NeurIPS 2014 (the Bessel solution for quadratics).
//! 2. M. Abramowitz, I. Stegun, "Handbook of Mathematical Functions", 9.1.10, 9.1.27, 9.2.5.

use nalgebra::{DMatrix, DVector};
use std::sync::Arc;

use crate::dynamics::Damping;
use crate::linalg::matvec;
use crate::theory::spectrum::Spectrum;

/// The whole error-space trajectory Delta(t) = V diag(x_k(t)) V^T Delta(0) (the products
/// with V through [`matvec`]: multithreaded from [`crate::linalg::FAER_FROM`] rows).
///
/// The decomposition is shared ([`Arc`]): a run decomposes its fixed kernel once, and the
/// error space, its check and the kernel predictor of held-out points all read it.
#[derive(Clone, Debug)]
pub struct ExactSolution {
    spectrum: Arc<Spectrum>,
    coefficients: DVector<f64>,
    damping: Damping,
}

impl ExactSolution {
    pub fn new(h: &DMatrix<f64>, delta0: &DVector<f64>, damping: Damping) -> Self {
        Self::from_spectrum(Arc::new(Spectrum::of(h)), delta0, damping)
    }

    /// The solution on an eigen-decomposition of H already at hand.
    pub fn from_spectrum(spectrum: Arc<Spectrum>, delta0: &DVector<f64>, damping: Damping) -> Self {
        let coefficients = spectrum.vectors.tr_mul(delta0);
        ExactSolution {
            spectrum,
            coefficients,
            damping,
        }
    }

    /// The eigen-decomposition of H the solution is built on.
    pub fn spectrum(&self) -> &Spectrum {
        &self.spectrum
    }

    /// (Delta(t), Delta'(t)).
    pub fn at(&self, t: f64) -> (DVector<f64>, DVector<f64>) {
        let n = self.coefficients.len();
        let mut x = DVector::zeros(n);
        let mut v = DVector::zeros(n);
        for k in 0..n {
            let (xk, vk) = mode(self.spectrum.values[k], self.damping, t);
            x[k] = xk * self.coefficients[k];
            v[k] = vk * self.coefficients[k];
        }
        let vectors = &self.spectrum.vectors;
        (matvec(vectors, &x), matvec(vectors, &v))
    }

    /// Delta(t) alone (one product with V instead of two): bit for bit the first of [`Self::at`].
    pub fn delta_at(&self, t: f64) -> DVector<f64> {
        let n = self.coefficients.len();
        let mut x = DVector::zeros(n);
        for k in 0..n {
            x[k] = mode(self.spectrum.values[k], self.damping, t).0 * self.coefficients[k];
        }
        matvec(&self.spectrum.vectors, &x)
    }
}

/// issue 20: error space with at least this many points solves exactly on a Krylov space of
/// its kernel ([`krylov_spectrum`]) instead of H's full eigen-decomposition, unless something
/// else needs the eigenvectors (the kernel predictor of held-out points). Below it (every
/// default run) the decomposition stays, bit for bit what it was.
pub const KRYLOV_FROM: usize = 1000;

/// A Krylov solution is accepted when, at every output time, Delta(t) and Delta'(t) moved by
/// at most this share of their size between two checks at least [`KRYLOV_CHECK_EVERY`]
/// Lanczos steps apart.
pub const KRYLOV_TOLERANCE: f64 = 1e-13;

/// The fewest Lanczos steps between two checks of a Krylov solution (then an eighth of the
/// steps so far: the check's eigen-decomposition of T_k costs k^3).
pub const KRYLOV_CHECK_EVERY: usize = 8;

/// The modes of an exact solution: for an eigenvalue lambda, (x(t), x'(t)) at each of the
/// (ascending) times, x from x = 1 (and x' = 0 for second-order flows) at the start.
pub type Modes<'a> = dyn Fn(f64, &[f64]) -> Vec<(f64, f64)> + 'a;

/// The modes of [`ExactSolution`] for `damping` ([`mode`]).
pub fn modes_of(damping: Damping) -> impl Fn(f64, &[f64]) -> Vec<(f64, f64)> {
    move |lambda, times| times.iter().map(|&t| mode(lambda, damping, t)).collect()
}

/// Ritz pairs of H on which the exact solution from `delta0` is converged at `times`: every
/// exact solution is Delta(t) = f_t(H) Delta(0) (and Delta'(t) = g_t(H) Delta(0)) for the
/// mode functions f_t, g_t of `modes`, and on the Krylov space K_k(H, Delta(0)) (Lanczos with
/// full reorthogonalization, [`crate::linalg::Krylov`]) that is
/// ```text
/// Delta(t) ~ |Delta(0)| Q_k f_t(T_k) e_1 = Y diag(f_t(theta)) Y^T Delta(0),   Y = Q_k S,  T_k = S diag(theta) S^T
/// ```
/// (Saad 1992; Hochbruck and Lubich 1997): the Ritz pairs (theta, Y) returned as a
/// [`Spectrum`] of k columns serve [`ExactSolution`] and its kin as H's eigenpairs would.
/// f_t(H) Delta(0) is exact for polynomials f_t of degree below k, so k grows with how far
/// f_t is from one: about sqrt(lambda_max t) for gradient flow's exp(-lambda t), about
/// sqrt(lambda_max) t for the oscillating modes of the second-order flows.
///
/// The stop is a posteriori: every [`KRYLOV_CHECK_EVERY`] steps (then every eighth of the
/// steps so far) T_k is decomposed and Delta(t), Delta'(t) are formed in the basis Q_k at
/// every output time; they are accepted when each moved by at most [`KRYLOV_TOLERANCE`] of
/// its size since the last check (the convergence is faster than geometric once k passes
/// the degree f_t needs, so the older of the two is already within about that, the newer
/// far closer), or by at most twice its rounding floor, what moving every Ritz value by one
/// ulp of |T_k| moves it (T_k's entries carry that rounding: gradient flow's Delta(t)
/// then moves by about t eps lambda_max relative, 1.3e-13 at n = 2000, T = 20), or at once
/// when K_k is invariant. Each step costs one product H q (2 n^2 flops) and the
/// reorthogonalization (4 n k), against about 9 n^3 flops for the full decomposition with
/// vectors.
///
/// Accuracy, measured on the error-space benchmark's H(0) (d = 20, m = 1000, T = 20, 21
/// times) against the full decomposition: at n = 2000 (k = 81, 102, 64 steps) Delta(t)
/// within 2.6e-13 (gf), 7.9e-13 (hbf), 4.5e-13 (nag); at n = 5000 (k = 81, 114, 72)
/// within 1.0e-12, 3.0e-12, 2.9e-12. The Lanczos recurrence itself is the larger share of
/// that: the decomposition of H and of H with its rows permuted agree to 4e-14 to 1.2e-13
/// at n = 2000, two Krylov solutions (H and permuted H) to 4e-13 to 1e-12; a compensated
/// product H q (Ogita, Rump and Oishi's Dot2) brought gf's to 5.6e-14, hbf's and nag's to
/// 4.6e-13 and 2.8e-13.
///
/// Returns the Ritz pairs (values ascending) and k, or None when Delta(0) = 0 or is not
/// finite, or after `max_steps` steps without convergence (the caller then decomposes H).
/// The Ritz values are not H's extreme eigenvalues: only f_t(H) Delta(0) is resolved.
pub fn krylov_spectrum(
    h: &DMatrix<f64>,
    delta0: &DVector<f64>,
    times: &[f64],
    modes: &Modes<'_>,
    max_steps: usize,
) -> Option<(Spectrum, usize)> {
    use crate::linalg::{Krylov, KrylovState};
    let mut krylov = Krylov::new(h, delta0.as_slice());
    // Delta(t) and Delta'(t) in the basis Q_k at the last check, one column per time.
    let mut last: Option<(DMatrix<f64>, DMatrix<f64>)> = None;
    let mut checked = 0;
    loop {
        let state = krylov.grow();
        let k = krylov.dimension();
        if state == KrylovState::Failed {
            return None;
        }
        let invariant = state == KrylovState::Invariant;
        if invariant || k >= checked + KRYLOV_CHECK_EVERY.max(checked / 8) || k >= max_steps {
            checked = k;
            let (values, s) = crate::linalg::symmetric_eigen(&krylov.tridiagonal());
            if values.iter().any(|v| !v.is_finite()) {
                return None;
            }
            let norm = krylov.start_norm();
            // Column i: S diag(x(theta, t_i)) S^T e_1 |Delta(0)|, and the same with x'.
            let in_basis = |shift: f64| {
                let states: Vec<Vec<(f64, f64)>> =
                    values.iter().map(|&l| modes(l + shift, times)).collect();
                let weighted = |which: fn(&(f64, f64)) -> f64| {
                    let m = DMatrix::from_fn(k, times.len(), |j, i| {
                        which(&states[j][i]) * s[(0, j)] * norm
                    });
                    &s * m
                };
                (weighted(|p| p.0), weighted(|p| p.1))
            };
            let (x, v) = in_basis(0.0);
            // The rounding floor: what moving every Ritz value by one ulp of |T_k| does (the
            // eigen-solver's own error, and a full decomposition's: about t eps lambda_max
            // relative for gradient flow), twice.
            let ulp = f64::EPSILON * values.iter().fold(0.0f64, |a, b| a.max(b.abs()));
            let (xs, vs) = in_basis(ulp);
            let converged = invariant
                || last.as_ref().is_some_and(|(x0, v0)| {
                    settled(&x, x0, &xs, KRYLOV_TOLERANCE) && settled(&v, v0, &vs, KRYLOV_TOLERANCE)
                });
            if converged {
                let vectors = krylov.lift(&s);
                return Some((Spectrum { values, vectors }, k));
            }
            if k >= max_steps {
                return None;
            }
            last = Some((x, v));
        }
    }
}

/// Whether every column of `now` (k rows) is within `tolerance` of its size, or within twice
/// its rounding floor (the distance to the same column of `shifted`), of that column of
/// `before` (fewer rows, the missing ones zero: the older, smaller basis).
fn settled(
    now: &DMatrix<f64>,
    before: &DMatrix<f64>,
    shifted: &DMatrix<f64>,
    tolerance: f64,
) -> bool {
    (0..now.ncols()).all(|i| {
        let (mut change, mut size, mut floor) = (0.0, 0.0, 0.0);
        for r in 0..now.nrows() {
            let a = now[(r, i)];
            let b = if r < before.nrows() {
                before[(r, i)]
            } else {
                0.0
            };
            change += (a - b) * (a - b);
            size += a * a;
            floor += (shifted[(r, i)] - a) * (shifted[(r, i)] - a);
        }
        change.sqrt() <= (tolerance * size.sqrt()).max(2.0 * floor.sqrt())
    })
}

/// One mode from x(0) = 1, x'(0) = 0: returns (x(t), x'(t)). Eigenvalues below zero (rounding
/// of a singular H) are taken as zero.
pub fn mode(lambda: f64, damping: Damping, t: f64) -> (f64, f64) {
    let lambda = lambda.max(0.0);
    match damping {
        Damping::None => {
            let e = (-lambda * t).exp();
            (e, -lambda * e)
        }
        Damping::Constant(b) => damped_oscillator(lambda, b, t),
        Damping::Vanishing(gamma) => {
            let nu = (gamma - 1.0) / 2.0;
            let s = lambda.sqrt();
            let z = s * t;
            (phi(nu, z), -s * z / (2.0 * (nu + 1.0)) * phi(nu + 1.0, z))
        }
    }
}

/// x'' + b x' + lambda x = 0, x(0) = 1, x'(0) = 0, in all three regimes.
fn damped_oscillator(lambda: f64, b: f64, t: f64) -> (f64, f64) {
    let q = lambda - b * b / 4.0;
    let decay = (-b * t / 2.0).exp();
    if q > 0.0 {
        let w = q.sqrt();
        let (c, s) = ((w * t).cos(), (w * t).sin() / w);
        (decay * (c + b / 2.0 * s), -lambda * decay * s)
    } else if q == 0.0 {
        (decay * (1.0 + b / 2.0 * t), -lambda * decay * t)
    } else {
        let k = (-q).sqrt();
        // e^{-bt/2} cosh(kt) and e^{-bt/2} sinh(kt)/k without overflow of cosh at large kt.
        let (ec, es) = if k * t < 1.0 {
            (decay * (k * t).cosh(), decay * (k * t).sinh() / k)
        } else {
            let up = ((k - b / 2.0) * t).exp();
            let down = ((-k - b / 2.0) * t).exp();
            ((up + down) / 2.0, (up - down) / (2.0 * k))
        };
        (ec + b / 2.0 * es, -lambda * es)
    }
}

/// phi_nu(z) = Gamma(nu+1) (2/z)^nu J_nu(z), the NAG mode, with phi_nu(0) = 1, for nu > -1
/// (gamma = 2 nu + 1 > 0; below zero the order of the series' denominators nu + k turns
/// negative and phi is no longer the solution regular at t = 0).
pub fn phi(nu: f64, z: f64) -> f64 {
    if z < 4.0 {
        // 0F1(; nu+1; -z^2/4): terms fall from the start, no cancellation for z < 4.
        let q = -z * z / 4.0;
        let (mut term, mut sum) = (1.0, 1.0);
        for k in 1..200 {
            term *= q / (k as f64 * (nu + k as f64));
            sum += term;
            if term.abs() < 1e-17 * sum.abs() {
                break;
            }
        }
        sum
    } else {
        let scale = if nu < 100.0 {
            // Gamma directly: puruspe's ln_gamma(1) is 5.2e-12, not 0, a jump at z = 4.
            puruspe::gamma(nu + 1.0) * (2.0 / z).powf(nu)
        } else {
            (puruspe::ln_gamma(nu + 1.0) + nu * (2.0 / z).ln()).exp()
        };
        scale * bessel_j(nu, z)
    }
}

/// Bessel function of the first kind J_nu(z) for nu > -1, z > 0.
///
/// A negative order (NAG with gamma in (0, 1) has nu = (gamma - 1)/2 in (-1/2, 0)) goes through
/// the reflection J_{-a}(z) = cos(a pi) J_a(z) - sin(a pi) Y_a(z) (A&S 9.1.2), with a = -nu
/// in (0, 1): puruspe's `Jnu_Ynu` takes only orders >= 0 (it panics on a negative one).
/// Hankel's expansion holds for any real order, so large z needs no reflection; for these
/// small orders (|nu| < 1/2, mu = 4 nu^2 < 1) its eighth term is below 1e-17 from z = 100,
/// where puruspe's error grows with z (measured at order 1/2 against the closed forms:
/// J and Y within 5e-14 at z = 100, 7e-13 at 1000, 2e-10 at 5000), so they switch there.
pub fn bessel_j(nu: f64, z: f64) -> f64 {
    let hankel_from = if nu < 0.0 { 100.0 } else { 5000.0 };
    if z > hankel_from {
        hankel_asymptotic(nu, z)
    } else if nu < 0.0 {
        let a = -nu;
        let (j, y) = puruspe::Jnu_Ynu(a, z);
        let (s, c) = (a * std::f64::consts::PI).sin_cos();
        c * j - s * y
    } else {
        puruspe::Jnu_Ynu(nu, z).0
    }
}

/// Hankel's expansion (A&S 9.2.5) with terms up to (1/z)^6: relative error below 1e-16 for
/// z > 5000 at the orders used here (nu < 20).
fn hankel_asymptotic(nu: f64, z: f64) -> f64 {
    let mu = 4.0 * nu * nu;
    let (mut p, mut q) = (0.0, 0.0);
    let mut term = 1.0;
    for k in 0..8 {
        if k > 0 {
            let odd = (2 * k - 1) as f64;
            term *= (mu - odd * odd) / (k as f64 * 8.0 * z);
        }
        match k % 4 {
            0 => p += term,
            1 => q += term,
            2 => p -= term,
            _ => q -= term,
        }
    }
    let chi = z - (nu / 2.0 + 0.25) * std::f64::consts::PI;
    (2.0 / (std::f64::consts::PI * z)).sqrt() * (p * chi.cos() - q * chi.sin())
}
