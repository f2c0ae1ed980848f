//! `reuse-interval.svg`: how soon a tuple was used again, against the TIME_WAIT duration,
//! reuses that collided apart from those that did not.

use plotters::prelude::*;

use super::axes::{Span, axes, cartesian, tick};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{BLUE, INK, VERMILLION};
use super::sample::ChartSample;
use super::text::{decade_label, text_style, trim_number};
use super::{Chart, ChartContext};

/// Reuse-interval bins: 5 per decade from 0.1 ms to 10^9 s (beyond a few years, an interval
/// is a broken clock).
const REUSE_MIN_LOG10_S: f64 = -4.0;
const REUSE_MAX_LOG10_S: f64 = 9.0;
const REUSE_BINS_PER_DECADE: usize = 5;

/// The two kinds of reuse, in the order they are stacked (collisions at the bottom, where
/// they are read first), with their colour and legend.
const KINDS: [(RGBColor, &str); 2] = [(VERMILLION, "collided"), (BLUE, "did not collide")];

/// Reuse intervals, binned by fifths of a decade of seconds, apart for the reuses that
/// collided (met a TIME_WAIT: slot 0) and those that did not (slot 1).
pub(super) struct ReuseIntervals {
    counts: [Vec<u64>; 2],
    count: [u64; 2],
    /// At or below the first bin's lower edge (0.1 ms; an interval of 0 included).
    below: u64,
    /// Beyond 10^9 s: a broken clock.
    beyond: u64,
}

impl ReuseIntervals {
    pub(super) fn new() -> ReuseIntervals {
        let bins = ((REUSE_MAX_LOG10_S - REUSE_MIN_LOG10_S) as usize) * REUSE_BINS_PER_DECADE;
        ReuseIntervals {
            counts: [vec![0; bins], vec![0; bins]],
            count: [0; 2],
            below: 0,
            beyond: 0,
        }
    }

    pub(super) fn add(&mut self, interval_s: f64, collided: bool) {
        if interval_s.is_nan() {
            return;
        }
        let kind = usize::from(!collided);
        self.count[kind] += 1;
        let counts = &mut self.counts[kind];
        let position =
            (interval_s.max(0.0).log10() - REUSE_MIN_LOG10_S) * REUSE_BINS_PER_DECADE as f64;
        if position < 0.0 {
            self.below += 1;
            counts[0] += 1;
        } else if position >= counts.len() as f64 {
            self.beyond += 1;
        } else {
            counts[position as usize] += 1;
        }
    }
}

