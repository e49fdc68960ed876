//! What a person reads on stdout after a run.

use std::path::PathBuf;

use ntkdyn::study::Report;

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

/// The file names of `paths`, space-separated.
pub fn names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A few lines a person reads after a run.
pub fn human_summary(r: &Report) -> String {
    let s = &r.setup;
    let mut out = format!(
        "ntkdyn {}: n = {}, d = {}, m = {}, T = {}; lambda0 = {:.4e}; H(0) eigenvalues in [{:.4e}, {:.4e}]\n",
        r.config.optimizer.name(),
        s.model.n(),
        s.model.d(),
        s.model.m(),
        r.config.t_end,
        s.lambda0,
        s.h0_extremes.0,
        s.h0_extremes.1
    );
    if let Some(text) = r
        .config
        .optimizer
        .method()
        .schedule_text(r.damping, r.config.alpha)
    {
        out += &format!("  {text}\n");
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
    }
    if let Some(d) = &r.discrete {
        out += &format!(
            "  {} eta = {}: {} iterates, final loss {:.4e} ({:.2} s)\n",
            d.twin.name(),
            d.eta,
            d.iterates.len(),
            d.iterates.last().map(|i| i.loss).unwrap_or(f64::NAN),
            r.discrete_wall_seconds
        );
    }
    out
}
