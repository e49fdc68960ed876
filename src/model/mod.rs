//! Models: what a state space needs of a network, as traits, and the two-layer network of
//! Du et al. (2018) as their one implementation ([`relu2`]): ReLU by default, or a smooth
//! activation of [`activation`] (erf, gelu, tanh, softplus, sigmoid), whose infinite-width
//! kernels that module computes (closed forms or Gauss-Hermite quadrature). A smooth
//! activation's flow does not switch: the [`Switching`] capability is the ReLU's alone
//! ([`Activation::switching`]), and its weight space is integrated as a plain ODE.
//!
//! ```text
//! u = f(W; X) (n outputs),  Delta = u - y,  L = 1/2 |Delta|^2
//! J = du/dW (n x md),  Delta' = J W',  grad_W L = J^T Delta,  H(W) = J J^T
//! Hinf = lim_{m -> inf} E H(W0)                                  (the neural tangent kernel)
//! ```
//! [`Network`] is the model seen from the dynamics: prediction, residual, J V, J^T beta and the
//! Gram matrix H. [`InfiniteWidth`] adds the kernel of the infinite-width limit. [`Switching`]
//! is the optional capability of a piecewise-linear network: activation patterns that can be
//! held over a step, so that u is linear in W there and the flow smooth between switches.
//!
//! References:
//! 1. S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
//!    over-parameterized neural networks", ICLR 2019 (arXiv:1810.02054).
//! 2. A. Jacot, F. Gabriel, C. Hongler, "Neural tangent kernel", NeurIPS 2018.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod activation;
mod data;
pub mod relu2;
pub mod train;

pub use activation::Activation;
pub use data::{Data, ZeroRow, PARALLEL_TOLERANCE};
pub use relu2::{InitialNetwork, Model};
pub use train::Train;

use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector};

/// A model of n outputs u(W) with trainable parameters W (a matrix) fitted to targets y.
pub trait Network {
    /// Number of samples n.
    fn samples(&self) -> usize;
    /// The shape of the trainable parameters W.
    fn parameter_shape(&self) -> (usize, usize);
    /// The targets y (n).
    fn targets(&self) -> &DVector<f64>;
    /// u = f(W; X).
    fn predict(&self, w: &DMatrixView<f64>) -> DVector<f64>;
    /// Delta = u - y.
    fn residual(&self, w: &DMatrixView<f64>) -> DVector<f64> {
        self.predict(w) - self.targets()
    }
    /// J V: the outputs' velocity for a direction V of the parameters.
    fn jvp(&self, w: &DMatrixView<f64>, v: &DMatrixView<f64>) -> DVector<f64>;
    /// J^T beta: the parameters' direction of a weighting beta (n) of the outputs; with
    /// beta = Delta it is grad_W L.
    fn vjp(&self, w: &DMatrixView<f64>, beta: &DVector<f64>) -> DMatrix<f64>;
    /// H(W) = J J^T (n x n).
    fn gram(&self, w: &DMatrixView<f64>) -> DMatrix<f64>;
}

/// A network with an infinite-width limit: H(W0) tends to a fixed kernel as the width grows.
pub trait InfiniteWidth: Network {
    /// Hinf (n x n) of the training inputs.
    fn infinite_width_kernel(&self) -> DMatrix<f64>;
}

/// A piecewise-linear network whose activation pattern can be held: with S fixed, u is linear
/// in W, J_S does not depend on W, and a step of the flow is smooth.
pub trait Switching: Network {
    /// A held activation pattern.
    type Pattern;
    /// Preallocated scratch of the held products.
    type Workspace;
    /// Scratch for evaluations of this network.
    fn workspace(&self) -> Self::Workspace;
    /// The pattern of the network at W.
    fn pattern_at(&self, w: &DMatrixView<f64>, ws: &mut Self::Workspace) -> Self::Pattern;
    /// grad_W L = J_S^T Delta into `g`, with S held (or the network's own pattern at W when
    /// `held` is None); returns Delta.
    fn gradient_held(
        &self,
        w: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Self::Workspace,
        held: Option<&Self::Pattern>,
    ) -> DVector<f64>;
    /// J_S V into `out` (n).
    fn jvp_held(
        &self,
        v: &DMatrixView<f64>,
        ws: &mut Self::Workspace,
        held: &Self::Pattern,
        out: &mut [f64],
    );
    /// J_S^T beta into `g`.
    fn vjp_held(
        &self,
        beta: &[f64],
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Self::Workspace,
        held: &Self::Pattern,
    );
}
