//! Activations other than the ReLU: their infinite-width kernels (closed forms against
//! quadrature, Price's theorem), H(W0) -> Hinf at rate m^(-1/2), the gradient against finite
//! differences, lambda0 > 0, and weight space approaching error space as the width grows.

mod common;

use common::small;
use nalgebra::{DMatrix, DVector};
use ntkdyn::integrate::Stop;
use ntkdyn::model::activation::{GaussHermite, TANH_NODES};
use ntkdyn::model::relu2::arccos;
use ntkdyn::model::{Activation, Data, InfiniteWidth, InitialNetwork, Model};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, Report, SpaceChoice};

/// Covariances (a, b, c) of the unit sphere (a = b = 1) and off it.
const COVARIANCES: [(f64, f64, f64); 7] = [
    (1.0, 1.0, 0.0),
    (1.0, 1.0, 0.37),
    (1.0, 1.0, -0.81),
    (1.0, 1.0, 0.999),
    (1.0, 1.0, 1.0),
    (0.5, 2.0, 0.6),
    (2.0, 0.7, -1.1),
];

#[test]
fn erf_and_gelu_closed_forms_match_gauss_hermite_to_1e_12() {
    // Both are entire functions: 120 nodes per dimension are exact to rounding.
    let rule = GaussHermite::new(120);
    for sigma in [Activation::Erf, Activation::Gelu] {
        for &(a, b, c) in &COVARIANCES {
            let dual = rule.expectation2(a, b, c, |z| sigma.value(z));
            let slope = rule.expectation2(a, b, c, |z| sigma.slope(z));
            let (cd, cs) = (sigma.dual(a, b, c), sigma.dual_slope(a, b, c));
            assert!(
                (dual - cd).abs() < 1e-12,
                "{sigma:?} E[s s] at {a} {b} {c}: {dual} vs {cd}"
            );
            assert!(
                (slope - cs).abs() < 1e-12,
                "{sigma:?} E[s' s'] at {a} {b} {c}: {slope} vs {cs}"
            );
        }
    }
}

#[test]
fn quadrature_kernels_are_converged_to_1e_12() {
    // Each rule against one of twice its nodes: the default degrees have converged.
    for sigma in [Activation::Tanh, Activation::Softplus, Activation::Sigmoid] {
        let fine = GaussHermite::new(2 * TANH_NODES);
        for &(a, b, c) in &COVARIANCES[..5] {
            let reference = fine.expectation2(a, b, c, |z| sigma.slope(z));
            let got = sigma.dual_slope(a, b, c);
            assert!(
                (got - reference).abs() < 1e-12,
                "{sigma:?} E[s' s'] at {c}: {got} vs {reference}"
            );
            let reference = fine.expectation2(a, b, c, |z| sigma.value(z));
            let got = sigma.dual(a, b, c);
            assert!(
                (got - reference).abs() < 1e-12,
                "{sigma:?} E[s s] at {c}: {got} vs {reference}"
            );
        }
    }
}

#[test]
fn relu_kernel_is_the_arc_cosine_kernel_of_the_network() {
    // Hinf of the model is arccos::hinf bit for bit (no quadrature for the ReLU), and its
    // first-layer dual is the arc-cosine kernel of order 0.
    let data = Data::synthetic(12, 4, 3);
    let net = InitialNetwork::init(10, 4, 3);
    let model = Model::with_activation(data.clone(), net.a, Activation::Relu);
    assert_eq!(model.infinite_width_kernel(), arccos::hinf(&data));
    for &(a, b, c) in &COVARIANCES {
        let cos = (c / (a * b).sqrt()).clamp(-1.0, 1.0);
        let expected = (std::f64::consts::PI - cos.acos()) / (2.0 * std::f64::consts::PI);
        assert!((Activation::Relu.dual_slope(a, b, c) - expected).abs() < 1e-15);
    }
}

#[test]
fn the_slope_kernel_is_the_derivative_of_the_dual_kernel_on_the_sphere() {
    // Price's theorem: d/drho E[sigma(u) sigma(v)] = E[sigma'(u) sigma'(v)] for unit variances
    // and correlation rho; central differences, error O(h^2).
    let h = 1e-4;
    for sigma in Activation::ALL {
        for rho in [-0.9, -0.5, 0.0, 0.3, 0.7, 0.95] {
            let fd = (sigma.dual(1.0, 1.0, rho + h) - sigma.dual(1.0, 1.0, rho - h)) / (2.0 * h);
            let slope = sigma.dual_slope(1.0, 1.0, rho);
            assert!(
                (fd - slope).abs() < 1e-7,
                "{sigma:?} at rho = {rho}: d/drho dual = {fd}, dual_slope = {slope}"
            );
        }
    }
}

