//! `ntkdyn sweep`: the same study over widths m and seeds, to watch the kernel stop moving
//! (lazy training): kernel drift, weight drift, pattern changes and the gap between weight and
//! error space against m, with the reference slope m^(-1/2) (Du et al. 2018: the drift of
//! H and of every w_r is O(1/sqrt m)).
//!
//! Runs are independent and deterministic, so a sweep can be split into shards
//! (`--shard I/N`, e.g. one per Slurm array task) whose CSVs `--merge` joins into the table
//! the whole sweep writes.
//!
//! Each shard's CSV begins with a comment line recording its index I of N and its sweep (the
//! run's whole configuration less what the sweep sets itself, and the size and sum of the
//! --data/--test files rather than their paths, which differ between machines). `--merge` joins only shards that form one
//! whole sweep: all N of one split, none twice, all of one sweep, each holding exactly its
//! jobs; anything else is refused with the file and what differs.

use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, InputError, OutputError};
use crate::io::format_f64;
use crate::observe::{Progress, Silent};
use crate::optimizer::Optimizer;
use crate::outdir::{retry_while_busy, Claim, Sum};
use crate::output::plot::{self, Dash, Figure, Legend, Series};
use crate::output::style::{OptimizerColor as _, Style};
use crate::study::{self, RunConfig, SpaceChoice};

/// A sweep: the base run configuration and what varies.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepConfig {
    pub base: RunConfig,
    pub widths: Vec<usize>,
    /// Seeds base.seed, base.seed + 1, ..., base.seed + seeds - 1.
    pub seeds: usize,
    pub optimizers: Vec<Optimizer>,
    /// (I, N): run the jobs whose index is I - 1 modulo N.
    pub shard: Option<(usize, usize)>,
    pub progress: bool,
}

/// Columns of sweep.csv, one row per (m, seed, optimizer).
pub const SWEEP_COLUMNS: [&str; 10] = [
    "m",
    "seed",
    "optimizer",
    "final_loss_weight",
    "final_loss_error",
    "max_kernel_drift",
    "max_weight_drift",
    "max_pattern_change_frac",
    "max_loss_gap",
    "final_test_gap",
];

/// One row of sweep.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepRow {
    pub m: usize,
    pub seed: u64,
    pub optimizer: Optimizer,
    pub final_loss_weight: f64,
    pub final_loss_error: f64,
    /// max_t |H(t) - H(0)|_F.
    pub max_kernel_drift: f64,
    /// max_t max_r |w_r(t) - w_r(0)|.
    pub max_weight_drift: f64,
    pub max_pattern_change_frac: f64,
    /// max_t |L_weight(t) - L_error(t)| / L(0).
    pub max_loss_gap: f64,
    /// test_gap at T (NaN without held-out points).
    pub final_test_gap: f64,
}

impl SweepRow {
    fn values(&self) -> [f64; 7] {
        [
            self.final_loss_weight,
            self.final_loss_error,
            self.max_kernel_drift,
            self.max_weight_drift,
            self.max_pattern_change_frac,
            self.max_loss_gap,
            self.final_test_gap,
        ]
    }
}

/// The most runs one sweep may hold (the job list is built before the first run).
pub const MAX_JOBS: usize = 1_000_000;

