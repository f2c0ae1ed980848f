//! `reuse-interval.svg`: how soon a tuple was used again, against the TIME_WAIT duration.

use plotters::prelude::*;

use super::axes::{Span, axes, cartesian, tick};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{INK, SERIES};
use super::sample::ChartSample;
use super::text::{decade_label, display_text, text_style, trim_number};
use super::{Chart, ChartContext, ChartSource};

/// Reuse-interval bins: 5 per decade from 0.1 ms to 10^9 s (beyond a few years, an interval
/// is a broken clock).
const REUSE_MIN_LOG10_S: f64 = -4.0;
const REUSE_MAX_LOG10_S: f64 = 9.0;
const REUSE_BINS_PER_DECADE: usize = 5;

/// One source's reuse intervals, binned by fifths of a decade of seconds.
pub(super) struct ReuseIntervals {
    counts: Vec<u64>,
    count: u64,
    /// At or below the first bin's lower edge (0.1 ms; an interval of 0 included).
    below: u64,
    /// Beyond 10^9 s: a broken clock.
    beyond: u64,
}

impl ReuseIntervals {
    pub(super) fn new() -> ReuseIntervals {
        ReuseIntervals {
            counts: vec![
                0;
                ((REUSE_MAX_LOG10_S - REUSE_MIN_LOG10_S) as usize) * REUSE_BINS_PER_DECADE
            ],
            count: 0,
            below: 0,
            beyond: 0,
        }
    }

    pub(super) fn add(&mut self, interval_s: f64) {
        if interval_s.is_nan() {
            return;
        }
        self.count += 1;
        let position =
            (interval_s.max(0.0).log10() - REUSE_MIN_LOG10_S) * REUSE_BINS_PER_DECADE as f64;
        if position < 0.0 {
            self.below += 1;
            self.counts[0] += 1;
        } else if position >= self.counts.len() as f64 {
            self.beyond += 1;
        } else {
            self.counts[position as usize] += 1;
        }
    }
}

/// How soon tuples were used again, per source, against the TIME_WAIT duration, on a log axis
/// (a reuse 10 ms after the close and one 10 minutes after both show): every reuse left of the
/// line met a tuple the closing end may still hold.
pub(super) fn reuse_interval(
    sample: &ChartSample,
    context: &ChartContext,
    sources: &[ChartSource],
) -> Chart {
    const FILE: &str = "reuse-interval.svg";
    let title = "Port reuse interval vs TIME_WAIT";
    let histograms = &sample.reuse;
    let all: u64 = histograms.iter().map(|h| h.count).sum();
    if all == 0 {
        return Chart::empty(FILE, title, "no port reuse");
    }
    let step = 1.0 / REUSE_BINS_PER_DECADE as f64;
    let bin_edge = |b: usize| REUSE_MIN_LOG10_S + step * b as f64;
    let time_wait = Some(context.time_wait_s)
        .filter(|v| *v > 0.0 && v.log10() < REUSE_MAX_LOG10_S)
        .map(f64::log10);
    // The axis runs over the bins that hold reuses, and the TIME_WAIT line, whole decades.
    let occupied = histograms.iter().flat_map(|h| {
        h.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, _)| b)
    });
    let mut range = Span::of(occupied.flat_map(|b| [bin_edge(b), bin_edge(b + 1)]));
    if let Some(tw) = time_wait {
        // Half a decade past the line: room for its label.
        range.add(tw + 0.5);
    }
    let x = Span::new(
        range.start.floor(),
        range.end.ceil().max(range.start.floor() + 1.0),
    );
    let top = histograms
        .iter()
        .flat_map(|h| h.counts.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y = Span::new(0.0, top * 1.12);
    let below: u64 = histograms.iter().map(|h| h.below).sum();
    let beyond: u64 = histograms.iter().map(|h| h.beyond).sum();
    let mut subtitle = format!(
        "{all} reuses of a tuple, time since its previous connection ended; 5 bins per decade"
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
        for (i, (source, histogram)) in sources.iter().zip(histograms).enumerate() {
            if histogram.count == 0 {
                continue;
            }
            let colour = SERIES[i % SERIES.len()];
            // Translucent bars under a full-colour outline: up to four series overlap and
            // each stays readable.
            chart.draw_series(
                histogram
                    .counts
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(b, n)| {
                        Rectangle::new(
                            [(bin_edge(b), 0.0), (bin_edge(b + 1), *n as f64)],
                            colour.mix(0.3).filled(),
                        )
                    }),
            )?;
            let mut outline = Vec::new();
            for (b, n) in histogram.counts.iter().enumerate() {
                let (left, right) = (bin_edge(b), bin_edge(b + 1));
                if right <= x.start || left >= x.end {
                    continue;
                }
                outline.push((left, *n as f64));
                outline.push((right, *n as f64));
            }
            chart.draw_series(std::iter::once(PathElement::new(
                outline,
                colour.stroke_width(2),
            )))?;
            legend.push(LegendEntry::new(
                Marker::Bar(colour),
                format!("{} ({})", display_text(&source.name), histogram.count),
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
    use crate::charts::test_support::*;

    #[test]
    fn reuse_interval_chart_says_what_it_shows() {
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
        let reuse = chart(&charts, "reuse-interval.svg");
        // Every reuse came 200 ports ÷ 150/s − 10 ms = 1.32 s after the close: the log axis
        // runs in decades from 1 s past the TIME_WAIT line.
        for label in [
            "10.0.0.1 (800)",
            "TIME_WAIT (60 s)",
            "reuse interval (log scale)",
            "1 s",
            "100 s",
        ] {
            assert!(has_text(reuse, label), "no {label:?}");
        }
    }
}
