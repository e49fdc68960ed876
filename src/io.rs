//! Files in and out: the CSV inputs of SPEC.md (--data, --init), the CSV tables and
//! summary.json of a run, all written whole or not at all (write a temporary file, then rename).

use nalgebra::{DMatrix, DVector};
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{InputError, OutputError};
use crate::model::{Data, Network};

/// Numeric rows of a CSV file, with the file line of each row. A first row that does not
/// parse as numbers is taken as a header; every other row must have the same number of
/// finite numbers.
pub fn read_numeric_csv(path: &Path) -> Result<Vec<(u64, Vec<f64>)>, InputError> {
    let text = fs::read_to_string(path).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    parse_numeric_csv(&text, path)
}

/// [`read_numeric_csv`] on text already in memory; `path` only names it in errors.
pub fn parse_numeric_csv(text: &str, path: &Path) -> Result<Vec<(u64, Vec<f64>)>, InputError> {
    let csv_err = |line: u64, msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut rows: Vec<(u64, Vec<f64>)> = Vec::new();
    let mut width: Option<usize> = None;
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            csv_err(line, e.to_string())
        })?;
        let line = record
            .position()
            .map(|p| p.line())
            .unwrap_or(index as u64 + 1);
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let parsed: Result<Vec<f64>, (usize, String)> = record
            .iter()
            .enumerate()
            .map(|(col, f)| f.parse::<f64>().map_err(|_| (col, f.to_string())))
            .collect();
        let values = match parsed {
            Ok(v) => v,
            Err(_) if rows.is_empty() && width.is_none() => {
                // A header: remember its width so that the data rows are checked against it.
                width = Some(record.len());
                continue;
            }
            Err((col, f)) => {
                return Err(csv_err(
                    line,
                    format!("column {}: '{}' is not a number", col + 1, f),
                ))
            }
        };
        if let Some((col, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(csv_err(
                line,
                format!("column {}: {} is not a finite number", col + 1, v),
            ));
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

/// `--data FILE.csv`: rows x_1..x_d, y.
pub fn read_data(path: &Path) -> Result<Data, InputError> {
    let rows = read_numeric_csv(path)?;
    let cols = rows[0].1.len();
    if cols < 2 {
        return Err(InputError::Csv {
            path: path.to_path_buf(),
            line: rows[0].0,
            msg: format!("{cols} column; --data needs x_1..x_d,y (at least 2 columns)"),
        });
    }
    let d = cols - 1;
    let x = DMatrix::from_fn(rows.len(), d, |i, j| rows[i].1[j]);
    let y = DVector::from_fn(rows.len(), |i, _| rows[i].1[d]);
    Ok(Data { x, y })
}

/// `--init FILE.csv`: m rows a_r, w_r1..w_rd, with a_r = +1 or -1 (anything else is refused:
/// the Gram matrix H of SPEC.md assumes a_r^2 = 1).
pub fn read_init(path: &Path) -> Result<Network, InputError> {
    let rows = read_numeric_csv(path)?;
    let cols = rows[0].1.len();
    if cols < 2 {
        return Err(InputError::Csv {
            path: path.to_path_buf(),
            line: rows[0].0,
            msg: format!("{cols} column; --init needs a_r,w_r1..w_rd (at least 2 columns)"),
        });
    }
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
    Ok(Network { a, w })
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

/// The text of a `--data` file for `data`: rows x_1..x_d,y, no header.
pub fn data_csv(data: &Data) -> String {
    let mut out = String::new();
    for i in 0..data.n() {
        let row: Vec<String> = data
            .x
            .row(i)
            .iter()
            .chain([data.y[i]].iter())
            .map(|v| format_f64(*v))
            .collect();
        out += &row.join(",");
        out.push('\n');
    }
    out
}

/// The text of an `--init` file for `net`: rows a_r,w_r1..w_rd, no header.
pub fn init_csv(net: &Network) -> String {
    let mut out = String::new();
    for r in 0..net.m() {
        let row: Vec<String> = [net.a[r]]
            .iter()
            .chain(net.w.row(r).iter())
            .map(|v| format_f64(*v))
            .collect();
        out += &row.join(",");
        out.push('\n');
    }
    out
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
        let mut out = self.header.join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|v| format_f64(*v)).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Read a table written by [`Table::to_csv`].
    pub fn read(path: &Path) -> Result<Table, InputError> {
        let text = fs::read_to_string(path).map_err(|e| InputError::File {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
        let header: Vec<String> = text
            .lines()
            .next()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let rows = parse_numeric_csv(&text, path)?;
        Ok(Table {
            header,
            rows: rows.into_iter().map(|(_, r)| r).collect(),
        })
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.header.iter().position(|h| h == name)?;
        Some(self.rows.iter().map(|r| r[j]).collect())
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

/// The hidden temporary name used while `path` is written.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp{}", std::process::id()))
}

/// Create the output directory (and parents); refuse a path that is a file.
pub fn prepare_dir(dir: &Path) -> Result<(), OutputError> {
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
