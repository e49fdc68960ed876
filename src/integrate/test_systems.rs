//! The integrators on systems that are not networks, against closed forms: decay y' = -y,
//! a damped oscillator x'' + b x' + k x = 0, and one switching surface x = 0 crossed
//! transversally or slid along (Filippov).

use std::cell::Cell;

use nalgebra::DVector;

use super::{
    fixed_steps, integrate, integrate_held, integrate_smooth, output_times, OdeSystem, Solver,
    SolverSettings, Stats, StepFailure, Stop, SwitchingSystem,
};

/// y' = -y.
struct Decay;

impl OdeSystem for Decay {
    fn rhs(&self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = -y[0];
    }
}
impl SwitchingSystem for Decay {}

/// x'' + b x' + k x = 0 as [x, v]' = [v, -b v - k x].
struct Oscillator {
    b: f64,
    k: f64,
}

impl Oscillator {
    /// (x(t), v(t)) from x(0) = 1, v(0) = 0, underdamped (b^2 < 4 k): with w = sqrt(k - b^2/4),
    /// x = e^{-bt/2} (cos wt + b/(2w) sin wt), v = -(k/w) e^{-bt/2} sin wt.
    fn exact(&self, t: f64) -> (f64, f64) {
        let w = (self.k - self.b * self.b / 4.0).sqrt();
        let decay = (-self.b * t / 2.0).exp();
        (
            decay * ((w * t).cos() + self.b / (2.0 * w) * (w * t).sin()),
            -self.k / w * decay * (w * t).sin(),
        )
    }
}

impl OdeSystem for Oscillator {
    fn rhs(&self, _t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = y[1];
        dy[1] = -self.b * y[1] - self.k * y[0];
    }
    fn blocks(&self) -> usize {
        2
    }
}
impl SwitchingSystem for Oscillator {}

/// One switch s = 1[x >= 0] on the state [x, y]:
///
/// ```text
/// x' = s (a_plus - x) + (1 - s) (a_minus - x),   y' = s
/// ```
///
/// so y counts the time spent on the side x > 0 (on a sliding surface, the weight of that side
/// in Filippov's convex combination). Held, s is fixed; blended, s is the share of the step
/// spent on x > 0, the crossing placed by linear interpolation of x (the network's rule).
struct Switch {
    a_plus: f64,
    a_minus: f64,
    /// Whether x' has the -x term (a linear field on each side) or not (constant fields).
    linear: bool,
    held: Cell<Option<f64>>,
}

impl Switch {
    fn new(a_plus: f64, a_minus: f64, linear: bool) -> Switch {
        Switch {
            a_plus,
            a_minus,
            linear,
            held: Cell::new(None),
        }
    }
}

fn side(x: f64) -> f64 {
    if x >= 0.0 {
        1.0
    } else {
        0.0
    }
}

impl OdeSystem for Switch {
    fn rhs(&self, _t: f64, y: &[f64], dy: &mut [f64]) {
        let x = y[0];
        let s = self.held.get().unwrap_or_else(|| side(x));
        let pull = if self.linear { x } else { 0.0 };
        dy[0] = s * (self.a_plus - pull) + (1.0 - s) * (self.a_minus - pull);
        dy[1] = s;
    }
}

impl SwitchingSystem for Switch {
    fn hold(&self, y: &[f64]) -> u64 {
        let now = side(y[0]);
        let before = self.held.replace(Some(now));
        u64::from(before.is_some_and(|b| b != now))
    }
    fn blend(&self, y0: &[f64], y1: &[f64]) -> u64 {
        let Some(s) = self.held.get() else { return 0 };
        if side(y1[0]) == s {
            return 0;
        }
        let (a, b) = (y0[0], y1[0]);
        let before = if a == b {
            0.5
        } else {
            (a / (a - b)).clamp(0.0, 1.0)
        };
        self.held
            .set(Some(if s == 1.0 { before } else { 1.0 - before }));
        1
    }
    fn release(&self) {
        self.held.set(None);
    }
}

