//! Bessel functions, the NAG mode phi_nu and the exact eigen-mode solutions of error space.

use nalgebra::{DMatrix, DVector};
use ntkdyn::dynamics::Damping;
use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::theory::exact::{bessel_j, mode, phi, ExactSolution};
use std::f64::consts::PI;

fn j_half(x: f64) -> f64 {
    (2.0 / (PI * x)).sqrt() * x.sin()
}
fn j_three_halves(x: f64) -> f64 {
    (2.0 / (PI * x)).sqrt() * (x.sin() / x - x.cos())
}

#[test]
fn bessel_j_matches_published_values() {
    let cases = [
        (0.0, 1.0, 0.7651976865579666),
        (1.0, 1.0, 0.4400505857449335),
        (1.0, 10.0, 0.04347274616886144),
        (2.0, 1.0, 0.1149034849319005),
    ];
    for (nu, x, want) in cases {
        let got = bessel_j(nu, x);
        assert!(
            (got - want).abs() < 1e-14 * want.abs().max(1e-2),
            "J_{nu}({x}) = {got:e}, want {want:e}"
        );
    }
}

/// Accuracy asked of J_nu for z > 1, relative to its amplitude sqrt(2/(pi z)): far below the
/// 1e-8 that the error-space comparisons need. (Measured against mpmath: puruspe's Jnu_Ynu is
/// good to ~1e-11 up to z ~ 1000 and ~2.5e-10 just below the Hankel switch at z = 5000.)
const J_TOL: f64 = 1e-9;

#[test]
fn bessel_j_of_half_integer_order_matches_closed_forms() {
    // Small, moderate and (Hankel branch, z > 5000) large arguments. The error is measured
    // against the amplitude sqrt(2/(pi x)), since both functions have zeros.
    for &x in &[
        0.1, 0.5, 1.0, 2.5, 3.99, 4.0, 4.01, 7.3, 15.0, 42.0, 150.0, 999.0, 4999.0, 5001.0, 12345.6,
    ] {
        let amp = (2.0 / (PI * x)).sqrt();
        let e1 = (bessel_j(0.5, x) - j_half(x)).abs() / amp;
        let e3 = (bessel_j(1.5, x) - j_three_halves(x)).abs() / amp;
        let tol = if x < 1.0 { 1e-14 } else { J_TOL };
        assert!(e1 < tol, "J_1/2({x}): relative error {e1:e}");
        assert!(e3 < tol, "J_3/2({x}): relative error {e3:e}");
    }
}

#[test]
fn bessel_j_is_continuous_across_the_hankel_switch() {
    // Across a gap 2 delta, J moves by at most about 2 delta amp (|J'| <= amp for large z).
    let delta = 1e-6;
    let amp = (2.0 / (PI * 5000.0)).sqrt();
    for nu in [0.0, 1.0, 2.5, 4.0] {
        let below = bessel_j(nu, 5000.0 - delta);
        let above = bessel_j(nu, 5000.0 + delta);
        let jump = (below - above).abs() / amp;
        assert!(
            jump < 2.02 * delta + J_TOL,
            "nu = {nu}: {below:e} vs {above:e} (jump {jump:e} amp)"
        );
    }
}

#[test]
fn phi_is_one_at_zero_and_continuous_across_its_switch_at_four() {
    for nu in [0.0, 0.5, 1.0, 1.5, 4.0, 7.5] {
        assert_eq!(phi(nu, 0.0), 1.0, "phi_{nu}(0)");
        // The series (z < 4) and Gamma(nu+1) (2/z)^nu J_nu(z) (z >= 4) meet: measured jumps are
        // 5e-12..2e-11 relative, from puruspe::ln_gamma(nu+1) (ln_gamma(1) = 5.2e-12, not 0).
        let (lo, hi) = (phi(nu, 4.0 - 1e-12), phi(nu, 4.0 + 1e-12));
        assert!(
            (lo - hi).abs() < 1e-10 * lo.abs(),
            "phi_{nu} jumps at 4: {lo:e} vs {hi:e}"
        );
        let (lo, hi) = (phi(nu, 4.0 - 1e-3), phi(nu, 4.0 + 1e-3));
        // Across a gap of 2e-3 phi moves by about 2e-3 |phi'|, with |phi'| <= 1.
        assert!((lo - hi).abs() < 3e-3, "phi_{nu} near 4: {lo:e} vs {hi:e}");
    }
}

