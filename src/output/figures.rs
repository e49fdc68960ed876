//! The figures of a run, drawn from its tables alone, so that `ntkdyn plot DIR` renders from
//! the CSV files exactly what the run wrote.

use std::path::Path;

use crate::dynamics::Damping;
use crate::error::{InputError, OutputError};
use crate::io::Table;
use crate::optimizer::Optimizer;
use crate::output::plot::{self, Dash, Figure, Legend, Series};
use crate::output::style::OptimizerColor;
pub use crate::output::style::Style;
use crate::output::summary::{DampingRecord, Summary};
use crate::study::Report;

/// The tables a run's figures are drawn from: what `ntkdyn plot DIR` reads back.
#[derive(Clone, Debug)]
pub struct RunTables {
    pub optimizer: Optimizer,
    pub weight: Option<Table>,
    pub error: Option<Table>,
    pub discrete: Option<Table>,
    pub discrete_label: Option<String>,
    /// HBF: the rate s of the envelope exp(-s t) V(0).
    pub envelope_rate: Option<f64>,
    pub subtitle: String,
}

pub(crate) fn series(
    table: &Table,
    y: &str,
    label: &str,
    color: plotters::style::RGBColor,
    dash: Dash,
) -> Series {
    let t = table.column("t").unwrap_or_default();
    let v = table.column(y).unwrap_or_default();
    Series {
        label: label.into(),
        points: t.into_iter().zip(v).collect(),
        color,
        dash,
        band: Vec::new(),
    }
}

impl RunTables {
    /// The tables of a run in memory.
    pub fn from_report(report: &Report) -> RunTables {
        RunTables {
            optimizer: report.config.optimizer,
            weight: report.weight.as_ref().map(|r| r.table.clone()),
            error: report.error.as_ref().map(|r| r.table.clone()),
            discrete: report.discrete_table(),
            discrete_label: report
                .discrete
                .as_ref()
                .map(|d| discrete_label(d.twin.name(), d.eta)),
            envelope_rate: match report.damping {
                Damping::Constant(b) => Some(b / 2.0),
                _ => None,
            },
            subtitle: subtitle(
                report.setup.model.n(),
                report.setup.model.d(),
                report.setup.model.m(),
            ),
        }
    }

