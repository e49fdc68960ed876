//! The high-resolution ODEs' weight-space steps taken in output space: the held-pattern
//! Dormand-Prince stages of [`crate::dynamics::output_space`], for the forms of
//! [`super::Form`] (the held-step driver [`crate::integrate::drive`] does the step control,
//! retakes and output times, as at low resolution).
//!
//! With the activation pattern S held within a step, g = J^T Delta with Delta = J W - y, and
//! every form is linear in (Z, g) ([`super::Linear`]): x' = x_z Z + x_g g,
//! Z' = z_z Z + z_g g (Z = V for hbf; the IGR flow x' = -J^T (I + kappa H) Delta has no Z).
//! So every stage keeps the form Z_l = alpha_l Z + J^T beta_l, and with
//!
//! ```text
//! K^W_l = p_l Z + J^T q_l,        p_l = x_z alpha_l,  q_l = x_z beta_l + x_g Delta_l
//! K^Z_l = gamma_l Z + J^T d_l,    gamma_l = z_z alpha_l,  d_l = z_z beta_l + z_g Delta_l
//! Delta_s = Delta_0 + h sum_l a_sl (p_l J Z + H q_l)
//! ```
//!
//! a stage costs one product H q (O(n^2)) where the dense right-hand side costs a gradient
//! (4 n m d): the low-resolution evaluator's arithmetic with the form's four coefficients in
//! place of the friction's. IGR: q_l = -(Delta_l + kappa H Delta_l), two products H per stage.
//! A step touches weight space to form the new state (two J^T products, one for IGR) and to
//! look for sign changes, as at low resolution.
//!
//! Crossings are blended as the dense held driver blends them ([`Crossings::Blend`]'s rule:
//! each crossing activation weighted by its share of the step from the straight line through
//! z = w_r . x_i at the two ends, O(h^2) per crossing), so this evaluator matches
//! [`crate::integrate::integrate_held`] on [`super::HighFlow`] (and on the modified flow)
//! step for step in exact arithmetic. The low-resolution refinements (the Hermite share and
//! the blend's error added back for the momentum flows, gradient flow's sliding) are not
//! carried over: Z is not x' for nagsc and nag, and the IGR flow's sliding velocity is not
//! gradient flow's.
//!
//! [`Crossings::Blend`]: crate::dynamics::output_space::Crossings::Blend

use nalgebra::DVector;

use super::Form;
use crate::dynamics::output_space::{
    advance_second, combine, dot_row, held_start, jt, jt_pair, norms_first, norms_second, quad,
    split, Backup, Buffers, Held,
};
use crate::integrate::tableau as dp5;
use crate::integrate::{drive, HeldStages, Norms, SolverSettings, Stats, Stop, Watched};
use crate::model::relu2::engine::crossing_share;
use crate::model::Model;

/// The stage evaluator (see the module docs).
struct HighOutputSpace<'a> {
    model: &'a Model,
    form: Form,
    second: bool,
    held: Held,
    buf: Buffers,
    /// Stage quantities: Delta_l, J K^W_l, q_l, beta_l, d_l (n each), p_l, alpha_l, gamma_l.
    dl: Vec<DVector<f64>>,
    jkl: Vec<DVector<f64>>,
    ql: Vec<DVector<f64>>,
    bl: Vec<DVector<f64>>,
    del: Vec<DVector<f64>>,
    pl: [f64; 7],
    al: [f64; 7],
    gl: [f64; 7],
    /// J Z at the last stage (the new state's).
    jz_end: DVector<f64>,
    hv: DVector<f64>,
    combo: DVector<f64>,
    /// The second product's coefficients of a step's pair of J^T products (`jt_pair`).
    combo_z: DVector<f64>,
    /// J^T products: the new position and second part.
    pw: Vec<f64>,
    pz: Vec<f64>,
    /// J^T beta of an error whose parts cancel (`quad`).
    scratch: Vec<f64>,
    /// H, J W - y and J Z before a retake's blend.
    backup: Option<Backup>,
    evaluations: u64,
}

