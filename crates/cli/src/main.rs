//! The `twsleuth` command: parses arguments, runs the pipeline (read → decode → …), maps the
//! outcome to an exit code (0 success, 1 collisions found, 2 error).

mod analyze;
mod cli;
mod output;
mod report;
mod scan;
mod stats;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match &cli.command {
        Command::Stats(args) => stats::run(args, &mut out).map(|()| false),
        Command::Analyze(args) => analyze::run(args, &mut out),
        Command::Report(args) => report::run(args, &mut out).map(|()| false),
    }
    .and_then(|found| Ok(out.flush().map(|()| found)?));
    match result {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => ExitCode::from(1),
        // A closed pipe (`twsleuth … | head`) is the reader's choice, not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("twsleuth: error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
