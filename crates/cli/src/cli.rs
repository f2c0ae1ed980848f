//! Command-line definitions (clap derive). Help texts are full sentences; each command's help
//! ends with examples.

use std::net::IpAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use twsleuth_flows::SplitBy;

/// Exit codes, as documented in `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  success; for `analyze` and `report`: no TIME_WAIT collision, and nothing the evidence
     lacks could hide one
  1  `analyze` or `report` found TIME_WAIT collisions (possibly a lower bound), or a
     balancer's ports all held in its own TIME_WAIT
  2  error: bad arguments, an unreadable input, or a file that is not a capture
  3  `analyze` or `report` found no collision, but the evidence could hide one (one direction
     only, state evicted over --max-memory, damaged input, no TCP): not an all-clear

Inputs may be pcap or pcapng, plain or gzip/zstd-compressed (detected by their first bytes,
not their names); `-` reads standard input, e.g. `tcpdump -w - | twsleuth stats -`.
A directory or a tar archive (plain, .tar.gz, .tar.zst) is read as a set: each capture in it
(recognised by its first bytes) is an input of its own, named `dir/cap.pcap7` or
`a10.tgz:core3.pcap` in frame references; other files are listed as skipped. All inputs are
merged by timestamp. Formats of other tools (snoop, Sniffer, NetMon, ERF, nstrace, …) are named
with the command that converts them.";

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
        "  twsleuth stats /var/tmp/ring/            # tcpdump -C/-W ring: gaps, wrap\n",
        "  twsleuth stats a10-support.tar.gz        # one capture per CPU core\n",
        "  tcpdump -i eth0 -w - | twsleuth stats -"
    ))]
    Stats(StatsArgs),
    /// Rebuild every TCP connection, find the SYNs that hit a 4-tuple still held in TIME_WAIT,
    /// and say what happened to each one (accepted, rejected then recovered, reset,
    /// unanswered, failed) and what it cost.
    #[command(after_help = concat!(
        "Examples:\n",
        "  twsleuth analyze lb-backend.pcap\n",
        "  twsleuth analyze --json --collisions collisions.jsonl server.pcapng.zst | jq .collisions\n",
        "  twsleuth analyze --server-os windows --time-wait-for 10.1.0.10=60s a.pcap b.pcap\n",
        "  twsleuth analyze lb.pcap server.pcap      # two capture points: joined, clock offset\n",
        "\n",
        "Two inputs that hold the same SYNs (4-tuple and ISN) at different times are captures of\n",
        "the same traffic at two places: each is followed on its own, each connection is counted\n",
        "once with the other capture's view as evidence, and the second clock's offset, spread\n",
        "and drift are estimated from the handshakes both saw. Inputs that share none are\n",
        "analysed side by side.\n",
        "\n",
        "Exit status: 0 no collision and nothing that could hide one, 1 collisions (or a\n",
        "balancer's own ports) found, 2 error, 3 no collision found but not an all-clear."
    ))]
    Analyze(AnalyzeArgs),
    /// Write the incident report for a postmortem: a verdict, key figures, the incident
    /// timeline, a capacity model (how many SNAT addresses the peak needs), evidence with
    /// Wireshark filters and packet ladders, recommendations, SVG charts, and the data as
    /// Parquet and CSV.
    #[command(after_help = concat!(
        "Examples:\n",
        "  twsleuth report lb-backend.pcap -o incident-42\n",
        "  twsleuth report --server-os windows a.pcapng b.pcapng.zst -o report\n",
        "\n",
        "Exit status: as for analyze (0, 1 or 3) once the report is written; 2 error."
    ))]
    Report(ReportArgs),
    /// Watch a capture as it arrives, during a load test: once a second, per source address,
    /// new connections per second, tuples in TIME_WAIT against the tuples in use, the time to
    /// exhaustion at the current rate, collisions by outcome as they happen, and a line per
    /// new kind of event; redrawn in place on a terminal, plain lines otherwise. Ctrl-C or the
    /// end of the input prints the same summary as `analyze`.
    #[command(after_help = concat!(
        "Examples:\n",
        "  tcpdump -i eth0 -w - 'tcp port 80' | twsleuth watch -\n",
        "  twsleuth watch --follow /var/tmp/lb.pcap\n",
        "\n",
        "Exit status: as for analyze (0, 1 or 3); 2 error; 130 after Ctrl-C."
    ))]
    Watch(WatchArgs),
}

/// Options shared by every command that reads captures.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Capture files, directories of captures or tar archives of captures (a tcpdump ring,
    /// one capture per CPU core), merged by timestamp; `-` reads standard input (once).
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

/// TCP stacks with a known TIME_WAIT duration.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ServerOsArg {
    /// 60 s (TCP_TIMEWAIT_LEN).
    Linux,
    /// 120 s (TcpTimedWaitDelay default).
    Windows,
    /// 60 s (2 × MSL).
    Freebsd,
    /// 30 s (2 × MSL of 15 s).
    Macos,
}

