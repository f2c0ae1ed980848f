//! Opening the inputs and walking their frames in timestamp order, decoded, with a progress
//! bar; and the parallel pipeline that feeds the flow tracker.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use twsleuth_decode::{Decoder, F5NameId, F5Summary, F5Trailer, NotTcp, TcpFlags, TcpSegment};
use twsleuth_flows::{
    CollisionRecord, ConnectionRecord, Finished, LegPair, LegPairer, NamedFlow, Outcome,
    Partitioned, ShardedTracker, SummaryBuilder, TrackerConfig, TrackerCounters,
};
use twsleuth_reader::{CaptureReader, CaptureSet, Frame, MergedCaptures, ReadErrorKind};
use twsleuth_report::InputFile;
use twsleuth_report::evidence::ShownCollisions;
use twsleuth_report::exhaustion::ExhaustionDetector;
use twsleuth_report::limits::{CaptureFacts, TIME_GAP_NS, TimeGap};
use twsleuth_report::spill::{DEFAULT_BUFFER_BYTES, SortedSpill};
use twsleuth_report::tables::Successor;

use crate::cli::InputArgs;

/// How often (in frames) the progress bar is updated: rarely enough to cost nothing.
const PROGRESS_EVERY_FRAMES: u64 = 1 << 16;
/// Resets with an F5 RST cause kept, at most (as many as the decoder keeps by frame).
const MAX_F5_RESETS: usize = 1 << 20;
/// A collision without a SYN-ACK (reset, failed): the resets looked for up to this long after
/// its SYN (a RST answering a SYN comes within a round trip).
const RESET_WITHIN_NS: i64 = 1_000_000_000;

/// A connection's two endpoints, in a fixed order (either direction's segments give the same).
type Endpoints = [(IpAddr, u16); 2];

fn endpoints(a: (IpAddr, u16), b: (IpAddr, u16)) -> Endpoints {
    if a <= b { [a, b] } else { [b, a] }
}

/// A RST a BIG-IP gave a cause for in its trailer.
#[derive(Clone, Copy, Debug)]
struct F5Reset {
    endpoints: Endpoints,
    ts_ns: i64,
    cause: F5NameId,
}
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

