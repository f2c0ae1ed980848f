//! `twsleuth stats`: a capinfos-like summary with twsleuth's packet accounting.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use twsleuth_decode::{Accounting, F5Summary, FrameClass};
use twsleuth_reader::{CaptureFormat, CaptureSetReport, Compression, MergedCaptures};

use crate::cli::StatsArgs;
use crate::scan::{Hashing, open_inputs, scan_decoder, warn_damage};
use twsleuth_report::time::{format_utc, seconds};

/// The `stats --json` object.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Reading was interrupted (Ctrl-C): the figures cover the frames read until then.
    pub partial: bool,
    /// One entry per input, in the order named.
    pub files: Vec<FileStats>,
    pub frames: u64,
    pub captured_bytes: u64,
    pub original_bytes: u64,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub duration_s: f64,
    pub tcp_segments: u64,
    /// SYN without ACK: connection attempts, retransmissions included.
    pub syn: u64,
    pub syn_ack: u64,
    pub non_tcp: u64,
    pub other_ip: u64,
    pub non_ip: u64,
    pub malformed: u64,
    pub truncated: u64,
    pub fragments: u64,
    /// Frames describing the capture, not traffic (the F5 fileinfo pseudo-packet).
    pub capture_info: u64,
    pub accounting: Accounting,
    /// F5 BIG-IP trailers (by format, noise level, virtual server, RST cause) and fileinfo
    /// packets; absent when there were none. Only parsed fields: never the trailer's bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub f5: Option<F5Summary>,
    /// Why frames were malformed or truncated, with counts.
    pub reasons: BTreeMap<&'static str, u64>,
    pub damaged_inputs: u64,
    /// Files of directories and archives that were not read, with the reason.
    pub skipped: Vec<SkippedJson>,
    /// What the inputs' time ranges show: gaps, overlaps, tcpdump rings that wrapped.
    pub capture_set: CaptureSetJson,
}

/// A file not read.
#[derive(Debug, Serialize)]
pub struct SkippedJson {
    pub name: String,
    pub reason: String,
}

/// The inputs' time ranges against each other.
#[derive(Debug, Serialize)]
pub struct CaptureSetJson {
    /// Silences between two files consecutive in time, longer than 0.1 s and than any silence
    /// inside either file.
    pub gaps: Vec<GapJson>,
    /// Files consecutive in time that overlap (the later starts before the earlier ends).
    pub overlaps: Vec<GapJson>,
    /// tcpdump rings (`-C`/`-W` names) found among the files.
    pub rings: Vec<RingJson>,
}

/// Two files consecutive in time.
#[derive(Debug, Serialize)]
pub struct GapJson {
    pub earlier: String,
    pub later: String,
    /// Last frame of the earlier file.
    pub earlier_last_ts: f64,
    /// First frame of the later file.
    pub later_first_ts: f64,
    /// later_first_ts - earlier_last_ts: negative for an overlap.
    pub gap_s: f64,
    pub earlier_last_ts_ns: i64,
    pub later_first_ts_ns: i64,
    pub gap_ns: i64,
}

/// A tcpdump ring.
#[derive(Debug, Serialize)]
pub struct RingJson {
    pub name: String,
    pub files: Vec<String>,
    /// The ring wrapped: its oldest files were overwritten, so what was captured before
    /// `oldest_file`'s first frame is lost.
    pub wrapped: bool,
    pub oldest_file: Option<String>,
    pub newest_file: Option<String>,
    /// The first frame left when the ring wrapped: nothing before it survives.
    pub lost_before_ts: Option<f64>,
    pub lost_before_ts_ns: Option<i64>,
    /// File numbers missing between the lowest and the highest.
    pub missing_numbers: Vec<u64>,
}

impl CaptureSetJson {
    fn new(report: &CaptureSetReport) -> CaptureSetJson {
        let pair = |t: &twsleuth_reader::Transition| {
            let (a, b) = (&report.spans[t.from], &report.spans[t.to]);
            GapJson {
                earlier: a.name.clone(),
                later: b.name.clone(),
                earlier_last_ts: seconds(a.last_ts_ns),
                later_first_ts: seconds(b.first_ts_ns),
                gap_s: seconds(t.gap_ns),
                earlier_last_ts_ns: a.last_ts_ns,
                later_first_ts_ns: b.first_ts_ns,
                gap_ns: t.gap_ns,
            }
        };
        CaptureSetJson {
            gaps: report.gaps().map(pair).collect(),
            overlaps: report.overlaps().map(pair).collect(),
            rings: report
                .rings
                .iter()
                .map(|ring| RingJson {
                    name: ring.name.clone(),
                    files: ring
                        .files
                        .iter()
                        .map(|&i| report.spans[i].name.clone())
                        .collect(),
                    wrapped: ring.wrapped.is_some(),
                    oldest_file: ring
                        .wrapped
                        .as_ref()
                        .map(|w| report.spans[w.oldest].name.clone()),
                    newest_file: ring
                        .wrapped
                        .as_ref()
                        .map(|w| report.spans[w.newest].name.clone()),
                    lost_before_ts: ring
                        .wrapped
                        .as_ref()
                        .map(|w| seconds(report.spans[w.oldest].first_ts_ns)),
                    lost_before_ts_ns: ring
                        .wrapped
                        .as_ref()
                        .map(|w| report.spans[w.oldest].first_ts_ns),
                    missing_numbers: ring.missing.clone(),
                })
                .collect(),
        }
    }
}

