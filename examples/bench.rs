//! Benchmarks of ntkdyn, printed as tables (timings belong here, never in tests).
//!
//! ```text
//! cargo run --release --example bench -- rhs [--numpy]
//! cargo run --release --example bench -- runs [--scipy] [--scipy-timeout S] [--t-scaling T]
//! cargo run --release --example bench -- steps [--caps 0.1,0.5] [--rtols 1e-6,1e-8] [--only nag]
//! cargo run --release --example bench -- spells
//! cargo run --release --example bench -- rayon
//! cargo run --release --example bench -- memory [--only LABEL]
//! cargo run --release --example bench -- sgd [--batch B] [--seeds S] [--repeats R]
//! cargo run --release --example bench -- error-scale [--big] [--old BINARY] [--repeats R]
//! cargo run --release --example bench -- runs --jax [--samples 201] [--jax-gf-t-end 10] [--only-default] [--optimizers hbf,nag] [--no-scaling]
//! cargo run --release --example bench -- snapshots [--repeats R] [--sizes 100,1000] [--no-parts]
//! cargo run --release --example bench -- [--numpy] [--scipy]          all of rhs and runs
//! ```
//! `rhs` times one weight-space right-hand side at n = 100, d = 20, m = 400 .. 100000 on one
//! thread and on all (the fused kernels, and matrixmultiply's GEMMs), beside two plain GEMMs of
//! the same shapes (nalgebra, one thread; with `--numpy` also numpy/OpenBLAS on all cores, and
//! its square-GEMM peak). `spells` gives medians instead of the fastest batches: three rounds
//! of 4 s of numpy's square product and of the right-hand side at m = 10000. `rayon` times the
//! start of a parallel pass from outside rayon's pool and from one of its threads.
//! `runs` times gf, hbf and nag in weight space at n = 100, d = 20, m = 400, T = 100 (the
//! issue's scipy setting) at rtol 1e-6, 1e-7, 1e-8, measures every final loss against a tight
//! reference run and the reference's own sensitivity to W0, and with `--scipy` (numpy and
//! scipy from pip) times bench/scipy_reference.py (solve_ivp RK45, rtol 1e-6, atol 1e-9, numpy
//! right-hand side; the faster of numpy's OpenBLAS on all cores and on one) on the same data
//! and initialization in the same run and prints the speed-up at equal or better accuracy;
//! then the scaling with m = 1000, 10000, 100000 at T = --t-scaling (default 10). `steps` shows accuracy and cost against the largest step.
//! `runs --jax` (jax and diffrax from pip) times bench/jax_reference.py (diffrax Dopri5 + PID
//! controller, float64, jit; its compile time apart, its steady solve against ntkdyn's weight
//! space) in the same run, with `--samples K` output times for both (default 11) and gf to
//! `--jax-gf-t-end` (default T) where a diffrax gf solve to T = 100 takes too long;
//! `--only-default` runs ntkdyn at its defaults only (no rtol 1e-7, 1e-8 rows).
//! `snapshots` measures what an output time costs: whole default runs of gf, hbf, nag and
//! nagsc (n = 100, d = 20, m = 400, T = 100, atol 1e-9) with 201 against 11 samples, alternating, medians of R each,
//! and the share of the 201-sample run spent at its output times (the run's own
//! `snapshot_seconds`: snapshot, H(t)'s ends, probes); then (unless `--no-parts`) at each
//! size n (m = 10 n, d = 20) one snapshot's parts (Delta, Delta', H(t), the probes) and the
//! extreme eigenvalues of H(t) by the full eigenvalue solve, by the tridiagonal reduction with
//! bisection and with the runs' multisection, and by Lanczos, cold and
//! warm-started from H at the previous output time, with their deviation from the full solve.
//! `memory` runs a table of configurations, each as a child process of the release binary
//! (target/release/ntkdyn: `cargo build --release` first), and prints the library's memory
//! estimate beside the child's peak resident size (wait4's ru_maxrss) and their ratio.

use nalgebra::DMatrix;
use ntkdyn::io;
use ntkdyn::model::relu2::{
    engine::{Kernel, Workspace},
    pattern::Pattern,
};
use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, RunConfig, SpaceChoice};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Seconds per call: the fastest of batches of at least 2 ms, taken for 3 s. The minimum is
/// the least disturbed by other work on a shared machine. On this benchmark's 2-core machine
/// a core's loads from cache slowed to about 60% for spells of a second or more (a loop of
/// FMAs on registers alone kept its speed), so the batches are short and the sampling long.
fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let mut reps = 1;
    loop {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        if start.elapsed().as_secs_f64() > 0.002 {
            break;
        }
        reps *= 2;
    }
    let (sampling, mut best) = (Instant::now(), f64::INFINITY);
    while sampling.elapsed().as_secs_f64() < 3.0 {
        let start = Instant::now();
        for _ in 0..reps {
            f();
        }
        best = best.min(start.elapsed().as_secs_f64() / reps as f64);
    }
    best
}

/// numpy's GEMM rates (bench/numpy_gemm.py): the square peak and, per m, the two GEMMs of a
/// right-hand side, each the best of numpy as installed and, where the CPU runs AVX-512F, of
/// OpenBLAS's AVX-512 kernels forced (`OPENBLAS_CORETYPE=SkylakeX`: on a Zen 5 OpenBLAS 0.3.31
/// picks its AVX2 Haswell kernels, 96-103 against 161-170 GFLOP/s square); None without
/// python3 and numpy.
fn numpy_rates(n: usize, d: usize, ms: &[usize]) -> Option<(f64, Vec<f64>)> {
    let mut cores = vec![None];
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        cores.push(Some("SkylakeX"));
    }
    let rates = |core: Option<&str>| -> Option<(f64, Vec<f64>)> {
        let mut python = Command::new("python3");
        python
            .arg("bench/numpy_gemm.py")
            .args([n, d].iter().chain(ms).map(|v| v.to_string()));
        if let Some(core) = core {
            python.env("OPENBLAS_CORETYPE", core);
        }
        let out = python.output().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let per_m = ms
            .iter()
            .map(|m| v["rhs_gemms"][m.to_string()].as_f64())
            .collect::<Option<Vec<f64>>>()?;
        Some((v["square"].as_f64()?, per_m))
    };
    // A core type that fails (an OpenBLAS without it) leaves the others' rates.
    cores
        .into_iter()
        .filter_map(rates)
        .reduce(|(s, r), (square, per_m)| {
            (
                s.max(square),
                r.iter().zip(&per_m).map(|(a, b)| a.max(*b)).collect(),
            )
        })
}

