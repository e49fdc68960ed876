//! SPEC.md "Bad input": every bad input ends with ONE line on stderr that starts with
//! "error:" and names the problem (file, line and value, or the option and its allowed range),
//! a non-zero exit status, and never a panic or a backtrace.
//!
//! The main test is table driven: each row of [`cases`] gives the command line, the files to
//! create first, the expected exit status and the fragments the error line must contain.
//! Rows for behaviour that is currently wrong in src/ live in [`known_bug_cases`] and are run
//! by regression tests, one per bug found (named bug_*), fixed in src/.
//!
//! Also here: a diverging run (the run stops at the first non-finite state, keeps the finite
//! rows, exits non-zero and says at which t), and negative friction (accepted with a warning).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ntkdyn::model::{Data, InitialNetwork, Model};
use ntkdyn::optimizer::twin::{self as discrete, Twin};

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");
/// No single case may take longer than this (they take milliseconds; a hang is a failure).
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Scaffolding: temp dirs, running the binary with a timeout.
// ---------------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, named after the process and the test, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ntkdyn-bad_input-{}-{}-{}",
            std::process::id(),
            test,
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// What a finished (or timed-out) run of the binary left.
struct Outcome {
    /// Exit code; None if killed by a signal or by the timeout.
    code: Option<i32>,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

/// Run the binary with `args`, stdout/stderr captured to files in `dir` (no pipe can fill up),
/// killed after [`CASE_TIMEOUT`].
fn run_bin(args: &[String], dir: &Path) -> Outcome {
    let out_path = dir.join(".stdout.txt");
    let err_path = dir.join(".stderr.txt");
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn ntkdyn");
    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait for ntkdyn") {
            Some(status) => break status,
            None if started.elapsed() > CASE_TIMEOUT => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed ntkdyn");
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    let read = |p: &Path| String::from_utf8_lossy(&fs::read(p).unwrap_or_default()).into_owned();
    Outcome {
        code: status.code(),
        timed_out,
        stdout: read(&out_path),
        stderr: read(&err_path),
    }
}

// ---------------------------------------------------------------------------------------------
// The table.
// ---------------------------------------------------------------------------------------------

/// One row of the table. In `args`, `files` and `expect`, `{dir}` stands for the case's own
/// temporary directory.
struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Files created in `{dir}` before the run: (name, bytes).
    files: Vec<(&'static str, Vec<u8>)>,
    /// Expected exit status (1: ntkdyn's errors, 2: command-line syntax errors from clap).
    status: i32,
    /// Substrings the error line must contain, compared case-insensitively.
    expect: Vec<String>,
}

/// The tiny base problem: `<cmd> --n 6 --d 3 --m 20 --t-end 0.5 --samples 3 --space error
/// --out {dir}/out`, with the options of `set` replacing (or, when absent, added to) the base.
/// An option given as `("--flag", "")` is a bare flag. A value of `None`-like "\u{0}" removes
/// the option from the base.
fn cmd(command: &str, set: &[(&str, &str)]) -> Vec<String> {
    let mut opts: Vec<(String, String)> = [
        ("--n", "6"),
        ("--d", "3"),
        ("--m", "20"),
        ("--t-end", "0.5"),
        ("--samples", "3"),
        ("--space", "error"),
        ("--out", "{dir}/out"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in set {
        match opts.iter_mut().find(|(ok, _)| ok == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => opts.push((k.to_string(), v.to_string())),
        }
    }
    let mut args = vec![command.to_string()];
    for (k, v) in opts {
        if v == "\u{0}" {
            continue;
        }
        args.push(k);
        if !v.is_empty() {
            args.push(v);
        }
    }
    args
}

fn gf(set: &[(&str, &str)]) -> Vec<String> {
    cmd("gf", set)
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn file(name: &'static str, text: &str) -> (&'static str, Vec<u8>) {
    (name, text.as_bytes().to_vec())
}

/// Three points on the unit sphere of R^3 with targets: a valid --data file.
const GOOD_DATA: &str = "x1,x2,x3,y\n1,0,0,1\n0,1,0,-1\n0,0,1,0.5\n";
/// A valid --init file for d = 3 (m = 2).
const GOOD_INIT: &str = "a,w1,w2,w3\n1,0.1,0.2,0.3\n-1,0.3,-0.2,0.1\n";

/// An option error: `gf` with `opt value`, status 1, the message names the option, the value
/// and `range` (a fragment of the allowed range).
fn opt_case(name: &'static str, command: &str, opt: &str, value: &str, range: &str) -> Case {
    Case {
        name,
        args: cmd(command, &[(opt, value)]),
        files: vec![],
        status: 1,
        expect: s(&[opt, value, range]),
    }
}

/// A --data (or --init) file error: the message names the path, `line N` and the fragments.
fn data_case(
    name: &'static str,
    option: &'static str,
    text: &str,
    line: Option<u64>,
    fragments: &[&str],
) -> Case {
    let fname: &'static str = if option == "--data" {
        "data.csv"
    } else {
        "init.csv"
    };
    let path = format!("{{dir}}/{fname}");
    let mut expect = vec![path.clone()];
    if let Some(l) = line {
        expect.push(format!("line {l}"));
    }
    expect.extend(fragments.iter().map(|f| f.to_string()));
    let mut files = vec![file(fname, text)];
    let mut set = vec![(option, path.as_str())];
    if option == "--init" {
        // Real data so that only the --init file can be wrong.
        files.push(file("data.csv", GOOD_DATA));
        set.push(("--data", "{dir}/data.csv"));
    }
    let args = gf(&set);
    Case {
        name,
        args,
        files,
        status: 1,
        expect,
    }
}

/// Every bad input of SPEC.md (and the brief) that is expected to be handled correctly.
fn cases() -> Vec<Case> {
    let mut c = vec![
        // ----- files: missing, empty, not a file, not UTF-8 -----
        Case {
            name: "data file missing",
            args: gf(&[("--data", "{dir}/nope.csv")]),
            files: vec![],
            status: 1,
            expect: s(&["{dir}/nope.csv"]),
        },
        Case {
            name: "init file missing",
            args: gf(&[("--init", "{dir}/nope.csv")]),
            files: vec![],
            status: 1,
            expect: s(&["{dir}/nope.csv"]),
        },
        data_case("data file empty", "--data", "", None, &[]),
        data_case(
            "data file blank lines only",
            "--data",
            "\n\n  \n",
            None,
            &[],
        ),
        data_case("data file header only", "--data", "x1,x2,x3,y\n", None, &[]),
        data_case("init file empty", "--init", "", None, &[]),
        data_case("init file header only", "--init", "a,w1,w2,w3\n", None, &[]),
        Case {
            name: "data path is a directory",
            args: gf(&[("--data", "{dir}")]),
            files: vec![],
            status: 1,
            expect: s(&["{dir}"]),
        },
        Case {
            name: "data file not UTF-8",
            args: gf(&[("--data", "{dir}/data.csv")]),
            files: vec![("data.csv", b"1,0,0,1\n\xff\xfe,0,1,0\n".to_vec())],
            status: 1,
            expect: s(&["{dir}/data.csv"]),
        },
        // ----- malformed or ragged CSV -----
        data_case(
            "data ragged row (short)",
            "--data",
            "x1,x2,x3,y\n1,0,0,1\n0,1,0\n0,0,1,0.5\n",
            Some(3),
            &["3 columns", "4"],
        ),
        data_case(
            "data ragged row (long), no header",
            "--data",
            "1,0,0,1\n0,1,0,1\n0,0,1,0.5,7\n",
            Some(3),
            &["5 columns", "4"],
        ),
        data_case(
            "data header with wrong column count",
            "--data",
            "x1,x2,y\n1,0,0,1\n0,1,0,1\n",
            Some(2),
            &["4 columns", "3"],
        ),
        data_case(
            "data non-numeric cell",
            "--data",
            "x1,x2,x3,y\n1,0,0,1\n0,1,abc,1\n",
            Some(3),
            &["abc", "column 3"],
        ),
        data_case(
            "data cell with a unit",
            "--data",
            "x1,x2,x3,y\n1,0,0,1\n0,1,0,2kg\n",
            Some(3),
            &["2kg"],
        ),
        data_case(
            "data malformed row after a leading comment and blank line",
            "--data",
            "# a comment\n\nx1,x2,x3,y\n1,0,0,1\n0,1,0,1;2\n",
            Some(5),
            &["1;2"],
        ),
        data_case(
            "data single column",
            "--data",
            "1\n2\n",
            Some(1),
            &["column"],
        ),
        // ----- NaN or infinite values -----
        data_case(
            "data NaN",
            "--data",
            "x1,x2,x3,y\n1,0,0,1\n0,1,0,nan\n",
            Some(3),
            &["nan", "column 4"],
        ),
        data_case(
            "data NaN spelled NaN",
            "--data",
            "1,0,0,1\nNaN,1,0,1\n",
            Some(2),
            &["nan", "column 1"],
        ),
        data_case(
            "data +inf",
            "--data",
            "x1,x2,x3,y\n1,0,0,1\n0,inf,0,1\n",
            Some(3),
            &["inf", "column 2"],
        ),
        data_case(
            "data -inf",
            "--data",
            "x1,x2,x3,y\n1,0,0,1\n0,1,0,-inf\n",
            Some(3),
            &["-inf"],
        ),
        data_case(
            "data NaN on first line (no header)",
            "--data",
            "nan,0,0,1\n0,1,0,1\n",
            Some(1),
            &["nan"],
        ),
        data_case(
            "init NaN weight",
            "--init",
            "1,0,0,0.5\n-1,0,nan,0\n",
            Some(2),
            &["nan", "column 3"],
        ),
        data_case(
            "init infinite weight",
            "--init",
            "a,w1,w2,w3\n1,0,0,0.5\n-1,0,0,-inf\n",
            Some(3),
            &["-inf"],
        ),
        // ----- --init: a_r must be +1 or -1; ragged; width -----
        data_case(
            "init a_r = 0.5",
            "--init",
            "a,w1,w2,w3\n1,0,0,0.5\n0.5,0,1,0\n",
            Some(3),
            &["a_r", "0.5"],
        ),
        data_case(
            "init a_r = 0",
            "--init",
            "1,0,0,0.5\n0,0,1,0\n",
            Some(2),
            &["a_r", "0"],
        ),
        data_case(
            "init a_r = 2 on the first row",
            "--init",
            "2,0,0,0.5\n-1,0,1,0\n",
            Some(1),
            &["a_r", "2"],
        ),
        data_case(
            "init a_r = -1.5",
            "--init",
            "1,0,0,0.5\n-1,0,1,0\n-1.5,1,1,1\n",
            Some(3),
            &["a_r", "-1.5"],
        ),
        data_case(
            "init ragged row",
            "--init",
            "1,0,0,0.5\n-1,0,1\n",
            Some(2),
            &["3 columns", "4"],
        ),
        data_case(
            "init single column",
            "--init",
            "1\n-1\n",
            Some(1),
            &["column"],
        ),
        // ----- dimensions that disagree -----
        Case {
            name: "init d = 2 but synthetic data d = 3",
            args: gf(&[("--init", "{dir}/init.csv")]),
            files: vec![file("init.csv", "1,0.1,0.2\n-1,0.3,0.4\n")],
            status: 1,
            expect: s(&["{dir}/init.csv", "2", "3", "d"]),
        },
        Case {
            name: "init d = 3 but --data d = 4",
            args: gf(&[("--data", "{dir}/data.csv"), ("--init", "{dir}/init.csv")]),
            files: vec![
                file("data.csv", "1,0,0,0,1\n0,1,0,0,-1\n"),
                file("init.csv", GOOD_INIT),
            ],
            status: 1,
            expect: s(&["{dir}/init.csv", "3", "4", "d"]),
        },
        // ----- n, d, m of 0 -----
        opt_case("n = 0", "gf", "--n", "0", "1"),
        opt_case("d = 0", "gf", "--d", "0", "1"),
        opt_case("m = 0", "gf", "--m", "0", "1"),
        opt_case("m = 0 (hbf)", "hbf", "--m", "0", "1"),
        // ----- t-end -----
        opt_case("t-end = 0", "gf", "--t-end", "0", "> 0"),
        opt_case("t-end < 0", "gf", "--t-end", "-1", "> 0"),
        opt_case("t-end NaN", "gf", "--t-end", "nan", "> 0"),
        opt_case("t-end inf", "gf", "--t-end", "inf", "finite"),
        // ----- samples -----
        opt_case("samples = 1", "gf", "--samples", "1", "2"),
        opt_case("samples = 0", "gf", "--samples", "0", "2"),
        // ----- tolerances -----
        opt_case("rtol = 0", "gf", "--rtol", "0", "(0, 1)"),
        opt_case("rtol < 0", "gf", "--rtol", "-0.5", "(0, 1)"),
        opt_case("rtol = 1", "gf", "--rtol", "1", "(0, 1)"),
        opt_case("rtol NaN", "gf", "--rtol", "nan", "(0, 1)"),
        // The value is echoed as Rust prints the parsed f64 (1e-15 -> 0.000000000000001), so
        // only the option and the bound are required here.
        Case {
            name: "rtol below rounding",
            args: gf(&[("--rtol", "1e-15")]),
            files: vec![],
            status: 1,
            expect: s(&["--rtol", "1e-14"]),
        },
        opt_case("atol = 0", "gf", "--atol", "0", "(0, 1)"),
        opt_case("atol = 2", "gf", "--atol", "2", "(0, 1)"),
        opt_case("atol inf", "gf", "--atol", "inf", "(0, 1)"),
        // ----- steps -----
        opt_case("step = 0", "gf", "--step", "0", "> 0"),
        opt_case("step < 0", "gf", "--step", "-0.1", "> 0"),
        opt_case("step inf", "gf", "--step", "inf", "> 0"),
        opt_case("step NaN", "gf", "--step", "nan", "> 0"),
        Case {
            name: "rk4 step > t-end",
            args: cmd("gf", &[("--step", "1"), ("--solver", "rk4")]),
            files: vec![],
            status: 1,
            expect: s(&["--step", "1", "0.5"]),
        },
        opt_case("max-step = 0", "gf", "--max-step", "0", "> 0"),
        opt_case("max-step < 0", "gf", "--max-step", "-1", "> 0"),
        opt_case("eta = 0", "gf", "--eta", "0", "> 0"),
        opt_case("eta < 0", "gf", "--eta", "-0.01", "> 0"),
        opt_case("eta NaN", "gf", "--eta", "nan", "> 0"),
        opt_case("eta inf", "gf", "--eta", "inf", "> 0"),
        opt_case("eta = 0 (nag)", "nag", "--eta", "0", "> 0"),
        // ----- gamma, alpha, lambda0, friction -----
        opt_case("gamma = 0", "nag", "--gamma", "0", "> 0"),
        opt_case("gamma < 0", "nag", "--gamma", "-1", "> 0"),
        opt_case("gamma NaN", "nag", "--gamma", "nan", "> 0"),
        opt_case("alpha < 2", "nag", "--alpha", "1.9", "[2, 2]"),
        opt_case(
            "alpha > 2 gamma/3 at gamma 3",
            "nag",
            "--alpha",
            "2.5",
            "[2, 2]",
        ),
        opt_case("alpha NaN", "nag", "--alpha", "nan", "[2,"),
        Case {
            name: "alpha > 2 gamma/3 at gamma 6",
            args: cmd("nag", &[("--gamma", "6"), ("--alpha", "4.5")]),
            files: vec![],
            status: 1,
            expect: s(&["--alpha", "4.5", "[2, 4]"]),
        },
        opt_case("lambda0 = 0", "gf", "--lambda0", "0", "> 0"),
        opt_case("lambda0 < 0", "gf", "--lambda0", "-2", "> 0"),
        opt_case("friction NaN", "hbf", "--friction", "nan", "finite"),
        opt_case("friction inf", "hbf", "--friction", "inf", "finite"),
        // ----- solver/space combination -----
        Case {
            name: "exact solver in weight space",
            args: gf(&[("--solver", "exact"), ("--space", "weight")]),
            files: vec![],
            status: 1,
            expect: s(&["--solver", "exact", "error"]),
        },
        // ----- output path -----
        Case {
            name: "--out is an existing regular file",
            args: gf(&[("--out", "{dir}/taken")]),
            files: vec![file("taken", "not a directory\n")],
            status: 1,
            expect: s(&["{dir}/taken"]),
        },
        Case {
            name: "--out is below a regular file",
            args: gf(&[("--out", "{dir}/taken/sub")]),
            files: vec![file("taken", "not a directory\n")],
            status: 1,
            expect: s(&["{dir}/taken/sub"]),
        },
        // ----- compare and plot share the rules -----
        opt_case("compare rtol = 0", "compare", "--rtol", "0", "(0, 1)"),
        Case {
            name: "plot of a directory without a run",
            args: s(&["plot", "{dir}"]),
            files: vec![],
            status: 1,
            expect: s(&["{dir}"]),
        },
        Case {
            name: "plot of a run with a ragged discrete.csv",
            args: s(&["plot", "{dir}"]),
            // summary.json is read first in the current code; a ragged CSV is named either way.
            files: vec![file("discrete.csv", "k,t,loss\n0,0,1\n1,0.1\n")],
            status: 1,
            expect: s(&["{dir}"]),
        },
        // ----- command-line syntax (clap): one line, status 2 -----
        Case {
            name: "non-numeric n",
            args: gf(&[("--n", "abc")]),
            files: vec![],
            status: 2,
            expect: s(&["--n", "abc"]),
        },
        Case {
            name: "non-numeric t-end",
            args: gf(&[("--t-end", "abc")]),
            files: vec![],
            status: 2,
            expect: s(&["--t-end", "abc"]),
        },
        Case {
            name: "non-numeric rtol",
            args: gf(&[("--rtol", "1e-3x")]),
            files: vec![],
            status: 2,
            expect: s(&["--rtol", "1e-3x"]),
        },
        Case {
            name: "fractional samples",
            args: gf(&[("--samples", "1.5")]),
            files: vec![],
            status: 2,
            expect: s(&["--samples", "1.5"]),
        },
        Case {
            name: "unknown space",
            args: gf(&[("--space", "foo")]),
            files: vec![],
            status: 2,
            expect: s(&["--space", "foo"]),
        },
        Case {
            name: "unknown solver",
            args: gf(&[("--solver", "euler")]),
            files: vec![],
            status: 2,
            expect: s(&["--solver", "euler"]),
        },
        Case {
            name: "missing option value",
            args: s(&["gf", "--eta"]),
            files: vec![],
            status: 2,
            expect: s(&["--eta"]),
        },
        Case {
            name: "unknown option",
            args: gf(&[("--bogus", "")]),
            files: vec![],
            status: 2,
            expect: s(&["--bogus"]),
        },
        Case {
            name: "unknown subcommand",
            args: s(&["descend", "--n", "3"]),
            files: vec![],
            status: 2,
            expect: s(&["descend"]),
        },
    ];
    // NaN/inf in every column position of --data, header or not.
    for (name, text, line) in [
        ("data inf in x_1 (header)", "x1,x2,x3,y\ninf,0,0,1\n", 2),
        (
            "data NaN in y (no header)",
            "1,0,0,1\n0,1,0,1\n0,0,1,NaN\n",
            3,
        ),
    ] {
        c.push(data_case(name, "--data", text, Some(line), &["column"]));
    }
    c
}

/// Rows that fail today because of bugs in src/; each is run by its own ignored test below.
fn known_bug_cases() -> Vec<(&'static str, Case)> {
    vec![
        (
            "first_row_typo",
            // A typo in the first data row of a header-less file: the row does not parse, so it
            // is silently taken as a header and dropped (n = 2 instead of 3, exit 0).
            data_case(
                "data non-numeric cell on the first row (no header)",
                "--data",
                "1,0,abc,1\n0,1,0,-1\n0,0,1,0.5\n",
                Some(1),
                &["abc"],
            ),
        ),
        (
            "blank_line_shifts_line_numbers",
            // A blank line between data rows is not counted: the bad row on line 4 is
            // reported as line 3 (csv record positions skip blank lines).
            data_case(
                "data bad row after a blank line",
                "--data",
                "1,0,0,1\n0,1,0,1\n\n0,0,1,x\n",
                Some(4),
                &["'x'"],
            ),
        ),
        (
            "comment_line_shifts_line_numbers",
            // Likewise a '#' comment line between data rows.
            data_case(
                "data bad row after a comment line",
                "--data",
                "1,0,0,1\n# second point\n0,1,0,x\n",
                Some(3),
                &["'x'"],
            ),
        ),
        (
            "crlf_line_numbers",
            // CRLF line endings: every row after the first is reported one line too early
            // (upstream BurntSushi/rust-csv#395: Position::line with CRLF).
            data_case(
                "data bad row in a CRLF file",
                "--data",
                "x1,x2,x3,y\r\n1,0,0,1\r\n0,1,0,1\r\n0,0,1,x\r\n",
                Some(4),
                &["'x'"],
            ),
        ),
        (
            "quoted_newline_multi_line_error",
            // A quoted cell with a newline is echoed verbatim: the error is two lines.
            data_case(
                "data quoted cell with a newline",
                "--data",
                "1,0,0,1\n\"a\nb\",0,0,1\n",
                Some(2),
                &["column 1"],
            ),
        ),
        (
            "huge_exponent_value",
            // 1e400 overflows to inf while parsing; the message says "inf is not a finite number"
            // instead of naming the value written in the file.
            data_case(
                "data huge exponent",
                "--data",
                "x1,x2,x3,y\n1,0,0,1\n0,1,0,1e400\n",
                Some(3),
                &["1e400"],
            ),
        ),
        (
            "samples_usize_max",
            // --samples 18446744073709551615 passes validation; output_times allocates it:
            // "capacity overflow" panic, exit 101, backtrace.
            opt_case(
                "samples = usize::MAX",
                "gf",
                "--samples",
                "18446744073709551615",
                "--samples",
            ),
        ),
        (
            "negative_usize_option",
            // `--m -3`: clap says "unexpected argument '-3' found" without naming --m.
            Case {
                name: "negative m",
                args: gf(&[("--m", "-3")]),
                files: vec![],
                status: 2,
                expect: s(&["--m", "-3"]),
            },
        ),
        (
            "negative_samples",
            Case {
                name: "negative samples",
                args: gf(&[("--samples", "-1")]),
                files: vec![],
                status: 2,
                expect: s(&["--samples", "-1"]),
            },
        ),
        (
            "no_subcommand",
            // `ntkdyn` alone prints the crate description (first line of clap's help) on
            // stderr, not an "error:" line.
            Case {
                name: "no subcommand",
                args: vec![],
                files: vec![],
                status: 2,
                expect: s(&["subcommand"]),
            },
        ),
    ]
}

/// Output files a run may write (SPEC.md "Files written", and test_gap.svg).
use ntkdyn::output::files::OUTPUT_FILES;

/// Run one case; Err describes every way it deviates from the contract.
fn check(case: &Case, test: &str) -> Result<(), String> {
    let tmp = TempDir::new(test);
    let dir = tmp.path().display().to_string();
    let fill = |s: &str| s.replace("{dir}", &dir);
    for (name, bytes) in &case.files {
        fs::write(tmp.path().join(name), bytes).expect("write case file");
    }
    let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
    let out = run_bin(&args, tmp.path());
    let mut problems = Vec::new();
    let shown = format!("ntkdyn {}", args.join(" "));
    if out.timed_out {
        problems.push(format!("did not finish within {CASE_TIMEOUT:?}"));
    }
    if out.code != Some(case.status) {
        problems.push(format!(
            "exit status {:?}, expected {}",
            out.code, case.status
        ));
    }
    let err = out.stderr.trim();
    let lines: Vec<&str> = err.lines().collect();
    if err.is_empty() {
        problems.push("stderr is empty".into());
    } else if lines.len() != 1 {
        problems.push(format!("stderr has {} lines, expected 1", lines.len()));
    }
    if !err.starts_with("error:") {
        problems.push("stderr does not start with \"error:\"".into());
    }
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "stack backtrace",
        "capacity overflow",
    ] {
        if err.contains(bad) {
            problems.push(format!("stderr contains {bad:?}"));
        }
    }
    let lower = err.to_lowercase();
    for fragment in &case.expect {
        let f = fill(fragment);
        if !lower.contains(&f.to_lowercase()) {
            problems.push(format!("error line lacks {f:?}"));
        }
    }
    // An input error must not leave output behind.
    let out_dir = tmp.path().join("out");
    for name in OUTPUT_FILES {
        if out_dir.join(name).exists() {
            problems.push(format!("wrote {name} although the input was refused"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "[{}] {shown}\n    {}\n    stderr: {:?}\n    stdout (start): {:?}",
            case.name,
            problems.join("; "),
            out.stderr,
            out.stdout.chars().take(200).collect::<String>()
        ))
    }
}

#[test]
fn every_bad_input_gives_one_error_line_and_a_nonzero_status() {
    let cases = cases();
    assert!(cases.len() > 60, "the table lost rows");
    let mut names = std::collections::HashSet::new();
    for c in &cases {
        assert!(names.insert(c.name), "duplicate case name {}", c.name);
        assert_ne!(c.status, 0, "case {} expects success", c.name);
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c, "table").err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} bad-input cases break the contract:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn known_bug(key: &str) {
    let (_, case) = known_bug_cases()
        .into_iter()
        .find(|(k, _)| *k == key)
        .expect("known bug case");
    if let Err(e) = check(&case, key) {
        panic!("{e}");
    }
}

#[test]
fn bug_first_row_typo_is_silently_dropped() {
    known_bug("first_row_typo");
}

#[test]
fn bug_blank_line_shifts_line_numbers() {
    known_bug("blank_line_shifts_line_numbers");
}

#[test]
fn bug_comment_line_shifts_line_numbers() {
    known_bug("comment_line_shifts_line_numbers");
}

#[test]
fn bug_crlf_line_numbers() {
    known_bug("crlf_line_numbers");
}

#[test]
fn bug_quoted_newline_gives_a_multi_line_error() {
    known_bug("quoted_newline_multi_line_error");
}

#[test]
fn bug_huge_exponent_is_not_named() {
    known_bug("huge_exponent_value");
}

#[test]
fn bug_samples_usize_max_panics() {
    known_bug("samples_usize_max");
}

#[test]
fn bug_negative_m_does_not_name_the_option() {
    known_bug("negative_usize_option");
}

#[test]
fn bug_negative_samples_does_not_name_the_option() {
    known_bug("negative_samples");
}

#[test]
fn bug_no_subcommand_is_not_an_error_line() {
    known_bug("no_subcommand");
}

/// A short run must not be refused because of the rk4-only --step default (0.01) when the
/// solver is dopri5 and --step was never given.
#[test]
fn bug_short_t_end_refused_because_of_default_step() {
    let tmp = TempDir::new("short_t_end");
    let args = gf(&[("--t-end", "0.005")])
        .into_iter()
        .map(|a| a.replace("{dir}", &tmp.path().display().to_string()))
        .collect::<Vec<_>>();
    let out = run_bin(&args, tmp.path());
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
}

// ---------------------------------------------------------------------------------------------
// Good inputs that must NOT be refused (guards against an over-eager table).
// ---------------------------------------------------------------------------------------------

#[test]
fn the_base_problem_and_valid_files_run() {
    let tmp = TempDir::new("valid");
    let dir = tmp.path().display().to_string();
    fs::write(tmp.path().join("data.csv"), GOOD_DATA).unwrap();
    fs::write(tmp.path().join("init.csv"), GOOD_INIT).unwrap();
    for args in [
        gf(&[]),
        gf(&[("--data", "{dir}/data.csv"), ("--init", "{dir}/init.csv")]),
        cmd("nag", &[("--gamma", "6"), ("--alpha", "4")]),
        gf(&[("--rtol", "1e-14"), ("--atol", "1e-300")]),
        gf(&[("--solver", "rk4"), ("--step", "0.5")]),
    ] {
        let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", &dir)).collect();
        let out = run_bin(&args, tmp.path());
        assert_eq!(
            out.code,
            Some(0),
            "ntkdyn {} failed: {}",
            args.join(" "),
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
        assert!(tmp.path().join("out/error.csv").exists());
    }
}

// ---------------------------------------------------------------------------------------------
// A diverging run.
// ---------------------------------------------------------------------------------------------

/// Parse a CSV written by ntkdyn: header, rows of numbers.
fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.ends_with('\n'),
        "{} does not end with a newline",
        path.display()
    );
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| {
            let row: Vec<f64> = l
                .split(',')
                .map(|c| {
                    c.parse::<f64>()
                        .unwrap_or_else(|_| panic!("bad cell {c:?} in {l:?}"))
                })
                .collect();
            assert_eq!(row.len(), header.len(), "ragged row {l:?}");
            row
        })
        .collect();
    (header, rows)
}

/// GD with eta = 1e6 on a problem with lambda_max(H(0)) ~ 1 multiplies the loss by ~1e12 per
/// step: it overflows after a few dozen iterates, long before t-end = 1e8 (100 iterates).
#[test]
fn diverging_gd_stops_keeps_the_finite_rows_and_says_when() {
    let tmp = TempDir::new("diverge");
    let out_dir = tmp.path().join("out");
    let args = gf(&[
        ("--eta", "1e6"),
        ("--t-end", "1e8"),
        ("--solver", "exact"),
        ("--out", &out_dir.display().to_string()),
    ]);
    let out = run_bin(&args, tmp.path());
    assert!(!out.timed_out, "diverging run hung");
    assert_eq!(out.code, Some(1), "stderr: {}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // Warnings may precede it, but there is exactly one error line, and it names the time.
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(errors.len(), 1, "stderr: {}", out.stderr);
    for l in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            l.starts_with("error:") || l.starts_with("warning:"),
            "unexpected stderr line {l:?}"
        );
    }
    let error = errors[0];
    assert!(
        error.contains("t = "),
        "error line does not say at which t: {error}"
    );