fn settings(solver: Solver, rtol: f64, max_step: f64) -> SolverSettings {
    SolverSettings {
        solver,
        rtol,
        atol: rtol * 1e-2,
        step: max_step,
        max_steps: 1_000_000,
        max_step,
    }
}

/// The states at the output times of the held-step driver (dense evaluator).
fn held_run<F: SwitchingSystem>(
    system: F,
    y0: &[f64],
    times: &[f64],
    s: &SolverSettings,
) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    let (_, stop) = integrate_held(system, DVector::from_column_slice(y0), times, s, |_, y| {
        out.push(y.as_slice().to_vec());
        true
    });
    assert_eq!(stop, Stop::Completed);
    out
}

/// The end state of [`integrate`] (ode_solvers or rk4).
fn end_of<F: OdeSystem>(system: F, y0: &[f64], times: &[f64], s: &SolverSettings) -> Vec<f64> {
    let mut end = Vec::new();
    let (_, stop) = integrate(system, DVector::from_column_slice(y0), times, s, |_, y| {
        end = y.as_slice().to_vec();
        true
    });
    assert_eq!(stop, Stop::Completed);
    end
}

#[test]
fn held_driver_on_decay_meets_its_tolerance() {
    let times = output_times(10.0, 11);
    let out = held_run(
        Decay,
        &[1.0],
        &times,
        &settings(Solver::Dopri5, 1e-9, f64::INFINITY),
    );
    for (t, y) in times.iter().zip(&out) {
        let exact = (-t).exp();
        assert!(
            (y[0] - exact).abs() <= 1e-8 * exact + 1e-10,
            "t = {t}: {}",
            y[0]
        );
    }
}

#[test]
fn held_driver_converges_with_order_five_in_its_step() {
    // Loose tolerances: every step is max_step h (output times h apart, so steps land on
    // them), and the global error at T = 1 goes as h^5.
    let error = |h: f64| {
        let times = output_times(1.0, (1.0 / h).round() as usize + 1);
        let out = held_run(Decay, &[1.0], &times, &settings(Solver::Dopri5, 1.0, h));
        (out[out.len() - 1][0] - (-1.0f64).exp()).abs()
    };
    let e: Vec<f64> = [0.2, 0.1, 0.05].iter().map(|&h| error(h)).collect();
    for pair in e.windows(2) {
        let order = (pair[0] / pair[1]).log2();
        assert!((order - 5.0).abs() < 0.3, "order {order} from errors {e:?}");
    }
}

#[test]
fn held_driver_follows_the_damped_oscillator() {
    let osc = Oscillator { b: 0.3, k: 4.0 };
    let times = output_times(10.0, 41);
    let s = settings(Solver::Dopri5, 1e-10, f64::INFINITY);
    let out = held_run(Oscillator { b: 0.3, k: 4.0 }, &[1.0, 0.0], &times, &s);
    for (t, y) in times.iter().zip(&out) {
        let (x, v) = osc.exact(*t);
        assert!((y[0] - x).abs() < 1e-8, "x({t}) = {} against {x}", y[0]);
        assert!((y[1] - v).abs() < 1e-8, "v({t}) = {} against {v}", y[1]);
    }
}

/// The states at the output times of the dense-output driver, and its statistics.
fn smooth_run<F: OdeSystem>(
    system: F,
    y0: &[f64],
    times: &[f64],
    s: &SolverSettings,
) -> (Vec<Vec<f64>>, Stats) {
    let mut out = Vec::new();
    let mut steps = 0u64;
    let (stats, stop) = integrate_smooth(
        system,
        DVector::from_column_slice(y0),
        times,
        s,
        |_| steps += 1,
        |_, y| {
            out.push(y.as_slice().to_vec());
            true
        },
    );
    assert_eq!(stop, Stop::Completed);
    assert_eq!(steps, stats.accepted_steps);
    (out, stats)
}

