//! Run one study: the chosen optimizer in weight space, in error space and as its discrete
//! twin, each space observed by its probes.

use nalgebra::DVector;
use std::time::Instant;

use crate::dynamics::output_space::{integrate_output_space, Crossings};
use crate::dynamics::{Damping, ErrorSpace, Flow, WeightSpace};
use crate::error::Error;
use crate::integrate::{integrate, output_times, Solver, Stats, Stop};
use crate::io::Table;
use crate::observe::core::Core;
use crate::observe::drift::Drift;
use crate::observe::exact::ExactCheck;
use crate::observe::lyapunov::LyapunovProbe;
use crate::observe::pl::PlProbe;
use crate::observe::test_gap::TestGap;
use crate::observe::{Findings, Probe, Progress, Recorder, Sample, Silent};
use crate::optimizer::{twin, Optimizer};
use crate::study::config::{KernelChoice, RunConfig, SpaceChoice};
use crate::study::report::{Checks, Report, SpaceRun};
use crate::study::setup::{setup, Setup};
use crate::theory::diagnostics::{cross_kernel_h0, cross_kernel_hinf, PlBall};
use crate::theory::lyapunov::{monotonicity, Lyapunov};
use crate::theory::spectrum::extreme_eigenvalues;

/// A space's table, findings and solver record as a [`SpaceRun`], with the monotonicity of
/// its Lyapunov column.
fn space_run(
    (table, findings): (Table, Findings),
    lyapunov: Lyapunov,
    solver: Solver,
    (stats, stop): (Stats, Stop),
    started: Instant,
) -> (SpaceRun, Findings) {
    let times = table.column("t").unwrap_or_default();
    let values = table.column("lyapunov").unwrap_or_default();
    let run = SpaceRun {
        monotonicity: monotonicity(&times, &values),
        table,
        solver,
        stats,
        stop,
        wall_seconds: started.elapsed().as_secs_f64(),
        lyapunov,
        exact_max_relative_error: findings.exact_max_relative_error,
        pl_ball: None,
    };
    (run, findings)
}

/// Weight space: integrate the network and record the drift of its kernel and weights, the
/// PL* quantities and (with held-out points) the gap to the kernel predictor.
pub fn run_weight(
    cfg: &RunConfig,
    setup: &Setup,
    damping: Damping,
    progress: &dyn Progress,
) -> SpaceRun {
    let started = Instant::now();
    let model = &setup.model;
    let space = WeightSpace::new(model);
    let flow = Flow::new(&space, damping);
    let method = cfg.optimizer.method();
    let lyapunov = method.lyapunov(damping, setup.lambda0 / 2.0, cfg.alpha);
    let mut probes: Vec<Box<dyn Probe + '_>> = vec![
        Box::new(Core),
        Box::new(LyapunovProbe::new(lyapunov)),
        Box::new(Drift::new(
            &setup.h0,
            &setup.w0,
            model.pattern(&setup.w0.as_view()),
        )),
        Box::new(PlProbe),
    ];
    if let Some(test) = &setup.test {
        let (h, cross) = match cfg.kernel {
            KernelChoice::H0 => (&setup.h0, cross_kernel_h0(model, &setup.w0, test)),
            KernelChoice::Hinf => (&setup.hinf, cross_kernel_hinf(test, model.data())),
        };
        probes.push(Box::new(TestGap::new(
            model, &setup.w0, test, h, &cross, damping,
        )));
    }
    let mut recorder = Recorder::new(probes);
    let y0 = flow.initial_state(setup.w0.as_slice());
    let dim = model.m() * model.d();
    let times = output_times(cfg.t_end, cfg.samples);
    progress.start("weight space", cfg.t_end);
    let observe = |t: f64, y: &DVector<f64>| {
        progress.at(t);
        let s = flow.snapshot(y.as_slice());
        let gram = s.gram.as_ref().expect("weight space carries H(t)");
        recorder.record(&Sample {
            t,
            kernel_extremes: extreme_eigenvalues(gram),
            snapshot: &s,
            weights: Some(model.weights(&y.as_slice()[..dim])),
        })
    };
    let settings = cfg.solver_settings();
    let outcome = if cfg.solver == Solver::Dopri5 {
        // The held-pattern steps, taken in output space (dynamics::output_space).
        integrate_output_space(
            model,
            flow.damping,
            y0,
            &times,
            &settings,
            Crossings::Corrected,
            observe,
        )
    } else {
        integrate(flow, y0, &times, &settings, observe)
    };
    progress.done();
    let (mut out, findings) = space_run(recorder.finish(), lyapunov, cfg.solver, outcome, started);
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

