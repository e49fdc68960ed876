//! Properties of the CSV readers of src/io.rs: `parse_numeric_csv`, `read_data`, `read_init`
//! (and `Table`, which the `plot` command reads back).
//!
//! * Arbitrary text (random strings, random bytes, soups of CSV-ish tokens: commas, newlines,
//!   quotes, "nan", "inf", huge exponents) never panics; Ok results satisfy the invariants of
//!   the readers, errors name the file.
//! * A random finite f64 matrix written as CSV (`{}` formatting, optional header) parses back
//!   bit-identical, each row with its 1-based file line; one injected bad cell or ragged row
//!   is reported at the 1-based line of that row.
//!
//! Properties that once failed because of bugs in src/io.rs stay as regression tests.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ntkdyn::error::InputError;
use ntkdyn::io::{parse_numeric_csv, read_data, read_init, Table};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

// ---------------------------------------------------------------------------------------------
// Scaffolding.
// ---------------------------------------------------------------------------------------------

/// A directory under the system temp dir named after the process and the test, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ntkdyn-csv_readers-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    /// A fresh file name in the directory holding `bytes`.
    fn file(&self, bytes: &[u8]) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = self.0.join(format!(
            "case-{}.csv",
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        fs::write(&path, bytes).expect("write case file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

const NAME: &str = "in-memory/input.csv";

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep failures reproducible through the printed seed instead of files in tests/.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Physical lines of `text` as an editor counts them, generously (lone CRs count too).
fn line_bound(text: &str) -> u64 {
    (text.matches('\n').count() + text.matches('\r').count() + 1) as u64
}

// ---------------------------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------------------------

/// Pieces that stress a CSV reader.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            ",", ",", ",", "\n", "\n", "\r\n", "\r", "\"", "\"\"", "#", " ", "\t", ";", "",
            "0", "1", "-1", "2.5", "-0", "+3", ".5", "5.", "1e5", "1E-5", "1e400", "-1e400",
            "1e-400", "nan", "NaN", "-nan", "inf", "-inf", "+inf", "infinity", "Infinity",
            "0x10", "1_000", "1.2.3", "e5", "--1", "abc", "x1", "y", "a_r", "\u{feff}", "\u{0}",
            "١", "\u{2212}1", "１", "é",
        ])
        .prop_map(String::from),
        1 => "[0-9eE+\\-.]{1,12}",
        1 => any::<char>().prop_map(String::from),
        1 => any::<f64>().prop_map(|v| v.to_string()),
    ]
}

/// A soup of tokens: mostly CSV-shaped garbage.
fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 0..80).prop_map(|t| t.concat())
}

/// Random bytes made into text.
fn lossy() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..300)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Any text worth feeding a reader.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => soup(),
        1 => lossy(),
        1 => any::<String>(),
        1 => "(?s).{0,200}",
    ]
}

/// Any finite f64: normal, subnormal and zero of both signs, plus the extremes.
fn finite() -> impl Strategy<Value = f64> {
    use prop::num::f64 as F;
    prop_oneof![
        8 => F::POSITIVE | F::NEGATIVE | F::NORMAL | F::SUBNORMAL | F::ZERO,
        1 => prop::sample::select(vec![
            0.0, -0.0, 1.0, -1.0, f64::MAX, f64::MIN, f64::MIN_POSITIVE, -f64::MIN_POSITIVE,
            5e-324, -5e-324, 1e300, 1e-300, 0.1, 1.0 / 3.0, 123456789.0, 9007199254740993.0,
        ]),
        2 => -1e3..1e3f64,
    ]
}

/// A matrix of `1..=8` rows and `1..=5` columns of finite numbers.
fn matrix(min_cols: usize) -> impl Strategy<Value = Vec<Vec<f64>>> {
    (1usize..=8, min_cols..=5)
        .prop_flat_map(|(r, c)| prop::collection::vec(prop::collection::vec(finite(), c), r))
}

/// How the matrix is laid out in the file.
#[derive(Clone, Debug)]
struct Layout {
    header: bool,
    /// Lines before everything: blank lines or `#` comments.
    leading: Vec<&'static str>,
    /// `{}` (SPEC.md), `{:e}` or `{:?}` formatting.
    format: u8,
    /// Spaces around cells (the reader trims).
    pad: bool,
    /// CRLF line endings.
    crlf: bool,
    /// After data row i (index), that many blank / comment lines.
    between: Vec<Vec<&'static str>>,
}

