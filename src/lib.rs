//! ntkdyn: continuous-time training dynamics of over-parameterized two-layer ReLU networks.
//!
//! Gradient flow, heavy ball with friction and Nesterov's ODE, in weight space (the real
//! network) and in error space (Delta' driven by a fixed kernel H), beside their discrete twins,
//! with the Lyapunov functions of the convergence proofs. See README.md.
//!
//! The pieces, roughly from the numerics up (the library never imports the binary's
//! src/cli/; within it, modules use one another where the work needs it): [`model`] (the
//! `Network` trait and the two-layer ReLU network, its gradient at speed, Hinf); [`integrate`]
//! (one held-step driver, its tableaus, ode_solvers adapters); [`dynamics`] (state spaces,
//! damping schedules c(t), the output-space stage evaluator); [`theory`] (exact eigen-mode
//! solutions, spectra, Lyapunov functions, PL* diagnostics, the theorems' checks);
//! [`optimizer`] (one file per optimizer: schedule, twin, Lyapunov function, step cap);
//! [`observe`] (probes that make the columns); [`study`] (configuration, validation, setup,
//! the run, its report); [`io`] (CSV tables) and [`output`] (summary.json, files, figures,
//! SVG drawing); [`outdir`] (owned, whole output directories); [`sweep`]; [`error`] (one error
//! enum per layer). The command line is the binary's own (src/cli/).

pub mod dynamics;
pub mod error;
pub mod gap;
pub mod integrate;
pub mod io;
mod json;
pub mod linalg;
pub mod model;
pub mod observe;
pub mod optimizer;
pub mod outdir;
pub mod output;
// issue 18: SGD beside its SDE, seed bands, the exact error-space oracle
pub mod sgd;
mod simd;
pub mod study;
pub mod sweep;
pub mod theory;

pub use error::{Error, Result};
