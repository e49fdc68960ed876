//! The modified gradient flow: gradient flow with a first correction in the step size,
//!
//! ```text
//! weight space: W' = -J^T (I + kappa H) Delta          (H = J J^T, Delta = u - y)
//! error space : Delta' = -(H + kappa H^2) Delta        (H fixed)
//! per mode    : x(t) = exp(-(lambda + kappa lambda^2) t), x(0) = 1
//! ```
//! for any kappa >= 0 (kappa = 0 is gradient flow). With the output layer fixed, u is
//! piecewise linear in W, so Hess L = J^T J off the kinks and the right-hand side is
//! -grad(L + (kappa/2) |grad L|^2): the flow a discrete method follows to second order in its
//! step. Two such methods:
//! - gradient descent with step eta: kappa = eta/2, the implicit gradient regularization flow
//!   (Barrett and Dherin 2021);
//! - heavy ball / NAG with a fixed momentum B on the clock t = k eta/(1 - B): kappa = k_B eta
//!   with k_B = (1+B)/(2(1-B)^2) (heavy ball) or (1-B+2B^2)/(2(1-B)^2) (NAG), valid per mode
//!   while eta lambda < (1 - sqrt B)^2 (Kovachki and Stuart 2021).
//!
//! Weight space never forms an n x n or md x md matrix: with g = J^T Delta = grad L,
//! J^T (I + kappa H) Delta = g + kappa J^T (J g), one product J g and one J^T beta more than
//! gradient flow per evaluation. [`ModifiedWeightSpace`] is a [`Space`]: the dense flow
//! ([`crate::dynamics::Flow`] with [`crate::dynamics::Damping::None`]) integrates it with any
//! solver, and its activation pattern is held and blended over steps exactly as
//! [`crate::dynamics::WeightSpace`]'s is (so the held-step driver
//! [`crate::integrate::integrate_held`] crosses ReLU kinks as it does for gradient flow).
//! [`ModifiedErrorSpace`] is its error space, and [`ModifiedExact`] that space's exact
//! solution, mode by mode.
//!
//! For a smooth activation the same right-hand side is the Gauss-Newton form of the correction:
//! the exact -grad(L + (kappa/2)|grad L|^2) would add kappa sum_i Delta_i Hess u_i grad L,
//! which the formula above leaves out.
//!
//! Usage (gradient descent's IGR flow, eta = 0.1):
//! ```text
//! let space = ModifiedWeightSpace::new(&model, 0.05);
//! let flow = Flow::new(&space, Damping::None);          // integrate / integrate_held
//! let error = ModifiedErrorSpace::new(h.clone(), 0.05); // Flow::new(&error, Damping::None)
//! let exact = ModifiedExact::new(&h, &delta0, 0.05);    // exact.at(t)
//! ```
//!
//! References:
//! 1. D. Barrett, B. Dherin, "Implicit gradient regularization", ICLR 2021 (arXiv:2009.11162).
//! 2. N. Kovachki, A. Stuart, "Continuous time analysis of momentum methods", JMLR 2021.
//! 3. B. Shi, S. S. Du, M. I. Jordan, W. J. Su, "Understanding the acceleration phenomenon via
//!    high-resolution differential equations", Math. Programming 2021 (arXiv:1810.08907).

use std::cell::RefCell;

use nalgebra::{DMatrix, DMatrixViewMut, DVector};

use super::spaces::{blend, hold, Snapshot, Space, WeightSpace};
use crate::linalg::symmetric_eigen;
use crate::model::relu2::{engine::Workspace, pattern::Pattern};
use crate::model::Model;

/// One mode of the modified flow from x(0) = 1: (x(t), x'(t)) with
/// x = exp(-(lambda + kappa lambda^2) t). Eigenvalues below zero (rounding of a singular H)
/// are taken as zero, as in [`crate::theory::exact::mode`].
pub fn mode(lambda: f64, kappa: f64, t: f64) -> (f64, f64) {
    let rate = rate(lambda, kappa);
    let x = (-rate * t).exp();
    (x, -rate * x)
}

