//! `twsleuth analyze`: the verdict, the key figures, and the JSON Lines exports.

use std::collections::BTreeMap;
use std::io::Write;

use serde::Serialize;
use twsleuth_decode::{Accounting, F5NameId, F5Summary};
use twsleuth_flows::{
    CollisionRecord, ConnectionRecord, LegPair, ServerOs, Summary, TimeWaitPolicy, TrackerConfig,
    TrackerCounters,
};
use twsleuth_reader::MergedCaptures;
use twsleuth_report::InputFile;
use twsleuth_report::analysis::{closers_sentence, reasons_breakdown, verdict};
use twsleuth_report::evidence::ShownCollisions;
use twsleuth_report::exhaustion::PortExhaustion;
use twsleuth_report::limits::{Completeness, Limit, Status};
use twsleuth_report::spill::SortedSpill;
use twsleuth_report::tables::{Successor, TIMELINE_SOURCES};
use twsleuth_report::time::format_utc;
use twsleuth_report::words::duration;

use crate::cli::{AnalyzeArgs, InputArgs, ServerOsArg, TrackerArgs};
use crate::output::write_jsonl;
use crate::points::CapturePoints;
use crate::scan::{Hashing, Sinks, Tracked, input_files, open_inputs, track, warn_damage};
use crate::stats::write_f5_text;

/// How many source addresses the summary lists.
pub const TOP_SOURCES: usize = 10;

/// The `analyze --json` object (also the report's `data/summary.json`).
#[derive(Serialize)]
pub struct AnalysisJson<'a> {
    verdict: String,
    /// Nothing the evidence lacks could hide a collision; `false` with the reasons in
    /// `cannot_show` (those with `blocks_all_clear`).
    complete: bool,
    /// Everything the evidence cannot show.
    cannot_show: &'a [Limit],
    /// Balancers whose ports were all held in their own TIME_WAIT.
    port_exhaustion: &'a [PortExhaustion],
    /// Reading was interrupted (Ctrl-C): the results cover the frames read until then.
    partial: bool,
    #[serde(flatten)]
    summary: &'a Summary,
    accounting: Accounting,
    /// Gaps in time of 5 s or more with no frame.
    time_gaps: u64,
    tracker: TrackerCounters,
    config: &'a TrackerConfig,
    inputs: &'a [InputFile],
    /// How the inputs were grouped into capture points, when more than one was given and
    /// some share connections.
    #[serde(skip_serializing_if = "Option::is_none")]
    capture_point_inputs: Option<&'a CapturePoints>,
    /// What F5 BIG-IP trailers and fileinfo packets showed (as `stats` gives it: the
    /// capture's provenance, virtual servers, RST causes; never the trailers' bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    f5: Option<&'a F5Summary>,
    /// The BIG-IP's RST causes of the resets on the collisions' tuples between SYN and
    /// SYN-ACK.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    f5_rst_causes_in_collisions: &'a [RstCauseCount],
}

impl<'a> AnalysisJson<'a> {
    /// The object for these results.
    pub fn new(analysis: &'a Analysis, config: &'a TrackerConfig) -> AnalysisJson<'a> {
        let facts = &analysis.tracked.facts;
        AnalysisJson {
            verdict: verdict(
                &analysis.summary,
                &analysis.tracked.counters,
                &analysis.completeness,
                &analysis.exhaustion,
            ),
            complete: analysis.completeness.complete,
            port_exhaustion: &analysis.exhaustion,
            cannot_show: &analysis.completeness.cannot_show,
            partial: facts.interrupted,
            summary: &analysis.summary,
            accounting: facts.accounting,
            time_gaps: facts.time_gaps,
            tracker: analysis.tracked.counters,
            config,
            inputs: &analysis.inputs,
            capture_point_inputs: (analysis.points.of_input.len() > 1).then_some(&analysis.points),
            f5: (!analysis.tracked.f5.is_empty()).then_some(&analysis.tracked.f5),
            f5_rst_causes_in_collisions: &analysis.f5_rst_causes,
        }
    }
}

