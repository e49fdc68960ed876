//! Regression tests of issue 14's robustness items, each named for the property it guards:
//! tables with comment lines, paths that are not UTF-8, Nesterov's exact mode for
//! gamma in (0, 1), figures of extreme values, and sweep shards that must form one sweep.

mod common;

use common::TempDir;
use ntkdyn::dynamics::Damping;
use ntkdyn::exact::{mode, phi};
use ntkdyn::io::Table;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

// ---------------------------------------------------------------------------------------------
// Tables (item 13: a '#' first line made the header come from the comment).

#[test]
fn table_header_comes_from_the_first_line_that_is_not_a_comment() {
    let dir = TempDir::new("table-comment");
    let path = dir.join("weight.csv");
    std::fs::write(
        &path,
        "# written by hand\n\n# t in seconds\nt,loss,lyapunov\n0,1.5,2\n# a note between rows\n1,0.25,inf\n",
    )
    .unwrap();
    let table = Table::read(&path).expect("a commented table reads");
    assert_eq!(table.header, ["t", "loss", "lyapunov"]);
    assert_eq!(table.column("t"), Some(vec![0.0, 1.0]));
    assert_eq!(table.column("loss"), Some(vec![1.5, 0.25]));
    assert_eq!(table.column("lyapunov"), Some(vec![2.0, f64::INFINITY]));
}

#[test]
fn a_table_whose_rows_are_narrower_than_its_header_is_refused_not_indexed() {
    let dir = TempDir::new("table-narrow");
    let path = dir.join("error.csv");
    std::fs::write(&path, "# note\nt,loss\n0\n").unwrap();
    let err = Table::read(&path).expect_err("a ragged table is refused");
    let msg = err.to_string();
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("1 columns where 2 were expected"), "{msg}");
}

