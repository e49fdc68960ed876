//! Error space with a fixed kernel: the ODE solvers against the exact eigen-mode solution.

mod common;

use common::small;
use ntkdyn::integrate::Solver;
use ntkdyn::io::Table;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, KernelChoice, RunConfig};

const N: usize = 12;
const D: usize = 4;
const M: usize = 400;

fn tight(optimizer: Optimizer) -> RunConfig {
    let mut cfg = small(optimizer, N, D, M, 0);
    cfg.t_end = 20.0;
    cfg.samples = 41;
    cfg.rtol = 1e-10;
    cfg.atol = 1e-14;
    cfg
}

/// (lambda_min, lambda_max) of H(W0) of the test problem.
fn h0_extremes() -> (f64, f64) {
    study::setup(&tight(Optimizer::Gf))
        .expect("setup")
        .h0_extremes
}

/// Largest relative deviation of the ODE solution from the exact one, as the run reports it.
fn deviation(cfg: &RunConfig) -> f64 {
    let report = study::run(cfg).expect("run");
    let e = report.error.expect("error space was run");
    assert_eq!(e.stop, ntkdyn::integrate::Stop::Completed);
    assert_eq!(e.table.rows.len(), cfg.samples);
    e.exact_max_relative_error
        .expect("ODE runs are checked against the exact solution")
}

#[test]
fn gradient_flow_ode_matches_exact_solution_to_1e_8() {
    let dev = deviation(&tight(Optimizer::Gf));
    eprintln!("gf: {dev:e}");
    assert!(dev < 1e-8, "gf: {dev:e}");
}

#[test]
fn gradient_flow_ode_matches_exact_solution_with_dop853_and_rk4() {
    let mut cfg = tight(Optimizer::Gf);
    cfg.solver = Solver::Dop853;
    let dev = deviation(&cfg);
    assert!(dev < 1e-8, "dop853: {dev:e}");
    // Rk4 with a fixed step: fourth order, error ~ C h^4, shrinking 16x when h halves.
    cfg.solver = Solver::Rk4;
    cfg.step = 0.02;
    let coarse = deviation(&cfg);
    cfg.step = 0.01;
    let fine = deviation(&cfg);
    eprintln!("rk4: {coarse:e} -> {fine:e}");
    assert!(fine < 1e-6, "rk4 h = 0.01: {fine:e}");
    assert!(
        (10.0..=22.0).contains(&(coarse / fine)),
        "rk4 error ratio {} for h/2",
        coarse / fine
    );
}

#[test]
fn heavy_ball_ode_matches_exact_solution_under_critically_and_over_damped() {
    let (lmin, lmax) = h0_extremes();
    let critical = 2.0 * lmin.sqrt();
    for (b, name) in [
        (0.02 * critical, "under-damped (every mode)"),
        (critical, "critically damped slowest mode"),
        (3.0 * lmax.sqrt(), "over-damped (every mode)"),
    ] {
        let mut cfg = tight(Optimizer::Hbf);
        cfg.friction = Some(b);
        let dev = deviation(&cfg);
        eprintln!("hbf {name} b = {b}: {dev:e}");
        assert!(dev < 1e-8, "hbf {name} b = {b}: {dev:e}");
    }
}

#[test]
fn nesterov_ode_matches_exact_solution_for_gamma_3_4_9() {
    for gamma in [3.0, 4.0, 9.0] {
        let mut cfg = tight(Optimizer::Nag);
        cfg.gamma = gamma;
        let dev = deviation(&cfg);
        eprintln!("nag gamma {gamma}: {dev:e}");
        assert!(dev < 1e-8, "nag gamma = {gamma}: {dev:e}");
    }
}

#[test]
fn error_space_with_hinf_kernel_matches_exact_solution() {
    let mut cfg = tight(Optimizer::Nag);
    cfg.kernel = KernelChoice::Hinf;
    let dev = deviation(&cfg);
    assert!(dev < 1e-8, "nag, Hinf: {dev:e}");
}

/// The error table of a run.
fn table(cfg: &RunConfig) -> Table {
    study::run(cfg)
        .expect("run")
        .error
        .expect("error space")
        .table
}

/// Compare two error tables row by row: same times, and every column to `tol` relative.
fn assert_tables_agree(a: &Table, b: &Table, tol: f64, what: &str) {
    assert_eq!(a.header, b.header);
    assert_eq!(a.rows.len(), b.rows.len());
    for (ra, rb) in a.rows.iter().zip(&b.rows) {
        assert_eq!(ra[0], rb[0], "{what}: times differ");
        for (j, (x, y)) in ra.iter().zip(rb).enumerate().skip(1) {
            if x.is_infinite() || y.is_infinite() {
                assert_eq!(x, y, "{what}: t = {} column {}", ra[0], a.header[j]);
                continue;
            }
            // Floor: the initial loss times 1e-12, for columns that start at zero (NAG V, alpha > 2).
            let e = common::rel(*x, *y, 1e-12);
            assert!(
                e < tol,
                "{what}: t = {} column {}: {x:e} vs {y:e} ({e:e})",
                ra[0],
                a.header[j]
            );
        }
    }
}

#[test]
fn exact_solver_tables_agree_with_ode_tables_row_by_row() {
    let (lmin, _) = h0_extremes();
    let mut cases: Vec<(RunConfig, String)> = Vec::new();
    cases.push((tight(Optimizer::Gf), "gf".into()));
    let mut hbf = tight(Optimizer::Hbf);
    hbf.friction = Some(2.0 * lmin.sqrt());
    cases.push((hbf, "hbf critical".into()));
    let mut hbf = tight(Optimizer::Hbf);
    hbf.friction = None;
    cases.push((hbf, "hbf default b".into()));
    for (gamma, alpha) in [(3.0, 2.0), (9.0, 6.0)] {
        let mut nag = tight(Optimizer::Nag);
        nag.gamma = gamma;
        nag.alpha = alpha;
        cases.push((nag, format!("nag gamma {gamma} alpha {alpha}")));
    }
    for (cfg, what) in cases {
        let ode = table(&cfg);
        let mut exact_cfg = cfg.clone();
        exact_cfg.solver = Solver::Exact;
        let exact = table(&exact_cfg);
        assert_tables_agree(&ode, &exact, 1e-7, &what);
    }
}

#[test]
fn exact_solver_is_refused_outside_error_space() {
    let mut cfg = tight(Optimizer::Gf);
    cfg.solver = Solver::Exact;
    cfg.space = study::SpaceChoice::Both;
    let Err(err) = study::run(&cfg) else {
        panic!("exact solver in weight space must be refused");
    };
    assert!(err.to_string().contains("solver"), "{err}");
}
