//! A trained output layer (`--train wa`): the gradient in W and a against finite differences,
//! H(W0, a0) -> Hinf at rate m^(-1/2), Hinf(wa) = Hinf(w) + E[sigma(u) sigma(v)] against
//! quadrature, lambda0(wa) >= lambda0(w), weight space approaching error space as m grows, and
//! every command running with --train wa.

mod common;

use common::{loglog_slope, ntkdyn, small, summary, TempDir};
use nalgebra::DMatrix;
use ntkdyn::integrate::Stop;
use ntkdyn::model::activation::GaussHermite;
use ntkdyn::model::{Activation, Data, InfiniteWidth, InitialNetwork, Model, Train};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, Report, SpaceChoice};
use std::process::Command;

fn model(data: &Data, net: &InitialNetwork, sigma: Activation, train: Train) -> Model {
    Model::with_training(data.clone(), net.a.clone(), sigma, train)
}

#[test]
fn the_gradient_in_w_and_in_a_matches_finite_differences_for_every_activation_and_training() {
    let (n, d, m) = (9, 3, 70);
    let data = Data::synthetic(n, d, 4);
    let net = InitialNetwork::init(m, d, 4);
    for train in Train::ALL {
        let cols = train.columns(d);
        // A direction of the first layer alone and (wa) one of the output layer alone.
        let along_w = DMatrix::from_fn(m, cols, |r, k| {
            if k < d {
                ((r * 13 + k * 7) % 17) as f64 / 17.0 - 0.5
            } else {
                0.0
            }
        });
        let along_a = DMatrix::from_fn(m, cols, |r, k| {
            if k == d {
                ((r * 5) % 11) as f64 / 11.0 - 0.45
            } else {
                0.0
            }
        });
        let mut directions = vec![("W", along_w)];
        if train.output_layer() {
            directions.push(("a", along_a));
        }
        for sigma in Activation::ALL {
            let model = model(&data, &net, sigma, train);
            let p = model.parameters(&net.w);
            assert_eq!(p.shape(), (m, cols));
            let g = model.gradient(&p.as_view());
            let delta = model.residual(&p.as_view());
            let oracle = model.vjp(&p.as_view(), &delta);
            assert!(
                (&g - &oracle).amax() < 1e-13 * oracle.amax().max(1.0),
                "{sigma:?} {train:?}: blocked gradient vs J^T Delta"
            );
            for (name, v) in &directions {
                // The ReLU's loss is piecewise quadratic in W and quadratic in a: a step below
                // the nearest kink is exact up to rounding.
                let h = if sigma == Activation::Relu && *name == "W" {
                    0.4 * model.preactivations(&p.as_view()).amin() / (v.amax() * (d as f64).sqrt())
                } else {
                    1e-5
                };
                let up = model.loss(&(&p + v * h).as_view());
                let down = model.loss(&(&p - v * h).as_view());
                let fd = (up - down) / (2.0 * h);
                let directional = g.dot(v);
                assert!(
                    directional.abs() > 1e-6,
                    "{sigma:?} {train:?} {name}: a direction the loss moves along"
                );
                assert!(
                    (fd - directional).abs() < 1e-7 * directional.abs().max(1.0),
                    "{sigma:?} {train:?} along {name}: finite difference {fd} vs <grad L, V> {directional}"
                );
                let jv = model.jvp(&p.as_view(), &v.as_view());
                let fd_u = (model.predict(&(&p + v * h).as_view())
                    - model.predict(&(&p - v * h).as_view()))
                    / (2.0 * h);
                assert!(
                    (&jv - &fd_u).amax() < 1e-7,
                    "{sigma:?} {train:?} along {name}: J V"
                );
            }
            // H = J J^T: the Gram matrix of the rows of J^T.
            let jt: Vec<DMatrix<f64>> = (0..n)
                .map(|i| {
                    let e = nalgebra::DVector::from_fn(n, |k, _| f64::from(k == i));
                    model.vjp(&p.as_view(), &e)
                })
                .collect();
            let h = model.gram(&p.as_view());
            for i in 0..n {
                for j in 0..n {
                    let jj = jt[i].dot(&jt[j]);
                    assert!(
                        (h[(i, j)] - jj).abs() < 1e-13,
                        "{sigma:?} {train:?}: H_{i}{j} = {} vs J J^T {jj}",
                        h[(i, j)]
                    );
                }
            }
        }
    }
}

