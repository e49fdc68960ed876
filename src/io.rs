//! Files in and out: the CSV inputs of SPEC.md (--data, --init), the CSV tables and
//! summary.json of a run, all written whole or not at all (write a temporary file, then rename).

use nalgebra::{DMatrix, DVector};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{InputError, OutputError};
use crate::model::{Data, InitialNetwork};

/// Numeric rows of a file, each with its 1-based line in the file.
pub type NumericRows = Vec<(u64, Vec<f64>)>;

/// Numeric rows of a CSV file, with the file line of each row. A first row none of whose
/// fields is a number is taken as a header; every other row must have the same number of
/// finite numbers. Blank lines and lines starting with '#' are skipped.
pub fn read_numeric_csv(path: &Path) -> Result<NumericRows, InputError> {
    parse_numeric_csv(&read_text(path)?, path)
}

fn read_text(path: &Path) -> Result<String, InputError> {
    let bytes = fs::read(path).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    String::from_utf8(bytes).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        msg: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })
}

/// [`read_numeric_csv`] on text already in memory; `path` only names it in errors.
pub fn parse_numeric_csv(text: &str, path: &Path) -> Result<NumericRows, InputError> {
    parse_csv(text, path, false)
}

/// The fields of one CSV line: split at commas, trimmed, surrounding quotes removed.
/// (Numeric files need no quoted commas; a quote that does not close is kept and refused.)
fn fields(line: &str) -> Vec<&str> {
    line.split(',')
        .map(|f| {
            let f = f.trim();
            f.strip_prefix('"')
                .and_then(|g| g.strip_suffix('"'))
                .map(str::trim)
                .unwrap_or(f)
        })
        .collect()
}

/// What a CSV parse found: the header row (its file line and cells) if the first row was
/// one, the numeric rows, and the columns skipped as a pandas index (0-based, in the file).
struct Parsed {
    header: Option<(u64, Vec<String>)>,
    rows: NumericRows,
    skipped: Vec<usize>,
}

/// Whether a header cell names pandas' unnamed index column: `DataFrame.to_csv` writes the
/// index under an empty name (`,x1,x2,y`), and a file read back and written again names it
/// `Unnamed: 0`.
pub fn is_unnamed_index(cell: &str) -> bool {
    cell.is_empty() || cell.starts_with("Unnamed: ")
}

/// Lines are counted here, not by a CSV crate, so that the line in an error is the file's
/// line whatever blank lines, comments or CRLF endings come before it.
fn parse_csv(text: &str, path: &Path, allow_non_finite: bool) -> Result<NumericRows, InputError> {
    parse_csv_columns(text, path, allow_non_finite, false).map(|p| p.rows)
}

/// [`parse_csv`], keeping the header; with `skip_unnamed`, the columns a header names as
/// pandas' index ([`is_unnamed_index`]) are left out of every row (their cells need not be
/// numbers). Column numbers in errors are the file's, counting from 1.
fn parse_csv_columns(
    text: &str,
    path: &Path,
    allow_non_finite: bool,
    skip_unnamed: bool,
) -> Result<Parsed, InputError> {
    let csv_err = |line: u64, msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut rows: NumericRows = Vec::new();
    let mut width: Option<usize> = None;
    let mut header: Option<(u64, Vec<String>)> = None;
    let mut skipped: Vec<usize> = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (index, raw) in text.split('\n').enumerate() {
        let line = index as u64 + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = content.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let cells = fields(content);
        let parsed: Vec<Option<f64>> = cells.iter().map(|f| f.parse::<f64>().ok()).collect();
        if rows.is_empty() && width.is_none() && parsed.iter().all(Option::is_none) {
            // A header: its width is checked against the data rows.
            width = Some(cells.len());
            if skip_unnamed && cells.len() > 1 {
                skipped = (0..cells.len())
                    .filter(|&j| is_unnamed_index(cells[j]))
                    .collect();
            }
            header = Some((line, cells.iter().map(|c| c.to_string()).collect()));
            continue;
        }
        let mut values = Vec::with_capacity(cells.len());
        for (col, (cell, value)) in cells.iter().zip(&parsed).enumerate() {
            if skipped.contains(&col) {
                continue;
            }
            match value {
                Some(v) if v.is_finite() || allow_non_finite => values.push(*v),
                Some(_) => {
                    return Err(csv_err(
                        line,
                        format!(
                            "column {}: '{}' is not a finite number",
                            col + 1,
                            cell.escape_debug()
                        ),
                    ))
                }
                None => {
                    return Err(csv_err(
                        line,
                        format!(
                            "column {}: '{}' is not a number",
                            col + 1,
                            cell.escape_debug()
                        ),
                    ))
                }
            }
        }
        match width {
            Some(w) if w != cells.len() => {
                return Err(csv_err(
                    line,
                    format!("{} columns where {} were expected", cells.len(), w),
                ))
            }
            _ => width = Some(cells.len()),
        }
        rows.push((line, values));
    }
    if rows.is_empty() {
        return Err(InputError::File {
            path: path.to_path_buf(),
            msg: "no data rows".into(),
        });
    }
    Ok(Parsed {
        header,
        rows,
        skipped,
    })
}

