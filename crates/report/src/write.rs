//! Writing a report directory: `report.md`, `report.html`, `charts/*.svg`, `data/*`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::ReportInput;
use crate::analysis::capacity;
use crate::charts::{ChartContext, ChartSource, render_charts};
use crate::content::document;
use crate::document::{render_html, render_markdown};
use crate::export::{timeline_columns, write_csv, write_parquet};
use crate::files::{replace_earlier_outputs, write_atomically};

/// Writes the rest of the report into `dir`, whose `data/connections.*` and
/// `data/collisions.*` [`crate::stream::export_records`] wrote (`exported`), and returns every
/// file of the report, in a fixed order. `summary_json` is the `analyze --json` object, saved
/// as `data/summary.json`. `also_ours` are files already under `dir` that belong to this
/// report (the capture `watch --report` kept): listed in the manifest with the rest, so that
/// neither this run nor a later one takes them for foreign or stale files. The output depends
/// only on the input: no wall-clock time, no random ids.
pub fn write_report(
    dir: &Path,
    input: &ReportInput<'_>,
    summary_json: &serde_json::Value,
    exported: Vec<PathBuf>,
    also_ours: &[PathBuf],
) -> io::Result<Vec<PathBuf>> {
    let charts_dir = dir.join("charts");
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&charts_dir)?;
    std::fs::create_dir_all(&data_dir)?;
    let mut written = exported;

    let timeline = &input.records.timeline;
    let columns = timeline_columns(timeline);
    let parquet = data_dir.join("timeline.parquet");
    write_atomically(&parquet, |w| write_parquet(&columns, w).map(drop))?;
    let csv = data_dir.join("timeline.csv");
    write_atomically(&csv, |w| write_csv(&columns, w))?;
    written.extend([parquet, csv]);
    // summary.json: analyze's object, with what the report adds to it (the rates and the
    // capacity model), so that a script reads the figures the text states.
    let capacity = capacity(input);
    let mut summary_json = summary_json.clone();
    if let Some(object) = summary_json.as_object_mut() {
        let rates = serde_json::json!({
            "all": input.records.rate,
            "by_source": input
                .records
                .tuples
                .iter()
                .map(|t| serde_json::json!({"source": t.orig_h, "rate": t.rate}))
                .collect::<Vec<_>>(),
        });
        object.insert("rates".into(), rates);
        object.insert(
            "capacity_model".into(),
            serde_json::to_value(&capacity).map_err(io::Error::other)?,
        );
    }
    let mut summary = serde_json::to_vec_pretty(&summary_json).map_err(io::Error::other)?;
    summary.push(b'\n');
    write_file(&mut written, data_dir.join("summary.json"), &summary)?;

    let context = ChartContext {
        capture_start_ns: input.records.capture_span.map_or(0, |(start, _)| start),
        time_wait_s: input.policy.default_ns as f64 / 1e9,
        sources: capacity
            .iter()
            .map(|c| ChartSource {
                name: c.source.clone(),
                ports: c.ports_in_use,
                full_range_tuples: c.full_range_tuples(),
            })
            .collect(),
    };
    let charts = render_charts(
        timeline,
        &input.records.charts,
        &input.records.timestamps,
        &context,
    );
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
    let doc = document(input, &capacity, &chart_titles);
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

fn write_file(written: &mut Vec<PathBuf>, path: PathBuf, bytes: &[u8]) -> io::Result<()> {
    write_atomically(&path, |w| w.write_all(bytes))?;
    written.push(path);
    Ok(())
}
