//! Helpers shared by the integration tests: small configurations and temporary directories.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{RunConfig, SpaceChoice};

/// A fresh, empty directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "ntkdyn-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small run: n points in d dimensions, width m, no discrete twin, error space only.
pub fn small(optimizer: Optimizer, n: usize, d: usize, m: usize, seed: u64) -> RunConfig {
    let mut cfg = RunConfig::defaults(optimizer);
    cfg.n = n;
    cfg.d = d;
    cfg.m = m;
    cfg.seed = seed;
    cfg.space = SpaceChoice::Error;
    cfg.discrete = false;
    cfg
}

/// |a - b| / max(|b|, floor).
pub fn rel(a: f64, b: f64, floor: f64) -> f64 {
    (a - b).abs() / b.abs().max(floor)
}

/// Least-squares slope of log y against log x.
pub fn loglog_slope(x: &[f64], y: &[f64]) -> f64 {
    let lx: Vec<f64> = x.iter().map(|v| v.ln()).collect();
    let ly: Vec<f64> = y.iter().map(|v| v.ln()).collect();
    let k = lx.len() as f64;
    let mx = lx.iter().sum::<f64>() / k;
    let my = ly.iter().sum::<f64>() / k;
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

/// Run the binary, asserting that it succeeds (its stderr in the message).
pub fn ntkdyn(args: &[&str]) -> std::process::Output {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "ntkdyn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A run's summary.json.
pub fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary.json")).unwrap()
}

/// Dormand-Prince settings of the step-cap tests: `rtol`, `atol`, steps of at most `max_step`
/// (first step 0.01; no practical limit on their number).
pub fn capped_dopri5(rtol: f64, atol: f64, max_step: f64) -> ntkdyn::integrate::SolverSettings {
    ntkdyn::integrate::SolverSettings {
        solver: ntkdyn::integrate::Solver::Dopri5,
        rtol,
        atol,
        step: 0.01,
        max_steps: 10_000_000,
        max_step,
    }
}

/// The crossing tests' problem: n = 20 points in d = 5, a width of m = 200 (seed 7), and its
/// initial state under `damping` (W0, and V0 = 0 for the momentum flows).
pub fn crossing_problem(
    damping: ntkdyn::dynamics::Damping,
) -> (ntkdyn::model::Model, nalgebra::DVector<f64>) {
    use ntkdyn::dynamics::{Flow, WeightSpace};
    use ntkdyn::model::{Data, InitialNetwork, Model};
    let net = InitialNetwork::init(200, 5, 7);
    let model = Model::new(Data::synthetic(20, 5, 7), net.a.clone());
    let y0 = {
        let space = WeightSpace::new(&model);
        Flow::new(&space, damping).initial_state(net.w.as_slice())
    };
    (model, y0)
}
