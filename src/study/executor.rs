//! Run one study: the chosen optimizer in weight space, in error space and as its discrete
//! twin, each space observed by its probes.

use nalgebra::DVector;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use crate::dynamics::output_space::{integrate_output_space_landed, Crossings, Landed};
use crate::dynamics::{Damping, ErrorSpace, Flow, WeightSpace};
use crate::error::Error;
use crate::integrate::{integrate, integrate_smooth, OdeSystem, Outputs, Solver, Stats, Stop};
use crate::io::Table;
use crate::model::Data;
use crate::observe::core::Core;
use crate::observe::drift::Drift;
use crate::observe::exact::ExactCheck;
use crate::observe::extremes::ExtremesBeside;
use crate::observe::lyapunov::LyapunovProbe;
use crate::observe::pl::PlProbe;
use crate::observe::sharpness::Sharpness;
use crate::observe::test_gap::{TestGap, TwinTest};
use crate::observe::{Findings, Probe, Progress, Recorder, Sample, Silent};
use crate::optimizer::{twin, Optimizer};
use crate::study::config::{KernelChoice, RunConfig, SpaceChoice};
use crate::study::report::{Checks, Report, SpaceRun};
use crate::study::setup::{setup, Setup};
use crate::theory::diagnostics::PlBall;
use crate::theory::exact::ExactSolution;
use crate::theory::lyapunov::{monotonicity_above, Lyapunov, ToleranceFloor};
use crate::theory::spectrum::Spectrum;
use crate::theory::stiffness::{exact_instead, explicit_steps, MANY_STEPS, STABLE_H_LAMBDA};

/// A space's table, findings and solver record as a [`SpaceRun`], with the monotonicity of
/// its Lyapunov column judged against the tolerance floor `resolution` (the norm of a residual
/// error the absolute tolerance allows; None for the exact solution).
pub(crate) fn space_run(
    (table, findings): (Table, Findings),
    lyapunov: Lyapunov,
    solver: Solver,
    (stats, stop): (Stats, Stop),
    started: Instant,
    resolution: Option<f64>,
) -> (SpaceRun, Findings) {
    let times = table.column("t").unwrap_or_default();
    let values = table.column("lyapunov").unwrap_or_default();
    let floor = if resolution.is_some() {
        findings.lyapunov_floor.as_slice()
    } else {
        &[]
    };
    let monotonicity = monotonicity_above(&times, &values, floor);
    let final_loss = table
        .column("loss")
        .and_then(|l| l.last().copied())
        .unwrap_or(f64::NAN);
    let tolerance_floor = resolution.map(|e| {
        let mut f = ToleranceFloor::new(e, final_loss);
        if let Some((count, worst)) = findings.exact_below_floor {
            f.exact_samples_below_floor = Some(count);
            f.exact_max_abs_error_below_floor = Some(worst);
        }
        f
    });
    let run = SpaceRun {
        monotonicity,
        table,
        solver,
        stats,
        stop,
        wall_seconds: started.elapsed().as_secs_f64(),
        lyapunov,
        exact_max_relative_error: findings.exact_max_relative_error,
        pl_ball: None,
        tolerance_floor,
        solver_note: None,
        snapshot_seconds: None,
    };
    (run, findings)
}

/// The norm of a residual error the absolute tolerance allows in error space: atol in each
/// of the n components of Delta.
pub(crate) fn error_resolution(cfg: &RunConfig, setup: &Setup) -> f64 {
    cfg.atol * (setup.model.n() as f64).sqrt()
}

/// The same in weight space, where the tolerance is on the m d weights: an error dW of atol
/// in each moves Delta by J dW, |J dW| <= sqrt(lambda_max(H)) |dW|, and never less than
/// error space's atol sqrt(n).
pub(crate) fn weight_resolution(cfg: &RunConfig, setup: &Setup) -> f64 {
    let md = (setup.model.m() * setup.model.d()) as f64;
    let n = setup.model.n() as f64;
    cfg.atol * (setup.h0_extremes.1.max(0.0) * md).max(n).sqrt()
}

/// Tolerances resolve nothing for the fixed steps of rk4 or the exact solution.
pub(crate) fn resolution(solver: Solver, e: f64) -> Option<f64> {
    matches!(solver, Solver::Dopri5 | Solver::Dop853).then_some(e)
}

