//! SGD beside its SDE: the batch noise's c_B over every batch, Monte Carlo against the exact
//! second-moment recursion, Euler-Maruyama at dt = eta against SGD's moments, the weak error
//! of the SDE first order in eta, the mean-square stability edge against closed forms and
//! power iteration, and `ntkdyn sgd`'s files on one thread and on two.

mod common;

use common::{loglog_slope, TempDir};
use nalgebra::{DMatrix, DVector};
use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::sgd::oracle::{expected_loss, noise_matrix, spectral_radius, Edge, Moments};
use ntkdyn::sgd::sde::{sde_error, Noise, Scheme};
use ntkdyn::sgd::twin::{all_batches, sgd_error, stream, Batches, SDE_STREAM, SGD_STREAM};
use ntkdyn::sgd::{Path, Recording, Sampling};
use std::process::Command;

/// A small network: its model, W0, H(W0) and Delta0.
fn problem(
    n: usize,
    d: usize,
    m: usize,
    seed: u64,
) -> (Model, DMatrix<f64>, DMatrix<f64>, DVector<f64>) {
    let net = InitialNetwork::init(m, d, seed);
    let model = Model::new(Data::synthetic(n, d, seed), net.a);
    let h = model.gram(&net.w.as_view());
    let delta0 = model.residual(&net.w.as_view());
    (model, net.w, h, delta0)
}

/// Mean and standard error of the runs' losses at their j-th kept point.
fn mean_se(paths: &[Path], j: usize) -> (f64, f64) {
    let v: Vec<f64> = paths.iter().map(|p| p.points[j].2).collect();
    let s = v.len() as f64;
    let mean = v.iter().sum::<f64>() / s;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (s - 1.0);
    (mean, (var / s).sqrt())
}

#[test]
fn the_batch_weighting_is_unbiased_and_its_covariance_is_c_b_times_n_diag_delta_squared_minus_delta_delta_t_over_every_batch(
) {
    let (model, w0, _, delta) = problem(5, 3, 40, 2);
    let grad = model.vjp(&w0.as_view(), &delta);
    let dirs: Vec<DMatrix<f64>> = (0..2)
        .map(|k| DMatrix::from_fn(40, 3, |r, c| ((r * 7 + c * 3 + k * 5) % 11) as f64 - 5.0))
        .collect();
    let jv: Vec<DVector<f64>> = dirs
        .iter()
        .map(|v| model.jvp(&w0.as_view(), &v.as_view()))
        .collect();
    for sampling in [Sampling::With, Sampling::Without] {
        for b in [1, 2, 3, 5] {
            let c_b = sampling.c_b(5, b);
            let batches = all_batches(5, b, sampling);
            let total: f64 = batches.iter().map(|(p, _)| p).sum();
            assert!((total - 1.0).abs() < 1e-12);
            // E[w o Delta] = Delta and Cov(w o Delta) = M.
            let mut mean = DVector::zeros(5);
            let mut second = DMatrix::zeros(5, 5);
            let mut grad_mean = DMatrix::zeros(40, 3);
            let mut quad = [0.0; 2];
            for (p, w) in &batches {
                let e = DVector::from_fn(5, |i, _| w[i] * delta[i]);
                mean += &e * *p;
                second += (&e - &delta) * (&e - &delta).transpose() * *p;
                let g = model.vjp(&w0.as_view(), &e);
                grad_mean += &g * *p;
                // Var(<V, g_B>) = (J V)^T M (J V): the gradient's covariance J^T M J.
                for (q, v) in quad.iter_mut().zip(&dirs) {
                    *q += p * (g.dot(v) - grad.dot(v)).powi(2);
                }
            }
            let m = noise_matrix(&delta, c_b);
            assert!(
                (&mean - &delta).norm() < 1e-12 * delta.norm(),
                "{sampling} B = {b}"
            );
            assert!(
                (&second - &m).norm() < 1e-12 * m.norm().max(1e-300) + 1e-14,
                "{sampling} B = {b}: covariance {second} against c_B M {m}"
            );
            assert!(
                (&grad_mean - &grad).norm() < 1e-12 * grad.norm(),
                "{sampling} B = {b}"
            );
            for (q, u) in quad.iter().zip(&jv) {
                let want = (u.transpose() * &m * u)[(0, 0)];
                assert!(
                    (q - want).abs() <= 1e-10 * want.abs().max(1e-12),
                    "{q} vs {want}"
                );
            }
        }
    }
    // The full batch without replacement has no noise.
    assert_eq!(Sampling::Without.c_b(5, 5), 0.0);
}