fn rhs_table(args: &[String]) {
    let threads = rayon::current_num_threads();
    let (n, d) = (100, 20);
    let widths = [400, 1000, 10000, 100000];
    let numpy = if args.iter().any(|a| a == "--numpy") {
        numpy_rates(n, d, &widths)
    } else {
        None
    };
    if let Some((square, _)) = &numpy {
        println!("numpy (OpenBLAS, all cores, the faster of its own and its AVX-512 kernels) square 2000^3 dgemm: {square:.1} GFLOP/s");
    }
    println!("One weight-space right-hand side (4nmd flop), n = {n}, d = {d}; GFLOP/s");
    println!("The weight-space work of one output-space step (two J_S^T beta passes and a sign pass, 6nmd flop) in the two step columns.");
    println!("A momentum step's two J_S^T products (W's and V's, one pattern), one after the other and as one paired pass (Model::vjp_held_pair), in the last two columns.");
    println!("| m | rhs, 1 thread (ms) | GFLOP/s | rhs, {threads} threads (ms) | GFLOP/s | rhs by matrixmultiply, {threads} threads, GFLOP/s | 2 GEMMs, nalgebra (ms) | GFLOP/s | 2 GEMMs, numpy GFLOP/s | step, {threads} threads (ms) | GFLOP/s | 2 J_S^T, {threads} threads (ms) | paired (ms) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    // On a thread of rayon's pool, as study::run does.
    let rates =
        rayon::scope(|_| rhs_rows(n, d, &widths, numpy.as_ref().map(|(_, r)| r.as_slice())));
    // Issue 20's goal 6: the right-hand side against numpy's square peak, at m >= 1000.
    if let Some((square, _)) = &numpy {
        let shares: Vec<String> = widths
            .iter()
            .zip(&rates)
            .map(|(m, r)| format!("m = {m}: {:.0}%", 100.0 * r / square))
            .collect();
        println!();
        println!(
            "rhs on {threads} threads against numpy's square peak ({square:.1} GFLOP/s): {}",
            shares.join(", ")
        );
    }
}

/// Prints the table's rows; returns the right-hand side's GFLOP/s on all threads, per width.
fn rhs_rows(n: usize, d: usize, widths: &[usize], numpy: Option<&[f64]>) -> Vec<f64> {
    let mut rates = Vec::new();
    for (k, &m) in widths.iter().enumerate() {
        let model = Model::new(Data::synthetic(n, d, 1), InitialNetwork::init(m, d, 1).a);
        let w = InitialNetwork::init(m, d, 1).w;
        let mut g = DMatrix::zeros(m, d);
        let mut ws = Workspace::with_lanes(m, n, 1);
        let rhs1 = time(|| {
            model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut ws);
        });
        let mut ws = Workspace::new(m, n, d);
        let mut gemm_ws = Workspace::with_kernel(m, n, ws.lanes(), Kernel::Gemm);
        let rhs_gemm = time(|| {
            model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut gemm_ws);
        });
        let rhs = time(|| {
            model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut ws);
        });
        let xt = model.data().x.transpose();
        let mut zt = DMatrix::zeros(m, n);
        let p = DMatrix::from_element(m, n, 0.5);
        let gemm = time(|| {
            zt.gemm(1.0, &w, &xt, 0.0);
            g.gemm(1.0, &p, &model.data().x, 0.0);
        });
        let pattern = Pattern::of(&model, &w.as_view(), &mut ws);
        let beta = vec![0.3; n];
        let (mut signs, mut changed) = (Vec::new(), Vec::new());
        let step = time(|| {
            for _ in 0..2 {
                model.vjp_held(&beta, &mut g.as_view_mut(), &mut ws, &pattern);
            }
            pattern.changes(&model, &w.as_view(), &mut signs, &mut changed, &mut ws);
        });
        let beta_v = vec![-0.2; n];
        let mut gv = DMatrix::zeros(m, d);
        let two = time(|| {
            model.vjp_held(&beta, &mut g.as_view_mut(), &mut ws, &pattern);
            model.vjp_held(&beta_v, &mut gv.as_view_mut(), &mut ws, &pattern);
        });
        let paired = time(|| {
            model.vjp_held_pair(
                [&beta, &beta_v],
                [&mut g.as_view_mut(), &mut gv.as_view_mut()],
                &mut ws,
                &pattern,
            );
        });
        let flop = 4.0 * (n * m * d) as f64;
        println!(
            "| {m} | {:.4} | {:.1} | {:.4} | {:.1} | {:.1} | {:.4} | {:.1} | {} | {:.4} | {:.1} | {:.4} | {:.4} |",
            rhs1 * 1e3,
            flop / rhs1 / 1e9,
            rhs * 1e3,
            flop / rhs / 1e9,
            flop / rhs_gemm / 1e9,
            gemm * 1e3,
            flop / gemm / 1e9,
            numpy.map_or("-".into(), |r| format!("{:.1}", r[k])),
            step * 1e3,
            1.5 * flop / step / 1e9,
            two * 1e3,
            paired * 1e3,
        );
        rates.push(flop / rhs / 1e9);
    }
    rates
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
    rejected: Option<u64>,
    sign_changes: Option<u64>,
}

/// The reference: the held-pattern dopri5 at rtol 1e-11, atol 1e-14, steps of at most 0.01.
/// (Fixed-step RK4 on the plain right-hand side is no reference: at h = 0.001, 0.002, 0.004
/// its final losses scatter by 1e-3 (GF) to 8e-2 (NAG), first order through each crossing.)
fn tight(cfg: &RunConfig) -> RunConfig {
    RunConfig {
        rtol: 1e-11,
        atol: 1e-14,
        max_step: Some(0.01),
        ..cfg.clone()
    }
}

