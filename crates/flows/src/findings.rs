//! Running the tracker over shards in parallel, and the records it produces as the input
//! goes.

use std::net::IpAddr;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;
use twsleuth_decode::TcpSegment;

use crate::config::TrackerConfig;
use crate::join::ViewJoiner;
use crate::records::{CollisionRecord, ConnectionRecord};
use crate::tracker::{
    EvictionClass, FlowTracker, Occupancy, TrackerCounters, segment_growth_bytes,
};
use crate::tuple::{TupleKey, endpoints};

/// A segment with its position in the merged input.
pub type IndexedSegment = (u64, TcpSegment);

/// Segments of one stretch of input, split by shard, each part in input order.
#[derive(Debug)]
pub struct Partitioned {
    per_shard: Vec<Vec<IndexedSegment>>,
}

impl Partitioned {
    /// An empty partition for `shards` shards.
    pub fn new(shards: usize) -> Partitioned {
        Partitioned {
            per_shard: (0..shards.max(1)).map(|_| Vec::new()).collect(),
        }
    }

    /// Adds a segment to its shard's part.
    pub fn push(&mut self, index: u64, seg: TcpSegment) {
        let (src, dst) = endpoints(&seg);
        let shard = TupleKey::shard_of(src, dst, self.per_shard.len());
        self.per_shard[shard].push((index, seg));
    }

    /// Empties every part, keeping the memory for the next stretch.
    pub fn clear(&mut self) {
        self.per_shard.iter_mut().for_each(Vec::clear);
    }

    /// Segments held.
    pub fn len(&self) -> usize {
        self.per_shard.iter().map(Vec::len).sum()
    }

    /// True when no segment is held.
    pub fn is_empty(&self) -> bool {
        self.per_shard.iter().all(Vec::is_empty)
    }
}

/// How often (capture time) the shards look for tuples to compact, forget or evict.
const SWEEP_INTERVAL_NS: i64 = 5_000_000_000;
/// The longest stretch of segments between two checks of the memory budget.
const MAX_STRETCH_SEGMENTS: usize = 1 << 16;
/// The shortest: shorter stretches would leave the threads waiting on each other.
const MIN_STRETCH_SEGMENTS: usize = 1 << 12;
/// The share of `max_memory` one stretch may add before the budget is checked again: between
/// two checks a SYN flood adds an open tuple per segment ([`segment_growth_bytes`], some
/// 1.9 KB), so 65,536 segments could add 120 MiB, half of a 256 MiB budget (the flood
/// benchmark's peak RSS was 486 MiB at `--max-memory 256MiB`).
const STRETCH_SHARE_OF_BUDGET: usize = 8;

/// The flow tracker split into shards by 4-tuple, run in parallel on rayon's pool.
///
/// The findings do not depend on the number of shards: each tuple's segments reach one shard
/// in input order, every decision about a tuple comes from its own segments' times, records
/// are named by global input position, and what depends on all tuples at once (sweeps, the
/// memory budget) is decided between stretches, on the capture's global clock, over all shards
/// together. Records leave as their incarnations end ([`ShardedTracker::take_finished`]): the
/// tracker's memory is its live state, whatever the capture's length.
pub struct ShardedTracker {
    shards: Vec<FlowTracker>,
    /// Bytes the tuple tables may take together: a quarter of `max_memory`.
    table_budget: usize,
    /// The capture's clock: the latest segment time of the stretches followed so far.
    now_ns: i64,
    next_sweep_ns: Option<i64>,
    /// Joins the views of one connection, once the input shows more than one view (capture
    /// points, VLANs, tunnels); until then records leave as they are.
    joiner: Option<ViewJoiner>,
    /// How long a record waits for its other views ([`TrackerConfig::view_join_wait_ns`]).
    join_wait_ns: i64,
    /// [`TrackerConfig::ladders`]: what a tuple takes.
    ladders: bool,
}

impl ShardedTracker {
    /// `shards` trackers sharing `config.max_memory` between them.
    pub fn new(config: &TrackerConfig, shards: usize) -> ShardedTracker {
        let shards = shards.max(1);
        ShardedTracker {
            shards: (0..shards)
                .map(|_| FlowTracker::new(config.clone()))
                .collect(),
            table_budget: config.max_memory / 4,
            now_ns: i64::MIN,
            next_sweep_ns: None,
            joiner: (config.capture_points.iter().any(|&point| point > 0))
                .then(ViewJoiner::default),
            join_wait_ns: config.view_join_wait_ns,
            ladders: config.ladders,
        }
    }

