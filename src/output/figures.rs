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
    // issue 19: sharpness
    /// The twin's stability edge ([`crate::optimizer::Method::stability_edge`]) and its
    /// legend label.
    pub stability_edge: Option<(f64, String)>,
    /// lambda_max(H(0)), drawn when weight.csv has no `lambda_max` column.
    pub h0_lambda_max: Option<f64>,
    // issue 19: resolution
    /// lyapunov.svg's y label when the run's function is a high-resolution energy.
    pub lyapunov_label: Option<&'static str>,
}

/// The provenance of a run as one line: the data, m, T and (with a twin) eta
/// ([`provenance`] of its summary.json).
pub fn caption(summary: &Summary) -> String {
    provenance(&serde_json::to_value(summary).unwrap_or_default())
}

/// The provenance line of a figure, read from the JSON a command wrote beside it
/// (summary.json of a run or of sgd, sweep.json): the data (file, or synthetic n and d), m
/// (a sweep's widths), T, eta when a discrete process ran (a run's twin, sgd), and the
/// activation and the trained layers when they are not the defaults (relu, W alone). A key
/// that is missing is left out, so that folders of older versions still plot.
pub fn provenance(v: &serde_json::Value) -> String {
    let cfg = &v["config"];
    let count = |key: &str| v[key].as_u64().map_or("?".to_string(), |k| k.to_string());
    let (n, d) = (count("n"), count("d"));
    let data = match cfg["data"]
        .as_str()
        .and_then(|p| Path::new(p).file_name())
        .map(|f| f.to_string_lossy().into_owned())
    {
        Some(name) => format!("data {name} (n = {n}, d = {d})"),
        None => format!("synthetic data n = {n}, d = {d}"),
    };
    let widths: Vec<u64> = v["widths"]
        .as_array()
        .map(|w| w.iter().filter_map(|m| m.as_u64()).collect())
        .unwrap_or_default();
    let m = match (widths.first(), widths.last()) {
        (Some(lo), Some(hi)) if widths.len() > 1 => format!("m = {lo} to {hi}"),
        _ => format!("m = {}", count("m")),
    };
    let mut out = format!("{data} · {m}");
    if let Some(t) = cfg["t_end"].as_f64().or_else(|| v["t_end"].as_f64()) {
        out.push_str(&format!(" · T = {t}"));
    }
    let eta = match v["command"].as_str() {
        Some("sgd") => v["eta"].as_f64(),
        _ => v["discrete"]["eta"].as_f64(),
    };
    if let Some(eta) = eta {
        out.push_str(&format!(" · η = {}", short(eta)));
    }
    // issue 19: resolution
    if cfg["resolution"].as_str() == Some("high") {
        out.push_str(" · high-resolution ODEs");
    }
    // issue 17: the model, when it is not the default.
    if let Some(a) = cfg["activation"].as_str().filter(|a| *a != "relu") {
        out.push_str(&format!(" · activation {a}"));
    }
    match cfg["train"].as_str().or_else(|| v["train"].as_str()) {
        None | Some("w") => {}
        Some("wa") => out.push_str(" · both layers trained"),
        Some(t) => out.push_str(&format!(" · train {t}")),
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

/// The parts of [`RunTables`] that come from the summary.
struct Context {
    caption: String,
    lambda0: Option<f64>,
    twin_clock: Option<(String, String)>,
    diverged_at: Option<f64>,
    stability_edge: Option<(f64, String)>,
    h0_lambda_max: Option<f64>,
    lyapunov_label: Option<&'static str>,
}

/// The parts of [`RunTables`] that come from the summary.
fn context(summary: &Summary) -> Context {
    let edge = summary.discrete.as_ref().and_then(|d| {
        let e = d
            .method
            .optimizer
            .method()
            .stability_edge(d.method.parameter, d.eta)?;
        let label = format!(
            "stability edge of {}: {} = {}",
            d.name,
            e.formula,
            plot::tick_text(e.value)
        );
        (e.value.is_finite() && e.value > 0.0).then_some((e.value, label))
    });
    Context {
        caption: caption(summary),
        lambda0: summary.lambda0.is_finite().then_some(summary.lambda0),
        twin_clock: summary
            .discrete
            .as_ref()
            .map(|d| (d.name.clone(), clock_text(&d.clock))),
        diverged_at: summary.discrete.as_ref().and_then(|d| d.diverged_at),
        stability_edge: edge,
        h0_lambda_max: Some(summary.h0.lambda_max).filter(|l| l.is_finite() && *l > 0.0),
        lyapunov_label: summary
            .weight
            .as_ref()
            .or(summary.error.as_ref())
            .and_then(|s| s.lyapunov.function.high_label()),
    }
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
        let c = context(&Summary::of(report));
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
            caption: c.caption,
            lambda0: c.lambda0,
            twin_clock: c.twin_clock,
            diverged_at: c.diverged_at,
            stability_edge: c.stability_edge,
            h0_lambda_max: c.h0_lambda_max,
            lyapunov_label: c.lyapunov_label,
        }
    }

    /// The tables of a run read back from its directory (CSV files and summary.json).
    pub fn read(dir: &Path) -> Result<RunTables, InputError> {
        let summary = Summary::read(dir)?;
        let optimizer = Optimizer::from_name(&summary.command).ok_or_else(|| InputError::File {
            path: dir.join("summary.json"),
            msg: format!("unknown command {:?}", summary.command),
        })?;
        let c = context(&summary);
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
            caption: c.caption,
            lambda0: c.lambda0,
            twin_clock: c.twin_clock,
            diverged_at: c.diverged_at,
            stability_edge: c.stability_edge,
            h0_lambda_max: c.h0_lambda_max,
            lyapunov_label: c.lyapunov_label,
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
        tables
            .lyapunov_label
            .unwrap_or(opt.method().lyapunov_label()),
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
        let mut panels = vec![drift, lmin];
        panels.extend(sharpness(tables, w, color, style));
        out.push(("kernel.svg".to_string(), panels));
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

// issue 19: sharpness
/// The third panel of kernel.svg: lambda_max(H(t)) (weight.csv's `lambda_max`, when the run
/// wrote it; otherwise lambda_max(H(0)) as a reference line) against the twin's stability
/// edge, on a log axis (the edge of a small step is two decades above the spectrum). None
/// without a twin and without the column: nothing to compare.
fn sharpness(tables: &RunTables, w: &Table, color: RGBColor, style: &Style) -> Option<Figure> {
    let column = w.column("lambda_max").is_some();
    if tables.stability_edge.is_none() && !column {
        return None;
    }
    let mut fig = Figure::new(
        "Sharpness and the twin's stability edge",
        "time t",
        "eigenvalue of H",
    );
    fig.caption = tables.caption.clone();
    fig.width = 560;
    fig.log_y = true;
    if column {
        fig.series
            .push(series(w, "lambda_max", "λ_max(H(t))", color, Dash::Solid));
    } else if let Some(l) = tables.h0_lambda_max {
        // A line over the run's times (not a reference line) so that the time axis is the
        // run's, as on the other panels.
        let t = w.column("t").unwrap_or_default();
        fig.series.push(Series {
            label: format!("λ_max(H(0)) = {}", plot::tick_text(l)),
            points: t.into_iter().map(|t| (t, l)).collect(),
            color,
            dash: Dash::Dashed,
            band: Vec::new(),
        });
    }
    if let Some((edge, label)) = &tables.stability_edge {
        fig.hlines.push(RefLine {
            y: *edge,
            label: label.clone(),
            color: plot::EXTRA_COLOR,
        });
    }
    style.apply(&mut fig);
    Some(fig)
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
