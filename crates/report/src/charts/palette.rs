//! Colours: one per source series, one per collision outcome, the same in every chart.

use plotters::style::RGBColor;

use super::MAX_SOURCES;

/// Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2002), without its
/// yellow, which is unreadable on white.
pub(super) const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub(super) const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub(super) const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
pub(super) const INK: RGBColor = RGBColor(0x20, 0x20, 0x20);
pub(super) const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);
pub(super) const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);
pub(super) const GRID: RGBColor = RGBColor(0xEB, 0xEB, 0xEB);

/// One colour per source series, in the order of `ChartContext::sources`.
pub(super) const SERIES: [RGBColor; MAX_SOURCES] = [BLUE, ORANGE, GREEN, PURPLE];

/// The collision outcomes, as the tables spell them, with fixed colours: the same outcome
/// has the same colour in every chart and report. Drawn in this order, so the rarer and
/// worse outcomes land on top.
pub(super) const OUTCOMES: [(&str, RGBColor); 5] = [
    ("accepted", BLUE),
    ("rejected_recovered", ORANGE),
    ("reset", VERMILLION),
    ("unanswered", PURPLE),
    ("failed", INK),
];
/// Colour of an outcome label the charts do not know (a newer tracker): still drawn.
const OTHER_OUTCOME: RGBColor = SKY;

/// Index of an outcome label in [`OUTCOMES`].
pub(super) fn outcome_index(label: &str) -> Option<usize> {
    OUTCOMES.iter().position(|(name, _)| *name == label)
}

pub(super) fn outcome_colour(slot: usize) -> RGBColor {
    OUTCOMES.get(slot).map_or(OTHER_OUTCOME, |(_, c)| *c)
}