    let (header, rows) = read_table(&out_dir.join("discrete.csv"));
    // SPEC.md: header k,t,loss (extra columns after them are tolerated here).
    assert_eq!(header[..3], ["k", "t", "loss"]);
    assert!(rows.len() >= 2, "no finite iterates kept");
    assert!(
        rows.len() < 101,
        "all 101 iterates written although GD diverged"
    );
    for (k, r) in rows.iter().enumerate() {
        assert!(r.iter().all(|v| v.is_finite()), "non-finite row {r:?}");
        assert_eq!(r[0], k as f64, "iterates not consecutive");
        assert_eq!(r[1], k as f64 * 1e6, "t != k eta");
    }
    let last_t = rows.last().unwrap()[1];
    assert!(last_t < 1e8, "last t {last_t} not before t-end");
    // The error line names the time of the first non-finite iterate, the one after the last row.
    let t_stop = last_t + 1e6;
    let named: Vec<f64> = error
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-' || c == '+'))
        .filter_map(|w| w.parse::<f64>().ok())
        .collect();
    assert!(
        named.contains(&t_stop),
        "error line does not name t = {t_stop}: {error}"
    );
    // The loss grew before it overflowed (this is divergence, not a bad first row).
    assert!(rows.last().unwrap()[2] > 1e100 * rows[0][2]);