#[test]
fn dense_output_on_decay_meets_its_tolerance_between_steps() {
    // 401 output times on [0, 10]: far more than steps, so nearly every output state is
    // interpolated inside a step.
    let times = output_times(10.0, 401);
    let s = settings(Solver::Dopri5, 1e-9, f64::INFINITY);
    let (out, stats) = smooth_run(Decay, &[1.0], &times, &s);
    assert_eq!(out.len(), times.len());
    assert!(stats.accepted_steps < 200, "{stats}");
    for (t, y) in times.iter().zip(&out) {
        let exact = (-t).exp();
        assert!(
            (y[0] - exact).abs() <= 1e-8 * exact + 1e-10,
            "t = {t}: {} against {exact}",
            y[0]
        );
    }
}

#[test]
fn dense_output_follows_the_damped_oscillator_between_steps() {
    let osc = Oscillator { b: 0.3, k: 4.0 };
    let times = output_times(10.0, 1001);
    let s = settings(Solver::Dopri5, 1e-10, f64::INFINITY);
    let (out, stats) = smooth_run(Oscillator { b: 0.3, k: 4.0 }, &[1.0, 0.0], &times, &s);
    assert!(stats.accepted_steps < 700, "{stats}");
    for (t, y) in times.iter().zip(&out) {
        let (x, v) = osc.exact(*t);
        assert!((y[0] - x).abs() < 1e-8, "x({t}) = {} against {x}", y[0]);
        assert!((y[1] - v).abs() < 1e-8, "v({t}) = {} against {v}", y[1]);
    }
}

#[test]
fn dense_output_lands_on_the_last_output_time_as_the_held_driver_does_without_outputs() {
    // With only the two ends as output times the held driver and the dense-output driver take
    // the same steps: the same final state, bit for bit.
    let times = [0.0, 3.0];
    let s = settings(Solver::Dopri5, 1e-8, f64::INFINITY);
    let held = held_run(Oscillator { b: 0.3, k: 4.0 }, &[1.0, 0.0], &times, &s);
    let (dense, _) = smooth_run(Oscillator { b: 0.3, k: 4.0 }, &[1.0, 0.0], &times, &s);
    assert_eq!(held, dense);
}

#[test]
fn dense_output_stops_when_the_observer_asks() {
    let times = output_times(10.0, 101);
    let s = settings(Solver::Dopri5, 1e-8, f64::INFINITY);
    let mut seen = 0;
    let (_, stop) = integrate_smooth(
        Decay,
        DVector::from_element(1, 1.0),
        &times,
        &s,
        |_| {},
        |_, _| {
            seen += 1;
            seen < 7
        },
    );
    assert_eq!(stop, Stop::Observer { t: times[6] });
    assert_eq!(seen, 7);
}

#[test]
fn adaptive_adapters_follow_the_damped_oscillator() {
    let osc = Oscillator { b: 0.3, k: 4.0 };
    let times = output_times(10.0, 41);
    for solver in [Solver::Dopri5, Solver::Dop853] {
        let s = settings(solver, 1e-10, f64::INFINITY);
        let y = end_of(Oscillator { b: 0.3, k: 4.0 }, &[1.0, 0.0], &times, &s);
        let (x, v) = osc.exact(10.0);
        assert!(
            (y[0] - x).abs() < 1e-8 && (y[1] - v).abs() < 1e-8,
            "{solver:?}: {y:?}"
        );
    }
}

#[test]
fn rk4_converges_with_order_four_in_its_step() {
    let times = output_times(1.0, 2);
    let error = |h: f64| {
        let y = end_of(Decay, &[1.0], &times, &settings(Solver::Rk4, 1.0, h));
        (y[0] - (-1.0f64).exp()).abs()
    };
    let e: Vec<f64> = [0.1, 0.05, 0.025].iter().map(|&h| error(h)).collect();
    for pair in e.windows(2) {
        let order = (pair[0] / pair[1]).log2();
        assert!((order - 4.0).abs() < 0.1, "order {order} from errors {e:?}");
    }
}