/// An analysis: the key figures, the inputs, what the evidence cannot show, and the records
/// its sinks kept.
pub struct Analysis {
    /// The inputs as read (a report reads some frames again).
    pub merged: MergedCaptures,
    /// What the pipeline counted and saw.
    pub tracked: Tracked,
    /// Key figures.
    pub summary: Summary,
    /// The inputs.
    pub inputs: Vec<InputFile>,
    /// What the evidence cannot show.
    pub completeness: Completeness,
    /// Balancers whose ports were all held in their own TIME_WAIT.
    pub exhaustion: Vec<PortExhaustion>,
    /// The records kept for exports.
    pub records: Kept,
    /// Which inputs are captures of the same traffic at different places.
    pub points: CapturePoints,
    /// The addresses of the sources with the most connections (the report's timeline series),
    /// and whether there are others.
    pub timeline_sources: (Vec<std::net::IpAddr>, bool),
    /// The BIG-IP's RST causes of the resets on the collisions' tuples between SYN and
    /// SYN-ACK.
    pub f5_rst_causes: Vec<RstCauseCount>,
}

/// An F5 RST cause and the collisions with a reset of that cause.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RstCauseCount {
    /// The cause, as the trailer gives it (capture-derived text: escaped where shown).
    pub cause: String,
    /// Collisions with a reset of that cause on their tuple between SYN and SYN-ACK.
    pub collisions: u64,
}

/// The F5 RST causes counted among the collisions, most collisions first (then by text).
fn rst_causes_in_collisions(
    f5: &F5Summary,
    counts: &BTreeMap<F5NameId, u64>,
) -> Vec<RstCauseCount> {
    let mut list: Vec<RstCauseCount> = counts
        .iter()
        .map(|(&cause, &collisions)| RstCauseCount {
            cause: f5.name(cause).to_string(),
            collisions,
        })
        .collect();
    list.sort_by(|a, b| {
        b.collisions
            .cmp(&a.collisions)
            .then_with(|| a.cause.cmp(&b.cause))
    });
    list
}

/// The records an analysis kept.
pub struct Kept {
    /// Connection records, to be read in order.
    pub connections: Option<SortedSpill<ConnectionRecord>>,
    /// Collision records, to be read in order.
    pub collisions: Option<SortedSpill<CollisionRecord>>,
    /// The next incarnation of each reused tuple, to be read in order.
    pub successors: Option<SortedSpill<Successor>>,
    /// Pairs of a proxy's legs, to be read in order (all pairs made: those of the services
    /// that count as a proxy's legs are [`twsleuth_flows::LegSummary::counts`]).
    pub leg_pairs: Option<SortedSpill<LegPair>>,
    /// The collisions a report shows, with their packets.
    pub shown: Option<ShownCollisions>,
}

impl Analysis {
    /// Reads, decodes and tracks the inputs, and weighs the evidence; `sinks` says which
    /// records to keep.
    pub fn run(
        input: &InputArgs,
        tracker: &TrackerArgs,
        config: &TrackerConfig,
        hashing: Hashing,
        mut sinks: Sinks,
    ) -> anyhow::Result<Analysis> {
        let mut merged = open_inputs(input, hashing)?;
        let points = CapturePoints::find(&merged);
        let mut config = config.clone();
        points.configure(&mut config);
        let tracked = track(
            &mut merged,
            &config,
            threads(tracker),
            input.quiet,
            &mut sinks,
        )?;
        let mut analysis = Analysis::assemble(merged, tracked, sinks, &config);
        analysis.points = points;
        Ok(analysis)
    }

    /// The analysis of inputs read and tracked: their figures, what the evidence cannot show,
    /// a balancer's exhaustion, the records the sinks kept.
    pub fn assemble(
        merged: MergedCaptures,
        tracked: Tracked,
        sinks: Sinks,
        config: &TrackerConfig,
    ) -> Analysis {
        warn_damage(&merged);
        let timeline_sources = sinks.summary.busiest_addresses(TIMELINE_SOURCES);
        let (mut legs, last_pairs) = sinks.legs.finish();
        legs.name_virtual_servers(|id| tracked.f5.name(id).to_string());
        let f5_rst_causes = rst_causes_in_collisions(&tracked.f5, &sinks.f5_rst_causes);
        let mut leg_pairs = sinks.leg_pairs;
        if let Some(spill) = &mut leg_pairs {
            if let Err(error) = spill.extend(last_pairs) {
                eprintln!("twsleuth: warning: cannot keep the legs' pairs in order: {error}");
                leg_pairs = None;
            }
        }
        let summary = Summary {
            legs: legs.paired(),
            ..sinks.summary.finish(&tracked.counters, TOP_SOURCES)
        };
        let mut inputs = input_files(&merged);
        for info in &tracked.f5.file_info {
            if let Some(input) = inputs.get_mut(usize::from(info.file_index)) {
                input.captured_by.get_or_insert_with(|| info.clone());
            }
        }
        let completeness = Completeness::of(&summary, &tracked.counters, &inputs, &tracked.facts);
        let exhaustion = tracked.facts.last_frame_ns.map_or_else(Vec::new, |end| {
            sinks.exhaustion.finish(&config.time_wait, end)
        });
        Analysis {
            merged,
            tracked,
            summary,
            inputs,
            completeness,
            exhaustion,
            records: Kept {
                connections: sinks.connections,
                collisions: sinks.collisions,
                successors: sinks.successors,
                leg_pairs,
                shown: sinks.shown,
            },
            points: CapturePoints::default(),
            timeline_sources,
            f5_rst_causes,
        }
    }