/// The fastest of `k` runs (the runs are deterministic; the machine's timing is not).
fn fastest_run(cfg: &RunConfig, k: usize) -> Timed {
    (0..k)
        .map(|_| ntkdyn_run(cfg))
        .min_by(|a, b| a.wall.total_cmp(&b.wall))
        .expect("at least one run")
}

fn ntkdyn_run(cfg: &RunConfig) -> Timed {
    let report = study::run(cfg).expect("benchmark configuration is valid");
    let w = report.weight.expect("weight space was run");
    Timed {
        wall: w.wall_seconds,
        evaluations: w.stats.evaluations,
        final_loss: w.final_loss(),
        rejected: Some(w.stats.rejected_steps),
        sign_changes: Some(w.stats.switches),
    }
}

/// The Python peers' first arguments: data, initialization, optimizer, T, friction b, gamma.
fn peer_args(cfg: &RunConfig, dir: &Path, b: f64) -> Vec<std::ffi::OsString> {
    vec![
        dir.join("data.csv").into(),
        dir.join("init.csv").into(),
        cfg.optimizer.name().into(),
        cfg.t_end.to_string().into(),
        b.to_string().into(),
        cfg.gamma.to_string().into(),
    ]
}

/// bench/scipy_reference.py on the same files, recording `cfg.samples` output times (t_eval):
/// the faster of numpy's OpenBLAS on all cores and on one (`OPENBLAS_NUM_THREADS=1`; on a
/// 2-core Zen 5 its threads made scipy's hbf run 2.3x slower at these n x m products).
fn scipy_run(cfg: &RunConfig, dir: &Path, b: f64, limit: f64) -> Option<Timed> {
    let once = |threads: Option<&str>| -> Option<Timed> {
        let mut python = Command::new("timeout");
        python
            .arg(format!("{limit}"))
            .arg("python3")
            .arg("bench/scipy_reference.py")
            .args(peer_args(cfg, dir, b))
            .args(["1e-6", "1e-9"])
            .arg(cfg.samples.to_string());
        if let Some(threads) = threads {
            python.env("OPENBLAS_NUM_THREADS", threads);
        }
        let out = python.output().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        Some(Timed {
            wall: v["wall_seconds"].as_f64()?,
            evaluations: v["evaluations"].as_u64()?,
            final_loss: v["final_loss"].as_f64()?,
            rejected: None,
            sign_changes: None,
        })
    };
    match (once(None), once(Some("1"))) {
        (Some(all), Some(one)) => Some(if one.wall < all.wall { one } else { all }),
        (all, one) => all.or(one),
    }
}

/// bench/jax_reference.py on the same files: its steady solve and (apart) its compile time.
fn jax_run(cfg: &RunConfig, dir: &Path, b: f64, samples: usize) -> Option<(Timed, f64)> {
    let out = Command::new("python3")
        .arg("bench/jax_reference.py")
        .args(peer_args(cfg, dir, b))
        .arg(cfg.rtol.to_string())
        .arg(cfg.atol.to_string())
        .arg(samples.to_string())
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let timed = Timed {
        wall: v["wall_seconds"].as_f64()?,
        evaluations: v["evaluations"].as_u64()?,
        final_loss: v["final_loss"].as_f64()?,
        rejected: v["rejected_steps"].as_u64(),
        sign_changes: None,
    };
    Some((timed, v["compile_seconds"].as_f64()?))
}

/// The 1-minute load average (/proc/loadavg), or "-".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

