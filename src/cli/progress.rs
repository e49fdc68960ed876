//! What a person sees while a run computes: the run's header and the setup's warnings as
//! soon as the problem is built (before anything is integrated), then the progress of each
//! phase over flow time. On a terminal a bar per phase appears once the phase has run for
//! 2 s; when stderr is not a terminal (a log file, a cluster job) a plain line is written
//! every 10 s instead. `--quiet` shows none of it (the library then reports to no one).
//! A sweep shows the count of its runs done instead (`Runs`).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::ThreadId;
use std::time::Instant;

use ntkdyn::io::format_f64;
use ntkdyn::observe::Progress;
use ntkdyn::study::{Observer, RunConfig, Setup};

use super::human::{header, say, tidy};

/// Seconds a phase runs before its bar appears.
const QUIET_SECONDS: f64 = 2.0;
/// Seconds between two plain progress lines when stderr is not a terminal.
const PLAIN_SECONDS: f64 = 10.0;

struct Live {
    what: String,
    bar: ProgressBar,
    started: Instant,
    /// When the last plain line was written (or the phase started).
    last_line: Instant,
    t_end: f64,
}

/// The display of a run (or of compare's three, each on its own thread, each with its bar).
pub struct Bar {
    /// Print the run's header when the problem is built (compare prints its three headers
    /// with the summaries).
    with_header: bool,
    terminal: bool,
    bars: MultiProgress,
    live: Mutex<HashMap<ThreadId, Live>>,
    warned: AtomicUsize,
}

impl Bar {
    /// The display of one optimizer's run: header, warnings, progress.
    pub fn run() -> Bar {
        Bar::new(true)
    }

    /// The display of compare: warnings and progress; the headers come with the summaries.
    pub fn compare() -> Bar {
        Bar::new(false)
    }

    fn new(with_header: bool) -> Bar {
        let terminal = std::io::stderr().is_terminal();
        let bars = MultiProgress::with_draw_target(if terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        Bar {
            with_header,
            terminal,
            bars,
            live: Mutex::new(HashMap::new()),
            warned: AtomicUsize::new(0),
        }
    }

    /// The warnings of a finished run not yet printed (those the run added after its setup).
    pub fn unprinted<'a>(&self, warnings: &'a [String]) -> &'a [String] {
        warnings
            .get(self.warned.load(Ordering::Relaxed)..)
            .unwrap_or_default()
    }

    fn with<F: FnOnce(&mut Live)>(&self, f: F) {
        // A poisoned lock means a panic elsewhere; the bar is not worth a second one.
        if let Ok(mut live) = self.live.lock() {
            if let Some(live) = live.get_mut(&std::thread::current().id()) {
                f(live);
            }
        }
    }
}

impl Default for Bar {
    fn default() -> Bar {
        Bar::run()
    }
}

/// A line on stderr; a stderr that cannot be written (`2>/dev/full`) is no reason to stop.
fn stderr_line(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// "weight space t = 12.5 of 50 (25%), 31 s": the plain progress line.
fn plain_line(live: &Live, t: f64) -> String {
    format!(
        "ntkdyn: {} t = {} of {} ({:.0}%), {:.0} s",
        live.what,
        format_f64(t),
        format_f64(live.t_end),
        100.0 * t / live.t_end,
        live.started.elapsed().as_secs_f64()
    )
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
        let now = Instant::now();
        if let Ok(mut live) = self.live.lock() {
            live.insert(
                std::thread::current().id(),
                Live {
                    what: what.to_string(),
                    bar,
                    started: now,
                    last_line: now,
                    t_end,
                },
            );
        }
    }

    fn at(&self, t: f64) {
        let terminal = self.terminal;
        self.with(|live| {
            if !terminal {
                if live.last_line.elapsed().as_secs_f64() >= PLAIN_SECONDS {
                    live.last_line = Instant::now();
                    stderr_line(&plain_line(live, t));
                }
                return;
            }
            if live.bar.is_hidden() && live.started.elapsed().as_secs_f64() > QUIET_SECONDS {
                live.bar = self.bars.add(live.bar.clone());
            }
            live.bar
                .set_position((1000.0 * t / live.t_end).clamp(0.0, 1000.0) as u64);
            live.bar
                .set_message(format!("{t:.4} of {}", format_f64(live.t_end)));
        });
    }

    fn done(&self) {
        self.with(|live| {
            live.bar.finish_and_clear();
            self.bars.remove(&live.bar);
        });
        if let Ok(mut live) = self.live.lock() {
            live.remove(&std::thread::current().id());
        }
    }
}

impl Observer for Bar {
    fn prepared(&self, cfg: &RunConfig, setup: &Setup) {
        if self.with_header {
            say(&header(cfg, setup));
        }
        for w in &setup.warnings {
            stderr_line(&tidy(&format!("warning: {w}")));
        }
        self.warned.store(setup.warnings.len(), Ordering::Relaxed);
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
