//! A chart's frame: title, subtitle, the legend in its own column, and the "no data" plot.

use std::error::Error;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{GRID, INK, MUTED};
use super::text::{display_text, label_font, text_style};

/// Chart size: wide enough for a sawtooth of a few hundred teeth, small enough to read on a
/// laptop screen beside the text.
const WIDTH: u32 = 900;
const HEIGHT: u32 = 450;
/// Room above the plot for the title and the subtitle.
const HEADER_HEIGHT: u32 = 56;
/// The legend sits in its own column, so that it never hides data.
const LEGEND_WIDTH: u32 = 230;

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(super) type DrawResult<T> = Result<T, Box<dyn Error>>;

/// A legend line: a marker and its text.
pub(super) struct LegendEntry {
    marker: Marker,
    text: String,
}

impl LegendEntry {
    pub(super) fn new(marker: Marker, text: String) -> LegendEntry {
        LegendEntry { marker, text }
    }
}

/// What a plot drew: its legend, and a note for the subtitle known only once the pixels are
/// (the port-reuse sample rate).
#[derive(Default)]
pub(super) struct Drawn {
    legend: Vec<LegendEntry>,
    note: Option<String>,
}

impl Drawn {
    pub(super) fn new(legend: Vec<LegendEntry>) -> Drawn {
        Drawn { legend, note: None }
    }

    pub(super) fn with_note(legend: Vec<LegendEntry>, note: String) -> Drawn {
        Drawn {
            legend,
            note: Some(note),
        }
    }
}

pub(super) enum Marker {
    Dot(RGBColor, u32),
    Line(RGBColor),
    Dashed(RGBColor),
    Bar(RGBColor),
    /// A mark drawn on an axis's edge for a value beyond it.
    Ring(RGBColor),
}

/// Draws a chart's frame (title, subtitle, legend column) around what `plot` draws, and
/// falls back to a frame that says what went wrong: plotters reports errors rather than
/// panicking, and a report should still get an SVG.
pub(super) fn render(
    title: &str,
    subtitle: &str,
    plot: impl FnOnce(&Area<'_>) -> DrawResult<Drawn>,
) -> String {
    let svg = frame(title, subtitle, plot).or_else(|e| {
        let why = format!("could not draw this chart: {e}");
        frame(title, subtitle, |area| {
            no_data(area, &why)?;
            Ok(Drawn::default())
        })
    });
    let svg = svg.unwrap_or_else(|_| {
        format!(
            "<svg width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\n</svg>\n"
        )
    });
    with_title(svg, title)
}

pub(super) fn frame(
    title: &str,
    subtitle: &str,
    plot: impl FnOnce(&Area<'_>) -> DrawResult<Drawn>,
) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let drawn = plot(&plot_area(&root))?;
        let subtitle = match (subtitle, drawn.note) {
            (subtitle, None) => subtitle.to_string(),
            ("", Some(note)) => note,
            (subtitle, Some(note)) => format!("{subtitle}; {note}"),
        };
        root.draw(&Text::new(
            display_text(title),
            (16, 10),
            ("sans-serif", 22)
                .into_font()
                .style(FontStyle::Bold)
                .color(&INK),
        ))?;
        root.draw(&Text::new(
            display_text(&subtitle),
            (16, 36),
            text_style(15, MUTED),
        ))?;
        draw_legend(&legend_area(&root), &drawn.legend)?;
        root.present()?;
    }
    Ok(svg)
}

/// Where the axes go: below the header, left of the legend.
fn plot_area<'a>(root: &Area<'a>) -> Area<'a> {
    root.margin(HEADER_HEIGHT as i32, 8, 8, 0)
        .split_horizontally(WIDTH - LEGEND_WIDTH)
        .0
}

fn legend_area<'a>(root: &Area<'a>) -> Area<'a> {
    root.margin(HEADER_HEIGHT as i32 + 10, 8, 0, 8)
        .split_horizontally(WIDTH - LEGEND_WIDTH)
        .1
}

fn draw_legend(area: &Area<'_>, entries: &[LegendEntry]) -> DrawResult<()> {
    const LINE: i32 = 17;
    let mut y = 10;
    for entry in entries {
        match entry.marker {
            Marker::Dot(colour, r) => area.draw(&Circle::new((18, y), r + 1, colour.filled()))?,
            Marker::Line(colour) => area.draw(&PathElement::new(
                vec![(6, y), (30, y)],
                colour.stroke_width(3),
            ))?,
            Marker::Dashed(colour) => {
                for x in [6, 17, 28] {
                    area.draw(&PathElement::new(
                        vec![(x, y), (x + 6, y)],
                        colour.stroke_width(2),
                    ))?;
                }
            }
            Marker::Ring(colour) => area.draw(&Circle::new((18, y), 4, colour.stroke_width(2)))?,
            Marker::Bar(colour) => {
                area.draw(&Rectangle::new([(10, y - 6), (26, y + 6)], colour.filled()))?
            }
        }
        for line in legend_lines(&entry.text) {
            area.draw(&Text::new(
                line,
                (38, y),
                label_font().pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
            y += LINE;
        }
        y += 6;
    }
    Ok(())
}

/// A legend text in lines that fit the column (~26 characters of 12 px sans-serif): broken
/// at spaces, and a word too long for a line (an IPv6 address) loses its middle.
fn legend_lines(text: &str) -> Vec<String> {
    const MAX: usize = 26;
    let shorten = |word: &str| -> String {
        let chars: Vec<char> = word.chars().collect();
        if chars.len() <= MAX {
            return word.to_string();
        }
        let head: String = chars[..MAX / 2].iter().collect();
        let tail: String = chars[chars.len() - (MAX / 2 - 1)..].iter().collect();
        format!("{head}…{tail}")
    };
    let mut lines: Vec<String> = Vec::new();
    // Split on plain spaces only: a no-break space holds a number and its unit together.
    for word in display_text(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(shorten)
    {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= MAX => {
                line.push(' ');
                line.push_str(&word);
            }
            _ => lines.push(word),
        }
    }
    lines
}

/// "no data" (and why) in the middle of an empty plot frame.
pub(super) fn no_data(area: &Area<'_>, why: &str) -> DrawResult<()> {
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    area.draw(&Rectangle::new(
        [(8, 8), (w - 8, h - 8)],
        GRID.stroke_width(2),
    ))?;
    area.draw(&Text::new(
        "no data",
        (w / 2, h / 2 - 14),
        ("sans-serif", 28)
            .into_font()
            .color(&MUTED)
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    area.draw(&Text::new(
        display_text(why),
        (w / 2, h / 2 + 18),
        text_style(15, MUTED).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    Ok(())
}

/// Inserts a `<title>` (read by screen readers and shown as a tooltip) after the root tag.
fn with_title(svg: String, title: &str) -> String {
    let Some(end) = svg.find('>') else {
        return svg;
    };
    let mut escaped = String::new();
    for c in display_text(title).chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            other => escaped.push(other),
        }
    }
    format!(
        "{}\n<title>{escaped}</title>{}",
        &svg[..=end],
        &svg[end + 1..]
    )
}
