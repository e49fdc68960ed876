//! Regression tests of issue 14's robustness items, each named for the property it guards:
//! tables with comment lines, paths that are not UTF-8, Nesterov's exact mode for
//! gamma in (0, 1), figures of extreme values, and sweep shards that must form one sweep.

mod common;

use common::TempDir;
use ntkdyn::dynamics::Damping;
use ntkdyn::io::Table;
use ntkdyn::theory::exact::{mode, phi};
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

// ---------------------------------------------------------------------------------------------
// Figures of extreme values (item 11): drawn with safe axis ranges, or refused; never a hang.

use ntkdyn::output::plot::{self, Dash, Figure, PlotError, Series};

fn figure(points: Vec<(f64, f64)>, log_y: bool) -> Figure {
    let mut fig = Figure::new("extreme", "t", "y");
    fig.log_y = log_y;
    fig.series.push(Series {
        label: "data".into(),
        points,
        color: ntkdyn::output::style::color(ntkdyn::optimizer::Optimizer::Gf),
        dash: Dash::Solid,
        band: Vec::new(),
    });
    fig
}

fn constant(v: f64) -> Vec<(f64, f64)> {
    (0..50).map(|k| (k as f64 * 0.1, v)).collect()
}

#[test]
fn figures_of_extreme_values_are_drawn_with_finite_axes() {
    let cases: Vec<(&str, Vec<(f64, f64)>)> = vec![
        ("1e100", constant(1e100)),
        ("1e-100", constant(1e-100)),
        ("1e200", constant(1e200)),
        ("1e-200", constant(1e-200)),
        ("1e300", constant(1e300)),
        ("zero", constant(0.0)),
        ("all equal", constant(0.37)),
        (
            "1e100 within rounding",
            (0..50)
                .map(|k| (k as f64, 1e100 * (1.0 + k as f64 * f64::EPSILON)))
                .collect(),
        ),
        (
            "NaN and inf mixed in",
            (0..50)
                .map(|k| {
                    let y = match k % 5 {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2 => f64::NEG_INFINITY,
                        _ => 1.0 / (k as f64 + 1.0),
                    };
                    (k as f64, y)
                })
                .collect(),
        ),
        (
            "nothing finite",
            vec![(f64::NAN, f64::NAN), (1.0, f64::INFINITY)],
        ),
        ("1e-300 to 1e300", vec![(0.0, 1e-300), (1.0, 1e300)]),
        ("denormal", constant(1e-310)),
        (
            "t near 1e100",
            (0..50).map(|k| (1e100 + k as f64 * 1e85, 1.0)).collect(),
        ),
    ];
    for (name, points) in cases {
        for log_y in [false, true] {
            let svg = plot::try_render_grid(&[figure(points.clone(), log_y)], 1)
                .unwrap_or_else(|e| panic!("{name} (log y {log_y}): {e}"));
            assert!(svg.trim_end().ends_with("</svg>"), "{name}");
            // Bounded output: a handful of ticks and the 50 points, not an endless tick list.
            assert!(svg.len() < 200_000, "{name}: {} bytes", svg.len());
        }
    }
}

#[test]
fn a_time_axis_wider_than_an_f64_is_refused_not_drawn() {
    let points = vec![(-1e308, 1.0), (0.0, 0.5), (1e308, 0.25)];
    for log_y in [false, true] {
        let err = plot::try_render_grid(&[figure(points.clone(), log_y)], 1)
            .expect_err("the span -1e308..1e308 overflows");
        assert!(
            matches!(err, PlotError::Axis { axis: "x", .. }),
            "{err:?} (log y {log_y})"
        );
    }
    // The same on the y axis.
    let err = plot::try_render_grid(&[figure(vec![(0.0, -1e308), (1.0, 1e308)], false)], 1)
        .expect_err("y span overflows");
    assert!(matches!(err, PlotError::Axis { axis: "y", .. }), "{err:?}");
}

