//! `twsleuth report`: analyse, pick the collisions to show packet by packet, hash the inputs,
//! and have the report crate write the document, charts and data.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};
use twsleuth_decode::{Decoder, F5NameId, F5Summary, FrameRef, TcpFlags, TcpSegment};
use twsleuth_flows::{CollisionRecord, LinuxRule, Outcome, Role};
use twsleuth_reader::MergedCaptures;
use twsleuth_report::limits::Status;
use twsleuth_report::stream::{CHUNK_RECORDS, CollisionDigest, RecordStreams, export_records};
use twsleuth_report::{Evidence, F5Facts, LadderStep, ReportInput};

use crate::analyze::{Analysis, AnalysisJson, capture_point_sentences, tracker_config};
use crate::cli::ReportArgs;
use crate::points::CapturePoints;
use crate::scan::{Hashing, Sinks, open_set};

/// Segments of the previous connection shown before the colliding SYN (its closing exchange).
const LADDER_TAIL: usize = 4;
/// Segments of the new connection shown at most.
const LADDER_HEAD: usize = 12;

/// Runs `twsleuth report`.
pub fn run(args: &ReportArgs, out: &mut impl Write) -> anyhow::Result<Status> {
    // Before the analysis: a long run should not end in a refusal.
    twsleuth_report::files::check_output_dir(&args.output, args.force)?;
    run_keeping(args, &[], out)
}

