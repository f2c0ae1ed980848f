//! Port exhaustion on the balancer itself: when the balancer closes first, the TIME_WAIT is
//! its own, no SYN ever hits the server's, and the wire shows no collision. What it shows
//! instead: a source that opened connections quickly from a small, dense set of ports, then
//! stopped, every one of those ports held in its own TIME_WAIT, while the capture went on.
//! Its `connect()` then fails for want of a free port (EADDRNOTAVAIL on Linux), which the
//! capture cannot show directly: the finding says so.

use std::net::IpAddr;

use rustc_hash::FxHashMap;
use serde::Serialize;
use twsleuth_flows::{
    ActiveCloser, ConnectionRecord, Endpoint, Findings, SECOND_NS, TimeWaitPolicy,
};

/// Fewest distinct ports for a pool to count: a handful of connections that stop is no
/// evidence of a pool running out.
const MIN_PORTS: u64 = 8;
/// The quiet after the pool filled must last this long at least...
const MIN_QUIET_NS: i64 = SECOND_NS;
/// ...and this many times the source's mean interval between connections before it.
const QUIET_INTERVALS: i64 = 10;

/// A source whose ports toward one destination were all in its own TIME_WAIT while it stopped
/// opening connections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PortExhaustion {
    /// The balancer's (SNAT) address.
    pub source: IpAddr,
    /// Where its connections went.
    pub destination: Endpoint,
    /// Distinct source ports it used toward the destination.
    pub ports_in_use: u64,
    /// Lowest and highest of them.
    pub port_min: u16,
    /// Highest port used.
    pub port_max: u16,
    /// Connections it opened toward the destination before the pool filled.
    pub connections: u64,
    /// From its first connection to the moment every port was in its own TIME_WAIT.
    pub filled_in_ns: i64,
    /// When every port was in its own TIME_WAIT.
    pub full_since_ns: i64,
    /// How long after that it opened nothing toward the destination, while the capture
    /// went on (and the TIME_WAITs lasted).
    pub quiet_ns: i64,
    /// The connection rate it would have needed the ports for, per second.
    pub rate_per_s: f64,
    /// The rate its ports sustain when each is held for the TIME_WAIT: ports / TIME_WAIT.
    pub sustainable_per_s: f64,
}

/// One source-destination pair's connections.
#[derive(Debug, Default)]
struct Pair {
    /// How many began, and the first and last start.
    connections: u64,
    first_start_ns: i64,
    last_start_ns: i64,
    /// Per port: its last incarnation's own TIME_WAIT start, if the source closed it first.
    last_own_time_wait: FxHashMap<u16, Option<i64>>,
}

/// Watches the connection records as they come (in any order but each tuple's own) for a
/// source that runs out of ports in its own TIME_WAIT: [`ExhaustionDetector::finish`] says
/// which did, by the evidence above.
#[derive(Debug, Default)]
pub struct ExhaustionDetector {
    pairs: FxHashMap<(IpAddr, Endpoint), Pair>,
}

impl ExhaustionDetector {
    /// Adds a connection record.
    pub fn connection(&mut self, c: &ConnectionRecord) {
        let destination = Endpoint {
            ip: c.resp_h,
            port: c.resp_p,
        };
        let own = matches!(
            c.active_closer,
            Some(ActiveCloser::Orig | ActiveCloser::Both)
        );
        // Only a source that holds TIME_WAITs of its own can run out of ports that way: a pair
        // is followed from its first such connection, so that a SYN flood or a port scan
        // (no TIME_WAIT at all) takes no memory here.
        let key = (c.orig_h, destination);
        let pair = match self.pairs.get_mut(&key) {
            Some(pair) => pair,
            None if own && c.time_wait_start_ns.is_some() => self.pairs.entry(key).or_default(),
            None => return,
        };
        if pair.connections == 0 {
            (pair.first_start_ns, pair.last_start_ns) = (c.ts_ns, c.ts_ns);
        }
        pair.connections += 1;
        pair.first_start_ns = pair.first_start_ns.min(c.ts_ns);
        pair.last_start_ns = pair.last_start_ns.max(c.ts_ns);
        pair.last_own_time_wait
            .insert(c.orig_p, c.time_wait_start_ns.filter(|_| own));
    }

    /// The sources that ran out of ports; `capture_end_ns` is the last frame's time (of any
    /// kind: the capture went on).
    pub fn finish(self, policy: &TimeWaitPolicy, capture_end_ns: i64) -> Vec<PortExhaustion> {
        let mut found: Vec<PortExhaustion> = self
            .pairs
            .into_iter()
            .filter_map(|((source, destination), pair)| {
                exhausted(source, destination, pair, policy, capture_end_ns)
            })
            .collect();
        found.sort_by_key(|e| (e.source, e.destination));
        found
    }
}

/// The sources of `findings` that ran out of ports in their own TIME_WAIT.
pub fn detect(
    findings: &Findings,
    policy: &TimeWaitPolicy,
    capture_end_ns: i64,
) -> Vec<PortExhaustion> {
    let mut detector = ExhaustionDetector::default();
    findings
        .connections
        .iter()
        .for_each(|c| detector.connection(c));
    detector.finish(policy, capture_end_ns)
}

fn exhausted(
    source: IpAddr,
    destination: Endpoint,
    pair: Pair,
    policy: &TimeWaitPolicy,
    capture_end_ns: i64,
) -> Option<PortExhaustion> {
    let ports = pair.last_own_time_wait.len() as u64;
    let port_min = *pair.last_own_time_wait.keys().min()?;
    let port_max = *pair.last_own_time_wait.keys().max()?;
    // A small pool, densely used (Linux takes one parity first: twice the ports at most).
    let span = u64::from(port_max - port_min) + 1;
    if ports < MIN_PORTS || span > 2 * ports {
        return None;
    }
    // Every port's last connection left the source in TIME_WAIT...
    let starts: Vec<i64> = pair
        .last_own_time_wait
        .values()
        .copied()
        .collect::<Option<_>>()?;
    let full_since_ns = *starts.iter().max()?;
    let duration_ns = policy.duration_ns(source);
    let first_end_ns = starts.iter().min()?.saturating_add(duration_ns);
    // ...all at once (no connection comes after the last port's)...
    if first_end_ns <= full_since_ns {
        return None;
    }
    // ...for far longer than the source's rhythm before (the mean interval between its
    // connections), while the capture went on.
    let quiet_ns = first_end_ns.min(capture_end_ns) - full_since_ns;
    let rhythm_ns = (pair.last_start_ns - pair.first_start_ns) / pair.connections.max(1) as i64;
    if quiet_ns < MIN_QUIET_NS.max(QUIET_INTERVALS.saturating_mul(rhythm_ns)) {
        return None;
    }
    let filled_in_ns = full_since_ns - pair.first_start_ns;
    let connections = pair.connections;
    Some(PortExhaustion {
        source,
        destination,
        ports_in_use: ports,
        port_min,
        port_max,
        connections,
        filled_in_ns,
        full_since_ns,
        quiet_ns,
        rate_per_s: connections as f64 / (filled_in_ns.max(1) as f64 / SECOND_NS as f64),
        sustainable_per_s: ports as f64 / (duration_ns as f64 / SECOND_NS as f64),
    })
}
