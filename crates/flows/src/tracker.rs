//! [`FlowTracker`]: the connections of one shard of 4-tuples, their incarnations, TIME_WAIT
//! windows and the SYNs that collide with them.
//!
//! Every decision about a tuple is taken from that tuple's own segments and their timestamps
//! (an incarnation closed and quiet for a while is compacted, one idle past the idle timeout is
//! evicted, a closed one is forgotten after its memory): the sweeps that free the memory run
//! on the capture's global clock between stretches of input, and the memory budget is shared
//! by all shards ([`ShardedTracker`](crate::ShardedTracker)), so that the findings do not
//! depend on the number of shards.

use std::hash::BuildHasher;
use std::net::IpAddr;

use rustc_hash::{FxBuildHasher, FxHashMap};
use serde::Serialize;
use twsleuth_decode::{FrameRef, TcpFlags, TcpSegment};

use crate::config::{ServerOs, TrackerConfig};
use crate::findings::IndexedSegment;
use crate::incarnation::{Incarnation, Seen, TimeWaitHolder};
use crate::ladder::{CollisionLadder, LadderKeeper, LadderSegment, RecentSegments};
use crate::records::{
    Basis, CloseKind, CollisionRecord, ConnectionRecord, FirstReply, LinuxRule, Outcome,
    Prediction, Reason, Role,
};
use crate::seq::{SeqNumber, ts_newer};
use crate::tuple::{Endpoint, TupleKey, View, comes_first, endpoints};

/// How many followed incarnations ahead of the one it looks at the sweep asks the CPU to load:
/// enough for a load from memory to arrive in time, few enough to stay in the cache.
const SWEEP_PREFETCH_AHEAD: usize = 8;
/// How many segments ahead of the one it follows the shard looks for SYNs whose tuple entry
/// it asks the CPU to load.
const SYN_PREFETCH_AHEAD: usize = 8;
/// A closed incarnation with no segment for this long shrinks to its TIME_WAIT summary; later
/// segments on the tuple (other than a SYN or an answer to one) are counted as late.
const COMPACT_AFTER_NS: i64 = 4_000_000_000;
/// How long after a TIME_WAIT's bare ACK the SYN-ACK answering the client's retried SYN may
/// come, for a capture without the client's segments to count the two as one rejected
/// collision: Linux 6.x retries about 10 ms after its RST, older kernels after the initial
/// RTO of 1 s (RFC 6298), old stacks after 3 s (RFC 1122).
const RETRY_AFTER_REJECTION_NS: i64 = 3_000_000_000;
/// No TIME_WAIT: the value of a role's start in a [`ClosedIncarnation`].
const NO_TIME_WAIT: i64 = i64::MIN;

/// Counters that say what the tracker did beyond the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrackerCounters {
    /// TCP segments processed.
    pub segments: u64,
    /// SYNs without ACK, retransmissions included, duplicates not.
    pub syn: u64,
    /// New incarnations on a tuple that had one before (port reuse).
    pub reused_tuples: u64,
    /// SYNs sent by an endpoint that itself held the tuple in TIME_WAIT (`tcp_tw_reuse`, a
    /// balancer ignoring its own TIME_WAIT): no server state is hit, not a collision.
    pub client_side_reuse: u64,
    /// SYNs in the slack after a nominal TIME_WAIT end that the server's answer showed to be
    /// outside TIME_WAIT after all.
    pub edge_cases_dismissed: u64,
    /// Segments that arrived on a tuple after its incarnation had been compacted.
    pub late_segments: u64,
    /// TIME_WAITs ended early by a RST with the expected sequence number that arrived after
    /// the incarnation was compacted (RFC 1337 assassination).
    pub time_wait_assassinations: u64,
    /// Segments captured twice (a bridge, a SPAN port, the same frame in two merged files):
    /// the second capture is counted here and not followed.
    pub duplicate_segments: u64,
    /// Open connections evicted after the idle timeout.
    pub idle_evictions: u64,
    /// Tuples evicted because the tuple table reached its share of `max_memory`.
    pub memory_evictions: u64,
    /// Of those, tuples still within a TIME_WAIT window: a SYN on any of them could have been
    /// a collision that is now not seen, so the collisions found are a lower bound.
    pub time_wait_evictions: u64,
    /// Connection attempts that failed on a tuple with no history: SYNs that got no SYN-ACK
    /// and collided with nothing (Zeek's S0, REJ, RSTOS0, SH). A SYN flood or a port scan.
    pub failed_attempts: u64,
    /// Records of a connection seen in more than one view (capture point, VLAN, tunnel)
    /// joined into the record of its first view: what this view's tracking counted (SYNs,
    /// reuses) is counted once. Left out of the JSON while 0.
    #[serde(skip_serializing_if = "is_zero")]
    pub joined_views: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl TrackerCounters {
    /// Adds another shard's counters to these.
    pub fn merge(&mut self, other: &TrackerCounters) {
        self.segments += other.segments;
        self.syn += other.syn;
        self.reused_tuples += other.reused_tuples;
        self.client_side_reuse += other.client_side_reuse;
        self.edge_cases_dismissed += other.edge_cases_dismissed;
        self.late_segments += other.late_segments;
        self.time_wait_assassinations += other.time_wait_assassinations;
        self.duplicate_segments += other.duplicate_segments;
        self.idle_evictions += other.idle_evictions;
        self.memory_evictions += other.memory_evictions;
        self.time_wait_evictions += other.time_wait_evictions;
        self.failed_attempts += other.failed_attempts;
        self.joined_views += other.joined_views;
    }

    /// Takes off these counters what `joined` counted: the views joined into others.
    pub(crate) fn count_off(&mut self, joined: &TrackerCounters) {
        self.syn = self.syn.saturating_sub(joined.syn);
        self.reused_tuples = self.reused_tuples.saturating_sub(joined.reused_tuples);
        self.client_side_reuse = self
            .client_side_reuse
            .saturating_sub(joined.client_side_reuse);
        self.failed_attempts = self.failed_attempts.saturating_sub(joined.failed_attempts);
        self.joined_views += joined.joined_views;
    }
}

