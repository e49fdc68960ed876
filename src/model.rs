//! The two-layer ReLU network of Du et al. (2018) and its data.
//!
//! ```text
//! f(W; x) = (1/sqrt m) sum_r a_r relu(w_r . x),   a_r in {+1, -1} fixed,  W (m x d) trained
//! u_i = f(W; x_i),  Delta = u - y,  L = 1/2 |Delta|^2
//! grad_{w_r} L = (1/sqrt m) a_r sum_i Delta_i 1[w_r . x_i >= 0] x_i
//! ```
//!
//! Everything is written as matrix products. The gradient, the hot path of every weight-space
//! run (two GEMMs, `Z^T = X W^T` and `G = P X`, about 4 n m d flops), lives in
//! [`crate::gradient`], blocked for the cache and spread over threads; here are the network's
//! definitions and what a snapshot needs (prediction, pattern, Gram matrix, J V).
//!
//! References:
//! 1. S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
//!    over-parameterized neural networks", ICLR 2019 (arXiv:1810.02054).

use nalgebra::{DMatrix, DMatrixView, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// Training points: `x` is n x d (one row per sample), `y` has n targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Data {
    pub x: DMatrix<f64>,
    pub y: DVector<f64>,
}

impl Data {
    /// Synthetic data of SPEC.md: x_i = g_i/|g_i| with g_i ~ N(0, I_d), y_i ~ N(0, 1).
    pub fn synthetic(n: usize, d: usize, seed: u64) -> Data {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut x = DMatrix::zeros(n, d);
        for i in 0..n {
            for j in 0..d {
                x[(i, j)] = rng.sample::<f64, _>(StandardNormal);
            }
            let norm = x.row(i).norm();
            x.row_mut(i).unscale_mut(norm);
        }
        let y = DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal));
        Data { x, y }
    }

    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }

    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// Largest deviation of |x_i| from 1 (the theory assumes points on the unit sphere).
    pub fn max_norm_deviation(&self) -> f64 {
        (0..self.n())
            .map(|i| (self.x.row(i).norm() - 1.0).abs())
            .fold(0.0, f64::max)
    }

    /// Project every x_i onto the unit sphere (`--normalize`).
    pub fn normalized(mut self) -> Data {
        for i in 0..self.n() {
            let norm = self.x.row(i).norm();
            if norm > 0.0 {
                self.x.row_mut(i).unscale_mut(norm);
            }
        }
        self
    }
}

/// Network parameters: output signs `a` (fixed) and first layer `w` (m x d, row r is w_r).
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub a: DVector<f64>,
    pub w: DMatrix<f64>,
}

impl Network {
    /// Initialization of SPEC.md: a_r uniform on {+1, -1}, w_r ~ N(0, I_d).
    ///
    /// Drawn from a stream separate from the data's, so that replacing the data with
    /// `--data` keeps the same initial weights for the same seed.
    pub fn init(m: usize, d: usize, seed: u64) -> Network {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
        let a = DVector::from_fn(m, |_, _| if rng.random::<bool>() { 1.0 } else { -1.0 });
        let w = DMatrix::from_fn(m, d, |_, _| rng.sample::<f64, _>(StandardNormal));
        Network { a, w }
    }

    /// Width m.
    pub fn m(&self) -> usize {
        self.w.nrows()
    }
}

/// The fitting problem: data, the fixed output layer and precomputed products of X.
#[derive(Clone, Debug)]
pub struct Model {
    /// The training points; products of X are precomputed by [`Model::new`], so build a new
    /// model rather than replace them.
    pub data: Data,
    pub a: DVector<f64>,
    /// X^T (d x n), kept so that W X^T is one GEMM without a transpose copy.
    xt: DMatrix<f64>,
    /// X X^T (n x n), the input Gram matrix.
    xx: DMatrix<f64>,
    /// X padded for the fused gradient kernels.
    pub(crate) packed: crate::fused::PackedX,
}

impl Model {
    pub fn new(data: Data, a: DVector<f64>) -> Model {
        let xt = data.x.transpose();
        let xx = &data.x * &xt;
        let packed = crate::fused::PackedX::new(&data.x);
        Model {
            data,
            a,
            xt,
            xx,
            packed,
        }
    }

