//! The output-space stage evaluator: weight-space Dormand-Prince steps with the activation
//! pattern held, taken in output space, exactly as the dense evaluator takes them in weight
//! space but at a fraction of the cost; the held-step driver ([`crate::integrate::drive`])
//! does the step control, retakes, output times and checks for both.
//!
//! With the activation pattern S held within a step the outputs are linear in W,
//! u = J_S W, and the flow is
//!
//! ```text
//! GF:       W' = -J^T Delta,                 Delta = J W - y
//! momentum: W'' = -c(t) W' - J^T Delta       (c = b for HBF, gamma/t for NAG)
//! ```
//!
//! Every stage of a Runge-Kutta step then stays in the form V_l = alpha_l V + J^T beta_l
//! (scalar alpha_l, n-vector beta_l), and its outputs follow from Delta_0 = J W - y, J V and
//! the Gram matrix H_S = J J^T (n x n) alone:
//!
//! ```text
//! J V_l = alpha_l J V + H beta_l,   Delta_s = Delta_0 + h sum_l a_sl J V_l
//! A_l = gamma_l V + J^T delta_l,    gamma_l = -c_l alpha_l,  delta_l = -c_l beta_l - Delta_l
//! ```
//!
//! (at NAG's singular start, gamma_l = 0 and delta_l = -Delta_l/(1 + gamma): the same rule,
//! [`crate::dynamics::Damping::acceleration`], as the dense right-hand side's).
//!
//! So the seven stages cost O(n^2) each, and a step touches weight space only to form the
//! new state (two products J^T beta, 4 n m d flops, for the momentum flows, one for GF) and to
//! look for sign changes (2 n m d); a step's first trial defers its velocity's product
//! (`HeldStages::complete`), which a trial retaken with blended switches never needs but in
//! the changed neurons' rows. The error estimate e = c V + J^T beta is measured
//! norm-wise per block (the driver's rule, [`crate::integrate::Norms`]) from n x n quantities,
//! |e|^2 = c^2 |V|^2 + 2 c beta . J V + beta^T H beta, so it is never formed in weight space.
//! Against the seven full right-hand sides (28 n m d) of
//! [`crate::integrate::integrate_held`] that is a fifth; its rules for crossings (retake with
//! fractional weights), step control and max step are followed, and for the momentum flows
//! [`Crossings::Corrected`] adds back the blend's leading error.
//! Gradient flow with [`Crossings::Corrected`] also holds sliding activations on their
//! surfaces (`Slide`): a neuron sliding on w_r . x_i = 0, i in I, moves with the held velocity
//! projected off span{x_i : i in I} (Filippov's weights in [0, 1]), its part of H is
//! (1/m) D_r (G - B^T B) D_r, and its rows are projected at the end of each step. Without it the
//! held pattern chatters around such surfaces with the state O(h) off them, a first-order
//! error; with it, measured on the benchmark problem, the error fell 60x at t = 10. The
//! crossings of a step are judged neuron by neuron in time order (`events`), and the retake is
//! cut at the earliest event that switches non-tangentially or whose time the held trial
//! cannot give (a crossing that breaks a slide, a join that releases a surface, the first of
//! two crossings of one neuron), where it takes effect exactly; the crossings before the cut
//! are blended with their shares of the cut step. That made the switching error second order
//! in the step cap (tests/gf_order.rs: order 2.13, from 1.1 when events were judged in entry
//! order and only a first crossing of its step could cut it). Each such event's error if taken
//! uncut is estimated (the bends of its neuron's path, `Bends`), and the retake is cut only
//! where their sum exceeds a share of the step control's own scale (`EVENT_SHARE`): one
//! neuron's error is one row of W, so wide networks, whose steps held nearly every slide's
//! crossings, blend most of them.
//!
//! H, J W and J V are kept up to date across pattern changes entry by entry (O(n) each);
//! J W and J V are recomputed from the state at every output time, H only at the start (its
//! updates drifted by less than 1e-12 in a review's check against H recomputed every step).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use nalgebra::{Cholesky, DMatrix, DMatrixView, DMatrixViewMut, DVector, Dyn};

use crate::dynamics::Damping;
use crate::integrate::tableau as dp5;
use crate::integrate::{drive, Cuts, HeldStages, Norms, SolverSettings, Stats, Stop, Watched};
use crate::model::relu2::{
    engine::{active_share, crossing_share, Kernel, Workspace},
    pattern::Pattern,
};
use crate::model::Model;

/// The held pattern with the output-space quantities of the state it was taken at.
pub(crate) struct Held {
    pub(crate) pattern: Pattern,
    /// H_S = J J^T.
    pub(crate) h: DMatrix<f64>,
    /// Delta_0 = J W - y.
    pub(crate) delta: DVector<f64>,
    /// J V (momentum flows).
    pub(crate) jv: DVector<f64>,
    /// Neurons sliding along activation surfaces (gradient flow with
    /// [`Crossings::Corrected`]; empty otherwise), their entries held at S = 0.
    slides: BTreeMap<usize, Slide>,
    /// Scratch of [`column_change`]: the entries of H's row it mirrors.
    touched: Vec<usize>,
}

/// H's column i and row i after S_ri moved by `step` (a neuron not sliding): for each j != i
/// with S_rj = row[j] != 0, H_ij = H_ji += (x_i . x_j / m) step S_rj, as [`Held::change`]
/// adds it. The column and X X^T's column i are contiguous and taken in lanes (a select keeps
/// the entries S_rj = 0, where the sum would add +-0); row i, n apart in memory, is written
/// from the column afterwards, only where it moved. H and X X^T are symmetric to the bit
/// (every update of H adds the same value to H_ij and H_ji; X X^T's entries are the same
/// ordered dot products either way round), so this is the row-and-column update's result;
/// it reads neither row, whose strided loads were most of this update's time (n = 1000).
fn column_change(
    h: &mut DMatrix<f64>,
    xx: &DMatrix<f64>,
    i: usize,
    m: f64,
    step: f64,
    row: &[f64],
    touched: &mut Vec<usize>,
) {
    let n = h.nrows();
    let hs = h.as_mut_slice();
    let column = &mut hs[i * n..(i + 1) * n];
    let g = &xx.as_slice()[i * n..(i + 1) * n];
    let keep = column[i];
    for ((h_ji, &x_ij), &srj) in column.iter_mut().zip(g).zip(row) {
        let moved = *h_ji + x_ij / m * step * srj;
        *h_ji = if srj != 0.0 { moved } else { *h_ji };
    }
    column[i] = keep;
    // The moved entries listed without a branch per entry (half of them move, at random);
    // every slot below `count` is written before it is read, so the list is never cleared.
    touched.resize(n, 0);
    let mut count = 0;
    for (j, &srj) in row.iter().enumerate() {
        touched[count] = j;
        count += usize::from(srj != 0.0 && j != i);
    }
    for &j in &touched[..count] {
        hs[j * n + i] = hs[i * n + j];
    }
}

/// Scratch for the pattern bookkeeping.
pub(crate) struct Buffers {
    pub(crate) ws: Workspace,
    pub(crate) signs: Vec<u8>,
    pub(crate) changed: Vec<(usize, usize)>,
    pub(crate) row: Vec<f64>,
}

impl Held {
    /// Pattern, H, J W - y and J V of the state (W, V), from scratch.
    pub(crate) fn fresh(
        model: &Model,
        w: &DMatrixView<f64>,
        v: Option<&DMatrixView<f64>>,
        b: &mut Buffers,
    ) -> Held {
        let pattern = Pattern::of(model, w, &mut b.ws);
        let h = model.gram_of_pattern(&pattern.to_matrix());
        let mut held = Held {
            pattern,
            h,
            delta: DVector::zeros(model.n()),
            jv: DVector::zeros(model.n()),
            slides: BTreeMap::new(),
            touched: Vec::new(),
        };
        held.refresh(model, w, v, b);
        held
    }

    /// J W - y and J V recomputed from the state (wiping the rounding of their recursions).
    pub(crate) fn refresh(
        &mut self,
        model: &Model,
        w: &DMatrixView<f64>,
        v: Option<&DMatrixView<f64>>,
        b: &mut Buffers,
    ) {
        model.jvp_held(w, &mut b.ws, &self.pattern, self.delta.as_mut_slice());
        self.delta -= &model.data().y;
        match v {
            Some(v) => model.jvp_held(v, &mut b.ws, &self.pattern, self.jv.as_mut_slice()),
            None => self.jv.fill(0.0),
        }
    }

    /// S_ri goes from row[i] to `new` (row = S_r. as it is): H's row and column i, and the
    /// entries i of J W and J V (z = w_r . x_i, zv = v_r . x_i) follow.
    #[allow(clippy::too_many_arguments)]
    fn change(
        &mut self,
        model: &Model,
        r: usize,
        i: usize,
        new: f64,
        z: f64,
        zv: f64,
        row: &mut [f64],
    ) {
        let old = row[i];
        let step = new - old;
        if step == 0.0 {
            return;
        }
        let m = model.m() as f64;
        let xx = model.input_gram();
        // H_ij = (x_i . x_j / m) sum_r S_ri S_rj (a_r^2 = 1); a sliding neuron's x_i . x_j
        // is taken after its projection (Slide).
        let slide = self.slides.get(&r);
        let g = |j: usize| slide.map_or(xx[(j, i)], |s| s.q(xx, i, j));
        match slide {
            // Entries with S_rj = 0 would add (+-)0.
            Some(_) => {
                for (j, srj) in row.iter().enumerate() {
                    if j != i && *srj != 0.0 {
                        let dh = g(j) / m * step * srj;
                        self.h[(i, j)] += dh;
                        self.h[(j, i)] += dh;
                    }
                }
            }
            None => column_change(&mut self.h, xx, i, m, step, row, &mut self.touched),
        }
        self.h[(i, i)] += g(i) / m * (new * new - old * old);
        let ar = model.a()[r] / m.sqrt();
        self.delta[i] += ar * step * z;
        self.jv[i] += ar * step * zv;
        row[i] = new;
    }
}

impl Held {
    /// Move S_ri, for each (r, i) of `entries` (in increasing r), to `new(pattern, r, i, z)`
    /// with z = w_r . x_i at the state (W, V), through [`Held::change`]; with `blend`, the new
    /// values are also recorded as the pattern's fractional weights.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn set_entries(
        &mut self,
        model: &Model,
        entries: &[(usize, usize)],
        w: &DMatrixView<f64>,
        v: Option<&DMatrixView<f64>>,
        row: &mut [f64],
        blend: bool,
        mut new: impl FnMut(&Pattern, usize, usize, f64) -> f64,
    ) {
        let x = &model.data().x;
        let mut current = usize::MAX;
        for &(r, i) in entries {
            if r != current {
                self.pattern.row_into(r, row);
                current = r;
            }
            let z = dot_row(w, x, r, i);
            let value = new(&self.pattern, r, i, z);
            let zv = v.map_or(0.0, |v| dot_row(v, x, r, i));
            self.change(model, r, i, value, z, zv, row);
            if blend {
                self.pattern.set_blend(r, i, value);
            }
        }
    }
}

/// A neuron's row S_r. as `Slide::surely` reads it: its values, or the 0/1 mask itself
/// (no fractional entry), which spares expanding it.
#[derive(Clone, Copy)]
enum Row<'a> {
    Values(&'a [f64]),
    Mask(&'a [u8]),
}

impl Row<'_> {
    fn len(self) -> usize {
        match self {
            Row::Values(v) => v.len(),
            Row::Mask(v) => v.len(),
        }
    }

    fn get(self, j: usize) -> f64 {
        match self {
            Row::Values(v) => v[j],
            Row::Mask(v) => f64::from(v[j]),
        }
    }

    /// (sum_j S_rj delta_j g_j, sum_j |S_rj delta_j g_j|) in any order.
    fn weighted_sum(self, delta: &[f64], g: &[f64]) -> (f64, f64) {
        match self {
            Row::Values(v) => crate::simd::weighted_sum(v, delta, g),
            Row::Mask(v) => crate::simd::weighted_sum(v, delta, g),
        }
    }
}

/// One neuron sliding along the surfaces w_r . x_i = 0, i in I (gradient flow, Filippov).
///
/// On the surfaces u does not see S_ri (z_ri = 0), and Filippov's weights theta_i in [0, 1]
/// are those that keep every z_ri = 0: the sliding velocity of w_r is the held velocity
/// without the entries of I, projected onto the complement of span{x_i : i in I},
///
/// ```text
/// w_r' = -P_I (a_r / sqrt m) sum_{j not in I} S_rj Delta_j x_j,   P_I = 1 - X_I G_II^-1 X_I^T
/// ```
///
/// (G = X X^T), still linear in the state: the neuron's part of H becomes
/// (1/m) D_r (G - B^T B) D_r with B = L^-1 G_I. (L L^T = G_II, D_r = diag S_r.), and
/// Delta' = -H Delta keeps its form, so the stages are unchanged.
#[derive(Clone)]
struct Slide {
    /// The sliding entries i, increasing.
    set: Vec<usize>,
    chol: Cholesky<f64, Dyn>,
    /// B = L^-1 G_I. (|I| x n): (X P_I X^T)_ij = G_ij - B_.i . B_.j, formed on first use
    /// (`Slide::b`): most slides built while judging a step's crossings are only asked for
    /// their weights, which need L alone.
    b: OnceLock<DMatrix<f64>>,
    /// |G_II^-1| and |G_II^-1| |L| |L^T|, for `surely`'s bound, formed on first use.
    bounds: OnceLock<(DMatrix<f64>, DMatrix<f64>)>,
}

impl Slide {
    /// The slide on `set` (increasing), or None when the x_i of the set are (nearly)
    /// dependent: more surfaces than P_I can hold, which the blend then handles.
    fn new(model: &Model, set: Vec<usize>) -> Option<Slide> {
        let xx = model.input_gram();
        let k = set.len();
        let g = DMatrix::from_fn(k, k, |a, c| xx[(set[a], set[c])]);
        let largest = (0..k).map(|a| g[(a, a)]).fold(0.0, f64::max);
        let chol = g.cholesky()?;
        let l = chol.l_dirty();
        if (0..k).any(|a| l[(a, a)].powi(2) < 1e-8 * largest) {
            return None;
        }
        Some(Slide {
            set,
            chol,
            b: OnceLock::new(),
            bounds: OnceLock::new(),
        })
    }

    /// B = L^-1 G_I. (G = `xx`, the input Gram matrix).
    fn b(&self, xx: &DMatrix<f64>) -> &DMatrix<f64> {
        self.b.get_or_init(|| {
            let mut b = DMatrix::from_fn(self.set.len(), xx.nrows(), |a, j| xx[(j, self.set[a])]);
            self.chol.l_dirty().solve_lower_triangular_mut(&mut b);
            b
        })
    }

    fn contains(&self, i: usize) -> bool {
        self.set.binary_search(&i).is_ok()
    }

    /// (X P_I X^T)_ij = G_ij - B_.i . B_.j (G_ji read: G is symmetric to the bit, and the
    /// callers run along j, down G's column i).
    fn q(&self, xx: &DMatrix<f64>, i: usize, j: usize) -> f64 {
        let b = self.b(xx);
        let k = b.nrows();
        let b = b.as_slice();
        xx[(j, i)] - dot(&b[i * k..(i + 1) * k], &b[j * k..(j + 1) * k])
    }

    /// Whether the slide holds for the row S_r. and Delta (Filippov's weights, `weights`,
    /// all in [0, 1] and every surface attracting), decided by `surely` where it can, as
    /// `weights` decides it.
    fn holds(&self, xx: &DMatrix<f64>, a_r: f64, row: &[f64], delta: &DVector<f64>) -> bool {
        self.surely(xx, a_r, Row::Values(row), delta)
            .unwrap_or_else(|| self.weights(xx, a_r, row, delta).0)
    }

    /// Filippov's weights theta_i (i in I) for the row S_r. and Delta: with c = theta o
    /// Delta_I, X_I^T w_r' = 0 reads G_II c = -sum_{j not in I} S_rj Delta_j G_Ij. false
    /// when some surface does not attract (a_r Delta_i <= 0) or some weight leaves [0, 1];
    /// then the weights say which side each entry leaves to.
    fn weights(
        &self,
        xx: &DMatrix<f64>,
        a_r: f64,
        row: &[f64],
        delta: &DVector<f64>,
    ) -> (bool, Vec<f64>) {
        let k = self.set.len();
        let n = row.len();
        // The terms S_rj Delta_j (j active, not in I), gathered once for every i without a
        // branch per entry (S is about half ones, which a branch mispredicts).
        let mut terms = vec![(0usize, 0.0f64); n];
        let mut len = 0;
        for (j, (s, dj)) in row.iter().zip(delta.iter()).enumerate() {
            terms[len] = (j, s * dj);
            len += usize::from(*s != 0.0);
        }
        terms.truncate(len);
        terms.retain(|&(j, _)| !self.contains(j));
        let mut c = DVector::from_fn(k, |a, _| {
            let i = self.set[a];
            let g = &xx.as_slice()[i * n..(i + 1) * n];
            -terms.iter().map(|&(j, p)| p * g[j]).sum::<f64>()
        });
        self.chol.solve_mut(&mut c);
        let theta: Vec<f64> = (0..k).map(|a| c[a] / delta[self.set[a]]).collect();
        let ok = (0..k).all(|a| a_r * delta[self.set[a]] > 0.0 && (0.0..=1.0).contains(&theta[a]));
        (ok, theta)
    }

