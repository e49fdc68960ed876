//! Continuous against discrete at second order: the exact discrete twins in error space, their
//! per-mode rates and stability edges, the high-resolution ODEs and the gap's orders.

mod common;

use nalgebra::{DMatrix, DVector};
use ntkdyn::optimizer::{Optimizer, Twin};
use ntkdyn::study::config::SpaceChoice;
use ntkdyn::theory::discrete_modes::{DiscreteModes, Recurrence};

/// A symmetric positive definite n x n kernel with eigenvalues spread over [0.05, 3] and an
/// initial residual, from a fixed linear congruential stream.
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
    let delta0 = DVector::from_fn(n, |_, _| next());
    (h, delta0)
}

/// The twin iterated on Delta with the matrix H, as the weight-space twin is on W.
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
    for k in 0..last {
        let next = match r {
            Recurrence::Gd => step(&x),
            Recurrence::HeavyBall(beta) => {
                let next = step(&x) + (&x - &y) * beta;
                y = x.clone();
                next
            }
            Recurrence::NesterovConstant(_) | Recurrence::Nesterov(_) => {
                let next = step(&y);
                let m = match r {
                    Recurrence::NesterovConstant(beta) => beta,
                    Recurrence::Nesterov(gamma) => {
                        let kk = (k + 1) as f64;
                        (kk - 1.0) / (kk + gamma - 1.0)
                    }
                    _ => unreachable!(),
                };
                y = &next + (&next - &x) * m;
                next
            }
        };
        x = next;
        out.push(x.clone());
    }
    out
}

fn twins(eta: f64) -> [Recurrence; 4] {
    let b = 0.6;
    let beta = 1.0 - b * eta.sqrt();
    [
        Recurrence::Gd,
        Recurrence::HeavyBall(beta),
        Recurrence::NesterovConstant(beta),
        Recurrence::Nesterov(3.0),
    ]
}

#[test]
fn the_exact_per_mode_twin_equals_the_n_dimensional_iteration_to_1e_12() {
    let (h, delta0) = problem(12, 7);
    let eta = 0.2;
    let last = 300;
    for r in twins(eta) {
        let modes = DiscreteModes::new(&h, &delta0, r, eta);
        let direct = matrix_iteration(&h, &delta0, r, eta, last);
        let losses = modes.losses(last);
        let norm0 = delta0.norm();
        for k in [0, 1, 2, 7, 50, 299, 300] {
            let err = (modes.delta(k) - &direct[k]).norm() / norm0;
            assert!(err < 1e-12, "{r:?} k = {k}: |Delta_k - direct| = {err:e}");
            let loss = 0.5 * direct[k].norm_squared();
            let lerr = (losses[k] - loss).abs() / (0.5 * norm0 * norm0);
            assert!(lerr < 1e-12, "{r:?} k = {k}: loss off by {lerr:e}");
        }
    }
}

#[test]
fn the_heavy_ball_mode_is_the_chebyshev_closed_form() {
    // delta_k/delta_0 = (1 - eta lambda) a_k - beta a_{k-1},
    // a_k = beta^((k-1)/2) U_{k-1}((1 + beta - eta lambda)/(2 sqrt beta)).
    let (eta, beta): (f64, f64) = (0.05, 0.8);
    for lambda in [0.1, 1.0, 5.0, 20.0, 35.0] {
        let z = (1.0 + beta - eta * lambda) / (2.0 * beta.sqrt());
        // U_{-2} = -1, U_{-1} = 0, U_{j+1} = 2 z U_j - U_{j-1}.
        let mut u = vec![-1.0, 0.0];
        for j in 0..80 {
            let next = 2.0 * z * u[j + 1] - u[j];
            u.push(next);
        }
        let a = |k: i64| beta.powf((k - 1) as f64 / 2.0) * u[(k + 1) as usize];
        let d = Recurrence::HeavyBall(beta).iterates(eta, lambda, 60);
        for k in 0..=60i64 {
            let want = (1.0 - eta * lambda) * a(k) - beta * a(k - 1);
            assert!(
                (d[k as usize] - want).abs() < 1e-12 * want.abs().max(1.0),
                "lambda = {lambda}, k = {k}: {} against {want}",
                d[k as usize]
            );
        }
    }
}

