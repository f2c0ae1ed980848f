//! `twsleuth report`: analyse, pick the collisions to show packet by packet, hash the inputs,
//! and have the report crate write the document, charts and data.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::Context;
use sha2::{Digest, Sha256};
use twsleuth_decode::{Decoder, F5NameId, F5Summary, FrameRef, TcpFlags, TcpSegment};
use twsleuth_flows::{CollisionRecord, Findings, Outcome, Role};
use twsleuth_reader::MergedCaptures;
use twsleuth_report::limits::Status;
use twsleuth_report::{Evidence, LadderStep, ReportInput};

use crate::analyze::{Analysis, AnalysisJson, tracker_config};
use crate::cli::ReportArgs;
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
    // The report still builds its tables from every record in memory.
    let sinks = Sinks::new(false, false, true);
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
    let all = analysis.records.all.take().unwrap_or_default();
    let findings = &Findings::new(all, analysis.tracked.counters);
    let mut evidence = evidence(&analysis.merged, findings)?;
    name_f5_rst_causes(&mut evidence, &analysis.tracked.f5);
    let summary_json = serde_json::to_value(AnalysisJson::new(&analysis, &config))?;
    let input = ReportInput {
        findings,
        summary: &analysis.summary,
        accounting: &analysis.tracked.facts.accounting,
        policy: &config.time_wait,
        inputs: analysis.inputs.clone(),
        evidence,
        completeness: &analysis.completeness,
        exhaustion: &analysis.exhaustion,
        tool_version: env!("CARGO_PKG_VERSION"),
    };
    let written = twsleuth_report::write_report(&args.output, &input, &summary_json, also_ours)
        .with_context(|| format!("cannot write the report into {}", args.output.display()))?;
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
fn pick(findings: &Findings) -> Vec<(String, &CollisionRecord)> {
    let collisions = &findings.collisions;
    let Some(first) = collisions.first() else {
        return Vec::new();
    };
    let mut picked = vec![("First collision".to_string(), first)];
    // Worst: never connected first, then the highest cost.
    let severity = |c: &CollisionRecord| {
        (
            matches!(c.outcome, Outcome::Failed | Outcome::Reset),
            c.cost_ns.unwrap_or(0),
            std::cmp::Reverse(c.ts_ns),
        )
    };
    if let Some(worst) = collisions.iter().max_by_key(|c| severity(c)) {
        if !std::ptr::eq(worst, first) {
            picked.push(("Worst collision".to_string(), worst));
        }
    }
    for outcome in Outcome::ALL {
        if picked.iter().any(|(_, c)| c.outcome == outcome) {
            continue;
        }
        if let Some(example) = collisions.iter().find(|c| c.outcome == outcome) {
            let name = twsleuth_report::tables::label(&outcome).replace('_', " ");
            picked.push((format!("Example of {name}"), example));
        }
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

fn evidence(read: &MergedCaptures, findings: &Findings) -> anyhow::Result<Vec<Evidence>> {
    let picked = pick(findings);
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
    let names: Vec<String> = read
        .readers()
        .iter()
        .map(|r| r.input().to_string())
        .collect();
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
            let mut steps: Vec<LadderStep> = p
                .tail
                .iter()
                .map(|s| step(s, c, Note::Previous, &names))
                .collect();
            let mut syns = 0;
            for s in &p.head {
                let note = if s.flags.is_syn_only() {
                    syns += 1;
                    if syns == 1 {
                        Note::FirstSyn
                    } else {
                        Note::SynAgain
                    }
                } else {
                    Note::New
                };
                steps.push(step(s, c, note, &names));
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
    SynAgain,
    New,
}

/// `names`: the inputs' names, for a step in another file of a set than the first SYN (the
/// previous connection ended in the file before).
fn step(s: &TcpSegment, c: &CollisionRecord, note: Note, names: &[String]) -> LadderStep {
    let from = if s.src == c.orig_h && s.src_port == c.orig_p {
        Role::Orig
    } else {
        Role::Resp
    };
    let flags = s.flags;
    let mut text: String = match (note, from) {
        (Note::Previous, _) if flags.contains(TcpFlags::FIN) => "previous connection: FIN".into(),
        (Note::Previous, _) => "previous connection".into(),
        (Note::FirstSyn, _) => format!(
            "SYN on a tuple the {} holds in TIME_WAIT ({} old)",
            match c.holder_role {
                Role::Resp => "server",
                Role::Orig => "client",
            },
            twsleuth_report::content::duration(c.time_wait_age_ns)
        ),
        (Note::SynAgain, _) => "SYN retransmitted (same ISN)".into(),
        (_, Role::Resp) if flags.is_syn_ack() && c.isn_signature => {
            "SYN-ACK, ISN = old snd_nxt + 65537: Linux TIME_WAIT takeover".into()
        }
        (_, Role::Resp) if flags.is_syn_ack() => "SYN-ACK".into(),
        (_, Role::Resp) if flags.contains(TcpFlags::RST) => "reset by the server".into(),
        (_, Role::Resp) if flags == TcpFlags::ACK && s.payload_len == 0 => {
            "bare ACK with the old connection's numbers".into()
        }
        (_, Role::Orig) if flags.contains(TcpFlags::RST) => {
            "client RST: the ACK is unacceptable in SYN-SENT (RFC 9293 3.10.7.3)".into()
        }
        (_, Role::Orig) if flags == TcpFlags::ACK => "ACK: handshake complete".into(),
        _ => String::new(),
    };
    if s.frame.file_index != c.first_syn_frame.file_index {
        let name = names
            .get(usize::from(s.frame.file_index))
            .map_or("?", String::as_str);
        text = format!("{text} (frame of {name})").trim_start().to_string();
    }
    LadderStep {
        ts_ns: s.ts_ns,
        frame: s.frame.number,
        file_index: s.frame.file_index,
        from,
        flags: flags.to_string(),
        seq: s.seq,
        ack: s.ack,
        payload_len: s.payload_len,
        note: text,
    }
}
