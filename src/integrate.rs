//! Integrators that know nothing of networks: they advance a [`Flow`] through the output
//! times and hand each state to an observer, so that outputs stream instead of piling up.
//!
//! The adaptive solvers are ode_solvers' Dopri5 (Dormand-Prince 5(4)) and Dop853
//! (Dormand-Prince 8(5,3)); Rk4 is the classical fixed-step method. Each output interval
//! [t_k, t_{k+1}] is one solver run ending exactly on t_{k+1}, whose last accepted step is the
//! output (sparse output). ode_solvers 0.6.2's dense output is not used: with the output
//! spacing equal to the interval it returned y(50) = 2.4e5 for y' = -y, y(0) = 1.
//!
//! References:
//! 1. E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I", 2nd ed., 1993.

use nalgebra::DVector;
use ode_solvers::{Dop853, Dopri5, OutputType, Rk4};

use crate::dynamics::{Flow, Space};

/// The integration method.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    /// Dormand-Prince 5(4), adaptive.
    Dopri5,
    /// Dormand-Prince 8(5,3), adaptive.
    Dop853,
    /// Classical Runge-Kutta 4 with fixed step --step.
    Rk4,
    /// Exact eigen-mode solution (error space only).
    Exact,
}

impl Solver {
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Dopri5 => "dopri5",
            Solver::Dop853 => "dop853",
            Solver::Rk4 => "rk4",
            Solver::Exact => "exact",
        }
    }
}

/// Tolerances and step of a run.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct SolverSettings {
    pub solver: Solver,
    pub rtol: f64,
    pub atol: f64,
    /// Fixed step of Rk4 (shortened so that every output time is hit exactly).
    pub step: f64,
    /// Most internal steps allowed per output interval (adaptive solvers).
    pub max_steps: u32,
    /// Largest step of the held-pattern integrator (weight space).
    pub max_step: f64,
}

/// Work done by a solver: right-hand-side evaluations and steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SolverStats {
    /// Right-hand-side evaluations (stages); in weight space with dopri5, stages taken in
    /// output space (O(n^2) each, see [`crate::linear`]).
    pub evaluations: u64,
    pub accepted_steps: u64,
    pub rejected_steps: u64,
    /// Activation signs (pairs r, i) that changed between accepted steps, summed over the run
    /// (counted by the held-pattern integrator only).
    pub sign_changes: u64,
}

impl SolverStats {
    fn add(&mut self, s: ode_solvers::dop_shared::Stats) {
        self.evaluations += u64::from(s.num_eval);
        self.accepted_steps += u64::from(s.accepted_steps);
        self.rejected_steps += u64::from(s.rejected_steps);
    }
}

impl std::fmt::Display for SolverStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} evaluations, {} accepted steps, {} rejected",
            self.evaluations, self.accepted_steps, self.rejected_steps
        )
    }
}

/// Why an integration ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// Every output time was reached.
    Completed,
    /// The observer asked to stop after the state at this time (e.g. it was not finite).
    Observer { t: f64 },
    /// The solver failed on the interval starting at t.
    Failed { t: f64, msg: String },
}

/// Output times: K points evenly on [0, T], both ends included.
pub fn output_times(t_end: f64, samples: usize) -> Vec<f64> {
    let k = samples.max(2);
    (0..k)
        .map(|i| {
            if i + 1 == k {
                t_end
            } else {
                t_end * i as f64 / (k - 1) as f64
            }
        })
        .collect()
}

/// Integrate `flow` from state `y0` at times[0] through `times`, calling `observe(t, y)` at
/// every output time (times[0] included); `observe` returns false to stop.
pub fn integrate<S: Space>(
    flow: Flow<'_, S>,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (SolverStats, Stop) {
    let mut stats = SolverStats::default();
    let mut y = y0;
    if !observe(times[0], &y) {
        return (stats, Stop::Observer { t: times[0] });
    }
    for win in times.windows(2) {
        let (t0, t1) = (win[0], win[1]);
        let step = advance(flow, t0, t1, &y, settings, &mut stats);
        match step {
            Ok(next) => y = next,
            Err(msg) => return (stats, Stop::Failed { t: t0, msg }),
        }
        if !observe(t1, &y) {
            return (stats, Stop::Observer { t: t1 });
        }
    }
    (stats, Stop::Completed)
}

