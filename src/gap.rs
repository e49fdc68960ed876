//! `ntkdyn gap`: the gap between a twin and its low- and high-resolution ODEs against the
//! twin's clock step h, in error space with the run's fixed kernel, and the fitted orders.
//!
//! For each eta the twin is iterated exactly per eigen-mode
//! ([`crate::theory::discrete_modes`]) and held against the ODE's exact (or, for
//! high-resolution nag, finely integrated) modes at the twin's times
//! ([`crate::theory::high_resolution`]). Files: gap.csv
//! (space,resolution,eta,h,gap_delta,gap_loss), gap.svg (log-log against h, the fitted slope in
//! each legend, reference slopes 1 and 2), modes.csv and modes.svg (per-mode rates at the
//! largest eta, [`crate::theory::modes`]) and summary.json (the fitted orders).

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, InputError};
use crate::optimizer::Optimizer;
use crate::outdir::Claim;
use crate::output::plot::{self, Dash, Figure, Legend, Series, BOUND_COLOR};
use crate::output::style::color;
use crate::study::executor::prepare;
use crate::study::{RunConfig, SpaceChoice};
use crate::theory::high_resolution::{error_space_gap, fitted_order, Gap, Resolution, Setting};
use crate::theory::modes::{mode_row, ModeRow, MODES_COLUMNS};

/// The files `ntkdyn gap` writes.
pub const GAP_FILES: [&str; 5] = [
    "gap.csv",
    "gap.svg",
    "modes.csv",
    "modes.svg",
    "summary.json",
];

/// One row of gap.csv.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct GapRow {
    pub space: &'static str,
    pub resolution: Resolution,
    pub eta: f64,
    pub h: f64,
    pub gap_delta: f64,
    pub gap_loss: f64,
}

/// The fitted order of one (space, resolution): slopes of ln gap against ln h.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Order {
    pub space: &'static str,
    pub resolution: Resolution,
    pub order_delta: f64,
    pub order_loss: f64,
}

/// A gap study of one optimizer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GapReport {
    pub optimizer: Optimizer,
    pub t_end: f64,
    pub rows: Vec<GapRow>,
    pub orders: Vec<Order>,
    /// The per-mode rates at the largest eta (modes.csv).
    pub modes_eta: f64,
    #[serde(skip)]
    pub modes: Vec<ModeRow>,
    /// The figures' provenance line: the data, m, T and a model that is not the default
    /// ([`crate::output::figures::provenance`]).
    pub caption: String,
}

// issue 19: gap refuses --beta
/// Check a gap study's options: the step sizes ([`validate_etas`]), and no `--beta`, which
/// the study would otherwise ignore (its twins are the optimizers' own, beta = 1 - b sqrt(eta)
/// or GD; the fixed-momentum twin's gap is not studied here).
pub fn validate(cfg: &RunConfig, etas: &[f64]) -> Result<(), InputError> {
    if cfg.beta.is_some() {
        return Err(InputError::option(
            "beta",
            "is not an option of gap (its twins are the optimizers' own; run hbf or nagsc --beta B for the fixed-momentum twin)",
        ));
    }
    validate_etas(etas)
}

/// Check the spaces: weight space's gap runs hold ReLU patterns of the first layer alone, so
/// a trained output layer is refused there.
pub fn validate_spaces(cfg: &RunConfig, spaces: &[SpaceChoice]) -> Result<(), InputError> {
    if cfg.train.output_layer() && spaces.contains(&SpaceChoice::Weight) {
        return Err(InputError::option(
            "train",
            "wa is not built for gap in weight space (its runs hold patterns of the first layer alone); use --space error or --train w",
        ));
    }
    Ok(())
}

/// Check the step sizes: at least two, each positive and finite, below 1.
pub fn validate_etas(etas: &[f64]) -> Result<(), InputError> {
    if etas.len() < 2 {
        return Err(InputError::option(
            "etas",
            "needs at least two step sizes to fit an order",
        ));
    }
    if let Some(e) = etas
        .iter()
        .find(|e| !(e.is_finite() && **e > 0.0 && **e < 1.0))
    {
        return Err(InputError::option(
            "etas",
            format!("{e} is not a step size in (0, 1)"),
        ));
    }
    Ok(())
}

/// Run the gap study of `cfg.optimizer` over `etas` at `resolutions`, in error space with
/// the kernel of `cfg` (--kernel) from the residual at its W0, up to `cfg.t_end`.
pub fn run_gap(
    cfg: &RunConfig,
    etas: &[f64],
    resolutions: &[Resolution],
) -> Result<GapReport, Error> {
    run_gap_in(cfg, etas, resolutions, &[SpaceChoice::Error])
}

