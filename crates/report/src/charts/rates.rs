//! `rates.svg`: new connections, collisions and refused SYNs per second.

use super::axes::{Span, axes, cartesian, line, tick};
use super::buckets::{Buckets, timeline_seconds};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{BLUE, ORANGE, VERMILLION};
use super::{Chart, ChartContext};
use crate::tables::TimelineTable;

/// New connections and collisions per second, all sources together.
pub(super) fn rates(t: &TimelineTable, context: &ChartContext, start: &str) -> Chart {
    const FILE: &str = "rates.svg";
    let title = "Connection and collision rates";
    let Some((first, last)) = timeline_seconds(t) else {
        return Chart::empty(FILE, title, "no timeline (no connection)");
    };
    // The timeline runs on while TIME_WAITs drain; rates are drawn where there is traffic.
    let active = || {
        t.second
            .iter()
            .zip(&t.new_connections)
            .zip(&t.collisions)
            .filter(|((_, new), collisions)| **new > 0 || **collisions > 0)
            .map(|((second, _), _)| *second)
    };
    let (first, last) = match (active().min(), active().max()) {
        (Some(first), Some(last)) => (first, last),
        _ => (first, last),
    };
    let buckets = Buckets::new(first, last);
    // (new connections, collisions, refused SYNs: rejected, reset, unanswered or failed).
    let mut sums = vec![(0u64, 0u64, 0u64); buckets.count()];
    for (row, second) in t.second.iter().enumerate() {
        let Some(i) = buckets.index(*second) else {
            continue;
        };
        let refused = [&t.rejected_recovered, &t.reset, &t.unanswered, &t.failed]
            .iter()
            .map(|column| column.get(row).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        let sum = &mut sums[i];
        sum.0 = sum.0.saturating_add(t.new_connections[row]);
        sum.1 = sum.1.saturating_add(t.collisions[row]);
        sum.2 = sum.2.saturating_add(refused);
    }
    // Mean per second over each bucket, plotted at its middle.
    let x_of = |second: f64| (second * 1e9 - context.capture_start_ns as f64) / 1e9;
    let (mut new_rate, mut collision_rate, mut refused_rate) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (new, collisions, refused)) in sums.iter().enumerate() {
        let (second, covered) = buckets.bounds(i);
        let x = x_of(second as f64 + covered as f64 / 2.0);
        new_rate.push((x, *new as f64 / covered as f64));
        collision_rate.push((x, *collisions as f64 / covered as f64));
        refused_rate.push((x, *refused as f64 / covered as f64));
    }
    // From the start of the first second to the end of the last, computed as the points are
    // (plotters overflows on points far outside its range).
    let x = Span::new(x_of(first as f64), x_of(last as f64 + 1.0)).padded(0.0);
    let top = new_rate
        .iter()
        .chain(&collision_rate)
        .map(|p| p.1)
        .fold(1.0, f64::max);
    let y = Span::new(0.0, top * 1.1);
    let total_new = sums.iter().fold(0u64, |n, s| n.saturating_add(s.0));
    let total_collisions = sums.iter().fold(0u64, |n, s| n.saturating_add(s.1));
    let total_refused = sums.iter().fold(0u64, |n, s| n.saturating_add(s.2));
    let per = if buckets.width > 1 {
        format!("mean per second over {} s", buckets.width)
    } else {
        "per second".to_string()
    };
    let subtitle = format!(
        "{per}, all sources: {total_new} connections, {total_collisions} collisions, {total_refused} refused"
    );
    let svg = render(title, &subtitle, |area| {
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "per second",
            &|v| tick(*v, x.width()),
            &|v| tick(*v, y.width()),
            12,
        )?;
        chart.draw_series(line(&new_rate, BLUE))?;
        chart.draw_series(line(&collision_rate, ORANGE))?;
        let mut legend = vec![
            LegendEntry::new(Marker::Line(BLUE), "new connections/s".to_string()),
            LegendEntry::new(Marker::Line(ORANGE), "collisions/s".to_string()),
        ];
        // Refused SYNs (rejected, reset, unanswered, failed): what collisions cost.
        if total_refused > 0 {
            chart.draw_series(line(&refused_rate, VERMILLION))?;
            legend.push(LegendEntry::new(
                Marker::Line(VERMILLION),
                "refused SYNs/s (rejected, reset, unanswered, failed)".to_string(),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

#[cfg(test)]
mod tests {
    use crate::charts::test_support::*;

    #[test]
    fn rates_chart_says_what_it_shows() {
        let sources = ["10.0.0.1"];
        let charts = charts_of(
            &tables(
                &sources,
                1_000,
                150.0,
                200,
                5,
                &["accepted", "rejected_recovered"],
            ),
            &context(&sources, 200),
        );
        let rates = chart(&charts, "rates.svg");
        for label in ["new connections/s", "collisions/s", "per second"] {
            assert!(has_text(rates, label), "no {label:?}");
        }
    }
}