    /// Whether the slide holds, as `weights` decides it, when that is sure (None when not),
    /// at a fraction of its cost. The sums c_a = -sum_(j not in I) S_rj Delta_j G_(i_a j)
    /// are taken in lanes (any order), each with a bound e_a on the distance of both its
    /// sum and `weights`' ordered one from the exact value, 2 gamma_(n+2) sum_j |S_rj
    /// Delta_j G_ij| (Higham, Accuracy and Stability of Numerical Algorithms, 2002, eq. 3.5,
    /// doubled). Both solve with the same factor L (G' = L L^T exactly), whose triangular
    /// solves are backward stable, (L + E_1)(L^T + E_2) x = c with |E| <= gamma_k |L| (ibid.
    /// thm. 8.5); so the two solutions differ by at most
    ///
    /// ```text
    /// |x_w - x| <= 2 (|G'^-1| e + 3 gamma_k |G'^-1| |L| |L^T| |x|)
    /// ```
    ///
    /// (doubled for x_w, x and G'^-1 as computed), and theta_a = x_a / Delta_(i_a), monotone
    /// in x_a, is bracketed at both ends of that interval: all brackets in [0, 1] (a few
    /// ulps to spare at 1), or one outside it, decide. In a gradient-flow run at n = 1000 `weights` was called 612,000 times to
    /// T = 1, each an ordered sum over the active entries, 22% of the run to T = 10 (perf,
    /// 2026-12-02); every surface must attract first, which is exact here and there.
    fn surely(
        &self,
        xx: &DMatrix<f64>,
        a_r: f64,
        row: Row<'_>,
        delta: &DVector<f64>,
    ) -> Option<bool> {
        // Not `<= 0`: a NaN does not attract either, as in `weights`.
        #[allow(clippy::neg_cmp_op_on_partial_ord)]
        if self.set.iter().any(|&i| !(a_r * delta[i] > 0.0)) {
            return Some(false);
        }
        let (n, k) = (row.len(), self.set.len());
        let eps = f64::EPSILON;
        let mut x = DVector::zeros(k);
        let mut e = DVector::zeros(k);
        for (a, &i) in self.set.iter().enumerate() {
            let g = &xx.as_slice()[i * n..(i + 1) * n];
            let (mut sum, mut size) = row.weighted_sum(delta.as_slice(), g);
            // `weights` leaves the surfaces' own entries out (held at S = 0: mostly +-0).
            for &j in &self.set {
                let own = row.get(j) * delta[j] * g[j];
                sum -= own;
                size += 2.0 * own.abs();
            }
            x[a] = -sum;
            e[a] = 2.0 * (n as f64 + 2.0) * eps * size + f64::MIN_POSITIVE;
        }
        self.chol.solve_mut(&mut x);
        let (inv, spread) = self.bounds.get_or_init(|| {
            let inv = self.chol.inverse().abs();
            let l = self.chol.l().abs();
            let spread = &inv * &l * l.transpose();
            (inv, spread)
        });
        // gamma_k = k u / (1 - k u) < k eps.
        let gamma = k as f64 * eps;
        let bound = (inv * e + spread * x.abs() * (3.0 * gamma)) * 2.0;
        let mut inside = true;
        for (a, &i) in self.set.iter().enumerate() {
            let (t0, t1) = ((x[a] - bound[a]) / delta[i], (x[a] + bound[a]) / delta[i]);
            let (lo, hi) = (t0.min(t1), t0.max(t1));
            if hi < 0.0 || lo > 1.0 + 8.0 * eps {
                return Some(false);
            }
            inside &= lo >= 0.0 && hi <= 1.0 - 8.0 * eps;
        }
        inside.then_some(true)
    }

    /// Row r of the column-major m x d state `w` onto the surfaces: w_r -= X_I G_II^-1 X_I^T w_r.
    fn project(&self, x: &DMatrix<f64>, w: &mut [f64], m: usize, r: usize) {
        let c = self.coefficients(x, w, m, r);
        for k in 0..x.ncols() {
            w[k * m + r] -= self.along(x, &c, k);
        }
    }

    /// What `project` takes off row r of `w`, X_I G_II^-1 X_I^T w_r, into `off` (d).
    fn removed(&self, x: &DMatrix<f64>, w: &[f64], m: usize, r: usize, off: &mut [f64]) {
        let c = self.coefficients(x, w, m, r);
        for (k, o) in off.iter_mut().enumerate() {
            *o = self.along(x, &c, k);
        }
    }

    /// G_II^-1 X_I^T w_r for row r of the column-major m x d state `w`.
    fn coefficients(&self, x: &DMatrix<f64>, w: &[f64], m: usize, r: usize) -> DVector<f64> {
        let d = x.ncols();
        let mut c = DVector::from_fn(self.set.len(), |a, _| {
            (0..d)
                .map(|k| w[k * m + r] * x[(self.set[a], k)])
                .sum::<f64>()
        });
        self.chol.solve_mut(&mut c);
        c
    }

    /// Column k of X_I^T c: sum_a c_a x_(i_a, k).
    fn along(&self, x: &DMatrix<f64>, c: &DVector<f64>, k: usize) -> f64 {
        self.set
            .iter()
            .zip(c.iter())
            .map(|(&i, ci)| ci * x[(i, k)])
            .sum::<f64>()
    }
}

/// Rows r of the column-major m x d state `w` onto their slides (the rows distinct), each as
/// `Slide::project` takes it: what each row loses is found first, on rayon's threads when the
/// slides are many (late in a gradient-flow run at n = 1000 about 10,000 a trial, 6% of the
/// solver thread one by one), then taken off.
fn project_all(x: &DMatrix<f64>, w: &mut [f64], m: usize, slides: &[(usize, &Slide)]) {
    let parallel = slides.len() * x.ncols() >= PARALLEL_PROJECTIONS;
    project_rows(
        x,
        w,
        m,
        slides,
        parallel && rayon::current_num_threads() > 1,
    );
}

/// `project_all`, on rayon's threads or not.
fn project_rows(
    x: &DMatrix<f64>,
    w: &mut [f64],
    m: usize,
    slides: &[(usize, &Slide)],
    parallel: bool,
) {
    let d = x.ncols();
    if d == 0 {
        return;
    }
    let mut off = vec![0.0; slides.len() * d];
    let find = |(off, &(r, slide)): (&mut [f64], &(usize, &Slide))| {
        slide.removed(x, w, m, r, off);
    };
    if parallel {
        use rayon::prelude::*;
        off.par_chunks_mut(d)
            .zip(slides)
            .with_min_len(64)
            .for_each(find);
    } else {
        off.chunks_mut(d).zip(slides).for_each(find);
    }
    for (&(r, _), off) in slides.iter().zip(off.chunks(d)) {
        for (k, o) in off.iter().enumerate() {
            w[k * m + r] -= o;
        }
    }
}

/// Row entries (slides times d) from which `project_all` shares its slides between rayon's
/// threads (1,000 slides at d = 20).
const PARALLEL_PROJECTIONS: usize = 20_000;

/// H follows neuron r's change of slide from `old` to `new` (either None: no slide) with its
/// row S_r. = `row`, for the share c of a step: H += (c/m) ((B_old D)^T (B_old D) -
/// (B_new D)^T (B_new D)) (c = 1 the whole change; c < 0 takes such a share back).
fn reslide_by(
    h: &mut DMatrix<f64>,
    model: &Model,
    row: &[f64],
    (old, new): (Option<&Slide>, Option<&Slide>),
    c: f64,
) {
    reslide_all(h, model, &[(row, old, new, c)]);
}

/// One neuron's change of slide for `reslide_all`: its row S_r., the old and new slides
/// and the share c.
type Move<'a> = (&'a [f64], Option<&'a Slide>, Option<&'a Slide>, f64);

/// `reslide_by` for each of `moves` in turn.
///
/// Only the active entries (S_rj != 0) are touched: the others would add (+-)0. Each entry
/// gets alpha (BD)_.i . (BD)_.j with nalgebra's `gemm_tr` rounding (`dot`), so H keeps its
/// bits; at n = 1000 the full n x n `gemm_tr` was 14% of a gradient-flow run. A slide of
/// fewer than 8 surfaces (nearly all: 1.2 on average at n = 1000) has no 8-block in `dot`,
/// whose sum is then +0 + p_0 + p_1 + ... in order, so a column j is taken whole in lanes
/// over i (`crate::simd::small_column`), the inactive i selected out, and every move's
/// update of it while it is in cache: each entry gets the moves' terms in their order, as
/// one move after the other gives them. Entry by entry over the active pairs and move by
/// move, this was 21% of a gradient-flow run at n = 1000 to T = 10 (perf, 2026-12-02).
fn reslide_all(h: &mut DMatrix<f64>, model: &Model, moves: &[Move<'_>]) {
    let xx = model.input_gram();
    let n = h.nrows();
    let m = model.m() as f64;
    if moves
        .iter()
        .flat_map(|mv| sides(mv, m))
        .any(|(_, s, _)| s.set.len() >= 8)
    {
        for (row, slide, alpha) in moves.iter().flat_map(|mv| sides(mv, m)) {
            large_slide(h, xx, row, slide, alpha);
        }
        return;
    }
    // (B D) by rows, n entries each: lanes over i.
    let parts: Vec<(&[f64], Vec<f64>, f64)> = moves
        .iter()
        .flat_map(|mv| sides(mv, m))
        .map(|(row, slide, alpha)| {
            let b = slide.b(xx);
            let bd = (0..b.nrows())
                .flat_map(|t| (0..n).map(move |i| b[(t, i)] * row[i]))
                .collect();
            (row, bd, alpha)
        })
        .collect();
    let update = |(j, column): (usize, &mut [f64])| {
        let mut bj = [0.0; 8];
        for (row, bd, alpha) in &parts {
            if row[j] == 0.0 {
                continue;
            }
            let k = bd.len() / n;
            (0..k).for_each(|t| bj[t] = bd[t * n + j]);
            crate::simd::small_column((bd, &bj[..k]), *alpha, row, column);
        }
    };
    // The columns are independent: on rayon's threads when there is enough of them.
    if n * n * parts.len() >= PARALLEL_ENTRIES && rayon::current_num_threads() > 1 {
        use rayon::prelude::*;
        h.as_mut_slice()
            .par_chunks_mut(n)
            .with_min_len(16)
            .enumerate()
            .for_each(update);
    } else {
        h.as_mut_slice()
            .chunks_exact_mut(n)
            .enumerate()
            .for_each(update);
    }
}

/// Entries of work from which the slides' bookkeeping is shared between rayon's threads:
/// H's updates in `reslide_all` (n^2 a move's side; about 60 us on one core at n = 500), the
/// slide checks of `leave_slides` (n a slide) and a step's events (`events`, n an event: a
/// slide's check or Cholesky factor; a fifth of the solver thread at n = 1000 on one).
const PARALLEL_ENTRIES: usize = 250_000;

/// H follows each of `breaks` (their neurons' rows as the pattern holds them now) from its
/// old slide to its new one for the share `share(break)`, all at once (`reslide_all`).
fn reslide_breaks(held: &mut Held, model: &Model, breaks: &[Break], share: impl Fn(&Break) -> f64) {
    let rows: Vec<Vec<f64>> = breaks.iter().map(|b| held.pattern.row(b.r)).collect();
    let moves: Vec<Move<'_>> = (breaks.iter().zip(&rows))
        .map(|(b, row)| (&row[..], Some(&b.old), b.new.as_ref(), share(b)))
        .collect();
    reslide_all(&mut held.h, model, &moves);
}

/// A move's (row, slide, alpha) for its old slide (alpha = c/m) and its new one (-c/m).
fn sides<'a>(
    &(row, old, new, c): &Move<'a>,
    m: f64,
) -> impl Iterator<Item = (&'a [f64], &'a Slide, f64)> {
    [(old, c / m), (new, -c / m)]
        .into_iter()
        .filter_map(move |(slide, alpha)| Some((row, slide?, alpha)))
}

/// H += alpha (B D)^T (B D) over the active pairs, entry by entry with `dot`: a slide of 8
/// or more surfaces.
fn large_slide(h: &mut DMatrix<f64>, xx: &DMatrix<f64>, row: &[f64], slide: &Slide, alpha: f64) {
    let n = row.len();
    let active: Vec<usize> = (0..n).filter(|&j| row[j] != 0.0).collect();
    let b = slide.b(xx);
    let k = b.nrows();
    // (B D)_.j for the active j, k entries each.
    let bd: Vec<f64> = active
        .iter()
        .flat_map(|&j| {
            b.as_slice()[j * k..(j + 1) * k]
                .iter()
                .map(move |v| v * row[j])
        })
        .collect();
    for (q, &j) in active.iter().enumerate() {
        let bj = &bd[q * k..(q + 1) * k];
        let column = &mut h.as_mut_slice()[j * n..(j + 1) * n];
        for (p, &i) in active.iter().enumerate() {
            column[i] += alpha * dot(&bd[p * k..(p + 1) * k], bj);
        }
    }
}

/// a . b rounded as nalgebra's `dot` of two dynamic column vectors (0.34): eight
/// accumulators over the blocks of eight, summed pairwise into 0, then the rest in order.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let blocks = a.len() / 8 * 8;
    for (ca, cb) in a[..blocks].chunks_exact(8).zip(b[..blocks].chunks_exact(8)) {
        for t in 0..8 {
            acc[t] += ca[t] * cb[t];
        }
    }
    let mut res = 0.0;
    for t in 0..4 {
        res += acc[t] + acc[t + 4];
    }
    for (x, y) in a[blocks..].iter().zip(&b[blocks..]) {
        res += x * y;
    }
    res
}

/// How a step through sign changes is retaken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossings {
    /// Each crossing activation weighted by its share of the step, the share from the
    /// straight line between z = w_r . x_i at the two ends ([`crate::integrate::integrate_held`]'s
    /// rule): O(h^2) error per crossing in W and V.
    Blend,
    /// For the momentum flows, the share from the cubic through z and z' = v_r . x_i at the
    /// two ends, and the blend's leading error added back (`Fix`): O(h^3) per crossing. An
    /// activation that both sides push back to its surface, once its oscillation about it is
    /// faster than a step, bounces across it at every step or two with |z'| up to
    /// h (a_r / sqrt m) |Delta_i| |x_i|^2; those bounces are not held on the surface (NAG's
    /// benchmark run has a few such activations, docs/performance.md, 2026-12-03 evening).
    /// Gradient flow is blended as in `Blend` (an activation can slide there, and the
    /// blend is then Filippov's convex combination).
    Corrected,
}

/// The leading error of blending one crossing, added back after the blended step.
///
/// With S_ri = s(t) (a step function) replaced by its share theta over a step of length h,
/// the forcing of V' differs by delta(t) G(t), delta = s - theta, where (kappa = a_r / sqrt m)
///
/// ```text
/// G = -kappa (Delta_i x_i e_r^T + z J^T e_i),   Delta = J W - y and J both of the blend.
/// ```
///
/// As int delta = 0, variation of constants gives the difference of exact and blended flow
/// over the step to O(h^3) from mu = int_0^h t delta(t) dt = -/+ theta (1 - theta) h^2 / 2
/// (- when the activation switches off):
///
/// ```text
/// W: -mu G(0),    V: mu (G'(0) + c G(0)),    G' = -kappa ((J V)_i x_i e_r^T + z' J^T e_i)
/// ```
///
/// Rows e_r are added to the new state directly; J^T e_i terms join the step's betas.
///
/// The expansion is in h with c h small and with z' != 0 at the crossing. A review measured
/// third order through clean crossings (HBF, b = 0.4); in NAG's first steps c h reaches 2
/// (14 of 1,885 fixes in its experiment), and under strong friction a few activations end
/// near z = z' = 0, where neither holds and convergence is slower. Skipping the fix when
/// c h > 0.3 changed nothing measurable, so it is applied throughout.
struct Fix {
    r: usize,
    i: usize,
    /// Coefficients of J^T e_i in W and V.
    beta_w: f64,
    beta_v: f64,
    /// Coefficients of x_i in row r of W and V.
    row_w: f64,
    row_v: f64,
}

impl Fix {
    /// The fix for entry (r, i) with `share` of a step of length h starting at (W, V) with
    /// friction c, taken after the blend is set (`held` is the blend's).
    fn new(
        model: &Model,
        held: &Held,
        (r, i, share): (usize, usize, f64),
        h: f64,
        c: f64,
        w: &DMatrixView<f64>,
        v: &DMatrixView<f64>,
    ) -> Fix {
        let x = &model.data().x;
        let kappa = model.a()[r] / (model.m() as f64).sqrt();
        let off = if held.pattern.active(r, i) { -1.0 } else { 1.0 };
        let mu = off * share * (1.0 - share) * h * h / 2.0;
        let (z, zv) = (dot_row(w, x, r, i), dot_row(v, x, r, i));
        let (delta, jv) = (held.delta[i], held.jv[i]);
        Fix {
            r,
            i,
            beta_w: mu * kappa * z,
            beta_v: -mu * kappa * (zv + c * z),
            row_w: mu * kappa * delta,
            row_v: -mu * kappa * (jv + c * delta),
        }
    }

    /// J W - y and J V (of the blend) follow the fix: J (x_i e_r^T) has entries
    /// kappa S_rj x_j . x_i, and J J^T e_i is H's column i.
    fn follow(&self, model: &Model, held: &mut Held, row: &mut [f64]) {
        let kappa = model.a()[self.r] / (model.m() as f64).sqrt();
        let xx = model.input_gram();
        held.pattern.row_into(self.r, row);
        for (j, srj) in row.iter().enumerate() {
            let along = kappa * srj * xx[(j, self.i)];
            let hji = held.h[(j, self.i)];
            held.delta[j] += self.row_w * along + self.beta_w * hji;
            held.jv[j] += self.row_v * along + self.beta_v * hji;
        }
    }
}