    /// The capture's clock: the latest segment time followed so far.
    pub fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// Number of shards: the size to give [`Partitioned::new`].
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// How many segments a stretch given to [`ShardedTracker::process`] should hold at most:
    /// the budget is kept between stretches, so what one stretch can add must fit in
    /// `max_memory` beside the tables (an eighth of it, within 4,096-65,536 segments). It
    /// depends only on the configuration, as findings independent of the number of threads
    /// need.
    pub fn stretch_segments(config: &TrackerConfig) -> usize {
        (config.max_memory / STRETCH_SHARE_OF_BUDGET / segment_growth_bytes(config))
            .clamp(MIN_STRETCH_SEGMENTS, MAX_STRETCH_SEGMENTS)
    }

    /// Follows the segments of the next stretch of input, shards in parallel. For findings
    /// that do not depend on the number of shards, the stretches must not: cut the input
    /// into stretches of a fixed number of segments. The records of the incarnations that
    /// ended wait in the shards for [`ShardedTracker::take_finished`].
    pub fn process(&mut self, stretch: &Partitioned) {
        self.between_stretches();
        self.shards
            .par_iter_mut()
            .zip(&stretch.per_shard)
            .for_each(|(tracker, segments)| tracker.process_all(segments));
        self.now_ns = self
            .shards
            .iter()
            .map(FlowTracker::latest_ns)
            .fold(self.now_ns, i64::max);
        if self.joiner.is_none() && self.several_views() {
            self.joiner = Some(ViewJoiner::default());
        }
        if let Some(joiner) = &mut self.joiner {
            joiner.take(Self::drain(&mut self.shards), self.now_ns);
            joiner.release(self.now_ns, self.join_wait_ns);
        }
    }

    /// Whether the tuples followed so far were seen in more than one view. Decided over all
    /// shards together, so that it does not depend on their number.
    fn several_views(&self) -> bool {
        let mut first = None;
        for (view, several) in self.shards.iter().map(FlowTracker::views) {
            if several {
                return true;
            }
            match (first, view) {
                (None, view) => first = view,
                (Some(a), Some(b)) if a != b => return true,
                _ => {}
            }
        }
        false
    }

    /// The records the shards made since last asked.
    fn drain(shards: &mut [FlowTracker]) -> Finished {
        // Room for them all at once: grown by appending, the vectors were copied again at
        // each doubling (with the page faults of each new block, 3-4% of `analyze`'s CPU).
        let (connections, collisions) = shards.iter_mut().fold((0, 0), |(n, m), shard| {
            let out = shard.outbox();
            (n + out.connections.len(), m + out.collisions.len())
        });
        let mut finished = Finished {
            connections: Vec::with_capacity(connections),
            collisions: Vec::with_capacity(collisions),
        };
        for shard in shards {
            let out = shard.outbox();
            finished.connections.append(&mut out.connections);
            finished.collisions.append(&mut out.collisions);
        }
        finished
    }

    /// Sweeps every shard on the capture's clock, and keeps the tuple tables within their
    /// budget.
    fn between_stretches(&mut self) {
        let now = self.now_ns;
        if now == i64::MIN {
            return;
        }
        let next_sweep = *self
            .next_sweep_ns
            .get_or_insert(now.saturating_add(SWEEP_INTERVAL_NS));
        if now >= next_sweep {
            self.shards
                .par_iter_mut()
                .for_each(|shard| shard.sweep(now));
            self.next_sweep_ns = Some(now.saturating_add(SWEEP_INTERVAL_NS));
        }
        self.keep_within_budget(now);
    }