/// Per-input figures.
#[derive(Debug, Serialize)]
pub struct FileStats {
    pub input: String,
    pub format: &'static str,
    pub format_detail: String,
    pub compression: &'static str,
    pub file_size_bytes: Option<u64>,
    pub link_types: Vec<String>,
    pub sections: u64,
    pub interfaces: u64,
    pub skipped_blocks: u64,
    pub frames: u64,
    pub captured_bytes: u64,
    pub first_ts: Option<f64>,
    pub last_ts: Option<f64>,
    /// Frames whose timestamp is earlier than the frame before them in the same input.
    pub out_of_order_frames: u64,
    /// Where the input went bad, if it did.
    pub damage: Option<String>,
    /// What did not stop the reading but may matter (an unknown format version).
    pub warnings: Vec<String>,
    /// Frames with a pcapng packet comment.
    pub packet_comments: u64,
    /// pcapng section comments (the capturing tool's notes on the whole capture).
    pub section_comments: Vec<String>,
}

#[derive(Default)]
struct FileTally {
    captured_bytes: u64,
    first_ts_ns: Option<i64>,
    last_ts_ns: Option<i64>,
}

/// Runs `twsleuth stats`.
pub fn run(args: &StatsArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let mut merged = open_inputs(&args.input, Hashing::Off)?;
    let stats = collect(&mut merged, args.input.quiet);
    warn_damage(&merged);
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &stats)?;
        writeln!(out)?;
    } else {
        write_text(&stats, out)?;
    }
    Ok(())
}

