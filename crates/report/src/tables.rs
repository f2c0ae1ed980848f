//! The report's tables, in columns: what `data/*.parquet` and `data/*.csv` hold, and what the
//! charts are drawn from (one source for both, so a chart never shows what the data lacks).

use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::Serialize;
use twsleuth_flows::{
    Basis, CollisionRecord, ConnectionRecord, Doubt, Findings, Outcome, Role, SECOND_NS,
    TimeWaitPolicy,
};

/// A text cell. Columns hold hundreds of thousands of rows but few distinct values (enum
/// labels, addresses, history strings): each distinct text is made once and shared, so that
/// building and dropping a table costs no allocation per row.
pub type Text = Arc<str>;

/// The name serde gives a unit enum variant (`"rejected_recovered"`), for text columns.
pub fn label<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Text of repeated values (enum labels, addresses, histories), formatted once per distinct
/// value.
struct TextCache<T>(FxHashMap<T, Text>);

impl<T: Eq + Hash + Copy> TextCache<T> {
    fn new() -> Self {
        TextCache(FxHashMap::default())
    }

    fn get(&mut self, value: T, format: impl FnOnce(&T) -> String) -> Text {
        Arc::clone(
            self.0
                .entry(value)
                .or_insert_with(|| Text::from(format(&value))),
        )
    }
}

/// One row per connection incarnation (`connections.parquet`).
#[derive(Debug, Default)]
pub struct ConnectionsTable {
    /// Dense id.
    pub uid: Vec<u64>,
    /// First segment, ns since the epoch.
    pub ts_ns: Vec<i64>,
    /// Originator address.
    pub orig_h: Vec<Text>,
    /// Originator port.
    pub orig_p: Vec<u32>,
    /// Responder address.
    pub resp_h: Vec<Text>,
    /// Responder port.
    pub resp_p: Vec<u32>,
    /// Input index of the first frame.
    pub first_file: Vec<u32>,
    /// Wireshark frame number of the first frame.
    pub first_frame: Vec<u64>,
    /// Wireshark frame number of the last frame (same input as the first, when one input).
    pub last_frame: Vec<u64>,
    /// First to last segment, seconds.
    pub duration_s: Vec<f64>,
    /// Segments from the originator.
    pub orig_pkts: Vec<u64>,
    /// Payload bytes from the originator.
    pub orig_bytes: Vec<u64>,
    /// Segments from the responder.
    pub resp_pkts: Vec<u64>,
    /// Payload bytes from the responder.
    pub resp_bytes: Vec<u64>,
    /// SYN retransmissions.
    pub syn_retransmits: Vec<u32>,
    /// First SYN → SYN-ACK, milliseconds.
    pub syn_to_syn_ack_ms: Vec<Option<f64>>,
    /// Zeek conn_state.
    pub conn_state: Vec<Text>,
    /// Zeek history.
    pub history: Vec<Text>,
    /// How it ended.
    pub close: Vec<Text>,
    /// Who closed first.
    pub active_closer: Vec<Option<Text>>,
    /// When the active closer entered TIME_WAIT, ns since the epoch.
    pub time_wait_start_ns: Vec<Option<i64>>,
    /// When that TIME_WAIT ended: its duration, or earlier when the tuple was taken over.
    pub time_wait_end_ns: Vec<Option<i64>>,
    /// Interval since the tuple's previous incarnation ended, seconds.
    pub reuse_interval_s: Vec<Option<f64>>,
    /// Previous incarnation on the tuple.
    pub prev_uid: Vec<Option<u64>>,
    /// Something was inferred: any of the `doubt_*` columns.
    pub low_confidence: Vec<bool>,
    /// One column per [`Doubt`], in [`DOUBTS`] order: why the record is less than certain.
    pub doubts: [Vec<bool>; DOUBTS.len()],
    /// The originator reused a tuple it held in TIME_WAIT itself.
    pub client_side_reuse: Vec<bool>,
    /// The side whose segments the capture lacks (`orig`, `resp`).
    pub unseen_side: Vec<Option<Text>>,
    /// Outcome when its first SYN collided with TIME_WAIT.
    pub collision: Vec<Option<Text>>,
}

