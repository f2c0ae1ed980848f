//! `twsleuth watch`: the pool running out as it happens, during a load test. Reads a capture
//! as it arrives (`tcpdump -w - | twsleuth watch -`, or a file still being written with
//! `--follow`), follows it with the same tracker as `analyze`, and shows once a second, per
//! source address: new connections per second, tuples in TIME_WAIT against the tuples in use,
//! how long until the pool is exhausted at the current rate, collisions by outcome as they
//! happen, and a line per new kind of event. On a terminal the view is redrawn in place; else
//! it prints plain lines. Ctrl-C or the end of the input prints `analyze`'s summary.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use twsleuth_flows::{CollisionRecord, Finished, Occupancy, Outcome, SECOND_NS, ShardedTracker};
use twsleuth_reader::{CaptureReader, MergedCaptures};
use twsleuth_report::limits::Status;
use twsleuth_report::time::format_utc_ms;
use twsleuth_report::words::{count, duration, human};

use crate::analyze::{Analysis, tracker_config, write_text};
use crate::cli::{InputArgs, WatchArgs};
use crate::kept::{KeptInput, Tee};
use crate::report::{report_config, report_sinks, sha256_of};
use crate::scan::{Hashing, Sinks, open_inputs, track_live};

/// Sources shown in the terminal view.
const SOURCES_SHOWN: usize = 8;
/// Events kept for the terminal view (the plain output prints each once).
const EVENTS_SHOWN: usize = 12;
/// Sources whose ports are tallied for the view.
const SOURCES_TALLIED: usize = 64;
/// How often a followed file is looked at again once its end is reached.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Runs `twsleuth watch`.
pub fn run(args: &WatchArgs, out: &mut impl Write) -> anyhow::Result<Status> {
    // With a report to write, the watching is its analysis: what a report keeps is kept as
    // the capture arrives, and nothing is read twice.
    let config = match &args.report {
        Some(_) => report_config(&args.tracker),
        None => tracker_config(&args.tracker),
    };
    // The report's directory is made (or refused) before watching starts, not after an hour.
    if let Some(dir) = &args.report {
        twsleuth_report::files::check_output_dir(dir, args.force)?;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the report directory {}", dir.display()))?;
    }
    let mut kept = None;
    let mut merged = if let (Some(dir), false, "-") = (&args.report, args.follow, &*args.input) {
        let (receiving, copy) = KeptInput::create(dir)?;
        kept = Some(receiving);
        let tee = Tee {
            input: twsleuth_reader::pumped_stdin(),
            copy,
        };
        MergedCaptures::new(vec![CaptureReader::from_reader("-", Box::new(tee), 0)?])
    } else if args.follow {
        let file = File::open(&args.input)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.input))?;
        let reader = CaptureReader::from_reader(&args.input, Box::new(Follow(file)), 0)?;
        MergedCaptures::new(vec![reader])
    } else {
        open_inputs(
            &InputArgs {
                inputs: vec![args.input.clone()],
                quiet: true,
            },
            if args.report.is_some() {
                Hashing::Sha256
            } else {
                Hashing::Off
            },
        )?
    };
    let live = Arc::new(Mutex::new(Live::default()));
    let mut sinks = match &args.report {
        Some(_) => report_sinks(),
        None => Sinks::new(false, false, false),
    };
    let observed = Arc::clone(&live);
    sinks.observer = Some(Box::new(move |batch: &Finished| {
        if let Ok(mut live) = observed.lock() {
            live.take(batch);
        }
    }));
    let terminal = io::stdout().is_terminal();
    let every = Duration::from_nanos(args.every.max(1) as u64);
    let mut screen = Screen::new(terminal);
    if let Ok(mut live) = live.lock() {
        live.time_wait_s = config.time_wait.default_ns as f64 / SECOND_NS as f64;
    }
    let tracked = track_live(&mut merged, &config, &mut sinks, every, |tracker, _| {
        if let Ok(mut live) = live.lock() {
            live.look(tracker);
            screen.show(&mut live);
        }
    })?;
    sinks.observer = None;
    if terminal {
        println!();
    }
    let mut analysis = Analysis::assemble(merged, tracked, sinks, &config);
    write_text(out, &analysis)?;
    let Some(dir) = &args.report else {
        return Ok(analysis.status());
    };
    // As the reader found it when it opened the input: the kept bytes are named after it.
    let opened = analysis
        .merged
        .readers()
        .first()
        .map(|r| (r.format(), r.compression()));
    // Dropping the reader flushes the copy of standard input it was writing.
    analysis.merged = MergedCaptures::new(Vec::new());
    let mut also_ours = Vec::new();
    if let Some(kept) = kept {
        let path = kept.finish(opened)?;
        // The report names the kept file, where its frame numbers and filters point.
        if let Some(input) = analysis.inputs.first_mut() {
            input.name = path.to_string_lossy().into_owned();
            input.sha256 = sha256_of(&input.name);
        }
        also_ours.push(path);
    } else if args.follow {
        // Followed as it grew, hashed as it is now.
        if let Some(input) = analysis.inputs.first_mut() {
            input.sha256 = sha256_of(&input.name);
        }
    }
    writeln!(out)?;
    crate::report::write(analysis, &config, dir, &also_ours, out)
}

