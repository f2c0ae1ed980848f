//! Seconds of the timeline merged into buckets, shared by the occupancy and rates charts.

use crate::tables::TimelineTable;

/// Timeline points per series: beyond this, seconds are merged into buckets (a polyline point
/// costs ~8 bytes, and 900 px cannot show more anyway).
const MAX_TIMELINE_POINTS: i64 = 1_200;

/// Seconds of the timeline merged into one point, so a long capture stays readable.
pub(super) struct Buckets {
    first: i64,
    last: i64,
    pub(super) width: i64,
}

impl Buckets {
    pub(super) fn new(first: i64, last: i64) -> Buckets {
        let span = last.saturating_sub(first).saturating_add(1).max(1);
        let needed = ceil_div(span, MAX_TIMELINE_POINTS);
        // Round widths people can read in a subtitle.
        let width = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]
            .into_iter()
            .find(|w| *w >= needed)
            .unwrap_or_else(|| ceil_div(needed, 3600).saturating_mul(3600));
        Buckets { first, last, width }
    }

    pub(super) fn count(&self) -> usize {
        let span = self
            .last
            .saturating_sub(self.first)
            .saturating_add(1)
            .max(1);
        ceil_div(span, self.width) as usize
    }

    /// The bucket of `second`, if it is in the timeline's range.
    pub(super) fn index(&self, second: i64) -> Option<usize> {
        if !(self.first..=self.last).contains(&second) {
            return None;
        }
        let i = (second.saturating_sub(self.first) / self.width) as usize;
        (i < self.count()).then_some(i)
    }

    /// First second of bucket `i`, and how many of its seconds the timeline covers.
    pub(super) fn bounds(&self, i: usize) -> (i64, i64) {
        let start = self
            .first
            .saturating_add((i as i64).saturating_mul(self.width));
        let covered = self
            .width
            .min(self.last.saturating_sub(start).saturating_add(1));
        (start, covered.max(1))
    }
}

/// `a / b` rounded up, for `a ≥ 0` and `b > 0` (`i64::div_ceil` is not stable yet).
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

/// Seconds of the timeline's rows, or `None` when it has none.
pub(super) fn timeline_seconds(timeline: &TimelineTable) -> Option<(i64, i64)> {
    let seconds = &timeline.second;
    Some((*seconds.iter().min()?, *seconds.iter().max()?))
}

#[cfg(test)]
mod tests {
    use crate::charts::test_support::*;

    #[test]
    fn long_captures_are_bucketed() {
        let sources = ["10.0.0.1"];
        // Ten hours at 0.1 connection per second.
        let t = tables(&sources, 3_600, 0.1, 100, 3, &["accepted"]);
        let charts = charts_of(&t, &context(&sources, 100));
        assert!(has_text(
            chart(&charts, "rates.svg"),
            "mean per second over 30 s"
        ));
        assert!(has_text(
            chart(&charts, "time-wait-occupancy.svg"),
            "peak per 30 s"
        ));
    }
}
