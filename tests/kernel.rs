//! The infinite-width kernel Hinf and the convergence of H(W0) to it as the width grows.

mod common;

use nalgebra::DMatrix;
use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::{
    model::relu2::arccos::hinf,
    theory::spectrum::{extreme_eigenvalues, Spectrum},
};

#[test]
fn hinf_has_known_entries_for_known_angles() {
    // x0 = e1, x1 = e2 (orthogonal), x2 = -e1 (opposite), x3 at 60 degrees from e1.
    let s = 3f64.sqrt() / 2.0;
    let x = DMatrix::from_row_slice(
        4,
        3,
        &[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.5, s, 0.0],
    );
    let data = Data {
        x,
        y: nalgebra::DVector::zeros(4),
    };
    let h = hinf(&data);
    for i in 0..4 {
        assert!((h[(i, i)] - 0.5).abs() < 1e-15, "diagonal {}", h[(i, i)]);
    }
    assert!(h[(0, 1)].abs() < 1e-15);
    assert!(h[(0, 2)].abs() < 1e-15, "opposite points: {}", h[(0, 2)]);
    // cos = 1/2: (1/2)(pi - pi/3)/(2 pi) = 1/6.
    assert!((h[(0, 3)] - 1.0 / 6.0).abs() < 1e-15, "{}", h[(0, 3)]);
    // cos = s between e2 and x3: s (pi - pi/6) / (2 pi) = 5 s / 12.
    assert!((h[(1, 3)] - 5.0 * s / 12.0).abs() < 1e-15);
    assert_eq!(h, h.transpose());
}

#[test]
fn hinf_is_positive_definite_on_distinct_sphere_points_and_spectrum_is_sorted() {
    let data = Data::synthetic(20, 5, 1);
    let h = hinf(&data);
    let spec = Spectrum::of(&h);
    let (lo, hi) = extreme_eigenvalues(&h);
    assert!(lo > 0.0, "lambda0 = {lo}");
    assert!((spec.min() - lo).abs() < 1e-12 && (spec.max() - hi).abs() < 1e-12);
    assert!(spec.values.as_slice().windows(2).all(|p| p[0] <= p[1]));
    // V diag(lambda) V^T reproduces H.
    let rebuilt = &spec.vectors * DMatrix::from_diagonal(&spec.values) * spec.vectors.transpose();
    assert!((rebuilt - &h).amax() < 1e-12);
    // Trace = n/2 on the sphere.
    assert!((h.trace() - 10.0).abs() < 1e-12);
}

#[test]
fn h0_approaches_hinf_like_one_over_sqrt_m() {
    let (n, d) = (20, 5);
    let data = Data::synthetic(n, d, 7);
    let hinf = hinf(&data);
    let widths = [100usize, 400, 1600, 6400];
    let seeds = 0..12u64;
    let mut mean_gap = Vec::new();
    for &m in &widths {
        let mut sum = 0.0;
        for seed in seeds.clone() {
            let net = InitialNetwork::init(m, d, 1000 + seed);
            let model = Model::new(data.clone(), net.a);
            sum += (model.gram(&net.w.as_view()) - &hinf).norm();
        }
        mean_gap.push(sum / seeds.clone().count() as f64);
    }
    let ratios: Vec<f64> = mean_gap.windows(2).map(|p| p[0] / p[1]).collect();
    let xs: Vec<f64> = widths.iter().map(|&m| m as f64).collect();
    let slope = common::loglog_slope(&xs, &mean_gap);
    eprintln!("mean |H0 - Hinf|_F = {mean_gap:?}, ratios {ratios:?}, slope {slope}");
    for r in &ratios {
        assert!(
            (1.6..=2.5).contains(r),
            "ratio {r} between widths x4 is not ~2: {ratios:?}"
        );
    }
    assert!(
        (slope + 0.5).abs() < 0.08,
        "log-log slope {slope}, expected -1/2"
    );
}
