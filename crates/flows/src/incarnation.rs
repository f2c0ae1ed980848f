//! One connection incarnation on a tuple: its handshake, data, close and TIME_WAIT, followed
//! segment by segment as a passive observer (RFC 9293 section 3.3.2's state diagram, seen from
//! the wire rather than from inside either stack).

use twsleuth_decode::{FrameRef, TcpFlags, TcpSegment};

use crate::config::TimeWaitPolicy;
use crate::ladder::RecentSegments;
use crate::records::{
    ActiveCloser, CloseKind, ConnectionRecord, Doubt, FirstReply, History, Role, ZeekState,
};
use crate::seq::SeqNumber;
use crate::tuple::{Endpoint, View, endpoints};

/// What one side sent, as seen on the wire. In declaration order (`repr(C)`), the fields
/// every segment updates first, so that following a segment touches few cache lines; what
/// only the handshake and the close set comes after.
#[derive(Clone, Debug, Default)]
#[repr(C)]
pub(crate) struct Side {
    pub pkts: u64,
    pub payload_bytes: u64,
    /// One past the highest sequence number sent: the peer's `rcv_nxt` once all arrived.
    pub snd_nxt: Option<SeqNumber>,
    /// The highest acknowledgment number sent: how far the peer's data had arrived, which
    /// shows the peer's sequence numbers even where the capture lacks its segments
    /// (DESIGN.md section 10).
    pub max_ack: Option<SeqNumber>,
    /// The latest TSval this side sent (the peer's `ts_recent`).
    pub last_tsval: Option<u32>,
    /// The latest TSecr this side sent: the peer's TSval as this side last recorded it.
    pub last_tsecr: Option<u32>,
    /// Initial sequence number (from its SYN or SYN-ACK).
    pub isn: Option<SeqNumber>,
    /// History letters already recorded for this side.
    history_letters: u8,
    /// The last few segments with payload or SYN/FIN/RST, and when they were captured: a few,
    /// since frames with equal timestamps in two merged files interleave file by file.
    recent: [(i64, SegmentPrint); RECENT_PRINTS],
    /// First FIN: (time, global index, its sequence number, the ACK it carried).
    pub fin: Option<FinSent>,
    /// When the peer acknowledged this side's FIN.
    pub fin_acked_ns: Option<i64>,
    /// The first ACK this side sent after its own FIN that acknowledged exactly one more than
    /// that FIN did: the peer's FIN, which came second. Tells who closed first when the
    /// peer's segments are not in the capture.
    pub acked_later_fin: Option<(i64, u64, FrameRef)>,
    /// First RST after the handshake (or at any time when no SYN was seen).
    pub rst: Option<RstSent>,
    /// A RST during the handshake (before any SYN-ACK).
    pub handshake_rst: Option<RstSent>,
}

/// Segments per side remembered to recognise a duplicate.
const RECENT_PRINTS: usize = 4;

/// Two captures of one IPv4 packet (the same IP identification and TCP fields) closer in time
/// than this are a duplicate (a bridge or a SPAN port capturing it twice, or the same frame in
/// two merged files), not a retransmission, which gets a new IP identification. Time alone
/// would not do: on a veth or loopback, RACK retransmits within microseconds (the rejected lab
/// capture has one 13 µs after the original). IPv6 packets, and IPv4 ones with identification
/// 0 (DF packets of some stacks), carry nothing to tell them apart and are never duplicates.
const DUPLICATE_WITHIN_NS: u64 = 5_000_000;

/// What tells one segment from another on the wire, but for when it was captured. Packed
/// (24 bytes): each side keeps [`RECENT_PRINTS`] of them in every incarnation followed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SegmentPrint {
    seq: u32,
    ack: u32,
    payload_len: u32,
    /// TSval, 0 when `has_tsval` is false.
    tsval: u32,
    window: u16,
    /// Never 0 in a print made by [`SegmentPrint::of`]: an unused slot (all zero) matches
    /// no segment.
    ip_id: u16,
    flags: TcpFlags,
    has_tsval: bool,
}