#[test]
fn the_trained_gradient_does_not_depend_on_the_lanes() {
    use ntkdyn::model::relu2::engine::Workspace;
    let (n, d, m) = (30, 6, 900);
    let data = Data::synthetic(n, d, 8);
    let net = InitialNetwork::init(m, d, 8);
    for sigma in [Activation::Relu, Activation::Erf] {
        let model = model(&data, &net, sigma, Train::Wa);
        let p = model.parameters(&net.w);
        let mut one = DMatrix::zeros(m, d + 1);
        let mut many = DMatrix::zeros(m, d + 1);
        model.gradient_into(
            &p.as_view(),
            &mut one.as_view_mut(),
            &mut Workspace::with_lanes(m, n, 1),
        );
        model.gradient_into(
            &p.as_view(),
            &mut many.as_view_mut(),
            &mut Workspace::with_lanes(m, n, 8),
        );
        assert_eq!(one, many, "{sigma:?}");
    }
}

#[test]
fn h0_with_a_trained_output_layer_tends_to_hinf_at_rate_one_over_sqrt_m() {
    let data = Data::synthetic(8, 4, 11);
    let widths = [100, 400, 1600, 6400];
    let x: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    for sigma in [Activation::Relu, Activation::Erf, Activation::Gelu] {
        let hinf =
            model(&data, &InitialNetwork::init(1, 4, 0), sigma, Train::Wa).infinite_width_kernel();
        let seeds = 12;
        let gaps: Vec<f64> = widths
            .iter()
            .map(|&m| {
                (0..seeds)
                    .map(|seed| {
                        let net = InitialNetwork::init(m, 4, 100 + seed);
                        let model = model(&data, &net, sigma, Train::Wa);
                        (model.gram(&model.parameters(&net.w).as_view()) - &hinf).norm()
                    })
                    .sum::<f64>()
                    / seeds as f64
            })
            .collect();
        let slope = loglog_slope(&x, &gaps);
        assert!(
            (-0.65..=-0.35).contains(&slope),
            "{sigma:?}: |H0 - Hinf| = {gaps:?}, slope {slope}"
        );
    }
}

#[test]
fn hinf_of_wa_is_hinf_of_w_plus_the_second_layer_kernel_by_quadrature() {
    // On the sphere and off it (the synthetic inputs scaled row by row).
    let mut data = Data::synthetic(7, 3, 5);
    for (i, mut row) in data.x.row_iter_mut().enumerate() {
        row *= 0.8 + 0.05 * i as f64;
    }
    // Both are entire functions: 240 nodes per dimension are exact to rounding at |x| <= 1.1.
    let rule = GaussHermite::new(240);
    let net = InitialNetwork::init(1, 3, 0);
    for sigma in [Activation::Erf, Activation::Gelu, Activation::Relu] {
        let w = model(&data, &net, sigma, Train::W).infinite_width_kernel();
        let wa = model(&data, &net, sigma, Train::Wa).infinite_width_kernel();
        let xx = &data.x * data.x.transpose();
        for i in 0..7 {
            for j in 0..7 {
                let (a, b, c) = (xx[(i, i)], xx[(j, j)], xx[(i, j)]);
                let second = wa[(i, j)] - w[(i, j)];
                if sigma == Activation::Relu {
                    // relu's kink limits Gauss-Hermite: its closed form is the reference.
                    assert!((second - sigma.dual(a, b, c)).abs() < 1e-14);
                    continue;
                }
                let q = rule.expectation2(a, b, c, |z| sigma.value(z));
                assert!(
                    (second - q).abs() < 1e-12,
                    "{sigma:?} ({i}, {j}): Hinf(wa) - Hinf(w) = {second} vs quadrature {q}"
                );
            }
        }
    }
}

