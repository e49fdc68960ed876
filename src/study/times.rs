//! The output times of a run: evenly on [0, T] (the default), log-spaced (`--times log`), or
//! read from a file (`--times-file`).
//!
//! ```text
//! linear: t_i = T i/(K-1),                       i = 0..K-1
//! log:    t_0 = 0,  t_i = a r^(i-1),  a = T/(K-1),  r = (K-1)^(1/(K-2)),   i = 1..K-1  (t_{K-1} = T)
//! ```
//! Log-spaced times start at the first positive time of the linear grid, so that a log time
//! axis shows the early drop the even grid samples with a single point.

use std::path::Path;

use crate::error::InputError;
use crate::integrate::output_times;
use crate::io::format_f64;
use crate::study::config::{RunConfig, TimesChoice};

/// 0, then `samples - 1` times in geometric progression from T/(samples - 1) to T (exactly
/// T last). Two samples are [0, T].
pub fn log_times(t_end: f64, samples: usize) -> Vec<f64> {
    let k = samples.max(2);
    if k == 2 {
        return vec![0.0, t_end];
    }
    let a = t_end / (k - 1) as f64;
    let ratio = ((k - 1) as f64).ln() / (k - 2) as f64;
    let mut times = vec![0.0];
    times.extend((0..k - 1).map(|i| {
        if i + 2 == k {
            t_end
        } else {
            a * (ratio * i as f64).exp()
        }
    }));
    times
}

/// The times of `--times-file`: one number per line (blank lines and `#` comments skipped),
/// strictly increasing, within [0, T]; 0 is put first when the file does not start there
/// (every run starts from its state at t = 0). Errors name the file and the line.
pub fn read_times_file(path: &Path, t_end: f64) -> Result<Vec<f64>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| InputError::File {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    let err = |line: usize, msg: String| InputError::Csv {
        path: path.to_path_buf(),
        line: line as u64 + 1,
        msg,
    };
    let mut times: Vec<f64> = Vec::new();
    for (k, raw) in text.lines().enumerate() {
        let s = raw.trim().trim_end_matches(',');
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let t: f64 = s
            .parse()
            .map_err(|_| err(k, format!("'{}' is not a time", s.escape_debug())))?;
        if !(t.is_finite() && (0.0..=t_end).contains(&t)) {
            return Err(err(
                k,
                format!(
                    "{} is outside [0, T] = [0, {}] (--t-end)",
                    format_f64(t),
                    format_f64(t_end)
                ),
            ));
        }
        if let Some(&prev) = times.last() {
            if t <= prev {
                return Err(err(
                    k,
                    format!(
                        "{} does not come after {}: times must increase",
                        format_f64(t),
                        format_f64(prev)
                    ),
                ));
            }
        }
        times.push(t);
    }
    if times.is_empty() {
        return Err(InputError::File {
            path: path.to_path_buf(),
            msg: "no times".into(),
        });
    }
    if times[0] > 0.0 {
        times.insert(0, 0.0);
    }
    if times.len() < 2 {
        return Err(InputError::File {
            path: path.to_path_buf(),
            msg: "only t = 0: give at least one positive time".into(),
        });
    }
    Ok(times)
}

impl RunConfig {
    /// The output times of the run: `--times-file`, or `--samples` times spread as `--times`
    /// says.
    pub fn sample_times(&self) -> Result<Vec<f64>, InputError> {
        match (&self.times_file, self.times) {
            (Some(path), _) => read_times_file(path, self.t_end),
            (None, TimesChoice::Linear) => Ok(output_times(self.t_end, self.samples)),
            (None, TimesChoice::Log) => Ok(log_times(self.t_end, self.samples)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_times_are_geometric_from_the_first_linear_time_to_t() {
        let t = log_times(50.0, 201);
        assert_eq!(t.len(), 201);
        assert_eq!(t[0], 0.0);
        assert_eq!(t[1], 0.25);
        assert_eq!(t[200], 50.0);
        let r = t[2] / t[1];
        // (K-1)^(1/(K-2)) = 200^(1/199)
        assert!((r - 200f64.powf(1.0 / 199.0)).abs() < 1e-14, "{r}");
        for i in 1..200 {
            let ri = t[i + 1] / t[i];
            assert!((ri - r).abs() < 1e-12 * r, "ratio {i}: {ri} vs {r}");
        }
        assert_eq!(log_times(3.0, 2), vec![0.0, 3.0]);
        assert_eq!(log_times(4.0, 3), vec![0.0, 2.0, 4.0]);
    }

    #[test]
    fn a_times_file_is_read_with_zero_first_and_refused_when_not_increasing() {
        let dir = std::env::temp_dir().join(format!("ntkdyn-times-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(&good, "# times\n0.5\n\n1\n2.5\n").unwrap();
        assert_eq!(
            read_times_file(&good, 5.0).unwrap(),
            vec![0.0, 0.5, 1.0, 2.5]
        );
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "0\n1\n1\n").unwrap();
        let e = read_times_file(&bad, 5.0).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("must increase"), "{e}");
        std::fs::write(&bad, "0\n7\n").unwrap();
        let e = read_times_file(&bad, 5.0).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("outside [0, T]"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
