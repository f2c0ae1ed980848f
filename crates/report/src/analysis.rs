//! What the findings mean, as data the renderers lay out: the verdict (the same sentences in
//! `analyze`'s text and the report), who holds the TIME_WAIT, the refusals' reasons, the
//! capacity model, and the incident's timeline. The document ([`crate::content`]), the charts
//! and the exports show these; none of them decides anything of its own.

use std::collections::BTreeMap;

use twsleuth_flows::{
    ActiveClosers, FirstFew, Reason, ReasonCounts, Role, SECOND_NS, Summary, TrackerCounters,
};

use crate::ReportInput;
use crate::exhaustion::PortExhaustion;
use crate::limits::{Completeness, missing_direction_words};
use crate::time::format_utc_ms;
use crate::words::{count, duration, human, rate};

/// Source ports a host can use at most: 1024–65535 (what a wide `ip_local_port_range` or a
/// balancer's full SNAT port pool gives).
const FULL_PORT_RANGE: u64 = 64_512;

/// Of those, the ports Linux `connect()` cycles through while the balancer holds no TIME_WAIT
/// of its own: the range's low end's parity only (`__inet_hash_connect` scans ports of
/// `low`'s parity first and the other parity only when none is free; DESIGN.md section 9).
pub const LINUX_CONNECT_PORTS: u64 = FULL_PORT_RANGE / 2;

/// Sources the capacity model covers (the busiest).
pub const CAPACITY_SOURCES: usize = 5;

/// The verdict: first what limits the evidence (a lower bound, one direction only), then what
/// collided with whose TIME_WAIT and what it cost, or what was checked. Never an all-clear
/// where [`Completeness`] says a collision could be hidden.
pub fn verdict(
    summary: &Summary,
    counters: &TrackerCounters,
    completeness: &Completeness,
    exhaustion: &[PortExhaustion],
) -> String {
    let c = &summary.collisions;
    let mut sentences = Vec::new();
    let evicted = counters.time_wait_evictions;
    if evicted > 0 {
        sentences.push(format!(
            "A lower bound: {} tuples still in TIME_WAIT were evicted to stay within --max-memory, and SYNs on them afterwards went unchecked.",
            count(evicted)
        ));
    }
    if let Some(missing) = summary.directions.mostly_missing() {
        let one_sided = summary.directions.originator_only + summary.directions.responder_only;
        sentences.push(format!(
            "This capture holds one direction only for {} of {} connections ({}): what follows is inferred from that direction.",
            count(one_sided),
            count(summary.directions.total()),
            missing_direction_words(missing)
        ));
    }
    sentences.extend(exhaustion.iter().map(exhaustion_sentence));
    if c.total == 0 && !exhaustion.is_empty() {
        sentences.push(format!(
            "No SYN hit a TIME_WAIT held by a server ({} connections checked).",
            count(summary.connections)
        ));
        return sentences.join(" ");
    }
    if c.total == 0 {
        if completeness.complete {
            sentences.push(format!(
                "No TIME_WAIT collision: {} connections and {} SYNs checked; {} port reuses, all after the TIME_WAIT ended or by an endpoint reusing its own ({}).",
                count(summary.connections),
                count(summary.syn),
                count(summary.reused_tuples),
                count(summary.client_side_reuse)
            ));
            sentences.push(closers_sentence(
                &summary.active_closers,
                summary.connections,
            ));
        } else {
            // A capture of one direction is named in the first sentence already.
            let mut reasons: Vec<&str> = completeness
                .blocking()
                .filter(|l| l.kind != "direction_missing")
                .map(|l| l.text.as_str())
                .collect();
            match summary.directions.mostly_missing() {
                Some(Role::Orig) if reasons.is_empty() => reasons.push(
                    "a SYN the server ignored, or answered with a rate-limited silence, leaves no trace in the servers' segments.",
                ),
                Some(Role::Resp) if reasons.is_empty() => reasons.push(
                    "the servers' answers are only inferred, and unknown where the originator sent nothing after its SYN.",
                ),
                _ => {}
            }
            sentences.push(format!(
                "No TIME_WAIT collision was found in {} connections, but this is not an all-clear: {}",
                count(summary.connections),
                reasons.join(" ")
            ));
            sentences.push(closers_sentence(
                &summary.active_closers,
                summary.connections,
            ));
        }
        return sentences.join(" ");
    }
    sentences.push(collisions_sentence(summary));
    if summary.reasons.total() > 0 {
        sentences.push(format!("Refused: {}.", reasons_breakdown(&summary.reasons)));
    }
    sentences.join(" ")
}

