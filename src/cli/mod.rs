//! The command line of the ntkdyn binary: parse ([`args`], [`config_file`]) into the
//! library's configurations, call the library, print ([`human`]) and show progress
//! ([`progress`]). Nothing in the library names this module, clap, indicatif or toml.

pub mod args;
pub mod config_file;
pub mod gap;
pub mod human;
pub mod progress;
pub mod run_toml;

use clap::Parser;
use std::ffi::OsString;

use args::{Cli, Command, PlotArgs, RunArgs, SgdArgs, SweepArgs};
use human::{human_summary, names, say, sayln};
use ntkdyn::error::{Error, InputError, OutputError};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::outdir::{self, Claim};
use ntkdyn::output::aliasing;
use ntkdyn::output::figures::{self, RunTables};
use ntkdyn::output::files;
use ntkdyn::output::plot;
use ntkdyn::output::replot;
use ntkdyn::output::style::Style;
use ntkdyn::study::{self, RunConfig};
use ntkdyn::sweep;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A command line that could not be turned into a [`Cli`].
#[derive(Debug, thiserror::Error)]
pub enum ParseFailure {
    /// clap's own error (also --help and --version, which it prints itself).
    #[error("{0}")]
    Clap(clap::Error),
    /// The --config file could not be read.
    #[error("{0}")]
    Config(InputError),
    /// Options that contradict each other (run options given with `sweep --merge`).
    #[error("{0}")]
    Conflict(InputError),
}

/// Parse the command line, with the options of `--config FILE.toml` inserted before those
/// given on the command line. Arguments stay `OsString`s end to end, so that `--out` and the
/// file options name exactly the bytes given.
pub fn parse_args<I, T>(args: I) -> Result<Cli, ParseFailure>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let args = match config_file::config_path(&args) {
        Some(path) => config_file::with_config(args, &path).map_err(ParseFailure::Config)?,
        None => args,
    };
    let cli = Cli::try_parse_from(&args).map_err(ParseFailure::Clap)?;
    // issue 18: sgd refuses the run options it has no use for, naming them.
    if matches!(&cli.command, Command::Sgd(_)) {
        if let Some(option) = given_with_sgd(&args) {
            return Err(ParseFailure::Conflict(InputError::option(
                option,
                "is not an option of sgd (it has no friction, momentum, Lyapunov function, held-out points, optional twin or high-resolution ODE)",
            )));
        }
    }
    // issue 19: --resolution both compares the two, which only gap does.
    let both = |a: &RunArgs| a.resolution == Some(args::ResolutionArg::Both);
    if match &cli.command {
        Command::Run(_, a) | Command::Compare(a) => both(a),
        Command::Sweep(s) => both(&s.run),
        Command::Sgd(s) => both(&s.run),
        Command::Plot(_) | Command::Gap(_) => false,
    } {
        return Err(ParseFailure::Conflict(InputError::option(
            "resolution",
            "both is for ntkdyn gap; a run takes low or high",
        )));
    }
    if matches!(&cli.command, Command::Sweep(s) if s.merge) {
        let given = given_with_merge(&args);
        if !given.is_empty() {
            return Err(ParseFailure::Conflict(InputError::option(
                "merge",
                format!(
                    "reads the shards' own configuration; drop {}",
                    given.join(", ")
                ),
            )));
        }
    }
    Ok(cli)
}

/// Run a parsed command line; the error is the one line to print.
pub fn run(cli: Cli) -> Result<(), Error> {
    let (optimizer, args) = match &cli.command {
        Command::Run(o, a) => (*o, a),
        Command::Compare(a) => return compare(a),
        Command::Sweep(a) => return sweep(a),
        Command::Plot(p) => return plot(p),
        // issue 18: sgd
        Command::Sgd(a) => return sgd(a),
        Command::Gap(g) => return gap::run(g),
    };
    let cfg = args.config(optimizer);
    cfg.validate()?;
    let style = args.style();
    style.check()?;
    // The directory is claimed before anything is computed: a foreign file under one of the
    // run's names, an input among them, another run on it, stop the run here.
    let mut names: Vec<String> = files::output_names(&cfg)
        .iter()
        .map(|n| style.file_name(n))
        .collect();
    names.push(RUN_TOML.into()); // issue 16
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let inputs = run_inputs(&cfg, args);
    let mut claim = Claim::replace(&cfg.out, &names, &inputs, args.force)?;
    notes(claim.notes(), args.quiet);
    let bar = progress::Bar::run();
    let report = study::run_with(&cfg, &bar)?;
    let skipped = files::put_run_styled(&report, &mut claim, "", &style)?;
    let toml = run_toml::run_toml(optimizer.name(), &cfg, toml::Table::new());
    claim.put(RUN_TOML, toml.as_bytes())?;
    let done = claim.commit()?;
    if !args.quiet {
        for w in bar.unprinted(&report.setup.warnings).iter().chain(&skipped) {
            warn(w);
        }
        if let Some(a) = aliasing::of_report(&report) {
            warn(&a.to_string());
        }
        notes(&done.notes, false);
        say(&human::details(&report)); // the header came before the run
        sayln!("wrote {}: {}", cfg.out.display(), names_of(&done.written));
    }
    // A failed run keeps what it computed (committed above) and says why it stopped.
    report.failure().map_or(Ok(()), |e| Err(e.into()))
}

