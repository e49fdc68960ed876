//! The write path of a study: CSV tables, summary.json and the figures, each written
//! atomically, data before figures, and stale files of an earlier run removed.

use std::path::{Path, PathBuf};

use crate::error::OutputError;
use crate::io;
use crate::output::figures::{render, RunTables};
use crate::output::style::Style;
use crate::output::summary::Summary;
use crate::study::Report;

/// Files a run may write; those not written by this run are removed, so that a completed run
/// leaves only its own files (a run killed while writing may leave each file whole but some
/// from the run before).
pub const OUTPUT_FILES: [&str; 8] = [
    "weight.csv",
    "error.csv",
    "discrete.csv",
    "summary.json",
    "loss.svg",
    "lyapunov.svg",
    "kernel.svg",
    "test_gap.svg",
];

/// Write the CSV files, summary.json and the figures into `dir`; returns the paths written.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    io::prepare_dir(dir)?;
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(w) = &report.weight {
        files.push(("weight.csv".into(), w.table.to_csv().into_bytes()));
    }
    if let Some(e) = &report.error {
        files.push(("error.csv".into(), e.table.to_csv().into_bytes()));
    }
    if let Some(t) = report.discrete_table() {
        files.push(("discrete.csv".into(), t.to_csv().into_bytes()));
    }
    files.push((
        "summary.json".into(),
        Summary::of(report).to_json().into_bytes(),
    ));
    // Data first: a figure that cannot be drawn must not cost the numbers.
    let mut written = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), OutputError> {
        let path = dir.join(name);
        io::write_atomic(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    for (name, bytes) in &files {
        put(name, bytes)?;
    }
    let figures = render(&RunTables::from_report(report), &Style::default(), dir)?;
    for (name, bytes) in &figures {
        put(name, bytes)?;
    }
    files.extend(figures);
    for stale in OUTPUT_FILES {
        if !files.iter().any(|(n, _)| n == stale) {
            // A stale file that cannot be removed is left as it was: the run's own are whole.
            let _ = std::fs::remove_file(dir.join(stale));
        }
    }
    Ok(written)
}
