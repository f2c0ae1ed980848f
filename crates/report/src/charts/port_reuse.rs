//! `port-reuse-<source>.svg`: source port over time for one of the busiest sources.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::axes::{Span, axes, cartesian, tick};
use super::frame::{Drawn, LegendEntry, Marker, render};
use super::palette::{GREY, OUTCOMES, outcome_colour, outcome_index};
use super::sample::{
    COLLISION_CELL, COLLISION_MARKS_MAX, ChartSample, HashSample, Mark, PLAIN_CELL,
    PLAIN_MARKS_MAX, share_budget, thin, thinned_count,
};
use super::text::{display_text, file_safe};
use super::{Chart, ChartSource};

/// One source's connections for its port-reuse chart.
pub(super) struct PortReuseSample {
    pub(super) source: String,
    plain: HashSample,
    /// Per slot of [`OUTCOMES`], then one for outcomes the charts do not know.
    collided: Vec<HashSample>,
    other_outcomes: BTreeMap<String, u64>,
    ports: Span,
}

impl PortReuseSample {
    pub(super) fn new(source: String) -> PortReuseSample {
        PortReuseSample {
            source,
            plain: HashSample::new(),
            collided: vec![HashSample::new(); OUTCOMES.len() + 1],
            other_outcomes: BTreeMap::new(),
            ports: Span::default(),
        }
    }

    pub(super) fn add(&mut self, mark: Mark, collision: Option<&str>) {
        self.ports.add(mark.y);
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
    let ports = marks.ports;
    let subtitle = format!(
        "{connections} connections, {collisions} collisions, {} source ports used",
        source.ports
    );
    // The sample rate depends on the chart's pixels: the plot reports it.
    let mut plain_k = 1;
    let svg = render(&title, &subtitle, |area| {
        let mut chart = cartesian(area, &span.padded(0.01), &ports.padded(0.03))?;
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
        chart.draw_series(
            shown
                .iter()
                .map(|m| Circle::new((m.x, m.y), 1, GREY.filled())),
        )?;
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
            chart.draw_series(
                shown
                    .iter()
                    .map(|m| Circle::new((m.x, m.y), 2, colour.filled())),
            )?;
            let label = match OUTCOMES.get(slot) {
                Some((label, _)) => (*label).to_string(),
                None => other_outcomes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let sampled = if k > 1 {
                format!(", 1 in {k}")
            } else {
                String::new()
            };
            legend.push(LegendEntry::new(
                Marker::Dot(colour, 3),
                format!("{label} ({}{sampled})", marks.count),
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
}
