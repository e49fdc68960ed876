//! `--beta B` with the high-resolution ODE: the spaces of the modified flow
//! W' = -J^T (I + kappa H) Delta, kappa = k_B eta ([`crate::dynamics::modified_flow`]), observed
//! by gradient flow's probes (the low-resolution ODE of `--beta` is gradient flow itself and
//! runs through the executor's own spaces).
//!
//! Weight space is integrated by the held-step driver with dense stages (the activation
//! pattern held and blended over each step as for gradient flow; the output-space stages of
//! [`crate::dynamics::output_space`] know only gradient flow's field); error space is solved
//! exactly, mode by mode, exp(-(lambda + kappa lambda^2) t): on the fixed kernel's
//! eigen-decomposition, or from [`crate::theory::exact::KRYLOV_FROM`] points on the Ritz pairs
//! of its Krylov space from Delta(0), as gradient flow's error space
//! (`study::executor::error_modes`).

use std::time::Instant;

use nalgebra::DVector;

use crate::dynamics::modified_flow::{
    mode as modified_mode, ModifiedErrorSpace, ModifiedExact, ModifiedWeightSpace,
};
use crate::dynamics::{Damping, Flow};
use crate::integrate::{integrate, integrate_held, Solver};
use crate::observe::core::Core;
use crate::observe::lyapunov::LyapunovProbe;
use crate::observe::pl::PlProbe;
use crate::observe::{Probe, Progress, Recorder, Sample};
use crate::optimizer::Optimizer;
use crate::study::config::RunConfig;
use crate::study::report::{Report, SpaceRun};
use crate::study::setup::Setup;
use crate::theory::discrete_modes::FixedMomentumSummary;
use crate::theory::spectrum::extreme_eigenvalues;

/// Weight space of the modified flow with correction `kappa`.
pub fn run_weight_modified(
    cfg: &RunConfig,
    setup: &Setup,
    kappa: f64,
    progress: &dyn Progress,
) -> SpaceRun {
    let started = Instant::now();
    let model = &setup.model;
    let space = ModifiedWeightSpace::new(model, kappa);
    let flow = Flow::new(&space, Damping::None);
    // L decreases along the modified flow at least as fast as along gradient flow
    // (dL/dt = -Delta^T (H + kappa H^2) Delta): gradient flow's function and bound hold.
    let lyapunov = Optimizer::Gf
        .method()
        .lyapunov(Damping::None, setup.lambda0 / 2.0, cfg.alpha);
    let probes = crate::study::executor::weight_probes(cfg, setup, lyapunov, Damping::None);
    let mut recorder = Recorder::new(probes);
    let y0 = flow.initial_state(setup.w0.as_slice());
    let dim = model.m() * model.columns();
    progress.start("weight space (modified flow)", cfg.t_end);
    let observe = |t: f64, y: &DVector<f64>| {
        progress.at(t);
        let s = flow.snapshot(y.as_slice());
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
        // The held-pattern steps in output space: the IGR form with eta/2 = kappa.
        crate::dynamics::high_resolution::output_space::integrate_high_output_space(
            model,
            crate::dynamics::high_resolution::Form::Igr { eta: 2.0 * kappa },
            y0,
            &setup.times,
            &settings,
            |t| progress.at(t),
            observe,
        )
    } else if switching {
        integrate_held(flow, y0, &setup.times, &settings, observe)
    } else {
        integrate(flow, y0, &setup.times, &settings, observe)
    };
    progress.done();
    crate::study::executor::finish_weight(cfg, setup, recorder, lyapunov, outcome, started)
}

/// Error space of the modified flow with correction `kappa`, solved exactly.
pub fn run_error_modified(
    cfg: &RunConfig,
    setup: &Setup,
    kappa: f64,
    progress: &dyn Progress,
) -> SpaceRun {
    let started = Instant::now();
    let (h, extremes) = setup.error_kernel(cfg.kernel);
    let delta0 = setup.model.residual(&setup.w0.as_view());
    // The kernel's decomposition, or from n = 1000 the Ritz pairs of its Krylov space from
    // Delta(0) on which the modes exp(-(lambda + kappa lambda^2) t) are converged.
    let modes = |lambda: f64, times: &[f64]| -> Vec<(f64, f64)> {
        times
            .iter()
            .map(|&t| modified_mode(lambda, kappa, t))
            .collect()
    };
    let (s, krylov) =
        crate::study::executor::error_modes(cfg, setup, &delta0, &setup.times, &modes);
    let exact = ModifiedExact::from_eigen(s.values.clone(), s.vectors.clone(), &delta0, kappa);
    let space = ModifiedErrorSpace::new(h.clone(), kappa);
    let lyapunov = Optimizer::Gf
        .method()
        .lyapunov(Damping::None, extremes.0.max(0.0), cfg.alpha);
    let mut probes: Vec<Box<dyn Probe + '_>> = vec![
        Box::new(Core),
        Box::new(LyapunovProbe::with_resolution(lyapunov, 0.0)),
        Box::new(PlProbe),
    ];
    if let Some(probe) = crate::study::held_out::kernel_test(cfg, setup) {
        probes.push(Box::new(probe));
    }
    progress.start("error space (modified flow)", cfg.t_end);
    crate::study::executor::record_exact(
        probes,
        &space,
        |t| exact.at(t),
        &setup.times,
        extremes,
        lyapunov,
        started,
        crate::study::executor::krylov_note(
            Some("exact (the modified flow's modes, exp(-(lambda + kappa lambda^2) t))".into()),
            krylov,
        ),
        progress,
    )
}

/// summary.json's `fixed_momentum` of a run with `--beta`: B, the clock, k_B, and the share
/// of the fixed kernel's modes beyond the flows' range.
pub fn summary(report: &Report) -> Option<FixedMomentumSummary> {
    let cfg = &report.config;
    let s = &report.setup;
    let theory = cfg.fixed_momentum(s.eta)?;
    let eigenvalues: Vec<f64> = match s.error_spectrum.get() {
        Some(spectrum) if s.config.kernel == cfg.kernel => {
            spectrum.values.iter().copied().collect()
        }
        _ => {
            let h = s.error_kernel(cfg.kernel).0;
            // From KRYLOV_FROM points no one else decomposes H: the count is a Sturm count
            // at lambda = edge/eta (0.4-0.6 s at n = 2000 against 0.5-0.6 s for faer's eigenvalues,
            // 1.2 s for the decomposition), once (Setup::eigenvalues_below).
            let n = h.nrows();
            if n >= crate::theory::exact::KRYLOV_FROM {
                let x = theory.edge() / s.eta;
                let &(kernel, at, below) = s
                    .eigenvalues_below
                    .get_or_init(|| (cfg.kernel, x, crate::linalg::eigenvalues_below(h, x)));
                if let (true, Some(below)) = (kernel == cfg.kernel && at == x, below) {
                    return Some(FixedMomentumSummary::counted(
                        &theory,
                        cfg.beta_high(),
                        cfg.kernel.name(),
                        n,
                        n - below,
                    ));
                }
            }
            crate::linalg::symmetric_eigenvalues(h)
        }
    };
    Some(FixedMomentumSummary::new(
        &theory,
        cfg.beta_high(),
        cfg.kernel.name(),
        &eigenvalues,
    ))
}
