//! `time-wait-occupancy.svg`: tuples held in TIME_WAIT per source over time.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{Span, axes, cartesian, line, tick};
use super::buckets::{Buckets, timeline_seconds};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{GRID, MUTED, SERIES};
use super::text::{display_text, seconds_since, text_style, trim_number};
use super::{Chart, ChartContext, ChartSource};
use crate::analysis::LINUX_CONNECT_PORTS;
use crate::tables::TimelineTable;
use crate::words::count;

/// A limit more than this many times the peak occupancy is not drawn to scale (the occupancy
/// would fill less than a quarter of the plot) but given in the legend.
const LIMIT_ON_SCALE_MAX_RATIO: f64 = 4.0;

/// Tuples in TIME_WAIT per source over time, with the limit (the capacity model's) at which
/// every new connection of the source would land on a tuple still in TIME_WAIT.
pub(super) fn time_wait_occupancy(
    t: &TimelineTable,
    context: &ChartContext,
    start: &str,
    sources: &[ChartSource],
) -> Chart {
    const FILE: &str = "time-wait-occupancy.svg";
    let title = "TIME_WAIT occupancy: tuples held per source";
    let Some((first, last)) = timeline_seconds(t) else {
        return Chart::empty(FILE, title, "no timeline (no connection)");
    };
    if sources.is_empty() {
        return Chart::empty(FILE, title, "no source to show");
    }
    let buckets = Buckets::new(first, last);
    // Peak per bucket: what matters against the limit is how close it came.
    let mut peaks: Vec<Vec<Option<u64>>> = vec![vec![None; buckets.count()]; sources.len()];
    for ((second, orig_h), held) in t.second.iter().zip(&t.orig_h).zip(&t.time_wait_tuples) {
        let source = sources.iter().position(|s| *s.name == **orig_h);
        if let (Some(s), Some(i)) = (source, buckets.index(*second)) {
            let slot = &mut peaks[s][i];
            *slot = Some(slot.unwrap_or(0).max(*held));
        }
    }
    // Held "at the end of the second": plot at the end of each bucket.
    let series: Vec<Vec<(f64, f64)>> = peaks
        .iter()
        .map(|peaks| {
            peaks
                .iter()
                .enumerate()
                .filter_map(|(i, held)| {
                    let (second, covered) = buckets.bounds(i);
                    let end_ns = second.saturating_add(covered).saturating_mul(1_000_000_000);
                    Some((
                        seconds_since(end_ns, context.capture_start_ns),
                        (*held)? as f64,
                    ))
                })
                .collect()
        })
        .collect();
    // Every new connection of a source must meet a TIME_WAIT once all the tuples it could
    // cycle through are held: the capacity model's limit (ports 1024–65535, Linux's one
    // parity, × destinations). The tuples it did use are no limit: occupancy counts those.
    let peak = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max);
    let on_scale = |limit: u64| limit as f64 <= peak * LIMIT_ON_SCALE_MAX_RATIO;
    let x = Span::of(series.iter().flatten().map(|p| p.0));
    let top = sources
        .iter()
        .map(|s| s.full_range_tuples)
        .filter(|limit| on_scale(*limit))
        .fold(peak, |top, limit| top.max(limit as f64));
    let y = Span::new(0.0, top * 1.12);
    let limit_note = format!(
        "limit: the {} ports of one parity × destinations",
        count(LINUX_CONNECT_PORTS)
    );
    let mut subtitle = if buckets.width > 1 {
        format!(
            "peak per {} s of tuples held in TIME_WAIT (by either end); {limit_note}",
            buckets.width
        )
    } else {
        format!("tuples held in TIME_WAIT (by either end) at the end of each second; {limit_note}")
    };
    // After the capture, each TIME_WAIT is drawn running to its end, as if no SYN took its
    // tuple over: an extrapolation, shaded from the start of the first second not observed.
    let extrapolated_from = t
        .second
        .iter()
        .zip(&t.observed)
        .filter(|(_, observed)| !**observed)
        .map(|(second, _)| *second)
        .min()
        .map(|second| {
            seconds_since(
                second.saturating_mul(1_000_000_000),
                context.capture_start_ns,
            )
        })
        .filter(|from| x.end > *from);
    if extrapolated_from.is_some() {
        subtitle.push_str("; shaded: extrapolated");
    }
    // Sources with the same limit share one dashed line and one label.
    let mut limits: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, source) in sources.iter().enumerate() {
        limits.entry(source.full_range_tuples).or_default().push(i);
    }
    let svg = render(title, &subtitle, |area| {
        let x = x.padded(0.01);
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "tuples in TIME_WAIT",
            &|v| tick(*v, x.width()),
            &|v| tick(*v, y.width()),
            12,
        )?;
        let mut legend = Vec::new();
        if let Some(from) = extrapolated_from {
            let from = from.max(x.start);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(from, y.start), (x.end, y.end)],
                GRID.filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                "after the capture: extrapolated",
                (from, y.end),
                text_style(15, MUTED).pos(Pos::new(HPos::Left, VPos::Top)),
            )))?;
        }
        for (i, (source, points)) in sources.iter().zip(&series).enumerate() {
            let colour = SERIES[i % SERIES.len()];
            chart.draw_series(line(points, colour))?;
            legend.push(LegendEntry::new(
                Marker::Line(colour),
                display_text(&source.name),
            ));
        }
        // What a dashed line is, where one is drawn (the subtitle says it for the others).
        if limits.keys().any(|limit| on_scale(*limit)) {
            legend.push(LegendEntry::new(
                Marker::Dashed(MUTED),
                format!(
                    "limit: ports 1024–65535, Linux connect()'s {} of one parity, × destinations per port",
                    count(LINUX_CONNECT_PORTS)
                ),
            ));
        }
        for (limit, members) in &limits {
            let names: Vec<String> = members
                .iter()
                .map(|i| display_text(&sources[*i].name))
                .collect();
            let names = names.join(", ");
            if !on_scale(*limit) {
                // Drawn to scale, the occupancy would be a flat line at the bottom: the
                // legend gives the limit and how far above the axis it is instead.
                legend.push(LegendEntry::new(
                    Marker::Dashed(MUTED),
                    format!(
                        "limit {} tuples ({names}): above this axis, {}× the peak",
                        count(*limit),
                        trim_number(*limit as f64 / peak, 0)
                    ),
                ));
                continue;
            }
            let colour = match members.as_slice() {
                [only] => SERIES[only % SERIES.len()],
                _ => MUTED,
            };
            let level = *limit as f64;
            chart.draw_series(DashedLineSeries::new(
                [(x.start, level), (x.end, level)],
                8,
                5,
                colour.stroke_width(2),
            ))?;
            chart.draw_series(std::iter::once(Text::new(
                format!("limit: {} tuples ({names})", count(*limit)),
                (x.end, level),
                text_style(15, colour).pos(Pos::new(HPos::Right, VPos::Bottom)),
            )))?;
        }
        if extrapolated_from.is_some() {
            legend.push(LegendEntry::new(
                Marker::Bar(GRID),
                "after the capture: extrapolated".to_string(),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::*;
    use crate::tables::Tables;

    #[test]
    fn occupancy_chart_draws_a_line_per_source_and_its_limit() {
        let sources = ["10.0.0.1", "10.0.0.2"];
        // Occupancy peaks at 180 (the tables' cap): limits of 400 and 100 are near enough to
        // be drawn to scale.
        let charts = charts_of(
            &tables(&sources, 1_000, 150.0, 200, 5, &["accepted"]),
            &ChartContext {
                sources: vec![source("10.0.0.1", 200, 400), source("10.0.0.2", 100, 100)],
                ..context(&[], 0)
            },
        );
        let occupancy = chart(&charts, "time-wait-occupancy.svg");
        for label in [
            "10.0.0.1",
            "10.0.0.2",
            "limit: ports 1024–65535, Linux connect()'s 32,256 of one parity, × destinations per port",
            "limit: 400 tuples (10.0.0.1)",
            "limit: 100 tuples (10.0.0.2)",
            "tuples in TIME_WAIT",
        ] {
            assert!(has_text(occupancy, label), "no {label:?}");
        }
        let top = y_ticks(occupancy).into_iter().fold(0.0, f64::max);
        assert!(
            top >= 400.0,
            "the y axis stops at {top}, under the 400 limit"
        );
    }

    #[test]
    fn a_limit_far_above_the_occupancy_is_given_in_the_legend_not_drawn_to_scale() {
        let sources = ["10.0.0.1"];
        // The tables cap occupancy at 180; one destination per port gives Linux's 32,256.
        let charts = charts_of(
            &tables(&sources, 1_000, 150.0, 200, 5, &["accepted"]),
            &context(&sources, 200),
        );
        let occupancy = chart(&charts, "time-wait-occupancy.svg");
        let ratio = (32_256.0_f64 / 180.0).round();
        assert_eq!(ratio, 179.0);
        let label = "limit 32,256 tuples (10.0.0.1): above this axis, 179× the peak";
        assert!(has_text(occupancy, label), "no {label:?}");
        assert!(
            !has_text(occupancy, "limit: 32,256 tuples"),
            "drawn to scale"
        );
        assert!(
            !has_text(occupancy, "limit: ports 1024–65535"),
            "a legend entry for a dashed line that is not drawn"
        );
        let top = y_ticks(occupancy).into_iter().fold(0.0, f64::max);
        assert!(
            (150.0..1_000.0).contains(&top),
            "the y axis should fit the peak of 180, its top tick is {top}"
        );
    }

    #[test]
    fn occupancy_after_the_capture_is_shaded_and_said_extrapolated() {
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 1_000, 150.0, 200, 5, &["accepted"]);
        let last = *t.timeline.second.iter().max().unwrap();
        let observed = |t: &Tables| charts_of(t, &context(&sources, 200));
        t.timeline.observed = vec![true; t.timeline.second.len()];
        let all_observed = observed(&t);
        let chart_of = |charts: &[Chart]| chart(charts, "time-wait-occupancy.svg").svg.clone();
        assert!(!chart_of(&all_observed).contains("extrapolated"));
        t.timeline.observed = t.timeline.second.iter().map(|s| *s < last - 2).collect();
        let charts = observed(&t);
        let occupancy = chart(&charts, "time-wait-occupancy.svg");
        for label in ["; shaded: extrapolated", "after the capture: extrapolated"] {
            assert!(has_text(occupancy, label), "no {label:?}");
        }
    }
}
