//! The figures of a run, drawn from its tables alone, so that `ntkdyn plot DIR` renders from
//! the CSV files exactly what the run wrote.

use std::path::Path;

use crate::dynamics::Damping;
use crate::error::{InputError, OutputError};
use crate::io::Table;
use crate::optimizer::Optimizer;
use crate::output::plot::{self, Dash, Figure, RGBColor, RefLine, Series};
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
    // issue 16: provenance, reference lines, the twin's clock, divergence
    /// The caption under each title: the data (file, or synthetic n and d), m, T, eta.
    pub caption: String,
    /// lambda0 of the run (kernel.svg draws lambda0 and lambda0/2).
    pub lambda0: Option<f64>,
    /// The twin's name and clock ("GD", "t = kη").
    pub twin_clock: Option<(String, String)>,
    /// When the twin's loss blew up (its curve is clipped at the axis top).
    pub diverged_at: Option<f64>,
}

/// The provenance of a run as one line: the data, m, T and (with a twin) eta.
pub fn caption(summary: &Summary) -> String {
    let cfg = &summary.config;
    let data = match cfg.data.as_deref().and_then(|p| p.file_name()) {
        Some(name) => format!(
            "data {} (n = {}, d = {})",
            name.to_string_lossy(),
            summary.n,
            summary.d
        ),
        None => format!("synthetic data n = {}, d = {}", summary.n, summary.d),
    };
    let mut out = format!("{data} · m = {} · T = {}", summary.m, cfg.t_end);
    // issue 19: resolution
    if cfg.resolution == crate::theory::high_resolution::Resolution::High {
        out.push_str(" · high-resolution ODEs");
    }
    if let Some(d) = &summary.discrete {
        out.push_str(&format!(" · η = {}", short(d.eta)));
    }
    out
}

/// A number in at most about 7 characters.
fn short(v: f64) -> String {
    let s = v.to_string();
    if s.len() <= 7 {
        s
    } else {
        format!("{v:.4e}")
    }
}

/// A clock as the figures write it: "t = k eta" as "t = kη", "t = k sqrt(eta)" as "t = k√η".
pub fn clock_text(clock: &str) -> String {
    clock.replace(" sqrt(eta)", "√η").replace(" eta", "η")
}

/// The parts of [`RunTables`] that come from the summary: caption, lambda0, the twin's name
/// and clock, when it diverged.
type Context = (String, Option<f64>, Option<(String, String)>, Option<f64>);

/// The parts of [`RunTables`] that come from the summary.
fn context(summary: &Summary) -> Context {
    (
        caption(summary),
        summary.lambda0.is_finite().then_some(summary.lambda0),
        summary
            .discrete
            .as_ref()
            .map(|d| (d.name.clone(), clock_text(&d.clock))),
        summary.discrete.as_ref().and_then(|d| d.diverged_at),
    )
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
        let (caption, lambda0, twin_clock, diverged_at) = context(&Summary::of(report));
        RunTables {
            optimizer: report.config.optimizer,
            weight: report.weight.as_ref().map(|r| r.table.clone()),
            error: report.error.as_ref().map(|r| r.table.clone()),
            discrete: report.discrete_table(),
            discrete_label: report
                .discrete
                .as_ref()
                .map(|d| discrete_label(d.twin.name(), d.eta)),
            // issue 19: resolution (the high-resolution energy has another envelope)
            envelope_rate: match report.damping {
                Damping::Constant(b)
                    if report.config.resolution
                        == crate::theory::high_resolution::Resolution::Low =>
                {
                    Some(b / 2.0)
                }
                _ => None,
            },
            subtitle: subtitle(
                report.setup.model.n(),
                report.setup.model.d(),
                report.setup.model.m(),
            ),
            caption,
            lambda0,
            twin_clock,
            diverged_at,
        }
    }

    /// The tables of a run read back from its directory (CSV files and summary.json).
    pub fn read(dir: &Path) -> Result<RunTables, InputError> {
        let summary = Summary::read(dir)?;
        let optimizer = Optimizer::from_name(&summary.command).ok_or_else(|| InputError::File {
            path: dir.join("summary.json"),
            msg: format!("unknown command {:?}", summary.command),
        })?;
        let (caption, lambda0, twin_clock, diverged_at) = context(&summary);
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
                DampingRecord::Constant(b)
                    if summary.config.resolution
                        == crate::theory::high_resolution::Resolution::Low =>
                {
                    Some(b / 2.0)
                }
                _ => None,
            },
            subtitle: subtitle(summary.n, summary.d, summary.m),
            caption,
            lambda0,
            twin_clock,
            diverged_at,
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

