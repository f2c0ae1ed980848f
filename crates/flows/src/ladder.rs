//! The packets a report shows of a collision, kept as the tracker follows the tuple
//! ([`TrackerConfig::ladders`](crate::TrackerConfig::ladders)): the tuple's latest segments
//! before the colliding SYN (the previous connection's closing exchange) and the new
//! connection's first ones. Kept in the one pass over the inputs, so that a report of a pipe
//! needs no second one; a few segments per tuple, so memory follows the live state.
//!
//! Every collision's packets are gathered from its SYN on, its outcome not known yet; a
//! shard keeps them past the collision's end only for a collision the report could still
//! show ([`Showcase`]), and reuses the others' for the collisions to come.

use std::cmp::Reverse;
use std::collections::{BTreeMap, VecDeque};

use twsleuth_decode::{FrameRef, TcpFlags, TcpSegment, TcpTimestamps};

use crate::records::{CollisionRecord, Outcome, Reason};
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

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// The collisions a report shows packet by packet, by their keys alone: the first (lowest
/// `uid`), the worst (never connected first, then the highest cost, then the earliest; of
/// equals the highest `uid`), the first of each outcome and of each reason for a refusal.
/// Each is the extreme of a total order, so the places are the same whatever order the
/// collisions are offered in, and a collision that takes no place among some of them takes
/// none among all: a shard keeps the packets only of the collisions that take a place among
/// its own.
#[derive(Clone, Debug, Default)]
pub struct Showcase {
    first: Option<u64>,
    worst: Option<(Severity, u64)>,
    of_outcome: BTreeMap<Outcome, u64>,
    of_reason: BTreeMap<Reason, u64>,
}

/// How bad a collision is, for the worst one: never connected first, then the highest cost,
/// then the earliest.
type Severity = (bool, i64, Reverse<i64>);

fn severity(c: &CollisionRecord) -> Severity {
    (
        matches!(c.outcome, Outcome::Failed | Outcome::Reset),
        c.cost_ns.unwrap_or(0),
        Reverse(c.ts_ns),
    )
}

/// The places a collision takes in a [`Showcase`], from those offered before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Places {
    /// The first so far.
    pub first: bool,
    /// The worst so far.
    pub worst: bool,
    /// The first of its outcome so far.
    pub of_outcome: bool,
    /// The first refused for its reason so far.
    pub of_reason: Option<Reason>,
}

impl Places {
    /// It takes no place: nothing offered later makes it one to show.
    pub fn is_empty(&self) -> bool {
        *self == Places::default()
    }
}

impl Showcase {
    /// Offers collision `c`: the places it takes, from the collisions offered before it.
    pub fn offer(&mut self, c: &CollisionRecord) -> Places {
        let before = |kept: Option<&u64>| kept.is_none_or(|&uid| c.uid < uid);
        let worst = (severity(c), c.uid);
        let places = Places {
            first: before(self.first.as_ref()),
            worst: self.worst.is_none_or(|kept| worst >= kept),
            of_outcome: before(self.of_outcome.get(&c.outcome)),
            of_reason: c.reason.filter(|reason| before(self.of_reason.get(reason))),
        };
        if places.first {
            self.first = Some(c.uid);
        }
        if places.worst {
            self.worst = Some(worst);
        }
        if places.of_outcome {
            self.of_outcome.insert(c.outcome, c.uid);
        }
        if let Some(reason) = places.of_reason {
            self.of_reason.insert(reason, c.uid);
        }
        places
    }
}

/// Spare ladders a shard holds for the collisions to come, at most: the collisions open at
/// once in a burst, beyond which a ladder is freed.
const MAX_SPARE_LADDERS: usize = 1024;