/// Opens the captures of an expanded set.
fn open_set(set: &CaptureSet, hashing: Hashing) -> anyhow::Result<MergedCaptures> {
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
    /// A proxy's legs paired from the connection records.
    pub legs: LegPairer,
    /// The pairs, for an export (by the frontend connection's uid).
    pub leg_pairs: Option<SortedSpill<LegPair>>,
    /// The RSTs F5 trailers gave a cause for, by tuple: (time, cause); handed over by the
    /// reading before the records of their connections come.
    f5_resets: HashMap<Endpoints, Vec<(i64, F5NameId)>>,
    /// Collisions with a reset of each F5 RST cause on their tuple between their SYN and its
    /// SYN-ACK (a RST answering the SYN, or the SYN's sender's answer to a rejection).
    pub f5_rst_causes: BTreeMap<F5NameId, u64>,
    /// The collisions a report shows, with their packets (the tracker keeps them with
    /// `TrackerConfig::ladders`).
    pub shown: Option<ShownCollisions>,
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
            legs: LegPairer::new(false),
            leg_pairs: None,
            f5_resets: HashMap::new(),
            f5_rst_causes: BTreeMap::new(),
            shown: None,
            observer: None,
            error: None,
        }
    }

    /// The same sinks, keeping the collisions a report shows with their packets.
    pub fn with_shown_collisions(self) -> Sinks {
        Sinks {
            shown: Some(ShownCollisions::default()),
            ..self
        }
    }

    /// The same sinks, keeping each pair of a proxy's legs for an export.
    pub fn with_leg_pairs(self) -> Sinks {
        Sinks {
            legs: LegPairer::new(true),
            leg_pairs: Some(SortedSpill::new(
                |p: &LegPair| p.frontend.uid,
                DEFAULT_BUFFER_BYTES,
            )),
            ..self
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
        self.legs.add(&batch);
        if !self.f5_resets.is_empty() {
            for c in batch
                .collisions
                .iter()
                .filter(|c| c.outcome != Outcome::Accepted)
            {
                self.count_f5_rst_causes(c);
            }
        }
        if let Some(spill) = &mut self.leg_pairs {
            if let Err(error) = spill.extend(self.legs.take_pairs()) {
                self.error.get_or_insert(error);
            }
        }
        let Finished {
            connections,
            mut collisions,
        } = batch;
        if let Some(shown) = &mut self.shown {
            collisions.iter_mut().for_each(|c| shown.offer(c));
        }
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
    /// What the reading found in a stretch that the records to come need: F5 flows for the
    /// legs, F5 resets for the collisions. A stretch's records leave the tracker at the
    /// earliest with the next stretch's batch, after this.
    fn hand_over(&mut self, reading: &mut Reading<'_>) {
        self.legs.name_flows(reading.named_flows.drain(..));
        for reset in reading.f5_resets.drain(..) {
            if self.f5_resets.len() < MAX_F5_RESETS {
                let on_tuple = self.f5_resets.entry(reset.endpoints).or_default();
                on_tuple.push((reset.ts_ns, reset.cause));
            }
        }
    }

    /// Counts the causes of the F5 resets on a collision's tuple from its SYN to its SYN-ACK,
    /// each once.
    fn count_f5_rst_causes(&mut self, c: &CollisionRecord) {
        let tuple = endpoints((c.orig_h, c.orig_p), (c.resp_h, c.resp_p));
        let Some(on_tuple) = self.f5_resets.get(&tuple) else {
            return;
        };
        let until_ns = c.ts_ns.saturating_add(c.cost_ns.unwrap_or(RESET_WITHIN_NS));
        let mut causes: Vec<F5NameId> = on_tuple
            .iter()
            .filter(|(ts_ns, _)| (c.ts_ns..=until_ns).contains(ts_ns))
            .map(|&(_, cause)| cause)
            .collect();
        causes.sort_unstable();
        causes.dedup();
        for cause in causes {
            *self.f5_rst_causes.entry(cause).or_default() += 1;
        }
    }

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
    /// What F5 BIG-IP trailers and fileinfo packets showed (empty without them).
    pub f5: F5Summary,
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
        sinks.hand_over(&mut reading);
        while !current.is_empty() {
            next.clear();
            let batch = std::mem::take(&mut finished);
            rayon::join(
                || reading.read_stretch(&mut next, None),
                || rayon::join(|| tracker.process(&current), || sinks.take(batch)),
            );
            sinks.hand_over(&mut reading);
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
    let (facts, f5) = reading.facts();
    Ok(Tracked {
        counters,
        facts,
        f5,
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
        sinks.hand_over(&mut reading);
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
    let (facts, f5) = reading.facts();
    Ok(Tracked {
        counters,
        facts,
        f5,
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
    /// Segments read into one stretch while the tracker works on the previous one
    /// ([`ShardedTracker::stretch_segments`]).
    stretch_segments: usize,
    /// The F5 flows of the SYNs read, by the uid of the connection each opens (its frame's
    /// position): for pairing a BIG-IP's legs exactly.
    named_flows: Vec<(u64, NamedFlow)>,
    /// The RSTs F5 trailers gave a cause for, read in the stretch.
    f5_resets: Vec<F5Reset>,
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
            stretch_segments: ShardedTracker::stretch_segments(config),
            named_flows: Vec::new(),
            f5_resets: Vec::new(),
            progress,
        }
    }

    /// Reads frames into `stretch` until it holds [`Reading::stretch_segments`] segments,
    /// the input ends, or (live) `until` has passed: then returns whether the input ended.
    fn read_stretch(&mut self, stretch: &mut Partitioned, until: Option<Instant>) -> bool {
        let mut segments = 0;
        while segments < self.stretch_segments {
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
                // Only frames with an F5 trailer: one test of an Option on every other frame.
                if let Some(trailer) = self.decoder.f5_trailer() {
                    self.note_f5(&segment, trailer);
                }
                stretch.push(self.index, segment);
                segments += 1;
            }
            self.index += 1;
            self.progress.frame(self.merged);
        }
        false
    }

    /// What an F5 trailer says of its segment that the records to come need: a SYN's flow and
    /// peer flow (pairing the legs), a RST's cause (shown beside the collisions' resets).
    #[cold]
    fn note_f5(&mut self, segment: &TcpSegment, trailer: F5Trailer) {
        if let (true, Some(flow_id), Some(peer_flow_id)) = (
            segment.flags.is_syn_only(),
            trailer.flow_id,
            trailer.peer_flow_id,
        ) {
            let flow = NamedFlow {
                flow_id,
                peer_flow_id,
                virtual_server: trailer.virtual_server,
            };
            self.named_flows.push((self.index, flow));
        }
        if let (Some(cause), true) = (trailer.rst_cause, segment.flags.contains(TcpFlags::RST)) {
            self.f5_resets.push(F5Reset {
                endpoints: endpoints(
                    (segment.src, segment.src_port),
                    (segment.dst, segment.dst_port),
                ),
                ts_ns: segment.ts_ns,
                cause,
            });
        }
    }

    /// What the reading counted and saw, once it is over, and what F5 trailers showed.
    fn facts(mut self) -> (CaptureFacts, F5Summary) {
        self.facts.accounting = self.decoder.finish();
        self.facts.interrupted = twsleuth_reader::interrupted();
        self.facts.last_frame_ns = (self.latest_ts_ns != i64::MIN).then_some(self.latest_ts_ns);
        (self.facts, self.decoder.f5().clone())
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
            captured_by: None,
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
