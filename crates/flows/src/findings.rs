//! Running the tracker over shards in parallel, and the numbered findings it produces.

use rayon::prelude::*;
use serde::Serialize;
use twsleuth_decode::TcpSegment;

use crate::config::TrackerConfig;
use crate::records::{CollisionRecord, ConnectionRecord};
use crate::tracker::{ATTEMPT_RECORD_BYTES, EvictionClass, FlowTracker, TrackerCounters};
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

/// The flow tracker split into shards by 4-tuple, run in parallel on rayon's pool.
///
/// The findings do not depend on the number of shards: each tuple's segments reach one shard
/// in input order, every decision about a tuple comes from its own segments' times, records
/// are numbered by global input position, and what depends on all tuples at once (sweeps,
/// the memory budget, the records of failed attempts kept) is decided between stretches, on
/// the capture's global clock, over all shards together.
pub struct ShardedTracker {
    shards: Vec<FlowTracker>,
    gathered: Gathered,
    /// Bytes the tuple tables may take together: half of `max_memory`.
    table_budget: usize,
    /// The capture's clock: the latest segment time of the stretches followed so far.
    now_ns: i64,
    next_sweep_ns: Option<i64>,
}

impl ShardedTracker {
    /// `shards` trackers sharing `config.max_memory` between them.
    pub fn new(config: &TrackerConfig, shards: usize) -> ShardedTracker {
        let shards = shards.max(1);
        ShardedTracker {
            shards: (0..shards)
                .map(|_| FlowTracker::new(config.clone()))
                .collect(),
            gathered: Gathered::new(
                shards,
                (config.max_memory / 8 / ATTEMPT_RECORD_BYTES) as u64,
            ),
            table_budget: config.max_memory / 2,
            now_ns: i64::MIN,
            next_sweep_ns: None,
        }
    }

