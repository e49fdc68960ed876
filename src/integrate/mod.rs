//! Integrators that know nothing of networks: they advance a system y' = f(t, y) through the
//! output times and hand each state to an observer, so that outputs stream instead of piling up.
//!
//! Two families:
//! - [`integrate`]: ode_solvers' Dopri5 (Dormand-Prince 5(4)) and Dop853 (Dormand-Prince
//!   8(5,3)), and the classical fixed-step Rk4 (in place), for any [`OdeSystem`].
//!   Each output interval [t_k, t_{k+1}] is one solver run ending exactly on t_{k+1}, whose
//!   last accepted step is the output (sparse output). ode_solvers 0.6.2's dense output is not
//!   used: with the output spacing equal to the interval it returned y(50) = 2.4e5 for y' = -y,
//!   y(0) = 1.
//! - [`drive`]: one held-step Dormand-Prince 5(4) driver for right-hand sides with switches
//!   (a Filippov system: smooth except across switching surfaces). It owns step control, the
//!   retake of a step through switches, landing on the output times, the too-many-steps and
//!   underflow checks and non-finite steps; a stage evaluator ([`HeldStages`]) computes the
//!   stages of a step with the switches held. [`integrate_held`] drives the dense evaluator
//!   (full right-hand sides of any [`SwitchingSystem`]); the weight-space flow's output-space
//!   evaluator lives beside the network ([`crate::dynamics::output_space`]). An evaluator may
//!   offer dense output ([`HeldStages::dense_output`]): the driver then steps through the
//!   output times and interpolates them; [`integrate_smooth`] drives the dense evaluator for
//!   smooth right-hand sides, landing on the output times or interpolating them
//!   (Dormand-Prince's continuous extension, fourth order).
//!
//! Files: `control.rs` (error norm and step-size rules), `tableau.rs` (Dormand-Prince 5(4)),
//! `held.rs` (the driver), `dense.rs` (the dense evaluator), `adapters.rs` (ode_solvers),
//! `rk4.rs` (fixed step, in place), `test_systems.rs` (the integrators on y' = -y, a damped
//! oscillator and one switching surface with a crossing and sliding; unit tests).
//!
//! References:
//! 1. E. Hairer, S. P. Norsett, G. Wanner, "Solving Ordinary Differential Equations I", 2nd ed., 1993.
//! 2. A. F. Filippov, "Differential Equations with Discontinuous Righthand Sides", 1988.

use nalgebra::DVector;

mod adapters;
mod control;
mod dense;
mod held;
mod rk4;
pub(crate) mod tableau;
#[cfg(test)]
mod test_systems;

pub use dense::{integrate_held, integrate_smooth, Outputs};
pub use held::{drive, HeldStages, Norms, Watched, CUT_GROWTH};
pub use rk4::fixed_steps;

/// A right-hand side y' = f(t, y).
pub trait OdeSystem {
    /// dy = f(t, y), written into the caller's buffer.
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]);
    /// Blocks of equal length the state splits into for the error norm (1, or 2 for a
    /// position and a velocity); each block is measured norm-wise ([`Norms`]).
    fn blocks(&self) -> usize {
        1
    }
}

/// A right-hand side with switches: smooth except where a switching function of the state
/// changes sign. The switches can be held, which makes the right-hand side smooth, and blended
/// (each replaced by the share of a step it was on), which makes it Filippov's convex
/// combination on a sliding surface.
pub trait SwitchingSystem: OdeSystem {
    /// Hold the switches at those of y, so that [`OdeSystem::rhs`] is smooth until the next
    /// call; returns how many switches changed since the last hold. Systems without switches
    /// return 0.
    fn hold(&self, _y: &[f64]) -> u64 {
        0
    }
    /// For a step from y0 to y1 taken with the switches of y0: replace each held switch whose
    /// switching function changed sign between y0 and y1 by the share of the step it was on
    /// (the crossing placed by linear interpolation), so that a retaken step integrates the
    /// time average of the switching field; returns how many changed. A return of 0 means y1
    /// has the held switches: no hold is needed after the step.
    fn blend(&self, _y0: &[f64], _y1: &[f64]) -> u64 {
        0
    }
    /// Go back to the plain (unheld) right-hand side.
    fn release(&self) {}
}