/// Who closed first, and so holds the TIME_WAIT (DESIGN.md section 4), over all connections.
pub fn closers_sentence(closers: &ActiveClosers, connections: u64) -> String {
    let closed = [
        ("the server", closers.server),
        ("the client", closers.client),
        ("both ends at once", closers.both),
    ];
    let named: Vec<(&str, u64)> = closed.into_iter().filter(|(_, n)| *n > 0).collect();
    match named.as_slice() {
        [] => format!(
            "None of the {} connections was seen closing: who would hold a TIME_WAIT is not known.",
            count(connections)
        ),
        [("the client", n)] => format!(
            "The client closed first in {} of {} connections, so the TIME_WAIT is the client's own: reusing it hits no server state.",
            count(*n),
            count(connections)
        ),
        [(who, n)] => format!(
            "{} closed first in {} of {} connections, so the TIME_WAIT is {}.",
            capitalized(who),
            count(*n),
            count(connections),
            if *who == "the server" {
                "the server's"
            } else {
                "held at both ends"
            }
        ),
        _ => format!(
            "Who closed first, and so holds the TIME_WAIT: {} (of {} connections).",
            named
                .iter()
                .map(|(who, n)| format!("{who} in {}", count(*n)))
                .collect::<Vec<_>>()
                .join(", "),
            count(connections)
        ),
    }
}