/// How connections are tracked: TIME_WAIT durations, memory bounds, threads.
#[derive(Clone, Debug, Args)]
pub struct TrackerArgs {
    /// The TIME_WAIT duration of the servers' TCP stack.
    #[arg(long, value_enum, value_name = "OS", default_value = "linux")]
    pub server_os: ServerOsArg,

    /// TIME_WAIT duration for every host, overriding --server-os (e.g. `120s`, `2m`, `500ms`).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ns)]
    pub time_wait: Option<i64>,

    /// TIME_WAIT duration for one host, e.g. `10.1.0.10=120s`; may be repeated.
    #[arg(long, value_name = "IP=DURATION", value_parser = parse_host_duration)]
    pub time_wait_for: Vec<(IpAddr, i64)>,

    /// Evict a connection idle this long (capture time).
    #[arg(long, value_name = "DURATION", default_value = "300s", value_parser = parse_duration_ns)]
    pub idle_timeout: i64,

    /// Memory the analysis may take (e.g. `512MiB`, `2GiB`); by default a quarter of this
    /// machine's memory (or of its cgroup's limit), at least 256MiB. A quarter of it bounds
    /// the tuple table (open connections, and closed tuples remembered for their TIME_WAIT and
    /// reuse interval), an eighth what one stretch of input adds between two checks; records
    /// leave memory as connections end (`report` keeps them in order on the temporary disk,
    /// and its exports' buffers beside this budget). Under pressure, failed attempts go first,
    /// then tuples past their TIME_WAIT, then open connections; tuples still in TIME_WAIT go
    /// last, each counted, and the verdict then says that the collisions are a lower bound and
    /// the run is never an all-clear.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_memory: Option<usize>,

    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// What besides the 4-tuple tells connections apart: `vlan` (the VLAN ids), `tunnel` (the
    /// tunnel and its id: VXLAN or Geneve VNI, ERSPAN session, GRE key), both (the default),
    /// or `none`. Kept apart, the same 4-tuple on two VLANs (a SPAN of both legs of a
    /// bridge-mode balancer) is two views of one connection, each followed on its own and
    /// joined where their ISNs show one connection, and two tenants' overlapping addresses
    /// stay two connections; with `none`, a frame seen on both legs counts as a duplicate.
    #[arg(
        long,
        value_name = "vlan,tunnel|none",
        default_value = "vlan,tunnel",
        value_parser = parse_split_by
    )]
    pub split_by: SplitBy,
}

/// `twsleuth analyze`.
#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,

    /// Print one JSON object (the key figures and the packet accounting) instead of text.
    #[arg(long)]
    pub json: bool,

    /// Write one JSON object per connection incarnation to FILE (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub connections: Option<std::path::PathBuf>,

    /// Write one JSON object per TIME_WAIT collision to FILE (JSON Lines).
    #[arg(long, value_name = "FILE")]
    pub collisions: Option<std::path::PathBuf>,

    /// Write one JSON object per pair of a proxy's legs to FILE (JSON Lines): an end user's
    /// connection to the proxy, the backend connection the proxy opened for it (paired by
    /// timing and order), the pairing's confidence, and what a collision on the backend
    /// connection added to the request.
    #[arg(long, value_name = "FILE")]
    pub legs: Option<std::path::PathBuf>,
}

/// `twsleuth report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub tracker: TrackerArgs,

    /// Directory to write the report into (created if missing): report.md, report.html,
    /// charts/*.svg, data/*.parquet|csv and data/summary.json. Standard input (`-`) is kept
    /// there first, as capture.pcap (.pcapng, .gz, .zst: as it came), and the report is of
    /// that file: its frame references and filters point into it.
    #[arg(long, short, value_name = "DIR")]
    pub output: std::path::PathBuf,

    /// Write the report into DIR even when it holds files twsleuth did not write (they are
    /// left as they are). Without it, such a directory is refused before the analysis starts;
    /// a directory holding only an earlier report is always accepted, and that report's files
    /// are replaced.
    #[arg(long)]
    pub force: bool,
}

/// `twsleuth watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The capture to watch: `-` for standard input, or a file (with --follow, one still being
    /// written).
    #[arg(value_name = "FILE")]
    pub input: String,

    /// Follow FILE as it grows, like `tail -f`, until Ctrl-C (plain pcap or pcapng).
    #[arg(long)]
    pub follow: bool,

    /// How often the view is refreshed (e.g. `1s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration_ns)]
    pub every: i64,

    /// When watching ends (Ctrl-C or the end of the input), also write `twsleuth report`'s
    /// report of what was watched into DIR, made from the watching (nothing is read twice).
    /// Standard input is kept as it arrives in DIR/capture.pcap (or .pcapng, .gz, .zst: the
    /// bytes as received), where the report's frame references and filters point.
    #[arg(long, value_name = "DIR")]
    pub report: Option<std::path::PathBuf>,

    /// With --report: write into DIR even when it holds files twsleuth did not write (as
    /// `report --force`). Without it, such a directory is refused before watching starts.
    #[arg(long, requires = "report")]
    pub force: bool,

    #[command(flatten)]
    pub tracker: TrackerArgs,
}

