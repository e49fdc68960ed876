//! The high-resolution ODEs as first-order systems that need only the gradient, in any
//! space (x = W with grad L, or x = Delta with H Delta), with s = sqrt(eta), c = 1 - b s/2:
//!
//! ```text
//! gf   : x' = -(g + (eta/2) H g)                      (IGR; error space only: H g = grad(g))
//! hbf  : x' = v,  v' = -(b v + g)/c                   (c x'' + b x' + g = 0)
//! nagsc: Z = c x' + s g(x):  x' = (Z - s g)/c,  Z' = -b x' - g
//!        (c x'' + (b + s Hess) x' + g = 0 without the Hessian)
//! nag  : Z = x' + s g(x):    x' = Z - s g,  Z' = -(gamma/tau) Z - (1 - gamma s/(2 tau)) g
//!        (x'' + (gamma/tau) x' + s Hess x' + (1 + gamma s/(2 tau)) g = 0), from tau_1
//! ```
//!
//! Starts: hbf, nagsc x(0) = x0, x'(0) = -(s/2) g(x0) (so Z(0) = s (1 - c/2) g(x0) for
//! nagsc); nag at tau_1 = gamma s/2 with x = x0 - eta g(x0), x' = -s g(x(tau_1)), so Z = 0.
//!
//! Hess L x' is never formed: d/dt g(x(t)) = Hess x', so the new variable Z carries it, and
//! a stage costs one gradient, as the low-resolution flows' do. Through a ReLU kink g jumps
//! but Z stays continuous, so the held-pattern driver's blend treats a crossing as it treats
//! the low-resolution flows' (one jump of the right-hand side).
//!
//! Reference: B. Shi, S. S. Du, M. I. Jordan, W. J. Su, "Understanding the acceleration
//! phenomenon via high-resolution differential equations", Math. Programming 2021.

use nalgebra::DVector;

pub mod output_space;

use super::{Damping, Snapshot, Space};
use crate::integrate::{OdeSystem, SwitchingSystem};
use crate::optimizer::Optimizer;
use crate::theory::high_resolution::{Resolution, Setting};

/// Which first-order form, with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Form {
    /// x' = -(g + (eta/2) H g) with H g = grad(g): valid where the gradient is linear
    /// (error space). Weight space's IGR flow is the modified flow (`--beta`'s).
    Igr { eta: f64 },
    /// c x'' + b x' + g = 0, state [x, x'].
    Hbf { b: f64, s: f64 },
    /// State [x, Z], Z = c x' + s g.
    Nagsc { b: f64, s: f64 },
    /// State [x, Z], Z = x' + s g, time tau from tau_1.
    Nag { gamma: f64, s: f64 },
}

impl Form {
    /// The high-resolution form of a setting.
    pub fn of(setting: &Setting) -> Form {
        let s = setting.eta.sqrt();
        match (setting.damping, setting.optimizer) {
            (Damping::None, _) => Form::Igr { eta: setting.eta },
            (Damping::Constant(b), Optimizer::Nagsc) => Form::Nagsc { b, s },
            (Damping::Constant(b), _) => Form::Hbf { b, s },
            (Damping::Vanishing(gamma), _) => Form::Nag { gamma, s },
        }
    }

    fn second_order(&self) -> bool {
        !matches!(self, Form::Igr { .. })
    }

    /// The second-order forms at time t as linear maps of (Z, g) (Z = x' for hbf), for the
    /// output-space evaluator ([`output_space`]); None for the IGR flow.
    pub fn linear(&self, t: f64) -> Option<Linear> {
        match *self {
            Form::Igr { .. } => None,
            Form::Hbf { b, s } => {
                let c = 1.0 - b * s / 2.0;
                Some(Linear {
                    x_z: 1.0,
                    x_g: 0.0,
                    z_z: -b / c,
                    z_g: -1.0 / c,
                })
            }
            // x' = (Z - s g)/c, Z' = -b x' - g.
            Form::Nagsc { b, s } => {
                let c = 1.0 - b * s / 2.0;
                Some(Linear {
                    x_z: 1.0 / c,
                    x_g: -s / c,
                    z_z: -b / c,
                    z_g: b * s / c - 1.0,
                })
            }
            Form::Nag { gamma, s } => Some(Linear {
                x_z: 1.0,
                x_g: -s,
                z_z: -gamma / t,
                z_g: -(1.0 - gamma * s / (2.0 * t)),
            }),
        }
    }
}

