//! Stiff error space (issue 20): above lambda_max T = 300 (sqrt(lambda_max) T for
//! second-order flows) error space is solved exactly unless a solver was asked for, says so
//! in summary.json, and the exact solution is what dopri5 converges to.

mod common;

use common::small;
use ntkdyn::integrate::Solver;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::summary::Summary;
use ntkdyn::study::{self, RunConfig};

/// n = 60 points in d = 4: lambda_max(H(0)) is about 5, so T = 80 is lambda_max T ~ 400.
fn problem(optimizer: Optimizer, t_end: f64) -> RunConfig {
    let mut cfg = small(optimizer, 60, 4, 300, 1);
    cfg.t_end = t_end;
    cfg.samples = 9;
    cfg.progress = false;
    cfg
}

fn lambda_max(cfg: &RunConfig) -> f64 {
    study::setup(cfg).expect("setup").h0_extremes.1
}

#[test]
fn a_stiff_error_space_is_solved_exactly_and_summary_json_says_why() {
    let cfg = problem(Optimizer::Gf, 80.0);
    let stiffness = lambda_max(&cfg) * cfg.t_end;
    assert!(stiffness > 300.0, "the problem is not stiff: {stiffness}");
    let report = study::run(&cfg).expect("run");
    let e = report.error.as_ref().expect("error space");
    assert_eq!(e.solver, Solver::Exact);
    assert_eq!(e.stats.evaluations, 0);
    let note = e.solver_note.as_deref().expect("the switch is reported");
    assert!(
        note.starts_with(&format!(
            "exact (stiff: lambda_max T = {stiffness:.1} > 300"
        )),
        "{note}"
    );
    let json = Summary::of(&report).to_json();
    assert!(
        json.contains("\"solver_note\": \"exact (stiff: lambda_max T = "),
        "{json}"
    );
    assert!(report
        .setup
        .warnings
        .iter()
        .any(|w| w.starts_with("stiff problem: error space is solved exact (stiff")));
}

#[test]
fn a_requested_solver_is_kept_however_stiff_and_converges_to_the_exact_solution() {
    let mut cfg = problem(Optimizer::Gf, 80.0);
    cfg.solver_requested = true;
    cfg.rtol = 1e-9;
    cfg.atol = 1e-12;
    let ode = study::run(&cfg).expect("run");
    let e = ode.error.as_ref().expect("error space");
    assert_eq!(e.solver, Solver::Dopri5);
    assert_eq!(e.solver_note, None);
    // lambda_max T ~ 400: dopri5's steps are held near the stability limit 3.3 / lambda_max.
    assert!(e.stats.accepted_steps as f64 > lambda_max(&cfg) * cfg.t_end / 3.5);
    cfg.solver_requested = false;
    let exact = study::run(&cfg).expect("run");
    let x = exact.error.as_ref().expect("error space");
    assert_eq!(x.solver, Solver::Exact);
    let (a, b) = (
        e.table.column("loss").unwrap(),
        x.table.column("loss").unwrap(),
    );
    assert_eq!(a.len(), cfg.samples);
    for (k, (ode, exact)) in a.iter().zip(&b).enumerate() {
        let gap = (ode - exact).abs() / exact.abs().max(1e-12);
        assert!(gap < 1e-6, "sample {k}: dopri5 {ode} exact {exact}");
    }
    assert!(e.exact_max_relative_error.unwrap() < 1e-6);
}

#[test]
fn below_the_threshold_and_for_second_order_flows_by_their_own_rate_dopri5_stays() {
    // gf at T = 20: lambda_max T ~ 100.
    let cfg = problem(Optimizer::Gf, 20.0);
    assert!(lambda_max(&cfg) * cfg.t_end < 300.0);
    let e = study::run(&cfg).expect("run").error.expect("error space");
    assert_eq!((e.solver, e.solver_note), (Solver::Dopri5, None));
    // hbf at T = 80: lambda_max T ~ 400 but sqrt(lambda_max) T ~ 180, below 300.
    let cfg = problem(Optimizer::Hbf, 80.0);
    assert!(lambda_max(&cfg).sqrt() * cfg.t_end < 300.0);
    let e = study::run(&cfg).expect("run").error.expect("error space");
    assert_eq!(e.solver, Solver::Dopri5);
}

#[test]
fn a_large_error_space_is_solved_on_a_krylov_space_that_agrees_with_the_decomposition() {
    use ntkdyn::dynamics::Damping;
    use ntkdyn::theory::exact::{ExactSolution, KRYLOV_FROM};
    // n = KRYLOV_FROM points in d = 20: lambda_max(H(0)) about 15, T = 30 is stiff.
    let mut cfg = small(Optimizer::Gf, KRYLOV_FROM, 20, 200, 5);
    cfg.t_end = 30.0;
    cfg.samples = 7;
    cfg.progress = false;
    let report = study::run(&cfg).expect("run");
    let e = report.error.as_ref().expect("error space");
    assert_eq!(e.solver, Solver::Exact);
    let note = e.solver_note.as_deref().expect("the switch is reported");
    assert!(note.contains("on a Krylov space of dimension"), "{note}");
    // No decomposition was made.
    assert!(report.setup.error_spectrum.get().is_none());
    let setup = &report.setup;
    let delta0 = setup.model.residual(&setup.w0.as_view());
    let full = ExactSolution::new(&setup.h0, &delta0, Damping::None);
    let loss = e.table.column("loss").unwrap();
    for (k, &t) in setup.times.iter().enumerate() {
        let want = full.delta_at(t).norm_squared() / 2.0;
        assert!(
            (loss[k] - want).abs() <= 2e-12 * want,
            "t = {t}: {} vs {want}",
            loss[k]
        );
    }
}
