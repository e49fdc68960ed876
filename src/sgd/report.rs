//! One `ntkdyn sgd` study: every process (SGD and the SDE over S seeds, GD, GF, the exact
//! E\[L]) in every chosen space, their bands, the stability edge, and the text of sgd.csv,
//! bands.csv and summary.json.
//!
//! Cost: a weight-space SGD step is one sign pass, J_S W and J_S^T beta (about 1.5 full
//! gradients), a weight-space SDE step the same L times per SGD step; error space costs
//! O(n^2) a step. The exact E\[L] costs two n x n products a step and the stability edge
//! about 60 O(n^4) tests: they are skipped, with a warning, beyond [`ORACLE_FLOPS`] and
//! [`EDGE_MAX_N`].

use nalgebra::{DMatrix, DVector};
use rayon::prelude::*;
use serde_json::json;
use std::time::Instant;

use super::bands::{band, Band};
use super::oracle::{expected_loss, Edge};
use super::sde::{sde_error, sde_weight, Noise, Scheme};
use super::twin::{sgd_error, sgd_weight, stream, stream_seed, Batches, SDE_STREAM, SGD_STREAM};
use super::{Path, Process, Recording, SgdConfig, Space};
use crate::dynamics::Damping;
use crate::error::{Error, InputError};
use crate::integrate::{output_times, Stop};
use crate::io::format_f64;
use crate::observe::{Progress, Silent};
use crate::optimizer::twin::{self as discrete, Twin};
use crate::optimizer::Optimizer;
use crate::study::validate::MAX_ITERATES;
use crate::study::{self, Observer, RunConfig, Setup, SpaceChoice, SpaceRun};
use crate::theory::exact::ExactSolution;

/// Most flops (2 n^3 a step) the exact E\[L] may take; beyond, it is skipped with a warning.
pub const ORACLE_FLOPS: f64 = 2e11;
/// Largest n for which the stability edge (O(n^4) a test) is computed.
pub const EDGE_MAX_N: usize = 200;

/// What an `ntkdyn sgd` study computed.
#[derive(Clone, Debug)]
pub struct SgdReport {
    /// The configuration, with the n, d and m the files gave.
    pub config: SgdConfig,
    pub setup: Setup,
    /// c_B of the batch's noise.
    pub c_b: f64,
    pub recording: Recording,
    /// Every run, by space, process and seed.
    pub paths: Vec<Path>,
    /// One band per process and space (deterministic processes too: q10 = q90 = median).
    pub bands: Vec<Band>,
    /// The mean-square stability edge of SGD with the error space's kernel (None: skipped).
    pub eta_crit: Option<f64>,
    /// 2/lambda_max of the error space's kernel: GD's edge.
    pub gd_edge: f64,
    /// Gradient flow in weight space, as the run commands integrate it.
    pub gf_weight: Option<SpaceRun>,
    /// Wall seconds per (process, space).
    pub wall_seconds: Vec<(Process, Space, f64)>,
    pub warnings: Vec<String>,
}

/// Run a study in memory, without a display.
pub fn run(cfg: &SgdConfig) -> Result<SgdReport, Error> {
    run_with(cfg, &Silent)
}

/// Run a study, showing the problem once built and then progress (when `cfg.run.progress`)
/// to `observer`. Runs on a thread of rayon's pool, as [`study::run_with`] does.
pub fn run_with(cfg: &SgdConfig, observer: &dyn Observer) -> Result<SgdReport, Error> {
    cfg.validate()?;
    let setup = study::prepare(&cfg.run)?;
    cfg.check_batch(setup.model.n())?;
    let last = last_iterate(cfg.run.t_end, setup.eta);
    if last as f64 * cfg.sde_substeps as f64 > MAX_ITERATES {
        return Err(InputError::option(
            "sde-substeps",
            format!(
                "{} Euler-Maruyama steps per SGD step over {last} SGD steps are more than {} steps per run; lower --sde-substeps or --t-end, or raise --eta",
                cfg.sde_substeps,
                format_f64(MAX_ITERATES)
            ),
        )
        .into());
    }
    if cfg.run.progress {
        observer.prepared(&cfg.run, &setup);
    }
    let progress: &dyn Progress = if cfg.run.progress { observer } else { &Silent };
    Ok(rayon::scope(|_| execute(cfg, setup, progress)))
}

/// The last SGD iterate with t_k = k eta <= T.
pub fn last_iterate(t_end: f64, eta: f64) -> usize {
    (t_end / eta * (1.0 + 1e-12)).floor() as usize
}

