//! `ntkdyn sgd` with a trained output layer (`--train wa`, parameters [W | a]) and smooth
//! activations: full-batch SGD is GD, the batch gradient (its a-part too) is unbiased over
//! every batch, the batch noise's covariance is J^T M J with the full Jacobian and is the
//! SDE's, and summary.json records the training.

mod common;

use common::{ntkdyn, summary, TempDir};
use nalgebra::{DMatrix, DVector};
use ntkdyn::model::{Activation, Data, InitialNetwork, Model, Train};
use ntkdyn::sgd::oracle::noise_matrix;
use ntkdyn::sgd::sde::Scheme;
use ntkdyn::sgd::twin::{all_batches, Weighted};
use ntkdyn::sgd::{Process, Sampling, SgdConfig, Space};
use ntkdyn::study::SpaceChoice;

/// A small network with activation `sigma` and training `train`, at its initial parameters
/// (W0, or [W0 | a0]).
fn network(sigma: Activation, train: Train) -> (Model, DMatrix<f64>) {
    let (n, d, m) = (5, 3, 30);
    let net = InitialNetwork::init(m, d, 7);
    let model = Model::with_training(Data::synthetic(n, d, 7), net.a.clone(), sigma, train);
    let p = model.parameters(&net.w);
    // a0 = +-1 would leave the a-block's scale special; move a off the signs.
    let p = if train.output_layer() {
        DMatrix::from_fn(p.nrows(), p.ncols(), |r, k| {
            if k == d {
                p[(r, k)] * (1.0 + 0.3 * ((r % 7) as f64 / 7.0 - 0.5))
            } else {
                p[(r, k)]
            }
        })
    } else {
        p
    };
    (model, p)
}

/// The Jacobian J (n x P) of the engine at `p`: row i is vec(J^T e_i). Also Delta.
fn jacobian(model: &Model, p: &DMatrix<f64>) -> (DMatrix<f64>, DVector<f64>) {
    let n = model.n();
    let mut engine = Weighted::new(model, p, 1);
    let mut delta = vec![0.0; n];
    engine.residual(p, &mut delta);
    let size = p.len();
    let mut j = DMatrix::zeros(n, size);
    for i in 0..n {
        let mut e = vec![0.0; n];
        e[i] = 1.0;
        let row = engine.pullback(&e);
        j.row_mut(i).copy_from_slice(row.as_slice());
    }
    (j, DVector::from_vec(delta))
}

fn rel_max(a: &DMatrix<f64>, b: &DMatrix<f64>) -> f64 {
    (a - b).amax() / b.amax()
}

#[test]
fn the_engines_jacobian_is_the_networks_in_w_and_in_a_by_finite_differences() {
    for train in Train::ALL {
        for sigma in [Activation::Erf, Activation::Tanh] {
            let (model, p) = network(sigma, train);
            let (j, delta) = jacobian(&model, &p);
            assert!(
                (&delta - model.residual(&p.as_view())).amax() < 1e-14,
                "{sigma:?} {train:?}: residual"
            );
            // Central differences of u along single parameters, the a column included.
            let h = 1e-5;
            for (r, k) in [
                (0, 0),
                (4, 2),
                (17, 1),
                (29, p.ncols() - 1),
                (3, p.ncols() - 1),
            ] {
                let mut plus = p.clone();
                let mut minus = p.clone();
                plus[(r, k)] += h;
                minus[(r, k)] -= h;
                let fd =
                    (model.predict(&plus.as_view()) - model.predict(&minus.as_view())) / (2.0 * h);
                let column = j.column(k * p.nrows() + r);
                let err = (&fd - column).amax();
                assert!(
                    err < 1e-8 * column.amax().max(1e-3),
                    "{sigma:?} {train:?} ({r}, {k}): {err:e}"
                );
            }
        }
    }
}

#[test]
fn the_batch_gradient_averaged_over_every_batch_is_the_full_gradient_in_w_and_in_a() {
    for (sigma, train) in [
        (Activation::Relu, Train::Wa),
        (Activation::Erf, Train::Wa),
        (Activation::Gelu, Train::W),
        (Activation::Relu, Train::W),
    ] {
        let (model, p) = network(sigma, train);
        let n = model.n();
        let mut engine = Weighted::new(&model, &p, 1);
        let mut delta = vec![0.0; n];
        engine.residual(&p, &mut delta);
        let full = engine.pullback(&delta).clone();
        // The full gradient is J^T Delta of the model's own (allocating) products.
        let reference = model.vjp(&p.as_view(), &DVector::from_column_slice(&delta));
        assert_eq!(full.shape(), (model.m(), train.columns(model.d())));
        assert!(
            rel_max(&full, &reference) < 1e-13,
            "{sigma:?} {train:?}: J^T Delta"
        );
        for sampling in [Sampling::With, Sampling::Without] {
            for b in 1..=3 {
                let mut mean = DMatrix::zeros(full.nrows(), full.ncols());
                for (prob, w) in all_batches(n, b, sampling) {
                    let beta: Vec<f64> = w.iter().zip(&delta).map(|(wi, d)| wi * d).collect();
                    mean += engine.pullback(&beta) * prob;
                }
                let err = rel_max(&mean, &full);
                assert!(
                    err < 1e-13,
                    "{sigma:?} {train:?} {sampling} B = {b}: {err:e}"
                );
                if train.output_layer() {
                    // The a-part is a gradient of its own: not zero, and unbiased.
                    let a = full.column(model.d());
                    assert!(a.amax() > 1e-3);
                    let got = mean.column(model.d());
                    assert!((got - a).amax() < 1e-13 * a.amax());
                }
            }
        }
    }
}