/// Share of a step that entry (r, i) is active, from the cubic Hermite interpolant of
/// z(s) = w_r . x_i over the step (s in [0, 1]) through z and h z' at both ends of the held
/// step: the crossing time to O(h^4) where the straight line gives O(h^2).
pub fn hermite_share([z0, d0]: [f64; 2], [z1, d1]: [f64; 2], active: bool) -> f64 {
    let p = |s: f64| {
        let (s2, s3) = (s * s, s * s * s);
        (2.0 * s3 - 3.0 * s2 + 1.0) * z0
            + (s3 - 2.0 * s2 + s) * d0
            + (-2.0 * s3 + 3.0 * s2) * z1
            + (s3 - s2) * d1
    };
    if z0 == 0.0 || z0.signum() == z1.signum() {
        return crossing_share(z0, z1, active);
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    // Bisection on the sign change (z0 and z1 differ in sign): 50 halvings reach rounding.
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        if p(mid).signum() == z0.signum() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    active_share(0.5 * (lo + hi), active)
}

/// (W, V) of a state [W] or [W, V].
pub(crate) fn split(
    s: &[f64],
    m: usize,
    d: usize,
    second: bool,
) -> (DMatrixView<'_, f64>, Option<DMatrixView<'_, f64>>) {
    (
        DMatrixView::from_slice(&s[..m * d], m, d),
        second.then(|| DMatrixView::from_slice(&s[m * d..], m, d)),
    )
}

pub(crate) fn dot_row(w: &DMatrixView<f64>, x: &DMatrix<f64>, r: usize, i: usize) -> f64 {
    w.row(r).dot(&x.row(i))
}

/// H, J W - y and J V kept while a retake's blend moves them.
pub(crate) type Backup = (DMatrix<f64>, DVector<f64>, DVector<f64>);

impl Buffers {
    pub(crate) fn new(model: &Model) -> Buffers {
        Buffers {
            ws: Workspace::new(model.m(), model.n(), model.d()),
            signs: Vec::new(),
            changed: Vec::new(),
            row: vec![0.0; model.n()],
        }
    }
}

/// The held pattern of the state `y0` ([W], or [W, V] when `second`) with its scratch, at
/// the start of an integration; with `cache`, sign passes go through the sign cache
/// ([`Workspace::cache_signs`]: the same bits, most rows skipped along a run's steps).
pub(crate) fn held_start(model: &Model, y0: &[f64], second: bool, cache: bool) -> (Held, Buffers) {
    let (m, d) = (model.m(), model.d());
    let md = m * d;
    assert_eq!(
        y0.len(),
        if second { 2 * md } else { md },
        "state of another size"
    );
    let mut buf = Buffers::new(model);
    if cache {
        // Gradient flow's rows move past their nearest samples' margins within a step.
        buf.ws.cache_signs(!second);
    }
    let (w, v) = split(y0, m, d, second);
    let held = Held::fresh(model, &w, v.as_ref(), &mut buf);
    (held, buf)
}

impl Held {
    /// H, J W - y and J V as they are, for [`Held::restore`], copied into `spare` (a former
    /// backup) when there is one: a fresh n x n allocation per retake cost its page faults
    /// (about 5% of a gradient-flow run at n = 1000).
    pub(crate) fn backup(&self, spare: Option<Backup>) -> Backup {
        match spare {
            Some((mut h, mut delta, mut jv)) => {
                h.copy_from(&self.h);
                delta.copy_from(&self.delta);
                jv.copy_from(&self.jv);
                (h, delta, jv)
            }
            None => (self.h.clone(), self.delta.clone(), self.jv.clone()),
        }
    }

    /// Back to `backup` and the unblended pattern (a rejected retake); returns the replaced
    /// quantities as a spare for the next backup.
    pub(crate) fn restore(&mut self, (h, delta, jv): Backup) -> Backup {
        let old = (
            std::mem::replace(&mut self.h, h),
            std::mem::replace(&mut self.delta, delta),
            std::mem::replace(&mut self.jv, jv),
        );
        self.pattern.clear_blend();
        old
    }

    /// [`Held::refresh`] at the state y ([W] or [W, V]).
    pub(crate) fn refresh_at(&mut self, model: &Model, y: &[f64], second: bool, b: &mut Buffers) {
        let (w, v) = split(y, model.m(), model.d(), second);
        self.refresh(model, &w, v.as_ref(), b);
    }

    /// The entries whose sign differs at the state `y` from the held pattern, into
    /// `b.changed` (the signs at y into `b.signs`); returns y's W.
    pub(crate) fn changes_at<'y>(
        &self,
        model: &Model,
        y: &'y [f64],
        second: bool,
        b: &mut Buffers,
    ) -> DMatrixView<'y, f64> {
        let (w, _) = split(y, model.m(), model.d(), second);
        self.pattern
            .changes(model, &w, &mut b.signs, &mut b.changed, &mut b.ws);
        w
    }

    /// The pattern of the accepted state y after a retake: its crossings and the blended
    /// entries take y's signs, and H, J W and J V follow entry by entry.
    pub(crate) fn adopt_state(&mut self, model: &Model, y: &[f64], second: bool, b: &mut Buffers) {
        let n = model.n();
        let (w1, v1) = split(y, model.m(), model.d(), second);
        self.changes_at(model, y, second, b);
        let entries = &mut b.changed;
        entries.extend(self.pattern.blend_entries().iter().map(|&(r, i, _)| (r, i)));
        entries.sort_unstable();
        entries.dedup();
        let signs = &b.signs;
        self.set_entries(
            model,
            entries,
            &w1,
            v1.as_ref(),
            &mut b.row,
            false,
            |_, r, i, _| f64::from(signs[r * n + i]),
        );
        self.pattern.adopt(&mut b.signs);
    }
}

/// The trial's norms of a first-order state: |y|^2 and |y_new|^2, with |e|^2 = `error`.
pub(crate) fn norms_first(ys: &[f64], yn: &[f64], error: f64) -> Norms {
    let (mut w2, mut wn2) = (0.0, 0.0);
    for (y, z) in ys.iter().zip(yn) {
        w2 += y * y;
        wn2 += z * z;
    }
    Norms {
        len: ys.len(),
        blocks: 1,
        error: [error, 0.0],
        start: [w2, 0.0],
        end: [wn2, 0.0],
        deferred: false,
    }
}

/// The new state of a second-order step, W_new = W + cw V + pw, V_new = cv V + pv, into
/// `yn`; returns |W|^2, |V|^2, |W_new|^2, |V_new|^2.
pub(crate) fn advance_second(
    ys: &[f64],
    yn: &mut [f64],
    [cw, cv]: [f64; 2],
    pw: &[f64],
    pv: &[f64],
) -> [f64; 4] {
    let md = pw.len();
    let vs = &ys[md..];
    let mut sq = [0.0f64; 4];
    for j in 0..md {
        let (wj, vj) = (ys[j], vs[j]);
        let wn = wj + cw * vj + pw[j];
        let vn = cv * vj + pv[j];
        yn[j] = wn;
        yn[md + j] = vn;
        sq[0] += wj * wj;
        sq[1] += vj * vj;
        sq[2] += wn * wn;
        sq[3] += vn * vn;
    }
    sq
}

/// W_new = W + cw V + pw into `yn`'s first block, as [`advance_second`] forms it, without
/// its sums (a deferred trial's: [`start_squares`], [`end_squares`]).
pub(crate) fn advance_position(ys: &[f64], yn: &mut [f64], cw: f64, pw: &[f64]) {
    let md = pw.len();
    let vs = &ys[md..];
    for j in 0..md {
        yn[j] = ys[j] + cw * vs[j] + pw[j];
    }
}

/// |W|^2 and |V|^2 of the state `ys` ([W, V], m d entries each), summed as
/// [`advance_second`] sums them (the same bits).
pub(crate) fn start_squares(ys: &[f64], md: usize) -> [f64; 2] {
    let (mut w2, mut v2) = (0.0f64, 0.0f64);
    for (wj, vj) in ys[..md].iter().zip(&ys[md..]) {
        w2 += wj * wj;
        v2 += vj * vj;
    }
    [w2, v2]
}

/// V_new = cv V + pv into `yn`'s second block, and |W_new|^2, |V_new|^2 of `yn`, as
/// [`advance_second`] forms and sums them (the same bits).
pub(crate) fn end_squares(ys: &[f64], yn: &mut [f64], cv: f64, pv: &[f64]) -> [f64; 2] {
    let md = pv.len();
    let (wn, vn) = yn.split_at_mut(md);
    let (mut w2, mut v2) = (0.0f64, 0.0f64);
    for j in 0..md {
        let v = cv * ys[md + j] + pv[j];
        vn[j] = v;
        w2 += wn[j] * wn[j];
        v2 += v * v;
    }
    [w2, v2]
}

/// The error estimates of a second-order step, e_W = c_W V + J^T sum_l E_l b^W_l and
/// e_V = c_V V + J^T sum_l E_l b^V_l with c_B = sum_l E_l coef^B_l (`ecoef` = h E_l), and
/// its [`Norms`] from `sq` ([`advance_second`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn norms_second(
    model: &Model,
    held: &Held,
    ecoef: impl Fn(usize) -> f64,
    [coef_w, coef_v]: [&[f64; 7]; 2],
    [bw, bv]: [&[DVector<f64>]; 2],
    sq: [f64; 4],
    vs: &[f64],
    combo: &mut DVector<f64>,
    hv: &mut DVector<f64>,
    scratch: &mut [f64],
    ws: &mut Workspace,
) -> Norms {
    let ew = (0..7).map(|l| ecoef(l) * coef_w[l]).sum::<f64>();
    let ev = (0..7).map(|l| ecoef(l) * coef_v[l]).sum::<f64>();
    combine(&ecoef, bw, combo);
    let e_w = quad(model, held, ew, sq[1], combo, vs, hv, scratch, ws);
    combine(&ecoef, bv, combo);
    let e_v = quad(model, held, ev, sq[1], combo, vs, hv, scratch, ws);
    Norms {
        len: vs.len(),
        blocks: 2,
        error: [e_w, e_v],
        start: [sq[0], sq[1]],
        end: [sq[2], sq[3]],
        deferred: false,
    }
}

/// The stage evaluator: the held pattern with its output-space quantities, the stages of the
/// step being tried, and the scratch of its weight-space products.
struct OutputSpace<'a> {
    model: &'a Model,
    damping: Damping,
    corrected: bool,
    second: bool,
    held: Held,
    buf: Buffers,
    /// Stage quantities: Delta_l, J V_l (GF: H Delta_l), beta_l, delta_l (n each), alpha_l,
    /// gamma_l.
    dl: Vec<DVector<f64>>,
    jvl: Vec<DVector<f64>>,
    bl: Vec<DVector<f64>>,
    del: Vec<DVector<f64>>,
    al: [f64; 7],
    gl: [f64; 7],
    hv: DVector<f64>,
    combo: DVector<f64>,
    /// The velocity's beta of a second-order step beside the position's in `combo`.
    combo_v: DVector<f64>,
    /// J^T products: the new position and velocity.
    pw: Vec<f64>,
    pv: Vec<f64>,
    /// J^T beta of an error whose parts cancel (see `quad`).
    scratch: Vec<f64>,
    /// H, J W - y and J V before a retake's blend.
    backup: Option<Backup>,
    /// The last trial left V_new unformed (`HeldStages::complete`): its c_V (V_new =
    /// c_V V + J^T `combo_v`) and its norms but |V_new|^2.
    deferred: Option<(f64, Norms)>,
    /// |W|^2 and |V|^2 of the state trials start from, and of the last trial's y_new, where
    /// known as [`advance_second`] sums them (not after a retake's fixes moved entries).
    start_sq: Option<[f64; 2]>,
    end_sq: Option<[f64; 2]>,
    /// Whether first trials defer V_new (off only in a test, to compare the two).
    defer: bool,
    /// Products J^T beta that deferring saved (first trials retaken without V_new).
    saved: u64,
    /// A former backup's storage, reused by the next.
    spare: Option<Backup>,
    fixes: Vec<Fix>,
    /// Gradient flow with [`Crossings::Corrected`]: activations slide (`Slide`).
    sliding: bool,
    /// Slides that a step being retaken enters: per neuron its whole new slide, and the
    /// entering entries (increasing).
    entering: BTreeMap<usize, Slide>,
    entering_entries: Vec<(usize, usize)>,
    /// Entries of those neurons' old slides that let go, and to which side (active or not).
    releases: Vec<(usize, usize, bool)>,
    /// Slides that a step being retaken breaks without a cut (`Break`).
    breaks: Vec<Break>,
    /// A step cut short at a crossing that ends a slide (`split_at`): its share of the
    /// trial, and the crossing entries with the side each takes at the cut.
    split: Option<Cut>,
    /// (rtol, atol) of the step control, and the share theta of its scale that a step's
    /// uncut events may take (`budget`, `EVENT_SHARE`; 0: every event that must switch
    /// exactly cuts, as before the budget).
    tolerances: (f64, f64),
    theta: f64,
    /// Whether a trial's events are judged only until its cut is known (`judge_early`), and
    /// judged again up to the cut only for the neurons with events before it; false judges
    /// every neuron both times, as before (the tests' oracle: the same steps, bit for bit).
    early: bool,
    /// Trials whose judging stopped early at their cut.
    early_stops: u64,
    /// |y|^2 and |y_new|^2 of the last trial (gradient flow), which its step control summed
    /// and `budget` scales by.
    squares: (f64, f64),
    /// The weight of a slide break's error estimate in that budget (`BREAK_WEIGHT`).
    break_weight: f64,
    /// The extra weights of the two-piece estimates of a join that lets other surfaces go
    /// (`RELEASE_WEIGHT`) and of a break followed by plain crossings of its neuron (1), on
    /// top of `BREAK_WEIGHT` (0: such events always cut, as before).
    pieces: [f64; 2],
    /// J W - y and J V were recomputed from the state at the output time just observed
    /// (`integrate_output_space_landed`): `resume` has nothing to do.
    refreshed: bool,
    evaluations: u64,
    /// The reason of the cut of the retake being tried (`split`), and the accepted cut
    /// retakes by reason.
    cut_reason: Option<(Reason, bool)>,
    cuts: Cuts,
}

impl<'a> OutputSpace<'a> {
    fn new(
        model: &'a Model,
        damping: Damping,
        crossings: Crossings,
        y0: &[f64],
    ) -> OutputSpace<'a> {
        let (n, m, d) = (model.n(), model.m(), model.d());
        let md = m * d;
        let second = damping.second_order();
        // The steps' sign passes are over nearby states, and most rows cannot have changed:
        // gradient flow's sliding rows too, whose entries on their surfaces (z = 0 up to
        // rounding) are among their nearest samples, computed again alone (`SignCache`).
        let (held, buf) = held_start(model, y0, second, true);
        let zeros = || vec![DVector::<f64>::zeros(n); 7];
        OutputSpace {
            model,
            damping,
            corrected: crossings == Crossings::Corrected,
            second,
            held,
            buf,
            dl: zeros(),
            jvl: zeros(),
            bl: zeros(),
            del: zeros(),
            al: [0.0; 7],
            gl: [0.0; 7],
            hv: DVector::zeros(n),
            combo: DVector::zeros(n),
            combo_v: DVector::zeros(n),
            pw: vec![0.0; md],
            pv: vec![0.0; if second { md } else { 0 }],
            scratch: vec![0.0; md],
            backup: None,
            deferred: None,
            start_sq: None,
            end_sq: None,
            defer: true,
            saved: 0,
            spare: None,
            fixes: Vec::new(),
            sliding: crossings == Crossings::Corrected && !second,
            entering: BTreeMap::new(),
            entering_entries: Vec::new(),
            releases: Vec::new(),
            breaks: Vec::new(),
            split: None,
            tolerances: (1e-6, 1e-9),
            theta: EVENT_SHARE,
            early: true,
            early_stops: 0,
            squares: (0.0, 0.0),
            break_weight: BREAK_WEIGHT,
            pieces: [RELEASE_WEIGHT, 1.0],
            refreshed: false,
            evaluations: 0,
            cut_reason: None,
            cuts: Cuts::default(),
        }
    }

    /// The seven stages of a step of size `step` from t, in output space.
    fn stages(&mut self, t: f64, step: f64) {
        let held = &self.held;
        let (dl, jvl, bl, del) = (&mut self.dl, &mut self.jvl, &mut self.bl, &mut self.del);
        let (al, gl, hv, combo) = (&mut self.al, &mut self.gl, &mut self.hv, &mut self.combo);
        for s in 0..7 {
            let ts = t + dp5::C[s] * step;
            let a = &dp5::A[s];
            match self.damping.acceleration(ts) {
                Some(acceleration) => {
                    al[s] = 1.0 + step * (0..s).map(|l| a[l] * gl[l]).sum::<f64>();
                    combo.fill(0.0);
                    for l in 0..s {
                        combo.axpy(step * a[l], &del[l], 1.0);
                    }
                    bl[s].copy_from(combo);
                    crate::simd::gemv(&held.h, &bl[s], hv);
                    jvl[s].copy_from(hv);
                    jvl[s].axpy(al[s], &held.jv, 1.0);
                    dl[s].copy_from(&held.delta);
                    for l in 0..s {
                        dl[s].axpy(step * a[l], &jvl[l], 1.0);
                    }
                    // A_s = gamma_s V + J^T delta_s from x'' = -c x' - grad (or the start).
                    gl[s] = acceleration.damped(al[s]);
                    let (d_s, b_s, delta_s) = (&dl[s], &bl[s], &mut del[s]);
                    delta_s
                        .iter_mut()
                        .zip(b_s.iter().zip(d_s.iter()))
                        .for_each(|(e, (b, g))| *e = acceleration.of(*b, *g));
                }
                None => {
                    // GF: K_l = -J^T Delta_l, so Delta_s = Delta_0 - h sum_l a_sl H Delta_l.
                    dl[s].copy_from(&held.delta);
                    for l in 0..s {
                        dl[s].axpy(-step * a[l], &jvl[l], 1.0);
                    }
                    // jvl holds H Delta_l for GF.
                    crate::simd::gemv(&held.h, &dl[s], hv);
                    jvl[s].copy_from(hv);
                }
            }
            self.evaluations += 1;
        }
    }
}

/// The share theta of the step control's scale that the errors of a step's uncut events
/// (`events`) may take: a retake is cut at the first event where their sum in squares
/// exceeds theta^2 N sc^2 (N = m d, sc = atol + rtol rms W, the norm of
/// [`crate::integrate::drive`]'s error control), and blends the events before it.
///
/// One neuron's error is one row of W, so the budget grows with the width against it. With
/// the step after a cut at most [`crate::integrate::CUT_GROWTH`] times the cut step, measured
/// against tight runs: at n = 1000, m = 2000, T = 0.1, 39 steps and 2.9e-7 where cutting at
/// every such event took 110 steps and 3.1e-7; the benchmark case (n = 100, m = 400) keeps
/// its accuracy (L(10) 1.05e-6, L(50) 5.2e-5, L(100) 1.02e-4 from the reference, against
/// 1.06e-6, 6.4e-5, 1.03e-4). The estimates leave out errors that a larger budget shows
/// (theta = 0.1: L(10) 2.1e-6; 0.3 with the step kept after cuts: 5.4e-7 but L(100) 1.5e-4).
pub(crate) const EVENT_SHARE: f64 = 0.05;

/// The weight of a slide break's own error estimate (`Break::error`) in the budget of
/// `EVENT_SHARE`: the estimate (the two pieces' O(h^2) terms with Delta linear over the step)
/// leaves out errors measured at 10 to 30 times it. With weight 1 or 10 seed 3 of the
/// benchmark's shape (n = 100, d = 20, m = 400, T = 20) lost a factor 5 at t = 10 and 15
/// against the cut breaks (1.3e-5 against 2.5e-6); 17 (300 in squares) and 32 kept it.
pub(crate) const BREAK_WEIGHT: f64 = 17.0;

/// The extra weight (on top of `BREAK_WEIGHT`) of the two-piece estimate of a join that makes
/// other surfaces of its neuron let go, taken uncut as a `Break` onto the joined slide: a
/// factor chosen by measurement, not derived. With 1 (or 3) the budget test's problem
/// (n = 100, m = 400, seed 0, T = 10) ends at 1.27e-6 (1.46e-6) from its tight run in 355
/// (359) steps, over its 1e-6, where cutting gives 7.1e-7 in 363; from 10 on it takes
/// those steps bit for bit. At n = 1000, m = 10,000, T = 1 the join's cuts fall from 38 to 23
/// with 10, to 7 with 1.
pub(crate) const RELEASE_WEIGHT: f64 = 10.0;

