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

/// Lines are counted here, not by a CSV crate, so that the line in an error is the file's
/// line whatever blank lines, comments or CRLF endings come before it.
fn parse_csv(text: &str, path: &Path, allow_non_finite: bool) -> Result<NumericRows, InputError> {
    let csv_err = |line: u64, msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut rows: NumericRows = Vec::new();
    let mut width: Option<usize> = None;
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
            continue;
        }
        let mut values = Vec::with_capacity(cells.len());
        for (col, (cell, value)) in cells.iter().zip(&parsed).enumerate() {
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
            Some(w) if w != values.len() => {
                return Err(csv_err(
                    line,
                    format!("{} columns where {} were expected", values.len(), w),
                ))
            }
            _ => width = Some(values.len()),
        }
        rows.push((line, values));
    }
    if rows.is_empty() {
        return Err(InputError::File {
            path: path.to_path_buf(),
            msg: "no data rows".into(),
        });
    }
    Ok(rows)
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

/// `--data FILE.csv`: rows x_1..x_d, y.
pub fn read_data(path: &Path) -> Result<Data, InputError> {
    let (rows, cols) = read_two_or_more(path, "--data needs x_1..x_d,y")?;
    let d = cols - 1;
    let x = DMatrix::from_fn(rows.len(), d, |i, j| rows[i].1[j]);
    let y = DVector::from_fn(rows.len(), |i, _| rows[i].1[d]);
    Ok(Data { x, y })
}

/// `--init FILE.csv`: m rows a_r, w_r1..w_rd, with a_r = +1 or -1 (anything else is refused:
/// the Gram matrix H of SPEC.md assumes a_r^2 = 1).
pub fn read_init(path: &Path) -> Result<InitialNetwork, InputError> {
    let (rows, cols) = read_two_or_more(path, "--init needs a_r,w_r1..w_rd")?;
    if let Some((line, row)) = rows.iter().find(|(_, r)| r[0] != 1.0 && r[0] != -1.0) {
        return Err(InputError::Csv {
            path: path.to_path_buf(),
            line: *line,
            msg: format!("a_r = {} but it must be +1 or -1", row[0]),
        });
    }
    let d = cols - 1;
    let a = DVector::from_fn(rows.len(), |r, _| rows[r].1[0]);
    let w = DMatrix::from_fn(rows.len(), d, |r, j| rows[r].1[j + 1]);
    Ok(InitialNetwork { a, w })
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
