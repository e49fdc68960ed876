//! One weight-space gradient per activation at the default size (n = 50, d = 10, m = 2000):
//! the median of 200 evaluations, and the same for sigma and sigma' alone, one scalar call at a
//! time ([`Activation::value_and_slope`]) and vectorised ([`Activation::values_and_slopes`]).
//!
//! ```text
//! cargo run --release --example bench_activations
//! ```

use nalgebra::DMatrix;
use ntkdyn::model::relu2::engine::Workspace;
use ntkdyn::model::{Activation, Data, InitialNetwork, Model};
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (n, d, m) = (50, 10, 2000);
    let net = InitialNetwork::init(m, d, 0);
    let data = Data::synthetic(n, d, 0);
    println!("activation  gradient (us)  sigma+sigma' of m n values (us): scalar  vectorised");
    let only = std::env::args().nth(1);
    for sigma in Activation::ALL {
        if only.as_deref().is_some_and(|o| o != sigma.name()) {
            continue;
        }
        let model = Model::with_activation(data.clone(), net.a.clone(), sigma);
        let mut ws = Workspace::new(m, n, d);
        let mut g = DMatrix::zeros(m, d);
        let times: Vec<f64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                model.gradient_into(&net.w.as_view(), &mut g.as_view_mut(), &mut ws);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let z: Vec<f64> = (0..m * n).map(|k| (k as f64 * 0.618).sin() * 3.0).collect();
        let pointwise: Vec<f64> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let s: f64 = z
                    .iter()
                    .map(|z| {
                        let (v, s) = sigma.value_and_slope(*z);
                        v + s
                    })
                    .sum();
                std::hint::black_box(s);
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let (mut v, mut s) = (vec![0.0; z.len()], vec![0.0; z.len()]);
        let vectorised: Vec<f64> = (0..20)
            .map(|_| {
                let t = Instant::now();
                sigma.values_and_slopes(&z, &mut v, &mut s);
                std::hint::black_box((&v, &s));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        println!(
            "{:<10}  {:>13.1}  {:>10.1}  {:>10.1}",
            sigma.name(),
            median(times),
            median(pointwise),
            median(vectorised)
        );
    }
}