/// [`run_gap`] in the spaces `spaces` (error: the twin per eigen-mode against the exact
/// modes; weight: the twin on the network against the weight-space ODE, gaps of the
/// outputs Delta, [`weight_space_gap`]).
pub fn run_gap_in(
    cfg: &RunConfig,
    etas: &[f64],
    resolutions: &[Resolution],
    spaces: &[SpaceChoice],
) -> Result<GapReport, Error> {
    validate(cfg, etas)?;
    cfg.validate()?;
    let setup = prepare(cfg)?;
    let (h, _) = setup.error_kernel(cfg.kernel);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    let damping = cfg.damping(setup.lambda0);
    let mut rows = Vec::new();
    for space in spaces {
        for &resolution in resolutions {
            for &eta in etas {
                let setting = Setting {
                    optimizer: cfg.optimizer,
                    eta,
                    damping,
                };
                let (name, g) = match space {
                    SpaceChoice::Weight => (
                        "weight",
                        weight_space_gap(cfg, &setup, &setting, resolution),
                    ),
                    _ => (
                        "error",
                        Some(error_space_gap(h, &delta0, &setting, resolution, cfg.t_end)),
                    ),
                };
                let Some(g) = g else { continue };
                rows.push(GapRow {
                    space: name,
                    resolution,
                    eta,
                    h: g.h,
                    gap_delta: g.gap_delta,
                    gap_loss: g.gap_loss,
                });
            }
        }
    }
    let orders = orders(&rows);
    let modes_eta = etas.iter().copied().fold(0.0, f64::max);
    let setting = Setting {
        optimizer: cfg.optimizer,
        eta: modes_eta,
        damping,
    };
    let values = crate::theory::spectrum::Spectrum::of(h).values;
    let modes = values.iter().map(|&l| mode_row(&setting, l)).collect();
    let caption = crate::output::figures::provenance(&serde_json::json!({
        "config": cfg,
        "n": setup.model.n(),
        "d": setup.model.d(),
        "m": setup.model.m(),
    }));
    Ok(GapReport {
        optimizer: cfg.optimizer,
        t_end: cfg.t_end,
        rows,
        orders,
        modes_eta,
        modes,
        caption,
    })
}

/// The outputs Delta_k of the twin of `setting` on the network from W0, at its iterates
/// with t_k <= `t_end` (x_k for the Nesterov twins); stops where the twin diverged.
pub fn twin_outputs(
    model: &crate::model::Model,
    w0: &nalgebra::DMatrix<f64>,
    setting: &Setting,
    t_end: f64,
) -> Vec<nalgebra::DVector<f64>> {
    let mut deltas = Vec::new();
    crate::optimizer::twin::run_watching(
        model,
        w0,
        setting.twin(),
        setting.eta,
        t_end,
        &mut |_, w| deltas.push(model.residual(&w.as_view())),
    );
    deltas
}

/// The outputs Delta(t) of the weight-space ODE of `setting` at `resolution` from W0 at
/// `times` (ascending, from [`Setting::start_time`]): by the runs' output-space held-pattern
/// steps, at high resolution of the Hessian-free forms
/// ([`crate::dynamics::high_resolution::output_space`]; for gf the IGR flow, the modified
/// flow with kappa = eta/2), or with full gradients per stage where u is not linear in W on
/// a held pattern (a trained output layer) or without kinks.
pub fn weight_outputs(
    model: &crate::model::Model,
    w0: &nalgebra::DMatrix<f64>,
    setting: &Setting,
    resolution: Resolution,
    times: &[f64],
    settings: &crate::integrate::SolverSettings,
) -> Option<Vec<nalgebra::DVector<f64>>> {
    use crate::dynamics::{Flow, WeightSpace};
    let space = WeightSpace::new(model);
    let dim = model.m() * model.columns();
    let mut out = Vec::with_capacity(times.len());
    let observe = |_: f64, y: &nalgebra::DVector<f64>| {
        out.push(model.residual(&model.weights(&y.as_slice()[..dim])));
        true
    };
    let relu = model.activation().switching();
    match resolution {
        Resolution::Low => {
            let flow = Flow::new(&space, setting.damping);
            let y0 = flow.initial_state(w0.as_slice());
            if relu {
                crate::dynamics::output_space::integrate_output_space(
                    model,
                    setting.damping,
                    y0,
                    times,
                    settings,
                    crate::dynamics::output_space::Crossings::Corrected,
                    observe,
                );
            } else {
                crate::integrate::integrate_held(flow, y0, times, settings, observe);
            }
        }
        Resolution::High => {
            let flow = crate::dynamics::high_resolution::HighFlow::new(&space, setting);
            let (_, y0) = flow.initial(setting, w0.as_slice());
            if relu && !model.train().output_layer() {
                // The runs' held-pattern steps in output space.
                crate::dynamics::high_resolution::output_space::integrate_high_output_space(
                    model,
                    flow.form,
                    y0,
                    times,
                    settings,
                    |_| {},
                    observe,
                );
            } else if setting.damping == crate::dynamics::Damping::None {
                // IGR: the modified flow with kappa = eta/2.
                let space = crate::dynamics::modified_flow::ModifiedWeightSpace::new(
                    model,
                    setting.eta / 2.0,
                );
                let flow = Flow::new(&space, setting.damping);
                crate::integrate::integrate_held(flow, y0, times, settings, observe);
            } else {
                crate::integrate::integrate_held(flow, y0, times, settings, observe);
            }
        }
    }
    Some(out)
}

