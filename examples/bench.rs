//! Benchmarks of ntkdyn, printed as tables (timings belong here, never in tests).
//!
//! ```text
//! cargo run --release --example bench -- rhs                  one right-hand side against two plain GEMMs
//! cargo run --release --example bench -- runs [--scipy] [--reference] [--t-scaling T]
//! ```
//! `runs` times gf, hbf and nag in weight space at n = 100, d = 20, m = 400, T = 100 (the
//! scipy reference setting), then at m = 1000, 10000, 100000 (T = --t-scaling, default 10).
//! `--scipy` (with `--scipy-timeout S`, default 1800) also times bench/scipy_reference.py (solve_ivp RK45, rtol 1e-6, atol 1e-9, numpy
//! right-hand side) on the same data and initialization in the same run and prints the
//! ratio; `--reference` adds a tight run (plain right-hand side, fixed-step RK4, h = 0.002)
//! to measure both final losses against.

use nalgebra::DMatrix;
use ntkdyn::gradient::Workspace;
use ntkdyn::integrate::Solver;
use ntkdyn::io;
use ntkdyn::model::{Data, Model, Network};
use ntkdyn::run::{self, Optimizer, RunConfig, SpaceChoice};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Seconds per call: the fastest of 9 batches of at least 50 ms each (the minimum is the
/// least disturbed by other work on a shared machine).
fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let mut reps = 1;
    loop {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        if start.elapsed().as_secs_f64() > 0.05 {
            break;
        }
        reps *= 2;
    }
    (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                f();
            }
            start.elapsed().as_secs_f64() / reps as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn rhs_table() {
    let threads = rayon::current_num_threads();
    println!("| n | d | m | rhs, 1 lane (ms) | GFLOP/s | rhs, {threads} lanes (ms) | GFLOP/s | 2 GEMM (ms) | GFLOP/s | rhs/GEMM |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (n, d, m) in [
        (50, 10, 2000),
        (100, 20, 400),
        (100, 20, 1000),
        (100, 20, 10000),
        (100, 20, 100000),
    ] {
        let model = Model::new(Data::synthetic(n, d, 1), Network::init(m, d, 1).a);
        let w = Network::init(m, d, 1).w;
        let mut g = DMatrix::zeros(m, d);
        let mut ws = Workspace::with_lanes(m, n, 1);
        let rhs1 = time(|| {
            model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut ws);
        });
        let mut ws = Workspace::with_lanes(m, n, threads);
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
            "| {n} | {d} | {m} | {:.4} | {:.2} | {:.4} | {:.2} | {:.4} | {:.2} | {:.2} |",
            rhs1 * 1e3,
            flop / rhs1 / 1e9,
            rhs * 1e3,
            flop / rhs / 1e9,
            gemm * 1e3,
            flop / gemm / 1e9,
            rhs / gemm
        );
    }
}

fn config(opt: Optimizer, m: usize, t_end: f64, dir: &Path) -> RunConfig {
    RunConfig {
        n: 100,
        d: 20,
        m,
        t_end,
        samples: 11,
        space: SpaceChoice::Weight,
        discrete: false,
        out: dir.join(opt.name()),
        ..RunConfig::defaults(opt)
    }
}

struct Timed {
    wall: f64,
    evaluations: u64,
    final_loss: f64,
    rejected: u64,
    sign_changes: u64,
}

fn ntkdyn_run(cfg: &RunConfig) -> Timed {
    let report = run::run(cfg).expect("benchmark configuration is valid");
    let w = report.weight.expect("weight space was run");
    Timed {
        wall: w.wall_seconds,
        evaluations: w.stats.evaluations,
        final_loss: w.final_loss(),
        rejected: w.stats.rejected_steps,
        sign_changes: w.stats.sign_changes,
    }
}

fn scipy_run(cfg: &RunConfig, dir: &Path, b: f64, limit: f64) -> Option<(f64, u64, f64)> {
    let out = Command::new("timeout")
        .arg(format!("{limit}"))
        .arg("python3")
        .arg("bench/scipy_reference.py")
        .arg(dir.join("data.csv"))
        .arg(dir.join("init.csv"))
        .arg(cfg.optimizer.name())
        .arg(cfg.t_end.to_string())
        .arg(b.to_string())
        .arg(cfg.gamma.to_string())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    Some((
        v["wall_seconds"].as_f64()?,
        v["evaluations"].as_u64()?,
        v["final_loss"].as_f64()?,
    ))
}