/// A second-order form at one time as a linear map of the state's second part Z and the
/// gradient g: x' = x_z Z + x_g g, Z' = z_z Z + z_g g.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Linear {
    pub x_z: f64,
    pub x_g: f64,
    pub z_z: f64,
    pub z_g: f64,
}

/// A space's high-resolution ODE for the integrators (see the module docs).
#[derive(Debug)]
pub struct HighFlow<'a, S: Space> {
    pub space: &'a S,
    pub form: Form,
}

impl<S: Space> Clone for HighFlow<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Space> Copy for HighFlow<'_, S> {}

impl<'a, S: Space> HighFlow<'a, S> {
    pub fn new(space: &'a S, setting: &Setting) -> Self {
        HighFlow {
            space,
            form: Form::of(setting),
        }
    }

    /// Length of the state.
    pub fn state_len(&self) -> usize {
        if self.form.second_order() {
            2 * self.space.dim()
        } else {
            self.space.dim()
        }
    }

    /// The time the ODE starts at (tau_1 for nag, else 0) and its state there, from x0.
    pub fn initial(&self, setting: &Setting, x0: &[f64]) -> (f64, DVector<f64>) {
        let n = self.space.dim();
        let t0 = setting.start_time(Resolution::High);
        let mut y = DVector::zeros(self.state_len());
        let mut g = vec![0.0; n];
        self.space.gradient(x0, &mut g);
        let (x, rest) = y.as_mut_slice().split_at_mut(n);
        x.copy_from_slice(x0);
        match self.form {
            Form::Igr { .. } => {}
            Form::Hbf { s, .. } => rest
                .iter_mut()
                .zip(&g)
                .for_each(|(v, gi)| *v = -s / 2.0 * gi),
            Form::Nagsc { b, s } => {
                let c = 1.0 - b * s / 2.0;
                rest.iter_mut()
                    .zip(&g)
                    .for_each(|(z, gi)| *z = s * (1.0 - c / 2.0) * gi);
            }
            // x(tau_1) = x0 - eta g(x0), Z(tau_1) = x' + s g = 0.
            Form::Nag { s, .. } => x.iter_mut().zip(&g).for_each(|(xi, gi)| *xi -= s * s * gi),
        }
        (t0, y)
    }

    /// x' at a state, given g = grad(x).
    fn velocity_from(&self, y: &[f64], g: &[f64], out: &mut [f64]) {
        let n = self.space.dim();
        match self.form {
            Form::Igr { eta } => {
                let mut hg = vec![0.0; n];
                self.space.gradient(g, &mut hg);
                out.iter_mut()
                    .zip(g.iter().zip(&hg))
                    .for_each(|(o, (gi, hgi))| *o = -(gi + eta / 2.0 * hgi));
            }
            Form::Hbf { .. } => out.copy_from_slice(&y[n..]),
            Form::Nagsc { b, s } => {
                let c = 1.0 - b * s / 2.0;
                out.iter_mut()
                    .zip(y[n..].iter().zip(g))
                    .for_each(|(o, (z, gi))| *o = (z - s * gi) / c);
            }
            Form::Nag { s, .. } => out
                .iter_mut()
                .zip(y[n..].iter().zip(g))
                .for_each(|(o, (z, gi))| *o = z - s * gi),
        }
    }

    /// (Delta, Delta', Lhat, H) at a state: the space's snapshot at x with velocity x'.
    pub fn snapshot(&self, y: &[f64]) -> Snapshot {
        let n = self.space.dim();
        let mut g = vec![0.0; n];
        self.space.gradient(&y[..n], &mut g);
        let mut v = vec![0.0; n];
        self.velocity_from(y, &g, &mut v);
        self.space.snapshot(&y[..n], &v)
    }

    /// dy = F(t, y).
    pub fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        let n = self.space.dim();
        let mut g = vec![0.0; n];
        self.space.gradient(&y[..n], &mut g);
        let (dx, dz) = dy.split_at_mut(n);
        self.velocity_from(y, &g, dx);
        match self.form {
            Form::Igr { .. } => {}
            Form::Hbf { b, s } => {
                let c = 1.0 - b * s / 2.0;
                dz.iter_mut()
                    .zip(y[n..].iter().zip(&g))
                    .for_each(|(a, (v, gi))| *a = -(b * v + gi) / c);
            }
            Form::Nagsc { b, .. } => dz
                .iter_mut()
                .zip(dx.iter().zip(&g))
                .for_each(|(a, (v, gi))| *a = -b * v - gi),
            Form::Nag { gamma, s } => {
                let (k, l) = (gamma / t, 1.0 - gamma * s / (2.0 * t));
                dz.iter_mut()
                    .zip(y[n..].iter().zip(&g))
                    .for_each(|(a, (z, gi))| *a = -k * z - l * gi);
            }
        }
    }
}