#[test]
fn phi_of_half_integer_order_matches_closed_forms() {
    // phi_{1/2}(z) = sin z / z (gamma = 2), phi_{3/2}(z) = 3 (sin z - z cos z) / z^3 (gamma = 4).
    for k in 1..400 {
        let z = 0.05 * k as f64;
        let p1 = z.sin() / z;
        let p3 = 3.0 * (z.sin() - z * z.cos()) / z.powi(3);
        // Exact to rounding in the series (z < 4); 1e-10 relative on the Bessel side.
        let tol = if z < 3.9 {
            1e-14
        } else {
            1e-10 * p1.abs().max(p3.abs()).max(1e-3)
        };
        assert!(
            (phi(0.5, z) - p1).abs() < tol,
            "phi_1/2({z}) = {} vs {p1}",
            phi(0.5, z)
        );
        // The closed form of phi_3/2 cancels for small z (sin z - z cos z ~ z^3/3): from z = 1.
        if z >= 1.0 {
            assert!(
                (phi(1.5, z) - p3).abs() < tol,
                "phi_3/2({z}) = {} vs {p3}",
                phi(1.5, z)
            );
        }
    }
    // phi_0 = J_0.
    assert!((phi(0.0, 1.0) - 0.7651976865579666).abs() < 1e-15);
}

/// c(t) of x'' + c(t) x' + lambda x = 0 for a damping schedule.
fn friction(damping: Damping, t: f64) -> f64 {
    match damping {
        Damping::None => 0.0,
        Damping::Constant(b) => b,
        Damping::Vanishing(g) => g / t,
    }
}

/// Largest residual of x'' + c x' + lambda x (second order) or x' + lambda x (first order) over
/// t in (0, t_end], with derivatives by central differences of the returned (x, x').
fn mode_residual(lambda: f64, damping: Damping, t_end: f64) -> f64 {
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    for k in 1..=200 {
        let t = t_end * k as f64 / 200.0;
        let (x, v) = mode(lambda, damping, t);
        let (xp, vp) = mode(lambda, damping, t + h);
        let (xm, vm) = mode(lambda, damping, t - h);
        let xdot = (xp - xm) / (2.0 * h);
        // The returned velocity is the derivative of the returned position.
        worst = worst.max((xdot - v).abs() / (lambda.max(1.0) * (x.abs() + v.abs()) + 1e-12));
        let res = match damping {
            Damping::None => v + lambda * x,
            _ => (vp - vm) / (2.0 * h) + friction(damping, t) * v + lambda * x,
        };
        worst = worst.max(res.abs() / (lambda.max(1.0) * (x.abs() + v.abs()) + 1e-12));
    }
    worst
}

#[test]
fn modes_start_at_one_at_rest() {
    for damping in [
        Damping::None,
        Damping::Constant(0.3),
        Damping::Constant(2.0),
        Damping::Constant(9.0),
        Damping::Vanishing(3.0),
        Damping::Vanishing(9.0),
    ] {
        for lambda in [0.01, 1.0, 7.0] {
            let (x, v) = mode(lambda, damping, 0.0);
            assert!(
                (x - 1.0).abs() < 1e-15,
                "{damping:?} lambda {lambda}: x(0) = {x}"
            );
            let v0 = if damping == Damping::None {
                -lambda
            } else {
                0.0
            };
            assert!(
                (v - v0).abs() < 1e-15,
                "{damping:?} lambda {lambda}: x'(0) = {v}"
            );
        }
    }
}

#[test]
fn gradient_flow_mode_solves_its_ode() {
    for lambda in [0.05, 1.0, 4.0] {
        let r = mode_residual(lambda, Damping::None, 10.0);
        assert!(r < 1e-7, "lambda {lambda}: residual {r:e}");
        let (x, _) = mode(lambda, Damping::None, 2.0);
        assert!((x - (-2.0 * lambda).exp()).abs() < 1e-15);
    }
}

