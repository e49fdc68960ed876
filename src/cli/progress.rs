//! The progress bars: an observer of the library's runs over flow time, shown on stderr only
//! once a space has run for 2 s, and the count of a sweep's runs (both only when stderr is a
//! terminal).

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Instant;

use ntkdyn::observe::Progress;

/// Seconds a space runs before its bar appears.
const QUIET_SECONDS: f64 = 2.0;

struct Live {
    bar: ProgressBar,
    started: Instant,
    t_end: f64,
}

/// A bar per space, drawn once the space has lasted [`QUIET_SECONDS`].
#[derive(Default)]
pub struct Bar {
    live: Mutex<Option<Live>>,
}

impl Bar {
    fn with<F: FnOnce(&mut Live)>(&self, f: F) {
        // A poisoned lock means a panic elsewhere; the bar is not worth a second one.
        if let Ok(mut live) = self.live.lock() {
            if let Some(live) = live.as_mut() {
                f(live);
            }
        }
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, t_end: f64) {
        let bar = ProgressBar::hidden();
        bar.set_length(1000);
        if let Ok(style) = ProgressStyle::with_template(&format!(
            "{what} {{elapsed_precise}} [{{bar:30}}] t = {{msg}} (eta {{eta}})"
        )) {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Ok(mut live) = self.live.lock() {
            *live = Some(Live {
                bar,
                started: Instant::now(),
                t_end,
            });
        }
    }

    fn at(&self, t: f64) {
        self.with(|live| {
            if live.bar.is_hidden() && live.started.elapsed().as_secs_f64() > QUIET_SECONDS {
                live.bar.set_draw_target(ProgressDrawTarget::stderr());
            }
            live.bar.set_position((1000.0 * t / live.t_end) as u64);
            live.bar.set_message(format!("{t:.4} of {}", live.t_end));
        });
    }

    fn done(&self) {
        self.with(|live| live.bar.finish_and_clear());
        if let Ok(mut live) = self.live.lock() {
            *live = None;
        }
    }
}

/// A sweep's bar: runs done of all, drawn from the start.
#[derive(Default)]
pub struct Runs {
    bar: Mutex<Option<ProgressBar>>,
}

impl Progress for Runs {
    fn start(&self, _what: &str, runs: f64) {
        let bar = ProgressBar::new(runs as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} runs {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn at(&self, runs: f64) {
        if let Ok(Some(bar)) = self.bar.lock().as_deref() {
            bar.set_position(runs as u64);
        }
    }

    fn done(&self) {
        if let Ok(mut slot) = self.bar.lock() {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        }
    }
}
