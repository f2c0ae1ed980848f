//! `port-reuse-<source>.svg`: source port over time for one of the busiest sources.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::axes::{Plot, Span, axes, cartesian, tick};
use super::frame::{DrawResult, Drawn, LegendEntry, Marker, render};
use super::palette::{GREY, OUTCOMES, outcome_colour, outcome_index};
use super::sample::{
    COLLISION_CELL, COLLISION_MARKS_MAX, ChartSample, HashSample, Mark, PLAIN_CELL,
    PLAIN_MARKS_MAX, sampled_legend, share_budget, thin, thinned_count,
};
use super::text::{display_text, file_safe};
use super::{Chart, ChartSource};

/// Ports per bin of a source's port histogram: 4,096 bins (96 kB) over 0–65535, fine enough to
/// fit the axis to where the ports are.
const PORT_BIN_WIDTH: usize = 16;
const PORT_BINS: usize = 65_536 / PORT_BIN_WIDTH;
/// Connections the port axis may leave out at each end, as a share of them: the axis runs from
/// the 0.5th to the 99.5th percentile of the ports when a few ports far away would stretch it.
const PORT_TAIL: f64 = 0.005;

/// One source's connections for its port-reuse chart.
pub(super) struct PortReuseSample {
    pub(super) source: String,
    plain: HashSample,
    /// Per slot of [`OUTCOMES`], then one for outcomes the charts do not know.
    collided: Vec<HashSample>,
    other_outcomes: BTreeMap<String, u64>,
    ports: Span,
    /// Connections per [`PORT_BIN_WIDTH`] ports (a port beyond 65535 in the last bin).
    port_bins: Vec<PortBin>,
}

/// Connections of a bin of ports, and the lowest and highest port they used: the axis ends on
/// ports that were used, not on a bin's edge.
#[derive(Clone, Copy)]
struct PortBin {
    connections: u64,
    lowest: f64,
    highest: f64,
}

impl PortReuseSample {
    pub(super) fn new(source: String) -> PortReuseSample {
        PortReuseSample {
            source,
            plain: HashSample::new(),
            collided: vec![HashSample::new(); OUTCOMES.len() + 1],
            other_outcomes: BTreeMap::new(),
            ports: Span::default(),
            port_bins: vec![
                PortBin {
                    connections: 0,
                    lowest: f64::INFINITY,
                    highest: f64::NEG_INFINITY,
                };
                PORT_BINS
            ],
        }
    }

    pub(super) fn add(&mut self, mark: Mark, collision: Option<&str>) {
        self.ports.add(mark.y);
        let bin = &mut self.port_bins[(mark.y as usize / PORT_BIN_WIDTH).min(PORT_BINS - 1)];
        bin.connections += 1;
        bin.lowest = bin.lowest.min(mark.y);
        bin.highest = bin.highest.max(mark.y);
        match collision {
            None => self.plain.add(mark),
            Some(outcome) => {
                let slot = outcome_index(outcome).unwrap_or(OUTCOMES.len());
                if slot == OUTCOMES.len() {
                    *self
                        .other_outcomes
                        .entry(display_text(outcome))
                        .or_insert(0) += 1;
                }
                self.collided[slot].add(mark);
            }
        }
    }

    /// The ports the axis shows, and how many connections lie outside them: from the 0.5th to
    /// the 99.5th percentile (to the lowest and highest port of their bins) when the ports
    /// beyond would stretch the axis to more than twice that; every port otherwise.
    fn port_axis(&self) -> (Span, u64) {
        let connections = |bins: &[PortBin]| bins.iter().map(|b| b.connections).sum::<u64>();
        let tail = (connections(&self.port_bins) as f64 * PORT_TAIL) as u64;
        let mut below = 0;
        let low = self.port_bins.iter().position(|b| {
            below += b.connections;
            below > tail
        });
        let mut above = 0;
        let high = self.port_bins.iter().rposition(|b| {
            above += b.connections;
            above > tail
        });
        let (Some(low), Some(high)) = (low, high) else {
            return (self.ports, 0);
        };
        let outside =
            connections(&self.port_bins[..low]) + connections(&self.port_bins[high + 1..]);
        let fitted = Span::new(self.port_bins[low].lowest, self.port_bins[high].highest);
        if outside == 0 || fitted.width() * 2.0 > self.ports.width() {
            return (self.ports, 0);
        }
        (fitted, outside)
    }
}

