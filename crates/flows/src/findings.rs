//! Running the tracker over shards in parallel, and the numbered findings it produces.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;
use serde::Serialize;
use twsleuth_decode::TcpSegment;

use crate::config::TrackerConfig;
use crate::records::{CollisionRecord, ConnectionRecord};
use crate::tracker::{FlowTracker, Outbox, TrackerCounters, fill, filled};
use crate::tuple::{Endpoint, TupleKey};

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
        let shard = TupleKey::shard_of(
            Endpoint {
                ip: seg.src,
                port: seg.src_port,
            },
            Endpoint {
                ip: seg.dst,
                port: seg.dst_port,
            },
            self.per_shard.len(),
        );
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
    placed: Placed,
}

impl ShardedTracker {
    /// `shards` trackers sharing `config.max_memory` between them.
    pub fn new(config: &TrackerConfig, shards: usize) -> ShardedTracker {
        let shards = shards.max(1);
        ShardedTracker {
            shards: (0..shards)
                .map(|_| FlowTracker::new(config.clone(), shards))
                .collect(),
            placed: Placed::new(shards),
        }
    }

    /// Number of shards: the size to give [`Partitioned::new`].
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Follows the segments of consecutive stretches of input, shards in parallel. The records
    /// of the incarnations that ended in the previous call are put in place meanwhile.
    pub fn process(&mut self, stretches: &[Partitioned]) {
        self.placed.take_over(&mut self.shards);
        let (shards, placed) = (&mut self.shards, &mut self.placed);
        rayon::join(
            || {
                shards
                    .par_iter_mut()
                    .enumerate()
                    .for_each(|(shard, tracker)| {
                        for stretch in stretches {
                            for (index, seg) in &stretch.per_shard[shard] {
                                tracker.process(seg, *index);
                            }
                        }
                    })
            },
            || placed.place(),
        );
    }

    /// Ends the capture and numbers the findings.
    pub fn finish(mut self) -> Findings {
        self.shards.par_iter_mut().for_each(FlowTracker::end_all);
        self.placed.take_over(&mut self.shards);
        self.placed.place();
        let mut counters = TrackerCounters::default();
        for shard in &mut self.shards {
            counters.merge(&shard.outbox().counters);
        }
        let Placed {
            mut connections,
            collisions,
            ..
        } = self.placed;
        let mut collisions = filled(collisions);
        sort_by_key_moving_once(&mut connections, |c| c.uid);
        number_densely(&mut connections, &mut collisions);
        Findings {
            connections,
            collisions,
            counters,
        }
    }
}

/// The findings in the making: every incarnation gets its id (its rank by first segment over
/// all shards) as soon as every shard has followed the segments before it, and its record
/// that id when it ends. Records are kept in the order they ended, dense: the failed attempts
/// that are only counted take no room. Collisions, few, get a slot in their final order.
struct Placed {
    connections: Vec<ConnectionRecord>,
    /// Incarnations numbered so far: the id of the next one.
    next_id: u64,
    collisions: Vec<Option<CollisionRecord>>,
    /// Per shard, the id of each of its incarnations, by position.
    ids: Vec<Vec<u64>>,
    /// Per shard, the slot of each of its collisions, by number.
    collision_slots: Vec<Vec<usize>>,
    /// Per shard, the records taken over and not yet put in place.
    taken: Vec<Outbox>,
}

impl Placed {
    fn new(shards: usize) -> Placed {
        Placed {
            connections: Vec::new(),
            next_id: 0,
            collisions: Vec::new(),
            ids: vec![Vec::new(); shards],
            collision_slots: vec![Vec::new(); shards],
            taken: (0..shards).map(|_| Outbox::default()).collect(),
        }
    }

    /// Numbers what the shards started since the last call and takes the records of what
    /// ended. Each shard's new incarnations (and collisions) are in order; merged, they are
    /// in global order.
    fn take_over(&mut self, shards: &mut [FlowTracker]) {
        for (shard, taken) in shards.iter_mut().zip(&mut self.taken) {
            let out = shard.outbox();
            taken.started.clear();
            taken.collided.clear();
            std::mem::swap(&mut out.started, &mut taken.started);
            std::mem::swap(&mut out.collided, &mut taken.collided);
            std::mem::swap(&mut out.connections, &mut taken.connections);
            std::mem::swap(&mut out.collisions, &mut taken.collisions);
        }
        let taken = &self.taken;
        let mut next_id = self.next_id;
        visit_in_order(
            taken.iter().map(|t| t.started.len()),
            |shard, at| taken[shard].started[at],
            |shard| {
                self.ids[shard].push(next_id);
                next_id += 1;
            },
        );
        // Collisions are in order of their incarnations' ids.
        let ids = &self.ids;
        let mut next_slot = self.collisions.len();
        visit_in_order(
            taken.iter().map(|t| t.collided.len()),
            |shard, at| ids[shard][taken[shard].collided[at]],
            |shard| {
                self.collision_slots[shard].push(next_slot);
                next_slot += 1;
            },
        );
        self.next_id = next_id;
        self.collisions.resize_with(next_slot, || None);
    }

