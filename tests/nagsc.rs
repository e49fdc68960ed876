//! NAG with constant momentum (nagsc): its twin is SPEC's recurrence, its error-space modes
//! contract by |r|^2 = beta (1 - eta lambda) when underdamped, and it approaches heavy ball
//! with friction (its low-resolution ODE) at first order in sqrt(eta).

mod common;

use common::small;
use nalgebra::DMatrix;
use ntkdyn::integrate::Stop;
use ntkdyn::model::relu2::engine::Workspace;
use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::optimizer::twin::{self as discrete, Twin};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, SpaceChoice};

#[test]
fn nagsc_twin_is_the_recurrence_x_next_y_minus_eta_grad_y_next_extrapolated_to_1e12() {
    let data = Data::synthetic(6, 3, 2);
    let net = InitialNetwork::init(40, 3, 2);
    let model = Model::new(data, net.a);
    let (eta, beta, t_end) = (0.04, 0.8, 2.0);
    let run = discrete::run(&model, &net.w, Twin::nesterov_constant(beta), eta, t_end);
    // x_{k+1} = y_k - eta grad L(y_k), y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k), x_0 = y_0.
    let mut ws = Workspace::new(model.m(), model.n(), model.d());
    let mut g = DMatrix::zeros(model.m(), model.d());
    let (mut x, mut y) = (net.w.clone(), net.w.clone());
    assert_eq!(run.iterates.len(), 11, "t = k sqrt(eta) up to 2");
    for it in &run.iterates {
        let loss = model.loss(&x.as_view());
        assert!((it.t - it.k as f64 * eta.sqrt()).abs() < 1e-15);
        assert!(
            (it.loss - loss).abs() <= 1e-12 * loss,
            "k = {}: {} against {loss}",
            it.k,
            it.loss
        );
        model.gradient_into(&y.as_view(), &mut g.as_view_mut(), &mut ws);
        let next = &y - &g * eta;
        y = &next + (&next - &x) * beta;
        x = next;
    }
}

/// One eigenmode of error space under NAG-SC: x_{k+1} = (1 - eta lambda) y_k,
/// y_{k+1} = x_{k+1} + beta (x_{k+1} - x_k). Its roots solve
/// r^2 - (1 + beta)(1 - eta lambda) r + beta (1 - eta lambda) = 0; underdamped, |r|^2 is
/// their product beta (1 - eta lambda), and the Hankel determinant x_k x_{k+2} - x_{k+1}^2
/// of the iterates grows by exactly that factor per step.
#[test]
fn an_underdamped_nagsc_mode_contracts_by_beta_times_one_minus_eta_lambda_per_step() {
    let (eta, lambda, beta) = (0.01_f64, 2.0_f64, 0.9_f64);
    let q = 1.0 - eta * lambda;
    let p = (1.0 + beta) * q;
    assert!(p * p < 4.0 * beta * q, "the mode is underdamped");
    let (mut x, mut y) = (1.0_f64, 1.0_f64);
    let mut xs = vec![x];
    for _ in 0..60 {
        let next = q * y;
        y = next + beta * (next - x);
        x = next;
        xs.push(x);
    }
    let hankel = |k: usize| xs[k] * xs[k + 2] - xs[k + 1] * xs[k + 1];
    let steps = 50;
    let measured = (hankel(steps) / hankel(0)).powf(1.0 / steps as f64);
    assert!(
        (measured - beta * q).abs() < 1e-12,
        "|r|^2 = {measured}, beta (1 - eta lambda) = {}",
        beta * q
    );
    // The envelope of x_k decays like |r|^k = (beta q)^(k/2): the modulus of the roots.
    let r = (beta * q).sqrt();
    let amplitude = |k: usize| (hankel(k).abs()).sqrt() / r.powi(k as i32);
    assert!((amplitude(steps) / amplitude(0) - 1.0).abs() < 1e-9);
}

/// Largest |L_twin(t_k) - L_hbf(t_k)| / L(0) over the ODE's sample times.
fn gap_to_hbf(eta: f64) -> f64 {
    let mut cfg = small(Optimizer::Nagsc, 10, 4, 1000, 0);
    cfg.space = SpaceChoice::Weight;
    cfg.t_end = 4.0;
    cfg.samples = 21;
    cfg.rtol = 1e-10;
    cfg.atol = 1e-13;
    cfg.max_step = Some(0.01);
    cfg.discrete = true;
    cfg.eta = eta;
    let report = study::run(&cfg).expect("run");
    let ode = report.weight.as_ref().expect("weight space");
    assert_eq!(ode.stop, Stop::Completed);
    let d = report.discrete.as_ref().expect("discrete twin");
    assert!(d.diverged_at.is_none());
    assert_eq!(d.twin.optimizer(), Optimizer::Nagsc);
    let clock = d.twin.time(1, eta);
    let l0 = ode.table.rows[0][1];
    let mut worst: f64 = 0.0;
    for row in &ode.table.rows {
        let it = d.iterates[(row[0] / clock).round() as usize];
        assert!((it.t - row[0]).abs() < 1e-9);
        worst = worst.max((it.loss - row[1]).abs() / l0);
    }
    worst
}

#[test]
fn nagsc_approaches_heavy_ball_with_friction_at_first_order_in_sqrt_eta() {
    // sqrt(eta) = 0.2, 0.1, 0.05: the clock k sqrt(eta) lands on every sample (spacing 0.2).
    let gaps: Vec<f64> = [0.04, 0.01, 0.0025].map(gap_to_hbf).to_vec();
    eprintln!("NAG-SC vs HBF gaps {gaps:?}");
    for p in gaps.windows(2) {
        let ratio = p[0] / p[1];
        assert!(
            (1.6..=2.4).contains(&ratio),
            "ratio {ratio} for a halved sqrt(eta): {gaps:?}"
        );
    }
}
