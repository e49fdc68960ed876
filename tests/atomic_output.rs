//! SPEC.md "Files written": files appear whole or not at all (write, then rename).
//!
//! A directory first holds the complete files of a small run. A longer run into the same
//! directory is then killed (SIGKILL, `Child::kill`) at several moments: after fixed delays,
//! and right after its first temporary file appears (that is, while it writes its files).
//! After every kill, each output file that exists must be complete: a CSV has its header, every
//! row with the header's column count and parsable numbers, a final newline and the row count of
//! one of the two runs; summary.json parses; an SVG ends with "</svg>".
//!
//! A killed process cannot remove its temporary file, so leftover `.NAME.tmpPID` files are
//! allowed after a kill; a run that completes must leave none of its own.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

/// The complete small run that the directory holds first.
const SMALL: [&str; 14] = [
    "gf",
    "--n",
    "6",
    "--d",
    "3",
    "--m",
    "20",
    "--t-end",
    "0.5",
    "--samples",
    "3",
    "--space",
    "both",
    "--quiet",
];
const SMALL_SAMPLES: usize = 3;
const SMALL_ITERATES: usize = 51; // t-end 0.5 / eta 0.01, both ends

/// The longer run that gets killed (about a second in release mode on one core).
const LONG: [&str; 18] = [
    "gf",
    "--n",
    "20",
    "--d",
    "5",
    "--m",
    "200",
    "--t-end",
    "10",
    "--samples",
    "1000",
    "--space",
    "both",
    "--eta",
    "0.001",
    "--quiet",
    "--seed",
    "7",
];
const LONG_SAMPLES: usize = 1000;
const LONG_ITERATES: usize = 10001; // t-end 10 / eta 0.001, both ends

/// SPEC.md's columns of each CSV (runs may add more after them).
const SPEC_COLUMNS: [(&str, &[&str]); 3] = [
    (
        "weight.csv",
        &[
            "t",
            "loss",
            "pseudo_loss",
            "lyapunov",
            "loss_bound",
            "lambda_min",
            "kernel_drift",
            "max_weight_drift",
            "pattern_change_frac",
        ],
    ),
    (
        "error.csv",
        &["t", "loss", "pseudo_loss", "lyapunov", "loss_bound"],
    ),
    ("discrete.csv", &["k", "t", "loss"]),
];

struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "ntkdyn-atomic_output-{}-{test}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn spawn(args: &[&str], out: &Path) -> Child {
    Command::new(BIN)
        .args(args)
        .arg("--out")
        .arg(out)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ntkdyn")
}

/// Run to completion (with a generous timeout); returns the exit code and the wall time.
fn run_to_end(args: &[&str], out: &Path) -> (Option<i32>, Duration, u32) {
    let started = Instant::now();
    let mut child = spawn(args, out);
    let pid = child.id();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return (status.code(), started.elapsed(), pid);
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ntkdyn {} did not finish within 60 s", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Temporary files (hidden, containing ".tmp") in `dir`, optionally only those of `pid`.
fn temporary_files(dir: &Path, pid: Option<u32>) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n.contains(".tmp"))
        .filter(|n| pid.is_none_or(|p| n.ends_with(&format!(".tmp{p}"))))
        .collect()
}

/// Every file of SPEC.md present in `dir` is complete; returns the names checked, with a short
/// description of each (row counts), or the list of problems.
fn check_complete(dir: &Path) -> Result<BTreeMap<String, String>, Vec<String>> {
    let mut seen = BTreeMap::new();
    let mut problems = Vec::new();
    let entries: Vec<String> = fs::read_dir(dir)
        .expect("read output dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    for name in entries {
        let path = dir.join(&name);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                problems.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let result = if name.ends_with(".csv") {
            check_csv(&name, &text)
        } else if name == "summary.json" {
            check_json(&text)
        } else if name.ends_with(".svg") {
            check_svg(&text)
        } else {
            Ok("not an output file".into())
        };
        match result {
            Ok(desc) => {
                seen.insert(name, desc);
            }
            Err(e) => problems.push(format!("{name} ({} bytes): {e}", bytes.len())),
        }
    }
    if problems.is_empty() {
        Ok(seen)
    } else {
        Err(problems)
    }
}

fn check_csv(name: &str, text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty".into());
    }
    if !text.ends_with('\n') {
        return Err("does not end with a newline (truncated?)".into());
    }
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    if let Some((_, spec)) = SPEC_COLUMNS.iter().find(|(n, _)| *n == name) {
        for col in *spec {
            if !header.contains(col) {
                return Err(format!("header {header:?} lacks {col}"));
            }
        }
    }
    let mut rows = 0usize;
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            return Err(format!(
                "line {}: {} cells where the header has {}",
                i + 2,
                cells.len(),
                header.len()
            ));
        }
        if let Some(bad) = cells.iter().find(|c| c.parse::<f64>().is_err()) {
            return Err(format!("line {}: {bad:?} is not a number", i + 2));
        }
        rows += 1;
    }
    // The row count is that of one of the two runs: a file cut at a row boundary is caught too.
    let allowed: &[usize] = match name {
        "discrete.csv" => &[SMALL_ITERATES, LONG_ITERATES],
        "weight.csv" | "error.csv" => &[SMALL_SAMPLES, LONG_SAMPLES],
        _ => &[],
    };
    if !allowed.is_empty() && !allowed.contains(&rows) {
        return Err(format!("{rows} rows, expected one of {allowed:?}"));
    }
    Ok(format!("{rows} rows"))
}