/// Draws marks of `colour` as dots of `radius`, and those beyond the port axis `y` as rings on
/// its edge: fitting the axis to where the ports are leaves no connection out.
fn draw_marks(
    chart: &mut Plot<'_>,
    marks: &[Mark],
    y: &Span,
    colour: RGBColor,
    radius: u32,
) -> DrawResult<()> {
    let (inside, outside): (Vec<&Mark>, Vec<&Mark>) = marks.iter().partition(|m| y.contains(m.y));
    chart.draw_series(
        inside
            .iter()
            .map(|m| Circle::new((m.x, m.y), radius, colour.filled())),
    )?;
    chart.draw_series(
        outside
            .iter()
            .map(|m| Circle::new((m.x, m.y.clamp(y.start, y.end)), 3, colour.stroke_width(1))),
    )?;
    Ok(())
}

/// Source port over time for one source: grey for every connection (sampled when there are
/// too many), collisions on top in their outcome's colour.
pub(super) fn port_reuse(
    sample: &ChartSample,
    marks: &PortReuseSample,
    start: &str,
    source: &ChartSource,
) -> Chart {
    let file_name = format!("port-reuse-{}.svg", file_safe(&source.name));
    let name = display_text(&source.name);
    let span = sample.x;
    let plain = &marks.plain;
    let collided = &marks.collided;
    let other_outcomes = &marks.other_outcomes;
    let collisions: u64 = collided.iter().map(|c| c.count).sum();
    let connections = plain.count + collisions;
    let title = format!("Port reuse by {name}: source port over time");
    if connections == 0 {
        return Chart::empty(&file_name, &title, &format!("no connection from {name}"));
    }
    let (ports, outside) = marks.port_axis();
    let subtitle = format!(
        "{connections} connections, {collisions} collisions, {} source ports used",
        source.ports
    );
    // The sample rate depends on the chart's pixels: the plot reports it.
    let mut plain_k = 1;
    let svg = render(&title, &subtitle, |area| {
        let y = ports.padded(0.03);
        let mut chart = cartesian(area, &span.padded(0.01), &y)?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "source port",
            &|v| tick(*v, span.width()),
            &|v| tick(*v, ports.width().max(10.0)),
            12,
        )?;
        let mut legend = Vec::new();
        let (k, shown) = thin(&chart, plain, PLAIN_CELL, PLAIN_MARKS_MAX);
        plain_k = k;
        draw_marks(&mut chart, &shown, &y, GREY, 1)?;
        legend.push(LegendEntry::new(
            Marker::Dot(GREY, 2),
            if k > 1 {
                format!("connection (1 in {k})")
            } else {
                "connection".to_string()
            },
        ));
        // Collisions are few next to connections: all of them are drawn unless they too
        // would overflow the budget, which is then shared so a rare outcome keeps its marks.
        let budgets = share_budget(
            &collided
                .iter()
                .map(|marks| thinned_count(&chart, marks, COLLISION_CELL))
                .collect::<Vec<_>>(),
            COLLISION_MARKS_MAX,
        );
        for (slot, marks) in collided.iter().enumerate() {
            if marks.count == 0 {
                continue;
            }
            let colour = outcome_colour(slot);
            let (k, shown) = thin(&chart, marks, COLLISION_CELL, budgets[slot]);
            draw_marks(&mut chart, &shown, &y, colour, 2)?;
            let label = match OUTCOMES.get(slot) {
                Some((label, _)) => (*label).to_string(),
                None => other_outcomes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            legend.push(LegendEntry::new(
                Marker::Dot(colour, 3),
                sampled_legend(&label, marks.count, k),
            ));
        }
        if outside > 0 {
            legend.push(LegendEntry::new(
                Marker::Ring(GREY),
                format!(
                    "{outside} connections on ports outside {}–{}: rings on the axis's edge",
                    ports.start, ports.end
                ),
            ));
        }
        let note = if plain_k > 1 {
            format!("grey: 1 in {plain_k} connections shown (deterministic sample)")
        } else {
            "grey: every connection".to_string()
        };
        Ok(Drawn::with_note(legend, note))
    });
    let title = if plain_k > 1 {
        format!("{title} (1 in {plain_k} connections shown)")
    } else {
        title
    };
    Chart::new(&file_name, title, svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::palette::{BLUE, INK};
    use crate::charts::sample::mix;
    use crate::charts::test_support::*;

    #[test]
    fn port_reuse_legend_names_the_outcomes_present() {
        let sources = ["10.0.0.1"];
        let charts = charts_of(
            &tables(
                &sources,
                1_000,
                150.0,
                200,
                5,
                &["accepted", "reset", "failed"],
            ),
            &context(&sources, 200),
        );
        let port_reuse = chart(&charts, "port-reuse-10.0.0.1.svg");
        let texts = texts(port_reuse);
        for expected in ["connection", "accepted (", "reset (", "failed ("] {
            assert!(
                texts.iter().any(|t| t.starts_with(expected)),
                "no {expected:?} in {texts:?}"
            );
        }
        for absent in ["rejected_recovered", "unanswered"] {
            assert!(!texts.iter().any(|t| t.contains(absent)), "{absent} shown");
        }
        assert!(
            texts
                .iter()
                .any(|t| t.contains("seconds since 2025-11-24 16:00:00.000 UTC"))
        );
        assert!(texts.iter().any(|t| t == "source port"));
        assert!(texts.iter().any(|t| t.contains("grey: every connection")));
    }

    #[test]
    fn down_sampling_keeps_200k_connections_under_3_mb() {
        // Ports in an order with no pattern, so that marks do not merge: the worst case.
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 200_000, 500.0, 28_232, 4, &["accepted", "failed"]);
        for (i, port) in t.connections.orig_p.iter_mut().enumerate() {
            *port = 32_768 + (mix(i as u64) % 28_232) as u32;
        }
        let charts = charts_of(&t, &context(&sources, 28_232));
        let port_reuse = chart(&charts, "port-reuse-10.0.0.1.svg");
        assert!(
            port_reuse.svg.len() < 3_000_000,
            "{} bytes",
            port_reuse.svg.len()
        );
        assert!(
            port_reuse.title.contains("connections shown"),
            "{}",
            port_reuse.title
        );
        assert!(has_text(
            port_reuse,
            "connections shown (deterministic sample)"
        ));
        // Both outcomes keep marks although accepted ones are far more numerous.
        let doc = roxmltree::Document::parse(&port_reuse.svg).unwrap();
        let fills = |colour: RGBColor| {
            let hex = format!("#{:02X}{:02X}{:02X}", colour.0, colour.1, colour.2);
            doc.descendants()
                .filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some(&hex))
                .count()
        };
        assert!(fills(BLUE) > 1_000);
        assert!(fills(INK) > 1_000);
        assert!(fills(GREY) > 1_000);
        let total: usize = charts.iter().map(|c| c.svg.len()).sum();
        assert!(total < 5_000_000, "{total} bytes in all");
    }

    #[test]
    fn two_outlying_ports_do_not_stretch_the_axis_and_are_still_drawn() {
        // 1,000 connections cycling ports 40000–40199, two of them (not collisions) from
        // ports 61000 and 65000: the axis covers 40000–40199 and the two sit on its edge.
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 1_000, 150.0, 200, 5, &["accepted"]);
        t.connections.orig_p[100] = 61_000;
        t.connections.orig_p[600] = 65_000;
        let charts = charts_of(&t, &context(&sources, 202));
        let port_reuse = chart(&charts, "port-reuse-10.0.0.1.svg");
        let ticks = y_ticks(port_reuse);
        let (low, high) = ticks
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), v| (l.min(*v), h.max(*v)));
        // 3% of padding: within 6 ports of the data at either end.
        assert!(
            (39_994.0..=40_050.0).contains(&low) && (40_150.0..=40_205.0).contains(&high),
            "{ticks:?}"
        );
        assert!(
            has_text(
                port_reuse,
                "2 connections on ports outside 40000–40199: rings on the axis's edge"
            ),
            "{:?}",
            texts(port_reuse)
        );
        let doc = roxmltree::Document::parse(&port_reuse.svg).unwrap();
        let rings = doc
            .descendants()
            .filter(|n| n.has_tag_name("circle") && n.attribute("fill") == Some("none"))
            .count();
        // The two connections, and the legend's ring.
        assert_eq!(rings, 3);
    }

    #[test]
    fn ports_spread_evenly_keep_the_whole_axis() {
        // Ports spread over 32768–61000 with no outlier: the 0.5% at each end are data, not
        // strays, and the axis shows them all.
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 20_000, 500.0, 28_232, 0, &[]);
        for (i, port) in t.connections.orig_p.iter_mut().enumerate() {
            *port = 32_768 + (mix(i as u64) % 28_232) as u32;
        }
        let charts = charts_of(&t, &context(&sources, 28_232));
        let port_reuse = chart(&charts, "port-reuse-10.0.0.1.svg");
        assert!(!has_text(port_reuse, "outside"), "{:?}", texts(port_reuse));
        let high = y_ticks(port_reuse).into_iter().fold(0.0, f64::max);
        assert!(high >= 60_000.0, "top tick {high}");
    }
}