/// Render every figure of a run as (file name, bytes) in the style's format.
pub fn render(
    tables: &RunTables,
    style: &Style,
    dir: &Path,
) -> Result<Vec<(String, Vec<u8>)>, OutputError> {
    figures(tables, style)
        .into_iter()
        .map(|(name, panels)| {
            let file = style.file_name(&name);
            plot::try_render_grid(&panels, panels.len().max(1))
                .and_then(|svg| style.format.encode(&svg))
                .map(|bytes| (file.clone(), bytes))
                .map_err(|e| OutputError::Plot {
                    path: dir.join(&file),
                    msg: e.to_string(),
                })
        })
        .collect()
}

/// The x label of a loss figure: time, and the clock each twin's iterates are drawn at.
fn time_label(clocks: &[(String, String)]) -> String {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, clock) in clocks {
        match groups.iter_mut().find(|(c, _)| c == clock) {
            Some((_, names)) => {
                if !names.contains(name) {
                    names.push(name.clone())
                }
            }
            None => groups.push((clock.clone(), vec![name.clone()])),
        }
    }
    if groups.is_empty() {
        return "time t".into();
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(clock, names)| format!("{} at {clock}", names.join(", ")))
        .collect();
    format!("time t  (iterate k of {})", parts.join("; "))
}

/// How far above its start L(0) a twin's loss must rise to be drawn as diverged.
pub const BLOW_UP: f64 = 10.0;

/// When the twin diverged: as the run recorded it, or the first time its loss exceeds
/// [`BLOW_UP`] L(0) (an unstable step grows the loss geometrically without making it
/// non-finite within T: GD with eta = 1.5 > 2/lambda_max reached 1e7 and set the axis).
pub fn diverged_at(tables: &RunTables) -> Option<f64> {
    tables.diverged_at.or_else(|| {
        let d = tables.discrete.as_ref()?;
        let t = d.column("t")?;
        let loss = d.column("loss")?;
        let l0 = *loss.first()?;
        t.into_iter()
            .zip(loss)
            .find(|&(_, l)| l.is_nan() || l > BLOW_UP * l0)
            .map(|(t, _)| t)
    })
}

/// The twin's legend label, with the time its loss blew up.
fn twin_label(tables: &RunTables) -> String {
    let label = tables
        .discrete_label
        .clone()
        .unwrap_or_else(|| "discrete".into());
    match diverged_at(tables) {
        Some(t) => format!("{label}, diverged at t = {}", short(t)),
        None => label,
    }
}

