//! The evidence: which collisions the report shows packet by packet (the first, the worst, one
//! of each other outcome and of each reason for a refusal), which packets make each one's
//! ladder (the previous connection's closing exchange, then the new handshake), and what each
//! packet means for the collision. The tracker's shards keep the packets of the collisions
//! that could be shown among their own ([`twsleuth_flows::CollisionLadder`], with
//! `TrackerConfig::ladders`; [`Showcase`]); [`ShownCollisions`] keeps those of the collisions
//! the report shows as the records stream past, so the inputs are read once.

use std::collections::BTreeMap;

use twsleuth_decode::TcpFlags;
use twsleuth_flows::{CollisionRecord, LadderSegment, LinuxRule, Outcome, Reason, Role, Showcase};

use crate::analysis::reason_words;
use crate::words::{duration, human};
use crate::{Evidence, LadderStep};

/// The collisions to show: the first, the worst, and one of each other outcome.
fn pick(shown: &ShownCollisions) -> Vec<(String, &CollisionRecord)> {
    let Some(first) = shown.first() else {
        return Vec::new();
    };
    let mut picked = vec![("First collision".to_string(), first)];
    if let Some(worst) = shown.worst().filter(|w| w.uid != first.uid) {
        picked.push(("Worst collision".to_string(), worst));
    }
    for example in shown.first_of_outcome() {
        if picked.iter().any(|(_, c)| c.outcome == example.outcome) {
            continue;
        }
        picked.push((format!("Example of {}", human(&example.outcome)), example));
    }
    // Each reason for a refusal has its own remedy: show one of each.
    for example in shown.first_of_reason() {
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

/// The collisions a report names and shows ([`Showcase`]: the first, the worst, the first of
/// each outcome and of each reason for a refusal), with their packets. The same whatever
/// order the records come in: the tracker's, as the sinks take them with their packets
/// ([`CollisionRecord::ladder`]), or `uid` order off disk. A dozen records, however many
/// collisions.
#[derive(Debug, Default)]
pub struct ShownCollisions {
    showcase: Showcase,
    first: Option<CollisionRecord>,
    worst: Option<CollisionRecord>,
    of_outcome: BTreeMap<Outcome, CollisionRecord>,
    of_reason: BTreeMap<Reason, CollisionRecord>,
}

impl ShownCollisions {
    /// Takes collision `c`, keeping it with its packets if it is one to show; the record is
    /// left without its packets either way.
    pub fn offer(&mut self, c: &mut CollisionRecord) {
        let ladder = c.ladder.take();
        let places = self.showcase.offer(c);
        if places.is_empty() {
            return;
        }
        let kept = CollisionRecord {
            ladder,
            ..c.clone()
        };
        if places.first {
            self.first = Some(kept.clone());
        }
        if places.worst {
            self.worst = Some(kept.clone());
        }
        if places.of_outcome {
            self.of_outcome.insert(c.outcome, kept.clone());
        }
        if let Some(reason) = places.of_reason {
            self.of_reason.insert(reason, kept);
        }
    }

    /// The first collision.
    pub fn first(&self) -> Option<&CollisionRecord> {
        self.first.as_ref()
    }

    /// The worst collision.
    pub fn worst(&self) -> Option<&CollisionRecord> {
        self.worst.as_ref()
    }

    /// The first of each outcome, in [`Outcome::ALL`] order.
    pub fn first_of_outcome(&self) -> impl Iterator<Item = &CollisionRecord> {
        Outcome::ALL
            .iter()
            .filter_map(|outcome| self.of_outcome.get(outcome))
    }

    /// The first refused for each reason, in reason order.
    pub fn first_of_reason(&self) -> impl Iterator<Item = &CollisionRecord> {
        self.of_reason.values()
    }
}

/// The evidence: the collisions of `shown` the report shows, each with its ladder, each
/// packet with what it means; `point_of_input[i]` is the capture point of input `i` (0 for
/// all when the inputs were not put together as capture points). A collision whose packets
/// were not kept (the tracker did not keep ladders) has no steps.
pub fn evidence(shown: &ShownCollisions, point_of_input: &[u8]) -> Vec<Evidence> {
    let point = |s: &LadderSegment| {
        point_of_input
            .get(usize::from(s.frame.file_index))
            .copied()
            .unwrap_or(0)
    };
    pick(shown)
        .into_iter()
        .map(|(label, c)| {
            let (tail, head) = c
                .ladder
                .as_ref()
                .map(|ladder| ladder.rows(c.first_syn_frame))
                .unwrap_or_default();
            let mut steps: Vec<LadderStep> =
                tail.iter().map(|s| step(s, c, Note::Previous)).collect();
            // SYNs counted per capture point: the same SYN captured at the balancer and at
            // the server is one SYN seen twice, not a retransmission.
            let first_point = head
                .iter()
                .find(|s| s.frame == c.first_syn_frame)
                .map_or(0, point);
            let mut syns_at: BTreeMap<u8, u32> = BTreeMap::new();
            for s in &head {
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
                label,
                collision: CollisionRecord {
                    ladder: None,
                    ..c.clone()
                },
                steps,
            }
        })
        .collect()
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
fn step(s: &LadderSegment, c: &CollisionRecord, note: Note) -> LadderStep {
    let from = if s.src == c.orig() {
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
        // What a TIME_WAIT answers to a SYN it does not accept (`tcp_timewait_state_process`
        // → `TCP_TW_ACK`): its own snd_nxt and rcv_nxt, not the new connection's.
        (_, Role::Resp)
            if flags == TcpFlags::ACK
                && s.payload_len == 0
                && s.seq == c.old_snd_nxt
                && s.ack == c.old_rcv_nxt =>
        {
            match s.timestamps {
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
        tsval: s.timestamps.map(|ts| ts.value),
        tsecr: s
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
