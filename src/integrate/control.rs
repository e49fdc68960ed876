//! Step control of the held-step driver: the error norm, the step-size rules and the checks
//! that end a run (Hairer, Norsett and Wanner I, II.4).

use super::{SolverSettings, StepFailure};

/// The scaled error of a held step, norm-wise per block of the state (W, or W and V):
/// sqrt(mean_B |e_B|^2 / (N sc_B^2)) with sc_B = atol + rtol max(rms y_B, rms y_new_B), from
/// the blocks' squared norms (each block N entries). Norm-wise rather than entry-wise so the
/// output-space steps can take |e|^2 from n x n quantities without forming e in weight space
/// (Hairer, Norsett and Wanner I, II.4 allow either).
pub(super) fn blockwise_error(
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

/// The failure of a run with more than `max_steps` steps in one output interval.
pub(super) fn too_many_steps(steps: u32, t: f64, settings: &SolverSettings) -> Option<StepFailure> {
    (steps > settings.max_steps).then_some(StepFailure::TooManySteps {
        t,
        steps: settings.max_steps,
    })
}

/// The failure of a run whose step, after a rejection, shrank to rounding at t.
pub(super) fn underflow(h: f64, t: f64) -> Option<StepFailure> {
    (h < 1e-14 * t.abs().max(1.0)).then_some(StepFailure::StepSizeTooSmall { t })
}

/// The next step from t toward the output time `target`: the retake's step if retaking, else
/// h capped at max_step; shortened to land on `target` when it would reach it (within
/// rounding), which the returned flag says.
pub(super) fn next_step(
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
pub(super) fn grown(step: f64, err: f64) -> f64 {
    if err == 0.0 {
        step * 5.0
    } else {
        step * (0.9 * err.powf(-0.2)).clamp(0.2, 5.0)
    }
}

/// The retry after a rejected step (err > 1): 0.9 err^(-1/5), at least x0.2.
pub(super) fn shrunk(step: f64, err: f64) -> f64 {
    step * (0.9 * err.powf(-0.2)).max(0.2)
}
