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
pub fn with_config(args: Vec<OsString>, path: &Path) -> Result<Vec<OsString>, InputError> {
    if args.len() < 2 {
        return Ok(args);
    }
    let mut injected = config_flags(path)?;
    let given = |flag: &str| {
        args.iter().any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        })
    };
    injected.retain(|(flag, _)| !given(flag));
    let mut out = args[..2].to_vec();
    for (flag, value) in injected {
        out.push(flag.into());
        out.extend(value.map(OsString::from));
    }
    out.extend_from_slice(&args[2..]);
    Ok(out)
}

/// The options of a TOML file as (--flag, value) pairs.
fn config_flags(path: &Path) -> Result<Vec<(String, Option<String>)>, InputError> {
    let bad = |msg: String| InputError::File {
        path: path.to_path_buf(),
        msg,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(e.message().to_string()))?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        let scalar = |v: &toml::Value| -> Result<String, InputError> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                other => Err(bad(format!(
                    "{key} = {other}: expected a number or a string"
                ))),
            }
        };
        match &value {
            toml::Value::Boolean(true) => flags.push((flag, None)),
            toml::Value::Boolean(false) => {}
            toml::Value::Array(items) => {
                let parts: Result<Vec<String>, InputError> = items.iter().map(scalar).collect();
                flags.push((flag, Some(parts?.join(","))));
            }
            v => flags.push((flag, Some(scalar(v)?))),
        }
    }
    Ok(flags)
}
