//! `ntkdyn sweep`: the same study over widths m and seeds, to watch the kernel stop moving
//! (lazy training): kernel drift, weight drift, pattern changes and the gap between weight and
//! error space against m, with the reference slope m^(-1/2) (Du et al. 2018: the drift of
//! H and of every w_r is O(1/sqrt m)).
//!
//! Runs are independent and deterministic, so a sweep can be split into shards
//! (`--shard I/N`, e.g. one per Slurm array task) whose CSVs `--merge` joins into the table
//! the whole sweep writes.

use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

use crate::error::{Error, InputError, OutputError};
use crate::io::{self, format_f64};
use crate::output::style::{OptimizerColor as _, Style};
use crate::plot::{self, Dash, Figure, Legend, Series};
use crate::run::{self, Optimizer, RunConfig, SpaceChoice};

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

impl SweepConfig {
    pub fn validate(&self) -> Result<(), InputError> {
        self.base.validate()?;
        if self.widths.is_empty() || self.widths.contains(&0) {
            return Err(InputError::option(
                "widths",
                "give a comma-separated list of widths >= 1, e.g. 100,400,1600",
            ));
        }
        if self.seeds == 0 {
            return Err(InputError::option("seeds", "0 must be at least 1"));
        }
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

    /// Every (m, seed, optimizer) of the sweep, in table order, with its index.
    pub fn jobs(&self) -> Vec<(usize, usize, u64, Optimizer)> {
        let mut jobs = Vec::new();
        for &m in &self.widths {
            for s in 0..self.seeds {
                for &opt in &self.optimizers {
                    jobs.push((jobs.len(), m, self.base.seed + s as u64, opt));
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
            Some((i, n)) => format!("sweep-shard-{i}-of-{n}.csv"),
            None => "sweep.csv".into(),
        }
    }
}

/// One run of the sweep: both spaces, no discrete twin.
pub fn run_one(
    base: &RunConfig,
    m: usize,
    seed: u64,
    optimizer: Optimizer,
) -> Result<SweepRow, Error> {
    let cfg = RunConfig {
        optimizer,
        m,
        seed,
        space: SpaceChoice::Both,
        discrete: false,
        progress: false,
        ..base.clone()
    };
    let report = run::run(&cfg)?;
    if let Some(e) = report.failure() {
        return Err(e.into());
    }
    let w = report.weight.as_ref().expect("both spaces ran");
    let e = report.error.as_ref().expect("both spaces ran");
    let col = |name: &str| w.table.column(name).unwrap_or_default();
    let max = |v: Vec<f64>| v.into_iter().fold(0.0, f64::max);
    let (lw, le) = (col("loss"), e.table.column("loss").unwrap_or_default());
    let l0 = lw.first().copied().unwrap_or(f64::NAN);
    Ok(SweepRow {
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
    })
}

/// Run the sweep (or its shard) in parallel over jobs, with a progress bar on stderr.
pub fn run_sweep(cfg: &SweepConfig) -> Result<Vec<SweepRow>, Error> {
    cfg.validate()?;
    let jobs = cfg.jobs();
    let bar = if cfg.progress {
        ProgressBar::new(jobs.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs {msg}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    let rows: Result<Vec<SweepRow>, Error> = jobs
        .par_iter()
        .map(|&(_, m, seed, opt)| {
            let row = run_one(&cfg.base, m, seed, opt);
            bar.inc(1);
            row
        })
        .collect();
    bar.finish_and_clear();
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
    let mut reader = csv::Reader::from_path(path).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| err(1, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect();
    if header != SWEEP_COLUMNS {
        return Err(err(
            1,
            format!(
                "header {} is not {}",
                header.join(","),
                SWEEP_COLUMNS.join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let line = k as u64 + 2;
        let record = record.map_err(|e| err(line, e.to_string()))?;
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
                .map_err(|_| err(line, format!("m = '{}' is not a width", &record[0])))?,
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

/// Join the shard CSVs of `dir` (sweep-shard-*.csv) into one table.
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
    let mut rows = Vec::new();
    for p in &paths {
        rows.extend(read_csv(p)?);
    }
    sort_rows(&mut rows);
    Ok(rows)
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

/// Write the sweep's CSV (or shard CSV) and, for a whole or merged sweep, sweep.svg.
pub fn write(
    rows: &[SweepRow],
    dir: &Path,
    csv_name: &str,
    with_figure: bool,
) -> Result<Vec<PathBuf>, OutputError> {
    io::prepare_dir(dir)?;
    let csv_path = dir.join(csv_name);
    io::write_atomic(&csv_path, to_csv(rows).as_bytes())?;
    let mut written = vec![csv_path];
    if with_figure {
        let path = dir.join("sweep.svg");
        plot::save_grid(&figure(rows, &Style::default()), 3, &path)?;
        written.push(path);
    }
    Ok(written)
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
