//! The report's SVG charts, drawn with plotters from the exported timeline and a
//! [`ChartSample`] of the exported connections (so a chart never shows what `data/*.parquet`
//! lacks), both gathered in bounded memory while the records stream to the exports:
//!
//! - `port-reuse-<source>.svg`: source port over time for each of the busiest sources, every
//!   connection a grey mark and collisions coloured by outcome; the balancer's port cycling
//!   shows as a sawtooth; a few far-off ports do not stretch the axis (drawn as rings on its
//!   edge).
//! - `time-wait-occupancy.svg`: tuples held in TIME_WAIT per source, against the limit the
//!   capacity model gives (ports 1024–65535, Linux's one parity, × destinations); shaded
//!   after the capture, where the timeline's rows are not `observed`.
//! - `rates.svg`: new connections and collisions per second (from sub-second bins for a
//!   capture shorter than 10 s).
//! - `handshake-latency.svg`: first SYN → SYN-ACK, clean against collided connections.
//! - `reuse-interval.svg`: how soon a tuple was used again (log axis), against the TIME_WAIT
//!   duration, reuses that collided stacked under those that did not.
//! - `syn-timestamps.svg`: the TSval of each colliding SYN against the `ts_recent` of the
//!   TIME_WAIT it met, over time: a clock that went back (the cause of PAWS rejections) shows
//!   as SYNs below the grey marks.
//!
//! Every chart is 900×450 px, its text in the SVG as `<text>` (no fonts needed to draw it),
//! and the same tables always give the same bytes. Empty or odd tables give a chart that
//! says "no data", never a panic.

mod axes;
mod buckets;
mod frame;
mod handshake_latency;
mod palette;
mod port_reuse;
mod rates;
mod reuse_interval;
mod sample;
mod syn_timestamps;
#[cfg(test)]
mod test_support;
mod text;
mod time_wait_occupancy;

use std::collections::HashSet;

use crate::tables::TimelineTable;

pub use sample::ChartSample;
pub use syn_timestamps::TimestampSample;

use crate::time::format_utc_ms;
use frame::{Drawn, no_data, render};

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
    /// The capacity model's limit ([`crate::analysis::Capacity::full_range_tuples`]): the
    /// tuples it could cycle through with ports 1024–65535 under Linux `connect()`'s parity
    /// rule, each port toward as many destinations as its ports went to. A TIME_WAIT
    /// occupancy this high makes every new connection meet a tuple still held.
    pub full_range_tuples: u64,
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

/// Sources with their own port-reuse chart and series.
const MAX_SOURCES: usize = 4;

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
        charts.push(port_reuse::port_reuse(sample, marks, &start, source));
    }
    charts.push(time_wait_occupancy::time_wait_occupancy(
        timeline, context, &start, &sources,
    ));
    charts.push(rates::rates(timeline, &sample.fine_rates, context, &start));
    charts.push(handshake_latency::handshake_latency(sample));
    charts.push(reuse_interval::reuse_interval(sample, context));
    charts.push(syn_timestamps::syn_timestamps(timestamps, &start));
    charts
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::charts::palette::OUTCOMES;
    use crate::charts::sample::mix;
    use crate::charts::test_support::*;
    use crate::tables::Tables;

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
}

#[cfg(test)]
mod fixture_tests {
    use crate::charts::test_support::{fixture_charts, has_text, texts};

    #[test]
    fn synthetic_balancer_charts_show_its_outcomes_and_port_cycle() {
        // The generator's truth: 1,100 collisions, 783 accepted, 310 rejected then
        // recovered, 7 unanswered; one SNAT address cycling 200 ports.
        let charts = fixture_charts("synthetic/lb-cycle.pcap.gz");
        let port_reuse = charts
            .iter()
            .find(|c| c.file_name == "port-reuse-10.0.0.1.svg")
            .expect("a port-reuse chart for the SNAT address");
        let labels = texts(port_reuse);
        for label in [
            "accepted (783)",
            "rejected_recovered (310)",
            "unanswered (7)",
        ] {
            assert!(labels.iter().any(|t| t.contains(label)), "no {label:?}");
        }
        assert!(labels.iter().any(|t| t.contains("200 source ports used")));
        // Every one of the 200 ports went to both servers: with ports 1024–65535 a Linux
        // connect() uses one parity, (65,535 − 1,024 + 1) ÷ 2 = 32,256 ports, each toward
        // both servers.
        let limit = (65_535 - 1_024 + 1) / 2 * 2;
        assert_eq!(limit, 64_512);
        let occupancy = charts
            .iter()
            .find(|c| c.file_name == "time-wait-occupancy.svg")
            .expect("an occupancy chart");
        assert!(
            has_text(occupancy, "limit 64,512 tuples (10.0.0.1)"),
            "the limit is the full port range's tuples"
        );
        // The rates chart draws the refused SYNs: 310 rejected + 7 unanswered.
        let rates = charts
            .iter()
            .find(|c| c.file_name == "rates.svg")
            .expect("a rates chart");
        let labels = texts(rates);
        assert!(
            labels
                .iter()
                .any(|t| t.contains("1100 collisions, 317 refused")),
            "{labels:?}"
        );
        assert!(
            labels.iter().any(|t| t.contains("refused SYNs/s")),
            "{labels:?}"
        );
        for c in &charts {
            roxmltree::Document::parse(&c.svg).expect("XML");
            assert!(c.svg.len() < 3_000_000);
        }
    }
}