/// A file still being written: at its end, wait for more until interrupted (Ctrl-C).
struct Follow(File);

impl Read for Follow {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            if n > 0 || buf.is_empty() || twsleuth_reader::interrupted() {
                return Ok(n);
            }
            std::thread::sleep(FOLLOW_POLL);
        }
    }
}

/// What one source looks like now.
#[derive(Clone, Debug, Default)]
struct SourceView {
    /// Connections that began, by capture second.
    starts: BTreeMap<i64, u64>,
    /// Distinct source ports, as a bit set.
    ports: Option<Box<[u64; 1024]>>,
    port_min: u16,
    port_max: u16,
    occupancy: Occupancy,
    /// The share of the tuples in use held in TIME_WAIT last announced (50, 90, 100).
    announced: u8,
}

impl SourceView {
    fn ports_in_use(&self) -> u64 {
        self.ports.as_ref().map_or(0, |bits| {
            bits.iter().map(|w| u64::from(w.count_ones())).sum()
        })
    }

    /// New connections per second over the last `window` complete seconds before `now_s`.
    fn rate(&self, now_s: i64, window: i64) -> f64 {
        let total: u64 = self
            .starts
            .range(now_s - window..now_s)
            .map(|(_, n)| n)
            .sum();
        total as f64 / window as f64
    }
}

/// The live view, updated as records come and on each look at the tracker.
#[derive(Debug, Default)]
struct Live {
    now_ns: i64,
    /// The servers' TIME_WAIT, seconds: how long a tuple stays taken.
    time_wait_s: f64,
    connections: u64,
    collisions: BTreeMap<Outcome, u64>,
    sources: BTreeMap<IpAddr, SourceView>,
    /// Events, in the order they happened: (capture time, text).
    events: Vec<(i64, String)>,
    /// Events printed so far (plain output).
    printed: usize,
}

impl Live {
    /// Takes a batch of records.
    fn take(&mut self, batch: &Finished) {
        for c in &batch.connections {
            self.connections += 1;
            let tracked =
                self.sources.len() < SOURCES_TALLIED || self.sources.contains_key(&c.orig_h);
            if tracked {
                let view = self.sources.entry(c.orig_h).or_insert_with(|| SourceView {
                    port_min: c.orig_p,
                    port_max: c.orig_p,
                    ..SourceView::default()
                });
                *view
                    .starts
                    .entry(c.ts_ns.div_euclid(SECOND_NS))
                    .or_default() += 1;
                let bits = view.ports.get_or_insert_with(|| Box::new([0; 1024]));
                bits[usize::from(c.orig_p) / 64] |= 1 << (c.orig_p % 64);
                view.port_min = view.port_min.min(c.orig_p);
                view.port_max = view.port_max.max(c.orig_p);
            }
        }
        // A batch holds the records in the order their connections ended: its first
        // collision of an outcome is its earliest.
        let mut firsts: BTreeMap<Outcome, &CollisionRecord> = BTreeMap::new();
        for c in &batch.collisions {
            let first = firsts.entry(c.outcome).or_insert(c);
            if c.uid < first.uid {
                *first = c;
            }
        }
        for (outcome, first) in firsts {
            if !self.collisions.contains_key(&outcome) {
                self.events.push((first.ts_ns, first_of_kind(first)));
            }
        }
        for c in &batch.collisions {
            *self.collisions.entry(c.outcome).or_default() += 1;
        }
    }

    /// Looks at the tracker's live state.
    fn look(&mut self, tracker: &ShardedTracker) {
        self.now_ns = tracker.now_ns();
        let now_s = self.now_ns.div_euclid(SECOND_NS);
        for (source, occupancy) in tracker.occupancy() {
            let Some(view) = self.sources.get_mut(&source) else {
                continue;
            };
            view.occupancy = occupancy;
            // Old seconds are not shown: keep the view's memory flat over hours.
            view.starts = view.starts.split_off(&(now_s - 60));
            let in_use = view.ports_in_use();
            let held = occupancy.time_wait_server + occupancy.time_wait_client;
            for mark in [50u8, 90, 100] {
                if view.announced < mark && in_use > 0 && held * 100 >= in_use * u64::from(mark) {
                    view.announced = mark;
                    self.events.push((
                        self.now_ns,
                        format!(
                            "{source}: {mark}% of the {} tuples in use are in TIME_WAIT ({} by the server, {} by {source} itself)",
                            count(in_use),
                            count(occupancy.time_wait_server),
                            count(occupancy.time_wait_client)
                        ),
                    ));
                }
            }
        }
    }
}

