//! Mini-batch SGD on the sum loss, in weight space (the network) and in error space (H fixed).
//!
//! ```text
//! weight: W_{k+1} = W_k - eta J(W_k)^T (w_k o Delta_k)
//! error : Delta_{k+1} = Delta_k - eta H (w_k o Delta_k)
//! w_k,i = (n/B) #{draws of sample i in batch k}          (E w_k = 1: unbiased for grad L)
//! ```
//! A batch is a weighting w of the residual, so the batch gradient is one product J^T beta
//! with beta = eta w o Delta: for the ReLU with the first layer trained, the engine's
//! held-pattern products under the network's own pattern at W_k (a sign pass, J_S W = u, then
//! J_S^T beta), about 1.5 times the cost of the full gradient, whatever B (the loss at every
//! iterate needs the whole of u anyway); for a smooth activation or a trained output layer
//! (`--train wa`: W is then [W | a] and J its full Jacobian), [`Plain`]'s two GEMMs.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::{Path, Process, Recording, Sampling, Space};
use crate::model::relu2::engine::Workspace;
use crate::model::relu2::pattern::Pattern;
use crate::model::Model;

/// Stream tag of the batches (ASCII "SGDBATCH").
pub const SGD_STREAM: u64 = 0x5347_4442_4154_4348;
/// Stream tag of the SDE's Brownian increments (ASCII "SDENOISE").
pub const SDE_STREAM: u64 = 0x5344_454E_4F49_5345;

/// SplitMix64's finalizer (Steele, Lea, Flood 2014): a bijection of u64 that spreads every
/// input bit over the output.
pub fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The seed of run `index` of a stream: splitmix64(splitmix64(seed ^ tag) + index), so
/// neighbouring --seed values and neighbouring runs get unrelated ChaCha streams.
pub fn stream_seed(seed: u64, tag: u64, index: usize) -> u64 {
    splitmix64(splitmix64(seed ^ tag).wrapping_add(index as u64))
}

/// The random stream of run `index` (StdRng, ChaCha12, from [`stream_seed`]).
pub fn stream(seed: u64, tag: u64, index: usize) -> StdRng {
    StdRng::seed_from_u64(stream_seed(seed, tag, index))
}

/// Draws batches as weightings w of the n samples.
#[derive(Debug)]
pub struct Batches {
    n: usize,
    batch: usize,
    sampling: Sampling,
    rng: StdRng,
    /// A permutation of 0..n, reshuffled in its first B places for each batch without
    /// replacement (a partial Fisher-Yates shuffle of any arrangement gives a uniform subset).
    order: Vec<usize>,
}

impl Batches {
    pub fn new(n: usize, batch: usize, sampling: Sampling, rng: StdRng) -> Batches {
        assert!(batch >= 1, "a batch holds at least one sample");
        assert!(
            sampling == Sampling::With || batch <= n,
            "a batch without replacement holds at most n samples"
        );
        Batches {
            n,
            batch,
            sampling,
            rng,
            order: (0..n).collect(),
        }
    }

    /// The next batch as weights w_i = (n/B) #{draws of i} into `w` (length n).
    pub fn next_weights(&mut self, w: &mut [f64]) {
        w.fill(0.0);
        let unit = self.n as f64 / self.batch as f64;
        match self.sampling {
            Sampling::With => {
                for _ in 0..self.batch {
                    w[self.rng.random_range(0..self.n)] += unit;
                }
            }
            Sampling::Without => {
                for j in 0..self.batch {
                    let pick = self.rng.random_range(j..self.n);
                    self.order.swap(j, pick);
                    w[self.order[j]] = unit;
                }
            }
        }
    }
}

/// Every weighting w of a batch with its probability, enumerated (small n and B: tests of
/// c_B). With replacement all n^B ordered draws, without all C(n, B) subsets.
pub fn all_batches(n: usize, batch: usize, sampling: Sampling) -> Vec<(f64, Vec<f64>)> {
    let unit = n as f64 / batch as f64;
    let mut out = Vec::new();
    match sampling {
        Sampling::With => {
            let total = n.pow(batch as u32);
            for code in 0..total {
                let mut w = vec![0.0; n];
                let mut c = code;
                for _ in 0..batch {
                    w[c % n] += unit;
                    c /= n;
                }
                out.push((1.0 / total as f64, w));
            }
        }
        Sampling::Without => {
            for mask in 0u64..(1u64 << n) {
                if mask.count_ones() as usize == batch {
                    let w = (0..n)
                        .map(|i| if mask >> i & 1 == 1 { unit } else { 0.0 })
                        .collect();
                    out.push((0.0, w));
                }
            }
            let p = 1.0 / out.len() as f64;
            out.iter_mut().for_each(|(q, _)| *q = p);
        }
    }
    out
}

