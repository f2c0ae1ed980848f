//! The packets a report shows of a collision, kept as the tracker follows the tuple
//! ([`TrackerConfig::ladders`](crate::TrackerConfig::ladders)): the tuple's latest segments
//! before the colliding SYN (the previous connection's closing exchange) and the new
//! connection's first ones. Kept in the one pass over the inputs, so that a report of a pipe
//! needs no second one; a few segments per tuple, so memory follows the live state.

use std::collections::VecDeque;

use twsleuth_decode::{FrameRef, TcpFlags, TcpSegment, TcpTimestamps};

use crate::tuple::{Endpoint, endpoints};

/// Segments of the previous connection shown before the colliding SYN.
pub const LADDER_TAIL: usize = 4;
/// Segments shown from the colliding SYN on, at most.
pub const LADDER_HEAD: usize = 12;

/// What a ladder row shows of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LadderSegment {
    /// Position in the merged input: the order of the views' segments together.
    pub index: u64,
    /// Capture time, ns since the epoch.
    pub ts_ns: i64,
    /// The frame.
    pub frame: FrameRef,
    /// The sender.
    pub src: Endpoint,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Payload length (from the IP length fields).
    pub payload_len: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// TSval and TSecr, when the segment carries them.
    pub timestamps: Option<TcpTimestamps>,
}

impl LadderSegment {
    /// The segment at `index` in the merged input.
    pub fn of(seg: &TcpSegment, index: u64) -> LadderSegment {
        LadderSegment {
            index,
            ts_ns: seg.ts_ns,
            frame: seg.frame,
            src: endpoints(seg).0,
            seq: seg.seq,
            ack: seg.ack,
            payload_len: seg.payload_len,
            flags: seg.flags,
            timestamps: seg.options.timestamps,
        }
    }
}

/// A tuple's latest [`LADDER_TAIL`] segments, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct RecentSegments(VecDeque<LadderSegment>);

impl RecentSegments {
    /// Heap bytes one holds when full, with the allocator's header.
    pub(crate) const BYTES: usize = LADDER_TAIL * size_of::<LadderSegment>() + 16;

    pub(crate) fn push(&mut self, segment: LadderSegment) {
        if self.0.len() == LADDER_TAIL {
            self.0.pop_front();
        }
        self.0.push_back(segment);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<LadderSegment> {
        self.0.into()
    }
}

/// The packets of one collision: what came before its first SYN on the tuple, and from the
/// first SYN on until the handshake completed or [`LADDER_HEAD`] segments. Records of several
/// views of one connection put theirs together ([`CollisionLadder::join`]); the report cuts
/// the rows from the whole ([`CollisionLadder::rows`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CollisionLadder {
    /// The tuple's segments before the first SYN (each view's latest).
    pub before: Vec<LadderSegment>,
    /// From the first SYN on (each view's).
    pub after: Vec<LadderSegment>,
    /// The new connection's originator.
    orig: Option<Endpoint>,
    done: bool,
}

impl CollisionLadder {
    /// A ladder starting at the first SYN (or the answer that shows it), with the tuple's
    /// latest segments before it.
    pub(crate) fn start(before: Vec<LadderSegment>, orig: Endpoint) -> CollisionLadder {
        CollisionLadder {
            before,
            after: Vec::with_capacity(LADDER_HEAD),
            orig: Some(orig),
            done: false,
        }
    }

    /// Takes the tuple's next segment (the first one is the SYN), until the ladder is full.
    pub(crate) fn push(&mut self, segment: LadderSegment) {
        if self.done {
            return;
        }
        self.after.push(segment);
        self.done = self.after.len() >= LADDER_HEAD || self.completes(&segment);
    }

    /// The originator's ACK after a SYN-ACK: the handshake is complete, the ladder too.
    fn completes(&self, segment: &LadderSegment) -> bool {
        Some(segment.src) == self.orig
            && segment.flags == TcpFlags::ACK
            && self.after.iter().any(|s| s.flags.is_syn_ack())
    }

    /// Puts another view's packets of the same connection with these ([`CollisionLadder::rows`]
    /// puts them in input order).
    pub fn join(&mut self, other: CollisionLadder) {
        self.before.extend(other.before);
        self.after.extend(other.after);
    }

