//! What a study leaves on disk: summary.json through one typed struct ([`summary`]), the CSV
//! files and the write path ([`files`]), the figures ([`figures`]) and their colours
//! ([`style`]), drawn as SVG by [`plot`]. Plotters is named only in this folder.

pub mod aliasing;
pub mod figures;
pub mod files;
pub mod plot;
pub mod raster;
// issue 16: plot reads sgd and gap folders back
pub mod replot;
// issue 18: sgd.svg
pub mod sgd_figure;
pub mod style;
pub mod summary;
