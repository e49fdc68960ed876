//! What `ntkdyn plot DIR` reads back from the folders of `sgd` and `gap`: their tables and
//! summary.json, parsed into the values their figures were drawn from, so that the figures
//! are drawn again without computing anything (and, in the same style, byte for byte).
//!
//! Every number was written by [`crate::io::format_f64`] or serde_json's round-trip
//! printing, so it reads back as the same f64.

use std::path::Path;

use crate::error::InputError;
use crate::gap::{orders, GapReport, GapRow};
use crate::optimizer::Optimizer;
use crate::sgd::bands::{Band, BandRow};
use crate::sgd::report::BAND_COLUMNS;
use crate::sgd::{Process, Space};
use crate::theory::high_resolution::Resolution;
use crate::theory::modes::{ModeRow, MODES_COLUMNS};

/// summary.json of `dir` as a JSON value.
pub fn read_json(dir: &Path) -> Result<serde_json::Value, InputError> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| InputError::File {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| InputError::File {
        path,
        msg: format!("not a summary.json ntkdyn wrote: {e}"),
    })
}

/// The records of a CSV file after a header that must be `columns`, with their line numbers.
fn records(path: &Path, columns: &[&str]) -> Result<Vec<(u64, Vec<String>)>, InputError> {
    let err = |line: u64, msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut reader = csv::ReaderBuilder::new()
        .from_path(path)
        .map_err(|e| InputError::File {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if header != columns {
        return Err(err(
            1,
            format!("header {} is not {}", header.join(","), columns.join(",")),
        ));
    }
    reader
        .records()
        .enumerate()
        .map(|(k, r)| {
            let line = k as u64 + 2;
            let r = r.map_err(|e| err(line, e.to_string()))?;
            Ok((line, r.iter().map(str::to_string).collect()))
        })
        .collect()
}

/// A number of a CSV cell, or an error naming the file, the line and the column.
fn number<T: std::str::FromStr>(
    path: &Path,
    line: u64,
    column: &str,
    cell: &str,
) -> Result<T, InputError> {
    cell.parse().map_err(|_| InputError::Csv {
        path: path.to_path_buf(),
        line,
        msg: format!("{column} {cell:?} is not a number"),
    })
}

/// A name of a CSV cell among `names`, or an error naming the file, the line and the column.
fn one_of<T: Copy>(
    path: &Path,
    line: u64,
    column: &str,
    cell: &str,
    names: &[(&str, T)],
) -> Result<T, InputError> {
    names
        .iter()
        .find(|(n, _)| *n == cell)
        .map(|&(_, v)| v)
        .ok_or_else(|| InputError::Csv {
            path: path.to_path_buf(),
            line,
            msg: format!(
                "{column} {cell:?} is not one of {}",
                names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            ),
        })
}

/// bands.csv of an sgd folder: one [`Band`] per (process, space), in the file's order.
pub fn read_bands(path: &Path) -> Result<Vec<Band>, InputError> {
    let processes = [
        Process::Sgd,
        Process::Sde,
        Process::Gd,
        Process::Gf,
        Process::Exact,
    ]
    .map(|p| (p.name(), p));
    let spaces = [Space::Weight, Space::Error].map(|s| (s.name(), s));
    let mut bands: Vec<Band> = Vec::new();
    for (line, r) in records(path, &BAND_COLUMNS)? {
        let process = one_of(path, line, "process", &r[0], &processes)?;
        let space = one_of(path, line, "space", &r[1], &spaces)?;
        let f = |j: usize| number::<f64>(path, line, BAND_COLUMNS[j], &r[j]);
        let row = BandRow {
            t: f(2)?,
            median: f(3)?,
            q10: f(4)?,
            q90: f(5)?,
            mean: f(6)?,
            se: f(7)?,
            runs: number(path, line, "runs", &r[8])?,
        };
        match bands.last_mut() {
            Some(b) if b.process == process && b.space == space => b.rows.push(row),
            _ => bands.push(Band {
                process,
                space,
                rows: vec![row],
            }),
        }
    }
    Ok(bands)
}

/// The columns of gap.csv.
const GAP_COLUMNS: [&str; 6] = ["space", "resolution", "eta", "h", "gap_delta", "gap_loss"];

/// A gap folder read back: gap.csv, modes.csv and the optimizer of summary.json; the fitted
/// orders are fitted again from the rows, as the run fitted them.
pub fn read_gap(dir: &Path) -> Result<GapReport, InputError> {
    let summary = read_json(dir)?;
    let gap = &summary["gap"];
    let bad = |msg: &str| InputError::File {
        path: dir.join("summary.json"),
        msg: msg.into(),
    };
    let optimizer = gap["optimizer"]
        .as_str()
        .and_then(Optimizer::from_name)
        .ok_or_else(|| bad("gap.optimizer is not an optimizer's name"))?;
    let spaces = [("error", "error"), ("weight", "weight")];
    let resolutions = [("low", Resolution::Low), ("high", Resolution::High)];
    let path = dir.join("gap.csv");
    let mut rows = Vec::new();
    for (line, r) in records(&path, &GAP_COLUMNS)? {
        let f = |j: usize| number::<f64>(&path, line, GAP_COLUMNS[j], &r[j]);
        rows.push(GapRow {
            space: one_of(&path, line, "space", &r[0], &spaces)?,
            resolution: one_of(&path, line, "resolution", &r[1], &resolutions)?,
            eta: f(2)?,
            h: f(3)?,
            gap_delta: f(4)?,
            gap_loss: f(5)?,
        });
    }
    let path = dir.join("modes.csv");
    let mut modes = Vec::new();
    if path.exists() {
        // The regime is not drawn: one this version does not know reads as "other".
        let regime = |cell: &str| {
            ["underdamped", "overdamped", "critical", "first_order"]
                .into_iter()
                .find(|r| *r == cell)
                .unwrap_or("other")
        };
        for (line, r) in records(&path, &MODES_COLUMNS)? {
            let f = |j: usize| number::<f64>(&path, line, MODES_COLUMNS[j], &r[j]);
            modes.push(ModeRow {
                lambda: f(0)?,
                regime: regime(&r[1]),
                rate_twin: f(2)?,
                rate_low: f(3)?,
                rate_high: f(4)?,
                stable: number(&path, line, "stable", &r[5])?,
            });
        }
    }
    let modes_eta = gap["modes_eta"]
        .as_f64()
        .unwrap_or_else(|| rows.iter().map(|r| r.eta).fold(0.0, f64::max));
    Ok(GapReport {
        optimizer,
        t_end: gap["t_end"].as_f64().unwrap_or(f64::NAN),
        orders: orders(&rows),
        rows,
        modes_eta,
        modes,
        caption: gap["caption"].as_str().unwrap_or_default().to_string(),
    })
}
