//! What the charts keep of the connections while they stream past: [`ChartSample`], and the
//! deterministic hash sample of marks ([`HashSample`]) that keeps it bounded.

use std::collections::HashSet;

use super::axes::{Plot, Span};
use super::handshake_latency::{
    LATENCY_BINS_PER_DECADE, LATENCY_MAX_LOG10_MS, LATENCY_MIN_LOG10_MS, Latencies,
};
use super::port_reuse::PortReuseSample;
use super::rates::FineRates;
use super::reuse_interval::ReuseIntervals;
use super::text::seconds_since;
use super::{ChartContext, MAX_SOURCES};
use crate::tables::ConnectionsTable;

/// Grey marks per port-reuse chart: about 95 bytes each in the SVG, so that with
/// [`COLLISION_MARKS_MAX`] a chart stays under 2 MB whatever the capture.
pub(super) const PLAIN_MARKS_MAX: usize = 12_000;
/// Coloured (collision) marks per port-reuse chart, shared between the outcomes.
pub(super) const COLLISION_MARKS_MAX: usize = 8_000;
/// Marks closer than this (px) are drawn once: grey dots are 2 px wide, collision dots 4 px.
pub(super) const PLAIN_CELL: i32 = 2;
pub(super) const COLLISION_CELL: i32 = 3;
/// Marks of one kind (grey, or one outcome) a source's sample keeps while the records stream
/// past: several times what a chart draws, so that merging marks by pixel still leaves the
/// drawn budget full. About 24 bytes each.
const SAMPLED_MARKS_MAX: usize = 4 * PLAIN_MARKS_MAX;

/// What the charts need of the connections, gathered chunk by chunk in bounded memory: for
/// each busy source a deterministic sample of its connections (the port-reuse charts), and
/// histograms of handshake latency and reuse interval (exact counts; medians within 0.8%).
pub struct ChartSample {
    capture_start_ns: i64,
    /// Seconds since the capture start of every connection: the port-reuse charts' x range,
    /// the same for every source so that the charts line up.
    pub(super) x: Span,
    /// Connections seen.
    pub(super) connections: u64,
    /// Per source of [`super::busiest_sources`], in its order.
    pub(super) port_reuse: Vec<PortReuseSample>,
    /// Clean, then collided connections.
    pub(super) latency: [Latencies; 2],
    /// Reuse intervals, all sources.
    pub(super) reuse: ReuseIntervals,
    /// All sources' connections in fine bins, for a short capture's rates.
    pub(super) fine_rates: FineRates,
}

impl ChartSample {
    /// An empty sample for charts whose x axes start at `capture_start_ns`, of the busiest
    /// of `sources` (the first four distinct, as the charts take them).
    pub fn new(capture_start_ns: i64, sources: &[String]) -> ChartSample {
        let mut seen = HashSet::new();
        let sources: Vec<&String> = sources
            .iter()
            .filter(|name| seen.insert(name.as_str()))
            .take(MAX_SOURCES)
            .collect();
        let bins =
            ((LATENCY_MAX_LOG10_MS - LATENCY_MIN_LOG10_MS) as usize) * LATENCY_BINS_PER_DECADE;
        ChartSample {
            capture_start_ns,
            x: Span::default(),
            connections: 0,
            port_reuse: sources
                .iter()
                .map(|name| PortReuseSample::new(name.to_string()))
                .collect(),
            latency: [Latencies::new(bins), Latencies::new(bins)],
            reuse: ReuseIntervals::new(),
            fine_rates: FineRates::new(),
        }
    }

    /// The sample of a whole table (tests, and tables held in memory).
    pub fn of(table: &ConnectionsTable, context: &ChartContext) -> ChartSample {
        let names: Vec<String> = context.sources.iter().map(|s| s.name.clone()).collect();
        let mut sample = ChartSample::new(context.capture_start_ns, &names);
        sample.add(table);
        sample
    }

    /// Adds the rows of `table` (a chunk of the connections, in any order).
    pub fn add(&mut self, table: &ConnectionsTable) {
        let rows = table
            .uid
            .iter()
            .zip(&table.ts_ns)
            .zip(&table.orig_h)
            .zip(&table.orig_p);
        for (row, (((uid, ts), orig_h), port)) in rows.enumerate() {
            self.connections += 1;
            let x = seconds_since(*ts, self.capture_start_ns);
            self.x.add(x);
            let collision = table.collision.get(row).and_then(Option::as_deref);
            self.fine_rates
                .add(ts.saturating_sub(self.capture_start_ns), collision);
            if let Some(interval) = table.reuse_interval_s.get(row).copied().flatten() {
                self.reuse.add(interval, collision.is_some());
            }
            let latency = table.syn_to_syn_ack_ms.get(row).copied().flatten();
            self.latency[usize::from(collision.is_some())].add(latency);
            let Some(s) = self.port_reuse.iter().position(|p| *p.source == **orig_h) else {
                continue;
            };
            let mark = Mark {
                x,
                y: f64::from(*port),
                uid: *uid,
            };
            self.port_reuse[s].add(mark, collision);
        }
    }
}