fn capitalized(words: &str) -> String {
    let mut chars = words.chars();
    chars.next().map_or(String::new(), |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

/// A reason for a refusal, in words.
pub fn reason_words(reason: Reason) -> &'static str {
    match reason {
        Reason::Paws => "PAWS: TSval older than the TIME_WAIT's ts_recent",
        Reason::SeqNotAfterRcvNxt => "sequence number not after the old rcv_nxt",
        Reason::HolderReset => "reset by the TIME_WAIT holder",
        Reason::LinuxWouldAccept => "refused although Linux's rule accepts it",
        Reason::NotModelled => "refused by a stack whose rules are not modelled",
    }
}

/// The refused collisions by reason, with what each reason shows: `7 by PAWS (…)`.
pub fn reasons_breakdown(r: &ReasonCounts) -> String {
    let mut parts = Vec::new();
    if r.paws > 0 {
        parts.push(format!(
            "{} by PAWS (the SYN's TSval was older than the TIME_WAIT's ts_recent, by up to {} TSval ticks, milliseconds on Linux: the timestamps coming from that address went back)",
            count(r.paws),
            count(u64::from(r.paws_max_step_back))
        ));
    }
    if r.seq_not_after_rcv_nxt > 0 {
        let without = r.seq_not_after_rcv_nxt_without_timestamps;
        let with = r.seq_not_after_rcv_nxt - without;
        let mut timestamps = Vec::new();
        if without > 0 {
            timestamps.push(format!("{} without TCP timestamps", count(without)));
        }
        if with > 0 {
            timestamps.push(format!(
                "{} with a TSval not newer than ts_recent",
                count(with)
            ));
        }
        parts.push(format!(
            "{} for a sequence number not after the old rcv_nxt ({})",
            count(r.seq_not_after_rcv_nxt),
            timestamps.join(", ")
        ));
    }
    if r.holder_reset > 0 {
        parts.push(format!(
            "{} reset by the TIME_WAIT holder (not what Linux's TIME_WAIT does: another stack or a firewall answered)",
            count(r.holder_reset)
        ));
    }
    if r.linux_would_accept > 0 {
        parts.push(format!(
            "{} although Linux's rule accepts their numbers (the server is not Linux, or the capture missed a segment)",
            count(r.linux_would_accept)
        ));
    }
    if r.not_modelled > 0 {
        parts.push(format!(
            "{} by a server stack whose rules twsleuth does not model (--server-os)",
            count(r.not_modelled)
        ));
    }
    parts.join("; ")
}

/// A balancer that ran out of ports in its own TIME_WAIT, with what the capture cannot show.
fn exhaustion_sentence(e: &PortExhaustion) -> String {
    format!(
        "Port exhaustion on the balancer: {} held every one of the {} ports it used toward {} ({}–{}) in its own TIME_WAIT from {}, after opening {} connections in {}, and opened none toward it in the {} that followed: it closed first, so the TIME_WAIT is its own, and its connect() most likely failed for want of a free port (EADDRNOTAVAIL on Linux), which a capture cannot show. Those ports sustain {} connections/s ({} ports ÷ {} of TIME_WAIT); it opened them at {}/s.",
        e.source,
        count(e.ports_in_use),
        e.destination,
        e.port_min,
        e.port_max,
        format_utc_ms(e.full_since_ns),
        count(e.connections),
        duration(e.filled_in_ns),
        duration(e.quiet_ns),
        rate(e.sustainable_per_s),
        count(e.ports_in_use),
        duration((e.ports_in_use as f64 / e.sustainable_per_s * 1e9) as i64),
        rate(e.rate_per_s)
    )
}

/// What collided with whose TIME_WAIT and what it cost.
fn collisions_sentence(summary: &Summary) -> String {
    let c = &summary.collisions;
    fn list<T: std::fmt::Display + Ord>(few: &FirstFew<T>) -> String {
        let shown: Vec<String> = few.first.iter().map(ToString::to_string).collect();
        let more = few.count.saturating_sub(shown.len() as u64);
        if more > 0 {
            format!("{} and {} more", shown.join(", "), count(more))
        } else {
            shown.join(", ")
        }
    }
    let holders: Vec<String> = summary
        .time_wait_holders
        .iter()
        .rev()
        .map(|(who, n)| {
            if summary.time_wait_holders.len() == 1 {
                format!("the {who}, which closed first")
            } else {
                format!("the {who}, which closed first ({})", count(*n))
            }
        })
        .collect();
    let closer = holders.join(", and by ");
    let mut sentence = format!(
        "TIME_WAIT collisions on {} → {}: {} SYNs hit 4-tuples held in TIME_WAIT by {closer}",
        list(&summary.collided_sources),
        list(&summary.collided_servers),
        count(c.total)
    );
    if c.inferred > 0 {
        sentence.push_str(&format!(
            " ({} inferred from one direction)",
            count(c.inferred)
        ));
    }
    let slowed = c.rejected_recovered + c.unanswered;
    if slowed > 0 {
        sentence.push_str(&format!(
            "; {} were rejected or unanswered and cost {} each (median)",
            count(slowed),
            duration((summary.rejected_cost_ms.p50 * 1e6) as i64)
        ));
    }
    if c.accepted > 0 && c.accepted == c.total {
        // An accepted SYN is answered by a SYN-ACK at once, as on a fresh tuple.
        sentence.push_str(&format!(
            "; all {} were accepted at their first SYN, which cost nothing (no extra round trip): harmless while the server keeps accepting them",
            count(c.accepted)
        ));
    } else if c.accepted > 0 {
        sentence.push_str(&format!("; {} were accepted", count(c.accepted)));
    }
    if c.failed + c.reset > 0 {
        sentence.push_str(&format!("; {} never connected", count(c.failed + c.reset)));
    }
    if c.unknown > 0 {
        sentence.push_str(&format!(
            "; for {} the captured direction cannot tell what happened",
            count(c.unknown)
        ));
    }
    sentence.push('.');
    sentence
}

/// Per-source capacity figures (DESIGN.md section 1: usable ports / TIME_WAIT per destination).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Capacity {
    /// Source address.
    pub source: String,
    /// Source ports really used.
    pub ports_in_use: u64,
    /// Distinct destinations (server address and port) it connected to.
    pub destinations: u64,
    /// Distinct 4-tuples it used: its ports, each toward the destinations it went to. This is
    /// what a source cycles through before it meets a tuple still in TIME_WAIT: ports ×
    /// destinations when every port goes to every server (Linux `connect()` picks a port per
    /// destination), only the ports when the balancer ties each port to one server.
    pub tuples_in_use: u64,
    /// TIME_WAIT duration assumed for the servers, seconds.
    pub time_wait_s: f64,
    /// New connections per second the ports in use sustain without reusing a tuple in
    /// TIME_WAIT.
    pub sustainable_per_s: f64,
    /// Its busiest sliding window (1 s, or a tenth of a span under 10 s), per second.
    pub peak_per_s: f64,
    /// Mean over its real span (first to last connection start); 0 when all began at once.
    pub mean_per_s: f64,
    /// Its connections in which the server closed first (alone or at once with it): the
    /// server holds those TIME_WAITs, and only those make collisions (DESIGN.md section 4).
    pub server_closed_first: u64,
    /// Its connections in which it closed first alone: the TIME_WAIT is its own.
    pub client_closed_first: u64,
    /// SNAT addresses the peak needs with this many ports each; `None` where the server
    /// closed first in none of its connections (the model does not apply).
    pub addresses_needed: Option<u64>,
    /// SNAT addresses the peak needs with ports 1024–65535 each, of which Linux `connect()`
    /// uses the 32,256 of one parity; `None` as above.
    pub addresses_needed_full_range: Option<u64>,
}