    /// Puts the records taken over in their slots, with every id made global.
    fn place(&mut self) {
        for ((taken, ids), collision_slots) in self
            .taken
            .iter_mut()
            .zip(&self.ids)
            .zip(&self.collision_slots)
        {
            let id = |position: u64| {
                usize::try_from(position)
                    .ok()
                    .and_then(|p| ids.get(p))
                    .copied()
            };
            for (position, mut record) in taken.connections.drain(..) {
                if let Some(uid) = ids.get(position) {
                    record.uid = *uid;
                    record.prev_uid = record.prev_uid.and_then(id);
                    self.connections.push(record);
                }
            }
            for (number, mut record) in taken.collisions.drain(..) {
                if let Some(&slot) = collision_slots.get(number) {
                    record.uid = id(record.uid).unwrap_or(u64::MAX);
                    record.prev_uid = id(record.prev_uid).unwrap_or(u64::MAX);
                    fill(&mut self.collisions, slot, record);
                }
            }
        }
    }
}

/// Visits the items of several lists, each in increasing order of `key(list, at)`, in
/// increasing order over all of them, calling `visit(list)` for each.
fn visit_in_order(
    lens: impl Iterator<Item = usize>,
    key: impl Fn(usize, usize) -> u64,
    mut visit: impl FnMut(usize),
) {
    let lens: Vec<usize> = lens.collect();
    let mut next = vec![0; lens.len()];
    let mut heads: BinaryHeap<Reverse<(u64, usize)>> = (0..lens.len())
        .filter(|&list| lens[list] > 0)
        .map(|list| Reverse((key(list, 0), list)))
        .collect();
    while let Some(Reverse((_, list))) = heads.pop() {
        visit(list);
        next[list] += 1;
        if next[list] < lens[list] {
            heads.push(Reverse((key(list, next[list]), list)));
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
        tracker.process(&[stretch]);
        tracker.finish()
    }
}

/// Makes the ids of records sorted by id dense (each connection's `uid` its position), where
/// failed attempts left without a record made gaps. A link to an incarnation without a record
/// (a `prev_uid` to a failed attempt) is dropped.
fn number_densely(connections: &mut [ConnectionRecord], collisions: &mut [CollisionRecord]) {
    let last = connections.last().map_or(0, |c| c.uid + 1);
    if last == connections.len() as u64 {
        return;
    }
    let ids: Vec<u64> = connections.iter().map(|c| c.uid).collect();
    let dense = |id: u64| ids.binary_search(&id).ok().map(|position| position as u64);
    for (position, connection) in connections.iter_mut().enumerate() {
        connection.uid = position as u64;
        connection.prev_uid = connection.prev_uid.and_then(dense);
    }
    for collision in collisions {
        collision.uid = dense(collision.uid).unwrap_or(u64::MAX);
        collision.prev_uid = dense(collision.prev_uid).unwrap_or(u64::MAX);
    }
}

/// Sorts large records by a `u64` key, moving each record at most once: the (key, position)
/// pairs are sorted instead, then the permutation is applied in place cycle by cycle.
/// Quicksort on the records themselves would move each ~240-byte record log n times.
fn sort_by_key_moving_once<T: Send>(records: &mut [T], key: impl Fn(&T) -> u64 + Sync) {
    let mut order: Vec<(u64, usize)> = records
        .iter()
        .enumerate()
        .map(|(position, record)| (key(record), position))
        .collect();
    order.par_sort_unstable();
    // source[t]: where the record that belongs at t is now.
    let mut source: Vec<usize> = order.into_iter().map(|(_, position)| position).collect();
    for start in 0..source.len() {
        let mut target = start;
        while source[target] != start {
            let from = source[target];
            records.swap(target, from);
            source[target] = target;
            target = from;
        }
        source[target] = target;
    }
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
        sort_by_key_moving_once(&mut values, |v| *v);
        assert_eq!(values, expected);
        let mut cycle = vec![2u64, 0, 1];
        sort_by_key_moving_once(&mut cycle, |v| *v);
        assert_eq!(cycle, [0, 1, 2]);
    }
}
