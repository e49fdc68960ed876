//! The ntkdyn binary: parse the command line and call the library.

use clap::Parser;

fn main() {
    let cli = match ntkdyn::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                e.exit()
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
    };
    if let Err(e) = ntkdyn::cli::main(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
