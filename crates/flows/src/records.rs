//! What the tracker finds: one record per connection incarnation and one per collision.
//! Field names follow Zeek's conn.log where one exists (`orig_h`, `resp_p`, `conn_state`…).

use serde::{Deserialize, Serialize};
use twsleuth_decode::FrameRef;

use crate::ladder::CollisionLadder;
use crate::tuple::{Endpoint, View};

/// Which side of a connection: the originator sent the SYN (Zeek's `orig`), the responder
/// answered it (`resp`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The SYN sender (client, balancer).
    Orig,
    /// The SYN receiver (server).
    Resp,
}

impl Role {
    /// The other side.
    pub fn peer(self) -> Role {
        match self {
            Role::Orig => Role::Resp,
            Role::Resp => Role::Orig,
        }
    }
}

/// Who closed first (sent the first FIN), and so who holds TIME_WAIT (DESIGN.md section 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActiveCloser {
    /// The originator closed first.
    Orig,
    /// The responder closed first.
    Resp,
    /// Both FINs crossed on the wire (RFC 9293 CLOSING state): both hold TIME_WAIT.
    Both,
}

/// How an incarnation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseKind {
    /// FIN from both sides.
    FinFin,
    /// RST from the originator.
    RstByOrig,
    /// RST from the responder.
    RstByResp,
    /// Only one side sent FIN before the capture (or the tuple's next incarnation) moved on.
    HalfClosed,
    /// Still open when the capture ended.
    OpenAtEnd,
    /// The handshake never completed.
    NeverEstablished,
    /// A new SYN arrived while this incarnation was still open: its close was not captured.
    Superseded,
    /// Evicted for memory: idle longer than the idle timeout, or beyond `--max-memory`.
    Evicted,
}

/// Zeek's `conn_state` codes (scripts/base/protocols/conn/main.zeek).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ZeekState {
    /// Connection attempt seen, no reply.
    S0,
    /// Established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected (RST in reply to SYN).
    REJ,
    /// Established, originator sent FIN, no FIN from responder.
    S2,
    /// Established, responder sent FIN, no FIN from originator.
    S3,
    /// Established, originator aborted with RST.
    RSTO,
    /// Established, responder aborted with RST.
    RSTR,
    /// Originator sent SYN then RST; no SYN-ACK seen.
    RSTOS0,
    /// Responder sent SYN-ACK then RST; no SYN seen.
    RSTRH,
    /// Originator sent SYN then FIN; no SYN-ACK seen.
    SH,
    /// Responder sent SYN-ACK then FIN; no SYN seen.
    SHR,
    /// No SYN seen: midstream traffic.
    OTH,
}

/// Why an inference is less than certain (bit set in [`ConnectionRecord::low_confidence`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doubt {
    /// The SYN was not captured: roles inferred.
    NoSyn = 1,
    /// The ACK of the last FIN was not captured: TIME_WAIT start taken from the FIN.
    NoFinalAck = 2,
    /// Evicted before it ended.
    Evicted = 4,
    /// A new SYN arrived while it was still open.
    Superseded = 8,
    /// One direction was not captured: the other side's FIN, numbers and timestamps were
    /// inferred from what the visible side acknowledged (DESIGN.md section 10).
    OneSided = 16,
    /// A side acknowledged bytes the capture does not hold: the capture dropped some of the
    /// peer's segments.
    BytesNotCaptured = 32,
}

/// Zeek-style history letters, kept inline: each letter is recorded at most once per side, so
/// twelve bytes always suffice.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct History {
    letters: [u8; 12],
    len: u8,
}

impl History {
    /// Appends an ASCII letter (ignored once full).
    pub fn push(&mut self, letter: u8) {
        if let Some(slot) = self.letters.get_mut(usize::from(self.len)) {
            *slot = letter;
            self.len += 1;
        }
    }

    /// The letters.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.letters[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Display for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let letters = String::deserialize(deserializer)?;
        let mut history = History::default();
        letters.bytes().for_each(|letter| history.push(letter));
        Ok(history)
    }
}