/// ode_solvers' Rk4 panicked at these steps (an unwrap, a capacity overflow) and kept every
/// step of an interval; the in-place Rk4 refuses an interval of more than max_steps steps.
#[test]
fn rk4_refuses_a_step_too_small_for_max_steps_without_panicking() {
    let times = output_times(1.0, 11);
    for step in [1e-300, 1e-19, 5e-324, 1e-8] {
        let mut seen = 0;
        let (stats, stop) = integrate(
            Decay,
            DVector::from_element(1, 1.0),
            &times,
            &settings(Solver::Rk4, 1.0, step),
            |_, _| {
                seen += 1;
                true
            },
        );
        assert_eq!(
            stop,
            Stop::Failed(StepFailure::TooManySteps {
                t: 0.0,
                steps: 1_000_000
            }),
            "step {step}"
        );
        assert_eq!((seen, stats.evaluations), (1, 0));
    }
    assert_eq!(fixed_steps(0.1, 1e-8, 1_000_000), None);
    let tiny = settings(Solver::Rk4, 1.0, 1e-300);
    assert_eq!(
        tiny.check_fixed_steps(&times),
        Err(StepFailure::TooManySteps {
            t: 0.0,
            steps: 1_000_000
        })
    );
    assert_eq!(
        settings(Solver::Rk4, 1.0, 0.01).check_fixed_steps(&times),
        Ok(())
    );
    assert_eq!(
        settings(Solver::Dopri5, 1.0, 1e-300).check_fixed_steps(&times),
        Ok(())
    );
    assert_eq!(fixed_steps(0.1, 0.03, 10), Some((4, 0.025)));
}

#[test]
fn exact_is_not_an_integrator() {
    let (_, stop) = integrate(
        Decay,
        DVector::from_element(1, 1.0),
        &[0.0, 1.0],
        &settings(Solver::Exact, 1e-6, 0.1),
        |_, _| true,
    );
    assert_eq!(stop, Stop::Failed(StepFailure::NotAnIntegrator));
}

/// x' = 2 - x below the surface, 1 - x above, from x(0) = -1: x = 2 - 3 e^{-t} reaches 0 at
/// t* = ln(3/2) with x' = 2 and 1 on either side (a transversal crossing); then
/// x = 1 - e^{-(t - t*)}. y = time spent above, so t* = T - y(T). The blend places the
/// crossing by linear interpolation of x over the held step: off by theta (1 - theta) h^2
/// |x''| / (2 |x'|) <= h^2 / 8 to leading order (theta the share of the step before it,
/// x''/x' = -1/2 there); measured up to 0.124 h^2 with steps of max_step h.
#[test]
fn held_driver_places_a_transversal_crossing_to_second_order() {
    let t_star = 1.5f64.ln();
    let times = output_times(2.0, 21);
    for h in [0.04, 0.02, 0.01, 0.005] {
        let s = settings(Solver::Dopri5, 1e-6, h);
        let out = held_run(Switch::new(1.0, 2.0, true), &[-1.0, 0.0], &times, &s);
        let end = &out[out.len() - 1];
        let crossing = 2.0 - end[1];
        let x = 1.0 - (-(2.0 - t_star)).exp();
        assert!(
            (crossing - t_star).abs() <= h * h / 6.0,
            "h = {h}: t* = {crossing}"
        );
        assert!(
            (end[0] - x).abs() <= h * h / 6.0,
            "h = {h}: x(2) = {}",
            end[0]
        );
    }
}

/// x' = -1/2 above the surface, 3/2 below, from x(0) = 1: x = 1 - t/2 reaches 0 at t = 2 and
/// then slides on x = 0 (both fields point at it). Filippov's velocity there is the convex
/// combination theta (-1/2) + (1 - theta) (3/2) = 0, theta = 3/4, so y (time above) grows
/// at 3/4: y(t) = 2 + 3/4 (t - 2). Held steps chatter around x = 0 within one step of the
/// fastest field, 3/2 h (measured: up to h), and y stays within half of that of Filippov's
/// solution (x + 2 y - 3/2 t is constant on both sides, so on any blend too).
#[test]
fn held_driver_slides_with_filippovs_velocity() {
    let times = output_times(6.0, 61);
    for h in [0.05, 0.01] {
        let s = settings(Solver::Dopri5, 1e-10, h);
        let out = held_run(Switch::new(-0.5, 1.5, false), &[1.0, 0.0], &times, &s);
        for (t, y) in times.iter().zip(&out) {
            let (x, above) = if *t <= 2.0 {
                (1.0 - t / 2.0, *t)
            } else {
                (0.0, 2.0 + 0.75 * (t - 2.0))
            };
            assert!((y[0] - x).abs() <= 1.5 * h, "h = {h}: x({t}) = {}", y[0]);
            assert!(
                (y[1] - above).abs() <= 0.75 * h,
                "h = {h}: y({t}) = {}",
                y[1]
            );
        }
    }
}