impl<S: Space> OdeSystem for HighFlow<'_, S> {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        HighFlow::rhs(self, t, y, dy);
    }
    fn blocks(&self) -> usize {
        if self.form.second_order() {
            2
        } else {
            1
        }
    }
}

/// The space's switches, held by the held-step driver as for the low-resolution flows.
impl<S: Space> SwitchingSystem for HighFlow<'_, S> {
    fn hold(&self, y: &[f64]) -> u64 {
        self.space.hold_pattern(y)
    }
    fn blend(&self, y0: &[f64], y1: &[f64]) -> u64 {
        self.space.blend_pattern(y0, y1)
    }
    fn release(&self) {
        self.space.release_pattern();
    }
}

#[cfg(test)]
mod tests {
    use nalgebra::{DMatrix, DVector};

    use super::*;
    use crate::dynamics::ErrorSpace;

    /// Each first-order form is its second-order equation: on a scalar kernel k, x'' from
    /// finite differences of the integrated x' matches the equation at a point.
    #[test]
    fn the_hessian_free_forms_solve_their_second_order_equations_on_a_scalar_kernel() {
        let k = 2.0;
        let space = ErrorSpace {
            h: DMatrix::from_element(1, 1, k),
        };
        let (eta, b, gamma) = (0.04f64, 0.5, 3.0);
        let s = eta.sqrt();
        for optimizer in [Optimizer::Hbf, Optimizer::Nagsc, Optimizer::Nag] {
            let damping = match optimizer {
                Optimizer::Nag => Damping::Vanishing(gamma),
                _ => Damping::Constant(b),
            };
            let setting = Setting {
                optimizer,
                eta,
                damping,
            };
            let flow = HighFlow::new(&space, &setting);
            let (t0, y0) = flow.initial(&setting, &[1.0]);
            // March with tiny RK4 steps to t0 + 0.5, keeping (t, x, x').
            let dt = 1e-4;
            let mut y = y0.clone();
            let mut t = t0;
            let mut track = Vec::new();
            let mut k1 = DVector::zeros(2);
            let (mut k2, mut k3, mut k4) = (k1.clone(), k1.clone(), k1.clone());
            for _ in 0..5000 {
                let v = flow.snapshot(y.as_slice()).delta_dot[0];
                track.push((t, y[0], v));
                flow.rhs(t, y.as_slice(), k1.as_mut_slice());
                let y2 = &y + &k1 * (dt / 2.0);
                flow.rhs(t + dt / 2.0, y2.as_slice(), k2.as_mut_slice());
                let y3 = &y + &k2 * (dt / 2.0);
                flow.rhs(t + dt / 2.0, y3.as_slice(), k3.as_mut_slice());
                let y4 = &y + &k3 * dt;
                flow.rhs(t + dt, y4.as_slice(), k4.as_mut_slice());
                y += (&k1 + &k2 * 2.0 + &k3 * 2.0 + &k4) * (dt / 6.0);
                t += dt;
            }
            let (tm, x, v) = track[2500];
            let a = (track[2501].2 - track[2499].2) / (2.0 * dt);
            let residual = match optimizer {
                Optimizer::Hbf => (1.0 - b * s / 2.0) * a + b * v + k * x,
                Optimizer::Nagsc => (1.0 - b * s / 2.0) * a + (b + s * k) * v + k * x,
                _ => a + (gamma / tm + s * k) * v + (1.0 + gamma * s / (2.0 * tm)) * k * x,
            };
            assert!(residual.abs() < 1e-6, "{optimizer}: {residual}");
            // The start velocities of the module docs.
            let v0 = track[0].2;
            let want = match optimizer {
                Optimizer::Nag => -s * k * (1.0 - eta * k),
                _ => -s / 2.0 * k,
            };
            assert!(
                (v0 - want).abs() < 1e-14,
                "{optimizer}: {v0} against {want}"
            );
        }
    }
}
