//! Key figures derived from the findings: the numbers a verdict and a report rest on.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::findings::Findings;
use crate::records::{Outcome, Role};

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
}

impl OutcomeCounts {
    fn add(&mut self, outcome: Outcome) {
        self.total += 1;
        *match outcome {
            Outcome::Accepted => &mut self.accepted,
            Outcome::RejectedRecovered => &mut self.rejected_recovered,
            Outcome::Reset => &mut self.reset,
            Outcome::Unanswered => &mut self.unanswered,
            Outcome::Failed => &mut self.failed,
        } += 1;
    }
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
        if values_ns.is_empty() {
            return LatencyMs::default();
        }
        values_ns.sort_unstable();
        let rank = |p: f64| {
            let i = ((p * values_ns.len() as f64).ceil() as usize).clamp(1, values_ns.len());
            values_ns[i - 1] as f64 / 1e6
        };
        LatencyMs {
            count: values_ns.len() as u64,
            p50: rank(0.50),
            p95: rank(0.95),
            max: values_ns[values_ns.len() - 1] as f64 / 1e6,
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
        let mut collisions = OutcomeCounts::default();
        let mut holders: BTreeMap<&'static str, u64> = BTreeMap::new();
        let (mut agreeing, mut judged) = (0u64, 0u64);
        for c in &findings.collisions {
            collisions.add(c.outcome);
            let holder = match c.holder_role {
                Role::Resp => "server",
                Role::Orig => "client",
            };
            *holders.entry(holder).or_insert(0) += 1;
            if let Some(agrees) = c.prediction_agrees {
                judged += 1;
                agreeing += u64::from(agrees);
            }
        }
        let mut collided = vec![false; findings.connections.len()];
        for c in &findings.collisions {
            if let Some(flag) = collided.get_mut(c.uid as usize) {
                *flag = true;
            }
        }
        let added = findings
            .collisions
            .iter()
            .filter_map(|c| c.cost_ns)
            .collect();
        let clean = findings
            .connections
            .iter()
            .filter(|c| !collided.get(c.uid as usize).copied().unwrap_or(false))
            .filter_map(|c| c.syn_to_syn_ack_ns)
            .collect();
        Summary {
            connections: findings.connections.len() as u64,
            syn: findings.counters.syn,
            collisions,
            time_wait_holders: holders,
            reused_tuples: findings.counters.reused_tuples,
            client_side_reuse: findings.counters.client_side_reuse,
            prediction_agreement: (judged > 0).then(|| agreeing as f64 / judged as f64),
            added_latency_ms: LatencyMs::from_ns(added),
            clean_handshake_ms: LatencyMs::from_ns(clean),
            sources: sources(findings, top_sources),
        }
    }
}

fn sources(findings: &Findings, top: usize) -> Vec<SourceSummary> {
    struct Tally {
        ports: Vec<u16>,
        intervals: Vec<i64>,
        collisions: u64,
        first_ts_ns: i64,
        last_ts_ns: i64,
    }
    let mut by_source: BTreeMap<IpAddr, Tally> = BTreeMap::new();
    for c in &findings.connections {
        let tally = by_source.entry(c.orig_h).or_insert_with(|| Tally {
            ports: Vec::new(),
            intervals: Vec::new(),
            collisions: 0,
            first_ts_ns: c.ts_ns,
            last_ts_ns: c.ts_ns,
        });
        tally.ports.push(c.orig_p);
        tally.intervals.extend(c.reuse_interval_ns);
        tally.first_ts_ns = tally.first_ts_ns.min(c.ts_ns);
        tally.last_ts_ns = tally.last_ts_ns.max(c.ts_ns);
    }
    for c in &findings.collisions {
        if let Some(tally) = by_source.get_mut(&c.orig_h) {
            tally.collisions += 1;
        }
    }
    let mut out: Vec<SourceSummary> = by_source
        .into_iter()
        .map(|(orig_h, mut t)| {
            let connections = t.ports.len() as u64;
            t.ports.sort_unstable();
            let (port_min, port_max) = (t.ports[0], t.ports[t.ports.len() - 1]);
            t.ports.dedup();
            t.intervals.sort_unstable();
            SourceSummary {
                orig_h,
                connections,
                port_min,
                port_max,
                ports_in_use: t.ports.len() as u64,
                min_reuse_interval_ns: t.intervals.first().copied(),
                median_reuse_interval_ns: t.intervals.get(t.intervals.len() / 2).copied(),
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
}
