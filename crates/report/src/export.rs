//! The tables as Parquet (polars) and CSV, for pandas, polars and DuckDB. Each table's
//! columns are listed once, as [`NamedColumn`]s, and both formats are written from that list.
//! Times are ns since the epoch: integers in CSV, `Datetime[ns, UTC]` in Parquet; flags are
//! booleans in both.

use std::io::{self, Write};

use polars::prelude::*;

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

    /// The column as polars holds it.
    fn to_polars(self, name: &str) -> Column {
        let name: PlSmallStr = name.into();
        // Wrapped as they are (a cast would drop the time zone without polars' `timezones`
        // feature, which validates zone names this export never needs).
        let utc = |series: Series| {
            series
                .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
                .into_column()
        };
        match self {
            ColumnRef::Timestamp(v) => utc(Series::new(name, v)),
            ColumnRef::OptionalTimestamp(v) => utc(Series::new(name, v)),
            ColumnRef::U64(v) => Column::new(name, v),
            ColumnRef::I64(v) => Column::new(name, v),
            ColumnRef::U32(v) => Column::new(name, v),
            ColumnRef::F64(v) => Column::new(name, v),
            ColumnRef::Bool(v) => Column::new(name, v),
            ColumnRef::OptionalU64(v) => Column::new(name, v),
            ColumnRef::OptionalI64(v) => Column::new(name, v),
            ColumnRef::OptionalF64(v) => Column::new(name, v),
            ColumnRef::OptionalBool(v) => Column::new(name, v),
            ColumnRef::Text(v) => Column::new(name, v.iter().map(|t| &**t).collect::<Vec<_>>()),
            ColumnRef::OptionalText(v) => Column::new(
                name,
                v.iter()
                    .map(Option::as_deref)
                    .collect::<Vec<Option<&str>>>(),
            ),
        }
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
        for byte in text.bytes() {
            if byte == b'"' {
                out.push(b'"');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

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

/// The columns as a polars DataFrame (what the Parquet export writes).
pub fn frame(columns: &[NamedColumn<'_>]) -> PolarsResult<DataFrame> {
    let height = columns.first().map_or(0, |(_, column)| column.len());
    DataFrame::new(
        height,
        columns
            .iter()
            .map(|(name, column)| column.to_polars(name))
            .collect(),
    )
}

/// zstd's level for the Parquet files: level 1 writes the bench capture's 970 k records ~8%
/// faster than the default 3, in files 8% larger (45 MB against 42; the CSV is 300 MB).
const PARQUET_ZSTD_LEVEL: i32 = 1;

/// A Parquet writer as every export uses it: zstd (half the size of Snappy on these tables,
/// and read by pandas/pyarrow, polars and DuckDB alike) at level 1.
pub fn parquet_writer<W: Write>(out: W) -> ParquetWriter<W> {
    let level = polars::polars_utils::compression::ZstdLevel::try_new(PARQUET_ZSTD_LEVEL)
        .expect("a level zstd has");
    ParquetWriter::new(out).with_compression(ParquetCompression::Zstd(Some(level)))
}

/// Writes a frame as Parquet.
pub fn write_parquet(frame: &mut DataFrame, out: &mut dyn Write) -> PolarsResult<()> {
    parquet_writer(out).finish(frame).map(|_| ())
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

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let cells: Vec<Text> = ["10.0.0.1", "a,b", "say \"hi\"", "two\nlines", "", "cr\r"]
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
                    ColumnRef::F64(&[60.0, 0.19, 1e-7, f64::NAN, -0.0, 2.5]),
                ),
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "text,float\n10.0.0.1,60.0\n\"a,b\",0.19\n\"say \"\"hi\"\"\",1e-7\n\"two\nlines\",NaN\n\"\",-0.0\n\"cr\r\",2.5\n"
        );
        let mut out = Vec::new();
        write_csv(&[("maybe", ColumnRef::OptionalText(&missing))], &mut out).unwrap();
        assert_eq!(out, b"maybe\n\nx\n");
    }
}
