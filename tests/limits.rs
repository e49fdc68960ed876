//! Limits and degenerate problems (issue 14, items 8, 9, 10, 12): each refusal names its
//! problem (option, file, line or rows), exits with status 1, writes nothing and never panics;
//! what a degenerate problem still runs reports bounds that are infinite, never negative.

mod common;

use std::process::{Command, Output};

use common::TempDir;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::validate::{check_sweep, MemoryEstimate, Sizes};
use ntkdyn::study::{RunConfig, SpaceChoice, MAX_BYTES};

/// Run the binary in `dir` with `args` and `--out dir/out`.
fn ntkdyn(dir: &TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(args)
        .arg("--out")
        .arg(dir.join("out"))
        .current_dir(dir.path())
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("ntkdyn starts")
}

/// The one error line of a refused run, after checking status 1, no panic and no output.
fn refused(dir: &TempDir, args: &[&str]) -> String {
    let out = ntkdyn(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        !dir.join("out").exists(),
        "{args:?} wrote {}",
        dir.join("out").display()
    );
    stderr
}

fn write(dir: &TempDir, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    dir.join(name).display().to_string()
}

const QUICK: [&str; 4] = ["--t-end", "0.5", "--samples", "3"];

#[test]
fn repeated_inputs_are_named_by_row_and_heavy_balls_default_friction_is_refused() {
    let dir = TempDir::new("limits-hbf-rows");
    // n = 5, d = 1: every input is +1 or -1, so the inputs of one sign repeat each other.
    let line = refused(
        &dir,
        &[&["hbf", "--n", "5", "--d", "1"][..], &QUICK].concat(),
    );
    assert!(line.contains("repeated or parallel"), "{line}");
    assert!(line.contains("rows counting from 1"), "{line}");
    assert!(
        line.contains("--friction") && line.contains("--lambda0"),
        "{line}"
    );
    assert!(!line.contains("non-finite"), "{line}");
}

#[test]
fn repeated_rows_of_a_data_file_are_named_by_their_file_lines() {
    let dir = TempDir::new("limits-data-lines");
    // Lines 3 and 6 repeat, line 7 is a positive multiple of line 4.
    let data = write(
        &dir,
        "data.csv",
        "x1,x2,y\n# a comment\n0.6,0.8,1\n1,0,0.5\n\n0.6,0.8,-1\n2,0,0.25\n0,1,0.1\n",
    );
    let line = refused(&dir, &[&["hbf", "--data", &data][..], &QUICK].concat());
    assert!(line.contains("data.csv lines"), "{line}");
    assert!(line.contains("{3, 6}") && line.contains("{4, 7}"), "{line}");
}