#[test]
fn the_derivatives_of_every_activation_are_its_slopes() {
    let h = 1e-5;
    for sigma in Activation::ALL {
        for z in [-3.1, -0.7, 0.2, 1.3, 4.0] {
            let fd = (sigma.value(z + h) - sigma.value(z - h)) / (2.0 * h);
            let (v, s) = sigma.value_and_slope(z);
            assert!((fd - sigma.slope(z)).abs() < 1e-9, "{sigma:?} at {z}");
            assert_eq!((v, s), (sigma.value(z), sigma.slope(z)), "{sigma:?} at {z}");
        }
    }
}

/// |H(W0) - Hinf|_F, mean over seeds, for each width.
fn mean_kernel_gaps(sigma: Activation, widths: &[usize], seeds: u64) -> Vec<f64> {
    let data = Data::synthetic(8, 4, 11);
    let hinf = Model::with_activation(data.clone(), DVector::from_element(1, 1.0), sigma)
        .infinite_width_kernel();
    widths
        .iter()
        .map(|&m| {
            (0..seeds)
                .map(|seed| {
                    let net = InitialNetwork::init(m, 4, 100 + seed);
                    let model = Model::with_activation(data.clone(), net.a, sigma);
                    (model.gram(&net.w.as_view()) - &hinf).norm()
                })
                .sum::<f64>()
                / seeds as f64
        })
        .collect()
}

/// Least-squares slope of log y against log x.
fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let (mx, my) = (
        lx.iter().sum::<f64>() / lx.len() as f64,
        ly.iter().sum::<f64>() / ly.len() as f64,
    );
    let cov: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let var: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    cov / var
}

#[test]
fn h0_tends_to_hinf_at_rate_one_over_sqrt_m_for_every_activation() {
    let widths = [100, 400, 1600, 6400];
    let x: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    for sigma in Activation::ALL {
        let gaps = mean_kernel_gaps(sigma, &widths, 12);
        let slope = loglog_slope(&x, &gaps);
        assert!(
            (-0.65..=-0.35).contains(&slope),
            "{sigma:?}: |H0 - Hinf| = {gaps:?}, slope {slope}"
        );
    }
}

#[test]
fn the_gradient_of_every_activation_matches_finite_differences_of_the_loss() {
    let (n, d, m) = (9, 3, 70);
    let data = Data::synthetic(n, d, 4);
    let net = InitialNetwork::init(m, d, 4);
    let v = DMatrix::from_fn(m, d, |r, k| ((r * 13 + k * 7) % 17) as f64 / 17.0 - 0.5);
    for sigma in Activation::ALL {
        let model = Model::with_activation(data.clone(), net.a.clone(), sigma);
        let g = model.gradient(&net.w.as_view());
        // Also J^T Delta of the dense oracle.
        let delta = model.residual(&net.w.as_view());
        let oracle = model.vjp(&net.w.as_view(), &delta);
        assert!(
            (&g - &oracle).amax() < 1e-13 * oracle.amax().max(1.0),
            "{sigma:?}: blocked gradient vs J^T Delta"
        );
        // The ReLU's loss is piecewise quadratic: a step below the nearest kink is exact.
        let h = if sigma == Activation::Relu {
            0.4 * model.preactivations(&net.w.as_view()).amin() / (v.amax() * (d as f64).sqrt())
        } else {
            1e-5
        };
        let up = model.loss(&(&net.w + &v * h).as_view());
        let down = model.loss(&(&net.w - &v * h).as_view());
        let fd = (up - down) / (2.0 * h);
        let directional = g.dot(&v);
        assert!(
            (fd - directional).abs() < 1e-7 * directional.abs().max(1.0),
            "{sigma:?}: finite difference {fd} vs <grad L, V> {directional}"
        );
        // And J V against the prediction's finite difference.
        let jv = model.jvp(&net.w.as_view(), &v.as_view());
        let fd_u = (model.predict(&(&net.w + &v * h).as_view())
            - model.predict(&(&net.w - &v * h).as_view()))
            / (2.0 * h);
        assert!((&jv - &fd_u).amax() < 1e-7, "{sigma:?}: J V");
    }
}