    /// What the results say, as the exit status does.
    pub fn status(&self) -> Status {
        Status::of(&self.summary, &self.completeness, &self.exhaustion)
    }
}

/// Runs `twsleuth analyze`.
pub fn run(args: &AnalyzeArgs, out: &mut impl Write) -> anyhow::Result<Status> {
    let config = tracker_config(&args.tracker);
    let mut sinks = Sinks::new(args.connections.is_some(), args.collisions.is_some(), false);
    if args.legs.is_some() {
        sinks = sinks.with_leg_pairs();
    }
    let mut analysis = Analysis::run(&args.input, &args.tracker, &config, Hashing::Off, sinks)?;
    if let (Some(path), Some(spill)) = (&args.connections, analysis.records.connections.take()) {
        write_jsonl(path, spill.into_sorted()?)?;
    }
    if let (Some(path), Some(spill)) = (&args.collisions, analysis.records.collisions.take()) {
        write_jsonl(path, spill.into_sorted()?)?;
    }
    if let (Some(path), Some(spill)) = (&args.legs, analysis.records.leg_pairs.take()) {
        let legs = analysis.summary.legs.as_ref();
        let counted = spill.into_sorted()?.filter(|pair| match pair {
            Ok(pair) => legs.is_some_and(|legs| legs.counts(pair)),
            // A failed read of the spill is reported by the writer.
            Err(_) => true,
        });
        write_jsonl(path, counted)?;
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &AnalysisJson::new(&analysis, &config))?;
        writeln!(out)?;
    } else {
        write_text(out, &analysis)?;
    }
    Ok(analysis.status())
}

/// The tracker configuration the options ask for.
pub fn tracker_config(args: &TrackerArgs) -> TrackerConfig {
    let os = match args.server_os {
        ServerOsArg::Linux => ServerOs::Linux,
        ServerOsArg::Windows => ServerOs::Windows,
        ServerOsArg::Freebsd => ServerOs::Freebsd,
        ServerOsArg::Macos => ServerOs::Macos,
    };
    TrackerConfig {
        server_os: os,
        time_wait: TimeWaitPolicy {
            default_ns: args.time_wait.unwrap_or_else(|| os.time_wait_ns()),
            per_host: args.time_wait_for.clone(),
            ..TimeWaitPolicy::default()
        },
        idle_timeout_ns: args.idle_timeout,
        max_memory: args.max_memory.unwrap_or_else(default_max_memory),
        split_by: args.split_by,
        ..TrackerConfig::default()
    }
}

/// The default `--max-memory`: a quarter of the machine's memory, or of the cgroup's limit
/// where one is set (a container), at least 256 MiB.
fn default_max_memory() -> usize {
    const AT_LEAST: usize = 256 << 20;
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|meminfo| {
            let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
            kib.checked_mul(1024)
        });
    // cgroup v2; "max" or no file where no limit is set.
    let limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|max| max.trim().parse::<usize>().ok());
    let machine = match (total, limit) {
        (Some(total), Some(limit)) => total.min(limit),
        (total, limit) => total.or(limit).unwrap_or(4 * AT_LEAST),
    };
    (machine / 4).max(AT_LEAST)
}

/// Worker threads: as asked, or one per core.
pub fn threads(args: &TrackerArgs) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

