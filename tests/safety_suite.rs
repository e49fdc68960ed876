//! Issue 14's table of failure classes, through the binary: each row is one class (bad file,
//! bad option, bad config, output folder, interruption, concurrent run, merge, extreme
//! values, memory) with its command line, exit status, a fragment of the one error line, and
//! the promise that the user's files are untouched and no run's output appears.
//!
//! Adding a row is one line in [`rows`]: `row(name, args, status, fragment)` with `{dir}` for
//! the row's own folder, which holds the user's files of [`USER_FILES`] (and `out/notes.txt`)
//! before the run; `.with(...)` adds a file, an environment variable or a held lock.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ntkdyn::outdir::{Claim, CRASH_ENV};
use ntkdyn::output::files::OUTPUT_FILES;

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

/// The user's files in every row's folder, with their bytes.
const USER_FILES: [(&str, &str); 4] = [
    ("data.csv", "x1,x2,x3,y\n1,0,0,1\n0,1,0,-1\n0,0,1,0.5\n"),
    ("bad.csv", "x1,y\n1,abc\n"),
    ("bad.toml", "quiet = \"yes\"\n"),
    ("out/notes.txt", "the user's notes\n"),
];

/// A tiny run into `{dir}/out` (`{tiny}` in a row; a row that sets one of these options
/// writes its options out instead: clap refuses an option given twice).
const TINY: &str = "--n 6 --d 3 --m 20 --t-end 0.5 --samples 3 --space error --out {dir}/out";