/// A step's joins: per neuron its new slide, the entering entries, and the entries of old
/// slides that let go (to the active side or not).
type Joins<'a> = (
    &'a mut BTreeMap<usize, Slide>,
    &'a mut Vec<(usize, usize)>,
    &'a mut Vec<(usize, usize, bool)>,
);

/// The entries that slide, and those that leave (to the active side or not).
type Sides = (Vec<usize>, Vec<(usize, bool)>);

/// A cut step: the crossing's share of the step, and the entries crossing there with their
/// new sides (active or not).
type Cut = (f64, Vec<(usize, usize, bool)>);

/// Entries leave their slides where Filippov's weights (at the state's Delta) leave [0, 1]
/// or the surface stops attracting: to the active side for theta > 1 (or theta >= 1/2 when
/// it repels), else the inactive one. The exit is tangential (the sliding velocity meets the
/// side's), so finding it at the end of a step costs O(h^2) once.
fn leave_slides(model: &Model, held: &mut Held, w: &DMatrixView<f64>, row: &mut [f64]) {
    let xx = model.input_gram();
    let neurons: Vec<usize> = held.slides.keys().copied().collect();
    // The slides that surely hold at this Delta, checked on their masks side by side (read
    // only; late in a run at n = 1000 about 10,000 slides a step). A release below that moves
    // Delta has the checks after it taken again.
    let sure = {
        let held = &*held;
        let check = |&r: &usize| {
            let mask = held.pattern.mask_row(r).map(Row::Mask);
            let slide = &held.slides[&r];
            mask.and_then(|m| slide.surely(xx, model.a()[r], m, &held.delta)) == Some(true)
        };
        if neurons.len() * model.n() >= PARALLEL_ENTRIES && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            neurons.par_iter().with_min_len(64).map(check).collect()
        } else {
            neurons.iter().map(check).collect::<Vec<bool>>()
        }
    };
    let mut moved = false;
    for (r, sure) in neurons.into_iter().zip(sure) {
        if sure && !moved {
            continue;
        }
        let a_r = model.a()[r];
        held.pattern.row_into(r, row);
        if held.slides[&r].holds(xx, a_r, row, &held.delta) {
            continue;
        }
        let old = held.slides.remove(&r).expect("a listed slide");
        let (new, leave) = exits(model, &old, a_r, row, &held.delta);
        reslide_by(&mut held.h, model, row, (Some(&old), new.as_ref()), 1.0);
        if let Some(slide) = new {
            held.slides.insert(r, slide);
        }
        for (i, active) in leave {
            if active {
                // A release moves Delta_i by (a_r / sqrt m) w_r . x_i, with w_r . x_i = 0 up
                // to rounding: mostly by less than half an ulp of Delta_i, and then the checks
                // above stand (they read nothing else the release moves). To T = 3 at n = 1000,
                // 1,523 releases had sent 900,738 slides through a serial check again.
                let before = held.delta[i].to_bits();
                release(model, held, w, (r, i), row);
                moved |= held.delta[i].to_bits() != before;
            }
        }
    }
}

/// What is left of the failing slide `old` of neuron r (row S_r. = `row`, at `delta`): the
/// slide on the entries that stay, if any, and the entries that leave with their sides
/// (active or not), by `resolve`, or entry by entry by Filippov's weights where it finds no
/// consistent choice.
fn exits(
    model: &Model,
    old: &Slide,
    a_r: f64,
    row: &[f64],
    delta: &DVector<f64>,
) -> (Option<Slide>, Vec<(usize, bool)>) {
    let (stay, mut leave) = resolve(model, &old.set, a_r, row, delta, None).unwrap_or_else(|| {
        let (mut stay, mut leave) = (Vec::new(), Vec::new());
        let theta = old.weights(model.input_gram(), a_r, row, delta).1;
        for (&i, &th) in old.set.iter().zip(&theta) {
            if a_r * delta[i] > 0.0 && (0.0..=1.0).contains(&th) {
                stay.push(i);
            } else {
                leave.push((i, th >= 0.5));
            }
        }
        (stay, leave)
    });
    let new = if stay.is_empty() {
        None
    } else {
        let kept = Slide::new(model, stay.clone());
        if kept.is_none() {
            leave.extend(stay.iter().map(|&i| (i, false)));
        }
        kept
    };
    (new, leave)
}

/// A slide broken inside a retake by its neuron's last crossing there, taken without a cut:
/// the neuron slides on `old` with its row `before` up to the crossing's `share` of the step,
/// then moves with the row `after` (the crossing and the leaving entries on their sides) on
/// what is left of the slide (`new`). Its increment over the retake is the sum of the two
/// pieces,
///
/// ```text
/// w_r += share P_old (J_before^T beta)_r + (1 - share) P_new (J_after^T beta)_r,
/// ```
///
/// beta the step's weighted -h Delta: exact for a switch at `share` with Delta held. With
/// Delta linear over the step, the two pieces are off by share (1 - share) / 2 times the
/// jump of the velocity at -h (Delta(h) - Delta(0)), O(h^2) (`Break::error`).
struct Break {
    r: usize,
    share: f64,
    old: Slide,
    new: Option<Slide>,
    before: Vec<f64>,
    after: Vec<f64>,
    /// The crossing joins `new` (a join that makes other surfaces let go): the row ends
    /// projected on it, as an entering slide's does.
    joins: bool,
}

impl Break {
    /// The two pieces' increments over a whole step with the weighted Delta `beta`:
    /// P_old (J_before^T beta)_r and P_new (J_after^T beta)_r.
    fn pieces(&self, model: &Model, beta: &DVector<f64>) -> [Vec<f64>; 2] {
        let x = &model.data().x;
        let kappa = model.a()[self.r] / (model.m() as f64).sqrt();
        let increment = |row: &[f64]| free_increment(x, row, beta, kappa);
        let mut before = increment(&self.before);
        self.old.project(x, &mut before, 1, 0);
        let mut after = increment(&self.after);
        if let Some(new) = &self.new {
            new.project(x, &mut after, 1, 0);
        }
        [before, after]
    }

    /// The squared error in w_r of the two pieces: share (1 - share) / 2 |jump at dbeta|
    /// (dbeta = -h (Delta(h) - Delta(0)), Delta's change over the step), and the crossing's
    /// share, from the straight line through z_ri, off by the curvature of the sliding path,
    /// share (1 - share) / 2 |x_i . P_old J^T dbeta| / |z_ri(h) - z_ri(0)| of the step, times
    /// the jump at beta.
    fn error(
        &self,
        model: &Model,
        i: usize,
        rise: f64,
        beta: &DVector<f64>,
        dbeta: &DVector<f64>,
    ) -> f64 {
        let x = &model.data().x;
        let s = self.share;
        let [b, a] = self.pieces(model, beta);
        let [db, da] = self.pieces(model, dbeta);
        let jump2: f64 = a.iter().zip(&b).map(|(a, b)| (a - b).powi(2)).sum();
        let djump2: f64 = da.iter().zip(&db).map(|(a, b)| (a - b).powi(2)).sum();
        let bow = 0.5 * s * (1.0 - s);
        let curve: f64 = db.iter().enumerate().map(|(k, v)| v * x[(i, k)]).sum();
        let shift = if rise == 0.0 {
            1.0
        } else {
            (bow * curve / rise).abs().min(1.0)
        };
        bow * bow * djump2 + shift * shift * jump2
    }

    /// Row r of the retake's new state `yn` from the start `ys` (column-major m x d).
    fn advance(&self, model: &Model, beta: &DVector<f64>, ys: &[f64], yn: &mut [f64]) {
        let m = model.m();
        let [before, after] = self.pieces(model, beta);
        for (k, (b, a)) in before.iter().zip(&after).enumerate() {
            let j = k * m + self.r;
            yn[j] = ys[j] + self.share * b + (1.0 - self.share) * a;
        }
        if let Some(new) = self.new.as_ref().filter(|_| self.joins) {
            new.project(&model.data().x, &mut yn[..m * model.d()], m, self.r);
        }
    }
}

/// Entry (r, i), no longer sliding (its slide already updated), goes to the active side.
fn release(
    model: &Model,
    held: &mut Held,
    w: &DMatrixView<f64>,
    (r, i): (usize, usize),
    row: &mut [f64],
) {
    let z = dot_row(w, &model.data().x, r, i);
    held.pattern.row_into(r, row);
    held.change(model, r, i, 1.0, z, 0.0, row);
    held.pattern.set_active(r, i, true);
}

/// The sides of the entries `set` of neuron r, whose joint slide fails, by Filippov's rule
/// for several surfaces: each entry slides (weight in [0, 1], attracting), or leaves to the
/// active side (z' >= 0 there) or the inactive one (z' <= 0), all at once, with as many
/// sliding as can (first found of the 3^k choices; None beyond 6 entries or when no choice
/// is consistent). Per-entry exits would cycle where surfaces meet.
fn resolve(
    model: &Model,
    set: &[usize],
    a_r: f64,
    row: &[f64],
    delta: &DVector<f64>,
    must: Option<usize>,
) -> Option<Sides> {
    let k = set.len();
    if k > 6 {
        return None;
    }
    let xx = model.input_gram();
    let mut codes: Vec<usize> = (0..3usize.pow(k as u32)).collect();
    let digit = |code: usize, a: usize| code / 3usize.pow(a as u32) % 3;
    let slides = |code: usize| (0..k).filter(|&a| digit(code, a) == 0).count();
    codes.sort_by_key(|&c| std::cmp::Reverse(slides(c)));
    let mut trial = row.to_vec();
    for code in codes {
        let stay: Vec<usize> = (0..k)
            .filter(|&a| digit(code, a) == 0)
            .map(|a| set[a])
            .collect();
        if must.is_some_and(|i| !stay.contains(&i)) {
            continue;
        }
        let leave: Vec<(usize, bool)> = (0..k)
            .filter(|&a| digit(code, a) != 0)
            .map(|a| (set[a], digit(code, a) == 1))
            .collect();
        for &(i, on) in &leave {
            trial[i] = if on { 1.0 } else { 0.0 };
        }
        for &i in &stay {
            trial[i] = 0.0;
        }
        let slide = if stay.is_empty() {
            None
        } else {
            match Slide::new(model, stay.clone()) {
                Some(s) => Some(s),
                None => continue,
            }
        };
        if let Some(s) = &slide {
            if !s.holds(xx, a_r, &trial, delta) {
                continue;
            }
        }
        // z_i' = -(a_r / sqrt m) sum_j q(i, j) S_rj Delta_j on the released surfaces.
        let moves = leave.iter().all(|&(i, on)| {
            let rate: f64 = -a_r
                * trial
                    .iter()
                    .enumerate()
                    .filter(|(_, sj)| **sj != 0.0)
                    .map(|(j, sj)| {
                        let q = slide.as_ref().map_or(xx[(j, i)], |s| s.q(xx, i, j));
                        q * sj * delta[j]
                    })
                    .sum::<f64>();
            if on {
                rate >= 0.0
            } else {
                rate <= 0.0
            }
        });
        if moves {
            return Some((stay, leave));
        }
    }
    None
}

/// The event a retake may be cut at (`events`), counted by reason in [`Cuts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reason {
    BreakThenCross,
    JoinRelease,
    Bends,
    BreakPieces,
    BreakAfterJoin,
}

impl Reason {
    /// Count one cut at this reason.
    fn count(self, cuts: &mut Cuts) {
        *match self {
            Reason::BreakThenCross => &mut cuts.break_then_cross,
            Reason::JoinRelease => &mut cuts.join_release,
            Reason::Bends => &mut cuts.bends,
            Reason::BreakPieces => &mut cuts.break_pieces,
            Reason::BreakAfterJoin => &mut cuts.break_after_join,
        } += 1;
    }
}

/// An event the step may be cut at: its share, the squared error in W of taking it uncut,
/// and its reason.
type Candidate = (f64, f64, Reason);

/// A step's crossings (gradient flow with slides) as (r, i, s), sorted by (r, s): s is the
/// share of the step before the crossing (the straight line through z at both ends).
type Order = [(usize, usize, f64)];

/// A retake's straight path: W at its two ends, and the step's weighted -h Delta (beta) with
/// its change over the step (dbeta = -h (Delta(h) - Delta(0))); the weight of a break's
/// error estimate (`BREAK_WEIGHT`), and the extra weights of a join that releases a surface
/// and of a break followed by plain crossings, taken as two pieces (0: always cut).
type Path<'p> = (
    &'p DMatrixView<'p, f64>,
    &'p DMatrixView<'p, f64>,
    &'p DVector<f64>,
    &'p DVector<f64>,
    f64,
    [f64; 2],
);

/// The crossings of a step, neuron by neuron in time order, up to the share `limit`: which
/// join a slide (their surface, joined to the neuron's slide as it stands at that time,
/// attracts with Filippov weights in [0, 1] at Delta interpolated to the crossing; `delta1`
/// is Delta at the held step's end), which of those make other surfaces of the neuron let go
/// (`releases`), and which break a slide (a crossing of another entry after which the
/// neuron's Filippov weights leave [0, 1]). Joins go to `entering` (the neuron's whole new
/// slide) and `entries`; every crossing that does not join goes to `crossed` with its new
/// side and share. The events where the step may be cut go to `candidates` as (share, the
/// squared error in W of taking them uncut), and the earliest share among them is returned
/// (all beyond 1e-3, where a step starts at the previous cut's own entry):
///
/// - a crossing that breaks a slide: the velocities differ by O(1) (not tangentially). As
///   the neuron's last crossing in the step (and without a join before it), it is taken
///   uncut as two pieces (`Break`, to `breaks`) with their own second-order error
///   (`Break::error`, weighted by `BREAK_WEIGHT`) and the entries only the bent path crosses
///   (`Bends::missed`); cut there, the neuron would slide on to the step's end, off by
///   (1 - s) |(1 - P) u| (u its free increment over the step after the crossing). With later
///   crossings of the neuron in the step it is taken the same way where the break leaves the
///   neuron free and none of them can join (a_r Delta_j <= 0 at its share): they are blended
///   into the second piece's row with their shares of (s, 1), their mistiming by the bend
///   counted by `Bends::event`; else it must be cut (error infinite);
/// - a join that makes other surfaces of its neuron let go: as the neuron's last event in the
///   step (no join before it), a change of slide taken uncut as two pieces (`Break` onto the
///   joined slide) whose estimate weighs `RELEASE_WEIGHT` times a break's; else it must be
///   cut;
/// - the first crossing of a sliding or joining neuron with more than one in the step: the
///   held trial kept its velocity of the step's start throughout, so the shares of its later
///   crossings (and the judgments of their joins) are off once the first has switched; such
///   events come in pairs where surfaces meet. The error is measured on the bent path
///   (`Bends`).
///
/// `blend_sliding` cuts where these errors, summed, exceed its budget. Taken in entry order
/// instead, a crossing and a join of one neuron in one step sent the test problem of
/// tests/gf_order.rs to another branch (3e-7 relative) at every cap down to 0.0015625.
///
/// `limit` is the share judged up to (1, or the cut); with `budget` (the first judging of a
/// step with an error budget, and a count of early stops) the judging stops once the cut is
/// known (`judge_early`) and returns None, its findings then only the candidates before the
/// first event of the first neuron it did not judge. `prune` (with a limit below 1): judge
/// only the neurons with an event up to it, the others finding nothing.
#[allow(clippy::too_many_arguments)]
fn events(
    model: &Model,
    held: &Held,
    order: &Order,
    (limit, budget, prune): (f64, Option<(f64, &mut u64)>, bool),
    delta1: &DVector<f64>,
    row: &mut [f64],
    joins: Joins<'_>,
    crossed: &mut Vec<(usize, usize, bool, f64)>,
    path: Path<'_>,
    candidates: &mut Vec<Candidate>,
    breaks: &mut Vec<Break>,
) -> Option<f64> {
    let n = model.n();
    // Judged up to a cut, a neuron whose events all come after it finds nothing: only the
    // others are judged (each with all its events, as `neuron_events` reads them).
    let before: Vec<(usize, usize, f64)>;
    let order = if prune && limit < 1.0 {
        before = neuron_starts(order)
            .windows(2)
            .filter(|g| order[g[0]].2 <= limit)
            .flat_map(|g| order[g[0]..g[1]].iter().copied())
            .collect();
        &before[..]
    } else {
        order
    };
    // Each neuron's events are judged on their own (read-only `held`): runs of neurons go to
    // rayon's threads when there is enough work, and their findings are gathered back in
    // neuron order, as one thread would have found them.
    let starts = neuron_starts(order);
    let (entering, entries, releases) = joins;
    let judging = Judging {
        model,
        held,
        limit,
        delta1,
        path,
    };
    let mut out = Judged {
        entering,
        entries,
        releases,
        crossed,
        candidates,
        breaks,
        critical: None,
    };
    let parallel = order.len() * n >= PARALLEL_ENTRIES && rayon::current_num_threads() > 1;
    if let Some((budget, stopped)) = budget {
        let Some(all) = judge_early(judging, order, &starts, budget, parallel, out.candidates)
        else {
            *stopped += 1;
            return None;
        };
        gather(all, &mut out);
    } else if parallel {
        use rayon::prelude::*;
        let parts = runs(&starts, 4 * rayon::current_num_threads());
        let found: Vec<Gathered> = parts
            .par_iter()
            .map(|&(lo, hi)| {
                let mut gathered = Gathered::default();
                let (mut row, mut at) = (vec![0.0; n], DVector::zeros(n));
                let mut out = gathered.judged();
                for g in starts[lo..=hi].windows(2) {
                    let neuron = &order[g[0]..g[1]];
                    neuron_events(judging, neuron, &mut row, &mut at, &mut out);
                }
                gathered.critical = out.critical;
                gathered
            })
            .collect();
        gather(found, &mut out);
    } else {
        let mut at = DVector::zeros(n);
        for g in starts.windows(2) {
            neuron_events(judging, &order[g[0]..g[1]], row, &mut at, &mut out);
        }
    }
    out.entries.sort_unstable();
    out.critical
}

/// Where each neuron's events start in `order` (sorted by neuron), then its length.
fn neuron_starts(order: &Order) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut k = 0;
    while k < order.len() {
        starts.push(k);
        let r = order[k].0;
        k += order[k..].partition_point(|e| e.0 == r);
    }
    starts.push(order.len());
    starts
}