/// The solver of error space: the configured one, or the exact solution (and why) when the
/// space is stiff ([`crate::theory::stiffness::EXACT_ABOVE`]) and no `--solver` asked for
/// an ODE. An explicit solver on a stiff fixed linear ODE takes steps for stability alone,
/// and the eigen-decomposition the exact solution needs is computed anyway for the ODE's check.
pub fn error_solver(cfg: &RunConfig, setup: &Setup) -> (Solver, Option<String>) {
    if cfg.solver != Solver::Dopri5 || cfg.solver_requested {
        return (cfg.solver, None);
    }
    let lambda_max = setup.error_kernel(cfg.kernel).1 .1;
    let second_order = cfg.damping(setup.lambda0).second_order();
    match exact_instead(lambda_max, cfg.t_end, second_order) {
        Some(why) => (Solver::Exact, Some(why)),
        None => (cfg.solver, None),
    }
}

/// A right-hand side that reports its time to a progress display every [`WATCH_EVERY`]
/// evaluations, so a stiff run's display moves between output times too.
pub(crate) struct Watched<'p, F> {
    system: F,
    progress: &'p dyn Progress,
    calls: Cell<u32>,
}

/// Evaluations between two progress reports (a report costs a lock and a clock read).
const WATCH_EVERY: u32 = 64;

impl<'p, F> Watched<'p, F> {
    pub(crate) fn new(system: F, progress: &'p dyn Progress) -> Self {
        Watched {
            system,
            progress,
            calls: Cell::new(0),
        }
    }
}

impl<F: OdeSystem> OdeSystem for Watched<'_, F> {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        self.system.rhs(t, y, dy);
        let calls = self.calls.get().wrapping_add(1);
        self.calls.set(calls);
        if calls.is_multiple_of(WATCH_EVERY) {
            self.progress.at(t);
        }
    }
    fn blocks(&self) -> usize {
        self.system.blocks()
    }
}

/// The probes of every weight-space run: the core columns, the Lyapunov function (judged
/// against the tolerance floor), the drifts of the kernel and weights (and of a with --train
/// wa), the PL* quantities, lambda_max, and with held-out points the gap to the kernel
/// predictor.
pub(crate) fn weight_probes<'a>(
    cfg: &RunConfig,
    setup: &'a Setup,
    lyapunov: Lyapunov,
    damping: Damping,
) -> Vec<Box<dyn Probe + 'a>> {
    let model = &setup.model;
    let e = resolution(cfg.solver, weight_resolution(cfg, setup)).unwrap_or(0.0);
    let mut probes: Vec<Box<dyn Probe + 'a>> = vec![
        Box::new(Core),
        Box::new(LyapunovProbe::with_resolution(lyapunov, e)),
        Box::new(Drift::new(
            &setup.h0,
            &setup.w0,
            model.pattern(&setup.w0.as_view()),
        )),
        Box::new(PlProbe),
        // issue 20: lambda_max(H(t)), from the solve that gives lambda_min.
        Box::new(Sharpness),
    ];
    // issue 17: --train wa adds a_drift = |a(t) - a0| / sqrt m.
    if model.train().output_layer() {
        let a0 = setup.w0.column(model.d()).clone_owned();
        probes.push(Box::new(crate::observe::output_drift::OutputDrift::new(a0)));
    }
    if let Some(test) = &setup.test {
        let (_, cross) = super::held_out::kernels(cfg.kernel, setup, test);
        probes.push(Box::new(TestGap::new(
            model,
            &setup.w0,
            test,
            kernel_spectrum(cfg.kernel, setup),
            &cross,
            damping,
        )));
    }
    probes
}

