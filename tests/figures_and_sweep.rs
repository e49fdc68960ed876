//! `ntkdyn sweep` (CSV shape, shards merge to the whole sweep) and `ntkdyn plot` (the SVGs
//! of a run rendered again from its CSV files are byte for byte those the run wrote).

mod common;

use common::TempDir;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::output::figures::{render, RunTables, Style};
use ntkdyn::output::files;
use ntkdyn::study::{self, RunConfig, SpaceChoice};
use ntkdyn::sweep::{self, SweepConfig, SWEEP_COLUMNS};

fn base() -> RunConfig {
    RunConfig {
        n: 8,
        d: 3,
        t_end: 2.0,
        samples: 9,
        test_n: 4,
        ..RunConfig::defaults(Optimizer::Gf)
    }
}

fn sweep_config(shard: Option<(usize, usize)>) -> SweepConfig {
    SweepConfig {
        base: base(),
        widths: vec![40, 160],
        seeds: 2,
        optimizers: vec![Optimizer::Gf, Optimizer::Nag],
        shard,
        progress: false,
    }
}

#[test]
fn sweep_csv_has_one_row_per_width_seed_and_optimizer() {
    let rows = sweep::run_sweep(&sweep_config(None)).expect("sweep runs");
    assert_eq!(rows.len(), 2 * 2 * 2);
    let text = sweep::to_csv(&rows);
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap(), SWEEP_COLUMNS.join(","));
    let body: Vec<&str> = lines.collect();
    assert_eq!(body.len(), 8);
    for line in &body {
        assert_eq!(line.split(',').count(), SWEEP_COLUMNS.len(), "{line}");
    }
    let keys: Vec<(usize, u64, &str)> = rows
        .iter()
        .map(|r| (r.m, r.seed, r.optimizer.name()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (40, 0, "gf"),
            (40, 0, "nag"),
            (40, 1, "gf"),
            (40, 1, "nag"),
            (160, 0, "gf"),
            (160, 0, "nag"),
            (160, 1, "gf"),
            (160, 1, "nag")
        ]
    );
    for r in &rows {
        assert!(
            r.max_kernel_drift > 0.0 && r.max_weight_drift > 0.0 && r.final_test_gap.is_finite()
        );
    }
}

#[test]
fn shards_merge_into_the_table_of_the_whole_sweep() {
    let dir = TempDir::new("shards");
    let whole = sweep::run_sweep(&sweep_config(None)).expect("whole sweep");
    for i in 1..=3 {
        let cfg = sweep_config(Some((i, 3)));
        let rows = sweep::run_sweep(&cfg).expect("shard");
        sweep::write_shard(&cfg, &rows, dir.path()).expect("write shard");
    }
    let merged = sweep::merge(dir.path()).expect("merge");
    assert_eq!(sweep::to_csv(&merged), sweep::to_csv(&whole));
    // And through the files: the merged sweep.csv is the whole sweep's text.
    sweep::write(&merged, dir.path(), "sweep.csv", true).expect("write merged");
    let text = std::fs::read_to_string(dir.join("sweep.csv")).unwrap();
    assert_eq!(text, sweep::to_csv(&whole));
    assert!(std::fs::read_to_string(dir.join("sweep.svg"))
        .unwrap()
        .trim_end()
        .ends_with("</svg>"));
}

#[test]
fn plot_renders_from_the_csv_files_the_same_svgs_the_run_wrote() {
    for opt in [Optimizer::Gf, Optimizer::Hbf, Optimizer::Nag] {
        let dir = TempDir::new("replot");
        let cfg = RunConfig {
            m: 60,
            space: SpaceChoice::Both,
            out: dir.path().to_path_buf(),
            ..RunConfig {
                optimizer: opt,
                ..base()
            }
        };
        let report = study::run(&cfg).expect("run");
        files::write(&report, dir.path()).expect("write");
        let tables = RunTables::read(dir.path()).expect("read back");
        let figures = render(&tables, &Style::default(), dir.path()).expect("render");
        assert!(figures.len() >= 4, "{opt:?}: {} figures", figures.len());
        for (name, bytes) in figures {
            let written = std::fs::read(dir.join(&name)).unwrap();
            assert!(
                written == bytes,
                "{opt:?}: {name} differs when drawn from the CSV files"
            );
        }
    }
}

