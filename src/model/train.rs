//! Which layers are trained (`--train`): the first layer W alone (`w`, Du et al.'s setting,
//! the output layer fixed at a_r = +-1) or both layers (`wa`).
//!
//! ```text
//! f(W, a; x) = (1/sqrt m) sum_r a_r sigma(w_r . x)
//! w : parameters W (m x d);                  H_ij = (x_i.x_j)/m sum_r a_r^2 sigma'(w_r.x_i) sigma'(w_r.x_j)
//! wa: parameters (W, a), the m x (d+1)       H_ij gains (1/m) sum_r sigma(w_r.x_i) sigma(w_r.x_j)
//!     matrix [W | a] (a its last column)     Hinf_ij gains E[sigma(u) sigma(v)]
//! grad_a L = (1/sqrt m) sum_i Delta_i sigma(w_r . x_i)
//! ```
//! The state of a trained output layer is one more column of the parameter matrix, not a
//! second object: every consumer of the parameters (the weight space's flat state, the
//! discrete twins' iterates, the drift probes, the held-out predictions) already carries one
//! matrix through the [`crate::model::Network`] trait, so (W, a) rides along unchanged, and
//! the model alone splits the column off. A `Params` struct would have had to be threaded
//! through the integrators, the twins and the probes, each of which today sees a slice or a
//! matrix.

use serde::{Deserialize, Serialize};

/// The trained layers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Train {
    /// The first layer only: a_r = +-1 fixed (Du et al. 2018).
    #[default]
    W,
    /// Both layers: a trained too, any real a_r.
    Wa,
}

impl Train {
    /// Both trainings, in the order of `--train`'s help.
    pub const ALL: [Train; 2] = [Train::W, Train::Wa];

    /// The name on the command line and in summary.json.
    pub fn name(self) -> &'static str {
        match self {
            Train::W => "w",
            Train::Wa => "wa",
        }
    }

    /// The training of a name, if any.
    pub fn from_name(s: &str) -> Option<Train> {
        Train::ALL.into_iter().find(|t| t.name() == s)
    }

    /// Whether the output layer a is trained (a column of the parameters).
    pub fn output_layer(self) -> bool {
        self == Train::Wa
    }

    /// Columns of the parameter matrix for inputs of dimension d: d, or d + 1 with a.
    pub fn columns(self, d: usize) -> usize {
        d + usize::from(self.output_layer())
    }
}
