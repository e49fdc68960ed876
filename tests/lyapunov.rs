//! Lyapunov functions of the convergence proofs: SPEC.md's identity for dV/dt of NAG's V,
//! monotonicity along error-space trajectories with a fixed kernel, and the loss bounds.

mod common;

use common::small;
use nalgebra::{DMatrix, DVector};
use ntkdyn::dynamics::Damping;
use ntkdyn::integrate::Solver;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, RunConfig, SpaceRun};
use ntkdyn::theory::exact::ExactSolution;
use ntkdyn::theory::lyapunov::{monotonicity, Lyapunov, RISE_TOLERANCE};

/// H(W0) and Delta(0) of a small problem.
fn problem() -> (DMatrix<f64>, DVector<f64>) {
    let setup = study::setup(&small(Optimizer::Nag, 10, 4, 400, 2)).expect("setup");
    let delta0 = setup.model.residual(&setup.w0.as_view());
    (setup.h0, delta0)
}

fn pseudo_loss(h: &DMatrix<f64>, d: &DVector<f64>) -> f64 {
    0.5 * d.dot(&(h * d))
}

#[test]
fn nag_lyapunov_value_has_both_forms_of_spec() {
    let (h, delta0) = problem();
    for (gamma, alpha) in [(3.0, 2.0), (9.0, 4.0), (9.0, 6.0)] {
        let exact = ExactSolution::new(&h, &delta0, Damping::Vanishing(gamma));
        let lyap = Lyapunov::Nag {
            gamma,
            alpha,
            mu: 0.1,
        };
        for t in [0.3, 1.0, 4.0, 11.0] {
            let (d, v) = exact.at(t);
            let lhat = pseudo_loss(&h, &d);
            let got = lyap.value(t, &d, &v, lhat);
            let k = 2.0 * gamma - alpha;
            let second = t.powf(alpha) * lhat
                + k * k * t.powf(alpha - 2.0) / 8.0 * (&d + &v * (2.0 * t / k)).norm_squared();
            assert!(
                common::rel(got, second, 1e-300) < 1e-12,
                "gamma {gamma} alpha {alpha} t {t}: {got:e} vs {second:e}"
            );
        }
        // V(0): (gamma-1)^2 L(0) for alpha = 2, 0 above.
        let v0 = lyap.value(
            0.0,
            &delta0,
            &DVector::zeros(delta0.len()),
            pseudo_loss(&h, &delta0),
        );
        let want = if alpha == 2.0 {
            (gamma - 1.0f64).powi(2) * 0.5 * delta0.norm_squared()
        } else {
            0.0
        };
        assert!(
            (v0 - want).abs() <= 1e-12 * want.max(1.0),
            "V(0) = {v0:e}, want {want:e}"
        );
    }
}

#[test]
fn nag_lyapunov_derivative_obeys_spec_identity_along_exact_solution() {
    let (h, delta0) = problem();
    for (gamma, alpha) in [(3.0, 2.0), (4.0, 2.0), (9.0, 4.0), (9.0, 6.0)] {
        let exact = ExactSolution::new(&h, &delta0, Damping::Vanishing(gamma));
        let lyap = Lyapunov::Nag {
            gamma,
            alpha,
            mu: 0.1,
        };
        let c = (2.0 * gamma - alpha) / 2.0;
        let v_at = |t: f64| {
            let (d, v) = exact.at(t);
            lyap.value(t, &d, &v, pseudo_loss(&h, &d))
        };
        let step = 1e-4;
        let mut worst: f64 = 0.0;
        for k in 1..=60 {
            let t = 0.25 * k as f64;
            let (d, v) = exact.at(t);
            let lhat = pseudo_loss(&h, &d);
            let term1 = -2.0 * (gamma - alpha) * t.powf(alpha - 1.0) * lhat;
            let term2 = (alpha - 2.0) * c / 2.0 * t.powf(alpha - 3.0) * d.dot(&(&d * c + &v * t));
            let fd = (v_at(t + step) - v_at(t - step)) / (2.0 * step);
            let scale = term1.abs() + term2.abs() + 1e-9 * v_at(t).abs();
            worst = worst.max((fd - (term1 + term2)).abs() / scale);
        }
        eprintln!("gamma {gamma} alpha {alpha}: worst relative gap {worst:e}");
        assert!(
            worst < 1e-6,
            "gamma {gamma}, alpha {alpha}: dV/dt differs from the identity by {worst:e} (relative)"
        );
    }
}

