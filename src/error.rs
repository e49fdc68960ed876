//! Typed errors, one enum per layer (input, numerics, output), each printing one line.

use std::path::PathBuf;

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
    /// Inputs disagree with each other (e.g. dimensions of --data and --init).
    #[error("{0}")]
    Mismatch(String),
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

/// The integration or the iteration failed.
#[derive(Debug, thiserror::Error)]
pub enum NumericsError {
    /// The ODE solver gave up (step-size underflow, too many steps, stiffness).
    #[error("{space} space: solver {solver} stopped: {msg}")]
    Solver {
        space: &'static str,
        solver: &'static str,
        msg: String,
    },
}

/// Writing results failed.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{}: {msg}", path.display())]
    Io { path: PathBuf, msg: String },
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
