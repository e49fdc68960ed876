//! t, the loss L = 1/2 |Delta|^2 and the pseudo-loss Lhat = 1/2 Delta^T H Delta.

use super::{Probe, Sample};

/// Columns t, loss, pseudo_loss.
pub struct Core;

impl Probe for Core {
    fn columns(&self) -> Vec<&'static str> {
        vec!["t", "loss", "pseudo_loss"]
    }
    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        row.extend([s.t, s.snapshot.loss(), s.snapshot.pseudo_loss]);
    }
}