pub fn write_text(out: &mut impl Write, analysis: &Analysis) -> std::io::Result<()> {
    let summary = &analysis.summary;
    let accounting = &analysis.tracked.facts.accounting;
    let c = &summary.collisions;
    if analysis.tracked.facts.interrupted {
        writeln!(
            out,
            "PARTIAL RESULTS: reading was interrupted after {} frames; what follows covers them only.",
            accounting.frames
        )?;
    }
    writeln!(
        out,
        "Verdict: {}",
        verdict(
            summary,
            &analysis.tracked.counters,
            &analysis.completeness,
            &analysis.exhaustion
        )
    )?;
    writeln!(out)?;
    writeln!(out, "Connections:        {}", summary.connections)?;
    writeln!(out, "SYNs:               {}", summary.syn)?;
    writeln!(
        out,
        "Collisions:         {} (accepted {}, rejected→recovered {}, reset {}, unanswered {}, failed {}, unknown {}; inferred from one direction {})",
        c.total,
        c.accepted,
        c.rejected_recovered,
        c.reset,
        c.unanswered,
        c.failed,
        c.unknown,
        c.inferred
    )?;
    if summary.reasons.total() > 0 {
        writeln!(
            out,
            "Refused, by reason: {}",
            reasons_breakdown(&summary.reasons)
        )?;
    }
    if summary.reasons.time_wait_assassinated > 0 {
        writeln!(
            out,
            "Recovered:          {} by the client's RST ending the server's TIME_WAIT (RFC 1337 assassination, tcp_rfc1337=0)",
            summary.reasons.time_wait_assassinated
        )?;
    }
    writeln!(
        out,
        "TIME_WAIT holder:   {}",
        closers_sentence(&summary.active_closers, summary.connections)
    )?;
    if let Some(first) = &summary.first_collision {
        writeln!(
            out,
            "First collision:    {}{} at {}:{} → {}:{} ({}, frame {})",
            format_utc(first.ts_ns),
            if first.syn_ts_estimated {
                " (estimated from the answer)"
            } else {
                ""
            },
            first.orig_h,
            first.orig_p,
            first.resp_h,
            first.resp_p,
            // The capture's name (a member of a set: `dir/cap.pcap7`, `a.tgz:core3.pcap`),
            // so that the frame number opens in Wireshark.
            analysis
                .inputs
                .get(usize::from(first.first_syn_frame.file_index))
                .map_or("?", |input| input.name.as_str()),
            first.first_syn_frame.number
        )?;
    }
    let latency = &summary.added_latency_ms;
    if latency.count > 0 {
        writeln!(
            out,
            "Added latency:      p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms (first SYN → SYN-ACK, {} collided connections)",
            latency.p50, latency.p95, latency.max, latency.count
        )?;
    }
    if let Some(legs) = &summary.legs {
        let added = &legs.added_latency_ms;
        writeln!(
            out,
            "Proxy legs:         {} end-user requests paired with the backend connection opened for each ({}, confidence {:.2}; request → backend SYN p50 {:.1} ms); {} slowed by a TIME_WAIT collision on their backend connection{}",
            legs.pairs,
            match legs.named_by_trailer {
                0 => "by timing and order".to_string(),
                n if n == legs.pairs => "named by F5 trailers' flow ids".to_string(),
                n => format!("{n} named by F5 trailers' flow ids, the rest by timing and order"),
            },
            legs.confidence,
            legs.request_to_syn_ms.p50,
            legs.requests_slowed,
            if added.count > 0 {
                format!(
                    ", which added p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
                    added.p50, added.p95, added.max
                )
            } else {
                String::new()
            }
        )?;
        for service in legs.services.iter().filter(|s| s.proxy) {
            writeln!(
                out,
                "  {} → {}{}: {} pairs of {} backend SYNs ({} named by F5 trailers), {} slowed",
                service.frontend,
                service.backend,
                service
                    .virtual_server
                    .as_deref()
                    .map_or_else(String::new, |vs| format!(
                        " (virtual server \"{}\")",
                        vs.escape_debug()
                    )),
                service.pairs,
                service.backend_syns,
                service.named_by_trailer,
                service.requests_slowed
            )?;
        }
    }
    if let Some(agreement) = summary.prediction_agreement {
        writeln!(
            out,
            "Linux prediction:   agrees with {:.1}% of the answers seen",
            agreement * 100.0
        )?;
    }
    writeln!(
        out,
        "Port reuses:        {} ({} by an endpoint reusing its own TIME_WAIT: not collisions)",
        summary.reused_tuples, summary.client_side_reuse
    )?;
    for (label, sentence) in capture_point_sentences(analysis) {
        writeln!(out, "{label:<20}{sentence}")?;
    }
    if !analysis.tracked.f5.is_empty() {
        write_f5_text(&analysis.tracked.f5, out)?;
    }
    for cause in &analysis.f5_rst_causes {
        writeln!(
            out,
            "  RST cause \"{}\" in {} collisions (a reset on the tuple between the SYN and its SYN-ACK)",
            cause.cause.escape_debug(),
            cause.collisions
        )?;
    }
    if !summary.sources.is_empty() {
        writeln!(out)?;
        writeln!(out, "Busiest sources (SNAT addresses or clients):")?;
        for s in &summary.sources {
            writeln!(
                out,
                "  {:<39} {:>9} conns  ports {}–{} ({} in use)  reuse min {}  collisions {}",
                s.orig_h.to_string(),
                s.connections,
                s.port_min,
                s.port_max,
                s.ports_in_use,
                s.min_reuse_interval_ns
                    .map_or_else(|| "-".to_string(), duration),
                s.collisions
            )?;
        }
    }
    writeln!(out)?;
    let t = &analysis.tracked.counters;
    writeln!(
        out,
        "Frames: {} (TCP {}, other IP {}, non-IP {}, malformed {}, truncated {}, fragments {}{}); evicted: {} idle, {} over --max-memory ({} in TIME_WAIT); failed attempts: {}; duplicates: {}; edge cases dismissed: {}",
        accounting.frames,
        accounting.tcp_segments,
        accounting.other_ip,
        accounting.non_ip,
        accounting.malformed,
        accounting.truncated,
        accounting.fragments,
        // A BIG-IP capture's fileinfo pseudo-packet: the capture's description, not traffic.
        if accounting.capture_info > 0 {
            format!(", capture information {}", accounting.capture_info)
        } else {
            String::new()
        },
        t.idle_evictions,
        t.memory_evictions,
        t.time_wait_evictions,
        t.failed_attempts,
        t.duplicate_segments,
        t.edge_cases_dismissed
    )?;
    writeln!(out)?;
    let limits = &analysis.completeness.cannot_show;
    if limits.is_empty() {
        writeln!(
            out,
            "What this evidence cannot show: nothing was missing (both directions of every connection, no frame cut or damaged, no state evicted, nothing inferred)."
        )?;
    } else {
        writeln!(out, "What this evidence cannot show:")?;
        for limit in limits {
            writeln!(
                out,
                "  - {}{}",
                if limit.blocks_all_clear {
                    "COULD HIDE A COLLISION: "
                } else {
                    ""
                },
                limit.text
            )?;
        }
    }
    Ok(())
}

