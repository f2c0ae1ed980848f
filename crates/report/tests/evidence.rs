//! The ladders the report shows come from the packets the tracker kept in its one pass, the
//! same whatever order the records leave the tracker in.

mod common;

use twsleuth_flows::{CollisionRecord, Findings, Summary, TrackerConfig};
use twsleuth_report::evidence::{ShownCollisions, evidence};
use twsleuth_report::stream::RecordDigest;

fn findings(relative: &str, ladders: bool) -> (Findings, TrackerConfig) {
    let config = TrackerConfig {
        ladders,
        ..TrackerConfig::default()
    };
    (common::findings_of(relative, &config), config)
}

fn kept(records: impl IntoIterator<Item = CollisionRecord>) -> ShownCollisions {
    let mut shown = ShownCollisions::default();
    for mut record in records {
        shown.offer(&mut record);
        assert!(record.ladder.is_none(), "the packets are taken");
    }
    shown
}

#[test]
fn ladders_are_the_same_whatever_order_the_records_come_in() {
    for fixture in ["synthetic/lb-cycle.pcap.gz", "lab/rejected/server.pcap"] {
        let (findings, config) = findings(fixture, true);
        let summary = Summary::new(&findings, 4);
        let digest = RecordDigest::of(&findings, &summary, &config.time_wait).collisions;
        let records = findings.collisions.clone();
        let shown = |kept: &ShownCollisions| format!("{:?}", evidence(kept, &[]));
        // The digest took the records in uid order, as the report reads them off disk.
        let in_order = shown(&digest.shown);
        assert_eq!(in_order, shown(&kept(records.clone())));
        assert_eq!(in_order, shown(&kept(records.iter().rev().cloned())));
        // Every seventh first, then the rest: another order entirely.
        let (sevenths, rest): (Vec<_>, Vec<_>) = records
            .iter()
            .cloned()
            .enumerate()
            .partition(|(i, _)| i % 7 == 0);
        let shuffled = sevenths.into_iter().chain(rest).map(|(_, c)| c);
        assert_eq!(in_order, shown(&kept(shuffled)));

        let shown = evidence(&kept(records), &[]);
        assert!(shown.len() >= 2, "{fixture}: {} shown", shown.len());
        for e in &shown {
            let syn = e.collision.first_syn_frame.number;
            let at = e.steps.iter().position(|s| s.frame == syn);
            let at = at.unwrap_or_else(|| panic!("{fixture}, {}: no first SYN", e.label));
            assert!(
                e.steps[..at]
                    .iter()
                    .all(|s| s.note.starts_with("previous connection")),
                "{fixture}, {}: {:?}",
                e.label,
                e.steps
            );
            assert!(at > 0, "{fixture}, {}: no previous connection", e.label);
        }
    }
}

#[test]
fn without_kept_packets_a_collision_is_shown_without_steps() {
    let (findings, config) = findings("lab/rejected/server.pcap", false);
    assert!(findings.collisions.iter().all(|c| c.ladder.is_none()));
    let summary = Summary::new(&findings, 4);
    let digest = RecordDigest::of(&findings, &summary, &config.time_wait).collisions;
    let shown = evidence(&digest.shown, &[]);
    assert!(!shown.is_empty());
    assert!(shown.iter().all(|e| e.steps.is_empty()));
}

/// A shard passes on the packets of the collisions that could be shown among its own
/// (`Showcase`) and reuses the others' ladders: few records carry packets, and the evidence
/// is the same for any number of shards and length of stretch, each collision shown with its
/// packets.
#[test]
fn shards_pass_on_only_the_packets_of_collisions_they_could_show() {
    let config = TrackerConfig {
        ladders: true,
        ..TrackerConfig::default()
    };
    for fixture in ["synthetic/lb-cycle.pcap.gz", "lab/haproxy/lb-backend.pcap"] {
        let segments = common::segments_of(fixture);
        let run = |shards: usize, stretch: usize| {
            let findings = Findings::of_segments_in_stretches(&config, &segments, shards, stretch);
            let carrying = findings
                .collisions
                .iter()
                .filter(|c| c.ladder.is_some())
                .count();
            let total = findings.collisions.len();
            (evidence(&kept(findings.collisions), &[]), carrying, total)
        };
        let (alone, carrying, total) = run(1, segments.len());
        assert!(total >= 100, "{fixture}: {total} collisions");
        assert!(
            carrying * 5 < total,
            "{fixture}: {carrying} of {total} collisions carry packets"
        );
        assert!(alone.len() >= 2, "{fixture}: {} shown", alone.len());
        for e in &alone {
            assert!(e.steps.len() >= 2, "{fixture}, {}: {:?}", e.label, e.steps);
        }
        for (shards, stretch) in [(2, 1_000), (4, 97), (7, 5_000)] {
            let (shown, carrying_here, _) = run(shards, stretch);
            assert_eq!(
                format!("{shown:?}"),
                format!("{alone:?}"),
                "{fixture}: {shards} shards, stretches of {stretch}"
            );
            assert!(
                carrying_here < total,
                "{fixture}: {carrying_here} of {total}"
            );
        }
    }
}