/// Weight space: integrate the network and record the drift of its kernel and weights, the
/// PL* quantities and (with held-out points) the gap to the kernel predictor.
pub fn run_weight(
    cfg: &RunConfig,
    setup: &Setup,
    damping: Damping,
    progress: &dyn Progress,
) -> SpaceRun {
    // issue 19: --beta with the high-resolution ODE: the modified flow
    if let Some(kappa) = cfg.modified_kappa(setup.eta) {
        return crate::study::fixed_momentum::run_weight_modified(cfg, setup, kappa, progress);
    }
    let started = Instant::now();
    let model = &setup.model;
    let space = WeightSpace::new(model);
    let flow = Flow::new(&space, damping);
    let method = cfg.flow_optimizer().method();
    let lyapunov = method.lyapunov(damping, setup.lambda0 / 2.0, cfg.alpha);
    let probes = weight_probes(cfg, setup, lyapunov, damping);
    let mut recorder = Recorder::new(probes);
    let y0 = flow.initial_state(setup.w0.as_slice());
    let dim = model.m() * model.columns();
    let times = setup.times.clone();
    progress.start("weight space", cfg.t_end);
    // issue 20: what the output times cost (summary timings.snapshot_seconds): the run's own
    // thread's time in them, waits for H(t)'s ends included.
    let mut observing = std::time::Duration::ZERO;
    let settings = cfg.solver_settings();
    // issue 17: with a trained output layer u is not linear in W on a held pattern.
    let held = model.activation().switching() && !model.train().output_layer();
    let outcome = std::thread::scope(|scope| {
        // issue 20: H(t)'s ends solved beside the run (`ExtremesBeside`): each sample is
        // recorded one output time late, when its ends are in, with the same probes in the
        // same order.
        let mut ends = ExtremesBeside::spawn(scope);
        let mut pending: Option<Pending> = None;
        let record = |recorder: &mut Recorder<'_>, p: &Pending, kernel_extremes| {
            recorder.record(&Sample {
                t: p.t,
                kernel_extremes,
                same_kernel: p.same_kernel,
                snapshot: &p.snapshot,
                weights: Some(p.weights.as_view()),
            })
        };
        // issue 20: where the output-space evaluator landed, its J W - y, J V and pattern serve
        // the snapshot (momentum flows; `landed`), else the snapshot is formed from the state.
        let mut observe = |t: f64, y: &DVector<f64>, landed: Option<Landed<'_>>| {
            progress.at(t);
            let clock = Instant::now();
            let snapshot = match landed {
                Some(l) => space.snapshot_landed(&l),
                None => flow.snapshot(y.as_slice()),
            };
            let gram = snapshot.gram.as_ref().expect("weight space carries H(t)");
            // Both ends of H(t)'s spectrum in one solve, beside the run.
            let same_kernel = ends.submit(gram);
            if let Some(p) = pending.take() {
                record(&mut recorder, &p, ends.take());
            }
            let go_on = snapshot.finite();
            pending = Some(Pending {
                t,
                snapshot,
                same_kernel,
                weights: model.weights(&y.as_slice()[..dim]).clone_owned(),
            });
            observing += clock.elapsed();
            go_on
        };
        let outcome = if cfg.solver == Solver::Dopri5 && held {
            // The held-pattern steps, taken in output space (dynamics::output_space).
            integrate_output_space_landed(
                model,
                flow.damping,
                y0,
                &times,
                &settings,
                Crossings::Corrected,
                |t| progress.at(t),
                &mut observe,
            )
        } else if cfg.solver == Solver::Dopri5 && !model.activation().switching() {
            // issue 17: a smooth activation's right-hand side is smooth: Dormand-Prince in place
            // through the held driver (nothing held), one run through all output times, read
            // off its continuous extension between steps (ode_solvers' Dopri5, restarted on
            // every interval, took two steps per interval; landing on each of the 201 output
            // times of gf erf T = 10, one). The step cap (RunConfig::max_step, at most 0.1 for
            // a smooth activation) bounds the accuracy: 102 steps, loss within 7e-7 relative
            // of a tight reference (5e-9 landed; 5e-6 uncapped in 21 steps; hbf at its own cap
            // 0.3, 1e-5), at the requested rtol 1e-6.
            integrate_smooth(
                flow,
                y0,
                &times,
                &settings,
                Outputs::Interpolate,
                |t| progress.at(t),
                |t, y| observe(t, y, None),
            )
        } else {
            integrate(
                Watched::new(flow, progress),
                y0,
                &times,
                &settings,
                |t, y| observe(t, y, None),
            )
        };
        // The last sample, recorded when its ends are in.
        if let Some(p) = &pending {
            let clock = Instant::now();
            record(&mut recorder, p, ends.take());
            observing += clock.elapsed();
        }
        outcome
    });
    progress.done();
    let mut run = finish_weight(cfg, setup, recorder, lyapunov, outcome, started);
    run.snapshot_seconds = Some(observing.as_secs_f64());
    run
}

