//! The held-step driver: Dormand-Prince 5(4) with the switches of the right-hand side held
//! fixed within each step, for any stage evaluator.
//!
//! Why hold: with the plain right-hand side every switch inside a step is a jump of the
//! derivative; an adaptive solver then shrinks its step until h * jump < atol, and on a
//! sliding surface (a switching surface attracting from both sides, Filippov sliding) it does
//! so at every step, which is how a scipy RK45 run of the network's gradient flow takes
//! 740,000 evaluations. Holding the switches turns a crossing into a switch at the next step
//! boundary (a lag of at most one step) and sliding into chattering of amplitude O(h * jump)
//! around the surface, whose average is the Filippov velocity; `max_step` bounds both. A step
//! that passes step control but ends with changed switches is retaken once with each of them
//! blended (weighted by the share of the step it was on): second-order accurate through
//! transversal crossings, and Filippov's convex combination on a sliding surface, whose
//! chatter still leaves the state O(h) off the surface (a first-order error for gradient
//! flow; the output-space evaluator holds sliding activations on their surfaces instead,
//! `dynamics::output_space`).

use nalgebra::DVector;

use super::control::{blockwise_error, grown, next_step, shrunk, too_many_steps, underflow};
use super::{Cuts, SolverSettings, Stats, StepFailure, Stop};

/// The squared norms of a trial step, per block of the state (one block, or two: position
/// and velocity), from which the driver measures its error (control.rs's norm-wise rule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norms {
    /// Entries per block.
    pub len: usize,
    /// Number of blocks, 1 or 2.
    pub blocks: usize,
    /// |e_B|^2 of the embedded error estimate e = h sum_l E_l k_l.
    pub error: [f64; 2],
    /// |y_B|^2 at the step's start.
    pub start: [f64; 2],
    /// |y_new_B|^2 at its end.
    pub end: [f64; 2],
    /// The trial left y_new's last block and the end norms unformed, `end` at 0
    /// ([`HeldStages::complete`] forms them).
    pub deferred: bool,
}

impl Norms {
    /// The driver's scaled error of these norms; of a deferred trial, an upper bound: the
    /// error falls as each |y_new_B|^2 grows, and the bound takes them at 0 (every operation
    /// of the norm is monotone in them, rounding included).
    fn error(&self, settings: &SolverSettings) -> f64 {
        let b = self.blocks;
        blockwise_error(
            settings,
            self.len,
            &self.error[..b],
            &self.start[..b],
            &self.end[..b],
        )
    }
}