/// The candidate where the running sum of the squared errors, taken in share order (a stable
/// sort of `candidates`, in place), first passes `budget`: where a step with an error budget
/// is cut (`OutputSpace::blend_sliding`, `judge_early`).
fn over_budget(candidates: &mut [Candidate], budget: f64) -> Option<Candidate> {
    candidates.sort_by(|a, b| a.0.partial_cmp(&b.0).expect("finite"));
    let mut sum = 0.0;
    candidates.iter().copied().find(|&(_, e2, _)| {
        sum += e2;
        sum > budget
    })
}

/// The findings of runs of neurons (`found`, in neuron order) appended to `out` in that
/// order, as one thread judging them all would have pushed them, and the earliest share that
/// must be cut at into `out.critical`.
fn gather(found: impl IntoIterator<Item = Gathered>, out: &mut Judged<'_>) {
    let mut critical = out.critical;
    for f in found {
        out.entering.extend(f.entering);
        out.entries.extend(f.entries);
        out.releases.extend(f.releases);
        out.crossed.extend(f.crossed);
        out.candidates.extend(f.candidates);
        out.breaks.extend(f.breaks);
        critical = match (critical, f.critical) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    out.critical = critical;
}

/// `events`' first judging of a step with an error budget (on rayon's threads when
/// `parallel`): the neurons are judged in the order of their first event in the step, in
/// batches, until the cut is
/// known. Every candidate of a neuron lies at or after its first event, so once the neurons
/// whose first event comes before share `b` are judged, the candidates before `b` are all
/// known; when their squared errors, summed in share order, pass `budget` before `b`, the cut
/// is there, and the later neurons' events (most of a long trial's, at n = 1000) are not
/// judged: the retake is judged again up to the cut anyway. Returns every neuron's
/// findings in neuron order when all were judged (no cut found early), as the neuron-order
/// judging finds them; else None, and `candidates` holds the candidates before `b` as a
/// stable sort by share orders that judging's list, so that the caller's [`over_budget`]
/// finds the same cut, to the bit.
fn judge_early(
    judging: Judging<'_>,
    order: &Order,
    starts: &[usize],
    budget: f64,
    parallel: bool,
    candidates: &mut Vec<Candidate>,
) -> Option<Vec<Gathered>> {
    use rayon::prelude::*;
    let n = judging.model.n();
    let neurons = starts.len() - 1;
    let first = |g: usize| order[starts[g]].2;
    // Neurons by their first event (the order is by neuron, then share): a stable sort.
    let mut by_first: Vec<usize> = (0..neurons).collect();
    // (A NaN share, of a non-finite state, sorts last and never lets the judging stop.)
    by_first.sort_by(|&a, &b| first(a).total_cmp(&first(b)));
    let mut found: Vec<Option<Gathered>> = (0..neurons).map(|_| None).collect();
    let mut done = 0;
    // Batches of a sixteenth: at n = 1000 the cut came after about a fifth of the neurons
    // (to T = 3: 28% of them judged, against 36% with doubling batches and 26% with
    // batches of a 32nd).
    let batch = neurons.div_ceil(16);
    loop {
        let end = (done + batch).min(neurons);
        let judge = |(row, at): &mut (Vec<f64>, DVector<f64>), &g: &usize| {
            let mut gathered = Gathered::default();
            let mut out = gathered.judged();
            neuron_events(judging, &order[starts[g]..starts[g + 1]], row, at, &mut out);
            gathered.critical = out.critical;
            (g, gathered)
        };
        let scratch = || (vec![0.0; n], DVector::zeros(n));
        let judged: Vec<(usize, Gathered)> = if parallel {
            by_first[done..end]
                .par_iter()
                .with_min_len(8)
                .map_init(scratch, judge)
                .collect()
        } else {
            let mut one = scratch();
            by_first[done..end]
                .iter()
                .map(|g| judge(&mut one, g))
                .collect()
        };
        for (g, gathered) in judged {
            found[g] = Some(gathered);
        }
        done = end;
        if done == neurons {
            let all = found.into_iter().map(|f| f.expect("every neuron judged"));
            return Some(all.collect());
        }
        // The candidates before the first event of the neurons not judged yet, in the
        // order the neuron-order judging pushes them (then sorted by share, stably: the
        // caller's sort leaves them so).
        let below = first(by_first[done]);
        let mut known: Vec<Candidate> = found
            .iter()
            .flatten()
            .flat_map(|f| f.candidates.iter().copied().filter(|c| c.0 < below))
            .collect();
        // A cut at share 1 is no cut, and the caller would take this judging's findings:
        // those need every neuron judged.
        if over_budget(&mut known, budget).is_some_and(|c| c.0 < 1.0) {
            candidates.append(&mut known);
            return None;
        }
    }
}

/// Cuts `starts` (the first event of each neuron, then the end) into about `parts` runs of
/// neurons with similar numbers of events, as (first neuron, one past the last).
fn runs(starts: &[usize], parts: usize) -> Vec<(usize, usize)> {
    let total = starts[starts.len() - 1];
    let mut out = Vec::new();
    let mut lo = 0;
    for g in 1..starts.len() {
        if starts[g] * parts >= (out.len() + 1) * total || g + 1 == starts.len() {
            out.push((lo, g));
            lo = g;
        }
    }
    out
}

/// What `events` finds, borrowed from the caller or from a run's own `Gathered`.
struct Judged<'a> {
    entering: &'a mut BTreeMap<usize, Slide>,
    entries: &'a mut Vec<(usize, usize)>,
    releases: &'a mut Vec<(usize, usize, bool)>,
    crossed: &'a mut Vec<(usize, usize, bool, f64)>,
    candidates: &'a mut Vec<Candidate>,
    breaks: &'a mut Vec<Break>,
    /// The earliest share of an event that must be cut at.
    critical: Option<f64>,
}

impl Judged<'_> {
    /// An event the step may be cut at with the squared error of taking it uncut; `must`:
    /// one that cut before the budget (`EVENT_SHARE`), the others count in it alone.
    fn cut(&mut self, s: f64, e2: f64, must: bool, why: Reason) {
        if s > 1e-3 {
            if must {
                self.critical = Some(self.critical.map_or(s, |c: f64| c.min(s)));
            }
            self.candidates.push((s, e2, why));
        }
    }
}

/// A run of neurons' findings on one of rayon's threads (`events`).
#[derive(Default)]
struct Gathered {
    entering: BTreeMap<usize, Slide>,
    entries: Vec<(usize, usize)>,
    releases: Vec<(usize, usize, bool)>,
    crossed: Vec<(usize, usize, bool, f64)>,
    candidates: Vec<Candidate>,
    breaks: Vec<Break>,
    critical: Option<f64>,
}

impl Gathered {
    fn judged(&mut self) -> Judged<'_> {
        Judged {
            entering: &mut self.entering,
            entries: &mut self.entries,
            releases: &mut self.releases,
            crossed: &mut self.crossed,
            candidates: &mut self.candidates,
            breaks: &mut self.breaks,
            critical: None,
        }
    }
}

/// What every neuron's events in a step are judged against (`events`' arguments of the same
/// names).
#[derive(Clone, Copy)]
struct Judging<'j> {
    model: &'j Model,
    held: &'j Held,
    limit: f64,
    delta1: &'j DVector<f64>,
    path: Path<'j>,
}

/// `events` for one neuron: `order` holds its events (all of neuron r), `row` and `at` are
/// scratch of length n.
fn neuron_events(
    judging: Judging<'_>,
    order: &Order,
    row: &mut [f64],
    at: &mut DVector<f64>,
    out: &mut Judged<'_>,
) {
    let Judging {
        model,
        held,
        limit,
        delta1,
        path,
    } = judging;
    let xx = model.input_gram();
    let x = &model.data().x;
    let (w0, w1, beta, _, _, extra) = path;
    let sqrt_m = (model.m() as f64).sqrt();
    let r = order[0].0;
    let a_r = model.a()[r];
    let kappa = a_r / sqrt_m;
    let mut current: Option<Slide> = held.slides.get(&r).cloned();
    let sliding = current.is_some();
    let mut joined = false;
    held.pattern.row_into(r, row);
    let mut bends = Bends::new(x, w0, w1, r);
    let events = order.iter().take_while(|e| e.2 <= limit);
    let count = events.clone().count();
    for (taken, &(_, i, s)) in events.enumerate() {
        // The neuron's last event in the step (before the cut being judged).
        let last = taken + 1 == count && s < limit;
        // The jump of w_r's increment over the step where S_ri switches on (off: its
        // negative), kappa beta_i x_i (projected below where the neuron slides).
        let sign = if held.pattern.active(r, i) { -1.0 } else { 1.0 };
        let mut jump: Vec<f64> = (0..x.ncols())
            .map(|c| sign * kappa * beta[i] * x[(i, c)])
            .collect();
        // A neuron off every surface can join only one that attracts (a_r Delta_i > 0,
        // Filippov's first condition in `Slide::weights`): the others cross, judged in
        // O(1) where building the slide and its weights costs O(n) each.
        let alone = current.is_none();
        if alone && a_r * (s * delta1[i] + (1.0 - s) * held.delta[i]) <= 0.0 {
            let on = !held.pattern.active(r, i);
            row[i] = f64::from(u8::from(on));
            out.crossed.push((r, i, on, s));
            bends.event(i, s, norm(&jump));
            bends.kink(s, jump);
            continue;
        }
        at.copy_from(&held.delta);
        at.axpy(s, delta1, 1.0 - s);
        let mut set = current.as_ref().map_or(Vec::new(), |sl| sl.set.clone());
        set.insert(set.partition_point(|&j| j < i), i);
        if let Some(slide) = Slide::new(model, set) {
            if slide.holds(xx, a_r, row, at) {
                row[i] = 0.0;
                let turn = bends.turn(&slide);
                bends.event(i, s, norm(&turn));
                bends.kink(s, turn);
                current = Some(slide);
                joined = true;
                out.entries.push((r, i));
                continue;
            }
            // Joining may need another surface of the neuron to let go (a neuron off
            // every surface has none: its one choice, sliding, was just refused).
            let kept = (!alone)
                .then(|| resolve(model, &slide.set, a_r, row, at, Some(i)))
                .flatten()
                .and_then(|(stay, leave)| Some((Slide::new(model, stay)?, leave)));
            if let Some((kept, leave)) = kept.as_ref().filter(|_| last && !joined && extra[0] > 0.0)
            {
                // The neuron's last event of the step joins a surface and lets others
                // go: its slide changes at s from the old to `kept`, taken uncut as two
                // pieces like a break (`Break`).
                let old = current.take().expect("a sliding neuron");
                let mut before = row.to_vec();
                before[i] = f64::from(u8::from(held.pattern.active(r, i)));
                row[i] = 0.0;
                for &j in &kept.set {
                    row[j] = 0.0;
                }
                for &(j, on) in leave {
                    row[j] = f64::from(u8::from(on));
                }
                out.entries.push((r, i));
                out.releases.extend(leave.iter().map(|&(j, on)| (r, j, on)));
                let piece = Break {
                    r,
                    share: s,
                    old,
                    new: Some(kept.clone()),
                    before,
                    after: row.to_vec(),
                    joins: true,
                };
                let e2 = piece_error(model, &piece, i, path, &mut bends, order);
                out.cut(s, extra[0].powi(2) * e2, true, Reason::JoinRelease);
                out.breaks.push(piece);
                break;
            }
            if let Some((kept, leave)) = kept {
                for &j in &kept.set {
                    row[j] = 0.0;
                }
                for &(j, on) in &leave {
                    row[j] = f64::from(u8::from(on));
                }
                current = Some(kept);
                joined = true;
                out.entries.push((r, i));
                out.releases.extend(leave.iter().map(|&(j, on)| (r, j, on)));
                out.cut(s, f64::INFINITY, true, Reason::JoinRelease);
                continue;
            }
        }
        let on = !held.pattern.active(r, i);
        let was = row[i];
        row[i] = f64::from(u8::from(on));
        out.crossed.push((r, i, on, s));
        if let Some(slide) = &current {
            slide.project(x, &mut jump, 1, 0);
        }
        bends.event(i, s, norm(&jump));
        let broken = current
            .as_ref()
            .is_some_and(|slide| !slide.holds(xx, a_r, row, at));
        // The neuron's crossings after this one in the step (up to `limit`).
        let later = &order[taken + 1..count];
        let pieces = (broken && !joined && s < limit)
            .then(|| {
                let old = current.as_ref().expect("a broken slide");
                let (new, leave) = exits(model, old, a_r, row, at);
                // Later crossings of a neuron the break leaves free that cannot join
                // (their surface repels, a_r Delta_j <= 0) are plain crossings.
                let plain = new.is_none()
                    && later.iter().all(|&(_, j, sj)| {
                        a_r * (sj * delta1[j] + (1.0 - sj) * held.delta[j]) <= 0.0
                    });
                (later.is_empty() || (plain && extra[1] > 0.0)).then_some((new, leave))
            })
            .flatten();
        if let Some((new, leave)) = pieces {
            // The crossing breaks the slide, and the neuron's later crossings in the
            // step (if any) are plain: its two pieces are summed (`Break`), with their
            // own (second-order) error, the later crossings blended into the second
            // piece's row with their shares of it (s, limit), their mistiming by the
            // bend in `Bends::event`.
            let old = current.take().expect("a broken slide");
            let mut before = row.to_vec();
            before[i] = was;
            for &(j, on) in &leave {
                row[j] = f64::from(u8::from(on));
            }
            out.releases.extend(leave.iter().map(|&(j, on)| (r, j, on)));
            for &(_, j, sj) in later {
                let on = !held.pattern.active(r, j);
                row[j] = if on { limit - sj } else { sj - s } / (limit - s);
                out.crossed.push((r, j, on, sj));
            }
            let piece = Break {
                r,
                share: s,
                old,
                new,
                before,
                after: row.to_vec(),
                joins: false,
            };
            let e2 = piece_error(model, &piece, i, path, &mut bends, order);
            for &(_, j, sj) in later {
                bends.event(j, sj, (kappa * beta[j]).abs() * x.row(j).norm());
            }
            let (e2, why) = if later.is_empty() {
                (e2, Reason::BreakPieces)
            } else {
                (extra[1].powi(2) * e2, Reason::BreakThenCross)
            };
            out.cut(s, e2, true, why);
            out.breaks.push(piece);
            break;
        }
        if let Some(slide) = current.as_ref().filter(|_| broken) {
            // The slide breaks here. Uncut, the neuron keeps its sliding velocity to
            // the step's end (the exit is taken there, `leave_slides`), off by the part
            // of its free velocity that the slide removes, for (1 - s) of the step;
            // with later crossings of the neuron in the step, what follows the break
            // is judged after a cut.
            let (e2, why) = if taken + 1 < count {
                (f64::INFINITY, Reason::BreakThenCross)
            } else {
                let mut free = bends.free(row, beta, kappa);
                let kept = free.clone();
                slide.project(x, &mut free, 1, 0);
                let off: f64 = kept.iter().zip(&free).map(|(a, b)| (a - b).powi(2)).sum();
                ((1.0 - s).powi(2) * off, Reason::BreakAfterJoin)
            };
            out.cut(s, e2, true, why);
            break;
        }
        bends.kink(s, jump);
    }
    // Two crossings of a neuron that neither slides nor joins are transversal and
    // independent: the second's share is off by O(h) per pair, pairs fall in one step
    // with a probability O(h), and cutting at them cost 45% more steps on the benchmark.
    // A sliding or joining neuron's events bend its path (`Bends`): uncut, the later
    // ones are mistimed by the bends before them.
    if order.len() > 1 && order[0].2 <= limit && (sliding || joined) {
        if limit >= 1.0 {
            let skip = |j: usize| {
                order.iter().any(|e| e.1 == j)
                    || held.slides.get(&r).is_some_and(|sl| sl.contains(j))
                    || current.as_ref().is_some_and(|sl| sl.contains(j))
            };
            bends.missed(order[0].2, skip, beta, kappa);
        }
        out.cut(order[0].2, bends.e2, true, Reason::Bends);
    }
    if joined {
        out.entering.insert(r, current.expect("a joined slide"));
    }
}

/// The squared error in W of taking a change of neuron r's slide at the crossing of entry i
/// uncut as two pieces (`Break`, of the events `order` of the neuron in the step): the
/// pieces' own second-order error (`Break::error`, weighted by `BREAK_WEIGHT` in `path`),
/// and the entries that the path bent at the change crosses and the straight one does not,
/// which switch at the step's end, up to (1 - s) too late (`Bends::missed`; `bends` takes
/// the kink).
fn piece_error(
    model: &Model,
    piece: &Break,
    i: usize,
    (w0, w1, beta, dbeta, weight, _): Path<'_>,
    bends: &mut Bends<'_>,
    order: &Order,
) -> f64 {
    let (r, s) = (piece.r, piece.share);
    let x = &model.data().x;
    let kappa = model.a()[r] / (model.m() as f64).sqrt();
    let rise = dot_row(w1, x, r, i) - dot_row(w0, x, r, i);
    let [b0, a0] = piece.pieces(model, beta);
    bends.kink(s, a0.iter().zip(&b0).map(|(a, b)| a - b).collect());
    let before_missed = bends.e2;
    let skip = |j: usize| order.iter().any(|e| e.1 == j) || piece.old.contains(j);
    bends.missed(s, skip, beta, kappa);
    let missed = bends.e2 - before_missed;
    weight.powi(2) * piece.error(model, i, rise, beta, dbeta) + missed
}

/// A neuron's unprojected increment with the row S_r. = `row` and the weighted Delta `beta`:
/// kappa sum_j S_rj beta_j x_j.
fn free_increment(x: &DMatrix<f64>, row: &[f64], beta: &DVector<f64>, kappa: f64) -> Vec<f64> {
    let mut v = vec![0.0; x.ncols()];
    for (j, sj) in row.iter().enumerate().filter(|(_, sj)| **sj != 0.0) {
        let c = kappa * sj * beta[j];
        v.iter_mut()
            .enumerate()
            .for_each(|(k, vk)| *vk += c * x[(j, k)]);
    }
    v
}

