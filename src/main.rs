//! The ntkdyn binary: parse the command line and call the library.

use clap::Parser;

fn main() {
    let cli = ntkdyn::cli::Cli::parse();
    if let Err(e) = ntkdyn::cli::main(cli) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
