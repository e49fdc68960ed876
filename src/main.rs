//! The ntkdyn binary: parse the command line and call the library.

use ntkdyn::cli::{parse_args, ParseFailure};

fn main() {
    let cli = match parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(ParseFailure::Clap(e)) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                e.exit()
            }
            clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                eprintln!("error: a subcommand is needed: gf, hbf, nag, compare, sweep or plot (see ntkdyn --help)");
                std::process::exit(2);
            }
            // One line, as every other error: clap's first line names the option and value.
            _ => {
                let text = e.to_string();
                eprintln!(
                    "{}",
                    text.lines().next().unwrap_or("error: bad command line")
                );
                std::process::exit(2);
            }
        },
        Err(ParseFailure::Config(e)) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = ntkdyn::cli::main(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