/// What a tuple keeps of its last incarnation once it ended: enough to recognise a SYN that
/// collides with a TIME_WAIT and to predict Linux's answer (what `tcp_time_wait` keeps:
/// `tw_rcv_nxt`, `tw_snd_nxt`, `tw_ts_recent`). Compact, without the endpoints (the tuple's
/// key has them): a balancer at 16,000 new connections/s keeps a million of these.
#[derive(Clone, Debug)]
pub(crate) struct ClosedIncarnation {
    /// The closed incarnation's first index.
    first_index: u64,
    end_ns: i64,
    /// When each role (originator, responder) entered TIME_WAIT; [`NO_TIME_WAIT`] for a role
    /// that holds none, or whose TIME_WAIT a RST killed.
    time_wait_start_ns: [i64; 2],
    /// Each role's `snd_nxt` at the close: one's `tw_snd_nxt` is the other's `tw_rcv_nxt`.
    snd_nxt: [SeqNumber; 2],
    /// Each role's last TSval, meaningful with [`ClosedIncarnation::TIMESTAMPS`].
    last_tsval: [u32; 2],
    /// The frame that shows how it closed (the visible side's ACK of the later FIN).
    close_frame: FrameRef,
    /// What only some tuples have (every one, with [`TrackerConfig::ladders`]): boxed, so
    /// that the others stay small.
    extra: Option<Box<ClosedExtra>>,
    flags: u8,
}

/// What a closed incarnation keeps only sometimes.
#[derive(Clone, Debug, Default)]
struct ClosedExtra {
    /// The latest bare ACK in which a holder repeated its ACK of the peer's FIN after the
    /// close: what a TIME_WAIT answers to a SYN it rejects.
    time_wait_answer: Option<(i64, FrameRef)>,
    /// The tuple's latest segments, with [`TrackerConfig::ladders`]: the ladder of a
    /// collision on it starts with them.
    recent: RecentSegments,
}

impl ClosedIncarnation {
    /// The originator is the first endpoint of the tuple's canonical order.
    const ORIG_COMES_FIRST: u8 = 1;
    /// Both sides used timestamps: a holder keeps `ts_recent`.
    const TIMESTAMPS: u8 = 2;
    /// One direction was not captured: the close and its TIME_WAIT are inferred.
    const INFERRED: u8 = 4;

    fn new(
        incarnation: &mut Incarnation,
        holders: &[Option<TimeWaitHolder>; 2],
    ) -> ClosedIncarnation {
        let start = |holder: &Option<TimeWaitHolder>| match holder {
            Some(h) if h.killed_ns.is_none() => h.start_ns,
            _ => NO_TIME_WAIT,
        };
        let (orig, resp) = (&incarnation.orig_side, &incarnation.resp_side);
        let mut flags = 0;
        if comes_first(incarnation.orig, incarnation.resp) {
            flags |= Self::ORIG_COMES_FIRST;
        }
        if orig.last_tsval.is_some() && resp.last_tsval.is_some() {
            flags |= Self::TIMESTAMPS;
        }
        if incarnation.seen() != Seen::Both {
            flags |= Self::INFERRED;
        }
        ClosedIncarnation {
            first_index: incarnation.first_index,
            end_ns: incarnation.last_ns,
            time_wait_start_ns: [start(&holders[0]), start(&holders[1])],
            snd_nxt: [
                orig.snd_nxt.unwrap_or_default(),
                resp.snd_nxt.unwrap_or_default(),
            ],
            last_tsval: [orig.last_tsval.unwrap_or(0), resp.last_tsval.unwrap_or(0)],
            close_frame: incarnation.close_evidence(),
            extra: (incarnation.time_wait_answer.is_some() || !incarnation.recent.is_empty()).then(
                || {
                    Box::new(ClosedExtra {
                        time_wait_answer: incarnation.time_wait_answer,
                        recent: std::mem::take(&mut incarnation.recent),
                    })
                },
            ),
            flags,
        }
    }

    /// The old incarnation's roles of a segment's endpoints: (originator, responder).
    fn roles_of(&self, src: Endpoint, dst: Endpoint) -> (Endpoint, Endpoint) {
        let src_first = comes_first(src, dst);
        if src_first == (self.flags & Self::ORIG_COMES_FIRST != 0) {
            (src, dst)
        } else {
            (dst, src)
        }
    }

    /// The holder of TIME_WAIT in `role`, if that role holds one.
    fn holder(
        &self,
        role: Role,
        (orig, resp): (Endpoint, Endpoint),
        config: &TrackerConfig,
    ) -> Option<TimeWaitHolder> {
        let (me, peer) = match role {
            Role::Orig => (0, 1),
            Role::Resp => (1, 0),
        };
        let start_ns = self.time_wait_start_ns[me];
        if start_ns == NO_TIME_WAIT {
            return None;
        }
        let endpoint = if role == Role::Orig { orig } else { resp };
        Some(TimeWaitHolder {
            role,
            start_ns,
            duration_ns: config.time_wait.duration_ns(endpoint.ip),
            killed_ns: None,
            rcv_nxt: self.snd_nxt[peer],
            snd_nxt: self.snd_nxt[me],
            ts_recent: (self.flags & Self::TIMESTAMPS != 0).then_some(self.last_tsval[peer]),
        })
    }

    /// Could a SYN arriving at `now_ns` still hit one of its TIME_WAITs (slack included)?
    fn may_hold_time_wait(&self, now_ns: i64, longest_ns: i64) -> bool {
        self.time_wait_start_ns
            .iter()
            .any(|&start| start != NO_TIME_WAIT && now_ns.saturating_sub(start) < longest_ns)
    }
}

/// The SYN a new incarnation starts with, as captured or as inferred from its answer.
struct SynView {
    ts_ns: i64,
    src: Endpoint,
    dst: Endpoint,
    seq: SeqNumber,
    tsval: Option<u32>,
    frame: FrameRef,
    /// Set when the capture does not hold the SYN.
    unseen: Option<UnseenSyn>,
}

/// A SYN the capture does not hold, shown by the answers of the TIME_WAIT holder (DESIGN.md
/// section 10).
#[derive(Clone, Copy, Debug)]
struct UnseenSyn {
    /// The holder's bare ACK with the old numbers shortly before the answer: it rejected
    /// the first SYN. Time and frame.
    rejected_by: Option<(i64, FrameRef)>,
}

impl SynView {
    fn captured(seg: &TcpSegment) -> SynView {
        let (src, dst) = endpoints(seg);
        SynView {
            ts_ns: seg.ts_ns,
            src,
            dst,
            seq: SeqNumber(seg.seq),
            tsval: seg.options.timestamps.map(|t| t.value),
            frame: seg.frame,
            unseen: None,
        }
    }

