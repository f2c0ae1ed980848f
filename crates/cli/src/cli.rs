//! Command-line definitions (clap derive). Help texts are full sentences; each command's help
//! ends with examples.

use clap::{Args, Parser, Subcommand};

/// Exit codes, as documented in `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success (for `analyze`: no TIME_WAIT collision found)
  1  `analyze` found TIME_WAIT collisions
  2  error: bad arguments, an unreadable input, or a file that is not a capture

Inputs may be pcap or pcapng, plain or gzip/zstd-compressed (detected by their first bytes,
not their names); `-` reads standard input, e.g. `tcpdump -w - | twsleuth stats -`.";

/// twsleuth finds the TCP connection attempts that collided with a 4-tuple still in TIME_WAIT,
/// in the packet captures you already have, and says what each one cost.
#[derive(Debug, Parser)]
#[command(name = "twsleuth", version, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// twsleuth's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise captures like capinfos: formats, link types, frames, time span, and where
    /// every frame went (TCP, other IP, non-IP, malformed, truncated, fragments).
    #[command(after_help = concat!(
        "Examples:\n",
        "  twsleuth stats capture.pcap\n",
        "  twsleuth stats --json lb.pcapng.zst server.pcap.gz | jq .tcp_segments\n",
        "  tcpdump -i eth0 -w - | twsleuth stats -"
    ))]
    Stats(StatsArgs),
}

/// Options shared by every command that reads captures.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Capture files to read, merged by timestamp; `-` reads standard input (once).
    #[arg(value_name = "FILE", required = true)]
    pub inputs: Vec<String>,

    /// Do not show the progress bar (it is shown only when stderr is a terminal).
    #[arg(long, short)]
    pub quiet: bool,
}

/// `twsleuth stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Print one JSON object instead of the text summary.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stats_requires_an_input() {
        assert!(Cli::try_parse_from(["twsleuth", "stats"]).is_err());
        assert!(Cli::try_parse_from(["twsleuth", "stats", "a.pcap", "--json"]).is_ok());
    }
}
