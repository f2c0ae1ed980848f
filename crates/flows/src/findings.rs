//! Running the tracker over shards in parallel, and the numbered findings it produces.

use rayon::prelude::*;
use serde::Serialize;
use twsleuth_decode::TcpSegment;

use crate::config::TrackerConfig;
use crate::records::{CollisionRecord, ConnectionRecord};
use crate::tracker::{FlowTracker, TrackerCounters};
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

/// The flow tracker split into shards by 4-tuple, run in parallel on rayon's pool.
///
/// The findings do not depend on the number of shards: each tuple's segments reach one shard
/// in input order, and records are numbered by global input position.
pub struct ShardedTracker {
    shards: Vec<FlowTracker>,
    gathered: Gathered,
}

impl ShardedTracker {
    /// `shards` trackers sharing `config.max_memory` between them.
    pub fn new(config: &TrackerConfig, shards: usize) -> ShardedTracker {
        let shards = shards.max(1);
        ShardedTracker {
            shards: (0..shards)
                .map(|_| FlowTracker::new(config.clone(), shards))
                .collect(),
            gathered: Gathered::new(shards),
        }
    }

    /// Number of shards: the size to give [`Partitioned::new`].
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Follows the segments of the next stretch of input, shards in parallel. The records of
    /// the incarnations that ended in the previous call are gathered meanwhile.
    pub fn process(&mut self, stretch: &Partitioned) {
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
    }

    /// Ends the capture and numbers the findings.
    pub fn finish(mut self) -> Findings {
        self.shards.par_iter_mut().for_each(FlowTracker::end_all);
        self.gathered.take_over(&mut self.shards);
        self.gathered.gather();
        let mut counters = TrackerCounters::default();
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
    /// Per shard, the records taken over and not yet gathered.
    taken: Vec<(Vec<ConnectionRecord>, Vec<CollisionRecord>)>,
}

impl Gathered {
    fn new(shards: usize) -> Gathered {
        Gathered {
            connections: Vec::new(),
            collisions: Vec::new(),
            taken: vec![(Vec::new(), Vec::new()); shards],
        }
    }

    /// Takes the records of the incarnations that ended since the last call (a swap: cheap
    /// while the shards wait).
    fn take_over(&mut self, shards: &mut [FlowTracker]) {
        for (shard, (connections, collisions)) in shards.iter_mut().zip(&mut self.taken) {
            let out = shard.outbox();
            std::mem::swap(&mut out.connections, connections);
            std::mem::swap(&mut out.collisions, collisions);
        }
    }

    /// Moves the records taken over to the findings.
    fn gather(&mut self) {
        for (connections, collisions) in &mut self.taken {
            self.connections.append(connections);
            self.collisions.append(collisions);
        }
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
    /// The findings of `segments`, in input order, followed by one shard: for tests and tools
    /// that hold a capture's segments in memory.
    pub fn of_segments(config: &TrackerConfig, segments: &[TcpSegment]) -> Findings {
        let mut tracker = ShardedTracker::new(config, 1);
        let mut stretch = Partitioned::new(1);
        for (index, segment) in segments.iter().enumerate() {
            stretch.push(index as u64, *segment);
        }
        tracker.process(&stretch);
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
