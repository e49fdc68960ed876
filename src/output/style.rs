//! Colours and restyling of the figures.

use plotters::style::RGBColor;

use crate::optimizer::Optimizer;
use crate::output::plot::Figure;

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
}

impl Style {
    pub(crate) fn apply(&self, fig: &mut Figure) {
        if let Some(w) = self.width {
            fig.width = w;
        }
        if let Some(h) = self.height {
            fig.height = h;
        }
        fig.log_x |= self.log_x;
    }
}