impl Capacity {
    /// The server holds TIME_WAIT on some of this source's tuples: the server-side model
    /// applies.
    pub fn server_holds_time_wait(&self) -> bool {
        self.server_closed_first > 0
    }

    /// The tuples this address could cycle through on Linux with ports 1024–65535 (the
    /// [`LINUX_CONNECT_PORTS`] of one parity, each toward as many destinations as its ports
    /// went to): the TIME_WAIT occupancy at which every new connection would meet a tuple
    /// still held, rounded to a whole tuple.
    pub fn full_range_tuples(&self) -> u64 {
        tuples_with_full_range(self.tuples_in_use, self.ports_in_use).round() as u64
    }
}

/// The capacity model for the busiest sources.
pub fn capacity(input: &ReportInput<'_>) -> Vec<Capacity> {
    input
        .summary
        .sources
        .iter()
        .zip(&input.records.tuples)
        .map(|(s, tuples)| {
            let tuples_in_use = tuples.tuples.max(1);
            let source = s.orig_h.to_string();
            let time_wait_s = input.policy.default_ns as f64 / 1e9;
            let sustainable_per_s = tuples_in_use as f64 / time_wait_s.max(1e-9);
            let peak_per_s = tuples.rate.peak_per_s.unwrap_or(0.0);
            let (server_closed_first, client_closed_first) =
                (tuples.server_closed_first, tuples.client_closed_first);
            // Addresses that give `tuples` each keep the peak off the server's TIME_WAIT; no
            // address helps where the server holds none.
            let needed = |tuples: f64| -> Option<u64> {
                let per_address = tuples / time_wait_s.max(1e-9);
                (server_closed_first > 0)
                    .then(|| ((peak_per_s / per_address.max(1e-9)).ceil() as u64).max(1))
            };
            Capacity {
                ports_in_use: s.ports_in_use,
                destinations: tuples.destinations,
                tuples_in_use,
                time_wait_s,
                sustainable_per_s,
                peak_per_s,
                mean_per_s: tuples.rate.mean_per_s.unwrap_or(0.0),
                server_closed_first,
                client_closed_first,
                addresses_needed: needed(tuples_in_use as f64),
                addresses_needed_full_range: needed(tuples_with_full_range(
                    tuples_in_use,
                    s.ports_in_use,
                )),
                source,
            }
        })
        .collect()
}

/// The tuples an address gives with ports 1024–65535 on Linux (the [`LINUX_CONNECT_PORTS`]
/// of one parity), each port going to as many destinations as the ports in use went to.
fn tuples_with_full_range(tuples_in_use: u64, ports_in_use: u64) -> f64 {
    tuples_in_use as f64 / ports_in_use.max(1) as f64 * LINUX_CONNECT_PORTS as f64
}

/// Seconds without a refused SYN that end an episode of refusals.
const EPISODE_GAP_S: i64 = 5;
/// Episodes of refusals listed in the timeline.
const MAX_EPISODES_SHOWN: usize = 10;