    /// The SYN that `answer` (a SYN-ACK, or a RST+ACK) answered: its ISN is the answer's
    /// acknowledgment less one, its TSval the SYN-ACK's TSecr (RFC 7323 section 4.3). Its time
    /// is the TIME_WAIT's earlier rejection when one came within a retry's reach, else the
    /// answer's.
    fn inferred(answer: &TcpSegment, closed: &ClosedIncarnation) -> SynView {
        let (src, dst) = endpoints(answer);
        let rejected_by = closed
            .extra
            .as_ref()
            .and_then(|extra| extra.time_wait_answer)
            .filter(|&(ts, _)| ts <= answer.ts_ns && answer.ts_ns - ts <= RETRY_AFTER_REJECTION_NS);
        SynView {
            ts_ns: rejected_by.map_or(answer.ts_ns, |(ts, _)| ts),
            src: dst,
            dst: src,
            seq: SeqNumber(answer.ack.wrapping_sub(1)),
            tsval: answer
                .options
                .timestamps
                .filter(|_| answer.flags.is_syn_ack())
                .map(|t| t.echo_reply),
            frame: answer.frame,
            unseen: Some(UnseenSyn { rejected_by }),
        }
    }
}

/// A collision seen at the new SYN; its outcome is known when the new incarnation ends.
#[derive(Clone, Debug)]
struct PendingCollision {
    holder: TimeWaitHolder,
    age_ns: i64,
    edge_case: bool,
    prev_first_index: u64,
    /// How the previous incarnation closed, and whether that was inferred.
    prev_close_frame: FrameRef,
    prev_inferred: bool,
    syn_ts_ns: i64,
    first_syn_frame: FrameRef,
    prediction: Option<(Prediction, LinuxRule)>,
    /// The SYN's sequence number and TSval, as captured or inferred.
    syn_seq: SeqNumber,
    syn_tsval: Option<u32>,
    unseen_syn: Option<UnseenSyn>,
    /// Its packets so far, with [`TrackerConfig::ladders`].
    ladder: Option<Box<CollisionLadder>>,
}

/// The incarnation a tuple is following, with the collision its SYN made, if any. Boxed: most
/// tuples only remember a closed one, and holding this inline would triple their size.
type Current = (Incarnation, Option<PendingCollision>);

#[derive(Debug)]
enum TupleState {
    Open(Box<Current>),
    Closed(ClosedIncarnation),
}

impl TupleState {
    fn last_activity_ns(&self) -> i64 {
        match self {
            TupleState::Open(current) => current.0.last_ns,
            TupleState::Closed(closed) => closed.end_ns,
        }
    }

    /// Which tuples go first when memory runs out (the order of [`EvictionClass`]).
    fn eviction_class(&self, now_ns: i64, longest_ns: i64) -> EvictionClass {
        match self {
            TupleState::Open(current)
                if current.1.is_none() && current.0.is_failing_fresh_attempt() =>
            {
                EvictionClass::FailingAttempt
            }
            TupleState::Open(current) if current.1.is_some() => EvictionClass::OpenCollided,
            TupleState::Open(_) => EvictionClass::Open,
            TupleState::Closed(closed) if closed.may_hold_time_wait(now_ns, longest_ns) => {
                EvictionClass::TimeWait
            }
            TupleState::Closed(_) => EvictionClass::NoTimeWait,
        }
    }
}

/// Eviction order under memory pressure, lowest first (closed incarnations are compacted
/// before any eviction): attempts on a fresh tuple not answered by a SYN-ACK (yet), what a
/// SYN flood or a scan is made of, the cheapest to lose (an answer that comes after all starts
/// a midstream incarnation, marked as such); closed tuples remembered only for the reuse
/// interval, their TIME_WAIT over; open connections (evicted, a later segment starts a
/// midstream incarnation whose FIN order still names the TIME_WAIT holder), those whose SYN
/// collided after the others (their collision is recorded with the outcome seen so far);
/// last, tuples within a TIME_WAIT window, the one thing the tool exists to remember.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EvictionClass {
    FailingAttempt,
    NoTimeWait,
    Open,
    OpenCollided,
    TimeWait,
}

impl EvictionClass {
    pub const ALL: [EvictionClass; 5] = [
        EvictionClass::FailingAttempt,
        EvictionClass::NoTimeWait,
        EvictionClass::Open,
        EvictionClass::OpenCollided,
        EvictionClass::TimeWait,
    ];

    /// Estimated bytes that evicting one tuple of this class frees.
    /// `ladders`: as [`TrackerConfig::ladders`].
    pub fn bytes(self, ladders: bool) -> usize {
        match self {
            EvictionClass::FailingAttempt | EvictionClass::Open | EvictionClass::OpenCollided => {
                tuple_bytes(ladders) + OPEN_BYTES
            }
            EvictionClass::NoTimeWait | EvictionClass::TimeWait => tuple_bytes(ladders),
        }
    }
}

/// Memory estimates behind `max_memory`. A tuple in the table: its key and state plus
/// hashbrown's control byte, at 8/7 of the entries for the table's maximum load. Counted per
/// entry, not per allocated bucket, so that the estimate is the same however the tuples are
/// spread over shards.
const TUPLE_BYTES: usize = (size_of::<(TupleKey, TupleState)>() + 1) * 8 / 7;
// A million tuples in TIME_WAIT (a balancer at ~16,000 new connections/s) must fit in a
// budget of a few hundred megabytes.
const _: () = assert!(TUPLE_BYTES <= 160, "a tuple grew past 160 bytes");
/// An open incarnation's heap block, with the allocator's header.
const OPEN_BYTES: usize = size_of::<Current>() + 16;
/// What [`TrackerConfig::ladders`] adds to a tuple: its latest segments, and the box that
/// holds them once it is closed.
const LADDER_BYTES: usize = size_of::<ClosedExtra>() + 16 + RecentSegments::BYTES;

/// A tuple in the table, with its latest segments when `ladders` ([`TrackerConfig::ladders`]).
fn tuple_bytes(ladders: bool) -> usize {
    TUPLE_BYTES + if ladders { LADDER_BYTES } else { 0 }
}

/// What one segment can add to memory before the budget is next checked: a new open tuple,
/// the record of the tuple it displaced, and its place in the two stretches of segments (the
/// one followed, the one read meanwhile).
pub(crate) fn segment_growth_bytes(config: &TrackerConfig) -> usize {
    tuple_bytes(config.ladders)
        + OPEN_BYTES
        + size_of::<ConnectionRecord>()
        + 2 * size_of::<IndexedSegment>()
}

/// Follows the TCP connections of a set of tuples. Pure logic: segments in, records out; time
/// comes only from segment timestamps.
pub(crate) struct FlowTracker {
    config: TrackerConfig,
    tuples: hashbrown::HashMap<TupleKey, TupleState, FxBuildHasher>,
    /// Tuples with an incarnation being followed (a boxed [`Current`]).
    open: usize,
    /// The latest segment time seen.
    latest_ns: i64,
    /// The view of the first tuple, and whether another one came since: records are joined
    /// across views only where there are several.
    first_view: Option<View>,
    several_views: bool,
    out: Outbox,
}

