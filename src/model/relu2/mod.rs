//! The two-layer ReLU network of Du et al. (2018): the [`Network`], [`InfiniteWidth`] and
//! [`Switching`] model of this crate.
//!
//! ```text
//! f(W; x) = (1/sqrt m) sum_r a_r relu(w_r . x),   a_r in {+1, -1} fixed,  W (m x d) trained
//! u_i = f(W; x_i),  Delta = u - y,  L = 1/2 |Delta|^2
//! grad_{w_r} L = (1/sqrt m) a_r sum_i Delta_i 1[w_r . x_i >= 0] x_i
//! ```
//!
//! Everything is written as matrix products. The gradient, the hot path of every weight-space
//! run (two GEMMs, `Z^T = X W^T` and `G = P X`, about 4 n m d flops), lives in
//! [`engine`], blocked for the cache and spread over threads (its block kernels in `kernels`,
//! the AVX2 ones in `crate::simd`); [`pattern`] holds the activation patterns a step holds,
//! [`arccos`] the infinite-width kernel; here are the network's definitions and what a
//! snapshot needs (prediction, pattern, Gram matrix, J V).
//!
//! With a trained output layer (`--train wa`, [`Train`]) the parameters are the m x (d+1)
//! matrix [W | a] ([`crate::model::train`] says why one more column and not a second object):
//! every method taking parameters reads a from their last column, the gradient is
//! `trained`'s, and H and Hinf gain the second layer's kernel (1/m) sigma(Z)^T sigma(Z) and
//! E[sigma(u) sigma(v)].
//!
//! References:
//! 1. S. S. Du, X. Zhai, B. Poczos, A. Singh, "Gradient descent provably optimizes
//!    over-parameterized neural networks", ICLR 2019 (arXiv:1810.02054).

pub mod arccos;
pub mod engine;
mod kernels;
pub mod pattern;
mod smooth;
mod trained;

use super::{Activation, Data, InfiniteWidth, Network, Switching, Train};
use engine::Workspace;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector};
use pattern::Pattern;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rand_distr::StandardNormal;

/// Initial parameters of the network: output signs `a` (fixed) and first layer `w` (m x d,
/// row r is w_r), as drawn by [`InitialNetwork::init`] or read by `--init`.
#[derive(Clone, Debug, PartialEq)]
pub struct InitialNetwork {
    pub a: DVector<f64>,
    pub w: DMatrix<f64>,
}

impl InitialNetwork {
    /// Initialization of SPEC.md: a_r uniform on {+1, -1}, w_r ~ N(0, I_d).
    ///
    /// Drawn from a stream separate from the data's, so that replacing the data with
    /// `--data` keeps the same initial weights for the same seed.
    pub fn init(m: usize, d: usize, seed: u64) -> InitialNetwork {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
        let a = DVector::from_fn(m, |_, _| if rng.random::<bool>() { 1.0 } else { -1.0 });
        let w = DMatrix::from_fn(m, d, |_, _| rng.sample::<f64, _>(StandardNormal));
        InitialNetwork { a, w }
    }

    /// Width m.
    pub fn m(&self) -> usize {
        self.w.nrows()
    }
}

/// The fitting problem: data, the fixed output layer and precomputed products of X.
///
/// ```compile_fail
/// # use ntkdyn::model::{Data, Model};
/// let mut model = Model::new(Data::synthetic(4, 2, 1), nalgebra::DVector::from_element(3, 1.0));
/// model.data = Data::synthetic(4, 2, 2); // the data cannot be swapped under the packed X
/// ```
///
/// The fields are private: X^T, X X^T and the fused kernels' packed copy of X are made from
/// `data` by [`Model::new`] alone, so no other data of the same shape can meet them (a
/// replaced `data` once gave the fused gradient an error of 5.3 at |G| = 4.4 while the GEMM
/// path, which reads `data`, was right).
#[derive(Clone, Debug)]
pub struct Model {
    data: Data,
    /// Output signs a_r (m).
    a: DVector<f64>,
    /// X^T (d x n), kept so that W X^T is one GEMM without a transpose copy.
    xt: DMatrix<f64>,
    /// X X^T (n x n), the input Gram matrix.
    xx: DMatrix<f64>,
    /// X padded for the fused gradient kernels.
    packed: crate::simd::PackedX,
    /// The hidden layer's activation (relu unless [`Model::with_activation`]).
    activation: Activation,
    /// The trained layers: with [`Train::Wa`] the parameters are [W | a] and `a` above is
    /// only a0.
    train: Train,
}

