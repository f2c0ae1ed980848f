//! The whole pipeline on arbitrary capture bytes: reader → decode → sharded tracker (2 shards,
//! stretches of a few segments) → findings → summary, report tables and verdict.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use twsleuth_decode::{Accounting, FrameClass, decode};
use twsleuth_flows::{Partitioned, ShardedTracker, Summary, TimeWaitPolicy, TrackerConfig};
use twsleuth_fuzz::check_findings;
use twsleuth_reader::CaptureReader;
use twsleuth_report::content::verdict;
use twsleuth_report::tables::Tables;

/// Segments per stretch handed to the tracker: small, so that several stretches happen.
const STRETCH_SEGMENTS: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = CaptureReader::from_reader("fuzz", Box::new(Cursor::new(data.to_vec())), 0)
    else {
        return;
    };
    let config = TrackerConfig {
        max_memory: 1 << 20,
        ..TrackerConfig::default()
    };
    let mut tracker = ShardedTracker::new(&config, 2);
    let mut stretch = Partitioned::new(tracker.shards());
    let mut accounting = Accounting::default();
    let mut segments = Vec::new();
    let mut index = 0u64;
    while reader.advance() {
        let frame = reader.current().expect("advance() returned true without a frame");
        match decode(&frame) {
            Ok(segment) => {
                accounting.count(FrameClass::Tcp);
                stretch.push(index, segment);
                segments.push(segment);
                if stretch.len() >= STRETCH_SEGMENTS {
                    tracker.process(&stretch);
                    stretch.clear();
                }
            }
            Err(not_tcp) => accounting.count(not_tcp.class),
        }
        index += 1;
    }
    tracker.process(&stretch);
    assert!(accounting.is_closed());
    assert_eq!(accounting.frames, reader.counters().frames);
    let findings = tracker.finish();
    check_findings(&findings, &segments);
    let summary = Summary::new(&findings, 5);
    let tables = Tables::new(&findings, &TimeWaitPolicy::default());
    assert_eq!(tables.connections.uid.len(), findings.connections.len());
    assert_eq!(tables.collisions.uid.len(), findings.collisions.len());
    let sentence = verdict(&summary, &findings);
    assert!(!sentence.is_empty());
});
