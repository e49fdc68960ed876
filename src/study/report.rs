//! What a study computed: each space's table and how its solver did, the discrete twin, and
//! the checks of the theorems' conditions on them (computed here, not while writing).

use crate::dynamics::Damping;
use crate::error::{NumericsError, StopReason};
use crate::integrate::{Solver, Stats, Stop};
use crate::io::Table;
use crate::optimizer::{DiscreteRun, Twin};
use crate::study::config::RunConfig;
use crate::study::setup::Setup;
use crate::theory::checks::{pl_rate, DampingRegimes, PlPrediction};
use crate::theory::diagnostics::PlBall;
use crate::theory::discrete_modes::DiscreteModes;
use crate::theory::lyapunov::{Lyapunov, Monotonicity, ToleranceFloor};

/// The column of a table every space has: the loss L = 1/2 |Delta|^2.
pub const LOSS: &str = "loss";
/// The column weight.csv gains with held-out points (--test-n, --test).
pub const TEST_GAP_COLUMN: &str = "test_gap";
/// Columns of discrete.csv; GD adds `pl_envelope`, the PL* prediction (1 - eta mu)^k L(0).
pub const DISCRETE_COLUMNS: [&str; 3] = ["k", "t", "loss"];
/// The column discrete.csv gains with error space: the twin on Delta with the fixed kernel.
pub const LOSS_ERROR_SPACE: &str = "loss_error_space";

/// The result of one space: its table and how the solver did.
#[derive(Clone, Debug)]
pub struct SpaceRun {
    pub table: Table,
    pub solver: Solver,
    pub stats: Stats,
    pub stop: Stop,
    pub wall_seconds: f64,
    pub lyapunov: Lyapunov,
    pub monotonicity: Monotonicity,
    /// Error space by ODE: largest |Delta_ode(t) - Delta_exact(t)| / |Delta_exact(t)| over the samples.
    pub exact_max_relative_error: Option<f64>,
    /// Weight space: the PL* ball check of Liu, Zhu and Belkin.
    pub pl_ball: Option<PlBall>,
    /// What the adaptive solver's absolute tolerance resolves of the loss (None for rk4 and
    /// the exact solution).
    pub tolerance_floor: Option<ToleranceFloor>,
    // issue 20: why a stiff error space was solved exactly
    /// Why the solver is not the one configured: `exact (stiff: lambda_max T = ...)`.
    pub solver_note: Option<String>,
    // issue 20: what the output times cost
    /// Weight space: seconds spent at the output times (snapshot, H(t)'s ends, the probes),
    /// part of `wall_seconds`.
    pub snapshot_seconds: Option<f64>,
}

impl SpaceRun {
    /// The last value of a column (None when the column is missing or the table empty).
    pub fn last(&self, column: &str) -> Option<f64> {
        let j = self.table.header.iter().position(|h| h == column)?;
        self.table.rows.last().map(|r| r[j])
    }
    /// L at the last sample (NaN without rows).
    pub fn final_loss(&self) -> f64 {
        self.last(LOSS).unwrap_or(f64::NAN)
    }
    /// The last test_gap (weight space with held-out points).
    pub fn final_test_gap(&self) -> Option<f64> {
        self.last(TEST_GAP_COLUMN)
    }
    /// inf over the samples of the column pl_ratio.
    pub fn inf_pl_ratio(&self) -> f64 {
        self.table
            .column("pl_ratio")
            .unwrap_or_default()
            .into_iter()
            .fold(f64::INFINITY, f64::min)
    }
    /// sup over the samples of the column kernel_cond.
    pub fn sup_kernel_cond(&self) -> f64 {
        self.table
            .column("kernel_cond")
            .unwrap_or_default()
            .into_iter()
            .fold(0.0, f64::max)
    }
    /// Why the space stopped before T, if it did.
    pub fn stopped(&self) -> Option<StopReason> {
        StopReason::of(&self.stop)
    }
}

/// Everything a run computed.
#[derive(Clone, Debug)]
pub struct Report {
    pub config: RunConfig,
    pub setup: Setup,
    pub damping: Damping,
    pub weight: Option<SpaceRun>,
    pub error: Option<SpaceRun>,
    pub discrete: Option<DiscreteRun>,
    pub discrete_wall_seconds: f64,
    /// The theorems' conditions checked on this run ([`Report::check`]).
    pub checks: Checks,
    // issue 16: held-out points
    /// With held-out points: the twin's test columns and the kernel predictor's limit.
    pub held_out: Option<crate::study::held_out::HeldOut>,
}

