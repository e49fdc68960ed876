//! What a person reads on stdout after a run.

use std::path::PathBuf;

use ntkdyn::io::format_f64;
use ntkdyn::output::summary::Summary;
use ntkdyn::study::held_out::HeldOutSummary;
use ntkdyn::study::{Report, RunConfig, Setup};

/// Standard output that a closed pipe (`ntkdyn gf | head`) does not turn into a panic.
pub fn say(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(text.as_bytes());
}

/// [`say`] with format arguments and a newline.
macro_rules! sayln {
    ($($arg:tt)*) => {
        $crate::cli::human::say(&format!("{}\n", format!($($arg)*)))
    };
}
pub(crate) use sayln;

/// `line` with every number written out to more than [`LONG_NUMBER`] characters (Rust
/// writes 1e-300 as 0.000...1 with 300 zeros) in its shortest round-trip form with an
/// exponent ([`format_f64`]): `--rtol: 1e-300 is below 1e-14`.
pub fn tidy(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut k = 0;
    while k < bytes.len() {
        let numeric = |b: u8| b.is_ascii_digit() || b == b'.';
        if bytes[k].is_ascii_digit() && (k == 0 || !numeric(bytes[k - 1])) {
            let mut end = k;
            while end < bytes.len() && numeric(bytes[end]) {
                end += 1;
            }
            let token = &line[k..end];
            match token.parse::<f64>() {
                Ok(v) if token.len() > LONG_NUMBER && v.is_finite() => out += &format_f64(v),
                _ => out += token,
            }
            k = end;
        } else {
            let c = line[k..].chars().next().unwrap_or(' ');
            out.push(c);
            k += c.len_utf8();
        }
    }
    out
}

/// Numbers longer than this are written with an exponent by [`tidy`]; 17 significant digits
/// and a point are the most a round-trip decimal of ordinary size needs.
const LONG_NUMBER: usize = 24;

/// The file names of `paths`, space-separated.
pub fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The run's first line: its problem and the spectra of its kernels, known before anything
/// is integrated.
pub fn header(cfg: &RunConfig, s: &Setup) -> String {
    format!(
        "ntkdyn {}: n = {}, d = {}, m = {}, T = {}; lambda0 = {:.4e}; H(0) eigenvalues in [{:.4e}, {:.4e}]\n",
        cfg.optimizer.name(),
        s.model.n(),
        s.model.d(),
        s.model.m(),
        format_f64(cfg.t_end),
        s.lambda0,
        s.h0_extremes.0,
        s.h0_extremes.1
    )
}

/// A few lines a person reads after a run: [`header`] and [`details`].
pub fn human_summary(r: &Report) -> String {
    header(&r.config, &r.setup) + &details(r)
}

/// The lines after the header: each space's solver, loss and checks, and the twin.
pub fn details(r: &Report) -> String {
    let mut out = String::new();
    if let Some(text) = r
        .config
        .flow_optimizer()
        .method()
        .schedule_text(r.damping, r.config.alpha)
    {
        out += &format!("  {text}\n");
    }
    // issue 19: --beta
    if let Some(f) = ntkdyn::study::fixed_momentum::summary(r) {
        out += &format!(
            "  fixed momentum B = {}: clock t = k eta/(1 - B) = k {:.4e}; {} ODE: {}; k_B = {:.4e}; modes beyond eta lambda >= (1 - sqrt B)^2: {} of {} ({:.1}%)\n",
            format_f64(f.beta),
            f.clock_step,
            f.resolution,
            if f.resolution == "high" { "W' = -J^T (I + k_B eta H) Delta" } else { "gradient flow" },
            f.k_b,
            f.modes_beyond,
            f.modes,
            100.0 * f.modes_beyond_share
        );
    }
    for (name, run) in [("weight space", &r.weight), ("error space ", &r.error)] {
        let Some(run) = run else { continue };
        let mono = &run.monotonicity;
        let lyap = if mono.nonincreasing {
            "Lyapunov function nonincreasing".to_string()
        } else {
            format!(
                "Lyapunov function rose (largest relative rise {:.2e}), nonincreasing after t = {}",
                mono.max_relative_rise, mono.nonincreasing_after
            )
        };
        out += &format!(
            "  {name} {:<7} final loss {:.4e}  ({}; {:.2} s); {lyap}\n",
            run.solver.name(),
            run.final_loss(),
            run.stats,
            run.wall_seconds
        );
        if let Some(e) = run.exact_max_relative_error {
            out += &format!("               largest relative deviation from the exact eigen-mode solution {e:.2e}\n");
        }
        if let Some(f) = run
            .tolerance_floor
            .as_ref()
            .filter(|f| f.loss_reached_floor)
        {
            out += &format!(
                "               the loss reached the tolerance floor 1/2 (atol sqrt(components))^2 = {:.2e}: below it the loss is integration error (lower --atol to resolve it)\n",
                f.loss_floor
            );
        }
    }
    if let Some(d) = &r.discrete {
        out += &format!(
            "  {} eta = {}: {} iterates, final loss {:.4e} ({:.2} s)\n",
            d.twin.name(),
            format_f64(d.eta),
            d.iterates.len(),
            d.iterates.last().map(|i| i.loss).unwrap_or(f64::NAN),
            r.discrete_wall_seconds
        );
    }
    // issue 16: held-out metrics
    if let Some(h) = Summary::of(r).held_out {
        out += &held_out_lines(&h);
    }
    out
}

