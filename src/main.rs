//! The ntkdyn binary: parse the command line, call the library, print one line on error.

mod cli;

/// mimalloc instead of glibc's malloc: the snapshots' n x n matrices (8 MB at n = 1000) came
/// from glibc's heap once its adaptive mmap threshold had risen past them, and were not
/// reused there: `nag --n 1000 --d 20 --m 10000 --t-end 10` with 201 output times peaked at
/// 1.7 GB of resident memory against 0.27 GB with 11.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, v2 and v3 alike).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory stays with the process until it exits. mimalloc returns memory freed for a
/// while to the OS (its purge), and at n = 1000 the n x n matrices freed and taken again at
/// every output time came back as fresh pages for the kernel to zero, 2 MB at a time:
/// `hbf --n 1000 --d 20 --m 10000 --t-end 1 --samples 41 --space weight --no-discrete` made
/// 16,468 page faults and spent 1.25 s in the kernel (clear_page 12% of its samples, perf);
/// without the purge 495 faults and 0.51 s (2026-12-02). The peak is the same: memory kept
/// is reused, not added to.
fn keep_freed_memory() {
    // SAFETY: mi_option_set stores an integer option (an atomic store in mimalloc); any
    // value is valid for the purge delay (-1: never purge), at any time, from any thread.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

use clap::error::ErrorKind;
use cli::ParseFailure;
use std::io::Write;

fn main() {
    keep_freed_memory();
    let cli = match cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseFailure::Clap(e)) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                // clap's own e.exit() panics when stdout is closed or full; a failed write
                // of the help is exit status 1, never 101.
                let text = e.render().to_string();
                let status = match std::io::stdout()
                    .write_all(text.as_bytes())
                    .and_then(|()| std::io::stdout().flush())
                {
                    Ok(()) => 0,
                    Err(_) => 1,
                };
                std::process::exit(status)
            }
            ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => fail(
                2,
                &format!(
                    "error: a subcommand is needed: {} (see ntkdyn --help)",
                    cli::args::Command::names()
                ),
            ),
            // One line, as every other error: clap's first line names the option and value.
            _ => fail(2, &cli::args::error_line(&e)),
        },
        Err(e @ (ParseFailure::Config(_) | ParseFailure::Conflict(_))) => {
            fail(2, &cli::human::tidy(&format!("error: {e}")))
        }
    };
    if let Err(e) = cli::run(cli) {
        fail(1, &cli::human::tidy(&format!("error: {e}")));
    }
}

/// Print the one line on stderr and exit with `status`. A stderr that cannot be written (full,
/// closed) does not turn the error into a panic: the status still says it.
fn fail(status: i32, line: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "{line}");
    std::process::exit(status)
}
