//! Whether a run's output times resolve its fastest oscillation.
//!
//! In error space a constant-friction flow (HBF, NAG-SC: Delta'' + b Delta' + H Delta = 0)
//! moves each eigen-mode lambda of H as exp(r t) with r^2 + b r + lambda = 0; a mode with
//! lambda > b^2/4 oscillates with angular frequency sqrt(lambda - b^2/4), so the fastest
//! period is 2 pi / sqrt(lambda_max - b^2/4). Drawn from samples further apart than a quarter
//! of it, the zigzag of the loss is aliased (HBF on digits: samples 0.25 apart against a
//! period of 0.61 drew a slow wave that is not there). Weight space starts on H(0), so its
//! fastest mode is that of H(0).

use crate::output::summary::{DampingRecord, Summary};
use crate::study::{KernelChoice, SpaceChoice};

/// Output times too far apart for the fastest oscillation, and the --samples that resolve it.
#[derive(Clone, Debug, PartialEq)]
pub struct Aliasing {
    /// The fastest period 2 pi / sqrt(lambda_max - b^2/4).
    pub period: f64,
    /// The interval T / (K - 1) between output times.
    pub interval: f64,
    /// The smallest --samples K with T / (K - 1) <= period / 4.
    pub samples: usize,
}

impl std::fmt::Display for Aliasing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "output times are {:.3} apart but the fastest oscillation has period {:.3}: the \
             curves may be aliased; --samples {} puts four samples in each period",
            self.interval, self.period, self.samples
        )
    }
}

/// The check for friction `b`, largest eigenvalue `lambda_max`, end time `t_end` and
/// `samples` output times: None when no mode oscillates or the samples resolve it.
pub fn check(b: f64, lambda_max: f64, t_end: f64, samples: usize) -> Option<Aliasing> {
    let omega2 = lambda_max - b * b / 4.0;
    if !(omega2 > 0.0 && t_end > 0.0 && samples >= 2) {
        return None;
    }
    let period = 2.0 * std::f64::consts::PI / omega2.sqrt();
    let interval = t_end / (samples - 1) as f64;
    if interval <= period / 4.0 {
        return None;
    }
    let needed = (4.0 * t_end / period).ceil() + 1.0;
    Some(Aliasing {
        period,
        interval,
        samples: if needed.is_finite() && needed < 1e12 {
            needed as usize
        } else {
            usize::MAX
        },
    })
}

/// The check for a run's summary: constant friction only, lambda_max of the kernels the run
/// integrates (H(0) for weight space, the fixed kernel for error space).
pub fn of_summary(summary: &Summary) -> Option<Aliasing> {
    let DampingRecord::Constant(b) = summary.damping else {
        return None;
    };
    let cfg = &summary.config;
    let mut lambda_max = f64::NEG_INFINITY;
    if matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both) {
        lambda_max = lambda_max.max(summary.h0.lambda_max);
    }
    if matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both) {
        lambda_max = lambda_max.max(match cfg.kernel {
            KernelChoice::H0 => summary.h0.lambda_max,
            KernelChoice::Hinf => summary.hinf.lambda_max,
        });
    }
    check(b, lambda_max, cfg.t_end, cfg.samples)
}

/// The check for a run in memory.
pub fn of_report(report: &crate::study::Report) -> Option<Aliasing> {
    of_summary(&Summary::of(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_a_quarter_period_apart_or_closer_pass() {
        // lambda_max = 1 + 1/4 with b = 1: omega = 1, period 2 pi.
        let period = 2.0 * std::f64::consts::PI;
        let t = 100.0;
        let k = (4.0 * t / period).ceil() as usize + 1;
        assert!(check(1.0, 1.25, t, k).is_none());
        assert!(
            check(1.0, 1.25, t, 101).is_none(),
            "1.0 apart against 2 pi / 4 = 1.57"
        );
        let a = check(1.0, 1.25, t, 51).expect("2.0 apart against 1.57");
        assert_eq!(a.samples, k);
    }

    #[test]
    fn the_suggested_samples_resolve_the_fastest_period() {
        // digits-like: period 0.61, samples 0.25 apart over T = 50.
        let omega = 2.0 * std::f64::consts::PI / 0.61;
        let b = 0.3;
        let lambda_max = omega * omega + b * b / 4.0;
        let a = check(b, lambda_max, 50.0, 201).expect("0.25 > 0.61 / 4");
        assert!((a.period - 0.61).abs() < 1e-12);
        assert!((a.interval - 0.25).abs() < 1e-12);
        assert!(50.0 / (a.samples - 1) as f64 <= a.period / 4.0);
        assert!(
            50.0 / (a.samples - 2) as f64 > a.period / 4.0,
            "the smallest such K"
        );
        assert!(check(b, lambda_max, 50.0, a.samples).is_none());
        assert!(a.to_string().contains(&format!("--samples {}", a.samples)));
    }

    #[test]
    fn overdamped_modes_do_not_oscillate() {
        assert!(check(2.0, 0.99, 100.0, 2).is_none());
    }
}