#[test]
fn the_monte_carlo_mean_of_error_space_sgd_is_within_four_standard_errors_of_the_exact_expected_loss(
) {
    let (_, _, h, delta0) = problem(8, 3, 200, 1);
    let edge = Edge::new(&h);
    let rec = Recording {
        last: 30,
        stride: 10,
    };
    for sampling in [Sampling::With, Sampling::Without] {
        let c_b = sampling.c_b(8, 2);
        let eta_crit = edge.edge(c_b);
        for share in [0.25, 0.5, 0.75] {
            let eta = share * eta_crit;
            let runs: Vec<Path> = (0..4000)
                .map(|s| {
                    let batches = Batches::new(8, 2, sampling, stream(7, SGD_STREAM, s));
                    sgd_error(&h, &delta0, eta, rec, batches, s)
                })
                .collect();
            let exact = expected_loss(&h, &delta0, eta, c_b, rec);
            for (j, &(k, _, want)) in exact.points.iter().enumerate().skip(1) {
                let (mean, se) = mean_se(&runs, j);
                assert!(
                    (mean - want).abs() < 4.0 * se,
                    "{sampling}, eta = {share} eta_crit, k = {k}: {mean} +- {se} against E[L] = {want}"
                );
            }
        }
    }
}

#[test]
fn euler_maruyama_with_dt_eta_has_the_second_moment_of_sgd_and_with_dt_eta_over_l_its_own() {
    let (_, _, h, delta0) = problem(8, 3, 200, 3);
    let c_b = Sampling::With.c_b(8, 2);
    let eta = 0.5 * Edge::new(&h).edge(c_b);
    let rec = Recording {
        last: 20,
        stride: 5,
    };
    for substeps in [1, 4] {
        let scheme = Scheme { eta, substeps, c_b };
        let runs: Vec<Path> = (0..4000)
            .map(|s| {
                sde_error(
                    &h,
                    &delta0,
                    scheme,
                    rec,
                    Noise::new(8, stream(11, SDE_STREAM, s)),
                    s,
                )
            })
            .collect();
        // Euler-Maruyama's second moment: C+ = (I - dt H) C (I - dt H) + eta dt c_B H(...)H.
        let mut moments = Moments::new(&h, &delta0);
        let dt = scheme.dt();
        let mut want = vec![moments.loss()];
        for k in 1..=rec.last {
            for _ in 0..substeps {
                moments.step(dt, eta * dt * c_b);
            }
            if rec.keeps(k) {
                want.push(moments.loss());
            }
        }
        if substeps == 1 {
            // ... which at dt = eta is SGD's, E[L_k] of the oracle to rounding.
            let sgd = expected_loss(&h, &delta0, eta, c_b, rec);
            for (a, b) in sgd.points.iter().zip(&want) {
                assert!((a.2 - b).abs() <= 1e-12 * b, "{} vs {b}", a.2);
            }
        }
        for (j, w) in want.iter().enumerate().skip(1) {
            let (mean, se) = mean_se(&runs, j);
            assert!(
                (mean - w).abs() < 4.0 * se,
                "L = {substeps}, point {j}: {mean} +- {se} against {w}"
            );
        }
    }
}

#[test]
fn the_weak_error_between_sgd_and_its_sde_falls_linearly_in_eta() {
    let (_, _, h, delta0) = problem(8, 3, 200, 4);
    let lambda_max = h.symmetric_eigenvalues().max();
    let c_b = Sampling::Without.c_b(8, 2);
    let t_end = 4.0 / lambda_max;
    let fractions = [0.04, 0.02, 0.01, 0.005];
    let mut gaps = Vec::new();
    for f in fractions {
        let eta = f / lambda_max;
        let steps = (t_end / eta).round() as usize;
        let mut sgd = Moments::new(&h, &delta0);
        for _ in 0..steps {
            sgd.step(eta, eta * eta * c_b);
        }
        let mut sde = Moments::new(&h, &delta0);
        sde.flow(t_end, eta * c_b, 4000);
        gaps.push((sgd.loss() - sde.loss()).abs() / sde.loss());
    }
    let slope = loglog_slope(&fractions, &gaps);
    eprintln!("weak errors {gaps:?}, slope {slope}");
    assert!((0.9..1.1).contains(&slope), "slope {slope}, gaps {gaps:?}");
}

#[test]
fn the_stability_edge_of_a_multiple_of_the_identity_is_two_over_lambda_one_plus_c_b_n_minus_one() {
    let (n, lambda) = (6, 1.5);
    let edge = Edge::new(&(DMatrix::identity(n, n) * lambda));
    for sampling in [Sampling::With, Sampling::Without] {
        for b in [1, 2, 3, 6] {
            let c_b = sampling.c_b(n, b);
            let want = 2.0 / (lambda * (1.0 + c_b * (n - 1) as f64));
            let got = edge.edge(c_b);
            assert!(
                (got - want).abs() < 1e-10 * want,
                "{sampling} B = {b}: {got} vs {want}"
            );
            if sampling == Sampling::Without {
                // 2B/(n lambda) without replacement.
                assert!((got - 2.0 * b as f64 / (n as f64 * lambda)).abs() < 1e-10 * want);
            }
        }
    }
}

