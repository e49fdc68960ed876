//! shim: remove after merge. The fused kernels moved to `crate::simd::avx2` (crate-private,
//! behind the `Avx2Fma` token) and their driver to [`crate::model::relu2::engine`].
