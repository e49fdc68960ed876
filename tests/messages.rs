//! Messages and early checks (issue 14, item 14): every error is one line that names what is
//! wrong (the option, the file and its key), with numbers in their shortest form.

mod common;

use std::process::{Command, Output};

use common::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

fn ntkdyn(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// The one line of a failed command, checked to be one line and no panic.
fn error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "accepted: {err}");
    assert_ne!(out.status.code(), Some(101), "a panic: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    err.trim_end().to_string()
}

#[test]
fn a_tiny_or_huge_number_in_a_message_is_written_with_an_exponent() {
    let line = error_line(&ntkdyn(&["gf", "--rtol", "1e-300"]));
    assert!(line.contains("1e-300"), "{line}");
    assert!(!line.contains("0000000000"), "{line}");
    let line = error_line(&ntkdyn(&["gf", "--atol", "1e300"]));
    assert!(line.contains("1e300") && line.len() < 100, "{line}");
}

#[test]
fn a_missing_required_argument_is_named_on_the_error_line() {
    let line = error_line(&ntkdyn(&["plot"]));
    assert!(line.contains("<DIR>"), "{line}");
    let line = error_line(&ntkdyn(&["sweep"]));
    assert!(line.contains("--widths"), "{line}");
}

#[test]
fn sweep_merge_refuses_the_options_it_does_not_take_naming_them() {
    let tmp = TempDir::new("merge-options");
    let out = tmp.path().to_str().unwrap();
    let line = error_line(&ntkdyn(&[
        "sweep", "--merge", "--widths", "10", "--out", out,
    ]));
    assert!(
        line.contains("--merge") && line.contains("--widths"),
        "{line}"
    );
    for option in ["--seeds", "--optimizers", "--shard"] {
        let value = if option == "--shard" { "1/2" } else { "gf" };
        let value = if option == "--seeds" { "2" } else { value };
        let line = error_line(&ntkdyn(&["sweep", "--merge", option, value, "--out", out]));
        assert!(line.contains(option), "{line}");
    }
}

#[test]
fn a_config_file_that_a_sweep_ran_with_serves_its_merge_too() {
    // The shards' config names widths and run options: a merge takes only out from it.
    let tmp = TempDir::new("merge-config");
    let toml = tmp.join("sweep.toml");
    std::fs::write(&toml, "widths = [10, 20]\nt-end = 2\nout = \"shards\"\n").unwrap();
    let line = error_line(&ntkdyn(&[
        "sweep",
        "--merge",
        "--config",
        toml.to_str().unwrap(),
    ]));
    assert!(!line.contains("cannot be used with"), "{line}");
    // It looked for the shards in the config's out, taken from the config's folder.
    assert!(line.contains("shards"), "{line}");
}

/// The error line of `ntkdyn gf --config FILE` with FILE holding `text`.
fn config_error(text: &str) -> (String, String) {
    let tmp = TempDir::new("config-error");
    let toml = tmp.join("bad.toml");
    std::fs::write(&toml, text).unwrap();
    let path = toml.to_str().unwrap().to_string();
    (error_line(&ntkdyn(&["gf", "--config", &path])), path)
}

#[test]
fn a_config_error_names_the_file_and_the_key() {
    for (text, key) in [
        ("quiet = \"yes\"\n", "quiet"),
        ("tyop = 3\n", "tyop"),
        ("space = \"wieght\"\n", "space"),
        ("m = [1, true]\n", "m"),
    ] {
        let (line, path) = config_error(text);
        assert!(line.contains(&path), "{text}: {line}");
        assert!(line.contains(key), "{text}: {line}");
    }
}

#[test]
fn a_config_file_that_is_not_toml_is_refused_naming_its_line() {
    for (text, place) in [
        ("n = 20\nn = 30\n", "line 2, column 1 (n): duplicate key"),
        ("m = 20\nseed = [1\n", "line 2, column 10: unclosed array"),
        ("[gf\n", "line 1, column 4"),
    ] {
        let (line, path) = config_error(text);
        assert!(
            line.contains(&path) && line.contains(place),
            "{text}: {line}"
        );
    }
}

#[test]
fn a_string_where_a_config_expects_a_number_is_refused_naming_file_and_key() {
    let (line, path) = config_error("t-end = \"5\"\n");
    assert!(line.contains(&path) && line.contains("t-end"), "{line}");
    assert!(line.contains("number"), "{line}");
    // eta's word is a string by nature.
    let tmp = TempDir::new("config-eta");
    let toml = tmp.join("ok.toml");
    std::fs::write(
        &toml,
        "eta = \"auto\"\nn = 5\nd = 3\nm = 20\nt-end = 0.5\nsamples = 3\nquiet = true\nout = \"o\"\n",
    )
    .unwrap();
    let out = ntkdyn(&["gf", "--config", toml.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn relative_paths_in_a_config_are_taken_from_the_config_files_folder() {
    let tmp = TempDir::new("config-paths");
    let folder = tmp.join("study");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("data.csv"),
        "0.6,0.8,1\n0.8,-0.6,-1\n-0.6,0.8,0.5\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("run.toml"),
        "data = \"data.csv\"\nout = \"result\"\nm = 20\nt-end = 0.5\nsamples = 3\nquiet = true\n",
    )
    .unwrap();
    // Run from elsewhere: the paths are the config's, not the working directory's.
    let elsewhere = tmp.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let out = Command::new(BIN)
        .current_dir(&elsewhere)
        .args(["gf", "--config", "../study/run.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(folder.join("result").join("summary.json").exists());
    assert!(!elsewhere.join("result").exists());
}