/// The inputs of a run as a claim names them: --data, --init, --test and --config.
fn run_inputs<'a>(cfg: &'a RunConfig, args: &'a RunArgs) -> Vec<(&'static str, &'a Path)> {
    let mut inputs = files::inputs(cfg);
    if let Some(c) = &args.config {
        inputs.push(("--config", c.as_path()));
    }
    inputs
}

// issue 16: run.toml
/// The config file every run writes beside its files: `--config DIR/run.toml` reproduces it.
const RUN_TOML: &str = "run.toml";

/// Print `warning: TEXT` on stderr (a closed or full stderr is not a panic).
fn warn(text: &str) {
    let _ = writeln!(std::io::stderr(), "warning: {text}");
}

/// Print a claim's notes as `note: TEXT` on stderr, unless quiet.
fn notes(notes: &[String], quiet: bool) {
    if !quiet {
        for n in notes {
            let _ = writeln!(std::io::stderr(), "note: {n}");
        }
    }
}

/// The paths written, relative to DIR (`loss.svg`, `gf/loss.svg`), space-separated.
fn names_of(written: &[PathBuf]) -> String {
    names(written)
}

fn compare(args: &RunArgs) -> Result<(), Error> {
    let mut cfg = args.config(Optimizer::Gf);
    if args.out.is_none() {
        cfg.out = RunConfig::default_out("compare");
    }
    cfg.validate()?;
    let style = args.style();
    style.check()?;
    // One claim over DIR: compare.svg and every optimizer's files in DIR/<optimizer>.
    let per_run = files::output_names(&cfg);
    let mut names: Vec<String> = vec![style.file_name("compare.svg"), RUN_TOML.into()];
    for o in Optimizer::ALL {
        names.extend(
            per_run
                .iter()
                .map(|n| format!("{}/{}", o.name(), style.file_name(n))),
        );
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let inputs = run_inputs(&cfg, args);
    let mut claim = Claim::replace(&cfg.out, &names, &inputs, args.force)?;
    notes(claim.notes(), args.quiet);
    let bar = progress::Bar::compare();
    let reports = study::compare_with(&cfg, &bar)?;
    let mut tables = Vec::new();
    let mut skipped = Vec::new();
    for report in &reports {
        let prefix = format!("{}/", report.config.optimizer.name());
        skipped.extend(
            files::put_run_styled(report, &mut claim, &prefix, &style)?
                .into_iter()
                .map(|w| format!("{prefix}{w}")),
        );
        tables.push(RunTables::from_report(report));
    }
    claim.put(
        RUN_TOML,
        run_toml::run_toml("compare", &cfg, toml::Table::new()).as_bytes(),
    )?;
    let fig = figures::compare_figure(&tables, &style);
    let compare_name = style.file_name("compare.svg");
    match plot::try_render_grid(&[fig], 1).and_then(|svg| style.format.encode(&svg)) {
        Ok(bytes) => {
            claim.put(&compare_name, &bytes)?;
        }
        Err(e) => skipped.push(format!("figure {compare_name} skipped: {e}")),
    }
    skipped.extend(reports.iter().filter_map(|r| {
        aliasing::of_report(r).map(|a| format!("{}: {a}", r.config.optimizer.name()))
    }));
    let done = claim.commit()?;
    if !args.quiet {
        for report in &reports {
            say(&human_summary(report));
        }
        if let Some(first) = reports.first() {
            for w in bar.unprinted(&first.setup.warnings) {
                warn(w);
            }
        }
        for w in &skipped {
            warn(w);
        }
        notes(&done.notes, false);
        let names: Vec<&str> = Optimizer::ALL.iter().map(|o| o.name()).collect();
        sayln!(
            "wrote {} and the runs in {}/{{{}}}",
            cfg.out.join(&compare_name).display(),
            cfg.out.display(),
            names.join(",")
        );
    }
    reports
        .iter()
        .find_map(|r| r.failure())
        .map_or(Ok(()), |e| Err(e.into()))
}

/// How long a shard waits for other shards committing into the same directory.
const SHARD_WAIT: Duration = Duration::from_secs(600);

fn sweep(args: &SweepArgs) -> Result<(), Error> {
    let mut base = args.run.config(Optimizer::Gf);
    if args.run.out.is_none() {
        base.out = RunConfig::default_out("sweep");
    }
    let dir = base.out.clone();
    let quiet = args.run.quiet;
    let force = args.run.force;
    if args.merge {
        return merge(&dir, args);
    }
    let cfg = sweep::SweepConfig {
        base,
        widths: args.widths.clone(),
        seeds: args.seeds,
        optimizers: args.optimizers.clone(),
        shard: args.shard,
        progress: !quiet,
    };
    cfg.validate()?;
    let inputs = run_inputs(&cfg.base, &args.run);
    if cfg.shard.is_some() {
        // Shards of one sweep share DIR: each checks it first, and holds it only to commit.
        let csv = cfg.csv_name();
        let claim = || Claim::update(&dir, &[csv.as_str()], &inputs, force);
        let first = outdir::retry_while_busy(SHARD_WAIT, claim)?;
        notes(first.notes(), quiet);
        drop(first);
        let rows = sweep::run_sweep_with(&cfg, &progress::Runs::default())?;
        let text = sweep::shard_csv(&cfg, &rows)?;
        let mut claim = outdir::retry_while_busy(SHARD_WAIT, claim)?;
        claim.put(&csv, text.as_bytes())?;
        let done = claim.commit()?;
        if !quiet {
            notes(&done.notes, false);
            sayln!(
                "{} runs; wrote {} in {}",
                rows.len(),
                names_of(&done.written),
                dir.display()
            );
        }
        return Ok(());
    }
    // issue 16: sweep.json, run.toml and (--keep-runs) each run's files beside sweep.csv.
    let style = args.run.style();
    style.check()?;
    let figure = style.file_name("sweep.svg");
    let mut names: Vec<String> = vec![
        "sweep.csv".into(),
        figure.clone(),
        sweep::SWEEP_JSON.into(),
        RUN_TOML.into(),
    ];
    if args.keep_runs {
        names.extend(sweep::kept_names(&cfg));
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut claim = Claim::replace(&dir, &names, &inputs, force)?;
    notes(claim.notes(), quiet);
    let outcomes = sweep::run_sweep_kept(&cfg, args.keep_runs, &progress::Runs::default())?;
    let rows: Vec<sweep::SweepRow> = outcomes.iter().map(|o| o.row.clone()).collect();
    let runs: Vec<sweep::SweepRun> = outcomes.iter().map(|o| o.run.clone()).collect();
    let json = sweep::sweep_json(&cfg, &runs);
    claim.put(sweep::SWEEP_JSON, json.as_bytes())?;
    // The caption is read from sweep.json as written, as `plot` reads it back.
    let caption = sweep_caption(&json);
    let mut extra = toml::Table::new();
    let ints = |v: Vec<u64>| {
        toml::Value::Array(
            v.into_iter()
                .map(|k| toml::Value::Integer(i64::try_from(k).unwrap_or(i64::MAX)))
                .collect(),
        )
    };
    extra.insert(
        "widths".into(),
        ints(cfg.widths.iter().map(|&m| m as u64).collect()),
    );
    extra.insert("seeds".into(), toml::Value::Integer(cfg.seeds as i64));
    extra.insert(
        "optimizers".into(),
        toml::Value::Array(
            cfg.optimizers
                .iter()
                .map(|o| toml::Value::String(o.name().into()))
                .collect(),
        ),
    );
    claim.put(
        RUN_TOML,
        run_toml::run_toml("sweep", &cfg.base, extra).as_bytes(),
    )?;
    for o in &outcomes {
        for (name, bytes) in &o.files {
            claim.put(name, bytes)?;
        }
    }
    let done = commit_sweep(claim, &rows, quiet, &style, &caption)?;
    if !quiet {
        sayln!(
            "{} runs; wrote {} in {}",
            rows.len(),
            names_of(&done.written),
            dir.display()
        );
    }
    Ok(())
}

/// Put sweep.csv and sweep.svg into the claim (a figure that cannot be drawn is skipped with
/// a warning) and commit it, printing warnings and notes unless `quiet`.
fn commit_sweep(
    mut claim: Claim,
    rows: &[sweep::SweepRow],
    quiet: bool,
    style: &Style,
    caption: &str,
) -> Result<outdir::Committed, Error> {
    claim.put("sweep.csv", sweep::to_csv(rows).as_bytes())?;
    let name = style.file_name("sweep.svg");
    let skipped = match plot::try_render_grid(&sweep_figure(rows, style, caption), 3)
        .and_then(|svg| style.format.encode(&svg))
    {
        Ok(bytes) => {
            claim.put(&name, &bytes)?;
            None
        }
        Err(e) => Some(format!("figure {name} skipped: {e}")),
    };
    let done = claim.commit()?;
    if !quiet {
        skipped.iter().for_each(|w| warn(w));
        notes(&done.notes, false);
    }
    Ok(done)
}

/// The options of `sweep` that `--merge` may be given with: it reads the shards' own
/// configuration, so any option of a run would be ignored.
const MERGE_OPTIONS: [&str; 9] = [
    "merge",
    "out",
    "quiet",
    "force",
    "config",
    "format",
    "font_scale",
    "y_min",
    "y_max",
];

/// The run options given on the command line (or in --config) with `sweep --merge`, as
/// `--name`s.
fn given_with_merge(args: &[OsString]) -> Vec<String> {
    use clap::parser::ValueSource;
    use clap::CommandFactory;
    let command = Cli::command();
    let Ok(matches) = command.clone().try_get_matches_from(args) else {
        return Vec::new();
    };
    let (Some(("sweep", sub)), Some(sweep_cmd)) = (
        matches.subcommand(),
        command.get_subcommands().find(|c| c.get_name() == "sweep"),
    ) else {
        return Vec::new();
    };
    if !sub.get_flag("merge") {
        return Vec::new();
    }
    sweep_cmd
        .get_arguments()
        .filter(|a| !MERGE_OPTIONS.contains(&a.get_id().as_str()))
        .filter(|a| sub.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect()
}

fn merge(dir: &Path, args: &SweepArgs) -> Result<(), Error> {
    let quiet = args.run.quiet;
    // The shards are the inputs of the merge: never written over.
    let shards: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("sweep-shard-") && n.ends_with(".csv"))
                })
                .collect()
        })
        .unwrap_or_default();
    let inputs: Vec<(&str, &Path)> = shards.iter().map(|p| ("shard", p.as_path())).collect();
    let style = args.run.style();
    style.check()?;
    let figure = style.file_name("sweep.svg");
    let claim = Claim::update(
        dir,
        &["sweep.csv", figure.as_str()],
        &inputs,
        args.run.force,
    )?;
    notes(claim.notes(), quiet);
    let rows = sweep::merge(dir)?;
    // Shards record no data file name: a merged sweep.svg has no caption.
    let done = commit_sweep(claim, &rows, quiet, &style, "")?;
    if !quiet {
        sayln!(
            "merged {} rows; wrote {}",
            rows.len(),
            names_of(&done.written)
        );
    }
    Ok(())
}