/// y' = 0 until t = 1/2, 1 after: a jump in time that no held switch absorbs, so a step
/// across it keeps an error estimate of order h, above a tolerance of 1e-16 down to rounding.
/// With an output time at the jump, the steps that land on it stop shrinking once within
/// the landing slack (1e-12) of it: the driver used to retry that step forever.
struct Jump;

impl OdeSystem for Jump {
    fn rhs(&self, t: f64, _y: &[f64], dy: &mut [f64]) {
        dy[0] = if t < 0.5 { 0.0 } else { 1.0 };
    }
}
impl SwitchingSystem for Jump {}

/// y' = -y until t = 1/2, not a number after.
struct Poisoned;

impl OdeSystem for Poisoned {
    fn rhs(&self, t: f64, y: &[f64], dy: &mut [f64]) {
        dy[0] = if t > 0.5 { f64::NAN } else { -y[0] };
    }
}
impl SwitchingSystem for Poisoned {}

#[test]
fn held_driver_stops_with_a_step_size_underflow_at_an_unresolvable_jump_on_an_output_time() {
    let times = output_times(1.0, 3);
    let mut s = settings(Solver::Dopri5, 1e-16, 0.1);
    s.atol = 1e-16;
    let (stats, stop) =
        integrate_held(Jump, DVector::from_element(1, 1.0), &times, &s, |_, _| true);
    match stop {
        Stop::Failed(StepFailure::StepSizeTooSmall { t }) => {
            assert!(t < 0.5 && t > 0.5 - 1e-11, "underflow at t = {t}")
        }
        other => panic!("{other:?}"),
    }
    assert!(stats.rejected_steps > 10, "{stats:?}");
}

#[test]
fn held_driver_stops_after_max_steps_in_an_interval() {
    let mut s = settings(Solver::Dopri5, 1e-8, 0.01);
    s.max_steps = 10;
    let times = output_times(1.0, 3);
    let (stats, stop) = integrate_held(Decay, DVector::from_element(1, 1.0), &times, &s, |_, _| {
        true
    });
    match stop {
        Stop::Failed(StepFailure::TooManySteps { t, steps: 10 }) => assert!(t > 0.0 && t < 0.5),
        other => panic!("{other:?}"),
    }
    assert_eq!(stats.accepted_steps, 11);
}

/// A non-finite step ends the run at the output time it aimed at, after the observer saw
/// the state: Stop::Observer if the observer stops there, else a NonFinite failure.
#[test]
fn held_driver_ends_the_run_at_a_non_finite_step() {
    let times = output_times(1.0, 5);
    for stops in [true, false] {
        let mut seen = Vec::new();
        let (_, stop) = integrate_held(
            Poisoned,
            DVector::from_element(1, 1.0),
            &times,
            &settings(Solver::Dopri5, 1e-8, 0.1),
            |t, y| {
                seen.push((t, y[0]));
                !stops || y[0].is_finite()
            },
        );
        let (t, y) = seen[seen.len() - 1];
        assert!(t == 0.75 && y.is_nan(), "last seen {t}: {y}");
        let expected = if stops {
            Stop::Observer { t: 0.75 }
        } else {
            Stop::Failed(StepFailure::NonFinite { t: 0.75 })
        };
        assert_eq!(stop, expected);
        assert_eq!(seen.len(), 4);
    }
}
