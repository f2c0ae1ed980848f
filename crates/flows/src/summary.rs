//! Key figures derived from the findings: the numbers a verdict and a report rest on.

use std::collections::BTreeMap;
use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::findings::Findings;
use crate::records::{ConnectionRecord, Doubt, Outcome, Role, ZeekState};

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

/// Percentiles of a duration distribution, in milliseconds.
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
    /// Nearest-rank percentiles of `values_ns`.
    pub fn from_ns(mut values_ns: Vec<i64>) -> LatencyMs {
        let n = values_ns.len();
        let Some(&max) = values_ns.iter().max() else {
            return LatencyMs::default();
        };
        let index = |p: f64| ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        let (i50, i95) = (index(0.50), index(0.95));
        // Selecting the two ranks costs less than sorting: after the first selection, the
        // values below the 95th percentile are the ones before it.
        let (below, &mut p95, _) = values_ns.select_nth_unstable(i95);
        let p50 = if i50 < i95 {
            *below.select_nth_unstable(i50).1
        } else {
            p95
        };
        let ms = |ns: i64| ns as f64 / 1e6;
        LatencyMs {
            count: n as u64,
            p50: ms(p50),
            p95: ms(p95),
            max: ms(max),
        }
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
    /// Median of those intervals.
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
}

impl Summary {
    /// Figures of `findings`, with the `top_sources` busiest sources.
    pub fn new(findings: &Findings, top_sources: usize) -> Summary {
        // One pass over each table: the records are large, and reading them is most of the
        // cost.
        let mut collisions = OutcomeCounts::default();
        // Counted by role, named once: a map lookup per collision cost more than the rest.
        let mut by_holder = [0u64; 2];
        let (mut agreeing, mut judged) = (0u64, 0u64);
        let mut collided = vec![false; findings.connections.len()];
        let mut added = Vec::with_capacity(findings.collisions.len());
        for c in &findings.collisions {
            collisions.add(c.outcome, c.inferred);
            by_holder[usize::from(c.holder_role == Role::Orig)] += 1;
            if let Some(agrees) = c.prediction_agrees {
                judged += 1;
                agreeing += u64::from(agrees);
            }
            if let Some(flag) = collided.get_mut(c.uid as usize) {
                *flag = true;
            }
            added.extend(c.cost_ns);
        }
        let holders: BTreeMap<&'static str, u64> =
            [("server", by_holder[0]), ("client", by_holder[1])]
                .into_iter()
                .filter(|&(_, count)| count > 0)
                .collect();
        let mut clean = Vec::new();
        let mut sources = Sources::default();
        let mut directions = Directions::default();
        let mut by_input: Vec<Directions> = Vec::new();
        let (mut midstream, mut bytes_not_captured) = (0, 0);
        for c in &findings.connections {
            directions.add(c.unseen_side);
            let input = usize::from(c.first_frame.file_index);
            if by_input.len() <= input {
                by_input.resize(input + 1, Directions::default());
            }
            by_input[input].add(c.unseen_side);
            midstream += u64::from(c.conn_state == ZeekState::OTH);
            bytes_not_captured += u64::from(c.low_confidence & Doubt::BytesNotCaptured as u8 != 0);
            // A collision belongs to one connection, from the same source.
            let collided = collided.get(c.uid as usize).copied().unwrap_or(false);
            if !collided {
                clean.extend(c.syn_to_syn_ack_ns);
            }
            sources.add(c, collided);
        }
        Summary {
            connections: findings.connections.len() as u64,
            syn: findings.counters.syn,
            collisions,
            directions,
            directions_by_input: by_input
                .into_iter()
                .enumerate()
                .filter(|(_, directions)| directions.total() > 0)
                .map(|(input, directions)| InputDirections {
                    input: input as u16,
                    directions,
                })
                .collect(),
            midstream,
            bytes_not_captured,
            time_wait_holders: holders,
            reused_tuples: findings.counters.reused_tuples,
            client_side_reuse: findings.counters.client_side_reuse,
            prediction_agreement: (judged > 0).then(|| agreeing as f64 / judged as f64),
            added_latency_ms: LatencyMs::from_ns(added),
            clean_handshake_ms: LatencyMs::from_ns(clean),
            sources: sources.busiest(top_sources),
        }
    }
}