/// LF endings, optional header, nothing between or before the rows.
fn plain_layout() -> impl Strategy<Value = Layout> {
    (any::<bool>(), 0u8..3, any::<bool>()).prop_map(|(header, format, pad)| Layout {
        header,
        leading: vec![],
        format,
        pad,
        crlf: false,
        between: vec![],
    })
}

/// Layouts with CRLF endings and blank or comment lines before and between the rows.
fn messy_layout() -> impl Strategy<Value = Layout> {
    (
        plain_layout(),
        prop::collection::vec(prop::sample::select(vec!["", "# comment", "  "]), 0..3),
        any::<bool>(),
        prop::collection::vec(
            prop::collection::vec(prop::sample::select(vec!["", "# note", "   "]), 0..3),
            8,
        ),
    )
        .prop_map(|(mut l, leading, crlf, between)| {
            l.leading = leading;
            l.crlf = crlf;
            l.between = between;
            l
        })
}

fn cell(v: f64, layout: &Layout) -> String {
    let s = match layout.format {
        0 => format!("{v}"),
        1 => format!("{v:e}"),
        _ => format!("{v:?}"),
    };
    if layout.pad {
        format!(" {s} ")
    } else {
        s
    }
}

/// Write `rows` (cells already text; the header gets `cols` names) in `layout`; returns the text and the 1-based file line of
/// every data row.
fn write_rows(rows: &[Vec<String>], cols: usize, layout: &Layout) -> (String, Vec<u64>) {
    let eol = if layout.crlf { "\r\n" } else { "\n" };
    let mut text = String::new();
    let mut line = 0u64;
    let mut push = |text: &mut String, s: &str| {
        text.push_str(s);
        text.push_str(eol);
        line += 1;
        line
    };
    for l in &layout.leading {
        push(&mut text, l);
    }
    if layout.header {
        let names: Vec<String> = (0..cols).map(|j| format!("c{j}")).collect();
        push(&mut text, &names.join(","));
    }
    let mut lines = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        lines.push(push(&mut text, &r.join(",")));
        if let Some(extra) = layout.between.get(i) {
            for l in extra {
                push(&mut text, l);
            }
        }
    }
    (text, lines)
}

fn to_cells(m: &[Vec<f64>], layout: &Layout) -> Vec<Vec<String>> {
    m.iter()
        .map(|r| r.iter().map(|v| cell(*v, layout)).collect())
        .collect()
}

fn bits(rows: &[Vec<f64>]) -> Vec<Vec<u64>> {
    rows.iter()
        .map(|r| r.iter().map(|v| v.to_bits()).collect())
        .collect()
}

/// Check the invariants of an Ok result of parse_numeric_csv.
fn check_ok(text: &str, rows: &[(u64, Vec<f64>)]) -> Result<(), TestCaseError> {
    prop_assert!(!rows.is_empty(), "Ok with no rows");
    let width = rows[0].1.len();
    prop_assert!(width >= 1);
    let bound = line_bound(text);
    for (line, r) in rows {
        prop_assert_eq!(r.len(), width, "ragged rows accepted");
        prop_assert!(
            r.iter().all(|v| v.is_finite()),
            "non-finite value accepted: {:?}",
            r
        );
        prop_assert!(
            *line >= 1 && *line <= bound,
            "line {} outside 1..={}",
            line,
            bound
        );
    }
    Ok(())
}