/// A stage evaluator: computes the Dormand-Prince 5(4) stages of one system with its
/// switches held, however it represents them; the driver ([`drive`]) does everything else.
/// The driver calls, for each trial step: `trial`, then (if it passed step control and was
/// not a retake) `blend`; a nonzero return makes it retake the step; then `accept` or
/// `reject`. After a trial that deferred part of its state (`Norms::deferred`), `complete`
/// comes before `accept` or `reject`, and before `blend` unless the error's bound already
/// passes step control.
pub trait HeldStages {
    /// Take hold of the switches at the initial state y at time t.
    fn start(&mut self, t: f64, y: &[f64]);
    /// A trial step of size h from (t, y) under the held (or blended) switches: the
    /// fifth-order solution into `y_new`, and the norms of its error estimate.
    fn trial(&mut self, t: f64, h: f64, y: &[f64], y_new: &mut [f64]) -> Norms;
    /// After a trial that passed step control and was not a retake: blend each switch that
    /// differs between y and y_new by the share of the step it was on, ready for the retake;
    /// returns how many (0: y_new keeps the held switches, no retake).
    fn blend(&mut self, t: f64, h: f64, y: &[f64], y_new: &[f64]) -> u64;
    /// After a `blend` that asked for a retake of a step of size h: the retake's size, h
    /// unless the evaluator cuts the step at a switch it must take exactly there (the
    /// driver then keeps its step size for the step after, at most [`CUT_GROWTH`] times the
    /// cut step).
    fn retake_step(&self, h: f64) -> f64 {
        h
    }
    /// Optional capability, a deferred block: after a trial whose [`Norms::deferred`] is set,
    /// form y_new's last block and return the trial's norms complete, as the trial would have
    /// returned them. The driver calls it before `accept` or `reject`, so neither sees a
    /// deferred state; `blend` may (a step retaken with blended switches never needs that
    /// block, which is what deferring saves).
    fn complete(&mut self, _y: &[f64], _y_new: &mut [f64]) -> Norms {
        unreachable!("complete is called only after a deferred trial")
    }
    /// The trial was accepted: y is the new state at t (the trial's y_new); `retaken` says
    /// whether the step was a retake with blended switches, whose end needs a fresh hold.
    fn accept(&mut self, t: f64, y: &[f64], retaken: bool);
    /// The trial was rejected (a finite error above tolerance): the state stays (t, y); a
    /// rejected retake goes back to the switches of y.
    fn reject(&mut self, t: f64, y: &[f64], retaken: bool);
    /// The observer has seen the state y at the output time t, and more steps follow.
    fn resume(&mut self, _t: f64, _y: &[f64]) {}
    /// The run ended, however.
    fn finish(&mut self) {}
    /// Optional capability, dense output: whether this evaluator can give the state anywhere
    /// inside the step it last accepted ([`HeldStages::interpolate`]). If so the driver steps
    /// through the output times (landing on the last one only) and interpolates each output
    /// state from the accepted step; if not (the default) every step that reaches an output
    /// time is shortened to land on it, and `resume` is called there.
    fn dense_output(&self) -> bool {
        false
    }
    /// Dense output: the state at t0 + theta h (0 < theta <= 1) into `out`, for the step just
    /// accepted from (t0, y0) of size h to y1. Called only if [`HeldStages::dense_output`],
    /// after `accept` and before the next `trial`: an evaluator offering it keeps what it
    /// needs of the accepted step's stages until then (the dense evaluator: k_1 and k_3 ..
    /// k_7, for Dormand-Prince's continuous extension, `tableau::D`). The default is
    /// the chord y0 + theta (y1 - y0).
    fn interpolate(&mut self, theta: f64, _h: f64, y0: &[f64], y1: &[f64], out: &mut [f64]) {
        for ((o, a), b) in out.iter_mut().zip(y0).zip(y1) {
            *o = a + theta * (b - a);
        }
    }
    /// Stage derivatives computed so far (the unit of [`Stats::evaluations`]).
    fn evaluations(&self) -> u64;
    /// Retakes cut short so far, by reason ([`Stats::cuts`]); none by default.
    fn cuts(&self) -> Cuts {
        Cuts::default()
    }
}

/// The step after a retake cut short at a switch ([`HeldStages::retake_step`]) is at most this
/// many times the cut step. Gradient flow's cuts (`dynamics::output_space`) come where the
/// estimated errors of a trial's events exceed a budget; a trial far longer than the cuts
/// meets thousands of sign changes and judges them against the errors of its own length,
/// which overstate those of the cut step. Measured at n = 1000, m = 10,000, T = 0.3: 83 steps
/// against 80 with the trials kept at the controller's h (about 0.04, cut at 2-5%), at a
/// budget a sixth as large, so with the benchmark's accuracy (README, Numerics).
pub const CUT_GROWTH: f64 = 10.0;