    // summary.json is written and records where it stopped.
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(out_dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["discrete"]["diverged_at"].as_f64(), Some(t_stop));
    assert_eq!(
        summary["discrete"]["iterates"].as_u64(),
        Some(rows.len() as u64)
    );
    // The (stable) error-space flow is complete all the same.
    let (_, err_rows) = read_table(&out_dir.join("error.csv"));
    assert_eq!(err_rows.len(), 3);
}

/// The library's discrete::run: huge steps diverge; the iterates kept are finite, consecutive,
/// and diverged_at is the time of the iterate after the last one kept, before t_end.
#[test]
fn library_discrete_run_stops_at_the_first_non_finite_iterate() {
    let data = Data::synthetic(6, 3, 1);
    let net = InitialNetwork::init(20, 3, 1);
    let model = Model::new(data, net.a.clone());
    for (twin, eta, t_end) in [
        (Twin::gd(), 1e6, 1e8),
        (Twin::gd(), 1e3, 1e6),
        (Twin::heavy_ball(0.9), 1e6, 1e5),
        (Twin::heavy_ball(1.5), 1e4, 1e5),
        (Twin::nesterov(3.0), 1e6, 1e5),
    ] {
        let run = discrete::run(&model, &net.w, twin, eta, t_end);
        let what = format!("{twin:?} eta {eta}");
        let t_stop = run
            .diverged_at
            .unwrap_or_else(|| panic!("{what}: did not report divergence"));
        assert!(
            t_stop.is_finite() && t_stop <= t_end,
            "{what}: diverged_at {t_stop}"
        );
        assert!(!run.iterates.is_empty(), "{what}: no iterate kept");
        for (k, it) in run.iterates.iter().enumerate() {
            assert_eq!(it.k, k, "{what}: iterates not consecutive");
            assert!(it.t.is_finite() && it.loss.is_finite(), "{what}: {it:?}");
            assert_eq!(it.t, twin.time(k, eta));
        }
        let last = run.iterates.last().unwrap();
        assert!(last.t < t_end, "{what}: last t {} not before t_end", last.t);
        assert_eq!(t_stop, twin.time(last.k + 1, eta), "{what}: diverged_at");
    }
    // A stable step does not report divergence and reaches t_end.
    let run = discrete::run(&model, &net.w, Twin::gd(), 0.01, 1.0);
    assert_eq!(run.diverged_at, None);
    assert_eq!(run.iterates.len(), 101);
}

/// Negative friction is allowed (an energy-gaining flow), with a warning on stderr and exit 0.
#[test]
fn negative_friction_is_accepted_with_a_warning() {
    let tmp = TempDir::new("neg_friction");
    let dir = tmp.path().display().to_string();
    let args: Vec<String> = cmd("hbf", &[("--friction", "-0.5")])
        .iter()
        .map(|a| a.replace("{dir}", &dir))
        .collect();
    let out = run_bin(&args, tmp.path());
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let warning = out
        .stderr
        .lines()
        .find(|l| l.starts_with("warning:") && l.contains("friction"))
        .unwrap_or_else(|| panic!("no friction warning on stderr: {:?}", out.stderr));
    assert!(
        warning.contains("-0.5"),
        "warning does not name the value: {warning}"
    );
    assert!(!out.stderr.contains("error:"), "{}", out.stderr);
    assert!(tmp.path().join("out/error.csv").exists());
    assert!(tmp.path().join("out/summary.json").exists());
    // --quiet silences the warning but keeps the run.
    let mut quiet = args.clone();
    quiet.push("--quiet".into());
    let out = run_bin(&quiet, tmp.path());
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
}
