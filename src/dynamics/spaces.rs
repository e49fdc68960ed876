//! The state spaces: weight space of the network (x = W, grad = grad L) and error space with
//! a fixed kernel (x = Delta, grad = H Delta), each with the snapshot observers see.

use nalgebra::{DMatrix, DMatrixViewMut, DVector};
use std::cell::RefCell;

use crate::model::relu2::{
    engine::{crossing_share, Workspace},
    pattern::Pattern,
};
use crate::model::Model;

/// What observers see of a state: Delta, Delta', the pseudo-loss and (weight space) H(t).
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub delta: DVector<f64>,
    pub delta_dot: DVector<f64>,
    /// Lhat = 1/2 Delta^T H Delta with the H of the space.
    pub pseudo_loss: f64,
    /// H(W(t)) in weight space; None in error space where H is fixed.
    pub gram: Option<DMatrix<f64>>,
    /// The activation pattern 1[w_r . x_i >= 0] (m x n, as bits) in weight space; None in
    /// error space.
    pub pattern: Option<PatternBits>,
}

impl Snapshot {
    /// L = 1/2 |Delta|^2.
    pub fn loss(&self) -> f64 {
        0.5 * self.delta.norm_squared()
    }

    /// Whether the state can go on: L and Delta' finite.
    pub fn finite(&self) -> bool {
        self.loss().is_finite() && self.delta_dot.iter().all(|x| x.is_finite())
    }
}

/// An activation pattern S (m x n, entries 0 or 1) as bits, sample by sample (column i holds
/// the m neurons' bits in ceil(m/64) words): 1/64 of the memory of the f64 matrix, so that
/// keeping the last pattern, finding the entries that changed and counting the changes from
/// W0 read kilobytes where the f64 matrices took megabytes (80 MB each at n = 1000,
/// m = 10,000).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatternBits {
    rows: usize,
    cols: usize,
    words: Vec<u64>,
}

impl PatternBits {
    /// The bits of the nonzero entries of s.
    pub fn of(s: &DMatrix<f64>) -> PatternBits {
        Self::of_entries(s, |x| x != 0.0)
    }

    /// The bits of the pattern 1[z >= 0] of pre-activations Z^T (m x n): the same bits as
    /// [`PatternBits::of`] of that 0/1 matrix, without forming it.
    pub fn of_signs(zt: &DMatrix<f64>) -> PatternBits {
        Self::of_entries(zt, |z| z >= 0.0)
    }

    /// The bits `set(entry)` of the entries of an m x n matrix, 64 rows to a word.
    fn of_entries(s: &DMatrix<f64>, set: impl Fn(f64) -> bool) -> PatternBits {
        let (rows, cols) = s.shape();
        let words =
            crate::simd::bits::pack_columns(s, |x| Some(set(x))).expect("every entry gives a bit");
        PatternBits { rows, cols, words }
    }

    /// The bits of an m x n 0/1 mask stored neuron-major (entry (r, i) at `mask[r n + i]`),
    /// as [`PatternBits::from_fn`] of its entries gives them.
    pub fn of_neuron_major(mask: &[u8], rows: usize, cols: usize) -> PatternBits {
        let words = crate::simd::bits::pack_neuron_major(mask, rows, cols);
        PatternBits { rows, cols, words }
    }

    /// The bits of an m x n pattern whose entry (r, i) is `active(r, i)`.
    pub fn from_fn(rows: usize, cols: usize, active: impl Fn(usize, usize) -> bool) -> Self {
        let per = rows.div_ceil(64);
        let mut words = vec![0u64; per * cols];
        for r in 0..rows {
            let (word, bit) = (r / 64, r % 64);
            for i in 0..cols {
                words[i * per + word] |= u64::from(active(r, i)) << bit;
            }
        }
        PatternBits { rows, cols, words }
    }

    /// m x n.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The number of entries, m n.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }

    /// Whether the pattern has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entry (r, i).
    pub fn get(&self, r: usize, i: usize) -> bool {
        let word = self.words[i * self.rows.div_ceil(64) + r / 64];
        (word >> (r % 64)) & 1 == 1
    }

