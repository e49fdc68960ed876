//! `--resolution high`: the high-resolution ODEs in error space against their exact per-mode
//! solutions, their Lyapunov functions along a run, the weight-space gap's order, and the
//! command line's option.

mod common;

use ntkdyn::dynamics::Damping;
use ntkdyn::integrate::Solver;
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{RunConfig, SpaceChoice};
use ntkdyn::theory::high_resolution::{Resolution, Setting};

fn high(optimizer: Optimizer, space: SpaceChoice, m: usize) -> RunConfig {
    let mut cfg = common::small(optimizer, 10, 4, m, 5);
    cfg.space = space;
    cfg.resolution = Resolution::High;
    cfg.t_end = 8.0;
    cfg.samples = 33;
    cfg.discrete = true;
    cfg.progress = false;
    cfg
}

#[test]
fn the_high_resolution_error_space_by_dopri5_is_its_exact_per_mode_solution_to_1e_7() {
    for optimizer in Optimizer::ALL {
        let mut cfg = high(optimizer, SpaceChoice::Error, 200);
        cfg.rtol = 1e-10;
        cfg.atol = 1e-12;
        cfg.solver_requested = true;
        let report = ntkdyn::study::run(&cfg).unwrap();
        let error = report.error.as_ref().unwrap();
        let worst = error.exact_max_relative_error.unwrap();
        assert!(worst < 1e-7, "{optimizer}: {worst:e}");
        // The exact solution itself (--solver exact) gives the same losses.
        cfg.solver = Solver::Exact;
        let exact = ntkdyn::study::run(&cfg).unwrap();
        let (a, b) = (
            error.table.column("loss").unwrap(),
            exact.error.as_ref().unwrap().table.column("loss").unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!(
                common::rel(*x, *y, 1e-12) < 1e-7,
                "{optimizer}: {x} against {y}"
            );
        }
        // Low resolution's ODE is another: its losses differ at O(sqrt(eta)).
        cfg.resolution = Resolution::Low;
        let low = ntkdyn::study::run(&cfg).unwrap();
        let c = low.error.as_ref().unwrap().table.column("loss").unwrap();
        assert!(
            c.iter()
                .zip(&b)
                .any(|(x, y)| common::rel(*x, *y, 1e-12) > 1e-4),
            "{optimizer}"
        );
    }
}

#[test]
fn high_resolution_nag_starts_at_tau_1_and_its_twin_sits_on_the_shifted_clock() {
    let cfg = high(Optimizer::Nag, SpaceChoice::Error, 200);
    let report = ntkdyn::study::run(&cfg).unwrap();
    let s = report.setup.eta.sqrt();
    let t = report.error.as_ref().unwrap().table.column("t").unwrap();
    assert!((t[0] - 1.5 * s).abs() < 1e-15, "{}", t[0]);
    assert!(t.windows(2).all(|w| w[1] > w[0]));
    let d = report.discrete_table().unwrap();
    let (k, tk) = (d.column("k").unwrap(), d.column("t").unwrap());
    for (k, tk) in k.iter().zip(&tk) {
        assert!((tk - (k + 0.5) * s).abs() < 1e-12, "k = {k}: {tk}");
    }
    // The ODE's row at tau_1 is the twin's iterate 1 in error space, exactly.
    let loss = report.error.as_ref().unwrap().table.column("loss").unwrap();
    let twin = d.column("loss_error_space").unwrap();
    assert!(common::rel(loss[0], twin[1], 1e-12) < 1e-12);
}