/// One row: the command line, what the run must end with, and what it finds first.
struct Row {
    name: &'static str,
    args: String,
    /// The exit status; None: killed by a signal (the interruption rows).
    status: Option<i32>,
    /// A fragment of the one error line ("" for a killed run, which prints none).
    fragment: String,
    /// Extra files (name, bytes) in the row's folder; they too must stay untouched.
    files: Vec<(&'static str, Vec<u8>)>,
    env: Vec<(&'static str, &'static str)>,
    /// A folder (under {dir}) that another run holds while this row runs.
    held: Option<&'static str>,
}

fn row(name: &'static str, args: &str, status: Option<i32>, fragment: &str) -> Row {
    Row {
        name,
        args: args.replace("{tiny}", TINY),
        status,
        fragment: fragment.into(),
        files: Vec::new(),
        env: Vec::new(),
        held: None,
    }
}

impl Row {
    fn file(mut self, name: &'static str, text: &str) -> Row {
        self.files.push((name, text.as_bytes().to_vec()));
        self
    }
    fn env(mut self, key: &'static str, value: &'static str) -> Row {
        self.env.push((key, value));
        self
    }
    fn held(mut self, folder: &'static str) -> Row {
        self.held = Some(folder);
        self
    }
}

/// The table: one line per case (the `{tiny}` run is [`TINY`]).
fn rows() -> Vec<Row> {
    vec![
        row(
            "bad file",
            "gf {tiny} --data {dir}/bad.csv",
            Some(1),
            "{dir}/bad.csv: line 2: column 2: 'abc' is not a number",
        ),
        row(
            "bad option",
            "gf --n 6 --d 3 --m 20 --samples 3 --t-end -1 --out {dir}/out",
            Some(1),
            "--t-end: -1 must be a finite number > 0",
        ),
        row(
            "bad config",
            "gf {tiny} --config {dir}/bad.toml",
            Some(2),
            "error:",
        ),
        row(
            "output folder: a foreign file",
            "gf {tiny}",
            Some(1),
            "{dir}/out/error.csv was not written by ntkdyn; choose another --out or pass --force",
        )
        .file("out/error.csv", "mine\n"),
        row(
            "output folder: an input among the outputs",
            "gf {tiny} --data {dir}/out/error.csv",
            Some(1),
            "is the input --data",
        )
        .file("out/error.csv", "x1,x2,x3,y\n1,0,0,1\n0,1,0,-1\n"),
        row(
            "output folder: a file as --out",
            "gf --n 6 --d 3 --m 20 --t-end 0.5 --samples 3 --out {dir}/data.csv",
            Some(1),
            "--out {dir}/data.csv: exists and is not a directory",
        ),
        row(
            "interruption: killed with every file staged",
            "gf {tiny}",
            None,
            "",
        )
        .env(CRASH_ENV, "staged"),
        row(
            "interruption: killed after the first file staged",
            "gf {tiny}",
            None,
            "",
        )
        .env(CRASH_ENV, "staging"),
        row(
            "concurrent run",
            "gf {tiny}",
            Some(1),
            "{dir}/out is in use by another ntkdyn run (pid {pid})",
        )
        .held("out"),
        row(
            "merge: no shards",
            "sweep --merge --out {dir}/out",
            Some(1),
            "no sweep-shard-*.csv files to merge",
        ),
        row(
            "merge: run options",
            "sweep --merge --widths 10 --out {dir}/out",
            Some(2),
            "reads the shards' own configuration; drop --widths",
        ),
        row(
            "extreme values: a zero-pixel figure",
            "plot {dir}/out --width-px 0",
            Some(1),
            "--width-px: a width of 0 pixels is outside 160..=16384",
        ),
        row(
            "memory",
            "gf --n 100000 --d 10 --m 100000 --out {dir}/out",
            Some(1),
            "needs about 880 GB of memory (at most 16 GB)",
        ),
    ]
}

fn scratch(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "ntkdyn-safety-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every file under `dir` (relative name -> bytes), ntkdyn's hidden bookkeeping left out.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // The lock, journal and staging of a killed run: the next claim removes them
            // (tests/output_dir.rs checks that).
            if name.starts_with('.') && name.contains(".ntkdyn") {
                continue;
            }
            let rel = format!("{prefix}{name}");
            if e.path().is_dir() {
                walk(&e.path(), &format!("{rel}/"), out);
            } else {
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out);
    out
}

/// Run a row; Err says how it broke its promise.
fn check(r: &Row) -> Result<(), String> {
    let dir = scratch("row");
    let shown = dir.display().to_string();
    let fill = |s: &str| {
        s.replace("{dir}", &shown)
            .replace("{pid}", &std::process::id().to_string())
    };
    for (name, text) in USER_FILES
        .iter()
        .map(|(n, t)| (*n, t.as_bytes().to_vec()))
        .chain(r.files.iter().cloned())
    {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    let before = tree(&dir);
    let _held = r
        .held
        .map(|f| Claim::replace(&dir.join(f), &["held.csv"], &[], false).expect("hold"));
    let mut cmd = Command::new(BIN);
    cmd.args(fill(&r.args).split_whitespace())
        .env_remove(CRASH_ENV)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null());
    for (k, v) in &r.env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut problems = Vec::new();
    if out.status.code() != r.status {
        problems.push(format!(
            "exit status {:?}, expected {:?}",
            out.status.code(),
            r.status
        ));
    }
    let lines: Vec<&str> = err.lines().collect();
    if r.status.is_some() {
        if lines.len() != 1 || !lines[0].starts_with("error: ") {
            problems.push("stderr is not one line starting with 'error: '".into());
        }
        if !err.contains(&fill(&r.fragment)) {
            problems.push(format!("the error line lacks {:?}", fill(&r.fragment)));
        }
    }
    if err.contains("panicked") {
        problems.push("a panic".into());
    }
    let after = tree(&dir);
    if after != before {
        let changed: Vec<&String> = before
            .keys()
            .chain(after.keys())
            .filter(|k| before.get(*k) != after.get(*k))
            .collect();
        problems.push(format!("files changed, appeared or went: {changed:?}"));
    }
    let written: Vec<&str> = OUTPUT_FILES
        .into_iter()
        .filter(|n| !before.contains_key(&format!("out/{n}")) && dir.join("out").join(n).exists())
        .collect();
    if !written.is_empty() {
        problems.push(format!("wrote {written:?}"));
    }
    let _ = fs::remove_dir_all(&dir);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "[{}] ntkdyn {}: {}\n    stderr: {err:?}",
            r.name,
            fill(&r.args),
            problems.join("; ")
        ))
    }
}

#[test]
fn every_failure_class_ends_with_its_status_and_one_line_and_leaves_the_users_files_untouched() {
    let rows = rows();
    let mut names = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(names.insert(r.name), "duplicate row {}", r.name);
    }
    let failures: Vec<String> = rows.iter().filter_map(|r| check(r).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows break the promise:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn a_run_whose_stderr_is_full_exits_with_its_status_not_a_panic() {
    // Issue 14 item 13: `2>/dev/full` exited 101.
    let Ok(full) = fs::OpenOptions::new().write(true).open("/dev/full") else {
        return; // not a Linux machine
    };
    let dir = scratch("full");
    let args = |extra: &str| -> Vec<String> {
        format!(
            "gf {} {extra}",
            TINY.replace("{dir}", &dir.display().to_string())
        )
        .split_whitespace()
        .map(String::from)
        .collect()
    };
    let status = |args: Vec<String>| {
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::null())
            .stderr(full.try_clone().unwrap())
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(status(args("")), Some(0), "a good run");
    assert_eq!(status(args("--rtol -1")), Some(1), "a refused run");
    assert_eq!(
        status(args("--no-such-option")),
        Some(2),
        "a bad command line"
    );
    let help = Command::new(BIN)
        .arg("--help")
        .stdout(full.try_clone().unwrap())
        .status()
        .unwrap();
    assert_eq!(help.code(), Some(1), "--help into a full stdout");
    let _ = fs::remove_dir_all(&dir);
}
