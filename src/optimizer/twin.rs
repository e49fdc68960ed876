//! The discrete twins of the flows, on the time scale of their ODE: the loop that runs one;
//! each optimizer's file holds its step.
//!
//! ```text
//! GD        : W_{k+1} = W_k - eta grad L(W_k)                                 t_k = k eta
//! heavy ball: W_{k+1} = W_k - eta grad L(W_k) + beta (W_k - W_{k-1}),  W_{-1} = W_0,
//!             beta = 1 - b sqrt(eta)                                           t_k = k sqrt(eta)
//! NAG       : x_k = y_{k-1} - eta grad L(y_{k-1}),
//!             y_k = x_k + (k-1)/(k+gamma-1) (x_k - x_{k-1}),  x_0 = y_0 = W_0   t_k = k sqrt(eta)
//! ```
//! Row k is the loss at iterate k (at x_k for NAG), i.e. before step k+1.
//!
//! References:
//! 1. B. T. Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
//! 2. W. Su, S. Boyd, E. Candes, "A differential equation for modeling Nesterov's accelerated
//!    gradient method", NeurIPS 2014 (the NAG form and its clock).

use nalgebra::DMatrix;

use super::{Optimizer, TwinStep};
use crate::model::relu2::engine::Workspace;
use crate::model::Model;

/// A discrete optimizer (summary.json's `discrete.method`): the optimizer whose twin it is and
/// the twin's one parameter (beta of heavy ball and NAG-SC, gamma of NAG, none for GD). Each
/// optimizer's file says how its twin is named, written and started ([`super::Method::twin_key`],
/// [`super::Method::start_twin`]); nothing here names an optimizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Twin {
    pub optimizer: Optimizer,
    pub parameter: Option<f64>,
    // issue 19: --beta
    /// The momentum `parameter` is fixed (`--beta B`), not derived from the friction: the
    /// clock is t_k = k eta/(1 - B) instead of the optimizer's.
    pub fixed_momentum: bool,
}

impl Twin {
    /// The twin of `optimizer` with its parameter.
    pub fn new(optimizer: Optimizer, parameter: Option<f64>) -> Twin {
        Twin {
            optimizer,
            parameter,
            fixed_momentum: false,
        }
    }

    // issue 19: --beta
    /// Heavy ball (hbf) or NAG-SC (nagsc) with the fixed momentum `beta`, on the clock
    /// t_k = k eta/(1 - beta) ([`crate::theory::discrete_modes::FixedMomentum`]).
    pub fn fixed_momentum(optimizer: Optimizer, beta: f64) -> Twin {
        Twin {
            fixed_momentum: true,
            ..Twin::new(optimizer, Some(beta))
        }
    }

    /// The flow time of one iterate: eta/(1 - B) at fixed momentum, else the optimizer's
    /// clock (eta for GD, sqrt(eta) for the momentum methods).
    pub fn clock(&self, eta: f64) -> f64 {
        match (self.fixed_momentum, self.parameter) {
            (true, Some(_)) => crate::theory::discrete_modes::FixedMomentum {
                recurrence: self.recurrence(),
                eta,
            }
            .clock(),
            _ => self.optimizer.method().clock(eta),
        }
    }

    /// The clock as summary.json writes it.
    pub fn clock_text(&self) -> &'static str {
        if self.fixed_momentum {
            "t = k eta/(1 - B)"
        } else {
            self.optimizer.method().clock_text()
        }
    }

    /// The optimizer whose twin this is.
    pub fn optimizer(&self) -> Optimizer {
        self.optimizer
    }

    /// The iterate and its step, from W0.
    fn start(&self, w0: &DMatrix<f64>) -> Box<dyn TwinStep> {
        self.optimizer.method().start_twin(w0, self.parameter)
    }

    /// Time of iterate k: k eta for GD, k sqrt(eta) for the momentum methods (k eta/(1 - B)
    /// at fixed momentum, [`Twin::clock`]), as the decimal product k h rounded once
    /// ([`crate::io::decimal_multiple`]: 499 x 0.1 is 49.9).
    pub fn time(&self, k: usize, eta: f64) -> f64 {
        crate::io::decimal_multiple(k, self.clock(eta))
    }

    /// The twin's step on one eigen-mode of error space with a fixed H.
    pub fn recurrence(&self) -> crate::theory::discrete_modes::Recurrence {
        self.optimizer.method().mode_recurrence(self.parameter)
    }

    /// GD, heavy ball, NAG-SC, NAG.
    pub fn name(&self) -> &'static str {
        self.optimizer().method().twin_name()
    }
}

