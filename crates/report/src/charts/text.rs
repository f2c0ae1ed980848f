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

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` from ns since the epoch.
pub(super) fn format_utc_ms(ts_ns: i64) -> String {
    let seconds = ts_ns.div_euclid(1_000_000_000);
    let millis = ts_ns.rem_euclid(1_000_000_000) / 1_000_000;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let second_of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms", `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::test_support::START_NS;

    #[test]
    fn formats_capture_start_in_utc() {
        assert_eq!(format_utc_ms(START_NS), "2025-11-24 16:00:00.000 UTC");
        assert_eq!(format_utc_ms(-1), "1969-12-31 23:59:59.999 UTC");
        assert_eq!(
            format_utc_ms(951_782_400_123_456_789),
            "2000-02-29 00:00:00.123 UTC"
        );
    }
}