/// The product of the roots read off the iterates: a recurrence d_{k+1} = tr d_k - det d_{k-1}
/// has det = (tr d_k - d_{k+1}) / d_{k-1}, taken where |d_{k-1}| is largest; with complex
/// roots det = |r|^2.
fn rate_from_iterates(d: &[f64], tr: f64) -> f64 {
    let k = (2..d.len() - 1)
        .max_by(|&a, &b| d[a - 1].abs().total_cmp(&d[b - 1].abs()))
        .unwrap();
    (tr * d[k] - d[k + 1]) / d[k - 1]
}

#[test]
fn heavy_balls_modes_contract_by_beta_in_every_underdamped_mode() {
    let (eta, beta) = (0.01, 0.9);
    let r = Recurrence::HeavyBall(beta);
    let mut underdamped = 0;
    for i in 0..200 {
        let lambda = 0.05 * i as f64 + 0.01;
        if !r.underdamped(eta, lambda) {
            continue;
        }
        underdamped += 1;
        let rho = r.spectral_radius(eta, lambda).unwrap();
        assert!(
            (rho * rho - beta).abs() < 1e-14,
            "lambda = {lambda}: |r|^2 = {}",
            rho * rho
        );
        let d = r.iterates(eta, lambda, 12);
        let det = rate_from_iterates(&d, 1.0 + beta - eta * lambda);
        assert!((det - beta).abs() < 1e-9, "lambda = {lambda}: {det}");
    }
    assert!(underdamped > 100, "{underdamped} underdamped modes");
}

#[test]
fn nagscs_modes_contract_by_beta_times_one_minus_eta_lambda() {
    let (eta, beta) = (0.01, 0.9);
    let r = Recurrence::NesterovConstant(beta);
    let mut underdamped = 0;
    for i in 0..200 {
        let lambda = 0.05 * i as f64 + 0.01;
        if !r.underdamped(eta, lambda) {
            continue;
        }
        underdamped += 1;
        let want = beta * (1.0 - eta * lambda);
        let rho = r.spectral_radius(eta, lambda).unwrap();
        assert!((rho * rho - want).abs() < 1e-14, "lambda = {lambda}");
        let d = r.iterates(eta, lambda, 12);
        let det = rate_from_iterates(&d, (1.0 + beta) * (1.0 - eta * lambda));
        assert!(
            (det - want).abs() < 1e-9,
            "lambda = {lambda}: {det} against {want}"
        );
    }
    assert!(underdamped > 100, "{underdamped} underdamped modes");
}

#[test]
fn each_twin_loses_stability_at_its_edge() {
    let eta = 0.01;
    let beta = 0.7;
    for r in [
        Recurrence::Gd,
        Recurrence::HeavyBall(beta),
        Recurrence::NesterovConstant(beta),
    ] {
        let edge = r.stability_edge() / eta;
        let below = r.spectral_radius(eta, edge * (1.0 - 1e-6)).unwrap();
        let above = r.spectral_radius(eta, edge * (1.0 + 1e-6)).unwrap();
        assert!(below < 1.0 && above > 1.0, "{r:?}: {below} {above}");
    }
    assert_eq!(Recurrence::HeavyBall(beta).stability_edge(), 2.0 * 1.7);
    assert!((Recurrence::NesterovConstant(beta).stability_edge() - 3.4 / 2.4).abs() < 1e-15);
}

