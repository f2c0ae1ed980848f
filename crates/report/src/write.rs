//! Writing a report directory: `report.md`, `report.html`, `charts/*.svg`, `data/*`.

use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::ReportInput;
use crate::charts::{ChartContext, ChartSource, render_charts};
use crate::content::{capacity, document};
use crate::document::{render_html, render_markdown};
use crate::export::{
    collisions_columns, connections_columns, frame, timeline_columns, write_csv, write_parquet,
};
use crate::files::{replace_earlier_outputs, write_atomically};
use crate::tables::Tables;

/// Writes the report into `dir` (created if missing; see [`crate::files::check_output_dir`]
/// for what it may already hold) and returns the files written, in a fixed order.
/// `summary_json` is the `analyze --json` object, saved as `data/summary.json`. `also_ours`
/// are files already under `dir` that belong to this report (the capture `watch --report`
/// kept): listed in the manifest with the rest, so that neither this run nor a later one takes
/// them for foreign or stale files. The output depends only on the input: no wall-clock time,
/// no random ids.
pub fn write_report(
    dir: &Path,
    input: &ReportInput<'_>,
    summary_json: &serde_json::Value,
    also_ours: &[PathBuf],
) -> io::Result<Vec<PathBuf>> {
    let charts_dir = dir.join("charts");
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&charts_dir)?;
    std::fs::create_dir_all(&data_dir)?;
    let mut written = Vec::new();

    let tables = Tables::new(input.findings, input.policy);
    let polars_error = |e: polars::prelude::PolarsError| io::Error::other(e.to_string());
    let tables_columns = [
        ("connections", connections_columns(&tables.connections)),
        ("collisions", collisions_columns(&tables.collisions)),
        ("timeline", timeline_columns(&tables.timeline)),
    ];
    // Six independent exports (three tables, two formats): written in parallel.
    let data_dir = &data_dir;
    let exports = tables_columns
        .par_iter()
        .flat_map_iter(|(name, columns)| {
            [("parquet", Format::Parquet), ("csv", Format::Csv)].map(|(extension, format)| {
                (
                    data_dir.join(format!("{name}.{extension}")),
                    columns,
                    format,
                )
            })
        })
        .map(|(path, columns, format)| {
            write_atomically(&path, |w| match format {
                Format::Parquet => {
                    let mut frame = frame(columns).map_err(polars_error)?;
                    write_parquet(&mut frame, w).map_err(polars_error)
                }
                Format::Csv => write_csv(columns, w),
            })?;
            Ok(path)
        })
        .collect::<io::Result<Vec<PathBuf>>>()?;
    written.extend(exports);
    let mut summary = serde_json::to_vec_pretty(summary_json).map_err(io::Error::other)?;
    summary.push(b'\n');
    write_file(&mut written, data_dir.join("summary.json"), &summary)?;

    let capacity = capacity(input, &tables);
    let context = ChartContext {
        capture_start_ns: tables.connections.ts_ns.first().copied().unwrap_or(0),
        time_wait_s: input.policy.default_ns as f64 / 1e9,
        sources: capacity
            .iter()
            .map(|c| ChartSource {
                name: c.source.clone(),
                ports: c.ports_in_use,
                tuples: c.tuples_in_use,
            })
            .collect(),
    };
    let charts = render_charts(&tables, &context);
    for chart in &charts {
        write_file(
            &mut written,
            charts_dir.join(&chart.file_name),
            chart.svg.as_bytes(),
        )?;
    }
    let chart_titles: Vec<(String, String)> = charts
        .iter()
        .map(|c| (c.file_name.clone(), c.title.clone()))
        .collect();
    let doc = document(input, &tables, &capacity, &chart_titles);
    write_file(
        &mut written,
        dir.join("report.md"),
        render_markdown(&doc).as_bytes(),
    )?;
    let inline: Vec<(String, String)> = charts.into_iter().map(|c| (c.file_name, c.svg)).collect();
    write_file(
        &mut written,
        dir.join("report.html"),
        render_html(&doc, &inline).as_bytes(),
    )?;
    // What an earlier run wrote here and this one did not (a chart of another capture's
    // source) goes; the manifest lists what this run wrote.
    let ours: Vec<PathBuf> = written.iter().chain(also_ours).cloned().collect();
    replace_earlier_outputs(dir, &ours)?;
    Ok(written)
}

/// The export formats.
#[derive(Clone, Copy)]
enum Format {
    Parquet,
    Csv,
}

fn write_file(written: &mut Vec<PathBuf>, path: PathBuf, bytes: &[u8]) -> io::Result<()> {
    write_atomically(&path, |w| w.write_all(bytes))?;
    written.push(path);
    Ok(())
}
