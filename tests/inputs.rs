//! Issue 16: held-out metrics, inputs as researchers have them (CSV headers, pandas' index,
//! --label-column, .npy and .npz), output times (--times, --times-file), exact twin times,
//! config sections and run.toml, and what a sweep records.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::TempDir;
use nalgebra::{DMatrix, DVector};
use ntkdyn::io::{decimal_multiple, read_data_file, DataFile, LabelColumn};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, RunConfig, SpaceChoice, TimesChoice};

const BIN: &str = env!("CARGO_BIN_EXE_ntkdyn");

fn ntkdyn(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "failed: {err}");
    err
}

/// The two run folders hold byte-identical weight.csv, error.csv and discrete.csv.
fn assert_same_tables(a: &std::path::Path, b: &std::path::Path) {
    for f in ["weight.csv", "error.csv", "discrete.csv"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}"
        );
    }
}

/// Six points in d = 3 (on the unit sphere) with +-1 labels, as rows x1,x2,x3,y.
fn points() -> Vec<[f64; 4]> {
    let raw = [
        [0.6, 0.8, 0.0, 1.0],
        [0.0, 0.6, -0.8, -1.0],
        [-0.8, 0.0, 0.6, 1.0],
        [0.48, -0.64, 0.6, -1.0],
        [0.0, -1.0, 0.0, 1.0],
        [-0.6, -0.48, -0.64, -1.0],
    ];
    raw.to_vec()
}

