//! Gradient flow's switching error in weight space against the step cap: the held-pattern
//! steps slide along activation surfaces with Filippov's velocity (`dynamics::output_space`,
//! `Crossings::Corrected`), where the plain blend (`Crossings::Blend`) chatters around them.
//! Measured on this problem (caps 0.1, 0.05, 0.025, rtol 1e-10): sliding 7.5e-6, 4.7e-6,
//! 2.1e-6 (fitted order 0.91), the blend 6.6e-4, 3.8e-4, 2.0e-4 (0.86). The goal of second
//! order is not reached yet: the error is ~90x smaller but still first order. Cutting steps
//! at crossings that break a slide left these three errors as they were. Below the caps
//! tested, the result jumps by 1.4e-6 between caps 0.0015625 and 0.00078125 (final loss
//! 4.3223219 vs 4.3223205). A trace put the jump at one neuron: a crossing and a join fall
//! in the same step, and they are judged in entry order, not time order.

use nalgebra::DVector;
use ntkdyn::dynamics::output_space::{integrate_output_space, Crossings};
use ntkdyn::dynamics::{Damping, Flow, WeightSpace};
use ntkdyn::integrate::{output_times, Solver, SolverSettings, Stats, Stop};
use ntkdyn::model::{Data, InitialNetwork, Model};

mod common;

/// n = 20 points in d = 5, m = 200, T = 4: a few hundred activations cross and many slide.
fn problem() -> (Model, DVector<f64>) {
    let net = InitialNetwork::init(200, 5, 7);
    let model = Model::new(Data::synthetic(20, 5, 7), net.a.clone());
    let y0 = {
        let space = WeightSpace::new(&model);
        Flow::new(&space, Damping::None).initial_state(net.w.as_slice())
    };
    (model, y0)
}

/// Losses at t = 0.5, 1, ..., 4 of gradient flow with steps of at most `cap` (tolerances
/// tight enough that the cap alone sets the error).
fn losses(
    model: &Model,
    y0: &DVector<f64>,
    crossings: Crossings,
    (cap, rtol): (f64, f64),
) -> (Vec<f64>, Stats) {
    let settings = SolverSettings {
        solver: Solver::Dopri5,
        rtol,
        atol: rtol * 1e-3,
        step: 0.01,
        max_steps: 10_000_000,
        max_step: cap,
    };
    let mut out = Vec::new();
    let (stats, stop) = integrate_output_space(
        model,
        Damping::None,
        y0.clone(),
        &output_times(4.0, 9),
        &settings,
        crossings,
        |_, y| {
            out.push(model.loss(&model.weights(y.as_slice())));
            true
        },
    );
    assert_eq!(stop, Stop::Completed);
    (out, stats)
}

fn worst(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| common::rel(*x, *y, 1e-300))
        .fold(0.0, f64::max)
}

#[test]
fn gradient_flow_sliding_on_activation_surfaces_converges_in_the_step_cap_far_below_the_blend() {
    let (model, y0) = problem();
    let (h, rtol) = (0.1, 1e-10);
    let caps = [h, h / 2.0, h / 4.0];
    let (reference, stats) = losses(&model, &y0, Crossings::Corrected, (h / 64.0, 1e-12));
    assert!(stats.switches > 100, "too few crossings: {stats:?}");
    let errors: Vec<f64> = caps
        .iter()
        .map(|&h| {
            worst(
                &losses(&model, &y0, Crossings::Corrected, (h, rtol)).0,
                &reference,
            )
        })
        .collect();
    let blend: Vec<f64> = caps
        .iter()
        .map(|&h| {
            worst(
                &losses(&model, &y0, Crossings::Blend, (h, rtol)).0,
                &reference,
            )
        })
        .collect();
    let order = common::loglog_slope(&caps, &errors);
    let blend_order = common::loglog_slope(&caps, &blend);
    eprintln!(
        "sliding: errors {errors:?}, order {order:.2}; blend: {blend:?}, order {blend_order:.2}"
    );
    // Second order is the goal (issue 20); measured 0.92 here, so this guards what holds.
    assert!(order >= 0.8, "order {order:.2}, errors {errors:?}");
    for (e, b) in errors.iter().zip(&blend) {
        assert!(*e < b / 50.0, "{errors:?} vs the blend's {blend:?}");
    }
}
