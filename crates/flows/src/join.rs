//! Joining the views of one connection: the records that the tracker made of the same
//! connection seen at two capture points, or on both legs of a bridge (two VLANs), become one
//! record, counted once, with the other views kept as evidence.
//!
//! Each view is followed on its own (its own tuple entry), so that a frame seen at two places
//! is never taken for a duplicate or a retransmission of itself and every view's packet counts
//! are its own. Two records are of one connection when their 4-tuple and the originator's
//! ISN are the same: 32 random bits (RFC 9293 section 3.4.1, Linux `secure_tcp_seq`) make two
//! different connections on one tuple with one ISN, within the wait, practically impossible.

use rustc_hash::FxHashMap;

use crate::findings::Finished;
use crate::records::{CollisionRecord, ConnectionRecord, ZeekState};
use crate::tracker::TrackerCounters;
use crate::tuple::{Endpoint, TupleKey};

/// What recognises one connection in every view: its 4-tuple and the originator's ISN.
type JoinKey = (TupleKey, u32);

fn join_key(orig: Endpoint, resp: Endpoint, isn: u32) -> JoinKey {
    (TupleKey::new(orig, resp), isn)
}

/// Records waiting for their other views, each with the capture time it arrived at.
#[derive(Debug, Default)]
pub(crate) struct ViewJoiner {
    connections: FxHashMap<JoinKey, (i64, ConnectionRecord)>,
    collisions: FxHashMap<JoinKey, (i64, CollisionRecord)>,
    /// Records ready to leave.
    ready: Finished,
    /// What the tracker counted for the views joined into another one: taken off its
    /// counters, so that a connection's SYNs and reuses count once.
    pub counted_twice: TrackerCounters,
}

impl ViewJoiner {
    /// Takes the records of a stretch, at capture time `now_ns`.
    pub fn take(&mut self, batch: Finished, now_ns: i64) {
        for record in batch.connections {
            let Some(isn) = record.orig_isn else {
                // Without the SYN no view can be told to be this one's.
                self.ready.connections.push(record);
                continue;
            };
            let key = join_key(record.orig(), record.resp(), isn);
            match self.connections.get_mut(&key) {
                Some((_, held)) => {
                    let joined = join_connection(held, record);
                    count_off(&mut self.counted_twice, &joined);
                }
                None => {
                    self.connections.insert(key, (now_ns, record));
                }
            }
        }
        for record in batch.collisions {
            let key = join_key(record.orig(), record.resp(), record.syn_seq);
            match self.collisions.get_mut(&key) {
                Some((_, held)) => join_collision(held, record),
                None => {
                    self.collisions.insert(key, (now_ns, record));
                }
            }
        }
    }

    /// Lets the records that arrived `wait_ns` or more before `now_ns` go.
    pub fn release(&mut self, now_ns: i64, wait_ns: i64) {
        let due = |arrived: i64| now_ns.saturating_sub(arrived) >= wait_ns;
        let keys: Vec<JoinKey> = (self.connections.iter())
            .filter(|(_, (arrived, _))| due(*arrived))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            if let Some((_, record)) = self.connections.remove(&key) {
                self.ready.connections.push(record);
            }
        }
        let keys: Vec<JoinKey> = (self.collisions.iter())
            .filter(|(_, (arrived, _))| due(*arrived))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            if let Some((_, record)) = self.collisions.remove(&key) {
                self.ready.collisions.push(record);
            }
        }
    }

    /// Lets every record go (the input is over).
    pub fn release_all(&mut self) {
        self.release(i64::MAX, 0);
    }

    /// The records ready to leave.
    pub fn take_ready(&mut self) -> Finished {
        std::mem::take(&mut self.ready)
    }
}

/// Puts `other` with `held`, the views of one connection: the first view ([`View`] order,
/// then the earlier record) keeps the record, the others go into its `other_views`, in that
/// order, whatever order they came in. Returns the record that was joined into another.
///
/// [`View`]: crate::View
fn join_connection(held: &mut ConnectionRecord, mut other: ConnectionRecord) -> ConnectionRecord {
    if (other.view, other.uid) < (held.view, held.uid) {
        std::mem::swap(held, &mut other);
        held.other_views.append(&mut other.other_views);
    }
    held.other_views.push(other.as_other_view());
    held.other_views.sort_unstable_by_key(|v| (v.view, v.uid));
    // A collision one view saw (another missed the previous connection's close) is this
    // connection's.
    held.collision = held.collision.or(other.collision);
    other
}

/// The same for a collision's records.
fn join_collision(held: &mut CollisionRecord, mut other: CollisionRecord) {
    if (other.view, other.uid) < (held.view, held.uid) {
        std::mem::swap(held, &mut other);
        held.other_views.append(&mut other.other_views);
    }
    // The ladder shows the packets of every view, in input order.
    match (&mut held.ladder, other.ladder.take()) {
        (Some(ladder), Some(more)) => ladder.join(*more),
        (ladder @ None, more) => *ladder = more,
        (Some(_), None) => {}
    }
    held.other_views.push(other.as_other_view());
    held.other_views.sort_unstable_by_key(|v| (v.view, v.uid));
}

/// Takes off `counters` what the tracker counted for `joined`, a view of a connection whose
/// record is another view's.
fn count_off(counters: &mut TrackerCounters, joined: &ConnectionRecord) {
    counters.joined_views += 1;
    let syns = if joined.history.as_str().contains('S') {
        u64::from(joined.syn_retransmits) + 1
    } else {
        0
    };
    counters.syn += syns;
    counters.reused_tuples += u64::from(joined.prev_uid.is_some());
    counters.client_side_reuse += u64::from(joined.client_side_reuse);
    let failed = matches!(
        joined.conn_state,
        ZeekState::S0 | ZeekState::REJ | ZeekState::RSTOS0 | ZeekState::SH
    );
    counters.failed_attempts +=
        u64::from(failed && joined.prev_uid.is_none() && joined.collision.is_none());
}
