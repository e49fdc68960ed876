//! summary.json: one typed struct, written by a run and read back by `ntkdyn plot`.
//!
//! Keys are written in alphabetical order (through a JSON value, as they always were); JSON
//! has no NaN or infinity, so a non-finite number is written as null and read back as NaN.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::dynamics::Damping;
use crate::error::InputError;
use crate::integrate::Solver;
use crate::optimizer::Twin;
use crate::study::{KernelChoice, Report, RunConfig, SpaceRun};
use crate::theory::checks::{DampingRegimes, PlPrediction};
use crate::theory::diagnostics::PlBall;
use crate::theory::lyapunov::{Lyapunov, Monotonicity};

/// lambda_min and lambda_max of a kernel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spectrum {
    pub lambda_min: f64,
    pub lambda_max: f64,
}

/// The damping schedule as summary.json records it: "None", {"Constant": b}, {"Vanishing": gamma}.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum DampingRecord {
    None,
    Constant(f64),
    Vanishing(f64),
}

impl From<Damping> for DampingRecord {
    fn from(d: Damping) -> Self {
        match d {
            Damping::None => DampingRecord::None,
            Damping::Constant(b) => DampingRecord::Constant(b),
            Damping::Vanishing(g) => DampingRecord::Vanishing(g),
        }
    }
}

/// The Lyapunov function of a space and whether it was nonincreasing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LyapunovSummary {
    pub function: Lyapunov,
    #[serde(flatten)]
    pub monotonicity: Monotonicity,
    // issue 19: the high-resolution energies' assumption mu_b <= lambda_min (hbf, nagsc)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_condition: Option<crate::theory::lyapunov::BoundCondition>,
}

/// One space: solver, work, final loss, how it stopped, its theory checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpaceSummary {
    pub solver: Solver,
    pub rtol: f64,
    pub atol: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_step: Option<f64>,
    pub evaluations: u64,
    pub accepted_steps: u64,
    pub rejected_steps: u64,
    /// Activation signs that changed within accepted steps (held-pattern dopri5): the
    /// integrator's `Stats::switches` of a weight-space run.
    pub sign_changes: u64,
    pub wall_seconds: f64,
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub final_loss: f64,
    pub completed: bool,
    pub stopped: Option<String>,
    pub lyapunov: LyapunovSummary,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact_max_relative_error: Option<f64>,
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub inf_pl_ratio: f64,
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub sup_kernel_cond: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pl_ball: Option<PlBall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_floor: Option<crate::theory::lyapunov::ToleranceFloor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_test_gap: Option<f64>,
    // issue 20: why a stiff error space was solved exactly
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver_note: Option<String>,
    // issue 20: what the output times cost (weight space): a timing, like wall_seconds
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<Timings>,
}

// issue 20: timings of a space run beside wall_seconds
/// Where a space run's time went (seconds; timings vary from run to run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// At the output times: the snapshot (Delta, Delta', H(t)), H(t)'s extreme eigenvalues
    /// and the probes; part of wall_seconds.
    pub snapshot_seconds: f64,
}

/// The discrete twin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiscreteSummary {
    pub name: String,
    pub method: Twin,
    pub eta: f64,
    pub clock: String,
    pub iterates: usize,
    #[serde(deserialize_with = "crate::json::f64_or_nan")]
    pub final_loss: f64,
    pub wall_seconds: f64,
    pub diverged_at: Option<f64>,
    pub eta_rule: String,
    pub max_distance: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pl_prediction: Option<PlPrediction>,
}