/// The integration method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Every solver, in the order of `--solver`'s help.
    pub const ALL: [Solver; 4] = [Solver::Dopri5, Solver::Dop853, Solver::Rk4, Solver::Exact];

    /// The name of `--solver` and of summary.json.
    pub fn name(&self) -> &'static str {
        match self {
            Solver::Dopri5 => "dopri5",
            Solver::Dop853 => "dop853",
            Solver::Rk4 => "rk4",
            Solver::Exact => "exact",
        }
    }

    /// One line: what the solver is (the help of `--solver`).
    pub fn description(&self) -> &'static str {
        match self {
            Solver::Dopri5 => "Dormand-Prince 5(4), adaptive",
            Solver::Dop853 => "Dormand-Prince 8(5,3), adaptive",
            Solver::Rk4 => "Classical Runge-Kutta 4 with fixed step --step",
            Solver::Exact => "Exact eigen-mode solution (error space only)",
        }
    }

    /// The solver [`Solver::name`] names.
    pub fn from_name(name: &str) -> Option<Solver> {
        Solver::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for Solver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no solver's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a solver ({names})", names = Solver::ALL.map(|s| s.name()).join(", "))]
pub struct UnknownSolver(pub String);

impl std::str::FromStr for Solver {
    type Err = UnknownSolver;
    fn from_str(s: &str) -> Result<Solver, UnknownSolver> {
        Solver::from_name(s).ok_or_else(|| UnknownSolver(s.to_string()))
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
    /// Most steps allowed per output interval (adaptive solvers, and Rk4, which refuses an
    /// interval that needs more: see [`fixed_steps`]).
    pub max_steps: u32,
    /// Largest step of the held-step driver (weight space).
    pub max_step: f64,
}

impl SolverSettings {
    /// Whether Rk4 can take every output interval of `times` within `max_steps` steps of
    /// `step` ([`fixed_steps`]); the failure a run would stop with otherwise. Other solvers
    /// pass. For a validator, before a run.
    pub fn check_fixed_steps(&self, times: &[f64]) -> Result<(), StepFailure> {
        if self.solver != Solver::Rk4 {
            return Ok(());
        }
        match times
            .windows(2)
            .find(|w| fixed_steps(w[1] - w[0], self.step, self.max_steps).is_none())
        {
            Some(w) => Err(StepFailure::TooManySteps {
                t: w[0],
                steps: self.max_steps,
            }),
            None => Ok(()),
        }
    }
}

/// Work done by an integrator.
///
/// The unit of `evaluations` is one stage derivative k_s = f(t + c_s h, Y_s) computed, on
/// every path: ode_solvers' count, four per Rk4 step, and for the held-step driver each stage
/// its evaluator computes (the dense evaluator reuses a step's last stage as the next step's
/// first when the switches did not change, and computes the first again after a hold; the
/// output-space evaluator computes all seven stages of every trial, each from n x n
/// quantities). What one unit costs is the evaluator's: a full right-hand side (about
/// 4 n m d flops in weight space) for the dense evaluator, O(n^2) for the output-space one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Stage derivatives computed (see above).
    pub evaluations: u64,
    pub accepted_steps: u64,
    pub rejected_steps: u64,
    /// Switches found changed at the end of a step that passed step control, summed over the
    /// run; each such step was retaken with them blended (held-step driver only).
    pub switches: u64,
    /// Retakes cut short at an event, by the evaluator's reason ([`Cuts`]; gradient flow's
    /// output-space evaluator only). Not written to summary.json.
    #[serde(skip)]
    pub cuts: Cuts,
}

/// Retakes of the held-step driver cut short at an event ([`HeldStages::retake_step`]), by
/// the event the output-space evaluator of gradient flow cut at (`dynamics::output_space`,
/// `events`): which of its rules make most of a run's steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cuts {
    /// A crossing that breaks a slide, followed by another crossing of its neuron in the step.
    pub break_then_cross: u64,
    /// A join that makes another surface of its neuron let go.
    pub join_release: u64,
    /// Several events of a sliding or joining neuron whose bent path's errors exceed the
    /// budget (`Bends`).
    pub bends: u64,
    /// A slide break taken as two pieces whose error exceeds the budget (`Break`).
    pub break_pieces: u64,
    /// A slide break after a join of its neuron in the step (first-order estimate).
    pub break_after_join: u64,
    /// Of all these, the cuts at an event that is always cut (no error estimate).
    pub forced: u64,
}

