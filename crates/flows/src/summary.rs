//! Key figures derived from the findings: the numbers a verdict and a report rest on.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::findings::{Findings, Finished};
use crate::legs::{LegPairer, LegSummary};
use crate::records::{
    ActiveCloser, CollisionRecord, ConnectionRecord, Doubt, LinuxRule, Outcome, Reason, Role,
    ZeekState,
};
use crate::tracker::TrackerCounters;
use crate::tuple::Endpoint;

/// Collisions by outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutcomeCounts {
    /// All collisions.
    pub total: u64,
    /// Accepted by the TIME_WAIT holder.
    pub accepted: u64,
    /// Bare ACK, client RST, retried SYN accepted.
    pub rejected_recovered: u64,
    /// Reset by the holder.
    pub reset: u64,
    /// First SYN unanswered, a retransmission answered.
    pub unanswered: u64,
    /// Never answered with a SYN-ACK.
    pub failed: u64,
    /// The capture's one direction cannot tell.
    pub unknown: u64,
    /// Of all of them, those partly inferred from a capture holding one direction (counted in
    /// their outcomes too).
    pub inferred: u64,
}

impl OutcomeCounts {
    fn add(&mut self, outcome: Outcome, inferred: bool) {
        self.total += 1;
        self.inferred += u64::from(inferred);
        *match outcome {
            Outcome::Accepted => &mut self.accepted,
            Outcome::RejectedRecovered => &mut self.rejected_recovered,
            Outcome::Reset => &mut self.reset,
            Outcome::Unanswered => &mut self.unanswered,
            Outcome::Failed => &mut self.failed,
            Outcome::Unknown => &mut self.unknown,
        } += 1;
    }

    /// The count of one outcome.
    pub fn of(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Accepted => self.accepted,
            Outcome::RejectedRecovered => self.rejected_recovered,
            Outcome::Reset => self.reset,
            Outcome::Unanswered => self.unanswered,
            Outcome::Failed => self.failed,
            Outcome::Unknown => self.unknown,
        }
    }
}

/// Which directions of the connections the capture holds (DESIGN.md section 10).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Directions {
    /// Connections with both directions captured (or SYNs alone, unanswered).
    pub both: u64,
    /// Connections of which only the originator's segments were captured, acknowledging
    /// bytes the capture never held (a balancer's capture of what it sends).
    pub originator_only: u64,
    /// Connections of which only the responder's segments were captured: answers without
    /// their questions (a Cisco ACE recording what arrives from the servers).
    pub responder_only: u64,
}

impl Directions {
    fn add(&mut self, unseen: Option<Role>) {
        *match unseen {
            None => &mut self.both,
            Some(Role::Resp) => &mut self.originator_only,
            Some(Role::Orig) => &mut self.responder_only,
        } += 1;
    }

    /// Connections counted.
    pub fn total(&self) -> u64 {
        self.both + self.originator_only + self.responder_only
    }

    /// The direction most connections lack, when they do: more than half of them show one
    /// direction only. `Some(Role::Orig)`: the originators' segments are missing.
    pub fn mostly_missing(&self) -> Option<Role> {
        let one_sided = self.originator_only + self.responder_only;
        let missing = if self.responder_only >= self.originator_only {
            Role::Orig
        } else {
            Role::Resp
        };
        (one_sided * 2 > self.total()).then_some(missing)
    }
}

/// The directions of the connections that start in one input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InputDirections {
    /// The input's index, in the order the inputs were named.
    pub input: u16,
    /// Its connections by the directions captured.
    #[serde(flatten)]
    pub directions: Directions,
}

/// Percentiles of a duration distribution, in milliseconds, from a [`LogHistogram`]: the
/// count and the maximum exact, the percentiles within [`LogHistogram::RELATIVE_ERROR`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// How many values.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Largest.
    pub max: f64,
}

impl LatencyMs {
    /// Nearest-rank percentiles of `values_ns`, through a histogram.
    pub fn from_ns(values_ns: impl IntoIterator<Item = i64>) -> LatencyMs {
        let mut histogram = LogHistogram::new(LogHistogram::FINE);
        values_ns.into_iter().for_each(|v| histogram.add(v));
        histogram.latency_ms()
    }
}

