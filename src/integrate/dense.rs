//! The dense stage evaluator: each stage a full right-hand side of a [`SwitchingSystem`], in
//! place (no allocation per step).

use nalgebra::DVector;

use super::held::{drive, HeldStages, Norms, Watched};
use super::tableau as dp5;
use super::{OdeSystem, SolverSettings, Stats, Stop, SwitchingSystem};

/// Stages k_0 .. k_6 of the system's right-hand side with its switches held.
struct Dense<'a, F: SwitchingSystem + ?Sized> {
    system: &'a F,
    k: Vec<Vec<f64>>,
    stage: Vec<f64>,
    evaluations: u64,
    /// Dense output ([`HeldStages::interpolate`]): after `accept`, k[6] holds the accepted
    /// step's first stage and k[2..6] its middle ones; its last stage is in k[0] (first same
    /// as last) or, when the next step needed a fresh first stage, in `last`.
    dense: bool,
    last: Vec<f64>,
    last_moved: bool,
}

impl<'a, F: SwitchingSystem + ?Sized> Dense<'a, F> {
    /// The stages of `system` on states of `dim` entries, with dense output if `dense`.
    fn new(system: &'a F, dim: usize, dense: bool) -> Self {
        Dense {
            system,
            k: vec![vec![0.0; dim]; 7],
            stage: vec![0.0; dim],
            evaluations: 0,
            dense,
            last: vec![0.0; if dense { dim } else { 0 }],
            last_moved: false,
        }
    }

    /// k_0 = f(t, y) under the switches held now.
    fn first_stage(&mut self, t: f64, y: &[f64]) {
        self.system.rhs(t, y, &mut self.k[0]);
        self.evaluations += 1;
    }
}

impl<F: SwitchingSystem + ?Sized> HeldStages for Dense<'_, F> {
    fn start(&mut self, t: f64, y: &[f64]) {
        self.system.hold(y);
        self.first_stage(t, y);
    }

    fn trial(&mut self, t: f64, step: f64, y: &[f64], y_new: &mut [f64]) -> Norms {
        let k = &mut self.k;
        for s in 1..7 {
            // Stage input y + h sum_l A[s][l] k_l, one vector sweep per term.
            let (done, rest) = k.split_at_mut(s);
            let input = if s == 6 {
                &mut *y_new
            } else {
                &mut self.stage[..]
            };
            input.copy_from_slice(y);
            for (l, kl) in done.iter().enumerate() {
                let c = step * dp5::A[s][l];
                if c != 0.0 {
                    input.iter_mut().zip(kl).for_each(|(v, kv)| *v += c * kv);
                }
            }
            self.system.rhs(t + dp5::C[s] * step, input, &mut rest[0]);
            self.evaluations += 1;
        }
        // Embedded error estimate h sum_l E[l] k_l, measured block by block.
        let dim = y.len();
        let blocks = self.system.blocks();
        let len = dim / blocks;
        let (mut e2, mut y2, mut yn2) = ([0.0f64; 2], [0.0f64; 2], [0.0f64; 2]);
        for j in 0..dim {
            let e: f64 = k.iter().zip(dp5::E).map(|(kl, el)| step * el * kl[j]).sum();
            e2[j / len] += e * e;
            y2[j / len] += y[j] * y[j];
            yn2[j / len] += y_new[j] * y_new[j];
        }
        Norms {
            len,
            blocks,
            error: e2,
            start: y2,
            end: yn2,
            deferred: false,
        }
    }

    fn blend(&mut self, t: f64, _h: f64, y: &[f64], y_new: &[f64]) -> u64 {
        let crossed = self.system.blend(y, y_new);
        if crossed > 0 {
            self.first_stage(t, y);
        }
        crossed
    }

    fn accept(&mut self, t: f64, y: &[f64], retaken: bool) {
        // A step accepted without a retake found no switch: y keeps the held switches.
        let flips = if retaken { self.system.hold(y) } else { 0 };
        if self.dense {
            // Keep the step's stages for `interpolate`, whatever the next step starts with.
            self.k.swap(0, 6);
            self.last_moved = flips > 0 || retaken;
            if self.last_moved {
                std::mem::swap(&mut self.k[0], &mut self.last);
                self.first_stage(t, y);
            }
        } else if flips > 0 || retaken {
            self.first_stage(t, y);
        } else {
            // First same as last: the last stage is f(t + h, y_new) under the same switches.
            self.k.swap(0, 6);
        }
    }

    fn dense_output(&self) -> bool {
        self.dense
    }

    fn interpolate(&mut self, theta: f64, h: f64, y0: &[f64], y1: &[f64], out: &mut [f64]) {
        let k = &self.k;
        let (first, last) = (&k[6], if self.last_moved { &self.last } else { &k[0] });
        let one = 1.0 - theta;
        for j in 0..out.len() {
            let r1 = y1[j] - y0[j];
            let r2 = h * first[j] - r1;
            let r3 = r1 - h * last[j] - r2;
            let sum = dp5::D[0] * first[j]
                + dp5::D[2] * k[2][j]
                + dp5::D[3] * k[3][j]
                + dp5::D[4] * k[4][j]
                + dp5::D[5] * k[5][j]
                + dp5::D[6] * last[j];
            let r4 = h * sum;
            out[j] = y0[j] + theta * (r1 + one * (r2 + theta * (r3 + one * r4)));
        }
    }

    fn reject(&mut self, t: f64, y: &[f64], retaken: bool) {
        if retaken {
            // Back to the switches of the step's start.
            self.system.hold(y);
            self.first_stage(t, y);
        }
    }

    fn finish(&mut self) {
        self.system.release();
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }
}

