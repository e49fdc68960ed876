//! The theory the runs are held against: the Lyapunov functions of the convergence proofs,
//! the PL* and kernel diagnostics, and the checks of a theorem's conditions on a finished run
//! (Siegel's condition for heavy ball, the PL* prediction for gradient descent).
//!
//! Nothing here integrates or writes: these are functions of numbers a run computed.

pub mod checks;
pub mod diagnostics;
pub mod discrete_modes;
pub mod exact;
pub mod high_resolution;
pub mod lyapunov;
pub mod modes;
pub mod spectrum;
pub mod stiffness;
