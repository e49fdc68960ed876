//! The binary: a tiny run writes SPEC.md's files; bad inputs exit non-zero with one line on
//! stderr naming the problem, never a panic.

mod common;

use common::TempDir;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Run the binary; a run that has not finished after 20 s is killed and fails the test.
fn ntkdyn(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ntkdyn {args:?} did not finish within 20 s (killed)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn data_rows(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.parse::<f64>().unwrap()).collect())
        .collect()
}

#[test]
fn tiny_gf_run_exits_zero_and_writes_every_file() {
    let dir = TempDir::new("cli-gf");
    let out_dir = dir.join("out");
    let out = ntkdyn(&[
        "gf",
        "--n",
        "10",
        "--d",
        "4",
        "--m",
        "200",
        "--t-end",
        "2",
        "--samples",
        "11",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(&out)
    );
    for name in [
        "weight.csv",
        "error.csv",
        "discrete.csv",
        "summary.json",
        "loss.svg",
        "lyapunov.svg",
        "kernel.svg",
    ] {
        let path = out_dir.join(name);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{name} missing or empty");
    }
    for name in ["weight.csv", "error.csv"] {
        let rows = data_rows(&out_dir.join(name));
        assert_eq!(rows.len(), 11, "{name}: 11 samples");
        assert_eq!(rows[0][0], 0.0);
        assert_eq!(rows[10][0], 2.0);
        assert!((rows[5][0] - 1.0).abs() < 1e-15);
        // Gradient flow: the loss decreases.
        assert!(
            rows.windows(2).all(|p| p[1][1] <= p[0][1]),
            "{name}: loss rose"
        );
    }
    // GD with the default eta = 0.01 up to t = 2: iterates 0..=200.
    let discrete = data_rows(&out_dir.join("discrete.csv"));
    assert_eq!(discrete.len(), 201);
    assert_eq!(discrete[200][0], 200.0);
    assert!((discrete[200][1] - 2.0).abs() < 1e-12);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["config"]["m"].as_u64(), Some(200));
    let svg = std::fs::read_to_string(out_dir.join("loss.svg")).unwrap();
    assert!(svg.contains("<svg"), "loss.svg is not an SVG");
}