/// The theorems' conditions checked on a run (summary.json's `damping_regimes` and
/// `discrete.pl_prediction`).
#[derive(Clone, Debug, PartialEq)]
pub struct Checks {
    /// Constant friction: the regimes of the extreme modes and Siegel's condition.
    pub damping_regimes: Option<DampingRegimes>,
    /// Gradient descent: the PL* prediction.
    pub pl_prediction: Option<PlPrediction>,
}

impl Report {
    /// The first failure of the run as one line, if any part diverged or its solver stopped.
    pub fn failure(&self) -> Option<NumericsError> {
        for (space, run) in [("weight", &self.weight), ("error", &self.error)] {
            let Some(run) = run else { continue };
            if let Some(reason) = run.stopped() {
                return Some(NumericsError::Stopped {
                    space,
                    solver: run.solver.name(),
                    reason,
                });
            }
        }
        let d = self.discrete.as_ref()?;
        d.diverged_at.map(|t| NumericsError::Diverged {
            twin: d.twin.name(),
            eta: d.eta,
            t,
        })
    }

    /// The PL* theorem's predicted per-step rate of GD, 1 - eta mu with mu = lambda_min(H(0)).
    pub fn pl_rate(&self) -> f64 {
        pl_rate(self.setup.eta, self.setup.h0_extremes.0)
    }

    /// Check the theorems' conditions on this run (the study does, once, into `checks`).
    pub fn check(&self) -> Checks {
        let s = &self.setup;
        let (_, (error_h_min, _)) = s.error_kernel(self.config.kernel);
        let damping_regimes = match self.damping {
            Damping::Constant(b) => Some(DampingRegimes::new(
                b,
                error_h_min,
                s.h0_extremes.1,
                s.lambda0,
            )),
            _ => None,
        };
        let pl_prediction = self.discrete.as_ref().and_then(|d| {
            (d.twin == Twin::gd()).then(|| {
                let loss0 = d.iterates.first().map(|i| i.loss).unwrap_or(f64::NAN);
                PlPrediction::new(
                    s.h0_extremes.0,
                    s.h0_extremes.1,
                    d.eta,
                    loss0,
                    d.max_distance,
                )
            })
        });
        Checks {
            damping_regimes,
            pl_prediction,
        }
    }

    /// The losses of `d`'s twin iterated on Delta with error space's fixed kernel, one
    /// eigen-mode at a time ([`DiscreteModes`]), at iterates 0..=last of `d`.
    pub fn twin_in_error_space(&self, d: &DiscreteRun) -> Vec<f64> {
        let (h, _) = self.setup.error_kernel(self.config.kernel);
        let delta0 = self.setup.model.residual(&self.setup.w0.as_view());
        let last = d.iterates.last().map(|i| i.k).unwrap_or(0);
        DiscreteModes::new(h, &delta0, d.twin.recurrence(), d.eta).losses(last)
    }

    /// discrete.csv as a table; GD gets the PL* envelope (1 - eta mu)^k L(0), mu = lambda_min(H(0)).
    pub fn discrete_table(&self) -> Option<Table> {
        let d = self.discrete.as_ref()?;
        let gd = d.twin == Twin::gd();
        let mut columns = DISCRETE_COLUMNS.to_vec();
        if gd {
            columns.push("pl_envelope");
        }
        // issue 19: with error space run, the same twin on Delta with the fixed kernel, exactly.
        let exact = self.error.as_ref().map(|_| self.twin_in_error_space(d));
        if exact.is_some() {
            columns.push(LOSS_ERROR_SPACE);
        }
        let mut t = Table::new(&columns);
        let rate = self.pl_rate();
        let loss0 = d.iterates.first().map(|i| i.loss).unwrap_or(f64::NAN);
        t.rows = d
            .iterates
            .iter()
            .map(|i| {
                let mut row = vec![i.k as f64, i.t, i.loss];
                if gd {
                    row.push(rate.powi(i.k as i32) * loss0);
                }
                if let Some(e) = &exact {
                    row.push(e[i.k]);
                }
                row
            })
            .collect();
        if let Some(h) = &self.held_out {
            h.extend_discrete(&mut t);
        }
        Some(t)
    }
}
