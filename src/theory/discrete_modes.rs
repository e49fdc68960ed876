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

// issue 19: --beta
/// Heavy ball or NAG-SC with a fixed momentum B (`--beta B`, not derived from the friction b),
/// on the clock t_k = k eta/(1 - B), and the two flows that describe it per mode:
///
/// ```text
/// low resolution : gradient flow             x' = -lambda x
/// high resolution: the modified flow         x' = -(lambda + k_B eta lambda^2) x
///   k_B = (1 + B)/(2 (1 - B)^2)          (heavy ball)
///   k_B = (1 - B + 2 B^2)/(2 (1 - B)^2)  (NAG-SC)
/// ```
/// Both come from the slow root r_1 = 1 - eps of the mode's recurrence ([`Recurrence`]):
/// eps (1 - B) = a + eps^2 - a eps (heavy ball) or a + eps^2 - (1 + B) a eps (NAG-SC),
/// a = eta lambda, so eps = a/(1 - B) + a^2 B/(1 - B)^3 (or a^2 B^2/(1 - B)^3), and
/// -ln r_1 / (eta/(1 - B)) = lambda + k_B eta lambda^2 + O(eta^2). The roots are real (the
/// mode follows a flow rather than oscillating) only while eta lambda < (1 - sqrt B)^2, the
/// flows' range; modes beyond it are counted by [`FixedMomentum::beyond`].
///
/// The twin starts off the flows: its mode is c_1 r_1^k + c_2 r_2^k with c_1 = 1 + O(eta lambda)
/// (heavy ball: c_1 = 1 + a B/(1 - B)^2 + O(a^2)), an initial slip of order eta (B > 0) that
/// neither flow started at Delta_0 has; the decay per unit time past the fast root's
/// transient (r_2 ~ B) is what is O(eta^2) at high resolution.
///
/// Reference: N. Kovachki, A. Stuart, "Continuous time analysis of momentum methods", JMLR 2021.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FixedMomentum {
    /// [`Recurrence::HeavyBall`] or [`Recurrence::NesterovConstant`] with beta = B.
    pub recurrence: Recurrence,
    pub eta: f64,
}

impl FixedMomentum {
    /// The fixed-momentum twin of `recurrence` (heavy ball or NAG-SC; None otherwise).
    pub fn new(recurrence: Recurrence, eta: f64) -> Option<FixedMomentum> {
        matches!(
            recurrence,
            Recurrence::HeavyBall(_) | Recurrence::NesterovConstant(_)
        )
        .then_some(FixedMomentum { recurrence, eta })
    }

    /// B.
    pub fn beta(&self) -> f64 {
        match self.recurrence {
            Recurrence::HeavyBall(b) | Recurrence::NesterovConstant(b) => b,
            Recurrence::Gd | Recurrence::Nesterov(_) => f64::NAN,
        }
    }

    /// The clock step eta/(1 - B): iterate k sits at t_k = k eta/(1 - B). Rounded to 15
    /// significant digits: 1 - 0.9 is 0.09999999999999998 in binary, and 0.01/(1 - 0.9)
    /// would put iterate 1 at t = 0.10000000000000002 (the rounding moves t by at most 5e-15 t).
    pub fn clock(&self) -> f64 {
        let h = self.eta / (1.0 - self.beta());
        format!("{h:.14e}").parse().unwrap_or(h)
    }

    /// k_B: (1+B)/(2(1-B)^2) for heavy ball, (1-B+2B^2)/(2(1-B)^2) for NAG-SC.
    pub fn k_b(&self) -> f64 {
        let b = self.beta();
        let denominator = 2.0 * (1.0 - b) * (1.0 - b);
        match self.recurrence {
            Recurrence::HeavyBall(_) => (1.0 + b) / denominator,
            _ => (1.0 - b + 2.0 * b * b) / denominator,
        }
    }

    /// kappa = k_B eta of the modified flow Delta' = -(H + kappa H^2) Delta.
    pub fn kappa(&self) -> f64 {
        self.k_b() * self.eta
    }

    /// (1 - sqrt B)^2: the flows describe a mode only while eta lambda is below it.
    pub fn edge(&self) -> f64 {
        let r = 1.0 - self.beta().sqrt();
        r * r
    }

    /// Whether the mode of eigenvalue `lambda` lies beyond the flows' range:
    /// eta lambda >= (1 - sqrt B)^2.
    pub fn beyond(&self, lambda: f64) -> bool {
        self.eta * lambda >= self.edge()
    }

    /// (count, share) of the eigenvalues beyond the flows' range (share NaN for none given).
    pub fn modes_beyond(&self, eigenvalues: &[f64]) -> (usize, f64) {
        let count = eigenvalues.iter().filter(|&&l| self.beyond(l)).count();
        (count, count as f64 / eigenvalues.len() as f64)
    }

    /// The decay rate of the mode's slow root per unit time, -ln r_1 / (eta/(1 - B)) (None
    /// beyond the range, where the roots are complex or the slow one is not the larger).
    pub fn twin_rate(&self, lambda: f64) -> Option<f64> {
        let roots = self.recurrence.roots(self.eta, lambda)?;
        (roots[0].1 == 0.0).then(|| -roots[0].0.ln() / self.clock())
    }
}

/// summary.json's `fixed_momentum` (`--beta B`): the twin, its clock and the flows that
/// describe it, and how many modes of the fixed kernel lie beyond their range.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FixedMomentumSummary {
    /// B.
    pub beta: f64,
    /// "t = k eta/(1 - B)".
    pub clock: String,
    /// eta/(1 - B).
    pub clock_step: f64,
    /// k_B of the modified flow.
    pub k_b: f64,
    /// k_B eta.
    pub kappa: f64,
    /// The ODE of weight.csv and error.csv: "low" (gradient flow on the clock) or "high"
    /// (the modified flow W' = -J^T (I + k_B eta H) Delta).
    pub resolution: String,
    /// (1 - sqrt B)^2: the flows describe a mode while eta lambda is below it.
    pub edge_eta_lambda: f64,
    /// The fixed kernel the modes are of (h0 or hinf, --kernel).
    pub kernel: String,
    /// Its number of modes (n).
    pub modes: usize,
    /// Modes with eta lambda >= (1 - sqrt B)^2.
    pub modes_beyond: usize,
    /// modes_beyond / modes.
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub modes_beyond_share: f64,
}

impl FixedMomentumSummary {
    /// The summary of `theory` for the kernel `kernel` with these eigenvalues.
    pub fn new(
        theory: &FixedMomentum,
        high: bool,
        kernel: &str,
        eigenvalues: &[f64],
    ) -> FixedMomentumSummary {
        let (modes_beyond, _) = theory.modes_beyond(eigenvalues);
        Self::counted(theory, high, kernel, eigenvalues.len(), modes_beyond)
    }

    /// The summary when only the count of modes beyond is known (`modes_beyond` of `modes`).
    pub fn counted(
        theory: &FixedMomentum,
        high: bool,
        kernel: &str,
        modes: usize,
        modes_beyond: usize,
    ) -> FixedMomentumSummary {
        FixedMomentumSummary {
            beta: theory.beta(),
            clock: "t = k eta/(1 - B)".into(),
            clock_step: theory.clock(),
            k_b: theory.k_b(),
            kappa: theory.kappa(),
            resolution: if high { "high" } else { "low" }.into(),
            edge_eta_lambda: theory.edge(),
            kernel: kernel.into(),
            modes,
            modes_beyond,
            modes_beyond_share: modes_beyond as f64 / modes as f64,
        }
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