    /// When the tuple tables together exceed their budget, evicts the least valuable tuples
    /// of all shards ([`EvictionClass`] order, then least recently active first) down to 90%
    /// of it. The tuples chosen depend only on the tuples, not on how they are sharded: ties
    /// at the cut go together.
    fn keep_within_budget(&mut self, now: i64) {
        let used = |shards: &[FlowTracker]| -> usize {
            shards.iter().map(FlowTracker::memory_bytes).sum()
        };
        if used(&self.shards) <= self.table_budget {
            return;
        }
        self.shards
            .par_iter_mut()
            .for_each(FlowTracker::compact_closed);
        let used = used(&self.shards);
        if used <= self.table_budget {
            return;
        }
        let mut need = used - self.table_budget / 10 * 9;
        let counts = self
            .shards
            .par_iter()
            .map(|shard| shard.eviction_census(now, None).0)
            .reduce(
                || [0; EvictionClass::ALL.len()],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        let mut cut = None;
        for class in EvictionClass::ALL {
            let bytes = counts[class as usize] * class.bytes(self.ladders);
            if bytes >= need {
                cut = Some((class, need.div_ceil(class.bytes(self.ladders))));
                break;
            }
            need -= bytes;
        }
        let (class, until_ns) = match cut {
            Some((class, count)) => {
                let mut times: Vec<i64> = self
                    .shards
                    .par_iter()
                    .flat_map_iter(|shard| shard.eviction_census(now, Some(class)).1)
                    .collect();
                let until = if count >= times.len() {
                    i64::MAX
                } else {
                    *times.select_nth_unstable(count.max(1) - 1).1
                };
                (class, until)
            }
            None => (EvictionClass::TimeWait, i64::MAX),
        };
        self.shards
            .par_iter_mut()
            .for_each(|shard| shard.evict(now, class, until_ns));
    }

    /// The tuples of each source address now (on the capture's clock): open, or held in
    /// TIME_WAIT by the server or by the source; sorted by address.
    pub fn occupancy(&self) -> Vec<(IpAddr, Occupancy)> {
        let mut by_source = FxHashMap::default();
        for shard in &self.shards {
            shard.occupancy(self.now_ns, &mut by_source);
        }
        let mut out: Vec<(IpAddr, Occupancy)> = by_source.into_iter().collect();
        out.sort_by_key(|(source, _)| *source);
        out
    }

    /// Takes the records of the incarnations that ended since the last call: which ones
    /// depends only on the input; their order within the batch on the sharding (each tuple's
    /// in the order they ended). Sort by `uid` for the order the incarnations began.
    /// Where the input shows one connection in several views, its records wait (in the
    /// tracker, up to [`TrackerConfig::view_join_wait_ns`] of capture time) for those of the
    /// other views and leave joined: one record of the first view, with the others as
    /// evidence.
    pub fn take_finished(&mut self) -> Finished {
        match &mut self.joiner {
            Some(joiner) => joiner.take_ready(),
            None => Self::drain(&mut self.shards),
        }
    }

    /// Ends the capture: the last records, and what the tracker counted.
    pub fn finish(mut self) -> (Finished, TrackerCounters) {
        let now = self.now_ns;
        self.shards
            .par_iter_mut()
            .for_each(|shard| shard.end_all(now));
        if self.joiner.is_none() && self.several_views() {
            self.joiner = Some(ViewJoiner::default());
        }
        let mut counters = TrackerCounters::default();
        let finished = match &mut self.joiner {
            Some(joiner) => {
                joiner.take(Self::drain(&mut self.shards), now);
                joiner.release_all();
                for shard in &mut self.shards {
                    counters.merge(&shard.outbox().counters);
                }
                counters.count_off(&joiner.counted_twice);
                joiner.take_ready()
            }
            None => {
                for shard in &mut self.shards {
                    counters.merge(&shard.outbox().counters);
                }
                Self::drain(&mut self.shards)
            }
        };
        (finished, counters)
    }
}

/// Records of incarnations that ended.
#[derive(Debug, Default)]
pub struct Finished {
    /// Connection records.
    pub connections: Vec<ConnectionRecord>,
    /// Collision records.
    pub collisions: Vec<CollisionRecord>,
}

/// Everything the tracker found, in order: for tests and tools that hold a capture's
/// segments in memory (an analysis of a capture takes the records as they come, with
/// [`ShardedTracker::take_finished`], in memory that does not grow with the capture).
#[derive(Debug, Serialize)]
pub struct Findings {
    /// Connection incarnations, in the order they began (`uid`).
    pub connections: Vec<ConnectionRecord>,
    /// Collisions, in the order of their incarnations (`uid`).
    pub collisions: Vec<CollisionRecord>,
    /// What the tracker counted.
    pub counters: TrackerCounters,
}

impl Findings {
    /// The findings of `segments`, in input order, followed by one shard in one stretch.
    pub fn of_segments(config: &TrackerConfig, segments: &[TcpSegment]) -> Findings {
        Findings::of_segments_in_stretches(config, segments, 1, segments.len())
    }

