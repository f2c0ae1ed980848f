//! `twsleuth analyze`: the verdict, the key figures, and the JSON Lines exports.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;
use twsleuth_decode::Accounting;
use twsleuth_flows::{
    Findings, SECOND_NS, ServerOs, Summary, TimeWaitPolicy, TrackerConfig, TrackerCounters,
};
use twsleuth_reader::MergedCaptures;

use crate::cli::{AnalyzeArgs, ServerOsArg};
use crate::scan::{open_inputs, track, warn_damage};
use crate::utc::format_utc;

/// How many source addresses the summary lists.
const TOP_SOURCES: usize = 10;

/// The `analyze --json` object.
#[derive(Serialize)]
struct AnalyzeJson<'a> {
    verdict: String,
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
    damage: Option<String>,
}

/// Runs `twsleuth analyze`; returns whether collisions were found.
pub fn run(args: &AnalyzeArgs, out: &mut impl Write) -> anyhow::Result<bool> {
    let config = tracker_config(args);
    let mut merged = open_inputs(&args.input)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    let tracked = track(&mut merged, &config, threads, args.input.quiet)?;
    warn_damage(&merged);
    let findings = &tracked.findings;
    let summary = Summary::new(findings, TOP_SOURCES);

    if let Some(path) = &args.connections {
        write_jsonl(path, &findings.connections)?;
    }
    if let Some(path) = &args.collisions {
        write_jsonl(path, &findings.collisions)?;
    }
    let verdict = verdict(&summary, findings);
    if args.json {
        let json = AnalyzeJson {
            verdict,
            summary: &summary,
            accounting: tracked.accounting,
            tracker: findings.counters,
            config: &config,
            inputs: inputs_json(&merged),
        };
        serde_json::to_writer_pretty(&mut *out, &json)?;
        writeln!(out)?;
    } else {
        write_text(
            out,
            &verdict,
            &summary,
            findings,
            &tracked.accounting,
            &merged,
        )?;
    }
    Ok(summary.collisions.total > 0)
}

fn tracker_config(args: &AnalyzeArgs) -> TrackerConfig {
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
        max_flows: args.max_flows.max(1),
    }
}

fn inputs_json(merged: &MergedCaptures) -> Vec<InputJson> {
    merged
        .readers()
        .iter()
        .map(|r| InputJson {
            input: r.input().to_string(),
            frames: r.counters().frames,
            damage: r.damage().map(ToString::to_string),
        })
        .collect()
}

/// Writes one JSON object per line, to a temporary file renamed into place when complete,
/// so that an interrupted run never leaves a half-written file that looks whole.
fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> anyhow::Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let temporary = path.with_file_name(format!(
        ".{}.twsleuth-{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let write = || -> anyhow::Result<()> {
        let mut w = BufWriter::new(File::create(&temporary)?);
        for record in records {
            serde_json::to_writer(&mut w, record)?;
            w.write_all(b"\n")?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&temporary, path)?;
        Ok(())
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        e.context(format!("cannot write {}", path.display()))
    })
}

fn seconds(ns: i64) -> String {
    format!("{:.3} s", ns as f64 / SECOND_NS as f64)
}

/// One sentence: what collided with whose TIME_WAIT, and what it cost; or what was checked.
fn verdict(summary: &Summary, findings: &Findings) -> String {
    let c = &summary.collisions;
    if c.total == 0 {
        return format!(
            "No TIME_WAIT collision: {} connections and {} SYNs checked; {} port reuses, {} of them by an endpoint reusing its own TIME_WAIT (not a collision).",
            summary.connections, summary.syn, summary.reused_tuples, summary.client_side_reuse
        );
    }
    let holder = summary
        .time_wait_holders
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or("server", |(who, _)| *who);
    let first = &findings.collisions[0];
    let rejected = c.rejected_recovered + c.unanswered;
    let mut sentence = format!(
        "TIME_WAIT collisions on {} → {}:{}: {} SYNs hit 4-tuples held in TIME_WAIT by the {holder} (it closed first)",
        first.orig_h, first.resp_h, first.resp_p, c.total
    );
    if rejected > 0 {
        sentence.push_str(&format!(
            "; {rejected} were rejected or unanswered and recovered after a median {:.2} s",
            median_cost_s(findings)
        ));
    }
    if c.failed + c.reset > 0 {
        sentence.push_str(&format!("; {} never connected", c.failed + c.reset));
    }
    sentence.push('.');
    sentence
}

fn median_cost_s(findings: &Findings) -> f64 {
    let mut costs: Vec<i64> = findings
        .collisions
        .iter()
        .filter(|c| {
            matches!(
                c.outcome,
                twsleuth_flows::Outcome::RejectedRecovered | twsleuth_flows::Outcome::Unanswered
            )
        })
        .filter_map(|c| c.cost_ns)
        .collect();
    costs.sort_unstable();
    costs
        .get(costs.len() / 2)
        .map_or(0.0, |&ns| ns as f64 / 1e9)
}

fn write_text(
    out: &mut impl Write,
    verdict: &str,
    summary: &Summary,
    findings: &Findings,
    accounting: &Accounting,
    merged: &MergedCaptures,
) -> std::io::Result<()> {
    let c = &summary.collisions;
    writeln!(out, "Verdict: {verdict}")?;
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
            "First collision:    {} at {}:{} → {}:{} (input {}, frame {})",
            format_utc(first.ts_ns),
            first.orig_h,
            first.orig_p,
            first.resp_h,
            first.resp_p,
            first.first_syn_frame.file_index,
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
                    .map_or_else(|| "-".to_string(), seconds),
                s.collisions
            )?;
        }
    }
    writeln!(out)?;
    let t = &findings.counters;
    writeln!(
        out,
        "Frames: {} (TCP {}, other IP {}, non-IP {}, malformed {}, truncated {}, fragments {}); evicted: {} idle, {} over --max-flows; edge cases dismissed: {}",
        accounting.frames,
        accounting.tcp_segments,
        accounting.other_ip,
        accounting.non_ip,
        accounting.malformed,
        accounting.truncated,
        accounting.fragments,
        t.idle_evictions,
        t.cap_evictions,
        t.edge_cases_dismissed
    )?;
    for reader in merged.readers() {
        if let Some(damage) = reader.damage() {
            writeln!(out, "DAMAGED INPUT: {damage}")?;
        }
    }
    Ok(())
}