#[test]
fn heavy_ball_mode_solves_its_ode_in_all_three_regimes() {
    let lambda: f64 = 2.0;
    let critical = 2.0 * lambda.sqrt();
    for (b, name) in [
        (0.1, "under-damped"),
        (critical, "critically damped"),
        (3.0 * critical, "over-damped"),
        (30.0, "strongly over-damped"),
    ] {
        let r = mode_residual(lambda, Damping::Constant(b), 20.0);
        assert!(r < 1e-7, "{name} b = {b}: residual {r:e}");
    }
    // Critical damping has the closed form (1 + b t/2) exp(-b t/2).
    let t = 1.7;
    let (x, v) = mode(lambda, Damping::Constant(critical), t);
    let e = (-critical * t / 2.0).exp();
    assert!((x - (1.0 + critical * t / 2.0) * e).abs() < 1e-14);
    assert!((v + lambda * t * e).abs() < 1e-14);
    // Nearly critical on either side agrees with critical (no cancellation at q -> 0).
    for db in [1e-9, -1e-9] {
        let (xn, vn) = mode(lambda, Damping::Constant(critical + db), t);
        assert!(
            (xn - x).abs() < 1e-8 && (vn - v).abs() < 1e-8,
            "b = critical + {db}: {xn} vs {x}"
        );
    }
    // Over-damped at large times: no overflow of cosh, decay at the slow rate.
    let b = 30.0;
    let (x, _) = mode(lambda, Damping::Constant(b), 400.0);
    let slow = b / 2.0 - (b * b / 4.0 - lambda).sqrt();
    let k = (b * b / 4.0 - lambda).sqrt();
    let want = ((k + b / 2.0) / (2.0 * k)) * (-slow * 400.0).exp();
    assert!(
        x.is_finite() && (x - want).abs() < 1e-10 * want,
        "{x:e} vs {want:e}"
    );
}

#[test]
fn nesterov_mode_solves_its_ode_for_several_gammas() {
    for gamma in [3.0, 4.0, 9.0] {
        for lambda in [0.05, 1.0, 6.0] {
            // Up to z = sqrt(lambda) t of about 50: both sides of the switch at z = 4.
            let r = mode_residual(lambda, Damping::Vanishing(gamma), 20.0);
            assert!(r < 1e-6, "gamma {gamma}, lambda {lambda}: residual {r:e}");
        }
    }
    // gamma = 2: x = sin(z)/z, z = sqrt(lambda) t.
    let (x, _) = mode(4.0, Damping::Vanishing(2.0), 3.0);
    assert!(
        (x - 6f64.sin() / 6.0).abs() < 1e-10 * (6f64.sin() / 6.0).abs(),
        "{x} vs {}",
        6f64.sin() / 6.0
    );
}

#[test]
fn exact_solution_solves_the_matrix_ode_of_error_space() {
    let data = Data::synthetic(10, 4, 3);
    let net = InitialNetwork::init(300, 4, 3);
    let model = Model::new(data, net.a);
    let h: DMatrix<f64> = model.gram(&net.w.as_view());
    let delta0: DVector<f64> = model.residual(&net.w.as_view());
    for damping in [
        Damping::None,
        Damping::Constant(0.4),
        Damping::Vanishing(3.0),
        Damping::Vanishing(9.0),
    ] {
        let exact = ExactSolution::new(&h, &delta0, damping);
        let (d0, v0) = exact.at(0.0);
        assert!((&d0 - &delta0).amax() < 1e-12, "{damping:?}: Delta(0)");
        if damping.second_order() {
            assert!(v0.amax() < 1e-12, "{damping:?}: Delta'(0) = {}", v0.amax());
        }
        let step = 1e-5;
        for k in 1..=10 {
            let t = 1.5 * k as f64;
            let (d, v) = exact.at(t);
            let (dp, vp) = exact.at(t + step);
            let (dm, vm) = exact.at(t - step);
            let hd = &h * &d;
            let scale = hd.amax() + v.amax();
            assert!(
                ((&dp - &dm) / (2.0 * step) - &v).amax() < 1e-7 * scale,
                "{damping:?} t {t}: Delta' != d Delta/dt"
            );
            let res = match damping {
                Damping::None => &v + &hd,
                _ => (&vp - &vm) / (2.0 * step) + &v * friction(damping, t) + &hd,
            };
            assert!(
                res.amax() < 1e-7 * scale,
                "{damping:?} t {t}: residual {:e}",
                res.amax()
            );
        }
    }
}