/// The files `plot` reads in a run folder.
const RUN_TABLES: [&str; 4] = ["weight.csv", "error.csv", "discrete.csv", "summary.json"];

/// The figures `plot` may write for the run in `dir/prefix` (kernel.svg and test_gap.svg only
/// beside a weight.csv), as names relative to `dir`.
fn run_figure_names(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names = vec!["loss.svg", "lyapunov.svg"];
    if dir.join(prefix).join("weight.csv").exists() {
        names.extend(["kernel.svg", "test_gap.svg"]);
    }
    names.iter().map(|n| format!("{prefix}{n}")).collect()
}

/// `ntkdyn plot DIR`: the figures of a run folder, of a compare folder (compare.svg and each
/// run's), of a sweep folder (sweep.svg), of an sgd folder (sgd.svg) or of a gap folder
/// (gap.svg, modes.svg), drawn again from the files there without computing anything.
fn plot(args: &PlotArgs) -> Result<(), Error> {
    plot::check_size(args.width_px, args.height_px)?;
    let dir = &args.dir;
    let style = args.style();
    style.check()?;
    let out = args.out.as_deref().unwrap_or(dir);
    let runs: Vec<Optimizer> = Optimizer::ALL
        .into_iter()
        .filter(|o| dir.join(o.name()).join("summary.json").exists())
        .collect();
    // The tables only each kind writes come first: sgd and gap folders hold a summary.json
    // too.
    let kind = if dir.join("bands.csv").exists() {
        Folder::Sgd
    } else if dir.join("gap.csv").exists() {
        Folder::Gap
    } else if dir.join("summary.json").exists() {
        Folder::Run
    } else if dir.join("sweep.csv").exists() {
        Folder::Sweep
    } else if !runs.is_empty() {
        Folder::Compare
    } else {
        return Err(InputError::File {
            path: dir.to_path_buf(),
            msg: format!("{PLOT_LOOKS_FOR}; none is there"),
        }
        .into());
    };
    // The tables are the inputs; the figures are the outputs. Claimed before reading: the
    // claim finishes an interrupted switch, so plot never reads a half-switched directory.
    let (names, read): (Vec<String>, Vec<PathBuf>) = match kind {
        Folder::Run => (
            run_figure_names(dir, ""),
            RUN_TABLES.iter().map(|n| dir.join(n)).collect(),
        ),
        Folder::Sweep => (
            vec!["sweep.svg".into()],
            vec![dir.join("sweep.csv"), dir.join(sweep::SWEEP_JSON)],
        ),
        Folder::Sgd => (
            vec!["sgd.svg".into()],
            ["bands.csv", "summary.json", "sgd.csv"]
                .iter()
                .map(|n| dir.join(n))
                .collect(),
        ),
        Folder::Gap => (
            vec!["gap.svg".into(), "modes.svg".into()],
            ["gap.csv", "modes.csv", "summary.json"]
                .iter()
                .map(|n| dir.join(n))
                .collect(),
        ),
        Folder::Compare => {
            let mut names = vec!["compare.svg".to_string()];
            let mut read = Vec::new();
            for o in &runs {
                names.extend(run_figure_names(dir, &format!("{}/", o.name())));
                read.extend(RUN_TABLES.iter().map(|n| dir.join(o.name()).join(n)));
            }
            (names, read)
        }
    };
    let names: Vec<String> = names.iter().map(|n| style.file_name(n)).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let inputs: Vec<(&str, &Path)> = read.iter().map(|p| ("DIR", p.as_path())).collect();
    let mut claim = Claim::update(out, &names, &inputs, args.force)?;
    notes(claim.notes(), false);
    let mut figures: Vec<(String, Vec<u8>)> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    match kind {
        Folder::Run => {
            let (f, s) = files::figure_files(&RunTables::read(dir)?, &style);
            figures.extend(f);
            skipped.extend(s);
        }
        Folder::Sweep => {
            let rows = sweep::read_csv(&dir.join("sweep.csv"))?;
            // A merged sweep has no sweep.json, and its figure no caption.
            let caption = std::fs::read_to_string(dir.join(sweep::SWEEP_JSON))
                .map(|json| sweep_caption(&json))
                .unwrap_or_default();
            let panels = sweep_figure(&rows, &style, &caption);
            render_into(&mut figures, &mut skipped, "sweep.svg", &panels, 3, &style);
        }
        // issue 16: sgd and gap folders
        Folder::Sgd => {
            let bands = replot::read_bands(&dir.join("bands.csv"))?;
            let summary = replot::read_json(dir)?;
            let panels = ntkdyn::output::sgd_figure::from_summary(&bands, &summary, &style);
            let columns = panels.len().max(1);
            render_into(
                &mut figures,
                &mut skipped,
                "sgd.svg",
                &panels,
                columns,
                &style,
            );
        }
        Folder::Gap => {
            let report = replot::read_gap(dir)?;
            for (name, mut panel) in [
                ("gap.svg", ntkdyn::gap::panel(&report)),
                ("modes.svg", ntkdyn::gap::modes_panel(&report)),
            ] {
                style.apply_to(&mut panel);
                render_into(&mut figures, &mut skipped, name, &[panel], 1, &style);
            }
        }
        Folder::Compare => {
            let mut tables = Vec::new();
            for o in &runs {
                let t = RunTables::read(&dir.join(o.name()))?;
                let (f, s) = files::figure_files(&t, &style);
                let prefix = format!("{}/", o.name());
                figures.extend(f.into_iter().map(|(n, b)| (format!("{prefix}{n}"), b)));
                skipped.extend(s.into_iter().map(|w| format!("{prefix}{w}")));
                tables.push(t);
            }
            let name = style.file_name("compare.svg");
            match plot::try_render_grid(&[figures::compare_figure(&tables, &style)], 1)
                .and_then(|svg| style.format.encode(&svg))
            {
                Ok(bytes) => figures.push((name, bytes)),
                Err(e) => skipped.push(format!("figure {name} skipped: {e}")),
            }
        }
    }
    for (name, bytes) in &figures {
        claim.put(name, bytes)?;
    }
    let done = claim.commit()?;
    for w in &skipped {
        warn(w);
    }
    notes(&done.notes, false);
    for path in &done.written {
        sayln!("wrote {}", path.display());
    }
    if figures.is_empty() && !skipped.is_empty() {
        return Err(OutputError::Plot {
            path: out.to_path_buf(),
            msg: "no figure could be drawn; the data are unchanged".into(),
        }
        .into());
    }
    Ok(())
}

