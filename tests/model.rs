//! The network, its gradient, its Gram matrix H = J J^T and its Jacobian-vector product,
//! each against finite differences or SPEC.md's definitions written out as plain loops.

use nalgebra::{DMatrix, DVector};
use ntkdyn::model::relu2::{engine::Workspace, pattern::Pattern};
use ntkdyn::model::{Data, InitialNetwork, Model};

fn problem(n: usize, d: usize, m: usize, seed: u64) -> (Model, DMatrix<f64>) {
    let data = Data::synthetic(n, d, seed);
    let net = InitialNetwork::init(m, d, seed);
    (Model::new(data, net.a), net.w)
}

/// Pre-activations w_r . x_i by loops.
fn preact(model: &Model, w: &DMatrix<f64>, r: usize, i: usize) -> f64 {
    (0..model.d())
        .map(|j| w[(r, j)] * model.data().x[(i, j)])
        .sum()
}

/// Smallest |w_r . x_i|: how far W is from a ReLU kink.
fn kink_distance(model: &Model, w: &DMatrix<f64>) -> f64 {
    let mut min = f64::INFINITY;
    for r in 0..model.m() {
        for i in 0..model.n() {
            min = min.min(preact(model, w, r, i).abs());
        }
    }
    min
}

/// u_i = (1/sqrt m) sum_r a_r relu(w_r . x_i), by loops.
fn predict_by_hand(model: &Model, w: &DMatrix<f64>) -> DVector<f64> {
    let m = model.m();
    DVector::from_fn(model.n(), |i, _| {
        (0..m)
            .map(|r| model.a()[r] * preact(model, w, r, i).max(0.0))
            .sum::<f64>()
            / (m as f64).sqrt()
    })
}

#[test]
fn synthetic_data_lie_on_unit_sphere_and_init_signs_are_plus_minus_one() {
    let data = Data::synthetic(20, 6, 3);
    assert_eq!((data.n(), data.d()), (20, 6));
    assert!(
        data.max_norm_deviation() < 1e-14,
        "{}",
        data.max_norm_deviation()
    );
    let net = InitialNetwork::init(500, 6, 3);
    assert_eq!((net.w.nrows(), net.w.ncols()), (500, 6));
    assert!(net.a.iter().all(|&a| a == 1.0 || a == -1.0));
    let plus = net.a.iter().filter(|&&a| a == 1.0).count();
    // Uniform signs: 250 +- 4 standard deviations (sd = sqrt(500)/2 ~ 11).
    assert!((plus as f64 - 250.0).abs() < 45.0, "{plus} of 500 are +1");
    // w_r ~ N(0, I): sample mean near 0 and variance near 1 over 3000 entries.
    let k = net.w.len() as f64;
    let mean = net.w.iter().sum::<f64>() / k;
    let var = net.w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / k;
    assert!(
        mean.abs() < 0.08 && (var - 1.0).abs() < 0.1,
        "mean {mean}, var {var}"
    );
}

#[test]
fn prediction_and_loss_match_the_definition() {
    let (model, w) = problem(7, 4, 25, 11);
    let u = model.predict(&w.as_view());
    let u_hand = predict_by_hand(&model, &w);
    assert!((&u - &u_hand).amax() < 1e-14, "{}", (&u - &u_hand).amax());
    let delta = &u_hand - &model.data().y;
    assert!((model.residual(&w.as_view()) - &delta).amax() < 1e-14);
    let loss = 0.5 * delta.iter().map(|v| v * v).sum::<f64>();
    assert!((model.loss(&w.as_view()) - loss).abs() < 1e-13 * loss);
}