/// What a shard makes as it goes: the records of the incarnations that ended, until
/// [`ShardedTracker`](crate::ShardedTracker) takes them, and its counters. Every id in them is
/// the global input position of an incarnation's first segment.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Records of ended incarnations, in the order they ended.
    pub connections: Vec<ConnectionRecord>,
    /// Collision records, in the order their incarnations ended.
    pub collisions: Vec<CollisionRecord>,
    pub counters: TrackerCounters,
    /// The collisions' packets, with [`TrackerConfig::ladders`].
    pub ladders: LadderKeeper,
}

impl FlowTracker {
    pub fn new(config: TrackerConfig) -> FlowTracker {
        FlowTracker {
            config,
            tuples: hashbrown::HashMap::default(),
            open: 0,
            latest_ns: i64::MIN,
            first_view: None,
            several_views: false,
            out: Outbox::default(),
        }
    }

    /// Follows a shard's segments of one stretch, in input order.
    pub(crate) fn process_all(&mut self, segments: &[IndexedSegment]) {
        for (position, (index, seg)) in segments.iter().enumerate() {
            if let Some((_, ahead)) = segments.get(position + SYN_PREFETCH_AHEAD) {
                if ahead.flags.is_syn_only() {
                    self.prefetch_tuple(ahead);
                }
            }
            self.process(seg, *index);
        }
    }

    /// The latest segment time this shard has seen.
    pub(crate) fn latest_ns(&self) -> i64 {
        self.latest_ns
    }

    /// The view of the shard's first tuple, and whether its tuples have been seen in more
    /// than one view.
    pub(crate) fn views(&self) -> (Option<View>, bool) {
        (self.first_view, self.several_views)
    }