/// An observed sample waiting for its H(t)'s ends ([`ExtremesBeside`]) to be recorded.
struct Pending {
    t: f64,
    snapshot: crate::dynamics::Snapshot,
    same_kernel: bool,
    weights: nalgebra::DMatrix<f64>,
}

/// An error-space run solved exactly: the probes are fed the exact solution
/// `at(t) = (Delta(t), Delta'(t))` at `times` (until one stops the run), and the run is
/// recorded as solver `exact` with `solver_note`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_exact<S: crate::dynamics::Space>(
    probes: Vec<Box<dyn Probe + '_>>,
    space: &S,
    at: impl Fn(f64) -> (DVector<f64>, DVector<f64>),
    times: &[f64],
    extremes: (f64, f64),
    lyapunov: Lyapunov,
    started: Instant,
    solver_note: Option<String>,
    progress: &dyn Progress,
) -> SpaceRun {
    let mut recorder = Recorder::new(probes);
    let mut stop = Stop::Completed;
    for &t in times {
        progress.at(t);
        let (d, v) = at(t);
        let s = space.snapshot(d.as_slice(), v.as_slice());
        if !recorder.record(&Sample {
            t,
            snapshot: &s,
            kernel_extremes: extremes,
            same_kernel: false,
            weights: None,
        }) {
            stop = Stop::Observer { t };
            break;
        }
    }
    progress.done();
    let mut run = space_run(
        recorder.finish(),
        lyapunov,
        Solver::Exact,
        (Stats::default(), stop),
        started,
        None,
    )
    .0;
    run.solver_note = solver_note;
    run
}

/// A weight-space run's [`SpaceRun`] from its recorder and the integrator's outcome: the
/// table, the Lyapunov verdict against the tolerance floor, and the PL* ball (Liu, Zhu and
/// Belkin 2022) of the run's inf PL ratio, sup kernel condition and weight distance.
pub(crate) fn finish_weight(
    cfg: &RunConfig,
    setup: &Setup,
    recorder: Recorder<'_>,
    lyapunov: Lyapunov,
    outcome: (Stats, Stop),
    started: Instant,
) -> SpaceRun {
    let e = resolution(cfg.solver, weight_resolution(cfg, setup));
    let (mut out, findings) =
        space_run(recorder.finish(), lyapunov, cfg.solver, outcome, started, e);
    let loss0 = out
        .table
        .column("loss")
        .and_then(|l| l.first().copied())
        .unwrap_or(f64::NAN);
    out.pl_ball = Some(PlBall::new(
        out.inf_pl_ratio(),
        out.sup_kernel_cond(),
        findings.beta.unwrap_or(0.0),
        loss0,
        findings.max_distance.unwrap_or(0.0),
    ));
    out
}

/// The eigen-decomposition of the kernel `choice` (H(0) or Hinf), made once for --kernel
/// ([`Setup::kernel_spectrum`]).
pub fn kernel_spectrum(choice: KernelChoice, setup: &Setup) -> Arc<Spectrum> {
    setup.kernel_spectrum(choice)
}

/// The most Lanczos steps an error space's Krylov solution may take before H is decomposed
/// instead: a quarter of n, at most 400 (at n = 5000 about 10 s of products with H on the
/// benchmark machine, a quarter of the decomposition).
fn krylov_max_steps(n: usize) -> usize {
    (n / 4).min(400)
}