/// The decay rate lambda + kappa lambda^2 of a mode (lambda clamped at zero).
pub fn rate(lambda: f64, kappa: f64) -> f64 {
    let lambda = lambda.max(0.0);
    lambda + kappa * lambda * lambda
}

/// Error space of the modified flow with a fixed kernel: Delta' = -(H + kappa H^2) Delta.
/// Its pseudo-loss (in snapshots) is gradient flow's, 1/2 Delta^T H Delta.
#[derive(Clone, Debug)]
pub struct ModifiedErrorSpace {
    h: DMatrix<f64>,
    kappa: f64,
    /// H + kappa H^2, formed once.
    generator: DMatrix<f64>,
}

impl ModifiedErrorSpace {
    /// The space of kernel `h` with correction `kappa` (>= 0).
    pub fn new(h: DMatrix<f64>, kappa: f64) -> Self {
        let generator = &h + (&h * &h) * kappa;
        ModifiedErrorSpace {
            h,
            kappa,
            generator,
        }
    }

    /// The fixed kernel H.
    pub fn kernel(&self) -> &DMatrix<f64> {
        &self.h
    }

    /// kappa.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }
}

impl Space for ModifiedErrorSpace {
    fn dim(&self) -> usize {
        self.h.nrows()
    }
    /// (H + kappa H^2) Delta.
    fn gradient(&self, x: &[f64], g: &mut [f64]) {
        let n = self.dim();
        let xv = nalgebra::DVectorView::from_slice(x, n);
        let mut gv = nalgebra::DVectorViewMut::from_slice(g, n);
        gv.gemv(1.0, &self.generator, &xv, 0.0);
    }
    fn snapshot(&self, x: &[f64], v: &[f64]) -> Snapshot {
        let delta = DVector::from_column_slice(x);
        let pseudo_loss = 0.5 * delta.dot(&(&self.h * &delta));
        Snapshot {
            delta,
            delta_dot: DVector::from_column_slice(v),
            pseudo_loss,
            gram: None,
            pattern: None,
        }
    }
}

/// The exact solution of [`ModifiedErrorSpace`]: Delta(t) = V diag(x_k(t)) V^T Delta(0) with
/// x_k = exp(-(lambda_k + kappa lambda_k^2) t), H = V diag(lambda) V^T.
#[derive(Clone, Debug)]
pub struct ModifiedExact {
    values: DVector<f64>,
    vectors: DMatrix<f64>,
    coefficients: DVector<f64>,
    kappa: f64,
}

impl ModifiedExact {
    /// Decomposes H ([`crate::linalg::symmetric_eigen`]).
    pub fn new(h: &DMatrix<f64>, delta0: &DVector<f64>, kappa: f64) -> Self {
        let (values, vectors) = symmetric_eigen(h);
        Self::from_eigen(values, vectors, delta0, kappa)
    }

    /// The solution on an eigen-decomposition of H already at hand (eigenvalues `values`,
    /// orthonormal eigenvectors the columns of `vectors`; a
    /// `crate::theory::spectrum::Spectrum`'s two fields).
    pub fn from_eigen(
        values: DVector<f64>,
        vectors: DMatrix<f64>,
        delta0: &DVector<f64>,
        kappa: f64,
    ) -> Self {
        let coefficients = vectors.tr_mul(delta0);
        ModifiedExact {
            values,
            vectors,
            coefficients,
            kappa,
        }
    }

    /// kappa.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }

    /// (Delta(t), Delta'(t)).
    pub fn at(&self, t: f64) -> (DVector<f64>, DVector<f64>) {
        let n = self.coefficients.len();
        let mut x = DVector::zeros(n);
        let mut v = DVector::zeros(n);
        for k in 0..n {
            let (xk, vk) = mode(self.values[k], self.kappa, t);
            x[k] = xk * self.coefficients[k];
            v[k] = vk * self.coefficients[k];
        }
        (&self.vectors * x, &self.vectors * v)
    }

    /// Delta(t) alone (one product with V).
    pub fn delta_at(&self, t: f64) -> DVector<f64> {
        let n = self.coefficients.len();
        let x = DVector::from_fn(n, |k, _| {
            mode(self.values[k], self.kappa, t).0 * self.coefficients[k]
        });
        &self.vectors * x
    }
}