/// The network's residual and the product J^T beta at the parameters of the last residual:
/// for the ReLU with the first layer trained, under its own activation pattern through the
/// engine's held-pattern passes (no allocation per step); for a smooth activation or a trained
/// output layer (`--train wa`, parameters [W | a]) through [`Plain`], whose J is the full
/// Jacobian, the W block and (with wa) the a block.
pub struct Weighted<'a> {
    model: &'a Model,
    kind: Kind,
    u: Vec<f64>,
    g: DMatrix<f64>,
}

/// How [`Weighted`] takes its products.
enum Kind {
    /// The ReLU engine's sign pass, J_S W = u and J_S^T beta (first layer trained).
    Held {
        ws: Workspace,
        pattern: Pattern,
        scratch: Vec<u8>,
    },
    /// The slopes and values of the hidden layer kept from the residual.
    Plain(Plain),
}

impl<'a> Weighted<'a> {
    /// At the parameters `w0` (W, or [W | a] with a trained output layer), with the ReLU
    /// engine in `lanes` lanes (the bits do not depend on them).
    pub fn new(model: &'a Model, w0: &DMatrix<f64>, lanes: usize) -> Weighted<'a> {
        let (m, n, d) = (model.m(), model.n(), model.d());
        let kind = if model.activation().switching() && !model.train().output_layer() {
            let mut ws = if lanes == 0 {
                Workspace::new(m, n, d)
            } else {
                Workspace::with_lanes(m, n, lanes)
            };
            let pattern = Pattern::of(model, &w0.as_view(), &mut ws);
            Kind::Held {
                ws,
                pattern,
                scratch: Vec::new(),
            }
        } else {
            Kind::Plain(Plain::new(model))
        };
        Weighted {
            model,
            kind,
            u: vec![0.0; n],
            g: DMatrix::zeros(m, model.columns()),
        }
    }

    /// Delta = u(W) - y into `delta`, taking what the next product needs at W (the ReLU's
    /// activation pattern, or the hidden layer's slopes and values).
    pub fn residual(&mut self, w: &DMatrix<f64>, delta: &mut [f64]) {
        match &mut self.kind {
            Kind::Held {
                ws,
                pattern,
                scratch,
            } => {
                pattern.retake(self.model, &w.as_view(), scratch, ws);
                self.model.jvp_held(&w.as_view(), ws, pattern, &mut self.u);
            }
            Kind::Plain(plain) => plain.forward(self.model, w, &mut self.u),
        }
        for ((d, u), y) in delta.iter_mut().zip(&self.u).zip(&self.model.data().y) {
            *d = u - y;
        }
    }

    /// J^T beta (the parameters' shape), J at the W of the last [`Weighted::residual`]: with
    /// beta = w o Delta the batch gradient g_B, with beta = Delta the full gradient.
    pub fn pullback(&mut self, beta: &[f64]) -> &DMatrix<f64> {
        match &mut self.kind {
            Kind::Held { ws, pattern, .. } => {
                self.model
                    .vjp_held(beta, &mut self.g.as_view_mut(), ws, pattern);
            }
            Kind::Plain(plain) => plain.pullback(self.model, beta, &mut self.g),
        }
        &self.g
    }

    /// W -= J^T beta, J at the W of the last [`Weighted::residual`].
    pub fn descend(&mut self, w: &mut DMatrix<f64>, beta: &[f64]) {
        *w -= self.pullback(beta);
    }
}

/// The products of any activation and either training, from the hidden layer at P:
/// ```text
/// u_i = (1/sqrt m) sum_r a_r sigma(z_ri),  z_ri = w_r . x_i
/// (J^T beta)_{w_r} = (1/sqrt m) a_r sum_i sigma'(z_ri) beta_i x_i
/// (J^T beta)_{a_r} = (1/sqrt m)     sum_i sigma(z_ri)  beta_i          (--train wa)
/// ```
/// Two GEMMs a step (Z^T = W X^T, then (a o sigma'(Z) o beta) X) beside O(m n) work, as the
/// engine's gradient; the hidden layer (m x n slopes and values) is kept between the two.
pub struct Plain {
    /// X^T (d x n).
    xt: DMatrix<f64>,
    /// a_r sigma'(z_ri) (m x n), scaled in place by beta_i / sqrt m in [`Plain::pullback`].
    slopes: DMatrix<f64>,
    /// sigma(z_ri) (m x n).
    values: DMatrix<f64>,
    /// The pre-activations Z^T (m x n).
    zt: DMatrix<f64>,
    /// J^T beta of the first layer (m x d).
    gw: DMatrix<f64>,
}

impl Plain {
    pub fn new(model: &Model) -> Plain {
        let (m, n, d) = (model.m(), model.n(), model.d());
        Plain {
            xt: model.data().x.transpose(),
            slopes: DMatrix::zeros(m, n),
            values: DMatrix::zeros(m, n),
            zt: DMatrix::zeros(m, n),
            gw: DMatrix::zeros(m, d),
        }
    }