/// The incident's timeline as changes, in time order (capture time, ns): the first and last
/// collision, the first of each other outcome, when each busy source's tuples in TIME_WAIT
/// crossed 50%, 90% and 100% of the tuples it used (while the capture lasts), and the
/// episodes of refused SYNs (begin and end).
pub fn timeline_events(input: &ReportInput<'_>, capacity: &[Capacity]) -> Vec<(i64, String)> {
    let mut events: Vec<(i64, String)> = Vec::new();
    let collisions = &input.records.collisions;
    if let Some(first) = collisions.shown.first() {
        events.push((
            first.ts_ns,
            format!(
                "First collision: {}:{} → {}:{} ({}, frame {})",
                first.orig_h,
                first.orig_p,
                first.resp_h,
                first.resp_p,
                human(&first.outcome),
                first.first_syn_frame.number
            ),
        ));
    }
    if let Some(last) = collisions.last.as_ref().filter(|_| collisions.count > 1) {
        events.push((
            last.ts_ns,
            format!("Last collision ({} in all)", count(collisions.count)),
        ));
    }
    // Occupancy of each busy source's 4-tuples by tuples in TIME_WAIT (as in the capacity
    // model and the occupancy chart): when it crossed 50%, 90% and 100%.
    let t = &input.records.timeline;
    for c in capacity.iter().take(4) {
        let tuples = c.tuples_in_use;
        for threshold in [50u64, 90, 100] {
            // Only while the capture lasts: the timeline's later rows are extrapolated.
            let crossing = (0..t.second.len()).find(|&i| {
                t.observed[i]
                    && *t.orig_h[i] == *c.source
                    && t.time_wait_tuples[i] * 100 >= threshold * tuples
            });
            if let Some(i) = crossing {
                events.push((
                    t.second[i] * SECOND_NS,
                    format!(
                        "{}: tuples in TIME_WAIT reach {threshold}% of the {} tuples it used ({})",
                        c.source,
                        count(tuples),
                        count(t.time_wait_tuples[i])
                    ),
                ));
            }
        }
    }
    // The first collision of each outcome the first collision did not have: when refusals
    // (or the first accepted one) began.
    for c in (collisions.shown.first_of_outcome())
        .filter(|c| collisions.shown.first().is_some_and(|f| f.uid != c.uid))
    {
        events.push((
            c.ts_ns,
            format!(
                "First {} collision: {}:{} → {}:{} (frame {})",
                human(&c.outcome),
                c.orig_h,
                c.orig_p,
                c.resp_h,
                c.resp_p,
                c.first_syn_frame.number
            ),
        ));
    }
    // Episodes of refused SYNs (rejected, reset, unanswered or failed), from the timeline:
    // seconds with refusals less than EPISODE_GAP_S apart are one episode. Steady state is
    // one long episode, not a list of "busy" seconds.
    let mut refused_by_second: BTreeMap<i64, u64> = BTreeMap::new();
    for i in 0..t.second.len() {
        let refused = t.rejected_recovered[i] + t.reset[i] + t.unanswered[i] + t.failed[i];
        if refused > 0 {
            *refused_by_second.entry(t.second[i]).or_default() += refused;
        }
    }
    let mut episodes: Vec<(i64, i64, u64, u64)> = Vec::new();
    for (second, refused) in refused_by_second {
        match episodes.last_mut() {
            Some((_, last, total, peak)) if second - *last < EPISODE_GAP_S => {
                *last = second;
                *total += refused;
                *peak = (*peak).max(refused);
            }
            _ => episodes.push((second, second, refused, refused)),
        }
    }
    let shown = episodes.len().min(MAX_EPISODES_SHOWN);
    for &(first, last, total, peak) in &episodes[..shown] {
        let seconds = last - first + 1;
        events.push((
            first * SECOND_NS,
            format!(
                "Refusals begin in the second from this time: {} refused SYNs over {seconds} s (at most {} in one second)",
                count(total),
                count(peak)
            ),
        ));
        events.push((
            last * SECOND_NS,
            "Refusals end: the episode's last refused SYN came in the second from this time"
                .to_string(),
        ));
    }
    if episodes.len() > shown {
        let (first, ..) = episodes[shown];
        events.push((
            first * SECOND_NS,
            format!(
                "{} more episodes of refusals from here (data/timeline.csv has every second)",
                count((episodes.len() - shown) as u64)
            ),
        ));
    }
    // Stable: events at the same time keep the order they were found in (50% before 90%).
    events.sort_by_key(|(ts, _)| *ts);
    events
}

