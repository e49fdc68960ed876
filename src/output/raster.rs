//! The figures as PNG or PDF, converted from their SVG text in pure Rust: usvg parses, resvg
//! (tiny-skia) rasterizes, svg2pdf writes vector PDF. The text is set in DejaVu Sans, bundled
//! (assets/fonts, Bitstream Vera license), so that a machine without fonts draws the same
//! figure: plotters writes font-family "sans-serif", which the font database maps to it.

use resvg::tiny_skia;
use resvg::usvg;
use std::sync::Arc;

use crate::output::plot::PlotError;

/// DejaVu Sans 2.37 (Bitstream Vera license, assets/fonts/LICENSE-DejaVu.txt).
const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family name of [`FONT`].
const FAMILY: &str = "DejaVu Sans";

/// PNG pixels per SVG pixel: a 640 x 440 panel is a 1280 x 880 PNG, sharp in print and on
/// high-density screens.
pub const PNG_SCALE: f32 = 2.0;

/// The file format of a figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Svg,
    Png,
    Pdf,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Svg, Format::Png, Format::Pdf];

    /// The name on the command line and the file extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
            Format::Pdf => "pdf",
        }
    }

    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// `loss.svg` in this format: `loss.png`. Names without `.svg` are kept.
    pub fn file_name(self, name: &str) -> String {
        match name.strip_suffix(".svg") {
            Some(stem) => format!("{stem}.{}", self.name()),
            None => name.to_string(),
        }
    }

    /// The bytes of a figure in this format from its SVG text.
    pub fn encode(self, svg: &str) -> Result<Vec<u8>, PlotError> {
        match self {
            Format::Svg => Ok(svg.as_bytes().to_vec()),
            Format::Png => png(svg, PNG_SCALE),
            Format::Pdf => pdf(svg),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// usvg's options with the bundled font as every generic family and the default one.
fn options() -> usvg::Options<'static> {
    let mut db = usvg::fontdb::Database::new();
    db.load_font_data(FONT.to_vec());
    db.set_sans_serif_family(FAMILY);
    db.set_serif_family(FAMILY);
    db.set_monospace_family(FAMILY);
    db.set_cursive_family(FAMILY);
    db.set_fantasy_family(FAMILY);
    usvg::Options {
        font_family: FAMILY.to_string(),
        fontdb: Arc::new(db),
        ..usvg::Options::default()
    }
}

fn tree(svg: &str) -> Result<usvg::Tree, PlotError> {
    usvg::Tree::from_str(svg, &options()).map_err(|e| PlotError::Backend(format!("SVG: {e}")))
}

/// The figure as PNG, `scale` PNG pixels per SVG pixel.
pub fn png(svg: &str, scale: f32) -> Result<Vec<u8>, PlotError> {
    let tree = tree(svg)?;
    let size = tree
        .size()
        .to_int_size()
        .scale_by(scale)
        .ok_or_else(|| PlotError::Backend(format!("PNG: cannot scale by {scale}")))?;
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height()).ok_or_else(|| {
        PlotError::Backend(format!(
            "PNG: no {} x {} image",
            size.width(),
            size.height()
        ))
    })?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| PlotError::Backend(format!("PNG: {e}")))
}

/// The figure as a one-page vector PDF, the font embedded (subset).
pub fn pdf(svg: &str) -> Result<Vec<u8>, PlotError> {
    let tree = tree(svg)?;
    svg2pdf::to_pdf(
        &tree,
        svg2pdf::ConversionOptions::default(),
        svg2pdf::PageOptions::default(),
    )
    .map_err(|e| PlotError::Backend(format!("PDF: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::plot::{render_svg, Dash, Figure, Series};

    fn figure() -> String {
        let mut fig = Figure::new("A title λ₀", "time t", "loss");
        fig.log_y = true;
        fig.series.push(Series {
            label: "weight space".into(),
            points: (0..50)
                .map(|k| (k as f64, (-0.2 * k as f64).exp()))
                .collect(),
            color: crate::output::plot::BOUND_COLOR,
            dash: Dash::Solid,
            band: Vec::new(),
        });
        render_svg(&[fig]).unwrap()
    }

    #[test]
    fn a_png_figure_is_a_png_of_twice_the_svg_size_with_text_drawn() {
        let bytes = Format::Png.encode(&figure()).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((w, h), (1280, 880));
        // The bundled font draws the title: dark pixels in the title's band (rows 16..50 of
        // 880, centred), with no system font.
        let tree = tree(&figure()).unwrap();
        let mut pixmap = tiny_skia::Pixmap::new(640, 440).unwrap();
        pixmap.fill(tiny_skia::Color::WHITE);
        resvg::render(
            &tree,
            tiny_skia::Transform::identity(),
            &mut pixmap.as_mut(),
        );
        let dark = (8..30)
            .flat_map(|y| (200..440).map(move |x| (x, y)))
            .filter(|&(x, y)| pixmap.pixel(x, y).is_some_and(|p| p.red() < 100))
            .count();
        assert!(dark > 50, "{dark} dark pixels where the title is");
    }

    #[test]
    fn a_pdf_figure_is_a_pdf_with_the_font_embedded() {
        let bytes = Format::Pdf.encode(&figure()).unwrap();
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("DejaVu"), "font named in the PDF");
        assert!(text.trim_end().ends_with("%%EOF"));
    }

    #[test]
    fn file_names_take_the_format_extension() {
        assert_eq!(Format::Png.file_name("loss.svg"), "loss.png");
        assert_eq!(Format::Pdf.file_name("gf/kernel.svg"), "gf/kernel.pdf");
        assert_eq!(Format::Svg.file_name("loss.svg"), "loss.svg");
        assert_eq!(Format::from_name("pdf"), Some(Format::Pdf));
        assert_eq!(Format::from_name("jpg"), None);
    }
}