/// |v|.
fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// One neuron's path through the events of a step (gradient flow with slides), for the error
/// of taking them without a cut.
///
/// The held trial moves w_r along a straight line (its increment `straight`); each event at
/// share s_e turns the true path by du_e (a crossing: +-kappa beta_i P x_i, beta the step's
/// weighted -h Delta; a join: P_new u - u), so z_j = w_r . x_j on the true path is off the
/// straight line by sum_e (s - s_e) x_j . du_e after them. A later event on entry j, timed
/// on the straight line, is then off by dz / z_j' (of the step), and its velocity jump acts
/// that much too long or too short: an error |shift| |jump| in w_r. Entries the bent path
/// crosses and the straight one does not (or the reverse) switch at the step's end, off by up
/// to the step after the first event.
struct Bends<'x> {
    x: &'x DMatrix<f64>,
    /// w_r at the trial's end.
    end: Vec<f64>,
    straight: Vec<f64>,
    /// The increment of the step as bent so far.
    u: Vec<f64>,
    kinks: Vec<(f64, Vec<f64>)>,
    /// The squared error of the events so far (in w_r).
    e2: f64,
}

impl<'x> Bends<'x> {
    fn new(x: &'x DMatrix<f64>, w0: &DMatrixView<f64>, w1: &DMatrixView<f64>, r: usize) -> Self {
        let d = x.ncols();
        let straight: Vec<f64> = (0..d).map(|c| w1[(r, c)] - w0[(r, c)]).collect();
        Bends {
            x,
            end: (0..d).map(|c| w1[(r, c)]).collect(),
            u: straight.clone(),
            straight,
            kinks: Vec::new(),
            e2: 0.0,
        }
    }

    fn along(&self, v: &[f64], j: usize) -> f64 {
        v.iter().enumerate().map(|(c, a)| a * self.x[(j, c)]).sum()
    }

    /// An event on entry j at share s whose velocity jump over the step is `jump` (a norm):
    /// its error from the bends before it.
    fn event(&mut self, j: usize, s: f64, jump: f64) {
        if self.kinks.is_empty() || jump == 0.0 {
            return;
        }
        let dz: f64 = self
            .kinks
            .iter()
            .map(|(se, du)| (s - se) * self.along(du, j))
            .sum();
        let (rate, straight) = (self.along(&self.u, j), self.along(&self.straight, j));
        let shift = if rate * straight > 0.0 {
            (dz / rate).abs().min(1.0)
        } else {
            1.0 - s
        };
        self.e2 += (shift * jump).powi(2);
    }

    /// The path turns by `du` at share s.
    fn kink(&mut self, s: f64, du: Vec<f64>) {
        self.u.iter_mut().zip(&du).for_each(|(u, a)| *u += a);
        self.kinks.push((s, du));
    }

    /// The turn where the neuron joins `slide`: P u - u.
    fn turn(&self, slide: &Slide) -> Vec<f64> {
        let mut p = self.u.clone();
        slide.project(self.x, &mut p, 1, 0);
        p.iter_mut().zip(&self.u).for_each(|(p, u)| *p -= u);
        p
    }

    /// The neuron's unprojected increment with the row S_r. = `row`: kappa sum_j S_rj beta_j x_j.
    fn free(&self, row: &[f64], beta: &DVector<f64>, kappa: f64) -> Vec<f64> {
        free_increment(self.x, row, beta, kappa)
    }

    /// Entries (not `skip`ped: the step's crossings and slides) whose sign at the step's end
    /// differs between the bent path and the straight one: each switches up to the step after
    /// the first event (`first`) too late, its jump kappa beta_j x_j.
    fn missed(
        &mut self,
        first: f64,
        skip: impl Fn(usize) -> bool,
        beta: &DVector<f64>,
        kappa: f64,
    ) {
        if self.kinks.is_empty() {
            return;
        }
        for j in 0..self.x.nrows() {
            if skip(j) {
                continue;
            }
            let z1 = self.along(&self.end, j);
            let zb = z1
                + self
                    .kinks
                    .iter()
                    .map(|(se, du)| (1.0 - se) * self.along(du, j))
                    .sum::<f64>();
            if z1 != 0.0 && zb.signum() != z1.signum() {
                let size = kappa * beta[j] * self.x.row(j).norm();
                self.e2 += ((1.0 - first) * size).powi(2);
            }
        }
    }
}

impl OutputSpace<'_> {
    /// `blend` for gradient flow with slides: the step's crossings judged in time order per
    /// neuron (`events`), the retake cut at the earliest event that must be switched exactly
    /// (the cut's crossings take their new sides there, `accept_sliding`), and the crossings
    /// before the cut blended with their shares of the cut step (the straight line through z
    /// over the trial, O(h^2) per crossing).
    fn blend_sliding(&mut self, step: f64, y: &[f64], y_new: &[f64]) -> u64 {
        let model = self.model;
        let (m, d) = (model.m(), model.d());
        let x = &model.data().x;
        // The step's weighted -h Delta: W_new = W + J^T beta.
        let b6 = &dp5::A[6];
        let mut beta = DVector::zeros(model.n());
        combine(
            |l| if l < 6 { -step * b6[l] } else { 0.0 },
            &self.dl,
            &mut beta,
        );
        let mut dbeta = self.dl[6].clone();
        dbeta -= &self.held.delta;
        dbeta *= -step;
        let budget = self.budget(y.len());
        let (held, buf) = (&mut self.held, &mut self.buf);
        let (w0, _) = split(y, m, d, false);
        let (w1, _) = split(y_new, m, d, false);
        // Sliding entries sit at z = 0 with S = 0: their signs are rounding.
        let slides = &held.slides;
        buf.changed
            .retain(|&(r, i)| !slides.get(&r).is_some_and(|s| s.contains(i)));
        if buf.changed.is_empty() {
            return 0;
        }
        let mut order: Vec<(usize, usize, f64)> = buf
            .changed
            .iter()
            .map(|&(r, i)| {
                let s = crossing_share(dot_row(&w0, x, r, i), dot_row(&w1, x, r, i), true);
                (r, i, s)
            })
            .collect();
        order.sort_by(|a, b| {
            (a.0, a.2, a.1)
                .partial_cmp(&(b.0, b.2, b.1))
                .expect("finite")
        });
        let mut crossed = Vec::new();
        let mut candidates = Vec::new();
        let mut judge = |limit: (f64, Option<(f64, &mut u64)>, bool),
                         crossed: &mut Vec<_>,
                         candidates: &mut Vec<_>| {
            self.entering.clear();
            self.entering_entries.clear();
            self.releases.clear();
            self.breaks.clear();
            crossed.clear();
            candidates.clear();
            events(
                model,
                held,
                &order,
                limit,
                &self.dl[6],
                &mut buf.row,
                (
                    &mut self.entering,
                    &mut self.entering_entries,
                    &mut self.releases,
                ),
                crossed,
                (&w0, &w1, &beta, &dbeta, self.break_weight, self.pieces),
                candidates,
                &mut self.breaks,
            )
        };
        let early = self.early && budget > 0.0;
        let mut stopped = 0;
        let critical = judge(
            (1.0, early.then_some((budget, &mut stopped)), self.early),
            &mut crossed,
            &mut candidates,
        );
        self.early_stops += stopped;
        let critical = if budget > 0.0 {
            // The events are taken without a cut while their errors, summed in squares,
            // stay within the budget; the step is cut at the first beyond it.
            over_budget(&mut candidates, budget).map(|(s, e2, why)| (s, why, e2.is_infinite()))
        } else {
            critical.map(|c| {
                let why = candidates.iter().find(|e| e.0 == c).map(|e| e.2);
                (c, why.expect("a candidate at the critical share"), true)
            })
        };
        self.cut_reason = None;
        let sigma = match critical {
            Some((sigma, why, forced)) if sigma < 1.0 => {
                self.cut_reason = Some((why, forced));
                // Judged again up to the cut: the events after it are found by the next step.
                judge((sigma, None, self.early), &mut crossed, &mut candidates);
                order.retain(|e| e.2 <= sigma);
                let at_cut = crossed.iter().filter(|e| e.3 == sigma);
                self.split = Some((sigma, at_cut.map(|&(r, i, on, _)| (r, i, on)).collect()));
                // Breaks before the cut: their shares of the cut step.
                self.breaks.iter_mut().for_each(|b| b.share /= sigma);
                sigma
            }
            _ => {
                self.split = None;
                1.0
            }
        };
        self.backup = Some(held.backup(self.spare.take()));
        buf.changed.clear();
        buf.changed.extend(order.iter().map(|e| (e.0, e.1)));
        let mut shares = order.iter();
        held.set_entries(
            model,
            &buf.changed,
            &w0,
            None,
            &mut buf.row,
            true,
            |p, r, i, _| {
                let &(_, _, s) = shares.next().expect("one share per entry");
                active_share((s / sigma).min(1.0), p.active(r, i))
            },
        );
        // A broken slide's neuron holds its new slide for the rest of the step: H follows
        // for that share (taken back in `accept_sliding` before the new pattern).
        reslide_breaks(held, model, &self.breaks, |b| 1.0 - b.share);
        buf.changed.len() as u64
    }
}

impl OutputSpace<'_> {
    /// The squared error (in W) that a step's uncut events may make: theta^2 N sc^2, the step
    /// control's scale sc = atol + rtol max(rms y, rms y_new) over the N = m d entries, from
    /// the squares the trial's norms summed (`squares`).
    fn budget(&self, n: usize) -> f64 {
        let theta = self.theta;
        if theta == 0.0 {
            return 0.0;
        }
        let n = n as f64;
        let (a, b) = self.squares;
        let sc = self.tolerances.1 + self.tolerances.0 * (a.max(b) / n).sqrt();
        theta * theta * n * sc * sc
    }
}

impl OutputSpace<'_> {
    /// `accept` for gradient flow with slides: the crossings of a retaken step as in
    /// `accept`, the entering slides joined (their entries held at S = 0, Delta recomputed
    /// after their projection), then the exits.
    fn accept_sliding(&mut self, y: &[f64], retaken: bool) {
        let model = self.model;
        let (n, m, d) = (model.n(), model.m(), model.d());
        let (held, buf) = (&mut self.held, &mut self.buf);
        held.delta.copy_from(&self.dl[6]);
        let (w1, _) = split(y, m, d, false);
        if retaken {
            self.spare = self.backup.take();
            // The retake's share of the broken slides' new H, taken back: the pattern
            // changes below are measured against H as it was before the retake.
            reslide_breaks(held, model, &self.breaks, |b| b.share - 1.0);
            held.pattern
                .changes(model, &w1, &mut buf.signs, &mut buf.changed, &mut buf.ws);
            let on = |slides: &BTreeMap<usize, Slide>, r: usize, i: usize| {
                slides.get(&r).is_some_and(|s| s.contains(i))
            };
            let entering = &self.entering;
            let entries = &self.entering_entries;
            let slides = &held.slides;
            buf.changed
                .retain(|&(r, i)| !on(slides, r, i) && !on(entering, r, i));
            // A step cut at a crossing: its entries take their new sides here, whatever the
            // sign of z (it is O(h^2) from 0).
            let forced = self.split.take().map_or(Vec::new(), |(_, f)| f);
            if let Some((why, forced)) = self.cut_reason.take() {
                why.count(&mut self.cuts);
                self.cuts.forced += u64::from(forced);
            }
            for &(r, i, on) in &forced {
                buf.signs[r * n + i] = u8::from(on);
            }
            let changed = &mut buf.changed;
            changed.extend(forced.iter().map(|&(r, i, _)| (r, i)));
            changed.extend(held.pattern.blend_entries().iter().map(|&(r, i, _)| (r, i)));
            changed.sort_unstable();
            changed.dedup();
            let signs = &buf.signs;
            held.set_entries(
                model,
                changed,
                &w1,
                None,
                &mut buf.row,
                false,
                |_, r, i, _| {
                    if entries.binary_search(&(r, i)).is_ok() {
                        0.0
                    } else {
                        f64::from(signs[r * n + i])
                    }
                },
            );
            let rejoined = self
                .breaks
                .iter()
                .filter(|b| b.joins)
                .filter_map(|b| Some((&b.r, b.new.as_ref()?)));
            for (&r, slide) in held.slides.iter().chain(entering.iter()).chain(rejoined) {
                for &i in &slide.set {
                    buf.signs[r * n + i] = 0;
                }
            }
            held.pattern.adopt(&mut buf.signs);
            let joined = !self.entering.is_empty();
            // The joins, then the breaks, each from the slide it replaces: H follows them all
            // at once (`reslide_all`, in this order).
            let mut changes = Vec::new();
            for (r, new) in std::mem::take(&mut self.entering) {
                let old = held.slides.remove(&r);
                changes.push((held.pattern.row(r), old, Some(new.clone())));
                held.slides.insert(r, new);
            }
            self.entering_entries.clear();
            let broke = !self.breaks.is_empty();
            for b in std::mem::take(&mut self.breaks) {
                let old = held.slides.remove(&b.r);
                changes.push((held.pattern.row(b.r), old, b.new.clone()));
                if let Some(new) = b.new {
                    held.slides.insert(b.r, new);
                }
            }
            let moves: Vec<Move<'_>> = changes
                .iter()
                .map(|(row, old, new)| (&row[..], old.as_ref(), new.as_ref(), 1.0))
                .collect();
            reslide_all(&mut held.h, model, &moves);
            for (r, i, on) in std::mem::take(&mut self.releases) {
                if on {
                    release(model, held, &w1, (r, i), &mut buf.row);
                }
            }
            if joined || broke {
                held.refresh(model, &w1, None, buf);
            }
        }
        if !held.slides.is_empty() {
            leave_slides(model, held, &w1, &mut buf.row);
        }
    }
}

/// out = sum_l coef(l) v_l over the terms with coef(l) != 0.
pub(crate) fn combine(coef: impl Fn(usize) -> f64, v: &[DVector<f64>], out: &mut DVector<f64>) {
    out.fill(0.0);
    for (l, vl) in v.iter().enumerate() {
        let c = coef(l);
        if c != 0.0 {
            out.axpy(c, vl, 1.0);
        }
    }
}

/// The rows of V_new = cv V + J^T `beta` (V the second block of `y`) of the neurons in
/// `b.changed` (sorted by neuron) into those rows of `rows` (m x d, column-major), each with
/// the bits of the whole product's (`Model::vjp_held_rows`; fused kernel only), the J^T rows
/// into `pv`'s; the other rows are not written. A view of `rows`, for a deferred trial's blend.
#[allow(clippy::too_many_arguments)]
fn velocity_rows<'r>(
    model: &Model,
    held: &Held,
    b: &mut Buffers,
    y: &[f64],
    cv: f64,
    beta: &DVector<f64>,
    pv: &mut [f64],
    rows: &'r mut [f64],
) -> DMatrixView<'r, f64> {
    let (m, d) = (model.m(), model.d());
    let md = m * d;
    let mut neurons: Vec<usize> = b.changed.iter().map(|&(r, _)| r).collect();
    neurons.dedup();
    let mut g = DMatrixViewMut::from_slice(pv, m, d);
    let formed = model.vjp_held_rows(beta.as_slice(), &neurons, &mut g, &mut b.ws, &held.pattern);
    assert!(formed, "a trial defers only with the fused kernel");
    for &r in &neurons {
        for k in 0..d {
            let j = k * m + r;
            rows[j] = cv * y[md + j] + pv[j];
        }
    }
    DMatrixView::from_slice(rows, m, d)
}

/// J^T beta into `out` (m x d, column-major) under `pattern`.
pub(crate) fn jt(
    model: &Model,
    beta: &DVector<f64>,
    out: &mut [f64],
    ws: &mut Workspace,
    pattern: &Pattern,
) {
    let mut gv = DMatrixViewMut::from_slice(out, model.m(), model.d());
    model.vjp_held(beta.as_slice(), &mut gv, ws, pattern);
}

/// J^T beta_W and J^T beta_V into `ow` and `ov` (m x d each, column-major) under `pattern`, in one
/// pass where the kernel can ([`Model::vjp_held_pair`]), each with [`jt`]'s bits.
pub(crate) fn jt_pair(
    model: &Model,
    [bw, bv]: [&DVector<f64>; 2],
    [ow, ov]: [&mut [f64]; 2],
    ws: &mut Workspace,
    pattern: &Pattern,
) {
    let (m, d) = (model.m(), model.d());
    let mut gw = DMatrixViewMut::from_slice(ow, m, d);
    let mut gv = DMatrixViewMut::from_slice(ov, m, d);
    model.vjp_held_pair(
        [bw.as_slice(), bv.as_slice()],
        [&mut gw, &mut gv],
        ws,
        pattern,
    );
}

/// |c V + J^T beta|^2 with |V|^2 = vv: c^2 |V|^2 + 2 c beta . (J V) + beta^T H beta, O(n^2),
/// unless the two parts cancel (NAG's early steps, where c is large and V lies in the range
/// of J^T) and rounding would swamp the sum; then formed in weight space (v: V, empty for GF).
#[allow(clippy::too_many_arguments)]
pub(crate) fn quad(
    model: &Model,
    held: &Held,
    c: f64,
    vv: f64,
    beta: &DVector<f64>,
    v: &[f64],
    hv: &mut DVector<f64>,
    scratch: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    crate::simd::gemv(&held.h, beta, hv);
    let cross = 2.0 * c * beta.dot(&held.jv);
    let (outer, inner) = (c * c * vv, beta.dot(hv));
    let sum = outer + cross + inner;
    if sum >= 1e-6 * (outer + cross.abs() + inner) {
        return sum;
    }
    jt(model, beta, scratch, ws, &held.pattern);
    // (GF has no V and never cancels, c = 0.)
    let v = v.iter().chain(std::iter::repeat(&0.0));
    scratch
        .iter()
        .zip(v)
        .map(|(p, vj)| (c * vj + p).powi(2))
        .sum()
}