    /// How many entries differ from `other`'s (same shape).
    pub fn differences(&self, other: &PatternBits) -> usize {
        assert_eq!(self.shape(), other.shape(), "patterns of one shape");
        self.words
            .iter()
            .zip(&other.words)
            .map(|(a, b)| (a ^ b).count_ones() as usize)
            .sum()
    }

    /// (row, column) of every entry that differs from `other`'s, column by column.
    fn changed(&self, other: &PatternBits, out: &mut Vec<(usize, usize)>) {
        out.clear();
        let per = self.rows.div_ceil(64);
        for (k, (a, b)) in self.words.iter().zip(&other.words).enumerate() {
            let mut x = a ^ b;
            while x != 0 {
                let bit = x.trailing_zeros() as usize;
                out.push(((k % per) * 64 + bit, k / per));
                x &= x - 1;
            }
        }
    }
}

/// A state space: positions x of dimension `dim`, the gradient of its (pseudo-)loss, and
/// a snapshot of (Delta, Delta', Lhat) at position x with velocity v.
pub trait Space {
    fn dim(&self) -> usize;
    /// g = grad(x), written into the caller's buffer.
    fn gradient(&self, x: &[f64], g: &mut [f64]);
    fn snapshot(&self, x: &[f64], v: &[f64]) -> Snapshot;
    /// The snapshot of gradient flow x' = -grad(x) at x: [`Space::snapshot`] with the
    /// velocity -grad(x).
    fn gradient_flow_snapshot(&self, x: &[f64]) -> Snapshot {
        let mut v = vec![0.0; self.dim()];
        self.gradient(x, &mut v);
        v.iter_mut().for_each(|vi| *vi = -*vi);
        self.snapshot(x, &v)
    }
    /// Hold the switching structure of the right-hand side (the ReLU activation pattern) at
    /// that of x, so that the gradient is smooth until the next call; returns how many
    /// switches (activation signs) changed since the last hold. Spaces whose gradient is
    /// smooth do nothing and return 0.
    fn hold_pattern(&self, _x: &[f64]) -> u64 {
        0
    }
    /// For a step from x0 to x1 taken with the pattern of x0: replace, in the held pattern,
    /// each activation whose sign differs at x0 and x1 by the fraction of the step it was
    /// active (the crossing placed by linear interpolation of w_r . x_i), so that a retaken
    /// step integrates the time average of the switching field; returns how many changed.
    /// A return of 0 means x1 has the held pattern: no hold is needed after the step.
    fn blend_pattern(&self, _x0: &[f64], _x1: &[f64]) -> u64 {
        0
    }
    /// Go back to the plain right-hand side.
    fn release_pattern(&self) {}
}

/// [`Space::hold_pattern`] of a weight-space flow whose held pattern is `held`: take the
/// pattern of the weights `w` (flattened), or retake it; returns how many signs changed.
pub(crate) fn hold(
    model: &Model,
    held: &mut Option<Pattern>,
    w: &[f64],
    signs: &mut Vec<u8>,
    ws: &mut Workspace,
) -> u64 {
    let w = model.weights(w);
    match held.as_mut() {
        None => {
            *held = Some(Pattern::of(model, &w, ws));
            0
        }
        Some(p) => p.retake(model, &w, signs, ws),
    }
}

/// [`Space::blend_pattern`] of a weight-space flow holding `p`, for a step from the weights
/// w0 to w1 (flattened): each changed sign is blended by its crossing share.
pub(crate) fn blend(
    model: &Model,
    p: &mut Pattern,
    (w0, w1): (&[f64], &[f64]),
    (signs, changed): (&mut Vec<u8>, &mut Vec<(usize, usize)>),
    ws: &mut Workspace,
) -> u64 {
    let (w0, w1) = (model.weights(w0), model.weights(w1));
    p.changes(model, &w1, signs, changed, ws);
    // Few entries change per step: their pre-activations are single dot products.
    let x = &model.data().x;
    for &(r, i) in changed.iter() {
        let a = w0.row(r).dot(&x.row(i));
        let b = w1.row(r).dot(&x.row(i));
        p.set_blend(r, i, crossing_share(a, b, p.active(r, i)));
    }
    changed.len() as u64
}

