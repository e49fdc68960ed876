//! Weight-space Dormand-Prince steps taken in output space, exactly as the held-pattern
//! integrator takes them in weight space but at a fraction of the cost.
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
//! So the seven stages cost O(n^2) each, and a step touches weight space only to form the
//! new state and the error estimate (four products J^T beta, 8 n m d flops for the momentum
//! flows, two for GF) and to look for sign changes (2 n m d): about a third of the seven
//! full right-hand sides (28 n m d) of [`crate::integrate::integrate_held`], whose rules
//! for crossings (retake with fractional weights), step control and max step it follows.
//! H, J W and J V are kept up to date across pattern changes entry by entry (O(n) each);
//! J W and J V are recomputed from the state at every output time, H only at the start (its
//! updates drifted by less than 1e-12 in a review's check against H recomputed every step).

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector};

use crate::dynamics::Damping;
use crate::gradient::{crossing_share, Pattern, Workspace};
use crate::integrate::{dp5, grown, shrunk, SolverSettings, SolverStats, Stop};
use crate::model::Model;

/// The held pattern with the output-space quantities of the state it was taken at.
struct Held {
    pattern: Pattern,
    /// H_S = J J^T.
    h: DMatrix<f64>,
    /// Delta_0 = J W - y.
    delta: DVector<f64>,
    /// J V (momentum flows).
    jv: DVector<f64>,
}

/// Scratch for the pattern bookkeeping.
struct Buffers {
    ws: Workspace,
    signs: Vec<u8>,
    changed: Vec<(usize, usize)>,
    row: Vec<f64>,
}

