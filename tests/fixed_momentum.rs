//! `--beta B`: heavy ball and NAG-SC at a fixed momentum B on the clock t = k eta/(1 - B),
//! against gradient flow (low resolution) and the modified flow
//! Delta' = -(H + k_B eta H^2) Delta (high resolution), and the modified flow itself in weight
//! and error space.

mod common;

use nalgebra::{DMatrix, DVector};
use ntkdyn::dynamics::modified_flow::{ModifiedExact, ModifiedWeightSpace};
use ntkdyn::dynamics::{Damping, Flow};
use ntkdyn::integrate::{integrate_held, output_times, Solver, SolverSettings, Stop};
use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::SpaceChoice;
use ntkdyn::theory::discrete_modes::{DiscreteModes, FixedMomentum, Recurrence};
use ntkdyn::theory::exact::ExactSolution;

/// A symmetric positive definite n x n kernel with eigenvalues in [0.05, 3] and a residual.
fn problem(n: usize, seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    };
    let a = DMatrix::from_fn(n, n, |_, _| next());
    let q = a.qr().q();
    let values = DVector::from_fn(n, |i, _| 0.05 + 2.95 * (i as f64 / (n - 1) as f64).powi(2));
    let h = &q * DMatrix::from_diagonal(&values) * q.transpose();
    let h = (&h + h.transpose()) * 0.5;
    (h, DVector::from_fn(n, |_, _| next()))
}

/// Heavy ball / NAG-SC at momentum B iterated on Delta with the matrix H.
fn matrix_iteration(
    h: &DMatrix<f64>,
    delta0: &DVector<f64>,
    r: Recurrence,
    eta: f64,
    last: usize,
) -> Vec<DVector<f64>> {
    let step = |v: &DVector<f64>| v - h * v * eta;
    let mut out = vec![delta0.clone()];
    let (mut x, mut y) = (delta0.clone(), delta0.clone());
    for _ in 0..last {
        x = match r {
            Recurrence::HeavyBall(beta) => {
                let next = step(&x) + (&x - &y) * beta;
                y = x.clone();
                next
            }
            Recurrence::NesterovConstant(beta) => {
                let next = step(&y);
                y = &next + (&next - &x) * beta;
                next
            }
            _ => unreachable!("fixed momentum is heavy ball or NAG-SC"),
        };
        out.push(x.clone());
    }
    out
}

#[test]
fn the_fixed_momentum_per_mode_twin_equals_the_n_dimensional_iteration_to_1e_12() {
    let (h, delta0) = problem(12, 7);
    let (eta, last) = (0.05, 150);
    for beta in [0.0, 0.5, 0.9] {
        for r in [
            Recurrence::HeavyBall(beta),
            Recurrence::NesterovConstant(beta),
        ] {
            let modes = DiscreteModes::new(&h, &delta0, r, eta);
            let modal = modes.modal(last);
            let v = &modes.spectrum().vectors;
            let matrix = matrix_iteration(&h, &delta0, r, eta, last);
            let losses = modes.losses(last);
            for (k, d) in matrix.iter().enumerate() {
                let per_mode = v * modal.column(k);
                let err = (&per_mode - d).amax() / delta0.amax();
                assert!(err < 1e-12, "{r:?} k = {k}: {err:e}");
                let loss = 0.5 * d.norm_squared();
                assert!(
                    (losses[k] - loss).abs() <= 1e-12 * losses[0],
                    "{r:?} k = {k}"
                );
            }
        }
    }
}

/// ln(d_k2 / d_k1)/(t_k2 - t_k1) of the twin's mode over t in [1, 3]: its decay per unit time
/// past the fast root's transient and the O(eta) initial slip (c_1 = 1 + O(eta lambda)),
/// with eta = (1 - B)/N so that t_k = k/N.
fn twin_decay(r: Recurrence, beta: f64, lambda: f64, steps_per_unit: usize) -> (f64, f64) {
    let eta = (1.0 - beta) / steps_per_unit as f64;
    let d = r.iterates(eta, lambda, 3 * steps_per_unit);
    let decay = -(d[3 * steps_per_unit] / d[steps_per_unit]).ln() / 2.0;
    (decay, eta)
}