/// Durations counted in buckets whose width grows with the value (the idea of HdrHistogram):
/// each power of two is split into 2^`mantissa_bits` buckets, so a percentile read from it is
/// the upper bound of its bucket, at most one bucket width (a relative 2^-`mantissa_bits`)
/// above the true nearest-rank value. Memory is fixed, whatever the count: a stream of any
/// length has its percentiles in a few kilobytes. Negative values count as 0.
#[derive(Clone, Debug)]
pub struct LogHistogram {
    mantissa_bits: u32,
    counts: Vec<u64>,
    count: u64,
    max: i64,
}

impl LogHistogram {
    /// 128 buckets per power of two: percentiles within 0.8%.
    pub const FINE: u32 = 7;
    /// 32 buckets per power of two: percentiles within 3.1%, in 16 KiB.
    pub const COARSE: u32 = 5;
    /// The relative error bound of [`LogHistogram::FINE`] percentiles.
    pub const RELATIVE_ERROR: f64 = 1.0 / 128.0;

    /// An empty histogram with 2^`mantissa_bits` buckets per power of two.
    pub fn new(mantissa_bits: u32) -> LogHistogram {
        LogHistogram {
            mantissa_bits,
            counts: vec![0; (64 << mantissa_bits) as usize],
            count: 0,
            max: i64::MIN,
        }
    }

    fn bucket(&self, value: u64) -> usize {
        let m = self.mantissa_bits;
        if value < 1 << m {
            return value as usize;
        }
        let exponent = 63 - value.leading_zeros();
        let mantissa = (value >> (exponent - m)) & ((1 << m) - 1);
        (((exponent - m + 1) << m) as u64 + mantissa) as usize
    }

    /// The largest value of a bucket.
    fn upper(&self, bucket: usize) -> u64 {
        let m = self.mantissa_bits;
        let bucket = bucket as u64;
        if bucket < 1 << m {
            return bucket;
        }
        let exponent = (bucket >> m) + u64::from(m) - 1;
        let mantissa = bucket & ((1 << m) - 1);
        let low = (1u64 << exponent) | (mantissa << (exponent - u64::from(m)));
        low.saturating_add((1u64 << (exponent - u64::from(m))) - 1)
    }

    /// Counts one value.
    pub fn add(&mut self, value: i64) {
        let bucket = self.bucket(value.max(0) as u64);
        self.counts[bucket] += 1;
        self.count += 1;
        self.max = self.max.max(value);
    }

    /// Adds the values counted in `other`, a histogram of the same resolution.
    pub fn merge(&mut self, other: &LogHistogram) {
        debug_assert_eq!(self.mantissa_bits, other.mantissa_bits);
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The nearest-rank `p` percentile (0 < p ≤ 1), as its bucket's upper bound (never above
    /// the largest value).
    pub fn percentile(&self, p: f64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (bucket, &n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some((self.upper(bucket).min(i64::MAX as u64) as i64).min(self.max));
            }
        }
        Some(self.max)
    }

    /// The largest value counted.
    pub fn max(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max)
    }

    /// Count, median, 95th percentile and maximum, in milliseconds.
    pub fn latency_ms(&self) -> LatencyMs {
        let ms = |ns: Option<i64>| ns.unwrap_or(0) as f64 / 1e6;
        LatencyMs {
            count: self.count,
            p50: ms(self.percentile(0.50)),
            p95: ms(self.percentile(0.95)),
            max: ms(self.max()),
        }
    }
}

/// Collisions whose first SYN was not accepted, by [`Reason`], and what the wire showed of
/// their recovery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReasonCounts {
    /// TSval older than the TIME_WAIT's `ts_recent` (PAWS).
    pub paws: u64,
    /// Sequence number not after the old `rcv_nxt`, no newer timestamp.
    pub seq_not_after_rcv_nxt: u64,
    /// Of those, the ones where the SYN or the TIME_WAIT carried no timestamps: RFC 6191's
    /// newer-timestamp rule could not apply.
    pub seq_not_after_rcv_nxt_without_timestamps: u64,
    /// The holder answered with a RST.
    pub holder_reset: u64,
    /// Refused although Linux's rule accepts the SYN's numbers.
    pub linux_would_accept: u64,
    /// Refused by a holder whose rules are not modelled (`--server-os`).
    pub not_modelled: u64,
    /// Rejections after which the SYN's sender reset the TIME_WAIT with the old `rcv_nxt`
    /// (RFC 1337 assassination), letting its retried SYN through.
    pub time_wait_assassinated: u64,
    /// The largest step back of a PAWS-rejected SYN's TSval below `ts_recent`, in TSval ticks
    /// (milliseconds on Linux): how far the sender's timestamp clock went back.
    pub paws_max_step_back: u32,
    /// Accepted collisions whose SYN and TIME_WAIT both carried timestamps: a timestamp clock
    /// that goes back would turn them into PAWS rejections.
    pub accepted_with_timestamps: u64,
    /// Accepted only for a newer TSval, their sequence number not after the old `rcv_nxt`
    /// (RFC 6191): with timestamps off they would be refused.
    pub accepted_by_newer_timestamp: u64,
}

