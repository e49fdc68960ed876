//! What a study leaves on disk: summary.json through one typed struct ([`summary`]), the CSV
//! files and the write path ([`files`]), the figures ([`figures`]) and their colours
//! ([`style`]). Plotters is named only here and in [`crate::plot`].

pub mod figures;
pub mod files;
pub mod style;
pub mod summary;
