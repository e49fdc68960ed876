//! Colours and restyling of the figures.

use plotters::style::RGBColor;

use crate::error::InputError;
use crate::optimizer::Optimizer;
use crate::output::plot::Figure;
use crate::output::raster::Format;

/// The colour of an optimizer in every figure ([`crate::optimizer::Method::rgb`]).
pub fn color(optimizer: Optimizer) -> RGBColor {
    let [r, g, b] = optimizer.method().rgb();
    RGBColor(r, g, b)
}

/// `optimizer.color()`: [`color`] as a method, for figure code that reads better that way.
pub trait OptimizerColor {
    fn color(&self) -> RGBColor;
}

impl OptimizerColor for Optimizer {
    fn color(&self) -> RGBColor {
        color(*self)
    }
}

/// Restyling of the figures (`ntkdyn plot --width-px --height-px --log-x --title`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Style {
    /// Width of one panel in pixels.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub log_x: bool,
    /// Replaces the title of the loss figure.
    pub title: Option<String>,
    // issue 16: file format, font scale, y limits
    /// The file format of the figures (svg, png, pdf).
    pub format: Format,
    /// Multiplies every font size (`--font-scale`); None is 1.
    pub font_scale: Option<f64>,
    /// Fixed ends of the y axes of loss-like figures (`--y-min`, `--y-max`).
    pub y_min: Option<f64>,
    pub y_max: Option<f64>,
}

impl Style {
    pub(crate) fn apply(&self, fig: &mut Figure) {
        if let Some(w) = self.width {
            fig.width = w;
            // The width asked for is the panel's: a legend beside the plot takes from it.
            fig.widen_for_legend = false;
        }
        if let Some(h) = self.height {
            fig.height = h;
        }
        fig.log_x |= self.log_x;
        if let Some(s) = self.font_scale {
            fig.font_scale = s;
        }
    }

    /// The style's size, log time axis and font scale on a figure drawn outside this crate's
    /// output code (`plot` of a gap folder).
    pub fn apply_to(&self, fig: &mut Figure) {
        self.apply(fig);
    }

    /// [`Style::apply`] and the y limits, for the figures whose y axis is a loss.
    pub(crate) fn apply_with_limits(&self, fig: &mut Figure) {
        self.apply(fig);
        fig.y_min = self.y_min.or(fig.y_min);
        fig.y_max = self.y_max.or(fig.y_max);
    }

    /// Check the options before anything is computed: a font scale in 0.5..=3, finite y
    /// limits with y-min below y-max.
    pub fn check(&self) -> Result<(), InputError> {
        if let Some(f) = self.font_scale {
            if !(0.5..=3.0).contains(&f) {
                return Err(InputError::option(
                    "font-scale",
                    format!("{f} is outside 0.5..=3"),
                ));
            }
        }
        for (name, v) in [("y-min", self.y_min), ("y-max", self.y_max)] {
            if let Some(v) = v.filter(|v| !v.is_finite()) {
                return Err(InputError::option(
                    name,
                    format!("{v} is not a finite number"),
                ));
            }
        }
        if let (Some(lo), Some(hi)) = (self.y_min, self.y_max) {
            if lo >= hi {
                return Err(InputError::option(
                    "y-max",
                    format!("{hi} is not above --y-min {lo}"),
                ));
            }
        }
        Ok(())
    }

    /// The file name of figure `name` ("loss.svg") in this style's format ("loss.png").
    pub fn file_name(&self, name: &str) -> String {
        self.format.file_name(name)
    }
}