#[test]
fn inside_the_range_the_twin_follows_the_modified_flow_to_second_order_and_gradient_flow_to_first()
{
    for beta in [0.3, 0.6] {
        for r in [
            Recurrence::HeavyBall(beta),
            Recurrence::NesterovConstant(beta),
        ] {
            for lambda in [0.5, 1.0, 2.0] {
                let mut high = Vec::new();
                let mut low = Vec::new();
                for n in [200, 400, 800] {
                    let (decay, eta) = twin_decay(r, beta, lambda, n);
                    let theory = FixedMomentum::new(r, eta).unwrap();
                    assert!(!theory.beyond(lambda));
                    assert!((theory.clock() - 1.0 / n as f64).abs() < 1e-15);
                    // The flows per unit time: exp(-(lambda + k_B eta lambda^2) t), exp(-lambda t).
                    high.push((decay - (lambda + theory.kappa() * lambda * lambda)).abs());
                    low.push((decay - lambda).abs());
                    // The slow root's rate is the same number, computed from the roots.
                    let rate = theory.twin_rate(lambda).unwrap();
                    assert!((rate - decay).abs() < 1e-9 * lambda, "{rate} {decay}");
                }
                for i in 0..2 {
                    let (h, l) = (high[i] / high[i + 1], low[i] / low[i + 1]);
                    assert!(
                        (3.4..=4.6).contains(&h),
                        "{r:?} lambda {lambda}: high {high:?}"
                    );
                    assert!(
                        (1.7..=2.3).contains(&l),
                        "{r:?} lambda {lambda}: low {low:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn k_b_and_the_share_of_modes_beyond_the_range_on_a_hand_made_spectrum() {
    // B = 1/4: (1 - sqrt B)^2 = 1/4, so with eta = 0.1 the range ends at lambda = 2.5.
    let (beta, eta) = (0.25, 0.1);
    let spectrum = [0.1, 1.0, 2.4, 2.6, 3.0, 10.0];
    let hb = FixedMomentum::new(Recurrence::HeavyBall(beta), eta).unwrap();
    let nagsc = FixedMomentum::new(Recurrence::NesterovConstant(beta), eta).unwrap();
    assert_eq!(hb.edge(), 0.25);
    assert_eq!(hb.modes_beyond(&spectrum), (3, 0.5));
    assert_eq!(nagsc.modes_beyond(&spectrum), (3, 0.5));
    assert_eq!(hb.modes_beyond(&spectrum[..3]), (0, 0.0));
    // k_B = (1 + B)/(2 (1 - B)^2) = 10/9 and (1 - B + 2 B^2)/(2 (1 - B)^2) = 7/9.
    assert!((hb.k_b() - 10.0 / 9.0).abs() < 1e-15);
    assert!((nagsc.k_b() - 7.0 / 9.0).abs() < 1e-15);
    assert!((hb.kappa() - eta * 10.0 / 9.0).abs() < 1e-16);
    assert!((hb.clock() - eta / 0.75).abs() < 5e-15 * hb.clock());
    // Heavy ball's range is exactly where its roots are real: beyond it the mode oscillates.
    for lambda in spectrum {
        assert_eq!(
            Recurrence::HeavyBall(beta).underdamped(eta, lambda),
            hb.beyond(lambda),
            "lambda = {lambda}"
        );
    }
    assert!(FixedMomentum::new(Recurrence::Gd, eta).is_none());
}

/// The modified flow's weight-space Delta(t) against its error-space exact solution on H(W0)
/// and against gradient flow's: the largest |Delta_w(t) - Delta(t)|/|Delta_0| over [0, T].
fn weight_against_error(m: usize, kappa: f64) -> (f64, f64) {
    let (n, d, t_end) = (8, 4, 3.0);
    let net = InitialNetwork::init(m, d, 11);
    let model = Model::new(Data::synthetic(n, d, 11), net.a);
    let w0 = net.w;
    let delta0 = model.residual(&w0.as_view());
    let h0 = model.gram(&w0.as_view());
    let modified = ModifiedExact::new(&h0, &delta0, kappa);
    let gf = ExactSolution::new(&h0, &delta0, Damping::None);
    let space = ModifiedWeightSpace::new(&model, kappa);
    let flow = Flow::new(&space, Damping::None);
    let times = output_times(t_end, 31);
    let settings = SolverSettings {
        solver: Solver::Dopri5,
        rtol: 1e-9,
        atol: 1e-12,
        step: 0.01,
        max_steps: 1_000_000,
        max_step: 0.05,
    };
    let (mut to_modified, mut to_gf) = (0.0f64, 0.0f64);
    let (_, stop) = integrate_held(
        flow,
        flow.initial_state(w0.as_slice()),
        &times,
        &settings,
        |t, y| {
            let delta = model.residual(&model.weights(y.as_slice()));
            to_modified = to_modified.max((&delta - modified.delta_at(t)).norm());
            to_gf = to_gf.max((&delta - gf.delta_at(t)).norm());
            true
        },
    );
    assert_eq!(stop, Stop::Completed);
    (to_modified / delta0.norm(), to_gf / delta0.norm())
}

#[test]
fn the_modified_flows_weight_space_follows_its_error_space_solution_at_large_width() {
    // kappa = k_B eta of heavy ball at B = 1/2, eta = 0.1: k_B = 3.
    let kappa = 0.3;
    let (narrow, _) = weight_against_error(250, kappa);
    let (wide, wide_gf) = weight_against_error(8000, kappa);
    // H(t) stays within O(1/sqrt m) of H(0): the gap shrinks with the width...
    assert!(
        wide < 0.5 * narrow,
        "m = 250: {narrow:e}, m = 8000: {wide:e}"
    );
    assert!(wide < 0.02, "{wide:e}");
    // ...and is not gradient flow's: kappa H^2 moves Delta by far more than the width does.
    assert!(
        wide_gf > 5.0 * wide,
        "to GF {wide_gf:e}, to the modified flow {wide:e}"
    );
}

#[test]
fn a_beta_run_puts_the_twin_on_its_clock_and_reports_the_modes_beyond() {
    let mut cfg = common::small(Optimizer::Nagsc, 6, 3, 60, 2);
    cfg.beta = Some(0.5);
    cfg.eta = 0.05;
    cfg.t_end = 1.0;
    cfg.samples = 5;
    cfg.discrete = true;
    cfg.progress = false;
    let report = ntkdyn::study::run(&cfg).unwrap();
    let d = report.discrete.as_ref().unwrap();
    // t_k = k eta/(1 - B) = k/10: eleven iterates on [0, 1].
    assert_eq!(d.iterates.len(), 11);
    assert_eq!(d.iterates[3].t, 0.3);
    assert_eq!(d.twin.parameter, Some(0.5));
    // Error space is gradient flow on that clock.
    assert_eq!(report.damping, Damping::None);
    let json = report.summary_json();
    let fm = &json["fixed_momentum"];
    assert_eq!(fm["beta"], 0.5);
    assert_eq!(fm["clock"], "t = k eta/(1 - B)");
    assert_eq!(json["discrete"]["clock"], "t = k eta/(1 - B)");
    assert_eq!(fm["modes"], 6);
    assert_eq!(fm["resolution"], "low");
    // (1 - B + 2 B^2)/(2 (1 - B)^2) = 2 at B = 1/2.
    assert!((fm["k_b"].as_f64().unwrap() - 2.0).abs() < 1e-15);
    // loss_error_space is the fixed-momentum twin on Delta, per mode.
    let table = report.discrete_table().unwrap();
    let exact = table.column("loss_error_space").unwrap();
    let (h, _) = report.setup.error_kernel(cfg.kernel);
    let delta0 = report.setup.model.residual(&report.setup.w0.as_view());
    let want = DiscreteModes::new(h, &delta0, Recurrence::NesterovConstant(0.5), 0.05).losses(10);
    assert_eq!(exact, want);
    // The share beyond: the modes of the fixed kernel with eta lambda >= (1 - sqrt B)^2.
    let share = fm["modes_beyond_share"].as_f64().unwrap();
    let (values, _) = ntkdyn::linalg::symmetric_eigen(h);
    let edge = (1.0 - 0.5f64.sqrt()).powi(2);
    let beyond = values.iter().filter(|&&l| 0.05 * l >= edge).count();
    assert_eq!(share, beyond as f64 / 6.0);
}

#[test]
fn the_high_resolution_beta_run_solves_the_modified_flow_in_both_spaces() {
    let mut cfg = common::small(Optimizer::Hbf, 6, 3, 3000, 4);
    cfg.beta = Some(0.5);
    cfg.resolution = ntkdyn::theory::high_resolution::Resolution::High;
    cfg.eta = 0.1;
    cfg.t_end = 2.0;
    cfg.samples = 5;
    cfg.space = SpaceChoice::Both;
    cfg.progress = false;
    let report = ntkdyn::study::run(&cfg).unwrap();
    let kappa = 3.0 * 0.1; // k_B = (1 + B)/(2 (1 - B)^2) = 3
    let (h, _) = report.setup.error_kernel(cfg.kernel);
    let delta0 = report.setup.model.residual(&report.setup.w0.as_view());
    let exact = ModifiedExact::new(h, &delta0, kappa);
    let error = report.error.as_ref().unwrap();
    let weight = report.weight.as_ref().unwrap();
    let times = error.table.column("t").unwrap();
    let losses = error.table.column("loss").unwrap();
    let weight_losses = weight.table.column("loss").unwrap();
    for ((t, l), lw) in times.iter().zip(&losses).zip(&weight_losses) {
        let want = 0.5 * exact.delta_at(*t).norm_squared();
        assert!((l - want).abs() <= 1e-12 * losses[0], "t = {t}");
        // At m = 3000 the network follows its kernel's modified flow closely.
        assert!(
            (lw - want).abs() <= 0.05 * losses[0],
            "t = {t}: {lw} {want}"
        );
    }
    assert_eq!(
        report.summary_json()["fixed_momentum"]["resolution"],
        "high"
    );
}

#[test]
fn beta_is_refused_for_gf_and_nag_and_outside_zero_one() {
    for (optimizer, beta, says) in [
        (Optimizer::Gf, 0.5, "gf has no constant momentum"),
        (Optimizer::Nag, 0.5, "nag has no constant momentum"),
        (Optimizer::Hbf, 1.0, "outside [0, 1)"),
        (Optimizer::Nagsc, -0.1, "outside [0, 1)"),
        (Optimizer::Hbf, f64::NAN, "outside [0, 1)"),
    ] {
        let mut cfg = ntkdyn::study::RunConfig::defaults(optimizer);
        cfg.beta = Some(beta);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.starts_with("--beta: ") && err.contains(says), "{err}");
        assert_eq!(err.lines().count(), 1);
    }
    let mut cfg = ntkdyn::study::RunConfig::defaults(Optimizer::Hbf);
    cfg.beta = Some(0.0);
    assert!(cfg.validate().is_ok());
}

#[test]
fn the_command_line_takes_beta_and_refuses_it_for_gf_in_one_line() {
    let dir = common::TempDir::new("beta");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(["gf", "--beta", "0.5", "--quiet", "--out"])
        .arg(dir.join("gf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--beta") && err.trim().lines().count() == 1,
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args([
            "hbf",
            "--beta",
            "0.5",
            "--n",
            "5",
            "--d",
            "3",
            "--m",
            "40",
            "--t-end",
            "1",
            "--samples",
            "3",
            "--eta",
            "0.05",
            "--quiet",
            "--out",
        ])
        .arg(dir.join("hbf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = std::fs::read_to_string(dir.join("hbf/discrete.csv")).unwrap();
    // Row k = 2 sits at t = 2 x 0.05/(1 - 0.5) = 0.2.
    assert!(csv.lines().nth(3).unwrap().starts_with("2,0.2,"), "{csv}");
    let toml = std::fs::read_to_string(dir.join("hbf/run.toml")).unwrap();
    assert!(toml.contains("beta = 0.5"), "{toml}");
}

#[test]
fn a_large_beta_error_space_is_solved_on_a_krylov_space_that_agrees_with_the_decomposition() {
    use ntkdyn::theory::exact::KRYLOV_FROM;
    // n = KRYLOV_FROM points in d = 20: lambda_max(H(0)) about 15, kappa = k_B eta = 0.15,
    // so the fastest mode's rate lambda + kappa lambda^2 is about 50 and T = 2 is stiff.
    let mut cfg = common::small(Optimizer::Hbf, KRYLOV_FROM, 20, 200, 5);
    cfg.beta = Some(0.5);
    cfg.resolution = ntkdyn::theory::high_resolution::Resolution::High;
    cfg.eta = 0.05;
    cfg.t_end = 2.0;
    cfg.samples = 7;
    cfg.progress = false;
    let report = ntkdyn::study::run(&cfg).unwrap();
    let error = report.error.as_ref().unwrap();
    let note = error
        .solver_note
        .as_deref()
        .expect("the solution is reported");
    assert!(note.contains("on a Krylov space of dimension"), "{note}");
    // No decomposition was made for the run.
    assert!(report.setup.error_spectrum.get().is_none());
    let kappa = 3.0 * 0.05; // k_B = (1 + B)/(2 (1 - B)^2) = 3
    let (h, _) = report.setup.error_kernel(cfg.kernel);
    let delta0 = report.setup.model.residual(&report.setup.w0.as_view());
    let exact = ModifiedExact::new(h, &delta0, kappa);
    let times = error.table.column("t").unwrap();
    let losses = error.table.column("loss").unwrap();
    for (t, l) in times.iter().zip(&losses) {
        let want = 0.5 * exact.delta_at(*t).norm_squared();
        assert!((l - want).abs() <= 2e-12 * want, "t = {t}: {l} vs {want}");
    }
    // The modes beyond the range by a Sturm count, as the eigenvalues count them.
    let fm = &report.summary_json()["fixed_momentum"];
    let edge = (1.0 - 0.5f64.sqrt()).powi(2);
    let values = ntkdyn::linalg::symmetric_eigenvalues(h);
    let beyond = values.iter().filter(|&&l| 0.05 * l >= edge).count();
    assert!(beyond > 0 && beyond < KRYLOV_FROM, "{beyond}");
    assert_eq!(fm["modes_beyond"], beyond);
    assert_eq!(fm["modes"], KRYLOV_FROM);
}
