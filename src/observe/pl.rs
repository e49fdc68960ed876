//! The PL* ratio mu(t) = 2 Lhat / L and the condition number of the space's kernel (see
//! [`crate::theory::diagnostics`]).

use super::{Probe, Sample};
use crate::theory::diagnostics::{condition_number, pl_ratio};

/// Columns pl_ratio, kernel_cond.
pub struct PlProbe;

impl Probe for PlProbe {
    fn columns(&self) -> Vec<&'static str> {
        vec!["pl_ratio", "kernel_cond"]
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        let (lambda_min, lambda_max) = s.kernel_extremes;
        row.extend([
            pl_ratio(s.snapshot.loss(), s.snapshot.pseudo_loss),
            condition_number(lambda_min, lambda_max),
        ]);
    }
}