    /// The memory the shard's tuples are estimated to take ([`tuple_bytes`], [`OPEN_BYTES`]).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.tuples.len() * tuple_bytes(self.config.ladders) + self.open * OPEN_BYTES
    }

    /// Asks the CPU to load the table entry of `seg`'s tuple. A connection's first segment, its
    /// SYN, finds the entry cold (last touched when the tuple was last used, seconds of
    /// capture before), a wait for memory per connection: 7-8% of `analyze`'s CPU (perf,
    /// bench capture). The segments after it find the entry in the cache, so only SYNs are
    /// worth the second lookup.
    fn prefetch_tuple(&self, seg: &TcpSegment) {
        let (src, dst) = endpoints(seg);
        let view = View::of(seg, &self.config);
        let hash = self
            .tuples
            .hasher()
            .hash_one(TupleKey::in_view(src, dst, view));
        // A lookup that matches nothing: it reads only the table's control bytes, and hands
        // each entry whose hash matches (the tuple's own, if it has one) to the closure.
        let _ = self.tuples.raw_entry().from_hash(hash, |key| {
            let entry_offset = std::mem::offset_of!((TupleKey, TupleState), 0);
            let entry = std::ptr::from_ref(key)
                .cast::<u8>()
                .wrapping_sub(entry_offset);
            prefetch(entry.cast::<(TupleKey, TupleState)>());
            false
        });
    }

    /// Follows one segment; `index` is its position in the merged input (its global order).
    pub(crate) fn process(&mut self, seg: &TcpSegment, index: u64) {
        self.out.counters.segments += 1;
        self.latest_ns = self.latest_ns.max(seg.ts_ns);
        let flags = seg.flags;
        let (src, dst) = endpoints(seg);
        let view = View::of(seg, &self.config);
        let key = TupleKey::in_view(src, dst, view);
        let (config, out) = (&self.config, &mut self.out);
        let state = match self.tuples.entry(key) {
            hashbrown::hash_map::Entry::Vacant(vacant) => {
                out.counters.syn += u64::from(flags.is_syn_only());
                // Once per tuple and view: whether the views of one connection may need joining.
                match self.first_view {
                    None => self.first_view = Some(view),
                    Some(first) if first != view => {
                        self.several_views = true;
                        out.ladders.keep_all();
                    }
                    Some(_) => {}
                }
                let mut incarnation = Incarnation::start(seg, index, view);
                incarnation.update(seg, index);
                if config.ladders {
                    incarnation.recent.push(LadderSegment::of(seg, index));
                }
                vacant.insert(TupleState::Open(Box::new((incarnation, None))));
                self.open += 1;
                return;
            }
            hashbrown::hash_map::Entry::Occupied(occupied) => occupied.into_mut(),
        };
        // What time alone decides for this tuple, from this segment's time: the same whether
        // or not a sweep came first.
        let forgotten = match settle(state, seg.ts_ns, config, out) {
            Settled::Unchanged => false,
            Settled::Closed => {
                self.open -= 1;
                false
            }
            Settled::Forget => true,
        };
        if let TupleState::Open(current) = state {
            if current.0.is_duplicate(seg) {
                out.counters.duplicate_segments += 1;
                if config.ladders {
                    keep_for_ladders(current, LadderSegment::of(seg, index));
                }
                return;
            }
        }
        out.counters.syn += u64::from(flags.is_syn_only());

        let previous = match state {
            TupleState::Open(current) => {
                let incarnation = &current.0;
                let continues = if flags.is_syn_only() {
                    incarnation.is_syn_retransmission(seg)
                } else if flags.is_syn_ack() {
                    incarnation.accepts_syn_ack(seg)
                } else {
                    !incarnation.is_reset_of_unseen_syn(seg)
                };
                if continues {
                    current.0.update(seg, index);
                    if config.ladders {
                        keep_for_ladders(current, LadderSegment::of(seg, index));
                    }
                    return;
                }
                // A new incarnation: the current one ends here.
                self.open -= 1;
                let forced = (!current.0.is_closed()).then_some(CloseKind::Superseded);
                Some(finish(current, forced, config, out))
            }
            TupleState::Closed(closed) if !forgotten => {
                let answers_unseen_syn =
                    flags.is_syn_ack() || is_reset_of_unseen_syn(closed, seg, src, dst, config);
                if !flags.is_syn_only() && !answers_unseen_syn {
                    late_segment(closed, seg, src, dst, config, &mut out.counters);
                    if config.ladders {
                        let extra = closed.extra.get_or_insert_default();
                        extra.recent.push(LadderSegment::of(seg, index));
                    }
                    return;
                }
                Some(std::mem::replace(closed, placeholder_closed()))
            }
            TupleState::Closed(_) => None,
        };

        let mut incarnation = Incarnation::start(seg, index, view);
        let mut pending = None;
        let mut before = RecentSegments::default();
        if let Some(closed) = previous {
            incarnation.previous =
                Some((closed.first_index, seg.ts_ns.saturating_sub(closed.end_ns)));
            out.counters.reused_tuples += 1;
            let syn = if flags.is_syn_only() {
                Some(SynView::captured(seg))
            } else if flags.is_syn_ack() || flags.contains(TcpFlags::RST) {
                Some(SynView::inferred(seg, &closed))
            } else {
                None
            };
            if let Some(syn) = syn {
                match check_time_wait(&closed, &syn, config) {
                    Check::Collision(collision) => pending = Some(collision),
                    Check::ClientSideReuse => {
                        out.counters.client_side_reuse += 1;
                        incarnation.client_side_reuse = true;
                    }
                    Check::Clear => {}
                }
            }
            if let Some(extra) = closed.extra {
                before = extra.recent;
            }
        }
        incarnation.update(seg, index);
        let mut current = Box::new((incarnation, pending));
        if config.ladders {
            if let Some(collision) = &mut current.1 {
                collision.ladder = Some(out.ladders.start(&before, current.0.orig));
            }
            // The previous incarnation's buffer, emptied, takes this one's latest segments:
            // one allocation less for each connection on a reused tuple.
            before.clear();
            current.0.recent = before;
            keep_for_ladders(&mut current, LadderSegment::of(seg, index));
        }
        *state = TupleState::Open(current);
        self.open += 1;
    }

    /// Ends every incarnation still followed (the capture is over at `now_ns`): their records
    /// go out. One idle past the idle timeout is evicted, as a sweep at `now_ns` would have.
    pub(crate) fn end_all(&mut self, now_ns: i64) {
        self.open = 0;
        for state in std::mem::take(&mut self.tuples).into_values() {
            if let TupleState::Open(mut current) = state {
                let forced = idle_past_timeout(&current.0, now_ns, &self.config).then(|| {
                    self.out.counters.idle_evictions += 1;
                    CloseKind::Evicted
                });
                finish(&mut current, forced, &self.config, &mut self.out);
            }
        }
    }

    /// What the shard has made since last asked.
    pub(crate) fn outbox(&mut self) -> &mut Outbox {
        &mut self.out
    }

    /// At `now_ns` (the capture's global clock): compacts closed incarnations, forgets tuples
    /// whose memory has passed, evicts idle connections, exactly as a segment arriving on each
    /// tuple at `now_ns` would; only the memory changes.
    pub(crate) fn sweep(&mut self, now_ns: i64) {
        let (config, out) = (&self.config, &mut self.out);
        let mut closed = 0;
        // The incarnations were last touched seconds of capture ago: each one the sweep looks at
        // is a wait for memory, 6-7% of all the CPU time (perf, bench capture) unless it was
        // asked for ahead. `retain` visits the table in the order `values` lists it; were it
        // not to, a prefetch would only miss, with the same findings.
        let followed: Vec<*const Current> = self
            .tuples
            .values()
            .filter_map(|state| match state {
                TupleState::Open(current) => Some(std::ptr::from_ref(current.as_ref())),
                TupleState::Closed(_) => None,
            })
            .collect();
        let mut visited = 0;
        self.tuples.retain(|_, state| {
            if let TupleState::Open(_) = state {
                if let Some(&ahead) = followed.get(visited + SWEEP_PREFETCH_AHEAD) {
                    prefetch(ahead);
                }
                visited += 1;
            }
            match settle(state, now_ns, config, out) {
                Settled::Unchanged => true,
                Settled::Closed => {
                    closed += 1;
                    true
                }
                Settled::Forget => false,
            }
        });
        self.open -= closed;
    }

    /// How many tuples of each [`EvictionClass`] the shard holds at `now_ns`, and the last
    /// activity times of those in `class_times`.
    pub(crate) fn eviction_census(
        &self,
        now_ns: i64,
        class_times: Option<EvictionClass>,
    ) -> ([usize; EvictionClass::ALL.len()], Vec<i64>) {
        let longest = self.config.time_wait.longest_ns();
        let mut counts = [0; EvictionClass::ALL.len()];
        let mut times = Vec::new();
        for state in self.tuples.values() {
            let class = state.eviction_class(now_ns, longest);
            counts[class as usize] += 1;
            if Some(class) == class_times {
                times.push(state.last_activity_ns());
            }
        }
        (counts, times)
    }

    /// Adds this shard's tuples to `by_source` (the originator's address of each): open, or
    /// held in TIME_WAIT at `now_ns` by the server (responder) or by the client itself.
    pub(crate) fn occupancy(&self, now_ns: i64, by_source: &mut FxHashMap<IpAddr, Occupancy>) {
        for (key, state) in &self.tuples {
            match state {
                TupleState::Open(current) if current.0.is_closed() => {
                    let (server, client) =
                        current.0.holds_time_wait_at(now_ns, &self.config.time_wait);
                    if server || client {
                        let entry = by_source.entry(current.0.orig.ip).or_default();
                        entry.time_wait_server += u64::from(server);
                        entry.time_wait_client += u64::from(client && !server);
                    }
                }
                TupleState::Open(current) => {
                    by_source.entry(current.0.orig.ip).or_default().open += 1;
                }
                TupleState::Closed(closed) => {
                    let (low, high) = key.endpoints();
                    let (orig, resp) = closed.roles_of(low, high);
                    let held = |role| {
                        closed
                            .holder(role, (orig, resp), &self.config)
                            .is_some_and(|h| now_ns.saturating_sub(h.start_ns) < h.duration_ns)
                    };
                    let (server, client) = (held(Role::Resp), held(Role::Orig));
                    if server || client {
                        let entry = by_source.entry(orig.ip).or_default();
                        entry.time_wait_server += u64::from(server);
                        entry.time_wait_client += u64::from(client && !server);
                    }
                }
            }
        }
    }

    /// Compacts every closed incarnation at once, however recently it was active: under
    /// memory pressure, its late segments are counted as late rather than kept with it, and
    /// its TIME_WAIT stays.
    pub(crate) fn compact_closed(&mut self) {
        let (config, out) = (&self.config, &mut self.out);
        let mut compacted = 0;
        for state in self.tuples.values_mut() {
            if let TupleState::Open(current) = state {
                if current.0.is_closed() {
                    *state = TupleState::Closed(finish(current, None, config, out));
                    compacted += 1;
                }
            }
        }
        self.open -= compacted;
    }

    /// Evicts, at `now_ns`, every tuple of a class below `class`, and those of `class` last
    /// active at `until_ns` or before.
    pub(crate) fn evict(&mut self, now_ns: i64, class: EvictionClass, until_ns: i64) {
        let longest = self.config.time_wait.longest_ns();
        let (config, out) = (&self.config, &mut self.out);
        let mut closed = 0;
        self.tuples.retain(|_, state| {
            let this = state.eviction_class(now_ns, longest);
            if this > class || (this == class && state.last_activity_ns() > until_ns) {
                return true;
            }
            out.counters.memory_evictions += 1;
            match state {
                TupleState::Open(current) => {
                    closed += 1;
                    let forced = (!current.0.is_closed()).then_some(CloseKind::Evicted);
                    finish(current, forced, config, out);
                }
                TupleState::Closed(_) if this == EvictionClass::TimeWait => {
                    out.counters.time_wait_evictions += 1;
                }
                TupleState::Closed(_) => {}
            }
            false
        });
        self.open -= closed;
    }
}