// issue 16: held-out metrics
/// summary.json's `held_out` as one or two lines: the test losses at T of the network, the
/// kernel predictor (and its limit t -> inf) and the twin, then, with +-1 labels, their
/// accuracies and the network's train accuracy.
pub fn held_out_lines(h: &HeldOutSummary) -> String {
    let join = |parts: Vec<Option<String>>| -> String {
        parts.into_iter().flatten().collect::<Vec<_>>().join(", ")
    };
    let loss = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.4e}"));
    let acc = |name: &str, v: Option<f64>| v.map(|v| format!("{name} {v:.3}"));
    let mut out = format!(
        "  held-out ({} points) test loss: {}\n",
        h.points,
        join(vec![
            loss("network", h.network_test_loss),
            loss("kernel predictor", h.kernel_test_loss),
            loss("its limit t -> inf", h.kernel_limit_test_loss),
            loss("twin", h.discrete_test_loss),
        ])
    );
    let accuracies = join(vec![
        acc("network", h.network_test_accuracy),
        acc("kernel predictor", h.kernel_test_accuracy),
        acc("its limit", h.kernel_limit_test_accuracy),
        acc("twin", h.discrete_test_accuracy),
    ]);
    if h.labels_pm1 && !accuracies.is_empty() {
        let train = acc("; train accuracy of the network", h.train_accuracy).unwrap_or_default();
        out += &format!("               test accuracy: {accuracies}{train}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_lines_name_every_predictor_and_accuracies_only_with_pm1_labels() {
        let mut h = HeldOutSummary {
            points: 20,
            labels_pm1: true,
            network_test_loss: Some(0.5),
            network_test_accuracy: Some(0.75),
            train_accuracy: Some(1.0),
            kernel_test_loss: Some(0.25),
            kernel_test_accuracy: Some(0.8),
            kernel_limit_test_loss: Some(0.125),
            kernel_limit_test_accuracy: Some(0.85),
            discrete_test_loss: Some(0.5),
            discrete_test_accuracy: Some(0.75),
        };
        assert_eq!(
            held_out_lines(&h),
            "  held-out (20 points) test loss: network 5.0000e-1, kernel predictor 2.5000e-1, its limit t -> inf 1.2500e-1, twin 5.0000e-1\n               test accuracy: network 0.750, kernel predictor 0.800, its limit 0.850, twin 0.750; train accuracy of the network 1.000\n"
        );
        h.labels_pm1 = false;
        h.discrete_test_loss = None;
        assert_eq!(
            held_out_lines(&h),
            "  held-out (20 points) test loss: network 5.0000e-1, kernel predictor 2.5000e-1, its limit t -> inf 1.2500e-1\n"
        );
    }

    #[test]
    fn tidy_writes_long_numbers_with_an_exponent_and_leaves_the_rest() {
        let zeros = format!("{}", 1e-300f64);
        assert_eq!(
            tidy(&format!("--rtol: {zeros} is below 1e-14")),
            "--rtol: 1e-300 is below 1e-14"
        );
        assert_eq!(tidy(&format!("{} is big", 1e300f64)), "1e300 is big");
        let plain = "--t-end: 0.5 of 50, line 12 of data_2024.csv: é";
        assert_eq!(tidy(plain), plain);
    }
}
