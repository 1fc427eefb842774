//! The `aigc-mark` command line: a thin layer over `aigc-pipeline`.

mod cli;
mod commands;
mod output;
mod safety;
mod wm;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let args = cli::Cli::parse();
    match commands::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("aigc-mark: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// A reader that goes away (`aigc-mark inspect --json … | head`) ends the program quietly, as
/// with other Unix tools, instead of a panic in `println!` (Rust ignores SIGPIPE by default).
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
