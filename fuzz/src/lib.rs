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
    assert!(
        counters.syn <= syns && counters.syn + counters.duplicate_segments >= syns,
        "counters.syn"
    );
    let mut pkts = 0u64;
    for (i, c) in findings.connections.iter().enumerate() {
        assert_eq!(c.uid, i as u64, "connection uids are not 0..n in order");
        assert!(c.duration_ns >= 0, "negative duration: {c:?}");
        assert!(c.orig_pkts + c.resp_pkts > 0, "connection without a segment: {c:?}");
        pkts += c.orig_pkts + c.resp_pkts;
        if let Some(prev) = c.prev_uid {
            assert!(prev < c.uid, "prev_uid {prev} not before uid {}", c.uid);
            let p = &findings.connections[prev as usize];
            assert_eq!(
                pair((p.orig_h, p.orig_p), (p.resp_h, p.resp_p)),
                pair((c.orig_h, c.orig_p), (c.resp_h, c.resp_p)),
                "prev_uid names another tuple"
            );
        }
    }
    assert_eq!(
        pkts + counters.late_segments + counters.unrecorded_segments + counters.duplicate_segments,
        counters.segments,
        "segments are neither in a connection, late, duplicates, nor in an unrecorded attempt"
    );
    let mut collided = HashSet::new();
    for c in &findings.collisions {
        assert!(c.uid < n, "collision uid {} out of {n} connections", c.uid);
        assert!(c.prev_uid < n, "collision prev_uid {} out of {n}", c.prev_uid);
        assert!(c.prev_uid < c.uid, "collision prev_uid {} >= uid {}", c.prev_uid, c.uid);
        assert!(collided.insert(c.uid), "two collisions on connection {}", c.uid);
        let conn = &findings.connections[c.uid as usize];
        assert_eq!(conn.prev_uid, Some(c.prev_uid), "collision and connection disagree on prev_uid");
        assert_eq!(
            (conn.orig_h, conn.orig_p, conn.resp_h, conn.resp_p),
            (c.orig_h, c.orig_p, c.resp_h, c.resp_p),
            "collision and connection disagree on the tuple"
        );
        assert!(c.time_wait_age_ns >= 0, "negative TIME_WAIT age: {c:?}");
        assert!(c.syn_attempts >= 1, "collision without a SYN: {c:?}");
    }
    assert!(
        findings.collisions.windows(2).all(|w| w[0].uid < w[1].uid),
        "collisions not in order of uid"
    );
    let summary = Summary::new(findings, 5);
    assert_eq!(summary.connections, n);
    assert_eq!(summary.collisions.total, findings.collisions.len() as u64);
}