/// The doubts a connection record can carry, with their column names.
pub const DOUBTS: [(Doubt, &str); 6] = [
    (Doubt::NoSyn, "doubt_no_syn"),
    (Doubt::NoFinalAck, "doubt_no_final_ack"),
    (Doubt::Evicted, "doubt_evicted"),
    (Doubt::Superseded, "doubt_superseded"),
    (Doubt::OneSided, "doubt_one_sided"),
    (Doubt::BytesNotCaptured, "doubt_bytes_not_captured"),
];

/// One row per collision (`collisions.parquet`).
#[derive(Debug, Default)]
pub struct CollisionsTable {
    /// First SYN, ns since the epoch.
    pub ts_ns: Vec<i64>,
    /// SYN sender.
    pub orig_h: Vec<Text>,
    /// SYN sender's port.
    pub orig_p: Vec<u32>,
    /// TIME_WAIT holder.
    pub resp_h: Vec<Text>,
    /// TIME_WAIT holder's port.
    pub resp_p: Vec<u32>,
    /// `server` when the holder was the old connection's responder, `client` otherwise.
    pub holder: Vec<Text>,
    /// How long the holder had been in TIME_WAIT, seconds.
    pub time_wait_age_s: Vec<f64>,
    /// Its TIME_WAIT duration, seconds.
    pub time_wait_duration_s: Vec<f64>,
    /// In the timer slack after the nominal end.
    pub edge_case: Vec<bool>,
    /// Previous incarnation.
    pub prev_uid: Vec<u64>,
    /// New incarnation.
    pub uid: Vec<u64>,
    /// Input index of the first SYN.
    pub first_syn_file: Vec<u32>,
    /// Wireshark frame number of the first SYN.
    pub first_syn_frame: Vec<u64>,
    /// Outcome.
    pub outcome: Vec<Text>,
    /// The holder's first answer.
    pub first_reply: Vec<Text>,
    /// SYNs sent.
    pub syn_attempts: Vec<u32>,
    /// First SYN → SYN-ACK, milliseconds.
    pub cost_ms: Vec<Option<f64>>,
    /// What Linux would do; none where the server is not Linux.
    pub prediction: Vec<Option<Text>>,
    /// The rule of Linux's `tcp_timewait_state_process` that decides it.
    pub linux_rule: Vec<Option<Text>>,
    /// Why the first SYN was not accepted ([`twsleuth_flows::Reason`]: `paws`,
    /// `seq_not_after_rcv_nxt`, `holder_reset`, …); none when it was, or cannot be told.
    pub reason: Vec<Option<Text>>,
    /// The client's RST with the old `rcv_nxt` ended the TIME_WAIT after the rejection (RFC
    /// 1337 assassination).
    pub time_wait_assassinated: Vec<bool>,
    /// Observation agrees with the prediction.
    pub prediction_agrees: Vec<Option<bool>>,
    /// Linux's TIME_WAIT takeover ISN seen.
    pub isn_signature: Vec<bool>,
    /// The SYN's sequence number: what the prediction compares with `old_rcv_nxt`.
    pub syn_seq: Vec<u32>,
    /// The SYN's TSval: what PAWS compares with `old_ts_recent`.
    pub syn_tsval: Vec<Option<u64>>,
    /// The TIME_WAIT's `rcv_nxt`.
    pub old_rcv_nxt: Vec<u32>,
    /// The TIME_WAIT's `snd_nxt` (Linux's takeover ISN is this + 65537).
    pub old_snd_nxt: Vec<u32>,
    /// The TIME_WAIT's `ts_recent`.
    pub old_ts_recent: Vec<Option<u64>>,
    /// The server's ISN in the new connection.
    pub server_isn: Vec<Option<u64>>,
    /// Partly inferred from a capture holding one direction.
    pub inferred: Vec<bool>,
    /// The SYN was not captured: its time is its answer's.
    pub syn_ts_estimated: Vec<bool>,
    /// The frames the finding rests on, `input:frame` separated by spaces.
    pub basis: Vec<Text>,
    /// A Wireshark display filter that opens the collision's frames in the first SYN's input:
    /// its tuple, and the frames of `basis` in that input.
    pub wireshark_filter: Vec<Text>,
}

