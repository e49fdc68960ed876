//! Co-activation counts of a bit pattern: C_ij = |{r : S_ri = S_rj = 1}| = popcount(s_i & s_j)
//! over the columns s_i of an m x n 0/1 pattern stored 64 rows to a word.
//!
//! ReLU's H(t) = (X X^T) o (S^T S) / m needs S^T S, whose entries are these counts. As a
//! product of the 0/1 matrix in doubles it costs 2 m n^2 flops, and at n = 1000, m = 10,000 it
//! was nearly all of a weight-space snapshot (perf: matrixmultiply's packing of the 0/1 matrix
//! and its kernel). On the bits it is n^2/2 ANDs and population counts of m/64 words per entry,
//! 64 times fewer operations, with the same exact integers (a double holds every count below
//! 2^53, so the product's entries were exact too). No crate we use counts bits in this shape
//! (faer and matrixmultiply multiply floating-point matrices only), hence this file.
//!
//! The x86-64 baseline has no POPCNT instruction, so `count_ones` compiles to a dozen shifts and
//! masks; the loop is compiled a second time with POPCNT enabled, entered only through the
//! [`Popcnt`] token that runtime detection makes.

use nalgebra::DMatrix;
use rayon::prelude::*;

/// Proof that this CPU runs the POPCNT instruction: made only by [`Popcnt::detect`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Popcnt {
    _detected: (),
}

impl Popcnt {
    /// The token, if the CPU has POPCNT (detected at run time, cached by std).
    pub(crate) fn detect() -> Option<Popcnt> {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("popcnt") {
                return Some(Popcnt { _detected: () });
            }
        }
        None
    }
}

/// sum_k popcount(a_k & b_k).
fn and_count(a: &[u64], b: &[u64]) -> u64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| u64::from((x & y).count_ones()))
        .sum()
}

/// [`and_count`] compiled with POPCNT.
///
/// # Safety
/// The CPU must run POPCNT (a [`Popcnt`] token exists).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn and_count_popcnt(a: &[u64], b: &[u64]) -> u64 {
    and_count(a, b)
}

/// The n x n counts C_ij = popcount(s_i & s_j) of the n columns of `words` (`per` words each,
/// column i at `words[i per ..]`; bits beyond the pattern's rows must be zero), as doubles:
/// S^T S of the 0/1 matrix, exactly. Rows of C are shared over rayon's threads.
pub(crate) fn co_counts(words: &[u64], per: usize, n: usize) -> DMatrix<f64> {
    assert_eq!(words.len(), per * n, "n columns of `per` words");
    let token = Popcnt::detect();
    let column = |i: usize| &words[i * per..(i + 1) * per];
    let count = |a: &[u64], b: &[u64]| -> u64 {
        match token {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the token exists, so the CPU runs POPCNT.
            Some(_) => unsafe { and_count_popcnt(a, b) },
            _ => and_count(a, b),
        }
    };
    // C is symmetric: column j holds C_ij for i <= j (the work of column j grows with j, so
    // rayon's splitting of the index range balances it by stealing).
    let mut c = DMatrix::zeros(n, n);
    c.as_mut_slice()
        .par_chunks_mut(n.max(1))
        .enumerate()
        .for_each(|(j, out)| {
            let sj = column(j);
            for (i, entry) in out.iter_mut().enumerate().take(j + 1) {
                *entry = count(column(i), sj) as f64;
            }
        });
    c.fill_lower_triangle_with_upper_triangle();
    c
}

/// The columns of an m x n column-major matrix packed 64 rows to a word (`m.div_ceil(64)`
/// words a column, unused bits zero): bit (r, i) is `bit(s_ri)`, and None as soon as `bit`
/// gives None.
pub(crate) fn pack_columns(
    s: &DMatrix<f64>,
    bit: impl Fn(f64) -> Option<bool>,
) -> Option<Vec<u64>> {
    let (m, n) = s.shape();
    let per = m.div_ceil(64);
    let mut words = vec![0u64; per * n];
    for (column, out) in s
        .as_slice()
        .chunks_exact(m.max(1))
        .zip(words.chunks_exact_mut(per.max(1)))
    {
        for (chunk, word) in column.chunks(64).zip(out.iter_mut()) {
            for (b, &x) in chunk.iter().enumerate() {
                *word |= u64::from(bit(x)?) << b;
            }
        }
    }
    Some(words)
}