/// Error space with the fixed kernel: by ODE (checked against the exact solution) or exactly.
pub fn run_error(cfg: &RunConfig, setup: &Setup, damping: Damping) -> SpaceRun {
    let started = Instant::now();
    let (h, extremes) = setup.error_kernel(cfg.kernel);
    let method = cfg.optimizer.method();
    let mu = extremes.0.max(0.0);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    let exact = method.exact(h, &delta0, damping);
    let space = ErrorSpace { h: h.clone() };
    let lyapunov = method.lyapunov(damping, mu, cfg.alpha);
    let mut probes: Vec<Box<dyn Probe + '_>> = vec![
        Box::new(Core),
        Box::new(LyapunovProbe::new(lyapunov)),
        Box::new(PlProbe),
    ];
    let times = output_times(cfg.t_end, cfg.samples);
    if cfg.solver == Solver::Exact {
        let mut recorder = Recorder::new(probes);
        let mut stop = Stop::Completed;
        for &t in &times {
            let (d, v) = exact.at(t);
            let s = crate::dynamics::Space::snapshot(&space, d.as_slice(), v.as_slice());
            if !recorder.record(&Sample {
                t,
                snapshot: &s,
                kernel_extremes: extremes,
                weights: None,
            }) {
                stop = Stop::Observer { t };
                break;
            }
        }
        let outcome = (Stats::default(), stop);
        return space_run(recorder.finish(), lyapunov, Solver::Exact, outcome, started).0;
    }
    probes.push(Box::new(ExactCheck::new(&exact)));
    let mut recorder = Recorder::new(probes);
    let flow = Flow::new(&space, damping);
    let outcome = integrate(
        flow,
        flow.initial_state(delta0.as_slice()),
        &times,
        &cfg.solver_settings(),
        |t, y| {
            recorder.record(&Sample {
                t,
                snapshot: &flow.snapshot(y.as_slice()),
                kernel_extremes: extremes,
                weights: None,
            })
        },
    );
    space_run(recorder.finish(), lyapunov, cfg.solver, outcome, started).0
}

/// Run a whole study in memory, without a progress display.
pub fn run(cfg: &RunConfig) -> Result<Report, Error> {
    run_with(cfg, &Silent)
}

/// Run a whole study in memory, reporting progress (when `cfg.progress`) to `progress`.
///
/// The study runs on a thread of rayon's pool: a parallel pass started from there costs
/// 0.6-5 us of scheduling, against 15-23 us from a thread outside the pool, which must sleep
/// until the pool wakes it (`bench -- rayon` on the benchmark machine; at m = 1000 a whole
/// gradient evaluation on two threads takes about 125 us).
pub fn run_with(cfg: &RunConfig, progress: &dyn Progress) -> Result<Report, Error> {
    rayon::scope(|_| run_on_this_thread(cfg, progress))
}

/// [`run`] on the calling thread. `compare` runs its three studies on threads of their own:
/// in rayon's pool of two, the third would wait, and a worker waiting inside one study's
/// parallel evaluation could take up another whole study and hold the first one up.
fn run_on_this_thread(cfg: &RunConfig, progress: &dyn Progress) -> Result<Report, Error> {
    let progress = if cfg.progress { progress } else { &Silent };
    let setup = setup(cfg)?;
    let damping = cfg.damping(setup.lambda0);
    let weight = matches!(cfg.space, SpaceChoice::Weight | SpaceChoice::Both)
        .then(|| run_weight(cfg, &setup, damping, progress));
    let error = matches!(cfg.space, SpaceChoice::Error | SpaceChoice::Both)
        .then(|| run_error(cfg, &setup, damping));
    let started = Instant::now();
    let discrete = cfg.discrete.then(|| {
        let method = cfg.optimizer.method();
        twin::run(
            &setup.model,
            &setup.w0,
            method.twin(damping, setup.eta),
            setup.eta,
            cfg.t_end,
        )
    });
    let mut setup = setup;
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
    };
    report.checks = report.check();
    Ok(report)
}

/// `ntkdyn compare`: gf, hbf and nag on the same data and initialization, each with its twin,
/// run in parallel (one thread each), each configured as `cfg` but for the optimizer and its
/// output directory `cfg.out/<optimizer>`.
pub fn compare(cfg: &RunConfig) -> Result<Vec<Report>, Error> {
    crate::study::validate::preflight(cfg, Optimizer::ALL.len())?;
    let configs: Vec<RunConfig> = Optimizer::ALL
        .into_iter()
        .map(|optimizer| RunConfig {
            optimizer,
            out: cfg.out.join(optimizer.name()),
            progress: false,
            ..cfg.clone()
        })
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = configs
            .iter()
            .map(|c| scope.spawn(move || run_on_this_thread(c, &Silent)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run thread panicked"))
            .collect()
    })
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
        want.push(crate::study::report::TEST_GAP_COLUMN);
        assert_eq!(weight, &want);
        assert_eq!(error, &crate::study::ERROR_COLUMNS);
    }
}
