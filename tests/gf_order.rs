//! Gradient flow's switching error in weight space against the step cap: the held-pattern
//! steps slide along activation surfaces with Filippov's velocity (`dynamics::output_space`,
//! `Crossings::Corrected`), where the plain blend (`Crossings::Blend`) chatters around them.
//!
//! Measured on this problem (rtol 1e-10, against a cap of 0.025/32 at rtol 1e-12, which a cap
//! of 0.025/64 meets to 5e-10): caps 0.025, 0.0125, 0.00625 give 1.5e-6, 2.7e-7, 8.3e-8
//! (fitted order 2.08); the blend 2.0e-4, 9.5e-5, 4.5e-5 (order 1.08). Before the step's
//! crossings were judged in time order per neuron with cuts at the events that switch
//! non-tangentially (`events`), the same caps gave 2.4e-6, 5.3e-7, 5.1e-7 (order 1.1): every
//! cap down to 0.0015625 put a crossing and a join of one neuron in one step, judged them in
//! entry order, and landed on another branch, 3.2e-7 relative off. At the coarse caps 0.1 and
//! 0.05 the tolerance, not the cap, sets most steps (69 and 87 steps to T = 4, against 162 at
//! 0.025), so they say little about the order: 5.8e-6, 4.7e-6 there.

use nalgebra::DVector;
use ntkdyn::dynamics::output_space::{integrate_output_space, Crossings};
use ntkdyn::dynamics::Damping;
use ntkdyn::integrate::{output_times, Stats, Stop};
use ntkdyn::model::Model;

mod common;

/// Losses at t = 0.5, 1, ..., 4 of gradient flow with steps of at most `cap` (tolerances
/// tight enough that the cap alone sets the error).
fn losses(
    model: &Model,
    y0: &DVector<f64>,
    crossings: Crossings,
    (cap, rtol): (f64, f64),
) -> (Vec<f64>, Stats) {
    let settings = common::capped_dopri5(rtol, rtol * 1e-3, cap);
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
fn gradient_flow_sliding_on_activation_surfaces_converges_at_second_order_in_the_step_cap() {
    // n = 20 points in d = 5, m = 200, T = 4: a few hundred activations cross and many slide.
    let (model, y0) = common::crossing_problem(Damping::None);
    let (h, rtol) = (0.025, 1e-10);
    let caps = [h, h / 2.0, h / 4.0];
    let (reference, stats) = losses(&model, &y0, Crossings::Corrected, (h / 32.0, 1e-12));
    assert!(stats.switches > 100, "too few crossings: {stats:?}");
    // Half the reference's cap lands on the same branch: no decision flips below 0.025 / 16.
    let coarser = losses(&model, &y0, Crossings::Corrected, (h / 16.0, 1e-12)).0;
    let branch = worst(&coarser, &reference);
    assert!(branch < 3e-8, "caps h/16 and h/32 differ by {branch:.2e}");
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
        "sliding: errors {errors:?}, order {order:.2}; blend: {blend:?}, order {blend_order:.2}; \
         h/16 vs h/32 {branch:.2e}"
    );
    // Measured 2.13 (issue 20's goal: second order).
    assert!(order >= 1.7, "order {order:.2}, errors {errors:?}");
    assert!(
        blend_order < 1.3,
        "the blend's order {blend_order:.2}, {blend:?}"
    );
    for (e, b) in errors.iter().zip(&blend) {
        assert!(*e < b / 50.0, "{errors:?} vs the blend's {blend:?}");
    }
}
