//! The evidence: which collisions the report shows packet by packet (the first, the worst, one
//! of each other outcome and of each reason for a refusal), which packets make each one's
//! ladder (the previous connection's closing exchange, then the new handshake), and what each
//! packet means for the collision. The tracker keeps every collision's packets
//! ([`CollisionLadder`], with `TrackerConfig::ladders`); [`LadderKeeper`] keeps those of the
//! collisions the report may pick as the records stream past, so the inputs are read once.

use std::collections::BTreeMap;

use twsleuth_decode::TcpFlags;
use twsleuth_flows::{
    CollisionLadder, CollisionRecord, LadderSegment, LinuxRule, Outcome, Reason, Role,
};

use crate::analysis::reason_words;
use crate::stream::{CollisionDigest, Severity, severity};
use crate::words::{duration, human};
use crate::{Evidence, LadderStep};

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

/// A kept ladder and what decides whether it stays.
struct Kept {
    uid: u64,
    severity: Severity,
    ladder: Box<CollisionLadder>,
}

/// The ladders of the collisions the report may show, kept as the records come in any order:
/// the lowest `uid` (the first), of each outcome and of each reason, and the most severe (of
/// equals the highest `uid`), the same rules [`CollisionDigest`] applies in `uid` order. A
/// dozen ladders, however many collisions.
#[derive(Default)]
pub struct LadderKeeper {
    first: Option<Kept>,
    worst: Option<Kept>,
    of_outcome: BTreeMap<Outcome, Kept>,
    of_reason: BTreeMap<Reason, Kept>,
}

impl LadderKeeper {
    /// Takes the packets of collision `c` (leaving the record without them), keeping them if
    /// the report may show it.
    pub fn offer(&mut self, c: &mut CollisionRecord) {
        let Some(ladder) = c.ladder.take() else {
            return;
        };
        let severity = severity(c);
        let first = self.first.as_ref().is_none_or(|k| c.uid < k.uid);
        let worst = (self.worst.as_ref()).is_none_or(|k| (severity, c.uid) >= (k.severity, k.uid));
        let of_outcome = (self.of_outcome.get(&c.outcome)).is_none_or(|k| c.uid < k.uid);
        let reason = c
            .reason
            .filter(|reason| (self.of_reason.get(reason)).is_none_or(|k| c.uid < k.uid));
        // Most collisions are none of these: their packets go without a copy.
        let mut roles = usize::from(first) + usize::from(worst) + usize::from(of_outcome);
        roles += usize::from(reason.is_some());
        let mut ladder = Some(ladder);
        let mut kept = || Kept {
            uid: c.uid,
            severity,
            ladder: {
                roles -= 1;
                match roles {
                    0 => ladder.take().expect("one ladder per role"),
                    _ => ladder.clone().expect("one ladder per role"),
                }
            },
        };
        if first {
            self.first = Some(kept());
        }
        if worst {
            self.worst = Some(kept());
        }
        if of_outcome {
            self.of_outcome.insert(c.outcome, kept());
        }
        if let Some(reason) = reason {
            self.of_reason.insert(reason, kept());
        }
    }

    /// The packets kept of collision `uid`.
    fn ladder(&self, uid: u64) -> Option<&CollisionLadder> {
        [&self.first, &self.worst]
            .into_iter()
            .flatten()
            .chain(self.of_outcome.values())
            .chain(self.of_reason.values())
            .find(|k| k.uid == uid)
            .map(|k| k.ladder.as_ref())
    }
}

/// The evidence: the collisions the report shows, each with its ladder from `kept`, each
/// packet with what it means; `point_of_input[i]` is the capture point of input `i` (0 for
/// all when the inputs were not put together as capture points). A collision whose packets
/// were not kept (the tracker did not keep ladders) has no steps.
pub fn evidence(
    collisions: &CollisionDigest,
    kept: &LadderKeeper,
    point_of_input: &[u8],
) -> Vec<Evidence> {
    let point = |s: &LadderSegment| {
        point_of_input
            .get(usize::from(s.frame.file_index))
            .copied()
            .unwrap_or(0)
    };
    pick(collisions)
        .into_iter()
        .map(|(label, c)| {
            let (tail, head) = kept
                .ladder(c.uid)
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
                collision: c.clone(),
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