/// One row per (second, source address) (`timeline.parquet`).
#[derive(Debug, Default)]
pub struct TimelineTable {
    /// Start of the second, seconds since the epoch.
    pub second: Vec<i64>,
    /// The same, ns since the epoch (the exported column).
    pub ts_ns: Vec<i64>,
    /// Source (originator) address.
    pub orig_h: Vec<Text>,
    /// Connections opened in that second.
    pub new_connections: Vec<u64>,
    /// Collisions in that second, all outcomes.
    pub collisions: Vec<u64>,
    /// Accepted collisions.
    pub accepted: Vec<u64>,
    /// Rejected then recovered.
    pub rejected_recovered: Vec<u64>,
    /// Reset.
    pub reset: Vec<u64>,
    /// Unanswered then recovered.
    pub unanswered: Vec<u64>,
    /// Failed.
    pub failed: Vec<u64>,
    /// Outcome unknown (one direction visible, or evicted before any answer).
    pub unknown: Vec<u64>,
    /// Tuples of this source held in TIME_WAIT (by either end) at the end of the second.
    pub time_wait_tuples: Vec<u64>,
    /// The capture covers the second (up to the last segment of any connection); `false`
    /// after it, where the TIME_WAIT occupancy is extrapolated (each one running to its end,
    /// none taken over).
    pub observed: Vec<bool>,
}

/// All three tables.
#[derive(Debug, Default)]
pub struct Tables {
    /// Per connection.
    pub connections: ConnectionsTable,
    /// Per collision.
    pub collisions: CollisionsTable,
    /// Per second and source.
    pub timeline: TimelineTable,
}

impl Tables {
    /// The tables of findings held in memory, built as the report builds them chunk by chunk
    /// from records streamed off disk ([`crate::stream`]).
    pub fn new(findings: &Findings, policy: &TimeWaitPolicy) -> Tables {
        let connections = &findings.connections;
        let mut join = SuccessorJoin::new(successors_of(connections).into_iter().map(Ok));
        let time_wait_end: Vec<Option<i64>> = connections
            .iter()
            .map(|c| {
                let next = join.next_start(c.uid).unwrap_or(None);
                time_wait_end(c, next, policy)
            })
            .collect();
        let mut timeline = TimelineBuilder::new(&busiest_sources(connections), false);
        for (c, end) in connections.iter().zip(&time_wait_end) {
            timeline.add(c, *end);
        }
        Tables {
            connections: connections_table(connections, &time_wait_end),
            collisions: collisions_table(&findings.collisions),
            timeline: timeline.finish(),
        }
    }
}

/// The successors of connections held in memory, in `prev_uid` order (as the report's spill
/// gives them back).
pub fn successors_of(connections: &[ConnectionRecord]) -> Vec<Successor> {
    let mut successors: Vec<Successor> = connections.iter().filter_map(Successor::of).collect();
    successors.sort_by_key(|s| (s.prev_uid, s.next_ts_ns));
    successors
}

/// The sources of connections held in memory, most connections first (then by address), as
/// the summary ranks them.
pub fn busiest_sources(connections: &[ConnectionRecord]) -> Vec<std::net::IpAddr> {
    let mut per_source: BTreeMap<std::net::IpAddr, u64> = BTreeMap::new();
    for c in connections {
        *per_source.entry(c.orig_h).or_default() += 1;
    }
    let mut busiest: Vec<(u64, std::net::IpAddr)> =
        per_source.into_iter().map(|(ip, n)| (n, ip)).collect();
    busiest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    busiest.into_iter().map(|(_, ip)| ip).collect()
}

/// The next incarnation on a connection's tuple, which ends the TIME_WAIT the connection left
/// (taken over, or the port moved on): what the connection's row needs of a later record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Successor {
    /// The connection whose tuple was used again.
    pub prev_uid: u64,
    /// When the next incarnation began, ns since the epoch.
    pub next_ts_ns: i64,
}

