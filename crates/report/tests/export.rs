//! The Parquet and CSV exports round-trip through polars with the tables' values.

use std::io::Cursor;

use polars::prelude::*;
use twsleuth_decode::decode;
use twsleuth_flows::{Findings, Partitioned, ShardedTracker, TimeWaitPolicy, TrackerConfig};
use twsleuth_reader::CaptureReader;
use twsleuth_report::export::{
    collisions_frame, connections_frame, timeline_frame, write_csv, write_parquet,
};
use twsleuth_report::tables::Tables;

fn findings(relative: &str) -> Findings {
    let path = format!("{}/../../fixtures/{relative}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = CaptureReader::open(&path, 0).unwrap();
    let mut tracker = ShardedTracker::new(&TrackerConfig::default(), 2);
    let mut stretch = Partitioned::new(tracker.shards());
    let mut index = 0;
    while reader.advance() {
        if let Ok(segment) = decode(&reader.current().unwrap()) {
            stretch.push(index, segment);
        }
        index += 1;
    }
    tracker.process(&[stretch]);
    tracker.finish()
}

#[test]
fn parquet_and_csv_round_trip_with_the_table_values() {
    let findings = findings("synthetic/lb-cycle.pcap.gz");
    let tables = Tables::new(&findings, &TimeWaitPolicy::default());
    assert_eq!(tables.connections.uid.len(), 1500);
    let frames = [
        connections_frame(&tables.connections).unwrap(),
        collisions_frame(&tables.collisions).unwrap(),
        timeline_frame(&tables.timeline).unwrap(),
    ];
    for frame in frames {
        let mut parquet = Vec::new();
        write_parquet(&mut frame.clone(), &mut parquet).unwrap();
        let from_parquet = ParquetReader::new(Cursor::new(parquet)).finish().unwrap();
        assert!(
            from_parquet.equals_missing(&frame),
            "parquet changed the data"
        );

        let mut csv = Vec::new();
        write_csv(&mut frame.clone(), &mut csv).unwrap();
        let from_csv = CsvReadOptions::default()
            .with_has_header(true)
            .into_reader_with_file_handle(Cursor::new(csv))
            .finish()
            .unwrap();
        assert_eq!(from_csv.shape(), frame.shape());
        assert_eq!(from_csv.get_column_names(), frame.get_column_names());
    }
    let collisions = collisions_frame(&tables.collisions).unwrap();
    let outcomes = collisions.column("outcome").unwrap().str().unwrap();
    let accepted = outcomes.iter().filter(|o| *o == Some("accepted")).count();
    assert_eq!(
        accepted, 783,
        "the generator's count of accepted collisions"
    );
}

/// Regression (fuzzing, end_to_end target): this capture's timestamps span decades; building
/// the per-second timeline ran out of memory.
#[test]
fn a_capture_spanning_decades_gives_a_small_timeline() {
    let findings = findings("fuzz/end_to_end-report-timeline-span-oom.bin");
    let tables = Tables::new(&findings, &TimeWaitPolicy::default());
    assert!(tables.timeline.second.len() <= 2 * tables.connections.uid.len() + 2);
}
