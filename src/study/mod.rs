//! One study: a configuration ([`config`]) checked ([`validate`]), the problem built from it
//! ([`mod@setup`]), the optimizer run in weight space, in error space and as its discrete twin
//! ([`executor`]), and what that computed ([`report`]). Writing it is [`crate::output`]'s.

pub mod config;
pub mod executor;
// issue 19: --beta
pub mod fixed_momentum;
pub mod held_out;
pub mod report;
// issue 19: resolution
pub mod resolution;
pub mod setup;
pub mod times;
pub mod validate;

pub use config::{KernelChoice, RunConfig, SpaceChoice, TimesChoice};
pub use executor::{
    compare, compare_with, execute, prepare, run, run_error, run_error_with, run_weight, run_with,
    stiffness_warning, Observer,
};
pub use report::{Checks, Report, SpaceRun, DISCRETE_COLUMNS, TEST_GAP_COLUMN};
pub use setup::{setup, Setup};
pub use validate::{memory_estimate, MAX_BYTES, MAX_ITERATES, MAX_SAMPLES};

/// Columns of error.csv: t, loss, pseudo_loss, lyapunov, loss_bound, then the PL* ratio and
/// the kernel's condition number (the probes' columns, in their order).
pub const ERROR_COLUMNS: [&str; 7] = [
    "t",
    "loss",
    "pseudo_loss",
    "lyapunov",
    "loss_bound",
    "pl_ratio",
    "kernel_cond",
];
/// Columns of weight.csv (the probes' columns, in their order; `test_gap` follows with
/// held-out points).
pub const WEIGHT_COLUMNS: [&str; 11] = [
    "t",
    "loss",
    "pseudo_loss",
    "lyapunov",
    "loss_bound",
    "lambda_min",
    "kernel_drift",
    "max_weight_drift",
    "pattern_change_frac",
    "pl_ratio",
    "kernel_cond",
];