/// H(0) and Delta(0) of a network on n points in d = 20 (m = 1000 hidden units): the
/// kernel of the error-space benchmark at a smaller n.
fn benchmark_kernel(n: usize, seed: u64) -> (DMatrix<f64>, DVector<f64>) {
    let data = Data::synthetic(n, 20, seed);
    let net = InitialNetwork::init(1000, 20, seed);
    let model = Model::new(data, net.a);
    (
        model.gram(&net.w.as_view()),
        model.residual(&net.w.as_view()),
    )
}

/// max over `times` of |a(t) - b(t)| / |b(t)|, for Delta and Delta'.
fn worst_gap(a: &ExactSolution, b: &ExactSolution, times: &[f64]) -> (f64, f64) {
    let mut worst = (0.0f64, 0.0f64);
    for &t in times {
        let ((da, va), (db, vb)) = (a.at(t), b.at(t));
        worst.0 = worst.0.max((&da - &db).norm() / db.norm());
        if vb.norm() > 0.0 {
            worst.1 = worst.1.max((&va - &vb).norm() / vb.norm());
        }
    }
    worst
}

#[test]
fn the_krylov_solution_matches_the_full_decomposition_to_1e_12_for_gf_hbf_and_nag() {
    use ntkdyn::theory::exact::{krylov_spectrum, modes_of};
    use ntkdyn::theory::spectrum::Spectrum;
    use std::sync::Arc;
    for (n, seed) in [(300, 1), (600, 2), (1000, 3)] {
        let (h, delta0) = benchmark_kernel(n, seed);
        let full = Arc::new(Spectrum::of(&h));
        // Stiff: lambda_max T = 400 (sqrt(lambda_max) T of 70 to 100).
        let t_end = 400.0 / full.max();
        let times: Vec<f64> = (0..=20).map(|k| t_end * k as f64 / 20.0).collect();
        let b = (2.0 * full.min()).sqrt();
        for damping in [
            Damping::None,
            Damping::Constant(b),
            Damping::Constant(1.5),
            Damping::Vanishing(3.0),
        ] {
            let modes = modes_of(damping);
            let (ritz, k) = krylov_spectrum(&h, &delta0, &times, &modes, n).expect("converges");
            assert_eq!(ritz.vectors.shape(), (n, k));
            // A Krylov space much smaller than n: the point of it.
            assert!(k < n / 2, "n = {n}, {damping:?}: {k} steps");
            let krylov = ExactSolution::from_spectrum(Arc::new(ritz), &delta0, damping);
            let exact = ExactSolution::from_spectrum(Arc::clone(&full), &delta0, damping);
            let (x, v) = worst_gap(&krylov, &exact, &times);
            assert!(
                x < 1e-12 && v < 1e-12,
                "n = {n}, {damping:?}, k = {k}: Delta {x:e}, Delta' {v:e}"
            );
        }
    }
}

#[test]
fn a_matrix_with_four_eigenvalues_is_solved_exactly_on_a_small_krylov_space() {
    use ntkdyn::theory::exact::{krylov_spectrum, modes_of};
    // Four distinct eigenvalues: K_4(H, b) is invariant for any b (in exact arithmetic;
    // rounding leaves beta_4 at about 1e-12, above the invariance floor of 64 ulps, and the
    // comparison of two checks, at 8 and 16 steps, stops it).
    let n = 200;
    let h = DMatrix::from_fn(n, n, |i, j| {
        if i == j {
            [0.5, 1.0, 4.0, 30.0][i % 4]
        } else {
            0.0
        }
    });
    let delta0 = DVector::from_fn(n, |i, _| (i as f64 * 0.37).sin());
    let times = [0.0, 0.5, 2.0, 10.0];
    let modes = modes_of(Damping::None);
    let (ritz, k) = krylov_spectrum(&h, &delta0, &times, &modes, n).expect("invariant");
    assert!(k <= 16, "{k} steps");
    let krylov = ExactSolution::from_spectrum(std::sync::Arc::new(ritz), &delta0, Damping::None);
    for &t in &times {
        let d = krylov.delta_at(t);
        let want = DVector::from_fn(n, |i, _| (-h[(i, i)] * t).exp() * delta0[i]);
        let gap = (&d - &want).norm() / want.norm();
        assert!(gap <= 1e-12, "t = {t}: {gap:e}");
    }
    assert!(krylov_spectrum(&h, &DVector::zeros(n), &times, &modes, n).is_none());
    // Too few steps allowed: no answer, the caller decomposes H.
    let (h, delta0) = benchmark_kernel(300, 4);
    assert!(krylov_spectrum(&h, &delta0, &[0.0, 20.0], &modes, 8).is_none());
}

