//! [`FlowTracker`]: the connections of one shard of 4-tuples, their incarnations, TIME_WAIT
//! windows and the SYNs that collide with them.

use std::hash::BuildHasher;

use rustc_hash::FxBuildHasher;
use serde::Serialize;
use twsleuth_decode::{FrameRef, TcpSegment};

use crate::config::TrackerConfig;
use crate::findings::IndexedSegment;
use crate::incarnation::{Incarnation, TimeWaitHolder};
use crate::records::{
    CloseKind, CollisionRecord, ConnectionRecord, FirstReply, Outcome, Prediction,
};
use crate::seq::{SeqNumber, ts_newer};
use crate::tuple::{Endpoint, TupleKey, endpoints};

/// How often (capture time) the shard looks for tuples to compact, forget or evict.
const SWEEP_INTERVAL_NS: i64 = 5_000_000_000;
/// How many followed incarnations ahead of the one it looks at the sweep asks the CPU to load:
/// enough for a load from memory to arrive in time, few enough to stay in the cache.
const SWEEP_PREFETCH_AHEAD: usize = 8;
/// How many segments ahead of the one it follows the shard looks for SYNs whose tuple entry
/// it asks the CPU to load.
const SYN_PREFETCH_AHEAD: usize = 8;
/// A closed incarnation with no segment for this long shrinks to its TIME_WAIT summary; later
/// segments on the tuple (other than a SYN) are counted as late.
const COMPACT_AFTER_NS: i64 = 4_000_000_000;

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
    /// Segments captured twice (a bridge, a SPAN port, the same frame in two merged files):
    /// the second capture is counted here and not followed.
    pub duplicate_segments: u64,
    /// Open connections evicted after the idle timeout.
    pub idle_evictions: u64,
    /// Tuples evicted because the tuple table reached its share of `max_memory`.
    pub memory_evictions: u64,
    /// Connection attempts that failed on a tuple with no history: SYNs that got no SYN-ACK
    /// and collided with nothing (Zeek's S0, REJ, RSTOS0, SH). A SYN flood or a port scan.
    pub failed_attempts: u64,
    /// Failed attempts only counted, without a record, once their records reached their
    /// share of `max_memory`.
    pub failed_attempts_unrecorded: u64,
    /// The segments of those unrecorded attempts.
    pub unrecorded_segments: u64,
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
        self.duplicate_segments += other.duplicate_segments;
        self.idle_evictions += other.idle_evictions;
        self.memory_evictions += other.memory_evictions;
        self.failed_attempts += other.failed_attempts;
        self.failed_attempts_unrecorded += other.failed_attempts_unrecorded;
        self.unrecorded_segments += other.unrecorded_segments;
    }
}

/// What a tuple remembers after its incarnation is compacted: enough to recognise a SYN that
/// collides with TIME_WAIT.
#[derive(Clone, Debug)]
struct ClosedSummary {
    /// The closed incarnation's first index.
    first_index: u64,
    end_ns: i64,
    holders: [Option<TimeWaitHolder>; 2],
}

impl ClosedSummary {
    /// Could a SYN arriving at `now_ns` still hit one of its TIME_WAITs (slack included)?
    fn may_hold_time_wait(&self, now_ns: i64, edge_slack_ns: i64) -> bool {
        self.holders.iter().flatten().any(|holder| {
            holder.killed_ns.is_none()
                && now_ns.saturating_sub(holder.start_ns)
                    < holder.duration_ns.saturating_add(edge_slack_ns)
        })
    }
}

/// A collision seen at the new SYN; its outcome is known when the new incarnation ends.
#[derive(Clone, Debug)]
struct PendingCollision {
    holder: TimeWaitHolder,
    age_ns: i64,
    edge_case: bool,
    prev_first_index: u64,
    first_syn_frame: FrameRef,
    prediction: Prediction,
}

/// The incarnation a tuple is following, with the collision its SYN made, if any. Boxed: most
/// tuples only remember a closed one, and holding this inline would triple their size.
type Current = (Incarnation, Option<PendingCollision>);

#[derive(Debug, Default)]
struct TupleState {
    current: Option<Box<Current>>,
    closed: Option<ClosedSummary>,
}