#[test]
fn hbf_lyapunov_decays_at_rate_s_when_siegel_condition_holds() {
    // dV/dt + s V = -(s/2)(Delta^T H Delta + |Delta'|^2 - s^2 |Delta|^2) <= 0 when s^2 <= mu.
    let (h, delta0) = problem();
    let mu = ntkdyn::theory::spectrum::extreme_eigenvalues(&h).0;
    let s = mu.sqrt();
    let exact = ExactSolution::new(&h, &delta0, Damping::Constant(2.0 * s));
    let lyap = Lyapunov::Hbf { s, mu };
    let (d0, v0) = exact.at(0.0);
    let start = lyap.value(0.0, &d0, &v0, pseudo_loss(&h, &d0));
    for k in 0..=200 {
        let t = 0.25 * k as f64;
        let (d, v) = exact.at(t);
        let val = lyap.value(t, &d, &v, pseudo_loss(&h, &d));
        let envelope = lyap.envelope(t).expect("hbf has an envelope");
        assert!((envelope - (-s * t).exp()).abs() < 1e-15);
        assert!(
            val <= envelope * start * (1.0 + 1e-10),
            "t {t}: V = {val:e} > exp(-s t) V(0) = {:e}",
            envelope * start
        );
    }
}

/// A run with the exact solver: its samples are the true trajectory.
fn exact_error_run(cfg: &RunConfig) -> SpaceRun {
    let mut cfg = cfg.clone();
    cfg.solver = Solver::Exact;
    study::run(&cfg).expect("run").error.expect("error space")
}

fn ode_error_run(cfg: &RunConfig) -> SpaceRun {
    let mut cfg = cfg.clone();
    cfg.rtol = 1e-10;
    cfg.atol = 1e-14;
    study::run(&cfg).expect("run").error.expect("error space")
}

fn fixed_kernel_config(optimizer: Optimizer) -> RunConfig {
    let mut cfg = small(optimizer, 10, 4, 2000, 2);
    cfg.t_end = 30.0;
    cfg.samples = 301;
    cfg
}