/// `{"kind": "heavy_ball", "beta": 0.9}`: the kind and the parameter's key are the optimizer's
/// [`super::Method::twin_key`].
impl serde::Serialize for Twin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let (kind, key) = self.optimizer.method().twin_key();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("kind", kind)?;
        if let (Some(key), Some(value)) = (key, self.parameter) {
            map.serialize_entry(key, &value)?;
        }
        // issue 19: --beta (absent otherwise, so that a default run's summary is as before)
        if self.fixed_momentum {
            map.serialize_entry("fixed_momentum", &true)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Twin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Twin, D::Error> {
        use serde::de::Error;
        #[derive(serde::Deserialize)]
        struct Raw {
            kind: String,
            // issue 19: --beta
            #[serde(default)]
            fixed_momentum: bool,
            #[serde(flatten)]
            parameters: std::collections::BTreeMap<String, f64>,
        }
        let raw = Raw::deserialize(d)?;
        let optimizer = Optimizer::ALL
            .into_iter()
            .find(|o| o.method().twin_key().0 == raw.kind)
            .ok_or_else(|| D::Error::custom(format!("unknown twin kind '{}'", raw.kind)))?;
        let parameter = match optimizer.method().twin_key().1 {
            Some(key) => Some(
                *raw.parameters
                    .get(key)
                    .ok_or_else(|| D::Error::missing_field(key))?,
            ),
            None => None,
        };
        Ok(Twin {
            fixed_momentum: raw.fixed_momentum,
            ..Twin::new(optimizer, parameter)
        })
    }
}

/// One row of discrete.csv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Iterate {
    pub k: usize,
    pub t: f64,
    pub loss: f64,
}

/// The iterates of a discrete run up to t_end, and where it diverged if it did.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscreteRun {
    pub twin: Twin,
    pub eta: f64,
    pub iterates: Vec<Iterate>,
    /// Time of the first iterate whose loss was not finite; the run stopped there.
    pub diverged_at: Option<f64>,
    /// Largest |W_k - W0|_F over the iterates (x_k for NAG).
    pub max_distance: f64,
}

/// Run `twin` with step `eta` from W0 for every iterate with t_k <= t_end.
pub fn run(model: &Model, w0: &DMatrix<f64>, twin: Twin, eta: f64, t_end: f64) -> DiscreteRun {
    run_observed(model, w0, twin, eta, t_end, &mut |_| {})
}

/// [`run`], calling `at(t_k)` after each iterate (a progress display).
pub fn run_observed(
    model: &Model,
    w0: &DMatrix<f64>,
    twin: Twin,
    eta: f64,
    t_end: f64,
    at: &mut dyn FnMut(f64),
) -> DiscreteRun {
    run_watching(model, w0, twin, eta, t_end, &mut |t, _| at(t))
}

/// [`run_observed`], passing each iterate W_k (x_k for NAG) with its time (held-out points
/// measure the twin on them).
pub fn run_watching(
    model: &Model,
    w0: &DMatrix<f64>,
    twin: Twin,
    eta: f64,
    t_end: f64,
    at: &mut dyn FnMut(f64, &DMatrix<f64>),
) -> DiscreteRun {
    let (m, d) = (model.m(), model.d());
    let mut ws = Workspace::new(m, model.n(), d);
    // The parameters' shape: m x d, or m x (d+1) with a trained output layer (issue 17).
    let mut g = DMatrix::zeros(m, model.columns());
    let mut state = twin.start(w0);
    let mut iterates = Vec::new();
    let mut diverged_at = None;
    let mut max_distance: f64 = 0.0;
    let last = (t_end / twin.time(1, eta) * (1.0 + 1e-12)).floor() as usize;
    for k in 0..=last {
        let t = twin.time(k, eta);
        let loss = state.loss(model, &mut g, &mut ws);
        let x = state.iterate();
        if !loss.is_finite() || x.iter().any(|v| !v.is_finite()) {
            diverged_at = Some(t);
            break;
        }
        iterates.push(Iterate { k, t, loss });
        at(t, x);
        max_distance = max_distance.max((x - w0).norm());
        if k == last {
            break;
        }
        state.step(k, eta, model, &mut g, &mut ws);
    }
    DiscreteRun {
        twin,
        eta,
        iterates,
        diverged_at,
        max_distance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_json_names_each_twin_as_before_and_reads_it_back() {
        let cases = [
            (Twin::gd(), r#"{"kind":"gd"}"#),
            (
                Twin::heavy_ball(0.75),
                r#"{"kind":"heavy_ball","beta":0.75}"#,
            ),
            (Twin::nesterov(3.0), r#"{"kind":"nesterov","gamma":3.0}"#),
            (
                Twin::nesterov_constant(0.5),
                r#"{"kind":"nesterov_constant","beta":0.5}"#,
            ),
        ];
        for (twin, text) in cases {
            assert_eq!(serde_json::to_string(&twin).unwrap(), text);
            assert_eq!(serde_json::from_str::<Twin>(text).unwrap(), twin);
        }
        // issue 19: --beta
        let fixed = Twin::fixed_momentum(Optimizer::Nagsc, 0.5);
        let text = r#"{"kind":"nesterov_constant","beta":0.5,"fixed_momentum":true}"#;
        assert_eq!(serde_json::to_string(&fixed).unwrap(), text);
        assert_eq!(serde_json::from_str::<Twin>(text).unwrap(), fixed);
        assert_eq!(fixed.time(3, 0.1), 0.6);
        assert_eq!(Twin::fixed_momentum(Optimizer::Hbf, 0.9).time(7, 0.01), 0.7);
        let err = serde_json::from_str::<Twin>(r#"{"kind":"heavy_ball"}"#).unwrap_err();
        assert!(err.to_string().contains("beta"), "{err}");
        let err = serde_json::from_str::<Twin>(r#"{"kind":"adam"}"#).unwrap_err();
        assert!(err.to_string().contains("'adam'"), "{err}");
    }
}