fn advance<S: Space>(
    flow: Flow<'_, S>,
    t0: f64,
    t1: f64,
    y: &DVector<f64>,
    s: &SolverSettings,
    stats: &mut SolverStats,
) -> Result<DVector<f64>, String> {
    let span = t1 - t0;
    let last = |out: &Vec<DVector<f64>>| out.last().cloned().ok_or_else(|| "no output".to_string());
    // The two adaptive solvers of ode_solvers take the same parameters in the same order.
    macro_rules! adaptive {
        ($solver:ident, $beta:expr, $fac1:expr, $fac2:expr) => {{
            let mut solver = $solver::from_param(
                flow,
                t0,
                t1,
                span,
                y.clone(),
                s.rtol,
                s.atol,
                0.9,
                $beta,
                $fac1,
                $fac2,
                span,
                0.0,
                s.max_steps,
                u32::MAX,
                OutputType::Sparse,
            );
            stats.add(solver.integrate().map_err(|e| e.to_string())?);
            last(solver.y_out())
        }};
    }
    match s.solver {
        // Safety factor 0.9 and Hairer's own step-control constants (beta, fac1, fac2) for
        // each: 0.04, 0.2, 10 for DOPRI5; 0, 0.333, 6 for DOP853. First step: the interval.
        Solver::Dopri5 => adaptive!(Dopri5, 0.04, 0.2, 10.0),
        Solver::Dop853 => adaptive!(Dop853, 0.0, 0.333, 6.0),
        Solver::Rk4 => {
            let steps = (span / s.step).ceil().max(1.0);
            let mut solver = Rk4::new(flow, t0, y.clone(), t1, span / steps);
            stats.add(solver.integrate().map_err(|e| e.to_string())?);
            last(solver.y_out())
        }
        Solver::Exact => Err("the exact solver is not an ODE integrator".into()),
    }
}

/// Dormand-Prince 5(4) coefficients (Hairer, Norsett, Wanner, Table II.5.2).
pub(crate) mod dp5 {
    pub const C: [f64; 7] = [0.0, 0.2, 0.3, 0.8, 8.0 / 9.0, 1.0, 1.0];
    pub const A: [[f64; 6]; 7] = [
        [0.0; 6],
        [0.2, 0.0, 0.0, 0.0, 0.0, 0.0],
        [3.0 / 40.0, 9.0 / 40.0, 0.0, 0.0, 0.0, 0.0],
        [44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0, 0.0, 0.0, 0.0],
        [
            19372.0 / 6561.0,
            -25360.0 / 2187.0,
            64448.0 / 6561.0,
            -212.0 / 729.0,
            0.0,
            0.0,
        ],
        [
            9017.0 / 3168.0,
            -355.0 / 33.0,
            46732.0 / 5247.0,
            49.0 / 176.0,
            -5103.0 / 18656.0,
            0.0,
        ],
        [
            35.0 / 384.0,
            0.0,
            500.0 / 1113.0,
            125.0 / 192.0,
            -2187.0 / 6784.0,
            11.0 / 84.0,
        ],
    ];
    /// b (5th order) minus b-hat (4th order): the embedded error estimate.
    pub const E: [f64; 7] = [
        71.0 / 57600.0,
        0.0,
        -71.0 / 16695.0,
        71.0 / 1920.0,
        -17253.0 / 339200.0,
        22.0 / 525.0,
        -1.0 / 40.0,
    ];
}

