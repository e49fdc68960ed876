//! Typed errors, one enum per layer (input, numerics, output), each printing one line.

use std::path::PathBuf;

use crate::integrate::{StepFailure, Stop};

/// Something the user gave us is wrong: a file, a value, an option.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A file could not be opened or read.
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    /// A CSV file is malformed at a given line.
    #[error("{}: line {line}: {msg}", path.display())]
    Csv {
        path: PathBuf,
        line: u64,
        msg: String,
    },
    /// A command-line option is out of its allowed range.
    #[error("--{option}: {msg}")]
    Option { option: &'static str, msg: String },
    /// A file's input dimension disagrees with the data's (--init, --test).
    #[error("--{option} {} has d = {found} but the data have d = {expected}", path.display())]
    Dimension {
        option: &'static str,
        path: PathBuf,
        found: usize,
        expected: usize,
    },
    /// `sweep --merge`: the shards in a folder do not form one whole sweep.
    #[error("sweep --merge: {0}")]
    Shards(String),
    /// A run would need more memory than it may take (the estimate of
    /// [`crate::study::validate::MemoryEstimate`], checked before allocating); `detail` names
    /// its largest part and how to lower it.
    #[error("n = {n}, d = {d}, m = {m} needs about {} of memory (at most {}): {detail}", crate::study::validate::gigabytes(*needed_bytes), crate::study::validate::gigabytes(*limit_bytes))]
    Memory {
        n: usize,
        d: usize,
        m: usize,
        needed_bytes: f64,
        limit_bytes: f64,
        detail: String,
    },
}

impl InputError {
    /// An option error with a message.
    pub fn option(option: &'static str, msg: impl Into<String>) -> Self {
        InputError::Option {
            option,
            msg: msg.into(),
        }
    }
}

/// Why a space stopped before T: written one way in summary.json (`stopped`) and in the
/// error line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StopReason {
    /// The state at t was not finite (the row at t was written).
    #[error("non-finite state at t = {t}")]
    NonFinite { t: f64 },
    /// The solver gave up on the interval from t (step-size underflow, too many steps).
    #[error("solver failed: {0}")]
    SolverFailed(StepFailure),
}

impl StopReason {
    /// The reason of an integrator's stop; None when it completed.
    pub fn of(stop: &Stop) -> Option<StopReason> {
        match stop {
            Stop::Completed => None,
            Stop::Observer { t } => Some(StopReason::NonFinite { t: *t }),
            Stop::Failed(failure) => Some(StopReason::SolverFailed(*failure)),
        }
    }
}

/// The integration or the iteration failed.
#[derive(Debug, thiserror::Error)]
pub enum NumericsError {
    /// A space's solver stopped before T.
    #[error("{space} space: solver {solver} stopped: {reason}; rows up to there were written")]
    Stopped {
        space: &'static str,
        solver: &'static str,
        reason: StopReason,
    },
    /// The discrete twin's loss became non-finite.
    #[error("discrete {twin} with eta = {eta}: loss became non-finite at t = {t}; iterates up to there were written")]
    Diverged {
        twin: &'static str,
        eta: f64,
        t: f64,
    },
}

/// Writing results failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file or directory could not be written.
    #[error("{}: {msg}", path.display())]
    Io { path: PathBuf, msg: String },
    /// A figure could not be drawn.
    #[error("figure {}: {msg}", path.display())]
    Plot { path: PathBuf, msg: String },
}

/// Any error of ntkdyn; its Display is the one line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Input(#[from] InputError),
    #[error("{0}")]
    Numerics(#[from] NumericsError),
    #[error("{0}")]
    Output(#[from] OutputError),
}

/// Result alias of the library.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_is_one_line() {
        let errors: Vec<Error> = vec![
            InputError::Memory {
                n: 1,
                d: 2,
                m: 3,
                needed_bytes: 2e10,
                limit_bytes: 1.6e10,
                detail: "largest part the problem: 20 GB; lower --n, --m or --d".into(),
            }
            .into(),
            InputError::Dimension {
                option: "init",
                path: "a.csv".into(),
                found: 2,
                expected: 3,
            }
            .into(),
            NumericsError::Stopped {
                space: "weight",
                solver: "dopri5",
                reason: StopReason::SolverFailed(StepFailure::StepSizeTooSmall { t: 1.5 }),
            }
            .into(),
            NumericsError::Diverged {
                twin: "GD",
                eta: 10.0,
                t: 30.0,
            }
            .into(),
        ];
        for e in errors {
            let line = e.to_string();
            assert!(!line.contains('\n') && !line.is_empty(), "{line}");
        }
    }

    #[test]
    fn a_stop_reads_the_same_in_the_summary_and_in_the_error_line() {
        let reason = StopReason::of(&Stop::Observer { t: 2.5 }).unwrap();
        let line = NumericsError::Stopped {
            space: "error",
            solver: "rk4",
            reason: reason.clone(),
        }
        .to_string();
        assert!(line.contains(&reason.to_string()), "{line}");
        assert_eq!(StopReason::of(&Stop::Completed), None);
    }
}