/// The figures of a run: loss.svg, lyapunov.svg and (weight space) kernel.svg.
pub fn figures(tables: &RunTables, style: &Style) -> Vec<(String, Vec<Figure>)> {
    let opt = tables.optimizer;
    let color = opt.color();
    let mut out = Vec::new();
    let clocks: Vec<(String, String)> = tables.twin_clock.iter().cloned().collect();

    let mut loss = Figure::new(
        &format!("{}: loss", opt.title()),
        &time_label(if tables.discrete.is_some() {
            &clocks
        } else {
            &[]
        }),
        "loss L(t) = ½|u − y|²",
    );
    loss.caption = tables.caption.clone();
    loss.log_y = true;
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
        let twin = series(
            d,
            "loss",
            &twin_label(tables),
            plot::EXTRA_COLOR,
            Dash::Markers,
        );
        // A diverged twin does not set the axis: it is drawn up to the axis top.
        if diverged_at(tables).is_some() {
            loss.clipped.push(twin);
        } else {
            loss.series.push(twin);
        }
    }
    if let Some(b) = tables.weight.as_ref().or(tables.error.as_ref()) {
        let which = if tables.weight.is_some() {
            "weight"
        } else {
            "error"
        };
        let text = opt.method().bound_label();
        loss.clipped.push(series(
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
        loss.clipped.push(series(
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
    style.apply_with_limits(&mut loss);
    out.push(("loss.svg".to_string(), vec![loss]));

    let mut lyap = Figure::new(
        &format!("{}: Lyapunov function", opt.title()),
        "time t",
        opt.method().lyapunov_label(),
    );
    lyap.caption = tables.caption.clone();
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
            lyap.clipped.push(Series {
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
    style.apply(&mut lyap);
    out.push(("lyapunov.svg".to_string(), vec![lyap]));

    if let Some(w) = &tables.weight {
        let mut drift = Figure::new("Kernel drift", "time t", "‖H(t) − H(0)‖_F");
        drift.caption = tables.caption.clone();
        drift.width = 480;
        drift.series.push(series(
            w,
            "kernel_drift",
            "weight space",
            color,
            Dash::Solid,
        ));
        let mut lmin = Figure::new("Smallest eigenvalue of H(t)", "time t", "λ_min(H(t))");
        lmin.caption = tables.caption.clone();
        lmin.width = 560;
        lmin.series
            .push(series(w, "lambda_min", "weight space", color, Dash::Solid));
        if let Some(l0) = tables.lambda0 {
            lmin.hlines.push(RefLine {
                y: l0,
                label: format!("λ₀ = {}", plot::tick_text(l0)),
                color: RGBColor(40, 40, 40),
            });
            lmin.hlines.push(RefLine {
                y: l0 / 2.0,
                label: "λ₀/2".into(),
                color: plot::BOUND_COLOR,
            });
        }
        style.apply(&mut drift);
        style.apply(&mut lmin);
        out.push(("kernel.svg".to_string(), vec![drift, lmin]));
        if w.column("test_gap").is_some() {
            let mut gap = Figure::new(
                "Network against its kernel predictor on held-out points",
                "time t",
                "RMS of f(W(t); x) − f*_t(x)",
            );
            gap.caption = tables.caption.clone();
            gap.series
                .push(series(w, "test_gap", "weight space", color, Dash::Solid));
            style.apply(&mut gap);
            out.push(("test_gap.svg".to_string(), vec![gap]));
        }
    }
    out
}

/// `ntkdyn compare`: the losses of every optimizer run on one figure, one color per optimizer,
/// weight space solid, error space dashed, discrete twin with markers, on the shared clock t.
pub fn compare_figure(runs: &[RunTables], style: &Style) -> Figure {
    let caption = runs.first().map(|r| r.caption.clone()).unwrap_or_default();
    let names: Vec<String> = runs.iter().map(|r| r.optimizer.method().label()).collect();
    let listed = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    };
    let clocks: Vec<(String, String)> = runs
        .iter()
        .filter(|r| r.discrete.is_some())
        .filter_map(|r| r.twin_clock.clone())
        .collect();
    let mut fig = Figure::new(
        &format!("Loss of {listed}"),
        &time_label(&clocks),
        "loss L(t) = ½|u − y|²",
    );
    fig.caption = caption;
    fig.log_y = true;
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
        if let (Some(d), Some(_)) = (&r.discrete, &r.discrete_label) {
            let twin = series(d, "loss", &twin_label(r), color, Dash::Markers);
            if diverged_at(r).is_some() {
                fig.clipped.push(twin);
            } else {
                fig.series.push(twin);
            }
        }
    }
    if let Some(title) = &style.title {
        fig.title = title.clone();
    }
    style.apply_with_limits(&mut fig);
    fig
}