#[test]
fn the_high_resolution_lyapunov_functions_do_not_rise_and_sit_under_their_bounds() {
    for optimizer in [Optimizer::Hbf, Optimizer::Nagsc, Optimizer::Nag] {
        for space in [SpaceChoice::Error, SpaceChoice::Weight] {
            let cfg = high(optimizer, space, 400);
            let report = ntkdyn::study::run(&cfg).unwrap();
            let run = match space {
                SpaceChoice::Weight => report.weight.as_ref().unwrap(),
                _ => report.error.as_ref().unwrap(),
            };
            let kind = serde_json::to_value(run.lyapunov).unwrap()["kind"].clone();
            assert_eq!(kind, format!("{}_high", optimizer.name()).as_str());
            assert!(
                run.monotonicity.nonincreasing,
                "{optimizer} {space:?}: {:?}",
                run.monotonicity
            );
            let t = run.table.column("t").unwrap();
            let v = run.table.column("lyapunov").unwrap();
            let loss = run.table.column("loss").unwrap();
            let bound = run.table.column("loss_bound").unwrap();
            for k in 0..t.len() {
                assert!(
                    loss[k] <= bound[k] * (1.0 + 1e-9),
                    "{optimizer} {space:?} t = {}",
                    t[k]
                );
                // E(t) <= exp(-sqrt(mu_b) t/4) E(0) (hbf, nagsc); E(tau) <= E(tau_1) (nag).
                let envelope = run.lyapunov.envelope(t[k]).unwrap_or(1.0);
                assert!(
                    v[k] <= envelope * v[0] * (1.0 + 1e-9),
                    "{optimizer} {space:?} t = {}",
                    t[k]
                );
            }
            assert!(v[t.len() - 1] < v[0]);
        }
    }
}

/// Halving the clock step h (quartering eta) shrinks the gap between the heavy-ball twin's
/// outputs on the network and those of the weight-space ODE by about 2 at low and about 4 at
/// high resolution, at large width (the outputs, not the weights: each activation crossing
/// costs O(h) in W). m = 8000, n = 10, T = 1: each run is a few seconds in release.
#[test]
fn halving_h_halves_the_low_and_quarters_the_high_resolution_gap_in_weight_space() {
    let mut cfg = common::small(Optimizer::Hbf, 10, 10, 8000, 0);
    cfg.t_end = 1.0;
    cfg.rtol = 1e-10;
    cfg.atol = 1e-12;
    cfg.progress = false;
    let setup = ntkdyn::study::prepare(&cfg).unwrap();
    let damping = cfg.damping(setup.lambda0);
    assert!(matches!(damping, Damping::Constant(_)));
    for (resolution, lo, hi) in [(Resolution::Low, 1.7, 2.3), (Resolution::High, 3.4, 4.6)] {
        let gaps: Vec<f64> = [0.04, 0.01]
            .iter()
            .map(|&eta| {
                let setting = Setting {
                    optimizer: Optimizer::Hbf,
                    eta,
                    damping,
                };
                ntkdyn::gap::weight_space_gap(&cfg, &setup, &setting, resolution)
                    .unwrap()
                    .gap_delta
            })
            .collect();
        let r = gaps[0] / gaps[1];
        assert!(
            (lo..=hi).contains(&r),
            "{resolution:?}: {:e} -> {:e}, ratio {r}",
            gaps[0],
            gaps[1]
        );
    }
}

#[test]
fn resolution_both_is_refused_for_a_run_and_high_is_written_to_run_toml() {
    let dir = common::TempDir::new("resolution");
    let run = |args: &[&str], out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
            .args(args)
            .args([
                "--n",
                "6",
                "--d",
                "3",
                "--m",
                "50",
                "--t-end",
                "1",
                "--samples",
                "5",
            ])
            .arg("--out")
            .arg(dir.join(out))
            .arg("--quiet")
            .output()
            .unwrap()
    };
    let refused = run(&["hbf", "--resolution", "both"], "both");
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(
        text.contains("resolution") && text.contains("gap"),
        "{text}"
    );
    assert!(run(&["nagsc", "--resolution", "high"], "high")
        .status
        .success());
    let toml = std::fs::read_to_string(dir.join("high").join("run.toml")).unwrap();
    assert!(toml.contains("resolution = \"high\""), "{toml}");
    let summary = std::fs::read_to_string(dir.join("high").join("summary.json")).unwrap();
    assert!(summary.contains("\"resolution\": \"high\""));
    assert!(run(&["nagsc"], "low").status.success());
    let toml = std::fs::read_to_string(dir.join("low").join("run.toml")).unwrap();
    assert!(!toml.contains("resolution"), "{toml}");
    // gap takes both (its default) and the run options' --space.
    let gap = run(
        &["gap", "hbf", "--etas", "0.04,0.01", "--space", "both"],
        "gap",
    );
    assert!(
        gap.status.success(),
        "{}",
        String::from_utf8_lossy(&gap.stderr)
    );
    let csv = std::fs::read_to_string(dir.join("gap").join("gap.csv")).unwrap();
    for key in ["error,low", "error,high", "weight,low", "weight,high"] {
        assert!(csv.contains(key), "{csv}");
    }
}