/// The columns of an m x n 0/1 pattern given neuron-major (`mask[r n + i]` is entry (r, i),
/// 1 for active, as a held [`crate::model::relu2::pattern::Pattern`] stores it) packed 64 rows
/// to a word as [`pack_columns`] packs them. Eight neurons' n bytes are first merged into n
/// bytes (16 to a vector register), which are then shifted into the n words of their block of
/// 64 neurons, kept in L1. Setting the m n bits one at a time through the strided words took
/// 50 us a snapshot at n = 100, m = 400 (perf: 14% of an hbf run's snapshots), a bit per word
/// operation in the block 30 us.
pub(crate) fn pack_neuron_major(mask: &[u8], m: usize, n: usize) -> Vec<u64> {
    assert_eq!(mask.len(), m * n, "m neurons of n entries");
    let per = m.div_ceil(64);
    let mut words = vec![0u64; per * n];
    if m == 0 || n == 0 {
        return words;
    }
    let (mut block, mut bytes) = (vec![0u64; n], vec![0u8; n]);
    for (b, neurons) in mask.chunks(64 * n).enumerate() {
        block.iter_mut().for_each(|w| *w = 0);
        for (g, eight) in neurons.chunks(8 * n).enumerate() {
            bytes.iter_mut().for_each(|x| *x = 0);
            for (j, row) in eight.chunks_exact(n).enumerate() {
                for (x, &s) in bytes.iter_mut().zip(row) {
                    *x |= u8::from(s == 1) << j;
                }
            }
            for (w, &x) in block.iter_mut().zip(&bytes) {
                *w |= u64::from(x) << (8 * g);
            }
        }
        for (i, &w) in block.iter().enumerate() {
            words[i * per + b] = w;
        }
    }
    words
}

/// S^T S of an m x n matrix S whose entries are all 0 or 1, by [`co_counts`] on its bits; None
/// when an entry is anything else (a smooth activation's slopes), for the caller's product.
pub(crate) fn zero_one_counts(s: &DMatrix<f64>) -> Option<DMatrix<f64>> {
    let words = pack_columns(s, |x| {
        if x == 1.0 {
            Some(true)
        } else if x == 0.0 {
            Some(false)
        } else {
            None
        }
    })?;
    Some(co_counts(&words, s.nrows().div_ceil(64), s.ncols()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_the_product_of_the_zero_one_matrix_with_and_without_popcnt() {
        // m = 130: three words per column, the last one partial.
        let (m, n): (usize, usize) = (130, 7);
        let per = m.div_ceil(64);
        let s = DMatrix::from_fn(m, n, |r, i| {
            f64::from(u8::from((r * 7 + i * 13) % 5 < 2 + i % 2))
        });
        let mut words = vec![0u64; per * n];
        for i in 0..n {
            for r in 0..m {
                if s[(r, i)] != 0.0 {
                    words[i * per + r / 64] |= 1 << (r % 64);
                }
            }
        }
        let product = s.transpose() * &s;
        assert_eq!(co_counts(&words, per, n), product);
        assert_eq!(zero_one_counts(&s), Some(product.clone()));
        let mut slopes = s.clone();
        slopes[(129, 6)] = 0.5;
        assert_eq!(zero_one_counts(&slopes), None);
        for i in 0..n {
            for j in 0..n {
                let (a, b) = (
                    &words[i * per..(i + 1) * per],
                    &words[j * per..(j + 1) * per],
                );
                assert_eq!(and_count(a, b) as f64, product[(i, j)]);
            }
        }
    }

    #[test]
    fn a_neuron_major_mask_packs_to_the_bits_of_its_columns() {
        // m = 130: two full words and a partial third per column; and no neurons at all.
        for (m, n) in [(130usize, 7usize), (64, 3), (1, 5), (0, 4), (3, 0), (77, 1)] {
            let mask: Vec<u8> = (0..m * n)
                .map(|k| u8::from((k * 7 + k / 5) % 3 == 0))
                .collect();
            let s = DMatrix::from_fn(m, n, |r, i| f64::from(mask[r * n + i]));
            let columns = pack_columns(&s, |x| Some(x == 1.0));
            assert_eq!(
                Some(pack_neuron_major(&mask, m, n)),
                columns,
                "m = {m}, n = {n}"
            );
        }
    }

    #[test]
    fn an_empty_pattern_has_an_empty_count_matrix() {
        assert_eq!(co_counts(&[], 0, 0).shape(), (0, 0));
        assert_eq!(co_counts(&[], 0, 3), DMatrix::zeros(3, 3));
    }
}
