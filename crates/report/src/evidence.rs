//! The evidence: which collisions the report shows packet by packet (the first, the worst, one
//! of each other outcome and of each reason for a refusal), which packets make each one's
//! ladder (the previous connection's closing exchange, then the new handshake), and what each
//! packet means for the collision. The caller only reads the packets: [`Ladders::offer`]
//! takes every decoded segment of the inputs, in capture order.

use std::collections::{BTreeMap, VecDeque};

use twsleuth_decode::{TcpFlags, TcpSegment};
use twsleuth_flows::{CollisionRecord, LinuxRule, Outcome, Role};

use crate::analysis::reason_words;
use crate::stream::CollisionDigest;
use crate::words::{duration, human};
use crate::{Evidence, LadderStep};

/// Segments of the previous connection shown before the colliding SYN (its closing exchange).
const LADDER_TAIL: usize = 4;
/// Segments of the new connection shown at most.
const LADDER_HEAD: usize = 12;

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
            picked.push((format!("Example of {}", human(&outcome)), example));
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
        let name = reason_words(reason);
        picked.push((format!("Example of a refusal ({name})"), example));
    }
    picked
}

/// The ladders of the collisions to show, filled as the inputs are read again.
pub struct Ladders<'a> {
    pending: Vec<PendingLadder<'a>>,
}

/// One collision's ladder while its packets come.
struct PendingLadder<'a> {
    label: String,
    collision: &'a CollisionRecord,
    /// The tuple's latest segments before the colliding SYN.
    tail: VecDeque<TcpSegment>,
    /// From the colliding SYN on.
    head: Vec<TcpSegment>,
    started: bool,
    done: bool,
}

impl<'a> Ladders<'a> {
    /// The ladders of the collisions [`CollisionDigest`] holds that the report shows.
    pub fn new(collisions: &'a CollisionDigest) -> Ladders<'a> {
        Ladders {
            pending: pick(collisions)
                .into_iter()
                .map(|(label, collision)| PendingLadder {
                    label,
                    collision,
                    tail: VecDeque::with_capacity(LADDER_TAIL + 1),
                    head: Vec::new(),
                    started: false,
                    done: false,
                })
                .collect(),
        }
    }

    /// No collision to show.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Every ladder has all its packets: the rest of the inputs need not be read.
    pub fn complete(&self) -> bool {
        self.pending.iter().all(|p| p.done)
    }

    /// Takes the next segment of the inputs (in capture order).
    pub fn offer(&mut self, seg: &TcpSegment) {
        for p in self.pending.iter_mut().filter(|p| !p.done) {
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
                p.head.push(*seg);
                let handshake_done = forward
                    && seg.flags == TcpFlags::ACK
                    && p.head.iter().any(|s| s.flags.is_syn_ack());
                p.done = handshake_done || p.head.len() >= LADDER_HEAD;
            } else {
                p.tail.push_back(*seg);
                if p.tail.len() > LADDER_TAIL {
                    p.tail.pop_front();
                }
            }
        }
    }

    /// The evidence, each packet with what it means; `point_of_input[i]` is the capture point
    /// of input `i` (0 for all when the inputs were not put together as capture points).
    pub fn into_evidence(self, point_of_input: &[u8]) -> Vec<Evidence> {
        let point = |s: &TcpSegment| {
            point_of_input
                .get(usize::from(s.frame.file_index))
                .copied()
                .unwrap_or(0)
        };
        self.pending
            .into_iter()
            .map(|p| {
                let c = p.collision;
                let mut steps: Vec<LadderStep> =
                    p.tail.iter().map(|s| step(s, c, Note::Previous)).collect();
                // SYNs counted per capture point: the same SYN captured at the balancer and at
                // the server is one SYN seen twice, not a retransmission.
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
            .collect()
    }
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
            duration(c.time_wait_age_ns),
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