#[test]
fn the_krylov_solution_of_the_high_resolution_odes_matches_the_full_decomposition() {
    use ntkdyn::optimizer::Optimizer;
    use ntkdyn::theory::exact::krylov_spectrum;
    use ntkdyn::theory::high_resolution::{HighResolutionSolution, Resolution, Setting};
    use ntkdyn::theory::spectrum::Spectrum;
    use std::sync::Arc;
    let (h, delta0) = benchmark_kernel(600, 7);
    let full = Arc::new(Spectrum::of(&h));
    let eta = 1.0 / full.max();
    let t_end = 400.0 / full.max();
    for (optimizer, damping) in [
        (Optimizer::Gf, Damping::None),
        (Optimizer::Hbf, Damping::Constant(1.0)),
        (Optimizer::Nagsc, Damping::Constant(1.0)),
        (Optimizer::Nag, Damping::Vanishing(3.0)),
    ] {
        let setting = Setting {
            optimizer,
            eta,
            damping,
        };
        let t0 = setting.start_time(Resolution::High);
        let times: Vec<f64> = std::iter::once(t0)
            .chain((1..=20).map(|k| t_end * k as f64 / 20.0))
            .collect();
        let modes = |l: f64, ts: &[f64]| setting.mode_states(Resolution::High, l, ts);
        let (ritz, k) = krylov_spectrum(&h, &delta0, &times, &modes, 600).expect("converges");
        assert!(k < 300, "{optimizer:?}: {k} steps");
        let krylov = HighResolutionSolution::new(Arc::new(ritz), &delta0, setting);
        let exact = HighResolutionSolution::new(Arc::clone(&full), &delta0, setting);
        for &t in &times {
            let ((a, va), (b, vb)) = (krylov.at(t), exact.at(t));
            let x = (&a - &b).norm() / b.norm();
            let v = (&va - &vb).norm() / vb.norm().max(1e-300);
            assert!(
                x < 1e-12 && (vb.norm() == 0.0 || v < 1e-12),
                "{optimizer:?} t = {t}: Delta {x:e}, Delta' {v:e}"
            );
        }
    }
}

#[test]
fn the_krylov_solution_of_the_modified_flow_matches_the_full_decomposition_at_n_1000() {
    use ntkdyn::dynamics::modified_flow::{mode as modified_mode, ModifiedExact};
    use ntkdyn::theory::exact::krylov_spectrum;
    use ntkdyn::theory::spectrum::Spectrum;
    // --beta's error space from KRYLOV_FROM points: Delta(t) = exp(-(H + kappa H^2) t) Delta(0)
    // on the Ritz pairs, as on H's eigenpairs.
    let n = 1000;
    let (h, delta0) = benchmark_kernel(n, 5);
    let full = Spectrum::of(&h);
    let eta = 1.0 / full.max();
    let t_end = 400.0 / full.max();
    let times: Vec<f64> = (0..=20).map(|k| t_end * k as f64 / 20.0).collect();
    // k_B eta for B = 0.5 and 0.9 with the high-resolution clock: kappa of eta/2 to 5 eta.
    for kappa in [0.5 * eta, 5.0 * eta] {
        let modes = |lambda: f64, ts: &[f64]| -> Vec<(f64, f64)> {
            ts.iter()
                .map(|&t| modified_mode(lambda, kappa, t))
                .collect()
        };
        let (ritz, k) = krylov_spectrum(&h, &delta0, &times, &modes, n).expect("converges");
        assert!(k < n / 2, "kappa = {kappa}: {k} steps");
        let krylov = ModifiedExact::from_eigen(ritz.values, ritz.vectors, &delta0, kappa);
        let exact =
            ModifiedExact::from_eigen(full.values.clone(), full.vectors.clone(), &delta0, kappa);
        for &t in &times {
            let ((a, va), (b, vb)) = (krylov.at(t), exact.at(t));
            let x = (&a - &b).norm() / b.norm();
            let v = (&va - &vb).norm() / vb.norm();
            assert!(
                x < 1e-12 && v < 1e-12,
                "kappa = {kappa}, k = {k}, t = {t}: Delta {x:e}, Delta' {v:e}"
            );
        }
    }
}