/// issue 20: the modes error space's exact solution runs on (low or high resolution), and
/// the Krylov dimension when they are Ritz pairs. Below [`crate::theory::exact::KRYLOV_FROM`]
/// points, or with held-out points (whose kernel predictor needs H's eigenvectors), the kernel's
/// eigen-decomposition ([`Setup::kernel_spectrum`]); else the Ritz pairs of the kernel on
/// the Krylov space of `delta0` on which `modes` is converged at `times`
/// ([`crate::theory::exact::krylov_spectrum`]), or the decomposition when that has not
/// converged in [`krylov_max_steps`] steps.
pub(crate) fn error_modes(
    cfg: &RunConfig,
    setup: &Setup,
    delta0: &DVector<f64>,
    times: &[f64],
    modes: &crate::theory::exact::Modes<'_>,
) -> (Arc<Spectrum>, Option<usize>) {
    let (h, _) = setup.error_kernel(cfg.kernel);
    let n = h.nrows();
    if n >= crate::theory::exact::KRYLOV_FROM && setup.test.is_none() {
        if let Some((ritz, k)) =
            crate::theory::exact::krylov_spectrum(h, delta0, times, modes, krylov_max_steps(n))
        {
            return (Arc::new(ritz), Some(k));
        }
    }
    (setup.kernel_spectrum(cfg.kernel), None)
}

/// The note a Krylov solution adds to the run's solver note.
pub(crate) fn krylov_note(note: Option<String>, steps: Option<usize>) -> Option<String> {
    let Some(k) = steps else {
        return note;
    };
    let krylov = format!(
        "f_t(H) Delta(0) on a Krylov space of dimension {k} (Lanczos), converged to {:e} or rounding at every output time",
        crate::theory::exact::KRYLOV_TOLERANCE
    );
    Some(match note {
        Some(note) => format!("{note}; {krylov}"),
        None => krylov,
    })
}

/// Error space with the fixed kernel: by ODE (checked against the exact solution) or exactly.
pub fn run_error(cfg: &RunConfig, setup: &Setup, damping: Damping) -> SpaceRun {
    run_error_with(cfg, setup, damping, &Silent)
}