/// Weight space of the modified flow: x = W flattened column-major (m x d), and the space's
/// "gradient" (what [`crate::dynamics::Flow`] negates) is J^T (I + kappa H) Delta =
/// g + kappa J^T (J g), g = grad L. Snapshots are [`WeightSpace`]'s: with the first-order
/// flow's velocity they give Delta' = -(H + kappa H^2) Delta.
#[derive(Debug)]
pub struct ModifiedWeightSpace<'a> {
    model: &'a Model,
    kappa: f64,
    /// Snapshots (Delta, Delta', H(t), pattern) are gradient flow's weight space's.
    plain: WeightSpace<'a>,
    scratch: RefCell<Scratch>,
    /// The held activation pattern, if any (ReLU only).
    held: RefCell<Option<Pattern>>,
}

/// Buffers reused by every evaluation.
#[derive(Debug)]
struct Scratch {
    ws: Workspace,
    /// J g (n).
    jg: Vec<f64>,
    /// kappa J^T (J g) (m x d).
    correction: DMatrix<f64>,
    signs: Vec<u8>,
    changed: Vec<(usize, usize)>,
}

impl<'a> ModifiedWeightSpace<'a> {
    /// The modified flow of `model` with correction `kappa` (>= 0).
    pub fn new(model: &'a Model, kappa: f64) -> Self {
        ModifiedWeightSpace {
            model,
            kappa,
            plain: WeightSpace::new(model),
            scratch: RefCell::new(Scratch {
                ws: Workspace::new(model.m(), model.n(), model.d()),
                jg: vec![0.0; model.n()],
                correction: DMatrix::zeros(model.m(), model.d()),
                signs: Vec::new(),
                changed: Vec::new(),
            }),
            held: RefCell::new(None),
        }
    }

    /// kappa.
    pub fn kappa(&self) -> f64 {
        self.kappa
    }
}