impl TupleState {
    fn last_activity_ns(&self) -> i64 {
        let current = self.current.as_ref().map(|c| c.0.last_ns);
        let closed = self.closed.as_ref().map(|c| c.end_ns);
        current
            .or(closed)
            .unwrap_or(i64::MIN)
            .max(closed.unwrap_or(i64::MIN))
    }

    /// Which tuples go first when memory runs out: attempts on a fresh tuple not answered by a
    /// SYN-ACK (yet): what a SYN flood or a scan is made of, and the cheapest to lose (an answer
    /// that comes after all starts a midstream incarnation, marked as such); then closed tuples
    /// remembered only for the reuse interval, with no TIME_WAIT or its end passed; tuples
    /// that may still see a collision go last.
    fn eviction_class(&self, now_ns: i64, edge_slack_ns: i64) -> EvictionClass {
        match (&self.current, &self.closed) {
            (Some(current), _) if current.1.is_none() && current.0.is_failing_fresh_attempt() => {
                EvictionClass::FailingAttempt
            }
            (None, Some(closed)) if !closed.may_hold_time_wait(now_ns, edge_slack_ns) => {
                EvictionClass::NoTimeWait
            }
            _ => EvictionClass::Valuable,
        }
    }
}

/// Eviction order under memory pressure: lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum EvictionClass {
    FailingAttempt,
    NoTimeWait,
    Valuable,
}

/// Memory estimates behind `max_memory`. A tuple in the table: its key and state plus
/// hashbrown's control byte, at 8/7 of the entries for the table's maximum load.
const TUPLE_BYTES: usize = (size_of::<(TupleKey, TupleState)>() + 1) * 8 / 7;
/// An open incarnation's heap block, with the allocator's header.
const OPEN_BYTES: usize = size_of::<Current>() + 16;
/// A record of a failed attempt.
const ATTEMPT_RECORD_BYTES: usize = size_of::<ConnectionRecord>();

/// Follows the TCP connections of a set of tuples. Pure logic: segments in, records out; time
/// comes only from segment timestamps.
pub(crate) struct FlowTracker {
    config: TrackerConfig,
    /// Bytes the tuple table may take (this shard's share of `max_memory`).
    table_budget: usize,
    tuples: hashbrown::HashMap<TupleKey, TupleState, FxBuildHasher>,
    /// Tuples with an incarnation being followed (a boxed [`Current`]).
    open: usize,
    now_ns: i64,
    next_sweep_ns: Option<i64>,
    out: Outbox,
}

/// What a shard makes as it goes. [`ShardedTracker`](crate::ShardedTracker) takes the records
/// over as the shards go and numbers them at the end; until then, every id in them (a
/// connection's `uid` and `prev_uid`, a collision's `uid` and `prev_uid`) is the global input
/// index of an incarnation's first segment.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// Records of ended incarnations.
    pub connections: Vec<ConnectionRecord>,
    /// Collision records.
    pub collisions: Vec<CollisionRecord>,
    pub counters: TrackerCounters,
    /// Records of failed attempts that may still be kept.
    pub attempt_records_left: u64,
}