/// Error space with a fixed kernel: grad = H Delta.
#[derive(Clone, Debug)]
pub struct ErrorSpace {
    pub h: DMatrix<f64>,
}

impl Space for ErrorSpace {
    fn dim(&self) -> usize {
        self.h.nrows()
    }
    fn gradient(&self, x: &[f64], g: &mut [f64]) {
        let n = self.dim();
        let xv = nalgebra::DVectorView::from_slice(x, n);
        let mut gv = nalgebra::DVectorViewMut::from_slice(g, n);
        gv.gemv(1.0, &self.h, &xv, 0.0);
    }
    fn snapshot(&self, x: &[f64], v: &[f64]) -> Snapshot {
        let delta = DVector::from_column_slice(x);
        let pseudo_loss = 0.5 * delta.dot(&(&self.h * &delta));
        Snapshot {
            delta,
            delta_dot: DVector::from_column_slice(v),
            pseudo_loss,
            gram: None,
            pattern: None,
        }
    }
}

/// Weight space of the real network: x = W flattened column-major (m x d), grad = grad L.
#[derive(Debug)]
pub struct WeightSpace<'a> {
    pub model: &'a Model,
    scratch: RefCell<Scratch>,
    /// The held activation pattern, if any.
    held: RefCell<Option<Pattern>>,
    /// The last snapshot's pattern and its S^T S, from which the next H(t) is updated.
    counts: RefCell<Option<PatternCounts>>,
}

/// An activation pattern S (m x n, entries 0 or 1) and C = S^T S, the co-activation counts
/// of H = (X X^T) o C / m.
///
/// C holds integers below 2^53, so every way of summing them gives the same f64: an update
/// by the entries that changed is bit for bit the product. Flipping S_ri by delta = +-1
/// changes C_ik and C_ki by delta S_rk (k != i, S_r as it stands) and C_ii by delta: 2n
/// operations per changed entry against 2 n^2 m for the product. Between two samples few
/// entries change (at n = 1000, m = 10000, 201 samples on T = 10 a few thousand of 10^7),
/// and the product took about a second a snapshot there.
#[derive(Debug)]
struct PatternCounts {
    pattern: PatternBits,
    counts: DMatrix<f64>,
    /// H of the pattern, (X X^T) o C / m ([`WeightSpace::gram`]; empty until formed).
    gram: DMatrix<f64>,
}

/// Above one changed entry in this many, C is formed anew by a product: its blocked flops
/// run about ten times faster than the strided updates.
const UPDATE_BELOW_SHARE: usize = 16;

impl PatternCounts {
    fn of(bits: &PatternBits) -> PatternCounts {
        PatternCounts {
            counts: crate::simd::bits::co_counts(&bits.words, bits.rows.div_ceil(64), bits.cols),
            pattern: bits.clone(),
            gram: DMatrix::zeros(0, 0),
        }
    }

    /// Move to `pattern` by updates, or (too many changes, or no counts yet) by the product.
    fn follow(cache: &mut Option<PatternCounts>, bits: &PatternBits) {
        let fresh = match cache.as_mut() {
            Some(c) => !c.update(bits),
            None => true,
        };
        if fresh {
            *cache = Some(PatternCounts::of(bits));
        }
    }

    /// Move to `pattern` by updates when few entries changed (false: too many, untouched).
    fn update(&mut self, pattern: &PatternBits) -> bool {
        let (m, n) = pattern.shape();
        // (row, column) of every changed entry, by row: a row of S is read once into `row`
        // however many of its entries flip.
        let mut changed = Vec::new();
        self.pattern.changed(pattern, &mut changed);
        if changed.len() * UPDATE_BELOW_SHARE > m * n {
            return false;
        }
        changed.sort_unstable();
        let old = &self.pattern;
        let per = m.div_ceil(64);
        let mut row = vec![0.0; n];
        let mut current = usize::MAX;
        for (r, i) in changed {
            if r != current {
                current = r;
                // Row r of S: bit r % 64 of word r / 64 of every column.
                let (word, bit) = (r / 64, r % 64);
                for (s, column) in row.iter_mut().zip(old.words.chunks_exact(per)) {
                    *s = ((column[word] >> bit) & 1) as f64;
                }
            }
            let delta = if pattern.get(r, i) { 1.0 } else { 0.0 } - row[i];
            // C_ci and C_ic gain delta S_rc for every c, the diagonal's two then undone:
            // C_ii gains (S_ri + delta)^2 - S_ri^2 = delta (entries 0 or 1).
            for (c, s) in row.iter().enumerate() {
                self.counts[(c, i)] += delta * s;
                self.counts[(i, c)] += delta * s;
            }
            self.counts[(i, i)] += delta - 2.0 * delta * row[i];
            row[i] += delta;
        }
        self.pattern.clone_from(pattern);
        true
    }
}