    /// u at P into `u`, keeping a_r sigma'(z_ri) and sigma(z_ri).
    pub fn forward(&mut self, model: &Model, p: &DMatrix<f64>, u: &mut [f64]) {
        let (m, d) = (model.m(), model.d());
        let sigma = model.activation();
        self.zt.gemm(1.0, &p.columns(0, d), &self.xt, 0.0);
        let a = model.output_weights(&p.as_view());
        let scale = 1.0 / (m as f64).sqrt();
        let columns = self
            .zt
            .column_iter()
            .zip(self.slopes.column_iter_mut())
            .zip(self.values.column_iter_mut());
        for (((z, mut s), mut v), ui) in columns.zip(u.iter_mut()) {
            // sigma and sigma' four at a time where the CPU has AVX2 (as the engine's passes).
            sigma.values_and_slopes(z.as_slice(), v.as_mut_slice(), s.as_mut_slice());
            s.component_mul_assign(&a);
            *ui = scale * v.dot(&a);
        }
    }

    /// J^T beta into `g` (m x d, or m x (d+1) with a trained output layer), J at the P of the
    /// last [`Plain::forward`].
    pub fn pullback(&mut self, model: &Model, beta: &[f64], g: &mut DMatrix<f64>) {
        let (m, d) = (model.m(), model.d());
        let scale = 1.0 / (m as f64).sqrt();
        // zt is free until the next forward: it holds a_r sigma'(z_ri) beta_i / sqrt m.
        for ((mut p, s), b) in self
            .zt
            .column_iter_mut()
            .zip(self.slopes.column_iter())
            .zip(beta)
        {
            p.zip_apply(&s, |pr, sr| *pr = sr * b * scale);
        }
        self.gw.gemm(1.0, &self.zt, &model.data().x, 0.0);
        g.columns_mut(0, d).copy_from(&self.gw);
        if model.train().output_layer() {
            let beta = DVector::from_column_slice(beta);
            let ga = &self.values * beta * scale;
            g.column_mut(d).copy_from(&ga);
        }
    }
}

/// 1/2 |Delta|^2.
pub fn loss(delta: &[f64]) -> f64 {
    0.5 * delta.iter().map(|d| d * d).sum::<f64>()
}

/// One seeded run of SGD in weight space from W0, step eta, kept at `rec`'s iterates.
pub fn sgd_weight(
    model: &Model,
    w0: &DMatrix<f64>,
    eta: f64,
    rec: Recording,
    mut batches: Batches,
    lanes: usize,
    seed: usize,
) -> Path {
    let n = model.n();
    let mut engine = Weighted::new(model, w0, lanes);
    let mut w = w0.clone();
    let (mut delta, mut weights, mut beta) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    Path::record(Process::Sgd, Space::Weight, Some(seed), eta, rec, |k| {
        if k > 0 {
            batches.next_weights(&mut weights);
            for ((b, wi), d) in beta.iter_mut().zip(&weights).zip(&delta) {
                *b = eta * wi * d;
            }
            engine.descend(&mut w, &beta);
        }
        engine.residual(&w, &mut delta);
        loss(&delta)
    })
}

/// One seeded run of SGD in error space with the fixed kernel H from Delta0.
pub fn sgd_error(
    h: &DMatrix<f64>,
    delta0: &DVector<f64>,
    eta: f64,
    rec: Recording,
    mut batches: Batches,
    seed: usize,
) -> Path {
    let n = delta0.len();
    let mut delta = delta0.clone();
    let mut beta = DVector::zeros(n);
    let mut weights = vec![0.0; n];
    Path::record(Process::Sgd, Space::Error, Some(seed), eta, rec, |k| {
        if k > 0 {
            batches.next_weights(&mut weights);
            for ((b, wi), d) in beta.iter_mut().zip(&weights).zip(delta.iter()) {
                *b = wi * d;
            }
            delta.gemv(-eta, h, &beta, 1.0);
        }
        0.5 * delta.norm_squared()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_weights_sum_to_n_and_without_replacement_never_repeat_a_sample() {
        for sampling in [Sampling::With, Sampling::Without] {
            let mut b = Batches::new(7, 3, sampling, stream(1, SGD_STREAM, 0));
            let mut w = vec![0.0; 7];
            for _ in 0..200 {
                b.next_weights(&mut w);
                let total: f64 = w.iter().sum();
                assert!((total - 7.0).abs() < 1e-12, "{total}");
                if sampling == Sampling::Without {
                    assert!(w.iter().all(|&v| v == 0.0 || v == 7.0 / 3.0), "{w:?}");
                }
            }
        }
    }

    #[test]
    fn streams_differ_between_runs_seeds_and_tags() {
        let s = stream_seed(0, SGD_STREAM, 0);
        assert_ne!(s, stream_seed(0, SGD_STREAM, 1));
        assert_ne!(s, stream_seed(1, SGD_STREAM, 0));
        assert_ne!(s, stream_seed(0, SDE_STREAM, 0));
        assert_eq!(s, stream_seed(0, SGD_STREAM, 0));
    }
}