impl Successor {
    /// The successor `c` is to its tuple's previous incarnation, if it had one.
    pub fn of(c: &ConnectionRecord) -> Option<Successor> {
        Some(Successor {
            prev_uid: c.prev_uid?,
            next_ts_ns: c.ts_ns,
        })
    }
}

/// Successors in `prev_uid` order, looked up for connections in `uid` order: a merge join,
/// in constant memory.
pub struct SuccessorJoin<I: Iterator<Item = std::io::Result<Successor>>> {
    successors: std::iter::Peekable<I>,
}

impl<I: Iterator<Item = std::io::Result<Successor>>> SuccessorJoin<I> {
    /// A join over `successors`, sorted by `prev_uid`.
    pub fn new(successors: I) -> Self {
        SuccessorJoin {
            successors: successors.peekable(),
        }
    }

    /// When the next incarnation after connection `uid` began (the earliest, should views
    /// disagree); `uid`s must come in increasing order.
    pub fn next_start(&mut self, uid: u64) -> std::io::Result<Option<i64>> {
        let mut next: Option<i64> = None;
        while let Some(peeked) = self.successors.peek() {
            let prev_uid = match peeked {
                Ok(s) => s.prev_uid,
                Err(_) => match self.successors.next() {
                    Some(Err(e)) => return Err(e),
                    _ => unreachable!("peeked an error"),
                },
            };
            if prev_uid > uid {
                break;
            }
            if let Some(Ok(s)) = self.successors.next() {
                if s.prev_uid == uid {
                    next = Some(next.map_or(s.next_ts_ns, |n: i64| n.min(s.next_ts_ns)));
                }
            }
        }
        Ok(next)
    }
}

/// When the TIME_WAIT `c` left ended: its duration after it began, or earlier when the next
/// incarnation on the tuple (starting at `next_start`) took it over.
pub fn time_wait_end(
    c: &ConnectionRecord,
    next_start: Option<i64>,
    policy: &TimeWaitPolicy,
) -> Option<i64> {
    let start = c.time_wait_start_ns?;
    let holder = match c.active_closer? {
        twsleuth_flows::ActiveCloser::Resp => c.resp_h,
        _ => c.orig_h,
    };
    let end = start.saturating_add(policy.duration_ns(holder));
    Some(next_start.map_or(end, |n| end.min(n.max(start))))
}

/// The rows of `records`, each with the end of the TIME_WAIT it left.
pub fn connections_table(
    records: &[ConnectionRecord],
    time_wait_end: &[Option<i64>],
) -> ConnectionsTable {
    let mut t = ConnectionsTable::default();
    let ms = |ns: Option<i64>| ns.map(|v| v as f64 / 1e6);
    let (mut addresses, mut sides) = (TextCache::new(), TextCache::new());
    let (mut states, mut closes, mut closers, mut outcomes, mut histories) = (
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
    );
    for (i, c) in records.iter().enumerate() {
        t.uid.push(c.uid);
        t.ts_ns.push(c.ts_ns);
        t.orig_h.push(addresses.get(c.orig_h, ToString::to_string));
        t.orig_p.push(u32::from(c.orig_p));
        t.resp_h.push(addresses.get(c.resp_h, ToString::to_string));
        t.resp_p.push(u32::from(c.resp_p));
        t.first_file.push(u32::from(c.first_frame.file_index));
        t.first_frame.push(c.first_frame.number);
        t.last_frame.push(c.last_frame.number);
        t.duration_s.push(c.duration_ns as f64 / 1e9);
        t.orig_pkts.push(c.orig_pkts);
        t.orig_bytes.push(c.orig_bytes);
        t.resp_pkts.push(c.resp_pkts);
        t.resp_bytes.push(c.resp_bytes);
        t.syn_retransmits.push(c.syn_retransmits);
        t.syn_to_syn_ack_ms.push(ms(c.syn_to_syn_ack_ns));
        t.conn_state.push(states.get(c.conn_state, label));
        t.history
            .push(histories.get(c.history, ToString::to_string));
        t.close.push(closes.get(c.close, label));
        t.active_closer
            .push(c.active_closer.map(|a| closers.get(a, label)));
        t.time_wait_start_ns.push(c.time_wait_start_ns);
        t.time_wait_end_ns.push(time_wait_end[i]);
        t.reuse_interval_s
            .push(c.reuse_interval_ns.map(|v| v as f64 / 1e9));
        t.prev_uid.push(c.prev_uid);
        t.low_confidence.push(c.low_confidence != 0);
        for (column, (doubt, _)) in t.doubts.iter_mut().zip(DOUBTS) {
            column.push(c.low_confidence & doubt as u8 != 0);
        }
        t.client_side_reuse.push(c.client_side_reuse);
        t.unseen_side
            .push(c.unseen_side.map(|side| sides.get(side, label)));
        t.collision
            .push(c.collision.map(|o| outcomes.get(o, label)));
    }
    t
}