impl SweepConfig {
    pub fn validate(&self) -> Result<(), InputError> {
        self.base.validate()?;
        if self.widths.is_empty() || self.widths.contains(&0) {
            return Err(InputError::option(
                "widths",
                "give a comma-separated list of widths >= 1, e.g. 100,400,1600",
            ));
        }
        if let Some(m) = first_repeat(&self.widths) {
            return Err(InputError::option(
                "widths",
                format!("{m} appears twice; give each width once"),
            ));
        }
        if let Some(o) = first_repeat(&self.optimizers) {
            return Err(InputError::option(
                "optimizers",
                format!("{} appears twice; give each optimizer once", o.name()),
            ));
        }
        if self.optimizers.is_empty() {
            return Err(InputError::option("optimizers", "give at least one"));
        }
        if self.seeds == 0 {
            return Err(InputError::option("seeds", "0 must be at least 1"));
        }
        if self.base.seed.checked_add(self.seeds as u64 - 1).is_none() {
            return Err(InputError::option(
                "seeds",
                format!(
                    "{} seeds from --seed {} run past the largest seed {}; lower --seed",
                    self.seeds,
                    self.base.seed,
                    u64::MAX
                ),
            ));
        }
        let jobs = self
            .widths
            .len()
            .checked_mul(self.seeds)
            .and_then(|k| k.checked_mul(self.optimizers.len()));
        if jobs.is_none_or(|k| k > MAX_JOBS) {
            return Err(InputError::option(
                "seeds",
                format!(
                    "{} widths x {} seeds x {} optimizers is more than {MAX_JOBS} runs",
                    self.widths.len(),
                    self.seeds,
                    self.optimizers.len()
                ),
            ));
        }
        crate::study::validate::check_sweep(
            &self.base,
            &self.widths,
            jobs.unwrap_or(0),
            rayon::current_num_threads(),
        )?;
        if let Some((i, n)) = self.shard {
            if n == 0 || i == 0 || i > n {
                return Err(InputError::option(
                    "shard",
                    format!("{i}/{n} must be I/N with 1 <= I <= N"),
                ));
            }
        }
        if self.base.init.is_some() {
            return Err(InputError::option(
                "init",
                "a sweep varies m; --init fixes it, drop one of them",
            ));
        }
        Ok(())
    }

    /// Every (m, seed, optimizer) of the sweep, in table order, with its index (of a
    /// validated configuration: seeds past u64::MAX are not made up by wrapping to 0).
    pub fn jobs(&self) -> Vec<(usize, usize, u64, Optimizer)> {
        let mut jobs = Vec::new();
        for &m in &self.widths {
            for seed in (0..self.seeds as u64).map_while(|s| self.base.seed.checked_add(s)) {
                for &opt in &self.optimizers {
                    jobs.push((jobs.len(), m, seed, opt));
                }
            }
        }
        match self.shard {
            Some((i, n)) => jobs.into_iter().filter(|j| j.0 % n == i - 1).collect(),
            None => jobs,
        }
    }

    /// Name of the CSV this sweep (or shard) writes.
    pub fn csv_name(&self) -> String {
        match self.shard {
            Some((i, n)) => shard_name(i, n),
            None => "sweep.csv".into(),
        }
    }

    /// What makes two shards parts of one sweep: the run's configuration less what the sweep
    /// sets itself (m, optimizer, space, twin, --out),
    /// widths, seeds, optimizers, the version, and the --data/--test files by size and sum.
    pub fn identity(&self) -> Result<serde_json::Value, InputError> {
        let base = RunConfig {
            data: None,
            init: None,
            test: None,
            ..self.base.clone()
        };
        let mut run = match serde_json::to_value(&base) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        for key in ["out", "m", "optimizer", "space", "discrete", "progress"] {
            run.remove(key);
        }
        let sum = |path: &Option<PathBuf>| -> Result<serde_json::Value, InputError> {
            match path {
                None => Ok(serde_json::Value::Null),
                Some(p) => {
                    let bytes = std::fs::read(p).map_err(|e| InputError::File {
                        path: p.clone(),
                        msg: e.to_string(),
                    })?;
                    Ok(serde_json::to_value(Sum::of(&bytes)).unwrap_or_default())
                }
            }
        };
        Ok(serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "widths": self.widths,
            "seeds": self.seeds,
            "optimizers": self.optimizers.iter().map(|o| o.name()).collect::<Vec<_>>(),
            "run": run,
            "data": sum(&self.base.data)?,
            "test": sum(&self.base.test)?,
        }))
    }
}

/// The first value that appears twice.
fn first_repeat<T: PartialEq + Copy>(values: &[T]) -> Option<T> {
    values
        .iter()
        .enumerate()
        .find(|(k, v)| values[..*k].contains(v))
        .map(|(_, v)| *v)
}

