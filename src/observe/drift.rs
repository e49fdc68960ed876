//! How far the network moved from its start (weight space): lambda_min(H(t)), the kernel's
//! drift |H(t) - H(0)|_F, the largest drift of one neuron max_r |w_r(t) - w_r(0)| and the
//! share of activation signs that changed (Du et al. 2018: the drifts are O(1/sqrt m)).

use nalgebra::DMatrix;

use super::{Findings, Probe, Sample};
use crate::dynamics::PatternBits;

/// Columns lambda_min, kernel_drift, max_weight_drift, pattern_change_frac; finds beta (the
/// largest lambda_max(H(t))) and the largest |W(t) - W0|_F.
pub struct Drift<'a> {
    h0: &'a DMatrix<f64>,
    w0: &'a DMatrix<f64>,
    /// The pattern at W0, as bits: a count of changes reads m n / 64 words.
    pattern0: PatternBits,
    beta: f64,
    max_distance: f64,
    /// H(t) - H(0) and W(t) - W0, formed in place at every sample (no allocation per sample).
    gap_h: DMatrix<f64>,
    gap_w: DMatrix<f64>,
    /// |w_r(t) - w_r(0)|^2 of each neuron.
    moved: Vec<f64>,
    /// The last sample's |H(t) - H(0)|_F, which a repeated H(t) keeps
    /// ([`Sample::same_kernel`]).
    kernel_drift: f64,
}

impl<'a> Drift<'a> {
    /// From H(0), W0 and the activation pattern at W0.
    pub fn new(h0: &'a DMatrix<f64>, w0: &'a DMatrix<f64>, pattern0: DMatrix<f64>) -> Self {
        Drift {
            h0,
            w0,
            pattern0: PatternBits::of(&pattern0),
            moved: vec![0.0; w0.nrows()],
            beta: 0.0,
            max_distance: 0.0,
            kernel_drift: f64::NAN,
            gap_h: h0.clone(),
            gap_w: w0.clone(),
        }
    }
}

impl Probe for Drift<'_> {
    fn columns(&self) -> Vec<&'static str> {
        vec![
            "lambda_min",
            "kernel_drift",
            "max_weight_drift",
            "pattern_change_frac",
        ]
    }

    fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
        let (lambda_min, lambda_max) = s.kernel_extremes;
        self.beta = self.beta.max(lambda_max);
        let gram = s.snapshot.gram.as_ref().expect("weight space carries H(t)");
        let w = s.weights.as_ref().expect("weight space carries W(t)");
        // The same differences, and so the same norms, as (H(t) - H0).norm() and (W - W0).norm();
        // the same H(t) as the last sample's has the same drift (at n = 100 the two passes
        // over H took a third of the probe).
        if !s.same_kernel {
            self.gap_h.copy_from(gram);
            self.gap_h -= self.h0;
            self.kernel_drift = self.gap_h.norm();
        }
        let drift = self.kernel_drift;
        // Column by column (W is column-major), each neuron's sum of squares taken in
        // column order from 0, as nalgebra's norm of the 1 x d row does (bit for bit the
        // same); the differences fill W(t) - W0 on the way.
        self.moved.iter_mut().for_each(|x| *x = 0.0);
        for j in 0..w.ncols() {
            let (now, start) = (w.column(j), self.w0.column(j));
            let mut gap = self.gap_w.column_mut(j);
            for (r, sum) in self.moved.iter_mut().enumerate() {
                let g = now[r] - start[r];
                gap[r] = g;
                *sum += g * g;
            }
        }
        let moved = self.moved.iter().map(|s| s.sqrt()).fold(0.0, f64::max);
        self.max_distance = self.max_distance.max(self.gap_w.norm());
        let pattern = s
            .snapshot
            .pattern
            .as_ref()
            .expect("weight space carries its pattern");
        let changed = pattern.differences(&self.pattern0);
        let frac = changed as f64 / pattern.len() as f64;
        row.extend([lambda_min, drift, moved, frac]);
    }

    fn finish(&self, findings: &mut Findings) {
        findings.beta = Some(self.beta);
        findings.max_distance = Some(self.max_distance);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{Space, WeightSpace};
    use crate::model::{Data, InitialNetwork, Model};

    #[test]
    fn a_repeated_kernel_keeps_the_drift_computed_from_it_and_a_new_one_is_measured() {
        let (n, d, m) = (8, 3, 40);
        let net = InitialNetwork::init(m, d, 1);
        let model = Model::new(Data::synthetic(n, d, 1), net.a);
        let space = WeightSpace::new(&model);
        let w0 = net.w;
        let h0 = model.gram(&w0.as_view());
        let w1 = w0.map(|x| x + 0.3 * x.cos());
        let (s0, s1) = (
            space.gradient_flow_snapshot(w0.as_slice()),
            space.gradient_flow_snapshot(w1.as_slice()),
        );
        let rows = |same: [bool; 3]| {
            let mut drift = Drift::new(&h0, &w0, model.pattern(&w0.as_view()));
            let mut row = Vec::new();
            for ((s, w), same_kernel) in [(&s0, &w0), (&s1, &w1), (&s1, &w1)].into_iter().zip(same)
            {
                drift.observe(
                    &Sample {
                        t: 0.0,
                        snapshot: s,
                        kernel_extremes: (1.0, 2.0),
                        same_kernel,
                        weights: Some(w.as_view()),
                    },
                    &mut row,
                );
            }
            row
        };
        let measured = rows([false; 3]);
        assert_eq!(rows([false, false, true]), measured);
        let h1 = s1.gram.as_ref().expect("weight space carries H(t)");
        assert_eq!(measured[1], 0.0);
        assert_eq!(measured[5], (h1 - &h0).norm());
        assert!(measured[5] > 0.0);
    }
}