#[test]
fn gradient_of_loss_matches_central_differences_away_from_kinks() {
    let (model, w) = problem(8, 5, 30, 1);
    let h = 1e-5;
    // |x_ij| <= 1 on the sphere, so a step h in one weight moves w_r.x_i by at most h:
    // no pre-activation changes sign between W - h e and W + h e.
    let dist = kink_distance(&model, &w);
    assert!(dist > 10.0 * h, "W too close to a kink: {dist}");
    let g = model.gradient(&w.as_view());
    let scale = g.amax();
    assert!(scale > 1e-3);
    let mut worst: f64 = 0.0;
    for r in 0..model.m() {
        for j in 0..model.d() {
            let mut wp = w.clone();
            let mut wm = w.clone();
            wp[(r, j)] += h;
            wm[(r, j)] -= h;
            let fd = (model.loss(&wp.as_view()) - model.loss(&wm.as_view())) / (2.0 * h);
            worst = worst.max((fd - g[(r, j)]).abs());
        }
    }
    // L is quadratic in W on a fixed activation pattern: the central difference is exact up to
    // rounding (~ eps L / h ~ 1e-10).
    assert!(
        worst < 1e-8 * scale.max(1.0),
        "largest |fd - grad| = {worst:e}"
    );
}

#[test]
fn gradient_equals_the_formula_of_du_et_al_with_relu_derivative_one_at_zero() {
    // x_0 = e_1 and w_r with a zero first coordinate: w_r . x_0 = 0 exactly, which counts as active.
    let d = 3;
    let (model0, mut w) = problem(5, d, 12, 4);
    let mut x = model0.data().x.clone();
    x.row_mut(0).copy_from_slice(&[1.0, 0.0, 0.0]);
    let model = Model::new(
        Data {
            x,
            y: model0.data().y.clone(),
        },
        model0.a().clone(),
    );
    for r in 0..6 {
        w[(r, 0)] = 0.0;
    }
    let pattern = model.pattern(&w.as_view());
    for r in 0..6 {
        assert_eq!(pattern[(r, 0)], 1.0, "ReLU'(0) must be 1 (row {r})");
    }
    let m = model.m();
    let delta = predict_by_hand(&model, &w) - &model.data().y;
    let mut g_hand = DMatrix::zeros(m, d);
    for r in 0..m {
        for i in 0..model.n() {
            if preact(&model, &w, r, i) >= 0.0 {
                for j in 0..d {
                    g_hand[(r, j)] +=
                        model.a()[r] * delta[i] * model.data().x[(i, j)] / (m as f64).sqrt();
                }
            }
        }
    }
    let g = model.gradient(&w.as_view());
    assert!((&g - &g_hand).amax() < 1e-14, "{}", (&g - &g_hand).amax());
    // gradient_into returns Delta too.
    let mut g2 = DMatrix::zeros(m, d);
    let mut ws = Workspace::new(m, model.n(), model.d());
    let delta2 = model.gradient_into(&w.as_view(), &mut g2.as_view_mut(), &mut ws);
    assert!((&delta2 - &delta).amax() < 1e-14);
    assert_eq!(g2, g);
}

#[test]
fn gradient_with_its_own_frozen_pattern_equals_the_plain_gradient() {
    let (model, w) = problem(9, 4, 40, 2);
    let mut ws = Workspace::new(model.m(), model.n(), model.d());
    let s = Pattern::of(&model, &w.as_view(), &mut ws);
    assert_eq!(s.to_matrix(), model.pattern(&w.as_view()));
    let mut g1 = DMatrix::zeros(model.m(), model.d());
    let mut g2 = DMatrix::zeros(model.m(), model.d());
    let d1 = model.gradient_into(&w.as_view(), &mut g1.as_view_mut(), &mut ws);
    let d2 = model.gradient_with_pattern(&w.as_view(), &mut g2.as_view_mut(), &mut ws, Some(&s));
    assert!((&d1 - &d2).amax() < 1e-13, "{}", (&d1 - &d2).amax());
    assert!((&g1 - &g2).amax() < 1e-13, "{}", (&g1 - &g2).amax());
    // With a frozen pattern u is linear in W: u(2W) - y = 2 u(W) - y, for the frozen Delta.
    let w2 = &w * 2.0;
    let d3 = model.gradient_with_pattern(&w2.as_view(), &mut g2.as_view_mut(), &mut ws, Some(&s));
    let expect = (&d1 + &model.data().y) * 2.0 - &model.data().y;
    assert!((&d3 - &expect).amax() < 1e-12);
}