impl FlowTracker {
    /// A tracker for one of `shards` shards, with its share of `config.max_memory`.
    pub fn new(config: TrackerConfig, shards: usize) -> FlowTracker {
        let share = config.max_memory / shards.max(1);
        FlowTracker {
            config,
            table_budget: share / 2,
            tuples: hashbrown::HashMap::default(),
            open: 0,
            now_ns: i64::MIN,
            next_sweep_ns: None,
            out: Outbox {
                attempt_records_left: (share / 8 / ATTEMPT_RECORD_BYTES) as u64,
                ..Outbox::default()
            },
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

    /// Asks the CPU to load the table entry of `seg`'s tuple. A connection's first segment, its
    /// SYN, finds the entry cold (last touched when the tuple was last used, seconds of
    /// capture before), a wait for memory per connection: 7-8% of `analyze`'s CPU (perf,
    /// bench capture). The segments after it find the entry in the cache, so only SYNs are
    /// worth the second lookup.
    fn prefetch_tuple(&self, seg: &TcpSegment) {
        let (src, dst) = endpoints(seg);
        let hash = self.tuples.hasher().hash_one(TupleKey::new(src, dst));
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
        self.now_ns = self.now_ns.max(seg.ts_ns);
        let next_sweep = *self
            .next_sweep_ns
            .get_or_insert(seg.ts_ns.saturating_add(SWEEP_INTERVAL_NS));
        if self.now_ns >= next_sweep {
            self.sweep();
            self.next_sweep_ns = Some(self.now_ns.saturating_add(SWEEP_INTERVAL_NS));
        }

        let (src, dst) = endpoints(seg);
        let key = TupleKey::new(src, dst);
        // One hash lookup for a known tuple (the common case); evict before inserting a new one.
        if self.table_over_budget() && !self.tuples.contains_key(&key) {
            self.evict_least_valuable();
        }
        let state = self.tuples.entry(key).or_default();
        if state
            .current
            .as_ref()
            .is_some_and(|cur| cur.0.is_duplicate(seg))
        {
            self.out.counters.duplicate_segments += 1;
            return;
        }
        let flags = seg.flags;
        if flags.is_syn_only() {
            self.out.counters.syn += 1;
        }

        let continues_current = match &state.current {
            None => false,
            Some(cur) => {
                let incarnation = &cur.0;
                if flags.is_syn_only() {
                    incarnation.is_syn_retransmission(seg)
                } else if flags.is_syn_ack() {
                    incarnation.accepts_syn_ack(seg)
                } else {
                    true
                }
            }
        };
        if continues_current {
            if let Some(cur) = state.current.as_mut() {
                cur.0.update(seg, index);
            }
            return;
        }
        // A segment other than SYN / SYN-ACK on a compacted tuple, within its memory: a late
        // retransmission of the old connection, not a new one.
        if !flags.contains(twsleuth_decode::TcpFlags::SYN)
            && state.current.is_none()
            && state.closed.is_some()
        {
            self.out.counters.late_segments += 1;
            return;
        }

        // A new incarnation: the current one (if any) ends here.
        if let Some(mut previous) = state.current.take() {
            self.open -= 1;
            let forced = (!previous.0.is_closed()).then_some(CloseKind::Superseded);
            state.closed = Some(finish(&mut previous, forced, &self.config, &mut self.out));
        }
        let mut incarnation = Incarnation::start(seg, index);
        let mut pending = None;
        if let Some(closed) = &state.closed {
            incarnation.previous =
                Some((closed.first_index, seg.ts_ns.saturating_sub(closed.end_ns)));
            self.out.counters.reused_tuples += 1;
            if flags.is_syn_only() {
                pending =
                    check_time_wait(closed, seg, src, dst, &self.config, &mut self.out.counters);
            }
        }
        incarnation.update(seg, index);
        state.closed = None;
        state.current = Some(Box::new((incarnation, pending)));
        self.open += 1;
    }

    /// Ends every incarnation still followed (the capture is over): their records go out.
    pub(crate) fn end_all(&mut self) {
        self.open = 0;
        for state in std::mem::take(&mut self.tuples).into_values() {
            if let Some(mut cur) = state.current {
                finish(&mut cur, None, &self.config, &mut self.out);
            }
        }
    }

    /// What the shard has made since last asked.
    pub(crate) fn outbox(&mut self) -> &mut Outbox {
        &mut self.out
    }

    /// Compacts closed incarnations, forgets tuples whose TIME_WAIT memory has passed, evicts
    /// idle connections.
    fn sweep(&mut self) {
        let now = self.now_ns;
        let config = &self.config;
        let out = &mut self.out;
        // Closed tuples are remembered past their TIME_WAIT, up to the idle timeout, so that
        // port reuse intervals longer than TIME_WAIT (the balancer's cycle) are measured too.
        let remember_ns = config.time_wait.longest_ns().max(config.idle_timeout_ns);
        let mut compacted = 0;
        // The incarnations were last touched seconds of capture ago: each one the sweep looks at
        // is a wait for memory, 6-7% of all the CPU time (perf, bench capture) unless it was
        // asked for ahead. `retain` visits the table in the order `values` lists it; were it
        // not to, a prefetch would only miss, with the same findings.
        let followed: Vec<*const Current> = self
            .tuples
            .values()
            .filter_map(|state| state.current.as_deref().map(std::ptr::from_ref))
            .collect();
        let mut visited = 0;
        self.tuples.retain(|_, state| {
            if let Some(cur) = &state.current {
                if let Some(&ahead) = followed.get(visited + SWEEP_PREFETCH_AHEAD) {
                    prefetch(ahead);
                }
                visited += 1;
                let idle_ns = now.saturating_sub(cur.0.last_ns);
                let (compact, forced) = if cur.0.is_closed() {
                    (idle_ns >= COMPACT_AFTER_NS, None)
                } else if idle_ns >= config.idle_timeout_ns {
                    out.counters.idle_evictions += 1;
                    (true, Some(CloseKind::Evicted))
                } else {
                    (false, None)
                };
                if compact {
                    if let Some(mut cur) = state.current.take() {
                        compacted += 1;
                        state.closed = Some(finish(&mut cur, forced, config, out));
                    }
                }
            }
            match (&state.current, &state.closed) {
                (Some(_), _) => true,
                (None, Some(closed)) => now.saturating_sub(closed.end_ns) < remember_ns,
                (None, None) => false,
            }
        });
        self.open -= compacted;
        if self.table_over_budget() {
            self.evict_least_valuable();
        }
    }

    /// Is the tuple table at its share of `max_memory`, or would it be if it grew now?
    fn table_over_budget(&self) -> bool {
        let capacity = self.tuples.capacity();
        let capacity = if self.tuples.len() < capacity {
            capacity
        } else {
            // hashbrown doubles its buckets when full.
            capacity.max(3) * 2
        };
        capacity * TUPLE_BYTES + self.open * OPEN_BYTES > self.table_budget
    }

    /// Frees a tenth of the tuples (`max_memory`): failing attempts first, then tuples past
    /// their TIME_WAIT, then the rest; the least recently active first within each class.
    fn evict_least_valuable(&mut self) {
        let mut by_value: Vec<(EvictionClass, i64, TupleKey)> = self
            .tuples
            .iter()
            .map(|(key, state)| {
                let class = state.eviction_class(self.now_ns, self.config.time_wait.edge_slack_ns);
                (class, state.last_activity_ns(), *key)
            })
            .collect();
        let evict = (self.tuples.len() / 10).max(1).min(by_value.len());
        if evict == 0 {
            return;
        }
        by_value.select_nth_unstable(evict - 1);
        for (_, _, key) in by_value.into_iter().take(evict) {
            if let Some(state) = self.tuples.remove(&key) {
                self.out.counters.memory_evictions += 1;
                if let Some(mut cur) = state.current {
                    self.open -= 1;
                    let forced = (!cur.0.is_closed()).then_some(CloseKind::Evicted);
                    finish(&mut cur, forced, &self.config, &mut self.out);
                }
            }
        }
    }
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

/// Is the new SYN from `src` to `dst` hitting a TIME_WAIT? Returns the collision to follow,
/// or counts a client-side reuse.
fn check_time_wait(
    closed: &ClosedSummary,
    seg: &TcpSegment,
    src: Endpoint,
    dst: Endpoint,
    config: &TrackerConfig,
    counters: &mut TrackerCounters,
) -> Option<PendingCollision> {
    let in_window = |holder: &TimeWaitHolder| -> Option<(i64, bool)> {
        let age_ns = seg.ts_ns.saturating_sub(holder.start_ns);
        if age_ns < 0 || holder.killed_ns.is_some_and(|k| k <= seg.ts_ns) {
            return None;
        }
        if age_ns < holder.duration_ns {
            Some((age_ns, false))
        } else if age_ns < holder.duration_ns + config.time_wait.edge_slack_ns {
            Some((age_ns, true))
        } else {
            None
        }
    };
    if let Some(holder) = closed.holders.iter().flatten().find(|h| h.endpoint == dst) {
        if let Some((age_ns, edge_case)) = in_window(holder) {
            return Some(PendingCollision {
                holder: *holder,
                age_ns,
                edge_case,
                prev_first_index: closed.first_index,
                first_syn_frame: seg.frame,
                prediction: predict_linux(holder, seg),
            });
        }
    }
    if let Some(holder) = closed.holders.iter().flatten().find(|h| h.endpoint == src) {
        if in_window(holder).is_some_and(|(_, edge)| !edge) {
            counters.client_side_reuse += 1;
        }
    }
    None
}

/// What Linux does with a SYN on a TIME_WAIT socket (net/ipv4/tcp_minisocks.c,
/// `tcp_timewait_state_process`): PAWS rejects a timestamp older than `ts_recent`
/// (`tcp_paws_reject` with a window of 0); otherwise the SYN is accepted when its sequence
/// number is after `rcv_nxt` or its timestamp is newer than `ts_recent`; else it gets an ACK.
fn predict_linux(holder: &TimeWaitHolder, seg: &TcpSegment) -> Prediction {
    let tsval = seg.options.timestamps.map(|t| t.value);
    let (paws_reject, newer_timestamp) = match (holder.ts_recent, tsval) {
        (Some(recent), Some(tsval)) => (
            recent != 0 && ts_newer(recent, tsval),
            ts_newer(tsval, recent),
        ),
        _ => (false, false),
    };
    let seq_after = SeqNumber(seg.seq).is_after(holder.rcv_nxt);
    if !paws_reject && (seq_after || newer_timestamp) {
        Prediction::Accept
    } else {
        Prediction::Reject
    }
}

/// Emits the records of the incarnation a tuple followed (and of its collision, if its SYN
/// made one) and returns what the tuple keeps.
fn finish(
    (incarnation, pending): &mut Current,
    forced: Option<CloseKind>,
    config: &TrackerConfig,
    out: &mut Outbox,
) -> ClosedSummary {
    let pending = pending.take();
    let holders = incarnation.time_wait_holders(&config.time_wait);
    let record = incarnation.record(forced, &holders);
    let collision_free = pending.is_none();
    if let Some(collision) = pending {
        match collision_record(incarnation, &collision) {
            Some(c) => out.collisions.push(c),
            None => out.counters.edge_cases_dismissed += 1,
        }
    }
    let mut kept = true;
    if collision_free && incarnation.is_failing_fresh_attempt() {
        out.counters.failed_attempts += 1;
        if out.attempt_records_left == 0 {
            out.counters.failed_attempts_unrecorded += 1;
            out.counters.unrecorded_segments += record.orig_pkts + record.resp_pkts;
            kept = false;
        } else {
            out.attempt_records_left -= 1;
        }
    }
    if kept {
        out.connections.push(record);
    }
    ClosedSummary {
        first_index: incarnation.first_index,
        end_ns: incarnation.last_ns,
        holders,
    }
}

/// The collision's record, now that the new incarnation's fate is known; `None` for an edge
/// case that the holder's answer shows was outside TIME_WAIT.
fn collision_record(incarnation: &Incarnation, c: &PendingCollision) -> Option<CollisionRecord> {
    let holder = &c.holder;
    // Linux's SYN-ACK from TIME_WAIT: ISN = tw_snd_nxt + 65535 + 2, never 0.
    let signature_isn = match holder.snd_nxt.plus(65_537) {
        SeqNumber(0) => SeqNumber(1),
        isn => isn,
    };
    let isn_signature = incarnation.resp_side.isn == Some(signature_isn);
    let first_reply = incarnation.first_reply.unwrap_or(FirstReply::None);
    let old_numbers_ack = incarnation.challenge_ack == Some(holder.rcv_nxt);
    if c.edge_case && !isn_signature && !old_numbers_ack {
        return None;
    }
    let outcome = match (first_reply, incarnation.syn_ack_ns.is_some()) {
        (FirstReply::Rst, _) => Outcome::Reset,
        (_, false) => Outcome::Failed,
        (FirstReply::SynAck, true) => Outcome::Accepted,
        (FirstReply::Ack, true) => Outcome::RejectedRecovered,
        (FirstReply::None, true) => Outcome::Unanswered,
    };
    let prediction_agrees = match first_reply {
        FirstReply::SynAck => Some(c.prediction == Prediction::Accept),
        // Linux answers an unacceptable SYN with a rate-limited ACK: silence is a rejection.
        FirstReply::Ack | FirstReply::None => Some(c.prediction == Prediction::Reject),
        FirstReply::Rst => None,
    };
    Some(CollisionRecord {
        ts_ns: incarnation.first_syn_ns.unwrap_or(incarnation.start_ns),
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
        outcome,
        first_reply,
        syn_attempts: incarnation.syns,
        cost_ns: incarnation
            .syn_ack_ns
            .zip(incarnation.first_syn_ns)
            .map(|(syn_ack, syn)| syn_ack.saturating_sub(syn)),
        prediction: c.prediction,
        prediction_agrees,
        isn_signature,
    })
}