fn runs(args: &[String]) {
    let scipy = args.iter().any(|a| a == "--scipy");
    let reference = args.iter().any(|a| a == "--reference");
    let limit: f64 = args
        .iter()
        .position(|a| a == "--scipy-timeout")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1800.0);
    let t_scaling: f64 = args
        .iter()
        .position(|a| a == "--t-scaling")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let dir = std::env::temp_dir().join(format!("ntkdyn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    // The reference setting: one data set and initialization for every run and for scipy.
    let data = Data::synthetic(100, 20, 0);
    let net = Network::init(400, 20, 0);
    std::fs::write(dir.join("data.csv"), io::data_csv(&data)).expect("write data");
    std::fs::write(dir.join("init.csv"), io::init_csv(&net)).expect("write init");
    println!("n = 100, d = 20, m = 400, T = 100; ntkdyn: weight-space dopri5 (held pattern), rtol 1e-6, atol 1e-9, max-step 0.1");
    println!("| run | ntkdyn wall (s) | evaluations | rejected | sign changes | final loss | scipy wall (s) | scipy evaluations | scipy final loss | speed-up | reference final loss | ntkdyn rel. error | scipy rel. error |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for opt in [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag] {
        let mut cfg = config(opt, 400, 100.0, &dir);
        cfg.data = Some(dir.join("data.csv"));
        cfg.init = Some(dir.join("init.csv"));
        let ours = ntkdyn_run(&cfg);
        let lambda0 = run::setup(&cfg).expect("valid").lambda0;
        let b = (2.0 * lambda0).sqrt();
        let theirs = if scipy {
            scipy_run(&cfg, &dir, b, limit)
        } else {
            None
        };
        let timed_out = scipy && theirs.is_none();
        let tight = reference.then(|| {
            ntkdyn_run(&RunConfig {
                solver: Solver::Rk4,
                step: 0.002,
                ..cfg.clone()
            })
            .final_loss
        });
        let cell = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        println!(
            "| {} | {:.3} | {} | {} | {} | {:.6e} | {} | {} | {} | {} | {} | {} | {} |",
            opt.name(),
            ours.wall,
            ours.evaluations,
            ours.rejected,
            ours.sign_changes,
            ours.final_loss,
            if timed_out {
                format!("> {limit} (stopped)")
            } else {
                cell(theirs.map(|t| format!("{:.2}", t.0)))
            },
            cell(theirs.map(|t| t.1.to_string())),
            cell(theirs.map(|t| format!("{:.6e}", t.2))),
            cell(theirs.map(|t| format!("{:.0}x", t.0 / ours.wall))),
            cell(tight.map(|r| format!("{r:.6e}"))),
            cell(tight.map(|r| format!("{:.1e}", (ours.final_loss - r).abs() / r))),
            cell(
                tight
                    .zip(theirs)
                    .map(|(r, t)| format!("{:.1e}", (t.2 - r).abs() / r))
            ),
        );
    }
    println!();
    println!("Scaling with m: n = 100, d = 20, T = {t_scaling}, samples 11");
    println!("| m | optimizer | wall (s) | evaluations | ms per evaluation | final loss |");
    println!("|---|---|---|---|---|---|");
    for m in [1000, 10000, 100000] {
        for opt in [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag] {
            let r = ntkdyn_run(&config(opt, m, t_scaling, &dir));
            println!(
                "| {m} | {} | {:.2} | {} | {:.3} | {:.6e} |",
                opt.name(),
                r.wall,
                r.evaluations,
                r.wall / r.evaluations as f64 * 1e3,
                r.final_loss
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Accuracy and cost of the weight-space dopri5 against its largest step, at the reference
/// setting, each final loss measured against the RK4 h = 0.002 reference.
fn steps(args: &[String]) {
    let caps: Vec<f64> = args
        .iter()
        .position(|a| a == "--caps")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
        .unwrap_or_else(|| vec![0.1, 0.2, 0.5, 1.0, 2.0, 5.0]);
    let dir = std::env::temp_dir().join(format!("ntkdyn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let data = Data::synthetic(100, 20, 0);
    let net = Network::init(400, 20, 0);
    std::fs::write(dir.join("data.csv"), io::data_csv(&data)).expect("write data");
    std::fs::write(dir.join("init.csv"), io::init_csv(&net)).expect("write init");
    println!("| run | max step | wall (s) | evaluations | rejected | sign changes | final loss | rel. error |");
    println!("|---|---|---|---|---|---|---|---|");
    for opt in [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag] {
        let mut cfg = config(opt, 400, 100.0, &dir);
        cfg.data = Some(dir.join("data.csv"));
        cfg.init = Some(dir.join("init.csv"));
        let reference = ntkdyn_run(&RunConfig {
            solver: Solver::Rk4,
            step: 0.002,
            ..cfg.clone()
        })
        .final_loss;
        for &cap in &caps {
            let r = ntkdyn_run(&RunConfig {
                max_step: Some(cap),
                ..cfg.clone()
            });
            println!(
                "| {} | {cap} | {:.3} | {} | {} | {} | {:.6e} | {:.1e} |",
                opt.name(),
                r.wall,
                r.evaluations,
                r.rejected,
                r.sign_changes,
                r.final_loss,
                (r.final_loss - reference).abs() / reference
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rhs") => rhs_table(),
        Some("runs") => runs(&args[1..]),
        Some("steps") => steps(&args[1..]),
        _ => {
            rhs_table();
            println!();
            runs(&args);
        }
    }
}
