//! How the report writes numbers, durations and rates, in one way everywhere (the text of
//! `analyze` and `watch` included).

use twsleuth_flows::LatencyMs;

use crate::tables::label;

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A duration for people: ms below a second, s above.
pub fn duration(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    if s.abs() < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else if s.abs() < 120.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} min", s / 60.0)
    }
}

/// Percentiles of a latency, to the hundredth of a millisecond: collided and clean
/// handshakes are compared, and on a LAN both can be well under a millisecond.
pub fn latency(l: &LatencyMs) -> String {
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
        l.p50, l.p95, l.max
    )
}

/// A rate in connections per second: whole numbers when large, one decimal when small.
pub fn rate(per_s: f64) -> String {
    if per_s >= 100.0 {
        count(per_s.round() as u64)
    } else {
        format!("{per_s:.1}")
    }
}

/// `part` of `whole` as a percentage with one decimal; 0% of nothing.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        "0%".into()
    } else {
        format!("{:.1}%", part as f64 * 100.0 / whole as f64)
    }
}

/// An enum's serde name in words: `rejected_recovered` → `rejected recovered`.
pub fn human<T: serde::Serialize>(value: &T) -> String {
    label(value).replace('_', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use twsleuth_flows::SECOND_NS;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(4812), "4,812");
        assert_eq!(count(1_234_567), "1,234,567");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(duration(250_000), "0.2 ms");
        assert_eq!(duration(1_000_200_000), "1.00 s");
        assert_eq!(duration(600 * SECOND_NS), "10.0 min");
    }
}
