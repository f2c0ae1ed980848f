//! The whole pipeline on arbitrary capture bytes: reader → decode → sharded tracker (2 shards,
//! stretches of a few segments, keeping ladders) → findings → summary, report tables, evidence
//! and verdict.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use parquet::file::reader::{FileReader, SerializedFileReader};
use twsleuth_decode::Decoder;
use twsleuth_flows::{
    Findings, Finished, Partitioned, ShardedTracker, Summary, SummaryBuilder, TimeWaitPolicy,
    TrackerConfig,
};
use twsleuth_fuzz::check_findings;
use twsleuth_reader::CaptureReader;
use twsleuth_report::analysis::verdict;
use twsleuth_report::evidence::{ShownCollisions, evidence};
use twsleuth_report::exhaustion::ExhaustionDetector;
use twsleuth_report::export::{
    collisions_columns, connections_columns, timeline_columns, write_csv, write_parquet,
};
use twsleuth_report::limits::{CaptureFacts, Completeness};
use twsleuth_report::stream::RecordDigest;
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
        ladders: true,
        ..TrackerConfig::default()
    };
    let mut tracker = ShardedTracker::new(&config, 2);
    let mut stretch = Partitioned::new(tracker.shards());
    let mut decoder = Decoder::default();
    let mut segments = Vec::new();
    let mut all = Finished::default();
    let mut index = 0u64;
    while reader.advance() {
        let frame = reader.current().expect("advance() returned true without a frame");
        if let Ok(segment) = decoder.decode(&frame) {
            stretch.push(index, segment);
            segments.push(segment);
            if stretch.len() >= STRETCH_SEGMENTS {
                tracker.process(&stretch);
                stretch.clear();
                all.append(tracker.take_finished());
            }
        }
        index += 1;
    }
    tracker.process(&stretch);
    all.append(tracker.take_finished());
    let accounting = decoder.finish();
    assert!(accounting.is_closed());
    assert_eq!(accounting.frames, reader.counters().frames);
    let (last, counters) = tracker.finish();
    all.append(last);
    let findings = Findings::new(all, counters);
    check_findings(&findings, &segments);
    // The summary gathered record by record, in an order of its own, is the same.
    let mut builder = SummaryBuilder::default();
    findings.collisions.iter().rev().for_each(|c| builder.collision(c));
    findings.connections.iter().rev().for_each(|c| builder.connection(c));
    let summary = Summary::new(&findings, 5);
    let streamed = builder.finish(&findings.counters, 5);
    // A proxy's legs are paired from the records in time order, apart from the builder (the
    // tracker's batches come in that order): the builder's figures are compared without them.
    let without_legs = Summary {
        legs: None,
        ..summary.clone()
    };
    assert_eq!(
        serde_json::to_string(&without_legs).unwrap(),
        serde_json::to_string(&streamed).unwrap()
    );
    let tables = Tables::new(&findings, &TimeWaitPolicy::default());
    assert_eq!(tables.connections.uid.len(), findings.connections.len());
    assert_eq!(tables.collisions.uid.len(), findings.collisions.len());
    // Whatever the capture holds, the exports write (into memory, which cannot fill up): CSV
    // every table, Parquet the collisions (its floats, nulls and texts vary the most) with a
    // row per collision. A Parquet file costs ~0.4 ms however small (a zstd context per
    // column): all three tables for every input made this target 2.6x slower (129 → 50
    // executions/s in 60 s runs); the collisions alone, 125.
    for columns in [
        connections_columns(&tables.connections),
        collisions_columns(&tables.collisions),
        timeline_columns(&tables.timeline),
    ] {
        write_csv(&columns, &mut Vec::new()).unwrap();
    }
    if !findings.collisions.is_empty() {
        let parquet = write_parquet(&collisions_columns(&tables.collisions), Vec::new()).unwrap();
        let file = SerializedFileReader::new(bytes::Bytes::from(parquet)).unwrap();
        let rows = file.metadata().file_metadata().num_rows();
        assert_eq!(rows, findings.collisions.len() as i64);
    }
    // The report's streaming digest counts every record once, as the tables do.
    let digest = RecordDigest::of(&findings, &summary, &TimeWaitPolicy::default());
    assert_eq!(digest.collisions.count, findings.collisions.len() as u64);
    assert_eq!(
        digest.timeline.new_connections.iter().sum::<u64>(),
        findings.connections.len() as u64
    );
    assert_eq!(
        digest.timeline.collisions.iter().sum::<u64>(),
        tables.timeline.collisions.iter().sum::<u64>()
    );
    // The collisions shown are the same taken in reverse order as in uid order (the digest's),
    // and every one has its first SYN among its packets.
    let mut kept = ShownCollisions::default();
    findings.collisions.iter().rev().cloned().for_each(|mut c| kept.offer(&mut c));
    let shown_in_reverse = evidence(&kept, &[]);
    assert_eq!(
        format!("{shown_in_reverse:?}"),
        format!("{:?}", evidence(&digest.collisions.shown, &[]))
    );
    for shown in shown_in_reverse {
        let syn = shown.collision.first_syn_frame;
        assert!(
            shown
                .steps
                .iter()
                .any(|s| (s.file_index, s.frame) == (syn.file_index, syn.number)),
            "{}: no first SYN in {:?}",
            shown.label,
            shown.steps
        );
    }
    let facts = CaptureFacts {
        accounting,
        ..CaptureFacts::default()
    };
    let completeness = Completeness::of(&summary, &findings.counters, &[], &facts);
    let mut detector = ExhaustionDetector::default();
    findings.connections.iter().for_each(|c| detector.connection(c));
    let exhaustion = detector.finish(&TimeWaitPolicy::default(), i64::MAX);
    let sentence = verdict(&summary, &findings.counters, &completeness, &exhaustion);
    assert!(!sentence.is_empty());
});
