//! Text in the charts: fonts, numbers, times and capture-derived strings made safe for SVG.

use plotters::prelude::*;

use super::palette::INK;

pub(super) fn label_font() -> TextStyle<'static> {
    text_style(15, INK)
}

pub(super) fn desc_font() -> TextStyle<'static> {
    text_style(16, INK)
}

/// Plotters' sizes are 1.24 times the SVG font size: 15 gives 12 px text.
pub(super) fn text_style(size: u32, colour: RGBColor) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&colour)
}

/// `v` with at most `decimals` decimals, trailing zeros and a negative zero dropped.
pub(super) fn trim_number(v: f64, decimals: usize) -> String {
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" { "0".to_string() } else { s }
}

/// Tick label for log10(ms): a decade in the unit people say.
pub(super) fn decade_label(log10_ms: f64) -> String {
    let ms = 10f64.powf(log10_ms);
    if (log10_ms - log10_ms.round()).abs() > 1e-9 {
        return String::new();
    }
    if ms < 1.0 {
        format!("{} µs", trim_number(ms * 1000.0, 0))
    } else if ms < 1000.0 {
        format!("{} ms", trim_number(ms, 0))
    } else {
        format!("{} s", trim_number(ms / 1000.0, 0))
    }
}

/// Seconds from the capture start to `ts_ns`, exact in integers before the division.
pub(super) fn seconds_since(ts_ns: i64, start_ns: i64) -> f64 {
    ts_ns.saturating_sub(start_ns) as f64 / 1e9
}

/// Capture-derived text as it may appear in the SVG: XML 1.0 forbids most control
/// characters even when escaped (plotters escapes `<>&"'`).
pub(super) fn display_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A source as a file name: IPv6's `:` and anything else outside `[A-Za-z0-9.-]` become `_`.
pub(super) fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
