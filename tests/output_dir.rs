//! Output directories (issue 14, items 1 to 5): ownership and whole runs, through
//! `ntkdyn::outdir`. Every test looks at real files: their names, bytes and manifests.
//!
//! The crash tests run a claim and a commit in a child process (this test binary again, running
//! the ignored helper `child_claims_and_commits`) that aborts at a chosen point of the switch
//! (`NTKDYN_TEST_CRASH_AT`), then look at the directory.

mod common;

use common::TempDir;
use ntkdyn::outdir::{
    retry_while_busy, Claim, Manifest, OutDirError, CRASH_ENV, CRASH_POINTS, LOCK, MANIFEST,
};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

type Files = BTreeMap<String, String>;

fn files(list: &[(&str, &str)]) -> Files {
    list.iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect()
}

/// Claim `dir` for `names`, put `contents`, commit.
fn run(dir: &Path, names: &[&str], contents: &Files, inputs: &[(&str, &Path)], force: bool) {
    let mut claim = Claim::replace(dir, names, inputs, force).expect("claim");
    for (n, c) in contents {
        claim.put(n, c.as_bytes()).expect("put");
    }
    claim.commit().expect("commit");
}

/// Every regular file under `dir` (relative name -> text), but the manifests and hidden
/// bookkeeping (names starting with '.').
fn outputs(dir: &Path) -> Files {
    fn walk(dir: &Path, prefix: &str, out: &mut Files) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().into_string().expect("UTF-8 test names");
            if name.starts_with('.') || name == MANIFEST {
                continue;
            }
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &rel, out);
            } else {
                out.insert(rel, fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = Files::new();
    walk(dir, "", &mut out);
    out
}

/// Hidden entries ntkdyn might leave (anything starting with '.'), anywhere under `dir`, and
/// siblings of `dir` in its parent that start with `.NAME.`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                out.push(entry.path());
            } else if entry.path().is_dir() {
                walk(&entry.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    let prefix = format!(".{}.", dir.file_name().unwrap().to_string_lossy());
    for entry in fs::read_dir(dir.parent().unwrap()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            out.push(entry.path());
        }
    }
    out
}

fn manifest_names(dir: &Path) -> Vec<String> {
    let m = Manifest::read(&dir.join(MANIFEST)).expect("a manifest of ntkdyn");
    m.files.into_iter().map(|e| e.name).collect()
}

const RUN_NAMES: [&str; 8] = [
    "weight.csv",
    "error.csv",
    "discrete.csv",
    "summary.json",
    "loss.svg",
    "lyapunov.svg",
    "kernel.svg",
    "test_gap.svg",
];

// ---------------------------------------------------------------------------------------------
// Ownership (item 1).

#[test]
fn a_foreign_weight_csv_stops_the_run_before_computing_and_is_untouched() {
    let tmp = TempDir::new("foreign");
    let dir = tmp.join("out");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("weight.csv"), "my own weights\n").unwrap();
    let err = Claim::replace(&dir, &RUN_NAMES, &[], false).expect_err("a foreign file stops it");
    assert!(matches!(err, OutDirError::Foreign { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/weight.csv was not written by ntkdyn; choose another --out or pass --force",
            dir.display()
        )
    );
    // Untouched, and nothing else left behind (the lock file went with the claim).
    assert_eq!(outputs(&dir), files(&[("weight.csv", "my own weights\n")]));
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
    assert!(!dir.join(MANIFEST).exists());
}

#[test]
fn force_replaces_a_foreign_file_and_records_it() {
    let tmp = TempDir::new("force");
    let dir = tmp.join("out");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("weight.csv"), "my own weights\n").unwrap();
    fs::write(dir.join("kernel.svg"), "my own figure").unwrap();
    let new = files(&[("weight.csv", "t,loss\n0,1\n"), ("summary.json", "{}")]);
    run(&dir, &RUN_NAMES, &new, &[], true);
    // Replaced where the run wrote; a foreign file the run did not write stays (force
    // replaces, it never deletes).
    let mut expected = new.clone();
    expected.insert("kernel.svg".into(), "my own figure".into());
    assert_eq!(outputs(&dir), expected);
    assert_eq!(manifest_names(&dir), ["summary.json", "weight.csv"]);
    // The manifest vouches for weight.csv now; kernel.svg is still the user's.
    let err = Claim::replace(&dir, &RUN_NAMES, &[], false).expect_err("kernel.svg");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/kernel.svg was not written by ntkdyn; choose another --out or pass --force",
            dir.display()
        )
    );
    let names = ["weight.csv", "summary.json"];
    run(&dir, &names, &files(&[("weight.csv", "2")]), &[], false);
    assert_eq!(
        outputs(&dir),
        files(&[("weight.csv", "2"), ("kernel.svg", "my own figure")])
    );
}

