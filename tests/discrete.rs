//! The discrete twins: GD, heavy ball and NAG against their ODEs as the step shrinks, and
//! against an independent recomputation from CSV inputs with plain loops.

mod common;

use common::{small, TempDir};
use ntkdyn::integrate::Stop;
use ntkdyn::model::{Data, InitialNetwork};
use ntkdyn::optimizer::twin::{self as discrete, Twin};
use ntkdyn::optimizer::Optimizer;
use ntkdyn::study::{self, RunConfig, SpaceChoice};
use std::fmt::Write as _;

fn weight_config(optimizer: Optimizer, t_end: f64, samples: usize) -> RunConfig {
    let mut cfg = small(optimizer, 10, 4, 1000, 0);
    cfg.space = SpaceChoice::Weight;
    cfg.t_end = t_end;
    cfg.samples = samples;
    cfg.rtol = 1e-10;
    cfg.atol = 1e-13;
    cfg.max_step = Some(0.01);
    cfg
}

/// Largest |L_discrete(t) - L_ode(t)| / L_ode(0) over the ODE's sample times, matching the
/// iterate whose clock time is the sample time.
fn twin_gap(cfg: &RunConfig, eta: f64) -> f64 {
    let mut cfg = cfg.clone();
    cfg.discrete = true;
    cfg.eta = eta;
    let report = study::run(&cfg).expect("run");
    let ode = report.weight.as_ref().expect("weight space");
    assert_eq!(ode.stop, Stop::Completed);
    let d = report.discrete.as_ref().expect("discrete twin");
    assert!(d.diverged_at.is_none());
    let clock = d.twin.time(1, eta);
    let l0 = ode.table.rows[0][1];
    let mut worst: f64 = 0.0;
    for row in &ode.table.rows {
        let k = (row[0] / clock).round() as usize;
        let it = d.iterates[k];
        assert_eq!(it.k, k);
        assert!(
            (it.t - row[0]).abs() < 1e-9,
            "iterate {k} at t = {} is not at the sample t = {}",
            it.t,
            row[0]
        );
        worst = worst.max((it.loss - row[1]).abs() / l0);
    }
    worst
}

/// The twin's gap to its flow at each eta halves with the twin's clock step (eta for GD,
/// sqrt(eta) for the momentum twins): first order, ratio within [1.7, 2.3].
fn assert_first_order(name: &str, cfg: &RunConfig, etas: [f64; 3]) {
    let gaps: Vec<f64> = etas.iter().map(|&eta| twin_gap(cfg, eta)).collect();
    eprintln!("{name} gaps {gaps:?}");
    for p in gaps.windows(2) {
        let ratio = p[0] / p[1];
        assert!(
            (1.7..=2.3).contains(&ratio),
            "{name} error ratio {ratio} for a halved clock step: {gaps:?}"
        );
    }
}

#[test]
fn gradient_descent_approaches_gradient_flow_at_first_order_in_eta() {
    let cfg = weight_config(Optimizer::Gf, 2.0, 11);
    assert_first_order("GD vs GF", &cfg, [0.04, 0.02, 0.01]);
}

#[test]
fn heavy_ball_approaches_hbf_as_eta_shrinks() {
    let cfg = weight_config(Optimizer::Hbf, 4.0, 21);
    // sqrt(eta) = 0.2, 0.1, 0.05: the clock k sqrt(eta) lands on every sample (spacing 0.2).
    assert_first_order("heavy ball vs HBF", &cfg, [0.04, 0.01, 0.0025]);
}

#[test]
fn nesterov_iterates_approach_nesterov_ode_as_eta_shrinks() {
    let cfg = weight_config(Optimizer::Nag, 4.0, 21);
    assert_first_order("NAG vs Nesterov ODE", &cfg, [0.04, 0.01, 0.0025]);
}

