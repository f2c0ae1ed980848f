//! `rates.svg`: new connections, collisions and refused SYNs per second.

use super::axes::{Span, axes, cartesian, line, tick};
use super::buckets::{Buckets, timeline_seconds};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{BLUE, ORANGE, OUTCOMES, VERMILLION};
use super::{Chart, ChartContext};
use crate::tables::TimelineTable;

/// Width of the fine bins a short capture's rates are drawn from: a 0.3 s burst gets 15
/// points of 20 ms, not one per-second dot.
const FINE_BIN_NS: i64 = 5_000_000;
/// Fine bins kept from the capture's start (10 s, 48 kB): a capture whose connections all
/// start within them is drawn from them, a longer one from the timeline's seconds.
const FINE_BINS: usize = 2_000;
/// At most this many points across a short capture: fine bins are merged, to a round width,
/// to reach it.
const SHORT_CAPTURE_POINTS: usize = 20;

/// New connections, collisions and refused SYNs per [`FINE_BIN_NS`] from the capture's start,
/// counted by first SYN as the timeline counts them, in memory that does not grow with the
/// capture.
pub(super) struct FineRates {
    /// (new connections, collisions, refused SYNs) per fine bin.
    bins: Vec<[u64; 3]>,
    /// A connection started before the capture's start or after the last fine bin: the
    /// capture is not short, and the timeline's seconds are drawn.
    outside: bool,
}

impl FineRates {
    pub(super) fn new() -> FineRates {
        FineRates {
            bins: vec![[0; 3]; FINE_BINS],
            outside: false,
        }
    }

    /// Counts a connection `since_start_ns` after the capture's start, with its collision's
    /// outcome if it collided.
    pub(super) fn add(&mut self, since_start_ns: i64, collision: Option<&str>) {
        let bin = usize::try_from(since_start_ns / FINE_BIN_NS)
            .ok()
            .filter(|_| since_start_ns >= 0);
        let Some(counts) = bin.and_then(|bin| self.bins.get_mut(bin)) else {
            self.outside = true;
            return;
        };
        counts[0] += 1;
        if let Some(outcome) = collision {
            counts[1] += 1;
            // Refused: every outcome the timeline counts apart from accepted (and unknown).
            counts[2] += u64::from(OUTCOMES[1..].iter().any(|(name, _)| *name == outcome));
        }
    }

    /// The bins of a short capture, merged so that at most [`SHORT_CAPTURE_POINTS`] cover its
    /// connections: the first bin's start (ns since the capture's start), the width, and the
    /// counts. `None` when there is no connection or the capture is longer than the fine bins.
    fn merged(&self) -> Option<(i64, i64, Vec<[u64; 3]>)> {
        if self.outside {
            return None;
        }
        let occupied = || self.bins.iter().map(|c| c[0] > 0);
        let first = occupied().position(|o| o)?;
        let last = FINE_BINS - 1 - occupied().rev().position(|o| o)?;
        let needed = (last - first + 1).div_ceil(SHORT_CAPTURE_POINTS);
        // Widths people read in a subtitle: 5, 10, 20, 50, 100, 200, 500 ms, 1 s.
        let per_point = [1, 2, 4, 10, 20, 40, 100, 200]
            .into_iter()
            .find(|w| *w >= needed)
            .unwrap_or(needed);
        let merged = self.bins[first..=last]
            .chunks(per_point)
            .map(|chunk| {
                chunk.iter().fold([0; 3], |sum, c| {
                    [sum[0] + c[0], sum[1] + c[1], sum[2] + c[2]]
                })
            })
            .collect();
        Some((
            first as i64 * FINE_BIN_NS,
            per_point as i64 * FINE_BIN_NS,
            merged,
        ))
    }
}

/// Rates to draw: where, at what width, and the counts of each point.
struct Binned {
    /// The x range the bins cover (seconds since the capture's start).
    x: Span,
    /// Bin middle (seconds since the capture's start), width (s), (new, collisions, refused).
    points: Vec<(f64, f64, [u64; 3])>,
    /// How the subtitle says what a point is.
    per: String,
}