impl<'a> HighOutputSpace<'a> {
    fn new(model: &'a Model, form: Form, y0: &[f64]) -> HighOutputSpace<'a> {
        let (n, m, d) = (model.n(), model.m(), model.d());
        let md = m * d;
        let second = form.linear(1.0).is_some();
        let (held, buf) = held_start(model, y0, second, second);
        let zeros = || vec![DVector::<f64>::zeros(n); 7];
        HighOutputSpace {
            model,
            form,
            second,
            held,
            buf,
            dl: zeros(),
            jkl: zeros(),
            ql: zeros(),
            bl: zeros(),
            del: zeros(),
            pl: [0.0; 7],
            al: [0.0; 7],
            gl: [0.0; 7],
            jz_end: DVector::zeros(n),
            hv: DVector::zeros(n),
            combo: DVector::zeros(n),
            combo_z: DVector::zeros(n),
            pw: vec![0.0; md],
            pz: vec![0.0; if second { md } else { 0 }],
            scratch: vec![0.0; md],
            backup: None,
            evaluations: 0,
        }
    }

    /// The seven stages of a step of size `step` from t, in output space.
    fn stages(&mut self, t: f64, step: f64) {
        let held = &self.held;
        let (dl, jkl, ql, bl, del) = (
            &mut self.dl,
            &mut self.jkl,
            &mut self.ql,
            &mut self.bl,
            &mut self.del,
        );
        let (pl, al, gl, hv) = (&mut self.pl, &mut self.al, &mut self.gl, &mut self.hv);
        for s in 0..7 {
            let ts = t + dp5::C[s] * step;
            let a = &dp5::A[s];
            dl[s].copy_from(&held.delta);
            for l in 0..s {
                dl[s].axpy(step * a[l], &jkl[l], 1.0);
            }
            match (self.form, self.form.linear(ts)) {
                (_, Some(k)) => {
                    al[s] = 1.0 + step * (0..s).map(|l| a[l] * gl[l]).sum::<f64>();
                    bl[s].fill(0.0);
                    for l in 0..s {
                        bl[s].axpy(step * a[l], &del[l], 1.0);
                    }
                    pl[s] = k.x_z * al[s];
                    gl[s] = k.z_z * al[s];
                    let (d_s, b_s) = (&dl[s], &bl[s]);
                    ql[s]
                        .iter_mut()
                        .zip(b_s.iter().zip(d_s.iter()))
                        .for_each(|(q, (b, g))| *q = k.x_z * b + k.x_g * g);
                    del[s]
                        .iter_mut()
                        .zip(b_s.iter().zip(d_s.iter()))
                        .for_each(|(e, (b, g))| *e = k.z_z * b + k.z_g * g);
                    hv.gemv(1.0, &held.h, &ql[s], 0.0);
                    jkl[s].copy_from(hv);
                    jkl[s].axpy(pl[s], &held.jv, 1.0);
                }
                (Form::Igr { eta }, None) => {
                    // q = -(Delta + (eta/2) H Delta), J K^W = H q.
                    hv.gemv(1.0, &held.h, &dl[s], 0.0);
                    ql[s].copy_from(&dl[s]);
                    ql[s].axpy(eta / 2.0, hv, 1.0);
                    ql[s].neg_mut();
                    jkl[s].gemv(1.0, &held.h, &ql[s], 0.0);
                }
                _ => unreachable!("only IGR is first order"),
            }
            self.evaluations += 1;
        }
        if self.second {
            // J Z of the new state: Z_6 = alpha_6 Z + J^T beta_6.
            self.jz_end.gemv(1.0, &held.h, &bl[6], 0.0);
            self.jz_end.axpy(al[6], &held.jv, 1.0);
        }
    }
}

impl HeldStages for HighOutputSpace<'_> {
    fn start(&mut self, _t: f64, _y: &[f64]) {
        // The pattern and its H, J W - y and J Z were taken in `new`.
    }