fn shard_name(i: usize, n: usize) -> String {
    format!("sweep-shard-{i}-of-{n}.csv")
}

/// The comment that starts a shard's CSV.
const SHARD_TAG: &str = "# ntkdyn sweep shard: ";

/// The record a shard's CSV begins with: its index I of N and its sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ShardRecord {
    pub index: usize,
    pub count: usize,
    pub sweep: serde_json::Value,
}

/// A shard's CSV: the record line, then the rows as [`to_csv`] writes them.
pub fn shard_csv(cfg: &SweepConfig, rows: &[SweepRow]) -> Result<String, InputError> {
    let (index, count) = cfg
        .shard
        .ok_or_else(|| InputError::option("shard", "a shard's CSV needs --shard I/N"))?;
    let record = ShardRecord {
        index,
        count,
        sweep: cfg.identity()?,
    };
    let line = serde_json::to_string(&record).unwrap_or_default();
    Ok(format!("{SHARD_TAG}{line}\n{}", to_csv(rows)))
}

/// One run of the sweep: both spaces, no discrete twin.
pub fn run_one(
    base: &RunConfig,
    m: usize,
    seed: u64,
    optimizer: Optimizer,
) -> Result<SweepRow, Error> {
    run_one_kept(base, (m, seed, optimizer), false).map(|o| o.row)
}

/// The row of sweep.csv of a run of both spaces.
fn row_of(report: &study::Report, m: usize, seed: u64, optimizer: Optimizer) -> SweepRow {
    let w = report.weight.as_ref().expect("both spaces ran");
    let e = report.error.as_ref().expect("both spaces ran");
    let col = |name: &str| w.table.column(name).unwrap_or_default();
    let max = |v: Vec<f64>| v.into_iter().fold(0.0, f64::max);
    let (lw, le) = (col("loss"), e.table.column("loss").unwrap_or_default());
    let l0 = lw.first().copied().unwrap_or(f64::NAN);
    SweepRow {
        m,
        seed,
        optimizer,
        final_loss_weight: w.final_loss(),
        final_loss_error: e.final_loss(),
        max_kernel_drift: max(col("kernel_drift")),
        max_weight_drift: max(col("max_weight_drift")),
        max_pattern_change_frac: max(col("pattern_change_frac")),
        max_loss_gap: lw
            .iter()
            .zip(&le)
            .map(|(a, b)| (a - b).abs() / l0)
            .fold(0.0, f64::max),
        final_test_gap: w.final_test_gap().unwrap_or(f64::NAN),
    }
}

/// Run the sweep (or its shard) in parallel over jobs, without a progress display.
pub fn run_sweep(cfg: &SweepConfig) -> Result<Vec<SweepRow>, Error> {
    run_sweep_with(cfg, &Silent)
}

/// Run the sweep (or its shard) in parallel over jobs, reporting (when `cfg.progress`) to
/// `progress` on the scale of runs: `start("sweep", jobs)`, then `at(k)` as the k-th run ends
/// (from the thread that ran it), then `done`.
pub fn run_sweep_with(cfg: &SweepConfig, progress: &dyn Progress) -> Result<Vec<SweepRow>, Error> {
    cfg.validate()?;
    let jobs = cfg.jobs();
    let progress = if cfg.progress { progress } else { &Silent };
    progress.start("sweep", jobs.len() as f64);
    let finished = AtomicUsize::new(0);
    let rows: Result<Vec<SweepRow>, Error> = jobs
        .par_iter()
        .map(|&(_, m, seed, opt)| {
            let row = run_one(&cfg.base, m, seed, opt);
            progress.at((finished.fetch_add(1, Ordering::Relaxed) + 1) as f64);
            row
        })
        .collect();
    progress.done();
    rows
}

/// sweep.csv text.
pub fn to_csv(rows: &[SweepRow]) -> String {
    let mut out = SWEEP_COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let mut cells = vec![
            r.m.to_string(),
            r.seed.to_string(),
            r.optimizer.name().to_string(),
        ];
        cells.extend(r.values().iter().map(|v| format_f64(*v)));
        out += &cells.join(",");
        out.push('\n');
    }
    out
}

