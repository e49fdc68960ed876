//! Sharpness: lambda_max(H(t)), the largest eigenvalue of the kernel along the weight-space
//! flow. The discrete twins are stable while eta lambda_max stays below their edge (GD:
//! 2; heavy ball: 2(1 + beta)), so this column shows how far the flow is from it.

use super::{Probe, Sample};

/// Column lambda_max (of H(t)), computed in the same solve as lambda_min.
pub struct Sharpness;

impl Probe for Sharpness {
    fn columns(&self) -> Vec<&'static str> {
        vec!["lambda_max"]
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        row.push(s.kernel_extremes.1);
    }
}
