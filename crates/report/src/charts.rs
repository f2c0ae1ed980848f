//! The report's SVG charts, drawn with plotters from the exported timeline and a
//! [`ChartSample`] of the exported connections (so a chart never shows what `data/*.parquet`
//! lacks), both gathered in bounded memory while the records stream to the exports:
//!
//! - `port-reuse-<source>.svg`: source port over time for each of the busiest sources, every
//!   connection a grey mark and collisions coloured by outcome; the balancer's port cycling
//!   shows as a sawtooth.
//! - `time-wait-occupancy.svg`: tuples held in TIME_WAIT per source, against the 4-tuples
//!   the source really used (the exhaustion line); shaded after the capture, where the
//!   timeline's rows are not `observed`.
//! - `rates.svg`: new connections and collisions per second.
//! - `handshake-latency.svg`: first SYN → SYN-ACK, clean against collided connections.
//! - `reuse-interval.svg`: how soon a tuple was used again (log axis), against the TIME_WAIT
//!   duration.
//! - `syn-timestamps.svg`: the TSval of each colliding SYN against the `ts_recent` of the
//!   TIME_WAIT it met, over time: a clock that went back (the cause of PAWS rejections) shows
//!   as SYNs below the grey marks.
//!
//! Every chart is 900×450 px, its text in the SVG as `<text>` (no fonts needed to draw it),
//! and the same tables always give the same bytes. Empty or odd tables give a chart that
//! says "no data", never a panic.

use std::collections::{BTreeMap, HashSet};
use std::error::Error;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use twsleuth_flows::LogHistogram;

use crate::tables::{ConnectionsTable, TimelineTable};

/// What the charts need beyond the tables.
pub struct ChartContext {
    /// Capture start (ns since epoch): x axes are "seconds since `<UTC date time>`".
    pub capture_start_ns: i64,
    /// TIME_WAIT duration in force (s), marked on the reuse-interval histogram.
    pub time_wait_s: f64,
    /// Busiest sources first (at most 4 get their own port-reuse timeline / series).
    pub sources: Vec<ChartSource>,
}

/// A source address, with what it used.
#[derive(Clone, Debug)]
pub struct ChartSource {
    /// The address as text.
    pub name: String,
    /// Source ports it really used.
    pub ports: u64,
    /// Distinct 4-tuples it used (the capacity model's): the TIME_WAIT occupancy at which
    /// every new connection meets a tuple still held (the exhaustion line).
    pub tuples: u64,
}