/// The Wireshark display filter of collision `c`'s 4-tuple.
pub fn tuple_filter(c: &CollisionRecord) -> String {
    tuple_filter_of(c, &c.orig_h.to_string(), &c.resp_h.to_string())
}

/// [`tuple_filter`] with the addresses already written as text (a table writes each
/// address once, not once per row).
fn tuple_filter_of(c: &CollisionRecord, orig_h: &str, resp_h: &str) -> String {
    let field = if c.orig_h.is_ipv4() {
        "ip.addr=="
    } else {
        "ipv6.addr=="
    };
    let mut port = itoa::Buffer::new();
    let mut filter = String::with_capacity(128);
    for part in [field, orig_h, " && ", field, resp_h, " && tcp.port=="] {
        filter.push_str(part);
    }
    filter.push_str(port.format(c.orig_p));
    filter.push_str(" && tcp.port==");
    filter.push_str(port.format(c.resp_p));
    filter
}

/// A Wireshark display filter for collision `c`: its 4-tuple and the frames it rests on in
/// the input of its first SYN (frame numbers count within one file).
fn collision_filter(c: &CollisionRecord, orig_h: &str, resp_h: &str) -> String {
    let syn = c.first_syn_frame;
    let mut frames = [0u64; Basis::CAPACITY + 1];
    let mut len = 0;
    for frame in c
        .basis
        .frames()
        .iter()
        .filter(|f| f.file_index == syn.file_index)
    {
        frames[len] = frame.number;
        len += 1;
    }
    frames[len] = syn.number;
    let frames = &mut frames[..=len];
    frames.sort_unstable();
    let mut filter = tuple_filter_of(c, orig_h, resp_h);
    filter.push_str(" && frame.number in {");
    let mut number = itoa::Buffer::new();
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 && frames[i - 1] == *frame {
            continue;
        }
        if i > 0 {
            filter.push_str(", ");
        }
        filter.push_str(number.format(*frame));
    }
    filter.push('}');
    filter
}

/// The frames collision `c` rests on, as `file:frame` separated by spaces.
fn basis_cell(c: &CollisionRecord) -> String {
    let mut cell = String::new();
    let mut number = itoa::Buffer::new();
    for (i, frame) in c.basis.frames().iter().enumerate() {
        if i > 0 {
            cell.push(' ');
        }
        cell.push_str(number.format(frame.file_index));
        cell.push(':');
        cell.push_str(number.format(frame.number));
    }
    cell
}

