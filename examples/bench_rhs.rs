//! Cost of one weight-space right-hand side (the gradient of L) beside a plain GEMM of the
//! same shapes. `cargo run --release --example bench_rhs [n d m ...]`.
use nalgebra::DMatrix;
use ntkdyn::model::{Data, Model, Network, Workspace};
use std::time::Instant;

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let mut reps = 1;
    loop {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        let s = start.elapsed().as_secs_f64();
        if s > 0.3 {
            return s / reps as f64;
        }
        reps *= 2;
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let shapes: Vec<(usize, usize, usize)> = if args.len() >= 3 {
        args.chunks(3).map(|c| (c[0], c[1], c[2])).collect()
    } else {
        vec![
            (50, 10, 2000),
            (100, 20, 400),
            (100, 20, 1000),
            (100, 20, 10000),
            (100, 20, 100000),
        ]
    };
    println!(
        "{:>5} {:>4} {:>7} {:>12} {:>10} {:>12} {:>10}",
        "n", "d", "m", "rhs (ms)", "GFLOP/s", "2 GEMM (ms)", "GFLOP/s"
    );
    for (n, d, m) in shapes {
        let data = Data::synthetic(n, d, 1);
        let net = Network::init(m, d, 1);
        let model = Model::new(data, net.a.clone());
        let mut ws = Workspace::new(m, n);
        let mut g = DMatrix::zeros(m, d);
        let w = net.w.clone();
        let rhs = time(|| {
            model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut ws);
        });
        let xt = model.data.x.transpose();
        let mut zt = DMatrix::zeros(m, n);
        let p = DMatrix::from_element(m, n, 0.5);
        let gemm = time(|| {
            zt.gemm(1.0, &w, &xt, 0.0);
            g.gemm(1.0, &p, &model.data.x, 0.0);
        });
        let flop = 4.0 * (n * m * d) as f64;
        println!(
            "{n:>5} {d:>4} {m:>7} {:>12.4} {:>10.2} {:>12.4} {:>10.2}",
            rhs * 1e3,
            flop / rhs / 1e9,
            gemm * 1e3,
            flop / gemm / 1e9
        );
    }
}