impl Serialize for History {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One connection incarnation on a 4-tuple (like Wireshark's `tcp.stream`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// The incarnation's id: the position (from 0) of its first frame in the merged input.
    /// Unique, in the order the incarnations began, and the same whatever the number of
    /// threads; with a single input, the first frame's Wireshark number less one.
    pub uid: u64,
    /// First segment, nanoseconds since the epoch.
    pub ts_ns: i64,
    /// Originator address (SYN sender).
    pub orig_h: std::net::IpAddr,
    /// Originator port.
    pub orig_p: u16,
    /// Responder address.
    pub resp_h: std::net::IpAddr,
    /// Responder port.
    pub resp_p: u16,
    /// First frame of the incarnation.
    pub first_frame: FrameRef,
    /// Last frame of the incarnation.
    pub last_frame: FrameRef,
    /// From first to last segment.
    pub duration_ns: i64,
    /// Segments from the originator.
    pub orig_pkts: u64,
    /// Payload bytes from the originator.
    pub orig_bytes: u64,
    /// Segments from the responder.
    pub resp_pkts: u64,
    /// Payload bytes from the responder.
    pub resp_bytes: u64,
    /// SYNs sent beyond the first (same ISN).
    pub syn_retransmits: u32,
    /// First SYN → first SYN-ACK, when both were seen.
    pub syn_to_syn_ack_ns: Option<i64>,
    /// First SYN → the originator's ACK of the SYN-ACK (handshake complete).
    pub handshake_ns: Option<i64>,
    /// When the originator's first payload (its request) was captured, nanoseconds since the
    /// epoch.
    #[serde(default)]
    pub orig_data_ts_ns: Option<i64>,
    /// Zeek-style connection state.
    pub conn_state: ZeekState,
    /// Zeek-style history letters (upper case: originator; lower case: responder).
    pub history: History,
    /// How it ended.
    pub close: CloseKind,
    /// Who sent the first FIN.
    pub active_closer: Option<ActiveCloser>,
    /// When the active closer entered TIME_WAIT.
    pub time_wait_start_ns: Option<i64>,
    /// Seconds between the end of the tuple's previous incarnation and this one's start.
    pub reuse_interval_ns: Option<i64>,
    /// Id of the tuple's previous incarnation, when there was one.
    pub prev_uid: Option<u64>,
    /// The outcome of the collision its first SYN made with a TIME_WAIT, if it made one (the
    /// collision's record has the same `uid`).
    pub collision: Option<Outcome>,
    /// The originator reused a tuple it held in TIME_WAIT itself (`tcp_tw_reuse`, a balancer
    /// that ignores its own TIME_WAIT): it hit no server state, so it is not a collision.
    pub client_side_reuse: bool,
    /// The side whose segments the capture lacks (`orig`: only the responder's answers were
    /// captured; `resp`: only the originator's segments, acknowledging bytes never captured);
    /// `None` when both directions are there. What is known of that side is inferred.
    pub unseen_side: Option<Role>,
    /// Bit set of [`Doubt`] values; 0 when everything needed was captured.
    pub low_confidence: u8,
    /// Where the segments counted here were seen: capture point, VLAN tags, tunnel.
    pub view: View,
    /// The originator's initial sequence number, when its SYN was captured: with the 4-tuple,
    /// what shows one connection in several views.
    pub orig_isn: Option<u32>,
    /// The other views of this connection (another capture point, the other leg of a bridge),
    /// in [`View`] order; the figures above are this record's view's alone.
    pub other_views: Vec<ConnectionView>,
}

/// A connection as another view saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionView {
    /// That view.
    pub view: View,
    /// Its record's id there ([`ConnectionRecord::uid`]).
    pub uid: u64,
    /// Its first frame there.
    pub first_frame: FrameRef,
    /// Its last frame there.
    pub last_frame: FrameRef,
    /// Segments from the originator seen there.
    pub orig_pkts: u64,
    /// Segments from the responder seen there.
    pub resp_pkts: u64,
    /// The first SYN's time on that view's clock, when it was seen there.
    pub syn_ts_ns: Option<i64>,
    /// The first SYN-ACK's time on that view's clock, when it was seen there.
    pub syn_ack_ts_ns: Option<i64>,
}