fn check_json(text: &str) -> Result<String, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    match v["config"]["samples"].as_u64() {
        Some(k) if k as usize == SMALL_SAMPLES || k as usize == LONG_SAMPLES => {
            Ok(format!("samples {k}"))
        }
        Some(k) => Err(format!("config.samples = {k} is neither run's")),
        None => Ok("no config.samples".into()),
    }
}

fn check_svg(text: &str) -> Result<String, String> {
    let t = text.trim();
    if !(t.starts_with("<svg") || t.starts_with("<?xml")) {
        return Err("does not start like an SVG".into());
    }
    if !t.ends_with("</svg>") {
        return Err("does not end with </svg> (truncated?)".into());
    }
    Ok(format!("{} bytes", text.len()))
}

/// When to kill the long run.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// After a fixed delay from the spawn.
    After(Duration),
    /// Once its first temporary file shows up, plus a delay: inside the write phase.
    WhileWriting(Duration),
}

/// Start the long run in `dir`, kill it as told; returns a description of what happened.
fn kill_run(dir: &Path, kill: Kill) -> String {
    let started = Instant::now();
    let mut child = spawn(&LONG, dir);
    let pid = child.id();
    let deadline = Duration::from_secs(30);
    let outcome = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break format!("finished on its own ({status}) before the kill");
        }
        let elapsed = started.elapsed();
        let fire = match kill {
            Kill::After(d) => elapsed >= d,
            Kill::WhileWriting(extra) => {
                if temporary_files(dir, Some(pid)).is_empty() {
                    false
                } else {
                    std::thread::sleep(extra);
                    true
                }
            }
        };
        if fire || elapsed > deadline {
            let _ = child.kill();
            let status = child.wait().expect("wait for killed ntkdyn");
            let left = temporary_files(dir, Some(pid));
            break format!(
                "killed at {:?} ({status}); its temporary files left: {left:?}",
                started.elapsed()
            );
        }
        match kill {
            Kill::After(_) => std::thread::sleep(Duration::from_millis(1)),
            Kill::WhileWriting(_) => std::thread::sleep(Duration::from_micros(100)),
        }
    };
    outcome
}

#[test]
fn killed_runs_leave_only_complete_files() {
    let started = Instant::now();
    let tmp = TempDir::new("killed");
    let dir = tmp.0.join("out");

    // 1. The directory holds the complete files of a previous small run.
    let (code, _, _) = run_to_end(&SMALL, &dir);
    assert_eq!(code, Some(0), "the small run failed");
    let before = check_complete(&dir).unwrap_or_else(|p| panic!("small run: {p:#?}"));
    for name in ["weight.csv", "error.csv", "discrete.csv", "summary.json"] {
        assert!(
            before.contains_key(name),
            "small run did not write {name}: {before:?}"
        );
    }
    assert!(
        before.keys().any(|n| n.ends_with(".svg")),
        "no figure: {before:?}"
    );

    // 2. Kill the long run at fixed delays and inside its write phase.
    let mut log = Vec::new();
    for kill in [
        Kill::After(Duration::from_millis(50)),
        Kill::After(Duration::from_millis(150)),
        Kill::After(Duration::from_millis(400)),
        Kill::WhileWriting(Duration::ZERO),
        Kill::WhileWriting(Duration::from_micros(500)),
        Kill::WhileWriting(Duration::from_millis(2)),
    ] {
        let what = kill_run(&dir, kill);
        match check_complete(&dir) {
            Ok(files) => log.push(format!("{kill:?}: {what}; files {files:?}")),
            Err(problems) => panic!(
                "after {kill:?} ({what}) the directory holds incomplete files:\n{}",
                problems.join("\n")
            ),
        }
    }
    eprintln!("{}", log.join("\n"));

    // 3. A run that completes leaves every file whole and none of its own temporary files.
    let (code, took, pid) = run_to_end(&LONG, &dir);
    assert_eq!(code, Some(0), "the long run failed");
    let after = check_complete(&dir).unwrap_or_else(|p| panic!("completed run: {p:#?}"));
    assert_eq!(
        temporary_files(&dir, Some(pid)),
        Vec::<String>::new(),
        "a completed run left its temporary files"
    );
    for name in ["weight.csv", "error.csv", "discrete.csv"] {
        let desc = &after[name];
        let rows = if name == "discrete.csv" {
            LONG_ITERATES
        } else {
            LONG_SAMPLES
        };
        assert_eq!(
            desc,
            &format!("{rows} rows"),
            "{name} is not the long run's"
        );
    }
    eprintln!(
        "long run took {took:?}; whole test {:?}; leftover temporary files of killed runs: {:?}",
        started.elapsed(),
        temporary_files(&dir, None)
    );
}