/// Render `panels` as figure `name` in the style's format into `figures`, or say in
/// `skipped` why it could not be drawn.
fn render_into(
    figures: &mut Vec<(String, Vec<u8>)>,
    skipped: &mut Vec<String>,
    name: &str,
    panels: &[ntkdyn::output::plot::Figure],
    columns: usize,
    style: &Style,
) {
    let name = style.file_name(name);
    match plot::try_render_grid(panels, columns).and_then(|svg| style.format.encode(&svg)) {
        Ok(bytes) => figures.push((name, bytes)),
        Err(e) => skipped.push(format!("figure {name} skipped: {e}")),
    }
}

/// What `plot DIR` looks for in DIR, as its refusal names it.
const PLOT_LOOKS_FOR: &str = "plot reads a run folder (summary.json), a compare folder (gf/summary.json, ...), a sweep folder (sweep.csv), an sgd folder (bands.csv) or a gap folder (gap.csv)";

/// The sweep figure in a style: panels of sweep::figure with the font scale applied and
/// the provenance caption under each title.
fn sweep_figure(
    rows: &[sweep::SweepRow],
    style: &Style,
    caption: &str,
) -> Vec<ntkdyn::output::plot::Figure> {
    let mut panels = sweep::figure(rows, style);
    for p in &mut panels {
        if let Some(s) = style.font_scale {
            p.font_scale = s;
        }
        p.caption = caption.to_string();
    }
    panels
}

