//! The `twsleuth` command: parses arguments, runs the pipeline (read → decode → …), maps the
//! outcome to an exit code (0 success and no collision, 1 collisions found, 2 error, 3 no
//! collision found but the evidence could hide one, 130 interrupted by Ctrl-C after printing
//! the results so far).

mod analyze;
mod cli;
mod kept;
mod output;
mod points;
mod report;
mod scan;
mod stats;
mod watch;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use twsleuth_report::limits::Status;

use crate::cli::{Cli, Command};

// The pipeline allocates and frees a batch of records per stretch of input on several
// threads; glibc's malloc gave the pages of its per-thread arenas back to the kernel and
// faulted them in again each time (93 k page faults and 0.36 s of system time in `analyze`
// of the bench capture; with mimalloc 21 k and 0.12 s, and 0.90 → 0.67 s wall). Built
// without transparent huge pages (`no_thp`): mimalloc madvised its 1 GiB arena
// MADV_HUGEPAGE, and every purge and refault zeroed a whole 2 MiB page (21% of `report`'s
// CPU in clear_page_erms); without, `report` 4.33 → 4.05 s and 282 → 250 MiB, `analyze`
// 132 → 107 MiB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code after SIGINT, as shells report it (128 + 2).
const INTERRUPTED_EXIT: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The first Ctrl-C ends the reading and the results so far come out; a second one, for
    // when even that takes too long, ends the process at once.
    let _ = ctrlc::set_handler(|| {
        if twsleuth_reader::interrupted() {
            std::process::exit(i32::from(INTERRUPTED_EXIT));
        }
        twsleuth_reader::interrupt();
    });
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = match &cli.command {
        Command::Stats(args) => stats::run(args, &mut out).map(|()| Status::Clear),
        Command::Analyze(args) => analyze::run(args, &mut out),
        Command::Report(args) => report::run(args, &mut out),
        Command::Watch(args) => watch::run(args, &mut out),
    }
    .and_then(|status| Ok(out.flush().map(|()| status)?));
    let interrupted = twsleuth_reader::interrupted();
    match result {
        Ok(_) if interrupted => ExitCode::from(INTERRUPTED_EXIT),
        Ok(status) => ExitCode::from(status.exit_code()),
        // A closed pipe (`twsleuth … | head`) is the reader's choice, not an error.
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("twsleuth: error: {error:#}");
            ExitCode::from(if interrupted { INTERRUPTED_EXIT } else { 2 })
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}