/// summary.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub ntkdyn_version: String,
    /// The optimizer's name (gf, hbf, nag).
    pub command: String,
    pub config: RunConfig,
    pub n: usize,
    pub d: usize,
    pub m: usize,
    pub lambda0: f64,
    pub lambda0_source: String,
    pub h0: Spectrum,
    pub hinf: Spectrum,
    pub damping: DampingRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damping_regimes: Option<DampingRegimes>,
    pub weight: Option<SpaceSummary>,
    pub error: Option<SpaceSummary>,
    pub discrete: Option<DiscreteSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_points: Option<usize>,
    pub warnings: Vec<String>,
    // issue 16: held-out metrics
    /// With held-out points: the test loss (and accuracy) of the network, the kernel
    /// predictor and the discrete twin at T, and the kernel predictor's limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<crate::study::held_out::HeldOutSummary>,
    // issue 19: --beta
    /// With `--beta B`: B, the clock t = k eta/(1 - B), k_B and the share of the fixed
    /// kernel's modes beyond the flows' range (`modes_beyond_share`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_momentum: Option<crate::theory::discrete_modes::FixedMomentumSummary>,
}

impl SpaceSummary {
    fn new(run: &SpaceRun, cfg: &RunConfig, kernel: Option<KernelChoice>) -> SpaceSummary {
        let stopped = run.stopped().map(|r| r.to_string());
        SpaceSummary {
            solver: run.solver,
            rtol: cfg.rtol,
            atol: cfg.atol,
            max_step: (kernel.is_none() && run.solver == Solver::Dopri5).then(|| cfg.max_step()),
            evaluations: run.stats.evaluations,
            accepted_steps: run.stats.accepted_steps,
            rejected_steps: run.stats.rejected_steps,
            sign_changes: run.stats.switches,
            wall_seconds: run.wall_seconds,
            final_loss: run.final_loss(),
            completed: stopped.is_none(),
            stopped,
            lyapunov: LyapunovSummary {
                function: run.lyapunov,
                monotonicity: run.monotonicity.clone(),
                bound_condition: run.lyapunov.bound_condition(),
            },
            kernel,
            exact_max_relative_error: run.exact_max_relative_error,
            inf_pl_ratio: run.inf_pl_ratio(),
            sup_kernel_cond: run.sup_kernel_cond(),
            pl_ball: run.pl_ball.clone(),
            tolerance_floor: run.tolerance_floor.clone(),
            final_test_gap: run.final_test_gap(),
            // issue 20: why a stiff error space was solved exactly
            solver_note: run.solver_note.clone(),
            // issue 20: what the output times cost
            timings: run
                .snapshot_seconds
                .map(|snapshot_seconds| Timings { snapshot_seconds }),
        }
    }
}

impl Summary {
    /// The summary of a run.
    pub fn of(report: &Report) -> Summary {
        let cfg = &report.config;
        let s = &report.setup;
        let checks = report.checks.clone();
        Summary {
            ntkdyn_version: env!("CARGO_PKG_VERSION").into(),
            command: cfg.optimizer.name().into(),
            config: cfg.clone(),
            n: s.model.n(),
            d: s.model.d(),
            m: s.model.m(),
            lambda0: s.lambda0,
            lambda0_source: if cfg.lambda0.is_some() {
                "--lambda0"
            } else {
                "lambda_min(Hinf)"
            }
            .into(),
            h0: Spectrum {
                lambda_min: s.h0_extremes.0,
                lambda_max: s.h0_extremes.1,
            },
            hinf: Spectrum {
                lambda_min: s.hinf_extremes.0,
                lambda_max: s.hinf_extremes.1,
            },
            damping: report.damping.into(),
            damping_regimes: checks.damping_regimes,
            weight: report
                .weight
                .as_ref()
                .map(|r| SpaceSummary::new(r, cfg, None)),
            error: report
                .error
                .as_ref()
                .map(|r| SpaceSummary::new(r, cfg, Some(cfg.kernel))),
            discrete: report.discrete.as_ref().map(|d| DiscreteSummary {
                name: d.twin.name().into(),
                method: d.twin,
                eta: d.eta,
                clock: d.twin.clock_text().into(),
                iterates: d.iterates.len(),
                final_loss: d.iterates.last().map(|i| i.loss).unwrap_or(f64::NAN),
                wall_seconds: report.discrete_wall_seconds,
                diverged_at: d.diverged_at,
                eta_rule: if cfg.eta_auto {
                    "1/lambda_max(H(0))"
                } else {
                    "--eta"
                }
                .into(),
                max_distance: d.max_distance,
                pl_prediction: checks.pl_prediction,
            }),
            test_points: s.test.as_ref().map(|t| t.n()),
            warnings: s.warnings.clone(),
            held_out: report
                .held_out
                .as_ref()
                .zip(s.test.as_ref())
                .map(|(h, test)| {
                    crate::study::held_out::HeldOutSummary::of(
                        h,
                        test,
                        report.weight.as_ref().map(|w| &w.table),
                        report.error.as_ref().map(|e| &e.table),
                        report.discrete_table().as_ref(),
                    )
                }),
            // issue 19: --beta
            fixed_momentum: crate::study::fixed_momentum::summary(report),
        }
    }