/// Dormand-Prince 5(4) with the system's switches held within each step (see [`drive`]),
/// every stage a full right-hand side: integrate `system` from `y0` at `times[0]` through
/// `times`, calling `observe(t, y)` at every output time; `observe` returns false to stop.
///
/// Weight-space runs take these same steps in output space
/// ([`crate::dynamics::output_space`], about a fifth of the flops); this version works for any
/// [`SwitchingSystem`] and is that evaluator's test oracle (with
/// [`crate::dynamics::output_space::Crossings::Blend`], the crossing rule used here).
pub fn integrate_held<F: SwitchingSystem>(
    system: F,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (Stats, Stop) {
    let dim = y0.len();
    let mut stages = Dense::new(&system, dim, false);
    drive(&mut stages, y0, times, settings, observe)
}

/// A right-hand side without switches, seen as a [`SwitchingSystem`] that never switches.
struct Smooth<F>(F);

impl<F: OdeSystem> OdeSystem for Smooth<F> {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.0.rhs(t, y, dy);
    }
    fn blocks(&self) -> usize {
        self.0.blocks()
    }
}

impl<F: OdeSystem> SwitchingSystem for Smooth<F> {}

/// How [`integrate_smooth`] reaches the output times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outputs {
    /// Every step that would pass an output time is shortened to land on it: the output
    /// states are the steps' fifth-order ends, and no step is longer than the output spacing.
    Land,
    /// The steps go through the output times (landing on the last only), each output state
    /// interpolated from the step that passed it (Dormand-Prince's continuous extension,
    /// fourth order): the step follows the tolerance alone.
    Interpolate,
}

