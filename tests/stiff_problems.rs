//! A stiff problem says so before it integrates (issue 14, item 15): unnormalized inputs of
//! scale 100 give lambda_max(H(0)) ~ 8e4, so an explicit solver needs ~1e6 steps at T = 50.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

/// 20 points in d = 3 with coordinates in [0, 100] (and targets too), not on the sphere.
fn stiff_data(dir: &TempDir) -> std::path::PathBuf {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64 * 100.0
    };
    let text: String = (0..20)
        .map(|_| format!("{},{},{},{}\n", next(), next(), next(), next()))
        .collect();
    let path = dir.join("stiff.csv");
    std::fs::write(&path, text).unwrap();
    path
}

/// Kills the child when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_stiff_run_warns_with_the_estimated_steps_while_it_is_still_running() {
    let dir = TempDir::new("stiff");
    let data = stiff_data(&dir);
    // The whole run takes minutes: the warning must come before it, not after.
    let mut child = Killed(
        Command::new(BIN)
            .arg("gf")
            .arg("--data")
            .arg(&data)
            .args(["--m", "50", "--t-end", "50", "--out"])
            .arg(dir.join("out"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut warning = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.contains("stiff problem") {
            warning = Some(line);
            break;
        }
        seen.push(line);
    }
    let warning = warning.unwrap_or_else(|| panic!("no stiff warning; stderr: {seen:?}"));
    assert_eq!(
        child.0.try_wait().unwrap(),
        None,
        "the run had ended when its stiff warning came"
    );
    assert!(warning.starts_with("warning: "), "{warning}");
    assert!(
        warning.contains("steps") && warning.contains("T = 50"),
        "{warning}"
    );
    for remedy in ["--normalize", "--t-end", "--space error --solver exact"] {
        assert!(warning.contains(remedy), "{warning} lacks {remedy}");
    }
    // The off-sphere warning of the setup came before the integration too.
    assert!(seen.iter().any(|l| l.contains("unit sphere")), "{seen:?}");
}

#[test]
fn a_stiff_run_with_quiet_prints_nothing_and_without_it_warns() {
    let dir = TempDir::new("stiff-quiet");
    let data = stiff_data(&dir);
    // Error space alone, T = 10: a few 1e5 steps of a 20-dimensional ODE, a second or so.
    let run = |quiet: bool| {
        let mut cmd = Command::new(BIN);
        cmd.arg("gf")
            .arg("--data")
            .arg(&data)
            .args([
                "--m",
                "50",
                "--space",
                "error",
                "--no-discrete",
                "--t-end",
                "10",
            ])
            .arg("--out")
            .arg(dir.join(if quiet { "q" } else { "loud" }));
        if quiet {
            cmd.arg("--quiet");
        }
        cmd.output().unwrap()
    };
    let quiet = run(true);
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "");
    let loud = run(false);
    assert!(loud.status.success());
    let err = String::from_utf8_lossy(&loud.stderr);
    assert!(err.contains("warning: stiff problem"), "{err}");
}
