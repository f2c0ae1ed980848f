//! `syn-timestamps.svg`: the TSval of each colliding SYN against the `ts_recent` of the
//! TIME_WAIT it met.

use plotters::prelude::*;

use super::Chart;
use super::axes::{Span, axes, cartesian, tick};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{BLUE, GREY, VERMILLION};
use super::sample::{COLLISION_CELL, COLLISION_MARKS_MAX, HashSample, Mark, sampled_legend, thin};

/// The colliding SYNs' TSval and the `ts_recent` of the TIME_WAIT each met, over time, from
/// a deterministic sample of the collisions (exact counts).
pub struct TimestampSample {
    /// SYN TSval, by collision.
    syn: HashSample,
    /// The TIME_WAIT's `ts_recent`.
    recent: HashSample,
    /// Of the SYNs, those PAWS refused.
    paws: HashSample,
    /// Collisions without a TSval on their SYN.
    without: u64,
}

impl Default for TimestampSample {
    fn default() -> Self {
        TimestampSample {
            syn: HashSample::new(),
            recent: HashSample::new(),
            paws: HashSample::new(),
            without: 0,
        }
    }
}

impl TimestampSample {
    /// Adds collision `uid`, its first SYN `x` seconds after the capture's start.
    pub fn add(
        &mut self,
        uid: u64,
        x: f64,
        syn_tsval: Option<u32>,
        ts_recent: Option<u32>,
        paws: bool,
    ) {
        let Some(tsval) = syn_tsval else {
            self.without += 1;
            return;
        };
        // In millions of ticks: a 32-bit TSval has ten digits, too wide for an axis label.
        let mark = |y: u32| Mark {
            x,
            y: f64::from(y) / 1e6,
            uid,
        };
        self.syn.add(mark(tsval));
        if paws {
            self.paws.add(mark(tsval));
        }
        if let Some(recent) = ts_recent {
            self.recent.add(mark(recent));
        }
    }
}

/// Colliding SYNs' TSval against the `ts_recent` they met: PAWS refuses a SYN whose TSval is
/// older (RFC 7323 section 5), so a clock that went back shows as marks below the grey ones.
pub(super) fn syn_timestamps(sample: &TimestampSample, start: &str) -> Chart {
    const FILE: &str = "syn-timestamps.svg";
    let title = "TCP timestamps of colliding SYNs vs the TIME_WAIT they met";
    if sample.syn.count == 0 {
        let why = if sample.without > 0 {
            "no TCP timestamps on the colliding SYNs"
        } else {
            "no collision"
        };
        return Chart::empty(FILE, title, why);
    }
    let marks = || sample.syn.marks.iter().chain(&sample.recent.marks);
    let x = Span::of(marks().map(|m| m.x));
    let y = Span::of(marks().map(|m| m.y));
    let mut subtitle = format!(
        "{} colliding SYNs with TSval, {} refused by PAWS",
        sample.syn.count, sample.paws.count
    );
    if sample.without > 0 {
        subtitle.push_str(&format!("; {} without timestamps", sample.without));
    }
    let svg = render(title, &subtitle, |area| {
        let mut chart = cartesian(area, &x.padded(0.02), &y.padded(0.05))?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "TSval (millions of ticks)",
            &|v| tick(*v, x.width()),
            &|v| tick(*v, y.width().max(1e-3)),
            12,
        )?;
        let mut legend = Vec::new();
        let series = [
            (&sample.recent, GREY, "ts_recent of the TIME_WAIT met"),
            (&sample.syn, BLUE, "SYN TSval"),
            (
                &sample.paws,
                VERMILLION,
                "SYN TSval refused by PAWS (older)",
            ),
        ];
        for (marks, colour, label) in series {
            if marks.count == 0 {
                continue;
            }
            let (k, shown) = thin(&chart, marks, COLLISION_CELL, COLLISION_MARKS_MAX);
            chart.draw_series(
                shown
                    .iter()
                    .map(|m| Circle::new((m.x, m.y), 2, colour.filled())),
            )?;
            legend.push(LegendEntry::new(
                Marker::Dot(colour, 3),
                sampled_legend(label, marks.count, k),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}
