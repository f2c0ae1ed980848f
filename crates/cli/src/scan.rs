//! Opening the inputs and walking their frames in timestamp order, decoded, with a progress
//! bar; and the parallel pipeline that feeds the flow tracker.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use twsleuth_decode::{Decoder, NotTcp, TcpSegment};
use twsleuth_flows::{
    CollisionRecord, ConnectionRecord, Finished, Partitioned, ShardedTracker, SummaryBuilder,
    TrackerConfig, TrackerCounters,
};
use twsleuth_reader::{CaptureReader, CaptureSet, Frame, MergedCaptures, ReadErrorKind};
use twsleuth_report::InputFile;
use twsleuth_report::exhaustion::ExhaustionDetector;
use twsleuth_report::limits::{CaptureFacts, TIME_GAP_NS, TimeGap};
use twsleuth_report::spill::{DEFAULT_BUFFER_BYTES, SortedSpill};
use twsleuth_report::tables::Successor;

use crate::cli::InputArgs;

/// How often (in frames) the progress bar is updated: rarely enough to cost nothing.
const PROGRESS_EVERY_FRAMES: u64 = 1 << 16;
/// Segments read into one stretch while the tracker works on the previous one.
const STRETCH_SEGMENTS: usize = 1 << 16;
/// Shards per tracking thread: enough to balance uneven tuples and to leave some for a thread
/// done reading, few enough to stay cheap.
const SHARDS_PER_THREAD: usize = 4;

/// Whether the inputs' bytes are hashed as they are read (for a report's method section).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    Off,
    Sha256,
}

/// Opens every input: files, directories and tar archives, each capture in them an input of
/// its own. A named file that cannot be read as a capture ends the run, as does a directory or
/// archive without any capture; the other files of directories and archives are listed on
/// stderr as skipped, with the reason.
pub fn open_inputs(args: &InputArgs, hashing: Hashing) -> anyhow::Result<MergedCaptures> {
    if args.inputs.iter().filter(|i| *i == "-").count() > 1 {
        bail!("standard input (`-`) can be read only once");
    }
    let set = CaptureSet::expand(&args.inputs).context("cannot read the capture")?;
    let merged = open_set(&set, hashing)?;
    for skipped in merged.skipped() {
        eprintln!(
            "twsleuth: note: skipped {}: {}",
            skipped.name, skipped.reason
        );
    }
    Ok(merged)
}

/// Opens the captures of a set that was expanded before (to read some frames again).
pub fn open_set(set: &CaptureSet, hashing: Hashing) -> anyhow::Result<MergedCaptures> {
    MergedCaptures::from_set(set, hashing == Hashing::Sha256).context("cannot read the capture")
}