/// The capacity model of findings held in memory, for tests.
#[cfg(test)]
pub(crate) fn capacity_of_findings(
    findings: &twsleuth_flows::Findings,
    summary: &Summary,
    policy: &twsleuth_flows::TimeWaitPolicy,
) -> Vec<Capacity> {
    let records = crate::stream::RecordDigest::of(findings, summary, policy);
    capacity(&ReportInput {
        records: &records,
        counters: &findings.counters,
        summary,
        accounting: &twsleuth_decode::Accounting::default(),
        policy,
        inputs: Vec::new(),
        evidence: Vec::new(),
        completeness: &crate::limits::Completeness {
            complete: true,
            cannot_show: Vec::new(),
        },
        exhaustion: &[],
        f5: Default::default(),
        capture_points: Vec::new(),
        tool_version: "test",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use twsleuth_flows::ActiveCloser;

    /// 1,000 connections at 10 a second from one address cycling 100 ports toward two
    /// servers, the server closing first; `server_of(i)` picks the server of the i-th.
    fn capacity_of(server_of: impl Fn(u64) -> u8) -> Capacity {
        capacity_of_connections(1_000, SECOND_NS / 10, Some(ActiveCloser::Resp), server_of)
    }

    /// `n` connections `gap_ns` apart from one address cycling 100 ports, closed first by
    /// `closer`; `server_of(i)` picks the server of the i-th.
    fn capacity_of_connections(
        n: u64,
        gap_ns: i64,
        closer: Option<ActiveCloser>,
        server_of: impl Fn(u64) -> u8,
    ) -> Capacity {
        use crate::tables::tests::{connection, findings};
        let findings = findings(
            (0..n)
                .map(|i| {
                    let mut c = connection(i, 1_764_000_000, closer);
                    c.ts_ns += i as i64 * gap_ns;
                    c.orig_p = 40_000 + (i % 100) as u16;
                    c.resp_h = format!("10.1.0.{}", server_of(i)).parse().unwrap();
                    c
                })
                .collect(),
        );
        let policy = twsleuth_flows::TimeWaitPolicy::default();
        capacity_of_findings(&findings, &Summary::new(&findings, 10), &policy).remove(0)
    }

    #[test]
    fn capacity_counts_the_tuples_really_used() {
        // Each port tied to one server (port parity): 100 tuples, 100/60 s sustainable, and
        // the peak of 10/s needs ⌈10 × 60 ÷ 100⌉ = 6 addresses.
        let pinned = capacity_of(|i| (i % 2) as u8);
        assert_eq!(
            (
                pinned.ports_in_use,
                pinned.destinations,
                pinned.tuples_in_use
            ),
            (100, 2, 100)
        );
        assert_eq!(
            (pinned.peak_per_s, pinned.addresses_needed),
            (10.0, Some(6))
        );
        // Every port to both servers: 200 tuples, half as many addresses.
        let spread = capacity_of(|i| ((i / 100) % 2) as u8);
        assert_eq!(spread.tuples_in_use, 200);
        assert_eq!(spread.addresses_needed, Some(3));
        assert!((spread.sustainable_per_s - 200.0 / 60.0).abs() < 1e-9);
        // Ports 1024–65535 give 32,256 of one parity, each toward as many servers as now.
        assert_eq!(spread.addresses_needed_full_range, Some(1));
    }

    #[test]
    fn the_full_range_gives_a_linux_balancer_one_parity_of_its_ports() {
        // 2,000 connections within one second, each port tied to one server: 100 tuples on
        // 100 ports. With ports 1024–65535 a Linux connect() cycles through the 32,256 of the
        // low end's parity, so an address gives 32,256 tuples ÷ 60 s.
        let cap =
            capacity_of_connections(2_000, SECOND_NS / 2_000, Some(ActiveCloser::Resp), |i| {
                (i % 2) as u8
            });
        assert_eq!((cap.ports_in_use, cap.tuples_in_use), (100, 100));
        let needed = |ports: f64| (cap.peak_per_s * 60.0 / ports).ceil() as u64;
        assert_eq!(cap.addresses_needed_full_range, Some(needed(32_256.0)));
        // The whole 64,512 would halve it: the test tells the two apart.
        assert_ne!(
            needed(32_256.0),
            needed(64_512.0),
            "peak {}",
            cap.peak_per_s
        );
    }

    #[test]
    fn no_addresses_are_asked_for_where_the_client_holds_time_wait() {
        // The client closes first: the TIME_WAIT is its own, which no SNAT address changes.
        let cap = capacity_of_connections(1_000, SECOND_NS / 10, Some(ActiveCloser::Orig), |_| 0);
        assert!(!cap.server_holds_time_wait());
        assert_eq!(
            (cap.addresses_needed, cap.addresses_needed_full_range),
            (None, None)
        );
        // The document shows no rate or address count for it.
        let section = crate::content::capacity_section(std::slice::from_ref(&cap));
        let crate::document::Block::Table { rows, .. } = &section.blocks[1] else {
            panic!("no capacity table");
        };
        assert!(rows[0][8].starts_with("– "), "{:?}", rows[0]);
        assert_eq!(
            rows[0][4], "–",
            "no sustainable rate against a server TIME_WAIT"
        );
    }
}