#[test]
fn help_documents_every_spec_option() {
    let out = ntkdyn(&["gf", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--n",
        "--d",
        "--m",
        "--seed",
        "--data",
        "--init",
        "--space",
        "--kernel",
        "--t-end",
        "--samples",
        "--solver",
        "--rtol",
        "--atol",
        "--step",
        "--friction",
        "--gamma",
        "--alpha",
        "--lambda0",
        "--eta",
        "--no-discrete",
        "--out",
        "--quiet",
    ] {
        assert!(
            help.split(|c: char| c.is_whitespace() || c == ',')
                .any(|w| w == option),
            "--help does not document {option}"
        );
    }
}

/// Run with bad arguments (completed by a tiny problem unless given): non-zero exit, no panic,
/// one line on stderr containing `needle`. Returns the output directory's guard.
fn assert_refused(args: &[&str], needle: &str) -> TempDir {
    let dir = TempDir::new("cli-bad");
    let given = |flag: &str| {
        args.iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")))
    };
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for (flag, value) in [
        ("--n", "5"),
        ("--d", "3"),
        ("--m", "50"),
        ("--t-end", "0.5"),
    ] {
        if !given(flag) {
            all.push(flag.into());
            all.push(value.into());
        }
    }
    all.push("--quiet".into());
    all.push("--out".into());
    all.push(dir.join("out").to_string_lossy().into_owned());
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = ntkdyn(&refs);
    let err = stderr(&out);
    assert!(!out.status.success(), "{args:?} was accepted");
    assert_ne!(out.status.code(), Some(101), "{args:?} panicked: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line on stderr:\n{err}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: '{}' does not name {needle}",
        lines[0]
    );
    dir
}

#[test]
fn bad_option_values_are_refused_with_one_line_naming_the_option() {
    assert_refused(&["gf", "--samples", "1"], "samples");
    assert_refused(&["gf", "--t-end", "-1"], "t-end");
    assert_refused(&["gf", "--t-end=-1"], "t-end");
    assert_refused(&["gf", "--t-end", "0"], "t-end");
    assert_refused(&["gf", "--m", "0"], "--m");
    assert_refused(&["gf", "--n", "0"], "--n");
    assert_refused(&["nag", "--alpha", "5", "--gamma", "3"], "alpha");
    assert_refused(&["nag", "--gamma", "0"], "gamma");
    assert_refused(&["gf", "--rtol", "0"], "rtol");
    assert_refused(&["gf", "--rtol", "2"], "rtol");
    assert_refused(&["gf", "--eta", "-0.1"], "eta");
    assert_refused(&["gf", "--m", "abc"], "abc");
    assert_refused(&["gf", "--solver", "euler"], "euler");
    assert_refused(&["gf", "--solver", "exact"], "solver");
}

#[test]
fn bad_input_files_are_refused_with_one_line_naming_file_and_line() {
    assert_refused(&["gf", "--data", "missing.csv"], "missing.csv");
    let dir = TempDir::new("cli-files");
    let ragged = dir.join("ragged.csv");
    std::fs::write(&ragged, "x1,x2,y\n0.6,0.8,1\n0,1\n").unwrap();
    assert_refused(&["gf", "--data", ragged.to_str().unwrap()], "line 3");
    let nan = dir.join("nan.csv");
    std::fs::write(&nan, "0.6,0.8,1\nNaN,1,0\n").unwrap();
    assert_refused(&["gf", "--data", nan.to_str().unwrap()], "line 2");
    let data = dir.join("data.csv");
    std::fs::write(&data, "0.6,0.8,1\n0,1,0\n").unwrap();
    let init = dir.join("init.csv");
    std::fs::write(&init, "1,0.1,0.2,0.3\n-1,0.3,0.2,0.1\n").unwrap();
    assert_refused(
        &[
            "gf",
            "--data",
            data.to_str().unwrap(),
            "--init",
            init.to_str().unwrap(),
        ],
        "init.csv",
    );
}

#[test]
fn diverging_discrete_run_stops_keeps_its_rows_and_exits_non_zero() {
    // GD with eta = 50 >> 2/lambda_max(H(0)): the loss overflows within 100 iterates.
    let dir = assert_refused(
        &[
            "gf",
            "--space",
            "error",
            "--solver",
            "exact",
            "--eta",
            "50",
            "--t-end",
            "5000",
            "--samples",
            "11",
        ],
        "discrete",
    );
    let rows = data_rows(&dir.join("out").join("discrete.csv"));
    assert!(rows.len() > 2 && rows.len() < 100, "{} rows", rows.len());
    assert!(
        rows.iter().all(|r| r[2].is_finite()),
        "rows kept are finite"
    );
    assert!(
        rows[rows.len() - 1][2] > 1e100 * rows[0][2],
        "the loss blew up"
    );
    // The error space (exact) part was written whole.
    assert_eq!(data_rows(&dir.join("out").join("error.csv")).len(), 11);
}

/// With held-out points the printed summary ends in their test losses (network, kernel
/// predictor and its limit, twin) and, with +-1 labels, the accuracies (issue 16).
#[test]
fn the_printed_summary_names_the_held_out_losses_and_accuracies() {
    let tmp = TempDir::new("held-out-lines");
    // Points on the unit circle in d = 2, labelled by the sign of their first coordinate.
    let points = |angles: &[f64]| -> String {
        angles
            .iter()
            .map(|a| {
                let (s, c) = a.sin_cos();
                format!("{c},{s},{}\n", if c >= 0.0 { 1 } else { -1 })
            })
            .collect()
    };
    let data = tmp.join("train.csv");
    let test = tmp.join("test.csv");
    std::fs::write(&data, points(&[0.1, 0.9, 1.7, 2.5, 3.3, 4.1, 4.9, 5.7])).unwrap();
    std::fs::write(&test, points(&[0.5, 2.0, 3.8, 5.2])).unwrap();
    let out_dir = tmp.join("out");
    let out = ntkdyn(&[
        "gf",
        "--data",
        data.to_str().unwrap(),
        "--test",
        test.to_str().unwrap(),
        "--m",
        "40",
        "--t-end",
        "1",
        "--samples",
        "5",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let loss = stdout
        .lines()
        .find(|l| l.starts_with("  held-out (4 points) test loss: "))
        .unwrap_or_else(|| panic!("no held-out line:\n{stdout}"));
    for name in [
        "network ",
        "kernel predictor ",
        "its limit t -> inf ",
        "twin ",
    ] {
        assert!(loss.contains(name), "{loss}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    let network = summary["held_out"]["network_test_loss"].as_f64().unwrap();
    assert!(loss.contains(&format!("network {network:.4e}")), "{loss}");
    let accuracy = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("test accuracy: network "))
        .unwrap_or_else(|| panic!("no accuracy line:\n{stdout}"));
    assert!(
        accuracy.contains("train accuracy of the network"),
        "{accuracy}"
    );
}
