//! The Parquet and CSV exports round-trip through polars with the tables' values.

mod common;

use std::io::Cursor;

use polars::prelude::*;
use twsleuth_flows::{Findings, TimeWaitPolicy, TrackerConfig};
use twsleuth_report::export::{
    collisions_columns, connections_columns, frame, timeline_columns, write_csv, write_parquet,
};
use twsleuth_report::tables::Tables;

fn findings(relative: &str) -> Findings {
    common::findings_of(relative, &TrackerConfig::default())
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

/// The report streams records off disk a chunk at a time: with chunks of 97 records and
/// spills that write a run every few kilobytes (so that every record is merged back from
/// disk), its Parquet and CSV files hold exactly the rows of the tables built in memory, in
/// the same order, and its timeline is the same.
#[test]
fn streamed_exports_equal_the_tables_built_in_memory() {
    use twsleuth_flows::{CollisionRecord, ConnectionRecord, Summary};
    use twsleuth_report::spill::SortedSpill;
    use twsleuth_report::stream::{RecordStreams, export_records};
    use twsleuth_report::tables::Successor;

    let findings = findings("lab/haproxy/lb-backend.pcap");
    let policy = TimeWaitPolicy::default();
    let tables = Tables::new(&findings, &policy);
    assert_eq!(tables.connections.uid.len(), 800);
    assert_eq!(tables.collisions.uid.len(), 700);
    // Records reach the spills in batches out of order, as the tracker's shards give them.
    let mut connections = SortedSpill::new(|c: &ConnectionRecord| c.uid, 4_096);
    let mut collisions = SortedSpill::new(|c: &CollisionRecord| c.uid, 4_096);
    let mut successors = SortedSpill::new(|s: &Successor| s.prev_uid, 256);
    for batch in findings.connections.rchunks(61) {
        connections.extend(batch.iter().cloned()).unwrap();
        successors
            .extend(batch.iter().filter_map(Successor::of))
            .unwrap();
    }
    for batch in findings.collisions.rchunks(61) {
        collisions.extend(batch.iter().cloned()).unwrap();
    }
    assert!(connections.runs() > 10 && successors.runs() > 10);
    let streams = RecordStreams {
        connections: connections.into_sorted().unwrap(),
        collisions: collisions.into_sorted().unwrap(),
        successors: successors.into_sorted().unwrap(),
    };
    let summary = Summary::new(&findings, 10);
    let sources: Vec<_> = summary.sources.iter().map(|s| s.orig_h).collect();
    let dir = tempfile::tempdir().unwrap();
    let (digest, written) = export_records(
        Some(dir.path()),
        streams,
        &summary,
        &policy,
        (&sources, false),
        97,
    )
    .unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "connections.parquet",
            "connections.csv",
            "collisions.parquet",
            "collisions.csv"
        ]
    );
    for (name, columns) in [
        ("connections", connections_columns(&tables.connections)),
        ("collisions", collisions_columns(&tables.collisions)),
    ] {
        let mut csv = Vec::new();
        write_csv(&columns, &mut csv).unwrap();
        let streamed_csv = std::fs::read(dir.path().join(format!("{name}.csv"))).unwrap();
        assert!(streamed_csv == csv, "{name}.csv differs");
        let file = std::fs::File::open(dir.path().join(format!("{name}.parquet"))).unwrap();
        let streamed = ParquetReader::new(file).finish().unwrap();
        let in_memory = frame(&columns).unwrap();
        assert!(
            streamed.equals_missing(&in_memory),
            "{name}.parquet differs"
        );
    }
    assert_eq!(digest.timeline.second, tables.timeline.second);
    assert_eq!(
        digest.timeline.time_wait_tuples,
        tables.timeline.time_wait_tuples
    );
    assert_eq!(digest.collisions.count, 700);
    assert_eq!(
        digest.collisions.shown.first().map(|c| c.uid),
        findings.collisions.first().map(|c| c.uid)
    );
}