/// The gap of the twin of `setting` on the network to its weight-space ODE at `resolution`,
/// in the outputs (gap_delta = max_k |Delta_k - Delta(t_k)|/|Delta_0|, gap_loss likewise
/// with L), over the iterates with t_k <= T (an Option for an ODE without a weight-space
/// form; every optimizer has one at both resolutions).
pub fn weight_space_gap(
    cfg: &RunConfig,
    setup: &crate::study::Setup,
    setting: &Setting,
    resolution: Resolution,
) -> Option<Gap> {
    let model = &setup.model;
    let twin = twin_outputs(model, &setup.w0, setting, cfg.t_end);
    let first = setting.first(resolution);
    let times: Vec<f64> = (first..twin.len())
        .map(|k| setting.time(k, resolution))
        .collect();
    let ode = weight_outputs(
        model,
        &setup.w0,
        setting,
        resolution,
        &times,
        &cfg.solver_settings(),
    )?;
    let norm0 = twin.first().map_or(f64::NAN, |d| d.norm());
    let loss0 = 0.5 * norm0 * norm0;
    let (mut gap_delta, mut gap_loss) = (0.0f64, 0.0f64);
    for (k, o) in (first..).zip(&ode) {
        gap_delta = gap_delta.max((&twin[k] - o).norm() / norm0);
        let (lk, lt) = (0.5 * twin[k].norm_squared(), 0.5 * o.norm_squared());
        gap_loss = gap_loss.max((lk - lt).abs() / loss0);
    }
    Some(Gap {
        resolution,
        eta: setting.eta,
        h: setting.h(),
        gap_delta,
        gap_loss,
    })
}

/// The fitted orders of each (space, resolution) present in `rows`.
pub fn orders(rows: &[GapRow]) -> Vec<Order> {
    let mut keys: Vec<(&'static str, Resolution)> = Vec::new();
    for r in rows {
        if !keys.contains(&(r.space, r.resolution)) {
            keys.push((r.space, r.resolution));
        }
    }
    keys.into_iter()
        .map(|(space, resolution)| {
            let sel: Vec<&GapRow> = rows
                .iter()
                .filter(|r| r.space == space && r.resolution == resolution)
                .collect();
            let h: Vec<f64> = sel.iter().map(|r| r.h).collect();
            let d: Vec<f64> = sel.iter().map(|r| r.gap_delta).collect();
            let l: Vec<f64> = sel.iter().map(|r| r.gap_loss).collect();
            Order {
                space,
                resolution,
                order_delta: fitted_order(&h, &d),
                order_loss: fitted_order(&h, &l),
            }
        })
        .collect()
}

/// gap.csv.
pub fn to_csv(rows: &[GapRow]) -> String {
    let mut out = String::from("space,resolution,eta,h,gap_delta,gap_loss\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.space,
            r.resolution.name(),
            crate::io::format_f64(r.eta),
            crate::io::format_f64(r.h),
            crate::io::format_f64(r.gap_delta),
            crate::io::format_f64(r.gap_loss)
        ));
    }
    out
}