#[test]
fn discrete_csv_gains_the_exact_twin_in_error_space_when_error_space_runs() {
    for optimizer in Optimizer::ALL {
        let mut cfg = common::small(optimizer, 8, 3, 200, 3);
        cfg.discrete = true;
        cfg.t_end = 2.0;
        cfg.solver = ntkdyn::integrate::Solver::Exact;
        let report = ntkdyn::study::run(&cfg).unwrap();
        let table = report.discrete_table().unwrap();
        let exact = table.column("loss_error_space").expect("the column");
        let loss = table.column("loss").unwrap();
        assert!((exact[0] - loss[0]).abs() < 1e-12 * loss[0]);
        // The same twin, on Delta with the fixed kernel, equals the matrix iteration.
        let d = report.discrete.as_ref().unwrap();
        let (h, _) = report.setup.error_kernel(cfg.kernel);
        let delta0 = report.setup.model.residual(&report.setup.w0.as_view());
        let last = exact.len() - 1;
        let direct = matrix_iteration(h, &delta0, d.twin.recurrence(), d.eta, last);
        let scale = loss[0];
        for (k, v) in direct.iter().enumerate() {
            let l = 0.5 * v.norm_squared();
            assert!((exact[k] - l).abs() < 1e-10 * scale, "{optimizer} k = {k}");
        }
        assert_eq!(d.twin, Twin::new(optimizer, d.twin.parameter));
        cfg.space = SpaceChoice::Weight;
        cfg.solver = ntkdyn::integrate::Solver::Dopri5;
        cfg.m = 20;
        let report = ntkdyn::study::run(&cfg).unwrap();
        let table = report.discrete_table().unwrap();
        assert!(table.column("loss_error_space").is_none());
    }
}

mod orders {
    use super::problem;
    use ntkdyn::dynamics::Damping;
    use ntkdyn::optimizer::Optimizer;
    use ntkdyn::theory::high_resolution::{error_space_gap, Resolution, Setting};

    fn setting(optimizer: Optimizer, eta: f64) -> Setting {
        let damping = match optimizer {
            Optimizer::Gf => Damping::None,
            Optimizer::Nag => Damping::Vanishing(3.0),
            _ => Damping::Constant(0.6),
        };
        Setting {
            optimizer,
            eta,
            damping,
        }
    }

    /// Halving the clock step h (halving eta for gf, quartering it for the momentum methods)
    /// shrinks the low-resolution gap by about 2 and the high-resolution gap by about 4.
    #[test]
    fn halving_h_halves_the_low_resolution_gap_and_quarters_the_high_resolution_gap() {
        let (h, delta0) = problem(10, 11);
        for optimizer in Optimizer::ALL {
            let etas: Vec<f64> = match optimizer {
                Optimizer::Gf => vec![0.02, 0.01, 0.005],
                _ => vec![0.0016, 0.0004, 0.0001],
            };
            for (resolution, lo, hi) in [(Resolution::Low, 1.7, 2.3), (Resolution::High, 3.4, 4.6)]
            {
                let gaps: Vec<_> = etas
                    .iter()
                    .map(|&eta| {
                        error_space_gap(&h, &delta0, &setting(optimizer, eta), resolution, 10.0)
                    })
                    .collect();
                for w in gaps.windows(2) {
                    let r = w[0].gap_delta / w[1].gap_delta;
                    assert!(
                        (lo..=hi).contains(&r),
                        "{optimizer} {resolution:?}: gap_delta {:e} -> {:e}, ratio {r}",
                        w[0].gap_delta,
                        w[1].gap_delta
                    );
                }
            }
        }
    }

    /// Implicit gradient regularization per mode: (1 - eta lambda)^k against
    /// exp(-(lambda + eta lambda^2/2) k eta) is O(eta^2) at a fixed time.
    #[test]
    fn gd_modes_follow_the_igr_flow_to_second_order() {
        let lambda = 1.5;
        let t = 4.0;
        let err = |eta: f64| {
            let k = (t / eta).round() as i32;
            let gd = (1.0 - eta * lambda).powi(k);
            let igr = (-(lambda + eta * lambda * lambda / 2.0) * k as f64 * eta).exp();
            let gf = (-lambda * k as f64 * eta).exp();
            ((gd - igr).abs(), (gd - gf).abs())
        };
        let (a, a_low) = err(0.02);
        let (b, b_low) = err(0.01);
        assert!((3.6..=4.4).contains(&(a / b)), "IGR ratio {}", a / b);
        assert!(
            (1.8..=2.2).contains(&(a_low / b_low)),
            "GF ratio {}",
            a_low / b_low
        );
        assert!(b < 1e-2 * b_low);
    }
}