/// A shard's collisions' packets ([`TrackerConfig::ladders`](crate::TrackerConfig::ladders)):
/// each collision's ladder from its SYN on, kept past its end only when its collision takes a
/// place in the shard's [`Showcase`]. The others' are emptied and reused, on the thread that
/// made them. A ladder allocated for every collision and freed where the report takes the
/// records, on another thread, cost `report` 11% of its time on the bench capture (470 k
/// collisions, a dozen shown; against a build that kept none, paired); reused, ~3%. At most
/// [`MAX_SPARE_LADDERS`] wait, some 1.5 MB.
#[derive(Debug, Default)]
pub(crate) struct LadderKeeper {
    showcase: Showcase,
    /// Boxed as the records hold them, handed over without a copy.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<CollisionLadder>>,
    /// Records may be joined across views, their places known only once joined: every
    /// ladder is kept.
    keep_all: bool,
}

impl LadderKeeper {
    /// A ladder for a collision whose first SYN (or the answer that shows it) comes next from
    /// `orig`, after the tuple's latest segments.
    pub(crate) fn start(
        &mut self,
        before: &RecentSegments,
        orig: Endpoint,
    ) -> Box<CollisionLadder> {
        let mut ladder = self.spare.pop().unwrap_or_default();
        ladder.restart(before.0.iter().copied(), orig);
        ladder
    }

    /// Gives collision `c` its ladder if it takes a place among the shard's collisions;
    /// keeps the ladder for another collision otherwise.
    pub(crate) fn settle(&mut self, c: &mut CollisionRecord, ladder: Option<Box<CollisionLadder>>) {
        let Some(ladder) = ladder else {
            return;
        };
        if self.keep_all || !self.showcase.offer(c).is_empty() {
            c.ladder = Some(ladder);
        } else if self.spare.len() < MAX_SPARE_LADDERS {
            self.spare.push(ladder);
        }
    }

    /// From now on every ladder is kept: the shard's tuples are seen in several views.
    pub(crate) fn keep_all(&mut self) {
        self.keep_all = true;
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
    /// Starts the ladder again, emptied, at a collision's first SYN (or the answer that shows
    /// it) from `orig`, after the tuple's latest segments `before`.
    pub(crate) fn restart(
        &mut self,
        before: impl IntoIterator<Item = LadderSegment>,
        orig: Endpoint,
    ) {
        self.before.clear();
        self.before.extend(before);
        self.after.clear();
        self.after.reserve_exact(LADDER_HEAD);
        self.orig = Some(orig);
        self.done = false;
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

    fn started(before: Vec<LadderSegment>, orig: Endpoint) -> CollisionLadder {
        let mut ladder = CollisionLadder::default();
        ladder.restart(before, orig);
        ladder
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
        assert_eq!(frames(&Vec::from(recent.0)), [4, 5, 6, 7]);
    }

    #[test]
    fn a_ladder_ends_at_the_originators_ack_of_the_syn_ack() {
        let before = vec![
            segment(0, 0, SERVER, FIN_ACK),
            segment(1, 0, CLIENT, TcpFlags::ACK),
        ];
        let mut ladder = started(before, endpoint(CLIENT));
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
        let mut ladder = started(Vec::new(), endpoint(CLIENT));
        for index in 0..(LADDER_HEAD as u64 + 5) {
            ladder.push(segment(index, 0, CLIENT, TcpFlags::SYN));
        }
        assert_eq!(ladder.after.len(), LADDER_HEAD);
    }

    #[test]
    fn two_views_make_one_ladder_in_input_order() {
        // The balancer's capture (input 0) and the server's (input 1) of the same collision:
        // the SYN leaves the balancer (index 10) before it reaches the server (index 11).
        let mut balancer = started(
            vec![
                segment(2, 0, SERVER, FIN_ACK),
                segment(4, 0, CLIENT, TcpFlags::ACK),
            ],
            endpoint(CLIENT),
        );
        let mut server = started(
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
        let ladder = started(vec![segment(0, 0, SERVER, FIN_ACK)], endpoint(CLIENT));
        let (tail, head) = ladder.rows(FrameRef {
            file_index: 0,
            number: 99,
        });
        assert_eq!((frames(&tail), head.len()), (vec![1], 0));
    }
}