#[test]
fn the_covariance_of_the_batch_gradient_over_every_batch_is_j_t_m_j_and_the_sdes_noise() {
    for (sigma, train) in [(Activation::Relu, Train::Wa), (Activation::Erf, Train::Wa)] {
        let (model, p) = network(sigma, train);
        let n = model.n();
        let (j, delta) = jacobian(&model, &p);
        let mut engine = Weighted::new(&model, &p, 1);
        let mut d = vec![0.0; n];
        engine.residual(&p, &mut d);
        let full = DVector::from_column_slice(engine.pullback(&d).as_slice());
        for sampling in [Sampling::With, Sampling::Without] {
            for b in [1, 2, 3] {
                let c_b = sampling.c_b(n, b);
                let sigma_b = j.transpose() * noise_matrix(&delta, c_b) * &j;
                let mut cov = DMatrix::zeros(full.len(), full.len());
                for (prob, w) in all_batches(n, b, sampling) {
                    let beta: Vec<f64> = w.iter().zip(&d).map(|(wi, di)| wi * di).collect();
                    let g = DVector::from_column_slice(engine.pullback(&beta).as_slice()) - &full;
                    cov += &g * g.transpose() * prob;
                }
                let err = rel_max(&cov, &sigma_b);
                assert!(err < 1e-11, "{sigma:?} {sampling} B = {b}: {err:e}");
                // The a-block of the noise is there: Sigma_B restricted to the a column.
                let start = model.d() * model.m();
                let aa = sigma_b.view((start, start), (model.m(), model.m()));
                assert!(aa.amax() > 1e-6 * sigma_b.amax());
                // One Euler-Maruyama step's noise, s J^T (Delta o P xi) with xi ~ N(0, I_n)
                // (sde.rs), has covariance s^2 sum_j J^T (Delta o P e_j) (..)^T = eta dt Sigma_B.
                let scheme = Scheme {
                    eta: 0.1,
                    substeps: 4,
                    c_b,
                };
                let s = scheme.scale(n);
                let mut sde = DMatrix::zeros(full.len(), full.len());
                for k in 0..n {
                    let beta: Vec<f64> = (0..n)
                        .map(|i| d[i] * (f64::from(i == k) - 1.0 / n as f64))
                        .collect();
                    let col = DVector::from_column_slice(engine.pullback(&beta).as_slice()) * s;
                    sde += &col * col.transpose();
                }
                let err = rel_max(&(sde / (scheme.eta * scheme.dt())), &sigma_b);
                assert!(err < 1e-11, "{sigma:?} {sampling} B = {b}: SDE {err:e}");
            }
        }
    }
}

/// An sgd study in weight space, n = 6, d = 3, m = 40, T = 1, eta = 0.05.
fn study(sigma: Activation, train: Train, batch: usize) -> ntkdyn::sgd::SgdReport {
    let mut cfg = SgdConfig::defaults(batch);
    cfg.run.n = 6;
    cfg.run.d = 3;
    cfg.run.m = 40;
    cfg.run.seed = 3;
    cfg.run.t_end = 1.0;
    cfg.run.eta = 0.05;
    cfg.run.samples = 21;
    cfg.run.space = SpaceChoice::Both;
    cfg.run.activation = sigma;
    cfg.run.train = train;
    cfg.run.progress = false;
    cfg.seeds = 2;
    ntkdyn::sgd::run(&cfg).expect("sgd runs")
}