/// Walks every frame, decoded, in timestamp order; shows progress on stderr. Returns the
/// decoder once it has finished: where every frame went ([`Decoder::accounting`]) and what it
/// saw beside that (F5 trailers and capture information, [`Decoder::f5`]).
pub fn scan_decoder(
    merged: &mut MergedCaptures,
    quiet: bool,
    mut on_frame: impl FnMut(&Frame<'_>, Result<TcpSegment, NotTcp>),
) -> Decoder {
    let mut progress = Progress::new(merged, quiet);
    let mut decoder = Decoder::default();
    while let Some(frame) = merged.next_frame() {
        let decoded = decoder.decode(&frame);
        on_frame(&frame, decoded);
        progress.frame(merged);
    }
    progress.finish();
    decoder.finish();
    decoder
}

/// Something that looks at each batch of records as it leaves the tracker.
pub type Observer = Box<dyn FnMut(&Finished) + Send>;

/// What becomes of the records as they leave the tracker: the key figures and the search for
/// a balancer's exhaustion take each one as it comes; exports keep them, put in order in
/// bounded memory ([`SortedSpill`]); a report still keeps them all.
pub struct Sinks {
    /// The key figures.
    pub summary: SummaryBuilder,
    /// A balancer running out of its own ports.
    pub exhaustion: ExhaustionDetector,
    /// Connection records for an export.
    pub connections: Option<SortedSpill<ConnectionRecord>>,
    /// Collision records for an export.
    pub collisions: Option<SortedSpill<CollisionRecord>>,
    /// The next incarnation of each reused tuple, for the report's TIME_WAIT ends.
    pub successors: Option<SortedSpill<Successor>>,
    /// Sees each batch first (the live view of `watch`).
    pub observer: Option<Observer>,
    /// The first error of a spill (a full disk).
    error: Option<std::io::Error>,
}

impl Sinks {
    /// Sinks that keep the records for these exports, in order on the temporary disk
    /// (`successors`: what the report's TIME_WAIT ends need).
    pub fn new(connections: bool, collisions: bool, successors: bool) -> Sinks {
        Sinks {
            summary: SummaryBuilder::default(),
            exhaustion: ExhaustionDetector::default(),
            connections: connections
                .then(|| SortedSpill::new(|c: &ConnectionRecord| c.uid, DEFAULT_BUFFER_BYTES)),
            collisions: collisions
                .then(|| SortedSpill::new(|c: &CollisionRecord| c.uid, DEFAULT_BUFFER_BYTES)),
            successors: successors
                .then(|| SortedSpill::new(|s: &Successor| s.prev_uid, DEFAULT_BUFFER_BYTES / 4)),
            observer: None,
            error: None,
        }
    }

    /// Takes a batch of records.
    fn take(&mut self, batch: Finished) {
        if let Some(observer) = &mut self.observer {
            observer(&batch);
        }
        for c in &batch.connections {
            self.summary.connection(c);
            self.exhaustion.connection(c);
        }
        batch
            .collisions
            .iter()
            .for_each(|c| self.summary.collision(c));
        if let Some(spill) = &mut self.successors {
            if let Err(error) = spill.extend(batch.connections.iter().filter_map(Successor::of)) {
                self.error.get_or_insert(error);
            }
        }
        let Finished {
            connections,
            collisions,
        } = batch;
        if let Some(spill) = &mut self.connections {
            if let Err(error) = spill.extend(connections) {
                self.error.get_or_insert(error);
            }
        }
        if let Some(spill) = &mut self.collisions {
            if let Err(error) = spill.extend(collisions) {
                self.error.get_or_insert(error);
            }
        }
    }
}

impl Sinks {
    /// The first error a spill met.
    fn check(&mut self) -> anyhow::Result<()> {
        match self.error.take() {
            Some(error) => {
                Err(error).context("cannot keep the records in order on the temporary disk")
            }
            None => Ok(()),
        }
    }
}

/// What the tracking pipeline produced, besides what its sinks made of the records.
pub struct Tracked {
    /// What the tracker counted.
    pub counters: TrackerCounters,
    /// Where every frame went, and what else the reading showed.
    pub facts: CaptureFacts,
}

/// Reads, decodes and tracks every frame, and hands the records to `sinks` as they come.
/// The next stretch of input is read and decoded while the tracker's shards work on the
/// previous one and the sinks take the records of the one before, all on one pool of
/// `threads` threads: a thread done with its part takes shards still waiting, so no stage
/// leaves a core idle while another has work. With one thread, the same steps run in turn.
pub fn track(
    merged: &mut MergedCaptures,
    config: &TrackerConfig,
    threads: usize,
    quiet: bool,
    sinks: &mut Sinks,
) -> anyhow::Result<Tracked> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .context("cannot start worker threads")?;
    let mut tracker = ShardedTracker::new(config, shards_for(threads));
    let shards = tracker.shards();
    let mut reading = Reading::new(merged, config, quiet);
    let counters = pool.install(|| {
        let (mut current, mut next) = (Partitioned::new(shards), Partitioned::new(shards));
        let mut finished = Finished::default();
        reading.read_stretch(&mut current, None);
        while !current.is_empty() {
            next.clear();
            let batch = std::mem::take(&mut finished);
            rayon::join(
                || reading.read_stretch(&mut next, None),
                || rayon::join(|| tracker.process(&current), || sinks.take(batch)),
            );
            finished = tracker.take_finished();
            std::mem::swap(&mut current, &mut next);
        }
        reading.progress.finish();
        sinks.take(finished);
        let (last, counters) = tracker.finish();
        sinks.take(last);
        counters
    });
    sinks.check()?;
    Ok(Tracked {
        counters,
        facts: reading.facts(),
    })
}

/// [`track`] for a capture that arrives as it is written (a pipe from tcpdump, a file
/// followed): one thread, and a stretch ends after `every` of wall-clock time as well as at
/// its size, so that `on_stretch` sees the tracker (its live state, on the capture's clock)
/// and the sinks at least that often while frames come.
pub fn track_live(
    merged: &mut MergedCaptures,
    config: &TrackerConfig,
    sinks: &mut Sinks,
    every: Duration,
    mut on_stretch: impl FnMut(&ShardedTracker, &Sinks),
) -> anyhow::Result<Tracked> {
    let mut tracker = ShardedTracker::new(config, 1);
    let mut reading = Reading::new(merged, config, true);
    let mut stretch = Partitioned::new(1);
    loop {
        stretch.clear();
        let ended = reading.read_stretch(&mut stretch, Some(Instant::now() + every));
        tracker.process(&stretch);
        sinks.take(tracker.take_finished());
        on_stretch(&tracker, sinks);
        if ended {
            break;
        }
    }
    let (last, counters) = tracker.finish();
    sinks.take(last);
    sinks.check()?;
    Ok(Tracked {
        counters,
        facts: reading.facts(),
    })
}

/// How many shards the tracker is split into: a few per tracking thread, so that a thread done
/// reading takes shards still waiting. The findings are the same for any count.
fn shards_for(threads: usize) -> usize {
    SHARDS_PER_THREAD * threads.saturating_sub(1).max(1)
}

