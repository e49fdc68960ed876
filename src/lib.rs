//! ntkdyn: continuous-time training dynamics of over-parameterized two-layer ReLU networks.
//!
//! Gradient flow, heavy ball with friction and Nesterov's ODE, in weight space (the real
//! network) and in error space (Delta' driven by a fixed kernel H), beside their discrete twins,
//! with the Lyapunov functions of the convergence proofs. See README.md and SPEC.md.
//!
//! The pieces: [`model`] (network, Gram matrix), [`gradient`] and [`fused`] (the weight-space
//! gradient at speed), [`kernel`] (Hinf, spectra),
//! [`dynamics`] (state spaces and damping schedules as ODEs), [`integrate`] (solvers),
//! [`exact`] (eigen-mode solutions), [`lyapunov`], [`discrete`], [`io`], [`plot`], and
//! [`run`], which puts one study together.

pub mod cli;
pub mod diagnostics;
pub mod discrete;
pub mod dynamics;
pub mod error;
pub mod exact;
pub mod figures;
pub mod fused;
pub mod gradient;
pub mod integrate;
pub mod io;
pub mod kernel;
pub mod linear;
pub mod lyapunov;
pub mod model;
pub mod outdir;
pub mod plot;
pub mod run;
pub mod sweep;

pub use error::{Error, Result};