/// Check an error of a reader: it names the file.
fn check_err(e: &InputError, path: &Path, text: Option<&str>) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(!msg.trim().is_empty());
    prop_assert!(
        msg.contains(&path.display().to_string()),
        "error does not name the file: {}",
        msg
    );
    match e {
        InputError::Csv { line, .. } => {
            prop_assert!(*line >= 1, "line 0 in {}", msg);
            if let Some(t) = text {
                prop_assert!(*line <= line_bound(t), "line beyond the file in {}", msg);
            }
        }
        InputError::File { .. } => {}
        other => prop_assert!(false, "unexpected error kind {:?}", other),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn parse_numeric_csv_never_panics(text in any_text()) {
        let path = Path::new(NAME);
        match parse_numeric_csv(&text, path) {
            Ok(rows) => check_ok(&text, &rows)?,
            Err(e) => check_err(&e, path, Some(&text))?,
        }
    }

    #[test]
    fn parse_numeric_csv_never_panics_on_numeric_looking_rows(
        rows in prop::collection::vec(prop::collection::vec(token(), 0..6), 0..10),
    ) {
        // Rows of single tokens joined by commas: closer to real files than a soup.
        let text: String = rows.iter().map(|r| r.join(",") + "\n").collect();
        let path = Path::new(NAME);
        match parse_numeric_csv(&text, path) {
            Ok(rows) => check_ok(&text, &rows)?,
            Err(e) => check_err(&e, path, Some(&text))?,
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn read_data_never_panics(text in any_text(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let dir = TempDir::new("read_data_never_panics");
        // Text, and raw bytes that need not be UTF-8.
        for bytes in [text.as_bytes(), raw.as_slice()] {
            let path = dir.file(bytes);
            match read_data(&path) {
                Ok(data) => {
                    prop_assert!(data.x.nrows() >= 1);
                    prop_assert!(data.x.ncols() >= 1);
                    prop_assert_eq!(data.x.nrows(), data.y.len());
                    prop_assert!(data.x.iter().chain(data.y.iter()).all(|v| v.is_finite()));
                }
                Err(e) => check_err(&e, &path, std::str::from_utf8(bytes).ok())?,
            }
        }
    }

    #[test]
    fn read_init_never_panics(text in any_text(), raw in prop::collection::vec(any::<u8>(), 0..64)) {
        let dir = TempDir::new("read_init_never_panics");
        for bytes in [text.as_bytes(), raw.as_slice()] {
            let path = dir.file(bytes);
            match read_init(&path) {
                Ok(net) => {
                    prop_assert!(net.w.nrows() >= 1);
                    prop_assert!(net.w.ncols() >= 1);
                    prop_assert_eq!(net.a.len(), net.w.nrows());
                    prop_assert!(net.a.iter().all(|a| *a == 1.0 || *a == -1.0));
                    prop_assert!(net.w.iter().all(|v| v.is_finite()));
                }
                Err(e) => check_err(&e, &path, std::str::from_utf8(bytes).ok())?,
            }
        }
    }

    /// --init rows with a_r drawn from a few values: exactly the rows with a_r = +-1 pass.
    #[test]
    fn read_init_refuses_every_a_r_but_plus_minus_one(
        a in prop::collection::vec(prop::sample::select(vec![
            "1", "-1", "1.0", "-1.0", "+1", "1e0", "0", "2", "-0.5", "0.999999", "-1.0000001", "3e10",
        ]), 1..6),
        w in finite(),
    ) {
        let dir = TempDir::new("read_init_a_r");
        let text: String = a.iter().map(|ar| format!("{ar},{w},0.5\n")).collect();
        let path = dir.file(text.as_bytes());
        let first_bad = a.iter().position(|ar| {
            let v: f64 = ar.parse().unwrap();
            v != 1.0 && v != -1.0
        });
        match (read_init(&path), first_bad) {
            (Ok(net), None) => prop_assert_eq!(net.a.len(), a.len()),
            (Err(InputError::Csv { line, msg, .. }), Some(i)) => {
                prop_assert_eq!(line, i as u64 + 1, "{}", msg);
                prop_assert!(msg.contains("a_r"), "{}", msg);
            }
            (r, bad) => prop_assert!(false, "a = {:?}: first bad {:?}, got {:?}", a, bad, r.map(|n| n.a)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip and line numbers.
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// `{}`-formatted finite numbers parse back bit-identical, each row with its file line.
    #[test]
    fn finite_matrix_round_trips_with_line_numbers(m in matrix(1), layout in plain_layout()) {
        let (text, lines) = write_rows(&to_cells(&m, &layout), m[0].len(), &layout);
        let rows = parse_numeric_csv(&text, Path::new(NAME))
            .map_err(|e| TestCaseError::fail(format!("{e} on {text:?}")))?;
        let values: Vec<Vec<f64>> = rows.iter().map(|(_, r)| r.clone()).collect();
        prop_assert_eq!(bits(&values), bits(&m), "values differ for {:?}", text);
        let got: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
        prop_assert_eq!(got, lines, "line numbers for {:?}", text);
    }

    /// CRLF endings and blank or comment lines between rows still give the same values.
    #[test]
    fn finite_matrix_round_trips_in_messy_layouts(m in matrix(1), layout in messy_layout()) {
        let (text, _) = write_rows(&to_cells(&m, &layout), m[0].len(), &layout);
        let rows = parse_numeric_csv(&text, Path::new(NAME))
            .map_err(|e| TestCaseError::fail(format!("{e} on {text:?}")))?;
        let values: Vec<Vec<f64>> = rows.iter().map(|(_, r)| r.clone()).collect();
        prop_assert_eq!(bits(&values), bits(&m), "values differ for {:?}", text);
    }

    /// read_data: the last column is y, the others x, bit for bit.
    #[test]
    fn read_data_round_trips(m in matrix(2), layout in plain_layout()) {
        let dir = TempDir::new("read_data_round_trips");
        let (text, _) = write_rows(&to_cells(&m, &layout), m[0].len(), &layout);
        let path = dir.file(text.as_bytes());
        let data = read_data(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let d = m[0].len() - 1;
        prop_assert_eq!(data.x.nrows(), m.len());
        prop_assert_eq!(data.x.ncols(), d);
        for (i, r) in m.iter().enumerate() {
            for (j, v) in r.iter().take(d).enumerate() {
                prop_assert_eq!(data.x[(i, j)].to_bits(), v.to_bits());
            }
            prop_assert_eq!(data.y[i].to_bits(), r[d].to_bits());
        }
    }

    /// read_init: a_r in {+1, -1} first, then the weights, bit for bit.
    #[test]
    fn read_init_round_trips(
        (m, signs) in matrix(1).prop_flat_map(|m| {
            let n = m.len();
            (Just(m), prop::collection::vec(any::<bool>(), n))
        }),
        layout in plain_layout(),
    ) {
        let dir = TempDir::new("read_init_round_trips");
        let full: Vec<Vec<f64>> = m
            .iter()
            .zip(&signs)
            .map(|(r, s)| {
                let mut row = vec![if *s { 1.0 } else { -1.0 }];
                row.extend_from_slice(r);
                row
            })
            .collect();
        let (text, _) = write_rows(&to_cells(&full, &layout), full[0].len(), &layout);
        let path = dir.file(text.as_bytes());
        let net = read_init(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(net.w.nrows(), m.len());
        prop_assert_eq!(net.w.ncols(), m[0].len());
        for (i, r) in m.iter().enumerate() {
            prop_assert_eq!(net.a[i], full[i][0]);
            for (j, v) in r.iter().enumerate() {
                prop_assert_eq!(net.w[(i, j)].to_bits(), v.to_bits());
            }
        }
    }
}

/// Bad cells: (text, parses as an f64 at all, the message echoes it).
const BAD_CELLS: [(&str, bool, bool); 12] = [
    ("abc", false, true),
    ("nan", true, true),
    ("NaN", true, true),
    ("inf", true, true),
    ("-inf", true, true),
    ("1e400", true, false),
    ("-1e999", true, false),
    ("1.2.3", false, true),
    ("0x10", false, true),
    ("1_000", false, true),
    ("e5", false, true),
    ("2kg", false, true),
];

/// Where a bad cell or a ragged row goes: (row, column, which bad cell).
fn injection(rows: usize, cols: usize) -> impl Strategy<Value = (usize, usize, usize)> {
    (0..rows, 0..cols, 0..BAD_CELLS.len())
}

fn matrix_and_injection() -> impl Strategy<Value = (Vec<Vec<f64>>, (usize, usize, usize), Layout)> {
    matrix(1).prop_flat_map(|m| {
        let (r, c) = (m.len(), m[0].len());
        (Just(m), injection(r, c), plain_layout())
    })
}

proptest! {
    #![proptest_config(config(256))]

    /// One bad cell: the error names the 1-based file line of its row and its column.
    #[test]
    fn bad_cell_is_reported_at_its_line((m, (r, c, b), layout) in matrix_and_injection()) {
        let (bad, numeric, echoed) = BAD_CELLS[b];
        // A non-numeric FIRST row of a header-less file is read as a header: see the ignored
        // property `bad_first_row_without_header_is_an_error`.
        prop_assume!(layout.header || r > 0 || numeric);
        let mut cells = to_cells(&m, &layout);
        cells[r][c] = bad.to_string();
        let (text, lines) = write_rows(&cells, m[0].len(), &layout);
        match parse_numeric_csv(&text, Path::new(NAME)) {
            Err(e @ InputError::Csv { .. }) => {
                let msg = e.to_string();
                let InputError::Csv { line, .. } = e else { unreachable!() };
                prop_assert_eq!(line, lines[r], "{} for {:?}", msg, text);
                prop_assert!(msg.contains(NAME), "{}", msg);
                prop_assert!(msg.contains(&format!("column {}", c + 1)), "{}", msg);
                prop_assert!(!msg.contains('\n'), "multi-line: {:?}", msg);
                if echoed {
                    prop_assert!(
                        msg.to_lowercase().contains(&bad.to_lowercase()),
                        "{} does not name {}", msg, bad
                    );
                }
            }
            other => prop_assert!(false, "{:?} for {:?}", other, text),
        }
    }

    /// One ragged row (a cell missing or one too many): reported at its line.
    #[test]
    fn ragged_row_is_reported_at_its_line(
        (m, (r, _, b), layout) in matrix_and_injection(),
    ) {
        // The first data row of a header-less file fixes the width, so it cannot be "ragged".
        prop_assume!(layout.header || r > 0);
        let mut cells = to_cells(&m, &layout);
        let remove = b % 2 == 0 && cells[r].len() >= 2;
        if remove {
            cells[r].pop();
        } else {
            cells[r].push("1".into());
        }
        let (text, lines) = write_rows(&cells, m[0].len(), &layout);
        match parse_numeric_csv(&text, Path::new(NAME)) {
            Err(e @ InputError::Csv { .. }) => {
                let msg = e.to_string();
                let InputError::Csv { line, .. } = e else { unreachable!() };
                prop_assert_eq!(line, lines[r], "{} for {:?}", msg, text);
                prop_assert!(msg.contains("columns"), "{}", msg);
            }
            other => prop_assert!(false, "{:?} for {:?}", other, text),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Properties that fail today (bugs in src/io.rs).
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    /// Line numbers stay right with CRLF endings and with blank or comment lines between rows.
    #[test]
    fn line_numbers_in_messy_layouts((m, (r, c, _), layout) in matrix(1).prop_flat_map(|m| {
        let (r, c) = (m.len(), m[0].len());
        (Just(m), injection(r, c), messy_layout())
    })) {
        let mut cells = to_cells(&m, &layout);
        cells[r][c] = "nan".into();
        let (text, lines) = write_rows(&cells, m[0].len(), &layout);
        match parse_numeric_csv(&text, Path::new(NAME)) {
            Err(InputError::Csv { line, msg, .. }) => {
                prop_assert_eq!(line, lines[r], "{} for {:?}", msg, text)
            }
            other => prop_assert!(false, "{:?} for {:?}", other, text),
        }
        let (clean, lines) = write_rows(&to_cells(&m, &layout), m[0].len(), &layout);
        let rows = parse_numeric_csv(&clean, Path::new(NAME))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got: Vec<u64> = rows.iter().map(|(l, _)| *l).collect();
        prop_assert_eq!(got, lines, "row lines for {:?}", clean);
    }

    /// Every error of the reader is one line, whatever the input.
    #[test]
    fn errors_are_one_line(text in prop_oneof![
        any_text(),
        // Rows whose cells may be quoted and hold newlines.
        prop::collection::vec(
            prop::collection::vec(prop_oneof![token(), "\"[a-z0-9\n\r,]{0,6}\""], 1..5),
            1..5,
        )
        .prop_map(|rows| rows.iter().map(|r| r.join(",") + "\n").collect::<String>()),
    ]) {
        if let Err(e) = parse_numeric_csv(&text, Path::new(NAME)) {
            let msg = e.to_string();
            prop_assert!(!msg.contains('\n') && !msg.contains('\r'), "multi-line: {:?}", msg);
        }
    }

    /// A typo in the first row of a header-less file is an error, not a silently dropped header.
    #[test]
    fn bad_first_row_without_header_is_an_error(
        m in (2usize..=6, 2usize..=5).prop_flat_map(|(r, c)| {
            prop::collection::vec(prop::collection::vec(finite(), c), r)
        }),
        col in 0usize..5,
        bad in prop::sample::select(vec!["abc", "1.2.3", "2kg", "0x10", "e5"]),
    ) {
        let layout = Layout { header: false, leading: vec![], format: 0, pad: false, crlf: false, between: vec![] };
        let mut cells = to_cells(&m, &layout);
        let col = col % cells[0].len();
        cells[0][col] = bad.to_string();
        let (text, _) = write_rows(&cells, m[0].len(), &layout);
        match parse_numeric_csv(&text, Path::new(NAME)) {
            Err(InputError::Csv { line, .. }) => prop_assert_eq!(line, 1),
            other => prop_assert!(false, "{:?} for {:?}", other.map(|r| r.len()), text),
        }
    }

    /// Table::to_csv then Table::read gives the table back, including the non-finite values a
    /// run writes (nag's loss_bound is +inf at t = 0).
    #[test]
    fn table_round_trips_with_non_finite_values(
        m in matrix(1),
        specials in prop::collection::vec((0usize..8, 0usize..5, prop::sample::select(vec![f64::INFINITY, f64::NEG_INFINITY, f64::NAN])), 0..3),
    ) {
        let dir = TempDir::new("table_non_finite");
        let cols = m[0].len();
        let mut t = Table::new(&(0..cols).map(|j| if j == 0 { "t" } else { "v" }).collect::<Vec<_>>());
        t.rows = m.clone();
        for (r, c, v) in specials {
            let r = r % t.rows.len();
            t.rows[r][c % cols] = v;
        }
        let path = dir.file(t.to_csv().as_bytes());
        let back = Table::read(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back.header, &t.header);
        prop_assert_eq!(bits(&back.rows), bits(&t.rows));
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Table::to_csv then Table::read: finite tables come back bit-identical (SPEC.md: numbers
    /// round-trip an f64).
    #[test]
    fn finite_table_round_trips(m in matrix(1)) {
        let dir = TempDir::new("table_finite");
        let cols = m[0].len();
        let names: Vec<String> = (0..cols).map(|j| format!("col_{j}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut t = Table::new(&refs);
        t.rows = m.clone();
        let csv = t.to_csv();
        prop_assert!(csv.ends_with('\n'));
        let path = dir.file(csv.as_bytes());
        let back = Table::read(&path).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back.header, &t.header);
        prop_assert_eq!(bits(&back.rows), bits(&t.rows));
        prop_assert_eq!(back.column("col_0").unwrap().len(), m.len());
    }
}

// ---------------------------------------------------------------------------------------------
// A few fixed examples that document the reader's conventions.
// ---------------------------------------------------------------------------------------------

#[test]
fn conventions() {
    let p = Path::new(NAME);
    // Header optional; a UTF-8 BOM, leading comments and blank lines are fine.
    let rows = parse_numeric_csv("\u{feff}x,y\n1,2\n3,4\n", p).unwrap();
    assert_eq!(rows, vec![(2, vec![1.0, 2.0]), (3, vec![3.0, 4.0])]);
    let rows = parse_numeric_csv("# made by hand\n\n1, 2\n 3 ,4\n", p).unwrap();
    let values: Vec<Vec<f64>> = rows.into_iter().map(|(_, r)| r).collect();
    assert_eq!(values, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
    // (Their line numbers are wrong today: see `bug_lines_after_leading_comment`.)
    // No data rows: an error naming the file.
    for text in ["", "\n\n", "x,y\n", "# only a comment\n"] {
        let e = parse_numeric_csv(text, p).unwrap_err();
        assert!(e.to_string().contains(NAME), "{e}");
    }
    // A value overflowing to infinity is refused, at its line.
    match parse_numeric_csv("1,2\n3,1e400\n", p) {
        Err(InputError::Csv { line: 2, .. }) => {}
        other => panic!("{other:?}"),
    }
    // A header whose width differs from the rows.
    match parse_numeric_csv("x,y,z\n1,2\n", p) {
        Err(InputError::Csv { line: 2, msg, .. }) => assert!(msg.contains("columns"), "{msg}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bug_lines_after_leading_comment() {
    let rows = parse_numeric_csv("# made by hand\n\n1, 2\n 3 ,4\n", Path::new(NAME)).unwrap();
    assert_eq!(rows, vec![(3, vec![1.0, 2.0]), (4, vec![3.0, 4.0])]);
}