/// Buffers reused by every evaluation and pattern update of a run.
#[derive(Debug)]
struct Scratch {
    workspace: Workspace,
    signs: Vec<u8>,
    changed: Vec<(usize, usize)>,
}

impl<'a> WeightSpace<'a> {
    pub fn new(model: &'a Model) -> Self {
        WeightSpace {
            model,
            scratch: RefCell::new(Scratch {
                workspace: Workspace::new(model.m(), model.n(), model.d()),
                signs: Vec::new(),
                changed: Vec::new(),
            }),
            held: RefCell::new(None),
            counts: RefCell::new(None),
        }
    }

    /// H of the pattern `bits` ((X X^T) o S^T S / m, as [`Model::gram_of_pattern`] bit for
    /// bit: the counts S^T S are exact integers either way), with S^T S updated from the last
    /// call's ([`PatternCounts`]) or counted on the bits anew.
    ///
    /// The same pattern as the last call's gives the last H back: H is a function of the
    /// pattern alone, and along a converging run it often stands still between output times
    /// (the benchmark's hbf run, n = 100, m = 400: 134 of 200 intervals), where forming it
    /// again took a fifth of a snapshot (perf).
    fn gram(&self, bits: &PatternBits) -> DMatrix<f64> {
        let mut cache = self.counts.borrow_mut();
        if let Some(c) = cache.as_ref().filter(|c| c.pattern == *bits) {
            return c.gram.clone();
        }
        PatternCounts::follow(&mut cache, bits);
        let c = cache.as_mut().expect("counts were just formed");
        // (C o G) / m entry by entry, as the product and then the quotient were taken.
        let m = self.model.m() as f64;
        c.gram = c.counts.zip_map(self.model.input_gram(), |c, g| c * g / m);
        c.gram.clone()
    }
}

impl WeightSpace<'_> {
    /// The snapshot of a ReLU network's state from Delta = J W - y, Delta' = J V and the sign
    /// pattern of W that the output-space evaluator holds where a step landed
    /// ([`crate::dynamics::output_space::Landed`]): H(t) from the pattern's co-activation
    /// counts as [`Space::snapshot`] forms it, without its two products W X^T and V X^T (at
    /// n = 100, m = 400 a third of a snapshot). Delta and Delta' are the fused kernels'
    /// sums, which differ from the products' by rounding.
    pub fn snapshot_landed(&self, landed: &crate::dynamics::output_space::Landed<'_>) -> Snapshot {
        let (m, n) = (self.model.m(), self.model.n());
        let bits = landed.pattern_bits(m, n);
        let gram = self.gram(&bits);
        let delta = landed.delta.clone();
        let pseudo_loss = 0.5 * delta.dot(&(&gram * &delta));
        Snapshot {
            delta,
            delta_dot: landed.delta_dot.clone(),
            pseudo_loss,
            gram: Some(gram),
            pattern: Some(bits),
        }
    }
}