impl ReasonCounts {
    fn add(&mut self, c: &CollisionRecord) {
        self.time_wait_assassinated += u64::from(c.time_wait_assassinated);
        if c.outcome == Outcome::Accepted {
            self.accepted_with_timestamps += u64::from(c.timestamps());
            self.accepted_by_newer_timestamp +=
                u64::from(c.linux_rule == Some(LinuxRule::NewerTimestamp));
        }
        match c.reason {
            None => {}
            Some(Reason::Paws) => {
                self.paws += 1;
                if let (Some(tsval), Some(recent)) = (c.syn_tsval, c.old_ts_recent) {
                    // TSvals compare modulo 2^32 (RFC 7323 section 5.2).
                    self.paws_max_step_back =
                        self.paws_max_step_back.max(recent.wrapping_sub(tsval));
                }
            }
            Some(Reason::SeqNotAfterRcvNxt) => {
                self.seq_not_after_rcv_nxt += 1;
                self.seq_not_after_rcv_nxt_without_timestamps += u64::from(!c.timestamps());
            }
            Some(Reason::HolderReset) => self.holder_reset += 1,
            Some(Reason::LinuxWouldAccept) => self.linux_would_accept += 1,
            Some(Reason::NotModelled) => self.not_modelled += 1,
        }
    }

    /// Collisions with a reason: every one not accepted and not unknown.
    pub fn total(&self) -> u64 {
        self.paws
            + self.seq_not_after_rcv_nxt
            + self.holder_reset
            + self.linux_would_accept
            + self.not_modelled
    }
}

/// Connections by the endpoint that closed first, which is the one that holds the TIME_WAIT
/// (DESIGN.md section 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActiveClosers {
    /// The server (responder) closed first: it holds the TIME_WAIT.
    pub server: u64,
    /// The client (originator: a balancer's SNAT address) closed first and holds it.
    pub client: u64,
    /// Both FINs crossed (RFC 9293 CLOSING): both hold it.
    pub both: u64,
    /// No close seen (still open, reset, or cut by the capture): no TIME_WAIT known.
    pub none: u64,
}

impl ActiveClosers {
    fn add(&mut self, closer: Option<ActiveCloser>) {
        *match closer {
            Some(ActiveCloser::Resp) => &mut self.server,
            Some(ActiveCloser::Orig) => &mut self.client,
            Some(ActiveCloser::Both) => &mut self.both,
            None => &mut self.none,
        } += 1;
    }
}

/// One source address (a SNAT IP, or a client) and how it used its ports.
#[derive(Clone, Debug, Serialize)]
pub struct SourceSummary {
    /// The originating address.
    pub orig_h: IpAddr,
    /// Connections it opened.
    pub connections: u64,
    /// Lowest source port used.
    pub port_min: u16,
    /// Highest source port used.
    pub port_max: u16,
    /// Distinct source ports used (Linux uses one parity first: DESIGN.md section 9).
    pub ports_in_use: u64,
    /// Shortest interval between two incarnations of one of its tuples.
    pub min_reuse_interval_ns: Option<i64>,
    /// Median of those intervals (within 3.1%: [`LogHistogram::COARSE`]).
    pub median_reuse_interval_ns: Option<i64>,
    /// Port reuses (new incarnations on a tuple seen before).
    pub reuses: u64,
    /// Collisions of its SYNs with TIME_WAIT.
    pub collisions: u64,
    /// First and last connection start: the span over which its rate is measured.
    pub first_ts_ns: i64,
    /// Last connection start.
    pub last_ts_ns: i64,
}