    fn trial(&mut self, t: f64, step: f64, ys: &[f64], yn: &mut [f64]) -> Norms {
        self.stages(t, step);
        let model = self.model;
        let md = model.m() * model.d();
        let b6 = &dp5::A[6];
        let bcoef = |l: usize| if l < 6 { step * b6[l] } else { 0.0 };
        let ecoef = |l: usize| step * dp5::E[l];
        let HighOutputSpace {
            held,
            buf,
            ql,
            del,
            pl,
            gl,
            hv,
            combo,
            combo_z,
            pw,
            pz,
            scratch,
            ..
        } = self;
        combine(bcoef, ql, combo);
        if !self.second {
            jt(model, combo, pw, &mut buf.ws, &held.pattern);
            for j in 0..md {
                yn[j] = ys[j] + pw[j];
            }
            combine(ecoef, ql, combo);
            let e = quad(model, held, 0.0, 0.0, combo, &[], hv, scratch, &mut buf.ws);
            return norms_first(ys, yn, e);
        }
        combine(bcoef, del, combo_z);
        jt_pair(
            model,
            [combo, combo_z],
            [pw, pz],
            &mut buf.ws,
            &held.pattern,
        );
        let cw = (0..7).map(|l| bcoef(l) * pl[l]).sum::<f64>();
        let cz = 1.0 + (0..7).map(|l| bcoef(l) * gl[l]).sum::<f64>();
        let sq = advance_second(ys, yn, [cw, cz], pw, pz);
        norms_second(
            model,
            held,
            ecoef,
            [pl, gl],
            [ql, del],
            sq,
            &ys[md..],
            combo,
            hv,
            scratch,
            &mut buf.ws,
        )
    }

    fn blend(&mut self, _t: f64, _step: f64, y: &[f64], y_new: &[f64]) -> u64 {
        let model = self.model;
        let (m, d) = (model.m(), model.d());
        let x = &model.data().x;
        let (held, buf) = (&mut self.held, &mut self.buf);
        let w1 = held.changes_at(model, y_new, self.second, buf);
        if buf.changed.is_empty() {
            return 0;
        }
        // Retake with each crossing weighted by its share of the step (the straight line
        // through z at the two ends); H, J W and J Z follow entry by entry.
        self.backup = Some(held.backup(None));
        let (w0, z0) = split(y, m, d, self.second);
        held.set_entries(
            model,
            &buf.changed,
            &w0,
            z0.as_ref(),
            &mut buf.row,
            true,
            |p, r, i, a| crossing_share(a, dot_row(&w1, x, r, i), p.active(r, i)),
        );
        buf.changed.len() as u64
    }

    fn accept(&mut self, _t: f64, y: &[f64], retaken: bool) {
        let held = &mut self.held;
        held.delta.copy_from(&self.dl[6]);
        if self.second {
            held.jv.copy_from(&self.jz_end);
        }
        if retaken {
            self.backup = None;
            held.adopt_state(self.model, y, self.second, &mut self.buf);
        }
    }

    fn reject(&mut self, _t: f64, _y: &[f64], retaken: bool) {
        if retaken {
            let backup = self.backup.take().expect("a retake keeps its backup");
            self.held.restore(backup);
        }
    }

    fn resume(&mut self, _t: f64, y: &[f64]) {
        self.held
            .refresh_at(self.model, y, self.second, &mut self.buf);
    }

    fn evaluations(&self) -> u64 {
        self.evaluations
    }
}

/// Integrate a high-resolution form in weight space (state `[W]` for IGR, `[W, Z]` for the
/// others, W column-major, as [`super::HighFlow`] lays it out) from `times[0]` through
/// `times` with held-pattern Dormand-Prince steps taken in output space, telling `on_step(t)`
/// the time of every accepted step; outputs go to `observe` as in
/// [`crate::integrate::integrate_held`], which this matches step for step in exact
/// arithmetic. The model's output layer must be fixed (u linear in W on a held pattern).
#[allow(clippy::too_many_arguments)]
pub fn integrate_high_output_space(
    model: &Model,
    form: Form,
    y0: DVector<f64>,
    times: &[f64],
    settings: &SolverSettings,
    on_step: impl FnMut(f64),
    observe: impl FnMut(f64, &DVector<f64>) -> bool,
) -> (Stats, Stop) {
    let stages = HighOutputSpace::new(model, form, y0.as_slice());
    drive(
        &mut Watched::new(stages, on_step),
        y0,
        times,
        settings,
        observe,
    )
}