/// The scaled error of a held-pattern step, norm-wise per block of the state (W, or W and V):
/// sqrt(mean_B |e_B|^2 / (N sc_B^2)) with sc_B = atol + rtol max(rms y_B, rms y_new_B), from
/// the blocks' squared norms (each block N entries). Norm-wise rather than entry-wise so the
/// output-space steps can take |e|^2 from n x n quantities without forming e in weight space
/// (Hairer, Norsett and Wanner I, II.4 allow either).
pub(crate) fn blockwise_error(
    settings: &SolverSettings,
    len: usize,
    e2: &[f64],
    y2: &[f64],
    y_new2: &[f64],
) -> f64 {
    let n = len as f64;
    let mean = e2
        .iter()
        .zip(y2.iter().zip(y_new2))
        .map(|(e, (a, b))| {
            let sc = settings.atol + settings.rtol * (a.max(*b) / n).sqrt();
            e / (n * sc * sc)
        })
        .sum::<f64>()
        / e2.len() as f64;
    mean.sqrt()
}

/// The failure of a held-pattern run with more than `max_steps` steps in one output interval.
pub(crate) fn too_many_steps(steps: u32, t: f64, settings: &SolverSettings) -> Option<Stop> {
    (steps > settings.max_steps).then(|| Stop::Failed {
        t,
        msg: format!(
            "more than {} steps in one output interval",
            settings.max_steps
        ),
    })
}

/// The failure of a held-pattern run whose step, after a rejection, shrank to rounding at t.
pub(crate) fn underflow(h: f64, t: f64) -> Option<Stop> {
    (h < 1e-14 * t.abs().max(1.0)).then(|| Stop::Failed {
        t,
        msg: "step size underflow".into(),
    })
}

/// The next step from t toward the output time `target`: the retake's step if retaking, else
/// h capped at max_step; shortened to land on `target` when it would reach it (within
/// rounding), which the returned flag says.
pub(crate) fn next_step(
    retake: Option<f64>,
    h: f64,
    t: f64,
    target: f64,
    settings: &SolverSettings,
) -> (f64, bool) {
    let step = retake.unwrap_or_else(|| h.min(settings.max_step));
    if t + step >= target - 1e-12 * target.abs().max(1.0) {
        (target - t, true)
    } else {
        (step, false)
    }
}