/// The key figures of an analysis.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Connection incarnations.
    pub connections: u64,
    /// SYNs without ACK, retransmissions included.
    pub syn: u64,
    /// Collisions by outcome.
    pub collisions: OutcomeCounts,
    /// Connections by the directions the capture holds of them.
    pub directions: Directions,
    /// The same, per input in which the connections start.
    pub directions_by_input: Vec<InputDirections>,
    /// Connections already under way when the capture began (no SYN or SYN-ACK seen: Zeek's
    /// `OTH`): their roles are guessed from the ports.
    pub midstream: u64,
    /// Connections with both directions captured in which a side acknowledged bytes the
    /// capture does not hold: the capture dropped packets.
    pub bytes_not_captured: u64,
    /// Collisions whose first SYN was not accepted, by reason.
    pub reasons: ReasonCounts,
    /// Connections by who closed first: who holds the TIME_WAIT.
    pub active_closers: ActiveClosers,
    /// Collisions where the holder was the responder (server) / the originator (client).
    pub time_wait_holders: BTreeMap<&'static str, u64>,
    /// New incarnations on a tuple seen before.
    pub reused_tuples: u64,
    /// SYNs from an endpoint reusing its own TIME_WAIT: not collisions.
    pub client_side_reuse: u64,
    /// Share of collisions whose observed answer matches the Linux prediction.
    pub prediction_agreement: Option<f64>,
    /// First SYN → SYN-ACK of collided connections that got one.
    pub added_latency_ms: LatencyMs,
    /// First SYN → SYN-ACK of connections that did not collide.
    pub clean_handshake_ms: LatencyMs,
    /// Source addresses by connections, busiest first.
    pub sources: Vec<SourceSummary>,
    /// Connections from sources beyond the first [`MAX_TALLIED_SOURCES`]: counted, not
    /// tallied per source.
    pub sources_not_tallied: u64,
    /// The addresses whose SYNs collided (the first few, and how many).
    pub collided_sources: FirstFew<IpAddr>,
    /// The servers (address and port) they collided at.
    pub collided_servers: FirstFew<Endpoint>,
    /// What the rejected and unanswered collisions cost: first SYN → SYN-ACK.
    pub rejected_cost_ms: LatencyMs,
    /// The first collision (the earliest incarnation).
    pub first_collision: Option<CollisionRecord>,
    /// The clock of each capture point after the first, against the first's, from the
    /// connections both saw; empty with one capture point.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capture_points: Vec<PointClock>,
    /// A proxy's two legs paired: end users' requests and the backend connections opened for
    /// them; absent where no legs were paired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub legs: Option<LegSummary>,
}

/// How a capture point's clock stands against the first point's, from the handshakes both
/// saw (NTP's arithmetic, RFC 5905 section 8: the SYN crosses from one point to the other one
/// way, the SYN-ACK the other, so half their sum is the offset and half their difference the
/// path's one-way delay, where the delay is the same both ways).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PointClock {
    /// The capture point (1 for the second).
    pub point: u8,
    /// Handshakes (SYN and SYN-ACK) seen at both points.
    pub matched_handshakes: u64,
    /// Median of the per-handshake offsets: this point's clock minus the first's.
    pub offset_ns: i64,
    /// Median absolute deviation of the per-handshake offsets: how far to trust the median.
    pub spread_ns: i64,
    /// How the offset changes over the capture, in parts per million: the difference of the
    /// median offsets of the later and the earlier half of the handshakes over the time
    /// between their medians.
    pub drift_ppm: f64,
    /// Median one-way delay from the first point to this one (negative: this point is
    /// nearer the originator).
    pub one_way_delay_ns: i64,
}

/// Offsets kept per capture point at most: their medians are exact up to this many
/// handshakes, and taken from the first this many beyond.
const MAX_CLOCK_SAMPLES: usize = 1 << 20;

/// (first point's SYN time, offset, one-way delay) per handshake seen at both points.
type ClockSample = (i64, i64, i64);

fn median(values: &mut [i64]) -> i64 {
    if values.is_empty() {
        return 0;
    }
    let middle = values.len() / 2;
    *values.select_nth_unstable(middle).1
}

