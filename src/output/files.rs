//! The write path of a study: CSV tables, summary.json and the figures, data before figures,
//! all through a claim on the output directory ([`crate::outdir`]).
//!
//! A run claims exactly the names its configuration writes ([`output_names`]) before it
//! computes, so that a foreign file under one of them stops it before any work, and a file
//! the configuration does not write (a user's kernel.svg beside an error-space run) is neither
//! touched nor in the way. Nothing here removes a file: the claim's commit replaces or removes
//! only what a manifest of an earlier run names.

use std::path::{Path, PathBuf};

use crate::error::OutputError;
use crate::outdir::Claim;
use crate::output::figures::{figures, RunTables};
use crate::output::plot;
use crate::output::style::Style;
use crate::output::summary::Summary;
use crate::study::{Report, RunConfig, SpaceChoice};

/// Every file a run may write (the union over configurations).
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

/// The files a run of `cfg` writes (a subset of [`OUTPUT_FILES`], in that order): weight.csv
/// and kernel.svg with weight space, test_gap.svg with weight space and held-out points,
/// error.csv with error space, discrete.csv with the twin; summary.json, loss.svg and
/// lyapunov.svg always.
pub fn output_names(cfg: &RunConfig) -> Vec<&'static str> {
    let weight = matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both);
    let error = matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both);
    let test = cfg.test.is_some() || cfg.test_n > 0;
    OUTPUT_FILES
        .into_iter()
        .filter(|name| match *name {
            "weight.csv" | "kernel.svg" => weight,
            "error.csv" => error,
            "discrete.csv" => cfg.discrete,
            "test_gap.svg" => weight && test,
            _ => true,
        })
        .collect()
}

/// The files a run reads, as (option, path): a run never writes over one of them.
pub fn inputs(cfg: &RunConfig) -> Vec<(&'static str, &Path)> {
    [
        ("--data", &cfg.data),
        ("--init", &cfg.init),
        ("--test", &cfg.test),
    ]
    .into_iter()
    .filter_map(|(option, path)| path.as_deref().map(|p| (option, p)))
    .collect()
}

/// The CSV tables and summary.json of a run, as (file name, bytes).
pub fn data_files(report: &Report) -> Vec<(String, Vec<u8>)> {
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
    files
}

/// The figures of a run rendered as (file name, bytes) in the style's format (loss.svg, or
/// loss.png with `--format png`); a figure that cannot be drawn is left out, with a warning
/// naming it and why.
pub fn figure_files(tables: &RunTables, style: &Style) -> (Vec<(String, Vec<u8>)>, Vec<String>) {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for (name, panels) in figures(tables, style) {
        let name = style.file_name(&name);
        match plot::try_render_grid(&panels, panels.len().max(1))
            .and_then(|svg| style.format.encode(&svg))
        {
            Ok(bytes) => files.push((name, bytes)),
            Err(e) => warnings.push(format!("figure {name} skipped: {e}")),
        }
    }
    (files, warnings)
}

/// Put a run's files into a claim, under `prefix` (`""`, or `"gf/"` for a run of compare):
/// the data first, then the figures (one that cannot be drawn is skipped: the data stand).
/// Returns the warnings of skipped figures.
pub fn put_run(
    report: &Report,
    claim: &mut Claim,
    prefix: &str,
) -> Result<Vec<String>, OutputError> {
    put_run_styled(report, claim, prefix, &Style::default())
}

/// [`put_run`] with the figures in a style (`--format`, `--font-scale`, y limits): their
/// names are [`Style::file_name`]s of [`output_names`].
pub fn put_run_styled(
    report: &Report,
    claim: &mut Claim,
    prefix: &str,
    style: &Style,
) -> Result<Vec<String>, OutputError> {
    for (name, bytes) in data_files(report) {
        claim.put(&format!("{prefix}{name}"), &bytes)?;
    }
    let (figures, warnings) = figure_files(&RunTables::from_report(report), style);
    for (name, bytes) in figures {
        claim.put(&format!("{prefix}{name}"), &bytes)?;
    }
    Ok(warnings)
}

/// Write a run into `dir` as one whole run: claim (refusing foreign files and inputs), put,
/// commit. Returns the paths written. The command line claims before it computes; this is
/// the same path for a report already in memory.
pub fn write(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, OutputError> {
    let names = output_names(&report.config);
    let mut claim = Claim::replace(dir, &names, &inputs(&report.config), false)?;
    put_run(report, &mut claim, "")?;
    Ok(claim.commit()?.written)
}