/// Read a sweep CSV written by [`to_csv`].
pub fn read_csv(path: &Path) -> Result<Vec<SweepRow>, InputError> {
    let err = |line: u64, msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_path(path)
        .map_err(|e| InputError::File {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
    let header_record = reader.headers().map_err(|e| err(1, e.to_string()))?;
    let header_line = header_record.position().map_or(1, |p| p.line());
    let header: Vec<String> = header_record.iter().map(str::to_string).collect();
    if header != SWEEP_COLUMNS {
        return Err(err(
            header_line,
            format!(
                "header {} is not {}",
                header.join(","),
                SWEEP_COLUMNS.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let line = header_line + k as u64 + 1;
        let record = record.map_err(|e| err(line, e.to_string()))?;
        let line = record.position().map_or(line, |p| p.line());
        let num = |j: usize| -> Result<f64, InputError> {
            record[j].parse::<f64>().map_err(|_| {
                err(
                    line,
                    format!("column {}: '{}' is not a number", j + 1, &record[j]),
                )
            })
        };
        let optimizer = Optimizer::from_name(&record[2])
            .ok_or_else(|| err(line, format!("unknown optimizer '{}'", &record[2])))?;
        rows.push(SweepRow {
            m: record[0]
                .parse()
                .ok()
                .filter(|&m: &usize| m >= 1)
                .ok_or_else(|| err(line, format!("m = '{}' is not a width (>= 1)", &record[0])))?,
            seed: record[1]
                .parse()
                .map_err(|_| err(line, format!("seed = '{}' is not a seed", &record[1])))?,
            optimizer,
            final_loss_weight: num(3)?,
            final_loss_error: num(4)?,
            max_kernel_drift: num(5)?,
            max_weight_drift: num(6)?,
            max_pattern_change_frac: num(7)?,
            max_loss_gap: num(8)?,
            final_test_gap: num(9)?,
        });
    }
    Ok(rows)
}

/// Rows in table order: by m, seed, then optimizer as gf, hbf, nag.
pub fn sort_rows(rows: &mut [SweepRow]) {
    rows.sort_by_key(|r| (r.m, r.seed, r.optimizer));
}

/// The (I, N) of a name `sweep-shard-I-of-N.csv`.
fn parse_shard_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("sweep-shard-")?.strip_suffix(".csv")?;
    let (i, n) = rest.split_once("-of-")?;
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (1 <= i && i <= n).then_some((i, n))
}

/// The record on the first line of a shard's CSV.
pub fn read_shard_record(path: &Path) -> Result<ShardRecord, InputError> {
    let bad = |msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line: 1,
        msg,
    };
    let file = std::fs::File::open(path).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::io::Read::take(file, 1 << 20)),
        &mut first,
    )
    .map_err(|e| bad(e.to_string()))?;
    let json = first.trim_end().strip_prefix(SHARD_TAG).ok_or_else(|| {
        bad("no record of its sweep (written by an older ntkdyn?); run the shard again".into())
    })?;
    serde_json::from_str(json).map_err(|e| bad(format!("the record of its sweep: {e}")))
}

/// The first place two sweep identities differ, as "key: A here, B there".
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &path),
                    (u, v) => Some(format!(
                        "{path}: {} here, {} there",
                        u.map_or("absent".into(), |u| u.to_string()),
                        v.map_or("absent".into(), |v| v.to_string())
                    )),
                }
            })
        }
        _ if a == b => None,
        _ => Some(format!(
            "{}: {a} here, {b} there",
            if at.is_empty() { "sweep" } else { at }
        )),
    }
}