impl Model {
    pub fn new(data: Data, a: DVector<f64>) -> Model {
        let xt = data.x.transpose();
        let xx = &data.x * &xt;
        let packed = crate::simd::PackedX::new(&data.x);
        Model {
            data,
            a,
            xt,
            xx,
            packed,
            activation: Activation::Relu,
            train: Train::W,
        }
    }

    /// The network with activation `sigma` and the layers `train` trained (parameters
    /// [W | a] with [`Train::Wa`]; `a` is then a0, what [`Model::parameters`] appends).
    pub fn with_training(data: Data, a: DVector<f64>, sigma: Activation, train: Train) -> Model {
        Model {
            train,
            ..Model::with_activation(data, a, sigma)
        }
    }

    /// The trained layers.
    pub fn train(&self) -> Train {
        self.train
    }

    /// Columns of the parameter matrix: d, or d + 1 with a trained output layer.
    pub fn columns(&self) -> usize {
        self.train.columns(self.d())
    }

    /// The parameter matrix of first layer `w` (m x d) and the output layer a of the model:
    /// W itself, or [W | a] with a trained output layer.
    pub fn parameters(&self, w: &DMatrix<f64>) -> DMatrix<f64> {
        if !self.train.output_layer() {
            return w.clone();
        }
        let (m, d) = w.shape();
        DMatrix::from_fn(m, d + 1, |r, k| if k < d { w[(r, k)] } else { self.a[r] })
    }

    /// The output weights of parameters `p`: their last column with a trained output layer,
    /// else the model's fixed a.
    pub fn output_weights(&self, p: &DMatrixView<f64>) -> DVector<f64> {
        if self.train.output_layer() {
            p.column(self.d()).clone_owned()
        } else {
            self.a.clone()
        }
    }

    /// The network with activation `sigma` in place of the ReLU.
    pub fn with_activation(data: Data, a: DVector<f64>, sigma: Activation) -> Model {
        Model {
            activation: sigma,
            ..Model::new(data, a)
        }
    }

    /// The same network (activation, output weights) on other inputs: held-out points.
    pub fn on_data(&self, data: Data) -> Model {
        Model::with_training(data, self.a.clone(), self.activation, self.train)
    }