// issue 16: the provenance of sweep.svg
/// The caption of sweep.svg from the text of sweep.json ([`figures::provenance`]): data,
/// n, d, the widths and T (a sweep runs no twin, so no eta); empty when it does not parse.
fn sweep_caption(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .map(|v| figures::provenance(&v))
        .unwrap_or_default()
}

// issue 18: sgd
/// The run options `sgd` takes but has no use for: given, they are refused rather than
/// ignored.
const IGNORED_BY_SGD: [&str; 8] = [
    "friction",
    "gamma",
    "alpha",
    "test-n",
    "test",
    "no-discrete",
    // issue 19: sgd has no momentum to fix and no high-resolution ODE
    "beta",
    "resolution",
];

/// Whether command `sub` refuses option `name` whatever its value, although its arguments
/// (shared among the commands) hold it: sgd the run options of [`IGNORED_BY_SGD`], and gf,
/// nag, compare (whose runs include gf's) and gap `--beta`, the fixed momentum of hbf and
/// nagsc. A config file's common key that a command refuses is ignored there with a note.
pub(crate) fn refuses(sub: &str, name: &str) -> bool {
    match sub {
        "sgd" => IGNORED_BY_SGD.contains(&name),
        "gf" | "nag" | "compare" | "gap" => name == "beta",
        _ => false,
    }
}

