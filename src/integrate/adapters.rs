//! ode_solvers' adaptive solvers (Dopri5, Dop853) over one output interval.
//!
//! ode_solvers' sparse output keeps every accepted step of a run (one run per output
//! interval here), so a run's memory is its accepted steps in one interval times the state;
//! `max_steps` bounds them.

use nalgebra::DVector;
use ode_solvers::dop_shared::IntegrationError;
use ode_solvers::{Dop853, Dopri5, OutputType, System};

use super::{OdeSystem, Solver, SolverSettings, Stats, StepFailure};

/// An [`OdeSystem`] seen as an ode_solvers system.
struct Adapter<'a, F: ?Sized>(&'a F);

impl<F: OdeSystem + ?Sized> System<f64, DVector<f64>> for Adapter<'_, F> {
    fn system(&self, t: f64, y: &DVector<f64>, dy: &mut DVector<f64>) {
        self.0.rhs(t, y.as_slice(), dy.as_mut_slice());
    }
}

impl Stats {
    fn add(&mut self, s: ode_solvers::dop_shared::Stats) {
        self.evaluations += u64::from(s.num_eval);
        self.accepted_steps += u64::from(s.accepted_steps);
        self.rejected_steps += u64::from(s.rejected_steps);
    }
}

/// ode_solvers' failures, typed.
fn failure(e: IntegrationError) -> StepFailure {
    match e {
        IntegrationError::MaxNumStepReached { x, n_step } => StepFailure::TooManySteps {
            t: x,
            steps: n_step,
        },
        IntegrationError::StepSizeUnderflow { x } => StepFailure::StepSizeTooSmall { t: x },
        IntegrationError::StiffnessDetected { x } => StepFailure::Stiff { t: x },
    }
}

/// The state at t1 from y at t0 by Dopri5 or Dop853.
pub(super) fn advance<F: OdeSystem + ?Sized>(
    system: &F,
    t0: f64,
    t1: f64,
    y: &DVector<f64>,
    s: &SolverSettings,
    stats: &mut Stats,
) -> Result<DVector<f64>, StepFailure> {
    let span = t1 - t0;
    // Sparse output holds at least the initial state.
    let last = |out: &Vec<DVector<f64>>| out.last().cloned().unwrap_or_else(|| y.clone());
    // The two adaptive solvers of ode_solvers take the same parameters in the same order.
    macro_rules! adaptive {
        ($solver:ident, $beta:expr, $fac1:expr, $fac2:expr) => {{
            let mut solver = $solver::from_param(
                Adapter(system),
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
            stats.add(solver.integrate().map_err(failure)?);
            Ok(last(solver.y_out()))
        }};
    }
    match s.solver {
        // Safety factor 0.9 and Hairer's own step-control constants (beta, fac1, fac2) for
        // each: 0.04, 0.2, 10 for DOPRI5; 0, 0.333, 6 for DOP853. First step: the interval.
        Solver::Dopri5 => adaptive!(Dopri5, 0.04, 0.2, 10.0),
        Solver::Dop853 => adaptive!(Dop853, 0.0, 0.333, 6.0),
        Solver::Rk4 | Solver::Exact => Err(StepFailure::NotAnIntegrator),
    }
}
