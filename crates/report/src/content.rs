//! What the report says, built from the findings: verdict, key figures, incident timeline,
//! capacity model, evidence, recommendations, method and accounting.

use std::collections::BTreeMap;
use std::net::IpAddr;

use twsleuth_flows::{
    ActiveCloser, FirstFew, LatencyMs, Role, SECOND_NS, Summary, TrackerCounters,
};

use crate::document::{Block, Document, Inline, Section};
use crate::exhaustion::PortExhaustion;
use crate::limits::{Completeness, missing_direction_words};
use crate::tables::{Tables, label};
use crate::time::{format_utc, format_utc_ms};
use crate::{Evidence, ReportInput};

/// Source ports a host can use at most: 1024–65535 (what a wide `ip_local_port_range` or a
/// balancer's full SNAT port pool gives).
const FULL_PORT_RANGE: u64 = 64_512;
/// Sources the capacity model covers (the busiest).
const CAPACITY_SOURCES: usize = 5;

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: ms below a second, s above.
pub fn duration(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    if s.abs() < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s.abs() < 120.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

/// Percentiles of a latency, to the hundredth of a millisecond: collided and clean
/// handshakes are compared, and on a LAN both can be well under a millisecond.
fn latency(l: &LatencyMs) -> String {
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        l.p50, l.p95, l.max
    )
}

/// A rate in connections per second: whole numbers when large, one decimal when small.
fn rate(per_s: f64) -> String {
    if per_s >= 100.0 {
        count(per_s.round() as u64)
    } else {
        format!("{per_s:.1}")
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// An enum's serde name in words: `rejected_recovered` → `rejected recovered`.
fn human<T: serde::Serialize>(value: &T) -> String {
    label(value).replace('_', " ")
}

fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

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
        }
        return sentences.join(" ");
    }
    sentences.push(collisions_sentence(summary));
    sentences.join(" ")
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
    let holder = summary
        .time_wait_holders
        .iter()
        .max_by_key(|(_, n)| **n)
        .map_or("server", |(who, _)| *who);
    fn list<T: std::fmt::Display + Ord>(few: &FirstFew<T>) -> String {
        let shown: Vec<String> = few.first.iter().map(ToString::to_string).collect();
        let more = few.count.saturating_sub(shown.len() as u64);
        if more > 0 {
            format!("{} and {} more", shown.join(", "), count(more))
        } else {
            shown.join(", ")
        }
    }
    let closer = if holder == "server" {
        "the server, which closed first"
    } else {
        "the client, which closed first"
    };
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
    if c.accepted > 0 {
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
#[derive(Debug, Clone)]
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
    /// Busiest second.
    pub peak_per_s: u64,
    /// Mean over the source's active span.
    pub mean_per_s: f64,
    /// SNAT addresses the peak needs with this many ports each.
    pub addresses_needed: u64,
    /// SNAT addresses the peak needs with the full port range each.
    pub addresses_needed_full_range: u64,
}

