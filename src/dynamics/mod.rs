//! The optimizers as ODEs: a state space that gives its gradient, and a damping schedule.
//!
//! ```text
//! gf : x' = -grad(x)                               (Damping::None)
//! hbf: x'' + b x' + grad(x) = 0                    (Damping::Constant(b))
//! nag: x'' + (gamma/t) x' + grad(x) = 0            (Damping::Vanishing(gamma))
//! ```
//! with x = W and grad = grad L (weight space) or x = Delta and grad = H Delta (error space,
//! the gradient of the pseudo-loss 1/2 Delta^T H Delta). HBF and NAG are one second-order
//! equation x'' + c(t) x' + grad(x) = 0 with a different c(t); c(t) and Nesterov's singular
//! start are written once, in [`Damping::acceleration`], which every stage evaluator uses:
//! [`Flow`] (the dense right-hand side, for any space) and [`output_space`] (weight space's
//! held steps taken in output space).
//!
//! Files: `spaces.rs` (the [`Space`] trait, [`ErrorSpace`], [`WeightSpace`], [`Snapshot`]),
//! `output_space.rs` (the output-space stage evaluator of the held-step driver).
//!
//! References:
//! 1. S. S. Du et al., "Gradient descent provably optimizes over-parameterized neural networks", 2019.
//! 2. W. Su, S. Boyd, E. Candes, "A differential equation for modeling Nesterov's accelerated
//!    gradient method", NeurIPS 2014.
//! 3. Z. Bu, S. Xu, K. Chen, "A dynamical view on optimization algorithms of overparameterized
//!    neural networks", AISTATS 2021.

use nalgebra::DVector;

use crate::integrate::{OdeSystem, SwitchingSystem};

pub mod modified_flow;
pub mod output_space;
mod spaces;
// issue 19: resolution
pub mod high_resolution;

pub use spaces::{ErrorSpace, PatternBits, Snapshot, Space, WeightSpace};

/// The friction term c(t) of x'' + c(t) x' + grad = 0, or none for a first-order flow.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub enum Damping {
    /// First order: gradient flow.
    None,
    /// c(t) = b: heavy ball with friction.
    Constant(f64),
    /// c(t) = gamma / t: Nesterov's ODE.
    Vanishing(f64),
}

/// The second-order equation at one time: how x'' follows from x' and grad(x).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Acceleration {
    /// x'' = -c x' - grad(x), friction c = c(t).
    Friction(f64),
    /// Nesterov's ODE at t = 0, where c = gamma/t is singular: with x'(0) = 0 the limit of
    /// the equation is x''(0) = -grad(x0)/(1 + gamma) (Su, Boyd and Candes 2014), so
    /// x'' = scale grad(x) with scale = -1/(1 + gamma).
    SingularStart { scale: f64 },
}

impl Acceleration {
    /// x'' of one component with velocity v and gradient g.
    #[inline]
    pub fn of(self, v: f64, g: f64) -> f64 {
        match self {
            Acceleration::Friction(c) => -c * v - g,
            Acceleration::SingularStart { scale } => scale * g,
        }
    }

    /// The friction's part of x'' for velocity v: -c v (none at the singular start, where
    /// the equation's limit does not involve x').
    #[inline]
    pub fn damped(self, v: f64) -> f64 {
        match self {
            Acceleration::Friction(c) => -c * v,
            Acceleration::SingularStart { .. } => 0.0,
        }
    }

    /// The friction c, where finite.
    pub fn friction(self) -> Option<f64> {
        match self {
            Acceleration::Friction(c) => Some(c),
            Acceleration::SingularStart { .. } => None,
        }
    }
}

impl Damping {
    /// Whether the equation is second order (state holds position and velocity).
    pub fn second_order(&self) -> bool {
        !matches!(self, Damping::None)
    }

    /// The second-order equation at time t (None for gradient flow): c(t) = b for HBF,
    /// gamma/t for NAG, and NAG's singular start at t = 0.
    pub fn acceleration(&self, t: f64) -> Option<Acceleration> {
        match *self {
            Damping::None => None,
            Damping::Constant(b) => Some(Acceleration::Friction(b)),
            Damping::Vanishing(gamma) if t > 0.0 => Some(Acceleration::Friction(gamma / t)),
            Damping::Vanishing(gamma) => Some(Acceleration::SingularStart {
                scale: -1.0 / (1.0 + gamma),
            }),
        }
    }