#[test]
fn plot_reads_a_run_directory_whose_csv_starts_with_a_comment() {
    let dir = TempDir::new("plot-comment");
    let out = dir.join("run");
    let status = Command::new(BIN)
        .args(["gf", "--n", "5", "--d", "3", "--m", "20", "--t-end", "1"])
        .args([
            "--samples",
            "5",
            "--space",
            "weight",
            "--no-discrete",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let csv = out.join("weight.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    std::fs::write(&csv, format!("# edited by hand\n{text}")).unwrap();
    let plot = Command::new(BIN).arg("plot").arg(&out).output().unwrap();
    assert!(
        plot.status.success(),
        "plot failed: {}",
        String::from_utf8_lossy(&plot.stderr)
    );
    let svg = std::fs::read_to_string(out.join("loss.svg")).unwrap();
    assert!(svg.trim_end().ends_with("</svg>"));
}

// ---------------------------------------------------------------------------------------------
// Paths (item 3: no lossy conversion).

#[cfg(unix)]
#[test]
fn the_temporary_name_of_a_non_utf8_path_keeps_its_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(OsStr::from_bytes(b"out\xfe/w\xffeight.csv"));
    let tmp = ntkdyn::io::temporary_path(path);
    let mut expected = b".w\xffeight.csv.tmp".to_vec();
    expected.extend(std::process::id().to_string().bytes());
    assert_eq!(tmp.parent(), path.parent());
    assert_eq!(tmp.file_name().unwrap().as_bytes(), &expected[..]);
}

// ---------------------------------------------------------------------------------------------
// Nesterov's exact mode for gamma in (0, 1) (item 13: puruspe panicked on a negative order).

/// Largest residual of x'' + (gamma/t) x' + lambda x = 0 over t in (0, t_end], by central
/// differences of the returned x' (and of x against x'), relative to the size of the terms.
fn nesterov_residual(lambda: f64, gamma: f64, t_end: f64) -> f64 {
    let h = 1e-5;
    let mut worst: f64 = 0.0;
    for k in 1..=400 {
        let t = t_end * k as f64 / 400.0;
        let damping = Damping::Vanishing(gamma);
        let (x, v) = mode(lambda, damping, t);
        let (xp, vp) = mode(lambda, damping, t + h);
        let (xm, vm) = mode(lambda, damping, t - h);
        let scale = lambda.max(1.0) * (x.abs() + v.abs()) + 1e-12;
        worst = worst.max(((xp - xm) / (2.0 * h) - v).abs() / scale);
        let res = (vp - vm) / (2.0 * h) + gamma / t * v + lambda * x;
        worst = worst.max(res.abs() / scale);
    }
    worst
}

#[test]
fn nesterov_mode_with_gamma_below_one_solves_its_ode_from_rest() {
    for gamma in [0.5, 0.1, 0.9, 0.999] {
        for lambda in [0.3, 1.0, 7.0] {
            let (x0, v0) = mode(lambda, Damping::Vanishing(gamma), 0.0);
            assert_eq!((x0, v0), (1.0, 0.0), "gamma {gamma}: x(0) = 1, x'(0) = 0");
            // Just after t = 0, the series of 0F1(; nu + 1; -lambda t^2 / 4):
            // x = 1 - lambda t^2 / (2 (gamma + 1)) + lambda^2 t^4 / (8 (gamma + 1)(gamma + 3)) - ...
            let t = 1e-3;
            let (x, _) = mode(lambda, Damping::Vanishing(gamma), t);
            let taylor = 1.0 - lambda * t * t / (2.0 * (gamma + 1.0));
            let next = lambda * lambda * t.powi(4) / (8.0 * (gamma + 1.0) * (gamma + 3.0));
            assert!(
                (x - taylor - next).abs() < 1e-15,
                "gamma {gamma}: x({t}) = {x}"
            );
            // Across z = sqrt(lambda) t = 4 (series to Bessel) and well beyond.
            let r = nesterov_residual(lambda, gamma, 40.0);
            assert!(r < 1e-6, "gamma {gamma}, lambda {lambda}: residual {r:e}");
        }
    }
}

#[test]
fn phi_of_order_minus_one_half_is_the_cosine() {
    // gamma -> 0: x'' + lambda x = 0 from rest, x = cos(sqrt(lambda) t); this checks the
    // reflection J_{-a} = cos(a pi) J_a - sin(a pi) Y_a at a = 1/2 in closed form.
    for z in [
        0.5, 3.9, 4.0, 4.1, 10.0, 99.9, 100.1, 123.4, 4999.0, 5001.0, 2e4,
    ] {
        let p = phi(-0.5, z);
        assert!(
            (p - z.cos()).abs() < 1e-12,
            "z {z}: {p} against {}",
            z.cos()
        );
    }
}

#[test]
fn phi_of_negative_order_is_continuous_across_its_switches() {
    for nu in [-0.25, -0.45, -0.05] {
        for z in [4.0, 100.0] {
            let below = phi(nu, z * (1.0 - 1e-12));
            let above = phi(nu, z * (1.0 + 1e-12));
            assert!(
                (below - above).abs() < 1e-9 * below.abs().max(1e-3),
                "nu {nu} at z = {z}: {below} and {above}"
            );
        }
    }
}

#[test]
fn nag_with_gamma_one_half_runs_with_its_exact_solution() {
    let dir = TempDir::new("nag-gamma");
    let out = dir.join("run");
    let run = Command::new(BIN)
        .args(["nag", "--gamma", "0.5", "--n", "6", "--d", "3", "--m", "30"])
        .args(["--t-end", "20", "--samples", "21", "--space", "error"])
        .args(["--solver", "exact", "--no-discrete", "--quiet"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let table = Table::read(&out.join("error.csv")).unwrap();
    let loss = table.column("loss").unwrap();
    assert_eq!(loss.len(), 21);
    assert!(loss.iter().all(|l| l.is_finite() && *l >= 0.0));
    // Every mode of x'' + (gamma/t) x' + lambda x = 0 with lambda > 0 decays for gamma > 0.
    assert!(loss[20] < loss[0], "{loss:?}");
}