/// J = du/dW (n x m d, W flattened column-major) by central differences.
fn jacobian_fd(model: &Model, w: &DMatrix<f64>, h: f64) -> DMatrix<f64> {
    let (m, d) = (model.m(), model.d());
    let mut jac = DMatrix::zeros(model.n(), m * d);
    for j in 0..d {
        for r in 0..m {
            let mut wp = w.clone();
            let mut wm = w.clone();
            wp[(r, j)] += h;
            wm[(r, j)] -= h;
            let col = (model.predict(&wp.as_view()) - model.predict(&wm.as_view())) / (2.0 * h);
            jac.set_column(j * m + r, &col);
        }
    }
    jac
}

#[test]
fn gram_matrix_equals_its_definition_by_counting_shared_activations() {
    let (model, w) = problem(10, 5, 60, 5);
    let h = model.gram(&w.as_view());
    let (n, m) = (model.n(), model.m());
    for i in 0..n {
        for j in 0..n {
            let xx: f64 = (0..model.d())
                .map(|k| model.data().x[(i, k)] * model.data().x[(j, k)])
                .sum();
            let count = (0..m)
                .filter(|&r| preact(&model, &w, r, i) >= 0.0 && preact(&model, &w, r, j) >= 0.0)
                .count();
            let hij = xx * count as f64 / m as f64;
            assert!(
                (h[(i, j)] - hij).abs() < 1e-14,
                "H[{i},{j}] = {} vs {hij}",
                h[(i, j)]
            );
        }
    }
}

#[test]
fn gram_matrix_equals_j_j_transpose_from_finite_difference_jacobian() {
    let (model, w) = problem(8, 4, 30, 6);
    let step = 1e-6;
    assert!(kink_distance(&model, &w) > 10.0 * step);
    let jac = jacobian_fd(&model, &w, step);
    let jjt = &jac * jac.transpose();
    let h = model.gram(&w.as_view());
    let err = (&h - &jjt).amax();
    assert!(err < 1e-8, "|H - J J^T|_max = {err:e}");
    // H is symmetric positive semi-definite.
    assert_eq!(h, h.transpose());
    let ev = h.clone().symmetric_eigenvalues();
    assert!(ev.iter().all(|&l| l > -1e-12), "{ev}");
}

#[test]
fn jvp_equals_jacobian_times_vector_and_directional_derivative() {
    let (model, w) = problem(8, 4, 30, 7);
    let step = 1e-6;
    assert!(kink_distance(&model, &w) > 10.0 * step);
    let v = InitialNetwork::init(model.m(), model.d(), 99).w;
    let jv = model.jvp(&w.as_view(), &v.as_view());
    let jac = jacobian_fd(&model, &w, step);
    let jv_fd = &jac * DVector::from_column_slice(v.as_slice());
    assert!(
        (&jv - &jv_fd).amax() < 1e-8 * jv.amax().max(1.0),
        "{}",
        (&jv - &jv_fd).amax()
    );
    // d/ds u(W + s V) at s = 0, with a step that crosses no kink (|v_r . x_i| <= |v_r|).
    let s = 1e-7;
    let vmax = (0..model.m()).map(|r| v.row(r).norm()).fold(0.0, f64::max);
    assert!(kink_distance(&model, &w) > 10.0 * s * vmax);
    let wp = &w + &v * s;
    let wm = &w - &v * s;
    let dir = (model.predict(&wp.as_view()) - model.predict(&wm.as_view())) / (2.0 * s);
    assert!((&jv - &dir).amax() < 1e-7, "{}", (&jv - &dir).amax());
    // The gradient is J^T Delta.
    let delta = model.residual(&w.as_view());
    let g = model.gradient(&w.as_view());
    let jt_delta = jac.transpose() * &delta;
    assert!((DVector::from_column_slice(g.as_slice()) - jt_delta).amax() < 1e-8);
}

/// G and Delta of a dense pattern S (m x n) by the matrix formulas of the module docs:
/// u = (S o Z)^T a / sqrt m, G = (S o a Delta^T / sqrt m) X.
fn gradient_of_dense_pattern(
    model: &Model,
    w: &DMatrix<f64>,
    s: &DMatrix<f64>,
) -> (DMatrix<f64>, DVector<f64>) {
    let sq = (model.m() as f64).sqrt();
    let z = w * model.data().x.transpose();
    let delta = z.component_mul(s).tr_mul(model.a()) / sq - &model.data().y;
    let p = DMatrix::from_fn(model.m(), model.n(), |r, i| {
        s[(r, i)] * model.a()[r] * delta[i] / sq
    });
    (p * &model.data().x, delta)
}

