//! `--config FILE.toml`: options from a file, inserted before those of the command line
//! (which therefore win; a key given on both is taken from the command line only).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use ntkdyn::error::InputError;

/// The value of `--config PATH` or `--config=PATH`, if given.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    args.iter().enumerate().find_map(|(k, a)| {
        if a == OsStr::new("--config") {
            args.get(k + 1).map(PathBuf::from)
        } else {
            a.to_str()
                .and_then(|s| s.strip_prefix("--config="))
                .map(PathBuf::from)
        }
    })
}

/// The command line with the options of `path` inserted after the subcommand, but for those
/// the command line gives itself. Arguments stay `OsString`s: a path that is not UTF-8 is
/// passed on byte for byte.
///
/// Every key is checked against the subcommand's options before anything runs, and an error
/// names the file and the key: a key that is no option, a switch (`quiet`) given anything
/// but true or false, a number given as a string (`t-end = "5"`), a value the option refuses.
/// Relative paths (data, init, test, out) are taken from the config file's folder. A merge
/// (`sweep --merge`) takes only out and quiet from the file: the other keys describe the
/// sweep its shards ran.
pub fn with_config(args: Vec<OsString>, path: &Path) -> Result<Vec<OsString>, InputError> {
    if args.len() < 2 {
        return Ok(args);
    }
    let Some(sub) = args[1].to_str().map(str::to_string) else {
        return Ok(args);
    };
    let given = |flag: &str| {
        args.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        })
    };
    let (mut injected, ignored) = config_flags(path, &sub)?;
    let quiet = given("--quiet") || injected.iter().any(|(flag, _)| flag == "--quiet");
    if !ignored.is_empty() && !quiet {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "note: {}: {} {} not an option of ntkdyn {sub}; ignored",
            path.display(),
            ignored.join(", "),
            if ignored.len() == 1 { "is" } else { "are" }
        );
    }
    let merging =
        sub == "sweep" && (given("--merge") || injected.iter().any(|(flag, _)| flag == "--merge"));
    if merging {
        injected.retain(|(flag, _)| MERGE_KEYS.contains(&flag.as_str()));
    }
    injected.retain(|(flag, _)| !given(flag));
    let mut out = args[..2].to_vec();
    for (flag, value) in injected {
        out.push(flag.into());
        out.extend(value);
    }
    out.extend_from_slice(&args[2..]);
    Ok(out)
}

/// What `sweep --merge` takes from a config file.
const MERGE_KEYS: [&str; 3] = ["--merge", "--out", "--quiet"];

/// Keys whose values are paths, taken from the config file's folder when relative.
const PATH_KEYS: [&str; 5] = ["data", "init", "test", "out", "times-file"];

/// Whether an option takes a number (`eta` also takes `auto`).
fn numeric(arg: &clap::Arg) -> bool {
    use std::any::TypeId;
    let id = arg.get_value_parser().type_id();
    [
        TypeId::of::<f64>(),
        TypeId::of::<usize>(),
        TypeId::of::<u64>(),
        TypeId::of::<u32>(),
        TypeId::of::<super::args::Eta>(),
    ]
    .into_iter()
    .any(|t| id == t)
}

/// A flag and its value (None for a switch).
type Flags = Vec<(String, Option<OsString>)>;

/// The options of a TOML file as (--flag, value) pairs for subcommand `sub`, each checked,
/// and the common keys it ignores.
///
/// One file can serve every command: the top-level keys are common, a section named after a
/// command (`[gf]`, `[hbf]`, `[sweep]`, `[plot]`, ...) adds and overrides keys for that
/// command alone, and other commands' sections are checked as those commands would check
/// them, then left. A common key that another command takes but `sub` lacks or refuses
/// (`widths` for `gf`, `beta` for `gf`, [`super::refuses`]) is ignored and named in a note; a
/// key that is no option of any command is an error, as is an unknown key of any section.
/// A file that is not TOML is refused naming the line and column.
fn config_flags(path: &Path, sub: &str) -> Result<(Flags, Vec<String>), InputError> {
    use clap::CommandFactory;
    let bad = |msg: String| InputError::File {
        path: path.to_path_buf(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let msg = e.message().replace('\n', " ").trim().to_string();
        match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
                // The text at the span (the key of a duplicate key, say) where it is short.
                let at = text
                    .get(span.clone())
                    .filter(|t| !t.is_empty() && t.len() <= 40 && !t.contains('\n'))
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                bad(format!("line {line}, column {column}{at}: {msg}"))
            }
            None => bad(msg),
        }
    })?;
    let cli = super::args::Cli::command();
    let Some(cmd) = cli.find_subcommand(sub) else {
        // No such subcommand: the command line's own error says so.
        return Ok((Vec::new(), Vec::new()));
    };
    let folder = path.parent().unwrap_or(Path::new(""));
    // An option a command has among its (shared) arguments but refuses whatever its value
    // is not one it takes.
    let takes = |c: &clap::Command, name: &str| {
        name != "config"
            && !super::refuses(c.get_name(), name)
            && c.get_arguments().any(|a| a.get_long() == Some(name))
    };
    // Common keys first, then this command's section over them; every other command's
    // section is checked as that command would check it.
    let mut entries: Vec<(String, toml::Value, bool)> = Vec::new();
    let mut section: Vec<(String, toml::Value)> = Vec::new();
    let mut ignored = Vec::new();
    for (key, value) in table {
        match (value, cli.find_subcommand(&key)) {
            (toml::Value::Table(t), Some(_)) if key == sub => section.extend(t),
            (toml::Value::Table(t), Some(other)) => {
                let entries = t.into_iter().map(|(k, v)| (k, v, true)).collect();
                flags_of(&cli, other, entries, folder, &bad)?;
            }
            (value, _) => {
                let name = key.replace('_', "-");
                let other = cli
                    .get_subcommands()
                    .any(|c| c.get_name() != sub && takes(c, &name));
                if !takes(cmd, &name) && other {
                    ignored.push(key);
                } else {
                    entries.push((key, value, false));
                }
            }
        }
    }
    for (key, value) in section {
        let name = key.replace('_', "-");
        entries.retain(|(k, _, _)| k.replace('_', "-") != name);
        entries.push((key, value, true));
    }
    Ok((flags_of(&cli, cmd, entries, folder, &bad)?, ignored))
}

