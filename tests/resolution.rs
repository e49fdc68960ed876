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
    // At eta = 0.01 each tau_k is the double nearest the decimal (k + 1/2) 0.1, as the
    // other clocks' k h are (the binary product gives 0.15000000000000002 at k = 1).
    let mut at = cfg.clone();
    at.eta = 0.01;
    at.t_end = 2.0;
    let d = ntkdyn::study::run(&at).unwrap().discrete_table().unwrap();
    for (k, tk) in d.column("k").unwrap().iter().zip(d.column("t").unwrap()) {
        let decimal: f64 = format!("{}e-2", (2 * *k as u64 + 1) * 5).parse().unwrap();
        assert_eq!(tk, decimal, "k = {k}");
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

/// The output-space evaluator takes the dense held driver's steps (same stages, same
/// blend of each crossing, in exact arithmetic): on a small network with crossings, the
/// high-resolution outputs of the two agree to rounding until rounding decides a crossing
/// or a step differently, and to the blend's error after.
#[test]
fn the_output_space_high_resolution_steps_are_the_dense_held_steps() {
    use ntkdyn::dynamics::high_resolution::{output_space::integrate_high_output_space, HighFlow};
    use ntkdyn::dynamics::modified_flow::ModifiedWeightSpace;
    use ntkdyn::dynamics::{Flow, WeightSpace};
    use ntkdyn::integrate::integrate_held;
    for optimizer in Optimizer::ALL {
        let mut cfg = common::small(optimizer, 8, 3, 100, 3);
        cfg.rtol = 1e-10;
        cfg.atol = 1e-12;
        let setup = ntkdyn::study::prepare(&cfg).unwrap();
        let model = &setup.model;
        let setting = Setting {
            optimizer,
            eta: setup.eta,
            damping: cfg.damping(setup.lambda0),
        };
        let space = WeightSpace::new(model);
        let flow = HighFlow::new(&space, &setting);
        let (t0, y0) = flow.initial(&setting, setup.w0.as_slice());
        let times: Vec<f64> = (0..=8).map(|k| t0 + 0.5 * k as f64).collect();
        let dim = model.m() * model.d();
        let outputs = |out: &mut Vec<nalgebra::DVector<f64>>, y: &nalgebra::DVector<f64>| {
            out.push(model.residual(&model.weights(&y.as_slice()[..dim])));
            true
        };
        let settings = ntkdyn::integrate::SolverSettings {
            solver: Solver::Dopri5,
            rtol: 1e-10,
            atol: 1e-12,
            step: 0.01,
            max_steps: 1_000_000,
            max_step: cfg.max_step(),
        };
        let mut dense = Vec::new();
        let stats = if setting.damping == Damping::None {
            let igr = ModifiedWeightSpace::new(model, setting.eta / 2.0);
            let flow = Flow::new(&igr, Damping::None);
            integrate_held(flow, y0.clone(), &times, &settings, |_, y| {
                outputs(&mut dense, y)
            })
            .0
        } else {
            integrate_held(flow, y0.clone(), &times, &settings, |_, y| {
                outputs(&mut dense, y)
            })
            .0
        };
        assert!(stats.switches > 0, "{optimizer}: no crossing to test");
        let mut fast = Vec::new();
        integrate_high_output_space(
            model,
            flow.form,
            y0,
            &times,
            &settings,
            |_| {},
            |_, y| outputs(&mut fast, y),
        );
        assert_eq!(dense.len(), fast.len());
        // Step for step they are rounding apart until a crossing's sign at rounding level or
        // an error estimate at the threshold is decided differently (measured: hbf 1e-13
        // throughout, gf from t = 1, nagsc from its first crossings); from there each
        // carries the blend's O(h^2) per crossing, below 1e-5 at rtol 1e-10. A wrong
        // coefficient of a form (c = 1 - b s/2 left out, say) moves them 1e-2 apart.
        let gaps: Vec<f64> = dense
            .iter()
            .zip(&fast)
            .map(|(a, b)| (a - b).norm() / dense[0].norm())
            .collect();
        assert!(gaps.iter().all(|g| *g < 1e-5), "{optimizer}: {gaps:?}");
    }
}

/// Shi et al.'s decay of the hbf and nagsc energies assumes mu_b = (b/(2 - b s))^2 <=
/// lambda_min. In weight space mu = lambda0/2 and the default friction b = sqrt(2 lambda0)
/// gives mu_b = mu/c^2 > mu: the bound is reported as not applicable (loss_bound +inf,
/// bound_condition false, a warning); a smaller friction meets the assumption and the bound
/// holds.
#[test]
fn the_high_resolution_energy_bound_is_not_applied_where_mu_b_exceeds_lambda_min() {
    for optimizer in [Optimizer::Hbf, Optimizer::Nagsc] {
        let cfg = high(optimizer, SpaceChoice::Both, 400);
        let report = ntkdyn::study::run(&cfg).unwrap();
        let w = report.weight.as_ref().unwrap();
        let c = w.lyapunov.bound_condition().unwrap();
        let s = report.setup.eta.sqrt();
        let b = (2.0 * report.setup.lambda0).sqrt();
        let mu_b = (b / (2.0 - b * s)).powi(2);
        assert!(common::rel(c.mu_b, mu_b, 1e-300) < 1e-12);
        assert!(!c.mu_b_le_lambda_min && c.mu_b > c.mu, "{optimizer}: {c:?}");
        let bound = w.table.column("loss_bound").unwrap();
        assert!(bound.iter().all(|v| *v == f64::INFINITY), "{optimizer}");
        assert!(w.lyapunov.envelope(1.0).is_none());
        let warned = report
            .setup
            .warnings
            .iter()
            .filter(|m| m.contains("mu_b") && m.contains("not applicable"))
            .count();
        // Error space's mu is lambda_min of the fixed kernel (about lambda0): it holds there.
        let e = report.error.as_ref().unwrap();
        assert!(e.lyapunov.bound_condition().unwrap().mu_b_le_lambda_min);
        assert_eq!(warned, 1, "{optimizer}: {:?}", report.setup.warnings);
        // Half the friction: mu_b about mu/4, the bound applies and holds.
        let mut cfg = cfg;
        cfg.space = SpaceChoice::Weight;
        cfg.friction = Some(b / 2.0);
        let report = ntkdyn::study::run(&cfg).unwrap();
        let w = report.weight.as_ref().unwrap();
        assert!(w.lyapunov.bound_condition().unwrap().mu_b_le_lambda_min);
        let (loss, bound) = (
            w.table.column("loss").unwrap(),
            w.table.column("loss_bound").unwrap(),
        );
        assert!(bound.iter().all(|v| v.is_finite()));
        assert!(loss.iter().zip(&bound).all(|(l, b)| *l <= b * (1.0 + 1e-9)));
        assert!(!report.setup.warnings.iter().any(|m| m.contains("mu_b")));
    }
}

#[test]
fn gap_refuses_beta_in_one_line_before_claiming_its_folder() {
    let dir = common::TempDir::new("gap-beta");
    let out = dir.join("o");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_ntkdyn"))
        .args(["gap", "hbf", "--etas", "0.04,0.01", "--beta", "0.5"])
        .args(["--n", "6", "--d", "3", "--m", "50", "--t-end", "1"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--beta"), "{err}");
    assert!(!out.exists());
}
