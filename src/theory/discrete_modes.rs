//! The discrete twins in error space with a fixed kernel H, one eigen-mode at a time.
//!
//! With H = V diag(lambda) V^T and c = V^T Delta_0, the twin iterated on Delta with the fixed
//! H leaves every mode alone: Delta_k = V diag(d_k(lambda)) c, and d_k solves the scalar
//! recurrence of its twin from d_0 = 1:
//! ```text
//! GD        : d_{k+1} = (1 - eta lambda) d_k                                  r = 1 - eta lambda
//! heavy ball: d_{k+1} = (1 + beta - eta lambda) d_k - beta d_{k-1}, d_{-1} = d_0
//!             r^2 - (1 + beta - eta lambda) r + beta = 0            |r|^2 = beta (complex r)
//! NAG-SC    : x_{k+1} = (1 - eta lambda) y_k, y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k)
//!             r^2 - (1 + beta)(1 - eta lambda) r + beta (1 - eta lambda) = 0
//!                                                       |r|^2 = beta (1 - eta lambda) (complex r)
//! NAG       : the same with the momentum k/(k + gamma) after step k+1
//! ```
//! Stability edges (|r_max| = 1): GD eta lambda < 2, heavy ball < 2(1 + beta), NAG-SC
//! < 2(1 + beta)/(1 + 2 beta).
//!
//! Iterating each mode's 2x2 recurrence costs n K multiplications for K iterates, against
//! n^2 K for the matrix iteration, and is what the matrix iteration is in the eigenbasis.
//!
//! References:
//! 1. G. Goh, "Why momentum really works", Distill 2017 (the per-mode view of heavy ball).
//! 2. B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.

use nalgebra::{DMatrix, DVector};

use crate::theory::spectrum::Spectrum;

/// The scalar recurrence of one eigen-mode of a twin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Recurrence {
    /// Gradient descent.
    Gd,
    /// Heavy ball with momentum beta (W_{-1} = W_0).
    HeavyBall(f64),
    /// Nesterov with a constant momentum beta (NAG-SC), loss at x_k.
    NesterovConstant(f64),
    /// Nesterov with momentum k/(k + gamma) after step k+1 (NAG), loss at x_k.
    Nesterov(f64),
}

impl Recurrence {
    /// d_k for k = 0..=last of the mode with eigenvalue `lambda` (d_0 = 1).
    pub fn iterates(self, eta: f64, lambda: f64, last: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(last + 1);
        self.for_each(eta, lambda, last, |_, d| out.push(d));
        out
    }

    /// Call `f(k, d_k)` for k = 0..=last.
    pub fn for_each(self, eta: f64, lambda: f64, last: usize, mut f: impl FnMut(usize, f64)) {
        let a = 1.0 - eta * lambda;
        // (x, y): the iterate and the point the gradient is taken at (heavy ball: y = x_{k-1}).
        let (mut x, mut y) = (1.0, 1.0);
        for k in 0..=last {
            f(k, x);
            match self {
                Recurrence::Gd => x *= a,
                Recurrence::HeavyBall(beta) => {
                    let next = a * x + beta * (x - y);
                    y = x;
                    x = next;
                }
                Recurrence::NesterovConstant(_) | Recurrence::Nesterov(_) => {
                    let next = a * y;
                    let momentum = match self {
                        Recurrence::NesterovConstant(beta) => beta,
                        Recurrence::Nesterov(gamma) => k as f64 / (k as f64 + gamma),
                        _ => unreachable!(),
                    };
                    y = next + momentum * (next - x);
                    x = next;
                }
            }
        }
    }

    /// The roots (r_1, r_2) of the mode's characteristic polynomial as (re, im) pairs, for the
    /// constant-coefficient twins (None for NAG, whose momentum changes with k).
    pub fn roots(self, eta: f64, lambda: f64) -> Option<[(f64, f64); 2]> {
        let a = 1.0 - eta * lambda;
        // r^2 - tr r + det = 0.
        let (tr, det) = match self {
            Recurrence::Gd => return Some([(a, 0.0), (0.0, 0.0)]),
            Recurrence::HeavyBall(beta) => (1.0 + beta - eta * lambda, beta),
            Recurrence::NesterovConstant(beta) => ((1.0 + beta) * a, beta * a),
            Recurrence::Nesterov(_) => return None,
        };
        let disc = tr * tr / 4.0 - det;
        Some(if disc >= 0.0 {
            let s = disc.sqrt();
            [(tr / 2.0 + s, 0.0), (tr / 2.0 - s, 0.0)]
        } else {
            let s = (-disc).sqrt();
            [(tr / 2.0, s), (tr / 2.0, -s)]
        })
    }