/// The capacity model for the busiest sources.
pub fn capacity(input: &ReportInput<'_>, tables: &Tables) -> Vec<Capacity> {
    let busiest: Vec<IpAddr> = input
        .summary
        .sources
        .iter()
        .take(CAPACITY_SOURCES)
        .map(|s| s.orig_h)
        .collect();
    // The 4-tuples of each busy source: (source port, destination address, destination port).
    let mut tuples: Vec<Vec<(u16, IpAddr, u16)>> = vec![Vec::new(); busiest.len()];
    for c in &input.findings.connections {
        if let Some(i) = busiest.iter().position(|ip| *ip == c.orig_h) {
            tuples[i].push((c.orig_p, c.resp_h, c.resp_p));
        }
    }
    let mut peaks: BTreeMap<&str, u64> = BTreeMap::new();
    for (source, new) in tables
        .timeline
        .orig_h
        .iter()
        .zip(&tables.timeline.new_connections)
    {
        let peak = peaks.entry(&**source).or_default();
        *peak = (*peak).max(*new);
    }
    input
        .summary
        .sources
        .iter()
        .zip(tuples)
        .map(|(s, mut tuples)| {
            tuples.sort_unstable();
            tuples.dedup();
            let tuples_in_use = (tuples.len() as u64).max(1);
            let mut destinations: Vec<(IpAddr, u16)> =
                tuples.iter().map(|&(_, ip, port)| (ip, port)).collect();
            destinations.sort_unstable();
            destinations.dedup();
            let source = s.orig_h.to_string();
            let time_wait_s = input.policy.default_ns as f64 / 1e9;
            let sustainable_per_s = tuples_in_use as f64 / time_wait_s.max(1e-9);
            let peak_per_s = peaks.get(source.as_str()).copied().unwrap_or(0);
            let span_s = (s.last_ts_ns.saturating_sub(s.first_ts_ns) as f64 / 1e9).max(1.0);
            // Addresses that give `tuples` each keep the peak off TIME_WAIT.
            let needed = |tuples: f64| -> u64 {
                let per_address = tuples / time_wait_s.max(1e-9);
                ((peak_per_s as f64 / per_address.max(1e-9)).ceil() as u64).max(1)
            };
            Capacity {
                ports_in_use: s.ports_in_use,
                destinations: destinations.len() as u64,
                tuples_in_use,
                time_wait_s,
                sustainable_per_s,
                peak_per_s,
                mean_per_s: s.connections as f64 / span_s,
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

/// The tuples an address gives with the full port range, each port going to as many
/// destinations as the ports in use went to.
fn tuples_with_full_range(tuples_in_use: u64, ports_in_use: u64) -> f64 {
    tuples_in_use as f64 / ports_in_use.max(1) as f64 * FULL_PORT_RANGE as f64
}

/// Builds the whole document. `capacity` is [`capacity`]'s model; `charts` are (file name,
/// title) in the order to show them.
pub fn document(
    input: &ReportInput<'_>,
    tables: &Tables,
    capacity: &[Capacity],
    charts: &[(String, String)],
) -> Document {
    let mut sections = vec![
        Section {
            title: "Verdict".into(),
            blocks: vec![Block::Paragraph(vec![Inline::Strong(verdict(
                input.summary,
                &input.findings.counters,
                input.completeness,
                input.exhaustion,
            ))])],
        },
        cannot_show(input.completeness),
        key_figures(input, tables),
        incident_timeline(input, tables, capacity),
        capacity_section(capacity),
    ];
    if !charts.is_empty() {
        sections.push(Section {
            title: "Charts".into(),
            blocks: charts
                .iter()
                .map(|(file_name, title)| Block::Chart {
                    file_name: file_name.clone(),
                    title: title.clone(),
                })
                .collect(),
        });
    }
    sections.push(evidence_section(input));
    sections.push(recommendations(input, capacity));
    sections.push(method(input));
    Document {
        title: "TIME_WAIT collision report".into(),
        subtitle: format!(
            "twsleuth {} · {}",
            input.tool_version,
            input
                .inputs
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        sections,
    }
}

/// "What this evidence cannot show", filled from the inputs: every limit, the ones that forbid
/// an all-clear first; on a complete capture, that nothing was missing.
fn cannot_show(completeness: &Completeness) -> Section {
    let blocks = if completeness.cannot_show.is_empty() {
        vec![Block::Paragraph(vec![text(
            "Nothing was missing: every connection was captured in both directions, no frame was cut or damaged, no state was evicted, and nothing was inferred.",
        )])]
    } else {
        vec![Block::List(
            completeness
                .cannot_show
                .iter()
                .map(|limit| {
                    let mut item = Vec::new();
                    if limit.blocks_all_clear {
                        item.push(Inline::Strong("Could hide a collision:".into()));
                        item.push(text(" "));
                    }
                    item.push(text(limit.text.clone()));
                    item
                })
                .collect(),
        )]
    };
    Section {
        title: "What this evidence cannot show".into(),
        blocks,
    }
}

fn capture_span(input: &ReportInput<'_>) -> Option<(i64, i64)> {
    let first = input.findings.connections.first()?.ts_ns;
    let last = input
        .findings
        .connections
        .iter()
        .map(|c| c.ts_ns.saturating_add(c.duration_ns))
        .max()?;
    Some((first, last))
}

fn key_figures(input: &ReportInput<'_>, tables: &Tables) -> Section {
    let s = input.summary;
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |k: &str, v: String| rows.push(vec![k.to_string(), v]);
    if let Some((first, last)) = capture_span(input) {
        row(
            "Capture span",
            format!(
                "{} → {} ({})",
                format_utc_ms(first),
                format_utc_ms(last),
                duration(last.saturating_sub(first))
            ),
        );
    }
    row("Connections", count(s.connections));
    row("SYNs (retransmissions included)", count(s.syn));
    let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
    for (second, new) in tables
        .timeline
        .second
        .iter()
        .zip(&tables.timeline.new_connections)
    {
        *per_second.entry(*second).or_default() += new;
    }
    if let (Some(peak), Some(span)) = (per_second.values().max(), capture_span(input)) {
        let span_s = (span.1.saturating_sub(span.0) as f64 / 1e9).max(1.0);
        row(
            "New connections per second",
            format!(
                "peak {}, mean {}",
                count(*peak),
                rate(s.connections as f64 / span_s)
            ),
        );
    }
    for src in &s.sources {
        row(
            &format!("Source {}", src.orig_h),
            format!(
                "{} connections, ports {}–{} ({} in use), reuse interval min {} / median {}",
                count(src.connections),
                src.port_min,
                src.port_max,
                count(src.ports_in_use),
                src.min_reuse_interval_ns.map_or("–".into(), duration),
                src.median_reuse_interval_ns.map_or("–".into(), duration),
            ),
        );
    }
    let c = &s.collisions;
    row(
        "Collisions with TIME_WAIT",
        format!(
            "{} (accepted {}, rejected then recovered {}, reset {}, unanswered {}, failed {}{})",
            count(c.total),
            count(c.accepted),
            count(c.rejected_recovered),
            count(c.reset),
            count(c.unanswered),
            count(c.failed),
            if c.unknown > 0 {
                format!(
                    ", outcome not visible in this capture {}; inferred from one direction {}",
                    count(c.unknown),
                    count(c.inferred)
                )
            } else if c.inferred > 0 {
                format!("; inferred from one direction {}", count(c.inferred))
            } else {
                String::new()
            }
        ),
    );
    let held: Vec<String> = s
        .time_wait_holders
        .iter()
        .map(|(who, n)| format!("{who} {}", count(*n)))
        .collect();
    if !held.is_empty() {
        row("TIME_WAIT held by", held.join(", "));
    }
    if s.added_latency_ms.count > 0 {
        row(
            "Added latency (first SYN → SYN-ACK, collided)",
            latency(&s.added_latency_ms),
        );
    }
    if s.clean_handshake_ms.count > 0 {
        row(
            "Handshake (first SYN → SYN-ACK, clean)",
            latency(&s.clean_handshake_ms),
        );
    }
    if let Some(legs) = &s.legs {
        let added = if legs.added_latency_ms.count > 0 {
            format!(", added {}", latency(&legs.added_latency_ms))
        } else {
            String::new()
        };
        let named: Vec<&str> = legs
            .services
            .iter()
            .filter(|s| s.proxy)
            .filter_map(|s| s.virtual_server.as_deref())
            .collect();
        let virtual_servers = if named.is_empty() {
            String::new()
        } else {
            format!("; F5 virtual server {}", named.join(", "))
        };
        row(
            "End-user requests slowed (proxy legs paired)",
            format!(
                "{} of {} paired (confidence {:.2}){added}{virtual_servers}",
                count(legs.requests_slowed),
                count(legs.pairs),
                legs.confidence
            ),
        );
    }
    if let Some(a) = s.prediction_agreement {
        row(
            "Linux prediction agrees with the wire",
            format!("{:.1}%", a * 100.0),
        );
    }
    row(
        "Port reuses / client-side TIME_WAIT reuse",
        format!(
            "{} / {}",
            count(s.reused_tuples),
            count(s.client_side_reuse)
        ),
    );
    Section {
        title: "Key figures".into(),
        blocks: vec![Block::Table {
            header: vec!["Figure".into(), "Value".into()],
            rows,
        }],
    }
}

fn incident_timeline(input: &ReportInput<'_>, tables: &Tables, capacity: &[Capacity]) -> Section {
    let mut events: Vec<(i64, String)> = Vec::new();
    let collisions = &input.findings.collisions;
    if let Some(first) = collisions.first() {
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
    if let Some(last) = collisions.last().filter(|_| collisions.len() > 1) {
        events.push((
            last.ts_ns,
            format!("Last collision ({} in all)", count(collisions.len() as u64)),
        ));
    }
    // Occupancy of each busy source's 4-tuples by tuples in TIME_WAIT (as in the capacity
    // model and the occupancy chart): when it crossed 50%, 90% and 100%.
    let t = &tables.timeline;
    for c in capacity.iter().take(4) {
        let tuples = c.tuples_in_use;
        for threshold in [50u64, 90, 100] {
            let crossing = (0..t.second.len()).find(|&i| {
                *t.orig_h[i] == *c.source && t.time_wait_tuples[i] * 100 >= threshold * tuples
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
    // Bursts: the three seconds with the most collisions.
    let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
    for (second, n) in t.second.iter().zip(&t.collisions) {
        *per_second.entry(*second).or_default() += n;
    }
    let mut bursts: Vec<(u64, i64)> = per_second
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (n, s))
        .collect();
    bursts.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (n, second) in bursts.into_iter().take(3) {
        events.push((
            second * SECOND_NS,
            format!(
                "Burst: {} collisions in the second from this time",
                count(n)
            ),
        ));
    }
    // Stable: events at the same time keep the order they were found in (50% before 90%).
    events.sort_by_key(|(ts, _)| *ts);
    let blocks = if events.is_empty() {
        vec![Block::Paragraph(vec![text(
            "No collision, and no source's ports came close to being held in TIME_WAIT.",
        )])]
    } else {
        vec![Block::Table {
            header: vec!["Time (UTC)".into(), "Event".into()],
            rows: events
                .into_iter()
                .map(|(ts, what)| vec![format_utc_ms(ts), what])
                .collect(),
        }]
    };
    Section {
        title: "Timeline".into(),
        blocks,
    }
}

fn capacity_section(capacity: &[Capacity]) -> Section {
    let mut blocks = vec![Block::Paragraph(vec![text(
        "A source address can open at most (tuples it cycles through) ÷ TIME_WAIT new connections per second before it comes back to a tuple the server still holds in TIME_WAIT (DESIGN.md section 1). A tuple here is a source port with a server address and port, as the source really used them: its ports (Linux takes one parity first), each toward the servers it went to. That is ports × destinations when every port goes to every server, and only the ports when the balancer ties each port to one server.",
    )])];
    if capacity.is_empty() {
        return Section {
            title: "Capacity model".into(),
            blocks,
        };
    }
    blocks.push(Block::Table {
        header: vec![
            "Source".into(),
            "Ports in use".into(),
            "Destinations".into(),
            "Tuples in use".into(),
            "Sustainable (conn/s)".into(),
            "Peak (conn/s)".into(),
            "Mean (conn/s)".into(),
            "Addresses needed".into(),
            "… with 64,512 ports each".into(),
        ],
        rows: capacity
            .iter()
            .map(|c| {
                vec![
                    c.source.clone(),
                    count(c.ports_in_use),
                    count(c.destinations),
                    count(c.tuples_in_use),
                    rate(c.sustainable_per_s),
                    count(c.peak_per_s),
                    rate(c.mean_per_s),
                    count(c.addresses_needed),
                    count(c.addresses_needed_full_range),
                ]
            })
            .collect(),
    });
    let mut arithmetic = Vec::new();
    for c in capacity {
        arithmetic.push(vec![text(format!(
            "{}: {} tuples in use ({} ports toward {} destination{}) ÷ {:.0} s = {} conn/s sustainable; the peak of {} conn/s needs ⌈{} × {:.0} ÷ {}⌉ = {} address(es) with these ports, or {} with the full 64,512-port range ({} tuples each).",
            c.source,
            count(c.tuples_in_use),
            count(c.ports_in_use),
            count(c.destinations),
            if c.destinations == 1 { "" } else { "s" },
            c.time_wait_s,
            rate(c.sustainable_per_s),
            count(c.peak_per_s),
            count(c.peak_per_s),
            c.time_wait_s,
            count(c.tuples_in_use),
            count(c.addresses_needed),
            count(c.addresses_needed_full_range),
            count(tuples_with_full_range(c.tuples_in_use, c.ports_in_use).round() as u64)
        ))]);
    }
    blocks.push(Block::List(arithmetic));
    Section {
        title: "Capacity model".into(),
        blocks,
    }
}

/// A Wireshark display filter that opens exactly this conversation between these frames.
pub fn display_filter(e: &Evidence) -> String {
    let c = &e.collision;
    let field = if c.orig_h.is_ipv4() {
        "ip.addr"
    } else {
        "ipv6.addr"
    };
    // Frame numbers count within one file: the range covers the steps in the first SYN's file
    // (the previous connection may have ended in the file before, in a set of files).
    let syn = c.first_syn_frame;
    let in_file = || {
        e.steps
            .iter()
            .filter(move |s| s.file_index == syn.file_index)
            .map(|s| s.frame)
    };
    let first = in_file().min().unwrap_or(syn.number);
    let last = in_file().max().unwrap_or(syn.number);
    format!(
        "{field}=={} && {field}=={} && tcp.port=={} && tcp.port=={} && frame.number>={first} && frame.number<={last}",
        c.orig_h, c.resp_h, c.orig_p, c.resp_p
    )
}

/// The packet ladder as fixed-width text: time offset, direction, flags, numbers, note.
pub fn ladder(e: &Evidence) -> String {
    let Some(start) = e.steps.iter().find(|s| {
        (s.file_index, s.frame)
            == (
                e.collision.first_syn_frame.file_index,
                e.collision.first_syn_frame.number,
            )
    }) else {
        return String::new();
    };
    let t0 = start.ts_ns;
    let mut out = String::from(
        "  time (ms)  frame   direction            flags  seq         ack         len  note\n",
    );
    for s in &e.steps {
        let arrow = match s.from {
            Role::Orig => "client → server",
            Role::Resp => "client ← server",
        };
        out.push_str(&format!(
            "{:>11.3}  {:>6}  {:<19}  {:<5}  {:<10}  {:<10}  {:>4}  {}\n",
            s.ts_ns.saturating_sub(t0) as f64 / 1e6,
            s.frame,
            arrow,
            s.flags,
            s.seq,
            s.ack,
            s.payload_len,
            s.note
        ));
    }
    out
}

fn evidence_section(input: &ReportInput<'_>) -> Section {
    let mut blocks = Vec::new();
    if input.evidence.is_empty() {
        blocks.push(Block::Paragraph(vec![text("No collision to show.")]));
    }
    for e in &input.evidence {
        let c = &e.collision;
        let file = input
            .inputs
            .get(usize::from(c.first_syn_frame.file_index))
            .map_or("?", |i| i.name.as_str());
        blocks.push(Block::Paragraph(vec![
            Inline::Strong(format!("{}:", e.label)),
            text(format!(
                " {}:{} → {}:{} at {}, {} (first reply: {}; {} SYN(s); cost {}); the {} had held the tuple in TIME_WAIT for {}. File ",
                c.orig_h,
                c.orig_p,
                c.resp_h,
                c.resp_p,
                format_utc(c.ts_ns),
                human(&c.outcome),
                human(&c.first_reply),
                c.syn_attempts,
                c.cost_ns.map_or("–".into(), duration),
                match c.holder_role {
                    Role::Resp => "server",
                    Role::Orig => "client",
                },
                duration(c.time_wait_age_ns),
            )),
            Inline::Code(file.to_string()),
            text(format!(", frame {}. Wireshark filter: ", c.first_syn_frame.number)),
            Inline::Code(display_filter(e)),
        ]));
        blocks.push(Block::Preformatted(ladder(e)));
    }
    Section {
        title: "Evidence".into(),
        blocks,
    }
}

fn recommendations(input: &ReportInput<'_>, capacity: &[Capacity]) -> Section {
    let s = input.summary;
    let c = &s.collisions;
    let mut items: Vec<Vec<Inline>> = Vec::new();
    let server_closed_first = input
        .findings
        .connections
        .iter()
        .filter(|c| c.active_closer == Some(ActiveCloser::Resp))
        .count() as u64;
    if c.total > 0 {
        if let Some(cap) = capacity.iter().find(|cap| cap.addresses_needed > 1) {
            items.push(vec![
                Inline::Strong("More SNAT addresses. ".into()),
                text(format!(
                    "{} peaks at {} new connections per second against {} sustainable with the {} tuples it used: use at least {} SNAT addresses with the same ports (or {} with the full 64,512-port range each).",
                    cap.source,
                    count(cap.peak_per_s),
                    rate(cap.sustainable_per_s),
                    count(cap.tuples_in_use),
                    count(cap.addresses_needed),
                    count(cap.addresses_needed_full_range)
                )),
            ]);
        }
        if let Some(cap) = capacity
            .iter()
            .find(|cap| cap.ports_in_use < FULL_PORT_RANGE / 2)
        {
            items.push(vec![
                Inline::Strong("Wider source port range. ".into()),
                text(format!(
                    "{} used only {} source ports; on a Linux balancer widen ",
                    cap.source,
                    count(cap.ports_in_use)
                )),
                Inline::Code("net.ipv4.ip_local_port_range = 1024 65535".into()),
                text(" (or the balancer's SNAT port pool) to multiply the sustainable rate."),
            ]);
        }
        if s.time_wait_holders.get("server").copied().unwrap_or(0) > 0 {
            items.push(vec![
                Inline::Strong("Let the balancer close first, or keep connections alive. ".into()),
                text(format!(
                    "The server closed first in {} of {} connections, so the server holds every TIME_WAIT: HTTP keep-alive (connection reuse) toward the servers removes most new connections, and a client-side close moves TIME_WAIT to the balancer, where reuse is its own business.",
                    count(server_closed_first),
                    count(s.connections)
                )),
            ]);
            items.push(vec![
                Inline::Strong("tcp_tw_reuse will not help here. ".into()),
                Inline::Code("net.ipv4.tcp_tw_reuse".into()),
                text(" only lets the connecting side reuse its own TIME_WAIT; here the server holds it."),
            ]);
        }
        if c.rejected_recovered + c.unanswered > 0 {
            items.push(vec![
                Inline::Strong("Timestamps on both sides. ".into()),
                text(format!(
                    "{} SYNs were rejected or unanswered: with TCP timestamps (",
                    count(c.rejected_recovered + c.unanswered)
                )),
                Inline::Code("net.ipv4.tcp_timestamps = 1".into()),
                text(") and one clock per SNAT address, Linux accepts a SYN on a TIME_WAIT tuple when its timestamp is newer (RFC 6191); the rejections here came from sequence numbers or timestamps older than the previous connection's."),
            ]);
        }
    } else {
        let headroom: Vec<String> = capacity
            .iter()
            .map(|c| {
                format!(
                    "{}: peak {} conn/s of {} sustainable",
                    c.source,
                    count(c.peak_per_s),
                    rate(c.sustainable_per_s)
                )
            })
            .collect();
        items.push(vec![text(format!(
            "No change needed for TIME_WAIT. Headroom: {}.",
            if headroom.is_empty() {
                "n/a".to_string()
            } else {
                headroom.join("; ")
            }
        ))]);
    }
    if s.client_side_reuse > 0 {
        items.push(vec![text(format!(
            "{} SYNs reused a tuple their own sender held in TIME_WAIT (tcp_tw_reuse or a balancer ignoring its own TIME_WAIT): harmless to the server, not collisions.",
            count(s.client_side_reuse)
        ))]);
    }
    items.push(vec![
        Inline::Strong("Never ".into()),
        Inline::Code("tcp_tw_recycle".into()),
        text(": it broke clients behind NAT and was removed in Linux 4.12."),
    ]);
    Section {
        title: "Recommendations".into(),
        blocks: vec![Block::List(items)],
    }
}

fn method(input: &ReportInput<'_>) -> Section {
    let mut blocks = vec![Block::Table {
        header: vec![
            "Input".into(),
            "SHA-256".into(),
            "Frames".into(),
            "Damage".into(),
        ],
        rows: input
            .inputs
            .iter()
            .map(|i| {
                vec![
                    i.name.clone(),
                    i.sha256
                        .clone()
                        .unwrap_or_else(|| "(standard input: not hashed)".into()),
                    count(i.frames),
                    i.damage.clone().unwrap_or_else(|| "none".into()),
                ]
            })
            .collect(),
    }];
    // The capture's provenance as the BIG-IP recorded it (capture-derived text, escaped by
    // the renderers like every cell).
    for (i, info) in input
        .inputs
        .iter()
        .filter_map(|i| Some((i, i.captured_by.as_ref()?)))
    {
        let field = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
        blocks.push(Block::Paragraph(vec![text(format!(
            "{} was captured on {} ({}, platform {}) by: {}",
            i.name,
            field(&info.hostname),
            field(&info.version),
            field(&info.platform),
            field(&info.command)
        ))]));
    }
    let policy = input.policy;
    let mut assumptions = vec![vec![text(format!(
        "TIME_WAIT lasts {} on every host{}; a SYN up to {} after the nominal end counts only if the server's answer shows TIME_WAIT (Linux's timer wheel ends it 60.0–62.05 s after it began).",
        duration(policy.default_ns),
        if policy.per_host.is_empty() {
            String::new()
        } else {
            format!(
                " except {}",
                policy
                    .per_host
                    .iter()
                    .map(|(ip, ns)| format!("{ip} ({})", duration(*ns)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        duration(policy.edge_slack_ns)
    ))]];
    assumptions.push(vec![text(
        "TIME_WAIT starts when the endpoint that closed first acknowledges its peer's FIN, as seen at the capture point: a capture at the other end sees it half a round trip later.",
    )]);
    assumptions.push(vec![text(
        "The prediction models Linux's tcp_timewait_state_process: accept when the SYN's sequence number is after the old rcv_nxt or its timestamp is newer than the old ts_recent, unless PAWS rejects an older timestamp.",
    )]);
    blocks.push(Block::List(assumptions));
    let a = input.accounting;
    let t = &input.findings.counters;
    let low_confidence = input
        .findings
        .connections
        .iter()
        .filter(|c| c.low_confidence != 0)
        .count() as u64;
    blocks.push(Block::Table {
        header: vec!["Accounting".into(), "Count".into()],
        rows: vec![
            vec!["Frames read".into(), count(a.frames)],
            vec![
                "TCP segments".into(),
                format!(
                    "{} ({})",
                    count(a.tcp_segments),
                    percent(a.tcp_segments, a.frames)
                ),
            ],
            vec!["Other IP".into(), count(a.other_ip)],
            vec!["Non-IP".into(), count(a.non_ip)],
            vec!["Malformed".into(), count(a.malformed)],
            vec!["Truncated (TCP header cut)".into(), count(a.truncated)],
            vec!["IP fragments".into(), count(a.fragments)],
            vec![
                "Connections evicted idle / over the memory cap".into(),
                format!(
                    "{} / {}",
                    count(t.idle_evictions),
                    count(t.memory_evictions)
                ),
            ],
            vec![
                "Failed connection attempts (no SYN-ACK, fresh tuple)".into(),
                count(t.failed_attempts),
            ],
            vec![
                "Connections inferred with low confidence".into(),
                count(low_confidence),
            ],
            vec![
                "Edge cases dismissed (SYN after TIME_WAIT ended)".into(),
                count(t.edge_cases_dismissed),
            ],
            vec![
                "Late segments after a connection was closed".into(),
                count(t.late_segments),
            ],
            vec![
                "Duplicate segments (captured twice)".into(),
                count(t.duplicate_segments),
            ],
        ],
    });
    if !a.is_closed() {
        blocks.push(Block::Paragraph(vec![Inline::Strong(
            "The accounting does not add up: please report this.".into(),
        )]));
    }
    Section {
        title: "Method and accounting".into(),
        blocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(4812), "4,812");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    /// 1,000 connections at 10 a second from one address cycling 100 ports toward two
    /// servers; `server_of(i)` picks the server of the i-th.
    fn capacity_of(server_of: impl Fn(u64) -> u8) -> Capacity {
        use crate::tables::tests::{connection, findings};
        let findings = findings(
            (0..1_000u64)
                .map(|i| {
                    let mut c = connection(i, 1_764_000_000, None);
                    c.ts_ns += i as i64 * SECOND_NS / 10;
                    c.orig_p = 40_000 + (i % 100) as u16;
                    c.resp_h = format!("10.1.0.{}", server_of(i)).parse().unwrap();
                    c
                })
                .collect(),
        );
        let summary = Summary::new(&findings, 10);
        let policy = twsleuth_flows::TimeWaitPolicy::default();
        let tables = Tables::new(&findings, &policy);
        let input = ReportInput {
            findings: &findings,
            summary: &summary,
            accounting: &twsleuth_decode::Accounting::default(),
            policy: &policy,
            inputs: Vec::new(),
            evidence: Vec::new(),
            completeness: &crate::limits::Completeness {
                complete: true,
                cannot_show: Vec::new(),
            },
            exhaustion: &[],
            tool_version: "test",
        };
        capacity(&input, &tables).remove(0)
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
        assert_eq!((pinned.peak_per_s, pinned.addresses_needed), (10, 6));
        // Every port to both servers: 200 tuples, half as many addresses.
        let spread = capacity_of(|i| ((i / 100) % 2) as u8);
        assert_eq!(spread.tuples_in_use, 200);
        assert_eq!(spread.addresses_needed, 3);
        assert!((spread.sustainable_per_s - 200.0 / 60.0).abs() < 1e-9);
        // The full range gives 64,512 ports, each toward as many servers as now: one address.
        assert_eq!(spread.addresses_needed_full_range, 1);
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(250_000), "0.2 ms");
        assert_eq!(duration(1_000_200_000), "1.00 s");
        assert_eq!(duration(600 * SECOND_NS), "10.0 min");
    }
}
