//! shim: remove after merge. The weight-space gradient moved to [`crate::model::relu2::engine`]
//! and held patterns to [`crate::model::relu2::pattern`].
pub use crate::model::relu2::engine::*;
pub use crate::model::relu2::pattern::Pattern;