#[test]
fn panel_sizes_outside_their_bounds_are_refused_with_the_option_named() {
    for (w, h) in [
        (0, 440),
        (640, 0),
        (u32::MAX, 440),
        (640, u32::MAX),
        (159, 440),
    ] {
        let mut fig = figure(constant(1.0), false);
        fig.width = w;
        fig.height = h;
        let err = plot::try_render_grid(&[fig], 1).expect_err("size");
        assert!(matches!(err, PlotError::Size { .. }), "{w}x{h}: {err:?}");
    }
    let mut small = figure(constant(1.0), true);
    small.width = plot::MIN_PIXELS;
    small.height = plot::MIN_PIXELS;
    assert!(plot::try_render_grid(&[small], 1).is_ok());
    assert_eq!(
        plot::check_size(Some(0), None).unwrap_err().to_string(),
        "--width-px: a width of 0 pixels is outside 160..=16384"
    );
    assert_eq!(
        plot::check_size(None, Some(4294967295))
            .unwrap_err()
            .to_string(),
        "--height-px: a height of 4294967295 pixels is outside 160..=16384"
    );
    assert!(plot::check_size(Some(640), Some(440)).is_ok());
}

/// A run directory from a real tiny run (weight space, 3 samples), its figures removed and the
/// rows of weight.csv replaced by the given times and losses (the loss, pseudo-loss and
/// Lyapunov columns take the loss; the bound is inf; every other column 0).
fn hand_run(dir: &std::path::Path, t: &[f64], loss: &[f64]) {
    let status = Command::new(BIN)
        .args(["gf", "--n", "3", "--d", "2", "--m", "10", "--t-end", "1"])
        .args(["--samples", &t.len().to_string(), "--space", "weight"])
        .args(["--no-discrete", "--quiet", "--out"])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    for svg in ["loss.svg", "lyapunov.svg", "kernel.svg"] {
        std::fs::remove_file(dir.join(svg)).unwrap();
    }
    let path = dir.join("weight.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let mut csv = header.join(",") + "\n";
    for (t, l) in t.iter().zip(loss) {
        let row: Vec<String> = header
            .iter()
            .map(|c| match *c {
                "t" => format!("{t:e}"),
                "loss" | "pseudo_loss" | "lyapunov" => format!("{l:e}"),
                "loss_bound" => "inf".into(),
                _ => "0".into(),
            })
            .collect();
        csv += &(row.join(",") + "\n");
    }
    std::fs::write(path, csv).unwrap();
}

#[test]
fn plot_of_a_constant_loss_of_1e200_or_1e_minus_200_finishes() {
    let tmp = TempDir::new("plot-extreme");
    for (k, v) in [1e200, 1e-200, 1e100, 1e-100].into_iter().enumerate() {
        let dir = tmp.join(&format!("run{k}"));
        hand_run(&dir, &[0.0, 1.0, 2.0], &[v, v, v]);
        let out = Command::new(BIN).arg("plot").arg(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "{v:e}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let svg = std::fs::read_to_string(dir.join("loss.svg")).unwrap();
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}

#[test]
fn plot_with_a_time_axis_beyond_an_f64_fails_cleanly_and_keeps_the_data() {
    let tmp = TempDir::new("plot-wide");
    let dir = tmp.join("run");
    hand_run(&dir, &[-1e308, 0.0, 1e308], &[1.0, 0.5, 0.25]);
    let before = std::fs::read(dir.join("weight.csv")).unwrap();
    let out = Command::new(BIN).arg("plot").arg(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
    assert!(stderr.contains("x axis"), "{stderr}");
    assert_eq!(std::fs::read(dir.join("weight.csv")).unwrap(), before);
}

#[test]
fn plot_with_a_width_of_zero_pixels_is_refused_without_a_broken_svg() {
    let tmp = TempDir::new("plot-width");
    let dir = tmp.join("run");
    hand_run(&dir, &[0.0, 1.0, 2.0], &[1.0, 0.5, 0.25]);
    for width in ["0", "4294967295"] {
        let out = Command::new(BIN)
            .arg("plot")
            .arg(&dir)
            .args(["--width-px", width])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "width {width} accepted");
        assert_ne!(out.status.code(), Some(101), "a panic: {stderr}");
        assert!(stderr.contains("160..=16384"), "{stderr}");
        assert!(
            !dir.join("loss.svg").exists(),
            "width {width}: an SVG was written"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Sweep shards form one whole sweep (item 6), through the binary.

/// `ntkdyn sweep` with a small base run and `extra` options, into `dir`.
fn sweep(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args([
            "sweep",
            "--n",
            "4",
            "--d",
            "2",
            "--t-end",
            "0.2",
            "--samples",
            "3",
        ])
        .args(["--quiet", "--out"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn shard(dir: &std::path::Path, i: usize, n: usize, extra: &[&str]) {
    let spec = format!("{i}/{n}");
    let mut args = vec!["--widths", "3,5", "--seeds", "2", "--shard", &spec];
    args.extend_from_slice(extra);
    let out = sweep(dir, &args);
    assert!(
        out.status.success(),
        "shard {spec}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ntkdyn sweep --merge` on `dir` (no run options: the shards carry their configuration).
fn merge(dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(["sweep", "--merge", "--quiet", "--out"])
        .arg(dir)
        .output()
        .unwrap()
}

fn merge_error(dir: &std::path::Path) -> String {
    let out = merge(dir);
    assert!(!out.status.success(), "merge accepted");
    assert_ne!(out.status.code(), Some(101), "a panic");
    assert!(
        !dir.join("sweep.csv").exists(),
        "a refused merge wrote sweep.csv"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn shards_of_one_sweep_merge_into_the_whole_sweep() {
    let tmp = TempDir::new("shards-whole");
    let (whole, parts) = (tmp.join("whole"), tmp.join("parts"));
    let out = sweep(&whole, &["--widths", "3,5", "--seeds", "2"]);
    assert!(out.status.success());
    for i in 1..=3 {
        shard(&parts, i, 3, &[]);
    }
    let first = std::fs::read_to_string(parts.join("sweep-shard-1-of-3.csv")).unwrap();
    assert!(first.starts_with("# ntkdyn sweep shard: {"), "{first}");
    let out = merge(&parts);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(parts.join("sweep.csv")).unwrap(),
        std::fs::read(whole.join("sweep.csv")).unwrap()
    );
}

#[test]
fn merge_refuses_a_missing_shard_naming_it() {
    let tmp = TempDir::new("shards-missing");
    let dir = tmp.join("parts");
    for i in [1, 2, 4] {
        shard(&dir, i, 4, &[]);
    }
    let err = merge_error(&dir);
    assert!(err.contains("3 of 4 shards"), "{err}");
    assert!(err.contains("missing sweep-shard-3-of-4.csv"), "{err}");
}

#[test]
fn merge_refuses_shards_of_two_splits() {
    let tmp = TempDir::new("shards-splits");
    let dir = tmp.join("parts");
    for i in 1..=4 {
        shard(&dir, i, 4, &[]);
    }
    shard(&dir, 1, 2, &[]); // an old split beside the new one
    let err = merge_error(&dir);
    assert!(err.contains("two different splits"), "{err}");
    assert!(err.contains("sweep-shard-1-of-2.csv"), "{err}");
}

#[test]
fn merge_refuses_a_shard_of_another_sweep_naming_what_differs() {
    let tmp = TempDir::new("shards-foreign");
    let dir = tmp.join("parts");
    shard(&dir, 1, 2, &[]);
    shard(&dir, 2, 2, &["--eta", "0.02"]);
    let err = merge_error(&dir);
    assert!(
        err.contains("sweep-shard-2-of-2.csv belongs to another sweep than sweep-shard-1-of-2.csv"),
        "{err}"
    );
    assert!(err.contains("run.eta: 0.02 here, 0.01 there"), "{err}");
}

#[test]
fn merge_refuses_a_row_with_m_zero_and_a_row_that_is_not_a_job() {
    let tmp = TempDir::new("shards-rows");
    let dir = tmp.join("parts");
    shard(&dir, 1, 2, &[]);
    shard(&dir, 2, 2, &[]);
    let path = dir.join("sweep-shard-2-of-2.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    // Line 3 is the first row (record, header, rows): its m set to 0.
    let lines: Vec<&str> = text.lines().collect();
    let zero = lines[2].replacen(lines[2].split(',').next().unwrap(), "0", 1);
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[2] = zero;
    std::fs::write(&path, edited.join("\n") + "\n").unwrap();
    let err = merge_error(&dir);
    assert!(
        err.contains("sweep-shard-2-of-2.csv: line 3: m = '0' is not a width"),
        "{err}"
    );
    // A row repeated in place of another job.
    let mut repeated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    repeated[3] = repeated[2].clone();
    std::fs::write(&path, repeated.join("\n") + "\n").unwrap();
    let err = merge_error(&dir);
    assert!(err.contains("shard 2 of 2 holds m = "), "{err}");
}

#[test]
fn merge_refuses_a_shard_without_a_record() {
    let tmp = TempDir::new("shards-norecord");
    let dir = tmp.join("parts");
    shard(&dir, 1, 1, &[]);
    let path = dir.join("sweep-shard-1-of-1.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    let (_, rest) = text.split_once('\n').unwrap();
    std::fs::write(&path, rest).unwrap();
    let err = merge_error(&dir);
    assert!(err.contains("no record of its sweep"), "{err}");
}

#[test]
fn merge_refuses_run_options_naming_them_instead_of_ignoring_them() {
    let tmp = TempDir::new("merge-options");
    let dir = tmp.join("parts");
    shard(&dir, 1, 1, &[]);
    let out = Command::new(BIN)
        .args([
            "sweep", "--merge", "--widths", "10", "--t-end", "3", "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // One line naming --merge and the option it makes pointless (the command line's one
    // check, which names every run or job option given beside --merge).
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("--merge") && err.contains("--widths"), "{err}");
    assert!(!dir.join("sweep.csv").exists());
}

#[test]
fn a_width_given_twice_is_refused() {
    let tmp = TempDir::new("sweep-twice");
    let out = sweep(&tmp.join("s"), &["--widths", "10,10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("--widths: 10 appears twice"), "{err}");
}

#[test]
fn seeds_past_the_largest_u64_are_refused_not_wrapped_to_zero() {
    let tmp = TempDir::new("sweep-seed");
    let dir = tmp.join("s");
    let out = sweep(
        &dir,
        &[
            "--widths",
            "3",
            "--seed",
            "18446744073709551615",
            "--seeds",
            "2",
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_ne!(out.status.code(), Some(101), "a panic: {err}");
    assert!(
        err.contains("run past the largest seed 18446744073709551615"),
        "{err}"
    );
    assert!(!dir.join("sweep.csv").exists());
    // The largest seed alone is a valid sweep of one seed.
    let out = sweep(&dir, &["--widths", "3", "--seed", "18446744073709551615"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .starts_with("3,18446744073709551615,gf,"));
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_as_out_is_named_as_such_not_file_exists() {
    let tmp = TempDir::new("dangling-out");
    let out = tmp.join("out");
    std::os::unix::fs::symlink(tmp.join("nowhere"), &out).unwrap();
    let run = Command::new(BIN)
        .args(["gf", "--n", "4", "--d", "2", "--m", "10", "--t-end", "0.2"])
        .args(["--samples", "3", "--no-discrete", "--quiet", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(err.contains("is a symbolic link to"), "{err}");
    assert!(err.contains("which does not exist"), "{err}");
    assert!(!err.contains("File exists"), "{err}");
    assert!(!tmp.join("nowhere").exists());
}

#[test]
fn a_sweep_of_more_than_a_million_runs_is_refused_before_its_job_list_is_built() {
    let tmp = TempDir::new("sweep-huge");
    let out = sweep(&tmp.join("s"), &["--widths", "3,5", "--seeds", "100000000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("2 widths x 100000000 seeds x 1 optimizers is more than 1000000 runs"),
        "{err}"
    );
}
