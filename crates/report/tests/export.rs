//! The Parquet and CSV exports round-trip through polars with the tables' values.

use std::io::Cursor;

use polars::prelude::*;
use twsleuth_decode::decode;
use twsleuth_flows::{Findings, TimeWaitPolicy, TrackerConfig};
use twsleuth_reader::CaptureReader;
use twsleuth_report::export::{
    collisions_columns, connections_columns, frame, timeline_columns, write_csv, write_parquet,
};
use twsleuth_report::tables::Tables;

fn findings(relative: &str) -> Findings {
    let path = format!("{}/../../fixtures/{relative}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = CaptureReader::open(&path, 0).unwrap();
    let mut segments = Vec::new();
    while reader.advance() {
        if let Ok(segment) = decode(&reader.current().unwrap()) {
            segments.push(segment);
        }
    }
    Findings::of_segments(&TrackerConfig::default(), &segments)
}

#[test]
fn parquet_and_csv_round_trip_with_the_table_values() {
    let findings = findings("synthetic/lb-cycle.pcap.gz");
    let tables = Tables::new(&findings, &TimeWaitPolicy::default());
    assert_eq!(tables.connections.uid.len(), 1500);
    let tables_columns = [
        connections_columns(&tables.connections),
        collisions_columns(&tables.collisions),
        timeline_columns(&tables.timeline),
    ];
    for columns in tables_columns {
        let frame = frame(&columns).unwrap();
        let mut parquet = Vec::new();
        write_parquet(&mut frame.clone(), &mut parquet).unwrap();
        let from_parquet = ParquetReader::new(Cursor::new(parquet)).finish().unwrap();
        assert!(
            from_parquet.equals_missing(&frame),
            "parquet changed the data"
        );

        let mut csv = Vec::new();
        write_csv(&columns, &mut csv).unwrap();
        let from_csv = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(None)
            .into_reader_with_file_handle(Cursor::new(csv))
            .finish()
            .unwrap();
        assert_eq!(from_csv.get_column_names(), frame.get_column_names());
        // Every value reads back as written (CSV has no types: compared in the frame's, times
        // as their ns).
        for expected in frame.columns() {
            let expected = &expected.to_physical_repr();
            let read = from_csv
                .column(expected.name())
                .unwrap()
                .cast(expected.dtype())
                .unwrap();
            assert!(
                read.as_materialized_series()
                    .equals_missing(expected.as_materialized_series()),
                "CSV column {} reads back different",
                expected.name()
            );
        }
    }
    // Times are timestamps (ns, UTC) and flags booleans in Parquet.
    let utc = DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC));
    let connections = frame(&connections_columns(&tables.connections)).unwrap();
    let mut parquet = Vec::new();
    write_parquet(&mut connections.clone(), &mut parquet).unwrap();
    let read = ParquetReader::new(Cursor::new(parquet)).finish().unwrap();
    for (column, dtype) in [
        ("ts_ns", &utc),
        ("time_wait_start_ns", &utc),
        ("time_wait_end_ns", &utc),
        ("low_confidence", &DataType::Boolean),
        ("doubt_no_final_ack", &DataType::Boolean),
        ("client_side_reuse", &DataType::Boolean),
    ] {
        assert_eq!(read.column(column).unwrap().dtype(), dtype, "{column}");
    }
    let first_ns = findings.connections[0].ts_ns;
    let first = read
        .column("ts_ns")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .get(0);
    assert_eq!(first, Some(first_ns));
    let timeline = frame(&timeline_columns(&tables.timeline)).unwrap();
    assert_eq!(timeline.column("ts_ns").unwrap().dtype(), &utc);
    assert_eq!(
        timeline.column("observed").unwrap().dtype(),
        &DataType::Boolean
    );
    // The timeline runs 60 s past the last connection (TIME_WAITs draining): those rows, and
    // only those, are not observed.
    let last_end_s = findings
        .connections
        .iter()
        .map(|c| (c.ts_ns + c.duration_ns).div_euclid(1_000_000_000))
        .max()
        .unwrap();
    for (second, observed) in tables.timeline.second.iter().zip(&tables.timeline.observed) {
        assert_eq!(*observed, *second <= last_end_s, "second {second}");
    }
    assert!(tables.timeline.observed.iter().any(|o| !o));

    let collisions = frame(&collisions_columns(&tables.collisions)).unwrap();
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