    /// The findings of `segments`, in input order, followed by `shards` shards in stretches
    /// of `stretch_segments` segments (sweeps and evictions happen between stretches).
    pub fn of_segments_in_stretches(
        config: &TrackerConfig,
        segments: &[TcpSegment],
        shards: usize,
        stretch_segments: usize,
    ) -> Findings {
        let mut tracker = ShardedTracker::new(config, shards);
        let mut stretch = Partitioned::new(tracker.shards());
        let mut all = Finished::default();
        let stretch_segments = stretch_segments.max(1);
        for (position, chunk) in segments.chunks(stretch_segments).enumerate() {
            stretch.clear();
            let first = position * stretch_segments;
            for (offset, segment) in chunk.iter().enumerate() {
                stretch.push((first + offset) as u64, *segment);
            }
            tracker.process(&stretch);
            all.append(tracker.take_finished());
        }
        let (last, counters) = tracker.finish();
        all.append(last);
        Findings::new(all, counters)
    }

    /// The findings of all these records, put in order.
    pub fn new(mut finished: Finished, counters: TrackerCounters) -> Findings {
        rayon::join(
            || sort_by_key_moving_once(&mut finished.connections, |c| c.uid),
            || sort_by_key_moving_once(&mut finished.collisions, |c| c.uid),
        );
        Findings {
            connections: finished.connections,
            collisions: finished.collisions,
            counters,
        }
    }
}

impl Finished {
    /// Adds another batch's records to these.
    pub fn append(&mut self, mut other: Finished) {
        self.connections.append(&mut other.connections);
        self.collisions.append(&mut other.collisions);
    }
}

/// Sorts large records by a `u64` key, moving each record at most once: the (key, position)
/// pairs are sorted instead, then the records are put in place from the first position to the
/// last, each swapped with the one it displaces. Quicksort on the records themselves would
/// move each ~240-byte record log n times, and a sorted copy would double the records' memory
/// at the end of the run. Filling positions in order, rather than following the permutation's
/// cycles, keeps the accesses near each other: records end a few seconds after they start, so
/// each lies a few thousand places from its sorted one, while a cycle wanders over the whole
/// vector, a miss at every step (sorting the bench's 500 k connections and 470 k collisions at
/// the end of the run: 62–86 ms that way, 52–56 ms this way).
pub fn sort_by_key_moving_once<T: Send>(records: &mut [T], key: impl Fn(&T) -> u64 + Sync) {
    // Positions as u32 halve the bookkeeping; 4 G records would take half a terabyte.
    assert!(u32::try_from(records.len()).is_ok(), "too many records");
    let mut order: Vec<(u64, u32)> = records
        .iter()
        .enumerate()
        .map(|(position, record)| (key(record), position as u32))
        .collect();
    order.par_sort_unstable();
    // Records are named by their position before sorting. located[r]: where record r is now;
    // occupant[p]: which record is now at p.
    let mut located: Vec<u32> = (0..records.len() as u32).collect();
    let mut occupant = located.clone();
    for (target, &(_, record)) in order.iter().enumerate() {
        let from = located[record as usize] as usize;
        records.swap(target, from);
        let displaced = occupant[target];
        occupant[from] = displaced;
        located[displaced as usize] = from as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_stretch_can_add_fits_in_its_share_of_the_budget() {
        for max_memory in [1 << 20, 64 << 20, 256 << 20, 1 << 30, 16 << 30] {
            for ladders in [false, true] {
                let config = TrackerConfig {
                    max_memory,
                    ladders,
                    ..TrackerConfig::default()
                };
                let segments = ShardedTracker::stretch_segments(&config);
                let growth = segment_growth_bytes(&config);
                assert!(
                    (MIN_STRETCH_SEGMENTS..=MAX_STRETCH_SEGMENTS).contains(&segments),
                    "{segments} segments at {max_memory} bytes"
                );
                if segments > MIN_STRETCH_SEGMENTS {
                    assert!(
                        segments * growth <= max_memory / STRETCH_SHARE_OF_BUDGET,
                        "{segments} segments of {growth} bytes at {max_memory} bytes"
                    );
                }
            }
        }
        // The default 256 MiB cannot take stretches of 65,536 new tuples.
        let segments = ShardedTracker::stretch_segments(&TrackerConfig::default());
        assert!(segments < MAX_STRETCH_SEGMENTS / 2, "{segments}");
    }

    #[test]
    fn permutation_sort_matches_a_plain_sort() {
        let mut state = 12345u64;
        let mut values: Vec<u64> = (0..1000)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1);
                state >> 40
            })
            .collect();
        let mut expected = values.clone();
        expected.sort_unstable();
        sort_by_key_moving_once(&mut values, |v| *v);
        assert_eq!(values, expected);
        let mut cycle = vec![2u64, 0, 1];
        sort_by_key_moving_once(&mut cycle, |v| *v);
        assert_eq!(cycle, [0, 1, 2]);
    }
}