/// [`run_error`], reporting progress to `progress`.
pub fn run_error_with(
    cfg: &RunConfig,
    setup: &Setup,
    damping: Damping,
    progress: &dyn Progress,
) -> SpaceRun {
    // issue 19: --beta with the high-resolution ODE: the modified flow
    if let Some(kappa) = cfg.modified_kappa(setup.eta) {
        return crate::study::fixed_momentum::run_error_modified(cfg, setup, kappa, progress);
    }
    let started = Instant::now();
    let (h, extremes) = setup.error_kernel(cfg.kernel);
    let method = cfg.flow_optimizer().method();
    let mu = extremes.0.max(0.0);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    // The one eigen-decomposition of the fixed kernel (the setup's), or its Krylov
    // compression from Delta(0) at large n: the exact solution, or the ODE's check.
    let modes = crate::theory::exact::modes_of(damping);
    let (spectrum, krylov) = error_modes(cfg, setup, &delta0, &setup.times, &modes);
    let exact = ExactSolution::from_spectrum(spectrum, &delta0, damping);
    let space = ErrorSpace { h: h.clone() };
    let lyapunov = method.lyapunov(damping, mu, cfg.alpha);
    let (solver, solver_note) = error_solver(cfg, setup);
    let solver_note = krylov_note(solver_note, krylov);
    let e = resolution(solver, error_resolution(cfg, setup));
    let mut probes: Vec<Box<dyn Probe + '_>> = vec![
        Box::new(Core),
        Box::new(LyapunovProbe::with_resolution(lyapunov, e.unwrap_or(0.0))),
        Box::new(PlProbe),
    ];
    // issue 16: the kernel predictor on held-out points, driven by this space's Delta(t).
    if let Some(probe) = crate::study::held_out::kernel_test(cfg, setup) {
        probes.push(Box::new(probe));
    }
    let times = setup.times.clone();
    progress.start("error space", cfg.t_end);
    if solver == Solver::Exact {
        let at = |t| exact.at(t);
        return record_exact(
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
    let flow = Flow::new(&space, damping);
    let outcome = integrate(
        Watched::new(flow, progress),
        flow.initial_state(delta0.as_slice()),
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

/// What a caller sees of a study besides its progress: the problem once it is built, before
/// anything is integrated (the command line prints the run's header and the setup's warnings
/// there, so a stiff run says so at once rather than after it).
pub trait Observer: Progress {
    /// The problem is built and nothing is integrated yet.
    fn prepared(&self, _cfg: &RunConfig, _setup: &Setup) {}
}

impl Observer for Silent {}

/// Build the problem of `cfg` ([`setup`]) and add the warnings that need it built: a problem
/// so stiff that an explicit solver needs many steps ([`crate::theory::stiffness`]).
pub fn prepare(cfg: &RunConfig) -> Result<Setup, Error> {
    let mut setup = setup(cfg)?;
    if let Some(w) = stiffness_warning(cfg, &setup) {
        setup.warnings.push(w);
    }
    let held_out = crate::study::held_out::warnings(cfg, &setup);
    setup.warnings.extend(held_out);
    if matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both) {
        if let (Solver::Exact, Some(why)) = error_solver(cfg, &setup) {
            setup.warnings.push(format!(
                "stiff problem: error space is solved {why}, not integrated step by step"
            ));
        }
    }
    Ok(setup)
}

/// The warning for a stiff problem: the explicit steps its spaces need (lambda_max T / 3, or
/// sqrt(lambda_max) T / 3 for second-order flows) when above [`MANY_STEPS`], or an rk4 step
/// beyond the stability limit.
pub fn stiffness_warning(cfg: &RunConfig, setup: &Setup) -> Option<String> {
    use crate::io::format_f64;
    let mut lambda_max: f64 = 0.0;
    if matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both) {
        lambda_max = lambda_max.max(setup.h0_extremes.1);
    }
    if matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both)
        && error_solver(cfg, setup).0 != Solver::Exact
    {
        lambda_max = lambda_max.max(setup.error_kernel(cfg.kernel).1 .1);
    }
    let second_order = cfg.damping(setup.lambda0).second_order();
    let steps = explicit_steps(lambda_max, cfg.t_end, second_order);
    let remedies = "--normalize the inputs (a kernel of normalized inputs has lambda_max of order n/4), shorten --t-end, or solve error space exactly (--space error --solver exact)";
    let rate = if second_order {
        lambda_max.max(0.0).sqrt()
    } else {
        lambda_max.max(0.0)
    };
    match cfg.solver {
        Solver::Exact => None,
        Solver::Rk4 => (cfg.step * rate > STABLE_H_LAMBDA).then(|| {
            format!(
                "stiff problem: lambda_max = {:.3e}, and rk4 with --step {} is unstable above a step of about {:.3e} (3/lambda_max{}); lower --step or {remedies}",
                lambda_max,
                format_f64(cfg.step),
                STABLE_H_LAMBDA / rate,
                if second_order { " with sqrt(lambda_max) for a second-order flow" } else { "" }
            )
        }),
        Solver::Dopri5 | Solver::Dop853 => (steps > MANY_STEPS).then(|| {
            format!(
                "stiff problem: lambda_max = {:.3e}, so an explicit solver needs about {:.1e} steps to reach T = {} (stable steps are h < ~3/{}); this may take long: {remedies}",
                lambda_max,
                steps,
                format_f64(cfg.t_end),
                if second_order { "sqrt(lambda_max)" } else { "lambda_max" }
            )
        }),
    }
}

/// Run a whole study in memory, without a progress display.
pub fn run(cfg: &RunConfig) -> Result<Report, Error> {
    run_with(cfg, &Silent)
}

/// Run a whole study in memory, reporting the problem once built and then progress (when
/// `cfg.progress`) to `observer`.
///
/// The study runs on a thread of rayon's pool: a parallel pass started from there costs
/// 0.6-5 us of scheduling, against 15-23 us from a thread outside the pool, which must sleep
/// until the pool wakes it (`bench -- rayon` on the benchmark machine; at m = 1000 a whole
/// gradient evaluation on two threads takes about 125 us).
pub fn run_with(cfg: &RunConfig, observer: &dyn Observer) -> Result<Report, Error> {
    let setup = prepare(cfg)?;
    if cfg.progress {
        observer.prepared(cfg, &setup);
    }
    Ok(execute(cfg, setup, observer))
}

/// Integrate a prepared problem ([`prepare`]): [`run_with`] after the setup.
pub fn execute(cfg: &RunConfig, setup: Setup, progress: &dyn Progress) -> Report {
    rayon::scope(|_| execute_on_this_thread(cfg, setup, progress))
}

