//! The Parquet and CSV exports read back, with a Parquet reader and a CSV parser of their
//! own, as the tables' values, with the types the exports promise.

mod common;

use parquet::basic::{LogicalType, Repetition, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use twsleuth_flows::{Findings, TimeWaitPolicy, TrackerConfig};
use twsleuth_report::export::{
    ColumnRef, NamedColumn, collisions_columns, connections_columns, timeline_columns, write_csv,
    write_parquet,
};
use twsleuth_report::tables::Tables;

fn findings(relative: &str) -> Findings {
    common::findings_of(relative, &TrackerConfig::default())
}

/// Cell `row` of `column` as the Parquet record reader gives it back.
fn expected_field(column: &ColumnRef<'_>, row: usize) -> Field {
    fn or_null<T: Copy>(cell: Option<T>, field: impl Fn(T) -> Field) -> Field {
        cell.map_or(Field::Null, field)
    }
    match column {
        ColumnRef::U64(v) => Field::ULong(v[row]),
        ColumnRef::I64(v) | ColumnRef::Timestamp(v) => Field::Long(v[row]),
        ColumnRef::U32(v) => Field::UInt(v[row]),
        ColumnRef::F64(v) => Field::Double(v[row]),
        ColumnRef::Bool(v) => Field::Bool(v[row]),
        ColumnRef::Text(v) => Field::Str(v[row].to_string()),
        ColumnRef::OptionalU64(v) => or_null(v[row], Field::ULong),
        ColumnRef::OptionalI64(v) | ColumnRef::OptionalTimestamp(v) => or_null(v[row], Field::Long),
        ColumnRef::OptionalF64(v) => or_null(v[row], Field::Double),
        ColumnRef::OptionalBool(v) => or_null(v[row], Field::Bool),
        ColumnRef::OptionalText(v) => v[row]
            .as_ref()
            .map_or(Field::Null, |t| Field::Str(t.to_string())),
    }
}

/// The same float, bit for bit (-0.0 is not 0.0), where any NaN is the same as any other.
fn same_float(read: f64, written: f64) -> bool {
    read.to_bits() == written.to_bits() || read.is_nan() && written.is_nan()
}

/// Cell `row` of `column` as it should read back from its CSV text: null as nothing.
fn csv_reads_back(column: &ColumnRef<'_>, row: usize, text: &str) -> bool {
    fn parsed<T: std::str::FromStr + PartialEq>(text: &str, expected: Option<T>) -> bool {
        match expected {
            None => text.is_empty(),
            Some(value) => text.parse::<T>().ok() == Some(value),
        }
    }
    fn float(text: &str, expected: Option<f64>) -> bool {
        match (expected, text.parse::<f64>()) {
            (None, _) => text.is_empty(),
            (Some(value), Ok(read)) => same_float(read, value),
            (Some(_), Err(_)) => false,
        }
    }
    match column {
        ColumnRef::U64(v) => parsed(text, Some(v[row])),
        ColumnRef::I64(v) | ColumnRef::Timestamp(v) => parsed(text, Some(v[row])),
        ColumnRef::U32(v) => parsed(text, Some(v[row])),
        ColumnRef::F64(v) => float(text, Some(v[row])),
        ColumnRef::Bool(v) => parsed(text, Some(v[row])),
        ColumnRef::Text(v) => text == &*v[row],
        ColumnRef::OptionalU64(v) => parsed(text, v[row]),
        ColumnRef::OptionalI64(v) | ColumnRef::OptionalTimestamp(v) => parsed(text, v[row]),
        ColumnRef::OptionalF64(v) => float(text, v[row]),
        ColumnRef::OptionalBool(v) => parsed(text, v[row]),
        ColumnRef::OptionalText(v) => text == v[row].as_deref().unwrap_or(""),
    }
}

/// The rows of a Parquet file, each as (column name, value) pairs.
fn parquet_rows(
    file: impl parquet::file::reader::ChunkReader + 'static,
) -> Vec<Vec<(String, Field)>> {
    let reader = SerializedFileReader::new(file).unwrap();
    reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().into_columns())
        .collect()
}

