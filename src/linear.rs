//! The output-space integrator moved to [`crate::dynamics::output_space`].
// shim: remove after merge
pub use crate::dynamics::output_space::{hermite_share, integrate_output_space, Crossings};
