//! Flow reconstruction and TIME_WAIT collision detection: TCP segment records in, connection
//! incarnations and collisions out. Pure logic: no I/O, time only from segment timestamps,
//! the same findings whatever the number of shards.
//!
//! - Each shard's tracker follows its tuples: each new connection on a tuple is a new
//!   incarnation ([`ConnectionRecord`]); the endpoint that closed first holds the tuple in
//!   TIME_WAIT; a SYN that reaches it within the window is a collision ([`CollisionRecord`])
//!   whose [`Outcome`] and Linux [`Prediction`] are recorded (DESIGN.md sections 2–4).
//! - [`ShardedTracker`] runs the shards in parallel (rayon) over [`Partitioned`] segments
//!   within [`TrackerConfig::max_memory`], and hands over the records of the incarnations as
//!   they end ([`Finished`]); [`SummaryBuilder`] gathers the key figures from them in fixed
//!   memory. [`Findings`] holds them all, in order, for tests and small captures.
//!
//! ```
//! use twsleuth_decode::{decode, FrameRef};
//! use twsleuth_flows::{Partitioned, ShardedTracker, TrackerConfig};
//! use twsleuth_reader::CaptureReader;
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/capture/en10mb.pcap");
//! let mut reader = CaptureReader::open(path, 0).unwrap();
//! let mut tracker = ShardedTracker::new(&TrackerConfig::default(), 2);
//! let mut stretch = Partitioned::new(tracker.shards());
//! let mut index = 0;
//! while reader.advance() {
//!     if let Ok(segment) = decode(&reader.current().unwrap()) {
//!         stretch.push(index, segment);
//!     }
//!     index += 1;
//! }
//! tracker.process(&stretch);
//! let (finished, counters) = tracker.finish();
//! assert!(!finished.connections.is_empty() && counters.syn > 0);
//! assert!(finished.collisions.is_empty());
//! ```
#![deny(missing_docs)]

mod config;
mod findings;
mod incarnation;
mod join;
mod ladder;
mod legs;
mod records;
mod seq;
mod summary;
mod tracker;
mod tuple;

pub use config::{
    DEFAULT_VIEW_JOIN_WAIT_NS, SECOND_NS, ServerOs, SplitBy, TimeWaitPolicy, TrackerConfig,
};
pub use findings::{
    Findings, Finished, IndexedSegment, Partitioned, ShardedTracker, sort_by_key_moving_once,
};
pub use ladder::{CollisionLadder, LADDER_HEAD, LADDER_TAIL, LadderSegment, Places, Showcase};
pub use legs::{
    AMBIGUITY_COUNTED, HOLD_NS, Leg, LegPair, LegPairer, LegSummary, MAX_PENDING,
    MAX_REQUEST_TO_SYN_NS, MIN_PAIRS, MIN_WINDOW_NS, NamedFlow, SURE_PAIRS_TO_ADAPT, ServicePair,
    WINDOW_PER_P99,
};
pub use records::{
    ActiveCloser, Basis, CloseKind, CollisionRecord, CollisionView, ConnectionRecord,
    ConnectionView, Doubt, FirstReply, History, LinuxRule, Outcome, Prediction, Reason, Role,
    ZeekState,
};
pub use seq::SeqNumber;
pub use summary::{
    ActiveClosers, Directions, FirstFew, InputDirections, LatencyMs, LogHistogram,
    MAX_TALLIED_SOURCES, OutcomeCounts, PointClock, ReasonCounts, SourceSummary, Summary,
    SummaryBuilder,
};
pub use tracker::{Occupancy, TrackerCounters};
pub use tuple::{Endpoint, TupleKey, View, endpoints};