/// The next step after an accepted one of size `step` with scaled error `err` <= 1: the
/// fifth-order controller 0.9 err^(-1/5), at most x5 and at least x0.2 (Hairer et al. II.4).
pub(crate) fn grown(step: f64, err: f64) -> f64 {
    if err == 0.0 {
        step * 5.0
    } else {
        step * (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
    }
}

/// The retry after a rejected step (err > 1): 0.9 err^(-1/5), at least x0.2.
pub(crate) fn shrunk(step: f64, err: f64) -> f64 {
    step * (0.9 * err.powf(-0.2)).max(0.2)
}

/// Dormand-Prince 5(4) in place (no allocation per step), with the space's switching
/// structure held fixed within each step: the ReLU activation pattern is taken at the start
/// of a step and kept for all its stages, so the right-hand side the step sees is smooth
/// (linear in W for gradient flow) and the error estimate measures smooth-flow error only.
///
/// Why: with the plain right-hand side every activation sign change inside a step is a jump
/// of the derivative; an adaptive solver then shrinks its step until h * jump < atol, and on a
/// sliding surface (w_r . x_i = 0 attracting from both sides, Filippov sliding) it does so at
/// every step, which is how a scipy RK45 run of gradient flow takes 740,000 evaluations.
/// Holding the pattern turns a crossing into a switch at the next step boundary (a lag of at
/// most one step) and sliding into chattering of amplitude O(h * jump) around the surface,
/// whose average is the Filippov velocity; `max_step` bounds both.
///
/// Weight-space runs take these same steps in output space ([`crate::linear`], about a fifth
/// of the flops); this version works for any [`Space`] and is that integrator's test oracle
/// (with [`crate::linear::Crossings::Blend`], the crossing rule used here).
pub fn integrate_held<S: Space>(
    flow: Flow<'_, S>,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (SolverStats, Stop) {
    let mut stats = SolverStats::default();
    let dim = y0.len();
    let mut y = y0;
    let mut t = times[0];
    if !observe(t, &y) {
        return (stats, Stop::Observer { t });
    }
    let mut k: Vec<Vec<f64>> = vec![vec![0.0; dim]; 7];
    let mut stage = vec![0.0; dim];
    let mut y_new = vec![0.0; dim];
    let space = flow.space;
    space.hold_pattern(y.as_slice());
    flow.rhs(t, y.as_slice(), &mut k[0]);
    stats.evaluations += 1;
    let span = times[times.len() - 1] - times[0];
    let mut h = (1e-3 * span).min(settings.max_step);
    let mut steps_in_interval = 0u32;
    // The step being retaken with a blended pattern, if any.
    let mut retake: Option<f64> = None;
    for &target in &times[1..] {
        while t < target {
            if let Some(stop) = too_many_steps(steps_in_interval, t, settings) {
                space.release_pattern();
                return (stats, stop);
            }
            let (step, last) = next_step(retake, h, t, target, settings);
            for s in 1..7 {
                // Stage input y + h sum_l A[s][l] k_l, one vector sweep per term.
                let (done, rest) = k.split_at_mut(s);
                let input = if s == 6 { &mut y_new } else { &mut stage };
                input.copy_from_slice(y.as_slice());
                for (l, kl) in done.iter().enumerate() {
                    let c = step * dp5::A[s][l];
                    if c != 0.0 {
                        input.iter_mut().zip(kl).for_each(|(v, kv)| *v += c * kv);
                    }
                }
                flow.rhs(t + dp5::C[s] * step, input, &mut rest[0]);
                stats.evaluations += 1;
            }
            // Embedded error estimate h sum_l E[l] k_l, measured block by block.
            let blocks = if flow.damping.second_order() { 2 } else { 1 };
            let len = dim / blocks;
            let (mut e2, mut y2, mut yn2) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
            for j in 0..dim {
                let e: f64 = k.iter().zip(dp5::E).map(|(kl, el)| step * el * kl[j]).sum();
                e2[j / len] += e * e;
                y2[j / len] += y[j] * y[j];
                yn2[j / len] += y_new[j] * y_new[j];
            }
            let err = blockwise_error(settings, len, &e2[..blocks], &y2[..blocks], &yn2[..blocks]);
            if err <= 1.0 && retake.is_none() {
                let crossed = space.blend_pattern(y.as_slice(), &y_new);
                if crossed > 0 {
                    // Retake the same step with each crossing activation weighted by the share
                    // of the step it was on: second-order accurate through transversal
                    // crossings, and Filippov's convex combination on a sliding surface.
                    stats.sign_changes += crossed;
                    retake = Some(step);
                    flow.rhs(t, y.as_slice(), &mut k[0]);
                    stats.evaluations += 1;
                    continue;
                }
            }
            let retaken = retake.take().is_some();
            if err <= 1.0 {
                t = if last { target } else { t + step };
                y.as_mut_slice().copy_from_slice(&y_new);
                stats.accepted_steps += 1;
                steps_in_interval += 1;
                // A step accepted without a retake found no crossing: y keeps the held pattern.
                let flips = if retaken {
                    space.hold_pattern(y.as_slice())
                } else {
                    0
                };
                if flips > 0 || retaken {
                    flow.rhs(t, y.as_slice(), &mut k[0]);
                    stats.evaluations += 1;
                } else {
                    // First same as last: the last stage is f(t + h, y_new) under the same pattern.
                    k.swap(0, 6);
                }
                if !last || step >= h {
                    h = grown(step, err);
                }
            } else if err.is_finite() {
                stats.rejected_steps += 1;
                if retaken {
                    // Back to the pattern of the step's start.
                    space.hold_pattern(y.as_slice());
                    flow.rhs(t, y.as_slice(), &mut k[0]);
                    stats.evaluations += 1;
                }
                h = shrunk(step, err);
                if let Some(stop) = underflow(h, t) {
                    space.release_pattern();
                    return (stats, stop);
                }
            } else {
                // A non-finite stage: hand the state to the observer, which stops the run.
                t = target;
                y.as_mut_slice().copy_from_slice(&y_new);
            }
        }
        steps_in_interval = 0;
        if !observe(t, &y) {
            space.release_pattern();
            return (stats, Stop::Observer { t });
        }
    }
    space.release_pattern();
    (stats, Stop::Completed)
}
