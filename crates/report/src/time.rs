//! Timestamps shown to people: UTC, ISO 8601.

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.nnnnnnnnn UTC`.
pub fn format_utc(ts_ns: i64) -> String {
    let seconds = ts_ns.div_euclid(1_000_000_000);
    let nanos = ts_ns.rem_euclid(1_000_000_000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{nanos:09} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Formats nanoseconds since the epoch to the millisecond: `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn format_utc_ms(ts_ns: i64) -> String {
    let full = format_utc(ts_ns);
    // "YYYY-MM-DD HH:MM:SS.nnnnnnnnn UTC": keep three of the nine fraction digits.
    format!("{} UTC", &full[..full.len() - 10])
}

/// Seconds as a float, for JSON consumers (jq, pandas) that expect epoch seconds.
pub fn seconds(ts_ns: i64) -> f64 {
    ts_ns as f64 / 1e9
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

    #[test]
    fn formats_to_the_millisecond() {
        assert_eq!(
            format_utc_ms(1_764_078_123_456_789_012),
            "2025-11-25 13:42:03.456 UTC"
        );
        // Before the epoch the millisecond is truncated toward the past, and 2000 is a leap
        // year.
        assert_eq!(format_utc_ms(-1), "1969-12-31 23:59:59.999 UTC");
        assert_eq!(
            format_utc_ms(951_782_400_123_456_789),
            "2000-02-29 00:00:00.123 UTC"
        );
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00.000000000 UTC");
        assert_eq!(
            format_utc(1_764_078_123_456_789_012),
            "2025-11-25 13:42:03.456789012 UTC"
        );
        assert_eq!(
            format_utc(951_782_400_000_000_000),
            "2000-02-29 00:00:00.000000000 UTC"
        );
        assert_eq!(format_utc(-1), "1969-12-31 23:59:59.999999999 UTC");
    }
}
