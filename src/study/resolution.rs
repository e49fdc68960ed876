//! `--resolution high`: the spaces integrated with the high-resolution ODEs
//! ([`crate::dynamics::high_resolution`]), observed by the same probes as at low resolution,
//! with the high-resolution Lyapunov functions and, in error space, the exact per-mode
//! solution of the high-resolution ODE ([`HighResolutionSolution`]) as the check.
//!
//! High-resolution nag starts at tau_1 = gamma s/2 (W(tau_1) = W0 - eta grad L(W0)): its
//! rows start there, followed by the run's output times beyond it, and its twin's iterates
//! sit at tau_k = (k + gamma/2 - 1) s.

use std::time::Instant;

use nalgebra::DVector;

use crate::dynamics::high_resolution::output_space::integrate_high_output_space;
use crate::dynamics::high_resolution::{Form, HighFlow};
use crate::dynamics::modified_flow::ModifiedWeightSpace;
use crate::dynamics::{Damping, ErrorSpace, Flow, Snapshot, WeightSpace};
use crate::integrate::{integrate, integrate_held, Solver, SwitchingSystem};
use crate::observe::core::Core;
use crate::observe::exact::ExactCheck;
use crate::observe::lyapunov::LyapunovProbe;
use crate::observe::pl::PlProbe;
use crate::observe::{Probe, Progress, Recorder, Sample};
use crate::optimizer::DiscreteRun;
use crate::study::config::RunConfig;
use crate::study::executor::{error_resolution, error_solver, resolution, space_run, Watched};
use crate::study::report::SpaceRun;
use crate::study::setup::Setup;
use crate::theory::high_resolution::{HighResolutionSolution, Resolution, Setting};
use crate::theory::spectrum::extreme_eigenvalues;

/// The setting (optimizer, eta, damping) of a run.
pub fn setting(cfg: &RunConfig, setup: &Setup, damping: Damping) -> Setting {
    Setting {
        optimizer: cfg.optimizer,
        eta: setup.eta,
        damping,
    }
}

/// The output times of the high-resolution ODE: its start time t0, then the run's times
/// beyond it (all of them when t0 = 0).
pub fn times_from(times: &[f64], t0: f64) -> Vec<f64> {
    std::iter::once(t0)
        .chain(times.iter().copied().filter(|&t| t > t0))
        .collect()
}

/// The high-resolution twin's clock: nag's iterates at tau_k = (k + gamma/2 - 1) s (the
/// others keep t_k = k h).
pub fn shift_twin(setting: &Setting, run: &mut DiscreteRun) {
    if setting.start_time(Resolution::High) > 0.0 {
        for i in &mut run.iterates {
            i.t = setting.time(i.k, Resolution::High);
        }
        if let Some(t) = run.diverged_at.as_mut() {
            let k = (*t / setting.h()).round() as usize;
            *t = setting.time(k, Resolution::High);
        }
    }
}

/// Error space at high resolution: by the exact per-mode solution or by ODE (checked
/// against it).
pub fn run_error_high(
    cfg: &RunConfig,
    setup: &Setup,
    damping: Damping,
    progress: &dyn Progress,
) -> SpaceRun {
    let started = Instant::now();
    let (h, extremes) = setup.error_kernel(cfg.kernel);
    let mu = extremes.0.max(0.0);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    let setting = setting(cfg, setup, damping);
    // issue 20: H's decomposition, or at large n its Krylov compression from Delta(0) on
    // which the high-resolution modes are converged at the output times.
    let modes = |lambda: f64, times: &[f64]| setting.mode_states(Resolution::High, lambda, times);
    let mode_times = times_from(&setup.times, setting.start_time(Resolution::High));
    let (spectrum, krylov) =
        crate::study::executor::error_modes(cfg, setup, &delta0, &mode_times, &modes);
    let exact = HighResolutionSolution::new(spectrum, &delta0, setting);
    let space = ErrorSpace { h: h.clone() };
    let low = cfg.optimizer.method().lyapunov(damping, mu, cfg.alpha);
    let lyapunov = setting.lyapunov(Resolution::High, low, mu);
    let (solver, solver_note) = error_solver(cfg, setup);
    let solver_note = crate::study::executor::krylov_note(solver_note, krylov);
    let e = resolution(solver, error_resolution(cfg, setup));
    let mut probes: Vec<Box<dyn Probe + '_>> = vec![
        Box::new(Core),
        Box::new(LyapunovProbe::with_resolution(lyapunov, e.unwrap_or(0.0)).with_kernel(h.clone())),
        Box::new(PlProbe),
    ];
    if let Some(probe) = crate::study::held_out::kernel_test(cfg, setup) {
        probes.push(Box::new(probe));
    }
    let flow = HighFlow::new(&space, &setting);
    let (t0, y0) = flow.initial(&setting, delta0.as_slice());
    let times = times_from(&setup.times, t0);
    progress.start("error space (high resolution)", cfg.t_end);
    if solver == Solver::Exact {
        let at = |t| exact.at(t);
        return crate::study::executor::record_exact(
            probes,
            &space,
            at,
            &times,
            extremes,
            lyapunov,
            started,
            solver_note,
            progress,
        );
    }
    probes.push(Box::new(ExactCheck::with_floor(&exact, e.unwrap_or(0.0))));
    let mut recorder = Recorder::new(probes);
    let outcome = integrate(
        Watched::new(flow, progress),
        y0,
        &times,
        &cfg.solver_settings(),
        |t, y| {
            progress.at(t);
            recorder.record(&Sample {
                t,
                snapshot: &flow.snapshot(y.as_slice()),
                kernel_extremes: extremes,
                same_kernel: false,
                weights: None,
            })
        },
    );
    progress.done();
    space_run(recorder.finish(), lyapunov, cfg.solver, outcome, started, e).0
}