impl Space for ModifiedWeightSpace<'_> {
    fn dim(&self) -> usize {
        self.model.m() * self.model.d()
    }

    /// g + kappa J^T (J g) with g = grad L = J^T Delta, J that of the held pattern (or of
    /// W's own when none is held).
    fn gradient(&self, x: &[f64], g: &mut [f64]) {
        let model = self.model;
        let (m, d) = (model.m(), model.d());
        let w = model.weights(x);
        let scratch = &mut *self.scratch.borrow_mut();
        let held = self.held.borrow();
        if !model.activation().switching() {
            // A smooth activation: no pattern; J at W by the dense products.
            {
                let mut gv = DMatrixViewMut::from_slice(g, m, d);
                model.gradient_in_place(&w, &mut gv, &mut scratch.ws, None);
            }
            let gm = model.weights(g).into_owned();
            let jg = model.jvp(&w, &gm.as_view()) * self.kappa;
            let correction = model.vjp(&w, &jg);
            g.iter_mut()
                .zip(correction.as_slice())
                .for_each(|(a, c)| *a += c);
            return;
        }
        let fresh;
        let pattern = match held.as_ref() {
            Some(p) => p,
            None => {
                fresh = Pattern::of(model, &w, &mut scratch.ws);
                &fresh
            }
        };
        {
            let mut gv = DMatrixViewMut::from_slice(g, m, d);
            model.gradient_in_place(&w, &mut gv, &mut scratch.ws, Some(pattern));
        }
        let gv = model.weights(g);
        model.jvp_held(&gv, &mut scratch.ws, pattern, &mut scratch.jg);
        scratch.jg.iter_mut().for_each(|v| *v *= self.kappa);
        let mut cv = scratch.correction.as_view_mut();
        model.vjp_held(&scratch.jg, &mut cv, &mut scratch.ws, pattern);
        g.iter_mut()
            .zip(scratch.correction.as_slice())
            .for_each(|(a, c)| *a += c);
    }

    fn snapshot(&self, x: &[f64], v: &[f64]) -> Snapshot {
        self.plain.snapshot(x, v)
    }

    // Holding and blending by WeightSpace's functions, on this flow's own pattern.
    fn hold_pattern(&self, x: &[f64]) -> u64 {
        if !self.model.activation().switching() {
            return 0;
        }
        let scratch = &mut *self.scratch.borrow_mut();
        hold(
            self.model,
            &mut self.held.borrow_mut(),
            &x[..self.dim()],
            &mut scratch.signs,
            &mut scratch.ws,
        )
    }

    fn blend_pattern(&self, x0: &[f64], x1: &[f64]) -> u64 {
        let mut held = self.held.borrow_mut();
        let Some(p) = held.as_mut() else {
            return 0;
        };
        let scratch = &mut *self.scratch.borrow_mut();
        let dim = self.dim();
        blend(
            self.model,
            p,
            (&x0[..dim], &x1[..dim]),
            (&mut scratch.signs, &mut scratch.changed),
            &mut scratch.ws,
        )
    }

    fn release_pattern(&self) {
        *self.held.borrow_mut() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Damping, Flow};
    use crate::model::{Data, InitialNetwork};

    fn problem(n: usize, d: usize, m: usize) -> (Model, DMatrix<f64>) {
        let net = InitialNetwork::init(m, d, 5);
        (Model::new(Data::synthetic(n, d, 5), net.a), net.w)
    }

    /// J^T (I + kappa H) Delta formed from the dense J (n x md) of W's own pattern.
    fn dense_field(model: &Model, w: &DMatrix<f64>, kappa: f64) -> DVector<f64> {
        let (m, d) = (model.m(), model.d());
        let mut jac = DMatrix::zeros(model.n(), m * d);
        for c in 0..m * d {
            let mut e = DMatrix::zeros(m, d);
            e.as_mut_slice()[c] = 1.0;
            jac.set_column(c, &model.jvp(&w.as_view(), &e.as_view()));
        }
        let delta = model.residual(&w.as_view());
        let h = &jac * jac.transpose();
        jac.tr_mul(&(&delta + &h * &delta * kappa))
    }

    #[test]
    fn weight_space_field_is_jt_of_i_plus_kappa_h_times_delta() {
        let (model, w) = problem(12, 3, 40);
        let kappa = 0.37;
        let space = ModifiedWeightSpace::new(&model, kappa);
        let want = dense_field(&model, &w, kappa);
        for held in [false, true] {
            if held {
                space.hold_pattern(w.as_slice());
            }
            let mut g = vec![0.0; 40 * 3];
            space.gradient(w.as_slice(), &mut g);
            let err = (DVector::from_vec(g) - &want).amax() / want.amax();
            assert!(err < 1e-13, "held {held}: {err:e}");
        }
    }

    #[test]
    fn snapshot_velocity_is_minus_h_plus_kappa_h_squared_delta() {
        let (model, w) = problem(10, 3, 50);
        let kappa = 0.2;
        let space = ModifiedWeightSpace::new(&model, kappa);
        let s = Flow::new(&space, Damping::None).snapshot(w.as_slice());
        let h = s.gram.clone().unwrap();
        let want = -(&h * &s.delta + &h * &h * &s.delta * kappa);
        let err = (&s.delta_dot - &want).amax() / want.amax();
        assert!(err < 1e-12, "{err:e}");
    }

    #[test]
    fn error_space_mode_decays_at_lambda_plus_kappa_lambda_squared() {
        let h = DMatrix::from_row_slice(2, 2, &[2.0, 0.5, 0.5, 1.0]);
        let kappa = 0.3;
        let space = ModifiedErrorSpace::new(h.clone(), kappa);
        let exact = ModifiedExact::new(&h, &DVector::from_vec(vec![1.0, -0.4]), kappa);
        // Delta' = -(H + kappa H^2) Delta at any time, from the space's own field.
        for t in [0.0, 0.3, 2.0] {
            let (d, v) = exact.at(t);
            let mut g = [0.0; 2];
            space.gradient(d.as_slice(), &mut g);
            assert!((v[0] + g[0]).abs() < 1e-14 && (v[1] + g[1]).abs() < 1e-14);
        }
        assert_eq!(rate(2.0, 0.25), 3.0);
        assert_eq!(mode(-1e-17, 0.25, 1.0), (1.0, -0.0));
    }
}