/// Runs s = 0..S of `one`, in parallel and collected in seed order, reporting the runs done
/// to `progress` from the calling thread (the display is per thread).
fn seeded(
    progress: &dyn Progress,
    what: &str,
    seeds: usize,
    one: impl Fn(usize) -> Path + Sync,
) -> Vec<Path> {
    let chunk = rayon::current_num_threads().max(1);
    progress.start(what, seeds as f64);
    let mut out = Vec::with_capacity(seeds);
    for start in (0..seeds).step_by(chunk) {
        let end = (start + chunk).min(seeds);
        out.extend((start..end).into_par_iter().map(&one).collect::<Vec<_>>());
        progress.at(end as f64);
    }
    progress.done();
    out
}

fn execute(cfg: &SgdConfig, setup: Setup, progress: &dyn Progress) -> SgdReport {
    let model = &setup.model;
    let n = model.n();
    let eta = setup.eta;
    let seed = cfg.run.seed;
    let c_b = cfg.sampling.c_b(n, cfg.batch);
    let last = last_iterate(cfg.run.t_end, eta);
    let rec = Recording::new(last, cfg.run.samples);
    let scheme = Scheme {
        eta,
        substeps: cfg.sde_substeps,
        c_b,
    };
    // One lane per run when the runs fill the threads (the engine's bits do not depend on
    // its lanes): parallel runs beat parallel products of one run.
    let lanes = if cfg.seeds >= rayon::current_num_threads() {
        1
    } else {
        0
    };
    let batches = |s: usize| Batches::new(n, cfg.batch, cfg.sampling, stream(seed, SGD_STREAM, s));
    let noise = |s: usize| Noise::new(n, stream(seed, SDE_STREAM, s));
    let mut paths = Vec::new();
    let mut wall = Vec::new();
    let mut warnings = setup.warnings.clone();
    let mut timed = |process, space, f: &mut dyn FnMut() -> Vec<Path>| {
        let started = Instant::now();
        let p = f();
        wall.push((process, space, started.elapsed().as_secs_f64()));
        p
    };
    let s = cfg.seeds;
    let weight = matches!(cfg.run.space, SpaceChoice::Weight | SpaceChoice::Both);
    let error = matches!(cfg.run.space, SpaceChoice::Error | SpaceChoice::Both);
    let mut gf_weight = None;
    if weight {
        let w0 = &setup.w0;
        paths.extend(timed(Process::Sgd, Space::Weight, &mut || {
            seeded(progress, "SGD weight space, runs", s, |k| {
                sgd_weight(model, w0, eta, rec, batches(k), lanes, k)
            })
        }));
        paths.extend(timed(Process::Sde, Space::Weight, &mut || {
            seeded(progress, "SDE weight space, runs", s, |k| {
                sde_weight(model, w0, scheme, rec, noise(k), lanes, k)
            })
        }));
        paths.extend(timed(Process::Gd, Space::Weight, &mut || {
            let run = discrete::run(model, w0, Twin::gd(), eta, cfg.run.t_end);
            vec![Path {
                process: Process::Gd,
                space: Space::Weight,
                seed: None,
                points: run
                    .iterates
                    .iter()
                    .filter(|i| rec.keeps(i.k))
                    .map(|i| (i.k, i.t, i.loss))
                    .collect(),
                diverged_at: run.diverged_at,
            }]
        }));
        paths.extend(timed(Process::Gf, Space::Weight, &mut || {
            let gf_cfg = RunConfig {
                optimizer: Optimizer::Gf,
                space: SpaceChoice::Weight,
                ..setup.config.clone()
            };
            let run = study::run_weight(&gf_cfg, &setup, Damping::None, progress);
            let t = run.table.column("t").unwrap_or_default();
            let loss = run.table.column("loss").unwrap_or_default();
            let diverged_at = match run.stop {
                Stop::Completed => None,
                Stop::Observer { t } => Some(t),
                Stop::Failed(_) => t.last().copied(),
            };
            let path = Path {
                process: Process::Gf,
                space: Space::Weight,
                seed: None,
                points: t
                    .into_iter()
                    .zip(loss)
                    .enumerate()
                    .map(|(k, (t, l))| (k, t, l))
                    .collect(),
                diverged_at,
            };
            gf_weight = Some(run);
            vec![path]
        }));
    }
    let (h, extremes) = setup.error_kernel(cfg.run.kernel);
    let delta0 = model.residual(&setup.w0.as_view());
    if error {
        paths.extend(timed(Process::Sgd, Space::Error, &mut || {
            seeded(progress, "SGD error space, runs", s, |k| {
                sgd_error(h, &delta0, eta, rec, batches(k), k)
            })
        }));
        paths.extend(timed(Process::Sde, Space::Error, &mut || {
            seeded(progress, "SDE error space, runs", s, |k| {
                sde_error(h, &delta0, scheme, rec, noise(k), k)
            })
        }));
        paths.extend(timed(Process::Gd, Space::Error, &mut || {
            vec![gd_error(h, &delta0, eta, rec)]
        }));
        paths.extend(timed(Process::Gf, Space::Error, &mut || {
            let exact = ExactSolution::new(h, &delta0, Damping::None);
            let points = output_times(cfg.run.t_end, cfg.run.samples)
                .into_iter()
                .enumerate()
                .map(|(k, t)| (k, t, 0.5 * exact.at(t).0.norm_squared()))
                .collect();
            vec![Path {
                process: Process::Gf,
                space: Space::Error,
                seed: None,
                points,
                diverged_at: None,
            }]
        }));
        let flops = 2.0 * (n as f64).powi(3) * last as f64;
        if flops <= ORACLE_FLOPS {
            paths.extend(timed(Process::Exact, Space::Error, &mut || {
                vec![expected_loss(h, &delta0, eta, c_b, rec)]
            }));
        } else {
            warnings.push(format!(
                "the exact E[L] is skipped: n = {n} over {last} steps needs {flops:.1e} flops (at most {ORACLE_FLOPS:.0e})"
            ));
        }
    }
    let gd_edge = 2.0 / extremes.1;
    let eta_crit = if n <= EDGE_MAX_N {
        Some(Edge::new(h).edge(c_b))
    } else {
        warnings.push(format!(
            "eta_crit is skipped: n = {n} is above {EDGE_MAX_N} (the test costs O(n^4))"
        ));
        None
    };
    if let Some(e) = eta_crit.filter(|e| eta >= *e) {
        warnings.push(format!(
            "eta = {} is at or above SGD's mean-square stability edge eta_crit = {e:.4e} (B = {}, {} replacement): E[L] grows",
            format_f64(eta),
            cfg.batch,
            cfg.sampling
        ));
    }
    for (process, space) in combos(&paths) {
        let diverged = paths
            .iter()
            .filter(|p| p.process == process && p.space == space && p.diverged_at.is_some())
            .count();
        if diverged > 0 {
            warnings.push(format!(
                "{} in {} space: {diverged} run(s) stopped at a non-finite loss; their rows up to there were written",
                process.name(),
                space.name()
            ));
        }
    }
    let bands = combos(&paths)
        .into_iter()
        .filter_map(|(process, space)| {
            let runs: Vec<&Path> = paths
                .iter()
                .filter(|p| p.process == process && p.space == space)
                .collect();
            band(&runs)
        })
        .collect();
    SgdReport {
        config: SgdConfig {
            run: setup.config.clone(),
            ..cfg.clone()
        },
        c_b,
        recording: rec,
        paths,
        bands,
        eta_crit,
        gd_edge,
        gf_weight,
        wall_seconds: wall,
        warnings,
        setup,
    }
}

