//! `time-wait-occupancy.svg`: tuples held in TIME_WAIT per source over time.

use std::collections::BTreeMap;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axes::{Span, axes, cartesian, line, tick};
use super::buckets::{Buckets, timeline_seconds};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{GRID, MUTED, SERIES};
use super::text::{display_text, seconds_since, text_style};
use super::{Chart, ChartContext, ChartSource};
use crate::tables::TimelineTable;

/// Tuples in TIME_WAIT per source over time, with the line (the 4-tuples it used) at which
/// every new connection of the source must land on a tuple still in TIME_WAIT.
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
    // Peak per bucket: what matters against the exhaustion line is how close it came.
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
    // Every new connection of a source must meet a TIME_WAIT once all the 4-tuples it cycles
    // through are held (the capacity model's tuples in use).
    let capacity: Vec<u64> = sources.iter().map(|s| s.tuples).collect();
    let x = Span::of(series.iter().flatten().map(|p| p.0));
    let top = series
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(capacity.iter().map(|c| *c as f64))
        .fold(1.0, f64::max);
    let y = Span::new(0.0, top * 1.12);
    let dashed = "dashed: the 4-tuples the source used";
    let mut subtitle = if buckets.width > 1 {
        format!(
            "peak per {} s of tuples held in TIME_WAIT (by either end); {dashed}",
            buckets.width
        )
    } else {
        format!("tuples held in TIME_WAIT (by either end) at the end of each second; {dashed}")
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
    // Sources with the same capacity share one dashed line and one label.
    let mut lines: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, c) in capacity.iter().enumerate() {
        lines.entry(*c).or_default().push(i);
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
        for (tuples, members) in &lines {
            let colour = match members.as_slice() {
                [only] => SERIES[only % SERIES.len()],
                _ => MUTED,
            };
            let level = *tuples as f64;
            chart.draw_series(DashedLineSeries::new(
                [(x.start, level), (x.end, level)],
                8,
                5,
                colour.stroke_width(2),
            ))?;
            let names: Vec<String> = members
                .iter()
                .map(|i| display_text(&sources[*i].name))
                .collect();
            chart.draw_series(std::iter::once(Text::new(
                format!("exhaustion line: {tuples} tuples ({})", names.join(", ")),
                (x.end, level),
                text_style(15, colour).pos(Pos::new(HPos::Right, VPos::Bottom)),
            )))?;
        }
        legend.push(LegendEntry::new(
            Marker::Dashed(MUTED),
            "exhaustion line: 4-tuples used".to_string(),
        ));
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
    fn occupancy_chart_draws_a_line_per_source_and_the_exhaustion_line() {
        let sources = ["10.0.0.1", "10.0.0.2"];
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
            "exhaustion line: 4-tuples used",
            "exhaustion line: 400 tuples (10.0.0.1)",
            "exhaustion line: 100 tuples (10.0.0.2)",
            "tuples in TIME_WAIT",
        ] {
            assert!(has_text(occupancy, label), "no {label:?}");
        }
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