/// How soon tuples were used again, all sources together, against the TIME_WAIT duration, on
/// a log axis (a reuse 10 ms after the close and one 10 minutes after both show): reuses that
/// collided stacked under those that did not, so that the bars' height is every reuse and a
/// reuse left of the line that did not collide (the source held the TIME_WAIT, or none was
/// kept) stands out.
pub(super) fn reuse_interval(sample: &ChartSample, context: &ChartContext) -> Chart {
    const FILE: &str = "reuse-interval.svg";
    let title = "Port reuse interval vs TIME_WAIT";
    let reuses = &sample.reuse;
    let all: u64 = reuses.count.iter().sum();
    if all == 0 {
        return Chart::empty(FILE, title, "no port reuse");
    }
    let step = 1.0 / REUSE_BINS_PER_DECADE as f64;
    let bin_edge = |b: usize| REUSE_MIN_LOG10_S + step * b as f64;
    let time_wait = Some(context.time_wait_s)
        .filter(|v| *v > 0.0 && v.log10() < REUSE_MAX_LOG10_S)
        .map(f64::log10);
    // Both kinds stacked: per bin, the top of the collided bar and of the whole.
    let stacked: Vec<(u64, u64)> = reuses.counts[0]
        .iter()
        .zip(&reuses.counts[1])
        .map(|(collided, clean)| (*collided, collided.saturating_add(*clean)))
        .collect();
    if stacked.iter().all(|(_, total)| *total == 0) {
        // Nothing to give the axis a range (plotters loops forever over an infinite one).
        let why = format!("{all} reuses, every one after 10^9 s (a broken clock)");
        return Chart::empty(FILE, title, &why);
    }
    // The axis runs over the bins that hold reuses, and the TIME_WAIT line, whole decades.
    let occupied = stacked
        .iter()
        .enumerate()
        .filter(|(_, (_, total))| *total > 0)
        .map(|(b, _)| b);
    let mut range = Span::of(occupied.flat_map(|b| [bin_edge(b), bin_edge(b + 1)]));
    if let Some(tw) = time_wait {
        // Half a decade past the line: room for its label.
        range.add(tw + 0.5);
    }
    let x = Span::new(
        range.start.floor(),
        range.end.ceil().max(range.start.floor() + 1.0),
    );
    let top = stacked
        .iter()
        .map(|(_, total)| *total)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y = Span::new(0.0, top * 1.12);
    let (below, beyond) = (reuses.below, reuses.beyond);
    let mut subtitle = format!(
        "{all} reuses of a tuple, all sources, time since its previous connection ended; 5 bins per decade"
    );
    if below > 0 {
        subtitle.push_str(&format!("; {below} at or under 0.1 ms in the first bin"));
    }
    if beyond > 0 {
        subtitle.push_str(&format!("; {beyond} after 10^9 s not shown"));
    }
    let svg = render(title, &subtitle, |area| {
        // Plotted in log10(s) on a linear axis: the bins and ticks land exactly on decades.
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            "reuse interval (log scale)",
            "reuses per bin",
            &|v| decade_label(*v + 3.0),
            &|v| tick(*v, y.width()),
            12,
        )?;
        let mut legend = Vec::new();
        for (kind, (colour, label)) in KINDS.iter().enumerate() {
            let bars = stacked
                .iter()
                .enumerate()
                .filter_map(|(b, (collided, total))| {
                    let (bottom, top) = if kind == 0 {
                        (0, *collided)
                    } else {
                        (*collided, *total)
                    };
                    (top > bottom).then(|| {
                        Rectangle::new(
                            [(bin_edge(b), bottom as f64), (bin_edge(b + 1), top as f64)],
                            colour.filled(),
                        )
                    })
                });
            chart.draw_series(bars)?;
            legend.push(LegendEntry::new(
                Marker::Bar(*colour),
                format!("{label} ({})", reuses.count[kind]),
            ));
        }
        if let Some(tw) = time_wait {
            chart.draw_series(DashedLineSeries::new(
                [(tw, 0.0), (tw, y.end)],
                8,
                5,
                INK.stroke_width(2),
            ))?;
            // A few pixels right of the line, so that it does not cross the text.
            chart.draw_series(std::iter::once(
                EmptyElement::at((tw, y.end))
                    + Text::new(
                        format!("TIME_WAIT {} s", trim_number(context.time_wait_s, 3)),
                        (6, 2),
                        text_style(15, INK),
                    ),
            ))?;
            legend.push(LegendEntry::new(
                Marker::Dashed(INK),
                format!("TIME_WAIT ({} s)", trim_number(context.time_wait_s, 3)),
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

    #[test]
    fn reuse_interval_chart_says_what_it_shows() {
        let charts = one_source_charts();
        let reuse = chart(&charts, "reuse-interval.svg");
        // Every reuse came 200 ports ÷ 150/s − 10 ms = 1.32 s after the close: the log axis
        // runs in decades from 1 s past the TIME_WAIT line.
        // 800 reuses (every connection after the first 200 ports), of which every fifth
        // collided: 160, and 640 did not.
        for label in [
            "collided (160)",
            "did not collide (640)",
            "TIME_WAIT (60 s)",
            "reuse interval (log scale)",
            "1 s",
            "100 s",
        ] {
            assert!(has_text(reuse, label), "no {label:?}");
        }
    }

    #[test]
    fn reuses_that_collided_and_those_that_did_not_are_told_apart() {
        // Collided reuses came 0.5 s after the close, the others 120 s after: two colours,
        // each on its side of the 60 s TIME_WAIT line, and the axis covers both.
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 1_000, 150.0, 200, 4, &["accepted"]);
        let c = &mut t.connections;
        for (interval, collision) in c.reuse_interval_s.iter_mut().zip(&c.collision) {
            if interval.is_some() {
                *interval = Some(if collision.is_some() { 0.5 } else { 120.0 });
            }
        }
        let collided = c
            .reuse_interval_s
            .iter()
            .zip(&c.collision)
            .filter(|(i, c)| i.is_some() && c.is_some())
            .count();
        // Connections 200–999 reuse a tuple; every fourth of them collided.
        assert_eq!(collided, 200);
        let charts = charts_of(&t, &context(&sources, 200));
        let reuse = chart(&charts, "reuse-interval.svg");
        for label in [
            "collided (200)",
            "did not collide (600)",
            "TIME_WAIT (60 s)",
            "100 ms",
            "1000 s",
        ] {
            assert!(has_text(reuse, label), "no {label:?} in {:?}", texts(reuse));
        }
        let doc = roxmltree::Document::parse(&reuse.svg).unwrap();
        let bars = |colour: RGBColor| -> Vec<f64> {
            let hex = format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
            doc.descendants()
                .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some(&hex))
                .filter_map(|n| n.attribute("x")?.parse().ok())
                .collect()
        };
        // One bar each in the plot, one each in the legend (at x = 10 in its column).
        let (red, blue) = (bars(VERMILLION), bars(BLUE));
        assert_eq!((red.len(), blue.len()), (2, 2), "{red:?} {blue:?}");
        assert!(red[0] < blue[0], "collided bar right of the clean one");
    }

    /// Regression: reuses all beyond the last bin left the axis without a range, and plotters
    /// looped forever over it (found by `random_tables_give_valid_charts`).
    #[test]
    fn reuses_all_after_a_billion_seconds_say_so() {
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 10, 1.0, 2, 0, &[]);
        for interval in &mut t.connections.reuse_interval_s {
            *interval = Some(f64::INFINITY);
        }
        let charts = charts_of(
            &t,
            &ChartContext {
                time_wait_s: f64::NAN,
                ..context(&sources, 2)
            },
        );
        let reuse = chart(&charts, "reuse-interval.svg");
        assert!(has_text(reuse, "10 reuses, every one after 10^9 s"));
    }
}