/// The tuples of one source address at a moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Occupancy {
    /// With a connection open.
    pub open: u64,
    /// Held in TIME_WAIT by the server (the responder closed first): a SYN on one collides.
    pub time_wait_server: u64,
    /// Held in TIME_WAIT by the source itself (it closed first): it cannot reuse them without
    /// `tcp_tw_reuse` or its like.
    pub time_wait_client: u64,
}

/// What [`settle`] did to a tuple.
enum Settled {
    Unchanged,
    /// Its open incarnation ended (compacted or evicted as idle).
    Closed,
    /// Its memory has passed: the tuple is to be forgotten.
    Forget,
}

fn idle_past_timeout(incarnation: &Incarnation, now_ns: i64, config: &TrackerConfig) -> bool {
    !incarnation.is_closed() && now_ns.saturating_sub(incarnation.last_ns) >= config.idle_timeout_ns
}

/// What time alone decides for a tuple at `now_ns`: a closed incarnation quiet for
/// [`COMPACT_AFTER_NS`] shrinks to its [`ClosedIncarnation`], an open one idle past the idle
/// timeout is evicted, and a closed tuple is forgotten once its TIME_WAIT and the idle timeout
/// have both passed (remembered that long so that port reuse intervals longer than TIME_WAIT,
/// the balancer's cycle, are measured too).
#[inline]
fn settle(
    state: &mut TupleState,
    now_ns: i64,
    config: &TrackerConfig,
    out: &mut Outbox,
) -> Settled {
    match state {
        TupleState::Open(current) => {
            let incarnation = &current.0;
            let idle_ns = now_ns.saturating_sub(incarnation.last_ns);
            // What most segments find: their connection active a moment ago.
            if idle_ns < COMPACT_AFTER_NS.min(config.idle_timeout_ns) {
                return Settled::Unchanged;
            }
            let forced = if incarnation.is_closed() {
                if idle_ns < COMPACT_AFTER_NS {
                    return Settled::Unchanged;
                }
                None
            } else if idle_past_timeout(incarnation, now_ns, config) {
                out.counters.idle_evictions += 1;
                Some(CloseKind::Evicted)
            } else {
                return Settled::Unchanged;
            };
            *state = TupleState::Closed(finish(current, forced, config, out));
            Settled::Closed
        }
        TupleState::Closed(closed) => {
            let remember_ns = config.time_wait.longest_ns().max(config.idle_timeout_ns);
            if now_ns.saturating_sub(closed.end_ns) >= remember_ns {
                Settled::Forget
            } else {
                Settled::Unchanged
            }
        }
    }
}

/// A stand-in left for an instant where a closed record is taken out to start the next
/// incarnation.
fn placeholder_closed() -> ClosedIncarnation {
    ClosedIncarnation {
        first_index: 0,
        end_ns: 0,
        time_wait_start_ns: [NO_TIME_WAIT; 2],
        snd_nxt: [SeqNumber(0); 2],
        last_tsval: [0; 2],
        close_frame: FrameRef::default(),
        extra: None,
        flags: 0,
    }
}

/// A segment other than a SYN on a compacted tuple: a late retransmission of the old
/// connection. What it still tells: a RST from the peer with the sequence number the holder
/// expects ends the TIME_WAIT however late it comes (RFC 1337 assassination; Linux
/// `tcp_timewait_state_process` with the default `tcp_rfc1337=0`), and a holder repeating its
/// ACK of the peer's FIN is a TIME_WAIT answering something it did not accept.
fn late_segment(
    closed: &mut ClosedIncarnation,
    seg: &TcpSegment,
    src: Endpoint,
    dst: Endpoint,
    config: &TrackerConfig,
    counters: &mut TrackerCounters,
) {
    counters.late_segments += 1;
    let endpoints = closed.roles_of(src, dst);
    let sender = if endpoints.0 == src {
        Role::Orig
    } else {
        Role::Resp
    };
    let seq = SeqNumber(seg.seq);
    let in_window = |holder: &TimeWaitHolder| {
        seg.ts_ns >= holder.start_ns
            && seg.ts_ns.saturating_sub(holder.start_ns)
                < holder
                    .duration_ns
                    .saturating_add(config.time_wait.edge_slack_ns)
    };
    if let Some(holder) = closed.holder(sender.peer(), endpoints, config) {
        if seg.flags.contains(TcpFlags::RST) && seq == holder.rcv_nxt && in_window(&holder) {
            closed.time_wait_start_ns[usize::from(holder.role == Role::Resp)] = NO_TIME_WAIT;
            counters.time_wait_assassinations += 1;
        }
    }
    if let Some(holder) = closed.holder(sender, endpoints, config) {
        if seg.flags == TcpFlags::ACK
            && seg.payload_len == 0
            && seq == holder.snd_nxt
            && SeqNumber(seg.ack) == holder.rcv_nxt
            && in_window(&holder)
        {
            closed.extra.get_or_insert_default().time_wait_answer = Some((seg.ts_ns, seg.frame));
        }
    }
}

/// Is `seg`, on a compacted tuple, a RST+ACK with which a TIME_WAIT holder answered a SYN the
/// capture does not hold (its acknowledgment is not the old connection's)?
fn is_reset_of_unseen_syn(
    closed: &ClosedIncarnation,
    seg: &TcpSegment,
    src: Endpoint,
    dst: Endpoint,
    config: &TrackerConfig,
) -> bool {
    if !seg
        .flags
        .contains(TcpFlags(TcpFlags::RST.0 | TcpFlags::ACK.0))
    {
        return false;
    }
    let endpoints = closed.roles_of(src, dst);
    let sender = if endpoints.0 == src {
        Role::Orig
    } else {
        Role::Resp
    };
    closed
        .holder(sender, endpoints, config)
        .is_some_and(|holder| SeqNumber(seg.ack) != holder.rcv_nxt)
}