#[test]
fn the_spectral_radius_of_the_second_moment_map_crosses_one_at_eta_crit() {
    let (_, _, h, _) = problem(6, 3, 100, 5);
    let edge = Edge::new(&h);
    for sampling in [Sampling::With, Sampling::Without] {
        for b in [1, 2, 4] {
            let c_b = sampling.c_b(6, b);
            let eta_crit = edge.edge(c_b);
            assert!(eta_crit <= edge.gd_edge() * (1.0 + 1e-12));
            let below = spectral_radius(&h, 0.98 * eta_crit, c_b, 20_000);
            let above = spectral_radius(&h, 1.02 * eta_crit, c_b, 20_000);
            assert!(
                below < 1.0 && above > 1.0,
                "{sampling} B = {b}: rho {below}, {above}"
            );
        }
    }
    // A full batch without replacement is GD: its edge is 2/lambda_max.
    let full = edge.edge(Sampling::Without.c_b(6, 6));
    assert!((full - edge.gd_edge()).abs() < 1e-10 * full);
    // Smaller batches are noisier and less stable.
    let edges: Vec<f64> = (1..=6)
        .map(|b| edge.edge(Sampling::Without.c_b(6, b)))
        .collect();
    assert!(edges.windows(2).all(|w| w[0] < w[1]), "{edges:?}");
}

fn ntkdyn(args: &[&str], threads: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(args)
        .env("RAYON_NUM_THREADS", threads)
        .output()
        .expect("the binary runs")
}

#[test]
fn ntkdyn_sgd_writes_the_same_files_on_one_thread_and_on_two() {
    // m = 20000: one run alone shares its products over lanes on two threads (4 n m d above
    // the engine's threshold), three runs go one per thread; both give the same bits.
    let dir = TempDir::new("sgd");
    for seeds in ["1", "3"] {
        let mut texts = Vec::new();
        for threads in ["1", "2"] {
            let name = format!("{seeds}-{threads}");
            let out = dir.join(&name);
            let out = out.to_str().unwrap();
            let args = [
                "sgd",
                "--batch",
                "3",
                "--seeds",
                seeds,
                "--n",
                "10",
                "--d",
                "3",
                "--m",
                "20000",
                "--t-end",
                "1",
                "--eta",
                "0.05",
                "--samples",
                "6",
                "--quiet",
                "--out",
                out,
            ];
            let run = ntkdyn(&args, threads);
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            let read = |file: &str| std::fs::read_to_string(dir.join(&name).join(file)).unwrap();
            let sgd = read("sgd.csv");
            let bands = read("bands.csv");
            assert!(sgd.starts_with("process,space,seed,k,t,loss\n"));
            assert!(bands.starts_with("process,space,t,median,q10,q90,mean,se"));
            assert!(read("sgd.svg").starts_with("<svg"));
            let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
            let eta_crit = summary["eta_crit"].as_f64().unwrap();
            let gd = summary["two_over_lambda_max"].as_f64().unwrap();
            assert!(0.0 < eta_crit && eta_crit < gd, "{eta_crit} {gd}");
            // 20 SGD steps kept every 4th, and the last: 6 rows per run.
            let rows = |p: &str, s: &str| {
                sgd.lines()
                    .filter(|l| l.starts_with(&format!("{p},{s},")))
                    .count()
            };
            let runs: usize = seeds.parse().unwrap();
            for space in ["weight", "error"] {
                assert_eq!(rows("sgd", space), 6 * runs, "{space}");
                assert_eq!(rows("sde", space), 6 * runs, "{space}");
                assert_eq!(rows("gd", space), 6, "{space}");
            }
            assert_eq!(rows("exact", "error"), 6);
            texts.push((sgd, bands));
        }
        assert!(
            texts[0] == texts[1],
            "{seeds} seeds: sgd.csv or bands.csv differ between 1 and 2 threads"
        );
    }
}

#[test]
fn ntkdyn_sgd_refuses_a_batch_it_cannot_draw_and_options_it_has_no_use_for() {
    let dir = TempDir::new("sgd-bad");
    let out = dir.join("o");
    let out = out.to_str().unwrap();
    for (args, named) in [
        (vec!["--batch", "0"], "--batch"),
        (vec!["--batch", "11", "--n", "10"], "--batch"),
        (vec!["--batch", "2", "--seeds", "0"], "--seeds"),
        (
            vec!["--batch", "2", "--sde-substeps", "0"],
            "--sde-substeps",
        ),
        (vec!["--batch", "2", "--friction", "1"], "--friction"),
        (vec!["--batch", "2", "--beta", "0.5"], "--beta"),
        (vec!["--batch", "2", "--resolution", "high"], "--resolution"),
    ] {
        let mut all = vec!["sgd", "--out", out];
        all.extend(&args);
        let run = ntkdyn(&all, "2");
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{args:?} was accepted");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(named), "{args:?}: {err}");
        assert!(!dir.join("o").exists(), "{args:?} created the folder");
    }
    // With replacement a batch may be larger than n.
    let run = ntkdyn(
        &[
            "sgd",
            "--batch",
            "11",
            "--n",
            "10",
            "--d",
            "3",
            "--m",
            "50",
            "--sampling",
            "with",
            "--seeds",
            "2",
            "--t-end",
            "0.1",
            "--quiet",
            "--space",
            "error",
            "--out",
            out,
        ],
        "2",
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
}