/// The (m, seed, optimizer) of the jobs of shard I of N of a sweep identity.
fn shard_jobs(sweep: &serde_json::Value, i: usize, n: usize) -> Option<Vec<(usize, u64, String)>> {
    let widths: Vec<usize> = serde_json::from_value(sweep.get("widths")?.clone()).ok()?;
    let seeds: u64 = sweep.get("seeds")?.as_u64()?;
    let seed: u64 = sweep.get("run")?.get("seed")?.as_u64()?;
    let optimizers: Vec<String> = serde_json::from_value(sweep.get("optimizers")?.clone()).ok()?;
    let total = (widths.len() as u64)
        .checked_mul(seeds)?
        .checked_mul(optimizers.len() as u64)?;
    if total > MAX_JOBS as u64 {
        return None;
    }
    let mut jobs = Vec::new();
    let mut k = 0usize;
    for &m in &widths {
        for s in 0..seeds {
            for o in &optimizers {
                if k % n == i - 1 {
                    jobs.push((m, seed.checked_add(s)?, o.clone()));
                }
                k += 1;
            }
        }
    }
    Some(jobs)
}

/// Join the shard CSVs of `dir` (sweep-shard-I-of-N.csv) into the table of the whole sweep,
/// refusing shards that do not form one: missing or duplicate indices, shards of two splits
/// (N), of another sweep, or rows that are not exactly a shard's jobs (m = 0 included).
pub fn merge(dir: &Path) -> Result<Vec<SweepRow>, Error> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| InputError::File {
            path: dir.to_path_buf(),
            msg: e.to_string(),
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sweep-shard-") && n.ends_with(".csv"))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(InputError::File {
            path: dir.to_path_buf(),
            msg: "no sweep-shard-*.csv files to merge".into(),
        }
        .into());
    }
    let mismatch = |msg: String| -> Error { InputError::Shards(msg).into() };
    let file_name = |p: &Path| -> String {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    // Every shard: its name's I of N, its record, and the record agreeing with the name.
    let mut shards: Vec<(PathBuf, ShardRecord)> = Vec::new();
    for p in &paths {
        let name = file_name(p);
        let (i, n) = parse_shard_name(&name).ok_or_else(|| InputError::File {
            path: p.clone(),
            msg: "not a shard name sweep-shard-I-of-N.csv with 1 <= I <= N".into(),
        })?;
        let record = read_shard_record(p)?;
        if (record.index, record.count) != (i, n) {
            return Err(InputError::Csv {
                path: p.clone(),
                line: 1,
                msg: format!(
                    "records shard {} of {}, but its name says {i} of {n}",
                    record.index, record.count
                ),
            }
            .into());
        }
        shards.push((p.clone(), record));
    }
    let (first_path, first) = &shards[0];
    for (p, r) in &shards[1..] {
        if r.count != first.count {
            return Err(mismatch(format!(
                "{} is shard {} of {} but {} is shard {} of {}: shards of two different splits in {}; remove the stale ones",
                file_name(p),
                r.index,
                r.count,
                file_name(first_path),
                first.index,
                first.count,
                dir.display()
            )));
        }
        if let Some(diff) = first_difference(&r.sweep, &first.sweep, "") {
            return Err(mismatch(format!(
                "{} belongs to another sweep than {} ({diff})",
                file_name(p),
                file_name(first_path)
            )));
        }
    }
    let n = first.count;
    let missing: Vec<String> = (1..=n)
        .filter(|i| !shards.iter().any(|(_, r)| r.index == *i))
        .map(|i| shard_name(i, n))
        .collect();
    if !missing.is_empty() {
        return Err(mismatch(format!(
            "{} of {n} shards in {}; missing {}",
            n - missing.len(),
            dir.display(),
            missing.join(", ")
        )));
    }
    let mut rows = Vec::new();
    for (p, r) in &shards {
        let mut expected =
            shard_jobs(&r.sweep, r.index, r.count).ok_or_else(|| InputError::Csv {
                path: p.clone(),
                line: 1,
                msg: "the record of its sweep lacks widths, seeds, optimizers or seed".into(),
            })?;
        let mut got: Vec<(usize, u64, String)> = Vec::new();
        let shard_rows = read_csv(p)?;
        for row in &shard_rows {
            got.push((row.m, row.seed, row.optimizer.name().to_string()));
        }
        expected.sort();
        got.sort();
        if got != expected {
            let extra = got
                .iter()
                .find(|j| !expected.contains(j) || got.iter().filter(|g| g == j).count() > 1);
            let lacking = expected.iter().find(|j| !got.contains(j));
            let what = match (extra, lacking) {
                (Some((m, s, o)), _) => format!(
                    "holds m = {m}, seed {s}, {o}, which is not one of its jobs or comes twice"
                ),
                (None, Some((m, s, o))) => format!("lacks its run m = {m}, seed {s}, {o}"),
                (None, None) => "does not hold its jobs".into(),
            };
            return Err(InputError::File {
                path: p.clone(),
                msg: format!("shard {} of {} {what}", r.index, r.count),
            }
            .into());
        }
        rows.extend(shard_rows);
    }
    sort_rows(&mut rows);
    Ok(rows)
}