/// Asks the CPU to start loading `*value` into its caches, without waiting for it.
#[inline(always)]
fn prefetch<T>(value: *const T) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..size_of::<T>().div_ceil(64) {
        // SAFETY: a prefetch is a hint: it never faults, whatever the address, and changes
        // nothing the program can observe. SSE, which has it, is in x86_64's baseline.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                value.cast::<i8>().wrapping_add(line * 64),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// What a new SYN on a closed tuple hit.
enum Check {
    Collision(PendingCollision),
    /// The SYN's sender held the tuple in TIME_WAIT itself.
    ClientSideReuse,
    Clear,
}

/// Is the new SYN hitting a TIME_WAIT? The holder must be its receiver for a collision; a
/// sender reusing its own TIME_WAIT is a client-side reuse.
fn check_time_wait(closed: &ClosedIncarnation, syn: &SynView, config: &TrackerConfig) -> Check {
    let slack = config.time_wait.edge_slack_ns;
    let in_window = |holder: &TimeWaitHolder| -> Option<(i64, bool)> {
        let age_ns = syn.ts_ns.saturating_sub(holder.start_ns);
        if age_ns < 0 {
            None
        } else if age_ns < holder.duration_ns {
            Some((age_ns, false))
        } else if age_ns < holder.duration_ns.saturating_add(slack) {
            Some((age_ns, true))
        } else {
            None
        }
    };
    let endpoints = closed.roles_of(syn.src, syn.dst);
    let syn_from = if endpoints.0 == syn.src {
        Role::Orig
    } else {
        Role::Resp
    };
    if let Some(holder) = closed.holder(syn_from.peer(), endpoints, config) {
        if let Some((age_ns, edge_case)) = in_window(&holder) {
            return Check::Collision(PendingCollision {
                holder,
                age_ns,
                edge_case,
                prev_first_index: closed.first_index,
                prev_close_frame: closed.close_frame,
                prev_inferred: closed.flags & ClosedIncarnation::INFERRED != 0,
                syn_ts_ns: syn.ts_ns,
                first_syn_frame: syn.frame,
                prediction: (config.server_os == ServerOs::Linux)
                    .then(|| predict_linux(&holder, syn.seq, syn.tsval)),
                syn_seq: syn.seq,
                syn_tsval: syn.tsval,
                unseen_syn: syn.unseen,
                ladder: None,
            });
        }
    }
    if let Some(holder) = closed.holder(syn_from, endpoints, config) {
        if in_window(&holder).is_some_and(|(_, edge)| !edge) {
            return Check::ClientSideReuse;
        }
    }
    Check::Clear
}

/// What Linux does with a SYN on a TIME_WAIT socket, and by which rule (net/ipv4/
/// tcp_minisocks.c, `tcp_timewait_state_process`): PAWS rejects a timestamp older than
/// `ts_recent` (`tcp_paws_reject` with a window of 0); otherwise the SYN is accepted when its
/// sequence number is after `rcv_nxt` or its timestamp is newer than `ts_recent`; else it gets
/// an ACK.
fn predict_linux(
    holder: &TimeWaitHolder,
    seq: SeqNumber,
    tsval: Option<u32>,
) -> (Prediction, LinuxRule) {
    let (paws_reject, newer_timestamp) = match (holder.ts_recent, tsval) {
        (Some(recent), Some(tsval)) => (
            recent != 0 && ts_newer(recent, tsval),
            ts_newer(tsval, recent),
        ),
        _ => (false, false),
    };
    if paws_reject {
        (Prediction::Reject, LinuxRule::PawsReject)
    } else if seq.is_after(holder.rcv_nxt) {
        (Prediction::Accept, LinuxRule::SeqAfterRcvNxt)
    } else if newer_timestamp {
        (Prediction::Accept, LinuxRule::NewerTimestamp)
    } else {
        (Prediction::Reject, LinuxRule::SeqNotAfterRcvNxt)
    }
}

/// Emits the records of the incarnation a tuple followed (and of its collision, if its SYN
/// made one) and returns what the tuple keeps.
fn finish(
    (incarnation, pending): &mut Current,
    forced: Option<CloseKind>,
    config: &TrackerConfig,
    out: &mut Outbox,
) -> ClosedIncarnation {
    let pending = pending.take();
    incarnation.infer_unseen_side();
    let holders = incarnation.time_wait_holders(&config.time_wait);
    let mut record = incarnation.record(forced, &holders);
    let collision_free = pending.is_none();
    if let Some(mut collision) = pending {
        match collision_record(incarnation, &collision, forced == Some(CloseKind::Evicted)) {
            Some(mut c) => {
                record.collision = Some(c.outcome);
                out.ladders.settle(&mut c, collision.ladder.take());
                out.collisions.push(c);
            }
            None => out.counters.edge_cases_dismissed += 1,
        }
    }
    if collision_free && incarnation.is_failing_fresh_attempt() {
        out.counters.failed_attempts += 1;
    }
    out.connections.push(record);
    ClosedIncarnation::new(incarnation, &holders)
}

/// Keeps `seg` with the tuple's latest segments and, while its ladder takes more, with the
/// collision its incarnation's SYN made (with [`TrackerConfig::ladders`]).
fn keep_for_ladders((incarnation, pending): &mut Current, seg: LadderSegment) {
    incarnation.recent.push(seg);
    if let Some(ladder) = pending.as_mut().and_then(|c| c.ladder.as_mut()) {
        ladder.push(seg);
    }
}

/// What the SYN's answers show, as read from the segments the capture holds.
struct Observed {
    outcome: Outcome,
    first_reply: FirstReply,
    /// When the handshake was answered (SYN-ACK), or completed where only the originator's
    /// segments show it.
    answered_ns: Option<i64>,
    /// The responder's ISN, where known.
    server_isn: Option<SeqNumber>,
    /// The answers showed the old connection's numbers (a TIME_WAIT's bare ACK, or the
    /// client's RST answering one).
    old_numbers: bool,
    inferred: bool,
    basis: Basis,
}

/// The outcome of a collision from both directions (DESIGN.md section 3).
fn observed_both(incarnation: &Incarnation, c: &PendingCollision) -> Observed {
    let first_reply = incarnation.first_reply.unwrap_or(FirstReply::None);
    let outcome = match (first_reply, incarnation.syn_ack_ns.is_some()) {
        (FirstReply::Rst, _) => Outcome::Reset,
        (_, false) => Outcome::Failed,
        (FirstReply::SynAck, true) => Outcome::Accepted,
        (FirstReply::Ack, true) => Outcome::RejectedRecovered,
        (FirstReply::None, true) => Outcome::Unanswered,
    };
    Observed {
        outcome,
        first_reply,
        answered_ns: incarnation.syn_ack_ns,
        server_isn: incarnation.resp_side.isn,
        old_numbers: incarnation.challenge_ack == Some(c.holder.rcv_nxt),
        inferred: false,
        basis: Basis::of([c.prev_close_frame, c.first_syn_frame]),
    }
}

/// The outcome from the responder's segments only, the SYN itself unseen: a SYN-ACK is an
/// accepted SYN, unless the TIME_WAIT's bare ACK with the old numbers came first (then the
/// SYN-ACK answered the client's retry: rejected, recovered); a RST is a reset.
fn observed_resp_only(
    incarnation: &Incarnation,
    c: &PendingCollision,
    unseen: UnseenSyn,
) -> Observed {
    let basis = Basis::of(
        [
            Some(c.prev_close_frame),
            unseen.rejected_by.map(|(_, frame)| frame),
            Some(c.first_syn_frame),
        ]
        .into_iter()
        .flatten(),
    );
    let (outcome, first_reply) = match (incarnation.syn_ack_ns, unseen.rejected_by) {
        (None, _) => (Outcome::Reset, FirstReply::Rst),
        (Some(_), Some(_)) => (Outcome::RejectedRecovered, FirstReply::Ack),
        (Some(_), None) => (Outcome::Accepted, FirstReply::SynAck),
    };
    Observed {
        outcome,
        first_reply,
        answered_ns: incarnation.syn_ack_ns,
        server_isn: incarnation.resp_side.isn,
        old_numbers: unseen.rejected_by.is_some(),
        inferred: true,
        basis,
    }
}

/// The outcome from the originator's segments only: its RST with the old connection's final
/// sequence number answered the TIME_WAIT's bare ACK (rejected); a SYN sent again with no RST
/// went unanswered; its handshake ACK shows the SYN-ACK it got, with the server's ISN. Nothing
/// after the SYN: unknown.
fn observed_orig_only(incarnation: &Incarnation, c: &PendingCollision) -> Observed {
    let rejected = incarnation
        .orig_side
        .handshake_rst
        .filter(|rst| rst.seq == c.holder.rcv_nxt);
    let basis = Basis::of(
        [
            Some(c.prev_close_frame),
            Some(c.first_syn_frame),
            rejected.map(|rst| rst.frame),
            incarnation.handshake_ack.map(|(_, _, frame)| frame),
        ]
        .into_iter()
        .flatten(),
    );
    let (outcome, first_reply) = match (incarnation.handshake_ack, rejected) {
        (Some(_), Some(_)) => (Outcome::RejectedRecovered, FirstReply::Ack),
        (Some(_), None) if incarnation.syns > 1 => (Outcome::Unanswered, FirstReply::None),
        (Some(_), None) => (Outcome::Accepted, FirstReply::SynAck),
        (None, _) if incarnation.syns > 1 || rejected.is_some() => {
            (Outcome::Failed, FirstReply::None)
        }
        (None, _) => (Outcome::Unknown, FirstReply::None),
    };
    Observed {
        outcome,
        first_reply,
        answered_ns: incarnation.handshake_ack.map(|(ts, _, _)| ts),
        server_isn: incarnation
            .handshake_ack
            .map(|(_, ack, _)| ack.plus(u32::MAX)),
        old_numbers: rejected.is_some(),
        inferred: true,
        basis,
    }
}

/// The collision's record, now that the new incarnation's fate is known (or that it was
/// `evicted` before: what had not happened yet is then unknown, not a failure); `None` for an
/// edge case that the holder's answer shows was outside TIME_WAIT.
fn collision_record(
    incarnation: &Incarnation,
    c: &PendingCollision,
    evicted: bool,
) -> Option<CollisionRecord> {
    let holder = &c.holder;
    // A SYN with nothing after it shows no direction missing by itself: on a tuple whose last
    // close was seen from the originator's side only, it is read as that side's.
    let orig_only = incarnation.seen() == Seen::OrigOnly
        || (c.prev_inferred && incarnation.resp_side.pkts == 0);
    let mut observed = match c.unseen_syn {
        Some(unseen) => observed_resp_only(incarnation, c, unseen),
        None if orig_only => observed_orig_only(incarnation, c),
        None => observed_both(incarnation, c),
    };
    if evicted && observed.outcome == Outcome::Failed {
        observed.outcome = Outcome::Unknown;
    }
    // Linux's SYN-ACK from TIME_WAIT: ISN = tw_snd_nxt + 65535 + 2, never 0.
    let signature_isn = match holder.snd_nxt.plus(65_537) {
        SeqNumber(0) => SeqNumber(1),
        isn => isn,
    };
    let isn_signature = observed.server_isn == Some(signature_isn);
    if c.edge_case && !isn_signature && !observed.old_numbers {
        return None;
    }
    let prediction_agrees = c
        .prediction
        .and_then(|(prediction, _)| match observed.first_reply {
            FirstReply::SynAck => Some(prediction == Prediction::Accept),
            // Linux answers an unacceptable SYN with a rate-limited ACK: silence is a rejection.
            FirstReply::Ack => Some(prediction == Prediction::Reject),
            FirstReply::None if observed.outcome != Outcome::Unknown => {
                Some(prediction == Prediction::Reject)
            }
            FirstReply::None | FirstReply::Rst => None,
        });
    Some(CollisionRecord {
        ts_ns: c.syn_ts_ns,
        syn_ts_estimated: c.unseen_syn.is_some(),
        orig_h: incarnation.orig.ip,
        orig_p: incarnation.orig.port,
        resp_h: incarnation.resp.ip,
        resp_p: incarnation.resp.port,
        holder_role: holder.role,
        time_wait_age_ns: c.age_ns,
        time_wait_duration_ns: holder.duration_ns,
        edge_case: c.edge_case,
        prev_uid: c.prev_first_index,
        uid: incarnation.first_index,
        first_syn_frame: c.first_syn_frame,
        inferred: observed.inferred || c.prev_inferred,
        basis: observed.basis,
        outcome: observed.outcome,
        first_reply: observed.first_reply,
        syn_attempts: incarnation.syns.max(1),
        cost_ns: observed
            .answered_ns
            .map(|answered| answered.saturating_sub(c.syn_ts_ns)),
        prediction: c.prediction.map(|(prediction, _)| prediction),
        linux_rule: c.prediction.map(|(_, rule)| rule),
        reason: Reason::of(observed.outcome, c.prediction.map(|(_, rule)| rule)),
        prediction_agrees,
        isn_signature,
        syn_seq: c.syn_seq.0,
        syn_tsval: c.syn_tsval,
        old_rcv_nxt: holder.rcv_nxt.0,
        old_snd_nxt: holder.snd_nxt.0,
        old_ts_recent: holder.ts_recent,
        server_isn: observed.server_isn.map(|isn| isn.0),
        time_wait_assassinated: incarnation
            .orig_side
            .handshake_rst
            .is_some_and(|rst| rst.seq == holder.rcv_nxt),
        view: incarnation.view,
        other_views: Vec::new(),
        ladder: None,
    })
}