/// The rows of `records`.
pub fn collisions_table(records: &[CollisionRecord]) -> CollisionsTable {
    let mut t = CollisionsTable::default();
    let mut addresses = TextCache::new();
    let (mut outcomes, mut replies, mut predictions, mut holders, mut rules, mut reasons) = (
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
        TextCache::new(),
    );
    for c in records {
        t.ts_ns.push(c.ts_ns);
        let (orig_h, resp_h) = (
            addresses.get(c.orig_h, ToString::to_string),
            addresses.get(c.resp_h, ToString::to_string),
        );
        t.wireshark_filter
            .push(collision_filter(c, &orig_h, &resp_h).into());
        t.orig_h.push(orig_h);
        t.orig_p.push(u32::from(c.orig_p));
        t.resp_h.push(resp_h);
        t.resp_p.push(u32::from(c.resp_p));
        t.holder.push(holders.get(c.holder_role, |role| {
            match role {
                Role::Resp => "server",
                Role::Orig => "client",
            }
            .to_string()
        }));
        t.time_wait_age_s.push(c.time_wait_age_ns as f64 / 1e9);
        t.time_wait_duration_s
            .push(c.time_wait_duration_ns as f64 / 1e9);
        t.edge_case.push(c.edge_case);
        t.prev_uid.push(c.prev_uid);
        t.uid.push(c.uid);
        t.first_syn_file
            .push(u32::from(c.first_syn_frame.file_index));
        t.first_syn_frame.push(c.first_syn_frame.number);
        t.outcome.push(outcomes.get(c.outcome, label));
        t.first_reply.push(replies.get(c.first_reply, label));
        t.syn_attempts.push(c.syn_attempts);
        t.cost_ms.push(c.cost_ns.map(|v| v as f64 / 1e6));
        t.prediction
            .push(c.prediction.map(|p| predictions.get(p, label)));
        t.linux_rule.push(c.linux_rule.map(|r| rules.get(r, label)));
        t.reason.push(c.reason.map(|r| reasons.get(r, label)));
        t.time_wait_assassinated.push(c.time_wait_assassinated);
        t.prediction_agrees.push(c.prediction_agrees);
        t.isn_signature.push(c.isn_signature);
        t.syn_seq.push(c.syn_seq);
        t.syn_tsval.push(c.syn_tsval.map(u64::from));
        t.old_rcv_nxt.push(c.old_rcv_nxt);
        t.old_snd_nxt.push(c.old_snd_nxt);
        t.old_ts_recent.push(c.old_ts_recent.map(u64::from));
        t.server_isn.push(c.server_isn.map(u64::from));
        t.inferred.push(c.inferred);
        t.syn_ts_estimated.push(c.syn_ts_estimated);
        t.basis.push(basis_cell(c).into());
    }
    t
}

/// Sources beyond the busiest this many are summed in one `other` series.
pub const TIMELINE_SOURCES: usize = 20;
/// A source's timeline gets a row for every second when it spans at most this long.
pub const MAX_DENSE_SECONDS: i64 = 86_400;
/// The series name for the sources beyond [`TIMELINE_SOURCES`].
pub const OTHER_SOURCES: &str = "other";

/// A second of one series in the timeline.
#[derive(Default, Clone, Copy)]
struct Cell {
    new: u64,
    by_outcome: [u64; Outcome::ALL.len()],
    occupancy_delta: i64,
}

/// Per-second counts per source, and the TIME_WAIT occupancy from +1/−1 events, gathered
/// connection by connection. Memory: a cell per second and series (at most
/// [`TIMELINE_SOURCES`] + 1), whatever the number of connections.
pub struct TimelineBuilder {
    /// Series in the order of their names (the rows' order); the sources beyond the busiest
    /// share the `other` series (no address).
    names: Vec<(Text, Option<std::net::IpAddr>)>,
    series: FxHashMap<std::net::IpAddr, usize>,
    other: usize,
    cells: BTreeMap<(usize, i64), Cell>,
    /// The capture's end, as far as its connections show it: seconds after it are
    /// extrapolated.
    last_observed_ns: Option<i64>,
}

impl TimelineBuilder {
    /// A timeline with a series for each of `busiest` (at most [`TIMELINE_SOURCES`] are
    /// used), and an `other` series when `more_sources` exist.
    pub fn new(busiest: &[std::net::IpAddr], more_sources: bool) -> TimelineBuilder {
        let mut names: Vec<(Text, Option<std::net::IpAddr>)> = busiest
            .iter()
            .take(TIMELINE_SOURCES)
            .map(|ip| (Text::from(ip.to_string()), Some(*ip)))
            .collect();
        if more_sources || busiest.len() > TIMELINE_SOURCES {
            names.push((Text::from(OTHER_SOURCES), None));
        }
        names.sort();
        let series = names
            .iter()
            .enumerate()
            .filter_map(|(position, (_, ip))| Some(((*ip)?, position)))
            .collect();
        let other = names.iter().position(|(_, ip)| ip.is_none()).unwrap_or(0);
        TimelineBuilder {
            names,
            series,
            other,
            cells: BTreeMap::new(),
            last_observed_ns: None,
        }
    }