/// The files a sweep reads (--data, --test): never written over.
fn sweep_inputs(cfg: &SweepConfig) -> Vec<(&'static str, &Path)> {
    crate::output::files::inputs(&cfg.base)
}

/// Write a shard's CSV (its record first) into `dir`, through a claim that keeps the other
/// shards and waits while another shard commits.
pub fn write_shard(
    cfg: &SweepConfig,
    rows: &[SweepRow],
    dir: &Path,
) -> Result<Vec<PathBuf>, Error> {
    let name = cfg.csv_name();
    let text = shard_csv(cfg, rows)?;
    let inputs = sweep_inputs(cfg);
    let mut claim = retry_while_busy(std::time::Duration::from_secs(600), || {
        Claim::update(dir, &[name.as_str()], &inputs, false)
    })?;
    claim.put(&name, text.as_bytes())?;
    Ok(claim.commit()?.written)
}

/// Write what a sweep run writes: a shard's CSV with its record, or the whole sweep's
/// sweep.csv and sweep.svg (one whole run of DIR).
pub fn write_run(cfg: &SweepConfig, rows: &[SweepRow], dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if cfg.shard.is_some() {
        return write_shard(cfg, rows, dir);
    }
    let mut claim = Claim::replace(dir, &["sweep.csv", "sweep.svg"], &sweep_inputs(cfg), false)?;
    claim.put("sweep.csv", to_csv(rows).as_bytes())?;
    if let Ok(svg) = plot::try_render_grid(&figure(rows, &Style::default()), 3) {
        claim.put("sweep.svg", svg.as_bytes())?;
    }
    Ok(claim.commit()?.written)
}

/// A panel of the sweep figure: title, axis label and the value of a row.
type Quantity = (&'static str, &'static str, fn(&SweepRow) -> f64);