/// The report of `args`, whose directory was already checked; `also_ours` are files in it
/// that belong to the report (see [`twsleuth_report::write_report`]).
pub fn run_keeping(
    args: &ReportArgs,
    also_ours: &[PathBuf],
    out: &mut impl Write,
) -> anyhow::Result<Status> {
    let config = tracker_config(&args.tracker);
    // Records wait on the temporary disk, in order, until the exports take them one chunk at
    // a time: memory does not grow with the capture.
    let sinks = Sinks::new(true, true, true);
    let mut analysis = Analysis::run(&args.input, &args.tracker, &config, Hashing::Sha256, sinks)?;
    if analysis.tracked.facts.interrupted {
        anyhow::bail!(
            "interrupted after {} frames: no report written (a report covers whole captures; `twsleuth analyze` prints partial results)",
            analysis.tracked.facts.accounting.frames
        );
    }
    // Hashed while read; an input whose reading stopped at damage is hashed whole now.
    for input in &mut analysis.inputs {
        if input.damage.is_some() {
            input.sha256 = sha256_of(&input.name);
        }
    }
    let cannot_write = || format!("cannot write the report into {}", args.output.display());
    let kept = &mut analysis.records;
    let (Some(connections), Some(collisions), Some(successors)) = (
        kept.connections.take(),
        kept.collisions.take(),
        kept.successors.take(),
    ) else {
        unreachable!("the report's sinks keep every record");
    };
    let streams = RecordStreams {
        connections: connections.into_sorted()?,
        collisions: collisions.into_sorted()?,
        successors: successors.into_sorted()?,
    };
    let data_dir = args.output.join("data");
    let (records, exported) = export_records(
        Some(&data_dir),
        streams,
        &analysis.summary,
        &config.time_wait,
        (&analysis.timeline_sources.0, analysis.timeline_sources.1),
        CHUNK_RECORDS,
    )
    .with_context(cannot_write)?;
    let mut evidence = evidence(&analysis.merged, &records.collisions, &analysis.points)?;
    name_f5_rst_causes(&mut evidence, &analysis.tracked.f5);
    let summary_json = serde_json::to_value(AnalysisJson::new(&analysis, &config))?;
    let input = ReportInput {
        records: &records,
        counters: &analysis.tracked.counters,
        summary: &analysis.summary,
        accounting: &analysis.tracked.facts.accounting,
        policy: &config.time_wait,
        inputs: analysis.inputs.clone(),
        evidence,
        completeness: &analysis.completeness,
        exhaustion: &analysis.exhaustion,
        f5: F5Facts {
            virtual_servers: analysis
                .tracked
                .f5
                .virtual_servers()
                .into_iter()
                .map(|v| (v.name, v.syn, v.rst))
                .collect(),
            rst_causes: analysis
                .f5_rst_causes
                .iter()
                .map(|c| (c.cause.clone(), c.collisions))
                .collect(),
        },
        capture_points: capture_point_sentences(&analysis)
            .into_iter()
            .map(|(label, sentence)| format!("{label} {sentence}"))
            .collect(),
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let written =
        twsleuth_report::write_report(&args.output, &input, &summary_json, exported, also_ours)
            .with_context(cannot_write)?;
    writeln!(
        out,
        "{}",
        twsleuth_report::content::verdict(
            &analysis.summary,
            &analysis.tracked.counters,
            &analysis.completeness,
            &analysis.exhaustion
        )
    )?;
    writeln!(
        out,
        "Report written to {} ({} files):",
        args.output.display(),
        written.len()
    )?;
    for path in written {
        writeln!(out, "  {}", path.display())?;
    }
    Ok(analysis.status())
}

/// SHA-256 of a file, hex; `None` for standard input (it cannot be read twice) or a file that
/// cannot be read.
fn sha256_of(path: &str) -> Option<String> {
    if path == "-" {
        return None;
    }
    let mut file = File::open(path).ok()?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The collisions to show: the first, the worst, and one of each other outcome.
fn pick(collisions: &CollisionDigest) -> Vec<(String, &CollisionRecord)> {
    let Some(first) = &collisions.first else {
        return Vec::new();
    };
    let mut picked = vec![("First collision".to_string(), first)];
    if let Some(worst) = collisions.worst.as_ref().filter(|w| w.uid != first.uid) {
        picked.push(("Worst collision".to_string(), worst));
    }
    for outcome in Outcome::ALL {
        if picked.iter().any(|(_, c)| c.outcome == outcome) {
            continue;
        }
        if let Some(example) = collisions
            .first_of_outcome
            .iter()
            .find(|c| c.outcome == outcome)
        {
            let name = twsleuth_report::tables::label(&outcome).replace('_', " ");
            picked.push((format!("Example of {name}"), example));
        }
    }
    // Each reason for a refusal has its own remedy: show one of each.
    for example in &collisions.first_of_reason {
        let Some(reason) = example.reason else {
            continue;
        };
        if picked.iter().any(|(_, c)| c.reason == Some(reason)) {
            continue;
        }
        let name = twsleuth_report::content::reason_words(reason);
        picked.push((format!("Example of a refusal ({name})"), example));
    }
    picked
}

/// Reads the inputs again for the picked collisions' packets: the previous connection's
/// closing exchange and the new handshake, in capture order.
/// Adds to each reset in the ladders the cause the BIG-IP gave it in its trailer (capture text:
/// the report's renderers escape notes).
fn name_f5_rst_causes(evidence: &mut [Evidence], f5: &F5Summary) {
    if f5.rst_cause_frames.is_empty() {
        return;
    }
    let causes: HashMap<FrameRef, F5NameId> = f5.rst_cause_frames.iter().copied().collect();
    for step in evidence.iter_mut().flat_map(|e| e.steps.iter_mut()) {
        let frame = FrameRef {
            file_index: step.file_index,
            number: step.frame,
        };
        if let Some(&cause) = causes.get(&frame) {
            let cause = f5.name(cause).escape_debug();
            step.note = format!("{}; F5 RST cause: {cause}", step.note);
        }
    }
}

fn evidence(
    read: &MergedCaptures,
    collisions: &CollisionDigest,
    points: &CapturePoints,
) -> anyhow::Result<Vec<Evidence>> {
    let picked = pick(collisions);
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    struct Pending<'a> {
        label: String,
        collision: &'a CollisionRecord,
        tail: VecDeque<TcpSegment>,
        head: Vec<TcpSegment>,
        started: bool,
        done: bool,
    }
    let mut pending: Vec<Pending<'_>> = picked
        .into_iter()
        .map(|(label, collision)| Pending {
            label,
            collision,
            tail: VecDeque::with_capacity(LADDER_TAIL + 1),
            head: Vec::new(),
            started: false,
            done: false,
        })
        .collect();
    // Standard input was consumed by the analysis: no ladders then. The set is not expanded
    // again: a compressed archive's members are where its first reading put them.
    let set = read.set();
    if !set.members().iter().any(|m| m.name() == "-") {
        let mut merged = open_set(set, Hashing::Off)?;
        let mut decoder = Decoder::default();
        while let Some(frame) = merged.next_frame() {
            let Ok(seg) = decoder.decode(&frame) else {
                continue;
            };
            for p in pending.iter_mut().filter(|p| !p.done) {
                let c = p.collision;
                let forward = seg.src == c.orig_h
                    && seg.src_port == c.orig_p
                    && seg.dst == c.resp_h
                    && seg.dst_port == c.resp_p;
                let backward = seg.dst == c.orig_h
                    && seg.dst_port == c.orig_p
                    && seg.src == c.resp_h
                    && seg.src_port == c.resp_p;
                if !forward && !backward {
                    continue;
                }
                if !p.started && seg.frame == c.first_syn_frame {
                    p.started = true;
                }
                if p.started {
                    p.head.push(seg);
                    let handshake_done = forward
                        && seg.flags == TcpFlags::ACK
                        && p.head.iter().any(|s| s.flags.is_syn_ack());
                    p.done = handshake_done || p.head.len() >= LADDER_HEAD;
                } else {
                    p.tail.push_back(seg);
                    if p.tail.len() > LADDER_TAIL {
                        p.tail.pop_front();
                    }
                }
            }
            if pending.iter().all(|p| p.done) {
                break;
            }
        }
    }
    Ok(pending
        .into_iter()
        .map(|p| {
            let c = p.collision;
            let mut steps: Vec<LadderStep> =
                p.tail.iter().map(|s| step(s, c, Note::Previous)).collect();
            // SYNs counted per capture point: the same SYN captured at the balancer and at the
            // server is one SYN seen twice, not a retransmission.
            let point = |s: &TcpSegment| {
                points
                    .of_input
                    .get(usize::from(s.frame.file_index))
                    .copied()
                    .unwrap_or(0)
            };
            let first_point = p
                .head
                .iter()
                .find(|s| s.frame == c.first_syn_frame)
                .map_or(0, point);
            let mut syns_at: BTreeMap<u8, u32> = BTreeMap::new();
            for s in &p.head {
                let note = if s.flags.is_syn_only() {
                    let at = point(s);
                    let syns = syns_at.entry(at).or_default();
                    *syns += 1;
                    match (*syns, at == first_point) {
                        (1, true) => Note::FirstSyn,
                        (1, false) => Note::SynElsewhere,
                        _ => Note::SynAgain,
                    }
                } else {
                    Note::New
                };
                steps.push(step(s, c, note));
            }
            Evidence {
                label: p.label,
                collision: c.clone(),
                steps,
            }
        })
        .collect())
}

#[derive(Clone, Copy, PartialEq)]
enum Note {
    Previous,
    FirstSyn,
    /// The first SYN as another capture point saw it.
    SynElsewhere,
    SynAgain,
    New,
}

/// A ladder row: the segment and what it means for collision `c` (with several inputs, the
/// ladder names each row's input).
fn step(s: &TcpSegment, c: &CollisionRecord, note: Note) -> LadderStep {
    let from = if s.src == c.orig_h && s.src_port == c.orig_p {
        Role::Orig
    } else {
        Role::Resp
    };
    let flags = s.flags;
    let text: String = match (note, from) {
        (Note::Previous, _) if flags.contains(TcpFlags::FIN) => "previous connection: FIN".into(),
        (Note::Previous, _) => "previous connection".into(),
        (Note::FirstSyn, _) => format!(
            "SYN on a tuple the {} holds in TIME_WAIT ({} old){}",
            match c.holder_role {
                Role::Resp => "server",
                Role::Orig => "client",
            },
            twsleuth_report::content::duration(c.time_wait_age_ns),
            syn_verdict(c)
        ),
        (Note::SynElsewhere, _) => "the same SYN, at the other capture point".into(),
        (Note::SynAgain, _) => "SYN retransmitted (same ISN)".into(),
        (_, Role::Resp) if flags.is_syn_ack() && c.isn_signature => {
            "SYN-ACK, ISN = old snd_nxt + 65537: Linux TIME_WAIT takeover".into()
        }
        (_, Role::Resp) if flags.is_syn_ack() => "SYN-ACK".into(),
        (_, Role::Resp) if flags.contains(TcpFlags::RST) => "reset by the server".into(),
        (_, Role::Resp) if flags == TcpFlags::ACK && s.payload_len == 0 => {
            match s.options.timestamps {
                Some(ts) if Some(ts.echo_reply) == c.old_ts_recent => {
                    "bare ACK with the old connection's numbers (TSecr = its ts_recent)".into()
                }
                _ => "bare ACK with the old connection's numbers".into(),
            }
        }
        // Linux's TIME_WAIT takes a RST with seq == rcv_nxt as the end of it (RFC 1337
        // "TIME-WAIT assassination"; `tcp_timewait_state_process`, tcp_rfc1337=0).
        (_, Role::Orig) if flags.contains(TcpFlags::RST) && s.seq == c.old_rcv_nxt => {
            "client RST (ACK unacceptable in SYN-SENT, RFC 9293 3.10.7.3), seq = old rcv_nxt: ends the server's TIME_WAIT (RFC 1337 assassination, tcp_rfc1337=0)".into()
        }
        (_, Role::Orig) if flags.contains(TcpFlags::RST) => {
            "client RST: the ACK is unacceptable in SYN-SENT (RFC 9293 3.10.7.3)".into()
        }
        (_, Role::Orig) if flags == TcpFlags::ACK => "ACK: handshake complete".into(),
        _ => String::new(),
    };
    LadderStep {
        ts_ns: s.ts_ns,
        frame: s.frame.number,
        file_index: s.frame.file_index,
        from,
        flags: flags.to_string(),
        seq: s.seq,
        ack: s.ack,
        payload_len: s.payload_len,
        tsval: s.options.timestamps.map(|ts| ts.value),
        tsecr: s
            .options
            .timestamps
            .filter(|_| flags.contains(TcpFlags::ACK))
            .map(|ts| ts.echo_reply),
        note: text,
    }
}

/// What Linux's `tcp_timewait_state_process` makes of the first SYN's numbers, for its note:
/// the comparison that decided it, with the values compared.
fn syn_verdict(c: &CollisionRecord) -> String {
    match (c.linux_rule, c.syn_tsval, c.old_ts_recent) {
        (Some(LinuxRule::PawsReject), Some(tsval), Some(recent)) => format!(
            "; TSval {tsval} older than ts_recent {recent}: Linux's PAWS check refuses it (RFC 7323 5.3)"
        ),
        (Some(LinuxRule::SeqNotAfterRcvNxt), ..) => format!(
            "; seq {} not after the old rcv_nxt {}{}: Linux refuses it",
            c.syn_seq,
            c.old_rcv_nxt,
            if c.timestamps() {
                ", TSval not newer than ts_recent"
            } else {
                ", no timestamps"
            }
        ),
        (Some(LinuxRule::NewerTimestamp), Some(tsval), Some(recent)) => {
            format!("; TSval {tsval} newer than ts_recent {recent}: Linux accepts it (RFC 6191)")
        }
        (Some(LinuxRule::SeqAfterRcvNxt), ..) => format!(
            "; seq after the old rcv_nxt {}: Linux accepts it",
            c.old_rcv_nxt
        ),
        _ => String::new(),
    }
}