    /// Counts connection `c`, whose TIME_WAIT ended at `time_wait_end`.
    pub fn add(&mut self, c: &ConnectionRecord, time_wait_end: Option<i64>) {
        let source = self.series.get(&c.orig_h).copied().unwrap_or(self.other);
        let second = c.ts_ns.div_euclid(SECOND_NS);
        let cell = self.cells.entry((source, second)).or_default();
        cell.new += 1;
        if let Some(o) = c.collision {
            cell.by_outcome[Outcome::ALL.iter().position(|x| *x == o).unwrap_or(0)] += 1;
        }
        if let (Some(start), Some(end)) = (c.time_wait_start_ns, time_wait_end) {
            // Held at the end of a second if start ≤ end-of-second < end.
            let from = start.div_euclid(SECOND_NS);
            let to = end.div_euclid(SECOND_NS);
            if to > from {
                self.cells
                    .entry((source, from))
                    .or_default()
                    .occupancy_delta += 1;
                self.cells.entry((source, to)).or_default().occupancy_delta -= 1;
            }
        }
        let end = c.ts_ns.saturating_add(c.duration_ns);
        self.last_observed_ns = Some(self.last_observed_ns.map_or(end, |l| l.max(end)));
    }

    /// The table.
    pub fn finish(self) -> TimelineTable {
        let last_observed = self
            .last_observed_ns
            .map_or(i64::MAX, |end| end.div_euclid(SECOND_NS));
        let mut t = TimelineTable::default();
        let mut source_rows: BTreeMap<usize, Vec<(i64, Cell)>> = BTreeMap::new();
        for ((source, second), cell) in self.cells {
            source_rows.entry(source).or_default().push((second, cell));
        }
        for (source, rows) in source_rows {
            // Fill every second between the source's first and last event, so that series
            // plot as continuous lines and per-second rates average correctly; but a capture
            // whose clock jumps (or a corrupt timestamp) could span years, so beyond a day only
            // the seconds with an event get a row (occupancy is a step function: those rows
            // carry every change).
            let (first, last) = (rows[0].0, rows[rows.len() - 1].0);
            let dense = last.saturating_sub(first) <= MAX_DENSE_SECONDS;
            let by_second: BTreeMap<i64, Cell> = rows.into_iter().collect();
            let seconds: Box<dyn Iterator<Item = i64>> = if dense {
                Box::new(first..=last)
            } else {
                Box::new(by_second.keys().copied().collect::<Vec<_>>().into_iter())
            };
            let mut occupancy = 0i64;
            for second in seconds {
                let cell = by_second.get(&second).copied().unwrap_or_default();
                occupancy += cell.occupancy_delta;
                t.second.push(second);
                t.ts_ns.push(second.saturating_mul(SECOND_NS));
                t.orig_h.push(Arc::clone(&self.names[source].0));
                t.new_connections.push(cell.new);
                t.collisions.push(cell.by_outcome.iter().sum());
                t.accepted.push(cell.by_outcome[0]);
                t.rejected_recovered.push(cell.by_outcome[1]);
                t.reset.push(cell.by_outcome[2]);
                t.unanswered.push(cell.by_outcome[3]);
                t.failed.push(cell.by_outcome[4]);
                t.unknown.push(cell.by_outcome[5]);
                t.time_wait_tuples.push(occupancy.max(0) as u64);
                t.observed.push(second <= last_observed);
            }
        }
        t
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use twsleuth_decode::FrameRef;
    use twsleuth_flows::{CloseKind, History, TrackerCounters, ZeekState};

    /// A closed connection from 10.0.0.1:40000 to 10.1.0.10:80 at `ts_s`, with TIME_WAIT held
    /// by `closer` from then.
    pub(crate) fn connection(
        uid: u64,
        ts_s: i64,
        closer: Option<twsleuth_flows::ActiveCloser>,
    ) -> ConnectionRecord {
        let frame = FrameRef {
            file_index: 0,
            number: uid + 1,
        };
        ConnectionRecord {
            uid,
            ts_ns: ts_s * SECOND_NS,
            orig_h: "10.0.0.1".parse().unwrap(),
            orig_p: 40000,
            resp_h: "10.1.0.10".parse().unwrap(),
            resp_p: 80,
            first_frame: frame,
            last_frame: frame,
            duration_ns: 0,
            orig_pkts: 1,
            orig_bytes: 0,
            resp_pkts: 1,
            resp_bytes: 0,
            syn_retransmits: 0,
            syn_to_syn_ack_ns: Some(100_000),
            handshake_ns: None,
            orig_data_ts_ns: None,
            conn_state: ZeekState::SF,
            history: History::default(),
            close: CloseKind::FinFin,
            active_closer: closer,
            time_wait_start_ns: closer.map(|_| ts_s * SECOND_NS),
            reuse_interval_ns: None,
            prev_uid: None,
            collision: None,
            client_side_reuse: false,
            unseen_side: None,
            low_confidence: 0,
            view: Default::default(),
            orig_isn: None,
            other_views: Vec::new(),
        }
    }

    pub(crate) fn findings(connections: Vec<ConnectionRecord>) -> Findings {
        Findings {
            connections,
            collisions: Vec::new(),
            counters: TrackerCounters::default(),
        }
    }

    #[test]
    fn timeline_is_dense_within_a_day_and_counts_time_wait_occupancy() {
        let resp = Some(twsleuth_flows::ActiveCloser::Resp);
        let f = findings(vec![connection(0, 100, resp), connection(1, 130, resp)]);
        let t = Tables::new(&f, &TimeWaitPolicy::default()).timeline;
        assert_eq!(t.second.first(), Some(&100));
        // Rows run to the end of the second TIME_WAIT (130 + 60 s).
        assert_eq!(t.second.len(), 91);
        let at = |s: i64| t.time_wait_tuples[t.second.iter().position(|x| *x == s).unwrap()];
        assert_eq!(
            (at(100), at(130), at(159), at(160), at(190)),
            (1, 2, 2, 1, 0)
        );
        assert_eq!(t.new_connections.iter().sum::<u64>(), 2);
        // The last connection began at 130 s: the 60 rows after it are extrapolated, and say
        // so.
        assert_eq!(t.observed.iter().filter(|o| **o).count(), 31);
        assert!(
            t.second
                .iter()
                .zip(&t.observed)
                .all(|(s, o)| *o == (*s <= 130))
        );
        assert!(
            t.ts_ns
                .iter()
                .zip(&t.second)
                .all(|(ns, s)| *ns == s * SECOND_NS)
        );
    }

    /// Regression (found by fuzzing): a collision whose outcome the capture cannot show
    /// (`Outcome::Unknown`, one direction visible) overran the timeline's outcome cells.
    #[test]
    fn timeline_counts_every_outcome_in_its_own_column() {
        let mut connections: Vec<ConnectionRecord> = (0..Outcome::ALL.len() as u64)
            .map(|uid| connection(uid, 100 + uid as i64, None))
            .collect();
        for (c, outcome) in connections.iter_mut().zip(Outcome::ALL) {
            c.collision = Some(outcome);
        }
        let t = Tables::new(&findings(connections), &TimeWaitPolicy::default()).timeline;
        let columns = [
            &t.accepted,
            &t.rejected_recovered,
            &t.reset,
            &t.unanswered,
            &t.failed,
            &t.unknown,
        ];
        for column in columns {
            assert_eq!(column.iter().sum::<u64>(), 1);
        }
        assert_eq!(t.collisions.iter().sum::<u64>(), Outcome::ALL.len() as u64);
    }

    /// Regression: a capture whose timestamps span decades (found by fuzzing) made one row per
    /// second and ran out of memory.
    #[test]
    fn timeline_of_a_capture_spanning_decades_stays_small() {
        let f = findings(vec![
            connection(0, 0, None),
            connection(1, 2_000_000_000, None),
        ]);
        let t = Tables::new(&f, &TimeWaitPolicy::default()).timeline;
        assert_eq!(t.second, [0, 2_000_000_000]);
    }
}