    /// The rows to show for a collision whose first SYN is `first_syn`: the latest
    /// [`LADDER_TAIL`] segments before it, then from it on until the originator's ACK of a
    /// SYN-ACK or [`LADDER_HEAD`] segments, over every view's segments in input order.
    pub fn rows(&self, first_syn: FrameRef) -> (Vec<LadderSegment>, Vec<LadderSegment>) {
        let mut all: Vec<LadderSegment> = self.before.iter().chain(&self.after).copied().collect();
        all.sort_unstable_by_key(|s| s.index);
        all.dedup_by_key(|s| s.index);
        let start = all
            .iter()
            .position(|s| s.frame == first_syn)
            .unwrap_or(all.len());
        let tail = all[start.saturating_sub(LADDER_TAIL)..start].to_vec();
        let mut head = CollisionLadder {
            orig: self.orig,
            ..CollisionLadder::default()
        };
        for segment in &all[start..] {
            head.push(*segment);
        }
        (tail, head.after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: u16 = 40_000;
    const SERVER: u16 = 80;

    fn endpoint(port: u16) -> Endpoint {
        Endpoint {
            ip: "10.0.0.1".parse().unwrap(),
            port,
        }
    }

    /// Segment `index`, frame `index + 1` of input `file_index`.
    fn segment(index: u64, file_index: u16, from: u16, flags: TcpFlags) -> LadderSegment {
        LadderSegment {
            index,
            ts_ns: index as i64,
            frame: FrameRef {
                file_index,
                number: index + 1,
            },
            src: endpoint(from),
            seq: 0,
            ack: 0,
            payload_len: 0,
            flags,
            timestamps: None,
        }
    }

    fn frames(segments: &[LadderSegment]) -> Vec<u64> {
        segments.iter().map(|s| s.frame.number).collect()
    }

    const FIN_ACK: TcpFlags = TcpFlags(TcpFlags::FIN.0 | TcpFlags::ACK.0);
    const SYN_ACK: TcpFlags = TcpFlags(TcpFlags::SYN.0 | TcpFlags::ACK.0);

    #[test]
    fn a_tuple_keeps_only_its_latest_segments() {
        let mut recent = RecentSegments::default();
        for index in 0..7 {
            recent.push(segment(index, 0, CLIENT, TcpFlags::ACK));
        }
        assert_eq!(frames(&recent.into_vec()), [4, 5, 6, 7]);
    }

    #[test]
    fn a_ladder_ends_at_the_originators_ack_of_the_syn_ack() {
        let before = vec![
            segment(0, 0, SERVER, FIN_ACK),
            segment(1, 0, CLIENT, TcpFlags::ACK),
        ];
        let mut ladder = CollisionLadder::start(before, endpoint(CLIENT));
        ladder.push(segment(2, 0, CLIENT, TcpFlags::SYN));
        // The server's own ACK does not complete the handshake; the client's ACK does.
        ladder.push(segment(3, 0, SERVER, TcpFlags::ACK));
        ladder.push(segment(4, 0, SERVER, SYN_ACK));
        ladder.push(segment(5, 0, CLIENT, TcpFlags::ACK));
        ladder.push(segment(6, 0, CLIENT, TcpFlags::ACK));
        let (tail, head) = ladder.rows(FrameRef {
            file_index: 0,
            number: 3,
        });
        assert_eq!(frames(&tail), [1, 2]);
        assert_eq!(frames(&head), [3, 4, 5, 6]);
    }

    #[test]
    fn an_unanswered_ladder_stops_at_its_length() {
        let mut ladder = CollisionLadder::start(Vec::new(), endpoint(CLIENT));
        for index in 0..(LADDER_HEAD as u64 + 5) {
            ladder.push(segment(index, 0, CLIENT, TcpFlags::SYN));
        }
        assert_eq!(ladder.after.len(), LADDER_HEAD);
    }

    #[test]
    fn two_views_make_one_ladder_in_input_order() {
        // The balancer's capture (input 0) and the server's (input 1) of the same collision:
        // the SYN leaves the balancer (index 10) before it reaches the server (index 11).
        let mut balancer = CollisionLadder::start(
            vec![
                segment(2, 0, SERVER, FIN_ACK),
                segment(4, 0, CLIENT, TcpFlags::ACK),
            ],
            endpoint(CLIENT),
        );
        let mut server = CollisionLadder::start(
            vec![
                segment(3, 1, SERVER, FIN_ACK),
                segment(5, 1, CLIENT, TcpFlags::ACK),
            ],
            endpoint(CLIENT),
        );
        balancer.push(segment(10, 0, CLIENT, TcpFlags::SYN));
        server.push(segment(11, 1, CLIENT, TcpFlags::SYN));
        server.push(segment(12, 1, SERVER, SYN_ACK));
        balancer.push(segment(13, 0, SERVER, SYN_ACK));
        balancer.push(segment(14, 0, CLIENT, TcpFlags::ACK));
        server.push(segment(15, 1, CLIENT, TcpFlags::ACK));
        balancer.join(server);
        let (tail, head) = balancer.rows(FrameRef {
            file_index: 0,
            number: 11,
        });
        // The latest four before the first SYN, of both views; then both views' handshake
        // until the first ACK of a SYN-ACK.
        assert_eq!(frames(&tail), [3, 4, 5, 6]);
        assert_eq!(frames(&head), [11, 12, 13, 14, 15]);
        assert_eq!(
            head.iter().map(|s| s.frame.file_index).collect::<Vec<_>>(),
            [0, 1, 1, 0, 0]
        );
    }

    #[test]
    fn without_its_first_syn_a_ladder_shows_what_came_before() {
        let ladder = CollisionLadder::start(vec![segment(0, 0, SERVER, FIN_ACK)], endpoint(CLIENT));
        let (tail, head) = ladder.rows(FrameRef {
            file_index: 0,
            number: 99,
        });
        assert_eq!((frames(&tail), head.len()), (vec![1], 0));
    }
}