#[test]
fn restyled_plot_changes_the_size_and_title() {
    let dir = TempDir::new("restyle");
    let cfg = RunConfig {
        m: 60,
        out: dir.path().to_path_buf(),
        ..base()
    };
    files::write(&study::run(&cfg).unwrap(), dir.path()).unwrap();
    let tables = RunTables::read(dir.path()).unwrap();
    let style = Style {
        width: Some(333),
        height: Some(222),
        log_x: true,
        title: Some("My title".into()),
        ..Style::default()
    };
    let figures = render(&tables, &style, dir.path()).unwrap();
    let loss = String::from_utf8(
        figures
            .iter()
            .find(|(n, _)| n == "loss.svg")
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert!(
        loss.contains("width=\"333\"") && loss.contains("height=\"222\""),
        "{}",
        &loss[..200]
    );
    assert!(loss.contains("My title"));
}

/// `ntkdyn plot` on the folder of `compare` or of `sweep` draws its figures again, byte for
/// byte as the command drew them (issue 16).
#[test]
fn plot_redraws_a_compare_folder_and_a_sweep_folder_as_they_were_written() {
    let bin = env!("CARGO_BIN_EXE_ntkdyn");
    let tmp = common::TempDir::new("plot-folders");
    let small = ["--n", "4", "--d", "2", "--t-end", "0.2", "--samples", "3"];
    for (command, extra, figures) in [
        (
            "compare",
            vec!["--m", "10"],
            vec!["compare.svg", "gf/loss.svg", "nag/kernel.svg"],
        ),
        ("sweep", vec!["--widths", "3,5"], vec!["sweep.svg"]),
    ] {
        let dir = tmp.join(command);
        let status = std::process::Command::new(bin)
            .arg(command)
            .args(small)
            .args(&extra)
            .args(["--quiet", "--out"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
        let before: Vec<Vec<u8>> = figures
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect();
        for f in &figures {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        let out = std::process::Command::new(bin)
            .arg("plot")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "plot {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (f, b) in figures.iter().zip(&before) {
            assert_eq!(&std::fs::read(dir.join(f)).unwrap(), b, "{command}: {f}");
        }
    }
}

/// `ntkdyn plot` on the folder of `sgd` or of `gap` draws its figures again from the tables
/// and summary.json there, byte for byte as the command drew them (issue 16).
#[test]
fn plot_redraws_an_sgd_folder_and_a_gap_folder_as_they_were_written() {
    let bin = env!("CARGO_BIN_EXE_ntkdyn");
    let tmp = common::TempDir::new("plot-sgd-gap");
    let small = ["--n", "6", "--d", "3", "--m", "20", "--t-end", "0.5"];
    for (args, figures) in [
        (vec!["sgd", "--batch", "3", "--seeds", "3"], vec!["sgd.svg"]),
        (
            vec!["gap", "hbf", "--etas", "0.04,0.01"],
            vec!["gap.svg", "modes.svg"],
        ),
    ] {
        let dir = tmp.join(args[0]);
        let status = std::process::Command::new(bin)
            .args(&args)
            .args(small)
            .args(["--quiet", "--out"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success(), "{args:?}");
        let before: Vec<Vec<u8>> = figures
            .iter()
            .map(|f| std::fs::read(dir.join(f)).unwrap())
            .collect();
        for f in &figures {
            std::fs::remove_file(dir.join(f)).unwrap();
        }
        let out = std::process::Command::new(bin)
            .arg("plot")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "plot {}: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        );
        for (f, b) in figures.iter().zip(&before) {
            assert_eq!(&std::fs::read(dir.join(f)).unwrap(), b, "{}: {f}", args[0]);
        }
        // Another format, into another folder: the tables are read, not recomputed.
        let png = tmp.join(&format!("{}-png", args[0]));
        let out = std::process::Command::new(bin)
            .arg("plot")
            .arg(&dir)
            .args(["--format", "png", "--out"])
            .arg(&png)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for f in &figures {
            let bytes = std::fs::read(png.join(f.replace(".svg", ".png"))).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{f}");
        }
    }
    // A folder of none of these kinds: one line naming what plot looks for.
    let empty = tmp.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = std::process::Command::new(bin)
        .arg("plot")
        .arg(&empty)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for kind in ["summary.json", "sweep.csv", "bands.csv", "gap.csv"] {
        assert!(stderr.contains(kind), "{stderr}");
    }
}

/// sweep.svg says under each title where its data came from: n, d, the widths and T; a
/// sweep runs no twin, so it names no eta (issue 16).
#[test]
fn sweep_svg_caption_names_the_data_the_widths_and_t() {
    let bin = env!("CARGO_BIN_EXE_ntkdyn");
    let tmp = common::TempDir::new("sweep-caption");
    let dir = tmp.join("sweep");
    let status = std::process::Command::new(bin)
        .args(["sweep", "--widths", "3,5", "--n", "4", "--d", "2"])
        .args(["--t-end", "0.2", "--samples", "3", "--quiet", "--out"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let svg = std::fs::read_to_string(dir.join("sweep.svg")).unwrap();
    let caption = "synthetic data n = 4, d = 2 · m = 3 to 5 · T = 0.2";
    assert!(svg.contains(caption), "no caption");
    assert!(!svg.contains("η ="), "a sweep has no twin");
}