#[test]
fn discrete_rows_cover_every_iterate_up_to_t_end_on_their_clock() {
    let data = Data::synthetic(5, 3, 1);
    let net = InitialNetwork::init(50, 3, 1);
    let model = ntkdyn::model::Model::new(data, net.a);
    for (twin, eta, n_rows) in [
        (Twin::gd(), 0.1, 11),
        (Twin::heavy_ball(0.9), 0.01, 11),
        (Twin::nesterov(3.0), 0.04, 6),
    ] {
        let run = discrete::run(&model, &net.w, twin, eta, 1.0);
        assert_eq!(run.iterates.len(), n_rows, "{twin:?}");
        for (k, it) in run.iterates.iter().enumerate() {
            assert_eq!(it.k, k);
            assert!((it.t - twin.time(k, eta)).abs() < 1e-15);
        }
        assert!(
            (run.iterates.last().unwrap().t - 1.0).abs() < 1e-12,
            "{twin:?} must reach t_end"
        );
        // Row 0 is the loss of W0 (summed over neurons in blocks there, in one sweep here).
        let l0 = model.loss(&net.w.as_view());
        assert!((run.iterates[0].loss - l0).abs() < 1e-14 * l0, "{twin:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Independent recomputation with plain loops from CSV inputs.

struct Plain {
    x: Vec<Vec<f64>>,
    y: Vec<f64>,
    a: Vec<f64>,
}

impl Plain {
    // The oracle indexes as the formulas do (w[r][j] x_ij), not as iterators would.
    #[allow(clippy::needless_range_loop)]
    fn loss_and_grad(&self, w: &[Vec<f64>]) -> (f64, Vec<Vec<f64>>) {
        let m = w.len();
        let d = self.x[0].len();
        let s = 1.0 / (m as f64).sqrt();
        let mut delta = vec![0.0; self.x.len()];
        for (i, xi) in self.x.iter().enumerate() {
            let mut u = 0.0;
            for r in 0..m {
                let z: f64 = (0..d).map(|j| w[r][j] * xi[j]).sum();
                if z > 0.0 {
                    u += self.a[r] * z;
                }
            }
            delta[i] = s * u - self.y[i];
        }
        let mut g = vec![vec![0.0; d]; m];
        for r in 0..m {
            for (i, xi) in self.x.iter().enumerate() {
                let z: f64 = (0..d).map(|j| w[r][j] * xi[j]).sum();
                if z >= 0.0 {
                    for j in 0..d {
                        g[r][j] += s * self.a[r] * delta[i] * xi[j];
                    }
                }
            }
        }
        (0.5 * delta.iter().map(|v| v * v).sum::<f64>(), g)
    }

    /// Losses of GD (beta = None), heavy ball (beta) or NAG (gamma), per SPEC.md's formulas.
    fn run(&self, w0: &[Vec<f64>], eta: f64, steps: usize, method: &str, param: f64) -> Vec<f64> {
        let axpy = |x: &[Vec<f64>], a: f64, y: &[Vec<f64>]| -> Vec<Vec<f64>> {
            x.iter()
                .zip(y)
                .map(|(xr, yr)| xr.iter().zip(yr).map(|(p, q)| p + a * q).collect())
                .collect()
        };
        let sub = |x: &[Vec<f64>], y: &[Vec<f64>]| axpy(x, -1.0, y);
        let mut losses = Vec::new();
        match method {
            "gd" => {
                let mut w = w0.to_vec();
                for _ in 0..=steps {
                    let (l, g) = self.loss_and_grad(&w);
                    losses.push(l);
                    w = axpy(&w, -eta, &g);
                }
            }
            "hb" => {
                let (mut w, mut prev) = (w0.to_vec(), w0.to_vec());
                for _ in 0..=steps {
                    let (l, g) = self.loss_and_grad(&w);
                    losses.push(l);
                    let next = axpy(&axpy(&w, -eta, &g), param, &sub(&w, &prev));
                    prev = std::mem::replace(&mut w, next);
                }
            }
            _ => {
                // x_k = y_{k-1} - eta grad L(y_{k-1}); y_k = x_k + (k-1)/(k+gamma-1) (x_k - x_{k-1}).
                let (mut x, mut y) = (w0.to_vec(), w0.to_vec());
                losses.push(self.loss_and_grad(&x).0);
                for k in 1..=steps {
                    let (_, g) = self.loss_and_grad(&y);
                    let xk = axpy(&y, -eta, &g);
                    let kf = k as f64;
                    y = axpy(&xk, (kf - 1.0) / (kf + param - 1.0), &sub(&xk, &x));
                    x = xk;
                    losses.push(self.loss_and_grad(&x).0);
                }
            }
        }
        losses
    }
}

/// Write data.csv (with a header) and init.csv (without) for a problem that the run's seed
/// would not generate, and return them also as plain vectors.
fn write_inputs(dir: &TempDir) -> (Plain, Vec<Vec<f64>>) {
    let (n, d, m) = (6, 3, 40);
    let data = Data::synthetic(n, d, 77);
    let net = InitialNetwork::init(m, d, 1234);
    let mut text = String::from("x1,x2,x3,y\n");
    for i in 0..n {
        let row: Vec<String> = (0..d)
            .map(|j| data.x[(i, j)].to_string())
            .chain([data.y[i].to_string()])
            .collect();
        writeln!(text, "{}", row.join(",")).unwrap();
    }
    std::fs::write(dir.join("data.csv"), text).unwrap();
    let mut text = String::new();
    for r in 0..m {
        let row: Vec<String> = [net.a[r].to_string()]
            .into_iter()
            .chain((0..d).map(|j| net.w[(r, j)].to_string()))
            .collect();
        writeln!(text, "{}", row.join(",")).unwrap();
    }
    std::fs::write(dir.join("init.csv"), text).unwrap();
    let plain = Plain {
        x: (0..n)
            .map(|i| (0..d).map(|j| data.x[(i, j)]).collect())
            .collect(),
        y: data.y.iter().copied().collect(),
        a: net.a.iter().copied().collect(),
    };
    let w0 = (0..m)
        .map(|r| (0..d).map(|j| net.w[(r, j)]).collect())
        .collect();
    (plain, w0)
}

fn file_config(optimizer: Optimizer, dir: &TempDir, eta: f64, t_end: f64) -> RunConfig {
    // n, d, m and seed deliberately disagree with the files: the files must win.
    let mut cfg = small(optimizer, 9, 3, 17, 5);
    cfg.data = Some(dir.join("data.csv"));
    cfg.init = Some(dir.join("init.csv"));
    cfg.discrete = true;
    cfg.eta = eta;
    cfg.t_end = t_end;
    cfg
}

fn assert_losses_match(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of iterates");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            common::rel(*g, *w, 1e-300) < 1e-12,
            "{what}: iterate {k}: {g:e} vs {w:e}"
        );
    }
    // The iteration moved the loss: the comparison has teeth.
    assert!(
        want[want.len() - 1] < 0.9 * want[0],
        "{what}: {} -> {}",
        want[0],
        want[want.len() - 1]
    );
}

#[test]
fn gd_losses_from_csv_inputs_equal_a_plain_loop_recomputation() {
    let dir = TempDir::new("gd-csv");
    let (plain, w0) = write_inputs(&dir);
    let cfg = file_config(Optimizer::Gf, &dir, 0.1, 1.0);
    let report = study::run(&cfg).expect("run");
    assert_eq!(
        (
            report.setup.model.n(),
            report.setup.model.d(),
            report.setup.model.m()
        ),
        (6, 3, 40)
    );
    let got: Vec<f64> = report
        .discrete
        .unwrap()
        .iterates
        .iter()
        .map(|i| i.loss)
        .collect();
    let want = plain.run(&w0, 0.1, 10, "gd", 0.0);
    assert_losses_match(&got, &want, "GD");
}

#[test]
fn heavy_ball_and_nag_losses_from_csv_inputs_equal_a_plain_loop_recomputation() {
    let dir = TempDir::new("hb-nag-csv");
    let (plain, w0) = write_inputs(&dir);
    let eta: f64 = 0.04;
    // Heavy ball with b = 1: beta = 1 - b sqrt(eta) = 0.8; t_end 2 on the clock k sqrt(eta): 10 steps.
    let mut cfg = file_config(Optimizer::Hbf, &dir, eta, 2.0);
    cfg.friction = Some(1.0);
    let got: Vec<f64> = study::run(&cfg)
        .expect("run")
        .discrete
        .unwrap()
        .iterates
        .iter()
        .map(|i| i.loss)
        .collect();
    let want = plain.run(&w0, eta, 10, "hb", 1.0 - eta.sqrt());
    assert_losses_match(&got, &want, "heavy ball");
    for gamma in [3.0, 5.0] {
        let mut cfg = file_config(Optimizer::Nag, &dir, eta, 2.0);
        cfg.gamma = gamma;
        let got: Vec<f64> = study::run(&cfg)
            .expect("run")
            .discrete
            .unwrap()
            .iterates
            .iter()
            .map(|i| i.loss)
            .collect();
        let want = plain.run(&w0, eta, 10, "nag", gamma);
        assert_losses_match(&got, &want, &format!("NAG gamma {gamma}"));
    }
}