/// The sweep figure: each quantity against m on log-log axes, mean over seeds with the
/// min-max band, per optimizer, and the reference slope m^(-1/2).
pub fn figure(rows: &[SweepRow], style: &Style) -> Vec<Figure> {
    let mut quantities: Vec<Quantity> = vec![
        ("Kernel drift", "max_t ‖H(t) − H(0)‖_F", |r| {
            r.max_kernel_drift
        }),
        ("Weight drift", "max_t max_r ‖w_r(t) − w_r(0)‖", |r| {
            r.max_weight_drift
        }),
        ("Activation changes", "max_t share of changed signs", |r| {
            r.max_pattern_change_frac
        }),
        ("Weight vs error space", "max_t |L_w − L_e| / L(0)", |r| {
            r.max_loss_gap
        }),
    ];
    if rows.iter().any(|r| r.final_test_gap.is_finite()) {
        quantities.push(("Network vs kernel predictor", "test_gap at T", |r| {
            r.final_test_gap
        }));
    }
    let mut optimizers: Vec<Optimizer> = Vec::new();
    for r in rows {
        if !optimizers.contains(&r.optimizer) {
            optimizers.push(r.optimizer);
        }
    }
    let mut widths: Vec<usize> = rows.iter().map(|r| r.m).collect();
    widths.sort_unstable();
    widths.dedup();
    quantities
        .into_iter()
        .map(|(title, label, get)| {
            let mut fig = Figure::new(title, "width m", label);
            fig.log_x = true;
            fig.log_y = true;
            fig.width = 420;
            fig.height = 380;
            fig.legend = Legend::LowerLeft;
            let mut anchor = None;
            for &opt in &optimizers {
                let mut points = Vec::new();
                let mut band = Vec::new();
                for &m in &widths {
                    let v: Vec<f64> = rows
                        .iter()
                        .filter(|r| r.m == m && r.optimizer == opt)
                        .map(get)
                        .filter(|v| v.is_finite())
                        .collect();
                    if v.is_empty() {
                        continue;
                    }
                    let mean = v.iter().sum::<f64>() / v.len() as f64;
                    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    points.push((m as f64, mean));
                    band.push((m as f64, lo, hi));
                }
                anchor = anchor.or(points.first().copied());
                fig.series.push(Series {
                    label: opt.name().to_uppercase(),
                    points,
                    color: opt.color(),
                    dash: Dash::Solid,
                    band,
                });
            }
            if let (Some((m0, v0)), Some(&last)) = (anchor, widths.last()) {
                let slope: Vec<(f64, f64)> = widths
                    .iter()
                    .filter(|&&m| m as f64 >= m0)
                    .chain(std::iter::once(&last))
                    .map(|&m| (m as f64, v0 * (m0 / m as f64).sqrt()))
                    .collect();
                fig.series.push(Series {
                    label: "slope m^(−1/2)".into(),
                    points: slope,
                    color: plot::BOUND_COLOR,
                    dash: Dash::Dashed,
                    band: Vec::new(),
                });
            }
            if let Some(w) = style.width {
                fig.width = w;
            }
            if let Some(h) = style.height {
                fig.height = h;
            }
            fig
        })
        .collect()
}

/// Write a table of sweep rows as `csv_name` into `dir` and, with `with_figure`, sweep.svg
/// (skipped when it cannot be drawn), through a claim that keeps DIR's other recorded files
/// (the shards of a merge stay).
pub fn write(
    rows: &[SweepRow],
    dir: &Path,
    csv_name: &str,
    with_figure: bool,
) -> Result<Vec<PathBuf>, OutputError> {
    let mut names = vec![csv_name];
    if with_figure {
        names.push("sweep.svg");
    }
    let mut claim = Claim::update(dir, &names, &[], false)?;
    claim.put(csv_name, to_csv(rows).as_bytes())?;
    if with_figure {
        if let Ok(svg) = plot::try_render_grid(&figure(rows, &Style::default()), 3) {
            claim.put("sweep.svg", svg.as_bytes())?;
        }
    }
    Ok(claim.commit()?.written)
}

/// Parse `I/N` of --shard.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("'{s}' is not I/N"))?;
    let i: usize = i.trim().parse().map_err(|_| format!("'{s}' is not I/N"))?;
    let n: usize = n.trim().parse().map_err(|_| format!("'{s}' is not I/N"))?;
    Ok((i, n))
}

// issue 16: what a sweep records beside sweep.csv, and the runs it keeps

/// The record of a whole sweep beside sweep.csv.
pub const SWEEP_JSON: &str = "sweep.json";

/// The files a kept run writes into its folder (`--keep-runs`).
pub const KEPT_FILES: [&str; 3] = ["weight.csv", "error.csv", "summary.json"];

/// One run of a sweep as sweep.json records it: what the run's data and schedule gave.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepRun {
    pub m: usize,
    pub seed: u64,
    pub optimizer: Optimizer,
    pub n: usize,
    pub d: usize,
    /// lambda0 of the run: --lambda0, or lambda_min(Hinf) of its data.
    pub lambda0: f64,
    /// The friction b of a constant-friction flow (hbf, nagsc: sqrt(2 lambda0) unless
    /// --friction); None for gf and nag.
    pub friction: Option<f64>,
    /// The folder of its files under DIR with --keep-runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<String>,
}