/// The panel of one optimizer: gap_delta against h on log-log axes, one series per
/// (space, resolution) with its fitted slope in the legend, and the reference slopes 1 and 2
/// through the smallest h of the low and the high series (where the order is asymptotic).
pub fn panel(report: &GapReport) -> Figure {
    let o = report.optimizer;
    let mut fig = Figure::new(
        &format!("{}: twin against its ODE", o.method().label()),
        "clock step h",
        "max_k |Δ_k − Δ(t_k)| / |Δ_0|",
    );
    fig.log_x = true;
    fig.log_y = true;
    fig.legend = Legend::LowerRight;
    fig.caption = report.caption.clone();
    for order in &report.orders {
        let pts: Vec<(f64, f64)> = report
            .rows
            .iter()
            .filter(|r| r.space == order.space && r.resolution == order.resolution)
            .map(|r| (r.h, r.gap_delta))
            .collect();
        let Some(&(x0, y0)) = pts.iter().min_by(|a, b| a.0.total_cmp(&b.0)) else {
            continue;
        };
        let (dash, reference) = match (order.resolution, order.space) {
            (Resolution::Low, "weight") => (Dash::Markers, 1.0),
            (Resolution::Low, _) => (Dash::Solid, 1.0),
            (Resolution::High, "weight") => (Dash::Dotted, 2.0),
            (Resolution::High, _) => (Dash::Dashed, 2.0),
        };
        // With weight space beside error space, each label names its space.
        let space = if report.orders.iter().any(|o| o.space != order.space) {
            format!("{} space, ", order.space)
        } else {
            String::new()
        };
        fig.series.push(Series {
            label: format!(
                "{space}{} resolution: slope {:.2}",
                order.resolution.name(),
                order.order_delta
            ),
            points: pts.clone(),
            color: color(o),
            dash,
            band: Vec::new(),
        });
        let xmax = pts.iter().map(|p| p.0).fold(0.0, f64::max);
        fig.series.push(Series {
            label: format!("slope {reference}"),
            points: [x0, xmax]
                .iter()
                .map(|&x| (x, y0 * (x / x0).powf(reference)))
                .collect(),
            color: BOUND_COLOR,
            dash: Dash::Dotted,
            band: Vec::new(),
        });
    }
    fig
}

/// modes.csv: one row per eigenvalue of the kernel at the largest eta.
pub fn modes_csv(rows: &[ModeRow]) -> String {
    let mut out = MODES_COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{},{}\n",
            crate::io::format_f64(r.lambda),
            r.regime,
            crate::io::format_f64(r.rate_twin),
            crate::io::format_f64(r.rate_low),
            crate::io::format_f64(r.rate_high),
            r.stable
        ));
    }
    out
}

/// modes.svg: each mode's decay rate against lambda (log-log): the twin's -ln|r_max|/h
/// (markers), the low- (solid) and the high-resolution ODE's (dashed).
pub fn modes_panel(report: &GapReport) -> Figure {
    let o = report.optimizer;
    let mut fig = Figure::new(
        &format!(
            "{}: decay rate per mode at η = {}",
            o.method().label(),
            crate::io::format_f64(report.modes_eta)
        ),
        "eigenvalue λ of H",
        "decay rate per unit time",
    );
    fig.log_x = true;
    fig.log_y = true;
    fig.legend = Legend::LowerRight;
    fig.caption = report.caption.clone();
    let pick = |f: fn(&ModeRow) -> f64| -> Vec<(f64, f64)> {
        report
            .modes
            .iter()
            .filter(|r| r.lambda > 0.0 && f(r) > 0.0)
            .map(|r| (r.lambda, f(r)))
            .collect()
    };
    for (label, f, dash, col) in [
        (
            "twin −ln|r_max|/h",
            (|r: &ModeRow| r.rate_twin) as fn(&ModeRow) -> f64,
            Dash::Markers,
            color(o),
        ),
        (
            "low-resolution ODE",
            |r| r.rate_low,
            Dash::Solid,
            BOUND_COLOR,
        ),
        (
            "high-resolution ODE",
            |r| r.rate_high,
            Dash::Dashed,
            color(o),
        ),
    ] {
        let points = pick(f);
        if !points.is_empty() {
            fig.series.push(Series {
                label: label.into(),
                points,
                color: col,
                dash,
                band: Vec::new(),
            });
        }
    }
    fig
}

/// summary.json of a gap study: the optimizer, T, the rows and the fitted orders.
pub fn summary_json(report: &GapReport) -> String {
    let value = serde_json::json!({ "gap": report });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Write gap.csv, gap.svg and summary.json of `report` into `dir` as one whole run.
pub fn write(report: &GapReport, dir: &Path, force: bool) -> Result<Vec<PathBuf>, Error> {
    let mut claim = Claim::replace(dir, &GAP_FILES, &[], force)?;
    put(report, &mut claim)?;
    Ok(claim.commit()?.written)
}

/// Put the gap files into a claim already made (the command line claims before it computes);
/// a figure that cannot be drawn is left out, the data stand.
pub fn put(report: &GapReport, claim: &mut Claim) -> Result<(), Error> {
    claim.put("gap.csv", to_csv(&report.rows).as_bytes())?;
    claim.put("modes.csv", modes_csv(&report.modes).as_bytes())?;
    claim.put("summary.json", summary_json(report).as_bytes())?;
    if let Ok(svg) = plot::try_render_grid(&[panel(report)], 1) {
        claim.put("gap.svg", svg.as_bytes())?;
    }
    if let Ok(svg) = plot::try_render_grid(&[modes_panel(report)], 1) {
        claim.put("modes.svg", svg.as_bytes())?;
    }
    Ok(())
}