#[test]
fn lambda0_with_a_trained_output_layer_is_at_least_lambda0_of_the_first_layer() {
    // Hinf(wa) - Hinf(w) = E[sigma(u) sigma(v)] is positive semi-definite (a Gram matrix).
    let data = Data::synthetic(20, 5, 2);
    let net = InitialNetwork::init(1, 5, 0);
    for sigma in Activation::ALL {
        let min_eig = |train| {
            model(&data, &net, sigma, train)
                .infinite_width_kernel()
                .symmetric_eigenvalues()
                .min()
        };
        let (w, wa) = (min_eig(Train::W), min_eig(Train::Wa));
        assert!(w > 0.0 && wa >= w, "{sigma:?}: lambda0 w {w:e}, wa {wa:e}");
    }
}

fn loss_gap(report: &Report) -> f64 {
    let column = |run: &Option<ntkdyn::study::SpaceRun>| {
        let run = run.as_ref().expect("space was run");
        assert_eq!(run.stop, Stop::Completed);
        run.table.column("loss").expect("loss column")
    };
    let (lw, le) = (column(&report.weight), column(&report.error));
    assert_eq!(lw[0], le[0], "both spaces start from Delta(0)");
    assert!(le[le.len() - 1] < 0.5 * le[0], "the loss fell");
    lw.iter()
        .zip(&le)
        .map(|(a, b)| (a - b).abs() / le[0])
        .fold(0.0, f64::max)
}

#[test]
fn erf_weight_space_with_a_trained_output_layer_approaches_error_space_as_m_grows() {
    let gap = |m: usize, seed: u64| {
        let mut cfg = small(Optimizer::Gf, 8, 4, m, seed);
        cfg.activation = Activation::Erf;
        cfg.train = Train::Wa;
        cfg.space = SpaceChoice::Both;
        cfg.t_end = 10.0;
        cfg.samples = 11;
        cfg.rtol = 1e-8;
        cfg.atol = 1e-12;
        let report = study::run(&cfg).expect("run");
        let a_drift = report.weight.as_ref().unwrap().table.column("a_drift");
        assert!(a_drift.is_some_and(|a| a[0] == 0.0 && a[a.len() - 1] > 0.0));
        loss_gap(&report)
    };
    for seed in [0, 1] {
        let (narrow, wide) = (gap(100, seed), gap(3200, seed));
        assert!(
            wide < 0.4 * narrow,
            "seed {seed}: gap m = 100 {narrow:.3e}, m = 3200 {wide:.3e}"
        );
        assert!(wide < 0.05, "seed {seed}: gap at m = 3200 {wide:.3e}");
    }
}