/// The folder of a kept run: `runs/m<M>-seed<S>-<optimizer>`.
pub fn run_folder(m: usize, seed: u64, optimizer: Optimizer) -> String {
    format!("runs/m{m}-seed{seed}-{}", optimizer.name())
}

/// Every file `--keep-runs` writes for the jobs of `cfg`, as names under DIR.
pub fn kept_names(cfg: &SweepConfig) -> Vec<String> {
    cfg.jobs()
        .iter()
        .flat_map(|&(_, m, seed, opt)| {
            KEPT_FILES
                .iter()
                .map(move |f| format!("{}/{f}", run_folder(m, seed, opt)))
        })
        .collect()
}

/// A finished run of a sweep: its row, its record, and (kept) its files by name under DIR.
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    pub row: SweepRow,
    pub run: SweepRun,
    pub files: Vec<(String, Vec<u8>)>,
}

/// [`run_one`], with the run's record and, with `keep`, its CSV files and summary.json.
pub fn run_one_kept(
    base: &RunConfig,
    (m, seed, optimizer): (usize, u64, Optimizer),
    keep: bool,
) -> Result<SweepOutcome, Error> {
    let cfg = RunConfig {
        optimizer,
        m,
        seed,
        space: SpaceChoice::Both,
        discrete: false,
        progress: false,
        ..base.clone()
    };
    let report = study::run(&cfg)?;
    if let Some(e) = report.failure() {
        return Err(e.into());
    }
    let folder = keep.then(|| run_folder(m, seed, optimizer));
    let files = match &folder {
        Some(dir) => crate::output::files::data_files(&report)
            .into_iter()
            .map(|(name, bytes)| (format!("{dir}/{name}"), bytes))
            .collect(),
        None => Vec::new(),
    };
    let friction = match report.damping {
        crate::dynamics::Damping::Constant(b) => Some(b),
        _ => None,
    };
    Ok(SweepOutcome {
        row: row_of(&report, m, seed, optimizer),
        run: SweepRun {
            m,
            seed,
            optimizer,
            n: report.setup.model.n(),
            d: report.setup.model.d(),
            lambda0: report.setup.lambda0,
            friction,
            folder,
        },
        files,
    })
}

/// [`run_sweep_with`], each run also giving its record and (with `keep`) its files.
pub fn run_sweep_kept(
    cfg: &SweepConfig,
    keep: bool,
    progress: &dyn Progress,
) -> Result<Vec<SweepOutcome>, Error> {
    cfg.validate()?;
    let jobs = cfg.jobs();
    let progress = if cfg.progress { progress } else { &Silent };
    progress.start("sweep", jobs.len() as f64);
    let finished = AtomicUsize::new(0);
    let outcomes: Result<Vec<SweepOutcome>, Error> = jobs
        .par_iter()
        .map(|&(_, m, seed, opt)| {
            let outcome = run_one_kept(&cfg.base, (m, seed, opt), keep);
            progress.at((finished.fetch_add(1, Ordering::Relaxed) + 1) as f64);
            outcome
        })
        .collect();
    progress.done();
    outcomes
}

/// sweep.json: the sweep's whole configuration (the base run's, widths, seeds, optimizers),
/// n, d, T and eta, and per run its m, seed, optimizer, lambda0 and friction b.
pub fn sweep_json(cfg: &SweepConfig, runs: &[SweepRun]) -> String {
    let n = runs.first().map_or(cfg.base.n, |r| r.n);
    let d = runs.first().map_or(cfg.base.d, |r| r.d);
    let value = serde_json::json!({
        "ntkdyn_version": env!("CARGO_PKG_VERSION"),
        "command": "sweep",
        "config": cfg.base,
        "widths": cfg.widths,
        "seeds": cfg.seeds,
        "optimizers": cfg.optimizers.iter().map(|o| o.name()).collect::<Vec<_>>(),
        "n": n,
        "d": d,
        "t_end": cfg.base.t_end,
        "eta": if cfg.base.eta_auto { serde_json::Value::Null } else { serde_json::json!(cfg.base.eta) },
        "columns": SWEEP_COLUMNS,
        "runs": runs,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}