/// [`execute`] on the calling thread. `compare` runs its three studies on threads of their
/// own: in rayon's pool of two, the third would wait, and a worker waiting inside one study's
/// parallel evaluation could take up another whole study and hold the first one up.
fn execute_on_this_thread(cfg: &RunConfig, setup: Setup, progress: &dyn Progress) -> Report {
    let progress = if cfg.progress { progress } else { &Silent };
    let damping = cfg.damping(setup.lambda0);
    // issue 19: resolution (the high-resolution ODEs: study::resolution)
    // (with --beta the ODE is gradient flow or, at high resolution, the modified flow: run_*)
    let high =
        cfg.resolution == crate::theory::high_resolution::Resolution::High && cfg.beta.is_none();
    let weight = matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both).then(|| {
        if high {
            crate::study::resolution::run_weight_high(cfg, &setup, damping, progress)
        } else {
            run_weight(cfg, &setup, damping, progress)
        }
    });
    let error = matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both).then(|| {
        if high {
            crate::study::resolution::run_error_high(cfg, &setup, damping, progress)
        } else {
            run_error_with(cfg, &setup, damping, progress)
        }
    });
    let started = Instant::now();
    // issue 16: the twin's iterates on the held-out points.
    let mut twin_test = setup
        .test
        .as_ref()
        .filter(|_| cfg.discrete)
        .map(|test| TwinTest::new(&setup.model, test));
    let discrete = cfg.discrete.then(|| {
        let method = cfg.optimizer.method();
        let twin = match cfg.beta {
            // issue 19: --beta: the twin at the fixed momentum B
            Some(beta) => crate::optimizer::Twin::fixed_momentum(cfg.optimizer, beta),
            None => method.twin(damping, setup.eta),
        };
        progress.start(&format!("discrete {}", twin.name()), cfg.t_end);
        let mut calls = 0u32;
        let run = twin::run_watching(
            &setup.model,
            &setup.w0,
            twin,
            setup.eta,
            cfg.t_end,
            &mut |t, w| {
                calls = calls.wrapping_add(1);
                if calls.is_multiple_of(WATCH_EVERY) {
                    progress.at(t);
                }
                if let Some(tt) = twin_test.as_mut() {
                    tt.observe(w);
                }
            },
        );
        progress.done();
        let mut run = run;
        // issue 19: resolution (the high-resolution nag twin on tau_k)
        if high {
            let setting = crate::study::resolution::setting(cfg, &setup, damping);
            crate::study::resolution::shift_twin(&setting, &mut run);
        }
        run
    });
    let held_out = crate::study::held_out::kernel_test(cfg, &setup).map(|kernel| {
        let points = setup.test.as_ref().map_or(0, Data::n);
        crate::study::held_out::HeldOut::new(points, twin_test, &kernel)
    });
    let mut setup = setup;
    // issue 19: the high-resolution energy bound's assumption
    let unmet = crate::study::resolution::bound_warnings(cfg, [weight.as_ref(), error.as_ref()]);
    setup.warnings.extend(unmet);
    if let Some(d) = &discrete {
        let first = d.iterates.first().map(|i| i.loss).unwrap_or(f64::NAN);
        let worst = d.iterates.iter().map(|i| i.loss).fold(0.0, f64::max);
        if worst > 1e3 * first {
            setup.warnings.push(format!(
                "{} with eta = {} is unstable: its loss grew from {first:.3e} to {worst:.3e} (GD needs eta < 2/lambda_max(H(0)) = {:.3e})",
                d.twin.name(),
                d.eta,
                2.0 / setup.h0_extremes.1
            ));
        }
    }
    let mut report = Report {
        config: setup.config.clone(),
        setup,
        damping,
        weight,
        error,
        discrete,
        discrete_wall_seconds: started.elapsed().as_secs_f64(),
        checks: Checks {
            damping_regimes: None,
            pl_prediction: None,
        },
        held_out,
    };
    report.checks = report.check();
    report
}

/// `ntkdyn compare`: gf, hbf and nag on the same data and initialization, each with its twin,
/// run in parallel (one thread each), each configured as `cfg` but for the optimizer and its
/// output directory `cfg.out/<optimizer>`.
pub fn compare(cfg: &RunConfig) -> Result<Vec<Report>, Error> {
    compare_with(cfg, &Silent)
}

/// Progress of one of compare's runs, named after its optimizer.
struct Labeled<'a> {
    label: &'static str,
    inner: &'a dyn Progress,
}