impl Space for WeightSpace<'_> {
    fn dim(&self) -> usize {
        self.model.m() * self.model.columns()
    }
    fn gradient(&self, x: &[f64], g: &mut [f64]) {
        let w = self.model.weights(x);
        let mut gv = DMatrixViewMut::from_slice(g, self.model.m(), self.model.columns());
        let held = self.held.borrow();
        self.model.gradient_in_place(
            &w,
            &mut gv,
            &mut self.scratch.borrow_mut().workspace,
            held.as_ref(),
        );
    }
    fn hold_pattern(&self, x: &[f64]) -> u64 {
        let scratch = &mut *self.scratch.borrow_mut();
        hold(
            self.model,
            &mut self.held.borrow_mut(),
            &x[..self.dim()],
            &mut scratch.signs,
            &mut scratch.workspace,
        )
    }
    fn blend_pattern(&self, x0: &[f64], x1: &[f64]) -> u64 {
        let mut held = self.held.borrow_mut();
        let Some(p) = held.as_mut() else {
            return 0;
        };
        let scratch = &mut *self.scratch.borrow_mut();
        let dim = self.dim();
        blend(
            self.model,
            p,
            (&x0[..dim], &x1[..dim]),
            (&mut scratch.signs, &mut scratch.changed),
            &mut scratch.workspace,
        )
    }
    fn release_pattern(&self) {
        *self.held.borrow_mut() = None;
    }
    fn snapshot(&self, x: &[f64], v: &[f64]) -> Snapshot {
        self.snapshot_with(x, Some(v))
    }
    /// Gradient flow with the first layer trained, any activation: Delta' = J W' = -J J^T
    /// Delta = -H(t) Delta, an n x n product with the snapshot's own H(t) in place of the
    /// gradient and the product V X^T (at n = 100, m = 400 two thirds of a ReLU snapshot; a
    /// smooth activation's gradient also evaluates sigma' once more). It differs from
    /// J (-grad L) by rounding, and for the ReLU where an activation sits on its surface
    /// (z = 0 within rounding, a sliding neuron) by that entry's sign, which the gradient's
    /// kernel and the snapshot's product then read differently: -H(t) Delta takes one
    /// pattern throughout. No column of weight.csv reads gradient flow's Delta' (its
    /// Lyapunov function is exp(2 mu t) L); it is checked to be finite.
    fn gradient_flow_snapshot(&self, x: &[f64]) -> Snapshot {
        let dim = self.dim();
        if !self.model.train().output_layer() {
            return self.snapshot_with(&x[..dim], None);
        }
        let mut v = vec![0.0; dim];
        self.gradient(x, &mut v);
        v.iter_mut().for_each(|vi| *vi = -*vi);
        self.snapshot(x, &v)
    }
}

