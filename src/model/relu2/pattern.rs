//! Held activation patterns: S_ri in [0, 1] fixed over a step, so that u is linear in W.
//!
//! ```text
//! u_i = (1/sqrt m) sum_r a_r S_ri w_r . x_i
//! ```
//! S is the 0/1 mask of the ReLU at some W, except a few entries that cross zero within the
//! step and carry the share of the step they were active (Filippov's convex combination).

use super::engine::Workspace;
use super::Model;
use nalgebra::{DMatrix, DMatrixView};

/// A held activation pattern S (m x n): S_ri = mask in {0, 1}, except the listed entries that
/// carry a fractional weight (activations that cross zero within a step, each weighted by the
/// share of the step it was on; see [`crate::integrate::integrate_held`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    /// 1[w_r . x_i >= 0], neuron-major: entry (r, i) at r n + i.
    pub(super) mask: Vec<u8>,
    /// (r, i, S_ri) with S_ri fractional, in increasing r.
    pub(super) blend: Vec<(usize, usize, f64)>,
    n: usize,
}

impl Pattern {
    /// The pattern 1[w_r . x_i >= 0] of W, no fractional entries.
    pub fn of(model: &Model, w: &DMatrixView<f64>, ws: &mut Workspace) -> Pattern {
        let mut p = Pattern {
            mask: vec![0; model.m() * model.n()],
            blend: Vec::new(),
            n: model.n(),
        };
        model.signs(w, &mut p.mask, None, ws);
        p
    }

    /// Whether (r, i) is active in the 0/1 mask (fractional weights aside).
    pub fn active(&self, r: usize, i: usize) -> bool {
        self.mask[r * self.n + i] == 1
    }

    /// The 0/1 mask, neuron-major: entry (r, i) at r n + i (fractional weights aside).
    pub(crate) fn mask(&self) -> &[u8] {
        &self.mask
    }

    /// S as a dense m x n matrix.
    pub fn to_matrix(&self) -> DMatrix<f64> {
        let m = self.mask.len() / self.n.max(1);
        let mut row = vec![0.0; self.n];
        let mut s = DMatrix::zeros(m, self.n);
        for r in 0..m {
            self.row_into(r, &mut row);
            s.row_mut(r).iter_mut().zip(&row).for_each(|(o, v)| *o = *v);
        }
        s
    }

    /// Entries with a fractional weight.
    pub fn blended(&self) -> usize {
        self.blend.len()
    }

    /// Give S_ri the weight `s` in [0, 1] (entries must come in increasing r).
    pub fn set_blend(&mut self, r: usize, i: usize, s: f64) {
        debug_assert!(self.blend.last().is_none_or(|&(br, _, _)| br <= r));
        self.blend.push((r, i, s));
    }

    /// The fractional entries (r, i, S_ri), in increasing r.
    pub fn blend_entries(&self) -> &[(usize, usize, f64)] {
        &self.blend
    }

    /// The fractional entries of neurons in `rows` as (r, i, S_ri - mask_ri): what a product
    /// with the 0/1 mask misses of one with S. The one place the blend meets the mask; both
    /// passes of the engine and both kernels add these.
    pub(crate) fn corrections(
        &self,
        rows: std::ops::Range<usize>,
    ) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        blend_in(&self.blend, rows).iter().map(|&(r, i, s)| {
            let old = f64::from(self.mask[r * self.n + i]);
            (r, i, s - old)
        })
    }

    /// S_r. as the 0/1 mask's row, when no entry of it is fractional.
    pub fn mask_row(&self, r: usize) -> Option<&[u8]> {
        blend_in(&self.blend, r..r + 1)
            .is_empty()
            .then(|| &self.mask[r * self.n..(r + 1) * self.n])
    }

    /// S_r. (n values of neuron r).
    pub fn row(&self, r: usize) -> Vec<f64> {
        let mut out = vec![0.0; self.n];
        self.row_into(r, &mut out);
        out
    }

    /// S_r. (n values of neuron r) into `out`.
    pub fn row_into(&self, r: usize, out: &mut [f64]) {
        let n = self.n;
        for (o, b) in out.iter_mut().zip(&self.mask[r * n..(r + 1) * n]) {
            *o = f64::from(*b);
        }
        for &(_, i, s) in blend_in(&self.blend, r..r + 1) {
            out[i] = s;
        }
    }

    /// Take `signs` (neuron-major 0/1, e.g. filled by [`Pattern::changes`]) as the mask and
    /// drop the fractional weights; the old mask is left in `signs`.
    pub fn adopt(&mut self, signs: &mut Vec<u8>) {
        assert_eq!(signs.len(), self.mask.len(), "signs of another size");
        std::mem::swap(&mut self.mask, signs);
        self.blend.clear();
    }

    /// Set the mask's entry (r, i) to active or not (an activation leaving a sliding surface).
    pub fn set_active(&mut self, r: usize, i: usize, on: bool) {
        self.mask[r * self.n + i] = u8::from(on);
    }

    /// Drop the fractional weights: S is the 0/1 mask again.
    pub fn clear_blend(&mut self) {
        self.blend.clear();
    }

    /// The 0/1 pattern of `w` replaces this one; returns how many entries changed sign.
    pub fn retake(
        &mut self,
        model: &Model,
        w: &DMatrixView<f64>,
        scratch: &mut Vec<u8>,
        ws: &mut Workspace,
    ) -> u64 {
        scratch.resize(self.mask.len(), 0);
        model.signs(w, scratch, None, ws);
        self.adopt(scratch);
        self.mask
            .iter()
            .zip(scratch.iter())
            .map(|(a, b)| u64::from(a != b))
            .sum()
    }

    /// Entries (r, i) whose sign at `w` differs from the mask, in increasing r, into `out`.
    pub fn changes(
        &self,
        model: &Model,
        w: &DMatrixView<f64>,
        scratch: &mut Vec<u8>,
        out: &mut Vec<(usize, usize)>,
        ws: &mut Workspace,
    ) {
        scratch.resize(self.mask.len(), 0);
        model.signs(w, scratch, Some(&self.mask), ws);
        out.clear();
        for lane in &mut ws.lanes {
            out.append(&mut lane.changed);
        }
    }
}

/// The entries of a blend list (sorted by r) whose neuron lies in `rows`.
fn blend_in(blend: &[(usize, usize, f64)], rows: std::ops::Range<usize>) -> &[(usize, usize, f64)] {
    let lo = blend.partition_point(|&(r, _, _)| r < rows.start);
    let hi = blend.partition_point(|&(r, _, _)| r < rows.end);
    &blend[lo..hi]
}