    /// The tables of a run read back from its directory (CSV files and summary.json).
    pub fn read(dir: &Path) -> Result<RunTables, InputError> {
        let summary = Summary::read(dir)?;
        let optimizer = Optimizer::from_name(&summary.command).ok_or_else(|| InputError::File {
            path: dir.join("summary.json"),
            msg: format!("unknown command {:?}", summary.command),
        })?;
        let table = |name: &str| -> Result<Option<Table>, InputError> {
            let p = dir.join(name);
            if p.exists() {
                Table::read(&p).map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(RunTables {
            optimizer,
            weight: table("weight.csv")?,
            error: table("error.csv")?,
            discrete: table("discrete.csv")?,
            discrete_label: summary
                .discrete
                .as_ref()
                .map(|d| discrete_label(&d.name, d.eta)),
            envelope_rate: match summary.damping {
                DampingRecord::Constant(b) => Some(b / 2.0),
                _ => None,
            },
            subtitle: subtitle(summary.n, summary.d, summary.m),
        })
    }
}

fn discrete_label(name: &str, eta: f64) -> String {
    let short = eta.to_string();
    if short.len() <= 7 {
        format!("{name} (η = {short})")
    } else {
        format!("{name} (η = {eta:.4})")
    }
}

fn subtitle(n: usize, d: usize, m: usize) -> String {
    format!("n = {n}, d = {d}, m = {m}")
}

/// Render every figure of a run as (file name, SVG bytes).
pub fn render(
    tables: &RunTables,
    style: &Style,
    dir: &Path,
) -> Result<Vec<(String, Vec<u8>)>, OutputError> {
    figures(tables, style)
        .into_iter()
        .map(|(name, panels)| {
            plot::render_svg(&panels)
                .map(|svg| (name.clone(), svg.into_bytes()))
                .map_err(|msg| OutputError::Plot {
                    path: dir.join(&name),
                    msg,
                })
        })
        .collect()
}

/// The figures of a run: loss.svg, lyapunov.svg and (weight space) kernel.svg.
pub fn figures(tables: &RunTables, style: &Style) -> Vec<(String, Vec<Figure>)> {
    let opt = tables.optimizer;
    let color = opt.color();
    let mut out = Vec::new();

    let mut loss = Figure::new(
        &format!("{}: loss ({})", opt.title(), tables.subtitle),
        "time t  (discrete twin: iterate k at its clock t_k)",
        "loss L(t) = ½|u − y|²",
    );
    loss.log_y = true;
    loss.legend = Legend::Auto;
    if let Some(w) = &tables.weight {
        loss.series
            .push(series(w, "loss", "weight space", color, Dash::Solid));
    }
    if let Some(e) = &tables.error {
        loss.series.push(series(
            e,
            "loss",
            "error space (fixed H)",
            color,
            Dash::Dashed,
        ));
    }
    if let Some(d) = &tables.discrete {
        let label = tables
            .discrete_label
            .clone()
            .unwrap_or_else(|| "discrete".into());
        loss.series
            .push(series(d, "loss", &label, plot::EXTRA_COLOR, Dash::Markers));
    }
    if let Some(b) = tables.weight.as_ref().or(tables.error.as_ref()) {
        let which = if tables.weight.is_some() {
            "weight"
        } else {
            "error"
        };
        let text = opt.method().bound_label();
        loss.series.push(series(
            b,
            "loss_bound",
            &format!("{text}, {which} space"),
            plot::BOUND_COLOR,
            Dash::Dashed,
        ));
    }
    if let Some(d) = tables
        .discrete
        .as_ref()
        .filter(|d| d.column("pl_envelope").is_some())
    {
        loss.series.push(series(
            d,
            "pl_envelope",
            "PL* envelope (1 − ημ)^k L(0)",
            plot::BOUND_COLOR,
            Dash::Dotted,
        ));
    }
    if let Some(title) = &style.title {
        loss.title = title.clone();
    }
    out.push(("loss.svg".to_string(), vec![loss]));

    let mut lyap = Figure::new(
        &format!("{}: Lyapunov function", opt.title()),
        "time t",
        opt.method().lyapunov_label(),
    );
    lyap.log_y = true;
    for (table, label, dash) in [
        (&tables.weight, "weight space", Dash::Solid),
        (&tables.error, "error space (fixed H)", Dash::Dashed),
    ] {
        let Some(table) = table else { continue };
        lyap.series
            .push(series(table, "lyapunov", label, color, dash));
        if let (Some(s), Some(v0)) = (
            tables.envelope_rate,
            table.column("lyapunov").and_then(|v| v.first().copied()),
        ) {
            let t = table.column("t").unwrap_or_default();
            lyap.series.push(Series {
                label: format!(
                    "e^(−bt/2) V(0), {}",
                    label.split_whitespace().next().unwrap_or(label)
                ),
                points: t.into_iter().map(|t| (t, v0 * (-s * t).exp())).collect(),
                color: plot::BOUND_COLOR,
                dash,
                band: Vec::new(),
            });
        }
    }
    lyap.legend = Legend::Auto;
    out.push(("lyapunov.svg".to_string(), vec![lyap]));

    if let Some(w) = &tables.weight {
        let mut drift = Figure::new("Kernel drift", "time t", "‖H(t) − H(0)‖_F");
        drift.legend = Legend::LowerRight;
        drift.width = 480;
        drift.series.push(series(
            w,
            "kernel_drift",
            "weight space",
            color,
            Dash::Solid,
        ));
        let mut lmin = Figure::new("Smallest eigenvalue of H(t)", "time t", "λ_min(H(t))");
        lmin.legend = Legend::LowerRight;
        lmin.width = 480;
        lmin.series
            .push(series(w, "lambda_min", "weight space", color, Dash::Solid));
        out.push(("kernel.svg".to_string(), vec![drift, lmin]));
        if w.column("test_gap").is_some() {
            let mut gap = Figure::new(
                "Network against its kernel predictor on held-out points",
                "time t",
                "RMS of f(W(t); x) − f*_t(x)",
            );
            gap.legend = Legend::LowerRight;
            gap.series
                .push(series(w, "test_gap", "weight space", color, Dash::Solid));
            out.push(("test_gap.svg".to_string(), vec![gap]));
        }
    }
    for (_, panels) in out.iter_mut() {
        for fig in panels.iter_mut() {
            style.apply(fig);
        }
    }
    out
}

/// `ntkdyn compare`: the losses of every optimizer run on one figure, one color per optimizer,
/// weight space solid, error space dashed, discrete twin with markers, on the shared clock t.
pub fn compare_figure(runs: &[RunTables], style: &Style) -> Figure {
    let subtitle = runs.first().map(|r| r.subtitle.clone()).unwrap_or_default();
    let names: Vec<String> = runs.iter().map(|r| r.optimizer.method().label()).collect();
    let listed = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    };
    let mut fig = Figure::new(
        &format!("Loss of {listed} ({subtitle})"),
        "time t  (discrete twins: iterate k at its clock t_k)",
        "loss L(t) = ½|u − y|²",
    );
    fig.log_y = true;
    fig.legend = Legend::Auto;
    fig.width = 760;
    fig.height = 520;
    for r in runs {
        let name = r.optimizer.method().label();
        let color = r.optimizer.color();
        if let Some(w) = &r.weight {
            fig.series.push(series(
                w,
                "loss",
                &format!("{name}, weight space"),
                color,
                Dash::Solid,
            ));
        }
        if let Some(e) = &r.error {
            fig.series.push(series(
                e,
                "loss",
                &format!("{name}, error space"),
                color,
                Dash::Dashed,
            ));
        }
        if let (Some(d), Some(label)) = (&r.discrete, &r.discrete_label) {
            fig.series
                .push(series(d, "loss", label, color, Dash::Markers));
        }
    }
    if let Some(title) = &style.title {
        fig.title = title.clone();
    }
    style.apply(&mut fig);
    fig
}