/// GD in error space: Delta_{k+1} = (I - eta H) Delta_k.
pub fn gd_error(h: &DMatrix<f64>, delta0: &DVector<f64>, eta: f64, rec: Recording) -> Path {
    let mut delta = delta0.clone();
    Path::record(Process::Gd, Space::Error, None, eta, rec, |k| {
        if k > 0 {
            let hd = h * &delta;
            delta -= hd * eta;
        }
        0.5 * delta.norm_squared()
    })
}

/// The (process, space) pairs present, in order of first appearance.
fn combos(paths: &[Path]) -> Vec<(Process, Space)> {
    let mut out: Vec<(Process, Space)> = Vec::new();
    for p in paths {
        if !out.contains(&(p.process, p.space)) {
            out.push((p.process, p.space));
        }
    }
    out
}

/// Header of sgd.csv.
pub const SGD_COLUMNS: [&str; 6] = ["process", "space", "seed", "k", "t", "loss"];
/// Header of bands.csv: the contract's columns, then the number of runs at that time.
pub const BAND_COLUMNS: [&str; 9] = [
    "process", "space", "t", "median", "q10", "q90", "mean", "se", "runs",
];

impl SgdReport {
    /// sgd.csv: one row per kept iterate of every run (seed empty for GD, GF and exact).
    pub fn sgd_csv(&self) -> String {
        let mut out = SGD_COLUMNS.join(",") + "\n";
        for p in &self.paths {
            let seed = p.seed.map(|s| s.to_string()).unwrap_or_default();
            for &(k, t, l) in &p.points {
                out += &format!(
                    "{},{},{seed},{k},{},{}\n",
                    p.process.name(),
                    p.space.name(),
                    format_f64(t),
                    format_f64(l)
                );
            }
        }
        out
    }

