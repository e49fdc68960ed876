//! The infinite-width kernel of the two-layer ReLU network: the arc-cosine kernel of degree 0
//! times the input inner product (the NTK of the first layer).
//!
//! ```text
//! Hinf_ij = E_{w ~ N(0,I)} [ x_i.x_j 1[w.x_i >= 0, w.x_j >= 0] ]
//!         = x_i.x_j (pi - arccos(cos theta_ij)) / (2 pi),   cos theta_ij = x_i.x_j / (|x_i||x_j|)
//! lambda0 = lambda_min(Hinf)
//! ```
//! On the unit sphere this is SPEC.md's formula; off the sphere the angle keeps it the exact
//! expectation that H(W0) estimates.
//!
//! References:
//! 1. S. S. Du et al., "Gradient descent provably optimizes over-parameterized neural networks", 2019.
//! 2. Y. Cho, L. K. Saul, "Kernel methods for deep learning", NIPS 2009 (arc-cosine kernels).

use nalgebra::DMatrix;
use std::f64::consts::PI;

use crate::model::{Activation, Data};

/// The cross kernel K(x, X) of Hinf between `test` (rows) and `train` (columns):
/// x_k.x_i (pi - arccos(cos theta_ki)) / (2 pi).
pub fn cross(test: &Data, train: &Data) -> DMatrix<f64> {
    DMatrix::from_fn(test.n(), train.n(), |k, i| {
        let (a, b) = (test.x.row(k), train.x.row(i));
        let dot = a.dot(&b);
        let norms = a.norm() * b.norm();
        if norms == 0.0 {
            return 0.0;
        }
        dot * (PI - (dot / norms).clamp(-1.0, 1.0).acos()) / (2.0 * PI)
    })
}

/// The infinite-width kernel Hinf of the data.
pub fn hinf(data: &Data) -> DMatrix<f64> {
    let xx = &data.x * data.x.transpose();
    let n = data.n();
    DMatrix::from_fn(n, n, |i, j| {
        let norms = (xx[(i, i)] * xx[(j, j)]).sqrt();
        if norms == 0.0 {
            return 0.0;
        }
        let cos = (xx[(i, j)] / norms).clamp(-1.0, 1.0);
        xx[(i, j)] * (PI - cos.acos()) / (2.0 * PI)
    })
}

/// The second layer's infinite-width kernel of the ReLU (`--train wa`) from the input Gram
/// matrix X X^T: E[relu(u) relu(v)], the arc-cosine kernel of order 1,
/// |x_i||x_j| (sin theta + (pi - theta) cos theta) / (2 pi) ([`Activation::dual`]).
pub fn second_layer(xx: &DMatrix<f64>) -> DMatrix<f64> {
    let n = xx.nrows();
    DMatrix::from_fn(n, n, |i, j| {
        Activation::Relu.dual(xx[(i, i)], xx[(j, j)], xx[(i, j)])
    })
}

/// [`second_layer`] between two sets of inputs, from their inner products `xy` and squared
/// norms `left` (rows) and `right` (columns).
pub fn second_layer_cross(xy: &DMatrix<f64>, left: &[f64], right: &[f64]) -> DMatrix<f64> {
    DMatrix::from_fn(xy.nrows(), xy.ncols(), |k, i| {
        Activation::Relu.dual(left[k], right[i], xy[(k, i)])
    })
}