/// Weight space at high resolution: hbf, nagsc, nag by the Hessian-free forms, gf by the
/// modified flow W' = -J^T (I + (eta/2) H) Delta ([`ModifiedWeightSpace`], kappa = eta/2),
/// by the held-pattern Dormand-Prince driver with the step cap (dopri5; its stages taken in
/// output space, as at low resolution, unless the output layer is trained) or the
/// configured solver.
pub fn run_weight_high(
    cfg: &RunConfig,
    setup: &Setup,
    damping: Damping,
    progress: &dyn Progress,
) -> SpaceRun {
    let model = &setup.model;
    let setting = setting(cfg, setup, damping);
    if damping == Damping::None {
        let space = ModifiedWeightSpace::new(model, setting.eta / 2.0);
        let flow = Flow::new(&space, Damping::None);
        let y0 = flow.initial_state(setup.w0.as_slice());
        return weight_run(
            cfg,
            setup,
            damping,
            (flow, Form::of(&setting)),
            |y| flow.snapshot(y),
            (0.0, y0),
            progress,
        );
    }
    let space = WeightSpace::new(model);
    let flow = HighFlow::new(&space, &setting);
    let start = flow.initial(&setting, setup.w0.as_slice());
    weight_run(
        cfg,
        setup,
        damping,
        (flow, flow.form),
        |y| flow.snapshot(y),
        start,
        progress,
    )
}

/// A weight-space run of `system` (whose form is `form`) from `(t0, y0)`, its states
/// observed through `snapshot`: with dopri5 and ReLU's kinks (output layer fixed), by the
/// held-pattern steps taken in output space
/// ([`crate::dynamics::high_resolution::output_space`]).
fn weight_run<F: SwitchingSystem + Copy>(
    cfg: &RunConfig,
    setup: &Setup,
    damping: Damping,
    (system, form): (F, Form),
    snapshot: impl Fn(&[f64]) -> Snapshot,
    (t0, y0): (f64, DVector<f64>),
    progress: &dyn Progress,
) -> SpaceRun {
    let started = Instant::now();
    let model = &setup.model;
    let setting = setting(cfg, setup, damping);
    let mu = setup.lambda0 / 2.0;
    let low = cfg.optimizer.method().lyapunov(damping, mu, cfg.alpha);
    let lyapunov = setting.lyapunov(Resolution::High, low, mu);
    let probes = crate::study::executor::weight_probes(cfg, setup, lyapunov, damping);
    let mut recorder = Recorder::new(probes);
    let times = times_from(&setup.times, t0);
    let dim = model.m() * model.columns();
    progress.start("weight space (high resolution)", cfg.t_end);
    let observe = |t: f64, y: &DVector<f64>| {
        progress.at(t);
        let s = snapshot(y.as_slice());
        let gram = s.gram.as_ref().expect("weight space carries H(t)");
        recorder.record(&Sample {
            t,
            kernel_extremes: extreme_eigenvalues(gram),
            same_kernel: false,
            snapshot: &s,
            weights: Some(model.weights(&y.as_slice()[..dim])),
        })
    };
    let settings = cfg.solver_settings();
    let switching = cfg.solver == Solver::Dopri5 && model.activation().switching();
    let outcome = if switching && !model.train().output_layer() {
        integrate_high_output_space(
            model,
            form,
            y0,
            &times,
            &settings,
            |t| progress.at(t),
            observe,
        )
    } else if switching {
        integrate_held(system, y0, &times, &settings, observe)
    } else {
        integrate(
            Watched::new(system, progress),
            y0,
            &times,
            &settings,
            observe,
        )
    };
    progress.done();
    crate::study::executor::finish_weight(cfg, setup, recorder, lyapunov, outcome, started)
}

/// The warnings of runs whose high-resolution energy bound does not apply: Shi et al.'s
/// decay of the hbf and nagsc energies assumes mu_b = (b/(2 - b s))^2 <= lambda_min, and the
/// run's lower bound mu on lambda_min is below mu_b (their loss_bound is then +inf, and
/// summary.json's `lyapunov.bound_condition.mu_b_le_lambda_min` false). `runs`: weight
/// space's, error space's.
pub fn bound_warnings(cfg: &RunConfig, runs: [Option<&SpaceRun>; 2]) -> Vec<String> {
    runs.into_iter()
        .zip(["weight", "error"])
        .filter_map(|(run, space)| {
            let c = run?.lyapunov.bound_condition()?;
            (!c.mu_b_le_lambda_min).then(|| {
                format!(
                    "{} at high resolution, {space} space: the energy bound assumes mu_b = (b/(2 - b s))^2 = {:.4e} <= lambda_min, but lambda_min is only known to be >= {:.4e}; loss_bound is not applicable (left at inf)",
                    cfg.optimizer.name(),
                    c.mu_b,
                    c.mu
                )
            })
        })
        .collect()
}