    /// The hidden layer's activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The training points.
    pub fn data(&self) -> &Data {
        &self.data
    }
    /// The output signs a (m).
    pub fn a(&self) -> &DVector<f64> {
        &self.a
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

    /// View a flat column-major slice of length m*d (m*(d+1) with a trained output layer) as
    /// the parameters W (m x d) or [W | a].
    pub fn weights<'a>(&self, flat: &'a [f64]) -> DMatrixView<'a, f64> {
        DMatrixView::from_slice(flat, self.m(), self.columns())
    }

    /// Z^T = W X^T (m x n), pre-activations w_r . x_i (of the first d columns of [W | a]).
    pub fn preactivations(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        let mut zt = DMatrix::zeros(self.m(), self.n());
        if self.train.output_layer() {
            zt.gemm(1.0, &w.columns(0, self.d()), &self.xt, 0.0);
        } else {
            zt.gemm(1.0, w, &self.xt, 0.0);
        }
        zt
    }

    /// u = f(W; X) = (1/sqrt m) relu(W X^T)^T a.
    pub fn predict(&self, w: &DMatrixView<f64>) -> DVector<f64> {
        if self.train.output_layer() {
            let a = self.output_weights(w);
            return self.predict_with(&self.preactivations(w), a.as_slice());
        }
        self.predict_from(&self.preactivations(w))
    }

    /// u from the pre-activations Z^T = W X^T ([`Model::preactivations`]).
    pub fn predict_from(&self, zt: &DMatrix<f64>) -> DVector<f64> {
        self.predict_with(zt, self.a.as_slice())
    }

    /// u from the pre-activations Z^T = W X^T of a smooth activation, which become the slopes
    /// sigma'(Z^T) (m x n, [`Model::slopes`]): u and the slopes bit for bit those of
    /// [`Model::predict_from`] and [`Activation::slopes_in_place`], in one pass of
    /// [`Activation::values_and_slopes`] per sample through two buffers of m.
    pub fn predict_to_slopes(&self, zt: &mut DMatrix<f64>) -> DVector<f64> {
        let m = self.m();
        let scale = 1.0 / (m as f64).sqrt();
        let sigma = self.activation;
        let (mut z, mut v) = (vec![0.0; m], vec![0.0; m]);
        let a = self.a.as_slice();
        DVector::from_iterator(
            self.n(),
            zt.as_mut_slice().chunks_exact_mut(m).map(|col| {
                z.copy_from_slice(col);
                sigma.values_and_slopes(&z, &mut v, col);
                scale * v.iter().zip(a).map(|(v, ar)| ar * v).sum::<f64>()
            }),
        )
    }

    fn predict_with(&self, zt: &DMatrix<f64>, a: &[f64]) -> DVector<f64> {
        let scale = 1.0 / (self.m() as f64).sqrt();
        if self.activation != Activation::Relu {
            let sigma = self.activation;
            let mut v = vec![0.0; self.m()];
            return DVector::from_iterator(
                self.n(),
                zt.as_slice().chunks_exact(self.m()).map(|col| {
                    v.copy_from_slice(col);
                    sigma.values_in_place(&mut v);
                    scale * v.iter().zip(a).map(|(v, ar)| ar * v).sum::<f64>()
                }),
            );
        }
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

    /// The slopes sigma'(w_r . x_i) (m x n): the activation pattern for the ReLU (bit for bit
    /// [`Model::pattern`]), a smooth activation's derivative otherwise. J, J^T and H are those
    /// of the pattern S = slopes.
    pub fn slopes(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        if self.activation == Activation::Relu {
            return self.pattern(w);
        }
        let sigma = self.activation;
        let mut s = self.preactivations(w);
        sigma.slopes_in_place(s.as_mut_slice());
        s
    }

    /// Gram matrix H(W) = J J^T of SPEC.md:
    /// H_ij = (x_i . x_j)/m * sum_r sigma'(w_r.x_i) sigma'(w_r.x_j) (a_r^2 = 1); for the ReLU
    /// (x_i . x_j)/m * #{r : w_r.x_i >= 0 and w_r.x_j >= 0}.
    pub fn gram(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        if self.train.output_layer() {
            return self.trained_gram(w);
        }
        self.gram_of_pattern(&self.slopes(w))
    }

    /// H(W, a) of a trained output layer: (X X^T) o (S_a^T S_a)/m with S_a = diag(a) sigma'(Z),
    /// plus the second layer's (1/m) sigma(Z)^T sigma(Z).
    fn trained_gram(&self, p: &DMatrixView<f64>) -> DMatrix<f64> {
        let a = self.output_weights(p);
        let mut s = self.slopes(p);
        for mut col in s.column_iter_mut() {
            col.component_mul_assign(&a);
        }
        self.gram_of_pattern(&s) + self.second_layer_gram(p)
    }

    /// sigma(Z) (m x n): the hidden layer's outputs sigma(w_r . x_i).
    pub fn hidden(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        let sigma = self.activation;
        let mut v = self.preactivations(w);
        sigma.values_in_place(v.as_mut_slice());
        v
    }

    /// The second layer's kernel (1/m) sigma(Z)^T sigma(Z) (n x n): J_a J_a^T.
    pub fn second_layer_gram(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        let v = self.hidden(w);
        crate::linalg::matmul_tr(&v, &v) / self.m() as f64
    }

    /// H of an activation pattern S (m x n): (X X^T) o (S^T S) / m.
    pub fn gram_of_pattern(&self, s: &DMatrix<f64>) -> DMatrix<f64> {
        let (m, n) = (self.m(), self.n());
        assert_eq!(s.shape(), (m, n), "pattern of another shape");
        // A 0/1 pattern (the ReLU's): its counts on the bits, the same exact integers as the
        // product's at 1/64 of the operations (crate::simd::bits).
        if let Some(mut h) = crate::simd::bits::zero_one_counts(s) {
            h.component_mul_assign(&self.xx);
            return h / m as f64;
        }
        let mut h = DMatrix::zeros(n, n);
        // S^T S through matrixmultiply with S^T as strides: nalgebra's gemm_tr takes dot
        // products column by column, ten times slower at m = 1e5.
        // SAFETY: S is m x n column-major, read as S^T (n x m) with strides (m, 1); h is n x n.
        unsafe {
            kernels::gemm(
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
        if self.train.output_layer() {
            // J_W V_W with the current a, plus J_a v_a = (1/sqrt m) sigma(Z)^T v_a.
            let d = self.d();
            let a = self.output_weights(w);
            let mut vx = DMatrix::zeros(self.m(), self.n());
            vx.gemm(1.0, &v.columns(0, d), &self.xt, 0.0);
            vx.component_mul_assign(&self.slopes(w));
            let first = vx.tr_mul(&a);
            let second = self.hidden(w).tr_mul(&v.column(d));
            return (first + second) / (self.m() as f64).sqrt();
        }
        self.jvp_with_pattern(&self.slopes(w), v)
    }

    /// J V with the Jacobian of the activation pattern S (m x n).
    pub fn jvp_with_pattern(&self, s: &DMatrix<f64>, v: &DMatrixView<f64>) -> DVector<f64> {
        let mut vx = DMatrix::zeros(self.m(), self.n());
        vx.gemm(1.0, v, &self.xt, 0.0);
        vx.component_mul_assign(s);
        vx.tr_mul(&self.a) / (self.m() as f64).sqrt()
    }
}

impl Model {
    /// J^T beta (m x d) with the ReLU's own pattern at W: row r is
    /// (1/sqrt m) a_r sum_i 1[w_r.x_i >= 0] beta_i x_i (with beta = Delta, grad_W L).
    pub fn vjp(&self, w: &DMatrixView<f64>, beta: &DVector<f64>) -> DMatrix<f64> {
        assert_eq!(beta.len(), self.n(), "beta of another length");
        let scale = 1.0 / (self.m() as f64).sqrt();
        let a = self.output_weights(w);
        let mut p = self.slopes(w);
        for (i, mut col) in p.column_iter_mut().enumerate() {
            col.iter_mut()
                .zip(a.iter())
                .for_each(|(s, ar)| *s *= ar * beta[i] * scale);
        }
        let gw = p * &self.data.x;
        if !self.train.output_layer() {
            return gw;
        }
        // [J_W^T beta | (1/sqrt m) sigma(Z) beta].
        let ga = self.hidden(w) * beta * scale;
        let (m, d) = (self.m(), self.d());
        DMatrix::from_fn(m, d + 1, |r, k| if k < d { gw[(r, k)] } else { ga[r] })
    }

    /// The cross kernel K(x, X) of H at parameters `p` between other inputs `test` (rows) and
    /// the training inputs (columns): (x_k.x_i)/m sum_r a_r^2 sigma'(z_rk) sigma'(z_ri), plus
    /// (1/m) sum_r sigma(z_rk) sigma(z_ri) with a trained output layer.
    pub fn cross_gram(&self, p: &DMatrixView<f64>, test: &Data) -> DMatrix<f64> {
        let test_model = self.on_data(test.clone());
        let a = self.output_weights(p);
        let mut s_test = test_model.slopes(p);
        let s_train = self.slopes(p);
        for mut col in s_test.column_iter_mut() {
            col.component_mul_assign(&a);
            col.component_mul_assign(&a);
        }
        let mut k = DMatrix::zeros(test.n(), self.n());
        k.gemm_tr(1.0 / self.m() as f64, &s_test, &s_train, 0.0);
        let mut k = k.component_mul(&(&test.x * &self.xt));
        if self.train.output_layer() {
            let (v_test, v_train) = (test_model.hidden(p), self.hidden(p));
            k.gemm_tr(1.0 / self.m() as f64, &v_test, &v_train, 1.0);
        }
        k
    }
}

impl Network for Model {
    fn samples(&self) -> usize {
        self.n()
    }
    fn parameter_shape(&self) -> (usize, usize) {
        (self.m(), self.columns())
    }
    fn targets(&self) -> &DVector<f64> {
        &self.data.y
    }
    fn predict(&self, w: &DMatrixView<f64>) -> DVector<f64> {
        Model::predict(self, w)
    }
    fn residual(&self, w: &DMatrixView<f64>) -> DVector<f64> {
        Model::residual(self, w)
    }
    fn jvp(&self, w: &DMatrixView<f64>, v: &DMatrixView<f64>) -> DVector<f64> {
        Model::jvp(self, w, v)
    }
    fn vjp(&self, w: &DMatrixView<f64>, beta: &DVector<f64>) -> DMatrix<f64> {
        Model::vjp(self, w, beta)
    }
    fn gram(&self, w: &DMatrixView<f64>) -> DMatrix<f64> {
        Model::gram(self, w)
    }
}

impl InfiniteWidth for Model {
    /// The arc-cosine kernel of the data ([`arccos::hinf`]) for the ReLU, else
    /// [`crate::model::activation::infinite_width_kernel`].
    fn infinite_width_kernel(&self) -> DMatrix<f64> {
        let second = self.train.output_layer();
        match self.activation {
            Activation::Relu if second => arccos::hinf(&self.data) + arccos::second_layer(&self.xx),
            Activation::Relu => arccos::hinf(&self.data),
            sigma => crate::model::activation::infinite_width_kernel(sigma, &self.xx, second),
        }
    }
}

impl Model {
    /// The cross kernel K(x, X) of Hinf between other inputs `test` (rows) and the training
    /// inputs (columns): [`arccos::cross`] for the ReLU, else
    /// [`crate::model::activation::cross_kernel`].
    pub fn infinite_width_cross_kernel(&self, test: &Data) -> DMatrix<f64> {
        let second = self.train.output_layer();
        let xy = || &test.x * &self.xt;
        let left = || -> Vec<f64> { test.x.row_iter().map(|r| r.norm_squared()).collect() };
        let right = || -> Vec<f64> { self.xx.diagonal().iter().copied().collect() };
        match self.activation {
            Activation::Relu if second => {
                arccos::cross(test, &self.data)
                    + arccos::second_layer_cross(&xy(), &left(), &right())
            }
            Activation::Relu => arccos::cross(test, &self.data),
            sigma => {
                crate::model::activation::cross_kernel(sigma, &xy(), &left(), &right(), second)
            }
        }
    }
}

impl Switching for Model {
    type Pattern = Pattern;
    type Workspace = Workspace;
    fn workspace(&self) -> Workspace {
        Workspace::new(self.m(), self.n(), self.d())
    }
    fn pattern_at(&self, w: &DMatrixView<f64>, ws: &mut Workspace) -> Pattern {
        Pattern::of(self, w, ws)
    }
    fn gradient_held(
        &self,
        w: &DMatrixView<f64>,
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: Option<&Pattern>,
    ) -> DVector<f64> {
        self.gradient_with_pattern(w, g, ws, held)
    }
    fn jvp_held(&self, v: &DMatrixView<f64>, ws: &mut Workspace, held: &Pattern, out: &mut [f64]) {
        Model::jvp_held(self, v, ws, held, out)
    }
    fn vjp_held(
        &self,
        beta: &[f64],
        g: &mut DMatrixViewMut<f64>,
        ws: &mut Workspace,
        held: &Pattern,
    ) {
        Model::vjp_held(self, beta, g, ws, held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(n: usize, d: usize, m: usize, seed: u64) -> (Model, DMatrix<f64>) {
        let net = InitialNetwork::init(m, d, seed);
        (Model::new(Data::synthetic(n, d, seed), net.a), net.w)
    }

    fn direction(m: usize, d: usize, salt: usize) -> DMatrix<f64> {
        DMatrix::from_fn(m, d, |r, k| {
            ((r * 13 + k * 7 + salt) % 17) as f64 / 17.0 - 0.5
        })
    }

    /// Smallest |w_r . x_i|: how far W is from a kink of the ReLU.
    fn kink_distance(model: &Model, w: &DMatrix<f64>) -> f64 {
        model.preactivations(&w.as_view()).amin()
    }

    /// A workspace with full sign passes and one through the sign cache (rechecking rows'
    /// nearest samples with `near`), and the pattern of `w0` to look for changes from.
    fn full_and_cached(
        model: &Model,
        w0: &DMatrix<f64>,
        near: bool,
    ) -> (Workspace, Workspace, Pattern) {
        let (m, n, d) = (model.m(), model.n(), model.d());
        let mut full = Workspace::new(m, n, d);
        let mut cached = Workspace::new(m, n, d);
        cached.cache_signs(near);
        let pattern = Pattern::of(model, &w0.as_view(), &mut full);
        (full, cached, pattern)
    }

    /// The sign cache (Workspace::cache_signs) gives the full pass's signs and changes bit for
    /// bit along a path of nearby W (small steps, a jump, a non-finite entry, a zero sample),
    /// and skips rows.
    #[test]
    fn cached_sign_passes_are_the_full_passes() {
        // Rows past their first margin passed over (the momentum flows) or rechecked on
        // their nearest samples (gradient flow).
        cached_sign_passes_along_a_path(false);
        cached_sign_passes_along_a_path(true);
    }

    fn cached_sign_passes_along_a_path(near: bool) {
        let (n, d, m) = (30, 5, 64);
        let net = InitialNetwork::init(m, d, 3);
        let mut data = Data::synthetic(n, d, 3);
        data.x.row_mut(7).fill(0.0);
        let model = Model::new(data, net.a);
        let w0 = net.w;
        let dir = direction(m, d, 2);
        let (mut full, mut cached, pattern) = full_and_cached(&model, &w0, near);
        // The cache in three lanes: each copies and compares its own rows.
        let mut lanes = Workspace::with_lanes(m, n, 3);
        lanes.cache_signs(near);
        let (mut s_full, mut s_cached, mut s_lanes) = (Vec::new(), Vec::new(), Vec::new());
        let (mut c_full, mut c_cached, mut c_lanes) = (Vec::new(), Vec::new(), Vec::new());
        let mut t = 0.0;
        // Out along the path, then back over its last steps: rows that moved past their
        // nearest samples and return keep the full pass's signs.
        for step in 0..90 {
            let dt = if step == 30 {
                0.5
            } else {
                1e-3 * (1 + step % 4) as f64
            };
            t += if step < 60 { dt } else { -dt };
            let mut w = &w0 + &dir * t;
            if step == 40 {
                w[(5, 2)] = f64::NAN;
            }
            if step == 41 {
                w[(9, 0)] = f64::INFINITY;
            }
            pattern.changes(&model, &w.as_view(), &mut s_full, &mut c_full, &mut full);
            pattern.changes(
                &model,
                &w.as_view(),
                &mut s_cached,
                &mut c_cached,
                &mut cached,
            );
            pattern.changes(&model, &w.as_view(), &mut s_lanes, &mut c_lanes, &mut lanes);
            assert_eq!(s_full, s_cached, "signs at step {step}");
            assert_eq!(c_full, c_cached, "changes at step {step}");
            assert_eq!(s_full, s_lanes, "signs in lanes at step {step}");
            assert_eq!(c_full, c_lanes, "changes in lanes at step {step}");
        }
        assert_eq!(lanes.lanes.len(), 3, "three lanes");
        assert!(!c_full.is_empty(), "the path crosses kinks");
        if let Some((passed, checked)) = cached.sign_cache_counts() {
            assert_eq!(checked, 90 * m as u64);
            assert!(
                passed < checked / 2,
                "{passed} of {checked} rows passed over"
            );
        }
    }

    /// Through the sign cache, rows that sit on a surface z_ri = 0 (projected onto it, as
    /// gradient flow's sliding rows are, so their sign there is rounding) keep the full
    /// pass's signs and changes bit for bit and are not passed over again: the entry on the
    /// surface is among the row's nearest samples, computed again alone.
    #[test]
    fn rows_on_a_surface_are_kept_with_the_full_pass_signs() {
        let (n, d, m) = (30, 5, 64);
        let net = InitialNetwork::init(m, d, 4);
        let model = Model::new(Data::synthetic(n, d, 4), net.a);
        let x = model.data().x.clone();
        // w_r (or a direction) projected off x_i.
        let onto = |w: &mut DMatrix<f64>, r: usize, i: usize| {
            let xi = x.row(i).transpose();
            let c = w.row(r).transpose().dot(&xi) / xi.norm_squared();
            for k in 0..d {
                w[(r, k)] -= c * xi[k];
            }
        };
        let surfaces = [(3, 2), (40, 2), (40, 9)];
        let (mut w0, mut dir) = (net.w, direction(m, d, 5));
        for _ in 0..3 {
            for &(r, i) in &surfaces {
                onto(&mut w0, r, i);
                onto(&mut dir, r, i);
            }
        }
        let (mut full, mut cached, pattern) = full_and_cached(&model, &w0, true);
        let (mut s_full, mut s_cached) = (Vec::new(), Vec::new());
        let (mut c_full, mut c_cached) = (Vec::new(), Vec::new());
        let mut rounding = 0;
        for step in 0..40 {
            let mut w = &w0 + &dir * (1e-4 * step as f64);
            for &(r, i) in &surfaces {
                onto(&mut w, r, i);
            }
            pattern.changes(&model, &w.as_view(), &mut s_full, &mut c_full, &mut full);
            let view = w.as_view();
            pattern.changes(&model, &view, &mut s_cached, &mut c_cached, &mut cached);
            assert_eq!(s_full, s_cached, "signs at step {step}");
            assert_eq!(c_full, c_cached, "changes at step {step}");
            rounding += c_full.iter().filter(|e| surfaces.contains(e)).count();
        }
        assert!(rounding > 0, "no sign on a surface changed by rounding");
        if let Some((passed, checked)) = cached.sign_cache_counts() {
            assert_eq!(checked, 40 * m as u64);
            // The first pass, and few others.
            assert!(
                passed < m as u64 + 10,
                "{passed} of {checked} rows passed over"
            );
        }
    }

    /// The sign cache's nearest samples of a row are those of a sort by |z_i| scale_i (zero
    /// scales skipped), and its margin the next one's; NaN is reported.
    #[test]
    fn nearest_samples_are_the_sorts() {
        use engine::{nearest_samples, NEAR};
        for len in [0usize, 3, 8, 9, 17, 100, 1000] {
            let z: Vec<f64> = (0..len).map(|k| (k as f64 * 0.61).sin() * 3.0).collect();
            let scale: Vec<f64> = (0..len)
                .map(|k| {
                    if k % 7 == 3 {
                        0.0
                    } else {
                        1.0 + (k % 5) as f64 * 0.1
                    }
                })
                .collect();
            let mut sorted: Vec<(f64, usize)> = (0..len)
                .filter(|&k| scale[k] > 0.0)
                .map(|k| (z[k].abs() * scale[k], k))
                .collect();
            sorted.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
            let mut near = [0u32; NEAR];
            let (first, margin, nan) = nearest_samples(&z, &scale, &mut near);
            assert!(!nan);
            assert_eq!(
                first,
                sorted.first().map_or(f64::INFINITY, |e| e.0),
                "len {len}"
            );
            let want: Vec<u32> = (0..NEAR)
                .map(|q| sorted.get(q).map_or(u32::MAX, |e| e.1 as u32))
                .collect();
            assert_eq!(near.to_vec(), want, "len {len}");
            let next = sorted.get(NEAR).map_or(f64::INFINITY, |e| e.0);
            assert_eq!(margin, next, "len {len}");
            if len > 0 {
                let mut z = z.clone();
                z[len - 1] = f64::NAN;
                assert!(nearest_samples(&z, &scale, &mut near).2, "NaN, len {len}");
            }
        }
    }

    #[test]
    fn jvp_is_the_derivative_of_the_prediction_along_v() {
        let (model, w) = problem(12, 4, 60, 5);
        let v = direction(60, 4, 0);
        // A step h |v_r| |x_i| below the distance to the nearest kink keeps the pattern, where u
        // is linear in W: the central difference is exact up to rounding.
        let h = 0.5 * kink_distance(&model, &w) / (v.amax() * 4f64.sqrt());
        assert!(h > 1e-8, "W too close to a kink for this test: h = {h:e}");
        let up = model.predict(&(&w + &v * h).as_view());
        let down = model.predict(&(&w - &v * h).as_view());
        let fd = (up - down) / (2.0 * h);
        let jv = model.jvp(&w.as_view(), &v.as_view());
        let err = (&fd - &jv).amax();
        assert!(err < 1e-7 * jv.amax().max(1.0), "|fd - J V| = {err:e}");
    }

    #[test]
    fn vjp_is_the_adjoint_of_jvp() {
        // <J V, beta> = <V, J^T beta> for the ReLU's pattern and for a held one with
        // fractional entries, on both kernels.
        let (model, w) = problem(23, 5, 70, 6);
        let (_, w_other) = problem(23, 5, 70, 7);
        let v = direction(70, 5, 3);
        let beta = DVector::from_fn(23, |i, _| ((i * 5) % 11) as f64 / 11.0 - 0.4);
        let lhs = model.jvp(&w.as_view(), &v.as_view()).dot(&beta);
        let rhs = v.dot(&model.vjp(&w.as_view(), &beta));
        assert!(
            (lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        for kernel in [engine::Kernel::Gemm, engine::Kernel::Fused] {
            let mut ws = Workspace::with_kernel(70, 23, 2, kernel);
            let mut held = Pattern::of(&model, &w_other.as_view(), &mut ws);
            held.set_blend(3, 4, 0.25);
            held.set_blend(40, 0, 0.75);
            let mut jv = vec![0.0; 23];
            model.jvp_held(&v.as_view(), &mut ws, &held, &mut jv);
            let mut jtb = DMatrix::zeros(70, 5);
            model.vjp_held(beta.as_slice(), &mut jtb.as_view_mut(), &mut ws, &held);
            let lhs = DVector::from_column_slice(&jv).dot(&beta);
            let rhs = v.dot(&jtb);
            assert!(
                (lhs - rhs).abs() < 1e-13 * lhs.abs().max(1.0),
                "{kernel:?}: {lhs} vs {rhs}"
            );
        }
    }

    /// J_S^T beta_W and J_S^T beta_V in one pass are the two single passes bit for bit, on both
    /// kernels, with blended entries, at sizes where the single passes sum two rows side by
    /// side (n = 23) and four (n = 300, d = 20), and at every shape of a block of columns
    /// (d = 4, 5, 12, 20, 21: a half vector alone, one or two full vectors with and without a
    /// half, three full with the last partly stored). Without AVX-512 the fused kernel's
    /// pair is its two single passes.
    #[test]
    fn paired_products_are_the_single_products_bit_for_bit() {
        let shapes = [
            (23, 5, 70),
            (300, 20, 90),
            (41, 21, 33),
            (37, 4, 20),
            (29, 12, 21),
        ];
        for (n, d, m) in shapes {
            let (model, w) = problem(n, d, m, 9);
            let bw = DVector::from_fn(n, |i, _| ((i * 5) % 11) as f64 / 11.0 - 0.4);
            let bv = DVector::from_fn(n, |i, _| ((i * 3) % 7) as f64 / 7.0 - 0.6);
            for kernel in [engine::Kernel::Gemm, engine::Kernel::Fused] {
                let mut ws = Workspace::with_kernel(m, n, 2, kernel);
                let mut held = Pattern::of(&model, &w.as_view(), &mut ws);
                held.set_blend(3, 4, 0.25);
                held.set_blend(m - 1, 0, 0.75);
                let single = |beta: &DVector<f64>, ws: &mut Workspace| {
                    let mut g = DMatrix::zeros(m, d);
                    model.vjp_held(beta.as_slice(), &mut g.as_view_mut(), ws, &held);
                    g
                };
                let (sw, sv) = (single(&bw, &mut ws), single(&bv, &mut ws));
                let (mut pw, mut pv) = (DMatrix::zeros(m, d), DMatrix::zeros(m, d));
                model.vjp_held_pair(
                    [bw.as_slice(), bv.as_slice()],
                    [&mut pw.as_view_mut(), &mut pv.as_view_mut()],
                    &mut ws,
                    &held,
                );
                let bits = |a: &DMatrix<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&pw),
                    bits(&sw),
                    "{kernel:?}, n = {n}, d = {d}: W's product"
                );
                assert_eq!(
                    bits(&pv),
                    bits(&sv),
                    "{kernel:?}, n = {n}, d = {d}: V's product"
                );
                assert!(sw.norm() > 0.0 && sv.norm() > 0.0);
            }
        }
    }

    /// Rows of J_S^T beta taken alone (single rows, in any order, at the tiles' edges and a
    /// blended row) are the whole product's rows bit for bit; with the GEMM fallback nothing.
    #[test]
    fn rows_of_j_transpose_beta_are_the_whole_products_rows() {
        let (n, d, m) = (23, 5, 70);
        let (model, w) = problem(n, d, m, 6);
        let beta = DVector::from_fn(n, |i, _| ((i * 5) % 11) as f64 / 11.0 - 0.4);
        let mut ws = Workspace::with_kernel(m, n, 2, engine::Kernel::Fused);
        let mut held = Pattern::of(&model, &w.as_view(), &mut ws);
        held.set_blend(3, 4, 0.25);
        held.set_blend(40, 0, 0.75);
        let mut whole = DMatrix::zeros(m, d);
        model.vjp_held(beta.as_slice(), &mut whole.as_view_mut(), &mut ws, &held);
        let rows = [0, 3, 4, 5, 7, 40, 41, 69, 12];
        let mut some = DMatrix::from_element(m, d, f64::NAN);
        let formed = model.vjp_held_rows(
            beta.as_slice(),
            &rows,
            &mut some.as_view_mut(),
            &mut ws,
            &held,
        );
        if ws.kernel() == engine::Kernel::Fused {
            assert!(formed);
            for r in 0..m {
                for k in 0..d {
                    let (a, b) = (whole[(r, k)], some[(r, k)]);
                    if rows.contains(&r) {
                        assert_eq!(a.to_bits(), b.to_bits(), "({r}, {k}): {a} vs {b}");
                    } else {
                        assert!(b.is_nan(), "row {r} was written");
                    }
                }
            }
        }
        let mut gemm = Workspace::with_kernel(m, n, 1, engine::Kernel::Gemm);
        assert!(!model.vjp_held_rows(
            beta.as_slice(),
            &rows,
            &mut some.as_view_mut(),
            &mut gemm,
            &held
        ));
    }

    #[test]
    fn gram_is_j_times_j_transpose() {
        // Column i of J^T is J^T e_i: H_ij = <J^T e_i, J^T e_j>.
        let (model, w) = problem(9, 3, 40, 8);
        let jt: Vec<DMatrix<f64>> = (0..9)
            .map(|i| model.vjp(&w.as_view(), &DVector::from_fn(9, |k, _| f64::from(k == i))))
            .collect();
        let h = model.gram(&w.as_view());
        for i in 0..9 {
            for j in 0..9 {
                let jj = jt[i].dot(&jt[j]);
                assert!(
                    (h[(i, j)] - jj).abs() < 1e-14,
                    "H_{i}{j} = {} vs {jj}",
                    h[(i, j)]
                );
            }
        }
    }

    #[test]
    fn the_fused_gradient_reads_the_data_the_model_was_built_from() {
        // Two data sets of one shape: each model's gradient (on the fast kernel where the CPU
        // runs it) is J^T Delta of its own data, as the dense oracle computes it from
        // `model.data()`. The packed copy of X the fused kernels read is made by Model::new
        // from the same data and nothing can replace one without the other.
        let net = InitialNetwork::init(50, 6, 3);
        for seed in [1, 2] {
            let model = Model::new(Data::synthetic(30, 6, seed), net.a.clone());
            let mut ws = Workspace::with_kernel(50, 30, 1, engine::Kernel::best());
            let mut g = DMatrix::zeros(50, 6);
            model.gradient_into(&net.w.as_view(), &mut g.as_view_mut(), &mut ws);
            let delta = model.residual(&net.w.as_view());
            let oracle = model.vjp(&net.w.as_view(), &delta);
            let err = (&g - &oracle).amax();
            assert!(
                err < 1e-13 * oracle.amax(),
                "seed {seed}: |G - J^T Delta| = {err:e}"
            );
        }
    }
}