fn cell(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Option<T> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

/// A temporary directory holding the reference setting's data and initialization (n = 100,
/// d = 20, m = 400, seed 0), shared by every ntkdyn run and by scipy.
fn reference_setting() -> (std::path::PathBuf, InitialNetwork) {
    let dir = std::env::temp_dir().join(format!("ntkdyn-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let data = Data::synthetic(100, 20, 0);
    let net = InitialNetwork::init(400, 20, 0);
    std::fs::write(dir.join("data.csv"), io::data_csv(&data)).expect("write data");
    std::fs::write(dir.join("init.csv"), io::init_csv(&net)).expect("write init");
    (dir, net)
}

/// A comma-separated list of numbers given after `name`.
fn list_arg(args: &[String], name: &str) -> Option<Vec<f64>> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
}

fn runs(args: &[String]) {
    let scipy = args.iter().any(|a| a == "--scipy");
    // issue 20: the JAX/diffrax peer, the output times, gf's horizon for it.
    let jax = args.iter().any(|a| a == "--jax");
    let samples: usize = arg(args, "--samples").unwrap_or(11);
    let gf_t_end: Option<f64> = arg(args, "--jax-gf-t-end");
    let only_default = args.iter().any(|a| a == "--only-default");
    let optimizers: Option<String> = arg(args, "--optimizers");
    let limit: f64 = arg(args, "--scipy-timeout").unwrap_or(1800.0);
    let t_scaling: f64 = arg(args, "--t-scaling").unwrap_or(10.0);
    let (dir, net) = reference_setting();
    // W0 scaled by 1 + 1e-12 and 1 + 1e-9: how far the final loss itself is determined.
    for e in [12, 9] {
        let nudged = InitialNetwork {
            w: &net.w * (1.0 + 10f64.powi(-e)),
            ..net.clone()
        };
        std::fs::write(dir.join(format!("nudged-{e}.csv")), io::init_csv(&nudged))
            .expect("write init");
    }
    println!("n = 100, d = 20, m = 400, T = 100, atol 1e-9, {samples} samples. ntkdyn: weight-space dopri5 (held pattern, default max step; the fastest of 5 runs); scipy: solve_ivp RK45 (bench/scipy_reference.py; the faster of OpenBLAS on all cores and on one); jax: diffrax Dopri5 + PID, jit, float64 (bench/jax_reference.py; steady solve, compile apart).");
    if let Some(t) = gf_t_end {
        println!("gf runs to T = {t} (every gf row, reference included).");
    }
    println!("load average at start: {}", load_average());
    println!("Errors are relative to the reference (held dopri5, rtol 1e-11, atol 1e-14, max step 0.01); 'floor' is how much the reference's final loss moves when W0 is scaled by 1 + 1e-12 or by 1 + 1e-9, the larger; the reference at max step 0.005 shows how far halving its step moves it.");
    println!("| run | solver | setting | wall (s) | evaluations | rejected | sign changes | final loss | rel. error |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut verdicts = Vec::new();
    for opt in [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag] {
        if optimizers
            .as_deref()
            .is_some_and(|list| !list.split(',').any(|o| o == opt.name()))
        {
            continue;
        }
        let t_end = match opt {
            Optimizer::Gf => gf_t_end.unwrap_or(100.0),
            _ => 100.0,
        };
        let mut cfg = config(opt, 400, t_end, &dir);
        cfg.samples = samples;
        cfg.data = Some(dir.join("data.csv"));
        cfg.init = Some(dir.join("init.csv"));
        let reference = ntkdyn_run(&tight(&cfg));
        let r0 = reference.final_loss;
        let err = |l: f64| (l - r0).abs() / r0;
        let floor = ["nudged-12.csv", "nudged-9.csv"]
            .iter()
            .map(|f| {
                err(ntkdyn_run(&RunConfig {
                    init: Some(dir.join(f)),
                    ..tight(&cfg)
                })
                .final_loss)
            })
            .fold(0.0, f64::max);
        let row = |solver: &str, rtol: &str, t: &Timed| {
            println!(
                "| {} | {solver} | {rtol} | {:.3} | {} | {} | {} | {:.6e} | {:.1e} |",
                opt.name(),
                t.wall,
                t.evaluations,
                cell(t.rejected),
                cell(t.sign_changes),
                t.final_loss,
                err(t.final_loss)
            )
        };
        // The default max step at three tolerances; for the momentum flows also a longer one.
        let settings: &[(f64, Option<f64>)] = match opt {
            _ if only_default => &[(1e-6, None)],
            Optimizer::Gf => &[(1e-6, None), (1e-7, None), (1e-8, None)],
            _ => &[(1e-6, None), (1e-7, None), (1e-8, None), (1e-6, Some(0.5))],
        };
        let ours: Vec<(String, Timed)> = settings
            .iter()
            .map(|&(rtol, max_step)| {
                let c = RunConfig {
                    rtol,
                    max_step,
                    ..cfg.clone()
                };
                (
                    format!("{rtol:e}, max step {}", c.max_step()),
                    fastest_run(&c, 5),
                )
            })
            .collect();
        for (label, t) in &ours {
            row("ntkdyn", label, t);
        }
        let lambda0 = study::setup(&cfg).expect("valid").lambda0;
        let theirs = scipy
            .then(|| scipy_run(&cfg, &dir, (2.0 * lambda0).sqrt(), limit))
            .flatten();
        if let Some(t) = &theirs {
            row("scipy RK45", "1e-6", t);
        } else if scipy {
            println!(
                "| {} | scipy RK45 | 1e-6 | > {limit} (stopped) | | | | | |",
                opt.name()
            );
        }
        let lambda_b = (2.0 * lambda0).sqrt();
        let peer = jax
            .then(|| jax_run(&cfg, &dir, lambda_b, samples))
            .flatten();
        if let Some((t, compile)) = &peer {
            row("jax/diffrax Dopri5", "1e-6", t);
            println!(
                "| {} | jax/diffrax | compile (apart) | {compile:.1} | | | | | |",
                opt.name()
            );
        } else if jax {
            println!("| {} | jax/diffrax | failed | | | | | | |", opt.name());
        }
        row("reference", "1e-11", &reference);
        // The reference's own resolution: the same tight run at half its max step. Across
        // caps NAG's final loss here is resolved only to about 1e-3 (README, Numerics:
        // activations oscillating about their surfaces), so its errors below that say little.
        let half = ntkdyn_run(&RunConfig {
            max_step: Some(0.005),
            ..tight(&cfg)
        });
        row("reference", "1e-11, max step 0.005", &half);
        println!("| {} | floor | | | | | | | {floor:.1e} |", opt.name());
        if let Some((t, _)) = peer {
            let bar = err(t.final_loss).max(floor);
            let best = ours
                .iter()
                .filter(|(_, o)| err(o.final_loss) <= bar)
                .min_by(|a, b| a.1.wall.total_cmp(&b.1.wall));
            verdicts.push(match best {
                Some((rtol, o)) => format!(
                    "{} (T = {t_end}): {:.0}x faster than jax/diffrax at equal or better accuracy (ntkdyn rtol {rtol}: {:.3} s, error {:.1e}; diffrax {:.2} s steady, error {:.1e})",
                    opt.name(),
                    t.wall / o.wall,
                    o.wall,
                    err(o.final_loss),
                    t.wall,
                    err(t.final_loss)
                ),
                None => {
                    let o = &ours[0].1;
                    format!(
                        "{} (T = {t_end}): ntkdyn's default is less accurate than diffrax ({:.1e} vs {:.1e}), {:.0}x faster",
                        opt.name(),
                        err(o.final_loss),
                        err(t.final_loss),
                        t.wall / o.wall
                    )
                }
            });
        }
        if let Some(t) = theirs {
            // The fastest ntkdyn run whose error is at most scipy's (or within the floor).
            let bar = err(t.final_loss).max(floor);
            let best = ours
                .iter()
                .filter(|(_, o)| err(o.final_loss) <= bar)
                .min_by(|a, b| a.1.wall.total_cmp(&b.1.wall));
            verdicts.push(match best {
                Some((rtol, o)) => format!(
                    "{}: {:.0}x faster than scipy at equal or better accuracy (ntkdyn rtol {rtol}: {:.3} s, error {:.1e}; scipy {:.1} s, error {:.1e})",
                    opt.name(),
                    t.wall / o.wall,
                    o.wall,
                    err(o.final_loss),
                    t.wall,
                    err(t.final_loss)
                ),
                None => format!("{}: no ntkdyn run reached scipy's error {:.1e}", opt.name(), bar),
            });
        }
    }
    for v in verdicts {
        println!("{v}");
    }
    if args.iter().any(|a| a == "--no-scaling") {
        let _ = std::fs::remove_dir_all(&dir);
        return;
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
/// setting and tolerance, each final loss measured against the tight reference.
fn steps(args: &[String]) {
    let caps = list_arg(args, "--caps").unwrap_or_else(|| vec![0.1, 0.2, 0.5, 1.0]);
    let rtols = list_arg(args, "--rtols").unwrap_or_else(|| vec![1e-6]);
    let only: Option<String> = arg(args, "--only");
    let (dir, _) = reference_setting();
    println!("| run | rtol | max step | wall (s) | evaluations | rejected | sign changes | final loss | rel. error |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for opt in Optimizer::ALL {
        if only.as_deref().is_some_and(|o| o != opt.name()) {
            continue;
        }
        let mut cfg = config(opt, 400, 100.0, &dir);
        cfg.data = Some(dir.join("data.csv"));
        cfg.init = Some(dir.join("init.csv"));
        let reference = ntkdyn_run(&tight(&cfg)).final_loss;
        for (&cap, &rtol) in caps.iter().flat_map(|c| rtols.iter().map(move |r| (c, r))) {
            let r = ntkdyn_run(&RunConfig {
                max_step: Some(cap),
                rtol,
                ..cfg.clone()
            });
            println!(
                "| {} | {rtol:e} | {cap} | {:.3} | {} | {} | {} | {:.6e} | {:.1e} |",
                opt.name(),
                r.wall,
                r.evaluations,
                cell(r.rejected),
                cell(r.sign_changes),
                r.final_loss,
                (r.final_loss - reference).abs() / reference
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Slow spells of the machine: three rounds of 4 s each of numpy's square 1000^3 product on all
/// cores and of the right-hand side at m = 10000 (batches of 10), as min / median / max GFLOP/s.
fn spells() {
    let (n, d, m) = (100, 20, 10000);
    let model = Model::new(Data::synthetic(n, d, 1), InitialNetwork::init(m, d, 1).a);
    let w = InitialNetwork::init(m, d, 1).w;
    let mut g = DMatrix::zeros(m, d);
    let mut ws = Workspace::new(m, n, d);
    let flop = 40.0 * (n * m * d) as f64;
    println!("| round | numpy 1000^3, min / median / max GFLOP/s | rhs at m = {m}, min / median / max GFLOP/s |");
    println!("|---|---|---|");
    for round in 1..=3 {
        let numpy = Command::new("python3")
            .args(["bench/numpy_gemm.py", "--spells", "4"])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .map_or("-".into(), |v| {
                format!(
                    "{:.1} / {:.1} / {:.1}",
                    v["min"].as_f64().unwrap_or(f64::NAN),
                    v["median"].as_f64().unwrap_or(f64::NAN),
                    v["max"].as_f64().unwrap_or(f64::NAN)
                )
            });
        let mut rates = rayon::scope(|_| {
            let (start, mut rates) = (Instant::now(), Vec::new());
            while start.elapsed().as_secs_f64() < 4.0 {
                let t = Instant::now();
                for _ in 0..10 {
                    model.gradient_into(&w.as_view(), &mut g.as_view_mut(), &mut ws);
                }
                rates.push(flop / t.elapsed().as_secs_f64() / 1e9);
            }
            rates
        });
        rates.sort_by(f64::total_cmp);
        println!(
            "| {round} | {numpy} | {:.1} / {:.1} / {:.1} |",
            rates[0],
            rates[rates.len() / 2],
            rates[rates.len() - 1]
        );
    }
}

/// Microseconds to run a rayon loop over 8 items, from this (main) thread and from a thread of
/// the pool, with 0, 20 and 100 us of other work between loops.
fn rayon_start() {
    use rayon::prelude::*;
    let pass = |gap: f64| {
        let mut v = vec![0u64; 8];
        let (reps, mut loops) = (20_000, 0.0);
        for _ in 0..reps {
            let t = Instant::now();
            v.par_iter_mut().for_each(|x| *x += 1);
            loops += t.elapsed().as_secs_f64();
            let busy = Instant::now();
            while busy.elapsed().as_secs_f64() < gap {}
        }
        loops / reps as f64 * 1e6
    };
    println!("| gap between loops (us) | from outside the pool (us) | from a pool thread (us) |");
    println!("|---|---|---|");
    for gap in [0.0, 20e-6, 100e-6] {
        let outside = pass(gap);
        let inside = rayon::scope(|_| pass(gap));
        println!("| {:.0} | {outside:.2} | {inside:.2} |", gap * 1e6);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rhs") => rhs_table(&args[1..]),
        Some("runs") => runs(&args[1..]),
        Some("steps") => steps(&args[1..]),
        Some("spells") => spells(),
        Some("rayon") => rayon_start(),
        Some("memory") => memory(&args[1..]),
        // issue 18: sgd
        Some("sgd") => sgd_bench(&args[1..]),
        Some("error-scale") => error_scale(&args[1..]),
        // issue 19: resolution
        Some("resolution") => resolution_bench(&args[1..]),
        // issue 20: what an output time costs
        Some("snapshots") => snapshots(&args[1..]),
        _ => {
            rhs_table(&args);
            println!();
            runs(&args);
        }
    }
}

/// The configurations of `memory`: a label, the command line, and the configuration the
/// estimate is computed for (the same options). Each isolates one part of the estimate.
fn memory_cases() -> Vec<(&'static str, Vec<&'static str>)> {
    let quick = ["--t-end", "0.1", "--samples", "3", "--no-discrete"];
    let with = |head: &[&'static str], tail: &[&'static str]| -> Vec<&'static str> {
        head.iter().chain(tail).copied().collect()
    };
    let small = ["--n", "10", "--d", "3", "--m", "20"];
    vec![
        (
            "tiny",
            with(&["gf", "--n", "5", "--d", "3", "--m", "10"], &quick),
        ),
        ("n^2", with(&["gf", "--n", "2000", "--m", "100"], &quick)),
        (
            "n^2 + m n",
            with(&["gf", "--n", "2000", "--m", "2000"], &quick),
        ),
        ("m n", with(&["gf", "--n", "200", "--m", "20000"], &quick)),
        (
            "m d",
            with(&["gf", "--n", "20", "--d", "1000", "--m", "10000"], &quick),
        ),
        (
            "samples",
            with(
                &["gf", "--t-end", "1", "--samples", "200000", "--no-discrete"],
                &small,
            ),
        ),
        (
            "iterates",
            with(
                &["gf", "--space", "error", "--samples", "3", "--eta", "2e-5"],
                &small,
            ),
        ),
        (
            "test points",
            with(&["gf", "--test-n", "4000", "--m", "500"], &quick),
        ),
        ("test points, m", with(&["gf", "--test-n", "8000"], &quick)),
        (
            "compare",
            with(&["compare", "--n", "800", "--m", "200"], &quick),
        ),
    ]
}

/// The run configuration of a case's command line (the options the cases use).
fn memory_config(argv: &[&str]) -> RunConfig {
    let opt = Optimizer::from_name(argv[0]).unwrap_or(Optimizer::Gf);
    let mut cfg = RunConfig::defaults(opt);
    let mut k = 1;
    while k < argv.len() {
        let value = argv.get(k + 1).copied().unwrap_or("");
        let mut takes = true;
        match argv[k] {
            "--n" => cfg.n = value.parse().expect("n"),
            "--d" => cfg.d = value.parse().expect("d"),
            "--m" => cfg.m = value.parse().expect("m"),
            "--t-end" => cfg.t_end = value.parse().expect("t-end"),
            "--samples" => cfg.samples = value.parse().expect("samples"),
            "--eta" => cfg.eta = value.parse().expect("eta"),
            "--test-n" => cfg.test_n = value.parse().expect("test-n"),
            "--space" => cfg.space = value.parse().expect("space"),
            "--no-discrete" => {
                cfg.discrete = false;
                takes = false;
            }
            other => panic!("memory_config does not know {other}"),
        }
        k += if takes { 2 } else { 1 };
    }
    cfg
}

/// Peak resident size in bytes of a child running `argv`, and its exit status.
fn peak_rss(binary: &Path, argv: &[&str], out: &Path) -> (f64, i32) {
    let usage = child_usage(binary, argv, out);
    (usage.peak, usage.status)
}

fn memory(args: &[String]) {
    let only: Option<String> = arg(args, "--only");
    let binary = Path::new("target/release/ntkdyn");
    assert!(
        binary.exists(),
        "build the release binary first: cargo build --release"
    );
    let dir = std::env::temp_dir().join(format!("ntkdyn-bench-memory-{}", std::process::id()));
    println!("| case | command | estimate | measured peak | measured / estimate | exit |");
    println!("|---|---|---:|---:|---:|---:|");
    for (label, argv) in memory_cases() {
        if only.as_deref().is_some_and(|o| !label.contains(o)) {
            continue;
        }
        let cfg = memory_config(&argv);
        let runs = if argv[0] == "compare" { 3 } else { 1 };
        let sizes = ntkdyn::study::validate::Sizes::of(&cfg);
        let eta = cfg.discrete.then_some(cfg.eta);
        let mut estimate = ntkdyn::study::validate::MemoryEstimate::of(&cfg, sizes, eta);
        estimate.runs = runs;
        let (peak, status) = peak_rss(binary, &argv, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        println!(
            "| {label} | `ntkdyn {}` | {:.0} MB | {:.0} MB | {:.2} | {status} |",
            argv.join(" "),
            estimate.bytes() / 1e6,
            peak / 1e6,
            peak / estimate.bytes()
        );
    }
}

// issue 18: sgd
/// `sgd`: on the default problem (n = 50, d = 10, m = 2000, eta = 0.01, T = 50), the wall
/// time of one GD twin run (2 threads' lanes), of S seeded SGD runs in weight space (in
/// parallel, one lane each, as `ntkdyn sgd` runs them) and of the whole `ntkdyn sgd` study
/// (SGD and the SDE with L = 4 over S seeds in both spaces, GD, GF, the exact E[L], eta_crit);
/// per seed and against GD. The fastest of `--repeats` (default 2) alternating rounds.
fn sgd_bench(args: &[String]) {
    use ntkdyn::optimizer::twin::{self as discrete, Twin};
    use ntkdyn::sgd::twin::{sgd_weight, stream, Batches, SGD_STREAM};
    use ntkdyn::sgd::{Recording, SgdConfig};
    use rayon::prelude::*;
    let batch: usize = arg(args, "--batch").unwrap_or(5);
    let seeds: usize = arg(args, "--seeds").unwrap_or(16);
    let repeats: usize = arg(args, "--repeats").unwrap_or(2);
    let mut cfg = SgdConfig::defaults(batch);
    cfg.seeds = seeds;
    cfg.run.progress = false;
    let setup = study::prepare(&cfg.run).expect("setup");
    let (model, w0, eta, t_end) = (&setup.model, &setup.w0, setup.eta, cfg.run.t_end);
    let n = model.n();
    let last = ntkdyn::sgd::report::last_iterate(t_end, eta);
    let rec = Recording::new(last, cfg.run.samples);
    let sampling = cfg.sampling;
    let (mut gd, mut sgd, mut whole) = (f64::INFINITY, f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats {
        let started = Instant::now();
        rayon::scope(|_| discrete::run(model, w0, Twin::gd(), eta, t_end));
        gd = gd.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        rayon::scope(|_| {
            (0..seeds)
                .into_par_iter()
                .map(|s| {
                    let b = Batches::new(n, batch, sampling, stream(cfg.run.seed, SGD_STREAM, s));
                    sgd_weight(model, w0, eta, rec, b, 1, s)
                })
                .collect::<Vec<_>>()
        });
        sgd = sgd.min(started.elapsed().as_secs_f64());
        let started = Instant::now();
        ntkdyn::sgd::run(&cfg).expect("sgd study");
        whole = whole.min(started.elapsed().as_secs_f64());
    }
    println!(
        "default problem, B = {batch} {sampling} replacement, {last} steps, {seeds} seeds, {} threads",
        rayon::current_num_threads()
    );
    println!("| run | wall (s) | per seed (s) | per seed / GD |");
    println!("|---|---|---|---|");
    println!("| GD twin (one run) | {gd:.3} | {gd:.3} | 1 |");
    for (what, t) in [
        ("SGD weight space, S runs", sgd),
        ("whole `ntkdyn sgd` study (L = 4)", whole),
    ] {
        let per = t / seeds as f64;
        println!("| {what} | {t:.3} | {per:.3} | {:.2} |", per / gd);
    }
}

/// `error-scale`: error space at n = 2000 (and n = 5000 with `--big`), d = 20, m = 1000,
/// T = 20, 21 samples, as child processes of the release binary (whole process: setup, the
/// kernels' spectra, the run, the files), each with its wall time, user and system CPU, peak
/// resident size and the load average as it ended: the stiff run solved exactly
/// (lambda_max T = 593 > 300, the default) beside the same run with `--solver dopri5` (not
/// at n = 5000). `--old BINARY` runs another build of ntkdyn alternately with this one on
/// the exact runs (`--repeats R` times each, default 1), for a ratio measured in one run.
fn error_scale(args: &[String]) {
    let big = args.iter().any(|a| a == "--big");
    let old: Option<String> = arg(args, "--old");
    let repeats: usize = arg(args, "--repeats").unwrap_or(1);
    let binary = Path::new("target/release/ntkdyn");
    assert!(
        binary.exists(),
        "build the release binary first: cargo build --release"
    );
    let dir = std::env::temp_dir().join(format!("ntkdyn-bench-error-{}", std::process::id()));
    println!("| n | binary | solver | wall s | user s | sys s | peak MB | load | exit |");
    println!("|---:|---|---|---:|---:|---:|---:|---:|---:|");
    let sizes: &[&str] = if big { &["2000", "5000"] } else { &["2000"] };
    for &n in sizes {
        let base = [
            "gf",
            "--n",
            n,
            "--d",
            "20",
            "--m",
            "1000",
            "--space",
            "error",
            "--t-end",
            "20",
            "--samples",
            "21",
            "--no-discrete",
        ];
        let mut binaries: Vec<(&str, &Path)> = vec![("new", binary)];
        if let Some(o) = &old {
            binaries.insert(0, ("old", Path::new(o.as_str())));
        }
        let mut runs = Vec::new();
        for _ in 0..repeats {
            for &(name, bin) in &binaries {
                runs.push((name, bin, None));
            }
        }
        // dopri5 at n = 5000 is minutes of 5000 x 5000 products: only the exact solution.
        if n != "5000" {
            runs.push(("new", binary, Some("dopri5")));
        }
        for (name, bin, solver) in runs {
            let mut argv: Vec<&str> = base.to_vec();
            if let Some(s) = solver {
                argv.extend(["--solver", s]);
            }
            let start = Instant::now();
            let usage = child_usage(bin, &argv, &dir);
            let wall = start.elapsed().as_secs_f64();
            let _ = std::fs::remove_dir_all(&dir);
            let load = std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split_whitespace().next().map(str::to_owned))
                .unwrap_or_default();
            println!(
                "| {n} | {name} | {} | {wall:.2} | {:.2} | {:.2} | {:.0} | {load} | {} |",
                solver.unwrap_or("default (exact: stiff)"),
                usage.user,
                usage.system,
                usage.peak / 1e6,
                usage.status
            );
        }
    }
}

/// What a finished child process used.
struct ChildUsage {
    user: f64,
    system: f64,
    /// Peak resident set size, bytes.
    peak: f64,
    status: i32,
}

/// Runs the binary with `argv --out OUT --quiet` and reaps it with its resource usage.
// wait4 reaps the child (clippy sees no `wait()`).
#[allow(clippy::zombie_processes)]
fn child_usage(binary: &Path, argv: &[&str], out: &Path) -> ChildUsage {
    let child = Command::new(binary)
        .args(argv)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills; zeroed is a valid value of it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own child, not yet waited for (std's Child is never waited on:
    // wait4 reaps it here, with its own resource usage); both pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    ChildUsage {
        user: seconds(usage.ru_utime),
        system: seconds(usage.ru_stime),
        // Linux reports ru_maxrss in kilobytes.
        peak: usage.ru_maxrss as f64 * 1024.0,
        status: libc::WEXITSTATUS(status),
    }
}

// issue 19: resolution
/// `bench -- resolution [--m M] [--t-end T]`: each optimizer's weight-space run at high
/// resolution against its low-resolution run (same problem, default settings otherwise:
/// n = 50, d = 10, m = 2000, T = 50), the faster of two runs each.
fn resolution_bench(args: &[String]) {
    use ntkdyn::study::SpaceChoice;
    use ntkdyn::theory::high_resolution::Resolution;
    let m: usize = arg(args, "--m").unwrap_or(2000);
    let t_end: f64 = arg(args, "--t-end").unwrap_or(50.0);
    println!(
        "Weight space only, n = 50, d = 10, m = {m}, T = {t_end}, dopri5 with the default tolerances and step cap; the faster of two runs."
    );
    println!("| optimizer | low (s) | high (s) | high/low | low evaluations | high evaluations | low final loss | high final loss |");
    println!("|---|---|---|---|---|---|---|---|");
    for opt in Optimizer::ALL {
        let time = |resolution: Resolution| {
            let cfg = RunConfig {
                m,
                t_end,
                space: SpaceChoice::Weight,
                discrete: false,
                progress: false,
                resolution,
                ..RunConfig::defaults(opt)
            };
            let setup = ntkdyn::study::prepare(&cfg).expect("setup");
            (0..2)
                .map(|_| {
                    let started = std::time::Instant::now();
                    let report =
                        ntkdyn::study::execute(&cfg, setup.clone(), &ntkdyn::observe::Silent);
                    let w = report.weight.expect("weight space");
                    (
                        started.elapsed().as_secs_f64(),
                        w.stats.evaluations,
                        w.final_loss(),
                    )
                })
                .fold(
                    (f64::INFINITY, 0, f64::NAN),
                    |a, b| if b.0 < a.0 { b } else { a },
                )
        };
        let (lo, hi) = (time(Resolution::Low), time(Resolution::High));
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {} | {} | {:.6e} | {:.6e} |",
            opt.name(),
            lo.0,
            hi.0,
            hi.0 / lo.0,
            lo.1,
            hi.1,
            lo.2,
            hi.2
        );
    }
}

/// The median of a list (NaN when empty).
fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// What an output time costs: whole runs with 201 against 11 samples, then one snapshot's parts
/// and the extreme eigenvalues of H(t) by each solver.
fn snapshots(args: &[String]) {
    use nalgebra::DVector;
    use ntkdyn::dynamics::{Damping, Flow, Space, WeightSpace};
    use ntkdyn::linalg::lanczos_extremes;
    use ntkdyn::observe::drift::Drift;
    use ntkdyn::observe::{Probe, Sample};
    use ntkdyn::theory::spectrum::extreme_eigenvalues;
    let repeats: usize = arg(args, "--repeats").unwrap_or(3);
    let sizes: Vec<usize> = list_arg(args, "--sizes")
        .map(|v| v.into_iter().map(|x| x as usize).collect())
        .unwrap_or_else(|| vec![100, 1000]);
    println!("load average at start: {}", load_average());
    println!("Whole weight-space runs, n = 100, d = 20, m = 400, T = 100, atol 1e-9 (defaults otherwise), 201 and 11 samples alternating, median of {repeats} (study wall seconds of weight space; snapshot: the summary's timings.snapshot_seconds, the output times' snapshots, H(t)'s ends and probes):");
    println!("| run | 201 samples (s) | snapshots of 201 (s) | share | 11 samples (s) | ratio 201 / 11 |");
    println!("|---|---|---|---|---|---|");
    let dir = std::env::temp_dir().join(format!("ntkdyn-bench-snap-{}", std::process::id()));
    for opt in [
        Optimizer::Gf,
        Optimizer::Hbf,
        Optimizer::Nag,
        Optimizer::Nagsc,
    ] {
        let (mut many, mut snap, mut share, mut few) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..repeats {
            for samples in [201, 11] {
                let cfg = RunConfig {
                    samples,
                    atol: 1e-9,
                    ..config(opt, 400, 100.0, &dir)
                };
                let report = study::run(&cfg).expect("benchmark configuration is valid");
                let w = report.weight.expect("weight space was run");
                if samples == 201 {
                    let s = w.snapshot_seconds.unwrap_or(f64::NAN);
                    many.push(w.wall_seconds);
                    snap.push(s);
                    share.push(s / w.wall_seconds);
                } else {
                    few.push(w.wall_seconds);
                }
            }
        }
        let (a, s, f, b) = (median(many), median(snap), median(share), median(few));
        println!(
            "| {} | {a:.3} | {s:.3} | {:.1}% | {b:.3} | {:.2} |",
            opt.name(),
            100.0 * f,
            a / b
        );
    }
    println!();
    if args.iter().any(|a| a == "--no-parts") {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    println!();
    println!("One snapshot at W(0) (m = 10 n, d = 20) and the extremes of H at a state one sample later (W0 - 0.5 grad L), ms:");
    println!("| n | m | rhs | snapshot (H(t), Delta, Delta') | Drift probe | all eigenvalues (QR) | tridiagonal + bisection | tridiagonal + multisection (the runs') | multisection - QR, lambda_min / lambda_max relative | Lanczos cold (steps) | Lanczos warm (steps) | Lanczos - QR, lambda_min / lambda_max relative |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    rayon::scope(|_| {
        for &n in &sizes {
            let (d, m) = (20, 10 * n);
            let model = Model::new(Data::synthetic(n, d, 0), InitialNetwork::init(m, d, 0).a);
            let w0 = InitialNetwork::init(m, d, 0).w;
            let space = WeightSpace::new(&model);
            let flow = Flow::new(&space, Damping::None);
            let mut g = vec![0.0; m * d];
            let rhs = time(|| space.gradient(w0.as_slice(), &mut g));
            let snap = time(|| {
                std::hint::black_box(flow.snapshot(w0.as_slice()));
            });
            let s0 = flow.snapshot(w0.as_slice());
            let h0 = s0.gram.clone().expect("weight space");
            let mut drift = Drift::new(&h0, &w0, model.pattern(&w0.as_view()));
            let mut row = Vec::new();
            let probe = time(|| {
                row.clear();
                drift.observe(
                    &Sample {
                        t: 0.0,
                        snapshot: &s0,
                        kernel_extremes: (1.0, 2.0),
                        same_kernel: false,
                        weights: Some(w0.as_view()),
                    },
                    &mut row,
                );
            });
            let w1 = DVector::from_iterator(m * d, w0.iter().zip(&g).map(|(w, gi)| w - 0.5 * gi));
            let h1 = flow.snapshot(w1.as_slice()).gram.expect("weight space");
            let full = time(|| {
                std::hint::black_box(extreme_eigenvalues(&h1));
            });
            let (lo, hi) = extreme_eigenvalues(&h1);
            let ends = time(|| {
                std::hint::black_box(ntkdyn::linalg::bisection_extreme_eigenvalues(&h1));
            });
            let multi = time(|| {
                std::hint::black_box(ntkdyn::observe::extremes::kernel_extremes(&h1));
            });
            let (bmin, bmax) = ntkdyn::observe::extremes::kernel_extremes(&h1);
            let start = lanczos_extremes(&h0, None);
            let cold_e = lanczos_extremes(&h1, None);
            let warm_e = lanczos_extremes(&h1, Some((&start.v_min, &start.v_max)));
            let cold = time(|| {
                std::hint::black_box(lanczos_extremes(&h1, None));
            });
            let warm = time(|| {
                std::hint::black_box(lanczos_extremes(&h1, Some((&start.v_min, &start.v_max))));
            });
            let dev = |e: &ntkdyn::linalg::Extremes| {
                format!(
                    "{:.1e} / {:.1e}",
                    (e.min - lo).abs() / lo.abs(),
                    (e.max - hi).abs() / hi.abs()
                )
            };
            println!(
                "| {n} | {m} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1e} / {:.1e} | {:.3} ({}) | {:.3} ({}) | cold {}, warm {} |",
                rhs * 1e3,
                snap * 1e3,
                probe * 1e3,
                full * 1e3,
                ends * 1e3,
                multi * 1e3,
                (bmin - lo).abs() / lo.abs(),
                (bmax - hi).abs() / hi.abs(),
                cold * 1e3,
                cold_e.steps,
                warm * 1e3,
                warm_e.steps,
                dev(&cold_e),
                dev(&warm_e)
            );
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