/// Splits `1.5GiB` into its number and its unit; `not_this` completes the error message
/// "`TEXT` is not …" when there is no number.
fn number_and_unit<'a>(text: &'a str, not_this: &str) -> Result<(&'a str, f64, &'a str), String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value = number
        .parse()
        .map_err(|_| format!("`{text}` is not {not_this}"))?;
    Ok((text, value, unit))
}

/// Parses `60s`, `1.5s`, `500ms`, `2m`, `1h` or a bare number of seconds into nanoseconds.
pub fn parse_duration_ns(text: &str) -> Result<i64, String> {
    let (text, value, unit) =
        number_and_unit(text, "a duration: write e.g. 60s, 1.5s, 500ms or 2m")?;
    let scale = match unit {
        "" | "s" => 1e9,
        "ms" => 1e6,
        "us" | "µs" => 1e3,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`: use ms, s, m or h"
            ));
        }
    };
    let ns = value * scale;
    if !ns.is_finite() || ns > 1e18 {
        return Err(format!("`{text}` is too long a duration"));
    }
    Ok(ns as i64)
}

/// A size in bytes: a number with an optional unit (B, KiB, MiB, GiB; KB, MB, GB are taken
/// as the same powers of 1024, as people mean them for memory).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let (text, value, unit) =
        number_and_unit(text, "a size: write e.g. 256MiB, 1.5GiB or 500000000")?;
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown unit `{}` in `{text}`: use KiB, MiB or GiB",
                unit.trim()
            ));
        }
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes >= usize::MAX as f64 {
        return Err(format!("`{text}` is too large a size"));
    }
    if bytes < 1024.0 * 1024.0 {
        return Err(format!(
            "`{text}` is too small: the tracker needs at least 1MiB"
        ));
    }
    Ok(bytes as usize)
}

/// Parses `--split-by`: `none`, or a comma-separated list of `vlan` and `tunnel`.
pub fn parse_split_by(text: &str) -> Result<SplitBy, String> {
    let mut split = SplitBy {
        vlan: false,
        tunnel: false,
    };
    if text.trim() == "none" {
        return Ok(split);
    }
    for part in text.split(',').map(str::trim) {
        match part {
            "vlan" => split.vlan = true,
            "tunnel" => split.tunnel = true,
            other => {
                return Err(format!(
                    "`{other}` is not something to split by: write vlan, tunnel, vlan,tunnel or none"
                ));
            }
        }
    }
    Ok(split)
}

fn parse_host_duration(text: &str) -> Result<(IpAddr, i64), String> {
    let (host, duration) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` should be IP=DURATION, e.g. 10.1.0.10=120s"))?;
    let ip = host
        .parse()
        .map_err(|_| format!("`{host}` is not an IP address"))?;
    Ok((ip, parse_duration_ns(duration)?))
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
    fn durations_parse_with_units() {
        assert_eq!(parse_duration_ns("60s"), Ok(60_000_000_000));
        assert_eq!(parse_duration_ns("120"), Ok(120_000_000_000));
        assert_eq!(parse_duration_ns("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration_ns("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration_ns("2m"), Ok(120_000_000_000));
        assert!(parse_duration_ns("6O").is_err());
        assert!(parse_duration_ns("").is_err());
        assert_eq!(
            parse_host_duration("10.1.0.10=2m"),
            Ok(("10.1.0.10".parse().unwrap(), 120_000_000_000))
        );
        assert!(parse_host_duration("10.1.0.10").is_err());
    }

    #[test]
    fn split_by_parses_lists_and_none() {
        let split = |vlan, tunnel| SplitBy { vlan, tunnel };
        assert_eq!(parse_split_by("vlan,tunnel"), Ok(split(true, true)));
        assert_eq!(parse_split_by("tunnel"), Ok(split(false, true)));
        assert_eq!(parse_split_by("vlan"), Ok(split(true, false)));
        assert_eq!(parse_split_by("none"), Ok(split(false, false)));
        assert!(parse_split_by("mpls").is_err());
        let cli = Cli::try_parse_from(["twsleuth", "analyze", "a.pcap"]).unwrap();
        let Command::Analyze(args) = cli.command else {
            panic!("not analyze");
        };
        assert_eq!(args.tracker.split_by, split(true, true));
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2 gb"), Ok(2 << 30));
        assert_eq!(parse_size("5000000"), Ok(5_000_000));
        assert!(parse_size("256MB!").is_err());
        assert!(parse_size("1KiB").is_err(), "below the tracker's minimum");
        assert!(parse_size("MiB").is_err());
    }

    #[test]
    fn stats_requires_an_input() {
        assert!(Cli::try_parse_from(["twsleuth", "stats"]).is_err());
        assert!(Cli::try_parse_from(["twsleuth", "stats", "a.pcap", "--json"]).is_ok());
    }
}