/// The reading side of the pipeline: the merged inputs and what it counts.
struct Reading<'a> {
    merged: &'a mut MergedCaptures,
    /// Decodes the frames in order (IP fragments put together) and counts where each went.
    decoder: Decoder,
    facts: CaptureFacts,
    /// The latest frame time so far (`i64::MIN` before the first), for gaps in time.
    latest_ts_ns: i64,
    /// Position of the next frame in the merged input.
    index: u64,
    progress: Progress,
}

impl<'a> Reading<'a> {
    fn new(merged: &'a mut MergedCaptures, config: &TrackerConfig, quiet: bool) -> Reading<'a> {
        let progress = Progress::new(merged, quiet);
        Reading {
            merged,
            decoder: Decoder::default(),
            facts: CaptureFacts {
                server_os: Some(config.server_os),
                ..CaptureFacts::default()
            },
            latest_ts_ns: i64::MIN,
            index: 0,
            progress,
        }
    }

    /// Reads frames into `stretch` until it holds `STRETCH_SEGMENTS` segments, the input
    /// ends, or (live) `until` has passed: then returns whether the input ended.
    fn read_stretch(&mut self, stretch: &mut Partitioned, until: Option<Instant>) -> bool {
        let mut segments = 0;
        while segments < STRETCH_SEGMENTS {
            if until.is_some_and(|until| Instant::now() >= until) {
                return false;
            }
            let Some(frame) = self.merged.next_frame() else {
                return true;
            };
            let facts = &mut self.facts;
            if frame.ts_ns > self.latest_ts_ns {
                let length_ns = frame.ts_ns.saturating_sub(self.latest_ts_ns);
                if length_ns >= TIME_GAP_NS && self.latest_ts_ns != i64::MIN {
                    facts.time_gaps += 1;
                    if facts
                        .longest_time_gap
                        .is_none_or(|g| g.length_ns < length_ns)
                    {
                        facts.longest_time_gap = Some(TimeGap {
                            start_ns: self.latest_ts_ns,
                            length_ns,
                        });
                    }
                }
                self.latest_ts_ns = frame.ts_ns;
            }
            if let Ok(segment) = self.decoder.decode(&frame) {
                stretch.push(self.index, segment);
                segments += 1;
            }
            self.index += 1;
            self.progress.frame(self.merged);
        }
        false
    }

    /// What the reading counted and saw, once it is over.
    fn facts(mut self) -> CaptureFacts {
        self.facts.accounting = self.decoder.finish();
        self.facts.interrupted = twsleuth_reader::interrupted();
        self.facts.last_frame_ns = (self.latest_ts_ns != i64::MIN).then_some(self.latest_ts_ns);
        self.facts
    }
}

/// The inputs as the results describe them; `sha256` is set where the input was hashed as
/// it was read.
pub fn input_files(merged: &MergedCaptures) -> Vec<InputFile> {
    merged
        .readers()
        .iter()
        .map(|reader| InputFile {
            name: reader.input().to_string(),
            sha256: reader
                .sha256()
                .map(|digest| digest.iter().map(|b| format!("{b:02x}")).collect()),
            frames: reader.counters().frames,
            out_of_order_frames: reader.counters().out_of_order_frames,
            damage: reader.damage().map(ToString::to_string),
            damage_cut_short: reader
                .damage()
                .is_some_and(|d| matches!(d.kind, ReadErrorKind::CutShort)),
        })
        .collect()
}

/// Prints each damaged input to stderr (the frames before the damage were analysed), and
/// what the reader warned about (an unknown format version).
pub fn warn_damage(merged: &MergedCaptures) {
    for reader in merged.readers() {
        for warning in reader.warnings() {
            eprintln!("twsleuth: warning: {}: {warning}", reader.input());
        }
        if let Some(damage) = reader.damage() {
            eprintln!("twsleuth: warning: {damage}");
        }
    }
}

/// The progress bar on stderr: bytes read against the input size, frames, ETA. Hidden when
/// stderr is not a terminal or with `--quiet`.
struct Progress {
    bar: ProgressBar,
    frames: u64,
}

impl Progress {
    fn new(merged: &MergedCaptures, quiet: bool) -> Progress {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let sizes: Option<u64> = merged
                .readers()
                .iter()
                .map(CaptureReader::file_size_bytes)
                .sum();
            let bar = match sizes {
                Some(total) => {
                    ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                        .with_style(
                        ProgressStyle::with_template(
                            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} · {msg} · ETA {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    )
                }
                // Standard input has no size: a spinner with what has been read.
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {bytes} read {bytes_per_sec} · {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        };
        Progress { bar, frames: 0 }
    }

    fn frame(&mut self, merged: &MergedCaptures) {
        self.frames += 1;
        if self.frames % PROGRESS_EVERY_FRAMES == 0 && !self.bar.is_hidden() {
            self.bar.set_position(merged.raw_bytes_read());
            let per_second = self.frames as f64 / self.bar.elapsed().as_secs_f64().max(1e-3);
            self.bar.set_message(format!(
                "{} frames, {:.0} frames/s",
                self.frames, per_second
            ));
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
