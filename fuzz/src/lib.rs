//! Checks shared by the fuzz targets.

use std::collections::HashSet;
use std::net::IpAddr;

use twsleuth_decode::TcpSegment;
use twsleuth_flows::{Findings, Summary};

/// The unordered endpoint pair of a record.
fn pair(a: (IpAddr, u16), b: (IpAddr, u16)) -> [(IpAddr, u16); 2] {
    if a <= b { [a, b] } else { [b, a] }
}

/// What must hold of any findings made from `segments`.
pub fn check_findings(findings: &Findings, segments: &[TcpSegment]) {
    let n = findings.connections.len() as u64;
    let counters = &findings.counters;
    assert_eq!(counters.segments, segments.len() as u64, "counters.segments");
    let syns = segments.iter().filter(|s| s.flags.is_syn_only()).count() as u64;
    assert!(counters.syn <= syns, "counters.syn");
    // A connection seen in several views (VLANs, tunnels, capture points) has its SYNs counted
    // once, in its first view: the lower bound holds only without joined views.
    assert!(
        counters.joined_views > 0 || counters.syn + counters.duplicate_segments >= syns,
        "counters.syn"
    );
    assert!(
        findings.connections.windows(2).all(|w| w[0].uid < w[1].uid),
        "connection uids are not unique and in order"
    );
    let by_uid = |uid: u64| {
        findings
            .connections
            .binary_search_by_key(&uid, |c| c.uid)
            .ok()
            .map(|at| &findings.connections[at])
    };
    let mut pkts = 0u64;
    for c in &findings.connections {
        assert!(c.duration_ns >= 0, "negative duration: {c:?}");
        assert!(c.orig_pkts + c.resp_pkts > 0, "connection without a segment: {c:?}");
        // A connection seen in several views keeps the others' segments in other_views.
        pkts += c.orig_pkts + c.resp_pkts;
        pkts += c
            .other_views
            .iter()
            .map(|v| v.orig_pkts + v.resp_pkts)
            .sum::<u64>();
        if let Some(prev) = c.prev_uid {
            assert!(prev < c.uid, "prev_uid {prev} not before uid {}", c.uid);
            let p = by_uid(prev).expect("prev_uid names no connection");
            assert_eq!(
                pair((p.orig_h, p.orig_p), (p.resp_h, p.resp_p)),
                pair((c.orig_h, c.orig_p), (c.resp_h, c.resp_p)),
                "prev_uid names another tuple"
            );
        }
    }
    assert_eq!(
        pkts + counters.late_segments + counters.duplicate_segments,
        counters.segments,
        "segments are neither in a connection, late, nor duplicates"
    );
    let mut collided = HashSet::new();
    for c in &findings.collisions {
        assert!(c.prev_uid < c.uid, "collision prev_uid {} >= uid {}", c.prev_uid, c.uid);
        assert!(collided.insert(c.uid), "two collisions on connection {}", c.uid);
        let conn = by_uid(c.uid).expect("collision uid names no connection");
        assert!(by_uid(c.prev_uid).is_some(), "collision prev_uid names no connection");
        assert_eq!(conn.prev_uid, Some(c.prev_uid), "collision and connection disagree on prev_uid");
        assert_eq!(conn.collision, Some(c.outcome), "the connection names another outcome");
        assert_eq!(
            (conn.orig_h, conn.orig_p, conn.resp_h, conn.resp_p),
            (c.orig_h, c.orig_p, c.resp_h, c.resp_p),
            "collision and connection disagree on the tuple"
        );
        assert!(c.time_wait_age_ns >= 0, "negative TIME_WAIT age: {c:?}");
        assert!(c.syn_attempts >= 1, "collision without a SYN: {c:?}");
    }
    assert_eq!(
        findings.connections.iter().filter(|c| c.collision.is_some()).count(),
        findings.collisions.len(),
        "connections with a collision"
    );
    assert!(
        findings.collisions.windows(2).all(|w| w[0].uid < w[1].uid),
        "collisions not in order of uid"
    );
    let summary = Summary::new(findings, 5);
    assert_eq!(summary.connections, n);
    assert_eq!(summary.collisions.total, findings.collisions.len() as u64);
}