/// Integrate from state `y0` at `times[0]` through `times` with held Dormand-Prince 5(4) steps
/// whose stages `stages` computes, calling `observe(t, y)` at every output time (`times[0]`
/// included); `observe` returns false to stop.
///
/// The first step is min(1e-3 (T - t_0), max_step); after an accepted step it grows by
/// 0.9 err^(-1/5) within x0.2 .. x5 (not when the step was shortened to land on an output
/// time; after a retake cut short, [`HeldStages::retake_step`], it stays, at most
/// [`CUT_GROWTH`] times the cut step), after a
/// rejection it shrinks by 0.9 err^(-1/5), at least x0.2; no step exceeds `max_step`. A run ends with
/// [`StepFailure::TooManySteps`] beyond `max_steps` steps in one output interval and
/// [`StepFailure::StepSizeTooSmall`] when a rejected step shrinks to rounding, or cannot
/// shrink because it lands on an output time within rounding of it. A non-finite
/// error estimate ends the run: the trial's state goes to the observer at the output time
/// being aimed at (Stop::Observer if it stops there, else [`StepFailure::NonFinite`]).
///
/// With an evaluator that offers dense output ([`HeldStages::dense_output`]) the steps land
/// on the last output time only; every output time an accepted step passes gets the state
/// interpolated from that step ([`HeldStages::interpolate`]; fourth order for
/// Dormand-Prince's continuous extension, Hairer, Norsett and Wanner I, II.6), and
/// `max_steps` counts the steps between two output times.
pub fn drive<E: HeldStages + ?Sized>(
    stages: &mut E,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (Stats, Stop) {
    let mut stats = Stats::default();
    let mut y = y0;
    let mut t = times[0];
    if !observe(t, &y) {
        return (stats, Stop::Observer { t });
    }
    stages.start(t, y.as_slice());
    let stop = run(
        &mut *stages,
        &mut y,
        &mut t,
        times,
        settings,
        &mut stats,
        observe,
    );
    stages.finish();
    stats.evaluations = stages.evaluations();
    stats.cuts = stages.cuts();
    (stats, stop)
}

/// The driver's loop from the observed initial state; returns why it ended.
fn run<E: HeldStages + ?Sized>(
    stages: &mut E,
    y: &mut DVector<f64>,
    t: &mut f64,
    times: &[f64],
    settings: &SolverSettings,
    stats: &mut Stats,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> Stop {
    let t_last = times[times.len() - 1];
    let dense = stages.dense_output();
    let mut y_new = DVector::zeros(y.len());
    // Dense output's interpolated states.
    let mut y_out = DVector::zeros(if dense { y.len() } else { 0 });
    let mut h = (1e-3 * (t_last - times[0])).min(settings.max_step);
    let mut steps_in_interval = 0u32;
    // The step being retaken with blended switches, if any.
    let mut retake: Option<f64> = None;
    // Whether that retake is cut short (`HeldStages::retake_step`).
    let mut cut = false;
    // The next output time to observe.
    let mut next = 1;
    while next < times.len() {
        // Without dense output every output time is landed on; with it, the last only.
        let target = if dense { t_last } else { times[next] };
        if *t >= target {
            steps_in_interval = 0;
            if !observe(*t, y) {
                return Stop::Observer { t: *t };
            }
            if *t < t_last {
                stages.resume(*t, y.as_slice());
            }
            next += 1;
            continue;
        }
        if let Some(failure) = too_many_steps(steps_in_interval, *t, settings) {
            return Stop::Failed(failure);
        }
        let (step, last) = next_step(retake, h, *t, target, settings);
        let mut norms = stages.trial(*t, step, y.as_slice(), y_new.as_mut_slice());
        let mut err = norms.error(settings);
        // A deferred trial's bound decides a blend as its error would (error <= bound <= 1);
        // anything else needs the trial complete.
        if norms.deferred && !(err <= 1.0 && retake.is_none()) {
            norms = stages.complete(y.as_slice(), y_new.as_mut_slice());
            err = norms.error(settings);
        }
        if err <= 1.0 && retake.is_none() {
            let switched = stages.blend(*t, step, y.as_slice(), y_new.as_slice());
            if switched > 0 {
                stats.switches += switched;
                let short = stages.retake_step(step);
                cut = short < step;
                retake = Some(short);
                continue;
            }
        }
        if norms.deferred {
            norms = stages.complete(y.as_slice(), y_new.as_mut_slice());
            err = norms.error(settings);
        }
        let retaken = retake.take().is_some();
        if err <= 1.0 {
            let t0 = *t;
            *t = if last { target } else { *t + step };
            std::mem::swap(y, &mut y_new);
            stats.accepted_steps += 1;
            steps_in_interval += 1;
            stages.accept(*t, y.as_slice(), retaken);
            if (!last || step >= h) && !(retaken && cut) {
                h = grown(step, err);
            } else if retaken && cut {
                h = h.min(CUT_GROWTH * step);
            }
            cut = false;
            // Dense output: the output times this step passed (the last one is landed on,
            // and observed at the loop's top).
            while dense && next + 1 < times.len() && times[next] <= *t {
                let theta = (times[next] - t0) / step;
                stages.interpolate(
                    theta,
                    step,
                    y_new.as_slice(),
                    y.as_slice(),
                    y_out.as_mut_slice(),
                );
                steps_in_interval = 0;
                if !observe(times[next], &y_out) {
                    return Stop::Observer { t: times[next] };
                }
                next += 1;
            }
        } else if err.is_finite() {
            stats.rejected_steps += 1;
            stages.reject(*t, y.as_slice(), retaken);
            cut = false;
            h = shrunk(step, err);
            // A step landing on an output time within rounding of it cannot shrink (the
            // next would land again): the same trial would be retried forever.
            let stuck = last && next_step(None, h, *t, target, settings).0 == step;
            let stuck = stuck.then_some(StepFailure::StepSizeTooSmall { t: *t });
            if let Some(failure) = underflow(h, *t).or(stuck) {
                return Stop::Failed(failure);
            }
        } else {
            // A non-finite step: the observer sees it at the next output time, and the run
            // ends there whatever it says (the switches of a non-finite state mean nothing).
            *t = times[next];
            std::mem::swap(y, &mut y_new);
            return if observe(*t, y) {
                Stop::Failed(StepFailure::NonFinite { t: *t })
            } else {
                Stop::Observer { t: *t }
            };
        }
    }
    Stop::Completed
}

/// A stage evaluator that tells `on_step(t)` the time of every accepted step, so that a
/// progress display can follow a run between its output times; the steps themselves are the
/// inner evaluator's, bit for bit.
pub struct Watched<E, F> {
    inner: E,
    on_step: F,
}

impl<E: HeldStages, F: FnMut(f64)> Watched<E, F> {
    /// `inner`'s stages, reporting each accepted step's time to `on_step`.
    pub fn new(inner: E, on_step: F) -> Self {
        Watched { inner, on_step }
    }
}

impl<E: HeldStages, F: FnMut(f64)> HeldStages for Watched<E, F> {
    fn start(&mut self, t: f64, y: &[f64]) {
        self.inner.start(t, y);
    }
    fn trial(&mut self, t: f64, h: f64, y: &[f64], y_new: &mut [f64]) -> Norms {
        self.inner.trial(t, h, y, y_new)
    }
    fn blend(&mut self, t: f64, h: f64, y: &[f64], y_new: &[f64]) -> u64 {
        self.inner.blend(t, h, y, y_new)
    }
    fn complete(&mut self, y: &[f64], y_new: &mut [f64]) -> Norms {
        self.inner.complete(y, y_new)
    }
    fn retake_step(&self, h: f64) -> f64 {
        self.inner.retake_step(h)
    }
    fn accept(&mut self, t: f64, y: &[f64], retaken: bool) {
        self.inner.accept(t, y, retaken);
        (self.on_step)(t);
    }
    fn reject(&mut self, t: f64, y: &[f64], retaken: bool) {
        self.inner.reject(t, y, retaken);
    }
    fn resume(&mut self, t: f64, y: &[f64]) {
        self.inner.resume(t, y);
    }
    fn finish(&mut self) {
        self.inner.finish();
    }
    fn dense_output(&self) -> bool {
        self.inner.dense_output()
    }
    fn interpolate(&mut self, theta: f64, h: f64, y0: &[f64], y1: &[f64], out: &mut [f64]) {
        self.inner.interpolate(theta, h, y0, y1, out);
    }
    fn evaluations(&self) -> u64 {
        self.inner.evaluations()
    }
    fn cuts(&self) -> Cuts {
        self.inner.cuts()
    }
}