impl PointClock {
    fn of(point: u8, samples: &mut [ClockSample]) -> PointClock {
        samples.sort_unstable();
        let mut offsets: Vec<i64> = samples.iter().map(|s| s.1).collect();
        let offset_ns = median(&mut offsets);
        let mut deviations: Vec<i64> = offsets.iter().map(|o| (o - offset_ns).abs()).collect();
        let mut delays: Vec<i64> = samples.iter().map(|s| s.2).collect();
        let (early, late) = samples.split_at(samples.len() / 2);
        let half = |half: &[ClockSample]| {
            let mut times: Vec<i64> = half.iter().map(|s| s.0).collect();
            let mut offsets: Vec<i64> = half.iter().map(|s| s.1).collect();
            (median(&mut times), median(&mut offsets))
        };
        let ((t0, o0), (t1, o1)) = (half(early), half(late));
        PointClock {
            point,
            matched_handshakes: samples.len() as u64,
            offset_ns,
            spread_ns: median(&mut deviations),
            drift_ppm: if t1 > t0 && !early.is_empty() {
                (o1 - o0) as f64 / (t1 - t0) as f64 * 1e6
            } else {
                0.0
            },
            one_way_delay_ns: median(&mut delays),
        }
    }
}

/// Distinct values, in order: the first few kept, all of them counted (up to
/// [`MAX_TALLIED_SOURCES`], beyond which the count is a lower bound).
#[derive(Clone, Debug, Serialize)]
pub struct FirstFew<T: Ord> {
    /// The smallest values, in order.
    pub first: Vec<T>,
    /// Distinct values seen.
    pub count: u64,
    #[serde(skip)]
    all: BTreeSet<T>,
}