    /// Number of shards: the size to give [`Partitioned::new`].
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Follows the segments of the next stretch of input, shards in parallel. The records of
    /// the incarnations that ended in the previous call are gathered meanwhile. For findings
    /// that do not depend on the number of shards, the stretches must not: cut the input
    /// into stretches of a fixed number of segments.
    pub fn process(&mut self, stretch: &Partitioned) {
        self.between_stretches();
        self.gathered.take_over(&mut self.shards);
        let (shards, gathered) = (&mut self.shards, &mut self.gathered);
        rayon::join(
            || {
                shards
                    .par_iter_mut()
                    .zip(&stretch.per_shard)
                    .for_each(|(tracker, segments)| tracker.process_all(segments))
            },
            || gathered.gather(),
        );
        self.now_ns = self
            .shards
            .iter()
            .map(FlowTracker::latest_ns)
            .fold(self.now_ns, i64::max);
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
            let bytes = counts[class as usize] * class.bytes();
            if bytes >= need {
                cut = Some((class, need.div_ceil(class.bytes())));
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

    /// Ends the capture and numbers the findings.
    pub fn finish(mut self) -> Findings {
        let now = self.now_ns;
        self.shards
            .par_iter_mut()
            .for_each(|shard| shard.end_all(now));
        self.gathered.take_over(&mut self.shards);
        self.gathered.gather();
        let mut counters = self.gathered.counters;
        for shard in &mut self.shards {
            counters.merge(&shard.outbox().counters);
        }
        let Gathered {
            mut connections,
            mut collisions,
            ..
        } = self.gathered;
        let (ids, ()) = rayon::join(
            || sort_by_key_moving_once(&mut connections, |c| c.uid),
            || {
                sort_by_key_moving_once(&mut collisions, |c| c.uid);
            },
        );
        number_densely(&ids, &mut connections, &mut collisions);
        Findings {
            connections,
            collisions,
            counters,
        }
    }
}

/// The records of all shards, gathered while the shards work on the next stretch: moving
/// them at the end would mean copying hundreds of megabytes after the capture is read.
struct Gathered {
    connections: Vec<ConnectionRecord>,
    collisions: Vec<CollisionRecord>,
    /// Per shard, the records taken over and not yet gathered: connections, failed attempts,
    /// collisions.
    taken: Vec<Taken>,
    /// Records of failed attempts that may still be kept.
    attempt_records_left: u64,
    /// What gathering counted (failed attempts only counted).
    counters: TrackerCounters,
}

type Taken = (
    Vec<ConnectionRecord>,
    Vec<ConnectionRecord>,
    Vec<CollisionRecord>,
);

impl Gathered {
    fn new(shards: usize, attempt_records: u64) -> Gathered {
        Gathered {
            connections: Vec::new(),
            collisions: Vec::new(),
            taken: vec![(Vec::new(), Vec::new(), Vec::new()); shards],
            attempt_records_left: attempt_records,
            counters: TrackerCounters::default(),
        }
    }

    /// Takes the records of the incarnations that ended since the last call (a swap: cheap
    /// while the shards wait).
    fn take_over(&mut self, shards: &mut [FlowTracker]) {
        for (shard, (connections, attempts, collisions)) in shards.iter_mut().zip(&mut self.taken) {
            let out = shard.outbox();
            std::mem::swap(&mut out.connections, connections);
            std::mem::swap(&mut out.attempts, attempts);
            std::mem::swap(&mut out.collisions, collisions);
        }
    }

    /// Moves the records taken over to the findings. Failed attempts are kept in input order
    /// while their budget lasts, whatever shard they came from; beyond, only counted.
    fn gather(&mut self) {
        let mut attempts = Vec::new();
        for (connections, shard_attempts, collisions) in &mut self.taken {
            self.connections.append(connections);
            attempts.append(shard_attempts);
            self.collisions.append(collisions);
        }
        if attempts.len() as u64 > self.attempt_records_left {
            attempts.sort_unstable_by_key(|record| record.uid);
            for dropped in attempts.drain(self.attempt_records_left as usize..) {
                self.counters.failed_attempts_unrecorded += 1;
                self.counters.unrecorded_segments += dropped.orig_pkts + dropped.resp_pkts;
            }
        }
        self.attempt_records_left -= attempts.len() as u64;
        self.connections.append(&mut attempts);
    }
}

/// Everything the tracker found, numbered and in order.
#[derive(Debug, Serialize)]
pub struct Findings {
    /// Connection incarnations in order of their first segment; `uid` is the position.
    pub connections: Vec<ConnectionRecord>,
    /// Collisions in order of their first SYN.
    pub collisions: Vec<CollisionRecord>,
    /// What the tracker counted.
    pub counters: TrackerCounters,
}

impl Findings {
    /// The findings of `segments`, in input order, followed by one shard in one stretch: for
    /// tests and tools that hold a capture's segments in memory.
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
        for (position, chunk) in segments.chunks(stretch_segments.max(1)).enumerate() {
            stretch.clear();
            let first = position * stretch_segments.max(1);
            for (offset, segment) in chunk.iter().enumerate() {
                stretch.push((first + offset) as u64, *segment);
            }
            tracker.process(&stretch);
        }
        tracker.finish()
    }
}

/// Replaces the global input indices that identify incarnations with dense ids (each
/// connection's `uid` its position), the connections sorted by index and `ids` their indices
/// in that order. A link to an incarnation without a record (a `prev_uid` to a failed attempt
/// only counted) is dropped.
fn number_densely(
    ids: &[u64],
    connections: &mut [ConnectionRecord],
    collisions: &mut [CollisionRecord],
) {
    let dense = |id: u64| ids.binary_search(&id).ok().map(|position| position as u64);
    connections
        .par_iter_mut()
        .enumerate()
        .for_each(|(position, connection)| {
            connection.uid = position as u64;
            connection.prev_uid = connection.prev_uid.and_then(dense);
        });
    collisions.par_iter_mut().for_each(|collision| {
        collision.uid = dense(collision.uid).unwrap_or(u64::MAX);
        collision.prev_uid = dense(collision.prev_uid).unwrap_or(u64::MAX);
    });
}

/// Sorts large records by a `u64` key, moving each record at most once: the (key, position)
/// pairs are sorted instead, then the records are put in place from the first position to the
/// last, each swapped with the one it displaces. Quicksort on the records themselves would
/// move each ~240-byte record log n times, and a sorted copy would double the records' memory
/// at the end of the run. Filling positions in order, rather than following the permutation's
/// cycles, keeps the accesses near each other: records end a few seconds after they start, so
/// each lies a few thousand places from its sorted one, while a cycle wanders over the whole
/// vector, a miss at every step (sorting the bench's 500 k connections and 470 k collisions at
/// the end of the run: 62–86 ms that way, 52–56 ms this way). Returns the keys in order.
fn sort_by_key_moving_once<T: Send>(records: &mut [T], key: impl Fn(&T) -> u64 + Sync) -> Vec<u64> {
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
    // Collected in place: no second allocation at the run's peak of memory.
    order.into_iter().map(|(key, _)| key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let keys = sort_by_key_moving_once(&mut values, |v| *v);
        assert_eq!(values, expected);
        assert_eq!(keys, expected);
        let mut cycle = vec![2u64, 0, 1];
        sort_by_key_moving_once(&mut cycle, |v| *v);
        assert_eq!(cycle, [0, 1, 2]);
    }
}