/// The event line for the first collision of its outcome.
fn first_of_kind(c: &CollisionRecord) -> String {
    format!(
        "first collision {}: {} → {} in frame {} ({} into the {} TIME_WAIT{})",
        human(&c.outcome),
        c.orig(),
        c.resp(),
        c.first_syn_frame.number,
        duration(c.time_wait_age_ns),
        match c.holder_role {
            twsleuth_flows::Role::Resp => "server's",
            twsleuth_flows::Role::Orig => "client's",
        },
        if c.inferred { ", inferred" } else { "" }
    )
}

/// Where the view goes: redrawn on a terminal, plain lines elsewhere.
struct Screen {
    terminal: bool,
}

impl Screen {
    fn new(terminal: bool) -> Screen {
        Screen { terminal }
    }

    fn show(&mut self, live: &mut Live) {
        let mut text = String::new();
        if self.terminal {
            // Home and clear: the view is redrawn in place (ANSI).
            text.push_str("\x1b[H\x1b[2J");
            text.push_str(&self.view(live));
        } else {
            for (at, event) in &live.events[live.printed..] {
                text.push_str(&format!("{} event: {event}\n", format_utc_ms(*at)));
            }
            live.printed = live.events.len();
            text.push_str(&status_line(live));
        }
        let mut stdout = io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn view(&self, live: &Live) -> String {
        let now_s = live.now_ns.div_euclid(SECOND_NS);
        let mut lines = vec![format!(
            "twsleuth watch · capture time {} · {} connections · collisions {}",
            format_utc_ms(live.now_ns),
            count(live.connections),
            collisions_text(live)
        )];
        lines.push(String::new());
        lines.push(format!(
            "{:<39} {:>8} {:>9} {:>19} {:>15}  {}",
            "source", "conn/s", "open", "TIME_WAIT srv/own", "tuples in use", "exhaustion"
        ));
        let mut sources: Vec<(&IpAddr, &SourceView)> = live.sources.iter().collect();
        sources.sort_by_key(|(_, v)| std::cmp::Reverse(v.rate(now_s, 5).to_bits()));
        for (source, view) in sources.into_iter().take(SOURCES_SHOWN) {
            let rate = view.rate(now_s, 5);
            lines.push(format!(
                "{:<39} {:>8.1} {:>9} {:>19} {:>15}  {}",
                source.to_string(),
                rate,
                count(view.occupancy.open),
                format!(
                    "{} / {}",
                    count(view.occupancy.time_wait_server),
                    count(view.occupancy.time_wait_client)
                ),
                format!(
                    "{} ({}–{})",
                    count(view.ports_in_use()),
                    view.port_min,
                    view.port_max
                ),
                exhaustion_text(view, rate, live.time_wait_s)
            ));
        }
        lines.push(String::new());
        lines.push("events:".into());
        let skip = live.events.len().saturating_sub(EVENTS_SHOWN);
        for (at, event) in &live.events[skip..] {
            lines.push(format!("  {} {event}", format_utc_ms(*at)));
        }
        lines.join("\n") + "\n"
    }
}

/// Collisions by outcome, in words.
fn collisions_text(live: &Live) -> String {
    let total: u64 = live.collisions.values().sum();
    if total == 0 {
        return "0".into();
    }
    let parts: Vec<String> = live
        .collisions
        .iter()
        .map(|(outcome, n)| format!("{} {}", human(outcome), count(*n)))
        .collect();
    format!("{} ({})", count(total), parts.join(", "))
}

/// When the ports in use run out at `rate` new connections per second: each new connection
/// takes a tuple for the TIME_WAIT (`time_wait_s`, 60 s on Linux) once it ends, so the pool
/// holds rate × TIME_WAIT tuples in steady state; below the pool, it never runs out at this
/// rate.
fn exhaustion_text(view: &SourceView, rate: f64, time_wait_s: f64) -> String {
    let in_use = view.ports_in_use() as f64;
    let held = (view.occupancy.time_wait_server + view.occupancy.time_wait_client) as f64;
    if in_use == 0.0 {
        return "-".into();
    }
    if held >= in_use {
        return "now: every tuple in use is in TIME_WAIT".into();
    }
    let steady = rate * time_wait_s;
    if steady < in_use {
        return format!(
            "not at this rate (steady state {:.0} of {in_use:.0})",
            steady
        );
    }
    // The pool fills at the rate minus what TIME_WAIT gives back (held / 60 s).
    let filling = rate - held / time_wait_s;
    if filling <= 0.0 {
        return "not at this rate".into();
    }
    format!("in {}", duration(((in_use - held) / filling * 1e9) as i64))
}

/// One plain line: the status now.
fn status_line(live: &Live) -> String {
    let now_s = live.now_ns.div_euclid(SECOND_NS);
    let mut line = format!(
        "{} connections {} collisions {}",
        format_utc_ms(live.now_ns),
        count(live.connections),
        collisions_text(live)
    );
    for (source, view) in live.sources.iter().take(SOURCES_SHOWN) {
        line.push_str(&format!(
            " | {source} {:.1}/s time_wait {}+{} of {}",
            view.rate(now_s, 5),
            view.occupancy.time_wait_server,
            view.occupancy.time_wait_client,
            view.ports_in_use()
        ));
    }
    line.push('\n');
    line
}