impl ConnectionRecord {
    /// The originator's end of the connection.
    pub fn orig(&self) -> Endpoint {
        Endpoint {
            ip: self.orig_h,
            port: self.orig_p,
        }
    }

    /// The responder's end of the connection.
    pub fn resp(&self) -> Endpoint {
        Endpoint {
            ip: self.resp_h,
            port: self.resp_p,
        }
    }

    /// The first SYN's time, when the capture holds it (the incarnation began with it).
    pub fn syn_ts_ns(&self) -> Option<i64> {
        self.history.as_str().starts_with('S').then_some(self.ts_ns)
    }

    /// The first SYN-ACK's time, when the capture holds it and the SYN.
    pub fn syn_ack_ts_ns(&self) -> Option<i64> {
        Some(self.syn_ts_ns()?.saturating_add(self.syn_to_syn_ack_ns?))
    }

    /// This record as another view of its connection.
    pub fn as_other_view(&self) -> ConnectionView {
        ConnectionView {
            view: self.view,
            uid: self.uid,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            orig_pkts: self.orig_pkts,
            resp_pkts: self.resp_pkts,
            syn_ts_ns: self.syn_ts_ns(),
            syn_ack_ts_ns: self.syn_ack_ts_ns(),
        }
    }
}

/// What became of a SYN that hit a tuple in TIME_WAIT (DESIGN.md section 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The first reply was a SYN-ACK for the new ISN.
    Accepted,
    /// The first reply was a bare ACK with the old numbers; a later SYN was accepted.
    RejectedRecovered,
    /// The first reply was a RST.
    Reset,
    /// No reply to the first SYN; a retransmission was answered later.
    Unanswered,
    /// No SYN-ACK ever: the client gave up, or the capture ended.
    Failed,
    /// What the capture shows cannot tell the outcome: it holds one direction only and the
    /// SYN's sender sent nothing after it, or the connection was evicted (`--max-memory`)
    /// before any answer.
    Unknown,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 6] = [
        Outcome::Accepted,
        Outcome::RejectedRecovered,
        Outcome::Reset,
        Outcome::Unanswered,
        Outcome::Failed,
        Outcome::Unknown,
    ];
}

/// The frames a finding rests on, in capture order: at most [`Basis::CAPACITY`], kept inline
/// (a collision record is made for each of hundreds of thousands of collisions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Basis {
    frames: [FrameRef; Basis::CAPACITY],
    len: u8,
}

impl Basis {
    /// Frames a basis holds at most.
    pub const CAPACITY: usize = 4;

    /// The basis of these frames, sorted and without repeats; frames beyond
    /// [`Basis::CAPACITY`] are left out.
    pub fn of(frames: impl IntoIterator<Item = FrameRef>) -> Basis {
        let mut basis = Basis::default();
        for frame in frames {
            if let Some(slot) = basis.frames.get_mut(usize::from(basis.len)) {
                *slot = frame;
                basis.len += 1;
            }
        }
        let held = &mut basis.frames[..usize::from(basis.len)];
        held.sort_unstable();
        let mut kept = 0;
        for i in 0..held.len() {
            if i == 0 || held[i] != held[kept - 1] {
                held[kept] = held[i];
                kept += 1;
            }
        }
        basis.len = kept as u8;
        basis
    }

    /// The frames.
    pub fn frames(&self) -> &[FrameRef] {
        &self.frames[..usize::from(self.len)]
    }
}