    pub fn n(&self) -> usize {
        self.data.n()
    }
    pub fn d(&self) -> usize {
        self.data.d()
    }
    pub fn m(&self) -> usize {
        self.a.len()
    }
    /// X X^T.
    pub fn input_gram(&self) -> &DMatrix<f64> {
        &self.xx
    }

    /// View a flat column-major slice of length m*d as W (m x d).
    pub fn weights<'a>(&self, flat: &'a [f64]) -> DMatrixView<'a, f64> {
        DMatrixView::from_slice(flat, self.m(), self.d())
    }

    /// Z^T = W X^T (m x n), pre-activations w_r . x_i.
    pub fn preactivations(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        let mut zt = DMatrix::zeros(self.m(), self.n());
        zt.gemm(1.0, w, &self.xt, 0.0);
        zt
    }

    /// u = f(W; X) = (1/sqrt m) relu(W X^T)^T a.
    pub fn predict(&self, w: &DMatrixView<f64>) -> DVector<f64> {
        self.predict_from(&self.preactivations(w))
    }

    fn predict_from(&self, zt: &DMatrix<f64>) -> DVector<f64> {
        let scale = 1.0 / (self.m() as f64).sqrt();
        let a = self.a.as_slice();
        DVector::from_iterator(
            self.n(),
            zt.as_slice().chunks_exact(self.m()).map(|col| {
                scale
                    * col
                        .iter()
                        .zip(a)
                        .map(|(z, ar)| ar * z.max(0.0))
                        .sum::<f64>()
            }),
        )
    }

    /// Delta = u - y.
    pub fn residual(&self, w: &DMatrixView<f64>) -> DVector<f64> {
        self.predict(w) - &self.data.y
    }

    /// L = 1/2 |u - y|^2.
    pub fn loss(&self, w: &DMatrixView<f64>) -> f64 {
        0.5 * self.residual(w).norm_squared()
    }

    /// Activation pattern 1[w_r . x_i >= 0] as an m x n 0/1 matrix (ReLU'(0) = 1).
    pub fn pattern(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        let mut s = self.preactivations(w);
        s.apply(|z| *z = if *z >= 0.0 { 1.0 } else { 0.0 });
        s
    }

    /// Gram matrix H(W) = J J^T of SPEC.md:
    /// H_ij = (x_i . x_j)/m * #{r : w_r.x_i >= 0 and w_r.x_j >= 0}.
    pub fn gram(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        self.gram_of_pattern(&self.pattern(w))
    }

    /// H of an activation pattern S (m x n): (X X^T) o (S^T S) / m.
    pub fn gram_of_pattern(&self, s: &DMatrix<f64>) -> DMatrix<f64> {
        let (m, n) = (self.m(), self.n());
        assert_eq!(s.shape(), (m, n), "pattern of another shape");
        let mut h = DMatrix::zeros(n, n);
        // S^T S through matrixmultiply with S^T as strides: nalgebra's gemm_tr takes dot
        // products column by column, ten times slower at m = 1e5.
        // SAFETY: S is m x n column-major, read as S^T (n x m) with strides (m, 1); h is n x n.
        unsafe {
            crate::gradient::gemm(
                n,
                m,
                n,
                (s.as_ptr(), m as isize, 1),
                (s.as_ptr(), 1, m as isize),
                (h.as_mut_ptr(), 1, n as isize),
            );
        }
        h.component_mul_assign(&self.xx);
        h / m as f64
    }

    /// Jacobian-vector product Delta' = J V: (J V)_i = (1/sqrt m) sum_r a_r 1[w_r.x_i >= 0] v_r . x_i.
    pub fn jvp(&self, w: &DMatrixView<f64>, v: &DMatrixView<f64>) -> DVector<f64> {
        self.jvp_with_pattern(&self.pattern(w), v)
    }

    /// J V with the Jacobian of the activation pattern S (m x n).
    pub fn jvp_with_pattern(&self, s: &DMatrix<f64>, v: &DMatrixView<f64>) -> DVector<f64> {
        let mut vx = DMatrix::zeros(self.m(), self.n());
        vx.gemm(1.0, v, &self.xt, 0.0);
        vx.component_mul_assign(s);
        vx.tr_mul(&self.a) / (self.m() as f64).sqrt()
    }
}