    /// The friction c(t) where it is finite: None for gradient flow and at NAG's start.
    pub fn friction(&self, t: f64) -> Option<f64> {
        self.acceleration(t).and_then(Acceleration::friction)
    }
}

/// The ODE x'' + c(t) x' + grad(x) = 0 (or x' = -grad(x)) of a space, for the integrators.
///
/// State layout: `[x]` for first order, `[x, x']` for second order. At t = 0 Nesterov's
/// friction gamma/t is singular; the right-hand side returns the equation's limit there
/// ([`Acceleration::SingularStart`]).
#[derive(Debug)]
pub struct Flow<'a, S: Space> {
    pub space: &'a S,
    pub damping: Damping,
}

// By hand: derive would ask S: Copy, but a Flow only holds a reference to its space.
impl<S: Space> Clone for Flow<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S: Space> Copy for Flow<'_, S> {}

impl<'a, S: Space> Flow<'a, S> {
    pub fn new(space: &'a S, damping: Damping) -> Self {
        Flow { space, damping }
    }

    /// Length of the ODE state.
    pub fn state_len(&self) -> usize {
        if self.damping.second_order() {
            2 * self.space.dim()
        } else {
            self.space.dim()
        }
    }

    /// Initial state from position x0, at rest.
    pub fn initial_state(&self, x0: &[f64]) -> DVector<f64> {
        let mut y = DVector::zeros(self.state_len());
        y.as_mut_slice()[..x0.len()].copy_from_slice(x0);
        y
    }

    /// (Delta, Delta', Lhat, H) at a state: velocity is x' for second order, -grad(x) for first.
    pub fn snapshot(&self, y: &[f64]) -> Snapshot {
        let n = self.space.dim();
        if self.damping.second_order() {
            self.space.snapshot(&y[..n], &y[n..])
        } else {
            self.space.gradient_flow_snapshot(y)
        }
    }

    /// dy = F(t, y) into a caller's buffer.
    pub fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        let n = self.space.dim();
        let Some(acceleration) = self.damping.acceleration(t) else {
            self.space.gradient(y, dy);
            dy.iter_mut().for_each(|d| *d = -*d);
            return;
        };
        let (x, v) = y.split_at(n);
        let (dx, dv) = dy.split_at_mut(n);
        dx.copy_from_slice(v);
        self.space.gradient(x, dv);
        dv.iter_mut()
            .zip(v)
            .for_each(|(a, vi)| *a = acceleration.of(*vi, *a));
    }
}

impl<S: Space> OdeSystem for Flow<'_, S> {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        Flow::rhs(self, t, y, dy);
    }
    fn blocks(&self) -> usize {
        if self.damping.second_order() {
            2
        } else {
            1
        }
    }
}

