//! Tables, contexts and SVG readers the charts' tests share.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

use twsleuth_decode::decode;
use twsleuth_flows::{Findings, Summary, TrackerConfig};
use twsleuth_reader::CaptureReader;

use super::{Chart, ChartContext, ChartSample, ChartSource, TimestampSample, render_charts};
use crate::analysis::LINUX_CONNECT_PORTS;
use crate::tables::{Tables, Text};

/// The charts of tables held in memory.
pub(super) fn charts_of(t: &Tables, context: &ChartContext) -> Vec<Chart> {
    render_charts(
        &t.timeline,
        &ChartSample::of(&t.connections, context),
        &TimestampSample::default(),
        context,
    )
}

/// 2025-11-24 16:00:00 UTC.
pub(super) const START_NS: i64 = 1_764_000_000_000_000_000;

/// Builds tables by hand: `n` connections from each source at `rate` per second, cycling
/// through `ports` source ports (a balancer's sawtooth), every `collide_every`-th one a
/// collision with the given outcomes in turn; only the columns the charts read.
pub(super) fn tables(
    sources: &[&str],
    n: usize,
    rate: f64,
    ports: u32,
    collide_every: usize,
    outcomes: &[&str],
) -> Tables {
    let mut t = Tables::default();
    let mut per_second: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    let mut uid = 0u64;
    for (s, source) in sources.iter().enumerate() {
        for i in 0..n {
            let ts = START_NS + (i as f64 / rate * 1e9) as i64 + s as i64 * 1_000;
            let collision = (collide_every > 0 && i % collide_every == collide_every - 1)
                .then(|| Text::from(outcomes[(i / collide_every) % outcomes.len()]));
            let c = &mut t.connections;
            c.uid.push(uid);
            c.ts_ns.push(ts);
            c.orig_h.push(Text::from(*source));
            c.orig_p.push(40_000 + (i as u32 % ports));
            c.syn_to_syn_ack_ms.push(Some(if collision.is_some() {
                1_000.0 + (i % 7) as f64
            } else {
                0.05 + (i % 5) as f64 * 0.01
            }));
            c.reuse_interval_s
                .push((i as u32 >= ports).then(|| f64::from(ports) / rate - 0.01));
            let cell = per_second
                .entry((source.to_string(), ts.div_euclid(1_000_000_000)))
                .or_default();
            cell.0 += 1;
            cell.1 += u64::from(collision.is_some());
            c.collision.push(collision);
            uid += 1;
        }
    }
    for ((source, second), (new, collisions)) in per_second {
        let tl = &mut t.timeline;
        tl.second.push(second);
        tl.orig_h.push(source.into());
        tl.new_connections.push(new);
        tl.collisions.push(collisions);
        tl.time_wait_tuples
            .push(((second - START_NS / 1_000_000_000 + 1) as u64 * new).min(180));
    }
    t
}

pub(super) fn source(name: &str, ports: u64, full_range_tuples: u64) -> ChartSource {
    ChartSource {
        name: name.to_string(),
        ports,
        full_range_tuples,
    }
}

/// The charts of one source, 10.0.0.1: 1,000 connections at 150/s through 200 ports, every
/// fifth a collision, accepted and rejected_recovered in turn.
pub(super) fn one_source_charts() -> Vec<Chart> {
    let sources = ["10.0.0.1"];
    charts_of(
        &tables(
            &sources,
            1_000,
            150.0,
            200,
            5,
            &["accepted", "rejected_recovered"],
        ),
        &context(&sources, 200),
    )
}

pub(super) fn context(sources: &[&str], ports: u64) -> ChartContext {
    ChartContext {
        capture_start_ns: START_NS,
        time_wait_s: 60.0,
        // One destination per port: Linux's one parity of 1024–65535.
        sources: sources
            .iter()
            .map(|s| source(s, ports, LINUX_CONNECT_PORTS))
            .collect(),
    }
}

/// Parses the SVG (panicking with the parser's message if it is not XML) and returns its
/// text elements.
pub(super) fn texts(chart: &Chart) -> Vec<String> {
    let doc = roxmltree::Document::parse(&chart.svg)
        .unwrap_or_else(|e| panic!("{} is not XML: {e}", chart.file_name));
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    doc.descendants()
        .filter(|n| n.has_tag_name("text") || n.has_tag_name("title"))
        .filter_map(|n| n.text())
        .map(|t| t.trim().to_string())
        .collect()
}

pub(super) fn chart<'a>(charts: &'a [Chart], file_name: &str) -> &'a Chart {
    charts
        .iter()
        .find(|c| c.file_name == file_name)
        .unwrap_or_else(|| panic!("no {file_name}"))
}

/// The numbers of the tick labels with this text anchor: plotters right-aligns the y axis's
/// ("end") and centres the x axis's ("middle").
fn ticks(chart: &Chart, anchor: &str) -> Vec<f64> {
    let doc = roxmltree::Document::parse(&chart.svg).expect("XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some(anchor))
        .filter_map(|n| n.text()?.trim().parse().ok())
        .collect()
}

/// The y axis's tick labels, as numbers.
pub(super) fn y_ticks(chart: &Chart) -> Vec<f64> {
    ticks(chart, "end")
}

/// The x axis's tick labels, as numbers.
pub(super) fn x_ticks(chart: &Chart) -> Vec<f64> {
    ticks(chart, "middle")
}

/// The points (px) of the data's polylines drawn in `colour`, in order (2 px wide: the
/// legend's are 3).
pub(super) fn polyline_points(chart: &Chart, colour: RGBColor) -> Vec<(i32, i32)> {
    let hex = format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
    let doc = roxmltree::Document::parse(&chart.svg).expect("XML");
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(&hex))
        .filter(|n| n.attribute("stroke-width") == Some("2"))
        .flat_map(|n| {
            n.attribute("points")
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|p| {
                    let (x, y) = p.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether the chart says `needle`, legend lines joined as they are read.
pub(super) fn has_text(chart: &Chart, needle: &str) -> bool {
    texts(chart).join(" ").contains(needle)
}

/// Tables and chart context of a fixture, as the report builds them.
pub(super) fn fixture_charts(fixture: &str) -> Vec<Chart> {
    let path = format!("{}/../../fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let mut reader = CaptureReader::open(&path, 0).expect("fixture opens");
    let config = TrackerConfig::default();
    let mut segments = Vec::new();
    while reader.advance() {
        if let Some(Ok(segment)) = reader.current().map(|frame| decode(&frame)) {
            segments.push(segment);
        }
    }
    let findings = Findings::of_segments(&config, &segments);
    let summary = Summary::new(&findings, 4);
    let records = crate::stream::RecordDigest::of(&findings, &summary, &config.time_wait);
    let context = ChartContext {
        capture_start_ns: findings
            .connections
            .iter()
            .map(|c| c.ts_ns)
            .min()
            .unwrap_or(0),
        time_wait_s: config.time_wait.default_ns as f64 / 1e9,
        sources: crate::analysis::capacity_of_findings(&findings, &summary, &config.time_wait)
            .into_iter()
            .map(|c| ChartSource {
                full_range_tuples: c.full_range_tuples(),
                name: c.source,
                ports: c.ports_in_use,
            })
            .collect(),
    };
    render_charts(
        &records.timeline,
        &records.charts,
        &records.timestamps,
        &context,
    )
}