#[test]
fn blocked_gradient_is_the_same_in_any_number_of_lanes_and_blocks() {
    // n = 200 makes blocks of at most 163 neurons: m = 2000 spans 16 blocks, several per lane,
    // and 7 lanes leave a short last lane.
    let (model, w) = problem(200, 5, 2000, 3);
    let s = model.pattern(&w.as_view());
    let (g_ref, d_ref) = gradient_of_dense_pattern(&model, &w, &s);
    let mut first: Option<(DMatrix<f64>, DVector<f64>)> = None;
    for lanes in [1, 2, 3, 7] {
        let mut ws = Workspace::with_lanes(model.m(), model.n(), lanes);
        assert_eq!(ws.lanes(), lanes);
        let mut g = DMatrix::zeros(model.m(), model.d());
        let delta = model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut ws);
        assert!(
            (&g - &g_ref).amax() < 1e-12,
            "{lanes} lanes: {}",
            (&g - &g_ref).amax()
        );
        assert!((&delta - &d_ref).amax() < 1e-12);
        // Not only close: the same bits in any number of lanes.
        match &first {
            None => first = Some((g, delta)),
            Some((g1, d1)) => {
                assert_eq!(&g, g1, "{lanes} lanes");
                assert_eq!(&delta, d1, "{lanes} lanes");
            }
        }
    }
}

#[test]
fn held_pattern_with_fractional_entries_matches_the_dense_formula() {
    let (model, w) = problem(150, 6, 400, 4);
    let (_, w_other) = problem(150, 6, 400, 5);
    for lanes in [1, 3] {
        let mut ws = Workspace::with_lanes(model.m(), model.n(), lanes);
        // The pattern of another W, then fractional weights on a few entries.
        let mut p = Pattern::of(&model, &w_other.as_view(), &mut ws);
        for (k, r) in [0, 7, 81, 82, 250, 399].into_iter().enumerate() {
            p.set_blend(r, (k * 37) % 150, 0.1 + 0.15 * k as f64);
        }
        assert_eq!(p.blended(), 6);
        let s = p.to_matrix();
        assert_eq!(s[(81, 74)], 0.1 + 0.15 * 2.0);
        let (g_ref, d_ref) = gradient_of_dense_pattern(&model, &w, &s);
        let mut g = DMatrix::zeros(model.m(), model.d());
        let delta =
            model.gradient_with_pattern(&w.as_view(), &mut g.as_view_mut(), &mut ws, Some(&p));
        assert!((&g - &g_ref).amax() < 1e-12, "{}", (&g - &g_ref).amax());
        assert!((&delta - &d_ref).amax() < 1e-12);
        // Back to 0/1: the blend is gone.
        p.clear_blend();
        assert_eq!(p.blended(), 0);
    }
}

#[test]
fn pattern_changes_and_retake_count_the_sign_flips() {
    let (model, w0) = problem(120, 4, 300, 6);
    let w1 = &w0 + DMatrix::from_fn(300, 4, |r, j| 0.05 * ((r * 7 + j * 3) % 11) as f64 - 0.25);
    let (s0, s1) = (model.pattern(&w0.as_view()), model.pattern(&w1.as_view()));
    let expect: Vec<(usize, usize)> = (0..300)
        .flat_map(|r| (0..120).map(move |i| (r, i)))
        .filter(|&(r, i)| s0[(r, i)] != s1[(r, i)])
        .collect();
    assert!(expect.len() > 100, "the perturbation should flip signs");
    for lanes in [1, 2, 5] {
        let mut ws = Workspace::with_lanes(300, 120, lanes);
        let mut p = Pattern::of(&model, &w0.as_view(), &mut ws);
        let (mut signs, mut changed) = (Vec::new(), Vec::new());
        p.changes(&model, &w1.as_view(), &mut signs, &mut changed, &mut ws);
        assert_eq!(changed, expect);
        let flips = p.retake(&model, &w1.as_view(), &mut signs, &mut ws);
        assert_eq!(flips as usize, expect.len());
        assert_eq!(p.to_matrix(), s1);
    }
}

