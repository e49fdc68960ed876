//! The stochastic modified equation of SGD by Euler-Maruyama, dt = eta/L.
//!
//! ```text
//! weight: dW = -J^T Delta dt + sqrt(eta) J^T M^(1/2) dB_t
//! error : dDelta = -H Delta dt + sqrt(eta) H M^(1/2) dB_t          (H fixed)
//! M = c_B (n diag(Delta)^2 - Delta Delta^T) = c_B n D P D,  D = diag(Delta),  P = I - 1 1^T/n
//! ```
//! **An exact O(n) sampler of M^(1/2) dB.** P is a symmetric projector and D 1 = Delta, so
//! F = sqrt(c_B n) D P has F F^T = c_B n D P D = M. A Gaussian increment is known by its
//! covariance, so F xi (xi ~ N(0, I_n)) has the law of M^(1/2) xi:
//! ```text
//! F xi = sqrt(c_B n) Delta o (xi - mean(xi) 1)
//! ```
//! and one Euler-Maruyama step is again a weighting of the residual,
//! ```text
//! W += -J^T (Delta o (dt - s (xi - mean(xi)))),   s = sqrt(eta dt c_B n),
//! ```
//! one product J^T beta per step, as for SGD ([`super::twin::Weighted`]); no n x n
//! eigen-decomposition per step.
//!
//! **Euler-Maruyama with dt = eta has SGD's second moment in error space.** The step is
//! Delta+ = (I - eta H) Delta - eta H F(Delta) xi with xi independent of Delta and E xi = 0,
//! so with A = I - eta H and C = E[Delta Delta^T],
//! ```text
//! E[Delta+ Delta+^T] = A C A + eta^2 H E[F F^T] H = A C A + eta^2 H E[M(Delta)] H
//!                    = A C A + eta^2 c_B H (n Diag(C) - C) H,
//! ```
//! because M is linear in Delta Delta^T (n diag(Delta)^2 = n Diag(Delta Delta^T)). SGD's step
//! Delta+ = A Delta - eta H e with e = (w - 1) o Delta, E[e | Delta] = 0 and
//! E[e e^T | Delta] = M(Delta), gives the same recursion ([`super::oracle`]). The two agree in
//! every second moment, hence in E\[L_k], though not in law (SGD's noise is not Gaussian).

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::RngExt;
use rand_distr::StandardNormal;

use super::twin::{loss, Weighted};
use super::{Path, Process, Recording, Space};
use crate::model::Model;

/// Draws F xi / sqrt(c_B n) = Delta o (xi - mean(xi)): the SDE's noise direction.
#[derive(Debug)]
pub struct Noise {
    rng: StdRng,
    xi: Vec<f64>,
}

impl Noise {
    pub fn new(n: usize, rng: StdRng) -> Noise {
        Noise {
            rng,
            xi: vec![0.0; n],
        }
    }

    /// xi - mean(xi) for a fresh xi ~ N(0, I_n): P xi, whose covariance is P.
    pub fn centred(&mut self) -> &[f64] {
        for x in self.xi.iter_mut() {
            *x = self.rng.sample(StandardNormal);
        }
        let mean = self.xi.iter().sum::<f64>() / self.xi.len().max(1) as f64;
        self.xi.iter_mut().for_each(|x| *x -= mean);
        &self.xi
    }

    /// The weights of one Euler-Maruyama step into `beta`: beta = Delta o (dt - s P xi), so
    /// that the step is -J^T beta (weight space) or -H beta (error space).
    pub fn step_weights(&mut self, delta: &[f64], dt: f64, s: f64, beta: &mut [f64]) {
        let xi = self.centred();
        for ((b, d), x) in beta.iter_mut().zip(delta).zip(xi) {
            *b = d * (dt - s * x);
        }
    }
}

/// The SDE's step parameters: dt = eta/L and the noise scale s = sqrt(eta dt c_B n).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scheme {
    pub eta: f64,
    pub substeps: usize,
    pub c_b: f64,
}

impl Scheme {
    pub fn dt(&self) -> f64 {
        self.eta / self.substeps as f64
    }
    pub fn scale(&self, n: usize) -> f64 {
        (self.eta * self.dt() * self.c_b * n as f64).sqrt()
    }
}

/// One seeded run of the SDE in weight space from W0, kept at the SGD iterates of `rec` (L
/// Euler-Maruyama steps between two SGD times).
pub fn sde_weight(
    model: &Model,
    w0: &DMatrix<f64>,
    scheme: Scheme,
    rec: Recording,
    mut noise: Noise,
    lanes: usize,
    seed: usize,
) -> Path {
    let n = model.n();
    let (dt, s) = (scheme.dt(), scheme.scale(n));
    let mut engine = Weighted::new(model, w0, lanes);
    let mut w = w0.clone();
    let (mut delta, mut beta) = (vec![0.0; n], vec![0.0; n]);
    Path::record(
        Process::Sde,
        Space::Weight,
        Some(seed),
        scheme.eta,
        rec,
        |k| {
            if k > 0 {
                for l in 0..scheme.substeps {
                    // the first substep's drift is the residual the loss of k - 1 left
                    if l > 0 {
                        engine.residual(&w, &mut delta);
                    }
                    noise.step_weights(&delta, dt, s, &mut beta);
                    engine.descend(&mut w, &beta);
                }
            }
            engine.residual(&w, &mut delta);
            loss(&delta)
        },
    )
}

/// One seeded run of the SDE in error space with the fixed kernel H from Delta0.
pub fn sde_error(
    h: &DMatrix<f64>,
    delta0: &DVector<f64>,
    scheme: Scheme,
    rec: Recording,
    mut noise: Noise,
    seed: usize,
) -> Path {
    let n = delta0.len();
    let (dt, s) = (scheme.dt(), scheme.scale(n));
    let mut delta = delta0.clone();
    let mut beta = DVector::zeros(n);
    Path::record(
        Process::Sde,
        Space::Error,
        Some(seed),
        scheme.eta,
        rec,
        |k| {
            if k > 0 {
                for _ in 0..scheme.substeps {
                    noise.step_weights(delta.as_slice(), dt, s, beta.as_mut_slice());
                    delta.gemv(-1.0, h, &beta, 1.0);
                }
            }
            0.5 * delta.norm_squared()
        },
    )
}