impl SegmentPrint {
    /// The print of a segment worth checking: an IPv4 one with an identification, and with
    /// payload or SYN, FIN or RST. Bare ACKs are left out: a receiver sends identical duplicate
    /// ACKs for out-of-order data (their SACK blocks, which differ, are not kept), and counting
    /// one twice changes nothing.
    fn of(seg: &TcpSegment) -> Option<SegmentPrint> {
        let carries = seg.payload_len > 0
            || seg.flags.0 & (TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::RST.0) != 0;
        let tsval = seg.options.timestamps.map(|t| t.value);
        (carries && seg.ip_id != 0).then_some(SegmentPrint {
            seq: seg.seq,
            ack: seg.ack,
            payload_len: seg.payload_len,
            tsval: tsval.unwrap_or(0),
            window: seg.window,
            ip_id: seg.ip_id,
            flags: seg.flags,
            has_tsval: tsval.is_some(),
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct FinSent {
    pub ts_ns: i64,
    pub index: u64,
    pub seq: SeqNumber,
    pub ack: Option<SeqNumber>,
}

/// A RST as sent: its sequence number decides whether a TIME_WAIT accepts it
/// (`tcp_timewait_state_process`: only `seq == tw_rcv_nxt` kills it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RstSent {
    pub ts_ns: i64,
    pub seq: SeqNumber,
    pub frame: FrameRef,
}

/// Which directions of a connection the capture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Both,
    /// Only the originator's segments (one side of an asymmetric SPAN, a balancer's capture
    /// of what it sends).
    OrigOnly,
    /// Only the responder's segments (a Cisco ACE recording what arrives from the servers).
    RespOnly,
}

/// A connection being followed.
#[derive(Clone, Debug)]
pub(crate) struct Incarnation {
    /// Global index (position in the merged input) of its first segment: the deterministic
    /// identity from which dense ids are made.
    pub first_index: u64,
    pub first_frame: FrameRef,
    pub last_frame: FrameRef,
    pub start_ns: i64,
    pub last_ns: i64,
    pub orig: Endpoint,
    pub resp: Endpoint,
    pub orig_side: Side,
    pub resp_side: Side,
    pub syn_seen: bool,
    pub first_syn_ns: Option<i64>,
    pub syns: u32,
    pub syn_ack_ns: Option<i64>,
    /// The originator's first ACK of the responder's SYN-ACK (its sequence number one past
    /// its ISN): time, the acknowledgment number (the responder's ISN + 1), frame. Seen even
    /// where the SYN-ACK is not in the capture.
    pub handshake_ack: Option<(i64, SeqNumber, FrameRef)>,
    /// When the originator's first payload was captured: its request, which a proxy answers
    /// by opening its server-side connection (leg pairing, [`crate::LegPairer`]).
    pub orig_data_ns: Option<i64>,
    /// The responder's first answer after the first SYN.
    pub first_reply: Option<FirstReply>,
    /// The ACK number of the first bare ACK answering the SYN (a TIME_WAIT holder's `rcv_nxt`).
    pub challenge_ack: Option<SeqNumber>,
    /// The latest pure ACK that repeated, after the close, a side's ACK of the peer's FIN (same
    /// numbers): what a TIME_WAIT answers to a segment it does not accept, such as a SYN the
    /// capture did not hold (DESIGN.md section 10). Time and frame.
    pub time_wait_answer: Option<(i64, FrameRef)>,
    /// The originator reused a tuple it held in TIME_WAIT itself (`tcp_tw_reuse`, a balancer
    /// ignoring its own TIME_WAIT): no server state was hit.
    pub client_side_reuse: bool,
    history: History,
    pub doubts: u8,
    /// Link to the tuple's previous incarnation: (its first index, interval since it ended).
    pub previous: Option<(u64, i64)>,
    /// Where its segments were seen.
    pub view: View,
    /// The tuple's latest segments (with [`crate::TrackerConfig::ladders`]; else empty).
    pub recent: RecentSegments,
}

impl Incarnation {
    /// Starts an incarnation at `seg`. Its sender is the originator when it is a SYN; after a
    /// SYN-ACK its receiver is; otherwise (midstream) the side with the lower, well-known port
    /// is taken as responder, a guess recorded as a doubt.
    pub fn start(seg: &TcpSegment, index: u64, view: View) -> Incarnation {
        let (src, dst) = endpoints(seg);
        let (orig, resp, doubts) = if seg.flags.is_syn_only() {
            (src, dst, 0)
        } else if seg.flags.is_syn_ack() || src.port < dst.port {
            (dst, src, Doubt::NoSyn as u8)
        } else {
            (src, dst, Doubt::NoSyn as u8)
        };
        Incarnation {
            first_index: index,
            first_frame: seg.frame,
            last_frame: seg.frame,
            start_ns: seg.ts_ns,
            last_ns: seg.ts_ns,
            orig,
            resp,
            orig_side: Side::default(),
            resp_side: Side::default(),
            syn_seen: false,
            first_syn_ns: None,
            syns: 0,
            syn_ack_ns: None,
            handshake_ack: None,
            orig_data_ns: None,
            first_reply: None,
            challenge_ack: None,
            time_wait_answer: None,
            client_side_reuse: false,
            history: History::default(),
            doubts,
            previous: None,
            view,
            recent: RecentSegments::default(),
        }
    }

    /// The role of `seg`'s sender.
    pub fn role_of(&self, seg: &TcpSegment) -> Role {
        if seg.src == self.orig.ip && seg.src_port == self.orig.port {
            Role::Orig
        } else {
            Role::Resp
        }
    }

    fn side_mut(&mut self, role: Role) -> &mut Side {
        match role {
            Role::Orig => &mut self.orig_side,
            Role::Resp => &mut self.resp_side,
        }
    }

    /// Which directions the capture holds of this incarnation, as far as the segments show:
    /// an answer without its question, or acknowledgments of bytes the capture never held.
    /// SYNs alone with no answer are an unanswered attempt, not a missing direction.
    pub fn seen(&self) -> Seen {
        match (self.orig_side.pkts > 0, self.resp_side.pkts > 0) {
            (true, false) if self.orig_side.max_ack.is_some() => Seen::OrigOnly,
            (false, true) => Seen::RespOnly,
            _ => Seen::Both,
        }
    }

    /// A connection attempt on a tuple with no history that got no SYN-ACK (so far): what a
    /// SYN flood or a port scan is made of. An attempt the originator went on with (its
    /// handshake ACK: the answer is only missing from the capture) is not one.
    pub fn is_failing_fresh_attempt(&self) -> bool {
        self.syn_seen
            && self.syn_ack_ns.is_none()
            && self.handshake_ack.is_none()
            && self.previous.is_none()
    }

    /// Is `seg` a second capture of a segment its side just sent ([`DUPLICATE_WITHIN_NS`])?
    pub fn is_duplicate(&self, seg: &TcpSegment) -> bool {
        let side = match self.role_of(seg) {
            Role::Orig => &self.orig_side,
            Role::Resp => &self.resp_side,
        };
        SegmentPrint::of(seg).is_some_and(|print| {
            side.recent.iter().any(|(ts_ns, recent)| {
                *recent == print && seg.ts_ns.abs_diff(*ts_ns) < DUPLICATE_WITHIN_NS
            })
        })
    }

    /// Is `seg` a retransmission of this incarnation's SYN (same sender, same ISN)?
    pub fn is_syn_retransmission(&self, seg: &TcpSegment) -> bool {
        self.syn_seen
            && self.role_of(seg) == Role::Orig
            && self.orig_side.isn == Some(SeqNumber(seg.seq))
    }

    /// Does a SYN-ACK belong here: from the responder, acknowledging our SYN (or no SYN seen)?
    /// A SYN that carried data (TCP Fast Open, RFC 7413 section 4.2) is acknowledged up to
    /// its data when the server took the cookie, or only up to ISN + 1 when it did not: any
    /// acknowledgment from ISN + 1 to the SYN's end belongs to it.
    pub fn accepts_syn_ack(&self, seg: &TcpSegment) -> bool {
        let ack = SeqNumber(seg.ack);
        self.role_of(seg) == Role::Resp
            && self.orig_side.isn.is_none_or(|isn| {
                ack.is_after(isn) && self.orig_side.snd_nxt.is_none_or(|end| !ack.is_after(end))
            })
            && self
                .resp_side
                .isn
                .is_none_or(|isn| isn == SeqNumber(seg.seq))
    }

    /// Is `seg` a RST with which the responder answered a SYN the capture does not hold: a
    /// RST+ACK after the close whose acknowledgment is not the old connection's (RFC 9293
    /// section 3.10.7.1: a reset answering a SYN acknowledges the SYN).
    pub fn is_reset_of_unseen_syn(&self, seg: &TcpSegment) -> bool {
        seg.flags
            .contains(TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0))
            && self.role_of(seg) == Role::Resp
            && self.is_closed()
            && self.resp_side.max_ack != Some(SeqNumber(seg.ack))
    }

    /// Closed for good: both FINs acknowledged, or reset. New segments on the tuple after
    /// that are late retransmissions or a new incarnation. With one direction in the
    /// capture, the visible side's FIN stands for the close: the other side's is inferred
    /// ([`Incarnation::infer_unseen_side`]).
    pub fn is_closed(&self) -> bool {
        let fin_done = |side: &Side| side.fin.is_some() && side.fin_acked_ns.is_some();
        let visible_fin = match self.seen() {
            Seen::Both => false,
            Seen::OrigOnly => self.orig_side.fin.is_some(),
            Seen::RespOnly => self.resp_side.fin.is_some(),
        };
        (fin_done(&self.orig_side) && fin_done(&self.resp_side))
            || visible_fin
            || self.orig_side.rst.is_some()
            || self.resp_side.rst.is_some()
            || (self.syn_ack_ns.is_none() && self.resp_side.handshake_rst.is_some())
    }

    /// Follows one segment of this incarnation.
    pub fn update(&mut self, seg: &TcpSegment, index: u64) {
        let role = self.role_of(seg);
        let flags = seg.flags;
        let seq = SeqNumber(seg.seq);
        let ack = flags.contains(TcpFlags::ACK).then_some(SeqNumber(seg.ack));
        self.last_ns = self.last_ns.max(seg.ts_ns);
        self.last_frame = seg.frame;
        if let Some(print) = SegmentPrint::of(seg) {
            let recent = &mut self.side_mut(role).recent;
            recent.rotate_right(1);
            recent[0] = (seg.ts_ns, print);
        }

        // The handshake, and the answers to a SYN that a TIME_WAIT holder gives
        // (DESIGN.md section 3).
        if flags.is_syn_only() && role == Role::Orig {
            self.syn_seen = true;
            self.syns += 1;
            self.first_syn_ns.get_or_insert(seg.ts_ns);
            if self.syns == 2 && self.first_reply.is_none() {
                self.first_reply = Some(FirstReply::None);
            }
        } else if flags.is_syn_ack() && role == Role::Resp {
            self.syn_ack_ns.get_or_insert(seg.ts_ns);
            self.first_reply.get_or_insert(FirstReply::SynAck);
        } else if role == Role::Resp && self.syn_seen && self.syn_ack_ns.is_none() {
            if flags.contains(TcpFlags::RST) {
                self.first_reply.get_or_insert(FirstReply::Rst);
            } else if flags == TcpFlags::ACK && seg.payload_len == 0 {
                self.first_reply.get_or_insert(FirstReply::Ack);
                self.challenge_ack.get_or_insert(SeqNumber(seg.ack));
            }
        } else if role == Role::Orig
            && self.handshake_ack.is_none()
            && self.syn_seen
            && !flags.contains(TcpFlags::RST)
            && self.orig_side.isn.is_some_and(|isn| seq == isn.plus(1))
        {
            // With the SYN-ACK in the capture, the ACK must be of its ISN; without it, the
            // originator's first ACK after its SYN says the handshake went on unseen.
            if let Some(ack) =
                ack.filter(|&a| self.resp_side.isn.is_none_or(|isn| a == isn.plus(1)))
            {
                self.handshake_ack = Some((seg.ts_ns, ack, seg.frame));
            }
        }

        let before_syn_ack = self.syn_seen && self.syn_ack_ns.is_none();
        let peer_fin = self.side_mut(role.peer()).fin;
        let side = self.side_mut(role);
        side.pkts += 1;
        side.payload_bytes += u64::from(seg.payload_len);
        if flags.contains(TcpFlags::SYN) {
            side.isn.get_or_insert(seq);
        }
        let end = seq.plus(seg.seq_len());
        side.snd_nxt = Some(side.snd_nxt.map_or(end, |n| n.max(end)));
        if let Some(ack) = ack {
            // After its own FIN, an ACK of exactly one more than the FIN acknowledged: the
            // peer's FIN, second.
            if let Some(FinSent {
                ack: Some(fin_ack), ..
            }) = side.fin
            {
                if side.acked_later_fin.is_none() && ack == fin_ack.plus(1) {
                    side.acked_later_fin = Some((seg.ts_ns, index, seg.frame));
                }
            }
            if side.max_ack.is_none_or(|m| ack.is_after(m)) {
                side.max_ack = Some(ack);
            }
        }
        if flags.contains(TcpFlags::FIN) && side.fin.is_none() {
            side.fin = Some(FinSent {
                ts_ns: seg.ts_ns,
                index,
                seq: seq.plus(seg.payload_len),
                ack,
            });
        }
        if flags.contains(TcpFlags::RST) {
            let rst = RstSent {
                ts_ns: seg.ts_ns,
                seq,
                frame: seg.frame,
            };
            if before_syn_ack {
                side.handshake_rst.get_or_insert(rst);
            } else {
                side.rst.get_or_insert(rst);
            }
        }
        if let Some(ts) = seg.options.timestamps {
            side.last_tsval = Some(ts.value);
            if flags.contains(TcpFlags::ACK) {
                side.last_tsecr = Some(ts.echo_reply);
            }
        }
        // A pure ACK repeating, later, this side's ACK of the peer's FIN: a TIME_WAIT answering
        // something it did not accept.
        if let Some((_, acked_index, _)) = side.acked_later_fin {
            if flags == TcpFlags::ACK
                && seg.payload_len == 0
                && index > acked_index
                && Some(seq) == side.snd_nxt
                && ack == side.max_ack
            {
                self.time_wait_answer = Some((seg.ts_ns, seg.frame));
            }
        }
        // An ACK covering the peer's FIN (ack ≥ FIN's seq + 1) completes that half-close.
        if let (Some(fin), Some(ack)) = (peer_fin, ack) {
            if ack.is_after(fin.seq) {
                let peer = self.side_mut(role.peer());
                peer.fin_acked_ns.get_or_insert(seg.ts_ns);
            }
        }
        self.record_history(role, seg);
    }

    /// Zeek's history letters, each recorded once per side: S SYN, H SYN-ACK, A pure ACK,
    /// D data, F FIN, R RST; upper case for the originator.
    fn record_history(&mut self, role: Role, seg: &TcpSegment) {
        let flags = seg.flags;
        // Bit i of `seen` stands for the letter at i in history order.
        let seen = u8::from(flags.is_syn_only())
            | u8::from(flags.is_syn_ack()) << 1
            | u8::from(flags == TcpFlags::ACK && seg.payload_len == 0) << 2
            | u8::from(seg.payload_len > 0) << 3
            | u8::from(flags.contains(TcpFlags::FIN)) << 4
            | u8::from(flags.contains(TcpFlags::RST)) << 5;
        let side = self.side_mut(role);
        let new = seen & !side.history_letters;
        // Once a connection is under way its segments add no letter: this runs for each.
        if new == 0 {
            return;
        }
        side.history_letters |= new;
        // The letter D is recorded once per side: the first payload. Here, off the per-segment
        // path (a segment that adds no letter returned above), its time costs nothing.
        if role == Role::Orig && new & 1 << 3 != 0 {
            self.orig_data_ns = Some(seg.ts_ns);
        }
        for (bit, letter) in b"SHADFR".iter().enumerate() {
            if new & 1 << bit != 0 {
                self.history.push(match role {
                    Role::Orig => *letter,
                    Role::Resp => letter.to_ascii_lowercase(),
                });
            }
        }
    }

    /// Who sent the first FIN; both when the second FIN did not acknowledge the first (the
    /// FINs crossed: RFC 9293 section 3.6, simultaneous close).
    pub fn active_closer(&self) -> Option<ActiveCloser> {
        match (self.orig_side.fin, self.resp_side.fin) {
            (Some(o), Some(r)) => {
                let (first, second, closer) = if o.index <= r.index {
                    (o, r, ActiveCloser::Orig)
                } else {
                    (r, o, ActiveCloser::Resp)
                };
                let second_acks_first = second.ack.is_some_and(|a| a.is_after(first.seq));
                Some(if second_acks_first {
                    closer
                } else {
                    ActiveCloser::Both
                })
            }
            (Some(_), None) => Some(ActiveCloser::Orig),
            (None, Some(_)) => Some(ActiveCloser::Resp),
            (None, None) => None,
        }
    }

    /// When `holder` entered TIME_WAIT: when it acknowledged the peer's FIN (DESIGN.md
    /// section 4). Without that ACK in the capture, the peer's FIN stands in for it.
    fn time_wait_start(&self, holder: Role) -> Option<(i64, bool)> {
        let peer = self.side(holder.peer());
        let fin = peer.fin?;
        Some(match peer.fin_acked_ns {
            Some(ts) => (ts, false),
            None => (fin.ts_ns, true),
        })
    }

    fn side(&self, role: Role) -> &Side {
        match role {
            Role::Orig => &self.orig_side,
            Role::Resp => &self.resp_side,
        }
    }

    /// Fills in what the side missing from a one-direction capture sent, from what the visible
    /// side acknowledged and echoed (DESIGN.md section 10): its sequence numbers (the visible
    /// side's highest ACK), its last TSval (the visible side's last TSecr) and its FIN. Who
    /// closed first shows in the visible side's ACKs: after its own FIN, an ACK of exactly one
    /// more than that FIN acknowledged is the peer's FIN, which came second; when none
    /// follows, the peer's FIN came first and the visible FIN acknowledged it. Marked as a
    /// doubt ([`Doubt::OneSided`]); called once, when the incarnation ends.
    pub fn infer_unseen_side(&mut self) {
        let (seen, unseen) = match self.seen() {
            Seen::Both => return,
            Seen::OrigOnly => (&mut self.orig_side, &mut self.resp_side),
            Seen::RespOnly => (&mut self.resp_side, &mut self.orig_side),
        };
        self.doubts |= Doubt::OneSided as u8;
        unseen.snd_nxt = seen.max_ack;
        unseen.last_tsval = seen.last_tsecr;
        let Some(fin) = seen.fin else {
            return;
        };
        let Some(fin_ack) = fin.ack else {
            return;
        };
        match seen.acked_later_fin {
            Some((ts_ns, index, _)) => {
                unseen.fin = Some(FinSent {
                    ts_ns,
                    index,
                    seq: fin_ack,
                    ack: Some(fin.seq.plus(1)),
                });
                unseen.fin_acked_ns = Some(ts_ns);
                seen.fin_acked_ns.get_or_insert(ts_ns);
            }
            None => {
                // The peer's FIN came first: it ended at the visible FIN's acknowledgment.
                unseen.fin = Some(FinSent {
                    ts_ns: fin.ts_ns,
                    index: fin.index.saturating_sub(1),
                    seq: fin_ack.plus(u32::MAX),
                    ack: None,
                });
                unseen.fin_acked_ns = Some(fin.ts_ns);
                // The peer entered TIME_WAIT when it acknowledged the visible FIN, an unseen
                // half round trip later: the FIN's time stands in.
                seen.fin_acked_ns.get_or_insert(fin.ts_ns);
                self.doubts |= Doubt::NoFinalAck as u8;
            }
        }
    }

    /// The frames that show how the incarnation closed: the visible side's FIN and, when it
    /// followed, its ACK of the peer's FIN. What a one-direction inference rests on.
    pub fn close_evidence(&self) -> FrameRef {
        let side = match self.seen() {
            Seen::RespOnly => &self.resp_side,
            Seen::Both | Seen::OrigOnly => &self.orig_side,
        };
        side.acked_later_fin
            .map_or(self.last_frame, |(_, _, frame)| frame)
    }

    /// Whether the server (responder) and the client (originator) hold the tuple in TIME_WAIT
    /// at `now_ns`, as far as the segments so far show (before [`Incarnation::infer_unseen_side`]
    /// and the checks of [`Incarnation::time_wait_holders`]: for a live view).
    pub fn holds_time_wait_at(&self, now_ns: i64, policy: &TimeWaitPolicy) -> (bool, bool) {
        let holds = |role: Role| {
            let closer = match self.active_closer() {
                Some(ActiveCloser::Both) => true,
                Some(ActiveCloser::Orig) => role == Role::Orig,
                Some(ActiveCloser::Resp) => role == Role::Resp,
                None => false,
            };
            let endpoint = match role {
                Role::Orig => self.orig,
                Role::Resp => self.resp,
            };
            closer
                && self.time_wait_start(role).is_some_and(|(start, _)| {
                    now_ns.saturating_sub(start) < policy.duration_ns(endpoint.ip)
                })
        };
        (holds(Role::Resp), holds(Role::Orig))
    }

    /// The endpoints left holding the tuple in TIME_WAIT, indexed by role (originator, then
    /// responder), with what Linux keeps of the old connection (`tcp_time_wait`: `tw_rcv_nxt`,
    /// `tw_snd_nxt`, `tw_ts_recent`).
    pub fn time_wait_holders(&mut self, policy: &TimeWaitPolicy) -> [Option<TimeWaitHolder>; 2] {
        let closer = self.active_closer();
        let holds = |role: Role| match closer {
            Some(ActiveCloser::Both) => true,
            Some(ActiveCloser::Orig) => role == Role::Orig,
            Some(ActiveCloser::Resp) => role == Role::Resp,
            None => false,
        };
        let mut holders = [None, None];
        for (slot, role) in holders.iter_mut().zip([Role::Orig, Role::Resp]) {
            if !holds(role) {
                continue;
            }
            let Some((start_ns, inferred)) = self.time_wait_start(role) else {
                continue;
            };
            let (me, peer) = (self.side(role), self.side(role.peer()));
            let endpoint = match role {
                Role::Orig => self.orig,
                Role::Resp => self.resp,
            };
            // A RST before TIME_WAIT aborts the connection: no TIME_WAIT.
            let first_rst = [&self.orig_side.rst, &self.resp_side.rst]
                .into_iter()
                .flatten()
                .map(|rst| rst.ts_ns)
                .min();
            if first_rst.is_some_and(|r| r < start_ns) {
                continue;
            }
            let (Some(rcv_nxt), Some(snd_nxt)) = (peer.snd_nxt, me.snd_nxt) else {
                continue;
            };
            *slot = Some(TimeWaitHolder {
                role,
                start_ns,
                duration_ns: policy.duration_ns(endpoint.ip),
                // A RST received in TIME_WAIT kills it when its sequence number is the one
                // expected (RFC 1337 "TIME-WAIT assassination"; Linux `tcp_timewait_state_process`
                // with the default tcp_rfc1337=0 checks `seq == tw_rcv_nxt`).
                killed_ns: peer
                    .rst
                    .filter(|rst| rst.ts_ns >= start_ns && rst.seq == rcv_nxt)
                    .map(|rst| rst.ts_ns),
                rcv_nxt,
                snd_nxt,
                // Linux keeps ts_recent only when the connection used timestamps.
                ts_recent: me.last_tsval.and(peer.last_tsval),
            });
            if inferred {
                self.doubts |= Doubt::NoFinalAck as u8;
            }
        }
        holders
    }

    /// Established: a SYN-ACK, or the originator's ACK of one the capture does not hold.
    fn established(&self) -> bool {
        self.syn_ack_ns.is_some() || self.handshake_ack.is_some()
    }

    fn close_kind(&self) -> CloseKind {
        match (&self.orig_side.rst, &self.resp_side.rst) {
            (Some(o), Some(r)) => {
                return if o.ts_ns <= r.ts_ns {
                    CloseKind::RstByOrig
                } else {
                    CloseKind::RstByResp
                };
            }
            (Some(_), None) => return CloseKind::RstByOrig,
            (None, Some(_)) => return CloseKind::RstByResp,
            (None, None) => {}
        }
        if self.syn_seen && !self.established() {
            return CloseKind::NeverEstablished;
        }
        match (self.orig_side.fin, self.resp_side.fin) {
            (Some(_), Some(_)) => CloseKind::FinFin,
            (Some(_), None) | (None, Some(_)) => CloseKind::HalfClosed,
            (None, None) => CloseKind::OpenAtEnd,
        }
    }

    fn zeek_state(&self) -> ZeekState {
        let (o, r) = (&self.orig_side, &self.resp_side);
        if !self.syn_seen {
            return match (self.syn_ack_ns.is_some(), r.rst.is_some(), r.fin.is_some()) {
                (true, true, _) => ZeekState::RSTRH,
                (true, false, true) => ZeekState::SHR,
                _ => ZeekState::OTH,
            };
        }
        if self.syn_ack_ns.is_none() {
            return if r.handshake_rst.is_some() {
                ZeekState::REJ
            } else if o.handshake_rst.is_some() {
                ZeekState::RSTOS0
            } else if o.fin.is_some() {
                ZeekState::SH
            } else {
                ZeekState::S0
            };
        }
        match (&o.rst, &r.rst) {
            (Some(a), Some(b)) if b.ts_ns < a.ts_ns => return ZeekState::RSTR,
            (Some(_), _) => return ZeekState::RSTO,
            (None, Some(_)) => return ZeekState::RSTR,
            (None, None) => {}
        }
        match (o.fin.is_some(), r.fin.is_some()) {
            (true, true) => ZeekState::SF,
            (true, false) => ZeekState::S2,
            (false, true) => ZeekState::S3,
            (false, false) => ZeekState::S1,
        }
    }

    /// The incarnation's record (its `collision` is set by the tracker). `forced` overrides the close kind (eviction, supersession); `holders` are its
    /// [`Incarnation::time_wait_holders`].
    pub fn record(
        &mut self,
        forced: Option<CloseKind>,
        holders: &[Option<TimeWaitHolder>; 2],
    ) -> ConnectionRecord {
        let close = forced.unwrap_or_else(|| self.close_kind());
        match forced {
            Some(CloseKind::Evicted) => self.doubts |= Doubt::Evicted as u8,
            Some(CloseKind::Superseded) => self.doubts |= Doubt::Superseded as u8,
            _ => {}
        }
        let (o, r) = (&self.orig_side, &self.resp_side);
        let acked_unseen = |acker: &Side, sender: &Side| {
            acker
                .max_ack
                .zip(sender.snd_nxt)
                .is_some_and(|(ack, end)| ack.is_after(end))
        };
        if self.seen() == Seen::Both && (acked_unseen(o, r) || acked_unseen(r, o)) {
            self.doubts |= Doubt::BytesNotCaptured as u8;
        }
        let active_closer = self.active_closer();
        let time_wait_start_ns = holders.iter().flatten().map(|h| h.start_ns).min();
        let since_syn = |ts: Option<i64>| Some(ts?.saturating_sub(self.first_syn_ns?));
        ConnectionRecord {
            uid: self.first_index,
            ts_ns: self.start_ns,
            orig_h: self.orig.ip,
            orig_p: self.orig.port,
            resp_h: self.resp.ip,
            resp_p: self.resp.port,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            duration_ns: self.last_ns.saturating_sub(self.start_ns),
            orig_pkts: self.orig_side.pkts,
            orig_bytes: self.orig_side.payload_bytes,
            resp_pkts: self.resp_side.pkts,
            resp_bytes: self.resp_side.payload_bytes,
            syn_retransmits: self.syns.saturating_sub(1),
            syn_to_syn_ack_ns: since_syn(self.syn_ack_ns),
            handshake_ns: since_syn(self.handshake_ack.map(|(ts, _, _)| ts)),
            orig_data_ts_ns: self.orig_data_ns,
            conn_state: self.zeek_state(),
            history: self.history,
            close,
            active_closer,
            time_wait_start_ns,
            reuse_interval_ns: self.previous.map(|(_, interval)| interval),
            prev_uid: self.previous.map(|(first_index, _)| first_index),
            collision: None,
            client_side_reuse: self.client_side_reuse,
            unseen_side: match self.seen() {
                Seen::Both => None,
                Seen::OrigOnly => Some(Role::Resp),
                Seen::RespOnly => Some(Role::Orig),
            },
            low_confidence: self.doubts,
            view: self.view,
            orig_isn: self.orig_side.isn.map(|isn| isn.0),
            other_views: Vec::new(),
        }
    }
}

/// An endpoint holding a tuple in TIME_WAIT, with the old connection's numbers it keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimeWaitHolder {
    /// Its role in the old incarnation.
    pub role: Role,
    pub start_ns: i64,
    pub duration_ns: i64,
    /// A RST from the peer ended the TIME_WAIT early.
    pub killed_ns: Option<i64>,
    /// `tw_rcv_nxt`: one past the peer's last sequence number (its FIN).
    pub rcv_nxt: SeqNumber,
    /// `tw_snd_nxt`: one past the holder's own last sequence number.
    pub snd_nxt: SeqNumber,
    /// `tw_ts_recent`: the peer's last TSval, when timestamps were in use.
    pub ts_recent: Option<u32>,
}