impl WeightSpace<'_> {
    /// [`Space::snapshot`] with velocity v, or for `None` gradient flow's Delta' = -H(t) Delta
    /// ([`Space::gradient_flow_snapshot`]).
    fn snapshot_with(&self, x: &[f64], v: Option<&[f64]>) -> Snapshot {
        // One product W X^T serves Delta, the pattern, H and the observers (the same values
        // as Model::residual, slopes and pattern, each of which forms it anew).
        let w = self.model.weights(x);
        if self.model.train().output_layer() {
            let delta = self.model.residual(&w);
            // issue 17: (W, a) trained: H(W, a) and J V of both layers, formed afresh.
            let gram = self.model.gram(&w);
            let pseudo_loss = 0.5 * delta.dot(&(&gram * &delta));
            let v = v.expect("a trained output layer's snapshot is given its velocity");
            return Snapshot {
                delta_dot: self.model.jvp(&w, &self.model.weights(v)),
                delta,
                pseudo_loss,
                gram: Some(gram),
                pattern: Some(PatternBits::of(&self.model.pattern(&w))),
            };
        }
        let mut slopes = self.model.preactivations(&w);
        let sigma = self.model.activation();
        // The ReLU's slopes are its 0/1 pattern, whose co-activation counts are updated from
        // the last snapshot; a smooth activation's H is formed afresh, its pattern the signs.
        let (delta, gram, pattern) = if sigma.switching() {
            let delta = self.model.predict_from(&slopes) - &self.model.data().y;
            slopes.apply(|z| *z = if *z >= 0.0 { 1.0 } else { 0.0 });
            let bits = PatternBits::of(&slopes);
            (delta, self.gram(&bits), bits)
        } else {
            let bits = PatternBits::of_signs(&slopes);
            // sigma and sigma' in one pass column by column (the pair costs about what sigma
            // alone does: gelu's snapshot drops a 0.3 ms pass of sigma' at m = 2000, n = 50).
            let delta = self.model.predict_to_slopes(&mut slopes) - &self.model.data().y;
            (delta, self.model.gram_of_pattern(&slopes), bits)
        };
        let delta_dot = v.map(|v| self.model.jvp_with_pattern(&slopes, &self.model.weights(v)));
        let h_delta = &gram * &delta;
        let pseudo_loss = 0.5 * delta.dot(&h_delta);
        let delta_dot = delta_dot.unwrap_or_else(|| -h_delta);
        Snapshot {
            delta,
            delta_dot,
            pseudo_loss,
            gram: Some(gram),
            pattern: Some(pattern),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Data, InitialNetwork};

    #[test]
    fn h_updated_from_the_changed_activations_is_the_product_bit_for_bit() {
        let (n, d, m) = (30, 4, 200);
        let data = Data::synthetic(n, d, 3);
        let net = InitialNetwork::init(m, d, 3);
        let model = Model::new(data, net.a);
        let space = WeightSpace::new(&model);
        let mut w = net.w.clone();
        // Moves of growing size: a few flips, then many (the product again), then few.
        for (step, scale) in [0.0, 1e-3, 3e-2, 1.0, 1e-2, 0.0].into_iter().enumerate() {
            for (k, x) in w.iter_mut().enumerate() {
                *x += scale * (((k * 7919 + step * 104729) % 1000) as f64 / 500.0 - 1.0);
            }
            let pattern = model.pattern(&w.as_view());
            let updated = space.gram(&PatternBits::of(&pattern));
            assert_eq!(updated, model.gram_of_pattern(&pattern), "step {step}");
        }
    }

    #[test]
    fn pattern_bits_hold_every_entry_and_count_the_entries_that_differ() {
        // 130 rows: two full words and a partial third per column.
        let (m, n) = (130, 7);
        let a = DMatrix::from_fn(m, n, |r, i| ((r * 31 + i * 17) % 5 < 2) as u8 as f64);
        let b = DMatrix::from_fn(m, n, |r, i| ((r * 31 + i * 17) % 7 < 3) as u8 as f64);
        let (x, y) = (PatternBits::of(&a), PatternBits::of(&b));
        for i in 0..n {
            for r in 0..m {
                assert_eq!(x.get(r, i), a[(r, i)] == 1.0);
            }
        }
        let want: Vec<(usize, usize)> = (0..n)
            .flat_map(|i| (0..m).map(move |r| (r, i)))
            .filter(|&(r, i)| a[(r, i)] != b[(r, i)])
            .collect();
        let mut got = Vec::new();
        x.changed(&y, &mut got);
        assert_eq!(got, want);
        // The signs of pre-activations give the bits of their 0/1 pattern.
        let z = DMatrix::from_fn(m, n, |r, i| ((r * 13 + i * 5) % 9) as f64 - 4.0);
        let signs = z.map(|z| if z >= 0.0 { 1.0 } else { 0.0 });
        assert_eq!(PatternBits::of_signs(&z), PatternBits::of(&signs));
        assert_eq!(x.differences(&y), want.len());
        assert_eq!(x.differences(&x), 0);
    }

    #[test]
    fn a_snapshot_from_one_product_has_the_models_residual_pattern_and_gram_bit_for_bit() {
        let (n, d, m) = (12, 3, 50);
        for activation in Activation::ALL {
            let data = Data::synthetic(n, d, 5);
            let net = InitialNetwork::init(m, d, 5);
            let model = Model::with_activation(data, net.a, activation);
            let space = WeightSpace::new(&model);
            let v = net.w.map(|x| 0.1 * x.sin());
            let s = space.snapshot(net.w.as_slice(), v.as_slice());
            let w = net.w.as_view();
            assert_eq!(s.delta, model.residual(&w), "{activation:?}");
            assert_eq!(
                s.pattern.as_ref(),
                Some(&PatternBits::of(&model.pattern(&w))),
                "{activation:?}"
            );
            assert_eq!(s.gram.as_ref(), Some(&model.gram(&w)), "{activation:?}");
            assert_eq!(s.delta_dot, model.jvp(&w, &v.as_view()), "{activation:?}");
        }
    }
}
