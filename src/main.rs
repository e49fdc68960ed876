//! The ntkdyn binary: parse the command line, call the library, print one line on error.

mod cli;

use clap::error::ErrorKind;
use cli::ParseFailure;

fn main() {
    let cli = match cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseFailure::Clap(e)) => match e.kind() {
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => e.exit(),
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
        Err(e @ ParseFailure::Config(_)) => fail(2, &cli::human::tidy(&format!("error: {e}"))),
    };
    if let Err(e) = cli::run(cli) {
        fail(1, &cli::human::tidy(&format!("error: {e}")));
    }
}

/// Print the one line and exit with `status`.
fn fail(status: i32, line: &str) -> ! {
    eprintln!("{line}");
    std::process::exit(status)
}