impl<'de> Deserialize<'de> for Basis {
    /// Read into the inline frames, without a `Vec` on the way (a report reads back every
    /// collision record from its spill).
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Frames;
        impl<'de> serde::de::Visitor<'de> for Frames {
            type Value = Basis;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a sequence of frame references")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Basis, A::Error> {
                let mut frames = [FrameRef::default(); Basis::CAPACITY];
                let mut len = 0;
                while let Some(frame) = seq.next_element::<FrameRef>()? {
                    // Beyond the capacity, the rest are read and left out, as `Basis::of` does.
                    if let Some(slot) = frames.get_mut(len) {
                        *slot = frame;
                        len += 1;
                    }
                }
                Ok(Basis::of(frames.into_iter().take(len)))
            }
        }
        deserializer.deserialize_seq(Frames)
    }
}

impl Serialize for Basis {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.frames())
    }
}

/// What Linux would do with the SYN (`tcp_timewait_state_process`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prediction {
    /// Accept: sequence number after the old `rcv_nxt`, or a newer timestamp, and no PAWS
    /// rejection.
    Accept,
    /// Answer with a bare ACK carrying the old connection's numbers.
    Reject,
}

/// The rule of Linux's `tcp_timewait_state_process` that decides a SYN on a TIME_WAIT socket:
/// why it is accepted, or why rejected (DESIGN.md section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinuxRule {
    /// PAWS (RFC 7323 section 5): the SYN's TSval is older than the TIME_WAIT's `ts_recent`,
    /// whatever its sequence number; rejected. A timestamp clock that jumped back (a standby
    /// balancer taking over the SNAT address, a change of `tcp_timestamps`) does it.
    PawsReject,
    /// The SYN's sequence number is after the old `rcv_nxt`: accepted (RFC 1122 4.2.2.13).
    SeqAfterRcvNxt,
    /// Its sequence number is not, but its TSval is newer than `ts_recent`: accepted (RFC 6191).
    NewerTimestamp,
    /// Its sequence number is not after the old `rcv_nxt` and it carries no newer timestamp
    /// (or none at all): rejected. Without timestamps, an ISN below the old connection's last
    /// byte does it: a reconnect right after a large upload, or another host behind the SNAT.
    SeqNotAfterRcvNxt,
}

/// Why a collision's first SYN was not accepted: the reason a postmortem quotes, derived from
/// the holder's answer on the wire and the rule of Linux's `tcp_timewait_state_process`
/// ([`LinuxRule`]) that the SYN's numbers meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// PAWS (RFC 7323 section 5.3; `tcp_paws_reject` in `tcp_timewait_state_process`): the
    /// SYN's TSval was older than the TIME_WAIT's `ts_recent`, so it was refused whatever its
    /// sequence number. The sender's timestamp clock went back: `tcp_timestamps` changed (mode
    /// 1 adds a per-tuple offset, mode 2 none), another host took over the SNAT address, or
    /// hosts with unrelated clocks share it.
    Paws,
    /// The SYN's sequence number was not after the old `rcv_nxt` and it carried no newer
    /// timestamp (RFC 1122 section 4.2.2.13 allows reopening only with a higher sequence
    /// number; RFC 6191 adds a newer timestamp as the alternative).
    SeqNotAfterRcvNxt,
    /// The holder answered the SYN with a RST. Linux's TIME_WAIT never does (it answers an
    /// unacceptable SYN with an ACK): the holder runs another stack, or a firewall answered.
    HolderReset,
    /// Refused although Linux's rule accepts these numbers: the holder is not Linux, or the
    /// capture missed a segment (a SYN lost before the server, a rate-limited answer).
    LinuxWouldAccept,
    /// Refused by a holder whose rules the prediction does not model (`--server-os` other than
    /// `linux`).
    NotModelled,
}