    /// As a JSON value (objects keep their keys in alphabetical order).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("summary is plain data with text paths")
    }

    /// The text of summary.json.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.to_value()).expect("a JSON value prints")
    }

    /// Read summary.json back.
    pub fn from_json(text: &str) -> Result<Summary, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Read `dir/summary.json`.
    pub fn read(dir: &Path) -> Result<Summary, InputError> {
        let path = dir.join("summary.json");
        let bad = |msg: String| InputError::File {
            path: path.clone(),
            msg,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
        Summary::from_json(&text).map_err(|e| match key_on_line(&text, e.line()) {
            Some(key) => bad(format!("key \"{key}\": {e}")),
            None => bad(e.to_string()),
        })
    }
}

/// The key a line of pretty-printed JSON starts with (`"n": "ten",` -> `n`): the one a
/// type error on that line is about.
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim_start();
    l.strip_prefix('"')?.split('"').next()
}

impl Report {
    /// summary.json as a JSON value.
    pub fn summary_json(&self) -> serde_json::Value {
        Summary::of(self).to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::{run, SpaceChoice};

    fn tiny(optimizer: crate::optimizer::Optimizer) -> RunConfig {
        RunConfig {
            n: 5,
            d: 3,
            m: 30,
            t_end: 1.0,
            samples: 4,
            eta: 0.05,
            test_n: 2,
            space: SpaceChoice::Both,
            ..RunConfig::defaults(optimizer)
        }
    }

    #[test]
    fn a_summary_written_and_read_back_is_the_summary() {
        for o in crate::optimizer::Optimizer::ALL {
            let mut cfg = tiny(o);
            cfg.progress = false;
            let summary = Summary::of(&run(&cfg).unwrap());
            let back = Summary::from_json(&summary.to_json()).unwrap();
            assert_eq!(back, summary, "{o}");
        }
    }

    #[test]
    fn a_summary_with_non_finite_numbers_reads_back_with_nan() {
        let mut cfg = tiny(crate::optimizer::Optimizer::Gf);
        cfg.progress = false;
        let mut summary = Summary::of(&run(&cfg).unwrap());
        let w = summary.weight.as_mut().unwrap();
        w.final_loss = f64::INFINITY;
        w.sup_kernel_cond = f64::NAN;
        let back = Summary::from_json(&summary.to_json()).unwrap();
        let w = back.weight.unwrap();
        assert!(w.final_loss.is_nan() && w.sup_kernel_cond.is_nan());
    }

    #[test]
    fn the_damping_is_recorded_under_the_names_of_its_schedule() {
        let v = |d: Damping| serde_json::to_value(DampingRecord::from(d)).unwrap();
        assert_eq!(v(Damping::None), serde_json::json!("None"));
        assert_eq!(
            v(Damping::Constant(0.5)),
            serde_json::json!({"Constant": 0.5})
        );
        assert_eq!(
            v(Damping::Vanishing(3.0)),
            serde_json::json!({"Vanishing": 3.0})
        );
    }
}