#[test]
fn a_file_changed_since_ntkdyn_wrote_it_is_not_replaced_without_force() {
    let tmp = TempDir::new("changed");
    let dir = tmp.join("out");
    run(
        &dir,
        &RUN_NAMES,
        &files(&[("summary.json", "{\"a\":1}")]),
        &[],
        false,
    );
    fs::write(dir.join("summary.json"), "{\"a\":2, \"my note\": true}").unwrap();
    let err = Claim::replace(&dir, &RUN_NAMES, &[], false).expect_err("changed file");
    assert_eq!(
        err.to_string(),
        format!(
            "{}/summary.json was changed since ntkdyn wrote it; choose another --out or pass --force",
            dir.display()
        )
    );
    assert_eq!(
        fs::read_to_string(dir.join("summary.json")).unwrap(),
        "{\"a\":2, \"my note\": true}"
    );
}

#[test]
fn a_run_never_removes_a_file_its_manifest_does_not_name() {
    let tmp = TempDir::new("never-removes");
    let dir = tmp.join("out");
    let old = files(&[
        ("weight.csv", "old w"),
        ("error.csv", "old e"),
        ("loss.svg", "old loss"),
    ]);
    run(&dir, &RUN_NAMES, &old, &[], false);
    // The user's files: one under an output name this run claims but does not write is
    // impossible without --force (tested above); these are under other names.
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    fs::create_dir(dir.join("figures")).unwrap();
    fs::write(dir.join("figures/loss.svg"), "my copy").unwrap();
    // The new run writes error-space files only: weight.csv and loss.svg are the old run's
    // and go; the user's stay.
    let new = files(&[("error.csv", "new e"), ("summary.json", "new s")]);
    run(&dir, &RUN_NAMES, &new, &[], false);
    let mut expected = new.clone();
    expected.insert("notes.txt".into(), "mine".into());
    expected.insert("figures/loss.svg".into(), "my copy".into());
    assert_eq!(outputs(&dir), expected);
    assert_eq!(manifest_names(&dir), ["error.csv", "summary.json"]);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn a_claim_dropped_without_a_commit_leaves_the_old_run_as_it_was() {
    let tmp = TempDir::new("dropped");
    let dir = tmp.join("out");
    let old = files(&[("weight.csv", "old w"), ("loss.svg", "old loss")]);
    run(&dir, &RUN_NAMES, &old, &[], false);
    let manifest = fs::read(dir.join(MANIFEST)).unwrap();
    {
        let mut claim = Claim::replace(&dir, &RUN_NAMES, &[], false).unwrap();
        claim.put("weight.csv", b"half a new run").unwrap();
        // The run fails here: no commit.
    }
    assert_eq!(outputs(&dir), old);
    assert_eq!(fs::read(dir.join(MANIFEST)).unwrap(), manifest);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn a_name_the_claim_did_not_cover_is_refused() {
    let tmp = TempDir::new("unclaimed");
    let mut claim = Claim::replace(&tmp.join("out"), &["weight.csv"], &[], false).unwrap();
    let err = claim.put("error.csv", b"x").expect_err("not claimed");
    assert!(matches!(err, OutDirError::Unclaimed { .. }), "{err:?}");
    for reserved in [
        "manifest.json",
        ".ntkdyn.lock",
        "../escape.csv",
        "/etc/passwd",
    ] {
        assert!(
            Claim::replace(&tmp.join("out"), &[reserved], &[], false).is_err(),
            "{reserved} accepted"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs (item 2).

#[test]
fn an_input_among_the_outputs_is_refused_before_computing_and_left_alone() {
    let tmp = TempDir::new("input-out");
    let dir = tmp.join("out");
    run(
        &dir,
        &RUN_NAMES,
        &files(&[
            ("discrete.csv", "0.1,0.2,1\n"),
            ("weight.csv", "1,0.5,0.5\n"),
        ]),
        &[],
        false,
    );
    // `--data DIR/discrete.csv --init DIR/weight.csv --out DIR`, a run that writes both.
    let data = dir.join("discrete.csv");
    let init = dir.join("weight.csv");
    let inputs: [(&str, &Path); 2] = [("--data", &data), ("--init", &init)];
    let err = Claim::replace(&dir, &RUN_NAMES, &inputs, true).expect_err("input as output");
    assert!(matches!(err, OutDirError::Input { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("discrete.csv is the input --data"), "{msg}");
    assert_eq!(fs::read_to_string(&data).unwrap(), "0.1,0.2,1\n");
    assert_eq!(fs::read_to_string(&init).unwrap(), "1,0.5,0.5\n");
}

#[test]
fn an_input_reached_through_a_link_is_recognised_as_the_same_file() {
    let tmp = TempDir::new("input-link");
    let dir = tmp.join("out");
    fs::create_dir(&dir).unwrap();
    let data = tmp.join("data.csv");
    fs::write(&data, "0.6,0.8,1\n").unwrap();
    fs::hard_link(&data, dir.join("weight.csv")).unwrap();
    let err = Claim::replace(&dir, &RUN_NAMES, &[("--data", &data)], true)
        .expect_err("the same file under another name");
    assert!(matches!(err, OutDirError::Input { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(&data).unwrap(), "0.6,0.8,1\n");
}

#[test]
fn an_input_an_old_manifest_names_is_kept_when_the_new_run_does_not_write_it() {
    let tmp = TempDir::new("input-kept");
    let dir = tmp.join("out");
    run(
        &dir,
        &RUN_NAMES,
        &files(&[("discrete.csv", "0.1,0.2,1\n"), ("error.csv", "old e")]),
        &[],
        false,
    );
    let data = dir.join("discrete.csv");
    // The new run (error space, no discrete twin) reads DIR/discrete.csv and writes error.csv.
    let names = ["error.csv", "summary.json", "loss.svg", "lyapunov.svg"];
    let mut claim = Claim::replace(&dir, &names, &[("--data", &data)], false).unwrap();
    claim.put("error.csv", b"new e").unwrap();
    let done = claim.commit().unwrap();
    assert_eq!(
        outputs(&dir),
        files(&[("discrete.csv", "0.1,0.2,1\n"), ("error.csv", "new e")])
    );
    assert_eq!(manifest_names(&dir), ["error.csv"]);
    assert!(
        !done.whole_directory,
        "an input inside DIR keeps DIR in place"
    );
    assert!(
        done.notes.iter().any(|n| n.contains("discrete.csv")),
        "{:?}",
        done.notes
    );
}

// ---------------------------------------------------------------------------------------------
// --out checked first (items 3 and 14).

#[cfg(unix)]
#[test]
fn a_non_utf8_out_path_is_used_exactly() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = TempDir::new("non-utf8");
    let dir = tmp.path().join(OsStr::from_bytes(b"out\xfe"));
    run(
        &dir,
        &RUN_NAMES,
        &files(&[("weight.csv", "w"), ("summary.json", "s")]),
        &[],
        false,
    );
    let names: Vec<Vec<u8>> = fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().as_bytes().to_vec())
        .collect();
    assert_eq!(names, [b"out\xfe".to_vec()], "one directory, the one named");
    assert_eq!(fs::read_to_string(dir.join("weight.csv")).unwrap(), "w");
    assert_eq!(manifest_names(&dir), ["summary.json", "weight.csv"]);
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_as_out_is_named_as_such() {
    let tmp = TempDir::new("dangling");
    let dir = tmp.join("out");
    std::os::unix::fs::symlink(tmp.join("gone"), &dir).unwrap();
    let err = Claim::replace(&dir, &RUN_NAMES, &[], false).expect_err("dangling");
    assert_eq!(
        err.to_string(),
        format!(
            "--out {}: is a symbolic link to {}, which does not exist",
            dir.display(),
            tmp.join("gone").display()
        )
    );
    assert!(!tmp.join("gone").exists());
}

#[cfg(unix)]
#[test]
fn a_symlink_to_a_directory_stays_a_link_and_its_target_gets_the_run() {
    let tmp = TempDir::new("link");
    let target = tmp.join("real");
    fs::create_dir(&target).unwrap();
    let dir = tmp.join("out");
    std::os::unix::fs::symlink(&target, &dir).unwrap();
    for content in ["first", "second"] {
        run(
            &dir,
            &RUN_NAMES,
            &files(&[("weight.csv", content)]),
            &[],
            false,
        );
        assert!(fs::symlink_metadata(&dir).unwrap().file_type().is_symlink());
        assert_eq!(outputs(&target), files(&[("weight.csv", content)]));
    }
}

#[test]
fn a_file_as_out_and_an_out_below_a_file_are_refused() {
    let tmp = TempDir::new("file-out");
    let file = tmp.join("results");
    fs::write(&file, "a file").unwrap();
    let err = Claim::replace(&file, &RUN_NAMES, &[], false).expect_err("a file");
    assert_eq!(
        err.to_string(),
        format!("--out {}: exists and is not a directory", file.display())
    );
    let below = file.join("run");
    let err = Claim::replace(&below, &RUN_NAMES, &[], false).expect_err("below a file");
    assert!(matches!(err, OutDirError::NotWritable { .. }), "{err:?}");
    assert_eq!(fs::read_to_string(&file).unwrap(), "a file");
}

#[test]
fn a_directory_under_an_output_name_is_refused_even_with_force() {
    let tmp = TempDir::new("dir-name");
    let dir = tmp.join("out");
    fs::create_dir_all(dir.join("loss.svg")).unwrap();
    fs::write(dir.join("loss.svg/inside.txt"), "mine").unwrap();
    let err = Claim::replace(&dir, &RUN_NAMES, &[], true).expect_err("a directory");
    assert!(matches!(err, OutDirError::IsADirectory { .. }), "{err:?}");
    assert_eq!(outputs(&dir), files(&[("loss.svg/inside.txt", "mine")]));
}

#[cfg(unix)]
#[test]
fn a_directory_that_cannot_be_written_is_refused_before_computing() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("read-only");
    let dir = tmp.join("out");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    // A privileged user writes anyway: then there is nothing to refuse.
    let privileged = fs::write(dir.join("probe"), "").is_ok();
    let _ = fs::remove_file(dir.join("probe"));
    let result = Claim::replace(&dir, &RUN_NAMES, &[], false);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    if !privileged {
        let err = result.expect_err("read-only");
        assert!(matches!(err, OutDirError::NotWritable { .. }), "{err:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Nested outputs (compare, plot).

#[test]
fn nested_outputs_get_a_manifest_per_directory_and_plot_of_a_subdirectory_keeps_its_data() {
    let tmp = TempDir::new("nested");
    let dir = tmp.join("cmp");
    let names = [
        "compare.svg",
        "gf/weight.csv",
        "gf/loss.svg",
        "hbf/weight.csv",
        "hbf/loss.svg",
    ];
    let first = files(&[
        ("compare.svg", "c1"),
        ("gf/weight.csv", "gw1"),
        ("gf/loss.svg", "gl1"),
        ("hbf/weight.csv", "hw1"),
        ("hbf/loss.svg", "hl1"),
    ]);
    run(&dir, &names, &first, &[], false);
    assert_eq!(outputs(&dir), first);
    assert_eq!(
        manifest_names(&dir),
        [
            "compare.svg",
            "gf/loss.svg",
            "gf/manifest.json",
            "gf/weight.csv",
            "hbf/loss.svg",
            "hbf/manifest.json",
            "hbf/weight.csv"
        ]
    );
    assert_eq!(manifest_names(&dir.join("gf")), ["loss.svg", "weight.csv"]);
    // `plot DIR/gf`: draws loss.svg again from weight.csv (an input, kept).
    let gf = dir.join("gf");
    let input = gf.join("weight.csv");
    let mut claim = Claim::update(&gf, &["loss.svg"], &[("DIR", &input)], false).unwrap();
    claim.put("loss.svg", b"gl2").unwrap();
    claim.commit().unwrap();
    assert_eq!(
        outputs(&gf),
        files(&[("weight.csv", "gw1"), ("loss.svg", "gl2")])
    );
    assert_eq!(manifest_names(&gf), ["loss.svg", "weight.csv"]);
    // A new compare without hbf: the replotted figure is still ntkdyn's; hbf/ goes whole.
    let second = files(&[
        ("compare.svg", "c3"),
        ("gf/weight.csv", "gw3"),
        ("gf/loss.svg", "gl3"),
    ]);
    run(&dir, &names, &second, &[], false);
    assert_eq!(outputs(&dir), second);
    assert!(!dir.join("hbf").exists());
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn temporary_files_of_interrupted_writes_are_removed_by_the_next_claim() {
    let tmp = TempDir::new("tmp-leftovers");
    let dir = tmp.join("out");
    run(&dir, &RUN_NAMES, &files(&[("weight.csv", "w")]), &[], false);
    fs::write(dir.join(".error.csv.tmp4242"), "half").unwrap();
    fs::write(dir.join(".notes.txt.tmp4242"), "not ours: another name").unwrap();
    fs::create_dir(dir.join(".ntkdyn-staging-4243")).unwrap();
    fs::write(dir.join(".ntkdyn-staging-4243/weight.csv"), "staged").unwrap();
    let claim = Claim::replace(&dir, &RUN_NAMES, &[], false).unwrap();
    assert!(!claim.notes().is_empty());
    drop(claim);
    assert!(!dir.join(".error.csv.tmp4242").exists());
    assert!(!dir.join(".ntkdyn-staging-4243").exists());
    assert!(dir.join(".notes.txt.tmp4242").exists());
    assert_eq!(outputs(&dir), files(&[("weight.csv", "w")]));
}

#[cfg(target_os = "linux")]
#[test]
fn a_directory_of_ntkdyn_files_switches_whole_and_one_with_the_users_files_by_journal() {
    let tmp = TempDir::new("modes");
    let dir = tmp.join("out");
    let mut claim = Claim::replace(&dir, &RUN_NAMES, &[], false).unwrap();
    claim.put("weight.csv", b"1").unwrap();
    assert!(claim.commit().unwrap().whole_directory, "a new directory");
    let mut claim = Claim::replace(&dir, &RUN_NAMES, &[], false).unwrap();
    claim.put("weight.csv", b"2").unwrap();
    assert!(
        claim.commit().unwrap().whole_directory,
        "only ntkdyn's files"
    );
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    let mut claim = Claim::replace(&dir, &RUN_NAMES, &[], false).unwrap();
    claim.put("weight.csv", b"3").unwrap();
    assert!(!claim.commit().unwrap().whole_directory, "the user's file");
    assert_eq!(
        outputs(&dir),
        files(&[("weight.csv", "3"), ("notes.txt", "mine")])
    );
}

// ---------------------------------------------------------------------------------------------
// Whole runs under a kill at every point of the switch (item 4), and the lock (item 5).

const HELPER: &str = "child_claims_and_commits";

/// The child: claim OUTDIR_TEST_DIR for OUTDIR_TEST_NAMES (comma-separated), put
/// OUTDIR_TEST_FILES (name=content;...), commit. With OUTDIR_TEST_HOLD it prints "claimed"
/// once it holds the claim and waits for its stdin to close before putting.
#[test]
#[ignore = "helper run in a child process by the crash and lock tests"]
fn child_claims_and_commits() {
    let Some(dir) = std::env::var_os("OUTDIR_TEST_DIR") else {
        return;
    };
    let names_text = std::env::var("OUTDIR_TEST_NAMES").unwrap();
    let names: Vec<&str> = names_text.split(',').collect();
    let contents = std::env::var("OUTDIR_TEST_FILES").unwrap();
    let input = std::env::var_os("OUTDIR_TEST_INPUT").map(PathBuf::from);
    let inputs: Vec<(&str, &Path)> = input.iter().map(|p| ("--data", p.as_path())).collect();
    let mut claim = match Claim::replace(Path::new(&dir), &names, &inputs, false) {
        Ok(c) => c,
        Err(e) => {
            println!("claim failed: {e}");
            std::process::exit(3);
        }
    };
    if std::env::var_os("OUTDIR_TEST_HOLD").is_some() {
        println!("claimed");
        std::io::stdout().flush().unwrap();
        let mut sink = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
    }
    for item in contents.split(';') {
        let (n, c) = item.split_once('=').unwrap();
        claim.put(n, c.as_bytes()).unwrap();
    }
    claim.commit().unwrap();
}

fn child(dir: &Path, names: &[&str], contents: &Files) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        HELPER,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("OUTDIR_TEST_DIR", dir)
    .env("OUTDIR_TEST_NAMES", names.join(","))
    .env(
        "OUTDIR_TEST_FILES",
        contents
            .iter()
            .map(|(n, c)| format!("{n}={c}"))
            .collect::<Vec<_>>()
            .join(";"),
    )
    .env_remove(CRASH_ENV)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    cmd
}

const CRASH_NAMES: [&str; 5] = [
    "weight.csv",
    "error.csv",
    "summary.json",
    "loss.svg",
    "gf/loss.svg",
];

/// Points after which the new run is the one DIR holds (once a claim has finished a switch).
fn switched(point: &str) -> bool {
    !matches!(point, "staging" | "staged")
}

/// For each crash point: the old run, then a child that aborts at the point; DIR must hold
/// exactly one run (`immediately`: right after the kill; always: after the next claim), the
/// user's `extra` files untouched, and no leftovers once the next claim has run.
fn crash_at_every_point(
    tag: &str,
    extra: &Files,
    input: Option<&str>,
    immediately: bool,
    expected_points: &[&str],
) {
    let mut reached_points = Vec::new();
    let old = files(&[
        ("weight.csv", "old weight"),
        ("error.csv", "old error"),
        ("loss.svg", "old loss"),
        ("gf/loss.svg", "old gf"),
    ]);
    let new = files(&[
        ("weight.csv", "new weight"),
        ("summary.json", "new summary"),
        ("gf/loss.svg", "new gf"),
    ]);
    let with = |run: &Files| -> Files {
        let mut all = run.clone();
        all.extend(extra.clone());
        all
    };
    for point in CRASH_POINTS {
        let tmp = TempDir::new(&format!("crash-{tag}-{point}"));
        let dir = tmp.join("out");
        fs::create_dir(&dir).unwrap();
        for (n, c) in extra {
            fs::write(dir.join(n), c).unwrap();
        }
        let input_path = input.map(|n| dir.join(n));
        let inputs: Vec<(&str, &Path)> =
            input_path.iter().map(|p| ("--data", p.as_path())).collect();
        run(&dir, &CRASH_NAMES, &old, &inputs, false);
        assert_eq!(outputs(&dir), with(&old));

        let mut cmd = child(&dir, &CRASH_NAMES, &new);
        cmd.env(CRASH_ENV, point);
        if let Some(p) = &input_path {
            cmd.env("OUTDIR_TEST_INPUT", p);
        }
        let status = cmd.status().unwrap();
        let reached = !status.success();
        if reached {
            reached_points.push(point);
        }
        let now = outputs(&dir);
        if immediately {
            assert!(
                now == with(&old) || now == with(&new),
                "{tag}, killed at {point}: DIR holds {now:?}"
            );
        }
        // The next claim (a run or `plot`) finishes or undoes the switch and cleans up.
        let claim = Claim::replace(&dir, &CRASH_NAMES, &inputs, false)
            .unwrap_or_else(|e| panic!("{tag}, killed at {point}: next claim: {e}"));
        drop(claim);
        let after = outputs(&dir);
        let expected = if reached && !switched(point) {
            with(&old)
        } else {
            with(&new)
        };
        assert_eq!(
            after, expected,
            "{tag}, killed at {point} (reached {reached})"
        );
        if immediately {
            assert_eq!(
                now, after,
                "{tag}, killed at {point}: the claim changed DIR"
            );
        }
        assert!(
            leftovers(&dir).is_empty(),
            "{tag}, killed at {point}: leftovers {:?}",
            leftovers(&dir)
        );
        // The record matches the run DIR holds.
        let mut recorded = manifest_names(&dir);
        recorded.retain(|n| !n.ends_with(MANIFEST));
        let mut run_names: Vec<String> = expected
            .keys()
            .filter(|n| !extra.contains_key(*n))
            .cloned()
            .collect();
        run_names.sort();
        assert_eq!(recorded, run_names, "{tag}, killed at {point}: manifest");
    }
    // The switch passed (and was killed at) every point of its kind.
    assert_eq!(reached_points, expected_points, "{tag}");
}

const WHOLE_POINTS: [&str; 5] = ["staging", "staged", "exchanged", "unmarked", "finished"];
const JOURNAL_POINTS: [&str; 8] = [
    "staging",
    "staged",
    "journaled",
    "installing",
    "installed",
    "removed",
    "manifested",
    "finished",
];

#[cfg(target_os = "linux")]
#[test]
fn a_kill_at_any_point_of_the_directory_switch_leaves_exactly_one_run() {
    crash_at_every_point("whole", &Files::new(), None, true, &WHOLE_POINTS);
}

#[test]
fn a_kill_at_any_point_of_the_journaled_switch_leaves_one_run_after_the_next_claim() {
    // The user's own file keeps DIR in place: the switch goes file by file with a journal.
    let extra = files(&[("notes.txt", "mine")]);
    crash_at_every_point("journal", &extra, None, false, &JOURNAL_POINTS);
}

#[test]
fn a_kill_at_any_point_of_the_switch_with_an_input_inside_keeps_the_input() {
    // An input inside DIR: staging inside DIR, journaled switch, the input never touched.
    let extra = files(&[("data.csv", "0.6,0.8,1\n")]);
    crash_at_every_point("input", &extra, Some("data.csv"), false, &JOURNAL_POINTS);
}

#[test]
fn a_second_claim_fails_at_once_naming_the_first_pid() {
    let tmp = TempDir::new("concurrent");
    let dir = tmp.join("cmp");
    let names = ["compare.svg", "gf/loss.svg"];
    let new = files(&[("compare.svg", "first"), ("gf/loss.svg", "first gf")]);
    let mut first = child(&dir, &names, &new)
        .env("OUTDIR_TEST_HOLD", "1")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(first.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.ends_with("claimed"))),
        "the first run claims"
    );
    let pid = first.id();
    let err = Claim::replace(&dir, &names, &[], false).expect_err("the second run");
    assert!(
        matches!(err, OutDirError::Busy { pid: Some(p), .. } if p == pid),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} is in use by another ntkdyn run (pid {pid}); wait for it to finish or choose another --out",
            dir.display()
        )
    );
    // `plot DIR/gf` meanwhile: the directory above is held.
    let err = Claim::update(&dir.join("gf"), &["loss.svg"], &[], false).expect_err("below");
    assert!(
        matches!(err, OutDirError::Busy { pid: Some(p), .. } if p == pid),
        "{err:?}"
    );
    drop(first.stdin.take());
    assert!(first.wait().unwrap().success());
    assert_eq!(outputs(&dir), new);
    // Free again.
    run(
        &dir,
        &names,
        &files(&[("compare.svg", "second")]),
        &[],
        false,
    );
    assert_eq!(outputs(&dir), files(&[("compare.svg", "second")]));
}

#[test]
fn a_stale_lock_of_a_dead_pid_is_taken_over() {
    let tmp = TempDir::new("stale");
    let dir = tmp.join("out");
    fs::create_dir(&dir).unwrap();
    // The pid of a process that has ended.
    let mut gone = Command::new(std::env::current_exe().unwrap())
        .args(["--list"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    fs::write(dir.join(LOCK), format!("{dead}\n")).unwrap();
    run(&dir, &RUN_NAMES, &files(&[("weight.csv", "w")]), &[], false);
    assert_eq!(outputs(&dir), files(&[("weight.csv", "w")]));
    assert!(!dir.join(LOCK).exists(), "released");
}

#[test]
fn shards_finishing_together_commit_one_after_the_other_into_one_directory() {
    let tmp = TempDir::new("shards-wait");
    let dir = tmp.join("sweep");
    let first = files(&[("sweep-shard-1-of-2.csv", "rows of shard 1")]);
    let names = ["sweep-shard-1-of-2.csv"];
    let mut holder = child(&dir, &names, &first)
        .env("OUTDIR_TEST_HOLD", "1")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.ends_with("claimed"))));
    // Without waiting: busy at once.
    let second = ["sweep-shard-2-of-2.csv"];
    let busy = retry_while_busy(std::time::Duration::ZERO, || {
        Claim::update(&dir, &second, &[], false)
    });
    assert!(matches!(busy, Err(OutDirError::Busy { .. })), "{busy:?}");
    // Waiting: the second shard commits once the first has, and both are recorded.
    let waiter = {
        let dir = dir.clone();
        std::thread::spawn(move || {
            let mut claim = retry_while_busy(std::time::Duration::from_secs(120), || {
                Claim::update(&dir, &second, &[], false)
            })
            .expect("the directory frees up");
            claim
                .put("sweep-shard-2-of-2.csv", b"rows of shard 2")
                .unwrap();
            claim.commit().unwrap();
        })
    };
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    waiter.join().unwrap();
    assert_eq!(
        outputs(&dir),
        files(&[
            ("sweep-shard-1-of-2.csv", "rows of shard 1"),
            ("sweep-shard-2-of-2.csv", "rows of shard 2")
        ])
    );
    assert_eq!(
        manifest_names(&dir),
        ["sweep-shard-1-of-2.csv", "sweep-shard-2-of-2.csv"]
    );
}

// ---------------------------------------------------------------------------------------------
// Through the binary: every write path of `ntkdyn` goes through a claim.

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

/// A tiny gf run in error space without the twin (writes error.csv, summary.json, loss.svg,
/// lyapunov.svg), with `extra` options, into `out`.
fn tiny(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["gf", "--n", "8", "--d", "3", "--m", "40", "--t-end", "1"])
        .args([
            "--samples",
            "3",
            "--space",
            "error",
            "--no-discrete",
            "--quiet",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .env_remove(CRASH_ENV);
    cmd
}

/// Every file directly in `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

const USER_FILES: [&str; 5] = [
    "notes.txt",
    "weight.csv",
    "discrete.csv",
    "kernel.svg",
    "summary.json",
];

fn users_folder(dir: &Path, names: &[&str]) -> BTreeMap<String, Vec<u8>> {
    fs::create_dir_all(dir).unwrap();
    for n in names {
        fs::write(dir.join(n), format!("the user's own {n}\n")).unwrap();
    }
    snapshot(dir)
}

#[test]
fn a_run_into_a_folder_of_the_users_files_leaves_every_one_byte_identical() {
    // The team's before-stop check: `--out .` in a folder holding the user's own files, one of
    // them (summary.json) under a name the run writes.
    let tmp = TempDir::new("bin-users-folder");
    let dir = tmp.join("work");
    let before = users_folder(&dir, &USER_FILES);
    let out = tiny(Path::new("."), &[])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: ./summary.json was not written by ntkdyn; choose another --out or pass --force\n"
    );
    assert_eq!(snapshot(&dir), before, "a file changed, appeared or went");
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn an_error_space_run_neither_touches_nor_minds_the_users_files_under_names_it_does_not_write() {
    // Issue 14 item 1: weight.csv, discrete.csv and kernel.svg are not outputs of an
    // error-space run without the twin: they stay, and are not in its way.
    let tmp = TempDir::new("bin-users-kept");
    let dir = tmp.join("work");
    let before = users_folder(&dir, &USER_FILES[..4]);
    let out = tiny(Path::new("."), &[])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = snapshot(&dir);
    for (name, bytes) in &before {
        assert_eq!(after.get(name), Some(bytes), "{name} changed");
    }
    let mut written = manifest_names(&dir);
    written.sort();
    assert_eq!(
        written,
        // issue 16: every run writes run.toml, the config that reproduces it.
        [
            "error.csv",
            "loss.svg",
            "lyapunov.svg",
            "run.toml",
            "summary.json"
        ]
    );
    // A second run replaces its own files and still leaves the user's alone.
    let again = tiny(Path::new("."), &["--seed", "3"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(again.status.success());
    let after = snapshot(&dir);
    for (name, bytes) in &before {
        assert_eq!(after.get(name), Some(bytes), "{name} changed");
    }
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

#[test]
fn force_lets_a_run_replace_a_foreign_file_and_nothing_else() {
    let tmp = TempDir::new("bin-force");
    let dir = tmp.join("work");
    let before = users_folder(&dir, &USER_FILES);
    let out = tiny(&dir, &["--force"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = snapshot(&dir);
    for (name, bytes) in &before {
        if name == "summary.json" {
            assert_ne!(after.get(name), Some(bytes));
        } else {
            assert_eq!(after.get(name), Some(bytes), "{name} changed");
        }
    }
}

#[test]
fn a_run_never_writes_or_removes_its_own_inputs() {
    // Issue 14 item 2: --data DIR/discrete.csv --init DIR/weight.csv --out DIR.
    let tmp = TempDir::new("bin-inputs");
    let dir = tmp.join("run");
    fs::create_dir_all(&dir).unwrap();
    let data = "x1,x2,x3,y\n1,0,0,1\n0,1,0,-1\n0,0,1,0.5\n";
    let init = "a,w1,w2,w3\n1,0.1,0.2,0.3\n-1,0.3,-0.2,0.1\n";
    fs::write(dir.join("discrete.csv"), data).unwrap();
    fs::write(dir.join("weight.csv"), init).unwrap();
    let inputs = |cmd: &mut Command| {
        cmd.arg("--data")
            .arg(dir.join("discrete.csv"))
            .arg("--init")
            .arg(dir.join("weight.csv"));
    };
    // Writing one of them is refused before computing, naming it.
    let mut both = Command::new(BIN);
    both.args(["gf", "--t-end", "0.5", "--samples", "3", "--quiet", "--out"])
        .arg(&dir);
    inputs(&mut both);
    let out = both.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("is the input --"), "{err}");
    assert!(!dir.join("summary.json").exists());
    // A run that does not write them leaves them as they were.
    let mut error_only = tiny(&dir, &[]);
    inputs(&mut error_only);
    let out = error_only.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read_to_string(dir.join("discrete.csv")).unwrap(), data);
    assert_eq!(fs::read_to_string(dir.join("weight.csv")).unwrap(), init);
}

#[test]
fn a_refused_run_leaves_no_output_folder_behind() {
    let tmp = TempDir::new("bin-refused");
    let dir = tmp.join("a").join("b");
    let out = tiny(&dir, &["--data", "/nonexistent/ntkdyn-data.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!tmp.join("a").exists(), "the refused run left its --out");
}

/// The manifest of `dir` vouches for exactly the files in it (but the user's `extra`).
fn holds_one_whole_run(dir: &Path, extra: &[&str]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let m = Manifest::read(&dir.join(MANIFEST)).ok_or("no manifest")?;
    let mut files = snapshot(dir);
    files.remove(MANIFEST);
    // Bookkeeping (the lock of a killed run, a journal) is checked by `leftovers`.
    files.retain(|name, _| !name.starts_with('.'));
    for e in extra {
        files.remove(*e);
    }
    let listed: Vec<&String> = m.files.iter().map(|e| &e.name).collect();
    let present: Vec<&String> = files.keys().collect();
    if listed != present {
        return Err(format!("manifest {listed:?}, files {present:?}"));
    }
    for e in &m.files {
        if ntkdyn::outdir::Sum::of(&files[&e.name]) != e.sum {
            return Err(format!("{} is not what the manifest records", e.name));
        }
    }
    Ok(files)
}

#[test]
fn a_run_killed_at_any_point_of_its_commit_leaves_the_old_run_or_the_new_one() {
    // Through the binary: the old run (seed 1), then a run (seed 2) aborted at each point of
    // the switch; DIR holds one whole run (the old or the new one, by its error.csv), and the
    // next run removes every leftover. With the user's notes.txt in DIR (journaled switch) and
    // without (directory switch).
    let tmp = TempDir::new("bin-crash");
    let reference = |seed: &str| {
        let d = tmp.join(&format!("ref{seed}"));
        assert!(tiny(&d, &["--seed", seed]).status().unwrap().success());
        fs::read(d.join("error.csv")).unwrap()
    };
    let (old, new) = (reference("1"), reference("2"));
    assert_ne!(old, new);
    for users in [false, true] {
        // The points of the directory switch, or of the journaled one (the user's file).
        let points: Vec<&str> = if users {
            CRASH_POINTS
                .into_iter()
                .filter(|p| !["exchanged", "unmarked"].contains(p))
                .collect()
        } else {
            vec!["staging", "staged", "exchanged", "unmarked", "finished"]
        };
        for point in points {
            let dir = tmp.join(&format!("run-{users}-{point}"));
            fs::create_dir_all(&dir).unwrap();
            let extra: &[&str] = if users { &["notes.txt"] } else { &[] };
            if users {
                fs::write(dir.join("notes.txt"), "mine\n").unwrap();
            }
            assert!(tiny(&dir, &["--seed", "1"]).status().unwrap().success());
            let crashed = tiny(&dir, &["--seed", "2"])
                .env(CRASH_ENV, point)
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(!crashed.success(), "{point}: the crash hook did not fire");
            // Right after the kill the directory switch shows one run; the journaled one may
            // show both beside its journal until the next claim, which `plot` makes.
            if !users {
                let files = holds_one_whole_run(&dir, extra)
                    .unwrap_or_else(|e| panic!("{point}, right after the kill: {e}"));
                let csv = &files["error.csv"];
                assert!(*csv == old || *csv == new, "{point}: a third error.csv");
            }
            let plot = Command::new(BIN).arg("plot").arg(&dir).output().unwrap();
            assert!(
                plot.status.success(),
                "{point}: {}",
                String::from_utf8_lossy(&plot.stderr)
            );
            let files = holds_one_whole_run(&dir, extra)
                .unwrap_or_else(|e| panic!("{users} {point}, after the next claim: {e}"));
            let csv = &files["error.csv"];
            assert!(*csv == old || *csv == new, "{point}: a third error.csv");
            if users {
                assert_eq!(fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine\n");
            }
            assert!(
                leftovers(&dir).is_empty(),
                "{users} {point}: leftovers {:?}",
                leftovers(&dir)
            );
            // And the next run writes a whole run again.
            assert!(tiny(&dir, &["--seed", "2"]).status().unwrap().success());
            let files = holds_one_whole_run(&dir, extra).unwrap();
            assert_eq!(files["error.csv"], new, "{point}");
            assert!(leftovers(&dir).is_empty(), "{point}: {:?}", leftovers(&dir));
        }
    }
}

#[test]
fn a_second_ntkdyn_run_on_the_same_folder_fails_at_once_naming_the_first_pid() {
    let tmp = TempDir::new("bin-busy");
    let dir = tmp.join("run");
    // The first run: large enough to be running while the second starts.
    let mut first = Command::new(BIN)
        .args([
            "gf", "--n", "40", "--d", "10", "--m", "3000", "--t-end", "1000",
        ])
        .args(["--samples", "5", "--quiet", "--out"])
        .arg(&dir)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = dir.join(LOCK);
    let started = std::time::Instant::now();
    while !fs::read_to_string(&lock).is_ok_and(|t| t.contains(&first.id().to_string())) {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "the first run never took its lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = tiny(&dir, &[]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        still_running,
        "the first run ended before the second started"
    );
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "is in use by another ntkdyn run (pid {})",
            first.id()
        )),
        "{err}"
    );
    // The first run was killed before its commit: DIR holds no run, and no file of either.
    assert!(outputs(&dir).is_empty(), "{:?}", outputs(&dir));
}