impl Progress for Labeled<'_> {
    fn start(&self, what: &str, t_end: f64) {
        self.inner.start(&format!("{} {what}", self.label), t_end);
    }
    fn at(&self, t: f64) {
        self.inner.at(t);
    }
    fn done(&self) {
        self.inner.done();
    }
}

/// [`compare`], with the problem built once (it does not depend on the optimizer) and shown
/// to `observer` before the three runs start, which report their progress to it (when
/// `cfg.progress`) from their threads.
pub fn compare_with(cfg: &RunConfig, observer: &dyn Observer) -> Result<Vec<Report>, Error> {
    crate::study::validate::preflight(cfg, Optimizer::ALL.len())?;
    let configs: Vec<RunConfig> = Optimizer::ALL
        .into_iter()
        .map(|optimizer| RunConfig {
            optimizer,
            out: cfg.out.join(optimizer.name()),
            ..cfg.clone()
        })
        .collect();
    // The first run's problem is built here, shown to the observer before anything is
    // integrated; the others build theirs on their own threads (each setup records its
    // optimizer's resolved configuration and checks its twin's iterates on its clock). Every
    // problem is built before any run starts, so that one optimizer's refusal (hbf's default
    // friction on a singular Hinf) comes back before the others have been integrated.
    let first = prepare(&configs[0])?;
    if cfg.progress {
        observer.prepared(&configs[0], &first);
    }
    let rest: Vec<Result<Setup, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = configs[1..]
            .iter()
            .map(|c| scope.spawn(move || prepare(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a setup thread panicked"))
            .collect()
    });
    let setups = std::iter::once(Ok(first))
        .chain(rest)
        .collect::<Result<Vec<Setup>, Error>>()?;
    Ok(std::thread::scope(|scope| {
        let handles: Vec<_> = configs
            .iter()
            .zip(setups)
            .map(|(c, setup)| {
                let progress = Labeled {
                    label: c.optimizer.name(),
                    inner: observer,
                };
                scope.spawn(move || execute_on_this_thread(c, setup, &progress))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run thread panicked"))
            .collect()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probes_columns_are_the_documented_schemas_of_weight_and_error_csv() {
        let cfg = RunConfig {
            n: 4,
            d: 3,
            m: 20,
            t_end: 0.5,
            samples: 3,
            discrete: false,
            test_n: 2,
            ..RunConfig::default()
        };
        let report = run(&cfg).unwrap();
        let weight = &report.weight.as_ref().unwrap().table.header;
        let error = &report.error.as_ref().unwrap().table.header;
        let mut want: Vec<&str> = crate::study::WEIGHT_COLUMNS.to_vec();
        // issue 20: the sharpness lambda_max(H(t)).
        want.push("lambda_max");
        want.push(crate::study::report::TEST_GAP_COLUMN);
        // issue 16: the held-out losses of the network and of the kernel predictor (the
        // synthetic labels are not +-1: no accuracy columns).
        want.extend(["test_loss", "test_loss_kernel"]);
        assert_eq!(weight, &want);
        let mut want_error: Vec<&str> = crate::study::ERROR_COLUMNS.to_vec();
        want_error.push("test_loss_kernel");
        assert_eq!(error, &want_error);
    }

    /// Counts the spaces started.
    #[derive(Default)]
    struct Starts(std::sync::atomic::AtomicUsize);

    impl Progress for Starts {
        fn start(&self, _: &str, _: f64) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn at(&self, _: f64) {}
        fn done(&self) {}
    }

    impl Observer for Starts {}

    #[test]
    fn compare_refuses_heavy_balls_singular_default_before_any_optimizer_is_integrated() {
        // Five points on the 1-sphere repeat +-1: Hinf is singular, and hbf's default friction
        // sqrt(2 lambda0) is refused.
        let cfg = RunConfig {
            n: 5,
            d: 1,
            m: 20,
            t_end: 0.5,
            samples: 3,
            progress: true,
            ..RunConfig::default()
        };
        let starts = Starts::default();
        let err = compare_with(&cfg, &starts).unwrap_err().to_string();
        assert!(err.contains("default friction"), "{err}");
        assert_eq!(starts.0.into_inner(), 0, "a space was integrated first");
    }
}
