//! `run.toml`: the configuration of a run as a `--config` file that reproduces it
//! (`ntkdyn gf --config DIR/run.toml --out OTHER` computes the same CSV files).
//!
//! Keys are option names; paths (data, init, test, times-file) are written absolute, since a
//! config's relative paths are taken from its own folder, which is the run's output folder.
//! `out` is left out (a rerun chooses its own folder), and so are quiet and force, which
//! change how a run reports, not what it computes.

use ntkdyn::study::RunConfig;
use std::path::Path;

/// A path as a TOML string: absolute (from the working directory), lossy where it is not
/// UTF-8 (TOML strings are).
fn path_value(p: &Path) -> toml::Value {
    let abs = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    toml::Value::String(abs.to_string_lossy().into_owned())
}

/// The run options of `cfg` as TOML key-value pairs, in the order `--help` lists them.
pub fn run_table(cfg: &RunConfig) -> toml::Table {
    use toml::Value::{Boolean, Float, Integer, String as Str};
    let mut t = toml::Table::new();
    let int = |v: u64| Integer(i64::try_from(v).unwrap_or(i64::MAX));
    t.insert("n".into(), int(cfg.n as u64));
    t.insert("d".into(), int(cfg.d as u64));
    t.insert("m".into(), int(cfg.m as u64));
    // Seeds above i64::MAX do not fit a TOML integer: written as a string, which the
    // option's own parser reads.
    t.insert(
        "seed".into(),
        i64::try_from(cfg.seed).map_or_else(|_| Str(cfg.seed.to_string()), Integer),
    );
    for (key, path) in [("data", &cfg.data), ("init", &cfg.init)] {
        if let Some(p) = path {
            t.insert(key.into(), path_value(p));
        }
    }
    t.insert("normalize".into(), Boolean(cfg.normalize));
    t.insert("space".into(), Str(cfg.space.name().into()));
    t.insert("kernel".into(), Str(cfg.kernel.name().into()));
    t.insert("activation".into(), Str(cfg.activation.name().into()));
    // issue 17: --train (only when not the default, so existing run.toml stay identical)
    if cfg.train.output_layer() {
        t.insert("train".into(), Str(cfg.train.name().into()));
    }
    t.insert("t-end".into(), Float(cfg.t_end));
    t.insert("samples".into(), int(cfg.samples as u64));
    // An explicit --solver keeps its ODE in stiff error space; the default may solve exactly.
    if cfg.solver_requested {
        t.insert("solver".into(), Str(cfg.solver.name().into()));
    }
    t.insert("rtol".into(), Float(cfg.rtol));
    t.insert("atol".into(), Float(cfg.atol));
    t.insert("step".into(), Float(cfg.step));
    for (key, v) in [
        ("max-step", cfg.max_step),
        ("friction", cfg.friction),
        ("lambda0", cfg.lambda0),
    ] {
        if let Some(v) = v {
            t.insert(key.into(), Float(v));
        }
    }
    t.insert("gamma".into(), Float(cfg.gamma));
    t.insert("alpha".into(), Float(cfg.alpha));
    t.insert(
        "eta".into(),
        if cfg.eta_auto {
            Str("auto".into())
        } else {
            Float(cfg.eta)
        },
    );
    t.insert("test-n".into(), int(cfg.test_n as u64));
    if let Some(p) = &cfg.test {
        t.insert("test".into(), path_value(p));
    }
    t.insert("no-discrete".into(), Boolean(!cfg.discrete));
    if let Some(l) = &cfg.label_column {
        t.insert("label-column".into(), Str(l.clone()));
    }
    t.insert("times".into(), Str(cfg.times.name().into()));
    if let Some(p) = &cfg.times_file {
        t.insert("times-file".into(), path_value(p));
    }
    // issue 19: --beta (only when given)
    if let Some(b) = cfg.beta {
        t.insert("beta".into(), Float(b));
    }
    // issue 19: resolution (written only when high, so that earlier run.toml stay as they were)
    if cfg.resolution != ntkdyn::theory::high_resolution::Resolution::Low {
        t.insert("resolution".into(), Str(cfg.resolution.name().into()));
    }
    t
}

/// The text of run.toml for `command` (gf, hbf, nagsc, nag, compare, sweep, sgd) run with
/// `cfg` and, for a sweep or sgd, its own keys `extra` (widths, seeds, optimizers; batch,
/// sampling, seeds, sde-substeps).
pub fn run_toml(command: &str, cfg: &RunConfig, extra: toml::Table) -> String {
    run_toml_without(command, cfg, extra, &[])
}

/// [`run_toml`] without the run options in `refused`: sgd refuses its run options that it
/// has no use for when they are given, a --config file's included.
pub fn run_toml_without(
    command: &str,
    cfg: &RunConfig,
    extra: toml::Table,
    refused: &[&str],
) -> String {
    let mut t = run_table(cfg);
    t.retain(|key, _| !refused.contains(&key));
    t.extend(extra);
    let body = toml::to_string(&t).unwrap_or_default();
    format!(
        "# ntkdyn {command} {}: the configuration of this run.\n# Reproduce it with: ntkdyn {command} --config run.toml --out OTHER_DIR\n{body}",
        env!("CARGO_PKG_VERSION")
    )
}