#[test]
fn heavy_ball_with_its_friction_given_runs_on_repeated_inputs_with_infinite_bounds() {
    let dir = TempDir::new("limits-hbf-friction");
    let out = ntkdyn(
        &dir,
        &[
            &[
                "hbf",
                "--n",
                "5",
                "--d",
                "1",
                "--m",
                "50",
                "--friction",
                "0.5",
            ][..],
            &QUICK,
            &["--quiet"],
        ]
        .concat(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = std::fs::read_to_string(dir.join("out/summary.json")).unwrap();
    assert!(summary.contains("repeated or parallel"), "{summary}");
    assert!(summary.contains("\"lambda0\": 0.0"), "{summary}");
}

#[test]
fn bounds_that_divide_by_a_singular_lambda0_are_infinite_never_negative() {
    for optimizer in Optimizer::ALL {
        let cfg = RunConfig {
            n: 5,
            d: 1,
            m: 40,
            t_end: 1.0,
            samples: 5,
            discrete: false,
            friction: Some(0.5),
            progress: false,
            ..RunConfig::defaults(optimizer)
        };
        let report = ntkdyn::study::run(&cfg).unwrap();
        assert_eq!(report.setup.lambda0, 0.0, "{optimizer}");
        assert!(report.setup.hinf_extremes.0 <= 1e-12, "{optimizer}");
        for space in [&report.weight, &report.error] {
            let bounds = space.as_ref().unwrap().table.column("loss_bound").unwrap();
            for b in bounds {
                assert!(b >= 0.0, "{optimizer}: loss_bound {b}");
                if optimizer != Optimizer::Gf {
                    assert_eq!(b, f64::INFINITY, "{optimizer}");
                }
            }
        }
    }
}

#[test]
fn eta_auto_with_no_active_unit_is_refused_not_run_with_an_infinite_step() {
    let dir = TempDir::new("limits-eta-auto-zero");
    // Every input has x1 > 0 and every unit w = (-1, 0): no unit is ever active, H(0) = 0.
    let data = write(&dir, "data.csv", "1,0,0.5\n0.6,0.8,-0.2\n0.8,-0.6,0.1\n");
    let init = write(&dir, "init.csv", "1,-1,0\n-1,-1,0\n1,-2,0.5\n");
    let line = refused(
        &dir,
        &[
            &["gf", "--data", &data, "--init", &init, "--eta", "auto"][..],
            &QUICK,
        ]
        .concat(),
    );
    assert!(
        line.contains("--eta") && line.contains("lambda_max(H(0))"),
        "{line}"
    );
}

#[test]
fn eta_auto_respects_the_iterate_cap() {
    let dir = TempDir::new("limits-eta-auto-cap");
    // Inputs of norm 1e4 (not normalized): lambda_max(H(0)) ~ 1e8, eta ~ 1e-8.
    let data = write(&dir, "data.csv", "1e4,0,0.5\n0,1e4,-0.2\n6e3,8e3,0.1\n");
    let line = refused(
        &dir,
        &["gf", "--data", &data, "--eta", "auto", "--t-end", "50"],
    );
    assert!(
        line.contains("--eta") && line.contains("iterates"),
        "{line}"
    );
}

#[test]
fn the_summary_records_the_sizes_the_data_and_init_files_gave() {
    let dir = TempDir::new("limits-resolved");
    let data = write(
        &dir,
        "data.csv",
        "1,0,0.5\n0.6,0.8,-0.2\n0.8,-0.6,0.1\n0,1,1\n",
    );
    let init = write(&dir, "init.csv", "1,0.5,0.5\n-1,-0.2,0.3\n1,0.1,-0.9\n");
    let out = ntkdyn(
        &dir,
        &[
            &["gf", "--data", &data, "--init", &init, "--quiet"][..],
            &QUICK,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(dir.join("out/summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let config = &summary["config"];
    assert_eq!(
        (&config["n"], &config["d"], &config["m"]),
        (&4.into(), &2.into(), &3.into())
    );
    assert_eq!(
        (&summary["n"], &summary["d"], &summary["m"]),
        (&4.into(), &2.into(), &3.into())
    );
}

#[test]
fn plot_refuses_a_summary_whose_n_is_not_a_number_naming_the_file_and_key() {
    let dir = TempDir::new("limits-plot-types");
    let out = ntkdyn(
        &dir,
        &[
            &["gf", "--n", "4", "--d", "2", "--m", "10", "--quiet"][..],
            &QUICK,
        ]
        .concat(),
    );
    assert_eq!(out.status.code(), Some(0));
    let path = dir.join("out/summary.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen("\"n\": 4,", "\"n\": \"ten\",", 1);
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();
    let svg_before = std::fs::read(dir.join("out/loss.svg")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(["plot"])
        .arg(dir.join("out"))
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{line}");
    assert!(
        line.contains("summary.json") && line.contains("\"n\""),
        "{line}"
    );
    assert_eq!(line.trim_end().lines().count(), 1, "{line}");
    assert_eq!(std::fs::read(dir.join("out/loss.svg")).unwrap(), svg_before);
}

#[test]
fn a_data_file_too_large_for_memory_is_refused_before_its_kernels_are_built() {
    let dir = TempDir::new("limits-data-memory");
    // 50,000 rows of 1.1 MB: its n x n kernels would take tens of GB.
    let mut text = String::new();
    for i in 0..50_000 {
        let a = (i as f64 * 0.001).sin();
        text += &format!("{a:.6},{:.6},0.5\n", (1.0 - a * a).sqrt());
    }
    let data = write(&dir, "big.csv", &text);
    let line = refused(&dir, &["gf", "--data", &data]);
    assert!(line.contains("n = 50000") && line.contains("GB"), "{line}");
    assert!(
        line.contains("at most 16 GB") && line.contains("--data"),
        "{line}"
    );
}

#[test]
fn held_out_points_beyond_the_memory_limit_are_refused_with_the_number() {
    let dir = TempDir::new("limits-test-n");
    let line = refused(&dir, &["gf", "--test-n", "5000000"]);
    assert!(
        line.contains("GB") && line.contains("lower --test-n"),
        "{line}"
    );
}

#[test]
fn an_rk4_step_needing_too_many_steps_is_refused_before_running() {
    let dir = TempDir::new("limits-rk4");
    for step in ["1e-12", "1e-300"] {
        let line = refused(&dir, &["gf", "--solver", "rk4", "--step", step]);
        assert!(line.contains("--step") && line.contains(step), "{line}");
    }
}

#[test]
fn compare_counts_all_its_runs_at_once() {
    let dir = TempDir::new("limits-compare");
    // One run of n = 11000 fits (about 7 GB), compare's four at once do not.
    let cfg = RunConfig {
        n: 11000,
        m: 10,
        ..RunConfig::default()
    };
    cfg.validate().unwrap();
    let line = refused(&dir, &["compare", "--n", "11000", "--m", "10"]);
    let runs = format!("{} runs at once", ntkdyn::optimizer::Optimizer::ALL.len());
    assert!(line.contains(&runs), "{line}");
}

#[test]
fn a_sweep_counts_its_widest_runs_on_every_thread() {
    let dir = TempDir::new("limits-sweep");
    let line = refused(
        &dir,
        &[
            "sweep",
            "--widths",
            "10,4000000",
            "--n",
            "1000",
            "--seeds",
            "2",
        ],
    );
    assert!(
        line.contains("m = 4000000") && line.contains("GB"),
        "{line}"
    );
    // The arithmetic: the widest width on each thread.
    let base = RunConfig {
        n: 1000,
        ..RunConfig::default()
    };
    assert!(check_sweep(&base, &[10, 4_000_000], 6, 1).is_err());
    assert!(check_sweep(&base, &[10, 1000], 6, 2).is_ok());
}

#[test]
fn the_estimate_adds_its_parts_and_multiplies_the_runs_held_at_once() {
    let cfg = RunConfig {
        samples: 1_000_001,
        test_n: 100,
        space: SpaceChoice::Both,
        ..RunConfig::default()
    };
    let sizes = Sizes::of(&cfg);
    let one = MemoryEstimate::of(&cfg, sizes, Some(cfg.eta));
    let parts: f64 = one.parts.iter().map(|p| p.1).sum();
    let base = one.bytes() - parts;
    assert!(base > 0.0 && base < 50e6, "{base}");
    let mut three = one.clone();
    three.runs = 3;
    assert!((three.bytes() - (base + 3.0 * parts)).abs() <= 1e-6 * parts);
    // Each part grows with what it counts.
    let more_samples = RunConfig {
        samples: 2_000_001,
        ..cfg.clone()
    };
    let two = MemoryEstimate::of(&more_samples, sizes, Some(cfg.eta));
    assert!(two.parts[1].1 > 1.99 * one.parts[1].1);
    // Without the twin, no iterates; with --eta auto unresolved, none yet either.
    assert_eq!(MemoryEstimate::of(&cfg, sizes, None).parts[2].1, 0.0);
    // The limit holds the defaults many times over.
    assert!(one.bytes() < MAX_BYTES / 10.0);
}