impl Reason {
    /// Why a SYN with this outcome, whose numbers meet this rule (`None`: not modelled), was
    /// not accepted; `None` when it was, or when the captured direction cannot tell.
    pub fn of(outcome: Outcome, rule: Option<LinuxRule>) -> Option<Reason> {
        match outcome {
            Outcome::Accepted | Outcome::Unknown => None,
            Outcome::Reset => Some(Reason::HolderReset),
            // A bare ACK, or silence (Linux rate-limits that ACK, `tcp_invalid_ratelimit`).
            Outcome::RejectedRecovered | Outcome::Unanswered | Outcome::Failed => {
                Some(match rule {
                    None => Reason::NotModelled,
                    Some(LinuxRule::PawsReject) => Reason::Paws,
                    Some(LinuxRule::SeqNotAfterRcvNxt) => Reason::SeqNotAfterRcvNxt,
                    Some(LinuxRule::SeqAfterRcvNxt | LinuxRule::NewerTimestamp) => {
                        Reason::LinuxWouldAccept
                    }
                })
            }
        }
    }
}

/// The first thing the TIME_WAIT holder sent back after the first SYN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstReply {
    /// SYN-ACK.
    SynAck,
    /// A bare ACK (the old connection's numbers).
    Ack,
    /// RST.
    Rst,
    /// Nothing before the SYN was retransmitted, or before the capture ended.
    None,
}

/// A SYN that reached an endpoint still holding the tuple in TIME_WAIT.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CollisionRecord {
    /// First SYN's time (estimated from the answer when `syn_ts_estimated`).
    pub ts_ns: i64,
    /// The SYN was not in the capture: its time is the first answer's (the TIME_WAIT's bare ACK,
    /// or the SYN-ACK), half a round trip late at most.
    pub syn_ts_estimated: bool,
    /// SYN sender.
    pub orig_h: std::net::IpAddr,
    /// SYN sender's port.
    pub orig_p: u16,
    /// SYN receiver: the TIME_WAIT holder.
    pub resp_h: std::net::IpAddr,
    /// SYN receiver's port.
    pub resp_p: u16,
    /// The holder's role in the previous incarnation (`resp`: the server closed first).
    pub holder_role: Role,
    /// How long the holder had been in TIME_WAIT when the SYN arrived.
    pub time_wait_age_ns: i64,
    /// The holder's TIME_WAIT duration in force.
    pub time_wait_duration_ns: i64,
    /// The SYN arrived in the slack after the nominal end; confirmed by the holder's answer.
    pub edge_case: bool,
    /// Previous incarnation's id ([`ConnectionRecord::uid`]).
    pub prev_uid: u64,
    /// New incarnation's id ([`ConnectionRecord::uid`]).
    pub uid: u64,
    /// The first SYN's frame; for a SYN the capture does not hold, the first answer's.
    pub first_syn_frame: FrameRef,
    /// The capture held one direction only, so part of this finding is inferred from what
    /// the other direction acknowledged and echoed (DESIGN.md section 10): who closed first,
    /// the SYN or the answers to it.
    pub inferred: bool,
    /// The frames the finding rests on, in capture order: how the previous connection closed,
    /// and each segment that showed the SYN and its outcome.
    pub basis: Basis,
    /// What happened.
    pub outcome: Outcome,
    /// The holder's first answer.
    pub first_reply: FirstReply,
    /// SYNs sent (1 = no retransmission).
    pub syn_attempts: u32,
    /// First SYN → SYN-ACK: what the collision cost the connection.
    pub cost_ns: Option<i64>,
    /// What Linux would have done; `None` where the server is not Linux (`--server-os`), whose
    /// rules the prediction does not model.
    pub prediction: Option<Prediction>,
    /// The rule that decides it.
    pub linux_rule: Option<LinuxRule>,
    /// Why the first SYN was not accepted ([`Reason::of`] its outcome and rule); `None` when
    /// it was, or when the captured direction cannot tell.
    pub reason: Option<Reason>,
    /// Whether the observation matches the prediction (None when the answer says nothing:
    /// a RST is not Linux's TIME_WAIT behaviour).
    pub prediction_agrees: Option<bool>,
    /// The SYN-ACK's ISN is the old `snd_nxt` + 65537: Linux's TIME_WAIT takeover signature.
    pub isn_signature: bool,
    /// The SYN's sequence number (its ISN), as captured or inferred: what the prediction
    /// compares with `old_rcv_nxt`.
    pub syn_seq: u32,
    /// The SYN's TSval, when it carried timestamps: what PAWS compares with `old_ts_recent`.
    pub syn_tsval: Option<u32>,
    /// The TIME_WAIT's `tw_rcv_nxt`: one past the peer's FIN in the old connection.
    pub old_rcv_nxt: u32,
    /// The TIME_WAIT's `tw_snd_nxt`: one past the holder's FIN (its takeover ISN is this +
    /// 65537).
    pub old_snd_nxt: u32,
    /// The TIME_WAIT's `tw_ts_recent`, when the old connection used timestamps.
    pub old_ts_recent: Option<u32>,
    /// The server's ISN in the new connection, when its SYN-ACK (or the handshake's ACK) was
    /// captured.
    pub server_isn: Option<u32>,
    /// During the handshake the SYN's sender sent a RST with the old `rcv_nxt` as its sequence
    /// number (its answer to the holder's bare ACK, RFC 9293 section 3.10.7.3), which ends the
    /// TIME_WAIT (RFC 1337 "TIME-WAIT assassination"; Linux
    /// `tcp_timewait_state_process` with the default `tcp_rfc1337=0`): that is what let the
    /// retried SYN through. Only where the capture holds the sender's segments.
    pub time_wait_assassinated: bool,
    /// Where the segments this finding rests on were seen: capture point, VLAN tags, tunnel.
    pub view: View,
    /// The same collision as other views saw it (the SYN leaving the balancer, then reaching
    /// the server), in [`View`] order: evidence, counted once.
    pub other_views: Vec<CollisionView>,
    /// Its packets, for the report's ladder, when the tracker kept them
    /// ([`crate::TrackerConfig::ladders`]); not exported.
    #[serde(skip)]
    pub ladder: Option<Box<CollisionLadder>>,
}