    /// bands.csv: per process, space and time the statistics over seeds.
    pub fn bands_csv(&self) -> String {
        let mut out = BAND_COLUMNS.join(",") + "\n";
        for b in &self.bands {
            for r in &b.rows {
                out += &format!(
                    "{},{},{},{},{},{},{},{},{}\n",
                    b.process.name(),
                    b.space.name(),
                    format_f64(r.t),
                    format_f64(r.median),
                    format_f64(r.q10),
                    format_f64(r.q90),
                    format_f64(r.mean),
                    format_f64(r.se),
                    r.runs
                );
            }
        }
        out
    }

    /// The band of a process in a space.
    pub fn band(&self, process: Process, space: Space) -> Option<&Band> {
        self.bands
            .iter()
            .find(|b| b.process == process && b.space == space)
    }

    /// summary.json (keys in alphabetical order, non-finite numbers as null).
    pub fn summary_json(&self) -> String {
        let s = &self.setup;
        let cfg = &self.config;
        let finals: Vec<serde_json::Value> = self
            .bands
            .iter()
            .filter_map(|b| {
                let r = b.rows.last()?;
                Some(json!({
                    "process": b.process.name(),
                    "space": b.space.name(),
                    "t": r.t,
                    "median": r.median,
                    "q10": r.q10,
                    "q90": r.q90,
                    "mean": r.mean,
                    "se": r.se,
                    "runs": r.runs,
                }))
            })
            .collect();
        let wall: serde_json::Map<String, serde_json::Value> = self
            .wall_seconds
            .iter()
            .map(|(p, sp, w)| (format!("{}_{}", p.name(), sp.name()), json!(w)))
            .collect();
        let diverged: Vec<serde_json::Value> = self
            .paths
            .iter()
            .filter_map(|p| {
                p.diverged_at.map(|t| {
                    json!({"process": p.process.name(), "space": p.space.name(), "seed": p.seed, "t": t})
                })
            })
            .collect();
        let gf = self.gf_weight.as_ref().map(|r| {
            json!({
                "solver": r.solver.name(),
                "stats": r.stats,
                "wall_seconds": r.wall_seconds,
            })
        });
        let (_, error_extremes) = s.error_kernel(cfg.run.kernel);
        let value = json!({
            "command": "sgd",
            "config": cfg.run,
            "batch": cfg.batch,
            "sampling": cfg.sampling,
            "seeds": cfg.seeds,
            "sde_substeps": cfg.sde_substeps,
            "n": s.model.n(),
            "d": s.model.d(),
            "m": s.model.m(),
            "lambda0": s.lambda0,
            "h0": {"lambda_min": s.h0_extremes.0, "lambda_max": s.h0_extremes.1},
            "hinf": {"lambda_min": s.hinf_extremes.0, "lambda_max": s.hinf_extremes.1},
            "error_kernel": {"kernel": cfg.run.kernel, "lambda_min": error_extremes.0, "lambda_max": error_extremes.1},
            "eta": s.eta,
            "c_b": self.c_b,
            "dt": s.eta / cfg.sde_substeps as f64,
            "iterates": self.recording.last,
            "kept_every": self.recording.stride,
            "eta_crit": self.eta_crit,
            "two_over_lambda_max": self.gd_edge,
            "mean_square_stable": self.eta_crit.map(|e| s.eta < e),
            "streams": {
                "rule": "run s draws from StdRng::seed_from_u64(splitmix64(splitmix64(seed ^ tag) + s))",
                "sgd_tag": format!("{SGD_STREAM:#018x}"),
                "sde_tag": format!("{SDE_STREAM:#018x}"),
                "sgd_run_0": stream_seed(cfg.run.seed, SGD_STREAM, 0),
                "sde_run_0": stream_seed(cfg.run.seed, SDE_STREAM, 0),
            },
            "final": finals,
            "diverged": diverged,
            "gf_weight": gf,
            "wall_seconds": wall,
            "warnings": self.warnings,
        });
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".into());
        text.push('\n');
        text
    }
}