/// The first option of [`IGNORED_BY_SGD`] given on the command line (or in --config).
fn given_with_sgd(args: &[OsString]) -> Option<&'static str> {
    use clap::parser::ValueSource;
    use clap::CommandFactory;
    let matches = Cli::command().try_get_matches_from(args).ok()?;
    let Some(("sgd", sub)) = matches.subcommand() else {
        return None;
    };
    IGNORED_BY_SGD.into_iter().find(|name| {
        let id = name.replace('-', "_");
        sub.value_source(&id) == Some(ValueSource::CommandLine)
    })
}

/// run.toml of `ntkdyn sgd`: the run options sgd uses and its own (batch, sampling, seeds,
/// sde-substeps); `ntkdyn sgd --config DIR/run.toml --out OTHER` computes the same CSV files.
fn sgd_toml(cfg: &ntkdyn::sgd::SgdConfig) -> String {
    let int = |v: usize| toml::Value::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let mut extra = toml::Table::new();
    extra.insert("batch".into(), int(cfg.batch));
    extra.insert(
        "sampling".into(),
        toml::Value::String(cfg.sampling.to_string()),
    );
    extra.insert("seeds".into(), int(cfg.seeds));
    extra.insert("sde-substeps".into(), int(cfg.sde_substeps));
    run_toml::run_toml_without("sgd", &cfg.run, extra, &IGNORED_BY_SGD)
}

