//! Seed bands: at each recorded time, the median, the 10% and 90% quantiles, the mean and its
//! standard error over the runs of a process (bands.csv, ready for pgfplots' fill between).
//!
//! Losses of SGD are skewed (a few runs far above the rest), so figures lead with the median
//! and the q10-q90 band; the mean and its standard error sd/sqrt(S) are there to compare with
//! the exact E\[L]. Quantiles interpolate linearly between order statistics (Hyndman and Fan's
//! type 7, R's and numpy's default).

use super::{Path, Process, Space};

/// One row of bands.csv.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandRow {
    pub t: f64,
    pub median: f64,
    pub q10: f64,
    pub q90: f64,
    pub mean: f64,
    /// Standard error of the mean: sample standard deviation / sqrt(S); NaN for one run,
    /// 0 for a deterministic process.
    pub se: f64,
    /// Runs that reached this time.
    pub runs: usize,
}

/// A process's band in one space.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub process: Process,
    pub space: Space,
    pub rows: Vec<BandRow>,
}

/// The p-quantile (0 <= p <= 1) of sorted values, type 7.
pub fn quantile(sorted: &[f64], p: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        len => {
            let h = (len - 1) as f64 * p;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(len - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Statistics of the values at one time.
pub fn row(t: f64, values: &mut [f64], deterministic: bool) -> BandRow {
    values.sort_by(f64::total_cmp);
    let s = values.len();
    let mean = values.iter().sum::<f64>() / s as f64;
    let se = if deterministic {
        0.0
    } else if s < 2 {
        f64::NAN
    } else {
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (s - 1) as f64;
        (var / s as f64).sqrt()
    };
    BandRow {
        t,
        median: quantile(values, 0.5),
        q10: quantile(values, 0.1),
        q90: quantile(values, 0.9),
        mean,
        se,
        runs: s,
    }
}

/// The band of the runs `paths` (one process in one space, points at the same iterates; a
/// run that diverged contributes up to where it stopped).
pub fn band(paths: &[&Path]) -> Option<Band> {
    let first = paths.first()?;
    let longest = paths.iter().map(|p| p.points.len()).max().unwrap_or(0);
    let deterministic = !first.process.stochastic();
    let mut rows = Vec::with_capacity(longest);
    let mut values = Vec::with_capacity(paths.len());
    for j in 0..longest {
        values.clear();
        let mut t = f64::NAN;
        for p in paths {
            if let Some(&(_, tj, l)) = p.points.get(j) {
                t = tj;
                values.push(l);
            }
        }
        rows.push(row(t, &mut values, deterministic));
    }
    Some(Band {
        process: first.process,
        space: first.space,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_order_statistics_as_numpy_does() {
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-15);
        assert!((quantile(&v, 0.9) - 7.6).abs() < 1e-15);
        let mut w = v.to_vec();
        let r = row(0.0, &mut w, false);
        assert_eq!(r.mean, 4.0);
        // sd = sqrt(50/4), se = sd/sqrt(5)
        assert!((r.se - (12.5f64 / 5.0).sqrt()).abs() < 1e-15);
    }
}