#[test]
fn full_batch_sgd_is_gradient_descent_to_1e_12_for_every_training_and_activation() {
    for (sigma, train) in [
        (Activation::Relu, Train::Wa),
        (Activation::Erf, Train::Wa),
        (Activation::Erf, Train::W),
        (Activation::Relu, Train::W),
    ] {
        let report = study(sigma, train, 6);
        let gd = report
            .paths
            .iter()
            .find(|p| p.process == Process::Gd && p.space == Space::Weight)
            .expect("GD in weight space");
        assert_eq!(gd.points.len(), 21);
        for space in [Space::Weight, Space::Error] {
            let gd = report
                .paths
                .iter()
                .find(|p| p.process == Process::Gd && p.space == space)
                .unwrap();
            for sgd in report
                .paths
                .iter()
                .filter(|p| p.process == Process::Sgd && p.space == space)
            {
                assert_eq!(sgd.points.len(), gd.points.len());
                for (a, b) in sgd.points.iter().zip(&gd.points) {
                    assert_eq!(a.0, b.0);
                    assert!(
                        (a.2 - b.2).abs() <= 1e-12 * b.2,
                        "{sigma:?} {train:?} {space:?} k = {}: {} vs {}",
                        a.0,
                        a.2,
                        b.2
                    );
                }
            }
        }
        // The loss falls, and the error space's kernel is the training's: H(W0, a0).
        assert!(gd.points.last().unwrap().2 < 0.9 * gd.points[0].2);
        let h0 = report.setup.model.gram(&report.setup.w0.as_view());
        assert_eq!(report.setup.w0.ncols(), train.columns(3));
        let lambda_max = h0.symmetric_eigenvalues().max();
        assert!((report.gd_edge - 2.0 / lambda_max).abs() < 1e-10 * report.gd_edge);
        let eta_crit = report.eta_crit.expect("n = 6 has an edge");
        assert!(
            (eta_crit - report.gd_edge).abs() < 1e-9 * eta_crit,
            "B = n is GD"
        );
    }
}

#[test]
fn a_trained_output_layer_adds_a_psd_kernel_so_gds_edge_falls_and_sgds_stays_below_it() {
    // H(W, a) = H(W) + (1/m) sigma(Z)^T sigma(Z) (Hinf likewise): a PSD term more, so
    // lambda_max grows (Weyl) and 2/lambda_max falls; eta_crit(B) <= 2/lambda_max.
    for sigma in [Activation::Relu, Activation::Erf] {
        let (w, wa) = (study(sigma, Train::W, 2), study(sigma, Train::Wa, 2));
        assert!(wa.gd_edge < w.gd_edge, "{sigma:?}");
        let eta_crit = wa.eta_crit.unwrap();
        assert!(
            0.0 < eta_crit && eta_crit < wa.gd_edge,
            "{sigma:?}: {eta_crit}"
        );
    }
}

#[test]
fn ntkdyn_sgd_runs_with_a_trained_output_layer_and_records_it_in_summary_json() {
    let dir = TempDir::new("sgd-wa");
    for sigma in ["relu", "erf"] {
        let out = dir.join(sigma);
        ntkdyn(&[
            "sgd",
            "--train",
            "wa",
            "--activation",
            sigma,
            "--batch",
            "3",
            "--seeds",
            "2",
            "--n",
            "6",
            "--d",
            "3",
            "--m",
            "40",
            "--t-end",
            "0.5",
            "--eta",
            "0.05",
            "--samples",
            "6",
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ]);
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        let json = summary(&out.join("summary.json"));
        assert_eq!(json["config"]["train"], "wa");
        assert_eq!(json["config"]["activation"], sigma);
        let eta_crit = json["eta_crit"].as_f64().unwrap();
        assert!(0.0 < eta_crit && eta_crit < json["two_over_lambda_max"].as_f64().unwrap());
        let sgd = read("sgd.csv");
        for p in ["sgd,weight,", "sde,weight,", "gd,weight,", "exact,error,"] {
            assert!(sgd.lines().any(|l| l.starts_with(p)), "{sigma}: {p}");
        }
    }
}

/// `ntkdyn sgd` writes run.toml with its own options (and none of the run options it
/// refuses), and `ntkdyn sgd --config DIR/run.toml` computes the same sgd.csv and bands.csv.
#[test]
fn sgd_run_toml_reproduces_the_run() {
    let tmp = TempDir::new("sgd-runtoml");
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    ntkdyn(&[
        "sgd",
        "--quiet",
        "--batch",
        "3",
        "--sampling",
        "with",
        "--seeds",
        "2",
        "--sde-substeps",
        "2",
        "--n",
        "6",
        "--d",
        "3",
        "--m",
        "40",
        "--t-end",
        "0.5",
        "--eta",
        "0.05",
        "--train",
        "wa",
        "--out",
        a.to_str().unwrap(),
    ]);
    let toml = a.join("run.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    for key in [
        "batch = 3",
        "sampling = \"with\"",
        "seeds = 2",
        "sde-substeps = 2",
        "train = \"wa\"",
    ] {
        assert!(text.contains(key), "{key} missing from\n{text}");
    }
    for refused in ["gamma", "alpha", "test-n", "no-discrete", "friction"] {
        assert!(
            !text.contains(&format!("\n{refused} =")),
            "{refused} in\n{text}"
        );
    }
    ntkdyn(&[
        "sgd",
        "--quiet",
        "--config",
        toml.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]);
    for file in ["sgd.csv", "bands.csv"] {
        let (x, y) = (
            std::fs::read(a.join(file)).unwrap(),
            std::fs::read(b.join(file)).unwrap(),
        );
        assert!(!x.is_empty() && x == y, "{file} differs");
    }
}