/// `ntkdyn sgd`: claim DIR, run the study, write sgd.csv, bands.csv, summary.json, sgd.svg and
/// run.toml.
fn sgd(args: &SgdArgs) -> Result<(), Error> {
    use ntkdyn::io::format_f64;
    use ntkdyn::output::sgd_figure;
    use ntkdyn::sgd::{Process, Space};
    let cfg = args.config();
    cfg.validate()?;
    let quiet = args.run.quiet;
    let style = args.run.style();
    style.check()?;
    let figure = style.file_name("sgd.svg");
    let names = [
        "sgd.csv",
        "bands.csv",
        figure.as_str(),
        "summary.json",
        RUN_TOML,
    ];
    let inputs = run_inputs(&cfg.run, &args.run);
    let mut claim = Claim::replace(&cfg.run.out, &names, &inputs, args.run.force)?;
    notes(claim.notes(), quiet);
    let bar = progress::Bar::compare();
    let report = ntkdyn::sgd::run_with(&cfg, &bar)?;
    claim.put("sgd.csv", report.sgd_csv().as_bytes())?;
    claim.put("bands.csv", report.bands_csv().as_bytes())?;
    let summary = report.summary_json();
    claim.put("summary.json", summary.as_bytes())?;
    // Drawn from summary.json as written, as `plot` draws it again.
    let value = serde_json::from_str(&summary).unwrap_or_default();
    let panels = sgd_figure::from_summary(&report.bands, &value, &style);
    let mut skipped = Vec::new();
    match plot::try_render_grid(&panels, panels.len().max(1))
        .and_then(|svg| style.format.encode(&svg))
    {
        Ok(bytes) => {
            claim.put(&figure, &bytes)?;
        }
        Err(e) => skipped.push(format!("figure {figure} skipped: {e}")),
    }
    claim.put(RUN_TOML, sgd_toml(&cfg).as_bytes())?;
    let done = claim.commit()?;
    if !quiet {
        for w in bar.unprinted(&report.warnings).iter().chain(&skipped) {
            warn(w);
        }
        notes(&done.notes, false);
        let s = &report.setup;
        sayln!(
            "ntkdyn sgd: n = {}, d = {}, m = {}, T = {}; eta = {}, B = {} {} replacement (c_B = {:.4e}), {} runs, SDE dt = eta/{}",
            s.model.n(),
            s.model.d(),
            s.model.m(),
            format_f64(cfg.run.t_end),
            format_f64(s.eta),
            cfg.batch,
            cfg.sampling,
            report.c_b,
            cfg.seeds,
            cfg.sde_substeps
        );
        match report.eta_crit {
            Some(e) => sayln!(
                "  mean-square stability edge eta_crit(B) = {e:.4e} (GD: 2/lambda_max = {:.4e}); eta/eta_crit = {:.3}",
                report.gd_edge,
                s.eta / e
            ),
            None => sayln!("  eta_crit(B) skipped (GD: 2/lambda_max = {:.4e})", report.gd_edge),
        }
        for space in [Space::Weight, Space::Error] {
            let parts: Vec<String> = [
                Process::Sgd,
                Process::Sde,
                Process::Gd,
                Process::Gf,
                Process::Exact,
            ]
            .into_iter()
            .filter_map(|p| {
                let r = report.band(p, space)?.rows.last()?;
                Some(if p.stochastic() {
                    format!(
                        "{} median {:.3e} [q10 {:.3e}, q90 {:.3e}], mean {:.3e} +- {:.1e}",
                        p.name(),
                        r.median,
                        r.q10,
                        r.q90,
                        r.mean,
                        r.se
                    )
                } else {
                    format!("{} {:.3e}", p.name(), r.median)
                })
            })
            .collect();
            if !parts.is_empty() {
                sayln!("  {} space, final loss: {}", space.name(), parts.join("; "));
            }
        }
        let seconds: f64 = report.wall_seconds.iter().map(|w| w.2).sum();
        sayln!(
            "wrote {}: {} ({seconds:.1} s)",
            cfg.run.out.display(),
            names_of(&done.written)
        );
    }
    Ok(())
}

