//! Running the tracker over shards in parallel, and the numbered findings it produces.

use rayon::prelude::*;
use serde::Serialize;
use twsleuth_decode::TcpSegment;

use crate::config::TrackerConfig;
use crate::records::{CollisionRecord, ConnectionRecord};
use crate::tracker::{FlowTracker, ShardOutput, TrackerCounters};
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
        let key = TupleKey::new(
            Endpoint {
                ip: seg.src,
                port: seg.src_port,
            },
            Endpoint {
                ip: seg.dst,
                port: seg.dst_port,
            },
        );
        let shard = key.shard(self.per_shard.len());
        self.per_shard[shard].push((index, seg));
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
/// in input order, and records are numbered by global input position at the end.
pub struct ShardedTracker {
    shards: Vec<FlowTracker>,
}

impl ShardedTracker {
    /// `shards` trackers sharing `config.max_flows` between them.
    pub fn new(config: &TrackerConfig, shards: usize) -> ShardedTracker {
        let shards = shards.max(1);
        let per_shard = config.max_flows.div_ceil(shards);
        ShardedTracker {
            shards: (0..shards)
                .map(|_| FlowTracker::new(config.clone(), per_shard))
                .collect(),
        }
    }

    /// Number of shards: the size to give [`Partitioned::new`].
    pub fn shards(&self) -> usize {
        self.shards.len()
    }

    /// Follows the segments of consecutive stretches of input, shards in parallel.
    pub fn process(&mut self, stretches: &[Partitioned]) {
        self.shards
            .par_iter_mut()
            .enumerate()
            .for_each(|(shard, tracker)| {
                for stretch in stretches {
                    for (index, seg) in &stretch.per_shard[shard] {
                        tracker.process(seg, *index);
                    }
                }
            });
    }

    /// Ends the capture and numbers the findings.
    pub fn finish(self) -> Findings {
        let outputs: Vec<ShardOutput> = self
            .shards
            .into_par_iter()
            .map(FlowTracker::finish)
            .collect();
        Findings::from_shards(outputs)
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
    /// Merges shard outputs: sorts by global input position and replaces the positions held
    /// in `uid` / `prev_uid` by dense ids.
    pub fn from_shards(outputs: Vec<ShardOutput>) -> Findings {
        let mut counters = TrackerCounters::default();
        let mut connections = Vec::new();
        let mut collisions = Vec::new();
        for output in outputs {
            counters.merge(&output.counters);
            connections.extend(output.connections);
            collisions.extend(output.collisions);
        }
        connections.sort_unstable_by_key(|c| c.uid);
        let dense = |first_index: u64| -> u64 {
            connections
                .binary_search_by_key(&first_index, |c| c.uid)
                .map_or(u64::MAX, |position| position as u64)
        };
        let prev_ids: Vec<Option<u64>> =
            connections.iter().map(|c| c.prev_uid.map(dense)).collect();
        collisions.sort_unstable_by_key(|c| c.uid);
        for collision in &mut collisions {
            collision.uid = dense(collision.uid);
            collision.prev_uid = dense(collision.prev_uid);
        }
        for (position, (connection, prev)) in connections.iter_mut().zip(prev_ids).enumerate() {
            connection.uid = position as u64;
            connection.prev_uid = prev;
        }
        Findings {
            connections,
            collisions,
            counters,
        }
    }
}