    /// |r_max|, the mode's contraction per step (None for NAG).
    pub fn spectral_radius(self, eta: f64, lambda: f64) -> Option<f64> {
        self.roots(eta, lambda)
            .map(|r| r.iter().map(|(a, b)| a.hypot(*b)).fold(0.0, f64::max))
    }

    /// Whether the roots are complex (the mode oscillates with the sign of its iterates).
    pub fn underdamped(self, eta: f64, lambda: f64) -> bool {
        self.roots(eta, lambda).is_some_and(|r| r[0].1 != 0.0)
    }

    /// The largest eta lambda at which every mode still contracts (|r_max| < 1): 2, 2(1 + beta),
    /// 2(1 + beta)/(1 + 2 beta); NAG is taken at its limit momentum 1 (4/3).
    pub fn stability_edge(self) -> f64 {
        match self {
            Recurrence::Gd => 2.0,
            Recurrence::HeavyBall(beta) => 2.0 * (1.0 + beta),
            Recurrence::NesterovConstant(beta) => 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta),
            Recurrence::Nesterov(_) => 4.0 / 3.0,
        }
    }
}

/// The twin on Delta with a fixed H, mode by mode: the spectrum and the coefficients of Delta_0.
#[derive(Clone, Debug)]
pub struct DiscreteModes {
    spectrum: Spectrum,
    coefficients: DVector<f64>,
    recurrence: Recurrence,
    eta: f64,
}

impl DiscreteModes {
    pub fn new(h: &DMatrix<f64>, delta0: &DVector<f64>, recurrence: Recurrence, eta: f64) -> Self {
        let spectrum = Spectrum::of(h);
        let coefficients = spectrum.vectors.tr_mul(delta0);
        DiscreteModes {
            spectrum,
            coefficients,
            recurrence,
            eta,
        }
    }

    /// The eigen-decomposition the modes are built on.
    pub fn spectrum(&self) -> &Spectrum {
        &self.spectrum
    }

    /// V^T Delta_0.
    pub fn coefficients(&self) -> &DVector<f64> {
        &self.coefficients
    }

    /// The loss 1/2 |Delta_k|^2 for k = 0..=last (V orthogonal: 1/2 sum c_i^2 d_k(lambda_i)^2).
    pub fn losses(&self, last: usize) -> Vec<f64> {
        let mut out = vec![0.0; last + 1];
        for (i, &lambda) in self.spectrum.values.iter().enumerate() {
            let c2 = self.coefficients[i] * self.coefficients[i];
            self.recurrence
                .for_each(self.eta, lambda.max(0.0), last, |k, d| {
                    out[k] += 0.5 * c2 * d * d
                });
        }
        out
    }

    /// Modal coordinates V^T Delta_k, as an n x (last+1) matrix (column k).
    pub fn modal(&self, last: usize) -> DMatrix<f64> {
        let n = self.coefficients.len();
        let mut out = DMatrix::zeros(n, last + 1);
        for (i, &lambda) in self.spectrum.values.iter().enumerate() {
            let c = self.coefficients[i];
            self.recurrence
                .for_each(self.eta, lambda.max(0.0), last, |k, d| out[(i, k)] = c * d);
        }
        out
    }

    /// Delta_k = V (V^T Delta_k).
    pub fn delta(&self, k: usize) -> DVector<f64> {
        let modal = self.modal(k);
        &self.spectrum.vectors * modal.column(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesterov_modes_start_as_the_twin_does() {
        // x_1 = (1 - eta lambda) x_0 for every twin (y_0 = x_0, x_{-1} = x_0).
        for r in [
            Recurrence::Gd,
            Recurrence::HeavyBall(0.9),
            Recurrence::NesterovConstant(0.9),
            Recurrence::Nesterov(3.0),
        ] {
            let d = r.iterates(0.1, 2.0, 1);
            assert!((d[1] - 0.8).abs() < 1e-15, "{r:?}: {d:?}");
        }
    }
}