/// Dormand-Prince 5(4) for a smooth right-hand side, in place: integrate `system` from `y0`
/// at `times[0]` through `times` (the output states as `outputs` says; steps capped by
/// `settings.max_step`), calling `on_step(t)` after every accepted step and `observe(t, y)` at
/// every output time; `observe` returns false to stop. Every stage is a full right-hand side,
/// the last stage of a step the first of the next (first same as last).
pub fn integrate_smooth<F: OdeSystem>(
    system: F,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    outputs: Outputs,
    on_step: impl FnMut(f64),
    observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (Stats, Stop) {
    let dim = y0.len();
    let system = Smooth(system);
    let dense = outputs == Outputs::Interpolate;
    let stages = Dense::new(&system, dim, dense);
    drive(
        &mut Watched::new(stages, on_step),
        y0,
        times,
        settings,
        observe,
    )
}

#[cfg(test)]
mod tests {
    use super::{Dense, HeldStages, OdeSystem, Smooth};

    /// x'' = -x as [x, v]' = [v, -x]: x = cos t, v = -sin t from (1, 0).
    struct Rotation;

    impl OdeSystem for Rotation {
        fn rhs(&self, _t: f64, y: &[f64], dy: &mut [f64]) {
            dy[0] = y[1];
            dy[1] = -y[0];
        }
    }

    /// The error of one step of size h from the exact state: at the step's end (fifth order,
    /// local error h^6) and of the continuous extension at theta h (fourth order, h^5).
    fn one_step_errors(h: f64, theta: f64) -> (f64, f64) {
        let system = Smooth(Rotation);
        let mut stages = Dense::new(&system, 2, true);
        let y0 = [1.0, 0.0];
        let mut y1 = [0.0; 2];
        stages.start(0.0, &y0);
        stages.trial(0.0, h, &y0, &mut y1);
        stages.accept(h, &y1, false);
        let mut mid = [0.0; 2];
        stages.interpolate(theta, h, &y0, &y1, &mut mid);
        let error = |y: [f64; 2], t: f64| (y[0] - t.cos()).hypot(y[1] + t.sin());
        (error(y1, h), error(mid, theta * h))
    }

    #[test]
    fn continuous_extension_is_exact_at_both_ends_of_a_step() {
        let system = Smooth(Rotation);
        let mut stages = Dense::new(&system, 2, true);
        let (y0, mut y1) = ([1.0, 0.0], [0.0; 2]);
        stages.start(0.0, &y0);
        stages.trial(0.0, 0.3, &y0, &mut y1);
        stages.accept(0.3, &y1, false);
        let mut out = [0.0; 2];
        stages.interpolate(0.0, 0.3, &y0, &y1, &mut out);
        assert_eq!(out, y0);
        stages.interpolate(1.0, 0.3, &y0, &y1, &mut out);
        assert!((out[0] - y1[0]).abs() < 1e-16 && (out[1] - y1[1]).abs() < 1e-16);
    }

    #[test]
    fn continuous_extension_survives_a_fresh_first_stage_after_a_retake() {
        // After a retaken step the next first stage is computed anew; the accepted step's
        // last stage moves aside and the interpolation is the same.
        let system = Smooth(Rotation);
        let mut out = [[0.0; 2]; 2];
        for (retaken, o) in [false, true].into_iter().zip(&mut out) {
            let mut stages = Dense::new(&system, 2, true);
            let (y0, mut y1) = ([1.0, 0.0], [0.0; 2]);
            stages.start(0.0, &y0);
            stages.trial(0.0, 0.3, &y0, &mut y1);
            stages.accept(0.3, &y1, retaken);
            stages.interpolate(0.4, 0.3, &y0, &y1, o);
        }
        assert_eq!(out[0], out[1]);
    }

    #[test]
    fn continuous_extension_has_order_four_inside_a_step() {
        // Halving h divides the interpolation's local error by 2^5 (order four), the step's
        // end error by 2^6 (order five).
        // (Larger h is not yet asymptotic inside; smaller h puts the end's error at rounding.)
        for theta in [0.3, 0.5, 0.8] {
            let e: Vec<(f64, f64)> = [0.4, 0.2, 0.1, 0.05, 0.025]
                .iter()
                .map(|&h| one_step_errors(h, theta))
                .collect();
            for pair in e[..3].windows(2) {
                let end = (pair[0].0 / pair[1].0).log2();
                assert!((end - 6.0).abs() < 0.3, "end: {end} from {e:?}");
            }
            for pair in e[1..].windows(2) {
                let inside = (pair[0].1 / pair[1].1).log2();
                assert!(
                    (inside - 5.0).abs() < 0.3,
                    "theta {theta}: {inside} from {e:?}"
                );
            }
        }
    }
}