/// The rows of an input file that needs at least two columns (`layout` names them).
fn read_two_or_more(path: &Path, layout: &str) -> Result<(NumericRows, usize), InputError> {
    let rows = read_numeric_csv(path)?;
    let cols = rows[0].1.len();
    if cols < 2 {
        return Err(InputError::Csv {
            path: path.to_path_buf(),
            line: rows[0].0,
            msg: format!("{cols} column; {layout} (at least 2 columns)"),
        });
    }
    Ok((rows, cols))
}

/// `--data FILE.csv`: rows x_1..x_d, y (the last column is y; see [`read_data_file`]).
pub fn read_data(path: &Path) -> Result<Data, InputError> {
    read_data_file(path, &LabelColumn::Last).map(|f| f.data)
}

/// Which column of a data file holds the targets y (`--label-column NAME|INDEX`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LabelColumn {
    /// The last column (the default).
    #[default]
    Last,
    /// A column of the file by number, counting from 1 as error messages do (a skipped
    /// pandas index column counts).
    Index(usize),
    /// A column by its name in the header row.
    Name(String),
}

impl LabelColumn {
    /// `--label-column`: a whole number is a column number (from 1), `last` the default, any
    /// other word a header name.
    pub fn parse(option: Option<&str>) -> LabelColumn {
        match option.map(str::trim) {
            None | Some("last") => LabelColumn::Last,
            Some(s) => match s.parse::<usize>() {
                Ok(k) => LabelColumn::Index(k),
                Err(_) => LabelColumn::Name(s.to_string()),
            },
        }
    }
}

impl std::fmt::Display for LabelColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelColumn::Last => f.write_str("last"),
            LabelColumn::Index(k) => write!(f, "{k}"),
            LabelColumn::Name(s) => write!(f, "'{s}'"),
        }
    }
}

/// A data file read: the points, the file line of each row (the row number for .npy and
/// .npz), and notes for the user (a skipped index column, 0/1 labels).
#[derive(Clone, Debug, PartialEq)]
pub struct DataFile {
    pub data: Data,
    pub lines: Vec<u64>,
    pub notes: Vec<String>,
}

/// The note for targets that are all 0 or 1: accuracy is reported for +-1 labels, and the
/// network starts near f = 0, halfway between two such classes.
pub fn zero_one_note(path: &Path, y: &DVector<f64>) -> Option<String> {
    let zero_one = y.iter().all(|v| *v == 0.0 || *v == 1.0);
    (zero_one && !y.is_empty()).then(|| {
        format!(
            "{}: the labels are all 0 or 1; for classification map them to -1/+1 (y -> 2y - 1): accuracy (sign of f against y) is reported only for +-1 labels",
            path.display()
        )
    })
}

/// A data file (`--data`, `--test`): CSV rows x_1..x_d,y with an optional header, a NumPy
/// `.npy` array (n x (d+1), one row per point), or an `.npz` archive holding `X` (or `x`,
/// n x d) and `y` (n). `label` picks the column of y in a CSV or .npy file (default: the
/// last). A CSV column whose header is empty or `Unnamed: N` (pandas' index written by
/// `DataFrame.to_csv`) is skipped with a note. Errors name the file and the line or key.
pub fn read_data_file(path: &Path, label: &LabelColumn) -> Result<DataFile, InputError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut file = match ext.as_deref() {
        Some("npy") => read_npy_data(path, label)?,
        Some("npz") => read_npz_data(path, label)?,
        _ => read_csv_data(path, label)?,
    };
    file.notes.extend(zero_one_note(path, &file.data.y));
    Ok(file)
}

