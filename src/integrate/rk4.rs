//! The classical Runge-Kutta method of order 4 with a fixed step, in place.
//!
//! It replaces ode_solvers' Rk4, which kept every step (`--step 1e-6` allocated 3 GB) and
//! panicked on the step count of a tiny step (an unwrap at 1e-300, a capacity overflow at
//! 1e-19). The arithmetic is ode_solvers' own, operation for operation, so results are the
//! same to the bit; an output interval that needs more than `max_steps` steps is refused.

use nalgebra::DVector;

use super::{OdeSystem, SolverSettings, Stats, StepFailure};

/// Steps of length at most `step` over an output interval of length `span`, as Rk4 takes
/// them: n = ceil(span / step) (at least 1), then ceil(span / (span / n)) steps of
/// span / n, which rounding can make n + 1 (ode_solvers' count, kept for its bits). None when
/// that is not finite or exceeds `max_steps`: a validator can refuse `--step` with this
/// before a run (span = T / (samples - 1)).
pub fn fixed_steps(span: f64, step: f64, max_steps: u32) -> Option<(u32, f64)> {
    let n = (span / step).ceil().max(1.0);
    let h = span / n;
    let count = (span / h).ceil();
    (count <= f64::from(max_steps)).then_some((count as u32, h))
}

/// Stage buffers, allocated once per run.
pub(super) struct Scratch {
    k: [Vec<f64>; 4],
    buffer: Vec<f64>,
}

impl Scratch {
    pub(super) fn new(dim: usize) -> Scratch {
        Scratch {
            k: std::array::from_fn(|_| vec![0.0; dim]),
            buffer: vec![0.0; dim],
        }
    }
}

/// y at t0 becomes y at t1, by [`fixed_steps`]'s steps.
pub(super) fn advance<F: OdeSystem + ?Sized>(
    system: &F,
    t0: f64,
    t1: f64,
    y: &mut DVector<f64>,
    s: &SolverSettings,
    stats: &mut Stats,
    scratch: &mut Scratch,
) -> Result<(), StepFailure> {
    let (count, h) =
        fixed_steps(t1 - t0, s.step, s.max_steps).ok_or(StepFailure::TooManySteps {
            t: t0,
            steps: s.max_steps,
        })?;
    let half = h / 2.0;
    let y = y.as_mut_slice();
    let Scratch { k, buffer } = scratch;
    let mut x = t0;
    for _ in 0..count {
        system.rhs(x, y, &mut k[0]);
        fill(buffer, y, &k[0], half);
        system.rhs(x + half, buffer, &mut k[1]);
        fill(buffer, y, &k[1], half);
        system.rhs(x + half, buffer, &mut k[2]);
        fill(buffer, y, &k[2], h);
        system.rhs(x + h, buffer, &mut k[3]);
        x += h;
        for (i, yi) in y.iter_mut().enumerate() {
            *yi += (k[0][i] + k[1][i] * 2.0 + k[2][i] * 2.0 + k[3][i]) * (h / 6.0);
        }
        stats.evaluations += 4;
        stats.accepted_steps += 1;
    }
    Ok(())
}

/// buffer = y + step k.
fn fill(buffer: &mut [f64], y: &[f64], k: &[f64], step: f64) {
    buffer
        .iter_mut()
        .zip(y.iter().zip(k))
        .for_each(|(b, (yi, ki))| *b = *yi + *ki * step);
}
