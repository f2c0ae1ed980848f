//! `handshake-latency.svg`: first SYN → SYN-ACK, clean against collided connections.

use plotters::prelude::*;

use twsleuth_flows::LogHistogram;

use super::Chart;
use super::axes::{Span, axes, cartesian, tick};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{BLUE, VERMILLION};
use super::sample::ChartSample;
use super::text::decade_label;

/// Latency bins: 4 per decade from 0.01 ms to 100 s.
pub(super) const LATENCY_MIN_LOG10_MS: f64 = -2.0;
pub(super) const LATENCY_MAX_LOG10_MS: f64 = 5.0;
pub(super) const LATENCY_BINS_PER_DECADE: usize = 4;

/// Distribution of first SYN → SYN-ACK, clean against collided connections, each as a share
/// of its own group so the two shapes compare however unequal the counts.
pub(super) fn handshake_latency(sample: &ChartSample) -> Chart {
    const FILE: &str = "handshake-latency.svg";
    let title = "Handshake latency: clean vs collided connections";
    let groups = &sample.latency;
    if groups.iter().all(|g| g.count == 0) {
        let why = if sample.connections == 0 {
            "no connection"
        } else {
            "no connection with a SYN-ACK"
        };
        return Chart::empty(FILE, title, why);
    }
    let mut notes = Vec::new();
    let clamped: usize = groups.iter().map(|g| g.clamped).sum();
    if clamped > 0 {
        notes.push(format!(
            "{clamped} outside 0.01 ms–100 s counted in the end bins"
        ));
    }
    let no_syn_ack = groups[1].missing;
    if no_syn_ack > 0 {
        notes.push(format!(
            "{no_syn_ack} collided connections got no SYN-ACK (not shown)"
        ));
    }
    let mut subtitle = "share of each group's connections per bin (4 bins per decade)".to_string();
    for note in notes {
        subtitle.push_str("; ");
        subtitle.push_str(&note);
    }
    let top = groups.iter().flat_map(|g| g.shares()).fold(1.0, f64::max);
    // The axis runs over the decades that hold latencies (at least two), not the whole
    // 10 µs–100 s range the bins cover: a LAN's handshakes are not squeezed into one end.
    let step = 1.0 / LATENCY_BINS_PER_DECADE as f64;
    let occupied = groups.iter().flat_map(|g| {
        g.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, _)| LATENCY_MIN_LOG10_MS + step * b as f64)
    });
    let held = Span::of(occupied.flat_map(|left| [left, left + step]));
    let (start, end) = if held.start <= held.end {
        (held.start.floor(), held.end.ceil())
    } else {
        (LATENCY_MIN_LOG10_MS, LATENCY_MAX_LOG10_MS)
    };
    let x = Span::new(
        start,
        end.max(start + 2.0)
            .min(LATENCY_MAX_LOG10_MS)
            .max(start + 1.0),
    );
    let y = Span::new(0.0, (top * 1.1).min(100.0));
    let svg = render(title, &subtitle, |area| {
        // Plotted in log10(ms) on a linear axis: the bins and ticks land exactly on decades.
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            "first SYN → SYN-ACK (log scale)",
            "share of group (%)",
            &|v| decade_label(*v),
            &|v| tick(*v, y.width()),
            8,
        )?;
        let step = 1.0 / LATENCY_BINS_PER_DECADE as f64;
        let mut legend = Vec::new();
        let names = ["clean", "collided"];
        let colours = [BLUE, VERMILLION];
        for (g, group) in groups.iter().enumerate() {
            if group.count == 0 {
                continue;
            }
            // Side by side within each bin: clean on the left half, collided on the right.
            let offset = step * (0.08 + 0.42 * g as f64);
            chart.draw_series(group.shares().enumerate().filter(|(_, s)| *s > 0.0).map(
                |(i, share)| {
                    let left = LATENCY_MIN_LOG10_MS + step * i as f64 + offset;
                    Rectangle::new(
                        [(left, 0.0), (left + step * 0.42, share)],
                        colours[g].filled(),
                    )
                },
            ))?;
            legend.push(LegendEntry::new(
                Marker::Bar(colours[g]),
                format!(
                    "{} (n={}, p50\u{a0}≈\u{a0}{})",
                    names[g],
                    group.count,
                    format_ms(group.median())
                ),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

/// Handshake latencies of one group, binned by decade quarters, with a finer histogram for
/// the median.
pub(super) struct Latencies {
    counts: Vec<u64>,
    count: u64,
    /// In nanoseconds, for the median (within 0.8%).
    fine: LogHistogram,
    clamped: usize,
    missing: usize,
}

impl Latencies {
    pub(super) fn new(bins: usize) -> Latencies {
        Latencies {
            counts: vec![0; bins],
            count: 0,
            fine: LogHistogram::new(LogHistogram::FINE),
            clamped: 0,
            missing: 0,
        }
    }

    pub(super) fn add(&mut self, latency_ms: Option<f64>) {
        let Some(ms) = latency_ms.filter(|v| !v.is_nan()) else {
            self.missing += 1;
            return;
        };
        let bins = self.counts.len();
        let position = (ms.max(f64::MIN_POSITIVE).log10() - LATENCY_MIN_LOG10_MS)
            * LATENCY_BINS_PER_DECADE as f64;
        if !(0.0..bins as f64).contains(&position) {
            self.clamped += 1;
        }
        let bin = (position.floor().max(0.0) as usize).min(bins.saturating_sub(1));
        self.counts[bin] += 1;
        self.count += 1;
        // Saturating: a latency beyond i64 nanoseconds (292 years) is a broken clock.
        self.fine.add((ms * 1e6).clamp(0.0, i64::MAX as f64) as i64);
    }

    fn shares(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.count.max(1) as f64;
        self.counts.iter().map(move |c| *c as f64 * 100.0 / n)
    }

    fn median(&self) -> f64 {
        self.fine
            .percentile(0.5)
            .map_or(f64::NAN, |ns| ns as f64 / 1e6)
    }
}

/// Milliseconds, three significant digits, in ms or s.
fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "n/a".to_string();
    }
    // A no-break space keeps the unit with its number when the legend wraps.
    if ms >= 1000.0 {
        format!("{}\u{a0}s", significant(ms / 1000.0))
    } else {
        format!("{}\u{a0}ms", significant(ms))
    }
}

fn significant(v: f64) -> String {
    let decimals = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use crate::charts::test_support::*;

    #[test]
    fn latency_chart_says_what_it_shows() {
        let charts = one_source_charts();
        let latency = chart(&charts, "handshake-latency.svg");
        for label in [
            "clean (n=800",
            "collided (n=200",
            "1 ms",
            "1 s",
            "(log scale)",
        ] {
            assert!(has_text(latency, label), "no {label:?}");
        }
    }

    /// The latency axis fits the latencies: a LAN's 0.05–0.09 ms handshakes get the decades
    /// around them, not a 10 µs–100 s axis with everything in its first bins.
    #[test]
    fn latency_axis_covers_the_latencies_not_a_fixed_range() {
        let sources = ["10.0.0.1"];
        let charts = charts_of(
            &tables(&sources, 500, 100.0, 50, 0, &[]),
            &context(&sources, 50),
        );
        let latency = chart(&charts, "handshake-latency.svg");
        for label in ["10 µs", "100 µs", "1 ms"] {
            assert!(has_text(latency, label), "no {label:?}");
        }
        for label in ["100 ms", "1 s", "100 s"] {
            assert!(!has_text(latency, label), "{label:?} is outside the data");
        }
    }
}