impl HeldStages for OutputSpace<'_> {
    fn start(&mut self, _t: f64, _y: &[f64]) {
        // The pattern and its H, J W - y and J V were taken in `new`.
    }

    fn trial(&mut self, t: f64, step: f64, ys: &[f64], yn: &mut [f64]) -> Norms {
        self.refreshed = false;
        self.stages(t, step);
        let model = self.model;
        let (m, d) = (model.m(), model.d());
        let md = m * d;
        let x = &model.data().x;
        let b6 = &dp5::A[6];
        let bcoef = |l: usize| if l < 6 { step * b6[l] } else { 0.0 };
        let ecoef = |l: usize| step * dp5::E[l];
        let OutputSpace {
            held,
            buf,
            dl,
            bl,
            del,
            al,
            gl,
            hv,
            combo,
            combo_v,
            pw,
            pv,
            scratch,
            backup,
            deferred,
            start_sq,
            end_sq,
            fixes,
            entering,
            breaks,
            ..
        } = self;
        // The error e = c V + J^T beta is formed only when needed (`quad`).
        if self.second {
            combine(bcoef, bl, combo);
            fixes.iter().for_each(|f| combo[f.i] += f.beta_w);
            combine(bcoef, del, combo_v);
            fixes.iter().for_each(|f| combo_v[f.i] += f.beta_v);
            let cw = (0..7).map(|l| bcoef(l) * al[l]).sum::<f64>();
            let cv = 1.0 + (0..7).map(|l| bcoef(l) * gl[l]).sum::<f64>();
            // The first trial of a step leaves V_new unformed: if it ends with sign changes
            // it is retaken, and its blend needs only the changed neurons' rows of V_new
            // (`velocity_rows`); on the benchmark case 42% of nag's trials and 25% of hbf's.
            // The rows are the kernel's bits, so only with the fused kernel. (Pairing the
            // first trial's two products instead measured no faster: docs/performance.md,
            // 2026-12-03 early afternoon.)
            let defer = self.defer
                && backup.is_none()
                && fixes.is_empty()
                && buf.ws.kernel() == Kernel::Fused;
            let sq = if defer {
                jt(model, combo, pw, &mut buf.ws, &held.pattern);
                // |W|^2, |V|^2 of the start are the last accepted trial's end sums when
                // nothing moved its entries after them; |W_new|^2, |V_new|^2 wait for
                // `complete` (the four sums' latency chains run side by side there).
                let [w2, v2] = start_sq.unwrap_or_else(|| start_squares(ys, md));
                advance_position(ys, yn, cw, pw);
                [w2, v2, 0.0, 0.0]
            } else {
                jt_pair(
                    model,
                    [combo, combo_v],
                    [pw, pv],
                    &mut buf.ws,
                    &held.pattern,
                );
                advance_second(ys, yn, [cw, cv], pw, pv)
            };
            for f in fixes.iter() {
                for k in 0..d {
                    yn[k * m + f.r] += f.row_w * x[(f.i, k)];
                    yn[md + k * m + f.r] += f.row_v * x[(f.i, k)];
                }
            }
            *end_sq = (!defer && fixes.is_empty()).then_some([sq[2], sq[3]]);
            let norms = norms_second(
                model,
                held,
                ecoef,
                [al, gl],
                [bl, del],
                sq,
                &ys[md..],
                combo,
                hv,
                scratch,
                &mut buf.ws,
            );
            *deferred = defer.then_some((cv, norms));
            Norms {
                deferred: defer,
                ..norms
            }
        } else {
            combine(bcoef, dl, combo);
            *combo *= -1.0;
            jt(model, combo, pw, &mut buf.ws, &held.pattern);
            for j in 0..md {
                yn[j] = ys[j] + pw[j];
            }
            // Sliding neurons end on their surfaces: the projection of the increment is
            // their sliding velocity, and of the whole row, the arrival of a retake's
            // entering slides (and no drift of z_ri = 0 by rounding).
            let slides: Vec<(usize, &Slide)> = held
                .slides
                .iter()
                .filter(|(r, _)| !entering.contains_key(r))
                .chain(entering.iter())
                .map(|(&r, slide)| (r, slide))
                .collect();
            project_all(x, &mut yn[..md], m, &slides);
            for b in breaks.iter() {
                b.advance(model, combo, ys, yn);
            }
            combine(ecoef, dl, combo);
            let e = quad(
                model,
                held,
                0.0,
                0.0,
                combo,
                &ys[md..],
                hv,
                scratch,
                &mut buf.ws,
            );
            let norms = norms_first(ys, yn, e);
            self.squares = (norms.start[0], norms.end[0]);
            norms
        }
    }

    fn blend(&mut self, t: f64, step: f64, y: &[f64], y_new: &[f64]) -> u64 {
        let model = self.model;
        let (m, d) = (model.m(), model.d());
        let (second, corrected) = (self.second, self.corrected);
        let x = &model.data().x;
        let (held, buf) = (&mut self.held, &mut self.buf);
        let w1 = held.changes_at(model, y_new, second, buf);
        if self.sliding {
            return self.blend_sliding(step, y, y_new);
        }
        if buf.changed.is_empty() {
            return 0;
        }
        // Retake with each crossing weighted by its share of the step, as
        // WeightSpace::blend_pattern does; H, J W and J V follow entry by entry.
        self.backup = Some(held.backup(self.spare.take()));
        let (w0, v0) = split(y, m, d, second);
        let v1 = match self.deferred {
            Some((cv, _)) => {
                self.saved += 1;
                let (combo_v, pv, rows) = (&self.combo_v, &mut self.pv, &mut self.scratch);
                Some(velocity_rows(model, held, buf, y, cv, combo_v, pv, rows))
            }
            None => split(y_new, m, d, second).1,
        };
        held.set_entries(
            model,
            &buf.changed,
            &w0,
            v0.as_ref(),
            &mut buf.row,
            true,
            |p, r, i, a| {
                let b = dot_row(&w1, x, r, i);
                match (&v0, &v1) {
                    (Some(v0), Some(v1)) if corrected => hermite_share(
                        [a, step * dot_row(v0, x, r, i)],
                        [b, step * dot_row(v1, x, r, i)],
                        p.active(r, i),
                    ),
                    _ => crossing_share(a, b, p.active(r, i)),
                }
            },
        );
        if let (Some(c), Some(v0), true) = (self.damping.friction(t), &v0, corrected) {
            let held = &*held;
            self.fixes.extend(
                held.pattern
                    .blend_entries()
                    .iter()
                    .map(|&(r, i, share)| Fix::new(model, held, (r, i, share), step, c, &w0, v0)),
            );
        }
        buf.changed.len() as u64
    }

    fn complete(&mut self, y: &[f64], y_new: &mut [f64]) -> Norms {
        let (cv, norms) = self
            .deferred
            .take()
            .expect("complete follows a deferred trial");
        let (model, held) = (self.model, &self.held);
        jt(
            model,
            &self.combo_v,
            &mut self.pv,
            &mut self.buf.ws,
            &held.pattern,
        );
        let end = end_squares(y, y_new, cv, &self.pv);
        self.end_sq = Some(end);
        Norms { end, ..norms }
    }

    fn retake_step(&self, step: f64) -> f64 {
        self.split.as_ref().map_or(step, |(share, _)| share * step)
    }

    fn accept(&mut self, _t: f64, y: &[f64], retaken: bool) {
        if self.sliding {
            self.accept_sliding(y, retaken);
            return;
        }
        self.start_sq = self.end_sq.take();
        let model = self.model;
        let (held, buf) = (&mut self.held, &mut self.buf);
        held.delta.copy_from(&self.dl[6]);
        if self.second {
            held.jv.copy_from(&self.jvl[6]);
        }
        if retaken {
            self.spare = self.backup.take();
            for f in self.fixes.drain(..) {
                f.follow(model, held, &mut buf.row);
            }
            held.adopt_state(model, y, self.second, buf);
        }
    }

    fn reject(&mut self, _t: f64, _y: &[f64], retaken: bool) {
        self.end_sq = None;
        if retaken {
            self.fixes.clear();
            self.split = None;
            self.cut_reason = None;
            self.entering.clear();
            self.entering_entries.clear();
            self.releases.clear();
            self.breaks.clear();
            let backup = self.backup.take().expect("a retake keeps its backup");
            self.spare = Some(self.held.restore(backup));
        }
    }

    fn resume(&mut self, _t: f64, y: &[f64]) {
        // The observer's refresh was this one, of the same state with the same pattern.
        if std::mem::take(&mut self.refreshed) {
            return;
        }
        self.held
            .refresh_at(self.model, y, self.second, &mut self.buf);
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }

    fn cuts(&self) -> Cuts {
        self.cuts
    }
}

/// Integrate weight space (state `[W]` for GF, `[W, V]` for the momentum flows, W column-major)
/// through `times` with held-pattern Dormand-Prince steps taken in output space, driven by
/// [`crate::integrate::drive`]; outputs go to `observe` as in
/// [`crate::integrate::integrate_held`], which this matches step for step in exact arithmetic
/// with [`Crossings::Blend`]. Each of the seven stages of a trial counts as one evaluation
/// (O(n^2) each here).
pub fn integrate_output_space(
    model: &Model,
    damping: Damping,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    crossings: Crossings,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (Stats, Stop) {
    integrate_output_space_landed(
        model,
        damping,
        y0,
        times,
        settings,
        crossings,
        |_| {},
        |t, y, _| observe(t, y),
    )
}

/// What the output-space evaluator holds at an output time a step landed on, for the
/// snapshot (momentum flows): Delta = J W - y and Delta' = J V, recomputed from the state
/// as `resume` recomputes them (the one computation serves both), and the held pattern,
/// which is the state's own sign pattern there (the step's switches adopted).
pub struct Landed<'a> {
    /// Delta = J W - y.
    pub delta: &'a DVector<f64>,
    /// Delta' = J V.
    pub delta_dot: &'a DVector<f64>,
    pattern: &'a Pattern,
}

impl Landed<'_> {
    /// The sign pattern 1[w_r . x_i >= 0] of the state (m x n) as bits.
    pub fn pattern_bits(&self, m: usize, n: usize) -> crate::dynamics::PatternBits {
        crate::dynamics::PatternBits::of_neuron_major(self.pattern.mask(), m, n)
    }
}

/// The evaluator shared by the driver and the observer of [`integrate_output_space_landed`].
struct Shared<'c, 'a>(&'c std::cell::RefCell<OutputSpace<'a>>);

impl HeldStages for Shared<'_, '_> {
    fn start(&mut self, t: f64, y: &[f64]) {
        self.0.borrow_mut().start(t, y);
    }
    fn trial(&mut self, t: f64, step: f64, ys: &[f64], yn: &mut [f64]) -> Norms {
        self.0.borrow_mut().trial(t, step, ys, yn)
    }
    fn blend(&mut self, t: f64, step: f64, y: &[f64], y_new: &[f64]) -> u64 {
        self.0.borrow_mut().blend(t, step, y, y_new)
    }
    fn complete(&mut self, y: &[f64], y_new: &mut [f64]) -> Norms {
        self.0.borrow_mut().complete(y, y_new)
    }
    fn retake_step(&self, step: f64) -> f64 {
        self.0.borrow().retake_step(step)
    }
    fn accept(&mut self, t: f64, y: &[f64], retaken: bool) {
        self.0.borrow_mut().accept(t, y, retaken);
    }
    fn reject(&mut self, t: f64, y: &[f64], retaken: bool) {
        self.0.borrow_mut().reject(t, y, retaken);
    }
    fn resume(&mut self, t: f64, y: &[f64]) {
        self.0.borrow_mut().resume(t, y);
    }
    fn finish(&mut self) {
        self.0.borrow_mut().finish();
    }
    fn evaluations(&self) -> u64 {
        self.0.borrow().evaluations()
    }
    fn cuts(&self) -> Cuts {
        self.0.borrow().cuts()
    }
}