fn csv_rows(rows: &[[f64; 4]]) -> String {
    rows.iter()
        .map(|r| {
            r.iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The bytes of a NumPy .npy file (version 1.0) holding `values` (row-major) as `descr`.
fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}

fn f64_bytes(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn read(path: &Path, label: &LabelColumn) -> DataFile {
    read_data_file(path, label).unwrap_or_else(|e| panic!("{e}"))
}

fn expected() -> (DMatrix<f64>, DVector<f64>) {
    let p = points();
    (
        DMatrix::from_fn(p.len(), 3, |i, j| p[i][j]),
        DVector::from_fn(p.len(), |i, _| p[i][3]),
    )
}

#[test]
fn a_header_a_pandas_index_and_a_named_label_column_read_the_same_data_bit_for_bit() {
    let tmp = TempDir::new("inputs-csv");
    let (x, y) = expected();
    let plain = tmp.join("plain.csv");
    std::fs::write(&plain, csv_rows(&points())).unwrap();
    let header = tmp.join("header.csv");
    std::fs::write(&header, format!("x1,x2,x3,label\n{}", csv_rows(&points()))).unwrap();
    // pandas: DataFrame.to_csv writes the index first, under an empty name.
    let pandas = tmp.join("pandas.csv");
    let indexed: String = points()
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{i},{:?},{:?},{:?},{:?}\n", r[0], r[1], r[2], r[3]))
        .collect();
    std::fs::write(&pandas, format!(",x1,x2,x3,label\n{indexed}")).unwrap();
    let unnamed = tmp.join("unnamed.csv");
    std::fs::write(&unnamed, format!("Unnamed: 0,x1,x2,x3,label\n{indexed}")).unwrap();
    // The label first, picked by name and by number.
    let first = tmp.join("first.csv");
    let moved: String = points()
        .iter()
        .map(|r| format!("{:?},{:?},{:?},{:?}\n", r[3], r[0], r[1], r[2]))
        .collect();
    std::fs::write(&first, format!("label,x1,x2,x3\n{moved}")).unwrap();
    for (path, label) in [
        (&plain, LabelColumn::Last),
        (&header, LabelColumn::Last),
        (&header, LabelColumn::Name("label".into())),
        (&header, LabelColumn::Index(4)),
        (&pandas, LabelColumn::Last),
        (&unnamed, LabelColumn::Name("label".into())),
        (&first, LabelColumn::Name("label".into())),
        (&first, LabelColumn::Index(1)),
    ] {
        let f = read(path, &label);
        assert_eq!(f.data.x, x, "{} {label}", path.display());
        assert_eq!(f.data.y, y, "{} {label}", path.display());
    }
    let f = read(&pandas, &LabelColumn::Last);
    assert_eq!(f.notes.len(), 1, "{:?}", f.notes);
    assert!(f.notes[0].contains("pandas index") && f.notes[0].contains("column 1"));
    let e = read_data_file(&header, &LabelColumn::Name("target".into()))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("header.csv")
            && e.contains("'target'")
            && e.contains("'x1', 'x2', 'x3', 'label'")
    );
    let e = read_data_file(&pandas, &LabelColumn::Index(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("skipped index column"), "{e}");
    let e = read_data_file(&plain, &LabelColumn::Name("y".into()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no header row"), "{e}");
}

#[test]
fn zero_one_labels_get_a_note_suggesting_plus_minus_one() {
    let tmp = TempDir::new("inputs-01");
    let path = tmp.join("01.csv");
    std::fs::write(&path, "0.6,0.8,1\n0.8,-0.6,0\n").unwrap();
    let f = read(&path, &LabelColumn::Last);
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("0 or 1") && n.contains("2y - 1")),
        "{:?}",
        f.notes
    );
}

#[test]
fn npy_and_npz_inputs_equal_the_csv_input() {
    let tmp = TempDir::new("inputs-npy");
    let (x, y) = expected();
    let flat: Vec<f64> = points().iter().flatten().copied().collect();
    let npy = tmp.join("data.npy");
    std::fs::write(&npy, npy_bytes("<f8", &[6, 4], &f64_bytes(&flat))).unwrap();
    let f = read(&npy, &LabelColumn::Last);
    assert_eq!((f.data.x.clone(), f.data.y.clone()), (x.clone(), y.clone()));
    // An .npz as np.savez writes it: X as float64, y as int64, stored.
    let npz = tmp.join("data.npz");
    {
        use std::io::Write;
        let file = std::fs::File::create(&npz).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        let xs: Vec<f64> = points().iter().flat_map(|r| r[..3].to_vec()).collect();
        zip.start_file("X.npy", opts).unwrap();
        zip.write_all(&npy_bytes("<f8", &[6, 3], &f64_bytes(&xs)))
            .unwrap();
        let ys: Vec<u8> = points()
            .iter()
            .flat_map(|r| (r[3] as i64).to_le_bytes())
            .collect();
        zip.start_file("y.npy", opts).unwrap();
        zip.write_all(&npy_bytes("<i8", &[6], &ys)).unwrap();
        zip.finish().unwrap();
    }
    let f = read(&npz, &LabelColumn::Last);
    assert_eq!((f.data.x, f.data.y), (x, y));
    // The same run from the CSV and the .npy file: identical tables.
    let csv = tmp.join("data.csv");
    std::fs::write(&csv, csv_rows(&points())).unwrap();
    let run = |data: &Path| {
        let cfg = RunConfig {
            data: Some(data.to_path_buf()),
            m: 40,
            t_end: 1.0,
            samples: 3,
            progress: false,
            ..RunConfig::defaults(Optimizer::Gf)
        };
        let r = study::run(&cfg).unwrap();
        let discrete = r.discrete_table();
        (r.weight.unwrap().table, r.error.unwrap().table, discrete)
    };
    assert_eq!(run(&csv), run(&npy));
    assert_eq!(run(&csv), run(&npz));
    // A missing key is named with what the archive holds.
    let bad = tmp.join("bad.npz");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&bad).unwrap());
        zip.start_file("features.npy", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&npy_bytes("<f8", &[1], &f64_bytes(&[1.0])))
            .unwrap();
        zip.finish().unwrap();
    }
    let e = read_data_file(&bad, &LabelColumn::Last)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("bad.npz") && e.contains("X or x") && e.contains("features"),
        "{e}"
    );
}

#[test]
fn a_header_bearing_csv_and_the_same_data_without_header_give_bit_identical_runs() {
    let tmp = TempDir::new("inputs-header-run");
    let plain = tmp.join("plain.csv");
    std::fs::write(&plain, csv_rows(&points())).unwrap();
    let header = tmp.join("header.csv");
    std::fs::write(
        &header,
        format!(",x1,x2,x3,y\n{}", {
            points()
                .iter()
                .enumerate()
                .map(|(i, r)| format!("{i},{:?},{:?},{:?},{:?}\n", r[0], r[1], r[2], r[3]))
                .collect::<String>()
        }),
    )
    .unwrap();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    for (data, out) in [(&plain, &a), (&header, &b)] {
        ok(&ntkdyn(&[
            "hbf",
            "--quiet",
            "--data",
            data.to_str().unwrap(),
            "--m",
            "50",
            "--t-end",
            "2",
            "--samples",
            "5",
            "--out",
            out.to_str().unwrap(),
        ]));
    }
    assert_same_tables(&a, &b);
}