/// How the inputs were put together, as (label, sentence): each capture point's clock against
/// the first, and the inputs analysed side by side (they share no connection). `analyze`
/// prints them; the report's method section says the same.
pub fn capture_point_sentences(analysis: &Analysis) -> Vec<(String, String)> {
    let mut sentences = Vec::new();
    for clock in &analysis.summary.capture_points {
        let name = |point: u8| {
            let input = analysis.points.of_input.iter().position(|&p| p == point);
            input
                .and_then(|i| analysis.inputs.get(i))
                .map_or("?", |input| input.name.as_str())
        };
        sentences.push((
            format!("Capture point {}:", clock.point),
            format!(
                "{} against {}: clock offset {:+.6} s (spread {:.6} s, drift {:+.1} ppm, one-way delay {:+.6} s) from {} handshakes seen at both; each connection counted once",
                name(clock.point),
                name(0),
                clock.offset_ns as f64 / 1e9,
                clock.spread_ns as f64 / 1e9,
                clock.drift_ppm,
                clock.one_way_delay_ns as f64 / 1e9,
                clock.matched_handshakes
            ),
        ));
    }
    let alone = &analysis.points.side_by_side;
    if !alone.is_empty() {
        const NAMED: usize = 3;
        let mut names: Vec<&str> = alone
            .iter()
            .take(NAMED)
            .filter_map(|&i| analysis.inputs.get(usize::from(i)))
            .map(|input| input.name.as_str())
            .collect();
        let more = format!("{} more", alone.len().saturating_sub(NAMED));
        if alone.len() > NAMED {
            names.push(&more);
        }
        sentences.push((
            "Side by side:".to_string(),
            format!(
                "{} share{} no connection with the other inputs: analysed beside them, nothing joined",
                names.join(", "),
                if alone.len() == 1 { "s" } else { "" }
            ),
        ));
    }
    sentences
}