#[test]
fn ntkdyn_gap_writes_its_table_figure_and_fitted_orders() {
    let dir = common::TempDir::new("gap");
    let out = dir.join("g");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args([
            "gap",
            "nag",
            "--etas",
            "0.01,0.0025",
            "--t-end",
            "5",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let csv = std::fs::read_to_string(out.join("gap.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("space,resolution,eta,h,gap_delta,gap_loss")
    );
    assert_eq!(lines.count(), 4);
    assert!(std::fs::read_to_string(out.join("gap.svg"))
        .unwrap()
        .starts_with("<svg"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let orders = summary["gap"]["orders"].as_array().unwrap();
    let low = orders[0]["order_delta"].as_f64().unwrap();
    let high = orders[1]["order_delta"].as_f64().unwrap();
    assert!(
        (0.8..1.2).contains(&low) && (1.7..2.3).contains(&high),
        "{low} {high}"
    );
}

mod energies {
    use super::problem;
    use nalgebra::DVector;
    use ntkdyn::theory::high_resolution::{nag_high_mode, oscillator};
    use ntkdyn::theory::lyapunov::HighResolutionLyapunov;
    use ntkdyn::theory::spectrum::Spectrum;

    /// (Delta, Delta', H Delta) in the eigenbasis from per-mode (x, x') and coefficients c.
    fn state(
        values: &DVector<f64>,
        c: &DVector<f64>,
        modes: &[(f64, f64)],
    ) -> (DVector<f64>, DVector<f64>, DVector<f64>) {
        let n = c.len();
        let d = DVector::from_fn(n, |i, _| c[i] * modes[i].0);
        let v = DVector::from_fn(n, |i, _| c[i] * modes[i].1);
        let hd = DVector::from_fn(n, |i, _| values[i] * d[i]);
        (d, v, hd)
    }

    #[test]
    fn the_nag_energy_obeys_its_identity_along_the_high_resolution_flow() {
        let (h, delta0) = problem(8, 5);
        let spec = Spectrum::of(&h);
        let c = spec.vectors.tr_mul(&delta0);
        let s = 0.1;
        for gamma in [2.5, 3.0, 4.5] {
            let e = HighResolutionLyapunov::Nag { gamma, s };
            let tau1 = gamma * s / 2.0;
            let dt = 1e-3;
            for tau in [tau1 + 0.5, 2.0, 5.0, 9.0] {
                let times = [tau - dt, tau, tau + dt];
                let per_mode: Vec<Vec<(f64, f64)>> = spec
                    .values
                    .iter()
                    .map(|&l| nag_high_mode(gamma, s, l, &times))
                    .collect();
                let at = |j: usize| {
                    let m: Vec<(f64, f64)> = per_mode.iter().map(|p| p[j]).collect();
                    state(&spec.values, &c, &m)
                };
                let value = |j: usize| {
                    let (d, v, hd) = at(j);
                    e.value(times[j], &d, &v, &hd)
                };
                let fd = (value(2) - value(0)) / (2.0 * dt);
                let (d, _, hd) = at(1);
                let want = e
                    .nag_derivative(tau, 0.5 * d.dot(&hd), hd.norm_squared())
                    .unwrap();
                let scale = value(1).abs().max(1e-3);
                assert!(
                    (fd - want).abs() < 1e-5 * scale,
                    "gamma = {gamma}, tau = {tau}: dE/dtau {fd:e} against {want:e}"
                );
                assert!(want < 0.0);
            }
        }
    }

    #[test]
    fn hbf_and_nagsc_energies_stay_under_exp_of_minus_sqrt_mu_b_t_over_4() {
        let (h, delta0) = problem(8, 9);
        let spec = Spectrum::of(&h);
        let c = spec.vectors.tr_mul(&delta0);
        let (b, s) = (0.3, 0.1);
        let mu_b = HighResolutionLyapunov::mu_b(b, s);
        assert!(mu_b <= spec.min());
        let cc = 1.0 - b * s / 2.0;
        for nagsc in [false, true] {
            let e = if nagsc {
                HighResolutionLyapunov::Nagsc { b, s }
            } else {
                HighResolutionLyapunov::Hbf { b, s }
            };
            let at = |t: f64| {
                let m: Vec<(f64, f64)> = spec
                    .values
                    .iter()
                    .map(|&l| {
                        let bb = if nagsc { (b + s * l) / cc } else { b / cc };
                        oscillator(bb, l / cc, 1.0, -s / 2.0 * l, t)
                    })
                    .collect();
                let (d, v, hd) = state(&spec.values, &c, &m);
                e.value(t, &d, &v, &hd)
            };
            let e0 = at(0.0);
            for i in 1..=400 {
                let t = 0.1 * i as f64;
                let v = at(t);
                assert!(
                    v <= e.bound(t, e0) * (1.0 + 1e-12),
                    "{e:?} t = {t}: {v} above the bound"
                );
            }
        }
    }
}

mod per_mode {
    use ntkdyn::dynamics::Damping;
    use ntkdyn::optimizer::Optimizer;
    use ntkdyn::theory::high_resolution::Setting;
    use ntkdyn::theory::modes::mode_row;

    /// The high-resolution ODE's rate is closer to the twin's than the low-resolution one's,
    /// by an order in h, for every stable mode of gf, hbf and nagsc.
    #[test]
    fn the_high_resolution_rate_tracks_the_twins_rate_an_order_closer() {
        for (optimizer, damping) in [
            (Optimizer::Gf, Damping::None),
            (Optimizer::Hbf, Damping::Constant(0.5)),
            (Optimizer::Nagsc, Damping::Constant(0.5)),
        ] {
            for lambda in [0.02, 0.1, 0.5, 2.0] {
                let err = |eta: f64| {
                    let r = mode_row(
                        &Setting {
                            optimizer,
                            eta,
                            damping,
                        },
                        lambda,
                    );
                    assert!(r.stable);
                    (
                        (r.rate_twin - r.rate_low).abs(),
                        (r.rate_twin - r.rate_high).abs(),
                    )
                };
                let (low1, high1) = err(1e-4);
                let (low2, high2) = err(0.25e-4);
                // Halving h (quartering eta for the momentum methods, halving it for gf).
                let (low2, high2) = if optimizer == Optimizer::Gf {
                    err(0.5e-4)
                } else {
                    (low2, high2)
                };
                assert!(
                    high1 < low1 && (1.6..2.4).contains(&(low1 / low2)),
                    "{optimizer} lambda = {lambda}: low {low1:e} -> {low2:e}, high {high1:e}"
                );
                assert!(
                    high2 < 0.6 * high1 || high1 < 1e-12,
                    "{optimizer} lambda = {lambda}: high {high1:e} -> {high2:e}"
                );
            }
        }
    }

    #[test]
    fn modes_beyond_the_stability_edge_are_marked_unstable() {
        let s = Setting {
            optimizer: Optimizer::Hbf,
            eta: 0.01,
            damping: Damping::Constant(1.0),
        };
        let beta: f64 = 0.9;
        let edge = 2.0 * (1.0 + beta) / 0.01;
        assert!(mode_row(&s, edge * 0.999).stable);
        let r = mode_row(&s, edge * 1.001);
        assert!(!r.stable && r.rate_twin < 0.0);
    }
}
