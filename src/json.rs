//! JSON has no NaN or infinity: serde_json writes them as null. Reading summary.json back,
//! a null where a number belongs is NaN (the run wrote a non-finite value there).

use serde::{Deserialize, Deserializer};

/// A number, or NaN for null.
pub(crate) fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A path as text, with any bytes that are not UTF-8 replaced (the file itself is written at
/// the exact path; summary.json records it for a person to read).
pub(crate) fn path_lossy<S: serde::Serializer>(
    path: &std::path::Path,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&path.to_string_lossy())
}

/// [`path_lossy`] of an optional path (null for none).
pub(crate) fn option_path_lossy<S: serde::Serializer>(
    path: &Option<std::path::PathBuf>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match path {
        Some(p) => s.serialize_some(&p.to_string_lossy()),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Probe {
        #[serde(deserialize_with = "f64_or_nan")]
        x: f64,
        #[serde(serialize_with = "path_lossy")]
        p: std::path::PathBuf,
    }

    #[test]
    fn a_non_finite_number_comes_back_as_nan_and_a_finite_one_unchanged() {
        for (x, back) in [(f64::INFINITY, f64::NAN), (f64::NAN, f64::NAN), (0.1, 0.1)] {
            let v = Probe { x, p: "a/b".into() };
            let r: Probe = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            assert!(r.x == back || (r.x.is_nan() && back.is_nan()));
            assert_eq!(r.p, std::path::PathBuf::from("a/b"));
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_path_that_is_not_utf8_is_still_written() {
        use std::os::unix::ffi::OsStringExt;
        let p = std::path::PathBuf::from(std::ffi::OsString::from_vec(b"out\xfe".to_vec()));
        let text = serde_json::to_string(&Probe { x: 1.0, p }).unwrap();
        assert!(text.contains("out\u{fffd}"), "{text}");
    }
}
