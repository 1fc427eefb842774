//! The `aigc-mark` command line: a thin layer over `aigc-pipeline`.

mod cli;
mod commands;
mod output;
mod safety;
mod wm;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aigc-mark: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
