//! ntkdyn: continuous-time training dynamics of over-parameterized two-layer ReLU networks.
//!
//! Gradient flow, heavy ball with friction and Nesterov's ODE, in weight space (the real
//! network) and in error space (Delta' driven by a fixed kernel H), beside their discrete twins,
//! with the Lyapunov functions of the convergence proofs. See README.md.
//!
//! The pieces, from the bottom: [`model`] (network, Gram matrix), [`gradient`] and [`fused`]
//! (the weight-space gradient at speed), [`kernel`] (Hinf, spectra), [`dynamics`] (state
//! spaces and damping schedules as ODEs), [`integrate`] and [`linear`] (solvers), [`exact`]
//! (eigen-mode solutions); [`theory`] (Lyapunov functions, PL* diagnostics, the theorems'
//! checks); [`optimizer`] (one file per optimizer: schedule, twin, Lyapunov function, step
//! cap); [`observe`] (probes that make the columns); [`study`] (configuration, setup, the
//! run); [`output`] (summary.json, files, figures) with [`io`] and [`plot`]; [`sweep`].
//! The command line is the binary's own (src/cli/).

pub mod dynamics;
pub mod error;
pub mod exact;
pub mod fused;
pub mod gradient;
pub mod integrate;
pub mod io;
mod json;
pub mod kernel;
pub mod linear;
pub mod model;
pub mod observe;
pub mod optimizer;
pub mod outdir;
pub mod output;
pub mod plot;
mod simd;
pub mod study;
pub mod sweep;
pub mod theory;

pub use error::{Error, Result};

// shim: remove after merge (old paths the examples name).
pub use optimizer::twin as discrete;
pub use output::figures;

/// The old home of a study's entry points and types.
// shim: remove after merge (sweep.rs and the examples name `crate::run`).
pub mod run {
    pub use crate::optimizer::twin::Twin;
    pub use crate::optimizer::Optimizer;
    pub use crate::output::files::{write, OUTPUT_FILES};
    pub use crate::study::report::{DISCRETE_COLUMNS, TEST_GAP_COLUMN};
    pub use crate::study::{
        compare, memory_estimate, run, run_error, run_weight, setup, KernelChoice, Report,
        RunConfig, Setup, SpaceChoice, SpaceRun, ERROR_COLUMNS, MAX_BYTES, MAX_ITERATES,
        MAX_SAMPLES, WEIGHT_COLUMNS,
    };
    pub use crate::theory::checks::regime;
}