/// The space's switches (weight space: the activation pattern) held by the held-step driver.
impl<S: Space> SwitchingSystem for Flow<'_, S> {
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
    use nalgebra::DMatrix;

    use super::{Damping, ErrorSpace, Flow};
    use crate::integrate::{integrate, integrate_held, output_times, Solver, SolverSettings, Stop};

    /// Error space with the 1 x 1 kernel k: x'' + c(t) x' + k x = 0.
    fn scalar(k: f64) -> ErrorSpace {
        ErrorSpace {
            h: DMatrix::from_element(1, 1, k),
        }
    }

    fn settings(solver: Solver) -> SolverSettings {
        SolverSettings {
            solver,
            rtol: 1e-10,
            atol: 1e-12,
            step: 0.01,
            max_steps: 1_000_000,
            max_step: f64::INFINITY,
        }
    }

    /// Both the driver with dense stages and ode_solvers' Dopri5: the states at `times`.
    fn trajectories(flow: Flow<'_, ErrorSpace>, times: &[f64]) -> [Vec<[f64; 2]>; 2] {
        let y0 = flow.initial_state(&[1.0]);
        let mut held = Vec::new();
        let (_, stop) = integrate_held(
            flow,
            y0.clone(),
            times,
            &settings(Solver::Dopri5),
            |_, y| {
                held.push([y[0], y[1]]);
                true
            },
        );
        assert_eq!(stop, Stop::Completed);
        let mut adaptive = Vec::new();
        let (_, stop) = integrate(flow, y0, times, &settings(Solver::Dopri5), |_, y| {
            adaptive.push([y[0], y[1]]);
            true
        });
        assert_eq!(stop, Stop::Completed);
        [held, adaptive]
    }

    /// At NAG's start x'' = -grad(x0)/(1 + gamma), the limit of the equation along its own
    /// solution: with x' = a0 t, -(gamma/t) a0 t - k x0 = a0 for a0 = -k x0/(1 + gamma).
    #[test]
    fn nesterovs_start_is_the_limit_of_the_equation() {
        let (k, gamma, x0) = (2.0, 3.0, 0.7);
        let space = scalar(k);
        let flow = Flow::new(&space, Damping::Vanishing(gamma));
        let a0 = -k * x0 / (1.0 + gamma);
        let mut dy = [0.0; 2];
        flow.rhs(0.0, &[x0, 0.0], &mut dy);
        assert_eq!(dy, [0.0, a0]);
        for t in [1e-3, 1e-6, 1e-9] {
            flow.rhs(t, &[x0, a0 * t], &mut dy);
            assert!((dy[1] - a0).abs() < 1e-14, "t = {t}: {}", dy[1]);
        }
        assert_eq!(Damping::Vanishing(gamma).friction(0.0), None);
        assert_eq!(Damping::Vanishing(gamma).friction(2.0), Some(1.5));
        assert_eq!(Damping::Constant(0.4).friction(0.0), Some(0.4));
        assert_eq!(Damping::None.acceleration(1.0), None);
    }

    /// HBF on the kernel k is x'' + b x' + k x = 0: with w = sqrt(k - b^2/4),
    /// x = e^{-bt/2} (cos wt + b/(2w) sin wt) from x(0) = 1, x'(0) = 0.
    #[test]
    fn heavy_ball_on_a_scalar_kernel_is_the_damped_oscillator() {
        let (k, b) = (4.0, 0.3);
        let space = scalar(k);
        let times = output_times(10.0, 41);
        let w = (k - b * b / 4.0).sqrt();
        for run in trajectories(Flow::new(&space, Damping::Constant(b)), &times) {
            for (t, [x, v]) in times.iter().zip(run) {
                let decay = (-b * t / 2.0).exp();
                let exact_x = decay * ((w * t).cos() + b / (2.0 * w) * (w * t).sin());
                let exact_v = -k / w * decay * (w * t).sin();
                assert!(
                    (x - exact_x).abs() < 1e-8 && (v - exact_v).abs() < 1e-8,
                    "t = {t}"
                );
            }
        }
    }

    /// NAG with gamma = 2 on the kernel k = w^2 is x'' + (2/t) x' + w^2 x = 0, whose solution
    /// from x(0) = 1, x'(0) = 0 is sin(wt)/(wt) (the Bessel solution
    /// Gamma(nu + 1) (2/(wt))^nu J_nu(wt) at nu = (gamma - 1)/2 = 1/2); it starts with
    /// x''(0) = -w^2/3, the singular start's -grad/(1 + gamma).
    #[test]
    fn nesterov_on_a_scalar_kernel_is_the_spherical_bessel_function() {
        let w = 1.5f64;
        let space = scalar(w * w);
        let times = output_times(10.0, 41);
        for run in trajectories(Flow::new(&space, Damping::Vanishing(2.0)), &times) {
            for (t, [x, v]) in times.iter().zip(run).skip(1) {
                let z = w * t;
                let exact_x = z.sin() / z;
                let exact_v = z.cos() / t - z.sin() / (w * t * t);
                assert!(
                    (x - exact_x).abs() < 1e-8 && (v - exact_v).abs() < 1e-8,
                    "t = {t}"
                );
            }
        }
    }
}
