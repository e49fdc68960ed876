//! The dense stage evaluator: each stage a full right-hand side of a [`SwitchingSystem`], in
//! place (no allocation per step).

use nalgebra::DVector;

use super::held::{drive, HeldStages, Norms};
use super::tableau as dp5;
use super::{SolverSettings, Stats, Stop, SwitchingSystem};

/// Stages k_0 .. k_6 of the system's right-hand side with its switches held.
struct Dense<'a, F: SwitchingSystem + ?Sized> {
    system: &'a F,
    k: Vec<Vec<f64>>,
    stage: Vec<f64>,
    evaluations: u64,
}

impl<F: SwitchingSystem + ?Sized> Dense<'_, F> {
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
        if flips > 0 || retaken {
            self.first_stage(t, y);
        } else {
            // First same as last: the last stage is f(t + h, y_new) under the same switches.
            self.k.swap(0, 6);
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
    let mut stages = Dense {
        system: &system,
        k: vec![vec![0.0; dim]; 7],
        stage: vec![0.0; dim],
        evaluations: 0,
    };
    drive(&mut stages, y0, times, settings, observe)
}