#[test]
fn every_command_runs_with_a_trained_output_layer() {
    let tmp = TempDir::new("train-wa");
    let common = [
        "--quiet",
        "--train",
        "wa",
        "--n",
        "6",
        "--d",
        "3",
        "--m",
        "40",
        "--t-end",
        "1",
        "--samples",
        "5",
        "--test-n",
        "4",
    ];
    for (command, sigma) in [
        ("gf", "relu"),
        ("hbf", "erf"),
        ("nagsc", "gelu"),
        ("nag", "tanh"),
    ] {
        let out = tmp.join(command);
        let mut args = vec![
            command,
            "--activation",
            sigma,
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(common);
        ntkdyn(&args);
        let json = summary(&out.join("summary.json"));
        assert_eq!(json["config"]["train"], "wa", "{command}");
        let toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
        assert!(toml.contains("train = \"wa\""), "{command}: {toml}");
        let weight = std::fs::read_to_string(out.join("weight.csv")).unwrap();
        assert!(
            weight.lines().next().unwrap().contains("a_drift"),
            "{command}"
        );
        // The kernel is the exact solution's: error space solved from H(0) with the second layer.
        for file in ["error.csv", "discrete.csv"] {
            assert!(out.join(file).exists(), "{command}: {file}");
        }
    }
    // --kernel hinf, and the exact solution of error space.
    let out = tmp.join("hinf");
    let mut args = vec![
        "gf",
        "--kernel",
        "hinf",
        "--space",
        "error",
        "--solver",
        "exact",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(common);
    ntkdyn(&args);
    let out = tmp.join("compare");
    let mut args = vec!["compare", "--out", out.to_str().unwrap()];
    args.extend(common);
    ntkdyn(&args);
    let out = tmp.join("sweep");
    let mut args = vec!["sweep", "--widths", "10,20", "--out", out.to_str().unwrap()];
    args.extend(common.iter().filter(|a| !["--m", "40"].contains(a)));
    ntkdyn(&args);
    // A default run does not name --train in its run.toml.
    let out = tmp.join("default");
    let mut args = vec!["gf", "--out", out.to_str().unwrap()];
    args.extend(common.iter().filter(|a| !["--train", "wa"].contains(a)));
    ntkdyn(&args);
    let toml = std::fs::read_to_string(out.join("run.toml")).unwrap();
    assert!(!toml.contains("train"), "{toml}");
}

#[test]
fn init_takes_real_output_weights_with_wa_alone() {
    let tmp = TempDir::new("train-wa-init");
    let init = tmp.join("init.csv");
    std::fs::write(&init, "0.5,1,0,0\n-2.25,0,1,0\n1,0.3,0.3,0.3\n").unwrap();
    let out = tmp.join("wa");
    ntkdyn(&[
        "gf",
        "--quiet",
        "--train",
        "wa",
        "--n",
        "4",
        "--d",
        "3",
        "--t-end",
        "0.5",
        "--samples",
        "3",
        "--init",
        init.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let refused = Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args([
            "gf",
            "--quiet",
            "--n",
            "4",
            "--d",
            "3",
            "--t-end",
            "0.5",
            "--init",
            init.to_str().unwrap(),
            "--out",
            tmp.join("w").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("--train wa") && err.lines().count() == 1,
        "{err}"
    );
}

/// `--resolution high --train wa` in weight space is refused in one line naming
/// --resolution, before the output folder is made; in error space it runs.
#[test]
fn high_resolution_with_wa_is_refused_in_weight_space_and_runs_in_error_space() {
    let tmp = TempDir::new("wa-high");
    let small = [
        "--n",
        "6",
        "--d",
        "3",
        "--m",
        "40",
        "--t-end",
        "1",
        "--samples",
        "3",
    ];
    for extra in [
        vec!["gf"],
        vec!["hbf"],
        vec!["nagsc"],
        vec!["nag"],
        vec!["hbf", "--beta", "0.5"],
    ] {
        let mut args = extra.clone();
        args.extend(["--quiet", "--train", "wa", "--resolution", "high"]);
        args.extend(small);
        let out = tmp.join("refused");
        args.extend(["--out", out.to_str().unwrap()]);
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&run.stderr);
        assert!(
            !run.status.success() && err.contains("--resolution"),
            "{extra:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!out.exists());
    }
    let gap = tmp.join("gap");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args([
            "gap",
            "hbf",
            "--etas",
            "0.01,0.005",
            "--space",
            "weight",
            "--train",
            "wa",
        ])
        .args(["--out", gap.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        !run.status.success() && err.contains("--train") && !gap.exists(),
        "{err}"
    );
    let out = tmp.join("error");
    let mut args = vec![
        "hbf",
        "--quiet",
        "--train",
        "wa",
        "--resolution",
        "high",
        "--space",
        "error",
    ];
    args.extend(small);
    args.extend(["--out", out.to_str().unwrap()]);
    ntkdyn(&args);
    let loss = summary(&out.join("summary.json"))["error"]["final_loss"]
        .as_f64()
        .unwrap();
    assert!(loss.is_finite() && loss > 0.0, "{loss}");
}