impl Cuts {
    /// All cut retakes.
    pub fn total(&self) -> u64 {
        self.break_then_cross
            + self.join_release
            + self.bends
            + self.break_pieces
            + self.break_after_join
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} evaluations, {} accepted steps, {} rejected",
            self.evaluations, self.accepted_steps, self.rejected_steps
        )?;
        let c = &self.cuts;
        if c.total() > 0 {
            write!(
                f,
                ", {} cut ({} always; a break then a crossing {}, a join releasing {}, bends {}, a break's pieces {}, a break after a join {})",
                c.total(),
                c.forced,
                c.break_then_cross,
                c.join_release,
                c.bends,
                c.break_pieces,
                c.break_after_join
            )?;
        }
        Ok(())
    }
}

/// Why an integration ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Stop {
    /// Every output time was reached.
    Completed,
    /// The observer asked to stop after the state at this time (e.g. it was not finite).
    Observer { t: f64 },
    /// A step could not be taken.
    Failed(StepFailure),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Completed => write!(f, "completed"),
            Stop::Observer { t } => write!(f, "stopped by the observer at t = {t}"),
            Stop::Failed(failure) => write!(f, "{failure}"),
        }
    }
}

/// Why a step could not be taken; each prints as one line naming the time.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum StepFailure {
    /// After a rejection the step shrank to rounding (the held-step driver: below
    /// 1e-14 max(|t|, 1)).
    #[error("step size underflow at t = {t}")]
    StepSizeTooSmall { t: f64 },
    /// More than `steps` steps in the output interval that t lies in (for Rk4: the interval
    /// starting at t needs more than `steps` steps of --step).
    #[error("more than {steps} steps in one output interval (at t = {t})")]
    TooManySteps { t: f64, steps: u32 },
    /// A step ended in a non-finite state (or error estimate), handed to the observer at t,
    /// which did not stop the run; the run ends there.
    #[error("non-finite state at t = {t}")]
    NonFinite { t: f64 },
    /// ode_solvers' stiffness test tripped at t.
    #[error("the problem seems to become stiff at t = {t}")]
    Stiff { t: f64 },
    /// [`Solver::Exact`] is not an ODE integrator.
    #[error("the exact solver is not an ODE integrator")]
    NotAnIntegrator,
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

/// Integrate `system` from state `y0` at `times[0]` through `times` with the solver of
/// `settings` (Dopri5, Dop853 or Rk4), calling `observe(t, y)` at every output time
/// (`times[0]` included); `observe` returns false to stop.
pub fn integrate<F: OdeSystem>(
    system: F,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (Stats, Stop) {
    let mut stats = Stats::default();
    let mut y = y0;
    if !observe(times[0], &y) {
        return (stats, Stop::Observer { t: times[0] });
    }
    let mut fixed = rk4::Scratch::new(y.len());
    for win in times.windows(2) {
        let (t0, t1) = (win[0], win[1]);
        let step = match settings.solver {
            Solver::Dopri5 | Solver::Dop853 => {
                adapters::advance(&system, t0, t1, &y, settings, &mut stats).map(|next| y = next)
            }
            Solver::Rk4 => rk4::advance(&system, t0, t1, &mut y, settings, &mut stats, &mut fixed),
            Solver::Exact => Err(StepFailure::NotAnIntegrator),
        };
        if let Err(failure) = step {
            return (stats, Stop::Failed(failure));
        }
        if !observe(t1, &y) {
            return (stats, Stop::Observer { t: t1 });
        }
    }
    (stats, Stop::Completed)
}