#[test]
fn the_kernel_predictor_on_the_training_points_has_zero_test_loss_and_follows_error_space() {
    let tmp = TempDir::new("inputs-kernel");
    let train = tmp.join("train.csv");
    std::fs::write(&train, csv_rows(&points())).unwrap();
    let cfg = RunConfig {
        data: Some(train.clone()),
        test: Some(train.clone()),
        m: 200,
        t_end: 3.0,
        samples: 4,
        solver: ntkdyn::integrate::Solver::Exact,
        space: SpaceChoice::Error,
        progress: false,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let report = study::run(&cfg).unwrap();
    let held = report.held_out.as_ref().unwrap();
    // f*_inf = u0 + H H^+ (y - u(0)) = y on the training points.
    assert!(
        held.kernel_limit_test_loss < 1e-10,
        "{}",
        held.kernel_limit_test_loss
    );
    assert_eq!(held.kernel_limit_test_accuracy, Some(1.0));
    // f*_t = y + Delta(t) there: its test loss is the error-space loss.
    let e = &report.error.as_ref().unwrap().table;
    let (loss, kernel) = (
        e.column("loss").unwrap(),
        e.column("test_loss_kernel").unwrap(),
    );
    for (l, k) in loss.iter().zip(&kernel) {
        assert!((l - k).abs() <= 1e-10 * l.max(1.0), "{l} vs {k}");
    }
    assert!(report
        .setup
        .warnings
        .iter()
        .any(|w| w.contains("--space error") && w.contains("kernel predictor")));
}

#[test]
fn plus_minus_one_labels_give_accuracy_columns_for_the_network_the_kernel_and_the_twin() {
    let tmp = TempDir::new("inputs-acc");
    let train = tmp.join("train.csv");
    std::fs::write(&train, csv_rows(&points())).unwrap();
    let test = tmp.join("test.csv");
    // Off the sphere on purpose: warned about.
    std::fs::write(&test, "1.2,0.0,0.0,1\n0.0,0.0,2.0,-1\n").unwrap();
    let cfg = RunConfig {
        data: Some(train),
        test: Some(test),
        m: 100,
        t_end: 1.0,
        samples: 3,
        eta: 0.05,
        progress: false,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let report = study::run(&cfg).unwrap();
    let w = &report.weight.as_ref().unwrap().table;
    for c in [
        "test_gap",
        "test_loss",
        "test_loss_kernel",
        "train_accuracy",
        "test_accuracy",
        "test_accuracy_kernel",
    ] {
        let v = w.column(c).unwrap_or_else(|| panic!("no column {c}"));
        assert!(v.iter().all(|x| x.is_finite()), "{c}: {v:?}");
    }
    for a in w.column("test_accuracy").unwrap() {
        assert!([0.0, 0.5, 1.0].contains(&a), "two points: {a}");
    }
    let d = report.discrete_table().unwrap();
    assert_eq!(
        &d.header[d.header.len() - 2..],
        &["test_loss".to_string(), "test_accuracy".to_string()]
    );
    assert_eq!(d.rows.len(), 21);
    // The twin's first test loss is the network's at t = 0 (both at W0).
    assert_eq!(
        d.column("test_loss").unwrap()[0],
        w.column("test_loss").unwrap()[0]
    );
    assert!(report
        .setup
        .warnings
        .iter()
        .any(|w| w.contains("held-out points are not on the unit sphere")));
    let summary = ntkdyn::output::summary::Summary::of(&report);
    let h = summary.held_out.unwrap();
    assert!(h.labels_pm1 && h.points == 2);
    assert_eq!(
        h.network_test_loss,
        w.column("test_loss").unwrap().last().copied()
    );
    assert!(h.discrete_test_accuracy.is_some() && h.train_accuracy.is_some());
}

#[test]
fn test_n_beside_data_is_refused_in_one_line() {
    let tmp = TempDir::new("inputs-testn");
    let train = tmp.join("train.csv");
    std::fs::write(&train, csv_rows(&points())).unwrap();
    let out = ntkdyn(&["gf", "--data", train.to_str().unwrap(), "--test-n", "5"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--test-n") && err.contains("--test FILE"),
        "{err}"
    );
}

#[test]
fn twin_times_are_the_decimal_product_rounded_once() {
    assert_eq!(decimal_multiple(499, 0.1), 49.9);
    assert_eq!(499.0 * 0.1, 49.900000000000006);
    assert_eq!(decimal_multiple(35, 0.01), 0.35);
    assert_eq!(decimal_multiple(3, 0.1), 0.3);
    assert_eq!(decimal_multiple(0, 0.1), 0.0);
    assert_eq!(decimal_multiple(7, 0.25), 1.75);
    // h with 16 significant digits: k h of those digits, rounded once.
    let h = 0.02f64.sqrt();
    assert_eq!(decimal_multiple(1, h), h);
    assert!((decimal_multiple(333, h) - 333.0 * h).abs() <= 1e-14 * 333.0 * h);
    let text = {
        let cfg = RunConfig {
            n: 4,
            d: 3,
            m: 20,
            t_end: 50.0,
            samples: 2,
            space: SpaceChoice::Error,
            solver: ntkdyn::integrate::Solver::Exact,
            progress: false,
            ..RunConfig::defaults(Optimizer::Hbf)
        };
        study::run(&cfg).unwrap().discrete_table().unwrap().to_csv()
    };
    assert!(text.contains("\n499,49.9,"), "{}", &text[..200]);
    assert!(
        !text.contains("00000000000"),
        "a time written with rounding noise"
    );
}

#[test]
fn log_and_file_times_reach_the_tables() {
    let tmp = TempDir::new("inputs-times");
    let base = RunConfig {
        n: 4,
        d: 3,
        m: 20,
        t_end: 8.0,
        samples: 5,
        discrete: false,
        progress: false,
        ..RunConfig::defaults(Optimizer::Gf)
    };
    let log = RunConfig {
        times: TimesChoice::Log,
        ..base.clone()
    };
    let t = study::run(&log).unwrap().weight.unwrap().table.column("t");
    // 0, then from T/(K-1) = 2 to 8 geometrically: 2, 4 (ratio 4^(1/3) ~ 1.587), ..., 8.
    let t = t.unwrap();
    assert_eq!(t.len(), 5);
    assert_eq!((t[0], t[1], t[4]), (0.0, 2.0, 8.0));
    let r = 4f64.powf(1.0 / 3.0);
    assert!((t[2] / t[1] - r).abs() < 1e-14 && (t[3] / t[2] - r).abs() < 1e-14);
    let file = tmp.join("times.txt");
    std::fs::write(&file, "0.5\n1\n3\n").unwrap();
    let from_file = RunConfig {
        times_file: Some(file),
        ..base
    };
    let report = study::run(&from_file).unwrap();
    for table in [report.weight.unwrap().table, report.error.unwrap().table] {
        assert_eq!(table.column("t").unwrap(), vec![0.0, 0.5, 1.0, 3.0]);
    }
}

/// A run, then the same run from its run.toml into another folder: identical CSV files.
#[test]
fn run_toml_reproduces_the_run() {
    let tmp = TempDir::new("inputs-runtoml");
    let train = tmp.join("train.csv");
    std::fs::write(&train, csv_rows(&points())).unwrap();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    ok(&ntkdyn(&[
        "nag",
        "--quiet",
        "--data",
        train.to_str().unwrap(),
        "--test",
        train.to_str().unwrap(),
        "--m",
        "60",
        "--t-end",
        "3",
        "--times",
        "log",
        "--samples",
        "6",
        "--eta",
        "0.04",
        "--gamma",
        "4",
        "--out",
        a.to_str().unwrap(),
    ]));
    let toml = a.join("run.toml");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.contains("times = \"log\"") && text.contains("gamma = 4.0"),
        "{text}"
    );
    ok(&ntkdyn(&[
        "nag",
        "--quiet",
        "--config",
        toml.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
    ]));
    assert_same_tables(&a, &b);
}

#[test]
fn one_config_serves_every_command_through_sections_and_names_the_keys_it_ignores() {
    let tmp = TempDir::new("inputs-sections");
    let toml = tmp.join("all.toml");
    std::fs::write(
        &toml,
        "n = 5\nd = 3\nm = 20\nsamples = 3\nt-end = 4\nwidths = [10, 20]\n\n[gf]\nt-end = 1\nout = \"gf-out\"\n\n[sweep]\nout = \"sweep-out\"\nt-end = 0.5\n",
    )
    .unwrap();
    let err = ok(&ntkdyn(&["gf", "--config", toml.to_str().unwrap()]));
    assert!(
        err.contains("widths is not an option of ntkdyn gf; ignored"),
        "{err}"
    );
    let w = std::fs::read_to_string(tmp.join("gf-out").join("weight.csv")).unwrap();
    assert_eq!(
        w.lines().last().unwrap().split(',').next(),
        Some("1"),
        "[gf] t-end wins"
    );
    ok(&ntkdyn(&[
        "sweep",
        "--quiet",
        "--config",
        toml.to_str().unwrap(),
    ]));
    let sweep = tmp.join("sweep-out");
    let csv = std::fs::read_to_string(sweep.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(json["t_end"], 0.5);
    assert_eq!(json["n"], 5);
    assert_eq!(json["widths"], serde_json::json!([10, 20]));
    assert!(json["runs"][0]["lambda0"].as_f64().unwrap() > 0.0);
    // An unknown key in a command's own section is still an error naming it, and so is one
    // in another command's section: every key is checked before anything runs.
    for (text, section) in [
        ("[gf]\ntyop = 1\n", "[gf]"),
        ("[hbf]\ntyop = 1\n", "[hbf]"),
        ("[sweep]\nwidths = [10, true]\n", "widths"),
    ] {
        std::fs::write(&toml, text).unwrap();
        let out = ntkdyn(&["gf", "--config", toml.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(section), "{text}: {err}");
    }
}

/// A common key that a command holds among its arguments but refuses (`beta` for gf, the run
/// options sgd has no use for) is ignored there with a note, as a key it lacks is; the
/// command that takes it still gets it.
#[test]
fn a_common_key_a_command_refuses_is_ignored_there_with_a_note() {
    let tmp = TempDir::new("inputs-refused");
    let toml = tmp.join("all.toml");
    std::fs::write(
        &toml,
        "n = 5\nd = 3\nm = 20\nsamples = 3\nt-end = 0.5\nbeta = 0.5\nno-discrete = true\n\n[gf]\nout = \"gf-out\"\n\n[hbf]\nout = \"hbf-out\"\n\n[sgd]\nbatch = 2\nseeds = 2\nout = \"sgd-out\"\n",
    )
    .unwrap();
    let err = ok(&ntkdyn(&["gf", "--config", toml.to_str().unwrap()]));
    assert!(
        err.contains("beta is not an option of ntkdyn gf; ignored"),
        "{err}"
    );
    let err = ok(&ntkdyn(&["sgd", "--config", toml.to_str().unwrap()]));
    assert!(
        err.contains("beta, no-discrete are not an option of ntkdyn sgd; ignored"),
        "{err}"
    );
    assert!(tmp.join("sgd-out").join("sgd.csv").exists());
    ok(&ntkdyn(&[
        "hbf",
        "--quiet",
        "--config",
        toml.to_str().unwrap(),
    ]));
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.join("hbf-out").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["config"]["beta"], 0.5, "hbf takes the common beta");
    // Given on the command line, the refusal stands.
    let out = ntkdyn(&["gf", "--config", toml.to_str().unwrap(), "--beta", "0.5"]);
    assert!(!out.status.success());
}

#[test]
fn keep_runs_keeps_each_runs_files_and_sweep_json_records_b() {
    let tmp = TempDir::new("inputs-keep");
    let out = tmp.join("s");
    ok(&ntkdyn(&[
        "sweep",
        "--quiet",
        "--widths",
        "10,20",
        "--optimizers",
        "gf,hbf",
        "--n",
        "4",
        "--d",
        "3",
        "--t-end",
        "0.5",
        "--samples",
        "3",
        "--keep-runs",
        "--out",
        out.to_str().unwrap(),
    ]));
    for m in [10, 20] {
        for o in ["gf", "hbf"] {
            for f in ["weight.csv", "error.csv", "summary.json"] {
                let p = out.join(format!("runs/m{m}-seed0-{o}/{f}"));
                assert!(p.exists(), "{}", p.display());
            }
        }
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sweep.json")).unwrap()).unwrap();
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for r in runs {
        let lambda0 = r["lambda0"].as_f64().unwrap();
        match r["optimizer"].as_str().unwrap() {
            "hbf" => {
                let b = r["friction"].as_f64().unwrap();
                assert!(
                    (b - (2.0 * lambda0).sqrt()).abs() < 1e-15,
                    "b = sqrt(2 lambda0)"
                );
            }
            _ => assert!(r["friction"].is_null()),
        }
    }
    assert!(out.join("run.toml").exists());
}