impl Held {
    /// Pattern, H, J W - y and J V of the state (W, V), from scratch.
    fn fresh(
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
        };
        held.refresh(model, w, v, b);
        held
    }

    /// J W - y and J V recomputed from the state (wiping the rounding of their recursions).
    fn refresh(
        &mut self,
        model: &Model,
        w: &DMatrixView<f64>,
        v: Option<&DMatrixView<f64>>,
        b: &mut Buffers,
    ) {
        model.jvp_held(w, &mut b.ws, &self.pattern, self.delta.as_mut_slice());
        self.delta -= &model.data.y;
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
        // H_ij = (x_i . x_j / m) sum_r S_ri S_rj (a_r^2 = 1).
        for (j, srj) in row.iter().enumerate() {
            if j != i {
                let dh = xx[(i, j)] / m * step * srj;
                self.h[(i, j)] += dh;
                self.h[(j, i)] += dh;
            }
        }
        self.h[(i, i)] += xx[(i, i)] / m * (new * new - old * old);
        let ar = model.a[r] / m.sqrt();
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
    fn set_entries(
        &mut self,
        model: &Model,
        entries: &[(usize, usize)],
        w: &DMatrixView<f64>,
        v: Option<&DMatrixView<f64>>,
        row: &mut [f64],
        blend: bool,
        mut new: impl FnMut(&Pattern, usize, usize, f64) -> f64,
    ) {
        let x = &model.data.x;
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

/// (W, V) of a state [W] or [W, V].
fn split(
    y: &DVector<f64>,
    m: usize,
    d: usize,
    second: bool,
) -> (DMatrixView<'_, f64>, Option<DMatrixView<'_, f64>>) {
    let s = y.as_slice();
    (
        DMatrixView::from_slice(&s[..m * d], m, d),
        second.then(|| DMatrixView::from_slice(&s[m * d..], m, d)),
    )
}

fn dot_row(w: &DMatrixView<f64>, x: &DMatrix<f64>, r: usize, i: usize) -> f64 {
    w.row(r).dot(&x.row(i))
}

/// The friction c(t) of a momentum flow, None at Nesterov's singular start.
fn friction(damping: Damping, t: f64) -> Option<f64> {
    match damping {
        Damping::Constant(b) => Some(b),
        Damping::Vanishing(gamma) if t > 0.0 => Some(gamma / t),
        _ => None,
    }
}

/// Integrate weight space (state [W] for GF, [W, V] for the momentum flows, W column-major)
/// through `times` with held-pattern Dormand-Prince steps taken in output space; outputs go to
/// `observe` as in [`crate::integrate::integrate_held`], which this matches step for step in
/// exact arithmetic. `evaluations` counts stages (each O(n^2) here).
pub fn integrate_output_space(
    model: &Model,
    damping: Damping,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    mut observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (SolverStats, Stop) {
    let (n, m, d) = (model.n(), model.m(), model.d());
    let md = m * d;
    let second = damping.second_order();
    let dim = y0.len();
    assert_eq!(
        dim,
        if second { 2 * md } else { md },
        "state of another size"
    );
    let mut stats = SolverStats::default();
    let mut y = y0;
    let mut y_new = DVector::zeros(dim);
    let mut t = times[0];
    if !observe(t, &y) {
        return (stats, Stop::Observer { t });
    }
    let mut buf = Buffers {
        ws: Workspace::new(m, n, d),
        signs: Vec::new(),
        changed: Vec::new(),
        row: vec![0.0; n],
    };
    let x = &model.data.x;
    let mut held = {
        let (w, v) = split(&y, m, d, second);
        Held::fresh(model, &w, v.as_ref(), &mut buf)
    };
    // Stage quantities: Delta_l, J V_l, beta_l, delta_l (n each), alpha_l, gamma_l.
    let zeros = || vec![DVector::<f64>::zeros(n); 7];
    let (mut dl, mut jvl, mut bl, mut del) = (zeros(), zeros(), zeros(), zeros());
    let (mut al, mut gl) = ([0.0f64; 7], [0.0f64; 7]);
    let mut hv = DVector::<f64>::zeros(n);
    let mut combo = DVector::<f64>::zeros(n);
    // J^T products: new position and velocity (pw, pv), the two parts of the error (ew, ev).
    let vlen = if second { md } else { 0 };
    let (mut pw, mut pv) = (vec![0.0; md], vec![0.0; vlen]);
    let (mut ew, mut ev) = (vec![0.0; md], vec![0.0; vlen]);
    let mut backup: Option<(DMatrix<f64>, DVector<f64>, DVector<f64>)> = None;

    let span = times[times.len() - 1] - times[0];
    let mut h = (1e-3 * span).min(settings.max_step);
    let mut steps_in_interval = 0u32;
    let mut retake: Option<f64> = None;
    for &target in &times[1..] {
        while t < target {
            if steps_in_interval > settings.max_steps {
                let msg = format!(
                    "more than {} steps in one output interval",
                    settings.max_steps
                );
                return (stats, Stop::Failed { t, msg });
            }
            let mut step = retake.unwrap_or_else(|| h.min(settings.max_step));
            let last = t + step >= target - 1e-12 * target.abs().max(1.0);
            if last {
                step = target - t;
            }
            // The seven stages in output space.
            for s in 0..7 {
                let ts = t + dp5::C[s] * step;
                let a = &dp5::A[s];
                if second {
                    al[s] = 1.0 + step * (0..s).map(|l| a[l] * gl[l]).sum::<f64>();
                    combo.fill(0.0);
                    for l in 0..s {
                        combo.axpy(step * a[l], &del[l], 1.0);
                    }
                    bl[s].copy_from(&combo);
                    hv.gemv(1.0, &held.h, &bl[s], 0.0);
                    jvl[s].copy_from(&hv);
                    jvl[s].axpy(al[s], &held.jv, 1.0);
                    dl[s].copy_from(&held.delta);
                    for l in 0..s {
                        dl[s].axpy(step * a[l], &jvl[l], 1.0);
                    }
                    match friction(damping, ts) {
                        Some(c) => {
                            gl[s] = -c * al[s];
                            del[s].copy_from(&bl[s]);
                            del[s] *= -c;
                            del[s] -= &dl[s];
                        }
                        None => {
                            let Damping::Vanishing(gamma) = damping else {
                                unreachable!("only Nesterov's friction has no value at t = 0")
                            };
                            gl[s] = 0.0;
                            del[s].copy_from(&dl[s]);
                            del[s] *= -1.0 / (1.0 + gamma);
                        }
                    }
                } else {
                    // GF: K_l = -J^T Delta_l, so Delta_s = Delta_0 - h sum_l a_sl H Delta_l.
                    dl[s].copy_from(&held.delta);
                    for l in 0..s {
                        dl[s].axpy(-step * a[l], &jvl[l], 1.0);
                    }
                    // jvl holds H Delta_l for GF.
                    hv.gemv(1.0, &held.h, &dl[s], 0.0);
                    jvl[s].copy_from(&hv);
                }
                stats.evaluations += 1;
            }
            // Weight space: y_new and the error estimate.
            let b6 = &dp5::A[6];
            let sum = |coef: &dyn Fn(usize) -> f64, v: &[DVector<f64>], out: &mut DVector<f64>| {
                out.fill(0.0);
                for (l, vl) in v.iter().enumerate() {
                    let c = coef(l);
                    if c != 0.0 {
                        out.axpy(c, vl, 1.0);
                    }
                }
            };
            let bcoef = |l: usize| if l < 6 { step * b6[l] } else { 0.0 };
            let ecoef = |l: usize| step * dp5::E[l];
            let jt =
                |beta: &DVector<f64>, out: &mut Vec<f64>, buf: &mut Buffers, pattern: &Pattern| {
                    let mut gv = DMatrixViewMut::from_slice(out, m, d);
                    model.vjp_held(beta.as_slice(), &mut gv, &mut buf.ws, pattern);
                };
            let (yn, ys) = (y_new.as_mut_slice(), y.as_slice());
            let err2 = if second {
                sum(&bcoef, &bl, &mut combo);
                jt(&combo, &mut pw, &mut buf, &held.pattern);
                sum(&bcoef, &del, &mut combo);
                jt(&combo, &mut pv, &mut buf, &held.pattern);
                sum(&ecoef, &bl, &mut combo);
                jt(&combo, &mut ew, &mut buf, &held.pattern);
                sum(&ecoef, &del, &mut combo);
                jt(&combo, &mut ev, &mut buf, &held.pattern);
                let cw = (0..7).map(|l| bcoef(l) * al[l]).sum::<f64>();
                let cv = 1.0 + (0..7).map(|l| bcoef(l) * gl[l]).sum::<f64>();
                let ew_c = (0..7).map(|l| ecoef(l) * al[l]).sum::<f64>();
                let ev_c = (0..7).map(|l| ecoef(l) * gl[l]).sum::<f64>();
                let vs = &ys[md..];
                let mut acc = 0.0;
                for j in 0..md {
                    let (wj, vj) = (ys[j], vs[j]);
                    let wn = wj + cw * vj + pw[j];
                    let vn = cv * vj + pv[j];
                    yn[j] = wn;
                    yn[md + j] = vn;
                    let e1 = ew_c * vj + ew[j];
                    let e2 = ev_c * vj + ev[j];
                    let s1 = settings.atol + settings.rtol * wj.abs().max(wn.abs());
                    let s2 = settings.atol + settings.rtol * vj.abs().max(vn.abs());
                    acc += (e1 / s1) * (e1 / s1) + (e2 / s2) * (e2 / s2);
                }
                acc
            } else {
                sum(&bcoef, &dl, &mut combo);
                combo *= -1.0;
                jt(&combo, &mut pw, &mut buf, &held.pattern);
                sum(&ecoef, &dl, &mut combo);
                combo *= -1.0;
                jt(&combo, &mut ew, &mut buf, &held.pattern);
                let mut acc = 0.0;
                for j in 0..md {
                    let wn = ys[j] + pw[j];
                    yn[j] = wn;
                    let sc = settings.atol + settings.rtol * ys[j].abs().max(wn.abs());
                    acc += (ew[j] / sc) * (ew[j] / sc);
                }
                acc
            };
            let err = (err2 / dim as f64).sqrt();
            if err <= 1.0 && retake.is_none() {
                let (w1, _) = split(&y_new, m, d, second);
                held.pattern
                    .changes(model, &w1, &mut buf.signs, &mut buf.changed, &mut buf.ws);
                if !buf.changed.is_empty() {
                    // Retake with each crossing weighted by its share of the step, as
                    // WeightSpace::blend_pattern does; H, J W and J V follow entry by entry.
                    stats.sign_changes += buf.changed.len() as u64;
                    backup = Some((held.h.clone(), held.delta.clone(), held.jv.clone()));
                    let (w0, v0) = split(&y, m, d, second);
                    held.set_entries(
                        model,
                        &buf.changed,
                        &w0,
                        v0.as_ref(),
                        &mut buf.row,
                        true,
                        |p, r, i, a| crossing_share(a, dot_row(&w1, x, r, i), p.active(r, i)),
                    );
                    retake = Some(step);
                    continue;
                }
            }
            let retaken = retake.take().is_some();
            if err <= 1.0 {
                t = if last { target } else { t + step };
                std::mem::swap(&mut y, &mut y_new);
                held.delta.copy_from(&dl[6]);
                if second {
                    held.jv.copy_from(&jvl[6]);
                }
                stats.accepted_steps += 1;
                steps_in_interval += 1;
                if retaken {
                    backup = None;
                    // The pattern of the new state: crossings and the blended entries.
                    let (w1, v1) = split(&y, m, d, second);
                    held.pattern
                        .changes(model, &w1, &mut buf.signs, &mut buf.changed, &mut buf.ws);
                    let entries = &mut buf.changed;
                    entries.extend(held.pattern.blend_entries().iter().map(|&(r, i, _)| (r, i)));
                    entries.sort_unstable();
                    entries.dedup();
                    let signs = &buf.signs;
                    held.set_entries(
                        model,
                        entries,
                        &w1,
                        v1.as_ref(),
                        &mut buf.row,
                        false,
                        |_, r, i, _| f64::from(signs[r * n + i]),
                    );
                    held.pattern.adopt(&mut buf.signs);
                }
                if !last || step >= h {
                    h = grown(step, err);
                }
            } else if err.is_finite() {
                stats.rejected_steps += 1;
                if retaken {
                    let (hh, dd, jj) = backup.take().expect("a retake keeps its backup");
                    held.h = hh;
                    held.delta = dd;
                    held.jv = jj;
                    held.pattern.clear_blend();
                }
                h = shrunk(step, err);
                if h < 1e-14 * t.abs().max(1.0) {
                    return (
                        stats,
                        Stop::Failed {
                            t,
                            msg: "step size underflow".into(),
                        },
                    );
                }
            } else {
                // A non-finite step: the observer sees it, and the run ends here whatever it
                // says (the pattern bookkeeping of a non-finite state means nothing).
                t = target;
                std::mem::swap(&mut y, &mut y_new);
                observe(t, &y);
                return (stats, Stop::Observer { t });
            }
        }
        steps_in_interval = 0;
        if !observe(t, &y) {
            return (stats, Stop::Observer { t });
        }
        if t < times[times.len() - 1] {
            let (w, v) = split(&y, m, d, second);
            held.refresh(model, &w, v.as_ref(), &mut buf);
        }
    }
    (stats, Stop::Completed)
}
