//! Probes: what a run records at each output time. A probe turns a [`Sample`] (t, Delta,
//! Delta', Lhat, the kernel's extreme eigenvalues and, in weight space, W(t) and H(t)) into
//! its own columns of the row, and may leave findings for the summary when the run ends.
//!
//! weight.csv is [`core`], [`lyapunov`], [`drift`], [`pl`], [`sharpness`] and (with held-out
//! points) [`test_gap`], the kernel's extremes coming from [`extremes`]; error.csv is [`core`], [`lyapunov`] and [`pl`], with [`exact`] watching the
//! ODE against the eigen-mode solution. A progress display is an observer too: [`Progress`].

pub mod core;
pub mod drift;
pub mod exact;
pub mod extremes;
pub mod lyapunov;
pub mod output_drift;
pub mod pl;
pub mod sharpness;
pub mod test_gap;

use nalgebra::DMatrixView;

use crate::dynamics::Snapshot;
use crate::io::Table;

/// What a probe sees at one output time.
pub struct Sample<'a> {
    pub t: f64,
    pub snapshot: &'a Snapshot,
    /// (lambda_min, lambda_max) of the space's kernel at t: of H(t) in weight space, of the
    /// fixed H in error space.
    pub kernel_extremes: (f64, f64),
    /// Whether the snapshot's H(t) is, bit for bit, the last sample's (weight space, from
    /// [`extremes::ExtremesBeside::submit`]): what a probe computed from that H holds for
    /// this one. False when not known.
    pub same_kernel: bool,
    /// W(t) (m x d), in weight space.
    pub weights: Option<DMatrixView<'a, f64>>,
}

impl Sample<'_> {
    /// Whether the state can go on: L and Delta' finite.
    pub fn finite(&self) -> bool {
        self.snapshot.finite()
    }
}

/// What probes leave for the summary when a run ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Findings {
    /// Largest lambda_max(H(t)) seen (weight space): the PL* theorem's beta.
    pub beta: Option<f64>,
    /// Largest |W(t) - W0|_F over the samples (weight space).
    pub max_distance: Option<f64>,
    /// Largest |Delta_ode(t) - Delta_exact(t)| / |Delta_exact(t)| (error space by ODE).
    pub exact_max_relative_error: Option<f64>,
    /// The tolerance floor of V at each sample ([`crate::theory::lyapunov::lyapunov_floor`]).
    pub lyapunov_floor: Vec<f64>,
    /// Error space by ODE: samples where |Delta_exact| was within the residual floor, left
    /// out of `exact_max_relative_error`, and the largest |Delta_ode - Delta_exact| there.
    pub exact_below_floor: Option<(usize, f64)>,
}

/// One observer of a run: its columns, its values at each sample, its findings at the end.
pub trait Probe {
    /// The names of the columns it adds, in order.
    fn columns(&self) -> Vec<&'static str>;
    /// Append one value per column to `row`.
    fn observe(&mut self, sample: &Sample<'_>, row: &mut Vec<f64>);
    /// Leave what it found for the summary.
    fn finish(&self, _findings: &mut Findings) {}
}

/// The probes of a space and the table they fill.
pub struct Recorder<'a> {
    probes: Vec<Box<dyn Probe + 'a>>,
    table: Table,
}

impl<'a> Recorder<'a> {
    /// A table whose header is the probes' columns, in the probes' order.
    pub fn new(probes: Vec<Box<dyn Probe + 'a>>) -> Recorder<'a> {
        let columns: Vec<&str> = probes.iter().flat_map(|p| p.columns()).collect();
        Recorder {
            table: Table::new(&columns),
            probes,
        }
    }

    /// Record a row; false when the state is not finite (the row is kept, the run stops).
    pub fn record(&mut self, sample: &Sample<'_>) -> bool {
        let mut row = Vec::with_capacity(self.table.header.len());
        for p in &mut self.probes {
            p.observe(sample, &mut row);
        }
        debug_assert_eq!(row.len(), self.table.header.len());
        self.table.rows.push(row);
        sample.finite()
    }

    /// The table and the probes' findings.
    pub fn finish(self) -> (Table, Findings) {
        let mut findings = Findings::default();
        for p in &self.probes {
            p.finish(&mut findings);
        }
        (self.table, findings)
    }
}

/// Progress of a run over flow time, for a display the caller owns (the command line's bar).
/// Called from the thread that runs the space.
pub trait Progress: Sync {
    /// A space starts: `what` names it, its flow runs to `t_end`.
    fn start(&self, what: &str, t_end: f64);
    /// The run has reached flow time t.
    fn at(&self, t: f64);
    /// The space is done.
    fn done(&self);
}

/// No display.
pub struct Silent;

impl Progress for Silent {
    fn start(&self, _: &str, _: f64) {}
    fn at(&self, _: f64) {}
    fn done(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::{ErrorSpace, Space};
    use nalgebra::DMatrix;

    struct Twice;
    impl Probe for Twice {
        fn columns(&self) -> Vec<&'static str> {
            vec!["a", "b"]
        }
        fn observe(&mut self, s: &Sample<'_>, row: &mut Vec<f64>) {
            row.extend([s.t, 2.0 * s.t]);
        }
    }

    #[test]
    fn a_recorder_names_its_columns_after_its_probes_and_stops_on_a_non_finite_state() {
        let space = ErrorSpace {
            h: DMatrix::identity(2, 2),
        };
        let mut rec = Recorder::new(vec![Box::new(core::Core), Box::new(Twice)]);
        let fine = space.snapshot(&[1.0, 0.0], &[0.0, 0.0]);
        let bad = space.snapshot(&[f64::NAN, 0.0], &[0.0, 0.0]);
        let at = |t, snapshot| Sample {
            t,
            snapshot,
            kernel_extremes: (1.0, 1.0),
            same_kernel: false,
            weights: None,
        };
        assert!(rec.record(&at(0.5, &fine)));
        assert!(!rec.record(&at(1.0, &bad)));
        let (table, _) = rec.finish();
        assert_eq!(table.header, ["t", "loss", "pseudo_loss", "a", "b"]);
        assert_eq!(table.rows[0], [0.5, 0.5, 0.5, 0.5, 1.0]);
        assert_eq!(table.rows.len(), 2);
    }
}