/// The timeline's seconds, merged into buckets over a long capture; `None` without rows.
fn by_second(t: &TimelineTable, context: &ChartContext) -> Option<Binned> {
    let (first, last) = timeline_seconds(t)?;
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
    let mut sums = vec![[0u64; 3]; buckets.count()];
    for (row, second) in t.second.iter().enumerate() {
        let Some(i) = buckets.index(*second) else {
            continue;
        };
        let refused = [&t.rejected_recovered, &t.reset, &t.unanswered, &t.failed]
            .iter()
            .map(|column| column.get(row).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        let sum = &mut sums[i];
        sum[0] = sum[0].saturating_add(t.new_connections[row]);
        sum[1] = sum[1].saturating_add(t.collisions[row]);
        sum[2] = sum[2].saturating_add(refused);
    }
    let x_of = |second: f64| (second * 1e9 - context.capture_start_ns as f64) / 1e9;
    let points = sums
        .into_iter()
        .enumerate()
        .map(|(i, sum)| {
            let (second, covered) = buckets.bounds(i);
            (
                x_of(second as f64 + covered as f64 / 2.0),
                covered as f64,
                sum,
            )
        })
        .collect();
    let per = if buckets.width > 1 {
        format!("mean per second over {} s", buckets.width)
    } else {
        "per second".to_string()
    };
    Some(Binned {
        // From the start of the first second to the end of the last, computed as the points
        // are (plotters overflows on points far outside its range).
        x: Span::new(x_of(first as f64), x_of(last as f64 + 1.0)).padded(0.0),
        points,
        per,
    })
}

/// A short capture's fine bins: per-second points would be one dot for 0.3 s, or two making a
/// line that falls only because the second second is barely covered.
fn by_fine_bins(fine: &FineRates) -> Option<Binned> {
    let (first_ns, width_ns, bins) = fine.merged()?;
    let width_s = width_ns as f64 / 1e9;
    let start_s = first_ns as f64 / 1e9;
    let points = bins
        .into_iter()
        .enumerate()
        .map(|(i, sum)| (start_s + (i as f64 + 0.5) * width_s, width_s, sum))
        .collect::<Vec<_>>();
    Some(Binned {
        x: Span::new(start_s, start_s + points.len() as f64 * width_s).padded(0.0),
        points,
        per: format!("per second, in {} ms bins", width_ns / 1_000_000),
    })
}

/// New connections and collisions per second, all sources together.
pub(super) fn rates(
    t: &TimelineTable,
    fine: &FineRates,
    context: &ChartContext,
    start: &str,
) -> Chart {
    const FILE: &str = "rates.svg";
    let title = "Connection and collision rates";
    let Some(Binned { x, points, per }) = by_fine_bins(fine).or_else(|| by_second(t, context))
    else {
        return Chart::empty(FILE, title, "no timeline (no connection)");
    };
    // Mean per second over each bin, plotted at its middle.
    let rate = |k: usize| -> Vec<(f64, f64)> {
        points
            .iter()
            .map(|(x, width_s, sum)| (*x, sum[k] as f64 / width_s))
            .collect()
    };
    let (new_rate, collision_rate, refused_rate) = (rate(0), rate(1), rate(2));
    let top = new_rate
        .iter()
        .chain(&collision_rate)
        .map(|p| p.1)
        .fold(1.0, f64::max);
    let y = Span::new(0.0, top * 1.1);
    let total = |k: usize| points.iter().fold(0u64, |n, p| n.saturating_add(p.2[k]));
    let (total_new, total_collisions, total_refused) = (total(0), total(1), total(2));
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
    use crate::charts::palette::BLUE;
    use crate::charts::test_support::*;

    #[test]
    fn rates_chart_says_what_it_shows() {
        let charts = one_source_charts();
        let rates = chart(&charts, "rates.svg");
        for label in ["new connections/s", "collisions/s", "per second"] {
            assert!(has_text(rates, label), "no {label:?}");
        }
    }

    #[test]
    fn a_short_capture_is_drawn_from_sub_second_bins() {
        // The capture: 1,500 connections in 0.3 s, one every 0.2 ms, so 5,000/s
        // throughout. Per-second points would be a single dot at 1,500/s.
        let sources = ["10.0.0.1"];
        let charts = charts_of(
            &tables(&sources, 1_500, 5_000.0, 200, 5, &["accepted"]),
            &context(&sources, 200),
        );
        let rates = chart(&charts, "rates.svg");
        // 0.3 s ÷ 20 = 15 ms, rounded up to 20 ms: 15 points.
        assert!(
            has_text(
                rates,
                "per second, in 20 ms bins, all sources: 1500 connections"
            ),
            "{:?}",
            texts(rates)
        );
        let new_connections = polyline_points(rates, BLUE);
        assert_eq!(new_connections.len(), 15, "{new_connections:?}");
        // Every point at 5,000/s: one height, the same as the top tick labelled 5000 if any.
        let heights: Vec<i32> = new_connections.iter().map(|p| p.1).collect();
        assert!(heights.iter().all(|h| *h == heights[0]), "{heights:?}");
        let top = y_ticks(rates).into_iter().fold(0.0, f64::max);
        assert!((5_000.0..5_500.0).contains(&top), "top tick {top}");
        // The axis runs over the capture's 0.3 s and no further.
        let x = x_ticks(rates);
        assert!(
            x.iter().all(|v| (0.0..=0.3).contains(v)) && x.len() > 3,
            "{x:?}"
        );
    }
}