/// Asserts that `rows` (read from Parquet) hold exactly `columns`' cells, in order.
fn assert_parquet_holds(rows: &[Vec<(String, Field)>], columns: &[NamedColumn<'_>], what: &str) {
    let height = columns[0].1.len();
    assert_eq!(rows.len(), height, "{what}: rows");
    for (row, cells) in rows.iter().enumerate() {
        assert_eq!(cells.len(), columns.len(), "{what}: columns");
        for ((name, field), (expected_name, column)) in cells.iter().zip(columns) {
            assert_eq!(name, expected_name, "{what}");
            let expected = expected_field(column, row);
            let same = match (field, &expected) {
                (Field::Double(a), Field::Double(b)) => same_float(*a, *b),
                _ => *field == expected,
            };
            assert!(
                same,
                "{what}: row {row}, {name}: {field:?}, expected {expected:?}"
            );
        }
    }
}

#[test]
fn parquet_and_csv_round_trip_with_the_table_values() {
    let findings = findings("synthetic/lb-cycle.pcap.gz");
    let tables = Tables::new(&findings, &TimeWaitPolicy::default());
    assert_eq!(tables.connections.uid.len(), 1500);
    let tables_columns = [
        ("connections", connections_columns(&tables.connections)),
        ("collisions", collisions_columns(&tables.collisions)),
        ("timeline", timeline_columns(&tables.timeline)),
    ];
    for (name, columns) in &tables_columns {
        assert!(columns[0].1.len() > 50, "{name}: too few rows to test");
        let parquet = write_parquet(columns, Vec::new()).unwrap();
        assert_parquet_holds(&parquet_rows(bytes::Bytes::from(parquet)), columns, name);

        let mut csv = Vec::new();
        write_csv(columns, &mut csv).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
        assert_eq!(header, names);
        let mut rows = 0;
        for (row, record) in reader.records().enumerate() {
            let record = record.unwrap();
            assert_eq!(record.len(), columns.len());
            for ((column_name, column), text) in columns.iter().zip(&record) {
                assert!(
                    csv_reads_back(column, row, text),
                    "{name}.csv row {row}, {column_name}: {text:?}"
                );
            }
            rows += 1;
        }
        assert_eq!(rows, columns[0].1.len(), "{name}.csv rows");
    }
    // Times are timestamps (ns, UTC), unsigned integers unsigned, flags booleans, text
    // strings, and only a column that has nulls is optional.
    let (_, connections) = &tables_columns[0];
    let parquet = write_parquet(connections, Vec::new()).unwrap();
    let reader = SerializedFileReader::new(bytes::Bytes::from(parquet)).unwrap();
    let schema = reader.metadata().file_metadata().schema_descr();
    let utc_ns = LogicalType::timestamp(true, TimeUnit::NANOS);
    for (name, logical_type, repetition) in [
        ("ts_ns", Some(utc_ns.clone()), Repetition::REQUIRED),
        (
            "time_wait_start_ns",
            Some(utc_ns.clone()),
            Repetition::OPTIONAL,
        ),
        (
            "uid",
            Some(LogicalType::integer(64, false)),
            Repetition::REQUIRED,
        ),
        (
            "orig_p",
            Some(LogicalType::integer(32, false)),
            Repetition::REQUIRED,
        ),
        ("orig_h", Some(LogicalType::String), Repetition::REQUIRED),
        (
            "active_closer",
            Some(LogicalType::String),
            Repetition::OPTIONAL,
        ),
        ("low_confidence", None, Repetition::REQUIRED),
        ("duration_s", None, Repetition::REQUIRED),
    ] {
        let column = schema
            .columns()
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("no column {name}"));
        assert_eq!(column.logical_type_ref(), logical_type.as_ref(), "{name}");
        assert_eq!(
            column.self_type().get_basic_info().repetition(),
            repetition,
            "{name}"
        );
    }
    let physical = |name: &str| {
        schema
            .columns()
            .iter()
            .find(|c| c.name() == name)
            .unwrap()
            .physical_type()
    };
    assert_eq!(physical("low_confidence"), parquet::basic::Type::BOOLEAN);
    assert_eq!(physical("client_side_reuse"), parquet::basic::Type::BOOLEAN);
    assert_eq!(physical("duration_s"), parquet::basic::Type::DOUBLE);
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

    let accepted = tables
        .collisions
        .outcome
        .iter()
        .filter(|o| &***o == "accepted")
        .count();
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
        let reader = SerializedFileReader::new(file.try_clone().unwrap()).unwrap();
        assert_eq!(
            reader.num_row_groups(),
            columns[0].1.len().div_ceil(97),
            "{name}.parquet: a row group per chunk"
        );
        assert_parquet_holds(&parquet_rows(file), &columns, &format!("{name}.parquet"));
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