fn collect(merged: &mut MergedCaptures, quiet: bool) -> Stats {
    let mut tallies: Vec<FileTally> = merged
        .readers()
        .iter()
        .map(|_| FileTally::default())
        .collect();
    let mut reasons = BTreeMap::new();
    let (mut syn, mut syn_ack, mut original_bytes) = (0, 0, 0);
    let decoder = scan_decoder(merged, quiet, |frame, decoded| {
        let tally = &mut tallies[usize::from(frame.file_index)];
        tally.captured_bytes += frame.data.len() as u64;
        tally.first_ts_ns.get_or_insert(frame.ts_ns);
        tally.last_ts_ns = Some(frame.ts_ns);
        original_bytes += u64::from(frame.orig_len);
        match decoded {
            Ok(segment) => {
                syn += u64::from(segment.flags.is_syn_only());
                syn_ack += u64::from(segment.flags.is_syn_ack());
            }
            Err(not_tcp) => {
                if matches!(not_tcp.class, FrameClass::Malformed | FrameClass::Truncated) {
                    *reasons.entry(not_tcp.reason).or_insert(0) += 1;
                }
            }
        }
    });

    let files: Vec<FileStats> = merged
        .readers()
        .iter()
        .zip(&tallies)
        .map(|(reader, tally)| {
            let counters = reader.counters();
            FileStats {
                input: reader.input().to_string(),
                format: match reader.format() {
                    CaptureFormat::Pcap { .. } => "pcap",
                    CaptureFormat::PcapNg => "pcapng",
                },
                format_detail: reader.format().to_string(),
                compression: match reader.compression() {
                    Compression::None => "none",
                    Compression::Gzip => "gzip",
                    Compression::Zstd => "zstd",
                },
                file_size_bytes: reader.file_size_bytes(),
                link_types: counters
                    .link_types
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                sections: counters.sections,
                interfaces: counters.interfaces,
                skipped_blocks: counters.skipped_blocks,
                frames: counters.frames,
                captured_bytes: tally.captured_bytes,
                first_ts: tally.first_ts_ns.map(seconds),
                last_ts: tally.last_ts_ns.map(seconds),
                out_of_order_frames: counters.out_of_order_frames,
                damage: reader.damage().map(ToString::to_string),
                warnings: reader.warnings().to_vec(),
                packet_comments: counters.packet_comments,
                section_comments: counters.section_comments.clone(),
            }
        })
        .collect();
    let accounting = decoder.accounting();
    let f5 = (!decoder.f5().is_empty()).then(|| decoder.f5().clone());
    let first_ts_ns = tallies.iter().filter_map(|t| t.first_ts_ns).min();
    let last_ts_ns = tallies.iter().filter_map(|t| t.last_ts_ns).max();
    Stats {
        partial: twsleuth_reader::interrupted(),
        frames: accounting.frames,
        captured_bytes: tallies.iter().map(|t| t.captured_bytes).sum(),
        original_bytes,
        first_ts: first_ts_ns.map(seconds),
        last_ts: last_ts_ns.map(seconds),
        first_ts_ns,
        last_ts_ns,
        duration_s: match (first_ts_ns, last_ts_ns) {
            (Some(first), Some(last)) => seconds(last - first),
            _ => 0.0,
        },
        tcp_segments: accounting.tcp_segments,
        syn,
        syn_ack,
        non_tcp: accounting.non_tcp(),
        other_ip: accounting.other_ip,
        non_ip: accounting.non_ip,
        malformed: accounting.malformed,
        truncated: accounting.truncated,
        fragments: accounting.fragments,
        capture_info: accounting.capture_info,
        f5,
        damaged_inputs: files.iter().filter(|f| f.damage.is_some()).count() as u64,
        skipped: merged
            .skipped()
            .iter()
            .map(|s| SkippedJson {
                name: s.name.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
        capture_set: CaptureSetJson::new(&merged.set_report()),
        files,
        accounting,
        reasons,
    }
}

fn write_text(stats: &Stats, out: &mut impl Write) -> std::io::Result<()> {
    let ts = |ts: Option<i64>| ts.map_or_else(|| "n/a".to_string(), format_utc);
    if stats.partial {
        writeln!(
            out,
            "PARTIAL RESULTS: reading was interrupted after {} frames.",
            stats.frames
        )?;
    }
    for file in &stats.files {
        writeln!(out, "File:             {}", file.input)?;
        let compression = match file.compression {
            "none" => String::new(),
            other => format!(", {other}-compressed"),
        };
        writeln!(out, "  Format:         {}{compression}", file.format_detail)?;
        writeln!(out, "  Link types:     {}", file.link_types.join(", "))?;
        if file.format == "pcapng" {
            writeln!(
                out,
                "  Sections:       {} ({} interfaces, {} non-packet blocks skipped)",
                file.sections, file.interfaces, file.skipped_blocks
            )?;
        }
        writeln!(out, "  Frames:         {}", file.frames)?;
        writeln!(out, "  Captured bytes: {}", file.captured_bytes)?;
        if file.out_of_order_frames > 0 {
            writeln!(out, "  Out of order:   {} frames", file.out_of_order_frames)?;
        }
        if file.packet_comments > 0 {
            writeln!(out, "  Comments:       {} frames", file.packet_comments)?;
        }
        for comment in &file.section_comments {
            writeln!(out, "  Section note:   {}", comment.escape_debug())?;
        }
        for warning in &file.warnings {
            writeln!(out, "  WARNING:        {warning}")?;
        }
        if let Some(damage) = &file.damage {
            writeln!(out, "  DAMAGED:        {damage}")?;
        }
    }
    write_set_text(stats, out)?;
    if stats.files.len() > 1 {
        writeln!(
            out,
            "Total ({} inputs, merged by timestamp)",
            stats.files.len()
        )?;
    }
    writeln!(out, "  First frame:    {}", ts(stats.first_ts_ns))?;
    writeln!(out, "  Last frame:     {}", ts(stats.last_ts_ns))?;
    writeln!(out, "  Duration:       {:.6} s", stats.duration_s)?;
    writeln!(out, "  Frames:         {}", stats.frames)?;
    writeln!(
        out,
        "    TCP segments: {} (SYN {}, SYN-ACK {})",
        stats.tcp_segments, stats.syn, stats.syn_ack
    )?;
    writeln!(out, "    other IP:     {}", stats.other_ip)?;
    writeln!(out, "    non-IP:       {}", stats.non_ip)?;
    writeln!(out, "    malformed:    {}", stats.malformed)?;
    writeln!(out, "    truncated:    {}", stats.truncated)?;
    writeln!(out, "    fragments:    {}", stats.fragments)?;
    for (reason, count) in &stats.reasons {
        writeln!(out, "      {count:>8}  {reason}")?;
    }
    if stats.capture_info > 0 {
        writeln!(
            out,
            "    capture info: {} (not traffic)",
            stats.capture_info
        )?;
    }
    write_after_ip_text(&stats.accounting, out)?;
    if let Some(f5) = &stats.f5 {
        write_f5_text(f5, out)?;
    }
    Ok(())
}

/// The bytes frames carry after their IP packet, by kind (TCP ignores them).
fn write_after_ip_text(accounting: &Accounting, out: &mut impl Write) -> std::io::Result<()> {
    let after = &accounting.bytes_after_ip;
    if after.is_none() {
        return Ok(());
    }
    let mut kinds = Vec::new();
    for (count, name) in [
        (after.f5_trailer, "F5 trailer"),
        (after.ethernet_fcs, "Ethernet FCS"),
        (after.padding, "padding"),
        (after.unrecognized, "unrecognized"),
    ] {
        if count > 0 {
            kinds.push(format!("{name} {count}"));
        }
    }
    writeln!(
        out,
        "  Bytes after IP: {} frames ({}; ignored for TCP)",
        after.frames(),
        kinds.join(", ")
    )
}

/// F5 BIG-IP trailers and capture information. Names come from the capture: escaped.
pub(crate) fn write_f5_text(f5: &F5Summary, out: &mut impl Write) -> std::io::Result<()> {
    for info in &f5.file_info {
        let field = |v: &Option<String>| {
            v.as_deref()
                .map_or_else(|| "?".to_string(), |v| v.escape_debug().to_string())
        };
        writeln!(
            out,
            "F5 capture info:  input {} frame {}: {} (version {}, host {}, platform {}, product {})",
            info.file_index + 1,
            info.frame_number,
            field(&info.command),
            field(&info.version),
            field(&info.hostname),
            field(&info.platform),
            field(&info.product)
        )?;
    }
    if f5.frames == 0 {
        return Ok(());
    }
    writeln!(
        out,
        "F5 trailers:      {} frames (legacy format {}, new format {}; noise low {}, medium {}, high {}; in {}, out {})",
        f5.frames,
        f5.legacy_format,
        f5.new_format,
        f5.low_noise,
        f5.medium_noise,
        f5.high_noise,
        f5.ingress,
        f5.egress
    )?;
    for vs in f5.virtual_servers() {
        writeln!(
            out,
            "  virtual server {}: {} frames ({} TCP, {} SYN, {} RST)",
            vs.name.escape_debug(),
            vs.frames,
            vs.tcp_segments,
            vs.syn,
            vs.rst
        )?;
    }
    if f5.no_virtual_server > 0 {
        writeln!(out, "  no virtual server: {} frames", f5.no_virtual_server)?;
    }
    for cause in f5.rst_causes() {
        writeln!(
            out,
            "  RST cause \"{}\": {} frames",
            cause.cause.escape_debug(),
            cause.frames
        )?;
    }
    Ok(())
}

/// The capture set's findings: skipped files, rings, gaps, overlaps.
fn write_set_text(stats: &Stats, out: &mut impl Write) -> std::io::Result<()> {
    for skipped in &stats.skipped {
        writeln!(
            out,
            "Skipped:          {}: {}",
            skipped.name, skipped.reason
        )?;
    }
    let set = &stats.capture_set;
    for ring in &set.rings {
        if ring.wrapped {
            writeln!(
                out,
                "Ring {} ({} files) WRAPPED: the oldest file left is {} (first frame {}), the newest {}; what the ring held before was overwritten, so the capture's start is missing",
                ring.name,
                ring.files.len(),
                ring.oldest_file.as_deref().unwrap_or("?"),
                ring.lost_before_ts_ns
                    .map_or_else(|| "n/a".to_string(), format_utc),
                ring.newest_file.as_deref().unwrap_or("?"),
            )?;
        }
        if !ring.missing_numbers.is_empty() {
            let numbers: Vec<String> = ring.missing_numbers.iter().map(u64::to_string).collect();
            writeln!(
                out,
                "Ring {}: file number(s) {} missing",
                ring.name,
                numbers.join(", ")
            )?;
        }
    }
    for gap in &set.gaps {
        writeln!(
            out,
            "Gap:              {:.3} s without a frame between {} (last frame {}) and {} (first frame {})",
            gap.gap_s,
            gap.earlier,
            format_utc(gap.earlier_last_ts_ns),
            gap.later,
            format_utc(gap.later_first_ts_ns)
        )?;
    }
    let pairs = stats.files.iter().filter(|f| f.frames > 0).count();
    if pairs > 2 && set.overlaps.len() == pairs - 1 {
        writeln!(
            out,
            "Overlap:          all {pairs} files overlap in time (captured side by side, e.g. one per CPU core or vantage point); merged by timestamp"
        )?;
    } else {
        for overlap in &set.overlaps {
            writeln!(
                out,
                "Overlap:          {} and {} overlap by {:.3} s; merged by timestamp",
                overlap.earlier, overlap.later, -overlap.gap_s
            )?;
        }
    }
    Ok(())
}
