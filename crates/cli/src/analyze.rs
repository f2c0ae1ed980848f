//! `twsleuth analyze`: the verdict, the key figures, and the JSON Lines exports.

use std::io::Write;

use serde::Serialize;
use twsleuth_decode::Accounting;
use twsleuth_flows::{Findings, ServerOs, Summary, TimeWaitPolicy, TrackerConfig, TrackerCounters};
use twsleuth_reader::MergedCaptures;
use twsleuth_report::content::{duration, verdict};
use twsleuth_report::time::format_utc;

use crate::cli::{AnalyzeArgs, ServerOsArg, TrackerArgs};
use crate::output::write_jsonl;
use crate::scan::{Hashing, Tracked, open_inputs, track, warn_damage};

/// How many source addresses the summary lists.
pub const TOP_SOURCES: usize = 10;

/// The `analyze --json` object (also the report's `data/summary.json`).
#[derive(Serialize)]
pub struct AnalysisJson<'a> {
    verdict: String,
    /// Reading was interrupted (Ctrl-C): the results cover the frames read until then.
    partial: bool,
    #[serde(flatten)]
    summary: &'a Summary,
    accounting: Accounting,
    tracker: TrackerCounters,
    config: &'a TrackerConfig,
    inputs: Vec<InputJson>,
}

#[derive(Serialize)]
struct InputJson {
    input: String,
    frames: u64,
    /// Frames earlier than the frame before them in the file.
    out_of_order_frames: u64,
    damage: Option<String>,
}

impl<'a> AnalysisJson<'a> {
    /// The object for these results.
    pub fn new(
        summary: &'a Summary,
        tracked: &Tracked,
        config: &'a TrackerConfig,
        merged: &MergedCaptures,
    ) -> AnalysisJson<'a> {
        AnalysisJson {
            verdict: verdict(summary, &tracked.findings),
            partial: twsleuth_reader::interrupted(),
            summary,
            accounting: tracked.accounting,
            tracker: tracked.findings.counters,
            config,
            inputs: merged
                .readers()
                .iter()
                .map(|r| InputJson {
                    input: r.input().to_string(),
                    frames: r.counters().frames,
                    out_of_order_frames: r.counters().out_of_order_frames,
                    damage: r.damage().map(ToString::to_string),
                })
                .collect(),
        }
    }
}

/// Runs `twsleuth analyze`; returns whether collisions were found.
pub fn run(args: &AnalyzeArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let config = tracker_config(&args.tracker);
    let mut merged = open_inputs(&args.input, Hashing::Off)?;
    let tracked = track(
        &mut merged,
        &config,
        threads(&args.tracker),
        args.input.quiet,
    )?;
    warn_damage(&merged);
    let findings = &tracked.findings;
    let summary = Summary::new(findings, TOP_SOURCES);

    if let Some(path) = &args.connections {
        write_jsonl(path, &findings.connections)?;
    }
    if let Some(path) = &args.collisions {
        write_jsonl(path, &findings.collisions)?;
    }
    if args.json {
        let json = AnalysisJson::new(&summary, &tracked, &config, &merged);
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
    } else {
        write_text(out, &summary, &tracked, &merged)?;
    }
    Ok(summary.collisions.total > 0)
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
        time_wait: TimeWaitPolicy {
            default_ns: args.time_wait.unwrap_or_else(|| os.time_wait_ns()),
            per_host: args.time_wait_for.clone(),
            ..TimeWaitPolicy::default()
        },
        idle_timeout_ns: args.idle_timeout,
        max_memory: args.max_memory,
    }
}

/// Worker threads: as asked, or one per core.
pub fn threads(args: &TrackerArgs) -> usize {
    args.threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1)
}

fn write_text(
    out: &mut impl Write,
    summary: &Summary,
    tracked: &Tracked,
    merged: &MergedCaptures,
) -> std::io::Result<()> {
    let findings: &Findings = &tracked.findings;
    let accounting = &tracked.accounting;
    let c = &summary.collisions;
    if twsleuth_reader::interrupted() {
        writeln!(
            out,
            "PARTIAL RESULTS: reading was interrupted after {} frames; what follows covers them only.",
            accounting.frames
        )?;
    }
    writeln!(out, "Verdict: {}", verdict(summary, findings))?;
    writeln!(out)?;
    writeln!(out, "Connections:        {}", summary.connections)?;
    writeln!(out, "SYNs:               {}", summary.syn)?;
    writeln!(
        out,
        "Collisions:         {} (accepted {}, rejected→recovered {}, reset {}, unanswered {}, failed {})",
        c.total, c.accepted, c.rejected_recovered, c.reset, c.unanswered, c.failed
    )?;
    if let Some(first) = findings.collisions.first() {
        writeln!(
            out,
            "First collision:    {} at {}:{} → {}:{} ({}, frame {})",
            format_utc(first.ts_ns),
            first.orig_h,
            first.orig_p,
            first.resp_h,
            first.resp_p,
            // The capture's name (a member of a set: `dir/cap.pcap7`, `a.tgz:core3.pcap`),
            // so that the frame number opens in Wireshark.
            merged
                .readers()
                .get(usize::from(first.first_syn_frame.file_index))
                .map_or("?", |r| r.input()),
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
    let t = &findings.counters;
    writeln!(
        out,
        "Frames: {} (TCP {}, other IP {}, non-IP {}, malformed {}, truncated {}, fragments {}); evicted: {} idle, {} over --max-memory; failed attempts: {} ({} only counted); duplicates: {}; edge cases dismissed: {}",
        accounting.frames,
        accounting.tcp_segments,
        accounting.other_ip,
        accounting.non_ip,
        accounting.malformed,
        accounting.truncated,
        accounting.fragments,
        t.idle_evictions,
        t.memory_evictions,
        t.failed_attempts,
        t.failed_attempts_unrecorded,
        t.duplicate_segments,
        t.edge_cases_dismissed
    )?;
    for reader in merged.readers() {
        if let Some(damage) = reader.damage() {
            writeln!(out, "DAMAGED INPUT: {damage}")?;
        }
    }
    Ok(())
}