/// A mark to draw: position and the connection's uid (for the deterministic sample).
#[derive(Clone, Copy)]
pub(super) struct Mark {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) uid: u64,
}

/// Marks kept by a hash of their uid: those whose hash is at most a threshold that halves
/// whenever more than [`SAMPLED_MARKS_MAX`] are kept. Whatever the order the marks come in,
/// the kept set is exactly "hash ≤ threshold": a uniform, deterministic sample of
/// 1 in 2^halvings, and every count stays exact.
#[derive(Clone)]
pub(super) struct HashSample {
    threshold: u64,
    pub(super) marks: Vec<Mark>,
    pub(super) count: u64,
}

impl HashSample {
    pub(super) fn new() -> HashSample {
        HashSample {
            threshold: u64::MAX,
            marks: Vec::new(),
            count: 0,
        }
    }

    pub(super) fn add(&mut self, mark: Mark) {
        self.count += 1;
        if mix(mark.uid) > self.threshold {
            return;
        }
        self.marks.push(mark);
        while self.marks.len() > SAMPLED_MARKS_MAX {
            self.threshold >>= 1;
            let threshold = self.threshold;
            self.marks.retain(|m| mix(m.uid) <= threshold);
        }
    }

    /// The sample's rate, as 1 in this many.
    fn one_in(&self) -> u64 {
        (u64::MAX / self.threshold.max(1)).max(1)
    }
}

/// A thinned series' legend: its label, the marks it counts, and the sampling when [`thin`]
/// kept 1 in `k` (`k` > 1).
pub(super) fn sampled_legend(label: &str, count: u64, k: u64) -> String {
    if k > 1 {
        format!("{label} ({count}, 1 in {k})")
    } else {
        format!("{label} ({count})")
    }
}

/// How many marks remain once those on the same `cell`-pixel square are merged.
pub(super) fn thinned_count(chart: &Plot<'_>, sample: &HashSample, cell: i32) -> usize {
    thin(chart, sample, cell, usize::MAX).1.len()
}

/// Deterministic down-sampling: keeps the marks whose uid hash is in the lowest 1 in `k` (not
/// every k-th: a balancer cycling L ports would alias into flat lines when L is a multiple
/// of k), and merges marks that fall on the same `cell`-pixel square (drawing one over the
/// other changes nothing). `k` starts at the sample's own rate (the same rule: a lower hash
/// threshold) and grows until at most `cap` marks remain.
pub(super) fn thin(
    chart: &Plot<'_>,
    sample: &HashSample,
    cell: i32,
    cap: usize,
) -> (u64, Vec<Mark>) {
    let cell = cell.max(1);
    let marks = &sample.marks;
    let mut k: u64 = sample.one_in();
    loop {
        let threshold = u64::MAX / k;
        let mut cells = HashSet::new();
        let shown: Vec<Mark> = marks
            .iter()
            .filter(|m| mix(m.uid) <= threshold)
            .filter(|m| {
                let (px, py) = chart.backend_coord(&(m.x, m.y));
                cells.insert((px.div_euclid(cell), py.div_euclid(cell)))
            })
            .copied()
            .collect();
        if shown.len() <= cap {
            return (k, shown);
        }
        if k > sample.count {
            // Unreachable in practice (1 in more than n leaves about nothing); keep the bound.
            return (k, shown.into_iter().take(cap).collect());
        }
        // Merged marks do not shrink in proportion to k: step, then check again.
        let factor = shown.len().div_ceil(cap.max(1)) as u64;
        k = k.saturating_mul(factor.max(2));
    }
}

/// Shares `cap` between groups of `wanted` sizes: small groups get all they want, the rest is
/// split evenly among the larger ones (water filling).
pub(super) fn share_budget(wanted: &[usize], cap: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..wanted.len()).filter(|i| wanted[*i] > 0).collect();
    order.sort_by_key(|i| (wanted[*i], *i));
    let mut budgets = vec![0; wanted.len()];
    let mut left = cap;
    let mut remaining = order.len();
    for i in order {
        let share = left / remaining.max(1);
        budgets[i] = wanted[i].min(share).max(1);
        left = left.saturating_sub(budgets[i]);
        remaining -= 1;
    }
    budgets
}

/// SplitMix64's finaliser (Steele, Lea & Flood, 2014): a fixed, well-mixed hash of the uid.
pub(super) fn mix(uid: u64) -> u64 {
    let mut z = uid.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sampling_does_not_alias_with_the_port_cycle() {
        // Every 200th connection of a 200-port cycle is always the same port; the hash
        // sample keeps the sawtooth.
        let ports: HashSet<u64> = (0..200_000u64)
            .filter(|uid| mix(*uid) % 200 == 0)
            .map(|uid| uid % 200)
            .collect();
        assert!(ports.len() > 150, "{} ports", ports.len());
    }

    #[test]
    fn budget_is_shared_so_rare_outcomes_keep_their_marks() {
        assert_eq!(
            share_budget(&[10_000, 0, 30, 0, 5], 1_000),
            [965, 0, 30, 0, 5]
        );
        assert_eq!(share_budget(&[600, 600], 1_000), [500, 500]);
    }
}