#[test]
fn fused_kernels_match_the_gemm_path_in_any_shape() {
    use ntkdyn::model::relu2::engine::Kernel;
    // Shapes off the kernels' tiles: n not a multiple of 4 or 8, d not of 4 or 20, m not of 6
    // or 2, and a width below one tile.
    for (n, d, m, seed) in [
        (103, 7, 1001, 11),
        (100, 20, 997, 12),
        (5, 3, 13, 13),
        (9, 23, 4, 14),
    ] {
        let (model, w) = problem(n, d, m, seed);
        let (_, w_other) = problem(n, d, m, seed + 100);
        let v = DMatrix::from_fn(m, d, |r, k| ((r * 13 + k * 7) % 17) as f64 / 17.0 - 0.5);
        let beta = DVector::from_fn(n, |i, _| ((i * 5) % 11) as f64 / 11.0 - 0.4);
        for lanes in [1, 2] {
            let mut fused = Workspace::with_kernel(m, n, lanes, Kernel::Fused);
            let mut gemm = Workspace::with_kernel(m, n, lanes, Kernel::Gemm);
            assert_eq!(gemm.kernel(), Kernel::Gemm);
            assert_eq!(fused.kernel(), Kernel::best());
            let close = |a: &DMatrix<f64>, b: &DMatrix<f64>, what: &str| {
                let err = (a - b).amax() / b.amax();
                assert!(
                    err < 1e-13,
                    "{what} at n {n} d {d} m {m}, {lanes} lanes: {err}"
                );
            };
            // The ReLU's own pattern.
            let (mut g1, mut g2) = (DMatrix::zeros(m, d), DMatrix::zeros(m, d));
            let d1 = model.gradient_into(&w.as_view(), &mut g1.as_view_mut(), &mut fused);
            let d2 = model.gradient_into(&w.as_view(), &mut g2.as_view_mut(), &mut gemm);
            close(&g1, &g2, "gradient");
            close(
                &DMatrix::from_column_slice(n, 1, d1.as_slice()),
                &DMatrix::from_column_slice(n, 1, d2.as_slice()),
                "Delta",
            );
            // A held pattern (of another W) with fractional entries.
            let mut p1 = Pattern::of(&model, &w_other.as_view(), &mut fused);
            let p2 = Pattern::of(&model, &w_other.as_view(), &mut gemm);
            assert_eq!(p1, p2, "signs at n {n} d {d} m {m}");
            for (k, r) in [0, m / 3, m / 2, m - 1].into_iter().enumerate() {
                p1.set_blend(r, (k * 37) % n, 0.2 + 0.2 * k as f64);
            }
            let d1 = model.gradient_with_pattern(
                &w.as_view(),
                &mut g1.as_view_mut(),
                &mut fused,
                Some(&p1),
            );
            let d2 = model.gradient_with_pattern(
                &w.as_view(),
                &mut g2.as_view_mut(),
                &mut gemm,
                Some(&p1),
            );
            close(&g1, &g2, "held gradient");
            close(
                &DMatrix::from_column_slice(n, 1, d1.as_slice()),
                &DMatrix::from_column_slice(n, 1, d2.as_slice()),
                "held Delta",
            );
            let (mut j1, mut j2) = (vec![0.0; n], vec![0.0; n]);
            model.jvp_held(&v.as_view(), &mut fused, &p1, &mut j1);
            model.jvp_held(&v.as_view(), &mut gemm, &p1, &mut j2);
            close(
                &DMatrix::from_column_slice(n, 1, &j1),
                &DMatrix::from_column_slice(n, 1, &j2),
                "J_S V",
            );
            model.vjp_held(beta.as_slice(), &mut g1.as_view_mut(), &mut fused, &p1);
            model.vjp_held(beta.as_slice(), &mut g2.as_view_mut(), &mut gemm, &p1);
            close(&g1, &g2, "J_S^T beta");
            // Sign changes against the held mask.
            let (mut s1, mut c1, mut s2, mut c2) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            p1.changes(&model, &w.as_view(), &mut s1, &mut c1, &mut fused);
            p1.changes(&model, &w.as_view(), &mut s2, &mut c2, &mut gemm);
            assert!(
                c1.len() > n,
                "W and the other W should differ in many signs"
            );
            assert_eq!(c1, c2);
        }
    }
}