#[test]
fn the_gradient_is_the_same_in_one_lane_and_in_many() {
    use ntkdyn::model::relu2::engine::Workspace;
    let (n, d, m) = (30, 6, 900);
    let data = Data::synthetic(n, d, 8);
    let net = InitialNetwork::init(m, d, 8);
    for sigma in [Activation::Erf, Activation::Tanh] {
        let model = Model::with_activation(data.clone(), net.a.clone(), sigma);
        let mut one = DMatrix::zeros(m, d);
        let mut many = DMatrix::zeros(m, d);
        model.gradient_into(
            &net.w.as_view(),
            &mut one.as_view_mut(),
            &mut Workspace::with_lanes(m, n, 1),
        );
        model.gradient_into(
            &net.w.as_view(),
            &mut many.as_view_mut(),
            &mut Workspace::with_lanes(m, n, 8),
        );
        assert_eq!(one, many, "{sigma:?}");
    }
}

#[test]
fn lambda0_is_positive_on_distinct_points_for_every_activation() {
    let data = Data::synthetic(20, 5, 2);
    for sigma in Activation::ALL {
        let model = Model::with_activation(data.clone(), DVector::from_element(1, 1.0), sigma);
        let hinf = model.infinite_width_kernel();
        assert_eq!(hinf, hinf.transpose(), "{sigma:?}: Hinf symmetric");
        let eig = hinf.symmetric_eigenvalues();
        let (lambda0, lambda_max) = (eig.min(), eig.max());
        // Well above the eigen-solver's rounding (n eps lambda_max ~ 1e-14 lambda_max). Smooth
        // activations have a large linear part (c E[sigma' sigma'] ~ c sigma'(0)^2, of rank d),
        // so their lambda0 is much smaller than the ReLU's: softplus 2.3e-4 here.
        assert!(
            lambda0 > 1e-8 * lambda_max,
            "{sigma:?}: lambda0 = {lambda0}, lambda_max = {lambda_max}"
        );
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
fn erf_weight_space_approaches_error_space_as_the_width_grows() {
    let gap = |m: usize, seed: u64| {
        let mut cfg = small(Optimizer::Gf, 8, 4, m, seed);
        cfg.activation = Activation::Erf;
        cfg.space = SpaceChoice::Both;
        cfg.t_end = 10.0;
        cfg.samples = 11;
        cfg.rtol = 1e-8;
        cfg.atol = 1e-12;
        loss_gap(&study::run(&cfg).expect("run"))
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

/// issue 17: a smooth activation's weight space, read off Dormand-Prince's continuous
/// extension between steps (the default), agrees with the run landing on every output time
/// to the tolerance level, in far fewer steps: gradient flow and heavy ball with erf.
#[test]
fn an_interpolated_smooth_run_agrees_with_a_landed_run_to_the_tolerance() {
    use ntkdyn::dynamics::{Damping, Flow, WeightSpace};
    use ntkdyn::integrate::{integrate_smooth, Outputs, Solver, SolverSettings};
    let (n, d, m) = (20, 5, 300);
    let net = InitialNetwork::init(m, d, 7);
    let model = Model::with_activation(Data::synthetic(n, d, 7), net.a.clone(), Activation::Erf);
    let space = WeightSpace::new(&model);
    let times: Vec<f64> = (0..=100).map(|k| 0.05 * k as f64).collect();
    let settings = SolverSettings {
        solver: Solver::Dopri5,
        rtol: 1e-6,
        atol: 1e-9,
        step: 0.01,
        max_steps: 100_000,
        max_step: 0.1,
    };
    for damping in [Damping::None, Damping::Constant(1.0)] {
        let flow = Flow::new(&space, damping);
        let run = |outputs| {
            let mut losses = Vec::new();
            let (stats, stop) = integrate_smooth(
                flow,
                flow.initial_state(net.w.as_slice()),
                &times,
                &settings,
                outputs,
                |_| {},
                |_, y| {
                    losses.push(model.loss(&model.weights(&y.as_slice()[..m * d])));
                    true
                },
            );
            assert_eq!(stop, Stop::Completed, "{damping:?} {outputs:?}");
            (losses, stats.accepted_steps)
        };
        let (landed, landed_steps) = run(Outputs::Land);
        let (read, steps) = run(Outputs::Interpolate);
        assert_eq!(read.len(), times.len());
        assert!(
            2 * steps <= landed_steps + 5,
            "{damping:?}: {steps} steps against {landed_steps} landed"
        );
        assert!(landed[100] < 0.9 * landed[0], "{damping:?}: the loss moves");
        let err = landed
            .iter()
            .zip(&read)
            .map(|(a, b)| (a - b).abs() / a)
            .fold(0.0, f64::max);
        assert!(
            err < 1e-6,
            "{damping:?}: interpolated losses {err:e} off the landed ones"
        );
    }
}