/// One chart: file name under charts/ (e.g. "port-reuse-10.0.0.1.svg"), a title, and the SVG
/// text.
pub struct Chart {
    /// File name under `charts/`.
    pub file_name: String,
    /// What the chart shows, for captions and the SVG's `<title>`.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Chart size: wide enough for a sawtooth of a few hundred teeth, small enough to read on a
/// laptop screen beside the text.
const WIDTH: u32 = 900;
const HEIGHT: u32 = 450;
/// Room above the plot for the title and the subtitle.
const HEADER_HEIGHT: u32 = 56;
/// The legend sits in its own column, so that it never hides data.
const LEGEND_WIDTH: u32 = 230;
/// Sources with their own port-reuse chart and series.
const MAX_SOURCES: usize = 4;
/// Grey marks per port-reuse chart: about 95 bytes each in the SVG, so that with
/// [`COLLISION_MARKS_MAX`] a chart stays under 2 MB whatever the capture.
const PLAIN_MARKS_MAX: usize = 12_000;
/// Coloured (collision) marks per port-reuse chart, shared between the outcomes.
const COLLISION_MARKS_MAX: usize = 8_000;
/// Marks closer than this (px) are drawn once: grey dots are 2 px wide, collision dots 4 px.
const PLAIN_CELL: i32 = 2;
const COLLISION_CELL: i32 = 3;
/// Timeline points per series: beyond this, seconds are merged into buckets (a polyline point
/// costs ~8 bytes, and 900 px cannot show more anyway).
const MAX_TIMELINE_POINTS: i64 = 1_200;
/// Latency bins: 4 per decade from 0.01 ms to 100 s.
const LATENCY_MIN_LOG10_MS: f64 = -2.0;
const LATENCY_MAX_LOG10_MS: f64 = 5.0;
const LATENCY_BINS_PER_DECADE: usize = 4;
/// Reuse-interval bins: 5 per decade from 0.1 ms to 10^9 s (beyond a few years, an interval
/// is a broken clock).
const REUSE_MIN_LOG10_S: f64 = -4.0;
const REUSE_MAX_LOG10_S: f64 = 9.0;
const REUSE_BINS_PER_DECADE: usize = 5;
/// Marks of one kind (grey, or one outcome) a source's sample keeps while the records stream
/// past: several times what a chart draws, so that merging marks by pixel still leaves the
/// drawn budget full. About 24 bytes each.
const SAMPLED_MARKS_MAX: usize = 4 * PLAIN_MARKS_MAX;

/// Okabe & Ito's colour-blind-safe palette ("Color Universal Design", 2002), without its
/// yellow, which is unreadable on white.
const BLUE: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const GREEN: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
const INK: RGBColor = RGBColor(0x20, 0x20, 0x20);
const GREY: RGBColor = RGBColor(0x99, 0x99, 0x99);
const MUTED: RGBColor = RGBColor(0x55, 0x55, 0x55);
const GRID: RGBColor = RGBColor(0xEB, 0xEB, 0xEB);

/// One colour per source series, in the order of `ChartContext::sources`.
const SERIES: [RGBColor; MAX_SOURCES] = [BLUE, ORANGE, GREEN, PURPLE];

/// The collision outcomes, as the tables spell them, with fixed colours: the same outcome
/// has the same colour in every chart and report. Drawn in this order, so the rarer and
/// worse outcomes land on top.
const OUTCOMES: [(&str, RGBColor); 5] = [
    ("accepted", BLUE),
    ("rejected_recovered", ORANGE),
    ("reset", VERMILLION),
    ("unanswered", PURPLE),
    ("failed", INK),
];
/// Colour of an outcome label the charts do not know (a newer tracker): still drawn.
const OTHER_OUTCOME: RGBColor = SKY;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// Plotters' chart context (its name clashes with ours).
type Plot<'a> =
    plotters::chart::ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;
type DrawResult<T> = Result<T, Box<dyn Error>>;

/// All charts, deterministic (same data → same bytes).
pub fn render_charts(
    timeline: &TimelineTable,
    sample: &ChartSample,
    timestamps: &TimestampSample,
    context: &ChartContext,
) -> Vec<Chart> {
    let sources = busiest_sources(context);
    let start = format_utc_ms(context.capture_start_ns);
    let mut charts = Vec::new();
    if sources.is_empty() {
        // Keep one port-reuse chart, so the report's set of charts does not depend on data.
        charts.push(Chart::empty(
            "port-reuse.svg",
            "Port reuse: source port over time",
            "no source to show",
        ));
    }
    for (source, marks) in sources.iter().zip(&sample.port_reuse) {
        charts.push(port_reuse(sample, marks, &start, source));
    }
    charts.push(time_wait_occupancy(timeline, context, &start, &sources));
    charts.push(rates(timeline, context, &start));
    charts.push(handshake_latency(sample));
    charts.push(reuse_interval(sample, context, &sources));
    charts.push(syn_timestamps(timestamps, &start));
    charts
}

/// The colliding SYNs' TSval and the `ts_recent` of the TIME_WAIT each met, over time, from
/// a deterministic sample of the collisions (exact counts).
pub struct TimestampSample {
    /// SYN TSval, by collision.
    syn: HashSample,
    /// The TIME_WAIT's `ts_recent`.
    recent: HashSample,
    /// Of the SYNs, those PAWS refused.
    paws: HashSample,
    /// Collisions without a TSval on their SYN.
    without: u64,
}

impl Default for TimestampSample {
    fn default() -> Self {
        TimestampSample {
            syn: HashSample::new(),
            recent: HashSample::new(),
            paws: HashSample::new(),
            without: 0,
        }
    }
}

impl TimestampSample {
    /// Adds collision `uid`, its first SYN `x` seconds after the capture's start.
    pub fn add(
        &mut self,
        uid: u64,
        x: f64,
        syn_tsval: Option<u32>,
        ts_recent: Option<u32>,
        paws: bool,
    ) {
        let Some(tsval) = syn_tsval else {
            self.without += 1;
            return;
        };
        // In millions of ticks: a 32-bit TSval has ten digits, too wide for an axis label.
        let mark = |y: u32| Mark {
            x,
            y: f64::from(y) / 1e6,
            uid,
        };
        self.syn.add(mark(tsval));
        if paws {
            self.paws.add(mark(tsval));
        }
        if let Some(recent) = ts_recent {
            self.recent.add(mark(recent));
        }
    }
}

/// Colliding SYNs' TSval against the `ts_recent` they met: PAWS refuses a SYN whose TSval is
/// older (RFC 7323 section 5), so a clock that went back shows as marks below the grey ones.
fn syn_timestamps(sample: &TimestampSample, start: &str) -> Chart {
    const FILE: &str = "syn-timestamps.svg";
    let title = "TCP timestamps of colliding SYNs vs the TIME_WAIT they met";
    if sample.syn.count == 0 {
        let why = if sample.without > 0 {
            "no TCP timestamps on the colliding SYNs"
        } else {
            "no collision"
        };
        return Chart::empty(FILE, title, why);
    }
    let marks = || sample.syn.marks.iter().chain(&sample.recent.marks);
    let x = Span::of(marks().map(|m| m.x));
    let y = Span::of(marks().map(|m| m.y));
    let mut subtitle = format!(
        "{} colliding SYNs with TSval, {} refused by PAWS",
        sample.syn.count, sample.paws.count
    );
    if sample.without > 0 {
        subtitle.push_str(&format!("; {} without timestamps", sample.without));
    }
    let svg = render(title, &subtitle, |area| {
        let mut chart = cartesian(area, &x.padded(0.02), &y.padded(0.05))?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "TSval (millions of ticks)",
            &|v| tick(*v, x.width()),
            &|v| tick(*v, y.width().max(1e-3)),
            12,
        )?;
        let mut legend = Vec::new();
        let series = [
            (&sample.recent, GREY, "ts_recent of the TIME_WAIT met"),
            (&sample.syn, BLUE, "SYN TSval"),
            (
                &sample.paws,
                VERMILLION,
                "SYN TSval refused by PAWS (older)",
            ),
        ];
        for (marks, colour, label) in series {
            if marks.count == 0 {
                continue;
            }
            let (k, shown) = thin(&chart, marks, COLLISION_CELL, COLLISION_MARKS_MAX);
            chart.draw_series(
                shown
                    .iter()
                    .map(|m| Circle::new((m.x, m.y), 2, colour.filled())),
            )?;
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
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

/// What the charts need of the connections, gathered chunk by chunk in bounded memory: for
/// each busy source a deterministic sample of its connections (the port-reuse charts), and
/// histograms of handshake latency and reuse interval (exact counts; medians within 0.8%).
pub struct ChartSample {
    capture_start_ns: i64,
    /// Seconds since the capture start of every connection: the port-reuse charts' x range,
    /// the same for every source so that the charts line up.
    x: Span,
    /// Connections seen.
    connections: u64,
    /// Per source of [`busiest_sources`], in its order.
    port_reuse: Vec<PortReuseSample>,
    /// Clean, then collided connections.
    latency: [Latencies; 2],
    /// Per source of [`busiest_sources`]: reuse intervals.
    reuse: Vec<ReuseIntervals>,
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
            reuse: sources.iter().map(|_| ReuseIntervals::new()).collect(),
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
            if let Some(interval) = table.reuse_interval_s.get(row).copied().flatten() {
                self.reuse[s].add(interval);
            }
        }
    }
}

/// The first [`MAX_SOURCES`] distinct sources of the context (those of [`ChartSample::new`]).
fn busiest_sources(context: &ChartContext) -> Vec<ChartSource> {
    let mut seen = HashSet::new();
    context
        .sources
        .iter()
        .filter(|source| seen.insert(source.name.as_str()))
        .take(MAX_SOURCES)
        .cloned()
        .collect()
}

impl Chart {
    fn new(file_name: &str, title: String, svg: String) -> Chart {
        Chart {
            file_name: file_name.to_string(),
            title,
            svg,
        }
    }

    /// A chart that says why there is nothing to draw.
    fn empty(file_name: &str, title: &str, why: &str) -> Chart {
        let svg = render(title, "", |plot| {
            no_data(plot, why)?;
            Ok(Drawn::default())
        });
        Chart::new(file_name, title.to_string(), svg)
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Port reuse
// ---------------------------------------------------------------------------------------------

/// A mark to draw: position and the connection's uid (for the deterministic sample).
#[derive(Clone, Copy)]
struct Mark {
    x: f64,
    y: f64,
    uid: u64,
}

/// Marks kept by a hash of their uid: those whose hash is at most a threshold that halves
/// whenever more than [`SAMPLED_MARKS_MAX`] are kept. Whatever the order the marks come in,
/// the kept set is exactly "hash ≤ threshold": a uniform, deterministic sample of
/// 1 in 2^halvings, and every count stays exact.
#[derive(Clone)]
struct HashSample {
    threshold: u64,
    marks: Vec<Mark>,
    count: u64,
}

impl HashSample {
    fn new() -> HashSample {
        HashSample {
            threshold: u64::MAX,
            marks: Vec::new(),
            count: 0,
        }
    }

    fn add(&mut self, mark: Mark) {
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

/// One source's connections for its port-reuse chart.
struct PortReuseSample {
    source: String,
    plain: HashSample,
    /// Per slot of [`OUTCOMES`], then one for outcomes the charts do not know.
    collided: Vec<HashSample>,
    other_outcomes: BTreeMap<String, u64>,
    ports: Span,
}

impl PortReuseSample {
    fn new(source: String) -> PortReuseSample {
        PortReuseSample {
            source,
            plain: HashSample::new(),
            collided: vec![HashSample::new(); OUTCOMES.len() + 1],
            other_outcomes: BTreeMap::new(),
            ports: Span::default(),
        }
    }

    fn add(&mut self, mark: Mark, collision: Option<&str>) {
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
fn port_reuse(
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

/// Index of an outcome label in [`OUTCOMES`].
fn outcome_index(label: &str) -> Option<usize> {
    OUTCOMES.iter().position(|(name, _)| *name == label)
}

fn outcome_colour(slot: usize) -> RGBColor {
    OUTCOMES.get(slot).map_or(OTHER_OUTCOME, |(_, c)| *c)
}

/// How many marks remain once those on the same `cell`-pixel square are merged.
fn thinned_count(chart: &Plot<'_>, sample: &HashSample, cell: i32) -> usize {
    thin(chart, sample, cell, usize::MAX).1.len()
}

/// Deterministic down-sampling: keeps the marks whose uid hash is in the lowest 1 in `k` (not
/// every k-th: a balancer cycling L ports would alias into flat lines when L is a multiple
/// of k), and merges marks that fall on the same `cell`-pixel square (drawing one over the
/// other changes nothing). `k` starts at the sample's own rate (the same rule: a lower hash
/// threshold) and grows until at most `cap` marks remain.
fn thin(chart: &Plot<'_>, sample: &HashSample, cell: i32, cap: usize) -> (u64, Vec<Mark>) {
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
fn share_budget(wanted: &[usize], cap: usize) -> Vec<usize> {
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
fn mix(uid: u64) -> u64 {
    let mut z = uid.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// 2. TIME_WAIT occupancy, 3. rates
// ---------------------------------------------------------------------------------------------

/// Seconds of the timeline merged into one point, so a long capture stays readable.
struct Buckets {
    first: i64,
    last: i64,
    width: i64,
}

impl Buckets {
    fn new(first: i64, last: i64) -> Buckets {
        let span = last.saturating_sub(first).saturating_add(1).max(1);
        let needed = ceil_div(span, MAX_TIMELINE_POINTS);
        // Round widths people can read in a subtitle.
        let width = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]
            .into_iter()
            .find(|w| *w >= needed)
            .unwrap_or_else(|| ceil_div(needed, 3600).saturating_mul(3600));
        Buckets { first, last, width }
    }

    fn count(&self) -> usize {
        let span = self
            .last
            .saturating_sub(self.first)
            .saturating_add(1)
            .max(1);
        ceil_div(span, self.width) as usize
    }

    /// The bucket of `second`, if it is in the timeline's range.
    fn index(&self, second: i64) -> Option<usize> {
        if !(self.first..=self.last).contains(&second) {
            return None;
        }
        let i = (second.saturating_sub(self.first) / self.width) as usize;
        (i < self.count()).then_some(i)
    }

    /// First second of bucket `i`, and how many of its seconds the timeline covers.
    fn bounds(&self, i: usize) -> (i64, i64) {
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
fn timeline_seconds(timeline: &TimelineTable) -> Option<(i64, i64)> {
    let seconds = &timeline.second;
    Some((*seconds.iter().min()?, *seconds.iter().max()?))
}

/// Tuples in TIME_WAIT per source over time, with the line (the 4-tuples it used) at which
/// every new connection of the source must land on a tuple still in TIME_WAIT.
fn time_wait_occupancy(
    t: &TimelineTable,
    context: &ChartContext,
    start: &str,
    sources: &[ChartSource],
) -> Chart {
    const FILE: &str = "time-wait-occupancy.svg";
    let title = "TIME_WAIT occupancy: tuples held per source";
    let Some((first, last)) = timeline_seconds(t) else {
        return Chart::empty(FILE, title, "no timeline (no connection)");
    };
    if sources.is_empty() {
        return Chart::empty(FILE, title, "no source to show");
    }
    let buckets = Buckets::new(first, last);
    // Peak per bucket: what matters against the exhaustion line is how close it came.
    let mut peaks: Vec<Vec<Option<u64>>> = vec![vec![None; buckets.count()]; sources.len()];
    for ((second, orig_h), held) in t.second.iter().zip(&t.orig_h).zip(&t.time_wait_tuples) {
        let source = sources.iter().position(|s| *s.name == **orig_h);
        if let (Some(s), Some(i)) = (source, buckets.index(*second)) {
            let slot = &mut peaks[s][i];
            *slot = Some(slot.unwrap_or(0).max(*held));
        }
    }
    // Held "at the end of the second": plot at the end of each bucket.
    let series: Vec<Vec<(f64, f64)>> = peaks
        .iter()
        .map(|peaks| {
            peaks
                .iter()
                .enumerate()
                .filter_map(|(i, held)| {
                    let (second, covered) = buckets.bounds(i);
                    let end_ns = second.saturating_add(covered).saturating_mul(1_000_000_000);
                    Some((
                        seconds_since(end_ns, context.capture_start_ns),
                        (*held)? as f64,
                    ))
                })
                .collect()
        })
        .collect();
    // Every new connection of a source must meet a TIME_WAIT once all the 4-tuples it cycles
    // through are held (the capacity model's tuples in use).
    let capacity: Vec<u64> = sources.iter().map(|s| s.tuples).collect();
    let x = Span::of(series.iter().flatten().map(|p| p.0));
    let top = series
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(capacity.iter().map(|c| *c as f64))
        .fold(1.0, f64::max);
    let y = Span::new(0.0, top * 1.12);
    let dashed = "dashed: the 4-tuples the source used";
    let mut subtitle = if buckets.width > 1 {
        format!(
            "peak per {} s of tuples held in TIME_WAIT (by either end); {dashed}",
            buckets.width
        )
    } else {
        format!("tuples held in TIME_WAIT (by either end) at the end of each second; {dashed}")
    };
    // After the capture, each TIME_WAIT is drawn running to its end, as if no SYN took its
    // tuple over: an extrapolation, shaded from the start of the first second not observed.
    let extrapolated_from = t
        .second
        .iter()
        .zip(&t.observed)
        .filter(|(_, observed)| !**observed)
        .map(|(second, _)| *second)
        .min()
        .map(|second| {
            seconds_since(
                second.saturating_mul(1_000_000_000),
                context.capture_start_ns,
            )
        })
        .filter(|from| x.end > *from);
    if extrapolated_from.is_some() {
        subtitle.push_str("; shaded: extrapolated");
    }
    // Sources with the same capacity share one dashed line and one label.
    let mut lines: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, c) in capacity.iter().enumerate() {
        lines.entry(*c).or_default().push(i);
    }
    let svg = render(title, &subtitle, |area| {
        let x = x.padded(0.01);
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "tuples in TIME_WAIT",
            &|v| tick(*v, x.width()),
            &|v| tick(*v, y.width()),
            12,
        )?;
        let mut legend = Vec::new();
        if let Some(from) = extrapolated_from {
            let from = from.max(x.start);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(from, y.start), (x.end, y.end)],
                GRID.filled(),
            )))?;
            chart.draw_series(std::iter::once(Text::new(
                "after the capture: extrapolated",
                (from, y.end),
                text_style(15, MUTED).pos(Pos::new(HPos::Left, VPos::Top)),
            )))?;
        }
        for (i, (source, points)) in sources.iter().zip(&series).enumerate() {
            let colour = SERIES[i % SERIES.len()];
            chart.draw_series(line(points, colour))?;
            legend.push(LegendEntry::new(
                Marker::Line(colour),
                display_text(&source.name),
            ));
        }
        for (tuples, members) in &lines {
            let colour = match members.as_slice() {
                [only] => SERIES[only % SERIES.len()],
                _ => MUTED,
            };
            let level = *tuples as f64;
            chart.draw_series(DashedLineSeries::new(
                [(x.start, level), (x.end, level)],
                8,
                5,
                colour.stroke_width(2),
            ))?;
            let names: Vec<String> = members
                .iter()
                .map(|i| display_text(&sources[*i].name))
                .collect();
            chart.draw_series(std::iter::once(Text::new(
                format!("exhaustion line: {tuples} tuples ({})", names.join(", ")),
                (x.end, level),
                text_style(15, colour).pos(Pos::new(HPos::Right, VPos::Bottom)),
            )))?;
        }
        legend.push(LegendEntry::new(
            Marker::Dashed(MUTED),
            "exhaustion line: 4-tuples used".to_string(),
        ));
        if extrapolated_from.is_some() {
            legend.push(LegendEntry::new(
                Marker::Bar(GRID),
                "after the capture: extrapolated".to_string(),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

/// New connections and collisions per second, all sources together.
fn rates(t: &TimelineTable, context: &ChartContext, start: &str) -> Chart {
    const FILE: &str = "rates.svg";
    let title = "Connection and collision rates";
    let Some((first, last)) = timeline_seconds(t) else {
        return Chart::empty(FILE, title, "no timeline (no connection)");
    };
    // The timeline runs on while TIME_WAITs drain; rates are drawn where there is traffic.
    let active = || {
        t.second
            .iter()
            .zip(&t.new_connections)
            .zip(&t.collisions)
            .filter(|((_, new), collisions)| **new > 0 || **collisions > 0)
            .map(|((second, _), _)| *second)
    };
    let (first, last) = match (active().min(), active().max()) {
        (Some(first), Some(last)) => (first, last),
        _ => (first, last),
    };
    let buckets = Buckets::new(first, last);
    // (new connections, collisions, refused SYNs: rejected, reset, unanswered or failed).
    let mut sums = vec![(0u64, 0u64, 0u64); buckets.count()];
    for (row, second) in t.second.iter().enumerate() {
        let Some(i) = buckets.index(*second) else {
            continue;
        };
        let refused = [&t.rejected_recovered, &t.reset, &t.unanswered, &t.failed]
            .iter()
            .map(|column| column.get(row).copied().unwrap_or(0))
            .fold(0u64, u64::saturating_add);
        let sum = &mut sums[i];
        sum.0 = sum.0.saturating_add(t.new_connections[row]);
        sum.1 = sum.1.saturating_add(t.collisions[row]);
        sum.2 = sum.2.saturating_add(refused);
    }
    // Mean per second over each bucket, plotted at its middle.
    let x_of = |second: f64| (second * 1e9 - context.capture_start_ns as f64) / 1e9;
    let (mut new_rate, mut collision_rate, mut refused_rate) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (new, collisions, refused)) in sums.iter().enumerate() {
        let (second, covered) = buckets.bounds(i);
        let x = x_of(second as f64 + covered as f64 / 2.0);
        new_rate.push((x, *new as f64 / covered as f64));
        collision_rate.push((x, *collisions as f64 / covered as f64));
        refused_rate.push((x, *refused as f64 / covered as f64));
    }
    // From the start of the first second to the end of the last, computed as the points are
    // (plotters overflows on points far outside its range).
    let x = Span::new(x_of(first as f64), x_of(last as f64 + 1.0)).padded(0.0);
    let top = new_rate
        .iter()
        .chain(&collision_rate)
        .map(|p| p.1)
        .fold(1.0, f64::max);
    let y = Span::new(0.0, top * 1.1);
    let total_new = sums.iter().fold(0u64, |n, s| n.saturating_add(s.0));
    let total_collisions = sums.iter().fold(0u64, |n, s| n.saturating_add(s.1));
    let total_refused = sums.iter().fold(0u64, |n, s| n.saturating_add(s.2));
    let per = if buckets.width > 1 {
        format!("mean per second over {} s", buckets.width)
    } else {
        "per second".to_string()
    };
    let subtitle = format!(
        "{per}, all sources: {total_new} connections, {total_collisions} collisions, {total_refused} refused"
    );
    let svg = render(title, &subtitle, |area| {
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            &format!("seconds since {start}"),
            "per second",
            &|v| tick(*v, x.width()),
            &|v| tick(*v, y.width()),
            12,
        )?;
        chart.draw_series(line(&new_rate, BLUE))?;
        chart.draw_series(line(&collision_rate, ORANGE))?;
        let mut legend = vec![
            LegendEntry::new(Marker::Line(BLUE), "new connections/s".to_string()),
            LegendEntry::new(Marker::Line(ORANGE), "collisions/s".to_string()),
        ];
        // Refused SYNs (rejected, reset, unanswered, failed): what collisions cost.
        if total_refused > 0 {
            chart.draw_series(line(&refused_rate, VERMILLION))?;
            legend.push(LegendEntry::new(
                Marker::Line(VERMILLION),
                "refused SYNs/s (rejected, reset, unanswered, failed)".to_string(),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

/// A polyline, with dots when the points are few enough to be read one by one (a single
/// point draws no line at all).
fn line<DB: DrawingBackend>(points: &[(f64, f64)], colour: RGBColor) -> LineSeries<DB, (f64, f64)> {
    let series = LineSeries::new(points.iter().copied(), colour.stroke_width(2));
    if points.len() <= 60 {
        series.point_size(2)
    } else {
        series
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Handshake latency
// ---------------------------------------------------------------------------------------------

/// Distribution of first SYN → SYN-ACK, clean against collided connections, each as a share
/// of its own group so the two shapes compare however unequal the counts.
fn handshake_latency(sample: &ChartSample) -> Chart {
    const FILE: &str = "handshake-latency.svg";
    let title = "Handshake latency: clean vs collided connections";
    let groups = &sample.latency;
    if groups.iter().all(|g| g.count == 0) {
        let why = if sample.connections == 0 {
            "no connection"
        } else {
            "no connection with a SYN-ACK"
        };
        return Chart::empty(FILE, title, why);
    }
    let mut notes = Vec::new();
    let clamped: usize = groups.iter().map(|g| g.clamped).sum();
    if clamped > 0 {
        notes.push(format!(
            "{clamped} outside 0.01 ms–100 s counted in the end bins"
        ));
    }
    let no_syn_ack = groups[1].missing;
    if no_syn_ack > 0 {
        notes.push(format!(
            "{no_syn_ack} collided connections got no SYN-ACK (not shown)"
        ));
    }
    let mut subtitle = "share of each group's connections per bin (4 bins per decade)".to_string();
    for note in notes {
        subtitle.push_str("; ");
        subtitle.push_str(&note);
    }
    let top = groups.iter().flat_map(|g| g.shares()).fold(1.0, f64::max);
    // The axis runs over the decades that hold latencies (at least two), not the whole
    // 10 µs–100 s range the bins cover: a LAN's handshakes are not squeezed into one end.
    let step = 1.0 / LATENCY_BINS_PER_DECADE as f64;
    let occupied = groups.iter().flat_map(|g| {
        g.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, _)| LATENCY_MIN_LOG10_MS + step * b as f64)
    });
    let held = Span::of(occupied.flat_map(|left| [left, left + step]));
    let (start, end) = if held.start <= held.end {
        (held.start.floor(), held.end.ceil())
    } else {
        (LATENCY_MIN_LOG10_MS, LATENCY_MAX_LOG10_MS)
    };
    let x = Span::new(
        start,
        end.max(start + 2.0)
            .min(LATENCY_MAX_LOG10_MS)
            .max(start + 1.0),
    );
    let y = Span::new(0.0, (top * 1.1).min(100.0));
    let svg = render(title, &subtitle, |area| {
        // Plotted in log10(ms) on a linear axis: the bins and ticks land exactly on decades.
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            "first SYN → SYN-ACK (log scale)",
            "share of group (%)",
            &|v| decade_label(*v),
            &|v| tick(*v, y.width()),
            8,
        )?;
        let step = 1.0 / LATENCY_BINS_PER_DECADE as f64;
        let mut legend = Vec::new();
        let names = ["clean", "collided"];
        let colours = [BLUE, VERMILLION];
        for (g, group) in groups.iter().enumerate() {
            if group.count == 0 {
                continue;
            }
            // Side by side within each bin: clean on the left half, collided on the right.
            let offset = step * (0.08 + 0.42 * g as f64);
            chart.draw_series(group.shares().enumerate().filter(|(_, s)| *s > 0.0).map(
                |(i, share)| {
                    let left = LATENCY_MIN_LOG10_MS + step * i as f64 + offset;
                    Rectangle::new(
                        [(left, 0.0), (left + step * 0.42, share)],
                        colours[g].filled(),
                    )
                },
            ))?;
            legend.push(LegendEntry::new(
                Marker::Bar(colours[g]),
                format!(
                    "{} (n={}, p50\u{a0}≈\u{a0}{})",
                    names[g],
                    group.count,
                    format_ms(group.median())
                ),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

/// Handshake latencies of one group, binned by decade quarters, with a finer histogram for
/// the median.
struct Latencies {
    counts: Vec<u64>,
    count: u64,
    /// In nanoseconds, for the median (within 0.8%).
    fine: LogHistogram,
    clamped: usize,
    missing: usize,
}

impl Latencies {
    fn new(bins: usize) -> Latencies {
        Latencies {
            counts: vec![0; bins],
            count: 0,
            fine: LogHistogram::new(LogHistogram::FINE),
            clamped: 0,
            missing: 0,
        }
    }

    fn add(&mut self, latency_ms: Option<f64>) {
        let Some(ms) = latency_ms.filter(|v| !v.is_nan()) else {
            self.missing += 1;
            return;
        };
        let bins = self.counts.len();
        let position = (ms.max(f64::MIN_POSITIVE).log10() - LATENCY_MIN_LOG10_MS)
            * LATENCY_BINS_PER_DECADE as f64;
        if !(0.0..bins as f64).contains(&position) {
            self.clamped += 1;
        }
        let bin = (position.floor().max(0.0) as usize).min(bins.saturating_sub(1));
        self.counts[bin] += 1;
        self.count += 1;
        // Saturating: a latency beyond i64 nanoseconds (292 years) is a broken clock.
        self.fine.add((ms * 1e6).clamp(0.0, i64::MAX as f64) as i64);
    }

    fn shares(&self) -> impl Iterator<Item = f64> + '_ {
        let n = self.count.max(1) as f64;
        self.counts.iter().map(move |c| *c as f64 * 100.0 / n)
    }

    fn median(&self) -> f64 {
        self.fine
            .percentile(0.5)
            .map_or(f64::NAN, |ns| ns as f64 / 1e6)
    }
}

/// Tick label for log10(ms): a decade in the unit people say.
fn decade_label(log10_ms: f64) -> String {
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

/// Milliseconds, three significant digits, in ms or s.
fn format_ms(ms: f64) -> String {
    if !ms.is_finite() {
        return "n/a".to_string();
    }
    // A no-break space keeps the unit with its number when the legend wraps.
    if ms >= 1000.0 {
        format!("{}\u{a0}s", significant(ms / 1000.0))
    } else {
        format!("{}\u{a0}ms", significant(ms))
    }
}

fn significant(v: f64) -> String {
    let decimals = if v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else if v.abs() >= 1.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

// ---------------------------------------------------------------------------------------------
// 5. Reuse interval
// ---------------------------------------------------------------------------------------------

/// One source's reuse intervals, binned by fifths of a decade of seconds.
struct ReuseIntervals {
    counts: Vec<u64>,
    count: u64,
    /// At or below the first bin's lower edge (0.1 ms; an interval of 0 included).
    below: u64,
    /// Beyond 10^9 s: a broken clock.
    beyond: u64,
}

impl ReuseIntervals {
    fn new() -> ReuseIntervals {
        ReuseIntervals {
            counts: vec![
                0;
                ((REUSE_MAX_LOG10_S - REUSE_MIN_LOG10_S) as usize) * REUSE_BINS_PER_DECADE
            ],
            count: 0,
            below: 0,
            beyond: 0,
        }
    }

    fn add(&mut self, interval_s: f64) {
        if interval_s.is_nan() {
            return;
        }
        self.count += 1;
        let position =
            (interval_s.max(0.0).log10() - REUSE_MIN_LOG10_S) * REUSE_BINS_PER_DECADE as f64;
        if position < 0.0 {
            self.below += 1;
            self.counts[0] += 1;
        } else if position >= self.counts.len() as f64 {
            self.beyond += 1;
        } else {
            self.counts[position as usize] += 1;
        }
    }
}

/// How soon tuples were used again, per source, against the TIME_WAIT duration, on a log axis
/// (a reuse 10 ms after the close and one 10 minutes after both show): every reuse left of the
/// line met a tuple the closing end may still hold.
fn reuse_interval(sample: &ChartSample, context: &ChartContext, sources: &[ChartSource]) -> Chart {
    const FILE: &str = "reuse-interval.svg";
    let title = "Port reuse interval vs TIME_WAIT";
    let histograms = &sample.reuse;
    let all: u64 = histograms.iter().map(|h| h.count).sum();
    if all == 0 {
        return Chart::empty(FILE, title, "no port reuse");
    }
    let step = 1.0 / REUSE_BINS_PER_DECADE as f64;
    let bin_edge = |b: usize| REUSE_MIN_LOG10_S + step * b as f64;
    let time_wait = Some(context.time_wait_s)
        .filter(|v| *v > 0.0 && v.log10() < REUSE_MAX_LOG10_S)
        .map(f64::log10);
    // The axis runs over the bins that hold reuses, and the TIME_WAIT line, whole decades.
    let occupied = histograms.iter().flat_map(|h| {
        h.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, _)| b)
    });
    let mut range = Span::of(occupied.flat_map(|b| [bin_edge(b), bin_edge(b + 1)]));
    if let Some(tw) = time_wait {
        // Half a decade past the line: room for its label.
        range.add(tw + 0.5);
    }
    let x = Span::new(
        range.start.floor(),
        range.end.ceil().max(range.start.floor() + 1.0),
    );
    let top = histograms
        .iter()
        .flat_map(|h| h.counts.iter())
        .copied()
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y = Span::new(0.0, top * 1.12);
    let below: u64 = histograms.iter().map(|h| h.below).sum();
    let beyond: u64 = histograms.iter().map(|h| h.beyond).sum();
    let mut subtitle = format!(
        "{all} reuses of a tuple, time since its previous connection ended; 5 bins per decade"
    );
    if below > 0 {
        subtitle.push_str(&format!("; {below} at or under 0.1 ms in the first bin"));
    }
    if beyond > 0 {
        subtitle.push_str(&format!("; {beyond} after 10^9 s not shown"));
    }
    let svg = render(title, &subtitle, |area| {
        // Plotted in log10(s) on a linear axis: the bins and ticks land exactly on decades.
        let mut chart = cartesian(area, &x, &y)?;
        axes(
            &mut chart,
            "reuse interval (log scale)",
            "reuses per bin",
            &|v| decade_label(*v + 3.0),
            &|v| tick(*v, y.width()),
            12,
        )?;
        let mut legend = Vec::new();
        for (i, (source, histogram)) in sources.iter().zip(histograms).enumerate() {
            if histogram.count == 0 {
                continue;
            }
            let colour = SERIES[i % SERIES.len()];
            // Translucent bars under a full-colour outline: up to four series overlap and
            // each stays readable.
            chart.draw_series(
                histogram
                    .counts
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(b, n)| {
                        Rectangle::new(
                            [(bin_edge(b), 0.0), (bin_edge(b + 1), *n as f64)],
                            colour.mix(0.3).filled(),
                        )
                    }),
            )?;
            let mut outline = Vec::new();
            for (b, n) in histogram.counts.iter().enumerate() {
                let (left, right) = (bin_edge(b), bin_edge(b + 1));
                if right <= x.start || left >= x.end {
                    continue;
                }
                outline.push((left, *n as f64));
                outline.push((right, *n as f64));
            }
            chart.draw_series(std::iter::once(PathElement::new(
                outline,
                colour.stroke_width(2),
            )))?;
            legend.push(LegendEntry::new(
                Marker::Bar(colour),
                format!("{} ({})", display_text(&source.name), histogram.count),
            ));
        }
        if let Some(tw) = time_wait {
            chart.draw_series(DashedLineSeries::new(
                [(tw, 0.0), (tw, y.end)],
                8,
                5,
                INK.stroke_width(2),
            ))?;
            // A few pixels right of the line, so that it does not cross the text.
            chart.draw_series(std::iter::once(
                EmptyElement::at((tw, y.end))
                    + Text::new(
                        format!("TIME_WAIT {} s", trim_number(context.time_wait_s, 3)),
                        (6, 2),
                        text_style(15, INK),
                    ),
            ))?;
            legend.push(LegendEntry::new(
                Marker::Dashed(INK),
                format!("TIME_WAIT ({} s)", trim_number(context.time_wait_s, 3)),
            ));
        }
        Ok(Drawn::new(legend))
    });
    Chart::new(FILE, title.to_string(), svg)
}

// ---------------------------------------------------------------------------------------------
// Frame, legend, axes
// ---------------------------------------------------------------------------------------------

/// A legend line: a marker and its text.
struct LegendEntry {
    marker: Marker,
    text: String,
}

impl LegendEntry {
    fn new(marker: Marker, text: String) -> LegendEntry {
        LegendEntry { marker, text }
    }
}

/// What a plot drew: its legend, and a note for the subtitle known only once the pixels are
/// (the port-reuse sample rate).
#[derive(Default)]
struct Drawn {
    legend: Vec<LegendEntry>,
    note: Option<String>,
}

impl Drawn {
    fn new(legend: Vec<LegendEntry>) -> Drawn {
        Drawn { legend, note: None }
    }

    fn with_note(legend: Vec<LegendEntry>, note: String) -> Drawn {
        Drawn {
            legend,
            note: Some(note),
        }
    }
}

enum Marker {
    Dot(RGBColor, u32),
    Line(RGBColor),
    Dashed(RGBColor),
    Bar(RGBColor),
}

/// Draws a chart's frame (title, subtitle, legend column) around what `plot` draws, and
/// falls back to a frame that says what went wrong: plotters reports errors rather than
/// panicking, and a report should still get an SVG.
fn render(
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

fn frame(
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
fn no_data(area: &Area<'_>, why: &str) -> DrawResult<()> {
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

/// Axis labels and a light grid at the labelled ticks only (finer lines make a scatter
/// of thousands of dots look grey).
fn axes(
    chart: &mut Plot<'_>,
    x_desc: &str,
    y_desc: &str,
    x_label: &dyn Fn(&f64) -> String,
    y_label: &dyn Fn(&f64) -> String,
    x_labels: usize,
) -> DrawResult<()> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .x_label_formatter(x_label)
        .y_label_formatter(y_label)
        .x_labels(x_labels)
        .y_labels(8)
        .label_style(label_font())
        .axis_desc_style(desc_font())
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .draw()?;
    Ok(())
}

/// Axes over finite, non-empty ranges (see [`Span`]).
fn cartesian<'a>(area: &Area<'a>, x: &Span, y: &Span) -> DrawResult<Plot<'a>> {
    Ok(ChartBuilder::on(area)
        .margin_top(8)
        .margin_right(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x.start..x.end, y.start..y.end)?)
}

fn label_font() -> TextStyle<'static> {
    text_style(15, INK)
}

fn desc_font() -> TextStyle<'static> {
    text_style(16, INK)
}

/// Plotters' sizes are 1.24 times the SVG font size: 15 gives 12 px text.
fn text_style(size: u32, colour: RGBColor) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&colour)
}

/// A data range, always finite and of positive width, so that plotters never divides by
/// zero nor loops over NaN key points.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: f64,
    end: f64,
}

impl Default for Span {
    fn default() -> Span {
        Span {
            start: f64::INFINITY,
            end: f64::NEG_INFINITY,
        }
    }
}

impl Span {
    fn new(start: f64, end: f64) -> Span {
        let mut span = Span::default();
        span.add(start);
        span.add(end);
        span
    }

    fn of(values: impl Iterator<Item = f64>) -> Span {
        let mut span = Span::default();
        values.for_each(|v| span.add(v));
        span
    }

    fn add(&mut self, v: f64) {
        if v.is_finite() {
            self.start = self.start.min(v);
            self.end = self.end.max(v);
        }
    }

    /// The range widened by `fraction` of its width on each side; an empty range becomes
    /// 0..1 and a single value ±0.5 around it (more where 0.5 is below the precision of
    /// f64: the width must stay positive).
    fn padded(&self, fraction: f64) -> Span {
        if self.start > self.end {
            return Span {
                start: 0.0,
                end: 1.0,
            };
        }
        let pad = if self.end - self.start < 1e-9 {
            0.5
        } else {
            (self.end - self.start) * fraction
        };
        let (start, end) = (self.start - pad, self.end + pad);
        if end > start {
            Span { start, end }
        } else {
            let pad = self.start.abs().max(self.end.abs()) * 1e-6;
            Span {
                start: self.start - pad,
                end: self.end + pad,
            }
        }
    }

    fn width(&self) -> f64 {
        let p = self.padded(0.0);
        p.end - p.start
    }
}

/// Tick label with as many decimals as the axis needs, trailing zeros dropped.
fn tick(v: f64, span: f64) -> String {
    let step = span / 10.0;
    let decimals = if step.is_finite() && step > 0.0 {
        (-step.log10().floor()).clamp(0.0, 9.0) as usize + 1
    } else {
        0
    };
    trim_number(v, decimals)
}

/// `v` with at most `decimals` decimals, trailing zeros and a negative zero dropped.
fn trim_number(v: f64, decimals: usize) -> String {
    let mut s = format!("{v:.decimals$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    if s == "-0" { "0".to_string() } else { s }
}

/// Seconds from the capture start to `ts_ns`, exact in integers before the division.
fn seconds_since(ts_ns: i64, start_ns: i64) -> f64 {
    ts_ns.saturating_sub(start_ns) as f64 / 1e9
}

/// Capture-derived text as it may appear in the SVG: XML 1.0 forbids most control
/// characters even when escaped (plotters escapes `<>&"'`).
fn display_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

/// A source as a file name: IPv6's `:` and anything else outside `[A-Za-z0-9.-]` become `_`.
fn file_safe(name: &str) -> String {
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

/// `YYYY-MM-DD HH:MM:SS.mmm UTC` from ns since the epoch.
fn format_utc_ms(ts_ns: i64) -> String {
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
    use crate::tables::Tables;
    use crate::tables::Text;

    /// The charts of tables held in memory.
    fn charts_of(t: &Tables, context: &ChartContext) -> Vec<Chart> {
        render_charts(
            &t.timeline,
            &ChartSample::of(&t.connections, context),
            &TimestampSample::default(),
            context,
        )
    }

    /// 2025-11-24 16:00:00 UTC.
    const START_NS: i64 = 1_764_000_000_000_000_000;

    /// Builds tables by hand: `n` connections from each source at `rate` per second, cycling
    /// through `ports` source ports (a balancer's sawtooth), every `collide_every`-th one a
    /// collision with the given outcomes in turn; only the columns the charts read.
    fn tables(
        sources: &[&str],
        n: usize,
        rate: f64,
        ports: u32,
        collide_every: usize,
        outcomes: &[&str],
    ) -> Tables {
        let mut t = Tables::default();
        let mut per_second: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
        let mut uid = 0u64;
        for (s, source) in sources.iter().enumerate() {
            for i in 0..n {
                let ts = START_NS + (i as f64 / rate * 1e9) as i64 + s as i64 * 1_000;
                let collision = (collide_every > 0 && i % collide_every == collide_every - 1)
                    .then(|| Text::from(outcomes[(i / collide_every) % outcomes.len()]));
                let c = &mut t.connections;
                c.uid.push(uid);
                c.ts_ns.push(ts);
                c.orig_h.push(Text::from(*source));
                c.orig_p.push(40_000 + (i as u32 % ports));
                c.syn_to_syn_ack_ms.push(Some(if collision.is_some() {
                    1_000.0 + (i % 7) as f64
                } else {
                    0.05 + (i % 5) as f64 * 0.01
                }));
                c.reuse_interval_s
                    .push((i as u32 >= ports).then(|| f64::from(ports) / rate - 0.01));
                let cell = per_second
                    .entry((source.to_string(), ts.div_euclid(1_000_000_000)))
                    .or_default();
                cell.0 += 1;
                cell.1 += u64::from(collision.is_some());
                c.collision.push(collision);
                uid += 1;
            }
        }
        for ((source, second), (new, collisions)) in per_second {
            let tl = &mut t.timeline;
            tl.second.push(second);
            tl.orig_h.push(source.into());
            tl.new_connections.push(new);
            tl.collisions.push(collisions);
            tl.time_wait_tuples
                .push(((second - START_NS / 1_000_000_000 + 1) as u64 * new).min(180));
        }
        t
    }

    fn source(name: &str, ports: u64, tuples: u64) -> ChartSource {
        ChartSource {
            name: name.to_string(),
            ports,
            tuples,
        }
    }

    fn context(sources: &[&str], ports: u64) -> ChartContext {
        ChartContext {
            capture_start_ns: START_NS,
            time_wait_s: 60.0,
            sources: sources.iter().map(|s| source(s, ports, ports)).collect(),
        }
    }

    /// Parses the SVG (panicking with the parser's message if it is not XML) and returns its
    /// text elements.
    fn texts(chart: &Chart) -> Vec<String> {
        let doc = roxmltree::Document::parse(&chart.svg)
            .unwrap_or_else(|e| panic!("{} is not XML: {e}", chart.file_name));
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        doc.descendants()
            .filter(|n| n.has_tag_name("text") || n.has_tag_name("title"))
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_string())
            .collect()
    }

    fn chart<'a>(charts: &'a [Chart], file_name: &str) -> &'a Chart {
        charts
            .iter()
            .find(|c| c.file_name == file_name)
            .unwrap_or_else(|| panic!("no {file_name}"))
    }

    /// Whether the chart says `needle`, legend lines joined as they are read.
    fn has_text(chart: &Chart, needle: &str) -> bool {
        texts(chart).join(" ").contains(needle)
    }

    #[test]
    fn one_chart_of_each_kind_with_a_port_reuse_chart_per_source() {
        let sources = ["10.0.0.1", "10.0.0.2", "2001:db8::1"];
        let charts = charts_of(
            &tables(&sources, 500, 100.0, 50, 10, &["accepted"]),
            &context(&sources, 50),
        );
        let names: Vec<&str> = charts.iter().map(|c| c.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "port-reuse-10.0.0.1.svg",
                "port-reuse-10.0.0.2.svg",
                "port-reuse-2001_db8__1.svg",
                "time-wait-occupancy.svg",
                "rates.svg",
                "handshake-latency.svg",
                "reuse-interval.svg",
                "syn-timestamps.svg",
            ]
        );
        for c in &charts {
            let doc = roxmltree::Document::parse(&c.svg).expect("well-formed SVG");
            let root = doc.root_element();
            assert_eq!(root.attribute("width"), Some("900"));
            assert_eq!(root.attribute("height"), Some("450"));
            assert!(!c.title.is_empty());
        }
    }

    #[test]
    fn at_most_four_sources_get_their_own_chart() {
        let sources = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
        let charts = charts_of(
            &tables(&sources, 50, 100.0, 20, 0, &[]),
            &context(&sources, 20),
        );
        let port_reuse = charts
            .iter()
            .filter(|c| c.file_name.starts_with("port-reuse-"))
            .count();
        assert_eq!(port_reuse, 4);
        assert!(!has_text(
            chart(&charts, "time-wait-occupancy.svg"),
            "10.0.0.5"
        ));
    }

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
    fn occupancy_chart_draws_a_line_per_source_and_the_exhaustion_line() {
        let sources = ["10.0.0.1", "10.0.0.2"];
        let charts = charts_of(
            &tables(&sources, 1_000, 150.0, 200, 5, &["accepted"]),
            &ChartContext {
                sources: vec![source("10.0.0.1", 200, 400), source("10.0.0.2", 100, 100)],
                ..context(&[], 0)
            },
        );
        let occupancy = chart(&charts, "time-wait-occupancy.svg");
        for label in [
            "10.0.0.1",
            "10.0.0.2",
            "exhaustion line: 4-tuples used",
            "exhaustion line: 400 tuples (10.0.0.1)",
            "exhaustion line: 100 tuples (10.0.0.2)",
            "tuples in TIME_WAIT",
        ] {
            assert!(has_text(occupancy, label), "no {label:?}");
        }
    }

    #[test]
    fn occupancy_after_the_capture_is_shaded_and_said_extrapolated() {
        let sources = ["10.0.0.1"];
        let mut t = tables(&sources, 1_000, 150.0, 200, 5, &["accepted"]);
        let last = *t.timeline.second.iter().max().unwrap();
        let observed = |t: &Tables| charts_of(t, &context(&sources, 200));
        t.timeline.observed = vec![true; t.timeline.second.len()];
        let all_observed = observed(&t);
        let chart_of = |charts: &[Chart]| chart(charts, "time-wait-occupancy.svg").svg.clone();
        assert!(!chart_of(&all_observed).contains("extrapolated"));
        t.timeline.observed = t.timeline.second.iter().map(|s| *s < last - 2).collect();
        let charts = observed(&t);
        let occupancy = chart(&charts, "time-wait-occupancy.svg");
        for label in ["; shaded: extrapolated", "after the capture: extrapolated"] {
            assert!(has_text(occupancy, label), "no {label:?}");
        }
    }

    #[test]
    fn rates_latency_and_reuse_interval_charts_say_what_they_show() {
        let sources = ["10.0.0.1"];
        let charts = charts_of(
            &tables(
                &sources,
                1_000,
                150.0,
                200,
                5,
                &["accepted", "rejected_recovered"],
            ),
            &context(&sources, 200),
        );
        let rates = chart(&charts, "rates.svg");
        for label in ["new connections/s", "collisions/s", "per second"] {
            assert!(has_text(rates, label), "no {label:?}");
        }
        let latency = chart(&charts, "handshake-latency.svg");
        for label in [
            "clean (n=800",
            "collided (n=200",
            "1 ms",
            "1 s",
            "(log scale)",
        ] {
            assert!(has_text(latency, label), "no {label:?}");
        }
        let reuse = chart(&charts, "reuse-interval.svg");
        // Every reuse came 200 ports ÷ 150/s − 10 ms = 1.32 s after the close: the log axis
        // runs in decades from 1 s past the TIME_WAIT line.
        for label in [
            "10.0.0.1 (800)",
            "TIME_WAIT (60 s)",
            "reuse interval (log scale)",
            "1 s",
            "100 s",
        ] {
            assert!(has_text(reuse, label), "no {label:?}");
        }
    }

    /// The latency axis fits the latencies: a LAN's 0.05–0.09 ms handshakes get the decades
    /// around them, not a 10 µs–100 s axis with everything in its first bins.
    #[test]
    fn latency_axis_covers_the_latencies_not_a_fixed_range() {
        let sources = ["10.0.0.1"];
        let charts = charts_of(
            &tables(&sources, 500, 100.0, 50, 0, &[]),
            &context(&sources, 50),
        );
        let latency = chart(&charts, "handshake-latency.svg");
        for label in ["10 µs", "100 µs", "1 ms"] {
            assert!(has_text(latency, label), "no {label:?}");
        }
        for label in ["100 ms", "1 s", "100 s"] {
            assert!(!has_text(latency, label), "{label:?} is outside the data");
        }
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
    fn same_tables_give_the_same_bytes() {
        let sources = ["10.0.0.1", "10.0.0.2"];
        let t = tables(&sources, 20_000, 300.0, 500, 3, &["accepted", "unanswered"]);
        let context = context(&sources, 500);
        let first = charts_of(&t, &context);
        let second = charts_of(&t, &context);
        assert_eq!(first.len(), second.len());
        for (a, b) in first.iter().zip(&second) {
            assert_eq!(a.file_name, b.file_name);
            assert_eq!(a.title, b.title);
            assert!(a.svg == b.svg, "{} differs", a.file_name);
        }
    }

    #[test]
    fn empty_tables_give_valid_charts_that_say_no_data() {
        for sources in [&[][..], &["10.0.0.1"][..]] {
            let charts = charts_of(&Tables::default(), &context(sources, 0));
            assert_eq!(charts.len(), 6);
            for c in &charts {
                assert!(has_text(c, "no data"), "{} has data", c.file_name);
            }
        }
    }

    #[test]
    fn odd_values_give_valid_charts() {
        let sources = ["10.0.0.1", "fe80::1\u{1}<&>"];
        let mut t = tables(&sources, 3, 1.0, 2, 2, &["accepted", "from_the_future"]);
        t.connections.syn_to_syn_ack_ms[0] = Some(f64::NAN);
        t.connections.syn_to_syn_ack_ms[1] = Some(-1.0);
        t.connections.syn_to_syn_ack_ms[2] = Some(f64::INFINITY);
        t.connections.syn_to_syn_ack_ms[3] = Some(1e12);
        t.connections.reuse_interval_s[0] = Some(f64::NAN);
        t.connections.reuse_interval_s[1] = Some(-5.0);
        t.connections.reuse_interval_s[2] = Some(1e9);
        t.connections.reuse_interval_s[3] = Some(f64::MAX);
        // Columns of unequal lengths are read as far as all of them go.
        t.connections.orig_p.pop();
        t.timeline.time_wait_tuples.clear();
        let contexts = [
            ChartContext {
                time_wait_s: f64::NAN,
                capture_start_ns: i64::MIN,
                sources: vec![
                    source("10.0.0.1", 0, 0),
                    source("10.0.0.1", 5, 5),
                    source(sources[1], u64::MAX, u64::MAX),
                ],
            },
            ChartContext {
                time_wait_s: 0.0,
                capture_start_ns: i64::MAX,
                sources: vec![source("10.0.0.1", 2, 2)],
            },
            ChartContext {
                time_wait_s: 1e300,
                ..context(&sources, 2)
            },
        ];
        for context in &contexts {
            for c in charts_of(&t, context) {
                texts(&c);
            }
        }
        // A single connection: single-point ranges everywhere.
        let one = tables(&["10.0.0.1"], 1, 1.0, 1, 1, &["reset"]);
        for c in charts_of(&one, &context(&["10.0.0.1"], 1)) {
            texts(&c);
        }
    }

    #[test]
    fn random_tables_give_valid_charts() {
        // Deterministic pseudo-random tables with values from every corner: far-apart
        // timestamps, extreme ports and counts, non-finite latencies and intervals.
        let mut seed = 0u64;
        let mut next = || {
            seed += 1;
            mix(seed)
        };
        let pick = |r: u64, values: &[f64]| values[(r % values.len() as u64) as usize];
        let odd = [
            f64::NAN,
            f64::INFINITY,
            -1.0,
            0.0,
            1e-9,
            0.3,
            60.0,
            1e7,
            f64::MAX,
        ];
        for case in 0..60 {
            let mut t = Tables::default();
            let n = next() % 40;
            for uid in 0..n {
                let c = &mut t.connections;
                c.uid.push(uid);
                c.ts_ns.push(if case % 5 == 0 {
                    next() as i64
                } else {
                    START_NS + (next() % 100_000_000_000) as i64
                });
                c.orig_h.push(format!("10.0.0.{}", next() % 3).into());
                c.orig_p.push((next() % 65_536) as u32);
                c.resp_h.push(format!("10.1.0.{}", next() % 2).into());
                c.resp_p.push(80);
                c.syn_to_syn_ack_ms
                    .push((next() % 4 != 0).then(|| pick(next(), &odd)));
                c.reuse_interval_s
                    .push((next() % 2 == 0).then(|| pick(next(), &odd)));
                c.collision.push(match next() % 4 {
                    0 => Some(OUTCOMES[(next() % 5) as usize].0.into()),
                    1 => Some("new_outcome".into()),
                    _ => None,
                });
            }
            for _ in 0..next() % 30 {
                let tl = &mut t.timeline;
                tl.second.push(if case % 7 == 0 {
                    (next() % 4_000_000_000) as i64
                } else {
                    START_NS / 1_000_000_000 + (next() % 200) as i64
                });
                tl.orig_h.push(format!("10.0.0.{}", next() % 3).into());
                tl.new_connections.push(next() % 1_000);
                tl.collisions.push(next() % 1_000);
                tl.time_wait_tuples
                    .push(if case % 3 == 0 { next() } else { next() % 500 });
            }
            let context = ChartContext {
                capture_start_ns: if case % 4 == 0 {
                    next() as i64
                } else {
                    START_NS
                },
                time_wait_s: pick(next(), &odd),
                sources: (0..next() % 6)
                    .map(|i| {
                        let ports = next() % 70_000;
                        source(&format!("10.0.0.{i}"), ports, ports * (1 + next() % 3))
                    })
                    .collect(),
            };
            for c in charts_of(&t, &context) {
                texts(&c);
            }
        }
    }

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

    #[test]
    fn formats_capture_start_in_utc() {
        assert_eq!(format_utc_ms(START_NS), "2025-11-24 16:00:00.000 UTC");
        assert_eq!(format_utc_ms(-1), "1969-12-31 23:59:59.999 UTC");
        assert_eq!(
            format_utc_ms(951_782_400_123_456_789),
            "2000-02-29 00:00:00.123 UTC"
        );
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

#[cfg(test)]
mod fixture_tests {
    use super::*;
    use twsleuth_decode::decode;
    use twsleuth_flows::{Findings, Summary, TrackerConfig};
    use twsleuth_reader::CaptureReader;

    /// Tables and chart context of a fixture, as the report builds them.
    fn charts_of(fixture: &str) -> Vec<Chart> {
        let path = format!("{}/../../fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
        let mut reader = CaptureReader::open(&path, 0).expect("fixture opens");
        let config = TrackerConfig::default();
        let mut segments = Vec::new();
        while reader.advance() {
            if let Some(Ok(segment)) = reader.current().map(|frame| decode(&frame)) {
                segments.push(segment);
            }
        }
        let findings = Findings::of_segments(&config, &segments);
        let summary = Summary::new(&findings, 4);
        let records = crate::stream::RecordDigest::of(&findings, &summary, &config.time_wait);
        let input = crate::ReportInput {
            records: &records,
            counters: &findings.counters,
            summary: &summary,
            accounting: &twsleuth_decode::Accounting::default(),
            policy: &config.time_wait,
            inputs: Vec::new(),
            evidence: Vec::new(),
            completeness: &crate::limits::Completeness {
                complete: true,
                cannot_show: Vec::new(),
            },
            exhaustion: &[],
            f5: Default::default(),
            capture_points: Vec::new(),
            tool_version: "test",
        };
        let context = ChartContext {
            capture_start_ns: findings
                .connections
                .iter()
                .map(|c| c.ts_ns)
                .min()
                .unwrap_or(0),
            time_wait_s: config.time_wait.default_ns as f64 / 1e9,
            sources: crate::analysis::capacity(&input)
                .into_iter()
                .map(|c| ChartSource {
                    name: c.source,
                    ports: c.ports_in_use,
                    tuples: c.tuples_in_use,
                })
                .collect(),
        };
        render_charts(
            &records.timeline,
            &records.charts,
            &records.timestamps,
            &context,
        )
    }

    #[test]
    fn synthetic_balancer_charts_show_its_outcomes_and_port_cycle() {
        // The generator's truth: 1,100 collisions, 783 accepted, 310 rejected then
        // recovered, 7 unanswered; one SNAT address cycling 200 ports.
        let charts = charts_of("synthetic/lb-cycle.pcap.gz");
        let port_reuse = charts
            .iter()
            .find(|c| c.file_name == "port-reuse-10.0.0.1.svg")
            .expect("a port-reuse chart for the SNAT address");
        let doc = roxmltree::Document::parse(&port_reuse.svg).expect("XML");
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        for label in [
            "accepted (783)",
            "rejected_recovered (310)",
            "unanswered (7)",
        ] {
            assert!(texts.iter().any(|t| t.contains(label)), "no {label:?}");
        }
        assert!(texts.iter().any(|t| t.contains("200 source ports used")));
        // Every one of the 200 ports went to both servers: 400 tuples before a TIME_WAIT.
        let occupancy = charts
            .iter()
            .find(|c| c.file_name == "time-wait-occupancy.svg")
            .expect("an occupancy chart");
        assert!(
            occupancy
                .svg
                .contains("exhaustion line: 400 tuples (10.0.0.1)"),
            "the exhaustion line is the 4-tuples used"
        );
        // The rates chart draws the refused SYNs: 310 rejected + 7 unanswered.
        let rates = charts
            .iter()
            .find(|c| c.file_name == "rates.svg")
            .expect("a rates chart");
        let doc = roxmltree::Document::parse(&rates.svg).expect("XML");
        let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("1100 collisions, 317 refused")),
            "{texts:?}"
        );
        assert!(
            texts.iter().any(|t| t.contains("refused SYNs/s")),
            "{texts:?}"
        );
        for c in &charts {
            roxmltree::Document::parse(&c.svg).expect("XML");
            assert!(c.svg.len() < 3_000_000);
        }
    }
}