/// A collision as another view saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollisionView {
    /// That view.
    pub view: View,
    /// Its new incarnation's id there ([`ConnectionRecord::uid`]).
    pub uid: u64,
    /// The first SYN's time on that view's clock (estimated when `syn_ts_estimated`).
    pub ts_ns: i64,
    /// The first SYN was not captured there.
    pub syn_ts_estimated: bool,
    /// The first SYN's frame there.
    pub first_syn_frame: FrameRef,
    /// The frames the finding rests on there.
    pub basis: Basis,
    /// The outcome as seen there.
    pub outcome: Outcome,
    /// The TIME_WAIT's age at the SYN, as seen there.
    pub time_wait_age_ns: i64,
}

impl CollisionRecord {
    /// The originator's end of the collision's 4-tuple.
    pub fn orig(&self) -> Endpoint {
        Endpoint {
            ip: self.orig_h,
            port: self.orig_p,
        }
    }

    /// The responder's end of the collision's 4-tuple.
    pub fn resp(&self) -> Endpoint {
        Endpoint {
            ip: self.resp_h,
            port: self.resp_p,
        }
    }

    /// Both the SYN and the TIME_WAIT carried TCP timestamps (RFC 7323): PAWS and RFC 6191's
    /// newer-timestamp rule could apply.
    pub fn timestamps(&self) -> bool {
        self.syn_tsval.is_some() && self.old_ts_recent.is_some()
    }

    /// This record as another view of its collision.
    pub fn as_other_view(&self) -> CollisionView {
        CollisionView {
            view: self.view,
            uid: self.uid,
            ts_ns: self.ts_ns,
            syn_ts_estimated: self.syn_ts_estimated,
            first_syn_frame: self.first_syn_frame,
            basis: self.basis,
            outcome: self.outcome,
            time_wait_age_ns: self.time_wait_age_ns,
        }
    }
}