/// (n, d) of a data file as [`read_data_file`] reads it (the memory check counts a file's
/// rows before the problem is built).
pub fn data_shape(path: &Path, label: &LabelColumn) -> Result<(usize, usize), InputError> {
    read_data_file(path, label).map(|f| (f.data.n(), f.data.d()))
}

/// The 0-based column of y among `columns` raw file columns, `kept` of which are read.
fn label_index(
    path: &Path,
    label: &LabelColumn,
    header: Option<&[String]>,
    kept: &[usize],
    columns: usize,
) -> Result<usize, InputError> {
    let bad = |msg: String| InputError::File {
        path: path.to_path_buf(),
        msg,
    };
    let raw = match label {
        LabelColumn::Last => *kept.last().unwrap_or(&0),
        LabelColumn::Index(k) => {
            if *k == 0 || *k > columns {
                return Err(bad(format!(
                    "--label-column {k}: the file has columns 1 to {columns}"
                )));
            }
            k - 1
        }
        LabelColumn::Name(name) => {
            let Some(header) = header else {
                return Err(bad(format!(
                    "--label-column '{name}': the file has no header row; give the column's number (1 to {columns})"
                )));
            };
            header.iter().position(|h| h == name).ok_or_else(|| {
                bad(format!(
                    "--label-column '{name}': no such column; the header names {}",
                    header
                        .iter()
                        .map(|h| format!("'{h}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?
        }
    };
    kept.iter().position(|&j| j == raw).ok_or_else(|| {
        bad(format!(
            "--label-column {label}: column {} is the skipped index column",
            raw + 1
        ))
    })
}

/// Split numeric rows (each `kept.len()` values) into X and y at column `y_at` of the kept.
fn split_rows(rows: &[Vec<f64>], y_at: usize) -> Data {
    let cols = rows.first().map_or(0, Vec::len);
    let d = cols.saturating_sub(1);
    let x = DMatrix::from_fn(rows.len(), d, |i, j| {
        rows[i][if j < y_at { j } else { j + 1 }]
    });
    let y = DVector::from_fn(rows.len(), |i, _| rows[i][y_at]);
    Data { x, y }
}

fn read_csv_data(path: &Path, label: &LabelColumn) -> Result<DataFile, InputError> {
    let parsed = parse_csv_columns(&read_text(path)?, path, false, true)?;
    let columns = parsed
        .header
        .as_ref()
        .map_or(parsed.rows[0].1.len(), |h| h.1.len());
    let kept: Vec<usize> = (0..columns)
        .filter(|j| !parsed.skipped.contains(j))
        .collect();
    let mut notes = Vec::new();
    if let Some((line, header)) = &parsed.header {
        for &j in &parsed.skipped {
            notes.push(format!(
                "{}: line {line}: column {} ('{}') looks like a pandas index and is skipped (write the file with index=False to leave it out)",
                path.display(),
                j + 1,
                header[j]
            ));
        }
    }
    if kept.len() < 2 {
        return Err(InputError::Csv {
            path: path.to_path_buf(),
            line: parsed.rows[0].0,
            msg: format!(
                "{} column; --data needs x_1..x_d,y (at least 2 columns)",
                kept.len()
            ),
        });
    }
    let header = parsed.header.as_ref().map(|h| h.1.as_slice());
    let y_at = label_index(path, label, header, &kept, columns)?;
    let lines = parsed.rows.iter().map(|r| r.0).collect();
    let rows: Vec<Vec<f64>> = parsed.rows.into_iter().map(|r| r.1).collect();
    Ok(DataFile {
        data: split_rows(&rows, y_at),
        lines,
        notes,
    })
}

/// A NumPy array as its shape and its values in row-major order, converted to f64 from any
/// float, integer or bool dtype (the message of an error names what is wrong, the caller
/// the file and key).
fn npy_values(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>), String> {
    let npy = npyz::NpyFile::new(bytes).map_err(|e| format!("not a NumPy array: {e}"))?;
    let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
    let fortran = npy.order() == npyz::Order::Fortran;
    let dtype = npy.dtype().descr();
    let mut values = npy_as_f64(npy)
        .ok_or_else(|| format!("dtype {dtype} is not a number type (float, int or bool)"))?
        .map_err(|e| format!("cannot read its values: {e}"))?;
    if fortran && shape.len() == 2 {
        let (r, c) = (shape[0], shape[1]);
        values = (0..r * c).map(|k| values[(k % c) * r + k / c]).collect();
    }
    Ok((shape, values))
}

/// The values of an array as f64, trying each number dtype in turn (None: none matches).
fn npy_as_f64(npy: npyz::NpyFile<&[u8]>) -> Option<std::io::Result<Vec<f64>>> {
    fn all<T: npyz::Deserialize>(
        r: npyz::NpyReader<T, &[u8]>,
        f: impl Fn(T) -> f64,
    ) -> std::io::Result<Vec<f64>> {
        r.map(|v| v.map(&f)).collect()
    }
    macro_rules! try_dtype {
        ($npy:ident, $t:ty, $f:expr) => {
            let $npy = match $npy.try_data::<$t>() {
                Ok(r) => return Some(all(r, $f)),
                Err(n) => n,
            };
        };
    }
    try_dtype!(npy, f64, |v| v);
    try_dtype!(npy, f32, f64::from);
    try_dtype!(npy, i64, |v| v as f64);
    try_dtype!(npy, i32, f64::from);
    try_dtype!(npy, i16, f64::from);
    try_dtype!(npy, i8, f64::from);
    try_dtype!(npy, u64, |v| v as f64);
    try_dtype!(npy, u32, f64::from);
    try_dtype!(npy, u16, f64::from);
    try_dtype!(npy, u8, f64::from);
    try_dtype!(npy, bool, |b| f64::from(u8::from(b)));
    let _ = npy;
    None
}

/// The first non-finite value of a row-major array, as (row, column) from 1.
fn first_non_finite(values: &[f64], cols: usize) -> Option<(usize, usize)> {
    values
        .iter()
        .position(|v| !v.is_finite())
        .map(|k| (k / cols.max(1) + 1, k % cols.max(1) + 1))
}

fn read_npy_data(path: &Path, label: &LabelColumn) -> Result<DataFile, InputError> {
    let bad = |msg: String| InputError::File {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = fs::read(path).map_err(|e| bad(e.to_string()))?;
    let (shape, values) = npy_values(&bytes).map_err(bad)?;
    let [n, cols] = shape[..] else {
        return Err(bad(format!(
            "shape {shape:?}: --data needs a 2-D array, one row x_1..x_d,y per point"
        )));
    };
    if n == 0 || cols < 2 {
        return Err(bad(format!(
            "shape [{n}, {cols}]: --data needs at least one row of x_1..x_d,y (at least 2 columns)"
        )));
    }
    if let Some((i, j)) = first_non_finite(&values, cols) {
        return Err(bad(format!(
            "row {i}, column {j}: {} is not a finite number",
            values[(i - 1) * cols + j - 1]
        )));
    }
    let kept: Vec<usize> = (0..cols).collect();
    let y_at = label_index(path, label, None, &kept, cols)?;
    let rows: Vec<Vec<f64>> = values.chunks(cols).map(<[f64]>::to_vec).collect();
    Ok(DataFile {
        data: split_rows(&rows, y_at),
        lines: (1..=n as u64).collect(),
        notes: Vec::new(),
    })
}

/// The bytes of the first of `keys` (each with `.npy` added) in a zip archive.
fn npz_entry(
    archive: &mut zip::ZipArchive<fs::File>,
    keys: &[&str],
) -> Option<(String, Result<Vec<u8>, String>)> {
    use std::io::Read;
    for key in keys {
        let name = format!("{key}.npy");
        let Ok(mut entry) = archive.by_name(&name) else {
            continue;
        };
        let mut bytes = Vec::new();
        let read = entry
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(|e| e.to_string());
        return Some((key.to_string(), read));
    }
    None
}

fn read_npz_data(path: &Path, label: &LabelColumn) -> Result<DataFile, InputError> {
    let bad = |msg: String| InputError::File {
        path: path.to_path_buf(),
        msg,
    };
    if *label != LabelColumn::Last {
        return Err(bad(format!(
            "--label-column {label}: an .npz file holds y under its own key 'y'"
        )));
    }
    let file = fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| bad(format!("not an .npz (zip) archive: {e}")))?;
    let keys: Vec<String> = archive
        .file_names()
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect();
    let array = |archive: &mut zip::ZipArchive<fs::File>, names: &[&str]| {
        let (key, bytes) = npz_entry(archive, names).ok_or_else(|| {
            bad(format!(
                "no key {}: the archive holds {}",
                names.join(" or "),
                if keys.is_empty() {
                    "nothing".to_string()
                } else {
                    keys.join(", ")
                }
            ))
        })?;
        let keyed = |msg: String| bad(format!("key '{key}': {msg}"));
        let (shape, values) = npy_values(&bytes.map_err(keyed)?).map_err(keyed)?;
        let cols = shape.get(1).copied().unwrap_or(1);
        if let Some((i, j)) = first_non_finite(&values, cols) {
            return Err(keyed(format!(
                "row {i}, column {j}: {} is not a finite number",
                values[(i - 1) * cols + j - 1]
            )));
        }
        Ok((key, shape, values))
    };
    let (xkey, xshape, x) = array(&mut archive, &["X", "x"])?;
    let (ykey, yshape, y) = array(&mut archive, &["y", "Y"])?;
    let (n, d) = match xshape[..] {
        [n, d] if n > 0 && d > 0 => (n, d),
        [n] if n > 0 => (n, 1),
        _ => {
            return Err(bad(format!(
                "key '{xkey}': shape {xshape:?}: needs n x d inputs, one row per point"
            )))
        }
    };
    let y_ok = matches!(yshape[..], [k] if k == n) || matches!(yshape[..], [k, 1] if k == n);
    if !y_ok {
        return Err(bad(format!(
            "key '{ykey}': shape {yshape:?}: needs {n} targets, one per row of '{xkey}'"
        )));
    }
    Ok(DataFile {
        data: Data {
            x: DMatrix::from_row_slice(n, d, &x),
            y: DVector::from_vec(y),
        },
        lines: (1..=n as u64).collect(),
        notes: Vec::new(),
    })
}

/// `--init FILE.csv`: m rows a_r, w_r1..w_rd, with a_r = +1 or -1 (anything else is refused:
/// the Gram matrix H of SPEC.md assumes a_r^2 = 1).
pub fn read_init(path: &Path) -> Result<InitialNetwork, InputError> {
    read_init_for(path, false)
}

// issue 17: --train
/// [`read_init`], taking any finite real a_r when the output layer is trained
/// (`real_a`: `--train wa`, whose H weighs each neuron by a_r^2).
pub fn read_init_for(path: &Path, real_a: bool) -> Result<InitialNetwork, InputError> {
    let (rows, cols) = read_two_or_more(path, "--init needs a_r,w_r1..w_rd")?;
    let refused = |a: f64| !a.is_finite() || (!real_a && a != 1.0 && a != -1.0);
    if let Some((line, row)) = rows.iter().find(|(_, r)| refused(r[0])) {
        return Err(InputError::Csv {
            path: path.to_path_buf(),
            line: *line,
            msg: if real_a {
                format!("a_r = {} but it must be a finite number", row[0])
            } else {
                format!(
                    "a_r = {} but it must be +1 or -1 (any real a_r is taken with --train wa)",
                    row[0]
                )
            },
        });
    }
    let d = cols - 1;
    let a = DVector::from_fn(rows.len(), |r, _| rows[r].1[0]);
    let w = DMatrix::from_fn(rows.len(), d, |r, j| rows[r].1[j + 1]);
    Ok(InitialNetwork { a, w })
}

/// k h as the decimal product of k and the shortest decimal of h, rounded once to f64:
/// 499 x 0.1 = 49.9 and 35 x 0.01 = 0.35, where the binary product k as f64 * h gives
/// 49.900000000000006 and 0.35000000000000003 (h = 0.1 is 0.1000000000000000055... in
/// binary, and the product rounds that error up). The digits of h (at most 17) times k fit
/// in a u128; Rust's parser rounds the decimal correctly. Falls back to the binary product
/// for a non-finite or non-positive h.
pub fn decimal_multiple(k: usize, h: f64) -> f64 {
    let plain = k as f64 * h;
    if !(h.is_finite() && h > 0.0) {
        return plain;
    }
    let text = format!("{h:e}");
    let Some((mantissa, exponent)) = text.split_once('e') else {
        return plain;
    };
    let (Ok(exponent), (int, frac)) = (
        exponent.parse::<i32>(),
        mantissa.split_once('.').unwrap_or((mantissa, "")),
    ) else {
        return plain;
    };
    let Some(product) = format!("{int}{frac}")
        .parse::<u128>()
        .ok()
        .and_then(|digits| digits.checked_mul(k as u128))
    else {
        return plain;
    };
    format!("{product}e{}", exponent - frac.len() as i32)
        .parse()
        .unwrap_or(plain)
}

/// Shortest text that parses back to the same f64: plain for moderate magnitudes, with an
/// exponent otherwise (Rust's `{}` would spell 1e-300 with 300 zeros).
pub fn format_f64(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || !v.is_finite() || (1e-4..1e15).contains(&a) {
        v.to_string()
    } else {
        format!("{v:e}")
    }
}

fn csv_rows(rows: impl Iterator<Item = Vec<f64>>) -> String {
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().map(|v| format_f64(*v)).collect();
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

/// The text of a `--data` file for `data`: rows x_1..x_d,y, no header.
pub fn data_csv(data: &Data) -> String {
    csv_rows((0..data.n()).map(|i| data.x.row(i).iter().copied().chain([data.y[i]]).collect()))
}

/// The text of an `--init` file for `net`: rows a_r,w_r1..w_rd, no header.
pub fn init_csv(net: &InitialNetwork) -> String {
    csv_rows((0..net.m()).map(|r| {
        [net.a[r]]
            .into_iter()
            .chain(net.w.row(r).iter().copied())
            .collect()
    }))
}

/// A table with a header, written as CSV with f64s in shortest round-trip form.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| s.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn to_csv(&self) -> String {
        format!(
            "{}\n{}",
            self.header.join(","),
            csv_rows(self.rows.iter().cloned())
        )
    }

    /// Read a table written by [`Table::to_csv`] (infinite values, such as a bound that says
    /// nothing at t = 0, are kept).
    pub fn read(path: &Path) -> Result<Table, InputError> {
        let text = read_text(path)?;
        // The header is the first line the parser does not skip (blank lines and '#' comments
        // come before it in hand-edited files), so that it names the columns of the rows.
        let header: Vec<String> = text
            .strip_prefix('\u{feff}')
            .unwrap_or(&text)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let rows = parse_csv(&text, path, true)?;
        Ok(Table {
            header,
            rows: rows.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// The column named `name` (NaN in a row too short to have it: a table built by hand).
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.header.iter().position(|h| h == name)?;
        Some(
            self.rows
                .iter()
                .map(|r| r.get(j).copied().unwrap_or(f64::NAN))
                .collect(),
        )
    }
}

/// Write `contents` to `path` whole or not at all: a temporary file beside it, then rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), OutputError> {
    let io_err = |e: std::io::Error| OutputError::Io {
        path: path.to_path_buf(),
        msg: e.to_string(),
    };
    let tmp = temporary_path(path);
    fs::write(&tmp, contents).map_err(io_err)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(e)
    })
}

/// The hidden temporary name used while `path` is written: `.NAME.tmpPID` beside it. The name
/// is joined as an OsString, byte for byte, so that a path that is not UTF-8 names the same
/// directory (a lossy conversion would write into another one).
pub fn temporary_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(format!(".tmp{}", std::process::id()));
    path.with_file_name(name)
}

/// Create the output directory (and parents); refuse a path that is a file, or a symbolic
/// link to nothing (create_dir_all would say only 'File exists').
pub fn prepare_dir(dir: &Path) -> Result<(), OutputError> {
    let is_link = fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && fs::metadata(dir).is_err() {
        let target = fs::read_link(dir).unwrap_or_default();
        return Err(OutputError::Io {
            path: dir.to_path_buf(),
            msg: format!(
                "is a symbolic link to {}, which does not exist",
                target.display()
            ),
        });
    }
    if dir.exists() && !dir.is_dir() {
        return Err(OutputError::Io {
            path: dir.to_path_buf(),
            msg: "exists and is not a directory".into(),
        });
    }
    fs::create_dir_all(dir).map_err(|e| OutputError::Io {
        path: dir.to_path_buf(),
        msg: e.to_string(),
    })
}