/// The (--flag, value) pairs of `entries` (key, value, whether from the command's own
/// section) for command `cmd`, each key checked to be one of its options and each value one
/// the option takes.
fn flags_of(
    cli: &clap::Command,
    cmd: &clap::Command,
    entries: Vec<(String, toml::Value, bool)>,
    folder: &Path,
    bad: &dyn Fn(String) -> InputError,
) -> Result<Flags, InputError> {
    let sub = cmd.get_name();
    let mut flags = Vec::new();
    for (key, value, in_section) in entries {
        let name = key.replace('_', "-");
        let flag = format!("--{name}");
        let arg = cmd
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && name != "config")
            .ok_or_else(|| {
                let place = if in_section {
                    format!(" in [{sub}]")
                } else {
                    String::new()
                };
                bad(format!(
                    "unknown key '{key}'{place}: not an option of ntkdyn {sub} (see ntkdyn {sub} --help)"
                ))
            })?;
        let switch = matches!(arg.get_action(), clap::ArgAction::SetTrue);
        let number = numeric(arg);
        let scalar = |v: &toml::Value| -> Result<String, InputError> {
            match v {
                toml::Value::String(s) if number && s.trim().parse::<f64>().is_ok() => {
                    Err(bad(format!(
                        "{key} = \"{s}\": a string where a number is expected (write {key} = {s})"
                    )))
                }
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(crate_format(*f)),
                other => Err(bad(format!(
                    "{key} = {other}: expected {}",
                    if number {
                        "a number"
                    } else {
                        "a number or a string"
                    }
                ))),
            }
        };
        let value: Option<String> = match (&value, switch) {
            (toml::Value::Boolean(true), true) => None,
            (toml::Value::Boolean(false), true) => continue,
            (other, true) => {
                return Err(bad(format!("{key} = {other}: expected true or false")));
            }
            (toml::Value::Array(items), false) => {
                let parts: Result<Vec<String>, InputError> = items.iter().map(scalar).collect();
                Some(parts?.join(","))
            }
            (v, false) => Some(scalar(v)?),
        };
        let value = value.map(|v| {
            if PATH_KEYS.contains(&name.as_str()) && Path::new(&v).is_relative() {
                folder.join(&v).into_os_string()
            } else {
                OsString::from(v)
            }
        });
        if let Some(v) = &value {
            check_value(cli, sub, &flag, v).map_err(|msg| bad(format!("{key}: {msg}")))?;
        }
        flags.push((flag, value));
    }
    Ok(flags)
}

/// A TOML float as the command line would write it (1e-300, not 300 zeros).
fn crate_format(f: f64) -> String {
    ntkdyn::io::format_f64(f)
}

/// Whether `flag value` is a value the option takes: clap's own check of that one option
/// (its complaints about other, missing options are not this key's).
fn check_value(cli: &clap::Command, sub: &str, flag: &str, value: &OsStr) -> Result<(), String> {
    use clap::error::ErrorKind;
    let argv: Vec<OsString> = vec!["ntkdyn".into(), sub.into(), flag.into(), value.into()];
    match cli.clone().try_get_matches_from(argv) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation
            ) =>
        {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid value");
            Err(first.trim_start_matches("error: ").to_string())
        }
        _ => Ok(()),
    }
}
