//! The tables as Parquet and CSV (polars), for pandas, polars and DuckDB.

use polars::prelude::*;

use crate::tables::{CollisionsTable, ConnectionsTable, Text, TimelineTable};

/// `connections` as a DataFrame.
pub fn connections_frame(t: &ConnectionsTable) -> PolarsResult<DataFrame> {
    DataFrame::new(
        t.uid.len(),
        vec![
            Column::new("uid".into(), &t.uid),
            Column::new("ts_ns".into(), &t.ts_ns),
            Column::new("orig_h".into(), text(&t.orig_h)),
            Column::new("orig_p".into(), &t.orig_p),
            Column::new("resp_h".into(), text(&t.resp_h)),
            Column::new("resp_p".into(), &t.resp_p),
            Column::new("first_file".into(), &t.first_file),
            Column::new("first_frame".into(), &t.first_frame),
            Column::new("last_frame".into(), &t.last_frame),
            Column::new("duration_s".into(), &t.duration_s),
            Column::new("orig_pkts".into(), &t.orig_pkts),
            Column::new("orig_bytes".into(), &t.orig_bytes),
            Column::new("resp_pkts".into(), &t.resp_pkts),
            Column::new("resp_bytes".into(), &t.resp_bytes),
            Column::new("syn_retransmits".into(), &t.syn_retransmits),
            Column::new("syn_to_syn_ack_ms".into(), &t.syn_to_syn_ack_ms),
            Column::new("conn_state".into(), text(&t.conn_state)),
            Column::new("history".into(), text(&t.history)),
            Column::new("close".into(), text(&t.close)),
            Column::new("active_closer".into(), optional_text(&t.active_closer)),
            Column::new("time_wait_start_ns".into(), &t.time_wait_start_ns),
            Column::new("time_wait_end_ns".into(), &t.time_wait_end_ns),
            Column::new("reuse_interval_s".into(), &t.reuse_interval_s),
            Column::new("prev_uid".into(), &t.prev_uid),
            Column::new("low_confidence".into(), &t.low_confidence),
            Column::new("collision".into(), optional_text(&t.collision)),
        ],
    )
}

/// `collisions` as a DataFrame.
pub fn collisions_frame(t: &CollisionsTable) -> PolarsResult<DataFrame> {
    DataFrame::new(
        t.ts_ns.len(),
        vec![
            Column::new("ts_ns".into(), &t.ts_ns),
            Column::new("orig_h".into(), text(&t.orig_h)),
            Column::new("orig_p".into(), &t.orig_p),
            Column::new("resp_h".into(), text(&t.resp_h)),
            Column::new("resp_p".into(), &t.resp_p),
            Column::new("holder".into(), text(&t.holder)),
            Column::new("time_wait_age_s".into(), &t.time_wait_age_s),
            Column::new("time_wait_duration_s".into(), &t.time_wait_duration_s),
            Column::new("edge_case".into(), &t.edge_case),
            Column::new("prev_uid".into(), &t.prev_uid),
            Column::new("uid".into(), &t.uid),
            Column::new("first_syn_file".into(), &t.first_syn_file),
            Column::new("first_syn_frame".into(), &t.first_syn_frame),
            Column::new("outcome".into(), text(&t.outcome)),
            Column::new("first_reply".into(), text(&t.first_reply)),
            Column::new("syn_attempts".into(), &t.syn_attempts),
            Column::new("cost_ms".into(), &t.cost_ms),
            Column::new("prediction".into(), text(&t.prediction)),
            Column::new("prediction_agrees".into(), &t.prediction_agrees),
            Column::new("isn_signature".into(), &t.isn_signature),
        ],
    )
}

/// `timeline` as a DataFrame.
pub fn timeline_frame(t: &TimelineTable) -> PolarsResult<DataFrame> {
    DataFrame::new(
        t.second.len(),
        vec![
            Column::new("second".into(), &t.second),
            Column::new("orig_h".into(), text(&t.orig_h)),
            Column::new("new_connections".into(), &t.new_connections),
            Column::new("collisions".into(), &t.collisions),
            Column::new("accepted".into(), &t.accepted),
            Column::new("rejected_recovered".into(), &t.rejected_recovered),
            Column::new("reset".into(), &t.reset),
            Column::new("unanswered".into(), &t.unanswered),
            Column::new("failed".into(), &t.failed),
            Column::new("time_wait_tuples".into(), &t.time_wait_tuples),
        ],
    )
}

/// A text column as polars takes it (copied into one buffer).
fn text(column: &[Text]) -> Vec<&str> {
    column.iter().map(|t| &**t).collect()
}

/// A text column with nulls.
fn optional_text(column: &[Option<Text>]) -> Vec<Option<&str>> {
    column.iter().map(Option::as_deref).collect()
}

/// Writes a frame in one export format.
pub type Exporter = fn(&mut DataFrame, &mut dyn std::io::Write) -> PolarsResult<()>;

/// Writes a frame as Parquet (polars' default zstd compression: half the size of Snappy on
/// these tables, and read by pandas/pyarrow, polars and DuckDB alike).
pub fn write_parquet(frame: &mut DataFrame, out: &mut dyn std::io::Write) -> PolarsResult<()> {
    ParquetWriter::new(out).finish(frame).map(|_| ())
}

/// Writes a frame as CSV with a header row.
pub fn write_csv(frame: &mut DataFrame, out: &mut dyn std::io::Write) -> PolarsResult<()> {
    CsvWriter::new(out).finish(frame)
}