impl<T: Ord> Default for FirstFew<T> {
    fn default() -> Self {
        FirstFew {
            first: Vec::new(),
            count: 0,
            all: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> FirstFew<T> {
    /// Values shown.
    const SHOWN: usize = 3;

    fn insert(&mut self, value: T) {
        if self.all.len() < MAX_TALLIED_SOURCES {
            self.all.insert(value);
        }
    }

    fn finish(mut self) -> FirstFew<T> {
        self.count = self.all.len() as u64;
        self.first = self.all.iter().take(Self::SHOWN).cloned().collect();
        self.all.clear();
        self
    }
}

impl Summary {
    /// Figures of `findings`, with the `top_sources` busiest sources.
    pub fn new(findings: &Findings, top_sources: usize) -> Summary {
        let mut builder = SummaryBuilder::default();
        findings
            .connections
            .iter()
            .for_each(|c| builder.connection(c));
        findings
            .collisions
            .iter()
            .for_each(|c| builder.collision(c));
        let mut legs = LegPairer::new(false);
        legs.add(&Finished {
            connections: findings.connections.clone(),
            collisions: Vec::new(),
        });
        Summary {
            legs: legs.finish().0.paired(),
            ..builder.finish(&findings.counters, top_sources)
        }
    }
}

/// Source addresses tallied one by one at most; beyond, their connections are only counted
/// (a SYN flood from spoofed addresses has millions, a balancer a handful).
pub const MAX_TALLIED_SOURCES: usize = 1 << 16;

/// The key figures, gathered record by record in any order, in memory that does not grow
/// with the number of records: counters, [`LogHistogram`]s, and a tally per source address
/// (at most [`MAX_TALLIED_SOURCES`]).
#[derive(Debug)]
pub struct SummaryBuilder {
    connections: u64,
    collisions: OutcomeCounts,
    reasons: ReasonCounts,
    active_closers: ActiveClosers,
    /// Counted by role, named once: a map lookup per collision cost more than the rest.
    by_holder: [u64; 2],
    agreeing: u64,
    judged: u64,
    added: LogHistogram,
    clean: LogHistogram,
    rejected: LogHistogram,
    collided_sources: FirstFew<IpAddr>,
    collided_servers: FirstFew<Endpoint>,
    first_collision: Option<CollisionRecord>,
    directions: Directions,
    by_input: Vec<Directions>,
    midstream: u64,
    bytes_not_captured: u64,
    sources: Sources,
    /// Per capture point after the first: handshakes it saw with the first.
    clocks: BTreeMap<u8, Vec<ClockSample>>,
}

impl Default for SummaryBuilder {
    fn default() -> Self {
        SummaryBuilder {
            connections: 0,
            collisions: OutcomeCounts::default(),
            reasons: ReasonCounts::default(),
            active_closers: ActiveClosers::default(),
            by_holder: [0; 2],
            agreeing: 0,
            judged: 0,
            added: LogHistogram::new(LogHistogram::FINE),
            clean: LogHistogram::new(LogHistogram::FINE),
            rejected: LogHistogram::new(LogHistogram::FINE),
            collided_sources: FirstFew::default(),
            collided_servers: FirstFew::default(),
            first_collision: None,
            directions: Directions::default(),
            by_input: Vec::new(),
            midstream: 0,
            bytes_not_captured: 0,
            sources: Sources::default(),
            clocks: BTreeMap::new(),
        }
    }
}

impl SummaryBuilder {
    /// Adds a connection record.
    pub fn connection(&mut self, c: &ConnectionRecord) {
        self.connections += 1;
        self.active_closers.add(c.active_closer);
        if c.collision.is_none() {
            c.syn_to_syn_ack_ns.inspect(|&ns| self.clean.add(ns));
        }
        self.directions.add(c.unseen_side);
        let input = usize::from(c.first_frame.file_index);
        if self.by_input.len() <= input {
            self.by_input.resize(input + 1, Directions::default());
        }
        self.by_input[input].add(c.unseen_side);
        self.midstream += u64::from(c.conn_state == ZeekState::OTH);
        self.bytes_not_captured += u64::from(c.low_confidence & Doubt::BytesNotCaptured as u8 != 0);
        self.sources.add(c);
        self.clock_samples(c);
    }

    /// The handshake of a connection seen at the first capture point and at others.
    fn clock_samples(&mut self, c: &ConnectionRecord) {
        if c.view.point != 0 {
            return;
        }
        let (Some(syn), Some(syn_ack)) = (c.syn_ts_ns(), c.syn_ack_ts_ns()) else {
            return;
        };
        for other in c.other_views.iter().filter(|v| v.view.point != 0) {
            let (Some(other_syn), Some(other_syn_ack)) = (other.syn_ts_ns, other.syn_ack_ts_ns)
            else {
                continue;
            };
            let (there, back) = (other_syn - syn, other_syn_ack - syn_ack);
            let samples = self.clocks.entry(other.view.point).or_default();
            if samples.len() < MAX_CLOCK_SAMPLES {
                samples.push((syn, (there + back) / 2, (there - back) / 2));
            }
        }
    }

    /// Adds a collision record.
    pub fn collision(&mut self, c: &CollisionRecord) {
        self.collisions.add(c.outcome, c.inferred);
        self.reasons.add(c);
        self.by_holder[usize::from(c.holder_role == Role::Orig)] += 1;
        if let Some(agrees) = c.prediction_agrees {
            self.judged += 1;
            self.agreeing += u64::from(agrees);
        }
        c.cost_ns.inspect(|&ns| self.added.add(ns));
        if matches!(c.outcome, Outcome::RejectedRecovered | Outcome::Unanswered) {
            c.cost_ns.inspect(|&ns| self.rejected.add(ns));
        }
        self.collided_sources.insert(c.orig_h);
        self.collided_servers.insert(Endpoint {
            ip: c.resp_h,
            port: c.resp_p,
        });
        if self
            .first_collision
            .as_ref()
            .is_none_or(|first| c.uid < first.uid)
        {
            self.first_collision = Some(c.clone());
        }
    }

    /// The addresses of the `top` sources with the most connections (then by address), and
    /// whether there are more sources than those.
    pub fn busiest_addresses(&self, top: usize) -> (Vec<IpAddr>, bool) {
        let mut tallies: Vec<(u64, IpAddr)> = self
            .sources
            .tallies
            .iter()
            .map(|t| (t.connections, t.orig_h))
            .collect();
        tallies.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let more = tallies.len() > top || self.sources.not_tallied > 0;
        (
            tallies.into_iter().take(top).map(|(_, ip)| ip).collect(),
            more,
        )
    }

    /// The figures, with the tracker's counters and the `top_sources` busiest sources.
    pub fn finish(self, counters: &TrackerCounters, top_sources: usize) -> Summary {
        let time_wait_holders: BTreeMap<&'static str, u64> =
            [("server", self.by_holder[0]), ("client", self.by_holder[1])]
                .into_iter()
                .filter(|&(_, count)| count > 0)
                .collect();
        Summary {
            connections: self.connections,
            syn: counters.syn,
            collisions: self.collisions,
            reasons: self.reasons,
            active_closers: self.active_closers,
            directions: self.directions,
            directions_by_input: self
                .by_input
                .into_iter()
                .enumerate()
                .filter(|(_, directions)| directions.total() > 0)
                .map(|(input, directions)| InputDirections {
                    input: input as u16,
                    directions,
                })
                .collect(),
            midstream: self.midstream,
            bytes_not_captured: self.bytes_not_captured,
            time_wait_holders,
            reused_tuples: counters.reused_tuples,
            client_side_reuse: counters.client_side_reuse,
            prediction_agreement: (self.judged > 0)
                .then(|| self.agreeing as f64 / self.judged as f64),
            added_latency_ms: self.added.latency_ms(),
            clean_handshake_ms: self.clean.latency_ms(),
            sources_not_tallied: self.sources.not_tallied,
            sources: self.sources.busiest(top_sources),
            collided_sources: self.collided_sources.finish(),
            collided_servers: self.collided_servers.finish(),
            rejected_cost_ms: self.rejected.latency_ms(),
            first_collision: self.first_collision,
            capture_points: self
                .clocks
                .into_iter()
                .map(|(point, mut samples)| PointClock::of(point, &mut samples))
                .collect(),
            legs: None,
        }
    }
}

/// Distinct ports: listed while few, then one bit per port (8 KiB).
#[derive(Debug)]
enum PortSet {
    Few(Vec<u16>),
    Bits(Box<[u64; 1024]>),
}

impl PortSet {
    /// Listed ports beyond which a bit set takes less memory.
    const FEW: usize = 4096;

    fn insert(&mut self, port: u16) {
        match self {
            PortSet::Few(ports) => {
                if let Err(at) = ports.binary_search(&port) {
                    ports.insert(at, port);
                    if ports.len() > PortSet::FEW {
                        let mut bits = Box::new([0u64; 1024]);
                        for &p in ports.iter() {
                            bits[usize::from(p) / 64] |= 1 << (p % 64);
                        }
                        *self = PortSet::Bits(bits);
                    }
                }
            }
            PortSet::Bits(bits) => bits[usize::from(port) / 64] |= 1 << (port % 64),
        }
    }

    fn len(&self) -> u64 {
        match self {
            PortSet::Few(ports) => ports.len() as u64,
            PortSet::Bits(bits) => bits.iter().map(|w| u64::from(w.count_ones())).sum(),
        }
    }
}

/// What the connections of one source add up to.
#[derive(Debug)]
struct Tally {
    orig_h: IpAddr,
    connections: u64,
    ports: PortSet,
    port_min: u16,
    port_max: u16,
    /// Intervals between two incarnations of one of its tuples: the shortest exactly, the
    /// median from a coarse histogram (made at the first reuse).
    min_interval_ns: Option<i64>,
    intervals: Option<Box<LogHistogram>>,
    collisions: u64,
    first_ts_ns: i64,
    last_ts_ns: i64,
}

/// Tallies by source address.
#[derive(Debug, Default)]
struct Sources {
    tallies: Vec<Tally>,
    by_address: FxHashMap<IpAddr, usize>,
    /// The last source seen: connections from one source (a SNAT address) tend to follow each
    /// other.
    last: Option<usize>,
    /// Sources beyond [`MAX_TALLIED_SOURCES`], counted only.
    not_tallied: u64,
}

impl Sources {
    fn add(&mut self, c: &ConnectionRecord) {
        let at = match self.last {
            Some(at) if self.tallies[at].orig_h == c.orig_h => at,
            _ => match self.by_address.get(&c.orig_h) {
                Some(&at) => at,
                None if self.tallies.len() < MAX_TALLIED_SOURCES => {
                    self.tallies.push(Tally {
                        orig_h: c.orig_h,
                        connections: 0,
                        ports: PortSet::Few(Vec::new()),
                        port_min: c.orig_p,
                        port_max: c.orig_p,
                        min_interval_ns: None,
                        intervals: None,
                        collisions: 0,
                        first_ts_ns: c.ts_ns,
                        last_ts_ns: c.ts_ns,
                    });
                    self.by_address.insert(c.orig_h, self.tallies.len() - 1);
                    self.tallies.len() - 1
                }
                None => {
                    self.not_tallied += 1;
                    return;
                }
            },
        };
        self.last = Some(at);
        let tally = &mut self.tallies[at];
        tally.connections += 1;
        tally.ports.insert(c.orig_p);
        tally.port_min = tally.port_min.min(c.orig_p);
        tally.port_max = tally.port_max.max(c.orig_p);
        if let Some(interval) = c.reuse_interval_ns {
            tally.min_interval_ns =
                Some(tally.min_interval_ns.map_or(interval, |m| m.min(interval)));
            tally
                .intervals
                .get_or_insert_with(|| Box::new(LogHistogram::new(LogHistogram::COARSE)))
                .add(interval);
        }
        tally.collisions += u64::from(c.collision.is_some());
        tally.first_ts_ns = tally.first_ts_ns.min(c.ts_ns);
        tally.last_ts_ns = tally.last_ts_ns.max(c.ts_ns);
    }

    /// The `top` sources with the most connections (then by address).
    fn busiest(self, top: usize) -> Vec<SourceSummary> {
        let mut out: Vec<SourceSummary> = self
            .tallies
            .into_iter()
            .map(|t| SourceSummary {
                orig_h: t.orig_h,
                connections: t.connections,
                port_min: t.port_min,
                port_max: t.port_max,
                ports_in_use: t.ports.len(),
                min_reuse_interval_ns: t.min_interval_ns,
                median_reuse_interval_ns: t.intervals.as_ref().and_then(|h| h.percentile(0.5)),
                reuses: t.intervals.as_ref().map_or(0, |h| h.count()),
                collisions: t.collisions,
                first_ts_ns: t.first_ts_ns,
                last_ts_ns: t.last_ts_ns,
            })
            .collect();
        out.sort_by(|a, b| {
            b.connections
                .cmp(&a.connections)
                .then(a.orig_h.cmp(&b.orig_h))
        });
        out.truncate(top);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_ranks_within_the_histograms_error() {
        let ms = |v: i64| v * 1_000_000;
        let latency = LatencyMs::from_ns((1..=100).map(ms));
        let close = |got: f64, want: f64| {
            (want..=want * (1.0 + LogHistogram::RELATIVE_ERROR)).contains(&got)
        };
        assert!(close(latency.p50, 50.0), "{latency:?}");
        assert!(close(latency.p95, 95.0), "{latency:?}");
        assert_eq!(latency.max, 100.0, "the maximum is exact");
        assert_eq!(
            LatencyMs::from_ns([ms(7)]).p95,
            7.0,
            "never above the maximum"
        );
        assert_eq!(LatencyMs::from_ns([]).count, 0);
    }

    /// Against the sorted values: each percentile is at or above its nearest rank, by less
    /// than a bucket (2^-mantissa of the value); small values are exact.
    #[test]
    fn histogram_percentiles_bound_the_sorted_ranks() {
        let mut state = 7u64;
        for bits in [LogHistogram::COARSE, LogHistogram::FINE] {
            for len in [1, 2, 3, 19, 20, 21, 1000, 5000] {
                let values: Vec<i64> = (0..len)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1);
                        (state >> (20 + state % 40)) as i64
                    })
                    .collect();
                let mut sorted = values.clone();
                sorted.sort_unstable();
                let mut histogram = LogHistogram::new(bits);
                values.iter().for_each(|&v| histogram.add(v));
                for p in [0.01, 0.5, 0.95, 1.0] {
                    let rank = sorted[((p * len as f64).ceil() as usize).clamp(1, len) - 1];
                    let got = histogram.percentile(p).unwrap();
                    let bound = rank + (rank >> bits);
                    assert!(
                        (rank..=bound).contains(&got),
                        "{bits} bits, {len} values, p {p}: {got} for {rank}"
                    );
                }
                assert_eq!(histogram.max(), sorted.last().copied());
            }
        }
    }

    #[test]
    fn port_sets_count_distinct_ports_before_and_after_they_become_bits() {
        let mut ports = PortSet::Few(Vec::new());
        for round in 0..2 {
            for port in (1000..11_000u16).step_by(2) {
                ports.insert(port);
            }
            assert_eq!(ports.len(), 5000, "round {round}");
        }
        assert!(matches!(ports, PortSet::Bits(_)));
    }
}
