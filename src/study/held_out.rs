//! Held-out points (`--test FILE`, `--test-n K`) across a study: the warnings they need, the
//! discrete twin's test loss, and what summary.json reports of them.
//!
//! Every test loss is 1/2 sum_k (f(x_k) - y_k)^2 over the held-out points, a sum as `loss`
//! is over the training points; accuracy (the share of sign(f(x_k)) = y_k) is reported when
//! the labels are all +-1. Three predictors are measured: the network f(W(t); x) (weight
//! space), the kernel predictor f*_t of the linearized network
//! ([`crate::observe::test_gap`]), and the discrete twin's iterate f(W_k; x).

use nalgebra::DMatrix;
use serde::{Deserialize, Serialize};

use crate::io::Table;
use crate::model::Data;
use crate::observe::test_gap::{labels_pm1, KernelTest, TwinTest};
use crate::study::config::{KernelChoice, RunConfig, SpaceChoice};
use crate::study::setup::Setup;
use crate::theory::diagnostics::cross_kernel_h0;

/// |x| off 1 by more than this is off the unit sphere (as for the training points).
const OFF_SPHERE: f64 = 1e-6;

/// The warnings held-out points call for: points off the unit sphere (the theory assumes
/// |x| = 1), and error space alone, where only the kernel predictor can be measured.
pub fn warnings(cfg: &RunConfig, setup: &Setup) -> Vec<String> {
    let Some(test) = &setup.test else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let off = test.max_norm_deviation();
    if off > OFF_SPHERE {
        out.push(format!(
            "held-out points are not on the unit sphere (largest ||x| - 1| = {off:.3e}); the theory assumes they are, --normalize projects them"
        ));
    }
    if cfg.space == SpaceChoice::Error {
        out.push(
            "--space error with held-out points: error.csv reports the kernel predictor's test loss only (test_loss_kernel); the network's test loss and test_gap need weight space (--space weight or both)".into(),
        );
    }
    out
}

/// The error-space kernel of `kernel` and its cross kernel K(test, train).
pub fn kernels<'s>(
    kernel: KernelChoice,
    setup: &'s Setup,
    test: &Data,
) -> (&'s DMatrix<f64>, DMatrix<f64>) {
    let model = &setup.model;
    // issue 17: a trained output layer adds the second layer's kernel to both cross kernels.
    let trained = model.train().output_layer();
    match kernel {
        KernelChoice::H0 if trained => (&setup.h0, model.cross_gram(&setup.w0.as_view(), test)),
        KernelChoice::H0 => (&setup.h0, cross_kernel_h0(model, &setup.w0, test)),
        KernelChoice::Hinf => (&setup.hinf, model.infinite_width_cross_kernel(test)),
    }
}

/// The kernel predictor of error space on the held-out points (a probe of error.csv).
pub fn kernel_test(cfg: &RunConfig, setup: &Setup) -> Option<KernelTest> {
    let test = setup.test.as_ref()?;
    let (_, cross) = kernels(cfg.kernel, setup, test);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    let test_model = setup.model.on_data(test.clone());
    let u0 = test_model.predict(&setup.w0.as_view());
    // issue 20: error space's decomposition of the kernel, not a second one.
    let spectrum = crate::study::executor::kernel_spectrum(cfg.kernel, setup);
    Some(KernelTest::new(
        &spectrum,
        &cross,
        delta0,
        u0,
        test.y.clone(),
    ))
}

/// What a study keeps of its held-out points beside the tables: the twin's columns and the
/// kernel predictor's limit f*_inf.
#[derive(Clone, Debug, PartialEq)]
pub struct HeldOut {
    pub points: usize,
    /// Columns the twin adds to discrete.csv, and one row of them per iterate.
    pub twin_columns: Vec<&'static str>,
    pub twin_rows: Vec<Vec<f64>>,
    /// 1/2 |f*_inf - y|^2 and its accuracy on the held-out points.
    pub kernel_limit_test_loss: f64,
    pub kernel_limit_test_accuracy: Option<f64>,
}

impl HeldOut {
    /// From the twin's observer (None without a twin) and the kernel predictor.
    pub fn new(points: usize, twin: Option<TwinTest>, kernel: &KernelTest) -> HeldOut {
        let (kernel_limit_test_loss, kernel_limit_test_accuracy) = kernel.limit_metrics();
        let (twin_columns, twin_rows) = match twin {
            Some(t) => (t.columns(), t.rows),
            None => (Vec::new(), Vec::new()),
        };
        HeldOut {
            points,
            twin_columns,
            twin_rows,
            kernel_limit_test_loss,
            kernel_limit_test_accuracy,
        }
    }

    /// discrete.csv with the twin's held-out columns appended to each row.
    pub fn extend_discrete(&self, table: &mut Table) {
        if self.twin_columns.is_empty() {
            return;
        }
        table
            .header
            .extend(self.twin_columns.iter().map(|c| c.to_string()));
        for (row, extra) in table.rows.iter_mut().zip(&self.twin_rows) {
            row.extend(extra);
        }
    }
}

/// summary.json's `held_out`: the final test metrics of each predictor (at T; the kernel
/// predictor also at its limit t -> inf). Losses are 1/2 sum (f - y)^2 over the held-out
/// points; accuracies only with +-1 labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HeldOutSummary {
    pub points: usize,
    /// Whether the held-out labels are all +-1 (then accuracies are reported).
    pub labels_pm1: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_test_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_test_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_limit_test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_limit_test_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_test_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discrete_test_accuracy: Option<f64>,
}

/// The last finite-or-not value of `column` in `table`.
fn last(table: Option<&Table>, column: &str) -> Option<f64> {
    let t = table?;
    let j = t.header.iter().position(|h| h == column)?;
    t.rows.last().and_then(|r| r.get(j).copied())
}

impl HeldOutSummary {
    /// From the tables of a run (weight, error, discrete with its held-out columns).
    pub fn of(
        held: &HeldOut,
        test: &Data,
        weight: Option<&Table>,
        error: Option<&Table>,
        discrete: Option<&Table>,
    ) -> HeldOutSummary {
        let kernel_table = weight.or(error);
        HeldOutSummary {
            points: held.points,
            labels_pm1: labels_pm1(&test.y),
            network_test_loss: last(weight, "test_loss"),
            network_test_accuracy: last(weight, "test_accuracy"),
            train_accuracy: last(weight, "train_accuracy"),
            kernel_test_loss: last(kernel_table, "test_loss_kernel"),
            kernel_test_accuracy: last(kernel_table, "test_accuracy_kernel"),
            kernel_limit_test_loss: Some(held.kernel_limit_test_loss),
            kernel_limit_test_accuracy: held.kernel_limit_test_accuracy,
            discrete_test_loss: last(discrete, "test_loss"),
            discrete_test_accuracy: last(discrete, "test_accuracy"),
        }
    }
}
