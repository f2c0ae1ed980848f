//! The tables as Parquet and CSV (polars), for pandas, polars and DuckDB.

use polars::prelude::*;

use crate::tables::{CollisionsTable, ConnectionsTable, TimelineTable};

/// `connections` as a DataFrame.
pub fn connections_frame(t: &ConnectionsTable) -> PolarsResult<DataFrame> {
    DataFrame::new(
        t.uid.len(),
        vec![
            Column::new("uid".into(), &t.uid),
            Column::new("ts_ns".into(), &t.ts_ns),
            Column::new("orig_h".into(), &t.orig_h),
            Column::new("orig_p".into(), &t.orig_p),
            Column::new("resp_h".into(), &t.resp_h),
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
            Column::new("conn_state".into(), &t.conn_state),
            Column::new("history".into(), &t.history),
            Column::new("close".into(), &t.close),
            Column::new("active_closer".into(), &t.active_closer),
            Column::new("time_wait_start_ns".into(), &t.time_wait_start_ns),
            Column::new("time_wait_end_ns".into(), &t.time_wait_end_ns),
            Column::new("reuse_interval_s".into(), &t.reuse_interval_s),
            Column::new("prev_uid".into(), &t.prev_uid),
            Column::new("low_confidence".into(), &t.low_confidence),
            Column::new("collision".into(), &t.collision),
        ],
    )
}

/// `collisions` as a DataFrame.
pub fn collisions_frame(t: &CollisionsTable) -> PolarsResult<DataFrame> {
    DataFrame::new(
        t.ts_ns.len(),
        vec![
            Column::new("ts_ns".into(), &t.ts_ns),
            Column::new("orig_h".into(), &t.orig_h),
            Column::new("orig_p".into(), &t.orig_p),
            Column::new("resp_h".into(), &t.resp_h),
            Column::new("resp_p".into(), &t.resp_p),
            Column::new("holder".into(), &t.holder),
            Column::new("time_wait_age_s".into(), &t.time_wait_age_s),
            Column::new("time_wait_duration_s".into(), &t.time_wait_duration_s),
            Column::new("edge_case".into(), &t.edge_case),
            Column::new("prev_uid".into(), &t.prev_uid),
            Column::new("uid".into(), &t.uid),
            Column::new("first_syn_file".into(), &t.first_syn_file),
            Column::new("first_syn_frame".into(), &t.first_syn_frame),
            Column::new("outcome".into(), &t.outcome),
            Column::new("first_reply".into(), &t.first_reply),
            Column::new("syn_attempts".into(), &t.syn_attempts),
            Column::new("cost_ms".into(), &t.cost_ms),
            Column::new("prediction".into(), &t.prediction),
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
            Column::new("orig_h".into(), &t.orig_h),
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
