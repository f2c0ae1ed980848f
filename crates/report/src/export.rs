//! The tables as Parquet and CSV, for pandas, polars and DuckDB. Each table's columns are
//! listed once, as [`NamedColumn`]s, and both formats are written from that list. Times are ns
//! since the epoch: integers in CSV, `TIMESTAMP(NANOS)` adjusted to UTC in Parquet; flags are
//! booleans in both.

use std::io::{self, Write};

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::data_type::{
    BoolType, ByteArray, ByteArrayType, DataType, DoubleType, Int32Type, Int64Type,
};
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::{SerializedColumnWriter, SerializedFileWriter};
use parquet::schema::types::Type;

use crate::tables::{CollisionsTable, ConnectionsTable, DOUBTS, Text, TimelineTable};

/// A column of a table, borrowed, by the type of its cells.
#[derive(Clone, Copy, Debug)]
pub enum ColumnRef<'a> {
    /// Unsigned integers.
    U64(&'a [u64]),
    /// Signed integers.
    I64(&'a [i64]),
    /// Times, ns since the epoch.
    Timestamp(&'a [i64]),
    /// Times or null.
    OptionalTimestamp(&'a [Option<i64>]),
    /// Small unsigned integers (ports, counts).
    U32(&'a [u32]),
    /// Floating point.
    F64(&'a [f64]),
    /// Booleans.
    Bool(&'a [bool]),
    /// Unsigned integers or null.
    OptionalU64(&'a [Option<u64>]),
    /// Signed integers or null.
    OptionalI64(&'a [Option<i64>]),
    /// Floating point or null.
    OptionalF64(&'a [Option<f64>]),
    /// Booleans or null.
    OptionalBool(&'a [Option<bool>]),
    /// Text.
    Text(&'a [Text]),
    /// Text or null.
    OptionalText(&'a [Option<Text>]),
}

/// A column with its name in the exports.
pub type NamedColumn<'a> = (&'static str, ColumnRef<'a>);

impl ColumnRef<'_> {
    /// Rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnRef::U64(v) => v.len(),
            ColumnRef::I64(v) | ColumnRef::Timestamp(v) => v.len(),
            ColumnRef::OptionalTimestamp(v) => v.len(),
            ColumnRef::U32(v) => v.len(),
            ColumnRef::F64(v) => v.len(),
            ColumnRef::Bool(v) => v.len(),
            ColumnRef::OptionalU64(v) => v.len(),
            ColumnRef::OptionalI64(v) => v.len(),
            ColumnRef::OptionalF64(v) => v.len(),
            ColumnRef::OptionalBool(v) => v.len(),
            ColumnRef::Text(v) => v.len(),
            ColumnRef::OptionalText(v) => v.len(),
        }
    }

    /// True when the column has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the CSV text of one cell: numbers as polars writes them (itoa, zmij's
    /// shortest round-trip floats), null as nothing, text quoted where it must be.
    fn write_csv_cell(&self, row: usize, out: &mut Vec<u8>) {
        fn integer(out: &mut Vec<u8>, value: impl itoa::Integer) {
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        }
        fn float(out: &mut Vec<u8>, value: f64) {
            out.extend_from_slice(zmij::Buffer::new().format(value).as_bytes());
        }
        fn boolean(out: &mut Vec<u8>, value: bool) {
            out.extend_from_slice(if value { b"true" } else { b"false" });
        }
        match self {
            ColumnRef::U64(v) => integer(out, v[row]),
            ColumnRef::I64(v) | ColumnRef::Timestamp(v) => integer(out, v[row]),
            ColumnRef::OptionalTimestamp(v) => v[row].into_iter().for_each(|x| integer(out, x)),
            ColumnRef::U32(v) => integer(out, v[row]),
            ColumnRef::F64(v) => float(out, v[row]),
            ColumnRef::Bool(v) => boolean(out, v[row]),
            ColumnRef::OptionalU64(v) => v[row].into_iter().for_each(|x| integer(out, x)),
            ColumnRef::OptionalI64(v) => v[row].into_iter().for_each(|x| integer(out, x)),
            ColumnRef::OptionalF64(v) => v[row].into_iter().for_each(|x| float(out, x)),
            ColumnRef::OptionalBool(v) => v[row].into_iter().for_each(|x| boolean(out, x)),
            ColumnRef::Text(v) => csv_text(out, &v[row]),
            ColumnRef::OptionalText(v) => {
                if let Some(text) = &v[row] {
                    csv_text(out, text);
                }
            }
        }
    }
}

/// Appends a CSV field: quoted, with quotes doubled, when it holds a comma, a quote or a line
/// break (RFC 4180 section 2), or when it is empty (which would read back as null).
fn csv_text(out: &mut Vec<u8>, text: &str) {
    if text.is_empty()
        || text
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        let mut rest = text.as_bytes();
        while let Some(quote) = rest.iter().position(|&b| b == b'"') {
            out.extend_from_slice(&rest[..=quote]);
            out.push(b'"');
            rest = &rest[quote + 1..];
        }
        out.extend_from_slice(rest);
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

/// Text columns whose every row has its own value: Parquet writes them without a dictionary,
/// which would fill up and be given up in every row group after hashing each cell (the bench
/// capture's `collisions.parquet` is 4% smaller without).
const ROW_TEXT_COLUMNS: [&str; 2] = ["basis", "wireshark_filter"];

/// The `connections` table's columns.
pub fn connections_columns(t: &ConnectionsTable) -> Vec<NamedColumn<'_>> {
    let mut columns = vec![
        ("uid", ColumnRef::U64(&t.uid)),
        ("ts_ns", ColumnRef::Timestamp(&t.ts_ns)),
        ("orig_h", ColumnRef::Text(&t.orig_h)),
        ("orig_p", ColumnRef::U32(&t.orig_p)),
        ("resp_h", ColumnRef::Text(&t.resp_h)),
        ("resp_p", ColumnRef::U32(&t.resp_p)),
        ("first_file", ColumnRef::U32(&t.first_file)),
        ("first_frame", ColumnRef::U64(&t.first_frame)),
        ("last_frame", ColumnRef::U64(&t.last_frame)),
        ("duration_s", ColumnRef::F64(&t.duration_s)),
        ("orig_pkts", ColumnRef::U64(&t.orig_pkts)),
        ("orig_bytes", ColumnRef::U64(&t.orig_bytes)),
        ("resp_pkts", ColumnRef::U64(&t.resp_pkts)),
        ("resp_bytes", ColumnRef::U64(&t.resp_bytes)),
        ("syn_retransmits", ColumnRef::U32(&t.syn_retransmits)),
        (
            "syn_to_syn_ack_ms",
            ColumnRef::OptionalF64(&t.syn_to_syn_ack_ms),
        ),
        ("conn_state", ColumnRef::Text(&t.conn_state)),
        ("history", ColumnRef::Text(&t.history)),
        ("close", ColumnRef::Text(&t.close)),
        ("active_closer", ColumnRef::OptionalText(&t.active_closer)),
        (
            "time_wait_start_ns",
            ColumnRef::OptionalTimestamp(&t.time_wait_start_ns),
        ),
        (
            "time_wait_end_ns",
            ColumnRef::OptionalTimestamp(&t.time_wait_end_ns),
        ),
        (
            "reuse_interval_s",
            ColumnRef::OptionalF64(&t.reuse_interval_s),
        ),
        ("prev_uid", ColumnRef::OptionalU64(&t.prev_uid)),
        ("low_confidence", ColumnRef::Bool(&t.low_confidence)),
    ];
    columns.extend(
        DOUBTS
            .iter()
            .zip(&t.doubts)
            .map(|((_, name), column)| (*name, ColumnRef::Bool(column))),
    );
    columns.extend([
        ("client_side_reuse", ColumnRef::Bool(&t.client_side_reuse)),
        ("unseen_side", ColumnRef::OptionalText(&t.unseen_side)),
        ("collision", ColumnRef::OptionalText(&t.collision)),
    ]);
    columns
}

/// The `collisions` table's columns.
pub fn collisions_columns(t: &CollisionsTable) -> Vec<NamedColumn<'_>> {
    vec![
        ("ts_ns", ColumnRef::Timestamp(&t.ts_ns)),
        ("orig_h", ColumnRef::Text(&t.orig_h)),
        ("orig_p", ColumnRef::U32(&t.orig_p)),
        ("resp_h", ColumnRef::Text(&t.resp_h)),
        ("resp_p", ColumnRef::U32(&t.resp_p)),
        ("holder", ColumnRef::Text(&t.holder)),
        ("time_wait_age_s", ColumnRef::F64(&t.time_wait_age_s)),
        (
            "time_wait_duration_s",
            ColumnRef::F64(&t.time_wait_duration_s),
        ),
        ("edge_case", ColumnRef::Bool(&t.edge_case)),
        ("prev_uid", ColumnRef::U64(&t.prev_uid)),
        ("uid", ColumnRef::U64(&t.uid)),
        ("first_syn_file", ColumnRef::U32(&t.first_syn_file)),
        ("first_syn_frame", ColumnRef::U64(&t.first_syn_frame)),
        ("outcome", ColumnRef::Text(&t.outcome)),
        ("first_reply", ColumnRef::Text(&t.first_reply)),
        ("syn_attempts", ColumnRef::U32(&t.syn_attempts)),
        ("cost_ms", ColumnRef::OptionalF64(&t.cost_ms)),
        ("prediction", ColumnRef::OptionalText(&t.prediction)),
        ("linux_rule", ColumnRef::OptionalText(&t.linux_rule)),
        ("reason", ColumnRef::OptionalText(&t.reason)),
        (
            "time_wait_assassinated",
            ColumnRef::Bool(&t.time_wait_assassinated),
        ),
        (
            "prediction_agrees",
            ColumnRef::OptionalBool(&t.prediction_agrees),
        ),
        ("isn_signature", ColumnRef::Bool(&t.isn_signature)),
        ("syn_seq", ColumnRef::U32(&t.syn_seq)),
        ("syn_tsval", ColumnRef::OptionalU64(&t.syn_tsval)),
        ("old_rcv_nxt", ColumnRef::U32(&t.old_rcv_nxt)),
        ("old_snd_nxt", ColumnRef::U32(&t.old_snd_nxt)),
        ("old_ts_recent", ColumnRef::OptionalU64(&t.old_ts_recent)),
        ("server_isn", ColumnRef::OptionalU64(&t.server_isn)),
        ("inferred", ColumnRef::Bool(&t.inferred)),
        ("syn_ts_estimated", ColumnRef::Bool(&t.syn_ts_estimated)),
        ("basis", ColumnRef::Text(&t.basis)),
        ("wireshark_filter", ColumnRef::Text(&t.wireshark_filter)),
    ]
}

/// The `timeline` table's columns.
pub fn timeline_columns(t: &TimelineTable) -> Vec<NamedColumn<'_>> {
    vec![
        ("ts_ns", ColumnRef::Timestamp(&t.ts_ns)),
        ("orig_h", ColumnRef::Text(&t.orig_h)),
        ("new_connections", ColumnRef::U64(&t.new_connections)),
        ("collisions", ColumnRef::U64(&t.collisions)),
        ("accepted", ColumnRef::U64(&t.accepted)),
        ("rejected_recovered", ColumnRef::U64(&t.rejected_recovered)),
        ("reset", ColumnRef::U64(&t.reset)),
        ("unanswered", ColumnRef::U64(&t.unanswered)),
        ("failed", ColumnRef::U64(&t.failed)),
        ("unknown", ColumnRef::U64(&t.unknown)),
        ("time_wait_tuples", ColumnRef::U64(&t.time_wait_tuples)),
        ("observed", ColumnRef::Bool(&t.observed)),
    ]
}

/// zstd's level for the Parquet files: level 1 wrote the bench capture's 970 k records ~8%
/// faster than the default 3, in files 8% larger.
const PARQUET_ZSTD_LEVEL: i32 = 1;

/// A Parquet file written a row group at a time, one row group per [`ParquetTable::write`].
///
/// Written with arrow-rs's low-level writer, which keeps per row group only what the footer
/// needs: each column chunk's offsets and statistics (the footer takes ~3 KB per row group of
/// these tables). polars' writer also kept every page's header until the footer, ~125 KB per
/// 32,768-row group: 60 MiB at 10 M connections, the only part of `report`'s memory that grew
/// with the capture.
///
/// - Times are `TIMESTAMP(NANOS, isAdjustedToUTC)` (pandas `datetime64[ns, UTC]`, polars
///   `Datetime(ns, UTC)`, DuckDB `TIMESTAMP WITH TIME ZONE`); unsigned integers carry the
///   `INTEGER(bits, unsigned)` annotation; text is `STRING`; a cell that can be null makes its
///   column `OPTIONAL` (Parquet format, LogicalTypes.md).
/// - zstd level 1 (half the size of Snappy on these tables; read by pyarrow, polars and
///   DuckDB alike).
/// - Statistics per column chunk (min, max, nulls), which let readers skip row groups; none
///   per page, whose column index would again grow with the row groups.
/// - Dictionary encoding for text only: addresses and states repeat, numbers rarely do.
pub struct ParquetTable<W: Write + Send> {
    writer: SerializedFileWriter<W>,
}

impl<W: Write + Send> ParquetTable<W> {
    /// Starts a Parquet file in `out` for a table of `columns` (their names and types; their
    /// rows are not written).
    pub fn create(out: W, columns: &[NamedColumn<'_>]) -> io::Result<Self> {
        let fields = columns
            .iter()
            .map(|(name, column)| column.parquet_field(name).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(parquet_error)?;
        let schema = Type::group_type_builder("schema")
            .with_fields(fields)
            .build()
            .map_err(parquet_error)?;
        let level = ZstdLevel::try_new(PARQUET_ZSTD_LEVEL).map_err(parquet_error)?;
        let mut properties = WriterProperties::builder()
            .set_created_by(concat!("twsleuth ", env!("CARGO_PKG_VERSION")).into())
            .set_compression(Compression::ZSTD(level))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_dictionary_enabled(false);
        for (name, column) in columns {
            if matches!(column, ColumnRef::Text(_) | ColumnRef::OptionalText(_))
                && !ROW_TEXT_COLUMNS.contains(name)
            {
                properties = properties.set_column_dictionary_enabled((*name).into(), true);
            }
        }
        let writer = SerializedFileWriter::new(out, Arc::new(schema), properties.build().into())
            .map_err(parquet_error)?;
        Ok(ParquetTable { writer })
    }

    /// Writes `columns` (the table's, in the same order) as one row group.
    pub fn write(&mut self, columns: &[NamedColumn<'_>]) -> io::Result<()> {
        let mut row_group = self.writer.next_row_group().map_err(parquet_error)?;
        for (_, column) in columns {
            let mut writer = row_group
                .next_column()
                .map_err(parquet_error)?
                .ok_or_else(|| io::Error::other("more columns than the Parquet schema has"))?;
            column.write_parquet(&mut writer).map_err(parquet_error)?;
            writer.close().map_err(parquet_error)?;
        }
        row_group.close().map_err(parquet_error)?;
        Ok(())
    }

    /// Writes the footer and gives back the output, flushed (a full disk fails here, not
    /// silently).
    pub fn finish(self) -> io::Result<W> {
        self.writer.into_inner().map_err(parquet_error)
    }
}

/// Writes `columns` as a Parquet file of one row group.
pub fn write_parquet<W: Write + Send>(columns: &[NamedColumn<'_>], out: W) -> io::Result<W> {
    let mut table = ParquetTable::create(out, columns)?;
    table.write(columns)?;
    table.finish()
}

/// The writer's error as an I/O error: a failed write (a full disk) as itself, with its kind.
fn parquet_error(e: ParquetError) -> io::Error {
    match e {
        ParquetError::External(e) => match e.downcast::<io::Error>() {
            Ok(e) => *e,
            Err(e) => io::Error::other(e),
        },
        e => io::Error::other(e.to_string()),
    }
}

impl ColumnRef<'_> {
    /// The column's Parquet field.
    fn parquet_field(&self, name: &str) -> parquet::errors::Result<Type> {
        use parquet::basic::TimeUnit::NANOS;
        let (physical, logical, required) = match self {
            ColumnRef::U64(_) => (Physical::INT64, Some(LogicalType::integer(64, false)), true),
            ColumnRef::OptionalU64(_) => (
                Physical::INT64,
                Some(LogicalType::integer(64, false)),
                false,
            ),
            ColumnRef::I64(_) => (Physical::INT64, None, true),
            ColumnRef::OptionalI64(_) => (Physical::INT64, None, false),
            ColumnRef::Timestamp(_) => (
                Physical::INT64,
                Some(LogicalType::timestamp(true, NANOS)),
                true,
            ),
            ColumnRef::OptionalTimestamp(_) => (
                Physical::INT64,
                Some(LogicalType::timestamp(true, NANOS)),
                false,
            ),
            ColumnRef::U32(_) => (Physical::INT32, Some(LogicalType::integer(32, false)), true),
            ColumnRef::F64(_) => (Physical::DOUBLE, None, true),
            ColumnRef::OptionalF64(_) => (Physical::DOUBLE, None, false),
            ColumnRef::Bool(_) => (Physical::BOOLEAN, None, true),
            ColumnRef::OptionalBool(_) => (Physical::BOOLEAN, None, false),
            ColumnRef::Text(_) => (Physical::BYTE_ARRAY, Some(LogicalType::String), true),
            ColumnRef::OptionalText(_) => (Physical::BYTE_ARRAY, Some(LogicalType::String), false),
        };
        Type::primitive_type_builder(name, physical)
            .with_repetition(if required {
                Repetition::REQUIRED
            } else {
                Repetition::OPTIONAL
            })
            .with_logical_type(logical)
            .build()
    }

    /// Writes the column's cells into a column chunk. Unsigned integers are stored in the
    /// signed type of their width, bit for bit, as the `INTEGER(bits, unsigned)` annotation
    /// asks.
    fn write_parquet(
        &self,
        writer: &mut SerializedColumnWriter<'_>,
    ) -> parquet::errors::Result<()> {
        match self {
            ColumnRef::U64(v) => required::<Int64Type, _>(writer, v.iter().map(|&x| x as i64)),
            ColumnRef::I64(v) | ColumnRef::Timestamp(v) => writer
                .typed::<Int64Type>()
                .write_batch(v, None, None)
                .map(drop),
            ColumnRef::U32(v) => required::<Int32Type, _>(writer, v.iter().map(|&x| x as i32)),
            ColumnRef::F64(v) => writer
                .typed::<DoubleType>()
                .write_batch(v, None, None)
                .map(drop),
            ColumnRef::Bool(v) => writer
                .typed::<BoolType>()
                .write_batch(v, None, None)
                .map(drop),
            ColumnRef::Text(v) => {
                let cells = byte_arrays(v.iter().map(|t| &**t));
                writer
                    .typed::<ByteArrayType>()
                    .write_batch(&cells, None, None)
                    .map(drop)
            }
            ColumnRef::OptionalU64(v) => optional::<Int64Type, _>(writer, v, |x| x as i64),
            ColumnRef::OptionalI64(v) | ColumnRef::OptionalTimestamp(v) => {
                optional::<Int64Type, _>(writer, v, |x| x)
            }
            ColumnRef::OptionalF64(v) => optional::<DoubleType, _>(writer, v, |x| x),
            ColumnRef::OptionalBool(v) => optional::<BoolType, _>(writer, v, |x| x),
            ColumnRef::OptionalText(v) => {
                let levels = definition_levels(v);
                let cells = byte_arrays(v.iter().flatten().map(|t| &**t));
                writer
                    .typed::<ByteArrayType>()
                    .write_batch(&cells, Some(&levels), None)
                    .map(drop)
            }
        }
    }
}

/// Writes a required column's values.
fn required<T: DataType, I: Iterator<Item = T::T>>(
    writer: &mut SerializedColumnWriter<'_>,
    values: I,
) -> parquet::errors::Result<()> {
    let values: Vec<T::T> = values.collect();
    writer
        .typed::<T>()
        .write_batch(&values, None, None)
        .map(drop)
}

/// Writes an optional column: the values present, and a definition level per row (1 for a
/// value, 0 for null: Parquet format, "Nested Encoding").
fn optional<T: DataType, X: Copy>(
    writer: &mut SerializedColumnWriter<'_>,
    cells: &[Option<X>],
    value: impl Fn(X) -> T::T,
) -> parquet::errors::Result<()> {
    let levels = definition_levels(cells);
    let values: Vec<T::T> = cells.iter().flatten().map(|&x| value(x)).collect();
    writer
        .typed::<T>()
        .write_batch(&values, Some(&levels), None)
        .map(drop)
}

fn definition_levels<X>(cells: &[Option<X>]) -> Vec<i16> {
    cells.iter().map(|c| i16::from(c.is_some())).collect()
}

/// Text cells as Parquet byte arrays: slices of one buffer, not an allocation each.
fn byte_arrays<'a>(texts: impl Iterator<Item = &'a str>) -> Vec<ByteArray> {
    let mut buffer = Vec::new();
    let mut ends = Vec::new();
    for text in texts {
        buffer.extend_from_slice(text.as_bytes());
        ends.push(buffer.len());
    }
    let buffer = Bytes::from(buffer);
    let mut start = 0;
    ends.into_iter()
        .map(|end| {
            let cell = ByteArray::from(buffer.slice(start..end));
            start = end;
            cell
        })
        .collect()
}

/// Writes the columns as CSV with a header row, in the format polars writes (and reads back).
/// Written here rather than through polars' CSV writer, which took 0.25-0.32 s for the
/// benchmark's 500 k connections (0.12 s here) and needed every text cell copied into a polars
/// frame first.
pub fn write_csv(columns: &[NamedColumn<'_>], out: &mut dyn Write) -> io::Result<()> {
    write_csv_header(columns, out)?;
    write_csv_rows(columns, out)
}

/// The CSV header row of `columns`.
pub fn write_csv_header(columns: &[NamedColumn<'_>], out: &mut dyn Write) -> io::Result<()> {
    let mut header = Vec::new();
    for (i, (name, _)) in columns.iter().enumerate() {
        if i > 0 {
            header.push(b',');
        }
        csv_text(&mut header, name);
    }
    header.push(b'\n');
    out.write_all(&header)
}

/// The CSV rows of `columns`, a line at a time into `out` (which buffers). Formatted on the
/// caller's thread into one reused line: the report exports its two tables on threads of
/// their own, and chunks formatted on the pool and freed on the exporting thread made the
/// allocator hold up to 100 MiB more on a 10 M-connection capture.
pub fn write_csv_rows(columns: &[NamedColumn<'_>], out: &mut dyn Write) -> io::Result<()> {
    let rows = columns.first().map_or(0, |(_, column)| column.len());
    let mut line = Vec::with_capacity(32 * columns.len());
    for row in 0..rows {
        line.clear();
        for (i, (_, column)) in columns.iter().enumerate() {
            if i > 0 {
                line.push(b',');
            }
            column.write_csv_cell(row, &mut line);
        }
        line.push(b'\n');
        out.write_all(&line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `room` bytes, then fails as a full disk does.
    struct FullDisk {
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_fails_the_parquet_file_wherever_it_fills() {
        let numbers: Vec<u64> = (0..10_000).map(|i| i * 7919).collect();
        let names: Vec<Text> = (0..10_000)
            .map(|i| Text::from(format!("10.0.{i}.1")))
            .collect();
        let columns = [
            ("n", ColumnRef::U64(&numbers)),
            ("name", ColumnRef::Text(&names)),
        ];
        let whole = write_parquet(&columns, Vec::new()).unwrap().len();
        // Full at the magic, within the row group, within the footer, at the last byte.
        for room in [0, 3, whole / 2, whole - 40, whole - 1] {
            // The error says why (its kind is lost only when the writer's last buffer
            // fails to flush, which the parquet crate reports as text).
            let error = write_parquet(&columns, FullDisk { room }).err();
            let why = io::Error::from(io::ErrorKind::StorageFull).to_string();
            assert!(
                error.is_some_and(|e| e.to_string().contains(&why)),
                "room for {room} of {whole} bytes"
            );
        }
        assert!(write_parquet(&columns, FullDisk { room: whole }).is_ok());
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let cells: Vec<Text> = [
            "10.0.0.1",
            "a,b",
            "say \"hi\"",
            "two\nlines",
            "",
            "cr\r",
            "\"\"",
        ]
        .into_iter()
        .map(Text::from)
        .collect();
        let missing = [None, Some(Text::from("x"))];
        let mut out = Vec::new();
        write_csv(
            &[
                ("text", ColumnRef::Text(&cells)),
                (
                    "float",
                    ColumnRef::F64(&[60.0, 0.19, 1e-7, f64::NAN, -0.0, 2.5, 3.0]),
                ),
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "text,float\n10.0.0.1,60.0\n\"a,b\",0.19\n\"say \"\"hi\"\"\",1e-7\n\"two\nlines\",NaN\n\"\",-0.0\n\"cr\r\",2.5\n\"\"\"\"\"\",3.0\n"
        );
        let mut out = Vec::new();
        write_csv(&[("maybe", ColumnRef::OptionalText(&missing))], &mut out).unwrap();
        assert_eq!(out, b"maybe\n\nx\n");
    }
}