/// The column named `name`.
fn col(run: &SpaceRun, name: &str) -> Vec<f64> {
    run.table
        .column(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

fn assert_nonincreasing(v: &[f64], what: &str) {
    for k in 1..v.len() {
        assert!(
            v[k] <= v[k - 1] * (1.0 + 1e-9) + 1e-300,
            "{what}: V rose at sample {k}: {:e} -> {:e}",
            v[k - 1],
            v[k]
        );
    }
}

fn assert_loss_below_bound(run: &SpaceRun, what: &str) {
    let loss = col(run, "loss");
    let bound = col(run, "loss_bound");
    let mut finite = 0;
    for (k, (l, b)) in loss.iter().zip(&bound).enumerate() {
        if b.is_finite() {
            finite += 1;
            assert!(
                *l <= b * (1.0 + 1e-9),
                "{what}: sample {k}: loss {l:e} > bound {b:e}"
            );
        }
    }
    assert!(
        finite >= loss.len() - 1,
        "{what}: only {finite} finite bounds"
    );
}

#[test]
fn lyapunov_functions_never_rise_along_error_space_flow_with_fixed_kernel() {
    let setup = study::setup(&fixed_kernel_config(Optimizer::Gf)).expect("setup");
    let (lmin, _) = setup.h0_extremes;
    eprintln!("lambda0 = {}, lambda_min(H0) = {lmin}", setup.lambda0);
    let mut hbf_siegel = fixed_kernel_config(Optimizer::Hbf);
    // s = b/2 with s^2 = lambda_min(H0)/2: Siegel's condition holds with room.
    hbf_siegel.friction = Some(2.0 * (lmin / 2.0).sqrt());
    for (cfg, what) in [
        (fixed_kernel_config(Optimizer::Gf), "gf"),
        (
            fixed_kernel_config(Optimizer::Hbf),
            "hbf default b = sqrt(2 lambda0)",
        ),
        (hbf_siegel, "hbf b = sqrt(2 lambda_min(H0))"),
        (fixed_kernel_config(Optimizer::Nag), "nag gamma 3 alpha 2"),
    ] {
        let exact = exact_error_run(&cfg);
        assert_nonincreasing(&col(&exact, "lyapunov"), &format!("{what} (exact)"));
        assert!(
            exact.monotonicity.nonincreasing,
            "{what} (exact): {:?}",
            exact.monotonicity
        );
        let ode = ode_error_run(&cfg);
        assert!(
            ode.monotonicity.nonincreasing,
            "{what} (ode): {:?}",
            ode.monotonicity
        );
        assert!(ode.monotonicity.max_relative_rise <= RISE_TOLERANCE);
        assert_eq!(ode.monotonicity.nonincreasing_after, 0.0);
        assert_nonincreasing(&col(&ode, "lyapunov"), &format!("{what} (ode)"));
        // The loss actually fell: the test has teeth.
        let loss = col(&exact, "loss");
        assert!(
            loss[loss.len() - 1] < 0.5 * loss[0],
            "{what}: loss {:e} -> {:e}",
            loss[0],
            loss[loss.len() - 1]
        );
    }
}

#[test]
fn gf_lyapunov_in_error_space_is_exp_two_mu_t_times_loss() {
    let cfg = fixed_kernel_config(Optimizer::Gf);
    let run = exact_error_run(&cfg);
    let mu = ntkdyn::theory::spectrum::extreme_eigenvalues(&study::setup(&cfg).unwrap().h0).0;
    for row in &run.table.rows {
        let (t, loss, v, bound) = (row[0], row[1], row[3], row[4]);
        assert!(common::rel(v, (2.0 * mu * t).exp() * loss, 1e-300) < 1e-12);
        assert!(common::rel(bound, (-2.0 * mu * t).exp() * run.table.rows[0][1], 1e-300) < 1e-12);
    }
}

#[test]
fn loss_stays_below_its_bound_in_error_space() {
    let setup = study::setup(&fixed_kernel_config(Optimizer::Gf)).expect("setup");
    let (lmin, _) = setup.h0_extremes;
    let mut hbf_siegel = fixed_kernel_config(Optimizer::Hbf);
    hbf_siegel.friction = Some(2.0 * (lmin / 2.0).sqrt());
    let mut nag4 = fixed_kernel_config(Optimizer::Nag);
    nag4.gamma = 4.0;
    for (cfg, what) in [
        (fixed_kernel_config(Optimizer::Gf), "gf"),
        (hbf_siegel, "hbf with s^2 <= mu"),
        (fixed_kernel_config(Optimizer::Nag), "nag gamma 3"),
        (nag4, "nag gamma 4"),
    ] {
        assert_loss_below_bound(&exact_error_run(&cfg), &format!("{what} (exact)"));
        assert_loss_below_bound(&ode_error_run(&cfg), &format!("{what} (ode)"));
    }
}

#[test]
fn nag_lyapunov_with_alpha_above_two_starts_at_zero_and_is_nonincreasing_only_after_a_while() {
    let mut cfg = fixed_kernel_config(Optimizer::Nag);
    cfg.gamma = 9.0;
    cfg.alpha = 6.0;
    for run in [exact_error_run(&cfg), ode_error_run(&cfg)] {
        let v = col(&run, "lyapunov");
        assert_eq!(v[0], 0.0, "V(0) = 0 for alpha > 2");
        assert!(v[1] > 0.0);
        let mono = &run.monotonicity;
        eprintln!("{:?}: {mono:?}", run.solver);
        assert!(!mono.nonincreasing, "{mono:?}");
        let after = mono.nonincreasing_after;
        assert!(after > 0.0 && after < cfg.t_end, "{mono:?}");
        // The reported time is right: V never rises after it, and it rose at that sample.
        let t = col(&run, "t");
        let k0 = t.iter().position(|&s| s == after).expect("a sample time");
        assert!(
            v[k0] > v[k0 - 1] * (1.0 + RISE_TOLERANCE),
            "no rise at t = {after}"
        );
        assert_nonincreasing(&v[k0..], "nag alpha 6 after nonincreasing_after");
    }
}

#[test]
fn monotonicity_reports_the_last_rise_and_the_largest_relative_rise() {
    let t = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
    let m = monotonicity(&t, &[4.0, 3.0, 3.3, 2.0, 2.1, 1.0]);
    assert!(!m.nonincreasing);
    assert_eq!(m.nonincreasing_after, 4.0);
    assert!(
        (m.max_relative_rise - 0.1).abs() < 1e-12,
        "{}",
        m.max_relative_rise
    );
    let m = monotonicity(
        &t,
        &[4.0, 3.0, 3.0, 2.0, 2.0 * (1.0 + 0.5 * RISE_TOLERANCE), 1.0],
    );
    assert!(m.nonincreasing && m.nonincreasing_after == 0.0, "{m:?}");
    let m = monotonicity(&t, &[0.0, 1.0, 5.0, 4.0, 3.0, 2.0]);
    assert!(!m.nonincreasing);
    assert_eq!(m.nonincreasing_after, 2.0);
    assert!((m.max_relative_rise - 4.0).abs() < 1e-12);
}