/// [`integrate_output_space`], telling `on_step(t)` the time of every accepted step (a
/// progress display between output times), with `observe(t, y, landed)` also given, for the
/// momentum flows, what the evaluator holds at each output time after the first
/// ([`Landed`]; None at the start, and for gradient flow, whose held Gram matrix is projected
/// on its slides and whose held pattern has sliding entries off, so that its
/// Delta' = -H Delta and its pattern are not the snapshot's J(-grad L) and 1[z >= 0]). The
/// steps are the same, bit for bit.
#[allow(clippy::too_many_arguments)]
pub fn integrate_output_space_landed(
    model: &Model,
    damping: Damping,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    crossings: Crossings,
    on_step: impl FnMut(f64),
    mut observe: impl FnMut(f64, &DVector<f64>, Option<Landed<'_>>) -> bool,
) -> (Stats, Stop) {
    let mut space = OutputSpace::new(model, damping, crossings, y0.as_slice());
    space.tolerances = (settings.rtol, settings.atol);
    let cell = std::cell::RefCell::new(space);
    let mut started = false;
    let landed = |t: f64, y: &DVector<f64>| {
        let mut guard = cell.borrow_mut();
        let space = &mut *guard;
        // The start is observed from the state itself, so that Delta(0), L(0) and Lhat(0),
        // on which the bounds and error space's start depend, are the model's bit for bit.
        if !space.second || !std::mem::replace(&mut started, true) {
            drop(guard);
            return observe(t, y, None);
        }
        // The step landed here and was accepted (its pattern adopted): J W - y and J V of y
        // are what `resume` would compute.
        space
            .held
            .refresh_at(space.model, y.as_slice(), true, &mut space.buf);
        space.refreshed = true;
        let held = &space.held;
        observe(
            t,
            y,
            Some(Landed {
                delta: &held.delta,
                delta_dot: &held.jv,
                pattern: &held.pattern,
            }),
        )
    };
    drive(
        &mut Watched::new(Shared(&cell), on_step),
        y0,
        times,
        settings,
        landed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Flow, WeightSpace};
    use crate::integrate::{output_times, Solver};
    use crate::model::{Data, InitialNetwork};

    /// `project_all` takes each row onto its slide with `Slide::project`'s bits, on one thread
    /// and on rayon's, and leaves the other rows alone.
    #[test]
    fn projections_side_by_side_have_the_bits_of_one_by_one() {
        let (n, d, m) = (12, 4, 40);
        let net = InitialNetwork::init(m, d, 5);
        let model = Model::new(Data::synthetic(n, d, 5), net.a);
        let x = &model.data().x;
        let slides: Vec<(usize, Slide)> = (0..m)
            .filter(|r| r % 3 != 1)
            .filter_map(|r| {
                let mut set = if r % 2 == 0 {
                    vec![r % n]
                } else {
                    vec![r % n, (r + 5) % n]
                };
                set.sort_unstable();
                Slide::new(&model, set).map(|s| (r, s))
            })
            .collect();
        assert!(slides.len() > m / 2, "{} slides", slides.len());
        let w0: Vec<f64> = (0..m * d)
            .map(|j| ((j * 37 % 101) as f64 - 50.0) / 7.0)
            .collect();
        let mut one = w0.clone();
        for (r, slide) in &slides {
            slide.project(x, &mut one, m, *r);
        }
        let refs: Vec<(usize, &Slide)> = slides.iter().map(|(r, s)| (*r, s)).collect();
        for parallel in [false, true] {
            let mut all = w0.clone();
            project_rows(x, &mut all, m, &refs, parallel);
            let bits = |v: &[f64]| v.iter().map(|e| e.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&all), bits(&one), "parallel {parallel}");
        }
        // The projected rows moved and lie on their surfaces; the others kept their bits.
        for r in 0..m {
            let moved = (0..d).any(|k| one[k * m + r] != w0[k * m + r]);
            let slide = slides.iter().find(|(q, _)| *q == r).map(|(_, s)| s);
            assert_eq!(moved, slide.is_some(), "row {r}");
            for &i in slide.map_or(&[][..], |s| &s.set[..]) {
                let z: f64 = (0..d).map(|k| one[k * m + r] * x[(i, k)]).sum();
                assert!(z.abs() < 1e-12, "row {r} off its surface {i}: {z}");
            }
        }
    }

    /// `runs` covers every neuron once, in order, in at most the runs asked for, each
    /// holding about its share of the events.
    #[test]
    fn runs_cut_the_neurons_into_even_runs_in_order() {
        // Events per neuron: one heavy neuron among light ones, and a single neuron.
        for counts in [
            vec![3, 1, 1, 40, 2, 2, 2, 5, 1, 1, 1, 1],
            vec![7],
            vec![1; 100],
        ] {
            let mut starts = vec![0];
            for c in &counts {
                starts.push(starts[starts.len() - 1] + c);
            }
            let total = starts[starts.len() - 1];
            for parts in [1, 2, 8] {
                let runs = runs(&starts, parts);
                assert!(runs.len() <= parts, "{} runs for {parts}", runs.len());
                assert_eq!(runs[0].0, 0);
                assert_eq!(runs[runs.len() - 1].1, counts.len());
                for pair in runs.windows(2) {
                    assert_eq!(pair[0].1, pair[1].0, "contiguous");
                }
                for &(lo, hi) in &runs {
                    assert!(lo < hi, "no empty run");
                    // A run ends at the first neuron that reaches its share: past it by
                    // less than that neuron's events.
                    let events = starts[hi] - starts[lo];
                    let largest = (lo..hi).map(|g| counts[g]).max().unwrap_or(0);
                    assert!(events <= total.div_ceil(parts) + largest, "{events} events");
                }
            }
        }
        assert_eq!(runs(&[0, 5, 6, 10], 2), vec![(0, 1), (1, 3)]);
    }

    /// `dot` rounds as nalgebra's `dot` (the 8-accumulator blocks and the tail), which the
    /// sliding bookkeeping relied on before: lengths 0 to 19, values of mixed scale and sign.
    #[test]
    fn dot_has_nalgebras_bits() {
        for len in 0..20usize {
            let a = DVector::from_fn(len, |i, _| {
                ((i * 37 % 11) as f64 - 5.3) * 10f64.powi((i % 7) as i32 - 3)
            });
            let b = DVector::from_fn(len, |i, _| ((i * 53 % 13) as f64 - 6.1) / (1.0 + i as f64));
            assert_eq!(
                dot(a.as_slice(), b.as_slice()).to_bits(),
                a.dot(&b).to_bits(),
                "length {len}"
            );
        }
    }

    /// A slide's H update over the active entries only has the bits of the full n x n
    /// `gemm_tr` it replaced, for slides of 1 to 9 surfaces (beyond nalgebra's 8-block) and a
    /// row with inactive and fractional entries, in both directions and a share.
    #[test]
    fn reslide_over_active_entries_is_the_full_update() {
        let (n, d, m) = (40, 12, 30);
        let model = Model::new(Data::synthetic(n, d, 5), InitialNetwork::init(m, d, 5).a);
        let row: Vec<f64> = (0..n)
            .map(|j| match j % 5 {
                0 | 3 => 0.0,
                4 => 0.25 + j as f64 / 100.0,
                _ => 1.0,
            })
            .collect();
        let h0 = model.gram_of_pattern(&DMatrix::from_fn(m, n, |r, i| {
            f64::from(u8::from((r + i) % 3 != 0))
        }));
        for k in 1..10 {
            let old = Slide::new(&model, (0..k).map(|a| 4 * a + 1).collect()).expect("independent");
            let new = Slide::new(&model, (0..k).map(|a| 4 * a + 2).collect()).expect("independent");
            for (pair, c) in [
                ((Some(&old), Some(&new)), 1.0),
                ((None, Some(&new)), 0.37),
                ((Some(&old), None), -0.63),
            ] {
                let mut fast = h0.clone();
                reslide_by(&mut fast, &model, &row, pair, c);
                let mut full = h0.clone();
                let xx = model.input_gram();
                for (s, alpha) in [(pair.0, c / m as f64), (pair.1, -c / m as f64)] {
                    if let Some(s) = s {
                        let mut bd = s.b(xx).clone();
                        for (j, sj) in row.iter().enumerate() {
                            bd.column_mut(j).scale_mut(*sj);
                        }
                        full.gemm_tr(alpha, &bd, &bd, 1.0);
                    }
                }
                assert_ne!(fast, h0, "k = {k}: H moved");
                for (f, g) in fast.iter().zip(full.iter()) {
                    assert_eq!(f.to_bits(), g.to_bits(), "k = {k}, c = {c}");
                }
            }
        }
    }

    /// `Slide::surely` decides as `Slide::weights` wherever it decides: random slides of 1 to
    /// 4 surfaces, rows with inactive and fractional entries (and a nonzero entry on a
    /// surface, which `weights` leaves out), and their rounded 0/1 masks read as masks; and
    /// Delta set so that a weight sits at 1 or a few ulps to either side, where only the
    /// exact sum can tell. Away from that edge it decides nearly always.
    #[test]
    fn sure_slides_decide_as_their_weights() {
        use rand::{RngExt, SeedableRng};
        let (n, d, m) = (57, 6, 30);
        let model = Model::new(Data::synthetic(n, d, 7), InitialNetwork::init(m, d, 7).a);
        let xx = model.input_gram();
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let (mut decided, mut random, mut edges, mut undecided_edges) = (0, 0, 0, 0);
        for case in 0..4000 {
            let k = 1 + case % 4;
            let mut set: Vec<usize> = Vec::new();
            while set.len() < k {
                let i = rng.random_range(0..n);
                if !set.contains(&i) {
                    set.push(i);
                }
            }
            set.sort_unstable();
            let Some(slide) = Slide::new(&model, set.clone()) else {
                continue;
            };
            let row: Vec<f64> = (0..n)
                .map(|j| {
                    let v = match rng.random_range(0..6) {
                        0 | 1 => 0.0,
                        2 => rng.random_range(0.0..1.0),
                        _ => 1.0,
                    };
                    if set.contains(&j) && case % 3 != 0 {
                        0.0
                    } else {
                        v
                    }
                })
                .collect();
            let a_r = if case % 2 == 0 { 1.0 } else { -1.0 };
            let mut delta: DVector<f64> = DVector::from_fn(n, |_, _| rng.random_range(-1.0..1.0));
            // Delta_i = a_r |Delta_i| on the set: every surface attracts, but in a few cases.
            for &i in &set {
                delta[i] = a_r * delta[i].abs() * if case % 17 == 0 { -1.0 } else { 1.0 };
            }
            let mut placed = false;
            if case % 5 == 0 {
                // theta_a = x_a / Delta_(i_a): put one weight at 1 (and a few ulps off) by
                // the exact solution x of the weights' own sums.
                let target = slide.set[case / 5 % k];
                let x = {
                    let theta = slide.weights(xx, a_r, &row, &delta).1;
                    let a = slide
                        .set
                        .iter()
                        .position(|&i| i == target)
                        .expect("in the set");
                    theta[a] * delta[target]
                };
                let ulps = (case / 10 % 7) as i64 - 3;
                let moved = f64::from_bits((x.to_bits() as i64 + ulps) as u64);
                if moved.is_finite() && moved != 0.0 && a_r * moved > 0.0 {
                    // x does not depend on Delta_target's own entry (left out of the sums).
                    delta[target] = moved;
                    placed = true;
                }
            }
            // The 0/1 mask of the row rounded reads as its values do.
            let mask: Vec<u8> = row.iter().map(|&v| u8::from(v >= 0.5)).collect();
            let values: Vec<f64> = mask.iter().map(|&b| f64::from(b)).collect();
            let sure = slide.surely(xx, a_r, Row::Mask(&mask), &delta);
            assert_eq!(sure, slide.surely(xx, a_r, Row::Values(&values), &delta));
            if let Some(sure) = sure {
                assert_eq!(
                    sure,
                    slide.weights(xx, a_r, &values, &delta).0,
                    "case {case}"
                );
            }
            let exact = slide.weights(xx, a_r, &row, &delta).0;
            match slide.surely(xx, a_r, Row::Values(&row), &delta) {
                Some(sure) => {
                    assert_eq!(sure, exact, "case {case}: k = {k}, set {set:?}");
                    decided += 1;
                    random += usize::from(!placed);
                }
                None => undecided_edges += usize::from(placed),
            }
            edges += usize::from(placed);
        }
        // 3,596 random cases decided (of about 3,640), 112 of the 406 edges left to the exact
        // sums (the others decided by their slides' other weights).
        assert!(random > 3500, "decided {random} random cases");
        assert!(
            undecided_edges > 100,
            "{undecided_edges} of {edges} edges undecided"
        );
        assert!(decided > 3500);
    }

    /// A run of `os` from y0 through `times`: every output state bit for bit, and the step
    /// statistics (the runs these tests compare to the bit).
    pub(super) fn drive_bits(
        os: &mut OutputSpace<'_>,
        y0: &DVector<f64>,
        times: &[f64],
        settings: &SolverSettings,
    ) -> (Vec<Vec<u64>>, Stats) {
        let mut states = Vec::new();
        let (stats, stop) = drive(os, y0.clone(), times, settings, |_, y| {
            states.push(y.iter().map(|v| v.to_bits()).collect());
            true
        });
        assert_eq!(stop, Stop::Completed);
        (states, stats)
    }

    /// n = 12, d = 3, m = 60 with its W0, default tolerances, max step 0.3, 21 output times to
    /// T = 5: a momentum run that crosses kinks.
    fn small_momentum_problem() -> (Model, DMatrix<f64>, SolverSettings, Vec<f64>) {
        let (n, d, m) = (12, 3, 60);
        let model = Model::new(Data::synthetic(n, d, 4), InitialNetwork::init(m, d, 4).a);
        let w0 = InitialNetwork::init(m, d, 4).w;
        let settings = SolverSettings {
            solver: Solver::Dopri5,
            rtol: 1e-6,
            atol: 1e-9,
            step: 0.01,
            max_steps: 100_000,
            max_step: 0.3,
        };
        (model, w0, settings, output_times(5.0, 21))
    }

    /// Gradient flow with slides through the sign cache (`Workspace::cache_signs`) is the
    /// run with full sign passes bit for bit: every output state and the step counts, with
    /// neurons sliding (their entries on the surfaces, z = 0 up to rounding, are among their
    /// rows' nearest samples); the cache passed over few of the rows it checked.
    #[test]
    fn gradient_flow_through_the_sign_cache_is_the_full_passes_run() {
        let (n, d, m) = (40, 5, 200);
        let net = InitialNetwork::init(m, d, 5);
        let model = Model::new(Data::synthetic(n, d, 5), net.a.clone());
        let y0 = {
            let space = WeightSpace::new(&model);
            Flow::new(&space, Damping::None).initial_state(net.w.as_slice())
        };
        // The momentum test's tolerances, step cap and output times (T = 5).
        let (_, _, settings, times) = small_momentum_problem();
        let run = |cache: bool| {
            let mut os =
                OutputSpace::new(&model, Damping::None, Crossings::Corrected, y0.as_slice());
            if !cache {
                os.buf.ws = Workspace::new(m, n, d);
            }
            let (states, stats) = drive_bits(&mut os, &y0, &times, &settings);
            let sliding: usize = os.held.slides.values().map(|s| s.set.len()).sum();
            (states, stats, sliding, os.buf.ws.sign_cache_counts())
        };
        let (full, full_stats, _, none) = run(false);
        let (cached, cached_stats, sliding, counts) = run(true);
        assert_eq!(none, None);
        assert_eq!(full.len(), times.len());
        assert!(full == cached, "states differ");
        assert_eq!(full_stats.accepted_steps, cached_stats.accepted_steps);
        assert_eq!(full_stats.rejected_steps, cached_stats.rejected_steps);
        assert_eq!(full_stats.switches, cached_stats.switches);
        assert!(full_stats.switches > 0, "the run crosses kinks");
        assert!(sliding > 0, "no entry slides at the end");
        if Kernel::best() == Kernel::Fused {
            let (passed, checked) = counts.expect("the cache with the fused kernel");
            assert!(
                passed < checked / 4,
                "{passed} of {checked} rows passed over"
            );
        }
    }

    /// A momentum flow's first trials defer V_new (`HeldStages::complete`), and the run is the
    /// eager run bit for bit: every output state, and the step counts; deferring saved
    /// products.
    #[test]
    fn deferred_velocities_take_the_eager_steps_bit_for_bit() {
        let (model, w0, settings, times) = small_momentum_problem();
        let space = WeightSpace::new(&model);
        for damping in [Damping::Constant(0.5), Damping::Vanishing(3.0)] {
            for crossings in [Crossings::Blend, Crossings::Corrected] {
                let y0 = Flow::new(&space, damping).initial_state(w0.as_slice());
                let run = |defer: bool| {
                    let mut os = OutputSpace::new(&model, damping, crossings, y0.as_slice());
                    os.defer = defer;
                    let (states, stats) = drive_bits(&mut os, &y0, &times, &settings);
                    (states, stats, os.saved)
                };
                let (eager, eager_stats, none) = run(false);
                let (deferred, deferred_stats, saved) = run(true);
                assert_eq!(none, 0);
                assert_eq!(eager.len(), times.len());
                assert!(
                    eager == deferred,
                    "{damping:?} {crossings:?}: states differ"
                );
                assert_eq!(eager_stats.accepted_steps, deferred_stats.accepted_steps);
                assert_eq!(eager_stats.rejected_steps, deferred_stats.rejected_steps);
                assert_eq!(eager_stats.switches, deferred_stats.switches);
                assert!(eager_stats.switches > 0, "the run crosses kinks");
                if Kernel::best() == Kernel::Fused {
                    assert!(saved > 0, "{damping:?} {crossings:?}: nothing deferred");
                }
            }
        }
    }

    /// The landed run takes the steps of the plain one bit for bit, and its snapshots have the
    /// state's pattern and H(t) exactly and Delta, Delta' to rounding.
    #[test]
    fn landed_snapshots_are_the_states_snapshots_and_the_steps_do_not_move() {
        let (model, w0, settings, times) = small_momentum_problem();
        let space = WeightSpace::new(&model);
        for damping in [Damping::Constant(0.5), Damping::Vanishing(3.0)] {
            let flow = Flow::new(&space, damping);
            let y0 = flow.initial_state(w0.as_slice());
            let mut plain = Vec::new();
            let (stats, _) = integrate_output_space(
                &model,
                damping,
                y0.clone(),
                &times,
                &settings,
                Crossings::Corrected,
                |_, y| {
                    plain.push(y.clone());
                    true
                },
            );
            let mut landed_states = Vec::new();
            let (landed_stats, _) = integrate_output_space_landed(
                &model,
                damping,
                y0,
                &times,
                &settings,
                Crossings::Corrected,
                |_| {},
                |t, y, landed| {
                    let Some(landed) = landed else {
                        assert_eq!(t, times[0], "momentum flows land with their quantities");
                        landed_states.push(y.clone());
                        return true;
                    };
                    let s = space.snapshot_landed(&landed);
                    let reference = flow.snapshot(y.as_slice());
                    assert_eq!(s.pattern, reference.pattern);
                    assert_eq!(s.gram, reference.gram);
                    let scale = 1.0 + reference.delta.amax() + reference.delta_dot.amax();
                    assert!((&s.delta - &reference.delta).amax() < 1e-13 * scale);
                    assert!((&s.delta_dot - &reference.delta_dot).amax() < 1e-13 * scale);
                    landed_states.push(y.clone());
                    true
                },
            );
            assert_eq!(plain, landed_states, "{damping:?}");
            assert_eq!(stats.accepted_steps, landed_stats.accepted_steps);
            assert!(stats.switches > 0, "the run crosses activation surfaces");
        }
    }

    /// Gradient flow's Delta' = -H(t) Delta is J (-grad L) to rounding, with the same Delta
    /// and H, for the ReLU and (issue 17) the smooth activations alike.
    #[test]
    fn gradient_flows_delta_dot_is_minus_h_delta() {
        use crate::dynamics::Space;
        use crate::model::Activation;
        let (n, d, m) = (10, 4, 80);
        for activation in [
            Activation::Relu,
            Activation::Erf,
            Activation::Gelu,
            Activation::Softplus,
        ] {
            let net = InitialNetwork::init(m, d, 2);
            let model = Model::with_activation(Data::synthetic(n, d, 2), net.a, activation);
            let space = WeightSpace::new(&model);
            let s = space.gradient_flow_snapshot(net.w.as_slice());
            let mut g = vec![0.0; m * d];
            space.gradient(net.w.as_slice(), &mut g);
            g.iter_mut().for_each(|x| *x = -*x);
            let reference = space.snapshot(net.w.as_slice(), &g);
            assert_eq!(s.gram, reference.gram, "{activation:?}");
            assert_eq!(s.delta, reference.delta, "{activation:?}");
            let err = (&s.delta_dot - &reference.delta_dot).amax();
            let scale = reference.delta_dot.amax();
            assert!(
                scale > 0.0 && err < 1e-13 * scale,
                "{activation:?}: {err:e} of {scale:e}"
            );
        }
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;
    use crate::dynamics::{Flow, WeightSpace};
    use crate::integrate::{output_times, Solver};
    use crate::model::{Data, InitialNetwork};

    /// The benchmark's shape, n = 100, d = 20, m = 400 (seed 0), and its initial state.
    fn bench_shape() -> (Model, DVector<f64>) {
        let net = InitialNetwork::init(400, 20, 0);
        let model = Model::new(Data::synthetic(100, 20, 0), net.a.clone());
        let y0 = {
            let space = WeightSpace::new(&model);
            Flow::new(&space, Damping::None).initial_state(net.w.as_slice())
        };
        (model, y0)
    }

    /// Dormand-Prince with `rtol`, `atol` and steps of at most `max_step`.
    fn capped((rtol, atol, max_step): (f64, f64, f64)) -> SolverSettings {
        SolverSettings {
            solver: Solver::Dopri5,
            rtol,
            atol,
            step: 0.01,
            max_steps: 10_000_000,
            max_step,
        }
    }

    /// Loss at `t_end` of gradient flow with slides whose uncut events may take the share
    /// `theta` of the step control's scale (0: every such event cuts).
    fn loss(
        model: &Model,
        y0: &DVector<f64>,
        t_end: f64,
        tolerances: (f64, f64, f64),
        theta: f64,
    ) -> (f64, Stats) {
        let settings = capped(tolerances);
        let mut space = OutputSpace::new(model, Damping::None, Crossings::Corrected, y0.as_slice());
        space.tolerances = (settings.rtol, settings.atol);
        space.theta = theta;
        let mut last = f64::NAN;
        let (stats, stop) = drive(&mut space, y0.clone(), &[0.0, t_end], &settings, |_, y| {
            last = model.loss(&model.weights(y.as_slice()));
            true
        });
        assert_eq!(stop, Stop::Completed);
        (last, stats)
    }

    /// Judging a trial's events only until its cut is known (`judge_early`) takes the steps
    /// of judging them all, bit for bit, and does stop early on a run with budget cuts.
    #[test]
    fn events_judged_until_the_cut_take_the_same_steps() {
        let (model, y0) = bench_shape();
        let settings = capped((1e-6, 1e-9, 0.1));
        let run = |early: bool| {
            let mut space =
                OutputSpace::new(&model, Damping::None, Crossings::Corrected, y0.as_slice());
            space.tolerances = (settings.rtol, settings.atol);
            space.early = early;
            let times = output_times(10.0, 11);
            let (states, stats) = super::tests::drive_bits(&mut space, &y0, &times, &settings);
            (states, stats, space.early_stops)
        };
        let (early, early_stats, stops) = run(true);
        let (all, all_stats, none) = run(false);
        assert_eq!(none, 0);
        assert!(
            stops > 0 && all_stats.cuts.total() > 0,
            "{stops} early stops, {:?}",
            all_stats.cuts
        );
        assert_eq!(early_stats, all_stats);
        assert!(early == all, "the states differ");
    }

    /// The benchmark's shape (n = 100, d = 20, m = 400) to T = 10, where many neurons slide
    /// and cross at corners: against a tight run (rtol 1e-10, cap 0.0025, every event cut),
    /// the default tolerances with the budget give 7.1e-7 in 363 steps with slide breaks
    /// taken as two pieces (`Break`). The errors are not monotone in `BREAK_WEIGHT` (1: 7.1e-7
    /// in 310 steps, 10: 1.4e-6 in 360, 30: 1.5e-6 in 365, 1000: 6.0e-7 in 378); before the
    /// two pieces, 2.4e-7 in 367 (every event cut: 6.0e-7 in 416). With no budget (theta^2
    /// overflows to infinity, so nothing cuts, not even the events always cut with a finite
    /// budget) 102 steps but 3.0e-6 then, and budgets larger than
    /// `EVENT_SHARE` lost too (0.1: 2.0e-6, 0.3: 8.6e-6).
    #[test]
    fn uncut_events_within_their_budget_keep_the_accuracy() {
        let (model, y0) = bench_shape();
        let t_end = 10.0;
        let (reference, cut) = loss(&model, &y0, t_end, (1e-10, 1e-13, 0.0025), 0.0);
        let default = (1e-6, 1e-9, 0.1);
        let error = |theta: f64| {
            let (l, stats) = loss(&model, &y0, t_end, default, theta);
            (
                (l / reference - 1.0).abs(),
                stats.accepted_steps,
                stats.cuts,
            )
        };
        let (budgeted, steps, cuts) = error(EVENT_SHARE);
        let (unbudgeted, fewer, none) = error(f64::MAX);
        assert!(budgeted < 1e-6, "{budgeted:e} in {steps} steps");
        assert!(unbudgeted > 2e-6, "{unbudgeted:e} in {fewer} steps");
        assert!(fewer < steps, "{fewer} against {steps} steps");
        // Every event cuts the reference (no estimates); with no budget (theta^2 overflows
        // to infinity) none cuts, not even those that are always cut with one.
        let c = cut.cuts;
        assert!(c.total() > 0 && c.forced == c.total(), "{c:?}");
        assert_eq!(none.total(), 0, "{none:?}");
        // With the budget, most cuts are where the estimates exceed it.
        assert!(2 * cuts.forced < cuts.total(), "{cuts:?}");
        assert!(cuts.total() < steps, "{cuts:?} in {steps} steps");
    }
}