/// What `plot DIR` finds in DIR.
#[derive(Clone, Copy)]
enum Folder {
    Run,
    Compare,
    Sweep,
    // issue 16: sgd and gap folders
    Sgd,
    Gap,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(argv: &[&str], optimizer: Optimizer) -> RunConfig {
        match parse_args(argv).unwrap().command {
            Command::Run(_, a) | Command::Compare(a) => a.config(optimizer),
            Command::Sweep(s) => s.run.config(optimizer),
            Command::Plot(_) | Command::Gap(_) => unreachable!("not a run"),
            // issue 18: sgd
            Command::Sgd(s) => s.run.config(optimizer),
        }
    }

    #[test]
    fn the_command_lines_defaults_are_the_librarys_for_every_option() {
        for o in Optimizer::ALL {
            assert_eq!(
                config_of(&["ntkdyn", o.name()], o),
                RunConfig::defaults(o),
                "{o}"
            );
        }
        // sweep and compare share the run options.
        let sweep = config_of(&["ntkdyn", "sweep", "--widths", "10"], Optimizer::Gf);
        assert_eq!(sweep, RunConfig::defaults(Optimizer::Gf));
    }

    #[test]
    fn every_option_moves_its_field_of_the_config() {
        let cfg = config_of(
            &[
                "ntkdyn",
                "hbf",
                "--n",
                "7",
                "--d",
                "3",
                "--m",
                "11",
                "--seed",
                "4",
                "--space",
                "error",
                "--kernel",
                "hinf",
                "--t-end",
                "2",
                "--samples",
                "5",
                "--solver",
                "rk4",
                "--rtol",
                "1e-5",
                "--atol",
                "1e-8",
                "--step",
                "0.1",
                "--max-step",
                "0.2",
                "--friction",
                "0.5",
                "--gamma",
                "4",
                "--alpha",
                "2.5",
                "--lambda0",
                "0.3",
                "--eta",
                "auto",
                "--test-n",
                "3",
                "--no-discrete",
                "--out",
                "x",
                "--quiet",
                "--normalize",
            ],
            Optimizer::Hbf,
        );
        let d = RunConfig::defaults(Optimizer::Hbf);
        assert_eq!((cfg.n, cfg.d, cfg.m, cfg.seed), (7, 3, 11, 4));
        assert_eq!(cfg.space, ntkdyn::study::SpaceChoice::Error);
        assert_eq!(cfg.kernel, ntkdyn::study::KernelChoice::Hinf);
        assert_eq!((cfg.t_end, cfg.samples), (2.0, 5));
        assert_eq!(cfg.solver, ntkdyn::integrate::Solver::Rk4);
        assert_eq!((cfg.rtol, cfg.atol, cfg.step), (1e-5, 1e-8, 0.1));
        assert_eq!((cfg.max_step, cfg.friction), (Some(0.2), Some(0.5)));
        assert_eq!((cfg.gamma, cfg.alpha, cfg.lambda0), (4.0, 2.5, Some(0.3)));
        assert!(cfg.eta_auto && cfg.eta.is_nan());
        assert_eq!(cfg.test_n, 3);
        assert!(!cfg.discrete && !cfg.progress && cfg.normalize);
        assert_eq!(cfg.out, std::path::PathBuf::from("x"));
        assert_ne!(cfg.n, d.n);
    }

    #[cfg(unix)]
    #[test]
    fn an_out_path_that_is_not_utf8_reaches_the_config_byte_for_byte() {
        use std::os::unix::ffi::{OsStrExt, OsStringExt};
        let raw = b"out\xfe".to_vec();
        let dir = std::env::temp_dir().join(format!("ntkdyn-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml = dir.join("c.toml");
        std::fs::write(&toml, "m = 12\n").unwrap();
        for with_config in [false, true] {
            let mut argv: Vec<OsString> = ["ntkdyn", "gf", "--out"]
                .iter()
                .map(OsString::from)
                .collect();
            argv.push(OsString::from_vec(raw.clone()));
            if with_config {
                argv.push("--config".into());
                argv.push(toml.clone().into());
            }
            let Command::Run(Optimizer::Gf, a) = parse_args(argv).unwrap().command else {
                panic!("gf parses as gf")
            };
            let cfg = a.config(Optimizer::Gf);
            assert_eq!(cfg.out.as_os_str().as_bytes(), &raw[..]);
            assert_eq!(cfg.m, if with_config { 12 } else { 2000 });
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