/// What the connections of one source add up to.
struct Tally {
    orig_h: IpAddr,
    /// Source port of each connection. Not a bit set of the 65,536 ports: at 8 KiB a source,
    /// a SYN flood from spoofed addresses (one connection each) would take gigabytes.
    ports: Vec<u16>,
    intervals: Vec<i64>,
    collisions: u64,
    first_ts_ns: i64,
    last_ts_ns: i64,
}

/// Tallies by source address.
#[derive(Default)]
struct Sources {
    tallies: Vec<Tally>,
    by_address: FxHashMap<IpAddr, usize>,
    /// The last source seen: connections from one source (a SNAT address) tend to follow each
    /// other.
    last: Option<usize>,
}

impl Sources {
    fn add(&mut self, c: &ConnectionRecord, collided: bool) {
        let at = match self.last {
            Some(at) if self.tallies[at].orig_h == c.orig_h => at,
            _ => *self.by_address.entry(c.orig_h).or_insert_with(|| {
                self.tallies.push(Tally {
                    orig_h: c.orig_h,
                    ports: Vec::new(),
                    intervals: Vec::new(),
                    collisions: 0,
                    first_ts_ns: c.ts_ns,
                    last_ts_ns: c.ts_ns,
                });
                self.tallies.len() - 1
            }),
        };
        self.last = Some(at);
        let tally = &mut self.tallies[at];
        tally.ports.push(c.orig_p);
        tally.intervals.extend(c.reuse_interval_ns);
        tally.collisions += u64::from(collided);
        tally.first_ts_ns = tally.first_ts_ns.min(c.ts_ns);
        tally.last_ts_ns = tally.last_ts_ns.max(c.ts_ns);
    }

    /// The `top` sources with the most connections (then by address).
    fn busiest(self, top: usize) -> Vec<SourceSummary> {
        // One bit set for all the sources, each clearing its bits after use: distinct ports
        // without sorting each source's (the busiest has one per connection).
        let mut seen = vec![0u64; (usize::from(u16::MAX) + 1) / 64];
        let mut out: Vec<SourceSummary> = self
            .tallies
            .into_iter()
            .map(|mut t| {
                let connections = t.ports.len() as u64;
                let port_min = t.ports.iter().min().copied().unwrap_or(0);
                let port_max = t.ports.iter().max().copied().unwrap_or(0);
                let mut ports_in_use = 0;
                for &port in &t.ports {
                    let (word, bit) = (usize::from(port) / 64, 1 << (port % 64));
                    ports_in_use += u64::from(seen[word] & bit == 0);
                    seen[word] |= bit;
                }
                for &port in &t.ports {
                    seen[usize::from(port) / 64] = 0;
                }
                let min_reuse_interval_ns = t.intervals.iter().min().copied();
                // The median is the element a sort would put in the middle: selected, not
                // sorted.
                let middle = t.intervals.len() / 2;
                let median_reuse_interval_ns = (middle < t.intervals.len())
                    .then(|| *t.intervals.select_nth_unstable(middle).1);
                SourceSummary {
                    orig_h: t.orig_h,
                    connections,
                    port_min,
                    port_max,
                    ports_in_use,
                    min_reuse_interval_ns,
                    median_reuse_interval_ns,
                    reuses: t.intervals.len() as u64,
                    collisions: t.collisions,
                    first_ts_ns: t.first_ts_ns,
                    last_ts_ns: t.last_ts_ns,
                }
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
    fn nearest_rank_percentiles() {
        let ms = |v: i64| v * 1_000_000;
        let latency = LatencyMs::from_ns((1..=100).map(ms).collect());
        assert_eq!((latency.p50, latency.p95, latency.max), (50.0, 95.0, 100.0));
        assert_eq!(LatencyMs::from_ns(vec![ms(7)]).p95, 7.0);
        assert_eq!(LatencyMs::from_ns(Vec::new()).count, 0);
    }

    #[test]
    fn selected_percentiles_are_the_sorted_ranks() {
        let mut state = 7u64;
        for len in [1, 2, 3, 19, 20, 21, 1000] {
            let values: Vec<i64> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    (state >> 54) as i64
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let rank = |p: f64| sorted[((p * len as f64).ceil() as usize).clamp(1, len) - 1];
            let latency = LatencyMs::from_ns(values);
            let ms = |ns: i64| ns as f64 / 1e6;
            assert_eq!(latency.p50, ms(rank(0.50)), "{len} values");
            assert_eq!(latency.p95, ms(rank(0.95)), "{len} values");
            assert_eq!(latency.max, ms(sorted[len - 1]), "{len} values");
        }
    }
}
