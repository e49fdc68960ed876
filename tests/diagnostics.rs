//! The PL* diagnostics and the kernel predictor (Liu, Zhu, Belkin 2022; Du et al. 2018).

mod common;

use nalgebra::{DMatrix, DVector};
use ntkdyn::dynamics::{ErrorSpace, Space};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, RunConfig, SpaceChoice};
use ntkdyn::theory::diagnostics::{pl_ratio, KernelPredictor};

#[test]
fn pl_ratio_never_falls_below_twice_lambda_min_of_the_kernel() {
    for opt in [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag] {
        let cfg = RunConfig {
            n: 12,
            d: 4,
            m: 300,
            t_end: 10.0,
            samples: 41,
            space: SpaceChoice::Both,
            discrete: false,
            ..RunConfig::defaults(opt)
        };
        let report = study::run(&cfg).unwrap();
        let w = &report.weight.as_ref().unwrap().table;
        let (mu, lmin) = (
            w.column("pl_ratio").unwrap(),
            w.column("lambda_min").unwrap(),
        );
        for (k, (m, l)) in mu.iter().zip(&lmin).enumerate() {
            assert!(
                *m >= 2.0 * l * (1.0 - 1e-10),
                "{opt:?} sample {k}: mu {m} < 2 lambda_min {l}"
            );
        }
        let e = &report.error.as_ref().unwrap().table;
        let floor = 2.0 * report.setup.h0_extremes.0;
        for m in e.column("pl_ratio").unwrap() {
            assert!(
                m >= floor * (1.0 - 1e-10),
                "{opt:?} error space: {m} < {floor}"
            );
        }
        let cond = e.column("kernel_cond").unwrap();
        let want = report.setup.h0_extremes.1 / report.setup.h0_extremes.0;
        assert!(cond.iter().all(|c| (c - want).abs() <= 1e-12 * want));
    }
}

#[test]
fn pl_ratio_of_a_linear_model_is_its_exact_value() {
    // f(w) = A w, L = 1/2 |A w - y|^2: grad L = A^T Delta, so mu = |A^T Delta|^2 / L exactly.
    let a = DMatrix::from_fn(5, 3, |i, j| ((i * 3 + j) as f64 * 0.37).sin());
    let space = ErrorSpace {
        h: &a * a.transpose(),
    };
    let delta = DVector::from_fn(5, |i, _| 1.0 - 0.3 * i as f64);
    let s = space.snapshot(delta.as_slice(), delta.as_slice());
    let exact = (a.transpose() * &delta).norm_squared() / (0.5 * delta.norm_squared());
    let got = pl_ratio(s.loss(), s.pseudo_loss);
    assert!((got - exact).abs() <= 1e-13 * exact, "{got} vs {exact}");
}

#[test]
fn gd_at_one_over_lambda_max_stays_under_the_pl_envelope_at_large_width() {
    let cfg = RunConfig {
        n: 20,
        d: 5,
        m: 4000,
        t_end: 300.0,
        space: SpaceChoice::Error,
        solver: ntkdyn::integrate::Solver::Exact,
        eta_auto: true,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let report = study::run(&cfg).unwrap();
    assert!((report.setup.eta - 1.0 / report.setup.h0_extremes.1).abs() < 1e-15);
    let table = report.discrete_table().unwrap();
    let (loss, envelope) = (
        table.column("loss").unwrap(),
        table.column("pl_envelope").unwrap(),
    );
    assert!(loss.len() > 100);
    for (k, (l, e)) in loss.iter().zip(&envelope).enumerate() {
        assert!(
            *l <= e * (1.0 + 1e-9),
            "iterate {k}: loss {l} above the envelope {e}"
        );
    }
    // The envelope is not vacuous: by the end the loss has fallen a hundredfold.
    assert!(loss.last().unwrap() < &(loss[0] / 100.0));
}

#[test]
fn the_kernel_predictor_interpolates_the_training_points_at_convergence() {
    // With the training points as test points, K(x, X) = H and f*(x_i) = u_0 + (y - u_0) = y.
    let h = DMatrix::from_fn(4, 4, |i, j| if i == j { 2.0 } else { 0.3 });
    let u0 = DVector::from_vec(vec![0.1, -0.2, 0.3, 0.0]);
    let y = DVector::from_vec(vec![1.0, 0.5, -1.0, 2.0]);
    let predictor = KernelPredictor::new(&h, &h, &u0 - &y, u0.clone());
    let at_convergence = predictor.predict(&DVector::zeros(4));
    assert!((at_convergence - &y).norm() < 1e-12);
    let at_start = predictor.predict(&(&u0 - &y));
    assert!((at_start - &u0).norm() < 1e-12);
}

#[test]
fn test_gap_shrinks_as_the_width_grows() {
    let gap = |m: usize| -> f64 {
        (0..3)
            .map(|seed| {
                let cfg = RunConfig {
                    n: 12,
                    d: 4,
                    m,
                    seed,
                    t_end: 10.0,
                    samples: 11,
                    test_n: 10,
                    space: SpaceChoice::Weight,
                    discrete: false,
                    ..RunConfig::defaults(Optimizer::Gf)
                };
                let report = study::run(&cfg).unwrap();
                let w = report.weight.unwrap();
                w.table
                    .column("test_gap")
                    .unwrap()
                    .into_iter()
                    .fold(0.0, f64::max)
            })
            .sum::<f64>()
            / 3.0
    };
    let (g1, g2, g3) = (gap(100), gap(400), gap(1600));
    eprintln!("max test_gap, mean of 3 seeds: m=100 {g1:e}, 400 {g2:e}, 1600 {g3:e}");
    assert!(g1 > g2 && g2 > g3, "{g1} {g2} {g3}");
    assert!(
        g1 / g3 > 2.5,
        "a 16x wider network should be at least 2.5x closer: {}",
        g1 / g3
    );
}
